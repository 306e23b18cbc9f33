"""Point-in-time restore of a DynamoDB table (a private module of point-in-time-restore).

A restore carries the key schema, indexes, items, billing mode and encryption (the last
two passed as overrides). Per the DynamoDB docs it does not carry tags, TTL, streams,
point-in-time recovery, auto scaling policies, IAM policies or CloudWatch alarms: the
`reapply-settings` step copies the first four (and deletion protection) from the source;
auto scaling, IAM and alarms are left to people, and the plan warns where it matters.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from fireline.aws import describe_aws_error, error_code
from fireline.errors import VerificationFailed
from fireline.playbook import Change, PlaybookContext, StepResult
from fireline.timestamps import as_utc
from playbooks._restore_common import (
    NAME,
    RestoreEngine,
    Source,
    create_once,
    refuse,
    restored_tags,
    unstamp,
    when,
)

_ON = {"ENABLED", "ENABLING"}
_DESCRIBE_UPDATE = {"StreamSpecification": "stream",
                    "DeletionProtectionEnabled": "deletion protection"}


class DynamoDBRestore(RestoreEngine):
    noun = "table"
    steps = ("restore", "wait-available", "reapply-settings")

    def find(self, ctx: PlaybookContext, name: str, *, step: str = "plan") -> dict | None:
        try:
            return ctx.clients("dynamodb").describe_table(TableName=name)["Table"]
        except ClientError as exc:
            if error_code(exc) == "ResourceNotFoundException":
                return None
            raise describe_aws_error("dynamodb:DescribeTable", exc) from exc

    def describe_source(self, ctx: PlaybookContext, source: str) -> Source:
        ddb = ctx.clients("dynamodb")
        table = self.find(ctx, source)
        if table is None:
            raise refuse(f"table {source} does not exist")
        try:
            backups = ddb.describe_continuous_backups(TableName=source)
        except ClientError as exc:
            raise describe_aws_error("dynamodb:DescribeContinuousBackups", exc) from exc
        try:
            ttl = ddb.describe_time_to_live(TableName=source)["TimeToLiveDescription"]
        except ClientError as exc:
            raise describe_aws_error("dynamodb:DescribeTimeToLive", exc) from exc
        pitr = backups["ContinuousBackupsDescription"].get("PointInTimeRecoveryDescription", {})
        if pitr.get("PointInTimeRecoveryStatus") != "ENABLED":
            raise refuse(f"point-in-time recovery is off for table {source}; "
                         "nothing can be restored")
        # In AWS the latest restorable time follows the clock (about 5 minutes behind);
        # moto freezes both ends of the window at the moment PITR was enabled.
        earliest = as_utc(pitr["EarliestRestorableDateTime"])
        latest = as_utc(pitr["LatestRestorableDateTime"])
        stream = table.get("StreamSpecification") or {}
        sse = table.get("SSEDescription") or {}
        billing = (table.get("BillingModeSummary") or {}).get("BillingMode", "PROVISIONED")
        settings = {
            "billing_mode": billing,
            # An AWS-owned key (no SSEDescription) is the restore's default anyway.
            "kms_key": sse.get("KMSMasterKeyArn") if sse.get("Status") in _ON else None,
            "tags": _tags(ddb, table["TableArn"]),
            "ttl_attribute": ttl.get("AttributeName") if ttl.get("TimeToLiveStatus") in _ON
            else None,
            "stream_view_type": stream.get("StreamViewType") if stream.get("StreamEnabled")
            else None,
            "deletion_protection": bool(table.get("DeletionProtectionEnabled")),
            "recovery_period_days": pitr.get("RecoveryPeriodInDays"),
        }
        warnings = []
        if billing == "PROVISIONED":
            warnings.append(f"auto scaling policies of table {source} are not copied: "
                            "set them on the restored table before it takes traffic")
        return Source(arn=table["TableArn"], earliest=earliest, latest=latest,
                      settings=settings, warnings=tuple(warnings))

    def target_arn(self, source_arn: str, target: str) -> str:
        return f"{source_arn.rsplit('/', 1)[0]}/{target}"

    def planned_value(self, target: str) -> str:
        return target

    def created(self, state: dict[str, Any], target_arn: str) -> list[Change]:
        kept = ", ".join(_reapplied(state["settings"])) or "nothing else"
        return [Change(resource=target_arn, attribute="created", before=None,
                       after=f"table restored from {state['source']} as at "
                             f"{when(unstamp(state['restore_to']))}; re-applied: {kept}")]

    def run_step(self, ctx: PlaybookContext, state: dict[str, Any], step: str) -> StepResult:
        if step == "restore":
            return self._restore(ctx, state)
        if step == "wait-available":
            table = self._target(ctx, state, step)
            if table["TableStatus"] != "ACTIVE":
                return StepResult.wait(10, f"table {state['target']} is "
                                           f"{table['TableStatus']}")
            return StepResult.done(f"table {state['target']} is ACTIVE")
        if step == "reapply-settings":
            return self._reapply(ctx, state)
        raise ValueError(f"{NAME} has no DynamoDB step {step!r}")

    def cutover_value(self, ctx: PlaybookContext, state: dict[str, Any]) -> str:
        return state["target"]

    def check_available(self, ctx: PlaybookContext, target: str, state: dict[str, Any]) -> str:
        table = self.find(ctx, target, step="verify")
        if table is None or table["TableStatus"] != "ACTIVE":
            status = table["TableStatus"] if table else "missing"
            raise VerificationFailed(f"table {target} is {status}, expected ACTIVE",
                                     playbook=NAME, step="verify")
        return f"table {target} is ACTIVE"

    # --- steps ----------------------------------------------------------------------------

    def _restore(self, ctx: PlaybookContext, state: dict[str, Any]) -> StepResult:
        s = state["settings"]
        request: dict[str, Any] = {
            "SourceTableName": state["source"], "TargetTableName": state["target"],
            "RestoreDateTime": unstamp(state["restore_to"]),
        }
        # On-demand needs no throughput; a provisioned table keeps its capacity as it was.
        if s["billing_mode"] == "PAY_PER_REQUEST":
            request["BillingModeOverride"] = "PAY_PER_REQUEST"
        if s["kms_key"]:
            request["SSESpecificationOverride"] = {"Enabled": True, "SSEType": "KMS",
                                                   "KMSMasterKeyId": s["kms_key"]}
        ddb = ctx.clients("dynamodb")
        made = create_once(
            ctx, f"table:{state['target']}", what=f"table {state['target']}", step="restore",
            find=lambda: self.find(ctx, state["target"], step="restore"),
            create=lambda: ddb.restore_table_to_point_in_time(**request),
            call="dynamodb:RestoreTableToPointInTime",
            exists_codes=frozenset({"TableAlreadyExistsException"}))
        table = self._target(ctx, state, "restore")
        ctx.progress["target_arn"] = table["TableArn"]
        verb = "requested" if made else "was already requested"
        return StepResult.done(f"restore of table {state['source']} as at "
                               f"{when(unstamp(state['restore_to']))} {verb} "
                               f"as {state['target']}")

    def _reapply(self, ctx: PlaybookContext, state: dict[str, Any]) -> StepResult:
        """Each setting is read on the target first, so running this twice changes nothing."""
        s, target = state["settings"], state["target"]
        ddb = ctx.clients("dynamodb")
        table = self._target(ctx, state, "reapply-settings")
        if table["TableStatus"] != "ACTIVE":
            return StepResult.wait(10, f"table {target} is {table['TableStatus']}")
        applied = []
        try:
            wanted = restored_tags(s["tags"], incident_id=ctx.incident_id,
                                   source=state["source"])
            have = _tags(ddb, table["TableArn"])
            missing = {k: v for k, v in wanted.items() if have.get(k) != v}
            if missing:
                ddb.tag_resource(ResourceArn=table["TableArn"],
                                 Tags=[{"Key": k, "Value": v} for k, v in missing.items()])
                applied.append(f"{len(missing)} tags")
            if s["ttl_attribute"]:
                ttl = ddb.describe_time_to_live(TableName=target)["TimeToLiveDescription"]
                if ttl.get("TimeToLiveStatus") not in _ON:
                    ddb.update_time_to_live(TableName=target, TimeToLiveSpecification={
                        "Enabled": True, "AttributeName": s["ttl_attribute"]})
                    applied.append(f"TTL on {s['ttl_attribute']}")
            backups = ddb.describe_continuous_backups(TableName=target)
            pitr = backups["ContinuousBackupsDescription"].get(
                "PointInTimeRecoveryDescription", {})
            if pitr.get("PointInTimeRecoveryStatus") != "ENABLED":
                spec: dict[str, Any] = {"PointInTimeRecoveryEnabled": True}
                if s["recovery_period_days"]:
                    spec["RecoveryPeriodInDays"] = s["recovery_period_days"]
                ddb.update_continuous_backups(TableName=target,
                                              PointInTimeRecoverySpecification=spec)
                applied.append("point-in-time recovery")
            update = _table_update(s, table)
            if update:
                ddb.update_table(TableName=target, **update)
                applied += [_DESCRIBE_UPDATE[k] for k in update]
        except ClientError as exc:
            raise describe_aws_error(f"dynamodb settings of {target}", exc) from exc
        ctx.progress["reapplied"] = sorted(set(ctx.progress.get("reapplied", [])) | set(applied))
        return StepResult.done(f"re-applied to table {target}: {', '.join(applied)}"
                               if applied else f"table {target} already has the settings")

    def _target(self, ctx: PlaybookContext, state: dict[str, Any], step: str) -> dict:
        table = self.find(ctx, state["target"], step=step)
        if table is None:
            raise refuse(f"table {state['target']} does not exist: the restore did not start "
                         "or it was deleted", step=step)
        return table


def _table_update(settings: dict[str, Any], table: dict[str, Any]) -> dict[str, Any]:
    """Stream and deletion protection in one UpdateTable: the table is UPDATING after it."""
    update: dict[str, Any] = {}
    view = settings["stream_view_type"]
    if view and not (table.get("StreamSpecification") or {}).get("StreamEnabled"):
        update["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": view}
    if settings["deletion_protection"] and not table.get("DeletionProtectionEnabled"):
        update["DeletionProtectionEnabled"] = True
    return update


def _reapplied(settings: dict[str, Any]) -> list[str]:
    kept = []
    if settings["tags"]:
        kept.append("tags " + ", ".join(f"{k}={v}" for k, v in sorted(settings["tags"].items())))
    if settings["ttl_attribute"]:
        kept.append(f"TTL on {settings['ttl_attribute']}")
    if settings["stream_view_type"]:
        kept.append(f"stream {settings['stream_view_type']}")
    kept.append("point-in-time recovery")
    if settings["deletion_protection"]:
        kept.append("deletion protection")
    return kept


def _tags(ddb: Any, arn: str) -> dict[str, str]:
    tags: dict[str, str] = {}
    request: dict[str, Any] = {"ResourceArn": arn}
    try:
        while True:
            page = ddb.list_tags_of_resource(**request)
            tags.update({t["Key"]: t["Value"] for t in page.get("Tags", [])})
            if not page.get("NextToken"):
                return tags
            request["NextToken"] = page["NextToken"]
    except ClientError as exc:
        raise describe_aws_error("dynamodb:ListTagsOfResource", exc) from exc
