"""The lambda-alias-revert playbook through its public steps, against moto."""

from __future__ import annotations

import pytest
from botocore.stub import Stubber

from fireline import aws, registry
from fireline.errors import PreconditionFailed, VerificationFailed
from fireline.local.lambda_fixture import deploy_versions
from fireline.playbook import PlaybookContext
from tests.support.marks import Marks

PLAYBOOK = registry.get("lambda-alias-revert")


@pytest.fixture
def ctx(moto) -> PlaybookContext:
    return PlaybookContext(clients=aws.client, marks=Marks(), incident_id="INC-test")


def _alias(name: str = "checkout") -> dict:
    alias = aws.client("lambda").get_alias(FunctionName=name, Name="live")
    alias.pop("ResponseMetadata")
    return alias


def test_plan_is_read_only_and_names_the_change(ctx):
    deploy_versions(aws.client, "checkout", versions=3)
    before = _alias()

    plan = PLAYBOOK.plan(ctx, PLAYBOOK.parse_params({"function_name": "checkout"}))

    assert plan.summary == "point alias live from version 3 to version 2"
    [change] = plan.changes
    assert (change.attribute, change.before, change.after) == ("FunctionVersion", "3", "2")
    assert change.resource.endswith(":function:checkout:live")
    assert _alias() == before


def test_execute_records_before_and_bad_version_then_undo_puts_it_back(ctx):
    deploy_versions(aws.client, "checkout", versions=3)
    plan = PLAYBOOK.plan(ctx, PLAYBOOK.parse_params({"function_name": "checkout"}))

    outcome = PLAYBOOK.execute(ctx, plan)
    verification = PLAYBOOK.verify(ctx, outcome)
    function_arn = outcome.before["function_arn"]

    assert verification.ok and _alias()["FunctionVersion"] == "2"
    assert outcome.before["version"] == "3"
    assert ctx.marks.marks(function_arn, "bad-version") == {"3"}

    undone = PLAYBOOK.undo(ctx, outcome)

    assert _alias()["FunctionVersion"] == "3"
    assert undone.changes[0].before == "2" and undone.changes[0].after == "3"
    assert ctx.marks.marks(function_arn, "bad-version") == set()


def test_versions_recorded_as_bad_are_skipped(ctx):
    deploy_versions(aws.client, "checkout", versions=4, alias_version="3")
    first = PLAYBOOK.plan(ctx, PLAYBOOK.parse_params({"function_name": "checkout"}))
    PLAYBOOK.execute(ctx, first)  # 3 -> 2, 3 recorded bad
    aws.client("lambda").update_alias(FunctionName="checkout", Name="live", FunctionVersion="4")

    plan = PLAYBOOK.plan(ctx, PLAYBOOK.parse_params({"function_name": "checkout"}))

    assert plan.changes[0].after == "2", "version 3 is known bad, so 4 goes back to 2"


def test_weighted_alias_undo_restores_the_weights(ctx):
    deploy_versions(aws.client, "checkout", versions=3, alias_version="2", weights={"3": 0.25})
    plan = PLAYBOOK.plan(ctx, PLAYBOOK.parse_params({"function_name": "checkout"}))

    assert "remove the canary weights version 3 at 25%" in plan.summary
    outcome = PLAYBOOK.execute(ctx, plan)
    PLAYBOOK.undo(ctx, outcome)

    alias = _alias()
    assert alias["FunctionVersion"] == "2"
    assert alias["RoutingConfig"]["AdditionalVersionWeights"] == {"3": 0.25}


def test_to_version_is_checked(ctx):
    deploy_versions(aws.client, "checkout", versions=3)

    with pytest.raises(PreconditionFailed, match="version 7 is not a published version"):
        PLAYBOOK.plan(ctx, PLAYBOOK.parse_params({"function_name": "checkout",
                                                  "to_version": 7}))
    with pytest.raises(PreconditionFailed, match="already points at version 3"):
        PLAYBOOK.plan(ctx, PLAYBOOK.parse_params({"function_name": "checkout",
                                                  "to_version": "3"}))
    plan = PLAYBOOK.plan(ctx, PLAYBOOK.parse_params({"function_name": "checkout",
                                                     "to_version": "1"}))
    assert plan.changes[0].after == "1"


