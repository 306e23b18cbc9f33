"""Recording: every step goes to the incident's timeline first, then to Slack.

The store is the record; Slack is a view of it. A Slack failure is the notifier's to log,
and the thread reference is saved whenever Slack hands one back.

While an automatic action is being taken, Slack waits (`slack_after_the_action`): the
timeline is written as it happens, and its messages go to Slack, in order, once the first
step has run (or the run stopped before it). A slow Slack then never delays the action,
and the thread shows it a fraction of a second later.

A thread that missed updates catches up: a reply Slack refused or skipped (a rate limit, an
outage) marks the incident `slack_behind`, and the next post, a later delivery of its alarm
or the minute's check first posts what the thread missed as one reply and brings the parent
up to date. A thread whose parent never made it heals the same way, parent first.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta

from fireline.errors import FirelineError
from fireline.incidents import Incident, IncidentStore, SlackThread, TimelineEntry
from fireline.notify import Attachment, Notifier, Shown, Upload
from fireline.timestamps import utc_now

log = logging.getLogger(__name__)

# After Slack failed in this process, a later delivery leaves a behind thread to the next
# entry or the minute's check for this long.
CATCH_UP_BACKOFF_SECONDS = 30.0
# How long an invocation holds a thread's catch-up: as long as any invocation can live (the
# functions' timeout, infra/template.yaml), so a live one is never overtaken (and nothing
# is posted twice), and a dead one's is taken up by the first catch-up after it.
CATCH_UP_LEASE = timedelta(seconds=180)

# A message waiting for the action: the incident as it was when the entry was recorded,
# the notifier call that shows it (handed that incident, with the thread known by then),
# when it happened and the entries it shows (what the thread misses if Slack refuses it).
_Post = tuple[Incident, Callable[[Incident], Shown], datetime, tuple[str, ...]]


class Recorder:
    def __init__(self, store: IncidentStore, notifier: Notifier, *,
                 clock: Callable[[], datetime] = utc_now) -> None:
        self.store = store
        self.notifier = notifier
        self.clock = clock
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
                self._save_after_raise(incident_id, *self._post_held(left))

    def release(self, incident: Incident) -> Incident:
        """Post the held messages, in order; `incident` as the caller has it now, with the
        thread Slack answered (no-op when nothing is held)."""
        held = self._held()
        if held is None:
            return incident
        self._local.held = None
        thread, missed_since, missed = self._post_held(held)
        return self._fall_behind(self._remember(incident, thread), missed_since, missed)

    def opened(self, incident: Incident, entry: TimelineEntry) -> Incident:
        self.store.append(incident.incident_id, entry)
        return self._show(incident, self._post_parent, entry.at, ())

    def note(self, incident: Incident, entry: TimelineEntry, *, once_key: str | None = None,
             refresh: bool = False) -> Incident:
        if not self.store.append(incident.incident_id, entry, once_key=once_key):
            return incident
        incident = self._heal_thread(incident, but=entry)
        if self._still_behind(incident):
            return self._fall_behind(incident, entry.at, (entry.entry_id,))
        incident = self._show(incident, lambda shown: self.notifier.reply(shown, entry),
                              entry.at, (entry.entry_id,))
        if refresh:
            incident = self.refresh(incident)
        return incident

    def catch_up(self, incident: Incident, *, backoff: bool = True) -> Incident:
        """Bring a thread marked `slack_behind` up to date (its parent first, if that is
        what Slack missed); the incident as left. No call is made for a thread that is
        whole, or while Slack is being left alone; with `backoff` (a later delivery of the
        alarm), none either for `CATCH_UP_BACKOFF_SECONDS` after any Slack failure here:
        a storm's repeats must not each pay a Query and two writes to hear invalid_auth.

        A thread without its parent and without the mark is left alone: its opener is
        holding the parent until the action has run."""
        if not self.behind(incident) or (
                backoff and self.notifier.failed_within(CATCH_UP_BACKOFF_SECONDS)):
            return incident
        return self._heal_thread(incident, but=())

    def behind(self, incident: Incident) -> bool:
        """Whether the thread missed updates and no live invocation is catching it up."""
        return incident.slack_behind is not None and (
            incident.slack_catching_up_until is None
            or incident.slack_catching_up_until <= self.clock())

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
        ids = tuple(entry.entry_id for entry in recorded)
        if self._still_behind(incident):
            return self._fall_behind(incident, recorded[0].at, ids)
        lines: list[str] = []
        for entry in recorded:
            lines.append(f"• {entry.text}")
            lines.extend(f"    {line}" for line in entry.data.get("lines") or [])
        summary = recorded[0].model_copy(update={"text": headline, "data": {"lines": lines}})
        return self._show(incident, lambda shown: self.notifier.reply(shown, summary),
                          recorded[0].at, ids)

    def attach(self, incident: Incident, entry: TimelineEntry,
               attachment: Attachment) -> tuple[Incident, Upload]:
        """Record `entry`, then post `attachment` in the thread with it as the comment.

        The file itself is not kept on the incident (an item has a size limit): the entry
        says what was shown."""
        incident = self.release(incident)  # the upload's answer is needed now
        self.store.append(incident.incident_id, entry)
        thread, upload = self.notifier.upload(incident, entry, attachment)
        # A file that did not make it is not caught up: the caller notes that in words.
        return self._remember(incident, thread), upload

    def refresh(self, incident: Incident) -> Incident:
        """Show the incident's current state on its parent message; the incident as left
        (marked behind if Slack did not take the update)."""
        if self._still_behind(incident):
            return incident  # the catch-up brings the parent up to date too
        return self._show(incident, lambda shown: Shown(
            None, posted=self.notifier.refresh(shown)), self.clock(), ())

    def _heal_thread(self, incident: Incident, *,
                     but: TimelineEntry | Sequence[TimelineEntry]) -> Incident:
        """Before the next entry (`but`, already on the timeline) is posted: post what the
        thread missed, in one reply. An incident whose parent message never made it (Slack
        was down when it opened) gets its parent first, and then everything after it; one
        marked `slack_behind`, the entries Slack missed (and its parent brought up to
        date). Nothing to do with a whole thread, while held, or while Slack is left alone."""
        if self._held() is not None or self.notifier.paused:
            return incident
        if incident.slack is not None and incident.slack_behind is None:
            return incident
        since: datetime | None = None
        claimed: tuple[str, ...] = ()
        if incident.slack_behind is not None:
            incident, since, claimed = self._claim_catch_up(incident)
            if since is None:
                return incident  # another invocation is catching it up, or just did
        new_parent = incident.slack is None
        if new_parent:
            thread = self.notifier.open(incident)
            if thread is None:
                return self._fall_behind(incident, since or incident.opened_at, claimed,
                                         releasing=since is not None)
            incident = self._remember(incident, thread)
        shown = {entry.entry_id for entry in ([but] if isinstance(but, TimelineEntry) else but)}
        # After a new parent everything is news to the thread; else what Slack missed.
        missed = [entry for entry in self.store.timeline(incident.incident_id)
                  if entry.entry_id not in shown
                  and (entry.kind != "opened" if new_parent else entry.entry_id in claimed)]
        if missed and not self.notifier.reply(incident, TimelineEntry(
                kind="earlier", text=f"{len(missed)} earlier "
                f"{'update' if len(missed) == 1 else 'updates'}, posted now that Slack answers",
                data={"lines": [f"{entry.at:%H:%M:%S}Z {entry.kind} · {entry.text}"
                                for entry in missed]})).posted:
            return self._fall_behind(incident, since or missed[0].at,
                                     tuple(entry.entry_id for entry in missed),
                                     releasing=since is not None)
        if since is None:
            return incident
        # The parent is brought up to date last; if Slack refuses that, the mark stays on
        # for it alone: what the reply showed is not posted again.
        parent_current = new_parent or self.notifier.refresh(incident)
        return self._caught_up(incident, {*claimed, *(entry.entry_id for entry in missed)},
                               parent_current=parent_current)

    def _still_behind(self, incident: Incident) -> bool:
        """The thread missed updates and could not catch up just now (or another invocation
        is catching it up): a newer entry waits for the catch-up that will carry it (in
        order, and never twice)."""
        return incident.slack_behind is not None and self._held() is None

    def _claim_catch_up(self, incident: Incident
                        ) -> tuple[Incident, datetime | None, tuple[str, ...]]:
        """Hold the incident's catch-up for `CATCH_UP_LEASE`, so one invocation alone posts
        it; the incident, where the thread is behind from (None: not ours to catch up) and
        the entries it missed. The mark stays on until the catch-up is posted
        (`_caught_up`): a process that dies before that leaves it for the next one."""
        taken: list[tuple[datetime, tuple[str, ...]]] = []
        now = self.clock()

        def claim(current: Incident) -> Incident | None:
            taken.clear()
            if current.slack_behind is None:
                return None  # caught up by another invocation in between
            if current.slack_catching_up_until and current.slack_catching_up_until > now:
                return None  # another invocation is posting it
            taken.append((current.slack_behind, tuple(current.slack_missed)))
            current.slack_catching_up_until = now + CATCH_UP_LEASE
            return current

        try:
            incident = self.store.update(incident.incident_id, claim, known=incident)
        except FirelineError as exc:  # the store down too: the next post tries again
            log.warning("could not catch up the Slack thread of %s: %s",
                        incident.incident_id, exc.message)
            return incident, None, ()
        if not taken:
            return incident, None, ()
        since, missed = taken[0]
        return incident, since, missed

    def _caught_up(self, incident: Incident, posted: set[str], *,
                   parent_current: bool) -> Incident:
        """The catch-up this invocation held is posted: take its entries (and the hold) off
        the mark. Entries that fell behind meanwhile, or a parent Slack did not update,
        keep it on, for the next catch-up."""

        def done(current: Incident) -> Incident | None:
            current.slack_catching_up_until = None
            current.slack_missed = [e for e in current.slack_missed if e not in posted]
            if not current.slack_missed and parent_current:
                current.slack_behind = None
            return current

        try:
            return self.store.update(incident.incident_id, done, known=incident)
        except FirelineError as exc:  # posted; the hold runs out and the next may repeat it
            log.warning("could not note that the Slack thread of %s caught up: %s",
                        incident.incident_id, exc.message)
            return incident

    def _fall_behind(self, incident: Incident, since: datetime | None,
                     missed: Sequence[str], *, releasing: bool = False) -> Incident:
        """Mark that the thread is behind from `since` on (None: it missed nothing), and
        missed the entries `missed`; `releasing`: this invocation held the catch-up, and
        lets it go. The mark on an incident whose parent never made it tells it from one
        whose parent is only held for its action: the first heals, the second must not."""
        if since is None:
            return incident

        def mark(current: Incident) -> Incident | None:
            new = [entry_id for entry_id in missed if entry_id not in current.slack_missed]
            earlier = current.slack_behind is not None and current.slack_behind <= since
            if releasing:
                current.slack_catching_up_until = None
            elif earlier and not new:
                return None
            if not earlier:
                current.slack_behind = since
            current.slack_missed = [*current.slack_missed, *new]
            return current

        try:
            return self.store.update(incident.incident_id, mark, known=incident)
        except FirelineError as exc:  # Slack is a view: its bookkeeping never fails a step
            log.warning("could not note that the Slack thread of %s is behind: %s",
                        incident.incident_id, exc.message)
            return incident

    def _post_parent(self, incident: Incident) -> Shown:
        thread = self.notifier.open(incident)
        return Shown(thread, posted=thread is not None)

    def _held(self) -> list[_Post] | None:
        return getattr(self._local, "held", None)

    def _show(self, incident: Incident, post: Callable[[Incident], Shown],
              at: datetime, entry_ids: tuple[str, ...]) -> Incident:
        held = self._held()
        if held is not None:
            held.append((incident, post, at, entry_ids))
            return incident
        shown = post(incident)
        incident = self._remember(incident, shown.thread)
        return incident if shown.posted else self._fall_behind(incident, at, entry_ids)

    def _post_held(self, held: list[_Post]
                   ) -> tuple[SlackThread | None, datetime | None, tuple[str, ...]]:
        """Post what was held, each as the incident was then, in the thread posted first;
        the thread, when the first message Slack did not take happened, and the entries
        Slack did not take."""
        thread: SlackThread | None = None
        missed_since: datetime | None = None
        missed: list[str] = []
        for incident, post, at, entry_ids in held:
            shown = incident if incident.slack or thread is None else incident.model_copy(
                update={"slack": thread})
            answer = post(shown)
            thread = answer.thread or thread or shown.slack
            if not answer.posted:
                missed_since = missed_since or at
                missed += entry_ids
        return thread, missed_since, tuple(missed)

    def _save_after_raise(self, incident_id: str, thread: SlackThread | None,
                          missed_since: datetime | None, missed: tuple[str, ...]) -> None:
        """What the held posts left to save when no caller holds the incident (the block
        raised): the thread, and whether it is behind."""
        if thread is None and missed_since is None:
            return
        try:
            self._fall_behind(self._remember(self.store.get(incident_id), thread),
                              missed_since, missed)
        except FirelineError as exc:  # the store down too: the next post re-opens
            log.warning("could not save the Slack thread of %s: %s", incident_id, exc.message)

    def _remember(self, incident: Incident, thread: SlackThread | None) -> Incident:
        if thread is None or thread == incident.slack:
            return incident

        def keep(current: Incident) -> Incident | None:
            if current.slack == thread:
                return None
            current.slack = thread
            return current

        return self.store.update(incident.incident_id, keep, known=incident)
