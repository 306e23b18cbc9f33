"""Point-in-time restore of an Aurora cluster or an RDS instance (private to the playbook).

A restore makes a new cluster or instance with the network, parameter groups, encryption,
backup retention, tags and deletion protection passed explicitly from the source, so
nothing depends on the API's defaults. An Aurora restore makes a cluster with no
instance: `create-instances` adds one per writer of the source, of the same class.
"""

from __future__ import annotations

from datetime import datetime
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
    tag_list,
    unstamp,
    when,
)

# Statuses a restore never leaves on its own: waiting longer would not help.
_FAILED = {"failed", "incompatible-restore", "incompatible-parameters", "incompatible-network",
           "incompatible-option-group", "inaccessible-encryption-credentials",
           "inaccessible-encryption-credentials-recoverable", "restore-error", "storage-full",
           "deleting"}


class AuroraRestore(RestoreEngine):
    noun = "cluster"
    steps = ("restore", "create-instances", "wait-available")

    def find(self, ctx: PlaybookContext, name: str, *, step: str = "plan") -> dict | None:
        try:
            return ctx.clients("rds").describe_db_clusters(
                DBClusterIdentifier=name)["DBClusters"][0]
        except ClientError as exc:
            if error_code(exc) == "DBClusterNotFoundFault":
                return None
            raise describe_aws_error("rds:DescribeDBClusters", exc) from exc

    def describe_source(self, ctx: PlaybookContext, source: str) -> Source:
        cluster = self.find(ctx, source)
        if cluster is None:
            raise refuse(f"cluster {source} does not exist")
        _require_backups(cluster, f"cluster {source}")
        earliest = _restorable(cluster, f"cluster {source}", "EarliestRestorableTime")
        latest = _restorable(cluster, f"cluster {source}", "LatestRestorableTime")
        writers = []
        for member in cluster.get("DBClusterMembers", []):
            instance = _find_instance(ctx, member["DBInstanceIdentifier"])
            if member.get("IsClusterWriter") and instance is not None:
                writers.append(_writer(instance))
        if not writers:
            raise refuse(f"cluster {source} has no writer instance, so there is no instance "
                         "class to give the restored cluster's writer")
        settings = {
            "engine": cluster["Engine"],
            "subnet_group": cluster.get("DBSubnetGroup"),
            "security_group_ids": _security_groups(cluster),
            "parameter_group": cluster.get("DBClusterParameterGroup"),
            "kms_key_id": cluster.get("KmsKeyId") if cluster.get("StorageEncrypted") else None,
            "port": cluster.get("Port"),
            "backup_retention": cluster["BackupRetentionPeriod"],
            "deletion_protection": bool(cluster.get("DeletionProtection")),
            "iam_auth": bool(cluster.get("IAMDatabaseAuthenticationEnabled")),
            "log_exports": list(cluster.get("EnabledCloudwatchLogsExports") or []),
            # A db.serverless writer needs its cluster to have a capacity range.
            "serverless_v2": _scaling(cluster.get("ServerlessV2ScalingConfiguration")),
            "tags": _tag_dict(cluster),
            "writers": writers,
        }
        return Source(arn=cluster["DBClusterArn"], earliest=earliest, latest=latest,
                      settings=settings)

    def target_arn(self, source_arn: str, target: str) -> str:
        return f"{source_arn.rsplit(':', 1)[0]}:{target}"

    def created(self, state: dict[str, Any], target_arn: str) -> list[Change]:
        s = state["settings"]
        changes = [Change(
            resource=target_arn, attribute="created", before=None,
            after=f"{s['engine']} cluster restored from {state['source']} as at "
                  f"{when(unstamp(state['restore_to']))}, in subnet group "
                  f"{s['subnet_group']} with security groups "
                  f"{', '.join(s['security_group_ids']) or 'none'} and parameter group "
                  f"{s['parameter_group']}")]
        instance_arn = target_arn.rsplit(":", 2)[0] + ":db:"
        for instance_id, writer in zip(writer_ids(state), s["writers"], strict=True):
            changes.append(Change(
                resource=instance_arn + instance_id, attribute="created", before=None,
                after=f"{writer['class']} writer of {state['target']} "
                      f"(like {writer['source']})"))
        return changes

    def run_step(self, ctx: PlaybookContext, state: dict[str, Any], step: str) -> StepResult:
        if step == "restore":
            return self._restore(ctx, state)
        if step == "create-instances":
            return self._create_instances(ctx, state)
        if step == "wait-available":
            cluster = self._target(ctx, state, step)
            waiting = _not_ready(f"cluster {state['target']}", cluster["Status"], step)
            for instance_id in writer_ids(state):
                instance = _find_instance(ctx, instance_id, step=step)
                if instance is None:
                    raise refuse(f"instance {instance_id} of {state['target']} does not exist",
                                 step=step)
                waiting += _not_ready(f"instance {instance_id}",
                                      instance["DBInstanceStatus"], step)
            if waiting:
                return StepResult.wait(30, "; ".join(waiting))
            return StepResult.done(f"cluster {state['target']} and its writer are available")
        raise ValueError(f"{NAME} has no Aurora step {step!r}")

    def cutover_value(self, ctx: PlaybookContext, state: dict[str, Any]) -> str:
        return self._target(ctx, state, "cutover")["Endpoint"]

    def check_available(self, ctx: PlaybookContext, target: str, state: dict[str, Any]) -> str:
        cluster = self.find(ctx, target, step="verify")
        statuses = {f"cluster {target}": cluster["Status"] if cluster else "missing"}
        for instance_id in writer_ids(state):
            instance = _find_instance(ctx, instance_id, step="verify")
            statuses[f"instance {instance_id}"] = (instance["DBInstanceStatus"] if instance
                                                   else "missing")
        wrong = [f"{what} is {status}" for what, status in statuses.items()
                 if status != "available"]
        if wrong:
            raise VerificationFailed("; ".join(wrong) + ", expected available",
                                     playbook=NAME, step="verify")
        return f"cluster {target} and its writer are available"

    # --- steps ----------------------------------------------------------------------------

    def _restore(self, ctx: PlaybookContext, state: dict[str, Any]) -> StepResult:
        s, target = state["settings"], state["target"]
        request = _present({
            "SourceDBClusterIdentifier": state["source"],
            "DBClusterIdentifier": target,
            "RestoreToTime": unstamp(state["restore_to"]),
            "DBSubnetGroupName": s["subnet_group"],
            "VpcSecurityGroupIds": s["security_group_ids"],
            "DBClusterParameterGroupName": s["parameter_group"],
            "KmsKeyId": s["kms_key_id"],
            "Port": s["port"],
            "BackupRetentionPeriod": s["backup_retention"],
            "DeletionProtection": s["deletion_protection"],
            "EnableIAMDatabaseAuthentication": s["iam_auth"] or None,
            "EnableCloudwatchLogsExports": s["log_exports"],
            "ServerlessV2ScalingConfiguration": s["serverless_v2"],
            "Tags": tag_list(restored_tags(s["tags"], incident_id=ctx.incident_id,
                                           source=state["source"])),
        })
        rds = ctx.clients("rds")
        made = create_once(
            ctx, f"cluster:{target}", what=f"cluster {target}", step="restore",
            find=lambda: self.find(ctx, target, step="restore"),
            create=lambda: rds.restore_db_cluster_to_point_in_time(**request),
            call="rds:RestoreDBClusterToPointInTime",
            exists_codes=frozenset({"DBClusterAlreadyExistsFault"}))
        ctx.progress["target_arn"] = self._target(ctx, state, "restore")["DBClusterArn"]
        verb = "requested" if made else "was already requested"
        return StepResult.done(f"restore of cluster {state['source']} as at "
                               f"{when(unstamp(state['restore_to']))} {verb} as {target}")

    def _create_instances(self, ctx: PlaybookContext, state: dict[str, Any]) -> StepResult:
        target = state["target"]
        cluster = self._target(ctx, state, "create-instances")
        waiting = _not_ready(f"cluster {target}", cluster["Status"], "create-instances")
        if waiting:
            return StepResult.wait(30, f"{waiting[0]}; its writer is added once it is available")
        rds = ctx.clients("rds")
        made = []
        for instance_id, writer in zip(writer_ids(state), state["settings"]["writers"],
                                       strict=True):
            request = _present({
                "DBInstanceIdentifier": instance_id, "DBClusterIdentifier": target,
                "DBInstanceClass": writer["class"], "Engine": writer["engine"],
                "DBParameterGroupName": writer["parameter_group"],
                "PubliclyAccessible": writer["publicly_accessible"],
                "Tags": tag_list(restored_tags(writer["tags"], incident_id=ctx.incident_id,
                                               source=writer["source"])),
            })
            if create_once(
                    ctx, f"instance:{instance_id}", what=f"instance {instance_id}",
                    step="create-instances",
                    find=lambda i=instance_id: _find_instance(ctx, i, step="create-instances"),
                    create=lambda r=request: rds.create_db_instance(**r),
                    call="rds:CreateDBInstance",
                    exists_codes=frozenset({"DBInstanceAlreadyExists"})):
                made.append(f"{instance_id} ({writer['class']})")
        return StepResult.done(f"created {', '.join(made)} in cluster {target}" if made
                               else f"the writer of cluster {target} was already created")

    def _target(self, ctx: PlaybookContext, state: dict[str, Any], step: str) -> dict:
        cluster = self.find(ctx, state["target"], step=step)
        if cluster is None:
            raise refuse(f"cluster {state['target']} does not exist: the restore did not "
                         "start or it was deleted", step=step)
        return cluster


