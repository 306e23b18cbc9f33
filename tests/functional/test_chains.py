"""Runbook rules that run several playbooks in order, through the alarm path: moto as AWS,
the local Slack server as Slack."""

from __future__ import annotations

from pathlib import Path

import pytest

from fireline import aws
from fireline.app import Fireline
from fireline.config import Settings
from fireline.local.lambda_fixture import deploy_versions
from fireline.local.payloads import sns_lambda_errors_event

RUNBOOK = """
rules:
  - name: api-and-worker
    match: {namespace: AWS/Lambda, tags: {env: production}}
    severity: SEV-2
    run:
      - playbook: lambda-alias-revert
        params: {function_name: "{dimensions.FunctionName}"}
      - playbook: lambda-alias-revert
        params: {function_name: "{tags.worker}"}
"""


@pytest.fixture
def app(moto, settings: Settings, tmp_path: Path) -> Fireline:
    runbook = tmp_path / "chain.yaml"
    runbook.write_text(RUNBOOK)
    fireline = Fireline(settings.model_copy(update={"runbook_path": runbook}))
    fireline.store.create_table()
    return fireline


def _alarm() -> dict:
    return sns_lambda_errors_event(function_name="checkout", alarm_name="checkout-prod-errors",
                                   tags={"env": "production", "worker": "checkout-worker"})


def _alias(name: str) -> str:
    return aws.client("lambda").get_alias(FunctionName=name, Name="live")["FunctionVersion"]


def test_a_chain_runs_each_playbook_in_order_and_shows_each_in_the_thread(app, local_slack):
    deploy_versions(aws.client, "checkout", versions=3)
    deploy_versions(aws.client, "checkout-worker", versions=5)

    [result] = app.handle_event(_alarm())["incidents"]

    incident = app.store.get(result["incident_id"])
    assert (incident.status, incident.playbook_state) == ("mitigating", "done")
    assert (_alias("checkout"), _alias("checkout-worker")) == ("2", "4")
    assert [(link.playbook, link.state) for link in incident.chain] == [
        ("lambda-alias-revert", "done"), ("lambda-alias-revert", "done")]
    texts = [e.text for e in app.store.timeline(incident.incident_id)
             if e.kind in {"plan", "verify", "chain"}]
    assert texts == [
        "lambda-alias-revert (1/2) · point alias live from version 3 to version 2",
        "lambda-alias-revert (1/2) · alias live serves version 2",
        "next: lambda-alias-revert (2 of 2)",
        "lambda-alias-revert (2/2) · point alias live from version 5 to version 4",
        "lambda-alias-revert (2/2) · alias live serves version 4",
    ]
    replies = [c.params["text"] for c in local_slack.calls_to("chat.postMessage")
               if c.params.get("thread_ts")]
    assert sum("(2/2) · point alias live" in text for text in replies) == 1


def test_a_chain_stops_at_a_failing_second_step_and_says_what_was_done(app, local_slack):
    deploy_versions(aws.client, "checkout", versions=3)
    deploy_versions(aws.client, "checkout-worker", versions=1)  # nothing to revert to

    [result] = app.handle_event(_alarm())["incidents"]

    incident = app.store.get(result["incident_id"])
    assert (incident.status, incident.playbook_state) == ("failed", "failed")
    assert _alias("checkout") == "2"  # the first link's change stands, and is recorded
    assert [(link.playbook, link.state) for link in incident.chain] == [
        ("lambda-alias-revert", "done"), ("lambda-alias-revert", "failed")]
    [failed] = [e for e in app.store.timeline(incident.incident_id) if e.kind == "failed"]
    assert "no earlier good version of checkout-worker" in failed.text
    assert "done so far: lambda-alias-revert (alias live now points at version 2)" in failed.text
    assert any("done so far" in c.params.get("text", "")
               for c in local_slack.calls_to("chat.postMessage"))


def test_undo_of_a_chain_puts_back_every_link_newest_first(app):
    deploy_versions(aws.client, "checkout", versions=3)
    deploy_versions(aws.client, "checkout-worker", versions=5)
    [result] = app.handle_event(_alarm())["incidents"]

    undone = app.undo(result["incident_id"], "alice")

    assert (_alias("checkout"), _alias("checkout-worker")) == ("3", "5")
    undo_texts = [e.text for e in app.store.timeline(undone.incident_id) if e.kind == "undo"]
    assert undo_texts == ["alias live put back on version 5", "alias live put back on version 3"]


