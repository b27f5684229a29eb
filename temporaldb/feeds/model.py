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
from collections import Counter
from dataclasses import dataclass, field
from typing import Final

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
