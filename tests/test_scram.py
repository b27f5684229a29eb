"""temporaldb.scram against libpq and real servers (PostgreSQL 18 and 16).

libpq's PQencryptPasswordConn (psycopg's `PGconn.encrypt_password`) draws a
random salt and uses the server's `scram_iterations`; recomputing its verifier
with that salt and count must give the same text. A role given our verifier
then logs in with the password over TCP with SCRAM (pg_hba `scram-sha-256`,
the local server's own pg_hba.conf) and is refused with any other.

The servers here listen on 127.0.0.1 as well as on their Unix socket (tests/pgservers.py's listen on the
socket only); `start_tcp_server` is also used by tests/test_password_logging.py.
"""

from __future__ import annotations

import atexit
import base64
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from psycopg import sql

from temporaldb import localpg, scram
from tests.pgservers import PACKAGES, TEST_SETTINGS, available_majors

MAJORS = available_majors()
START_TIMEOUT_SECONDS = 30.0
PROBE_ROLE = "scram_probe"

# What the verifier functions take: printable ASCII (the passwords we make are letters and digits).
passwords = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1, max_size=64)


@dataclass
class TcpServer:
    """A throwaway server on its own Unix socket (trust) and on 127.0.0.1 (scram-sha-256)."""

    major: int
    root_dir: Path
    port: int
    binaries: localpg.PgBinaries
    account: localpg.ServerAccount
    stopped: bool = field(default=False, init=False)

    @property
    def data_dir(self) -> Path:
        return self.root_dir / "data"

    @property
    def log_file(self) -> Path:
        """What pg_ctl captures: everything when no logging collector runs, else the lines before it starts."""
        return self.root_dir / "server.log"

    def socket_dsn(self, database: str = "postgres", user: str = localpg.SUPERUSER) -> str:
        return localpg.socket_dsn(self.root_dir, self.port, database, user)

    def tcp_dsn(self, user: str, password: str, database: str = "postgres") -> str:
        return localpg.tcp_dsn(self.port, password, database, user)

    def stop(self) -> None:
        if self.stopped:
            return
        self.stopped = True
        atexit.unregister(self.stop)
        try:
            localpg.stop_cluster(self.binaries, self.account, self.data_dir, mode="immediate", timeout=30)
        finally:
            shutil.rmtree(self.root_dir, ignore_errors=True)


def ships_library(binaries: localpg.PgBinaries, name: str) -> bool:
    """Whether a server module is installed, wherever the build keeps them (`pg_config --pkglibdir`)."""
    result = subprocess.run(
        [binaries.tool("pg_config"), "--pkglibdir"], capture_output=True, text=True, check=True, timeout=30
    )
    return (Path(result.stdout.strip()) / f"{name}.so").is_file()


def binaries_for(major: int) -> localpg.PgBinaries:
    binaries = localpg.wheel_binaries(PACKAGES[major])
    assert binaries.major == major
    return binaries


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((localpg.LOOPBACK, 0))
        port: int = probe.getsockname()[1]
        return port


def start_tcp_server(major: int, base_dir: Path, extra_settings: Mapping[str, str] | None = None) -> TcpServer:
    """initdb and start a server of `major` listening on 127.0.0.1 too, with the local server's pg_hba.conf."""
    account = localpg.server_account()
    binaries = binaries_for(major).runnable_by(account)
    base = localpg.reachable_folder(account, base_dir)
    if not localpg.socket_path_fits(base / "pg00tcp-xxxxxxxx", 65535):
        base = Path(tempfile.gettempdir())
    root_dir = Path(tempfile.mkdtemp(prefix=f"pg{major}tcp-", dir=base))
    account.own(root_dir)
    server = TcpServer(major, root_dir, _free_port(), binaries, account)
    try:
        extra = ["--no-sync", *(["--no-data-checksums"] if major >= 18 else [])]
        localpg.init_cluster(binaries, account, server.data_dir, extra)
        (server.data_dir / "pg_hba.conf").write_text(localpg.PG_HBA, encoding="utf-8")
        for attempt in range(3):  # another process may take the free port before the server binds it
            configured = {
                **TEST_SETTINGS,
                "unix_socket_directories": str(root_dir),
                "listen_addresses": localpg.LOOPBACK,
                "port": str(server.port),
                **(extra_settings or {}),
            }
            localpg.write_settings(account, server.data_dir, configured)
            try:
                localpg.start_cluster(binaries, account, server.data_dir, server.log_file, START_TIMEOUT_SECONDS)
                break
            except localpg.LocalServerError:
                if attempt == 2:
                    raise
                server.port = _free_port()
    except BaseException:
        shutil.rmtree(root_dir, ignore_errors=True)
        raise
    atexit.register(server.stop)
    return server


