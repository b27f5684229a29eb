"""Restore drill: prove a backup restores, verify it over SQL, measure RTO and RPO, tear the copy down.

The checklist a person follows is runbooks/restore.md; this script does its work.

    .venv/bin/python runbooks/restore_drill.py --stack dev                       # dry run: the plan only
    .venv/bin/python runbooks/restore_drill.py --stack dev --apply --report r.json
    .venv/bin/python runbooks/restore_drill.py --local --apply --report r.json   # no AWS: local PITR

Against RDS it restores a copy of the stack's instance (to the moment it
records the facts, to --restore-time, or from --snapshot) with the stack's
subnet group, security groups and parameter group, tagged with this run's
drill tag; verifies schema, row counts and canary as-of answers through SQL;
and deletes the copy (only instances carrying this run's tag), also after a
failure or Ctrl-C. It never changes the source instance.

A stack that runs Aurora (or --cluster) gets the same drill on a copy of its
cluster: restore_db_cluster_to_point_in_time (a full copy to the same moment
or to --restore-time, or a copy-on-write clone with --clone) with the stack's
subnet group, security groups, cluster parameter group and Serverless v2
scaling, plus a writer instance; teardown deletes the writer, then the copy.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

try:
    import psycopg  # noqa: F401 (probes that the project's packages are importable)

    import temporaldb  # noqa: F401
except ModuleNotFoundError:  # started with a Python outside the project's .venv: switch to it
    _VENV = Path(__file__).resolve().parent.parent / ".venv"
    if not (_VENV / "bin" / "python").exists() or Path(sys.prefix).resolve() == _VENV.resolve():
        raise SystemExit("the drills need the project's .venv: run `make setup` first") from None
    os.execv(_VENV / "bin" / "python", [str(_VENV / "bin" / "python"), *sys.argv])

import argparse
import datetime as dt
import tempfile
from collections.abc import Sequence

from temporaldb.drills import runbook
from temporaldb.drills.report import DrillReport


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="restore_drill.py",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        epilog=runbook.EXIT_CODES_HELP,
    )
    runbook.add_common_arguments(parser)
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--restore-time",
        type=_moment,
        help="point in time to restore to (ISO 8601 with offset); default: the moment the facts are recorded",
    )
    source.add_argument("--snapshot", help="restore from this DB snapshot instead of a point in time")
    source.add_argument(
        "--clone",
        action="store_true",
        help="Aurora: a copy-on-write clone of the latest restorable time instead of a full copy",
    )
    return parser


def _moment(text: str) -> dt.datetime:
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 time such as 2026-11-26T03:00:00Z") from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no UTC offset; add Z or +00:00")
    return moment


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    runbook.check_common(parser, args)
    if args.local and (args.restore_time or args.snapshot or args.clone):
        parser.error(
            "--local restores to a moment it chooses between two writes; drop --restore-time/--snapshot/--clone"
        )
    from temporaldb.drills.rds import new_run_id  # noqa: PLC0415 (keeps --help fast)

    report = DrillReport("restore", "local" if args.local else "aws", args.run_id or new_run_id(), args.apply)
    code = runbook.execute(report, lambda: _local(args, report) if args.local else _aws(args, report), args.report)
    print(_result_line(report, code))
    return code


def _aws(args: argparse.Namespace, report: DrillReport) -> None:
    from temporaldb.drills import aws_cluster_restore, aws_restore, rds_cluster  # noqa: PLC0415

    rds_client, secrets_client = runbook.aws_clients(args, "rds", "secretsmanager")
    if args.secret_id:
        user, password = aws_restore.read_login(secrets_client, args.secret_id)
    elif args.stack:
        user, password = aws_restore.login_secret(secrets_client, args.stack, "analyst")
    else:
        named = "--cluster" if args.cluster else "--instance"
        raise runbook.Refused(f"with {named}, pass --secret-id (the SQL login the drill verifies with)")
    options = aws_restore.RestoreOptions(
        instance=args.instance,
        stack=args.stack,
        restore_time=args.restore_time,
        snapshot=args.snapshot,
        poll_seconds=args.poll_seconds,
        timeout_seconds=args.timeout_minutes * 60,
        cluster=args.cluster,
        clone=args.clone,
    )
    access = aws_restore.SqlAccess(
        user, password, args.database, args.db_host, args.db_port, args.copy_db_host, args.copy_db_port
    )
    cluster = rds_cluster.drills_cluster(rds_client, cluster=args.cluster, instance=args.instance, stack=args.stack)
    engine = aws_cluster_restore if cluster else aws_restore
    engine.run(rds_client, options, access, report, say=runbook.say)


CLUSTERS = "source and restored clusters"
LOCAL_PLAN = (
    "start a PostgreSQL 18 cluster with WAL archiving, apply the role model",
    "take a base backup (pg_basebackup), then load season A as etl",
    "record the facts and the restore target T, then load season B",
    "archive the WAL, restore the base backup to T into a second cluster",
    "verify: exactly season A is there, the source still has both; tear both clusters down",
)


def _local(args: argparse.Namespace, report: DrillReport) -> None:
    from temporaldb.drills import local_restore  # noqa: PLC0415

    if not args.apply:
        runbook.say_plan(LOCAL_PLAN)
        return
    work_dir = args.work_dir or Path(tempfile.gettempdir())
    tracked = runbook.LocalRun(report, CLUSTERS)
    try:  # the stages go straight into the report: an interrupted drill's are there too
        result = local_restore.run(
            work_dir, runbook.say, keep=args.keep, stages=report.stages, on_change=tracked.changed
        )
    except BaseException:
        tracked.ended()
        raise
    report.verified = result.verified
    report.rto_seconds = result.rto_seconds
    report.rpo_seconds = result.rpo_seconds
    report.details = result.to_dict()
    tracked.ended()


def _result_line(report: DrillReport, code: int) -> str:
    if not report.applied:
        return f"restore drill {report.mode}: dry run, nothing changed (add --apply to run it)"
    state = "verified" if report.verified else runbook.failure_state(report)
    figures = f"rto_seconds={report.rto_seconds} rpo_seconds={report.rpo_seconds}"
    return f"restore drill {report.mode} {report.run_id}: {state}; {figures}; exit {code}"


if __name__ == "__main__":
    sys.exit(main())
