"""`fireline demo`: the stories Fireline tells, each with the Slack thread that tells it.

- bad-deploy: a bad release, its Errors alarm, the alias reverted (through the real entry
  point, `handlers.alarm.handler`).
- data-corruption: a table's data corrupted; the on-call engineer asks for a point-in-time
  restore with the `fireline` CLI, a second engineer approves it, the table is restored
  and the function repointed at it.
- stale-frontend: a broken static release behind CloudFront; the CDN's 5xx alarm runs the
  team's runbook chain: roll the bucket back to the last good release, then invalidate.

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
from fireline.local.cdn_fixture import create_distribution
from fireline.local.database_fixture import create_pitr_table
from fireline.local.lambda_context import LambdaContext
from fireline.local.lambda_fixture import deploy_versions
from fireline.local.payloads import sns_alarm_event, sns_lambda_errors_event
from fireline.local.slack_server import LocalSlack
from fireline.local.static_site_fixture import (
    create_versioned_bucket,
    pause_between_releases,
    read_site,
    upload_release,
)

FUNCTION = "checkout-api"
DEPLOYER = "ci-deploy"
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
    # The local CloudTrail records the stories' deploys, so "what changed" has them.
    with local_aws(cloudtrail=True) as endpoint, LocalSlack() as slack, patched_env({
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
    deploy_versions(_deployer(DEPLOYER), FUNCTION, versions=3, alias="live")
    say(f"{DEPLOYER} deployed {FUNCTION} versions 1, 2, 3; alias live -> version 3 "
        "(the bad release)")

    event = sns_lambda_errors_event(function_name=FUNCTION, alarm_name=ALARM,
                                    tags={"env": "production", "team": "payments"})
    say(f"CloudWatch alarm {ALARM} goes to ALARM; SNS delivers it to handlers.alarm.handler")
    result = handler(event, LambdaContext(function_name="fireline-alarm"))
    say(f"Handler answered: {result}")
    say(f"The errors stop; {ALARM} goes back to OK and SNS delivers that too")
    recovered = handler(sns_lambda_errors_event(
        function_name=FUNCTION, alarm_name=ALARM, state="OK", old_state="ALARM",
        tags={"env": "production", "team": "payments"}),
        LambdaContext(function_name="fireline-alarm"))
    say(f"Handler answered: {recovered}")

    say("\n=== Slack thread ===")
    for channel, ts in slack.threads():
        say(slack.render_thread(channel, ts))

    store = _runtime.fireline().store
    for incident in result["incidents"]:
        context = [e for e in store.timeline(incident["incident_id"]) if e.kind == "context"]
        if context:
            say(f"\nContext ({', '.join(e.data.get('enrichment', '?') for e in context)}) "
                f"gathered in {context[0].data.get('seconds', 0):.2f} s, after the revert "
                f"(budget {_runtime.fireline().settings.enrich_budget_seconds:g} s)")
        say(f"\n=== Timeline of {incident['incident_id']} ===")
        for entry in store.timeline(incident["incident_id"]):
            say(f"{entry.at:%H:%M:%S.%f}"[:-3] + f"  {entry.actor:<8} {entry.kind:<8} {entry.text}")

    alias = aws.client("lambda").get_alias(FunctionName=FUNCTION, Name="live")
    say(f"\nAlias live now points at version {alias['FunctionVersion']}.")
    final = store.get(result["incidents"][0]["incident_id"])
    say(f"Incident {final.incident_id} is {final.status}.")
    ok = alias["FunctionVersion"] == "2" and final.status == "resolved"
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


def _deployer(user: str) -> aws.ClientFactory:
    """Clients with the credentials of the IAM user `user` (created here): the deploy is
    theirs, so CloudTrail names them as who changed the function."""
    import boto3

    iam = aws.client("iam")
    iam.create_user(UserName=user)
    key = iam.create_access_key(UserName=user)["AccessKey"]
    session = boto3.session.Session(aws_access_key_id=key["AccessKeyId"],
                                     aws_secret_access_key=key["SecretAccessKey"])

    def clients(service: str, region: str | None = None) -> object:
        return session.client(service, region_name=region, config=aws.RETRIES)

    return clients


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


SITE_BUCKET = "storefront-site"
SITE_ALARM = "storefront-cdn-5xx"
SITE_RUNBOOK = """\
rules:
  - name: storefront-broken-release
    match: {{namespace: AWS/CloudFront, metric: 5xxErrorRate, tags: {{site: storefront}}}}
    severity: SEV-2
    run:
      - playbook: s3-static-rollback
        params: {{bucket: "{{tags.bucket}}", restore_to: "{restore_to}"}}
      - playbook: cache-invalidation    # distribution_id: the alarm's DistributionId
