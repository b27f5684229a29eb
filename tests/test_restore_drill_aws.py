"""The restore drill against an AWS emulator (moto, over HTTP), and against botocore stubs where moto is laxer.

SQL goes to a real PostgreSQL holding the role model and a small league: the emulator's endpoints do not
exist, so `--db-host` points both the source and its copy at that server, as an SSM tunnel would.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from runbooks import restore_drill
from temporaldb.drills import aws_restore, rds, runbook
from temporaldb.drills.runbook import EXIT_CONNECTIVITY, EXIT_FAILED, EXIT_OK, EXIT_REFUSED
from tests import drill_fixtures
from tests.drill_fixtures import REGION, SOURCE, STACK_TAGS, Servers, Stack, make_stack, remove_stack
from tests.drill_fixtures import instances as _instances

pytestmark = pytest.mark.usefixtures("aws_credentials")


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    with drill_fixtures.source_and_copy(tmp_path_factory) as servers:
        yield servers


@pytest.fixture
def stack(emulator: str) -> Iterator[Stack]:
    """The dev stack's instance as Pulumi would leave it, in a fresh emulator state."""
    made = make_stack(emulator)
    yield made
    remove_stack(made)


def _args(stack: Stack, database: Servers, *extra: str) -> list[str]:
    return drill_fixtures.restore_args(stack.endpoint, database, *extra)


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
    assert 0 <= report["rpo_seconds"] < 60  # moto's LatestRestorableTime is "now"
    assert report["failed_stage"] is None
    assert [s["name"] for s in report["stages"]] == [
        "preconditions", "record_facts", "wait_restorable", "restore", "wait_available", "verify", "teardown",
    ]  # fmt: skip
    assert all(stage["ok"] and stage["started_at"] and stage["ended_at"] for stage in report["stages"])
    assert report["torn_down"] == [f"rds instance {report['details']['drill_instance']} (deleted)"]
    facts = [
        {k: v for k, v in report["details"][key].items() if k != "taken_at"} for key in ("facts_before", "facts_after")
    ]
    assert facts[0] == facts[1]


def _main_with_hook(event: str, hook: Any, argv: list[str]) -> int:
    return drill_fixtures.main_with_hooks(restore_drill.main, argv, (event, hook))


@pytest.mark.parametrize("interruption", ["mismatch", "ctrl-c"])
def test_a_failure_mid_drill_still_tears_down(stack: Stack, database: Servers, interruption: str) -> None:
    """The copy differs from the recorded facts (or Ctrl-C arrives) once it exists: teardown must still run."""
    report = drill_fixtures.stop_at_verify(aws_restore.run, stack.rds, database, interruption)
    assert report.failed_stage == "verify"
    assert set(_instances(stack.rds)) == {SOURCE}
    assert report.torn_down == [f"rds instance {report.details['drill_instance']} (deleted)"]
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


def test_an_unreachable_source_database_is_a_connectivity_failure(
    stack: Stack, database: Servers, tmp_path: Path
) -> None:
    """Nothing was created yet: exit 3, a report naming the stage, and no teardown needed."""
    path = tmp_path / "r.json"
    code = restore_drill.main(_args(stack, database, "--apply", "--report", str(path), "--database", "nope"))
    assert code == EXIT_CONNECTIVITY
    report = json.loads(path.read_text())
    assert report["failed_stage"] == "record_facts"
    assert report["changed"] is False
    assert report["torn_down"] == []
    assert report["stages"][-1] == {**report["stages"][-1], "name": "teardown", "detail": "nothing was created"}
    assert set(_instances(stack.rds)) == {SOURCE}


