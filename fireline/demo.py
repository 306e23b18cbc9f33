"""`fireline demo`: a bad deploy, an alarm, a revert, and the Slack thread that tells it.

Everything runs on 127.0.0.1: moto's server as AWS, a Slack-compatible server as Slack.
The alarm goes through the real entry point, `handlers.alarm.handler`.
"""

from __future__ import annotations

import sys
from typing import TextIO

from fireline import aws
from fireline.local.aws_server import local_aws, patched_env
from fireline.local.lambda_context import LambdaContext
from fireline.local.lambda_fixture import deploy_versions
from fireline.local.payloads import sns_lambda_errors_event
from fireline.local.slack_server import LocalSlack

FUNCTION = "checkout-api"
ALARM = "checkout-api-prod-errors"
CHANNEL = "#incidents"


def run_demo(scenario: str = "bad-deploy", out: TextIO = sys.stdout) -> int:
    if scenario != "bad-deploy":
        print(f"unknown scenario {scenario!r}", file=out)
        return 2
    with local_aws() as endpoint, LocalSlack() as slack, patched_env({
        "FIRELINE_TABLE": "fireline-demo-incidents",
        "SLACK_BOT_TOKEN": "xoxb-demo",
        "FIRELINE_SLACK_CHANNEL": CHANNEL,
        "FIRELINE_SLACK_API_URL": slack.base_url,
        "POWERTOOLS_METRICS_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
    }):
        return _bad_deploy(endpoint, slack, out)


def _bad_deploy(endpoint: str, slack: LocalSlack, out: TextIO) -> int:
    from fireline.app import Fireline
    from fireline.config import Settings
    from handlers import _runtime
    from handlers.alarm import handler

    _runtime.fireline.cache_clear()
    say = _printer(out)
    say(f"Local AWS (moto) at {endpoint}; local Slack at {slack.base_url}")
    Fireline(Settings.from_env()).store.create_table()
    deploy_versions(aws.client, FUNCTION, versions=3, alias="live")
    say(f"Deployed {FUNCTION} versions 1, 2, 3; alias live -> version 3 (the bad release)")

    event = sns_lambda_errors_event(function_name=FUNCTION, alarm_name=ALARM,
                                    tags={"env": "production", "team": "payments"})
    say(f"CloudWatch alarm {ALARM} goes to ALARM; SNS delivers it to handlers.alarm.handler")
    result = handler(event, LambdaContext(function_name="fireline-alarm"))
    say(f"Handler answered: {result}")

    say("\n=== Slack thread ===")
    for channel, ts in slack.threads():
        say(slack.render_thread(channel, ts))

    store = _runtime.fireline().store
    for incident in result["incidents"]:
        say(f"\n=== Timeline of {incident['incident_id']} ===")
        for entry in store.timeline(incident["incident_id"]):
            say(f"{entry.at:%H:%M:%S.%f}"[:-3] + f"  {entry.actor:<8} {entry.kind:<8} {entry.text}")

    alias = aws.client("lambda").get_alias(FunctionName=FUNCTION, Name="live")
    say(f"\nAlias live now points at version {alias['FunctionVersion']}.")
    ok = alias["FunctionVersion"] == "2"
    say("Demo finished: the bad deploy was reverted." if ok else "Demo FAILED: alias not reverted.")
    return 0 if ok else 1


def _printer(out: TextIO):
    def say(text: str) -> None:
        print(text, file=out, flush=True)

    return say
