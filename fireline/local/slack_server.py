"""A Slack-compatible Web API on 127.0.0.1, for tests and `fireline demo`.

The real `slack_sdk.WebClient` talks HTTP to it, so retries, error decoding and timeouts are
exercised for real (slack-sdk's own tests do the same with `tests/mock_web_api_server`).
As there, the token picks the scenario:

    xoxb-ratelimited-once   the first request answers HTTP 429 ratelimited, Retry-After: 1
    xoxb-ratelimited-long   every request answers HTTP 429 ratelimited, Retry-After: 30
    xoxb-server-error       every request answers HTTP 500
    xoxb-invalid-auth       every request answers invalid_auth
    xoxb-channel-not-found  chat.postMessage answers channel_not_found
    xoxb-missing-scope      usergroups.list answers missing_scope (no usergroups:read)
    xoxb-no-file-upload     files.getUploadURLExternal answers missing_scope (no files:write)
    xoxb-<anything else>    a working workspace

A running server can also start refusing: `rate_limit(retry_after, after=n)` answers HTTP 429
to every request once n more have been answered, until `lift_rate_limit()` (Slack's limit
on one busy channel, mid-incident). `limit_each_channel(per_second, burst)` models Slack's
own limit on posting: about one message a second per channel, short bursts allowed; a post
over it answers HTTP 429 with the seconds until the next one may go as Retry-After.

Errors have Slack's shape: HTTP 200 with {"ok": false, "error": ...}, except rate limits
(429) and server errors (500). State and rules live in `_Workspace`; the HTTP handler only
parses and answers (moto's split between models and responses).

File uploads follow Slack's external upload flow, as slack-sdk's `files_upload_v2` drives
it: `files.getUploadURLExternal` hands out an upload URL (here on 127.0.0.1), the bytes are
POSTed there, and `files.completeUploadExternal` shares the file in a channel or thread.
"""

from __future__ import annotations

import copy
import json
import math
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

RATELIMITED_ONCE = "xoxb-ratelimited-once"
RATELIMITED_LONG = "xoxb-ratelimited-long"
SERVER_ERROR = "xoxb-server-error"
INVALID_AUTH = "xoxb-invalid-auth"
CHANNEL_NOT_FOUND = "xoxb-channel-not-found"
MISSING_SCOPE = "xoxb-missing-scope"
NO_FILE_UPLOAD = "xoxb-no-file-upload"

TEAM_ID = "T0000000001"
BOT_USER_ID = "U0000000001"
BOT_ID = "B0000000001"
_FIRST_TS = 1_700_000_000
_API_PREFIX = "/api/"
_RESPONSE_PREFIX = "/response/"
_UPLOAD_PREFIX = "/upload/"
# Form-encoded clients send these as JSON strings; decode them so params look the same
# whichever encoding the client chose.
_JSON_FORM_FIELDS = ("blocks", "attachments", "metadata")


@dataclass(frozen=True)
class Call:
    """One request as the server saw it."""

    method: str
    params: dict[str, Any]
    token: str | None
    status: int
    at: float = field(default_factory=time.monotonic)  # when received (monotonic seconds)


@dataclass(frozen=True)
class _Answer:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


def _ok(**body: Any) -> _Answer:
    return _Answer(200, {"ok": True, **body})


def _error(code: str, status: int = 200) -> _Answer:
    return _Answer(status, {"ok": False, "error": code})


