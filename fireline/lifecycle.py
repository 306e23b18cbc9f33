"""After the action: did the alarm recover? And the end of an incident: resolve, re-open.

    mitigating (watching) --alarm OK before the deadline--> mitigated --OK--> resolved
                          --still ALARM at the deadline--> escalated (+ undo if the rule says)

No handler ever waits for the window: the deadline is on the incident, and whoever comes
next checks it (the state machine's Wait loop, the next event for the alarm, or
`fireline incidents check`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from fireline.aws import ClientFactory, describe_aws_error
from fireline.decision import SEVERITIES, Severity
from fireline.errors import FirelineError
from fireline.incidents import Incident, IncidentStore, TimelineEntry
from fireline.timeline import Recorder

log = logging.getLogger(__name__)

# How often the state machine looks at a watched alarm.
WATCH_POLL_SECONDS = 60


class Lifecycle:
    def __init__(self, *, store: IncidentStore, recorder: Recorder, clients: ClientFactory,
                 clock: Callable[[], datetime], undo: Callable[[str, str], Incident],
                 release: Callable[[Incident], None],
                 clients_for: Callable[..., ClientFactory] | None = None) -> None:
        self.store = store
        self.recorder = recorder
        self.clients = clients
        # The alarm lives in its own account: read it there (the engine's account factory).
        self.clients_for = clients_for or (lambda account_id, **_: clients)
        self.clock = clock
        self.undo = undo
        # Lets a state machine parked on the incident's approval go on.
        self.release = release

    # --- watching for recovery ------------------------------------------------------------

    def watch_changes(self, incident: Incident) -> dict[str, Any]:
        """The action is done and verified; now the alarm has to come back. What to save on
        the incident (the engine saves it with its own last changes, in one write)."""
        return {"status": "mitigating",
                "watch_until": self.clock() + timedelta(minutes=incident.recovery_window_minutes)}

    def watch_entry(self, incident: Incident) -> TimelineEntry:
        """What the saved watch waits for, for the timeline (the engine posts it in one
        reply with the verification it follows)."""
        assert incident.watch_until is not None, "save watch_changes first"
        return self._entry(incident, "watch",
                           f"watching {incident.alarm_name} until "
                           f"{incident.watch_until:%H:%M:%S}Z: "
                           "it must return to OK for the action to count")

    def check(self, incident: Incident, *, known_state: str | None = None) -> Incident:
        """Look at a watched alarm once: recovered, still in time, or escalated.
        `known_state` is the alarm's state when the caller has just been told it."""
        if incident.watch_until is None or incident.status != "mitigating":
            return incident
        state = known_state or self._alarm_state(incident)
        now = self.clock()
        if state == "OK":
            return self.mitigated(incident, "the alarm is back to OK")
        if now < incident.watch_until:
            return incident
        return self._escalate(incident, state or "unknown")

    def seconds_left(self, incident: Incident) -> int:
        if incident.watch_until is None:
            return 0
        left = (incident.watch_until - self.clock()).total_seconds()
        return max(1, min(WATCH_POLL_SECONDS, int(left) + 1))

    def mitigated(self, incident: Incident, why: str) -> Incident:
        now = self.clock()

        def done(current: Incident) -> Incident | None:
            if current.status != "mitigating":
                return None
            current.status, current.watch_until = "mitigated", None
            current.mitigated_at = current.mitigated_at or now
            return current

        incident = self.store.update(incident.incident_id, done, known=incident)
        return self._note(incident, "mitigated",
                          f"mitigated: {why}, {_span(incident.opened_at, now)} after opening",
                          once_key=f"mitigated-{incident.reopened}", refresh=True)

    def _escalate(self, incident: Incident, state: str) -> Incident:
        now = self.clock()

        def escalate(current: Incident) -> Incident | None:
            if current.status != "mitigating":
                return None
            current.status, current.watch_until, current.escalated_at = "escalated", None, now
            current.severity = raise_severity(current.severity)
            return current

        incident = self.store.update(incident.incident_id, escalate, known=incident)
        plan = "undoing it" if incident.on_no_recovery == "undo" else "a human must take over"
        incident = self._note(
            incident, "escalated",
            f"the action did not help: {incident.alarm_name} is still {state} "
            f"{incident.recovery_window_minutes} min later; severity now "
            f"{incident.severity}; {plan}", once_key=f"escalated-{incident.reopened}",
            refresh=True)
        if incident.on_no_recovery == "undo":
            try:
                incident = self.undo(incident.incident_id, "fireline")
            except FirelineError as exc:
                log.error("undo after no recovery failed for %s: %s", incident.incident_id,
                          exc.message)
                incident = self.store.get(incident.incident_id)
        return incident

    # --- the end, and a second life --------------------------------------------------------

    def resolve_on_ok(self, incident: Incident, reason: str) -> Incident:
        """An OK notification closes the incident, unless an action is under way."""
        if incident.playbook_state in {"pending", "running"} and incident.watch_until is None:
            return self._note(incident, "alarm", f"{incident.alarm_name} is now OK while "
                              f"{incident.playbook} is {incident.playbook_state}: {reason}")
        now = self.clock()

        def resolve(current: Incident) -> Incident | None:
            if current.status == "resolved":
                return None
            current.mitigated_at = current.mitigated_at or now
            current.status, current.watch_until = "resolved", None
            current.resolved_by, current.resolved_at = "alarm", now
            current.alarm_state = "OK"
            if current.playbook_state == "awaiting-approval":
                # Recovered on its own: a held plan must not run later on a closed incident.
                current.playbook_state, current.rejected_by = "rejected", "alarm"
            return current

        incident = self.store.update(incident.incident_id, resolve, known=incident)
        self.store.close_alarm(incident)
        if incident.rejected_by == "alarm" and incident.task_token:
            self.release(incident)
        return self._note(
            incident, "resolved",
            f"resolved: {incident.alarm_name} is OK ({reason}); time to mitigate "
            f"{_span(incident.opened_at, incident.mitigated_at or now)}, time to resolve "
            f"{_span(incident.opened_at, now)}", actor="alarm",
            once_key=f"resolved-{incident.reopened}", refresh=True)

    def reopen(self, incident: Incident, reason: str, *,
               changed_at: datetime | None = None) -> Incident:
        """The alarm fired again soon after it resolved (its state changed at `changed_at`):
        the same incident, more severe."""
        now = self.clock()

        def reopen(current: Incident) -> Incident:
            gap = _span(current.resolved_at or now, now)
            current.status, current.alarm_state = "open", "ALARM"
            current.alarm_changed_at = changed_at or current.alarm_changed_at
            current.severity = raise_severity(current.severity)
            current.reopened += 1
            current.resolved_by = current.resolved_at = None
            current.reasons = [*current.reasons, f"re-opened {gap} after it resolved"]
            return current

        incident = self.store.update(incident.incident_id, reopen)
        return self._note(
            incident, "reopened",
            f"{incident.alarm_name} fired again soon after resolving ({reason}): re-opened, "
            f"severity now {incident.severity}; the earlier action did not hold, so nothing "
            "runs again automatically", actor="alarm", once_key=f"reopened-{incident.reopened}",
            refresh=True)

    # --- plumbing -------------------------------------------------------------------------

    def _alarm_state(self, incident: Incident) -> str | None:
        kwargs: dict[str, Any] = {"region": incident.region} if incident.region else {}
        try:
            clients = self.clients_for(incident.account_id, incident_id=incident.incident_id)
            alarms = clients("cloudwatch", **kwargs).describe_alarms(
                AlarmNames=[incident.alarm_name])
        except FirelineError as exc:  # another account Fireline may not (or cannot) read
            log.warning("cannot read %s: %s", incident.alarm_name, exc.message)
            return None
        except (ClientError, BotoCoreError) as exc:
            log.warning("cannot read %s: %s", incident.alarm_name,
                        describe_aws_error("cloudwatch:DescribeAlarms", exc).message)
            return None
        found = alarms.get("MetricAlarms", []) + alarms.get("CompositeAlarms", [])
        return found[0]["StateValue"] if found else None

    def _note(self, incident: Incident, kind: str, text: str, *, actor: str = "fireline",
              once_key: str | None = None, refresh: bool = False) -> Incident:
        return self.recorder.note(incident, self._entry(incident, kind, text, actor=actor),
                                  once_key=once_key, refresh=refresh)

    def _entry(self, incident: Incident, kind: str, text: str, *,
               actor: str = "fireline") -> TimelineEntry:
        return TimelineEntry(kind=kind, text=text, actor=actor, at=self.clock(),
                             data={"status": incident.status, "severity": incident.severity})


def raise_severity(severity: Severity) -> Severity:
    """One level up (SEV-2 -> SEV-1); SEV-1 stays."""
    return SEVERITIES[max(0, SEVERITIES.index(severity) - 1)]


def _span(start: datetime, end: datetime) -> str:
    seconds = max(0, int((end - start).total_seconds()))
    minutes, seconds = divmod(seconds, 60)
    return f"{minutes} min {seconds} s" if minutes else f"{seconds} s"