class RdsRestore(RestoreEngine):
    noun = "instance"
    steps = ("restore", "wait-available")

    def find(self, ctx: PlaybookContext, name: str, *, step: str = "plan") -> dict | None:
        return _find_instance(ctx, name, step=step)

    def describe_source(self, ctx: PlaybookContext, source: str) -> Source:
        instance = self.find(ctx, source)
        if instance is None:
            raise refuse(f"instance {source} does not exist")
        if instance.get("DBClusterIdentifier"):
            raise refuse(f"instance {source} belongs to Aurora cluster "
                         f"{instance['DBClusterIdentifier']}: restore the cluster "
                         f"(engine aurora, source {instance['DBClusterIdentifier']})")
        _require_backups(instance, f"instance {source}")
        latest = _restorable(instance, f"instance {source}", "LatestRestorableTime")
        parameter_groups = [g["DBParameterGroupName"]
                            for g in instance.get("DBParameterGroups", [])]
        option_groups = [g["OptionGroupName"] for g in instance.get("OptionGroupMemberships", [])]
        settings = {
            "class": instance["DBInstanceClass"],
            "subnet_group": (instance.get("DBSubnetGroup") or {}).get("DBSubnetGroupName"),
            "security_group_ids": _security_groups(instance),
            "multi_az": bool(instance.get("MultiAZ")),
            "parameter_group": _custom(parameter_groups[0] if parameter_groups else None),
            "option_group": _custom(option_groups[0] if option_groups else None),
            "port": (instance.get("Endpoint") or {}).get("Port") or instance.get("DbInstancePort"),
            "publicly_accessible": bool(instance.get("PubliclyAccessible")),
            "backup_retention": instance["BackupRetentionPeriod"],
            "deletion_protection": bool(instance.get("DeletionProtection")),
            "iam_auth": bool(instance.get("IAMDatabaseAuthenticationEnabled")),
            "log_exports": list(instance.get("EnabledCloudwatchLogsExports") or []),
            "tags": _tag_dict(instance),
        }
        return Source(arn=instance["DBInstanceArn"], earliest=_earliest(ctx, instance),
                      latest=latest, settings=settings)

    def target_arn(self, source_arn: str, target: str) -> str:
        return f"{source_arn.rsplit(':', 1)[0]}:{target}"

    def created(self, state: dict[str, Any], target_arn: str) -> list[Change]:
        s = state["settings"]
        return [Change(
            resource=target_arn, attribute="created", before=None,
            after=f"{s['class']}{' Multi-AZ' if s['multi_az'] else ''} instance restored "
                  f"from {state['source']} as at {when(unstamp(state['restore_to']))}, in "
                  f"subnet group {s['subnet_group']} with security groups "
                  f"{', '.join(s['security_group_ids']) or 'none'}")]

    def run_step(self, ctx: PlaybookContext, state: dict[str, Any], step: str) -> StepResult:
        if step == "restore":
            return self._restore(ctx, state)
        if step == "wait-available":
            instance = self._target(ctx, state, step)
            waiting = _not_ready(f"instance {state['target']}", instance["DBInstanceStatus"],
                                 step)
            if waiting:
                return StepResult.wait(30, waiting[0])
            return StepResult.done(f"instance {state['target']} is available")
        raise ValueError(f"{NAME} has no RDS step {step!r}")

    def cutover_value(self, ctx: PlaybookContext, state: dict[str, Any]) -> str:
        return self._target(ctx, state, "cutover")["Endpoint"]["Address"]

    def check_available(self, ctx: PlaybookContext, target: str, state: dict[str, Any]) -> str:
        instance = self.find(ctx, target, step="verify")
        status = instance["DBInstanceStatus"] if instance else "missing"
        if status != "available":
            raise VerificationFailed(f"instance {target} is {status}, expected available",
                                     playbook=NAME, step="verify")
        return f"instance {target} is available"

    def _restore(self, ctx: PlaybookContext, state: dict[str, Any]) -> StepResult:
        s, target = state["settings"], state["target"]
        request = _present({
            "SourceDBInstanceIdentifier": state["source"],
            "TargetDBInstanceIdentifier": target,
            "RestoreTime": unstamp(state["restore_to"]),
            "DBInstanceClass": s["class"],
            "DBSubnetGroupName": s["subnet_group"],
            "VpcSecurityGroupIds": s["security_group_ids"],
            "MultiAZ": s["multi_az"],
            "DBParameterGroupName": s["parameter_group"],
            "OptionGroupName": s["option_group"],
            "Port": s["port"],
            "PubliclyAccessible": s["publicly_accessible"],
            "BackupRetentionPeriod": s["backup_retention"],
            "DeletionProtection": s["deletion_protection"],
            "EnableIAMDatabaseAuthentication": s["iam_auth"] or None,
            "EnableCloudwatchLogsExports": s["log_exports"],
            "Tags": tag_list(restored_tags(s["tags"], incident_id=ctx.incident_id,
                                           source=state["source"])),
        })
        rds = ctx.clients("rds")
        made = create_once(
            ctx, f"instance:{target}", what=f"instance {target}", step="restore",
            find=lambda: self.find(ctx, target, step="restore"),
            create=lambda: rds.restore_db_instance_to_point_in_time(**request),
            call="rds:RestoreDBInstanceToPointInTime",
            exists_codes=frozenset({"DBInstanceAlreadyExists"}))
        ctx.progress["target_arn"] = self._target(ctx, state, "restore")["DBInstanceArn"]
        verb = "requested" if made else "was already requested"
        return StepResult.done(f"restore of instance {state['source']} as at "
                               f"{when(unstamp(state['restore_to']))} {verb} as {target}")

    def _target(self, ctx: PlaybookContext, state: dict[str, Any], step: str) -> dict:
        instance = self.find(ctx, state["target"], step=step)
        if instance is None:
            raise refuse(f"instance {state['target']} does not exist: the restore did not "
                         "start or it was deleted", step=step)
        return instance


