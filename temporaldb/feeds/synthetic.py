"""Synthetic live feeds: canonical games written as cdn.nba.com live play-by-play and live box score documents.

There is no large real feed to benchmark `temporaldb import` with, so this module turns games in the canonical
format (a folder `temporaldb generate` wrote, read by `read_canonical`) into the documents `live.py` and
`boxscore.py` read: per game a live play-by-play (`playbyplay_<gameId>.json`) and a live box score
(`boxscore_<gameId>.json`) whose lines follow the project's stat rules (README "Stat rules", the SQL view
`nba.event_credits`), so that an import with `--strict` finds no unexplained difference.

| canonical event | live actions (feed order; an event of several actions emits them back to back) |
|---|---|
| period_start / period_end | `period` `start` / `end` (no team, personId 0) |
| jump_ball (player P) | `jumpball` `recovered`, `jumpBallWonPersonId` P, `jumpBallLostPersonId` an opponent |
| fg_made / fg_missed | `2pt` / `3pt` (Jump Shot, Layup, DUNK, Hook), `shotResult`, `assistPersonId` on a make; a |
|   | blocked miss names `blockPersonId` and is followed by a `block` row of the blocker |
| ft_made / ft_missed | `freethrow` `N of M`: consecutive free throws of one shooter at one clock are a trip of M |
|   | (at most 3); an `ft_value` other than 1 has no live spelling and is refused |
| rebound_off / rebound_def | `rebound` `offensive` / `defensive`, `shotActionNumber` the last miss; no player: a |
|   | team rebound (personId 0, qualifier `team`) |
| turnover | `turnover` (bad pass, lost ball, traveling...; a team turnover: shot clock...); a steal |
|   | names `stealPersonId` and is followed by a `steal` row of the stealer |
| foul | `foul` subType/descriptor in the feed's spelling (FOUL_SPELLING); no `foul_kind`: `personal` |
|   | `shooting` when free throws follow at the same clock, else `personal` |
| substitution | `substitution` `out` (the player leaving) then `in` (the player entering) |
| timeout / violation | `timeout` `full` (qualifier `team`) / `violation` (kicked ball, lane...) |
| (end of game) | a `game` `end` row, which the importer skips |

Times: `timeActual` is the canonical wall clock truncated to the tenth of a second (the live feed's precision), so
the order of events is kept and an imported event is at most 99 ms earlier than its canonical original. `clock`
is `PT<mm>M<ss>.<ff>S`. The score (`scoreHome`/`scoreAway`, which the importer reads to tell home from away)
follows every basket.

Size: every action carries the keys a real live action has (x/y and their legacy values, side, shot distance,
possession, scores, `edited`, `orderNumber`, qualifiers, running player totals, descriptions, player names,
`personIdsFilter`, official ids...), 20 to 35 keys, with values drawn from a per-game random stream (seeded by
the game id, so the output is reproducible). Written compact, an action is about 595 bytes against about 617 in a
real document (0022000001). The box score lists the players who appear in the game's events; minutes and
plus-minus, which the importer does not read, are not derived.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
import json
import random
from collections import Counter, defaultdict
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TextIO
from zoneinfo import ZoneInfo

from temporaldb.feeds.model import (
    NON_PERSONAL_FOUL_KINDS,
    STATS,
    FeedEvent,
    FeedGame,
    FeedPlayer,
    FeedTeam,
)

FEED_FORMAT: Final = "canonical"
EASTERN: Final = ZoneInfo("America/New_York")
FOUL_SPELLING: Final[Mapping[str, tuple[str, str]]] = {
    "personal": ("personal", ""), "shooting": ("personal", "shooting"), "loose_ball": ("personal", "loose-ball"),
    "personal_take": ("personal", "take"), "transition_take": ("personal", "transition-take"),
    "away_from_play": ("personal", "away-from-play"), "clear_path": ("personal", "clear-path"),
    "inbound": ("personal", "inbound"), "double_personal": ("personal", "double"),
    "flagrant_1": ("personal", "flagrant-type-1"), "flagrant_2": ("personal", "flagrant-type-2"),
    "offensive": ("offensive", "charge"), "technical": ("technical", ""), "double_technical": ("technical", "double"),
    "defensive_3_seconds": ("technical", "defensive-3-second"), "delay_technical": ("technical", "delay-of-game"),
}  # fmt: skip
"""Canonical foul_kind -> the live feed's (subType, descriptor), spelled as the feed spells them."""
TWO_POINTERS: Final = (
    ("Jump Shot", ("pullup", "", "turnaround", "step back", "fadeaway")),
    ("Layup", ("driving", "cutting", "running", "putback", "")),
    ("DUNK", ("running", "driving", "alley-oop", "")),
    ("Hook", ("turnaround", "")),
)
THREE_POINTERS: Final = (("Jump Shot", ("pullup", "", "step back", "running")),)
STOLEN: Final = ("bad pass", "lost ball")
TURNOVERS: Final = ("bad pass", "lost ball", "traveling", "out-of-bounds", "offensive goaltending", "palming")
TEAM_TURNOVERS: Final = ("shot clock", "8 second violation", "5 second violation")
VIOLATIONS: Final = ("kicked ball", "lane", "defensive goaltending", "delay-of-game")
_FREE_THROWS: Final = frozenset({"ft_made", "ft_missed"})
_CSV_FILES: Final = ("teams", "players", "games", "events")


