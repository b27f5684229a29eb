"""Hand-made and generated play-by-play for the database tests, and a plain-Python reference.

The reference recomputes every stat line straight from the event list, with
its own reading of the stat rules, so the SQL (running totals, in-progress
games, season bounds) is checked against something that shares no code with it.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path

UTC = dt.UTC
STATS = (
    "games_played", "points", "fgm", "fga", "fg3m", "fg3a", "ftm", "fta", "oreb", "dreb", "rebounds",
    "assists", "steals", "blocks", "turnovers", "fouls",
)  # fmt: skip


@dataclass(frozen=True)
class Team:
    team_id: int
    abbreviation: str
    name: str


@dataclass(frozen=True)
class Player:
    player_id: int
    full_name: str


@dataclass(frozen=True)
class Game:
    game_id: int
    season: str
    season_type: str
    home_team_id: int
    away_team_id: int
    tipoff_at: dt.datetime


@dataclass(frozen=True)
class Event:
    game_id: int
    event_num: int
    period: int
    clock: str
    wall_clock_time: dt.datetime
    event_type: str
    team_id: int | None
    player_id: int | None
    secondary_player_id: int | None
    points: int
    is_three: bool
    foul_kind: str | None = None
    ft_value: int | None = None
    source_event_id: str | None = None


EVENT_COLUMNS = tuple(f.name for f in fields(Event))[:11]
"""The required columns of events.csv."""
OPTIONAL_EVENT_COLUMNS = ("foul_kind", "ft_value", "source_event_id")
# The reference's own copy of the foul kinds that are not personal fouls (README "Canonical input").
NON_PERSONAL_FOUL_KINDS = frozenset(("technical", "double_technical", "defensive_3_seconds", "delay_technical"))


@dataclass(frozen=True)
class League:
    teams: tuple[Team, ...]
    players: tuple[Player, ...]
    games: tuple[Game, ...]
    events: tuple[Event, ...]


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        return value.isoformat(timespec="milliseconds")
    return str(value)


def write_csv(path: Path, rows: Iterable[object], columns: Sequence[str]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow([_cell(getattr(row, column)) for column in columns])


def event_columns(events: Iterable[Event], optional: bool | Sequence[str] | None = None) -> list[str]:
    """events.csv's columns: the 11 required ones, then `optional` ones (True: all three; None: those in use)."""
    if optional is None:
        optional = [name for name in OPTIONAL_EVENT_COLUMNS if any(getattr(e, name) is not None for e in events)]
    elif isinstance(optional, bool):
        optional = OPTIONAL_EVENT_COLUMNS if optional else ()
    return [*EVENT_COLUMNS, *optional]


def write_league(
    folder: Path,
    league: League,
    *,
    events: Sequence[Event] | None = None,
    optional_columns: bool | Sequence[str] | None = None,
) -> Path:
    """The league as canonical CSV; events.csv has the optional columns its events use, unless told otherwise."""
    folder.mkdir(parents=True, exist_ok=True)
    chosen = league.events if events is None else events
    for name, rows, columns in (
        ("teams", league.teams, [f.name for f in fields(Team)]),
        ("players", league.players, [f.name for f in fields(Player)]),
        ("games", league.games, [f.name for f in fields(Game)]),
        ("events", chosen, event_columns(chosen, optional_columns)),
    ):
        write_csv(folder / f"{name}.csv", rows, columns)
    return folder


# --- the reference ----------------------------------------------------------------------------


def credits(event: Event, game: Game) -> list[tuple[str, int, dict[str, int]]]:
    """(kind, subject id, stats) credited by one event, following the README's stat rules."""
    kind = event.event_type
    shot = kind in ("fg_made", "fg_missed")
    own = {
        "points": event.points,
        "fgm": int(kind == "fg_made"),
        "fga": int(shot),
        "fg3m": int(kind == "fg_made" and event.is_three),
        "fg3a": int(shot and event.is_three),
        "ftm": int(kind == "ft_made"),
        "fta": int(kind in ("ft_made", "ft_missed")),
        "oreb": int(kind == "rebound_off"),
        "dreb": int(kind == "rebound_def"),
        "rebounds": int(kind in ("rebound_off", "rebound_def")),
        "turnovers": int(kind == "turnover"),
        # Personal fouls only; a foul of unknown kind (None) is personal.
        "fouls": int(kind == "foul" and event.foul_kind not in NON_PERSONAL_FOUL_KINDS),
    }
    helper = {
        "assists": int(kind == "fg_made"),
        "blocks": int(kind == "fg_missed"),
        "steals": int(kind == "turnover"),
    }
    result: list[tuple[str, int, dict[str, int]]] = []
    if event.player_id is not None:
        result.append(("p", event.player_id, own))
    if event.secondary_player_id is not None:
        result.append(("p", event.secondary_player_id, helper))
    if event.team_id is not None:
        team_line = dict(own, assists=int(kind == "fg_made" and event.secondary_player_id is not None))
        result.append(("t", event.team_id, team_line))
        if event.secondary_player_id is not None and kind in ("fg_missed", "turnover"):
            other = game.away_team_id if event.team_id == game.home_team_id else game.home_team_id
            result.append(("t", other, {"blocks": helper["blocks"], "steals": helper["steals"]}))
    return result


