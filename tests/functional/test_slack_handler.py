"""handlers.slack.handler end to end: signed Function URL and API Gateway events in, an
answer within Slack's window out, the slow work handed to an async invocation of itself
and done by the worker. moto as AWS; the local Slack server as Slack (threads and the
response_url). The hand-off's `lambda:Invoke` is answered by botocore's Stubber, which
records the payload (moto would accept it but run nothing)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.stub import ANY, Stubber

from fireline import aws
from fireline.local.database_fixture import create_pitr_table
from fireline.local.lambda_context import LambdaContext
from fireline.local.lambda_fixture import deploy_versions
from fireline.slack_door import JOB_KEY
from tests.support.aws import TABLE
from tests.support.slack_events import (
    ACCESS_POLICY,
    APPROVER,
    OTHER_RESPONDER,
    RESPONDER,
    SIGNING_SECRET,
    STRANGER,
    api_gateway_v1_event,
    button_body,
    function_url_event,
    slash_body,
)

CONTEXT = LambdaContext(function_name="fireline-slack")


@pytest.fixture
def slack_env(moto, local_slack, tmp_path, monkeypatch) -> Iterator[Any]:
    from handlers import _runtime
    from handlers import slack as slack_handler

    access = tmp_path / "access.yaml"
    access.write_text(ACCESS_POLICY)
    for key, value in {
        "FIRELINE_TABLE": TABLE, "SLACK_BOT_TOKEN": "xoxb-valid",
        "FIRELINE_SLACK_CHANNEL": "#incidents", "FIRELINE_SLACK_API_URL": local_slack.base_url,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET, "FIRELINE_ACCESS": str(access),
        "AWS_LAMBDA_FUNCTION_NAME": "fireline-slack", "POWERTOOLS_METRICS_DISABLED": "true",
    }.items():
        monkeypatch.setenv(key, value)
    _runtime.fireline.cache_clear()
    slack_handler.door.cache_clear()
    _runtime.fireline().store.create_table()
    yield local_slack
    slack_handler.door.cache_clear()
    _runtime.fireline.cache_clear()


def answer(event: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The handler's HTTP answer, and the jobs it handed to its async self."""
    from handlers.slack import handler

    lam = aws.client("lambda")
    handed: list[dict[str, Any]] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        handed.append({"FunctionName": params["FunctionName"],
                       "InvocationType": params["InvocationType"],
                       "job": json.loads(params["Payload"])})

    lam.meta.events.register("provide-client-params.lambda.Invoke", record)
    try:
        with Stubber(lam) as stub:
            stub.add_response("invoke", {"StatusCode": 202},
                              {"FunctionName": "fireline-slack", "InvocationType": "Event",
                               "Payload": ANY})
            response = handler(event, CONTEXT)
    finally:
        lam.meta.events.unregister("provide-client-params.lambda.Invoke", record)
    return response, handed


def text_of(response: dict[str, Any]) -> str:
    assert response["statusCode"] == 200
    body = json.loads(response["body"])
    assert body["response_type"] == "ephemeral"
    return body["text"]


def work(handed: list[dict[str, Any]]) -> dict[str, Any]:
    """Run the async invocation the handler asked for, as Lambda would."""
    from handlers.slack import handler

    [job] = handed
    assert (job["FunctionName"], job["InvocationType"]) == ("fireline-slack", "Event")
    return handler(job["job"], CONTEXT)


def command(text: str, slack, **kwargs: Any) -> dict[str, Any]:
    return function_url_event(slash_body(text, response_url=slack.response_url(), **kwargs))


def posted_to_response_url(slack) -> list[str]:
    return [call.params.get("text", "") for call in slack.calls_to("response_url")]


# --- the request: event shapes and verification -----------------------------------------


@pytest.mark.parametrize("build", [
    lambda body: function_url_event(body, base64_body=True),
    lambda body: function_url_event(body, base64_body=False),
    lambda body: api_gateway_v1_event(body, base64_body=False),
    lambda body: api_gateway_v1_event(body, base64_body=True),
], ids=["function-url-base64", "function-url-plain", "apigw-v1-plain", "apigw-v1-base64"])
def test_signed_events_of_every_shape_are_answered(slack_env, build):
    response, handed = answer(build(slash_body("help")))

    assert "/fireline run PLAYBOOK" in text_of(response)
    assert handed == []


@pytest.mark.parametrize(("event", "why"), [
    (lambda b: function_url_event(b, headers={"x-slack-signature": "v0=" + "0" * 64}),
     "signature"),
    (lambda b: function_url_event(b, sign=False), "x-slack-request-timestamp"),
    (lambda b: function_url_event(b, timestamp=1_700_000_000), "timestamp"),
], ids=["bad-signature", "missing-headers", "replayed-outside-the-window"])
def test_unverified_requests_get_a_bare_401_and_the_reason_is_logged(slack_env, caplog, event,
                                                                      why):
    response, handed = answer(event(slash_body("list")))

    assert response["statusCode"] == 401
    assert response["body"] == ""
    assert handed == []
    assert any(why in record.getMessage() for record in caplog.records)
    assert SIGNING_SECRET not in caplog.text


# --- commands ----------------------------------------------------------------------------


def test_unknown_command_gets_a_short_usage_line(slack_env):
    response, handed = answer(command("reboot everything", slack_env))

    assert "unknown command" in text_of(response) and "/fireline help" in text_of(response)
    assert handed == []


