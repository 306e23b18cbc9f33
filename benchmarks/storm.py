"""An alarm storm: 10,000 deliveries for 50 alarms through `handlers.alarm.handler`.

The 50 alarms arrive in all three shapes (SNS, EventBridge, the direct Lambda alarm
action); 20% of the deliveries are duplicates (the same message again, as SNS and Lambda's
retries deliver it); 4 threads deliver at once. Half the alarms are production Lambda
`Errors` alarms whose rule reverts the function's alias; the other half match rules without
a playbook. AWS is moto in-process (with DynamoDB's atomic conditional writes,
fireline.local.atomic_writes), Slack the local Slack-compatible server.

Prints events/s, incidents opened, playbook runs, Slack calls in total and per incident,
each with the goal next to it (issue 8: exactly 50 incidents, no double action, at most 8
Slack calls per incident, >= 500 events/s), and how many deliveries the process answered
from its memory of what it had handled (fireline/redeliveries.py): one process takes the
whole storm here, so most are old news to it. Fireline's own CPU time per event is printed
too, with the rate it allows: the process's CPU less moto's. Then the deliveries run once
more as if each came to a process that had handled none of its alarm (Lambda spreads a
storm over containers), every one reading its incident, each read answered from a
recording of moto's answers (benchmarks/support/recording.py) where moto's code does not
run: moto in the same process costs Fireline more than its own calls' time (its
allocations for the collector, the caches its code displaces), which subtraction leaves in.

    python benchmarks/storm.py            # the issue's 10,000 deliveries
    python benchmarks/storm.py --quick    # 1,000, for development
    python benchmarks/storm.py --quick --slack-limit 1
        # Slack refuses posts over 1 a second per channel (as it does); then the minute's
        # checks catch the threads up (benchmarks/storm_slack_limit.py)
"""

from __future__ import annotations

import argparse
import random
import sys
import threading
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

ALARMS = 50
THREADS = 4
DUPLICATES = 0.20
GOAL_RATE = 500
GOAL_SLACK_PER_INCIDENT = 8
# Slack's limit on posting (about a message a second per channel, short bursts allowed).
SLACK_BURST = 5
MAX_SWEEPS = 20
# Alarms without a playbook: (namespace, metric, dimension) matching the default runbook's
# no-playbook rules (api-5xx, latency, throttling, dead-letters, database-health).
QUIET_METRICS = [
    ("AWS/ApiGateway", "5XXError", "ApiName"),
    ("AWS/Lambda", "Duration", "FunctionName"),
    ("AWS/DynamoDB", "ReadThrottleEvents", "TableName"),
    ("AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName"),
    ("AWS/RDS", "CPUUtilization", "DBInstanceIdentifier"),
]
SHAPES = ("sns", "eventbridge", "lambda-action")


@dataclass(frozen=True)
class Alarm:
    name: str
    namespace: str
    metric: str
    dimensions: dict[str, str]
    function: str | None  # the production function its playbook reverts


@dataclass
class Tally:
    lock: threading.Lock = field(default_factory=threading.Lock)
    handled: int = 0
    # How the process's memory of handled deliveries answered (fireline/redeliveries.py).
    memory: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    tracebacks: list[str] = field(default_factory=list)
    next_index: int = 0


