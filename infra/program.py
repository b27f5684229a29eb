"""Wires the components of one stack together from its validated settings."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.access import DatabaseAccess, DatabaseAccessArgs
from components.budget import CostBudget, CostBudgetArgs
from components.firewall import DatabaseFirewall, DatabaseFirewallArgs
from components.network import IsolatedNetwork, IsolatedNetworkArgs
from components.schema import planned_migrations
from components.tunnel import AMAZON_LINUX_PARAMETER, TunnelPath, TunnelPathArgs
from infra import discovery
from infra.databases import Database, Placement, build_database
from infra.settings import StackSettings

# `replace_with` (the schema resource follows its database) needs an engine that knows it (3.207.0);
# PULUMI_RUN_PROGRAM, which `pulumi refresh` and `pulumi destroy` need here, came in 3.165.0.
REQUIRED_PULUMI_VERSION = ">=3.207.0"
RUN_PROGRAM_ENV = "PULUMI_RUN_PROGRAM"
INSTANCE_SUBNETS = 2
"""An RDS subnet group needs two zones; Multi-AZ places the standby in the second."""
AURORA_SUBNETS = 3
"""An Aurora cluster's storage spans three zones; a subnet in each lets its readers do too."""


def build_stack(settings: StackSettings) -> dict[str, pulumi.Input[object]]:
    """Register every resource of the stack; return the stack outputs."""
    _require_pulumi_version()
    # One tagging mechanism: the provider's default_tags reach every AWS resource.
    provider = aws.Provider(
        "aws",
        region=settings.region,
        profile=settings.aws_profile,  # an explicit provider does not read aws:profile by itself
        default_tags=aws.ProviderDefaultTagsArgs(tags=settings.tags),
    )
    under_provider = pulumi.ResourceOptions(providers={"aws": provider})
    prefix = settings.qualified_stack
    # Decided before anything is registered, so a closed tunnel stops the run before it changes anything.
    reach = _in_database_reach(settings, prefix, provider)

    for notice in settings.notices:
        pulumi.log.warn(notice)
    vpc_id, subnet_ids, zones = _network(settings, prefix, provider, under_provider)
    firewall = DatabaseFirewall(
        f"{prefix}-db-access",
        DatabaseFirewallArgs(
            vpc_id=vpc_id,
            allowed_cidrs=settings.access.allowed_cidrs,
            allowed_security_group_ids=settings.access.allowed_security_group_ids,
        ),
        under_provider,
    )
    database = build_database(settings, prefix, Placement(subnet_ids, zones, firewall), under_provider)
    CostBudget(
        f"{prefix}-cost",
        CostBudgetArgs(
            monthly_limit_usd=settings.monitoring.monthly_budget_usd,
            cost_allocation_tag=("stack", settings.qualified_stack),
            sns_topic_arn=database.topic_arn,
            email_addresses=(settings.monitoring.alarm_email,) if settings.monitoring.alarm_email else (),
        ),
        under_provider,
    )
    outputs: dict[str, pulumi.Input[object]] = {
        **database.outputs,
        "securityGroupId": firewall.security_group_id,
        "vpcId": vpc_id,
        "subnetIds": subnet_ids,
        "alarmTopicArn": database.topic_arn,
        "sports": list(settings.sports),
    }
    if settings.database_access.tunnel:
        tunnel = _tunnel(prefix, vpc_id, subnet_ids, firewall, provider=provider, under_provider=under_provider)
        outputs["tunnelEndpointId"] = tunnel.endpoint_id
        outputs["tunnelHostId"] = tunnel.host_instance_id
    if reach.next_step:
        outputs["nextStep"] = reach.next_step
    if reach.live_instance is not None:
        access = _database_access(
            settings, prefix=prefix, database=database, provider=provider, under_provider=under_provider
        )
        outputs["databases"] = access.databases
        outputs["loginSecretArns"] = access.login_secret_arns
        outputs["schemaVersion"] = access.schema_versions
    return outputs


def _require_pulumi_version() -> None:
    try:
        pulumi.require_pulumi_version(REQUIRED_PULUMI_VERSION)
    except Exception as error:  # the SDK raises a bare Exception for both an old and a too-old engine
        raise pulumi.RunError(
            f"this program needs Pulumi CLI {REQUIRED_PULUMI_VERSION} (ResourceOptions.replace_with); "
            f"upgrade the CLI (https://www.pulumi.com/docs/install/) and run again ({error})"
        ) from None


@dataclass(frozen=True)
class InDatabaseReach:
    """Whether this run registers the in-database part, and what to tell the user when it does not."""

    live_instance: discovery.LiveInstance | None
    next_step: str | None = None


def _in_database_reach(settings: StackSettings, prefix: str, provider: aws.Provider) -> InDatabaseReach:
    access = settings.database_access
    if not access.manage_database:
        return InDatabaseReach(None)
    live = discovery.find_cluster(prefix, provider) if settings.is_aurora else discovery.find_instance(prefix, provider)
    tunnel = f"temporaldb tunnel --stack {settings.stack}"
    if live is None:
        # Nothing of the in-database part can exist in the state yet: leaving it out deletes nothing.
        kind = "cluster" if settings.is_aurora else "instance"
        step = (
            f"The {kind} {prefix} is new: this run creates it, without the sport databases, roles and schema. "
            f"When it is done, open the tunnel in another terminal (`{tunnel}`) and run `pulumi up` again."
        )
        pulumi.log.warn(step)
        return InDatabaseReach(None, step)
    host = access.host or live.address
    if not host or not discovery.port_is_open(host, access.port):
        problem = (
            f"PostgreSQL of {prefix} is not reachable at {host or '(no address yet)'}:{access.port}, where this "
            f"stack's dbHost/dbPort say pulumi connects for the sport databases, roles and schema. Open the tunnel "
            f"in another terminal (`{tunnel}`) and run again. (manageDatabase: false would delete them.)"
        )
        if pulumi.runtime.is_dry_run():
            pulumi.log.warn(f"{problem} The preview goes on; the update would stop here.")
        else:
            raise pulumi.RunError(problem)
    return InDatabaseReach(live)


