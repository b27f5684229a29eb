"""Panels and standings on a real PostgreSQL (sql V0005).

- every cell of nba.player_stats_panel / nba.team_stats_panel equals the one-cell function and the brute-force
  reference of tests/nbadata.py, in every scope and season type, at moments on events, a millisecond either
  side, inside games, before the first game and after the last, given unsorted and repeated, for a list of
  subjects (with unknown ids) and for the NULL list (every subject with a game in the span, as documented);
- the contract: one row per distinct (subject, moment), ordered; the one-cell functions' errors;
- nba.standings_as_of against a league worked out by hand (a game in progress, a game whose last event is a
  period end, a playoff game, another season);
- the reader logins run them;
- the one-cell wrappers are inlined by the planner (what makes them faster; checked on the plan, not the clock).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import errors
from psycopg.conninfo import make_conninfo

from temporaldb.bootstrap import bootstrap
from temporaldb.load import load_directory
from tests.nbadata import PLAYERS, STATS, TEAMS, UTC, Event, Game, League, credits, reference_line, write_league
from tests.pgservers import ThrowawayServer, available_majors, start_throwaway_server
from tests.test_asof_property import leagues, moments_of, reset
from tests.test_load import HAND_MADE, KOBE

MS = dt.timedelta(milliseconds=1)
SCOPES = ("career", "season", "game")
SEASON_TYPES = ("regular", "playoffs", "all")
FUNCTIONS = {"p": "player", "t": "team"}
UNKNOWN_IDS = (5, 1610612999)

Cell = tuple[int, dt.datetime]


# --- the property ------------------------------------------------------------------------------------------


def seasons_of(league: League, moments: Sequence[dt.datetime]) -> set[str]:
    """The season in progress at each moment: that of the latest game tipped off (none before the first)."""
    seasons = set()
    for moment in moments:
        started = [game for game in league.games if game.tipoff_at <= moment]
        if started:
            seasons.add(max(started, key=lambda game: game.tipoff_at).season)
    return seasons


def null_list_subjects(
    league: League, kind: str, moments: Sequence[dt.datetime], scope: str, season_type: str
) -> set[int]:
    """The README's NULL list, by brute force: subjects credited in a game of the season types (any in game
    scope) tipped off by the latest moment, in season scope in the season of one of the moments."""
    types = ("regular", "playoffs") if season_type == "all" or scope == "game" else (season_type,)
    seasons = seasons_of(league, moments)
    games = {game.game_id: game for game in league.games}
    found = set()
    for event in league.events:
        game = games[event.game_id]
        if game.tipoff_at > max(moments) or game.season_type not in types:
            continue
        if scope == "season" and game.season not in seasons:
            continue
        found |= {subject for credit_kind, subject, _ in credits(event, game) if credit_kind == kind}
    return found


def panel_with_one_cell(
    connection: psycopg.Connection[tuple[object, ...]],
    kind: str,
    subjects: list[int] | None,
    moments: list[dt.datetime],
    scope: str,
    season_type: str,
) -> list[tuple[Cell, tuple[int, ...], tuple[int, ...]]]:
    """Each panel row: its (subject, moment), its stats, and the one-cell function's stats for the same cell."""
    name = FUNCTIONS[kind]
    rows = connection.execute(
        f"""select p.*, o.* from nba.{name}_stats_panel(%(ids)s, %(moments)s, %(scope)s, %(type)s) p
            cross join lateral nba.{name}_stats_as_of(p.{name}_id, p.as_of, %(scope)s, %(type)s) o""",
        {"ids": subjects, "moments": moments, "scope": scope, "type": season_type},
    ).fetchall()
    width = len(STATS)
    return [((row[0], row[1]), tuple(row[2 : 2 + width]), tuple(row[2 + width :])) for row in rows]


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(league=leagues(), data=st.data())
def test_panels_match_the_one_cell_functions_and_the_reference(
    database: str, tmp_path_factory: pytest.TempPathFactory, league: League, data: st.DataObject
) -> None:
    reset(database)
    load_directory(database, write_league(tmp_path_factory.mktemp("league"), league))
    draw = data.draw
    picked = draw(st.lists(st.sampled_from(moments_of(league)), min_size=1, max_size=8))
    # inside games: from tip-off to six hours after, when the games' events end
    inside = draw(st.lists(st.tuples(st.sampled_from(league.games), st.floats(0, 6 * 3600)), max_size=3))
    picked += [game.tipoff_at + dt.timedelta(seconds=seconds) for game, seconds in inside]
    # unsorted, with repeats
    moments = draw(st.permutations(picked + draw(st.lists(st.sampled_from(picked), max_size=3))))
    known = {"p": [player.player_id for player in PLAYERS], "t": [team.team_id for team in TEAMS]}
    with psycopg.connect(database) as connection:
        for kind, ids in known.items():
            listed = draw(st.lists(st.sampled_from([*ids, *UNKNOWN_IDS]), min_size=1, max_size=6))
            for subjects in (listed, None):
                for scope in SCOPES:
                    for season_type in SEASON_TYPES:
                        where = (kind, subjects, [m.isoformat() for m in moments], scope, season_type)
                        rows = panel_with_one_cell(connection, kind, subjects, moments, scope, season_type)
                        expected_ids = (
                            set(subjects)
                            if subjects is not None
                            else null_list_subjects(league, kind, moments, scope, season_type)
                        )
                        # one row per distinct (subject, moment), ordered by subject then moment
                        assert [cell for cell, _, _ in rows] == sorted(
                            (subject, moment) for subject in expected_ids for moment in set(moments)
                        ), where
                        for (subject, moment), stats, one_cell in rows:
                            assert stats == one_cell, (*where, subject, moment.isoformat())
                            assert stats == reference_line(league, kind, subject, moment, scope, season_type), (
                                *where,
                                subject,
                                moment.isoformat(),
                            )


