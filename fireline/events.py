"""Lambda events in, CloudWatch alarm state changes out, whatever shape delivered them.

Shapes (see shared/events/QUIRKS.md): SNS->Lambda, SNS->SQS->Lambda, an SNS HTTP(S) body,
EventBridge "CloudWatch Alarm State Change", CloudWatch's direct Lambda alarm action, and a
bare SNS alarm message. Dispatch is on the combination of top-level keys, never on one key.

Three outcomes, nothing else: alarms; a logged skip (config changes, non-alarm SNS
messages); or a FirelineError: `UnrecognisedEvent` for a shape we do not know,
`MalformedEvent` (with the field path) for a known shape with wrong required content.
Optional content that is wrong degrades to None instead: a notification with less detail
beats a dropped alarm. Untrusted structure is only ever read along known paths, never walked.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated, Any, NamedTuple, TypeVar, cast, get_args

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from pydantic_core import PydanticSerializationError

from fireline._regions import region_from_display_name
from fireline.alarm import (
    AlarmEvent,
    AlarmKind,
    AlarmState,
    DeliveryShape,
    MetricRef,
    TriggeringChild,
    alarm_key,
)
from fireline.errors import FirelineError, MalformedEvent, UnrecognisedEvent
from fireline.problems import first_problem, join_path, show_value
from fireline.timestamps import parse_aws_time, utc_now

log = logging.getLogger(__name__)

STATES: tuple[str, ...] = get_args(AlarmState)
STATE_CHANGE = "CloudWatch Alarm State Change"
CONFIG_CHANGE = "CloudWatch Alarm Configuration Change"

# SNS caps a message at 256 KiB, SQS a body at 1 MiB and Lambda an event at 6 MiB: anything
# larger is not AWS.
_MAX_SNS_MESSAGE = 256 << 10
_MAX_EMBEDDED_JSON = 1 << 20
_MAX_EVENT_TEXT = 6 << 20
_MAX_ALARM_NAME = 255  # CloudWatch's own limit
# CloudWatch keeps a state reason to 1023 characters and a description to 1024; twice that
# never cuts a real one, and keeps a forged one from filling the incident's record.
_MAX_FREE_TEXT = 2048
# Half of a UTF-16 pair: JSON can carry one ("\ud800"), UTF-8 (and so DynamoDB, Slack and
# the logs) cannot.
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_REGION_CODE = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d+$")
_ACCOUNT_ID = re.compile(r"^\d{1,12}$")  # redacted captures shorten it; placeholders are words
_PARTITION = re.compile(r"^aws(-[a-z]+)*$")
_LEGACY_TREAT_MISSING = re.compile(r"^\s*-\s*TreatMissingData:\s*")
# What a bug in reading an odd payload looks like; it must surface as MalformedEvent.
_UNEXPECTED = (TypeError, ValueError, KeyError, AttributeError, IndexError, OverflowError,
               RecursionError)


class _NotAnAlarm(Exception):
    """A recognised delivery that carries no alarm state change: skipped, not refused."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# --- envelopes -----------------------------------------------------------------------------


def _text(value: Any) -> str | None:
    return _unicode(value) if isinstance(value, str) and value.strip() else None


def _unicode(text: str) -> str:
    """`text` with any half surrogate pair replaced by U+FFFD, so it can be stored and shown."""
    return _SURROGATE.sub("\ufffd", text) if _SURROGATE.search(text) else text


_OptText = Annotated[str | None, BeforeValidator(_text)]
_Id = Annotated[str, Field(min_length=1), AfterValidator(_unicode)]


class _AwsPayload(BaseModel):
    # AWS adds fields over time; only the ones read here are declared.
    model_config = ConfigDict(extra="ignore", frozen=True)


_Payload = TypeVar("_Payload", bound=_AwsPayload)


class _SnsNotification(_AwsPayload):
    Type: _OptText = None
    MessageId: _Id
    TopicArn: _OptText = None
    Message: Any = None
    Timestamp: _OptText = None


class _SnsRecord(_AwsPayload):
    EventSubscriptionArn: _OptText = None
    Sns: _SnsNotification


