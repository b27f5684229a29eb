"""Reading and validating canonical CSV rows for `temporaldb load` (see temporaldb/load.py for the rest).

Files stream line by line (.csv or .csv.gz); a header names the columns in any
order. Each row is checked here, in Python, so that a bad one stops the load
with one line, `file:line: reason`, before PostgreSQL sees it. events.csv has
eleven required columns and may add any of OPTIONAL_EVENT_COLUMNS; a file
without them loads as before (the missing values are NULL).
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Final, NamedTuple, TypeVar

from temporaldb.feeds.model import FOUL_KINDS

TEAM_COLUMNS: Final = ("team_id", "abbreviation", "name")
PLAYER_COLUMNS: Final = ("player_id", "full_name")
GAME_COLUMNS: Final = ("game_id", "season", "season_type", "home_team_id", "away_team_id", "tipoff_at")
EVENT_COLUMNS: Final = (
    "game_id", "event_num", "period", "clock", "wall_clock_time", "event_type",
    "team_id", "player_id", "secondary_player_id", "points", "is_three",
)  # fmt: skip
OPTIONAL_EVENT_COLUMNS: Final = ("foul_kind", "ft_value", "source_event_id")
"""May follow the required columns, any subset in any order; an empty value is NULL."""
EVENT_TYPES: Final = frozenset(
    (
        "fg_made", "fg_missed", "ft_made", "ft_missed", "rebound_off", "rebound_def", "turnover", "foul",
        "substitution", "timeout", "jump_ball", "period_start", "period_end", "violation",
    )
)  # fmt: skip
FREE_THROWS: Final = frozenset(("ft_made", "ft_missed"))
NEEDS_PLAYER: Final = frozenset(("fg_made", "fg_missed", "ft_made", "ft_missed", "substitution", "jump_ball"))
HAS_SECONDARY: Final = frozenset(("fg_made", "fg_missed", "turnover", "substitution"))
TRUE_WORDS: Final = frozenset(("true", "t", "1"))
FALSE_WORDS: Final = frozenset(("false", "f", "0"))
# Must equal nba.max_game_span() in sql/migrations/V0002__as_of_functions.sql.
MAX_GAME_SPAN: Final = dt.timedelta(hours=6)
CLOCK = re.compile(r"^[0-9]{1,2}:[0-5][0-9](\.[0-9]{1,3})?$")
SEASON = re.compile(r"^[0-9]{4}-[0-9]{2}$")


class LoadError(Exception):
    """The input is invalid; nothing was changed. The message starts with file:line when it can."""


@dataclass(frozen=True)
class GameInfo:
    home_team_id: int
    away_team_id: int
    earliest: dt.datetime
    latest: dt.datetime


@dataclass
class References:
    """What events may refer to: the database's rows overlaid with this load's files."""

    teams: set[int] = field(default_factory=set)
    players: set[int] = field(default_factory=set)
    games: dict[int, GameInfo] = field(default_factory=dict)
    game_lines: dict[int, int] = field(default_factory=dict)


class Lines:
    """Decoded lines of a .csv or .csv.gz file, with the bytes read so far for progress."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.size = path.stat().st_size
        self._raw: IO[bytes] = path.open("rb")
        self._stream: IO[bytes] = (
            io.BufferedReader(gzip.GzipFile(fileobj=self._raw), buffer_size=1 << 20)
            if path.name.endswith(".gz")
            else self._raw
        )

    @property
    def position(self) -> int:
        return self._raw.tell()

    def __iter__(self) -> Iterator[tuple[int, str]]:
        try:
            for number, raw in enumerate(self._stream, start=1):
                yield number, raw.decode("utf-8").rstrip("\r\n")
        except UnicodeDecodeError as error:
            raise LoadError(f"{self.path.name}: not UTF-8 ({error})") from None
        except (OSError, EOFError) as error:
            raise LoadError(f"{self.path.name}: cannot read ({error})") from None

    def close(self) -> None:
        self._stream.close()
        self._raw.close()


def _split(line: str) -> list[str]:
    # Canonical rows are plain tokens; the csv module is only needed for quoted fields.
    return next(csv.reader([line])) if '"' in line else line.split(",")


def _header(
    path: Path, line: str, expected: tuple[str, ...], optional: tuple[str, ...]
) -> tuple[tuple[str, ...], list[int]]:
    """The columns of a file (expected ones first, then the optional ones it has) and their positions in it."""
    names = _split(line.lstrip("\ufeff"))
    unknown = [name for name in names if name not in expected and name not in optional]
    if unknown and optional:
        raise LoadError(
            f"{path.name}:1: unknown column{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}; the columns are "
            f"{','.join(expected)} and optionally {', '.join(optional)}"
        )
    if unknown or len(set(names)) != len(names) or not set(expected) <= set(names):
        raise LoadError(f"{path.name}:1: header must name the columns {','.join(expected)}; found {line!r}")
    columns = (*expected, *(name for name in optional if name in names))
    return columns, [names.index(name) for name in columns]