def test_undo_after_a_failed_chain_puts_back_what_was_done(app):
    deploy_versions(aws.client, "checkout", versions=3)
    deploy_versions(aws.client, "checkout-worker", versions=1)
    [result] = app.handle_event(_alarm())["incidents"]

    app.undo(result["incident_id"], "alice")

    assert (_alias("checkout"), _alias("checkout-worker")) == ("3", "1")


def test_a_chain_that_runs_one_playbook_twice_gives_each_run_its_own_key(moto, settings,
                                                                          tmp_path):
    from fireline.local.cdn_fixture import create_distribution
    from fireline.local.payloads import sns_alarm_event

    runbook = tmp_path / "twice.yaml"
    runbook.write_text("""
rules:
  - name: assets-then-pages
    match: {namespace: AWS/CloudFront}
    run:
      - playbook: cache-invalidation
        params: {paths: ["/assets/*"]}
      - playbook: cache-invalidation
        params: {paths: ["/index.html"]}
""")
    app = Fireline(settings.model_copy(update={"runbook_path": runbook}))
    app.store.create_table()
    distribution = create_distribution(aws.client)

    [result] = app.handle_event(sns_alarm_event(
        alarm_name="cdn-5xx", namespace="AWS/CloudFront", metric="5xxErrorRate",
        dimensions={"DistributionId": distribution["Id"], "Region": "Global"}))["incidents"]

    assert result["status"] == "mitigating"
    cloudfront = aws.client("cloudfront")
    items = cloudfront.list_invalidations(
        DistributionId=distribution["Id"])["InvalidationList"]["Items"]
    batches = [cloudfront.get_invalidation(DistributionId=distribution["Id"], Id=i["Id"])
               ["Invalidation"]["InvalidationBatch"] for i in items]
    # AWS answers a repeated CallerReference with the first batch (or refuses other paths).
    assert sorted(b["Paths"]["Items"][0] for b in batches) == ["/assets/*", "/index.html"]
    assert len({b["CallerReference"] for b in batches}) == 2
    assert {b["CallerReference"] for b in batches} == {
        result["incident_id"], f"{result['incident_id']}-link2"}


def test_a_frontend_chain_stopping_at_the_invalidation_keeps_the_rollback_on_record(
        moto, settings, tmp_path):
    from fireline.local.payloads import sns_alarm_event
    from fireline.local.static_site_fixture import (
        create_versioned_bucket,
        pause_between_releases,
        read_site,
        upload_release,
    )

    create_versioned_bucket(aws.client, "site")
    upload_release(aws.client, "site", {"app.js": "good"})
    last_good = pause_between_releases()
    upload_release(aws.client, "site", {"app.js": "bad"})
    runbook = tmp_path / "frontend.yaml"
    runbook.write_text(f"""
rules:
  - name: frontend
    match: {{namespace: AWS/CloudFront}}
    run:
      - playbook: s3-static-rollback
        params: {{bucket: site, restore_to: "{last_good.isoformat()}"}}
      - playbook: cache-invalidation
""")
    app = Fireline(settings.model_copy(update={"runbook_path": runbook}))
    app.store.create_table()

    [result] = app.handle_event(sns_alarm_event(   # no such distribution: the second fails
        alarm_name="cdn-5xx", namespace="AWS/CloudFront", metric="5xxErrorRate",
        dimensions={"DistributionId": "E0000000000000", "Region": "Global"}))["incidents"]

    incident = app.store.get(result["incident_id"])
    assert incident.status == "failed"
    assert [(link.playbook, link.state) for link in incident.chain] == [
        ("s3-static-rollback", "done"), ("cache-invalidation", "failed")]
    assert read_site(aws.client, "site") == {"app.js": b"good"}
    [failed] = [e for e in app.store.timeline(incident.incident_id) if e.kind == "failed"]
    assert "cache-invalidation failed at plan" in failed.text
    assert "done so far: s3-static-rollback (rolled back 1 object" in failed.text

    app.undo(incident.incident_id, "alice")

    assert read_site(aws.client, "site") == {"app.js": b"bad"}
