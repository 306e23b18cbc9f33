"""`fireline.events` on small events built here: shapes, quirks, refusals. No corpus."""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime
from typing import Any

import pytest

from fireline.alarm import AlarmEvent
from fireline.errors import FirelineError, MalformedEvent, UnrecognisedEvent
from fireline.events import (
    CONFIG_CHANGE,
    STATE_CHANGE,
    parse_alarm_message,
    parse_deliveries,
    parse_event,
)
from tests.support.events import field_paths, replaced

WHEN = "2024-03-19T17:19:14.422+0000"
WHEN_UTC = datetime(2024, 3, 19, 17, 19, 14, 422000, tzinfo=UTC)
ACCOUNT = "123456789012"
ARN = f"arn:aws:cloudwatch:eu-west-1:{ACCOUNT}:alarm:checkout-errors"
TOPIC = f"arn:aws:sns:eu-west-1:{ACCOUNT}:alerts"
DROP = object()  # as a builder value: leave the key out


def _with(base: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
    out = {**base, **fields}
    return {k: v for k, v in out.items() if v is not DROP}


def alarm_message(**fields: Any) -> dict[str, Any]:
    """A single-metric SNS alarm message as CloudWatch writes it (2024 layout)."""
    return _with({
        "AlarmName": "checkout-errors",
        "AlarmDescription": "Errors on checkout",
        "AWSAccountId": ACCOUNT,
        "NewStateValue": "ALARM",
        "NewStateReason": "Threshold Crossed: 1 datapoint [3.0 (19/03/24 17:14:00)] was greater "
                          "than the threshold (1.0).",
        "StateChangeTime": WHEN,
        "Region": "EU (Ireland)",
        "AlarmArn": ARN,
        "OldStateValue": "OK",
        "Trigger": trigger(),
    }, fields)


def trigger(**fields: Any) -> dict[str, Any]:
    return _with({
        "MetricName": "Errors", "Namespace": "AWS/Lambda", "StatisticType": "Statistic",
        "Statistic": "SUM", "Unit": None,
        "Dimensions": [{"value": "checkout", "name": "FunctionName"}],
        "Period": 60, "EvaluationPeriods": 1, "ComparisonOperator": "GreaterThanThreshold",
        "Threshold": 1.0, "TreatMissingData": "notBreaching",
        "EvaluateLowSampleCountPercentile": "",
    }, fields)


def sns_record(message: dict[str, Any] | str, *, message_id: str = "sns-1",
               **sns_fields: Any) -> dict[str, Any]:
    text = message if isinstance(message, str) else json.dumps(message)
    return {
        "EventSource": "aws:sns", "EventVersion": "1.0",
        "EventSubscriptionArn": f"{TOPIC}:0b1c",
        "Sns": _with({"Type": "Notification", "MessageId": message_id, "TopicArn": TOPIC,
                      "Message": text, "Timestamp": "2024-03-19T17:19:14.500Z"}, sns_fields),
    }


def records(*entries: dict[str, Any]) -> dict[str, Any]:
    return {"Records": list(entries)}


def sns_notification(message: dict[str, Any] | str, *, message_id: str = "sns-1",
                     **fields: Any) -> dict[str, Any]:
    """The SNS document an HTTP(S) subscription receives and SQS stores as the body."""
    text = message if isinstance(message, str) else json.dumps(message)
    return _with({"Type": "Notification", "MessageId": message_id, "TopicArn": TOPIC,
                  "Message": text, "Timestamp": "2024-03-19T17:19:14.500Z",
                  "SignatureVersion": "1", "SigningCertURL": "https://sns.example/cert.pem",
                  "UnsubscribeURL": "https://sns.example/unsubscribe"}, fields)


def sqs_record(body: dict[str, Any] | str, *, message_id: str = "sqs-1") -> dict[str, Any]:
    text = body if isinstance(body, str) else json.dumps(body, indent=2)
    return {"messageId": message_id, "receiptHandle": "AQEB", "body": text,
            "eventSource": "aws:sqs", "awsRegion": "eu-west-1"}


def alarm_data(**fields: Any) -> dict[str, Any]:
    """EventBridge `detail` / Lambda action `alarmData` (same camelCase layout)."""
    return _with({
        "alarmName": "checkout-errors",
        "state": {"value": "ALARM", "reason": "Threshold Crossed", "timestamp": WHEN,
                  "reasonData": json.dumps({"version": "1.0", "threshold": 1.0})},
        "previousState": {"value": "OK", "timestamp": "2024-03-19T17:00:00.000+0000"},
        "configuration": {"description": "Errors on checkout", "metrics": [{
            "id": "m1", "returnData": True,
            "metricStat": {"metric": {"namespace": "AWS/Lambda", "name": "Errors",
                                      "dimensions": {"FunctionName": "checkout"}},
                           "period": 60, "stat": "Sum"}}]},
    }, fields)


def eventbridge_event(*, detail_type: str = STATE_CHANGE, **fields: Any) -> dict[str, Any]:
    return _with({
        "version": "0", "id": "eb-1", "detail-type": detail_type, "source": "aws.cloudwatch",
        "account": ACCOUNT, "time": "2024-03-19T17:19:14Z", "region": "eu-west-1",
        "resources": [ARN], "detail": alarm_data(),
    }, fields)


def lambda_action(**fields: Any) -> dict[str, Any]:
    return _with({"source": "aws.cloudwatch", "alarmArn": ARN, "accountId": ACCOUNT,
                  "time": WHEN, "region": "eu-west-1", "alarmData": alarm_data()}, fields)


def only(event: Any) -> AlarmEvent:
    [alarm] = parse_event(event)
    return alarm


# --- delivery shapes -----------------------------------------------------------------------


def test_two_sns_records_give_two_alarms_in_record_order():
    event = records(sns_record(alarm_message(AlarmName="a"), message_id="m-a"),
                    sns_record(alarm_message(AlarmName="b", NewStateValue="OK"), message_id="m-b"))

    alarms = parse_event(event)

    assert [(a.alarm_name, a.state, a.delivery, a.delivery_id) for a in alarms] == [
        ("a", "ALARM", "sns", "m-a"), ("b", "OK", "sns", "m-b")]


def test_an_sqs_batch_of_two_sns_notifications_uses_the_sns_message_ids():
    event = records(sqs_record(sns_notification(alarm_message(AlarmName="a"), message_id="n-a"),
                               message_id="q-a"),
                    sqs_record(sns_notification(alarm_message(AlarmName="b"), message_id="n-b"),
                               message_id="q-b"))

    alarms = parse_event(event)

    assert [(a.alarm_name, a.delivery, a.delivery_id) for a in alarms] == [
        ("a", "sqs-sns", "n-a"), ("b", "sqs-sns", "n-b")]


def test_a_raw_delivery_sqs_body_is_the_alarm_itself_and_uses_the_sqs_message_id():
    alarm = only(records(sqs_record(alarm_message(), message_id="q-raw")))

    assert (alarm.alarm_name, alarm.delivery, alarm.delivery_id) == (
        "checkout-errors", "sqs-sns", "q-raw")


def test_a_bare_sns_notification_is_the_http_subscription_shape():
    alarm = only(sns_notification(alarm_message(), message_id="n-http"))

    assert (alarm.delivery, alarm.delivery_id, alarm.region) == ("sns-http", "n-http",
                                                                 "eu-west-1")


def test_an_eventbridge_state_change():
    alarm = only(eventbridge_event())

    assert (alarm.delivery, alarm.delivery_id, alarm.alarm_arn, alarm.region) == (
        "eventbridge", "eb-1", ARN, "eu-west-1")
    assert (alarm.namespace, alarm.metric_name, alarm.dimensions, alarm.statistic) == (
        "AWS/Lambda", "Errors", {"FunctionName": "checkout"}, "Sum")
    assert (alarm.previous_state, alarm.threshold, alarm.reason_data) == (
        "OK", 1.0, {"version": "1.0", "threshold": 1.0})


def test_a_bare_alarm_message_gets_a_content_hash_that_ignores_key_order_and_spacing():
    message = alarm_message()
    reordered = json.dumps(dict(reversed(list(message.items()))), indent=4)

    first, second = only(message), only(reordered)
    other = only(alarm_message(NewStateValue="OK"))

    assert first.delivery == "sns-message"
    assert re.fullmatch(r"[0-9a-f]{32}", first.delivery_id)
    assert first.delivery_id == second.delivery_id != other.delivery_id


def test_the_lambda_action_id_is_a_stable_hash_of_arn_time_and_state():
    alarm = only(lambda_action())
    again = only(lambda_action())
    with_docs_spaces = only(lambda_action(
        alarmArn=ARN.replace("eu-west-1:", "eu-west-1: "),
        alarmData=alarm_data(state={"value": "ALARM", "timestamp": WHEN.replace(":", ": ")})))
    recovered = only(lambda_action(alarmData=alarm_data(state={"value": "OK",
                                                               "timestamp": WHEN})))

    assert alarm.delivery == "lambda-action"
    assert re.fullmatch(r"[0-9a-f]{32}", alarm.delivery_id)
    assert alarm.delivery_id == again.delivery_id == with_docs_spaces.delivery_id
    assert recovered.delivery_id != alarm.delivery_id


@pytest.mark.parametrize("encode", [json.dumps, lambda e: json.dumps(e).encode("utf-8")])
def test_json_text_and_bytes_are_decoded_first(encode):
    event = records(sns_record(alarm_message()))

    assert parse_event(encode(event)) == parse_event(event)


def test_parse_alarm_message_takes_text_or_a_dict_and_the_caller_s_delivery():
    text = json.dumps(alarm_message())

    from_text = parse_alarm_message(text, delivery="sns", delivery_id="m-1", topic_arn=TOPIC)
    from_dict = parse_alarm_message(alarm_message())

    assert (from_text.delivery, from_text.delivery_id) == ("sns", "m-1")
    assert from_dict.delivery == "sns-message"
    assert from_text.model_dump(exclude={"delivery", "delivery_id"}) == from_dict.model_dump(
        exclude={"delivery", "delivery_id"})


# --- skipped, not refused ------------------------------------------------------------------


def test_a_config_change_is_skipped_with_one_info_line(caplog):
    event = eventbridge_event(detail_type=CONFIG_CHANGE,
                              detail={**alarm_data(), "operation": "update"})

    with caplog.at_level(logging.INFO, logger="fireline.events"):
        assert parse_event(event) == []

    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (logging.INFO, f"skipped eventbridge event: {CONFIG_CHANGE} ('update') is not a state "
                       "change")]


