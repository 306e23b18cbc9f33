"""Hostile input through the public doors, with the incident table (moto) and the local
Slack behind them: random and mutated alarm deliveries, oversized, deeply nested, invalid
Unicode, wrong types everywhere; and no secret in any log line of a whole run.

What every refusal must leave behind: a typed answer, a log line, and nothing written, but
for a line on the alarm's open incident's timeline when it has one. The parser alone is
covered in tests/unit/test_events.py (garbage in every field) and
tests/unit/test_hostile_properties.py (Hypothesis).
"""

from __future__ import annotations

import copy
import json
import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from fireline import aws
from fireline.local.lambda_context import LambdaContext
from fireline.local.lambda_fixture import deploy_versions
from fireline.local.payloads import (
    eventbridge_alarm_event,
    lambda_action_alarm_event,
    sns_alarm_event,
    sns_lambda_errors_event,
)
from handlers import _runtime
from handlers.alarm import handler
from tests.support.events import field_paths, replaced
from tests.support.hostile import mutated_events, seed_events

CONTEXT = LambdaContext(function_name="fireline-alarm")
# An alarm no rule gives a playbook: opening it is cheap, and nothing else happens.
QUIET = {"namespace": "AWS/ApiGateway", "metric": "Latency",
         "dimensions": {"ApiName": "orders-api"}}


