"""The point-in-time-restore playbook driven step by step as the engine does, against moto."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from fireline import aws, registry
from fireline.alarm import AlarmEvent
from fireline.errors import InvalidParams, PreconditionFailed, VerificationFailed
from fireline.local.database_fixture import (
    create_aurora_cluster,
    create_pitr_table,
    create_rds_instance,
)
from fireline.local.lambda_fixture import deploy_versions
from fireline.playbook import Outcome, Plan, PlaybookContext
from tests.support.runs import Crash, Saved

PLAYBOOK = registry.get("point-in-time-restore")
INCIDENT = "INC-restore"
SOURCE = {"dynamodb": "orders", "aurora": "orders-db", "rds": "orders-db"}
TARGET = {"dynamodb": "orders-restored", "aurora": "orders-db-restored",
          "rds": "orders-db-restored"}
VARIABLE = {"dynamodb": "TABLE_NAME", "aurora": "DB_HOST", "rds": "DB_HOST"}
ITEMS = [{"pk": "order#1001", "status": "PAID", "total": 4200, "expires_at": 1795000000},
         {"pk": "order#1002", "status": "SHIPPED", "total": 1999, "expires_at": 1795000000}]
READ_ONLY = ("describe_", "list_", "get_")


class Spy:
    """A ClientFactory over moto that records every call, and can die after one of them.

    `crash_on` names a call prefix: the first such call reaches moto, then the process
    "dies" before the playbook sees the answer. `rewrite(name, result)` may alter answers.
    """

    def __init__(self, *, crash_on: str | None = None, rewrite=None) -> None:
        self.calls: list[tuple[str, str, dict[str, Any]]] = []
        self.crash_on = crash_on
        self.rewrite = rewrite

    def __call__(self, service: str, region: str | None = None) -> Any:
        return _SpiedClient(service, aws.client(service, region), self)

    def named(self, prefix: str) -> list[tuple[str, dict[str, Any]]]:
        return [(name, kwargs) for _, name, kwargs in self.calls if name.startswith(prefix)]


class _SpiedClient:
    def __init__(self, service: str, client: Any, spy: Spy) -> None:
        self._service, self._client, self._spy = service, client, spy

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if not callable(attr) or name in {"get_paginator", "get_waiter", "can_paginate"}:
            return attr

        def call(**kwargs: Any) -> Any:
            result = attr(**kwargs)
            self._spy.calls.append((self._service, name, kwargs))
            if self._spy.crash_on and name.startswith(self._spy.crash_on):
                self._spy.crash_on = None
                raise Crash(name)
            return self._spy.rewrite(name, result) if self._spy.rewrite else result
        return call


@pytest.fixture
def ctx(moto) -> PlaybookContext:
    return Saved(INCIDENT).context()


def _plan(ctx: PlaybookContext, **raw: Any) -> Plan:
    plan = PLAYBOOK.plan(ctx, PLAYBOOK.parse_params(raw))
    return Plan.model_validate(plan.model_dump(mode="json"))  # as the incident stores it


def _drive(ctx: PlaybookContext, plan: Plan, *, start: str | None = None,
           max_waits: int = 3) -> tuple[Outcome, list[str]]:
    """Run the steps in order as the engine does: a step that answers wait runs again."""
    steps = PLAYBOOK.steps(plan)
    said = []
    for step in steps[steps.index(start) if start else 0:]:
        for _ in range(max_waits + 1):
            result = PLAYBOOK.run_step(ctx, plan, step)
            ctx.progress = json.loads(json.dumps(ctx.progress))  # persisted after each step
            said.append(f"{step}: {result.status}: {result.message}")
            if result.status == "done":
                break
        else:
            pytest.fail(f"step {step} still waiting after {max_waits} waits: {said[-1]}")
    outcome = PLAYBOOK.outcome(ctx, plan)
    return Outcome.model_validate(outcome.model_dump(mode="json")), said


def _source(engine: str, **kwargs: Any) -> dict[str, Any]:
    if engine == "dynamodb":
        return create_pitr_table(aws.client, SOURCE[engine], items=ITEMS, **kwargs)
    if engine == "aurora":
        return create_aurora_cluster(aws.client, SOURCE[engine], **kwargs)
    return create_rds_instance(aws.client, SOURCE[engine], **kwargs)


def _inside(source: dict[str, Any]) -> str:
    """A restore time moto accepts. Its DynamoDB window is the instant PITR was enabled (two
    clock reads, so the ends can differ by a millisecond); RDS and Aurora run from creation
    to now. The earliest end is inside all of them."""
    return source["earliest"].isoformat()


def _function(name: str = "orders-api", **environment: str) -> None:
    deploy_versions(aws.client, name, versions=2, environment=environment)


def _env(name: str = "orders-api", qualifier: str = "$LATEST") -> dict[str, str]:
    config = aws.client("lambda").get_function_configuration(FunctionName=name,
                                                             Qualifier=qualifier)
    return config.get("Environment", {}).get("Variables", {})


def _alias_version(name: str = "orders-api") -> str:
    return aws.client("lambda").get_alias(FunctionName=name, Name="live")["FunctionVersion"]


def _tags(arn: str) -> dict[str, str]:
    if ":dynamodb:" in arn:
        tags = aws.client("dynamodb").list_tags_of_resource(ResourceArn=arn)["Tags"]
    else:
        tags = aws.client("rds").list_tags_for_resource(ResourceName=arn)["TagList"]
    return {t["Key"]: t["Value"] for t in tags}


def _world() -> dict[str, Any]:
    ddb, rds, lam = aws.client("dynamodb"), aws.client("rds"), aws.client("lambda")
    return {
        "tables": ddb.list_tables()["TableNames"],
        "clusters": [c["DBClusterIdentifier"] for c in rds.describe_db_clusters()["DBClusters"]],
        "instances": [i["DBInstanceIdentifier"]
                      for i in rds.describe_db_instances()["DBInstances"]],
        "env": _env(),
        "versions": [v["Version"] for v in
                     lam.list_versions_by_function(FunctionName="orders-api")["Versions"]],
        "alias": _alias_version(),
    }


# --- DynamoDB ------------------------------------------------------------------------------


def test_dynamodb_restore_reapplies_what_a_restore_drops(moto):
    source = create_pitr_table(
        aws.client, "orders", items=ITEMS, ttl_attribute="expires_at",
        tags={"team": "orders", "cost-centre": "cc-4410"}, stream="NEW_AND_OLD_IMAGES",
        encrypted=True, deletion_protection=True)
    spy = Spy()
    ctx = Saved(INCIDENT).context(spy)
    plan = _plan(ctx, engine="dynamodb", source="orders", restore_to=_inside(source),
                 target="orders-restored")

    assert PLAYBOOK.steps(plan) == ["restore", "wait-available", "reapply-settings"]
    outcome, said = _drive(ctx, plan)

    ddb = aws.client("dynamodb")
    table = ddb.describe_table(TableName="orders-restored")["Table"]
    items = ddb.scan(TableName="orders-restored")["Items"]
    assert sorted(i["pk"]["S"] for i in items) == ["order#1001", "order#1002"]
    assert _tags(table["TableArn"]) == {
        "team": "orders", "cost-centre": "cc-4410", "fireline:incident": INCIDENT,
        "fireline:restored-from": "orders"}
    assert ddb.describe_time_to_live(TableName="orders-restored")["TimeToLiveDescription"] == {
        "TimeToLiveStatus": "ENABLED", "AttributeName": "expires_at"}
    assert table["StreamSpecification"] == {"StreamEnabled": True,
                                            "StreamViewType": "NEW_AND_OLD_IMAGES"}
    assert table["DeletionProtectionEnabled"] is True
    pitr = ddb.describe_continuous_backups(TableName="orders-restored")[
        "ContinuousBackupsDescription"]["PointInTimeRecoveryDescription"]
    assert pitr["PointInTimeRecoveryStatus"] == "ENABLED"
    # moto ignores the overrides, so the request is where they can be seen.
    [(_, request)] = spy.named("restore_")
    assert request["RestoreDateTime"] == source["earliest"]
    assert request["BillingModeOverride"] == "PAY_PER_REQUEST"
    assert request["SSESpecificationOverride"]["KMSMasterKeyId"].endswith(":key/1f2e3d4c-"
                                                                          "5b6a-4789-8abc-"
                                                                          "def012345678")
    assert _tags(source["arn"]) == {"team": "orders", "cost-centre": "cc-4410"}
    assert outcome.after["arn"] == table["TableArn"] and outcome.after["table"] == \
        "orders-restored"
    assert "reapply-settings: done: re-applied to table orders-restored: 4 tags, TTL on " \
           "expires_at, point-in-time recovery, stream, deletion protection" in said
    assert outcome.after["reapplied"] == ["4 tags", "TTL on expires_at", "deletion protection",
                                          "point-in-time recovery", "stream"]
    assert PLAYBOOK.verify(ctx, outcome).ok


def test_reapplying_settings_twice_changes_nothing(ctx):
    source = create_pitr_table(aws.client, "orders", ttl_attribute="expires_at",
                               stream="KEYS_ONLY", tags={"team": "orders"})
    plan = _plan(ctx, engine="dynamodb", source="orders", restore_to=_inside(source),
                 target="orders-restored")
    _drive(ctx, plan)

    again = PLAYBOOK.run_step(ctx, plan, "reapply-settings")

    assert again.message == "table orders-restored already has the settings"


def test_settings_wait_until_the_restored_table_is_active(moto):
    source = create_pitr_table(aws.client, "orders", ttl_attribute="expires_at")
    statuses = ["CREATING", "CREATING"]

    def creating(name: str, result: dict) -> dict:
        if name == "describe_table" and result["Table"]["TableName"] == "orders-restored" \
                and statuses:
            result["Table"]["TableStatus"] = statuses.pop(0)
        return result

    spy = Spy(rewrite=creating)
    ctx = Saved(INCIDENT).context(spy)
    plan = _plan(ctx, engine="dynamodb", source="orders", restore_to=_inside(source),
                 target="orders-restored")
    PLAYBOOK.run_step(ctx, plan, "restore")  # reads the new table once: CREATING

    waiting = PLAYBOOK.run_step(ctx, plan, "wait-available")

    assert (waiting.status, waiting.wait_seconds, waiting.message) == (
        "wait", 10, "table orders-restored is CREATING")
    assert PLAYBOOK.run_step(ctx, plan, "wait-available").status == "done"
    assert not spy.named("update_time_to_live")


def test_the_default_restore_time_is_clamped_to_the_latest_with_a_warning(moto):
    source = create_pitr_table(aws.client, "orders")
    now = source["latest"] + timedelta(minutes=31)
    ctx = Saved(INCIDENT).context(clock=lambda: now, reference_time=now - timedelta(minutes=1))

    plan = _plan(ctx, engine="dynamodb", source="orders")

    assert plan.state["target"] == f"orders-restored-{now:%Y%m%d%H%M}"
    assert datetime.fromisoformat(plan.state["restore_to"]) == source["latest"]
    [warning] = plan.warnings
    assert "5 minutes before the trouble began" in warning
    assert "restoring to the latest restorable time" in warning


def test_a_default_restore_time_before_the_window_is_refused(moto):
    source = create_pitr_table(aws.client, "orders")
    ctx = Saved(INCIDENT).context(reference_time=source["earliest"] + timedelta(minutes=2))

    with pytest.raises(PreconditionFailed, match=r"5 minutes before the trouble began .* is "
                                                 "before the earliest restorable time"):
        PLAYBOOK.plan(ctx, PLAYBOOK.parse_params({"engine": "dynamodb", "source": "orders"}))


# --- Aurora and RDS ------------------------------------------------------------------------


def test_aurora_restore_copies_the_cluster_and_its_writer(moto):
    source = create_aurora_cluster(aws.client, "orders-db", writer_class="db.r6g.xlarge",
                                   tags={"team": "orders"})
    _function(DB_HOST=source["endpoint"], LOG_LEVEL="info")
    spy = Spy()
    ctx = Saved(INCIDENT).context(spy)
    plan = _plan(ctx, engine="aurora", source="orders-db", restore_to=_inside(source),
                 target="orders-db-restored", cutover="orders-api:DB_HOST")

    assert PLAYBOOK.steps(plan) == ["restore", "create-instances", "wait-available", "cutover"]
    outcome, _ = _drive(ctx, plan)

    rds = aws.client("rds")
    cluster = rds.describe_db_clusters(DBClusterIdentifier="orders-db-restored")["DBClusters"][0]
    assert cluster["DBSubnetGroup"] == source["subnet_group"]
    assert [g["VpcSecurityGroupId"] for g in cluster["VpcSecurityGroups"]] == [
        source["security_group_id"]]
    assert cluster["DBClusterParameterGroup"] == source["parameter_group"]
    assert cluster["KmsKeyId"] == source["kms_key_id"] and cluster["StorageEncrypted"]
    assert cluster["DeletionProtection"] is True
    assert _tags(cluster["DBClusterArn"]) == {
        "team": "orders", "fireline:incident": INCIDENT,
        "fireline:restored-from": "orders-db"}
    assert cluster["DBClusterMembers"] == [
        {"DBInstanceIdentifier": "orders-db-restored-writer-1", "IsClusterWriter": True,
         "DBClusterParameterGroupStatus": "in-sync", "PromotionTier": 1}]
    writer = rds.describe_db_instances(
        DBInstanceIdentifier="orders-db-restored-writer-1")["DBInstances"][0]
    assert (writer["DBInstanceClass"], writer["Engine"]) == ("db.r6g.xlarge",
                                                             "aurora-postgresql")
    [(_, request)] = spy.named("restore_")
    assert request["RestoreToTime"] == source["earliest"]
    assert request["SourceDBClusterIdentifier"] == "orders-db"
    assert _env() == {"DB_HOST": cluster["Endpoint"], "LOG_LEVEL": "info"}
    assert cluster["Endpoint"] != source["endpoint"]
    assert outcome.after["endpoint"] == cluster["Endpoint"]
    assert outcome.before["cutover"][0]["variables"] == {"DB_HOST": source["endpoint"]}
    assert PLAYBOOK.verify(ctx, outcome).ok


def test_rds_restore_copies_network_class_and_multi_az(moto):
    source = create_rds_instance(aws.client, "orders-db", instance_class="db.m6g.2xlarge",
                                 tags={"team": "orders"})
    _function(DB_HOST=source["endpoint"])
    spy = Spy()
    ctx = Saved(INCIDENT).context(spy)
    plan = _plan(ctx, engine="rds", source="orders-db", restore_to=_inside(source),
                 target="orders-db-restored", cutover=[{"function_name": "orders-api",
                                                        "variable": "DB_HOST"}])

    assert PLAYBOOK.steps(plan) == ["restore", "wait-available", "cutover"]
    outcome, _ = _drive(ctx, plan)

    restored = aws.client("rds").describe_db_instances(
        DBInstanceIdentifier="orders-db-restored")["DBInstances"][0]
    assert restored["DBInstanceClass"] == "db.m6g.2xlarge" and restored["MultiAZ"] is True
    assert restored["DBSubnetGroup"]["DBSubnetGroupName"] == source["subnet_group"]
    assert [g["VpcSecurityGroupId"] for g in restored["VpcSecurityGroups"]] == [
        source["security_group_id"]]
    assert [g["DBParameterGroupName"] for g in restored["DBParameterGroups"]] == [
        source["parameter_group"]]
    assert restored["DeletionProtection"] is True
    assert _tags(restored["DBInstanceArn"]) == {
        "team": "orders", "fireline:incident": INCIDENT,
        "fireline:restored-from": "orders-db"}
    # moto copies the source's attributes whatever the request says: check the request too.
    [(_, request)] = spy.named("restore_")
    assert {k: request[k] for k in ("SourceDBInstanceIdentifier", "TargetDBInstanceIdentifier",
                                    "RestoreTime", "DBInstanceClass", "DBSubnetGroupName",
                                    "VpcSecurityGroupIds", "MultiAZ", "DBParameterGroupName",
                                    "DeletionProtection")} == {
        "SourceDBInstanceIdentifier": "orders-db",
        "TargetDBInstanceIdentifier": "orders-db-restored",
        "RestoreTime": source["earliest"], "DBInstanceClass": "db.m6g.2xlarge",
        "DBSubnetGroupName": source["subnet_group"],
        "VpcSecurityGroupIds": [source["security_group_id"]], "MultiAZ": True,
        "DBParameterGroupName": source["parameter_group"], "DeletionProtection": True}
    assert _env() == {"DB_HOST": restored["Endpoint"]["Address"]}
    assert outcome.after["endpoint"] == restored["Endpoint"]["Address"] != source["endpoint"]
    assert PLAYBOOK.verify(ctx, outcome).ok


def test_an_instance_of_an_aurora_cluster_is_sent_to_the_cluster(ctx):
    create_aurora_cluster(aws.client, "orders-db")

    with pytest.raises(PreconditionFailed, match="belongs to Aurora cluster orders-db: restore "
                                                 "the cluster"):
        PLAYBOOK.plan(ctx, PLAYBOOK.parse_params({"engine": "rds", "source": "orders-db-1"}))


def test_steps_wait_while_the_restore_is_not_available_and_stop_on_a_failed_one(moto):
    source = create_aurora_cluster(aws.client, "orders-db")
    statuses = ["creating", "backing-up"]

    def slow_writer(name: str, result: dict) -> dict:
        if name == "describe_db_instances" and statuses:
            instance = result["DBInstances"][0]
            if instance["DBInstanceIdentifier"] == "orders-db-restored-writer-1":
                instance["DBInstanceStatus"] = statuses.pop(0)
        return result

    ctx = Saved(INCIDENT).context(Spy(rewrite=slow_writer))
    plan = _plan(ctx, engine="aurora", source="orders-db", restore_to=_inside(source),
                 target="orders-db-restored")
    for step in ("restore", "create-instances"):
        PLAYBOOK.run_step(ctx, plan, step)

    first = PLAYBOOK.run_step(ctx, plan, "wait-available")
    second = PLAYBOOK.run_step(ctx, plan, "wait-available")
    third = PLAYBOOK.run_step(ctx, plan, "wait-available")

    assert (first.status, first.wait_seconds) == ("wait", 30)
    assert first.message == "instance orders-db-restored-writer-1 is creating"
    assert second.message == "instance orders-db-restored-writer-1 is backing-up"
    assert third.status == "done"
    statuses.append("incompatible-restore")
    with pytest.raises(PreconditionFailed, match="writer-1 is incompatible-restore: the "
                                                 "restore failed"):
        PLAYBOOK.run_step(ctx, plan, "wait-available")


# --- refusals, for every engine ------------------------------------------------------------


@pytest.mark.parametrize(("engine", "kwargs", "message"), [
    ("dynamodb", {"pitr": False},
     "point-in-time recovery is off for table orders; nothing can be restored"),
    ("aurora", {"backup_retention": 0},
     r"automated backups are off for cluster orders-db \(backup retention 0 days\)"),
    ("rds", {"backup_retention": 0},
     r"automated backups are off for instance orders-db \(backup retention 0 days\)"),
])
def test_a_source_without_backups_is_refused(ctx, engine, kwargs, message):
    _source(engine, **kwargs)

    with pytest.raises(PreconditionFailed, match=message):
        PLAYBOOK.plan(ctx, PLAYBOOK.parse_params({"engine": engine, "source": SOURCE[engine]}))


@pytest.mark.parametrize("engine", ["dynamodb", "aurora", "rds"])
def test_a_missing_source_is_refused(ctx, engine):
    with pytest.raises(PreconditionFailed, match=f"{SOURCE[engine]} does not exist"):
        PLAYBOOK.plan(ctx, PLAYBOOK.parse_params({"engine": engine, "source": SOURCE[engine]}))


@pytest.mark.parametrize("engine", ["dynamodb", "aurora", "rds"])
def test_restore_times_outside_the_window_are_refused(moto, engine):
    source = _source(engine)
    later = datetime.now(UTC) + timedelta(minutes=10)
    ctx = Saved(INCIDENT).context(clock=lambda: later)

    def plan(restore_to: datetime) -> None:
        PLAYBOOK.plan(ctx, PLAYBOOK.parse_params({
            "engine": engine, "source": SOURCE[engine], "restore_to": restore_to.isoformat()}))

    with pytest.raises(PreconditionFailed, match="is before the earliest restorable time; "
                                                 f"[a-z]+ {SOURCE[engine]} can be restored "
                                                 r"from 20\d\d-.*Z to 20\d\d-.*Z"):
        plan(source["earliest"] - timedelta(hours=1))
    # Later than moto's latest (now, for RDS) but not later than the context's clock.
    with pytest.raises(PreconditionFailed, match="is after the latest restorable time"):
        plan(max(source["latest"] + timedelta(minutes=1), later - timedelta(minutes=5)))
    with pytest.raises(PreconditionFailed, match="is in the future"):
        plan(later + timedelta(hours=1))


@pytest.mark.parametrize("engine", ["dynamodb", "aurora", "rds"])
def test_an_existing_target_is_refused(ctx, engine):
    source = _source(engine)
    if engine == "dynamodb":
        create_pitr_table(aws.client, TARGET[engine])
    elif engine == "aurora":
        create_aurora_cluster(aws.client, TARGET[engine])
    else:
        create_rds_instance(aws.client, TARGET[engine])

    with pytest.raises(PreconditionFailed, match=f"{TARGET[engine]} already exists; pass "
                                                 "another target"):
        PLAYBOOK.plan(ctx, PLAYBOOK.parse_params({
            "engine": engine, "source": SOURCE[engine], "restore_to": _inside(source),
            "target": TARGET[engine]}))


@pytest.mark.parametrize("engine", ["dynamodb", "aurora", "rds"])
def test_plan_is_read_only_and_names_every_change(moto, engine):
    source = _source(engine)
    _function(**{VARIABLE[engine]: SOURCE[engine], "LOG_LEVEL": "info"})
    before = _world()
    spy = Spy()
    ctx = Saved(INCIDENT).context(spy)

    plan = _plan(ctx, engine=engine, source=SOURCE[engine], restore_to=_inside(source),
                 target=TARGET[engine], cutover=f"orders-api:{VARIABLE[engine]}", alias="live")

    assert _world() == before
    assert spy.calls and all(name.startswith(READ_ONLY) for _, name, _ in spy.calls)
    created = [c for c in plan.changes if c.attribute == "created"]
    assert created[0].resource.endswith(TARGET[engine]) and created[0].before is None
    variable, alias = plan.changes[len(created):]
    assert variable.resource.endswith(":function:orders-api")
    assert (variable.attribute, variable.before) == (
        f"Environment.Variables.{VARIABLE[engine]}", SOURCE[engine])
    assert variable.after == (TARGET[engine] if engine == "dynamodb"
                              else f"<endpoint of {TARGET[engine]}>")
    assert (alias.resource.endswith(":function:orders-api:live"), alias.before) == (True, "2")


def test_plan_summary_says_what_and_when(moto):
    source = create_pitr_table(aws.client, "orders")
    _function(TABLE_NAME="orders")
    now = source["latest"].replace(second=30, microsecond=0) + timedelta(minutes=30)
    ctx = Saved(INCIDENT).context(clock=lambda: now, reference_time=now)

    plan = _plan(ctx, engine="dynamodb", source="orders", cutover="orders-api:TABLE_NAME")

    latest = source["latest"]
    shown = (f"{latest:%Y-%m-%dT%H:%M:%S}.{latest.microsecond // 1000:03d}Z"
             if latest.microsecond else f"{latest:%Y-%m-%dT%H:%M:%S}Z")
    assert plan.summary == (f"restore table orders to {shown} as "
                            f"orders-restored-{now:%Y%m%d%H%M}, then point orders-api "
                            "TABLE_NAME at it")


# --- cutover and undo ----------------------------------------------------------------------


def test_cutover_and_undo_put_every_variable_back_exactly(ctx):
    source = create_pitr_table(aws.client, "orders", items=ITEMS)
    _function(TABLE_NAME="orders", LOG_LEVEL="info")
    _function("billing-worker", ORDERS_TABLE="orders")
    plan = _plan(ctx, engine="dynamodb", source="orders", restore_to=_inside(source),
                 target="orders-restored", alias="live",
                 cutover="orders-api:TABLE_NAME,orders-api:AUDIT_TABLE,"
                         "billing-worker:ORDERS_TABLE")

    assert PLAYBOOK.steps(plan)[-1] == "cutover"
    outcome, _ = _drive(ctx, plan)

    assert _env() == {"TABLE_NAME": "orders-restored", "AUDIT_TABLE": "orders-restored",
                      "LOG_LEVEL": "info"}
    assert _env(qualifier="live") == _env()
    assert _alias_version() == "3" and _alias_version("billing-worker") == "3"
    assert _env("billing-worker") == {"ORDERS_TABLE": "orders-restored"}
    assert outcome.before["cutover"][0]["variables"] == {"TABLE_NAME": "orders",
                                                         "AUDIT_TABLE": None}
    assert outcome.before["cutover"][0]["alias_version_before"] == "2"
    assert PLAYBOOK.verify(ctx, outcome).ok
    # Someone changes another variable afterwards: undo must leave it alone.
    aws.client("lambda").update_function_configuration(
        FunctionName="orders-api", Environment={"Variables": {**_env(), "FEATURE_X": "on"}})

    undone = PLAYBOOK.undo(ctx, outcome)

    assert _env() == {"TABLE_NAME": "orders", "LOG_LEVEL": "info", "FEATURE_X": "on"}
    assert _env("billing-worker") == {"ORDERS_TABLE": "orders"}
    assert _alias_version() == "2" and _alias_version("billing-worker") == "2"
    assert {(c.attribute, c.before, c.after) for c in undone.changes} >= {
        ("Environment.Variables.TABLE_NAME", "orders-restored", "orders"),
        ("Environment.Variables.AUDIT_TABLE", "orders-restored", None),
        ("FunctionVersion", "3", "2")}
    assert "the restored table orders-restored was kept and orders was not touched; delete " \
           "the restored one yourself when you no longer need it" in undone.summary
    tables = aws.client("dynamodb").list_tables()["TableNames"]
    assert set(tables) == {"orders", "orders-restored"}


def test_undo_without_cutover_changes_nothing_and_keeps_the_restore(ctx):
    source = _source("rds")
    plan = _plan(ctx, engine="rds", source="orders-db", restore_to=_inside(source),
                 target="orders-db-restored")
    outcome, _ = _drive(ctx, plan)

    undone = PLAYBOOK.undo(ctx, outcome)

    restored = aws.client("rds").describe_db_instances(
        DBInstanceIdentifier="orders-db-restored")["DBInstances"][0]
    assert outcome.after["endpoint"] == restored["Endpoint"]["Address"]
    assert undone.changes == []
    assert undone.summary.startswith("no function was pointed at it, so nothing to put back; "
                                     "the restored instance orders-db-restored was kept")
    ids = [i["DBInstanceIdentifier"] for i in aws.client("rds").describe_db_instances()[
        "DBInstances"]]
    assert sorted(ids) == ["orders-db", "orders-db-restored"]


def test_a_variable_changed_since_the_plan_is_not_overwritten(ctx):
    source = create_pitr_table(aws.client, "orders")
    _function(TABLE_NAME="orders")
    plan = _plan(ctx, engine="dynamodb", source="orders", restore_to=_inside(source),
                 target="orders-restored", cutover="orders-api:TABLE_NAME")
    aws.client("lambda").update_function_configuration(
        FunctionName="orders-api", Environment={"Variables": {"TABLE_NAME": "orders-manual"}})

    with pytest.raises(PreconditionFailed, match=r"orders-api TABLE_NAME=orders-manual changed "
                                                 r"since the plan .*the restored table "
                                                 "orders-restored is ready"):
        _drive(ctx, plan)

    assert _env() == {"TABLE_NAME": "orders-manual"}
    assert "cutover" not in ctx.progress or ctx.progress["cutover"] == {}


def test_verify_notices_a_variable_that_moved(ctx):
    source = create_pitr_table(aws.client, "orders")
    _function(TABLE_NAME="orders")
    plan = _plan(ctx, engine="dynamodb", source="orders", restore_to=_inside(source),
                 target="orders-restored", cutover="orders-api:TABLE_NAME", alias="live")
    outcome, _ = _drive(ctx, plan)
    aws.client("lambda").update_alias(FunctionName="orders-api", Name="live",
                                      FunctionVersion="1")

    with pytest.raises(VerificationFailed, match=r"orders-api \(live\) reads "
                                                 "TABLE_NAME='orders', expected "
                                                 "'orders-restored'"):
        PLAYBOOK.verify(ctx, outcome)


# --- crashes -------------------------------------------------------------------------------


@pytest.mark.parametrize(("engine", "call", "step"), [
    ("dynamodb", "restore_table_to_point_in_time", "restore"),
    ("aurora", "restore_db_cluster_to_point_in_time", "restore"),
    ("aurora", "create_db_instance", "create-instances"),
    ("rds", "restore_db_instance_to_point_in_time", "restore"),
])
def test_a_crash_after_a_create_call_resumes_without_calling_it_again(moto, engine, call, step):
    source = _source(engine)
    _function(**{VARIABLE[engine]: SOURCE[engine]})
    saved = Saved(INCIDENT)
    spy = Spy(crash_on=call)
    ctx = saved.context(spy)
    plan = _plan(ctx, engine=engine, source=SOURCE[engine], restore_to=_inside(source),
                 target=TARGET[engine], cutover=f"orders-api:{VARIABLE[engine]}")
    steps = PLAYBOOK.steps(plan)
    for earlier in steps[:steps.index(step)]:
        PLAYBOOK.run_step(ctx, plan, earlier)
        saved.save(ctx)

    with pytest.raises(Crash):
        PLAYBOOK.run_step(ctx, plan, step)

    # A new process picks the run up from what was persisted: the same step, again.
    resumed = saved.context(spy)
    outcome, said = _drive(resumed, plan, start=step)

    assert [name for name, _ in spy.named(call)] == [call]
    assert said[0].startswith(f"{step}: done: ")
    assert said[0].endswith((f"was already requested as {TARGET[engine]}",
                             f"the writer of cluster {TARGET[engine]} was already created"))
    assert _env()[VARIABLE[engine]] == (outcome.after.get("table") or outcome.after["endpoint"])
    assert PLAYBOOK.verify(resumed, outcome).ok


def test_a_target_made_by_someone_else_after_the_plan_is_not_taken_over(moto):
    source = _source("aurora")
    ctx = Saved(INCIDENT).context()
    plan = _plan(ctx, engine="aurora", source="orders-db", restore_to=_inside(source),
                 target="orders-db-restored")
    create_aurora_cluster(aws.client, "orders-db-restored", tags={"owner": "someone-else"})

    with pytest.raises(PreconditionFailed, match="cluster orders-db-restored appeared after the "
                                                 "plan and was not created by Fireline"):
        PLAYBOOK.run_step(ctx, plan, "restore")

    cluster = aws.client("rds").describe_db_clusters(
        DBClusterIdentifier="orders-db-restored")["DBClusters"][0]
    assert _tags(cluster["DBClusterArn"]) == {"owner": "someone-else"}


# --- params --------------------------------------------------------------------------------


def test_cutover_accepts_the_cli_string_form():
    params = PLAYBOOK.parse_params({
        "engine": "dynamodb", "source": "orders",
        "cutover": "orders-api:TABLE_NAME, arn:aws:lambda:eu-west-1:123456789012:function:"
                   "billing:ORDERS_TABLE"})

    assert [(c.function_name, c.variable) for c in params.cutover] == [
        ("orders-api", "TABLE_NAME"),
        ("arn:aws:lambda:eu-west-1:123456789012:function:billing", "ORDERS_TABLE")]


def test_restore_to_needs_a_timezone():
    def parse(restore_to: str):
        return PLAYBOOK.parse_params({"engine": "rds", "source": "orders-db",
                                      "restore_to": restore_to})

    assert parse("2026-11-23T09:55:00Z").restore_to == datetime(2026, 11, 23, 9, 55, tzinfo=UTC)
    assert parse("2026-11-23T10:55:00+01:00").restore_to == datetime(2026, 11, 23, 9, 55,
                                                                     tzinfo=UTC)
    with pytest.raises(InvalidParams, match=r"restore_to: .*'yesterday' is not an ISO-8601 time"):
        parse("yesterday")
    with pytest.raises(InvalidParams, match=r"restore_to: .*2026-11-23T09:55:00 has no timezone"):
        parse("2026-11-23T09:55:00")


@pytest.mark.parametrize(("raw", "message"), [
    ({"alias": "live"}, "alias needs cutover"),
    ({"cutover": "orders-api"}, "cutover entries are function:VARIABLE, got 'orders-api'"),
    ({"cutover": "orders-api:table-name"}, "'table-name' is not an environment variable name"),
    ({"cutover": "orders-api:DB_HOST,orders-api:DB_HOST"},
     "cutover names orders-api:DB_HOST more than once"),
    ({"target": "1orders"}, "starts with a letter"),
    ({"target": "orders--restored"}, "no '--'"),
    ({"target": "orders-restored-"}, "does not end with '-'"),
    ({"target": "o" * 64}, "longer than 63 characters"),
    ({"target": "orders-db"}, "target must differ from source"),
    ({"lookback_minutes": 0}, "lookback_minutes"),
    ({"lookback_minutes": 1441}, "lookback_minutes"),
    ({"engine": "redshift"}, "engine"),
    ({"snapshot": "x"}, "snapshot: Extra inputs are not permitted"),
    ({"engine": "dynamodb", "target": "ab"}, "a table name is 3-255"),
    ({"engine": "aurora", "target": "o" * 55},
     r"longer than 54 characters \(its writer instances are named <target>-writer-N\)"),
])
def test_bad_params_are_refused_clearly(raw, message):
    with pytest.raises(InvalidParams, match=message):
        PLAYBOOK.parse_params({"engine": "rds", "source": "orders-db", **raw})


def test_a_default_target_that_would_be_too_long_asks_for_one(moto):
    long_id = "orders-ledger-primary-eu-west-1-b"  # + "-restored-YYYYmmddHHMM" > 54
    source = create_aurora_cluster(aws.client, long_id)
    ctx = Saved(INCIDENT).context()

    with pytest.raises(InvalidParams, match=r"the default target .* cannot be used .*; pass "
                                            "target=<name>"):
        PLAYBOOK.plan(ctx, PLAYBOOK.parse_params({
            "engine": "aurora", "source": long_id, "restore_to": _inside(source)}))


@pytest.mark.parametrize(("dimensions", "expected"), [
    ({"TableName": "orders"}, {"engine": "dynamodb", "source": "orders"}),
    ({"DBClusterIdentifier": "orders-db", "Role": "WRITER"},
     {"engine": "aurora", "source": "orders-db"}),
    ({"DBInstanceIdentifier": "orders-db"}, {"engine": "rds", "source": "orders-db"}),
    ({"FunctionName": "orders-api"}, {}),
])
def test_params_default_from_the_alarm_dimensions(dimensions, expected):
    alarm = AlarmEvent.model_validate({
        "delivery": "sns", "delivery_id": "d", "alarm_name": "a", "state": "ALARM",
        "state_changed_at": "2026-11-23T10:00:00Z", "dimensions": dimensions})

    assert PLAYBOOK.params_from_alarm(alarm) == expected
