"""Feed fidelity on a real PostgreSQL: foul kinds, free-throw values and feed event ids (sql V0004).

- a technical (and the other non-personal fouls) stays on the player's events
  but is not in `fouls`, for players and teams, in every scope; flagrant and
  offensive fouls count;
- two- and three-point free throws score their value and count as FTM/FTA;
- an 11-column events.csv loads exactly as the same data with the new columns empty;
- a bad value gives one `file:line: reason` line and changes nothing;
- a correction of the foul kind alone is a change, and rebuilds the game's lines.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from temporaldb.cli import EXIT_BAD_INPUT, main
from temporaldb.feeds.model import FOUL_KINDS
from temporaldb.feeds.model import NON_PERSONAL_FOUL_KINDS as MODEL_NON_PERSONAL
from temporaldb.load import LoadError, load_directory
from tests.nbadata import (
    EVENT_COLUMNS,
    NON_PERSONAL_FOUL_KINDS,
    OPTIONAL_EVENT_COLUMNS,
    PLAYERS,
    STATS,
    TEAMS,
    Event,
    League,
    reference_line,
    write_csv,
    write_league,
)
from tests.test_asof_property import leagues, moments_of, reset
from tests.test_load import (
    CLARKSON,
    FINAL,
    GOBERT,
    HAND_MADE,
    HAYWARD,
    KOBE,
    LAL,
    OPENER,
    TIP,
    UTA,
    as_of,
    fingerprint,
    line,
)

MS = dt.timedelta(milliseconds=1)
AFTER = TIP + dt.timedelta(hours=3)
SCOPES = ("career", "season", "game")


def fid(
    game: int, number: int, seconds: int, kind: str, team: int | None, player: int | None, *,
    points: int = 0, foul_kind: str | None = None, ft_value: int | None = None, source: str | None = None,
) -> Event:  # fmt: skip
    tip = TIP if game == FINAL else TIP - dt.timedelta(days=3)
    return Event(
        game, number, 1, "11:00", tip + dt.timedelta(seconds=seconds), kind, team, player, None, points, False,
        foul_kind, ft_value, source,
    )  # fmt: skip


# Clarkson's only event of the opener is a technical: he played, with no foul counted.
FIDELITY = League(
    teams=HAND_MADE.teams,
    players=HAND_MADE.players,
    games=HAND_MADE.games,
    events=(
        fid(OPENER, 1, 0, "period_start", None, None),
        fid(OPENER, 2, 30, "foul", LAL, CLARKSON, foul_kind="technical", source="v2:7"),
        fid(FINAL, 1, 0, "period_start", None, None, source="live:1"),
        fid(FINAL, 2, 10, "foul", LAL, KOBE, foul_kind="technical", source="live:2"),
        fid(FINAL, 3, 20, "foul", LAL, KOBE, foul_kind="personal"),
        fid(FINAL, 4, 30, "foul", UTA, GOBERT, foul_kind="flagrant_1"),
        fid(FINAL, 5, 40, "foul", UTA, HAYWARD, foul_kind="offensive"),
        fid(FINAL, 6, 50, "foul", UTA, GOBERT, foul_kind="defensive_3_seconds"),
        fid(FINAL, 7, 60, "foul", LAL, None, foul_kind="delay_technical"),  # on the team, no player
        fid(FINAL, 8, 70, "foul", LAL, CLARKSON, foul_kind="double_technical"),
        fid(FINAL, 9, 80, "foul", UTA, HAYWARD),  # no kind: personal, as in data from before foul kinds
        fid(FINAL, 10, 90, "ft_made", LAL, KOBE, points=2, ft_value=2, source='a,b "quoted" id'),
        fid(FINAL, 11, 100, "ft_made", LAL, KOBE, points=3, ft_value=3),
        fid(FINAL, 12, 110, "ft_missed", LAL, KOBE, ft_value=2),
        fid(FINAL, 13, 120, "ft_made", LAL, KOBE, points=1),
        fid(FINAL, 14, 130, "ft_missed", UTA, HAYWARD, ft_value=3),
        fid(FINAL, 15, 140, "ft_made", UTA, HAYWARD, points=1, ft_value=1, source=" spaced "),
    ),
)
# Worked out by hand: per subject, its line after both games in career and season scope, and in game scope.
EXPECTED = {
    ("player_stats_as_of", KOBE): (line(games_played=1, points=6, ftm=3, fta=4, fouls=1),) * 2,
    ("player_stats_as_of", CLARKSON): (line(games_played=2), line(games_played=1)),
    ("player_stats_as_of", GOBERT): (line(games_played=1, fouls=1),) * 2,
    ("player_stats_as_of", HAYWARD): (line(games_played=1, points=1, ftm=1, fta=2, fouls=2),) * 2,
    ("team_stats_as_of", LAL): (line(games_played=2, points=6, ftm=3, fta=4, fouls=1),
                                line(games_played=1, points=6, ftm=3, fta=4, fouls=1)),
    ("team_stats_as_of", UTA): (line(games_played=1, points=1, ftm=1, fta=2, fouls=3),) * 2,  # no event in the opener
}  # fmt: skip
SUBJECTS = [("p", player.player_id) for player in PLAYERS] + [("t", team.team_id) for team in TEAMS]


@pytest.fixture
def fidelity(database: str, tmp_path: Path) -> str:
    load_directory(database, write_league(tmp_path / "fidelity", FIDELITY))
    return database


def assert_matches_reference(dsn: str, league: League, moments: list[dt.datetime]) -> None:
    with psycopg.connect(dsn) as connection:
        for moment in moments:
            for kind, subject in SUBJECTS:
                function = "nba.player_stats_as_of" if kind == "p" else "nba.team_stats_as_of"
                for scope in SCOPES:
                    for season_type in ("regular", "playoffs", "all"):
                        row = connection.execute(
                            f"select * from {function}(%s, %s, %s, %s)", (subject, moment, scope, season_type)
                        ).fetchone()
                        expected = reference_line(league, kind, subject, moment, scope, season_type)
                        assert row == expected, (kind, subject, moment.isoformat(), scope, season_type)


# --- (a) foul kinds and (b) free-throw values ---------------------------------------------------------


@pytest.mark.parametrize(("function", "subject"), list(EXPECTED))
def test_lines_count_personal_fouls_and_free_throw_values(fidelity: str, function: str, subject: int) -> None:
    whole, game = EXPECTED[function, subject]
    assert as_of(fidelity, function, subject, AFTER, "career") == whole
    assert as_of(fidelity, function, subject, AFTER, "season", "all") == whole
    assert as_of(fidelity, function, subject, AFTER, "game") == game


def test_in_progress_and_finished_answers_equal_the_reference(fidelity: str) -> None:
    # Every event's moment and a millisecond either side: in-progress answers come from nba.event_credits.
    assert_matches_reference(fidelity, FIDELITY, moments_of(FIDELITY))


def test_technicals_stay_on_the_players_events(fidelity: str) -> None:
    with psycopg.connect(fidelity) as connection:
        technicals = connection.execute(
            "select game_id, player_id, team_id from nba.play_by_play where foul_kind = 'technical' order by game_id"
        ).fetchall()
        box = connection.execute(
            "select game_id, fouls from nba.player_stats where player_id = %s order by tipoff_at", (CLARKSON,)
        ).fetchall()
        team_box = connection.execute(
            "select game_id, fouls, points, ftm, fta from nba.team_stats where team_id = %s order by tipoff_at", (LAL,)
        ).fetchall()
    assert technicals == [(OPENER, CLARKSON, LAL), (FINAL, KOBE, LAL)]
    assert box == [(OPENER, 0), (FINAL, 0)]  # two games played, no personal foul
    assert team_box == [(OPENER, 0, 0, 0, 0), (FINAL, 1, 6, 3, 4)]


def test_three_point_free_throw_counts_at_its_moment(fidelity: str) -> None:
    three = TIP + dt.timedelta(seconds=100)
    assert as_of(fidelity, "player_stats_as_of", KOBE, three - MS, "game") == line(
        games_played=1, points=2, ftm=1, fta=1, fouls=1
    )
    assert as_of(fidelity, "player_stats_as_of", KOBE, three, "game") == line(
        games_played=1, points=5, ftm=2, fta=2, fouls=1
    )


def test_every_foul_kind_loads_and_only_personal_ones_count(database: str, tmp_path: Path) -> None:
    assert NON_PERSONAL_FOUL_KINDS == MODEL_NON_PERSONAL  # the reference's copy of the rule
    assert NON_PERSONAL_FOUL_KINDS < FOUL_KINDS
    fouls = tuple(
        fid(FINAL, number, number, "foul", UTA, GOBERT, foul_kind=kind)
        for number, kind in enumerate(sorted(FOUL_KINDS), start=1)
    )
    league = dataclasses.replace(FIDELITY, events=fouls)
    load_directory(database, write_league(tmp_path / "kinds", league))
    personal = len(FOUL_KINDS - NON_PERSONAL_FOUL_KINDS)
    assert as_of(database, "player_stats_as_of", GOBERT, AFTER, "career") == line(games_played=1, fouls=personal)
    assert as_of(database, "team_stats_as_of", UTA, AFTER, "game") == line(games_played=1, fouls=personal)


INSERT_EVENT = """
insert into nba.play_by_play (game_id, event_num, period, clock, wall_clock_time, event_type, team_id, player_id,
                              points, is_three, foul_kind, ft_value)