# --- the contract on a hand-made league ----------------------------------------------------------------------


@pytest.fixture
def hand_made(database: str, tmp_path: Path) -> str:
    load_directory(database, write_league(tmp_path / "league", HAND_MADE))
    return database


def _rows(dsn: str, query: str, params: Sequence[object] = ()) -> list[tuple[object, ...]]:
    with psycopg.connect(dsn) as connection:
        return connection.execute(query, params).fetchall()


def test_repeated_unsorted_moments_and_ids_give_one_ordered_row_each(hand_made: str) -> None:
    last = max(event.wall_clock_time for event in HAND_MADE.events)
    moments = [last, last - dt.timedelta(days=10), last, last + MS]
    rows = _rows(
        hand_made,
        "select player_id, as_of, points from nba.player_stats_panel(%s, %s)",
        ([KOBE, UNKNOWN_IDS[0], KOBE, None], moments),
    )
    assert [(row[0], row[1]) for row in rows] == [
        (UNKNOWN_IDS[0], last - dt.timedelta(days=10)),
        (UNKNOWN_IDS[0], last),
        (UNKNOWN_IDS[0], last + MS),
        (KOBE, last - dt.timedelta(days=10)),
        (KOBE, last),
        (KOBE, last + MS),
    ]
    # an unknown id gets zeros, as from the one-cell function; Kobe's 6 points come after the opener's 3
    assert [row[2] for row in rows] == [0, 0, 0, 0, 6, 6]


@pytest.mark.parametrize(
    ("ids", "moments"),
    [([KOBE], []), ([KOBE], None), ([], [dt.datetime(2016, 4, 14, tzinfo=UTC)])],
    ids=["no moments", "NULL moments", "empty id list"],
)
def test_nothing_asked_gives_no_rows(hand_made: str, ids: list[int], moments: list[dt.datetime] | None) -> None:
    assert _rows(hand_made, "select * from nba.player_stats_panel(%s, %s)", (ids, moments)) == []


