"""Context in the thread: what changed, what the logs say, the metric's chart.

Runs for a newly opened incident once its playbook has started (the engine's run has
returned or handed off to the state machine), so it never delays a mitigation. All the
enrichments share one time budget and run side by side; each is isolated: a failure, a
refusal or a timeout becomes a timeline note ("log evidence skipped: ..."), never an
error, and never costs the incident. `FIRELINE_ENRICH=off` turns it all off.

    changes.py         CloudTrail's recent changes and a function's version publish times
    log_evidence.py    a Logs Insights query over a function's errors
    metric_picture.py  CloudWatch's chart of the alarm's metric, uploaded to the thread
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from fireline.accounts import Accounts
from fireline.alarm import AlarmEvent
from fireline.aws import ClientFactory
from fireline.enrich.base import Enrichment, EnrichmentContext, Finding
from fireline.enrich.changes import RecentChanges
from fireline.enrich.log_evidence import LogEvidence
from fireline.enrich.metric_picture import MetricPicture
from fireline.errors import EnrichmentSkipped, FirelineError
from fireline.incidents import Incident, TimelineEntry
from fireline.timeline import Recorder
from fireline.timestamps import utc_now

__all__ = ["DEFAULT_ENRICHMENTS", "Enricher", "Enrichment", "EnrichmentContext", "Finding"]

log = logging.getLogger(__name__)

# In the order the thread shows them: the likeliest cause first.
DEFAULT_ENRICHMENTS: tuple[Enrichment, ...] = (RecentChanges(), LogEvidence(), MetricPicture())
KIND = "context"


class Enricher:
    def __init__(self, *, recorder: Recorder, accounts: Accounts,
                 clock: Callable[[], datetime] = utc_now, budget_seconds: float = 10.0,
                 enabled: bool = True,
                 enrichments: Sequence[Enrichment] = DEFAULT_ENRICHMENTS,
                 monotonic: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.recorder = recorder
        self.accounts = accounts
        self.clock = clock
        self.budget_seconds = budget_seconds
        self.enabled = enabled
        self.enrichments = tuple(enrichments)
        self.monotonic = monotonic
        self.sleep = sleep

    def run(self, incident: Incident, alarm: AlarmEvent) -> Incident:
        """Gather and post the alarm's context; the incident as left. Never raises."""
        if not self.enabled:
            return incident
        try:
            return self._run(incident, alarm)
        except Exception:  # context is a courtesy: it must never cost the incident
            log.exception("context for %s not gathered", incident.incident_id)
            return incident

    def _run(self, incident: Incident, alarm: AlarmEvent) -> Incident:
        chosen = [e for e in self.enrichments if e.applies(alarm)]
        if not chosen:
            return incident
        deadline = self.monotonic() + self.budget_seconds
        try:
            clients = self.accounts.clients_for(alarm.account_id,
                                                incident_id=incident.incident_id)
        except FirelineError as exc:
            unreachable = Finding(enrichment="all", note=True,
                                  text=f"no context gathered: {exc.message}")
            return self.recorder.note(incident, self._entry(unreachable, 0.0),
                                      once_key="context:all")
        ctx = EnrichmentContext(alarm=alarm, incident_id=incident.incident_id,
                                clients=_in_region(clients, alarm.region), clock=self.clock,
                                deadline=deadline, monotonic=self.monotonic, sleep=self.sleep)
        started = self.monotonic()
        findings = self._gather(ctx, chosen)
        took = self.monotonic() - started
        # The findings in words go to the thread as one reply; a chart follows as its file.
        told = [f for f in findings if f.attachment is None]
        if told:
            incident = self.recorder.note_together(
                incident, [(self._entry(f, took), f"context:{f.enrichment}") for f in told],
                headline=f"around the alarm ({took:.1f} s)")
        for finding in findings:
            if finding.attachment is not None:
                incident = self._post(incident, finding, took=took)
        return incident

    def _gather(self, ctx: EnrichmentContext, chosen: list[Enrichment]) -> list[Finding]:
        ready: dict[str, Finding] = {}
        running: list[_Run] = []
        for enrichment in chosen:
            try:
                # Clients are made here, one thread at a time: boto3 sessions are not
                # thread-safe, and an assumed role is assumed once, not per enrichment.
                for service in enrichment.services:
                    ctx.clients(service)
            except Exception as exc:
                ready[enrichment.name] = _failed(enrichment, exc)
                continue
            running.append(_Run(enrichment, ctx))
        for run in running:
            run.join(max(0.0, ctx.deadline - self.monotonic()))
            ready[run.enrichment.name] = self._outcome(run)
        return [ready[e.name] for e in chosen]

    def _outcome(self, run: _Run) -> Finding:
        enrichment = run.enrichment
        if not run.done.is_set():
            # Left behind, not waited for: a daemon thread, so it holds up neither this
            # invocation nor the process's exit; what it finds later is dropped.
            return Finding(enrichment=enrichment.name, note=True,
                           text=f"{enrichment.title} skipped: not done within the "
                                f"{self.budget_seconds:g} s budget for context")
        if run.error is not None:
            return _failed(enrichment, run.error)
        assert run.finding is not None
        return run.finding

    def _entry(self, finding: Finding, took: float) -> TimelineEntry:
        return TimelineEntry(kind=KIND, actor="fireline", at=self.clock(), text=finding.text,
                             data={"enrichment": finding.enrichment, "lines": finding.lines,
                                   "note": finding.note, "seconds": round(took, 3)})

    def _post(self, incident: Incident, finding: Finding, *, took: float) -> Incident:
        """A finding with a file: the file posted in the thread, with the finding as its
        comment."""
        assert finding.attachment is not None
        entry = self._entry(finding, took)
        entry = entry.model_copy(update={"data": {
            **entry.data, "file": finding.attachment.filename,
            "bytes": len(finding.attachment.content)}})
        incident, upload = self.recorder.attach(incident, entry, finding.attachment)
        if upload.posted:
            return incident
        why = ("Slack does not let the app upload files" if not upload.permitted
               else "the upload failed")
        return self.recorder.note(incident, TimelineEntry(
            kind=KIND, actor="fireline", at=self.clock(),
            text=f"{self._title(finding)} not posted: {why} ({upload.reason})",
            data={"enrichment": finding.enrichment, "note": True}),
            once_key=f"context:{finding.enrichment}:upload")

    def _title(self, finding: Finding) -> str:
        return next((e.title for e in self.enrichments if e.name == finding.enrichment),
                    finding.enrichment)


