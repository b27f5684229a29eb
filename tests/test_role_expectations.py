"""The role model checked against the README, not against the code under test.

tests/test_roles.py derives most of what it expects from temporaldb/roles.py, so a privilege changed there
moves the expectation with it. Here the expectation is a literal table, written by hand from the README's
"Roles and privileges" section (nothing is imported from temporaldb.roles), and it is checked on a real
server bootstrapped as `temporaldb local start` does it: by trying each operation as each login role (and as
a role that holds only what PUBLIC holds), and by reading the catalog (pg_roles, pg_auth_members, the ACLs).

Where the README is silent the table says so (see UNDOCUMENTED): those rows hold what the server does today,
so that a change is still noticed, and the README should be completed.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import psycopg
import pytest
from psycopg import errors
from psycopg.conninfo import make_conninfo

from temporaldb.bootstrap import bootstrap
from temporaldb.cli import EXIT_DATABASE, EXIT_OK, main
from temporaldb.load import load_directory
from temporaldb.localpg import local_sports
from temporaldb.migrate import migrate
from tests.nbadata import STATS, reference_line, write_league
from tests.pgservers import ThrowawayServer, available_majors, start_throwaway_server
from tests.test_load import HAND_MADE, KOBE

# ------------------------------------------------------------------------------------------------------------
# The expectation, from README.md "Roles and privileges" (literal on purpose: do not derive it from roles.py)
# ------------------------------------------------------------------------------------------------------------

MIGRATOR_GROUP: Final = "temporal_migrator"
WRITER_GROUP: Final = "temporal_writer"
READER_GROUP: Final = "temporal_reader"
GROUPS: Final = (MIGRATOR_GROUP, WRITER_GROUP, READER_GROUP)
PUBLIC: Final = "PUBLIC"
OUTSIDER: Final = "outsider"
"""A login role of no group: it holds exactly what PUBLIC holds, so it stands for PUBLIC."""

SPORT_DATABASE: Final = "nba_temporal"
MANAGED_SCHEMAS: Final = ("nba", "nba_load", "temporaldb_meta")
MINUTE_MS: Final = 60_000


@dataclass(frozen=True)
class Login:
    group: str
    connection_limit: int
    statement_timeout_ms: int


# | migrator | login, in temporal_migrator | 2 connections, 60 min statements |
# | etl      | login, in temporal_writer   | 4 connections, 60 min |
# | analyst  | login, in temporal_reader   | 10 connections, 5 min |
# | app      | login, in temporal_reader   | 40 connections, 5 s |
LOGINS: Final = {
    "migrator": Login(MIGRATOR_GROUP, 2, 60 * MINUTE_MS),
    "etl": Login(WRITER_GROUP, 4, 60 * MINUTE_MS),
    "analyst": Login(READER_GROUP, 10, 5 * MINUTE_MS),
    "app": Login(READER_GROUP, 40, 5_000),
}

# Privileges on each sport database, exactly. PUBLIC: "no privilege on the sport databases (not even CONNECT)".
DATABASE_PRIVILEGES: Final[dict[str, frozenset[str]]] = {
    MIGRATOR_GROUP: frozenset({"CONNECT", "CREATE", "TEMPORARY"}),
    WRITER_GROUP: frozenset({"CONNECT", "TEMPORARY"}),
    READER_GROUP: frozenset({"CONNECT"}),
    PUBLIC: frozenset(),
}

# temporal_migrator "owns every object of nba, nba_load, temporaldb_meta": every privilege on them, by ownership.
# The other grantees, on every table and view of a schema (absent: nothing):
TABLE_PRIVILEGES: Final[dict[tuple[str, str], frozenset[str]]] = {
    (WRITER_GROUP, "nba"): frozenset({"SELECT", "INSERT", "UPDATE", "DELETE"}),  # "no DDL, no TRUNCATE"
    (READER_GROUP, "nba"): frozenset({"SELECT"}),  # "SELECT on nba tables and views"
    (READER_GROUP, "temporaldb_meta"): frozenset({"SELECT"}),  # "SELECT on the migration history"
    # UNDOCUMENTED: the README's writer row does not mention the migration history; the server grants it.
    (WRITER_GROUP, "temporaldb_meta"): frozenset({"SELECT"}),
}
# EXECUTE on every function of a schema (absent: none). PUBLIC "executes no function of ours".
FUNCTION_EXECUTE: Final[frozenset[tuple[str, str]]] = frozenset(
    {
        (WRITER_GROUP, "nba_load"),  # "EXECUTE on the nba_load routines"
        (READER_GROUP, "nba"),  # "EXECUTE on the nba functions (the as-of API)"
    }
)
# USAGE on schemas (what the grants above need to be usable); CREATE on a schema: only the owner group.
SCHEMA_USAGE: Final[dict[str, frozenset[str]]] = {
    WRITER_GROUP: frozenset({"nba", "nba_load", "temporaldb_meta"}),  # temporaldb_meta: UNDOCUMENTED, as above
    READER_GROUP: frozenset({"nba", "temporaldb_meta"}),
    PUBLIC: frozenset({"public"}),  # "only USAGE on schema public (no CREATE)"
}

# What each login may do, tried for real in nba_temporal (each in a transaction that is rolled back).
# The set names who succeeds; everyone else must get "permission denied" (SQLSTATE 42501).
MIGRATOR, ETL, ANALYST, APP = "migrator", "etl", "analyst", "app"
EVERY_LOGIN: Final = frozenset(LOGINS)
OPERATIONS: Final[tuple[tuple[str, frozenset[str]], ...]] = (
    # reading the data and the as-of API
    ("select count(*) from nba.games", EVERY_LOGIN),
    ("select count(*) from nba.play_by_play", EVERY_LOGIN),
    ("select count(*) from nba.stat_lines", EVERY_LOGIN),
    # a view; the README's writer row says "nba tables" (GRANT ... ON TABLE covers views)
    ("select count(*) from nba.player_stats", EVERY_LOGIN),
    ("select * from nba.player_stats_as_of(977, now())", frozenset({MIGRATOR, ANALYST, APP})),
    ("select * from nba.team_stats_as_of(1610612747, now(), 'career', 'all')", frozenset({MIGRATOR, ANALYST, APP})),
    ("select * from nba.player_stats_panel(array[977], array[now()])", frozenset({MIGRATOR, ANALYST, APP})),
    ("select * from nba.team_stats_panel(null, array[now()], 'game')", frozenset({MIGRATOR, ANALYST, APP})),
    ("select * from nba.standings_as_of(now())", frozenset({MIGRATOR, ANALYST, APP})),
    ("select max(version) from temporaldb_meta.schema_migrations", EVERY_LOGIN),  # etl: UNDOCUMENTED
    # writing data: the writer (and the owner)
    ("insert into nba.teams (team_id, abbreviation, name) values (99, 'XX', 'Nobody')", frozenset({MIGRATOR, ETL})),
    ("update nba.games set season = season where false", frozenset({MIGRATOR, ETL})),
    ("delete from nba.play_by_play where false", frozenset({MIGRATOR, ETL})),
    ("select nba_load.analyze_tables(false)", frozenset({MIGRATOR, ETL})),
    ("select nba_load.restore_event_key()", frozenset({MIGRATOR, ETL})),
    ("create temporary table scratch (x int)", frozenset({MIGRATOR, ETL})),
    # "no TRUNCATE", "no DDL": only the owner group
    ("truncate nba.stat_lines", frozenset({MIGRATOR})),
    ("delete from temporaldb_meta.schema_migrations where false", frozenset({MIGRATOR})),
    ("create table nba.scratch (x int)", frozenset({MIGRATOR})),
    ("create function nba.scratch() returns int language sql as 'select 1'", frozenset({MIGRATOR})),
    ("create function nba_load.scratch() returns int language sql as 'select 1'", frozenset({MIGRATOR})),
    ("create index on nba.games (season)", frozenset({MIGRATOR})),
    ("alter table nba.games add column scratch int", frozenset({MIGRATOR})),
    ("comment on table nba.games is 'scratch'", frozenset({MIGRATOR})),
    ("drop view nba.team_stats", frozenset({MIGRATOR})),
    ("drop function nba.player_stats_as_of(bigint, timestamptz, text, text)", frozenset({MIGRATOR})),
    ("create schema scratch", frozenset({MIGRATOR})),  # CREATE on the database
    # PUBLIC has no CREATE on schema public, and nobody else was given it
    ("create table public.scratch (x int)", frozenset()),
)

# ------------------------------------------------------------------------------------------------------------
# The server
# ------------------------------------------------------------------------------------------------------------

MAJORS = available_majors()
TABLE_PRIVILEGE_NAMES = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")


@dataclass
class Server:
    server: ThrowawayServer
    sports: tuple[str, ...]

    def dsn(self, role: str, database: str = SPORT_DATABASE) -> str:
        return make_conninfo(self.server.dsn, dbname=database, user=role)

    @property
    def databases(self) -> list[str]:
        return [f"{sport}_temporal" for sport in self.sports]


@pytest.fixture(scope="module", params=MAJORS, ids=[f"pg{major}" for major in MAJORS])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, project_root: Path
) -> Iterator[Server]:
    """A server of its own (the model's roles are cluster-wide), bootstrapped as `temporaldb local start` does."""
    throwaway = start_throwaway_server(request.param, tmp_path_factory.mktemp(f"expect{request.param}"))
    try:
        sports = local_sports(project_root)  # the dev stack's sports, as `temporaldb local start` reads them
        assert "nba" in sports
        bootstrap(throwaway.dsn, sports)
        with psycopg.connect(throwaway.dsn, autocommit=True) as admin:
            admin.execute(f"create role {OUTSIDER} login")
        found = Server(throwaway, sports)
        # `temporaldb load` as etl, as the README says it runs.
        load_directory(found.dsn(ETL), write_league(throwaway.root_dir / "league", HAND_MADE))
        yield found
    finally:
        throwaway.stop()


def _rows(dsn: str, query: str, params: Sequence[object] | Mapping[str, object] = ()) -> list[tuple[object, ...]]:
    with psycopg.connect(dsn, connect_timeout=10) as connection:
        return connection.execute(query, params).fetchall()


def _value(dsn: str, query: str, params: tuple[object, ...] = ()) -> object:
    rows = _rows(dsn, query, params)
    assert len(rows) == 1
    return rows[0][0]


def _group_of(role: str) -> str:
    """The group whose privileges `role` holds: a login's group, a group itself, or PUBLIC for the outsider."""
    if role in LOGINS:
        return LOGINS[role].group
    return PUBLIC if role == OUTSIDER else role


def _attempt(connection: psycopg.Connection[tuple[object, ...]], statement: str, role: str | None = None) -> bool:
    """Run `statement` in a transaction that is rolled back: True if allowed, False if refused for privileges."""
    try:
        with connection.transaction(force_rollback=True):
            if role is not None:
                connection.execute(f"set local role {role}")
            connection.execute(statement)
    except errors.InsufficientPrivilege:
        return False
    return True


# ------------------------------------------------------------------------------------------------------------
# Roles: kind, membership, attributes, connection limits, statement timeouts
# ------------------------------------------------------------------------------------------------------------


def test_roles_are_the_documented_groups_and_logins(server: Server) -> None:
    model = [*GROUPS, *LOGINS]
    rows = _rows(
        server.dsn("postgres"),
        "select rolname, rolcanlogin, rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls"
        " from pg_roles where rolname = any(%s)",
        (model,),
    )
    found = {str(row[0]): row[1:] for row in rows}
    assert sorted(found) == sorted(model)
    for name, (can_login, *powers) in found.items():
        assert can_login is (name in LOGINS), name  # groups are NOLOGIN
        # "Nothing relies on superuser rights": no role of the model holds a cluster-wide power.
        assert powers == [False] * 5, name
    members = _rows(
        server.dsn("postgres"),
        "select g.rolname, u.rolname from pg_auth_members m join pg_roles g on g.oid = m.roleid"
        " join pg_roles u on u.oid = m.member where g.rolname = any(%(model)s) or u.rolname = any(%(model)s)",
        {"model": model},
    )
    assert sorted(members) == sorted((login.group, name) for name, login in LOGINS.items())


def test_groups_cannot_log_in(server: Server) -> None:
    for group in GROUPS:
        with pytest.raises(psycopg.OperationalError, match="not permitted to log in"):
            psycopg.connect(server.dsn(group), connect_timeout=10)


@pytest.mark.parametrize("login", sorted(LOGINS))
def test_each_login_may_set_role_only_to_its_group(server: Server, login: str) -> None:
    with psycopg.connect(server.dsn(login), autocommit=True) as connection:
        allowed = {role for role in [*GROUPS, *LOGINS] if role != login and _attempt(connection, f"set role {role}")}
    assert allowed == {LOGINS[login].group}


@pytest.mark.parametrize("login", sorted(LOGINS))
def test_statement_timeout_of_each_login(server: Server, login: str) -> None:
    expected = LOGINS[login].statement_timeout_ms
    # What a session of the login gets, in milliseconds.
    in_session = _value(server.dsn(login), "select setting from pg_settings where name = 'statement_timeout'")
    assert int(str(in_session)) == expected
    # Where it comes from: the role's own setting in pg_roles.rolconfig (not a server or database default).
    config = _value(server.dsn("postgres"), "select rolconfig from pg_roles where rolname = %s", (login,))
    assert isinstance(config, list)
    values = [entry.split("=", 1)[1] for entry in config if entry.startswith("statement_timeout=")]
    assert len(values) == 1, config
    with psycopg.connect(server.dsn("postgres")) as connection:
        connection.execute("select set_config('statement_timeout', %s, true)", (values[0],))
        row = connection.execute("select setting from pg_settings where name = 'statement_timeout'").fetchone()
    assert row is not None
    assert int(str(row[0])) == expected


def test_the_app_timeout_cancels_a_long_statement(server: Server) -> None:
    """The only timeout short enough to try: app's 5 s."""
    limit_s = LOGINS[APP].statement_timeout_ms / 1000
    with psycopg.connect(server.dsn(APP)) as connection:
        started = time.monotonic()
        with pytest.raises(errors.QueryCanceled, match="statement timeout"):
            connection.execute("select pg_sleep(%s)", (limit_s * 6,))
        elapsed = time.monotonic() - started
    assert limit_s * 0.9 <= elapsed < limit_s * 3


@pytest.mark.parametrize("login", sorted(LOGINS))
def test_connection_limit_of_each_login(server: Server, login: str) -> None:
    limit = LOGINS[login].connection_limit
    assert _value(server.dsn("postgres"), "select rolconnlimit from pg_roles where rolname = %s", (login,)) == limit
    _wait_until_no_session_of(server, login)
    connections = []
    try:
        for _ in range(limit):
            connections.append(psycopg.connect(server.dsn(login), connect_timeout=10))
        with pytest.raises(psycopg.OperationalError, match="too many connections for role"):
            connections.append(psycopg.connect(server.dsn(login), connect_timeout=10))
    finally:
        for connection in connections:
            connection.close()


def _wait_until_no_session_of(server: Server, role: str) -> None:
    """A closed connection's backend exits a moment later; until then it still counts against the limit."""
    deadline = time.monotonic() + 10
    query = "select count(*) from pg_stat_activity where usename = %s"
    while _value(server.dsn("postgres"), query, (role,)) != 0:
        assert time.monotonic() < deadline, f"sessions of {role} linger"
        time.sleep(0.05)


# ------------------------------------------------------------------------------------------------------------
# The databases and PUBLIC
# ------------------------------------------------------------------------------------------------------------


def test_database_privileges_of_each_role(server: Server) -> None:
    roles = [*GROUPS, *LOGINS, OUTSIDER]
    query = "select has_database_privilege(%s, %s, %s)"
    with psycopg.connect(server.dsn("postgres")) as connection:
        for database in server.databases:
            found = {
                role: {
                    privilege
                    for privilege in ("CONNECT", "CREATE", "TEMPORARY")
                    if connection.execute(query, (role, database, privilege)).fetchone() == (True,)
                }
                for role in roles
            }
            assert found == {role: DATABASE_PRIVILEGES[_group_of(role)] for role in roles}, database


def test_public_holds_nothing_on_the_sport_databases(server: Server) -> None:
    for database in server.databases:
        granted = _rows(
            server.dsn("postgres"),
            "select a.privilege_type from pg_database d,"
            " aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) a where d.datname = %s and a.grantee = 0",
            (database,),
        )
        assert granted == [], database
        with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
            psycopg.connect(server.dsn(OUTSIDER, database), connect_timeout=10)
    # The refusal is about CONNECT on the sport database: the same role reaches the maintenance database.
    assert _value(server.dsn(OUTSIDER, "postgres"), "select current_user") == OUTSIDER


def test_public_has_only_usage_on_schema_public(server: Server) -> None:
    for database in server.databases:
        granted = _rows(
            server.dsn("postgres", database),
            "select a.privilege_type from pg_namespace n,"
            " aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) a where n.nspname = 'public'"
            " and a.grantee = 0",
        )
        assert sorted(str(row[0]) for row in granted) == ["USAGE"], database


def test_public_executes_no_function_of_ours(server: Server) -> None:
    for database in server.databases:
        executable = _rows(
            server.dsn("postgres", database),
            "select p.oid::regprocedure::text from pg_proc p join pg_namespace n on n.oid = p.pronamespace,"
            " aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a"
            " where n.nspname = any(%s) and a.grantee = 0",
            (list(MANAGED_SCHEMAS),),
        )
        assert executable == [], database


# ------------------------------------------------------------------------------------------------------------
# Objects: ownership, every privilege on every object, and the operations themselves
# ------------------------------------------------------------------------------------------------------------


def test_the_migrator_group_owns_every_object(server: Server) -> None:
    query = """
    select 'schema', n.nspname, n.nspowner::regrole::text from pg_namespace n where n.nspname = any(%(s)s)
    union all
    select 'relation', c.oid::regclass::text, c.relowner::regrole::text from pg_class c
    join pg_namespace n on n.oid = c.relnamespace where n.nspname = any(%(s)s)
    union all
    select 'function', p.oid::regprocedure::text, p.proowner::regrole::text from pg_proc p
    join pg_namespace n on n.oid = p.pronamespace where n.nspname = any(%(s)s)
    union all
    select 'type', t.oid::regtype::text, t.typowner::regrole::text from pg_type t
    join pg_namespace n on n.oid = t.typnamespace where n.nspname = any(%(s)s)
    """
    for database in server.databases:
        objects = _rows(server.dsn("postgres", database), query, {"s": list(MANAGED_SCHEMAS)})
        kinds = {str(kind) for kind, _, _ in objects}
        assert kinds == {"schema", "relation", "function", "type"}, database
        assert [row for row in objects if row[2] != MIGRATOR_GROUP] == [], database


def _expected_on_table(role: str, schema: str, privileges: tuple[str, ...]) -> set[str]:
    group = _group_of(role)
    if group == MIGRATOR_GROUP:
        return set(privileges)  # the owner
    return set(TABLE_PRIVILEGES.get((group, schema), frozenset()))


def _expected_execute(role: str, schema: str) -> bool:
    group = _group_of(role)
    return group == MIGRATOR_GROUP or (group, schema) in FUNCTION_EXECUTE


def _expected_on_schema(role: str, schema: str) -> set[str]:
    group = _group_of(role)
    if group == MIGRATOR_GROUP and schema in MANAGED_SCHEMAS:
        return {"USAGE", "CREATE"}
    return {"USAGE"} if schema in SCHEMA_USAGE.get(group, frozenset()) | SCHEMA_USAGE[PUBLIC] else set()


def _mismatches(connection: psycopg.Connection[tuple[object, ...]], name_filter: str = "%") -> list[str]:
    """Every (role, object, privilege) whose state on the server differs from the tables above."""
    roles = [*GROUPS, *LOGINS, OUTSIDER]
    table_privileges = TABLE_PRIVILEGE_NAMES + (("MAINTAIN",) if connection.info.server_version >= 170000 else ())
    tables = connection.execute(
        "select c.oid::regclass::text, n.nspname from pg_class c join pg_namespace n on n.oid = c.relnamespace"
        " where n.nspname = any(%s) and c.relkind in ('r', 'p', 'v', 'm', 'f') and c.relname like %s",
        (list(MANAGED_SCHEMAS), name_filter),
    ).fetchall()
    functions = connection.execute(
        "select p.oid::regprocedure::text, n.nspname from pg_proc p join pg_namespace n on n.oid = p.pronamespace"
        " where n.nspname = any(%s) and p.proname like %s",
        (list(MANAGED_SCHEMAS), name_filter),
    ).fetchall()
    assert tables
    assert functions
    wrong = []
    for role in roles:
        for table, schema in tables:
            held = {
                privilege
                for privilege in table_privileges
                if connection.execute("select has_table_privilege(%s, %s, %s)", (role, table, privilege)).fetchone()
                == (True,)
            }
            if held != (wanted := _expected_on_table(role, str(schema), table_privileges)):
                wrong.append(f"{role} on table {table}: holds {sorted(held)}, README says {sorted(wanted)}")
        for function, schema in functions:
            row = connection.execute("select has_function_privilege(%s, %s, 'EXECUTE')", (role, function)).fetchone()
            if row != (_expected_execute(role, str(schema)),):
                wrong.append(f"{role} on function {function}: EXECUTE is {row}")
    return wrong


def test_every_privilege_on_every_object(server: Server) -> None:
    """Each role, each table, view and function of the managed schemas, each privilege: as the tables say."""
    with psycopg.connect(server.dsn("postgres")) as connection:
        assert _mismatches(connection) == []
        for role in [*GROUPS, *LOGINS, OUTSIDER]:
            for schema in (*MANAGED_SCHEMAS, "public"):
                held = {
                    privilege
                    for privilege in ("USAGE", "CREATE")
                    if connection.execute(
                        "select has_schema_privilege(%s, %s, %s)", (role, schema, privilege)
                    ).fetchone()
                    == (True,)
                }
                assert held == _expected_on_schema(role, schema), (role, schema)


def test_future_objects_of_the_migrator_follow_the_model(server: Server) -> None:
    """README: "its default privileges give future tables and functions to the readers and the writer as above"."""
    with psycopg.connect(server.dsn("postgres")) as connection, connection.transaction(force_rollback=True):
        connection.execute(f"set local role {MIGRATOR_GROUP}")  # as migrations run
        for statement in (
            "create table nba.future_table (x int)",
            "create view nba.future_view as select x from nba.future_table",
            "create function nba.future_function() returns int language sql as 'select 1'",
            "create table nba_load.future_table (x int)",
            "create function nba_load.future_function() returns int language sql as 'select 1'",
            "create table temporaldb_meta.future_table (x int)",
            "create function temporaldb_meta.future_function() returns int language sql as 'select 1'",
        ):
            connection.execute(statement)
        connection.execute("reset role")
        assert _mismatches(connection, "future%") == []


@pytest.mark.parametrize("login", sorted(LOGINS))
def test_what_each_login_may_do(server: Server, login: str) -> None:
    with psycopg.connect(server.dsn(login), autocommit=True) as connection:
        allowed = {statement for statement, _ in OPERATIONS if _attempt(connection, statement)}
    assert allowed == {statement for statement, who in OPERATIONS if login in who}


def test_public_may_do_none_of_it(server: Server) -> None:
    """The outsider cannot connect, so a superuser session takes its identity (SET ROLE) inside nba_temporal."""
    with psycopg.connect(server.dsn("postgres"), autocommit=True) as connection:
        allowed = {statement for statement, _ in OPERATIONS if _attempt(connection, statement, role=OUTSIDER)}
        assert allowed == set()
        assert _attempt(connection, "create temporary table scratch (x int)", role=OUTSIDER) is False
        assert _attempt(connection, "select 1 from pg_catalog.pg_class limit 1", role=OUTSIDER) is True


# ------------------------------------------------------------------------------------------------------------
# The commands each login is for
# ------------------------------------------------------------------------------------------------------------


def test_migrator_runs_migrations_as_the_owner_group(server: Server) -> None:
    result = migrate(server.dsn(MIGRATOR))
    assert result.role == MIGRATOR_GROUP
    assert result.applied == ()


def test_etl_loaded_and_readers_cannot_load(server: Server, tmp_path: Path) -> None:
    assert _value(server.dsn(ETL), "select count(*) from nba.play_by_play") == len(HAND_MADE.events)
    assert _value(server.dsn(ETL), "select count(*) > 0 from nba.stat_lines") is True
    folder = write_league(tmp_path / "league", HAND_MADE)
    for reader in (ANALYST, APP):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            load_directory(server.dsn(reader), folder)


@pytest.mark.parametrize("login", sorted(LOGINS))
def test_temporaldb_asof_by_login(server: Server, login: str, capsys: pytest.CaptureFixture[str]) -> None:
    """`temporaldb asof` works for the readers (and the owner), not for the writer (no EXECUTE on nba)."""
    moment = "2016-06-19T19:02:34.560-05:00"
    argv = ["asof", str(KOBE), "--at", moment, "--dsn", server.dsn(login), "--json"]
    code = main(argv)
    out, err = capsys.readouterr()
    if login in {ANALYST, APP, MIGRATOR}:
        assert code == EXIT_OK
        stats = json.loads(out)["stats"]
        reference = reference_line(HAND_MADE, "p", KOBE, dt.datetime.fromisoformat(moment), "career", "regular")
        assert tuple(stats[name] for name in STATS) == reference
        assert stats["points"] > 0
    else:
        assert code == EXIT_DATABASE
        assert "the role may not do this" in err
        assert "permission denied" in err
        assert len(err.strip().splitlines()) == 1
