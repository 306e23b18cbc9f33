"""What the cache-invalidation targets share (a private module: not a playbook).

Each target (a CloudFront distribution, an API Gateway REST stage) plans, names its steps,
runs them, says what it did and reads it back; `cache_invalidation.py` chooses the target
from the params and holds the contract the engine sees.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

from fireline.errors import PreconditionFailed
from fireline.playbook import Outcome, Plan, PlaybookContext, StepResult, Verification

NAME = "cache-invalidation"


class CacheTarget(ABC):
    """One kind of cache: how to find it, empty it and tell it was emptied."""

    kind: ClassVar[str]
    steps: ClassVar[tuple[str, ...]]

    @abstractmethod
    def plan(self, ctx: PlaybookContext, params: Any) -> Plan:
        """Read-only; refuse (PreconditionFailed) what cannot or need not be emptied."""

    @abstractmethod
    def run_step(self, ctx: PlaybookContext, state: dict[str, Any], step: str) -> StepResult:
        """Idempotent: what a step made is in `ctx.progress`, never made twice."""

    @abstractmethod
    def outcome(self, ctx: PlaybookContext, plan: Plan) -> Outcome: ...

    @abstractmethod
    def verify(self, ctx: PlaybookContext, outcome: Outcome) -> Verification: ...

    @abstractmethod
    def why_not_undone(self, outcome: Outcome) -> str:
        """Why this cannot be put back, for the thread."""


def refuse(message: str, *, step: str = "plan") -> PreconditionFailed:
    return PreconditionFailed(message, playbook=NAME, step=step)


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"
