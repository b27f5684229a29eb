"""`temporaldb bench --server-like`: RDS's default parameter group for a class, on a throwaway server, loaded.

The formulas are checked against what real RDS instances report; the server is checked to run with them (and
with the stack's own parameters), inside its memory cgroup when one can be made, and to be gone afterwards,
failure or not; the end-to-end run loads one generated season and writes its section of the results file
without touching the rest, and a full benchmark's rewrite keeps it.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from temporaldb import bench, bench_small_server
from temporaldb.bench_small_server import RDS_MEMORY_FORMULAS, ServerShape, shape_of, small_server
from temporaldb.cli import EXIT_DATABASE, EXIT_OK, EXIT_USAGE, main
from temporaldb.pgcluster import LocalServerError, wheel_binaries
from tests.test_bench_demo_smoke import count_rows

MIB = 1024**2
MICRO_CLASS_MEMORY = 23_808 * 32_768  # the db.t3.micro figure the module reasons from its reported settings
FULL_REPORT = "# Benchmark results\n\n- command: `temporaldb bench`\n\n## Targets\n\n| measure | target |\n|---|---|\n"


def _settings(class_memory: int) -> dict[str, int]:
    return {formula.name: formula.value(class_memory) for formula in RDS_MEMORY_FORMULAS}


def test_the_formulas_give_what_a_real_db_t3_micro_reports() -> None:
    # RDS PostgreSQL 16.1 on db.t3.micro, default group: shared_buffers 186MB, effective_cache_size 372MB,
    # max_connections 81, maintenance_work_mem and autovacuum_work_mem at their 64MB floors.
    settings = _settings(MICRO_CLASS_MEMORY)
    assert settings["shared_buffers"] * 8 * 1024 == 186 * MIB
    assert settings["effective_cache_size"] * 8 * 1024 == 372 * MIB
    assert settings["max_connections"] == 81
    assert settings["maintenance_work_mem"] == settings["autovacuum_work_mem"] == 64 * 1024
    assert settings["autovacuum_max_workers"] == 3


def test_the_formulas_give_what_a_real_16_gib_class_reports() -> None:
    # db.t4g.xlarge (16 GiB), same report: shared_buffers 3927MB, effective_cache_size 7853MB, max_connections
    # 1727, maintenance_work_mem 257MB, autovacuum_work_mem 491MB; DBInstanceClassMemory is about 15706 MiB.
    settings = _settings(15_706 * MIB)
    assert settings["shared_buffers"] * 8 / 1024 == pytest.approx(3927, abs=1)
    assert settings["effective_cache_size"] * 8 / 1024 == pytest.approx(7853, abs=1)
    assert settings["max_connections"] == 1727
    assert settings["maintenance_work_mem"] / 1024 == pytest.approx(257, abs=1)  # above its floor here
    assert settings["autovacuum_work_mem"] / 1024 == pytest.approx(491, abs=1)


def test_max_connections_stops_at_5000() -> None:
    assert _settings(768 * 1024 * MIB)["max_connections"] == 5000


def test_shapes() -> None:
    micro = shape_of("db.t3.micro")
    assert (micro.memory_bytes, micro.class_memory_bytes) == (1024 * MIB, MICRO_CLASS_MEMORY)
    assert shape_of("db.t3.micro", 600).class_memory_bytes == 600 * MIB
    small = shape_of("db.t3.small")
    assert small.memory_bytes == 2048 * MIB
    assert small.class_memory_bytes < small.memory_bytes  # RDS keeps some for the OS
    with pytest.raises(ValueError, match=r"db\.t9\.huge"):
        shape_of("db.t9.huge")
    with pytest.raises(ValueError, match="--class-memory 2000"):
        shape_of("db.t3.micro", 2000)


def test_the_stack_parameters_apply_except_rds_only_ones() -> None:
    settings = bench_small_server.server_settings(shape_of("db.t3.micro"), wheel_binaries(), Path("/run/x"))
    assert "rds.force_ssl" not in settings
    assert settings["random_page_cost"] == "1.1"  # the stack's group over RDS's default
    assert settings["shared_buffers"] == str(MICRO_CLASS_MEMORY // 32768)
    assert settings["listen_addresses"] == ""  # socket only: no port to collide with


# --------------------------------------------------------------------------------------------------------
# The throwaway server
# --------------------------------------------------------------------------------------------------------


def _areas(*folders: Path) -> set[Path]:
    return {area for folder in folders for area in folder.glob("bench-small-server-*")}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    state = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8").rsplit(")", 1)[1].split()[0]
    return state != "Z"


class InjectedError(Exception):
    """Raised inside the server's block: the teardown must still happen."""