class _SqsRecord(_AwsPayload):
    messageId: _Id
    body: str


class _EventBridgeEvent(_AwsPayload):
    id: _Id
    account: _OptText = None
    time: _OptText = None
    region: _OptText = None
    resources: Any = None
    detail: dict[str, Any]


class _LambdaAlarmAction(_AwsPayload):
    alarmArn: _OptText = None
    accountId: _OptText = None
    time: _OptText = None
    region: _OptText = None
    alarmData: dict[str, Any]


# --- public API ----------------------------------------------------------------------------


class Refusal(NamedTuple):
    """One record of a batch that could not be read; the others go on without it."""

    index: int
    record_id: str | None  # the SQS messageId or SNS MessageId, when the record has one
    error: FirelineError
    from_sqs: bool = False  # SQS can take it back (a batch item failure); SNS cannot


class Deliveries(NamedTuple):
    alarms: list[AlarmEvent]
    refused: list[Refusal]


def parse_event(event: Any) -> list[AlarmEvent]:
    """Any Lambda event -> the alarm state changes it carries (possibly an empty list).

    Strict: a batch with one unreadable record raises that record's error.
    """
    alarms, refused = parse_deliveries(event)
    if refused:
        raise refused[0].error
    return alarms


def parse_deliveries(event: Any) -> Deliveries:
    """Like parse_event, but a batch's unreadable records are refused one by one.

    A handler keeps the good alarms of a batch and reports the bad records (for SQS, as
    batch item failures), so one malformed record never costs the others. An event that
    is not a batch is refused whole, by raising.
    """
    event = _decoded(event)
    if not isinstance(event, dict):
        raise UnrecognisedEvent("not a CloudWatch alarm delivery: the event is "
                                f"{show_value(event)}, not a JSON object")
    shape = _shape(event)
    if shape == "records":
        return _from_records(event["Records"])
    try:
        with _reading(""):
            return Deliveries([_from_single(shape, event)], [])
    except _NotAnAlarm as skip:
        log.info("skipped %s event: %s", shape, skip.reason)
        return Deliveries([], [])


def parse_alarm_message(
    message: str | dict[str, Any],
    *,
    delivery: DeliveryShape = "sns-message",
    delivery_id: str | None = None,
    topic_arn: str | None = None,
) -> AlarmEvent:
    """A bare SNS alarm message (the JSON inside Sns.Message)."""
    if not isinstance(message, str | dict):
        raise UnrecognisedEvent(f"an SNS alarm message is JSON text or an object, not "
                                f"{show_value(message)}")
    with _reading(""):
        try:
            decoded = _alarm_message(message, "")
        except _NotAnAlarm as skip:
            raise UnrecognisedEvent(f"not a CloudWatch alarm message: {skip.reason}") from None
        return _from_sns_message(decoded, delivery=delivery, delivery_id=delivery_id, path="",
                                 topic_arn=topic_arn)


# --- dispatch ------------------------------------------------------------------------------


def _decoded(event: Any) -> Any:
    """JSON text (from the CLI or a test) -> the object Lambda would have handed us."""
    if isinstance(event, bytes | bytearray | memoryview):
        try:
            event = bytes(event).decode("utf-8-sig")
        except UnicodeDecodeError:
            raise UnrecognisedEvent("not a CloudWatch alarm delivery: the event bytes are "
                                    "not UTF-8 text") from None
    if not isinstance(event, str):
        return event
    if len(event) > _MAX_EVENT_TEXT:
        raise UnrecognisedEvent(f"not a CloudWatch alarm delivery: {len(event)} characters "
                                "is more than a Lambda event can be")
    try:
        return json.loads(event.lstrip("\ufeff"))
    except RecursionError:
        raise UnrecognisedEvent("not a CloudWatch alarm delivery: the event text is nested "
                                "too deeply to be JSON from AWS") from None
    except ValueError:
        raise UnrecognisedEvent(f"not a CloudWatch alarm delivery: the event text is not "
                                f"JSON ({show_value(event)})") from None


