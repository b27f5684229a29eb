"""stats.nba.com playbyplayv3 (`{"game": {"gameId", "actions": [...]}}`) to a FeedGame.

v3 has one person per row and no wall clock per event (`wall_clock` None, precision 'none', no
`tipoff_at`), but period rows state the wall clock to the minute, "Start of 1st Period (7:11 PM EST)":
the start of period 1's becomes `tipoff_eastern` (EST or EDT, US Eastern local time; None when it states
none). Rows keep the feed's order, which decides ties; an event's `source_event_id` is its row's
`actionNumber` (a steal or block row shares the number of the turnover or miss it belongs to). Home and
away come from `location` ('h'/'v'); a team is named by its tricode (v3 gives nothing else). League,
season and season type come from the game id by `model.game_kind`, as in every format.

Mapping, v3 actionType / subType -> canonical event:
- period / start, end -> period_start, period_end (no team, no player).
- Jump Ball -> jump_ball: the jumper of the team that won the tip ("Jump Ball A vs. B: Tip to C"), no secondary
  (B, looked up in the other team).
- Made Shot -> fg_made, points = shotValue (2 or 3), is_three; secondary = the assister of "(Name n AST)".
- Missed Shot -> fg_missed, is_three; secondary = the blocker of the blank-actionType row "Name BLOCK (n BLK)"
  with the same actionNumber (merged, counted 'v3:block').
- Free Throw / Free Throw [Technical |Flagrant |Clear Path ][k of n] -> ft_made, or ft_missed when the
  description starts with MISS; ft_value 1. One-shot free throws (G League 2019-20: "Free Throw 2PT",
  "Free Throw Technical 1PT") -> ft_value 1, 2 or 3, the points of a make.
- Rebound (any subType) -> rebound_off when the rebounder's team took the last missed shot or free throw of
  the period, else rebound_def; personId = the team id (teamId 0) or personId 0 -> a team rebound.
- Turnover (any subType) -> turnover; secondary = the stealer of the blank row "Name STEAL (n STL)" with the
  same actionNumber (merged, 'v3:steal'); personId = the team id -> a team turnover.
  Turnover / No Turnover -> skipped ('v3:Turnover No Turnover').
- Foul -> foul with foul_kind = FOUL_KIND_BY_SUBTYPE[subType]; personId = the team id -> a team foul (bench
  or coach technical; with a roster, a personId not in it on a non-personal foul is staff: team foul too).
  Double Personal / Double Technical: also a foul for the other player named in "... - A (4 PF), B (1 PF)",
  unless that player has a foul row of their own at the same moment.
- Violation (any subType) -> violation (player or team); without a team skipped ('v3:Violation without team').
- Timeout (any subType) -> timeout of the team; without a team (official) skipped ('v3:Timeout without team').
- Substitution "SUB: In FOR Out" (one row, personId = Out) -> substitution: player_id = In (looked up by name
  in Out's team), secondary = Out.
- Instant Replay, Ejection -> skipped ('v3:Instant Replay', 'v3:Ejection').

Anything else (an unknown actionType, a foul or free-throw subType not in the
tables, a name that matches no player or several) is a FeedError naming the
source and the actionNumber. Names in descriptions are family names as in
`playerName`, without accents ("Vucevic" for Vučević); they are looked up in
the row's team among the roster (the box score's players, when the caller
passes it) and the players seen in the feed's own rows.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Final

from temporaldb.feeds.model import (
    NON_PERSONAL_FOUL_KINDS,
    FeedError,
    FeedEvent,
    FeedGame,
    FeedPlayer,
    FeedTeam,
    game_kind,
    twelve_hour_time,
)

FORMAT: Final = "v3"

FOUL_KIND_BY_SUBTYPE: Final = {
    "Personal": "personal", "Personal Block": "personal", "Shooting": "shooting", "Shooting Block": "shooting",
    "Loose Ball": "loose_ball", "Offensive": "offensive", "Offensive Charge": "offensive",
    "Personal Take": "personal_take", "Transition Take": "transition_take", "Away From Play": "away_from_play",
    "Clear Path": "clear_path", "Inbound": "inbound", "Flagrant Type 1": "flagrant_1", "Flagrant Type 2": "flagrant_2",
    "Double Personal": "double_personal", "Technical": "technical", "Hanging Technical": "technical",
    "Non-Unsportsmanlike Technical": "technical", "Taunting Technical": "technical",
    "Excess Timeout Technical": "technical", "Too Many Players Technical": "technical", "Flopping": "technical",
    "Bench": "technical", "Double Technical": "double_technical", "Delay Technical": "delay_technical",
    "Defense 3 Second": "defensive_3_seconds",
}  # fmt: skip
"""Every foul subType v3 uses, to model.FOUL_KINDS. Flopping is a non-unsportsmanlike technical (2023-24 rule)."""
ACTION_TYPES: Final = (
    "period", "jump ball", "made shot", "missed shot", "free throw", "rebound", "turnover", "foul", "violation",
    "timeout", "substitution", "", "instant replay", "ejection",
)  # fmt: skip
"""Every actionType read (lower case; "" is a steal or block row); any other is a FeedError. README lists them."""
DOUBLE_FOULS: Final = frozenset({"Double Personal", "Double Technical"})
NO_TURNOVER: Final = "No Turnover"

CLOCK: Final = re.compile(r"^PT(?P<m>\d{1,2})M(?P<s>\d{1,2})(?:\.(?P<f>\d+))?S$")
STATED_CLOCK: Final = re.compile(r"\((?P<time>[^()]+?) (?:EST|EDT)\)$")
"""The wall clock a period row's description ends with: "Start of 1st Period (7:11 PM EST)"."""
FREE_THROW: Final = re.compile(
    r"^Free Throw(?: (?:Technical|Flagrant|Clear Path))?(?: [1-3] of [1-3]| (?P<value>[1-3])PT)?$"
)
ASSIST: Final = re.compile(r"\((?P<name>[^()]+?) \d+ AST\)")
CREDIT: Final = re.compile(r"^(?P<name>.+?) (?P<kind>STEAL|BLOCK) \(\d+ (?:STL|BLK)\)$")
SUBSTITUTION: Final = re.compile(r"^SUB:\s*(?P<incoming>.+?)\s+FOR\s+(?P<outgoing>.+?)\s*$")
JUMP_BALL: Final = re.compile(r"^Jump Ball (?P<first>.+?) vs\.? (?P<second>[^:]+?)\s*(?::|$)")
TIP_TO: Final = re.compile(r":\s*Tip to (?P<receiver>.+?)\s*$")
DOUBLE_FOUL: Final = re.compile(
    r"-\s*(?P<first>[^,()]+?)\s*(?:\(\d+ PF\))?\s*,\s*(?P<second>[^,()]+?)\s*(?:\(\d+ PF\))?\s*(?:\([^()]*\))?\s*$"
)
NAME_SUFFIXES: Final = frozenset({"jr", "sr", "ii", "iii", "iv", "v"})


