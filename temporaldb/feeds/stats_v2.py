"""stats.nba.com playbyplayv2: one game's rows (`resultSets[0]`, headers and rowSet) as a FeedGame.

Every row is handled by the table `MAPPING`, keyed by (EVENTMSGTYPE, EVENTMSGACTIONTYPE) or
(EVENTMSGTYPE, None) for any action: it becomes canonical events or is skipped and counted in
`FeedGame.skipped` ("v2:<type> <reason>"). A type the table does not name is a FeedError naming the
file, the EVENTNUM and the type; so is a foul action missing from `FOUL_KIND_BY_ACTION`. v2 puts a
steal or a block on the row of its turnover or miss, so nothing is merged (`FeedGame.merged` stays empty).

- Order: the rowSet's order decides ties; EVENTNUM is not always chronological and only becomes
  `source_event_id`.
- People: PLAYERn_TEAM_ID set means a person of that team; PLAYERn_ID with no team id is a team
  (team rebounds, team turnovers, timeouts, jump balls tipped out of bounds). Teams and names come
  from the PLAYERn_TEAM_* and PLAYERn_NAME columns; the home team is the one whose rows are written in
  HOMEDESCRIPTION. A `Roster` (from the box score) fills names the feed lacks and is checked against it.
- Rebounds: offensive when the rebounding team is the team of the last missed field goal or free
  throw of the period (a team rebound after a missed first free throw is the shooter's team: offensive).
- Free throws: missed when the text says MISS; `ft_value` is 2 or 3 for the G League's one-shot free
  throws of 2019-20 ("Free Throw 2PT", action 31), else 1; an ft_made's points equal it.
- Wall clock: WCTIMESTRING ("8:11 PM") is a 12-hour clock text to the minute, with no date and no
  documented time zone. It is US Eastern: in 0021600270 (WAS @ OKC, 2016-11-30, an arena on US Central
  time) the first period starts at "8:11 PM", a 7 pm Central tip-off being 8 pm Eastern; the G League's
  2021900002 (Fort Wayne, on Eastern time) starts at "7:04 PM". A minute would tie dozens of events, so
  `wall_clock` stays None and `wall_clock_precision` is "none": the import derives event times from the
  tip-off (README "Where millisecond times come from"). `tipoff_eastern` is the WCTIMESTRING of the first
  period's start row (EVENTMSGTYPE 12 of period 1), else of the first row of period 1 that has one; None
  when there is none or it is not a real clock time.
- Games: GAME_ID is `LLSyyNNNNN`, read by `model.game_kind` as in every format: NBA and G League regular
  season and playoffs are read, anything else is refused with UnsupportedGameError.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Final

from temporaldb.feeds.model import (
    FeedError,
    FeedEvent,
    FeedGame,
    FeedPlayer,
    FeedTeam,
    game_kind,
    twelve_hour_time,
)

FEED_FORMAT: Final = "v2"
_PERSON_COLUMNS: Final = ("ID", "NAME", "TEAM_ID", "TEAM_CITY", "TEAM_NICKNAME", "TEAM_ABBREVIATION")
COLUMNS: Final = (
    "GAME_ID", "EVENTNUM", "EVENTMSGTYPE", "EVENTMSGACTIONTYPE", "PERIOD", "PCTIMESTRING",
    "HOMEDESCRIPTION", "NEUTRALDESCRIPTION", "VISITORDESCRIPTION",
    *(f"PLAYER{slot}_{column}" for slot in (1, 2, 3) for column in _PERSON_COLUMNS),
)  # fmt: skip
"""The columns read; a document without all of them is not a playbyplayv2."""

WALL_CLOCK: Final = "WCTIMESTRING"
"""Read when present (see `tipoff_eastern`); a document without it is still a playbyplayv2."""
PERIOD_START: Final = 12
"""EVENTMSGTYPE of a period's start row."""