def test_non_alarm_sns_records_are_skipped_without_stopping_the_others(caplog):
    event = records(sns_record("Hello from SNS!"),
                    sns_record({"message": "hello world"}),
                    sns_record(alarm_message(), message_id="m-3"))

    with caplog.at_level(logging.INFO, logger="fireline.events"):
        alarms = parse_event(event)

    assert [a.delivery_id for a in alarms] == ["m-3"]
    assert [r.getMessage().split(":")[0] for r in caplog.records] == [
        "skipped Records[0]", "skipped Records[1]"]


def test_an_sns_subscription_confirmation_is_skipped():
    confirmation = sns_notification("You have chosen to subscribe", Type="SubscriptionConfirmation")

    assert parse_event(confirmation) == []


# --- field mapping -------------------------------------------------------------------------

TAGS = {"team": "payments", "env": "prod"}


@pytest.mark.parametrize("tags", [
    TAGS,
    [{"Key": "team", "Value": "payments"}, {"Key": "env", "Value": "prod"}],
    [{"key": "team", "value": "payments"}, {"value": "prod", "key": "env"}],
])
def test_tags_as_a_map_or_a_key_value_list(tags):
    assert only(alarm_message(AlarmTags=tags)).tags == TAGS
    assert only(eventbridge_event(detail=alarm_data(alarmTags=tags))).tags == TAGS
    assert only(lambda_action(alarmData=alarm_data(alarmTags=tags))).tags == TAGS


