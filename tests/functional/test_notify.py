"""Notifiers through their public API: the real slack_sdk WebClient against a local Slack."""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Callable

import pytest
from slack_sdk.http_retry import ConnectionErrorRetryHandler
from slack_sdk.http_retry.builtin_handlers import ServerErrorRetryHandler

from fireline.config import Settings
from fireline.errors import ConfigurationError
from fireline.incidents import SlackThread, TimelineEntry
from fireline.notify import (
    QUIET_AFTER_OUTAGE_SECONDS,
    BoundedRateLimitRetryHandler,
    ConsoleNotifier,
    Notifier,
    Shown,
    SlackNotifier,
    build_notifier,
)
from tests.support.incidents import make_incident

ALIAS = "arn:aws:lambda:us-east-1:123456789012:function:checkout:live"
CHANGE = {"resource": ALIAS, "attribute": "FunctionVersion", "before": "3", "after": "2"}


def steps() -> list[TimelineEntry]:
    return [
        TimelineEntry(kind="plan", text="revert alias live from version 3 to version 2",
                      data={"changes": [CHANGE]}),
        TimelineEntry(kind="execute", text="alias live now at version 2",
                      data={"changes": [CHANGE]}),
        TimelineEntry(kind="verify", text="alias live reads back version 2"),
    ]


def slack(url: str, token: str = "xoxb-valid",
          clock: Callable[[], float] = time.monotonic) -> Notifier:
    return build_notifier(Settings(slack_bot_token=token, slack_channel="#incidents",
                                   slack_api_url=url, slack_timeout_seconds=2), clock=clock)


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == "fireline.notify" and r.levelno == logging.WARNING]


def field_texts(message: dict) -> list[str]:
    return [f["text"] for block in message["blocks"] for f in block.get("fields", [])]


# --- the happy path ---------------------------------------------------------------------------


def test_parent_and_replies_share_one_thread_and_refresh_updates_the_parent(local_slack):
    notifier = slack(local_slack.base_url)
    incident = make_incident()

    thread = notifier.open(incident)
    assert thread is not None
    assert thread.channel == "C0000000001", "the channel id Slack returned, not the name"
    incident.slack = thread
    returned = [notifier.reply(incident, entry) for entry in steps()]

    assert returned == [Shown(thread, posted=True)] * 3
    messages = local_slack.thread(thread.channel, thread.ts)
    assert len(messages) == 4
    assert [m.get("thread_ts") for m in messages[1:]] == [thread.ts] * 3
    posts = local_slack.calls_to("chat.postMessage")
    assert posts[0].params["channel"] == "#incidents"
    assert "thread_ts" not in posts[0].params
    assert [p.params["thread_ts"] for p in posts[1:]] == [thread.ts] * 3

    incident.status, incident.playbook_state = "mitigated", "done"
    assert notifier.refresh(incident) is True

    [update] = local_slack.calls_to("chat.update")
    assert (update.params["channel"], update.params["ts"]) == (thread.channel, thread.ts)
    assert "*Status*\nmitigated" in field_texts(update.params)
    assert "*Playbook*\nlambda-alias-revert (done)" in field_texts(update.params)
    parent = local_slack.thread(thread.channel, thread.ts)[0]
    assert "*Status*\nmitigated" in field_texts(parent), "the stored parent is the updated one"
    assert "edited" in parent


def test_messages_are_valid_block_kit_with_a_text_fallback(local_slack):
    notifier = slack(local_slack.base_url)
    incident = make_incident()
    incident.slack = notifier.open(incident)
    notifier.reply(incident, steps()[0])

    parent, reply = (call.params for call in local_slack.calls_to("chat.postMessage"))

    assert [b["type"] for b in parent["blocks"]] == ["header", "section", "section", "context",
                                                     "actions"]
    buttons = parent["blocks"][4]["elements"]
    assert [(b["action_id"], b["value"]) for b in buttons] == [
        ("fireline_ack", "INC-20260101-abc123"), ("fireline_resolve", "INC-20260101-abc123")]
    header = parent["blocks"][0]["text"]
    assert header == {"type": "plain_text", "text": "🔥 SEV-2 · checkout-prod-errors",
                      "emoji": True}
    assert all(f["type"] == "mrkdwn" for f in parent["blocks"][1]["fields"])
    assert "*Incident*\nINC-20260101-abc123" in field_texts(parent)
    body = parent["blocks"][2]["text"]["text"]
    assert "Errors &gt;= 1 &lt;for 1 datapoint&gt;" in body, "mrkdwn's <, > and & are escaped"
    assert parent["blocks"][3]["elements"][0]["text"].startswith("opened 2026-01-01T03:00:00")
    assert parent["text"].startswith("🔥 SEV-2 · checkout-prod-errors")

    assert [b["type"] for b in reply["blocks"]] == ["section"]
    assert reply["blocks"][0]["text"]["text"].splitlines() == [
        "*plan* · revert alias live from version 3 to version 2",
        f"{ALIAS} FunctionVersion: 3 → 2",
    ]
    assert reply["text"] == "*plan* · revert alias live from version 3 to version 2"


