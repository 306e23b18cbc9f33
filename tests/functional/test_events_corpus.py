"""Every real payload in the shared corpus through `parse_event`.

Skips itself where the corpus folder is absent (see tests/support/events.py).
"""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, get_args

import pytest

from fireline.alarm import AlarmEvent, AlarmKind, AlarmState, DeliveryShape
from fireline.errors import MalformedEvent, UnrecognisedEvent
from fireline.events import parse_event
from tests.support.events import CORPUS, load_event, requires_corpus

REGION_CODE = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d+$")


def _corpus(pattern: str) -> list[str]:
    if not CORPUS.is_dir():
        return []
    return sorted(p.relative_to(CORPUS).as_posix() for p in CORPUS.glob(pattern))


ALARM_FILES = _corpus("cloudwatch_*/*.json")
COUNTEREXAMPLES = _corpus("counterexamples/*.json")

# Recognised deliveries that carry no alarm state change -> [] and one INFO line saying why.
SKIPPED = {
    "cloudwatch_eventbridge/eb_config_change_composite_create_awsdocs.json":
        "Configuration Change ('create')",
    "cloudwatch_eventbridge/eb_config_change_composite_create_suppressor_awsdocs.json":
        "Configuration Change ('create')",
    "cloudwatch_eventbridge/eb_config_change_composite_delete_suppressor_awsdocs.json":
        "Configuration Change ('delete')",
    "cloudwatch_eventbridge/eb_config_change_composite_update_suppressor_awsdocs.json":
        "Configuration Change ('update')",
    "cloudwatch_eventbridge/eb_config_change_metric_math_delete_awsdocs.json":
        "Configuration Change ('delete')",
    "cloudwatch_eventbridge/eb_config_change_metric_update_awsdocs.json":
        "Configuration Change ('update')",
    "cloudwatch_sns/envelope_sns_generic_powertools.lambda.json": "not JSON ('Hello from SNS!')",
    "cloudwatch_sns/envelope_sns_via_sqs_powertools.sqs.json": "no AlarmName and NewStateValue",
    "cloudwatch_sns/sam_template_Sns.mustache.json": "not JSON ('{{{message}}}')",
    "cloudwatch_sns/sam_rendered_Sns_defaults.lambda.json": "not JSON ('example message')",
}

# LocalStack snapshots normalise every timestamp to the word "date": with no time left
# anywhere in the payload the alarm still parses, at the time of receipt, flagged.
NO_USABLE_TIME = {
    "cloudwatch_sns/msg_localstack_recorded_aws_missing_data_breaching_2025.message.json":
        "StateChangeTime",
    "cloudwatch_sns/msg_localstack_recorded_aws_set_alarm_state_2025.message.json":
        "StateChangeTime",
    "cloudwatch_sns/msg_localstack_recorded_aws_threshold_2026.message.json": "StateChangeTime",
    "cloudwatch_lambda_action/la_localstack_recorded_aws_set_alarm_state_2024.json":
        "alarmData.state.timestamp",
}

PARSED = [f for f in ALARM_FILES if f not in SKIPPED]


def _delivery_for(relative: str) -> DeliveryShape:
    folder, name = relative.split("/")
    if folder == "cloudwatch_eventbridge":
        return "eventbridge"
    if folder == "cloudwatch_lambda_action":
        return "lambda-action"
    suffixes: dict[str, DeliveryShape] = {".message.json": "sns-message", ".lambda.json": "sns",
                                          ".sns-http.json": "sns-http", ".sqs.json": "sqs-sns"}
    return next(shape for suffix, shape in suffixes.items() if name.endswith(suffix))


