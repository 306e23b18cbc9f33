"""A Slack thread that missed replies catches up.

Slack's rate limit (about a message a second per channel) or an outage can refuse a reply
after the thread's parent made it: the notifier then leaves Slack alone for as long as
Slack asked. The incident is marked `slack_behind`, and the next post, a later delivery of
the alarm or the minute's check posts what the thread missed as one reply and brings the
parent up to date. Each test is a new invocation (`_runtime.fireline.cache_clear()`) once
Slack answers again, as a later Lambda invocation would be.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from fireline import aws
from fireline.local.lambda_context import LambdaContext
from fireline.local.lambda_fixture import deploy_versions
from fireline.local.payloads import sns_lambda_errors_event
from handlers import _runtime
from handlers.alarm import handler
from handlers.step import handler as step_handler
from tests.support.runs import Crash

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


def test_incidents_show_says_the_thread_is_behind_and_which_entries_it_lacks(local_slack,
                                                                             capsys):
    from fireline.cli import main

    incident_id = _revert_while_slack_starts_refusing(local_slack)
    capsys.readouterr()

    assert main(["incidents", "show", incident_id]) == 0

    shown = capsys.readouterr().out
    assert "behind since" in shown and "(2 updates not shown)" in shown
    lacking = [line.split()[2] for line in shown.splitlines() if line.startswith("   *")]
    assert lacking == ["verify", "watch"], shown


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


def test_a_parent_slack_would_not_update_is_caught_up_alone_after_the_reply(local_slack):
    """Slack takes the catch-up's reply, then refuses the parent's update: the next catch-up
    updates the parent and posts nothing the reply already showed."""
    incident_id = _revert_while_slack_starts_refusing(local_slack)
    _later_invocation(local_slack)
    local_slack.rate_limit(retry_after=30, after=1)  # the reply passes; the update does not

    handler(_alarm(), CONTEXT)

    behind = _runtime.fireline().store.get(incident_id)
    assert behind.slack_behind is not None and behind.slack_missed == [], "the parent alone"
    _later_invocation(local_slack)
    before = len(local_slack.calls)

    step_handler({"action": "check"}, LambdaContext(function_name="fireline-step"))

    assert [c.method for c in local_slack.calls[before:]] == ["chat.update"]
    parent, *replies = _thread(local_slack, incident_id)
    assert sum(CAUGHT_UP in reply["text"] for reply in replies) == 1, "the reply once"
    assert "lambda-alias-revert (done)" in str(parent["blocks"])
    assert _runtime.fireline().store.get(incident_id).slack_behind is None


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


def _dies_posting(monkeypatch: pytest.MonkeyPatch, app: Any, method: str) -> None:
    """`app`'s process dies as its notifier is about to send `method` (Lambda's timeout,
    say): nothing after it runs, not even a `finally` of Fireline's."""

    def die(*_: Any, **__: Any) -> Any:
        raise Crash(f"killed before {method}")

    monkeypatch.setattr(app.notifier, method, die)


def test_a_catch_up_whose_process_died_before_posting_is_posted_by_the_next_after_its_hold(
        local_slack, monkeypatch):
    from fireline.app import Fireline
    from fireline.config import Settings
    from fireline.timeline import CATCH_UP_LEASE

    incident_id = _revert_while_slack_starts_refusing(local_slack)
    local_slack.lift_rate_limit()
    now = datetime.now(UTC)
    dying = Fireline(Settings.from_env(), clock=lambda: now)
    _dies_posting(monkeypatch, dying, "reply")

    with pytest.raises(Crash):
        dying.recorder.catch_up(dying.store.get(incident_id))

    held = dying.store.get(incident_id)
    assert held.slack_behind is not None and len(held.slack_missed) == 2, "the mark stays on"
    soon = Fireline(Settings.from_env(), clock=lambda: now + CATCH_UP_LEASE / 2)
    soon.recorder.catch_up(soon.store.get(incident_id))
    assert len(_thread(local_slack, incident_id)) == 1 + 2, \
        "while held, another invocation cannot tell a dead holder from a slow one"

    after = Fireline(Settings.from_env(), clock=lambda: now + CATCH_UP_LEASE)
    after.recorder.catch_up(after.store.get(incident_id))

    *_, earlier = _thread(local_slack, incident_id)
    assert "2 " + CAUGHT_UP in earlier["text"], "verify and watch: nothing lost"
    caught_up = after.store.get(incident_id)
    assert caught_up.slack_behind is None and caught_up.slack_missed == []
    assert caught_up.slack_catching_up_until is None


