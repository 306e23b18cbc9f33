"""A Slack thread that missed replies catches up.

Slack's rate limit (about a message a second per channel) or an outage can refuse a reply
after the thread's parent made it: the notifier then leaves Slack alone for as long as
Slack asked. The incident is marked `slack_behind`, and the next post, a later delivery of
the alarm or the minute's check posts what the thread missed as one reply and brings the
parent up to date. Each test is a new invocation (`_runtime.fireline.cache_clear()`) once
Slack answers again, as a later Lambda invocation would be.
"""

from __future__ import annotations

from typing import Any

import pytest

from fireline import aws
from fireline.local.lambda_context import LambdaContext
from fireline.local.lambda_fixture import deploy_versions
from fireline.local.payloads import sns_lambda_errors_event
from handlers import _runtime
from handlers.alarm import handler
from handlers.step import handler as step_handler

CONTEXT = LambdaContext(function_name="fireline-alarm")
FUNCTION = "checkout"
ALARM = "checkout-prod-errors"
# The revert's Slack calls: the parent, the plan, the execute step (posted together once
# the alias has moved), then the verification and the watch as one reply, then the
# parent's update. A limit after the first three refuses the last two.
POSTED_BEFORE_THE_LIMIT = 3
CAUGHT_UP = "earlier updates, posted now that Slack answers"


@pytest.fixture(autouse=True)
def _no_context(handler_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """The alarm's context replies are not what these tests are about."""
    monkeypatch.setenv("FIRELINE_ENRICH", "off")
    _runtime.fireline.cache_clear()


def _alarm(**fields: Any) -> dict[str, Any]:
    return sns_lambda_errors_event(function_name=FUNCTION, alarm_name=ALARM, **fields)


def _revert_while_slack_starts_refusing(local_slack) -> str:
    """A revert whose verification reply (and the parent's update) Slack refuses with a
    30 s rate limit; the incident's id."""
    deploy_versions(aws.client, FUNCTION, versions=3)
    local_slack.rate_limit(retry_after=30, after=POSTED_BEFORE_THE_LIMIT)
    [incident] = handler(_alarm(), CONTEXT)["incidents"]
    assert incident["status"] == "mitigating"
    return incident["incident_id"]


def _thread(local_slack, incident_id: str) -> list[dict[str, Any]]:
    stored = _runtime.fireline().store.get(incident_id)
    assert stored.slack is not None
    return local_slack.thread(stored.slack.channel, stored.slack.ts)


def _later_invocation(local_slack) -> None:
    local_slack.lift_rate_limit()
    _runtime.fireline.cache_clear()  # a new notifier: not pausing for the old rate limit


def test_a_refused_reply_marks_the_thread_behind_and_the_mitigation_is_whole(local_slack):
    incident_id = _revert_while_slack_starts_refusing(local_slack)

    store = _runtime.fireline().store
    stored = store.get(incident_id)
    timeline = store.timeline(incident_id)
    assert [e.kind for e in timeline] == ["opened", "plan", "execute", "verify", "watch"]
    verify = next(e for e in timeline if e.kind == "verify")
    assert stored.slack_behind == verify.at, "behind from the first reply Slack refused"
    assert aws.client("lambda").get_alias(FunctionName=FUNCTION,
                                          Name="live")["FunctionVersion"] == "2"
    _parent, plan, execute = _thread(local_slack, incident_id)
    assert "plan" in plan["text"] and "execute" in execute["text"]
    # The verification's post met the limit (slack-sdk does not wait 30 s), and the
    # parent's update was skipped: the notifier leaves Slack alone as it asked.
    assert [c.status for c in local_slack.calls] == [200] * POSTED_BEFORE_THE_LIMIT + [429]


def test_the_next_step_posts_what_the_thread_missed_before_its_own_reply(local_slack):
    incident_id = _revert_while_slack_starts_refusing(local_slack)
    _later_invocation(local_slack)

    [resolved] = handler(_alarm(state="OK", old_state="ALARM"), CONTEXT)["incidents"]

    assert resolved["status"] == "resolved"
    assert _runtime.fireline().store.get(incident_id).slack_behind is None
    parent, _plan, _execute, earlier, *after = _thread(local_slack, incident_id)
    assert "2 " + CAUGHT_UP in earlier["text"]
    missed = str(earlier["blocks"])
    assert "verify · alias live serves version 2" in missed
    assert f"watch · watching {ALARM} until" in missed
    assert "plan ·" not in missed, "what the thread has is not posted again"
    assert after and any("resolved" in message["text"] for message in after)
    assert "resolved" in str(parent["blocks"]), "the parent shows the incident as it is now"


def test_a_later_delivery_of_the_alarm_catches_the_thread_up(local_slack):
    incident_id = _revert_while_slack_starts_refusing(local_slack)
    _later_invocation(local_slack)
    before = len(local_slack.calls)

    [repeat] = handler(_alarm(), CONTEXT)["incidents"]

    assert repeat["incident_id"] == incident_id and repeat["opened"] is False
    parent, *_, earlier = _thread(local_slack, incident_id)
    assert "2 " + CAUGHT_UP in earlier["text"]
    assert [c.method for c in local_slack.calls[before:]] == ["chat.postMessage",
                                                              "chat.update"]
    assert "lambda-alias-revert (done)" in str(parent["blocks"]), "the parent's missed update"
    assert _runtime.fireline().store.get(incident_id).slack_behind is None

    handler(_alarm(), CONTEXT)  # and once caught up, a repeat costs Slack nothing
    assert len(local_slack.calls) == before + 2


def test_the_minute_check_catches_up_a_thread_with_no_step_left(local_slack):
    incident_id = _revert_while_slack_starts_refusing(local_slack)
    _later_invocation(local_slack)

    step_handler({"action": "check"}, LambdaContext(function_name="fireline-step"))

    *_, earlier = _thread(local_slack, incident_id)
    assert "2 " + CAUGHT_UP in earlier["text"]
    assert _runtime.fireline().store.get(incident_id).slack_behind is None


def test_a_catch_up_slack_still_refuses_keeps_the_mark(local_slack):
    incident_id = _revert_while_slack_starts_refusing(local_slack)
    marked = _runtime.fireline().store.get(incident_id).slack_behind
    _runtime.fireline.cache_clear()  # a new invocation, but Slack still refuses
    before = len(local_slack.calls)

    handler(_alarm(), CONTEXT)

    assert _runtime.fireline().store.get(incident_id).slack_behind == marked
    assert [c.status for c in local_slack.calls[before:]] == [429]
    assert len(_thread(local_slack, incident_id)) == 1 + 2, "the thread is as it was"


def test_two_invocations_catching_up_at_once_post_the_catch_up_once(local_slack):
    """Both read the incident while it was behind; the mark is cleared by one write that
    only one of them wins, before either posts."""
    from fireline.app import Fireline
    from fireline.config import Settings

    incident_id = _revert_while_slack_starts_refusing(local_slack)
    local_slack.lift_rate_limit()
    first, second = Fireline(Settings.from_env()), Fireline(Settings.from_env())
    stale = first.store.get(incident_id)

    first.recorder.catch_up(stale)
    second.recorder.catch_up(stale)

    caught_up = [m for m in _thread(local_slack, incident_id) if CAUGHT_UP in m["text"]]
    assert len(caught_up) == 1