def _assert_sane(alarm: AlarmEvent, relative: str) -> None:
    assert alarm.alarm_name.strip()
    assert alarm.state in get_args(AlarmState)
    assert alarm.previous_state in (*get_args(AlarmState), None)
    assert alarm.state_changed_at.utcoffset() == timedelta(0)
    assert alarm.region is None or REGION_CODE.match(alarm.region)
    assert alarm.kind in get_args(AlarmKind)
    assert alarm.delivery == _delivery_for(relative)
    assert alarm.delivery_id
    assert alarm.time_inferred == (relative in NO_USABLE_TIME)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in alarm.dimensions.items())
    if alarm.alarm_arn is not None:  # kept only when it parses, and then it is the source
        assert alarm.alarm_arn.split(":")[3] == alarm.region
        assert ": " not in alarm.alarm_arn.split(":alarm:")[0]
    if alarm.kind == "anomaly":
        assert alarm.threshold is None


@requires_corpus
def test_the_corpus_has_alarm_files_and_the_skip_lists_are_current():
    assert len(ALARM_FILES) > 40
    assert set(SKIPPED) <= set(ALARM_FILES)
    assert set(NO_USABLE_TIME) <= set(ALARM_FILES)


@pytest.mark.parametrize("relative", PARSED)
def test_every_alarm_file_parses_to_sane_alarms(relative):
    alarms = parse_event(load_event(relative))

    assert len(alarms) == 1
    _assert_sane(alarms[0], relative)


@requires_corpus
@pytest.mark.parametrize(("relative", "why"), sorted(SKIPPED.items()))
def test_recognised_non_alarms_are_skipped_with_one_log_line(relative, why, caplog):
    with caplog.at_level(logging.INFO, logger="fireline.events"):
        assert parse_event(load_event(relative)) == []

    [line] = [r for r in caplog.records if r.name == "fireline.events"]
    assert line.levelno == logging.INFO
    assert why in line.getMessage()


@requires_corpus
@pytest.mark.parametrize(("relative", "field"), sorted(NO_USABLE_TIME.items()))
def test_payloads_without_any_real_timestamp_parse_at_the_time_of_receipt(
        relative, field, caplog):
    before = datetime.now(UTC)

    [alarm] = parse_event(load_event(relative))

    assert alarm.time_inferred is True
    assert before <= alarm.state_changed_at <= datetime.now(UTC)
    assert f"{field} is 'date', not a timestamp" in caplog.text


@pytest.mark.parametrize("relative", COUNTEREXAMPLES)
def test_counterexamples_are_refused_with_a_clear_message(relative):
    with pytest.raises((UnrecognisedEvent, MalformedEvent)) as caught:
        parse_event(load_event(relative))

    assert "not a CloudWatch alarm delivery" in caught.value.message


@requires_corpus
def test_the_hybrid_eventbridge_envelope_names_what_is_wrong():
    event = load_event("counterexamples/hybrid_eventbridge_envelope_with_alarmData_rust.json")

    with pytest.raises(UnrecognisedEvent) as caught:
        parse_event(event)

    assert "'alarmData' instead of 'detail'" in caught.value.message


# --- per-file expectations ------------------------------------------------------------------

