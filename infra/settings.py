"""Stack settings: the one place that reads `pulumi.Config()`.

`load_settings()` reads every `temporaldb:` key once, validates all of them and
returns frozen objects the components take as arguments. Validation collects
every problem and raises one `SettingsError` naming key, value and the stack
file to edit, before any resource is registered.

`parse_settings()` is the pure part: it takes the raw strings exactly as the
Pulumi engine hands them to the program, so tests and the offline plan use the
same code path as `pulumi up`.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

import pulumi
from pulumi.runtime import config as runtime_config

from infra.catalog import INSTANCE_CLASSES, SUPPORTED_MAJOR_VERSIONS
from infra.configreader import PROJECT, ConfigReader
from infra.settings_aurora import (
    AURORA_MAJOR_VERSIONS,
    ENGINE_AURORA,
    ENGINE_INSTANCE,
    AuroraSettings,
    check_instance_keys,
    parse_aurora,
    parse_engine,
)
from temporaldb import roles

# Every key the program reads, in the order of Pulumi.yaml's `config:` block.
# tests/test_settings.py checks the two stay in step.
SETTING_KEYS: Final = (
    "instanceClass",
    "multiAz",
    "engineVersion",
    "allocatedStorageGb",
    "maxAllocatedStorageGb",
    "backupRetentionDays",
    "backupWindow",
    "maintenanceWindow",
    "deletionProtection",
    "publiclyAccessible",
    "allowedCidrs",
    "allowedSecurityGroupIds",
    "vpcId",
    "subnetIds",
    "vpcCidr",
    "performanceInsights",
    "monitoringIntervalSeconds",
    "alarmEmail",
    "monthlyBudgetUsd",
    "readReplicas",
    "sports",
    "costCenter",
    "allowMajorVersionUpgrade",
    "logRetentionDays",
    "manageDatabase",
    "dbHost",
    "dbPort",
    "iamAuthUsers",
    "tunnel",
    "engine",
    "auroraMinAcu",
    "auroraMaxAcu",
    "auroraPauseAfterSeconds",
    "auroraReaders",
    "auroraExpectedAcu",
    "auroraStorage",
    "auroraActiveHoursPerMonth",
)
REGION_KEY: Final = "aws:region"
PROFILE_KEY: Final = "aws:profile"
_PROFILE = re.compile(r"^[\w.@+=,-]+$")

MONITORING_INTERVALS: Final = (0, 1, 5, 10, 15, 30, 60)
LOG_RETENTION_DAYS: Final = (
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
)
MINUTES_PER_DAY: Final = 24 * 60
MINUTES_PER_WEEK: Final = 7 * MINUTES_PER_DAY
WEEKDAYS: Final = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

_CLOCK = r"([01]\d|2[0-3]):([0-5]\d)"
_BACKUP_WINDOW = re.compile(rf"^{_CLOCK}-{_CLOCK}$")
_DAY = "(" + "|".join(WEEKDAYS) + ")"
_MAINTENANCE_WINDOW = re.compile(rf"^{_DAY}:{_CLOCK}-{_DAY}:{_CLOCK}$")
_SPORT = re.compile(r"^[a-z][a-z0-9_]{1,20}$")
_SECURITY_GROUP_ID = re.compile(r"^sg-[0-9a-f]{8}([0-9a-f]{9})?$")
_SUBNET_ID = re.compile(r"^subnet-[0-9a-f]{8}([0-9a-f]{9})?$")
_VPC_ID = re.compile(r"^vpc-[0-9a-f]{8}([0-9a-f]{9})?$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_REGION = re.compile(r"^[a-z]{2}(-gov)?-[a-z]+-\d$")
_HOST_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOST_NAME = re.compile(rf"^{_HOST_LABEL}(\.{_HOST_LABEL})*$")


class SettingsError(pulumi.RunError):
    """Invalid stack settings; the message lists every problem found."""

    def __init__(self, stack_file: str, problems: list[str]) -> None:
        self.stack_file = stack_file
        self.problems = problems
        plural = "s" if len(problems) != 1 else ""
        lines = [f"{stack_file}: {len(problems)} invalid setting{plural}; edit the file and run again:"]
        lines += [f"  - {problem}" for problem in problems]
        super().__init__("\n".join(lines))


@dataclass(frozen=True)
class Window:
    """A time range in minutes since Monday 00:00 UTC (start inclusive)."""

    start_minute: int
    length_minutes: int

    def overlaps(self, other: Window) -> bool:
        return (other.start_minute - self.start_minute) % MINUTES_PER_WEEK < self.length_minutes or (
            self.start_minute - other.start_minute
        ) % MINUTES_PER_WEEK < other.length_minutes


@dataclass(frozen=True)
class NetworkSettings:
    vpc_id: str | None
    subnet_ids: tuple[str, ...]
    vpc_cidr: str

    @property
    def creates_vpc(self) -> bool:
        return not self.subnet_ids


@dataclass(frozen=True)
class AccessSettings:
    allowed_cidrs: tuple[str, ...]
    allowed_security_group_ids: tuple[str, ...]
    publicly_accessible: bool


@dataclass(frozen=True)
class DatabaseSettings:
    instance_class: str
    multi_az: bool
    engine_major_version: str
    allocated_storage_gb: int
    max_allocated_storage_gb: int
    backup_retention_days: int
    backup_window: str
    maintenance_window: str
    deletion_protection: bool
    performance_insights: bool
    monitoring_interval_seconds: int
    read_replicas: int
    log_retention_days: int
    allow_major_version_upgrade: bool


@dataclass(frozen=True)
class MonitoringSettings:
    alarm_email: str | None
    monthly_budget_usd: int


@dataclass(frozen=True)
class DatabaseAccessSettings:
    """How `pulumi up` reaches PostgreSQL to create the sport databases, roles and schema."""

    manage_database: bool
    """False: no `postgresql` resources at all (the in-database part runs separately)."""
    host: str | None
    """Where `pulumi up` connects (e.g. localhost through a tunnel); None: the instance address."""
    port: int
    iam_auth_users: tuple[str, ...]
    """Login roles that authenticate with an IAM token (rds_iam) instead of a password."""
    tunnel: bool = True
    """An EC2 Instance Connect Endpoint and a tunnel host: the way `pulumi up` and the CLI reach the instance."""


@dataclass(frozen=True)
class StackSettings:
    project: str
    stack: str
    region: str
    production: bool
    cost_center: str
    sports: tuple[str, ...]
    network: NetworkSettings
    access: AccessSettings
    database: DatabaseSettings
    monitoring: MonitoringSettings
    database_access: DatabaseAccessSettings
    aurora: AuroraSettings
    """Read on every stack, used when `engine` is aurora."""
    aws_profile: str | None = None
    """`aws:profile`: the named AWS profile the explicit provider uses (None: the default credential chain)."""
    engine: str = ENGINE_INSTANCE
    """`instance`: one RDS for PostgreSQL instance; `aurora`: an Aurora PostgreSQL Serverless v2 cluster."""
    notices: tuple[str, ...] = ()
    """Settings that are valid but not read (e.g. an instance's storage size on an Aurora stack): the program
    warns with each."""

    @property
    def is_aurora(self) -> bool:
        return self.engine == ENGINE_AURORA

    @property
    def stack_file(self) -> str:
        return stack_file_name(self.stack)

    @property
    def tags(self) -> dict[str, str]:
        """The tags every resource carries (through the provider's default_tags).

        `stack` is qualified by the project so that it is unique in the account:
        the cost budget filters on it alone.
        """
        return {"project": self.project, "stack": self.qualified_stack, "costCenter": self.cost_center}

    @property
    def qualified_stack(self) -> str:
        return f"{self.project}-{self.stack}"


def stack_file_name(stack: str) -> str:
    return f"Pulumi.{stack}.yaml"


def is_production_stack(stack: str) -> bool:
    """prod rules apply to `prod` and to stacks named `prod-*` (e.g. prod-eu)."""
    return stack == "prod" or stack.startswith("prod-")


def parse_backup_window(text: str) -> Window | None:
    match = _BACKUP_WINDOW.match(text)
    if match is None:
        return None
    start = int(match[1]) * 60 + int(match[2])
    end = int(match[3]) * 60 + int(match[4])
    return Window(start, (end - start) % MINUTES_PER_DAY)


def parse_maintenance_window(text: str) -> Window | None:
    match = _MAINTENANCE_WINDOW.match(text.lower())
    if match is None:
        return None
    start = WEEKDAYS.index(match[1]) * MINUTES_PER_DAY + int(match[2]) * 60 + int(match[3])
    end = WEEKDAYS.index(match[4]) * MINUTES_PER_DAY + int(match[5]) * 60 + int(match[6])
    return Window(start, (end - start) % MINUTES_PER_WEEK)


def _daily(window: Window) -> list[Window]:
    return [Window(day * MINUTES_PER_DAY + window.start_minute, window.length_minutes) for day in range(7)]


def _check_windows(reader: ConfigReader, backup_text: str, maintenance_text: str) -> None:
    backup = parse_backup_window(backup_text)
    maintenance = parse_maintenance_window(maintenance_text)
    if backup is None:
        reader.problem("backupWindow", "must look like hh24:mi-hh24:mi in UTC, e.g. 03:00-03:30")
    elif backup.length_minutes < 30:
        reader.problem("backupWindow", "must last at least 30 minutes")
    if maintenance is None:
        reader.problem("maintenanceWindow", "must look like ddd:hh24:mi-ddd:hh24:mi in UTC, e.g. sun:04:00-sun:04:30")
    elif maintenance.length_minutes < 30:
        reader.problem("maintenanceWindow", "must last at least 30 minutes")
    if backup and maintenance and any(maintenance.overlaps(day) for day in _daily(backup)):
        reader.problem("maintenanceWindow", f"overlaps the daily backup window {backup_text}; move one of them")


def _check_cidrs(reader: ConfigReader, cidrs: tuple[str, ...], production: bool) -> None:
    for cidr in cidrs:
        try:
            network = ipaddress.ip_network(cidr, strict=True)
        except ValueError as error:
            reader.problem("allowedCidrs", f"{cidr!r} is not a valid CIDR block ({error})")
            continue
        if production and network.prefixlen == 0:
            reader.problem("allowedCidrs", f"{cidr} opens PostgreSQL to the whole internet, refused in a prod stack")


def _check_ids(reader: ConfigReader, key: str, ids: tuple[str, ...], pattern: re.Pattern[str], example: str) -> None:
    for value in ids:
        if not pattern.match(value):
            reader.problem(key, f"{value!r} is not an id like {example}")


def _parse_network(reader: ConfigReader) -> NetworkSettings:
    vpc_id = reader.text("vpcId") or None
    subnet_ids = reader.string_list("subnetIds")
    vpc_cidr = reader.text("vpcCidr")
    if vpc_id is not None and not _VPC_ID.match(vpc_id):
        reader.problem("vpcId", "is not an id like vpc-0123456789abcdef0")
    _check_ids(reader, "subnetIds", subnet_ids, _SUBNET_ID, "subnet-0123456789abcdef0")
    if subnet_ids and vpc_id is None:
        reader.problem("vpcId", "must be set when subnetIds is set (the security group lives in that VPC)")
    if vpc_id is not None and not subnet_ids:
        reader.problem("subnetIds", f"must list private subnets of {vpc_id} in two Availability Zones at least")
    if len(subnet_ids) == 1:
        reader.problem("subnetIds", "an RDS subnet group needs subnets in two Availability Zones at least")
    if len(set(subnet_ids)) != len(subnet_ids):
        reader.problem("subnetIds", "lists a subnet twice")
    if not subnet_ids:
        try:
            block = ipaddress.ip_network(vpc_cidr, strict=True)
            if block.version != 4 or not 16 <= block.prefixlen <= 24:
                reader.problem("vpcCidr", "must be an IPv4 block from /16 to /24")
        except ValueError as error:
            reader.problem("vpcCidr", f"is not a valid CIDR block ({error})")
    return NetworkSettings(vpc_id=vpc_id, subnet_ids=subnet_ids, vpc_cidr=vpc_cidr)


def _parse_access(reader: ConfigReader, production: bool, network: NetworkSettings) -> AccessSettings:
    cidrs = reader.string_list("allowedCidrs")
    groups = reader.string_list("allowedSecurityGroupIds")
    public = reader.boolean("publiclyAccessible")
    _check_cidrs(reader, cidrs, production)
    _check_ids(reader, "allowedSecurityGroupIds", groups, _SECURITY_GROUP_ID, "sg-0123456789abcdef0")
    if len(set(cidrs)) != len(cidrs):
        reader.problem("allowedCidrs", "lists a block twice")
    if len(set(groups)) != len(groups):
        reader.problem("allowedSecurityGroupIds", "lists a group twice")
    if production and public:
        reader.problem("publiclyAccessible", "a prod instance must not be publicly accessible (FSBP RDS.2); set false")
    elif public and network.creates_vpc:
        reader.problem(
            "publiclyAccessible", "needs vpcId and subnetIds with an internet route; the VPC made here has none"
        )
    if groups and network.creates_vpc:
        reader.problem(
            "allowedSecurityGroupIds",
            "security groups must live in the database's VPC; set vpcId and subnetIds, or allow CIDRs instead",
        )
    return AccessSettings(allowed_cidrs=cidrs, allowed_security_group_ids=groups, publicly_accessible=public)


def _parse_database(reader: ConfigReader, production: bool, engine: str) -> DatabaseSettings:
    instance_class = reader.text("instanceClass")
    if instance_class not in INSTANCE_CLASSES:
        reader.problem(
            "instanceClass",
            "is not an RDS for PostgreSQL instance class; "
            "expected db.<family>.<size> such as db.t3.micro or db.m6g.large",
        )
    major = reader.text("engineVersion")
    majors = AURORA_MAJOR_VERSIONS if engine == ENGINE_AURORA else SUPPORTED_MAJOR_VERSIONS
    if major not in majors:
        kind = "an Aurora PostgreSQL" if engine == ENGINE_AURORA else "a PostgreSQL"
        reader.problem(
            "engineVersion",
            f"must be {kind} major version only, one of {', '.join(majors)} "
            "(minor versions are applied by auto minor upgrade)",
        )
    allocated = reader.integer("allocatedStorageGb", 20, 65536)
    ceiling = reader.integer("maxAllocatedStorageGb", 20, 65536)
    # RDS refuses a ceiling less than 10% above the allocation.
    if ceiling < math.ceil(allocated * 1.1):
        reader.problem(
            "maxAllocatedStorageGb",
            f"must be at least 10% above allocatedStorageGb ({allocated}), i.e. {math.ceil(allocated * 1.1)} or more",
        )
    retention = reader.integer("backupRetentionDays", 1, 35)
    if production and 1 <= retention < 7:
        reader.problem("backupRetentionDays", "a prod stack keeps at least 7 days of backups (FSBP RDS.11)")
    backup_window = reader.text("backupWindow")
    maintenance_window = reader.text("maintenanceWindow").lower()
    _check_windows(reader, backup_window, maintenance_window)
    deletion_protection = reader.boolean("deletionProtection")
    if production and not deletion_protection:
        reader.problem("deletionProtection", "a prod instance must have deletion protection (FSBP RDS.8); set true")
    interval = reader.integer("monitoringIntervalSeconds", 0, 60)
    if interval not in MONITORING_INTERVALS:
        reader.problem("monitoringIntervalSeconds", f"must be one of {', '.join(map(str, MONITORING_INTERVALS))}")
    log_retention = reader.integer("logRetentionDays", 1, 3653)
    if log_retention not in LOG_RETENTION_DAYS:
        reader.problem(
            "logRetentionDays", f"must be a CloudWatch Logs retention: {', '.join(map(str, LOG_RETENTION_DAYS))}"
        )
    return DatabaseSettings(
        instance_class=instance_class,
        multi_az=reader.boolean("multiAz"),
        engine_major_version=major,
        allocated_storage_gb=allocated,
        max_allocated_storage_gb=ceiling,
        backup_retention_days=retention,
        backup_window=backup_window,
        maintenance_window=maintenance_window,
        deletion_protection=deletion_protection,
        performance_insights=reader.boolean("performanceInsights"),
        monitoring_interval_seconds=interval,
        read_replicas=_read_replicas(reader, engine),
        log_retention_days=log_retention,
        allow_major_version_upgrade=reader.boolean("allowMajorVersionUpgrade"),
    )


def _read_replicas(reader: ConfigReader, engine: str) -> int:
    """Always 0: RDS refuses a read replica of an instance whose master password Secrets Manager manages."""
    replicas = reader.integer("readReplicas", 0, 5)
    if replicas and engine == ENGINE_AURORA:
        reader.problem("readReplicas", "must be 0: a cluster's read replicas are its readers, set auroraReaders")
    elif replicas:
        reader.problem(
            "readReplicas",
            "must be 0: RDS cannot create a read replica of an instance whose master password Secrets Manager "
            "manages, and this program always keeps the managed, rotating master secret; scale reads with a "
            "larger instanceClass (or Aurora PostgreSQL, whose readers keep the managed secret)",
        )
    return 0


def _parse_monitoring(reader: ConfigReader) -> MonitoringSettings:
    email = reader.text("alarmEmail") or None
    if email is not None and not _EMAIL.match(email):
        reader.problem("alarmEmail", "is not an e-mail address")
    budget = reader.integer("monthlyBudgetUsd", 1, 1_000_000)
    return MonitoringSettings(alarm_email=email, monthly_budget_usd=budget)


def _parse_sports(reader: ConfigReader) -> tuple[str, ...]:
    sports = reader.string_list("sports")
    if not sports:
        reader.problem("sports", "must list at least one sport, e.g. [nba]")
    for sport in sports:
        if not _SPORT.match(sport):
            reader.problem("sports", f"{sport!r} must be lower-case letters, digits or _ (it names a database)")
    if len(set(sports)) != len(sports):
        reader.problem("sports", "lists a sport twice")
    return sports


def _is_host(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return len(text) <= 253 and _HOST_NAME.match(text) is not None
    return True


def _parse_database_access(reader: ConfigReader) -> DatabaseAccessSettings:
    manage = reader.boolean("manageDatabase")
    host = reader.text("dbHost") or None
    if host is not None and not _is_host(host):
        reader.problem("dbHost", "must be a host name or IP address only (no scheme, port or path), e.g. localhost")
    port = reader.integer("dbPort", 1, 65535)
    users = reader.string_list("iamAuthUsers")
    known = roles.login_names()
    for user in users:
        if user not in known:
            reader.problem("iamAuthUsers", f"{user!r} is not a login role (known: {', '.join(known)})")
        elif not roles.login(user).may_use_iam:
            reader.problem(
                "iamAuthUsers",
                f"{user!r} must keep its password: pulumi up runs the schema migrations as it",
            )
    if len(set(users)) != len(users):
        reader.problem("iamAuthUsers", "lists a role twice")
    return DatabaseAccessSettings(
        manage_database=manage,
        host=host,
        port=port,
        iam_auth_users=users,
        tunnel=reader.boolean("tunnel"),
    )


def parse_settings(raw: Mapping[str, str], stack: str) -> StackSettings:
    """Validate raw config strings (full keys such as `temporaldb:multiAz`)."""
    reader = ConfigReader(raw)
    production = is_production_stack(stack)
    region = reader.text(REGION_KEY)
    if region and not _REGION.match(region):
        reader.problem(REGION_KEY, "is not an AWS region such as us-east-1")
    network = _parse_network(reader)
    profile = raw.get(PROFILE_KEY, "").strip() or None
    if profile is not None and not _PROFILE.match(profile):
        reader.problem(PROFILE_KEY, "is not an AWS profile name (letters, digits and _.@+=,-)")
    engine = parse_engine(reader)
    # In the order a stack file lists them, so the error reads top to bottom.
    cost_center = reader.text("costCenter") or "unassigned"
    sports = _parse_sports(reader)
    access = _parse_access(reader, production, network)
    database = _parse_database(reader, production, engine)
    monitoring = _parse_monitoring(reader)
    database_access = _parse_database_access(reader)
    aurora = parse_aurora(reader, engine=engine, production=production, major=database.engine_major_version)
    notices = check_instance_keys(reader, multi_az=database.multi_az, aurora=aurora) if engine == ENGINE_AURORA else ()
    settings = StackSettings(
        project=PROJECT,
        stack=stack,
        region=region,
        production=production,
        cost_center=cost_center,
        sports=sports,
        network=network,
        access=access,
        database=database,
        monitoring=monitoring,
        database_access=database_access,
        aurora=aurora,
        aws_profile=profile,
        engine=engine,
        notices=notices,
    )
    for key in sorted(raw):
        if key.startswith(f"{PROJECT}:") and key.split(":", 1)[1] not in SETTING_KEYS:
            reader.problems.append(f"{key} is not a setting of this program (known: {', '.join(SETTING_KEYS)})")
    if reader.problems:
        raise SettingsError(stack_file_name(stack), reader.problems)
    return settings


def load_settings() -> StackSettings:
    """Read this stack's configuration once from the Pulumi engine and validate it."""
    project_config = pulumi.Config(PROJECT)
    raw: dict[str, str] = {}
    for name in SETTING_KEYS:
        value = project_config.get(name)
        if value is not None:
            raw[f"{PROJECT}:{name}"] = value
    aws_config = pulumi.Config("aws")
    for key, value in ((REGION_KEY, aws_config.get("region")), (PROFILE_KEY, aws_config.get("profile"))):
        if value is not None:
            raw[key] = value
    raw.update(_undeclared_project_keys())
    return parse_settings(raw, pulumi.get_stack())


def _undeclared_project_keys() -> dict[str, str]:
    """Project keys the stack sets but the program does not read (typos)."""
    every_key = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    return {
        key: str(value)
        for key, value in every_key.items()
        if key.startswith(f"{PROJECT}:") and key.split(":", 1)[1] not in SETTING_KEYS
    }
