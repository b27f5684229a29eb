"""What every feed importer produces: one game, its people and its canonical events, before loading.

A format module (`stats_v2`, `stats_v3`, `live`) reads one feed document and
returns a `FeedGame`; the box-score module returns a `BoxScore`. Nothing here
touches a database: the import pipeline turns a FeedGame into the canonical CSV
rows (deriving a wall clock where the feed has none) and loads it with
`temporaldb.load` in replace-games mode, then reconciles it with its box score.

Canonical event types and their stat rules are those of nba.play_by_play
(sql/migrations, README "Canonical input"), plus three fields the feeds carry:
- `foul_kind` (foul events): one of FOUL_KINDS; the `fouls` stat counts the
  personal fouls, as the box score does, and not the NON_PERSONAL_FOUL_KINDS;
- `ft_value` (free throws): what a made free throw is worth (1, or 2 or 3 in
  leagues with one-shot free throws); `points` of an ft_made equals it;
- `source_event_id`: the feed's own id of the row(s) the event came from.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Final, NamedTuple

EVENT_TYPES: Final = frozenset(
    {
        "fg_made", "fg_missed", "ft_made", "ft_missed", "rebound_off", "rebound_def", "turnover", "foul",
        "substitution", "timeout", "jump_ball", "period_start", "period_end", "violation",
    }
)  # fmt: skip
FOUL_KINDS: Final = frozenset(
    {
        "personal", "shooting", "offensive", "loose_ball", "personal_take", "transition_take", "away_from_play",
        "clear_path", "inbound", "flagrant_1", "flagrant_2", "double_personal", "technical", "double_technical",
        "defensive_3_seconds", "delay_technical",
    }
)  # fmt: skip
# Not personal fouls: the box score's PF leaves them out, and so does the `fouls` stat.
NON_PERSONAL_FOUL_KINDS: Final = frozenset({"technical", "double_technical", "defensive_3_seconds", "delay_technical"})
SEASON_TYPES: Final = ("regular", "playoffs")
"""What the database holds today; other kinds of games are refused by name (see UnsupportedGameError)."""


class FeedError(Exception):
    """A feed document that cannot be imported; the message names the file (or object) and the event."""


class UnsupportedGameError(FeedError):
    """A game of a kind the database does not hold (preseason, All-Star, another league): refused, never merged."""


# ------------------------------------------------------------------------------------------------ game ids

READ_LEAGUES: Final = {"00": "nba", "20": "gleague"}
"""League prefixes of the games read, to FeedGame.league."""
READ_SEASON_TYPES: Final = {"2": "regular", "4": "playoffs"}
"""Season-type digits of the games read, to SEASON_TYPES."""
LEAGUE_NAMES: Final = {"00": "NBA", "01": "ABA", "10": "WNBA", "20": "G League"}
"""Every known league prefix (stats.nba.com LeagueID), for messages."""
SEASON_TYPE_NAMES: Final = {
    "1": "preseason", "2": "regular-season", "3": "All-Star", "4": "playoff", "5": "play-in",
    "6": "in-season tournament final",
}  # fmt: skip
"""Every known season-type digit, for messages. Play-in games count towards neither the regular season nor the
playoffs, and the NBA Cup final (6, from 2023-24) not towards the regular season, unlike the Cup's other games."""
READ_GAMES: Final = "only NBA and G League regular-season and playoff games are read"
_GAME_ID: Final = re.compile(r"(?P<league>[0-9]{2})(?P<type>[0-9])(?P<yy>[0-9]{2})[0-9]{5}")


class GameKind(NamedTuple):
    game_id: int
    league: str
    """'nba' or 'gleague'."""
    season: str
    """e.g. '2016-17'."""
    season_type: str
    """One of SEASON_TYPES."""


def game_kind(game_id: object, source: str) -> GameKind:
    """What a ten-digit game id `LLSyyNNNNN` says, for every feed format alike.

    LL is the league (LEAGUE_NAMES), S the season type (SEASON_TYPE_NAMES), yy the season's first year (46-99:
    19yy, the BAA's first season being 1946-47; else 20yy). An int is the id without its leading zeros (JSON
    numbers). FeedError when it is not such an id; UnsupportedGameError for a game that is not an NBA or
    G League regular-season or playoff game, naming its kind: never merged into another season type.
    """
    text = f"{game_id:010d}" if isinstance(game_id, int) and not isinstance(game_id, bool) else game_id
    match = _GAME_ID.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise FeedError(f"{source}: game id {game_id!r} is not a ten-digit NBA game id (LLSyyNNNNN)")
    league, season_type = READ_LEAGUES.get(match["league"]), READ_SEASON_TYPES.get(match["type"])
    if league is None or season_type is None:
        kind = _kind_of(match["league"], match["type"])
        raise UnsupportedGameError(f"{source}: game {match[0]} is {kind}; {READ_GAMES}")
    start = int(match["yy"]) + (1900 if int(match["yy"]) >= 46 else 2000)
    return GameKind(int(match[0]), league, f"{start}-{(start + 1) % 100:02d}", season_type)


