"""`temporaldb bench`: full-history load and as-of latency, all measured in one run.

Generates a synthetic league at full-history scale (29 seasons from 1996-97,
regular season and playoffs), loads it into a fresh database with the real
loader in a child process (wall time, events/s, peak RSS), then measures on the
same server and connection:

- as-of latency and throughput: random player, random moment, career and
  season scope, prepared, with 1 and with 4 clients;
- the floor: a single-row primary-key lookup on nba.games;
- the naive answer (a SUM over nba.play_by_play with indexes on player and
  time) for the 20 longest careers, checked equal to the fast answer;
- the size of the derived structures against nba.play_by_play.

Results go to stdout and, with --results, to a Markdown file.
"""

from __future__ import annotations

import datetime as dt
import json
import multiprocessing
import os
import platform
import random
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import conninfo as libpq

from temporaldb.generate import Generation, generate_once
from temporaldb.migrate import migrate

FULL_HISTORY_SEASONS = 29  # 1996-97 through 2024-25
BENCH_DATABASE = "nba_bench"
ASOF_QUERY = "select * from nba.player_stats_as_of(%s, %s, %s, 'regular')"
FLOOR_QUERY = "select * from nba.games where game_id = %s"
NAIVE_QUERY = """
select count(distinct c.game_id), coalesce(sum(c.points), 0), coalesce(sum(c.fgm), 0), coalesce(sum(c.fga), 0),
       coalesce(sum(c.fg3m), 0), coalesce(sum(c.fg3a), 0), coalesce(sum(c.ftm), 0), coalesce(sum(c.fta), 0),
       coalesce(sum(c.oreb), 0), coalesce(sum(c.dreb), 0), coalesce(sum(c.rebounds), 0),
       coalesce(sum(c.assists), 0), coalesce(sum(c.steals), 0), coalesce(sum(c.blocks), 0),
       coalesce(sum(c.turnovers), 0), coalesce(sum(c.fouls), 0)
from (
    select e.game_id, e.points, (e.event_type = 'fg_made')::int as fgm,
           (e.event_type in ('fg_made', 'fg_missed'))::int as fga,
           (e.event_type = 'fg_made' and e.is_three)::int as fg3m,
           e.is_three::int as fg3a, (e.event_type = 'ft_made')::int as ftm,
           (e.event_type in ('ft_made', 'ft_missed'))::int as fta, (e.event_type = 'rebound_off')::int as oreb,
           (e.event_type = 'rebound_def')::int as dreb,
           (e.event_type in ('rebound_off', 'rebound_def'))::int as rebounds,
           0 as assists, 0 as steals, 0 as blocks, (e.event_type = 'turnover')::int as turnovers,
           (e.event_type = 'foul')::int as fouls
    from nba.play_by_play e where e.player_id = %(player)s and e.wall_clock_time <= %(at)s
    union all
    select e.game_id, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, (e.event_type = 'fg_made')::int, (e.event_type = 'turnover')::int,
           (e.event_type = 'fg_missed')::int, 0, 0
    from nba.play_by_play e where e.secondary_player_id = %(player)s and e.wall_clock_time <= %(at)s
) c join nba.games g on g.game_id = c.game_id and g.season_type = 'regular'
"""
NAIVE_INDEXES = (
    "create index bench_naive_player on nba.play_by_play (player_id, wall_clock_time)",
    "create index bench_naive_secondary on nba.play_by_play (secondary_player_id, wall_clock_time)",
)

Say = Callable[[str], None]


@dataclass(frozen=True)
class Latency:
    queries: int
    p50_ms: float
    p99_ms: float
    mean_ms: float
    queries_per_second: float