# ---------------------------------------------------------------------------------------------------- reading


def _open_csv(folder: Path, name: str) -> TextIO:
    plain, packed = folder / f"{name}.csv", folder / f"{name}.csv.gz"
    if plain.is_file():
        return plain.open(newline="", encoding="utf-8")
    if packed.is_file():
        return io.TextIOWrapper(gzip.open(packed), newline="", encoding="utf-8")
    raise FileNotFoundError(f"{folder}: no {name}.csv or {name}.csv.gz (a folder `temporaldb generate` wrote?)")


def _rows(folder: Path, name: str) -> Iterator[dict[str, str]]:
    with _open_csv(folder, name) as handle:
        yield from csv.DictReader(handle)


def _number(text: str) -> int | None:
    return int(text) if text else None


@dataclass(frozen=True)
class _Columns:
    """Positions of the events.csv columns (the optional ones may be absent)."""

    index: Mapping[str, int]

    def get(self, row: Sequence[str], name: str) -> str:
        position = self.index.get(name)
        return row[position] if position is not None else ""


def _event(row: Sequence[str], columns: _Columns) -> FeedEvent:
    get = columns.get
    return FeedEvent(
        period=int(get(row, "period")), clock=get(row, "clock"), event_type=get(row, "event_type"),
        team_id=_number(get(row, "team_id")), player_id=_number(get(row, "player_id")),
        secondary_player_id=_number(get(row, "secondary_player_id")), points=int(get(row, "points")),
        is_three=get(row, "is_three") == "true", foul_kind=get(row, "foul_kind") or None,
        ft_value=_number(get(row, "ft_value")), source_event_id=get(row, "source_event_id") or None,
        wall_clock=dt.datetime.fromisoformat(get(row, "wall_clock_time")),
    )  # fmt: skip


def read_canonical(
    folder: Path, *, limit: int | None = None, game_ids: Collection[int] | None = None
) -> Iterator[FeedGame]:
    """The games of a canonical CSV folder in events.csv order, one at a time (memory holds one game's events).

    `limit` stops after that many games; `game_ids` keeps only those games (the others are not parsed).
    """
    teams = {
        int(r["team_id"]): FeedTeam(int(r["team_id"]), r["abbreviation"], r["name"]) for r in _rows(folder, "teams")
    }
    names = {int(r["player_id"]): r["full_name"] for r in _rows(folder, "players")}
    games = {int(r["game_id"]): r for r in _rows(folder, "games")}
    wanted = {str(game_id) for game_id in game_ids} if game_ids is not None else None
    produced = 0
    with _open_csv(folder, "events") as handle:
        reader = csv.reader(handle)
        columns = _Columns({name: position for position, name in enumerate(next(reader))})
        current, events = "", list[FeedEvent]()
        for row in reader:
            if row[0] != current:
                if events:
                    yield _game(games[int(current)], teams, names, events, folder)
                    produced += 1
                    if limit is not None and produced >= limit:
                        return
                current, events = row[0], []
            if wanted is None or current in wanted:
                events.append(_event(row, columns))
        if events:
            yield _game(games[int(current)], teams, names, events, folder)


def _game(
    row: Mapping[str, str], teams: Mapping[int, FeedTeam], names: Mapping[int, str], events: Sequence[FeedEvent],
    folder: Path,
) -> FeedGame:  # fmt: skip
    home, away = int(row["home_team_id"]), int(row["away_team_id"])
    game_id = int(row["game_id"])
    places = player_teams(game_id, events, home, away)
    players = tuple(FeedPlayer(person, names[person], team) for person, team in places.items())
    return FeedGame(
        game_id=game_id, league="nba", season=row["season"], season_type=row["season_type"], home=teams[home],
        away=teams[away], players=players, events=tuple(events), source=str(folder / "events.csv"),
        feed_format=FEED_FORMAT, tipoff_at=dt.datetime.fromisoformat(row["tipoff_at"]), wall_clock_precision="1ms",
    )  # fmt: skip


def player_teams(game_id: int, events: Iterable[FeedEvent], home: int, away: int) -> dict[int, int]:
    """Player -> team in one game: an event's player and assister or substitute play for its team, a blocker or
    stealer for the other one. ValueError when a player would play for both."""
    teams: dict[int, int] = {}
    for event in events:
        if event.team_id is None:
            continue
        other = away if event.team_id == home else home
        helper_team = other if event.event_type in ("fg_missed", "turnover") else event.team_id
        for person, team in ((event.player_id, event.team_id), (event.secondary_player_id, helper_team)):
            if person is not None and teams.setdefault(person, team) != team:
                raise ValueError(f"game {game_id}: player {person} plays for both {teams[person]} and {team}")
    return teams


