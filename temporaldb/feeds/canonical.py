"""From a parsed feed game to the canonical CSV rows `temporaldb load` takes.

- `event_num` is the event's position in the feed's order (from 1): the feed's
  own numbers are not always chronological, and stay as `source_event_id`.
- `wall_clock_time` is the feed's real clock where it has one (the live feed's
  timeActual, 0.1 s), else derived from the game clock as the README documents
  (`generate.py` uses the same rule): tip-off + the period's start + elapsed
  game clock x 2.4 + event_num milliseconds.
- Events the canonical format cannot hold are dropped and counted: those with
  no team other than period starts and ends (an official timeout, a team-less
  violation) carry no statistic.
- An event whose time falls outside its game (before tip-off or more than the
  loader's MAX_GAME_SPAN after it) is a FeedError naming the feed and the event,
  rather than the loader's error about a temporary CSV row.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from temporaldb.feeds.model import FeedError, FeedEvent, FeedGame
from temporaldb.generate import HALFTIME_MS, INTERMISSION_MS, OVERTIME_TENTHS, PERIOD_TENTHS, WALL_MS_PER_TENTH
from temporaldb.load_rows import MAX_GAME_SPAN, EventChecker, GameInfo, References

EVENT_COLUMNS: Final = (
    "game_id", "event_num", "period", "clock", "wall_clock_time", "event_type", "team_id", "player_id",
    "secondary_player_id", "points", "is_three", "foul_kind", "ft_value", "source_event_id",
)  # fmt: skip
TEAMLESS_EVENTS: Final = frozenset({"period_start", "period_end"})
_CLOCK = re.compile(r"^(\d{1,2}):([0-5]\d)(?:\.(\d))?\d*$")


@dataclass
class CanonicalGame:
    """One game's rows, in the columns of teams.csv, players.csv, games.csv and events.csv."""

    game_id: int
    teams: Sequence[tuple[object, ...]]
    players: Sequence[tuple[object, ...]]
    game: tuple[object, ...]
    events: Sequence[tuple[object, ...]]
    dropped: Counter[str] = field(default_factory=Counter)


def period_tenths(period: int) -> int:
    return PERIOD_TENTHS if period <= 4 else OVERTIME_TENTHS


def period_start_ms(period: int) -> int:
    """Real milliseconds from tip-off to the start of `period` under the documented stretch."""
    elapsed = 0
    for earlier in range(1, period):
        elapsed += period_tenths(earlier) * WALL_MS_PER_TENTH
        elapsed += HALFTIME_MS if earlier == 2 else INTERMISSION_MS
    return elapsed


def clock_tenths(clock: str) -> int:
    match = _CLOCK.match(clock)
    if match is None:
        raise ValueError(f"clock {clock!r} is not MM:SS or MM:SS.f")
    return (int(match[1]) * 60 + int(match[2])) * 10 + int(match[3] or 0)


def derived_wall_clock(tipoff_at: dt.datetime, period: int, clock: str, event_num: int) -> dt.datetime:
    elapsed_tenths = max(0, period_tenths(period) - clock_tenths(clock))
    offset_ms = period_start_ms(period) + elapsed_tenths * WALL_MS_PER_TENTH + event_num
    return tipoff_at + dt.timedelta(milliseconds=offset_ms)


def _instant(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="milliseconds")


def _event_row(game: FeedGame, event: FeedEvent, number: int, tipoff_at: dt.datetime) -> tuple[object, ...]:
    if event.wall_clock is not None:
        moment = event.wall_clock
    else:
        moment = derived_wall_clock(tipoff_at, event.period, event.clock, number)
    if not tipoff_at <= moment <= tipoff_at + MAX_GAME_SPAN:
        raise ValueError(
            f"its time {_instant(moment)} is outside game {game.game_id:010d}, which runs from tip-off "
            f"{_instant(tipoff_at)} to {MAX_GAME_SPAN.seconds // 3600} hours after"
        )
    return (
        game.game_id, number, event.period, event.clock, _instant(moment), event.event_type, event.team_id,
        event.player_id, event.secondary_player_id, event.points, "true" if event.is_three else "false",
        event.foul_kind, event.ft_value, event.source_event_id,
    )  # fmt: skip


