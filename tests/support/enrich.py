"""What the enrichment tests share: payload files, stubbed clients for the APIs moto lacks,
and an alarm with a context to look at it."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
from botocore.stub import Stubber

from fireline import aws
from fireline.alarm import AlarmEvent
from fireline.enrich.base import EnrichmentContext
from fireline.events import parse_event
from fireline.local.payloads import sns_alarm_event, sns_lambda_errors_event
from fireline.timestamps import parse_aws_time, utc_now

PAYLOADS = Path(__file__).resolve().parents[1] / "functional" / "payloads"


def payload(name: str) -> Any:
    return json.loads((PAYLOADS / name).read_text(encoding="utf-8"))


def png() -> bytes:
    return (PAYLOADS / "metric_widget.png").read_bytes()


def lookup_events_answer(alarm_at: datetime) -> dict[str, Any]:
    """The recorded LookupEvents answer, its times moved to an alarm at `alarm_at`."""
    recorded = payload("cloudtrail_lookup_events.json")
    shift = alarm_at - parse_aws_time(recorded["alarm_at"])
    answer = recorded["response"]
    for event in answer["Events"]:
        event["EventTime"] = parse_aws_time(event["EventTime"]) + shift
    return answer


def lambda_alarm(function: str = "checkout", *, at: datetime | None = None,
                 account_id: str = "123456789012", **fields: Any) -> AlarmEvent:
    [alarm] = parse_event(sns_lambda_errors_event(
        function_name=function, alarm_name=f"{function}-prod-errors", at=at or utc_now(),
        account_id=account_id, **fields))
    return alarm


def table_alarm(table: str = "orders") -> AlarmEvent:
    [alarm] = parse_event(sns_alarm_event(
        alarm_name=f"{table}-throttles", namespace="AWS/DynamoDB", metric="ThrottledRequests",
        dimensions={"TableName": table, "Operation": "PutItem"}))
    return alarm


def stubbed(service: str) -> tuple[Any, Stubber]:
    """A client of its own (not the shared cached one) with a Stubber on it."""
    client = boto3.session.Session().client(service, region_name="us-east-1")
    return client, Stubber(client)


class Clients:
    """A ClientFactory: moto's clients, except the services handed a stubbed client."""

    def __init__(self, **stubbed_clients: Any) -> None:
        self.stubbed = stubbed_clients

    def __call__(self, service: str, region: str | None = None) -> Any:
        if service in self.stubbed:
            return self.stubbed[service]
        return aws.client(service, region)


# What moto 5.2.5 lacks among the enrichments' calls: only these go to stubbed clients.
MOTO_LACKS = frozenset({"lookup_events", "start_query", "get_query_results", "stop_query",
                        "get_metric_widget_image"})


class AppClients:
    """A ClientFactory for a whole Fireline: moto's clients, whose calls moto lacks are
    answered by the stubbed client given for the service (Stubber)."""

    def __init__(self, **stubbed_clients: Any) -> None:
        self.stubbed = stubbed_clients

    def __call__(self, service: str, region: str | None = None) -> Any:
        real = aws.client(service, region)
        stub = self.stubbed.get(service)
        return real if stub is None else _Routed(real, stub)


class _Routed:
    def __init__(self, real: Any, stub: Any) -> None:
        self._real, self._stub = real, stub

    def __getattr__(self, name: str) -> Any:
        if name == "get_paginator":
            return lambda operation: (self._stub if operation in MOTO_LACKS
                                      else self._real).get_paginator(operation)
        return getattr(self._stub if name in MOTO_LACKS else self._real, name)


class FakeTime:
    """A monotonic clock that moves only when slept on (timeouts without waiting)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def context(alarm: AlarmEvent, clients: Any, *, budget: float = 5.0,
            fake: FakeTime | None = None) -> EnrichmentContext:
    if fake is not None:
        return EnrichmentContext(alarm=alarm, incident_id="INC-test", clients=clients,
                                 clock=utc_now, deadline=fake.now + budget,
                                 monotonic=fake.monotonic, sleep=fake.sleep)
    return EnrichmentContext(alarm=alarm, incident_id="INC-test", clients=clients,
                             clock=utc_now, deadline=time.monotonic() + budget)


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)
