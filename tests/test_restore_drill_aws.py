"""The restore drill against an AWS emulator (moto, over HTTP), and against botocore stubs where moto is laxer.

SQL goes to a real PostgreSQL holding the role model and a small league: the emulator's endpoints do not
exist, so `--db-host` points both the source and its copy at that server, as an SSM tunnel would.
"""

from __future__ import annotations

import datetime as dt
import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import psycopg
import pytest
from botocore.stub import Stubber
from moto.server import ThreadedMotoServer
from psycopg.conninfo import make_conninfo

from runbooks import restore_drill
from temporaldb.bootstrap import bootstrap
from temporaldb.drills import aws_restore, rds
from temporaldb.drills.report import DrillReport
from temporaldb.drills.runbook import EXIT_FAILED, EXIT_OK, EXIT_REFUSED
from temporaldb.load import load_directory
from tests.nbadata import write_league
from tests.pgservers import ThrowawayServer, start_throwaway_server
from tests.test_load import HAND_MADE

REGION = "us-east-1"
SOURCE = "temporaldb-dev"
STACK_TAGS = [
    {"Key": "project", "Value": "temporaldb"},
    {"Key": "stack", "Value": "temporaldb-dev"},
    {"Key": "costCenter", "Value": "sports-analytics"},
]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def emulator() -> Iterator[str]:
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture(autouse=True)
def credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)


def _league_server(base: Path) -> ThrowawayServer:
    """A real PostgreSQL with the role model and a small league loaded as etl."""
    server = start_throwaway_server(18, base)
    bootstrap(server.dsn, ["nba"])
    etl = make_conninfo(server.dsn, dbname="nba_temporal", user="etl")
    load_directory(etl, write_league(server.root_dir / "league", HAND_MADE))
    return server


@dataclass
class Servers:
    """What the source and its copy resolve to (through `--db-host` and `--copy-db-host`, as tunnels would)."""

    source: ThrowawayServer
    copy: ThrowawayServer


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    source = _league_server(tmp_path_factory.mktemp("drill-source"))
    try:
        copy = _league_server(tmp_path_factory.mktemp("drill-copy"))
        try:
            yield Servers(source, copy)
        finally:
            copy.stop()
    finally:
        source.stop()


@dataclass
class Stack:
    endpoint: str
    rds: Any
    subnet_group: str
    security_group: str
    parameter_group: str


@pytest.fixture
def stack(emulator: str) -> Iterator[Stack]:
    """The dev stack's instance as Pulumi would leave it, in a fresh emulator state."""
    boto3.client("s3", endpoint_url=emulator).list_buckets()  # the server answers
    ec2 = boto3.client("ec2", endpoint_url=emulator)
    client = boto3.client("rds", endpoint_url=emulator)
    vpc = ec2.create_vpc(CidrBlock="10.42.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.42.{n}.0/24", AvailabilityZone=f"{REGION}{zone}")["Subnet"][
            "SubnetId"
        ]
        for n, zone in ((0, "a"), (1, "b"))
    ]
    group = ec2.create_security_group(GroupName=f"db-{vpc}", Description="5432", VpcId=vpc)["GroupId"]
    client.create_db_subnet_group(
        DBSubnetGroupName=f"subnets-{vpc}", DBSubnetGroupDescription="stack", SubnetIds=subnets
    )
    client.create_db_parameter_group(
        DBParameterGroupName=f"params-{vpc}", DBParameterGroupFamily="postgres17", Description="stack"
    )
    client.create_db_instance(
        DBInstanceIdentifier=SOURCE,
        Engine="postgres",
        EngineVersion="17.4",
        DBInstanceClass="db.t3.micro",
        AllocatedStorage=20,
        MasterUsername="temporaldb_admin",
        MasterUserPassword="not-used-by-the-drill",
        DBSubnetGroupName=f"subnets-{vpc}",
        VpcSecurityGroupIds=[group],
        DBParameterGroupName=f"params-{vpc}",
        BackupRetentionPeriod=7,
        Tags=STACK_TAGS,
    )
    secrets = boto3.client("secretsmanager", endpoint_url=emulator)
    name = f"temporaldb-dev/analyst-{vpc}"
    secrets.create_secret(Name=name, SecretString=json.dumps({"username": "analyst", "password": "unused"}))
    yield Stack(emulator, client, f"subnets-{vpc}", group, f"params-{vpc}")
    for instance in client.describe_db_instances()["DBInstances"]:
        client.delete_db_instance(DBInstanceIdentifier=instance["DBInstanceIdentifier"], SkipFinalSnapshot=True)
    secrets.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)


