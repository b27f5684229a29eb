"""What the RDS instance and the Aurora cluster upgrade drills share: their run, and everything done on the copy.

`drive` runs a drill: the preconditions stage (its plan), the stages that make and upgrade the copy, teardown and
the conclusion, whatever happened. `UpgradeDrill` holds what both drills do once their copy answers: the target
family's parameter groups, the facts before, AWS's SQL pre-checks, the upgrade's wait, ANALYZE, the verification,
the deletion of the groups the drill made, and the verdict (findings, must_change_first, safe_to_schedule).
The instance drill (aws_upgrade.py) and the cluster drill (aws_cluster_upgrade.py) add how their copy is made,
upgraded and torn down.
"""

from __future__ import annotations

import dataclasses
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Final, Generic, Protocol, TypeVar

import psycopg
from botocore.exceptions import BotoCoreError
from psycopg import sql

from infra.catalog import SUPPORTED_MAJOR_VERSIONS
from temporaldb import roles
from temporaldb.drills import rds
from temporaldb.drills.aws_upgrade_lifecycle import delete_drill_parameter_group
from temporaldb.drills.aws_upgrade_options import Login, Logins, UpgradeAccess, UpgradeOptions
from temporaldb.drills.aws_upgrade_plan import GroupPlan, UpgradeRefused, parameter_chunks, stack_file_name
from temporaldb.drills.aws_upgrade_targets import EngineCatalog, UpgradeTarget
from temporaldb.drills.facts import DatabaseFacts, compare, snapshot
from temporaldb.drills.report import DrillReport, Say, StageResult, first_line
from temporaldb.drills.upgrade_prechecks import BLOCKER, WARNING, Connection, Finding, Precheck, run_prechecks

REJECTED_PARAMETER_CODES: Final = frozenset({"InvalidParameterValue", "InvalidParameterCombination"})


class PlannedUpgrade(Protocol):
    """What the shared stages read of a drill's plan (UpgradePlan, ClusterUpgradePlan)."""

    @property
    def stack(self) -> str | None: ...

    @property
    def target(self) -> UpgradeTarget: ...

    @property
    def source_major(self) -> int: ...

    @property
    def target_major(self) -> int: ...


PlanT = TypeVar("PlanT", bound=PlannedUpgrade)


def access_for(access: UpgradeAccess | None, report: DrillReport) -> UpgradeAccess:
    """The logins of an applied drill; a dry run (which connects to nothing) may go without."""
    if access is not None:
        return access
    if report.applied:
        raise ValueError("an applied upgrade drill needs the logins (access)")
    no_login = Login("", None)
    return UpgradeAccess(Logins(no_login, no_login, no_login))


