"""The engine: plan -> approval mode -> execute -> verify, each step on the timeline.

One run per incident (claimed atomically in the store). A playbook that fails marks the
incident failed and says why in the thread; the incident record is never lost.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from fireline import registry
from fireline.aws import ClientFactory, describe_aws_error
from fireline.errors import FirelineError, PreconditionFailed, StoreUnavailable
from fireline.incidents import Incident, IncidentStore, TimelineEntry
from fireline.playbook import Plan, PlaybookContext, Verification
from fireline.timeline import Recorder

log = logging.getLogger(__name__)


class Engine:
    def __init__(self, *, store: IncidentStore, recorder: Recorder, clients: ClientFactory,
                 clock: Callable[[], datetime]) -> None:
        self.store = store
        self.recorder = recorder
        self.clients = clients
        self.clock = clock
        self._account: str | None = None

    def plan_only(self, playbook_name: str, raw_params: dict[str, Any], *,
                  requested_by: str) -> Plan:
        """A dry run: read-only, no incident, nothing written anywhere."""
        playbook = registry.get(playbook_name)
        params = playbook.parse_params(raw_params)
        ctx = PlaybookContext(clients=self.clients, marks=_ReadOnlyMarks(self.store),
                              incident_id="dry-run", clock=self.clock,
                              requested_by=requested_by)
        return playbook.plan(ctx, params)

    def run(self, incident: Incident) -> Incident:
        """Run the incident's playbook if nobody else is; returns the incident as left."""
        claimed = self.store.claim_playbook(incident) if incident.playbook else None
        if claimed is None:
            return self.store.get(incident.incident_id)
        incident = claimed
        self.recorder.refresh(incident)
        step = "plan"
        try:
            self._check_account(incident)
            playbook = registry.get(incident.playbook)
            params = playbook.parse_params(incident.params)
            ctx = self._context(incident)
            plan = playbook.plan(ctx, params)
            incident = self._save(incident, plan=plan.model_dump(mode="json"))
            incident = self._note(incident, "plan", plan.summary,
                                  changes=_dump(plan.changes), warnings=plan.warnings)
            mode = incident.approval or playbook.default_approval
            if mode != "auto":
                return self._hold(incident, mode)
            step = "execute"
            outcome = playbook.execute(ctx, plan)
            incident = self._save(incident, outcome=outcome.model_dump(mode="json"))
            incident = self._note(incident, "execute", outcome.summary,
                                  changes=_dump(outcome.changes), before=outcome.before)
            step = "verify"
            verification = playbook.verify(ctx, outcome)
            return self._finish(incident, verification)
        except FirelineError as exc:
            return self._fail(incident, step, exc.message, exc.code)
        except Exception as exc:  # a playbook bug must still leave a whole record
            log.exception("playbook %s crashed at %s", incident.playbook, step)
            return self._fail(incident, step, f"{type(exc).__name__}: {exc}", "UnexpectedError")

    # --- steps ----------------------------------------------------------------------------

    def _hold(self, incident: Incident, mode: str) -> Incident:
        if mode == "monitor":
            incident = self._save(incident, playbook_state="monitored", status="open")
            text = "monitor mode: planned only, nothing executed"
        else:
            incident = self._save(incident, playbook_state="awaiting-approval",
                                  status="awaiting-approval")
            text = "approval required before anything changes"
        return self._note(incident, "approval", text, refresh=True, mode=mode)

    def _finish(self, incident: Incident, verification: Verification) -> Incident:
        incident = self._save(incident, playbook_state="done", status="mitigated")
        return self._note(incident, "verify", verification.summary, refresh=True)

    def _fail(self, incident: Incident, step: str, message: str, code: str) -> Incident:
        try:
            incident = self._save(incident, playbook_state="failed", status="failed",
                                  error=f"{step}: {message}")
        except FirelineError:
            log.exception("could not mark %s failed", incident.incident_id)
        return self._note(incident, "failed", f"{incident.playbook} failed at {step}: {message}",
                          refresh=True, error=code, step=step)

    def _check_account(self, incident: Incident) -> None:
        """Refuse to act for an alarm of another account: a namesake here is not its resource."""
        if not incident.account_id:
            return
        home = self._home_account()
        if incident.account_id != home:
            raise PreconditionFailed(
                f"the alarm is in account {incident.account_id} and Fireline runs in {home}; "
                "acting across accounts is not configured, so nothing was changed",
                incident_id=incident.incident_id, playbook=incident.playbook, step="plan")

    def _home_account(self) -> str:
        if self._account is None:
            try:
                self._account = str(self.clients("sts").get_caller_identity()["Account"])
            except (ClientError, BotoCoreError) as exc:
                raise describe_aws_error("sts:GetCallerIdentity", exc) from exc
        return self._account

    # --- plumbing -------------------------------------------------------------------------

    def _context(self, incident: Incident) -> PlaybookContext:
        # The playbook acts where the alarm is, never on a namesake in the home region.
        region = incident.region

        def clients(service: str, **kwargs: Any) -> Any:
            if region:
                kwargs.setdefault("region", region)
            return self.clients(service, **kwargs)

        return PlaybookContext(
            clients=clients, marks=self.store, incident_id=incident.incident_id,
            clock=self.clock, logger=logging.getLogger(f"fireline.playbook.{incident.playbook}"),
            requested_by=incident.requested_by)

    def _save(self, incident: Incident, **changes: Any) -> Incident:
        def apply(current: Incident) -> Incident:
            for key, value in changes.items():
                setattr(current, key, value)
            return current

        return self.store.update(incident.incident_id, apply, known=incident)

    def _note(self, incident: Incident, kind: str, text: str, *, actor: str = "fireline",
              refresh: bool = False, **data: Any) -> Incident:
        data = {**data, "status": incident.status, "playbook_state": incident.playbook_state}
        entry = TimelineEntry(kind=kind, text=text, actor=actor, at=self.clock(), data=data)
        return self.recorder.note(incident, entry, refresh=refresh)


class _ReadOnlyMarks:
    """Marks for a dry run: read what is known; a missing table means nothing is known."""

    def __init__(self, store: IncidentStore) -> None:
        self._store = store

    def marks(self, resource: str, kind: str) -> set[str]:
        try:
            return self._store.marks(resource, kind)
        except StoreUnavailable as exc:
            log.warning("dry run without recorded marks: %s", exc.message)
            return set()

    def add_mark(self, resource: str, kind: str, value: str, *, incident_id: str) -> None:
        raise FirelineError("a dry run records nothing")

    def remove_mark(self, resource: str, kind: str, value: str) -> None:
        raise FirelineError("a dry run records nothing")


def _dump(models: list[Any]) -> list[dict[str, Any]]:
    return [m.model_dump(mode="json") for m in models]



