"""The Slack door: slash commands and buttons, verified, authorised, answered in time.

Slack gives a request 3 seconds. So the door answers at once: quick reads (help, list,
status) with the answer itself, anything that changes something with "working on it",
after handing the work to an asynchronous invocation of the same function (the worker).
The worker does it through the same core as the CLI and posts the result to the
request's `response_url`; the incident's thread shows every step as always.

Order of checks, each answered on its own: the HTTP event (400), the signature (401, no
detail: the reason goes to the log), the payload and the command (an ephemeral usage
line), the access policy (an ephemeral refusal, written to the incident's timeline with
the Slack user id).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError
from slack_sdk.webhook import WebhookClient

from fireline.access import AccessPolicy
from fireline.commands import Command, help_text, parse_command
from fireline.errors import (
    FirelineError,
    IncidentNotFound,
    InvalidCommand,
    InvalidRequest,
    NotAuthorised,
    SlackSignatureInvalid,
)
from fireline.incidents import Incident, TimelineEntry
from fireline.messages import BUTTON_VERBS
from fireline.slack_requests import (
    ButtonClick,
    SlackVerifier,
    SlashCommand,
    http_request_from_event,
    parse_slack_request,
)

log = logging.getLogger(__name__)

QUICK_VERBS = {"help", "list", "status"}
# The key that marks an event as the worker's (an async invocation of this function).
JOB_KEY = "fireline_slack_job"


class SlackJob(BaseModel):
    """What the worker is asked to do: a command, by whom, where to answer."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    command: Command
    user_id: str
    channel_id: str
    response_url: str = ""
    source: Literal["command", "button"] = "command"


