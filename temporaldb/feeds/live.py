"""cdn.nba.com live play-by-play (`liveData/playbyplay/playbyplay_{gameId}.json`) to a FeedGame.

The document is `{"game": {"gameId": "0022000001", "actions": [...]}}`; each action has `actionNumber`,
`clock` ("PT11M48.00S"), `timeActual` (UTC, 0.1 s), `period`, `teamId`/`teamTricode`, `personId`,
`actionType`, `subType`, `descriptor`, `qualifiers`, `shotResult` and typed secondary people
(`assistPersonId`, `blockPersonId`, `stealPersonId`, `foulDrawnPersonId`, `jumpBallWonPersonId`...).

Every (actionType, subType) goes through ACTIONS: it becomes an event, is merged into another event
(`FeedGame.merged`) or is skipped (`FeedGame.skipped`), both counted under `live:<actionType> <subType>`;
an action ACTIONS does not name is a FeedError naming the source and the actionNumber. Hence
`len(actions) == len(events) + sum(skipped.values()) + sum(merged.values())`.

| actionType / subType | canonical event |
|---|---|
| 2pt, 3pt (any shot type) | fg_made (2 or 3 points; `assistPersonId` is the secondary) or fg_missed (the blocker is) |
| block | merged into the missed shot at the same period and clock whose `blockPersonId` agrees |
| freethrow `N of M` | ft_made / ft_missed, `ft_value` 1 (the live feed has no known subType for a one-shot |
|   | multi-point free throw: any other subType is a FeedError, never a guessed value) |
| rebound offensive / defensive / none | rebound_off / rebound_def; no subType: offensive when the missed shot |
|   | (`shotActionNumber`, else the last miss before it) is the rebounder's team's; a team rebound (`personId` 0 |
|   | or qualifier `team`, dead-ball ones included) has the team only |
| turnover (any reason) | turnover (`stealPersonId` is the secondary; `personId` 0: a team turnover) |
| turnover without subType | skipped: a "no turnover" placeholder |
| steal | merged into the turnover at the same period and clock whose `stealPersonId` agrees |
| foul | foul, `foul_kind` from FOUL_KIND_BY_TYPE on (subType, descriptor); an unknown pair is a FeedError |
| substitution out + in | one substitution: `player_id` enters, `secondary_player_id` leaves (README); the |
|   | k-th out and the k-th in of a team at one period and clock pair up; the pair counts once in |
|   | merged; an unpaired row is a FeedError |
| jumpball | jump_ball by `jumpBallWonPersonId`, for that player's team; without a winner: skipped |
| timeout (any) | timeout of `teamId`; an official timeout has no team (canonical.py drops it, counted) |
| violation (any) | violation of `teamId` (and `personId` when not 0) |
| period start / end | period_start / period_end, no team and no player |
| game start / end, ejection, instantreplay, challenge, stoppage, memo | skipped |

Other rules:
- Feed order (the `actions` array, which follows `orderNumber`) is the event order; `actionNumber` is not
  chronological and stays as `source_event_id`; an event built from several rows names them all ("68+69").
- `wall_clock` is `timeActual` in UTC (`wall_clock_precision` "100ms"), made non-decreasing in feed order: a
  row stamped before the event that precedes it (0022000001 has 3, by up to 2.7 s: a putback stamped before
  its offensive rebound) takes that event's time, so an as-of query never counts an event without the
  ones before it. `tipoff_at` is the first period start's `timeActual` (else the first action's).
- League, season and season type from the game id by `model.game_kind`, as in every format: NBA and G League
  regular season and playoffs are read; anything else is an UnsupportedGameError.
- Home and away: the live play-by-play does not name them, but every made shot or free throw updates
  `scoreHome` or `scoreAway`, which tells the scoring team's side. `game.homeTeam`/`game.awayTeam` (as in the
  live box score's `game`), when the document has them, are used first and must agree.
- Team names: `teams` when given, else `game.homeTeam`/`awayTeam` city and name, else the tricode.
- Players: every person an event names. With a `roster` (from the box score) names and teams come from it and
  must agree with the feed; a technical foul by someone not on it (a coach) becomes a team technical. Without a
  roster a player is named by the feed's `playerNameI` ("K. Durant") and placed on the team of the rows they act
  in (an assister on the shooter's, a blocker or stealer on the other team).
"""

from __future__ import annotations

import datetime as dt
import functools
import operator
import re
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, NamedTuple