def _shape(event: dict[str, Any]) -> str:
    markers = {
        "records": "Records" in event,
        "eventbridge": "detail-type" in event,
        "lambda-action": "alarmData" in event and "detail-type" not in event,
        "sns-http": "Type" in event and "Message" in event
        and ("MessageId" in event or "TopicArn" in event),
        "sns-message": "AlarmName" in event and "NewStateValue" in event,
    }
    found = [name for name, present in markers.items() if present]
    if len(found) == 1:
        return found[0]
    if found:
        raise UnrecognisedEvent(f"not a CloudWatch alarm delivery: the event mixes the "
                                f"{' and '.join(found)} shapes ({_keys(event)})")
    raise UnrecognisedEvent(
        "not a CloudWatch alarm delivery (SNS or SQS Records, an SNS notification, "
        "EventBridge, a Lambda alarm action or an SNS alarm message); " + _keys(event))


def _from_single(shape: str, event: dict[str, Any]) -> AlarmEvent:
    if shape == "eventbridge":
        return _from_eventbridge(event)
    if shape == "lambda-action":
        return _from_lambda_action(event)
    if shape == "sns-http":
        notification = _validated(_SnsNotification, event, "")
        return _from_notification(notification, delivery="sns-http", path="")
    return _from_sns_message(event, delivery="sns-message", delivery_id=None, path="")


def _from_records(records: Any) -> Deliveries:
    if not isinstance(records, list):
        raise MalformedEvent(f"Records is {show_value(records)}, not a list", field="Records")
    if not records:
        raise MalformedEvent("Records is empty: no delivery carries no records", field="Records")
    alarms: list[AlarmEvent] = []
    refused: list[Refusal] = []
    for index, record in enumerate(records):
        path = f"Records[{index}]"
        try:
            with _reading(path):
                alarms.append(_from_record(record, path))
        except _NotAnAlarm as skip:
            log.info("skipped %s: %s", path, skip.reason)
        except FirelineError as error:
            from_sqs = isinstance(record, dict) and record.get("eventSource") == "aws:sqs"
            refused.append(Refusal(index, _record_id(record), error, from_sqs))
    return Deliveries(alarms, refused)


def _record_id(record: Any) -> str | None:
    if not isinstance(record, dict):
        return None
    sns = record.get("Sns")
    candidate = record.get("messageId") or (sns.get("MessageId") if isinstance(sns, dict)
                                            else None)
    return candidate if isinstance(candidate, str) else None


def _from_record(record: Any, path: str) -> AlarmEvent:
    if not isinstance(record, dict):
        raise MalformedEvent(f"{path} is {show_value(record)}, not an object", field=path)
    source = record.get("EventSource", record.get("eventSource"))
    if source == "aws:sns" or (source is None and "Sns" in record):
        sns_record = _validated(_SnsRecord, record, path)
        return _from_notification(sns_record.Sns, delivery="sns", path=f"{path}.Sns",
                                  subscription_arn=sns_record.EventSubscriptionArn)
    if source == "aws:sqs":
        return _from_sqs_record(_validated(_SqsRecord, record, path), path)
    raise UnrecognisedEvent(f"{path} comes from {show_value(source)}, not from SNS or SQS: not a "
                            "CloudWatch alarm delivery")


def _from_sqs_record(record: _SqsRecord, path: str) -> AlarmEvent:
    path = f"{path}.body"
    try:
        body = _loads(record.body, path)
    except ValueError:
        raise MalformedEvent(f"{path} is not JSON ({show_value(record.body)})",
                             field=path) from None
    if not isinstance(body, dict):
        raise MalformedEvent(f"{path} is JSON {show_value(body)}, not an object", field=path)
    if _looks_like_alarm(body):  # raw message delivery: no SNS envelope around the alarm
        return _from_sns_message(body, delivery="sqs-sns", delivery_id=record.messageId,
                                 path=path)
    if "Message" in body and "Type" in body:
        notification = _validated(_SnsNotification, body, path)
        return _from_notification(notification, delivery="sqs-sns", path=path)
    raise UnrecognisedEvent(f"{path} is neither an SNS notification nor a CloudWatch alarm "
                            f"message; {_keys(body)}")


