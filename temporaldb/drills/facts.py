"""The facts of a database a drill must reproduce, and how two sets of facts differ.

Used against a local restore, an upgraded local cluster and an RDS copy: the
schema version and checksum, the exact row count of every table of `nba`, and
the answers of a few canary as-of questions. Reading them needs only the
reader role of the model.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from temporaldb.load import LOAD_LOCK_KEY
from temporaldb.migrate import history_checksum
from temporaldb.roles import DATA_SCHEMA

CANARY_MOMENT: Final = dt.datetime(2100, 1, 1, tzinfo=dt.UTC)
"""The fixed moment of the canary questions: after every event, so each answer covers everything loaded."""
CANARY_PLAYERS: Final = 3
CANARY_TEAMS: Final = 2


class SnapshotError(Exception):
    """An as-of function gave no answer to a canary question."""


SubjectKind = Literal["player", "team"]


@dataclass(frozen=True)
class CanaryQuestion:
    """One as-of question: `nba.<kind>_stats_as_of(subject_id, as_of, scope, season_type)`."""

    kind: SubjectKind
    subject_id: int
    scope: str
    season_type: str
    as_of: dt.datetime

    def describe(self) -> str:
        moment = self.as_of.astimezone(dt.UTC).isoformat(timespec="milliseconds")
        return f"{self.kind} {self.subject_id} {self.scope}/{self.season_type} as of {moment}"

    def to_dict(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "subject_id": self.subject_id,
            "scope": self.scope,
            "season_type": self.season_type,
            "as_of": self.as_of.astimezone(dt.UTC).isoformat(timespec="microseconds"),
        }


@dataclass(frozen=True)
class CanaryAnswer:
    question: CanaryQuestion
    stats: dict[str, int]

    def to_dict(self) -> dict[str, object]:
        return {**self.question.to_dict(), "stats": dict(self.stats)}


@dataclass(frozen=True)
class DatabaseFacts:
    """What a restore must reproduce exactly: schema version, row counts and canary answers."""

    database: str
    schema_version: int
    schema_checksum: str
    """SHA-256 over the applied migrations, as temporaldb.migrate.history_checksum computes it."""
    row_counts: dict[str, int]
    """Exact `count(*)` of every table of schema nba, keyed `nba.<table>`."""
    canaries: tuple[CanaryAnswer, ...]
    taken_at: dt.datetime | None = field(default=None, compare=False)
    """The server's clock inside the snapshot: the moment these facts describe (not compared)."""

    @property
    def questions(self) -> tuple[CanaryQuestion, ...]:
        """Ask these of another database (`snapshot(dsn, questions=...)`) to compare like with like."""
        return tuple(answer.question for answer in self.canaries)

    def to_dict(self) -> dict[str, object]:
        return {
            "database": self.database,
            "schema_version": self.schema_version,
            "schema_checksum": self.schema_checksum,
            "row_counts": dict(self.row_counts),
            "canaries": [answer.to_dict() for answer in self.canaries],
            "taken_at": self.taken_at.isoformat() if self.taken_at else None,
        }


_STATS: Final = (
    "games_played", "points", "fgm", "fga", "fg3m", "fg3a", "ftm", "fta", "oreb", "dreb", "rebounds",
    "assists", "steals", "blocks", "turnovers", "fouls",
)  # fmt: skip
_FUNCTIONS: Final[dict[SubjectKind, str]] = {"player": "nba.player_stats_as_of", "team": "nba.team_stats_as_of"}
_CANARY_SHAPE: Final[dict[SubjectKind, tuple[str, str, str]]] = {
    # (stat_lines.subject_kind, scope, season type): a career for players, the latest season for teams
    "player": ("p", "career", "all"),
    "team": ("t", "season", "all"),
}
_BUSIEST_SUBJECTS: Final = (
    "select subject_id from nba.stat_lines where subject_kind = %s "
    "group by subject_id order by count(*) desc, subject_id limit %s"
)
_DATA_TABLES: Final = (
    "select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace "
    "where n.nspname = %s and c.relkind in ('r', 'p') and not c.relispartition order by c.relname"
)