from temporaldb.feeds.model import (
    NON_PERSONAL_FOUL_KINDS,
    FeedError,
    FeedEvent,
    FeedGame,
    FeedPlayer,
    FeedTeam,
    game_kind,
)

FEED_FORMAT: Final = "live"
WALL_CLOCK_PRECISION: Final = "100ms"
ANY: Final = "*"
ACTIONS: Final[Mapping[tuple[str, str], str]] = {
    ("period", "start"): "period_start",
    ("period", "end"): "period_end",
    ("2pt", ANY): "field_goal",
    ("3pt", ANY): "field_goal",
    ("block", ANY): "merge",
    ("freethrow", ANY): "free_throw",
    ("rebound", "offensive"): "rebound",
    ("rebound", "defensive"): "rebound",
    ("rebound", ""): "rebound",
    ("turnover", ""): "skip",
    ("turnover", ANY): "turnover",
    ("steal", ANY): "merge",
    ("foul", ANY): "foul",
    ("substitution", "in"): "substitution",
    ("substitution", "out"): "substitution",
    ("jumpball", ANY): "jump_ball",
    ("timeout", ANY): "timeout",
    ("violation", ANY): "violation",
    ("game", "start"): "skip",
    ("game", "end"): "skip",
    ("ejection", ANY): "skip",
    ("instantreplay", ANY): "skip",
    ("challenge", ANY): "skip",
    ("stoppage", ANY): "skip",
    ("memo", ANY): "skip",
}
"""(actionType, subType) -> rule; ANY matches a subType the other keys of that actionType do not name."""

FOUL_KIND_BY_TYPE: Final[Mapping[tuple[str, str], str]] = {
    ("personal", ""): "personal",
    ("personal", "block"): "personal",
    ("personal", "shooting"): "shooting",
    ("personal", "looseball"): "loose_ball",
    ("personal", "take"): "personal_take",
    ("personal", "transition"): "transition_take",
    ("personal", "transitiontake"): "transition_take",
    ("personal", "awayfromplay"): "away_from_play",
    ("personal", "clearpath"): "clear_path",
    ("personal", "inbound"): "inbound",
    ("personal", "double"): "double_personal",
    ("personal", "flagranttype1"): "flagrant_1",
    ("personal", "flagranttype2"): "flagrant_2",
    ("offensive", ""): "offensive",
    ("offensive", "charge"): "offensive",
    ("offensive", "inbound"): "inbound",
    ("offensive", "looseball"): "loose_ball",
    ("flagrant", "flagranttype1"): "flagrant_1",
    ("flagrant", "type1"): "flagrant_1",
    ("flagrant", "flagranttype2"): "flagrant_2",
    ("flagrant", "type2"): "flagrant_2",
    ("technical", ""): "technical",
    ("technical", "hanging"): "technical",
    ("technical", "nonunsportsmanlike"): "technical",
    ("technical", "double"): "double_technical",
    ("technical", "defensive3second"): "defensive_3_seconds",
    ("technical", "defensive3seconds"): "defensive_3_seconds",
    ("technical", "delayofgame"): "delay_technical",
    ("delayofgame", ""): "delay_technical",
    ("doublepersonal", ""): "double_personal",
    ("doubletechnical", ""): "double_technical",
}
"""(subType, descriptor) of a foul, lower case without spaces or dashes ("flagrant-type-1" -> "flagranttype1")."""

_CLOCK = re.compile(r"^PT(\d{1,2})M(\d{1,2})(?:\.(\d+))?S$")
_FREE_THROW = re.compile(r"^([1-3]) of ([1-3])$")
_NOT_ALNUM = re.compile(r"[^a-z0-9]")
_SHOTS: Final = frozenset({"2pt", "3pt"})
_SECONDARY_NAMES: Final = (
    ("assistPersonId", "assistPlayerNameInitial"), ("stealPersonId", "stealPlayerName"),
    ("blockPersonId", "blockPlayerName"), ("jumpBallWonPersonId", "jumpBallWonPlayerName"),
)  # fmt: skip
_UNKNOWN: Final = ""
"""The rule of an action ACTIONS does not name: reported once every action has been read."""


# ---------------------------------------------------------------------------------------------
# Reading the document
# ---------------------------------------------------------------------------------------------