def _our_cgroups() -> list[Path]:
    return list(bench_small_server.CGROUP_V1_MEMORY.rglob(f"temporaldb-bench-{os.getpid()}"))


@pytest.fixture
def parent(tmp_path: Path) -> Iterator[Path]:
    """Where the servers go; no server folder (as root they land in the system temp dir) nor cgroup is left."""
    before = _areas(tmp_path, Path(tempfile.gettempdir()))
    yield tmp_path
    assert _areas(tmp_path, Path(tempfile.gettempdir())) == before
    assert _our_cgroups() == []


def test_the_server_runs_with_the_formulas_and_is_removed_on_failure(parent: Path) -> None:
    shape = shape_of("db.t3.micro")
    said: list[str] = []
    seen: list[bench_small_server.SmallServer] = []
    with pytest.raises(InjectedError):
        _check_then_fail(shape, parent, said, seen)
    (server,) = seen
    assert not server.area.exists()
    assert not _alive(server.pid)
    if server.cgroup is not None:
        assert not server.cgroup.path.exists()
    assert any("last lines of" in line for line in said)  # the log tail, for the failure


def _check_then_fail(
    shape: ServerShape, parent: Path, said: list[str], seen: list[bench_small_server.SmallServer]
) -> None:
    with small_server(shape, parent, said.append) as server:
        seen.append(server)
        with psycopg.connect(server.dsn) as connection:
            rows = dict(connection.execute("select name, setting from pg_settings").fetchall())
        for formula in RDS_MEMORY_FORMULAS:
            assert rows[formula.name] == str(formula.value(shape.class_memory_bytes)), formula.name
        assert rows["shared_buffers"] == "23808"  # 186MB, as on the real instance
        assert (rows["work_mem"], rows["max_wal_size"], rows["huge_pages"]) == ("4096", "2048", "off")
        assert (rows["random_page_cost"], rows["log_statement"], rows["jit"]) == ("1.1", "ddl", "off")
        _check_cgroup(server, shape)
        raise InjectedError


def _check_cgroup(server: bench_small_server.SmallServer, shape: ServerShape) -> None:
    if server.cgroup is None:
        assert "cannot" in server.cgroup_note or "no cgroup" in server.cgroup_note
        return
    assert server.cgroup.limit_bytes == shape.memory_bytes
    assert int(server.cgroup.read("memory.limit_in_bytes")) == shape.memory_bytes
    members = {int(pid) for pid in server.cgroup.read("cgroup.procs").split()}
    assert set(bench_small_server.server_pids(server.pid)) <= members  # the postmaster and every child
    assert server.cgroup.oom_kills() == 0