def test_no_earlier_version_and_missing_alias_are_refused(ctx):
    deploy_versions(aws.client, "checkout", versions=1)

    with pytest.raises(PreconditionFailed, match="no earlier good version of checkout"):
        PLAYBOOK.plan(ctx, PLAYBOOK.parse_params({"function_name": "checkout"}))
    with pytest.raises(PreconditionFailed, match="has no alias 'blue'"):
        PLAYBOOK.plan(ctx, PLAYBOOK.parse_params({"function_name": "checkout",
                                                  "alias": "blue"}))


def test_alias_changed_after_the_plan_is_not_overwritten(ctx):
    deploy_versions(aws.client, "checkout", versions=3)
    plan = PLAYBOOK.plan(ctx, PLAYBOOK.parse_params({"function_name": "checkout"}))
    aws.client("lambda").update_alias(FunctionName="checkout", Name="live", FunctionVersion="1")

    with pytest.raises(PreconditionFailed, match="changed since the plan"):
        PLAYBOOK.execute(ctx, plan)

    assert _alias()["FunctionVersion"] == "1"
    assert ctx.marks.kept == {}


def test_stale_revision_id_fails_cleanly(ctx):
    # moto accepts any RevisionId on UpdateAlias, so AWS's PreconditionFailedException
    # is played by botocore's Stubber for the execute step's two calls.
    deploy_versions(aws.client, "checkout", versions=3)
    plan = PLAYBOOK.plan(ctx, PLAYBOOK.parse_params({"function_name": "checkout"}))
    alias = _alias()
    stubbed = aws._session().client("lambda")
    stubber = Stubber(stubbed)
    stubber.add_response("get_alias", alias, {"FunctionName": "checkout", "Name": "live"})
    stubber.add_client_error(
        "update_alias", service_error_code="PreconditionFailedException",
        service_message="The RevisionId provided does not match the latest RevisionId",
        http_status_code=412,
        expected_params={"FunctionName": "checkout", "Name": "live", "FunctionVersion": "2",
                         "RoutingConfig": {"AdditionalVersionWeights": {}},
                         "RevisionId": plan.state["revision_id"]})
    stubbed_ctx = PlaybookContext(clients=lambda service: stubbed, marks=ctx.marks,
                                  incident_id="INC-test")

    with stubber, pytest.raises(PreconditionFailed, match="RevisionId no longer matches"):
        PLAYBOOK.execute(stubbed_ctx, plan)

    stubber.assert_no_pending_responses()
    assert ctx.marks.kept == {}
    assert _alias()["FunctionVersion"] == "3"


def test_verify_notices_an_alias_that_moved(ctx):
    deploy_versions(aws.client, "checkout", versions=3)
    outcome = PLAYBOOK.execute(ctx, PLAYBOOK.plan(
        ctx, PLAYBOOK.parse_params({"function_name": "checkout"})))
    aws.client("lambda").update_alias(FunctionName="checkout", Name="live", FunctionVersion="3")

    with pytest.raises(VerificationFailed, match="reads back as version 3, expected 2"):
        PLAYBOOK.verify(ctx, outcome)


def test_params_default_from_the_alarm_dimensions():
    from fireline.alarm import AlarmEvent

    alarm = AlarmEvent.model_validate({
        "delivery": "sns", "delivery_id": "d", "alarm_name": "a", "state": "ALARM",
        "state_changed_at": "2026-11-23T03:00:00Z",
        "dimensions": {"FunctionName": "checkout", "Resource": "checkout:blue"}})

    assert PLAYBOOK.params_from_alarm(alarm) == {"function_name": "checkout", "alias": "blue"}