FOUL_KIND_BY_ACTION: Final[Mapping[int, str]] = {
    1: "personal",
    2: "shooting",
    3: "loose_ball",
    4: "offensive",
    5: "inbound",
    6: "away_from_play",
    8: "technical",  # punching foul: listed as a technical in the code tables; pbpstats counts it as neither
    9: "clear_path",
    10: "double_personal",  # PLAYER2 committed one too: a second event
    11: "technical",
    12: "technical",  # non-unsportsmanlike technical
    13: "technical",  # hanging technical
    14: "flagrant_1",
    15: "flagrant_2",
    16: "double_technical",  # PLAYER2 committed one too: a second event
    17: "defensive_3_seconds",
    18: "delay_technical",
    19: "technical",  # taunting technical
    25: "technical",  # excess timeout technical
    26: "offensive",  # offensive charge
    27: "personal",  # personal block
    28: "personal_take",
    29: "shooting",  # shooting block
    30: "technical",  # too many players technical
    31: "transition_take",
    32: "technical",  # flopping technical
    33: "technical",  # bench technical
}
"""Foul EVENTMSGACTIONTYPE to model.FOUL_KINDS (codes as pbpstats and nba_api users document them)."""
DOUBLE_FOUL_ACTIONS: Final = frozenset({10, 16})
FT_VALUE_BY_ACTION: Final[Mapping[int, int]] = {30: 1, 31: 2, 32: 3, 35: 1, 36: 2, 37: 3, 38: 1}
"""One-shot free throws (G League from 2019-20: "Free Throw 1PT/2PT/3PT", 35-37 their flagrant forms,
38 "Free Technical 1PT"); every other free throw action (10-29: 1 of 1 ... technical, flagrant,
clear path) is worth 1."""
TEAM_SLOTS: Final[Mapping[int, tuple[int, ...]]] = {4: (1,), 5: (1,), 6: (1,), 7: (1,), 9: (1,), 10: (3,)}
"""Where a PLAYERn_ID without a team id names a team, by EVENTMSGTYPE; elsewhere such a person (an
official, an event number on a replay row) is ignored."""

_CLOCK: Final = re.compile(r"^(\d{1,2}):([0-5]\d)(\.\d)?$")
_MISS: Final = re.compile(r"\bMISS\b")
_FT_POINTS: Final = re.compile(r"\b([123])PT\b")


@dataclass(frozen=True)
class Roster:
    """Teams and players from another document (a box score), to complete and check the feed's."""

    teams: tuple[FeedTeam, ...] = ()
    players: tuple[FeedPlayer, ...] = ()
    home_team_id: int | None = None


@dataclass(frozen=True)
class Person:
    """One PLAYERn_* group of a row."""

    person_id: int
    name: str | None
    team_id: int | None
    team: FeedTeam | None


@dataclass(frozen=True)
class Row:
    event_num: int
    msg_type: int
    action: int
    period: int
    clock: str
    home_text: str
    neutral_text: str
    visitor_text: str
    people: tuple[Person, Person, Person]
    wall_text: str = ""
    """WCTIMESTRING as given ('8:11 PM'), '' when absent."""

    @property
    def text(self) -> str:
        return " | ".join(text for text in (self.home_text, self.neutral_text, self.visitor_text) if text)

    def player(self, slot: int) -> int | None:
        """The player (or other person of a team) in PLAYER`slot`, if any."""
        person = self.people[slot - 1]
        return person.person_id if person.person_id and person.team_id is not None else None

    def team(self, slot: int) -> int | None:
        """The team of PLAYER`slot`: its player's team, or the team it names where TEAM_SLOTS allows."""
        person = self.people[slot - 1]
        if person.team_id is not None:
            return person.team_id if person.person_id else None
        if person.person_id and slot in TEAM_SLOTS.get(self.msg_type, ()):
            return person.person_id
        return None


@dataclass
class _State:
    source: str
    last_miss_team: int | None = None

    def where(self, row: Row) -> str:
        return f"{self.source}: EVENTNUM {row.event_num}"


Handler = Callable[[Row, _State], list[FeedEvent] | str]
"""Turns one row into events, or returns the reason it is skipped."""


# ------------------------------------------------------------------------------------------------ row handlers


def _event(
    row: Row, event_type: str, team: int | None = None, player: int | None = None, secondary: int | None = None
) -> FeedEvent:
    return FeedEvent(row.period, row.clock, event_type, team, player, secondary, source_event_id=str(row.event_num))


def _actor(row: Row, state: _State, what: str) -> tuple[int, int]:
    player, team = row.player(1), row.team(1)
    if player is None or team is None:
        raise FeedError(f"{state.where(row)}: {what} (EVENTMSGTYPE {row.msg_type}) has no player in PLAYER1")
    return player, team


def _partner(row: Row, slot: int, team: int | None, state: _State, *, same_team: bool) -> int | None:
    """PLAYER`slot` as the assister (same team) or the blocker or stealer (the other team), if given."""
    partner = row.player(slot)
    if partner is None or team is None:
        return partner
    if (row.team(slot) == team) != same_team:
        side = "the same team as" if same_team else "the other team from"
        raise FeedError(f"{state.where(row)}: PLAYER{slot} {partner} should be on {side} PLAYER1's team {team}")
    return partner