def _from_notification(
    notification: _SnsNotification, *, delivery: DeliveryShape, path: str,
    subscription_arn: str | None = None,
) -> AlarmEvent:
    if notification.Type not in (None, "Notification"):
        raise _NotAnAlarm(f"SNS {notification.Type} is not a notification")
    message_path = join_path(path, "Message")
    message = _alarm_message(notification.Message, message_path)
    return _from_sns_message(
        message, delivery=delivery, delivery_id=notification.MessageId, path=message_path,
        topic_arn=notification.TopicArn, subscription_arn=subscription_arn,
        sent_at=notification.Timestamp)


def _alarm_message(raw: Any, path: str) -> dict[str, Any]:
    if isinstance(raw, dict):
        message = raw
    elif isinstance(raw, str):
        size = len(raw.encode("utf-8", "surrogatepass"))
        if size > _MAX_SNS_MESSAGE:
            raise MalformedEvent(f"{path or 'message'} is {size} bytes; SNS carries at most "
                                 f"{_MAX_SNS_MESSAGE >> 10} KiB", field=path or None)
        try:
            message = _loads(raw, path or "message")
        except ValueError:
            raise _NotAnAlarm(f"SNS message is not JSON ({show_value(raw)})") from None
    else:
        raise MalformedEvent(f"{path or 'message'} is {show_value(raw)}, not a string",
                             field=path or None)
    if not isinstance(message, dict):
        raise _NotAnAlarm(f"SNS message is JSON {show_value(message)}, not an alarm")
    if not _looks_like_alarm(message):
        raise _NotAnAlarm(f"SNS message has no AlarmName and NewStateValue; {_keys(message)}")
    return message


def _from_eventbridge(event: dict[str, Any]) -> AlarmEvent:
    source, detail_type = event.get("source"), event.get("detail-type")
    if "detail" not in event and "alarmData" in event:
        raise UnrecognisedEvent(
            f"not a CloudWatch alarm delivery: an EventBridge envelope ({show_value(detail_type)}) "
            "carrying 'alarmData' instead of 'detail' mixes the EventBridge and Lambda alarm "
            "action shapes; no AWS service sends that")
    if source != "aws.cloudwatch" or detail_type not in (STATE_CHANGE, CONFIG_CHANGE):
        raise UnrecognisedEvent(f"not a CloudWatch alarm delivery: EventBridge event "
                                f"{show_value(detail_type)} from source {show_value(source)}")
    if detail_type == CONFIG_CHANGE:
        detail = event.get("detail")
        operation = detail.get("operation") if isinstance(detail, dict) else None
        raise _NotAnAlarm(f"{CONFIG_CHANGE} ({show_value(operation)}) is not a state change")
    envelope = _validated(_EventBridgeEvent, event, "")
    resources = envelope.resources if isinstance(envelope.resources, list) else []
    return _from_alarm_data(
        envelope.detail, delivery="eventbridge", delivery_id=envelope.id, path="detail",
        arn=resources[0] if resources else None, account=envelope.account,
        region=envelope.region, sent_at=envelope.time)


def _from_lambda_action(event: dict[str, Any]) -> AlarmEvent:
    if event.get("source", "aws.cloudwatch") != "aws.cloudwatch":
        raise UnrecognisedEvent(f"not a CloudWatch alarm delivery: 'alarmData' from source "
                                f"{show_value(event.get('source'))}")
    action = _validated(_LambdaAlarmAction, event, "")
    state = _mapping(action.alarmData.get("state"))
    # The action has no delivery id: hash what identifies the transition, normalised so a
    # retry (or a docs copy with stray spaces) of the same transition gets the same id.
    arn, changed_at = _alarm_arn(action.alarmArn), _time(state.get("timestamp"))
    identity = [arn.arn if arn else action.alarmArn,
                changed_at.isoformat() if changed_at else _text(state.get("timestamp")),
                _text(state.get("value"))]
    return _from_alarm_data(
        action.alarmData, delivery="lambda-action", path="alarmData",
        delivery_id=_digest("\n".join(part or "" for part in identity)),
        arn=action.alarmArn, account=action.accountId, region=action.region,
        sent_at=action.time)


# --- alarm content -------------------------------------------------------------------------