@pytest.mark.parametrize(("tags", "expected"), [
    (DROP, None),         # payload says nothing: look them up
    (None, None),
    ("team=payments", None),  # malformed: degrade to "unknown"
    ([], {}),             # known: no tags
    ([{"Key": "team"}, "junk", {"Key": "env", "Value": 1}], {"env": "1"}),
])
def test_absent_or_odd_tags(tags, expected):
    assert only(alarm_message(AlarmTags=tags)).tags == expected


@pytest.mark.parametrize(("legacy", "modern"), [
    ("- TreatMissingData:                    missing", "missing"),
    ("- TreatMissingData: missing", "missing"),
    ("- TreatMissingData:NonBreaching", "nonBreaching"),
    ("- TreatMissingData:                    NonBreaching", "nonBreaching"),
    ("notBreaching", "notBreaching"),
    ("Ignore", "ignore"),
    ("", None),
    (None, None),
    (7, None),
])
def test_treat_missing_data_is_normalised(legacy, modern):
    assert only(alarm_message(Trigger=trigger(TreatMissingData=legacy))).treat_missing_data \
        == modern


def test_dimensions_in_any_key_order_or_api_casing_become_a_string_map():
    dimensions = [{"value": "checkout", "name": "FunctionName"},
                  {"name": "Resource", "value": "checkout:live"},
                  {"Name": "Shard", "Value": 3},
                  {"name": "Broken"}, "junk", {"name": "", "value": "x"}]

    alarm = only(alarm_message(Trigger=trigger(Dimensions=dimensions)))

    assert alarm.dimensions == {"FunctionName": "checkout", "Resource": "checkout:live",
                                "Shard": "3"}
    assert alarm.metrics[0].dimensions == alarm.dimensions


