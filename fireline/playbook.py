"""The playbook contract: Params, plan (read-only), execute (records the before), verify, undo.

A playbook never talks to Slack or the incident store. It gets a `PlaybookContext` (clients,
clock, logger, the incident id, resource marks) and returns models; the engine records them
and the notifier shows them. Subclasses are checked when their module is imported, so a
malformed playbook fails at load, not at 3 a.m.
"""

from __future__ import annotations

import logging
import re
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from fireline.alarm import AlarmEvent
from fireline.aws import ClientFactory
from fireline.decision import APPROVAL_MODES, ApprovalMode
from fireline.errors import InvalidParams, MalformedPlaybook, NotReversible
from fireline.timestamps import utc_now

_NAME = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")


class ResourceMarks(Protocol):
    """Facts Fireline remembers about resources across incidents (e.g. bad versions)."""

    def marks(self, resource: str, kind: str) -> set[str]: ...

    def add_mark(self, resource: str, kind: str, value: str, *, incident_id: str) -> None: ...

    def remove_mark(self, resource: str, kind: str, value: str) -> None: ...


class Change(BaseModel):
    """One attribute of one resource, from what to what."""

    model_config = ConfigDict(frozen=True)

    resource: str
    attribute: str
    before: Any = None
    after: Any = None


class Plan(BaseModel):
    """What execute would do. `state` is private to the playbook (what execute needs)."""

    playbook: str
    params: dict[str, Any]
    summary: str
    changes: list[Change] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    state: dict[str, Any] = Field(default_factory=dict)


class Outcome(BaseModel):
    """What execute did: the changes made and the `before` that undo needs."""

    playbook: str
    summary: str
    changes: list[Change] = Field(default_factory=list)
    before: dict[str, Any] = Field(default_factory=dict)
    after: dict[str, Any] = Field(default_factory=dict)
    executed_at: datetime = Field(default_factory=utc_now)


class Verification(BaseModel):
    ok: bool
    summary: str


@dataclass
class PlaybookContext:
    clients: ClientFactory
    marks: ResourceMarks
    incident_id: str
    clock: Callable[[], datetime] = utc_now
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger("fireline.playbook"))
    requested_by: str = "fireline"


class Playbook(ABC):
    """Base of every playbook. Set the class attributes; implement the four steps."""

    name: ClassVar[str]
    summary: ClassVar[str]
    Params: ClassVar[type[BaseModel]]
    default_approval: ClassVar[ApprovalMode] = "required"
    reversible: ClassVar[bool] = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        problems = []
        name = getattr(cls, "name", None)
        if not isinstance(name, str) or not _NAME.match(name):
            problems.append("`name` must be a kebab-case string")
        if not isinstance(getattr(cls, "summary", None), str):
            problems.append("`summary` must be a string")
        params = getattr(cls, "Params", None)
        if not (isinstance(params, type) and issubclass(params, BaseModel)):
            problems.append("`Params` must be a pydantic model")
        elif params.model_config.get("extra") != "forbid":
            problems.append("`Params` must forbid unknown fields (extra='forbid')")
        if cls.default_approval not in APPROVAL_MODES:
            problems.append(f"`default_approval` must be one of {APPROVAL_MODES}")
        if problems:
            raise MalformedPlaybook(f"playbook {cls.__qualname__}: " + "; ".join(problems))

    def parse_params(self, raw: dict[str, Any]) -> BaseModel:
        try:
            return self.Params.model_validate(raw)
        except ValidationError as exc:
            details = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or '(params)'}: {e['msg']}"
                for e in exc.errors()
            )
            raise InvalidParams(f"invalid params for {self.name}: {details}",
                                playbook=self.name, step="params") from None

    def params_from_alarm(self, alarm: AlarmEvent) -> dict[str, Any]:
        """Defaults the alarm makes obvious (e.g. the function from its dimension)."""
        return {}

    @abstractmethod
    def plan(self, ctx: PlaybookContext, params: Any) -> Plan:
        """Read-only: say exactly which resources change, from what to what."""

    @abstractmethod
    def execute(self, ctx: PlaybookContext, plan: Plan) -> Outcome:
        """Make the change; record the before."""

    @abstractmethod
    def verify(self, ctx: PlaybookContext, outcome: Outcome) -> Verification:
        """Read the change back."""

    def undo(self, ctx: PlaybookContext, outcome: Outcome) -> Outcome:
        raise NotReversible(f"{self.name} cannot be undone", playbook=self.name, step="undo")