def _from_sns_message(
    message: dict[str, Any], *, delivery: DeliveryShape, delivery_id: str | None, path: str,
    topic_arn: str | None = None, subscription_arn: str | None = None,
    sent_at: str | None = None,
) -> AlarmEvent:
    trigger = _mapping(message.get("Trigger"))
    single = _single_metric(trigger)
    metrics = (single,) if single else _metrics(trigger.get("Metrics"))
    alarm_rule = _text(message.get("AlarmRule"))
    children = message.get("TriggeringChildren")
    composite = alarm_rule is not None or (not trigger and isinstance(children, list))
    name = _alarm_name(message.get("AlarmName"), join_path(path, "AlarmName"))
    arn = _alarm_arn(message.get("AlarmArn"))
    account = arn.account if arn else _account_id(message.get("AWSAccountId"))
    region = ((arn.region if arn else None) or _sns_region(topic_arn)
              or _sns_region(subscription_arn) or region_from_display_name(message.get("Region")))
    with _of_alarm(alarm_key(account, region, name)):
        return _assemble(
            delivery=delivery,
            delivery_id=delivery_id or _digest(_canonical(message)),
            alarm_name=name,
            arn=arn,
            account_id=account,
            region=region,
            state=_state(message.get("NewStateValue"), join_path(path, "NewStateValue")),
            previous_state=_optional_state(message.get("OldStateValue")),
            reason=_free_text(message.get("NewStateReason")) or "",
            reason_data=None,
            **_state_time(_changed_at(message.get("StateChangeTime"), sent_at,
                                      field=join_path(path, "StateChangeTime"))),
            description=_free_text(message.get("AlarmDescription")),
            kind=_kind(composite=composite, anomaly=trigger.get("ThresholdMetricId") is not None,
                       metrics=metrics, single=single is not None),
            metrics=metrics,
            single=single,
            threshold=_number(trigger.get("Threshold")),
            comparison=_text(trigger.get("ComparisonOperator")),
            treat_missing_data=_treat_missing_data(trigger.get("TreatMissingData")),
            alarm_rule=alarm_rule,
            triggering_children=_children(children),
            tags=_tags(message.get("AlarmTags")),
        )


def _from_alarm_data(
    data: dict[str, Any], *, delivery: DeliveryShape, delivery_id: str, path: str,
    arn: Any, account: str | None, region: str | None, sent_at: str | None,
) -> AlarmEvent:
    """EventBridge `detail` and the Lambda action's `alarmData` share one camelCase layout."""
    state = _mapping(data.get("state"))
    config = _mapping(data.get("configuration"))
    reason_data = _reason_data(state.get("reasonData"))
    triggering = (reason_data or {}).get("triggeringAlarms")
    metrics = _metrics(config.get("metrics"))
    alarm_rule = _text(config.get("alarmRule"))
    threshold = _number(config.get("threshold"))
    name = _alarm_name(data.get("alarmName"), f"{path}.alarmName")
    parsed_arn = _alarm_arn(arn)
    account_id = parsed_arn.account if parsed_arn else _account_id(account)
    region_code = (parsed_arn.region if parsed_arn else None) or _region_code(region)
    with _of_alarm(alarm_key(account_id, region_code, name)):
        return _assemble(
            delivery=delivery,
            delivery_id=delivery_id,
            alarm_name=name,
            arn=parsed_arn,
            account_id=account_id,
            region=region_code,
            state=_state(state.get("value"), f"{path}.state.value"),
            previous_state=_optional_state(_mapping(data.get("previousState")).get("value")),
            reason=_free_text(state.get("reason")) or "",
            reason_data=reason_data,
            **_state_time(_changed_at(state.get("timestamp"), sent_at,
                                      field=f"{path}.state.timestamp")),
            description=_free_text(config.get("description")),
            kind=_kind(composite=alarm_rule is not None
                       or (not metrics and isinstance(triggering, list)),
                       anomaly=config.get("thresholdMetricId") is not None,
                       metrics=metrics, single=False),
            metrics=metrics,
            single=None,
            threshold=threshold if threshold is not None
            else _number((reason_data or {}).get("threshold")),
            comparison=_text(config.get("comparisonOperator")),
            treat_missing_data=_treat_missing_data(config.get("treatMissingData")),
            alarm_rule=alarm_rule,
            triggering_children=_children(triggering),
            tags=_tags(data.get("alarmTags")),
        )


