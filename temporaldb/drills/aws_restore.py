"""The restore drill against RDS: restore a tagged copy of the stack's instance, verify it over SQL, delete it.

Stages: preconditions, record_facts, wait_restorable, restore, wait_available,
verify, then teardown, which runs whatever happened (failure, Ctrl-C) and
deletes only instances carrying this run's drill tag.

Without `--restore-time` or `--snapshot`, the drill records the source's facts
(schema version and checksum, row counts, canary as-of answers) in one
snapshot, waits until RDS can restore to that very moment, and restores to it:
the copy must then match exactly. With an earlier `--restore-time` (or a
snapshot), only the schema must match; counts and answers are reported.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.conninfo import make_conninfo

from temporaldb.drills import rds
from temporaldb.drills.facts import DatabaseFacts, compare, snapshot
from temporaldb.drills.report import DrillReport, Say, iso, utc_now

APPLICATION_NAME = "temporaldb restore drill"
KIND = "restore"


@dataclass(frozen=True)
class SqlAccess:
    """How the drill reaches the source and its copy over SQL (a login role of the model; reading suffices)."""

    user: str
    password: str | None
    database: str = "nba_temporal"
    host: str | None = None
    """Reach the source here instead of its address (the local end of an SSM tunnel)."""
    port: int | None = None
    copy_host: str | None = None
    """Reach the drill's copy here instead of its address (a second tunnel)."""
    copy_port: int | None = None
    sslmode: str = "require"
    application_name: str = APPLICATION_NAME
    """Shown in pg_stat_activity (the upgrade drill names itself)."""
    connect_timeout: int = 15
    """Seconds; the Aurora drills wait longer (a paused Serverless v2 instance resumes on the first connection)."""

    def dsn(self, address: str, port: int, *, copy: bool = False) -> str:
        host, override = (self.copy_host, self.copy_port) if copy else (self.host, self.port)
        return make_conninfo(
            "",
            host=host or address,
            port=str(override or port),
            dbname=self.database,
            user=self.user,
            password=self.password or "",
            sslmode=self.sslmode,
            connect_timeout=str(self.connect_timeout),
            application_name=self.application_name,
        )


@dataclass(frozen=True)
class RestoreOptions:
    instance: str | None = None
    stack: str | None = None
    restore_time: dt.datetime | None = None
    snapshot: str | None = None
    poll_seconds: float = 30.0
    timeout_seconds: float = 3 * 3600.0
    restorable_timeout_seconds: float = 15 * 60.0
    """How long to wait for RDS to be able to restore to the moment the facts were recorded (about 5 min)."""
    cluster: str | None = None
    """An Aurora cluster as the source (temporaldb/drills/aws_cluster_restore.py)."""
    clone: bool = False
    """Aurora: a copy-on-write clone of the latest restorable time instead of a full copy."""

    @property
    def exact(self) -> bool:
        """Whether the copy must match the recorded facts exactly (no older --restore-time, no --snapshot)."""
        return self.restore_time is None and self.snapshot is None


@dataclass(frozen=True)
class SourceFacts:
    """The source's facts as the drill recorded them, and the moments that go with them."""

    facts: DatabaseFacts
    started_at: dt.datetime
    """When the source's server started: a copy that reports the same start is the source itself."""
    seen_at: dt.datetime
    """The source's clock as the facts were read: the moment the copy is restored to."""
    restorable: dt.datetime | None
    """What RDS could restore to at that moment (its LatestRestorableTime)."""


LatestRestorable = Callable[[], "dt.datetime | None"]
"""Reads the source's LatestRestorableTime now."""


@dataclass(frozen=True)
class RestoreRun:
    """One restore drill as its stages see it (instance or cluster): where it reports, how it reaches SQL, waits."""

    report: DrillReport
    say: Say
    options: RestoreOptions
    access: SqlAccess
    sleep: Callable[[float], None] = time.sleep

    @property
    def limits(self) -> rds.Limits:
        return rds.Limits(self.options.poll_seconds, self.options.timeout_seconds, self.sleep)


def server_started_at(dsn: str) -> dt.datetime:
    """When the server behind `dsn` started: tells a copy from its source (a physical copy keeps the rest)."""
    with psycopg.connect(dsn) as connection:
        row = connection.execute("select pg_postmaster_start_time()").fetchone()
    if row is None or not isinstance(row[0], dt.datetime):
        raise rds.RdsDrillError("pg_postmaster_start_time() gave no answer")
    return row[0]


def login_secret(secrets: Any, stack: str, role: str) -> tuple[str, str]:
    """(user, password) of a login role from the stack's secret `temporaldb-<stack>/<role>-*` (Pulumi made it)."""
    prefix = f"{rds.PROJECT}-{stack}/{role}-"
    found = [
        entry["ARN"]
        for page in secrets.get_paginator("list_secrets").paginate(Filters=[{"Key": "name", "Values": [prefix]}])
        for entry in page["SecretList"]
        if str(entry.get("Name", "")).startswith(prefix)
    ]
    if len(found) != 1:
        raise rds.PreconditionError(f"expected one secret named {prefix}*, found {len(found)}; pass --secret-id")
    return read_login(secrets, str(found[0]))


def read_login(secrets: Any, secret_id: str) -> tuple[str, str]:
    value = json.loads(secrets.get_secret_value(SecretId=secret_id)["SecretString"])
    return str(value["username"]), str(value["password"])


def plan(client: Any, options: RestoreOptions, run_id: str) -> tuple[rds.SourceInstance, str, rds.PlannedCall]:
    """Find the source and check every precondition; nothing is changed."""
    source = rds.find_source(client, identifier=options.instance, stack=options.stack)
    if options.clone:
        raise rds.PreconditionError(f"--clone copies an Aurora cluster; {source.identifier} is an RDS instance")
    status = client.describe_db_instances(DBInstanceIdentifier=source.identifier)["DBInstances"][0]
    if status.get("DBInstanceStatus") != "available":
        raise rds.PreconditionError(f"{source.identifier} is {status.get('DBInstanceStatus')!r}, not available")
    target = rds.drill_identifier(source.identifier, KIND, run_id)
    rds.refuse_reused_run(client, run_id)
    if options.snapshot is None and source.backup_retention_days == 0:
        raise rds.PreconditionError(f"{source.identifier} keeps no automated backups (retention 0): nothing to restore")
    if options.restore_time is not None:
        rds.check_restore_time(client, source, options.restore_time)
    if options.snapshot:
        snapshots = client.describe_db_snapshots(DBSnapshotIdentifier=options.snapshot)["DBSnapshots"]
        if not snapshots or snapshots[0].get("Status") != "available":
            raise rds.PreconditionError(f"snapshot {options.snapshot} is not available")
    call = rds.restore_call(
        source,
        target,
        rds.drill_tags(source, KIND, run_id),
        restore_time=options.restore_time,
        snapshot=options.snapshot,
    )
    return source, target, call


def run(
    client: Any,
    options: RestoreOptions,
    access: SqlAccess,
    report: DrillReport,
    *,
    say: Say,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """The whole drill; raises on failure after teardown. `report` is filled in as it goes."""
    with report.stage("preconditions", say) as stage:
        source, target, call = plan(client, options, report.run_id)
        delete = (
            f"rds.delete_db_instance(DBInstanceIdentifier={target!r}, SkipFinalSnapshot=True, "
            f"DeleteAutomatedBackups=True)  # only if tagged {rds.DRILL_TAG}={report.run_id}"
        )
        report.planned_calls = [call.render(), delete]
        # RDS addresses are <identifier>.<account and region hash>.<region>.rds.amazonaws.com.
        copy_address = source.address.replace(source.identifier, target, 1)
        report.details.update(source=source.identifier, drill_instance=target, drill_address=copy_address)
        stage.detail = f"source {source.identifier} ({source.engine} {source.engine_version}), copy {target}"
        say(f"the copy will answer at {copy_address}:{source.port} (run id {report.run_id})")
    if not report.applied:
        for line in report.planned_calls:
            say(f"would call {line}")
        return
    drill = _Drill(client, RestoreRun(report, say, options, access, sleep), source, target)
    try:
        drill.restore_and_verify(call)
    finally:
        drill.teardown()


@dataclass(frozen=True)
class _Drill:
    client: Any
    run: RestoreRun
    source: rds.SourceInstance
    target: str

    def restore_and_verify(self, call: rds.PlannedCall) -> None:
        report, say, source, options = self.run.report, self.run.say, self.source, self.run.options
        before = record_source_facts(self.run, source.address, source.port, self._latest_restorable)
        if options.exact:
            wait_restorable(self.run, self._latest_restorable, before.seen_at, source.identifier)
            call = pinned(call, "RestoreTime", before.seen_at)
        with report.stage("restore", say) as stage:
            requested = time.perf_counter()
            report.changed = True  # from here on, a failure leaves something to tear down
            rds.call(self.client, call)
            stage.detail = call.render()
        with report.stage("wait_available", say) as stage:
            instance = rds.wait_available(
                self.client,
                self.target,
                say,
                **self.run.limits.kwargs(),
            )
            endpoint = instance.get("Endpoint") or {}
            stage.detail = f"{self.target} available at {endpoint.get('Address')}"
        address, port = str(endpoint.get("Address", "")), int(endpoint.get("Port") or source.port)
        verify_copy(self.run, self.run.access.dsn(address, port, copy=True), before, requested)

    def _latest_restorable(self) -> dt.datetime | None:
        described = self.client.describe_db_instances(DBInstanceIdentifier=self.source.identifier)
        latest = described["DBInstances"][0].get("LatestRestorableTime")
        return latest if isinstance(latest, dt.datetime) else None

    def teardown(self) -> None:
        """Delete the copy, and only it, once its restore was asked for; wait (bounded) until it is gone."""
        report = self.run.report
        with report.stage("teardown", self.run.say) as stage:
            if not report.changed:
                stage.detail = "nothing was created"
                return
            outcome = rds.delete_drill_instance(
                self.client,
                self.target,
                report.run_id,
                **self.run.limits.kwargs(),
            )
            if outcome == "already gone":
                stage.detail = f"{self.target} did not exist"
                return
            gone = rds.wait_deleted(
                self.client,
                self.target,
                self.run.say,
                **self.run.limits.kwargs(),
            )
            report.torn_down.append(f"rds instance {self.target} ({'deleted' if gone else 'deleting'})")
            stage.detail = ", ".join(report.torn_down)


# --- the stages the instance and the cluster restore share ------------------------------------------------------


def record_source_facts(run: RestoreRun, address: str, port: int, latest_restorable: LatestRestorable) -> SourceFacts:
    """The `record_facts` stage: the source's facts between two loads, by the server's clock (RDS restores by the
    server's commit times), with what RDS could restore to at that moment."""
    report = run.report
    with report.stage("record_facts", run.say) as stage:
        source_dsn = run.access.dsn(address, port)
        started_at = server_started_at(source_dsn)
        restorable = latest_restorable()
        facts = snapshot(source_dsn, between_loads=True)
        seen_at = facts.taken_at or utc_now()
        stage.detail = f"{_summary(facts)} at {iso(seen_at)}"
        report.details["facts_before"] = facts.to_dict()
    return SourceFacts(facts, started_at, seen_at, restorable)


def wait_restorable(run: RestoreRun, latest_restorable: LatestRestorable, moment: dt.datetime, source: str) -> None:
    """The `wait_restorable` stage: RDS restores to at most LatestRestorableTime, which trails the present by about
    five minutes; wait (bounded) until it reaches `moment`."""
    options = run.options
    with run.report.stage("wait_restorable", run.say) as stage:
        deadline = time.monotonic() + options.restorable_timeout_seconds
        while (latest := latest_restorable()) is not None and latest < moment:
            if time.monotonic() >= deadline:
                raise rds.RdsDrillError(
                    f"{source} still cannot restore to {iso(moment)} (latest restorable {iso(latest)}) after "
                    f"{options.restorable_timeout_seconds:.0f} s"
                )
            run.say(f"waiting for RDS to be able to restore to {iso(moment)} (now {iso(latest)})")
            run.sleep(min(options.poll_seconds, 60.0))
        stage.detail = f"RDS can restore to {iso(moment)}"


def pinned(call: rds.PlannedCall, time_parameter: str, moment: dt.datetime) -> rds.PlannedCall:
    """`call` restoring to `moment` (`time_parameter`: RestoreTime for an instance, RestoreToTime for a cluster)
    instead of to the latest restorable time."""
    params = {key: value for key, value in call.params.items() if key != "UseLatestRestorableTime"}
    return rds.PlannedCall(call.operation, {**params, time_parameter: moment}, call.why)


def verify_copy(
    run: RestoreRun, dsn: str, before: SourceFacts, requested: float, *, also_matches: DatabaseFacts | None = None
) -> None:
    """The `verify` stage: the copy (reached through `dsn`) holds the recorded facts: exactly, in the default mode;
    the schema only, after an older --restore-time or a snapshot. RTO (request to verified) and RPO go into the
    report. `also_matches`: other facts of the source the copy may hold instead (a clone's moment is AWS's choice)."""
    report, options = run.report, run.options
    with report.stage("verify", run.say) as stage:
        if server_started_at(dsn) == before.started_at:
            raise rds.RdsDrillError(
                "the copy's connection reaches the source itself (same server): give the copy its own tunnel "
                "(--copy-db-host/--copy-db-port) or run from inside the VPC"
            )
        facts = before.facts
        copy = snapshot(dsn, questions=facts.questions)
        report.details["facts_after"] = copy.to_dict()
        exact = options.exact
        differences = compare(facts, copy) if exact else _schema_differences(facts, copy)
        matched = "matches the source exactly"
        if differences and also_matches is not None and not compare(also_matches, copy):
            differences, matched = [], "matches the source as of the clone request (a load committed meanwhile)"
        report.details["differences"] = differences
        report.rto_seconds = round(time.perf_counter() - requested, 3)
        restored_to = before.restorable if exact else options.restore_time
        report.rpo_seconds = _rpo(before.seen_at, restored_to, options.snapshot)
        if differences:
            raise rds.RdsDrillError(f"the copy differs from the source: {'; '.join(differences[:5])}")
        report.verified = True
        stage.detail = (matched if exact else "schema matches") + f"; {_summary(copy)}"


def _rpo(seen_at: dt.datetime, restore_time: dt.datetime | None, snapshot_id: str | None) -> float | None:
    """Data at risk: from the restore point to the latest write seen on the source.

    In the default mode the copy is restored to the moment the facts were read,
    so the figure is what RDS could restore to at that moment (LatestRestorableTime
    trails it by about five minutes): what a failure then would have lost.
    """
    if snapshot_id or restore_time is None:
        return None
    return round(max((seen_at - restore_time).total_seconds(), 0.0), 3)


def _schema_differences(expected: DatabaseFacts, actual: DatabaseFacts) -> list[str]:
    return [line for line in compare(expected, actual) if line.startswith("schema ")]


def _summary(facts: DatabaseFacts) -> str:
    rows = sum(facts.row_counts.values())
    tables = len(facts.row_counts)
    return f"schema V{facts.schema_version:04d}, {rows:,} rows in {tables} tables, {len(facts.canaries)} canaries"