class _Row(NamedTuple):
    """One action, checked and normalized. Every value a later step compares is read from the action here, once:
    the steps after this go over the rows several times (a game has about 550)."""

    position: int
    number: int
    period: int
    clock: str
    raw_clock: str
    wall: dt.datetime
    action: str
    sub: str
    kind: str  # sub in lower case, as ACTIONS and the rules compare it
    descriptor: str
    team: int | None
    tricode: str | None
    person: int | None
    rule: str  # ACTIONS' rule, or _UNKNOWN
    shot_result: str | None
    assist: int | None
    block: int | None
    steal: int | None
    fields: Mapping[str, object]  # the action, for what few rows read (names, scores, shotActionNumber...)

    @property
    def key(self) -> str:
        return f"live:{self.action} {self.sub}".rstrip()


def _mapping(value: object) -> Mapping[str, object] | None:
    return value if isinstance(value, Mapping) else None


def _game(document: object) -> Mapping[str, object] | None:
    top = _mapping(document)
    return _mapping(top.get("game")) if top is not None else None


def looks_like(document: object) -> bool:
    """True for a live play-by-play document: its actions carry `timeActual` and `orderNumber` (v3's do not)."""
    game = _game(document)
    if game is None or not isinstance(game.get("gameId"), str):
        return False
    actions = game.get("actions")
    if not isinstance(actions, list) or not actions:
        return False
    first = _mapping(actions[0])
    return first is not None and {"actionNumber", "actionType", "timeActual", "orderNumber"} <= first.keys()


