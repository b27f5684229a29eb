"""The synthetic live feeds (temporaldb/feeds/synthetic.py) against the live importer, both ways round.

Generated games (one season per seed; a sample of regular-season, overtime and playoff games) get foul kinds drawn
at random (every kind, no kind, team technicals) and are written as live play-by-play and live box score documents.
Without a database, live.py must give back the canonical events (times truncated to the feed's tenth of a second)
and the box score must hold the lines of tests/nbadata.py's reference stat rules, which share no code with the
writer. On real PostgreSQL, the documents imported with --strict must answer like the same canonical CSV loaded
directly: games, names, every player's and team's box line, every event, and as-of answers at moments with no
event within 100 ms (the feed's precision).
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from temporaldb.cli import EXIT_OK, main
from temporaldb.feeds import boxscore, live, synthetic
from temporaldb.feeds.canonical import clock_tenths, to_canonical, write_folder
from temporaldb.feeds.model import FOUL_KINDS, NON_PERSONAL_FOUL_KINDS, STATS, FeedEvent, FeedGame, FeedPlayer
from temporaldb.generate import generate_league
from temporaldb.load import load_directory
from temporaldb.migrate import migrate
from tests import nbadata
from tests.pgservers import ThrowawayServer

SEEDS = (3, 11)
KINDS: tuple[str | None, ...] = (*sorted(FOUL_KINDS), None)
TENTH = dt.timedelta(milliseconds=100)


# ---------------------------------------------------------------------------------------------------- the games


def _overtime_games(folder: Path) -> list[int]:
    with (folder / "events.csv").open(newline="", encoding="utf-8") as handle:
        return sorted({int(row["game_id"]) for row in csv.DictReader(handle) if int(row["period"]) > 4})


def _sample(folder: Path) -> list[FeedGame]:
    with (folder / "games.csv").open(newline="", encoding="utf-8") as handle:
        games = [(int(row["game_id"]), row["season_type"]) for row in csv.DictReader(handle)]
    regular = [game for game, kind in games if kind == "regular"]
    playoffs = [game for game, kind in games if kind == "playoffs"]
    chosen = {*regular[:6], *_overtime_games(folder)[:2], *playoffs[-2:]}
    return list(synthetic.read_canonical(folder, game_ids=chosen))


@pytest.fixture(scope="module")
def leagues(tmp_path_factory: pytest.TempPathFactory) -> dict[int, list[FeedGame]]:
    """Per seed, a sample of one generated season's games: six regular, two overtime, the last two playoff games."""
    samples = {}
    for seed in SEEDS:
        folder = tmp_path_factory.mktemp(f"league{seed}")
        generate_league(folder, seasons=1, first_season=2015, seed=seed)
        samples[seed] = _sample(folder)
        assert any(event.period > 4 for game in samples[seed] for event in game.events)
        assert {game.season_type for game in samples[seed]} == {"regular", "playoffs"}
    return samples


def with_fouls(game: FeedGame, kinds: Sequence[str | None], team_technical: bool) -> FeedGame:
    """The game with its fouls given `kinds` in turn; with `team_technical`, its first technical has no player."""
    events, fouls = [], 0
    for event in game.events:
        if event.event_type == "foul":
            kind = kinds[fouls % len(kinds)]
            fouls += 1
            teamless = team_technical and kind in NON_PERSONAL_FOUL_KINDS
            team_technical = team_technical and not teamless
            events.append(replace(event, foul_kind=kind, player_id=None if teamless else event.player_id))
        else:
            events.append(event)
    names = {player.player_id: player.full_name for player in game.players}
    places = synthetic.player_teams(game.game_id, events, game.home.team_id, game.away.team_id)
    players = tuple(FeedPlayer(person, names[person], team) for person, team in places.items())
    return replace(game, events=tuple(events), players=players)


def drawn_game(data: st.DataObject, leagues: dict[int, list[FeedGame]]) -> FeedGame:
    game = data.draw(st.sampled_from(leagues[data.draw(st.sampled_from(SEEDS))]))
    kinds = data.draw(st.lists(st.sampled_from(KINDS), min_size=1, max_size=8))
    return with_fouls(game, kinds, data.draw(st.booleans()))


# ---------------------------------------------------------------------------------------------------- comparing


