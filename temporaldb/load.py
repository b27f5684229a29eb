"""`temporaldb load`: canonical CSV files into the database, all or nothing.

One transaction per load, under an advisory lock: rows are validated in Python
as they stream (a bad row stops the load with `file:line: reason`; the row
checks are in temporaldb/load_rows.py), sent to PostgreSQL with COPY, merged (a
later load may correct events or add older ones; with `replace_games` the
loaded games' events become exactly the loaded ones, so a corrected feed that
drops or renumbers events leaves nothing stale), and the derived stat lines of
every game that changed are rebuilt with their running totals. A load that
fails or dies midway leaves the database as it was; a concurrent reader sees
the data before or after, never half.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import psycopg
from psycopg import sql

from temporaldb import loadmemory
from temporaldb.load_rows import (
    EVENT_COLUMNS,
    GAME_COLUMNS,
    MAX_GAME_SPAN,
    OPTIONAL_EVENT_COLUMNS,
    PLAYER_COLUMNS,
    TEAM_COLUMNS,
    EventChecker,
    GameInfo,
    GameRow,
    Lines,
    LoadError,
    References,
    Row,
    parse_game,
    parse_player,
    parse_team,
    read_rows,
    read_small,
)

__all__ = [
    "APPLICATION_NAME", "EVENT_COLUMNS", "GAME_COLUMNS", "LOAD_LOCK_KEY", "MAX_GAME_SPAN", "OPTIONAL_EVENT_COLUMNS",
    "PLAYER_COLUMNS", "TABLES", "TEAM_COLUMNS", "LoadError", "LoadSummary", "Progress", "find_input", "load_directory",
]  # fmt: skip

Progress = Callable[[str, int, int], None]
"""progress(phase, done, total): bytes read of a file, or 0/1 for a phase with no size."""

TABLES: Final = ("teams", "players", "games", "events")
LOAD_LOCK_KEY: Final = 0x7E3D_0002
APPLICATION_NAME: Final = "temporaldb load"
COPY_LINE = re.compile(r"line (\d+)")
BATCH_LINES: Final = 5000
COPY_CHUNK_BYTES: Final = 1024 * 1024


@dataclass
class LoadSummary:
    rows: dict[str, int] = field(default_factory=dict)
    memory: loadmemory.LoadMemory | None = None
    """The work_mem and maintenance_work_mem the load ran with."""
    events_changed: int = 0
    events_removed: int = 0
    """Events of replaced games that the load no longer carries (`replace_games` only)."""
    games_rebuilt: int = 0
    stat_lines: int = 0
    seconds: float = 0.0


def find_input(folder: Path, table: str) -> Path | None:
    plain, packed = folder / f"{table}.csv", folder / f"{table}.csv.gz"
    if plain.exists() and packed.exists():
        raise LoadError(f"{folder}: both {plain.name} and {packed.name} exist; keep one")
    return plain if plain.exists() else packed if packed.exists() else None


Connection = psycopg.Connection[Any]


def _load_references(connection: Connection) -> References:
    references = References()
    references.teams = {row[0] for row in connection.execute("select team_id from nba.teams")}
    references.players = {row[0] for row in connection.execute("select player_id from nba.players")}
    for game_id, home, away, tipoff in connection.execute(
        "select game_id, home_team_id, away_team_id, tipoff_at from nba.games"
    ):
        references.games[game_id] = GameInfo(home, away, tipoff, tipoff + MAX_GAME_SPAN)
    return references


# --- merging into the database ------------------------------------------------------------------

_STAGE_AND_MERGE = {
    "teams": (
        "create temp table stage_teams (like nba.teams) on commit drop",
        """insert into nba.teams select * from stage_teams
           on conflict (team_id) do update set abbreviation = excluded.abbreviation, name = excluded.name
           where (nba.teams.abbreviation, nba.teams.name) is distinct from (excluded.abbreviation, excluded.name)""",
    ),
    "players": (
        "create temp table stage_players (like nba.players) on commit drop",
        """insert into nba.players select * from stage_players
           on conflict (player_id) do update set full_name = excluded.full_name
           where nba.players.full_name is distinct from excluded.full_name""",
    ),
    "games": (
        "create temp table stage_games (like nba.games) on commit drop",
        """with merged as (
               insert into nba.games select * from stage_games
               on conflict (game_id) do update set season = excluded.season, season_type = excluded.season_type,
                   home_team_id = excluded.home_team_id, away_team_id = excluded.away_team_id,
                   tipoff_at = excluded.tipoff_at
               where (nba.games.season, nba.games.season_type, nba.games.home_team_id, nba.games.away_team_id,
                      nba.games.tipoff_at)
                     is distinct from (excluded.season, excluded.season_type, excluded.home_team_id,
                      excluded.away_team_id, excluded.tipoff_at)
               returning game_id)
           insert into changed_games select game_id from merged on conflict do nothing""",
    ),
}

_MERGE_EVENTS = """
with merged as (
    insert into nba.play_by_play select * from stage_events
    on conflict (game_id, event_num) do update set
        period = excluded.period, clock = excluded.clock, wall_clock_time = excluded.wall_clock_time,
        event_type = excluded.event_type, team_id = excluded.team_id, player_id = excluded.player_id,
        secondary_player_id = excluded.secondary_player_id, points = excluded.points, is_three = excluded.is_three,
        foul_kind = excluded.foul_kind, ft_value = excluded.ft_value, source_event_id = excluded.source_event_id
    where (nba.play_by_play.period, nba.play_by_play.clock, nba.play_by_play.wall_clock_time,
           nba.play_by_play.event_type, nba.play_by_play.team_id, nba.play_by_play.player_id,
           nba.play_by_play.secondary_player_id, nba.play_by_play.points, nba.play_by_play.is_three,
           nba.play_by_play.foul_kind, nba.play_by_play.ft_value, nba.play_by_play.source_event_id)
          is distinct from (excluded.period, excluded.clock, excluded.wall_clock_time, excluded.event_type,
           excluded.team_id, excluded.player_id, excluded.secondary_player_id, excluded.points, excluded.is_three,
           excluded.foul_kind, excluded.ft_value, excluded.source_event_id)
    returning game_id)
