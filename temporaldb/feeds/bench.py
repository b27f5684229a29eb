"""`temporaldb bench-import`: `temporaldb import` end to end on synthetic live feeds, from local files and from S3.

The targets (a benchmark, not timed tests): from local JSON at least 50,000 events/s end to end (reading, parsing,
mapping, loading and reconciliation included); a peak RSS of at most 300 MB whatever the input size; from S3 (an
emulator here) within 2x of the local time for 100 games.

One run:
1. generates a synthetic league once (`generate_once`, reused) and writes its first games as live play-by-play
   and live box score JSON (`synthetic.write_live`: one folder per input size, reused while it holds the same
   games);
2. for the main size (events/s) and the memory sizes (peak RSS at a small and a large input), creates a fresh
   database on the server, migrates it and runs `temporaldb import FOLDER --strict` in a child process: wall time,
   events (the import's summary line, checked against nba.play_by_play) and the child's own peak RSS;
3. starts moto's S3 server (ThreadedMotoServer, reached over HTTP as AWS would be), uploads the first 100 games,
   and imports `s3://bucket/prefix` and the same games from local files, alternately, `--repeat` times: medians
   and their ratio, all in the same run.
The results go to stdout and, with --results, to a Markdown file; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import logging
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

NAME: Final = "bench-import"
DATABASE: Final = "nba_import_bench"
FIRST_SEASON: Final = 2015
SEED: Final = 1
GAMES_PER_SEASON: Final = 1300  # fewer than any full season generates (1,230 regular-season games + playoffs)
TARGET_EVENTS_PER_SECOND: Final = 50_000
TARGET_PEAK_RSS_MB: Final = 300
TARGET_S3_RATIO: Final = 2.0
BUCKET: Final = "temporaldb-import-bench"
PREFIX: Final = "live"
FAKE_AWS: Final = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}
MARKER_SUFFIX: Final = ".complete"
"""data/live-<games>.complete records a finished folder (outside it: the importer would read a .json in it)."""
_SUMMARY = re.compile(r"imported ([\d,]+) games.*?: ([\d,]+) events", re.DOTALL)
_PROGRESS_EVERY_S: Final = 5.0

Say = Callable[[str], None]


@dataclass(frozen=True)
class ImportRun:
    """One `temporaldb import` child process."""

    source: str
    """'local' or 's3'."""
    games: int
    events: int
    seconds: float
    peak_rss_mb: float
    """The import process's own ru_maxrss."""
    peak_memory_mb: float = 0.0
    """The peak of the PSS summed over the import and its worker processes (sampled)."""

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


