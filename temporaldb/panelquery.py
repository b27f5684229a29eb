"""Panels from the database: which subjects, which moments, and the rows of nba.*_stats_panel, streamed.

Shared by `temporaldb panel`, `temporaldb plot` and the notebook API (temporaldb/api.py). One SQL call per chunk
of subjects (or of moments, for a single subject with more moments than a chunk holds: `calls`), in the order of
the SQL function: by subject id, then moment. `rows` fetches them through a server-side cursor as Python rows;
temporaldb/panelfetch.py fetches the same calls as Arrow tables. Every call reads one snapshot (a read-only
repeatable-read transaction), so a load running meanwhile cannot tear a panel in two.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from temporaldb import asof
from temporaldb.moments import Listed, Moments, Span, Step, Stepped, chunk

if TYPE_CHECKING:
    import psycopg

KINDS = ("player", "team")
CHUNK_CELLS = 100_000
"""Cells per SQL call: well under a second of server work, about 10 MB of CSV and Arrow columns at a time."""
FETCH_ROWS = 5_000
"""Rows per round trip of a server-side cursor."""

Row = tuple[Any, ...]
"""id, as_of, then the 16 stats of asof.STATS."""


class PanelError(ValueError):
    """Input that cannot make a panel; the message is one line naming the option (or argument)."""


@dataclass(frozen=True)
class Labels:
    """How errors name the inputs: the CLI's options, or the API's arguments."""

    players: str = "--players"
    team: str = "--team"
    every: str = "--every"


@dataclass(frozen=True)
class Who:
    """The subjects asked for: `names` (ids or names), a team's roster, or everyone (names and roster None)."""

    kind: str  # player or team
    names: tuple[str, ...] | None = None
    roster: str | None = None


@dataclass(frozen=True)
class When:
    """The moments asked for (every step over the span, or the games' ends with step None) and how to count."""

    span: Span
    step: Step | None
    scope: str = "career"
    season_type: str = "regular"


@dataclass(frozen=True)
class Panel:
    """A resolved panel: the subjects (sorted ids) and the moments."""

    kind: str
    ids: tuple[int, ...]
    moments: Moments
    scope: str
    season_type: str
    names: tuple[str, ...] = ()
    """Each id's name, for pictures (empty for a panel of every subject)."""

    @property
    def cells(self) -> int:
        return len(self.ids) * len(self.moments)

    @property
    def id_column(self) -> str:
        return f"{self.kind}_id"


@contextmanager
def snapshot(connection: psycopg.Connection[Any]) -> Iterator[None]:
    """One read-only repeatable-read transaction on an autocommit connection: every query sees one snapshot."""
    with connection.transaction():
        connection.execute("set transaction isolation level repeatable read, read only")
        yield


def split_names(text: str, option: str) -> tuple[str, ...]:
    """`977,Kobe Bryant,Jordan Clarkson` -> its items; an empty item is an error."""
    names = tuple(name.strip() for name in text.split(","))
    if not all(names):
        raise PanelError(f"{option} {text!r} has an empty item; separate ids or names with single commas")
    return names


def resolve(connection: psycopg.Connection[Any], who: Who, span: Span, labels: Labels) -> tuple[list[int], list[str]]:
    """Sorted distinct ids, and their names, of a list or a roster (for everyone: every_subject)."""
    if who.roster is not None:
        team = _one(connection, who.roster, team=True, option=labels.team)
        return _roster(connection, team.subject_id, span), []
    option = labels.team if who.kind == "team" else labels.players
    subjects = {s.subject_id: s for s in (_one(connection, n, who.kind == "team", option) for n in who.names or ())}
    ids = sorted(subjects)
    return ids, [subjects[i].name for i in ids]


def _one(connection: psycopg.Connection[Any], text: str, team: bool, option: str) -> asof.Subject:
    try:
        return asof.resolve_subject(connection, text, team=team)
    except asof.AsOfError as error:
        raise PanelError(f"{option}: {error}") from None


def _roster(connection: psycopg.Connection[Any], team_id: int, span: Span) -> list[int]:
    """Every player with an event for the team within the span (as the shooter, rebounder, ..., the assister or
    the player leaving in a substitution: the team's own side of its events)."""
    rows = connection.execute(
        """select distinct p.player_id
           from nba.games g
           join nba.play_by_play e on e.game_id = g.game_id
           cross join lateral (values (e.player_id),
                (case when e.event_type in ('fg_made', 'substitution') then e.secondary_player_id end)) p(player_id)
           where (g.home_team_id = %(team)s or g.away_team_id = %(team)s)
             and g.tipoff_at <= %(end)s and g.tipoff_at >= %(start)s::timestamptz - nba.max_game_span()
             and e.team_id = %(team)s and e.wall_clock_time between %(start)s and %(end)s and p.player_id is not null
           order by 1""",
        {"team": team_id, "start": span.start, "end": span.end},
    ).fetchall()
    return [row[0] for row in rows]


