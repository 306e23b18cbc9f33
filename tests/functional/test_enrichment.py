"""Context in the thread, as a whole: after the mitigation, once per incident, within its
budget, and never an error.

moto 5.2.5 lacks CloudTrail's LookupEvents (played by botocore's Stubber from a recorded
answer); what else moto lacks (GetMetricWidgetImage) and what is absent (the function's log
group) show here as the notes they become.
"""

from __future__ import annotations

import threading
import time

from fireline import aws
from fireline.app import Fireline
from fireline.config import Settings
from fireline.enrich import Enricher
from fireline.enrich.base import Enrichment, EnrichmentContext, Finding
from fireline.events import parse_event
from fireline.local.lambda_fixture import deploy_versions
from fireline.local.payloads import sns_lambda_errors_event
from tests.support.enrich import AppClients, lookup_events_answer, stubbed, table_alarm


def _app(settings: Settings, **stubbed_clients) -> Fireline:
    app = Fireline(settings, clients=AppClients(**stubbed_clients))
    app.store.create_table()
    return app


def _kinds(app: Fireline, incident_id: str) -> list[str]:
    return [entry.kind for entry in app.store.timeline(incident_id)]


def _event(**fields):
    return sns_lambda_errors_event(function_name="checkout", alarm_name="checkout-prod-errors",
                                   **fields)


def test_context_follows_the_revert_once_per_incident(moto, settings, local_slack):
    deploy_versions(aws.client, "checkout", versions=3)
    event = _event()
    [alarm] = parse_event(event)
    cloudtrail, stubber = stubbed("cloudtrail")
    stubber.add_response("lookup_events", lookup_events_answer(alarm.state_changed_at))
    app = _app(settings, cloudtrail=cloudtrail)

    with stubber:
        [first] = app.handle_event(event)["incidents"]
        [again] = app.handle_event(_event())["incidents"]  # a repeat delivery of the alarm

    assert again["incident_id"] == first["incident_id"] and not again["opened"]
    assert _kinds(app, first["incident_id"]) == [
        "opened", "plan", "execute", "verify", "watch", "context", "context", "context"]
    timeline = app.store.timeline(first["incident_id"])
    assert [e.data["enrichment"] for e in timeline[-3:]] == ["changes", "logs", "metric"]
    assert [e.data["note"] for e in timeline[-3:]] == [False, True, True]
    [(channel, ts)] = list(local_slack.threads())
    thread = local_slack.render_thread(channel, ts)
    # One reply for the three findings (one Slack call, not three), in their order.
    assert thread.count("*context* · around the alarm") == 1
    context = thread[thread.index("*context* · around the alarm"):]
    assert "• what changed: 4 changes to function checkout" in context
    assert "UpdateAlias checkout to version 3 by deploy-pipeline" in context
    assert "• log evidence skipped: no log group /aws/lambda/checkout" in context
    # moto raises NotImplementedError for GetMetricWidgetImage: a note, like any failure.
    assert "• metric chart not available: NotImplementedError" in context
    assert (context.index("what changed") < context.index("log evidence")
            < context.index("metric chart"))


def test_an_incident_with_no_playbook_gets_its_context_after_opening(moto, settings,
                                                                      local_slack):
    alarm = table_alarm("orders")
    cloudtrail, stubber = stubbed("cloudtrail")
    stubber.add_response("lookup_events", {"Events": []})
    app = _app(settings, cloudtrail=cloudtrail)

    with stubber:
        incident = app.handle_alarm(alarm)

    assert incident.playbook is None
    assert _kinds(app, incident.incident_id) == ["opened", "context", "context"]
    [changes, chart] = [e.text for e in app.store.timeline(incident.incident_id)][1:]
    assert changes.startswith("what changed: CloudTrail records no change to table orders")
    assert chart.startswith("metric chart not available: ")


def test_context_can_be_switched_off(moto, settings, local_slack):
    assert Settings.from_env({"FIRELINE_ENRICH": "off"}).enrich is False
    deploy_versions(aws.client, "checkout", versions=3)
    app = _app(settings.model_copy(update={"enrich": False}))

    [result] = app.handle_event(_event())["incidents"]

    assert "context" not in _kinds(app, result["incident_id"])
    assert not any("*context*" in str(c.params) for c in local_slack.calls)


class _Found(Enrichment):
    name, title, services = "found", "found", ()

    def applies(self, alarm) -> bool:
        return True

    def gather(self, ctx: EnrichmentContext) -> Finding:
        return Finding(enrichment=self.name, text="found: it", lines=["a line"])


class _Broken(_Found):
    name, title = "broken", "broken thing"

    def gather(self, ctx: EnrichmentContext) -> Finding:
        raise RuntimeError("the lookup blew up")


class _Stuck(_Found):
    name, title = "stuck", "stuck thing"

    def __init__(self) -> None:
        self.release = threading.Event()

    def gather(self, ctx: EnrichmentContext) -> Finding:
        self.release.wait(30)  # ignores its deadline: the runner's budget must hold anyway
        return Finding(enrichment=self.name, text="too late")


class _NoClient(_Found):
    name, title, services = "noclient", "client-less thing", ("no-such-service",)


def test_each_enrichment_is_isolated_and_the_budget_holds(app, local_slack):
    incident = app.handle_alarm(table_alarm())  # opened, with its own context
    stuck = _Stuck()
    enricher = Enricher(recorder=app.recorder, accounts=app.accounts, budget_seconds=0.3,
                        enrichments=[_Found(), _Broken(), stuck, _NoClient()])

    started = time.monotonic()
    try:
        after = enricher.run(app.store.get(incident.incident_id), table_alarm())
    finally:
        stuck.release.set()
    took = time.monotonic() - started

    assert took < 2.0, "the stuck lookup is not waited for"
    texts = [e.text for e in app.store.timeline(incident.incident_id)
             if e.data.get("enrichment") in {"found", "broken", "stuck", "noclient"}]
    assert texts[0] == "found: it"
    assert texts[1] == "broken thing not available: RuntimeError: the lookup blew up"
    assert texts[2] == "stuck thing skipped: not done within the 0.3 s budget for context"
    assert texts[3].startswith("client-less thing not available: UnknownServiceError")
    assert after.status == incident.status and after.error is None
    assert app.store.get(incident.incident_id).status == incident.status