insert into changed_games select distinct game_id from merged on conflict do nothing
"""

_BOX_COLUMNS = (
    "points", "fgm", "fga", "fg3m", "fg3a", "ftm", "fta", "oreb", "dreb", "rebounds",
    "assists", "steals", "blocks", "turnovers", "fouls",
)  # fmt: skip
_BOX_SUMS = ", ".join(f"sum(c.{name})::int as {name}" for name in _BOX_COLUMNS)
_STEPS = ", ".join(f"s.cum_{name} - coalesce(lag(s.cum_{name}) over w, 0) as {name}" for name in _BOX_COLUMNS)
_CUM_COLUMNS = ", ".join(f"cum_{name}" for name in _BOX_COLUMNS)
_RUNNING = ", ".join(f"sum(b.{name}) over w" for name in _BOX_COLUMNS)

# Box lines of the games that changed, from the single definition of the stat rules.
_NEW_BOX = f"""
create temp table new_box on commit drop as
select c.subject_kind, c.subject_id, g.tipoff_at, c.game_id, g.season,
       (case g.season_type when 'regular' then 'r' else 'p' end)::"char" as season_type,
       max(c.wall_clock_time) as last_event_at, {_BOX_SUMS}
from nba.event_credits c
join nba.games g using (game_id)
{{where}}
group by c.subject_kind, c.subject_id, c.game_id, g.tipoff_at, g.season, g.season_type
"""

# Every subject with a line in a changed game, before or after, gets all its
# running totals rebuilt: a change in one game shifts the totals of later ones.
# The box lines of its unchanged games are the steps between its stored totals,
# as in the view nba.box_lines, computed here after the join to `touched` so
# that only the touched subjects' rows are windowed.
_REBUILD_LINES = f"""
create temp table touched on commit drop as
select subject_kind, subject_id from nba.stat_lines where game_id in (select game_id from changed_games)
union
select subject_kind, subject_id from new_box;

create temp table rebuilt_box on commit drop as
select k.* from (
    select s.subject_kind, s.subject_id, s.tipoff_at, s.game_id, s.season, s.season_type, s.last_event_at, {_STEPS}
    from nba.stat_lines s join touched t using (subject_kind, subject_id)
    window w as (partition by s.subject_kind, s.subject_id, s.season_type order by s.last_event_at, s.game_id)
) k
where k.game_id not in (select game_id from changed_games)
union all
select * from new_box;

delete from nba.stat_lines s using touched t
where s.subject_kind = t.subject_kind and s.subject_id = t.subject_id;