@dataclass
class ImportBench:
    started_at: str
    machine: str
    postgres: str
    commit: str
    main_games: int
    written: dict[str, Any] = field(default_factory=dict)
    """The input: games, events, actions, MB and write time of the largest folder."""
    sizes: list[ImportRun] = field(default_factory=list)
    """The main size's runs (--repeat of them), then the memory sizes' (one each)."""
    local: list[ImportRun] = field(default_factory=list)
    s3: list[ImportRun] = field(default_factory=list)
    profile: str = ""
    """The hottest functions of a profiled import (with --profile)."""

    @property
    def repeats(self) -> int:
        return sum(1 for run in self.sizes if run.games == self.main_games)

    @property
    def main(self) -> ImportRun:
        """The main size's run of median time: the events/s figure."""
        runs = sorted((run for run in self.sizes if run.games == self.main_games), key=lambda run: run.seconds)
        return runs[(len(runs) - 1) // 2]

    @property
    def s3_ratio(self) -> float:
        local, s3 = median_seconds(self.local), median_seconds(self.s3)
        return s3 / local if local else 0.0


def median_seconds(runs: Sequence[ImportRun]) -> float:
    return statistics.median(run.seconds for run in runs) if runs else 0.0


# ---------------------------------------------------------------------------------------------------- the input


def _canonical(data: Path, games: int, say: Say) -> Path:
    """A generated league with at least `games` games (whole seasons from 2015-16), made once and reused."""
    from temporaldb.generate import generate_once  # noqa: PLC0415 (heavy only when benchmarking)

    folder = data / "canonical"
    seasons = games // GAMES_PER_SEASON + 1
    generation = generate_once(folder, seasons=seasons, first_season=FIRST_SEASON, seed=SEED)
    say(f"{'reusing' if generation.reused else 'generated'} {generation.summary.games:,} canonical games in {folder}")
    return folder


def live_folder(data: Path, games: int, canonical: Path, say: Say) -> tuple[Path, dict[str, Any]]:
    """The first `games` games of `canonical` as live JSON under data/live-<games>, written once and reused."""
    from temporaldb.feeds import synthetic  # noqa: PLC0415

    folder = data / f"live-{games}"
    marker = data / f"live-{games}{MARKER_SUFFIX}"
    wanted = {"games": games, "seed": SEED, "first_season": FIRST_SEASON}
    if marker.is_file():
        recorded = json.loads(marker.read_text(encoding="utf-8"))
        if recorded.get("arguments") == wanted:
            say(f"reusing the live feeds of {games:,} games in {folder}")
            return folder, dict(recorded["written"])
        marker.unlink()
    say(f"writing {games:,} games as live JSON into {folder}")
    last = [time.monotonic()]

    def progress(done: int) -> None:
        if time.monotonic() - last[0] > _PROGRESS_EVERY_S:
            say(f"  written: {done:,}/{games:,} games")
            last[0] = time.monotonic()

    started = time.perf_counter()
    written = synthetic.write_live(synthetic.read_canonical(canonical, limit=games), folder, progress=progress)
    if written.games != games:
        raise RuntimeError(f"{canonical} has {written.games} games, {games} were asked for")
    figures = {**asdict(written), "seconds": round(time.perf_counter() - started, 1)}
    marker.write_text(json.dumps({"arguments": wanted, "written": figures}), encoding="utf-8")
    return folder, figures


# ---------------------------------------------------------------------------------------------------- one import


def fresh_database(server_dsn: str) -> str:
    """A new, migrated database DATABASE on the server (dropped first if it exists); its DSN."""
    from temporaldb.bench import _fresh_database  # noqa: PLC0415
    from temporaldb.migrate import migrate  # noqa: PLC0415

    dsn = _fresh_database(server_dsn, DATABASE)
    migrate(dsn)
    return dsn


def _stored_events(dsn: str) -> int:
    import psycopg  # noqa: PLC0415

    with psycopg.connect(dsn) as connection:
        row = connection.execute("select count(*) from nba.play_by_play").fetchone()
    return int(row[0]) if row else 0


def _relay(stream: Iterator[str], say: Say) -> list[str]:
    """Relay the child's stderr: its own lines, and its load progress (indented) once every few seconds."""
    lines: list[str] = []
    last = 0.0
    for line in stream:
        lines.append(line.rstrip())
        if not line.startswith("  ") or time.monotonic() - last > _PROGRESS_EVERY_S:
            say(f"    {line.rstrip()}")
            last = time.monotonic()
    return lines


def import_command(dsn: str, sources: Sequence[str], extra: Sequence[str] = ()) -> list[str]:
    """`temporaldb import --strict`, without --report: the JSON report is built whole in memory (see the notes of
    bench/IMPORT-RESULTS.md), which is not what the memory target is about."""
    return [sys.executable, "-m", "temporaldb.cli", "import", "--dsn", dsn, "--strict", *extra, *sources]


def run_import(
    dsn: str, sources: Sequence[str], *, source: str, say: Say, extra: Sequence[str] = (),
    env: dict[str, str] | None = None, profile: Path | None = None,
) -> ImportRun:  # fmt: skip
    """`temporaldb import SOURCE... --strict` in a child process against `dsn` (a fresh database)."""
    with tempfile.TemporaryDirectory(prefix="temporaldb-bench-import-") as work:
        out, usage = Path(work) / "stdout.txt", Path(work) / "usage.json"
        command = import_command(dsn, sources, extra)
        if profile is not None:  # `python -m cProfile -o PATH -m temporaldb.cli import ...`
            command[1:1] = ["-m", "cProfile", "-o", str(profile)]
        with out.open("w", encoding="utf-8") as stdout:
            wrapped = [sys.executable, "-m", __name__, str(usage), *command]
            with subprocess.Popen(wrapped, stdout=stdout, stderr=subprocess.PIPE, text=True, env=env) as process:
                assert process.stderr is not None
                errors = _relay(process.stderr, say)
        summary = out.read_text(encoding="utf-8")
        measured = json.loads(usage.read_text(encoding="utf-8")) if usage.is_file() else {}
    if process.returncode != 0:
        tail = " | ".join(errors[-3:])
        raise RuntimeError(f"temporaldb import exited with code {process.returncode}: {tail}")
    match = _SUMMARY.search(summary)
    if match is None:
        raise RuntimeError(f"temporaldb import printed no summary line: {summary[:200]!r}")
    games, events = (int(group.replace(",", "")) for group in match.groups())
    stored = _stored_events(dsn)
    if stored != events:
        raise RuntimeError(f"the import reported {events:,} events but nba.play_by_play holds {stored:,}")
    return ImportRun(
        source, games, events, round(measured["seconds"], 3), round(measured["maxrss_kb"] / 1024, 1),
        round(measured["tree_pss_kb"] / 1024, 1),
    )  # fmt: skip


def _descendants(pid: int) -> list[int]:
    found, queue = [], [pid]
    while queue:
        current = queue.pop()
        found.append(current)
        try:
            text = Path(f"/proc/{current}/task/{current}/children").read_text(encoding="ascii")
        except OSError:
            continue
        queue.extend(int(child) for child in text.split())
    return found


def _tree_pss_kb(pid: int) -> int:
    """The proportional set size of `pid` and its descendants (the import's worker processes): memory
    shared between them (a forkserver's copied pages) counts once."""
    total = 0
    for member in _descendants(pid):
        try:
            rollup = Path(f"/proc/{member}/smaps_rollup").read_text(encoding="ascii")
        except OSError:
            continue
        total += next((int(line.split()[1]) for line in rollup.splitlines() if line.startswith("Pss:")), 0)
    return total


def measure(usage_file: str, command: Sequence[str]) -> int:
    """Run `command`, write its wall time, its own peak RSS and the peak PSS of it and its worker processes
    to `usage_file` (JSON); its exit code.

    The benchmark runs each import through this, in a small process of its own (`python -m
    temporaldb.feeds.bench USAGE_FILE COMMAND...`): a child's ru_maxrss starts from the RSS of the process it
    was spawned from (Linux carries the pre-exec memory's high-water mark over exec), so an import spawned by
    the benchmark itself would report the benchmark's memory (moto's objects, the data written) when larger.
    The import's worker processes are not in its ru_maxrss: the tree's PSS is sampled every 0.1 s.
    """
    started = time.perf_counter()
    process = subprocess.Popen(command)
    peak_tree_kb = 0
    while True:
        waited, status, usage = os.wait4(process.pid, os.WNOHANG)
        if waited:
            break
        peak_tree_kb = max(peak_tree_kb, _tree_pss_kb(process.pid))
        time.sleep(0.1)
    seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait for it again
    measured = {"seconds": seconds, "maxrss_kb": usage.ru_maxrss, "tree_pss_kb": peak_tree_kb}
    Path(usage_file).write_text(json.dumps(measured), encoding="utf-8")
    return process.returncode


# ---------------------------------------------------------------------------------------------------- S3


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (the tests start their servers on one too)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def s3_emulator(endpoint_url: str | None = None) -> Iterator[str]:
    """moto's S3 server on a free local port (over HTTP, as AWS), or the given endpoint; its URL."""
    if endpoint_url is not None:
        yield endpoint_url
        return
    from moto.server import ThreadedMotoServer  # noqa: PLC0415 (a dev dependency, installed by make setup)

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # not a line on stderr per request
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@contextlib.contextmanager
def uploaded(endpoint_url: str, folder: Path, say: Say) -> Iterator[str]:
    """The folder's documents in a bucket of the emulator, under PREFIX; its s3:// URL. Emptied afterwards."""
    import boto3  # noqa: PLC0415

    credentials = {"aws_access_key_id": FAKE_AWS["AWS_ACCESS_KEY_ID"],
                   "aws_secret_access_key": FAKE_AWS["AWS_SECRET_ACCESS_KEY"]}  # fmt: skip
    client = boto3.client("s3", endpoint_url=endpoint_url, region_name=FAKE_AWS["AWS_DEFAULT_REGION"], **credentials)
    client.create_bucket(Bucket=BUCKET)
    keys = []
    try:
        files = sorted(path for path in folder.rglob("*.json") if path.is_file())
        say(f"uploading {len(files)} documents to s3://{BUCKET}/{PREFIX}/ at {endpoint_url}")
        for path in files:
            keys.append(f"{PREFIX}/{path.relative_to(folder).as_posix()}")
            client.put_object(Bucket=BUCKET, Key=keys[-1], Body=path.read_bytes())
        yield f"s3://{BUCKET}/{PREFIX}/"
    finally:
        for start in range(0, len(keys), 1000):
            client.delete_objects(
                Bucket=BUCKET, Delete={"Objects": [{"Key": key} for key in keys[start : start + 1000]]}
            )
        client.delete_bucket(Bucket=BUCKET)


# ---------------------------------------------------------------------------------------------------- the run


def _postgres(server_dsn: str) -> str:
    import psycopg  # noqa: PLC0415

    with psycopg.connect(server_dsn) as connection:
        row = connection.execute("show server_version").fetchone()
    return str(row[0]) if row else "?"


def _commit() -> str:
    """The checkout's commit (and whether it has uncommitted changes), read from git; 'unknown' without it."""
    root = Path(__file__).resolve().parents[2]
    try:
        head = subprocess.run(["git", "log", "-1", "--format=%h %s"], cwd=root, capture_output=True, text=True,
                              check=True, timeout=10).stdout.strip()  # fmt: skip
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, check=True, timeout=10).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head + (" (with uncommitted changes)" if dirty else "")