def test_metric_math_reads_pascal_case_metrics_and_picks_the_measured_one():
    metrics = [{"Expression": "FILL(m1, 0)", "Id": "e1", "Label": "Expression1",
                "ReturnData": True},
               {"Id": "m1", "ReturnData": False,
                "MetricStat": {"Metric": {"Dimensions": [{"value": "API", "name": "Type"}],
                                          "MetricName": "CallCount", "Namespace": "AWS/Usage"},
                               "Period": 60, "Stat": "p99"}}]

    alarm = only(alarm_message(Trigger={"Metrics": metrics, "Threshold": 5.0}))

    assert (alarm.kind, alarm.namespace, alarm.metric_name, alarm.statistic) == (
        "metric-math", "AWS/Usage", "CallCount", "p99")
    assert [(m.id, m.expression, m.period, m.return_data) for m in alarm.metrics] == [
        ("e1", "FILL(m1, 0)", None, True), ("m1", None, 60, False)]


def test_anomaly_alarms_have_no_threshold():
    metrics = [{"Id": "m1", "ReturnData": True,
                "MetricStat": {"Metric": {"MetricName": "CPUUtilization",
                                          "Namespace": "AWS/RDS"}, "Stat": "Average"}},
               {"Id": "ad1", "Expression": "ANOMALY_DETECTION_BAND(m1, 2)", "ReturnData": True}]

    alarm = only(alarm_message(Trigger={"Metrics": metrics, "ThresholdMetricId": "ad1",
                                        "Threshold": 3.0}))

    assert (alarm.kind, alarm.threshold, alarm.metric_name) == ("anomaly", None,
                                                               "CPUUtilization")


def test_a_composite_alarm_keeps_its_rule_and_the_readable_children():
    children = [{"Arn": f"{ARN}-child", "State": {"Value": "ALARM", "Timestamp": WHEN}},
                {"Arn": f"{ARN}-late", "State": {"Value": "ALARM", "Timestamp": "soon"}},
                {"State": {"Value": "ALARM"}}, "junk"]

    alarm = only(alarm_message(Trigger=DROP, AlarmRule="ALARM(a) OR ALARM(b)",
                               TriggeringChildren=children))

    assert (alarm.kind, alarm.alarm_rule, alarm.namespace) == (
        "composite", "ALARM(a) OR ALARM(b)", None)
    assert [(c.arn, c.timestamp) for c in alarm.triggering_children] == [
        (f"{ARN}-child", WHEN_UTC), (f"{ARN}-late", None)]


def test_no_trigger_but_triggering_children_is_composite_and_no_trigger_at_all_is_metric():
    assert only(alarm_message(Trigger=DROP, TriggeringChildren=[])).kind == "composite"
    minimal = only(alarm_message(Trigger=DROP, AlarmArn=DROP))
    assert (minimal.kind, minimal.metrics, minimal.namespace) == ("metric", (), None)


