"""The stack's database and its alarms, for the engine the settings name.

`engine: instance` builds PostgresDatabase and DatabaseAlarms, `engine: aurora`
AuroraCluster and AuroraAlarms. Either way the rest of the stack (the budget,
the access layer, the exports) gets a `Database`: where writes go, the master
user's secret and the alarm topic.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi

from components.aurora import AuroraCluster, AuroraClusterArgs
from components.aurora_monitoring import GIB, AuroraAlarms, AuroraAlarmsArgs
from components.database import PostgresDatabase, PostgresDatabaseArgs
from components.firewall import DatabaseFirewall
from components.monitoring import DatabaseAlarms, DatabaseAlarmsArgs
from components.rdsparts import CommonDatabaseArgs
from infra.catalog import INSTANCE_CLASSES, serverless_max_connections
from infra.settings import StackSettings
from temporaldb import prices

MASTER_USERNAME = "temporaldb_admin"
"""Not `postgres` (FSBP RDS.25); the password lives in Secrets Manager only."""
VOLUME_BUDGET_SHARE = 0.25
"""The cluster volume alarms at the size whose storage alone would take this share of the monthly budget."""
CONNECT_TIMEOUT_SECONDS = 15
RESUME_CONNECT_TIMEOUT_SECONDS = 60
"""A paused Serverless v2 instance resumes on the first connection attempt: about 15 s, longer after a long
pause; `pulumi up` waits for it rather than fail."""


@dataclass(frozen=True)
class Database:
    """What the rest of the stack needs of the database, whichever engine runs it."""

    address: pulumi.Output[str]
    """Where writes go: the instance, or the cluster (writer) endpoint."""
    port: pulumi.Output[int]
    master_secret_arn: pulumi.Output[str | None]
    topic_arn: pulumi.Output[str]
    outputs: dict[str, pulumi.Input[object]] = field(default_factory=dict)
    """The stack outputs that describe it."""
    master_username: str = MASTER_USERNAME
    connect_timeout_seconds: int = CONNECT_TIMEOUT_SECONDS
    """How long the in-database part's connections wait for the server."""


@dataclass(frozen=True)
class Placement:
    """Where the database goes: its subnets, their zones and its security group."""

    subnet_ids: pulumi.Input[Sequence[str]]
    availability_zones: pulumi.Input[Sequence[str]]
    firewall: DatabaseFirewall


def build_database(
    settings: StackSettings, prefix: str, placement: Placement, opts: pulumi.ResourceOptions
) -> Database:
    if settings.is_aurora:
        return _aurora(settings, prefix, placement, opts)
    return _instance(settings, prefix, placement, opts)


def _common(settings: StackSettings) -> CommonDatabaseArgs:
    """What either engine is given: version, backups, windows, protection and monitoring; prod keeps a final
    snapshot and is protected."""
    db = settings.database
    return CommonDatabaseArgs(
        engine_major_version=db.engine_major_version,
        backup_retention_days=db.backup_retention_days,
        backup_window=db.backup_window,
        maintenance_window=db.maintenance_window,
        deletion_protection=db.deletion_protection,
        keep_final_snapshot=settings.production,
        protect=settings.production,
        publicly_accessible=settings.access.publicly_accessible,
        performance_insights=db.performance_insights,
        monitoring_interval_seconds=db.monitoring_interval_seconds,
        log_retention_days=db.log_retention_days,
        allow_major_version_upgrade=db.allow_major_version_upgrade,
        master_username=MASTER_USERNAME,
    )


def _instance(settings: StackSettings, prefix: str, placement: Placement, opts: pulumi.ResourceOptions) -> Database:
    db = settings.database
    database = PostgresDatabase(
        f"{prefix}-db",
        PostgresDatabaseArgs(
            identifier=prefix,
            subnet_ids=placement.subnet_ids,
            security_group_ids=[placement.firewall.security_group_id],
            instance_class=db.instance_class,
            multi_az=db.multi_az,
            allocated_storage_gb=db.allocated_storage_gb,
            max_allocated_storage_gb=db.max_allocated_storage_gb,
            common=_common(settings),
        ),
        opts,
    )
    instance_class = INSTANCE_CLASSES[db.instance_class]
    alarms = DatabaseAlarms(
        f"{prefix}-alarms",
        DatabaseAlarmsArgs(
            instance_identifier=database.identifier,
            parameter_group_name=database.parameter_group_name,
            allocated_storage_gb=database.allocated_storage_gb,
            memory_gib=instance_class.memory_gib,
            max_connections=instance_class.default_max_connections,
            cpu_credits_per_hour=instance_class.cpu_credits_per_hour,
            alarm_email=settings.monitoring.alarm_email,
        ),
        opts,
    )
    return Database(
        address=database.address,
        port=database.port,
        master_secret_arn=database.master_secret_arn,
        topic_arn=alarms.topic_arn,
        outputs={
            "endpoint": database.endpoint,
            "address": database.address,
            "port": database.port,
            "masterSecretArn": database.master_secret_arn,
            "parameterGroupName": database.parameter_group_name,
            "instanceIdentifier": database.identifier,
            "engineVersionActual": database.engine_version_actual,
        },
    )