values (1, 1, 1, '11:00', now(), %s, %s, %s, %s, false, %s, %s)
"""


@pytest.mark.parametrize(
    ("event_type", "points", "foul_kind", "ft_value", "constraint"),
    [
        ("foul", 0, "tech", None, "foul_kind_only_on_fouls"),
        ("fg_missed", 0, "personal", None, "foul_kind_only_on_fouls"),
        ("ft_made", 4, None, 4, "ft_value_only_on_free_throws"),
        ("foul", 0, None, 1, "ft_value_only_on_free_throws"),
        ("ft_made", 2, None, None, "points_follow_event_type"),
        ("ft_made", 1, None, 2, "points_follow_event_type"),
        ("ft_missed", 2, None, 2, "points_follow_event_type"),
    ],
)
def test_the_table_refuses_what_the_loader_refuses(
    database: str, event_type: str, points: int, foul_kind: str | None, ft_value: int | None, constraint: str
) -> None:
    """The migration's constraints hold whoever writes, not only the loader; a three-point free throw passes."""
    with psycopg.connect(database) as connection:
        with pytest.raises(psycopg.errors.CheckViolation) as caught:
            connection.execute(INSERT_EVENT, (event_type, LAL, KOBE, points, foul_kind, ft_value))
        assert caught.value.diag.constraint_name == constraint
        connection.rollback()
        connection.execute(INSERT_EVENT, ("ft_made", LAL, KOBE, 3, None, 3))
        connection.execute("update nba.play_by_play set event_type = 'foul', points = 0, ft_value = null")
        connection.execute("update nba.play_by_play set foul_kind = 'flagrant_2'")


