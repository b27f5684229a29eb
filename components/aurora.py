"""AuroraCluster: an Aurora PostgreSQL cluster of Serverless v2 instances and what it needs.

The cluster keeps the data on Aurora's shared storage (six copies over three
Availability Zones, grown and shrunk by Aurora as the data changes) and the
settings every instance must share in its cluster parameter group; the writer
and up to 15 readers are `db.serverless` instances sharing one DB parameter
group, each scaling between the cluster's minimum and maximum capacity. With a
minimum of 0 ACU they pause when idle and resume on the next connection.

Unlike an RDS instance, a cluster keeps its Secrets Manager master password
with readers: no second program is needed to scale reads.

Around it, as for the instance (components/rdsparts.py): the subnet group,
the cluster's log group with a retention (created before the cluster, so RDS
does not create it without one), the Enhanced Monitoring role and the unique
final-snapshot name. The writer is created first: Aurora makes the first
instance of a cluster its writer. Each reader goes to the next Availability
Zone of the subnets, round from the writer's, so the first is always in
another zone: the failover target.

Defaults are the secure ones; a stack only tunes them.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from components import rdsparts
from components.parameters import CLUSTER, INSTANCE, in_scope
from components.rdsparts import CA_CERTIFICATE, EXTENDED_SUPPORT_DISABLED, CommonDatabaseArgs
from infra.catalog import aurora_parameter_group_family

ENGINE = aws.rds.EngineType.AURORA_POSTGRESQL
SERVERLESS_CLASS = "db.serverless"
LOG_EXPORTS = ("postgresql",)
IO_OPTIMIZED_STORAGE = "aurora-iopt1"
FAILOVER_TIER = 1
"""The first reader's promotion tier: tiers 0 and 1 scale (and pause) with the writer, so failover lands on
an instance as large as the writer was."""
READ_SCALING_TIER = 2
"""The other readers scale with their own load and may pause on their own."""


@dataclass(frozen=True)
class AuroraClusterArgs:
    identifier: str
    """The cluster identifier; the writer is `<identifier>-writer`, the readers `<identifier>-reader-<n>`."""
    subnet_ids: pulumi.Input[Sequence[pulumi.Input[str]]]
    security_group_ids: pulumi.Input[Sequence[pulumi.Input[str]]]
    availability_zones: pulumi.Input[Sequence[str]]
    """The subnets' zones, the writer's first; readers take the next ones in turn."""
    min_acu: float = 0.5
    max_acu: float = 4.0
    seconds_until_auto_pause: int = 300
    """Idle seconds before an instance pauses; sent only when min_acu is 0 (auto-pause)."""
    readers: int = 0
    io_optimized: bool = False
    """Aurora I/O-Optimized (no I/O charges, dearer capacity and storage) instead of Aurora Standard."""
    common: CommonDatabaseArgs = field(default_factory=CommonDatabaseArgs)
    """Version, backups, windows, protection, monitoring: what an RDS instance is given too."""


class AuroraCluster(pulumi.ComponentResource):
    cluster_identifier: pulumi.Output[str]
    address: pulumi.Output[str]
    """The cluster (writer) endpoint's host name."""
    reader_address: pulumi.Output[str]
    """The reader endpoint's host name (the writer answers it while there is no reader)."""
    port: pulumi.Output[int]
    master_secret_arn: pulumi.Output[str | None]
    parameter_group_name: pulumi.Output[str]
    """The cluster parameter group."""
    instance_parameter_group_name: pulumi.Output[str]
    subnet_group_name: pulumi.Output[str]
    writer_identifier: pulumi.Output[str]
    reader_identifiers: list[pulumi.Output[str]]
    """reader-1, reader-2, ... in order."""
    engine_version_actual: pulumi.Output[str]

    def __init__(self, name: str, args: AuroraClusterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("temporaldb:database:AuroraCluster", name, None, opts)
        self._name = name
        self._args = args
        family = aurora_parameter_group_family(args.common.engine_major_version)
        cluster_parameters = self._cluster_parameter_group(family)
        self._instance_parameters = self._instance_parameter_group(family)
        subnet_group = rdsparts.subnet_group(self, name, args.identifier, args.subnet_ids)
        self._monitoring_role_arn = rdsparts.monitoring_role_arn(
            self, name, args.identifier, args.common.monitoring_interval_seconds
        )
        cluster = aws.rds.Cluster(
            f"{name}-cluster",
            cluster_identifier=args.identifier,
            engine=ENGINE,
            engine_mode="provisioned",  # Serverless v2 instances live in a provisioned cluster
            engine_version=args.common.engine_major_version,
            engine_lifecycle_support=EXTENDED_SUPPORT_DISABLED,
            serverlessv2_scaling_configuration=aws.rds.ClusterServerlessv2ScalingConfigurationArgs(
                min_capacity=args.min_acu,
                max_capacity=args.max_acu,
                seconds_until_auto_pause=args.seconds_until_auto_pause if args.min_acu == 0 else None,
            ),
            # Omitted for Aurora Standard, the default: the provider does not send "" back once set.
            storage_type=IO_OPTIMIZED_STORAGE if args.io_optimized else None,
            storage_encrypted=True,
            db_subnet_group_name=subnet_group.name,
            vpc_security_group_ids=args.security_group_ids,
            db_cluster_parameter_group_name=cluster_parameters.name,
            # Only valid with allow_major_version_upgrade: the instances move to the new family's group.
            db_instance_parameter_group_name=(
                self._instance_parameters.name if args.common.allow_major_version_upgrade else None
            ),
            master_username=args.common.master_username,
            manage_master_user_password=True,
            iam_database_authentication_enabled=True,
            backup_retention_period=args.common.backup_retention_days,
            preferred_backup_window=args.common.backup_window,
            preferred_maintenance_window=args.common.maintenance_window,
            copy_tags_to_snapshot=True,
            delete_automated_backups=not args.common.keep_final_snapshot,
            skip_final_snapshot=not args.common.keep_final_snapshot,
            final_snapshot_identifier=rdsparts.final_snapshot_identifier(
                self, name, args.identifier, args.common.keep_final_snapshot
            ),
            deletion_protection=args.common.deletion_protection,
            allow_major_version_upgrade=args.common.allow_major_version_upgrade,
            apply_immediately=args.common.allow_major_version_upgrade,
            enabled_cloudwatch_logs_exports=list(LOG_EXPORTS),
            opts=pulumi.ResourceOptions(
                parent=self,
                protect=args.common.protect,
                depends_on=rdsparts.log_groups(
                    self,
                    name,
                    suffix="cluster",
                    path=f"/aws/rds/cluster/{args.identifier}",
                    exports=LOG_EXPORTS,
                    retention_days=args.common.log_retention_days,
                ),
            ),
        )
        zones = pulumi.Output.from_input(args.availability_zones).apply(
            lambda names: _distinct_zones(names, args.readers)
        )
        writer = self._instance(cluster, "writer", zones.apply(lambda names: names[0]), promotion_tier=0, after=[])
        readers = [
            self._instance(
                cluster,
                f"reader-{number}",
                zones.apply(functools.partial(_zone_of, number=number)),
                promotion_tier=FAILOVER_TIER if number == 1 else READ_SCALING_TIER,
                after=[writer],
            )
            for number in range(1, args.readers + 1)
        ]

        self.cluster_identifier = cluster.cluster_identifier
        self.address = cluster.endpoint
        self.reader_address = cluster.reader_endpoint
        self.port = cluster.port
        self.master_secret_arn = cluster.master_user_secrets.apply(
            lambda secrets: secrets[0].secret_arn if secrets else None
        )
        self.parameter_group_name = cluster_parameters.name
        self.instance_parameter_group_name = self._instance_parameters.name
        self.subnet_group_name = subnet_group.name
        self.writer_identifier = writer.identifier
        self.reader_identifiers = [reader.identifier for reader in readers]
        self.engine_version_actual = cluster.engine_version_actual
        self.register_outputs(
            {
                "cluster_identifier": self.cluster_identifier,
                "address": self.address,
                "reader_address": self.reader_address,
                "port": self.port,
                "master_secret_arn": self.master_secret_arn,
                "parameter_group_name": self.parameter_group_name,
                "instance_parameter_group_name": self.instance_parameter_group_name,
                "subnet_group_name": self.subnet_group_name,
                "writer_identifier": self.writer_identifier,
                "reader_identifiers": self.reader_identifiers,
                "engine_version_actual": self.engine_version_actual,
            }
        )

    def _cluster_parameter_group(self, family: str) -> aws.rds.ClusterParameterGroup:
        return aws.rds.ClusterParameterGroup(
            f"{self._name}-cluster-params",
            # A prefix, not a name: a family change replaces the group create-before-delete.
            name_prefix=f"{self._args.identifier}-{family}-",
            family=family,
            description=f"{self._args.identifier} {family}: TLS only, pg_stat_statements, autovacuum logging",
            parameters=[
                aws.rds.ClusterParameterGroupParameterArgs(
                    name=parameter.name, value=parameter.value, apply_method=parameter.apply_method
                )
                for parameter in in_scope(CLUSTER)
            ],
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _instance_parameter_group(self, family: str) -> aws.rds.ParameterGroup:
        return aws.rds.ParameterGroup(
            f"{self._name}-instance-params",
            name_prefix=f"{self._args.identifier}-{family}-instance-",
            family=family,
            description=f"{self._args.identifier} {family} instances: query logging, as-of planner settings",
            parameters=[
                aws.rds.ParameterGroupParameterArgs(
                    name=parameter.name, value=parameter.value, apply_method=parameter.apply_method
                )
                for parameter in in_scope(INSTANCE)
            ],
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _instance(
        self,
        cluster: aws.rds.Cluster,
        role: str,
        zone: pulumi.Input[str],
        *,
        promotion_tier: int,
        after: Sequence[pulumi.Resource],
    ) -> aws.rds.ClusterInstance:
        args = self._args
        return aws.rds.ClusterInstance(
            f"{self._name}-{role}",
            identifier=f"{args.identifier}-{role}",
            cluster_identifier=cluster.id,
            engine=ENGINE,
            instance_class=SERVERLESS_CLASS,
            db_parameter_group_name=self._instance_parameters.name,
            availability_zone=zone,
            promotion_tier=promotion_tier,
            publicly_accessible=args.common.publicly_accessible,
            ca_cert_identifier=CA_CERTIFICATE,
            auto_minor_version_upgrade=True,
            copy_tags_to_snapshot=True,
            apply_immediately=args.common.allow_major_version_upgrade,
            performance_insights_enabled=args.common.performance_insights,
            # The free tier; RDS refuses a retention when Performance Insights is off.
            performance_insights_retention_period=7 if args.common.performance_insights else None,
            monitoring_interval=args.common.monitoring_interval_seconds,
            monitoring_role_arn=self._monitoring_role_arn,
            opts=pulumi.ResourceOptions(
                parent=self,
                protect=args.common.protect,
                depends_on=list(after),
                # Placement is decided once: a zone list looked up again must not move (replace) an instance.
                ignore_changes=["availabilityZone"],
            ),
        )


def _zone_of(names: Sequence[str], number: int) -> str:
    """Reader `number`'s zone: the next one round from the writer's (names[0])."""
    return names[number % len(names)]


def _distinct_zones(names: Sequence[str], readers: int) -> list[str]:
    """The subnets' zones, each once, in order; a reader must be able to stand in another zone."""
    distinct = list(dict.fromkeys(names))
    if not distinct:
        raise ValueError("the cluster's subnets report no Availability Zone")
    if readers and len(distinct) < 2:
        raise ValueError(
            f"the cluster's subnets are all in {distinct[0]}: a reader, the writer's failover target, needs "
            "subnets in a second Availability Zone"
        )
    return distinct
