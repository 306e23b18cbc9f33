"""A local CloudTrail in front of moto's server: every management write it serves is
recorded as CloudTrail records it, and `LookupEvents` answers from that record.

moto keeps AWS's state but not its audit trail (it has no LookupEvents), so without this
the demo's "what changed" reply would have nothing to read. This is a stand-in like the
local Slack: Fireline's code calls CloudTrail as in AWS, through `AWS_ENDPOINT_URL`; what
changes is what answers. The events are the calls really made to the local AWS (the
demo's deploy), not invented ones.

It also answers an operation moto lacks with a quick 501 `NotImplemented` (instead of a
500 that botocore retries five times and werkzeug prints as a traceback), so a lookup
moto cannot serve fails at once and says why.
"""

from __future__ import annotations

import io
import json
import re
import sys
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import Any
from urllib.parse import parse_qsl, unquote

import botocore.session

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

# The SigV4 credential scope names the signing service; the botocore model to read it by.
_SERVICES = {
    "lambda": "lambda", "dynamodb": "dynamodb", "rds": "rds", "cloudfront": "cloudfront",
    "apigateway": "apigateway", "s3": "s3", "states": "stepfunctions",
    "monitoring": "cloudwatch", "logs": "logs", "iam": "iam", "sns": "sns", "sqs": "sqs",
    "events": "events", "secretsmanager": "secretsmanager", "cloudtrail": "cloudtrail",
}
# Item- and object-level calls are CloudTrail data events: LookupEvents never shows them.
_DATA_EVENTS = {
    "dynamodb": {"GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "Scan",
                 "BatchGetItem", "BatchWriteItem", "TransactGetItems", "TransactWriteItems"},
    "lambda": {"Invoke", "InvokeAsync", "InvokeWithResponseStream"},
    "s3": {"PutObject", "GetObject", "DeleteObject", "DeleteObjects", "CopyObject",
           "HeadObject", "CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload"},
    "sqs": {"SendMessage", "ReceiveMessage", "DeleteMessage", "SendMessageBatch",
            "DeleteMessageBatch", "ChangeMessageVisibility"},
    "sns": {"Publish", "PublishBatch"},
}
_READ = re.compile(r"^(Get|List|Describe|Lookup|Head|BatchGet|Search|Query|Scan|Test)")
# Parameters that name the resource an event is about, as CloudTrail's Resources list.
_RESOURCE_KEYS = {
    "FunctionName": "AWS::Lambda::Function", "TableName": "AWS::DynamoDB::Table",
    "DBClusterIdentifier": "AWS::RDS::DBCluster", "DBInstanceIdentifier": "AWS::RDS::DBInstance",
    "Id": "AWS::CloudFront::Distribution", "DistributionId": "AWS::CloudFront::Distribution",
    "restapi_id": "AWS::ApiGateway::RestApi", "Bucket": "AWS::S3::Bucket",
    "stateMachineArn": "AWS::StepFunctions::StateMachine",
}
_SCOPE = re.compile(r"Credential=([^/,\s]+)/\d{8}/([a-z0-9-]+)/([a-z0-9-]+)/aws4_request")


@dataclass(frozen=True)
class _Call:
    service: str  # botocore's name
    signing_name: str
    operation: str
    params: dict[str, Any]
    access_key: str
    region: str