VOLATILE = ("LatestRestorableTime",)  # moto answers "now"


def _instances(client: Any) -> dict[str, dict[str, Any]]:
    """Every instance's description, without the fields that change by themselves."""
    return {
        i["DBInstanceIdentifier"]: {key: value for key, value in i.items() if key not in VOLATILE}
        for i in client.describe_db_instances()["DBInstances"]
    }


def _args(stack: Stack, database: Servers, *extra: str) -> list[str]:
    return [
        "--stack", "dev", "--endpoint-url", stack.endpoint, "--region", REGION,
        "--db-host", str(database.source.root_dir), "--db-port", "5432",
        "--copy-db-host", str(database.copy.root_dir), "--copy-db-port", "5432", "--poll-seconds", "0", *extra,
    ]  # fmt: skip


def test_the_dry_run_plans_and_changes_nothing(
    stack: Stack, database: Servers, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _instances(stack.rds)
    code = restore_drill.main(_args(stack, database, "--report", str(tmp_path / "r.json")))
    assert code == EXIT_OK
    assert _instances(stack.rds) == before
    out, err = capsys.readouterr()
    assert "dry run, nothing changed" in out
    assert "would call rds.restore_db_instance_to_point_in_time(SourceDBInstanceIdentifier='temporaldb-dev'" in err
    assert f"DBSubnetGroupName='{stack.subnet_group}'" in err
    assert f"DBParameterGroupName='{stack.parameter_group}'" in err
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["applied"] is False
    assert [stage["name"] for stage in report["stages"]] == ["preconditions"]


def test_apply_restores_with_the_stacks_groups_verifies_and_deletes_only_its_copy(
    stack: Stack, database: Servers, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    client = stack.rds
    client.create_db_instance(  # a bystander, tagged like a drill of another run
        DBInstanceIdentifier="bystander",
        Engine="postgres",
        DBInstanceClass="db.t3.micro",
        AllocatedStorage=20,
        MasterUsername="x",
        MasterUserPassword="y" * 12,
        Tags=[{"Key": rds.DRILL_TAG, "Value": "some-other-run"}],
    )
    source_before = _instances(client)[SOURCE]
    restored: list[dict[str, Any]] = []

    def spy(**kwargs: Any) -> None:
        restored.append(dict(kwargs["params"]))

    code = _main_with_hook(
        "provide-client-params.rds.RestoreDBInstanceToPointInTime",
        spy,
        _args(stack, database, "--apply", "--report", str(tmp_path / "r.json")),
    )
    assert code == EXIT_OK, capsys.readouterr().err
    (call,) = restored
    assert call["DBSubnetGroupName"] == stack.subnet_group
    assert call["VpcSecurityGroupIds"] == [stack.security_group]
    assert call["DBParameterGroupName"] == stack.parameter_group
    assert call["SourceDBInstanceIdentifier"] == SOURCE
    assert "RestoreTime" in call
    report = json.loads((tmp_path / "r.json").read_text())
    tags = {tag["Key"]: tag["Value"] for tag in call["Tags"]}
    assert tags[rds.DRILL_TAG] == report["run_id"]
    assert tags["stack"] == "temporaldb-dev"
    remaining = _instances(client)
    assert set(remaining) == {SOURCE, "bystander"}  # the copy is gone, nothing else
    assert remaining[SOURCE] == source_before
    assert report["verified"] is True
    assert report["rto_seconds"] > 0
    assert report["rpo_seconds"] >= 0
    assert report["failed_stage"] is None
    assert [s["name"] for s in report["stages"]] == [
        "preconditions", "record_facts", "wait_restorable", "restore", "wait_available", "verify", "teardown",
    ]  # fmt: skip
    assert all(stage["ok"] and stage["started_at"] and stage["ended_at"] for stage in report["stages"])
    assert report["torn_down"] == [f"rds instance {report['details']['drill_instance']}"]
    assert report["details"]["facts_after"] == report["details"]["facts_before"]


def _main_with_hook(event: str, hook: Any, argv: list[str]) -> int:
    """Run the script with a botocore event hook on every RDS client it makes (the calls still reach moto)."""
    original = boto3.session.Session.client

    def client(self: Any, service: str, *args: Any, **kwargs: Any) -> Any:
        made = original(self, service, *args, **kwargs)
        if service == "rds":
            made.meta.events.register(event, hook)
        return made

    patch = pytest.MonkeyPatch()
    patch.setattr(boto3.session.Session, "client", client)
    try:
        return restore_drill.main(argv)
    finally:
        patch.undo()


@pytest.mark.parametrize("interruption", ["mismatch", "ctrl-c"])
def test_a_failure_mid_drill_still_tears_down(stack: Stack, database: Servers, interruption: str) -> None:
    """The copy differs from the recorded facts (or Ctrl-C arrives) once it exists: teardown must still run."""
    admin = make_conninfo(database.copy.dsn, dbname="nba_temporal")

    def say(message: str) -> None:
        if message != "[verify] started":
            return
        if interruption == "ctrl-c":
            raise KeyboardInterrupt
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute("insert into nba.teams (team_id, abbreviation, name) values (99, 'ZZ', 'Late')")

    report = DrillReport("restore", "aws", rds.new_run_id(), applied=True)
    options = aws_restore.RestoreOptions(stack="dev", poll_seconds=0)
    access = aws_restore.SqlAccess(
        "analyst", None, host=str(database.source.root_dir), port=5432, copy_host=str(database.copy.root_dir)
    )
    expected = KeyboardInterrupt if interruption == "ctrl-c" else rds.RdsDrillError
    try:
        with pytest.raises(expected):
            aws_restore.run(stack.rds, options, access, report, say=say)
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute("delete from nba.teams where team_id = 99")
    assert report.failed_stage == "verify"
    assert set(_instances(stack.rds)) == {SOURCE}
    assert report.torn_down == [f"rds instance {report.details['drill_instance']}"]
    assert report.stages[-1].name == "teardown"
    assert report.stages[-1].ok is True
    if interruption == "mismatch":
        assert "nba.teams: expected" in (report.error or "")


def test_verifying_the_source_instead_of_the_copy_fails(stack: Stack, database: Servers, tmp_path: Path) -> None:
    """One tunnel for both would 'verify' the source against itself: the drill notices and fails."""
    path = tmp_path / "r.json"
    argv = _args(stack, database, "--apply", "--report", str(path))
    argv[argv.index("--copy-db-host") + 1] = str(database.source.root_dir)
    assert restore_drill.main(argv) == EXIT_FAILED
    report = json.loads(path.read_text())
    assert report["failed_stage"] == "verify"
    assert "reaches the source itself" in report["error"]
    assert set(_instances(stack.rds)) == {SOURCE}


def test_the_drill_refuses_an_instance_it_cannot_find(stack: Stack, database: Servers) -> None:
    before = _instances(stack.rds)
    argv = _args(stack, database, "--apply")
    argv[argv.index("dev")] = "staging"
    assert restore_drill.main(argv) == EXIT_REFUSED
    assert _instances(stack.rds) == before


def test_teardown_refuses_an_instance_without_this_runs_tag(stack: Stack) -> None:
    with pytest.raises(rds.RdsDrillError, match="refusing to delete temporaldb-dev"):
        rds.delete_drill_instance(stack.rds, SOURCE, "this-run")
    assert SOURCE in _instances(stack.rds)


def test_a_failed_drill_writes_a_report_naming_the_stage(stack: Stack, database: Servers, tmp_path: Path) -> None:
    """The analyst's database does not exist on the copy: verify fails, the copy is deleted, exit 5."""
    path = tmp_path / "r.json"
    code = restore_drill.main(_args(stack, database, "--apply", "--report", str(path), "--database", "nope"))
    assert code == EXIT_FAILED
    report = json.loads(path.read_text())
    assert report["failed_stage"] == "record_facts"
    assert report["verified"] is False
    assert set(_instances(stack.rds)) == {SOURCE}


# --- real AWS behaviour the emulator does not have: botocore stubs of documented responses -------------------

LATEST = dt.datetime(2026, 11, 26, 3, 55, tzinfo=dt.UTC)
EARLIEST = dt.datetime(2026, 11, 19, 3, 10, tzinfo=dt.UTC)


def _described(status: str = "available") -> dict[str, Any]:
    return {
        "DBInstances": [
            {
                "DBInstanceIdentifier": SOURCE,
                "DBInstanceStatus": status,
                "Engine": "postgres",
                "EngineVersion": "17.4",
                "DBInstanceClass": "db.t3.micro",
                "DBSubnetGroup": {"DBSubnetGroupName": "subnets"},
                "VpcSecurityGroups": [{"VpcSecurityGroupId": "sg-0123456789abcdef0", "Status": "active"}],
                "DBParameterGroups": [{"DBParameterGroupName": "params", "ParameterApplyStatus": "in-sync"}],
                "Endpoint": {"Address": "temporaldb-dev.c0ffee.us-east-1.rds.amazonaws.com", "Port": 5432},
                "LatestRestorableTime": LATEST,
                "TagList": STACK_TAGS,
            }
        ]
    }


def _stubbed() -> tuple[Any, Stubber]:
    client = boto3.client("rds", region_name=REGION)
    return client, Stubber(client)


@pytest.mark.parametrize(
    ("moment", "message"),
    [
        (LATEST + dt.timedelta(minutes=1), "after the latest restorable time"),
        (EARLIEST - dt.timedelta(days=1), "before the earliest restorable time"),
    ],
)
def test_a_restore_time_outside_the_window_is_refused_before_any_call(moment: dt.datetime, message: str) -> None:
    client, stubber = _stubbed()
    stubber.add_response("describe_db_instances", _described(), {"DBInstanceIdentifier": SOURCE})
    stubber.add_response("describe_db_instances", _described(), {"DBInstanceIdentifier": SOURCE})
    stubber.add_response(
        "describe_db_instance_automated_backups",
        {"DBInstanceAutomatedBackups": [{"RestoreWindow": {"EarliestTime": EARLIEST, "LatestTime": LATEST}}]},
        {"DBInstanceIdentifier": SOURCE},
    )
    with stubber, pytest.raises(rds.PreconditionError, match=message):
        aws_restore.plan(client, aws_restore.RestoreOptions(instance=SOURCE, restore_time=moment), "run-1")
    stubber.assert_no_pending_responses()  # and no restore call: the stubber would have refused it


def test_aws_refusing_the_restore_is_reported_with_its_reason() -> None:
    client, stubber = _stubbed()
    stubber.add_client_error(
        "restore_db_instance_to_point_in_time",
        service_error_code="InvalidRestoreFault",
        service_message="Restore time must be before the latest restorable time",
        http_status_code=400,
    )
    call = rds.PlannedCall(
        "restore_db_instance_to_point_in_time",
        {"SourceDBInstanceIdentifier": SOURCE, "TargetDBInstanceIdentifier": "copy"},
    )
    with stubber, pytest.raises(rds.RdsDrillError, match="InvalidRestoreFault: Restore time must be before"):
        rds.call(client, call)


def test_a_copy_stuck_in_a_terminal_state_fails_the_wait() -> None:
    client, stubber = _stubbed()
    stubber.add_response("describe_db_instances", _described("creating"), {"DBInstanceIdentifier": SOURCE})
    stubber.add_response("describe_db_instances", _described("incompatible-restore"), {"DBInstanceIdentifier": SOURCE})
    said: list[str] = []
    with stubber, pytest.raises(rds.RdsDrillError, match="incompatible-restore"):
        rds.wait_available(client, SOURCE, said.append, poll_seconds=0, sleep=lambda _: None)
    assert said == [f"{SOURCE}: creating after 0 s", f"{SOURCE}: incompatible-restore after 0 s"]


def test_drill_identifiers_are_valid_rds_names() -> None:
    run_id = rds.new_run_id(dt.datetime(2026, 11, 26, 4, 15, tzinfo=dt.UTC))
    name = rds.drill_identifier("a" * 70, "restore", run_id)
    assert len(name) <= rds.MAX_IDENTIFIER
    assert name.endswith(f"-restore-{run_id}")
    assert "--" not in name
    assert name[0].isalpha()
