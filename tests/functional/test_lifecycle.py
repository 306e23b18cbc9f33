"""The closed loop through the alarm path: watch for recovery, escalate, undo, resolve on
OK, re-open, and the rails (one actor per resource, a budget, a cooldown). moto as AWS
(its CloudWatch holds the alarm's state), the local Slack server as Slack, an injected
clock: nothing sleeps for real."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from fireline import aws
from fireline.app import Fireline
from fireline.cli import main
from fireline.config import Settings
from fireline.errors import ApprovalNotPending
from fireline.events import parse_event
from fireline.local.lambda_fixture import deploy_versions
from fireline.local.payloads import sns_lambda_errors_event
from tests.support.aws import TABLE
from tests.support.runs import Clock

RUNBOOK = """
defaults: {{cooldown_minutes: 10, action_budget_per_hour: 3, reopen_window_minutes: 30}}
rules:
  - name: revert
    match: {{namespace: AWS/Lambda, tags: {{env: production}}}}
    severity: SEV-2
    playbook: lambda-alias-revert
    recovery_window_minutes: 10
    on_no_recovery: {on_no_recovery}
"""


@pytest.fixture
def make_app(moto, settings: Settings, tmp_path: Path):
    def make(clock: Clock, on_no_recovery: str = "escalate") -> Fireline:
        runbook = tmp_path / f"lifecycle-{on_no_recovery}.yaml"
        runbook.write_text(RUNBOOK.format(on_no_recovery=on_no_recovery))
        app = Fireline(settings.model_copy(update={"runbook_path": runbook,
                                                   "tag_lookup": False}),
                       clock=clock, sleep=clock.sleep)
        app.store.create_table()
        return app

    return make


def _alarm(name: str = "checkout-prod-errors", state: str = "ALARM", function: str = "checkout",
           clock: Clock | None = None) -> dict[str, Any]:
    """The notification, and the alarm itself in moto's CloudWatch in that state."""
    cloudwatch = aws.client("cloudwatch")
    cloudwatch.put_metric_alarm(
        AlarmName=name, Namespace="AWS/Lambda", MetricName="Errors", Statistic="Sum",
        Period=60, EvaluationPeriods=1, Threshold=1, ComparisonOperator="GreaterThanThreshold",
        Dimensions=[{"Name": "FunctionName", "Value": function}])
    cloudwatch.set_alarm_state(AlarmName=name, StateValue=state, StateReason="test")
    return sns_lambda_errors_event(function_name=function, alarm_name=name, state=state,
                                   old_state="OK" if state == "ALARM" else "ALARM",
                                   tags={"env": "production"},
                                   at=clock.now if clock else None)


def _opened(make_app) -> tuple[Clock, Fireline, dict[str, Any]]:
    """A clock, an app on it, and the incident its first ALARM opened (the revert done)."""
    clock = Clock()
    app = make_app(clock)
    deploy_versions(aws.client, "checkout", versions=3)
    [result] = app.handle_event(_alarm(clock=clock))["incidents"]
    return clock, app, result


def _set_state(name: str, state: str) -> None:
    aws.client("cloudwatch").set_alarm_state(AlarmName=name, StateValue=state,
                                             StateReason="test")


def _alias(function: str = "checkout") -> str:
    return aws.client("lambda").get_alias(FunctionName=function, Name="live")["FunctionVersion"]


def _kinds(app: Fireline, incident_id: str) -> list[str]:
    # The alarm's context (what changed, logs, chart) is told apart from the lifecycle.
    return [entry.kind for entry in app.store.timeline(incident_id) if entry.kind != "context"]