class _Workspace:
    """Channels, messages, user groups and the call log; every method holds the lock."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.calls: list[Call] = []
        self._channel_ids: dict[str, str] = {}  # "incidents" -> "C0000000001"
        self._messages: dict[tuple[str, str], dict[str, Any]] = {}
        self._replies: dict[tuple[str, str], list[str]] = {}  # parent key -> reply ts, in order
        self._seq = 0
        self._rate_limited: set[str] = set()
        # (requests still answered, Retry-After) while a rate limit is switched on.
        self.limit: tuple[int, int] | None = None
        # Posting's limit per channel: (messages per second, burst), and each channel's
        # bucket: (messages it may post now, when that was worked out).
        self.channel_limit: tuple[float, int] | None = None
        self._buckets: dict[str, tuple[float, float]] = {}
        self._usergroups: dict[str, dict[str, Any]] = {}  # id -> Slack's usergroup object
        # Uploads: id -> {"name", "length", "content" (bytes once uploaded), "shared" ...}.
        self.files: dict[str, dict[str, Any]] = {}
        self.upload_base = ""  # where upload URLs point: set when the server starts

    def handle(self, method: str, params: dict[str, Any], token: str | None) -> _Answer:
        with self.lock:
            answer = self._answer(method, params, token)
            self.calls.append(Call(method=method, params=params, token=token,
                                   status=answer.status))
            return answer

    def _answer(self, method: str, params: dict[str, Any], token: str | None) -> _Answer:
        operation = {
            "chat.postMessage": self._post_message,
            "chat.update": self._update,
            "auth.test": self._auth_test,
            "usergroups.list": self._usergroups_list,
            "files.getUploadURLExternal": self._get_upload_url,
            "files.completeUploadExternal": self._complete_upload,
        }.get(method)
        if operation is None:
            return _error("unknown_method")
        if not token:
            return _error("not_authed")
        if not token.startswith("xoxb-") or token == INVALID_AUTH:
            return _error("invalid_auth")
        if token == SERVER_ERROR:
            return _error("fatal_error", status=500)
        if token == RATELIMITED_ONCE and token not in self._rate_limited:
            self._rate_limited.add(token)
            return _Answer(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "1"})
        if token == RATELIMITED_LONG:
            return _Answer(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "30"})
        if self.limit is not None:
            allowed, retry_after = self.limit
            if allowed <= 0:
                return _Answer(429, {"ok": False, "error": "ratelimited"},
                               {"Retry-After": str(retry_after)})
            self.limit = (allowed - 1, retry_after)
        return operation(params, token)

    # --- methods --------------------------------------------------------------------------

    def _auth_test(self, params: dict[str, Any], token: str) -> _Answer:
        return _ok(url="https://fireline-local.slack.com/", team="Fireline Local",
                   user="fireline", team_id=TEAM_ID, user_id=BOT_USER_ID, bot_id=BOT_ID)

    def _post_message(self, params: dict[str, Any], token: str) -> _Answer:
        channel = params.get("channel")
        if not channel or token == CHANNEL_NOT_FOUND:
            return _error("channel_not_found")
        if not params.get("text") and not params.get("blocks"):
            return _error("no_text")
        channel_id = self._channel_id(str(channel), create=True)
        assert channel_id is not None
        wait = self._take_from_bucket(channel_id)
        if wait:
            return _Answer(429, {"ok": False, "error": "ratelimited"},
                           {"Retry-After": str(max(1, math.ceil(wait)))})
        ts = self._next_ts()
        message: dict[str, Any] = {"type": "message", "subtype": "bot_message", "bot_id": BOT_ID,
                                   "user": BOT_USER_ID, "text": params.get("text") or "",
                                   "ts": ts}
        if params.get("blocks"):
            message["blocks"] = params["blocks"]
        thread_ts = params.get("thread_ts")
        if thread_ts and (channel_id, str(thread_ts)) in self._replies:
            message["thread_ts"] = str(thread_ts)
            self._replies[(channel_id, str(thread_ts))].append(ts)
        else:
            # Like Slack, a thread_ts that names no parent still posts, at the top level.
            self._replies[(channel_id, ts)] = []
        self._messages[(channel_id, ts)] = message
        return _ok(channel=channel_id, ts=ts, message=copy.deepcopy(message))

    def _take_from_bucket(self, channel_id: str) -> float:
        """0 when the channel may post now (one message taken), else the seconds until it may."""
        if self.channel_limit is None:
            return 0.0
        per_second, burst = self.channel_limit
        now = time.monotonic()
        tokens, then = self._buckets.get(channel_id, (float(burst), now))
        tokens = min(float(burst), tokens + (now - then) * per_second)
        if tokens < 1.0:
            self._buckets[channel_id] = (tokens, now)
            return (1.0 - tokens) / per_second
        self._buckets[channel_id] = (tokens - 1.0, now)
        return 0.0

    def _update(self, params: dict[str, Any], token: str) -> _Answer:
        channel_id = self._channel_id(str(params.get("channel") or ""), create=False)
        if channel_id is None:
            return _error("channel_not_found")
        message = self._messages.get((channel_id, str(params.get("ts") or "")))
        if message is None:
            return _error("message_not_found")
        if "text" in params:
            message["text"] = params["text"] or ""
        if "blocks" in params:
            message["blocks"] = params["blocks"]
        message["edited"] = {"user": BOT_USER_ID, "ts": self._next_ts()}
        return _ok(channel=channel_id, ts=message["ts"], text=message["text"],
                   message=copy.deepcopy(message))

    def _usergroups_list(self, params: dict[str, Any], token: str) -> _Answer:
        if token == MISSING_SCOPE:
            return _Answer(200, {"ok": False, "error": "missing_scope",
                                 "needed": "usergroups:read", "provided": "chat:write"})
        with_users = _flag(params.get("include_users"))
        with_disabled = _flag(params.get("include_disabled"))
        groups = []
        for group in self._usergroups.values():
            if group["date_delete"] and not with_disabled:
                continue
            group = copy.deepcopy(group)
            if not with_users:
                del group["users"]
            groups.append(group)
        return _ok(usergroups=groups)

    def _get_upload_url(self, params: dict[str, Any], token: str) -> _Answer:
        if token == NO_FILE_UPLOAD:
            return _Answer(200, {"ok": False, "error": "missing_scope",
                                 "needed": "files:write", "provided": "chat:write"})
        filename = str(params.get("filename") or "")
        try:
            length = int(params.get("length") or 0)
        except ValueError:
            length = 0
        if not filename or length <= 0:
            return _error("invalid_arguments")
        file_id = f"F{len(self.files) + 1:010d}"
        self.files[file_id] = {"id": file_id, "name": filename, "length": length,
                               "content": None, "title": filename}
        return _ok(upload_url=f"{self.upload_base}{file_id}", file_id=file_id)

    def receive_upload(self, file_id: str, content: bytes) -> bool:
        """The bytes POSTed to an upload URL; False when the URL names no pending file."""
        file = self.files.get(file_id)
        if file is None or file["content"] is not None:
            return False
        file["content"] = content
        return True

    def _complete_upload(self, params: dict[str, Any], token: str) -> _Answer:
        entries = params.get("files") or "[]"
        try:  # a JSON string in a form, as slack-sdk sends it, or a list in a JSON body
            entries = json.loads(entries) if isinstance(entries, str) else entries
        except ValueError:
            return _error("invalid_arguments")
        if not isinstance(entries, list) or not entries:
            return _error("invalid_arguments")
        shared = []
        for entry in entries:
            file = self.files.get(str(entry.get("id") if isinstance(entry, dict) else ""))
            # Like Slack: a file whose bytes never arrived (or of another length) fails.
            if file is None or file["content"] is None or len(file["content"]) != file["length"]:
                return _error("file_upload_not_completed")
            file["title"] = str(entry.get("title") or file["name"])
            shared.append(file)
        channel = params.get("channel_id")
        if channel:
            channel_id = self._channel_id(str(channel), create=False)
            if channel_id is None:
                return _error("channel_not_found")
            thread_ts = params.get("thread_ts")
            if thread_ts and (channel_id, str(thread_ts)) not in self._replies:
                return _error("invalid_thread_ts")
            ts = self._next_ts()
            message: dict[str, Any] = {
                "type": "message", "subtype": "bot_message", "bot_id": BOT_ID,
                "user": BOT_USER_ID, "text": str(params.get("initial_comment") or ""), "ts": ts,
                "files": [_file_object(f) for f in shared]}
            if thread_ts:
                message["thread_ts"] = str(thread_ts)
                self._replies[(channel_id, str(thread_ts))].append(ts)
            else:
                self._replies[(channel_id, ts)] = []
            self._messages[(channel_id, ts)] = message
            for file in shared:
                file.update(channel=channel_id, thread_ts=thread_ts, ts=ts)
        return _ok(files=[{"id": f["id"], "title": f["title"]} for f in shared])

    # --- setting up -----------------------------------------------------------------------

    def add_usergroup(self, group_id: str, handle: str, users: list[str], *,
                      disabled: bool = False) -> None:
        self._usergroups[group_id] = {
            "id": group_id, "team_id": TEAM_ID, "is_usergroup": True, "name": handle,
            "handle": handle, "description": "", "date_create": _FIRST_TS,
            "date_update": _FIRST_TS, "date_delete": _FIRST_TS if disabled else 0,
            "users": list(users), "user_count": len(users),
        }

    # --- reading --------------------------------------------------------------------------

    def thread(self, channel: str, ts: str) -> list[dict[str, Any]]:
        channel_id = self._channel_id(channel, create=False)
        if channel_id is None or (channel_id, ts) not in self._replies:
            return []
        replies = self._replies[(channel_id, ts)]
        keys = [(channel_id, ts), *((channel_id, reply) for reply in replies)]
        return [copy.deepcopy(self._messages[key]) for key in keys]

    def parents(self) -> list[tuple[str, str]]:
        return list(self._replies)

    # --- plumbing -------------------------------------------------------------------------

    def _channel_id(self, channel: str, *, create: bool) -> str | None:
        """Names ("#incidents", "incidents") map to one stable id; ids pass through."""
        if channel in self._channel_ids.values() or _looks_like_id(channel):
            return channel
        name = channel.lstrip("#")
        if not name:
            return None
        if name not in self._channel_ids:
            if not create:
                return None
            self._channel_ids[name] = f"C{len(self._channel_ids) + 1:010d}"
        return self._channel_ids[name]

    def _next_ts(self) -> str:
        # Unique and increasing, in Slack's "seconds.micros" shape: 1700000000.000100, ...
        self._seq += 1
        micros = self._seq * 100
        return f"{_FIRST_TS + micros // 1_000_000}.{micros % 1_000_000:06d}"


def _file_object(file: dict[str, Any]) -> dict[str, Any]:
    """The part of Slack's file object a message carries."""
    content = file["content"] or b""
    mimetype = "image/png" if content.startswith(b"\x89PNG") else "application/octet-stream"
    return {"id": file["id"], "name": file["name"], "title": file["title"],
            "mimetype": mimetype, "size": len(content)}