insert into nba.stat_lines (subject_id, last_event_at, game_id, tipoff_at, cum_games, {_CUM_COLUMNS},
                            subject_kind, season_type, season)
select b.subject_id, b.last_event_at, b.game_id, b.tipoff_at, count(*) over w, {_RUNNING},
       b.subject_kind, b.season_type, b.season
from rebuilt_box b
window w as (partition by b.subject_kind, b.subject_id, b.season_type order by b.last_event_at, b.game_id
             rows unbounded preceding)
"""

# A player or team is never in two games at once; the game-scope lookup relies on it.
_OVERLAPPING_GAMES = """
select x.subject_kind, x.subject_id, x.game_id, x.tipoff_at
from (
    select s.subject_kind, s.subject_id, s.game_id, s.tipoff_at, max(s.last_event_at) over w as busy_until
    from nba.stat_lines s join touched t using (subject_kind, subject_id)
    window w as (partition by s.subject_kind, s.subject_id order by s.tipoff_at, s.game_id
                 rows between unbounded preceding and 1 preceding)
) x
where x.busy_until >= x.tipoff_at
limit 1
"""

_REBUILD_SEASONS = """
delete from nba.seasons;
insert into nba.seasons
select g.season, min(g.tipoff_at), greatest(max(g.tipoff_at), max(l.last_event_at))
from nba.games g
left join (select game_id, max(last_event_at) as last_event_at from nba.stat_lines group by game_id) l using (game_id)
group by g.season
"""

_OVERLAPPING_SEASONS = """
select a.season, a.starts_at, a.ends_at, b.season, b.starts_at, b.ends_at
from nba.seasons a join nba.seasons b on a.season < b.season and a.starts_at <= b.ends_at and b.starts_at <= a.ends_at
order by a.season, b.season limit 1
"""

# Games changed by games.csv whose stored events no longer fit them.
_STRANDED_EVENTS = """
select e.game_id, e.event_num, e.wall_clock_time, g.tipoff_at, e.team_id
from changed_games c
join nba.games g using (game_id)
join nba.play_by_play e using (game_id)
where e.wall_clock_time < g.tipoff_at or e.wall_clock_time > g.tipoff_at + %s
   or (e.team_id is not null and e.team_id not in (g.home_team_id, g.away_team_id))
limit 1
"""


# The games a replacing load carries: those of games.csv and of events.csv.
_REPLACED_GAMES = """
create temp table replaced_games (game_id bigint primary key) on commit drop;
insert into replaced_games select game_id from {games} union select game_id from {events}
"""

# Their stored events that the load does not carry go; the rest is merged as usual.
_REMOVE_REPLACED_EVENTS = """
with gone as (
    delete from nba.play_by_play p using replaced_games r
    where p.game_id = r.game_id
      and not exists (select from {events} s where s.game_id = p.game_id and s.event_num = p.event_num)
    returning p.game_id),