def test_an_arn_keeps_spaces_in_the_name_but_loses_docs_spaces_after_colons():
    spaced = "arn:aws:cloudwatch:us-west-1: 123456789012:alarm:RDS Prod - CPU Util"

    alarm = only(alarm_message(AlarmName="RDS Prod - CPU Util", AlarmArn=spaced))

    assert alarm.alarm_arn == "arn:aws:cloudwatch:us-west-1:123456789012:alarm:RDS Prod - CPU Util"
    assert (alarm.region, alarm.account_id) == ("us-west-1", ACCOUNT)


@pytest.mark.parametrize("arn", [
    "arn:aws:cloudwatch:[region Id]:[Account ID]:alarm:Test LocalTime",
    "arn:aws:cloudwatch:REGION:ACCOUNT_NUMBER:alarm:EXAMPLE",
    "arn:<partition>:cloudwatch:<region>:111111111111:alarm:<alarm-name:1>",
    "arn:aws:cloudwatch:eu-west-1:XXXXXXXXXXX:alarm:x",
    f"arn:aws:sns:eu-west-1:{ACCOUNT}:alerts",
    "arn:aws:cloudwatch:eu-west-1:123456789012:alarm:",
    "not an arn", 42, ["arn"],
])
def test_redacted_placeholder_or_foreign_arns_become_none(arn):
    alarm = only(alarm_message(AlarmArn=arn, AWSAccountId="210987654321", Region="EXAMPLE"))

    assert alarm.alarm_arn is None
    assert alarm.account_id == "210987654321"


def test_the_region_comes_from_the_topic_arn_when_the_alarm_arn_is_missing():
    event = records(sns_record(alarm_message(AlarmArn=DROP, Region="US (Virginia)"),
                               TopicArn="arn:aws:sns:ap-northeast-1:123456789012:alerts"))

    assert only(event).region == "ap-northeast-1"


def test_the_region_comes_from_the_subscription_arn_when_the_topic_arn_is_unusable():
    record = sns_record(alarm_message(AlarmArn=DROP, Region="EXAMPLE"), TopicArn="arn:aws:sns:X")
    record["EventSubscriptionArn"] = "arn:aws:sns:us-east-1::ExampleTopic"

    assert only(records(record)).region == "us-east-1"


@pytest.mark.parametrize(("display_name", "code"), [
    ("US East (N. Virginia)", "us-east-1"),
    ("US - N. Virginia", "us-east-1"),
    ("US West (N. California)", "us-west-1"),
    ("Asia Pacific - Tokyo", "ap-northeast-1"),
    ("Asia Pacific (Seoul)", "ap-northeast-2"),
    ("Asia Pacific (Singapore)", "ap-southeast-1"),
    ("EU (Ireland)", "eu-west-1"),
    ("EU - Ireland", "eu-west-1"),
    ("Europe (Ireland)", "eu-west-1"),
    ("EU (London)", "eu-west-2"),
    ("South America (São Paulo)", "sa-east-1"),
    ("Canada (Central)", "ca-central-1"),
    ("EXAMPLE", None),
    ("US (Virginia)", None),
    ("<region-name-full:1>", None),
])
def test_the_region_display_name_is_the_last_resort(display_name, code):
    assert only(alarm_message(AlarmArn=DROP, Region=display_name)).region == code


def test_an_odd_optional_field_degrades_instead_of_dropping_the_alarm():
    alarm = only(alarm_message(AlarmArn="arn:nope", OldStateValue="MAYBE", AlarmDescription="",
                               Trigger=trigger(Threshold="lots", Period=True, Dimensions="x")))
    eventbridge = only(eventbridge_event(resources="nope", detail=alarm_data(
        state={"value": "ALARM", "timestamp": WHEN, "reasonData": "{not json"},
        configuration={"metrics": "nope"})))

    assert (alarm.alarm_name, alarm.alarm_arn, alarm.previous_state, alarm.description) == (
        "checkout-errors", None, None, None)
    assert (alarm.threshold, alarm.metrics[0].period, alarm.dimensions) == (None, None, {})
    assert (eventbridge.alarm_arn, eventbridge.reason_data, eventbridge.metrics) == (
        None, None, ())


def test_an_unparseable_state_change_time_falls_back_to_the_sns_timestamp():
    alarm = only(records(sns_record(alarm_message(StateChangeTime="date"))))

    assert alarm.state_changed_at == datetime(2024, 3, 19, 17, 19, 14, 500000, tzinfo=UTC)


