"""Shared fixtures: the project folder and offline runs of the real program."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from temporaldb.migrate import default_migrations_dir, migrate
from temporaldb.preview import ProgramRun, run_program
from temporaldb.stackconfig import ProjectFiles, load_stack_config
from tests import drill_fixtures
from tests.pgservers import ThrowawayServer, available_majors, start_throwaway_server

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def project_root() -> Path:
    return PROJECT_ROOT


@pytest.fixture(scope="session")
def stack_config() -> Callable[[str], dict[str, str]]:
    """Engine strings for a stack: declared defaults overlaid with its stack file."""

    def load(stack: str) -> dict[str, str]:
        return load_stack_config(ProjectFiles(PROJECT_ROOT), stack)

    return load


# Mocks and config are set inside run_program, per run, never at import time.
@pytest.fixture(scope="session")
def dev_run() -> ProgramRun:
    return run_program(PROJECT_ROOT, "dev")


@pytest.fixture(scope="session")
def prod_run() -> ProgramRun:
    return run_program(PROJECT_ROOT, "prod")


@pytest.fixture(params=["dev", "prod"])
def any_run(request: pytest.FixtureRequest, dev_run: ProgramRun, prod_run: ProgramRun) -> ProgramRun:
    return dev_run if request.param == "dev" else prod_run


# --- real PostgreSQL servers, started by the tests themselves -------------------------------------


MAJORS = available_majors()


@pytest.fixture(scope="session", params=MAJORS, ids=[f"pg{major}" for major in MAJORS])
def pg_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThrowawayServer]:
    server = start_throwaway_server(request.param, tmp_path_factory.mktemp(f"pg{request.param}"))
    yield server
    server.stop()


def _fresh_database(server: ThrowawayServer, name: str) -> str:
    with psycopg.connect(server.dsn, autocommit=True) as admin:
        admin.execute(f'drop database if exists "{name}" with (force)')
        admin.execute(f'create database "{name}"')
    return server.dsn_for(name)


@pytest.fixture
def empty_database(pg_server: ThrowawayServer, request: pytest.FixtureRequest) -> str:
    """A new, empty database for one test; its DSN."""
    return _fresh_database(pg_server, f"t_{abs(hash(request.node.nodeid)) % 10**12}")


@pytest.fixture
def database(empty_database: str) -> str:
    """A new database with every migration applied; its DSN."""
    migrate(empty_database)
    return empty_database


@pytest.fixture
def migrations(tmp_path: Path) -> Path:
    """A private copy of sql/migrations that a test may append to or edit."""
    folder = tmp_path / "migrations"
    shutil.copytree(default_migrations_dir(), folder)
    return folder


# --- the AWS emulator, for the drills ----------------------------------------------------------------


@pytest.fixture(scope="module")
def emulator() -> Iterator[str]:
    """moto in server mode on a free port: the drills talk to it over HTTP, as to AWS.

    moto keeps its state in the process, shared by every server it runs: each
    module starts from an empty account and leaves one behind.
    """
    with drill_fixtures.emulator() as endpoint:
        drill_fixtures.reset(endpoint)
        yield endpoint
        drill_fixtures.reset(endpoint)


@pytest.fixture
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials and region, so boto3 never looks for real ones."""
    drill_fixtures.set_credentials(monkeypatch)
