"""The synthetic league generator: schedule, playoffs, rosters, play-by-play rules, timing, determinism.

Generated data sets are shared by the tests of this module: the full 2015-16 season (Kobe Bryant's
farewell; 1,230 regular-season games plus the playoffs) and short leagues from 2003-04 whose
regular seasons are cut to 6 games a team (playoffs unchanged), so that several can be generated
in a few seconds. Row-level rules are checked on a short season: the game simulator is the same.
"""

from __future__ import annotations

import csv
import gzip
import io
import itertools
import random
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from temporaldb import generate
from temporaldb.generate import (
    FRANCHISES,
    KOBE_BRYANT_ID,
    LAKERS,
    GenerationSummary,
    eastern_utc_offset_hours,
    generate_league,
    league_rosters,
    regular_season_schedule,
)

EASTERN = ZoneInfo("America/New_York")
FILES = ("teams", "players", "games", "events")
EVENT_TYPES = {
    "fg_made", "fg_missed", "ft_made", "ft_missed", "rebound_off", "rebound_def", "turnover", "foul",
    "substitution", "timeout", "jump_ball", "period_start", "period_end", "violation",
}  # fmt: skip
PERIOD_MARKERS = {"period_start", "period_end"}
TEAM_EVENTS = {"rebound_off", "rebound_def", "turnover", "timeout"}  # may have no player
CONFERENCE = {str(franchise.team_id): franchise.conference for franchise in FRANCHISES}
KOBE = str(KOBE_BRYANT_ID)
LAL = str(LAKERS)
SHORT_SEASON_GAMES = 6

# Column positions in events.csv.
GAME, NUM, PERIOD, CLOCK, WALL, TYPE, TEAM, PLAYER, SECONDARY, POINTS, THREE = range(11)


# ---------------------------------------------------------------------------------------------
# Generating and reading
# ---------------------------------------------------------------------------------------------


def read_text(directory: Path, name: str) -> str:
    plain = directory / f"{name}.csv"
    if plain.exists():
        return plain.read_text(encoding="utf-8")
    return gzip.decompress((directory / f"{name}.csv.gz").read_bytes()).decode("utf-8")


def read_table(directory: Path, name: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(read_text(directory, name))))


def events_by_game(directory: Path) -> Iterator[tuple[str, list[list[str]]]]:
    """Streams events.csv one game at a time (a game's events are contiguous).

    Event rows hold only numbers, enums and timestamps, never a quoted field, so a plain split
    reads them, much faster than the csv module over 600,000 rows.
    """
    with (directory / "events.csv").open(encoding="utf-8", newline="") as events:
        assert next(events) == generate.EVENTS_HEADER + "\n"
        rows = (line.rstrip("\n").split(",") for line in events)
        for game_id, game_rows in itertools.groupby(rows, key=lambda row: row[GAME]):
            yield game_id, list(game_rows)


def instant(text: str) -> datetime:
    """Parses a timestamp after checking its exact shape: YYYY-MM-DDTHH:MM:SS.mmm+00:00."""
    assert (len(text), text[10], text[19], text[23:]) == (29, "T", ".", "+00:00"), text
    return datetime.fromisoformat(text)


@dataclass
class GameFacts:
    """What one streaming pass over events.csv learns about a game."""

    events: int
    periods: int
    first_wall: datetime
    last_wall: datetime
    points: Counter[str] = field(default_factory=Counter)
    """By team id and by player id."""
    players: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    """Players seen, by team id."""


def collect_facts(directory: Path) -> dict[str, GameFacts]:
    facts: dict[str, GameFacts] = {}
    for game_id, rows in events_by_game(directory):
        game = GameFacts(len(rows), int(rows[-1][PERIOD]), instant(rows[0][WALL]), instant(rows[-1][WALL]))
        for row in rows:
            if row[POINTS] != "0":
                game.points[row[TEAM]] += int(row[POINTS])
                game.points[row[PLAYER]] += int(row[POINTS])
            if row[PLAYER]:
                game.players[row[TEAM]].add(row[PLAYER])
        facts[game_id] = game
    return facts