def writer_ids(state: dict[str, Any]) -> list[str]:
    """The restored cluster's instances: `<target>-writer-1`, one per writer of the source."""
    return [f"{state['target']}-writer-{n}"
            for n in range(1, len(state["settings"]["writers"]) + 1)]


def _find_instance(ctx: PlaybookContext, name: str, *, step: str = "plan") -> dict | None:
    try:
        return ctx.clients("rds").describe_db_instances(
            DBInstanceIdentifier=name)["DBInstances"][0]
    except ClientError as exc:
        if error_code(exc) in {"DBInstanceNotFound", "DBInstanceNotFoundFault"}:
            return None
        raise describe_aws_error("rds:DescribeDBInstances", exc) from exc


def _require_backups(resource: dict[str, Any], what: str) -> None:
    if not resource.get("BackupRetentionPeriod"):
        raise refuse(f"automated backups are off for {what} (backup retention 0 days); "
                     "nothing can be restored")


def _restorable(resource: dict[str, Any], what: str, key: str) -> datetime:
    if not resource.get(key):
        raise refuse(f"{what} has no restorable time yet: its first backup has not finished")
    return as_utc(resource[key])


def _earliest(ctx: PlaybookContext, instance: dict[str, Any]) -> datetime:
    """RDS reports an instance's earliest restorable time on its automated backups."""
    try:
        backups = ctx.clients("rds").describe_db_instance_automated_backups(
            DBInstanceIdentifier=instance["DBInstanceIdentifier"])["DBInstanceAutomatedBackups"]
    except ClientError as exc:
        if error_code(exc) not in {"DBInstanceAutomatedBackupNotFound",
                                   "DBInstanceAutomatedBackupNotFoundFault"}:
            raise describe_aws_error("rds:DescribeDBInstanceAutomatedBackups", exc) from exc
        backups = []
    for backup in backups:
        # A retained backup of an older instance of the same name has another resource id.
        if backup.get("DbiResourceId", instance.get("DbiResourceId")) != instance.get(
                "DbiResourceId"):
            continue
        earliest = (backup.get("RestoreWindow") or {}).get("EarliestTime")
        if earliest:
            return as_utc(earliest)
    # moto 5 lists the automated backup without a RestoreWindow; nothing can be restored
    # from before the instance existed, so its creation time is the safe lower bound.
    return as_utc(instance["InstanceCreateTime"])