"""


def _stale_frontend(endpoint: str, slack: LocalSlack, out: TextIO) -> int:
    import tempfile
    from pathlib import Path

    from handlers import _runtime
    from handlers.alarm import handler

    say = _printer(out)
    say(f"Local AWS (moto) at {endpoint}; local Slack at {slack.base_url}")
    create_versioned_bucket(aws.client, SITE_BUCKET)
    upload_release(aws.client, SITE_BUCKET, {
        "index.html": "<h1>Storefront</h1><script src=app.js></script>",
        "app.js": "render(cart)", "style.css": "body{font:16px serif}"})
    last_good = pause_between_releases()
    upload_release(aws.client, SITE_BUCKET, {
        "index.html": "<h1>Storefront</h1><script src=app.js></script><script src=promo.js>",
        "app.js": "render(cart.itemz)", "promo.js": "banner()"})
    distribution = create_distribution(aws.client, aliases=["shop.example.com"],
                                       origin_domain=f"{SITE_BUCKET}.s3.amazonaws.com")
    say(f"Bucket {SITE_BUCKET} (versioned): release 1, then release 2 (a broken app.js and a "
        f"new promo.js); CloudFront {distribution['Id']} serves it as shop.example.com")

    stamp = last_good.isoformat(timespec="seconds").replace("+00:00", "Z")
    runbook = SITE_RUNBOOK.format(restore_to=stamp)
    say("\nThe team's runbook rule (the last good release's time filled in by their "
        "pipeline):\n" + runbook)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "storefront.yaml"
        path.write_text(runbook, encoding="utf-8")
        with patched_env({"FIRELINE_RUNBOOK": str(path)}):
            _runtime.fireline.cache_clear()
            _runtime.fireline().store.create_table()
            event = sns_alarm_event(
                alarm_name=SITE_ALARM, namespace="AWS/CloudFront", metric="5xxErrorRate",
                dimensions={"DistributionId": distribution["Id"], "Region": "Global"},
                tags={"site": "storefront", "bucket": SITE_BUCKET, "env": "production"})
            say(f"CloudWatch alarm {SITE_ALARM} goes to ALARM; SNS delivers it")
            result = handler(event, LambdaContext(function_name="fireline-alarm"))
            say(f"Handler answered: {result}")
            ok_event = sns_alarm_event(
                alarm_name=SITE_ALARM, namespace="AWS/CloudFront", metric="5xxErrorRate",
                dimensions={"DistributionId": distribution["Id"], "Region": "Global"},
                tags={"site": "storefront", "bucket": SITE_BUCKET, "env": "production"},
                state="OK", old_state="ALARM")
            say(f"The 5xx stop; {SITE_ALARM} goes back to OK")
            result = handler(ok_event, LambdaContext(function_name="fireline-alarm"))
            store = _runtime.fireline().store
            _runtime.fireline.cache_clear()

    say("\n=== Slack thread ===")
    for channel, ts in slack.threads():
        say(slack.render_thread(channel, ts))
    [incident] = result["incidents"]
    say(f"\n=== Timeline of {incident['incident_id']} ===")
    for entry in store.timeline(incident["incident_id"]):
        say(f"{entry.at:%H:%M:%S.%f}"[:-3] + f"  {entry.actor:<8} {entry.kind:<8} {entry.text}")

    site = read_site(aws.client, SITE_BUCKET)
    invalidations = aws.client("cloudfront").list_invalidations(
        DistributionId=distribution["Id"])["InvalidationList"].get("Items", [])
    say(f"\nThe bucket serves app.js = {site.get('app.js', b'').decode()!r} (release 1); "
        f"promo.js, new in release 2, is left alone (delete_new is off); "
        f"{len(invalidations)} invalidation of /* on {distribution['Id']}.")
    ok = (incident["status"] == "resolved" and site.get("app.js") == b"render(cart)"
          and len(invalidations) == 1)
    say("Demo finished: the release was rolled back and the cache invalidated." if ok
        else "Demo FAILED: the chain did not complete.")
    return 0 if ok else 1


SCENARIOS: dict[str, Callable[[str, LocalSlack, TextIO], int]] = {
    "bad-deploy": _bad_deploy,
    "data-corruption": _data_corruption,
    "stale-frontend": _stale_frontend,
}


def _printer(out: TextIO):
    def say(text: str) -> None:
        print(text, file=out, flush=True)

    return say
