"""Seeded, streaming generator of a synthetic NBA league in the canonical CSV format.

`generate_league(out_dir, seasons=N)` writes `teams.csv`, `players.csv`, `games.csv` and `events.csv`
(or `.csv.gz`) into `out_dir`: N seasons from `first_season` (1996 means 1996-97), regular season and
playoffs, with real franchise ids and a synthetic but plausible cast of players. The same arguments
always produce byte-identical files (gzip files too: no timestamp in their header). Events are
written game by game as each game is played; only the current rosters and one game's events are
held in memory, so memory does not grow with the number of seasons.

What is real and what is synthetic
----------------------------------
Real: franchise ids, abbreviations and current names; 29 teams through 2003-04 and 30 from 2004-05
(Charlotte is absent in 2002-03 and 2003-04, when New Orleans joins); 82 games per team (50 in
1998-99 and 66 in 2011-12, the lockout seasons) with 41 home games; the NBA game id scheme; a
16-team, four-round best-of-7 playoff; 7:00-10:30 PM Eastern tip-offs (7:00 or 7:30 PM in the home
team's time zone). Kobe Bryant (player 977) plays for the Lakers from 1996-97 to 2015-16; his last
game is LAL-UTA on 2016-04-13 (game 21501228, tip-off 2016-04-14T02:30Z), after which he retires.
Everything else (players, rosters, trades, schedules, play-by-play) is drawn from `random.Random`
streams derived from the seed: one for rosters (players, trades, team strength; `league_rosters`
replays it without playing), one for the calendar (pairings, days, tip-off times, standings ties)
and one per game, seeded with the seed and the game id, so a game's events do not depend on the
games played before it.

Wall-clock time of an event
---------------------------
Real historical play-by-play carries the game clock and, at best, a minute- or second-precision
wall clock, so many events share a timestamp. The canonical format gives every event an exact,
ordered instant, derived from the game clock as:

    wall_clock_time = tipoff_at
                      + period_start_offset(period)
                      + elapsed game clock in the period x 2.4
                      + event_num milliseconds

The factor 2.4 stretches a 12:00 period to 28m48s of real time (an overtime's 5:00 to 12m) to
account for stoppages; `period_start_offset` is the stretched length of the previous periods plus
the intermissions: 2m30s between periods (also before each overtime) and 15m at halftime, so
regulation spans 2h15m12s and each overtime adds 14m30s. Events at the same game clock (free
throws, substitutions) are ordered by the event_num milliseconds, a deterministic tie-breaker. The
result is strictly increasing in event_num within a game and stays well within six hours of
tip-off; a team plays at most one game a day, tipping off at 7:00 PM Eastern or later, so two games
of the same team never overlap, and each season (late October to late June) ends before the next.

Format details the loader relies on
-----------------------------------
Lines end with `\\n`; no field needs quoting except possibly a name (written with the csv module).
`clock` is `MM:SS.s` remaining in the period; `tipoff_at` and `wall_clock_time` are UTC,
`YYYY-MM-DDTHH:MM:SS.mmm+00:00`; `is_three` is `true`/`false`; empty fields are empty strings.
Rows of `games.csv` and `events.csv` are in play order (events of a game are contiguous, by event_num).
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import random
from bisect import bisect_right
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from itertools import accumulate, count
from pathlib import Path
from time import perf_counter
from typing import TextIO

__all__ = [
    "FRANCHISES",
    "Franchise",
    "GenerationSummary",
    "Roster",
    "ScheduledGame",
    "games_per_team",
    "generate_league",
    "league_rosters",
    "regular_season_schedule",
]

REGULAR_SEASON = "regular"
PLAYOFFS = "playoffs"
KOBE_BRYANT_ID = 977
LAKERS = 1610612747
JAZZ = 1610612762
FIRST_SUPPORTED_SEASON = 1996
MAX_SEASONS = 100  # game ids carry the season as two digits: a century of seasons keeps them unique

TEAMS_HEADER = "team_id,abbreviation,name"
PLAYERS_HEADER = "player_id,full_name"
GAMES_HEADER = "game_id,season,season_type,home_team_id,away_team_id,tipoff_at"
EVENTS_HEADER = (
    "game_id,event_num,period,clock,wall_clock_time,event_type,team_id,player_id,secondary_player_id,points,is_three"
)


@dataclass(frozen=True)
class GenerationSummary:
    """What `generate_league` wrote."""

    teams: int
    players: int
    games: int
    events: int
    seasons: int


@dataclass(frozen=True)
class Franchise:
    team_id: int
    abbreviation: str
    name: str
    conference: str
    hours_behind_eastern: int
    """Time zone of the home arena: 0 Eastern, 1 Central, 2 Mountain, 3 Pacific."""
    joined: int = FIRST_SUPPORTED_SEASON
    absent: tuple[int, ...] = ()
    east_until: int = 0
    """Plays in the East before this season (New Orleans moved West in 2004-05)."""

    def plays_in(self, season: int) -> bool:
        return season >= self.joined and season not in self.absent

    def conference_in(self, season: int) -> str:
        return "East" if season < self.east_until else self.conference


FRANCHISES: tuple[Franchise, ...] = (
    Franchise(1610612737, "ATL", "Atlanta Hawks", "East", 0),
    Franchise(1610612738, "BOS", "Boston Celtics", "East", 0),
    Franchise(1610612739, "CLE", "Cleveland Cavaliers", "East", 0),
    Franchise(1610612740, "NOP", "New Orleans Pelicans", "West", 1, joined=2002, east_until=2004),
    Franchise(1610612741, "CHI", "Chicago Bulls", "East", 1),
    Franchise(1610612742, "DAL", "Dallas Mavericks", "West", 1),
    Franchise(1610612743, "DEN", "Denver Nuggets", "West", 2),
    Franchise(1610612744, "GSW", "Golden State Warriors", "West", 3),
    Franchise(1610612745, "HOU", "Houston Rockets", "West", 1),
    Franchise(1610612746, "LAC", "LA Clippers", "West", 3),
    Franchise(1610612747, "LAL", "Los Angeles Lakers", "West", 3),
    Franchise(1610612748, "MIA", "Miami Heat", "East", 0),
    Franchise(1610612749, "MIL", "Milwaukee Bucks", "East", 1),
    Franchise(1610612750, "MIN", "Minnesota Timberwolves", "West", 1),
    Franchise(1610612751, "BKN", "Brooklyn Nets", "East", 0),
    Franchise(1610612752, "NYK", "New York Knicks", "East", 0),
    Franchise(1610612753, "ORL", "Orlando Magic", "East", 0),
    Franchise(1610612754, "IND", "Indiana Pacers", "East", 0),
    Franchise(1610612755, "PHI", "Philadelphia 76ers", "East", 0),
    Franchise(1610612756, "PHX", "Phoenix Suns", "West", 2),
    Franchise(1610612757, "POR", "Portland Trail Blazers", "West", 3),
    Franchise(1610612758, "SAC", "Sacramento Kings", "West", 3),
    Franchise(1610612759, "SAS", "San Antonio Spurs", "West", 1),
    Franchise(1610612760, "OKC", "Oklahoma City Thunder", "West", 1),
    Franchise(1610612761, "TOR", "Toronto Raptors", "East", 0),
    Franchise(1610612762, "UTA", "Utah Jazz", "West", 2),
    Franchise(1610612763, "MEM", "Memphis Grizzlies", "West", 1),
    Franchise(1610612764, "WAS", "Washington Wizards", "East", 0),
    Franchise(1610612765, "DET", "Detroit Pistons", "East", 0),
    Franchise(1610612766, "CHA", "Charlotte Hornets", "East", 0, absent=(2002, 2003)),
)

LOCKOUT_GAMES_PER_TEAM = {1998: 50, 2011: 66}


def games_per_team(season: int) -> int:
    """Regular-season games each team plays in `season` (82, fewer in the lockout seasons)."""
    return LOCKOUT_GAMES_PER_TEAM.get(season, 82)


def season_label(season: int) -> str:
    return f"{season}-{(season + 1) % 100:02d}"


# ---------------------------------------------------------------------------------------------
# Calendar: season windows, US Eastern time, tip-offs
# ---------------------------------------------------------------------------------------------


TUESDAY, WEDNESDAY, SUNDAY = 1, 2, 6


def _weekday_on_or_after(day: date, weekday: int) -> date:
    return day + timedelta(days=(weekday - day.weekday()) % 7)


def eastern_utc_offset_hours(day: date) -> int:
    """UTC offset of US Eastern time on the evening of `day` (US daylight-saving rules since 1987)."""
    if day.year >= 2007:  # second Sunday of March to first Sunday of November
        starts = _weekday_on_or_after(date(day.year, 3, 8), SUNDAY)
        ends = _weekday_on_or_after(date(day.year, 11, 1), SUNDAY)
    else:  # first Sunday of April to last Sunday of October
        starts = _weekday_on_or_after(date(day.year, 4, 1), SUNDAY)
        ends = _weekday_on_or_after(date(day.year, 10, 25), SUNDAY)
    return -4 if starts <= day < ends else -5


def regular_season_window(season: int) -> tuple[date, date]:
    """Opening night (a Tuesday in Oct 26-Nov 1) and closing night (a Wednesday in Apr 13-19)."""
    return _weekday_on_or_after(date(season, 10, 26), TUESDAY), _weekday_on_or_after(date(season + 1, 4, 13), WEDNESDAY)


def _tipoff(day: date, eastern_minutes: int) -> datetime:
    """`day` at `eastern_minutes` past midnight US Eastern, as an aware UTC datetime."""
    local = datetime.combine(day, time()) + timedelta(minutes=eastern_minutes)
    return (local - timedelta(hours=eastern_utc_offset_hours(day))).replace(tzinfo=UTC)


def _home_tipoff_minutes(franchise: Franchise, rng: random.Random) -> int:
    """7:00 or 7:30 PM in the home team's time zone, in minutes after midnight Eastern."""
    return (19 + franchise.hours_behind_eastern) * 60 + rng.choice((0, 30))


