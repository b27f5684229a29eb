"""`temporaldb bench --panels`: a season's panel at full history, against asking the one-cell function cell by cell.

Runs on the benchmark's database (nba_bench, loaded by a full `temporaldb bench`). The panel is the issue's:
every player with a game in one season (default: the last in the data) x every day of that season (00:00 from
its first game's date to its last's), career scope, regular season. In rounds, so that each figure sees the
same machine:

- end to end: the cells from the database to a Parquet file on disk, as `temporaldb panel` writes it (the
  same functions: panelfetch.tables with --jobs connections, ParquetWriter), in this process, moments at 00:00
  UTC (what `--from DATE` means without --tz) and at 00:00 US Eastern;
- the SQL alone: `select count(*)` over nba.player_stats_panel, on one connection;
- cell by cell: a random sample of the same cells, one prepared nba.player_stats_as_of call each, on one
  connection.

Then `temporaldb panel` itself, as a child process, for that panel and for one 40 times larger: wall time and
peak RSS (it streams, so the peak should not grow with the panel).
"""

from __future__ import annotations

import datetime as dt
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

from temporaldb import panelfetch, panelquery
from temporaldb.bench import machine
from temporaldb.moments import Listed
from temporaldb.panelwrite import ParquetWriter

SECTION = "panels"
ROUNDS = 5
ONE_CELL_SAMPLE = 2_000
EASTERN = ZoneInfo("America/New_York")
ONE_CELL_QUERY = "select * from nba.player_stats_as_of(%s, %s, 'career', 'regular')"
Say = Callable[[str], None]


@dataclass(frozen=True)
class Rate:
    cells: int
    seconds: list[float]

    @property
    def median_seconds(self) -> float:
        return statistics.median(self.seconds)

    @property
    def cells_per_second(self) -> float:
        return self.cells / self.median_seconds


@dataclass(frozen=True)
class CliRun:
    what: str
    cells: int
    seconds: float
    peak_rss_mb: float


@dataclass
class PanelBench:
    started_at: str
    machine: str
    postgres: str
    season: str
    players: int
    days: int
    jobs: int
    end_to_end: dict[str, Rate] = field(default_factory=dict)
    inside_games: dict[str, int] = field(default_factory=dict)
    """Cells, per moment convention, whose moment falls inside one of the player's games (its events are summed)."""
    sql_only: Rate | None = None
    one_cell: Rate | None = None
    cli: list[CliRun] = field(default_factory=list)

    @property
    def cells(self) -> int:
        return self.players * self.days


def season_panel(connection: psycopg.Connection[Any], season: str | None) -> tuple[str, list[int], dt.date, dt.date]:
    """The season (default: the last), the players with a game in it, and its first and last game dates."""
    if season is None:
        found = connection.execute("select max(season) from nba.games").fetchall()[0][0]
        if found is None:
            raise RuntimeError("nba_bench has no games: run `temporaldb bench` (the full benchmark) first")
        season = str(found)
    first, last = connection.execute(
        "select min(tipoff_at), max(tipoff_at) from nba.games where season = %s and season_type = 'regular'",
        (season,),
    ).fetchall()[0]
    if first is None:
        raise RuntimeError(f"no regular-season game of {season} in nba_bench")
    players = connection.execute(
        "select distinct subject_id from nba.stat_lines where subject_kind = 'p' and season = %s order by 1",
        (season,),
    ).fetchall()
    eastern_dates = (first.astimezone(EASTERN).date(), last.astimezone(EASTERN).date())
    return season, [row[0] for row in players], *eastern_dates


def midnights(first: dt.date, last: dt.date, zone: dt.tzinfo) -> list[dt.datetime]:
    days = (last - first).days + 1
    return [dt.datetime.combine(first + dt.timedelta(days=day), dt.time(), zone) for day in range(days)]


def to_parquet(dsn: str, panel: panelquery.Panel, jobs: int, folder: Path) -> float:
    """Seconds from connecting to the Parquet file closed, as `temporaldb panel` does it; checks the row count."""
    started = time.perf_counter()
    written = 0
    with (
        (folder / "panel.parquet").open("wb") as handle,
        psycopg.connect(dsn, autocommit=True) as connection,
        panelquery.snapshot(connection),
    ):
        writer = ParquetWriter(handle, panel.id_column)
        for table in panelfetch.tables(connection, panel, dsn=dsn, jobs=jobs):
            writer.write_table(table)
            written += table.num_rows
        writer.finish()
    seconds = time.perf_counter() - started
    if written != panel.cells:
        raise RuntimeError(f"the panel wrote {written:,} rows, expected {panel.cells:,}")
    return seconds