def test_recovery_within_the_window_is_mitigated(make_app):
    clock, app, result = _opened(make_app)
    incident = app.store.get(result["incident_id"])
    assert incident.status == "mitigating"
    window = incident.watch_until - incident.opened_at
    assert timedelta(minutes=10) <= window < timedelta(minutes=10, seconds=1)

    clock.now += timedelta(minutes=3)
    assert [i.status for i in app.check_watched()] == ["mitigating"]  # still ALARM, in time
    _set_state("checkout-prod-errors", "OK")
    [checked] = app.check_watched()

    assert checked.status == "mitigated"
    assert checked.mitigated_at is not None and checked.watch_until is None
    assert _kinds(app, checked.incident_id)[-2:] == ["watch", "mitigated"]


def test_no_recovery_escalates_and_with_undo_puts_the_alias_back(make_app):
    clock = Clock()
    app = make_app(clock, on_no_recovery="undo")
    deploy_versions(aws.client, "checkout", versions=3)
    app.handle_event(_alarm(clock=clock))
    assert _alias() == "2"

    clock.now += timedelta(minutes=11)
    [escalated] = app.check_watched()

    assert (escalated.status, escalated.severity) == ("escalated", "SEV-1")
    assert _alias() == "3", "the action did not help, so it was undone"
    [entry] = [e for e in app.store.timeline(escalated.incident_id) if e.kind == "escalated"]
    assert "the action did not help" in entry.text and "still ALARM" in entry.text
    assert _kinds(app, escalated.incident_id)[-2:] == ["escalated", "undo"]


def test_no_recovery_with_escalate_leaves_the_action_and_calls_a_human(make_app):
    clock, app, result = _opened(make_app)
    clock.now += timedelta(minutes=11)

    # The next ALARM delivery for it notices the deadline passed (no describe needed).
    app.handle_event(_alarm(clock=clock))

    incident = app.store.get(result["incident_id"])
    assert (incident.status, incident.severity) == ("escalated", "SEV-1")
    assert _alias() == "2"


def test_ok_resolves_with_times_and_insufficient_data_never_does(make_app):
    clock, app, result = _opened(make_app)

    clock.now += timedelta(minutes=2)
    app.handle_event(_alarm(state="INSUFFICIENT_DATA", clock=clock))
    assert app.store.get(result["incident_id"]).status == "mitigating"
    clock.now += timedelta(minutes=2)
    app.handle_event(_alarm(state="OK", clock=clock))

    resolved = app.store.get(result["incident_id"])
    assert resolved.status == "resolved"
    [entry] = [e for e in app.store.timeline(resolved.incident_id) if e.kind == "resolved"]
    assert "time to mitigate 4 min" in entry.text and "time to resolve 4 min" in entry.text


def test_an_alarm_back_in_alarm_after_no_data_says_so_once(make_app):
    """A repeat delivery normally writes nothing; one that follows another state (the alarm
    flapped) puts the incident's alarm state right and tells the thread, once."""
    clock, app, result = _opened(make_app)
    clock.now += timedelta(minutes=2)
    app.handle_event(_alarm(state="INSUFFICIENT_DATA", clock=clock))
    assert app.store.get(result["incident_id"]).alarm_state == "INSUFFICIENT_DATA"
    clock.now += timedelta(minutes=1)
    back = _alarm(clock=clock)
    same_change = _alarm(clock=clock)  # in another message (another subscription)

    app.handle_event(back)
    app.handle_event(same_change)

    incident = app.store.get(result["incident_id"])
    assert (incident.alarm_state, incident.status) == ("ALARM", "mitigating")
    assert incident.alarm_changed_at == parse_event(back)[0].state_changed_at
    again = [e.text for e in app.store.timeline(incident.incident_id)
             if "in ALARM again" in e.text]
    assert len(again) == 1, again


