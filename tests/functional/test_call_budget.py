"""What the alarm path costs in calls: each AWS call is about a millisecond of boto3's own
work in Lambda (benchmarks/overhead.py), so the counts are the speed goals' budget (issue
8). Counted where they leave: botocore's `before-parameter-build` for AWS (moto answers),
the local Slack server's log for Slack. A count that grows fails here, not in a benchmark
nobody reads.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from fireline import aws
from fireline.local.lambda_context import LambdaContext
from fireline.local.lambda_fixture import deploy_versions
from fireline.local.payloads import sns_lambda_errors_event
from handlers import _runtime
from handlers.alarm import handler

CONTEXT = LambdaContext(function_name="fireline-alarm")
MOTO_ACCOUNT = "123456789012"  # the account moto's resources (and the payloads) are in
FIRED_AT = datetime.now(UTC) - timedelta(minutes=1)


def _alarm(function: str = "checkout") -> dict[str, Any]:
    """The alarm's one state change to ALARM; each call a new message of it (a repeat, as
    a second subscription or SNS and EventBridge both deliver it)."""
    return sns_lambda_errors_event(function_name=function, alarm_name=f"{function}-prod-errors",
                                   at=FIRED_AT)


def test_a_repeat_delivery_reads_the_incident_and_nothing_else(aws_calls, local_slack):
    deploy_versions(aws.client, "checkout", versions=3)
    [opened] = handler(_alarm(), CONTEXT)["incidents"]
    # Lambda may hand the repeat to another container, which has handled nothing.
    _runtime.fireline().redeliveries.forget_everything()
    aws_calls.clear()
    slack_before = len(local_slack.calls)

    [repeat] = handler(_alarm(), CONTEXT)["incidents"]

    assert repeat["incident_id"] == opened["incident_id"] and repeat["opened"] is False
    assert aws_calls == {"dynamodb.GetItem": 1}, "one read, no write"
    assert len(local_slack.calls) == slack_before, "a repeat posts nothing"


def test_a_revert_from_a_new_alarm_stays_within_its_call_budget(aws_calls, local_slack):
    deploy_versions(aws.client, "checkout", versions=3)
    handler(_alarm("warm-up"), CONTEXT)  # the process's one-off calls (its own account)
    aws_calls.clear()
    slack_before = len(local_slack.calls)

    [incident] = handler(_alarm(), CONTEXT)["incidents"]

    assert incident["status"] == "mitigating", "reverted; watching for OK"
    assert aws.client("lambda").get_alias(FunctionName="checkout",
                                          Name="live")["FunctionVersion"] == "2"
    # The remediation itself: read, change, read back.
    assert aws_calls["lambda.UpdateAlias"] == 1
    # The incident document: opened (already claimed by its opener), the Slack thread
    # remembered, the plan, the locks taken, the step and its outcome, the end with the
    # watch: 6 writes (it was 11: a claim, and two or three saves in some phases).
    assert aws_calls["incident document written"] == 6, aws_calls
    calls = sum(aws_calls.values()) - aws_calls["incident document written"]
    assert calls <= 27, aws_calls
    slack = Counter(call.method for call in local_slack.calls[slack_before:])
    # The parent, plan, execute, verified-and-watching (one reply), and the parent's last
    # state: no update saying "mitigating" between (the incident is opened claimed).
    assert slack == {"chat.postMessage": 4, "chat.update": 1}, slack


def test_in_lambda_a_cold_process_takes_its_account_from_the_function_arn(
        aws_calls, monkeypatch):
    """Lambda hands every invocation the function's ARN, which names Fireline's account:
    telling the alarm's account from its own then needs no STS call (nor its client)."""
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "fireline-alarm")
    deploy_versions(aws.client, "checkout", versions=3)
    in_lambda = LambdaContext(function_name="fireline-alarm", account_id=MOTO_ACCOUNT)
    assert in_lambda.invoked_function_arn.split(":")[4] == MOTO_ACCOUNT

    [incident] = handler(_alarm(), in_lambda)["incidents"]

    assert incident["status"] == "mitigating", "the alarm's account is ours: reverted"
    assert not [call for call in aws_calls if call.startswith("sts.")], aws_calls


def test_outside_lambda_the_account_comes_from_sts(aws_calls):
    """The CLI and tests make their context up: its ARN must not decide whose account
    an alarm is in."""
    deploy_versions(aws.client, "checkout", versions=3)
    made_up = LambdaContext(function_name="fireline-alarm", account_id="000000000000")

    [incident] = handler(_alarm(), made_up)["incidents"]

    assert incident["status"] == "mitigating"
    assert aws_calls["sts.GetCallerIdentity"] == 1
