"""The upgrade drill against an AWS emulator (moto, over HTTP), and against botocore stubs where moto falls short.

moto runs the orchestration: the snapshot, the restore with the stack's groups and tags, the parameter group,
`modify_db_instance`, the teardown. What moto lacks or gets wrong (describe_db_engine_versions, pending maintenance,
orderable classes, AWS's refusals of an upgrade) comes from botocore Stubber answers shaped like the real API,
through the drill's seam, `EngineCatalog`, and through botocore event hooks on the emulator's client.

SQL goes to real PostgreSQL servers standing in for the copy, reached through a socket folder as a tunnel would be:
a PostgreSQL 16 server before the upgrade and, once `modify_db_instance` has answered, a PostgreSQL 18 server with
the same role model and data (the hook swaps the folder's link), so the drill sees the major version change.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import boto3
import psycopg
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from runbooks import upgrade_drill
from temporaldb.drills import (
    aws_restore,
    aws_upgrade,
    aws_upgrade_lifecycle,
    aws_upgrade_options,
    aws_upgrade_plan,
    aws_upgrade_targets,
    rds,
    runbook,
)
from temporaldb.drills.aws_upgrade_options import Login, UpgradeOptions
from temporaldb.drills.aws_upgrade_plan import UpgradeRefused
from temporaldb.drills.aws_upgrade_targets import EngineCatalog, UpgradeTarget
from temporaldb.drills.report import DrillReport
from temporaldb.drills.runbook import EXIT_OK, EXIT_REFUSED
from tests import drill_fixtures
from tests.drill_fixtures import REGION, SOURCE, STACK_TAGS, Calls, Copy, Hook, Stack, instances, make_stack

SOURCE_VERSION = "16.4"
TARGET_VERSION = "18.2"  # the highest 18.x among the stubbed valid targets
TARGET_FAMILY = "postgres18"
VALID_TARGETS = [
    {"Engine": "postgres", "EngineVersion": "16.5", "IsMajorVersionUpgrade": False, "AutoUpgrade": False},
    {"Engine": "postgres", "EngineVersion": "17.5", "IsMajorVersionUpgrade": True, "AutoUpgrade": False},
    {"Engine": "postgres", "EngineVersion": "17.6", "IsMajorVersionUpgrade": True, "AutoUpgrade": False},
    {"Engine": "postgres", "EngineVersion": "18.1", "IsMajorVersionUpgrade": True, "AutoUpgrade": False},
    {"Engine": "postgres", "EngineVersion": TARGET_VERSION, "IsMajorVersionUpgrade": True, "AutoUpgrade": False},
]
PENDING_ACTION = {
    "Action": "system-update",
    "Description": "New Operating System update is available",
    "AutoAppliedAfterDate": dt.datetime(2026, 12, 20, tzinfo=dt.UTC),
}
# The stack's parameters (components/database.py) and more: 25 user parameters, two modify calls of at most 20.
STACK_PARAMETERS = [
    ("rds.force_ssl", "1", "immediate"),
    ("ssl_min_protocol_version", "TLSv1.2", "immediate"),
    ("log_min_duration_statement", "500", "immediate"),
    ("log_statement", "ddl", "immediate"),
    ("shared_preload_libraries", "pg_stat_statements", "pending-reboot"),
    ("track_io_timing", "1", "immediate"),
    ("jit", "0", "immediate"),
    ("random_page_cost", "1.1", "immediate"),
    ("idle_in_transaction_session_timeout", "300000", "immediate"),
    ("log_autovacuum_min_duration", "10000", "immediate"),
    *((f"pg_stat_statements.setting_{n:02d}", str(n), "immediate") for n in range(15)),
]
OBSOLETE_PARAMETER = "pg_stat_statements.setting_07"


pytestmark = pytest.mark.usefixtures("aws_credentials")


@pytest.fixture
def stack(emulator: str) -> Iterator[Stack]:
    """The dev stack on PostgreSQL 16, as Pulumi would leave it, in an emptied emulator."""
    drill_fixtures.reset(emulator)
    made = make_stack(
        emulator,
        engine_version=SOURCE_VERSION,
        family="postgres16",
        logins=("analyst", "migrator"),
        parameters=STACK_PARAMETERS,
        managed_master_password=True,
    )
    yield made
    drill_fixtures.reset(emulator)


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Copy]:
    with drill_fixtures.upgrade_servers(tmp_path_factory) as copy:
        yield copy


@pytest.fixture
def copy(servers: Copy) -> Copy:
    servers.point_at(servers.before)
    return servers


def _catalog(
    *,
    source_arn: str | None,
    orderable: bool = True,
    targets: Sequence[dict[str, Any]] = VALID_TARGETS,
) -> tuple[EngineCatalog, Stubber]:
    """An EngineCatalog whose client answers from a Stubber, in the order plan() asks (None: no maintenance ask)."""
    client = boto3.client("rds", region_name=REGION)
    stubber = Stubber(client)
    stubber.add_response(
        "describe_db_engine_versions",
        {
            "DBEngineVersions": [
                {
                    "Engine": "postgres",
                    "EngineVersion": SOURCE_VERSION,
                    "DBParameterGroupFamily": "postgres16",
                    "ValidUpgradeTarget": list(targets),
                }
            ]
        },
        {"Engine": "postgres", "EngineVersion": SOURCE_VERSION, "IncludeAll": True},
    )
    stubber.add_response(
        "describe_db_engine_versions",
        {
            "DBEngineVersions": [
                {"Engine": "postgres", "EngineVersion": TARGET_VERSION, "DBParameterGroupFamily": TARGET_FAMILY}
            ]
        },
        {"Engine": "postgres", "EngineVersion": TARGET_VERSION, "IncludeAll": True},
    )
    stubber.add_response(
        "describe_orderable_db_instance_options",
        {
            "OrderableDBInstanceOptions": (
                [{"Engine": "postgres", "EngineVersion": TARGET_VERSION, "DBInstanceClass": "db.t3.micro"}]
                if orderable
                else []
            )
        },
        {"Engine": "postgres", "EngineVersion": TARGET_VERSION, "DBInstanceClass": "db.t3.micro", "MaxRecords": 20},
    )
    if source_arn is not None:
        stubber.add_response(
            "describe_pending_maintenance_actions",
            {
                "PendingMaintenanceActions": [
                    {"ResourceIdentifier": source_arn, "PendingMaintenanceActionDetails": [PENDING_ACTION]}
                ]
            },
            {"ResourceIdentifier": source_arn},
        )
    stubber.activate()
    return EngineCatalog(client), stubber


def _source_arn(stack: Stack) -> str:
    return str(stack.rds.describe_db_instances(DBInstanceIdentifier=SOURCE)["DBInstances"][0]["DBInstanceArn"])


@contextlib.contextmanager
def _watched(client: Any, copy: Copy, *extra: Hook) -> Iterator[Calls]:
    """Capture the calls that change something, and swap the copy's server when the upgrade is answered."""
    calls = Calls()
    operations = (
        "CreateDBSnapshot", "RestoreDBInstanceFromDBSnapshot", "CreateDBParameterGroup", "ModifyDBParameterGroup",
        "ModifyDBInstance", "DeleteDBInstance", "DeleteDBSnapshot", "DeleteDBParameterGroup",
    )  # fmt: skip
    hooks = [*calls.recorders(operations), ("after-call.rds.ModifyDBInstance", copy.upgrade)]
    with drill_fixtures.hooked(client, [*hooks, *extra]):
        yield calls


