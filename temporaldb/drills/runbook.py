"""What the two drill scripts share: arguments, exit codes, logging, signals and the report on every exit."""

from __future__ import annotations

import argparse
import datetime as dt
import re
import signal
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any, Final

from temporaldb.drills.report import DrillReport, Terminated, describe

EXIT_OK: Final = 0
EXIT_USAGE: Final = 2
EXIT_CONNECTIVITY: Final = 3
EXIT_REFUSED: Final = 4
EXIT_FAILED: Final = 5
EXIT_CODES_HELP: Final = (
    "Exit codes: 0 verified (or dry run planned), 2 usage, 3 cannot reach AWS or the database (or bad "
    "credentials) before any change, 4 refused (by a precondition or AWS) or stopped (an error, Ctrl-C, SIGTERM) "
    "before any change: nothing was created, 5 the drill failed, was refused or was stopped after a change "
    "(teardown ran; see the report)."
)


class Refused(Exception):  # noqa: N818 (reads as what happened: `except Refused`)
    """A precondition failed before the first change."""


class Unreachable(Exception):  # noqa: N818
    """AWS or a database could not be reached."""


def say(message: str) -> None:
    """Progress and logs go to stderr; stdout carries only the result."""
    print(f"{dt.datetime.now(dt.UTC):%H:%M:%S} {message}", file=sys.stderr, flush=True)


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--apply", action="store_true", help="act; without it, print the plan and change nothing")
    parser.add_argument("--local", action="store_true", help="run the drill on local PostgreSQL servers, no AWS")
    parser.add_argument(
        "--stack", help="the stack whose RDS instance or Aurora cluster to drill (found by its tags), e.g. dev"
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--instance", help="the source RDS instance identifier (instead of --stack)")
    source.add_argument("--cluster", help="the source Aurora cluster identifier (instead of --stack)")
    parser.add_argument("--region", help="AWS region (default: the AWS configuration's)")
    parser.add_argument("--endpoint-url", help="AWS endpoint, e.g. an emulator at http://127.0.0.1:5000")
    parser.add_argument(
        "--run-id", type=_run_id, help="reuse a dry run's id (the copy's name and address follow it, for a tunnel)"
    )
    parser.add_argument("--report", type=Path, help="write the JSON report here (also on failure)")
    parser.add_argument("--work-dir", type=Path, help="--local: where the servers live (default: a temp folder)")
    parser.add_argument("--keep", action="store_true", help="--local: keep the servers' folders for inspection")
    parser.add_argument("--secret-id", help="secret holding the SQL login (default: the stack's analyst secret)")
    parser.add_argument("--db-host", help="connect here instead of the instance address (an SSM tunnel)")
    parser.add_argument("--db-port", type=int, help="with --db-host: the tunnel's local port")
    parser.add_argument("--copy-db-host", help="reach the drill's copy here (a second tunnel)")
    parser.add_argument("--copy-db-port", type=int, help="with --copy-db-host: that tunnel's local port")
    parser.add_argument("--database", default="nba_temporal", help="database to verify (default nba_temporal)")
    parser.add_argument("--poll-seconds", type=float, default=30.0, help="seconds between status polls")
    parser.add_argument("--timeout-minutes", type=float, default=180.0, help="give up waiting after this long")


def _run_id(text: str) -> str:
    if not re.fullmatch(r"\d{8}t\d{6}-[0-9a-f]{4}", text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a run id such as 20261126t041500-a1b2")
    return text


def say_plan(steps: Sequence[str]) -> None:
    """A --local dry run: the numbered steps --apply would take."""
    for number, step in enumerate(steps, start=1):
        say(f"would {number}. {step}")


def note_local_teardown(report: DrillReport, folder: Path | str | None, contents: str) -> None:
    """Say a local drill's folder is gone only if it is: a teardown that could not stop a server keeps it."""
    if folder is None:
        return
    if Path(folder).exists():
        report.details["left_behind"] = [str(folder)]  # a list, as the RDS drills report theirs
    else:
        report.torn_down.append(f"local drill folder {folder} ({contents})")


@dataclass
class LocalRun:
    """A local drill seen from its report: the engine records its stages straight into `report.stages` and calls
    `changed` when it makes its folder, so a drill stopped by anything (Ctrl-C and SIGTERM included) still reports
    where it stopped, whether it had changed anything, and what teardown removed."""

    report: DrillReport
    contents: str
    """What the drill folder holds, for `torn_down`."""
    drill_dir: Path | None = None

    def changed(self, folder: Path) -> None:
        """The engine's first change: from here a failure exits 5 (after a change), not 4."""
        self.drill_dir = folder
        self.report.changed = True

    def ended(self) -> None:
        """Whatever ended the drill: name the first stage that failed, and say whether the folder is gone."""
        if self.report.failed_stage is None:
            self.report.failed_stage = next((stage.name for stage in self.report.stages if stage.ok is False), None)
        note_local_teardown(self.report, self.drill_dir, self.contents)


def check_common(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if not args.local and not (args.stack or args.instance or args.cluster):
        parser.error("name the source: --stack STACK, --instance IDENTIFIER or --cluster IDENTIFIER (or use --local)")
    if args.db_port is not None and not args.db_host:
        parser.error("--db-port needs --db-host")
    if args.copy_db_port is not None and not args.copy_db_host:
        parser.error("--copy-db-port needs --copy-db-host")


def aws_clients(args: argparse.Namespace, *services: str) -> list[Any]:
    import boto3  # noqa: PLC0415 (only the AWS mode needs it)

    session = boto3.session.Session(region_name=args.region)
    return [session.client(service, endpoint_url=args.endpoint_url) for service in services]


def failure_state(report: DrillReport) -> str:
    """The result line's verdict for an applied drill that did not verify: where, and whether it changed anything."""
    state = f"FAILED at {report.failed_stage or 'an unknown stage'}"
    return state if report.changed else f"{state} before any change (nothing to tear down)"


class _SigtermHandler:
    """A scheduler's SIGTERM tears down like Ctrl-C does: the first one raises Terminated in the drill; later ones
    are only noted, so that they cannot cut the teardown (or the report) short."""

    def __init__(self) -> None:
        self.armed = True

    def __call__(self, _signum: int, _frame: FrameType | None) -> None:
        if not self.armed:
            say("SIGTERM again: still tearing down and writing the report (kill -9 would leave things behind)")
            return
        self.armed = False
        raise Terminated("terminated (SIGTERM)")


def execute(report: DrillReport, body: Callable[[], None], report_path: Path | None) -> int:
    """Run the drill; map what stopped it to an exit code; write the report whatever happened."""
    sigterm = _SigtermHandler()

    def drill() -> None:
        try:
            body()
        finally:
            sigterm.armed = False  # the drill (teardown included) is over: a SIGTERM now must not lose the report

    previous = signal.signal(signal.SIGTERM, sigterm)
    try:
        code = _exit_code(report, drill)
        if report_path is not None:
            report.write(report_path)
            say(f"report written to {report_path}")
    finally:
        signal.signal(signal.SIGTERM, previous)  # a caller (a test) keeps its own handling
    return code


def _exit_code(report: DrillReport, body: Callable[[], None]) -> int:
    """Run the body; what stopped it decides the code. Before the first change (`report.changed` false) nothing
    needs teardown, whatever the cause: 3 unreachable, else 4. After it, always 5: teardown ran."""
    import botocore.exceptions  # noqa: PLC0415
    import psycopg  # noqa: PLC0415

    from temporaldb.drills import rds  # noqa: PLC0415

    try:
        body()
    except (Refused, rds.PreconditionError) as error:
        return _fail(report, "refused", error, EXIT_REFUSED)
    except (
        Unreachable,
        botocore.exceptions.EndpointConnectionError,
        botocore.exceptions.NoCredentialsError,
        psycopg.OperationalError,
    ) as error:
        return _fail(report, "unreachable", error, EXIT_CONNECTIVITY)
    except botocore.exceptions.ClientError as error:
        aws_code = str(error.response.get("Error", {}).get("Code", ""))
        before_change = EXIT_CONNECTIVITY if aws_code in rds.CREDENTIAL_ERRORS else EXIT_REFUSED
        return _fail(report, "refused by AWS", error, before_change)
    except KeyboardInterrupt as error:  # Ctrl-C, or SIGTERM (Terminated)
        return _fail(report, "interrupted", error, EXIT_REFUSED)
    except Exception as error:  # any other failure, e.g. a bug: the report carries it
        return _fail(report, "failed", error, EXIT_REFUSED)
    return EXIT_FAILED if report.applied and not report.verified else EXIT_OK


def _fail(report: DrillReport, what: str, error: BaseException, before_change: int) -> int:
    """Say what stopped the drill and what teardown did; the exit code: `before_change`, or 5 after a change."""
    if report.error is None:
        report.error = describe(error)
    say(f"drill {what}: {report.error}" + (f" (stage {report.failed_stage})" if report.failed_stage else ""))
    for problem in report.details.get("also_failed", []):
        say(f"also failed: {problem}")
    if not report.changed:
        say("no change was made: nothing was created, so nothing needed tearing down")
        return before_change
    if report.torn_down:
        say(f"torn down: {', '.join(report.torn_down)}")
    for leftover in report.details.get("left_behind", []):
        say(f"LEFT BEHIND: {leftover}")
    return EXIT_FAILED
