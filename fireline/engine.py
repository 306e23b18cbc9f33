"""The engine: plan -> approval -> execute's steps -> verify, each on the timeline.

A run is a series of small advances, each idempotent and saved on the incident:

    plan          read-only; then the approval mode decides (auto, required, monitor)
    approval      a human other than the requester approves or rejects
    steps         the playbook's execute steps, one at a time; a step may ask to wait
    verify        the outcome recorded, then read back

Whoever drives an advance holds the incident's lease (a conditional write with an expiry),
so two drivers never run a step at once and a crashed driver's run can be resumed. In AWS
the state machine (infra/state-machine.asl.json) drives long-running playbooks through
`handlers.step`, with Wait states between polls and a task token for the approval; on a
laptop, in tests and in Lambda without a state machine, `drive` runs the same advances
in-process. A failure marks the incident failed and says why; the record is never lost.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel

from fireline import registry
from fireline.accounts import Accounts
from fireline.aws import ClientFactory, describe_aws_error
from fireline.errors import (
    ApprovalNotPending,
    FirelineError,
    NotReversible,
    PreconditionFailed,
    SelfApprovalRefused,
    StepDeadlineExceeded,
    StoreUnavailable,
)
from fireline.incidents import ChainLink, Incident, IncidentStore, TimelineEntry
from fireline.lifecycle import Lifecycle
from fireline.playbook import (
    Outcome,
    Plan,
    Playbook,
    PlaybookContext,
    StepResult,
    Verification,
)
from fireline.timeline import Recorder

log = logging.getLogger(__name__)

# A step is a few API calls; a driver silent for this long has died.
LEASE = timedelta(seconds=120)
# Identities that never count as the approving human.
_NOT_A_PERSON = {"alarm", "fireline", ""}

AdvanceStatus = Literal[
    "continue", "wait", "approval", "done", "failed", "rejected", "busy", "watch"]
# How often a run waiting for another incident's lock on its resource tries again.
LOCK_RETRY_SECONDS = 30


@dataclass(frozen=True)
class Rails:
    """Automation must never fight itself: per resource and playbook, at most
    `budget_per_hour` automatic actions an hour, and none within `cooldown` of the last."""

    budget_per_hour: int = 3
    cooldown: timedelta = timedelta(minutes=10)


class Advance(BaseModel):
    """What one advance tells its driver (the in-process loop or the state machine)."""

    incident_id: str
    status: AdvanceStatus
    wait_seconds: int = 0
    message: str = ""


class Engine:
    def __init__(self, *, store: IncidentStore, recorder: Recorder, clients: ClientFactory,
                 clock: Callable[[], datetime], state_machine_arn: str | None = None,
                 inline_wait_seconds: float = 600.0,
                 sleep: Callable[[float], None] = time.sleep, rails: Rails = Rails(),
                 accounts: Accounts | None = None) -> None:
        self.store = store
        self.recorder = recorder
        self.clients = clients
        self.clock = clock
        self.state_machine_arn = state_machine_arn
        self.inline_wait_seconds = inline_wait_seconds
        self.sleep = sleep
        self.rails = rails
        # Which account's clients a run uses: its alarm's, through one code path.
        self.accounts = accounts or Accounts(clients, clock=clock)
        self.lifecycle = Lifecycle(store=store, recorder=recorder, clients=clients, clock=clock,
                                   undo=self.undo, release=self._release_state_machine,
                                   clients_for=self.accounts.clients_for)

    def plan_only(self, playbook_name: str, raw_params: dict[str, Any], *,
                  requested_by: str) -> Plan:
        """A dry run: read-only, no incident, nothing written anywhere."""
        playbook = registry.get(playbook_name)
        params = playbook.parse_params(raw_params)
        ctx = PlaybookContext(clients=self.clients, marks=_ReadOnlyMarks(self.store),
                              incident_id="dry-run", clock=self.clock,
                              requested_by=requested_by, reference_time=self.clock())
        return playbook.plan(ctx, params)

    # --- starting and driving a run -------------------------------------------------------

    def run(self, incident: Incident) -> Incident:
        """Start the incident's playbook if nobody else has; returns the incident as left."""
        claimed = (self.store.claim_playbook(incident, lease_until=self.clock() + LEASE)
                   if incident.playbook else None)
        if claimed is None:
            return self.store.get(incident.incident_id)
        return self.start(self.recorder.refresh(claimed))

    def start(self, incident: Incident) -> Incident:
        """Drive a run whose lease the caller holds: claimed by `run`, or created claimed
        (an alarm's opener and a manual run write the new incident running, see
        `claimed`)."""
        if self._for_state_machine(incident):
            # The state machine's steps post in the thread from other invocations: it has
            # to exist, and be saved on the incident, before the execution starts.
            return self._start_execution(self.recorder.release(incident))
        return self.drive(incident, leased=True)

    def claimed(self, incident: Incident) -> Incident:
        """`incident`, not yet written, as if `run` had claimed it: its creator saves the
        write of a claim (and the Slack update saying so) by writing it like this."""
        if incident.playbook_state != "pending":
            return incident
        return incident.model_copy(update={"playbook_state": "running",
                                           "status": "mitigating",
                                           "lease_until": self.clock() + LEASE})

    def drive(self, incident: Incident, *, leased: bool = False) -> Incident:
        """Advance in-process until the run finishes, needs a human, or has waited its
        budget (then `fireline resume` picks it up)."""
        waited = 0.0
        while True:
            planned = incident.plan is not None
            incident, step = self.advance(incident, leased=leased, hold=True)
            if planned or step.status != "continue":
                # The first step has run (or the run stopped before it): Slack may speak.
                incident = self.recorder.release(incident)
            leased = False
            if step.status == "continue":
                leased = True  # held on to: the next advance is ours at once
                continue
            if step.status in {"wait", "busy"} and waited + step.wait_seconds <= \
                    self.inline_wait_seconds:
                self.sleep(step.wait_seconds)
                waited += step.wait_seconds
                continue
            return incident

    def resume(self, incident_id: str) -> Incident:
        """Carry on a run that stopped: after a crash, a wait, or an in-process budget."""
        incident = self.store.get(incident_id)
        if incident.playbook_state == "pending":
            return self.run(incident)
        if incident.playbook_state != "running":
            raise PreconditionFailed(
                f"{incident_id} has nothing to resume: its playbook is {incident.playbook_state}",
                incident_id=incident_id, playbook=incident.playbook, step="resume")
        if incident.execution_arn:
            raise PreconditionFailed(
                f"{incident_id} is driven by the state machine ({incident.execution_arn}); "
                "it resumes on its own", incident_id=incident_id, step="resume")
        return self.drive(incident)

    def advance(self, incident: Incident, *, leased: bool = False,
                hold: bool = False) -> tuple[Incident, Advance]:
        """One step of the run, under the lease. Never raises for a playbook's failure.

        After a "continue" the lease is released for the next driver's call, unless `hold`
        (the in-process loop goes on at once)."""
        if incident.playbook_state == "done" and incident.watch_until is not None:
            incident = self.lifecycle.check(incident)
            if incident.watch_until is not None:
                return incident, self._report(incident, "watch",
                                              self.lifecycle.seconds_left(incident))
            return incident, self._report(incident, "done")
        if not leased:
            incident, busy = self._take_lease(incident)
            if busy is not None:
                return incident, busy
        incident, answer = self._advance(incident)
        if answer.status == "continue" and not hold:
            incident = self._save(incident, lease_until=None)
        return incident, answer

    def _advance(self, incident: Incident) -> tuple[Incident, Advance]:
        phase = "plan"
        try:
            playbook = registry.get(incident.playbook or "")
            if incident.plan is None:
                return self._plan(incident, playbook)
            plan = Plan.model_validate(incident.plan)
            steps = playbook.steps(plan)
            if incident.step_index == 0 and not incident.progress and not incident.acting_on:
                phase = "guard"
                incident, held = self._guard(incident, playbook, plan)
                if held is not None:
                    return incident, held
            if incident.step_index < len(steps):
                phase = steps[incident.step_index]
                return self._step(incident, playbook, plan, phase, steps)
            phase = "verify"
            return self._verify(incident, playbook, plan)
        except FirelineError as exc:
            return self._fail(incident, phase, exc.message, exc.code)
        except Exception as exc:  # a playbook bug must still leave a whole record
            log.exception("playbook %s crashed at %s", incident.playbook, phase)
            return self._fail(incident, phase, f"{type(exc).__name__}: {exc}", "UnexpectedError")

    # --- approval -------------------------------------------------------------------------

    def approve(self, incident_id: str, approver: str, *, note: str = "") -> Incident:
        """A second person says go: the run carries on (the state machine, or in-process)."""
        incident = self._decide(incident_id, approver, approved=True)
        incident = self._note(incident, "approved", f"approved by {approver}"
                              f"{': ' + note if note else ''}", actor=approver, refresh=True)
        if incident.task_token:
            self._release_state_machine(incident)
            return incident
        if incident.execution_arn:
            return incident  # the machine has not parked yet; it will see the approval
        return self.drive(incident)

    def reject(self, incident_id: str, rejecter: str, *, note: str = "") -> Incident:
        incident = self._decide(incident_id, rejecter, approved=False)
        incident = self._note(incident, "rejected", f"rejected by {rejecter}"
                              f"{': ' + note if note else ''}; nothing was changed",
                              actor=rejecter, refresh=True)
        if incident.task_token:
            self._release_state_machine(incident)
        return incident

    def park_for_approval(self, incident_id: str, task_token: str) -> Incident:
        """The state machine waits here; keep its token for whoever approves."""
        parked = False

        def keep(current: Incident) -> Incident | None:
            nonlocal parked
            parked = current.playbook_state == "awaiting-approval"
            if not parked:
                return None
            current.task_token = task_token
            return current

        incident = self.store.update(incident_id, keep)
        if not parked:
            # Decided before the machine parked: let it go on at once.
            self._release_state_machine(incident.model_copy(update={"task_token": task_token}))
        return incident

    def _decide(self, incident_id: str, person: str, *, approved: bool) -> Incident:
        person = person.strip()
        verb = "approve" if approved else "reject"

        def decide(current: Incident) -> Incident:
            if current.playbook_state != "awaiting-approval":
                raise ApprovalNotPending(
                    f"{incident_id} is not waiting for approval (its playbook is "
                    f"{current.playbook_state}); nothing to {verb}",
                    incident_id=incident_id, playbook=current.playbook, step="approval")
            if approved and (person.casefold() in _NOT_A_PERSON
                             or person.casefold() == current.requested_by.casefold()):
                raise SelfApprovalRefused(
                    f"{person or 'nobody'} requested {current.playbook} on {incident_id} and "
                    "cannot approve it too; someone else must approve",
                    incident_id=incident_id, playbook=current.playbook, step="approval")
            current.decided_at = self.clock()
            if approved:
                current.approved_by = person
                current.playbook_state = "running"
                current.status = "mitigating"
            else:
                current.rejected_by = person
                current.playbook_state = "rejected"
                current.status = "open"
            return current

        return self.store.update(incident_id, decide)

    def _release_state_machine(self, incident: Incident) -> None:
        output = json.dumps({"incident_id": incident.incident_id,
                             "decision": incident.playbook_state})
        try:
            self.clients("stepfunctions").send_task_success(
                taskToken=incident.task_token, output=output)
        except (ClientError, BotoCoreError) as exc:
            # The decision is recorded; the machine's own timeout ends a lost token.
            log.error("could not release the state machine for %s: %s",
                      incident.incident_id, describe_aws_error("states:SendTaskSuccess", exc))

    # --- undo -----------------------------------------------------------------------------

    def undo(self, incident_id: str, requested_by: str) -> Incident:
        """Put back what the incident's playbooks changed, from the recorded before, newest
        first. Once. A playbook that cannot be undone (an invalidation) is said so and
        passed over."""

        def claim(current: Incident) -> Incident:
            if not _undoable(current):
                raise NotReversible(
                    f"{incident_id} changed nothing (its playbook is "
                    f"{current.playbook_state}); there is nothing to undo",
                    incident_id=incident_id, playbook=current.playbook, step="undo")
            if current.undone_at is not None:
                raise PreconditionFailed(
                    f"{incident_id} was already undone by {current.undone_by}",
                    incident_id=incident_id, playbook=current.playbook, step="undo")
            current.undone_by = requested_by
            current.undone_at = self.clock()
            return current

        incident = self.store.update(incident_id, claim)
        try:
            ctx = self._context(incident)
        except FirelineError:  # the account cannot be reached: nothing was undone
            self.store.update(incident_id, _forget_undo)
            raise
        undone: list[dict[str, Any]] = []
        for name, recorded in _undoable(incident):
            playbook = registry.get(name)
            try:
                result = playbook.undo(ctx, Outcome.model_validate(recorded))
            except NotReversible as exc:
                incident = self._note(incident, "undo", f"{name}: {exc.message}",
                                      actor=requested_by)
                continue
            except FirelineError as exc:
                if not undone:
                    incident = self.store.update(incident_id, _forget_undo)
                self._note(incident, "undo-failed", f"undo of {name} failed: {exc.message}"
                           + (f"; already undone: {_summaries(undone)}" if undone else ""),
                           actor=requested_by, refresh=True, error=exc.code)
                raise
            undone.append(result.model_dump(mode="json"))
            incident = self._note(incident, "undo", result.summary, actor=requested_by,
                                  changes=_dump(result.changes), before=result.before)
        if not undone:
            incident = self.store.update(incident_id, _forget_undo)
            raise NotReversible(f"nothing {incident_id} did can be undone",
                                incident_id=incident_id, step="undo")
        summary = {"summary": _summaries(undone), "outcomes": undone}
        incident = self.store.update(incident_id, lambda current: _keep_undo(current, summary),
                                     known=incident)
        return self.recorder.refresh(incident)

    # --- phases ---------------------------------------------------------------------------

    def _plan(self, incident: Incident, playbook: Playbook) -> tuple[Incident, Advance]:
        ctx = self._context(incident)  # refuses an account Fireline may not act in
        params = playbook.parse_params(incident.params)
        plan = playbook.plan(ctx, params)
        mode = incident.approval or playbook.default_approval
        if mode == "monitor":
            incident = self._save(incident, plan=plan.model_dump(mode="json"),
                                  playbook_state="monitored", status="open", lease_until=None)
            incident = self._note_plan(incident, plan)
            incident = self._note(incident, "approval",
                                  "monitor mode: planned only, nothing executed",
                                  refresh=True, mode=mode)
            return incident, self._report(incident, "done")
        if mode == "required" and not incident.approved_by:
            incident = self._save(incident, plan=plan.model_dump(mode="json"),
                                  playbook_state="awaiting-approval", status="awaiting-approval",
                                  lease_until=None)
            incident = self._note_plan(incident, plan)
            incident = self._note(
                incident, "approval",
                f"approval required before anything changes: someone other than "
                f"{incident.requested_by} approves or rejects",
                refresh=True, mode=mode, approve=True)
            return incident, self._report(incident, "approval")
        incident = self._save(incident, plan=plan.model_dump(mode="json"))
        incident = self._note_plan(incident, plan)
        return incident, self._report(incident, "continue")

    def _step(self, incident: Incident, playbook: Playbook, plan: Plan, step: str,
              steps: list[str]) -> tuple[Incident, Advance]:
        ctx = self._context(incident)
        holder = [incident]

        def checkpoint() -> None:
            holder[0] = self._save(holder[0], progress=dict(ctx.progress))

        ctx.checkpoint = checkpoint
        started = incident.step_started_at or self.clock()
        try:
            result: StepResult = playbook.run_step(ctx, plan, step)
        except Exception:
            self._keep_partial(holder[0], playbook, ctx, plan)
            raise
        incident = holder[0]
        many = len(steps) > 1
        if result.status == "wait":
            now = self.clock()
            if now - started > playbook.step_deadline:
                raise StepDeadlineExceeded(
                    f"{step} still not finished after {_minutes(now - started)} "
                    f"({result.message}); look at it by hand",
                    incident_id=incident.incident_id, playbook=playbook.name, step=step)
            incident = self._save(incident, progress=dict(ctx.progress),
                                  wait_until=now + timedelta(seconds=result.wait_seconds),
                                  step_started_at=started, lease_until=None)
            if many:
                # Once per step, not per poll: the thread says it waits, not each check.
                incident = self.recorder.note(
                    incident, self._entry("step", f"{step}: {result.message}", step=step),
                    once_key=f"wait:{incident.chain_index}:{step}")
            return incident, self._report(incident, "wait", result.wait_seconds,
                                          result.message)
        outcome = self._outcome_after_last_step(incident, playbook, ctx, plan, steps)
        incident = self._save(incident, progress=dict(ctx.progress),
                              step_index=incident.step_index + 1, wait_until=None,
                              step_started_at=None,
                              **({"outcome": outcome.model_dump(mode="json")} if outcome else {}))
        if many:
            incident = self._note(incident, "step", f"{step}: {result.message or 'done'}",
                                  step=step)
        if outcome is not None:
            incident = self._note_outcome(incident, outcome)
        return incident, self._report(incident, "continue", message=result.message)

    def _outcome_after_last_step(self, incident: Incident, playbook: Playbook,
                                 ctx: PlaybookContext, plan: Plan,
                                 steps: list[str]) -> Outcome | None:
        """After the last step, what the steps did: saved with the step's progress (one
        write). Never in the way of that save: an outcome that cannot be told yet is left
        to verify, which tries again with the progress safely recorded."""
        if incident.step_index + 1 < len(steps) or incident.outcome is not None:
            return None
        try:
            return playbook.outcome(ctx, plan)
        except Exception:
            log.info("%s: outcome left to verify", incident.incident_id, exc_info=True)
            return None

    def _keep_partial(self, incident: Incident, playbook: Playbook, ctx: PlaybookContext,
                      plan: Plan) -> None:
        """A step failed after earlier ones changed things: record what was done, so the
        thread says it and `undo` can put it back. Best effort: the failure is the news."""
        if not ctx.progress or incident.outcome is not None:
            return
        try:
            outcome = playbook.outcome(ctx, plan)
        except Exception:  # the progress may be too partial to describe; keep it as it is
            log.info("no partial outcome for %s", incident.incident_id, exc_info=True)
            self._save(incident, progress=dict(ctx.progress))
            return
        incident = self._save(incident, progress=dict(ctx.progress),
                              outcome=outcome.model_dump(mode="json"))
        self._note(incident, "partial", f"done before the failure: {outcome.summary}",
                   changes=_dump(outcome.changes), before=outcome.before)

    def _verify(self, incident: Incident, playbook: Playbook,
                plan: Plan) -> tuple[Incident, Advance]:
        ctx = self._context(incident)
        if incident.outcome is None:
            outcome = playbook.outcome(ctx, plan)
            incident = self._save(incident, outcome=outcome.model_dump(mode="json"))
            incident = self._note_outcome(incident, outcome)
        verification = playbook.verify(ctx, Outcome.model_validate(incident.outcome))
        return self._finish(incident, verification)

    def _finish(self, incident: Incident,
                verification: Verification) -> tuple[Incident, Advance]:
        # The locks go, and the run's end is saved with it: one write, not three.
        if incident.chain:
            incident = self._release_locks(
                incident, chain=_settle(incident, "done", incident.outcome))
            if incident.chain_index + 1 < len(incident.chain):
                incident = self._note(incident, "verify", verification.summary)
                return self._next_link(incident)
        if incident.alarm_key:
            # Done is not mitigated: the alarm has to come back to OK first.
            incident = self._release_locks(incident, playbook_state="done", lease_until=None,
                                           **self.lifecycle.watch_changes(incident))
            # One reply for both: a storm's fifty incidents stay further from Slack's
            # rate limit (about a message a second per channel).
            incident = self.recorder.note_together(incident, [
                (self._link_entry(incident, "verify", verification.summary), None),
                (self.lifecycle.watch_entry(incident), None),
            ], headline=f"verified; watching {incident.alarm_name} for OK")
            incident = self.recorder.refresh(incident)
            return incident, self._report(incident, "watch",
                                          self.lifecycle.seconds_left(incident))
        incident = self._release_locks(incident, playbook_state="done", status="mitigated",
                                       mitigated_at=self.clock(), lease_until=None)
        incident = self._note(incident, "verify", verification.summary, refresh=True)
        return incident, self._report(incident, "done", message=verification.summary)

    # --- the rails: one actor per resource, a budget, a cooldown -------------------------

    def _guard(self, incident: Incident, playbook: Playbook,
               plan: Plan) -> tuple[Incident, Advance | None]:
        """Before the first change: hold an automatic run that the budget or the cooldown
        forbids, and take the resources' locks (or wait for whoever holds them)."""
        resources = _resources(plan)
        if not resources:
            return incident, None
        automatic = incident.approved_by is None
        if automatic:
            reason = self._rails_refuse(resources, playbook.name, incident.incident_id)
            if reason:
                incident = self._save(incident, playbook_state="awaiting-approval",
                                      status="awaiting-approval", lease_until=None)
                incident = self._note(incident, "approval",
                                      f"not acting automatically: {reason}; a human decides "
                                      "(approve or reject)", refresh=True, approve=True)
                return incident, self._report(incident, "approval")
        until = self.clock() + playbook.step_deadline + LEASE
        taken: list[str] = []
        for resource in resources:
            holder = self.store.acquire_lock(resource, incident.incident_id, until)
            if holder is not None:
                for mine in taken:
                    self.store.release_lock(mine, incident.incident_id)
                incident = self._save(incident, lease_until=None)
                incident = self.recorder.note(incident, self._entry(
                    "waiting", f"{holder} is acting on {resource}; this run waits for it"),
                    once_key=f"lock:{incident.chain_index}:{resource}")
                return incident, self._report(incident, "wait", LOCK_RETRY_SECONDS,
                                              f"{resource} is held by {holder}")
            taken.append(resource)
        for resource in resources:
            self.store.record_action(resource, playbook.name, incident.incident_id,
                                     automatic=automatic)
        return self._save(incident, acting_on=resources), None

    def _rails_refuse(self, resources: list[str], playbook: str,
                      incident_id: str) -> str | None:
        now = self.clock()
        for resource in resources:
            # A chain's own earlier links are one response, not a fight.
            done = [a for a in self.store.actions(resource, now - timedelta(hours=1))
                    if a.playbook == playbook and a.incident_id != incident_id]
            recent = [a for a in done if now - a.at < self.rails.cooldown]
            if recent:
                minutes = int(self.rails.cooldown.total_seconds() // 60)
                return (f"{playbook} acted on {resource} {_minutes(now - recent[-1].at)} ago "
                        f"({recent[-1].incident_id}); the cooldown is {minutes} minutes")
            automatic = [a for a in done if a.automatic]
            if len(automatic) >= self.rails.budget_per_hour:
                return (f"the budget of {self.rails.budget_per_hour} automatic {playbook} "
                        f"actions an hour on {resource} is spent")
        return None

    def _release_locks(self, incident: Incident, **changes: Any) -> Incident:
        """Let go of the run's resources; `changes` are saved in the same write."""
        for resource in incident.acting_on:
            self.store.release_lock(resource, incident.incident_id)
        if incident.acting_on:
            changes["acting_on"] = []
        return self._save(incident, **changes) if changes else incident

    def _next_link(self, incident: Incident) -> tuple[Incident, Advance]:
        """The chain's next playbook starts from a clean slate; the approval holds."""
        index = incident.chain_index + 1
        link = incident.chain[index]
        incident = self._save(incident, chain_index=index, playbook=link.playbook,
                              params=link.params, plan=None, outcome=None, step_index=0,
                              progress={}, wait_until=None, step_started_at=None)
        incident = self._note(incident, "chain",
                              f"next: {link.playbook} ({index + 1} of {len(incident.chain)})",
                              refresh=True)
        return incident, self._report(incident, "continue")

    def _fail(self, incident: Incident, step: str, message: str,
              code: str) -> tuple[Incident, Advance]:
        try:  # a failing step may have recorded what it did first
            incident = self._release_locks(self.store.get(incident.incident_id))
        except FirelineError:
            log.exception("could not re-read %s", incident.incident_id)
        text = f"{incident.playbook} failed at {step}: {message}"
        changes: dict[str, Any] = {}
        if incident.chain:
            changes["chain"] = _settle(incident, "failed", incident.outcome)
            text += "; " + _chain_report(changes["chain"])
        try:
            incident = self._save(incident, playbook_state="failed", status="failed",
                                  error=f"{step}: {message}", lease_until=None, **changes)
        except FirelineError:
            log.exception("could not mark %s failed", incident.incident_id)
        incident = self._note(incident, "failed", text, refresh=True, error=code, step=step)
        return incident, self._report(incident, "failed", message=message)

    # --- the lease ------------------------------------------------------------------------

    def _take_lease(self, incident: Incident) -> tuple[Incident, Advance | None]:
        now = self.clock()
        answer: Advance | None = None

        def take(current: Incident) -> Incident | None:
            nonlocal answer
            answer = None
            if current.playbook_state != "running":
                answer = self._report(current, _SETTLED.get(current.playbook_state, "failed"))
                return None
            if current.lease_until and current.lease_until > now:
                left = int((current.lease_until - now).total_seconds()) + 1
                answer = self._report(current, "busy", left,
                                      "another driver holds this run")
                return None
            current.lease_until = now + LEASE
            return current

        incident = self.store.update(incident.incident_id, take, known=incident)
        return incident, answer

    # --- the state machine ----------------------------------------------------------------

    def _for_state_machine(self, incident: Incident) -> bool:
        return bool(self.state_machine_arn and incident.playbook
                    and registry.get(incident.playbook).long_running)

    def _start_execution(self, incident: Incident) -> Incident:
        try:
            # The incident id as the name: a retried start is the same execution.
            execution = self.clients("stepfunctions").start_execution(
                stateMachineArn=self.state_machine_arn, name=incident.incident_id,
                input=json.dumps({"incident_id": incident.incident_id}))
        except (ClientError, BotoCoreError) as exc:
            error = describe_aws_error("states:StartExecution", exc)
            return self._fail(incident, "start", error.message, error.code)[0]
        incident = self._save(incident, execution_arn=execution["executionArn"],
                              lease_until=None)
        return self._note(incident, "started",
                          "the state machine drives this run; its steps follow here",
                          execution=execution["executionArn"])

    # --- plumbing -------------------------------------------------------------------------

    def _context(self, incident: Incident) -> PlaybookContext:
        # The playbook acts where the alarm is, never on a namesake in the home region or
        # account: another account's clients come from the role assumed there.
        region = incident.region
        account_clients = self.accounts.clients_for(
            incident.account_id, incident_id=incident.incident_id, playbook=incident.playbook)

        def clients(service: str, **kwargs: Any) -> Any:
            if region:
                kwargs.setdefault("region", region)
            return account_clients(service, **kwargs)

        return PlaybookContext(
            clients=clients, marks=self.store, incident_id=incident.incident_id,
            clock=self.clock, logger=logging.getLogger(f"fireline.playbook.{incident.playbook}"),
            requested_by=incident.requested_by,
            reference_time=incident.alarm_changed_at or incident.opened_at,
            progress=dict(incident.progress),
            run_key=(f"{incident.incident_id}-link{incident.chain_index + 1}"
                     if incident.chain_index else incident.incident_id))

    def _save(self, incident: Incident, **changes: Any) -> Incident:
        # Every save while running renews the lease, unless the caller sets it.
        if "lease_until" not in changes:
            changes["lease_until"] = self.clock() + LEASE

        def apply(current: Incident) -> Incident:
            for key, value in changes.items():
                setattr(current, key, value)
            if current.playbook_state != "running":
                current.lease_until = None
            return current

        return self.store.update(incident.incident_id, apply, known=incident)

    def _note_outcome(self, incident: Incident, outcome: Outcome) -> Incident:
        return self._note(incident, "execute", outcome.summary,
                          changes=_dump(outcome.changes), before=outcome.before)

    def _note_plan(self, incident: Incident, plan: Plan) -> Incident:
        return self._note(incident, "plan", plan.summary, changes=_dump(plan.changes),
                          warnings=plan.warnings)

    def _entry(self, kind: str, text: str, *, actor: str = "fireline",
               **data: Any) -> TimelineEntry:
        return TimelineEntry(kind=kind, text=text, actor=actor, at=self.clock(), data=data)

    def _note(self, incident: Incident, kind: str, text: str, *, actor: str = "fireline",
              refresh: bool = False, **data: Any) -> Incident:
        return self.recorder.note(
            incident, self._link_entry(incident, kind, text, actor=actor, **data),
            refresh=refresh)

    def _link_entry(self, incident: Incident, kind: str, text: str, *,
                    actor: str = "fireline", **data: Any) -> TimelineEntry:
        """An entry of this run, with its state; in a chain, named after its playbook."""
        if len(incident.chain) > 1 and kind in _PER_LINK:
            # Each playbook of a chain shows in the thread under its own name.
            text = (f"{incident.playbook} ({incident.chain_index + 1}/{len(incident.chain)})"
                    f" · {text}")
        data = {**data, "status": incident.status, "playbook_state": incident.playbook_state}
        return self._entry(kind, text, actor=actor, **data)

    def _report(self, incident: Incident, status: AdvanceStatus, wait_seconds: int = 0,
                message: str = "") -> Advance:
        return Advance(incident_id=incident.incident_id, status=status,
                       wait_seconds=wait_seconds, message=message)


_PER_LINK = {"plan", "step", "execute", "verify"}

# Where a run that is not running stands, in a driver's terms.
_SETTLED: dict[str, AdvanceStatus] = {
    "awaiting-approval": "approval", "done": "done", "monitored": "done",
    "rejected": "rejected", "failed": "failed", "pending": "failed", "none": "done",
}


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


def _resources(plan: Plan) -> list[str]:
    """What a plan acts on, as locks and budgets count it: a Lambda function whatever its
    alias, a bucket whatever its keys."""
    found: list[str] = []
    for change in plan.changes:
        resource = change.resource
        if resource.startswith("arn:") and ":lambda:" in resource and ":function:" in resource:
            resource = ":".join(resource.split(":")[:7])
        elif resource.startswith("s3://"):
            resource = "s3://" + resource[len("s3://"):].split("/", 1)[0]
        if resource not in found:
            found.append(resource)
    return found


def _settle(incident: Incident, state: str,
            outcome: dict[str, Any] | None) -> list[ChainLink]:
    """The chain with the current link settled; after a failure the rest are not run."""
    chain = [link.model_copy(deep=True) for link in incident.chain]
    current = chain[incident.chain_index]
    current.state = state  # type: ignore[assignment]
    current.outcome = outcome
    current.summary = str((outcome or {}).get("summary", "")) or incident.error or ""
    if state == "failed":
        for link in chain[incident.chain_index + 1:]:
            link.state = "not-run"
    return chain


def _chain_report(chain: list[ChainLink]) -> str:
    done = [f"{link.playbook} ({link.summary})" for link in chain if link.state == "done"]
    skipped = [link.playbook for link in chain if link.state == "not-run"]
    report = "done so far: " + ("; ".join(done) if done else "nothing")
    if skipped:
        report += f"; not run: {', '.join(skipped)}"
    return report


def _minutes(duration: timedelta) -> str:
    minutes = round(duration.total_seconds() / 60)
    return f"{minutes} minute{'' if minutes == 1 else 's'}"


def _undoable(incident: Incident) -> list[tuple[str, dict[str, Any]]]:
    """(playbook, outcome) of everything the incident changed, newest first."""
    if incident.chain:
        return [(link.playbook, link.outcome) for link in reversed(incident.chain)
                if link.outcome is not None]
    if incident.outcome is not None and incident.playbook:
        return [(incident.playbook, incident.outcome)]
    return []


def _summaries(outcomes: list[dict[str, Any]]) -> str:
    return "; ".join(str(outcome.get("summary", "")) for outcome in outcomes)


def _forget_undo(incident: Incident) -> Incident:
    incident.undone_by = incident.undone_at = None
    return incident


def _keep_undo(incident: Incident, outcome: dict[str, Any]) -> Incident:
    incident.undo_outcome = outcome
    return incident


def _dump(models: list[Any]) -> list[dict[str, Any]]:
    return [m.model_dump(mode="json") for m in models]
