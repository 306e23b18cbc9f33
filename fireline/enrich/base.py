"""What every enrichment shares: the context it reads, the finding it returns, its contract.

An enrichment reads; it never changes anything, never talks to Slack or the incident
store, and answers with a `Finding` (the runner records and posts it). One that cannot
run here (not permitted, nothing to read) raises `EnrichmentSkipped` with the note to show.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from fireline.alarm import AlarmEvent
from fireline.aws import ClientFactory
from fireline.notify import Attachment

# The alarm dimensions that name a resource someone can change, and what CloudTrail and a
# reader call it. Other dimensions (Resource, ExecutedVersion, Region) narrow a metric.
RESOURCE_DIMENSIONS = {
    "FunctionName": "function",
    "TableName": "table",
    "DBClusterIdentifier": "cluster",
    "DBInstanceIdentifier": "instance",
    "DistributionId": "distribution",
    "ApiName": "API",
    "ApiId": "API",
    "StateMachineArn": "state machine",
    "QueueName": "queue",
}


@dataclass(frozen=True)
class EnrichmentContext:
    """The alarm, clients in its account and region, and the time left."""

    alarm: AlarmEvent
    incident_id: str
    clients: ClientFactory
    clock: Callable[[], datetime]
    deadline: float  # on the `monotonic` clock
    monotonic: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep

    def seconds_left(self) -> float:
        return self.deadline - self.monotonic()


class Finding(BaseModel):
    """What an enrichment found: a headline, detail lines, maybe a picture.

    `note` marks a finding that is only a remark (skipped, failed, timed out): it goes on
    the timeline and in the thread like the rest, never as an error."""

    model_config = ConfigDict(frozen=True)

    enrichment: str
    text: str
    lines: list[str] = Field(default_factory=list)
    attachment: Attachment | None = None
    note: bool = False


class Enrichment(ABC):
    """One kind of context. `services` are the clients it uses (made before it runs)."""

    name: ClassVar[str]
    title: ClassVar[str]  # how the thread names it: "what changed", "log evidence"
    services: ClassVar[tuple[str, ...]]

    @abstractmethod
    def applies(self, alarm: AlarmEvent) -> bool:
        """Whether this alarm has anything for it to look at."""

    @abstractmethod
    def gather(self, ctx: EnrichmentContext) -> Finding:
        """Look, within `ctx.deadline`; raise EnrichmentSkipped to say why not."""


def alarm_dimensions(alarm: AlarmEvent) -> dict[str, str]:
    """Every dimension of the alarm's metrics (a metric-math alarm has several metrics)."""
    found = dict(alarm.dimensions)
    for metric in alarm.metrics:
        for name, value in metric.dimensions.items():
            found.setdefault(name, value)
    return found


def resources(alarm: AlarmEvent) -> list[tuple[str, str]]:
    """(dimension, value) of each resource the alarm names, in the alarm's own order."""
    seen: list[tuple[str, str]] = []
    for metric_dimensions in [alarm.dimensions, *(m.dimensions for m in alarm.metrics)]:
        for name, value in metric_dimensions.items():
            if name in RESOURCE_DIMENSIONS and value and (name, value) not in seen:
                seen.append((name, value))
    return seen


def clock_time(moment: datetime) -> str:
    """A time as a reader of the thread wants it: 09:41:02Z."""
    return moment.strftime("%H:%M:%SZ")


def before(moment: datetime, reference: datetime) -> str:
    """How long `moment` came before (or after) `reference`, in words."""
    seconds = int((reference - moment).total_seconds())
    word = "before" if seconds >= 0 else "after"
    seconds = abs(seconds)
    if seconds < 90:
        return f"{seconds} s {word}"
    minutes = round(seconds / 60)
    if minutes < 120:
        return f"{minutes} min {word}"
    return f"{minutes // 60} h {minutes % 60} min {word}"
