"""The load's memory settings follow the server's size, within bounds; the environment overrides them."""

from __future__ import annotations

import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st

from temporaldb import loadmemory
from tests.pgservers import ThrowawayServer

MIB = 1024**2
# RDS's default parameter group on a db.t3.micro: DBInstanceClassMemory of about 760 MB,
# shared_buffers a quarter of it, effective_cache_size a half.
T3_MICRO_MEMORY = 760 * 10**6


def megabytes(text: str) -> int:
    assert text.endswith("MB"), text
    return int(text[:-2]) * MIB


@pytest.fixture(autouse=True)
def no_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(loadmemory.WORK_MEM_ENV, raising=False)
    monkeypatch.delenv(loadmemory.MAINTENANCE_ENV, raising=False)


def test_a_micro_gets_a_small_share_and_a_big_server_the_old_ceilings() -> None:
    micro = loadmemory.for_server(T3_MICRO_MEMORY // 4, T3_MICRO_MEMORY // 2)
    assert megabytes(micro.work_mem) + megabytes(micro.maintenance_work_mem) <= T3_MICRO_MEMORY // 4
    big = loadmemory.for_server(8 * 1024 * MIB, 24 * 1024 * MIB)
    assert (big.work_mem, big.maintenance_work_mem) == ("256MB", "1024MB")


@given(shared=st.integers(min_value=16 * MIB, max_value=2**40), cache=st.integers(min_value=16 * MIB, max_value=2**41))
def test_settings_stay_within_bounds_and_grow_with_the_server(shared: int, cache: int) -> None:
    small = loadmemory.for_server(shared, cache)
    larger = loadmemory.for_server(shared * 2, cache * 2)
    for memory in (small, larger):
        assert loadmemory.WORK_MEM_RANGE[0] <= megabytes(memory.work_mem) <= loadmemory.WORK_MEM_RANGE[1]
        low, high = loadmemory.MAINTENANCE_RANGE
        assert low <= megabytes(memory.maintenance_work_mem) <= high
    assert megabytes(larger.work_mem) >= megabytes(small.work_mem)
    assert megabytes(larger.maintenance_work_mem) >= megabytes(small.maintenance_work_mem)
    if small.estimated_server_bytes >= 2 * 1024 * MIB:  # above the floors, never more than 3/16 of the server
        used = megabytes(small.work_mem) + megabytes(small.maintenance_work_mem)
        assert used <= small.estimated_server_bytes * 3 // 16 + 2 * MIB


def test_the_environment_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(loadmemory.WORK_MEM_ENV, "12MB")
    chosen = loadmemory.for_server(T3_MICRO_MEMORY // 4, T3_MICRO_MEMORY // 2)
    assert chosen.work_mem == "12MB"
    assert chosen.maintenance_work_mem != "12MB"


def test_choose_reads_the_connected_servers_size(pg_server: ThrowawayServer) -> None:
    with psycopg.connect(pg_server.dsn) as connection:
        chosen = loadmemory.choose(connection)
        row = connection.execute(
            "select pg_size_bytes(current_setting('shared_buffers')), "
            "pg_size_bytes(current_setting('effective_cache_size'))"
        ).fetchone()
    assert row is not None
    assert chosen == loadmemory.for_server(int(row[0]), int(row[1]))
    assert chosen.estimated_server_bytes == max(4 * int(row[0]), 2 * int(row[1]))


def test_a_load_runs_with_the_chosen_settings(database: str, tmp_path: object, monkeypatch: pytest.MonkeyPatch) -> None:
    from pathlib import Path

    from temporaldb.load import load_directory
    from tests.nbadata import write_league
    from tests.test_load import HAND_MADE

    monkeypatch.setenv(loadmemory.WORK_MEM_ENV, "7MB")
    assert isinstance(tmp_path, Path)
    summary = load_directory(database, write_league(tmp_path / "hand", HAND_MADE))
    assert summary.memory is not None
    assert summary.memory.work_mem == "7MB"
    with psycopg.connect(database) as connection:
        expected = loadmemory.choose(connection).maintenance_work_mem
    assert summary.memory.maintenance_work_mem == expected