def _measure_sizes(server_dsn: str, folders: dict[int, Path], main: int, repeat: int, say: Say) -> list[ImportRun]:
    """The main size `repeat` times, then every other size once, smallest first."""
    runs = []
    for games in [main] * repeat + sorted(set(folders) - {main}):
        folder = folders[games]
        say(f"importing {games:,} games from {folder} into a fresh database {DATABASE}")
        run = run_import(fresh_database(server_dsn), [str(folder)], source="local", say=say)
        say(f"  {run.events:,} events in {run.seconds:.1f} s: {run.events_per_second:,.0f} events/s, "
            f"peak RSS {run.peak_rss_mb:.0f} MB")  # fmt: skip
        runs.append(run)
    return runs


def _measure_s3(
    server_dsn: str, folder: Path, repeat: int, endpoint_url: str | None, say: Say
) -> tuple[list[ImportRun], list[ImportRun]]:
    local: list[ImportRun] = []
    s3: list[ImportRun] = []
    env = {**os.environ, **FAKE_AWS}  # the child's only: never the caller's own AWS credentials
    with s3_emulator(endpoint_url) as endpoint, uploaded(endpoint, folder, say) as url:
        for round_number in range(1, repeat + 1):
            for runs, sources, extra in ((local, [str(folder)], ()), (s3, [url], ("--endpoint-url", endpoint))):
                where = "S3" if runs is s3 else "local files"
                say(f"round {round_number}/{repeat}: importing {sources[0]} ({where})")
                runs.append(run_import(fresh_database(server_dsn), sources, source="s3" if runs is s3 else "local",
                                       say=say, extra=extra, env=env))  # fmt: skip
                say(f"  {runs[-1].seconds:.1f} s, peak RSS {runs[-1].peak_rss_mb:.0f} MB")
    return local, s3


