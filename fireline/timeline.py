"""Recording: every step goes to the incident's timeline first, then to Slack.

The store is the record; Slack is a view of it. A Slack failure is the notifier's to log,
and the thread reference is saved whenever Slack hands one back.
"""

from __future__ import annotations

from collections.abc import Sequence

from fireline.incidents import Incident, IncidentStore, SlackThread, TimelineEntry
from fireline.notify import Attachment, Notifier, Upload


class Recorder:
    def __init__(self, store: IncidentStore, notifier: Notifier) -> None:
        self.store = store
        self.notifier = notifier

    def opened(self, incident: Incident, entry: TimelineEntry) -> Incident:
        self.store.append(incident.incident_id, entry)
        return self._remember(incident, self.notifier.open(incident))

    def note(self, incident: Incident, entry: TimelineEntry, *, once_key: str | None = None,
             refresh: bool = False) -> Incident:
        if not self.store.append(incident.incident_id, entry, once_key=once_key):
            return incident
        incident = self._remember(incident, self.notifier.reply(incident, entry))
        if refresh:
            self.refresh(incident)
        return incident

    def note_together(self, incident: Incident,
                      entries: Sequence[tuple[TimelineEntry, str | None]], *,
                      headline: str) -> Incident:
        """Record each entry (with its once-key) on the timeline, and post the ones recorded
        as one reply under `headline`: one Slack call rather than one per entry, so an
        incident stays within its Slack budget in an alarm storm."""
        recorded = [entry for entry, once_key in entries
                    if self.store.append(incident.incident_id, entry, once_key=once_key)]
        if not recorded:
            return incident
        lines: list[str] = []
        for entry in recorded:
            lines.append(f"• {entry.text}")
            lines.extend(f"    {line}" for line in entry.data.get("lines") or [])
        summary = recorded[0].model_copy(update={"text": headline, "data": {"lines": lines}})
        return self._remember(incident, self.notifier.reply(incident, summary))

    def attach(self, incident: Incident, entry: TimelineEntry,
               attachment: Attachment) -> tuple[Incident, Upload]:
        """Record `entry`, then post `attachment` in the thread with it as the comment.

        The file itself is not kept on the incident (an item has a size limit): the entry
        says what was shown."""
        self.store.append(incident.incident_id, entry)
        thread, upload = self.notifier.upload(incident, entry, attachment)
        return self._remember(incident, thread), upload

    def refresh(self, incident: Incident) -> None:
        """Show the incident's current state on its parent message."""
        self.notifier.refresh(incident)

    def _remember(self, incident: Incident, thread: SlackThread | None) -> Incident:
        if thread is None or thread == incident.slack:
            return incident

        def keep(current: Incident) -> Incident | None:
            if current.slack == thread:
                return None
            current.slack = thread
            return current

        return self.store.update(incident.incident_id, keep, known=incident)