def _whole(value: object) -> int | None:
    if type(value) is int:  # JSON's ints, most values, before the checks other types need
        return value
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def _person(value: object) -> int | None:
    """A person id field: a whole number other than 0 (the feed's "nobody")."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value != 0 else None


def _text(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    stripped = value.strip()
    return stripped or None


@functools.lru_cache(maxsize=8192)
def _clock(text: str) -> str:
    """'PT11M48.00S' -> '11:48'; 'PT00M02.20S' -> '00:02.2'. Cached: actions share their clocks, within a game
    (a block and its miss, free throws, substitutions) and across games (a few thousand in all)."""
    match = _CLOCK.match(text)
    if match is None or int(match[2]) > 59:
        raise ValueError(f"clock {text!r} is not PT<m>M<s>S")
    fraction = (match[3] or "").rstrip("0")[:3]
    return f"{int(match[1]):02d}:{int(match[2]):02d}" + (f".{fraction}" if fraction else "")


def _wall(text: object) -> dt.datetime:
    if not isinstance(text, str):
        raise ValueError("no timeActual")
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"timeActual {text!r} is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        raise ValueError(f"timeActual {text!r} has no time zone")
    return moment.astimezone(dt.UTC)


@functools.lru_cache(maxsize=4096)
def _kind(action: str, sub: object, descriptor: object) -> tuple[str, str, str, str, str]:
    """The actionType, subType, subType in lower case, descriptor and ACTIONS rule of an action, normalized.
    Cached: a game has a few dozen spellings of these, across about 550 actions."""
    action = action.strip().lower()
    sub_type = str(sub or "").strip()
    kind = sub_type.lower()
    rule = ACTIONS.get((action, kind)) or ACTIONS.get((action, ANY)) or _UNKNOWN
    return action, sub_type, kind, str(descriptor or "").strip(), rule


def _read_row(position: int, value: object, source: str) -> _Row:
    # The common cases (a dict, an int, a str, an absent key) are tested inline before the general helpers: this
    # runs once per action, and a call per value was most of the time of an import.
    fields = value if type(value) is dict else _mapping(value)
    if fields is None:
        raise FeedError(f"{source}: actions[{position}]: not an action with an actionNumber")
    get = fields.get
    number = get("actionNumber")
    number = number if type(number) is int else _whole(number)
    if number is None:
        raise FeedError(f"{source}: actions[{position}]: not an action with an actionNumber")
    action, period, raw_clock = get("actionType"), get("period"), get("clock")
    period = period if type(period) is int else _whole(period)
    if not isinstance(action, str) or not action or period is None or period < 1 or not isinstance(raw_clock, str):
        raise FeedError(f"{source}: action {number}: needs actionType, period (1 or more) and clock")
    try:
        clock, wall = _clock(raw_clock), _wall(get("timeActual"))
    except ValueError as error:
        raise FeedError(f"{source}: action {number}: {error}") from None
    sub, descriptor = get("subType"), get("descriptor")
    if (sub is None or type(sub) is str) and (descriptor is None or type(descriptor) is str):
        action, sub, kind, descriptor, rule = _kind(action, sub, descriptor)
    else:  # not a key of the cache (1 and True are equal keys, but their subTypes "1" and "True" are not)
        action, sub, kind, descriptor, rule = _kind.__wrapped__(action, sub, descriptor)
    team, tricode, person = get("teamId"), get("teamTricode"), get("personId")
    team = (team if type(team) is int else _whole(team)) or None
    person = (person if type(person) is int else _whole(person)) or None
    result, assist, block, steal = get("shotResult"), get("assistPersonId"), get("blockPersonId"), get("stealPersonId")
    return _Row._make((
        position, number, period, clock, raw_clock, wall, action, sub, kind, descriptor, team,
        tricode if isinstance(tricode, str) and tricode else None, person, rule,
        None if result is None else _text(result), None if assist is None else _person(assist),
        None if block is None else _person(block), None if steal is None else _person(steal), fields,
    ))  # fmt: skip


def _read_rows(game: Mapping[str, object], source: str) -> list[_Row]:
    actions = game.get("actions")
    if not isinstance(actions, list):
        raise FeedError(f"{source}: game.actions is not a list")
    rows = [_read_row(position, action, source) for position, action in enumerate(actions)]
    for row in rows:
        if row.rule == _UNKNOWN:  # an unknown action is reported before anything else
            raise FeedError(f"{source}: action {row.number}: unknown actionType/subType {row.action!r}/{row.sub!r}")
    if len({row.number for row in rows}) != len(rows):
        numbers = Counter(row.number for row in rows)
        repeated = sorted(number for number, count in numbers.items() if count > 1)
        raise FeedError(f"{source}: actionNumber {repeated[0]} appears {numbers[repeated[0]]} times")
    return rows


# ---------------------------------------------------------------------------------------------
# The game: kind, season, teams, sides
# ---------------------------------------------------------------------------------------------


def _declared_sides(game: Mapping[str, object]) -> dict[str, Mapping[str, object]]:
    """game.homeTeam / game.awayTeam when the document has them (the live box score's `game` does)."""
    sides = {}
    for side in ("home", "away"):
        team = _mapping(game.get(f"{side}Team"))
        if team is not None and _whole(team.get("teamId")):
            sides[side] = team
    return sides


def _sides_and_tricodes(rows: Sequence[_Row], source: str) -> tuple[dict[int, str], dict[int, str | None]]:
    """Team -> 'home' or 'away', from which of scoreHome / scoreAway its made shots and free throws raise; and
    team -> tricode. One pass for both: a scoring contradiction is reported before a tricode one, the first of
    each in feed order, and scores are no longer read after a contradiction (as when it stopped the reading)."""
    sides: dict[int, str] = {}
    tricodes: dict[int, str | None] = {}
    scoring_error: FeedError | None = None
    tricode_error: FeedError | None = None
    before_home = before_away = 0
    raw_home: object = None
    raw_away: object = None
    for row in rows:
        team, tricode = row.team, row.tricode
        if team is not None and tricode_error is None:
            known = tricodes.get(team)
            if known is None:
                tricodes[team] = tricode
            elif tricode is not None and known != tricode:
                tricode_error = FeedError(f"{source}: action {row.number}: team {team} is {tricode}, earlier {known}")
        if scoring_error is not None:
            continue
        home_text, away_text = row.fields.get("scoreHome"), row.fields.get("scoreAway")
        if type(home_text) is str and type(away_text) is str and home_text == raw_home and away_text == raw_away:
            continue  # the score of the row before, read the same: nobody scored (most rows)
        raw_home, raw_away = home_text, away_text
        home, away = _whole(home_text), _whole(away_text)
        if home is None or away is None:
            continue
        home_scored, away_scored = home > before_home, away > before_away
        before_home, before_away = home, away
        made = (row.action in _SHOTS or row.action == "freethrow") and row.shot_result == "Made"
        if not made or team is None or home_scored == away_scored:
            continue
        side = "home" if home_scored else "away"
        if sides.setdefault(team, side) != side:
            scoring_error = FeedError(f"{source}: action {row.number}: team {team} scores for both home and away")
    if scoring_error is not None:
        raise scoring_error
    if tricode_error is not None:
        raise tricode_error
    return sides, tricodes


def _home_away(game: Mapping[str, object], rows: Sequence[_Row], source: str) -> tuple[int, int, dict[int, str | None]]:
    """Home, away, and each team's tricode."""
    declared = {side: _whole(team.get("teamId")) or 0 for side, team in _declared_sides(game).items()}
    scored, tricodes = _sides_and_tricodes(rows, source)
    teams = set(tricodes) | {team for team in declared.values() if team}
    if len(teams) != 2:
        raise FeedError(f"{source}: the actions name {len(teams)} teams ({sorted(teams)}), not two")
    by_side: dict[str, set[int]] = {"home": set(), "away": set()}
    for team, side in scored.items():
        by_side[side].add(team)
    for side, team in declared.items():
        if by_side[side] - {team}:
            raise FeedError(f"{source}: game.{side}Team is {team} but team {by_side[side] - {team}} scores as {side}")
        by_side[side] = {team}
    home_side, away_side = by_side["home"], by_side["away"]
    if len(home_side) > 1 or len(away_side) > 1 or home_side & away_side:
        raise FeedError(f"{source}: teams {sorted(teams)} both score as the same side")
    if not home_side and not away_side:
        raise FeedError(f"{source}: cannot tell home from away: no made basket and no game.homeTeam/awayTeam")
    home = next(iter(home_side)) if home_side else next(iter(teams - away_side))
    return home, next(iter(teams - {home})), tricodes


def _feed_team(
    team_id: int, side: str, tricodes: Mapping[int, str | None], game: Mapping[str, object],
    teams: Mapping[int, FeedTeam] | None,
) -> FeedTeam:  # fmt: skip
    if teams is not None and team_id in teams:
        return teams[team_id]
    declared = _declared_sides(game).get(side, {})
    tricode = tricodes.get(team_id) or str(declared.get("teamTricode") or "") or str(team_id)
    city, name = declared.get("teamCity"), declared.get("teamName")
    full = f"{city} {name}" if isinstance(city, str) and isinstance(name, str) and city and name else tricode
    return FeedTeam(team_id, tricode, full)


# ---------------------------------------------------------------------------------------------
# Links between rows: blocks and steals to their plays, substitution pairs, people to teams
# ---------------------------------------------------------------------------------------------


@dataclass
class _Links:
    credited: dict[int, int] = field(default_factory=dict)
    """Position of a miss or turnover -> the blocker or stealer its own row does not name."""
    merged_rows: dict[int, list[int]] = field(default_factory=lambda: defaultdict(list))
    """Position of the row an event comes from -> actionNumbers of the rows merged into it."""
    pairs: dict[int, tuple[_Row, _Row]] = field(default_factory=dict)
    """Position of the substitution row that completes a pair -> (out row, in row)."""


def _link_credits(
    credits: Sequence[_Row], at_moment: Mapping[tuple[int, str], list[_Row]], credit: str, links: _Links, source: str
) -> None:
    """Each block (steal) row to the missed shot (turnover) at its period and clock that names the same player."""
    target = "missed shot" if credit == "block" else "turnover"
    named: Callable[[_Row], int | None] = operator.attrgetter(credit)  # the row's blockPersonId or stealPersonId
    for row in credits:
        if row.person is None:
            raise FeedError(f"{source}: action {row.number}: a {credit} row with no personId")
        open_rows = [
            t for t in at_moment.get((row.period, row.raw_clock), ())
            if t.position not in links.merged_rows and t.team != row.team
        ]  # fmt: skip
        open_rows.sort(key=lambda t: abs(t.position - row.position))
        agreeing = [t for t in open_rows if named(t) == row.person]
        silent = [t for t in open_rows if named(t) is None]
        if not agreeing and not silent:
            named_by = f"; action {open_rows[0].number} names {named(open_rows[0])}" if open_rows else ""
            raise FeedError(f"{source}: action {row.number}: {credit} by {row.person} matches no {target} at "
                            f"{row.clock} of period {row.period}{named_by}")  # fmt: skip
        chosen = (agreeing or silent)[0]
        if named(chosen) is None:
            links.credited[chosen.position] = row.person
        links.merged_rows[chosen.position].append(row.number)


def _pair_substitutions(substitutions: Sequence[_Row], links: _Links, source: str) -> None:
    """The k-th 'out' and the k-th 'in' of one team at one period and clock make one substitution."""
    waiting: dict[tuple[int, str, int, str], deque[_Row]] = defaultdict(deque)
    for row in substitutions:
        direction = row.kind
        if row.team is None or row.person is None:
            raise FeedError(f"{source}: action {row.number}: a substitution needs teamId and personId")
        partners = waiting[(row.period, row.raw_clock, row.team, "in" if direction == "out" else "out")]
        if not partners:
            waiting[(row.period, row.raw_clock, row.team, direction)].append(row)
            continue
        partner = partners.popleft()
        links.pairs[row.position] = (row, partner) if direction == "out" else (partner, row)
    for left in (row for queue in waiting.values() for row in queue):
        raise FeedError(
            f"{source}: action {left.number}: substitution {left.sub} of player {left.person} has no partner "
            f"(an out for an in, an in for an out) of team {left.team} at {left.clock} of period {left.period}"
        )


def _link(rows: Sequence[_Row], source: str) -> _Links:
    """Blocks, then steals, then substitutions, each in feed order; the rows they look at gathered in one pass."""
    misses: dict[tuple[int, str], list[_Row]] = defaultdict(list)
    turnovers: dict[tuple[int, str], list[_Row]] = defaultdict(list)
    blocks: list[_Row] = []
    steals: list[_Row] = []
    substitutions: list[_Row] = []
    for row in rows:
        action = row.action
        if action in _SHOTS:
            if row.shot_result == "Missed":
                misses[(row.period, row.raw_clock)].append(row)
        elif action == "turnover":
            if row.sub:
                turnovers[(row.period, row.raw_clock)].append(row)
        elif action == "block":
            blocks.append(row)
        elif action == "steal":
            steals.append(row)
        elif action == "substitution" and row.kind in ("in", "out"):
            substitutions.append(row)
    links = _Links()
    _link_credits(blocks, misses, "block", links, source)
    _link_credits(steals, turnovers, "steal", links, source)
    _pair_substitutions(substitutions, links, source)
    return links


def _person_teams(rows: Sequence[_Row], home: int, away: int, source: str) -> dict[int, int]:
    """Person -> team, from the rows they act in and the secondary roles they play."""
    teams: dict[int, int] = {}

    def fail(row: _Row, person: int, team: int) -> FeedError:
        return FeedError(f"{source}: action {row.number}: player {person} plays for {teams[person]} and {team}")

    place = teams.setdefault
    for row in rows:
        team = row.team
        if team is None:
            continue
        # Most rows name one person: the secondary roles are tested before a call
        if row.person is not None and place(row.person, team) != team:
            raise fail(row, row.person, team)
        if row.assist is not None and place(row.assist, team) != team:
            raise fail(row, row.assist, team)
        if row.block is not None or row.steal is not None:
            other = away if team == home else home
            if row.block is not None and place(row.block, other) != other:
                raise fail(row, row.block, other)
            if row.steal is not None and place(row.steal, other) != other:
                raise fail(row, row.steal, other)
    return teams


def _feed_names(rows: Sequence[_Row]) -> dict[int, str]:
    names: dict[int, str] = {}
    for row in rows:
        if row.person is not None:
            name = _text(row.fields.get("playerNameI"))
            if name:
                names.setdefault(row.person, name)
    for row in rows:
        for id_field, name_field in _SECONDARY_NAMES:
            person, name = _person(row.fields.get(id_field)), _text(row.fields.get(name_field))
            if person is not None and name:
                names.setdefault(person, name)
    return names


# ---------------------------------------------------------------------------------------------
# Events
# ---------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1024)
def _foul_kind(sub: str, descriptor: str) -> str | None:
    """FOUL_KIND_BY_TYPE of a foul's subType and descriptor as the feed spells them; cached, few spellings recur."""
    return FOUL_KIND_BY_TYPE.get((_NOT_ALNUM.sub("", sub.lower()), _NOT_ALNUM.sub("", descriptor.lower())))


@dataclass
class _Builder:
    rows: Sequence[_Row]
    links: _Links
    person_teams: Mapping[int, int]
    roster: Mapping[int, FeedPlayer] | None
    source: str
    events: list[FeedEvent] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)
    merged: Counter[str] = field(default_factory=Counter)
    last_wall: dt.datetime | None = None
    last_miss_team: int | None = None
    by_number: dict[int, _Row] | None = None
    """actionNumber -> row, built when a rebound without subType first needs it."""

    def run(self) -> None:
        skipped, merged = self.skipped, self.merged
        for row in self.rows:
            rule = row.rule
            if rule == "skip":
                skipped[row.key] += 1
            elif rule == "merge":
                merged[row.key] += 1
            else:
                HANDLERS[rule](self, row)

    def fail(self, row: _Row, message: str) -> FeedError:
        return FeedError(f"{self.source}: action {row.number}: {message}")

    def emit(
        self, row: _Row, event_type: str, team: int | None, player: int | None = None, *,
        secondary: int | None = None, points: int = 0, is_three: bool = False, foul_kind: str | None = None,
        ft_value: int | None = None, numbers: Sequence[int] = (),
    ) -> None:  # fmt: skip
        wall, last = row.wall, self.last_wall
        if last is not None and last > wall:
            wall = last
        self.last_wall = wall
        if numbers:
            source_id = "+".join(map(str, numbers))
        else:
            merged = self.links.merged_rows.get(row.position)
            source_id = "+".join(map(str, (row.number, *merged))) if merged else str(row.number)
        self.events.append(
            FeedEvent(row.period, row.clock, event_type, team, player, secondary, points, is_three, foul_kind,
                      ft_value, source_id, wall)
        )  # fmt: skip

    def team_of(self, row: _Row) -> int:
        team = row.team or (self.person_teams.get(row.person) if row.person is not None else None)
        if team is None:
            raise self.fail(row, f"a {row.action} row needs a teamId")
        return team

    def result(self, row: _Row) -> bool:
        result = row.shot_result
        if result not in ("Made", "Missed"):
            raise self.fail(row, f"shotResult {result!r} is neither Made nor Missed")
        if row.person is None:
            raise self.fail(row, f"a {row.action} row with no personId")
        return result == "Made"

    def shooting_team(self, row: _Row) -> int:
        """The team of the missed shot a rebound follows: `shotActionNumber`, else the last miss before it."""
        if self.by_number is None:
            self.by_number = {row.number: row for row in self.rows}
        shot_number = _whole(row.fields.get("shotActionNumber"))
        shot = self.by_number.get(shot_number) if shot_number is not None else None
        team = shot.team if shot is not None and shot.team is not None else self.last_miss_team
        if team is None:
            raise self.fail(row, "a rebound without subType follows no missed shot")
        return team


