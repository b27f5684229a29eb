"""`temporaldb bench-import` (temporaldb/feeds/bench.py) on a few games: what it reports, not how fast it is."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import conninfo

from temporaldb.feeds import bench, synthetic
from tests.pgservers import ThrowawayServer, start_throwaway_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThrowawayServer]:
    """One PostgreSQL 18 server is enough: the benchmark measures the importer, not the server."""
    started = start_throwaway_server(18, tmp_path_factory.mktemp("pg18-bench"))
    yield started
    started.stop()


def stored_events(server_dsn: str) -> int:
    with psycopg.connect(conninfo.make_conninfo(server_dsn, dbname=bench.DATABASE)) as connection:
        row = connection.execute("select count(*) from nba.play_by_play").fetchone()
    assert row is not None
    return int(row[0])


def test_a_small_run_reports_every_import(server: ThrowawayServer, tmp_path: Path) -> None:
    said: list[str] = []
    result = bench.run(server.dsn, tmp_path, games=3, sizes=[1], s3_games=2, repeat=2, say=said.append)
    games = list(synthetic.read_canonical(tmp_path / "canonical", limit=3))
    events = [len(game.events) for game in games]
    assert result.main is not None
    assert (result.main.games, result.main.events, result.main.source) == (3, sum(events), "local")
    # The main size --repeat times (the median run is the figure), then each memory size once.
    assert [(run.games, run.events) for run in result.sizes] == [(3, sum(events))] * 2 + [(1, events[0])]
    assert result.main in result.sizes[:2]
    assert result.repeats == 2
    assert [run.source for run in result.local + result.s3] == ["local"] * 2 + ["s3"] * 2
    assert {(run.games, run.events) for run in result.local + result.s3} == {(2, events[0] + events[1])}
    # The last import was the second S3 round, into a fresh database: it holds exactly what it reported.
    assert stored_events(server.dsn) == result.s3[-1].events
    for run in [*result.sizes, *result.local, *result.s3]:
        assert run.seconds > 0
        assert 20 < run.peak_rss_mb < 10_000  # a Python process, in MB (not kB)
        assert 10 < run.peak_memory_mb < 10_000
    assert result.s3_ratio == pytest.approx(bench.median_seconds(result.s3) / bench.median_seconds(result.local))
    assert result.written["games"] == 3
    assert result.written["events"] == sum(events)
    assert result.written["actions"] > sum(events)  # blocks, steals and substitution pairs are rows of their own
    assert any(line.startswith("uploading 4 documents to s3://") for line in said)
    markdown = bench.render_markdown(result, "temporaldb bench-import --games 3")
    expected = [
        "- command: `temporaldb bench-import --games 3`", "| local JSON, 3 games, end to end (median of 2) |",
        "| peak memory of the import and its workers, every run |", "| S3 / local, 2 games (medians) |",
        f"| local | 3 | {sum(events):,} |", "| s3 | 2 |",
    ]  # fmt: skip
    assert [text for text in expected if text not in markdown] == []
    figures = json.loads(bench.as_json(result))
    assert figures["main"]["events"] == sum(events)
    assert figures["s3_ratio"] == round(result.s3_ratio, 3)


def test_written_feeds_are_reused(tmp_path: Path) -> None:
    said: list[str] = []
    canonical = bench._canonical(tmp_path, 2, said.append)
    folder, first = bench.live_folder(tmp_path, 2, canonical, said.append)
    again, second = bench.live_folder(tmp_path, 2, canonical, said.append)
    assert (again, second) == (folder, first)
    assert said[-1] == f"reusing the live feeds of 2 games in {folder}"
    assert len(sorted(folder.rglob("*.json"))) == 4


def test_a_failed_import_is_an_error_naming_its_exit_code(server: ThrowawayServer, tmp_path: Path) -> None:
    dsn = bench.fresh_database(server.dsn)
    with pytest.raises(RuntimeError, match=r"temporaldb import exited with code 3: .*no such file or folder"):
        bench.run_import(dsn, [str(tmp_path / "missing")], source="local", say=lambda _line: None)


def test_the_command_parses_its_options() -> None:
    parser = argparse.ArgumentParser()
    bench.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["bench-import", "--games", "50", "--sizes", "10,20", "--results", "r.md"])
    assert (args.games, args.sizes, args.s3_games, args.repeat, args.results) == (50, [10, 20], 100, 3, Path("r.md"))
    with pytest.raises(SystemExit):
        parser.parse_args(["bench-import", "--sizes", "ten"])


def test_measure_counts_the_memory_of_worker_processes(tmp_path: Path) -> None:
    """Two children holding 80 MB at once: the tree's PSS is their sum, which is what the machine must have
    (ru_maxrss is one process's peak at most: wait4 folds reaped children in by maximum)."""
    holder = "import time; block = b'x' * (80 * 1024 * 1024); time.sleep(1.5)"
    parent = (
        "import subprocess, sys; children = [subprocess.Popen([sys.executable, '-c', "
        f"{holder!r}]) for _ in range(2)]; [child.wait() for child in children]"
    )
    usage = tmp_path / "usage.json"
    assert bench.measure(str(usage), [sys.executable, "-c", parent]) == 0
    measured = json.loads(usage.read_text(encoding="utf-8"))
    assert measured["tree_pss_kb"] > 160 * 1024
