"""What Fireline shows about an incident, apart from where it is shown.

Slack renders a `Message` as Block Kit, the console as text; both show the same facts, so
a local run reads like the Slack thread. Nothing from settings is ever an input here, which
is what keeps tokens out of every message.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from fireline.incidents import Incident, TimelineEntry
from fireline.timestamps import iso

# Slack's own limits: a header's plain text, a section's text, a section field's text.
HEADER_LIMIT = 150
SECTION_LIMIT = 3000
FIELD_LIMIT = 2000
# Fields are facts at a glance; anything longer belongs in the lines.
FIELD_VALUE_LIMIT = 300
# A reply is read on a phone mid-incident: show the first few changes, count the rest.
MAX_CHANGES = 10
MAX_WARNINGS = 5
MAX_DETAIL_LINES = 40  # all the context findings share one reply

SEVERITY_EMOJI = {"SEV-1": "🚨", "SEV-2": "🔥", "SEV-3": "⚠️", "SEV-4": "🔔"}
ELLIPSIS = "…"


class Button(BaseModel):
    """A button under a message; `action_id` tells the Slack handler what was pressed."""

    model_config = ConfigDict(frozen=True)

    label: str
    action_id: str
    value: str
    style: str | None = None  # "primary" | "danger"
    # What a person without buttons types instead (the console shows it).
    command: str = ""


# Button action ids: the Slack handler (slash commands and buttons) answers these.
APPROVE_ACTION = "fireline_approve"
REJECT_ACTION = "fireline_reject"
ACK_ACTION = "fireline_ack"
RESOLVE_ACTION = "fireline_resolve"
UNDO_ACTION = "fireline_undo"
# What each button asks for, as the slash command's verb.
BUTTON_VERBS = {APPROVE_ACTION: "approve", REJECT_ACTION: "reject", ACK_ACTION: "ack",
                RESOLVE_ACTION: "resolve", UNDO_ACTION: "undo"}


class Message(BaseModel):
    """One chat message: a title, label/value fields, body lines, small print, buttons."""

    model_config = ConfigDict(frozen=True)

    text: str  # the plain fallback (notifications, screen readers, clients without blocks)
    title: str = ""
    fields: list[tuple[str, str]] = Field(default_factory=list)
    lines: list[str] = Field(default_factory=list)
    context: str = ""
    buttons: list[Button] = Field(default_factory=list)


def parent_message(incident: Incident) -> Message:
    """The thread's first message: the incident as it is now (chat.update keeps it current)."""
    emoji = SEVERITY_EMOJI.get(incident.severity, "🔥")
    title = truncate(f"{emoji} {incident.severity} · {incident.alarm_name}", HEADER_LIMIT)
    playbook = (f"{incident.playbook} ({incident.playbook_state})" if incident.playbook
                else "none")
    if len(incident.chain) > 1:
        playbook = (" → ".join(link.playbook for link in incident.chain)
                    + f" (at {incident.chain_index + 1} of {len(incident.chain)}: {playbook})")
    fields: list[tuple[str, str]] = [("Status", incident.status)]
    alarm_state = incident.alarm_state_since()
    if alarm_state:  # a manual run has no alarm to show the state of
        fields.append(("Alarm state", alarm_state))
    fields += [("Playbook", playbook), ("Incident", incident.incident_id)]
    if incident.account_id:
        fields.append(("Account", incident.account_id))
    if incident.region:
        fields.append(("Region", incident.region))
    if incident.approval:
        fields.append(("Approval", _approval_state(incident)))

    lines = []
    if incident.title and incident.title != incident.alarm_name:
        lines.append(incident.title)
    if incident.reason:
        lines.append(incident.reason)
    if incident.rule:
        lines.append(f"Rule: {incident.rule}")
    if incident.error:
        lines.append(f"Error: {incident.error}")

    return Message(
        text=truncate(f"{title} · {incident.status} · playbook {playbook}", SECTION_LIMIT),
        title=title,
        fields=[(label, truncate(value, FIELD_VALUE_LIMIT)) for label, value in fields],
        lines=fit_lines(lines, SECTION_LIMIT),
        context=truncate(
            f"opened {iso(incident.opened_at)} · requested by {incident.requested_by}",
            SECTION_LIMIT),
        buttons=_parent_buttons(incident),
    )