def format_instant(moment: datetime) -> str:
    """UTC ISO 8601 with milliseconds and an explicit +00:00 offset."""
    return f"{moment.astimezone(UTC):%Y-%m-%dT%H:%M:%S}.{moment.microsecond // 1000:03d}+00:00"


# ---------------------------------------------------------------------------------------------
# Schedule
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScheduledGame:
    game_id: int
    season: int
    season_type: str
    home: Franchise
    away: Franchise
    tipoff: datetime


@dataclass(frozen=True)
class _PinnedGame:
    """A real game the generator reproduces: its id, teams, tip-off and the player who retires after it."""

    season: int
    number: int
    home: int
    away: int
    tipoff: datetime
    farewell_player: int


KOBE_FAREWELL = _PinnedGame(2015, 1228, LAKERS, JAZZ, datetime(2016, 4, 14, 2, 30, tzinfo=UTC), KOBE_BRYANT_ID)


def regular_game_id(season: int, number: int) -> int:
    """NBA style 002yy0xxxx without the leading zeros, e.g. 21501228."""
    return 20_000_000 + (season % 100) * 100_000 + number


def playoff_game_id(season: int, round_number: int, series: int, game: int) -> int:
    """NBA style 004yy00rsg without the leading zeros, e.g. 41500407 (2015-16 Finals, game 7)."""
    return 40_000_000 + (season % 100) * 100_000 + round_number * 100 + series * 10 + game


