"""Loading on a real PostgreSQL: stat rules on hand-made games, bad rows, reloads, stranded data."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import psycopg
import pytest

from temporaldb.cli import EXIT_BAD_INPUT, EXIT_OK, main
from temporaldb.load import LoadError, load_directory
from tests.nbadata import PLAYERS, STATS, TEAMS, UTC, Event, Game, League, write_csv, write_league

LAL, UTA, GSW = (team.team_id for team in TEAMS)
KOBE, CLARKSON, HAYWARD, GOBERT = 977, 1001, 2001, 2002
TIP = dt.datetime(2016, 4, 14, 2, 30, tzinfo=UTC)  # Kobe's last game, 10:30 PM ET
EARLIER = TIP - dt.timedelta(days=3)
FINAL, OPENER = 21501228, 21501100


def event(game: int, number: int, seconds: int, kind: str, team: int | None, player: int | None,
          secondary: int | None = None, points: int = 0, three: bool = False) -> Event:  # fmt: skip
    tip = TIP if game == FINAL else EARLIER
    return Event(game, number, 1, "11:00", tip + dt.timedelta(seconds=seconds), kind, team, player, secondary,
                 points, three)  # fmt: skip


# Two games, each event chosen to exercise one rule; the expected lines below are worked out by hand.
HAND_MADE = League(
    teams=TEAMS,
    players=PLAYERS,
    games=(
        Game(OPENER, "2015-16", "regular", UTA, LAL, EARLIER),
        Game(FINAL, "2015-16", "regular", LAL, UTA, TIP),
    ),
    events=(
        event(OPENER, 1, 0, "period_start", None, None),
        event(OPENER, 2, 10, "fg_made", LAL, KOBE, CLARKSON, 3, True),  # Kobe 3 pts, 3PM; Clarkson assist
        event(OPENER, 3, 20, "fg_missed", UTA, HAYWARD, KOBE),  # Hayward FGA; Kobe block
        event(OPENER, 4, 25, "rebound_def", LAL, KOBE),
        event(FINAL, 1, 0, "period_start", None, None),
        event(FINAL, 2, 5, "jump_ball", LAL, KOBE),  # no stat, but Kobe has played
        event(FINAL, 3, 30, "fg_made", LAL, KOBE, None, 2),
        event(FINAL, 4, 60, "turnover", UTA, HAYWARD, KOBE),  # Hayward TOV; Kobe steal
        event(FINAL, 5, 90, "ft_made", LAL, KOBE, None, 1),
        event(FINAL, 6, 120, "ft_missed", LAL, KOBE),
        event(FINAL, 7, 150, "rebound_off", UTA, None),  # team rebound: UTA only
        event(FINAL, 8, 170, "foul", UTA, GOBERT),
        event(FINAL, 9, 170, "substitution", LAL, CLARKSON, KOBE),  # Clarkson in, Kobe out
        event(FINAL, 10, 200, "fg_missed", LAL, CLARKSON, None, 0, True),
    ),
)


def line(**stats: int) -> tuple[int, ...]:
    return tuple(stats.get(name, 0) for name in STATS)


def as_of(
    dsn: str, function: str, subject: int, moment: dt.datetime, scope: str, kind: str = "regular"
) -> tuple[int, ...]:
    with psycopg.connect(dsn) as connection:
        row = connection.execute(
            f"select * from nba.{function}(%s, %s, %s, %s)", (subject, moment, scope, kind)
        ).fetchone()
    assert row is not None
    return tuple(row)


def fingerprint(dsn: str) -> tuple[object, ...]:
    """Everything the loader may change, in a comparable form."""
    with psycopg.connect(dsn) as connection:
        return tuple(
            connection.execute(
                f"select count(*), md5(coalesce(string_agg(t::text, '|' order by t::text), '')) from {table} t"
            ).fetchone()
            for table in ("nba.teams", "nba.players", "nba.games", "nba.play_by_play", "nba.stat_lines", "nba.seasons")
        )


@pytest.fixture
def loaded(database: str, tmp_path: Path) -> str:
    load_directory(database, write_league(tmp_path / "hand", HAND_MADE))
    return database


def test_player_lines_follow_the_stat_rules(loaded: str) -> None:
    after = TIP + dt.timedelta(hours=3)
    assert as_of(loaded, "player_stats_as_of", KOBE, after, "career") == line(
        games_played=2, points=6, fgm=2, fga=2, fg3m=1, fg3a=1, ftm=1, fta=2, dreb=1, rebounds=1, steals=1, blocks=1
    )
    assert as_of(loaded, "player_stats_as_of", CLARKSON, after, "career") == line(
        games_played=2, fga=1, fg3a=1, assists=1
    )
    assert as_of(loaded, "player_stats_as_of", HAYWARD, after, "career") == line(games_played=2, fga=1, turnovers=1)
    assert as_of(loaded, "player_stats_as_of", GOBERT, after, "career") == line(games_played=1, fouls=1)


def test_team_lines_count_team_rebounds_and_their_players_defence(loaded: str) -> None:
    after = TIP + dt.timedelta(hours=3)
    assert as_of(loaded, "team_stats_as_of", LAL, after, "season") == line(
        games_played=2, points=6, fgm=2, fga=3, fg3m=1, fg3a=2, ftm=1, fta=2, dreb=1, rebounds=1, assists=1,
        steals=1, blocks=1,
    )  # fmt: skip
    assert as_of(loaded, "team_stats_as_of", UTA, after, "season") == line(
        games_played=2, fga=1, oreb=1, rebounds=1, turnovers=1, fouls=1
    )
    assert as_of(loaded, "team_stats_as_of", GSW, after, "season") == line()


def test_the_moment_counts_events_up_to_and_including_it(loaded: str) -> None:
    made = TIP + dt.timedelta(seconds=30)
    before = as_of(loaded, "player_stats_as_of", KOBE, made - dt.timedelta(milliseconds=1), "game")
    at = as_of(loaded, "player_stats_as_of", KOBE, made, "game")
    assert before == line(games_played=1)  # the jump ball: playing, no stats yet
    assert at == line(games_played=1, points=2, fgm=1, fga=1)
    assert as_of(loaded, "player_stats_as_of", KOBE, made, "career")[:2] == (2, 5)
    # Retired: June 19, 2016, 7:02:34.560 PM CDT gives the final line, and no game in progress.
    june = dt.datetime(2016, 6, 19, 19, 2, 34, 560000, tzinfo=dt.timezone(dt.timedelta(hours=-5)))
    assert as_of(loaded, "player_stats_as_of", KOBE, june, "career") == as_of(
        loaded, "player_stats_as_of", KOBE, TIP + dt.timedelta(hours=5), "career"
    )


def test_a_team_game_starts_at_tip_off_not_at_its_first_event(loaded: str) -> None:
    # At TIP + 20 s only the Lakers have an event: Utah's game is still this one, with nothing yet.
    assert as_of(loaded, "team_stats_as_of", UTA, TIP + dt.timedelta(seconds=20), "game") == line()
    assert as_of(loaded, "team_stats_as_of", UTA, TIP - dt.timedelta(seconds=1), "game") == line(games_played=1, fga=1)


def test_before_anything_is_a_row_of_zeros(loaded: str) -> None:
    for scope in ("career", "season", "game"):
        assert as_of(loaded, "player_stats_as_of", KOBE, EARLIER - dt.timedelta(days=1), scope) == line()


@pytest.mark.parametrize(
    ("argument", "value", "message"),
    [
        ("scope", "decade", "p_scope must be one of career, season, game"),
        ("season_type", "preseason", "p_season_type must be one of regular, playoffs, all"),
    ],
)
def test_bad_scope_or_season_type_names_the_allowed_values(
    loaded: str, argument: str, value: str, message: str
) -> None:
    scope, kind = (value, "regular") if argument == "scope" else ("career", value)
    with pytest.raises(psycopg.errors.InvalidParameterValue, match=message):
        as_of(loaded, "player_stats_as_of", KOBE, TIP, scope, kind)


def test_loading_the_same_folder_twice_changes_nothing(database: str, tmp_path: Path) -> None:
    folder = write_league(tmp_path / "hand", HAND_MADE)
    load_directory(database, folder)
    before = fingerprint(database)
    summary = load_directory(database, folder)
    assert (summary.events_changed, summary.games_rebuilt) == (0, 0)
    assert fingerprint(database) == before


def test_gzip_input_loads_the_same(database: str, tmp_path: Path) -> None:
    import gzip

    folder = write_league(tmp_path / "gz", HAND_MADE)
    for path in folder.glob("*.csv"):
        path.with_name(path.name + ".gz").write_bytes(gzip.compress(path.read_bytes()))
        path.unlink()
    load_directory(database, folder)
    assert as_of(database, "player_stats_as_of", KOBE, TIP + dt.timedelta(hours=3), "career")[1] == 6


def _with_event_row(folder: Path, row: str) -> Path:
    """The hand-made league with one raw line appended to events.csv (line 16)."""
    events = folder / "events.csv"
    events.write_text(events.read_text() + row + "\n")
    return folder


BAD_ROWS = [
    (f"{FINAL},11,1,10:00,2016-04-14T02:40:00.000+00:00,dunk,{LAL},{KOBE},,2,false", "unknown event_type 'dunk'"),
    (f"{FINAL},11,1,10:00,2016-04-14T02:40:00.000+00:00,fg_made,{LAL},{KOBE},,3,false",
     "points 3 contradict event_type fg_made with is_three false (expected 2)"),
    (f"{FINAL},11,1,10:00,2016-04-14T02:40:00.000+00:00,ft_missed,{LAL},{KOBE},,1,false",
     "points 1 contradict event_type ft_missed (expected 0)"),
    (f"99999999,11,1,10:00,2016-04-14T02:40:00.000+00:00,foul,{LAL},{KOBE},,0,false", "unknown game_id 99999999"),
    (f"{FINAL},11,1,10:00,2016-04-14 25:40:00,foul,{LAL},{KOBE},,0,false", "is not an ISO 8601 timestamp"),
    (f"{FINAL},11,1,10:00,2016-04-14T02:40:00.000,foul,{LAL},{KOBE},,0,false", "needs a UTC offset"),
    (f"{FINAL},11,1,10:00,2016-04-15T02:40:00.000+00:00,foul,{LAL},{KOBE},,0,false", "is outside game 21501228"),
    (f"{FINAL},11,1,10:00,2016-04-14T02:40:00.000+00:00,foul,{GSW},{KOBE},,0,false", "team_id 1610612744 does not"),
    (f"{FINAL},11,1,10:00,2016-04-14T02:40:00.000+00:00,foul,{LAL},424242,,0,false", "unknown player_id 424242"),
    (f"{FINAL},11,1,10:00,2016-04-14T02:40:00.000+00:00,foul,{LAL},{KOBE},{CLARKSON},0,false",
     "a foul event has no secondary player"),
    (f"{FINAL},11,1,1000,2016-04-14T02:40:00.000+00:00,foul,{LAL},{KOBE},,0,false", "clock must look like MM:SS"),
    (f"{FINAL},11,1,10:00,2016-04-14T02:40:00.000+00:00,foul,{LAL},{KOBE},,0", "expected 11 fields, found 10"),
    (f"{FINAL},x1,1,10:00,2016-04-14T02:40:00.000+00:00,foul,{LAL},{KOBE},,0,false", "event_num must be a whole"),
    (f"{FINAL},11,1,10:00,2016-04-14T02:40:00.000+00:00,turnover,,,{KOBE},0,false", "needs the team_id it belongs"),
    (f"{FINAL},11,1,10:00,2016-04-14T02:40:00.000+00:00,period_end,{LAL},,,0,false", "has no team_id or player_id"),
]  # fmt: skip


@pytest.mark.parametrize(("row", "reason"), BAD_ROWS)
def test_bad_row_names_file_line_and_reason_and_changes_nothing(
    loaded: str, tmp_path: Path, row: str, reason: str
) -> None:
    before = fingerprint(loaded)
    folder = _with_event_row(write_league(tmp_path / "bad", HAND_MADE), row)
    with pytest.raises(LoadError) as caught:
        load_directory(loaded, folder)
    assert str(caught.value).startswith(f"events.csv:{len(HAND_MADE.events) + 2}: ")
    assert reason in str(caught.value)
    assert fingerprint(loaded) == before


def test_bad_row_on_a_first_load_changes_nothing(
    database: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = fingerprint(database)
    folder = _with_event_row(write_league(tmp_path / "bad", HAND_MADE), BAD_ROWS[0][0])
    assert main(["load", "--dsn", database, str(folder)]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert "events.csv:16: unknown event_type 'dunk'" in err
    assert "nothing was changed" in err
    assert fingerprint(database) == before


def test_duplicate_event_is_refused(database: str, tmp_path: Path) -> None:
    duplicated = (*HAND_MADE.events, HAND_MADE.events[-1])
    folder = write_league(tmp_path / "dup", HAND_MADE, events=duplicated)
    with pytest.raises(LoadError, match=rf"appears more than once \(game_id {FINAL}, event_num 10\)"):
        load_directory(database, folder)
    assert fingerprint(database)[3][0] == 0


def test_duplicate_game_line_is_refused(database: str, tmp_path: Path) -> None:
    folder = write_league(tmp_path / "dupgame", HAND_MADE)
    games = folder / "games.csv"
    games.write_text(games.read_text() + games.read_text().splitlines()[1] + "\n")
    with pytest.raises(LoadError, match=rf"games.csv:4: game_id {OPENER} already appears on line 2"):
        load_directory(database, folder)


def test_moving_a_game_away_from_its_events_is_refused(loaded: str, tmp_path: Path) -> None:
    before = fingerprint(loaded)
    moved = Game(FINAL, "2015-16", "regular", LAL, UTA, TIP + dt.timedelta(days=1))
    folder = tmp_path / "moved"
    folder.mkdir()
    write_csv(folder / "games.csv", [moved], list(Game.__dataclass_fields__))
    with pytest.raises(LoadError, match=rf"games.csv:2: game {FINAL} no longer fits its stored event"):
        load_directory(loaded, folder)
    assert fingerprint(loaded) == before


def test_overlapping_seasons_are_refused(loaded: str, tmp_path: Path) -> None:
    intruder = Game(21601001, "2016-17", "regular", GSW, LAL, TIP - dt.timedelta(days=1))
    folder = tmp_path / "overlap"
    folder.mkdir()
    write_csv(folder / "games.csv", [intruder], list(Game.__dataclass_fields__))
    with pytest.raises(LoadError, match=r"seasons 2015-16 .* and 2016-17 .* overlap in time"):
        load_directory(loaded, folder)


def test_cli_load_reports_counts(database: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = write_league(tmp_path / "hand", HAND_MADE)
    assert main(["load", "--dsn", database, str(folder)]) == EXIT_OK
    out = capsys.readouterr().out
    assert "loaded 3 teams, 6 players, 2 games, 14 events" in out


def test_box_line_views_step_the_running_totals(loaded: str) -> None:
    with psycopg.connect(loaded) as connection:
        kobe = connection.execute(
            "select game_id, season_type, points, fgm, fg3m, steals, blocks, rebounds from nba.player_stats"
            " where player_id = %s order by tipoff_at",
            (KOBE,),
        ).fetchall()
        utah = connection.execute(
            "select game_id, points, fga, oreb, turnovers, fouls from nba.team_stats"
            " where team_id = %s order by tipoff_at",
            (UTA,),
        ).fetchall()
    assert kobe == [(OPENER, "regular", 3, 1, 1, 0, 1, 1), (FINAL, "regular", 3, 1, 0, 1, 0, 0)]
    assert utah == [(OPENER, 0, 1, 0, 0, 0), (FINAL, 0, 0, 1, 1, 1)]


def test_a_player_in_two_games_at_once_is_refused(loaded: str, tmp_path: Path) -> None:
    before = fingerprint(loaded)
    clash = Game(21501229, "2015-16", "regular", GSW, UTA, TIP + dt.timedelta(minutes=1))
    folder = tmp_path / "clash"
    write_league(folder, HAND_MADE, events=[event(FINAL, 1, 0, "period_start", None, None)])
    write_csv(folder / "games.csv", [clash], list(Game.__dataclass_fields__))
    events = folder / "events.csv"
    events.write_text(
        events.read_text().splitlines()[0]
        + f"\n21501229,1,1,11:00,2016-04-14T02:35:00.000+00:00,foul,{UTA},{GOBERT},,0,false\n"
    )
    # Gobert and his team both clash; either may be named.
    with pytest.raises(LoadError, match=r"games.csv:2: (player 2002|team 1610612762) would be in two games at once"):
        load_directory(loaded, folder)
    assert fingerprint(loaded) == before