def test_incident_channel_overrides_the_default(local_slack):
    notifier = slack(local_slack.base_url)

    default = notifier.open(make_incident())
    routed = notifier.open(make_incident(channel="#payments"))

    assert default is not None and routed is not None
    assert routed.channel != default.channel
    assert local_slack.calls_to("chat.postMessage")[1].params["channel"] == "#payments"


def test_refresh_without_a_thread_calls_nothing(local_slack):
    slack(local_slack.base_url).refresh(make_incident())

    assert local_slack.calls == []


# --- Slack misbehaving ------------------------------------------------------------------------


def test_rate_limited_once_is_retried_after_retry_after_and_delivered(local_slack, caplog):
    notifier = slack(local_slack.base_url, token="xoxb-ratelimited-once")

    thread = notifier.open(make_incident())

    assert thread is not None
    first, second = local_slack.calls
    assert (first.status, second.status) == (429, 200)
    assert second.at - first.at >= 1.0, "Retry-After: 1 is honoured"
    assert len(local_slack.thread(thread.channel, thread.ts)) == 1
    assert warnings_of(caplog) == []


def test_a_long_rate_limit_is_not_waited_for(local_slack, caplog):
    notifier = slack(local_slack.base_url, token="xoxb-ratelimited-long")

    started = time.monotonic()
    thread = notifier.open(make_incident())

    assert thread is None
    assert time.monotonic() - started < 3, "Retry-After: 30 must not hold up a mitigation"
    assert [c.status for c in local_slack.calls] == [429]
    assert warnings_of(caplog) == [
        "slack chat.postMessage failed: ratelimited (HTTP 429) (incident INC-20260101-abc123)"]


def test_server_error_is_retried_once_then_logged_not_raised(local_slack, caplog):
    notifier = slack(local_slack.base_url, token="xoxb-server-error")
    incident = make_incident()

    assert notifier.open(incident) is None

    assert [c.status for c in local_slack.calls] == [500] * 2, "one try, one retry"
    assert warnings_of(caplog) == [
        "slack chat.postMessage failed: fatal_error (HTTP 500) (incident INC-20260101-abc123)"]
    assert local_slack.threads() == {}


def test_after_an_outage_slack_is_left_alone_for_a_while_then_tried_again(local_slack,
                                                                          caplog):
    """A run posts six messages: with Slack failing, each would wait out its own failure
    before the mitigation goes on. One failure pauses Slack; the pause over, it is tried."""
    now = [1000.0]
    notifier = slack(local_slack.base_url, token="xoxb-server-error", clock=lambda: now[0])
    incident = make_incident()
    caplog.set_level(logging.INFO, logger="fireline.notify")
    assert notifier.open(incident) is None
    tried = len(local_slack.calls)

    now[0] += QUIET_AFTER_OUTAGE_SECONDS - 1
    assert notifier.paused
    assert notifier.reply(incident, steps()[0]) == Shown(None, posted=False)
    assert notifier.refresh(incident.model_copy(
        update={"slack": SlackThread(channel="C1", ts="1.0")})) is False

    assert len(local_slack.calls) == tried, "nothing sent while paused"
    skipped = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert skipped[0] == ("slack chat.postMessage skipped: it failed 29 s ago (fatal_error "
                          "(HTTP 500)); trying again in 1 s (incident INC-20260101-abc123)")
    assert skipped[1].startswith("slack chat.update skipped: it failed 29 s ago")

    now[0] += 1
    assert notifier.open(incident) is None
    assert len(local_slack.calls) == tried * 2, "the pause over, Slack is asked again"