def _period(builder: _Builder, row: _Row) -> None:
    builder.emit(row, "period_start" if row.kind == "start" else "period_end", None)


def _field_goal(builder: _Builder, row: _Row) -> None:
    team, made, three = builder.team_of(row), builder.result(row), row.action == "3pt"
    if made:
        builder.emit(row, "fg_made", team, row.person, secondary=row.assist, points=3 if three else 2,
                     is_three=three)  # fmt: skip
        return
    blocker = row.block or builder.links.credited.get(row.position)
    builder.emit(row, "fg_missed", team, row.person, secondary=blocker, is_three=three)
    builder.last_miss_team = team


def _free_throw(builder: _Builder, row: _Row) -> None:
    match = _FREE_THROW.match(row.sub)
    if match is None or int(match[1]) > int(match[2]):
        raise builder.fail(row, f"unknown actionType/subType 'freethrow'/{row.sub!r}")
    team, made = builder.team_of(row), builder.result(row)
    builder.emit(row, "ft_made" if made else "ft_missed", team, row.person, points=1 if made else 0, ft_value=1)
    if not made:
        builder.last_miss_team = team


def _rebound(builder: _Builder, row: _Row) -> None:
    team = builder.team_of(row)
    kind = row.kind
    offensive = kind == "offensive" if kind else builder.shooting_team(row) == team
    qualifiers = row.fields.get("qualifiers")
    by_team = isinstance(qualifiers, list) and any(str(item) == "team" for item in qualifiers)
    player = None if by_team else row.person  # personId 0 is None already
    builder.emit(row, "rebound_off" if offensive else "rebound_def", team, player)