def test_an_ok_older_than_the_alarm_does_not_resolve_it(make_app, caplog):
    """SNS and EventBridge do not keep order: an OK from before the ALARM that opened the
    incident, delivered after it, is logged and not applied."""
    clock = Clock()
    app = make_app(clock)
    deploy_versions(aws.client, "checkout", versions=3)
    opened_at = clock.now
    [result] = app.handle_event(_alarm(clock=clock))["incidents"]
    clock.now = opened_at - timedelta(minutes=3)
    late_ok = _alarm(state="OK", clock=clock)
    clock.now = opened_at + timedelta(minutes=1)

    with caplog.at_level("INFO", logger="fireline.app"):
        [answer] = app.handle_event(late_ok)["incidents"]

    incident = app.store.get(result["incident_id"])
    assert answer["status"] == incident.status == "mitigating"
    assert incident.alarm_state == "ALARM"
    assert "resolved" not in _kinds(app, incident.incident_id)
    assert "older than the incident's latest state change" in caplog.text


def test_an_ok_from_between_two_alarms_arriving_last_is_not_applied(make_app):
    """ALARM at 0, OK at 2, ALARM at 3; the OK arrives last. The second ALARM says the
    alarm left ALARM and came back: the incident keeps its time, and the OK is old news."""
    clock = Clock()
    app = make_app(clock)
    deploy_versions(aws.client, "checkout", versions=3)
    start = clock.now
    [first] = app.handle_event(_alarm(clock=clock))["incidents"]
    clock.now = start + timedelta(minutes=2)
    ok_between = _alarm(state="OK", clock=clock)
    clock.now = start + timedelta(minutes=3)
    back = _alarm(clock=clock)
    _set_state("checkout-prod-errors", "ALARM")

    app.handle_event(back)
    app.handle_event(ok_between)

    incident = app.store.get(first["incident_id"])
    assert incident.status == "mitigating" and incident.alarm_state == "ALARM"
    assert incident.alarm_changed_at == parse_event(back)[0].state_changed_at
    assert "resolved" not in _kinds(app, incident.incident_id)
    assert not [e for e in app.store.timeline(incident.incident_id)
                if "in ALARM again" in e.text], "it never heard another state: nothing to say"


def test_a_late_ok_after_a_reopen_does_not_close_it_again(make_app):
    clock, app, first = _opened(make_app)
    clock.now += timedelta(minutes=5)
    ok = _alarm(state="OK", clock=clock)
    app.handle_event(ok)
    clock.now += timedelta(minutes=10)
    app.handle_event(_alarm(clock=clock))
    assert app.store.get(first["incident_id"]).status == "open", "re-opened"

    # The earlier OK again, as its other subscription (or a retry) delivers it.
    again = json.loads(json.dumps(ok))
    again["Records"][0]["Sns"]["MessageId"] = "another-subscription"
    [answer] = app.handle_event(again)["incidents"]

    incident = app.store.get(first["incident_id"])
    assert answer["status"] == incident.status == "open"
    assert _kinds(app, incident.incident_id).count("resolved") == 1


def test_a_repeat_within_the_window_reopens_and_escalates(make_app):
    clock, app, first = _opened(make_app)
    clock.now += timedelta(minutes=5)
    app.handle_event(_alarm(state="OK", clock=clock))
    clock.now += timedelta(minutes=10)

    [again] = app.handle_event(_alarm(clock=clock))["incidents"]

    assert again["incident_id"] == first["incident_id"]
    incident = app.store.get(first["incident_id"])
    assert (incident.status, incident.severity, incident.reopened) == ("open", "SEV-1", 1)
    assert _kinds(app, incident.incident_id)[-1] == "reopened"
    assert _alias() == "2", "nothing runs again automatically"