def test_a_rate_limit_is_honoured_for_as_long_as_slack_says(local_slack):
    now = [1000.0]
    notifier = slack(local_slack.base_url, token="xoxb-ratelimited-long", clock=lambda: now[0])
    incident = make_incident()
    assert notifier.open(incident) is None  # Retry-After: 30

    now[0] += 29
    notifier.open(incident)
    assert [c.status for c in local_slack.calls] == [429]

    now[0] += 1
    notifier.open(incident)
    assert [c.status for c in local_slack.calls] == [429, 429]


@pytest.mark.parametrize("token", ["xoxb-invalid-auth", "xoxb-channel-not-found"])
def test_an_answer_that_is_not_an_outage_pauses_nothing(local_slack, token):
    notifier = slack(local_slack.base_url, token=token)
    incident = make_incident()

    notifier.open(incident)
    notifier.open(incident)

    assert len(local_slack.calls) == 2


def test_reply_with_slack_down_posts_no_orphan_reply(local_slack):
    notifier = slack(local_slack.base_url, token="xoxb-server-error")

    notifier.reply(make_incident(), steps()[0])

    assert all("thread_ts" not in c.params for c in local_slack.calls), \
        "only the parent was attempted; a reply with nowhere to go is not posted"


def test_unreachable_slack_is_logged_and_the_thread_heals_when_slack_is_back(
        local_slack, closed_port_url, caplog):
    incident = make_incident()

    assert slack(closed_port_url).open(incident) is None
    [warning] = warnings_of(caplog)
    assert warning.startswith("slack chat.postMessage failed: unreachable (")
    assert incident.slack is None

    back = slack(local_slack.base_url)
    thread, posted = back.reply(incident, steps()[0])

    assert thread is not None and posted
    parent_post, reply_post = local_slack.calls_to("chat.postMessage")
    assert "thread_ts" not in parent_post.params
    assert reply_post.params["thread_ts"] == thread.ts
    parent, reply = local_slack.thread(thread.channel, thread.ts)
    assert parent["blocks"][0]["type"] == "header"
    assert "*plan* · revert alias" in reply["text"]


@pytest.mark.parametrize(("token", "code"), [("xoxb-invalid-auth", "invalid_auth"),
                                             ("xoxb-channel-not-found", "channel_not_found")])
def test_permanent_errors_are_logged_once_and_never_retried(local_slack, caplog, token, code):
    notifier = slack(local_slack.base_url, token=token)

    assert notifier.open(make_incident()) is None

    assert len(local_slack.calls) == 1
    assert warnings_of(caplog) == [
        f"slack chat.postMessage failed: {code} (incident INC-20260101-abc123)"]


def test_failed_update_names_chat_update(local_slack, caplog):
    notifier = slack(local_slack.base_url, token="xoxb-invalid-auth")
    incident = make_incident(slack=SlackThread(channel="C0000000001", ts="1700000000.000100"))

    notifier.refresh(incident)

    assert [c.method for c in local_slack.calls] == ["chat.update"]
    assert warnings_of(caplog) == [
        "slack chat.update failed: invalid_auth (incident INC-20260101-abc123)"]


def test_update_of_an_unknown_message_is_logged(local_slack, caplog):
    notifier = slack(local_slack.base_url)
    incident = make_incident(slack=SlackThread(channel="C0000000001", ts="1.0"))

    notifier.refresh(incident)

    assert warnings_of(caplog) == [
        "slack chat.update failed: message_not_found (incident INC-20260101-abc123)"]


@pytest.mark.parametrize("token", ["xoxb-invalid-auth", "xoxb-channel-not-found",
                                   "xoxb-server-error", "xoxb-s3cr3t-7f3a9c"])
def test_the_token_never_reaches_a_log_record(local_slack, closed_port_url, caplog, token):
    caplog.set_level(logging.DEBUG)  # slack-sdk's own debug logs included
    url = closed_port_url if token == "xoxb-s3cr3t-7f3a9c" else local_slack.base_url
    notifier = slack(url, token=token)
    incident = make_incident()

    notifier.open(incident)
    notifier.reply(incident, steps()[0])
    notifier.refresh(incident.model_copy(update={"slack": SlackThread(channel="C1", ts="1.0")}))

    told = [r for r in caplog.records if r.name == "fireline.notify"]
    assert warnings_of(caplog) and len(told) == 3, "each call's failure (or skip) was logged..."
    assert token not in caplog.text, "...without the token"
    assert all(token not in str(r.args) for r in caplog.records)