def _flag(value: Any) -> bool:
    # Booleans arrive as "1"/"0" or "true"/"false" (form), or as JSON true/false.
    return value is True or str(value).lower() in ("1", "true")


def _looks_like_id(channel: str) -> bool:
    return len(channel) >= 9 and channel[0] in "CGD" and channel[1:].isalnum() \
        and channel.isupper()


class LocalSlack:
    """The server: start it (or use it as a context manager), point a WebClient at base_url."""

    def __init__(self) -> None:
        self._workspace = _Workspace()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> LocalSlack:
        if self._server is not None:
            return self
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self._workspace))
        server.daemon_threads = True
        self._server = server
        host, port = server.server_address[:2]
        self._workspace.upload_base = f"http://{host}:{port}{_UPLOAD_PREFIX}"
        # A short poll keeps stop() quick: shutdown() waits for the loop's next poll.
        self._thread = threading.Thread(target=server.serve_forever, args=(0.05,),
                                        name="local-slack", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> LocalSlack:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("LocalSlack is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}{_API_PREFIX}"

    def response_url(self, name: str = "1") -> str:
        """A response_url for a slash command or button; what is posted there is recorded
        as calls to the method `response_url`."""
        return self.base_url.replace(_API_PREFIX, f"{_RESPONSE_PREFIX}{name}")

    # --- the workspace --------------------------------------------------------------------

    def add_usergroup(self, group_id: str, handle: str, users: list[str], *,
                      disabled: bool = False) -> None:
        """A user group (`S...`) with these members, as `usergroups.list` will show it."""
        with self._workspace.lock:
            self._workspace.add_usergroup(group_id, handle, users, disabled=disabled)

    def rate_limit(self, retry_after: int = 30, *, after: int = 0) -> None:
        """Answer every request with HTTP 429 (Retry-After: `retry_after`) once `after`
        more have been answered, until `lift_rate_limit`."""
        with self._workspace.lock:
            self._workspace.limit = (after, retry_after)

    def lift_rate_limit(self) -> None:
        with self._workspace.lock:
            self._workspace.limit = None

    def limit_each_channel(self, per_second: float = 1.0, burst: int = 5) -> None:
        """Posting as Slack limits it: `per_second` messages per channel, `burst` at once."""
        with self._workspace.lock:
            self._workspace.channel_limit = (per_second, burst)

    # --- what happened --------------------------------------------------------------------

    @property
    def calls(self) -> list[Call]:
        """Every request so far, in arrival order (a copy: safe to read while serving)."""
        with self._workspace.lock:
            return list(self._workspace.calls)

    def calls_to(self, method: str) -> list[Call]:
        return [call for call in self.calls if call.method == method]

    def files(self) -> dict[str, dict[str, Any]]:
        """Every file uploaded, by id: name, title, content (bytes), and where it was shared
        (channel, thread_ts) once completed."""
        with self._workspace.lock:
            return copy.deepcopy(self._workspace.files)

    def request_counts(self) -> Counter[str]:
        """Requests per API method."""
        return Counter(call.method for call in self.calls)

    def thread(self, channel: str, ts: str) -> list[dict[str, Any]]:
        """The parent (as last updated) and its replies in order; [] if there is no such thread."""
        with self._workspace.lock:
            return self._workspace.thread(channel, ts)

    def threads(self) -> dict[tuple[str, str], list[dict[str, Any]]]:
        """Every thread by (channel id, parent ts), in the order the parents were posted."""
        with self._workspace.lock:
            return {key: self._workspace.thread(*key) for key in self._workspace.parents()}

    def render_thread(self, channel: str, ts: str) -> str:
        """A thread as plain text: the parent's blocks flattened, then replies indented."""
        messages = self.thread(channel, ts)
        if not messages:
            return f"(no thread {channel}/{ts})"
        parent, *replies = messages
        out = [f"[{channel} · {ts}]", *_message_text(parent)]
        for reply in replies:
            first, *rest = _message_text(reply) or [""]
            out.append(f"  └ {first}")
            out += [f"    {line}" for line in rest]
        return "\n".join(out)


def _message_text(message: dict[str, Any]) -> list[str]:
    blocks = message.get("blocks")
    if not blocks:
        return _unescape(str(message.get("text") or "")).splitlines() + _file_lines(message)
    lines: list[str] = []
    for block in blocks:
        kind = block.get("type")
        if kind == "header":
            title = _text_of(block.get("text"))
            lines += [title, "═" * max(len(title), 40)]
        elif kind == "section":
            fields = [_text_of(f).replace("\n", ": ", 1).replace("*", "", 2)
                      for f in block.get("fields") or []]
            # Two per line, as Slack lays fields out in two columns.
            lines += [" · ".join(fields[i:i + 2]) for i in range(0, len(fields), 2)]
            if block.get("text"):
                lines += _text_of(block["text"]).splitlines()
        elif kind == "context":
            lines.append(" · ".join(_text_of(e) for e in block.get("elements") or []))
        elif kind == "divider":
            lines.append("─" * 40)
        elif kind == "actions":
            lines.append("  ".join(f"[{_text_of(e.get('text'))}]"
                                   for e in block.get("elements") or []))
    return lines + _file_lines(message)


def _file_lines(message: dict[str, Any]) -> list[str]:
    return [f"[file {f.get('name')}: {f.get('title')}, {f.get('size', 0):,} bytes, "
            f"{f.get('mimetype')}]" for f in message.get("files") or []]


def _text_of(obj: Any) -> str:
    text = obj.get("text", "") if isinstance(obj, dict) else str(obj or "")
    return _unescape(str(text))


def _unescape(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


# --- HTTP -------------------------------------------------------------------------------------


def _handler_for(workspace: _Workspace) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        """Parses a Web API request, asks the workspace, writes the answer."""

        def do_POST(self) -> None:
            self._serve()

        def do_GET(self) -> None:
            self._serve()

        def log_message(self, format: str, *args: Any) -> None:
            pass  # a test run's output is not the place for an access log

        def _serve(self) -> None:
            url = urlsplit(self.path)
            if url.path.startswith(_RESPONSE_PREFIX):
                self._response_url(url.path)
                return
            if url.path.startswith(_UPLOAD_PREFIX):
                self._upload(url.path[len(_UPLOAD_PREFIX):])
                return
            if not url.path.startswith(_API_PREFIX):
                self._write(_Answer(404, {"ok": False, "error": "not_found"}))
                return
            method = url.path[len(_API_PREFIX):]
            params = dict(parse_qsl(url.query))
            try:
                params.update(self._body())
            except ValueError:
                self._write(_error("invalid_form_data"))
                return
            token = self._token(params)
            self._write(workspace.handle(method, params, token))

        def _response_url(self, path: str) -> None:
            # A slash command's response_url: a webhook that takes a JSON message.
            try:
                body = self._body()
            except ValueError:
                self._write(_error("invalid_payload", 400))
                return
            with workspace.lock:
                workspace.calls.append(Call(method="response_url",
                                            params={**body, "url_path": path},
                                            token=None, status=200))
            self._write(_ok())

        def _upload(self, file_id: str) -> None:
            # An upload URL: the raw bytes, answered as Slack's does (plain text, 200).
            length = int(self.headers.get("Content-Length") or 0)
            content = self.rfile.read(length) if length else b""
            with workspace.lock:
                accepted = workspace.receive_upload(file_id, content)
                workspace.calls.append(Call(method="upload", params={
                    "file_id": file_id, "bytes": len(content)}, token=None,
                    status=200 if accepted else 404))
            body = (f"OK - {len(content)}" if accepted else "not found").encode()
            self.send_response(200 if accepted else 404)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _body(self) -> dict[str, Any]:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            if not raw:
                return {}
            content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip()
            if content_type == "application/json":
                body = json.loads(raw)
                if not isinstance(body, dict):
                    raise ValueError("JSON body is not an object")
                return body
            form: dict[str, Any] = dict(parse_qsl(raw.decode("utf-8")))
            for name in _JSON_FORM_FIELDS:
                if isinstance(form.get(name), str) and form[name].startswith(("[", "{")):
                    form[name] = json.loads(form[name])
            return form

        def _token(self, params: dict[str, Any]) -> str | None:
            # Like Slack: the Authorization header, else a token parameter (never kept in
            # the recorded params, so a test's call log does not spread it around).
            form_token = params.pop("token", None)
            auth = self.headers.get("Authorization") or ""
            if auth.startswith("Bearer "):
                return auth[len("Bearer "):].strip() or None
            return str(form_token) if form_token else None

        def _write(self, answer: _Answer) -> None:
            body = json.dumps(answer.body).encode("utf-8")
            self.send_response(answer.status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            for name, value in answer.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

    return Handler
