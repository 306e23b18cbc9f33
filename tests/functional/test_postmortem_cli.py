"""`fireline incidents show ID --markdown`: the post-mortem draft, through `main`, on moto."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from fireline import aws
from fireline.cli import main
from fireline.incidents import IncidentStore, TimelineEntry
from tests.support.aws import TABLE
from tests.support.incidents import make_incident

OPENED = datetime(2026, 1, 1, 3, 0, tzinfo=UTC)


@pytest.fixture
def cli_env(moto, monkeypatch):
    monkeypatch.setenv("FIRELINE_TABLE", TABLE)
    assert main(["init-table"]) == 0


def test_markdown_draft_lists_every_timeline_entry(cli_env, capsys):
    store = IncidentStore(TABLE, aws.client, lambda: OPENED)
    incident = store.create(make_incident(
        status="mitigated", playbook_state="done", acknowledged_by="alice",
        acknowledged_at=OPENED + timedelta(minutes=4, seconds=12),
        outcome={"summary": "point alias live from version 3 to version 2", "changes": [
            {"resource": "checkout:live", "attribute": "FunctionVersion", "before": "3",
             "after": "2"}]}))
    texts = ["checkout-prod-errors is in ALARM: Errors >= 1",
             "point alias live from version 3 to version 2",
             "alias live now at version 2 | errors back to 0",
             "acknowledged by alice"]
    for minute, text in enumerate(texts):
        store.append(incident.incident_id, TimelineEntry(
            at=OPENED + timedelta(minutes=minute), kind="note", text=text))
    capsys.readouterr()

    assert main(["incidents", "show", incident.incident_id, "--markdown"]) == 0

    out = capsys.readouterr().out
    assert out.startswith(f"# Post-mortem draft: checkout-prod-errors ({incident.incident_id})")
    assert "- **Time to acknowledge:** 4 min 12 s" in out
    assert "| checkout:live | FunctionVersion | 3 | 2 |" in out
    for text in texts:
        assert text.replace("|", "\\|") in out


def test_markdown_and_json_cannot_be_asked_together(capsys):
    with pytest.raises(SystemExit) as refused:
        main(["incidents", "show", "INC-x", "--markdown", "--json"])

    assert refused.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err