# --- refused: malformed content --------------------------------------------------------------


def _malformed(event: Any) -> MalformedEvent:
    with pytest.raises(MalformedEvent) as caught:
        parse_event(event)
    return caught.value


@pytest.mark.parametrize(("fields", "field"), [
    ({"NewStateValue": "BROKEN"}, "NewStateValue"),
    ({"NewStateValue": None}, "NewStateValue"),
    ({"AlarmName": None}, "AlarmName"),
    ({"AlarmName": "   "}, "AlarmName"),
    ({"AlarmName": "x" * 256}, "AlarmName"),
    ({"AlarmName": {"nested": "name"}}, "AlarmName"),
])
def test_a_bad_required_field_names_its_path(fields, field):
    error = _malformed(records(sns_record(alarm_message(**fields))))

    assert error.field == f"Records[0].Sns.Message.{field}"
    assert error.message.startswith(f"Records[0].Sns.Message.{field} is ")


def test_a_bad_state_says_what_was_expected():
    error = _malformed(alarm_message(NewStateValue="alarm"))

    assert error.message == "NewStateValue is 'alarm', not one of OK, ALARM, INSUFFICIENT_DATA"


def test_a_state_change_time_that_nothing_can_stand_in_for_becomes_the_time_of_receipt():
    before = datetime.now(UTC)

    [alarm] = parse_event(alarm_message(StateChangeTime="date"))

    assert alarm.time_inferred is True
    assert before <= alarm.state_changed_at <= datetime.now(UTC)


def test_one_malformed_record_fails_the_batch_and_names_its_index():
    event = records(sns_record(alarm_message()), sns_record(alarm_message(NewStateValue="?")))

    assert _malformed(event).field == "Records[1].Sns.Message.NewStateValue"


def test_deliveries_keep_the_good_records_of_a_batch_and_refuse_the_bad_one():
    event = records(sns_record(alarm_message()), sns_record(alarm_message(NewStateValue="?")))

    alarms, refused = parse_deliveries(event)

    assert [alarm.state for alarm in alarms] == ["ALARM"]
    [refusal] = refused
    assert refusal.index == 1
    assert refusal.record_id == event["Records"][1]["Sns"]["MessageId"]
    assert refusal.error.field == "Records[1].Sns.Message.NewStateValue"


@pytest.mark.parametrize(("event", "field"), [
    ({"Records": {"Sns": {}}}, "Records"),
    ({"Records": []}, "Records"),
    ({"Records": [sns_record(alarm_message()), "junk"]}, "Records[1]"),
    (records(sqs_record("{not json")), "Records[0].body"),
    (records(sqs_record("[1, 2]")), "Records[0].body"),
    (records({**sqs_record({}), "body": 5}), "Records[0].body"),
    (records(sns_record(alarm_message(), message_id="")), "Records[0].Sns.MessageId"),
    (records({"EventSource": "aws:sns", "Sns": "x"}), "Records[0].Sns"),
    (records(sns_record(alarm_message()) | {"Sns": {"MessageId": "m", "Message": 5}}),
     "Records[0].Sns.Message"),
    (eventbridge_event(detail="x"), "detail"),
    (eventbridge_event(id=DROP), "id"),
    (lambda_action(alarmData=[]), "alarmData"),
    (lambda_action(alarmData=alarm_data(state=DROP)), "alarmData.state.value"),
])
def test_a_known_shape_with_wrong_content_is_malformed_at_a_path(event, field):
    error = _malformed(event)

    assert error.field == field
    assert error.message.startswith(field)


def test_a_message_larger_than_sns_allows_is_refused():
    huge = json.dumps(alarm_message(AlarmDescription="x" * (2 << 20)))

    assert _malformed(records(sns_record(huge))).field == "Records[0].Sns.Message"


# --- refused: not a shape we know ------------------------------------------------------------


@pytest.mark.parametrize("event", [
    {}, [], [records(sns_record(alarm_message()))], 5, 1.5, None, True, object(),
    "not json", "[1, 2]", '"a string"', b"\xff\xfe\x00", "{" * 100,
    {"hello": "world"},
    {"source": "aws.cloudwatch", "alarmArn": ARN},
])
def test_anything_else_is_unrecognised_and_says_so(event):
    with pytest.raises(UnrecognisedEvent) as caught:
        parse_event(event)

    assert caught.value.message.startswith("not a CloudWatch alarm delivery")
    assert len(caught.value.message) < 300