class SlackDoor:
    def __init__(self, app: Any, *, verifier: SlackVerifier, policy: AccessPolicy,
                 groups_of: Callable[[str], frozenset[str]],
                 hand_off: Callable[[dict[str, Any]], None],
                 command_name: str = "/fireline",
                 respond: Callable[[str, str], None] | None = None) -> None:
        self.app = app
        self.verifier = verifier
        self.policy = policy
        self.groups_of = groups_of
        self.hand_off = hand_off
        self.command_name = command_name
        self.respond = respond or _respond

    # --- the request: answered within Slack's 3 seconds ----------------------------------

    def answer(self, event: Any) -> dict[str, Any]:
        try:
            request = http_request_from_event(event)
        except InvalidRequest as exc:
            log.warning("not an HTTP event Fireline knows: %s", exc.message)
            return _http(400, {"error": "bad request"})
        try:
            self.verifier.verify(request)
        except SlackSignatureInvalid as exc:
            log.warning("slack request refused: %s", exc.reason)
            return _http(401, "")
        try:
            payload = parse_slack_request(request)
            command = self._command(payload)
        except (InvalidRequest, InvalidCommand) as exc:
            log.info("slack command refused: %s", exc.message)
            return _ephemeral(exc.message)
        user, channel = payload.user_id, payload.channel_id
        try:
            self._authorise(command, user, channel)
        except NotAuthorised as exc:
            self._audit(command, user, exc.message)
            return _ephemeral(exc.message)
        except IncidentNotFound as exc:
            return _ephemeral(exc.message)
        if command.verb in QUICK_VERBS:
            return _ephemeral(self._read(command))
        job = SlackJob(command=command, user_id=user, channel_id=channel,
                       response_url=payload.response_url,
                       source="button" if isinstance(payload, ButtonClick) else "command")
        self.hand_off({JOB_KEY: job.model_dump(mode="json")})
        return _ephemeral(f"Working on `{_describe(command)}`; the result follows here and "
                          "in the incident's thread.")

    def _command(self, payload: SlashCommand | ButtonClick) -> Command:
        if isinstance(payload, SlashCommand):
            return parse_command(payload.text, command_name=self.command_name)
        verb = BUTTON_VERBS.get(payload.action_id)
        if verb is None:
            raise InvalidRequest(f"unknown button {payload.action_id!r}", field="action_id")
        return parse_command(f"{verb} {payload.value}", command_name=self.command_name)

    def _authorise(self, command: Command, user: str, channel: str) -> None:
        groups = self.groups_of(user)
        playbooks: str | list[str] | None = command.playbook
        incident: Incident | None = None
        if command.incident_id and command.verb not in QUICK_VERBS:
            incident = self.app.store.get(command.incident_id)
            # A chain is as destructive as its most destructive link.
            playbooks = [link.playbook for link in incident.chain] or incident.playbook
        self.policy.check(command.verb, user_id=user, groups=groups, channel_id=channel,
                          playbook=playbooks)
        if command.verb == "approve" and incident is not None:
            self.policy.check_approval(user_id=user, groups=groups, playbook=playbooks,
                                       requested_by=_slack_user(incident.requested_by))

    def _audit(self, command: Command, user: str, why: str) -> None:
        """A refusal goes on the incident's timeline (or the day's audit log when there is
        no incident), with who asked."""
        log.warning("slack user %s refused %s: %s", user, _describe(command), why)
        entry = TimelineEntry(kind="refused", actor=f"slack:{user}", at=self.app.clock(),
                              text=f"{_describe(command)} refused for slack:{user}: {why}",
                              data={"slack_user": user, "verb": command.verb})
        try:
            if command.incident_id:
                self.app.store.append(command.incident_id, entry)
            else:
                self.app.store.audit(entry)
        except FirelineError as exc:
            log.warning("refusal not recorded: %s", exc.message)

    def _read(self, command: Command) -> str:
        if command.verb == "help":
            return help_text(self.command_name)
        if command.verb == "list":
            open_ones = [i for i in self.app.store.list(limit=50) if i.status != "resolved"]
            if not open_ones:
                return "No open incidents."
            return "\n".join(f"`{i.incident_id}` {i.severity} {i.status} · {i.alarm_name}"
                             f" · {i.playbook or 'no playbook'}" for i in open_ones[:20])
        incident = self.app.store.get(command.incident_id)
        lines = [f"`{incident.incident_id}` {incident.severity} *{incident.status}* · "
                 f"{incident.alarm_name}",
                 f"playbook: {incident.playbook or 'none'} ({incident.playbook_state})"]
        if incident.error:
            lines.append(f"error: {incident.error}")
        return "\n".join(lines)

    # --- the worker: the slow part, after the answer ------------------------------------

    def work(self, raw: Any) -> dict[str, Any]:
        try:
            job = SlackJob.model_validate(raw)
        except ValidationError as exc:
            log.error("slack job refused: %s", exc.errors()[0]["msg"])
            return {"ok": False, "error": "InvalidRequest"}
        who = f"slack:{job.user_id}"
        command = job.command
        try:
            before = self.app.store.get(command.incident_id) if command.incident_id else None
            text = self._do(command, who)
            ok = True
            if before is not None:  # metrics: time to resolve, runs, ...
                self.app.observe(before, self.app.store.get(before.incident_id))
        except FirelineError as exc:
            text, ok = f"`{_describe(command)}` did not go through: {exc.message}", False
        self.respond(job.response_url, text)
        return {"ok": ok, "text": text}

    def _do(self, command: Command, who: str) -> str:
        from fireline.app import RunRequest

        app, incident_id = self.app, command.incident_id or ""
        if command.verb == "run":
            destructive = self.policy.is_destructive(command.playbook)
            result = app.run(RunRequest(playbook=command.playbook, params=command.params,
                                        dry_run=command.dry_run, requested_by=who,
                                        approval="required" if destructive else None))
            if result.dry_run:
                return f"Plan for {command.playbook}: {(result.plan or {}).get('summary', '')}"
            return f"{command.playbook}: `{result.incident_id}` is {result.status}" + (
                f" ({result.error})" if result.error else "")
        if command.verb == "approve":
            incident = app.approve(incident_id, who)
        elif command.verb == "reject":
            incident = app.reject(incident_id, who, note=command.note)
        elif command.verb == "ack":
            incident = app.acknowledge(incident_id, who)
        elif command.verb == "resolve":
            incident = app.resolve(incident_id, who, note=command.note)
        elif command.verb == "undo":
            incident = app.undo(incident_id, who)
        else:  # the quick verbs never reach the worker
            raise InvalidCommand(f"`{command.verb}` is answered at once, not by the worker")
        return (f"`{incident.incident_id}` {command.verb}: incident {incident.status}, "
                f"playbook {incident.playbook or 'none'} ({incident.playbook_state})")


def _describe(command: Command) -> str:
    parts = [command.verb, command.incident_id or command.playbook or ""]
    return " ".join(p for p in parts if p)


def _slack_user(requested_by: str) -> str:
    return requested_by.removeprefix("slack:")


def _respond(response_url: str, text: str) -> None:
    """Post to the request's response_url; Slack being down costs only this message."""
    if not response_url:
        return
    try:
        WebhookClient(response_url, timeout=5).send(text=text, response_type="ephemeral")
    except Exception as exc:  # never fail the work for its receipt
        log.warning("response_url post failed: %s", type(exc).__name__)


def _ephemeral(text: str) -> dict[str, Any]:
    return _http(200, {"response_type": "ephemeral", "text": text})


def _http(status: int, body: dict[str, Any] | str) -> dict[str, Any]:
    is_json = isinstance(body, dict)
    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/json" if is_json else "text/plain"},
        "body": json.dumps(body) if is_json else body,
    }
