"""Warm per-event time of the whole alarm path (handler -> incident -> playbook -> Slack).

AWS is moto in-process and Slack the local Slack-compatible server, so the figures are
Fireline's own work plus those stand-ins' (moto's DynamoDB and Lambda emulation dominate).
Prints p50/p99 for three kinds of delivery. The goal (issue "Measured") is p99 <= 10 ms
with AWS and Slack answered instantly; moto is not instant, so read these as an upper bound.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

ROUNDS = 60


def _percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"p50 {statistics.median(ordered) * 1000:7.2f} ms   p99 {p99 * 1000:7.2f} ms"


def main() -> int:
    from moto import mock_aws

    from fireline import aws
    from fireline.local.aws_server import LOCAL_ENV, patched_env
    from fireline.local.lambda_context import LambdaContext
    from fireline.local.lambda_fixture import deploy_versions
    from fireline.local.payloads import sns_lambda_errors_event
    from fireline.local.slack_server import LocalSlack

    with LocalSlack() as slack, patched_env({
        **LOCAL_ENV, "FIRELINE_TABLE": "bench", "SLACK_BOT_TOKEN": "xoxb-bench",
        "FIRELINE_SLACK_CHANNEL": "#bench", "FIRELINE_SLACK_API_URL": slack.base_url,
        "POWERTOOLS_METRICS_DISABLED": "true", "POWERTOOLS_LOG_LEVEL": "ERROR",
    }), mock_aws(config={"lambda": {"use_docker": False}}):
        os.environ.pop("AWS_ENDPOINT_URL", None)
        aws.reset_clients()
        from handlers import _runtime
        from handlers.alarm import handler

        _runtime.fireline.cache_clear()
        _runtime.fireline().store.create_table()
        context = LambdaContext()
        for n in range(ROUNDS):
            deploy_versions(aws.client, f"fn-{n}", versions=2)

        def timed(events: list[dict]) -> list[float]:
            samples = []
            for event in events:
                start = time.perf_counter()
                handler(event, context)
                samples.append(time.perf_counter() - start)
            return samples

        handler(sns_lambda_errors_event(function_name="warm-up", alarm_name="warm-up",
                                        tags={"fireline:playbook": "none"}), context)
        revert = timed([sns_lambda_errors_event(function_name=f"fn-{n}",
                                                alarm_name=f"fn-{n}-prod-errors")
                        for n in range(ROUNDS)])
        repeat = timed([sns_lambda_errors_event(function_name=f"fn-{n}",
                                                alarm_name=f"fn-{n}-prod-errors")
                        for n in range(ROUNDS)])
        no_playbook = timed([sns_lambda_errors_event(function_name=f"fn-{n}",
                                                     alarm_name=f"fn-{n}-other",
                                                     tags={"fireline:playbook": "none"})
                             for n in range(ROUNDS)])

    print(f"alarm path, warm, {ROUNDS} events each (moto in-process, local Slack):")
    print(f"  new incident + alias revert + Slack thread    {_percentiles(revert)}")
    print(f"  repeat delivery (attach to open incident)     {_percentiles(repeat)}")
    print(f"  new incident, no playbook                     {_percentiles(no_playbook)}")
    print("  goal (issue 8, AWS and Slack instant): p99 <= 10 ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
