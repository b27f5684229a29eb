"""Wires the components of one stack together from its validated settings."""

from __future__ import annotations

import json

import pulumi
import pulumi_aws as aws

from components.access import DatabaseAccess, DatabaseAccessArgs
from components.budget import CostBudget, CostBudgetArgs
from components.database import PostgresDatabase, PostgresDatabaseArgs
from components.firewall import DatabaseFirewall, DatabaseFirewallArgs
from components.monitoring import DatabaseAlarms, DatabaseAlarmsArgs
from components.network import IsolatedNetwork, IsolatedNetworkArgs
from components.schema import planned_migrations
from infra.catalog import INSTANCE_CLASSES
from infra.settings import StackSettings


def build_stack(settings: StackSettings) -> dict[str, pulumi.Input[object]]:
    """Register every resource of the stack; return the stack outputs."""
    # One tagging mechanism: the provider's default_tags reach every AWS resource.
    provider = aws.Provider(
        "aws",
        region=settings.region,
        profile=settings.aws_profile,  # an explicit provider does not read aws:profile by itself
        default_tags=aws.ProviderDefaultTagsArgs(tags=settings.tags),
    )
    under_provider = pulumi.ResourceOptions(providers={"aws": provider})
    prefix = settings.qualified_stack

    vpc_id, subnet_ids = _network(settings, prefix, provider, under_provider)
    firewall = DatabaseFirewall(
        f"{prefix}-db-access",
        DatabaseFirewallArgs(
            vpc_id=vpc_id,
            allowed_cidrs=settings.access.allowed_cidrs,
            allowed_security_group_ids=settings.access.allowed_security_group_ids,
        ),
        under_provider,
    )
    db = settings.database
    database_args = PostgresDatabaseArgs(
        identifier=prefix,
        subnet_ids=subnet_ids,
        security_group_ids=[firewall.security_group_id],
        instance_class=db.instance_class,
        engine_major_version=db.engine_major_version,
        multi_az=db.multi_az,
        allocated_storage_gb=db.allocated_storage_gb,
        max_allocated_storage_gb=db.max_allocated_storage_gb,
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
        read_replicas=db.read_replicas,
        allow_major_version_upgrade=db.allow_major_version_upgrade,
    )
    database = PostgresDatabase(f"{prefix}-db", database_args, under_provider)
    instance_class = INSTANCE_CLASSES[db.instance_class]
    alarms = DatabaseAlarms(
        f"{prefix}-alarms",
        DatabaseAlarmsArgs(
            instance_identifier=database.identifier,
            parameter_group_name=database.parameter_group_name,
            allocated_storage_gb=db.allocated_storage_gb,
            memory_gib=instance_class.memory_gib,
            max_connections=instance_class.default_max_connections,
            alarm_email=settings.monitoring.alarm_email,
        ),
        under_provider,
    )
    CostBudget(
        f"{prefix}-cost",
        CostBudgetArgs(
            monthly_limit_usd=settings.monitoring.monthly_budget_usd,
            cost_allocation_tag=("stack", settings.qualified_stack),
            sns_topic_arn=alarms.topic_arn,
            email_addresses=(settings.monitoring.alarm_email,) if settings.monitoring.alarm_email else (),
        ),
        under_provider,
    )
    outputs: dict[str, pulumi.Input[object]] = {
        "endpoint": database.endpoint,
        "address": database.address,
        "port": database.port,
        "masterSecretArn": database.master_secret_arn,
        "securityGroupId": firewall.security_group_id,
        "parameterGroupName": database.parameter_group_name,
        "instanceIdentifier": database.identifier,
        "engineVersionActual": database.engine_version_actual,
        "replicaEndpoints": database.replica_endpoints,
        "vpcId": vpc_id,
        "subnetIds": subnet_ids,
        "alarmTopicArn": alarms.topic_arn,
        "sports": list(settings.sports),
    }
    if settings.database_access.manage_database:
        access = _database_access(
            settings,
            prefix=prefix,
            database=database,
            master_username=database_args.master_username,
            provider=provider,
            under_provider=under_provider,
        )
        outputs["databases"] = access.databases
        outputs["loginSecretArns"] = access.login_secret_arns
        outputs["schemaVersion"] = access.schema_versions
    return outputs


def _database_access(
    settings: StackSettings,
    *,
    prefix: str,
    database: PostgresDatabase,
    master_username: pulumi.Input[str],
    provider: aws.Provider,
    under_provider: pulumi.ResourceOptions,
) -> DatabaseAccess:
    """The sport databases, roles and schema, through the postgresql provider as the master user."""
    # RDS keeps the master password in Secrets Manager and rotates it; read the current one on every run.
    master_secret = aws.secretsmanager.get_secret_version_output(
        secret_id=database.master_secret_arn.apply(_require_secret_arn),
        opts=pulumi.InvokeOutputOptions(provider=provider),
    )
    master_password: pulumi.Output[str] = pulumi.Output.secret(
        master_secret.secret_string.apply(lambda text: str(json.loads(text)["password"]))
    )
    access = settings.database_access
    return DatabaseAccess(
        f"{prefix}-access",
        DatabaseAccessArgs(
            sports=settings.sports,
            host=access.host or database.address,
            port=access.port,
            admin_username=master_username,
            admin_password=master_password,
            endpoint_address=database.address,
            endpoint_port=database.port,
            migrations=planned_migrations(),
            secret_name_prefix=prefix,
            iam_users=access.iam_auth_users,
            protect=settings.production,
        ),
        under_provider,
    )


def _require_secret_arn(arn: str | None) -> str:
    if not arn:
        raise pulumi.RunError("the instance has no RDS-managed master secret; the postgresql provider needs it")
    return arn


def _network(
    settings: StackSettings, prefix: str, provider: aws.Provider, under_provider: pulumi.ResourceOptions
) -> tuple[pulumi.Input[str], pulumi.Input[list[str]]]:
    """The stack's own subnets when it names them, else a new isolated VPC."""
    if not settings.network.creates_vpc:
        return settings.network.vpc_id or "", list(settings.network.subnet_ids)
    zones = aws.get_availability_zones_output(state="available", opts=pulumi.InvokeOutputOptions(provider=provider))
    network = IsolatedNetwork(
        f"{prefix}-network",
        IsolatedNetworkArgs(availability_zones=zones.names, cidr_block=settings.network.vpc_cidr),
        under_provider,
    )
    return network.vpc_id, network.subnet_ids