def inside_games(dsn: str, panel: panelquery.Panel) -> int:
    moments = [panel.moments.at(index) for index in range(len(panel.moments))]
    with psycopg.connect(dsn) as connection:
        count = connection.execute(
            """select count(*) from nba.stat_lines s join unnest(%s::timestamptz[]) m(moment)
                   on s.tipoff_at <= m.moment and s.last_event_at > m.moment
               where s.subject_kind = 'p' and s.subject_id = any (%s) and s.season_type = 'r'""",
            (moments, list(panel.ids)),
        ).fetchall()[0][0]
    return int(count)


def sql_only(dsn: str, panel: panelquery.Panel) -> float:
    ids, moments = list(panel.ids), [panel.moments.at(index) for index in range(len(panel.moments))]
    with psycopg.connect(dsn, autocommit=True) as connection:
        started = time.perf_counter()
        count = connection.execute(
            "select count(*) from nba.player_stats_panel(%s, %s::timestamptz[])", (ids, moments)
        ).fetchall()[0][0]
        seconds = time.perf_counter() - started
    if count != panel.cells:
        raise RuntimeError(f"the SQL panel gave {count:,} rows, expected {panel.cells:,}")
    return seconds


def cell_by_cell(dsn: str, cells: Sequence[tuple[int, dt.datetime]]) -> float:
    with psycopg.connect(dsn, autocommit=True) as connection:
        for player, moment in cells[:100]:  # warm-up: prepare the statement, fill the caches
            connection.execute(ONE_CELL_QUERY, (player, moment), prepare=True).fetchall()
        started = time.perf_counter()
        for player, moment in cells:
            connection.execute(ONE_CELL_QUERY, (player, moment), prepare=True).fetchall()
        return time.perf_counter() - started


def cli_run(dsn: str, what: str, args: Sequence[str], cells: int, folder: Path) -> CliRun:
    """`temporaldb panel ARGS --out FILE` in a child, measured by temporaldb.feeds.bench (wall time, peak RSS)."""
    usage = folder / "usage.json"
    out = str(folder / "cli.parquet")
    command = [sys.executable, "-m", "temporaldb.cli", "panel", "--dsn", dsn, *args, "--out", out]
    wrapped = [sys.executable, "-m", "temporaldb.feeds.bench", str(usage), *command]
    finished = subprocess.run(wrapped, capture_output=True, text=True, check=False)
    if finished.returncode != 0:
        raise RuntimeError(f"temporaldb panel exited with {finished.returncode}: {finished.stderr.strip()[-300:]}")
    measured = json.loads(usage.read_text(encoding="utf-8"))
    return CliRun(what, cells, round(measured["seconds"], 2), round(measured["maxrss_kb"] / 1024, 1))


def run(dsn: str, *, season: str | None, jobs: int, rounds: int, say: Say) -> PanelBench:
    with psycopg.connect(dsn, autocommit=True) as connection:
        season, players, first, last = season_panel(connection, season)
        postgres = str(connection.execute("show server_version").fetchall()[0][0]).split()[0]
    panels = {
        "00:00 UTC": panelquery.Panel("player", tuple(players), Listed(midnights(first, last, dt.UTC)), "career",
                                      "regular"),
        "00:00 US Eastern": panelquery.Panel("player", tuple(players), Listed(midnights(first, last, EASTERN)),
                                             "career", "regular"),
    }  # fmt: skip
    utc = panels["00:00 UTC"]
    result = PanelBench(
        dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), machine(), postgres, season, len(players),
        len(utc.moments), jobs,
    )  # fmt: skip
    rng = random.Random(11)
    sample = [(rng.choice(players), utc.moments.at(rng.randrange(len(utc.moments)))) for _ in range(ONE_CELL_SAMPLE)]
    times: dict[str, list[float]] = {label: [] for label in [*panels, "sql", "one"]}
    say(f"temporaldb bench: panels of {season}: {len(players):,} players x {len(utc.moments)} days, {rounds} rounds")
    with tempfile.TemporaryDirectory(prefix="temporaldb-bench-panel-") as work:
        for number in range(1, rounds + 1):
            for label, panel in panels.items():
                times[label].append(to_parquet(dsn, panel, jobs, Path(work)))
            times["sql"].append(sql_only(dsn, utc))
            times["one"].append(cell_by_cell(dsn, sample))
            say(f"temporaldb bench: panel round {number}/{rounds}: {utc.cells / times['00:00 UTC'][-1]:,.0f} cells/s")
        result.end_to_end = {label: Rate(panels[label].cells, times[label]) for label in panels}
        result.inside_games = {label: inside_games(dsn, panel) for label, panel in panels.items()}
        result.sql_only = Rate(utc.cells, times["sql"])
        result.one_cell = Rate(len(sample), times["one"])
        result.cli = _cli_runs(dsn, season, players, (first, last), folder=Path(work), say=say)
    return result