noted as (insert into changed_games select distinct game_id from gone on conflict do nothing)
select count(*) from gone
"""


class _Loader:
    def __init__(
        self, connection: Connection, folder: Path, progress: Progress, *, replace_games: bool, checked_events: bool
    ) -> None:
        self.connection = connection
        self.folder = folder
        self.progress = progress
        self.replace_games = replace_games
        self.checked_events = checked_events
        self.summary = LoadSummary()
        self.references = _load_references(connection)

    def run(self) -> LoadSummary:
        started = time.perf_counter()
        inputs = {table: find_input(self.folder, table) for table in TABLES}
        if not any(inputs.values()):
            raise LoadError(f"{self.folder}: no teams.csv, players.csv, games.csv or events.csv (.csv.gz) to load")
        self.connection.execute("create temp table changed_games (game_id bigint primary key) on commit drop")
        if inputs["teams"] is not None:
            teams = self._small_table("teams", inputs["teams"], TEAM_COLUMNS, parse_team)
            self.references.teams.update(row.team_id for _, row in teams)
        if inputs["players"] is not None:
            players = self._small_table("players", inputs["players"], PLAYER_COLUMNS, parse_player)
            self.references.players.update(row.player_id for _, row in players)
        if inputs["games"] is not None:
            self._small_table("games", inputs["games"], GAME_COLUMNS, parse_game)
        row = self.connection.execute("select not exists (select from nba.play_by_play)").fetchone()
        first_load = bool(row and row[0])
        events = inputs["events"]
        if events is not None:
            self._events(events, first_load)
        elif self.replace_games and inputs["games"] is not None:
            self._remove_replaced_events(has_events=False)
        self._check_stranded_events()
        self._rebuild(first_load and events is not None)
        self.summary.seconds = time.perf_counter() - started
        return self.summary

    def _small_table(
        self, table: str, path: Path, columns: tuple[str, ...], parse: Callable[[list[str]], Row]
    ) -> list[tuple[int, Row]]:
        rows = read_small(path, columns, parse)
        for number, row in rows:
            if isinstance(row, GameRow):
                self._note_game(path, number, row)
        create, merge = _STAGE_AND_MERGE[table]
        self.connection.execute(create)
        with self.connection.cursor().copy(
            sql.SQL("copy {} from stdin").format(sql.Identifier(f"stage_{table}"))
        ) as copy:
            for _, row in rows:
                copy.write_row(row)
        self.connection.execute(merge)
        self.summary.rows[table] = len(rows)
        self.progress(f"{path.name}: {len(rows)} rows", 1, 1)
        return rows

    def _note_game(self, path: Path, number: int, game: GameRow) -> None:
        for team in (game.home_team_id, game.away_team_id):
            if team not in self.references.teams:
                raise LoadError(f"{path.name}:{number}: unknown team {team} (not in teams.csv nor the database)")
        self.references.games[game.game_id] = GameInfo(
            game.home_team_id, game.away_team_id, game.tipoff_at, game.tipoff_at + MAX_GAME_SPAN
        )
        self.references.game_lines[game.game_id] = number

    def _events(self, path: Path, first_load: bool) -> None:
        """Stream-validate events.csv into COPY: straight into the table on a first load, else via staging."""
        if first_load:
            # A bare table takes COPY 3-4x faster than one with its primary key; rebuild the key after.
            self.connection.execute("select nba_load.drop_event_key()")
            target = "nba.play_by_play"
        else:
            # A first load killed between dropping and restoring the key cannot leave it dropped (one
            # transaction), but a hand-run drop_event_key could: the merge below needs the key.
            self.connection.execute("select nba_load.restore_event_key()")
            self.connection.execute("create temp table stage_events (like nba.play_by_play) on commit drop")
            target = "stage_events"
        if self.checked_events:
            count = self._copy_checked_events(path, target)
        else:
            lines = Lines(path)
            try:
                count = self._copy_events(lines, target)
            finally:
                lines.close()
        self.summary.rows["events"] = count
        if first_load:
            self._restore_primary_key(path)
            self.connection.execute("insert into changed_games select game_id from nba.games on conflict do nothing")
            self.summary.events_changed = count
        else:
            if self.replace_games:
                self._remove_replaced_events(has_events=True)
            self._merge_staged_events(path)

    def _remove_replaced_events(self, *, has_events: bool) -> None:
        """Before the merge: drop the stored events of the loaded games that this load does not carry."""
        self.progress("removing events the replaced games no longer have", 0, 1)
        empty = "(select null::bigint as game_id, null::int as event_num where false)"
        games = "stage_games" if self.summary.rows.get("games") is not None else empty
        events = "stage_events" if has_events else empty
        self.connection.execute(_REPLACED_GAMES.format(games=games, events=events))
        row = self.connection.execute(_REMOVE_REPLACED_EVENTS.format(events=events)).fetchone()
        self.summary.events_removed = int(row[0]) if row else 0

    def _copy_events(self, lines: Lines, target: str) -> int:
        columns, rows = read_rows(lines, EVENT_COLUMNS, OPTIONAL_EVENT_COLUMNS)
        checker = EventChecker(self.references, columns)
        # Only the columns the file has: the optional ones it lacks are NULL, as in files from before them.
        statement = f"copy {target} ({', '.join(columns)}) from stdin with (format csv)"
        batch: list[str] = []
        count = 0
        last_report = time.monotonic()
        try:
            with self.connection.cursor().copy(statement) as copy:
                for number, fields in rows:
                    try:
                        batch.append(checker.copy_line(fields))
                    except ValueError as error:
                        raise LoadError(f"{lines.path.name}:{number}: {error}") from None
                    count += 1
                    if len(batch) >= BATCH_LINES:
                        copy.write("\n".join(batch) + "\n")
                        batch.clear()
                        if time.monotonic() - last_report > 1.0:
                            self.progress(f"{lines.path.name}: {count:,} events", lines.position, lines.size)
                            last_report = time.monotonic()
                if batch:
                    copy.write("\n".join(batch) + "\n")
        except psycopg.Error as error:
            raise LoadError(f"{lines.path.name}: PostgreSQL rejected a row: {_copy_context(error)}") from error
        self.progress(f"{lines.path.name}: {count:,} events", lines.size, lines.size)
        return count

    def _copy_checked_events(self, path: Path, target: str) -> int:
        """events.csv as it is: its rows were checked by EventChecker where they were made (the importer)."""
        with path.open("rb") as handle:
            header = handle.readline().decode("utf-8").strip()
            columns = tuple(header.split(","))
            unknown = set(columns) - set(EVENT_COLUMNS) - set(OPTIONAL_EVENT_COLUMNS)
            if unknown or not set(EVENT_COLUMNS) <= set(columns):
                raise LoadError(f"{path.name}: header {header!r} is not the canonical events header")
            statement = f"copy {target} ({', '.join(columns)}) from stdin with (format csv)"
            count, size, last_report = 0, path.stat().st_size, time.monotonic()
            try:
                with self.connection.cursor().copy(statement) as copy:
                    while chunk := handle.read(COPY_CHUNK_BYTES):
                        copy.write(chunk)
                        count += chunk.count(b"\n")
                        if time.monotonic() - last_report > 1.0:
                            self.progress(f"{path.name}: {count:,} events", handle.tell(), size)
                            last_report = time.monotonic()
            except psycopg.Error as error:
                raise LoadError(f"{path.name}: PostgreSQL rejected a row: {_copy_context(error)}") from error
        self.progress(f"{path.name}: {count:,} events", size, size)
        return count

    def _restore_primary_key(self, path: Path) -> None:
        self.progress("building the (game_id, event_num) key", 0, 1)
        try:
            with self.connection.transaction():
                self.connection.execute("select nba_load.restore_event_key()")
        except psycopg.errors.UniqueViolation:
            self._raise_duplicate(path, "nba.play_by_play")

    def _merge_staged_events(self, path: Path) -> None:
        self.progress("merging events", 0, 1)
        before = self._changed_games_count()
        try:
            with self.connection.transaction():
                result = self.connection.execute(_MERGE_EVENTS)
        except psycopg.errors.CardinalityViolation:
            self._raise_duplicate(path, "stage_events")
        self.summary.events_changed = max(result.rowcount, 0)
        self.summary.games_rebuilt = self._changed_games_count() - before

    def _raise_duplicate(self, path: Path, table: str) -> None:
        row = self.connection.execute(
            f"select game_id, event_num from {table} group by game_id, event_num having count(*) > 1 limit 1"
        ).fetchone()
        where = f" (game_id {row[0]}, event_num {row[1]})" if row else ""
        raise LoadError(f"{path.name}: an event appears more than once{where}")

    def _changed_games_count(self) -> int:
        row = self.connection.execute("select count(*) from changed_games").fetchone()
        return int(row[0]) if row else 0

    def _check_stranded_events(self) -> None:
        row = self.connection.execute(_STRANDED_EVENTS, (MAX_GAME_SPAN,)).fetchone()
        if row is None:
            return
        game_id, event_num, moment, tipoff, team = row
        line = self.references.game_lines.get(game_id)
        where = f"games.csv:{line}" if line else "games.csv"
        raise LoadError(
            f"{where}: game {game_id} no longer fits its stored event {event_num} "
            f"(at {moment.isoformat()}, team {team}; tip-off now {tipoff.isoformat()}); load corrected events with it"
        )

    def _rebuild(self, everything: bool) -> None:
        self.progress("rebuilding stat lines and running totals", 0, 1)
        where = "" if everything else "where c.game_id in (select game_id from changed_games)"
        self.connection.execute(_NEW_BOX.format(where=where))
        self.connection.execute(_REBUILD_LINES)
        self.summary.games_rebuilt = self._changed_games_count()
        row = self.connection.execute("select count(*) from new_box").fetchone()
        self.summary.stat_lines = int(row[0]) if row else 0
        clash = self.connection.execute(_OVERLAPPING_GAMES).fetchone()
        if clash is not None:
            kind, subject, game_id, tipoff = clash
            who = "player" if kind == "p" else "team"
            line = self.references.game_lines.get(game_id)
            where = f"games.csv:{line}" if line else "events.csv"
            raise LoadError(
                f"{where}: {who} {subject} would be in two games at once: game {game_id} tips off at "
                f"{tipoff.isoformat()} before that {who}'s previous game has ended"
            )
        self.connection.execute(_REBUILD_SEASONS)
        overlap = self.connection.execute(_OVERLAPPING_SEASONS).fetchone()
        if overlap is not None:
            first, first_start, first_end, second, second_start, second_end = overlap
            raise LoadError(
                f"games.csv: seasons {first} ({first_start:%Y-%m-%d} to {first_end:%Y-%m-%d}) and {second} "
                f"({second_start:%Y-%m-%d} to {second_end:%Y-%m-%d}) overlap in time; a season must end before "
                "the next one starts"
            )
        self.progress("analyzing", 0, 1)
        self.connection.execute("select nba_load.analyze_tables(%s)", (everything,))


def _copy_context(error: psycopg.Error) -> str:
    """PostgreSQL counts COPY data lines from 1; the file's line is one more (the header)."""
    context = error.diag.context or ""
    match = COPY_LINE.search(context)
    line = f" at file line {int(match[1]) + 1}" if match else ""
    return f"{error.diag.message_primary or error}{line}"