def truncated(moment: dt.datetime) -> dt.datetime:
    """A wall clock as the live feed has it: to the tenth of a second."""
    return moment.replace(microsecond=moment.microsecond // 100_000 * 100_000).astimezone(dt.UTC)


def event_key(event: FeedEvent) -> tuple[object, ...]:
    """What must survive the trip through the feed (times truncated to tenths, ft_value 1 made explicit)."""
    assert event.wall_clock is not None
    free_throw = event.event_type in ("ft_made", "ft_missed")
    return (
        event.period, clock_tenths(event.clock), event.event_type, event.team_id, event.player_id,
        event.secondary_player_id, event.points, event.is_three, (event.ft_value or 1) if free_throw else None,
        truncated(event.wall_clock),
    )  # fmt: skip


def expected_foul_kinds(game: FeedGame) -> list[set[str]]:
    """Per foul, the kinds the import may give it: its own, else personal or shooting (the writer's guess)."""
    return [{event.foul_kind} if event.foul_kind else {"personal", "shooting"} for event in game.events if
            event.event_type == "foul"]  # fmt: skip


def reference_lines(game: FeedGame) -> dict[tuple[str, int], Counter[str]]:
    """Every subject's line by tests/nbadata.py's own reading of the stat rules."""
    assert game.tipoff_at is not None
    reference_game = nbadata.Game(game.game_id, game.season, game.season_type, game.home.team_id,
                                  game.away.team_id, game.tipoff_at)  # fmt: skip
    lines: dict[tuple[str, int], Counter[str]] = {}
    for number, event in enumerate(game.events, 1):
        assert event.wall_clock is not None
        reference_event = nbadata.Event(
            game.game_id, number, event.period, event.clock, event.wall_clock, event.event_type, event.team_id,
            event.player_id, event.secondary_player_id, event.points, event.is_three, event.foul_kind,
        )  # fmt: skip
        for kind, subject, stats in nbadata.credits(reference_event, reference_game):
            lines.setdefault((kind, subject), Counter()).update(stats)
    return lines


def parsed(game: FeedGame) -> tuple[FeedGame, dict[str, Any], dict[str, Any]]:
    """The game through the writer and back through boxscore.py and live.py, with its two documents."""
    pbp, box = synthetic.play_by_play(game), synthetic.box_score(game)
    pbp = json.loads(json.dumps(pbp))  # what a file holds
    facts = boxscore.facts(box, "box.json")
    roster = {player.player_id: player for player in facts.players}
    teams = {team.team_id: team for team in facts.teams}
    return live.parse(pbp, "pbp.json", roster, teams=teams), pbp, box


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_the_live_importer_gives_back_the_canonical_game(
    leagues: dict[int, list[FeedGame]], data: st.DataObject
) -> None:
    game = drawn_game(data, leagues)
    back, pbp, _ = parsed(game)
    assert [event_key(event) for event in back.events] == [event_key(event) for event in game.events]
    kinds = [event.foul_kind for event in back.events if event.event_type == "foul"]
    assert all(kind in allowed for kind, allowed in zip(kinds, expected_foul_kinds(game), strict=True))
    assert (back.game_id, back.season, back.season_type) == (game.game_id, game.season, game.season_type)
    assert (back.home, back.away, back.tipoff_at) == (game.home, game.away, game.tipoff_at)
    assert sorted(back.players, key=lambda p: p.player_id) == sorted(game.players, key=lambda p: p.player_id)
    # Every action is an event, a row merged into one (block, steal, the first of a substitution pair) or skipped.
    actions = len(pbp["game"]["actions"])
    assert actions == len(back.events) + sum(back.merged.values()) + sum(back.skipped.values())
    assert back.skipped == Counter({"live:game end": 1})


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_the_box_score_holds_the_lines_of_the_stat_rules(
    leagues: dict[int, list[FeedGame]], data: st.DataObject
) -> None:
    game = drawn_game(data, leagues)
    _, _, document = parsed(game)
    box = boxscore.box_score(document, "box.json")
    reference = reference_lines(game)
    players = {line.subject_id: line.stats for line in box.lines if line.subject_kind == "p"}
    assert players == {
        subject: {s: line[s] for s in STATS} for (kind, subject), line in reference.items() if kind == "p"
    }
    for side in ("homeTeam", "awayTeam"):
        team = document["game"][side]
        statistics, team_id = team["statistics"], team["teamId"]
        line = next(line.stats for line in box.lines if line.subject_kind == "t" and line.subject_id == team_id)
        apart = {
            "oreb": statistics["reboundsTeamOffensive"], "dreb": statistics["reboundsTeamDefensive"],
            "rebounds": box.team_rebounds[team_id], "turnovers": box.team_turnovers[team_id],
        }  # fmt: skip
        assert {s: line[s] + apart.get(s, 0) for s in STATS} == {s: reference[("t", team_id)][s] for s in STATS}
        assert team["score"] == reference[("t", team_id)]["points"]


def test_a_canonical_event_the_live_feed_cannot_spell_is_refused(leagues: dict[int, list[FeedGame]]) -> None:
    game = leagues[SEEDS[0]][0]
    position = next(i for i, event in enumerate(game.events) if event.event_type == "ft_made")
    events = list(game.events)
    events[position] = replace(events[position], ft_value=2, points=2)
    with pytest.raises(ValueError, match=rf"game {game.game_id:010d} event {position + 1}: a free throw worth 2"):
        synthetic.play_by_play(replace(game, events=tuple(events)))


# ---------------------------------------------------------------------------------------------------- on PostgreSQL


@pytest.fixture
def second_database(pg_server: ThrowawayServer, request: pytest.FixtureRequest) -> str:
    """Another migrated database next to `database`, for the import."""
    name = f"t_live_{abs(hash(request.node.nodeid)) % 10**12}"
    with psycopg.connect(pg_server.dsn, autocommit=True) as admin:
        admin.execute(f'drop database if exists "{name}" with (force)')
        admin.execute(f'create database "{name}"')
    dsn = pg_server.dsn_for(name)
    migrate(dsn)
    return dsn


def quiet_moments(game: FeedGame) -> list[dt.datetime]:
    """Before tip-off, three moments in play with no event within 200 ms, and after the game."""
    walls = [event.wall_clock for event in game.events if event.wall_clock is not None]
    assert game.tipoff_at is not None
    moments = [game.tipoff_at - dt.timedelta(minutes=1)]
    for fraction in (0.25, 0.5, 0.75):
        start = int(len(walls) * fraction)
        gap = next(i for i in range(start, len(walls) - 1) if walls[i + 1] - walls[i] >= 4 * TENTH)
        moments.append(walls[gap] + 2 * TENTH)
    return [*moments, walls[-1] + dt.timedelta(hours=1)]


LINE_QUERY = """
select subject_kind, subject_id, game_id, season, season_type, tipoff_at, points, fgm, fga, fg3m, fg3a, ftm, fta,
       oreb, dreb, rebounds, assists, steals, blocks, turnovers, fouls
from nba.box_lines order by subject_kind, subject_id, game_id
"""


def answers(dsn: str, games: Sequence[FeedGame]) -> dict[str, Any]:
    """What the database says about the games: rows, box lines, and as-of answers at quiet moments."""
    found: dict[str, Any] = {}
    with psycopg.connect(dsn) as connection:
        for table in ("teams", "players", "games"):
            found[table] = connection.execute(f"select * from nba.{table} order by 1").fetchall()
        found["lines"] = connection.execute(LINE_QUERY).fetchall()
        found["asof"] = [
            connection.execute(f"select * from nba.{function}(%s, %s, %s, 'all')", (subject, moment, scope)).fetchone()
            for game in games
            for moment in quiet_moments(game)
            for function, subjects in (
                ("player_stats_as_of", [player.player_id for player in game.players]),
                ("team_stats_as_of", [game.home.team_id, game.away.team_id]),
            )
            for subject in subjects
            for scope in ("game", "career")
        ]
        found["events"] = connection.execute(
            "select game_id, event_num, period, clock, event_type, team_id, player_id, secondary_player_id, points,"
            " is_three, wall_clock_time from nba.play_by_play"
            " order by game_id, event_num"
        ).fetchall()
    return found


def chosen_games(leagues: dict[int, list[FeedGame]], seed: int) -> list[FeedGame]:
    """One regular, one overtime and one playoff game of the seed's sample, with random foul kinds."""
    rng = random.Random(seed)
    sample = leagues[seed]
    overtime = next(game for game in sample if game.events[-1].period > 4)
    picked = [sample[0], overtime, sample[-1]]
    return [with_fouls(game, [rng.choice(KINDS) for _ in range(7)], team_technical=True) for game in picked]


@pytest.mark.parametrize("seed", SEEDS)
def test_imported_live_feeds_answer_like_the_canonical_csv(
    database: str, second_database: str, leagues: dict[int, list[FeedGame]], seed: int, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    games = chosen_games(leagues, seed)
    load_directory(database, write_folder([to_canonical(game) for game in games], tmp_path / "canonical"))
    synthetic.write_live(games, tmp_path / "live")
    code = main(["import", str(tmp_path / "live"), "--strict", "--dsn", second_database])
    out, err = capsys.readouterr()
    assert code == EXIT_OK, err
    events = sum(len(game.events) for game in games)
    assert "imported 3 games" in out
    assert f": {events:,} events, {events:,} new or changed" in out
    assert "0 unexplained differences" in out
    direct, imported = answers(database, games), answers(second_database, games)
    for name in ("teams", "players", "games", "lines", "asof"):
        assert imported[name] == direct[name], name
    assert len(imported["asof"]) > 3 * 5 * 2 * 12
    # Events: the same but for the clock's spelling and the wall clock, truncated to the tenth of a second.
    assert len(imported["events"]) == len(direct["events"]) == events
    for mine, theirs in zip(imported["events"], direct["events"], strict=True):
        assert mine[:3] == theirs[:3]
        assert mine[4:10] == theirs[4:10]
        assert clock_tenths(mine[3]) == clock_tenths(theirs[3])
        assert dt.timedelta(0) <= theirs[10] - mine[10] < TENTH