_refuse = drill_fixtures.refuse


def _drill_resources(client: Any) -> dict[str, set[str]]:
    """Everything in the emulator a drill could leave behind (or take away)."""
    return {
        "instances": set(instances(client)),
        "snapshots": {
            str(s["DBSnapshotIdentifier"]) for s in client.describe_db_snapshots(SnapshotType="manual")["DBSnapshots"]
        },
        "parameter_groups": {
            str(g["DBParameterGroupName"]) for g in client.describe_db_parameter_groups()["DBParameterGroups"]
        },
    }


def _run(
    stack: Stack, copy: Copy, report: DrillReport, catalog: EngineCatalog, say: Callable[[str], None] | None = None
) -> list[str]:
    messages: list[str] = []
    options = UpgradeOptions(stack="dev", target_version="18", poll_seconds=0, timeout_seconds=30)
    aws_upgrade.run(
        stack.rds, options, copy.access(), report, say=say or messages.append, sleep=lambda _: None, catalog=catalog
    )
    return messages


def _compared(facts: dict[str, Any]) -> dict[str, Any]:
    """Facts as compared: without the moment they were read."""
    return {key: value for key, value in facts.items() if key != "taken_at"}


def _report(applied: bool = True) -> DrillReport:
    return DrillReport("upgrade", "aws", rds.new_run_id(), applied=applied)


