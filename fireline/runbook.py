"""Runbook files: declarative policy, validated strictly (unknown keys are errors).

A bad file fails with the file, the rule and the field in the message, so a typo is found
when the runbook is loaded, not when the alarm it was meant for goes off.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from fireline.alarm import AlarmState
from fireline.decision import ApprovalMode, PlaybookCall, Severity
from fireline.errors import FirelineError, InvalidRunbook

Patterns = list[str]


def _as_list(value: object) -> object:
    # Let authors write `metric: Errors` as well as `metric: [Errors, Throttles]`.
    return [value] if isinstance(value, str) else value


class Match(BaseModel):
    """Every field given must match; globs (`*`, `?`, `[...]`) are allowed in all of them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    alarm_name: Patterns | None = None
    namespace: Patterns | None = None
    metric: Patterns | None = None
    dimensions: dict[str, Patterns] = Field(default_factory=dict)
    state: list[AlarmState] = Field(default_factory=lambda: ["ALARM"])
    account: Patterns | None = None
    region: Patterns | None = None
    tags: dict[str, Patterns] = Field(default_factory=dict)

    @field_validator("alarm_name", "namespace", "metric", "state", "account", "region",
                     mode="before")
    @classmethod
    def _lists(cls, value: object) -> object:
        return _as_list(value)

    @field_validator("dimensions", "tags", mode="before")
    @classmethod
    def _map_of_lists(cls, value: object) -> object:
        if isinstance(value, dict):
            return {k: _as_list(v) for k, v in value.items()}
        return value


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    description: str = ""
    match: Match = Field(default_factory=Match)
    severity: Severity | None = None
    playbook: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    # Or several playbooks in order: `run: [{playbook: ..., params: ...}, ...]`.
    run: list[PlaybookCall] | None = Field(default=None, min_length=1, max_length=10)
    approval: ApprovalMode | None = None
    channel: str | None = None
    # After the action, how long the alarm has to return to OK, and what then.
    recovery_window_minutes: int | None = Field(default=None, ge=1, le=1440)
    on_no_recovery: Literal["escalate", "undo"] | None = None

    @model_validator(mode="after")
    def _one_way_to_say_what_runs(self) -> Rule:
        if self.run is not None and (self.playbook is not None or self.params):
            raise ValueError("give either playbook (with params) or run, not both")
        return self

    def calls(self) -> list[PlaybookCall]:
        """What the rule runs, in order: its chain, its playbook, or nothing."""
        if self.run is not None:
            return list(self.run)
        return [PlaybookCall(playbook=self.playbook, params=self.params)] if self.playbook else []


class Defaults(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    severity: Severity = "SEV-3"
    channel: str | None = None
    recovery_window_minutes: int = Field(default=10, ge=1, le=1440)
    on_no_recovery: Literal["escalate", "undo"] = "escalate"
    # The same alarm firing this soon after its incident resolved re-opens it.
    reopen_window_minutes: int = Field(default=30, ge=0, le=1440)
    # Automatic actions per resource per hour, and the pause after one, before a human.
    action_budget_per_hour: int = Field(default=3, ge=1, le=100)
    cooldown_minutes: int = Field(default=10, ge=0, le=1440)
    # The other AWS accounts Fireline may act and look in (through the cross-account
    # role); unset: any account the role reaches. Fireline's own account is always allowed.
    accounts: list[str] | None = Field(default=None, max_length=1000)

    @field_validator("accounts", mode="before")
    @classmethod
    def _account_ids(cls, value: object) -> object:
        if not isinstance(value, list):
            return value
        ids = []
        for item in value:
            # YAML reads an unquoted id as a number (octal, with a leading zero and only
            # digits 0-7): take a number only when it still has all twelve digits, and say
            # what to write otherwise.
            text = str(item) if isinstance(item, int) and not isinstance(item, bool) else item
            if not isinstance(text, str) or not _ACCOUNT_ID.fullmatch(text):
                raise ValueError(f"{item!r} is not an AWS account id: write it as 12 digits "
                                 "in quotes, e.g. '012345678901'")
            ids.append(text)
        return ids


_ACCOUNT_ID = re.compile(r"\d{12}")


class Runbook(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int = Field(default=1, ge=1, le=1)
    defaults: Defaults = Field(default_factory=Defaults)
    rules: list[Rule] = Field(default_factory=list)


def read_policy_yaml(path: Path) -> Any:
    """A policy file's YAML (runbook, access policy); empty is {}. FileNotFoundError passes
    through for callers with a default; anything else unreadable is InvalidRunbook."""
    try:
        raw = _parse_yaml(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise InvalidRunbook(f"{path}: cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise InvalidRunbook(f"{path}: not valid YAML: {exc}") from None
    return {} if raw is None else raw


# libyaml's parser reads the default runbook ~8x faster than PyYAML's own, which a cold
# start feels; the same safe constructor makes the same values.
_FAST_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _parse_yaml(text: str) -> Any:
    try:
        return yaml.load(text, Loader=_FAST_LOADER)
    except yaml.YAMLError:
        # libyaml words its errors differently: the pure-Python parser says what is wrong,
        # in the words users (and their tests) know.
        return yaml.safe_load(text)


def load_runbook(path: Path) -> Runbook:
    """Parse and validate a runbook file, playbook names and param names included."""
    try:
        raw = read_policy_yaml(path)
    except FileNotFoundError as exc:
        raise InvalidRunbook(f"{path}: cannot read: {exc.strerror}") from None
    try:
        runbook = Runbook.model_validate(raw)
    except ValidationError as exc:
        raise InvalidRunbook(_describe(path, raw, exc)) from None
    _check_playbooks(path, runbook)
    return runbook


@cache
def cached_runbook(path: Path) -> Runbook:
    return load_runbook(path)


def _describe(path: Path, raw: Any, exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        loc = list(error["loc"])
        where = ""
        if len(loc) >= 2 and loc[0] == "rules" and isinstance(loc[1], int):
            index = loc[1]
            name = _rule_name(raw, index)
            where = f"rule {name!r} (rules[{index}]), "
            loc = loc[2:]
        field = ".".join(str(p) for p in loc) or ("(the rule)" if where else "(top level)")
        message = error["msg"]
        if error["type"] == "extra_forbidden":
            message = "unknown field"
        problems.append(f"{where}field {field}: {message}")
    return f"{path}: " + "; ".join(problems)


def _rule_name(raw: Any, index: int) -> str:
    try:
        name = raw["rules"][index].get("name")
    except (TypeError, KeyError, IndexError, AttributeError):
        return "?"
    return str(name) if name else "?"


def _check_playbooks(path: Path, runbook: Runbook) -> None:
    from fireline import registry

    for index, rule in enumerate(runbook.rules):
        where = f"{path}: rule {rule.name!r} (rules[{index}])"
        if rule.playbook is None and rule.run is None and rule.params:
            raise InvalidRunbook(f"{where}, field params: given without a playbook")
        for number, call in enumerate(rule.calls()):
            field = f"run[{number}]." if rule.run is not None else ""
            try:
                playbook = registry.get(call.playbook)
            except FirelineError as exc:
                raise InvalidRunbook(f"{where}, field {field}playbook: {exc.message}") from None
            unknown = sorted(set(call.params) - set(playbook.Params.model_fields))
            if unknown:
                raise InvalidRunbook(
                    f"{where}, field {field}params: {', '.join(unknown)} not a parameter of "
                    f"{call.playbook} (it takes {', '.join(playbook.Params.model_fields)})")
