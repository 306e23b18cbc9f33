"""The playbook contract: Params, plan (read-only), execute (records the before), verify, undo.

A playbook never talks to Slack or the incident store. It gets a `PlaybookContext` (clients,
clock, logger, the incident id, resource marks) and returns models; the engine records them
and the notifier shows them. Subclasses are checked when their module is imported, so a
malformed playbook fails at load, not at 3 a.m.

Execute runs as named steps. A quick playbook implements `execute` and gets one step for
free. A long one (a database restore) overrides `steps`, `run_step` and `outcome`: each step
is idempotent, keeps what it learns in `ctx.progress` (saved by the engine after every step,
and at once by `ctx.checkpoint()` before a call that creates something), and answers done or
"wait N seconds". After a crash the engine runs the unfinished step again, so a step reads
`ctx.progress` first and never repeats a create call it already made.
"""

from __future__ import annotations

import logging
import re
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, ClassVar, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from fireline.alarm import AlarmEvent
from fireline.aws import ClientFactory
from fireline.decision import APPROVAL_MODES, ApprovalMode
from fireline.errors import InvalidParams, MalformedPlaybook, NotReversible
from fireline.timestamps import utc_now

# A playbook's name; its module is the name with `_` for `-`, so the registry can load
# one playbook without importing the others.
PLAYBOOK_NAME = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")


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


class StepResult(BaseModel):
    """What one step of execute says: finished, or come back in `wait_seconds`."""

    model_config = ConfigDict(frozen=True)

    status: Literal["done", "wait"]
    message: str = ""
    wait_seconds: int = Field(default=0, ge=0, le=3600)

    @classmethod
    def done(cls, message: str = "") -> StepResult:
        return cls(status="done", message=message)

    @classmethod
    def wait(cls, seconds: int, message: str) -> StepResult:
        return cls(status="wait", message=message, wait_seconds=seconds)


@dataclass
class PlaybookContext:
    clients: ClientFactory
    marks: ResourceMarks
    incident_id: str
    clock: Callable[[], datetime] = utc_now
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger("fireline.playbook"))
    requested_by: str = "fireline"
    # When the trouble began: the alarm's state change, or the time of a manual request.
    reference_time: datetime = field(default_factory=utc_now)
    # What execute's steps have recorded so far; the engine persists it between steps.
    progress: dict[str, Any] = field(default_factory=dict)
    # Names this run of the playbook: the incident id, or for a chain's later links the id
    # and the link (a chain may run one playbook twice), for idempotency keys.
    run_key: str = ""
    # Persist `progress` now: call it before an AWS call that creates something, so a
    # crash right after the call is recognised on resume instead of repeated.
    checkpoint: Callable[[], None] = lambda: None

    def __post_init__(self) -> None:
        self.run_key = self.run_key or self.incident_id


class Playbook(ABC):
    """Base of every playbook. Set the class attributes; implement the four steps."""

    name: ClassVar[str]
    summary: ClassVar[str]
    Params: ClassVar[type[BaseModel]]
    default_approval: ClassVar[ApprovalMode] = "required"
    reversible: ClassVar[bool] = True
    # Long-running playbooks are driven by the state machine when one is configured.
    long_running: ClassVar[bool] = False
    # A step still waiting after this long has failed: nobody waits on a stuck restore.
    step_deadline: ClassVar[timedelta] = timedelta(hours=2)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        problems = []
        name = getattr(cls, "name", None)
        if not isinstance(name, str) or not PLAYBOOK_NAME.match(name):
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
        if cls.execute is Playbook.execute and cls.run_step is Playbook.run_step:
            problems.append("implement `execute`, or `steps`, `run_step` and `outcome`")
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

    def execute(self, ctx: PlaybookContext, plan: Plan) -> Outcome:
        """Make the change in one go; record the before. (Or implement the steps below.)"""
        raise NotImplementedError(f"{self.name} runs as steps; the engine calls run_step")

    def steps(self, plan: Plan) -> list[str]:
        """Names of execute's steps, in order."""
        return ["execute"]

    def run_step(self, ctx: PlaybookContext, plan: Plan, step: str) -> StepResult:
        """Run one step, idempotently; keep what later steps and `outcome` need in
        `ctx.progress`."""
        outcome = self.execute(ctx, plan)
        ctx.progress["outcome"] = outcome.model_dump(mode="json")
        return StepResult.done(outcome.summary)

    def outcome(self, ctx: PlaybookContext, plan: Plan) -> Outcome:
        """What the finished steps did, from `ctx.progress`."""
        return Outcome.model_validate(ctx.progress["outcome"])

    @abstractmethod
    def verify(self, ctx: PlaybookContext, outcome: Outcome) -> Verification:
        """Read the change back."""

    def undo(self, ctx: PlaybookContext, outcome: Outcome) -> Outcome:
        raise NotReversible(f"{self.name} cannot be undone", playbook=self.name, step="undo")
