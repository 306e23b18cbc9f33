"""lambda-alias-revert: point a Lambda alias back at the last good published version.

Changes: one alias (`FunctionVersion`, and `RoutingConfig`: a canary's extra weights are
removed). Target: `to_version`, else the highest published version below the current one
that Fireline has not recorded as bad for this function. A canary alias keeps its primary
version and drops the canary weights.

Execute: `UpdateAlias` with the `RevisionId` read at plan time, so a concurrent change makes
it fail instead of overwriting; the versions reverted from are recorded as bad, and the
alias as it was is the outcome's `before`.

Verify: re-reads the alias. Undo: puts back the recorded version and weights, and forgets
the bad mark, since a human undoing the revert says the version was fine.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, Field, field_validator

from fireline.alarm import AlarmEvent
from fireline.aws import describe_aws_error, error_code
from fireline.errors import PreconditionFailed, VerificationFailed
from fireline.playbook import Change, Outcome, Plan, Playbook, PlaybookContext, Verification

BAD_VERSION = "bad-version"


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid")

    function_name: str = Field(min_length=1, max_length=170,
                               description="function name or ARN")
    alias: str = Field(default="live", min_length=1, max_length=128)
    to_version: str | None = Field(default=None, description="published version to revert to")

    @field_validator("to_version", mode="before")
    @classmethod
    def _version_is_a_number(cls, value: object) -> object:
        if value is None or value == "":
            return None
        text = str(value)
        if not text.isdigit():
            raise ValueError("must be a published version number such as 2")
        return text


class LambdaAliasRevert(Playbook):
    name = "lambda-alias-revert"
    summary = "Revert a Lambda alias to the last good published version"
    Params = Params
    default_approval = "auto"

    def params_from_alarm(self, alarm: AlarmEvent) -> dict[str, Any]:
        # Errors alarms carry FunctionName, and Resource as "name:alias" when per alias.
        params: dict[str, Any] = {}
        function = alarm.dimensions.get("FunctionName")
        resource = alarm.dimensions.get("Resource", "")
        if function:
            params["function_name"] = function
        if function and resource.startswith(f"{function}:"):
            qualifier = resource.split(":", 1)[1]
            if qualifier and not qualifier.isdigit() and qualifier != "$LATEST":
                params["alias"] = qualifier
        return params

    def plan(self, ctx: PlaybookContext, params: Params) -> Plan:
        lam = ctx.clients("lambda")
        alias = _get_alias(lam, params.function_name, params.alias)
        function_arn = _unqualified(alias["AliasArn"])
        current = alias["FunctionVersion"]
        weights = _weights(alias)
        versions = _published_versions(lam, params.function_name)
        bad = ctx.marks.marks(function_arn, BAD_VERSION)
        warnings: list[str] = []

        if weights and not params.to_version:
            # A canary: the primary is the version that served before the deploy began.
            target = current
            reverted_from = sorted(weights, key=int)
            summary = (f"remove the canary weights {_describe_weights(weights)} from alias "
                       f"{params.alias}, keep version {current}")
        else:
            target = _choose_target(params, current, versions, bad)
            reverted_from = [current, *sorted(weights, key=int)]
            summary = (f"point alias {params.alias} from version {current}"
                       f"{_describe_weights(weights, ' with ')} to version {target}")
        if params.to_version and params.to_version in bad:
            warnings.append(f"version {params.to_version} was recorded as bad by Fireline")
        if params.to_version and current.isdigit() and int(params.to_version) > int(current):
            warnings.append(f"version {params.to_version} is newer than the current {current}")

        resource = f"{function_arn}:{params.alias}"
        changes = [Change(resource=resource, attribute="FunctionVersion",
                          before=current, after=target)]
        if weights:
            changes.append(Change(resource=resource, attribute="AdditionalVersionWeights",
                                  before=weights, after={}))
        return Plan(
            playbook=self.name,
            params=params.model_dump(),
            summary=summary,
            changes=changes,
            warnings=warnings,
            state={
                "function_name": params.function_name,
                "function_arn": function_arn,
                "alias": params.alias,
                "revision_id": alias.get("RevisionId"),
                "before_version": current,
                "before_weights": weights,
                "target_version": target,
                "reverted_from": reverted_from,
            },
        )

    def execute(self, ctx: PlaybookContext, plan: Plan) -> Outcome:
        s = plan.state
        lam = ctx.clients("lambda")
        # RevisionId guards against a change between plan and now; re-reading as well
        # gives a clear message where the API does not enforce it.
        now = _get_alias(lam, s["function_name"], s["alias"])
        if now["FunctionVersion"] != s["before_version"] or _weights(now) != s["before_weights"]:
            raise PreconditionFailed(
                f"alias {s['alias']} changed since the plan (now version "
                f"{now['FunctionVersion']}{_describe_weights(_weights(now), ' with ')}); "
                "plan again", playbook=self.name, step="execute")
        request: dict[str, Any] = {
            "FunctionName": s["function_name"],
            "Name": s["alias"],
            "FunctionVersion": s["target_version"],
            "RoutingConfig": {"AdditionalVersionWeights": {}},
        }
        if s.get("revision_id"):
            request["RevisionId"] = s["revision_id"]
        try:
            lam.update_alias(**request)
        except ClientError as exc:
            if error_code(exc) == "PreconditionFailedException":
                raise PreconditionFailed(
                    f"alias {s['alias']} was changed by someone else since the plan "
                    "(RevisionId no longer matches); nothing was changed, plan again",
                    playbook=self.name, step="execute") from exc
            raise describe_aws_error("lambda:UpdateAlias", exc) from exc
        for version in s["reverted_from"]:
            ctx.marks.add_mark(s["function_arn"], BAD_VERSION, version,
                               incident_id=ctx.incident_id)
        return Outcome(
            playbook=self.name,
            summary=f"alias {s['alias']} now points at version {s['target_version']}",
            changes=plan.changes,
            before={"function_name": s["function_name"], "function_arn": s["function_arn"],
                    "alias": s["alias"], "version": s["before_version"],
                    "weights": s["before_weights"]},
            after={"version": s["target_version"], "weights": {},
                   "marked_bad": s["reverted_from"]},
            executed_at=ctx.clock(),
        )

    def verify(self, ctx: PlaybookContext, outcome: Outcome) -> Verification:
        b, a = outcome.before, outcome.after
        alias = _get_alias(ctx.clients("lambda"), b["function_name"], b["alias"])
        if alias["FunctionVersion"] != a["version"] or _weights(alias):
            raise VerificationFailed(
                f"alias {b['alias']} reads back as version {alias['FunctionVersion']}"
                f"{_describe_weights(_weights(alias), ' with ')}, expected {a['version']}",
                playbook=self.name, step="verify")
        return Verification(ok=True, summary=f"alias {b['alias']} serves version {a['version']}")

    def undo(self, ctx: PlaybookContext, outcome: Outcome) -> Outcome:
        b, a = outcome.before, outcome.after
        lam = ctx.clients("lambda")
        now = _get_alias(lam, b["function_name"], b["alias"])
        try:
            lam.update_alias(
                FunctionName=b["function_name"], Name=b["alias"], FunctionVersion=b["version"],
                RoutingConfig={"AdditionalVersionWeights": b["weights"]},
                RevisionId=now["RevisionId"])
        except ClientError as exc:
            raise describe_aws_error("lambda:UpdateAlias", exc) from exc
        for version in a.get("marked_bad", []):
            ctx.marks.remove_mark(b["function_arn"], BAD_VERSION, version)
        resource = f"{b['function_arn']}:{b['alias']}"
        changes = [Change(resource=resource, attribute="FunctionVersion",
                          before=now["FunctionVersion"], after=b["version"])]
        if b["weights"]:
            changes.append(Change(resource=resource, attribute="AdditionalVersionWeights",
                                  before=_weights(now), after=b["weights"]))
        return Outcome(
            playbook=self.name,
            summary=f"alias {b['alias']} put back on version {b['version']}"
                    f"{_describe_weights(b['weights'], ' with ')}",
            changes=changes,
            before={**b, "version": now["FunctionVersion"], "weights": _weights(now)},
            after={"version": b["version"], "weights": b["weights"]},
            executed_at=ctx.clock(),
        )


def _get_alias(lam: Any, function_name: str, alias: str) -> dict[str, Any]:
    try:
        return lam.get_alias(FunctionName=function_name, Name=alias)
    except ClientError as exc:
        if error_code(exc) == "ResourceNotFoundException":
            raise PreconditionFailed(
                f"function {function_name} has no alias {alias!r} (or does not exist)",
                playbook=LambdaAliasRevert.name, step="plan") from exc
        raise describe_aws_error("lambda:GetAlias", exc) from exc


def _published_versions(lam: Any, function_name: str) -> list[str]:
    versions: list[str] = []
    try:
        for page in lam.get_paginator("list_versions_by_function").paginate(
                FunctionName=function_name):
            versions += [v["Version"] for v in page["Versions"] if v["Version"].isdigit()]
    except ClientError as exc:
        raise describe_aws_error("lambda:ListVersionsByFunction", exc) from exc
    return sorted(set(versions), key=int)


def _choose_target(params: Params, current: str, versions: list[str], bad: set[str]) -> str:
    if params.to_version:
        if params.to_version not in versions:
            raise PreconditionFailed(
                f"version {params.to_version} is not a published version of "
                f"{params.function_name} (published: {', '.join(versions) or 'none'})",
                playbook=LambdaAliasRevert.name, step="plan")
        if params.to_version == current:
            raise PreconditionFailed(
                f"alias {params.alias} already points at version {current}; nothing to revert",
                playbook=LambdaAliasRevert.name, step="plan")
        return params.to_version
    # $LATEST is not a version one can trust to be older: any published one may do.
    ceiling = int(current) if current.isdigit() else None
    candidates = [v for v in versions
                  if (ceiling is None or int(v) < ceiling) and v not in bad and v != current]
    if not candidates:
        skipped = sorted((v for v in versions if v in bad), key=int)
        note = f"; versions recorded as bad: {', '.join(skipped)}" if skipped else ""
        raise PreconditionFailed(
            f"no earlier good version of {params.function_name} to revert alias "
            f"{params.alias} to (it points at version {current}){note}",
            playbook=LambdaAliasRevert.name, step="plan")
    return candidates[-1]


def _weights(alias: dict[str, Any]) -> dict[str, float]:
    routing = alias.get("RoutingConfig") or {}
    return {str(k): float(v) for k, v in (routing.get("AdditionalVersionWeights") or {}).items()}


def _describe_weights(weights: dict[str, float], prefix: str = "") -> str:
    if not weights:
        return ""
    return prefix + ", ".join(f"version {v} at {w:.0%}" for v, w in sorted(weights.items()))


def _unqualified(alias_arn: str) -> str:
    # arn:aws:lambda:region:account:function:name:alias -> the function's ARN
    parts = alias_arn.split(":")
    return ":".join(parts[:7]) if len(parts) >= 7 else alias_arn
