"""How long the stand-ins take, so a benchmark can say what is Fireline's own time.

While `Meter.installed()` is active, four places are timed, per thread:

- AWS, the stand-in: moto's emulation of a request (`BotocoreStubber.process_request`:
  routing, the service model's work, the response body). That is AWS's time in AWS.
- AWS, the client: the whole boto3 call (`BaseClient._make_api_call`). Less moto's time,
  that is botocore's own work (validating, serialising, signing, parsing the answer); it
  runs in Lambda too, so it counts as Fireline's.
- Slack, the stand-in: slack-sdk's HTTP exchange with the local Slack server
  (`BaseClient._perform_urllib_http_request`: the socket, the server's answer, any retry
  pause), which is network and Slack's time against the real API.
- Slack, the client: the whole slack-sdk call (`BaseClient.api_call`), whose work outside
  the exchange (building the request, reading the answer) counts as Fireline's.

Nothing of Fireline's is replaced: the same calls go to the same stand-ins, only timed.
Wall time is kept, and this thread's CPU time (which other threads holding the GIL do not
inflate). Fireline gathers an incident's context in worker threads, so for one event at a
time `outside_between` gives the wall time during which any thread was in a stand-in.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Spent:
    """What one thread spent since its last reset."""

    aws_seconds: float = 0.0  # in moto
    slack_seconds: float = 0.0  # in the HTTP exchange with the local Slack
    aws_cpu: float = 0.0
    slack_cpu: float = 0.0
    boto_seconds: float = 0.0  # in boto3 calls, moto included
    slack_sdk_seconds: float = 0.0  # in slack-sdk calls, the exchange included
    aws_calls: Counter[str] = field(default_factory=Counter)
    slack_calls: Counter[str] = field(default_factory=Counter)

    @property
    def outside(self) -> float:
        """Wall time in the stand-ins: what AWS and Slack would take themselves."""
        return self.aws_seconds + self.slack_seconds

    @property
    def outside_cpu(self) -> float:
        return self.aws_cpu + self.slack_cpu

    @property
    def client_libraries(self) -> float:
        """Wall time in boto3 and slack-sdk's own client-side work."""
        return (self.boto_seconds - self.aws_seconds) + (self.slack_sdk_seconds
                                                         - self.slack_seconds)


class Meter:
    def __init__(self) -> None:
        self._local = threading.local()
        self._lock = threading.Lock()
        self.total = Spent()
        self._intervals: list[tuple[float, float]] = []  # stand-in calls, any thread

    def outside_between(self, start: float, end: float) -> float:
        """Wall time within [start, end] (perf_counter) when any thread was in a stand-in;
        forgets the calls that ended before `end`."""
        with self._lock:
            spans = sorted((max(a, start), min(b, end)) for a, b in self._intervals
                           if b > start and a < end)
            self._intervals = [(a, b) for a, b in self._intervals if b > end]
        covered, reach = 0.0, start
        for a, b in spans:
            if b > reach:
                covered += b - max(a, reach)
                reach = b
        return covered

    def spent(self) -> Spent:
        spent = getattr(self._local, "spent", None)
        if spent is None:
            spent = self._local.spent = Spent()
        return spent

    def reset(self) -> Spent:
        """Start a new count for this thread; the one it replaces."""
        old = self.spent()
        self._local.spent = Spent()
        return old

    @contextmanager
    def installed(self) -> Iterator[Meter]:
        from botocore.client import BaseClient as BotoClient
        from moto.core.botocore_stubber import BotocoreStubber
        from slack_sdk.web.base_client import BaseClient as SlackClient

        undo = [
            _wrap(BotocoreStubber, "process_request", lambda args, kwargs, span, cpu: self._add(
                "aws", _aws_name(args[1]), span, cpu)),
            _wrap(SlackClient, "_perform_urllib_http_request",
                  lambda args, kwargs, span, cpu: self._add(
                      "slack", str(kwargs.get("url", "")).rsplit("/", 1)[-1], span, cpu)),
            _wrap(BotoClient, "_make_api_call", lambda args, kwargs, span, cpu: self._add(
                "boto", "", span, cpu)),
            _wrap(SlackClient, "api_call", lambda args, kwargs, span, cpu: self._add(
                "slack_sdk", "", span, cpu)),
        ]
        try:
            yield self
        finally:
            for restore in reversed(undo):
                restore()

    def _add(self, kind: str, name: str, span: tuple[float, float], cpu: float) -> None:
        wall = span[1] - span[0]
        _count(self.spent(), kind, name, wall, cpu)
        with self._lock:
            _count(self.total, kind, name, wall, cpu)
            if kind in ("aws", "slack"):
                self._intervals.append(span)


def _aws_name(request: Any) -> str:
    """The operation: the JSON protocols' X-Amz-Target, else the method and path (REST)."""
    target = request.headers.get("X-Amz-Target") or b""
    if isinstance(target, bytes):
        target = target.decode()
    return target.rsplit(".", 1)[-1] or f"{request.method} {request.url.split('?')[0]}"


def _count(spent: Spent, kind: str, name: str, wall: float, cpu: float) -> None:
    if kind == "aws":
        spent.aws_seconds += wall
        spent.aws_cpu += cpu
        spent.aws_calls[name] += 1
    elif kind == "slack":
        spent.slack_seconds += wall
        spent.slack_cpu += cpu
        spent.slack_calls[name] += 1
    elif kind == "boto":
        spent.boto_seconds += wall
    else:
        spent.slack_sdk_seconds += wall


def _wrap(owner: type, name: str,
          record: Callable[[tuple[Any, ...], dict[str, Any], tuple[float, float], float], None],
          ) -> Callable[[], None]:
    original = owner.__dict__[name]

    def timed(*args: Any, **kwargs: Any) -> Any:
        started, cpu = time.perf_counter(), time.thread_time()
        try:
            return original(*args, **kwargs)
        finally:
            record(args, kwargs, (started, time.perf_counter()), time.thread_time() - cpu)

    setattr(owner, name, timed)
    return lambda: setattr(owner, name, original)