@pytest.fixture(autouse=True)
def _no_context(aws_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """The alarm's context replies (fireline.enrich) are not what these tests are about.
    (After aws_env, which clears every FIRELINE_ variable.)"""
    monkeypatch.setenv("FIRELINE_ENRICH", "off")
    _runtime.fireline.cache_clear()


class Writes:
    """Every DynamoDB write and every Slack call made while counting."""

    def __init__(self, local_slack: Any) -> None:
        self.dynamodb: list[str] = []
        self._slack = local_slack
        self._slack_before = 0
        for operation in ("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem",
                          "TransactWriteItems"):
            aws._session().events.register(f"before-call.dynamodb.{operation}",
                                           self._write)

    def _write(self, model: Any, **_: Any) -> None:
        self.dynamodb.append(model.name)

    def start(self) -> Writes:
        self.dynamodb.clear()
        self._slack_before = len(self._slack.calls)
        return self

    @property
    def slack(self) -> int:
        return len(self._slack.calls) - self._slack_before


@pytest.fixture
def writes(moto: None, local_slack: Any) -> Writes:
    """Registered on the boto3 session before its clients exist: ask for it before
    handler_env, which makes them."""
    return Writes(local_slack)


def _refused(result: dict[str, Any]) -> dict[str, Any]:
    """The one refusal in a handler's answer, whole event or batch record."""
    if "error" in result:
        return result["error"]
    [refusal] = result["refused"]
    return refusal


def _sns(message: dict[str, Any] | str, **fields: Any) -> dict[str, Any]:
    event = sns_alarm_event(alarm_name="orders-latency", **QUIET, **fields)
    event["Records"][0]["Sns"]["Message"] = (message if isinstance(message, str)
                                             else json.dumps(message))
    return event


def _message(**changes: Any) -> dict[str, Any]:
    event = sns_alarm_event(alarm_name="orders-latency", **QUIET)
    return {**json.loads(event["Records"][0]["Sns"]["Message"]), **changes}


# --- oversized, nested, not Unicode, wrong types ------------------------------------------


def _nested(depth: int) -> Any:
    value: Any = "deep"
    for _ in range(depth):
        value = {"a": [value]}
    return value


HOSTILE = {
    # SNS carries 256 KiB: a bigger message did not come from SNS.
    "oversized message": lambda: _sns(_message(AlarmDescription="x" * (256 << 10))),
    "oversized event text": lambda: "[" + " " * (7 << 20) + "]",
    "nested message": lambda: _sns("[" * 100_000 + "]" * 100_000),
    "nested event text": lambda: '{"Records": ' + "[" * 100_000 + "]" * 100_000 + "}",
    "invalid UTF-8": lambda: b'{"Records": [{"EventSource": "aws:sns", "Sns": "\xff\xfe"}]}',
    "half a surrogate pair in the name": lambda: _sns(_message(AlarmName="orders\ud800")),
    "half a surrogate pair in the state": lambda: _sns(_message(NewStateValue="\udfffALARM")),
    "a surrogate in an EventBridge name": lambda: eventbridge_alarm_event(
        alarm_name="orders-\udc80", **QUIET),
    "state of the wrong type": lambda: _sns(_message(NewStateValue=["ALARM"])),
    "name of the wrong type": lambda: lambda_action_alarm_event(alarm_name=7, **QUIET),
    "records of the wrong type": lambda: {"Records": {"0": {}}},
}


@pytest.mark.parametrize("build", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_deliveries_are_refused_typed_logged_and_write_nothing(
        writes, handler_env, caplog, build):
    event = build()
    caplog.set_level(logging.INFO)
    writes.start()

    started = time.monotonic()
    result = handler(event, CONTEXT)

    refusal = _refused(result)
    assert refusal["error"] in {"MalformedEvent", "UnrecognisedEvent"}
    assert refusal["message"] and len(refusal["message"]) < 500, "a short, safe description"
    assert result["incidents"] == []
    assert writes.dynamodb == [] and writes.slack == 0, "nothing written but the log line"
    assert any(r.levelno >= logging.ERROR and "refused" in r.getMessage()
               for r in caplog.records)
    assert time.monotonic() - started < 10


def test_a_refused_delivery_of_an_alarm_with_an_open_incident_is_noted_on_its_timeline(
        writes, handler_env):
    [opened] = handler(_sns(_message()), CONTEXT)["incidents"]
    store = _runtime.fireline().store
    version = store.get(opened["incident_id"]).version
    bad = _sns(_message(NewStateValue="BROKEN"))
    writes.start()

    first = handler(bad, CONTEXT)
    again = handler(bad, CONTEXT)  # the same message redelivered: one note

    assert _refused(first)["field"] == "Records[0].Sns.Message.NewStateValue"
    assert _refused(again)["error"] == "MalformedEvent"
    [note] = [e for e in store.timeline(opened["incident_id"]) if e.kind == "refused"]
    assert "NewStateValue is 'BROKEN'" in note.text
    assert note.data["field"] == "Records[0].Sns.Message.NewStateValue"
    assert writes.slack == 0, "a refusal changes nothing: it is not posted"
    assert store.get(opened["incident_id"]).version == version
    assert writes.dynamodb == ["PutItem", "PutItem"], "the note, tried once per delivery"


def test_a_refused_eventbridge_delivery_is_noted_too(handler_env):
    [opened] = handler(eventbridge_alarm_event(alarm_name="orders-latency", **QUIET),
                       CONTEXT)["incidents"]
    bad = eventbridge_alarm_event(alarm_name="orders-latency", **QUIET, state="PANIC")

    result = handler(bad, CONTEXT)

    assert result["error"]["field"] == "detail.state.value"
    kinds = [e.kind for e in _runtime.fireline().store.timeline(opened["incident_id"])]
    assert kinds.count("refused") == 1


def test_wrong_types_in_every_field_are_answered_and_never_half_written(writes, handler_env):
    """Each field of each shape in turn gets each wrong type. The answer is an incident (an
    optional field degrades) or a typed refusal that wrote nothing; never an exception."""
    wrong: list[Any] = [None, 7, [], "\ud800"]
    shapes = {
        "sns": json.loads(sns_alarm_event(alarm_name="x", **QUIET)["Records"][0]["Sns"]
                          ["Message"]),
        "eventbridge": eventbridge_alarm_event(alarm_name="x", **QUIET),
        "lambda-action": lambda_action_alarm_event(alarm_name="x", **QUIET),
    }
    outcomes = {"opened": 0, "refused": 0}
    for number, (shape, template) in enumerate(shapes.items()):
        for index, path in enumerate(field_paths(template)):
            for value in wrong:
                name = f"wrong-{number}-{index}-{wrong.index(value)}"
                event = _with_name(template, shape, name)
                event = replaced(event, path, value)
                if shape == "sns":
                    event = _sns(event)
                writes.start()
                result = handler(event, CONTEXT)
                if result["incidents"]:
                    outcomes["opened"] += 1
                    continue
                assert _refused(result)["error"] in {"MalformedEvent", "UnrecognisedEvent"}, \
                    (shape, path, value)
                assert writes.dynamodb == [] and writes.slack == 0, (shape, path, value)
                outcomes["refused"] += 1
    assert outcomes["opened"] and outcomes["refused"], outcomes


def _with_name(template: dict[str, Any], shape: str, name: str) -> dict[str, Any]:
    event = copy.deepcopy(template)
    if shape == "sns":
        event["AlarmName"] = name
        event["AlarmArn"] = event["AlarmArn"].rsplit(":", 1)[0] + f":{name}"
    elif shape == "eventbridge":
        event["detail"]["alarmName"] = name
        event["resources"] = [event["resources"][0].rsplit(":", 1)[0] + f":{name}"]
    else:
        event["alarmData"]["alarmName"] = name
        event["alarmArn"] = event["alarmArn"].rsplit(":", 1)[0] + f":{name}"
    return event


# --- random and mutated deliveries through the handler (Hypothesis) -----------------------


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture,
                                 HealthCheck.too_slow, HealthCheck.data_too_large])