def login_outcome(dsn: str) -> tuple[str, bool, str] | str:
    """(current_user, whether libpq sent a password, system_user) after logging in, or the refusal's message."""
    try:
        with psycopg.connect(dsn, connect_timeout=10, sslmode="disable") as connection:
            row = connection.execute("select current_user::text, system_user").fetchone()
            assert row is not None
            return str(row[0]), connection.pgconn.used_password, str(row[1])
    except psycopg.OperationalError as error:
        return str(error)


@pytest.fixture(scope="module", params=MAJORS, ids=[f"pg{major}" for major in MAJORS])
def tcp_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TcpServer]:
    server = start_tcp_server(request.param, tmp_path_factory.mktemp(f"scram{request.param}"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def admin(tcp_server: TcpServer) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    with psycopg.connect(tcp_server.socket_dsn(), autocommit=True) as connection:
        connection.execute(sql.SQL("create role {} login").format(sql.Identifier(PROBE_ROLE)))
        yield connection


@settings(max_examples=150, deadline=None)
@given(password=passwords, iterations=st.integers(min_value=1, max_value=5000))
def test_verifier_equals_what_libpq_computes(
    admin: psycopg.Connection[tuple[object, ...]], password: str, iterations: int
) -> None:
    # libpq takes the iteration count from the server's scram_iterations, reported to it on each change.
    admin.execute("select set_config('scram_iterations', %s, false)", (str(iterations),))
    theirs = admin.pgconn.encrypt_password(password.encode("ascii"), PROBE_ROLE.encode(), b"scram-sha-256").decode()
    assert theirs.startswith(f"SCRAM-SHA-256${iterations}:")
    assert scram.is_verifier(theirs)
    salt = scram.salt_of(theirs)
    assert len(salt) == scram.SALT_BYTES
    assert scram.verifier(password, salt, iterations) == theirs
    assert scram.verifier_from_b64_salt(password, base64.b64encode(salt).decode(), iterations) == theirs
    assert scram.matches(password, theirs)
    assert not scram.matches(password + "x", theirs)


def test_default_iterations_are_the_servers(admin: psycopg.Connection[tuple[object, ...]]) -> None:
    admin.execute("reset scram_iterations")
    theirs = admin.pgconn.encrypt_password(b"correct horse", PROBE_ROLE.encode(), b"scram-sha-256").decode()
    assert scram.verifier("correct horse", scram.salt_of(theirs)) == theirs


@settings(max_examples=25, deadline=None)
@given(password=passwords, wrong=passwords, salt=st.binary(min_size=scram.SALT_BYTES, max_size=scram.SALT_BYTES))
def test_a_role_given_our_verifier_logs_in_with_scram_over_tcp(
    tcp_server: TcpServer, admin: psycopg.Connection[tuple[object, ...]], password: str, wrong: str, salt: bytes
) -> None:
    ours = scram.verifier(password, salt)
    admin.execute(sql.SQL("alter role {} password {}").format(sql.Identifier(PROBE_ROLE), sql.Literal(ours)))
    stored = admin.execute("select rolpassword from pg_authid where rolname = %s", (PROBE_ROLE,)).fetchone()
    assert stored == (ours,)  # taken as a verifier and kept as is, not hashed again

    # SCRAM proves the password without sending it; system_user names the method that authenticated.
    assert login_outcome(tcp_server.tcp_dsn(PROBE_ROLE, password)) == (
        PROBE_ROLE,
        True,
        f"scram-sha-256:{PROBE_ROLE}",
    )
    if wrong != password:
        refused = login_outcome(tcp_server.tcp_dsn(PROBE_ROLE, wrong))
        assert isinstance(refused, str)
        assert f'password authentication failed for user "{PROBE_ROLE}"' in refused


def test_a_role_without_a_password_cannot_log_in_over_tcp(
    tcp_server: TcpServer, admin: psycopg.Connection[tuple[object, ...]]
) -> None:
    admin.execute(sql.SQL("alter role {} password null").format(sql.Identifier(PROBE_ROLE)))
    refused = login_outcome(tcp_server.tcp_dsn(PROBE_ROLE, "anything"))
    assert isinstance(refused, str)
    assert "password authentication failed" in refused
    # The socket stays trust, as on the local server.
    over_socket = login_outcome(tcp_server.socket_dsn(user=PROBE_ROLE))
    assert isinstance(over_socket, tuple)
    assert over_socket[:2] == (PROBE_ROLE, False)


SALT = bytes(range(scram.SALT_BYTES))


@pytest.mark.parametrize(
    ("password", "salt", "iterations", "message"),
    [
        ("", SALT, 4096, "empty password"),
        ("secret", SALT[:-1], 4096, "at least 16 bytes"),
        ("secret", b"", 4096, "at least 16 bytes"),
        ("pässword", SALT, 4096, "only ASCII"),
        ("パスワード", SALT, 4096, "only ASCII"),
        ("line\nbreak", SALT, 4096, "control character"),
        ("tab\there", SALT, 4096, "control character"),
        ("delete\x7f", SALT, 4096, "control character"),
        ("secret", SALT, 0, "iterations must be positive"),
    ],
)
def test_bad_inputs_raise_value_error(password: str, salt: bytes, iterations: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        scram.verifier(password, salt, iterations)


@pytest.mark.parametrize(
    ("salt_b64", "message"),
    [
        ("not base64!", "not standard base64"),
        (base64.urlsafe_b64encode(b"\xfb" * 16).decode(), "not standard base64"),  # `-`/`_`: URL-safe, not standard
        (base64.b64encode(SALT[:8]).decode(), "at least 16 bytes"),
    ],
)
def test_bad_base64_salts_raise_value_error(salt_b64: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        scram.verifier_from_b64_salt("secret", salt_b64)


def test_what_is_not_a_verifier() -> None:
    good = scram.verifier("secret", SALT)
    assert scram.is_verifier(good)
    assert scram.salt_of(good) == SALT
    iterations, rest = good.removeprefix("SCRAM-SHA-256$").split(":", 1)
    keys = rest.split("$")[1]
    not_verifiers = [
        "",
        "secret",
        "md5" + "0" * 32,  # an md5 hash: PostgreSQL would take it as one, not as SCRAM
        good + "\n",
        " " + good,
        good.replace(f"${iterations}:", "$٤٠٩٦:"),  # Arabic-Indic digits match `\d`, not PostgreSQL's parser
        good.replace(f"${iterations}:", "$0:"),
        good.replace(keys.split(":")[0], base64.b64encode(bytes(31)).decode()),  # a stored key of 31 bytes
        good.replace("SCRAM-SHA-256$", "SCRAM-SHA-1$"),
    ]
    for text in not_verifiers:
        assert not scram.is_verifier(text), text
        assert not scram.matches("secret", text), text
        with pytest.raises(ValueError, match="not a SCRAM-SHA-256 verifier"):
            scram.salt_of(text)
    # A password the verifier functions refuse matches nothing rather than raising.
    assert not scram.matches("", good)
    assert not scram.matches("sécret", good)