def _database_access(
    settings: StackSettings,
    *,
    prefix: str,
    database: Database,
    provider: aws.Provider,
    under_provider: pulumi.ResourceOptions,
) -> DatabaseAccess:
    """The sport databases, roles and schema, through the postgresql provider as the master user, on the
    instance or the cluster's writer."""
    _warn_unless_run_program(settings.stack)
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
            # Through the database's address even when a tunnel's host is given: the providers then depend
            # on the database, so a destroy deletes everything inside it before the database itself.
            host=database.address.apply(lambda address: access.host or address),
            port=access.port,
            admin_username=database.master_username,
            admin_password=master_password,
            endpoint_address=database.address,
            endpoint_port=database.port,
            migrations=planned_migrations(),
            secret_name_prefix=prefix,
            iam_users=access.iam_auth_users,
            connect_timeout_seconds=database.connect_timeout_seconds,
            protect=settings.production,
        ),
        under_provider,
    )


def _tunnel(
    prefix: str,
    vpc_id: pulumi.Input[str],
    subnet_ids: pulumi.Input[list[str]],
    firewall: DatabaseFirewall,
    *,
    provider: aws.Provider,
    under_provider: pulumi.ResourceOptions,
) -> TunnelPath:
    image = aws.ssm.get_parameter_output(
        name=AMAZON_LINUX_PARAMETER, opts=pulumi.InvokeOutputOptions(provider=provider)
    )
    return TunnelPath(
        f"{prefix}-tunnel",
        TunnelPathArgs(
            vpc_id=vpc_id,
            subnet_id=pulumi.Output.from_input(subnet_ids).apply(lambda ids: ids[0]),
            database_security_group_id=firewall.security_group_id,
            image_id=image.value,
        ),
        under_provider,
    )


def _warn_unless_run_program(stack: str) -> None:
    """The providers keep this run's master password; `refresh` and `destroy` need the program to get today's.

    RDS rotates the master password every 7 days. `pulumi refresh` and `pulumi
    destroy` do not run the program unless told to, so they would connect with
    the password saved in the state and fail a week later. With
    PULUMI_RUN_PROGRAM=true (or --run-program) they run it and read the
    current one. The program cannot see how refresh or destroy are started, only
    whether the variable is set for this run; it says so when it is not.
    """
    if os.environ.get(RUN_PROGRAM_ENV, "").strip().lower() in ("1", "true"):
        return
    pulumi.log.warn(
        f"{RUN_PROGRAM_ENV} is not set: `pulumi refresh` and `pulumi destroy` of {stack} will use the master password "
        f"saved now, which RDS rotates within 7 days. Export {RUN_PROGRAM_ENV}=true (README, Running pulumi up for "
        "real) or pass --run-program to them."
    )


def _require_secret_arn(arn: str | None) -> str:
    if not arn:
        raise pulumi.RunError("the instance has no RDS-managed master secret; the postgresql provider needs it")
    return arn


def _network(
    settings: StackSettings, prefix: str, provider: aws.Provider, under_provider: pulumi.ResourceOptions
) -> tuple[pulumi.Input[str], pulumi.Input[list[str]], pulumi.Input[list[str]]]:
    """The stack's own subnets when it names them, else a new isolated VPC; and the subnets' zones."""
    if not settings.network.creates_vpc:
        subnet_ids = list(settings.network.subnet_ids)
        return settings.network.vpc_id or "", subnet_ids, _subnet_zones(settings, subnet_ids, provider)
    # Standard zones only: an account may have opted into Local or Wavelength Zones, which sort first by
    # name and do not offer every RDS class.
    zones = aws.get_availability_zones_output(
        state="available",
        filters=[aws.GetAvailabilityZonesFilterArgs(name="zone-type", values=["availability-zone"])],
        opts=pulumi.InvokeOutputOptions(provider=provider),
    )
    network = IsolatedNetwork(
        f"{prefix}-network",
        IsolatedNetworkArgs(
            availability_zones=zones.names,
            cidr_block=settings.network.vpc_cidr,
            subnet_count=AURORA_SUBNETS if settings.is_aurora else INSTANCE_SUBNETS,
        ),
        under_provider,
    )
    return network.vpc_id, network.subnet_ids, network.availability_zones


def _subnet_zones(settings: StackSettings, subnet_ids: list[str], provider: aws.Provider) -> pulumi.Input[list[str]]:
    """The zones of the stack's own subnets, where an Aurora cluster places its readers (an instance
    needs none: RDS places its standby)."""
    if not settings.is_aurora:
        return []
    options = pulumi.InvokeOutputOptions(provider=provider)
    return pulumi.Output.all(
        *[aws.ec2.get_subnet_output(id=subnet_id, opts=options).availability_zone for subnet_id in subnet_ids]
    )