def test_run_is_handed_off_then_done_by_the_worker_and_answered_on_the_response_url(slack_env):
    deploy_versions(aws.client, "checkout", versions=3)

    response, handed = answer(command("run lambda-alias-revert function_name=checkout",
                                      slack_env))

    assert text_of(response).startswith("Working on `run lambda-alias-revert`")
    assert handed[0]["job"] == {JOB_KEY: {
        "command": {"verb": "run", "incident_id": None, "playbook": "lambda-alias-revert",
                    "params": {"function_name": "checkout"}, "dry_run": False, "note": ""},
        "user_id": RESPONDER, "channel_id": "C0123INCIDENTS",
        "response_url": slack_env.response_url(), "source": "command"}}
    result = work(handed)
    assert result["ok"] is True
    assert aws.client("lambda").get_alias(FunctionName="checkout",
                                          Name="live")["FunctionVersion"] == "2"
    [said] = posted_to_response_url(slack_env)
    assert "lambda-alias-revert: `INC-" in said and "is mitigated" in said


def test_list_status_ack_resolve_and_undo(slack_env):
    deploy_versions(aws.client, "checkout", versions=3)
    work(answer(command("run lambda-alias-revert function_name=checkout", slack_env))[1])
    [incident] = _incidents()
    incident_id = incident.incident_id

    assert incident_id in text_of(answer(command("list", slack_env))[0])
    status = text_of(answer(command(f"status {incident_id}", slack_env))[0])
    assert "*mitigated*" in status and "lambda-alias-revert (done)" in status

    assert work(answer(command(f"ack {incident_id}", slack_env))[1])["ok"]
    assert work(answer(command(f"undo {incident_id}", slack_env))[1])["ok"]
    assert aws.client("lambda").get_alias(FunctionName="checkout",
                                          Name="live")["FunctionVersion"] == "3"
    assert work(answer(command(f"resolve {incident_id} rolled forward", slack_env))[1])["ok"]

    done = _store().get(incident_id)
    assert (done.acknowledged_by, done.undone_by, done.resolved_by) == (
        f"slack:{RESPONDER}", f"slack:{RESPONDER}", f"slack:{RESPONDER}")
    assert done.status == "resolved"
    kinds = [e.kind for e in _store().timeline(incident_id)]
    assert kinds[-3:] == ["acknowledged", "undo", "resolved"]
    assert "No open incidents." in text_of(answer(command("list", slack_env))[0])


def test_an_unauthorised_user_is_refused_and_the_refusal_is_on_the_timeline(slack_env):
    deploy_versions(aws.client, "checkout", versions=3)
    work(answer(command("run lambda-alias-revert function_name=checkout", slack_env))[1])
    [incident] = _incidents()

    response, handed = answer(command(f"undo {incident.incident_id}", slack_env,
                                      user=STRANGER))

    assert handed == []
    assert "not" in text_of(response).lower()
    [refused] = [e for e in _store().timeline(incident.incident_id) if e.kind == "refused"]
    assert refused.actor == f"slack:{STRANGER}"
    assert refused.data["slack_user"] == STRANGER
    refused_run, handed = answer(command("run lambda-alias-revert function_name=checkout",
                                         slack_env, user=STRANGER))
    assert handed == [] and text_of(refused_run)
    # No incident to hang it on: the day's audit log has it.
    [audited] = _store().audit_log(refused.at)
    assert (audited.actor, audited.data["verb"]) == (f"slack:{STRANGER}", "run")


def test_a_restore_from_slack_waits_for_an_approver_other_than_the_requester(slack_env):
    table = create_pitr_table(aws.client, "orders", items=[{"pk": "a"}])
    deploy_versions(aws.client, "orders-api", versions=1, environment={"TABLE_NAME": "orders"})
    run = (f"run point-in-time-restore engine=dynamodb source=orders "
           f"restore_to={table['earliest'].isoformat()} cutover=orders-api:TABLE_NAME")
    work(answer(command(run, slack_env, user=OTHER_RESPONDER))[1])
    [incident] = _incidents()
    assert incident.playbook_state == "awaiting-approval"
    assert incident.requested_by == f"slack:{OTHER_RESPONDER}"

    # The requester may not approve; a responder who is not an approver may not either.
    own, handed = answer(command(f"approve {incident.incident_id}", slack_env,
                                 user=OTHER_RESPONDER))
    assert handed == [] and "approve" in text_of(own).lower()
    other, handed = answer(command(f"approve {incident.incident_id}", slack_env,
                                   user=RESPONDER))
    assert handed == [] and text_of(other)

    response, handed = answer(function_url_event(button_body(
        "fireline_approve", incident.incident_id, user=APPROVER,
        response_url=slack_env.response_url("approve"))))

    assert text_of(response).startswith("Working on `approve")
    assert work(handed)["ok"]
    done = _store().get(incident.incident_id)
    assert (done.status, done.approved_by) == ("mitigated", f"slack:{APPROVER}")
    env = aws.client("lambda").get_function_configuration(FunctionName="orders-api")
    assert env["Environment"]["Variables"]["TABLE_NAME"] == done.outcome["after"]["target"]


def test_a_reject_button_refuses_a_held_plan(slack_env):
    deploy_versions(aws.client, "checkout", versions=3)
    from fireline.app import RunRequest
    from handlers import _runtime

    # The request asks for approval: a playbook that would run at once is held.
    held = _runtime.fireline().run(RunRequest(
        playbook="lambda-alias-revert", params={"function_name": "checkout"},
        requested_by="cli-user", approval="required"))
    assert held.status == "awaiting-approval"

    response, handed = answer(function_url_event(button_body(
        "fireline_reject", held.incident_id, user=APPROVER)))

    assert text_of(response).startswith("Working on `reject")
    assert work(handed)["ok"]
    assert _store().get(held.incident_id).playbook_state == "rejected"
    assert aws.client("lambda").get_alias(FunctionName="checkout",
                                          Name="live")["FunctionVersion"] == "3"


def _store():
    from handlers import _runtime

    return _runtime.fireline().store


def _incidents():
    return _store().list()
