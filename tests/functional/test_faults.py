"""Faults on the alarm path: AWS throttling and refusals, Slack failing in every way, many
deliveries at once, a driver killed between two steps. AWS is moto, Slack the local
Slack server driven by the real WebClient; faults are injected where they happen (AWS's
answer, Slack's answer), never by replacing Fireline's code.

Already covered elsewhere, not repeated here: Slack rate-limited once then OK and Slack
unreachable through the alarm handler (test_alarm_handler.py), each Slack failure at the
notifier (test_notify.py), a crash right after a create call inside a step
(test_restore_runs.py, and per playbook in test_point_in_time_restore.py,
test_s3_static_rollback.py, test_cache_invalidation.py).
"""

from __future__ import annotations

import io
import json
import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from botocore.retries.standard import ExponentialBackoff

from fireline import aws
from fireline.app import Fireline, RunRequest
from fireline.local.database_fixture import create_pitr_table
from fireline.local.lambda_context import LambdaContext
from fireline.local.lambda_fixture import deploy_versions
from fireline.local.payloads import (
    eventbridge_alarm_event,
    lambda_action_alarm_event,
    sns_alarm_event,
    sns_lambda_errors_event,
)
from fireline.local.slack_server import (
    CHANNEL_NOT_FOUND,
    INVALID_AUTH,
    RATELIMITED_LONG,
    SERVER_ERROR,
)
from handlers import _runtime
from handlers.alarm import handler
from tests.support.runs import Clock, Crash, deliver_at_once

CONTEXT = LambdaContext(function_name="fireline-alarm")
FUNCTION = "checkout"
ALARM = "checkout-prod-errors"
# The run's timeline when everything worked: nothing may be missing after a fault.
WHOLE = ["opened", "plan", "execute", "verify", "watch"]


@pytest.fixture(autouse=True)
def _no_context(aws_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """The alarm's context replies (fireline.enrich) are not what these tests are about.
    (After aws_env, which clears every FIRELINE_ variable.)"""
    monkeypatch.setenv("FIRELINE_ENRICH", "off")
    _runtime.fireline.cache_clear()


def _alarm(**fields: Any) -> dict[str, Any]:
    return sns_lambda_errors_event(function_name=FUNCTION, alarm_name=ALARM, **fields)


def _alias() -> dict[str, Any]:
    return aws.client("lambda").get_alias(FunctionName=FUNCTION, Name="live")


def _kinds(incident_id: str) -> list[str]:
    # The alarm's context replies (fireline.enrich) come and go with what AWS can answer.
    return [e.kind for e in _runtime.fireline().store.timeline(incident_id)
            if e.kind != "context"]


# --- AWS: throttling and refusals on the remediation call --------------------------------


class _Body(io.BytesIO):
    def stream(self, **_: Any) -> Any:
        yield self.read()


class AwsAnswers:
    """AWS's own error answer to the first `times` attempts of one operation.

    A `before-send` handler registered first on the session: botocore sends nothing for
    those attempts and parses this answer as AWS's (so its retry logic sees exactly what
    AWS would send); later attempts reach moto. botocore calls every `before-send` handler,
    moto's too, so a refused attempt's URL is moved off AWS first: moto passes it by and
    changes nothing, as AWS would not have. Registered before the test's clients exist, so
    every client made afterwards carries it.
    """

    def __init__(self, service_id: str, operation: str, *, code: str, status: int,
                 message: str, times: int) -> None:
        self.code, self.status, self.message, self.times = code, status, message, times
        self.attempts = 0
        self.event = f"before-send.{service_id}.{operation}"
        aws._session().events.register_first(self.event, self)

    def __call__(self, request: Any, **_: Any) -> AWSResponse | None:
        self.attempts += 1
        if self.attempts > self.times:
            return None
        request.url = "https://refused.invalid/"  # not for moto: AWS refused it
        body = json.dumps({"Type": "User", "message": self.message}).encode()
        headers = {"x-amzn-ErrorType": f"{self.code}:http://internal.amazon.com/coral/",
                   "Content-Type": "application/json", "x-amzn-RequestId": "fault-1"}
        return AWSResponse(request.url, self.status, headers, _Body(body))


@pytest.fixture
def backoff(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, float, float]]:
    """Every delay botocore's standard retry mode computes: (attempt, scale, delay). The
    real delay is recorded; the test sleeps a hundredth of it (the policy is unchanged)."""
    seen: list[tuple[int, float, float]] = []
    original = ExponentialBackoff.delay_amount

    def recorded(self: ExponentialBackoff, context: Any) -> float:
        delay = original(self, context)
        seen.append((context.attempt_number, self._get_base_scale(context), delay))
        return delay / 100

    monkeypatch.setattr(ExponentialBackoff, "delay_amount", recorded)
    return seen


