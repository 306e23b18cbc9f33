"""Databases with backups, as a team's stack leaves them: the sources a restore starts from.

A DynamoDB table with point-in-time recovery, an Aurora cluster with its writer, an RDS
instance; each in its own subnet group and security group, with tags and, where it
matters, a parameter group and deletion protection. Used by the demo and the tests
against moto. Each helper returns what a caller checks afterwards, including the
restorable window as the API reports it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from boto3.dynamodb.types import TypeSerializer

from fireline.aws import ClientFactory
from fireline.timestamps import as_utc

KMS_KEY = "arn:aws:kms:{region}:123456789012:key/1f2e3d4c-5b6a-4789-8abc-def012345678"
_FAMILIES = {"postgres": "postgres16", "mysql": "mysql8.0", "mariadb": "mariadb10.11",
             "aurora-postgresql": "aurora-postgresql15", "aurora-mysql": "aurora-mysql8.0"}


def create_pitr_table(clients: ClientFactory, name: str, *,
                      items: Iterable[Mapping[str, Any]] = (),
                      ttl_attribute: str | None = None,
                      tags: Mapping[str, str] | None = None,
                      stream: str | None = None,
                      pitr: bool = True,
                      encrypted: bool = False,
                      deletion_protection: bool = False) -> dict[str, Any]:
    """An on-demand table keyed by `pk` (S), PITR on unless `pitr=False`, with `items`.

    `stream` is a StreamViewType such as NEW_AND_OLD_IMAGES. Items are plain Python values.
    Returns the table's ARN and, with PITR, its restorable window (moto freezes both ends
    at the moment PITR is enabled; AWS moves the latest end on with the clock).
    """
    ddb = clients("dynamodb")
    request: dict[str, Any] = {
        "TableName": name, "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
        "DeletionProtectionEnabled": deletion_protection,
    }
    if tags:
        request["Tags"] = [{"Key": k, "Value": v} for k, v in tags.items()]
    if stream:
        request["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": stream}
    if encrypted:
        request["SSESpecification"] = {"Enabled": True, "SSEType": "KMS",
                                       "KMSMasterKeyId": _kms_key(ddb)}
    table = ddb.create_table(**request)["TableDescription"]
    if ttl_attribute:
        ddb.update_time_to_live(TableName=name, TimeToLiveSpecification={
            "Enabled": True, "AttributeName": ttl_attribute})
    serializer = TypeSerializer()
    for item in items:
        ddb.put_item(TableName=name, Item={k: serializer.serialize(v) for k, v in item.items()})
    out: dict[str, Any] = {"name": name, "arn": table["TableArn"],
                           "earliest": None, "latest": None}
    if pitr:
        backups = ddb.update_continuous_backups(
            TableName=name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True})
        window = backups["ContinuousBackupsDescription"]["PointInTimeRecoveryDescription"]
        out["earliest"] = as_utc(window["EarliestRestorableDateTime"])
        out["latest"] = as_utc(window["LatestRestorableDateTime"])
    return out


def create_aurora_cluster(clients: ClientFactory, cluster_id: str, *,
                          writer_class: str = "db.r6g.large",
                          engine: str = "aurora-postgresql",
                          readers: int = 0,
                          backup_retention: int = 7,
                          deletion_protection: bool = True,
                          tags: Mapping[str, str] | None = None) -> dict[str, Any]:
    """An encrypted Aurora cluster with a writer (`<id>-1`) and `readers` more instances."""
    rds = clients("rds")
    network = create_network(clients, cluster_id)
    parameter_group = f"{cluster_id}-params"
    rds.create_db_cluster_parameter_group(
        DBClusterParameterGroupName=parameter_group, DBParameterGroupFamily=_FAMILIES[engine],
        Description=f"{cluster_id} settings")
    cluster = rds.create_db_cluster(
        DBClusterIdentifier=cluster_id, Engine=engine, MasterUsername="app",
        MasterUserPassword="not-a-real-password", DatabaseName="app",
        DBSubnetGroupName=network["subnet_group"],
        VpcSecurityGroupIds=[network["security_group_id"]],
        DBClusterParameterGroupName=parameter_group, BackupRetentionPeriod=backup_retention,
        StorageEncrypted=True, KmsKeyId=_kms_key(rds), DeletionProtection=deletion_protection,
        Tags=[{"Key": k, "Value": v} for k, v in (tags or {}).items()])["DBCluster"]
    instances = [f"{cluster_id}-{n}" for n in range(1, readers + 2)]
    for instance_id in instances:  # the first one made becomes the writer
        rds.create_db_instance(DBInstanceIdentifier=instance_id, DBClusterIdentifier=cluster_id,
                               Engine=engine, DBInstanceClass=writer_class)
    described = rds.describe_db_clusters(DBClusterIdentifier=cluster_id)["DBClusters"][0]
    return {
        **network, "cluster_id": cluster_id, "arn": cluster["DBClusterArn"],
        "endpoint": described["Endpoint"], "parameter_group": parameter_group,
        "kms_key_id": described.get("KmsKeyId"), "writer": instances[0],
        "writer_class": writer_class, "engine": engine,
        "earliest": _when(described.get("EarliestRestorableTime")),
        "latest": _when(described.get("LatestRestorableTime")),
    }


def create_rds_instance(clients: ClientFactory, instance_id: str, *,
                        instance_class: str = "db.m6g.large",
                        engine: str = "postgres",
                        multi_az: bool = True,
                        backup_retention: int = 7,
                        deletion_protection: bool = True,
                        tags: Mapping[str, str] | None = None) -> dict[str, Any]:
    """A Multi-AZ RDS instance with its own parameter group and automated backups."""
    rds = clients("rds")
    network = create_network(clients, instance_id)
    parameter_group = f"{instance_id}-params"
    rds.create_db_parameter_group(
        DBParameterGroupName=parameter_group, DBParameterGroupFamily=_FAMILIES[engine],
        Description=f"{instance_id} settings")
    rds.create_db_instance(
        DBInstanceIdentifier=instance_id, Engine=engine, DBInstanceClass=instance_class,
        AllocatedStorage=100, MasterUsername="app", MasterUserPassword="not-a-real-password",
        DBSubnetGroupName=network["subnet_group"],
        VpcSecurityGroupIds=[network["security_group_id"]],
        DBParameterGroupName=parameter_group, MultiAZ=multi_az,
        BackupRetentionPeriod=backup_retention, DeletionProtection=deletion_protection,
        Tags=[{"Key": k, "Value": v} for k, v in (tags or {}).items()])
    described = rds.describe_db_instances(DBInstanceIdentifier=instance_id)["DBInstances"][0]
    return {
        **network, "instance_id": instance_id, "arn": described["DBInstanceArn"],
        "endpoint": described["Endpoint"]["Address"], "parameter_group": parameter_group,
        "instance_class": instance_class, "multi_az": multi_az,
        # moto reports no RestoreWindow on automated backups: the instance's creation
        # time is where the playbook's window starts too.
        "earliest": _when(described.get("InstanceCreateTime")),
        "latest": _when(described.get("LatestRestorableTime")),
    }


def create_network(clients: ClientFactory, name: str) -> dict[str, Any]:
    """A VPC with two subnets in two zones, a DB subnet group and a security group."""
    ec2, rds = clients("ec2"), clients("rds")
    region = ec2.meta.region_name
    vpc_id = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc_id, CidrBlock=f"10.20.{n}.0/24",
                                 AvailabilityZone=f"{region}{zone}")["Subnet"]["SubnetId"]
               for n, zone in enumerate("ab", start=1)]
    group_id = ec2.create_security_group(
        GroupName=f"{name}-db", Description=f"{name} database", VpcId=vpc_id)["GroupId"]
    rds.create_db_subnet_group(DBSubnetGroupName=f"{name}-subnets",
                               DBSubnetGroupDescription=f"{name} database subnets",
                               SubnetIds=subnets)
    return {"vpc_id": vpc_id, "subnet_ids": subnets, "security_group_id": group_id,
            "subnet_group": f"{name}-subnets"}


def _kms_key(client: Any) -> str:
    return KMS_KEY.format(region=client.meta.region_name)


def _when(value: datetime | None) -> datetime | None:
    return as_utc(value) if value is not None else None
