"""Property: both as-of functions equal a brute-force reference, however the data arrived.

Random small leagues (two seasons, regular and playoff games, same-millisecond
events, team events) are loaded whole, shuffled, split over two loads, or first
with wrong events that a second load corrects; then, at random moments that
include exact event timestamps and one millisecond either side, every player
and team, in every scope and season type, must match tests/nbadata.py.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
from pathlib import Path

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from temporaldb.load import load_directory
from tests.nbadata import (
    EVENT_KINDS,
    PLAYERS,
    SEASON_OPENS,
    SEASONS,
    TEAMS,
    Event,
    Game,
    League,
    make_event,
    reference_line,
    write_league,
)

MS = dt.timedelta(milliseconds=1)


@st.composite
def events_of(draw: st.DrawFn, game: Game) -> list[Event]:
    count = draw(st.integers(0, 12))
    # Few distinct seconds, so several events often share one millisecond.
    seconds = draw(
        st.lists(st.sampled_from([0, 1.5, 60, 61.001, 3600, 7200.25, 5.9 * 3600]), min_size=count, max_size=count)
    )
    return [
        make_event(
            game,
            number,
            moment,
            draw(st.sampled_from(EVENT_KINDS)),
            side=draw(st.integers(0, 1)),
            who=draw(st.integers(0, 1)),
            helper=draw(st.booleans()),
            three=draw(st.booleans()),
        )
        for number, moment in enumerate(seconds, start=1)
    ]


@st.composite
def leagues(draw: st.DrawFn) -> League:
    games: list[Game] = []
    events: list[Event] = []
    for season_index, season in enumerate(SEASONS):
        days = draw(st.lists(st.integers(0, 200), min_size=1, max_size=4, unique=True))
        for day in sorted(days):
            home, away = draw(st.permutations([team.team_id for team in TEAMS]))[:2]
            game = Game(
                game_id=1000 * (season_index + 1) + day,
                season=season,
                season_type="playoffs" if day > 160 else "regular",
                home_team_id=home,
                away_team_id=away,
                tipoff_at=SEASON_OPENS[season] + dt.timedelta(days=day, minutes=draw(st.integers(0, 200))),
            )
            games.append(game)
            events += draw(events_of(game))
    return League(TEAMS, PLAYERS, tuple(games), tuple(events))


def moments_of(league: League) -> list[dt.datetime]:
    exact = [event.wall_clock_time for event in league.events] + [game.tipoff_at for game in league.games]
    nearby = [moment + delta for moment in exact for delta in (-MS, MS)]
    edges = [
        min(SEASON_OPENS.values()) - dt.timedelta(days=1),
        max(exact, default=min(SEASON_OPENS.values())) + dt.timedelta(days=1),
    ]
    return sorted(set(exact + nearby + edges))


def corrupted(event: Event, rng: random.Random) -> Event:
    """The same (game_id, event_num) with other, still valid, content (moved within the game's span)."""
    shift = rng.choice([0.001, 30, 45])  # events lie at most 5.9 h after tip-off: this stays within 6 h
    moved = event.wall_clock_time + dt.timedelta(seconds=shift)
    if event.team_id is None:  # period events stay team-less
        other = "period_end" if event.event_type == "period_start" else "period_start"
        return dataclasses.replace(event, wall_clock_time=moved, event_type=other)
    return dataclasses.replace(
        event,
        wall_clock_time=moved,
        event_type="foul" if event.event_type != "foul" else "violation",
        points=0,
        is_three=False,
        secondary_player_id=None,
    )


def load_in_mode(dsn: str, folder: Path, league: League, mode: str, rng: random.Random) -> None:
    events = list(league.events)
    if mode == "whole":
        load_directory(dsn, write_league(folder / "all", league))
    elif mode == "shuffled":
        rng.shuffle(events)
        load_directory(dsn, write_league(folder / "all", league, events=events))
    elif mode == "split":
        rng.shuffle(events)
        half = len(events) // 2
        load_directory(dsn, write_league(folder / "first", league, events=events[half:]))
        load_directory(dsn, write_league(folder / "second", league, events=events[:half]))
    else:  # corrected: a wrong first load, missing some events, then the right data
        wrong = [corrupted(e, rng) if rng.random() < 0.4 else e for e in events if rng.random() < 0.8]
        load_directory(dsn, write_league(folder / "wrong", league, events=wrong))
        load_directory(dsn, write_league(folder / "right", league))


def reset(dsn: str) -> None:
    with psycopg.connect(dsn) as connection:
        connection.execute(
            "truncate nba.play_by_play, nba.stat_lines, nba.seasons, nba.games, nba.players, nba.teams cascade"
        )


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(league=leagues(), mode=st.sampled_from(["whole", "shuffled", "split", "corrected"]), data=st.data())
def test_as_of_matches_the_reference(
    database: str, tmp_path_factory: pytest.TempPathFactory, league: League, mode: str, data: st.DataObject
) -> None:
    reset(database)
    load_in_mode(database, tmp_path_factory.mktemp("league"), league, mode, random.Random(data.draw(st.integers())))
    moments = data.draw(st.lists(st.sampled_from(moments_of(league)), min_size=4, max_size=10, unique=True))
    subjects = [("p", player.player_id) for player in PLAYERS] + [("t", team.team_id) for team in TEAMS]
    with psycopg.connect(database) as connection:
        for moment in moments:
            for kind, subject in subjects:
                function = "nba.player_stats_as_of" if kind == "p" else "nba.team_stats_as_of"
                for scope in ("career", "season", "game"):
                    for season_type in ("regular", "playoffs", "all"):
                        row = connection.execute(
                            f"select * from {function}(%s, %s, %s, %s)", (subject, moment, scope, season_type)
                        ).fetchone()
                        expected = reference_line(league, kind, subject, moment, scope, season_type)
                        assert row == expected, (mode, kind, subject, moment.isoformat(), scope, season_type)
