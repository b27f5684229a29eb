"""The restore drill on an Aurora stack: against the emulator (moto, over HTTP), and botocore stubs where moto is lax.

The stack is an Aurora PostgreSQL Serverless v2 cluster with a writer (and a reader), tagged as Pulumi tags it.
moto copies and clones clusters and adds instances to them; SQL goes to two real PostgreSQL servers holding the
same league, standing in for the source cluster's endpoint and the copy's (`--db-host`, `--copy-db-host`).
What moto does not do as AWS does (the restorable window, a cluster that refuses deletion while it is busy, a
copy stuck in a terminal state) comes from Stubber answers shaped like the real API.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import psycopg
import pytest
from botocore.stub import Stubber
from psycopg.conninfo import make_conninfo

from runbooks import restore_drill
from temporaldb.drills import aws_cluster_restore, aws_restore, rds, rds_cluster
from temporaldb.drills.runbook import EXIT_FAILED, EXIT_OK, EXIT_REFUSED
from tests import drill_fixtures
from tests.drill_fixtures import (
    REGION,
    SCALING,
    SOURCE,
    STACK_TAGS,
    Calls,
    Hook,
    Servers,
    Stack,
    clusters,
    instances,
    tagged_with,
)

WRITER = f"{SOURCE}-writer"
CHANGING_CALLS = (
    "RestoreDBClusterToPointInTime", "CreateDBInstance", "DeleteDBInstance", "DeleteDBCluster",
)  # fmt: skip

pytestmark = pytest.mark.usefixtures("aws_credentials")


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    with drill_fixtures.source_and_copy(tmp_path_factory) as servers:
        yield servers


@pytest.fixture
def stack(emulator: str) -> Iterator[Stack]:
    """The dev stack on Aurora (a writer and one reader), in an emptied emulator."""
    drill_fixtures.reset(emulator)
    yield drill_fixtures.make_cluster_stack(emulator, readers=1)
    drill_fixtures.reset(emulator)


def _state(client: Any) -> dict[str, Any]:
    return {"clusters": clusters(client), "instances": instances(client)}


def _calls() -> tuple[Calls, list[Hook]]:
    """Hooks that record the changing calls' parameters (the calls still reach moto)."""
    calls = Calls()
    return calls, calls.recorders(CHANGING_CALLS)


def _run_script(argv: list[str], *hooks: Hook) -> int:
    return drill_fixtures.main_with_hooks(restore_drill.main, argv, *hooks)