class _Run:
    """One enrichment in a daemon thread of its own."""

    def __init__(self, enrichment: Enrichment, ctx: EnrichmentContext) -> None:
        self.enrichment = enrichment
        self.finding: Finding | None = None
        self.error: BaseException | None = None
        self.done = threading.Event()
        threading.Thread(target=self._run, args=(ctx,), daemon=True,
                         name=f"fireline-enrich-{enrichment.name}").start()

    def _run(self, ctx: EnrichmentContext) -> None:
        try:
            self.finding = self.enrichment.gather(ctx)
        except Exception as exc:
            self.error = exc
        finally:
            self.done.set()

    def join(self, timeout: float) -> None:
        self.done.wait(timeout)


def _failed(enrichment: Enrichment, exc: BaseException) -> Finding:
    if isinstance(exc, EnrichmentSkipped):
        return Finding(enrichment=enrichment.name, note=True, text=exc.message)
    if isinstance(exc, FirelineError):
        reason = exc.message
    else:
        log.warning("%s failed", enrichment.name, exc_info=exc)
        reason = f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}"
    return Finding(enrichment=enrichment.name, note=True,
                   text=f"{enrichment.title} not available: {reason}")


def _in_region(clients: ClientFactory, region: str | None) -> ClientFactory:
    """The alarm's region unless a call says otherwise (its resources live there)."""

    def regional(service: str, **kwargs: Any) -> Any:
        if region:
            kwargs.setdefault("region", region)
        return clients(service, **kwargs)

    return regional
