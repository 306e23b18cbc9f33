"""Signed Slack requests as Lambda receives them: Function URL and API Gateway events."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any
from urllib.parse import urlencode

SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
CHANNEL = "C0123INCIDENTS"
RESPONDER = "U0123ALICE"
OTHER_RESPONDER = "U0456BOB"
APPROVER = "U0789CAROL"
STRANGER = "U0999EVE"

ACCESS_POLICY = f"""
version: 1
channels: [{CHANNEL}]
responders: {{users: [{RESPONDER}, {OTHER_RESPONDER}]}}
approvers: {{users: [{APPROVER}]}}
"""


def signature(body: bytes, timestamp: int, secret: str = SIGNING_SECRET) -> str:
    base = f"v0:{timestamp}:".encode() + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def slash_body(text: str, *, user: str = RESPONDER, channel: str = CHANNEL,
               response_url: str = "https://hooks.slack.com/commands/T0/1/x") -> bytes:
    return urlencode({
        "token": "legacy", "team_id": "T0001", "team_domain": "example",
        "channel_id": channel, "channel_name": "incidents", "user_id": user,
        "user_name": user.lower(), "command": "/fireline", "text": text,
        "response_url": response_url, "trigger_id": "13345224609.738474920.8088930838d88f",
    }).encode()


def button_body(action_id: str, value: str, *, user: str = RESPONDER,
                channel: str = CHANNEL, response_url: str = "") -> bytes:
    payload = {
        "type": "block_actions", "team": {"id": "T0001"},
        "user": {"id": user, "username": user.lower(), "team_id": "T0001"},
        "channel": {"id": channel, "name": "incidents"},
        "container": {"type": "message", "message_ts": "1700000000.000100",
                      "channel_id": channel},
        "trigger_id": "13345224609.738474920.8088930838d88f",
        "response_url": response_url,
        "actions": [{"type": "button", "action_id": action_id, "value": value,
                     "block_id": "b1", "action_ts": "1700000001.000000"}],
    }
    return urlencode({"payload": json.dumps(payload)}).encode()


def function_url_event(body: bytes, *, timestamp: int | None = None, base64_body: bool = True,
                       headers: dict[str, str] | None = None, sign: bool = True) -> dict[str, Any]:
    timestamp = int(time.time()) if timestamp is None else timestamp
    all_headers = {"content-type": "application/x-www-form-urlencoded",
                   "user-agent": "Slackbot 1.0 (+https://api.slack.com/robots)"}
    if sign:
        all_headers |= {"x-slack-request-timestamp": str(timestamp),
                        "x-slack-signature": signature(body, timestamp)}
    all_headers |= headers or {}
    return {
        "version": "2.0", "routeKey": "$default", "rawPath": "/", "rawQueryString": "",
        "headers": all_headers,
        "requestContext": {
            "accountId": "anonymous", "apiId": "abcdefgh",
            "domainName": "abcdefgh.lambda-url.us-east-1.on.aws",
            "http": {"method": "POST", "path": "/", "protocol": "HTTP/1.1",
                     "sourceIp": "203.0.113.7", "userAgent": "Slackbot 1.0"},
            "requestId": "req-1", "stage": "$default", "timeEpoch": timestamp * 1000,
        },
        "body": base64.b64encode(body).decode() if base64_body else body.decode(),
        "isBase64Encoded": base64_body,
    }


def api_gateway_v1_event(body: bytes, *, timestamp: int | None = None,
                         base64_body: bool = False) -> dict[str, Any]:
    timestamp = int(time.time()) if timestamp is None else timestamp
    headers = {"Content-Type": "application/x-www-form-urlencoded",
               "X-Slack-Request-Timestamp": str(timestamp),
               "X-Slack-Signature": signature(body, timestamp)}
    return {
        "resource": "/slack", "path": "/slack", "httpMethod": "POST", "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": None, "pathParameters": None,
        "requestContext": {"resourcePath": "/slack", "httpMethod": "POST", "stage": "prod",
                           "requestId": "req-2"},
        "body": base64.b64encode(body).decode() if base64_body else body.decode(),
        "isBase64Encoded": base64_body,
    }