@dataclass
class LoadResult:
    """What every mode of the benchmark reports about its data and the load (`--server-like` adds to it)."""

    started_at: str
    machine: str
    postgres: str
    seasons: int
    games: int = 0
    events: int = 0
    players: int = 0
    generate_seconds: float = 0.0
    load_seconds: float = 0.0
    load_to_queryable_seconds: float = 0.0
    events_per_second: float = 0.0
    loader_peak_rss_mb: float = 0.0
    play_by_play_mb: float = 0.0
    derived_mb: float = 0.0

    def note_generation(self, generation: Generation) -> None:
        summary = generation.summary
        self.games, self.events, self.players = summary.games, summary.events, summary.players
        self.generate_seconds = generation.seconds

    def note_load(self, load: LoadFigures) -> None:
        """The load's figures, and the sizes of what it loaded."""
        self.load_seconds, self.loader_peak_rss_mb = load.load_seconds, load.loader_peak_rss_mb
        self.load_to_queryable_seconds, self.events_per_second = load.queryable_seconds, load.events_per_second
        self.play_by_play_mb, self.derived_mb = measure_sizes(load.dsn)


@dataclass
class BenchResult(LoadResult):
    derived_ratio: float = 0.0
    floor: dict[str, Latency] = field(default_factory=dict)
    asof: dict[str, Latency] = field(default_factory=dict)
    naive_p50_ms: float = 0.0
    fast_p50_ms_longest: float = 0.0
    naive_ratio: float = 0.0
    naive_checked: int = 0


def summarize(samples_ms: list[float], elapsed_s: float) -> Latency:
    ordered = sorted(samples_ms)
    p99_index = min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))
    return Latency(
        queries=len(ordered),
        p50_ms=round(statistics.median(ordered), 4),
        p99_ms=round(ordered[p99_index], 4),
        mean_ms=round(statistics.fmean(ordered), 4),
        queries_per_second=round(len(ordered) / elapsed_s, 1),
    )


def machine() -> str:
    memory_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3
    return f"{platform.machine()}, {os.cpu_count()} cores, {memory_gb:.0f} GiB, Python {platform.python_version()}"


def _fresh_database(dsn: str, name: str) -> str:
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute(f'drop database if exists "{name}" with (force)')
        admin.execute(f'create database "{name}"')
    return libpq.make_conninfo(dsn, dbname=name)


def database_dsn(server_dsn: str) -> str:
    """The benchmark's database (nba_bench) on the server of `server_dsn`."""
    return libpq.make_conninfo(server_dsn, dbname=BENCH_DATABASE)


def generate(folder: Path, seasons: int, say: Say) -> Generation:
    """The full-history league, generated once into folder and reused after."""
    say(f"generating {seasons} seasons into {folder}")
    last = [0.0]

    def progress(done: int, total: int) -> None:
        if time.monotonic() - last[0] > 5:
            say(f"  generating: {done:,}/{total:,} games")
            last[0] = time.monotonic()

    generation = generate_once(folder, seasons=seasons, first_season=1996, seed=1, progress=progress)
    if generation.reused:
        say(f"reusing generated data in {folder}")
    return generation


def load_in_child(dsn: str, folder: Path, say: Say) -> tuple[float, float]:
    """Run `temporaldb load` as a child process: (wall seconds, its peak RSS in MB).

    Its output, summary line included, goes to `say` (stderr): stdout carries only the bench's results.
    """
    command = [sys.executable, "-m", "temporaldb.cli", "load", "--dsn", dsn, str(folder)]
    started = time.perf_counter()
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as process:
        assert process.stdout is not None
        for line in process.stdout:
            say(f"  {line.rstrip()}")
        # wait4 gives this child's own peak; RUSAGE_CHILDREN would be the largest of every child reaped so far
        # (initdb and pg_ctl too, when the bench started the server).
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise RuntimeError(f"load failed with exit code {process.returncode}")
    seconds = time.perf_counter() - started
    return seconds, usage.ru_maxrss / 1024


@dataclass(frozen=True)
class LoadFigures:
    dsn: str
    """The loaded database."""
    load_seconds: float
    queryable_seconds: float
    """The load plus the VACUUM ANALYZE that makes nba.play_by_play index-only-ready."""
    events_per_second: int
    loader_peak_rss_mb: float