@pytest.mark.parametrize(("code", "status"), [("ThrottlingException", 400),
                                              ("TooManyRequestsException", 429)])
def test_a_throttled_revert_is_retried_with_backoff_and_then_succeeds(handler_env, backoff,
                                                                      code, status):
    throttled = AwsAnswers("lambda", "UpdateAlias", code=code, status=status,
                           message="Rate exceeded", times=2)
    deploy_versions(aws.client, FUNCTION, versions=3)

    [incident] = handler(_alarm(), CONTEXT)["incidents"]

    assert incident["status"] == "mitigating", "done; watching for OK"
    assert _alias()["FunctionVersion"] == "2"
    assert throttled.attempts == 3, "two throttled attempts, then the one that went through"
    # botocore's standard mode backed off as for throttling (scale 1 s, doubling, jittered).
    assert [(attempt, scale) for attempt, scale, _ in backoff] == [(1, 1), (2, 1)]
    assert all(0 <= delay <= 2 ** (attempt - 1) for attempt, _, delay in backoff)
    assert _kinds(incident["incident_id"]) == WHOLE


def test_throttling_that_never_ends_gives_up_after_five_retries_and_says_so(
        handler_env, backoff, local_slack):
    throttled = AwsAnswers("lambda", "UpdateAlias", code="TooManyRequestsException",
                           status=429, message="Rate exceeded", times=99)
    deploy_versions(aws.client, FUNCTION, versions=3)

    [incident] = handler(_alarm(), CONTEXT)["incidents"]

    assert incident["status"] == "failed"
    # botocore's `max_attempts` counts retries: the first attempt and five more.
    assert throttled.attempts == 6
    assert [attempt for attempt, _, _ in backoff] == [1, 2, 3, 4, 5]
    assert _alias()["FunctionVersion"] == "3"
    stored = _runtime.fireline().store.get(incident["incident_id"])
    assert "lambda:UpdateAlias failed: TooManyRequestsException" in stored.error
    posted = " ".join(str(c.params) for c in local_slack.calls_to("chat.postMessage"))
    assert "TooManyRequestsException" in posted


def test_access_denied_fails_fast_and_names_the_missing_permission(handler_env, backoff,
                                                                   local_slack):
    denied = AwsAnswers(
        "lambda", "UpdateAlias", code="AccessDeniedException", status=403, times=99,
        message="User: arn:aws:sts::123456789012:assumed-role/fireline-alarm/fireline is not "
                "authorized to perform: lambda:UpdateAlias on resource: "
                "arn:aws:lambda:us-east-1:123456789012:function:checkout:live")
    deploy_versions(aws.client, FUNCTION, versions=3)

    started = time.monotonic()
    [incident] = handler(_alarm(), CONTEXT)["incidents"]

    assert incident["status"] == "failed"
    assert denied.attempts == 1 and backoff == [], "a refusal is not retried"
    assert time.monotonic() - started < 5
    assert _alias()["FunctionVersion"] == "3", "nothing changed"
    store = _runtime.fireline().store
    stored = store.get(incident["incident_id"])
    assert "(grant the permission for lambda:UpdateAlias)" in stored.error
    [failed] = [e for e in store.timeline(incident["incident_id"]) if e.kind == "failed"]
    assert "lambda:UpdateAlias" in failed.text and "AccessDeniedException" in failed.text
    posted = " ".join(str(c.params) for c in local_slack.calls_to("chat.postMessage"))
    assert "grant the permission for lambda:UpdateAlias" in posted
    assert _kinds(incident["incident_id"]) == ["opened", "plan", "failed"]