def _aurora(settings: StackSettings, prefix: str, placement: Placement, opts: pulumi.ResourceOptions) -> Database:
    aurora = settings.aurora
    cluster = AuroraCluster(
        f"{prefix}-aurora",
        AuroraClusterArgs(
            identifier=prefix,
            subnet_ids=placement.subnet_ids,
            security_group_ids=[placement.firewall.security_group_id],
            availability_zones=placement.availability_zones,
            min_acu=aurora.min_acu,
            max_acu=aurora.max_acu,
            seconds_until_auto_pause=aurora.pause_after_seconds,
            readers=aurora.readers,
            io_optimized=aurora.io_optimized,
            common=_common(settings),
        ),
        opts,
    )
    volume_bytes, basis = volume_alarm(settings)
    alarms = AuroraAlarms(
        f"{prefix}-alarms",
        AuroraAlarmsArgs(
            cluster_identifier=cluster.cluster_identifier,
            writer_identifier=cluster.writer_identifier,
            reader_identifiers=cluster.reader_identifiers,
            parameter_group_name=cluster.instance_parameter_group_name,
            max_acu=aurora.max_acu,
            max_connections=serverless_max_connections(aurora.max_acu),
            volume_alarm_bytes=volume_bytes,
            volume_basis=basis,
            alarm_email=settings.monitoring.alarm_email,
        ),
        opts,
    )
    return Database(
        address=cluster.address,
        port=cluster.port,
        master_secret_arn=cluster.master_secret_arn,
        topic_arn=alarms.topic_arn,
        outputs={
            "endpoint": pulumi.Output.concat(cluster.address, ":", cluster.port.apply(str)),
            "address": cluster.address,
            "port": cluster.port,
            "readerEndpoint": cluster.reader_address,
            "clusterIdentifier": cluster.cluster_identifier,
            "masterSecretArn": cluster.master_secret_arn,
            "parameterGroupName": cluster.parameter_group_name,
            "instanceParameterGroupName": cluster.instance_parameter_group_name,
            "instanceIdentifier": cluster.writer_identifier,
            "readerIdentifiers": cluster.reader_identifiers,
            "engineVersionActual": cluster.engine_version_actual,
        },
        connect_timeout_seconds=RESUME_CONNECT_TIMEOUT_SECONDS if aurora.auto_pause else CONNECT_TIMEOUT_SECONDS,
    )


def volume_alarm(settings: StackSettings) -> tuple[float, str]:
    """The cluster volume size whose storage would take VOLUME_BUDGET_SHARE of the monthly budget, and why."""
    budget = settings.monitoring.monthly_budget_usd
    io_optimized = settings.aurora.io_optimized
    try:
        price = prices.aurora_storage_gb_month(settings.region, io_optimized)
        where = settings.region
    except prices.PricingError:
        # An alarm threshold, not an estimate: a region missing from the table takes us-east-1's price, and
        # the plan (which does refuse to guess) says so.
        price = prices.aurora_storage_gb_month(prices.REFERENCE_REGION, io_optimized)
        where = f"{prices.REFERENCE_REGION} (no {settings.region} figure in {prices.PRICE_FILE})"
        pulumi.log.warn(f"the cluster volume alarm uses {where}'s storage price of ${price}/GiB-month")
    gibibytes = budget * VOLUME_BUDGET_SHARE / price
    basis = (
        f"its storage would take {VOLUME_BUDGET_SHARE:.0%} of the ${budget} monthly budget at "
        f"${price}/GiB-month ({where})"
    )
    return gibibytes * GIB, basis
