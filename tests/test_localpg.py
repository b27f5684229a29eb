"""`temporaldb local` and the test suite's throwaway servers, against real PostgreSQL servers (no mocks)."""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from temporaldb import localcli, localpg, pgcluster
from temporaldb.migrate import default_migrations_dir, read_migrations
from tests.pgservers import available_majors, start_throwaway_server


def _make_project() -> Path:
    # Not pytest's tmp_path: as root the server runs as an unprivileged account that must traverse the folders
    # above its data, and pytest's temp root is private (0700). The system temp dir is world-traversable.
    folder = Path(tempfile.mkdtemp(prefix="temporaldb-local-"))
    folder.chmod(0o755)
    (folder / "Pulumi.yaml").write_text("", encoding="utf-8")
    return folder


@pytest.fixture
def project() -> Iterator[Path]:
    folder = _make_project()
    yield folder
    localpg.stop(folder)  # when a test failed half-way
    shutil.rmtree(folder)


def _query(dsn: str, sql: str) -> object:
    with psycopg.connect(dsn, connect_timeout=10) as connection:
        row = connection.execute(sql).fetchone()
    assert row is not None
    return row[0]


def test_lifecycle(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert localpg.status(project) is None

    server = localpg.start(project)
    assert not server.already_running
    current = localpg.status(project)
    assert current is not None
    assert current.running
    assert current.pid == server.pid
    assert current.version.startswith("18.")
    assert current.data_dir == project.resolve() / ".local" / "pg18" / "data"
    assert current.size_bytes > 1_000_000

    url = localpg.dsn(project)
    assert url.startswith("postgresql://postgres@/nba_temporal?host=")
    assert _query(url, "select current_database()") == "nba_temporal"
    assert _query(localpg.dsn(project, tcp=True), "select inet_server_addr()::text") == "127.0.0.1/32"
    assert _query(url, "select current_setting('shared_preload_libraries')") == "pg_stat_statements"
    monkeypatch.chdir(project)
    assert localpg.default_dsn() == url

    # The role model and the migrations come with the server, as on RDS; a second start changes nothing.
    assert "created role temporal_reader" in server.changes
    assert server.schema_version == len(read_migrations(default_migrations_dir()))
    assert _query(localpg.dsn(project, role="analyst"), "select current_user") == "analyst"
    assert localpg.default_dsn(role="etl") == localpg.dsn(project, role="etl")
    # Over TCP a login role signs in with its own local password (SCRAM), as on RDS.
    assert _query(localpg.dsn(project, tcp=True, role="app"), "select current_user") == "app"

    again = localpg.start(project)
    assert again.already_running
    assert again.pid == server.pid
    assert again.changes == ()

    assert localpg.stop(project) is True
    stopped = localpg.status(project)
    assert stopped is not None
    assert not stopped.running
    assert localpg.default_dsn() is None
    with pytest.raises(localpg.LocalServerNotRunningError, match=r"run `temporaldb local start`"):
        localpg.dsn(project)
    assert localpg.stop(project) is False

    assert localpg.start(project).port == server.port  # the port is kept while it is free
    assert localpg.stop(project)

    # A server that cannot start is reported with the end of its log.
    auto_conf = current.data_dir / "postgresql.auto.conf"
    auto_conf.write_text("shared_buffers = 'plenty'\n", encoding="utf-8")
    with pytest.raises(pgcluster.LocalServerError, match=r"(?s)did not start.*last lines of .*shared_buffers"):
        localpg.start(project)


@pytest.mark.skipif(os.geteuid() != 0, reason="only root hands the server to another account")
def test_unreachable_project_as_root_runs_the_server_outside_it() -> None:
    folder = Path(tempfile.mkdtemp(prefix="temporaldb-private-"))  # 0700: the server account cannot enter it
    area = localpg.LocalPaths.for_project(folder).area
    try:
        assert not area.is_relative_to(folder)
        assert area.is_relative_to(pgcluster.OUTSIDE_BASE)
        server = localpg.start(folder)
        with psycopg.connect(server.dsn()) as connection:
            assert connection.execute("select current_database()").fetchone() == ("nba_temporal",)
        assert localpg.LocalPaths.for_project(folder).area == area  # status, dsn and stop find it again
    finally:
        localpg.stop(folder)
        shutil.rmtree(area.parent, ignore_errors=True)
        shutil.rmtree(folder)


def _cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="temporaldb")
    localcli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["local", *argv])
    code: int = args.handler(args)
    return code