@dataclass
class Generated:
    directory: Path
    summary: GenerationSummary
    games: list[dict[str, str]]
    facts: dict[str, GameFacts]

    def of_type(self, season_type: str) -> list[dict[str, str]]:
        return [game for game in self.games if game["season_type"] == season_type]

    def winner(self, game: dict[str, str]) -> str:
        points = self.facts[game["game_id"]].points
        home, away = game["home_team_id"], game["away_team_id"]
        return home if points[home] > points[away] else away


def load(directory: Path, summary: GenerationSummary) -> Generated:
    return Generated(directory, summary, read_table(directory, "games"), collect_facts(directory))


def generate_short(
    directory: Path,
    *,
    seed: int,
    seasons: int = 1,
    compress: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> GenerationSummary:
    """From 2003-04, with 6 regular-season games a team: the full machinery, a fraction of the games."""
    with pytest.MonkeyPatch.context() as patch:
        for season in range(2003, 2003 + seasons):
            patch.setitem(generate.LOCKOUT_GAMES_PER_TEAM, season, SHORT_SEASON_GAMES)
        return generate_league(
            directory, seasons=seasons, first_season=2003, seed=seed, compress=compress, progress=progress
        )


@pytest.fixture(scope="module")
def season_2015(tmp_path_factory: pytest.TempPathFactory) -> Generated:
    directory = tmp_path_factory.mktemp("season_2015")
    return load(directory, generate_league(directory, seasons=1, first_season=2015, seed=11))


@pytest.fixture(scope="module")
def short_season(tmp_path_factory: pytest.TempPathFactory) -> Generated:
    """2003-04 with 6 games a team, seed 3."""
    directory = tmp_path_factory.mktemp("short_season")
    return load(directory, generate_short(directory, seed=3))


@pytest.fixture(scope="module")
def two_short_seasons(tmp_path_factory: pytest.TempPathFactory) -> Generated:
    """2003-04 and 2004-05 with 6 games a team, seed 5."""
    directory = tmp_path_factory.mktemp("two_short_seasons")
    return load(directory, generate_short(directory, seed=5, seasons=2))


# ---------------------------------------------------------------------------------------------
# Schedule and calendar
# ---------------------------------------------------------------------------------------------


def test_a_30_team_season_has_1230_games_82_per_team_41_at_home(season_2015: Generated) -> None:
    regular = season_2015.of_type("regular")
    home = Counter(game["home_team_id"] for game in regular)
    away = Counter(game["away_team_id"] for game in regular)
    assert len(regular) == 1230
    assert len(home) == 30
    assert set(home.values()) == {41}
    assert set(away.values()) == {41}
    assert {game["season"] for game in season_2015.games} == {"2015-16"}


@pytest.mark.parametrize(
    ("season", "teams", "games_each", "total"),
    [(1996, 29, 82, 1189), (1998, 29, 50, 725), (2003, 29, 82, 1189), (2004, 30, 82, 1230), (2011, 30, 66, 990)],
)
def test_regular_season_sizes(season: int, teams: int, games_each: int, total: int) -> None:
    schedule = regular_season_schedule(random.Random(season), season)
    played = Counter(team for game in schedule for team in (game.home.team_id, game.away.team_id))
    hosted = Counter(game.home.team_id for game in schedule)
    assert len(schedule) == total
    assert len(played) == teams
    assert set(played.values()) == {games_each}
    assert set(hosted.values()) == {games_each // 2}
    assert all(game.home != game.away for game in schedule)


def test_charlotte_sits_out_2002_to_2004_while_new_orleans_joins() -> None:
    def teams(season: int) -> set[str]:
        return {franchise.abbreviation for franchise in FRANCHISES if franchise.plays_in(season)}

    assert len(teams(1996)) == 29
    assert "CHA" in teams(2001)
    assert "NOP" not in teams(2001)
    assert "CHA" not in teams(2003)
    assert "NOP" in teams(2003)
    assert len(teams(2004)) == 30


def test_game_ids_follow_the_nba_scheme(season_2015: Generated) -> None:
    regular = [int(game["game_id"]) for game in season_2015.of_type("regular")]
    assert regular == list(range(21500001, 21501231))  # written in id order
    for game in season_2015.of_type("playoffs"):
        digits = game["game_id"]
        assert (len(digits), digits[:5]) == (8, "41500"), digits
        round_number, series, number = int(digits[5]), int(digits[6]), int(digits[7])
        assert 1 <= round_number <= 4
        assert 0 <= series < 2 ** (4 - round_number)
        assert 1 <= number <= 7
    assert len({game["game_id"] for game in season_2015.games}) == len(season_2015.games)


def test_tipoffs_are_between_7_and_10_30_pm_eastern(season_2015: Generated) -> None:
    for game in season_2015.games:
        assert game["tipoff_at"].endswith(":00.000+00:00")
        local = instant(game["tipoff_at"]).astimezone(EASTERN)
        assert (19, 0) <= (local.hour, local.minute) <= (22, 30), game


def test_eastern_offset_follows_us_daylight_saving_rules() -> None:
    day = date(1996, 1, 1)
    while day < date(2031, 1, 1):
        offset = datetime(day.year, day.month, day.day, 20, tzinfo=EASTERN).utcoffset()
        assert offset is not None
        assert eastern_utc_offset_hours(day) == offset // timedelta(hours=1), day
        day += timedelta(days=1)


def test_season_calendar(season_2015: Generated) -> None:
    def eastern_days(season_type: str) -> list[date]:
        return sorted(instant(g["tipoff_at"]).astimezone(EASTERN).date() for g in season_2015.of_type(season_type))

    regular, playoffs = eastern_days("regular"), eastern_days("playoffs")
    assert date(2015, 10, 26) <= regular[0] <= date(2015, 11, 1)
    assert date(2016, 4, 13) <= regular[-1] <= date(2016, 4, 19)
    assert regular[-1] < playoffs[0] <= date(2016, 4, 22)
    assert date(2016, 6, 1) <= playoffs[-1] <= date(2016, 6, 30)


def test_no_team_plays_twice_a_day_or_two_games_at_once(season_2015: Generated) -> None:
    games_by_team: dict[str, list[tuple[datetime, datetime]]] = defaultdict(list)
    for game in season_2015.games:
        last_event = season_2015.facts[game["game_id"]].last_wall
        for team in (game["home_team_id"], game["away_team_id"]):
            games_by_team[team].append((instant(game["tipoff_at"]), last_event))
    for team, games in games_by_team.items():
        games.sort()
        days = [tipoff.astimezone(EASTERN).date() for tipoff, _ in games]
        assert len(set(days)) == len(days), team
        for (_, previous_end), (next_tipoff, _) in itertools.pairwise(games):
            assert previous_end < next_tipoff, team


def test_seasons_do_not_overlap(two_short_seasons: Generated) -> None:
    first = [game for game in two_short_seasons.games if game["season"] == "2003-04"]
    second = [game for game in two_short_seasons.games if game["season"] == "2004-05"]
    assert two_short_seasons.games == first + second  # written in season order
    end_of_first = max(two_short_seasons.facts[game["game_id"]].last_wall for game in first)
    assert end_of_first < min(instant(game["tipoff_at"]) for game in second)


def test_the_league_grows_to_30_teams_in_2004_05(two_short_seasons: Generated) -> None:
    teams_by_season: dict[str, set[str]] = defaultdict(set)
    for game in two_short_seasons.games:
        teams_by_season[game["season"]] |= {game["home_team_id"], game["away_team_id"]}
    assert len(teams_by_season["2003-04"]) == 29
    assert len(teams_by_season["2004-05"]) == 30
    assert {row["team_id"] for row in read_table(two_short_seasons.directory, "teams")} == set(CONFERENCE)


# ---------------------------------------------------------------------------------------------
# Playoffs
# ---------------------------------------------------------------------------------------------


def test_playoffs_are_four_rounds_of_best_of_seven_series(season_2015: Generated) -> None:
    series: dict[tuple[int, int], list[dict[str, str]]] = defaultdict(list)
    for game in season_2015.of_type("playoffs"):
        series[(int(game["game_id"][5]), int(game["game_id"][6]))].append(game)
    assert Counter(round_number for round_number, _ in series) == {1: 8, 2: 4, 3: 2, 4: 1}
    winners: dict[tuple[int, int], str] = {}
    for key, games in sorted(series.items()):
        assert len({frozenset((game["home_team_id"], game["away_team_id"])) for game in games}) == 1, key
        assert [int(game["game_id"][7]) for game in games] == list(range(1, len(games) + 1))
        assert 4 <= len(games) <= 7
        wins = Counter(season_2015.winner(game) for game in games)
        winners[key] = season_2015.winner(games[-1])
        assert wins[winners[key]] == 4  # the series ends as soon as a team has four wins
        assert sum(wins.values()) - 4 < 4
        round_number, index = key
        if round_number > 1:  # series i of a round is played by the winners of series 2i and 2i+1
            feeders = {winners[(round_number - 1, 2 * index)], winners[(round_number - 1, 2 * index + 1)]}
            assert {games[0]["home_team_id"], games[0]["away_team_id"]} == feeders


def test_the_playoff_field_is_the_top_eight_of_each_conference(season_2015: Generated) -> None:
    wins = Counter(season_2015.winner(game) for game in season_2015.of_type("regular"))
    first_round = [game for game in season_2015.of_type("playoffs") if game["game_id"][5] == "1"]
    field_teams = {team for game in first_round for team in (game["home_team_id"], game["away_team_id"])}
    assert len(field_teams) == 16
    for conference in ("East", "West"):
        qualified = [team for team in field_teams if CONFERENCE[team] == conference]
        others = [team for team, of in CONFERENCE.items() if of == conference and team not in field_teams]
        assert len(qualified) == 8
        assert min(wins[team] for team in qualified) >= max(wins[team] for team in others)


# ---------------------------------------------------------------------------------------------
# Play-by-play
# ---------------------------------------------------------------------------------------------


def test_every_game_has_450_to_500_events(season_2015: Generated, short_season: Generated) -> None:
    for generated in (season_2015, short_season):
        counts = [facts.events for facts in generated.facts.values()]
        assert len(counts) == len(generated.games) == generated.summary.games
        assert min(counts) >= 450
        assert max(counts) <= 500
        assert sum(counts) == generated.summary.events


EXTREME_PLAY = {
    # Endless possessions, fouls and stoppages, hardly any scoring: ties, overtimes, an exhausted budget.
    "busy": {
        "P_OFFENSIVE_REBOUND": 0.8,
        "P_SHOOTING_FOUL": 0.5,
        "P_NON_SHOOTING_FOUL": 0.4,
        "P_STOPPAGE": 0.95,
        "P_MAKE_TWO": 0.05,
        "P_MAKE_THREE": 0.02,
        "P_FREE_THROW": 0.3,
    },
    # One event per possession and no stoppages: the budget must be filled.
    "quiet": {
        "P_OFFENSIVE_REBOUND": 0.0,
        "P_TEAM_REBOUND": 0.0,
        "P_SHOOTING_FOUL": 0.0,
        "P_NON_SHOOTING_FOUL": 0.0,
        "P_VIOLATION": 0.0,
        "P_STOPPAGE": 0.0,
    },
}


@pytest.mark.parametrize("style", sorted(EXTREME_PLAY))
def test_the_event_budget_holds_under_extreme_play(style: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in EXTREME_PLAY[style].items():
        monkeypatch.setattr(generate, name, value)
    games = {}
    generate_short(tmp_path, seed=8)
    for game in read_table(tmp_path, "games"):
        games[game["game_id"]] = game
    decided_at_the_buzzer = 0
    for game_id, rows in events_by_game(tmp_path):
        assert 450 <= len(rows) <= 500, game_id
        assert [row[TYPE] for row in rows[:2]] == ["period_start", "jump_ball"]
        assert rows[-1][TYPE] == "period_end"
        home, away = games[game_id]["home_team_id"], games[game_id]["away_team_id"]
        points = Counter({home: 0, away: 0})
        for row in rows:
            points[row[TEAM]] += int(row[POINTS])
        assert points[home] != points[away]
        ending = [(row[TYPE], row[CLOCK]) for row in rows[-4:-1]]
        decided_at_the_buzzer += ending[:2] == [("foul", "00:00.0"), ("ft_made", "00:00.0")]
    if style == "busy":  # low scores and no room left for overtime: ties are settled at the line
        assert decided_at_the_buzzer > 0


def test_box_scores_are_plausible(season_2015: Generated) -> None:
    team_points: list[int] = []
    for game in season_2015.games:
        points = season_2015.facts[game["game_id"]].points
        home, away = points[game["home_team_id"]], points[game["away_team_id"]]
        assert home != away
        team_points += [home, away]
    assert 95 <= sum(team_points) / len(team_points) <= 115
    overtime_games = sum(facts.periods > 4 for facts in season_2015.facts.values())
    assert 0 < overtime_games < len(season_2015.games) * 0.1


def test_periods_clock_and_event_numbers(short_season: Generated) -> None:
    for game_id, rows in events_by_game(short_season.directory):
        assert [int(row[NUM]) for row in rows] == list(range(1, len(rows) + 1)), game_id
        assert rows[1][TYPE] == "jump_ball"
        periods = [int(period) for period, _ in itertools.groupby(row[PERIOD] for row in rows)]
        assert periods == list(range(1, len(periods) + 1))
        assert len(periods) >= 4
        for period, period_rows in itertools.groupby(rows, key=lambda row: int(row[PERIOD])):
            events = list(period_rows)
            length = "12:00.0" if period <= 4 else "05:00.0"
            assert (events[0][TYPE], events[0][CLOCK]) == ("period_start", length), game_id
            assert (events[-1][TYPE], events[-1][CLOCK]) == ("period_end", "00:00.0"), game_id
            assert not PERIOD_MARKERS & {row[TYPE] for row in events[1:-1]}
            tenths = [int(row[CLOCK][:2]) * 600 + int(row[CLOCK][3:5]) * 10 + int(row[CLOCK][6]) for row in events]
            assert tenths == sorted(tenths, reverse=True), game_id


def team_of_players(directory: Path) -> dict[str, str]:
    """Player id -> the one team he plays for (in a single season)."""
    teams: dict[str, set[str]] = defaultdict(set)
    for _, rows in events_by_game(directory):
        for row in rows:
            if row[PLAYER]:
                teams[row[PLAYER]].add(row[TEAM])
    assert all(len(team) == 1 for team in teams.values())  # nobody changes team within a season
    return {player: team.pop() for player, team in teams.items()}


def row_problems(row: list[str], home: str, away: str, team_of: dict[str, str]) -> list[str]:
    """Every format rule a single event row breaks."""
    kind, team, player, secondary = row[TYPE], row[TEAM], row[PLAYER], row[SECONDARY]
    problems = []
    if kind not in EVENT_TYPES:
        problems.append("unknown type")
    if row[POINTS] != str({"fg_made": 3 if row[THREE] == "true" else 2, "ft_made": 1}.get(kind, 0)):
        problems.append("points")
    if row[THREE] not in {"true", "false"} or (row[THREE] == "true" and kind not in {"fg_made", "fg_missed"}):
        problems.append("is_three")
    if (team == "") != (kind in PERIOD_MARKERS) or team not in {home, away, ""}:
        problems.append("team_id")
    if player == "" and kind not in PERIOD_MARKERS | TEAM_EVENTS:
        problems.append("player missing")
    if player and (kind in PERIOD_MARKERS or kind == "timeout" or team_of[player] != team):
        problems.append("player not of the team")
    if kind == "jump_ball" and (team != home or secondary):
        problems.append("jump ball")
    if secondary:
        same_team = team_of[secondary] == team
        if kind not in {"fg_made", "fg_missed", "turnover", "substitution"}:
            problems.append("unexpected secondary")
        elif same_team != (kind in {"fg_made", "substitution"}) or secondary == player:
            problems.append("secondary on the wrong team")
    return problems


def test_every_event_row_follows_the_format_rules(short_season: Generated) -> None:
    team_of = team_of_players(short_season.directory)
    games = {game["game_id"]: game for game in short_season.games}
    seen: Counter[str] = Counter()
    for game_id, rows in events_by_game(short_season.directory):
        home, away = games[game_id]["home_team_id"], games[game_id]["away_team_id"]
        for row in rows:
            assert len(row) == 11
            problems = row_problems(row, home, away, team_of)
            assert not problems, (problems, row)
            seen[row[TYPE]] += 1
            seen[f"{row[TYPE]} with player"] += bool(row[PLAYER])
            seen[f"{row[TYPE]} with secondary"] += bool(row[SECONDARY])
    assert set(seen) >= EVENT_TYPES
    for kind in ("rebound_off", "rebound_def", "turnover"):  # some team rebounds and team turnovers
        assert 0 < seen[f"{kind} with player"] < seen[kind]
    for kind in ("fg_made", "turnover"):  # assists and steals are optional
        assert 0 < seen[f"{kind} with secondary"] < seen[kind]
    assert 0 < seen["fg_missed with secondary"] < seen["fg_missed"] / 5  # only some misses are blocked
    assert seen["substitution with secondary"] == seen["substitution"]


def test_misses_are_mostly_rebounded_and_free_throws_come_in_trips(short_season: Generated) -> None:
    misses = rebounded = 0
    trips: Counter[int] = Counter()
    for _, rows in events_by_game(short_season.directory):
        for row, following in itertools.pairwise(rows):
            if row[TYPE] == "fg_missed":
                misses += 1
                rebounded += following[TYPE].startswith("rebound")
        kinds = "".join("F" if row[TYPE].startswith("ft_") else "." for row in rows)
        trips.update(len(run) for run in kinds.split(".") if run)
    assert rebounded / misses > 0.95
    assert set(trips) == {1, 2, 3}


def test_wall_clock_is_non_decreasing_and_within_six_hours_of_tipoff(short_season: Generated) -> None:
    tipoffs = {game["game_id"]: instant(game["tipoff_at"]) for game in short_season.games}
    for game_id, rows in events_by_game(short_season.directory):
        walls = [instant(row[WALL]) for row in rows]
        assert walls == sorted(walls), game_id
        assert tipoffs[game_id] <= walls[0]
        assert walls[-1] <= tipoffs[game_id] + timedelta(hours=6)
        assert timedelta(hours=2) <= walls[-1] - tipoffs[game_id] <= timedelta(hours=3, minutes=30)


# ---------------------------------------------------------------------------------------------
# Players, rosters and Kobe Bryant
# ---------------------------------------------------------------------------------------------


def test_kobe_bryants_last_game(season_2015: Generated) -> None:
    players = {row["player_id"]: row["full_name"] for row in read_table(season_2015.directory, "players")}
    assert players[KOBE] == "Kobe Bryant"
    finale = next(game for game in season_2015.games if game["game_id"] == "21501228")
    assert finale == {
        "game_id": "21501228",
        "season": "2015-16",
        "season_type": "regular",
        "home_team_id": LAL,
        "away_team_id": "1610612762",
        "tipoff_at": "2016-04-14T02:30:00.000+00:00",
    }
    lakers_regular = [g for g in season_2015.of_type("regular") if LAL in (g["home_team_id"], g["away_team_id"])]
    assert max(lakers_regular, key=lambda game: game["tipoff_at"]) == finale
    his_games = [game for game in season_2015.games if KOBE in season_2015.facts[game["game_id"]].players[LAL]]
    assert len(his_games) == 82
    assert max(his_games, key=lambda game: game["tipoff_at"]) == finale  # no playoff game after it
    for facts in season_2015.facts.values():
        assert all(KOBE not in players for team, players in facts.players.items() if team != LAL)


def test_kobe_bryant_is_a_high_scorer(season_2015: Generated) -> None:
    points = sum(season_2015.facts[game["game_id"]].points[KOBE] for game in season_2015.of_type("regular"))
    assert 20 <= points / 82 <= 35


def test_rosters_hold_13_to_15_players(season_2015: Generated) -> None:
    appeared: dict[str, set[str]] = defaultdict(set)
    for facts in season_2015.facts.values():
        for team, players in facts.players.items():
            appeared[team] |= players
    roster = next(league_rosters(seasons=1, first_season=2015, seed=11))  # the rosters the run played with
    assert {str(team) for team in roster.players} == set(appeared)
    for team_id, player_ids in roster.players.items():
        assert 13 <= len(player_ids) <= 15
        assert len(appeared[str(team_id)]) >= 10
        assert appeared[str(team_id)] <= {str(player) for player in player_ids}


def test_kobe_bryant_is_a_laker_from_1996_97_to_2015_16() -> None:
    teams_of_kobe = {
        roster.season: [team for team, players in roster.players.items() if KOBE_BRYANT_ID in players]
        for roster in league_rosters(seasons=22, first_season=1996, seed=5)
    }
    assert all(teams_of_kobe[season] == [LAKERS] for season in range(1996, 2016))
    assert teams_of_kobe[2016] == teams_of_kobe[2017] == []
    later_league = next(league_rosters(seasons=1, first_season=2016, seed=5))
    assert all(KOBE_BRYANT_ID not in players for players in later_league.players.values())


def test_careers_rookies_retirements_and_trades() -> None:
    seasons_played: dict[int, list[int]] = defaultdict(list)
    team_in: dict[tuple[int, int], int] = {}
    rosters = list(league_rosters(seasons=25, first_season=1996, seed=2))
    for roster in rosters:
        for team, players in roster.players.items():
            assert 13 <= len(players) <= 15
            for player in players:
                seasons_played[player].append(roster.season)
                team_in[(player, roster.season)] = team
    spans = [seasons[-1] - seasons[0] + 1 for seasons in seasons_played.values()]
    assert 1 <= min(spans) <= max(spans) <= 20
    assert sum(span >= 18 for span in spans) >= 3
    for before, after in itertools.pairwise(rosters):
        players_before = {player for players in before.players.values() for player in players}
        players_after = {player for players in after.players.values() for player in players}
        assert players_after - players_before  # rookies arrive
        assert players_before - players_after  # veterans leave
        stayed = players_before & players_after
        assert any(team_in[(player, before.season)] != team_in[(player, after.season)] for player in stayed)


def test_players_carry_over_between_seasons(two_short_seasons: Generated) -> None:
    players_by_season: dict[str, set[str]] = defaultdict(set)
    for game in two_short_seasons.games:
        for players in two_short_seasons.facts[game["game_id"]].players.values():
            players_by_season[game["season"]] |= players
    first, second = players_by_season["2003-04"], players_by_season["2004-05"]
    assert len(first & second) > 0.6 * len(first)
    assert second - first
    assert first - second


def test_player_ids_and_names_are_unique(short_season: Generated) -> None:
    players = read_table(short_season.directory, "players")
    assert len({row["player_id"] for row in players}) == len(players) == short_season.summary.players
    assert len({row["full_name"] for row in players}) == len(players)
    assert all(len(row["full_name"].split()) >= 2 for row in players)
    appearing = {p for facts in short_season.facts.values() for team in facts.players.values() for p in team}
    assert appearing <= {row["player_id"] for row in players}


# ---------------------------------------------------------------------------------------------
# Determinism, compression, progress, arguments
# ---------------------------------------------------------------------------------------------


def file_bytes(directory: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(directory.iterdir())}


def test_same_arguments_give_byte_identical_files(short_season: Generated, tmp_path: Path) -> None:
    summary = generate_short(tmp_path, seed=3)
    assert summary == short_season.summary
    assert set(file_bytes(tmp_path)) == {f"{name}.csv" for name in FILES}
    assert file_bytes(tmp_path) == file_bytes(short_season.directory)


@dataclass
class ProgressRun:
    directory: Path
    summary: GenerationSummary
    calls: list[tuple[int, int, int]]
    """(done, total, size of events.csv on disk at that moment)."""


@pytest.fixture(scope="module")
def other_seed(tmp_path_factory: pytest.TempPathFactory) -> ProgressRun:
    """The short season again with seed 4, recording the progress calls."""
    directory = tmp_path_factory.mktemp("other_seed")
    calls: list[tuple[int, int, int]] = []

    def progress(done: int, total: int) -> None:
        calls.append((done, total, (directory / "events.csv").stat().st_size))

    return ProgressRun(directory, generate_short(directory, seed=4, progress=progress), calls)


def test_a_different_seed_gives_a_different_league(short_season: Generated, other_seed: ProgressRun) -> None:
    assert read_text(other_seed.directory, "teams") == read_text(short_season.directory, "teams")
    for name in ("players", "games", "events"):
        assert read_text(other_seed.directory, name) != read_text(short_season.directory, name)


def test_progress_is_reported_while_events_are_streamed_to_disk(other_seed: ProgressRun) -> None:
    calls = other_seed.calls
    games = other_seed.summary.games
    assert len(calls) >= 2
    assert calls[-1][:2] == (games, games)
    assert all(done <= total for done, total, _ in calls)
    assert [done for done, _, _ in calls] == sorted(done for done, _, _ in calls)
    first_done, _, size_then = calls[0]
    assert first_done < games
    assert 0 < size_then < (other_seed.directory / "events.csv").stat().st_size  # streamed, not written at the end


def test_compressed_output_is_gzip_with_the_same_content(short_season: Generated, tmp_path: Path) -> None:
    generate_short(tmp_path, seed=3, compress=True)
    assert {path.name for path in tmp_path.iterdir()} == {f"{name}.csv.gz" for name in FILES}
    for name in FILES:
        assert (tmp_path / f"{name}.csv.gz").read_bytes()[4:8] == bytes(4)  # no mtime: reproducible bytes
        with gzip.open(tmp_path / f"{name}.csv.gz", "rt", encoding="utf-8", newline="") as text:
            assert text.read() == read_text(short_season.directory, name)


def test_summary_counts_what_was_written(short_season: Generated) -> None:
    assert short_season.summary == GenerationSummary(
        teams=len(read_table(short_season.directory, "teams")),
        players=len(read_table(short_season.directory, "players")),
        games=len(short_season.games),
        events=sum(facts.events for facts in short_season.facts.values()),
        seasons=1,
    )


@pytest.mark.parametrize(("seasons", "first_season"), [(0, 1996), (101, 1996), (1, 1995)])
def test_rejects_unsupported_arguments(tmp_path: Path, seasons: int, first_season: int) -> None:
    with pytest.raises(ValueError, match="season"):
        generate_league(tmp_path / "out", seasons=seasons, first_season=first_season)
    assert not (tmp_path / "out").exists()


def test_generate_once_reuses_a_complete_folder_and_only_that(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(generate.LOCKOUT_GAMES_PER_TEAM, 2003, SHORT_SEASON_GAMES)
    folder = tmp_path / "league"
    first = generate.generate_once(folder, seasons=1, first_season=2003, seed=5)
    events = folder / "events.csv"
    written = events.stat().st_mtime_ns
    again = generate.generate_once(folder, seasons=1, first_season=2003, seed=5)
    assert (first.reused, again.reused) == (False, True)
    assert again.summary == first.summary
    assert events.stat().st_mtime_ns == written
    other = generate.generate_once(folder, seasons=1, first_season=2003, seed=6)
    assert not other.reused
    assert events.stat().st_mtime_ns != written
