"""Fireline assembled: settings -> store, notifier, runbook, engine; the three doors' logic.

Handlers and the CLI call this; it holds no AWS or Slack code of its own.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from fireline import aws, events, registry, triage
from fireline.accounts import AccountPolicy, Accounts
from fireline.alarm import AlarmEvent
from fireline.alarm_tags import tags_for
from fireline.config import Settings
from fireline.decision import ApprovalMode, Decision, Severity
from fireline.engine import Engine, Rails
from fireline.errors import (
    FirelineError,
    InvalidRequest,
    InvalidRunbook,
    MalformedEvent,
    PreconditionFailed,
)
from fireline.incidents import (
    ChainLink,
    ClosedIncident,
    Incident,
    IncidentStore,
    TimelineEntry,
    new_incident_id,
)
from fireline.notify import Notifier, build_notifier
from fireline.redeliveries import Redeliveries
from fireline.runbook import Defaults, Runbook, cached_runbook
from fireline.timeline import Recorder
from fireline.timestamps import utc_now

if TYPE_CHECKING:
    from fireline.enrich import Enricher

log = logging.getLogger(__name__)

# An attaching delivery runs a still-pending playbook only when the opener has had this
# long: the opener normally runs it, so this only heals an opener that died mid-way.
ORPHANED_AFTER = timedelta(seconds=60)
# Slack takes about a message a second per channel: the minute's check leaves most of
# them to live incidents (and stays well inside its function's timeout).
CATCH_UPS_PER_CHECK = 20


class AlarmResult(BaseModel):
    incident_id: str
    alarm: str
    severity: Severity
    playbook: str | None
    status: str
    opened: bool


class RunRequest(BaseModel):
    """A manual run: CLI, direct Lambda invoke (and later Slack)."""

    model_config = ConfigDict(extra="forbid")

    playbook: str = Field(min_length=1)
    params: dict[str, Any] = Field(default_factory=dict)
    dry_run: bool = False
    requested_by: str = Field(min_length=1, max_length=200)
    reason: str = Field(default="", max_length=2000)
    severity: Severity = "SEV-3"
    # Only ever stricter than the playbook's default (Slack asks "required" for what its
    # access policy calls destructive); a request cannot waive a required approval.
    approval: ApprovalMode | None = None

    @classmethod
    def parse(cls, payload: Any) -> RunRequest:
        if not isinstance(payload, dict):
            raise InvalidRequest(f"a run request is a JSON object, not {type(payload).__name__}")
        try:
            return cls.model_validate(payload)
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first["loc"]) or "(request)"
            message = "unknown field" if first["type"] == "extra_forbidden" else first["msg"]
            raise InvalidRequest(f"invalid run request: {field}: {message}",
                                 field=field) from None


class RunResult(BaseModel):
    incident_id: str | None
    playbook: str
    dry_run: bool
    status: str
    plan: dict[str, Any] | None = None
    actions: list[dict[str, Any]] = Field(default_factory=list)
    error: str | None = None


class Fireline:
    def __init__(self, settings: Settings, *, clients: aws.ClientFactory = aws.client,
                 clock: Callable[[], datetime] = utc_now,
                 notifier: Notifier | None = None,
                 sleep: Callable[[float], None] = time.sleep,
                 observe: Callable[[Incident | None, Incident], None] | None = None) -> None:
        self.settings = settings
        self.clients = clients
        self.clock = clock
        self.sleep = sleep
        # Told of each incident before and after an alarm changed it (metrics).
        self.observe = observe or (lambda before, after: None)
        self._notifier = notifier

    @cached_property
    def store(self) -> IncidentStore:
        return IncidentStore(self.settings.table, self.clients, self.clock)

    @cached_property
    def notifier(self) -> Notifier:
        return self._notifier or build_notifier(self.settings)

    @cached_property
    def runbook(self) -> Runbook:
        return cached_runbook(self.settings.runbook_path)

    @cached_property
    def redeliveries(self) -> Redeliveries[AlarmResult | None]:
        return Redeliveries(self.clock)

    @cached_property
    def recorder(self) -> Recorder:
        return Recorder(self.store, self.notifier, clock=self.clock)

    @cached_property
    def accounts(self) -> Accounts:
        """Clients in the alarm's account: ours, or through the cross-account role."""
        allowed = self._defaults.accounts
        return Accounts(self.clients, clock=self.clock, policy=AccountPolicy(
            role_name=self.settings.cross_account_role,
            external_id=self.settings.external_id,
            allowed=frozenset(allowed) if allowed is not None else None))

    @cached_property
    def engine(self) -> Engine:
        return Engine(store=self.store, recorder=self.recorder, clients=self.clients,
                      clock=self.clock, state_machine_arn=self.settings.state_machine_arn,
                      inline_wait_seconds=self.settings.inline_wait_seconds, sleep=self.sleep,
                      rails=Rails(budget_per_hour=self._defaults.action_budget_per_hour,
                                  cooldown=timedelta(minutes=self._defaults.cooldown_minutes)),
                      accounts=self.accounts)

    @cached_property
    def enricher(self) -> Enricher:
        # Imported here: only a newly opened incident needs it, and the Slack door's cold
        # acknowledgement (3 s, Slack's limit) should not pay ~30 ms for it.
        from fireline.enrich import Enricher

        return Enricher(recorder=self.recorder, accounts=self.accounts, clock=self.clock,
                        budget_seconds=self.settings.enrich_budget_seconds,
                        enabled=self.settings.enrich)

    @property
    def _defaults(self) -> Defaults:
        try:
            return self.runbook.defaults
        except InvalidRunbook:
            return Defaults()  # the safe built-in limits; triage says why the runbook failed

    # --- door 1: alarms -------------------------------------------------------------------

    def triage(self, alarm: AlarmEvent, *, lookup_tags: bool | None = None) -> Decision:
        try:
            runbook = self.runbook
        except InvalidRunbook as exc:
            # A broken policy must not silence the alarm: open the incident, act on nothing.
            log.error("runbook not loaded, triaging %s without it: %s",
                      alarm.alarm_name, exc.message)
            return Decision(severity=Defaults().severity, reasons=(
                f"runbook not loaded ({exc.message}); no playbook runs until it is fixed",))
        lookup = self.settings.tag_lookup if lookup_tags is None else lookup_tags
        return triage.decide(alarm, runbook,
                             tags_for(alarm, self._lookup_clients(alarm), lookup=lookup))

    def handle_event(self, event: Any) -> dict[str, Any]:
        """Every alarm of the event handled; a batch's unreadable records reported apart.

        SQS records that could not be read come back as `batchItemFailures`, so the queue
        keeps them (and its redrive policy moves them to a DLQ) instead of deleting them.
        A refusal for an alarm that has an open incident is noted on its timeline.
        """
        try:
            alarms, refused = events.parse_deliveries(event)
        except MalformedEvent as exc:
            self._note_refusal(exc, None)
            raise
        results = []
        for alarm in alarms:
            result = self.handle_alarm(alarm)
            if result is not None:
                results.append(result.model_dump())
        answer: dict[str, Any] = {"incidents": results}
        if refused:
            for refusal in refused:
                log.error("record %d refused: %s", refusal.index, refusal.error.message)
                if isinstance(refusal.error, MalformedEvent):
                    self._note_refusal(refusal.error, refusal.record_id)
            answer["refused"] = [{"record": r.index, **r.error.to_dict()} for r in refused]
            failures = [r.record_id for r in refused if r.record_id and r.from_sqs]
            if failures:
                answer["batchItemFailures"] = [{"itemIdentifier": i} for i in failures]
        return answer

    def handle_alarm(self, alarm: AlarmEvent) -> AlarmResult | None:
        remembered = self.redeliveries.answered(alarm)
        if remembered is not None:
            ago = (self.clock() - remembered.handled_at).total_seconds()
            if remembered.news is None:
                log.info("%s: delivery %s was handled here %.1f s ago; answered as then",
                         alarm.alarm_name, alarm.delivery_id, ago)
            else:
                log.info("%s: delivery %s is of a state change (%s) no later than the one "
                         "(%s) handled here %.1f s ago; answered as then", alarm.alarm_name,
                         alarm.delivery_id, alarm.state_changed_at.isoformat(),
                         remembered.news.isoformat(), ago)
            answer = remembered.answer
            return answer.model_copy(update={"opened": False}) if answer else None
        answer = self._handle_alarm(alarm)
        self.redeliveries.remember(alarm, answer)
        return answer

    def _handle_alarm(self, alarm: AlarmEvent) -> AlarmResult | None:
        if alarm.state != "ALARM":
            return self._state_note(alarm)
        # A repeat (the common case in a storm) needs no triage, and so no tag lookup.
        found = self.store.lookup(alarm.key)
        last = found.last_closed
        if found.open is None and last and not _later(alarm, last.alarm_changed_at):
            # A late copy of a change its closed incident had: neither re-open nor open.
            log.info("%s: delivery %s is of a state change (%s) that incident %s already "
                     "had; it stays closed", alarm.alarm_name, alarm.delivery_id,
                     alarm.state_changed_at.isoformat(), last.incident_id)
            return None
        incident = found.open or self._reopen(alarm, last)
        before = incident
        opened = False
        if incident is None:
            decision = self.triage(alarm)
            # Written already claimed: the opener runs the playbook, and saves the write
            # (and the Slack update) of a claim.
            incident, opened = self.store.open_or_attach(
                self.engine.claimed(self._new_incident(alarm, decision)))
        # A repeat of a state change the incident knows (in another shape, a retry, another
        # subscription) writes nothing: it costs the one read and never races the opener's
        # run. A later change is kept (`_later_alarm`).
        if opened:
            with self.recorder.slack_after_the_action(incident.incident_id):
                incident = self.recorder.opened(incident, TimelineEntry(
                    kind="opened", actor="alarm", at=self.clock(),
                    text=f"{alarm.alarm_name} is in ALARM: {alarm.reason}",
                    data={"reasons": list(decision.reasons), "delivery": alarm.delivery,
                          "state_changed_at": alarm.state_changed_at.isoformat()}))
                if incident.playbook_state == "running":
                    incident = self.engine.start(incident)
                incident = self.recorder.release(incident)
            # Only now, with the playbook started (or handed to the state machine): the
            # context never delays the mitigation, and a repeat delivery adds none.
            incident = self.enricher.run(incident, alarm)
        else:
            log.info("%s: delivery %s joins %s", alarm.alarm_name, alarm.delivery_id,
                     incident.incident_id)
            incident = self._later_alarm(incident, alarm)
            incident = self._heal(incident)
            incident = self.engine.lifecycle.check(incident, known_state=alarm.state)
            incident = self.recorder.catch_up(incident)
        self.observe(None if opened else before, incident)
        return _result(incident, opened)

    # --- door 3: manual runs --------------------------------------------------------------

    def run(self, request: RunRequest) -> RunResult:
        playbook = registry.get(request.playbook)
        if request.dry_run:
            plan = self.engine.plan_only(request.playbook, request.params,
                                         requested_by=request.requested_by)
            return RunResult(incident_id=None, playbook=request.playbook, dry_run=True,
                             status="planned", plan=plan.model_dump(mode="json"))
        playbook.parse_params(request.params)  # refuse bad params before opening anything
        now = self.clock()
        # Created claimed, as an alarm's incident is: its requester's process runs it.
        incident = self.store.create(self.engine.claimed(Incident(
            incident_id=new_incident_id(now),
            alarm_name=f"manual: {request.playbook}",
            title=f"{request.playbook} requested by {request.requested_by}",
            reason=request.reason,
            severity=request.severity,
            playbook=request.playbook,
            params=request.params,
            approval=_stricter(playbook.default_approval, request.approval),
            playbook_state="pending",
            requested_by=request.requested_by,
            channel=self.runbook.defaults.channel,
            opened_at=now,
            updated_at=now,
        )))
        with self.recorder.slack_after_the_action(incident.incident_id):
            incident = self.recorder.opened(incident, TimelineEntry(
                kind="opened", actor=request.requested_by, at=now,
                text=f"{request.requested_by} asked for {request.playbook}"
                     f"{': ' + request.reason if request.reason else ''}",
                data={"params": request.params}))
            incident = self.recorder.release(self.engine.start(incident))
        return RunResult(
            incident_id=incident.incident_id, playbook=request.playbook, dry_run=False,
            status=incident.status, plan=incident.plan, error=incident.error,
            actions=[incident.outcome] if incident.outcome else [])

    # --- approvals and resuming -----------------------------------------------------------

    def approve(self, incident_id: str, approver: str, *, note: str = "") -> Incident:
        """`approver` (not the requester) lets the held plan run."""
        return self.engine.approve(incident_id, approver, note=note)

    def reject(self, incident_id: str, rejecter: str, *, note: str = "") -> Incident:
        return self.engine.reject(incident_id, rejecter, note=note)

    def undo(self, incident_id: str, requested_by: str) -> Incident:
        """Put back what the incident's playbook changed (never deletes what it created)."""
        return self.engine.undo(incident_id, requested_by)

    def acknowledge(self, incident_id: str, person: str) -> Incident:
        """Someone owns it now. Once: a second ack is a no-op that says who was first."""

        def ack(current: Incident) -> Incident | None:
            if current.acknowledged_by:
                return None
            current.acknowledged_by, current.acknowledged_at = person, self.clock()
            return current

        incident = self.store.update(incident_id, ack)
        if incident.acknowledged_by == person and incident.acknowledged_at:
            incident = self.recorder.note(incident, TimelineEntry(
                kind="acknowledged", actor=person, at=self.clock(),
                text=f"acknowledged by {person}"), once_key="acknowledged", refresh=True)
        return incident

    def resolve(self, incident_id: str, person: str, *, note: str = "") -> Incident:
        """Close the incident; the alarm's next ALARM opens a new one."""

        def close(current: Incident) -> Incident | None:
            if current.status == "resolved":
                return None
            if current.playbook_state in {"running", "pending"}:
                raise PreconditionFailed(
                    f"{incident_id} has a playbook {current.playbook_state}; let it finish "
                    "(or fail) before resolving", incident_id=incident_id, step="resolve")
            current.status = "resolved"
            current.resolved_by, current.resolved_at = person, self.clock()
            return current

        incident = self.store.update(incident_id, close)
        self.store.close_alarm(incident)
        return self.recorder.note(incident, TimelineEntry(
            kind="resolved", actor=person, at=self.clock(),
            text=f"resolved by {person}{': ' + note if note else ''}"),
            once_key="resolved", refresh=True)

    def resume(self, incident_id: str) -> Incident:
        """Carry on a run that stopped part-way (a crash, or a wait longer than allowed)."""
        return self.engine.resume(incident_id)

    # --- plumbing -------------------------------------------------------------------------

    def check_watched(self) -> list[Incident]:
        """Look at every incident whose alarm is being watched after an action; the ones
        looked at. On the way, bring up to `CATCH_UPS_PER_CHECK` Slack threads that missed
        updates up to date, newest first, until one catch-up fails (Slack still refuses:
        the next minute tries again)."""
        watched = []
        catch_ups = CATCH_UPS_PER_CHECK
        for incident in self.store.list(limit=200):
            if incident.watch_until:
                incident = self.engine.lifecycle.check(incident)
                watched.append(incident)
            if catch_ups and self.recorder.behind(incident):
                # Bounded by the count and the first failure, not by the back-off.
                incident = self.recorder.catch_up(incident, backoff=False)
                catch_ups = catch_ups - 1 if incident.slack_behind is None else 0
        return watched

    def _note_refusal(self, error: MalformedEvent, delivery_id: str | None) -> None:
        """A delivery refused for an alarm with an open incident: a line on its timeline
        (not in Slack: a refusal changes nothing). Once per delivery; best effort, the
        refusal itself is the answer."""
        if error.alarm_key is None:
            return
        try:
            incident = self.store.find_open(error.alarm_key)
            if incident is None:
                return
            key = delivery_id or hashlib.sha256(
                f"{error.field}\n{error.message}".encode("utf-8", "replace")).hexdigest()[:32]
            self.store.append(incident.incident_id, TimelineEntry(
                kind="refused", actor="alarm", at=self.clock(),
                text=f"a delivery for this alarm was refused: {error.message}",
                data={"field": error.field, "delivery": delivery_id}),
                once_key=f"refused:{key}")
        except Exception:  # noting a refusal must never replace the refusal
            log.warning("refusal not noted on the alarm's incident", exc_info=True)

    def _lookup_clients(self, alarm: AlarmEvent) -> aws.ClientFactory:
        """Clients for reading the alarm (its tags) in its own account, made on first use;
        where Fireline may not go, ours, which fail and leave triage without tags."""

        def clients(service: str, **kwargs: Any) -> Any:
            try:
                factory = self.accounts.clients_for(alarm.account_id)
            except FirelineError as exc:
                log.info("reading %s from our own account: %s", alarm.alarm_name, exc.message)
                factory = self.clients
            return factory(service, **kwargs)

        return clients

    def _reopen(self, alarm: AlarmEvent, last: ClosedIncident | None) -> Incident | None:
        """The alarm's last incident resolved a short while ago: fire again means the same
        one."""
        if last is None:
            return None
        incident_id, closed_at = last.incident_id, last.closed_at
        if self.clock() - closed_at > timedelta(minutes=self._defaults.reopen_window_minutes):
            return None
        if not self.store.claim_reopen(alarm.key, incident_id):
            return self.store.find_open(alarm.key)
        return self.engine.lifecycle.reopen(self.store.get(incident_id), alarm.reason,
                                            changed_at=alarm.state_changed_at)

    def _heal(self, incident: Incident) -> Incident:
        """A later delivery carries on a run whose driver died: the opener normally runs
        the playbook, so this only acts on one that stalled."""
        now = self.clock()
        if incident.playbook_state == "pending" and now - incident.opened_at > ORPHANED_AFTER:
            return self.engine.run(incident)
        stalled = (incident.playbook_state == "running" and not incident.execution_arn
                   and (incident.lease_until is None or incident.lease_until < now)
                   and (incident.wait_until is None or incident.wait_until <= now))
        if stalled:
            try:
                return self.engine.resume(incident.incident_id)
            except PreconditionFailed:
                return self.store.get(incident.incident_id)
        return incident

    def _new_incident(self, alarm: AlarmEvent, decision: Decision) -> Incident:
        now = self.clock()
        return Incident(
            incident_id=new_incident_id(now),
            alarm_key=alarm.key,
            alarm_name=alarm.alarm_name,
            alarm_state=alarm.state,
            alarm_changed_at=alarm.state_changed_at,
            title=alarm.alarm_name,
            reason=alarm.reason,
            account_id=alarm.account_id,
            region=alarm.region,
            severity=decision.severity,
            rule=decision.rule,
            reasons=list(decision.reasons),
            playbook=decision.playbook,
            params=decision.params,
            chain=[ChainLink(playbook=c.playbook, params=c.params) for c in decision.chain],
            approval=decision.approval,
            recovery_window_minutes=decision.recovery_window_minutes,
            on_no_recovery=decision.on_no_recovery,
            playbook_state="pending" if decision.playbook else "none",
            channel=decision.channel,
            opened_at=now,
            updated_at=now,
        )

    def _later_alarm(self, incident: Incident, alarm: AlarmEvent) -> Incident:
        """A repeat from a later state change than the incident knows: the alarm left ALARM
        and came back, whether or not that news has arrived yet. Its time is kept (a late OK
        from in between is then not applied); an incident that last heard OK or no data
        tells its thread. The same change again (another shape, a retry) writes nothing."""
        if not _later(alarm, incident.alarm_changed_at):
            return incident
        flapped = False

        def take(current: Incident) -> Incident | None:
            nonlocal flapped
            if not _later(alarm, current.alarm_changed_at):
                return None
            flapped = current.alarm_state != "ALARM"
            current.alarm_state, current.alarm_changed_at = alarm.state, alarm.state_changed_at
            return current

        incident = self.store.update(incident.incident_id, take, known=incident)
        if not flapped:
            return incident
        return self.recorder.note(
            incident,
            TimelineEntry(kind="alarm", actor="alarm", at=self.clock(),
                          text=f"{alarm.alarm_name} is in ALARM again: {alarm.reason}"),
            once_key=alarm.delivery_id, refresh=True)

    def _state_note(self, alarm: AlarmEvent) -> AlarmResult | None:
        incident = self.store.find_open(alarm.key)
        if incident is None:
            log.info("%s is %s and has no open incident: nothing to do",
                     alarm.alarm_name, alarm.state)
            return None
        if _older(alarm, incident.alarm_changed_at):
            # SNS and EventBridge do not keep order: an OK from before the incident's
            # latest ALARM must not close it.
            log.info("%s: %s of %s is older than the incident's latest state change (%s); "
                     "not applied", alarm.alarm_name, alarm.state,
                     alarm.state_changed_at.isoformat(), incident.alarm_changed_at)
            return _result(incident, False)

        def note_state(current: Incident) -> Incident | None:
            if _older(alarm, current.alarm_changed_at):
                return None
            current.alarm_state, current.alarm_changed_at = alarm.state, alarm.state_changed_at
            return current

        incident = self.store.update(incident.incident_id, note_state, known=incident)
        if alarm.state == "OK":
            resolved = self.engine.lifecycle.resolve_on_ok(incident, alarm.reason)
            self.observe(incident, resolved)
            return _result(resolved, False)
        incident = self.recorder.note(
            incident,
            TimelineEntry(kind="alarm", actor="alarm", at=self.clock(),
                          text=f"{alarm.alarm_name} is now {alarm.state}: {alarm.reason}"),
            once_key=alarm.delivery_id, refresh=True)
        return _result(incident, False)


_STRICTNESS: list[ApprovalMode] = ["auto", "required", "monitor"]


def _stricter(default: ApprovalMode, asked: ApprovalMode | None) -> ApprovalMode:
    if asked is None:
        return default
    return max(default, asked, key=_STRICTNESS.index)


def _later(alarm: AlarmEvent, known: datetime | None) -> bool:
    """Whether `alarm`'s state change is later than the latest one known (None: none is)."""
    return known is None or alarm.state_changed_at > known


def _older(alarm: AlarmEvent, known: datetime | None) -> bool:
    """Whether `alarm`'s state change is older than the latest one known: stale news."""
    return known is not None and alarm.state_changed_at < known


def _result(incident: Incident, opened: bool) -> AlarmResult:
    return AlarmResult(incident_id=incident.incident_id, alarm=incident.alarm_name,
                       severity=incident.severity, playbook=incident.playbook,
                       status=incident.status, opened=opened)
