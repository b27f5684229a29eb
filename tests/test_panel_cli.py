"""`temporaldb panel` as a user runs it, on a real PostgreSQL with a small league (tests/panelfixtures.py).

- CSV, JSON Lines and Parquet equal the SQL panel (and, cell by cell, the one-cell functions); Parquet's types;
- --all is the SQL NULL list, in every scope, for players and teams;
- `--every game` steps at the subjects' game ends; --team --roster; --tz for input and output times;
- chunks of any size give the same bytes as one chunk (and --all in chunks equals its NULL call);
- each bad input: its exit code, one line naming the option, nothing on stdout and no file left behind;
- a reader of stdout that stops early (`| head`) gets one line and exit code 1, no traceback;
- the moments alone (no database): steps, wall-clock days across a daylight-saving change, dates as UTC;
- the analyst login runs panel, plot and the API on the role model.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from psycopg.conninfo import make_conninfo

import temporaldb
from temporaldb import moments, panelfetch, panelquery, panelwrite
from temporaldb.bootstrap import bootstrap
from temporaldb.cli import EXIT_BAD_INPUT, EXIT_DATABASE, EXIT_OK, EXIT_USAGE
from temporaldb.panel import EXIT_STDOUT_CLOSED
from tests.nbadata import STATS, UTC
from tests.panelfixtures import GAME_ENDS, SPAN, Row, csv_rows, load_league, run, sql_panel
from tests.pgservers import ThrowawayServer, available_majors, start_throwaway_server
from tests.test_load import CLARKSON, GOBERT, HAYWARD, KOBE, LAL

DAYS = [dt.datetime(2016, 1, 9, tzinfo=UTC) + dt.timedelta(days=day) for day in range(103)]
"""SPAN every day (2016-01-09 to 2016-04-20, midnight UTC)."""
PLAYERS = f"{KOBE},Gordon Hayward,rudy gobert"
PLAYER_IDS = [KOBE, HAYWARD, GOBERT]
PROJECT = Path(__file__).resolve().parent.parent


@pytest.fixture
def league(database: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    return load_league(database, tmp_path_factory.mktemp("league"))


def panel(capsys: pytest.CaptureFixture[str], dsn: str, *args: str) -> tuple[int, str, str]:
    return run(capsys, "panel", "--from", SPAN[0], "--to", SPAN[1], "--dsn", dsn, *args)


def one_cell(dsn: str, kind: str, rows: list[Row], scope: str, season_type: str) -> list[Row]:
    """The one-cell function's answer for each row's (id, as_of), in the panel's shape."""
    query = f"select {kind}_id, as_of, s.* from (values (%s::bigint, %s::timestamptz)) v({kind}_id, as_of), "
    query += f"nba.{kind}_stats_as_of({kind}_id, as_of, %s, %s) s"
    with psycopg.connect(dsn) as connection:
        return [connection.execute(query, (row[0], row[1], scope, season_type)).fetchall()[0] for row in rows]


# --- the formats equal the SQL ---------------------------------------------------------------------------