def test_the_dry_run_plans_the_cluster_copy_and_changes_nothing(
    stack: Stack, database: Servers, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _state(stack.rds)
    path = tmp_path / "r.json"
    assert restore_drill.main(drill_fixtures.restore_args(stack.endpoint, database, "--report", str(path))) == EXIT_OK
    assert _state(stack.rds) == before
    out, err = capsys.readouterr()
    assert "dry run, nothing changed" in out
    report = json.loads(path.read_text())
    copy, writer = report["details"]["drill_cluster"], report["details"]["drill_instance"]
    assert (copy, writer) == (f"{SOURCE}-restore-{report['run_id']}", f"{SOURCE}-restore-{report['run_id']}-writer")
    restore, add_writer, delete_writer, delete_cluster = report["planned_calls"]
    assert restore.startswith(
        f"rds.restore_db_cluster_to_point_in_time(DBClusterIdentifier='{copy}', SourceDBClusterIdentifier='{SOURCE}', "
        "RestoreType='full-copy', UseLatestRestorableTime=True, "
        f"DBSubnetGroupName='{stack.subnet_group}', VpcSecurityGroupIds=['{stack.security_group}'], "
        f"DBClusterParameterGroupName='{stack.parameter_group}', Port=5432, EnableIAMDatabaseAuthentication=True"
    )
    assert f"ServerlessV2ScalingConfiguration={SCALING!r}" in restore
    assert add_writer.startswith(
        f"rds.create_db_instance(DBInstanceIdentifier='{writer}', DBClusterIdentifier='{copy}', "
        "Engine='aurora-postgresql', DBInstanceClass='db.serverless', PubliclyAccessible=False"
    )
    assert f"DBParameterGroupName='{stack.instance_parameter_group}'" in add_writer
    assert delete_writer.startswith(f"rds.delete_db_instance(DBInstanceIdentifier='{writer}')")
    assert delete_cluster.startswith(
        f"rds.delete_db_cluster(DBClusterIdentifier='{copy}', SkipFinalSnapshot=True, DeleteAutomatedBackups=True)"
    )
    assert all(f"would call {line}" in err for line in report["planned_calls"])
    assert [stage["name"] for stage in report["stages"]] == ["preconditions"]
    assert report["details"]["drill_address"].startswith(f"{copy}.cluster-")


def test_apply_copies_the_cluster_adds_a_writer_verifies_and_deletes_only_its_copy(
    stack: Stack, database: Servers, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    client = stack.rds
    client.create_db_cluster(  # a bystander: another run's drill copy, tagged with the stack too
        DBClusterIdentifier="bystander",
        Engine="aurora-postgresql",
        EngineVersion="17.4",
        MasterUsername="x",
        MasterUserPassword="y" * 12,
        Tags=[*STACK_TAGS, {"Key": rds.DRILL_TAG, "Value": "some-other-run"}],
    )
    before = _state(client)
    seen, hooks = _calls()
    connected: list[str] = []
    started_at = aws_restore.server_started_at

    def spy(dsn: str) -> dt.datetime:
        connected.append(dsn)
        return started_at(dsn)

    monkeypatch.setattr(aws_restore, "server_started_at", spy)
    path = tmp_path / "r.json"
    code = _run_script(drill_fixtures.restore_args(stack.endpoint, database, "--apply", "--report", str(path)), *hooks)
    assert code == EXIT_OK, capsys.readouterr().err
    report = json.loads(path.read_text())
    copy, writer = report["details"]["drill_cluster"], report["details"]["drill_instance"]

    (restore,) = seen["RestoreDBClusterToPointInTime"]
    assert restore["SourceDBClusterIdentifier"] == SOURCE
    assert restore["RestoreType"] == "full-copy"
    assert isinstance(restore["RestoreToTime"], dt.datetime)  # the moment the facts were read
    assert "UseLatestRestorableTime" not in restore  # AWS refuses both
    assert restore["DBSubnetGroupName"] == stack.subnet_group
    assert restore["VpcSecurityGroupIds"] == [stack.security_group]
    assert restore["DBClusterParameterGroupName"] == stack.parameter_group
    assert restore["ServerlessV2ScalingConfiguration"] == SCALING
    assert (restore["DeletionProtection"], restore["EnableIAMDatabaseAuthentication"]) == (False, True)
    tags = {tag["Key"]: tag["Value"] for tag in restore["Tags"]}
    assert (tags[rds.DRILL_TAG], tags["stack"]) == (report["run_id"], "temporaldb-dev")

    (created,) = seen["CreateDBInstance"]
    assert created == {
        "DBInstanceIdentifier": writer,
        "DBClusterIdentifier": copy,
        "Engine": "aurora-postgresql",
        "DBInstanceClass": "db.serverless",
        "PubliclyAccessible": False,
        "Tags": restore["Tags"],
        "DBParameterGroupName": stack.instance_parameter_group,
    }  # nothing AWS says the cluster decides: storage, version, master user, groups, encryption
    assert seen["DeleteDBInstance"] == [{"DBInstanceIdentifier": writer}]  # no final snapshot of a cluster member
    assert seen["DeleteDBCluster"] == [
        {"DBClusterIdentifier": copy, "SkipFinalSnapshot": True, "DeleteAutomatedBackups": True}
    ]

    assert report["verified"] is True
    # The source and the copy may be paused (MinCapacity 0): AWS says resuming takes up to 15 s; wait longer.
    assert len(connected) == 2
    assert all(f"connect_timeout={rds_cluster.RESUME_CONNECT_TIMEOUT}" in dsn for dsn in connected)
    assert [s["name"] for s in report["stages"]] == [
        "preconditions", "record_facts", "wait_restorable", "restore", "wait_available", "add_writer", "verify",
        "teardown",
    ]  # fmt: skip
    assert all(stage["ok"] for stage in report["stages"])
    assert report["rto_seconds"] > 0
    assert 0 <= report["rpo_seconds"] < 60  # moto's LatestRestorableTime is "now"
    assert report["torn_down"] == [f"rds instance {writer} (deleted)", f"rds cluster {copy} (deleted)"]
    assert _state(client) == before  # the source cluster, its writer and reader, and the bystander untouched
    assert tagged_with(client, report["run_id"]) == []
    facts = [
        {k: v for k, v in report["details"][key].items() if k != "taken_at"} for key in ("facts_before", "facts_after")
    ]
    assert facts[0] == facts[1]


@pytest.mark.parametrize("load", ["none", "during-the-request"])
def test_a_clone_is_copy_on_write_of_the_latest_restorable_time(
    stack: Stack, database: Servers, tmp_path: Path, load: str
) -> None:
    """AWS chooses a clone's moment: it must hold the facts recorded before the request, or those right after it."""
    seen, hooks = _calls()
    admin = [make_conninfo(server.dsn, dbname="nba_temporal") for server in (database.source, database.copy)]

    def load_meanwhile(**_: Any) -> None:  # a load commits on the source (and so is in the clone) as AWS clones
        for dsn in admin:
            with psycopg.connect(dsn, autocommit=True) as connection:
                connection.execute("insert into nba.teams (team_id, abbreviation, name) values (98, 'YY', 'Meanwhile')")

    if load == "during-the-request":
        hooks.append(("after-call.rds.RestoreDBClusterToPointInTime", load_meanwhile))
    path = tmp_path / "r.json"
    argv = drill_fixtures.restore_args(stack.endpoint, database, "--apply", "--clone", "--report", str(path))
    try:
        assert _run_script(argv, *hooks) == EXIT_OK, path.read_text()
    finally:
        for dsn in admin:
            with psycopg.connect(dsn, autocommit=True) as connection:
                connection.execute("delete from nba.teams where team_id = 98")
    (restore,) = seen["RestoreDBClusterToPointInTime"]
    assert (restore["RestoreType"], restore["UseLatestRestorableTime"]) == ("copy-on-write", True)
    assert "RestoreToTime" not in restore  # AWS refuses a time with copy-on-write
    report = json.loads(path.read_text())
    assert report["details"]["restore_type"] == "copy-on-write"
    verify = next(stage for stage in report["stages"] if stage["name"] == "verify")
    if load == "none":
        assert verify["detail"].startswith("matches the source exactly")
    else:
        assert verify["detail"].startswith("matches the source as of the clone request")
        assert report["details"]["facts_at_clone_request"]["row_counts"]["nba.teams"] == (
            report["details"]["facts_before"]["row_counts"]["nba.teams"] + 1
        )
    assert tagged_with(stack.rds, report["run_id"]) == []


@pytest.mark.parametrize("interruption", ["mismatch", "ctrl-c"])
def test_a_failure_mid_verify_leaves_nothing_tagged_with_the_run(
    stack: Stack, database: Servers, interruption: str
) -> None:
    """The copy differs from the recorded facts (or Ctrl-C arrives) once it exists: teardown must still run."""
    before = _state(stack.rds)
    report = drill_fixtures.stop_at_verify(aws_cluster_restore.run, stack.rds, database, interruption)
    assert report.failed_stage == "verify"
    assert (report.stages[-1].name, report.stages[-1].ok) == ("teardown", True)
    assert len(report.torn_down) == 2
    assert tagged_with(stack.rds, report.run_id) == []
    assert _state(stack.rds) == before
    if interruption == "mismatch":
        assert "nba.teams: expected" in (report.error or "")


def test_aws_refusing_the_writer_fails_the_drill_and_deletes_the_copied_cluster(
    stack: Stack, database: Servers, tmp_path: Path
) -> None:
    before = _state(stack.rds)
    path = tmp_path / "r.json"
    message = "The requested DB instance class db.serverless isn't supported by this engine version."
    refusal = drill_fixtures.refuse("CreateDBInstance", "InvalidParameterCombination", message)
    argv = drill_fixtures.restore_args(stack.endpoint, database, "--apply", "--report", str(path))
    assert _run_script(argv, *refusal) == EXIT_FAILED
    report = json.loads(path.read_text())
    assert report["failed_stage"] == "add_writer"
    assert f"create_db_instance refused: InvalidParameterCombination: {message}" in report["error"]
    assert report["torn_down"] == [f"rds cluster {report['details']['drill_cluster']} (deleted)"]
    assert tagged_with(stack.rds, report["run_id"]) == []
    assert _state(stack.rds) == before


# --- which source: an instance or a cluster, never both ---------------------------------------------------------


def _instance(client: Any, identifier: str) -> None:
    client.create_db_instance(
        DBInstanceIdentifier=identifier,
        Engine="postgres",
        EngineVersion="17.4",
        DBInstanceClass="db.t3.micro",
        AllocatedStorage=20,
        MasterUsername="x",
        MasterUserPassword="y" * 12,
        Tags=STACK_TAGS,
    )


@pytest.mark.parametrize(
    ("case", "extra", "message"),
    [
        ("both", (), "both an RDS instance (temporaldb-dev-old) and an Aurora cluster (temporaldb-dev) are tagged"),
        ("neither", ("--stack", "staging", "--secret-id", "x"), "found none: pass --instance or --cluster to choose"),
        ("no such cluster", ("--cluster", "nope", "--secret-id", "x"), "no Aurora cluster 'nope'"),
        ("instance snapshot", ("--snapshot", "snap"), "--snapshot restores an RDS instance's snapshot"),
        ("clone of an instance", ("--instance", "temporaldb-dev-old", "--clone", "--secret-id", "x"), "--clone copies"),
    ],
)
def test_the_source_is_one_instance_or_one_cluster_or_the_drill_refuses(
    stack: Stack, database: Servers, tmp_path: Path, case: str, extra: tuple[str, ...], message: str
) -> None:
    if case in ("both", "clone of an instance"):
        _instance(stack.rds, "temporaldb-dev-old")
    secrets = boto3.client("secretsmanager", endpoint_url=stack.endpoint)
    secrets.create_secret(Name="x", SecretString=json.dumps({"username": "analyst", "password": ""}))
    before = _state(stack.rds)
    path = tmp_path / "r.json"
    argv = drill_fixtures.restore_args(stack.endpoint, database, "--apply", "--report", str(path))
    if "--stack" in extra or "--cluster" in extra or "--instance" in extra:
        argv = argv[2:]  # no --stack
    assert restore_drill.main([*argv, *extra]) == EXIT_REFUSED
    report = json.loads(path.read_text())
    assert message in report["error"]
    assert (report["changed"], report["failed_stage"]) == (False, "preconditions")
    assert _state(stack.rds) == before


def test_instance_and_cluster_together_are_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        restore_drill.main(["--instance", "a", "--cluster", "b"])
    assert stopped.value.code == 2
    assert "not allowed with argument --instance" in capsys.readouterr().err


def test_teardown_refuses_a_cluster_without_this_runs_tag(stack: Stack) -> None:
    with pytest.raises(rds.RdsDrillError, match=f"refusing to delete {SOURCE}"):
        rds_cluster.delete_drill_cluster(stack.rds, SOURCE, "this-run", rds.Limits(0, 0))
    with pytest.raises(rds.RdsDrillError, match=f"refusing to delete {WRITER}"):
        rds.delete_drill_instance(stack.rds, WRITER, "this-run", cluster_member=True)
    assert SOURCE in clusters(stack.rds)
    assert WRITER in instances(stack.rds)


# --- real AWS behaviour the emulator does not have: botocore stubs of documented responses -------------------

LATEST = dt.datetime(2026, 11, 26, 3, 59, tzinfo=dt.UTC)
EARLIEST = dt.datetime(2026, 11, 19, 3, 10, tzinfo=dt.UTC)


def _cluster(status: str = "available", tags: list[dict[str, str]] = STACK_TAGS) -> dict[str, Any]:
    return {
        "DBClusterIdentifier": SOURCE,
        "Status": status,
        "Engine": "aurora-postgresql",
        "EngineVersion": "17.4",
        "DBSubnetGroup": "subnets",
        "VpcSecurityGroups": [{"VpcSecurityGroupId": "sg-0123456789abcdef0", "Status": "active"}],
        "DBClusterParameterGroup": "cluster-params",
        "Endpoint": f"{SOURCE}.cluster-c0ffee.us-east-1.rds.amazonaws.com",
        "Port": 5432,
        "EarliestRestorableTime": EARLIEST,
        "LatestRestorableTime": LATEST,
        "BackupRetentionPeriod": 7,
        "DBClusterMembers": [{"DBInstanceIdentifier": WRITER, "IsClusterWriter": True}],
        "ServerlessV2ScalingConfiguration": SCALING,
        "TagList": tags,
    }


def _writer() -> dict[str, Any]:
    return {
        "DBInstances": [
            {
                "DBInstanceIdentifier": WRITER,
                "DBInstanceClass": "db.serverless",
                "DBInstanceStatus": "available",
                "DBParameterGroups": [{"DBParameterGroupName": "instance-params"}],
            }
        ]
    }


def _stubbed() -> tuple[Any, Stubber]:
    client = boto3.client("rds", region_name=REGION)
    return client, Stubber(client)


@pytest.mark.parametrize(
    ("moment", "message"),
    [
        (LATEST + dt.timedelta(minutes=1), "after the latest restorable time 2026-11-26T03:59:00+00:00"),
        (EARLIEST - dt.timedelta(days=1), "before the earliest restorable time 2026-11-19T03:10:00+00:00"),
    ],
)
def test_a_restore_time_outside_the_clusters_window_is_refused_before_any_change(
    moment: dt.datetime, message: str
) -> None:
    """moto restores to any time; AWS answers InvalidRestoreFault outside EarliestRestorableTime..LatestRestorableTime
    of DescribeDBClusters. The drill refuses first, and the Stubber has no answer for a restore call."""
    client, stubber = _stubbed()
    stubber.add_response("describe_db_clusters", {"DBClusters": [_cluster()]}, {"DBClusterIdentifier": SOURCE})
    stubber.add_response("describe_db_instances", _writer(), {"DBInstanceIdentifier": WRITER})
    stubber.add_response("describe_db_instances", {"DBInstances": []}, {})  # nothing carries the run id
    stubber.add_response("describe_db_clusters", {"DBClusters": []}, {})
    stubber.add_response("describe_db_snapshots", {"DBSnapshots": []}, {"SnapshotType": "manual"})
    options = aws_restore.RestoreOptions(cluster=SOURCE, restore_time=moment)
    with stubber, pytest.raises(rds.PreconditionError, match=re.escape(message)):
        aws_cluster_restore.plan(client, options, "run-1")
    stubber.assert_no_pending_responses()


def test_the_copy_restores_to_a_time_inside_the_window_as_a_full_copy() -> None:
    client, stubber = _stubbed()
    stubber.add_response("describe_db_clusters", {"DBClusters": [_cluster()]}, {"DBClusterIdentifier": SOURCE})
    stubber.add_response("describe_db_instances", _writer(), {"DBInstanceIdentifier": WRITER})
    stubber.add_response("describe_db_instances", {"DBInstances": []}, {})
    stubber.add_response("describe_db_clusters", {"DBClusters": []}, {})
    stubber.add_response("describe_db_snapshots", {"DBSnapshots": []}, {"SnapshotType": "manual"})
    moment = LATEST - dt.timedelta(hours=1)
    with stubber:
        found = aws_cluster_restore.plan(client, aws_restore.RestoreOptions(cluster=SOURCE, restore_time=moment), "r")
    params = found.restore.params
    assert (params["RestoreType"], params["RestoreToTime"]) == ("full-copy", moment)
    assert "UseLatestRestorableTime" not in params
    assert found.add_writer.params["DBParameterGroupName"] == "instance-params"


def test_a_busy_copy_refuses_deletion_until_its_instances_are_deleting() -> None:
    """AWS refuses DeleteDBCluster (InvalidDBClusterStateFault) while an instance is not yet deleting."""
    tagged = [{"Key": rds.DRILL_TAG, "Value": "run"}]
    client, stubber = _stubbed()
    stubber.add_response(
        "describe_db_clusters", {"DBClusters": [_cluster("available", tagged)]}, {"DBClusterIdentifier": "copy"}
    )
    stubber.add_client_error(
        "delete_db_cluster", service_error_code="InvalidDBClusterStateFault", http_status_code=400,
        service_message="Cluster cannot be deleted, it still contains DB instances in non-deleting state.",
    )  # fmt: skip
    stubber.add_response(
        "describe_db_clusters", {"DBClusters": [_cluster("available", tagged)]}, {"DBClusterIdentifier": "copy"}
    )
    stubber.add_response(
        "delete_db_cluster",
        {"DBCluster": _cluster("deleting", tagged)},
        {"DBClusterIdentifier": "copy", "SkipFinalSnapshot": True, "DeleteAutomatedBackups": True},
    )
    slept: list[float] = []
    with stubber:
        outcome = rds_cluster.delete_drill_cluster(client, "copy", "run", rds.Limits(7, 60, slept.append))
    assert (outcome, slept) == ("deletion requested", [7])
    stubber.assert_no_pending_responses()


def test_a_copied_cluster_stuck_in_a_terminal_state_fails_the_wait() -> None:
    client, stubber = _stubbed()
    for status in ("creating", "incompatible-parameters"):
        stubber.add_response("describe_db_clusters", {"DBClusters": [_cluster(status)]}, {"DBClusterIdentifier": "c"})
    said: list[str] = []
    with stubber, pytest.raises(rds.RdsDrillError, match="went to 'incompatible-parameters'"):
        rds_cluster.wait_available(client, "c", said.append, rds.Limits(0, 60, lambda _: None))
    assert said == ["c: creating after 0 s", "c: incompatible-parameters after 0 s"]
