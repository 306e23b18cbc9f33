"""`fireline demo`: the stories Fireline tells, each with the Slack thread that tells it.

- bad-deploy: a bad release, its Errors alarm, the alias reverted (through the real entry
  point, `handlers.alarm.handler`).
- data-corruption: a table's data corrupted; the on-call engineer asks for a point-in-time
  restore with the `fireline` CLI, a second engineer approves it, the table is restored
  and the function repointed at it.

Everything runs on 127.0.0.1: moto's server as AWS, a Slack-compatible server as Slack.
"""

from __future__ import annotations

import contextlib
import io
import sys
from collections.abc import Callable
from typing import TextIO

from fireline import aws
from fireline.local.aws_server import local_aws, patched_env
from fireline.local.database_fixture import create_pitr_table
from fireline.local.lambda_context import LambdaContext
from fireline.local.lambda_fixture import deploy_versions
from fireline.local.payloads import sns_lambda_errors_event
from fireline.local.slack_server import LocalSlack

FUNCTION = "checkout-api"
ALARM = "checkout-api-prod-errors"
CHANNEL = "#incidents"


ORDERS_TABLE = "orders"
ORDERS_FUNCTION = "orders-api"
REQUESTER = "bob@payments"
APPROVER = "alice@payments"


def run_demo(scenario: str = "all", out: TextIO = sys.stdout) -> int:
    stories = SCENARIOS if scenario == "all" else {scenario: SCENARIOS.get(scenario)}
    if None in stories.values():
        print(f"unknown scenario {scenario!r} (choose from all, {', '.join(SCENARIOS)})",
              file=out)
        return 2
    for name, story in stories.items():
        if len(stories) > 1:
            print(f"\n##### Scenario: {name} #####", file=out, flush=True)
        status = _on_local_stack(story, out)  # type: ignore[arg-type]
        if status:
            return status
    return 0


def _on_local_stack(story: Callable[[str, LocalSlack, TextIO], int], out: TextIO) -> int:
    with local_aws() as endpoint, LocalSlack() as slack, patched_env({
        "FIRELINE_TABLE": "fireline-demo-incidents",
        "SLACK_BOT_TOKEN": "xoxb-demo",
        "FIRELINE_SLACK_CHANNEL": CHANNEL,
        "FIRELINE_SLACK_API_URL": slack.base_url,
        "POWERTOOLS_METRICS_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
        "FIRELINE_STATE_MACHINE_ARN": "",
    }):
        return story(endpoint, slack, out)


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


def _data_corruption(endpoint: str, slack: LocalSlack, out: TextIO) -> int:
    from fireline.app import Fireline
    from fireline.config import Settings

    say = _printer(out)
    say(f"Local AWS (moto) at {endpoint}; local Slack at {slack.base_url}")
    app = Fireline(Settings.from_env())
    app.store.create_table()
    table = create_pitr_table(
        aws.client, ORDERS_TABLE, ttl_attribute="expires_at", tags={"team": "payments"},
        stream="NEW_AND_OLD_IMAGES",
        items=[{"pk": f"order-{n}", "total": 100 + n} for n in range(1, 6)])
    deploy_versions(aws.client, ORDERS_FUNCTION, versions=1, alias="live",
                    environment={"TABLE_NAME": ORDERS_TABLE, "LOG_LEVEL": "INFO"})
    say(f"Table {ORDERS_TABLE} (5 orders, PITR on, TTL, stream, tags); function "
        f"{ORDERS_FUNCTION} reads TABLE_NAME={ORDERS_TABLE} through alias live")
    ddb = aws.client("dynamodb")
    for n in range(1, 6):
        ddb.update_item(TableName=ORDERS_TABLE, Key={"pk": {"S": f"order-{n}"}},
                        UpdateExpression="SET #t = :zero", ExpressionAttributeNames={"#t": "total"},
                        ExpressionAttributeValues={":zero": {"N": "0"}})
    say("A bad migration sets every order total to 0. The data is corrupt.")
    # moto freezes the restorable window at the moment PITR was enabled; in AWS the latest
    # end follows the clock and the default (the request time minus 5 minutes) would do.
    restore_to = table["latest"].isoformat(timespec="milliseconds").replace("+00:00", "Z")
    say(f"(moto's restorable window is frozen at {restore_to}; the demo restores to it)")

    run = ["run", "point-in-time-restore", "-p", "engine=dynamodb",
           "-p", f"source={ORDERS_TABLE}", "-p", f"restore_to={restore_to}",
           "-p", f"cutover={ORDERS_FUNCTION}:TABLE_NAME", "-p", "alias=live"]
    if _cli(say, [*run, "--dry-run"]) or _cli(
            say, [*run, "--as", REQUESTER, "--yes", "--reason", "order totals zeroed"]):
        say("Demo FAILED: the restore was not planned.")
        return 1
    incident_id = app.store.list(limit=1)[0].incident_id
    _cli(say, ["approve", incident_id, "--as", REQUESTER])  # refused: the requester
    _cli(say, ["approve", incident_id, "--as", APPROVER, "--note", "checked the plan"])

    say("\n=== Slack thread ===")
    for channel, ts in slack.threads():
        say(slack.render_thread(channel, ts))
    _cli(say, ["incidents", "show", incident_id])

    incident = app.store.get(incident_id)
    target = (incident.outcome or {}).get("after", {}).get("target", "")
    env = aws.client("lambda").get_function_configuration(
        FunctionName=ORDERS_FUNCTION, Qualifier="live")["Environment"]["Variables"]
    restored = ddb.scan(TableName=target)["Items"] if target else []
    say(f"\nRestored table {target or '(none)'}: {len(restored)} orders; "
        f"{ORDERS_FUNCTION}:live reads TABLE_NAME={env.get('TABLE_NAME')}, "
        f"LOG_LEVEL={env.get('LOG_LEVEL')} (untouched); source {ORDERS_TABLE} kept as it was.")
    say("(moto copies a table's current items into a restore, corrupted totals included; "
        "AWS restores them as they were at restore_to.)")
    ok = incident.status == "mitigated" and env.get("TABLE_NAME") == target != ""
    say("Demo finished: the table was restored and the function repointed." if ok
        else "Demo FAILED: the restore did not complete.")
    return 0 if ok else 1


def _cli(say: Callable[[str], None], argv: list[str]) -> int:
    """Run a `fireline` command as a person would, showing it and what it printed."""
    from fireline.cli import main

    say("\n$ fireline " + " ".join(argv))
    printed, errors = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(errors):
        status = main(argv)
    for text in (printed.getvalue(), errors.getvalue()):
        if text.strip():
            say(text.rstrip())
    return status


SCENARIOS: dict[str, Callable[[str, LocalSlack, TextIO], int]] = {
    "bad-deploy": _bad_deploy,
    "data-corruption": _data_corruption,
}


def _printer(out: TextIO):
    def say(text: str) -> None:
        print(text, file=out, flush=True)

    return say
