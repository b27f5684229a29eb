"""Shared fixtures: the project folder and offline runs of the real program."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from temporaldb.preview import ProgramRun, run_program
from temporaldb.stackconfig import ProjectFiles, load_stack_config

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
