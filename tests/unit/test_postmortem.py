"""The post-mortem draft: pure, from an incident and its timeline."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from fireline.incidents import ChainLink, Incident, TimelineEntry
from fireline.postmortem import human_duration, postmortem_markdown
from tests.support.incidents import make_incident

OPENED = datetime(2026, 1, 1, 3, 0, tzinfo=UTC)
ALIAS = "arn:aws:lambda:us-east-1:123456789012:function:checkout:live"


def at(seconds: float) -> datetime:
    return OPENED + timedelta(seconds=seconds)


def outcome(summary: str, *changes: tuple) -> dict:
    return {"playbook": "p", "summary": summary, "before": {}, "after": {},
            "changes": [dict(zip(("resource", "attribute", "before", "after"), change,
                                 strict=True)) for change in changes]}


def timeline() -> list[TimelineEntry]:
    return [
        TimelineEntry(at=at(0), actor="alarm", kind="opened",
                      text="checkout-prod-errors is in ALARM: Errors >= 1"),
        TimelineEntry(at=at(5), kind="plan", text="point alias live from version 3 to 2"),
        TimelineEntry(at=at(9), kind="execute", text="alias live now at version 2"),
        TimelineEntry(at=at(252), actor="alice", kind="ack", text="acknowledged by alice"),
        TimelineEntry(at=at(600), actor="bob", kind="resolve", text="resolved by bob"),
    ]


def section(markdown: str, title: str) -> str:
    """The text of one `## title` section, up to the next one."""
    _, _, rest = markdown.partition(f"\n## {title}\n")
    assert rest, f"no section {title!r}"
    return rest.split("\n## ", 1)[0]


def test_title_summary_and_the_sections_for_humans():
    incident = make_incident(status="mitigated", playbook_state="done", requested_by="alarm",
                             acknowledged_by="alice", approved_by="carol", resolved_by="bob")

    markdown = postmortem_markdown(incident, timeline())

    assert markdown.startswith(
        "# Post-mortem draft: checkout-prod-errors (INC-20260101-abc123)\n")
    summary = section(markdown, "Summary")
    for line in ("- **Severity:** SEV-2", "- **Status:** mitigated",
                 "- **Alarm:** checkout-prod-errors (ALARM)",
                 "- **Reason:** Threshold Crossed: Errors >= 1 <for 1 datapoint>",
                 "- **Rule:** lambda-errors-production-by-name",
                 "- **Playbook:** lambda-alias-revert (done)",
                 "- **Requested by:** alarm", "- **Acknowledged by:** alice",
                 "- **Approved by:** carol", "- **Resolved by:** bob"):
        assert line in summary.splitlines()
    headings = [line for line in markdown.splitlines() if line.startswith("## ")]
    assert headings[-3:] == ["## What went well", "## What went wrong", "## Follow-ups"]


def test_the_alarm_line_says_since_when_and_a_manual_run_has_none():
    changed = datetime(2026, 1, 1, 2, 59, 30, 250000, tzinfo=UTC)
    by_alarm = make_incident(alarm_state="OK", alarm_changed_at=changed)
    by_hand = make_incident(alarm_key=None, alarm_name="manual: lambda-alias-revert")

    assert "- **Alarm:** checkout-prod-errors (OK since 2026-01-01T02:59:30.250Z)" in (
        section(postmortem_markdown(by_alarm, timeline()), "Summary").splitlines())
    assert "- **Alarm:** none (run by hand)" in (
        section(postmortem_markdown(by_hand, timeline()), "Summary").splitlines())


def test_every_timeline_entry_appears_in_order():
    entries = timeline()
    # Given out of order: the draft orders them by time.
    markdown = postmortem_markdown(make_incident(), [entries[3], *entries[:3], entries[4]])

    rows = [line for line in section(markdown, "Timeline").splitlines()
            if line.startswith("| 2026")]
    assert len(rows) == len(entries)
    for row, entry in zip(rows, entries, strict=True):
        assert row == (f"| {entry.at:%Y-%m-%dT%H:%M:%S}.000Z | {entry.actor} | {entry.kind} | "
                       f"{entry.text} |")


def test_no_timeline_says_so():
    assert "No timeline entries were recorded." in postmortem_markdown(make_incident(), [])


def test_times_from_opening_and_not_yet_for_what_has_not_happened():
    incident = make_incident(acknowledged_at=at(252), resolved_at=at(3 * 3600 + 5 * 60 + 1))

    times = section(postmortem_markdown(incident, []), "Times")

    assert "- **Opened:** 2026-01-01T03:00:00.000Z" in times
    assert "- **Time to acknowledge:** 4 min 12 s (2026-01-01T03:04:12.000Z)" in times
    # The incident model may not know mitigated_at yet; either way it was never set here.
    assert "- **Time to mitigate:** not yet" in times
    assert "- **Time to resolve:** 3 h 5 min (2026-01-01T06:05:01.000Z)" in times


def test_time_to_mitigate_once_the_incident_records_it():
    incident = make_incident()
    if "mitigated_at" not in Incident.model_fields:
        pytest.skip("Incident has no mitigated_at yet")
    incident = incident.model_copy(update={"mitigated_at": at(75)})

    assert "- **Time to mitigate:** 1 min 15 s" in postmortem_markdown(incident, [])


@pytest.mark.parametrize(("seconds", "said"), [
    (0, "0 s"), (0.4, "0 s"), (12, "12 s"), (60, "1 min 0 s"), (252, "4 min 12 s"),
    (3600, "1 h 0 min"), (2 * 86400 + 3 * 3600 + 59, "2 d 3 h 0 min"), (-5, "-5 s"),
])
def test_human_duration(seconds, said):
    assert human_duration(seconds) == said


def test_an_incident_without_outcome_says_no_action_was_taken():
    actions = section(postmortem_markdown(make_incident(playbook=None), []), "Actions")

    assert "No action was taken" in actions
    assert "| Resource |" not in actions


def test_the_outcome_changes_are_a_table():
    incident = make_incident(outcome=outcome(
        "point alias live from version 3 to version 2", (ALIAS, "FunctionVersion", "3", "2")))

    actions = section(postmortem_markdown(incident, []), "Actions")

    assert "### lambda-alias-revert" in actions
    assert "point alias live from version 3 to version 2" in actions
    assert "| Resource | Attribute | Before | After |" in actions
    assert f"| {ALIAS} | FunctionVersion | 3 | 2 |" in actions


def test_a_chain_lists_each_link_and_each_link_s_actions():
    chain = [
        ChainLink(playbook="lambda-alias-revert", state="done", summary="alias back to 2",
                  outcome=outcome("alias back to 2", (ALIAS, "FunctionVersion", "3", "2"))),
        ChainLink(playbook="cloudfront-invalidate", state="failed", summary="timed out",
                  outcome=outcome("invalidated /*", ("dist/E1", "invalidation", None, "I2"))),
        ChainLink(playbook="s3-static-rollback", state="not-run"),
    ]
    incident = make_incident(chain=chain, chain_index=1, playbook="cloudfront-invalidate",
                             playbook_state="failed", status="failed", outcome=chain[1].outcome)

    markdown = postmortem_markdown(incident, [])

    summary = section(markdown, "Summary")
    assert "- **Playbooks (a chain of 3):**" in summary
    assert "  1. lambda-alias-revert (done): alias back to 2" in summary
    assert "  2. cloudfront-invalidate (failed): timed out" in summary
    assert "  3. s3-static-rollback (not-run)" in summary
    actions = section(markdown, "Actions")
    assert "### 1. lambda-alias-revert (done)" in actions
    assert "### 2. cloudfront-invalidate (failed)" in actions
    assert f"| {ALIAS} | FunctionVersion | 3 | 2 |" in actions
    assert "| dist/E1 | invalidation | none | I2 |" in actions
    # The failed link's outcome is on the incident too: listed once, not twice.
    assert actions.count("dist/E1") == 1
    assert "s3-static-rollback" not in actions


def test_the_running_link_s_outcome_is_read_from_the_incident():
    chain = [ChainLink(playbook="lambda-alias-revert", state="done",
                       outcome=outcome("first", ("fn", "FunctionVersion", "3", "2"))),
             ChainLink(playbook="cloudfront-invalidate")]
    incident = make_incident(chain=chain, chain_index=1, playbook="cloudfront-invalidate",
                             playbook_state="running",
                             outcome=outcome("second", ("dist/E1", "invalidation", None, "I2")))

    actions = section(postmortem_markdown(incident, []), "Actions")

    assert "### 2. cloudfront-invalidate (pending)" in actions
    assert "| dist/E1 | invalidation | none | I2 |" in actions


def test_an_undo_is_listed_with_its_own_changes():
    incident = make_incident(
        outcome=outcome("alias to 2", (ALIAS, "FunctionVersion", "3", "2")),
        undone_by="alice", undone_at=at(900),
        undo_outcome={"summary": "alias back to 3", "outcomes": [
            {**outcome("alias back to 3", (ALIAS, "FunctionVersion", "2", "3")),
             "playbook": "lambda-alias-revert"}]})

    markdown = postmortem_markdown(incident, [])

    actions = section(markdown, "Actions")
    assert "### Undo by alice at 2026-01-01T03:15:00.000Z" in actions
    assert "#### lambda-alias-revert" in actions
    assert f"| {ALIAS} | FunctionVersion | 2 | 3 |" in actions
    assert "- **Undone by:** alice" in section(markdown, "Summary")


def test_an_outcome_without_changes_says_so():
    incident = make_incident(outcome=outcome("nothing to do: alias already at 2"))

    actions = section(postmortem_markdown(incident, []), "Actions")

    assert "nothing to do: alias already at 2" in actions
    assert "No changes were recorded." in actions


def test_pipes_newlines_and_json_values_cannot_break_a_table():
    incident = make_incident(outcome=outcome(
        "changed\nthe environment",
        ("fn|checkout", "Environment", {"A": "x|y", "B": ["1", 2]}, "line one\nline two"),
        ("fn", "Flag", False, "back\\slash"),
    ))
    entries = [TimelineEntry(at=OPENED, actor="a|b", kind="note",
                             text="first line\r\nsecond | line\n")]

    markdown = postmortem_markdown(incident, entries)

    actions = section(markdown, "Actions")
    assert "changed the environment" in actions
    assert ('| fn\\|checkout | Environment | {"A":"x\\|y","B":["1",2]} | line one line two |'
            in actions)
    assert "| fn | Flag | false | back\\\\slash |" in actions
    row = "| 2026-01-01T03:00:00.000Z | a\\|b | note | first line second \\| line |"
    assert row in section(markdown, "Timeline").splitlines()
    for line in markdown.splitlines():
        if line.startswith("|"):
            # Every row has exactly its four cells: five unescaped pipes.
            assert line.replace("\\\\", "").replace("\\|", "").count("|") == 5, line


def test_multi_line_values_stay_on_one_line_outside_tables_too():
    incident = make_incident(alarm_name="checkout\nerrors", reason="line one\nline two",
                             error="boom\nbang")

    markdown = postmortem_markdown(incident, [])

    assert markdown.splitlines()[0] == (
        "# Post-mortem draft: checkout errors (INC-20260101-abc123)")
    assert "- **Reason:** line one line two" in markdown
    assert "- **Error:** boom bang" in markdown


def test_an_escalation_shows_when_it_happened():
    if "escalated_at" not in Incident.model_fields:
        pytest.skip("Incident has no escalated_at yet")
    incident = make_incident().model_copy(update={"escalated_at": at(1800)})

    assert "- **Escalated after:** 30 min 0 s" in section(postmortem_markdown(incident, []),
                                                          "Times")