EXPECTED: dict[str, dict[str, Any]] = {
    "cloudwatch_sns/sns_single_metric_ec2_networkout_insufficient_to_alarm.lambda.json": {
        "alarm_name": "EXAMPLE", "state": "ALARM", "previous_state": "INSUFFICIENT_DATA",
        "kind": "metric", "delivery": "sns",
        "delivery_id": "95df01b4-ee98-5cb9-9903-4c221d41eb5e",
        "alarm_arn": None, "region": None, "account_id": "123456789012",  # placeholders
        "namespace": "AWS/EC2", "metric_name": "NetworkOut",
        "dimensions": {"InstanceId": "TestInstance"}, "statistic": "AVERAGE",
        "threshold": 0.0, "treat_missing_data": "missing", "tags": None,
        "state_changed_at": datetime(2015, 6, 3, 17, 43, 27, 123000, tzinfo=UTC),
    },
    "cloudwatch_sns/sns_metric_math_ec2_networkout.lambda.json": {
        "kind": "metric-math", "account_id": None, "namespace": "AWS/EC2",
        "metric_name": "NetworkOut", "statistic": "Average", "threshold": 0.0, "tags": None,
    },
    "cloudwatch_sns/sns_lambda_errors_legacy_region_no_arn_2017.lambda.json": {
        "alarm_name": "ImageResize Error", "alarm_arn": None, "region": "ap-northeast-1",
        "account_id": "663889673734", "namespace": "AWS/Lambda", "metric_name": "Errors",
        "dimensions": {"FunctionName": "image_resize"}, "threshold": 2.0,
        "comparison": "GreaterThanThreshold", "treat_missing_data": "nonBreaching",
        "tags": None,
    },
    "cloudwatch_sns/sns_logmetric_alarm_to_ok_notify_slack.lambda.json": {
        "alarm_name": "DBMigrationRequired", "state": "OK", "previous_state": "ALARM",
        "region": "us-east-1",  # from TopicArn; the message says "US (Virginia)"
        "namespace": "LogMetrics", "dimensions": {}, "treat_missing_data": "nonBreaching",
        "description": 'App is reporting "A JPA error occurred(Unable to build '
                       'EntityManagerFactory)"',
    },
    "cloudwatch_sns/sns_composite_alarm_ok_to_alarm_rheoceros.lambda.json": {
        "kind": "composite", "state": "ALARM", "description": None, "namespace": None,
        "metrics": (), "region": "us-east-1", "account_id": "427809481713", "tags": None,
    },
    "cloudwatch_sns/sns_anomaly_alb_latency_alarm_to_ok_2021.lambda.json": {
        "kind": "anomaly", "state": "OK", "threshold": None, "statistic": "p90",
        "comparison": "GreaterThanUpperThreshold", "region": "us-east-2",
        "namespace": "AWS/ApplicationELB", "metric_name": "TargetResponseTime",
        "treat_missing_data": "ignore",
    },
    "cloudwatch_sns/sns_http_ec2_cpu_insufficient_to_alarm_cloudforet.sns-http.json": {
        "delivery": "sns-http", "delivery_id": "e7c82e01-7cd8-5569-9ac1-774d893afc01",
        "alarm_name": "EC2-CPU", "region": "ap-northeast-2", "treat_missing_data": "missing",
        "dimensions": {"InstanceId": "i-0f672ea50a80cda4b"}, "threshold": 15.0,
    },
    "cloudwatch_sns/sns_insufficient_data_s3_lambdr.lambda.json": {
        "state": "INSUFFICIENT_DATA", "previous_state": "ALARM", "region": "ap-southeast-2",
        "statistic": "MAXIMUM",
        "dimensions": {"BucketName": "random-data", "StorageType": "AllStorageTypes"},
    },
    "cloudwatch_sns/msg_anomaly_rds_cpu_alarm_to_ok_2023.message.json": {
        "alarm_name": "RDS Prod - CPU Util", "delivery": "sns-message",
        "alarm_arn": "arn:aws:cloudwatch:us-west-1:12341234:alarm:RDS Prod - CPU Util",
        "account_id": "12341234", "region": "us-west-1", "kind": "anomaly",
        "namespace": "AWS/RDS", "metric_name": "CPUUtilization",
        "dimensions": {"DBInstanceIdentifier": "trailsoffroad-prod-v3"},
        "description": "## RDS Prod - CPU Util %", "tags": None,
    },
    "cloudwatch_sns/msg_minimal_no_trigger_notify_slack.message.json": {
        "alarm_name": "Example", "kind": "metric", "metrics": (), "namespace": None,
        "metric_name": None, "dimensions": {}, "region": "eu-west-1",  # "EU - Ireland"
        "alarm_arn": None, "account_id": "000000000000",
    },
    "cloudwatch_sns/msg_wafv2_blocked_3dims_missing_nonbreaching_2024.message.json": {
        "alarm_arn": None, "account_id": None, "region": "eu-west-1",  # redacted account
        "namespace": "AWS/WAFV2", "metric_name": "BlockedRequests",
        "dimensions": {"WebACL": "project-general-alb-project", "Region": "eu-west-1",
                       "Rule": "alb-project-wafbase-rate-limit-rule"},
    },
    "cloudwatch_sns/msg_metric_math_fill_awsusage_redacted_2020.message.json": {
        "alarm_arn": None, "account_id": None, "region": "us-east-1", "kind": "metric-math",
        "namespace": "AWS/Usage", "metric_name": "CallCount",
        "dimensions": {"Type": "API", "Resource": "DescribeAlarms", "Service": "CloudWatch",
                       "Class": "None"},
    },
    "cloudwatch_eventbridge/eb_state_change_single_metric_awsdocs.json": {
        "delivery": "eventbridge", "delivery_id": "c4c1c1c9-6542-e61b-6ef0-8c4d36933a92",
        "alarm_name": "ServerCpuTooHigh", "kind": "metric", "region": "us-east-1",
        "account_id": "123456789012", "namespace": "AWS/EC2", "metric_name": "CPUUtilization",
        "dimensions": {"InstanceId": "i-12345678901234567"}, "statistic": "Average",
        "threshold": 50.0, "tags": None,
        "state_changed_at": datetime(2019, 10, 2, 17, 4, 40, 989000, tzinfo=UTC),
    },
    "cloudwatch_eventbridge/eb_state_change_metric_math_awsdocs.json": {
        "kind": "metric-math", "metric_name": "NetworkIn", "statistic": "Maximum",
        "previous_state": "INSUFFICIENT_DATA", "threshold": 10000.0,
    },
    "cloudwatch_eventbridge/eb_state_change_anomaly_detection_awsdocs.json": {
        "kind": "anomaly", "threshold": None, "alarm_name": "EC2 CPU Utilization Anomaly",
        "alarm_arn": "arn:aws:cloudwatch:us-east-1:123456789012:alarm:EC2 CPU Utilization "
                     "Anomaly",
    },
    "cloudwatch_eventbridge/eb_state_change_composite_suppressor_awsdocs.json": {
        "kind": "composite", "alarm_rule": "ALARM(ServerCpuTooHigh) OR "
                                           "ALARM(TotalNetworkTrafficTooHigh)",
        "namespace": None,
    },
    "cloudwatch_lambda_action/la_metric_alarm_awsdocs_verbatim_rust.json": {
        "delivery": "lambda-action", "alarm_name": "lambda-demo-metric-alarm",
        "alarm_arn": "arn:aws:cloudwatch:us-east-1:444455556666:alarm:lambda-demo-metric-alarm",
        "state_changed_at": datetime(2023, 8, 4, 12, 36, 15, 490000, tzinfo=UTC),
        "namespace": "AWS/Logs", "metric_name": "CallCount", "reason": "test",
        "reason_data": None, "tags": None,
    },
    "cloudwatch_lambda_action/la_metric_math_real_capture_powertools.json": {
        "alarm_name": "Test alert",
        "alarm_arn": "arn:aws:cloudwatch:eu-west-1:912397435824:alarm:test_alarm",
        "account_id": "912397435824", "region": "eu-west-1", "kind": "metric-math",
        "namespace": "AWS/Lambda", "metric_name": "Invocations", "dimensions": {},
        "statistic": "SampleCount", "threshold": 10.0,
    },
    "cloudwatch_lambda_action/la_composite_alarm_suppressor_awsdocs_clean_java.json": {
        "alarm_name": "CompositeDemo.Main", "kind": "composite",
        "alarm_arn": "arn:aws:cloudwatch:us-east-1:111122223333:alarm:SuppressionDemo.Main",
    },
}