def test_a_null_moment_is_refused(hand_made: str) -> None:
    with psycopg.connect(hand_made) as connection, pytest.raises(errors.NullValueNotAllowed, match="p_moments"):
        connection.execute(
            "select * from nba.team_stats_panel(null, array[now(), null])",
        )


@pytest.mark.parametrize(
    ("scope", "season_type"),
    [("bogus", "regular"), (None, "all"), ("career", "regularr"), ("game", None), ("bogus", "bogus")],
)
@pytest.mark.parametrize("kind", ["p", "t"])
def test_bad_arguments_raise_the_one_cell_errors(
    hand_made: str, kind: str, scope: str | None, season_type: str | None
) -> None:
    name = FUNCTIONS[kind]
    raised = []
    for query in (
        f"select * from nba.{name}_stats_as_of(1, now(), %s, %s)",
        f"select * from nba.{name}_stats_panel(array[1], array[now()], %s, %s)",
    ):
        with psycopg.connect(hand_made) as connection, pytest.raises(psycopg.Error) as caught:
            connection.execute(query, (scope, season_type))
        raised.append((caught.value.sqlstate, caught.value.diag.message_primary))
    assert raised[0] == raised[1]
    assert raised[0][0] == "22023"  # invalid_parameter_value, naming the allowed values
    assert "must be one of" in str(raised[0][1])


def test_null_list_in_season_scope_keeps_to_the_seasons_of_the_moments(hand_made: str) -> None:
    """Both hand-made games are of 2015-16: a moment before the first game is in no season (no subject), a moment
    a year after the last is still in 2015-16 (the latest season to have begun), with all four players."""
    first = min(game.tipoff_at for game in HAND_MADE.games)
    before = _rows(hand_made, "select * from nba.player_stats_panel(null, %s, 'season')", ([first - MS],))
    assert before == []
    after = _rows(
        hand_made,
        "select player_id from nba.player_stats_panel(null, %s, 'season')",
        ([first + dt.timedelta(days=365)],),
    )
    assert {row[0] for row in after} == {977, 1001, 2001, 2002}


def test_one_cell_wrappers_are_inlined(hand_made: str) -> None:
    """What makes them cheaper than a PL/pgSQL wrapper: the planner calls nba.subject_stats_as_of directly."""
    for kind, name in FUNCTIONS.items():
        plan = _rows(hand_made, f"explain select * from nba.{name}_stats_as_of(1, now())")
        assert "subject_stats_as_of" in str(plan[0][0]), (kind, plan)
        plan = _rows(hand_made, f"explain select * from nba.{name}_stats_panel(array[1], array[now()])")
        assert "subject_stats_panel" in str(plan[0][0]), (kind, plan)


# --- standings -----------------------------------------------------------------------------------------------

LAL, UTA, GSW = (team.team_id for team in TEAMS)
TIP = dt.datetime(2016, 1, 10, 3, 0, tzinfo=UTC)
G1, G2, G3, G4, G5, G0 = 21500601, 21500602, 21500603, 21500604, 41500101, 21400900
DAY = dt.timedelta(days=1)


def _standings_event(game: Game, number: int, seconds: int, kind: str, team: int | None, points: int = 0) -> Event:
    player = {LAL: KOBE, UTA: 2001, GSW: 3001}.get(team) if team is not None else None
    return Event(game.game_id, number, 1, "12:00", game.tipoff_at + dt.timedelta(seconds=seconds), kind, team,
                 player, None, points, False)  # fmt: skip


def _scores(game: Game, *scores: tuple[int, int, int]) -> list[Event]:
    """(seconds after tip-off, team, points) as made baskets (2) and free throws (1), then the period end."""
    events = [_standings_event(game, 1, 0, "period_start", None)]
    for seconds, team, points in scores:
        kind = "fg_made" if points == 2 else "ft_made"
        events.append(_standings_event(game, len(events) + 1, seconds, kind, team, points))
    return events