# --- (c) old files ------------------------------------------------------------------------------------


def _shuffled_columns(rng: random.Random) -> list[str]:
    """All required columns and a random subset of the optional ones, in a random order."""
    columns = [*EVENT_COLUMNS, *(name for name in OPTIONAL_EVENT_COLUMNS if rng.random() < 0.5)]
    rng.shuffle(columns)
    return columns


@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(league=leagues(), seed=st.integers())
def test_an_eleven_column_file_loads_as_the_same_data_with_empty_new_columns(
    database: str, tmp_path_factory: pytest.TempPathFactory, league: League, seed: int
) -> None:
    folder = tmp_path_factory.mktemp("old")
    reset(database)
    old = write_league(folder / "eleven", league, optional_columns=False)
    assert (old / "events.csv").read_text().splitlines()[0] == ",".join(EVENT_COLUMNS)
    load_directory(database, old)
    expected = fingerprint(database)

    reset(database)
    load_directory(database, write_league(folder / "fourteen", league, optional_columns=True))
    assert fingerprint(database) == expected

    reset(database)
    mixed = write_league(folder / "mixed", league)
    write_csv(mixed / "events.csv", league.events, _shuffled_columns(random.Random(seed)))
    load_directory(database, mixed)
    assert fingerprint(database) == expected
    # Loading the old file again over the mixed one changes nothing.
    assert load_directory(database, old).events_changed == 0
    assert fingerprint(database) == expected


# --- property: random foul kinds, free-throw values and feed ids ---------------------------------------

SOURCE_IDS = st.none() | st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=6)


@st.composite
def fidelity_leagues(draw: st.DrawFn) -> League:
    """A random league whose fouls get random kinds and whose free throws random values."""
    league = draw(leagues())
    events = []
    for original in league.events:
        event = dataclasses.replace(original, source_event_id=draw(SOURCE_IDS))
        if event.event_type == "foul":
            event = dataclasses.replace(event, foul_kind=draw(st.sampled_from([None, *sorted(FOUL_KINDS)])))
        elif event.event_type in ("ft_made", "ft_missed"):
            value = draw(st.sampled_from([None, 1, 2, 3]))
            points = (value or 1) if event.event_type == "ft_made" else 0
            event = dataclasses.replace(event, ft_value=value, points=points)
        events.append(event)
    return dataclasses.replace(league, events=tuple(events))


