"""Upgrade drill: rehearse a major-version upgrade on a copy, verify it, time each stage, tear the copy down.

The checklist a person follows is runbooks/upgrade.md; this script does its work.

    .venv/bin/python runbooks/upgrade_drill.py --stack dev --target-version 18                  # dry run
    .venv/bin/python runbooks/upgrade_drill.py --stack dev --target-version 18 --apply --report u.json
    .venv/bin/python runbooks/upgrade_drill.py --local --apply --report u.json  # 15 (or 16) -> 18, no AWS

Against RDS it snapshots the stack's instance, restores the snapshot into a
tagged copy with the stack's groups, makes sure a parameter group of the
target family exists, runs AWS's documented pre-checks, upgrades the copy
with AllowMajorVersionUpgrade, runs ANALYZE, verifies that schema, row counts
and as-of answers are unchanged, and deletes the copy, the snapshot and any
group it made. The report says whether the real upgrade is safe to schedule
and what must change first in Pulumi.<stack>.yaml. The source is never changed.

A stack that runs Aurora (or --cluster) gets the same drill on a copy-on-write
clone of its cluster with a writer: the target family's cluster (and, for a
custom one, instance) parameter group, then modify_db_cluster with
AllowMajorVersionUpgrade; teardown deletes the writer, the clone and the groups.
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
import tempfile
from collections.abc import Sequence
from typing import TYPE_CHECKING

from temporaldb.drills import runbook
from temporaldb.drills.report import DrillReport

if TYPE_CHECKING:
    from temporaldb.drills.local_upgrade import LocalUpgradeReport

LOCAL_SOURCE_MAJORS = (15, 16)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="upgrade_drill.py",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        epilog=runbook.EXIT_CODES_HELP,
    )
    runbook.add_common_arguments(parser)
    parser.add_argument("--target-version", help="AWS: the target, a major (18) or a full version (18.1)")
    parser.add_argument(
        "--source-major",
        type=int,
        choices=LOCAL_SOURCE_MAJORS,
        default=15,
        help="--local: upgrade from PostgreSQL 15 (Debian's packages) or 16 (the pgserver wheel); default 15",
    )
    parser.add_argument("--master-secret-id", help="AWS: the master login's secret (default: the source's own)")
    parser.add_argument(
        "--migrator-secret-id", help="AWS: the migrator login's secret (default: the stack's migrator secret)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    runbook.check_common(parser, args)
    if not args.local and not args.target_version:
        parser.error("--target-version is required against RDS (e.g. 18)")
    from temporaldb.drills.rds import new_run_id  # noqa: PLC0415 (keeps --help fast)

    report = DrillReport("upgrade", "local" if args.local else "aws", args.run_id or new_run_id(), args.apply)
    code = runbook.execute(report, lambda: _local(args, report) if args.local else _aws(args, report), args.report)
    if code == runbook.EXIT_OK and report.applied and report.details.get("safe_to_schedule") is False:
        runbook.say("verified, but not safe to schedule: see must_change_first in the report")
        code = runbook.EXIT_FAILED
    print(_result_line(report, code))
    return code


def _aws(args: argparse.Namespace, report: DrillReport) -> None:
    from temporaldb.drills import aws_cluster_upgrade, aws_upgrade, aws_upgrade_options, rds_cluster  # noqa: PLC0415

    rds_client, secrets_client = runbook.aws_clients(args, "rds", "secretsmanager")
    options = aws_upgrade_options.UpgradeOptions(
        instance=args.instance,
        stack=args.stack,
        target_version=args.target_version,
        poll_seconds=args.poll_seconds,
        timeout_seconds=args.timeout_minutes * 60,
        cluster=args.cluster,
    )
    cluster = rds_cluster.drills_cluster(rds_client, cluster=args.cluster, instance=args.instance, stack=args.stack)
    engine = aws_cluster_upgrade if cluster else aws_upgrade
    if not report.applied:
        engine.run(rds_client, options, None, report, say=runbook.say)  # the plan needs no login
        return
    with report.stage("read_logins", runbook.say) as stage:
        logins = aws_upgrade_options.read_logins(
            rds_client,
            secrets_client,
            options,
            cluster=cluster,
            master_secret_id=args.master_secret_id,
            analyst_secret_id=args.secret_id,
            migrator_secret_id=args.migrator_secret_id,
        )
        stage.detail = f"analyst, migrator and master ({logins.master.user}) logins read from Secrets Manager"
    # The drill only ever connects to its copy: --db-host/--db-port (the source) are not used.
    access = aws_upgrade_options.UpgradeAccess(
        logins, database=args.database, copy_host=args.copy_db_host, copy_port=args.copy_db_port
    )
    engine.run(rds_client, options, access, report, say=runbook.say)


LOCAL_PLAN = (
    "start a PostgreSQL {source} cluster, apply the role model, load one season as etl",
    "record the facts (schema, row counts and digests, canary as-of answers) and run the pre-checks",
    "initialise a PostgreSQL 18 cluster; pg_upgrade --check, then pg_upgrade (copy mode: the source stays usable)",
    "start the upgraded cluster, ANALYZE in stages, update extensions, verify the facts are unchanged",
    "restart the source to prove it is unchanged; tear both clusters down",
)


def _local(args: argparse.Namespace, report: DrillReport) -> None:
    from temporaldb.drills import local_upgrade  # noqa: PLC0415

    if not args.apply:
        runbook.say_plan([step.format(source=args.source_major) for step in LOCAL_PLAN])
        return
    work_dir = args.work_dir or Path(tempfile.gettempdir())
    try:
        local_upgrade.source_binaries(args.source_major)
    except local_upgrade.SourceBinariesError as error:
        raise runbook.Refused(str(error)) from error
    tracked = runbook.LocalRun(report, "source and upgraded clusters")
    result: LocalUpgradeReport | None = None
    try:  # the stages go straight into the report: an interrupted drill's are there too
        result = local_upgrade.run(
            work_dir, args.source_major, runbook.say, keep=args.keep, stages=report.stages, on_change=tracked.changed
        )
    except local_upgrade.UpgradeDrillFailed as error:
        result = error.report  # the partial report: findings, must_change_first
        raise
    finally:
        if result is not None:
            _copy(result, report)
        tracked.ended()
    for line in result.summary().splitlines():
        runbook.say(line)


def _copy(result: LocalUpgradeReport, report: DrillReport) -> None:
    report.verified = result.verified
    # The downtime of the real upgrade, analyze included: what a maintenance window must hold.
    report.rto_seconds = result.downtime_with_analyze_seconds
    report.rpo_seconds = None  # pg_upgrade loses no committed data
    report.failed_stage = result.failed_stage
    report.details = result.as_dict()


def _result_line(report: DrillReport, code: int) -> str:
    if not report.applied:
        return f"upgrade drill {report.mode}: dry run, nothing changed (add --apply to run it)"
    state = "verified" if report.verified else runbook.failure_state(report)
    safe = report.details.get("safe_to_schedule")
    return (
        f"upgrade drill {report.mode} {report.run_id}: {state}; safe_to_schedule={safe}; "
        f"downtime_with_analyze_seconds={report.rto_seconds}; exit {code}"
    )


if __name__ == "__main__":
    sys.exit(main())