def looks_like(document: object) -> bool:
    """A playbyplayv3 document: game.actions rows with actionId and location, and no live-feed timeActual."""
    if not isinstance(document, dict):
        return False
    game = document.get("game")
    if not isinstance(game, dict):
        return False
    actions = game.get("actions")
    if not isinstance(actions, list) or not actions or not isinstance(actions[0], dict):
        return False
    first = actions[0]
    return {"actionNumber", "actionType", "actionId", "location"} <= first.keys() and "timeActual" not in first


def parse(document: object, source: str, roster: Mapping[int, FeedPlayer] | None = None) -> FeedGame:
    """The game of one playbyplayv3 document; `roster` (player id to box-score player) resolves description names."""
    game = _game_object(document, source)
    game_id, league, season, season_type = game_kind(game.get("gameId"), source)
    rows = _rows(game["actions"], source)
    home, away = _teams(rows, source)
    names = _names(rows, (home.team_id, away.team_id), roster)
    parser = _Parser(source, rows, (home.team_id, away.team_id), names, roster)
    parser.run()
    return FeedGame(
        game_id=game_id, league=league, season=season, season_type=season_type, home=home, away=away,
        players=names.players(parser.player_ids()), events=tuple(parser.events), source=source,
        feed_format=FORMAT, tipoff_at=None, wall_clock_precision="none", skipped=parser.skipped,
        merged=parser.merged, tipoff_eastern=tipoff_eastern(rows),
    )  # fmt: skip