def _turnover(builder: _Builder, row: _Row) -> None:
    stealer = row.steal or builder.links.credited.get(row.position)
    builder.emit(row, "turnover", builder.team_of(row), row.person, secondary=stealer)


def _foul(builder: _Builder, row: _Row) -> None:
    kind = _foul_kind(row.sub, row.descriptor)
    if kind is None:
        raise builder.fail(row, f"unknown foul subType/descriptor {row.sub!r}/{row.descriptor!r}")
    player, roster = row.person, builder.roster
    if player is not None and roster is not None and player not in roster and kind in NON_PERSONAL_FOUL_KINDS:
        player = None  # a coach's or the bench's technical: the team's
    builder.emit(row, "foul", builder.team_of(row), player, foul_kind=kind)


def _substitution(builder: _Builder, row: _Row) -> None:
    pair = builder.links.pairs.get(row.position)
    if pair is None:  # the first row of a pair: the event comes with its partner
        builder.merged["live:substitution (paired)"] += 1
        return
    out, entering = pair
    numbers = [r.number for r in sorted(pair, key=lambda r: r.position)]
    builder.emit(row, "substitution", entering.team, entering.person, secondary=out.person, numbers=numbers)


def _jump_ball(builder: _Builder, row: _Row) -> None:
    winner = _person(row.fields.get("jumpBallWonPersonId"))
    if winner is None:
        builder.skipped["live:jumpball (no winner)"] += 1
        return
    listed = builder.roster.get(winner) if builder.roster is not None else None
    team = builder.person_teams.get(winner) or (listed.team_id if listed is not None else row.team)
    if team is None:
        raise builder.fail(row, f"cannot tell the team of jump ball winner {winner}")
    builder.emit(row, "jump_ball", team, winner)