def test_a_backend_crash_of_any_kind_is_logged_not_raised(caplog):
    class Broken(Notifier):
        name = "broken"

        def _post(self, channel, message, thread_ts, *, incident):
            raise RuntimeError("boom\nsecond line")

        def _update(self, channel, ts, message, *, incident):
            raise KeyError("ts")

    notifier = Broken("#incidents")
    incident = make_incident(slack=SlackThread(channel="C1", ts="1.0"))

    assert notifier.open(incident) is None
    assert notifier.reply(incident, steps()[0]) == Shown(incident.slack, posted=False)
    assert notifier.refresh(incident) is False

    assert [w.split(" (incident")[0] for w in warnings_of(caplog)] == [
        "broken post failed: RuntimeError: boom second line",
        "broken post failed: RuntimeError: boom second line",
        "broken update failed: KeyError: 'ts'",
    ]


def test_a_token_quoted_in_an_error_message_is_redacted(caplog):
    class Leaky(Notifier):
        def _post(self, channel, message, thread_ts, *, incident):
            raise ValueError("Invalid header value b'Bearer xoxb-s3cr3t\\n'")

        def _update(self, channel, ts, message, *, incident):
            raise AssertionError("not called")

        def _secrets(self):
            return ("xoxb-s3cr3t",)

    Leaky("#incidents").open(make_incident())

    [warning] = warnings_of(caplog)
    assert "xoxb-s3cr3t" not in warning
    assert "Bearer [redacted]" in warning


# --- building -------------------------------------------------------------------------------


def test_build_notifier_wires_the_web_client():
    notifier = build_notifier(Settings(slack_bot_token="xoxb-valid", slack_channel="#incidents",
                                       slack_api_url="http://127.0.0.1:9/api",
                                       slack_timeout_seconds=3))

    assert isinstance(notifier, SlackNotifier)
    assert notifier.default_channel == "#incidents"
    assert notifier.client.base_url == "http://127.0.0.1:9/api/"
    assert notifier.client.timeout == 3
    handlers = {type(h): h.max_retry_count for h in notifier.client.retry_handlers}
    assert handlers == {BoundedRateLimitRetryHandler: 2, ServerErrorRetryHandler: 1,
                        ConnectionErrorRetryHandler: 1}


def test_build_notifier_defaults_to_slack_com():
    notifier = build_notifier(Settings(slack_bot_token="xoxb-valid", slack_channel="#incidents"))

    assert isinstance(notifier, SlackNotifier)
    assert notifier.client.base_url == "https://slack.com/api/"


def test_build_notifier_without_a_token_prints_to_the_console():
    assert isinstance(build_notifier(Settings()), ConsoleNotifier)


def test_build_notifier_refuses_a_token_without_a_channel():
    with pytest.raises(ConfigurationError, match="FIRELINE_SLACK_CHANNEL"):
        build_notifier(Settings(slack_bot_token="xoxb-valid"))


def test_build_notifier_strips_a_pasted_newline_from_the_token(local_slack):
    notifier = slack(local_slack.base_url, token="xoxb-valid\n")

    assert notifier.open(make_incident()) is not None
    assert local_slack.calls[0].token == "xoxb-valid"


# --- console --------------------------------------------------------------------------------


def test_console_prints_the_thread_and_only_new_statuses():
    out = io.StringIO()
    notifier = ConsoleNotifier(stream=out)
    incident = make_incident()

    thread = notifier.open(incident)
    incident.slack = thread
    notifier.reply(incident, steps()[0])
    notifier.reply(incident, TimelineEntry(kind="approval", actor="alice", text="approved"))
    notifier.refresh(incident)  # same status: nothing new to say
    printed_before_change = out.getvalue()
    incident.status, incident.playbook_state = "mitigated", "done"
    notifier.refresh(incident)
    notifier.refresh(incident)

    assert thread == SlackThread(channel="console", ts="INC-20260101-abc123")
    lines = out.getvalue().splitlines()
    assert lines[0] == "🔥 SEV-2 · checkout-prod-errors"
    assert set(lines[1]) == {"═"}
    assert "  Status       open" in lines
    assert "  Playbook     lambda-alias-revert (pending)" in lines
    assert "  Incident     INC-20260101-abc123" in lines
    assert "  Account      123456789012" in lines
    assert "  └ *plan* · revert alias live from version 3 to version 2" in lines
    assert f"    {ALIAS} FunctionVersion: 3 → 2" in lines
    assert "  └ *approval* · approved" in lines
    assert "    by alice" in lines
    assert "status now" not in printed_before_change
    assert [line for line in lines if "status now" in line] == [
        "  ⟳ INC-20260101-abc123 status now mitigated (playbook lambda-alias-revert (done))"]