def _other_kinds(league: League, rng: random.Random) -> tuple[Event, ...]:
    """The same events with other foul kinds (counted or not) and no feed ids: a wrong first version."""
    return tuple(
        dataclasses.replace(e, foul_kind=rng.choice([None, "technical", "shooting"]), source_event_id=None)
        if e.event_type == "foul"
        else e
        for e in league.events
    )


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(league=fidelity_leagues(), corrected=st.booleans(), data=st.data())
def test_as_of_with_foul_kinds_and_free_throw_values_matches_the_reference(
    database: str, tmp_path_factory: pytest.TempPathFactory, league: League, corrected: bool, data: st.DataObject
) -> None:
    folder = tmp_path_factory.mktemp("fidelity")
    reset(database)
    if corrected:
        wrong = _other_kinds(league, random.Random(data.draw(st.integers())))
        load_directory(database, write_league(folder / "wrong", league, events=wrong, optional_columns=True))
    load_directory(database, write_league(folder / "right", league, optional_columns=True))
    moments = data.draw(st.lists(st.sampled_from(moments_of(league)), min_size=3, max_size=6, unique=True))
    assert_matches_reference(database, league, moments)
    with psycopg.connect(database) as connection:
        stored = {
            (game, number): (kind, value, source)
            for game, number, kind, value, source in connection.execute(
                "select game_id, event_num, foul_kind, ft_value, source_event_id from nba.play_by_play"
            )
        }
    assert stored == {
        (e.game_id, e.event_num): (e.foul_kind, e.ft_value, e.source_event_id or None) for e in league.events
    }


# --- (d) bad values -------------------------------------------------------------------------------------

ROW = f"{FINAL},99,1,10:00,2016-04-14T02:40:00.000+00:00"
BAD_ROWS = [
    (f"{ROW},foul,{UTA},{GOBERT},,0,false,tech,,", "unknown foul_kind 'tech' (one of away_from_play, "),
    (f"{ROW},fg_missed,{UTA},{GOBERT},,0,false,personal,,", "foul_kind personal on a fg_missed event"),
    (f"{ROW},ft_made,{LAL},{KOBE},,1,false,,0,", "ft_value must be between 1 and 3, got 0"),
    (f"{ROW},ft_made,{LAL},{KOBE},,4,false,,4,", "ft_value must be between 1 and 3, got 4"),
    (f"{ROW},ft_made,{LAL},{KOBE},,2,false,,two,", "ft_value must be a whole number, got 'two'"),
    (f"{ROW},ft_made,{LAL},{KOBE},,1,false,,-1,", "ft_value must be a whole number, got '-1'"),
    (f"{ROW},foul,{UTA},{GOBERT},,0,false,,2,", "ft_value on a foul event"),
    (f"{ROW},ft_made,{LAL},{KOBE},,1,false,,2,", "points 1 contradict event_type ft_made with ft_value 2 (expected 2)"),
    (f"{ROW},ft_made,{LAL},{KOBE},,2,false,,,", "points 2 contradict event_type ft_made (expected 1)"),
    (f"{ROW},ft_missed,{LAL},{KOBE},,2,false,,2,", "points 2 contradict event_type ft_missed (expected 0)"),
    (f"{ROW},foul,{UTA},{GOBERT},,0,false,personal,", "expected 14 fields, found 13"),
]  # fmt: skip


def _with_bad_row(folder: Path, row: str) -> Path:
    events = folder / "events.csv"
    events.write_text(events.read_text() + row + "\n")
    return folder


@pytest.mark.parametrize(("row", "reason"), BAD_ROWS)
def test_bad_value_names_file_line_and_reason_and_changes_nothing(
    fidelity: str, tmp_path: Path, row: str, reason: str
) -> None:
    before = fingerprint(fidelity)
    folder = _with_bad_row(write_league(tmp_path / "bad", FIDELITY, optional_columns=True), row)
    with pytest.raises(LoadError) as caught:
        load_directory(fidelity, folder)
    message = str(caught.value)
    assert message.startswith(f"events.csv:{len(FIDELITY.events) + 2}: "), message
    assert reason in message
    assert "\n" not in message
    assert fingerprint(fidelity) == before