class _AlarmArn(NamedTuple):
    arn: str
    region: str
    account: str


def _assemble(
    *, arn: _AlarmArn | None, metrics: tuple[MetricRef, ...], single: MetricRef | None,
    kind: AlarmKind, threshold: float | None, **fields: Any,
) -> AlarmEvent:
    primary = single or _primary(metrics)
    alarm = AlarmEvent(
        alarm_arn=arn.arn if arn else None,
        kind=kind,
        metrics=metrics,
        namespace=primary.namespace if primary else None,
        metric_name=primary.name if primary else None,
        dimensions=dict(primary.dimensions) if primary else {},
        statistic=primary.stat if primary else None,
        # An anomaly band has no fixed threshold; a number here would mislead.
        threshold=None if kind == "anomaly" else threshold,
        **fields,
    )
    try:
        # Whatever is kept of the alarm is stored, posted and logged: it must be writable.
        # (Text fields are made so as they are read; this catches what is not a text field.)
        alarm.model_dump_json()
    except PydanticSerializationError:
        raise MalformedEvent("the alarm carries text that is not valid Unicode (half of a "
                             "UTF-16 surrogate pair)") from None
    return alarm


def _kind(*, composite: bool, anomaly: bool, metrics: tuple[MetricRef, ...],
          single: bool) -> AlarmKind:
    if composite:
        return "composite"
    if anomaly or any("ANOMALY_DETECTION_BAND" in (m.expression or "").upper()
                      for m in metrics):
        return "anomaly"
    if not single and (len(metrics) > 1 or any(m.expression for m in metrics)):
        return "metric-math"
    return "metric"


def _single_metric(trigger: dict[str, Any]) -> MetricRef | None:
    """A single-metric SNS Trigger keeps its metric at the top level, not in Metrics[]."""
    name, namespace = _text(trigger.get("MetricName")), _text(trigger.get("Namespace"))
    if name is None and namespace is None:
        return None
    return MetricRef(
        namespace=namespace, name=name, dimensions=_string_map(trigger.get("Dimensions")),
        stat=_text(trigger.get("Statistic")) or _text(trigger.get("ExtendedStatistic")),
        period=_int(trigger.get("Period")))


def _metrics(entries: Any) -> tuple[MetricRef, ...]:
    """SNS `Trigger.Metrics` (PascalCase) and `configuration.metrics` (camelCase) alike."""
    if not isinstance(entries, list):
        return ()
    return tuple(_metric(entry) for entry in entries if isinstance(entry, dict))


def _metric(entry: dict[str, Any]) -> MetricRef:
    stat = _mapping(_pick(entry, "MetricStat", "metricStat"))
    metric = _mapping(_pick(stat, "Metric", "metric"))
    return_data = _pick(entry, "ReturnData", "returnData")
    return MetricRef(
        id=_text(_pick(entry, "Id", "id")),
        namespace=_text(_pick(metric, "Namespace", "namespace")),
        name=_text(_pick(metric, "MetricName", "name")),
        dimensions=_string_map(_pick(metric, "Dimensions", "dimensions")),
        stat=_text(_pick(stat, "Stat", "stat")),
        period=_int(_pick(stat, "Period", "period")) or _int(_pick(entry, "Period", "period")),
        expression=_text(_pick(entry, "Expression", "expression")),
        label=_text(_pick(entry, "Label", "label")),
        return_data=return_data if isinstance(return_data, bool) else None,
    )


def _primary(metrics: tuple[MetricRef, ...]) -> MetricRef | None:
    measured = [m for m in metrics if m.name or m.namespace]
    return next((m for m in measured if m.return_data), measured[0] if measured else None)