def test_the_revert_says_it_is_fireline_so_cloudtrail_tells_it_from_a_deploy(handler_env):
    """CloudTrail keeps each call's userAgent: an operator reading "what changed" sees
    which alias update was Fireline's. (A fixed header is also cheaper for botocore.)"""
    agents: list[str] = []

    def seen(request: Any, **_: Any) -> None:
        agents.append(request.headers["User-Agent"].decode())  # then moto answers

    aws._session().events.register_first("before-send.lambda.UpdateAlias", seen)
    deploy_versions(aws.client, FUNCTION, versions=3)

    [incident] = handler(_alarm(), CONTEXT)["incidents"]

    assert incident["status"] == "mitigating"
    assert len(agents) == 1
    assert agents[0].startswith("fireline Boto3/"), agents[0]


# --- Slack failing: the mitigation goes on and the record stays whole ---------------------


@pytest.mark.parametrize(("token", "logged"), [
    (RATELIMITED_LONG, "ratelimited (HTTP 429)"),  # Retry-After: 30, not waited for
    (SERVER_ERROR, "fatal_error (HTTP 500)"),
    (INVALID_AUTH, "invalid_auth"),
    (CHANNEL_NOT_FOUND, "channel_not_found"),
], ids=["429-retry-after-30", "500", "invalid_auth", "channel_not_found"])
def test_slack_failing_never_stops_the_revert_nor_loses_the_record(
        handler_env, local_slack, monkeypatch, caplog, token, logged):
    monkeypatch.setenv("SLACK_BOT_TOKEN", token)
    _runtime.fireline.cache_clear()
    deploy_versions(aws.client, FUNCTION, versions=3)
    caplog.set_level(logging.WARNING, logger="fireline")

    started = time.monotonic()
    [incident] = handler(_alarm(), CONTEXT)["incidents"]

    assert time.monotonic() - started < 10, "Slack's trouble must not hold the revert up"
    assert incident["status"] == "mitigating"
    assert _alias()["FunctionVersion"] == "2"
    stored = _runtime.fireline().store.get(incident["incident_id"])
    assert stored.outcome and stored.outcome["after"]["version"] == "2"
    assert stored.slack is None, "no thread was ever posted"
    assert _kinds(incident["incident_id"]) == WHOLE
    failures = [r.getMessage() for r in caplog.records
                if r.levelno == logging.WARNING and r.getMessage().startswith("slack ")]
    assert failures and all(logged in line for line in failures)
    assert token not in caplog.text
    expected = {RATELIMITED_LONG: {429}, SERVER_ERROR: {500}}.get(token, {200})
    assert {call.status for call in local_slack.calls} == expected


def test_a_hanging_slack_costs_the_revert_one_timeout_not_one_per_message(
        handler_env, monkeypatch, silent_slack, caplog):
    """Slack accepts connections and never answers: the first post waits out its timeout;
    the run's other messages are skipped while Slack is paused, so the alias is reverted at
    once instead of after a timeout per message."""
    monkeypatch.setenv("FIRELINE_SLACK_API_URL", silent_slack.url)
    monkeypatch.setenv("FIRELINE_SLACK_TIMEOUT", "0.5")
    _runtime.fireline.cache_clear()
    deploy_versions(aws.client, FUNCTION, versions=3)
    caplog.set_level(logging.INFO, logger="fireline.notify")

    [incident] = handler(_alarm(), CONTEXT)["incidents"]

    assert incident["status"] == "mitigating"
    assert _alias()["FunctionVersion"] == "2"
    assert _kinds(incident["incident_id"]) == WHOLE
    # The parent's post alone (slack-sdk retries a dropped connection, not a timeout);
    # without the pause, each of the run's six messages waited out its own timeout.
    assert len(silent_slack.connections) == 1
    told = [r.getMessage() for r in caplog.records if r.name == "fireline.notify"]
    assert told[0].startswith("slack chat.postMessage failed: timeout")
    assert len(told) > 1 and all(" skipped: it failed " in line for line in told[1:])


