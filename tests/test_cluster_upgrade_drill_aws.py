"""The upgrade drill on an Aurora stack: against the emulator (moto, over HTTP), and botocore stubs for what it lacks.

moto clones the cluster, adds the writer, makes the parameter groups, answers modify_db_cluster and deletes it
all. What it lacks (describe_db_engine_versions with ValidUpgradeTarget and ServerlessV2FeaturesSupport, orderable
classes, pending maintenance) comes from Stubber answers through the drill's EngineCatalog; AWS's refusals come
from botocore hooks on the emulator's client. SQL goes to real PostgreSQL 16 and 18 servers standing in for the
clone before and after its upgrade (the hook on ModifyDBCluster swaps them).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import boto3
import psycopg
import pytest
from botocore.stub import Stubber

from temporaldb.drills import (
    aws_cluster_upgrade,
    aws_restore,
    aws_upgrade_lifecycle,
    aws_upgrade_options,
    rds,
    rds_cluster,
)
from temporaldb.drills.aws_upgrade_options import Login, UpgradeOptions
from temporaldb.drills.aws_upgrade_plan import UpgradeRefused
from temporaldb.drills.aws_upgrade_targets import EngineCatalog, UpgradeTarget, choose_target
from temporaldb.drills.report import DrillReport
from temporaldb.drills.runbook import EXIT_OK
from tests import drill_fixtures
from tests.drill_fixtures import REGION, SOURCE, Calls, Copy, Hook, Stack, clusters, instances, tagged_with

ENGINE = "aurora-postgresql"
SOURCE_VERSION = "16.4"
TARGET_VERSION = "18.1"  # the highest 18.x among the stubbed valid targets
TARGET_FAMILY = "aurora-postgresql18"
VALID_TARGETS = [
    {"Engine": ENGINE, "EngineVersion": "16.6", "IsMajorVersionUpgrade": False},
    {"Engine": ENGINE, "EngineVersion": "17.4", "IsMajorVersionUpgrade": True},
    {"Engine": ENGINE, "EngineVersion": "18.0", "IsMajorVersionUpgrade": True},
    {"Engine": ENGINE, "EngineVersion": TARGET_VERSION, "IsMajorVersionUpgrade": True},
]
# The cluster's parameters and more: 22 user parameters, two modify calls of at most 20.
CLUSTER_PARAMETERS = [
    ("rds.force_ssl", "1", "immediate"),
    ("log_min_duration_statement", "500", "immediate"),
    *((f"pg_stat_statements.setting_{n:02d}", str(n), "immediate") for n in range(20)),
]
CHANGING_CALLS = (
    "RestoreDBClusterToPointInTime", "CreateDBInstance", "CreateDBClusterParameterGroup",
    "ModifyDBClusterParameterGroup", "CreateDBParameterGroup", "ModifyDBParameterGroup", "ModifyDBCluster",
    "DeleteDBInstance", "DeleteDBCluster", "DeleteDBClusterParameterGroup", "DeleteDBParameterGroup",
)  # fmt: skip

pytestmark = pytest.mark.usefixtures("aws_credentials")


@pytest.fixture
def stack(emulator: str, request: pytest.FixtureRequest) -> Iterator[Stack]:
    """The dev stack on Aurora PostgreSQL 16, as the program would leave it, in an emptied emulator."""
    drill_fixtures.reset(emulator)
    yield drill_fixtures.make_cluster_stack(
        emulator,
        engine_version=SOURCE_VERSION,
        family="aurora-postgresql16",
        logins=("analyst", "migrator"),
        parameters=CLUSTER_PARAMETERS,
        custom_instance_group=getattr(request, "param", True),
    )
    drill_fixtures.reset(emulator)


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Copy]:
    with drill_fixtures.upgrade_servers(tmp_path_factory) as copy:
        yield copy


@pytest.fixture
def copy(servers: Copy) -> Copy:
    servers.point_at(servers.before)
    return servers


def _version(version: str, **more: Any) -> dict[str, Any]:
    return {"DBEngineVersions": [{"Engine": ENGINE, "EngineVersion": version, **more}]}


def _catalog(*, source_arn: str | None, orderable: bool = True, minimum: float = 0.0) -> tuple[EngineCatalog, Stubber]:
    """An EngineCatalog whose client answers from a Stubber, in the order plan() asks (source_arn None: the plan
    stops before asking about maintenance)."""
    client = boto3.client("rds", region_name=REGION)
    stubber = Stubber(client)
    asked = {"Engine": ENGINE, "IncludeAll": True}
    target = _version(
        TARGET_VERSION,
        DBParameterGroupFamily=TARGET_FAMILY,
        ServerlessV2FeaturesSupport={"MinCapacity": minimum, "MaxCapacity": 256.0},
    )
    stubber.add_response(
        "describe_db_engine_versions",
        _version(SOURCE_VERSION, DBParameterGroupFamily="aurora-postgresql16", ValidUpgradeTarget=VALID_TARGETS),
        {**asked, "EngineVersion": SOURCE_VERSION},
    )
    stubber.add_response("describe_db_engine_versions", target, {**asked, "EngineVersion": TARGET_VERSION})
    options = [{"Engine": ENGINE, "EngineVersion": TARGET_VERSION, "DBInstanceClass": "db.serverless"}]
    stubber.add_response(
        "describe_orderable_db_instance_options",
        {"OrderableDBInstanceOptions": options if orderable else []},
        {"Engine": ENGINE, "EngineVersion": TARGET_VERSION, "DBInstanceClass": "db.serverless", "MaxRecords": 20},
    )
    if orderable:
        stubber.add_response("describe_db_engine_versions", target, {**asked, "EngineVersion": TARGET_VERSION})
    if source_arn is not None:
        stubber.add_response(
            "describe_pending_maintenance_actions",
            {"PendingMaintenanceActions": []},
            {"ResourceIdentifier": source_arn},
        )
    stubber.activate()
    return EngineCatalog(client), stubber


def _source_arn(stack: Stack) -> str:
    return str(clusters(stack.rds)[SOURCE]["DBClusterArn"])


def _resources(client: Any) -> dict[str, Any]:
    """Everything in the emulator a drill could leave behind (or take away)."""
    return {
        "clusters": set(clusters(client)),
        "instances": instances(client),
        "cluster_parameter_groups": {
            str(group["DBClusterParameterGroupName"])
            for group in client.describe_db_cluster_parameter_groups()["DBClusterParameterGroups"]
        },
        "parameter_groups": {
            str(group["DBParameterGroupName"]) for group in client.describe_db_parameter_groups()["DBParameterGroups"]
        },
    }


@contextlib.contextmanager
def _watched(client: Any, copy: Copy, *extra: Hook) -> Iterator[Calls]:
    """Capture the calls that change something, and swap the clone's server when the upgrade is answered."""
    calls = Calls()
    hooks = [*calls.recorders(CHANGING_CALLS), ("after-call.rds.ModifyDBCluster", copy.upgrade)]
    with drill_fixtures.hooked(client, [*hooks, *extra]):
        yield calls