PHASES: Final = (
    ("grouping: every document read, decoded and classified (first pass)", (("feeds/grouping.py", "group"),)),
    ("JSON decoding, both passes (in grouping and per game)", (("feeds/sources.py", "decode"),)),
    ("live.py: actions to events", (("feeds/live.py", "parse"),)),
    ("boxscore.py: box scores read", (("feeds/boxscore.py", "facts"), ("feeds/boxscore.py", "box_score"))),
    ("canonical rows and their CSV", (("feeds/canonical.py", "to_canonical"), ("feeds/canonical.py", "add"))),
    ("the load, reconciliation included", (("temporaldb/load.py", "load_directory"),)),
    ("  of which COPY of the events (rows checked in Python)", (("temporaldb/load.py", "_copy_events"),)),
    ("  of which waiting for the server", (("psycopg/connection.py", "wait"),)),
    ("  of which reconciliation", (("feeds/reconcile.py", "reconcile"),)),
)  # fmt: skip
"""Phases of an import by the functions that do them (cumulative times; a phase may contain another)."""


def _phase_table(stats: Any) -> list[str]:
    """Seconds and share of the profiled time per phase (PHASES), from pstats' raw table."""
    total = stats.total_tt
    lines = ["| phase | seconds (cumulative) | share |", "|---|---|---|"]
    for title, functions in PHASES:
        seconds = sum(
            row[3]
            for (path, _, name), row in stats.stats.items()
            if any(path.endswith(suffix) and name == wanted for suffix, wanted in functions)
        )
        lines.append(f"| {title} | {seconds:.2f} | {seconds / total:.0%} |")
    return [*lines, f"| the whole import (profiled) | {total:.2f} | 100% |"]