def _not_ready(what: str, status: str, step: str) -> list[str]:
    if status in _FAILED:
        raise refuse(f"{what} is {status}: the restore failed; see its events in the RDS "
                     "console", step=step)
    return [] if status == "available" else [f"{what} is {status}"]


def _writer(instance: dict[str, Any]) -> dict[str, Any]:
    groups = [g["DBParameterGroupName"] for g in instance.get("DBParameterGroups", [])]
    return {
        "source": instance["DBInstanceIdentifier"],
        "class": instance["DBInstanceClass"],
        "engine": instance["Engine"],
        "parameter_group": _custom(groups[0] if groups else None),
        "publicly_accessible": bool(instance.get("PubliclyAccessible")),
        "tags": _tag_dict(instance),
    }


def _security_groups(resource: dict[str, Any]) -> list[str]:
    return [g["VpcSecurityGroupId"] for g in resource.get("VpcSecurityGroups", [])]


def _tag_dict(resource: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in resource.get("TagList", [])}


def _scaling(config: dict[str, Any] | None) -> dict[str, Any] | None:
    if not config:
        return None
    keys = ("MinCapacity", "MaxCapacity", "SecondsUntilAutoPause")
    return {k: config[k] for k in keys if k in config} or None


def _custom(group: str | None) -> str | None:
    """A group worth naming: the defaults are what a restore picks anyway."""
    return None if not group or group.startswith(("default.", "default:")) else group


def _present(request: dict[str, Any]) -> dict[str, Any]:
    """Drop what the source does not have, so the API's own default applies."""
    return {k: v for k, v in request.items() if v is not None and v != []}