def _made_fg(row: Row, state: _State) -> list[FeedEvent]:
    shooter, team = _actor(row, state, "made field goal")
    three = "3PT" in row.text
    event = _event(row, "fg_made", team, shooter, _partner(row, 2, team, state, same_team=True))
    return [replace(event, points=3 if three else 2, is_three=three)]


def _missed_fg(row: Row, state: _State) -> list[FeedEvent]:
    shooter, team = _actor(row, state, "missed field goal")
    state.last_miss_team = team
    event = _event(row, "fg_missed", team, shooter, _partner(row, 3, team, state, same_team=False))
    return [replace(event, is_three="3PT" in row.text)]


def _ft_value(row: Row, state: _State) -> int:
    value = FT_VALUE_BY_ACTION.get(row.action, 1)
    named = _FT_POINTS.search(row.text)
    if named is not None and int(named[1]) != value:
        raise FeedError(
            f"{state.where(row)}: free throw action {row.action} is worth {value}, the text says {named[0]}"
        )
    return value


def _free_throw(row: Row, state: _State) -> list[FeedEvent]:
    shooter, team = _actor(row, state, "free throw")
    value = _ft_value(row, state)
    if _MISS.search(row.text):
        state.last_miss_team = team
        return [replace(_event(row, "ft_missed", team, shooter), ft_value=value)]
    return [replace(_event(row, "ft_made", team, shooter), ft_value=value, points=value)]


def _rebound(row: Row, state: _State) -> list[FeedEvent] | str:
    team = row.team(1)
    if team is None:
        return "rebound without player or team"
    if state.last_miss_team is None:
        raise FeedError(f"{state.where(row)}: a rebound with no missed shot before it in period {row.period}")
    kind = "rebound_off" if team == state.last_miss_team else "rebound_def"
    return [_event(row, kind, team, row.player(1))]


def _turnover(row: Row, state: _State) -> list[FeedEvent]:
    team = row.team(1)
    return [_event(row, "turnover", team, row.player(1), _partner(row, 2, team, state, same_team=False))]


def _foul(row: Row, state: _State) -> list[FeedEvent]:
    kind = FOUL_KIND_BY_ACTION.get(row.action)
    if kind is None:
        raise FeedError(f"{state.where(row)}: foul action type {row.action} is not in the v2 foul table ({row.text!r})")
    events = [replace(_event(row, "foul", row.team(1), row.player(1)), foul_kind=kind)]
    other = row.player(2)
    if row.action in DOUBLE_FOUL_ACTIONS and other is not None:
        events.append(replace(_event(row, "foul", row.team(2), other), foul_kind=kind))
    return events


def _violation(row: Row, _state: _State) -> list[FeedEvent]:
    return [_event(row, "violation", row.team(1), row.player(1))]


def _substitution(row: Row, state: _State) -> list[FeedEvent]:
    leaving, entering = row.player(1), row.player(2)
    if leaving is None or entering is None or row.team(1) != row.team(2):
        raise FeedError(f"{state.where(row)}: a substitution needs two players of one team (PLAYER1 out, PLAYER2 in)")
    return [_event(row, "substitution", row.team(2), entering, leaving)]


def _timeout(row: Row, _state: _State) -> list[FeedEvent]:
    return [_event(row, "timeout", row.team(1))]


def _jump_ball(row: Row, _state: _State) -> list[FeedEvent]:
    """The jumper of the team that gained possession (PLAYER3's team), else PLAYER1; no secondary player.

    The canonical jump_ball names one jumper (the one whose team won the tip, as the live importer does): the
    schema allows a secondary player only on shots, turnovers and substitutions.
    """
    won_by = row.team(3)
    first = 2 if won_by is not None and won_by == row.team(2) else 1
    player = row.player(first)
    team = row.team(first) if player is not None else won_by
    return [_event(row, "jump_ball", team, player, None)]


def _period_boundary(event_type: str) -> Handler:
    def handle(row: Row, state: _State) -> list[FeedEvent]:
        state.last_miss_team = None
        return [_event(row, event_type)]

    return handle


@dataclass(frozen=True)
class Rule:
    what: str
    """The canonical handling, or the reason a skipped row is counted under."""
    handler: Handler | None = None
    """None: the row is skipped and counted."""