def _game_object(document: object, source: str) -> dict[str, object]:
    game = document.get("game") if isinstance(document, dict) else None
    if not isinstance(game, dict) or not isinstance(game.get("actions"), list):
        raise FeedError(f"{source}: not a playbyplayv3 document (no game.actions list)")
    return game


# ---------------------------------------------------------------------------------------------------------------
# Rows


@dataclass(frozen=True)
class _Row:
    number: int
    period: int
    clock: str
    team_field: int
    tricode: str
    person: int
    name: str
    name_i: str
    location: str
    description: str
    action_type: str
    sub_type: str
    shot_value: int

    @property
    def label(self) -> str:
        kind = self.action_type or "blank actionType"
        return f"actionNumber {self.number} ({kind}{' / ' + self.sub_type if self.sub_type else ''})"


def _rows(actions: object, source: str) -> list[_Row]:
    rows = []
    for position, action in enumerate(actions if isinstance(actions, list) else ()):
        if not isinstance(action, dict):
            raise FeedError(f"{source}: game.actions[{position}] is not an object")
        rows.append(_row(action, source, position))
    return rows


def _row(action: Mapping[str, object], source: str, position: int) -> _Row:
    number = _whole(action, "actionNumber", f"{source}: game.actions[{position}]", required=True)
    where = f"{source}: actionNumber {number}"
    period = _whole(action, "period", where, required=True)
    if period < 1:
        raise FeedError(f"{where}: period must be 1 or more, got {period}")
    return _Row(
        number=number, period=period, clock=canonical_clock(_text(action, "clock"), where),
        team_field=_whole(action, "teamId", where), tricode=_text(action, "teamTricode"),
        person=_whole(action, "personId", where), name=_text(action, "playerName"),
        name_i=_text(action, "playerNameI"), location=_text(action, "location"),
        description=_text(action, "description"), action_type=_text(action, "actionType"),
        sub_type=_text(action, "subType"), shot_value=_whole(action, "shotValue", where),
    )  # fmt: skip


def _whole(action: Mapping[str, object], key: str, where: str, *, required: bool = False) -> int:
    value = action.get(key)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    if not required and value in (None, ""):
        return 0
    raise FeedError(f"{where}: {key} must be a whole number, got {value!r}")


def _text(action: Mapping[str, object], key: str) -> str:
    value = action.get(key)
    return value.strip() if isinstance(value, str) else ""


def canonical_clock(clock: str, where: str) -> str:
    """'PT11M05.00S' -> '11:05', 'PT00M46.20S' -> '00:46.2' (MM:SS or MM:SS.f, up to milliseconds)."""
    match = CLOCK.match(clock)
    if not match or int(match["s"]) >= 60:
        raise FeedError(f"{where}: clock {clock!r} is not like PT12M00.00S")
    fraction = (match["f"] or "").rstrip("0")[:3]
    return f"{int(match['m']):02d}:{int(match['s']):02d}" + (f".{fraction}" if fraction else "")


def tipoff_eastern(rows: list[_Row]) -> dt.time | None:
    """The US Eastern clock time the start of period 1 states ("... (7:11 PM EST)"); None when it states none.

    Only that row: the other rows with a clock (period ends, replays) are minutes after tip-off.
    """
    starts = (
        row for row in rows if (row.period, row.action_type.lower(), row.sub_type.lower()) == (1, "period", "start")
    )
    start = next(starts, None)
    stated = STATED_CLOCK.search(start.description) if start is not None else None
    return twelve_hour_time(stated["time"]) if stated is not None else None


