"""Real-shaped alarm deliveries for the demo, tests and benchmarks.

The templates are real deliveries from the shared corpus: an SNS->Lambda CloudWatch alarm
(a 2023 capture, metric switched to Lambda `Errors`), an EventBridge "CloudWatch Alarm
State Change" (the CloudWatch user guide's single-metric example) and a direct Lambda
alarm action (the aws-lambda-java-libs fixture of the docs' example). The builders change
only the values a scenario needs, so the shape stays what AWS sends.
"""

from __future__ import annotations

import copy
import json
import uuid
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

_HERE = Path(__file__).resolve().parent


@cache
def _template() -> dict[str, Any]:
    return json.loads((_HERE / "sns_lambda_errors.json").read_text(encoding="utf-8"))


def sns_lambda_errors_event(
    *,
    function_name: str,
    alarm_name: str | None = None,
    extra_dimensions: dict[str, str] | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """An SNS->Lambda event carrying a CloudWatch alarm on a function's `Errors` metric."""
    return sns_alarm_event(
        alarm_name=alarm_name or f"{function_name}-errors", namespace="AWS/Lambda",
        metric="Errors", dimensions={"FunctionName": function_name, **(extra_dimensions or {})},
        **fields)


def sns_alarm_event(
    *,
    alarm_name: str,
    namespace: str,
    metric: str,
    dimensions: dict[str, str],
    state: str = "ALARM",
    old_state: str = "OK",
    account_id: str = "123456789012",
    region: str = "us-east-1",
    at: datetime | None = None,
    message_id: str | None = None,
    tags: dict[str, str] | None = None,
) -> dict[str, Any]:
    """An SNS->Lambda event carrying a CloudWatch alarm on any metric (a real SNS
    notification's shape, with these fields put in)."""
    at = at or datetime.now(UTC)
    event = copy.deepcopy(_template())
    record = event["Records"][0]
    sns = record["Sns"]
    topic = f"arn:aws:sns:{region}:{account_id}:fireline-alarms"
    message = json.loads(sns["Message"])
    message.update({
        "AlarmName": alarm_name,
        "AWSAccountId": account_id,
        "NewStateValue": state,
        "OldStateValue": old_state,
        "StateChangeTime": at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}+0000",
        "Region": "US East (N. Virginia)" if region == "us-east-1" else region,
        "AlarmArn": f"arn:aws:cloudwatch:{region}:{account_id}:alarm:{alarm_name}",
        "OKActions": [topic],
        "AlarmActions": [topic],
        "InsufficientDataActions": [topic],
    })
    if state == "OK":
        message["NewStateReason"] = message["NewStateReason"].replace(
            "was greater than", "was not greater than")
    message["Trigger"].update({
        "MetricName": metric, "Namespace": namespace,
        "Dimensions": [{"value": v, "name": k} for k, v in dimensions.items()],
    })
    if tags is not None:
        message["AlarmTags"] = tags
    sns.update({
        "MessageId": message_id or str(uuid.uuid4()),
        "TopicArn": topic,
        "Subject": f'{state}: "{alarm_name}" in {message["Region"]}'[:100],
        "Message": json.dumps(message, separators=(",", ":")),
        "Timestamp": at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z",
    })
    record["EventSubscriptionArn"] = f"{topic}:{uuid.uuid4()}"
    return event


def sqs_batch(*bodies: str) -> dict[str, Any]:
    """An SQS->Lambda event whose records carry `bodies` (e.g. from `sns_document`)."""
    return {"Records": [{
        "messageId": str(uuid.uuid4()),
        "receiptHandle": "AQEB-local",
        "body": body,
        "attributes": {"ApproximateReceiveCount": "1"},
        "messageAttributes": {},
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:fireline-alarms",
        "awsRegion": "us-east-1",
    } for body in bodies]}


def sns_document(event: dict[str, Any]) -> str:
    """The SNS JSON document an SQS subscription receives for an SNS->Lambda `event`."""
    sns = event["Records"][0]["Sns"]
    document = {key: sns[key] for key in ("Type", "MessageId", "TopicArn", "Subject",
                                           "Message", "Timestamp", "SignatureVersion",
                                           "Signature")}
    document["SigningCertURL"] = sns["SigningCertUrl"]
    document["UnsubscribeURL"] = sns["UnsubscribeUrl"]
    # SNS pretty-prints what it hands SQS, with " : " separators.
    return json.dumps(document, indent=2, separators=(",", " : "))


def eventbridge_alarm_event(
    *,
    alarm_name: str,
    namespace: str,
    metric: str,
    dimensions: dict[str, str],
    state: str = "ALARM",
    old_state: str = "OK",
    account_id: str = "123456789012",
    region: str = "us-east-1",
    at: datetime | None = None,
    event_id: str | None = None,
) -> dict[str, Any]:
    """An EventBridge "CloudWatch Alarm State Change" event for one alarm."""
    at = at or datetime.now(UTC)
    event = copy.deepcopy(_template_named("eventbridge_state_change.json"))
    arn = f"arn:aws:cloudwatch:{region}:{account_id}:alarm:{alarm_name}"
    event.update({"id": event_id or str(uuid.uuid4()), "account": account_id,
                  "region": region, "time": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                  "resources": [arn]})
    detail = event["detail"]
    detail["alarmName"] = alarm_name
    _set_metric(detail["configuration"]["metrics"][0], namespace, metric, dimensions)
    detail["state"].update({"value": state, "timestamp": _aws_time(at)})
    detail["previousState"]["value"] = old_state
    return event


def lambda_action_alarm_event(
    *,
    alarm_name: str,
    namespace: str,
    metric: str,
    dimensions: dict[str, str],
    state: str = "ALARM",
    old_state: str = "OK",
    account_id: str = "123456789012",
    region: str = "us-east-1",
    at: datetime | None = None,
) -> dict[str, Any]:
    """CloudWatch's direct Lambda alarm action for one alarm. It has no delivery id: the
    alarm, its state and the state's time identify it, so `at` tells transitions apart."""
    at = at or datetime.now(UTC)
    event = copy.deepcopy(_template_named("lambda_action_metric_alarm.json"))
    event.update({"alarmArn": f"arn:aws:cloudwatch:{region}:{account_id}:alarm:{alarm_name}",
                  "accountId": account_id, "region": region, "time": _aws_time(at)})
    data = event["alarmData"]
    data["alarmName"] = alarm_name
    _set_metric(data["configuration"]["metrics"][0], namespace, metric, dimensions)
    data["state"].update({"value": state, "timestamp": _aws_time(at)})
    data["previousState"]["value"] = old_state
    return event


@cache
def _template_named(name: str) -> dict[str, Any]:
    return json.loads((_HERE / name).read_text(encoding="utf-8"))


def _set_metric(entry: dict[str, Any], namespace: str, metric: str,
                dimensions: dict[str, str]) -> None:
    entry["metricStat"]["metric"] = {"namespace": namespace, "name": metric,
                                     "dimensions": dict(dimensions)}


def _aws_time(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}+0000"