@pytest.mark.parametrize("stop", ["unexpected-error", "ctrl-c"])
def test_a_drill_stopped_before_the_restore_exits_4_and_claims_no_change(
    stack: Stack,
    database: Servers,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    stop: str,
) -> None:
    """A bug (or Ctrl-C) while the source's facts are read: the copy was never asked for, so nothing changed."""
    if stop == "ctrl-c":

        def say(message: str) -> None:
            if message == "[record_facts] started":
                raise KeyboardInterrupt

        monkeypatch.setattr(runbook, "say", say)
    else:

        def crash(*_: object, **__: object) -> None:
            raise RuntimeError("the facts reader crashed")

        monkeypatch.setattr(aws_restore, "snapshot", crash)
    path = tmp_path / "r.json"
    assert restore_drill.main(_args(stack, database, "--apply", "--report", str(path))) == EXIT_REFUSED
    report = json.loads(path.read_text())
    assert (report["failed_stage"], report["changed"], report["torn_down"]) == ("record_facts", False, [])
    assert report["error"] == ("interrupted (Ctrl-C)" if stop == "ctrl-c" else "the facts reader crashed")
    assert [(s["name"], s["detail"]) for s in report["stages"]][-1] == ("teardown", "nothing was created")
    assert set(_instances(stack.rds)) == {SOURCE}
    out = capsys.readouterr().out
    assert "FAILED at record_facts before any change (nothing to tear down); rto_seconds=None" in out
    assert out.rstrip().endswith(f"exit {EXIT_REFUSED}")


def test_an_unreachable_copy_fails_the_drill_and_deletes_the_copy(
    stack: Stack, database: Servers, tmp_path: Path
) -> None:
    path = tmp_path / "r.json"
    argv = _args(stack, database, "--apply", "--report", str(path))
    argv[argv.index("--copy-db-host") + 1] = str(tmp_path / "no-server-here")
    assert restore_drill.main(argv) == EXIT_FAILED
    report = json.loads(path.read_text())
    assert report["failed_stage"] == "verify"
    assert report["changed"] is True
    assert report["torn_down"] == [f"rds instance {report['details']['drill_instance']} (deleted)"]
    assert set(_instances(stack.rds)) == {SOURCE}


def test_a_reused_run_id_is_refused_before_anything_is_touched(stack: Stack, database: Servers, tmp_path: Path) -> None:
    """Teardown deletes what carries the run's tag, so a run id already in use must stop the drill."""
    run_id = "20261126t041500-abcd"
    stack.rds.create_db_instance(
        DBInstanceIdentifier="earlier-copy",
        Engine="postgres",
        DBInstanceClass="db.t3.micro",
        AllocatedStorage=20,
        MasterUsername="x",
        MasterUserPassword="y" * 12,
        Tags=[{"Key": rds.DRILL_TAG, "Value": run_id}],
    )
    before = _instances(stack.rds)
    path = tmp_path / "r.json"
    assert restore_drill.main(_args(stack, database, "--apply", "--run-id", run_id, "--report", str(path))) == (
        EXIT_REFUSED
    )
    assert _instances(stack.rds) == before
    assert "already carry temporaldb:drill=20261126t041500-abcd" in json.loads(path.read_text())["error"]


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
                "DbiResourceId": "db-LIVE",
                "BackupRetentionPeriod": 7,
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
    stubber.add_response("describe_db_instances", {"DBInstances": []}, {})  # nothing carries the run id
    stubber.add_response("describe_db_clusters", {"DBClusters": []}, {})
    stubber.add_response("describe_db_snapshots", {"DBSnapshots": []}, {"SnapshotType": "manual"})
    live = {
        "Status": "active",
        "DbiResourceId": "db-LIVE",
        "RestoreWindow": {"EarliestTime": EARLIEST, "LatestTime": LATEST},
    }
    # A deleted namesake's retained backups have a window of their own, which must not count.
    retained = {
        "Status": "retained",
        "DbiResourceId": "db-GONE",
        "RestoreWindow": {
            "EarliestTime": EARLIEST - dt.timedelta(days=30),
            "LatestTime": LATEST + dt.timedelta(days=1),
        },
    }
    stubber.add_response(
        "describe_db_instance_automated_backups",
        {"DBInstanceAutomatedBackups": [live, retained] if message.startswith("after") else [retained, live]},
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
