"""Who may do what from Slack: the access policy file, and one check per decision.

The policy (`runbooks/access.yaml`; its comments describe the format) names Slack ids only:
users (`U...`/`W...`), user groups (`S...`) and channels (`C...`/`G...`). Validation is
strict, as for runbooks: an unknown field or playbook fails the load with the file and the
field in the message.

The rules:
- `help`, `list` and `status` are read-only: anyone, in any channel.
- Every other verb only in the policy's `channels` (none listed: any channel), and only for
  responders. Approvers may do everything responders may.
- `run` of a playbook listed under `playbooks:` is for the people listed there instead.
- A destructive playbook may be *requested* by whoever may run it, and then needs an
  approver's approval; a non-destructive one may be approved by any responder. Nobody
  approves their own request.
- Without a policy file only the read-only verbs work (fail closed).

Refusals raise `NotAuthorised` saying what the user lacks, never who has it.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from fireline.config import DEFAULT_ACCESS
from fireline.errors import InvalidRunbook, NotAuthorised
from fireline.runbook import read_policy_yaml

if TYPE_CHECKING:
    from slack_sdk import WebClient

log = logging.getLogger(__name__)

READ_ONLY_VERBS = frozenset({"help", "list", "status"})
CHANGING_VERBS = frozenset({"run", "ack", "resolve", "undo", "approve", "reject"})


def _slack_id(kind: str, prefixes: str, example: str) -> Any:
    pattern = re.compile(rf"[{prefixes}][A-Z0-9]{{2,20}}", re.ASCII)

    def check(value: str) -> str:
        if not pattern.fullmatch(value):
            raise ValueError(f"{value!r} is not a Slack {kind} id (like {example})")
        return value

    return Annotated[str, AfterValidator(check)]


def _as_list(value: object) -> object:
    # `users: U0123ABCD` as well as `users: [U0123ABCD, U0456EFGH]`; a blank list is empty.
    if value is None:
        return []
    return [value] if isinstance(value, str) else value


UserId = _slack_id("user", "UW", "U0123ABCD")
GroupId = _slack_id("user group", "S", "S0123ABCD")
ChannelId = _slack_id("channel", "CG", "C0123ABCD")


class Members(BaseModel):
    """People, by user id or by Slack user group id."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    users: Annotated[frozenset[UserId], BeforeValidator(_as_list)] = frozenset()
    groups: Annotated[frozenset[GroupId], BeforeValidator(_as_list)] = frozenset()

    def includes(self, user_id: str, groups: Collection[str]) -> bool:
        return user_id in self.users or any(group in self.groups for group in groups)


