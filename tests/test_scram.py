"""temporaldb.scram against libpq and real servers (PostgreSQL 18 and 16).

libpq's PQencryptPasswordConn (psycopg's `PGconn.encrypt_password`) draws a
random salt and uses the server's `scram_iterations`; recomputing its verifier
with that salt and count must give the same text. A role given our verifier
then logs in with the password over TCP with SCRAM (pg_hba `scram-sha-256`,
the local server's own pg_hba.conf) and is refused with any other.

The servers here listen on 127.0.0.1 as well as on their Unix socket (tests/pgservers.py, `tcp=True`).
"""

from __future__ import annotations

import base64
from collections.abc import Iterator

import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from psycopg import sql

from temporaldb import localpg, scram
from tests.pgservers import ThrowawayServer, available_majors, start_throwaway_server

MAJORS = available_majors()
PROBE_ROLE = "scram_probe"

# What the verifier functions take: printable ASCII (the passwords we make are letters and digits).
passwords = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1, max_size=64)


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
def tcp_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThrowawayServer]:
    # The local server's pg_hba.conf: trust on the socket, scram-sha-256 on 127.0.0.1.
    base = tmp_path_factory.mktemp(f"scram{request.param}")
    server = start_throwaway_server(request.param, base, tcp=True, hba=localpg.PG_HBA)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def admin(tcp_server: ThrowawayServer) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    with psycopg.connect(tcp_server.dsn, autocommit=True) as connection:
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
    tcp_server: ThrowawayServer, admin: psycopg.Connection[tuple[object, ...]], password: str, wrong: str, salt: bytes
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
    tcp_server: ThrowawayServer, admin: psycopg.Connection[tuple[object, ...]]
) -> None:
    admin.execute(sql.SQL("alter role {} password null").format(sql.Identifier(PROBE_ROLE)))
    refused = login_outcome(tcp_server.tcp_dsn(PROBE_ROLE, "anything"))
    assert isinstance(refused, str)
    assert "password authentication failed" in refused
    # The socket stays trust, as on the local server.
    over_socket = login_outcome(tcp_server.dsn_for("postgres", PROBE_ROLE))
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
