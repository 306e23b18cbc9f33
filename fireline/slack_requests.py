"""Slack over HTTP: a Lambda HTTP event in, a verified slash command or button click out.

Three steps, in this order, each with its own typed refusal:

1. `http_request_from_event` reads a Function URL, API Gateway REST (v1) or HTTP API (v2)
   event into an `HttpRequest` holding the exact bytes Slack signed (base64 undone), with
   header names lower-cased (`InvalidRequest` naming the field for anything else).
2. `SlackVerifier.verify` checks `X-Slack-Signature` over those bytes and refuses a
   timestamp more than five minutes from the clock (`SlackSignatureInvalid(reason)`).
3. `parse_slack_request` form-decodes the verified body into a `SlashCommand` or a
   `ButtonClick` (`InvalidRequest` naming the field).

Never parse before verifying: form-decoding and re-encoding does not give back the signed
bytes (`+` versus `%2B`, see shared/events/QUIRKS.md 18-20).

`slack_secrets` reads the signing secret and bot token from the environment or from one
Secrets Manager secret, cached by Powertools Parameters. No secret value ever appears in
an error, a log line or a repr.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import math
import os
import re
import time
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Annotated, Any, Literal, TypeVar
from urllib.parse import parse_qsl

from aws_lambda_powertools.utilities.parameters import SecretsProvider
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError
from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError
from slack_sdk.signature import Clock, SignatureVerifier

from fireline import aws
from fireline.errors import ConfigurationError, InvalidRequest, SlackSignatureInvalid
from fireline.problems import first_problem, show_value

log = logging.getLogger(__name__)

HttpSource = Literal["function-url", "apigw-v1", "apigw-v2"]

TIMESTAMP_HEADER = "x-slack-request-timestamp"
SIGNATURE_HEADER = "x-slack-signature"
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
# Slack's recommendation, and slack_sdk's SignatureVerifier hard-codes the same window.
MAX_AGE_SECONDS = 300

SIGNING_SECRET_ENV = "SLACK_SIGNING_SECRET"
BOT_TOKEN_ENV = "SLACK_BOT_TOKEN"
SECRET_NAME_ENV = "FIRELINE_SLACK_SECRET"
SECRET_MAX_AGE_SECONDS = 300

_TIMESTAMP = re.compile(r"[0-9]{1,12}")  # int() alone would take " 1", "1_0" and "١٢"
_SIGNATURE = re.compile(r"v0=[0-9a-f]{64}")
_MAX_FORM_FIELDS = 100  # a slash command has about 15


# --- the HTTP request --------------------------------------------------------------------


class HttpRequest(BaseModel):
    """An HTTP request as Lambda received it, whichever front door it came through.

    `headers` has lower-cased names; a header sent more than once has its values joined
    with "," in arrival order (what HTTP API v2 and Function URLs do themselves, and what
    is done here with REST API v1's `multiValueHeaders`), so a duplicated Slack header
    fails verification instead of one copy being picked. `body` is exactly the bytes the
    client sent, which are the bytes Slack signed.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    source: HttpSource

    def header(self, name: str) -> str | None:
        """A header by name, in any case."""
        return self.headers.get(name.lower())


def http_request_from_event(event: Any) -> HttpRequest:
    """A Function URL, API Gateway REST (v1 proxy) or HTTP API (v2) event -> HttpRequest.

    Dispatch: `httpMethod` means REST API v1; `version: "2.0"` with `requestContext.http`
    means payload v2.0, from a Function URL when `requestContext.domainName` is a
    `.lambda-url.` host, else from an HTTP API.
    """
    if not isinstance(event, dict):
        raise InvalidRequest(f"not an HTTP event: the event is {show_value(event)}, not an object",
                             field="event")
    if "httpMethod" in event:
        return _from_rest_v1(event)
    if event.get("version") == "2.0":
        return _from_payload_v2(event)
    raise InvalidRequest("not a Function URL or API Gateway event: no httpMethod (REST API) "
                         "and no version \"2.0\" (HTTP API, Function URL)", field="httpMethod")


def _from_rest_v1(event: dict[str, Any]) -> HttpRequest:
    if event.get("version") not in (None, "1.0"):
        raise InvalidRequest(f"version is {show_value(event.get('version'))} but the event has "
                             "httpMethod, which only REST API (1.0) events have", field="version")
    single = _headers_object(event.get("headers"), "headers")
    multi = _headers_object(event.get("multiValueHeaders"), "multiValueHeaders")
    # `headers` holds only the last value of a repeated header; `multiValueHeaders` all.
    in_multi = {name.lower() for name in multi}
    pairs = [(name, _header_text(value, f"headers.{name}"))
             for name, value in single.items() if name.lower() not in in_multi]
    for name, values in multi.items():
        if not isinstance(values, list):
            raise InvalidRequest(f"multiValueHeaders.{name} is {show_value(values)}, not a list",
                                 field=f"multiValueHeaders.{name}")
        pairs.extend((name, _header_text(value, f"multiValueHeaders.{name}"))
                     for value in values)
    return HttpRequest(
        method=_method(event.get("httpMethod"), "httpMethod"),
        path=_path(event.get("path"), "path"),
        headers=_joined(pairs),
        body=_body(event),
        source="apigw-v1",
    )


def _from_payload_v2(event: dict[str, Any]) -> HttpRequest:
    context = event.get("requestContext")
    if not isinstance(context, dict):
        raise InvalidRequest(f"requestContext is {show_value(context)}, not an object",
                             field="requestContext")
    http = context.get("http")
    if not isinstance(http, dict):
        raise InvalidRequest(f"requestContext.http is {show_value(http)}, not an object",
                             field="requestContext.http")
    headers = _headers_object(event.get("headers"), "headers")
    pairs = [(name, _header_text(value, f"headers.{name}")) for name, value in headers.items()]
    domain = context.get("domainName")
    function_url = isinstance(domain, str) and ".lambda-url." in domain
    raw_path = event.get("rawPath")
    return HttpRequest(
        method=_method(http.get("method"), "requestContext.http.method"),
        path=_path(raw_path if raw_path is not None else http.get("path"), "rawPath"),
        headers=_joined(pairs),
        body=_body(event),
        source="function-url" if function_url else "apigw-v2",
    )


def _headers_object(value: Any, field: str) -> dict[str, Any]:
    if value is None:  # absent, or null when there are none
        return {}
    if not isinstance(value, dict):
        raise InvalidRequest(f"{field} is {show_value(value)}, not an object", field=field)
    return value


def _header_text(value: Any, field: str) -> str:
    if not isinstance(value, str):
        raise InvalidRequest(f"{field} is {show_value(value)}, not text", field=field)
    return value


def _joined(pairs: list[tuple[str, str]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in pairs:
        key = name.lower()
        out[key] = f"{out[key]},{value}" if key in out else value
    return out


def _method(value: Any, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequest(f"{field} is {show_value(value)}: an HTTP request needs a method",
                             field=field)
    return value.strip().upper()


def _path(value: Any, field: str) -> str:
    if not isinstance(value, str):
        raise InvalidRequest(f"{field} is {show_value(value)}, not a path", field=field)
    return value


def _body(event: dict[str, Any]) -> bytes:
    body = event.get("body")
    encoded = event.get("isBase64Encoded", False)
    if not isinstance(encoded, bool):
        raise InvalidRequest(f"isBase64Encoded is {show_value(encoded)}, not true or false",
                             field="isBase64Encoded")
    if body is None:  # GET requests have no body key, or a null one
        return b""
    if not isinstance(body, str):
        raise InvalidRequest(f"body is {show_value(body)}, not text", field="body")
    if encoded:
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidRequest("body is flagged isBase64Encoded but is not valid base64",
                                 field="body") from None
    try:
        return body.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate from a "\ud800" escape
        raise InvalidRequest("body is not valid Unicode text", field="body") from None


# --- the signature -----------------------------------------------------------------------


class _Instant(Clock):
    """slack_sdk's clock, frozen at the one reading taken for a request."""

    def __init__(self, now: float) -> None:
        self._now = now

    def now(self) -> float:
        return self._now


class SlackVerifier:
    """Checks that a request comes from Slack: HMAC-SHA256 signature, 5-minute window.

    The clock is read once per request; both the window check here and slack_sdk's own
    `SignatureVerifier` (which computes and compares the signature) see that reading.
    """

    def __init__(
        self,
        signing_secret: str | SecretStr,
        *,
        clock: Callable[[], float] = time.time,
        max_age_seconds: int = MAX_AGE_SECONDS,
    ) -> None:
        secret = (signing_secret if isinstance(signing_secret, SecretStr)
                  else SecretStr(signing_secret))
        if not secret.get_secret_value().strip():
            raise ConfigurationError("the Slack signing secret is empty")
        if isinstance(max_age_seconds, bool) or not 0 < max_age_seconds <= MAX_AGE_SECONDS:
            # slack_sdk refuses anything older than 300 s whatever is asked here.
            raise ValueError(f"max_age_seconds must be from 1 to {MAX_AGE_SECONDS}")
        self._signing_secret = secret
        self._clock = clock
        self._max_age = max_age_seconds

    def __repr__(self) -> str:
        return f"SlackVerifier(signing_secret=**********, max_age_seconds={self._max_age})"

    def verify(self, request: HttpRequest) -> None:
        """Return if Slack signed this request within the window; else SlackSignatureInvalid."""
        timestamp = request.header(TIMESTAMP_HEADER)
        signature = request.header(SIGNATURE_HEADER)
        if timestamp is None:
            raise SlackSignatureInvalid(f"missing header {TIMESTAMP_HEADER}")
        if signature is None:
            raise SlackSignatureInvalid(f"missing header {SIGNATURE_HEADER}")
        if not _TIMESTAMP.fullmatch(timestamp):
            # Header content is never quoted: a reason must not carry what a caller sent.
            raise SlackSignatureInvalid(f"{TIMESTAMP_HEADER} ({len(timestamp)} characters) is "
                                        "not an integer number of seconds")
        if not _SIGNATURE.fullmatch(signature):
            raise SlackSignatureInvalid(f"{SIGNATURE_HEADER} is not of the form "
                                        "v0=<64 lower-case hex digits>")
        now = self._clock()
        if not math.isfinite(now):
            raise SlackSignatureInvalid(f"the clock reads {now!r}, so no window can be checked")
        age = now - int(timestamp)
        if age > self._max_age:
            raise SlackSignatureInvalid(f"timestamp {timestamp} is {age:.0f} s old, more than "
                                        f"{self._max_age} s: a stale or replayed request")
        if age < -self._max_age:
            raise SlackSignatureInvalid(f"timestamp {timestamp} is {-age:.0f} s in the future, "
                                        f"more than {self._max_age} s")
        try:
            # slack_sdk decodes bytes as UTF-8 and encodes them again before hashing: exact
            # for UTF-8 (Slack's form bodies are ASCII), an exception for anything else.
            request.body.decode("utf-8")
        except UnicodeDecodeError:
            raise SlackSignatureInvalid("body is not UTF-8, so it is not from Slack") from None
        sdk = SignatureVerifier(self._signing_secret.get_secret_value(), clock=_Instant(now))
        if not sdk.is_valid(body=request.body, timestamp=timestamp, signature=signature):
            raise SlackSignatureInvalid("signature does not match the body and timestamp")


# --- Slack payloads ----------------------------------------------------------------------


class _SlackModel(BaseModel):
    # Slack adds fields over time; only the ones Fireline reads are declared.
    model_config = ConfigDict(frozen=True, extra="ignore")


_Required = Annotated[str, Field(min_length=1)]  # present and not empty


class SlashCommand(_SlackModel):
    """A slash command (`/fireline ...`), from Slack's form fields."""

    command: str = Field(min_length=2, pattern=r"^/")
    text: str = ""
    user_id: _Required
    user_name: str = ""
    channel_id: _Required
    channel_name: str = ""
    team_id: _Required
    response_url: _Required
    trigger_id: str = ""


class ButtonClick(_SlackModel):
    """The first action of a `block_actions` interaction (a button press)."""

    action_id: _Required
    value: str
    user_id: _Required
    user_name: _Required
    channel_id: str = ""
    message_ts: str = ""
    response_url: str = ""
    trigger_id: _Required


def parse_slack_request(request: HttpRequest) -> SlashCommand | ButtonClick:
    """A VERIFIED Slack request -> its slash command or button click.

    The body is form data: a slash command has a `command` field, an interaction a single
    `payload` field holding JSON. Anything else is `InvalidRequest` naming the field.
    """
    content_type = request.header("content-type")
    if content_type is not None:
        media_type = content_type.split(";", 1)[0].strip().lower()
        if media_type != FORM_CONTENT_TYPE:
            raise InvalidRequest(f"content-type is {show_value(content_type)}; Slack sends "
                                 f"{FORM_CONTENT_TYPE}", field="content-type")
    form = _form(request.body)
    if "command" in form and "payload" in form:
        raise InvalidRequest("the form has both command and payload: neither a slash command "
                             "nor an interaction", field="payload")
    if "command" in form:
        return _validated(SlashCommand, form, "")
    if "payload" in form:
        return _button_click(form["payload"])
    raise InvalidRequest("the form has neither command (slash command) nor payload "
                         "(interaction)", field="command")


def _form(body: bytes) -> dict[str, str]:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidRequest("body is not UTF-8 text", field="body") from None
    try:
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=True, encoding="utf-8",
                          errors="strict", max_num_fields=_MAX_FORM_FIELDS)
    except UnicodeDecodeError:
        raise InvalidRequest("body has a percent-escape that is not UTF-8",
                             field="body") from None
    except ValueError:
        raise InvalidRequest(f"body is not form data ({FORM_CONTENT_TYPE}) of at most "
                             f"{_MAX_FORM_FIELDS} name=value fields", field="body") from None
    form: dict[str, str] = {}
    for name, value in pairs:
        if name in form:
            raise InvalidRequest(f"form field {name!r} appears more than once", field=name)
        form[name] = value
    return form


class _User(_SlackModel):
    id: _Required
    username: str | None = None
    name: str | None = None


class _Action(_SlackModel):
    action_id: _Required
    value: str


class _Channel(_SlackModel):
    id: str = ""


class _Container(_SlackModel):
    channel_id: str = ""
    message_ts: str = ""


class _Message(_SlackModel):
    ts: str = ""


class _Interaction(_SlackModel):
    type: str
    user: _User
    actions: list[dict[str, Any]] = Field(default_factory=list)
    channel: _Channel | None = None
    container: _Container | None = None
    message: _Message | None = None
    response_url: str = ""
    trigger_id: _Required


def _button_click(payload: str) -> ButtonClick:
    try:
        data = json.loads(payload)
    except (ValueError, RecursionError):
        raise InvalidRequest("payload is not JSON", field="payload") from None
    if not isinstance(data, dict):
        raise InvalidRequest(f"payload is {show_value(data)}, not a JSON object", field="payload")
    kind = data.get("type")
    if kind != "block_actions":
        raise InvalidRequest(f"payload.type is {show_value(kind)}; only block_actions (button "
                             "clicks) are handled", field="payload.type")
    interaction = _validated(_Interaction, data, "payload")
    if not interaction.actions:
        raise InvalidRequest("payload.actions is empty: a block_actions interaction with no "
                             "action", field="payload.actions")
    action = _validated(_Action, interaction.actions[0], "payload.actions[0]")
    user = interaction.user
    user_name = user.username or user.name
    if not user_name:
        raise InvalidRequest("payload.user.username is missing, and so is payload.user.name",
                             field="payload.user.username")
    channel, container, message = interaction.channel, interaction.container, interaction.message
    return ButtonClick(
        action_id=action.action_id,
        value=action.value,
        user_id=user.id,
        user_name=user_name,
        channel_id=(channel.id if channel else "") or (container.channel_id if container else ""),
        message_ts=(container.message_ts if container else "") or (message.ts if message else ""),
        response_url=interaction.response_url,
        trigger_id=interaction.trigger_id,
    )


_Model = TypeVar("_Model", bound=BaseModel)


def _validated(model: type[_Model], data: dict[str, Any], path: str) -> _Model:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        field, problem = first_problem(exc, path)
    raise InvalidRequest(f"{field} {problem}", field=field or None)

# --- secrets -----------------------------------------------------------------------------


class SlackSecrets(BaseModel):
    """Slack credentials; either may be None when Fireline runs without that half of Slack."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    signing_secret: SecretStr | None = None
    bot_token: SecretStr | None = None


_ENV_FOR = {"signing_secret": SIGNING_SECRET_ENV, "bot_token": BOT_TOKEN_ENV}


def slack_secrets(settings_env: Mapping[str, str] | None = None) -> SlackSecrets:
    """The signing secret and bot token: each from its environment variable if set, else
    from the JSON secret named by FIRELINE_SLACK_SECRET (read through Powertools, cached
    for 5 minutes). ConfigurationError, naming the secret but never a value, if unusable.
    """
    env = os.environ if settings_env is None else settings_env
    values: dict[str, str | None] = {}
    for key, var in _ENV_FOR.items():
        values[key] = _clean(env.get(var), var)
    name = (env.get(SECRET_NAME_ENV) or "").strip()
    missing = [key for key, value in values.items() if value is None]
    if missing and name:
        stored = _stored_secret(name)
        for key in missing:
            values[key] = _clean(stored.get(key), f"{key!r} in Slack secret {name!r}",
                                 required=True)
        log.info("Slack %s read from Secrets Manager secret %s", " and ".join(missing), name)
    return SlackSecrets(**values)


def _clean(value: Any, where: str, *, required: bool = False) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise ConfigurationError(f"{where} is missing or empty")
        return None
    if not isinstance(value, str):
        raise ConfigurationError(f"{where} is a JSON {type(value).__name__}, not a string")
    if value != value.strip():
        # A pasted newline would make every signature check fail, silently.
        raise ConfigurationError(f"{where} has leading or trailing whitespace")
    return value


@lru_cache(maxsize=1)
def _secrets_provider(client: Any) -> SecretsProvider:
    # One provider (and its cache) per boto3 client: a new client (tests, the demo) starts
    # a new cache. The client is Fireline's, so AWS_ENDPOINT_URL and moto apply.
    return SecretsProvider(boto3_client=client)


def _stored_secret(name: str) -> dict[str, Any]:
    where = f"Slack secret {name!r} ({SECRET_NAME_ENV})"
    try:
        value = _secrets_provider(aws.client("secretsmanager")).get(
            name, max_age=SECRET_MAX_AGE_SECONDS)
    except GetParameterError as exc:
        raise ConfigurationError(f"{where} cannot be read: {_aws_problem(exc)}") from None
    if not isinstance(value, str):
        raise ConfigurationError(f"{where} holds binary data, not a JSON SecretString with "
                                 "bot_token and signing_secret")
    try:
        data = json.loads(value)
    except json.JSONDecodeError as exc:
        # Position only: the decoder's own message can quote part of the text.
        raise ConfigurationError(f"{where} is not JSON (error at line {exc.lineno}, column "
                                 f"{exc.colno})") from None
    except (ValueError, RecursionError):
        raise ConfigurationError(f"{where} is not JSON") from None
    if not isinstance(data, dict):
        raise ConfigurationError(f"{where} is JSON but not an object with bot_token and "
                                 "signing_secret")
    return data


def _aws_problem(exc: GetParameterError) -> str:
    cause = exc.__cause__ or exc.__context__
    if isinstance(cause, ClientError):
        error = cause.response.get("Error", {})
        return f"{error.get('Code', 'ClientError')}: {error.get('Message', '')}".rstrip(": ")
    return type(cause).__name__ if cause is not None else "unknown error"


def reset_secrets_cache() -> None:
    """Forget cached secrets (tests; a rotated secret otherwise shows within 5 minutes)."""
    _secrets_provider.cache_clear()


# --- plumbing ----------------------------------------------------------------------------



