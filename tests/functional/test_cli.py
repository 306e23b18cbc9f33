"""The `fireline` command, called as a user would (through `main`), against moto."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fireline import aws
from fireline.cli import main
from fireline.local.aws_server import local_aws
from fireline.local.lambda_fixture import deploy_versions
from fireline.local.payloads import sns_lambda_errors_event
from tests.support.aws import TABLE
from tests.support.events import CORPUS, requires_corpus

ALARM_FILES = sorted(CORPUS.glob("cloudwatch_*/*.json")) if CORPUS.is_dir() else []


@pytest.fixture
def cli_env(moto, monkeypatch):
    monkeypatch.setenv("FIRELINE_TABLE", TABLE)
    assert main(["init-table"]) == 0


def _event_file(tmp_path: Path, **kwargs) -> Path:
    path = tmp_path / "alarm.json"
    path.write_text(json.dumps(sns_lambda_errors_event(**kwargs)))
    return path


def test_triage_prints_the_decision(aws_env, tmp_path, capsys):
    path = _event_file(tmp_path, function_name="checkout", alarm_name="checkout-prod-errors")

    assert main(["triage", str(path)]) == 0

    out = capsys.readouterr().out
    assert "checkout-prod-errors [ALARM] -> SEV-2, playbook lambda-alias-revert (auto)" in out
    assert "params: function_name=checkout" in out


def test_triage_json_has_the_documented_fields(aws_env, tmp_path, capsys):
    path = _event_file(tmp_path, function_name="checkout", alarm_name="checkout-prod-errors")

    assert main(["triage", str(path), "--json"]) == 0

    [row] = json.loads(capsys.readouterr().out)
    assert set(row) == {"alarm", "state", "severity", "rule", "playbook", "params", "approval",
                        "reasons"}
    assert row["rule"] == "lambda-errors-production-by-name"


@pytest.mark.parametrize(("content", "reason"), [
    ('{"hello": "world"}', "not a CloudWatch alarm delivery"),
    ("this is not json", "not JSON"),
])
def test_triage_refuses_an_unrecognised_file_in_one_line(aws_env, tmp_path, capsys, content,
                                                          reason):
    path = tmp_path / "weird.json"
    path.write_text(content)

    code = main(["triage", str(path)])

    err = capsys.readouterr().err
    assert code != 0
    assert err.startswith("fireline: error:")
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err
    assert reason in err


@requires_corpus
@pytest.mark.parametrize("path", ALARM_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_triage_prints_a_decision_for_every_corpus_alarm_file(aws_env, capsys, path):
    assert main(["triage", str(path), "--json"]) == 0

    rows = json.loads(capsys.readouterr().out or "[]")
    for row in rows:
        assert row["severity"] in {"SEV-1", "SEV-2", "SEV-3", "SEV-4"}
        assert row["reasons"]


def test_run_dry_run_prints_the_plan_and_changes_nothing(moto, capsys):
    deploy_versions(aws.client, "checkout", versions=3)

    assert main(["run", "lambda-alias-revert", "-p", "function_name=checkout",
                 "--dry-run"]) == 0

    out = capsys.readouterr().out
    assert "Plan: point alias live from version 3 to version 2" in out
    assert "Dry run: nothing changed." in out
    assert aws.client("lambda").get_alias(FunctionName="checkout",
                                          Name="live")["FunctionVersion"] == "3"


def test_run_without_yes_and_no_terminal_refuses(cli_env, capsys, monkeypatch):
    deploy_versions(aws.client, "checkout", versions=3)
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)

    code = main(["run", "lambda-alias-revert", "-p", "function_name=checkout"])

    assert code != 0
    assert "--yes" in capsys.readouterr().err
    assert aws.client("lambda").get_alias(FunctionName="checkout",
                                          Name="live")["FunctionVersion"] == "3"


def test_run_yes_json_then_incidents_list_and_show(cli_env, capsys):
    deploy_versions(aws.client, "checkout", versions=3)

    assert main(["run", "lambda-alias-revert", "-p", "function_name=checkout", "-p",
                 "alias=live", "--yes", "--json", "--as", "alice"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["status"] == "mitigated"

    assert main(["incidents", "list", "--json"]) == 0
    [listed] = json.loads(capsys.readouterr().out)
    assert listed["incident_id"] == result["incident_id"]
    assert {"incident_id", "alarm", "severity", "status", "playbook"} <= set(listed)

    assert main(["incidents", "show", result["incident_id"], "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["requested_by"] == "alice"
    assert [e["kind"] for e in shown["timeline"]] == ["opened", "plan", "execute", "verify"]

    assert main(["incidents", "show", result["incident_id"]]) == 0
    assert "  alarm:    none (run by hand)\n" in capsys.readouterr().out, \
        "a manual run has no alarm, and no alarm state"


def test_bad_param_syntax_and_unknown_incident(cli_env, capsys):
    assert main(["run", "lambda-alias-revert", "-p", "function_name", "--dry-run"]) != 0
    assert "is not KEY=VALUE" in capsys.readouterr().err
    assert main(["incidents", "show", "INC-nope"]) != 0
    assert "no incident INC-nope" in capsys.readouterr().err


def test_replay_runs_the_alarm_handler(cli_env, tmp_path, capsys):
    deploy_versions(aws.client, "checkout", versions=3)
    path = _event_file(tmp_path, function_name="checkout", alarm_name="checkout-prod-errors")

    assert main(["replay", str(path)]) == 0

    result = json.loads(capsys.readouterr().out)
    assert result["incidents"][0]["status"] == "mitigating"  # reverted; watching for OK
    assert aws.client("lambda").get_alias(FunctionName="checkout",
                                          Name="live")["FunctionVersion"] == "2"

    assert main(["incidents", "show", result["incidents"][0]["incident_id"]]) == 0
    changed_at = json.loads(path.read_text())["Records"][0]["Sns"]["Message"]
    changed_at = json.loads(changed_at)["StateChangeTime"]
    shown = capsys.readouterr().out
    assert "  alarm:    checkout-prod-errors (ALARM since " in shown
    assert changed_at[:19] in shown, "since the state change the incident was told of"


def test_missing_table_is_explained(moto, monkeypatch, capsys):
    monkeypatch.setenv("FIRELINE_TABLE", "no-such-table")

    assert main(["incidents", "list"]) != 0
    assert "fireline init-table" in capsys.readouterr().err


def test_cli_process_honours_aws_endpoint_url(aws_env, monkeypatch):
    """A separate `fireline` process finds AWS where AWS_ENDPOINT_URL says: moto's server."""
    monkeypatch.setenv("FIRELINE_TABLE", TABLE)
    with local_aws():
        deploy_versions(aws.client, "checkout", versions=3)

        def fireline(*args: str) -> subprocess.CompletedProcess:
            return subprocess.run([sys.executable, "-m", "fireline.cli", *args],
                                  capture_output=True, text=True, timeout=120, env=os.environ)

        assert fireline("init-table").returncode == 0
        planned = fireline("run", "lambda-alias-revert", "-p", "function_name=checkout",
                           "--dry-run", "--json")
        done = fireline("run", "lambda-alias-revert", "-p", "function_name=checkout",
                        "--yes", "--json")
        listed = fireline("incidents", "list", "--json")

        assert json.loads(planned.stdout)["plan"]["changes"][0]["after"] == "2"
        assert json.loads(done.stdout)["status"] == "mitigated", done.stderr
        assert [i["status"] for i in json.loads(listed.stdout)] == ["mitigated"]
        alias = aws.client("lambda").get_alias(FunctionName="checkout", Name="live")
        assert alias["FunctionVersion"] == "2"


def test_triage_with_a_broken_runbook_fails_naming_it(aws_env, tmp_path, capsys, monkeypatch):
    broken = Path(__file__).parents[1] / "unit" / "runbooks" / "bad_severity.yaml"
    monkeypatch.setenv("FIRELINE_RUNBOOK", str(broken))
    path = _event_file(tmp_path, function_name="checkout")

    assert main(["triage", str(path)]) != 0
    assert "rule 'loud-rule' (rules[1]), field severity" in capsys.readouterr().err


def test_help_names_every_command(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--help"])

    out = capsys.readouterr().out
    assert done.value.code == 0
    for command in ("triage", "run", "replay", "incidents", "init-table", "demo"):
        assert command in out
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    assert "--dry-run" in capsys.readouterr().out