def snapshot(
    dsn: str,
    questions: Sequence[CanaryQuestion] | None = None,
    *,
    as_of: dt.datetime = CANARY_MOMENT,
    players: int = CANARY_PLAYERS,
    teams: int = CANARY_TEAMS,
    between_loads: bool = False,
) -> DatabaseFacts:
    """The facts of the database `dsn` names, read in one repeatable-read, read-only transaction.

    Without `questions`, the canaries are the `players` players and `teams` teams with the most stat lines
    (ties by id), asked at `as_of`; pass another snapshot's `questions` to ask a second database the same.
    `between_loads` waits for a running `temporaldb load` to commit and keeps the next one from starting
    while the facts are read (the loader's advisory lock), so `taken_at` is a moment no load straddles.
    Needs only read access (the model's reader roles suffice).
    """
    # The DSN's own connect_timeout wins: a paused Aurora Serverless v2 writer takes up to 15 s to resume.
    timeout = conninfo_to_dict(dsn).get("connect_timeout") or 15
    with psycopg.connect(dsn, connect_timeout=int(timeout), autocommit=True) as connection:
        if between_loads:
            connection.execute("select pg_advisory_lock(%s)", (LOAD_LOCK_KEY,))
        connection.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        connection.read_only = True
        with connection.transaction():
            clock = connection.execute("select clock_timestamp()").fetchone()
            rows = connection.execute(
                "select version, name, checksum from temporaldb_meta.schema_migrations order by version"
            ).fetchall()
            applied = [(int(version), str(checksum)) for version, _, checksum in rows]
            tables = [str(row[0]) for row in connection.execute(_DATA_TABLES, (DATA_SCHEMA,)).fetchall()]
            counts: dict[str, int] = {}
            for table in tables:
                count = sql.SQL("select count(*) from {}").format(sql.Identifier(DATA_SCHEMA, table))
                counted = connection.execute(count).fetchone()
                counts[f"{DATA_SCHEMA}.{table}"] = int(counted[0]) if counted else 0
            if questions is None:
                questions = _busiest(connection, as_of, players, teams)
            canaries = tuple(_ask(connection, question) for question in questions)
        database = connection.info.dbname
    version = max((number for number, _ in applied), default=0)
    taken_at = clock[0] if clock and isinstance(clock[0], dt.datetime) else None
    return DatabaseFacts(database, version, history_checksum(applied), counts, canaries, taken_at)


def _busiest(
    connection: psycopg.Connection[Any], as_of: dt.datetime, players: int, teams: int
) -> tuple[CanaryQuestion, ...]:
    questions: list[CanaryQuestion] = []
    wanted: tuple[tuple[SubjectKind, int], ...] = (("player", players), ("team", teams))
    for kind, limit in wanted:
        subject_kind, scope, season_type = _CANARY_SHAPE[kind]
        for (subject_id,) in connection.execute(_BUSIEST_SUBJECTS, (subject_kind, limit)).fetchall():
            questions.append(CanaryQuestion(kind, int(subject_id), scope, season_type, as_of))
    return tuple(questions)


def _ask(connection: psycopg.Connection[Any], question: CanaryQuestion) -> CanaryAnswer:
    function = sql.SQL(_FUNCTIONS[question.kind])
    query = sql.SQL("select * from {}(%s, %s, %s, %s)").format(function)
    row = connection.execute(
        query, (question.subject_id, question.as_of, question.scope, question.season_type)
    ).fetchone()
    if row is None:
        raise SnapshotError(f"{_FUNCTIONS[question.kind]} returned no row for {question.describe()}")
    return CanaryAnswer(question, {name: int(value) for name, value in zip(_STATS, row, strict=True)})


def compare(expected: DatabaseFacts, actual: DatabaseFacts) -> list[str]:
    """Every difference between two snapshots, one readable line each; empty when they match exactly."""
    differences: list[str] = []
    if expected.schema_version != actual.schema_version:
        differences.append(f"schema version: expected {expected.schema_version}, found {actual.schema_version}")
    if expected.schema_checksum != actual.schema_checksum:
        differences.append(
            f"schema checksum: expected {expected.schema_checksum[:12]}, found {actual.schema_checksum[:12]}"
        )
    for table in sorted(expected.row_counts.keys() | actual.row_counts.keys()):
        wanted, found = expected.row_counts.get(table), actual.row_counts.get(table)
        if wanted is None:
            differences.append(f"{table}: unexpected table ({found} rows)")
        elif found is None:
            differences.append(f"{table}: table missing (expected {wanted} rows)")
        elif wanted != found:
            differences.append(f"{table}: expected {wanted} rows, found {found}")
    answers = {answer.question: answer for answer in actual.canaries}
    for answer in expected.canaries:
        other = answers.pop(answer.question, None)
        if other is None:
            differences.append(f"{answer.question.describe()}: not asked")
            continue
        changed = [
            f"{name} expected {answer.stats.get(name)}, found {other.stats.get(name)}"
            for name in sorted(answer.stats.keys() | other.stats.keys(), key=_stat_order)
            if answer.stats.get(name) != other.stats.get(name)
        ]
        if changed:
            differences.append(f"{answer.question.describe()}: {'; '.join(changed)}")
    differences.extend(f"{question.describe()}: unexpected canary" for question in answers)
    return differences


def _stat_order(name: str) -> tuple[int, str]:
    return (_STATS.index(name) if name in _STATS else len(_STATS), name)
