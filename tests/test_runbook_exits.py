"""How the drill scripts turn what stopped a drill into an exit code and a report."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from temporaldb.drills import rds
from temporaldb.drills.report import DrillReport, Terminated
from temporaldb.drills.runbook import EXIT_CONNECTIVITY, EXIT_FAILED, EXIT_OK, EXIT_REFUSED, execute


def _client_error(code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": f"{code} happened"}}, "DescribeDBInstances")


def _drill(error: BaseException | None, *, changed: bool, verified: bool = True) -> Any:
    def body(report: DrillReport) -> None:
        with report.stage("preconditions", lambda _: None):
            pass
        report.changed = changed
        if error is not None:
            raise error
        report.verified = verified

    return body


@pytest.mark.parametrize(
    ("error", "changed", "code"),
    [
        (None, True, EXIT_OK),
        (rds.PreconditionError("no valid target"), False, EXIT_REFUSED),
        (rds.PreconditionError("1 blockers on the copy"), True, EXIT_FAILED),
        (_client_error("AccessDenied"), False, EXIT_CONNECTIVITY),
        (_client_error("DBSnapshotNotFound"), False, EXIT_REFUSED),
        (_client_error("InvalidDBInstanceState"), True, EXIT_FAILED),
        (rds.RdsDrillError("the copy differs"), True, EXIT_FAILED),
        (KeyboardInterrupt(), True, EXIT_FAILED),
        (Terminated("terminated (SIGTERM)"), True, EXIT_FAILED),
        # Stopped before any change, whatever stopped it: nothing to tear down, the "no change" code.
        (KeyboardInterrupt(), False, EXIT_REFUSED),
        (Terminated("terminated (SIGTERM)"), False, EXIT_REFUSED),
        (RuntimeError("a bug in the drill"), False, EXIT_REFUSED),
        (RuntimeError("a bug in the drill"), True, EXIT_FAILED),
    ],
)
def test_exit_codes_follow_what_stopped_the_drill(
    tmp_path: Path, error: BaseException | None, changed: bool, code: int
) -> None:
    report = DrillReport("restore", "aws", "20261126t041500-abcd", applied=True)
    path = tmp_path / "r.json"
    assert execute(report, lambda: _drill(error, changed=changed)(report), path) == code
    written = json.loads(path.read_text())
    assert written["changed"] is changed
    assert (written["error"] is None) is (error is None)


def test_a_failure_before_any_change_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = DrillReport("restore", "aws", "20261126t041500-abcd", applied=True)
    path = tmp_path / "r.json"
    assert execute(report, lambda: _drill(ValueError("unexpected"), changed=False)(report), path) == EXIT_REFUSED
    written = json.loads(path.read_text())
    assert (written["changed"], written["torn_down"], written["error"]) == (False, [], "unexpected")
    assert "no change was made" in capsys.readouterr().err


def test_sigterm_interrupts_the_drill_once_and_cannot_cut_its_teardown_short(tmp_path: Path) -> None:
    """The first SIGTERM stops the drill as Ctrl-C would; a second one, during teardown, is only noted."""
    report = DrillReport("upgrade", "local", "20261126t041500-abcd", applied=True)
    before = signal.getsignal(signal.SIGTERM)
    reached: list[str] = []

    def body() -> None:
        report.changed = True
        try:
            with report.stage("source_load", lambda _: None):
                os.kill(os.getpid(), signal.SIGTERM)  # the handler raises here, in this thread
                reached.append("after the first SIGTERM")
        finally:
            with report.stage("teardown", lambda _: None):
                os.kill(os.getpid(), signal.SIGTERM)
                reached.append("teardown went on")

    path = tmp_path / "u.json"
    assert execute(report, body, path) == EXIT_FAILED
    assert reached == ["teardown went on"]
    written = json.loads(path.read_text())
    assert (written["failed_stage"], written["error"]) == ("source_load", "terminated (SIGTERM)")
    assert [(stage["name"], stage["ok"]) for stage in written["stages"]] == [("source_load", False), ("teardown", True)]
    assert signal.getsignal(signal.SIGTERM) == before  # the caller's handling is back


def test_an_applied_drill_that_did_not_verify_fails() -> None:
    report = DrillReport("restore", "aws", "20261126t041500-abcd", applied=True)
    assert execute(report, lambda: _drill(None, changed=True, verified=False)(report), None) == EXIT_FAILED


def test_a_teardown_failing_after_another_failure_is_kept_in_the_report(tmp_path: Path) -> None:
    report = DrillReport("restore", "aws", "20261126t041500-abcd", applied=True)

    def body() -> None:
        report.changed = True
        try:
            with report.stage("verify", lambda _: None):
                raise rds.RdsDrillError("the copy differs")
        finally:
            with report.stage("teardown", lambda _: None) as stage:
                stage.detail = "rds snapshot x"
                raise rds.RdsDrillError("snapshot x is still in use")

    path = tmp_path / "r.json"
    assert execute(report, body, path) == EXIT_FAILED
    written = json.loads(path.read_text())
    assert written["failed_stage"] == "verify"
    assert written["details"]["also_failed"] == ["teardown: snapshot x is still in use"]
    assert written["stages"][-1]["detail"] == "rds snapshot x: snapshot x is still in use"


def _described(status: str) -> dict[str, Any]:
    return {
        "DBInstances": [
            {
                "DBInstanceIdentifier": "copy",
                "DBInstanceStatus": status,
                "TagList": [{"Key": rds.DRILL_TAG, "Value": "run"}],
            }
        ]
    }


def test_deleting_a_copy_rds_is_still_creating_waits_until_it_may() -> None:
    client = boto3.client("rds", region_name="us-east-1")
    stubber = Stubber(client)
    stubber.add_response("describe_db_instances", _described("creating"), {"DBInstanceIdentifier": "copy"})
    stubber.add_client_error(
        "delete_db_instance", service_error_code="InvalidDBInstanceState", http_status_code=400,
        service_message="Instance copy is not in available state.",
    )  # fmt: skip
    stubber.add_response("describe_db_instances", _described("available"), {"DBInstanceIdentifier": "copy"})
    stubber.add_response(
        "delete_db_instance",
        {},
        {"DBInstanceIdentifier": "copy", "SkipFinalSnapshot": True, "DeleteAutomatedBackups": True},
    )
    slept: list[float] = []
    with stubber:
        assert rds.delete_drill_instance(client, "copy", "run", poll_seconds=7, sleep=slept.append) == (
            "deletion requested"
        )
    assert slept == [7]
    stubber.assert_no_pending_responses()


def test_a_copy_still_deleting_at_the_limit_is_reported_not_hidden() -> None:
    client = boto3.client("rds", region_name="us-east-1")
    stubber = Stubber(client)
    stubber.add_response("describe_db_instances", _described("deleting"), {"DBInstanceIdentifier": "copy"})
    said: list[str] = []
    with stubber:
        assert rds.wait_deleted(client, "copy", said.append, timeout_seconds=0, sleep=lambda _: None) is False
    assert said == ["copy is still deleting after 0 s; RDS will finish on its own"]