@requires_corpus
@pytest.mark.parametrize("relative", sorted(EXPECTED))
def test_representative_files_give_the_expected_alarm(relative):
    [alarm] = parse_event(load_event(relative))

    expected = EXPECTED[relative]
    assert {field: getattr(alarm, field) for field in expected} == expected


@requires_corpus
def test_composite_triggering_children_come_from_sns_and_from_reason_data():
    [sns] = parse_event(load_event(
        "cloudwatch_sns/sns_composite_alarm_ok_to_alarm_rheoceros.lambda.json"))
    [eventbridge] = parse_event(load_event(
        "cloudwatch_eventbridge/eb_state_change_composite_suppressor_awsdocs.json"))

    assert [(c.arn.rsplit(":", 1)[1], c.state) for c in sns.triggering_children] == [
        ("if-sim-app_427809481713_us-east-1-metric_emitting_node_failure", "ALARM")]
    assert [(c.arn.rsplit(":", 1)[1], c.state, c.timestamp)
            for c in eventbridge.triggering_children] == [
        ("ServerCpuTooHigh", "ALARM", datetime(2022, 7, 22, 15, 57, 45, 394000, tzinfo=UTC))]


# --- the same alarm through different doors agrees ------------------------------------------


def _pairs() -> list[tuple[str, str]]:
    pairs = []
    for message in _corpus("cloudwatch_sns/*.message.json"):
        stem = message.removesuffix(".message.json")
        pairs += [(message, f"{stem}{suffix}") for suffix in (".lambda.json", ".sns-http.json")
                  if (CORPUS / f"{stem}{suffix}").is_file()]
    return pairs