# --- against the emulator -----------------------------------------------------------------------------------


def test_the_dry_run_plans_and_changes_nothing(stack: Stack, copy: Copy) -> None:
    before = _drill_resources(stack.rds)
    source_before = instances(stack.rds)[SOURCE]
    catalog, stubber = _catalog(source_arn=_source_arn(stack))
    report = _report(applied=False)
    messages = _run(stack, copy, report, catalog)
    stubber.assert_no_pending_responses()
    assert _drill_resources(stack.rds) == before
    assert instances(stack.rds)[SOURCE] == source_before
    assert [stage.name for stage in report.stages] == ["preconditions"]
    copy_id = f"{SOURCE}-upgrade-{report.run_id}"
    planned = "\n".join(report.planned_calls)
    assert f"rds.create_db_snapshot(DBSnapshotIdentifier='{copy_id}', DBInstanceIdentifier='{SOURCE}'" in planned
    assert f"rds.restore_db_instance_from_db_snapshot(DBInstanceIdentifier='{copy_id}'" in planned
    assert f"DBParameterGroupName='{stack.parameter_group}'" in planned  # the copy starts with the stack's group
    assert f"DBParameterGroupFamily='{TARGET_FAMILY}'" in planned
    assert planned.count("rds.modify_db_parameter_group(") == 2
    assert (
        f"rds.modify_db_instance(DBInstanceIdentifier='{copy_id}', EngineVersion='{TARGET_VERSION}', "
        f"AllowMajorVersionUpgrade=True, DBParameterGroupName='{copy_id}-params', ApplyImmediately=True)"
    ) in planned
    assert all(f"would call {line}" in messages for line in report.planned_calls)
    details = report.details
    assert (details["source_version"], details["target_version"]) == (SOURCE_VERSION, TARGET_VERSION)
    assert details["parameter_group_created"] is True
    assert details["pending_maintenance"] == [
        "system-update: New Operating System update is available (auto-applied after 2026-12-20)"
    ]
    assert [f["check"] for f in details["findings"]] == ["pending_maintenance"]  # reported, not blocking
    assert details["safe_to_schedule"] is False  # nothing verified yet
    assert 'Pulumi.dev.yaml: temporaldb:engineVersion: "18"' in details["must_change_first"][0]


