"""Pointing Lambda functions at the restored database, and back (private to the playbook).

Only the named environment variables change; every other variable is written back as it
was read a moment before. The value each variable had (or that it was absent) is
checkpointed before the first change, so undo can put back exactly that. Each change is
published as a version, and an alias, if asked, moves to it.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from fireline.aws import describe_aws_error, error_code
from fireline.errors import PreconditionFailed, VerificationFailed
from fireline.playbook import Change, PlaybookContext, StepResult
from playbooks._restore_common import NAME, refuse


def plan_cutover(ctx: PlaybookContext, entries: list[tuple[str, str]], alias: str | None,
                 shown: str) -> tuple[list[dict[str, Any]], list[Change]]:
    """Read each function (and alias); say which variables go from what to `shown`."""
    lam = ctx.clients("lambda")
    grouped: dict[str, list[str]] = {}
    for function_name, variable in entries:
        grouped.setdefault(function_name, []).append(variable)
    planned, changes = [], []
    for function_name, variables in grouped.items():
        config = _config(lam, function_name, step="plan")
        current = _variables(config)
        arn = _unqualified(config["FunctionArn"])
        entry: dict[str, Any] = {
            "function_name": function_name, "function_arn": arn,
            "variables": {v: current.get(v) for v in variables},
            "alias": alias, "alias_version": None,
        }
        changes += [Change(resource=arn, attribute=f"Environment.Variables.{v}",
                           before=current.get(v), after=shown) for v in variables]
        if alias:
            entry["alias_version"] = _alias(lam, function_name, alias, step="plan")[
                "FunctionVersion"]
            changes.append(Change(resource=f"{arn}:{alias}", attribute="FunctionVersion",
                                  before=entry["alias_version"],
                                  after=f"<version published with {', '.join(variables)}>"))
        planned.append(entry)
    return planned, changes


def run_cutover(ctx: PlaybookContext, planned: list[dict[str, Any]], value: str,
                *, restored: str) -> StepResult:
    """Idempotent: a variable that already holds `value` is not written again."""
    lam = ctx.clients("lambda")
    records = ctx.progress.setdefault("cutover", {})
    said = []
    for entry in planned:
        function_name, names = entry["function_name"], list(entry["variables"])
        config = _config(lam, function_name, step="cutover")
        current = _variables(config)
        record = records.get(function_name)
        if record is None:
            moved = [n for n in names if current.get(n) not in (entry["variables"][n], value)]
            if moved:
                raise refuse(
                    f"{_show(function_name, {n: current.get(n) for n in moved})} changed since "
                    f"the plan (planned from {_show_values(entry['variables'], moved)}); "
                    f"nothing was changed: {restored} is ready, point the function at it "
                    "yourself or plan the cutover again", step="cutover")
            record = {"before": {n: current.get(n) for n in names}, "value": value}
            if entry["alias"]:
                alias = _alias(lam, function_name, entry["alias"], step="cutover")
                record["alias_version_before"] = alias["FunctionVersion"]
                record["alias_weights_before"] = _weights(alias)
            records[function_name] = record
            ctx.checkpoint()
        if any(current.get(n) != value for n in names):
            config = _update(lam, config, {**current, **{n: value for n in names}},
                             step="cutover")
        status = config.get("LastUpdateStatus")
        if status == "InProgress":
            return StepResult.wait(5, f"function {function_name} is applying its new "
                                      "configuration")
        if status == "Failed":
            raise refuse(f"function {function_name} failed to apply its new configuration: "
                         f"{config.get('LastUpdateStatusReason', 'no reason given')}",
                         step="cutover")
        # PublishVersion returns the existing version when nothing changed since it.
        record["version"] = _publish(lam, function_name)
        message = f"{_show(function_name, {n: value for n in names})} (version " \
                  f"{record['version']}"
        if entry["alias"]:
            _move_alias(lam, function_name, entry["alias"], record["version"], {},
                        step="cutover")
            record["alias_version"] = record["version"]
            message += f", alias {entry['alias']}"
        said.append(message + ")")
    return StepResult.done("; ".join(said))


def cutover_outcome(planned: list[dict[str, Any]], records: dict[str, Any]
                    ) -> tuple[list[dict], list[dict], list[Change]]:
    """The before (for undo), the after (for verify) and the changes really made.

    After a failed cutover some functions have no record, or a before without a published
    version: undo still gets every before it may need; only finished ones count as done."""
    before, after, changes = [], [], []
    for entry in planned:
        record = records.get(entry["function_name"])
        if record is None:
            continue
        arn, alias = entry["function_arn"], entry["alias"]
        before.append({
            "function_name": entry["function_name"], "function_arn": arn,
            "variables": record["before"], "alias": alias,
            "alias_version_before": record.get("alias_version_before"),
            "alias_weights_before": record.get("alias_weights_before", {}),
        })
        if "version" not in record:
            continue
        after.append({
            "function_name": entry["function_name"],
            "variables": {n: record["value"] for n in record["before"]},
            "version": record["version"], "alias": alias,
            "alias_version": record.get("alias_version"),
        })
        changes += [Change(resource=arn, attribute=f"Environment.Variables.{n}",
                           before=old, after=record["value"])
                    for n, old in record["before"].items()]
        if alias:
            changes.append(Change(resource=f"{arn}:{alias}", attribute="FunctionVersion",
                                  before=record["alias_version_before"],
                                  after=record["alias_version"]))
    return before, after, changes


def verify_cutover(ctx: PlaybookContext, after: list[dict[str, Any]]) -> list[str]:
    lam = ctx.clients("lambda")
    said = []
    for entry in after:
        function_name = entry["function_name"]
        qualifiers = ["$LATEST"] + ([entry["alias"]] if entry["alias"] else [])
        for qualifier in qualifiers:
            got = _variables(_config(lam, function_name, qualifier=qualifier, step="verify"))
            for name, want in entry["variables"].items():
                if got.get(name) != want:
                    raise VerificationFailed(
                        f"function {function_name} ({qualifier}) reads {name}="
                        f"{got.get(name)!r}, expected {want!r}", playbook=NAME, step="verify")
        said.append(_show(function_name, entry["variables"]))
    return said


def undo_cutover(ctx: PlaybookContext, before: list[dict[str, Any]]
                 ) -> tuple[list[Change], list[str]]:
    """Put every recorded variable back exactly (absent ones are removed), then aliases."""
    lam = ctx.clients("lambda")
    changes, said = [], []
    for entry in before:
        function_name, arn = entry["function_name"], entry["function_arn"]
        config = _config(lam, function_name, step="undo")
        current = _variables(config)
        restored = dict(current)
        for name, old in entry["variables"].items():
            if old is None:
                restored.pop(name, None)
            else:
                restored[name] = old
        if restored != current:
            _update(lam, config, restored, step="undo")
            _wait_updated(lam, function_name)
        changes += [Change(resource=arn, attribute=f"Environment.Variables.{n}",
                           before=current.get(n), after=old)
                    for n, old in entry["variables"].items() if current.get(n) != old]
        version = _publish(lam, function_name)
        message = f"{_show(function_name, entry['variables'])} (version {version}"
        if entry["alias"] and entry["alias_version_before"]:
            now = _move_alias(lam, function_name, entry["alias"], entry["alias_version_before"],
                              entry["alias_weights_before"], step="undo")
            changes.append(Change(resource=f"{arn}:{entry['alias']}",
                                  attribute="FunctionVersion", before=now,
                                  after=entry["alias_version_before"]))
            message += f", alias {entry['alias']} back on {entry['alias_version_before']}"
        said.append(message + ")")
    return changes, said


# --- Lambda calls --------------------------------------------------------------------------


def _config(lam: Any, function_name: str, *, step: str, qualifier: str | None = None) -> dict:
    request = {"FunctionName": function_name}
    if qualifier:
        request["Qualifier"] = qualifier
    try:
        return lam.get_function_configuration(**request)
    except ClientError as exc:
        if error_code(exc) == "ResourceNotFoundException":
            raise refuse(f"function {function_name} does not exist", step=step) from exc
        raise describe_aws_error("lambda:GetFunctionConfiguration", exc) from exc


def _alias(lam: Any, function_name: str, alias: str, *, step: str) -> dict:
    try:
        return lam.get_alias(FunctionName=function_name, Name=alias)
    except ClientError as exc:
        if error_code(exc) == "ResourceNotFoundException":
            raise refuse(f"function {function_name} has no alias {alias!r}",
                         step=step) from exc
        raise describe_aws_error("lambda:GetAlias", exc) from exc


def _update(lam: Any, config: dict, variables: dict[str, str], *, step: str) -> dict:
    request: dict[str, Any] = {"FunctionName": config["FunctionName"],
                               "Environment": {"Variables": variables}}
    if config.get("RevisionId"):  # moto leaves it out; AWS always has one
        request["RevisionId"] = config["RevisionId"]
    try:
        return lam.update_function_configuration(**request)
    except ClientError as exc:
        if error_code(exc) == "PreconditionFailedException":
            raise PreconditionFailed(
                f"function {config['FunctionName']} was changed by someone else while "
                "Fireline was changing it (RevisionId no longer matches); nothing was "
                "changed", playbook=NAME, step=step) from exc
        raise describe_aws_error("lambda:UpdateFunctionConfiguration", exc) from exc


def _wait_updated(lam: Any, function_name: str) -> None:
    try:
        lam.get_waiter("function_updated_v2").wait(
            FunctionName=function_name, WaiterConfig={"Delay": 2, "MaxAttempts": 60})
    except BotoCoreError as exc:
        raise describe_aws_error("lambda:GetFunction (waiting for the update)", exc) from exc


def _publish(lam: Any, function_name: str) -> str:
    try:
        return lam.publish_version(FunctionName=function_name)["Version"]
    except ClientError as exc:
        raise describe_aws_error("lambda:PublishVersion", exc) from exc


def _move_alias(lam: Any, function_name: str, alias: str, version: str,
                weights: dict[str, float], *, step: str) -> str:
    """Point `alias` at `version` with `weights` unless it already is; the version before."""
    now = _alias(lam, function_name, alias, step=step)
    if now["FunctionVersion"] == version and _weights(now) == weights:
        return now["FunctionVersion"]
    request: dict[str, Any] = {"FunctionName": function_name, "Name": alias,
                               "FunctionVersion": version,
                               "RoutingConfig": {"AdditionalVersionWeights": weights}}
    if now.get("RevisionId"):
        request["RevisionId"] = now["RevisionId"]
    try:
        lam.update_alias(**request)
    except ClientError as exc:
        raise describe_aws_error("lambda:UpdateAlias", exc) from exc
    return now["FunctionVersion"]


def _variables(config: dict[str, Any]) -> dict[str, str]:
    return dict((config.get("Environment") or {}).get("Variables") or {})


def _weights(alias: dict[str, Any]) -> dict[str, float]:
    routing = alias.get("RoutingConfig") or {}
    return {str(k): float(v) for k, v in (routing.get("AdditionalVersionWeights") or {}).items()}


def _unqualified(arn: str) -> str:
    # arn:aws:lambda:region:account:function:name[:qualifier] -> the function's ARN
    return ":".join(arn.split(":")[:7])


def _show(function_name: str, variables: dict[str, str | None]) -> str:
    return f"{function_name} " + ", ".join(
        f"{n}={v}" if v is not None else f"{n} removed" for n, v in variables.items())


def _show_values(variables: dict[str, str | None], names: list[str]) -> str:
    return ", ".join(f"{n}={variables[n]}" if variables[n] is not None else f"{n} absent"
                     for n in names)