MAPPING: Final[Mapping[tuple[int, int | None], Rule]] = {
    (1, None): Rule("fg_made: PLAYER1 shooter, PLAYER2 assister; is_three (3 points) when the text says 3PT", _made_fg),
    (2, None): Rule("fg_missed: PLAYER1 shooter, PLAYER3 blocker; is_three when the text says 3PT", _missed_fg),
    (3, None): Rule("ft_made/ft_missed (MISS in the text), ft_value from FT_VALUE_BY_ACTION", _free_throw),
    (4, None): Rule("rebound_off/rebound_def: PLAYER1 player or team; skipped with neither", _rebound),
    (5, 0): Rule("no turnover (placeholder)"),
    (5, None): Rule("turnover: PLAYER1 player or team, PLAYER2 stealer", _turnover),
    (6, None): Rule("foul: PLAYER1 player or team, foul_kind from FOUL_KIND_BY_ACTION (PLAYER2 fouled)", _foul),
    (7, None): Rule("violation: PLAYER1 player or team", _violation),
    (8, None): Rule("substitution: PLAYER2 enters (player_id), PLAYER1 leaves (secondary)", _substitution),
    (9, None): Rule("timeout: PLAYER1 names the team; none for an official timeout", _timeout),
    (10, None): Rule("jump_ball: jumpers PLAYER1 and PLAYER2, PLAYER3 gains possession", _jump_ball),
    (11, None): Rule("ejection"),
    (12, None): Rule("period_start", _period_boundary("period_start")),
    (13, None): Rule("period_end", _period_boundary("period_end")),
    (18, None): Rule("instant replay"),
}  # fmt: skip
"""(EVENTMSGTYPE, EVENTMSGACTIONTYPE or None for any) -> handling; any other type is a FeedError."""


def rule_for(row: Row, source: str) -> Rule:
    rule = MAPPING.get((row.msg_type, row.action)) or MAPPING.get((row.msg_type, None))
    if rule is None:
        raise FeedError(
            f"{source}: EVENTNUM {row.event_num}: EVENTMSGTYPE {row.msg_type} (action {row.action}) "
            f"is not in the v2 mapping table ({row.text!r})"
        )
    return rule


# ------------------------------------------------------------------------------------------------ the document


def _table(document: object) -> tuple[list[str], list[object]] | None:
    """The play-by-play result set's headers and rows: the one named PlayByPlay, else the first."""
    if not isinstance(document, Mapping):
        return None
    sets = document.get("resultSets")
    if not isinstance(sets, list) or not sets or not all(isinstance(s, Mapping) for s in sets):
        return None
    chosen = next((s for s in sets if s.get("name") == "PlayByPlay"), sets[0])
    headers, rows = chosen.get("headers"), chosen.get("rowSet")
    if not isinstance(headers, list) or not isinstance(rows, list) or not all(isinstance(h, str) for h in headers):
        return None
    return [str(h) for h in headers], rows


def looks_like(document: object) -> bool:
    """True for a stats.nba.com playbyplayv2 document (its result set has every column this module reads)."""
    table = _table(document)
    return table is not None and set(COLUMNS) <= set(table[0])


def _as_int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


class _Cells:
    """One rowSet entry read by column name, with errors naming the row."""

    def __init__(self, cells: Sequence[object], index: Mapping[str, int], where: str) -> None:
        self.cells, self.index, self.where = cells, index, where

    def get(self, column: str) -> object:
        return self.cells[self.index[column]]

    def whole(self, column: str) -> int:
        value = _as_int(self.get(column))
        if value is None:
            raise FeedError(f"{self.where}: {column} {self.get(column)!r} is not a whole number")
        return value

    def optional_int(self, column: str) -> int | None:
        return None if self.get(column) in (None, "") else self.whole(column)

    def text(self, column: str) -> str:
        value = self.get(column)
        if value is not None and not isinstance(value, str):
            raise FeedError(f"{self.where}: {column} {value!r} is not text")
        return (value or "").strip()

    def person(self, slot: int) -> Person:
        prefix = f"PLAYER{slot}_"
        team_id = self.optional_int(prefix + "TEAM_ID")
        team = None
        if team_id is not None:
            city, nickname = self.text(prefix + "TEAM_CITY"), self.text(prefix + "TEAM_NICKNAME")
            abbreviation = self.text(prefix + "TEAM_ABBREVIATION")
            if abbreviation and (city or nickname):
                team = FeedTeam(team_id, abbreviation, f"{city} {nickname}".strip())
        return Person(self.optional_int(prefix + "ID") or 0, self.text(prefix + "NAME") or None, team_id, team)