@pytest.mark.parametrize(("event", "names"), [
    (eventbridge_event(source="aws.ec2"), "from source 'aws.ec2'"),
    (eventbridge_event(detail_type="EC2 Instance State-change Notification"),
     "'EC2 Instance State-change Notification'"),
    (eventbridge_event(detail=DROP, alarmData=alarm_data()), "'alarmData' instead of 'detail'"),
    (lambda_action(source="my.app"), "'my.app'"),
    ({**records(sns_record(alarm_message())), "detail-type": STATE_CHANGE},
     "mixes the records and eventbridge shapes"),
    (records({"eventSource": "aws:s3", "s3": {}}), "Records[0] comes from 'aws:s3'"),
    (records(sqs_record({"version": "0", "detail-type": STATE_CHANGE})),
     "neither an SNS notification nor a CloudWatch alarm message"),
])
def test_unrecognised_events_name_what_was_seen(event, names):
    with pytest.raises(UnrecognisedEvent) as caught:
        parse_event(event)

    assert names in caught.value.message


def test_parse_alarm_message_refuses_what_is_not_an_alarm():
    with pytest.raises(UnrecognisedEvent, match="not JSON"):
        parse_alarm_message("Hello from SNS!")
    with pytest.raises(UnrecognisedEvent, match="no AlarmName and NewStateValue"):
        parse_alarm_message({"AlarmName": "x"})
    with pytest.raises(MalformedEvent) as caught:
        parse_alarm_message(alarm_message(NewStateValue="NOPE"))
    assert caught.value.field == "NewStateValue"


# --- hostile input: only FirelineError, never a crash -----------------------------------------


def _nested(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


def test_deeply_nested_json_in_a_message_is_malformed_not_a_crash():
    message = "[" * 5000 + "]" * 5000

    assert _malformed(records(sns_record(message))).field == "Records[0].Sns.Message"
    with pytest.raises(UnrecognisedEvent):
        parse_event("[" * 5000 + "]" * 5000)


@pytest.mark.parametrize("event", [
    {"Records": _nested(5000)},
    records(sns_record(alarm_message()) | {"Sns": _nested(5000)}),
    alarm_message(Trigger=_nested(5000), AlarmTags=_nested(5000)),
    eventbridge_event(detail=alarm_data(configuration=_nested(5000), alarmTags=_nested(5000))),
    lambda_action(alarmData={"alarmName": _nested(5000), "state": _nested(5000)}),
])
def test_deeply_nested_python_structures_raise_only_fireline_errors(event):
    try:
        alarms = parse_event(event)
    except FirelineError:
        return
    assert all(isinstance(a, AlarmEvent) for a in alarms)


GARBAGE: list[Any] = [None, True, 0, -1, 10**400, float("nan"), 1e308, "", "x" * 5000,
                      "\ud800", [], {}, [[{}]], {"a": {"b": []}}, _nested(400)]


def _assert_only_fireline_errors(event: Any) -> None:
    try:
        alarms = parse_event(event)
    except FirelineError as exc:
        assert exc.message
        return
    assert all(isinstance(a, AlarmEvent) for a in alarms)


@pytest.mark.parametrize("build", [alarm_message, eventbridge_event, lambda_action,
                                   lambda: sns_notification(alarm_message())])
def test_garbage_in_any_field_of_a_dict_event_raises_only_fireline_errors(build):
    event = build()
    for path in field_paths(event):
        for garbage in GARBAGE:
            _assert_only_fireline_errors(replaced(event, path, garbage))


def test_garbage_in_any_field_of_an_sns_message_raises_only_fireline_errors():
    message = alarm_message(AlarmTags=TAGS, TriggeringChildren=[
        {"Arn": ARN, "State": {"Value": "ALARM", "Timestamp": WHEN}}])
    for path in field_paths(message):
        for garbage in GARBAGE:
            text = json.dumps(replaced(message, path, garbage))
            _assert_only_fireline_errors(records(sns_record(text)))
            _assert_only_fireline_errors(records(sqs_record(sns_notification(text))))