def _report(applied: bool = True) -> DrillReport:
    return DrillReport("upgrade", "aws", rds.new_run_id(), applied=applied)


def _run(
    stack: Stack, copy: Copy, report: DrillReport, catalog: EngineCatalog, say: Callable[[str], None] | None = None
) -> list[str]:
    messages: list[str] = []
    options = UpgradeOptions(stack="dev", target_version="18", poll_seconds=0, timeout_seconds=30)
    aws_cluster_upgrade.run(
        stack.rds, options, copy.access(), report, say=say or messages.append, sleep=lambda _: None, catalog=catalog
    )
    return messages


# --- against the emulator -----------------------------------------------------------------------------------


def test_the_dry_run_plans_the_clone_and_its_upgrade_and_changes_nothing(stack: Stack, copy: Copy) -> None:
    before = _resources(stack.rds)
    catalog, stubber = _catalog(source_arn=_source_arn(stack))
    report = _report(applied=False)
    messages = _run(stack, copy, report, catalog)
    stubber.assert_no_pending_responses()
    assert _resources(stack.rds) == before
    assert [stage.name for stage in report.stages] == ["preconditions"]
    clone = f"{SOURCE}-upgrade-{report.run_id}"
    planned = report.planned_calls
    assert planned[0].startswith(
        f"rds.restore_db_cluster_to_point_in_time(DBClusterIdentifier='{clone}', SourceDBClusterIdentifier='{SOURCE}', "
        "RestoreType='copy-on-write', UseLatestRestorableTime=True"
    )
    assert planned[1].startswith(f"rds.create_db_instance(DBInstanceIdentifier='{clone}-writer'")
    assert f"DBParameterGroupFamily='{TARGET_FAMILY}'" in planned[2]
    assert planned[2].startswith(f"rds.create_db_cluster_parameter_group(DBClusterParameterGroupName='{clone}-cluster")
    assert sum(line.startswith("rds.modify_db_cluster_parameter_group(") for line in planned) == 2
    assert any(
        line.startswith(f"rds.create_db_parameter_group(DBParameterGroupName='{clone}-params'") for line in planned
    )
    assert (
        f"rds.modify_db_cluster(DBClusterIdentifier='{clone}', EngineVersion='{TARGET_VERSION}', "
        f"AllowMajorVersionUpgrade=True, DBClusterParameterGroupName='{clone}-cluster-params', "
        f"DBInstanceParameterGroupName='{clone}-params', ApplyImmediately=True)"
    ) in "\n".join(planned)
    assert [line.split("(")[0] for line in planned[-4:]] == [
        "rds.delete_db_instance", "rds.delete_db_cluster", "rds.delete_db_cluster_parameter_group",
        "rds.delete_db_parameter_group",
    ]  # fmt: skip
    assert all(f"would call {line}" in messages for line in planned)
    details = report.details
    assert (details["source_version"], details["target_version"]) == (SOURCE_VERSION, TARGET_VERSION)
    assert (details["cluster_parameter_group_created"], details["instance_parameter_group_created"]) == (True, True)
    assert 'Pulumi.dev.yaml: temporaldb:engineVersion: "18"' in details["must_change_first"][0]