def test_console_reply_without_a_thread_prints_the_parent_first():
    out = io.StringIO()

    thread, posted = ConsoleNotifier(stream=out).reply(make_incident(), steps()[2])

    assert thread == SlackThread(channel="console", ts="INC-20260101-abc123") and posted
    lines = out.getvalue().splitlines()
    assert lines[0] == "🔥 SEV-2 · checkout-prod-errors"
    assert lines[-1] == "  └ *verify* · alias live reads back version 2"


def test_local_slack_renders_a_thread_as_text(local_slack):
    notifier = slack(local_slack.base_url)
    incident = make_incident()
    incident.slack = notifier.open(incident)
    notifier.reply(incident, steps()[1])

    text = local_slack.render_thread(incident.slack.channel, incident.slack.ts)

    assert "🔥 SEV-2 · checkout-prod-errors" in text
    assert "Status: open" in text
    assert "Errors >= 1 <for 1 datapoint>" in text, "entities are unescaped for reading"
    assert "  └ *execute* · alias live now at version 2" in text
    assert f"    {ALIAS} FunctionVersion: 3 → 2" in text


def test_local_slack_answers_like_slack(local_slack):
    from slack_sdk import WebClient
    from slack_sdk.errors import SlackApiError

    client = WebClient(token="xoxb-valid", base_url=local_slack.base_url, retry_handlers=[])

    assert client.auth_test()["team_id"] == "T0000000001"
    with pytest.raises(SlackApiError) as unknown:
        client.api_call("chat.unknownThing")
    with pytest.raises(SlackApiError) as no_auth:
        WebClient(base_url=local_slack.base_url).api_call("auth.test")
    first = client.chat_postMessage(channel="#incidents", text="one")
    second = client.chat_postMessage(channel="incidents", text="two")

    assert unknown.value.response["error"] == "unknown_method"
    assert no_auth.value.response["error"] == "not_authed"
    assert first["channel"] == second["channel"] == "C0000000001"
    assert float(second["ts"]) > float(first["ts"])
    assert local_slack.request_counts() == {"auth.test": 2, "chat.unknownThing": 1,
                                            "chat.postMessage": 2}


def test_local_slack_limits_posting_per_channel_as_slack_does(local_slack):
    from slack_sdk import WebClient
    from slack_sdk.errors import SlackApiError

    client = WebClient(token="xoxb-valid", base_url=local_slack.base_url, retry_handlers=[])
    local_slack.limit_each_channel(per_second=0.5, burst=2)

    client.chat_postMessage(channel="#incidents", text="one")
    client.chat_postMessage(channel="#incidents", text="two")
    with pytest.raises(SlackApiError) as refused:
        client.chat_postMessage(channel="#incidents", text="three")
    client.chat_postMessage(channel="#elsewhere", text="another channel's own limit")

    assert refused.value.response.status_code == 429
    assert refused.value.response.headers["Retry-After"] == "2", "a message every 2 s"
    assert [c.status for c in local_slack.calls] == [200, 200, 429, 200]


def test_messages_held_for_an_action_are_posted_in_order_even_when_the_run_raised(
        app, local_slack):
    """A run that dies while Slack waits for its action: what it recorded still reaches
    the thread, in order, the thread is saved on the incident, and nothing stays held."""
    incident = app.store.create(make_incident(incident_id="INC-20261124-held01"))
    at = incident.opened_at

    with pytest.raises(RuntimeError), \
            app.recorder.slack_after_the_action(incident.incident_id):
        incident = app.recorder.opened(incident, TimelineEntry(kind="opened", text="opened",
                                                               at=at))
        incident = app.recorder.note(incident, TimelineEntry(kind="plan", text="the plan",
                                                             at=at))
        assert local_slack.calls == [], "held until the action"
        raise RuntimeError("the driver died")

    [(channel, ts)] = list(local_slack.threads())
    thread = local_slack.thread(channel, ts)
    assert [message.get("thread_ts") for message in thread] == [None, ts]
    assert "the plan" in str(thread[1])
    assert app.store.get(incident.incident_id).slack == SlackThread(channel=channel, ts=ts)

    app.recorder.note(app.store.get(incident.incident_id),
                      TimelineEntry(kind="note", text="later", at=at))
    assert len(local_slack.thread(channel, ts)) == 3, "posted at once: nothing held any more"
