"""point-in-time-restore: restore a database as it was before the trouble, as a new resource.

Creates: a new DynamoDB table, Aurora cluster (plus one writer instance per writer of the
source, of the same class) or RDS instance, restored to `restore_to` (default: a few
minutes before the alarm), with the source's network, parameter groups, encryption,
backups, tags and deletion protection, and two tags saying where it came from. For a
table it re-applies what a restore drops: tags, TTL, stream, point-in-time recovery and
deletion protection (auto scaling is left to people; the plan says so).

Changes, only if asked (`cutover`): the named environment variables of the named Lambda
functions now hold the restored table's name or endpoint; each function publishes a
version, and `alias`, if given, moves to it. Every other variable stays as it was.

Never: the source is never modified, and nothing is ever deleted, by execute or by undo.

Execute runs as steps that survive a crash: each create call is checkpointed first and
never repeated. Verify: the new resource is available/ACTIVE and every cutover variable
reads back, on $LATEST and on the alias. Undo: puts every variable back exactly (one
that did not exist is removed), publishes a version, moves each alias back, and keeps
the restored resource for people to inspect and delete.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from fireline.alarm import AlarmEvent
from fireline.errors import InvalidParams
from fireline.playbook import (
    Outcome,
    Plan,
    Playbook,
    PlaybookContext,
    StepResult,
    Verification,
)
from fireline.timestamps import parse_requested_time
from playbooks._restore_common import NAME, RestoreEngine, Source, refuse, stamp, unstamp, when
from playbooks._restore_cutover import (
    cutover_outcome,
    plan_cutover,
    run_cutover,
    undo_cutover,
    verify_cutover,
)
from playbooks._restore_dynamodb import DynamoDBRestore
from playbooks._restore_rds import AuroraRestore, RdsRestore

Engine = Literal["aurora", "rds", "dynamodb"]

ENGINES: dict[str, RestoreEngine] = {
    "dynamodb": DynamoDBRestore(), "aurora": AuroraRestore(), "rds": RdsRestore()}

_VARIABLE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_TABLE_NAME = re.compile(r"^[A-Za-z0-9_.-]{3,255}$")
_DB_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]*$")
# The restored cluster's writers are named `<target>-writer-N`, which must fit in 63.
_WRITER_SUFFIX = len("-writer-1")


class Cutover(BaseModel):
    model_config = ConfigDict(extra="forbid")

    function_name: str = Field(min_length=1, max_length=170,
                               description="function name or ARN")
    variable: str = Field(min_length=1, max_length=128,
                          description="environment variable that names the database")

    @field_validator("variable")
    @classmethod
    def _variable_name(cls, value: str) -> str:
        if not _VARIABLE.match(value):
            raise ValueError(f"{value!r} is not an environment variable name "
                             "(a letter, then letters, digits or _)")
        return value


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid")

    engine: Engine
    source: str = Field(min_length=1, max_length=255,
                        description="cluster id, instance id or table name")
    restore_to: datetime | None = Field(
        default=None, description="ISO-8601 time with a timezone; default: "
                                  "lookback_minutes before the trouble began")
    lookback_minutes: int = Field(default=5, ge=1, le=1440)
    target: str | None = Field(default=None, description="default: <source>-restored-<UTC "
                                                         "yyyymmddHHMM>")
    cutover: list[Cutover] = Field(default_factory=list,
                                   description='functions to point at the restored database: '
                                               'a list, or "fn:VAR,fn2:VAR2"')
    alias: str | None = Field(default=None, min_length=1, max_length=128,
                              pattern=r"^[A-Za-z0-9_-]*[A-Za-z_-][A-Za-z0-9_-]*$",
                              description="alias to move to each cutover function's new "
                                          "version")

    @field_validator("restore_to", mode="before")
    @classmethod
    def _aware_time(cls, value: object) -> object:
        return parse_requested_time(value)

    @field_validator("cutover", mode="before")
    @classmethod
    def _cutover_list(cls, value: object) -> object:
        if value is None or value == "":
            return []
        if isinstance(value, str):
            value = [part for part in value.split(",") if part.strip()]
        if isinstance(value, list):
            return [_cutover_entry(item) if isinstance(item, str) else item for item in value]
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Params:
        if self.alias and not self.cutover:
            raise ValueError("alias needs cutover: it moves the alias of each cutover function")
        pairs = [(c.function_name, c.variable) for c in self.cutover]
        repeated = sorted({f"{f}:{v}" for f, v in pairs if pairs.count((f, v)) > 1})
        if repeated:
            raise ValueError(f"cutover names {', '.join(repeated)} more than once")
        if self.target is not None:
            problem = target_problem(self.engine, self.target)
            if problem:
                raise ValueError(f"target {self.target!r}: {problem}")
            if self.target.lower() == self.source.lower():
                raise ValueError("target must differ from source: the source is never "
                                 "overwritten")
        return self


class PointInTimeRestore(Playbook):
    name = NAME
    summary = "Restore a database to a point in time as a new resource; optionally cut over"
    Params = Params
    default_approval = "required"
    reversible = True
    long_running = True

    def params_from_alarm(self, alarm: AlarmEvent) -> dict[str, Any]:
        dimensions = alarm.dimensions
        if dimensions.get("TableName"):
            return {"engine": "dynamodb", "source": dimensions["TableName"]}
        if dimensions.get("DBClusterIdentifier"):
            return {"engine": "aurora", "source": dimensions["DBClusterIdentifier"]}
        if dimensions.get("DBInstanceIdentifier"):
            return {"engine": "rds", "source": dimensions["DBInstanceIdentifier"]}
        return {}

    def plan(self, ctx: PlaybookContext, params: Params) -> Plan:
        engine = ENGINES[params.engine]
        source = engine.describe_source(ctx, params.source)
        restore_to, warnings = _restore_time(params, ctx, source, f"{engine.noun} "
                                                                  f"{params.source}")
        target = params.target or _default_target(params, ctx.clock())
        if engine.find(ctx, target) is not None:
            raise refuse(f"{engine.noun} {target} already exists; pass another target")
        target_arn = engine.target_arn(source.arn, target)
        cutover, cutover_changes = plan_cutover(
            ctx, [(c.function_name, c.variable) for c in params.cutover], params.alias,
            engine.planned_value(target))
        state = {
            "engine": params.engine, "source": params.source, "source_arn": source.arn,
            "target": target, "target_arn": target_arn, "restore_to": stamp(restore_to),
            "window": [stamp(source.earliest), stamp(source.latest)],
            "settings": source.settings, "cutover": cutover,
        }
        return Plan(
            playbook=self.name,
            params=params.model_dump(mode="json"),
            summary=_plan_summary(engine, state, params.alias),
            changes=engine.created(state, target_arn) + cutover_changes,
            warnings=[*source.warnings, *warnings],
            state=state,
        )

    def steps(self, plan: Plan) -> list[str]:
        s = plan.state
        return [*ENGINES[s["engine"]].steps, *(["cutover"] if s["cutover"] else [])]

    def run_step(self, ctx: PlaybookContext, plan: Plan, step: str) -> StepResult:
        s = plan.state
        engine = ENGINES[s["engine"]]
        if step != "cutover":
            return engine.run_step(ctx, s, step)
        value = engine.cutover_value(ctx, s)
        ctx.progress["cutover_value"] = value
        return run_cutover(ctx, s["cutover"], value,
                           restored=f"the restored {engine.noun} {s['target']}")

    def outcome(self, ctx: PlaybookContext, plan: Plan) -> Outcome:
        s, progress = plan.state, ctx.progress
        engine = ENGINES[s["engine"]]
        arn = progress.get("target_arn", s["target_arn"])
        before, after, changes = cutover_outcome(s["cutover"], progress.get("cutover", {}))
        summary = (f"restored {engine.noun} {s['source']} as at "
                   f"{when(unstamp(s['restore_to']))} as {s['target']}")
        if after:
            summary += "; " + "; ".join(
                f"{a['function_name']} {', '.join(a['variables'])} repointed to it"
                f" (version {a['version']}{', alias ' + a['alias'] if a['alias'] else ''})"
                for a in after)
        value_key = "table" if s["engine"] == "dynamodb" else "endpoint"
        return Outcome(
            playbook=self.name,
            summary=summary,
            changes=engine.created(s, arn) + changes,
            before={"engine": s["engine"], "source": s["source"], "target": s["target"],
                    "restore_to": s["restore_to"], "cutover": before},
            after={"target": s["target"], "arn": arn,
                   value_key: progress.get("cutover_value") or engine.cutover_value(ctx, s),
                   "cutover": after, "settings": s["settings"],
                   **({"reapplied": progress["reapplied"]} if "reapplied" in progress else {})},
            executed_at=ctx.clock(),
        )

    def verify(self, ctx: PlaybookContext, outcome: Outcome) -> Verification:
        b, a = outcome.before, outcome.after
        said = [ENGINES[b["engine"]].check_available(ctx, a["target"], a)]
        said += verify_cutover(ctx, a["cutover"])
        return Verification(ok=True, summary="; ".join(said))

    def undo(self, ctx: PlaybookContext, outcome: Outcome) -> Outcome:
        b = outcome.before
        noun = ENGINES[b["engine"]].noun
        changes, said = undo_cutover(ctx, b["cutover"])
        kept = (f"the restored {noun} {b['target']} was kept and {b['source']} was not "
                "touched; delete the restored one yourself when you no longer need it")
        done = ("put back " + "; ".join(said) if said
                else "no function was pointed at it, so nothing to put back")
        return Outcome(
            playbook=self.name,
            summary=f"{done}; {kept}",
            changes=changes,
            before={**b, "cutover": outcome.after.get("cutover", [])},
            after={"cutover": b["cutover"], "kept": b["target"]},
            executed_at=ctx.clock(),
        )


def target_problem(engine: str, name: str) -> str | None:
    """Why `name` cannot name a new resource of `engine`, or None when it can."""
    if engine == "dynamodb":
        if not _TABLE_NAME.match(name):
            return "a table name is 3-255 letters, digits, '_', '.' or '-'"
        return None
    limit = 63 - _WRITER_SUFFIX if engine == "aurora" else 63
    if len(name) > limit:
        why = " (its writer instances are named <target>-writer-N)" if engine == "aurora" else ""
        return f"longer than {limit} characters{why}"
    if not _DB_NAME.match(name):
        return "an identifier starts with a letter and has only letters, digits and hyphens"
    if "--" in name or name.endswith("-"):
        return "an identifier has no '--' and does not end with '-'"
    return None


def _cutover_entry(text: str) -> dict[str, str]:
    # rpartition: a function ARN has colons of its own.
    function_name, colon, variable = text.strip().rpartition(":")
    if not colon or not function_name.strip() or not variable.strip():
        raise ValueError(f"cutover entries are function:VARIABLE, got {text.strip()!r}")
    return {"function_name": function_name.strip(), "variable": variable.strip()}


def _default_target(params: Params, now: datetime) -> str:
    name = f"{params.source}-restored-{now.astimezone(UTC):%Y%m%d%H%M}"
    problem = target_problem(params.engine, name)
    if problem:
        raise InvalidParams(f"the default target {name!r} cannot be used ({problem}); "
                            "pass target=<name>", playbook=NAME, step="plan")
    return name


def _restore_time(params: Params, ctx: PlaybookContext, source: Source,
                  what: str) -> tuple[datetime, list[str]]:
    earliest, latest = source.earliest, source.latest
    window = f"{what} can be restored from {when(earliest)} to {when(latest)}"
    if params.restore_to is not None:
        chosen = params.restore_to
        if chosen > ctx.clock():
            raise refuse(f"restore_to {when(chosen)} is in the future")
        if chosen < earliest:
            raise refuse(f"restore_to {when(chosen)} is before the earliest restorable time; "
                         f"{window}")
        if chosen > latest:
            raise refuse(f"restore_to {when(chosen)} is after the latest restorable time; "
                         f"{window}")
        return chosen, []
    chosen = ctx.reference_time - timedelta(minutes=params.lookback_minutes)
    if chosen < earliest:
        raise refuse(f"{params.lookback_minutes} minutes before the trouble began "
                     f"({when(chosen)}) is before the earliest restorable time; {window}; "
                     "pass restore_to")
    if chosen > latest:
        return latest, [f"{params.lookback_minutes} minutes before the trouble began "
                        f"({when(chosen)}) is not restorable yet; restoring to the latest "
                        f"restorable time, {when(latest)}"]
    return chosen, []


def _plan_summary(engine: RestoreEngine, state: dict[str, Any], alias: str | None) -> str:
    summary = (f"restore {engine.noun} {state['source']} to "
               f"{when(unstamp(state['restore_to']))} as {state['target']}")
    if state["cutover"]:
        at = "it" if state["engine"] == "dynamodb" else "its endpoint"
        summary += ", then point " + ", ".join(
            f"{c['function_name']} {', '.join(c['variables'])}" for c in state["cutover"]
        ) + f" at {at}"
        if alias:
            summary += f" and move alias {alias} to the new version"
    return summary