def every_subject(
    connection: psycopg.Connection[Any], kind: str, moments: Moments, scope: str, season_type: str
) -> list[int]:
    """The subjects of the SQL panels' NULL list (nba.panel_subjects), to count cells before running anything and
    to chunk a large panel."""
    if not len(moments):
        return []
    rows = connection.execute(
        "select subject_id from nba.panel_subjects(%s, %s::timestamptz[], %s, %s) order by 1",
        (kind[0], chunk(moments, 0, len(moments)), scope, season_type),
    ).fetchall()
    return [row[0] for row in rows]


def game_ends(
    connection: psycopg.Connection[Any], kind: str, ids: Sequence[int] | None, when: When
) -> list[dt.datetime]:
    """The distinct last events of the subjects' games (every game when `ids` is None) that end within the span,
    of the season types asked for (any in game scope, whose lines cover every season type)."""
    both = when.scope == "game" or when.season_type == "all"
    if ids is None:
        mine = "true"
    elif kind == "team":
        mine = "(g.home_team_id = any (%(ids)s) or g.away_team_id = any (%(ids)s))"
    else:
        mine = """g.game_id in (select s.game_id from nba.stat_lines s where s.subject_kind = 'p'
                  and s.subject_id = any (%(ids)s) and s.tipoff_at <= %(end)s)"""
    rows = connection.execute(
        f"""select distinct x.ended from (
                select (select max(e.wall_clock_time) from nba.play_by_play e where e.game_id = g.game_id) as ended
                from nba.games g
                where g.tipoff_at <= %(end)s and g.tipoff_at >= %(start)s::timestamptz - nba.max_game_span()
                  and g.season_type = any (%(types)s) and {mine}
            ) x
            where x.ended between %(start)s and %(end)s
            order by 1""",
        {
            "ids": list(ids or ()),
            "start": when.span.start,
            "end": when.span.end,
            "types": ["regular", "playoffs"] if both else [when.season_type],
        },
    ).fetchall()
    return [row[0] for row in rows]


def moments_of(connection: psycopg.Connection[Any], kind: str, ids: Sequence[int] | None, when: When) -> Moments:
    """Every step over the span, or (step None) the ends of the subjects' games within it."""
    if when.step is not None:
        return Stepped(when.span, when.step)
    return Listed(game_ends(connection, kind, ids, when))


def plan(connection: psycopg.Connection[Any], who: Who, when: When, labels: Labels | None = None) -> Panel:
    """Resolve the subjects and the moments: everything a panel needs before its cells are counted."""
    if who.names is None and who.roster is None:
        moments = moments_of(connection, who.kind, None, when)
        ids = every_subject(connection, who.kind, moments, when.scope, when.season_type)
        return Panel(who.kind, tuple(ids), moments, when.scope, when.season_type)
    ids, names = resolve(connection, who, when.span, labels or Labels())
    kind = "player" if who.roster is not None else who.kind
    moments = moments_of(connection, kind, ids, when)
    return Panel(kind, tuple(ids), moments, when.scope, when.season_type, names=tuple(names))


def calls(panel: Panel, chunk_cells: int = CHUNK_CELLS) -> Iterator[tuple[list[int], list[dt.datetime]]]:
    """The subjects and moments of each SQL call, in the panel's order: as many subjects as fit in `chunk_cells`
    with every moment, or one subject with `chunk_cells` moments at a time."""
    count = len(panel.moments)
    if not panel.cells:
        return
    per_call = min(count, chunk_cells)
    subjects_per_call = max(1, chunk_cells // per_call)
    for first in range(0, len(panel.ids), subjects_per_call):
        ids = list(panel.ids[first : first + subjects_per_call])
        for start in range(0, count, per_call):
            yield ids, chunk(panel.moments, start, start + per_call)


def rows(connection: psycopg.Connection[Any], panel: Panel, chunk_cells: int = CHUNK_CELLS) -> Iterator[list[Row]]:
    """The panel's rows in batches, ordered by id then moment. Call inside `snapshot`."""
    query = f"select * from nba.{panel.kind}_stats_panel(%s::bigint[], %s::timestamptz[], %s, %s)"
    for ids, moments in calls(panel, chunk_cells):
        yield from _fetch(connection, query, (ids, moments, panel.scope, panel.season_type))


def _fetch(connection: psycopg.Connection[Any], query: str, params: tuple[Any, ...]) -> Iterator[list[Row]]:
    with connection.cursor(name="temporaldb_panel") as cursor:
        cursor.execute(query, params)
        while batch := cursor.fetchmany(FETCH_ROWS):
            yield batch
