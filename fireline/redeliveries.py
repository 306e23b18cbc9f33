"""The deliveries this process has just handled, so that a repeat costs nothing.

SNS, EventBridge, SQS and Lambda's own retries deliver "at least once": the same message
can arrive again. The store already makes a redelivery harmless (a timeline entry is
written once, a repeat of a state change the incident knows writes nothing). This makes
it cheap as well, in two ways:

- **The same message again.** One this process handled in the last minute is answered
  from memory, without an AWS or Slack call. The window is well inside a run's lease
  (120 s): a redelivery inside it could not have taken over a stalled run anyway, and any
  later delivery still can.
- **Old news.** Another message of an ALARM state change no later than one this process
  handled for the same alarm in the last few seconds: the SNS and EventBridge twins of a
  change, a second subscription, a late copy. Once a process has handled an alarm's
  change, the store knows that change or a later one, so the older news would change
  nothing there; it is answered as the later one was. What such a repeat would otherwise
  do besides its read (carry on a run whose driver died, escalate a watch that ran out,
  catch a Slack thread up) waits for the next delivery after the window, or the minute's
  check: the window is short so that wait is too.

Only a handling that finished is remembered. One that raised is retried by its sender, and
the retry must do the work. An alarm's other states (OK, no data) are never old news, and
handling one forgets the alarm's latest ALARM: the incident has moved on.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Generic, NamedTuple, TypeVar

from fireline.alarm import AlarmEvent

REMEMBERED_FOR = timedelta(seconds=60)
OLD_NEWS_FOR = timedelta(seconds=10)
# A minute of a storm at over 300 deliveries a second. Full, it holds about 7.6 MB for 50
# alarms, 37.5 MB at worst (every delivery an alarm of its own): benchmarks/memory.py.
REMEMBERED_AT_MOST = 20_000

Answer = TypeVar("Answer")


class Remembered(NamedTuple, Generic[Answer]):
    handled_at: datetime
    answer: Answer
    # The later (or same) state change handled here that makes this delivery old news;
    # None when this very delivery was handled here.
    news: datetime | None = None


class _Latest(NamedTuple, Generic[Answer]):
    handled_at: datetime
    changed_at: datetime
    answer: Answer


class Redeliveries(Generic[Answer]):
    """What each recently handled delivery was answered, by alarm, delivery and state; and
    each alarm's latest ALARM change handled here.

    Safe across threads: the CLI and the benchmarks handle deliveries concurrently.
    A zero window turns that kind of memory off.
    """

    def __init__(self, clock: Callable[[], datetime], *,
                 remembered_for: timedelta = REMEMBERED_FOR,
                 old_news_for: timedelta = OLD_NEWS_FOR,
                 at_most: int = REMEMBERED_AT_MOST) -> None:
        self._clock = clock
        self._remembered_for = remembered_for
        self._old_news_for = old_news_for
        self._at_most = at_most
        self._handled: OrderedDict[tuple[str, str, str], tuple[datetime, Answer]] = (
            OrderedDict())
        self._latest: OrderedDict[str, _Latest[Answer]] = OrderedDict()
        self._lock = threading.Lock()

    def answered(self, alarm: AlarmEvent) -> Remembered[Answer] | None:
        """How this delivery was answered here, or the later news it is old beside; None
        when it is news to this process (or outside the windows)."""
        now = self._clock()
        with self._lock:
            _forget_before(self._handled, now - self._remembered_for)
            _forget_before(self._latest, now - self._old_news_for)
            same = self._handled.get(_identity(alarm)) if self._remembered_for else None
            if same is not None:
                return Remembered(*same)
            latest = self._latest.get(alarm.key) if self._old_news_for else None
            if (latest is not None and alarm.state == "ALARM"
                    and alarm.state_changed_at <= latest.changed_at):
                return Remembered(latest.handled_at, latest.answer, latest.changed_at)
            return None

    def remember(self, alarm: AlarmEvent, answer: Answer) -> None:
        now, key = self._clock(), _identity(alarm)
        with self._lock:
            known = self._latest.get(alarm.key)
            if known is not None and known.answer == answer:
                answer = known.answer  # a storm's answers for one incident: kept once
            _remember(self._handled, key, (now, answer), self._at_most)
            if alarm.state != "ALARM":
                self._latest.pop(alarm.key, None)
                return
            # The store never forgets a change it was told of: the latest handled here
            # stays old news's measure, whichever delivery finished last.
            changed_at = max(alarm.state_changed_at, known.changed_at) if known else (
                alarm.state_changed_at)
            _remember(self._latest, alarm.key, _Latest(now, changed_at, answer),
                      self._at_most)

    def forget_everything(self) -> None:
        """As a process that has handled nothing (a new Lambda container)."""
        with self._lock:
            self._handled.clear()
            self._latest.clear()


def _identity(alarm: AlarmEvent) -> tuple[str, str, str]:
    # The shapes name their messages differently (and a Lambda action's id is derived from
    # its contents): the alarm and its state keep two alarms' ids from ever meeting.
    return alarm.key, alarm.delivery_id, alarm.state


_Key = TypeVar("_Key")
_Value = TypeVar("_Value", bound=tuple)


def _remember(memory: OrderedDict[_Key, _Value], key: _Key, value: _Value,
              at_most: int) -> None:
    memory[key] = value
    memory.move_to_end(key)
    while len(memory) > at_most:
        memory.popitem(last=False)


def _forget_before(memory: OrderedDict[_Key, _Value], cutoff: datetime) -> None:
    # Oldest first (each value's first field is when it was handled).
    while memory:
        oldest = next(iter(memory.values()))
        if oldest[0] >= cutoff:
            return
        memory.popitem(last=False)
