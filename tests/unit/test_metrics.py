"""Incident metrics as the EMF lines CloudWatch reads from a handler's stdout."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from aws_lambda_powertools.metrics import Metrics

from fireline.incidents import Incident
from fireline.metrics import record_incident_metrics
from tests.support.incidents import make_incident

OPENED = datetime(2026, 1, 1, 3, 0, tzinfo=UTC)


@pytest.fixture
def metrics(monkeypatch: pytest.MonkeyPatch) -> Iterator[Metrics]:
    """The handlers' metrics object, printing EMF; Powertools shares its state: clear it."""
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    monkeypatch.delenv("POWERTOOLS_DEV", raising=False)
    shared = Metrics(namespace="Fireline", service="fireline")
    shared.clear_metrics()
    yield shared
    shared.clear_metrics()


def emitted(metrics: Metrics, capsys: pytest.CaptureFixture[str]) -> list[dict]:
    """Flush `metrics` (as publish_metrics does), then every EMF blob printed so far."""
    if metrics.metric_set:
        metrics.flush_metrics()
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line]


def values(blobs: list[dict]) -> dict[str, tuple]:
    """name -> (unit, values, dimension names) of every metric in the blobs."""
    found = {}
    for blob in blobs:
        [directive] = blob["_aws"]["CloudWatchMetrics"]
        assert directive["Namespace"] == "Fireline"
        for metric in directive["Metrics"]:
            found[metric["Name"]] = (metric["Unit"], blob[metric["Name"]],
                                     sorted(directive["Dimensions"][0]))
    return found


def incident(**overrides) -> Incident:
    return make_incident(**{"opened_at": OPENED, **overrides})


def test_opening_counts_the_incident_by_severity_in_its_own_blob(metrics, capsys):
    record_incident_metrics(metrics, None, incident(severity="SEV-1"))
    metrics.add_metric(name="AlarmsHandled", unit="Count", value=1)

    blobs = emitted(metrics, capsys)

    [opened] = [b for b in blobs if "IncidentsOpened" in b]
    assert opened["severity"] == "SEV-1"
    assert opened["service"] == "fireline"
    assert values([opened]) == {"IncidentsOpened": ("Count", [1.0], ["service", "severity"])}
    # The severity dimension does not leak onto the invocation's other metrics.
    [other] = [b for b in blobs if "AlarmsHandled" in b]
    assert "severity" not in other
    assert values([other])["AlarmsHandled"][2] == ["service"]


def test_a_finished_run_is_counted_and_a_failed_one_twice_over(metrics, capsys):
    running = incident(playbook_state="running", status="mitigating")

    record_incident_metrics(metrics, running, running.model_copy(
        update={"playbook_state": "failed", "status": "failed"}))

    assert values(emitted(metrics, capsys)) == {
        "PlaybookRuns": ("Count", [1.0], ["service"]),
        "PlaybookFailures": ("Count", [1.0], ["service"]),
    }


def test_a_run_done_in_the_opening_invocation_counts(metrics, capsys):
    done = incident(playbook_state="done", status="mitigated")

    record_incident_metrics(metrics, None, done)

    found = values(emitted(metrics, capsys))
    assert found["PlaybookRuns"] == ("Count", [1.0], ["service"])
    assert "PlaybookFailures" not in found
    assert found["IncidentsOpened"][1] == [1.0]


def test_nothing_changed_emits_nothing(metrics, capsys):
    done = incident(playbook_state="done", status="mitigated")

    record_incident_metrics(metrics, done, done.model_copy())

    assert emitted(metrics, capsys) == []


def test_time_to_resolve_and_to_mitigate_when_they_become_set(metrics, capsys):
    if "mitigated_at" not in Incident.model_fields:
        pytest.skip("Incident has no mitigated_at yet")
    before = incident(playbook_state="running")
    after = before.model_copy(update={
        "playbook_state": "done", "mitigated_at": OPENED + timedelta(seconds=252),
        "resolved_at": OPENED + timedelta(minutes=30)})

    record_incident_metrics(metrics, before, after)

    found = values(emitted(metrics, capsys))
    assert found["TimeToMitigate"] == ("Seconds", [252.0], ["service"])
    assert found["TimeToResolve"] == ("Seconds", [1800.0], ["service"])


def test_times_already_set_before_are_not_counted_again(metrics, capsys):
    resolved = incident(resolved_at=OPENED + timedelta(minutes=30), status="resolved")

    record_incident_metrics(metrics, resolved, resolved.model_copy(update={"reopened": 1}))
    record_incident_metrics(metrics, incident(), resolved)

    assert values(emitted(metrics, capsys)) == {
        "TimeToResolve": ("Seconds", [1800.0], ["service"])}


def test_disabled_metrics_print_nothing(metrics, capsys, monkeypatch):
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")

    record_incident_metrics(metrics, None, incident(playbook_state="failed"))
    metrics.flush_metrics()

    assert capsys.readouterr().out == ""