def _profile(server_dsn: str, folder: Path, path: Path, say: Say) -> str:
    """An import of `folder` under cProfile (not timed): its phases and the 12 functions with the most own time."""
    import io  # noqa: PLC0415
    import pstats  # noqa: PLC0415

    say(f"profiling the import of {folder} into {path}")
    run_import(fresh_database(server_dsn), [str(folder)], source="local", say=say, profile=path)
    text = io.StringIO()
    stats = pstats.Stats(str(path), stream=text)
    stats.sort_stats("tottime").print_stats(12)
    lines = text.getvalue().splitlines()
    start = next((i for i, line in enumerate(lines) if line.lstrip().startswith("ncalls")), 0)
    top = [line.rstrip().replace(str(Path.cwd()) + "/", "") for line in lines[start:] if line.strip()]
    return "\n".join([*_phase_table(stats), "", "```", *top, "```"])


def run(
    server_dsn: str, data: Path, *, games: int, sizes: Sequence[int], s3_games: int, repeat: int, say: Say,
    endpoint_url: str | None = None, profile: Path | None = None,
) -> ImportBench:  # fmt: skip
    """The whole benchmark against the server of `server_dsn` (it creates and drops DATABASE there)."""
    from temporaldb.bench import machine  # noqa: PLC0415

    if games < 1 or s3_games < 1 or repeat < 1 or any(size < 1 for size in sizes):
        raise ValueError("--games, --sizes, --s3-games and --repeat must be 1 or more")
    result = ImportBench(dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), machine(), _postgres(server_dsn),
                         _commit(), games)  # fmt: skip
    wanted = sorted({games, *sizes, s3_games})
    canonical = _canonical(data, wanted[-1], say)
    folders = {n: live_folder(data, n, canonical, say) for n in wanted}
    result.written = {"games": wanted[-1], **folders[wanted[-1]][1]}
    result.sizes = _measure_sizes(server_dsn, {n: folders[n][0] for n in {games, *sizes}}, games, repeat, say)
    result.local, result.s3 = _measure_s3(server_dsn, folders[s3_games][0], repeat, endpoint_url, say)
    if profile is not None:  # the smallest memory size: the issue asks for a profile of about 200 games
        result.profile = _profile(server_dsn, folders[min(sizes or [games])][0], profile, say)
    return result


