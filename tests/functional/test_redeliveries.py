"""A message delivered again (SNS, EventBridge, SQS and Lambda retry "at least once") is
answered from memory by the process that handled it: no AWS call, no Slack call."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta

import pytest

from fireline import aws
from fireline.app import Fireline
from fireline.errors import StoreUnavailable
from fireline.local.lambda_context import LambdaContext
from fireline.local.lambda_fixture import deploy_versions
from fireline.local.payloads import eventbridge_alarm_event, sns_lambda_errors_event
from fireline.redeliveries import OLD_NEWS_FOR, REMEMBERED_FOR
from handlers import _runtime
from handlers.alarm import handler
from tests.support.aws import AwsCalls

CONTEXT = LambdaContext(function_name="fireline-alarm")
# Whole seconds: the payloads carry milliseconds.
FIRED_AT = (datetime.now(UTC) - timedelta(minutes=1)).replace(microsecond=0)


def _alarm(**fields) -> dict:
    return sns_lambda_errors_event(function_name="checkout", alarm_name="checkout-prod-errors",
                                   **fields)


def test_a_redelivered_message_costs_no_aws_or_slack_call(aws_calls, local_slack):
    deploy_versions(aws.client, "checkout", versions=3)
    event = _alarm()
    [opened] = handler(event, CONTEXT)["incidents"]
    aws_calls.clear()
    slack_before = len(local_slack.calls)

    [again] = handler(copy.deepcopy(event), CONTEXT)["incidents"]

    assert again["incident_id"] == opened["incident_id"]
    assert again["opened"] is False, "the redelivery opened nothing"
    assert not aws_calls, aws_calls
    assert len(local_slack.calls) == slack_before
    assert aws.client("lambda").get_alias(FunctionName="checkout",
                                          Name="live")["FunctionVersion"] == "2", "one revert"


def test_another_message_of_a_state_change_handled_here_is_answered_from_memory(
        aws_calls, local_slack):
    deploy_versions(aws.client, "checkout", versions=3)
    [opened] = handler(_alarm(at=FIRED_AT), CONTEXT)["incidents"]
    aws_calls.clear()
    slack_before = len(local_slack.calls)

    # A new MessageId of the same state change (a second subscription), then the
    # EventBridge twin, then a late copy of an earlier change: old news to this process.
    answers = [handler(event, CONTEXT)["incidents"] for event in (
        _alarm(at=FIRED_AT),
        eventbridge_alarm_event(alarm_name="checkout-prod-errors", namespace="AWS/Lambda",
                                metric="Errors", dimensions={"FunctionName": "checkout"},
                                at=FIRED_AT),
        _alarm(at=FIRED_AT - timedelta(seconds=90)))]

    assert [[a["incident_id"] for a in answer] for answer in answers] == [
        [opened["incident_id"]]] * 3
    assert not any(a["opened"] for answer in answers for a in answer)
    assert not aws_calls, aws_calls
    assert len(local_slack.calls) == slack_before


def test_a_later_state_change_goes_to_the_store(aws_calls):
    deploy_versions(aws.client, "checkout", versions=3)
    [opened] = handler(_alarm(at=FIRED_AT), CONTEXT)["incidents"]
    aws_calls.clear()

    # Later than anything handled here: the alarm left ALARM and came back.
    [later] = handler(_alarm(at=FIRED_AT + timedelta(seconds=30)), CONTEXT)["incidents"]

    assert later["incident_id"] == opened["incident_id"]
    assert aws_calls["dynamodb.GetItem"] == 1, "it reads the incident it joins"
    incident = _runtime.fireline().store.get(opened["incident_id"])
    assert incident.alarm_changed_at == FIRED_AT + timedelta(seconds=30), "and keeps the time"


def test_an_ok_handled_here_makes_the_next_alarm_copy_go_to_the_store(app: Fireline):
    now = [datetime(2026, 11, 24, 3, 0, tzinfo=UTC)]
    app.clock = lambda: now[0]
    quiet = {"function_name": "quiet", "alarm_name": "quiet-errors",
             "tags": {"fireline:playbook": "none"}}
    [first] = app.handle_event(sns_lambda_errors_event(**quiet, at=now[0]))["incidents"]
    [resolved] = app.handle_event(sns_lambda_errors_event(
        **quiet, state="OK", at=now[0] + timedelta(seconds=1)))["incidents"]
    assert resolved["status"] == "resolved"

    # A late copy of the ALARM: the incident stays closed, and the answer says so (not
    # "joins" from before the OK).
    answer = app.handle_event(sns_lambda_errors_event(**quiet, at=now[0]))

    assert answer == {"incidents": []}
    assert app.store.get(first["incident_id"]).status == "resolved"


def test_old_news_after_its_window_goes_to_the_store_again(app: Fireline):
    """What a repeat does besides its read (carry on a stalled run, catch a Slack thread
    up: test_thread_catch_up.py) waits at most this window in a storm of repeats."""
    now = [datetime(2026, 11, 24, 3, 0, tzinfo=UTC)]
    app.clock = lambda: now[0]
    counted = AwsCalls()
    aws.reset_clients()  # clients copy their session's handlers when made
    aws._session().events.register("before-parameter-build", counted)
    quiet = {"function_name": "quiet", "alarm_name": "quiet-errors",
             "tags": {"fireline:playbook": "none"}, "at": now[0]}
    [first] = app.handle_event(sns_lambda_errors_event(**quiet))["incidents"]

    counted.clear()
    now[0] += OLD_NEWS_FOR - timedelta(seconds=1)
    [within] = app.handle_event(sns_lambda_errors_event(**quiet))["incidents"]
    assert within["incident_id"] == first["incident_id"] and not counted, counted

    now[0] += timedelta(seconds=2)
    [late] = app.handle_event(sns_lambda_errors_event(**quiet))["incidents"]
    assert late["incident_id"] == first["incident_id"]
    assert dict(counted) == {"dynamodb.GetItem": 1}, "past the window, the store is asked"


def test_a_redelivery_after_the_window_goes_to_the_store_again(app: Fireline):
    now = [datetime(2026, 11, 24, 3, 0, tzinfo=UTC)]
    app.clock = lambda: now[0]
    counted = AwsCalls()
    aws.reset_clients()  # clients copy their session's handlers when made
    aws._session().events.register("before-parameter-build", counted)
    event = sns_lambda_errors_event(function_name="quiet", alarm_name="quiet-errors",
                                    tags={"fireline:playbook": "none"}, at=now[0])
    [first] = app.handle_event(event)["incidents"]

    counted.clear()
    now[0] += REMEMBERED_FOR - timedelta(seconds=1)
    [within] = app.handle_event(copy.deepcopy(event))["incidents"]
    assert within["incident_id"] == first["incident_id"] and not counted, counted

    now[0] += timedelta(seconds=2)
    [late] = app.handle_event(copy.deepcopy(event))["incidents"]
    assert late["incident_id"] == first["incident_id"]
    assert counted["dynamodb.GetItem"] >= 1, "past the window, the store is asked again"
    assert dict(counted) == {"dynamodb.GetItem": 1}, "and writes nothing: it joins"


def test_a_delivery_whose_handling_failed_is_handled_again(handler_env):
    """The sender retries what raised: the retry must do the work, not be answered from
    memory."""
    deploy_versions(aws.client, "checkout", versions=3)
    event = _alarm()
    app = _runtime.fireline()
    aws.client("dynamodb").delete_table(TableName=app.store.table)
    with pytest.raises(StoreUnavailable):
        handler(event, CONTEXT)
    app.store.create_table()

    [incident] = handler(copy.deepcopy(event), CONTEXT)["incidents"]

    assert incident["opened"] is True
    assert aws.client("lambda").get_alias(FunctionName="checkout",
                                          Name="live")["FunctionVersion"] == "2"