def _whole(text: str, what: str) -> int:
    if not (text.isascii() and text.isdigit()):
        raise ValueError(f"{what} must be a whole number, got {text!r}")
    return int(text)


def _optional_id(text: str, what: str) -> int | None:
    return None if text == "" else _whole(text, what)


def _instant(text: str, what: str) -> dt.datetime:
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{what} {text!r} is not an ISO 8601 timestamp") from None
    if moment.tzinfo is None:
        raise ValueError(f"{what} {text!r} needs a UTC offset, e.g. 2016-04-14T02:30:00.000+00:00")
    return moment


def read_rows(
    lines: Lines, expected: tuple[str, ...], optional: tuple[str, ...] = ()
) -> tuple[tuple[str, ...], Iterator[tuple[int, list[str]]]]:
    """The file's columns (`expected`, then the `optional` ones it has) and its data rows in that order.

    The header is read now, so a bad one fails before anything is sent; rows are read as they are iterated.
    """
    iterator = iter(lines)
    first = next(iterator, None)
    if first is None:
        raise LoadError(f"{lines.path.name}: empty file; the first line must be the header")
    columns, positions = _header(lines.path, first[1], expected, optional)

    def rows() -> Iterator[tuple[int, list[str]]]:
        for number, line in iterator:
            if line == "":
                continue
            fields = _split(line)
            if len(fields) != len(columns):
                raise LoadError(f"{lines.path.name}:{number}: expected {len(columns)} fields, found {len(fields)}")
            yield number, [fields[position] for position in positions]

    return columns, rows()


class TeamRow(NamedTuple):
    team_id: int
    abbreviation: str
    name: str


class PlayerRow(NamedTuple):
    player_id: int
    full_name: str


class GameRow(NamedTuple):
    game_id: int
    season: str
    season_type: str
    home_team_id: int
    away_team_id: int
    tipoff_at: dt.datetime


def parse_team(fields: list[str]) -> TeamRow:
    team_id, abbreviation, name = fields
    if not abbreviation or not name:
        raise ValueError("abbreviation and name must not be empty")
    return TeamRow(_whole(team_id, "team_id"), abbreviation, name)


def parse_player(fields: list[str]) -> PlayerRow:
    player_id, full_name = fields
    if not full_name:
        raise ValueError("full_name must not be empty")
    return PlayerRow(_whole(player_id, "player_id"), full_name)


def parse_game(fields: list[str]) -> GameRow:
    game_id, season, season_type, home, away, tipoff = fields
    if not SEASON.match(season):
        raise ValueError(f"season must look like 2015-16, got {season!r}")
    if season_type not in ("regular", "playoffs"):
        raise ValueError(f"season_type must be regular or playoffs, got {season_type!r}")
    home_id, away_id = _whole(home, "home_team_id"), _whole(away, "away_team_id")
    if home_id == away_id:
        raise ValueError("home_team_id and away_team_id are the same team")
    return GameRow(_whole(game_id, "game_id"), season, season_type, home_id, away_id, _instant(tipoff, "tipoff_at"))


Row = TypeVar("Row", TeamRow, PlayerRow, GameRow)


def read_small(path: Path, expected: tuple[str, ...], parse: Callable[[list[str]], Row]) -> list[tuple[int, Row]]:
    """Parse a small file whole (teams, players, games), refusing duplicate ids."""
    lines = Lines(path)
    try:
        parsed: list[tuple[int, Row]] = []
        seen: dict[int, int] = {}
        for number, fields in read_rows(lines, expected)[1]:
            try:
                row = parse(fields)
            except ValueError as error:
                raise LoadError(f"{path.name}:{number}: {error}") from None
            if row[0] in seen:
                raise LoadError(f"{path.name}:{number}: {expected[0]} {row[0]} already appears on line {seen[row[0]]}")
            seen[row[0]] = number
            parsed.append((number, row))
        return parsed
    finally:
        lines.close()


def _is_three(text: str, event_type: str) -> bool:
    if text in TRUE_WORDS:
        if event_type not in ("fg_made", "fg_missed"):
            raise ValueError(f"is_three is true on a {event_type} event")
        return True
    if text in FALSE_WORDS:
        return False
    raise ValueError(f"is_three must be true or false, got {text!r}")


def _check_points(points: int, event_type: str, is_three: bool, ft_value: int | None) -> None:
    """Points follow the event: 2 or 3 on fg_made (by is_three), ft_value (default 1) on ft_made, else 0."""
    if event_type == "fg_made":
        expected, detail = (3 if is_three else 2), f" with is_three {'true' if is_three else 'false'}"
    elif event_type == "ft_made":
        expected, detail = (ft_value or 1), "" if ft_value is None else f" with ft_value {ft_value}"
    else:
        expected, detail = 0, ""
    if points != expected:
        raise ValueError(f"points {points} contradict event_type {event_type}{detail} (expected {expected})")