# G1 LAL 4-2 UTA; G2 UTA 3-2 GSW, whose period end comes a minute after its last point; G4 UTA-LAL, tipped off
# but without any event; G3 GSW-LAL, in progress at NOW (LAL 2-0 then, GSW wins 3-2 after); G5 a playoff game
# LAL 2-0 UTA; G0 a game of 2014-15, UTA 2-0 LAL, that no 2015-16 standings count.
GAMES = (
    Game(G0, "2014-15", "regular", UTA, LAL, TIP - 300 * DAY),
    Game(G1, "2015-16", "regular", LAL, UTA, TIP),
    Game(G2, "2015-16", "regular", UTA, GSW, TIP + DAY),
    Game(G3, "2015-16", "regular", GSW, LAL, TIP + 2 * DAY),
    Game(G4, "2015-16", "regular", UTA, LAL, TIP + DAY + dt.timedelta(hours=12)),
    Game(G5, "2015-16", "playoffs", LAL, UTA, TIP + 100 * DAY),
)
BY_ID = {game.game_id: game for game in GAMES}
G2_LAST_SCORE = BY_ID[G2].tipoff_at + dt.timedelta(seconds=600)
G2_END = G2_LAST_SCORE + dt.timedelta(seconds=60)
NOW = BY_ID[G3].tipoff_at + dt.timedelta(seconds=400)
STANDINGS_LEAGUE = League(
    teams=TEAMS,
    players=PLAYERS,
    games=GAMES,
    events=(
        *_scores(BY_ID[G0], (100, UTA, 2)),
        *_scores(BY_ID[G1], (100, LAL, 2), (200, UTA, 2), (300, LAL, 2)),
        *_scores(BY_ID[G2], (100, GSW, 2), (200, UTA, 2), (600, UTA, 1)),
        _standings_event(BY_ID[G2], 5, 660, "period_end", None),
        *_scores(BY_ID[G3], (300, LAL, 2), (500, GSW, 2), (700, GSW, 1)),
        *_scores(BY_ID[G5], (100, LAL, 2)),
    ),
)


@pytest.fixture
def standings_league(database: str, tmp_path: Path) -> str:
    load_directory(database, write_league(tmp_path / "standings", STANDINGS_LEAGUE))
    return database


def standings(dsn: str, moment: dt.datetime, season: str | None = None) -> list[tuple[object, ...]]:
    return _rows(dsn, "select * from nba.standings_as_of(%s, %s)", (moment, season))


def row(
    season: str, team: int, wins: int, losses: int, pct: str | None, behind: str, pw: int = 0, pl: int = 0
) -> tuple[object, ...]:
    names = {t.team_id: (t.abbreviation, t.name) for t in TEAMS}
    return (season, team, *names[team], wins, losses, None if pct is None else Decimal(pct), Decimal(behind), pw, pl)


def test_standings_count_finished_games_only(standings_league: str) -> None:
    # At NOW: G1 (LAL) and G2 (UTA) are final; G3 is in progress (LAL leads) and G4 has no event: neither counts.
    assert standings(standings_league, NOW) == [
        row("2015-16", LAL, 1, 0, "1.000", "0.0"),
        row("2015-16", UTA, 1, 1, "0.500", "0.5"),  # ((1 - 0) - (1 - 1)) / 2
        row("2015-16", GSW, 0, 1, "0.000", "1.0"),
    ]


def test_standings_wait_for_the_last_event_even_without_a_team(standings_league: str) -> None:
    between = standings(standings_league, G2_END - MS)
    assert [(r[1], r[4], r[5]) for r in between] == [(LAL, 1, 0), (GSW, 0, 0), (UTA, 0, 1)]  # by games behind
    at_the_end = standings(standings_league, G2_END)  # the period end at that very millisecond counts
    assert [(r[1], r[4], r[5]) for r in at_the_end] == [(LAL, 1, 0), (UTA, 1, 1), (GSW, 0, 1)]