def test_a_server_that_cannot_start_leaves_nothing(parent: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bad = {**bench_small_server.RDS_FIXED_DEFAULTS, "huge_pages": "sometimes"}  # refused at start
    monkeypatch.setattr(bench_small_server, "RDS_FIXED_DEFAULTS", bad)
    with pytest.raises(LocalServerError), small_server(shape_of("db.t3.micro"), parent, print):
        pytest.fail("the server should not have started")


# --------------------------------------------------------------------------------------------------------
# End to end, through the CLI
# --------------------------------------------------------------------------------------------------------


@pytest.mark.usefixtures("parent")
def test_one_season_on_a_micro_server(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data, results = tmp_path / "data", tmp_path / "out" / "RESULTS.md"
    results.parent.mkdir()
    results.write_text(FULL_REPORT, encoding="utf-8")
    arguments = ["bench", "--server-like", "db.t3.micro", "--data", str(data), "--seasons", "1"]
    assert main([*arguments, "--results", str(results), "--json"]) == EXIT_OK
    figures = json.loads(capsys.readouterr().out)

    events = count_rows(data / "events.csv")
    assert (figures["events"], figures["games"]) == (events, count_rows(data / "games.csv"))
    assert figures["settings"]["shared_buffers"] == "23808 8kB"
    # loadmemory on this server: 744 MiB implied, a sixteenth and an eighth.
    assert (figures["load_work_mem"], figures["load_maintenance_work_mem"]) == ("46MB", "93MB")
    assert 0 < figures["load_seconds"] <= figures["load_to_queryable_seconds"] <= figures["wall_seconds"]
    assert figures["events_per_second"] == round(events / figures["load_to_queryable_seconds"])
    assert figures["loader_peak_rss_mb"] > 0
    shared_buffers_mb = 186
    assert figures["server_peak_pss_mb"] > 0
    assert figures["memory_samples"] > 0
    assert figures["play_by_play_mb"] > figures["derived_mb"] > 0
    if figures["cgroup"] is not None:
        cgroup = figures["cgroup"]
        assert cgroup["limit_mb"] == 1024
        assert cgroup["oom_kills"] == 0
        assert 0 < cgroup["peak_unreclaimable_mb"] <= cgroup["peak_usage_mb"] <= cgroup["limit_mb"]
        assert cgroup["peak_unreclaimable_mb"] < shared_buffers_mb + 400  # fits well within the class

    text = results.read_text(encoding="utf-8")
    assert text.startswith(FULL_REPORT.strip())  # the full benchmark's report is untouched
    assert text.count("<!-- begin small-server") == text.count("<!-- end small-server -->") == 1
    assert f"{events:,} events" in text
    assert f"({figures['events_per_second']:,} events/s)" in text

    # A full benchmark rewriting the file keeps the section; this mode replaces only its own.
    bench.write_report(results, "# Benchmark results\n\nnew full report\n")
    rewritten = results.read_text(encoding="utf-8")
    assert "new full report" in rewritten
    assert "## Targets" not in rewritten
    section = text[text.index("<!-- begin small-server") :].strip()
    assert rewritten.endswith(section + "\n")
    bench.write_section(results, bench_small_server.SECTION, "## replaced")
    replaced = results.read_text(encoding="utf-8")
    assert "new full report" in replaced
    assert "## replaced" in replaced
    assert f"{events:,} events" not in replaced


@pytest.mark.usefixtures("parent")
def test_a_failed_load_exits_4_and_leaves_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    bench.generate(data, 1, print)
    events = data / "events.csv"
    header = events.read_text(encoding="utf-8").splitlines()[0]
    events.write_text(f"{header}\nnot,an,event\n", encoding="utf-8")  # generate_once reuses it as it is
    arguments = ["bench", "--server-like", "db.t3.micro", "--data", str(data), "--seasons", "1"]
    assert main(arguments) == EXIT_DATABASE


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--server-like", "db.t3.micro", "--dsn", "postgresql:///x"], "--dsn does not apply"),
        (["--server-like", "db.t3.micro", "--queries", "10"], "--queries does not apply"),
        (["--class-memory", "700"], "--class-memory needs --server-like"),
        (["--server-like", "db.t9.huge"], "db.t9.huge"),
    ],
)
def test_usage_errors(extra: list[str], message: str, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["bench", "--data", str(tmp_path / "data"), *extra]) == EXIT_USAGE
    assert message in capsys.readouterr().err
    assert not (tmp_path / "data").exists()  # refused before generating anything