def _children(entries: Any) -> tuple[TriggeringChild, ...]:
    """SNS `TriggeringChildren[{Arn, State}]` and reasonData `triggeringAlarms[{arn, state}]`."""
    if not isinstance(entries, list):
        return ()
    children = []
    for entry in entries:
        if not isinstance(entry, dict) or (arn := _text(_pick(entry, "Arn", "arn"))) is None:
            continue
        state = _mapping(_pick(entry, "State", "state"))
        children.append(TriggeringChild(
            arn=arn.strip(), state=_text(_pick(state, "Value", "value")),
            timestamp=_time(_pick(state, "Timestamp", "timestamp"))))
    return tuple(children)


# --- required fields -----------------------------------------------------------------------


def _alarm_name(value: Any, field: str) -> str:
    if isinstance(value, str) and _SURROGATE.search(value):
        raise MalformedEvent(f"{field} is not valid Unicode text (it has half of a UTF-16 "
                             "surrogate pair)", field=field)
    name = _text(value)
    if name is None:
        raise MalformedEvent(f"{field} is {show_value(value)}: an alarm needs a name", field=field)
    if len(name) > _MAX_ALARM_NAME:
        raise MalformedEvent(f"{field} is {len(name)} characters; CloudWatch allows "
                             f"{_MAX_ALARM_NAME}", field=field)
    return name


def _state(value: Any, field: str) -> AlarmState:
    if value not in STATES:
        raise MalformedEvent(f"{field} is {show_value(value)}, not one of {', '.join(STATES)}",
                             field=field)
    return cast(AlarmState, value)


def _optional_state(value: Any) -> AlarmState | None:
    return value if value in STATES else None


def _state_time(found: tuple[datetime, bool]) -> dict[str, Any]:
    return {"state_changed_at": found[0], "time_inferred": found[1]}


def _changed_at(value: Any, fallback: Any, *, field: str) -> tuple[datetime, bool]:
    """The state change time, and whether it had to be inferred.

    An alarm whose every timestamp is unusable (LocalStack snapshots write the word "date")
    is still an alarm: it is taken as changing now, flagged, and logged, never dropped.
    """
    moment = _time(value) or _time(fallback)
    if moment is not None:
        return moment, False
    log.warning("%s is %s, not a timestamp, and the envelope has no usable time: "
                "taking the time of receipt", field, show_value(value))
    return utc_now(), True


# --- optional fields: wrong means None, never an error ---------------------------------------


def _alarm_arn(value: Any) -> _AlarmArn | None:
    """`arn:<partition>:cloudwatch:<region>:<account>:alarm:<name>`, docs spaces removed."""
    if not isinstance(value, str) or len(value) > 1600:
        return None
    parts = value.strip().split(":", 6)
    if len(parts) != 7:
        return None
    # Docs render "us-east-1: 444455556666"; the name itself may contain spaces: keep those.
    head, name = [part.strip() for part in parts[:6]], parts[6]
    arn, partition, service, region, account, resource = head
    if (arn, service, resource) != ("arn", "cloudwatch", "alarm") or not name.strip():
        return None
    if not (_PARTITION.match(partition) and _REGION_CODE.match(region)
            and _ACCOUNT_ID.match(account)):
        return None
    return _AlarmArn(":".join([*head, name]), region, account)


def _sns_region(arn: str | None) -> str | None:
    parts = arn.split(":") if arn else []
    if len(parts) < 4 or parts[0] != "arn" or parts[2] != "sns":
        return None
    return _region_code(parts[3].strip())


def _region_code(value: Any) -> str | None:
    return value if isinstance(value, str) and _REGION_CODE.match(value) else None


def _account_id(value: Any) -> str | None:
    return value if isinstance(value, str) and _ACCOUNT_ID.match(value) else None


def _treat_missing_data(value: Any) -> str | None:
    """"- TreatMissingData:  NonBreaching" (legacy) -> "nonBreaching" (modern spelling)."""
    text = _text(value)
    if text is None:
        return None
    text = _LEGACY_TREAT_MISSING.sub("", text).strip()
    return text[:1].lower() + text[1:] if text else None


