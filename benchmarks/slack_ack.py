"""Time from a signed slash command to the handler's answer (Slack allows 3 seconds).

Warm: `handlers.slack.handler` answering `/fireline ack ID` (verify, parse, authorise with
an incident read, hand off) with the async hand-off stubbed and AWS as moto in-process.
Cold: a fresh process importing `handlers.slack` and answering `/fireline help`.
Goals (issue "Slack slash commands"): warm p99 < 50 ms; cold < 1.5 s.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ROUNDS = 200
COLD_ROUNDS = 5


def _percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def warm() -> tuple[float, float]:
    import tempfile

    from moto import mock_aws

    from fireline import aws
    from fireline.incidents import Incident
    from fireline.local.aws_server import LOCAL_ENV, patched_env
    from fireline.local.lambda_context import LambdaContext
    from fireline.local.slack_server import LocalSlack
    from tests.support.slack_events import (
        ACCESS_POLICY,
        SIGNING_SECRET,
        function_url_event,
        slash_body,
    )

    with tempfile.TemporaryDirectory() as folder, LocalSlack() as slack:
        access = Path(folder) / "access.yaml"
        access.write_text(ACCESS_POLICY)
        with patched_env({**LOCAL_ENV, "FIRELINE_TABLE": "bench", "SLACK_BOT_TOKEN": "xoxb-b",
                          "FIRELINE_SLACK_CHANNEL": "#bench",
                          "FIRELINE_SLACK_API_URL": slack.base_url,
                          "SLACK_SIGNING_SECRET": SIGNING_SECRET,
                          "FIRELINE_ACCESS": str(access), "POWERTOOLS_METRICS_DISABLED": "true",
                          "POWERTOOLS_LOG_LEVEL": "WARNING",
                          "AWS_LAMBDA_FUNCTION_NAME": "fireline-slack"}), mock_aws():
            aws.reset_clients()
            from handlers import _runtime
            from handlers import slack as slack_handler

            _runtime.fireline.cache_clear()
            slack_handler.door.cache_clear()
            app = _runtime.fireline()
            app.store.create_table()
            incident = app.store.create(Incident(
                incident_id="INC-20261123-abcdef", alarm_name="bench", title="bench",
                severity="SEV-3"))
            door = slack_handler.door()
            door.hand_off = lambda job: None  # the async invoke, stubbed
            context = LambdaContext(function_name="fireline-slack")
            samples = []
            for _ in range(ROUNDS):
                event = function_url_event(slash_body(f"ack {incident.incident_id}"))
                started = time.perf_counter()
                response = slack_handler.handler(event, context)
                samples.append(time.perf_counter() - started)
                assert response["statusCode"] == 200, response
            slack_handler.door.cache_clear()
            _runtime.fireline.cache_clear()
    return _percentiles(samples)


COLD = textwrap.dedent("""
    import os, sys, time, tempfile
    started = time.perf_counter()
    sys.path.insert(0, {root!r})
    from tests.support.slack_events import ACCESS_POLICY, SIGNING_SECRET
    from tests.support.slack_events import function_url_event, slash_body
    folder = tempfile.mkdtemp()
    open(os.path.join(folder, "access.yaml"), "w").write(ACCESS_POLICY)
    os.environ.update(SLACK_SIGNING_SECRET=SIGNING_SECRET, FIRELINE_ACCESS=folder + "/access.yaml",
                      POWERTOOLS_METRICS_DISABLED="true", POWERTOOLS_LOG_LEVEL="WARNING",
                      AWS_DEFAULT_REGION="us-east-1", AWS_ACCESS_KEY_ID="x",
                      AWS_SECRET_ACCESS_KEY="x", AWS_ENDPOINT_URL="http://127.0.0.1:9")
    event = function_url_event(slash_body("help"))
    from handlers.slack import handler
    from fireline.local.lambda_context import LambdaContext
    response = handler(event, LambdaContext(function_name="fireline-slack"))
    assert response["statusCode"] == 200, response
    print(time.perf_counter() - started)
""")


def cold() -> float:
    times = []
    for _ in range(COLD_ROUNDS):
        out = subprocess.run([sys.executable, "-c", COLD.format(root=str(ROOT))],
                             capture_output=True, text=True, check=True, cwd=ROOT)
        times.append(float(out.stdout.strip().splitlines()[-1]))
    return statistics.median(times)


def main() -> int:
    p50, p99 = warm()
    print(f"slash command ack, warm, {ROUNDS} requests (moto in-process, hand-off stubbed):")
    print(f"  p50 {p50 * 1000:7.2f} ms   p99 {p99 * 1000:7.2f} ms   goal: p99 < 50 ms")
    median = cold()
    print(f"fresh process: import handlers.slack + answer `help`, median of {COLD_ROUNDS}:")
    print(f"  {median * 1000:7.0f} ms   goal: < 1500 ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