@dataclass
class UpgradeDrill(ABC, Generic[PlanT]):
    client: rds.Client
    options: UpgradeOptions
    access: UpgradeAccess
    report: DrillReport
    say: Say
    sleep: Callable[[float], None]
    catalog: EngineCatalog
    plan: PlanT | None = None
    findings: list[Finding] = field(default_factory=list)
    prechecks: tuple[Precheck, ...] = ()
    changes: list[str] = field(default_factory=list)
    """What to change first found along the way (a refused instance class)."""
    refused: bool = False
    """The drill stopped on a refusal (its reasons are in `changes` and the findings)."""
    address: str = ""
    port: int = 5432
    facts_before: DatabaseFacts | None = None

    # --- what each drill does its own way ---------------------------------------------------------------------

    @abstractmethod
    def make_plan(self) -> PlanT:
        """Check every precondition and plan the calls; nothing is changed."""

    @abstractmethod
    def describe_plan(self, stage: StageResult) -> None:
        """The plan into the report: planned calls, details, the stage's detail."""

    @abstractmethod
    def make_copy(self, found: PlanT) -> None:
        """The stages that make the copy, up to its answering at `address:port` with the target's groups ready."""

    @abstractmethod
    def upgrade(self, found: PlanT) -> str:
        """Ask AWS for the upgrade and wait until the copy runs the target; the stage's detail."""

    @abstractmethod
    def teardown(self, found: PlanT) -> None:
        """The teardown stage: delete what the drill made, only with this run's tag."""

    @property
    def limits(self) -> rds.Limits:
        return rds.Limits(self.options.poll_seconds, self.options.timeout_seconds, self.sleep)

    # --- preconditions ----------------------------------------------------------------------------------------

    def _plan(self) -> PlanT:
        if self.plan is None:
            raise rds.RdsDrillError("the drill has no plan")
        return self.plan

    def note_pending(self, source: str, pending_maintenance: tuple[str, ...], modified: Mapping[str, Any]) -> None:
        """The source's pending maintenance and modifications: not blocking, but the real upgrade meets them."""
        for line in pending_maintenance:
            self._finding(
                "pending_maintenance",
                WARNING,
                f"pending maintenance on {source}: {line}",
                "not blocking: apply it before the upgrade (aws rds apply-pending-maintenance-action) or expect it "
                "in a later window; the upgrade does not include it",
            )
        if modified:
            self._finding(
                "pending_modifications",
                WARNING,
                f"{source} has pending modifications {dict(modified)}",
                "the real upgrade's ApplyImmediately applies them too: apply or revert them first",
            )

    def _finding(self, check: str, severity: str, subject: str, remedy: str, database: str | None = None) -> None:
        self.findings.append(Finding(check, severity, database, subject, remedy))
        self.say(f"{severity}: {check}: {subject}")

    # --- the stages on the copy -------------------------------------------------------------------------------

    def execute(self, found: PlanT) -> None:
        report, say = self.report, self.say
        self.make_copy(found)
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
            stage.detail = self.upgrade(found)
            report.rto_seconds = round(time.perf_counter() - requested, 3)
            report.details["upgrade_seconds"] = report.rto_seconds
        with report.stage("analyze", say) as stage:
            stage.detail = self._analyze()
        with report.stage("verify", say) as stage:
            stage.detail = self._verify(found)

    def _dsn(self, login: Login, database: str | None = None) -> str:
        return self.access.dsn(login, self.address, self.port, database)

    def copy_group(self, group: GroupPlan) -> str:
        """Make the drill's target-family group, if it makes one, and copy the source group's parameters into it;
        a parameter the new family refuses becomes a blocker finding, not a crash."""
        if not group.create:
            return f"using the stack's {group.name} ({group.family})"
        rds.call(self.client, group.setup_calls()[0])
        modify = getattr(self.client, group.api.modify)
        copied = rejected = 0
        for chunk in parameter_chunks(group.parameters):
            try:
                modify(**{group.api.name_key: group.name}, Parameters=[dict(parameter) for parameter in chunk])
                copied += len(chunk)
                continue
            except self.client.exceptions.ClientError as error:
                if _error_code(error) not in REJECTED_PARAMETER_CODES:
                    raise _drill_error(group.api.modify, error) from error
            for parameter in chunk:  # the family refused one of them: find which, one at a time
                try:
                    modify(**{group.api.name_key: group.name}, Parameters=[dict(parameter)])
                    copied += 1
                except self.client.exceptions.ClientError as error:
                    if _error_code(error) not in REJECTED_PARAMETER_CODES:
                        raise _drill_error(group.api.modify, error) from error
                    rejected += 1
                    self._reject(group, parameter, error)
        counted = self.report.details.setdefault("parameters_copied", 0)
        self.report.details["parameters_copied"] = counted + copied
        return (
            f"created {group.name} in {group.family}; {copied} of {len(group.parameters)} parameters of "
            f"{group.source_group} copied" + (f", {rejected} refused by {group.family}" if rejected else "")
        )

    def _reject(self, group: GroupPlan, parameter: Mapping[str, str], error: Any) -> None:
        name, value = parameter["ParameterName"], parameter["ParameterValue"]
        message = error.response.get("Error", {}).get("Message", str(error))
        self._finding(
            "parameter_group",
            BLOCKER,
            f"parameter {name}={value} of {group.source_group} is refused by {group.family}: "
            f"{_error_code(error)}: {message}",
            f"{group.api.defined_in}: drop or change {name} for {group.family} (pulumi up creates the new family's "
            "group with it, and would fail)",
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

    def _prechecks(self, found: PlanT) -> str:
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

    def _verify(self, found: PlanT) -> str:
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

    def delete_groups(self, groups: list[GroupPlan], problems: list[str]) -> None:
        """Delete the groups the drill made (only with this run's tag), unless the copy that uses them is still
        there (`problems` has an instance or a cluster left): deleting would only wait out the time limit."""
        made = [group for group in groups if group.create]
        copy_left = any(problem.startswith(("instance ", "cluster ")) for problem in problems)
        for group in made:
            if copy_left:
                problems.append(f"{group.api.kind} {group.name}: kept while the copy exists")
                continue
            delete = partial(delete_drill_parameter_group, self.client, group.name, self.report.run_id, group.api)
            try:
                if self.retry(delete, group.name):
                    self.report.torn_down.append(f"rds {group.api.kind} {group.name}")
            except (rds.RdsDrillError, self.client.exceptions.ClientError, BotoCoreError) as error:
                problems.append(f"{group.api.kind} {group.name}: {error}")

    def retry(self, action: Callable[[], bool], what: str) -> bool:
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

    def left_behind(self, problems: list[str]) -> None:
        """Fail the teardown stage, naming what is left, if anything is."""
        if problems:
            self.report.details["left_behind"] = problems
            raise rds.RdsDrillError(
                f"teardown left drill resources tagged {rds.DRILL_TAG}={self.report.run_id}: " + "; ".join(problems)
            )

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


def drive(drill: UpgradeDrill[PlanT]) -> None:
    """The whole drill; raises on failure (UpgradeRefused on a refusal) after teardown. The report fills in as it
    goes; without `report.applied`, only the preconditions run and the planned calls are said and recorded."""
    report, say = drill.report, drill.say
    try:
        with report.stage("preconditions", say) as stage:
            try:
                drill.plan = found = drill.make_plan()
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
