"""Where the local restore drill runs, its clusters, its error, and how it writes instants.

`DrillSite` is who runs the servers, with which binaries, and the drill's folder (with its WAL archive, base
backup and data batches); `Cluster` is one of its clusters (source or restored: data folder, log and private
Unix socket); `DrillError` is what a failed stage raises; `utc_iso` writes an instant as the report does.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from temporaldb.drills.report import StageResult
from temporaldb.pgcluster import SUPERUSER, PgBinaries, ServerAccount, socket_dsn
from temporaldb.roles import database_name

SPORT: Final = "nba"
DATABASE: Final = database_name(SPORT)
SOCKET_PORT: Final = 5432  # names the socket file only: the clusters open no TCP port


class DrillError(Exception):
    """A stage of the drill failed; `stage` names it, `stages` are the records up to and including it."""

    def __init__(
        self, stage: str, message: str, stages: Sequence[StageResult] = (), drill_dir: Path | None = None
    ) -> None:
        super().__init__(f"restore drill, stage {stage}: {message}")
        self.stage = stage
        self.reason = message
        self.stages = tuple(stages)
        self.drill_dir = drill_dir


@dataclass
class Cluster:
    """One of the drill's clusters (source or restored): its data folder, log and private Unix socket."""

    name: str
    data_dir: Path
    log_file: Path
    socket_dir: Path

    def dsn(self, database: str = DATABASE, user: str = SUPERUSER) -> str:
        return socket_dsn(self.socket_dir, SOCKET_PORT, database, user)


@dataclass(frozen=True)
class DrillSite:
    """Who runs the servers, with which binaries, and the drill's folder."""

    account: ServerAccount
    binaries: PgBinaries
    drill_dir: Path

    @property
    def archive(self) -> Path:
        return self.drill_dir / "archive"

    @property
    def backup(self) -> Path:
        return self.drill_dir / "base-backup"

    @property
    def batch_a(self) -> Path:
        return self.drill_dir / "batches" / "a"

    @property
    def batch_b(self) -> Path:
        return self.drill_dir / "batches" / "b"


def utc_iso(moment: dt.datetime | None) -> str | None:
    """An instant as the restore drill reports it: ISO 8601 in UTC, to the microsecond."""
    return None if moment is None else moment.astimezone(dt.UTC).isoformat(timespec="microseconds")