def test_csv_equals_the_sql_panel_and_the_one_cell_functions(league: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = panel(capsys, league, "--players", PLAYERS, "--every", "1d", "--scope", "season")
    assert code == EXIT_OK, err
    header, rows = csv_rows(out)
    assert header == ["player_id", "as_of", *STATS]
    expected = sql_panel(league, "player", PLAYER_IDS, DAYS, "season")
    assert rows == expected
    assert len(rows) == 3 * len(DAYS)
    assert rows[::17] == one_cell(league, "player", expected[::17], "season", "regular")  # a sample, cell by cell
    assert out.splitlines()[1].split(",")[1] == "2016-01-09T00:00:00.000+00:00"  # ISO 8601 with its offset
    assert err.splitlines()[-1].startswith("temporaldb panel: 309 cells (3 players x 103 moments) in ")


def test_json_lines_equal_the_sql_panel(league: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = panel(capsys, league, "--team", "LAL", "--every", "1d", "--format", "json", "--season-type", "all")
    assert code == EXIT_OK
    objects = [json.loads(line) for line in out.splitlines()]
    assert list(objects[0]) == ["team_id", "as_of", *STATS]
    rows = [(o["team_id"], dt.datetime.fromisoformat(o["as_of"]), *(o[name] for name in STATS)) for o in objects]
    assert rows == sql_panel(league, "team", [LAL], DAYS, "career", "all")


def test_parquet_keeps_the_types_and_equals_the_sql_panel(
    league: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = tmp_path / "season.parquet"
    code, stdout, _ = panel(capsys, league, "--all", "--every", "1d", "--out", str(out))  # the format from the name
    assert (code, stdout) == (EXIT_OK, "")
    table = pq.read_table(out)
    assert table.schema.field("as_of").type == pa.timestamp("us", tz="UTC")
    assert {table.schema.field(name).type for name in ["player_id", *STATS]} == {pa.int64()}
    rows = [tuple(row.values()) for row in table.to_pylist()]
    assert rows == sql_panel(league, "player", None, DAYS)
    assert [path.name for path in tmp_path.iterdir()] == ["season.parquet"]  # no temporary file left


@pytest.mark.parametrize("jobs", ["1", "3"])
@pytest.mark.parametrize("scope", ["career", "season", "game"])
def test_parquet_in_chunks_on_several_connections_equals_one_sql_call(
    league: str, capsys: pytest.CaptureFixture[str], tmp_path: Path, jobs: str, scope: str
) -> None:
    """Every subject of the league a call (chunks of 103 cells), fetched by 1 or 3 connections: the same rows, in
    the same order, as the SQL panel in one call."""
    out = tmp_path / "panel.parquet"
    args = ("--all", "--every", "1d", "--scope", scope, "--season-type", "all", "--out", str(out))
    code, _, _ = panel(capsys, league, *args, "--chunk-cells", "103", "--jobs", jobs)
    assert code == EXIT_OK
    assert [tuple(row.values()) for row in pq.read_table(out).to_pylist()] == sql_panel(
        league, "player", None, DAYS, scope, "all"
    )


def test_parallel_fetches_read_the_snapshot_of_the_first_connection(
    league: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A change committed after the panel began, before the other connections start, is not in it: they import
    the first connection's snapshot."""
    before = sql_panel(league, "player", None, DAYS)
    real_joined = panelfetch._joined
    loads: list[str] = []

    def joined_after_a_load(dsn: str, snapshot: str) -> psycopg.Connection[Any]:
        with psycopg.connect(league, autocommit=True) as other:
            other.execute("update nba.stat_lines set cum_points = cum_points + 1")
        loads.append(snapshot)
        return real_joined(dsn, snapshot)

    monkeypatch.setattr(panelfetch, "_joined", joined_after_a_load)
    try:
        with psycopg.connect(league, autocommit=True) as connection, panelquery.snapshot(connection):
            span = moments.parse_span(SPAN[0], SPAN[1], None)
            when = panelquery.When(span, moments.parse_step("1d"))
            plan = panelquery.plan(connection, panelquery.Who("player"), when)
            fetched = list(panelfetch.tables(connection, plan, chunk_cells=103, dsn=league, jobs=2))
    finally:
        with psycopg.connect(league, autocommit=True) as other:
            other.execute("update nba.stat_lines set cum_points = cum_points - %s", (len(loads),))
    assert len(loads) == 2  # one per connection
    assert len(fetched) == len(plan.ids) > 2  # one call per subject, more calls than connections
    assert [tuple(row.values()) for table in fetched for row in table.to_pylist()] == before


def test_a_server_that_cannot_share_its_snapshot_is_named_with_the_way_out(
    league: str, capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(panelfetch, "EXPORT_SNAPSHOT", "select pg_catalog.no_such_function()")
    out = tmp_path / "panel.parquet"
    args = ("--all", "--every", "1d", "--chunk-cells", "103", "--jobs", "2", "--out", str(out))
    code, _, err = panel(capsys, league, *args)
    assert code == EXIT_BAD_INPUT
    assert_one_line(err, "temporaldb panel: --jobs 2: the server cannot share one snapshot between connections")
    assert err.rstrip().endswith("run with --jobs 1")
    assert list(tmp_path.iterdir()) == []


def test_parquet_is_written_in_row_groups(
    league: str, capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(panelwrite, "ROW_GROUP_ROWS", 100)
    out = tmp_path / "groups.parquet"
    code, _, _ = panel(capsys, league, "--all", "--every", "1d", "--out", str(out), "--chunk-cells", "50")
    assert code == EXIT_OK
    metadata = pq.ParquetFile(out).metadata
    assert metadata.num_row_groups > 1
    assert metadata.num_rows == len(sql_panel(league, "player", None, DAYS))


# --- who and when ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("scope", ["career", "season", "game"])
@pytest.mark.parametrize(("flags", "kind"), [((), "player"), (("--teams",), "team")])
def test_all_is_the_null_list(
    league: str, capsys: pytest.CaptureFixture[str], scope: str, flags: tuple[str, ...], kind: str
) -> None:
    code, out, _ = panel(capsys, league, "--all", *flags, "--every", "1d", "--scope", scope, "--season-type", "all")
    assert code == EXIT_OK
    expected = sql_panel(league, kind, None, DAYS, scope, "all")
    assert expected  # every subject of the league, with rows
    assert csv_rows(out)[1] == expected


def test_game_steps_are_the_ends_of_the_subjects_games(league: str, capsys: pytest.CaptureFixture[str]) -> None:
    # Hayward plays for Utah: the 2015-16 games with a Utah event (G1, G2, the hand-made two; not G4, no events;
    # not G5, a playoff game, in a regular-season panel)
    code, out, _ = panel(capsys, league, "--players", "Gordon Hayward", "--every", "game")
    assert code == EXIT_OK
    rows = csv_rows(out)[1]
    ends = sorted(GAME_ENDS[game] for game in (21500601, 21500602, 21501100, 21501228))
    assert [row[1] for row in rows] == ends
    assert rows == sql_panel(league, "player", [HAYWARD], ends)
    # every game of the span with --all, the playoff game too with --season-type all
    code, out, _ = panel(capsys, league, "--all", "--teams", "--every", "game", "--season-type", "all")
    every_end = sorted(end for game, end in GAME_ENDS.items() if game != 21400900)  # 2014-15 is outside the span
    assert sorted({row[1] for row in csv_rows(out)[1]}) == every_end


def test_roster_is_every_player_with_an_event_for_the_team(league: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = panel(capsys, league, "--team", "Los Angeles Lakers", "--roster", "--every", "1d")
    assert code == EXIT_OK
    rows = csv_rows(out)[1]
    assert sorted({row[0] for row in rows}) == [KOBE, CLARKSON]
    assert rows == sql_panel(league, "player", [KOBE, CLARKSON], DAYS)


def test_tz_reads_and_writes_local_times(league: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Days keep 19:00 in Chicago across the change to daylight-saving time (2016-03-13)."""
    code, out, _ = run(
        capsys, "panel", "--players", str(KOBE), "--from", "2016-03-11T19:00", "--to", "2016-03-15T19:00",
        "--every", "1d", "--tz", "America/Chicago", "--dsn", league,
    )  # fmt: skip
    assert code == EXIT_OK
    times = [line.split(",")[1] for line in out.splitlines()[1:]]
    assert times == [
        "2016-03-11T19:00:00.000-06:00", "2016-03-12T19:00:00.000-06:00", "2016-03-13T19:00:00.000-05:00",
        "2016-03-14T19:00:00.000-05:00", "2016-03-15T19:00:00.000-05:00",
    ]  # fmt: skip


@pytest.mark.parametrize("chunk", ["1", "5", "103", "104", "250"])
@pytest.mark.parametrize("who", [("--players", PLAYERS), ("--all",), ("--all", "--teams")])
def test_chunks_give_the_same_bytes_as_one_chunk(
    league: str, capsys: pytest.CaptureFixture[str], chunk: str, who: tuple[str, ...]
) -> None:
    """1: a call per cell; 5: a subject with 5 moments per call; 103: a subject per call; 104, 250: two
    subjects per call, or (--all, when the panel fits) one call with the NULL list."""
    args = (*who, "--every", "1d", "--scope", "season")
    one = panel(capsys, league, *args)
    chunked = panel(capsys, league, *args, "--chunk-cells", chunk)
    assert one[0] == chunked[0] == EXIT_OK
    assert chunked[1] == one[1]


def test_a_panel_larger_than_a_chunk_of_moments_is_split_by_moments(league: str) -> None:
    with psycopg.connect(league, autocommit=True) as connection, panelquery.snapshot(connection):
        span = moments.parse_span("2016-04-13T00:00Z", "2016-04-15T00:00Z", None)
        when = panelquery.When(span, moments.parse_step("1m"), "game", "regular")
        plan = panelquery.plan(connection, panelquery.Who("player", names=("977",)), when)
        batches = list(panelquery.rows(connection, plan, chunk_cells=1000))
    rows = [row for batch in batches for row in batch]
    assert len(batches) >= 3  # 2,881 moments in calls of 1,000
    assert len(rows) == plan.cells == 2 * 24 * 60 + 1
    every_minute = [plan.moments.at(index) for index in range(plan.cells)]
    assert rows == sql_panel(league, "player", [KOBE], every_minute, "game")


# --- bad input -----------------------------------------------------------------------------------------------

BAD = [
    (("--players", "Nobody Atall", "--every", "1d"), EXIT_BAD_INPUT, "--players: no player named 'Nobody Atall'"),
    (("--players", "o", "--every", "1d"), EXIT_BAD_INPUT, "--players: 'o' matches several players"),
    (("--players", "424242", "--every", "1d"), EXIT_BAD_INPUT, "--players: no player with id 424242"),
    (("--players", "977,,1001", "--every", "1d"), EXIT_BAD_INPUT, "--players '977,,1001' has an empty item"),
    (("--team", "Nowhere", "--every", "1d"), EXIT_BAD_INPUT, "--team: no team named 'Nowhere'"),
    (("--all", "--every", "1w"), EXIT_USAGE, "--every '1w' is not a step"),
    (("--all", "--every", "0d"), EXIT_USAGE, "--every '0d' is not a step"),
    (
        ("--all", "--every", "1d", "--max-cells", "20"),
        EXIT_BAD_INPUT,
        "--max-cells 20: this panel has 515 cells (5 players x 103 moments)",
    ),
    (("--all", "--every", "1d", "--format", "parquet"), EXIT_USAGE, "--format parquet needs --out"),
    (("--players", "977", "--roster", "--every", "1d"), EXIT_USAGE, "--roster needs --team"),
    (("--players", "977", "--teams", "--every", "1d"), EXIT_USAGE, "--teams goes with --all"),
    (("--all", "--every", "1d", "--tz", "Mars/Olympus"), EXIT_BAD_INPUT, "--tz 'Mars/Olympus' is not a time zone"),
    (("--all", "--every", "1d", "--chunk-cells", "0"), EXIT_USAGE, "--chunk-cells 0: must be 1 or more"),
    (("--all", "--every", "1d", "--jobs", "0"), EXIT_USAGE, "--jobs 0: must be 1 to 16"),
]
BAD_TIMES = [
    (("--from", "2016-01-09T00:00", "--to", SPAN[1]), "--from '2016-01-09T00:00' has no UTC offset"),
    (("--from", SPAN[0], "--to", "yesterday"), "--to 'yesterday' is not an ISO 8601 time"),
    (("--from", SPAN[1], "--to", SPAN[0]), "--from '2016-04-20' is after --to '2016-01-09'"),
]


def assert_one_line(err: str, start: str) -> None:
    assert err.count("\n") == 1, err
    assert err.startswith(start), err


@pytest.mark.parametrize(("args", "code", "message"), BAD, ids=[message.split(":")[0] for _, _, message in BAD])
def test_bad_input_is_one_line_and_leaves_no_file(
    league: str, capsys: pytest.CaptureFixture[str], tmp_path: Path, args: tuple[str, ...], code: int, message: str
) -> None:
    folder = tmp_path / "out"
    folder.mkdir()
    out = ["--out", str(folder / "panel.csv")] if "--format" not in args else []
    result = panel(capsys, league, *args, *out)
    assert result[:2] == (code, "")
    assert_one_line(result[2], f"temporaldb panel: {message}")
    assert list(folder.iterdir()) == []


@pytest.mark.parametrize(("times", "message"), BAD_TIMES)
def test_bad_times_say_which_option(
    league: str, capsys: pytest.CaptureFixture[str], times: tuple[str, ...], message: str
) -> None:
    code, out, err = run(capsys, "panel", "--all", "--every", "1d", *times, "--dsn", league)
    assert (code, out) == (EXIT_BAD_INPUT, "")
    assert_one_line(err, f"temporaldb panel: {message}")


def test_unwritable_out_is_refused_before_connecting(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    nowhere = f"host={tmp_path} dbname=nowhere connect_timeout=2"  # connecting would fail with exit code 4
    for target in (tmp_path / "missing" / "panel.csv", tmp_path):
        code, out, err = panel(capsys, nowhere, "--all", "--every", "1d", "--out", str(target))
        assert (code, out) == (EXIT_USAGE, "")
        assert_one_line(err, f"temporaldb panel: --out {target}: ")
    code, _, err = panel(capsys, nowhere, "--all", "--every", "1d", "--out", str(tmp_path / "panel.csv"))
    assert code == EXIT_DATABASE
    assert err.startswith("temporaldb panel: cannot reach the database:")
    assert list(tmp_path.iterdir()) == []


def test_a_failure_while_streaming_leaves_no_file(
    league: str, capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_rows = panelquery.rows

    def broken(*args: object, **kwargs: object) -> Iterator[list[tuple[object, ...]]]:
        batches = real_rows(*args, **kwargs)
        yield next(batches)
        batches.close()
        raise psycopg.OperationalError("server closed the connection unexpectedly")

    real_copy = panelfetch._copy
    copies: list[object] = []

    def broken_copy(*args: Any) -> pa.Table:
        copies.append(args)
        if len(copies) > 1:
            raise psycopg.OperationalError("server closed the connection unexpectedly")
        return real_copy(*args)

    monkeypatch.setattr(panelquery, "rows", broken)
    monkeypatch.setattr(panelfetch, "_copy", broken_copy)
    for name, jobs in (("panel.csv", "1"), ("panel.parquet", "1"), ("panel.parquet", "2")):
        out = str(tmp_path / name)
        copies.clear()
        code, _, err = panel(
            capsys, league, "--all", "--every", "1d", "--chunk-cells", "10", "--out", out, "--jobs", jobs
        )
        assert code == EXIT_DATABASE
        assert err.startswith("temporaldb panel: cannot reach the database: server closed the connection")
    assert list(tmp_path.iterdir()) == []


def test_a_reader_that_stops_early_gets_no_traceback(league: str) -> None:
    """`temporaldb panel ... | head`: one line on stderr and exit code 1 (about 1 MB of CSV, more than a pipe holds)."""
    command = [sys.executable, "-m", "temporaldb.cli", "panel", "--all", "--from", SPAN[0], "--to", SPAN[1],
               "--every", "1h", "--dsn", league]  # fmt: skip
    with subprocess.Popen(command, cwd=PROJECT, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as child:
        assert child.stdout is not None
        assert child.stderr is not None
        assert child.stdout.readline().startswith(b"player_id,as_of,")
        child.stdout.close()
        err = child.stderr.read().decode()
        assert child.wait(timeout=120) == EXIT_STDOUT_CLOSED
    assert err.splitlines()[-1] == "temporaldb panel: stdout was closed by its reader; stopped"
    assert "Traceback" not in err


# --- the moments alone -----------------------------------------------------------------------------------------


def test_steps_include_both_ends_when_they_land() -> None:
    span = moments.parse_span("2016-01-01T00:00Z", "2016-01-01T01:00Z", None)
    quarter = moments.Stepped(span, moments.Step(15, "m"))
    assert len(quarter) == 5
    assert quarter.at(4) == dt.datetime(2016, 1, 1, 1, tzinfo=UTC)
    assert len(moments.Stepped(span, moments.Step(7, "m"))) == 9  # 0, 7, ..., 56
    assert len(moments.Stepped(span, moments.Step(2, "h"))) == 1


def test_a_date_alone_is_midnight_utc_or_in_tz() -> None:
    assert moments.parse_time("2015-10-27", None, "--from") == dt.datetime(2015, 10, 27, tzinfo=UTC)
    chicago = moments.parse_time("2015-10-27", "America/Chicago", "--from")
    assert chicago == dt.datetime(2015, 10, 27, tzinfo=ZoneInfo("America/Chicago"))
    days = moments.Stepped(moments.Span(chicago, chicago + dt.timedelta(days=200)), moments.Step(1, "d"))
    assert len(days) == 201  # the change back to standard time (an hour more) loses no day


# --- the analyst ---------------------------------------------------------------------------------------------

NBA = "nba_temporal"


@pytest.fixture(scope="module", params=available_majors(), ids=[f"pg{major}" for major in available_majors()])
def role_model(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThrowawayServer]:
    """A server of its own with the role model (cluster-wide roles), loaded as etl, as `local start` leaves it."""
    server = start_throwaway_server(request.param, tmp_path_factory.mktemp(f"panelcli{request.param}"))
    try:
        bootstrap(server.dsn, ("nba",))
        load_league(make_conninfo(server.dsn, dbname=NBA, user="etl"), server.root_dir / "league")
        yield server
    finally:
        server.stop()


def test_the_analyst_runs_panels_pictures_and_the_api(
    role_model: ThrowawayServer, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    analyst = make_conninfo(role_model.dsn, dbname=NBA, user="analyst")
    for args in (("--all", "--out", str(tmp_path / "all.parquet")), ("--team", "LAL", "--roster", "--every", "game")):
        every = () if "--every" in args else ("--every", "1d")
        code, _, err = panel(capsys, analyst, *args, *every)
        assert code == EXIT_OK, err
    code, _, err = run(capsys, "plot", "race", "--players", "977,2001", "--from", SPAN[0], "--to", SPAN[1],
                       "--out", str(tmp_path / "race.svg"), "--dsn", analyst)  # fmt: skip
    assert code == EXIT_OK, err
    code, _, err = run(capsys, "plot", "standings", "--season", "2015-16", "--out", str(tmp_path / "s.png"),
                       "--dsn", analyst)  # fmt: skip
    assert code == EXIT_OK, err
    with temporaldb.connect(analyst) as client:
        # 977, 1001, 2001, 2002 and 3001, every day
        assert len(client.panel(players="all", start=SPAN[0], end=SPAN[1])) == 5 * len(DAYS)
        assert client.asof("Kobe Bryant", "2016-06-19T19:02:34.560-05:00")["stats"]["points"] > 0
        assert len(client.standings("2016-04-20")) == 3
