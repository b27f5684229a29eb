"""PostgresDatabase: the RDS for PostgreSQL instance and what it needs.

Parameter group (named by prefix, so a major upgrade creates the new family's
group before deleting the old one), subnet group, log groups with a retention
(created before the instance, so RDS does not create them without one), the
Enhanced Monitoring role and the instance itself. No read replicas: RDS does
not create one of an instance whose master password Secrets Manager manages.

Defaults are the secure ones; a stack only tunes them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from components import rdsparts
from components.parameters import STACK_PARAMETERS
from components.rdsparts import CA_CERTIFICATE, EXTENDED_SUPPORT_DISABLED, CommonDatabaseArgs
from infra.catalog import parameter_group_family

LOG_EXPORTS = ("postgresql", "upgrade")

# (name, value, apply method): the instance keeps every stack parameter in its one group.
PARAMETERS: tuple[tuple[str, str, str], ...] = tuple(
    (parameter.name, parameter.value, parameter.apply_method) for parameter in STACK_PARAMETERS
)


@dataclass(frozen=True)
class PostgresDatabaseArgs:
    identifier: str
    """RDS instance identifier; fixed so runbooks and restores can name it."""
    subnet_ids: pulumi.Input[Sequence[pulumi.Input[str]]]
    security_group_ids: pulumi.Input[Sequence[pulumi.Input[str]]]
    instance_class: pulumi.Input[str] = "db.t3.micro"
    multi_az: pulumi.Input[bool] = True
    allocated_storage_gb: pulumi.Input[int] = 20
    max_allocated_storage_gb: pulumi.Input[int] = 100
    common: CommonDatabaseArgs = field(default_factory=CommonDatabaseArgs)
    """Version, backups, windows, protection, monitoring: what an Aurora cluster is given too."""


class PostgresDatabase(pulumi.ComponentResource):
    identifier: pulumi.Output[str]
    endpoint: pulumi.Output[str]
    address: pulumi.Output[str]
    port: pulumi.Output[int]
    master_secret_arn: pulumi.Output[str | None]
    parameter_group_name: pulumi.Output[str]
    subnet_group_name: pulumi.Output[str]
    engine_version_actual: pulumi.Output[str]
    allocated_storage_gb: pulumi.Output[int]
    """The current allocation, as last read (storage autoscaling grows it)."""

    def __init__(self, name: str, args: PostgresDatabaseArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("temporaldb:database:PostgresDatabase", name, None, opts)
        self._name = name
        self._args = args
        parameter_group = self._parameter_group()
        subnet_group = rdsparts.subnet_group(self, name, args.identifier, args.subnet_ids)
        monitoring_role_arn = rdsparts.monitoring_role_arn(
            self, name, args.identifier, args.common.monitoring_interval_seconds
        )
        instance = aws.rds.Instance(
            f"{name}-instance",
            identifier=args.identifier,
            engine="postgres",
            engine_version=args.common.engine_major_version,
            instance_class=args.instance_class,
            multi_az=args.multi_az,
            storage_type="gp3",
            allocated_storage=args.allocated_storage_gb,
            max_allocated_storage=args.max_allocated_storage_gb,
            storage_encrypted=True,
            db_subnet_group_name=subnet_group.name,
            parameter_group_name=parameter_group.name,
            username=args.common.master_username,
            manage_master_user_password=True,
            backup_retention_period=args.common.backup_retention_days,
            backup_window=args.common.backup_window,
            maintenance_window=args.common.maintenance_window,
            delete_automated_backups=not args.common.keep_final_snapshot,
            skip_final_snapshot=not args.common.keep_final_snapshot,
            final_snapshot_identifier=rdsparts.final_snapshot_identifier(
                self, name, args.identifier, args.common.keep_final_snapshot
            ),
            deletion_protection=args.common.deletion_protection,
            allow_major_version_upgrade=args.common.allow_major_version_upgrade,
            apply_immediately=args.common.allow_major_version_upgrade,
            publicly_accessible=args.common.publicly_accessible,
            vpc_security_group_ids=args.security_group_ids,
            iam_database_authentication_enabled=True,
            copy_tags_to_snapshot=True,
            auto_minor_version_upgrade=True,
            engine_lifecycle_support=EXTENDED_SUPPORT_DISABLED,
            ca_cert_identifier=CA_CERTIFICATE,
            enabled_cloudwatch_logs_exports=list(LOG_EXPORTS),
            performance_insights_enabled=args.common.performance_insights,
            # The free tier; RDS refuses a retention when Performance Insights is off.
            performance_insights_retention_period=7 if args.common.performance_insights else None,
            monitoring_interval=args.common.monitoring_interval_seconds,
            monitoring_role_arn=monitoring_role_arn,
            opts=pulumi.ResourceOptions(
                parent=self, protect=args.common.protect, depends_on=self._log_groups(args.identifier)
            ),
        )

        self.identifier = instance.identifier
        self.endpoint = instance.endpoint
        self.address = instance.address
        self.port = instance.port
        self.master_secret_arn = instance.master_user_secrets.apply(
            lambda secrets: secrets[0].secret_arn if secrets else None
        )
        self.parameter_group_name = parameter_group.name
        self.subnet_group_name = subnet_group.name
        self.engine_version_actual = instance.engine_version_actual
        self.allocated_storage_gb = instance.allocated_storage
        self.register_outputs(
            {
                "identifier": self.identifier,
                "endpoint": self.endpoint,
                "address": self.address,
                "port": self.port,
                "master_secret_arn": self.master_secret_arn,
                "parameter_group_name": self.parameter_group_name,
                "subnet_group_name": self.subnet_group_name,
                "engine_version_actual": self.engine_version_actual,
                "allocated_storage_gb": self.allocated_storage_gb,
            }
        )

    def _parameter_group(self) -> aws.rds.ParameterGroup:
        family = parameter_group_family(self._args.common.engine_major_version)
        return aws.rds.ParameterGroup(
            f"{self._name}-params",
            # A prefix, not a name: a family change replaces the group create-before-delete.
            name_prefix=f"{self._args.identifier}-{family}-",
            family=family,
            description=f"{self._args.identifier} {family}: TLS only, query logging, pg_stat_statements",
            parameters=[
                aws.rds.ParameterGroupParameterArgs(name=key, value=value, apply_method=method)
                for key, value, method in PARAMETERS
            ],
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _log_groups(self, identifier: str) -> list[aws.cloudwatch.LogGroup]:
        return rdsparts.log_groups(
            self,
            self._name,
            suffix="primary",
            path=f"/aws/rds/instance/{identifier}",
            exports=LOG_EXPORTS,
            retention_days=self._args.common.log_retention_days,
        )