@pytest.mark.parametrize(("message", "envelope"), _pairs())
def test_an_envelope_and_its_bare_message_give_the_same_alarm(message, envelope):
    [bare] = parse_event(load_event(message))
    [wrapped] = parse_event(load_event(envelope))

    ignore = {"delivery", "delivery_id", "region"}
    assert bare.model_dump(exclude=ignore) == wrapped.model_dump(exclude=ignore)
    assert bare.region in (wrapped.region, None)  # the envelope may add a TopicArn region


@requires_corpus
@pytest.mark.parametrize(("verbatim", "clean"), [
    ("la_metric_alarm_awsdocs_verbatim_rust.json", "la_metric_alarm_awsdocs_clean_java.json"),
    ("la_composite_alarm_awsdocs_verbatim_rust.json",
     "la_composite_alarm_suppressor_awsdocs_clean_java.json"),
])
def test_docs_rendering_artefacts_do_not_change_the_alarm(verbatim, clean):
    [artefacts] = parse_event(load_event(f"cloudwatch_lambda_action/{verbatim}"))
    [cleaned] = parse_event(load_event(f"cloudwatch_lambda_action/{clean}"))

    # Only the prose reason keeps the docs' stray spaces; ARN, times and id agree.
    assert artefacts.model_dump(exclude={"reason"}) == cleaned.model_dump(exclude={"reason"})


@requires_corpus
def test_a_corpus_notification_delivered_through_sqs_keeps_its_sns_message_id():
    relative = "cloudwatch_sns/sns_http_ec2_cpu_insufficient_to_alarm_cloudforet.sns-http.json"
    notification = (CORPUS / relative).read_text(encoding="utf-8")
    event = {"Records": [{"messageId": "q-1", "eventSource": "aws:sqs", "body": notification}]}

    [alarm] = parse_event(event)

    assert (alarm.delivery, alarm.delivery_id) == ("sqs-sns",
                                                   "e7c82e01-7cd8-5569-9ac1-774d893afc01")
    assert alarm.model_dump(exclude={"delivery"}) == parse_event(
        json.loads(notification))[0].model_dump(exclude={"delivery"})


@requires_corpus
def test_raw_file_bytes_parse_like_the_decoded_event():
    path: Path = CORPUS / "cloudwatch_eventbridge/eb_state_change_single_metric_awsdocs.json"

    assert parse_event(path.read_bytes()) == parse_event(json.loads(path.read_bytes()))