def _silent(phase: str, done: int, total: int) -> None:
    """The default progress callback: report nothing."""


def load_directory(
    conninfo: str,
    folder: Path,
    progress: Progress | None = None,
    *,
    replace_games: bool = False,
    before_commit: Callable[[Connection], None] | None = None,
    checked_events: bool = False,
) -> LoadSummary:
    """Load a canonical CSV folder in one transaction; raise LoadError and change nothing on bad input.

    By default events merge by (game_id, event_num), so one game may arrive in
    several loads. With `replace_games`, every game in the folder's games.csv or
    events.csv ends up with exactly the events of this load. `before_commit`, if
    given, runs inside the load's transaction once everything is loaded and the
    stat lines are rebuilt, just before the commit: it may read the result (the
    importer reconciles it with the box scores, reading the temp tables
    changed_games and new_box, the changed games' box lines), and an exception it
    raises rolls the whole load back. `checked_events` says events.csv was written with load_rows.EventChecker's lines
    (the importer checks each game's rows in its worker processes): it is copied without checking again.
    """
    if not folder.is_dir():
        raise LoadError(f"{folder} is not a folder")
    report = progress or _silent
    with psycopg.connect(conninfo, autocommit=False, application_name=APPLICATION_NAME) as connection:
        with connection.transaction():
            locked = connection.execute("select pg_try_advisory_xact_lock(%s)", (LOAD_LOCK_KEY,)).fetchone()
            if not (locked and locked[0]):
                report("waiting for another load to finish", 0, 1)
                connection.execute("select pg_advisory_xact_lock(%s)", (LOAD_LOCK_KEY,))
            # Scaled to the server: 256MB/1GB on a 1 GiB db.t3.micro would invite the OOM killer.
            memory = loadmemory.choose(connection)
            connection.execute("select set_config('work_mem', %s, true)", (memory.work_mem,))
            connection.execute("select set_config('maintenance_work_mem', %s, true)", (memory.maintenance_work_mem,))
            summary = _Loader(
                connection, folder, report, replace_games=replace_games, checked_events=checked_events
            ).run()
            summary.memory = memory
            if before_commit is not None:
                before_commit(connection)
            report("committing", 0, 1)
        _vacuum_stat_lines(connection, report)
    return summary


def _vacuum_stat_lines(connection: Connection, report: Progress) -> None:
    """Mark pages all-visible so as-of probes stay index-only; the load is committed by now.

    VACUUM cannot run in a routine, so only the table owner (or a role with
    MAINTAIN, PostgreSQL 17+) may run it; the writer role leaves it to
    autovacuum, which picks up an insert-heavy table on its own.
    """
    connection.autocommit = True
    row = connection.execute(
        "select pg_has_role(relowner, 'USAGE') from pg_class where oid = 'nba.stat_lines'::regclass"
    ).fetchone()
    if not (row and row[0]):
        report("loaded; VACUUM of nba.stat_lines left to autovacuum (this role does not own it)", 1, 1)
        return
    try:
        connection.execute("vacuum (analyze) nba.stat_lines")
    except psycopg.Error as error:
        report(f"loaded; VACUUM of nba.stat_lines skipped: {error.diag.message_primary or error}", 1, 1)
