"""A post-mortem draft in Markdown, from an incident and its timeline: pure, no AWS.

The draft states what the record says (who, when, what changed, every timeline entry) and
leaves the judgement (what went well, what went wrong, follow-ups) to the people who were
there. Every value is folded onto one line, and table cells escape `|`, so no recorded text
can break the document's layout.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from fireline.incidents import Incident, TimelineEntry
from fireline.timestamps import iso

NOT_YET = "not yet"
NOBODY = "-"
_CHANGE_HEADER = ["Resource", "Attribute", "Before", "After"]
_TIMELINE_HEADER = ["Time (UTC)", "Actor", "Kind", "Text"]


def postmortem_markdown(incident: Incident, timeline: list[TimelineEntry]) -> str:
    """The draft: title, summary, times, actions, the whole timeline, and blank sections."""
    sections = [
        [f"# Post-mortem draft: {_line(incident.alarm_name)} ({_line(incident.incident_id)})",
         "",
         "_Drafted by Fireline from the incident record. Check it, then fill in the last "
         "sections._"],
        _summary(incident),
        _times(incident),
        _actions(incident),
        _timeline(timeline),
        ["## What went well", "", "## What went wrong", "", "## Follow-ups"],
    ]
    return "\n\n".join("\n".join(lines) for lines in sections) + "\n"


# --- sections ----------------------------------------------------------------------------


def _summary(incident: Incident) -> list[str]:
    facts = [
        ("Severity", incident.severity),
        ("Status", incident.status),
        ("Alarm", incident.alarm_line()),
        ("Reason", incident.reason or NOBODY),
        ("Rule", incident.rule or "none"),
    ]
    if incident.account_id or incident.region:
        facts.append(("Where", " ".join(filter(None, [incident.account_id, incident.region]))))
    lines = ["## Summary", "", *(f"- **{label}:** {_line(value)}" for label, value in facts)]
    if incident.chain:
        lines.append(f"- **Playbooks (a chain of {len(incident.chain)}):**")
        for number, link in enumerate(incident.chain, start=1):
            summary = f": {_line(link.summary)}" if link.summary else ""
            lines.append(f"  {number}. {_line(link.playbook)} ({link.state}){summary}")
    else:
        playbook = (f"{incident.playbook} ({incident.playbook_state})" if incident.playbook
                    else "none")
        lines.append(f"- **Playbook:** {_line(playbook)}")
    people = [
        ("Requested by", incident.requested_by),
        ("Acknowledged by", incident.acknowledged_by),
        ("Rejected by" if incident.rejected_by else "Approved by",
         incident.rejected_by or incident.approved_by),
        ("Resolved by", incident.resolved_by),
    ]
    if incident.undone_by:
        people.append(("Undone by", incident.undone_by))
    lines += [f"- **{label}:** {_line(person or NOBODY)}" for label, person in people]
    if incident.error:
        lines.append(f"- **Error:** {_line(incident.error)}")
    return lines


def _times(incident: Incident) -> list[str]:
    lines = ["## Times", "", f"- **Opened:** {iso(incident.opened_at)}"]
    for label, field in (("acknowledge", "acknowledged_at"), ("mitigate", "mitigated_at"),
                         ("resolve", "resolved_at")):
        lines.append(f"- **Time to {label}:** {_since_opened(incident, field)}")
    if getattr(incident, "escalated_at", None) is not None:
        lines.append(f"- **Escalated after:** {_since_opened(incident, 'escalated_at')}")
    return lines


def _actions(incident: Incident) -> list[str]:
    lines = ["## Actions"]
    recorded = _outcomes(incident)
    if not recorded and not incident.undo_outcome:
        return [*lines, "", "No action was taken: no playbook recorded a change."]
    for heading, outcome in recorded:
        lines += ["", f"### {_line(heading)}", *_outcome(outcome)]
    if incident.undo_outcome:
        undo = incident.undo_outcome
        by = f" by {incident.undone_by}" if incident.undone_by else ""
        at = f" at {iso(incident.undone_at)}" if incident.undone_at else ""
        lines += ["", f"### {_line(f'Undo{by}{at}')}"]
        if undo.get("summary"):
            lines += ["", _line(undo["summary"])]
        for outcome in _dicts(undo.get("outcomes")):
            name = outcome.get("playbook")
            lines += ["", f"#### {_line(name) if name else 'Undone'}", *_outcome(outcome)]
    return lines


def _timeline(timeline: list[TimelineEntry]) -> list[str]:
    lines = ["## Timeline", ""]
    if not timeline:
        return [*lines, "No timeline entries were recorded."]
    # sorted() is stable: entries recorded at the same moment keep the order given.
    rows = [[iso(entry.at), entry.actor, entry.kind, entry.text]
            for entry in sorted(timeline, key=lambda entry: entry.at)]
    return [*lines, *_table(_TIMELINE_HEADER, rows)]


# --- pieces ------------------------------------------------------------------------------


def _outcomes(incident: Incident) -> list[tuple[str, dict[str, Any]]]:
    """(heading, outcome) of every playbook that recorded one, in the order they ran.

    A chain keeps each link's outcome on the link; the link running now has its outcome on
    the incident until the link is settled. Without a chain the incident's own outcome is it.
    """
    if not incident.chain:
        if incident.outcome is None:
            return []
        return [(incident.playbook or str(incident.outcome.get("playbook") or "Playbook"),
                 incident.outcome)]
    found = []
    for index, link in enumerate(incident.chain):
        outcome = link.outcome
        if outcome is None and index == incident.chain_index and link.state == "pending":
            outcome = incident.outcome
        if outcome is not None:
            found.append((f"{index + 1}. {link.playbook} ({link.state})", outcome))
    return found


def _outcome(outcome: dict[str, Any]) -> list[str]:
    lines = []
    if outcome.get("summary"):
        lines += ["", _line(outcome["summary"])]
    changes = _dicts(outcome.get("changes"))
    if not changes:
        return [*lines, "", "No changes were recorded."]
    rows = [[c.get("resource"), c.get("attribute"), c.get("before"), c.get("after")]
            for c in changes]
    return [*lines, "", *_table(_CHANGE_HEADER, rows)]


def _since_opened(incident: Incident, field: str) -> str:
    moment = getattr(incident, field, None)
    if not isinstance(moment, datetime):
        return NOT_YET
    took = human_duration((moment - incident.opened_at).total_seconds())
    return f"{took} ({iso(moment)})"


def human_duration(seconds: float) -> str:
    """`seconds` as a person says it: "12 s", "4 min 12 s", "2 h 5 min", "1 d 3 h 0 min"."""
    total = round(seconds)
    if total < 0:
        return "-" + human_duration(-total)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h {minutes} min"
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min {secs} s"
    return f"{secs} s"


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    return [
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *("| " + " | ".join(_cell(value) for value in row) + " |" for row in rows),
    ]


def _cell(value: Any) -> str:
    """A table cell: one line, backslashes and pipes escaped, never empty."""
    text = _line(value).replace("\\", "\\\\").replace("|", "\\|")
    return text or " "


def _line(value: Any) -> str:
    """Any value on one line: text as it is, JSON values as compact JSON, None as "none"."""
    if value is None:
        text = "none"
    elif isinstance(value, str):
        text = value
    elif isinstance(value, bool | dict | list | tuple):
        text = json.dumps(value, separators=(",", ":"), default=str, ensure_ascii=False)
    elif isinstance(value, datetime):
        text = iso(value)
    else:
        text = str(value)
    return " ".join(text.splitlines()).strip()


def _dicts(value: Any) -> list[dict[str, Any]]:
    # Outcomes come back from the store as JSON: be lenient about their shape.
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []
