"""The major-version upgrade drill against RDS: upgrade a tagged copy of the stack's instance, verify it, delete it.

Stages (each timed in the report):

    preconditions    `plan()`: the source, a valid major-version target, the target's parameter group family, the
                     instance class on the target, pending maintenance, the stack's target-family group; no change
    snapshot         a manual snapshot of the source, tagged with this run's drill tag (on a Single-AZ source this
                     briefly suspends I/O, as every snapshot does)
    restore          the copy, from that snapshot, with the stack's subnet group, security groups and parameter group
    wait_available   the copy answers
    parameter_group  the stack's group of the target family if there is one, else `<copy>-params` in that family,
                     tagged, with the source group's user-modified parameters (a parameter the new family refuses
                     becomes a finding, not a crash)
    record_facts     schema version and checksum, row counts, canary as-of answers of the copy (analyst login)
    prechecks        the SQL pre-checks AWS documents, on the copy (master login); a blocker stops the drill here
    upgrade          `modify_db_instance(EngineVersion, AllowMajorVersionUpgrade, DBParameterGroupName,
                     ApplyImmediately)`, wait until available, check the copy runs the target version
    analyze          `ANALYZE` of the model's tables (migrator login: its group owns them)
    verify           the copy's server runs the target major and its facts equal those before
    teardown         deletes the copy (only if it carries this run's tag) and waits until it is gone, then the drill's
                     snapshot and parameter group (only if they carry this run's tag); runs on failure and Ctrl-C too

The drill never changes the source (the snapshot aside). SQL reaches only the copy, through
`UpgradeAccess.copy_host/copy_port` when a tunnel stands in for its private address.

The describe calls about engine versions and maintenance go through an `EngineCatalog`, the seam tests replace
(`run(catalog=...)`, by default `EngineCatalog(client)`, the same RDS client): see aws_upgrade_targets.

This module runs the stages (`run` and the `_Drill` behind it); the rest of the drill is in:

    aws_upgrade_options    `UpgradeOptions`, the logins (`read_logins`) and `UpgradeAccess` to the copy
    aws_upgrade_targets    `EngineCatalog` (the seam for what the emulator lacks) and `choose_target`
    aws_upgrade_plan       `plan()`, `UpgradePlan` and `UpgradeRefused`
    aws_upgrade_lifecycle  the waits (snapshot, upgrade) and the tag-checked deletions
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Final

import psycopg
from botocore.exceptions import BotoCoreError
from psycopg import sql

from infra.catalog import SUPPORTED_MAJOR_VERSIONS
from temporaldb import roles
from temporaldb.drills import rds
from temporaldb.drills.aws_upgrade_lifecycle import (
    delete_drill_parameter_group,
    delete_drill_snapshot,
    wait_snapshot,
    wait_upgraded,
)
from temporaldb.drills.aws_upgrade_options import Login, Logins, UpgradeAccess, UpgradeOptions
from temporaldb.drills.aws_upgrade_plan import (
    UpgradePlan,
    UpgradeRefused,
    parameter_chunks,
    plan,
    render,
    stack_file_name,
)
from temporaldb.drills.aws_upgrade_targets import EngineCatalog
from temporaldb.drills.facts import DatabaseFacts, compare, snapshot
from temporaldb.drills.report import DrillReport, Say, StageResult, first_line
from temporaldb.drills.upgrade_prechecks import BLOCKER, WARNING, Connection, Finding, Precheck, run_prechecks

REJECTED_PARAMETER_CODES: Final = frozenset({"InvalidParameterValue", "InvalidParameterCombination"})

# Stage names, in the order they run.
STAGES: Final = (
    "preconditions", "snapshot", "restore", "wait_available", "parameter_group", "record_facts", "prechecks",
    "upgrade", "analyze", "verify", "teardown",
)  # fmt: skip


def run(
    client: rds.Client,
    options: UpgradeOptions,
    access: UpgradeAccess | None,
    report: DrillReport,
    *,
    say: Say,
    sleep: Callable[[float], None] = time.sleep,
    catalog: EngineCatalog | None = None,
) -> None:
    """The whole drill; raises on failure (UpgradeRefused on a refusal) after teardown. `report` fills in as it goes.

    Without `report.applied`, only the preconditions run and the planned calls are said and recorded; `access`
    (the logins) may then be None.
    """
    if access is None and report.applied:
        raise ValueError("an applied upgrade drill needs the logins (access)")
    no_login = Login("", None)
    dry = UpgradeAccess(Logins(no_login, no_login, no_login))  # never used: a dry run connects to nothing
    drill = _Drill(client, options, access or dry, report, say, sleep, catalog or EngineCatalog(client))
    try:
        with report.stage("preconditions", say) as stage:
            try:
                drill.plan = found = plan(client, options, report.run_id, catalog=drill.catalog)
            except UpgradeRefused as refusal:
                drill.refused = True
                drill.changes.extend(refusal.must_change_first)
                raise
            drill.describe_plan(stage)
        if not report.applied:
            for line in report.planned_calls:
                say(f"would call {line}")
            return
        try:
            drill.execute(found)
        finally:
            drill.teardown(found)
    finally:
        drill.conclude()


@dataclass
class _Drill:
    client: rds.Client
    options: UpgradeOptions
    access: UpgradeAccess
    report: DrillReport
    say: Say
    sleep: Callable[[float], None]
    catalog: EngineCatalog
    plan: UpgradePlan | None = None
    findings: list[Finding] = field(default_factory=list)
    prechecks: tuple[Precheck, ...] = ()
    changes: list[str] = field(default_factory=list)
    """What to change first found along the way (a refused instance class)."""
    refused: bool = False
    """The drill stopped on a refusal (its reasons are in `changes` and the findings)."""
    address: str = ""
    port: int = 5432
    facts_before: DatabaseFacts | None = None

    # --- preconditions ----------------------------------------------------------------------------------------

    def describe_plan(self, stage: StageResult) -> None:
        found, report, say = self._plan(), self.report, self.say
        source = found.source
        report.planned_calls = [render(call) for call in found.calls]
        copy_address = source.address.replace(source.identifier, found.copy, 1)
        report.details.update(
            source=source.identifier,
            source_version=source.engine_version,
            target_version=found.target.version,
            target_family=found.target_family,
            drill_instance=found.copy,
            drill_snapshot=found.snapshot,
            drill_address=copy_address,
            parameter_group=found.parameter_group,
            parameter_group_created=found.create_parameter_group,
            pending_maintenance=list(found.pending_maintenance),
            pending_modified_values=dict(found.pending_modified_values),
        )
        for line in found.pending_maintenance:
            self._finding(
                "pending_maintenance",
                WARNING,
                f"pending maintenance on {source.identifier}: {line}",
                "not blocking: apply it before the upgrade (aws rds apply-pending-maintenance-action) or expect it "
                "in a later window; the upgrade does not include it",
            )
        if found.pending_modified_values:
            self._finding(
                "pending_modifications",
                WARNING,
                f"{source.identifier} has pending modifications {dict(found.pending_modified_values)}",
                "the real upgrade's ApplyImmediately applies them too: apply or revert them first",
            )
        group = (
            f"creates {found.parameter_group} in {found.target_family} with {len(found.parameters)} parameters "
            f"of {source.parameter_group}"
            if found.create_parameter_group
            else f"uses the stack's {found.parameter_group} ({found.target_family})"
        )
        stage.detail = (
            f"{source.identifier} {source.engine} {source.engine_version} -> {found.target.version}; copy "
            f"{found.copy}; {group}"
        )
        say(f"the copy will answer at {copy_address}:{source.port} (run id {report.run_id})")

    def _plan(self) -> UpgradePlan:
        if self.plan is None:
            raise rds.RdsDrillError("the drill has no plan")
        return self.plan

    def _finding(self, check: str, severity: str, subject: str, remedy: str, database: str | None = None) -> None:
        self.findings.append(Finding(check, severity, database, subject, remedy))
        self.say(f"{severity}: {check}: {subject}")

    # --- the stages -------------------------------------------------------------------------------------------

    def execute(self, found: UpgradePlan) -> None:
        report, say, options = self.report, self.say, self.options
        calls = {call.operation: call for call in found.calls}
        with report.stage("snapshot", say) as stage:
            report.changed = True  # from here a failure needs teardown
            rds.call(self.client, calls["create_db_snapshot"])
            wait_snapshot(
                self.client,
                found.snapshot,
                say,
                poll_seconds=options.poll_seconds,
                timeout_seconds=options.timeout_seconds,
                sleep=self.sleep,
            )
            stage.detail = f"snapshot {found.snapshot} of {found.source.identifier} available"
        with report.stage("restore", say) as stage:
            restore = calls["restore_db_instance_from_db_snapshot"]
            rds.call(self.client, restore)
            stage.detail = restore.render()
        with report.stage("wait_available", say) as stage:
            instance = self._wait_available(found.copy)
            endpoint = instance.get("Endpoint") or {}
            self.address = str(endpoint.get("Address", ""))
            self.port = int(endpoint.get("Port") or found.source.port)
            stage.detail = f"{found.copy} available at {self.address}"
        with report.stage("parameter_group", say) as stage:
            stage.detail = self._parameter_group(found)
        with report.stage("record_facts", say) as stage:
            version = self._server_version(found.source_major, "before the upgrade")
            self.facts_before = facts = snapshot(self._dsn(self.access.logins.analyst))
            report.details["server_version_before"] = version
            report.details["facts_before"] = facts.to_dict()
            stage.detail = f"PostgreSQL {version}; {_summary(facts)}"
        with report.stage("prechecks", say) as stage:
            stage.detail = self._prechecks(found)
        with report.stage("upgrade", say) as stage:
            requested = time.perf_counter()
            answer = rds.call(self.client, calls["modify_db_instance"])
            instance = wait_upgraded(
                self.client,
                found.copy,
                found.target.version,
                say,
                accepted=answer.get("DBInstance") or {},
                poll_seconds=options.poll_seconds,
                timeout_seconds=options.timeout_seconds,
                sleep=self.sleep,
            )
            running = str(instance.get("EngineVersion", ""))
            report.rto_seconds = round(time.perf_counter() - requested, 3)
            report.details["upgrade_seconds"] = report.rto_seconds
            groups = [g.get("DBParameterGroupName") for g in instance.get("DBParameterGroups") or ()]
            stage.detail = f"{found.copy} runs {running} with {', '.join(map(str, groups)) or 'no group'}"
        with report.stage("analyze", say) as stage:
            stage.detail = self._analyze()
        with report.stage("verify", say) as stage:
            stage.detail = self._verify(found)

    def _wait_available(self, identifier: str) -> dict[str, Any]:
        return rds.wait_available(
            self.client,
            identifier,
            self.say,
            poll_seconds=self.options.poll_seconds,
            timeout_seconds=self.options.timeout_seconds,
            sleep=self.sleep,
        )

    def _dsn(self, login: Login, database: str | None = None) -> str:
        return self.access.dsn(login, self.address, self.port, database)

    def _parameter_group(self, found: UpgradePlan) -> str:
        if not found.create_parameter_group:
            return f"using the stack's {found.parameter_group} ({found.target_family})"
        create = next(call for call in found.calls if call.operation == "create_db_parameter_group")
        rds.call(self.client, create)
        copied = rejected = 0
        for chunk in parameter_chunks(found.parameters):
            try:
                self.client.modify_db_parameter_group(
                    DBParameterGroupName=found.parameter_group, Parameters=[dict(parameter) for parameter in chunk]
                )
                copied += len(chunk)
                continue
            except self.client.exceptions.ClientError as error:
                if _error_code(error) not in REJECTED_PARAMETER_CODES:
                    raise _drill_error("modify_db_parameter_group", error) from error
            for parameter in chunk:  # the family refused one of them: find which, one at a time
                try:
                    self.client.modify_db_parameter_group(
                        DBParameterGroupName=found.parameter_group, Parameters=[dict(parameter)]
                    )
                    copied += 1
                except self.client.exceptions.ClientError as error:
                    if _error_code(error) not in REJECTED_PARAMETER_CODES:
                        raise _drill_error("modify_db_parameter_group", error) from error
                    rejected += 1
                    self._reject(found, parameter, error)
        self.report.details["parameters_copied"] = copied
        return (
            f"created {found.parameter_group} in {found.target_family}; {copied} of "
            f"{len(found.parameters)} parameters of {found.source.parameter_group} copied"
            + (f", {rejected} refused by {found.target_family}" if rejected else "")
        )

    def _reject(self, found: UpgradePlan, parameter: Mapping[str, str], error: Any) -> None:
        name, value = parameter["ParameterName"], parameter["ParameterValue"]
        message = error.response.get("Error", {}).get("Message", str(error))
        self._finding(
            "parameter_group",
            BLOCKER,
            f"parameter {name}={value} of {found.source.parameter_group} is refused by {found.target_family}: "
            f"{_error_code(error)}: {message}",
            f"components/database.py PARAMETERS: drop or change {name} for {found.target_family} (pulumi up "
            "creates the new family's group with it, and would fail)",
        )

    def _server_version(self, major: int, when: str) -> str:
        with psycopg.connect(self._dsn(self.access.logins.analyst)) as connection:
            row = connection.execute(
                "select current_setting('server_version'), current_setting('server_version_num')::int"
            ).fetchone()
        if row is None:
            raise rds.RdsDrillError("the copy did not say its version")
        if int(row[1]) // 10000 != major:
            raise rds.RdsDrillError(
                f"the copy's connection reaches PostgreSQL {row[0]} {when}, not {major}: another server answers "
                "(the source?); give the copy its own tunnel (copy host and port) or run from inside the VPC"
            )
        return str(row[0])

    def _prechecks(self, found: UpgradePlan) -> str:
        master = self.access.logins.master

        def connect(database: str) -> Connection:
            return psycopg.connect(self._dsn(master, database), autocommit=True)

        self.prechecks = run_prechecks(connect, found.source_major, None, refused_connection=WARNING)
        for check in self.prechecks:
            for finding in check.findings:
                self.findings.append(finding)
                where = f" in {finding.database}" if finding.database else ""
                self.say(f"{finding.severity}: {finding.check}: {finding.subject}{where}")
        self.report.details["prechecks"] = [dataclasses.asdict(check) for check in self.prechecks]
        found_now = [finding for check in self.prechecks for finding in check.findings]
        blockers = [finding for finding in found_now if finding.severity == BLOCKER]
        summary = (
            f"{len(self.prechecks)} checks, {len(blockers)} blockers, {len(found_now) - len(blockers)} warnings "
            f"(as {master.user})"
        )
        if blockers:
            self.refused = True
            listed = "; ".join(f"{finding.check}: {finding.subject}" for finding in blockers)
            raise UpgradeRefused(
                f"{summary}; the upgrade would fail: {listed}", [finding.remedy for finding in blockers]
            )
        return summary

    def _analyze(self) -> str:
        with psycopg.connect(self._dsn(self.access.logins.migrator), autocommit=True) as connection:
            tables = [
                sql.Identifier(str(schema), str(name))
                for schema, name in connection.execute(_OWNED_TABLES, (list(roles.MANAGED_SCHEMAS),))
            ]
            counted = connection.execute(_COLUMNS_WITH_STATISTICS, (list(roles.MANAGED_SCHEMAS),)).fetchone()
            if tables:
                connection.execute(sql.SQL("analyze {}").format(sql.SQL(", ").join(tables)))
        carried = f"{counted[0]} of {counted[1]} columns had statistics after the upgrade" if counted else ""
        self.report.details["after_upgrade"] = [
            "ANALYZE in every database (vacuumdb --all --analyze-in-stages as the master user): optimizer "
            "statistics are not carried by every major upgrade"
        ]
        return f"ANALYZE of {len(tables)} tables as {self.access.logins.migrator.user}; {carried}"

    def _verify(self, found: UpgradePlan) -> str:
        before = self.facts_before
        if before is None:
            raise rds.RdsDrillError("no facts were recorded before the upgrade")
        version = self._server_version(found.target_major, "after the upgrade")
        self.report.details["server_version_after"] = version
        after = snapshot(self._dsn(self.access.logins.analyst), questions=before.questions)
        self.report.details["facts_after"] = after.to_dict()
        with psycopg.connect(self._dsn(self.access.logins.analyst)) as connection:
            stale = connection.execute(
                "select name, installed_version, default_version from pg_available_extensions"
                " where installed_version is not null and installed_version <> default_version order by 1"
            ).fetchall()
        self.report.details.setdefault("after_upgrade", []).extend(
            f"in {self.access.database}: ALTER EXTENSION {name} UPDATE ({installed} -> {default})"
            for name, installed, default in stale
        )
        differences = compare(before, after)
        self.report.details["differences"] = differences
        if differences:
            raise rds.RdsDrillError(f"the upgraded copy differs: {'; '.join(differences[:5])}")
        self.report.verified = True
        return f"PostgreSQL {version}; every fact equal ({_summary(after)})"

    # --- teardown and conclusion ------------------------------------------------------------------------------

    def teardown(self, found: UpgradePlan) -> None:
        """Delete the copy, wait until it is gone, then the snapshot and the group; each only with this run's tag."""
        report, run_id, options = self.report, self.report.run_id, self.options
        with report.stage("teardown", self.say) as stage:
            problems: list[str] = []
            try:
                outcome = rds.delete_drill_instance(
                    self.client,
                    found.copy,
                    run_id,
                    poll_seconds=options.poll_seconds,
                    timeout_seconds=options.timeout_seconds,
                    sleep=self.sleep,
                )
                if outcome != "already gone":
                    gone = rds.wait_deleted(
                        self.client,
                        found.copy,
                        self.say,
                        poll_seconds=options.poll_seconds,
                        timeout_seconds=options.timeout_seconds,
                        sleep=self.sleep,
                    )
                    report.torn_down.append(f"rds instance {found.copy}")
                    if not gone:
                        problems.append(f"instance {found.copy} is still deleting")
            except (rds.RdsDrillError, self.client.exceptions.ClientError, BotoCoreError) as error:
                problems.append(f"instance {found.copy}: {error}")
            try:
                if self._retry(partial(delete_drill_snapshot, self.client, found.snapshot, run_id), found.snapshot):
                    report.torn_down.append(f"rds snapshot {found.snapshot}")
            except (rds.RdsDrillError, self.client.exceptions.ClientError, BotoCoreError) as error:
                problems.append(f"snapshot {found.snapshot}: {error}")
            if found.create_parameter_group and problems and problems[0].startswith("instance "):
                # Still attached to a copy that is not gone: deleting it would only wait out the time limit.
                problems.append(f"parameter group {found.parameter_group}: kept while {found.copy} exists")
            elif found.create_parameter_group:
                name = found.parameter_group
                try:
                    if self._retry(partial(delete_drill_parameter_group, self.client, name, run_id), name):
                        report.torn_down.append(f"rds parameter group {name}")
                except (rds.RdsDrillError, self.client.exceptions.ClientError, BotoCoreError) as error:
                    problems.append(f"parameter group {name}: {error}")
            stage.detail = ", ".join(report.torn_down) or "nothing to remove"
            if problems:
                report.details["left_behind"] = problems
                raise rds.RdsDrillError(
                    f"teardown left drill resources tagged {rds.DRILL_TAG}={run_id}: " + "; ".join(problems)
                )

    def _retry(self, action: Callable[[], bool], what: str) -> bool:
        """Run a deletion, waiting while AWS answers that the resource is busy (a snapshot in progress, a group
        still attached to an instance being deleted)."""
        busy = (
            self.client.exceptions.InvalidDBSnapshotStateFault,
            self.client.exceptions.InvalidDBParameterGroupStateFault,
        )
        deadline = time.monotonic() + self.options.timeout_seconds
        while True:
            try:
                return action()
            except busy as error:
                if time.monotonic() >= deadline:
                    raise
                self.say(f"{what} cannot be deleted yet ({_error_code(error)}); retrying")
                self.sleep(self.options.poll_seconds)

    def conclude(self) -> None:
        """Findings, must_change_first and safe_to_schedule into the report's details (after failures too)."""
        report = self.report
        blockers = [finding for finding in self.findings if finding.severity == BLOCKER]
        changes = [*(finding.remedy for finding in blockers), *self.changes]
        if report.failed_stage not in (None, "teardown") and not self.refused:
            changes.append(f"fix what failed at {report.failed_stage}: {first_line(report.error or '')}")
        found = self.plan
        if found is not None:
            major = str(found.target_major)
            stack_file = stack_file_name(found.stack)
            if major not in SUPPORTED_MAJOR_VERSIONS:
                changes.append(f'infra/catalog.py: add "{major}" to SUPPORTED_MAJOR_VERSIONS')
            changes.append(
                f'{stack_file}: temporaldb:engineVersion: "{major}" (RDS then installs its default {major}.x; '
                f"the drill rehearsed {found.target.version})"
            )
            changes.append(
                f"{stack_file}: temporaldb:allowMajorVersionUpgrade: true for that one update (it is applied at "
                "once, not in the maintenance window); set it back to false afterwards"
            )
        report.details["findings"] = [dataclasses.asdict(finding) for finding in self.findings]
        report.details["must_change_first"] = list(dict.fromkeys(changes))
        report.details["safe_to_schedule"] = report.verified and not blockers


_OWNED_TABLES: Final = """
select n.nspname, c.relname
from pg_class c join pg_namespace n on n.oid = c.relnamespace
where n.nspname = any(%s) and c.relkind in ('r', 'p', 'm') and pg_has_role(c.relowner, 'USAGE')
order by 1, 2
"""
_COLUMNS_WITH_STATISTICS: Final = """
select count(*) filter (where s.attname is not null), count(*)
from pg_attribute a
join pg_class c on c.oid = a.attrelid
join pg_namespace n on n.oid = c.relnamespace
left join pg_stats s on s.schemaname = n.nspname and s.tablename = c.relname and s.attname = a.attname
where n.nspname = any(%s) and c.relkind = 'r' and a.attnum > 0 and not a.attisdropped
"""


def _error_code(error: Any) -> str:
    return str(error.response.get("Error", {}).get("Code", "error"))


def _drill_error(operation: str, error: Any) -> rds.RdsDrillError:
    details = error.response.get("Error", {})
    return rds.RdsDrillError(f"{operation} refused: {details.get('Code', 'error')}: {details.get('Message', error)}")


def _summary(facts: DatabaseFacts) -> str:
    rows = sum(facts.row_counts.values())
    return (
        f"schema V{facts.schema_version:04d}, {rows:,} rows in {len(facts.row_counts)} tables, "
        f"{len(facts.canaries)} canaries"
    )
