"""The one alarm model every part of Fireline reads, whatever shape delivered it."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

AlarmState = Literal["OK", "ALARM", "INSUFFICIENT_DATA"]
AlarmKind = Literal["metric", "metric-math", "anomaly", "composite"]
DeliveryShape = Literal["sns", "sqs-sns", "sns-http", "eventbridge", "lambda-action", "sns-message"]


class MetricRef(BaseModel):
    """One metric (or expression) an alarm evaluates."""

    model_config = ConfigDict(frozen=True)

    id: str | None = None
    namespace: str | None = None
    name: str | None = None
    dimensions: dict[str, str] = Field(default_factory=dict)
    stat: str | None = None
    period: int | None = None
    expression: str | None = None
    label: str | None = None
    return_data: bool | None = None


class TriggeringChild(BaseModel):
    """A child alarm of a composite alarm that took part in the transition."""

    model_config = ConfigDict(frozen=True)

    arn: str
    state: str | None = None
    timestamp: datetime | None = None


class AlarmEvent(BaseModel):
    """A CloudWatch alarm state change, normalised.

    `alarm_name` is the display and matching key; `alarm_arn` is kept only when it parses
    (it is missing, redacted or inconsistent in real payloads). `tags` is None when the
    payload carried no alarm tags, so callers know to look them up by ARN.
    """

    model_config = ConfigDict(frozen=True)

    delivery: DeliveryShape
    delivery_id: str
    alarm_name: str
    alarm_arn: str | None = None
    account_id: str | None = None
    region: str | None = None
    state: AlarmState
    previous_state: AlarmState | None = None
    reason: str = ""
    reason_data: dict[str, Any] | None = None
    state_changed_at: datetime
    # True when no timestamp in the payload was usable and the time of receipt stands in.
    time_inferred: bool = False
    description: str | None = None
    kind: AlarmKind = "metric"
    namespace: str | None = None
    metric_name: str | None = None
    dimensions: dict[str, str] = Field(default_factory=dict)
    statistic: str | None = None
    threshold: float | None = None
    comparison: str | None = None
    treat_missing_data: str | None = None
    metrics: tuple[MetricRef, ...] = ()
    alarm_rule: str | None = None
    triggering_children: tuple[TriggeringChild, ...] = ()
    tags: dict[str, str] | None = None

    @property
    def key(self) -> str:
        """Identity of the alarm across deliveries (SNS and EventBridge of one alarm agree)."""
        return alarm_key(self.account_id, self.region, self.alarm_name)

    def template_fields(self, tags: dict[str, str] | None = None) -> dict[str, str]:
        """The flat fields a runbook template may read; nothing else is reachable.

        `tags` stands for the alarm's tags where they were looked up apart from the payload.
        """
        fields: dict[str, str] = {
            "alarm.name": self.alarm_name,
            "alarm.arn": self.alarm_arn or "",
            "alarm.state": self.state,
            "alarm.kind": self.kind,
            "account": self.account_id or "",
            "region": self.region or "",
            "namespace": self.namespace or "",
            "metric": self.metric_name or "",
        }
        for name, value in self.dimensions.items():
            fields[f"dimensions.{name}"] = value
        for name, value in (self.tags if tags is None else tags or {}).items():
            fields[f"tags.{name}"] = value
        return fields


def alarm_key(account_id: str | None, region: str | None, alarm_name: str) -> str:
    """An alarm's identity across deliveries: account, region and name."""
    return f"{account_id or '-'}/{region or '-'}/{alarm_name}"