@pytest.mark.parametrize("closed_by", ["the OK", "a person"])
def test_a_late_copy_of_the_opening_alarm_neither_reopens_nor_opens(make_app, closed_by):
    """The ALARM that opened the incident, delivered again after it resolved (its
    EventBridge copy, an SQS retry): old news, not a new firing. A new firing still is."""
    clock = Clock()
    app = make_app(clock)
    deploy_versions(aws.client, "checkout", versions=3)
    fired = _alarm(clock=clock)
    [first] = app.handle_event(fired)["incidents"]
    clock.now += timedelta(minutes=5)
    if closed_by == "the OK":
        app.handle_event(_alarm(state="OK", clock=clock))
    else:
        app.resolve(first["incident_id"], "ana", note="fixed the config by hand")
    late_copy = json.loads(json.dumps(fired))
    late_copy["Records"][0]["Sns"]["MessageId"] = "the-eventbridge-copy"
    clock.now += timedelta(minutes=1)

    assert app.handle_event(late_copy)["incidents"] == []

    incident = app.store.get(first["incident_id"])
    assert (incident.status, incident.severity, incident.reopened) == ("resolved", "SEV-2", 0)
    assert [i.incident_id for i in app.store.list()] == [first["incident_id"]]
    assert app.store.find_open(_alarm_key()) is None
    clock.now += timedelta(minutes=1)
    [fired_again] = app.handle_event(_alarm(clock=clock))["incidents"]
    assert fired_again["incident_id"] == first["incident_id"], "a new firing re-opens it"
    assert app.store.get(first["incident_id"]).reopened == 1


def test_a_repeat_after_the_window_opens_a_new_incident(make_app):
    clock, app, first = _opened(make_app)
    app.handle_event(_alarm(state="OK", clock=clock))
    clock.now += timedelta(minutes=31)

    [later] = app.handle_event(_alarm(clock=clock))["incidents"]

    assert later["incident_id"] != first["incident_id"] and later["opened"] is True


def test_an_incident_resolved_by_another_process_is_not_joined_from_memory(make_app):
    """Each process remembers an alarm's open incident (a repeat then reads one item); an
    incident another process resolved must send this one back to the alarm's pointer."""
    clock = Clock()
    here, elsewhere = make_app(clock), make_app(clock)
    deploy_versions(aws.client, "checkout", versions=3)
    [first] = here.handle_event(_alarm(clock=clock))["incidents"]
    [repeat] = here.handle_event(_alarm(clock=clock))["incidents"]
    assert repeat["incident_id"] == first["incident_id"] and repeat["opened"] is False
    _set_state("checkout-prod-errors", "OK")
    elsewhere.handle_event(_alarm(state="OK", clock=clock))
    assert here.store.get(first["incident_id"]).status == "resolved"
    clock.now += timedelta(minutes=31)

    [later] = here.handle_event(_alarm(clock=clock))["incidents"]

    assert later["opened"] is True and later["incident_id"] != first["incident_id"]
    assert here.store.find_open(_alarm_key()) == here.store.get(later["incident_id"])
    assert elsewhere.store.find_open(_alarm_key()) == here.store.get(later["incident_id"])


def _alarm_key() -> str:
    return parse_event(_alarm())[0].key


def test_cooldown_holds_the_same_playbook_on_the_same_function(make_app):
    clock = Clock()
    app = make_app(clock)
    deploy_versions(aws.client, "checkout", versions=4)
    app.handle_event(_alarm("checkout-prod-errors", clock=clock))
    clock.now += timedelta(minutes=5)

    [second] = app.handle_event(_alarm("checkout-prod-latency", clock=clock))["incidents"]

    held = app.store.get(second["incident_id"])
    assert held.playbook_state == "awaiting-approval"
    [entry] = [e for e in app.store.timeline(held.incident_id) if e.kind == "approval"]
    assert "cooldown is 10 minutes" in entry.text
    assert _alias() == "3"
    # A human may still decide to act.
    app.approve(held.incident_id, "alice")
    assert _alias() == "2"


def test_the_budget_stops_the_fourth_automatic_action_in_an_hour(make_app):
    clock = Clock()
    app = make_app(clock)
    deploy_versions(aws.client, "checkout", versions=6)
    results = []
    for number in range(4):
        results.append(app.handle_event(_alarm(f"checkout-prod-{number}", clock=clock))
                       ["incidents"][0])
        clock.now += timedelta(minutes=11)  # past the cooldown each time

    states = [app.store.get(r["incident_id"]).playbook_state for r in results]
    assert states == ["done", "done", "done", "awaiting-approval"]
    assert _alias() == "3"  # 6 -> 5 -> 4 -> 3, then the fourth held
    [entry] = [e for e in app.store.timeline(results[3]["incident_id"]) if e.kind == "approval"]
    assert "budget of 3 automatic lambda-alias-revert actions an hour" in entry.text