# ---------------------------------------------------------------------------------------------------- reporting


@dataclass(frozen=True)
class Target:
    name: str
    goal: str
    measured: str
    met: bool


def targets(result: ImportBench) -> list[Target]:
    runs = [*result.sizes, *result.local, *result.s3]
    main, peak = result.main, max(max(run.peak_rss_mb, run.peak_memory_mb) for run in runs)
    ratio = result.s3_ratio
    speed = f">= {TARGET_EVENTS_PER_SECOND:,} events/s"
    return [
        Target(f"local JSON, {main.games:,} games, end to end (median of {result.repeats})", speed,
               f"{main.events_per_second:,.0f} events/s", main.events_per_second >= TARGET_EVENTS_PER_SECOND),
        Target("peak memory of the import and its workers, every run", f"<= {TARGET_PEAK_RSS_MB} MB", f"{peak:.0f} MB",
               peak <= TARGET_PEAK_RSS_MB),
        Target(f"S3 / local, {result.s3[0].games if result.s3 else 0} games (medians)", f"<= {TARGET_S3_RATIO:g}x",
               f"{ratio:.2f}x", ratio <= TARGET_S3_RATIO),
    ]  # fmt: skip


def _run_row(run: ImportRun) -> str:
    return (f"| {run.source} | {run.games:,} | {run.events:,} | {run.seconds:.1f} | {run.events_per_second:,.0f} | "
            f"{run.peak_rss_mb:.0f} | {run.peak_memory_mb:.0f} |")  # fmt: skip


def render_markdown(result: ImportBench, command: str) -> str:
    written = result.written
    lines = [
        "# Import benchmark results",
        "",
        f"- command: `{command}`",
        f"- date: {result.started_at}",
        f"- machine: {result.machine}",
        f"- PostgreSQL: {result.postgres} (a fresh database `{DATABASE}` per import)",
        f"- commit: {result.commit}",
        f"- input: synthetic live feeds (`temporaldb/feeds/synthetic.py`) of the first games of a league generated "
        f"from 2015-16 (seed {SEED}); the largest folder: {written.get('games', 0):,} games, "
        f"{written.get('events', 0):,} canonical events, {written.get('actions', 0):,} live actions, "
        f"{written.get('bytes', 0) / 1024**2:,.0f} MB of JSON (play-by-play and box scores), written in "
        f"{written.get('seconds', 0):.0f} s",
        "",
        "## Targets",
        "",
        "| measure | target | measured | met |",
        "|---|---|---|---|",
        *(f"| {t.name} | {t.goal} | {t.measured} | {'yes' if t.met else '**no**'} |" for t in targets(result)),
        "",
        "## Every import (`temporaldb import SOURCE --strict`, a child process, wall time end to end)",
        "",
        "| source | games | events | seconds | events/s | peak RSS MB | peak PSS with workers MB |",
        "|---|---|---|---|---|---|---|",
        *(_run_row(run) for run in result.sizes),
        *(_run_row(run) for pair in zip(result.local, result.s3, strict=True) for run in pair),
        "",
        f"S3 against local files, {len(result.s3)} alternating rounds: median {median_seconds(result.s3):.1f} s "
        f"against {median_seconds(result.local):.1f} s, {result.s3_ratio:.2f}x.",
        "",
        "## Notes",
        "",
        "- events: the canonical events each import loaded (its summary line), checked equal to the rows of "
        "nba.play_by_play after it; time: the import process's wall time from start to exit (Python start-up, "
        "reading, parsing, the canonical folder, COPY, stat lines, ANALYZE, reconciliation, commit).",
        "- peak RSS: the import process's own ru_maxrss, taken by a small wrapper process (`measure`): a child "
        "spawned by the benchmark itself would inherit the benchmark's high-water mark. Peak PSS with workers: the "
        "proportional set size of the import and its worker processes (one per core), summed, sampled every "
        "0.1 s; the memory target applies to the larger of the two.",
        "- The input is read from the page cache (written just before, or reused). moto's S3 server runs in the "
        "benchmark's process: its HTTP handling competes with the import and PostgreSQL for the same cores.",
        f"- The machine is shared with other work; the events/s figure is the median of {result.repeats} runs, the "
        "S3 ratio a ratio of medians of alternating rounds, all in this run.",
        "",
    ]
    if result.profile:
        lines += ["## Where the time goes (one more import under cProfile, not timed)", "", result.profile, ""]
    return "\n".join(lines)


