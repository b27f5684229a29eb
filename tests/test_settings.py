"""Stack settings: every rule, good and bad values, and the error text."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from infra.settings import (
    MINUTES_PER_DAY,
    MINUTES_PER_WEEK,
    SETTING_KEYS,
    WEEKDAYS,
    DatabaseAccessSettings,
    SettingsError,
    StackSettings,
    parse_backup_window,
    parse_maintenance_window,
    parse_settings,
)
from temporaldb.stackconfig import engine_string

Config = Callable[[str], dict[str, str]]


def parse(config: dict[str, str], stack: str, **changes: object) -> StackSettings:
    raw = dict(config)
    for key, value in changes.items():
        full = key if ":" in key else f"temporaldb:{key}"
        if value is None:
            raw.pop(full, None)
        else:
            raw[full] = engine_string(value)
    return parse_settings(raw, stack)


def problems(config: dict[str, str], stack: str, **changes: object) -> list[str]:
    with pytest.raises(SettingsError) as caught:
        parse(config, stack, **changes)
    assert str(caught.value).startswith(f"Pulumi.{stack}.yaml: ")
    return caught.value.problems


def test_declared_keys_match_the_settings_module(project_root: Path) -> None:
    declared = yaml.safe_load((project_root / "Pulumi.yaml").read_text())["config"]
    assert tuple(declared) == SETTING_KEYS
    for key, spec in declared.items():
        assert spec.get("type") in ("string", "integer", "boolean", "array"), key
        assert spec.get("description"), key
        assert "default" in spec, key


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_stack_files_set_only_declared_keys(project_root: Path, stack: str) -> None:
    values = yaml.safe_load((project_root / f"Pulumi.{stack}.yaml").read_text())["config"]
    for key in values:
        namespace, name = key.split(":")
        assert namespace == "aws" or name in SETTING_KEYS, key


def test_dev_and_prod_profiles(stack_config: Config) -> None:
    dev = parse_settings(stack_config("dev"), "dev")
    prod = parse_settings(stack_config("prod"), "prod")
    assert (dev.database.instance_class, dev.database.multi_az, dev.production) == ("db.t3.micro", False, False)
    assert (prod.database.instance_class, prod.database.multi_az, prod.production) == ("db.t3.small", True, True)
    assert prod.database.deletion_protection
    assert not prod.access.publicly_accessible
    assert prod.database.backup_retention_days >= 7
    assert dev.tags == {"project": "temporaldb", "stack": "temporaldb-dev", "costCenter": "sports-analytics"}


# (key, bad value, stack, words the problem must contain)
BAD_VALUES = [
    ("instanceClass", "t3.micro", "dev", "not an RDS for PostgreSQL instance class"),
    ("instanceClass", "db.t3.huge", "dev", "not an RDS for PostgreSQL instance class"),
    ("multiAz", "sometimes", "dev", "true or false"),
    ("engineVersion", "17.4", "dev", "major version only"),
    ("engineVersion", "9", "dev", "major version only"),
    ("engineVersion", "13", "dev", "major version only"),
    ("allocatedStorageGb", "10", "dev", "between 20 and 65536"),
    ("allocatedStorageGb", "twenty", "dev", "whole number"),
    ("maxAllocatedStorageGb", "15", "dev", "at least 10% above allocatedStorageGb"),
    ("maxAllocatedStorageGb", "20", "dev", "at least 10% above allocatedStorageGb"),
    ("maxAllocatedStorageGb", "21", "dev", "i.e. 22 or more"),
    ("publiclyAccessible", True, "dev", "the VPC made here has none"),
    ("allowedSecurityGroupIds", ["sg-0123456789abcdef0"], "dev", "must live in the database's VPC"),
    ("backupRetentionDays", "0", "dev", "between 1 and 35"),
    ("backupRetentionDays", "36", "dev", "between 1 and 35"),
    ("backupRetentionDays", "3", "prod", "at least 7 days"),
    ("backupWindow", "3:00-3:30", "dev", "hh24:mi-hh24:mi"),
    ("backupWindow", "03:00-03:10", "dev", "at least 30 minutes"),
    ("maintenanceWindow", "sunday:04:00-sunday:05:00", "dev", "ddd:hh24:mi-ddd:hh24:mi"),
    ("maintenanceWindow", "sun:04:00-sun:04:20", "dev", "at least 30 minutes"),
    ("maintenanceWindow", "wed:03:15-wed:04:00", "dev", "overlaps the daily backup window"),
    ("deletionProtection", False, "prod", "deletion protection"),
    ("publiclyAccessible", True, "prod", "must not be publicly accessible"),
    ("allowedCidrs", ["not-a-cidr"], "dev", "not a valid CIDR"),
    ("allowedCidrs", ["10.0.0.1/16"], "dev", "not a valid CIDR"),
    ("allowedCidrs", ["0.0.0.0/0"], "prod", "whole internet"),
    ("allowedCidrs", ["::/0"], "prod", "whole internet"),
    ("allowedCidrs", ["10.1.0.0/16", "10.1.0.0/16"], "dev", "twice"),
    ("allowedCidrs", "10.0.0.0/8", "dev", "list of strings"),
    ("allowedSecurityGroupIds", ["sg-12"], "dev", "not an id like sg-"),
    ("vpcId", "vpc-12", "dev", "not an id like vpc-"),
    ("subnetIds", ["subnet-0123456789abcdef0"], "dev", "two Availability Zones"),
    ("vpcCidr", "10.0.0.0/8", "dev", "/16 to /24"),
    ("monitoringIntervalSeconds", "45", "dev", "one of 0, 1, 5, 10, 15, 30, 60"),
    ("alarmEmail", "ops-at-example", "dev", "not an e-mail address"),
    ("monthlyBudgetUsd", "0", "dev", "between 1 and"),
    ("readReplicas", "6", "dev", "between 0 and 5"),
    ("readReplicas", "1", "dev", "must be 0: RDS cannot create a read replica"),
    ("tunnel", "maybe", "dev", "must be true or false"),
    ("sports", [], "dev", "at least one sport"),
    ("sports", ["NBA"], "dev", "lower-case"),
    ("logRetentionDays", "10", "dev", "CloudWatch Logs retention"),
    ("aws:region", "mars-1", "dev", "not an AWS region"),
    ("manageDatabase", "maybe", "dev", "true or false"),
    ("dbHost", "https://db.example.com", "dev", "host name or IP address only"),
    ("dbHost", "localhost:5432", "prod", "host name or IP address only"),
    ("dbHost", "db host", "dev", "host name or IP address only"),
    ("dbPort", "0", "dev", "between 1 and 65535"),
    ("dbPort", "65536", "prod", "between 1 and 65535"),
    ("dbPort", "tunnel", "dev", "whole number"),
    ("iamAuthUsers", ["migrator"], "dev", "'migrator' must keep its password: pulumi up runs the schema migrations"),
    ("iamAuthUsers", ["root"], "prod", "'root' is not a login role (known: migrator, etl, analyst, app)"),
    ("iamAuthUsers", ["app", "app"], "dev", "lists a role twice"),
    ("iamAuthUsers", "app", "dev", "list of strings"),
]


@pytest.mark.parametrize(("key", "value", "stack", "words"), BAD_VALUES)
def test_bad_value_is_named_with_key_and_value(
    stack_config: Config, key: str, value: object, stack: str, words: str
) -> None:
    found = problems(stack_config(stack), stack, **{key: value})
    full_key = key if ":" in key else f"temporaldb:{key}"
    matching = [problem for problem in found if words in problem]
    assert matching, found
    assert any(full_key in problem for problem in matching), found
    assert any(f"{full_key} = {engine_string(value)}:" in problem for problem in matching), found


GOOD_VALUES = [
    ("instanceClass", "db.m6g.large"),
    ("instanceClass", "db.t4g.micro"),
    ("engineVersion", "16"),
    ("allocatedStorageGb", "100"),
    ("backupRetentionDays", "35"),
    ("backupWindow", "23:45-00:30"),
    ("maintenanceWindow", "sat:23:50-sun:00:40"),
    ("allowedCidrs", ["10.0.0.0/8", "2001:db8::/32"]),
    ("allowedSecurityGroupIds", ["sg-0123456789abcdef0", "sg-01234567"]),
    ("monitoringIntervalSeconds", "1"),
    ("alarmEmail", "oncall@example.com"),
    ("readReplicas", "0"),
    ("tunnel", False),
    ("sports", ["nba", "nfl"]),
    ("manageDatabase", False),
    ("dbHost", ""),
    ("dbHost", "127.0.0.1"),
    ("dbHost", "::1"),
    ("dbHost", "temporaldb-prod.c0ffee000000.us-east-1.rds.amazonaws.com"),
    ("dbPort", "15432"),
    ("iamAuthUsers", ["etl", "analyst", "app"]),
    ("auroraMinAcu", "0"),
    ("auroraMinAcu", "1"),
    ("auroraMaxAcu", "256"),
    ("auroraPauseAfterSeconds", "86400"),
    ("auroraReaders", "15"),
    ("auroraStorage", "io-optimized"),
    ("auroraActiveHoursPerMonth", "0"),
]


@pytest.mark.parametrize(("key", "value"), GOOD_VALUES)
@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_good_value_is_accepted(stack_config: Config, stack: str, key: str, value: object) -> None:
    changes: dict[str, object] = {key: value}
    if key == "allocatedStorageGb":
        changes["maxAllocatedStorageGb"] = "1000"
    if key == "allowedSecurityGroupIds":
        changes["vpcId"] = "vpc-0123456789abcdef0"
        changes["subnetIds"] = ["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"]
    parse(stack_config(stack), stack, **changes)


def test_open_cidr_is_allowed_outside_prod(stack_config: Config) -> None:
    settings = parse(stack_config("dev"), "dev", allowedCidrs=["0.0.0.0/0"])
    assert settings.access.allowed_cidrs == ("0.0.0.0/0",)


def test_prod_rules_apply_to_prod_named_stacks(stack_config: Config) -> None:
    assert any("publiclyAccessible" in p for p in problems(stack_config("prod"), "prod-eu", publiclyAccessible=True))


def test_own_subnets_replace_the_isolated_vpc(stack_config: Config) -> None:
    settings = parse(
        stack_config("prod"),
        "prod",
        vpcId="vpc-0123456789abcdef0",
        subnetIds=["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"],
    )
    assert not settings.network.creates_vpc
    assert settings.network.subnet_ids == ("subnet-0123456789abcdef0", "subnet-0123456789abcdef1")


def test_vpc_and_subnets_go_together(stack_config: Config) -> None:
    without_subnets = problems(stack_config("dev"), "dev", vpcId="vpc-0123456789abcdef0")
    assert any(p.startswith("temporaldb:subnetIds = []: must list private subnets of vpc-") for p in without_subnets)
    without_vpc = problems(stack_config("dev"), "dev", subnetIds=["subnet-0123456789abcdef0", "subnet-01234567"])
    assert any(p.startswith("temporaldb:vpcId = : must be set when subnetIds is set") for p in without_vpc)


def test_every_problem_is_reported_together(stack_config: Config) -> None:
    found = problems(
        stack_config("prod"),
        "prod",
        publiclyAccessible=True,
        backupRetentionDays=0,
        allowedCidrs=["not-a-cidr"],
        maxAllocatedStorageGb=10,
        instanceClass="t3.micro",
    )
    for key in ("publiclyAccessible", "backupRetentionDays", "allowedCidrs", "maxAllocatedStorageGb", "instanceClass"):
        assert any(f"temporaldb:{key} = " in problem for problem in found), key


def test_unknown_key_is_a_typo(stack_config: Config) -> None:
    found = problems(stack_config("dev"), "dev", multiAZ=True)
    assert any("temporaldb:multiAZ is not a setting" in problem for problem in found)


def test_missing_key_is_named(stack_config: Config) -> None:
    found = problems(stack_config("dev"), "dev", instanceClass=None)
    assert any("temporaldb:instanceClass is not set" in problem for problem in found)


def test_database_access_defaults_and_stack_files(stack_config: Config, project_root: Path) -> None:
    declared = yaml.safe_load((project_root / "Pulumi.yaml").read_text())["config"]
    assert (declared["manageDatabase"]["default"], declared["dbHost"]["default"]) == (True, "")
    assert (declared["dbPort"]["default"], declared["iamAuthUsers"]["default"]) == (5432, [])
    for stack in ("dev", "prod"):
        access = parse_settings(stack_config(stack), stack).database_access
        assert access == DatabaseAccessSettings(manage_database=True, host="localhost", port=5432, iam_auth_users=())


def test_empty_db_host_means_the_instance_address(stack_config: Config) -> None:
    access = parse(stack_config("prod"), "prod", dbHost="", dbPort="15432", iamAuthUsers=["app"]).database_access
    assert (access.host, access.port, access.iam_auth_users) == (None, 15432, ("app",))


def test_manage_database_false_still_validates_the_rest(stack_config: Config) -> None:
    found = problems(stack_config("dev"), "dev", manageDatabase=False, iamAuthUsers=["migrator"], dbPort="0")
    assert any(p.startswith('temporaldb:iamAuthUsers = ["migrator"]: ') for p in found)
    assert any(p.startswith("temporaldb:dbPort = 0: ") for p in found)


def test_every_iam_problem_is_listed(stack_config: Config) -> None:
    found = problems(stack_config("dev"), "dev", iamAuthUsers=["migrator", "nobody", "app", "app"])
    iam = [p for p in found if p.startswith("temporaldb:iamAuthUsers = ")]
    assert len(iam) == 3, iam


def stack_config_dev() -> dict[str, str]:
    from temporaldb.stackconfig import ProjectFiles, load_stack_config
    from tests.conftest import PROJECT_ROOT

    return load_stack_config(ProjectFiles(PROJECT_ROOT), "dev")


def _minutes_of_week(start: int, length: int) -> set[int]:
    return {(start + offset) % MINUTES_PER_WEEK for offset in range(length)}


@given(
    backup_start=st.integers(0, MINUTES_PER_DAY - 1),
    backup_length=st.integers(30, 180),
    day=st.integers(0, 6),
    maintenance_start=st.integers(0, MINUTES_PER_DAY - 1),
    maintenance_length=st.integers(30, 600),
)
def test_window_overlap_matches_minute_by_minute_reference(
    backup_start: int, backup_length: int, day: int, maintenance_start: int, maintenance_length: int
) -> None:
    def clock(minute: int) -> str:
        return f"{minute // 60 % 24:02d}:{minute % 60:02d}"

    backup_text = f"{clock(backup_start)}-{clock(backup_start + backup_length)}"
    start = day * MINUTES_PER_DAY + maintenance_start
    end = (start + maintenance_length) % MINUTES_PER_WEEK
    maintenance_text = (
        f"{WEEKDAYS[start // MINUTES_PER_DAY]}:{clock(start % MINUTES_PER_DAY)}"
        f"-{WEEKDAYS[end // MINUTES_PER_DAY]}:{clock(end % MINUTES_PER_DAY)}"
    )
    backup = parse_backup_window(backup_text)
    maintenance = parse_maintenance_window(maintenance_text)
    assert backup is not None
    assert maintenance is not None
    backup_minutes = {
        (d * MINUTES_PER_DAY + backup.start_minute + offset) % MINUTES_PER_WEEK
        for d in range(7)
        for offset in range(backup.length_minutes)
    }
    expected = bool(backup_minutes & _minutes_of_week(maintenance.start_minute, maintenance.length_minutes))
    overlap_found = False
    try:
        parse(stack_config_dev(), "dev", backupWindow=backup_text, maintenanceWindow=maintenance_text)
    except SettingsError as error:
        overlap_found = any("overlaps" in problem for problem in error.problems)
    assert overlap_found == expected


# --- engine: aurora -------------------------------------------------------------------------------

AURORA_BAD_VALUES = [
    # (key, bad value, stack, words the problem must contain): format rules hold whatever the engine
    ("engine", "cluster", "dev", "must be one of instance, aurora"),
    ("auroraMinAcu", "0.3", "dev", "steps of 0.5"),
    ("auroraMinAcu", "-1", "dev", "between 0 and 256"),
    ("auroraMinAcu", "one", "dev", "steps of 0.5"),
    ("auroraMaxAcu", "0.5", "dev", "between 1 and 256"),
    ("auroraMaxAcu", "300", "prod", "between 1 and 256"),
    ("auroraMaxAcu", "nan", "dev", "steps of 0.5"),
    ("auroraPauseAfterSeconds", "60", "dev", "between 300 and 86400"),
    ("auroraPauseAfterSeconds", "90000", "dev", "between 300 and 86400"),
    ("auroraReaders", "16", "prod", "between 0 and 15"),
    ("auroraExpectedAcu", "8", "dev", "between 0.5 and auroraMaxAcu (4)"),
    ("auroraStorage", "fast", "dev", "must be one of standard, io-optimized"),
    ("auroraActiveHoursPerMonth", "800", "dev", "between 0 and 730"),
]


@pytest.mark.parametrize(("key", "value", "stack", "words"), AURORA_BAD_VALUES)
def test_bad_aurora_value_is_named_on_any_engine(
    stack_config: Config, key: str, value: object, stack: str, words: str
) -> None:
    for engine in ("instance", "aurora"):
        changes: dict[str, object] = {"engine": engine, key: value}
        if stack == "prod" and engine == "aurora" and key != "auroraReaders":
            changes["auroraReaders"] = "1"
        found = problems(stack_config(stack), stack, **changes)
        assert any(p.startswith(f"temporaldb:{key} = {engine_string(value)}: ") and words in p for p in found), found


def aurora(stack_config: Config, stack: str, **changes: object) -> StackSettings:
    return parse(stack_config(stack), stack, engine="aurora", **changes)


def test_aurora_settings_and_what_they_derive(stack_config: Config) -> None:
    paused = aurora(stack_config, "dev", auroraMinAcu="0", auroraPauseAfterSeconds=600).aurora
    assert (paused.min_acu, paused.max_acu, paused.pause_after_seconds, paused.readers) == (0.0, 4.0, 600, 0)
    assert paused.auto_pause
    assert paused.active_hours == 120
    assert (paused.expected_acu, paused.io_optimized) == (1.0, False)
    steady = aurora(
        stack_config, "prod", auroraReaders=2, auroraMinAcu="1.5", auroraExpectedAcu="2", auroraStorage="io-optimized"
    ).aurora
    assert not steady.auto_pause
    assert steady.active_hours == 730, "an instance that cannot pause runs the whole month"
    assert steady.io_optimized
    assert steady.readers == 2


def test_instance_stacks_stay_instance_by_default(stack_config: Config) -> None:
    for stack in ("dev", "prod"):
        settings = parse_settings(stack_config(stack), stack)
        assert (settings.engine, settings.is_aurora, settings.notices) == ("instance", False, ())


AURORA_REFUSALS = [
    # (stack, changes, key, words): what a cluster cannot do
    ("prod", {}, "auroraReaders", "a prod cluster needs at least one reader, in another Availability Zone"),
    ("dev", {"multiAz": True}, "multiAz", "its standby is a reader in another Availability Zone"),
    ("dev", {"readReplicas": "1"}, "readReplicas", "a cluster's read replicas are its readers, set auroraReaders"),
    ("dev", {"engineVersion": "18"}, "engineVersion", "an Aurora PostgreSQL major version only, one of 14, 15, 16, 17"),
    ("dev", {"auroraMinAcu": "8", "auroraMaxAcu": "4"}, "auroraMaxAcu", "must be at least auroraMinAcu (8)"),
    ("dev", {"auroraMinAcu": "2", "auroraExpectedAcu": "1"}, "auroraExpectedAcu", "between 2 and auroraMaxAcu"),
]


@pytest.mark.parametrize(("stack", "changes", "key", "words"), AURORA_REFUSALS)
def test_aurora_refuses_what_a_cluster_cannot_do(
    stack_config: Config, stack: str, changes: dict[str, object], key: str, words: str
) -> None:
    found = problems(stack_config(stack), stack, engine="aurora", **changes)
    assert any(p.startswith(f"temporaldb:{key} = ") and words in p for p in found), found
    if key in ("auroraReaders", "multiAz", "readReplicas", "engineVersion"):
        # A cluster's rules: the same values on an instance stack are the instance's business.
        instance_problems: list[str] = []
        try:
            parse(stack_config(stack), stack, **changes)
        except SettingsError as error:
            instance_problems = error.problems
        assert not any(words in p for p in instance_problems)


def test_prod_with_a_reader_keeps_multi_az_and_hears_about_the_instance_keys(stack_config: Config) -> None:
    settings = aurora(stack_config, "prod", auroraReaders=1)
    assert settings.database.multi_az, "multiAz: true is what a reader in another zone gives"
    assert len(settings.notices) == 2
    class_notice, storage_notice = settings.notices
    assert class_notice.startswith("temporaldb:instanceClass = db.t3.small does not apply to engine aurora")
    assert "db.serverless" in class_notice
    assert storage_notice.startswith("temporaldb:maxAllocatedStorageGb = 500 does not apply to engine aurora")
    assert "VolumeBytesUsed" in storage_notice
    assert all(notice.endswith("remove it from the stack file") for notice in settings.notices)


def test_a_stack_written_for_aurora_hears_nothing(stack_config: Config) -> None:
    assert aurora(stack_config, "dev", auroraMinAcu="0").notices == ()


def test_instance_only_defaults_are_the_declared_ones(project_root: Path) -> None:
    from infra.settings_aurora import INSTANCE_ONLY

    declared = yaml.safe_load((project_root / "Pulumi.yaml").read_text())["config"]
    for key, (default, _) in INSTANCE_ONLY.items():
        assert engine_string(declared[key]["default"]) == default, key


def test_every_aurora_problem_is_reported_together(stack_config: Config) -> None:
    found = problems(
        stack_config("prod"), "prod", engine="aurora", auroraMinAcu="0.25", auroraStorage="gp3", readReplicas="2"
    )
    for key in ("auroraMinAcu", "auroraStorage", "readReplicas", "auroraReaders"):
        assert any(p.startswith(f"temporaldb:{key} = ") for p in found), key