def to_canonical(game: FeedGame, tipoff_at: dt.datetime | None = None) -> CanonicalGame:
    """The game's canonical rows; `tipoff_at` is needed unless the feed itself has one."""
    tipoff = tipoff_at or game.tipoff_at
    if tipoff is None or tipoff.tzinfo is None:
        raise FeedError(
            f"{game.source}: game {game.game_id} has no tip-off time with a time zone: give its box score "
            "(the summary's date) or a feed with a wall clock"
        )
    dropped: Counter[str] = Counter()
    events: list[tuple[object, ...]] = []
    for event in game.events:
        if event.team_id is None and event.event_type not in TEAMLESS_EVENTS:
            dropped[f"{event.event_type} without a team"] += 1
            continue
        try:
            events.append(_event_row(game, event, len(events) + 1, tipoff))
        except ValueError as error:
            raise FeedError(f"{game.source}: event {event.source_event_id}: {error}") from None
    teams = [(team.team_id, team.abbreviation, team.name) for team in (game.home, game.away)]
    players = sorted({(player.player_id, player.full_name) for player in game.players})
    row = (game.game_id, game.season, game.season_type, game.home.team_id, game.away.team_id, _instant(tipoff))
    return CanonicalGame(game.game_id, teams, players, row, events, dropped)


def checked_lines(game: CanonicalGame, source: str) -> list[str]:
    """The game's events as COPY-ready CSV lines, checked by the loader's own EventChecker.

    The references are the game's own (its teams, players and time span), which is all an imported event may
    name; the importer runs this in its worker processes and tells the loader the rows are checked, so the
    check runs in parallel instead of in the loading process. A row it refuses is the feed's error.
    """
    _, _, _, home, away, tipoff_text = game.game
    tipoff = dt.datetime.fromisoformat(str(tipoff_text))
    references = References(
        players={int(str(row[0])) for row in game.players},
        games={game.game_id: GameInfo(int(str(home)), int(str(away)), tipoff, tipoff + MAX_GAME_SPAN)},
    )
    checker = EventChecker(references, EVENT_COLUMNS)
    lines = []
    for row in game.events:
        try:
            lines.append(checker.copy_line(["" if value is None else str(value) for value in row]))
        except ValueError as error:
            raise FeedError(
                f"{source}: event {row[-1]} (game {game.game_id:010d}, event_num {row[1]}): {error}"
            ) from None
    return lines


class CanonicalWriter:
    """Writes games to a canonical folder one at a time: events stream to events.csv as each game comes,
    teams, players and games (one row each per id) are written by `close`."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.teams: dict[object, tuple[object, ...]] = {}
        self.players: dict[object, tuple[object, ...]] = {}
        self.games: dict[object, tuple[object, ...]] = {}
        self._events = (folder / "events.csv").open("w", newline="", encoding="utf-8")
        self._writer = csv.writer(self._events, lineterminator="\n")
        self._writer.writerow(EVENT_COLUMNS)

    def add(self, game: CanonicalGame, lines: Sequence[str] | None = None) -> None:
        """The game's rows; its events from `lines` (checked_lines) when given, else from `game.events`."""
        self.teams.update((row[0], row) for row in game.teams)
        self.players.update((row[0], row) for row in game.players)
        self.games[game.game_id] = game.game
        if lines is None:
            self._writer.writerows(_cells(row) for row in game.events)
        elif lines:
            self._events.write("\n".join(lines) + "\n")

    def close(self) -> Path:
        self._events.close()
        tables = (
            ("teams", ("team_id", "abbreviation", "name"), self.teams),
            ("players", ("player_id", "full_name"), self.players),
            ("games", ("game_id", "season", "season_type", "home_team_id", "away_team_id", "tipoff_at"), self.games),
        )
        for name, columns, rows in tables:
            with (self.folder / f"{name}.csv").open("w", newline="", encoding="utf-8") as handle:
                writer = csv.writer(handle, lineterminator="\n")
                writer.writerow(columns)
                writer.writerows(_cells(row) for row in rows.values())
        return self.folder


def _cells(row: tuple[object, ...]) -> list[object]:
    return ["" if value is None else value for value in row]


def write_folder(games: Sequence[CanonicalGame], folder: Path) -> Path:
    """teams.csv, players.csv, games.csv and events.csv (with the optional columns) for `temporaldb load`."""
    writer = CanonicalWriter(folder)
    for game in games:
        writer.add(game)
    return writer.close()