class AccessFile(BaseModel):
    """The file as written (see runbooks/access.yaml)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int = Field(default=1, ge=1, le=1)
    channels: Annotated[frozenset[ChannelId], BeforeValidator(_as_list)] = frozenset()
    responders: Members = Field(default_factory=Members)
    approvers: Members = Field(default_factory=Members)
    playbooks: dict[str, Members] = Field(default_factory=dict)
    destructive: Annotated[tuple[str, ...], BeforeValidator(_as_list)] = ()


@dataclass(frozen=True)
class AccessPolicy:
    """The loaded policy; `rules` is None when there is no policy file (read-only)."""

    path: Path
    rules: AccessFile | None
    destructive: frozenset[str]

    @property
    def configured(self) -> bool:
        return self.rules is not None

    def is_destructive(self, playbook: str | Collection[str] | None) -> bool:
        """Whether a run of the playbook (or of any playbook of a chain) needs an approver.
        Unknown (None) counts as destructive."""
        names = _names(playbook)
        return names is None or any(name in self.destructive for name in names)

    def check(self, verb: str, *, user_id: str, groups: frozenset[str], channel_id: str,
              playbook: str | Collection[str] | None = None) -> None:
        """Refuse (`NotAuthorised`) a verb this user may not use in this channel.

        `playbook` is required for `run`; for `approve`/`reject` pass the incident's playbook
        (a chain: all its playbooks) — without it an approver is required.
        """
        if verb in READ_ONLY_VERBS:
            return
        if verb not in CHANGING_VERBS:
            raise ValueError(f"unknown verb {verb!r}")
        rules = self._rules(verb)
        if rules.channels and channel_id not in rules.channels:
            raise NotAuthorised(f"`{verb}` is only accepted in an incident channel; "
                                "this channel is not one", step=verb)
        if verb == "run":
            self._check_run(rules, user_id=user_id, groups=groups, playbook=playbook)
        elif verb in ("approve", "reject"):
            self._check_decider(rules, verb, user_id=user_id, groups=groups, playbook=playbook)
        elif not _is_responder(rules, user_id, groups):
            raise NotAuthorised(f"`{verb}` is for responders, and you are not one in the "
                                f"access policy (as a user or through a user group)", step=verb)

    def check_approval(self, *, user_id: str, groups: frozenset[str],
                       playbook: str | Collection[str] | None, requested_by: str) -> None:
        """Refuse an approval by someone who may not approve this playbook, or by the person
        who requested it. (The channel is `check("approve", ...)`'s business.)"""
        rules = self._rules("approve")
        self._check_decider(rules, "approve", user_id=user_id, groups=groups, playbook=playbook)
        if not user_id.strip() or user_id.strip().casefold() == requested_by.strip().casefold():
            raise NotAuthorised(f"you requested {_describe(playbook)}; a different person "
                                "must approve it", playbook=_first(playbook), step="approve")

    # --- the rules ------------------------------------------------------------------------

    def _rules(self, verb: str) -> AccessFile:
        if self.rules is None:
            raise NotAuthorised(f"`{verb}` is not available from Slack: no access policy is "
                                f"configured ({self.path} does not exist)", step=verb)
        return self.rules

    def _check_run(self, rules: AccessFile, *, user_id: str, groups: frozenset[str],
                   playbook: str | Collection[str] | None) -> None:
        names = _names(playbook)
        if not names:
            raise ValueError("check('run', ...) needs the playbook")
        for name in names:
            allowed = rules.playbooks.get(name)
            if allowed is not None:
                if not allowed.includes(user_id, groups):
                    raise NotAuthorised(
                        f"running {name} is limited to the people the access policy lists "
                        "for it, and you are not one of them", playbook=name, step="run")
            elif not _is_responder(rules, user_id, groups):
                raise NotAuthorised(f"running {name} is for responders, and you are not one "
                                    "in the access policy (as a user or through a user group)",
                                    playbook=name, step="run")

    def _check_decider(self, rules: AccessFile, verb: str, *, user_id: str,
                       groups: frozenset[str], playbook: str | Collection[str] | None) -> None:
        if rules.approvers.includes(user_id, groups):
            return
        what = _describe(playbook)
        if self.is_destructive(playbook):
            reason = ("it is destructive" if _names(playbook) is not None
                      else "its playbook is not known")
            raise NotAuthorised(f"to {verb} {what} you must be an approver ({reason}), and "
                                "you are not one in the access policy",
                                playbook=_first(playbook), step=verb)
        if not _is_responder(rules, user_id, groups):
            raise NotAuthorised(f"to {verb} {what} you must be a responder, and you are not "
                                "one in the access policy", playbook=_first(playbook), step=verb)


def _is_responder(rules: AccessFile, user_id: str, groups: Collection[str]) -> bool:
    return rules.responders.includes(user_id, groups) or rules.approvers.includes(user_id, groups)


def _names(playbook: str | Collection[str] | None) -> tuple[str, ...] | None:
    if playbook is None:
        return None
    return (playbook,) if isinstance(playbook, str) else tuple(playbook)


def _first(playbook: str | Collection[str] | None) -> str | None:
    names = _names(playbook)
    return names[0] if names else None


def _describe(playbook: str | Collection[str] | None) -> str:
    names = _names(playbook)
    return "this playbook" if not names else " then ".join(names)


# --- loading ----------------------------------------------------------------------------------


def load_access(path: Path) -> AccessPolicy:
    """The policy in `path`; a missing file is the read-only policy, a bad one InvalidRunbook."""
    destructive = _required_approval()
    try:
        raw = read_policy_yaml(path)
    except FileNotFoundError:
        log.warning("no access policy at %s: Slack users may only read", path)
        return AccessPolicy(path=path, rules=None, destructive=destructive)
    if not isinstance(raw, dict):
        raise InvalidRunbook(f"{path}: field (top level): a mapping of fields is expected, "
                             f"not {type(raw).__name__}")
    try:
        rules = AccessFile.model_validate(raw)
    except ValidationError as exc:
        raise InvalidRunbook(_describe_errors(path, exc)) from None
    _check_playbooks(path, rules)
    return AccessPolicy(path=path, rules=rules, destructive=destructive | set(rules.destructive))


@cache
def cached_access(path: Path = DEFAULT_ACCESS) -> AccessPolicy:
    return load_access(path)


def _required_approval() -> frozenset[str]:
    from fireline import registry

    return frozenset(name for name, playbook in registry.playbooks().items()
                     if playbook.default_approval == "required")


def _check_playbooks(path: Path, rules: AccessFile) -> None:
    from fireline import registry

    known = registry.playbooks()
    named = [(f"playbooks.{name}", name) for name in rules.playbooks]
    named += [(f"destructive[{index}]", name) for index, name in enumerate(rules.destructive)]
    for field, name in named:
        if name not in known:
            raise InvalidRunbook(f"{path}: field {field}: no playbook named {name!r} "
                                 f"(known: {', '.join(sorted(known)) or 'none'})",
                                 playbook=name)


def _describe_errors(path: Path, exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        field = ""
        for part in error["loc"]:
            field += f"[{part}]" if isinstance(part, int) else f"{'.' if field else ''}{part}"
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown field"
        problems.append(f"field {field or '(top level)'}: {message}")
    return f"{path}: " + "; ".join(problems)


# --- Slack user groups ------------------------------------------------------------------------


def groups_resolver(client: WebClient, *, ttl_seconds: float = 300,
                    clock: Callable[[], float] = time.monotonic
                    ) -> Callable[[str], frozenset[str]]:
    """A function from a user id to the ids of the Slack user groups they are in.

    One `usergroups.list` call (bot scope `usergroups:read`) answers for every user and is
    kept for `ttl_seconds`. When Slack fails the user is in no group (a log line says why):
    a lookup failure never crashes a command and never grants anything. Failures are not
    kept, so the next command asks Slack again.
    """
    lock = threading.Lock()
    kept: dict[str, Any] = {}  # "at": when fetched, "members": user -> group ids

    def groups_of(user_id: str) -> frozenset[str]:
        with lock:
            now = clock()
            if "members" not in kept or now - kept["at"] >= ttl_seconds:
                members = _fetch_memberships(client)
                if members is None:
                    return frozenset()
                kept.update(at=now, members=members)
            return kept["members"].get(user_id, frozenset())

    return groups_of


def _fetch_memberships(client: WebClient) -> dict[str, frozenset[str]] | None:
    from fireline.notify import describe_error

    try:
        response = client.usergroups_list(include_users=True)
        usergroups = response.get("usergroups")
        if not isinstance(usergroups, list):
            raise ValueError("the answer has no usergroups list")
    except Exception as exc:  # anything: a failed lookup must refuse, never crash
        try:
            reason = describe_error(exc)
        except Exception:
            reason = type(exc).__name__
        log.warning("slack usergroups.list failed: %s; user groups grant nothing until it "
                    "works", reason)
        return None
    members: dict[str, set[str]] = {}
    for group in usergroups:
        if not isinstance(group, dict) or not isinstance(group.get("id"), str):
            continue
        if group.get("date_delete"):  # a disabled group grants nothing
            continue
        for user in group.get("users") or []:
            if isinstance(user, str):
                members.setdefault(user, set()).add(group["id"])
    return {user: frozenset(ids) for user, ids in members.items()}