def _quoted(text: str) -> str:
    """A CSV field for COPY (format csv) that keeps its text; an empty one stays unquoted, i.e. NULL."""
    return '"' + text.replace('"', '""') + '"' if text else ""


class EventChecker:
    """Validates events.csv rows, in the order of `columns`, against the stat rules and the known references."""

    def __init__(self, references: References, columns: tuple[str, ...]) -> None:
        self.references = references
        self.columns = columns
        self._foul_kind = columns.index("foul_kind") if "foul_kind" in columns else None
        self._ft_value = columns.index("ft_value") if "ft_value" in columns else None

    def copy_line(self, fields: list[str]) -> str:
        """Check one row; return it as a line of COPY (format csv) input for `columns`."""
        self.check(fields)
        line = ",".join(fields)
        # A field that held a comma or a quote came from a quoted CSV field (source_event_id, say): quote again.
        if '"' in line or line.count(",") != len(fields) - 1:
            line = ",".join(_quoted(text) for text in fields)
        return line

    def check(self, fields: list[str]) -> None:
        game_id_text, event_num, period, clock, wall, event_type, team, player, secondary, points, three = fields[:11]
        game = self.references.games.get(_whole(game_id_text, "game_id"))
        if game is None:
            raise ValueError(f"unknown game_id {game_id_text} (not in games.csv nor in the database)")
        if _whole(event_num, "event_num") < 1:
            raise ValueError("event_num must be 1 or more")
        if not 1 <= _whole(period, "period") <= 20:
            raise ValueError(f"period must be between 1 and 20, got {period}")
        if not CLOCK.match(clock):
            raise ValueError(f"clock must look like MM:SS or MM:SS.f, got {clock!r}")
        moment = _instant(wall, "wall_clock_time")
        if not game.earliest <= moment <= game.latest:
            raise ValueError(
                f"wall_clock_time {wall} is outside game {game_id_text}: from tip-off "
                f"{game.earliest.isoformat()} to {MAX_GAME_SPAN.seconds // 3600} hours after"
            )
        if event_type not in EVENT_TYPES:
            raise ValueError(f"unknown event_type {event_type!r} (one of {', '.join(sorted(EVENT_TYPES))})")
        self._check_people(game, game_id_text, event_type, team=team, player=player, secondary=secondary)
        is_three = _is_three(three, event_type)
        if self._foul_kind is not None:
            self._check_foul_kind(event_type, fields[self._foul_kind])
        ft_value = None if self._ft_value is None else self._checked_ft_value(event_type, fields[self._ft_value])
        _check_points(_whole(points, "points"), event_type, is_three, ft_value)

    @staticmethod
    def _check_foul_kind(event_type: str, foul_kind: str) -> None:
        if foul_kind == "":
            return
        if foul_kind not in FOUL_KINDS:
            raise ValueError(f"unknown foul_kind {foul_kind!r} (one of {', '.join(sorted(FOUL_KINDS))})")
        if event_type != "foul":
            raise ValueError(f"foul_kind {foul_kind} on a {event_type} event (only foul events have one)")

    @staticmethod
    def _checked_ft_value(event_type: str, text: str) -> int | None:
        if text == "":
            return None
        value = _whole(text, "ft_value")
        if not 1 <= value <= 3:
            raise ValueError(f"ft_value must be between 1 and 3, got {text}")
        if event_type not in FREE_THROWS:
            raise ValueError(f"ft_value on a {event_type} event (only ft_made and ft_missed have one)")
        return value

    def _check_people(
        self, game: GameInfo, game_id: str, event_type: str, *, team: str, player: str, secondary: str
    ) -> None:
        team_id = _optional_id(team, "team_id")
        player_id = _optional_id(player, "player_id")
        secondary_id = _optional_id(secondary, "secondary_player_id")
        if event_type in ("period_start", "period_end"):
            if team_id is not None or player_id is not None:
                raise ValueError(f"a {event_type} event has no team_id or player_id")
        elif team_id is None:
            raise ValueError(f"a {event_type} event needs the team_id it belongs to")
        if team_id is not None and team_id not in (game.home_team_id, game.away_team_id):
            raise ValueError(f"team_id {team_id} does not play in game {game_id}")
        if player_id is None and event_type in NEEDS_PLAYER:
            raise ValueError(f"a {event_type} event needs a player_id")
        if player_id is not None and player_id not in self.references.players:
            raise ValueError(f"unknown player_id {player_id}")
        if secondary_id is not None:
            if event_type not in HAS_SECONDARY:
                raise ValueError(
                    f"a {event_type} event has no secondary player (only {', '.join(sorted(HAS_SECONDARY))})"
                )
            if secondary_id not in self.references.players:
                raise ValueError(f"unknown secondary_player_id {secondary_id}")
            if secondary_id == player_id:
                raise ValueError("secondary_player_id is the same player as player_id")