def test_the_script_plans_a_cluster_dry_run_without_reading_any_secret(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`upgrade_drill.py --stack dev --target-version 18` on an Aurora stack, the engine catalog stubbed."""
    catalog, stubber = _catalog(source_arn=_source_arn(stack))
    before = _resources(stack.rds)
    engine = aws_cluster_upgrade
    code, report = drill_fixtures.plan_upgrade_by_script(monkeypatch, engine, catalog, stack.endpoint, tmp_path)
    assert code == EXIT_OK
    stubber.assert_no_pending_responses()
    assert _resources(stack.rds) == before
    out, err = capsys.readouterr()
    assert "dry run, nothing changed" in out
    assert "would call rds.modify_db_cluster(" in err
    assert report["details"]["source_kind"] == "aurora cluster"


def test_apply_upgrades_a_clone_verifies_and_removes_all_it_made(stack: Stack, copy: Copy) -> None:
    before = _resources(stack.rds)
    catalog, stubber = _catalog(source_arn=_source_arn(stack))
    report = _report()
    with _watched(stack.rds, copy) as calls:
        _run(stack, copy, report, catalog)
    stubber.assert_no_pending_responses()
    assert report.verified, report.error
    assert [stage.name for stage in report.stages] == list(aws_cluster_upgrade.STAGES)
    assert all(stage.ok for stage in report.stages)
    clone, writer = f"{SOURCE}-upgrade-{report.run_id}", f"{SOURCE}-upgrade-{report.run_id}-writer"

    (restore,) = calls["RestoreDBClusterToPointInTime"]
    assert (restore["RestoreType"], restore["UseLatestRestorableTime"]) == ("copy-on-write", True)
    assert restore["DBClusterParameterGroupName"] == stack.parameter_group  # the old family's, until the upgrade
    (created,) = calls["CreateDBInstance"]
    assert (created["DBClusterIdentifier"], created["DBInstanceClass"]) == (clone, "db.serverless")
    assert created["DBParameterGroupName"] == stack.instance_parameter_group
    (cluster_group,) = calls["CreateDBClusterParameterGroup"]
    assert cluster_group["DBParameterGroupFamily"] == TARGET_FAMILY
    assert {tag["Key"]: tag["Value"] for tag in cluster_group["Tags"]}[rds.DRILL_TAG] == report.run_id
    chunks = [call["Parameters"] for call in calls["ModifyDBClusterParameterGroup"]]
    assert [len(chunk) for chunk in chunks] == [20, 2]
    assert {(p["ParameterName"], p["ParameterValue"]) for c in chunks for p in c} == {
        (name, value) for name, value, _ in CLUSTER_PARAMETERS
    }
    (instance_group,) = calls["CreateDBParameterGroup"]
    assert instance_group["DBParameterGroupFamily"] == TARGET_FAMILY
    assert calls["ModifyDBCluster"] == [
        {
            "DBClusterIdentifier": clone,
            "EngineVersion": TARGET_VERSION,
            "AllowMajorVersionUpgrade": True,
            "DBClusterParameterGroupName": f"{clone}-cluster-params",
            "DBInstanceParameterGroupName": f"{clone}-params",
            "ApplyImmediately": True,
        }
    ]
    assert calls["DeleteDBInstance"] == [{"DBInstanceIdentifier": writer}]
    assert calls["DeleteDBCluster"] == [
        {"DBClusterIdentifier": clone, "SkipFinalSnapshot": True, "DeleteAutomatedBackups": True}
    ]

    details = report.details
    assert details["server_version_before"].startswith("16.")
    assert details["server_version_after"].startswith("18.")
    assert details["differences"] == []
    assert details["parameters_copied"] == len(CLUSTER_PARAMETERS)
    assert details["safe_to_schedule"] is True
    assert ("databases", "rdsadmin") in {(f["check"], f["database"]) for f in details["findings"]}
    assert report.rto_seconds is not None
    assert report.torn_down == [
        f"rds instance {writer} (deleted)",
        f"rds cluster {clone} (deleted)",
        f"rds cluster parameter group {clone}-cluster-params",
        f"rds parameter group {clone}-params",
    ]
    assert _resources(stack.rds) == before
    assert tagged_with(stack.rds, report.run_id) == []


@pytest.mark.parametrize("stack", [False], indirect=True)
def test_a_writer_on_rds_default_group_gets_no_instance_group(stack: Stack, copy: Copy) -> None:
    """A default DB parameter group follows the upgrade by itself: the drill makes none and names none."""
    catalog, _ = _catalog(source_arn=_source_arn(stack))
    report = _report()
    with _watched(stack.rds, copy) as calls:
        _run(stack, copy, report, catalog)
    assert report.verified, report.error
    assert calls["CreateDBParameterGroup"] == []
    assert "DBParameterGroupName" not in calls["CreateDBInstance"][0]
    assert "DBInstanceParameterGroupName" not in calls["ModifyDBCluster"][0]
    assert report.details["instance_parameter_group"] is None
    assert len(report.torn_down) == 3


@pytest.mark.parametrize("interruption", ["aws-refuses-the-upgrade", "ctrl-c"])
def test_a_failure_mid_drill_still_tears_everything_down(stack: Stack, copy: Copy, interruption: str) -> None:
    before = _resources(stack.rds)
    catalog, _ = _catalog(source_arn=_source_arn(stack))
    report = _report()

    def say(message: str) -> None:
        if interruption == "ctrl-c" and message == "[analyze] started":
            raise KeyboardInterrupt

    message = f"Cannot upgrade {ENGINE} from {SOURCE_VERSION} to {TARGET_VERSION}"
    refusal = drill_fixtures.refuse(
        "ModifyDBCluster", "InvalidParameterCombination", message, lambda _: interruption != "ctrl-c"
    )
    expected = KeyboardInterrupt if interruption == "ctrl-c" else rds.RdsDrillError
    with _watched(stack.rds, copy, *refusal), pytest.raises(expected):
        _run(stack, copy, report, catalog, say)
    assert report.failed_stage == ("analyze" if interruption == "ctrl-c" else "upgrade")
    assert (report.stages[-1].name, report.stages[-1].ok) == ("teardown", True)
    assert len(report.torn_down) == 4
    assert _resources(stack.rds) == before
    assert tagged_with(stack.rds, report.run_id) == []
    assert report.details["safe_to_schedule"] is False
    if interruption != "ctrl-c":
        assert message in (report.error or "")


def test_a_blocker_on_the_clone_refuses_the_upgrade_and_tears_down(stack: Stack, copy: Copy) -> None:
    """The shared pre-checks run on the clone: a reg* column stops the drill before modify_db_cluster."""
    before = _resources(stack.rds)
    catalog, _ = _catalog(source_arn=_source_arn(stack))
    report = _report()
    with psycopg.connect(copy.dsn(copy.before), autocommit=True) as admin:
        admin.execute("create table public.planted (id int primary key, handler regproc)")
    try:
        with _watched(stack.rds, copy) as calls, pytest.raises(UpgradeRefused, match="1 blockers"):
            _run(stack, copy, report, catalog)
    finally:
        with psycopg.connect(copy.dsn(copy.before), autocommit=True) as admin:
            admin.execute("drop table public.planted")
    assert calls["ModifyDBCluster"] == []
    assert report.failed_stage == "prechecks"
    assert report.details["must_change_first"][0].startswith("in nba_temporal, public.planted.handler")
    assert _resources(stack.rds) == before


@pytest.mark.parametrize(
    ("orderable", "minimum", "message", "change"),
    [
        (False, 0.0, r"db\.serverless cannot run aurora-postgresql 18\.1", "an Aurora version whose valid upgrade"),
        (True, 0.5, r"scales down to 0 ACU; aurora-postgresql 18\.1 accepts at least 0\.5", "minimum capacity of at"),
    ],
)
def test_a_target_that_cannot_run_the_writer_is_refused_before_any_change(
    stack: Stack, copy: Copy, orderable: bool, minimum: float, message: str, change: str
) -> None:
    before = _resources(stack.rds)
    catalog, stubber = _catalog(source_arn=None, orderable=orderable, minimum=minimum)
    report = _report()
    with pytest.raises(UpgradeRefused, match=message):
        _run(stack, copy, report, catalog)
    stubber.assert_no_pending_responses()
    assert _resources(stack.rds) == before
    assert [stage.name for stage in report.stages] == ["preconditions"]
    assert change in report.details["must_change_first"][0]


def test_read_cluster_logins_takes_the_master_secret_from_the_cluster(stack: Stack) -> None:
    secrets = boto3.client("secretsmanager", endpoint_url=stack.endpoint)
    logins = aws_upgrade_options.read_logins(stack.rds, secrets, UpgradeOptions(cluster=SOURCE), cluster=True)
    assert (logins.analyst, logins.migrator) == (Login("analyst", "pw-analyst"), Login("migrator", "pw-migrator"))
    managed = clusters(stack.rds)[SOURCE]["MasterUserSecret"]["SecretArn"]
    assert (logins.master.user, logins.master.password) == aws_restore.read_login(secrets, managed)


# --- what moto lacks or gets wrong: botocore stubs of documented answers ------------------------------------


def _stubbed() -> tuple[Any, Stubber]:
    client = boto3.client("rds", region_name=REGION)
    return client, Stubber(client)


def test_a_target_aurora_does_not_offer_is_refused_naming_the_valid_ones() -> None:
    offered = [UpgradeTarget(ENGINE, t["EngineVersion"], t["IsMajorVersionUpgrade"]) for t in VALID_TARGETS]
    assert choose_target(SOURCE_VERSION, offered, "18", ENGINE).version == TARGET_VERSION
    with pytest.raises(rds.PreconditionError, match=r"cannot upgrade aurora-postgresql 16\.4 to 19: .* 17\.4, 18\.0"):
        choose_target(SOURCE_VERSION, offered, "19", ENGINE)


@pytest.mark.parametrize("drop_flag", [False, True])
def test_aws_accepts_the_drills_cluster_upgrade_and_refuses_one_without_the_flag(drop_flag: bool) -> None:
    call = aws_cluster_upgrade.upgrade_call("clone", "18.1", "clone-cluster-params", "clone-params")
    params = {key: value for key, value in call.params.items() if not (drop_flag and key == "AllowMajorVersionUpgrade")}
    client, stubber = _stubbed()
    if drop_flag:
        message = "The AllowMajorVersionUpgrade flag must be present when upgrading to a new major version."
        stubber.add_client_error("modify_db_cluster", "InvalidParameterCombination", message, 400, params)
    else:
        described = {"DBClusterIdentifier": "clone", "Status": "available", "EngineVersion": "16.4"}
        stubber.add_response("modify_db_cluster", {"DBCluster": described}, params)
    with stubber:
        if drop_flag:
            with pytest.raises(rds.RdsDrillError, match="InvalidParameterCombination: The AllowMajorVersionUpgrade"):
                rds.call(client, rds.PlannedCall(call.operation, params))
        else:
            assert rds.call(client, call)["DBCluster"]["Status"] == "available"
    stubber.assert_no_pending_responses()


def _cluster(status: str, version: str, pending: str | None = None) -> dict[str, Any]:
    cluster: dict[str, Any] = {"DBClusterIdentifier": "clone", "Status": status, "EngineVersion": version}
    if pending:
        cluster["PendingModifiedValues"] = {"EngineVersion": pending}
    return {"DBClusters": [cluster]}


@pytest.mark.parametrize("outcome", ["upgraded", "rolled-back"])
def test_the_cluster_upgrade_wait_sees_through_the_moment_aurora_still_says_available(outcome: str) -> None:
    """AWS answers modify_db_cluster while the cluster is still available on the old version; a failed pre-check
    brings it back there. moto upgrades at once, so only stubs show both."""
    client, stubber = _stubbed()
    answers: Sequence[dict[str, Any]] = [
        _cluster("available", "16.4", pending="18.1"),
        _cluster("upgrading", "16.4"),
        _cluster("available", "18.1" if outcome == "upgraded" else "16.4"),
    ]
    for answer in answers:
        stubber.add_response("describe_db_clusters", answer, {"DBClusterIdentifier": "clone"})
    reason = "Database cluster is in a state that cannot be upgraded: PreUpgrade checks failed"
    if outcome == "rolled-back":
        stubber.add_response(
            "describe_events",
            {"Events": [{"SourceIdentifier": "clone", "SourceType": "db-cluster", "Message": reason}]},
            {"SourceIdentifier": "clone", "SourceType": "db-cluster", "Duration": 720},
        )
    watched = aws_upgrade_lifecycle.Upgrading(
        "clone", lambda: rds_cluster.describe_cluster(client, "clone"), "Status", "db-cluster", "clone-writer"
    )
    said: list[str] = []
    limits = rds.Limits(0, 60, lambda _: None)
    wait = partial(aws_upgrade_lifecycle.wait_version, client, watched, accepted=None, limits=limits)
    with stubber:
        if outcome == "upgraded":
            assert wait("18.1", said.append)["EngineVersion"] == "18.1"
        else:
            with pytest.raises(rds.RdsDrillError, match=r"runs 16\.4, not 18\.1.*PreUpgrade.*clone-writer"):
                wait("18.1", said.append)
    stubber.assert_no_pending_responses()
    assert said[:2] == ["clone: available, 16.4 (pending 18.1) after 0 s", "clone: upgrading, 16.4 after 0 s"]