@dataclass
class Trail:
    """The recorded events, per account and region, newest last."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    events: list[dict[str, Any]] = field(default_factory=list)

    def record(self, call: _Call, response: bytes, account: str, user: str) -> None:
        now = datetime.now(UTC)
        resources = [{"ResourceType": kind, "ResourceName": str(call.params[key])}
                     for key, kind in _RESOURCE_KEYS.items()
                     if isinstance(call.params.get(key), str | int)]
        record = {
            "eventVersion": "1.09",
            "userIdentity": {"type": "IAMUser", "accountId": account, "userName": user,
                             "accessKeyId": call.access_key,
                             "arn": f"arn:aws:iam::{account}:user/{user}"},
            "eventTime": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "eventSource": f"{call.signing_name}.amazonaws.com",
            "eventName": call.operation,
            "awsRegion": call.region,
            "requestParameters": _camel(call.params),
            "responseElements": _camel(_json(response)),
            "readOnly": False,
            "eventID": str(uuid.uuid4()),
            "managementEvent": True,
            "recipientAccountId": account,
        }
        with self.lock:
            self.events.append({
                "EventId": record["eventID"], "EventName": call.operation, "ReadOnly": "false",
                "AccessKeyId": call.access_key, "EventTime": now.timestamp(),
                "EventSource": record["eventSource"], "Username": user,
                "Resources": resources, "CloudTrailEvent": json.dumps(record),
                "_account": account, "_region": call.region,
            })

    def lookup(self, request: dict[str, Any], account: str, region: str) -> dict[str, Any]:
        start = float(request.get("StartTime") or 0)
        end = float(request.get("EndTime") or 1e12)
        wanted = {(a.get("AttributeKey"), a.get("AttributeValue"))
                  for a in request.get("LookupAttributes") or []}
        with self.lock:
            found = [e for e in reversed(self.events)
                     if e["_account"] == account and e["_region"] == region
                     and start <= e["EventTime"] <= end and _matches(e, wanted)]
        first = int(request.get("NextToken") or 0)
        size = int(request.get("MaxResults") or 50)
        page = [{k: v for k, v in e.items() if not k.startswith("_")}
                for e in found[first:first + size]]
        answer: dict[str, Any] = {"Events": page}
        if first + size < len(found):
            answer["NextToken"] = str(first + size)
        return answer


def _matches(event: dict[str, Any], wanted: set[tuple[Any, Any]]) -> bool:
    for key, value in wanted:
        if key == "ResourceName":
            if value not in {r["ResourceName"] for r in event["Resources"]}:
                return False
        elif key in {"EventName", "Username", "EventSource", "EventId", "AccessKeyId",
                     "ReadOnly"} and event.get(key) != value:
            return False
    return True


class CloudTrailStandIn:
    """WSGI middleware around moto's server app (see the module docstring)."""

    def __init__(self, app: WsgiApp) -> None:
        self.app = app
        self.trail = Trail()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]
                 ) -> Iterable[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        call = _identify(environ, body)
        if call is not None and call.service == "cloudtrail" and call.operation == "LookupEvents":
            answer = self.trail.lookup(call.params, _identity(call.access_key)[0], call.region)
            return _respond(start_response, "200 OK", json.dumps(answer).encode(),
                            "application/x-amz-json-1.1")
        status: list[str] = []

        def capture(code: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            status.append(code)
            return start_response(code, headers, exc_info)

        try:
            chunks = list(self.app(environ, capture))
        except NotImplementedError as exc:
            return _not_implemented(environ, start_response, str(exc))
        if call is not None and status and status[0].startswith("2") and _is_write(call):
            self.trail.record(call, b"".join(chunks), *_identity(call.access_key))
        return chunks


def _is_write(call: _Call) -> bool:
    return (not _READ.match(call.operation)
            and call.operation not in _DATA_EVENTS.get(call.service, set()))


def _identify(environ: dict[str, Any], body: bytes) -> _Call | None:
    """Which operation a request is, and its parameters, from botocore's own model."""
    scope = _SCOPE.search(environ.get("HTTP_AUTHORIZATION") or "")
    if scope is None:
        return None
    access_key, region, signing_name = scope.groups()
    service = _SERVICES.get(signing_name)
    if service is None:
        return None
    model = _model(service)
    protocol = model.metadata.get("protocol")
    params: dict[str, Any] = {}
    operation = None
    target = environ.get("HTTP_X_AMZ_TARGET")
    if _cbor(environ):
        # Smithy RPC v2 (CloudWatch): the operation is the path's last segment; the CBOR
        # body is not read, so such events carry no parameters.
        operation = (environ.get("PATH_INFO") or "").rstrip("/").rsplit("/", 1)[-1]
    elif target:
        operation = target.rsplit(".", 1)[-1]
        params = _json(body)
    elif protocol in {"query", "ec2"}:
        form = dict(parse_qsl(body.decode("utf-8", "replace")))
        operation = form.pop("Action", None)
        params = form
    else:
        method = environ.get("REQUEST_METHOD", "GET")
        path = unquote(environ.get("PATH_INFO") or "/")
        query = environ.get("QUERY_STRING") or ""
        for route in _routes(service):
            found = route.matches(method, path, query)
            if found is not None:
                operation, params = route.operation, {**_json(body), **found}
                break
    if operation is None or operation not in model.operation_names:
        return None
    return _Call(service=service, signing_name=signing_name, operation=operation,
                 params=params, access_key=access_key, region=region)


@cache
def _model(service: str) -> Any:
    return botocore.session.get_session().get_service_model(service)


@dataclass(frozen=True)
class _Route:
    operation: str
    method: str
    path: re.Pattern[str]
    query: frozenset[str]  # query keys the URI requires (S3's "?versioning")
    literal: int  # characters that are not placeholders: the more, the more specific

    def matches(self, method: str, path: str, query: str) -> dict[str, str] | None:
        found = self.path.match(path)
        if found is None or method != self.method:
            return None
        present = {key for key, _ in parse_qsl(query, keep_blank_values=True)}
        return found.groupdict() if self.query <= present else None


@cache
def _routes(service: str) -> list[_Route]:
    """The model's REST routes, the most specific first (/functions/{F}/versions before
    /functions/{F}; S3's ?versioning before the bare bucket)."""
    model = _model(service)
    routes = []
    for name in model.operation_names:
        http = model.operation_model(name).http
        uri, _, query = http.get("requestUri", "/").partition("?")
        parts, position = [], 0
        for placeholder in re.finditer(r"\{([^}]+)\}", uri):
            parts.append(re.escape(uri[position:placeholder.start()]))
            label = placeholder.group(1)
            group = re.sub(r"\W", "_", label.rstrip("+"))
            parts.append(f"(?P<{group}>.+)" if label.endswith("+") else f"(?P<{group}>[^/]+)")
            position = placeholder.end()
        parts.append(re.escape(uri[position:]))
        required = frozenset(key.split("=", 1)[0] for key in query.split("&") if key)
        literal = len(re.sub(r"\{[^}]+\}", "", uri))
        routes.append(_Route(operation=name, method=http.get("method", "GET"),
                             path=re.compile("^" + "".join(parts) + "/?$"), query=required,
                             literal=literal))
    return sorted(routes, key=lambda r: (-len(r.query), -r.literal))


def _identity(access_key: str) -> tuple[str, str]:
    """The account an access key belongs to in moto, and who CloudTrail says used it: the
    IAM user's name, an assumed role's name, or else the key id itself."""
    from moto.iam.models import PARTITION_NAMES, get_account_id_from, iam_backends

    account = get_account_id_from(access_key)
    for partition in PARTITION_NAMES:
        key = iam_backends[account][partition].access_keys.get(access_key)
        if key is not None and key.user_name:
            return account, str(key.user_name)
        if key is not None and key.role_arn:
            return account, str(key.role_arn).rsplit("/", 1)[-1]
    return account, access_key


def _json(raw: bytes) -> dict[str, Any]:
    try:
        value = json.loads(raw) if raw else {}
    except (ValueError, UnicodeDecodeError):
        return {}
    return value if isinstance(value, dict) else {}


def _camel(value: Any) -> Any:
    """CloudTrail writes request parameters in lowerCamelCase (functionVersion)."""
    if isinstance(value, dict):
        return {(k[:1].lower() + k[1:] if isinstance(k, str) else k): _camel(v)
                for k, v in value.items()}
    if isinstance(value, list):
        return [_camel(v) for v in value]
    return value


def _respond(start_response: Callable[..., Any], status: str, body: bytes,
             content_type: str, exc_info: Any = None) -> list[bytes]:
    start_response(status, [("Content-Type", content_type),
                            ("Content-Length", str(len(body)))], exc_info)
    return [body]


def _not_implemented(environ: dict[str, Any], start_response: Callable[..., Any],
                     message: str) -> list[bytes]:
    """A 501 NotImplemented in the protocol the request came in, so botocore reads it."""
    message = f"moto does not implement this: {message}"
    status, exc_info = "501 Not Implemented", sys.exc_info()
    if _cbor(environ):
        body = _cbor_map({"__type": "NotImplemented", "message": message})
        start_response(status, [("Content-Type", "application/cbor"),
                                ("smithy-protocol", "rpc-v2-cbor"),
                                ("Content-Length", str(len(body)))], exc_info)
        return [body]
    content_type = environ.get("CONTENT_TYPE") or ""
    if environ.get("HTTP_X_AMZ_TARGET") or "json" in content_type or \
            (environ.get("PATH_INFO") or "").startswith("/20"):  # rest-json: /2015-03-31/...
        body = json.dumps({"__type": "NotImplemented", "message": message}).encode()
        return _respond(start_response, status, body, "application/x-amz-json-1.1", exc_info)
    body = (f"<ErrorResponse><Error><Type>Sender</Type><Code>NotImplemented</Code>"
            f"<Message>{message}</Message></Error></ErrorResponse>").encode()
    return _respond(start_response, status, body, "text/xml", exc_info)


def _cbor(environ: dict[str, Any]) -> bool:
    return environ.get("HTTP_SMITHY_PROTOCOL") == "rpc-v2-cbor"


def _cbor_map(values: dict[str, str]) -> bytes:
    """A CBOR map of short text to text (RFC 8949): all an error body needs."""
    out = bytearray([0xA0 | len(values)])
    for key, value in values.items():
        for text in (key, value):
            raw = text.encode()
            if len(raw) < 24:
                out.append(0x60 | len(raw))
            elif len(raw) < 256:
                out += bytes([0x78, len(raw)])
            else:
                out += bytes([0x79]) + len(raw).to_bytes(2, "big")
            out += raw
    return bytes(out)