def _parent_buttons(incident: Incident) -> list[Button]:
    """What a responder can do next, from the thread's first message."""
    incident_id = incident.incident_id
    if incident.status == "resolved":
        return []
    buttons = []
    if not incident.acknowledged_by:
        buttons.append(Button(label="Acknowledge", action_id=ACK_ACTION, value=incident_id,
                              command=f"/fireline ack {incident_id}"))
    if incident.playbook_state == "awaiting-approval":
        buttons += _approval_buttons(incident)
    if incident.outcome is not None and incident.undone_at is None:
        buttons.append(Button(label="Undo", action_id=UNDO_ACTION, value=incident_id,
                              command=f"fireline undo {incident_id}"))
    buttons.append(Button(label="Resolve", action_id=RESOLVE_ACTION, value=incident_id,
                          command=f"/fireline resolve {incident_id}"))
    return buttons


def reply_message(incident: Incident, entry: TimelineEntry) -> Message:
    """One timeline entry as a thread reply: what happened, what changed, what failed."""
    headline = f"*{entry.kind}* · {entry.text}"
    lines = [headline, *_detail_lines(entry.data.get("lines")),
             *_change_lines(entry.data.get("changes")),
             *_warning_lines(entry.data.get("warnings"))]
    if entry.data.get("error"):
        lines.append(f"error: {_show(entry.data['error'])}")
    context = "" if entry.actor == "fireline" else f"by {entry.actor}"
    text = f"{headline} ({context})" if context else headline
    return Message(
        text=truncate(text, SECTION_LIMIT),
        lines=fit_lines(lines, SECTION_LIMIT),
        context=truncate(context, SECTION_LIMIT),
        buttons=_approval_buttons(incident) if entry.data.get("approve") else [],
    )


def _approval_buttons(incident: Incident) -> list[Button]:
    incident_id = incident.incident_id
    return [
        Button(label="Approve", action_id=APPROVE_ACTION, value=incident_id, style="primary",
               command=f"fireline approve {incident_id}"),
        Button(label="Reject", action_id=REJECT_ACTION, value=incident_id, style="danger",
               command=f"fireline reject {incident_id}"),
    ]


def _approval_state(incident: Incident) -> str:
    if incident.approved_by:
        return f"approved by {incident.approved_by}"
    if incident.rejected_by:
        return f"rejected by {incident.rejected_by}"
    if incident.playbook_state == "awaiting-approval":
        return f"waiting (requested by {incident.requested_by})"
    return incident.approval or ""


def truncate(text: str, limit: int) -> str:
    """`text` cut to `limit` characters, the cut marked, so Slack never refuses the block."""
    if len(text) <= limit:
        return text
    return text[: limit - len(ELLIPSIS)] + ELLIPSIS


def fit_lines(lines: list[str], limit: int) -> list[str]:
    """Lines whose joined text (newline-separated, as a section shows them) fits `limit`."""
    return truncate("\n".join(lines), limit).split("\n") if lines else []


def _detail_lines(details: Any) -> list[str]:
    """Lines a finding brings along (what changed, log evidence), as they were written."""
    if not isinstance(details, list):
        return []
    shown = [_show(line) for line in details[:MAX_DETAIL_LINES]]
    if len(details) > MAX_DETAIL_LINES:
        shown.append(f"{ELLIPSIS} and {len(details) - MAX_DETAIL_LINES} more lines")
    return shown


def _change_lines(changes: Any) -> list[str]:
    # Timeline data comes back from the store as JSON: be lenient about its shape.
    if not isinstance(changes, list):
        return []
    shown = [c for c in changes if isinstance(c, Mapping)]
    lines = [
        f"{_show(c.get('resource'))} {_show(c.get('attribute'))}: "
        f"{_show(c.get('before'))} → {_show(c.get('after'))}"
        for c in shown[:MAX_CHANGES]
    ]
    if len(shown) > MAX_CHANGES:
        lines.append(f"{ELLIPSIS} and {len(shown) - MAX_CHANGES} more changes")
    return lines


def _warning_lines(warnings: Any) -> list[str]:
    if not isinstance(warnings, list):
        return []
    return [f"warning: {_show(w)}" for w in warnings[:MAX_WARNINGS]]


def _show(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, str):
        return value
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, default=str, ensure_ascii=False)
    return str(value)