def load_fresh(server_dsn: str, folder: Path, events: int, say: Say) -> LoadFigures:
    """A fresh nba_bench database, migrated, loaded by `temporaldb load` in a child, then vacuumed and analyzed."""
    dsn = _fresh_database(server_dsn, BENCH_DATABASE)  # database_dsn(server_dsn), emptied
    migrate(dsn)
    say(f"loading {events:,} events")
    load_seconds, peak_rss_mb = load_in_child(dsn, folder, say)
    started = time.perf_counter()
    with psycopg.connect(dsn, autocommit=True) as connection:
        connection.execute("vacuum analyze nba.play_by_play")
    queryable = load_seconds + (time.perf_counter() - started)
    return LoadFigures(dsn, load_seconds, queryable, round(events / queryable), peak_rss_mb)


def _moments(connection: psycopg.Connection[Any]) -> tuple[dt.datetime, dt.datetime]:
    row = connection.execute("select min(tipoff_at), max(tipoff_at) + interval '6 hours' from nba.games").fetchone()
    assert row is not None
    return row[0], row[1]


def _random_moment(rng: random.Random, first: dt.datetime, last: dt.datetime) -> dt.datetime:
    return first + dt.timedelta(microseconds=rng.randrange(int((last - first) / dt.timedelta(microseconds=1))))


def _timed_loop(dsn: str, work: list[tuple[str, tuple[Any, ...]]]) -> tuple[list[float], float]:
    samples = []
    with psycopg.connect(dsn, autocommit=True) as connection:
        for query, params in work[:200]:  # warm-up: prepare the statements and the caches
            connection.execute(query, params, prepare=True).fetchall()
        started = time.perf_counter()
        for query, params in work:
            before = time.perf_counter()
            connection.execute(query, params, prepare=True).fetchall()
            samples.append((time.perf_counter() - before) * 1000)
        elapsed = time.perf_counter() - started
    return samples, elapsed


def _client(arguments: tuple[str, list[tuple[str, tuple[Any, ...]]]]) -> tuple[list[float], float]:
    return _timed_loop(*arguments)


def _workloads(dsn: str, count: int, seed: int) -> dict[str, list[tuple[str, tuple[Any, ...]]]]:
    rng = random.Random(seed)
    with psycopg.connect(dsn) as connection:
        players = [
            row[0]
            for row in connection.execute("select distinct subject_id from nba.stat_lines where subject_kind = 'p'")
        ]
        games = [row[0] for row in connection.execute("select game_id from nba.games")]
        first, last = _moments(connection)
    asof = [
        (ASOF_QUERY, (rng.choice(players), _random_moment(rng, first, last), rng.choice(("career", "season"))))
        for _ in range(count)
    ]
    floor = [(FLOOR_QUERY, (rng.choice(games),)) for _ in range(count)]
    return {"asof": asof, "floor": floor}


def measure_latency(dsn: str, queries: int, say: Say) -> tuple[dict[str, Latency], dict[str, Latency]]:
    """Interleave floor and as-of rounds so both see the same machine conditions."""
    workloads = _workloads(dsn, queries, seed=7)
    floor: dict[str, Latency] = {}
    asof: dict[str, Latency] = {}
    for clients in (1, 4):
        for name, target in (("floor", floor), ("asof", asof)):
            work = workloads[name]
            share = [work[i::clients] for i in range(clients)]
            if clients == 1:
                results = [_timed_loop(dsn, share[0])]
            else:
                with multiprocessing.get_context("spawn").Pool(clients) as pool:
                    results = pool.map(_client, [(dsn, part) for part in share])
            elapsed = max(seconds for _, seconds in results)  # the slowest client's loop
            samples = [sample for part, _ in results for sample in part]
            target[f"{clients} client{'s' if clients > 1 else ''}"] = latency = summarize(samples, elapsed)
            rate = latency.queries_per_second
            say(f"  {name} x{clients}: p50 {latency.p50_ms} ms, p99 {latency.p99_ms} ms, {rate} q/s")
    return floor, asof


