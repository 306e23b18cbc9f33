"""Recording: every step goes to the incident's timeline first, then to Slack.

The store is the record; Slack is a view of it. A Slack failure is the notifier's to log,
and the thread reference is saved whenever Slack hands one back.

While an automatic action is being taken, Slack waits (`slack_after_the_action`): the
timeline is written as it happens, and its messages go to Slack, in order, once the first
step has run (or the run stopped before it). A slow Slack then never delays the action,
and the thread shows it a fraction of a second later.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator, Sequence

from fireline.errors import FirelineError
from fireline.incidents import Incident, IncidentStore, SlackThread, TimelineEntry
from fireline.notify import Attachment, Notifier, Upload

log = logging.getLogger(__name__)

# A message waiting for the action: the incident as it was when the entry was recorded,
# and the notifier call that shows it (handed that incident, with the thread known by then).
_Post = tuple[Incident, Callable[[Incident], SlackThread | None]]


class Recorder:
    def __init__(self, store: IncidentStore, notifier: Notifier) -> None:
        self.store = store
        self.notifier = notifier
        # Per thread: the storm benchmark and the CLI handle deliveries side by side.
        self._local = threading.local()

    @contextlib.contextmanager
    def slack_after_the_action(self, incident_id: str) -> Iterator[None]:
        """Hold this incident's Slack messages until `release` (the engine calls it once
        the run's first step has run). Whatever is still held at the end is posted then,
        even if the block raised."""
        if self._held() is not None:
            yield  # already held by an outer block: it releases
            return
        self._local.held = []
        try:
            yield
        finally:
            left = self._local.held
            self._local.held = None
            if left:
                self._post_held(left, incident_id, save_thread=True)

    def release(self, incident: Incident) -> Incident:
        """Post the held messages, in order; `incident` as the caller has it now, with the
        thread Slack answered (no-op when nothing is held)."""
        held = self._held()
        if held is None:
            return incident
        self._local.held = None
        thread = self._post_held(held, incident.incident_id, save_thread=False)
        return self._remember(incident, thread) if thread else incident

    def opened(self, incident: Incident, entry: TimelineEntry) -> Incident:
        self.store.append(incident.incident_id, entry)
        return self._show(incident, self.notifier.open)

    def note(self, incident: Incident, entry: TimelineEntry, *, once_key: str | None = None,
             refresh: bool = False) -> Incident:
        if not self.store.append(incident.incident_id, entry, once_key=once_key):
            return incident
        incident = self._heal_thread(incident, but=entry)
        incident = self._show(incident, lambda shown: self.notifier.reply(shown, entry))
        if refresh:
            self.refresh(incident)
        return incident

    def note_together(self, incident: Incident,
                      entries: Sequence[tuple[TimelineEntry, str | None]], *,
                      headline: str) -> Incident:
        """Record each entry (with its once-key) on the timeline, and post the ones recorded
        as one reply under `headline`: one Slack call rather than one per entry, so an
        incident stays within its Slack budget in an alarm storm."""
        incident = self.release(incident)  # anything held goes first: order is kept
        recorded = [entry for entry, once_key in entries
                    if self.store.append(incident.incident_id, entry, once_key=once_key)]
        if not recorded:
            return incident
        incident = self._heal_thread(incident, but=recorded)
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
        incident = self.release(incident)  # the upload's answer is needed now
        self.store.append(incident.incident_id, entry)
        thread, upload = self.notifier.upload(incident, entry, attachment)
        return self._remember(incident, thread), upload

    def refresh(self, incident: Incident) -> None:
        """Show the incident's current state on its parent message."""
        held = self._held()
        if held is not None:
            held.append((incident, lambda shown: self.notifier.refresh(shown)))
            return
        self.notifier.refresh(incident)

    def _heal_thread(self, incident: Incident, *,
                     but: TimelineEntry | Sequence[TimelineEntry]) -> Incident:
        """An incident whose parent message never made it (Slack was down when it opened):
        post it now, then what the thread missed in one reply, before the next entry
        (`but`, already on the timeline). Nothing to do with a thread, or while held."""
        if incident.slack is not None or self._held() is not None:
            return incident
        thread = self.notifier.open(incident)
        if thread is None:
            return incident
        incident = self._remember(incident, thread)
        shown = {entry.entry_id for entry in ([but] if isinstance(but, TimelineEntry) else but)}
        missed = [entry for entry in self.store.timeline(incident.incident_id)
                  if entry.kind != "opened" and entry.entry_id not in shown]
        if missed:
            self.notifier.reply(incident, TimelineEntry(
                kind="earlier", text=f"{len(missed)} earlier "
                f"{'update' if len(missed) == 1 else 'updates'}, posted now that Slack answers",
                data={"lines": [f"{entry.at:%H:%M:%S}Z {entry.kind} · {entry.text}"
                                for entry in missed]}))
        return incident

    def _held(self) -> list[_Post] | None:
        return getattr(self._local, "held", None)

    def _show(self, incident: Incident,
              post: Callable[[Incident], SlackThread | None]) -> Incident:
        held = self._held()
        if held is not None:
            held.append((incident, post))
            return incident
        return self._remember(incident, post(incident))

    def _post_held(self, held: list[_Post], incident_id: str, *,
                   save_thread: bool) -> SlackThread | None:
        """Post what was held, each as the incident was then, in the thread posted first;
        `save_thread` when no caller holds the incident to save it on (the block raised)."""
        thread: SlackThread | None = None
        for incident, post in held:
            shown = incident if incident.slack or thread is None else incident.model_copy(
                update={"slack": thread})
            thread = post(shown) or thread or shown.slack
        if save_thread and thread is not None:
            try:
                self._remember(self.store.get(incident_id), thread)
            except FirelineError as exc:  # the store down too: the next post re-opens
                log.warning("could not save the Slack thread of %s: %s", incident_id,
                            exc.message)
        return thread

    def _remember(self, incident: Incident, thread: SlackThread | None) -> Incident:
        if thread is None or thread == incident.slack:
            return incident

        def keep(current: Incident) -> Incident | None:
            if current.slack == thread:
                return None
            current.slack = thread
            return current

        return self.store.update(incident.incident_id, keep, known=incident)