def test_the_minute_check_goes_past_a_catch_up_a_dead_invocation_holds(local_slack,
                                                                       monkeypatch):
    from fireline.app import Fireline
    from fireline.config import Settings

    local_slack.rate_limit(retry_after=30)
    ids = [handler(sns_lambda_errors_event(function_name=name, alarm_name=f"{name}-errors",
                                           tags={"fireline:playbook": "none"}),
                   CONTEXT)["incidents"][0]["incident_id"] for name in ("older", "newer")]
    local_slack.lift_rate_limit()
    store = _runtime.fireline().store
    assert all(store.get(i).slack is None and store.get(i).slack_behind for i in ids)
    dying = Fireline(Settings.from_env())
    _dies_posting(monkeypatch, dying, "open")
    with pytest.raises(Crash):
        dying.recorder.catch_up(dying.store.get(ids[1]))
    _runtime.fireline.cache_clear()

    step_handler({"action": "check"}, LambdaContext(function_name="fireline-step"))

    older, newer = (store.get(i) for i in ids)
    assert older.slack is not None and older.slack_behind is None, "caught up"
    assert newer.slack is None and newer.slack_behind is not None, "left to its holder"


def test_a_thread_whose_parent_never_made_it_heals_at_the_next_delivery(local_slack,
                                                                        monkeypatch):
    """Slack down while the incident opened: the mark says the parent was tried and
    missed, so a later delivery posts it, then everything the thread missed."""
    deploy_versions(aws.client, FUNCTION, versions=3)
    local_slack.rate_limit(retry_after=30)
    [incident] = handler(_alarm(), CONTEXT)["incidents"]
    stored = _runtime.fireline().store.get(incident["incident_id"])
    assert stored.slack is None and stored.slack_behind is not None
    _later_invocation(local_slack)

    handler(_alarm(), CONTEXT)

    parent, earlier = _thread(local_slack, incident["incident_id"])
    assert parent["blocks"][0]["type"] == "header" and "thread_ts" not in parent
    assert "4 " + CAUGHT_UP in earlier["text"], "plan, execute, verify, watch"
    assert _runtime.fireline().store.get(incident["incident_id"]).slack_behind is None


def test_a_parent_held_for_its_action_is_not_posted_by_another_delivery(local_slack):
    """No thread and no mark: the opener holds the parent until its action has run, so a
    delivery handled meanwhile elsewhere must not post a second parent."""
    deploy_versions(aws.client, FUNCTION, versions=3)
    [incident] = handler(_alarm(), CONTEXT)["incidents"]
    store = _runtime.fireline().store

    def as_while_held(current):
        current.slack, current.slack_behind = None, None
        return current

    store.update(incident["incident_id"], as_while_held)
    before = len(local_slack.calls)

    handler(_alarm(), CONTEXT)

    assert len(local_slack.calls) == before


def test_entries_recorded_while_behind_wait_for_the_catch_up_in_order(local_slack):
    """The thread never shows a newer reply before the ones it missed, nor one twice: while
    a catch-up fails, new entries wait on the timeline for the catch-up that carries them."""
    incident_id = _revert_while_slack_starts_refusing(local_slack)
    _runtime.fireline.cache_clear()  # a new invocation; Slack still refuses
    before = len(local_slack.calls)

    handler(_alarm(state="OK", old_state="ALARM"), CONTEXT)

    assert [c.status for c in local_slack.calls[before:]] == [429], \
        "the catch-up was tried; the resolution's own reply waits for it"
    _later_invocation(local_slack)
    step_handler({"action": "check"}, LambdaContext(function_name="fireline-step"))

    parent, _plan, _execute, earlier = _thread(local_slack, incident_id)
    missed = str(earlier["blocks"])
    kinds = [e.kind for e in _runtime.fireline().store.timeline(incident_id)]
    waited = kinds[kinds.index("verify"):]
    assert f"{len(waited)} {CAUGHT_UP}" in earlier["text"]
    positions = [missed.index(f"Z {kind} · ") for kind in waited]
    assert positions == sorted(positions), "in the order they happened"
    assert "resolved" in str(parent["blocks"])


def test_the_minute_check_catches_up_a_bounded_number_of_threads(local_slack, monkeypatch):
    """Slack takes about a message a second per channel: one check leaves most of a
    minute's messages to live incidents."""
    from fireline import app as app_module

    monkeypatch.setattr(app_module, "CATCH_UPS_PER_CHECK", 2)
    deploy_versions(aws.client, FUNCTION, versions=3)
    local_slack.rate_limit(retry_after=30)
    names = [f"quiet-{n}" for n in range(3)]
    for name in names:  # no playbook: the parent, then the alarm's context (off here)
        handler(sns_lambda_errors_event(function_name=name, alarm_name=f"{name}-errors",
                                        tags={"fireline:playbook": "none"}), CONTEXT)
    store = _runtime.fireline().store
    assert sum(1 for i in store.list() if i.slack_behind is not None) == 3
    _later_invocation(local_slack)

    step_handler({"action": "check"}, LambdaContext(function_name="fireline-step"))
    assert sum(1 for i in store.list() if i.slack_behind is not None) == 1
    step_handler({"action": "check"}, LambdaContext(function_name="fireline-step"))
    assert all(i.slack is not None and i.slack_behind is None for i in store.list())


