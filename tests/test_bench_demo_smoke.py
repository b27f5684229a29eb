"""`temporaldb bench` and `temporaldb demo` end to end on one generated season, checked against the CSV files.

Both run their real code paths (the bench through the CLI, with its child-process loader; the demo with the
embedded local server, the role model, the generator and the loader) on a league of one season instead of
29 or 3, and their answers are compared with a brute-force Python reading of the generated events
(tests/nbadata.py's reference, which shares no code with the SQL).
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import operator
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from temporaldb import demo, localpg
from temporaldb.cli import EXIT_OK, main
from tests.nbadata import STATS, Event, Game, League, reference_line
from tests.pgservers import ThrowawayServer, available_majors, start_throwaway_server

QUERIES = 300  # per latency round: enough for a p99, small enough for seconds
BENCH_DATABASE = "nba_bench"

# --------------------------------------------------------------------------------------------------------
# The generated CSV files, read back independently of the loader
# --------------------------------------------------------------------------------------------------------


def _optional_int(text: str) -> int | None:
    return int(text) if text else None


def _rows(path: Path) -> Iterator[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        yield from csv.DictReader(handle)


def read_games(folder: Path) -> tuple[Game, ...]:
    return tuple(
        Game(
            int(row["game_id"]),
            row["season"],
            row["season_type"],
            int(row["home_team_id"]),
            int(row["away_team_id"]),
            dt.datetime.fromisoformat(row["tipoff_at"]),
        )
        for row in _rows(folder / "games.csv")
    )


def read_events(folder: Path, keep: Callable[[dict[str, str]], bool]) -> tuple[Event, ...]:
    return tuple(
        Event(
            int(row["game_id"]),
            int(row["event_num"]),
            int(row["period"]),
            row["clock"],
            dt.datetime.fromisoformat(row["wall_clock_time"]),
            row["event_type"],
            _optional_int(row["team_id"]),
            _optional_int(row["player_id"]),
            _optional_int(row["secondary_player_id"]),
            int(row["points"]),
            row["is_three"] == "true",
        )
        for row in _rows(folder / "events.csv")
        if keep(row)
    )


def count_rows(path: Path) -> int:
    return sum(1 for _ in _rows(path))


def player_league(folder: Path, player: int) -> League:
    """Every event that can credit `player` (as player or secondary), with the whole schedule."""
    wanted = str(player)
    events = read_events(folder, lambda row: wanted in (row["player_id"], row["secondary_player_id"]))
    return League((), (), read_games(folder), events)


def team_league(folder: Path, team: int) -> League:
    """Every event of the games `team` plays (its own events and the opponents', for its blocks and steals)."""
    games = read_games(folder)
    mine = {str(game.game_id) for game in games if team in (game.home_team_id, game.away_team_id)}
    return League((), (), games, read_events(folder, lambda row: row["game_id"] in mine))


def busiest_player(folder: Path) -> int:
    counts: dict[str, int] = {}
    for row in _rows(folder / "events.csv"):
        for column in ("player_id", "secondary_player_id"):
            if row[column]:
                counts[row[column]] = counts.get(row[column], 0) + 1
    return int(max(counts, key=lambda player: (counts[player], player)))


def as_of(dsn: str, kind: str, subject: int, moment: dt.datetime, scope: str, season_type: str) -> tuple[int, ...]:
    function = "nba.player_stats_as_of" if kind == "p" else "nba.team_stats_as_of"
    with psycopg.connect(dsn) as connection:
        row = connection.execute(
            f"select * from {function}(%s, %s, %s, %s)", (subject, moment, scope, season_type)
        ).fetchone()
    assert row is not None
    return tuple(row)


# --------------------------------------------------------------------------------------------------------
# bench
# --------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bench_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThrowawayServer]:
    """The newest major only: the bench measures the embedded server of `temporaldb local start` (18)."""
    with start_throwaway_server(max(available_majors()), tmp_path_factory.mktemp("bench")) as server:
        yield server


# The README's targets (bench/RESULTS.md): measure -> the JSON figure it shows.
TARGET_FIGURES: dict[str, Callable[[dict[str, Any]], float]] = {
    "as-of p50 vs primary-key floor (1 client)": lambda r: (
        r["asof"]["1 client"]["p50_ms"] / r["floor"]["1 client"]["p50_ms"]
    ),
    "as-of p99 (1 and 4 clients)": lambda r: max(latency["p99_ms"] for latency in r["asof"].values()),
    "naive SUM / as-of, 20 longest careers": lambda r: r["naive_ratio"],
    "derived / nba.play_by_play size": lambda r: 100 * r["derived_ratio"],
    "full load to queryable": lambda r: r["load_to_queryable_seconds"],
    "loader peak RSS": lambda r: r["loader_peak_rss_mb"],
}
COMPARISONS: dict[str, Callable[[float, float], bool]] = {"<=": operator.le, ">=": operator.ge}
NUMBER = r"[0-9][0-9,]*(?:\.[0-9]+)?"


def _number(text: str) -> float:
    found = re.search(NUMBER, text)
    assert found is not None, text
    return float(found.group().replace(",", ""))


def _markdown_table(report: str, header: str) -> list[list[str]]:
    lines = report.splitlines()
    start = lines.index(header)
    assert lines[start + 1].startswith("|---")
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def test_bench_on_one_season(bench_server: ThrowawayServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data, results = tmp_path / "data", tmp_path / "out" / "RESULTS.md"
    code = main(
        ["bench", "--dsn", bench_server.dsn, "--data", str(data), "--seasons", "1",
         "--queries", str(QUERIES), "--results", str(results), "--json"]
    )  # fmt: skip
    assert code == EXIT_OK
    figures = json.loads(capsys.readouterr().out)
    report = results.read_text(encoding="utf-8")

    # What was generated is what was counted, loaded and reported.
    games, events = count_rows(data / "games.csv"), count_rows(data / "events.csv")
    assert figures["seasons"] == 1
    assert (figures["games"], figures["events"], figures["players"]) == (
        games,
        events,
        count_rows(data / "players.csv"),
    )
    assert games > 1000
    bench_dsn = make_conninfo(bench_server.dsn, dbname=BENCH_DATABASE)
    with psycopg.connect(bench_dsn) as connection:
        loaded = connection.execute(
            "select (select count(*) from nba.games), (select count(*) from nba.play_by_play),"
            " (select count(*) from pg_indexes where indexname like 'bench_naive%')"
        ).fetchone()
    assert loaded == (games, events, 0)  # the naive query's indexes are dropped afterwards
    assert f"{games:,} games, {events:,} events" in report

    # Internally consistent figures.
    assert 0 < figures["load_seconds"] <= figures["load_to_queryable_seconds"]
    assert figures["events_per_second"] == round(events / figures["load_to_queryable_seconds"])
    assert figures["loader_peak_rss_mb"] > 0
    assert figures["play_by_play_mb"] > figures["derived_mb"] > 0
    assert figures["derived_ratio"] == round(figures["derived_mb"] / figures["play_by_play_mb"], 4)
    for round_name in ("floor", "asof"):
        assert sorted(figures[round_name]) == ["1 client", "4 clients"]
        for latency in figures[round_name].values():
            assert latency["queries"] == QUERIES
            assert 0 < latency["p50_ms"] <= latency["p99_ms"]
            assert latency["mean_ms"] > 0
            assert latency["queries_per_second"] > 0
    assert figures["naive_checked"] == 20  # every naive answer was checked equal to the function's
    assert figures["fast_p50_ms_longest"] > 0
    assert figures["naive_ratio"] == pytest.approx(figures["naive_p50_ms"] / figures["fast_p50_ms_longest"], abs=0.2)

    # The Markdown report: every target row, with a numeric figure matching the JSON and a verdict matching both.
    targets = _markdown_table(report, "| measure | target | measured | met |")
    assert [row[0] for row in targets] == list(TARGET_FIGURES)
    for measure, goal, measured, met in targets:
        figure = TARGET_FIGURES[measure](figures)
        assert _number(measured) == pytest.approx(figure, rel=0.01, abs=0.6), measure
        comparison, threshold = goal.split()[0], _number(goal)
        assert met in ("yes", "**no**"), measure
        assert (met == "yes") == COMPARISONS[comparison](figure, threshold), measure
    latency_rows = _markdown_table(report, "| query | clients | queries | p50 ms | p99 ms | mean ms | queries/s |")
    shown = {(row[0], row[1]): (int(row[2].replace(",", "")), float(row[3]), float(row[4])) for row in latency_rows}
    expected = {
        (label, clients): (latency["queries"], latency["p50_ms"], latency["p99_ms"])
        for label, round_name in (("primary-key floor", "floor"), ("player_stats_as_of", "asof"))
        for clients, latency in figures[round_name].items()
    }
    assert shown == expected

    # The loaded data answers as the generated CSV says: a player mid-game and after the season, and a team.
    player = busiest_player(data)
    league = player_league(data, player)
    moments = sorted(event.wall_clock_time for event in league.events)
    mid_game, season_over = moments[len(moments) // 2], moments[-1] + dt.timedelta(days=30)
    for moment, scope, season_type in (
        (mid_game, "career", "regular"),
        (mid_game, "game", "regular"),
        (season_over, "career", "all"),
        (season_over, "season", "playoffs"),
    ):
        reference = reference_line(league, "p", player, moment, scope, season_type)
        assert as_of(bench_dsn, "p", player, moment, scope, season_type) == reference, (moment, scope)
    assert reference_line(league, "p", player, season_over, "career", "regular")[STATS.index("points")] > 0
    team = next(event.team_id for event in league.events if event.player_id == player and event.team_id)
    assert team is not None
    teams_games = team_league(data, team)
    for moment, scope in ((mid_game, "season"), (season_over, "career")):
        reference = reference_line(teams_games, "t", team, moment, scope, "all")
        assert as_of(bench_dsn, "t", team, moment, scope, "all") == reference, (moment, scope)


# --------------------------------------------------------------------------------------------------------
# demo
# --------------------------------------------------------------------------------------------------------

DEMO_FIRST_SEASON = 2015  # 2015-16: Kobe Bryant's last season, the one the headline moment follows

ANSWER = re.compile(
    r"(?P<name>[^\n]+) \(player (?P<id>\d+)\), career regular totals as of (?P<at>\S+):\n"
    r"  (?P<points>\d+) points in (?P<games_played>\d+) games; FG (?P<fgm>\d+)-(?P<fga>\d+), "
    r"3P (?P<fg3m>\d+)-(?P<fg3a>\d+), FT (?P<ftm>\d+)-(?P<fta>\d+)\n"
    r"  (?P<rebounds>\d+) rebounds \((?P<oreb>\d+) off, (?P<dreb>\d+) def\); (?P<assists>\d+) assists, "
    r"(?P<steals>\d+) steals, (?P<blocks>\d+) blocks, (?P<turnovers>\d+) turnovers, (?P<fouls>\d+) fouls\n"
    r"  answered in (?P<first_ms>[0-9.]+) ms[^\n]*\n"
    r"  warm median over (?P<runs>\d+) calls: (?P<median_ms>[0-9.]+) ms\n"
)


@pytest.fixture
def project() -> Iterator[Path]:
    """A project of its own (as in tests/test_localpg.py: world-traversable, since as root the server runs as
    another account), so the demo's local server and data never touch the checkout's."""
    folder = Path(tempfile.mkdtemp(prefix="temporaldb-demo-"))
    folder.chmod(0o755)
    (folder / "Pulumi.yaml").write_text("", encoding="utf-8")
    try:
        yield folder
    finally:
        localpg.stop(folder)
        shutil.rmtree(folder)


def _demo(project: Path) -> tuple[dict[str, str], list[str]]:
    said: list[str] = []
    output = demo.run(project, said.append, seasons=1, first_season=DEMO_FIRST_SEASON)
    found = ANSWER.search(output)
    assert found is not None, output
    return found.groupdict(), said


def test_demo_on_one_season(project: Path) -> None:
    answer, said = _demo(project)
    data = project / ".local" / "demo-data"
    events = count_rows(data / "events.csv")
    assert f"loaded {events:,} events" in "\n".join(said)

    # It names the subject and the moment asked about.
    assert answer["name"] == demo.HEADLINE_PLAYER
    assert answer["at"] == demo.HEADLINE_MOMENT.isoformat(timespec="milliseconds")
    player = int(answer["id"])
    # Every figure equals the brute-force sum over the generated events; and the line is not empty.
    reference = reference_line(player_league(data, player), "p", player, demo.HEADLINE_MOMENT, "career", "regular")
    shown = tuple(int(answer[name]) for name in STATS)
    assert shown == reference
    assert shown[STATS.index("games_played")] > 0
    assert shown[STATS.index("points")] > 0
    assert int(answer["runs"]) == demo.LATENCY_RUNS
    assert float(answer["median_ms"]) > 0
    # It draws its picture (the race of the top scorers and the headline player, README's docs/race.png).
    assert (project / ".local" / "demo-race.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")

    # The demo loaded as etl into the role model's database, which the readers see.
    with psycopg.connect(localpg.dsn(project, role="analyst")) as connection:
        assert connection.execute("select count(*) from nba.play_by_play").fetchone() == (events,)

    # A second run reuses the server and the data and gives the same answer.
    again, said_again = _demo(project)
    assert "already loaded" in "\n".join(said_again)
    assert {name: again[name] for name in STATS} == {name: answer[name] for name in STATS}


def test_panel_bench_on_the_loaded_season(
    bench_server: ThrowawayServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`temporaldb bench --panels` on the database a full run loaded (loaded here when this test runs alone)."""
    bench_dsn = make_conninfo(bench_server.dsn, dbname=BENCH_DATABASE)
    if not _has_games(bench_server.dsn):
        assert main(["bench", "--dsn", bench_server.dsn, "--data", str(tmp_path / "data"), "--seasons", "1",
                     "--queries", "200"]) == EXIT_OK  # fmt: skip
        capsys.readouterr()
    results = tmp_path / "RESULTS.md"
    results.write_text("# Benchmark results\n\nkept\n", encoding="utf-8")
    code = main(["bench", "--panels", "--rounds", "1", "--dsn", bench_server.dsn, "--results", str(results), "--json"])
    assert code == EXIT_OK
    figures = json.loads(capsys.readouterr().out)
    with psycopg.connect(bench_dsn) as connection:
        season, players, first, last = connection.execute(
            """select max(season), (select count(distinct subject_id) from nba.stat_lines
                                    where subject_kind = 'p' and season = (select max(season) from nba.games)),
                      min(tipoff_at) filter (where season_type = 'regular'),
                      max(tipoff_at) filter (where season_type = 'regular')
               from nba.games"""
        ).fetchone()
    eastern = ZoneInfo("America/New_York")
    days = (last.astimezone(eastern).date() - first.astimezone(eastern).date()).days + 1
    assert (figures["season"], figures["players"], figures["days"]) == (season, players, days)
    for rate in [*figures["end_to_end"].values(), figures["sql_only"]]:
        assert rate["cells"] == players * days  # every cell was written (each measure checks its count)
        assert len(rate["seconds"]) == 1
    assert figures["one_cell"]["cells"] == 2000
    small, large = figures["cli"]
    assert small["cells"] == players * days
    assert large["cells"] > 10 * small["cells"]
    for run in (small, large):  # a Python process that imported pyarrow: tens of MB at least
        assert run["peak_rss_mb"] > 30
    report = results.read_text(encoding="utf-8")
    assert report.startswith("# Benchmark results\n\nkept\n")  # the rest of the file stays
    assert f"({players:,}) x every day of it ({days})" in report


def _has_games(server_dsn: str) -> bool:
    with psycopg.connect(server_dsn, autocommit=True) as connection:
        exists = connection.execute("select 1 from pg_database where datname = %s", (BENCH_DATABASE,)).fetchall()
    if not exists:
        return False
    with psycopg.connect(make_conninfo(server_dsn, dbname=BENCH_DATABASE)) as connection:
        return bool(connection.execute("select to_regclass('nba.games') is not null").fetchall()[0][0])