def _clock(text: str, where: str) -> str:
    match = _CLOCK.match(text)
    if match is None:
        raise FeedError(f"{where}: PCTIMESTRING {text!r} is not M:SS")
    return f"{int(match[1]):02d}:{match[2]}{match[3] or ''}"


def _row(cells: Sequence[object], index: Mapping[str, int], source: str, number: int) -> tuple[str, Row]:
    read = _Cells(cells, index, f"{source}: rowSet entry {number}")
    event_num = read.whole("EVENTNUM")
    read.where = f"{source}: EVENTNUM {event_num}"
    game_id = read.get("GAME_ID")
    game_text = f"{game_id:010d}" if isinstance(game_id, int) else str(game_id)
    row = Row(
        event_num, read.whole("EVENTMSGTYPE"), read.whole("EVENTMSGACTIONTYPE"), read.whole("PERIOD"),
        _clock(read.text("PCTIMESTRING"), read.where), read.text("HOMEDESCRIPTION"),
        read.text("NEUTRALDESCRIPTION"), read.text("VISITORDESCRIPTION"),
        (read.person(1), read.person(2), read.person(3)), _wall_text(read),
    )  # fmt: skip
    return game_text, row


def _wall_text(read: _Cells) -> str:
    """WCTIMESTRING as text, '' when missing: never an error, as only tip-off uses it (a number stays malformed)."""
    value = read.get(WALL_CLOCK) if WALL_CLOCK in read.index else None
    return "" if value is None else str(value).strip()


def read_rows(document: object, source: str) -> tuple[str, list[Row]]:
    """The game id and the rows, in feed order; FeedError when the document is not a playbyplayv2."""
    table = _table(document)
    if table is None or not set(COLUMNS) <= set(table[0]):
        missing = sorted(set(COLUMNS) - set(table[0])) if table else []
        detail = f"its result set lacks {', '.join(missing[:4])}" if missing else "no resultSets with headers/rowSet"
        raise FeedError(f"{source}: not a stats.nba.com playbyplayv2 document ({detail})")
    headers, cells = table
    index = {name: position for position, name in enumerate(headers)}
    game_ids: set[str] = set()
    rows = []
    for number, entry in enumerate(cells):
        if not isinstance(entry, list) or len(entry) != len(headers):
            raise FeedError(f"{source}: rowSet entry {number} is not a list of {len(headers)} values")
        game_id, row = _row(entry, index, source, number)
        game_ids.add(game_id)
        rows.append(row)
    if len(game_ids) != 1:
        found = ", ".join(sorted(game_ids)) or "none"
        raise FeedError(f"{source}: a playbyplayv2 document holds one game with rows; GAME_ID found: {found}")
    return game_ids.pop(), rows


def tipoff_eastern(rows: Sequence[Row]) -> dt.time | None:
    """The first period's start on the wall clock (US Eastern, see the module doc), as WCTIMESTRING states it.

    The start row of period 1, else the first row of period 1 with a WCTIMESTRING (a later period's clock is
    no tip-off). A present but malformed clock gives None rather than a guess from another row.
    """
    stamped = [row for row in rows if row.period == 1 and row.wall_text]
    start = next((row for row in stamped if row.msg_type == PERIOD_START), stamped[0] if stamped else None)
    return twelve_hour_time(start.wall_text) if start is not None else None


# ------------------------------------------------------------------------------------------------ teams, players


@dataclass
class _People:
    """Who the mapped rows name: players, teams (with where each was first seen) and the side votes."""

    source: str
    players: dict[int, Person] = field(default_factory=dict)
    teams: dict[int, FeedTeam | None] = field(default_factory=dict)
    first_seen: dict[int, str] = field(default_factory=dict)
    player_first_seen: dict[int, int] = field(default_factory=dict)
    """Player id -> the EVENTNUM of the first row naming them."""
    votes: Counter[tuple[int, str]] = field(default_factory=Counter)

    def add_row(self, row: Row) -> None:
        for slot, person in enumerate(row.people, start=1):
            team = row.team(slot)
            if team is None:
                continue
            who = f"player {person.person_id} ({person.name})" if row.player(slot) else f"team {team}"
            self.first_seen.setdefault(team, f"EVENTNUM {row.event_num}: {who}")
            if self.teams.get(team) is None:
                self.teams[team] = person.team
            if row.player(slot) is not None:
                self._add_player(row, person)
        actor = row.team(1)
        if actor is not None and bool(row.home_text) != bool(row.visitor_text):
            self.votes[actor, "home" if row.home_text else "visitor"] += 1

    def _add_player(self, row: Row, person: Person) -> None:
        self.player_first_seen.setdefault(person.person_id, row.event_num)
        known = self.players.setdefault(person.person_id, person)
        if known.team_id != person.team_id:
            raise FeedError(
                f"{self.source}: EVENTNUM {row.event_num}: player {person.person_id} plays for team "
                f"{person.team_id} here and for team {known.team_id} before"
            )
        if known.name is None and person.name:
            self.players[person.person_id] = person