def _timeout(builder: _Builder, row: _Row) -> None:
    builder.emit(row, "timeout", row.team)  # an official timeout has no team


def _violation(builder: _Builder, row: _Row) -> None:
    builder.emit(row, "violation", row.team, row.person)


HANDLERS: Final[Mapping[str, Callable[[_Builder, _Row], None]]] = {
    "period_start": _period, "period_end": _period, "field_goal": _field_goal, "free_throw": _free_throw,
    "rebound": _rebound, "turnover": _turnover, "foul": _foul, "substitution": _substitution,
    "jump_ball": _jump_ball, "timeout": _timeout, "violation": _violation,
}  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Players and the game
# ---------------------------------------------------------------------------------------------


def _players(
    events: Sequence[FeedEvent], rows: Sequence[_Row], person_teams: Mapping[int, int],
    roster: Mapping[int, FeedPlayer] | None, source: str,
) -> tuple[FeedPlayer, ...]:  # fmt: skip
    named: dict[int, None] = {}  # in order of first mention
    team_of_event: dict[int, int] = {}
    for event in events:
        player, secondary = event.player_id, event.secondary_player_id
        if player is not None:
            named[player] = None
            if event.team_id is not None:
                team_of_event.setdefault(player, event.team_id)
        if secondary is not None:
            named[secondary] = None
    if roster is not None:  # names from the feed only for the message of a player off the roster
        players = []
        for person in named:
            team = person_teams.get(person, team_of_event.get(person))
            if person not in roster:
                name = _feed_names(rows).get(person, "?")
                raise FeedError(f"{source}: player {person} ({name}) is not on the roster")
            if team is not None and roster[person].team_id != team:
                raise FeedError(f"{source}: player {person} plays for {team}, the roster says {roster[person].team_id}")
            players.append(roster[person])
        return tuple(players)
    names = _feed_names(rows)
    players = []
    for person in named:
        team = person_teams.get(person, team_of_event.get(person))
        if team is None:
            raise FeedError(f"{source}: cannot tell the team of player {person}")
        players.append(FeedPlayer(person, names.get(person, str(person)), team))
    return tuple(players)


