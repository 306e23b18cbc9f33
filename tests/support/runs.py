"""What tests of long-running playbooks share: a clock the engine sleeps on, a process
death, and the progress the engine would have persisted."""

from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta
from typing import Any

from fireline import aws
from fireline.playbook import PlaybookContext
from fireline.timestamps import utc_now
from tests.support.marks import Marks


class Clock:
    """Time that moves a millisecond per reading, and as far as the engine sleeps."""

    def __init__(self) -> None:
        self.now = utc_now()
        self.slept: list[float] = []

    def __call__(self) -> datetime:
        self.now += timedelta(milliseconds=1)
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += timedelta(seconds=seconds)


class Crash(BaseException):
    """The process dies (a BaseException: nothing in Fireline may catch it)."""


class Saved:
    """What the engine has persisted of `ctx.progress`: at each checkpoint, as JSON."""

    def __init__(self, incident_id: str = "INC-test") -> None:
        self.incident_id = incident_id
        self.progress: dict[str, Any] = {}

    def context(self, clients: Any = aws.client, **kwargs: Any) -> PlaybookContext:
        ctx = PlaybookContext(clients=clients, marks=Marks(), incident_id=self.incident_id,
                              progress=json.loads(json.dumps(self.progress)), **kwargs)
        ctx.checkpoint = lambda: self.save(ctx)
        return ctx

    def save(self, ctx: PlaybookContext) -> None:
        self.progress = json.loads(json.dumps(ctx.progress))


def deliver_at_once(handler: Any, events: list[Any], context: Any, *,
                    timeout: float = 120) -> list[dict[str, Any]]:
    """Each event to `handler` from a thread of its own, all released together (a barrier),
    as a storm's concurrent Lambda invocations; every incident result, in completion order.
    Any exception in a thread fails the caller."""
    results: list[dict[str, Any]] = []
    errors: list[BaseException] = []
    start = threading.Barrier(len(events))

    def deliver(event: Any) -> None:
        start.wait()
        try:
            results.extend(handler(event, context)["incidents"])
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=deliver, args=(event,)) for event in events]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout)
    assert not errors, errors
    return results