def _cli_runs(
    dsn: str, season: str, players: list[int], dates: tuple[dt.date, dt.date], *, folder: Path, say: Say
) -> list[CliRun]:
    span = ["--from", dates[0].isoformat(), "--to", dates[1].isoformat()]
    days = (dates[1] - dates[0]).days + 1
    with psycopg.connect(dsn) as connection:
        everyone = connection.execute(
            "select count(distinct subject_id) from nba.stat_lines where subject_kind = 'p' and tipoff_at <= %s",
            (dt.datetime.combine(dates[1], dt.time(), dt.UTC),),
        ).fetchall()[0][0]
    runs = []
    for what, args, cells in (
        (f"the panel above ({season}, every day)", ["--players", ",".join(map(str, players)), "--every", "1d"],
         len(players) * days),
        (f"--all (every player by then) every 2 hours of {season}", ["--all", "--every", "2h"],
         everyone * ((days - 1) * 12 + 1)),
    ):  # fmt: skip
        say(f"temporaldb bench: temporaldb panel: {what} ({cells:,} cells)")
        runs.append(cli_run(dsn, what, [*span, *args], cells, folder))
    return runs


def render_section(result: PanelBench, command: str) -> str:
    one = result.one_cell
    if result.sql_only is None or one is None:
        raise ValueError("render a finished run")
    main = result.end_to_end["00:00 UTC"]
    ratio = main.cells_per_second / one.cells_per_second
    peak = max(run.peak_rss_mb for run in result.cli)
    lines = [
        "## Panels (`nba.player_stats_panel`, `temporaldb panel`)",
        "",
        f"- command: `{command}`",
        f"- date: {result.started_at}",
        f"- machine: {result.machine}",
        f"- PostgreSQL: {result.postgres}, database nba_bench (the full benchmark's data)",
        f"- panel: every player with a game in {result.season} ({result.players:,}) x every day of it "
        f"({result.days}), career scope, regular season: {result.cells:,} cells; --jobs {result.jobs}; "
        f"medians of {len(main.seconds)} rounds, the measures of a round one after the other",
        "",
        "| measure | target | measured | met |",
        "|---|---|---|---|",
        *(
            f"| end to end to Parquet, moments {label} | >= 200,000 cells/s | {rate.cells_per_second:,.0f} cells/s "
            f"| {_met(rate.cells_per_second >= 200_000)} |"
            for label, rate in result.end_to_end.items()
        ),
        f"| the same against one prepared one-cell call per cell | >= 20x | {ratio:.1f}x "
        f"({one.cells_per_second:,.0f} cells/s) | {_met(ratio >= 20)} |",
        f"| `temporaldb panel` peak RSS, any size | <= 300 MB | {peak:.0f} MB | {_met(peak <= 300)} |",
        "",
        "| measure | cells | median s | cells/s | rounds (s) |",
        "|---|---|---|---|---|",
    ]
    rates = [
        (f"end to end to Parquet, moments {label} ({result.inside_games[label]:,} cells inside a game)", rate)
        for label, rate in result.end_to_end.items()
    ]
    rates += [("SQL alone (count(*) over the panel, one connection)", result.sql_only)]
    rates += [("one-cell function, one prepared call per cell (a random sample)", one)]
    for label, rate in rates:
        rounds = ", ".join(f"{seconds:.3f}" for seconds in rate.seconds)
        lines.append(
            f"| {label} | {rate.cells:,} | {rate.median_seconds:.3f} | {rate.cells_per_second:,.0f} | {rounds} |"
        )
    lines += ["", "| `temporaldb panel ... --format parquet` (a child process) | cells | wall s | peak RSS MB |"]
    lines += ["|---|---|---|---|"]
    lines += [f"| {run.what} | {run.cells:,} | {run.seconds} | {run.peak_rss_mb} |" for run in result.cli]
    return "\n".join(lines)


def _met(met: bool) -> str:
    return "yes" if met else "**no**"


def as_json(result: PanelBench) -> str:
    return json.dumps(asdict(result), indent=2, default=str)