def _reason_data(value: Any) -> dict[str, Any] | None:
    if isinstance(value, dict):
        decoded = value
    elif not isinstance(value, str) or len(value) > _MAX_EMBEDDED_JSON:
        return None
    else:
        try:
            decoded = json.loads(value)
        except (ValueError, RecursionError):
            return None
    if not isinstance(decoded, dict):
        return None
    try:  # only what could be written again (no half surrogate pairs, no endless nesting)
        json.dumps(decoded, ensure_ascii=False).encode("utf-8")
    except (ValueError, TypeError, RecursionError):
        return None
    return decoded


def _free_text(value: Any) -> str | None:
    """A reason or a description: text, cut to a length no real alarm reaches."""
    text = _text(value)
    if text is None or len(text) <= _MAX_FREE_TEXT:
        return text
    return text[:_MAX_FREE_TEXT - 1] + "…"


def _tags(value: Any) -> dict[str, str] | None:
    """None means "the payload said nothing about tags" (look them up); {} means "none"."""
    if not isinstance(value, dict | list):
        return None
    return _string_map(value, key="key")


def _string_map(value: Any, *, key: str = "name") -> dict[str, str]:
    """An object map, or a list of {name, value} / {Name, Value} / {Key, Value} pairs."""
    if isinstance(value, dict):
        pairs = list(value.items())
    elif isinstance(value, list):
        pairs = []
        for entry in value:
            if isinstance(entry, dict):
                folded = {k.lower(): v for k, v in entry.items() if isinstance(k, str)}
                pairs.append((folded.get(key), folded.get("value")))
    else:
        return {}
    out = {}
    for name, item in pairs:
        text = _scalar_text(item)
        if isinstance(name, str) and name and text is not None:
            out[_unicode(name)] = text
    return out


def _scalar_text(value: Any) -> str | None:
    if isinstance(value, str):
        return _unicode(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float) and math.isfinite(value):
        try:
            return str(value)
        except ValueError:  # an int too long to print
            return None
    return None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = float(value)
    except (ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value if isinstance(value, int) else None


def _time(value: Any) -> datetime | None:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    if isinstance(value, str) and len(value) > 64:
        return None
    try:
        return parse_aws_time(value)
    except (ValueError, OverflowError, OSError):
        return None


# --- plumbing ------------------------------------------------------------------------------


@contextmanager
def _of_alarm(key: str) -> Iterator[None]:
    """A refusal raised while reading an alarm whose identity is known says which alarm, so
    the alarm's open incident can note it."""
    try:
        yield
    except MalformedEvent as exc:
        if exc.alarm_key is None:
            exc.alarm_key = key
        raise


@contextmanager
def _reading(path: str) -> Iterator[None]:
    """Turn a bug-shaped exception from odd input into MalformedEvent naming where."""
    try:
        yield
    except FirelineError:
        raise
    except _UNEXPECTED as exc:
        where = path or "event"
        raise MalformedEvent(f"{where} cannot be read ({type(exc).__name__}); the payload "
                             "does not have the structure AWS sends", field=path or None) from None


def _validated(model: type[_Payload], data: dict[str, Any], path: str) -> _Payload:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        field, problem = first_problem(exc, path)
    raise MalformedEvent(f"{field or 'event'} {problem}", field=field or None)

def _loads(text: str, path: str) -> Any:
    """json.loads for JSON nested in a string; ValueError when it is not JSON."""
    if len(text) > _MAX_EMBEDDED_JSON:
        raise MalformedEvent(f"{path} is {len(text)} characters, more than SNS or SQS carry",
                             field=path)
    try:
        return json.loads(text)
    except RecursionError:
        raise MalformedEvent(f"{path} is nested too deeply to decode", field=path) from None


def _looks_like_alarm(message: dict[str, Any]) -> bool:
    return "AlarmName" in message and "NewStateValue" in message


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _pick(mapping: dict[str, Any], *keys: str) -> Any:
    return next((mapping[k] for k in keys if mapping.get(k) is not None), None)



def _canonical(message: dict[str, Any]) -> str:
    # Key order and whitespace differ between copies of one message; the content does not.
    return json.dumps(message, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=str)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]




def _keys(mapping: dict[str, Any]) -> str:
    names = [show_value(k) for k in list(mapping)[:8]]
    more = ", ..." if len(mapping) > 8 else ""
    return f"top-level keys: {', '.join(names)}{more}" if names else "no keys at all"
