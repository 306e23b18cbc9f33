"""What the point-in-time-restore engines share (a private module: not a playbook).

Each engine (DynamoDB, Aurora, RDS) reads its source, names its steps and runs them; the
playbook in `point_in_time_restore.py` chooses the restore time, checks the target name
and does the Lambda cutover for all three.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from botocore.exceptions import ClientError

from fireline.aws import describe_aws_error, error_code
from fireline.errors import PreconditionFailed
from fireline.playbook import Change, PlaybookContext, StepResult
from fireline.timestamps import as_utc, iso, parse_aws_time

NAME = "point-in-time-restore"


@dataclass(frozen=True)
class Source:
    """The source as the plan needs it: its restorable window and what the copy keeps."""

    arn: str
    earliest: datetime
    latest: datetime
    # JSON-safe: it goes into the plan's state, which the engine persists.
    settings: dict[str, Any]
    warnings: tuple[str, ...] = field(default=())


class RestoreEngine(ABC):
    """One kind of database: how to read the source, restore it and tell it is ready."""

    noun: ClassVar[str]
    steps: ClassVar[tuple[str, ...]]

    @abstractmethod
    def find(self, ctx: PlaybookContext, name: str, *, step: str = "plan") -> dict | None:
        """The resource's description, or None when it does not exist."""

    @abstractmethod
    def describe_source(self, ctx: PlaybookContext, source: str) -> Source:
        """Refuse (PreconditionFailed) a missing source, or one without backups."""

    @abstractmethod
    def target_arn(self, source_arn: str, target: str) -> str: ...

    @abstractmethod
    def created(self, state: dict[str, Any], target_arn: str) -> list[Change]:
        """One Change per resource the restore creates."""

    @abstractmethod
    def run_step(self, ctx: PlaybookContext, state: dict[str, Any], step: str) -> StepResult: ...

    @abstractmethod
    def cutover_value(self, ctx: PlaybookContext, state: dict[str, Any]) -> str:
        """What the functions are pointed at: the table's name, or the endpoint."""

    def planned_value(self, target: str) -> str:
        """The cutover value as the plan can show it, before the target exists."""
        return f"<endpoint of {target}>"

    @abstractmethod
    def check_available(self, ctx: PlaybookContext, target: str, state: dict[str, Any]) -> str:
        """Raise VerificationFailed unless the target is ready; say what was read back."""


def refuse(message: str, *, step: str = "plan") -> PreconditionFailed:
    return PreconditionFailed(message, playbook=NAME, step=step)


def when(moment: datetime) -> str:
    """A time for people: whole seconds when that is exact, else milliseconds."""
    moment = as_utc(moment)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ") if not moment.microsecond else iso(moment)


def stamp(moment: datetime) -> str:
    """A time for the plan's state: ISO-8601 UTC to the microsecond, read back by `unstamp`."""
    return as_utc(moment).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def unstamp(text: str) -> datetime:
    return parse_aws_time(text)


def restored_tags(source_tags: dict[str, str], *, incident_id: str,
                  source: str) -> dict[str, str]:
    """The source's tags (but AWS's own, which nobody may set) plus Fireline's two."""
    tags = {k: v for k, v in source_tags.items() if not k.lower().startswith("aws:")}
    tags["fireline:incident"] = incident_id
    tags["fireline:restored-from"] = source
    return tags


def tag_list(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in sorted(tags.items())]


def create_once(ctx: PlaybookContext, key: str, *, what: str, step: str,
                find: Callable[[], dict | None], create: Callable[[], Any], call: str,
                exists_codes: frozenset[str]) -> bool:
    """Make `create` happen at most once across crashes; True when this call made it.

    The intent goes into `ctx.progress["created"]` and is checkpointed before the call.
    On re-entry, a recorded intent plus an existing resource (or an "already exists"
    answer) means our earlier call got through. Without a recorded intent, an existing
    resource was made by someone else after the plan, and is never taken over.
    """
    intents = ctx.progress.setdefault("created", {})
    retry = key in intents
    found = find()
    if retry:
        if found is not None:
            return False
    elif found is not None:
        raise refuse(f"{what} appeared after the plan and was not created by Fireline; "
                     "nothing was changed, plan again with another target", step=step)
    else:
        intents[key] = {"requested_at": stamp(ctx.clock())}
        ctx.checkpoint()
    try:
        create()
    except ClientError as exc:
        if error_code(exc) in exists_codes and retry:
            return False  # our earlier call made it; its answer was lost with the process
        if error_code(exc) in exists_codes:
            raise refuse(f"{what} was created by someone else while Fireline was about to; "
                         "nothing was changed, plan again with another target",
                         step=step) from exc
        raise describe_aws_error(call, exc) from exc
    return True