def alarms() -> list[Alarm]:
    out = []
    for n in range(ALARMS // 2):
        function = f"storm-{n:02d}"
        out.append(Alarm(f"{function}-prod-errors", "AWS/Lambda", "Errors",
                         {"FunctionName": function}, function))
    for n in range(ALARMS - len(out)):
        namespace, metric, dimension = QUIET_METRICS[n % len(QUIET_METRICS)]
        out.append(Alarm(f"storm-quiet-{n:02d}-{metric.lower()}", namespace, metric,
                         {dimension: f"storm-resource-{n:02d}"}, None))
    return out


def deliveries(total: int, rng: random.Random) -> list[dict[str, Any]]:
    """`total` deliveries, a fifth of them copies of another delivery, in a random order."""
    from datetime import UTC, datetime, timedelta

    from fireline.local.payloads import (
        eventbridge_alarm_event,
        lambda_action_alarm_event,
        sns_alarm_event,
    )

    builders = {"sns": sns_alarm_event, "eventbridge": eventbridge_alarm_event,
                "lambda-action": lambda_action_alarm_event}
    started = datetime.now(UTC) - timedelta(seconds=30)
    every = alarms()
    unique = total - int(total * DUPLICATES)
    events = []
    for n in range(unique):
        alarm = every[n % len(every)]
        shape = SHAPES[(n // len(every)) % len(SHAPES)]
        # One millisecond apart per delivery: a Lambda action is told apart by its time.
        events.append(builders[shape](
            alarm_name=alarm.name, namespace=alarm.namespace, metric=alarm.metric,
            dimensions=alarm.dimensions, at=started + timedelta(milliseconds=n)))
    events += [rng.choice(events[:unique]) for _ in range(total - unique)]
    rng.shuffle(events)
    return events


def storm(total: int, *, slack_per_second: float | None = None) -> int:
    import warnings

    from moto import mock_aws

    from benchmarks.support.meter import Meter
    from fireline import aws
    from fireline.local.atomic_writes import atomic_conditional_writes
    from fireline.local.aws_server import LOCAL_ENV, patched_env
    from fireline.local.lambda_context import LambdaContext
    from fireline.local.lambda_fixture import deploy_versions
    from fireline.local.slack_server import LocalSlack

    # Four threads share the handler's one Metrics object, which Lambda never does: one may
    # flush what another has just cleared, and powertools warns that nothing was published.
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    rng = random.Random(8)
    events = deliveries(total, rng)
    meter = Meter()
    tally = Tally()
    with LocalSlack() as slack, patched_env({
        **LOCAL_ENV, "FIRELINE_TABLE": "storm", "SLACK_BOT_TOKEN": "xoxb-storm",
        "FIRELINE_SLACK_CHANNEL": "#storm", "FIRELINE_SLACK_API_URL": slack.base_url,
        "POWERTOOLS_METRICS_DISABLED": "true", "POWERTOOLS_LOG_LEVEL": "CRITICAL",
    }), mock_aws(config={"lambda": {"use_docker": False}}), atomic_conditional_writes():
        aws.reset_clients()
        from handlers import _runtime
        from handlers.alarm import handler

        _runtime.fireline.cache_clear()
        app = _runtime.fireline()
        app.store.create_table()
        if slack_per_second:
            slack.limit_each_channel(slack_per_second, burst=SLACK_BURST)
        for alarm in alarms():
            if alarm.function:
                deploy_versions(aws.client, alarm.function, versions=3)
        context = LambdaContext(function_name="fireline-alarm")
        _count_answers_from_memory(app, tally)

        with meter.installed():
            elapsed, cpu = _deliver(events, handler, context, tally)

        # Fireline's own CPU: the process's, less moto's and the Slack exchanges' (the local
        # Slack server's own work stays in: the figure errs on the high side).
        own = (cpu - meter.total.outside_cpu) / max(tally.handled, 1)
        report = _report(app, slack, meter, tally, total, elapsed, own,
                         slack_limited=bool(slack_per_second))
        if slack_per_second:
            report = report or _catch_up(app, slack, slack_per_second)
        else:
            report = report or _again_from_recording(events, handler, context, meter)
        if tally.tracebacks:
            print(f"the first error's traceback:\n{tally.tracebacks[0]}", file=sys.stderr)
        _runtime.fireline.cache_clear()
    return report


def _deliver(events: list[dict[str, Any]], handler: Any, context: Any,
             tally: Tally) -> tuple[float, float]:
    """Every event through `handler`, THREADS at once; the wall and the process's CPU time
    it took. What failed is in `tally`."""

    def worker() -> None:
        while True:
            with tally.lock:
                index = tally.next_index
                tally.next_index += 1
            if index >= len(events):
                return
            try:
                result = handler(events[index], context)
                if "error" in result or result.get("refused"):
                    raise RuntimeError(f"refused: {result}")
            except Exception as exc:  # counted and shown: a storm must not lose any
                with tally.lock:
                    tally.errors.append(f"{type(exc).__name__}: {exc}")
                    tally.tracebacks.append(traceback.format_exc())
                continue
            with tally.lock:
                tally.handled += 1

    threads = [threading.Thread(target=worker, name=f"storm-{n}") for n in range(THREADS)]
    started, cpu = time.perf_counter(), time.process_time()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started, time.process_time() - cpu


def _count_answers_from_memory(app: Any, tally: Tally) -> None:
    """Counts in `tally` which deliveries the process answered from memory, and how."""
    answered = app.redeliveries.answered

    def counted(alarm: Any) -> Any:
        found = answered(alarm)
        kind = "news" if found is None else "same message" if found.news is None else (
            "old news")
        with tally.lock:
            tally.memory[kind] += 1
        return found

    app.redeliveries.answered = counted


def _again_from_recording(events: list[dict[str, Any]], handler: Any, context: Any,
                          meter: Any) -> int:
    """The storm's deliveries once more, to its 50 open incidents, by a process that
    remembers no delivery (as if each came to a Lambda container that had handled nothing
    of its alarm: every one reads its incident), every incident read answered with moto's
    recorded answer (benchmarks/support/recording.py): Fireline's own CPU with no moto code
    running for the reads, where subtraction leaves moto's side effects in. Returns 1 on an
    error."""
    from datetime import timedelta

    from benchmarks.support.recording import reads_answered_from_recording
    from fireline.redeliveries import Redeliveries
    from handlers import _runtime

    _runtime.fireline.cache_clear()
    app = _runtime.fireline()
    app.redeliveries = Redeliveries(app.clock, remembered_for=timedelta(0),
                                    old_news_for=timedelta(0))
    tally = Tally()
    outside, calls = meter.total.outside_cpu, sum(meter.total.aws_calls.values())
    with meter.installed(), reads_answered_from_recording() as replayed:
        _, cpu = _deliver(events, handler, context, tally)
    own = (cpu - (meter.total.outside_cpu - outside)) / max(tally.handled, 1)
    moto_calls = sum(meter.total.aws_calls.values()) - calls
    print("  the same deliveries again, to the open incidents, each as if to a process that "
          "had handled none of its alarm (every one")
    print(f"  reads), each read answered from a recording of moto's answers ({len(replayed)} "
          f"of them; {moto_calls} calls went to moto): Fireline's own CPU "
          f"{own * 1000:.2f} ms per delivery,")
    print(f"  about {1 / own if own else 0:.0f} events/s (no openings in it; errors: "
          f"{len(tally.errors)})")
    return 1 if tally.errors else 0


def _report(app: Any, slack: Any, meter: Any, tally: Tally, total: int,
            elapsed: float, own: float, *, slack_limited: bool = False) -> int:
    from fireline import aws

    incidents = app.store.list(limit=1000)
    by_alarm = Counter(incident.alarm_name for incident in incidents)
    expected = {alarm.name for alarm in alarms()}
    # A run that executed records its outcome; a second run would move the alias again
    # (3 -> 2 -> 1) and call UpdateAlias twice. (Reading each timeline would be exact too,
    # but moto sorts the whole table for every Query: minutes on a storm's table.)
    runs = sum(1 for incident in incidents if incident.outcome is not None)
    double = []
    updates = Counter(name.split("/functions/")[1].split("/")[0]
                      for name, count in meter.total.aws_calls.items()
                      for _ in range(count) if name.startswith("PUT ") and "/aliases/" in name)
    for alarm in alarms():
        if not alarm.function:
            continue
        alias = aws.client("lambda").get_alias(FunctionName=alarm.function, Name="live")
        if alias["FunctionVersion"] != "2" or updates[alarm.function] != 1:
            double.append(f"{alarm.function}: alias on {alias['FunctionVersion']} after "
                          f"{updates[alarm.function]} UpdateAlias calls")
    with_playbook = sum(1 for incident in incidents if incident.playbook)

    threads = {incident.slack.ts: incident.incident_id for incident in incidents
               if incident.slack}
    per_incident: Counter[str] = Counter()
    methods: dict[str, Counter[str]] = {}
    unattributed = 0
    # A request Slack refused (HTTP 429, with Slack's rate limit on) posted nothing: it is
    # counted apart (see _catch_up).
    for call in (call for call in slack.calls if call.status != 429):
        # Replies and updates name the thread; a parent message shows the incident's id.
        ts = call.params.get("thread_ts") or call.params.get("ts")
        owner = threads.get(str(ts)) if ts else next(
            (i.incident_id for i in incidents if i.incident_id in str(call.params)), None)
        if owner is None:
            unattributed += 1
        else:
            per_incident[owner] += 1
            methods.setdefault(owner, Counter())[call.method] += 1
    slack_total = sum(per_incident.values()) + unattributed
    worst = max(per_incident.values(), default=0)
    rate = tally.handled / elapsed

    def verdict(ok: bool) -> str:
        return "met" if ok else "NOT met"

    print(f"alarm storm: {total} deliveries of {ALARMS} alarms (SNS, EventBridge, Lambda "
          f"action; {DUPLICATES:.0%} duplicates), {THREADS} threads, moto in-process, "
          "local Slack")
    print(f"  handled                {tally.handled:>8} in {elapsed:6.1f} s"
          f"   errors: {len(tally.errors)}")
    for error in Counter(tally.errors).most_common(3):
        print(f"      {error[1]} x {error[0][:160]}")
    if slack_limited:  # the delivering threads wait out Slack's Retry-After: not a rate
        print(f"  events/s (end to end)  {rate:>8.0f}     (threads wait out Slack's "
              "Retry-After here: see storm.py for the rate)")
    else:
        print(f"  events/s (end to end)  {rate:>8.0f}     goal >= {GOAL_RATE}: "
              f"{verdict(rate >= GOAL_RATE)}"
              + ("" if rate >= GOAL_RATE else " (moto's emulation is most of it, see below)"))
    print(f"  incidents opened       {len(incidents):>8}     goal == {ALARMS}: "
          f"{verdict(len(incidents) == ALARMS and set(by_alarm) == expected)}"
          f"  (max per alarm {max(by_alarm.values(), default=0)})")
    print(f"  playbook runs          {runs:>8}     goal: one per incident with a playbook "
          f"({with_playbook}), no double action: "
          f"{verdict(runs == with_playbook and not double)}")
    for problem in double[:5]:
        print(f"      {problem}")
    print(f"  Slack calls            {slack_total:>8}     "
          f"{slack_total / max(len(incidents), 1):.1f} per incident on average, at most "
          f"{worst} for one; goal <= {GOAL_SLACK_PER_INCIDENT}: "
          f"{verdict(worst <= GOAL_SLACK_PER_INCIDENT and not unattributed)}"
          + (f" ({unattributed} not attributable to an incident)" if unattributed else ""))
    remembered = tally.memory["same message"] + tally.memory["old news"]
    print(f"  from memory            {remembered:>8}     of {sum(tally.memory.values())}: "
          f"{tally.memory['same message']} the same message again, "
          f"{tally.memory['old news']} old news (no later than a")
    print("                                  change this process had handled of the alarm, "
          "fireline/redeliveries.py); the rest read the store")
    aws_calls = sum(meter.total.aws_calls.values())
    print(f"  AWS calls              {aws_calls:>8}     {aws_calls / max(tally.handled, 1):.1f}"
          f" per delivery; moto's own time {meter.total.aws_seconds:6.1f} s of the threads'")
    print(f"  Fireline's own CPU     {own * 1000:>8.2f} ms per delivery (boto3's and slack-sdk's "
          "client-side work in, moto's and")
    print(f"                                  the Slack exchanges' out): with AWS and Slack "
          f"instant, about {1 / own if own else 0:.0f} events/s")
    print(f"                                  per Python process (the GIL keeps it to one "
          f"core); goal >= {GOAL_RATE}: {verdict(own and 1 / own >= GOAL_RATE)}")
    if worst:
        heaviest = max(per_incident, key=per_incident.__getitem__)
        print(f"      the busiest thread: {dict(methods[heaviest])}")
    # Figures are reported, not enforced; a wrong count of incidents or actions is a bug.
    broken = tally.errors or len(incidents) != ALARMS or runs != with_playbook or double
    return 1 if broken else 0


def _catch_up(app: Any, slack: Any, per_second: float) -> int:
    """After a storm in a rate-limited channel: how many threads Slack has whole, then the
    minute's check (`check_watched`) until every one is, each sweep once the notifier's
    pause is over. Returns 1 if a thread is still not whole after `MAX_SWEEPS`."""
    posted_in_storm = len(slack.calls)
    refused = sum(1 for call in slack.calls if call.status == 429)
    print(f"  Slack's limit          {per_second:g} messages/s per channel, bursts of "
          f"{SLACK_BURST}: {refused} of {posted_in_storm} requests refused (HTTP 429, "
          "not in the Slack calls above)")
    started = time.perf_counter()
    for sweep in range(MAX_SWEEPS + 1):
        incidents = app.store.list(limit=1000)
        whole, behind, parentless, repeated = _threads(app, slack, incidents)
        label = "after the storm" if sweep == 0 else f"after check {sweep}"
        print(f"  {label:22} {whole:>4} of {len(incidents)} threads whole in Slack; "
              f"{behind} behind, {parentless} without their parent"
              + (f"; {repeated} entries posted twice" if repeated else ""))
        if whole == len(incidents) or sweep == MAX_SWEEPS:
            break
        while app.notifier.paused:
            time.sleep(0.1)
        app.check_watched()
    took = time.perf_counter() - started
    catch_up_calls = len(slack.calls) - posted_in_storm
    print(f"  caught up in           {took:8.1f} s with {catch_up_calls} Slack calls "
          f"({catch_up_calls / max(len(incidents), 1):.1f} per incident)")
    return 0 if whole == len(incidents) and not repeated else 1


def _threads(app: Any, slack: Any, incidents: list[Any]) -> tuple[int, int, int, int]:
    """Threads whose every timeline entry shows in Slack; behind (some missing); without a
    parent; and entries that show more than once (a catch-up must not repeat a reply)."""
    whole = behind = parentless = repeated = 0
    for incident in incidents:
        if incident.slack is None:
            parentless += 1
            continue
        # As text, entities unescaped: what a reader of the thread sees.
        shown = slack.render_thread(incident.slack.channel, incident.slack.ts)
        texts = [entry.text for entry in app.store.timeline(incident.incident_id)
                 if entry.kind != "opened"]
        missing = [text for text in texts if text not in shown]
        repeated += sum(1 for text in set(texts) if shown.count(text) > texts.count(text))
        if missing:
            behind += 1
        else:
            whole += 1
    return whole, behind, parentless, repeated


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,000 deliveries, for development")
    parser.add_argument("--deliveries", type=int, default=None)
    parser.add_argument("--slack-limit", type=float, default=None, metavar="PER_SECOND",
                        help="Slack refuses posts over this many a second per channel; "
                             "then the minute's checks catch the threads up")
    args = parser.parse_args()
    total = args.deliveries or (1_000 if args.quick else 10_000)
    return storm(total, slack_per_second=args.slack_limit)


if __name__ == "__main__":
    sys.exit(main())