def as_json(result: ImportBench) -> str:
    document = asdict(result)
    document["main"] = {**asdict(result.main), "events_per_second": round(result.main.events_per_second)}
    document["s3_ratio"] = round(result.s3_ratio, 3)
    return json.dumps(document, indent=2)


# ---------------------------------------------------------------------------------------------------- the command


def _sizes(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of game counts") from None


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from temporaldb import cli  # noqa: PLC0415 (cli imports this module)

    parser = commands.add_parser(
        NAME,
        help="benchmark `temporaldb import` on synthetic live feeds: events/s, peak RSS, S3 against local files",
        description="Write synthetic live play-by-play and box score JSON, import it with --strict into a fresh "
        f"database {DATABASE} on the server of --dsn (default: the local server) in a child process, and measure "
        "events/s and peak RSS at several input sizes, then S3 (moto's server) against local files.",
    )
    cli._add_dsn(parser)
    parser.add_argument("--games", type=int, default=1000, help="games of the events/s run (default 1000)")
    parser.add_argument("--sizes", type=_sizes, default=[200, 2000], help="games of the memory runs (default 200,2000)")
    parser.add_argument("--s3-games", type=int, default=100, help="games imported from S3 and locally (default 100)")
    parser.add_argument("--repeat", type=int, default=3, help="rounds of the S3 and local imports (default 3)")
    parser.add_argument("--data", type=Path, default=Path(".local/bench-import"), help="input folder (reused)")
    parser.add_argument(
        "--profile", type=Path, metavar="PATH", help="also profile the smallest size's import into PATH"
    )
    parser.add_argument("--results", type=Path, help="write the Markdown report here (e.g. bench/IMPORT-RESULTS.md)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.set_defaults(handler=cli._database_errors(_run))


def _run(args: argparse.Namespace) -> int:
    import shlex  # noqa: PLC0415

    from temporaldb import cli  # noqa: PLC0415
    from temporaldb.db import resolve_dsn  # noqa: PLC0415

    try:
        result = run(resolve_dsn(args.dsn), args.data, games=args.games, sizes=args.sizes, s3_games=args.s3_games,
                     repeat=args.repeat, say=cli._say, profile=args.profile)  # fmt: skip
    except (ValueError, RuntimeError) as error:
        print(f"temporaldb {NAME}: {error}", file=sys.stderr)
        return cli.EXIT_USAGE if isinstance(error, ValueError) else cli.EXIT_DATABASE
    given = [part for part in args.argv if not part.startswith("postgres")]  # never a DSN (it may hold a password)
    report = render_markdown(result, "temporaldb " + " ".join(shlex.quote(part) for part in given))
    if args.results:
        args.results.parent.mkdir(parents=True, exist_ok=True)
        args.results.write_text(report, encoding="utf-8")
    print(as_json(result) if args.json else report)
    return cli.EXIT_OK


if __name__ == "__main__":
    sys.exit(measure(sys.argv[1], sys.argv[2:]))