def test_two_concurrent_incidents_on_one_function_only_one_acts(make_app):
    clock = Clock()
    first_app, second_app = make_app(clock), make_app(clock)
    deploy_versions(aws.client, "checkout", versions=4)
    events = [_alarm("checkout-prod-errors", clock=clock),
              _alarm("checkout-prod-5xx", clock=clock)]
    barrier = threading.Barrier(2)
    results: list[dict[str, Any]] = []

    def deliver(app: Fireline, event: dict[str, Any]) -> None:
        barrier.wait()
        results.extend(app.handle_event(event)["incidents"])

    threads = [threading.Thread(target=deliver, args=pair)
               for pair in ((first_app, events[0]), (second_app, events[1]))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert len(results) == 2
    assert _alias() == "3", "exactly one revert: 4 -> 3"
    executed = [r for r in results
                if "execute" in _kinds(first_app, r["incident_id"])]
    assert len(executed) == 1
    other = next(r for r in results if r is not executed[0])
    loser = first_app.store.get(other["incident_id"])
    assert loser.playbook_state == "awaiting-approval", loser.error
    # Whether it first waited for the lock or not, the cooldown then held it for a human.
    [held] = [e for e in first_app.store.timeline(loser.incident_id) if e.kind == "approval"]
    assert "the cooldown is 10 minutes" in held.text


def test_incidents_check_from_the_cli(make_app, monkeypatch, capsys):
    _, _, result = _opened(make_app)
    _set_state("checkout-prod-errors", "OK")
    monkeypatch.setenv("FIRELINE_TABLE", TABLE)

    assert main(["incidents", "check"]) == 0

    assert f"{result['incident_id']}  SEV-2  mitigated" in capsys.readouterr().out


def test_a_scheduled_check_through_the_step_handler_escalates(moto, local_slack, monkeypatch):
    from fireline.local.lambda_context import LambdaContext
    from handlers import _runtime
    from handlers.step import handler

    for key, value in {"FIRELINE_TABLE": TABLE, "FIRELINE_TAG_LOOKUP": "false",
                       "POWERTOOLS_METRICS_DISABLED": "true"}.items():
        monkeypatch.setenv(key, value)
    _runtime.fireline.cache_clear()
    app = _runtime.fireline()
    app.store.create_table()
    deploy_versions(aws.client, "checkout", versions=3)
    [result] = app.handle_event(_alarm())["incidents"]

    def overdue(current):
        current.watch_until = current.opened_at  # the window has passed
        return current

    app.store.update(result["incident_id"], overdue)

    answer = handler({"action": "check"}, LambdaContext(function_name="fireline-step"))

    _runtime.fireline.cache_clear()
    assert answer == {"status": "checked", "incidents": [
        {"incident_id": result["incident_id"], "status": "escalated"}]}


def test_an_alarm_that_recovers_while_a_plan_waits_drops_the_plan(make_app):
    clock = Clock()
    app = make_app(clock)
    deploy_versions(aws.client, "checkout", versions=3)
    event = _alarm(clock=clock)
    # The alarm's tag asks for approval: the plan is held.
    message = json.loads(event["Records"][0]["Sns"]["Message"])
    message["AlarmTags"] = {"env": "production", "fireline:approval": "required"}
    event["Records"][0]["Sns"]["Message"] = json.dumps(message)
    [result] = app.handle_event(event)["incidents"]
    assert result["status"] == "awaiting-approval"

    app.handle_event(_alarm(state="OK", clock=clock))

    incident = app.store.get(result["incident_id"])
    assert (incident.status, incident.playbook_state) == ("resolved", "rejected")
    with pytest.raises(ApprovalNotPending):
        app.approve(incident.incident_id, "alice")
    assert _alias() == "3"