@given(event=mutated_events(seed_events()))
def test_mutated_deliveries_through_the_handler_are_answered_never_raised(handler_env, event):
    """The table and Slack are real (moto, the local server), so what a parsed hostile
    alarm does downstream (a key, an item, a Slack message) is exercised too."""
    result = handler(event, CONTEXT)

    assert isinstance(result, dict) and isinstance(result["incidents"], list)
    json.dumps(result, ensure_ascii=False).encode("utf-8")  # the answer itself is writable


# --- secrets never reach a log -----------------------------------------------------------


BOT_TOKEN = "xoxb-1234567890-abcdefghijkl-s3cretTokenValue"
SIGNING = "5f1ab2c3d4e5f6a7b8c9d0e1f2a3b4c5-signing"


@pytest.fixture
def everything_logged(caplog: pytest.LogCaptureFixture,
                      monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.LogCaptureFixture]:
    """The root logger and every library's at DEBUG: botocore (request and response
    bodies), urllib3, slack-sdk, Powertools (its JSON lines go to stdout)."""
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "DEBUG")
    monkeypatch.setenv("POWERTOOLS_DEBUG", "true")
    caplog.set_level(logging.DEBUG)
    for name in ("botocore", "boto3", "urllib3", "slack_sdk", "aws_lambda_powertools",
                 "fireline", "playbooks", "handlers"):
        caplog.set_level(logging.DEBUG, logger=name)
    yield caplog


def test_a_whole_run_logs_neither_the_bot_token_nor_the_signing_secret(
        moto, local_slack, tmp_path, monkeypatch, everything_logged, capfd):
    from fireline.incidents import IncidentStore
    from fireline.slack_requests import reset_secrets_cache
    from fireline.timestamps import utc_now
    from handlers import slack as slack_handler
    from tests.support.aws import TABLE
    from tests.support.slack_events import (
        ACCESS_POLICY,
        function_url_event,
        signature,
        slash_body,
    )

    # Both values live in Secrets Manager, read by Fireline at start (setting up the secret
    # is the test's own call, made before anything is captured).
    secret = "fireline/slack"
    aws.client("secretsmanager").create_secret(Name=secret, SecretString=json.dumps(
        {"bot_token": BOT_TOKEN, "signing_secret": SIGNING}))
    access = tmp_path / "access.yaml"
    access.write_text(ACCESS_POLICY)
    for key, value in {"FIRELINE_TABLE": TABLE, "FIRELINE_SLACK_SECRET": secret,
                       "FIRELINE_SLACK_CHANNEL": "#incidents",
                       "FIRELINE_SLACK_API_URL": local_slack.base_url,
                       "FIRELINE_ACCESS": str(access), "POWERTOOLS_METRICS_DISABLED": "true",
                       "AWS_LAMBDA_FUNCTION_NAME": "fireline-slack"}.items():
        monkeypatch.setenv(key, value)
    reset_secrets_cache()
    _runtime.fireline.cache_clear()
    slack_handler.door.cache_clear()
    IncidentStore(TABLE, aws.client, utc_now).create_table()  # without reading the secret
    deploy_versions(aws.client, "checkout", versions=3)
    everything_logged.clear()
    capfd.readouterr()

    # An alarm: revert, thread, and a Slack failure (the channel refused) logged on the way.
    [incident] = handler(sns_lambda_errors_event(function_name="checkout",
                                                 alarm_name="checkout-prod-errors"),
                         CONTEXT)["incidents"]
    # Slash commands signed with the secret, one with a bad signature.
    timestamp = int(time.time())
    body = slash_body(f"status {incident['incident_id']}")
    status = slack_handler.handler(function_url_event(body, timestamp=timestamp, headers={
        "x-slack-signature": signature(body, timestamp, SIGNING)}), CONTEXT)
    forged = slack_handler.handler(function_url_event(body, timestamp=timestamp, headers={
        "x-slack-signature": "v0=" + "0" * 64}), CONTEXT)

    assert incident["status"] == "mitigating"
    assert status["statusCode"] == 200 and forged["statusCode"] == 401
    captured = capfd.readouterr()
    logged = "\n".join([everything_logged.text, captured.out, captured.err,
                        *(str(r.args) for r in everything_logged.records)])
    assert "GetSecretValue" in logged, "the secret was read while everything was captured"
    assert "(a Secrets Manager secret, not logged)" in logged, "botocore's body line, kept out"
    assert "chat.postMessage" in logged
    for value in (BOT_TOKEN, SIGNING):
        assert value not in logged
        assert value.encode().hex() not in logged
        assert json.dumps(value)[1:-1] not in logged
    slack_handler.door.cache_clear()
    _runtime.fireline.cache_clear()
    reset_secrets_cache()