def test_standings_after_the_playoffs(standings_league: str) -> None:
    # G3 final: GSW 3-2; G4 never got an event; G5: LAL wins the playoff game, apart from the regular season.
    later = BY_ID[G5].tipoff_at + 6 * dt.timedelta(hours=1)
    assert standings(standings_league, later) == [
        row("2015-16", GSW, 1, 1, "0.500", "0.0"),
        row("2015-16", LAL, 1, 1, "0.500", "0.0", pw=1),
        row("2015-16", UTA, 1, 1, "0.500", "0.0", pl=1),
    ]


def test_standings_of_a_named_season(standings_league: str) -> None:
    later = BY_ID[G5].tipoff_at + 6 * dt.timedelta(hours=1)
    # 2014-15 had one game, UTA at home against LAL, won by UTA; GSW did not play.
    assert standings(standings_league, later, "2014-15") == [
        row("2014-15", UTA, 1, 0, "1.000", "0.0"),
        row("2014-15", LAL, 0, 1, "0.000", "1.0"),
    ]
    # 2015-16 asked before it began: its teams, no decision yet, by team id.
    before = standings(standings_league, TIP - DAY, "2015-16")
    assert before == [row("2015-16", team, 0, 0, None, "0.0") for team in sorted((LAL, UTA, GSW))]


def test_standings_of_nothing(standings_league: str) -> None:
    assert standings(standings_league, TIP - 400 * DAY) == []  # before the first game
    assert standings(standings_league, NOW, "1999-00") == []  # a season with no game
    with psycopg.connect(standings_league) as connection, pytest.raises(errors.InvalidParameterValue, match="2015-16"):
        connection.execute("select * from nba.standings_as_of(now(), '2015')")
    with psycopg.connect(standings_league) as connection, pytest.raises(errors.NullValueNotAllowed):
        connection.execute("select * from nba.standings_as_of(null)")


# --- the reader logins ---------------------------------------------------------------------------------------

MAJORS = available_majors()
NBA = "nba_temporal"


@pytest.fixture(scope="module", params=MAJORS, ids=[f"pg{major}" for major in MAJORS])
def role_model(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThrowawayServer]:
    """A server of its own (the model's roles are cluster-wide), bootstrapped as `temporaldb local start` does."""
    server = start_throwaway_server(request.param, tmp_path_factory.mktemp(f"panels{request.param}"))
    try:
        bootstrap(server.dsn, ("nba",))
        load_directory(
            make_conninfo(server.dsn, dbname=NBA, user="etl"), write_league(server.root_dir / "l", STANDINGS_LEAGUE)
        )
        yield server
    finally:
        server.stop()


@pytest.mark.parametrize("login", ["analyst", "app"])
def test_readers_run_panels_and_standings(role_model: ThrowawayServer, login: str) -> None:
    later = BY_ID[G5].tipoff_at + 6 * dt.timedelta(hours=1)
    queries: list[tuple[str, tuple[object, ...]]] = [
        ("select * from nba.player_stats_panel(%s, %s, 'game', 'all')", ([KOBE, 2001], [NOW, later])),
        ("select * from nba.player_stats_panel(null, %s)", ([NOW, later],)),
        ("select * from nba.team_stats_panel(%s, %s, 'season')", ([LAL, GSW], [NOW, later])),
        ("select * from nba.standings_as_of(%s)", (NOW,)),
    ]
    for query, params in queries:
        answer = _rows(make_conninfo(role_model.dsn, dbname=NBA, user=login), query, params)
        assert answer, query
        assert answer == _rows(make_conninfo(role_model.dsn, dbname=NBA), query, params)  # the superuser's
