"""A load is all or nothing: killed, cut off or watched mid-way, the database shows before or after.

Uses the two lockout seasons (1998-99: 725 games, 2011-12: 990 games, about
0.8M events in all) so that a load lasts long enough to be interrupted and
observed, and the suite stays quick.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
import pytest

from temporaldb.generate import generate_league
from temporaldb.load import APPLICATION_NAME, load_directory
from tests.test_load import fingerprint


@pytest.fixture(scope="session")
def two_seasons(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("generated")
    first, second = base / "1998-99", base / "2011-12"
    generate_league(first, seasons=1, first_season=1998, seed=3)
    generate_league(second, seasons=1, first_season=2011, seed=3)
    return first, second


@pytest.fixture
def first_season_loaded(database: str, two_seasons: tuple[Path, Path]) -> str:
    load_directory(database, two_seasons[0])
    return database


def _start_load(dsn: str, folder: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "temporaldb.cli", "load", "--dsn", dsn, str(folder)],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )


def _wait_for_events_progress(process: subprocess.Popen[str]) -> None:
    """Block until the loader reports that events are streaming into COPY."""
    assert process.stderr is not None
    for line in process.stderr:
        if "events.csv:" in line and "%" in line:
            return
    pytest.fail(f"the loader ended (exit {process.wait()}) before streaming events")


def _no_loader_left(dsn: str) -> None:
    # autocommit: pg_stat_activity is a snapshot taken once per transaction.
    with psycopg.connect(dsn, autocommit=True) as connection:
        for _ in range(300):  # the server notices when it next reads from the dead client
            row = connection.execute(
                "select count(*) from pg_stat_activity where application_name = %s", (APPLICATION_NAME,)
            ).fetchone()
            if row and row[0] == 0:
                return
            time.sleep(0.1)
        rows = connection.execute(
            "select pid, state, wait_event_type, wait_event, left(query, 80) from pg_stat_activity"
            " where application_name = %s",
            (APPLICATION_NAME,),
        ).fetchall()
    pytest.fail(f"the killed loader's session is still in the server: {rows}")


def test_killed_load_leaves_the_database_as_before(first_season_loaded: str, two_seasons: tuple[Path, Path]) -> None:
    before = fingerprint(first_season_loaded)
    with _start_load(first_season_loaded, two_seasons[1]) as process:
        _wait_for_events_progress(process)
        process.send_signal(signal.SIGKILL)
        process.wait()
    _no_loader_left(first_season_loaded)
    assert fingerprint(first_season_loaded) == before


def test_lost_connection_leaves_the_database_as_before(
    first_season_loaded: str, two_seasons: tuple[Path, Path]
) -> None:
    before = fingerprint(first_season_loaded)
    with _start_load(first_season_loaded, two_seasons[1]) as process:
        _wait_for_events_progress(process)
        with psycopg.connect(first_season_loaded, autocommit=True) as admin:
            admin.execute(
                "select pg_terminate_backend(pid) from pg_stat_activity where application_name = %s",
                (APPLICATION_NAME,),
            )
        assert process.stderr is not None
        message = process.stderr.read()
        assert process.wait() != 0
    assert "temporaldb load:" in message
    assert fingerprint(first_season_loaded) == before


def test_a_reader_sees_before_or_after_never_half(first_season_loaded: str, two_seasons: tuple[Path, Path]) -> None:
    query = """select (select count(*) from nba.play_by_play), (select count(*) from nba.games),
                      (select sum(cum_points) from nba.stat_lines where subject_kind = 't')"""
    with psycopg.connect(first_season_loaded, autocommit=True) as connection:
        before = connection.execute(query).fetchone()
    seen: set[tuple[int, ...]] = set()
    done = threading.Event()

    def watch() -> None:
        with psycopg.connect(first_season_loaded, autocommit=True) as reader:
            while not done.is_set():
                row = reader.execute(query).fetchone()
                assert row is not None
                seen.add(tuple(row))

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        load_directory(first_season_loaded, two_seasons[1])
    finally:
        done.set()
        watcher.join()
    with psycopg.connect(first_season_loaded, autocommit=True) as connection:
        after = connection.execute(query).fetchone()
    assert before != after
    assert seen <= {tuple(before or ()), tuple(after or ())}
    assert tuple(before or ()) in seen