OPTIONAL_NAMED = "points,is_three and optionally foul_kind, ft_value, source_event_id"


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (",foul_type", "events.csv:1: unknown column foul_type; the columns are game_id,event_num,"),
        (",foul_type,x", "events.csv:1: unknown columns foul_type, x; the columns are game_id,event_num,"),
        (",foul_kind,foul_kind", "events.csv:1: header must name the columns game_id,event_num,"),
    ],
)
def test_bad_header_is_named_and_changes_nothing(fidelity: str, tmp_path: Path, header: str, reason: str) -> None:
    before = fingerprint(fidelity)
    folder = write_league(tmp_path / "header", FIDELITY, optional_columns=False)
    events = folder / "events.csv"
    first, *rest = events.read_text().splitlines()
    events.write_text("\n".join([first + header, *rest]) + "\n")
    with pytest.raises(LoadError) as caught:
        load_directory(fidelity, folder)
    message = str(caught.value)
    assert message.startswith(reason), message
    assert ("unknown column" not in reason) or OPTIONAL_NAMED in message
    assert fingerprint(fidelity) == before


def test_bad_value_on_a_first_load_is_one_line_and_changes_nothing(
    database: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = fingerprint(database)
    folder = _with_bad_row(write_league(tmp_path / "bad", FIDELITY, optional_columns=True), BAD_ROWS[0][0])
    assert main(["load", "--dsn", database, str(folder)]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert f"events.csv:{len(FIDELITY.events) + 2}: unknown foul_kind 'tech'" in err
    assert fingerprint(database) == before


# --- (e) corrections ------------------------------------------------------------------------------------


def _changed(events: tuple[Event, ...], number: int, **changes: Any) -> tuple[Event, ...]:
    """The events with event (FINAL, number) changed."""
    return tuple(
        dataclasses.replace(e, **changes) if (e.game_id, e.event_num) == (FINAL, number) else e for e in events
    )


@pytest.mark.parametrize("replace_games", [False, True])
def test_a_correction_of_the_foul_kind_alone_rebuilds_the_games_lines(
    fidelity: str, tmp_path: Path, replace_games: bool
) -> None:
    events = _changed(FIDELITY.events, 4, foul_kind="technical")  # Gobert's flagrant
    summary = load_directory(
        fidelity, write_league(tmp_path / "fix", FIDELITY, events=events), replace_games=replace_games
    )
    assert (summary.events_changed, summary.games_rebuilt) == (1, 1)
    assert as_of(fidelity, "player_stats_as_of", GOBERT, AFTER, "career") == line(games_played=1)
    assert as_of(fidelity, "team_stats_as_of", UTA, AFTER, "game") == line(
        games_played=1, points=1, ftm=1, fta=2, fouls=2
    )
    corrected = fingerprint(fidelity)
    reset(fidelity)
    load_directory(fidelity, write_league(tmp_path / "scratch", FIDELITY, events=events))
    assert fingerprint(fidelity) == corrected


def test_a_change_of_feed_id_or_free_throw_value_alone_is_a_change(fidelity: str, tmp_path: Path) -> None:
    new_id = _changed(FIDELITY.events, 4, source_event_id="v3:4")
    summary = load_directory(fidelity, write_league(tmp_path / "id", FIDELITY, events=new_id))
    assert summary.events_changed == 1
    no_value = _changed(new_id, 12, ft_value=None)  # Kobe's missed two-pointer: now a missed one-pointer
    summary = load_directory(fidelity, write_league(tmp_path / "ft", FIDELITY, events=no_value))
    assert (summary.events_changed, summary.games_rebuilt) == (1, 1)
    with psycopg.connect(fidelity) as connection:
        assert connection.execute(
            "select source_event_id, ft_value from nba.play_by_play where (game_id, event_num) in ((%s, 4), (%s, 12))"
            " order by event_num",
            (FINAL, FINAL),
        ).fetchall() == [("v3:4", None), (None, None)]


def test_an_old_file_over_new_data_clears_the_new_columns(fidelity: str, tmp_path: Path) -> None:
    """An 11-column file means "no foul kinds": loaded over kinds, it clears them and every foul counts."""
    plain = tuple(dataclasses.replace(e, foul_kind=None) for e in FIDELITY.events if e.event_type == "foul")
    load_directory(fidelity, write_league(tmp_path / "old", FIDELITY, events=plain, optional_columns=False))
    assert as_of(fidelity, "player_stats_as_of", GOBERT, AFTER, "career") == line(games_played=1, fouls=2)
    assert as_of(fidelity, "player_stats_as_of", KOBE, AFTER, "career")[STATS.index("fouls")] == 2