def test_slack_hears_of_the_revert_after_it_is_done_so_a_hanging_slack_never_delays_it(
        handler_env, monkeypatch, silent_slack):
    """The parent and the plan wait for the action: the alias moves before Fireline's
    first request to Slack (which then hangs for its whole timeout)."""
    monkeypatch.setenv("FIRELINE_SLACK_API_URL", silent_slack.url)
    monkeypatch.setenv("FIRELINE_SLACK_TIMEOUT", "0.5")
    _runtime.fireline.cache_clear()
    aws.reset_clients()  # clients copy their session's handlers when made: make them anew
    moved_at: list[float] = []
    aws._session().events.register("after-call.lambda.UpdateAlias",
                                   lambda **_: moved_at.append(time.monotonic()))
    deploy_versions(aws.client, FUNCTION, versions=3)

    [incident] = handler(_alarm(), CONTEXT)["incidents"]

    assert incident["status"] == "mitigating"
    assert len(moved_at) == 1 and silent_slack.connected_at
    assert moved_at[0] < silent_slack.connected_at[0], "the alias moved before Slack was asked"
    assert _kinds(incident["incident_id"]) == WHOLE, "the timeline was written as it happened"


def test_a_thread_that_could_not_be_posted_heals_on_the_next_step(handler_env, local_slack,
                                                                 monkeypatch):
    """Slack back after an outage: the next step posts the parent, then what the thread
    missed in one reply, then its own."""
    deploy_versions(aws.client, FUNCTION, versions=3)
    monkeypatch.setenv("SLACK_BOT_TOKEN", SERVER_ERROR)
    _runtime.fireline.cache_clear()
    [incident] = handler(_alarm(), CONTEXT)["incidents"]
    assert _runtime.fireline().store.get(incident["incident_id"]).slack is None

    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-valid")
    _runtime.fireline.cache_clear()
    [resolved] = handler(_alarm(state="OK", old_state="ALARM"), CONTEXT)["incidents"]

    assert resolved["status"] == "resolved"
    stored = _runtime.fireline().store.get(incident["incident_id"])
    assert stored.slack is not None
    parent, earlier, last = local_slack.thread(stored.slack.channel, stored.slack.ts)
    assert parent["blocks"][0]["type"] == "header" and "thread_ts" not in parent
    assert "earlier updates, posted now that Slack answers" in earlier["text"]
    missed = str(earlier["blocks"])
    assert "plan · point alias live from version 3 to version 2" in missed
    assert "alias live now points at version 2" in missed
    assert "watching checkout-prod-errors until" in missed
    assert "resolved" in last["text"]


# --- many deliveries at once ---------------------------------------------------------------


def test_twenty_concurrent_deliveries_in_three_shapes_give_one_incident_and_one_revert(
        handler_env):
    updates = []
    aws._session().events.register("before-call.lambda.UpdateAlias",
                                   lambda **kwargs: updates.append(kwargs["params"]))
    deploy_versions(aws.client, FUNCTION, versions=3)
    shape = {"alarm_name": ALARM, "namespace": "AWS/Lambda", "metric": "Errors",
             "dimensions": {"FunctionName": FUNCTION}}
    builders = [sns_alarm_event, eventbridge_alarm_event, lambda_action_alarm_event]
    events = [builders[n % 3](**shape) for n in range(20)]
    results = deliver_at_once(handler, events, CONTEXT)

    assert len(results) == 20
    [incident_id] = {r["incident_id"] for r in results}
    assert sum(r["opened"] for r in results) == 1
    store = _runtime.fireline().store
    assert [i.incident_id for i in store.list()] == [incident_id]
    assert len(updates) == 1, "one UpdateAlias: the revert ran once"
    assert _kinds(incident_id).count("execute") == 1
    assert _alias()["FunctionVersion"] == "2"


def test_a_repeat_delivery_writes_nothing(handler_env):
    deploy_versions(aws.client, FUNCTION, versions=3)
    fired_at = datetime.now(UTC) - timedelta(minutes=1)
    first = _alarm(at=fired_at)
    [opened] = handler(first, CONTEXT)["incidents"]
    store = _runtime.fireline().store
    before = store.get(opened["incident_id"])
    items_before = _items()

    handler(first, CONTEXT)  # the same message again
    handler(_alarm(at=fired_at), CONTEXT)  # the same state change in another message
    _runtime.fireline.cache_clear()  # and one to another process, which knows nothing
    [joined] = handler(_alarm(at=fired_at), CONTEXT)["incidents"]

    assert joined["incident_id"] == opened["incident_id"]
    assert store.get(opened["incident_id"]).version == before.version, \
        "the incident document is not rewritten"
    assert _items() == items_before, "nor is any other item written"


