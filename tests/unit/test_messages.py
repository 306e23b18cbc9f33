"""What an incident's thread says: pure, no Slack."""

from __future__ import annotations

from datetime import UTC, datetime

from fireline.incidents import Incident, TimelineEntry
from fireline.messages import (
    HEADER_LIMIT,
    MAX_CHANGES,
    SECTION_LIMIT,
    parent_message,
    reply_message,
    truncate,
)
from tests.support.incidents import make_incident

OPENED = datetime(2026, 1, 1, 3, 4, 5, 678000, tzinfo=UTC)
REASON = "Threshold Crossed: 1 datapoint [12.0 (01/01/26 03:03:00)] was >= the threshold (1.0)."
ALIAS = "arn:aws:lambda:us-east-1:123456789012:function:checkout:live"


def incident(**overrides) -> Incident:
    return make_incident(**{"reason": REASON, "opened_at": datetime(2026, 1, 1, 3, 4, 5, 678000,
                                                                     tzinfo=UTC), **overrides})


def test_parent_shows_severity_alarm_and_every_known_fact():
    message = parent_message(incident())

    assert message.title == "🔥 SEV-2 · checkout-prod-errors"
    assert dict(message.fields) == {
        "Status": "open",
        "Alarm state": "ALARM",
        "Playbook": "lambda-alias-revert (pending)",
        "Incident": "INC-20260101-abc123",
        "Account": "123456789012",
        "Region": "us-east-1",
        "Approval": "auto",
    }
    assert message.lines == [REASON, "Rule: lambda-errors-production-by-name"]
    assert message.context == "opened 2026-01-01T03:04:05.678Z · requested by alarm"
    assert message.text.startswith("🔥 SEV-2 · checkout-prod-errors")
    assert "open" in message.text


def test_parent_leaves_out_what_is_unknown_and_says_none_for_no_playbook():
    message = parent_message(incident(account_id=None, region=None, approval=None,
                                      playbook=None, playbook_state="none", rule=None,
                                      reason=""))

    labels = [label for label, _ in message.fields]
    assert labels == ["Status", "Alarm state", "Playbook", "Incident"]
    assert dict(message.fields)["Playbook"] == "none"
    assert message.lines == []


def test_parent_says_since_when_the_alarm_is_in_its_state():
    flapped_back = datetime(2026, 1, 1, 3, 9, 0, 250000, tzinfo=UTC)

    message = parent_message(incident(alarm_changed_at=flapped_back))

    assert dict(message.fields)["Alarm state"] == "ALARM since 2026-01-01T03:09:00.250Z"


def test_a_manual_runs_parent_shows_no_alarm_state():
    manual = parent_message(incident(alarm_key=None, alarm_name="manual: point-in-time-restore",
                                     requested_by="bob@payments"))

    assert "Alarm state" not in dict(manual.fields)


def test_severity_picks_the_emoji():
    assert parent_message(incident(severity="SEV-1")).title.startswith("🚨 SEV-1")
    assert parent_message(incident(severity="SEV-4")).title.startswith("🔔 SEV-4")


def test_parent_follows_the_incident_status_for_chat_update():
    current = incident(status="failed", playbook_state="failed",
                       error="plan: no earlier good version of checkout")

    message = parent_message(current)

    assert dict(message.fields)["Status"] == "failed"
    assert dict(message.fields)["Playbook"] == "lambda-alias-revert (failed)"
    assert "Error: plan: no earlier good version of checkout" in message.lines
    assert "failed" in message.text


def test_manual_run_shows_its_title_and_requester():
    message = parent_message(incident(alarm_name="manual: lambda-alias-revert",
                                      title="lambda-alias-revert requested by alice",
                                      requested_by="alice", reason=""))

    assert message.lines[0] == "lambda-alias-revert requested by alice"
    assert message.context.endswith("requested by alice")


def test_reply_renders_kind_text_and_each_change_before_to_after():
    entry = TimelineEntry(kind="execute", text="alias live moved from version 3 to version 2",
                          data={"changes": [{"resource": ALIAS, "attribute": "FunctionVersion",
                                             "before": "3", "after": "2"},
                                            {"resource": ALIAS, "attribute": "RoutingConfig",
                                             "before": {"3": 0.1}, "after": None}]})

    message = reply_message(incident(), entry)

    assert message.lines == [
        "*execute* · alias live moved from version 3 to version 2",
        f"{ALIAS} FunctionVersion: 3 → 2",
        f'{ALIAS} RoutingConfig: {{"3": 0.1}} → none',
    ]
    assert message.text == "*execute* · alias live moved from version 3 to version 2"
    assert message.title == ""
    assert message.context == "", "fireline's own steps need no byline"


def test_reply_shows_error_warnings_and_a_human_actor():
    entry = TimelineEntry(kind="failed", actor="alice", text="lambda-alias-revert failed at plan",
                          data={"error": "PreconditionFailed", "warnings": ["alias is weighted"]})

    message = reply_message(incident(), entry)

    assert "error: PreconditionFailed" in message.lines
    assert "warning: alias is weighted" in message.lines
    assert message.context == "by alice"
    assert message.text.endswith("(by alice)")


def test_reply_counts_changes_beyond_the_first_few_and_skips_malformed_ones():
    changes = [{"resource": f"r{i}", "attribute": "a", "before": i, "after": i + 1}
               for i in range(MAX_CHANGES + 3)]
    entry = TimelineEntry(kind="plan", text="many", data={"changes": [*changes, "junk", 7]})

    lines = reply_message(incident(), entry).lines

    assert lines[1] == "r0 a: 0 → 1"
    assert len(lines) == 1 + MAX_CHANGES + 1
    assert lines[-1] == "… and 3 more changes"


def test_reply_ignores_changes_that_are_not_a_list():
    entry = TimelineEntry(kind="plan", text="odd", data={"changes": "not a list"})

    assert reply_message(incident(), entry).lines == ["*plan* · odd"]


def test_long_texts_are_cut_to_slack_limits_and_marked():
    long_name = "x" * 400
    entry = TimelineEntry(kind="plan", text="y" * 5000)

    parent = parent_message(incident(alarm_name=long_name, reason="z" * 5000))
    reply = reply_message(incident(), entry)

    assert len(parent.title) == HEADER_LIMIT
    assert parent.title.endswith("…")
    assert len("\n".join(parent.lines)) <= SECTION_LIMIT
    assert len("\n".join(reply.lines)) == SECTION_LIMIT
    assert reply.lines[-1].endswith("…")
    assert len(reply.text) <= SECTION_LIMIT
    assert all(len(value) <= 300 for _, value in parent.fields)


def test_truncate_keeps_short_text_whole():
    assert truncate("short", 10) == "short"
    assert truncate("exactly10!", 10) == "exactly10!"
    assert truncate("eleven chars", 10) == "eleven ch…"
