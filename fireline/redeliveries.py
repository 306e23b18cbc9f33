"""The deliveries this process has just handled, so that a redelivery costs nothing.

SNS, EventBridge, SQS and Lambda's own retries deliver "at least once": the same message
can arrive again. The store already makes a redelivery harmless (a delivery is counted
once, a timeline entry written once). This makes it cheap as well. A message this process
handled in the last minute is answered from memory, without an AWS or Slack call.

Only a handling that finished is remembered. One that raised is retried by its sender, and
the retry must do the work. The window is well inside a run's lease (120 s): a redelivery
inside it could not have taken over a stalled run anyway, and any later delivery still can.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Generic, TypeVar

from fireline.alarm import AlarmEvent

REMEMBERED_FOR = timedelta(seconds=60)
# A minute of a storm at hundreds of deliveries a second, in a few megabytes.
REMEMBERED_AT_MOST = 20_000

Answer = TypeVar("Answer")


class Redeliveries(Generic[Answer]):
    """What each recently handled delivery was answered, by alarm, delivery and state.

    Safe across threads: the CLI and the benchmarks handle deliveries concurrently.
    """

    def __init__(self, clock: Callable[[], datetime], *,
                 remembered_for: timedelta = REMEMBERED_FOR,
                 at_most: int = REMEMBERED_AT_MOST) -> None:
        self._clock = clock
        self._remembered_for = remembered_for
        self._at_most = at_most
        self._handled: OrderedDict[tuple[str, str, str], tuple[datetime, Answer]] = (
            OrderedDict())
        self._lock = threading.Lock()

    def answered(self, alarm: AlarmEvent) -> tuple[datetime, Answer] | None:
        """When this delivery was handled here, and its answer; None if it was not (or not
        in the window)."""
        now = self._clock()
        with self._lock:
            self._forget_before(now - self._remembered_for)
            return self._handled.get(_identity(alarm))

    def remember(self, alarm: AlarmEvent, answer: Answer) -> None:
        now, key = self._clock(), _identity(alarm)
        with self._lock:
            self._handled[key] = (now, answer)
            self._handled.move_to_end(key)
            while len(self._handled) > self._at_most:
                self._handled.popitem(last=False)

    def _forget_before(self, cutoff: datetime) -> None:
        while self._handled:
            oldest = next(iter(self._handled.values()))
            if oldest[0] >= cutoff:
                return
            self._handled.popitem(last=False)


def _identity(alarm: AlarmEvent) -> tuple[str, str, str]:
    # The shapes name their messages differently (and a Lambda action's id is derived from
    # its contents): the alarm and its state keep two alarms' ids from ever meeting.
    return alarm.key, alarm.delivery_id, alarm.state