def test_cli_exit_codes(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    where = ["--project-dir", str(project)]
    assert _cli("status", *where) == 1
    assert _cli("dsn", *where) == 1
    assert "local server is not running; run `temporaldb local start`" in capsys.readouterr().err

    assert _cli("start", *where) == 0
    started = capsys.readouterr()
    assert "started" in started.err
    assert _cli("start", *where) == 0
    assert "already running" in capsys.readouterr().err

    assert _cli("dsn", *where) == 0
    url = capsys.readouterr().out.strip()
    assert url == started.out.strip()
    assert _query(url, "select current_database()") == "nba_temporal"
    assert _cli("dsn", "--database", "postgres", *where) == 0
    assert _query(capsys.readouterr().out.strip(), "select current_database()") == "postgres"

    assert _cli("status", *where) == 0
    assert "running     yes" in capsys.readouterr().out
    assert _cli("stop", *where) == 0
    assert _cli("stop", *where) == 0
    assert "was not running" in capsys.readouterr().err
    assert _cli("status", *where) == 1
    assert "running     no" in capsys.readouterr().out


def test_cli_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)  # no Pulumi.yaml here or above
    assert _cli("status") == 2
    assert "no Pulumi.yaml" in capsys.readouterr().err
    with pytest.raises(SystemExit) as raised:
        _cli()
    assert raised.value.code == 2


def test_both_majors_are_available() -> None:
    assert available_majors() == [16, 18]


@pytest.mark.parametrize("major", available_majors())
def test_throwaway_server(major: int, tmp_path: Path) -> None:
    with start_throwaway_server(major, tmp_path) as server:
        assert server.major == major
        assert int(str(_query(server.dsn, "select current_setting('server_version_num')"))) // 10000 == major
        assert _query(server.dsn, "select current_setting('fsync')") == "off"
        root_dir = server.root_dir
    assert not root_dir.exists()
    server.stop()  # idempotent


@pytest.mark.skipif(os.geteuid() != 0, reason="only root hands the server to another account")
def test_binaries_out_of_reach_are_copied_where_the_server_account_can_run_them() -> None:
    installed = pgcluster.wheel_binaries()
    site = installed.bin_dir.parent.parent.parent
    private = Path(tempfile.mkdtemp(prefix="temporaldb-private-venv-"))  # 0700, like a mktemp -d checkout
    copies: list[Path] = []
    try:
        shutil.copytree(
            site / installed.package / "pginstall", private / installed.package / "pginstall", symlinks=True
        )
        shutil.copytree(site / f"{installed.package}.libs", private / f"{installed.package}.libs", symlinks=True)
        hidden = pgcluster.PgBinaries(installed.package, private / installed.package / "pginstall" / "bin")
        account = pgcluster.server_account()
        assert not account.can_reach(hidden.bin_dir / "postgres")
        runnable = hidden.runnable_by(account)
        copies.append(runnable.bin_dir.parents[2])  # <copy>/<package>/pginstall/bin
        assert runnable.bin_dir.is_relative_to(pgcluster.OUTSIDE_BASE)
        result = account.run([runnable.tool("initdb"), "--version"], timeout=30)
        assert result.returncode == 0, result.stderr
        assert runnable.runnable_by(account) == runnable
    finally:
        shutil.rmtree(private)
        for copy in copies:  # this private install path is unique to the test: nothing else reuses its copy
            shutil.rmtree(copy, ignore_errors=True)
