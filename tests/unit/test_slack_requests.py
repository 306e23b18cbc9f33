"""`fireline.slack_requests`: HTTP events in, verified Slack commands and clicks out. No AWS.

Signed requests are built here with an HMAC computed independently of slack_sdk, so the
verifier is checked against the algorithm, not against itself. Tests that read the shared
corpus (Slack's documented signing example among them) skip when it is absent.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from pydantic import SecretStr

from fireline.errors import (
    ConfigurationError,
    FirelineError,
    InvalidRequest,
    SlackSignatureInvalid,
)
from fireline.slack_requests import (
    ButtonClick,
    HttpRequest,
    SlackVerifier,
    SlashCommand,
    http_request_from_event,
    parse_slack_request,
)
from tests.support.events import load_event, requires_corpus

SECRET = "test-signing-secret-0123456789abcdef"
NOW = 1_700_000_000
FORM = "application/x-www-form-urlencoded"
# A slash command as Slack encodes it: `+` is a space, `%2B` a plus, `%2F` a slash.
COMMAND_BODY = (b"token=legacy&team_id=T0001&team_domain=example&channel_id=C0001"
                b"&channel_name=incidents&user_id=U0001&user_name=alice&command=%2Ffireline"
                b"&text=undo+inc-42+c%2B%2B&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands"
                b"%2FT0001%2F1%2Fabc&trigger_id=111.222.333")


def sign(body: bytes, timestamp: int | str = NOW, secret: str = SECRET) -> str:
    base = b"v0:" + str(timestamp).encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def signed_headers(body: bytes, timestamp: int | str = NOW) -> dict[str, str]:
    return {"X-Slack-Request-Timestamp": str(timestamp), "X-Slack-Signature": sign(body, timestamp),
            "Content-Type": FORM}


def request(body: bytes = COMMAND_BODY, headers: dict[str, str] | None = None) -> HttpRequest:
    headers = signed_headers(body) if headers is None else headers
    return HttpRequest(method="POST", path="/slack", body=body, source="function-url",
                       headers={k.lower(): v for k, v in headers.items()})


def verifier(clock: float = NOW, **kwargs: Any) -> SlackVerifier:
    return SlackVerifier(SECRET, clock=lambda: clock, **kwargs)


def refusal(verifier_: SlackVerifier, req: HttpRequest) -> str:
    with pytest.raises(SlackSignatureInvalid) as caught:
        verifier_.verify(req)
    return caught.value.reason


# --- events built here: the three front doors ----------------------------------------------


def _body_fields(body: bytes, encode: bool) -> dict[str, Any]:
    if encode:
        return {"body": base64.b64encode(body).decode(), "isBase64Encoded": True}
    return {"body": body.decode("utf-8"), "isBase64Encoded": False}


def function_url_event(body: bytes, headers: dict[str, str], *, encode: bool) -> dict[str, Any]:
    return {
        "version": "2.0", "routeKey": "$default", "rawPath": "/slack/commands",
        "rawQueryString": "", "headers": headers,
        "requestContext": {"accountId": "anonymous",
                           "domainName": "abc123.lambda-url.eu-west-1.on.aws",
                           "http": {"method": "POST", "path": "/slack/commands"}},
        **_body_fields(body, encode),
    }


def http_api_event(body: bytes, headers: dict[str, str], *, encode: bool) -> dict[str, Any]:
    event = function_url_event(body, headers, encode=encode)
    event["requestContext"] = {"accountId": "123456789012",
                               "domainName": "api1.execute-api.eu-west-1.amazonaws.com",
                               "http": {"method": "POST", "path": "/slack/commands"}}
    return event


def rest_api_event(body: bytes, headers: dict[str, str], *, encode: bool) -> dict[str, Any]:
    return {
        "resource": "/slack/commands", "path": "/slack/commands", "httpMethod": "POST",
        "headers": headers, "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "requestContext": {"accountId": "123456789012", "stage": "prod"},
        **_body_fields(body, encode),
    }


BUILDERS = {"function-url": function_url_event, "apigw-v2": http_api_event,
            "apigw-v1": rest_api_event}


@pytest.mark.parametrize("encode", [True, False], ids=["base64", "plain"])
@pytest.mark.parametrize("source", list(BUILDERS))
def test_each_front_door_yields_the_signed_bytes_and_verifies(source: str, encode: bool):
    headers = {"X-SLACK-Request-Timestamp": str(NOW), "x-Slack-Signature": sign(COMMAND_BODY),
               "Content-Type": FORM, "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)"}
    req = http_request_from_event(BUILDERS[source](COMMAND_BODY, headers, encode=encode))

    assert req.source == source
    assert (req.method, req.path) == ("POST", "/slack/commands")
    assert req.body == COMMAND_BODY
    assert req.headers["x-slack-request-timestamp"] == str(NOW)
    assert req.header("X-Slack-Signature") == sign(COMMAND_BODY)
    assert all(name == name.lower() for name in req.headers)
    verifier().verify(req)
    assert isinstance(parse_slack_request(req), SlashCommand)


@pytest.mark.parametrize("source", list(BUILDERS))
def test_base64_bodies_are_not_reencoded_even_when_they_are_not_text(source: str):
    raw = bytes(range(256))
    req = http_request_from_event(BUILDERS[source](raw, {}, encode=True))
    assert req.body == raw


def test_rest_api_repeated_headers_are_joined_so_a_second_signature_fails():
    headers = signed_headers(COMMAND_BODY)
    event = rest_api_event(COMMAND_BODY, headers, encode=False)
    forged = "v0=" + "0" * 64
    event["multiValueHeaders"]["X-Slack-Signature"] = [sign(COMMAND_BODY), forged]
    event["headers"]["X-Slack-Signature"] = forged  # API Gateway keeps the last one here

    req = http_request_from_event(event)

    assert req.headers["x-slack-signature"] == f"{sign(COMMAND_BODY)},{forged}"
    assert "v0=<64" in refusal(verifier(), req)


def test_header_names_differing_only_in_case_are_one_header():
    event = function_url_event(b"", {"Accept": "a", "accept": "b"}, encode=False)
    assert http_request_from_event(event).headers == {"accept": "a,b"}


def test_missing_or_null_body_and_headers_are_empty():
    event = function_url_event(b"", {}, encode=False)
    del event["body"], event["isBase64Encoded"]
    event["headers"] = None
    req = http_request_from_event(event)
    assert (req.body, req.headers) == (b"", {})


def test_v2_without_raw_path_falls_back_to_the_http_path():
    event = http_api_event(b"", {}, encode=False)
    del event["rawPath"]
    assert http_request_from_event(event).path == "/slack/commands"


def _set(event: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    *parents, last = path.split(".")
    target = event
    for key in parents:
        target = target[key]
    target[last] = value
    return event


@pytest.mark.parametrize(("build", "path", "value", "field"), [
    (function_url_event, "body", "not base64!", "body"),
    (function_url_event, "body", "abc", "body"),  # bad padding
    (rest_api_event, "body", "é===", "body"),
    (function_url_event, "body", 42, "body"),
    (function_url_event, "body", "\ud800", "body"),
    (function_url_event, "isBase64Encoded", "true", "isBase64Encoded"),
    (function_url_event, "headers", ["x-slack-signature"], "headers"),
    (function_url_event, "headers", {"x-slack-signature": 1}, "headers.x-slack-signature"),
    (function_url_event, "requestContext", None, "requestContext"),
    (function_url_event, "requestContext.http", "POST", "requestContext.http"),
    (function_url_event, "requestContext.http.method", "", "requestContext.http.method"),
    (function_url_event, "rawPath", 7, "rawPath"),
    (rest_api_event, "httpMethod", None, "httpMethod"),
    (rest_api_event, "path", None, "path"),
    (rest_api_event, "version", "2.0", "version"),
    (rest_api_event, "multiValueHeaders", {"Accept": "a"}, "multiValueHeaders.Accept"),
    (rest_api_event, "multiValueHeaders", {"Accept": [None]}, "multiValueHeaders.Accept"),
])
def test_broken_http_events_are_refused_naming_the_field(build, path, value, field):
    encode = path == "body" and isinstance(value, str) and value != "\ud800"
    event = _set(build(b"x=1", {"Accept": "*/*"}, encode=encode), path, value)
    if path == "body" and encode:
        event["isBase64Encoded"] = True
    with pytest.raises(InvalidRequest) as caught:
        http_request_from_event(event)
    assert caught.value.field == field
    assert field.split(".")[-1] in caught.value.message


@pytest.mark.parametrize(("event", "field"), [
    ("not an event", "event"),
    (None, "event"),
    ({"Records": []}, "httpMethod"),
    ({"version": "1.0", "rawPath": "/"}, "httpMethod"),
    ({"version": "2.0", "rawPath": "/"}, "requestContext"),
])
def test_events_that_are_not_http_are_refused(event, field):
    with pytest.raises(InvalidRequest) as caught:
        http_request_from_event(event)
    assert caught.value.field == field


# --- the signature ---------------------------------------------------------------------------


def test_a_request_signed_with_the_secret_verifies_and_one_changed_byte_does_not():
    verifier().verify(request())

    for position in (0, len(COMMAND_BODY) // 2, len(COMMAND_BODY) - 1):
        tampered = bytearray(COMMAND_BODY)
        tampered[position] ^= 0x01
        req = request(bytes(tampered), signed_headers(COMMAND_BODY))
        assert refusal(verifier(), req) == "signature does not match the body and timestamp"


def test_a_signature_for_another_timestamp_or_secret_does_not_verify():
    moved = {**signed_headers(COMMAND_BODY), "X-Slack-Request-Timestamp": str(NOW + 1)}
    assert "does not match" in refusal(verifier(), request(headers=moved))

    other = SlackVerifier("another-secret", clock=lambda: NOW)
    assert "does not match" in refusal(other, request())


@pytest.mark.parametrize("missing", ["X-Slack-Request-Timestamp", "X-Slack-Signature"])
def test_a_missing_header_is_named(missing: str):
    headers = signed_headers(COMMAND_BODY)
    del headers[missing]
    assert refusal(verifier(), request(headers=headers)) == f"missing header {missing.lower()}"


@pytest.mark.parametrize("timestamp", [
    "", "soon", "1700000000.5", " 1700000000", "1_700_000_000", "-1700000000",
    "\u0661\u0667\u0660\u0660\u0660\u0660\u0660\u0660\u0660\u0660",  # int() would take these
])
def test_a_timestamp_that_is_not_an_integer_is_refused(timestamp: str):
    headers = {**signed_headers(COMMAND_BODY), "X-Slack-Request-Timestamp": timestamp}
    reason = refusal(verifier(), request(headers=headers))
    assert "x-slack-request-timestamp" in reason
    assert "not an integer" in reason


@pytest.mark.parametrize("signature", [
    "", "a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503",
    "v1=" + "a" * 64, "v0=" + "A" * 64, "v0=" + "a" * 63, "v0=" + "é" * 64,
])
def test_a_signature_not_in_slack_form_is_refused(signature: str):
    headers = {**signed_headers(COMMAND_BODY), "X-Slack-Signature": signature}
    assert "v0=<64 lower-case hex digits>" in refusal(verifier(), request(headers=headers))


@pytest.mark.parametrize("offset", [-300, 0, 299, 300])
def test_a_timestamp_within_five_minutes_either_way_verifies(offset: int):
    verifier(clock=NOW + offset).verify(request())


def test_a_stale_timestamp_is_refused():
    reason = refusal(verifier(clock=NOW + 301), request())
    assert "301 s old" in reason
    assert "stale or replayed" in reason


def test_a_future_timestamp_is_refused():
    reason = refusal(verifier(clock=NOW - 301), request())
    assert "301 s in the future" in reason


def test_a_replayed_request_is_refused_once_outside_the_window():
    clock = {"now": float(NOW)}
    check = SlackVerifier(SECRET, clock=lambda: clock["now"])
    captured = request()

    check.verify(captured)
    clock["now"] += 120
    check.verify(captured)  # inside the window a replay cannot be told apart
    clock["now"] += 181
    assert "stale or replayed" in refusal(check, captured)


def test_a_shorter_window_can_be_asked_for():
    verifier(clock=NOW + 60, max_age_seconds=60).verify(request())
    assert "61 s old" in refusal(verifier(clock=NOW + 61, max_age_seconds=60), request())


def test_a_broken_clock_refuses_rather_than_accepts():
    assert "clock" in refusal(verifier(clock=float("nan")), request())


def test_the_signature_covers_raw_utf8_bytes_exactly():
    body = "command=%2Ffireline&text=Úspěšně obsazena ✓".encode()
    verifier().verify(request(body))


def test_a_body_that_is_not_utf8_is_refused_even_if_signed():
    body = b"command=%2Ffireline&text=\xff\xfe"
    assert "not UTF-8" in refusal(verifier(), request(body))


def test_the_verifier_accepts_a_secret_str():
    SlackVerifier(SecretStr(SECRET), clock=lambda: NOW).verify(request())


@pytest.mark.parametrize("secret", ["", "   "])
def test_an_empty_secret_is_a_configuration_error(secret: str):
    with pytest.raises(ConfigurationError, match="empty"):
        SlackVerifier(secret)


@pytest.mark.parametrize("max_age", [0, -1, 301, 3600])
def test_the_window_cannot_be_widened_past_slacks_five_minutes(max_age: int):
    with pytest.raises(ValueError, match="max_age_seconds"):
        SlackVerifier(SECRET, max_age_seconds=max_age)


def test_the_secret_never_shows_in_repr_errors_or_logs(caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.DEBUG)
    check = verifier()
    assert SECRET not in repr(check)
    assert SECRET not in str(check)
    assert "**********" in repr(check)

    bad_requests = [
        request(headers={"X-Slack-Signature": sign(COMMAND_BODY)}),
        request(headers={"X-Slack-Request-Timestamp": str(NOW)}),
        request(headers={**signed_headers(COMMAND_BODY), "X-Slack-Request-Timestamp": SECRET}),
        request(headers={**signed_headers(COMMAND_BODY), "X-Slack-Signature": SECRET}),
        request(b"tampered", signed_headers(COMMAND_BODY)),
        request(b"\xff", signed_headers(b"\xff")),
    ]
    seen: list[FirelineError] = []
    for req in bad_requests:
        with pytest.raises(SlackSignatureInvalid) as caught:
            check.verify(req)
        seen.append(caught.value)
    for clock in (NOW + 301, NOW - 301):
        with pytest.raises(SlackSignatureInvalid) as caught:
            verifier(clock=clock).verify(request())
        seen.append(caught.value)

    assert len({error.reason for error in seen}) == len(seen)  # each check says which it is
    for error in seen:
        text = " ".join([str(error), repr(error), error.reason, json.dumps(error.to_dict())])
        assert SECRET not in text
        assert SECRET[:8] not in text  # header content is never quoted, not even in part
    assert SECRET not in caplog.text


# --- Slack payloads built here -------------------------------------------------------------------


def form_request(body: bytes, content_type: str | None = FORM) -> HttpRequest:
    headers = {"content-type": content_type} if content_type else {}
    return HttpRequest(method="POST", path="/slack", headers=headers, body=body,
                       source="apigw-v2")


def click_payload(**changes: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "type": "block_actions",
        "user": {"id": "U0002", "username": "bob", "name": "bob", "team_id": "T0001"},
        "container": {"type": "message", "message_ts": "1700000000.000100",
                      "channel_id": "C0001"},
        "channel": {"id": "C0001", "name": "incidents"},
        "trigger_id": "444.555.666",
        "response_url": "https://hooks.slack.com/actions/T0001/1/xyz",
        "actions": [{"action_id": "approve", "block_id": "x++GR", "value": "inc-42+run-1",
                     "type": "button", "action_ts": "1700000001.000200"}],
    }
    for key, value in changes.items():
        if value is None:
            payload.pop(key, None)
        else:
            payload[key] = value
    return payload


def payload_body(payload: Any) -> bytes:
    text = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
    return b"payload=" + quote(text, safe="").encode()


def test_a_slash_command_is_read_with_plus_as_space_and_percent_escapes_undone():
    command = parse_slack_request(form_request(COMMAND_BODY))

    assert command == SlashCommand(
        command="/fireline", text="undo inc-42 c++", user_id="U0001", user_name="alice",
        channel_id="C0001", channel_name="incidents", team_id="T0001",
        response_url="https://hooks.slack.com/commands/T0001/1/abc", trigger_id="111.222.333")
    with pytest.raises(Exception, match="frozen"):
        command.text = "other"  # type: ignore[misc]


def test_a_slash_command_with_only_the_required_fields_gets_defaults():
    body = urlencode({"command": "/fireline", "user_id": "U1", "channel_id": "C1",
                      "team_id": "T1", "response_url": "https://hooks.slack.com/x"}).encode()
    command = parse_slack_request(form_request(body))
    assert (command.text, command.user_name, command.channel_name, command.trigger_id) == (
        "", "", "", "")


def test_a_button_click_takes_the_first_action_and_keeps_a_plus():
    payload = click_payload()
    payload["actions"].append({"action_id": "reject", "value": "other"})

    click = parse_slack_request(form_request(payload_body(payload)))

    assert click == ButtonClick(
        action_id="approve", value="inc-42+run-1", user_id="U0002", user_name="bob",
        channel_id="C0001", message_ts="1700000000.000100",
        response_url="https://hooks.slack.com/actions/T0001/1/xyz", trigger_id="444.555.666")


def test_a_button_click_outside_a_channel_message_gets_defaults():
    payload = click_payload(channel=None, container={"type": "view", "view_id": "V1"},
                            response_url=None)
    payload["user"] = {"id": "U0002", "name": "bob"}  # no username: the older field name
    click = parse_slack_request(form_request(payload_body(payload)))
    assert (click.channel_id, click.message_ts, click.response_url, click.user_name) == (
        "", "", "", "bob")


def test_the_channel_and_message_come_from_the_container_or_the_message():
    payload = click_payload(channel=None, container={"type": "message_attachment",
                                                     "channel_id": "C0009"},
                            message={"ts": "1700000000.000900", "text": "hi"})
    click = parse_slack_request(form_request(payload_body(payload)))
    assert (click.channel_id, click.message_ts) == ("C0009", "1700000000.000900")


def test_a_missing_content_type_is_tolerated_for_a_form_body():
    assert isinstance(parse_slack_request(form_request(COMMAND_BODY, None)), SlashCommand)


def test_a_content_type_with_a_charset_is_still_a_form():
    request_ = form_request(COMMAND_BODY, "Application/X-WWW-Form-Urlencoded; charset=utf-8")
    assert isinstance(parse_slack_request(request_), SlashCommand)


def _refused(req: HttpRequest) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as caught:
        parse_slack_request(req)
    return caught.value


def _command_without(field: str) -> bytes:
    fields = {"command": "/fireline", "user_id": "U1", "channel_id": "C1", "team_id": "T1",
              "response_url": "https://hooks.slack.com/x"}
    del fields[field]
    return urlencode(fields).encode()


@pytest.mark.parametrize("field", ["user_id", "channel_id", "team_id", "response_url"])
def test_a_slash_command_missing_a_required_field_names_it(field: str):
    error = _refused(form_request(_command_without(field)))
    assert error.field == field
    assert f"{field} is missing" in error.message


@pytest.mark.parametrize(("body", "field"), [
    (b"command=&user_id=U1&channel_id=C1&team_id=T1&response_url=x", "command"),
    (b"command=fireline&user_id=U1&channel_id=C1&team_id=T1&response_url=x", "command"),
    (b"command=%2Ffireline&user_id=&channel_id=C1&team_id=T1&response_url=x", "user_id"),
    (b"command=%2Ffireline&command=%2Fother&user_id=U1", "command"),
    (b"command=%2Ffireline&payload=%7B%7D", "payload"),
    (b"text=hello&user_id=U1", "command"),
    (b"", "command"),
    (b"command=%2Ffireline&&user_id=U1", "body"),
    (b"text=%FF%FE", "body"),
    (b"text=\xff", "body"),
    (b"&".join(b"f%d=1" % i for i in range(101)), "body"),
])
def test_bad_form_bodies_are_refused_naming_the_field(body: bytes, field: str):
    assert _refused(form_request(body)).field == field


def test_a_json_body_is_not_a_slack_request():
    assert _refused(form_request(b'{"command": "/fireline"}', "application/json")).field == (
        "content-type")
    assert _refused(form_request(b'{"command": "/fireline"}', None)).field == "body"


@pytest.mark.parametrize(("payload", "field"), [
    ("{not json", "payload"),
    ("[1, 2]", "payload"),
    ('"block_actions"', "payload"),
    (click_payload(type="view_submission"), "payload.type"),
    (click_payload(type=None), "payload.type"),
    (click_payload(actions=[]), "payload.actions"),
    (click_payload(actions=None), "payload.actions"),
    (click_payload(actions="approve"), "payload.actions"),
    (click_payload(actions=["approve"]), "payload.actions[0]"),
    (click_payload(actions=[{"value": "inc-42"}]), "payload.actions[0].action_id"),
    (click_payload(actions=[{"action_id": "approve"}]), "payload.actions[0].value"),
    (click_payload(actions=[{"action_id": "approve", "value": 42}]),
     "payload.actions[0].value"),
    (click_payload(user=None), "payload.user"),
    (click_payload(user={"username": "bob"}), "payload.user.id"),
    (click_payload(user={"id": "U1"}), "payload.user.username"),
    (click_payload(trigger_id=None), "payload.trigger_id"),
])
def test_bad_interaction_payloads_are_refused_naming_the_field(payload: Any, field: str):
    error = _refused(form_request(payload_body(payload)))
    assert error.field == field
    assert field in error.message or field.replace("payload.", "") in error.message


# --- the shared corpus -------------------------------------------------------------------------


def _docs_vector() -> dict[str, Any]:
    return load_event("slack/signing_vector_slack_docs.json")


@requires_corpus
def test_slacks_documented_example_verifies_at_its_own_timestamp():
    vector = _docs_vector()
    body = vector["body"].encode()
    assert sign(body, vector["x_slack_request_timestamp"], vector["signing_secret"]) == (
        vector["expected_x_slack_signature"])  # the vector and this test's HMAC agree
    req = request(body, {"X-Slack-Request-Timestamp": vector["x_slack_request_timestamp"],
                         "X-Slack-Signature": vector["expected_x_slack_signature"]})
    check = SlackVerifier(vector["signing_secret"],
                          clock=lambda: vector["clock_for_replay_check_epoch_seconds"])

    check.verify(req)

    changed = request(body.replace(b"roadrunner", b"roadrunnes"), dict(req.headers))
    assert "does not match" in refusal(check, changed)


@requires_corpus
@pytest.mark.parametrize(("source", "encode"), [
    ("apigw-v1", False), ("apigw-v1", True), ("apigw-v2", True), ("function-url", False)])
def test_slacks_documented_request_through_each_front_door(source: str, encode: bool):
    vector = _docs_vector()
    documented = load_event("slack/slash_command_signed_request_slack_docs.json")
    body = documented["body"].encode()
    event = BUILDERS[source](body, documented["headers"], encode=encode)
    req = http_request_from_event(event)
    check = SlackVerifier(vector["signing_secret"], clock=lambda: 1531420618)

    check.verify(req)
    command = parse_slack_request(req)

    assert command == SlashCommand(
        command="/webhook-collect", text="", user_id="U2CERLKJA", user_name="roadrunner",
        channel_id="G8PSS9T3V", channel_name="foobar", team_id="T1DC2JH3J",
        response_url="https://hooks.slack.com/commands/T1DC2JH3J/397700885554/"
                     "96rGlfmibIGlgcZRskXaIFfN",
        trigger_id="398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c")
    assert vector["signing_secret"] not in repr(check)


@requires_corpus
def test_the_derived_function_url_event_is_valid_then_stale():
    event = load_event("derived/function_url_slack_slash_command_base64_DERIVED.json")
    secret = _docs_vector()["signing_secret"]
    req = http_request_from_event(event)

    assert req.source == "function-url"
    assert req.body == _docs_vector()["body"].encode()
    SlackVerifier(secret, clock=lambda: 1531420618).verify(req)
    reason = refusal(SlackVerifier(secret, clock=lambda: 1531420618 + 301), req)
    assert "stale or replayed" in reason


@requires_corpus
@pytest.mark.parametrize(("name", "source", "method", "path", "body"), [
    ("apigw_v1_rest_proxy_powertools.json", "apigw-v1", "GET", "/my/path",
     b"Hello from Lambda!"),
    ("apigw_v2_http_api_get_lambda_go.json", "apigw-v2", "GET", "/", b""),
    ("apigw_v2_http_api_powertools.json", "apigw-v2", "POST", "/my/path",
     b'{"message": "hello world", "username": "tom"}'),
    ("function_url_get_powertools.json", "function-url", "GET", "/", b""),
    ("function_url_post_iam_lambda_go.json", "function-url", "POST", "/my/path",
     b"Hello from client!"),
    ("function_url_post_iam_powertools.json", "function-url", "POST", "/my/path",
     b"Hello from client!"),
    ("sam_rendered_AwsProxy_defaults.json", "apigw-v1", "POST", "/path/to/resource",
     b'{"test":"body"}'),
    ("sam_rendered_HttpApi_defaults.json", "apigw-v2", "POST", "/path/to/resource",
     b'{"test":"body"}'),
])
def test_corpus_http_events_are_read(name, source, method, path, body):
    req = http_request_from_event(load_event(f"http_events/{name}"))
    assert (req.source, req.method, req.path, req.body) == (source, method, path, body)
    assert all(key == key.lower() for key in req.headers)


@requires_corpus
def test_corpus_rest_api_repeated_header_is_joined_and_v2_keeps_its_join():
    v1 = http_request_from_event(load_event("http_events/apigw_v1_rest_proxy_powertools.json"))
    v2 = http_request_from_event(load_event("http_events/apigw_v2_http_api_powertools.json"))
    assert v1.headers["header2"] == "value1,value2"
    assert v1.headers["origin"] == "https://aws.amazon.com"
    assert v2.headers["header2"] == "value1,value2"


@requires_corpus
@pytest.mark.parametrize("name", ["sam_template_AwsProxy.mustache.json",
                                  "sam_template_HttpApi.mustache.json"])
def test_corpus_templates_with_a_placeholder_body_are_refused(name: str):
    with pytest.raises(InvalidRequest) as caught:
        http_request_from_event(load_event(f"http_events/{name}"))
    assert caught.value.field == "body"


@requires_corpus
def test_corpus_slash_command_field_example():
    documented = load_event("slack/slash_command_docs_field_example.json")
    fields = dict(documented["fields_in_order"])
    command = parse_slack_request(form_request(urlencode(fields).encode()))
    assert (command.command, command.text, command.user_id, command.team_id) == (
        "/weather", "94070", "U2147483697", "T0001")
    assert command.response_url == "https://hooks.slack.com/commands/1234/5678"


@requires_corpus
def test_corpus_block_actions_docs_example_and_its_derived_form_body():
    payload = load_event("slack/block_actions_docs_example.json")
    derived = load_event("derived/block_actions_docs_example_form_body_DERIVED.json")
    expected = ButtonClick(
        action_id="WaXA", value="click_me_123", user_id="UA8RXUSPL", user_name="jtorrance",
        channel_id="CBR2V3XEX", message_ts="1548261231.000200",
        response_url="https://hooks.slack.com/actions/AABA1ABCD/1232321423432/"
                     "D09sSasdasdAS9091209",
        trigger_id="12321423423.333649436676.d8c1bb837935619ccad0f624c448ffb3")

    assert parse_slack_request(form_request(payload_body(payload))) == expected
    assert parse_slack_request(
        form_request(derived["body"].encode(), derived["content_type"])) == expected


@requires_corpus
def test_corpus_block_kit_builder_preview_without_channel():
    payload = load_event("slack/block_actions_block_kit_builder_preview_cesko_digital.json")
    click = parse_slack_request(form_request(payload_body(payload)))
    assert (click.action_id, click.value, click.user_id, click.user_name) == (
        "qpu7a", "click_me_123", "UJJ3MNA91", "tomas.znamenacek")
    assert (click.channel_id, click.message_ts) == ("", "")
    assert click.trigger_id == "12466734323.1395872398"