def _teams(rows: list[_Row], source: str) -> tuple[FeedTeam, FeedTeam]:
    """Home and away from the rows' location ('h'/'v') and teamId; the name is the tricode (v3 has no other)."""
    seen: dict[str, dict[int, str]] = {"h": {}, "v": {}}
    for row in rows:
        if row.team_field and row.location in seen:
            codes = seen[row.location]
            codes[row.team_field] = codes.get(row.team_field) or row.tricode
    teams = []
    for location, side in (("h", "home"), ("v", "away")):
        codes = seen[location]
        if len(codes) != 1:
            raise FeedError(f"{source}: expected one {side} team (location '{location}'), found {sorted(codes)}")
        team_id, code = next(iter(codes.items()))
        teams.append(FeedTeam(team_id, code, code))
    if teams[0].team_id == teams[1].team_id:
        raise FeedError(f"{source}: team {teams[0].team_id} is both home and away")
    return teams[0], teams[1]


# ---------------------------------------------------------------------------------------------------------------
# Names in descriptions


def normalize_name(name: str) -> str:
    """Lower case, accents and punctuation dropped: 'N. Vučević' -> 'n vucevic', "O'Neale" -> 'oneale'."""
    folded = "".join(c for c in unicodedata.normalize("NFKD", name) if not unicodedata.combining(c))
    return " ".join(re.sub(r"[^0-9a-z ]", "", folded.lower().replace(".", " ")).split())


def _family_forms(name: str) -> set[str]:
    """Every trailing part of a name, with and without its Jr./III: 'Derrick Jones Jr.' -> 'jones jr', 'jones', ..."""
    tokens = normalize_name(name).split()
    suffix = tokens[-1:] if len(tokens) > 1 and tokens[-1] in NAME_SUFFIXES else []
    core = tokens[: len(tokens) - len(suffix)]
    forms = set()
    for start in range(len(core)):
        forms.add(" ".join(core[start:]))
        forms.add(" ".join(core[start:] + suffix))
    return forms


class _Names:
    """Players by team with the forms of their names; a description name must match exactly one of them."""

    def __init__(self, hint: str) -> None:
        self._hint = hint
        self._team: dict[int, int] = {}
        self._display: dict[int, str] = {}
        self._forms: dict[int, set[str]] = {}
        self._given: dict[int, set[str]] = {}

    def add(self, player_id: int, team_id: int, display: str, names: Iterable[str]) -> None:
        self._team.setdefault(player_id, team_id)
        self._display.setdefault(player_id, display)
        for name in filter(None, names):
            self._forms.setdefault(player_id, set()).update(_family_forms(name))
            tokens = normalize_name(name).split()
            if len(tokens) > 1:
                self._given.setdefault(player_id, set()).add(tokens[0])

    def candidates(self, name: str, teams: tuple[int, ...], exclude: int | None = None) -> set[int]:
        """Players of these teams whose name ends with `name`; else those 'Jal. Williams' matches by initials."""
        wanted = normalize_name(name)
        pool = [p for p, t in self._team.items() if t in teams and p != exclude]
        found = {p for p in pool if wanted in self._forms.get(p, ())}
        first, _, rest = wanted.partition(" ")
        if found or not rest:
            return found
        return {
            p for p in pool
            if rest in self._forms.get(p, ()) and any(g.startswith(first) for g in self._given.get(p, ()))
        }  # fmt: skip

    def resolve(self, name: str, teams: tuple[int, ...], exclude: int | None, where: str) -> int:
        found = self.candidates(name, teams, exclude)
        if len(found) == 1:
            return found.pop()
        what = "no player" if not found else f"several players ({', '.join(map(str, sorted(found)))})"
        of = f"team {teams[0]}" if len(teams) == 1 else f"teams {', '.join(map(str, teams))}"
        raise FeedError(f"{where}: the name {name!r} matches {what} of {of}{self._hint}")

    def team_of(self, player_id: int) -> int:
        return self._team[player_id]

    def players(self, ids: Iterable[int]) -> tuple[FeedPlayer, ...]:
        return tuple(FeedPlayer(p, self._display[p], self._team[p]) for p in ids)


