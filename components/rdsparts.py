"""What an RDS instance and an Aurora cluster both need around them, built the same way.

The subnet group, the log groups that must exist (with a retention) before RDS
exports to them, the Enhanced Monitoring role and the unique final-snapshot
name. Each function registers its resources as children of the component that
calls it, named after it, so a component reads as the list of what it owns.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_random as random

MONITORING_POLICY_ARN = "arn:aws:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"
# Neither kind may use paid Extended Support; an unsupported major version fails loudly instead.
EXTENDED_SUPPORT_DISABLED = "open-source-rds-extended-support-disabled"
CA_CERTIFICATE = "rds-ca-rsa2048-g1"


@dataclass(frozen=True)
class CommonDatabaseArgs:
    """What an RDS instance and an Aurora cluster are both given; the defaults are the secure ones."""

    engine_major_version: str = "17"
    backup_retention_days: pulumi.Input[int] = 7
    backup_window: pulumi.Input[str] = "03:00-03:30"
    maintenance_window: pulumi.Input[str] = "sun:04:00-sun:04:30"
    deletion_protection: pulumi.Input[bool] = True
    keep_final_snapshot: bool = True
    """Take a uniquely named final snapshot and keep automated backups on delete."""
    protect: bool = True
    publicly_accessible: pulumi.Input[bool] = False
    performance_insights: pulumi.Input[bool] = True
    monitoring_interval_seconds: int = 60
    log_retention_days: pulumi.Input[int] = 30
    allow_major_version_upgrade: bool = False
    """Only for the update that raises the major version; it then applies immediately."""
    master_username: pulumi.Input[str] = "temporaldb_admin"
    """Not `postgres` (FSBP RDS.25); the password lives in Secrets Manager only."""


def subnet_group(
    owner: pulumi.Resource, name: str, identifier: str, subnet_ids: pulumi.Input[Sequence[pulumi.Input[str]]]
) -> aws.rds.SubnetGroup:
    return aws.rds.SubnetGroup(
        f"{name}-subnets",
        name_prefix=f"{identifier}-",
        description=f"Private subnets of {identifier}",
        subnet_ids=subnet_ids,
        opts=pulumi.ResourceOptions(parent=owner),
    )


def log_groups(
    owner: pulumi.Resource,
    name: str,
    *,
    suffix: str,
    path: str,
    exports: Sequence[str],
    retention_days: pulumi.Input[int],
) -> list[aws.cloudwatch.LogGroup]:
    """One group per export at `path`/<export>, created first so RDS does not create it without a retention."""
    return [
        aws.cloudwatch.LogGroup(
            f"{name}-{suffix}-{export}-log",
            name=f"{path}/{export}",
            retention_in_days=retention_days,
            opts=pulumi.ResourceOptions(parent=owner),
        )
        for export in exports
    ]


def monitoring_role_arn(
    owner: pulumi.Resource, name: str, identifier: str, interval_seconds: int
) -> pulumi.Output[str] | None:
    """The Enhanced Monitoring role (None when monitoring is off), usable once its policy is attached."""
    if interval_seconds == 0:
        return None
    role = aws.iam.Role(
        f"{name}-monitoring-role",
        description=f"Enhanced Monitoring for {identifier}",
        assume_role_policy=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "monitoring.rds.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
        ),
        opts=pulumi.ResourceOptions(parent=owner),
    )
    attachment = aws.iam.RolePolicyAttachment(
        f"{name}-monitoring-policy",
        role=role.name,
        policy_arn=MONITORING_POLICY_ARN,
        opts=pulumi.ResourceOptions(parent=owner),
    )
    # The database must not use the role before its policy is attached.
    return pulumi.Output.all(role.arn, attachment.id).apply(lambda values: str(values[0]))


def final_snapshot_identifier(
    owner: pulumi.Resource, name: str, identifier: str, keep_final_snapshot: bool
) -> pulumi.Output[str] | None:
    """`<identifier>-final-<random>`, or None when the stack takes no final snapshot."""
    if not keep_final_snapshot:
        return None
    # A fixed name fails the second destroy with DBSnapshotAlreadyExists.
    suffix = random.RandomId(
        f"{name}-final-snapshot-suffix",
        byte_length=4,
        keepers={"identifier": identifier},
        opts=pulumi.ResourceOptions(parent=owner),
    )
    return suffix.hex.apply(lambda hex_suffix: f"{identifier}-final-{hex_suffix}")
