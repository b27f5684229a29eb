"""The local upgrade drill's two throwaway clusters and their folder.

A `DrillCluster` is one cluster (binaries, data folder, log, private Unix socket); `cluster_settings` is what
both are configured with (socket only, no fsync: throwaway); `make_layout` makes the drill's folder with
`source/`, `target/`, `pg_upgrade/` (pg_upgrade's working folder) and the socket folder; `run_in` runs a tool as
the server account inside a folder.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import psycopg

from temporaldb.drills.report import Say
from temporaldb.drills.upgrade_prechecks import Connection
from temporaldb.pgcluster import (
    SUPERUSER,
    PgBinaries,
    ServerAccount,
    reachable_folder,
    read_postmaster,
    socket_dsn,
    socket_path_fits,
)

# The ports only name the socket files in the drill's private socket folder: no TCP port is opened.
SOURCE_PORT: Final = 5432
TARGET_PORT: Final = 5433
UPGRADE_OLD_PORT: Final = 50432
UPGRADE_NEW_PORT: Final = 50433
CONNECT_OPTIONS: Final = "-c timezone=UTC -c datestyle=ISO,YMD -c statement_timeout=0"

DRILL_SETTINGS: Final[dict[str, str]] = {
    "listen_addresses": "",
    "unix_socket_permissions": "0700",
    # Throwaway clusters: durability buys nothing here and costs most of the time on a slow disk.
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "shared_buffers": "128MB",
    "maintenance_work_mem": "256MB",
    "jit": "off",
    "timezone": "UTC",
    "log_timezone": "UTC",
}


@dataclass(frozen=True)
class DrillCluster:
    """One of the drill's two clusters: its binaries, data folder and private Unix socket."""

    label: str
    binaries: PgBinaries
    data_dir: Path
    log_file: Path
    socket_dir: Path
    port: int

    def dsn(self, database: str = "postgres", role: str = SUPERUSER) -> str:
        return socket_dsn(self.socket_dir, self.port, database, role)

    def connect(self, database: str = "postgres", role: str = SUPERUSER) -> Connection:
        return psycopg.connect(self.dsn(database, role), autocommit=True, connect_timeout=15, options=CONNECT_OPTIONS)

    @property
    def running(self) -> bool:
        return read_postmaster(self.data_dir) is not None


def cluster_settings(cluster: DrillCluster, extra: Mapping[str, str]) -> dict[str, str]:
    settings = {**DRILL_SETTINGS, "port": str(cluster.port), "unix_socket_directories": str(cluster.socket_dir)}
    if cluster.binaries.has_library("pg_stat_statements"):  # preloaded on RDS and on `temporaldb local`
        settings["shared_preload_libraries"] = "pg_stat_statements"
    return {**settings, **extra}


@dataclass(frozen=True)
class DrillLayout:
    """The drill's folder (`root`): both clusters' data, pg_upgrade's working folder, the loaded data."""

    root: Path
    socket_dir: Path
    private_socket_dir: bool
    """The socket folder is outside `root` (root's path was too long for a socket) and is deleted separately."""

    @property
    def source_data(self) -> Path:
        return self.root / "source"

    @property
    def target_data(self) -> Path:
        return self.root / "target"

    @property
    def upgrade_dir(self) -> Path:
        """pg_upgrade's working folder: it writes its scripts (delete_old_cluster.sh, ...) there."""
        return self.root / "pg_upgrade"

    @property
    def input_dir(self) -> Path:
        return self.root / "input"


def make_layout(work_dir: Path, account: ServerAccount, say: Say, on_change: Callable[[Path], None]) -> DrillLayout:
    """The drill's folders; `on_change(root)` once the first exists. Half-made folders are removed on failure."""
    base = reachable_folder(account, work_dir, say)
    root = Path(tempfile.mkdtemp(prefix="upgrade-drill-", dir=base))
    made = [root]
    try:
        on_change(root)  # the drill's first change: a failure from here on is one after a change
        root.chmod(0o700)
        account.own(root)
        socket_dir, private = root / "run", False
        if not socket_path_fits(socket_dir, UPGRADE_NEW_PORT):
            socket_dir, private = Path(tempfile.mkdtemp(prefix="tdb-upgrade-")), True
            made.append(socket_dir)
        else:
            socket_dir.mkdir(mode=0o700)
        account.own(socket_dir)
        upgrade_dir = root / "pg_upgrade"
        upgrade_dir.mkdir(mode=0o700)
        account.own(upgrade_dir)
    except BaseException:  # no server runs yet: removing the folders is the whole teardown
        for folder in made:
            shutil.rmtree(folder, ignore_errors=True)
        raise
    return DrillLayout(root, socket_dir, private)


def run_in(
    account: ServerAccount, folder: Path, args: Sequence[str], timeout: float
) -> subprocess.CompletedProcess[str]:
    """Run a tool as the server account with `folder` as its working directory (ServerAccount.run uses /)."""
    return account.run(["/bin/sh", "-c", 'cd "$1" && shift && exec "$@"', "sh", str(folder), *args], timeout)