def _home_and_away(people: _People, roster: Roster | None) -> tuple[int, int]:
    """The home team is the one most often written in HOMEDESCRIPTION; a roster decides a tie."""
    score = {team: people.votes[team, "home"] - people.votes[team, "visitor"] for team in people.teams}
    ranked = sorted(score, key=lambda team: score[team])
    found = (ranked[-1], ranked[0]) if len(ranked) >= 2 and score[ranked[-1]] > 0 > score[ranked[0]] else None
    given = roster.home_team_id if roster else None
    if found is not None and given is not None and found[0] != given:
        raise FeedError(f"{people.source}: the descriptions make team {found[0]} the home team, the roster {given}")
    if found is None and given is not None and roster is not None:
        others = [team.team_id for team in roster.teams if team.team_id != given]
        found = (given, others[0]) if len(others) == 1 else None
    if found is None:
        raise FeedError(
            f"{people.source}: cannot tell the home team from the away team (teams {sorted(people.teams)}); "
            "give a roster with the home team"
        )
    for team, seen in people.first_seen.items():
        if team not in found:
            raise FeedError(f"{people.source}: {seen} is on neither team ({found[0]} home, {found[1]} away)")
    listed = {team.team_id for team in roster.teams} if roster and roster.teams else set(found)
    if listed != set(found):
        raise FeedError(f"{people.source}: the feed's teams {sorted(found)} are not the roster's {sorted(listed)}")
    return found


def _team(team_id: int, people: _People, roster: Roster | None) -> FeedTeam:
    listed = {team.team_id: team for team in (roster.teams if roster else ())}
    team = people.teams.get(team_id) or listed.get(team_id)
    if team is None:
        raise FeedError(f"{people.source}: team {team_id} has no name in the feed (no player row): give a roster")
    return team


def _players(people: _People, roster: Roster | None) -> tuple[FeedPlayer, ...]:
    listed = {player.player_id: player for player in (roster.players if roster else ())}
    players = []
    for person in people.players.values():
        known = listed.get(person.person_id)
        if known is None and listed:
            raise FeedError(
                f"{people.source}: EVENTNUM {people.player_first_seen[person.person_id]}: player {person.person_id} "
                f"({person.name or '?'}) is on neither roster of the box score"
            )
        if known is not None and known.team_id != person.team_id:
            raise FeedError(
                f"{people.source}: player {person.person_id} is on team {person.team_id} in the feed "
                f"and on team {known.team_id} in the roster"
            )
        name = person.name or (known.full_name if known else None)
        if not name or person.team_id is None:
            raise FeedError(f"{people.source}: player {person.person_id} has no name in the feed: give a roster")
        players.append(FeedPlayer(person.person_id, name, person.team_id))
    return tuple(players)


# ------------------------------------------------------------------------------------------------ parse


def parse(document: object, source: str, roster: Roster | None = None) -> FeedGame:
    """The game of one playbyplayv2 document, its events in feed order."""
    game_text, rows = read_rows(document, source)
    game_id, league, season, season_type = game_kind(game_text, source)
    skipped: Counter[str] = Counter()
    mapped: list[tuple[Row, Handler]] = []
    people = _People(source)
    for row in rows:
        rule = rule_for(row, source)
        if rule.handler is None:
            skipped[f"v2:{row.msg_type} {rule.what}"] += 1
            continue
        mapped.append((row, rule.handler))
        people.add_row(row)
    home_id, away_id = _home_and_away(people, roster)
    state = _State(source)
    events: list[FeedEvent] = []
    for row, handler in mapped:
        result = handler(row, state)
        if isinstance(result, str):
            skipped[f"v2:{row.msg_type} {result}"] += 1
        else:
            events.extend(result)
    return FeedGame(
        game_id, league, season, season_type, _team(home_id, people, roster), _team(away_id, people, roster),
        _players(people, roster), tuple(events), source, FEED_FORMAT, None, "none", skipped,
        tipoff_eastern=tipoff_eastern(rows),
    )  # fmt: skip