# ---------------------------------------------------------------------------------------------------- stat lines


@dataclass
class Lines:
    """A game's end-of-game lines under the stat rules: per player, per team, and the team-only events."""

    players: defaultdict[int, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    teams: defaultdict[int, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    """Every credit of the team, as nba.event_credits gives it (team rebounds and turnovers included)."""
    team_only: defaultdict[int, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    """Team rebounds (oreb, dreb) and team turnovers: events with a team and no player."""
    extra: defaultdict[int, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    """What the live box adds per player: technical and offensive fouls."""


_COUNTED: Final[Mapping[str, tuple[str, ...]]] = {
    "fg_made": ("fgm", "fga"), "fg_missed": ("fga",), "ft_made": ("ftm", "fta"), "ft_missed": ("fta",),
    "rebound_off": ("oreb", "rebounds"), "rebound_def": ("dreb", "rebounds"), "turnover": ("turnovers",),
    "foul": ("fouls",),
}  # fmt: skip
"""The stats an event of each type counts once for its player and its team (README "Stat rules")."""


def _own(event: FeedEvent) -> dict[str, int]:
    """What an event credits its player (and its team): a foul that is not a personal foul counts nothing."""
    if event.event_type == "foul" and event.foul_kind in NON_PERSONAL_FOUL_KINDS:
        return {}
    own = dict.fromkeys(_COUNTED.get(event.event_type, ()), 1)
    if event.points:
        own["points"] = event.points
    if event.is_three:
        own["fg3a"] = 1
        own["fg3m"] = int(event.event_type == "fg_made")
    return own


_HELPER_STAT: Final = {"fg_made": "assists", "fg_missed": "blocks", "turnover": "steals"}


def stat_lines(game: FeedGame) -> Lines:
    """Every player's and team's line of the game, as the database computes them from its events."""
    lines = Lines()
    home, away = game.home.team_id, game.away.team_id
    for event in game.events:
        own = _own(event)
        helper = _HELPER_STAT.get(event.event_type)
        if event.player_id is not None:
            lines.players[event.player_id].update(own)
            if event.event_type == "foul":
                kind = event.foul_kind or "personal"
                lines.extra[event.player_id]["technical" if kind in NON_PERSONAL_FOUL_KINDS else kind] += 1
        if event.secondary_player_id is not None and helper is not None:
            lines.players[event.secondary_player_id][helper] += 1
        if event.team_id is None:
            continue
        lines.teams[event.team_id].update(own)
        if helper == "assists" and event.secondary_player_id is not None:
            lines.teams[event.team_id]["assists"] += 1
        elif helper is not None and event.secondary_player_id is not None:
            lines.teams[away if event.team_id == home else home][helper] += 1
        if event.player_id is None and event.event_type in ("rebound_off", "rebound_def", "turnover"):
            lines.team_only[event.team_id].update(own)
    return lines


# ---------------------------------------------------------------------------------------------------- play-by-play


def _clock(clock: str) -> str:
    """'11:48.0' -> 'PT11M48.00S' (MM:SS, MM:SS.f to MM:SS.fff)."""
    minutes, _, rest = clock.partition(":")
    seconds, _, fraction = rest.partition(".")
    return f"PT{int(minutes):02d}M{int(seconds):02d}.{fraction.ljust(2, '0')}S"


def _tenths(moment: dt.datetime) -> str:
    """UTC, truncated to the tenth of a second: '2015-10-27T23:01:54.9Z'."""
    utc = moment.astimezone(dt.UTC)
    return f"{utc:%Y-%m-%dT%H:%M:%S}.{utc.microsecond // 100_000}Z"


def _free_throw_trips(events: Sequence[FeedEvent]) -> dict[int, tuple[int, int]]:
    """Position of each free throw -> (N, M) of its `N of M`: a run of one shooter's free throws at one clock."""
    trips: dict[int, tuple[int, int]] = {}
    run: list[int] = []

    def close() -> None:
        for start in range(0, len(run), 3):
            chunk = run[start : start + 3]
            trips.update((position, (n, len(chunk))) for n, position in enumerate(chunk, 1))
        run.clear()

    for position, event in enumerate(events):
        if event.event_type not in _FREE_THROWS:
            close()
            continue
        last = events[run[-1]] if run else None
        if last is not None and (last.player_id, last.period, last.clock) != (
            event.player_id,
            event.period,
            event.clock,
        ):
            close()
        run.append(position)
    close()
    return trips


def _names(full_name: str) -> tuple[str, str, str]:
    """(first name, family name, 'K. Bryant') of a full name."""
    first, _, family = full_name.partition(" ")
    family = family or first
    return first, family, f"{first[:1]}. {family}" if first != family else family


@dataclass
class _Writer:
    """Builds one game's live actions, event by event, with the running scores and player totals."""

    game: FeedGame
    teams: Mapping[int, int]
    random: random.Random
    names: Mapping[int, tuple[str, str, str]]
    trips: Mapping[int, tuple[int, int]]
    actions: list[dict[str, Any]] = field(default_factory=list)
    score: dict[int, int] = field(default_factory=dict)
    totals: defaultdict[int, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    last_miss: int | None = None
    officials: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        self.score = {self.game.home.team_id: 0, self.game.away.team_id: 0}
        self.officials = tuple(self.random.randrange(200_000, 203_000) for _ in range(3))

    def fail(self, position: int, message: str) -> ValueError:
        return ValueError(f"game {self.game.game_id:010d} event {position + 1}: {message}")

    def tricode(self, team: int) -> str:
        return self.game.home.abbreviation if team == self.game.home.team_id else self.game.away.abbreviation

    def initial(self, person: int | None) -> str:
        return self.names[person][2] if person is not None else "TEAM"

    def action(
        self, event: FeedEvent, kind: tuple[str, str | None], team: int | None, person: int | None, description: str,
        **extra: Any,
    ) -> dict[str, Any]:  # fmt: skip
        """One action of (actionType, subType) with the keys every live action has, in the feed's order; `extra`
        comes before the description and the names."""
        action_type, sub_type = kind
        number = len(self.actions) + 1
        wall = event.wall_clock
        assert wall is not None
        row: dict[str, Any] = {
            "actionNumber": number, "clock": _clock(event.clock), "timeActual": _tenths(wall),
            "period": event.period, "periodType": "REGULAR" if event.period <= 4 else "OVERTIME",
        }  # fmt: skip
        if team is not None:
            row["teamId"], row["teamTricode"] = team, self.tricode(team)
        row["actionType"] = action_type
        if sub_type is not None:
            row["subType"] = sub_type
        row.update(extra.pop("descriptor", {}))
        row.update({
            "qualifiers": extra.pop("qualifiers", []), "personId": person or 0,
            "x": None, "y": None, "side": None, "possession": team or 0,
            "scoreHome": str(self.score[self.game.home.team_id]), "scoreAway": str(self.score[self.game.away.team_id]),
            "edited": f"{wall + dt.timedelta(seconds=self.random.randrange(1, 40)):%Y-%m-%dT%H:%M:%SZ}",
            "orderNumber": number * 10_000, "xLegacy": None, "yLegacy": None, "isFieldGoal": 0,
        })  # fmt: skip
        row.update(extra)
        row["description"] = description
        if person is not None:
            row["playerName"], row["playerNameI"] = self.names[person][1], self.names[person][2]
        row["personIdsFilter"] = [p for p in (person, extra.get("assistPersonId"), extra.get("stealPersonId")) if p]
        self.actions.append(row)
        return row

    def shot_place(self, row: dict[str, Any], three: bool) -> None:
        """Court position: x/y in percent of the court, legacy values in tenths of a foot."""
        distance = self.random.uniform(23.8, 27.5) if three else self.random.choice((1.2, 3.5, 8.0, 14.5, 19.0))
        x_legacy, y_legacy = self.random.randint(-240, 240), self.random.randint(-40, 280)
        row.update({
            "x": round(self.random.uniform(2.0, 98.0), 12), "y": round(self.random.uniform(2.0, 98.0), 12),
            "side": self.random.choice(("left", "right")), "shotDistance": round(distance, 2),
            "xLegacy": x_legacy, "yLegacy": y_legacy, "isFieldGoal": 1,
        })  # fmt: skip


# One function per canonical event type: each writes the event's action(s) through the writer.


def _period(writer: _Writer, event: FeedEvent, _position: int) -> None:
    sub = "start" if event.event_type == "period_start" else "end"
    writer.action(event, ("period", sub), None, None, f"Period {sub.title()}")


def _jump_ball(writer: _Writer, event: FeedEvent, position: int) -> None:
    winner = event.player_id
    if winner is None or event.team_id is None:
        raise writer.fail(position, "a jump ball without a player has no live winner (jumpBallWonPersonId)")
    opponents = [person for person, team in writer.teams.items() if team != event.team_id]
    lost = opponents[0] if opponents else 0
    at_start = event.clock in ("12:00", "12:00.0", "05:00", "05:00.0")
    writer.action(
        event, ("jumpball", "recovered"), event.team_id, winner,
        f"Jump Ball {writer.initial(winner)} vs. {writer.initial(lost or None)}: Tip to {writer.initial(winner)}",
        descriptor={"descriptor": "startperiod" if at_start else "heldball"},
        jumpBallRecoveredName=writer.initial(winner), jumpBallRecoverdPersonId=winner,
        jumpBallWonPlayerName=writer.names[winner][1], jumpBallWonPersonId=winner,
        jumpBallLostPlayerName=writer.names[lost][1] if lost else "", jumpBallLostPersonId=lost,
    )  # fmt: skip


def _field_goal(writer: _Writer, event: FeedEvent, position: int) -> None:
    shooter, team, three = event.player_id, event.team_id, event.is_three
    if shooter is None or team is None:
        raise writer.fail(position, "a shot needs a player and a team")
    made = event.event_type == "fg_made"
    sub_type, descriptors = writer.random.choice(THREE_POINTERS if three else TWO_POINTERS)
    descriptor = writer.random.choice(descriptors)
    extra: dict[str, Any] = {"descriptor": {"descriptor": descriptor} if descriptor else {}}
    extra["qualifiers"] = ["pointsinthepaint"] if sub_type in ("Layup", "DUNK") else []
    shot = f"{descriptor} {'3PT ' if three else ''}{sub_type}".strip()
    helper = event.secondary_player_id
    if made:
        writer.score[team] += event.points
        points = writer.totals[shooter]["points"] = writer.totals[shooter]["points"] + event.points
        text = f"{writer.initial(shooter)} {shot} ({points} PTS)"
        extra.update(shotResult="Made", pointsTotal=points)
        if helper is not None:
            writer.totals[helper]["assists"] += 1
            assists = writer.totals[helper]["assists"]
            text += f" ({writer.initial(helper)} {assists} AST)"
            extra.update(assistPlayerNameInitial=writer.initial(helper), assistPersonId=helper, assistTotal=assists)
    else:
        text = f"MISS {writer.initial(shooter)} {shot}"
        extra["shotResult"] = "Missed"
        if helper is not None:
            extra.update(blockPlayerName=writer.names[helper][1], blockPersonId=helper)
    row = writer.action(event, ("3pt" if three else "2pt", sub_type), team, shooter, text, **extra)
    writer.shot_place(row, three)
    if not made:
        writer.last_miss = row["actionNumber"]
        if helper is not None:
            writer.totals[helper]["blocks"] += 1
            blocks = writer.totals[helper]["blocks"]
            writer.action(event, ("block", None), writer.teams[helper], helper,
                          f"{writer.initial(helper)} BLOCK ({blocks} BLK)")  # fmt: skip


def _free_throw(writer: _Writer, event: FeedEvent, position: int) -> None:
    shooter, team = event.player_id, event.team_id
    if shooter is None or team is None:
        raise writer.fail(position, "a free throw needs a player and a team")
    if event.ft_value not in (None, 1):
        raise writer.fail(position, f"a free throw worth {event.ft_value} has no live spelling")
    n, m = writer.trips[position]
    made = event.event_type == "ft_made"
    if made:
        writer.score[team] += 1
        writer.totals[shooter]["points"] += 1
    points = writer.totals[shooter]["points"]
    text = f"{writer.initial(shooter)} Free Throw {n} of {m}" + (f" ({points} PTS)" if made else "")
    row = writer.action(
        event, ("freethrow", f"{n} of {m}"), team, shooter, text if made else f"MISS {text}",
        shotResult="Made" if made else "Missed", pointsTotal=points,
    )  # fmt: skip
    if not made:
        writer.last_miss = row["actionNumber"]


def _rebound(writer: _Writer, event: FeedEvent, _position: int) -> None:
    kind = "offensive" if event.event_type == "rebound_off" else "defensive"
    player = event.player_id
    extra: dict[str, Any] = {"shotActionNumber": writer.last_miss} if writer.last_miss is not None else {}
    if player is None:
        extra["qualifiers"] = ["team"]
        text = f"TEAM {kind} REBOUND"
    else:
        totals = writer.totals[player]
        totals[kind] += 1
        extra.update(reboundTotal=totals["offensive"] + totals["defensive"],
                     reboundDefensiveTotal=totals["defensive"], reboundOffensiveTotal=totals["offensive"])  # fmt: skip
        text = f"{writer.initial(player)} REBOUND (Off:{totals['offensive']} Def:{totals['defensive']})"
    writer.action(event, ("rebound", kind), event.team_id, player, text, **extra)


def _turnover(writer: _Writer, event: FeedEvent, _position: int) -> None:
    player, stealer = event.player_id, event.secondary_player_id
    if player is None:
        sub_type = writer.random.choice(TEAM_TURNOVERS)
        writer.action(event, ("turnover", sub_type), event.team_id, None, f"TEAM {sub_type} TURNOVER",
                      qualifiers=["team"], officialId=writer.random.choice(writer.officials))  # fmt: skip
    else:
        sub_type = writer.random.choice(STOLEN if stealer is not None else TURNOVERS)
        writer.totals[player]["turnovers"] += 1
        total = writer.totals[player]["turnovers"]
        extra: dict[str, Any] = {"officialId": writer.random.choice(writer.officials), "turnoverTotal": total}
        if stealer is not None:
            extra.update(stealPlayerName=writer.names[stealer][1], stealPersonId=stealer)
        writer.action(event, ("turnover", sub_type), event.team_id, player,
                      f"{writer.initial(player)} {sub_type} TURNOVER ({total} TO)", **extra)  # fmt: skip
    if stealer is not None:
        writer.totals[stealer]["steals"] += 1
        steals = writer.totals[stealer]["steals"]
        writer.action(event, ("steal", None), writer.teams[stealer], stealer,
                      f"{writer.initial(stealer)} STEAL ({steals} STL)")  # fmt: skip


def _foul_kind(events: Sequence[FeedEvent], position: int) -> tuple[str, FeedEvent | None]:
    """The event's foul kind (without one: shooting when free throws follow at its clock) and that free throw."""
    event = events[position]
    following = events[position + 1] if position + 1 < len(events) else None
    shot = following if following is not None and following.event_type in _FREE_THROWS else None
    if shot is not None and (shot.period, shot.clock) != (event.period, event.clock):
        shot = None
    return event.foul_kind or ("shooting" if shot is not None else "personal"), shot


def _foul(writer: _Writer, event: FeedEvent, position: int) -> None:
    kind, shot = _foul_kind(writer.game.events, position)
    sub_type, descriptor = FOUL_SPELLING[kind]
    player = event.player_id
    personal = kind not in NON_PERSONAL_FOUL_KINDS
    extra: dict[str, Any] = {"descriptor": {"descriptor": descriptor} if descriptor else {}}
    if shot is not None:
        extra["qualifiers"] = [f"{writer.trips[position + 1][1]}freethrow"]
    extra["officialId"] = writer.random.choice(writer.officials)
    counts = writer.totals[player] if player is not None else Counter[str]()
    counts["fouls" if personal else "technicals"] += 1
    extra.update(foulPersonalTotal=counts["fouls"], foulTechnicalTotal=counts["technicals"])
    if shot is not None and shot.player_id is not None:
        extra.update(foulDrawnPlayerName=writer.names[shot.player_id][1], foulDrawnPersonId=shot.player_id)
    who = writer.initial(player) if player is not None else f"{writer.tricode(event.team_id or 0)} team"
    text = f"{who} {descriptor.replace('-', ' ')} {sub_type} FOUL".replace("  ", " ")
    writer.action(event, ("foul", sub_type), event.team_id, player, text, **extra)


def _substitution(writer: _Writer, event: FeedEvent, position: int) -> None:
    entering, leaving = event.player_id, event.secondary_player_id
    if entering is None or leaving is None:
        raise writer.fail(position, "a substitution needs the player entering and the player leaving")
    writer.action(event, ("substitution", "out"), event.team_id, leaving, f"SUB out: {writer.initial(leaving)}")
    writer.action(event, ("substitution", "in"), event.team_id, entering, f"SUB in: {writer.initial(entering)}")


def _timeout(writer: _Writer, event: FeedEvent, _position: int) -> None:
    team = event.team_id
    writer.action(event, ("timeout", "full"), team, None, f"{writer.tricode(team or 0)} Timeout", qualifiers=["team"])


def _violation(writer: _Writer, event: FeedEvent, _position: int) -> None:
    sub_type = writer.random.choice(VIOLATIONS)
    who = writer.initial(event.player_id) if event.player_id is not None else "TEAM"
    writer.action(event, ("violation", sub_type), event.team_id, event.player_id, f"{who} {sub_type} VIOLATION",
                  officialId=writer.random.choice(writer.officials))  # fmt: skip


WRITERS: Final[Mapping[str, Callable[[_Writer, FeedEvent, int], None]]] = {
    "period_start": _period, "period_end": _period, "jump_ball": _jump_ball, "fg_made": _field_goal,
    "fg_missed": _field_goal, "ft_made": _free_throw, "ft_missed": _free_throw, "rebound_off": _rebound,
    "rebound_def": _rebound, "turnover": _turnover, "foul": _foul, "substitution": _substitution,
    "timeout": _timeout, "violation": _violation,
}  # fmt: skip


def _meta(game: FeedGame, what: str) -> dict[str, Any]:
    stamp = game.tipoff_at or dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
    return {
        "version": 1, "code": 200, "request": f"http://nba.cloud/games/{game.game_id:010d}/{what}?Format=json",
        "time": f"{stamp + dt.timedelta(hours=3):%Y-%m-%d %H:%M:%S}.000000",
    }  # fmt: skip


def _people(game: FeedGame) -> tuple[dict[int, int], dict[int, tuple[str, str, str]]]:
    teams = {player.player_id: player.team_id for player in game.players}
    return teams, {player.player_id: _names(player.full_name) for player in game.players}


def play_by_play(game: FeedGame) -> dict[str, Any]:
    """The live play-by-play document of a canonical game; ValueError for an event the live feed cannot spell."""
    teams, names = _people(game)
    writer = _Writer(game, teams, random.Random(game.game_id), names, _free_throw_trips(game.events))
    for position, event in enumerate(game.events):
        if event.wall_clock is None:
            raise writer.fail(position, "an event without a wall clock has no timeActual")
        write = WRITERS.get(event.event_type)
        if write is None:
            raise writer.fail(position, f"unknown event type {event.event_type!r}")
        write(writer, event, position)
    if game.events:
        last = game.events[-1]
        writer.action(_buzzer(last), ("game", "end"), None, None, "Game End")
    return {"meta": _meta(game, "playbyplay"), "game": {"gameId": f"{game.game_id:010d}", "actions": writer.actions}}


def _buzzer(event: FeedEvent) -> FeedEvent:
    """The event at the buzzer (0:00 of its period), for the closing `game end` row."""
    return FeedEvent(event.period, "00:00", "period_end", wall_clock=event.wall_clock)


# ---------------------------------------------------------------------------------------------------- box score


def _percentage(made: int, attempted: int) -> float:
    return round(made / attempted, 15) if attempted else 0.0


def _statistics(line: Mapping[str, int], extra: Mapping[str, int]) -> dict[str, Any]:
    """A live box `statistics` object (the player keys, in the feed's order) from a stat line."""
    fgm, fga, fg3m, fg3a, ftm, fta = (line[name] for name in ("fgm", "fga", "fg3m", "fg3a", "ftm", "fta"))
    return {
        "assists": line["assists"], "blocks": line["blocks"], "blocksReceived": 0, "fieldGoalsAttempted": fga,
        "fieldGoalsMade": fgm, "fieldGoalsPercentage": _percentage(fgm, fga),
        "foulsOffensive": extra["offensive"], "foulsDrawn": 0, "foulsPersonal": line["fouls"],
        "foulsTechnical": extra["technical"], "freeThrowsAttempted": fta, "freeThrowsMade": ftm,
        "freeThrowsPercentage": _percentage(ftm, fta), "minus": 0.0, "minutes": "PT00M00.00S",
        "minutesCalculated": "PT00M", "plus": 0.0, "plusMinusPoints": 0.0, "points": line["points"],
        "pointsFastBreak": 0, "pointsInThePaint": 0, "pointsSecondChance": 0, "reboundsDefensive": line["dreb"],
        "reboundsOffensive": line["oreb"], "reboundsTotal": line["rebounds"], "steals": line["steals"],
        "threePointersAttempted": fg3a, "threePointersMade": fg3m, "threePointersPercentage": _percentage(fg3m, fg3a),
        "turnovers": line["turnovers"], "twoPointersAttempted": fga - fg3a, "twoPointersMade": fgm - fg3m,
        "twoPointersPercentage": _percentage(fgm - fg3m, fga - fg3a),
    }  # fmt: skip


def _team_statistics(lines: Lines, team: int, members: Iterable[int], minutes: int) -> dict[str, Any]:
    """The team's players-only line with its team rebounds and turnovers apart, as the live box gives them."""
    own, apart = lines.teams[team], lines.team_only[team]
    players = Counter({stat: own[stat] - apart[stat] for stat in STATS})
    fouls = sum((lines.extra[member] for member in members), Counter[str]())
    statistics = _statistics(players, fouls)
    statistics.update({
        "minutes": f"PT{minutes}M00.00S", "minutesCalculated": f"PT{minutes}M",
        "reboundsPersonal": players["rebounds"], "reboundsTeam": apart["rebounds"],
        "reboundsTeamDefensive": apart["dreb"], "reboundsTeamOffensive": apart["oreb"],
        "reboundsTotal": players["rebounds"] + apart["rebounds"], "turnoversTeam": apart["turnovers"],
        "turnoversTotal": players["turnovers"] + apart["turnovers"],
    })  # fmt: skip
    return statistics


def _starters(game: FeedGame) -> set[int]:
    """Players whose first event is not entering the game: five a team at most, in order of appearance."""
    seen: set[int] = set()
    starters: dict[int, list[int]] = defaultdict(list)
    teams = {player.player_id: player.team_id for player in game.players}
    for event in game.events:
        for person in (event.player_id, event.secondary_player_id):
            if person is None or person in seen:
                continue
            seen.add(person)
            entering = event.event_type == "substitution" and person == event.player_id
            if not entering and len(starters[teams[person]]) < 5:
                starters[teams[person]].append(person)
    return {person for group in starters.values() for person in group}


def _box_team(game: FeedGame, team: FeedTeam, lines: Lines, starters: set[int], rng: random.Random) -> dict[str, Any]:
    members = [player for player in game.players if player.team_id == team.team_id]
    members.sort(key=lambda player: player.player_id not in starters)  # stable: starters first, then by appearance
    periods: Counter[int] = Counter()
    for event in game.events:
        if event.team_id == team.team_id:
            periods[event.period] += event.points
    last = max((event.period for event in game.events), default=4)
    city, _, nickname = team.name.rpartition(" ")
    players = []
    for order, player in enumerate(members, 1):
        first, family, initial = _names(player.full_name)
        players.append({
            "status": "ACTIVE", "order": order, "personId": player.player_id, "jerseyNum": str(rng.randrange(100)),
            "position": rng.choice(("G", "F", "C", "SF", "PF", "SG", "PG")) if player.player_id in starters else "",
            "starter": "1" if player.player_id in starters else "0", "oncourt": "0", "played": "1",
            "statistics": _statistics(lines.players[player.player_id], lines.extra[player.player_id]),
            "name": player.full_name, "nameI": initial, "firstName": first, "familyName": family,
        })  # fmt: skip
    return {
        "teamId": team.team_id, "teamName": nickname, "teamCity": city, "teamTricode": team.abbreviation,
        "score": lines.teams[team.team_id]["points"], "inBonus": "0", "timeoutsRemaining": 0,
        "periods": [
            {"period": n, "periodType": "REGULAR" if n <= 4 else "OVERTIME", "score": periods[n]}
            for n in range(1, last + 1)
        ],
        "players": players,
        "statistics": _team_statistics(lines, team.team_id, (p.player_id for p in members), 240 + 25 * (last - 4)),
    }  # fmt: skip


def box_score(game: FeedGame) -> dict[str, Any]:
    """The live box score of a canonical game: its lines under the stat rules, the game final."""
    if game.tipoff_at is None:
        raise ValueError(f"game {game.game_id:010d}: no tip-off time")
    lines, starters, rng = stat_lines(game), _starters(game), random.Random(-game.game_id)
    utc, eastern = game.tipoff_at.astimezone(dt.UTC), game.tipoff_at.astimezone(EASTERN)
    last = max((event.period for event in game.events), default=4)
    home, away = (_box_team(game, team, lines, starters, rng) for team in (game.home, game.away))
    local = eastern.isoformat()
    return {
        "meta": _meta(game, "boxscore"),
        "game": {
            "gameId": f"{game.game_id:010d}", "gameTimeLocal": local, "gameTimeUTC": f"{utc:%Y-%m-%dT%H:%M:%SZ}",
            "gameTimeHome": local, "gameTimeAway": local, "gameEt": local, "duration": 135 + 15 * (last - 4),
            "gameCode": f"{eastern:%Y%m%d}/{game.away.abbreviation}{game.home.abbreviation}",
            "gameStatusText": "Final", "gameStatus": 3, "regulationPeriods": 4, "period": last,
            "gameClock": "PT00M00.00S", "attendance": rng.randrange(15_000, 21_000), "sellout": "0",
            "arena": {"arenaId": game.home.team_id % 1000, "arenaName": f"{game.home.name} Arena",
                      "arenaCity": home["teamCity"], "arenaState": "", "arenaCountry": "US", "arenaTimezone": ""},
            "officials": [
                {"personId": rng.randrange(200_000, 203_000), "assignment": f"OFFICIAL{n}"} for n in (1, 2, 3)
            ],
            "homeTeam": home, "awayTeam": away,
        },
    }  # fmt: skip


# ---------------------------------------------------------------------------------------------------- a folder


@dataclass
class Written:
    """What write_live wrote."""

    games: int = 0
    events: int = 0
    """Canonical events of the games written."""
    actions: int = 0
    """Live play-by-play actions written."""
    bytes: int = 0
    """Bytes written (compressed, with --compress), play-by-play and box scores."""


def _dump(path: Path, document: Mapping[str, Any], compress: bool) -> int:
    data = json.dumps(document, separators=(",", ":")).encode()  # compact, as cdn.nba.com serves it
    if compress:
        data = gzip.compress(data, mtime=0)  # mtime 0: the same game gives the same bytes
    path.write_bytes(data)
    return len(data)


def write_live(
    games: Iterable[FeedGame], folder: Path, *, compress: bool = False, progress: Callable[[int], None] | None = None
) -> Written:
    """Each game as `<gameId>/playbyplay_<gameId>.json` and `<gameId>/boxscore_<gameId>.json` (`.json.gz` when
    `compress`) under `folder`: a game's two documents are next to each other in name order."""
    written = Written()
    suffix = ".json.gz" if compress else ".json"
    for game in games:
        name = f"{game.game_id:010d}"
        place = folder / name
        place.mkdir(parents=True, exist_ok=True)
        pbp = play_by_play(game)
        written.bytes += _dump(place / f"playbyplay_{name}{suffix}", pbp, compress)
        written.bytes += _dump(place / f"boxscore_{name}{suffix}", box_score(game), compress)
        written.games += 1
        written.events += len(game.events)
        written.actions += len(pbp["game"]["actions"])
        if progress is not None:
            progress(written.games)
    return written