def parse(
    document: object, source: str, roster: Mapping[int, FeedPlayer] | None = None, *,
    teams: Mapping[int, FeedTeam] | None = None,
) -> FeedGame:  # fmt: skip
    """The game of a live play-by-play document; `roster` (player id -> player) and `teams` give names."""
    game = _game(document)
    game_id = game.get("gameId") if game is not None else None
    if game is None or not isinstance(game_id, str):
        raise FeedError(f"{source}: not a live play-by-play document (no game.gameId)")
    kind = game_kind(game_id, source)
    rows = _read_rows(game, source)
    home, away, tricodes = _home_away(game, rows, source)
    person_teams = _person_teams(rows, home, away, source)
    builder = _Builder(rows, _link(rows, source), person_teams, roster, source)
    builder.run()
    start = next((row.wall for row in rows if row.action == "period" and row.kind == "start"), None)
    tipoff_at = start if start is not None else rows[0].wall if rows else None
    return FeedGame(
        game_id=kind.game_id, league=kind.league, season=kind.season, season_type=kind.season_type,
        home=_feed_team(home, "home", tricodes, game, teams), away=_feed_team(away, "away", tricodes, game, teams),
        players=_players(builder.events, rows, person_teams, roster, source), events=tuple(builder.events),
        source=source, feed_format=FEED_FORMAT, tipoff_at=tipoff_at,
        wall_clock_precision=WALL_CLOCK_PRECISION, skipped=builder.skipped, merged=builder.merged,
    )  # fmt: skip