def measure_naive(dsn: str, say: Say) -> tuple[float, float, float, int]:
    """Naive SUM against the as-of function for the 20 longest careers, at career end.

    Returns (naive p50 ms, function p50 ms, ratio, careers checked).
    """
    with psycopg.connect(dsn, autocommit=True) as connection:
        for statement in NAIVE_INDEXES:
            say(f"  {statement}")
            connection.execute(statement)
        connection.execute("vacuum analyze nba.play_by_play")
        longest = connection.execute(
            """select subject_id, max(last_event_at) + interval '1 day' from nba.stat_lines
               where subject_kind = 'p' and season_type = 'r'
               group by subject_id order by count(*) desc, subject_id limit 20"""
        ).fetchall()
        naive_ms, fast_ms = [], []
        for player, moment in longest:
            for _ in range(2):  # the second run is the warm one we keep
                before = time.perf_counter()
                naive = connection.execute(NAIVE_QUERY, {"player": player, "at": moment}).fetchone()
                naive_time = (time.perf_counter() - before) * 1000
            fast_times = []
            for _ in range(20):
                before = time.perf_counter()
                fast = connection.execute(ASOF_QUERY, (player, moment, "career"), prepare=True).fetchone()
                fast_times.append((time.perf_counter() - before) * 1000)
            if tuple(naive or ()) != tuple(fast or ()):
                raise RuntimeError(f"naive and as-of answers differ for player {player}: {naive} vs {fast}")
            naive_ms.append(naive_time)
            fast_ms.append(statistics.median(fast_times))
        for statement in NAIVE_INDEXES:
            connection.execute(f"drop index nba.{statement.split()[2]}")
    naive_p50, fast_p50 = statistics.median(naive_ms), statistics.median(fast_ms)
    return round(naive_p50, 3), round(fast_p50, 4), round(naive_p50 / fast_p50, 1), len(longest)


def measure_sizes(dsn: str) -> tuple[float, float]:
    with psycopg.connect(dsn) as connection:
        row = connection.execute(
            """select pg_total_relation_size('nba.play_by_play'),
                      pg_total_relation_size('nba.stat_lines') + pg_total_relation_size('nba.seasons')"""
        ).fetchone()
    assert row is not None
    return row[0] / 1024**2, row[1] / 1024**2


def run(server_dsn: str, data_folder: Path, *, seasons: int, queries: int, say: Say) -> BenchResult:
    with psycopg.connect(server_dsn) as connection:
        version = str(connection.execute("show server_version").fetchone()[0])  # type: ignore[index]
    result = BenchResult(
        started_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        machine=machine(),
        postgres=version,
        seasons=seasons,
    )
    result.note_generation(generate(data_folder, seasons, say))
    load = load_fresh(server_dsn, data_folder, result.events, say)
    result.note_load(load)
    dsn = load.dsn
    result.derived_ratio = round(result.derived_mb / result.play_by_play_mb, 4)
    say("measuring latency")
    result.floor, result.asof = measure_latency(dsn, queries, say)
    say("measuring the naive query on the 20 longest careers")
    result.naive_p50_ms, result.fast_p50_ms_longest, result.naive_ratio, result.naive_checked = measure_naive(dsn, say)
    return result


def as_json(result: BenchResult) -> str:
    return json.dumps(asdict(result), indent=2)


@dataclass(frozen=True)
class Target:
    name: str
    goal: str
    measured: str
    met: bool


def targets(result: BenchResult) -> list[Target]:
    floor, asof = result.floor["1 client"], result.asof["1 client"]
    floor_ratio = asof.p50_ms / floor.p50_ms
    worst_p99 = max(latency.p99_ms for latency in result.asof.values())
    load = result.load_to_queryable_seconds
    return [
        Target(
            "as-of p50 vs primary-key floor (1 client)",
            "<= 2x",
            f"{floor_ratio:.2f}x ({asof.p50_ms} vs {floor.p50_ms} ms)",
            floor_ratio <= 2,
        ),
        Target("as-of p99 (1 and 4 clients)", "<= 1 ms", f"{worst_p99} ms", worst_p99 <= 1),
        Target("naive SUM / as-of, 20 longest careers", ">= 300x", f"{result.naive_ratio}x", result.naive_ratio >= 300),
        Target(
            "derived / nba.play_by_play size", "<= 10%", f"{result.derived_ratio:.1%}", result.derived_ratio <= 0.10
        ),
        Target("full load to queryable", "<= 300 s", f"{load:.0f} s", load <= 300),
        Target("loader peak RSS", "<= 300 MB", f"{result.loader_peak_rss_mb:.0f} MB", result.loader_peak_rss_mb <= 300),
    ]