def _pairings(rng: random.Random, team_count: int, games_each: int) -> list[tuple[int, int]]:
    """(home, away) team indexes so that every team plays `games_each` games, half of them at home.

    Teams sit on a circle; "offset d" pairs every team with the one d seats clockwise, which gives
    every team one home and one away game. Full round robins use every offset; the remainder uses
    a random subset. With an even team count the diametric offset pairs each team once, so it is
    used an even number of times with alternating sides.
    """
    offsets = list(range(1, (team_count - 1) // 2 + 1))
    full_rounds, remainder = divmod(games_each, team_count - 1)
    uses = dict.fromkeys(offsets, full_rounds)
    diametric_uses = full_rounds if team_count % 2 == 0 else 0
    if remainder % 2:
        diametric_uses += 1
        remainder -= 1
    for offset in rng.sample(offsets, remainder // 2):
        uses[offset] += 1
    games: list[tuple[int, int]] = []
    for offset, times in uses.items():
        for copy in range(times):
            for seat in range(team_count):
                pair = (seat, (seat + offset) % team_count)
                games.append(pair if copy % 2 == 0 else pair[::-1])
    half = team_count // 2
    for copy in range(diametric_uses):
        for seat in range(half):
            pair = (seat, seat + half)
            games.append(pair if copy % 2 == 0 else pair[::-1])
    return games


class _DayPlanner:
    """Assigns games to days so that no team plays twice on one day."""

    def __init__(self, rng: random.Random, day_count: int, team_count: int) -> None:
        self.rng = rng
        self.day_count = day_count
        self.busy = [bytearray(day_count) for _ in range(team_count)]

    def free(self, home: int, away: int, day: int) -> bool:
        return not (self.busy[home][day] or self.busy[away][day])

    def book(self, home: int, away: int, day: int) -> int:
        self.busy[home][day] = self.busy[away][day] = 1
        return day

    def place(self, home: int, away: int) -> int:
        # A few random tries spread games evenly; the scan always succeeds because a season has at
        # least 2 x games_each - 1 days, more than both teams' other games can occupy together.
        for _ in range(24):
            day = self.rng.randrange(self.day_count)
            if self.free(home, away, day):
                return self.book(home, away, day)
        start = self.rng.randrange(self.day_count)
        for step in range(self.day_count):
            day = (start + step) % self.day_count
            if self.free(home, away, day):
                return self.book(home, away, day)
        raise AssertionError("no free day for a game: the season window is too short")


def regular_season_schedule(rng: random.Random, season: int) -> list[ScheduledGame]:
    """The season's regular-season games in game-id order (chronological by day).

    The closing night is a full slate; if the season holds a pinned real game it is played that
    night with its real id and tip-off.
    """
    return _RegularSeason(rng, season).schedule()


class _RegularSeason:
    """Builds one regular season: who plays whom, on which day, at what time, with which id."""

    def __init__(self, rng: random.Random, season: int) -> None:
        self.rng = rng
        self.season = season
        self.teams = [franchise for franchise in FRANCHISES if franchise.plays_in(season)]
        rng.shuffle(self.teams)
        self.pairs = _pairings(rng, len(self.teams), games_per_team(season))
        rng.shuffle(self.pairs)
        self.opening, closing = regular_season_window(season)
        self.planner = _DayPlanner(rng, (closing - self.opening).days + 1, len(self.teams))
        self.days = [-1] * len(self.pairs)
        self.pinned = KOBE_FAREWELL if KOBE_FAREWELL.season == season else None

    def schedule(self) -> list[ScheduledGame]:
        closing_slate = self._book_closing_night()
        for index, (home, away) in enumerate(self.pairs):
            if self.days[index] < 0:
                self.days[index] = self.planner.place(home, away)
        return self._numbered(closing_slate[0])

    def _book_closing_night(self) -> list[int]:
        """Books a full slate on the last day, the pinned game first; returns those game indexes."""
        last = self.planner.day_count - 1
        order = list(range(len(self.pairs)))
        if self.pinned is not None:
            seat = {franchise.team_id: index for index, franchise in enumerate(self.teams)}
            pinned_pair = (seat[self.pinned.home], seat[self.pinned.away])
            order.insert(0, order.pop(self.pairs.index(pinned_pair)))
        slate: list[int] = []
        for index in order:
            home, away = self.pairs[index]
            if self.planner.free(home, away, last):
                self.days[index] = self.planner.book(home, away, last)
                slate.append(index)
        return slate

    def _numbered(self, first_of_closing_night: int) -> list[ScheduledGame]:
        """Numbers the games by day and tip-off, then gives a pinned game its real number and tip-off."""
        minutes = [_home_tipoff_minutes(self.teams[home], self.rng) for home, _ in self.pairs]
        order = sorted(range(len(self.pairs)), key=lambda index: (self.days[index], minutes[index], self.rng.random()))
        if self.pinned is not None:  # real ids are not strictly in tip-off order either
            order.remove(first_of_closing_night)
            order.insert(self.pinned.number - 1, first_of_closing_night)
        schedule = []
        for number, index in enumerate(order, start=1):
            home, away = self.pairs[index]
            tipoff = _tipoff(self.opening + timedelta(days=self.days[index]), minutes[index])
            if self.pinned is not None and index == first_of_closing_night:
                tipoff = self.pinned.tipoff
            game_id = regular_game_id(self.season, number)
            schedule.append(
                ScheduledGame(game_id, self.season, REGULAR_SEASON, self.teams[home], self.teams[away], tipoff)
            )
        return schedule


# Days after the start of the playoffs on which each round's game g (index g - 1) is played; series
# with an odd index play a day later. The Finals follow the real 2016 rhythm (June 2 ... June 19).
ROUND_START_DAYS = (0, 15, 29, 47)
SERIES_GAME_DAYS = (0, 2, 4, 6, 8, 10, 12)
FINALS_GAME_DAYS = (0, 3, 6, 8, 11, 14, 17)
HOME_GAMES_2_2_1_1_1 = frozenset({1, 2, 5, 7})
HOME_GAMES_2_3_2 = frozenset({1, 2, 6, 7})  # the Finals format from 1985 to 2013


def playoff_game_day(round_number: int, series: int, game: int) -> int:
    if round_number == 4:
        return ROUND_START_DAYS[3] + FINALS_GAME_DAYS[game - 1]
    return ROUND_START_DAYS[round_number - 1] + SERIES_GAME_DAYS[game - 1] + series % 2


def _higher_seed_hosts(season: int, round_number: int, game: int) -> bool:
    finals_2_3_2 = round_number == 4 and season <= 2013
    return game in (HOME_GAMES_2_3_2 if finals_2_3_2 else HOME_GAMES_2_2_1_1_1)


# ---------------------------------------------------------------------------------------------
# Players and rosters
# ---------------------------------------------------------------------------------------------

FIRST_NAMES = (
    "Aaron", "Adrian", "Al", "Alan", "Allen", "Andre", "Andrew", "Anthony", "Antoine", "Arron", "Austin",
    "Ben", "Bobby", "Brandon", "Brent", "Brian", "Bruce", "Bryce", "Byron", "Calvin", "Carl", "Carlos",
    "Cedric", "Chris", "Clifford", "Cory", "Damon", "Dan", "Darius", "Darnell", "Darren", "David", "Dean",
    "Dennis", "Derek", "Derrick", "Devin", "Donald", "Donovan", "Doug", "Drew", "Dwayne", "Earl", "Eddie",
    "Elliot", "Eric", "Evan", "Frank", "Gary", "Gerald", "Glen", "Grant", "Greg", "Harold", "Isaiah",
    "Jalen", "Jamal", "James", "Jared", "Jason", "Jeff", "Jerome", "Joe", "Jordan", "Josh", "Julian",
    "Justin", "Keith", "Kelvin", "Kendall", "Kenny", "Kevin", "Kyle", "Lamar", "Lance", "Larry", "Lonnie",
    "Luke", "Malik", "Marcus", "Mario", "Mark", "Marvin", "Matt", "Maurice", "Michael", "Mike", "Nate",
    "Nick", "Norman", "Omar", "Otis", "Patrick", "Paul", "Quentin", "Ray", "Reggie", "Ricky", "Robert",
    "Rodney", "Ron", "Ryan", "Sam", "Scott", "Sean", "Shawn", "Stephen", "Terrence", "Terry", "Theo",
    "Tim", "Tony", "Travis", "Trevor", "Troy", "Tyler", "Tyrone", "Victor", "Vince", "Walter", "Wesley",
    "Will", "Xavier", "Zach",
)  # fmt: skip
LAST_NAMES = (
    "Adams", "Alexander", "Allen", "Anderson", "Armstrong", "Bailey", "Baker", "Banks", "Barnes", "Bell",
    "Bennett", "Blake", "Bowen", "Boyd", "Bradley", "Brooks", "Brown", "Burke", "Butler", "Campbell",
    "Carter", "Chambers", "Clark", "Coleman", "Collins", "Cook", "Cooper", "Crawford", "Cunningham",
    "Davis", "Dawson", "Dixon", "Douglas", "Dunn", "Edwards", "Ellis", "Evans", "Ferguson", "Fisher",
    "Fleming", "Ford", "Foster", "Fowler", "Freeman", "Gardner", "Gibson", "Gordon", "Graham", "Grant",
    "Gray", "Green", "Griffin", "Hall", "Hamilton", "Hardaway", "Harper", "Harris", "Hawkins", "Hayes",
    "Henderson", "Hill", "Holiday", "Holmes", "Howard", "Hudson", "Hughes", "Hunter", "Jackson", "James",
    "Jefferson", "Jenkins", "Johnson", "Jones", "Jordan", "Kelly", "Kennedy", "King", "Knight", "Lawson",
    "Lee", "Lewis", "Lowe", "Lucas", "Mack", "Marshall", "Martin", "Mason", "Matthews", "McCoy", "Miller",
    "Mitchell", "Moore", "Morgan", "Morris", "Murphy", "Murray", "Nelson", "Newton", "Norris", "Owens",
    "Palmer", "Parker", "Patterson", "Payne", "Perkins", "Perry", "Peterson", "Phillips", "Pierce",
    "Porter", "Powell", "Price", "Randolph", "Reed", "Reid", "Rice", "Richardson", "Riley", "Roberts",
    "Robinson", "Rogers", "Rose", "Ross", "Russell", "Sanders", "Scott", "Shaw", "Simmons", "Simpson",
    "Smith", "Spencer", "Stephens", "Stevens", "Stewart", "Stokes", "Sullivan", "Taylor", "Thomas",
    "Thompson", "Tucker", "Turner", "Walker", "Wallace", "Walton", "Ward", "Warren", "Washington",
    "Watkins", "Watson", "Webb", "Wells", "West", "White", "Wilkins", "Williams", "Willis", "Wilson",
    "Wood", "Wright", "Young",
)  # fmt: skip

# Career length in seasons, 1..20, falling off geometrically: about 5.5 seasons on average and
# about 2.5 % of players lasting 18 seasons or more.
CAREER_LENGTHS = tuple(range(1, 21))
CAREER_WEIGHTS = tuple(0.85**length for length in CAREER_LENGTHS)
ROSTER_SIZES = (13, 14, 15)
FREE_AGENT_POOL_LIMIT = 80


@dataclass(eq=False, slots=True)
class _Player:
    player_id: int
    label: str
    """The id as written to the CSV files (formatted once, not per event)."""
    name: str
    last_season: int
    usage: float
    """Share of his team's shots and turnovers while on the floor."""
    rebounding: float
    playmaking: float
    minutes: float
    """How much his coach plays him: starters are the five highest, bench players enter by it."""


def _kobe_bryant() -> _Player:
    return _Player(KOBE_BRYANT_ID, str(KOBE_BRYANT_ID), "Kobe Bryant", 2015, 2.0, 1.1, 1.3, 5.0)


class _League:
    """Players, rosters and team strength, season after season. Retired players are dropped."""

    def __init__(self, seed: int, write_player: Callable[[_Player], None]) -> None:
        self.rng = random.Random(f"{seed}:rosters")  # its own stream: rosters do not depend on games
        self.write_player = write_player
        self.rosters: dict[int, list[_Player]] = {}
        self.free_agents: list[_Player] = []
        self.strength: dict[int, float] = {}
        self.names_used = {"Kobe Bryant"}
        self.ids = (player_id for player_id in count(1) if player_id != KOBE_BRYANT_ID)

    def start_season(self, season: int) -> None:
        teams = [franchise.team_id for franchise in FRANCHISES if franchise.plays_in(season)]
        first = not self.rosters
        self._retire(season, teams)
        if first and season <= KOBE_FAREWELL.season:
            kobe = _kobe_bryant()
            self.write_player(kobe)
            self.rosters.setdefault(LAKERS, []).append(kobe)
        if not first:
            self._trade(season, teams)
        for team_id in teams:
            self._fill(season, team_id, self.rng.choice(ROSTER_SIZES))
        self._update_strength(season, teams)

    def roster(self, team_id: int) -> list[_Player]:
        return self.rosters[team_id]

    def retire_now(self, player_id: int) -> None:
        """A pinned farewell: the player leaves his roster right after his last game."""
        for roster in self.rosters.values():
            roster[:] = [player for player in roster if player.player_id != player_id]

    def _retire(self, season: int, teams: list[int]) -> None:
        for team_id in list(self.rosters):
            still_playing = [player for player in self.rosters[team_id] if player.last_season >= season]
            if team_id in teams:
                self.rosters[team_id] = still_playing
            else:  # the franchise sits this season out: its players become free agents
                self.free_agents.extend(still_playing)
                del self.rosters[team_id]
        self.free_agents = [player for player in self.free_agents if player.last_season >= season]
        self.free_agents.sort(key=lambda player: -player.minutes)
        del self.free_agents[FREE_AGENT_POOL_LIMIT:]

    def _trade(self, season: int, teams: list[int]) -> None:
        """A handful of one-for-one trades each off-season."""
        for _ in range(self.rng.randint(3, 9)):
            first, second = self.rng.sample(teams, 2)
            give = self._tradable(season, first)
            take = self._tradable(season, second)
            if give is None or take is None:
                continue
            self.rosters[first].remove(give)
            self.rosters[second].remove(take)
            self.rosters[first].append(take)
            self.rosters[second].append(give)

    def _tradable(self, season: int, team_id: int) -> _Player | None:
        candidates = [player for player in self.rosters.get(team_id, []) if not _untouchable(player, season)]
        return self.rng.choice(candidates) if candidates else None

    def _fill(self, season: int, team_id: int, size: int) -> None:
        roster = self.rosters.setdefault(team_id, [])
        roster.sort(key=lambda player: -player.minutes)
        while len(roster) > size:  # waive the end of the bench
            waived = next(player for player in reversed(roster) if not _untouchable(player, season))
            roster.remove(waived)
            self.free_agents.append(waived)
        while len(roster) < size:
            if self.free_agents and self.rng.random() < 0.5:
                roster.append(self.free_agents.pop(0))
            else:
                roster.append(self._new_player(season))

    def _new_player(self, season: int) -> _Player:
        rng = self.rng
        player_id = next(self.ids)
        career = rng.choices(CAREER_LENGTHS, CAREER_WEIGHTS)[0]
        usage = min(2.6, rng.lognormvariate(0.0, 0.45))
        player = _Player(
            player_id=player_id,
            label=str(player_id),
            name=self._new_name(),
            last_season=season + career - 1,
            usage=usage,
            rebounding=rng.lognormvariate(0.0, 0.5),
            playmaking=rng.lognormvariate(0.0, 0.5),
            # Long careers and high usage go with playing time.
            minutes=usage * (0.6 + career / 10) * rng.lognormvariate(0.0, 0.3),
        )
        self.write_player(player)
        return player

    def _new_name(self) -> str:
        while True:
            name = f"{self.rng.choice(FIRST_NAMES)} {self.rng.choice(LAST_NAMES)}"
            if name not in self.names_used:
                self.names_used.add(name)
                return name

    def _update_strength(self, season: int, teams: list[int]) -> None:
        """Team quality drifts from year to year; the 2015-16 Lakers (17-65) are pinned weak."""
        for team_id in teams:
            previous = self.strength.get(team_id, 0.0)
            self.strength[team_id] = 0.5 * previous + self.rng.gauss(0.0, 0.85)
        if KOBE_FAREWELL.season == season:
            self.strength[LAKERS] = -2.0


@dataclass(frozen=True)
class Roster:
    season: int
    players: dict[int, tuple[int, ...]]
    """Player ids by team id at the start of the season."""


def league_rosters(*, seasons: int, first_season: int = FIRST_SUPPORTED_SEASON, seed: int = 1) -> Iterator[Roster]:
    """The rosters `generate_league` plays with (same arguments), season by season, without playing.

    Cheap: useful to look at careers, trades and rosters over many seasons.
    """
    _validate(seasons, first_season)
    league = _League(seed, lambda _: None)
    for season in range(first_season, first_season + seasons):
        league.start_season(season)
        yield Roster(season, {team: tuple(p.player_id for p in players) for team, players in league.rosters.items()})


def _untouchable(player: _Player, season: int) -> bool:
    """Kobe Bryant stays a Laker for his whole career."""
    return player.player_id == KOBE_BRYANT_ID and season <= KOBE_FAREWELL.season


# ---------------------------------------------------------------------------------------------
# Play-by-play of one game
# ---------------------------------------------------------------------------------------------

MIN_EVENTS = 450
MAX_EVENTS = 500
PERIOD_TENTHS = 7200
OVERTIME_TENTHS = 3000
WALL_MS_PER_TENTH = 240  # 48:00 of game clock plus intermissions become about 2h15m of real time
INTERMISSION_MS = 150_000
HALFTIME_MS = 900_000
DAY_MS = 86_400_000

# Calibrated so that box scores land near 100 points a team and about 190 possessions a game.
EVENTS_PER_POSSESSION = 2.45
P_VIOLATION = 0.012
P_TURNOVER = 0.135
P_NON_SHOOTING_FOUL = 0.115
P_SHOOTING_FOUL = 0.085
P_AND_ONE = 0.22
P_MAKE_TWO = 0.485
P_MAKE_THREE = 0.35
P_FREE_THROW = 0.76
P_OFFENSIVE_REBOUND = 0.22
P_TEAM_REBOUND = 0.06
P_BLOCK_TWO = 0.12
P_BLOCK_THREE = 0.02
P_ASSIST_TWO = 0.52
P_ASSIST_THREE = 0.82
P_STEAL = 0.5
P_TEAM_TURNOVER = 0.06
P_STOPPAGE = 0.16
P_TIMEOUT_IN_STOPPAGE = 0.45
STRENGTH_EDGE = 0.012
HOME_COURT_EDGE = 0.3
BONUS_TEAM_FOULS = 5
TIMEOUTS_PER_TEAM = 7
SHOT_ATTEMPTS_PER_POSSESSION = 3

# Every step of play checks that it fits in MAX_EVENTS together with what the game still owes (see
# _GameSimulator._begin_period): a shot attempt is at most five events (foul, three free throws,
# rebound), a stoppage at most a timeout and three substitutions.
MAX_ATTEMPT_EVENTS = 5
MAX_STOPPAGE_EVENTS = 4
TIE_BREAK_EVENTS = 3
OVERTIME_MIN_ROOM = 3 + 16  # period_end, period_start and jump ball, then some play
OVERTIME_EVENTS = 48
# Regulation aims at an event count in this range, low enough that a tied game nearly always has
# room for an overtime; overtimes bring games up to MAX_EVENTS.
REGULATION_TARGET_EVENTS = (MIN_EVENTS + 5, MAX_EVENTS - 28)
MAX_POSSESSION_TENTHS = 350
MIN_POSSESSION_TENTHS = 40

TWO_MADE = "2,false"
THREE_MADE = "3,true"
NO_POINTS = "0,false"
NO_POINTS_THREE = "0,true"
ONE_POINT = "1,false"


def three_point_rate(season: int) -> float:
    """Share of field-goal attempts from three: about 16 % in the late 1990s, rising since."""
    return min(0.42, max(0.15, 0.16 + 0.0075 * (season - 1997)))


@cache
def _clock_texts() -> tuple[str, ...]:
    """`MM:SS.s` for every tenth of a second of a period."""
    return tuple(f"{tenths // 600:02d}:{tenths // 10 % 60:02d}.{tenths % 10}" for tenths in range(PERIOD_TENTHS + 1))


@cache
def _second_texts() -> tuple[str, ...]:
    """`HH:MM:SS` for every second of a day."""
    return tuple(f"{second // 3600:02d}:{second // 60 % 60:02d}:{second % 60:02d}" for second in range(86_400))


@cache
def _millisecond_texts() -> tuple[str, ...]:
    return tuple(f"{ms:03d}" for ms in range(1000))


class _Side:
    """One team during one game: the five on the floor, the bench, score, fouls and timeouts."""

    __slots__ = (
        "bench",
        "label",
        "labels",
        "on_floor",
        "pass_cum",
        "points",
        "random",
        "rebound_cum",
        "team_fouls",
        "three_cut",
        "timeouts",
        "two_cut",
        "usage_cum",
    )

    def __init__(self, team_id: int, roster: Sequence[_Player], rng: random.Random, edge: float) -> None:
        ordered = sorted(roster, key=lambda player: -player.minutes)
        self.label = str(team_id)
        self.on_floor = ordered[:5]
        self.bench = ordered[5:]
        self.random = rng.random
        # One roll decides an attempt: below P_SHOOTING_FOUL it is fouled, below the cut it is made.
        self.two_cut = P_SHOOTING_FOUL + (1 - P_SHOOTING_FOUL) * (P_MAKE_TWO + STRENGTH_EDGE * edge)
        self.three_cut = P_SHOOTING_FOUL + (1 - P_SHOOTING_FOUL) * (P_MAKE_THREE + STRENGTH_EDGE * edge)
        self.points = 0
        self.team_fouls = 0
        self.timeouts = 0
        self.labels: list[str] = []
        self.usage_cum: list[float] = []
        self.rebound_cum: list[float] = []
        self.pass_cum: list[float] = []
        self._refresh()

    def _refresh(self) -> None:
        on_floor = self.on_floor
        self.labels = [player.label for player in on_floor]
        self.usage_cum = list(accumulate([player.usage for player in on_floor]))
        self.rebound_cum = list(accumulate([player.rebounding for player in on_floor]))
        self.pass_cum = list(accumulate([player.playmaking for player in on_floor]))

    def _weighted(self, cumulative: list[float]) -> int:
        """An index drawn in proportion to the weights whose running sums are `cumulative`."""
        last = len(cumulative) - 1  # also the bisect bound: a product rounded up to the total stays in range
        return bisect_right(cumulative, self.random() * cumulative[last], 0, last)

    def shooter(self) -> str:
        return self.labels[self._weighted(self.usage_cum)]

    def rebounder(self) -> str:
        return self.labels[self._weighted(self.rebound_cum)]

    def anyone(self) -> str:
        return self.labels[int(self.random() * 5)]

    def passer_to(self, shooter: str) -> str:
        index = self._weighted(self.pass_cum)
        if self.labels[index] == shooter:
            index = (index + 1) % 5
        return self.labels[index]

    def tallest(self) -> str:
        """Who jumps at center: the best rebounder on the floor."""
        return max(self.on_floor, key=lambda player: player.rebounding).label

    def substitute(self) -> tuple[str, str] | None:
        """Sends a bench player in (by playing time) for one who needs a rest (the less he plays, the
        likelier); returns the (entering, leaving) labels."""
        if not self.bench:
            return None
        leaving = self._weighted(list(accumulate([1.0 / player.minutes for player in self.on_floor])))
        entering = self._weighted(list(accumulate([player.minutes for player in self.bench])))
        out_player, in_player = self.on_floor[leaving], self.bench[entering]
        self.on_floor[leaving] = in_player
        self.bench[entering] = out_player
        self._refresh()
        return in_player.label, out_player.label


class _GameSimulator:
    """Plays one game possession by possession and formats its events as CSV lines.

    The number of possessions adapts to an event budget drawn per game, so that every game has
    between MIN_EVENTS and MAX_EVENTS events without truncating play: possessions run longer when
    the game is busy, shorter when it is quiet.
    """

    __slots__ = (
        "away",
        "clock",
        "clock_texts",
        "count",
        "day_prefix",
        "game_text",
        "home",
        "later_markers",
        "later_tenths",
        "limit",
        "lines",
        "ms_texts",
        "next_day_prefix",
        "period",
        "period_end_wall",
        "period_start_ms",
        "period_tenths",
        "period_text",
        "possession_end",
        "possession_span",
        "random",
        "second_texts",
        "target",
        "three_rate",
        "tip_ms_of_day",
        "tip_winner",
    )

    def __init__(self, game: ScheduledGame, home: _Side, away: _Side, rng: random.Random) -> None:
        self.home = home
        self.away = away
        self.random = rng.random
        self.three_rate = three_point_rate(game.season)
        self.target = rng.randint(*REGULATION_TARGET_EVENTS)
        self.lines: list[str] = []
        self.count = 0
        self.period = 0
        self.period_text = ""
        self.period_tenths = PERIOD_TENTHS
        self.later_tenths = 0
        self.later_markers = 0
        self.limit = 0
        self.clock = 0
        self.possession_end = 0
        self.possession_span = 0
        self.game_text = f"{game.game_id},"
        tip_day = datetime.combine(game.tipoff.date(), time(), tzinfo=UTC)
        self.tip_ms_of_day = (game.tipoff - tip_day) // timedelta(milliseconds=1)
        self.day_prefix = f"{tip_day:%Y-%m-%d}T"
        self.next_day_prefix = f"{tip_day + timedelta(days=1):%Y-%m-%d}T"
        self.period_start_ms = 0
        self.period_end_wall = 0
        self.tip_winner = home
        self.clock_texts = _clock_texts()
        self.second_texts = _second_texts()
        self.ms_texts = _millisecond_texts()

    # -- output ----------------------------------------------------------------------------

    def emit(self, event_type: str, team: str, player: str, secondary: str, tail: str) -> None:
        count = self.count + 1
        self.count = count
        clock = self.clock
        wall = self.period_end_wall - clock * WALL_MS_PER_TENTH + count
        prefix = self.day_prefix
        if wall >= DAY_MS:
            prefix = self.next_day_prefix
            wall -= DAY_MS
        second, ms = divmod(wall, 1000)
        self.lines.append(
            f"{self.game_text}{count}{self.period_text}{self.clock_texts[clock]},"
            f"{prefix}{self.second_texts[second]}.{self.ms_texts[ms]}+00:00,"
            f"{event_type},{team},{player},{secondary},{tail}\n"
        )

    # -- game flow -------------------------------------------------------------------------

    def play(self) -> None:
        for period in count(1):
            offense = self._begin_period(period)
            while self.clock > 0:
                offense = self._possession(offense, self._possession_end())
                if self.clock > 0 and self.random() < P_STOPPAGE:
                    self._stoppage()
            if period >= 4 and self.home.points == self.away.points and not self._fits(OVERTIME_MIN_ROOM):
                self._break_tie()
            final = period >= 4 and self.home.points != self.away.points
            if final:
                self._top_up()
            self.emit("period_end", "", "", "", NO_POINTS)
            if final:
                return

    def _begin_period(self, period: int) -> _Side:
        if period > 1:
            self.period_start_ms += self.period_tenths * WALL_MS_PER_TENTH
            self.period_start_ms += HALFTIME_MS if period == 3 else INTERMISSION_MS
        self.period = period
        self.period_text = f",{period},"
        self.period_tenths = PERIOD_TENTHS if period <= 4 else OVERTIME_TENTHS
        later_periods = max(0, 4 - period)
        self.later_tenths = later_periods * PERIOD_TENTHS
        self.later_markers = 1 + 2 * later_periods  # this period's end, later periods' start and end
        # Owed at any time: this period's end, a possible tie-breaking trip to the line and, for each
        # regulation period to come, its start, one possession and its end. Two more are kept back:
        # a turnover that may end the current possession and a one-event closing possession.
        self.limit = MAX_EVENTS - 2 - (1 + TIE_BREAK_EVENTS + 3 * later_periods)
        self.clock = self.period_tenths
        self.period_end_wall = self.tip_ms_of_day + self.period_start_ms + self.period_tenths * WALL_MS_PER_TENTH
        self.home.team_fouls = self.away.team_fouls = 0
        self.emit("period_start", "", "", "", NO_POINTS)
        if period > 4:
            self.target = min(self.count + OVERTIME_EVENTS, self.limit)
        if period == 1 or period > 4:
            return self._jump_ball(period)
        if self._fits(MAX_STOPPAGE_EVENTS):
            self._substitutions(int(self.random() * 3))
        # Alternating possession: the team that lost the opening tip starts periods 2 and 3.
        winner, loser = self.tip_winner, self._opponent(self.tip_winner)
        return winner if period == 4 else loser

    def _jump_ball(self, period: int) -> _Side:
        self.emit("jump_ball", self.home.label, self.home.tallest(), "", NO_POINTS)
        winner = self.home if self.random() < 0.5 else self.away
        if period == 1:
            self.tip_winner = winner
        return winner

    def _opponent(self, side: _Side) -> _Side:
        return self.away if side is self.home else self.home

    def _fits(self, events: int) -> bool:
        """Whether `events` more still leave room for everything the game owes (see `limit`).

        Play that does not fit gives way to a one-event closing possession, so no game exceeds
        MAX_EVENTS.
        """
        return self.count + events <= self.limit

    def _possession_end(self) -> int:
        """Game clock at which the next possession ends, paced by the remaining event budget."""
        clock = self.clock
        if self.count + MAX_ATTEMPT_EVENTS > self.limit:
            return 0
        budget = max(1, self.target - self.count - self.later_markers)
        duration = int((clock + self.later_tenths) * EVENTS_PER_POSSESSION / budget * (0.6 + 0.8 * self.random()))
        duration = min(duration, MAX_POSSESSION_TENTHS)
        end = clock - (duration if duration > MIN_POSSESSION_TENTHS else MIN_POSSESSION_TENTHS)
        return end if end >= MIN_POSSESSION_TENTHS else 0

    # -- one possession --------------------------------------------------------------------

    def _at(self, fraction: float) -> None:
        """Moves the clock to `fraction` of the way through the current possession."""
        moment = self.possession_end + int(self.possession_span * (1.0 - fraction))
        self.clock = min(self.clock, moment)

    def _possession(self, offense: _Side, end: int) -> _Side:
        """Plays one possession of `offense` until the ball changes hands; returns the team that gets it."""
        defense = self._opponent(offense)
        self.possession_end = end
        self.possession_span = self.clock - end
        if not self._fits(MAX_ATTEMPT_EVENTS):
            return self._closing_possession(offense, defense)
        if self.random() < P_VIOLATION and self._fits(1):
            self._at(0.3)
            self.emit("violation", defense.label, defense.anyone(), "", NO_POINTS)  # kicked ball
        roll = self.random()
        if roll < P_TURNOVER:
            self._at(1.0)
            self._turnover(offense, defense)
            return defense
        if roll < P_TURNOVER + P_NON_SHOOTING_FOUL and self._fits(4):
            self._at(0.45)
            self.emit("foul", defense.label, defense.anyone(), "", NO_POINTS)
            defense.team_fouls += 1
            if defense.team_fouls >= BONUS_TEAM_FOULS:
                keeps = self._free_throws(offense, defense, offense.shooter(), 2)
                return self._shots(offense, defense, SHOT_ATTEMPTS_PER_POSSESSION - 1) if keeps else defense
        return self._shots(offense, defense, SHOT_ATTEMPTS_PER_POSSESSION)

    def _closing_possession(self, offense: _Side, defense: _Side) -> _Side:
        """A one-event possession, used when the event budget is nearly spent."""
        self.clock = self.possession_end
        if self.random() < 0.5:
            offense.points += 2
            self.emit("fg_made", offense.label, offense.shooter(), "", TWO_MADE)
        else:
            self._turnover(offense, defense)
        return defense

    def _turnover(self, offense: _Side, defense: _Side) -> None:
        if self.random() < P_TEAM_TURNOVER:  # shot-clock violation and the like
            self.emit("turnover", offense.label, "", "", NO_POINTS)
            return
        stealer = defense.anyone() if self.random() < P_STEAL else ""
        self.emit("turnover", offense.label, offense.shooter(), stealer, NO_POINTS)

    def _shots(self, offense: _Side, defense: _Side, attempts: int) -> _Side:
        for attempt in range(attempts):
            if self.count + MAX_ATTEMPT_EVENTS > self.limit:
                break
            shooter = offense.shooter()
            three = self.random() < self.three_rate
            roll = self.random()
            if roll < P_SHOOTING_FOUL:
                self._at(1.0)
                if not self._fouled_shot(offense, defense, shooter, three):
                    return defense
                continue
            if roll < (offense.three_cut if three else offense.two_cut):
                self._at(1.0)
                self._made_shot(offense, shooter, three)
                return defense
            self._at(0.8 + 0.05 * attempt)
            self._missed_shot(offense, defense, shooter, three)
            self._at(0.85 + 0.05 * attempt)
            if not self._rebound(offense, defense):
                return defense
        self._at(1.0)
        self._turnover(offense, defense)
        return defense

    def _made_shot(self, offense: _Side, shooter: str, three: bool) -> None:
        assisted = self.random() < (P_ASSIST_THREE if three else P_ASSIST_TWO)
        assister = offense.passer_to(shooter) if assisted else ""
        offense.points += 3 if three else 2
        self.emit("fg_made", offense.label, shooter, assister, THREE_MADE if three else TWO_MADE)

    def _missed_shot(self, offense: _Side, defense: _Side, shooter: str, three: bool) -> None:
        blocked = self.random() < (P_BLOCK_THREE if three else P_BLOCK_TWO)
        blocker = defense.anyone() if blocked else ""
        self.emit("fg_missed", offense.label, shooter, blocker, NO_POINTS_THREE if three else NO_POINTS)

    def _fouled_shot(self, offense: _Side, defense: _Side, shooter: str, three: bool) -> bool:
        """A shooting foul: and-one or two/three free throws. True when the offense keeps the ball."""
        defense.team_fouls += 1
        if self.random() < P_AND_ONE:
            self._made_shot(offense, shooter, three)
            self.emit("foul", defense.label, defense.anyone(), "", NO_POINTS)
            return self._free_throws(offense, defense, shooter, 1)
        self.emit("foul", defense.label, defense.anyone(), "", NO_POINTS)
        return self._free_throws(offense, defense, shooter, 3 if three else 2)

    def _free_throws(self, offense: _Side, defense: _Side, shooter: str, attempts: int) -> bool:
        """A trip to the line; a missed last free throw is rebounded. True when the offense keeps the ball."""
        made = False
        for _ in range(attempts):
            made = self.random() < P_FREE_THROW
            if made:
                offense.points += 1
                self.emit("ft_made", offense.label, shooter, "", ONE_POINT)
            else:
                self.emit("ft_missed", offense.label, shooter, "", NO_POINTS)
        return not made and self._rebound(offense, defense)

    def _rebound(self, offense: _Side, defense: _Side) -> bool:
        """Rebounds a miss; True for an offensive rebound. Some go out of bounds: a team rebound."""
        roll = self.random()
        if roll < P_TEAM_REBOUND:
            if self.random() < 0.3:
                self.emit("rebound_off", offense.label, "", "", NO_POINTS)
                return True
            self.emit("rebound_def", defense.label, "", "", NO_POINTS)
            return False
        if roll < P_TEAM_REBOUND + P_OFFENSIVE_REBOUND:
            self.emit("rebound_off", offense.label, offense.rebounder(), "", NO_POINTS)
            return True
        self.emit("rebound_def", defense.label, defense.rebounder(), "", NO_POINTS)
        return False

    # -- stoppages -------------------------------------------------------------------------

    def _stoppage(self) -> None:
        """A dead ball: a timeout and/or substitutions."""
        if not self._fits(MAX_STOPPAGE_EVENTS):
            return
        if self.random() < P_TIMEOUT_IN_STOPPAGE:
            side = self.home if self.random() < 0.5 else self.away
            if side.timeouts < TIMEOUTS_PER_TEAM:
                side.timeouts += 1
                self.emit("timeout", side.label, "", "", NO_POINTS)
        self._substitutions(1 + int(self.random() * 3))

    def _substitutions(self, how_many: int) -> None:
        for _ in range(how_many):
            side = self.home if self.random() < 0.5 else self.away
            change = side.substitute()
            if change is not None:
                self.emit("substitution", side.label, change[0], change[1], NO_POINTS)

    def _top_up(self) -> None:
        """Substitutions at the final buzzer if the game fell short of MIN_EVENTS (rare)."""
        while self.count + 1 < MIN_EVENTS:
            self._substitutions(1)

    def _break_tie(self) -> None:
        """No room left for another overtime: a foul at the buzzer and a made free throw decide it."""
        offense = self.home if self.random() < 0.5 else self.away
        defense = self._opponent(offense)
        shooter = offense.shooter()
        self.emit("foul", defense.label, defense.anyone(), "", NO_POINTS)
        offense.points += 1
        self.emit("ft_made", offense.label, shooter, "", ONE_POINT)
        if self.random() < P_FREE_THROW:
            offense.points += 1
            self.emit("ft_made", offense.label, shooter, "", ONE_POINT)
        else:
            self.emit("ft_missed", offense.label, shooter, "", NO_POINTS)


@dataclass(frozen=True)
class _GameResult:
    home_points: int
    away_points: int
    events: int
    text: str
    """The game's events as CSV lines."""


def _simulate_game(
    game: ScheduledGame,
    home_roster: Sequence[_Player],
    away_roster: Sequence[_Player],
    strength_edge: float,
    seed: int,
) -> _GameResult:
    """Plays one game from its own random stream (seed and game id). `strength_edge` favours home."""
    rng = random.Random(f"{seed}:{game.game_id}")
    home = _Side(game.home.team_id, home_roster, rng, strength_edge / 2)
    away = _Side(game.away.team_id, away_roster, rng, -strength_edge / 2)
    simulator = _GameSimulator(game, home, away, rng)
    simulator.play()
    return _GameResult(home.points, away.points, simulator.count, "".join(simulator.lines))


# ---------------------------------------------------------------------------------------------
# Output files and the season loop
# ---------------------------------------------------------------------------------------------


# Level 1 compresses event text about 4x faster than the default 6 (~160 vs ~40 MB/s here) for
# files about a third larger (ratio ~4.7 instead of ~6.3): generation speed matters more.
GZIP_LEVEL = 1


@dataclass
class _Output:
    teams: TextIO
    players: TextIO
    games: TextIO
    events: TextIO
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(("teams", "players", "games", "events"), 0))


@contextmanager
def _open_output(out_dir: Path, compress: bool) -> Iterator[_Output]:
    out_dir.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:

        def open_csv(name: str, header: str) -> TextIO:
            path = out_dir / (f"{name}.csv.gz" if compress else f"{name}.csv")
            raw = stack.enter_context(path.open("wb"))
            binary: io.BufferedWriter | gzip.GzipFile = raw
            if compress:  # mtime=0 and a fixed name keep the compressed bytes reproducible
                binary = stack.enter_context(gzip.GzipFile(f"{name}.csv", "wb", GZIP_LEVEL, raw, mtime=0))
            text = stack.enter_context(io.TextIOWrapper(binary, encoding="utf-8", newline=""))
            text.write(header + "\n")
            return text

        yield _Output(
            open_csv("teams", TEAMS_HEADER),
            open_csv("players", PLAYERS_HEADER),
            open_csv("games", GAMES_HEADER),
            open_csv("events", EVENTS_HEADER),
        )


class _LeagueWriter:
    """Runs the seasons and streams every game to the output as soon as it is played."""

    def __init__(
        self, output: _Output, seed: int, total_games: int, progress: Callable[[int, int], None] | None
    ) -> None:
        self.output = output
        self.seed = seed
        self.rng = random.Random(f"{seed}:schedule")
        self.players_csv = csv.writer(output.players, lineterminator="\n")
        self.league = _League(seed, self._write_player)
        self.total_games = total_games
        self.progress = progress

    def _write_player(self, player: _Player) -> None:
        self.players_csv.writerow((player.player_id, player.name))
        self.output.counts["players"] += 1

    def write_teams(self, seasons: range) -> None:
        teams_csv = csv.writer(self.output.teams, lineterminator="\n")
        for franchise in FRANCHISES:
            if any(franchise.plays_in(season) for season in seasons):
                teams_csv.writerow((franchise.team_id, franchise.abbreviation, franchise.name))
                self.output.counts["teams"] += 1

    def play_season(self, season: int) -> None:
        self.league.start_season(season)
        wins = {franchise.team_id: 0 for franchise in FRANCHISES if franchise.plays_in(season)}
        for game in regular_season_schedule(self.rng, season):
            result = self.play(game)
            wins[(game.home if result.home_points > result.away_points else game.away).team_id] += 1
            if season == KOBE_FAREWELL.season and game.game_id == regular_game_id(season, KOBE_FAREWELL.number):
                self.league.retire_now(KOBE_FAREWELL.farewell_player)
        self._play_playoffs(season, wins)

    def play(self, game: ScheduledGame) -> _GameResult:
        league = self.league
        edge = league.strength[game.home.team_id] - league.strength[game.away.team_id] + HOME_COURT_EDGE
        home_roster, away_roster = league.roster(game.home.team_id), league.roster(game.away.team_id)
        result = _simulate_game(game, home_roster, away_roster, edge, self.seed)
        output = self.output
        output.games.write(
            f"{game.game_id},{season_label(game.season)},{game.season_type},{game.home.team_id},"
            f"{game.away.team_id},{format_instant(game.tipoff)}\n"
        )
        output.events.write(result.text)
        output.counts["games"] += 1
        output.counts["events"] += result.events
        if self.progress is not None and output.counts["games"] % 100 == 0:
            self.progress(output.counts["games"], self.total_games)
        return result

    def _play_playoffs(self, season: int, wins: dict[int, int]) -> None:
        order = {team_id: self.rng.random() for team_id in wins}  # breaks ties in the standings
        by_record = sorted(wins, key=lambda team_id: (-wins[team_id], order[team_id]))
        rank = {team_id: index for index, team_id in enumerate(by_record)}
        franchise = {f.team_id: f for f in FRANCHISES}
        bracket: list[Franchise] = []
        for conference in ("East", "West"):
            seeds = [franchise[t] for t in by_record if franchise[t].conference_in(season) == conference][:8]
            bracket += [seeds[i] for i in (0, 7, 3, 4, 2, 5, 1, 6)]  # 1-8, 4-5, 3-6, 2-7
        first_day = regular_season_window(season)[1] + timedelta(days=3)
        for round_number in range(1, 5):
            series = [(bracket[i], bracket[i + 1]) for i in range(0, len(bracket), 2)]
            series = [(a, b) if rank[a.team_id] < rank[b.team_id] else (b, a) for a, b in series]
            bracket = self._play_round(season, round_number, series, first_day)

    def _play_round(
        self, season: int, round_number: int, series: list[tuple[Franchise, Franchise]], first_day: date
    ) -> list[Franchise]:
        """Plays a round game by game across its series (chronologically); returns the winners in order."""
        won = [[0, 0] for _ in series]
        for game_number in range(1, 8):
            for index, (higher, lower) in enumerate(series):
                if max(won[index]) == 4:
                    continue
                hosts = _higher_seed_hosts(season, round_number, game_number)
                home, away = (higher, lower) if hosts else (lower, higher)
                day = first_day + timedelta(days=playoff_game_day(round_number, index, game_number))
                game_id = playoff_game_id(season, round_number, index, game_number)
                tipoff = _tipoff(day, _home_tipoff_minutes(home, self.rng))
                result = self.play(ScheduledGame(game_id, season, PLAYOFFS, home, away, tipoff))
                home_won = result.home_points > result.away_points
                won[index][0 if home_won == hosts else 1] += 1
        return [higher if score[0] == 4 else lower for (higher, lower), score in zip(series, won, strict=True)]


def _validate(seasons: int, first_season: int) -> None:
    if not 1 <= seasons <= MAX_SEASONS:
        raise ValueError(f"seasons must be between 1 and {MAX_SEASONS}, got {seasons}")
    if first_season < FIRST_SUPPORTED_SEASON:
        raise ValueError(f"first_season must be {FIRST_SUPPORTED_SEASON} or later, got {first_season}")


def generate_league(
    out_dir: Path,
    *,
    seasons: int,
    first_season: int = FIRST_SUPPORTED_SEASON,
    seed: int = 1,
    compress: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> GenerationSummary:
    """Writes `seasons` seasons from `first_season` (1996 = 1996-97) into `out_dir` as canonical CSV.

    `progress(done_games, total_games)` is called every 100 games and at the end; until the end,
    `total_games` counts every playoff series as seven games (an upper bound).
    """
    _validate(seasons, first_season)
    years = range(first_season, first_season + seasons)
    total_games = sum(games_per_team(y) * sum(f.plays_in(y) for f in FRANCHISES) // 2 + 15 * 7 for y in years)
    with _open_output(Path(out_dir), compress) as output:
        writer = _LeagueWriter(output, seed, total_games, progress)
        writer.write_teams(years)
        for season in years:
            writer.play_season(season)
        counts = output.counts
    if progress is not None:
        progress(counts["games"], counts["games"])
    return GenerationSummary(counts["teams"], counts["players"], counts["games"], counts["events"], seasons)


COMPLETE_MARKER = "complete.json"


@dataclass(frozen=True)
class Generation:
    summary: GenerationSummary
    seconds: float
    """How long the generation took (when reused: the original run's time)."""
    reused: bool


def generate_once(
    out_dir: Path,
    *,
    seasons: int,
    first_season: int = FIRST_SUPPORTED_SEASON,
    seed: int = 1,
    progress: Callable[[int, int], None] | None = None,
) -> Generation:
    """`generate_league`, unless `out_dir` already holds a complete generation with the same arguments.

    A marker file written last records the arguments, the summary and the time taken; it is removed
    before generating again, so an interrupted run is never mistaken for a complete one.
    """
    marker = out_dir / COMPLETE_MARKER
    arguments = {"seasons": seasons, "first_season": first_season, "seed": seed}
    if marker.is_file():
        recorded = json.loads(marker.read_text())
        if recorded.get("arguments") == arguments:
            return Generation(GenerationSummary(**recorded["summary"]), float(recorded["seconds"]), reused=True)
        marker.unlink()
    started = perf_counter()
    summary = generate_league(out_dir, seasons=seasons, first_season=first_season, seed=seed, progress=progress)
    seconds = perf_counter() - started
    marker.write_text(json.dumps({"arguments": arguments, "summary": asdict(summary), "seconds": seconds}))
    return Generation(summary, seconds, reused=False)
