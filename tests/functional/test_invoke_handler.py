"""Manual runs through `handlers.invoke.handler`: the same engine, an incident for the record."""

from __future__ import annotations

import pytest

from fireline import aws
from fireline.local.lambda_context import LambdaContext
from fireline.local.lambda_fixture import deploy_versions
from handlers import _runtime
from handlers.invoke import handler

CONTEXT = LambdaContext(function_name="fireline-invoke")


def _version() -> str:
    return aws.client("lambda").get_alias(FunctionName="checkout", Name="live")["FunctionVersion"]


def test_dry_run_returns_the_plan_and_changes_nothing(handler_env):
    deploy_versions(aws.client, "checkout", versions=3)

    result = handler({"playbook": "lambda-alias-revert", "params": {"function_name": "checkout"},
                      "dry_run": True, "requested_by": "alice"}, CONTEXT)

    assert result["status"] == "planned"
    assert result["incident_id"] is None
    assert result["plan"]["changes"][0]["after"] == "2"
    assert _version() == "3"
    assert _runtime.fireline().store.list() == []


def test_run_opens_an_incident_executes_and_reports_actions(handler_env, local_slack):
    deploy_versions(aws.client, "checkout", versions=3)

    result = handler({"playbook": "lambda-alias-revert", "params": {"function_name": "checkout"},
                      "requested_by": "alice", "reason": "bad deploy 41"}, CONTEXT)

    assert result["status"] == "mitigated"
    assert result["actions"][0]["before"]["version"] == "3"
    assert _version() == "2"
    incident = _runtime.fireline().store.get(result["incident_id"])
    assert incident.requested_by == "alice"
    timeline = _runtime.fireline().store.timeline(result["incident_id"])
    assert timeline[0].actor == "alice" and "bad deploy 41" in timeline[0].text
    assert local_slack.calls_to("chat.postMessage")


@pytest.mark.parametrize(("payload", "field", "code"), [
    ({"params": {}, "requested_by": "a"}, "playbook", "InvalidRequest"),
    ({"playbook": "lambda-alias-revert", "params": {"function_name": "x"}}, "requested_by",
     "InvalidRequest"),
    ({"playbook": "lambda-alias-revert", "params": "function_name=x", "requested_by": "a"},
     "params", "InvalidRequest"),
    ({"playbook": "lambda-alias-revert", "requested_by": "a", "colour": "red"}, "colour",
     "InvalidRequest"),
])
def test_bad_payloads_name_the_field(handler_env, payload, field, code):
    result = handler(payload, CONTEXT)

    assert result["error"] == code
    assert result["field"] == field


def test_unknown_playbook_and_bad_params_are_typed_errors(handler_env):
    unknown = handler({"playbook": "reboot", "requested_by": "a"}, CONTEXT)
    bad = handler({"playbook": "lambda-alias-revert", "requested_by": "a",
                   "params": {"function_name": "x", "to_version": "latest"}}, CONTEXT)
    not_an_object = handler(["lambda-alias-revert"], CONTEXT)

    assert unknown["error"] == "PlaybookNotFound" and "lambda-alias-revert" in unknown["message"]
    assert bad["error"] == "InvalidParams" and "to_version" in bad["message"]
    assert not_an_object["error"] == "InvalidRequest"
    assert _runtime.fireline().store.list() == []