def render_markdown(result: BenchResult, command: str) -> str:
    lines = [
        "# Benchmark results",
        "",
        f"- command: `{command}`",
        f"- date: {result.started_at}",
        f"- machine: {result.machine}",
        f"- PostgreSQL: {result.postgres} (the embedded server of `temporaldb local start`)",
        f"- data: {result.seasons} seasons from 1996-97, {result.games:,} games, {result.events:,} events, "
        f"{result.players:,} players (synthetic, `temporaldb generate`, seed 1); "
        f"generated in {result.generate_seconds:.0f} s",
        "",
        "## Targets",
        "",
        "| measure | target | measured | met |",
        "|---|---|---|---|",
    ]
    lines += [f"| {t.name} | {t.goal} | {t.measured} | {'yes' if t.met else '**no**'} |" for t in targets(result)]
    lines += [
        "",
        "## Load",
        "",
        f"- `temporaldb load` wall time: {result.load_seconds:.1f} s; with the VACUUM ANALYZE that makes it "
        f"index-only-ready: {result.load_to_queryable_seconds:.1f} s ({result.events_per_second:,} events/s)",
        f"- loader peak RSS: {result.loader_peak_rss_mb:.0f} MB",
        f"- nba.play_by_play (heap + indexes): {result.play_by_play_mb:,.0f} MB; derived (nba.stat_lines + "
        f"nba.seasons, heap + indexes): {result.derived_mb:,.0f} MB = {result.derived_ratio:.1%}",
        "",
        "## Latency (prepared statements, same server and run)",
        "",
        "| query | clients | queries | p50 ms | p99 ms | mean ms | queries/s |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, table in (("primary-key floor", result.floor), ("player_stats_as_of", result.asof)):
        for clients, latency in table.items():
            lines.append(
                f"| {label} | {clients} | {latency.queries:,} | {latency.p50_ms} | {latency.p99_ms} | "
                f"{latency.mean_ms} | {latency.queries_per_second:,} |"
            )
    lines += [
        "",
        f"Naive answer (SUM over nba.play_by_play with B-tree indexes on (player_id, wall_clock_time) and "
        f"(secondary_player_id, wall_clock_time)) for the {result.naive_checked} longest careers, at the end of the "
        f"career: p50 {result.naive_p50_ms} ms against {result.fast_p50_ms_longest} ms for player_stats_as_of, "
        f"{result.naive_ratio}x; every naive answer was checked equal to the function's.",
        "",
    ]
    return "\n".join(lines)


# A section of the results file that another mode owns (`temporaldb bench --server-like`): delimited, so a full
# benchmark rewriting the file keeps it, and its owner replaces only it.
_SECTION = re.compile(r"^<!-- begin (?P<name>[\w-]+) .*?^<!-- end (?P=name) -->$", re.MULTILINE | re.DOTALL)


def delimited(name: str, body: str) -> str:
    """A section of the results file that `write_report` keeps and `write_section` replaces."""
    opening = f"<!-- begin {name} (kept when `temporaldb bench` rewrites this file; replaced by its own mode) -->"
    return f"{opening}\n{body.strip()}\n<!-- end {name} -->"


def write_report(path: Path, report: str) -> None:
    """Write the full benchmark's report, keeping the delimited sections of the file it replaces."""
    previous = path.read_text(encoding="utf-8") if path.exists() else ""
    kept = [match.group(0) for match in _SECTION.finditer(previous)]
    _write_results(path, "\n\n".join([report.strip(), *kept]))


def write_section(path: Path, name: str, body: str) -> None:
    """Replace the delimited section `name` of the results file (appended when absent); the rest stays as it is."""
    previous = path.read_text(encoding="utf-8") if path.exists() else "# Benchmark results\n"
    block = delimited(name, body)
    found = next((match for match in _SECTION.finditer(previous) if match["name"] == name), None)
    if found is None:
        _write_results(path, f"{previous.rstrip()}\n\n{block}")
    else:
        _write_results(path, previous[: found.start()] + block + previous[found.end() :])


def _write_results(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text.rstrip() + "\n", encoding="utf-8")