def _names(rows: list[_Row], team_ids: tuple[int, int], roster: Mapping[int, FeedPlayer] | None) -> _Names:
    """The roster's players (box-score names) first, then everyone seen in a row of either team."""
    names = _Names("" if roster is not None else " (no roster given: pass the box score's players)")
    for player in (roster or {}).values():
        names.add(player.player_id, player.team_id, player.full_name, [player.full_name])
    for row in rows:
        if row.team_field in team_ids and row.person and row.person not in team_ids:
            names.add(row.person, row.team_field, row.name_i or row.name, [row.name, row.name_i])
    return names


# ---------------------------------------------------------------------------------------------------------------
# Events


class _Parser:
    """Turns the rows into canonical events, in feed order, keeping count of what it skips and merges."""

    def __init__(
        self,
        source: str,
        rows: list[_Row],
        team_ids: tuple[int, int],
        names: _Names,
        roster: Mapping[int, FeedPlayer] | None,
    ) -> None:
        self._source = source
        self._rows = rows
        self._team_ids = team_ids
        self._names = names
        self._roster = roster
        self.events: list[FeedEvent] = []
        self.skipped: Counter[str] = Counter()
        self.merged: Counter[str] = Counter()
        self._credits: dict[tuple[int, str], _Row] = {}
        self._foul_rows: set[tuple[int, str, str, int]] = set()
        self._last_miss_team: int | None = None
        handlers: dict[str, Callable[[_Row], None]] = {
            "period": self._period, "jump ball": self._jump_ball, "made shot": self._shot,
            "missed shot": self._shot, "free throw": self._free_throw, "rebound": self._rebound,
            "turnover": self._turnover, "foul": self._foul, "violation": self._violation, "timeout": self._timeout,
            "substitution": self._substitution, "": self._credit_row, "instant replay": self._skip,
            "ejection": self._skip,
        }  # fmt: skip
        self._handlers = {kind: handlers[kind] for kind in ACTION_TYPES}

    def run(self) -> None:
        self._index()
        for row in self._rows:
            handler = self._handlers.get(row.action_type.lower())
            if handler is None:
                raise self._error(row, f"unknown actionType {row.action_type!r}")
            handler(row)
        for (_, kind), row in self._credits.items():
            what = "turnover" if kind == "STEAL" else "missed shot"
            raise self._error(row, f"{row.description!r} has no {what} with the same actionNumber")

    def player_ids(self) -> list[int]:
        ids = (i for e in self.events for i in (e.player_id, e.secondary_player_id) if i is not None)
        return list(dict.fromkeys(ids))

    def _index(self) -> None:
        """Steal and block rows by actionNumber, and which players have a foul row of their own."""
        for row in self._rows:
            if row.action_type.lower() == "foul":
                self._foul_rows.add((row.period, row.clock, row.sub_type, row.person))
            if row.action_type:
                continue
            match = CREDIT.match(row.description)
            if not match:
                raise self._error(row, f"a blank actionType row must be a STEAL or a BLOCK, got {row.description!r}")
            if (row.number, match["kind"]) in self._credits:
                raise self._error(row, f"a second {match['kind']} row for the same actionNumber")
            self._credits[(row.number, match["kind"])] = row

    # --- helpers -------------------------------------------------------------------------------------------------

    def _error(self, row: _Row, message: str) -> FeedError:
        return FeedError(f"{self._source}: {row.label}: {message}")

    def _emit(
        self,
        row: _Row,
        event_type: str,
        team: int | None,
        player: int | None = None,
        *,
        secondary: int | None = None,
        points: int = 0,
        is_three: bool = False,
        foul_kind: str | None = None,
        ft_value: int | None = None,
    ) -> None:
        event = FeedEvent(row.period, row.clock, event_type, team, player, secondary, points, is_three, foul_kind)
        self.events.append(replace(event, ft_value=ft_value, source_event_id=str(row.number)))

    def _team(self, row: _Row) -> int | None:
        """teamId; for team rows (teamId 0) the team id in personId; else the side in `location`."""
        for candidate in (row.team_field, row.person):
            if candidate in self._team_ids:
                return candidate
        if not row.team_field and not row.person and row.location in ("h", "v"):
            return self._team_ids[0 if row.location == "h" else 1]
        return None

    def _player(self, row: _Row, *, staff_ok: bool = False) -> int | None:
        """The row's player; None for team rows (and, given a roster, for staff when `staff_ok`)."""
        if row.team_field not in self._team_ids or row.person in (0, *self._team_ids):
            return None
        if self._roster is not None and row.person not in self._roster:
            if staff_ok:
                return None
            raise self._error(row, f"personId {row.person} ({row.name or 'no name'}) is not in the roster")
        return row.person

    def _needs_team(self, row: _Row) -> int:
        team = self._team(row)
        if team is None:
            raise self._error(row, f"no team (teamId {row.team_field}, personId {row.person})")
        return team

    def _needs_player(self, row: _Row) -> int:
        player = self._player(row)
        if player is None:
            raise self._error(row, f"no player (teamId {row.team_field}, personId {row.person})")
        return player

    def _other(self, team: int) -> int:
        return self._team_ids[1] if team == self._team_ids[0] else self._team_ids[0]

    def _take_credit(self, row: _Row, kind: str, team: int) -> int | None:
        """The stealer or blocker of the blank row with this row's actionNumber, merged into this event."""
        credit = self._credits.pop((row.number, kind), None)
        if credit is None:
            return None
        player = self._needs_player(credit)
        if self._team(credit) == team:
            raise self._error(credit, f"{credit.name} is credited with a {kind} against their own team")
        self.merged[f"v3:{kind.lower()}"] += 1
        return player

    def _skip(self, row: _Row, reason: str = "") -> None:
        self.skipped[f"v3:{row.action_type}{' ' + reason if reason else ''}"] += 1

    # --- handlers ------------------------------------------------------------------------------------------------

    def _period(self, row: _Row) -> None:
        kind = row.sub_type.lower()
        if kind not in ("start", "end"):
            raise self._error(row, f"unknown period subType {row.sub_type!r} (start or end)")
        if kind == "start":
            self._last_miss_team = None
        self._emit(row, f"period_{kind}", None)

    def _jump_ball(self, row: _Row) -> None:
        team = self._team(row)
        if team is None:
            self._skip(row, "without team")
            return
        # One jumper, the one whose team won the tip ("Tip to C"), as the v2 and live importers do: the
        # canonical schema allows no secondary player on a jump ball.
        player = self._player(row)
        match = JUMP_BALL.match(row.description)
        tip = TIP_TO.search(row.description)
        if player is not None and match and tip:
            where = self._where(row, "jumper")
            tipped_to = self._names.candidates(tip["receiver"], (team, self._other(team)), None)
            if len(tipped_to) == 1 and self._names.team_of(next(iter(tipped_to))) != team:
                team = self._other(team)
                player = self._names.resolve(match["second"], (team,), None, where)
        self._emit(row, "jump_ball", team, player)

    def _where(self, row: _Row, what: str) -> str:
        return f"{self._source}: {row.label}: {what}"

    def _shot(self, row: _Row) -> None:
        team, player = self._needs_team(row), self._needs_player(row)
        three = row.shot_value == 3 or (row.shot_value not in (2, 3) and "3PT" in row.description)
        if row.action_type.lower() == "missed shot":
            self._last_miss_team = team
            blocker = self._take_credit(row, "BLOCK", team)
            self._emit(row, "fg_missed", team, player, secondary=blocker, is_three=three)
            return
        match = ASSIST.search(row.description)
        assister = None
        if match:
            assister = self._names.resolve(match["name"], (team,), player, self._where(row, "assist"))
        self._emit(row, "fg_made", team, player, secondary=assister, points=3 if three else 2,
                   is_three=three)  # fmt: skip

    def _free_throw(self, row: _Row) -> None:
        match = FREE_THROW.match(row.sub_type)
        if not match:
            raise self._error(row, f"unknown free-throw subType {row.sub_type!r}")
        team, player = self._needs_team(row), self._needs_player(row)
        value = int(match["value"] or 1)
        if row.description.upper().startswith("MISS"):
            self._last_miss_team = team
            self._emit(row, "ft_missed", team, player, ft_value=value)
        else:
            self._emit(row, "ft_made", team, player, points=value, ft_value=value)

    def _rebound(self, row: _Row) -> None:
        team = self._needs_team(row)
        if self._last_miss_team is None:
            raise self._error(row, f"a rebound with no missed shot or free throw before it in period {row.period}")
        kind = "rebound_off" if team == self._last_miss_team else "rebound_def"
        self._emit(row, kind, team, self._player(row))

    def _turnover(self, row: _Row) -> None:
        if row.sub_type == NO_TURNOVER:
            self._skip(row, NO_TURNOVER)
            return
        team = self._needs_team(row)
        stealer = self._take_credit(row, "STEAL", team)
        self._emit(row, "turnover", team, self._player(row), secondary=stealer)

    def _foul(self, row: _Row) -> None:
        kind = FOUL_KIND_BY_SUBTYPE.get(row.sub_type)
        if kind is None:
            raise self._error(row, f"unknown foul subType {row.sub_type!r}: add it to FOUL_KIND_BY_SUBTYPE")
        team = self._needs_team(row)
        player = self._player(row, staff_ok=kind in NON_PERSONAL_FOUL_KINDS)
        self._emit(row, "foul", team, player, foul_kind=kind)
        if row.sub_type in DOUBLE_FOULS and player is not None:
            self._double_foul_partner(row, player, kind)

    def _double_foul_partner(self, row: _Row, player: int, kind: str) -> None:
        """The other player of a double foul ('... - A (4 PF), B (1 PF)'), unless they have a row of their own."""
        match = DOUBLE_FOUL.search(row.description)
        if not match:
            return
        first_is_row = player in self._names.candidates(match["first"], self._team_ids)
        name = match["second"] if first_is_row else match["first"]
        partner = self._names.resolve(name, self._team_ids, player, self._where(row, "the double foul's other player"))
        if (row.period, row.clock, row.sub_type, partner) not in self._foul_rows:
            self._emit(row, "foul", self._names.team_of(partner), partner, foul_kind=kind)

    def _violation(self, row: _Row) -> None:
        team = self._team(row)
        if team is None:
            self._skip(row, "without team")
            return
        self._emit(row, "violation", team, self._player(row))

    def _timeout(self, row: _Row) -> None:
        team = self._team(row)
        if team is None:
            self._skip(row, "without team")
            return
        self._emit(row, "timeout", team)

    def _substitution(self, row: _Row) -> None:
        match = SUBSTITUTION.match(row.description)
        if not match:
            raise self._error(row, f"a substitution must read 'SUB: In FOR Out', got {row.description!r}")
        team, outgoing = self._needs_team(row), self._needs_player(row)
        incoming = self._names.resolve(match["incoming"], (team,), outgoing, self._where(row, "player coming in"))
        self._emit(row, "substitution", team, incoming, secondary=outgoing)

    def _credit_row(self, row: _Row) -> None:
        """Steal and block rows were indexed by `_index` and are merged by the turnover or miss they belong to."""
