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
from fireline.local.payloads import sns_lambda_errors_event
from fireline.redeliveries import REMEMBERED_FOR
from handlers import _runtime
from handlers.alarm import handler
from tests.support.aws import AwsCalls

CONTEXT = LambdaContext(function_name="fireline-alarm")
FIRED_AT = datetime.now(UTC) - timedelta(minutes=1)


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


def test_a_new_message_of_the_same_alarm_still_goes_to_the_store(aws_calls):
    deploy_versions(aws.client, "checkout", versions=3)
    [opened] = handler(_alarm(at=FIRED_AT), CONTEXT)["incidents"]
    aws_calls.clear()

    # A new MessageId of the same state change (a second subscription): a new delivery.
    [repeat] = handler(_alarm(at=FIRED_AT), CONTEXT)["incidents"]

    assert repeat["incident_id"] == opened["incident_id"]
    assert aws_calls == {"dynamodb.GetItem": 1}, "it reads the incident it joins"


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