def reference_line(
    league: League, kind: str, subject_id: int, as_of: dt.datetime, scope: str, season_type: str
) -> tuple[int, ...]:
    """The stat line as the API defines it, by brute force over every event."""
    games = {game.game_id: game for game in league.games}
    types = ("regular", "playoffs") if season_type == "all" else (season_type,)
    mine = [
        (event, stats)
        for event in league.events
        for credit_kind, credited, stats in credits(event, games[event.game_id])
        if credit_kind == kind and credited == subject_id
    ]
    if scope == "game":
        # A player's games are those they appear in; a team's are on the schedule.
        played = (
            [games[event.game_id] for event, _ in mine if games[event.game_id].tipoff_at <= as_of]
            if kind == "p"
            else [g for g in league.games if subject_id in (g.home_team_id, g.away_team_id) and g.tipoff_at <= as_of]
        )
        if not played:
            return (0,) * len(STATS)
        latest = max(played, key=lambda game: (game.tipoff_at, game.game_id))
        counted = [(e, s) for e, s in mine if e.game_id == latest.game_id and e.wall_clock_time <= as_of]
    else:
        season = None
        if scope == "season":
            started = [game for game in league.games if game.tipoff_at <= as_of]
            if not started:
                return (0,) * len(STATS)
            season = max(started, key=lambda game: game.tipoff_at).season
        counted = [
            (e, s)
            for e, s in mine
            if e.wall_clock_time <= as_of
            and games[e.game_id].season_type in types
            and (season is None or games[e.game_id].season == season)
        ]
    totals = dict.fromkeys(STATS, 0)
    totals["games_played"] = len({event.game_id for event, _ in counted})
    for _, stats in counted:
        for name, value in stats.items():
            totals[name] += value
    return tuple(totals[name] for name in STATS)


# --- a tiny random league for property tests ------------------------------------------------------

SEASONS = ("2014-15", "2015-16")
TEAMS = (Team(1610612747, "LAL", "Los Angeles Lakers"), Team(1610612762, "UTA", "Utah Jazz"),
         Team(1610612744, "GSW", "Golden State Warriors"))  # fmt: skip
ROSTERS = {1610612747: (977, 1001), 1610612762: (2001, 2002), 1610612744: (3001, 3002)}
PLAYERS = (Player(977, "Kobe Bryant"), Player(1001, "Jordan Clarkson"), Player(2001, "Gordon Hayward"),
           Player(2002, "Rudy Gobert"), Player(3001, "Stephen Curry"), Player(3002, "Draymond Green"))  # fmt: skip
SEASON_OPENS = {
    SEASONS[0]: dt.datetime(2014, 10, 28, 23, 0, tzinfo=UTC),
    SEASONS[1]: dt.datetime(2015, 10, 27, 23, 0, tzinfo=UTC),
}
EVENT_KINDS = ("fg_made", "fg_missed", "ft_made", "ft_missed", "rebound_off", "rebound_def", "turnover", "foul",
               "substitution", "timeout", "jump_ball", "period_start", "period_end", "violation")  # fmt: skip


def make_event(
    game: Game,
    event_num: int,
    seconds: float,
    kind: str,
    *,
    side: int,
    who: int,
    helper: bool,
    three: bool,
    foul_kind: str | None = None,
    ft_value: int | None = None,
    source_event_id: str | None = None,
) -> Event:
    """One valid event of `kind`; `side` picks the team (0 home, 1 away), `who` the player, `helper` a secondary.

    `foul_kind` applies to fouls only and `ft_value` to free throws only (a made one scores it).
    """
    team = (game.home_team_id, game.away_team_id)[side]
    other = (game.home_team_id, game.away_team_id)[1 - side]
    player: int | None = ROSTERS[team][who]
    secondary = None
    if kind in ("period_start", "period_end"):
        team_id: int | None = None
        player = None
    else:
        team_id = team
    if kind in ("timeout",) or (
        kind in ("rebound_off", "rebound_def", "turnover") and not helper and who == 0 and three
    ):
        player = None  # team events: timeouts, team rebounds, team turnovers
    if helper and player is not None:
        if kind in {"fg_made", "substitution"}:
            secondary = ROSTERS[team][1 - who]
        elif kind in ("fg_missed", "turnover"):
            secondary = ROSTERS[other][who]
    is_three = three and kind in ("fg_made", "fg_missed")
    value = ft_value if kind in ("ft_made", "ft_missed") else None
    points = (3 if is_three else 2) if kind == "fg_made" else (value or 1) if kind == "ft_made" else 0
    moment = game.tipoff_at + dt.timedelta(milliseconds=round(seconds * 1000))
    return Event(
        game.game_id, event_num, 1, "12:00", moment, kind, team_id, player, secondary, points, is_three,
        foul_kind if kind == "foul" else None, value, source_event_id,
    )  # fmt: skip
