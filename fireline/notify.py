"""Notifiers: the incident thread in Slack, or on the console when no Slack is configured.

The public API lives in `Notifier` and never raises: Slack is a view of the incident
record, and a Slack outage must never stop a mitigation. Backends fill two methods,
`_post` and `_update` (Powertools' persistence layers work the same way).
"""

from __future__ import annotations

import logging
import sys
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import NamedTuple, TextIO, TypeVar
from urllib.error import URLError

from pydantic import BaseModel, ConfigDict
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry import (
    ConnectionErrorRetryHandler,
    FixedValueRetryIntervalCalculator,
    HttpRequest,
    HttpResponse,
    RateLimitErrorRetryHandler,
    RetryHandler,
    RetryState,
)
from slack_sdk.http_retry.builtin_handlers import ServerErrorRetryHandler
from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

from fireline.config import Settings
from fireline.errors import ConfigurationError
from fireline.incidents import Incident, SlackThread, TimelineEntry
from fireline.messages import (
    FIELD_LIMIT,
    HEADER_LIMIT,
    SECTION_LIMIT,
    Message,
    parent_message,
    reply_message,
    truncate,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

# A 5xx or a dropped connection is retried once, soon: the notifier runs between the steps
# of a mitigation, and slack-sdk's default backoff (up to 1.5 s) would delay the revert.
_RETRY_PAUSE_SECONDS = 0.2
_MAX_FIELDS_PER_SECTION = 10  # Block Kit's limit
# What Slack answers when the app may not upload files (no files:write, a token type that
# cannot, a workspace that forbids it): the thread says so, it is not a failure.
NOT_PERMITTED = frozenset({"missing_scope", "not_allowed", "not_allowed_token_type",
                           "no_permission", "restricted_action", "ekm_access_denied"})


class Attachment(BaseModel):
    """A file for the thread (a metric's chart)."""

    model_config = ConfigDict(frozen=True)

    filename: str
    title: str
    content: bytes


class Upload(BaseModel):
    """How an upload went: posted, or why not (`permitted` False: Slack refused the app)."""

    model_config = ConfigDict(frozen=True)

    posted: bool
    permitted: bool = True
    reason: str = ""


class Shown(NamedTuple):
    """How a reply went: the thread in use (None: no parent message yet), and whether the
    reply itself reached Slack (a thread can exist while one of its replies is refused)."""

    thread: SlackThread | None
    posted: bool


# After Slack failed in a way the next call would repeat, slowly (unreachable, timing out,
# 5xx after the retry), the notifier stays quiet this long: a run posts six messages, and
# the mitigation must not wait out a timeout before each of them.
QUIET_AFTER_OUTAGE_SECONDS = 30.0
# A rate limit is waited out as Slack asks (Retry-After), within reason.
MAX_QUIET_SECONDS = 300.0


class Notifier(ABC):
    """Posts an incident's parent message, its timeline replies, and keeps the parent current.

    Subclasses implement `_post` and `_update`; they may raise anything, the public methods
    log it as one warning line and carry on. After an outage or a rate limit they skip
    Slack for a while (one info line each), then try again: the thread heals then.
    """

    #: Logged as the first word of a failure ("slack chat.postMessage failed: ...").
    name = "notifier"
    post_method = "post"
    update_method = "update"

    def __init__(self, default_channel: str, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.default_channel = default_channel
        self._clock = clock
        self._quiet_until = 0.0
        self._failed_at = 0.0
        self._last_failure: float | None = None  # any failure, an answer such as invalid_auth too
        self._quiet_because = ""

    # --- public API: never raises ---------------------------------------------------------

    def open(self, incident: Incident) -> SlackThread | None:
        """Post the parent message; the thread reference, or None when posting failed."""
        return self._guard(self.post_method, incident, lambda: self._post(
            self._channel(incident), parent_message(incident), None, incident=incident))

    def reply(self, incident: Incident, entry: TimelineEntry) -> Shown:
        """Post `entry` in the incident's thread: the thread reference in use, and whether
        the reply made it.

        With no thread yet (Slack was down when the incident opened), the parent is posted
        first; its reference is returned even if the reply itself then fails, so the caller
        can remember it (and note that the thread is behind).
        """
        thread = incident.slack or self.open(incident)
        if thread is None:
            return Shown(None, posted=False)
        posted = self._guard(self.post_method, incident, lambda: self._post(
            thread.channel, reply_message(incident, entry), thread.ts, incident=incident))
        return Shown(thread, posted=posted is not None)

    def upload(self, incident: Incident, entry: TimelineEntry,
               attachment: Attachment) -> tuple[SlackThread | None, Upload]:
        """Post `attachment` in the incident's thread with `entry` as its comment.

        Never raises, like the rest: the thread in use, and how it went, so the caller can
        note a refusal (the app may not upload files) in words instead.
        """
        thread = incident.slack or self.open(incident)
        if thread is None:
            return None, Upload(posted=False, reason="no thread to post in")
        if self._quiet("files.upload", incident):
            return thread, Upload(posted=False,
                                  reason=f"Slack failed moments ago ({self._quiet_because})")
        try:
            self._upload(thread, reply_message(incident, entry), attachment,
                         incident=incident)
        except Exception as exc:  # anything: Slack must never stop a mitigation
            self._pause_after(exc)
            reason = self._describe(exc)
            permitted = _slack_error(exc) not in NOT_PERMITTED
            needed = _slack_needed(exc)
            if needed:
                reason += f" (the app needs {needed})"
            log.log(logging.WARNING if permitted else logging.INFO,
                    "%s file upload failed: %s (incident %s)", self.name, reason,
                    incident.incident_id)
            return thread, Upload(posted=False, permitted=permitted, reason=reason)
        return thread, Upload(posted=True)

    def refresh(self, incident: Incident) -> bool:
        """Update the parent message to the incident's current state; False when Slack did
        not take it (no thread: nothing to update, True)."""
        thread = incident.slack
        if thread is None:
            return True

        def update() -> bool:
            self._update(thread.channel, thread.ts, parent_message(incident),
                         incident=incident)
            return True

        return self._guard(self.update_method, incident, update) is not None

    @property
    def paused(self) -> bool:
        """Slack is being left alone after an outage or a rate limit (nothing logged)."""
        return self._quiet_until > self._clock()

    def failed_within(self, seconds: float) -> bool:
        """A call failed in the last `seconds`, whatever the failure (invalid_auth too)."""
        return self._last_failure is not None and self._clock() - self._last_failure < seconds

    # --- for backends ---------------------------------------------------------------------

    @abstractmethod
    def _post(self, channel: str, message: Message, thread_ts: str | None, *,
              incident: Incident) -> SlackThread:
        """Post `message` (in thread `thread_ts` if given); where it landed.

        Returns a thread reference rather than a bare ts: Slack answers with the channel's
        id, which chat.update needs, even when the post named the channel. `incident` is
        there for backends that keep per-incident state (the console's last status).
        """

    @abstractmethod
    def _update(self, channel: str, ts: str, message: Message, *, incident: Incident) -> None:
        """Replace the message at `channel`/`ts` with `message`."""

    def _upload(self, thread: SlackThread, message: Message, attachment: Attachment, *,
                incident: Incident) -> None:
        """Post `attachment` in `thread`, `message` as its comment (optional for backends)."""
        raise NotImplementedError(f"{self.name} cannot post files")

    def _secrets(self) -> tuple[str, ...]:
        """Strings that must never reach a log line (scrubbed from error descriptions)."""
        return ()

    # --- plumbing -------------------------------------------------------------------------

    def _channel(self, incident: Incident) -> str:
        return incident.channel or self.default_channel

    def _guard(self, method: str, incident: Incident, call: Callable[[], T]) -> T | None:
        if self._quiet(method, incident):
            return None
        try:
            return call()
        except Exception as exc:  # anything: Slack must never stop a mitigation
            log.warning("%s %s failed: %s (incident %s)", self.name, method,
                        self._describe(exc), incident.incident_id)
            self._pause_after(exc)
            return None

    def _quiet(self, method: str, incident: Incident) -> bool:
        left = self._quiet_until - self._clock()
        if left <= 0:
            return False
        log.info("%s %s skipped: it failed %.0f s ago (%s); trying again in %.0f s "
                 "(incident %s)", self.name, method, self._clock() - self._failed_at,
                 self._quiet_because, left, incident.incident_id)
        return True

    def _pause_after(self, exc: BaseException) -> None:
        """Stay quiet for as long as the failure says it will last; not at all after one
        that a next call would not repeat slowly (an answer such as invalid_auth)."""
        self._last_failure = self._clock()
        seconds = pause_for(exc)
        if seconds:
            self._failed_at = self._clock()
            self._quiet_until = self._failed_at + seconds
            self._quiet_because = self._describe(exc)

    def _describe(self, exc: BaseException) -> str:
        try:
            text = describe_error(exc)
        except Exception:  # an exception whose str() fails must not escape either
            text = type(exc).__name__
        for secret in self._secrets():
            if secret:
                text = text.replace(secret, "[redacted]")
        return text


def pause_for(exc: BaseException) -> float | None:
    """How long Slack should be left alone after `exc`: Retry-After for a rate limit, a
    fixed pause for an outage (5xx, timeout, unreachable), None for an answer."""
    if isinstance(exc, SlackApiError):
        status = getattr(exc.response, "status_code", None) or 200
        if status == 429:
            # slack-sdk keeps an error's headers as a dict of strings.
            headers = getattr(exc.response, "headers", None) or {}
            retry_after = next((value for name, value in headers.items()
                                if name.lower() == "retry-after"), None)
            try:
                seconds = float(retry_after) if retry_after is not None else 1.0
            except ValueError:
                seconds = QUIET_AFTER_OUTAGE_SECONDS
            return min(max(seconds, 1.0), MAX_QUIET_SECONDS)
        return QUIET_AFTER_OUTAGE_SECONDS if status >= 500 else None
    if isinstance(exc, (TimeoutError, URLError, ConnectionError)):
        return QUIET_AFTER_OUTAGE_SECONDS
    return None


def _slack_error(exc: BaseException) -> str | None:
    """Slack's `error` code of a failed call, if it was Slack that answered."""
    if isinstance(exc, SlackApiError) and isinstance(getattr(exc.response, "data", None), dict):
        return exc.response.data.get("error")
    return None


def _slack_needed(exc: BaseException) -> str | None:
    """The scope Slack says a refused call needs (`missing_scope` answers name it)."""
    if isinstance(exc, SlackApiError) and isinstance(getattr(exc.response, "data", None), dict):
        return exc.response.data.get("needed")
    return None


def describe_error(exc: BaseException) -> str:
    """A one-line error code for a log: Slack's `error`, else the failure's kind."""
    if isinstance(exc, SlackApiError):
        response = exc.response
        status = getattr(response, "status_code", None)
        code = None
        if isinstance(getattr(response, "data", None), dict):
            code = response.data.get("error")
        code = code or ("ratelimited" if status == 429 else "unknown_error")
        return code if status in (None, 200) else f"{code} (HTTP {status})"
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, URLError):
        return f"unreachable ({exc.reason})"
    detail = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__


class SlackNotifier(Notifier):
    """The incident thread in Slack: Block Kit messages, the parent kept current."""

    name = "slack"
    post_method = "chat.postMessage"
    update_method = "chat.update"

    def __init__(self, client: WebClient, channel: str, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(channel, clock=clock)
        self.client = client

    def _post(self, channel: str, message: Message, thread_ts: str | None, *,
              incident: Incident) -> SlackThread:
        response = self.client.chat_postMessage(
            channel=channel, thread_ts=thread_ts, text=_escape(message.text),
            blocks=[block.to_dict() for block in blocks(message)])
        # Slack answers with the channel id even when the post named "#incidents".
        return SlackThread(channel=str(response["channel"]), ts=str(response["ts"]))

    def _update(self, channel: str, ts: str, message: Message, *, incident: Incident) -> None:
        self.client.chat_update(
            channel=channel, ts=ts, text=_escape(message.text),
            blocks=[block.to_dict() for block in blocks(message)])

    def _upload(self, thread: SlackThread, message: Message, attachment: Attachment, *,
                incident: Incident) -> None:
        # files_upload_v2: getUploadURLExternal, the bytes to that URL, then
        # completeUploadExternal shares the file in the thread (needs files:write).
        self.client.files_upload_v2(
            channel=thread.channel, thread_ts=thread.ts, file=attachment.content,
            filename=attachment.filename, title=attachment.title,
            initial_comment=_escape("\n".join(message.lines) or message.text))

    def _secrets(self) -> tuple[str, ...]:
        return (self.client.token,) if self.client.token else ()


def blocks(message: Message) -> list[Block]:
    """`message` as Block Kit: header, fields, body, small print; each within Slack's limits."""
    out: list[Block] = []
    if message.title:
        out.append(HeaderBlock(text=PlainTextObject(text=truncate(message.title, HEADER_LIMIT),
                                                    emoji=True)))
    fields = [MarkdownTextObject(text=truncate(f"*{_escape(label)}*\n{_escape(value)}",
                                               FIELD_LIMIT))
              for label, value in message.fields]
    for start in range(0, len(fields), _MAX_FIELDS_PER_SECTION):
        out.append(SectionBlock(fields=fields[start:start + _MAX_FIELDS_PER_SECTION]))
    if message.lines:
        out.append(SectionBlock(text=MarkdownTextObject(
            text=truncate(_escape("\n".join(message.lines)), SECTION_LIMIT))))
    if message.context:
        out.append(ContextBlock(elements=[MarkdownTextObject(
            text=truncate(_escape(message.context), SECTION_LIMIT))]))
    if message.buttons:
        out.append(ActionsBlock(elements=[
            ButtonElement(text=PlainTextObject(text=button.label), action_id=button.action_id,
                          value=button.value, style=button.style)
            for button in message.buttons]))
    return out


def _escape(text: str) -> str:
    # The three characters Slack's mrkdwn reserves for links and mentions: an alarm reason
    # with "<" must show as text, not become a broken link.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class ConsoleNotifier(Notifier):
    """The same thread as text on a stream: for local runs and when Slack is not configured."""

    name = "console"
    post_method = "print"
    update_method = "print"

    def __init__(self, stream: TextIO | None = None) -> None:
        super().__init__("console")
        # Resolved late, so pytest's capsys and redirected streams are honoured.
        self._stream = stream
        self._last_status: dict[str, str] = {}

    @property
    def stream(self) -> TextIO:
        # stderr: the thread is progress for a person; stdout stays for results (--json).
        return self._stream or sys.stderr

    def _post(self, channel: str, message: Message, thread_ts: str | None, *,
              incident: Incident) -> SlackThread:
        if thread_ts is None:
            self._print_parent(message)
            self._last_status[incident.incident_id] = incident.status
        else:
            self._print_reply(message)
        return SlackThread(channel="console", ts=incident.incident_id)

    def _update(self, channel: str, ts: str, message: Message, *, incident: Incident) -> None:
        # A full reprint per step would drown the thread; only a new status is news.
        if self._last_status.get(incident.incident_id) == incident.status:
            return
        self._last_status[incident.incident_id] = incident.status
        playbook = dict(message.fields).get("Playbook", "none")
        self._write(f"  ⟳ {incident.incident_id} status now {incident.status} "
                    f"(playbook {playbook})")

    def _upload(self, thread: SlackThread, message: Message, attachment: Attachment, *,
                incident: Incident) -> None:
        # A terminal shows no picture: say what Slack would show, and its size.
        self._print_reply(message)
        self._write(f"    [{attachment.filename}: {len(attachment.content):,} bytes, "
                    "shown in Slack]")

    def _print_parent(self, message: Message) -> None:
        width = max(len(message.title), 40)
        label_width = max((len(label) for label, _ in message.fields), default=0)
        out = [message.title, "═" * width]
        out += [f"  {label:<{label_width}}  {value}" for label, value in message.fields]
        out += [f"  {line}" for line in message.lines]
        if message.context:
            out.append(f"  {message.context}")
        self._write("\n".join(out))

    def _print_reply(self, message: Message) -> None:
        first, *rest = message.lines or [message.text]
        out = [f"  └ {first}", *(f"    {line}" for line in rest)]
        if message.context:
            out.append(f"    {message.context}")
        out += [f"    [{button.label}] {button.command}" for button in message.buttons]
        self._write("\n".join(out))

    def _write(self, text: str) -> None:
        print(text, file=self.stream, flush=True)


def build_notifier(settings: Settings, *,
                   clock: Callable[[], float] = time.monotonic) -> Notifier:
    """Slack when a bot token is configured, else the console. `clock` times the pauses
    after an outage."""
    if settings.slack_bot_token is None:
        return ConsoleNotifier()
    if not settings.slack_channel:
        raise ConfigurationError(
            "SLACK_BOT_TOKEN is set but FIRELINE_SLACK_CHANNEL is not: "
            "set the channel Fireline posts incidents to")
    # A secret pasted with a trailing newline would otherwise fail in http.client with an
    # error message that quotes the whole header, token included.
    token = settings.slack_bot_token.get_secret_value().strip()
    base_url = settings.slack_api_url or WebClient.BASE_URL
    if not base_url.endswith("/"):
        base_url += "/"
    client = WebClient(token=token, base_url=base_url,
                       timeout=settings.slack_timeout_seconds,  # type: ignore[arg-type]  # float is fine
                       retry_handlers=retry_handlers())
    return SlackNotifier(client, settings.slack_channel, clock=clock)


# A thread reply may wait this long for Slack's rate limit to pass, no longer: the
# notifier runs between the steps of a mitigation, and Slack must never hold one up.
MAX_RATE_LIMIT_WAIT_SECONDS = 3


class BoundedRateLimitRetryHandler(RateLimitErrorRetryHandler):
    """slack-sdk's rate-limit retry, but only when Slack asks for a short wait."""

    def _can_retry(self, *, state: RetryState, request: HttpRequest,
                   response: HttpResponse | None = None,
                   error: Exception | None = None) -> bool:
        if not super()._can_retry(state=state, request=request, response=response,
                                  error=error):
            return False
        assert response is not None
        retry_after = next((values[0] for name, values in response.headers.items()
                            if name.lower() == "retry-after" and values), "1")
        try:
            return int(retry_after) <= MAX_RATE_LIMIT_WAIT_SECONDS
        except ValueError:
            return False


def retry_handlers() -> list[RetryHandler]:
    """What is worth retrying: rate limits (as Slack says), 5xx once, a dropped connection once.

    Answers like invalid_auth or channel_not_found come as HTTP 200 with ok=false; none of
    these handlers looks at those, so they are never retried (a retry cannot fix them).
    """
    pause = FixedValueRetryIntervalCalculator(fixed_internal=_RETRY_PAUSE_SECONDS)
    return [
        BoundedRateLimitRetryHandler(max_retry_count=2),
        ServerErrorRetryHandler(max_retry_count=1, interval_calculator=pause),
        ConnectionErrorRetryHandler(max_retry_count=1, interval_calculator=pause),
    ]