def test_the_script_plans_a_dry_run_without_reading_any_secret(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`upgrade_drill.py --stack dev --target-version 18` end to end, the engine catalog stubbed (moto lacks it)."""
    catalog, stubber = _catalog(source_arn=_source_arn(stack))
    before = _drill_resources(stack.rds)
    code, report = drill_fixtures.plan_upgrade_by_script(monkeypatch, aws_upgrade, catalog, stack.endpoint, tmp_path)
    assert code == EXIT_OK
    stubber.assert_no_pending_responses()
    assert _drill_resources(stack.rds) == before
    out, err = capsys.readouterr()
    assert "dry run, nothing changed" in out
    assert "would call rds.modify_db_instance(" in err
    assert [stage["name"] for stage in report["stages"]] == ["preconditions"]  # no read_logins stage
    assert report["details"]["target_version"] == TARGET_VERSION


def _check_the_changes(calls: Calls, stack: Stack, run_id: str) -> None:
    """The snapshot, the copy, the group and the upgrade, each with the stack's settings and this run's tag."""
    copy_id = f"{SOURCE}-upgrade-{run_id}"
    group = f"{copy_id}-params"

    (snapshot,) = calls["CreateDBSnapshot"]
    assert snapshot["DBInstanceIdentifier"] == SOURCE
    (restore,) = calls["RestoreDBInstanceFromDBSnapshot"]
    assert restore["DBSnapshotIdentifier"] == snapshot["DBSnapshotIdentifier"]
    assert restore["DBSubnetGroupName"] == stack.subnet_group
    assert restore["VpcSecurityGroupIds"] == [stack.security_group]
    assert restore["DBParameterGroupName"] == stack.parameter_group
    for tagged in (snapshot, restore):
        tags = {tag["Key"]: tag["Value"] for tag in tagged["Tags"]}
        assert tags[rds.DRILL_TAG] == run_id
        assert tags["stack"] == "temporaldb-dev"

    (created,) = calls["CreateDBParameterGroup"]
    assert (created["DBParameterGroupName"], created["DBParameterGroupFamily"]) == (group, TARGET_FAMILY)
    assert {tag["Key"]: tag["Value"] for tag in created["Tags"]}[rds.DRILL_TAG] == run_id
    chunks = [call["Parameters"] for call in calls["ModifyDBParameterGroup"]]
    assert [len(chunk) for chunk in chunks] == [20, 5]
    copied = {(p["ParameterName"], p["ParameterValue"], p["ApplyMethod"]) for chunk in chunks for p in chunk}
    assert copied == set(STACK_PARAMETERS)

    (upgrade,) = calls["ModifyDBInstance"]
    assert upgrade == {
        "DBInstanceIdentifier": copy_id,
        "EngineVersion": TARGET_VERSION,
        "AllowMajorVersionUpgrade": True,
        "DBParameterGroupName": group,
        "ApplyImmediately": True,
    }


def test_apply_upgrades_a_copy_verifies_and_removes_all_it_made(stack: Stack, copy: Copy) -> None:
    before = _drill_resources(stack.rds)
    source_before = instances(stack.rds)[SOURCE]
    catalog, stubber = _catalog(source_arn=_source_arn(stack))
    report = _report()
    with _watched(stack.rds, copy) as calls:
        messages = _run(stack, copy, report, catalog)
    stubber.assert_no_pending_responses()
    assert report.verified, report.error
    assert [stage.name for stage in report.stages] == list(aws_upgrade.STAGES)
    assert all(stage.ok and stage.started_at and stage.ended_at for stage in report.stages)
    copy_id = f"{SOURCE}-upgrade-{report.run_id}"
    group = f"{copy_id}-params"
    _check_the_changes(calls, stack, report.run_id)
    details = report.details
    assert details["server_version_before"].startswith("16.")
    assert details["server_version_after"].startswith("18.")
    assert _compared(details["facts_after"]) == _compared(details["facts_before"])
    assert details["facts_before"]["row_counts"]["nba.play_by_play"] > 0
    assert details["differences"] == []
    assert details["parameters_copied"] == len(STACK_PARAMETERS)
    assert details["safe_to_schedule"] is True
    assert details["must_change_first"] == [
        'Pulumi.dev.yaml: temporaldb:engineVersion: "18" (RDS then installs its default 18.x; the drill rehearsed '
        f"{TARGET_VERSION})",
        "Pulumi.dev.yaml: temporaldb:allowMajorVersionUpgrade: true for that one update (it is applied at once, "
        "not in the maintenance window); set it back to false afterwards",
    ]
    warnings = {(f["check"], f["database"]) for f in details["findings"]}
    assert ("databases", "rdsadmin") in warnings  # the master user may not enter it, AWS's pg_upgrade may
    assert all(f["severity"] == "warning" for f in details["findings"])
    assert report.rto_seconds is not None
    assert report.rto_seconds > 0
    assert report.rpo_seconds is None
    assert any(line.startswith("ANALYZE in every database") for line in details["after_upgrade"])
    assert "ANALYZE of " in next(s.detail for s in report.stages if s.name == "analyze")
    assert any("snapshot" in message and "available" in message for message in messages)

    assert report.torn_down == [f"rds instance {copy_id}", f"rds snapshot {copy_id}", f"rds parameter group {group}"]
    assert _drill_resources(stack.rds) == before
    assert instances(stack.rds)[SOURCE] == source_before


def test_the_stacks_own_group_of_the_target_family_is_used_and_kept(stack: Stack, copy: Copy) -> None:
    client = stack.rds
    other_stack = [{"Key": "project", "Value": "temporaldb"}, {"Key": "stack", "Value": "temporaldb-prod"}]
    client.create_db_parameter_group(  # first by name, but another stack's
        DBParameterGroupName="a-prod-postgres18",
        DBParameterGroupFamily=TARGET_FAMILY,
        Description="p",
        Tags=other_stack,
    )
    client.create_db_parameter_group(
        DBParameterGroupName="temporaldb-dev-postgres18-1", DBParameterGroupFamily=TARGET_FAMILY, Description="d",
        Tags=STACK_TAGS,
    )  # fmt: skip
    before = _drill_resources(client)
    catalog, _ = _catalog(source_arn=_source_arn(stack))
    report = _report()
    with _watched(client, copy) as calls:
        _run(stack, copy, report, catalog)
    assert report.verified, report.error
    assert calls["CreateDBParameterGroup"] == []
    assert calls["ModifyDBParameterGroup"] == []
    assert calls["ModifyDBInstance"][0]["DBParameterGroupName"] == "temporaldb-dev-postgres18-1"
    assert report.details["parameter_group_created"] is False
    assert calls["DeleteDBParameterGroup"] == []
    assert len(report.torn_down) == 2
    assert _drill_resources(client) == before  # the stack's groups are still there


def test_a_parameter_the_target_family_refuses_is_a_finding_not_a_crash(stack: Stack, copy: Copy) -> None:
    """AWS refuses a whole modify_db_parameter_group call for one unknown name: the drill finds which one."""

    def names_obsolete(params: dict[str, Any]) -> bool:
        return any(p["ParameterName"] == OBSOLETE_PARAMETER for p in params["Parameters"])

    refusal = _refuse(
        "ModifyDBParameterGroup", "InvalidParameterValue", f"Could not find parameter with name: {OBSOLETE_PARAMETER}",
        names_obsolete,
    )  # fmt: skip
    catalog, _ = _catalog(source_arn=_source_arn(stack))
    report = _report()
    with _watched(stack.rds, copy, *refusal) as calls:
        _run(stack, copy, report, catalog)
    assert report.verified, report.error  # the copy was still upgraded, without that parameter
    details = report.details
    assert details["parameters_copied"] == len(STACK_PARAMETERS) - 1
    (rejected,) = [f for f in details["findings"] if f["check"] == "parameter_group"]
    assert rejected["severity"] == "blocker"
    assert OBSOLETE_PARAMETER in rejected["subject"]
    assert "Could not find parameter" in rejected["subject"]
    assert details["must_change_first"][0] == rejected["remedy"]
    assert "components/database.py" in rejected["remedy"]
    assert details["safe_to_schedule"] is False
    # One call of 20 refused, then one at a time; the first chunk's other 19 and the last 5 were set.
    assert [len(call["Parameters"]) for call in calls["ModifyDBParameterGroup"]] == [20, *[1] * 20, 5]


@pytest.mark.parametrize("interruption", ["aws-refuses-the-upgrade", "ctrl-c"])
def test_a_failure_mid_drill_still_tears_everything_down(stack: Stack, copy: Copy, interruption: str) -> None:
    before = _drill_resources(stack.rds)
    source_before = instances(stack.rds)[SOURCE]
    catalog, _ = _catalog(source_arn=_source_arn(stack))
    report = _report()
    messages: list[str] = []

    def say(message: str) -> None:
        messages.append(message)
        if interruption == "ctrl-c" and message == "[analyze] started":
            raise KeyboardInterrupt

    refusal = _refuse(
        "ModifyDBInstance",
        "InvalidParameterCombination",
        f"Cannot upgrade postgres from {SOURCE_VERSION} to {TARGET_VERSION}",
        lambda _: interruption == "aws-refuses-the-upgrade",
    )
    expected = KeyboardInterrupt if interruption == "ctrl-c" else rds.RdsDrillError
    with _watched(stack.rds, copy, *refusal), pytest.raises(expected):
        _run(stack, copy, report, catalog, say)
    assert report.failed_stage == ("analyze" if interruption == "ctrl-c" else "upgrade")
    assert not report.verified
    assert report.stages[-1].name == "teardown"
    assert report.stages[-1].ok is True
    assert len(report.torn_down) == 3
    assert _drill_resources(stack.rds) == before
    assert instances(stack.rds)[SOURCE] == source_before
    assert report.details["safe_to_schedule"] is False
    assert any(
        change.startswith(f"fix what failed at {report.failed_stage}") for change in report.details["must_change_first"]
    )
    if interruption != "ctrl-c":
        assert f"Cannot upgrade postgres from {SOURCE_VERSION} to {TARGET_VERSION}" in (report.error or "")


def test_a_blocker_on_the_copy_refuses_the_upgrade_and_tears_down(stack: Stack, copy: Copy) -> None:
    before = _drill_resources(stack.rds)
    catalog, _ = _catalog(source_arn=_source_arn(stack))
    report = _report()
    with psycopg.connect(copy.dsn(copy.before), autocommit=True) as admin:
        admin.execute("create table public.planted (id int primary key, handler regproc)")
    try:
        with _watched(stack.rds, copy) as calls, pytest.raises(UpgradeRefused, match="1 blockers") as refused:
            _run(stack, copy, report, catalog)
    finally:
        with psycopg.connect(copy.dsn(copy.before), autocommit=True) as admin:
            admin.execute("drop table public.planted")
    assert isinstance(refused.value, rds.PreconditionError)
    assert report.changed  # the copy existed: the runbook exits 5, not 4
    assert calls["ModifyDBInstance"] == []  # never upgraded
    assert report.failed_stage == "prechecks"
    assert [stage.name for stage in report.stages][-2:] == ["prechecks", "teardown"]
    details = report.details
    (blocker,) = [f for f in details["findings"] if f["severity"] == "blocker"]
    assert (blocker["check"], blocker["database"]) == ("reg_types", "nba_temporal")
    assert blocker["subject"] == "column public.planted.handler of type regproc"
    assert details["must_change_first"][0] == blocker["remedy"] == refused.value.must_change_first[0]
    assert not any(change.startswith("fix what failed") for change in details["must_change_first"])
    assert details["safe_to_schedule"] is False
    assert len(report.torn_down) == 3
    assert _drill_resources(stack.rds) == before


def test_a_class_the_target_cannot_run_is_refused_before_any_change(stack: Stack, copy: Copy) -> None:
    before = _drill_resources(stack.rds)
    catalog, stubber = _catalog(source_arn=None, orderable=False)
    report = _report()
    with pytest.raises(UpgradeRefused, match=r"db\.t3\.micro cannot run postgres 18\.2"):
        _run(stack, copy, report, catalog)
    stubber.assert_no_pending_responses()
    assert _drill_resources(stack.rds) == before
    assert [stage.name for stage in report.stages] == ["preconditions"]
    changes = report.details["must_change_first"]
    assert changes[0].startswith("Pulumi.dev.yaml: temporaldb:instanceClass: a class that runs both postgres 16.4")
    assert not report.details["safe_to_schedule"]


@pytest.mark.parametrize("stop", ["unexpected-error", "ctrl-c"])
def test_a_drill_stopped_before_the_snapshot_exits_4_and_claims_no_change(
    stack: Stack,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    stop: str,
) -> None:
    """A bug (or Ctrl-C) while the preconditions are checked, logins read: nothing was snapshotted or restored."""
    catalog, _ = _catalog(source_arn=_source_arn(stack))
    monkeypatch.setattr(aws_upgrade, "EngineCatalog", lambda _client: catalog)
    if stop == "ctrl-c":

        def say(message: str) -> None:
            if message == "[preconditions] started":
                raise KeyboardInterrupt

        monkeypatch.setattr(runbook, "say", say)
    else:

        def crash(*_: object, **__: object) -> None:
            raise RuntimeError("choosing the target crashed")

        monkeypatch.setattr(aws_upgrade_plan, "choose_target", crash)  # where plan() looks it up
    before = _drill_resources(stack.rds)
    path = tmp_path / "u.json"
    argv = ["--stack", "dev", "--target-version", "18", "--endpoint-url", stack.endpoint, "--region", REGION]
    assert upgrade_drill.main([*argv, "--apply", "--report", str(path)]) == EXIT_REFUSED
    assert _drill_resources(stack.rds) == before
    report = json.loads(path.read_text())
    assert (report["failed_stage"], report["changed"], report["torn_down"]) == ("preconditions", False, [])
    assert report["error"] == ("interrupted (Ctrl-C)" if stop == "ctrl-c" else "choosing the target crashed")
    assert [(stage["name"], stage["ok"]) for stage in report["stages"]] == [
        ("read_logins", True),
        ("preconditions", False),
    ]
    assert "FAILED at preconditions before any change (nothing to tear down)" in capsys.readouterr().out


def test_read_logins_finds_the_stacks_secrets_and_the_masters(stack: Stack) -> None:
    secrets = boto3.client("secretsmanager", endpoint_url=stack.endpoint)
    logins = aws_upgrade_options.read_logins(stack.rds, secrets, UpgradeOptions(instance=SOURCE))  # stack from its tag
    assert logins.analyst == Login("analyst", "pw-analyst")
    assert logins.migrator == Login("migrator", "pw-migrator")
    managed = stack.rds.describe_db_instances(DBInstanceIdentifier=SOURCE)["DBInstances"][0]["MasterUserSecret"]
    assert (logins.master.user, logins.master.password) == aws_restore.read_login(secrets, managed["SecretArn"])
    explicit = aws_upgrade_options.read_logins(
        stack.rds, secrets, UpgradeOptions(stack="dev"), master_secret_id=stack.secrets["analyst"]
    )
    assert explicit.master == Login("analyst", "pw-analyst")


def test_teardown_deletes_no_snapshot_or_group_without_this_runs_tag(stack: Stack) -> None:
    client = stack.rds
    client.create_db_snapshot(DBSnapshotIdentifier="by-hand", DBInstanceIdentifier=SOURCE, Tags=STACK_TAGS)
    with pytest.raises(rds.RdsDrillError, match="refusing to delete snapshot by-hand"):
        aws_upgrade_lifecycle.delete_drill_snapshot(client, "by-hand", "this-run")
    with pytest.raises(rds.RdsDrillError, match=f"refusing to delete parameter group {stack.parameter_group}"):
        aws_upgrade_lifecycle.delete_drill_parameter_group(client, stack.parameter_group, "this-run")
    assert {"by-hand"} <= _drill_resources(client)["snapshots"]
    assert stack.parameter_group in _drill_resources(client)["parameter_groups"]
    assert aws_upgrade_lifecycle.delete_drill_snapshot(client, "never-made", "this-run") is False
    assert aws_upgrade_lifecycle.delete_drill_parameter_group(client, "never-made", "this-run") is False


# --- what moto lacks or gets wrong: botocore stubs of documented answers ------------------------------------


def _targets(*versions: tuple[str, bool]) -> list[UpgradeTarget]:
    return [UpgradeTarget("postgres", version, major) for version, major in versions]


OFFERED = _targets(("16.13", False), ("17.7", True), ("17.8", True), ("18.1", True))


@pytest.mark.parametrize(("requested", "chosen"), [("17", "17.8"), ("18", "18.1"), ("17.7", "17.7"), (" 18 ", "18.1")])
def test_the_target_is_the_requested_version_or_the_highest_of_its_major(requested: str, chosen: str) -> None:
    assert aws_upgrade_targets.choose_target("16.12", OFFERED, requested.strip()).version == chosen


@pytest.mark.parametrize(
    ("requested", "message"),
    [
        ("17.6", r"cannot upgrade postgres 16\.12 to 17\.6: its valid major-version targets are 17\.7, 17\.8, 18\.1"),
        ("19", r"cannot upgrade postgres 16\.12 to 19"),
        ("16", r"16 is not a major-version upgrade of 16\.12"),
        ("16.13", r"not a major-version upgrade"),
        ("latest", r"not a version such as 18"),
    ],
)
def test_a_target_rds_does_not_offer_is_refused_naming_the_valid_ones(requested: str, message: str) -> None:
    with pytest.raises(rds.PreconditionError, match=message):
        aws_upgrade_targets.choose_target("16.12", OFFERED, requested)


def _stubbed() -> tuple[Any, Stubber]:
    client = boto3.client("rds", region_name=REGION)
    return client, Stubber(client)


def test_the_catalog_reads_the_real_apis_answers() -> None:
    client, stubber = _stubbed()
    stubber.add_response(
        "describe_db_engine_versions",
        {"DBEngineVersions": [{"Engine": "postgres", "EngineVersion": "16.13", "ValidUpgradeTarget": VALID_TARGETS}]},
        {"Engine": "postgres", "EngineVersion": "16.13", "IncludeAll": True},
    )
    stubber.add_response(
        "describe_db_engine_versions",
        {"DBEngineVersions": [{"Engine": "postgres", "EngineVersion": "17.6", "DBParameterGroupFamily": "postgres17"}]},
        {"Engine": "postgres", "EngineVersion": "17.6", "IncludeAll": True},
    )
    stubber.add_response(
        "describe_pending_maintenance_actions", {"PendingMaintenanceActions": []}, {"ResourceIdentifier": "arn:x"}
    )
    stubber.add_client_error(
        "describe_db_engine_versions",
        service_error_code="InvalidParameterValue",
        service_message="Invalid engine version",
        http_status_code=400,
    )
    stubber.add_client_error(
        "describe_db_engine_versions",
        service_error_code="AccessDenied",
        service_message="User is not authorized to perform: rds:DescribeDBEngineVersions",
        http_status_code=403,
    )
    catalog = EngineCatalog(client)
    with stubber:
        targets = catalog.upgrade_targets("postgres", "16.13")
        assert [(t.version, t.major_upgrade) for t in targets][:2] == [("16.5", False), ("17.5", True)]
        assert catalog.parameter_group_family("postgres", "17.6") == "postgres17"
        assert catalog.pending_maintenance("arn:x") == ()
        with pytest.raises(rds.PreconditionError, match="describe_db_engine_versions refused: InvalidParameterValue"):
            catalog.upgrade_targets("postgres", "16.13")
        # Credentials are not a refusal: the error goes through for the runbook to map to exit 3.
        with pytest.raises(ClientError, match="AccessDenied"):
            catalog.upgrade_targets("postgres", "16.13")
    stubber.assert_no_pending_responses()


@pytest.mark.parametrize(
    ("drop_flag", "outcome"),
    [
        (False, None),
        (True, "InvalidParameterCombination: The AllowMajorVersionUpgrade flag must be present when upgrading to a "
         "new major version."),
    ],
)  # fmt: skip
def test_aws_accepts_the_drills_upgrade_call_and_refuses_one_without_the_flag(
    drop_flag: bool, outcome: str | None
) -> None:
    call = aws_upgrade_plan.upgrade_call("copy", "17.6", "copy-params")
    documented = {  # rds-operations.md 6.3
        "DBInstanceIdentifier": "copy",
        "EngineVersion": "17.6",
        "AllowMajorVersionUpgrade": True,
        "DBParameterGroupName": "copy-params",
        "ApplyImmediately": True,
    }
    assert call.params == documented
    params = {key: value for key, value in documented.items() if not (drop_flag and key == "AllowMajorVersionUpgrade")}
    client, stubber = _stubbed()
    if outcome is None:
        described = {"DBInstanceIdentifier": "copy", "DBInstanceStatus": "upgrading", "EngineVersion": "16.13"}
        stubber.add_response("modify_db_instance", {"DBInstance": described}, params)
    else:
        code, message = outcome.split(": ", 1)
        stubber.add_client_error("modify_db_instance", code, message, 400, expected_params=params)
    with stubber:
        if outcome is None:
            assert rds.call(client, call)["DBInstance"]["DBInstanceStatus"] == "upgrading"
        else:
            with pytest.raises(rds.RdsDrillError, match=outcome.replace(".", r"\.")):
                rds.call(client, rds.PlannedCall(call.operation, params))
    stubber.assert_no_pending_responses()


def _copy_described(status: str, version: str, pending: str | None = None) -> dict[str, Any]:
    instance: dict[str, Any] = {"DBInstanceIdentifier": "copy", "DBInstanceStatus": status, "EngineVersion": version}
    if pending:
        instance["PendingModifiedValues"] = {"EngineVersion": pending}
    return {"DBInstances": [instance]}


@pytest.mark.parametrize("outcome", ["upgraded", "rolled-back"])
def test_the_upgrade_wait_sees_through_the_moment_rds_still_says_available(outcome: str) -> None:
    """RDS answers the modify while the copy is still available on the old version; a failed pre-check brings it
    back there. moto upgrades at once, so only stubs show both."""
    client, stubber = _stubbed()
    answers = [
        _copy_described("available", "16.13", pending="18.1"),
        _copy_described("upgrading", "16.13"),
        _copy_described("available", "18.1" if outcome == "upgraded" else "16.13"),
    ]
    for answer in answers:
        stubber.add_response("describe_db_instances", answer, {"DBInstanceIdentifier": "copy"})
    reason = "Database instance is in a state that cannot be upgraded: PreUpgrade checks failed: reg* data types"
    if outcome == "rolled-back":
        stubber.add_response(
            "describe_events",
            {"Events": [{"SourceIdentifier": "copy", "SourceType": "db-instance", "Message": reason}]},
            {"SourceIdentifier": "copy", "SourceType": "db-instance", "Duration": 720},
        )
    said: list[str] = []

    def wait() -> dict[str, Any]:
        return aws_upgrade_lifecycle.wait_upgraded(
            client, "copy", "18.1", said.append, poll_seconds=0, timeout_seconds=60, sleep=lambda _: None
        )

    with stubber:
        if outcome == "upgraded":
            assert wait()["EngineVersion"] == "18.1"
        else:
            with pytest.raises(rds.RdsDrillError, match=r"runs 16\.13, not 18\.1: RDS did not upgrade it.*PreUpgrade"):
                wait()
    stubber.assert_no_pending_responses()
    assert said[:2] == ["copy: available, 16.13 (pending 18.1) after 0 s", "copy: upgrading, 16.13 after 0 s"]