def test_a_repeat_from_a_later_state_change_keeps_its_time_once(handler_env):
    """An ALARM with a later change time means the alarm left ALARM and came back: the
    incident keeps that time (so a late OK from between is not applied), once."""
    deploy_versions(aws.client, FUNCTION, versions=3)
    fired_at = datetime.now(UTC) - timedelta(minutes=3)
    [opened] = handler(_alarm(at=fired_at), CONTEXT)["incidents"]
    store = _runtime.fireline().store
    before = store.get(opened["incident_id"])
    later = fired_at + timedelta(minutes=2)

    handler(_alarm(at=later), CONTEXT)
    handler(_alarm(at=later), CONTEXT)  # that change again, in another message
    handler(_alarm(at=fired_at + timedelta(minutes=1)), CONTEXT)  # an older one, late

    after = store.get(opened["incident_id"])
    assert after.alarm_changed_at == later.replace(microsecond=later.microsecond // 1000 * 1000)
    assert after.version == before.version + 1, "one write, for the one later change"


def _items() -> list[dict]:
    return aws.client("dynamodb").scan(TableName=_runtime.fireline().store.table)["Items"]


# --- a driver killed between two steps of a long playbook ---------------------------------


class CrashingClients:
    """aws.client, with DynamoDB's point-in-time restores counted, and a crash (the process
    dies) when the next step first reads the restored table: the restore step reads it back
    once after asking for it, and the wait step's read is the second."""

    def __init__(self) -> None:
        self.restores = 0
        self.reads_after_restore = 0

    def __call__(self, service: str, **kwargs: Any) -> Any:
        client = aws.client(service, **kwargs)
        return _DynamoDB(client, self) if service == "dynamodb" else client


class _DynamoDB:
    def __init__(self, client: Any, owner: CrashingClients) -> None:
        self._client, self._owner = client, owner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def restore_table_to_point_in_time(self, **kwargs: Any) -> Any:
        self._owner.restores += 1
        return self._client.restore_table_to_point_in_time(**kwargs)

    def describe_table(self, **kwargs: Any) -> Any:
        if "-restored-" in kwargs.get("TableName", "") and self._owner.restores:
            self._owner.reads_after_restore += 1
            if self._owner.reads_after_restore == 2:
                raise Crash
        return self._client.describe_table(**kwargs)


def test_a_driver_killed_between_two_steps_resumes_without_a_second_restore(moto, settings):
    table = create_pitr_table(aws.client, "orders", items=[{"pk": "order-1", "total": 1}])
    clock, clients = Clock(), CrashingClients()

    def app() -> Fireline:
        fireline = Fireline(settings, clients=clients, clock=clock, sleep=clock.sleep)
        fireline.store.create_table()
        return fireline

    held = app().run(RunRequest(playbook="point-in-time-restore", requested_by="bob", params={
        "engine": "dynamodb", "source": "orders", "restore_to": table["latest"].isoformat()}))
    with pytest.raises(Crash):
        app().approve(held.incident_id, "alice")

    stalled = app().store.get(held.incident_id)
    assert (stalled.playbook_state, stalled.step_index) == ("running", 1), \
        "killed after the restore step was saved, before the next one"
    assert clients.restores == 1
    clock.now += timedelta(minutes=5)  # the dead driver's lease runs out

    done = app().resume(held.incident_id)

    assert done.status == "mitigated", done.error
    assert clients.restores == 1, "the restore is not asked for again"
    restored = [t for t in aws.client("dynamodb").list_tables()["TableNames"]
                if t.startswith("orders-restored-")]
    assert len(restored) == 1
    kinds = [e.kind for e in app().store.timeline(held.incident_id)]
    assert kinds.count("step") == 3 and kinds[-1] == "verify"
