"""A point-in-time restore run through Fireline's doors (app, CLI): approval by a second
person, in-process steps with waits, a crash between steps resumed, undo. moto as AWS, the
local Slack server as Slack."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from fireline import aws
from fireline.app import Fireline, RunRequest
from fireline.cli import main
from fireline.config import Settings
from fireline.errors import ApprovalNotPending, NotReversible, SelfApprovalRefused
from fireline.local.database_fixture import create_pitr_table
from fireline.local.lambda_fixture import deploy_versions
from tests.support.aws import TABLE
from tests.support.runs import Clock, Crash

SOURCE = "orders"
FUNCTION = "orders-api"


class CountingClients:
    """aws.client, with DynamoDB restore calls counted, and optionally a crash right after
    the first one returns; `creating_polls` makes the restored table read as CREATING for
    that many describe calls (moto makes it ACTIVE at once, so a wait is never seen)."""

    def __init__(self, *, crash_after_restore: bool = False, creating_polls: int = 0) -> None:
        self.restores = 0
        self.crash_after_restore = crash_after_restore
        self.creating_polls = creating_polls

    def __call__(self, service: str, **kwargs: Any) -> Any:
        client = aws.client(service, **kwargs)
        return _DynamoDB(client, self) if service == "dynamodb" else client


class _DynamoDB:
    def __init__(self, client: Any, counter: CountingClients) -> None:
        self._client, self._counter = client, counter

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def restore_table_to_point_in_time(self, **kwargs: Any) -> Any:
        answer = self._client.restore_table_to_point_in_time(**kwargs)
        self._counter.restores += 1
        if self._counter.crash_after_restore:
            self._counter.crash_after_restore = False
            raise Crash
        return answer

    def describe_table(self, **kwargs: Any) -> Any:
        answer = self._client.describe_table(**kwargs)
        if "-restored-" in kwargs.get("TableName", "") and self._counter.creating_polls:
            self._counter.creating_polls -= 1
            answer["Table"]["TableStatus"] = "CREATING"
        return answer


@pytest.fixture
def world(moto) -> dict[str, Any]:
    table = create_pitr_table(aws.client, SOURCE, ttl_attribute="expires_at",
                              tags={"team": "payments"},
                              items=[{"pk": f"order-{n}", "total": n} for n in range(3)])
    deploy_versions(aws.client, FUNCTION, versions=1, alias="live",
                    environment={"TABLE_NAME": SOURCE, "LOG_LEVEL": "INFO"})
    return table


def _app(settings: Settings, clock: Clock, clients: Any = aws.client, **overrides: Any):
    app = Fireline(settings.model_copy(update=overrides), clients=clients, clock=clock,
                   sleep=clock.sleep)
    app.store.create_table()
    return app


def _request(world: dict[str, Any], **params: Any) -> RunRequest:
    return RunRequest(playbook="point-in-time-restore", requested_by="bob", params={
        "engine": "dynamodb", "source": SOURCE, "restore_to": world["latest"].isoformat(),
        "cutover": f"{FUNCTION}:TABLE_NAME", "alias": "live", **params})


def _env(qualifier: str = "live") -> dict[str, str]:
    return aws.client("lambda").get_function_configuration(
        FunctionName=FUNCTION, Qualifier=qualifier)["Environment"]["Variables"]


def _tables() -> list[str]:
    return sorted(aws.client("dynamodb").list_tables()["TableNames"])


def test_a_restore_waits_for_a_second_person_then_runs_to_done(world, settings, local_slack):
    app = _app(settings, Clock())

    held = app.run(_request(world))

    assert held.status == "awaiting-approval"
    assert _tables() == sorted([SOURCE, TABLE])  # nothing created before the approval
    assert _env()["TABLE_NAME"] == SOURCE
    with pytest.raises(SelfApprovalRefused, match="bob requested"):
        app.approve(held.incident_id, "bob")
    with pytest.raises(SelfApprovalRefused):
        app.approve(held.incident_id, "alarm")  # not a person either
    assert app.store.get(held.incident_id).playbook_state == "awaiting-approval"

    done = app.approve(held.incident_id, "alice")

    assert (done.status, done.playbook_state, done.approved_by) == ("mitigated", "done", "alice")
    target = done.outcome["after"]["target"]
    assert target.startswith(f"{SOURCE}-restored-")
    assert _env() == {"TABLE_NAME": target, "LOG_LEVEL": "INFO"}
    kinds = [entry.kind for entry in app.store.timeline(done.incident_id)]
    assert kinds == ["opened", "plan", "approval", "approved", "step", "step", "step", "step",
                     "execute", "verify"]
    # The approval post in the thread carries the buttons the Slack handler answers.
    [approval] = [c.params for c in local_slack.calls_to("chat.postMessage")
                  if "approval required" in str(c.params.get("text"))]
    actions = [b for b in approval["blocks"] if b["type"] == "actions"]
    assert [e["action_id"] for e in actions[0]["elements"]] == ["fireline_approve",
                                                              "fireline_reject"]
    assert {e["value"] for e in actions[0]["elements"]} == {done.incident_id}


def test_a_rejected_restore_changes_nothing_and_cannot_be_approved_later(world, settings):
    app = _app(settings, Clock())
    held = app.run(_request(world))

    rejected = app.reject(held.incident_id, "alice", note="restoring by hand")

    assert (rejected.playbook_state, rejected.rejected_by) == ("rejected", "alice")
    assert _tables() == sorted([SOURCE, TABLE])
    with pytest.raises(ApprovalNotPending, match="not waiting for approval"):
        app.approve(held.incident_id, "carol")
    [entry] = [e for e in app.store.timeline(held.incident_id) if e.kind == "rejected"]
    assert entry.actor == "alice" and "restoring by hand" in entry.text


def test_a_crash_after_the_restore_call_resumes_without_a_second_restore(world, settings):
    clock = Clock()
    crashing = CountingClients(crash_after_restore=True)
    app = _app(settings, clock, clients=crashing)
    held = app.run(_request(world))

    with pytest.raises(Crash):
        app.approve(held.incident_id, "alice")

    stalled = app.store.get(held.incident_id)
    assert stalled.playbook_state == "running" and stalled.step_index == 0
    assert crashing.restores == 1
    # A new process picks it up; the dead one's lease runs out first (the clock sleeps).
    after = _app(settings, clock, clients=crashing)
    done = after.resume(held.incident_id)

    assert done.status == "mitigated", done.error
    assert crashing.restores == 1
    assert clock.slept and clock.slept[0] > 0  # it waited for the crashed driver's lease
    assert len([t for t in _tables() if t.startswith(f"{SOURCE}-restored-")]) == 1


def test_slow_steps_wait_in_process_and_resume_picks_up_after_the_budget(world, settings):
    clock = Clock()
    slow = CountingClients(creating_polls=3)
    app = _app(settings, clock, clients=slow, inline_wait_seconds=15)
    held = app.run(_request(world))

    waiting = app.approve(held.incident_id, "alice")

    assert (waiting.playbook_state, waiting.status) == ("running", "mitigating")
    assert waiting.wait_until is not None and clock.slept == [10]
    assert [e.kind for e in app.store.timeline(held.incident_id)].count("step") == 2
    clock.now = waiting.wait_until
    done = app.resume(held.incident_id)
    assert done.status == "mitigated"
    assert slow.restores == 1


def test_undo_puts_every_variable_back_and_keeps_the_restored_table(world, settings):
    app = _app(settings, Clock())
    held = app.run(_request(world))
    done = app.approve(held.incident_id, "alice")
    target = done.outcome["after"]["target"]

    undone = app.undo(held.incident_id, "carol")

    assert _env() == {"TABLE_NAME": SOURCE, "LOG_LEVEL": "INFO"}
    assert _env("$LATEST") == {"TABLE_NAME": SOURCE, "LOG_LEVEL": "INFO"}
    assert target in _tables()
    assert "kept" in undone.undo_outcome["summary"]
    assert app.store.timeline(held.incident_id)[-1].kind == "undo"
    with pytest.raises(Exception, match="already undone by carol"):
        app.undo(held.incident_id, "carol")


def test_undo_of_a_run_that_changed_nothing_is_refused(world, settings):
    app = _app(settings, Clock())
    held = app.run(_request(world))

    with pytest.raises(NotReversible, match="nothing to undo"):
        app.undo(held.incident_id, "carol")


# --- the CLI ----------------------------------------------------------------------------


@pytest.fixture
def cli_world(world, monkeypatch) -> dict[str, Any]:
    monkeypatch.setenv("FIRELINE_TABLE", TABLE)
    assert main(["init-table"]) == 0
    return world


def test_cli_dry_run_prints_the_plan_and_changes_nothing(cli_world, capsys):
    before = _tables()

    code = main(["run", "point-in-time-restore", "-p", "engine=dynamodb", "-p",
                 f"source={SOURCE}", "-p", f"restore_to={cli_world['latest'].isoformat()}",
                 "-p", f"cutover={FUNCTION}:TABLE_NAME", "--dry-run"])

    out = capsys.readouterr().out
    assert code == 0
    assert f"Plan: restore table {SOURCE} to" in out
    assert f"Environment.Variables.TABLE_NAME: {SOURCE} -> {SOURCE}-restored-" in out
    assert "Dry run: nothing changed." in out
    assert _tables() == before
    assert _env()["TABLE_NAME"] == SOURCE
    assert main(["incidents", "list", "--json"]) == 0
    assert capsys.readouterr().out.strip() == "[]"


def test_cli_dry_run_with_the_default_time_refuses_outside_the_window(cli_world, capsys):
    # moto freezes the window when PITR is enabled: "now minus 5 minutes" is before it.
    code = main(["run", "point-in-time-restore", "-p", "engine=dynamodb", "-p",
                 f"source={SOURCE}", "--dry-run"])

    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("fireline: error:") and "earliest restorable time" in err


def test_cli_run_then_approve_as_someone_else(cli_world, capsys):
    run = ["run", "point-in-time-restore", "-p", "engine=dynamodb", "-p", f"source={SOURCE}",
           "-p", f"restore_to={cli_world['latest'].isoformat()}",
           "-p", f"cutover={FUNCTION}:TABLE_NAME", "--as", "bob", "--yes"]
    assert main(run) == 0
    out = capsys.readouterr().out
    assert "awaiting-approval" in out and "fireline approve INC-" in out
    incident_id = out.split("fireline approve ")[1].split()[0]

    assert main(["approve", incident_id, "--as", "bob"]) == 2
    assert "cannot approve it too" in capsys.readouterr().err
    assert main(["approve", incident_id, "--as", "alice"]) == 0
    assert "playbook point-in-time-restore is done, incident mitigated" in \
        capsys.readouterr().out
    # No alias asked for: $LATEST (and a new version) change, alias live stays put.
    assert _env("$LATEST")["TABLE_NAME"].startswith(f"{SOURCE}-restored-")
    assert _env("live")["TABLE_NAME"] == SOURCE
    assert main(["undo", incident_id, "--as", "alice"]) == 0
    assert _env("$LATEST")["TABLE_NAME"] == SOURCE


def test_cli_approve_uses_the_aws_identity_when_no_name_is_given(cli_world, capsys):
    assert main(["run", "point-in-time-restore", "-p", "engine=dynamodb", "-p",
                 f"source={SOURCE}", "-p", f"restore_to={cli_world['latest'].isoformat()}",
                 "--yes"]) == 0
    out = capsys.readouterr().out
    incident_id = out.split("fireline approve ")[1].split()[0]
    requester = aws.client("sts").get_caller_identity()["Arn"]
    assert f"someone other than {requester}" in out

    # The same AWS identity is the requester: refused.
    assert main(["approve", incident_id]) == 2
    assert "cannot approve it too" in capsys.readouterr().err


def test_cli_resume_of_a_finished_run_says_there_is_nothing_to_resume(cli_world, capsys):
    assert main(["run", "point-in-time-restore", "-p", "engine=dynamodb", "-p",
                 f"source={SOURCE}", "-p", f"restore_to={cli_world['latest'].isoformat()}",
                 "--as", "bob", "--yes"]) == 0
    incident_id = capsys.readouterr().out.split("fireline approve ")[1].split()[0]

    assert main(["resume", incident_id]) == 2
    assert "nothing to resume: its playbook is awaiting-approval" in capsys.readouterr().err


def test_a_step_that_never_finishes_fails_at_its_deadline(world, settings, monkeypatch):
    from fireline import registry

    # Two hours of 10-second polls is a lot of moto calls: a one-minute deadline says it.
    monkeypatch.setattr(type(registry.get("point-in-time-restore")), "step_deadline",
                        timedelta(minutes=1))
    clock = Clock()
    stuck = CountingClients(creating_polls=10_000)
    app = _app(settings, clock, clients=stuck, inline_wait_seconds=30)
    held = app.run(_request(world))

    failed = app.approve(held.incident_id, "alice")
    for _ in range(5):  # an in-process run waits an hour at most, then resume goes on
        if failed.playbook_state != "running":
            break
        clock.now = failed.wait_until
        failed = app.resume(held.incident_id)

    assert (failed.status, failed.playbook_state) == ("failed", "failed")
    assert failed.error.startswith("wait-available: wait-available still not finished after")
    assert "look at it by hand" in failed.error
    assert "after 1 minute " in failed.error


class DeniedCutover(CountingClients):
    """Lambda refuses the environment update: the restore is done, the cutover fails."""

    def __call__(self, service: str, **kwargs: Any) -> Any:
        client = super().__call__(service, **kwargs)
        if service != "lambda":
            return client
        from botocore.exceptions import ClientError

        class _Lambda:
            def __getattr__(self, name: str) -> Any:
                return getattr(client, name)

            def update_function_configuration(self, **request: Any) -> Any:
                raise ClientError({"Error": {"Code": "AccessDeniedException",
                                             "Message": "not authorized"}},
                                  "UpdateFunctionConfiguration")

        return _Lambda()


def test_a_failure_after_the_restore_records_what_was_done(world, settings):
    app = _app(settings, Clock(), clients=DeniedCutover())
    held = app.run(_request(world))

    failed = app.approve(held.incident_id, "alice")

    assert (failed.status, failed.playbook_state) == ("failed", "failed")
    assert failed.error.startswith("cutover:") and "AccessDenied" in failed.error
    assert failed.outcome is not None, "the restored table is on the record"
    kinds = [e.kind for e in app.store.timeline(held.incident_id)]
    assert kinds[-2:] == ["partial", "failed"]
    [partial] = [e for e in app.store.timeline(held.incident_id) if e.kind == "partial"]
    assert f"as {failed.outcome['after']['target']}" in partial.text
    assert _env()["TABLE_NAME"] == SOURCE  # nothing half-changed
    # Undo is possible from what was recorded, and keeps the restored table.
    undone = app.undo(held.incident_id, "carol")
    assert "kept" in undone.undo_outcome["summary"]
    assert _env() == {"TABLE_NAME": SOURCE, "LOG_LEVEL": "INFO"}


def test_cli_dry_run_exactly_as_documented_prints_the_plan(moto, monkeypatch, capsys):
    """`fireline run point-in-time-restore -p engine=dynamodb -p source=T --dry-run`.

    moto freezes the restorable window when PITR is enabled, so "now minus 5 minutes" would
    fall before it; here PITR is enabled on moto's clock 400 s ago (moto's own time
    function, set explicitly) to give the window AWS would have.
    """
    import time

    import moto.dynamodb.models as moto_dynamodb

    with monkeypatch.context() as patch:
        patch.setattr(moto_dynamodb, "unix_time", lambda *_: time.time() - 400)
        create_pitr_table(aws.client, "T", items=[{"pk": "a"}])
    before = _tables()

    code = main(["run", "point-in-time-restore", "-p", "engine=dynamodb", "-p", "source=T",
                 "--dry-run"])

    out = capsys.readouterr().out
    assert code == 0, out
    assert out.startswith("Plan: restore table T to ")
    assert " as T-restored-" in out
    assert "warning:" in out and "latest restorable time" in out  # the default was clamped
    assert out.rstrip().endswith("Dry run: nothing changed.")
    assert _tables() == before


def test_a_request_cannot_waive_a_required_approval(world, settings):
    app = _app(settings, Clock())

    held = app.run(_request(world).model_copy(update={"approval": "auto"}))

    assert held.status == "awaiting-approval"