def test_a_storm_in_a_rate_limited_channel_ends_with_every_thread_whole(local_slack):
    """Slack's own limit refuses most of a storm's posts (here a message every 5 s per
    channel, bursts of two: longer than slack-sdk may wait, so none is retried), and
    parents and replies go missing. The incidents and the reverts are whole regardless;
    once the limit has passed, the minute's checks bring every thread up to date, with no
    reply twice."""
    from tests.support.runs import deliver_at_once

    local_slack.limit_each_channel(per_second=0.2, burst=2)
    events = []
    for n in range(4):
        deploy_versions(aws.client, f"storm-{n}", versions=3)
        events += [sns_lambda_errors_event(function_name=f"storm-{n}",
                                           alarm_name=f"storm-{n}-prod-errors")] * 2
    deliver_at_once(handler, events, CONTEXT)
    store = _runtime.fireline().store
    assert {i.status for i in store.list()} == {"mitigating"} and len(store.list()) == 4
    assert any(call.status == 429 for call in local_slack.calls), "the limit was met"
    assert any(i.slack_behind is not None for i in store.list()), "threads missed posts"
    local_slack.limit_each_channel(per_second=100, burst=100)  # the storm has passed

    for _ in range(10):
        if all(i.slack is not None and i.slack_behind is None for i in store.list()):
            break
        _runtime.fireline.cache_clear()  # the next minute's invocation
        step_handler({"action": "check"}, LambdaContext(function_name="fireline-step"))

    for incident in store.list():
        assert incident.slack is not None and incident.slack_behind is None
        shown = local_slack.render_thread(incident.slack.channel, incident.slack.ts)
        for entry in store.timeline(incident.incident_id):
            if entry.kind != "opened":
                assert shown.count(entry.text) == 1, (entry.text, shown)


def test_a_catch_up_posts_what_slack_missed_not_what_another_invocation_posted_since(
        local_slack):
    """Another invocation, holding the incident as it was before the thread fell behind,
    posts its own entry: the catch-up carries the missed entry alone, nothing twice."""
    from fireline.app import Fireline
    from fireline.config import Settings
    from fireline.incidents import TimelineEntry

    deploy_versions(aws.client, FUNCTION, versions=3)
    [opened] = handler(_alarm(), CONTEXT)["incidents"]
    incident_id = opened["incident_id"]
    first, second, third = (Fireline(Settings.from_env()) for _ in range(3))
    before_the_refusal = first.store.get(incident_id)

    local_slack.rate_limit(retry_after=30)
    first.recorder.note(first.store.get(incident_id), TimelineEntry(
        kind="note", actor="alice", text="missed: the deploy pipeline is paused"))
    local_slack.lift_rate_limit()
    second.recorder.note(before_the_refusal, TimelineEntry(
        kind="note", actor="bob", text="posted: customers see errors again"))
    third.recorder.catch_up(third.store.get(incident_id))

    shown = local_slack.render_thread(*_where(incident_id))
    assert "1 " + CAUGHT_UP.replace("updates", "update") in shown
    assert shown.count("missed: the deploy pipeline is paused") == 1
    assert shown.count("posted: customers see errors again") == 1
    assert third.store.get(incident_id).slack_behind is None


def _where(incident_id: str) -> tuple[str, str]:
    stored = _runtime.fireline().store.get(incident_id)
    assert stored.slack is not None
    return stored.slack.channel, stored.slack.ts


def test_repeats_after_a_failed_catch_up_leave_slack_alone_for_a_while(local_slack,
                                                                       monkeypatch,
                                                                       aws_calls):
    """A token Slack refuses for good (invalid_auth) is not a pause, so without a back-off
    each repeat of a storm would try the catch-up again: a Query, two writes and a Slack
    call apiece. After the first failure, the process leaves it to later."""
    incident_id = _revert_while_slack_starts_refusing(local_slack)
    local_slack.lift_rate_limit()
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-invalid-auth")
    _runtime.fireline.cache_clear()
    before = len(local_slack.calls)

    handler(_alarm(), CONTEXT)
    aws_calls.clear()
    for _ in range(3):
        handler(_alarm(), CONTEXT)

    assert [c.status for c in local_slack.calls[before:]] == [200], \
        "one catch-up tried (invalid_auth comes as HTTP 200), none after it"
    assert aws_calls["dynamodb.GetItem"] >= 3, "the repeats were counted"
    assert aws_calls["dynamodb.Query"] == 0, "no timeline read for a catch-up"
    assert _runtime.fireline().store.get(incident_id).slack_behind is not None