def _kind_of(league_code: str, type_digit: str) -> str:
    """'an NBA preseason game', 'a WNBA regular-season game', 'a league-15 playoff game'."""
    league = LEAGUE_NAMES.get(league_code, f"league-{league_code}")
    season_type = SEASON_TYPE_NAMES.get(type_digit, f"season-type-{type_digit}")
    article = "an" if league in ("NBA", "ABA") else "a"
    return f"{article} {league} {season_type} game"


# ------------------------------------------------------------------------------------------------ tip-off clock

_TWELVE_HOUR: Final = re.compile(r"(?P<hour>[0-9]{1,2}):(?P<minute>[0-9]{2}) ?(?P<half>[AP])\.?M\.?", re.IGNORECASE)


def twelve_hour_time(text: object) -> dt.time | None:
    """A 12-hour clock text ('7:11 PM') as a time of day; None when absent or not a real time ('25:99 PM').

    The feeds state tip-off only this way, to the minute and without a date; the caller knows the zone.
    """
    match = _TWELVE_HOUR.fullmatch(text.strip()) if isinstance(text, str) else None
    if match is None or not 1 <= int(match["hour"]) <= 12 or int(match["minute"]) > 59:
        return None
    hour = int(match["hour"]) % 12 + (12 if match["half"].upper() == "P" else 0)
    return dt.time(hour, int(match["minute"]))


@dataclass(frozen=True)
class FeedTeam:
    team_id: int
    abbreviation: str
    name: str


@dataclass(frozen=True)
class FeedPlayer:
    player_id: int
    full_name: str
    team_id: int


@dataclass(frozen=True)
class FeedEvent:
    """One canonical event, in the feed's order (which decides ties, not the feed's event numbers)."""

    period: int
    clock: str
    """Game clock remaining in the period, MM:SS or MM:SS.f."""
    event_type: str
    team_id: int | None = None
    player_id: int | None = None
    secondary_player_id: int | None = None
    points: int = 0
    is_three: bool = False
    foul_kind: str | None = None
    ft_value: int | None = None
    source_event_id: str | None = None
    wall_clock: dt.datetime | None = None
    """A real wall clock when the feed has one (UTC), else None; see `wall_clock_precision`."""


@dataclass(frozen=True)
class FeedGame:
    game_id: int
    league: str
    """'nba' or 'gleague'."""
    season: str
    """e.g. '2016-17'."""
    season_type: str
    home: FeedTeam
    away: FeedTeam
    players: tuple[FeedPlayer, ...]
    events: tuple[FeedEvent, ...]
    source: str
    """The file or object it came from, for messages."""
    feed_format: str
    """'v2', 'v3' or 'live'."""
    tipoff_at: dt.datetime | None = None
    wall_clock_precision: str = "none"
    """'100ms' (live timeActual), 'minute' (v2 WCTIMESTRING) or 'none'."""
    skipped: Counter[str] = field(default_factory=Counter)
    """Feed rows not turned into events, by feed type (e.g. 'v2:18 instant replay'), with their counts."""
    merged: Counter[str] = field(default_factory=Counter)
    """Feed rows folded into another event (a steal into its turnover, a substitution pair), by feed type."""
    tipoff_eastern: dt.time | None = None
    """The first period's start as the feed's own clock text states it, US Eastern local time to the minute, no
    date (stats.nba.com v2 WCTIMESTRING, v3 "Start of 1st Period (7:11 PM EST)"); None when the feed does not
    say. The live feed has `tipoff_at` instead."""


STATS: Final = (
    "points", "fgm", "fga", "fg3m", "fg3a", "ftm", "fta", "oreb", "dreb", "rebounds",
    "assists", "steals", "blocks", "turnovers", "fouls",
)  # fmt: skip
"""The box score's stats besides games played (the 16th: a player with a line played)."""


@dataclass(frozen=True)
class BoxLine:
    subject_kind: str
    """'p' (player) or 't' (team)."""
    subject_id: int
    stats: dict[str, int]
    """Every name of STATS."""


@dataclass(frozen=True)
class BoxScore:
    game_id: int
    lines: tuple[BoxLine, ...]
    source: str
    team_rebounds: dict[int, int] = field(default_factory=dict)
    """Team rebounds per team, when the box score gives them apart (summary TEAM_REBOUNDS, live)."""
    team_turnovers: dict[int, int] = field(default_factory=dict)
    """Team turnovers per team (summary TEAM_TURNOVERS / TOTAL_TURNOVERS), when given."""
