"""The role model on a real server: what each login role may and may not do after the local bootstrap.

Each PostgreSQL major gets a server of its own: the model's roles are cluster-wide, and the
other tests' databases must not see them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from psycopg import errors
from psycopg.conninfo import make_conninfo

from temporaldb import roles
from temporaldb.bootstrap import BootstrapResult, bootstrap
from temporaldb.load import load_directory
from temporaldb.migrate import MigrationError, default_migrations_dir, migrate, read_migrations
from tests.nbadata import write_league
from tests.pgservers import ThrowawayServer, available_majors, start_throwaway_server
from tests.test_load import HAND_MADE, KOBE

MAJORS = available_majors()
SPORTS = ("nba", "nfl")
NBA = roles.database_name("nba")
NFL = roles.database_name("nfl")
TABLE_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")


@dataclass
class Bootstrapped:
    server: ThrowawayServer
    first: BootstrapResult

    def dsn(self, role: str, database: str = NBA) -> str:
        return make_conninfo(self.server.dsn, dbname=database, user=role)


@pytest.fixture(scope="module", params=MAJORS, ids=[f"pg{major}" for major in MAJORS])
def model(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bootstrapped]:
    server = start_throwaway_server(request.param, tmp_path_factory.mktemp(f"roles{request.param}"))
    try:
        first = bootstrap(server.dsn, SPORTS)
        load_directory(
            make_conninfo(server.dsn, dbname=NBA, user="etl"), write_league(server.root_dir / "l", HAND_MADE)
        )
        yield Bootstrapped(server, first)
    finally:
        server.stop()


def _value(dsn: str, query: str, params: tuple[object, ...] = ()) -> object:
    with psycopg.connect(dsn, connect_timeout=10) as connection:
        row = connection.execute(query, params).fetchone()
    assert row is not None
    return row[0]


def _refused(dsn: str, statement: str) -> None:
    with psycopg.connect(dsn, connect_timeout=10) as connection, pytest.raises(errors.InsufficientPrivilege):
        connection.execute(statement)


def _catalog(server: ThrowawayServer) -> dict[str, object]:
    """Everything the bootstrap may touch, as text: roles, memberships, settings and every ACL."""
    snapshot: dict[str, object] = {}
    with psycopg.connect(server.dsn) as connection:
        snapshot["roles"] = connection.execute(
            "select rolname, rolcanlogin, rolconnlimit, rolconfig, rolsuper from pg_roles order by 1"
        ).fetchall()
        snapshot["members"] = connection.execute(
            "select roleid::regrole::text, member::regrole::text from pg_auth_members order by 1, 2"
        ).fetchall()
        snapshot["databases"] = connection.execute(
            "select datname, datacl::text from pg_database order by 1"
        ).fetchall()
    for database in map(roles.database_name, SPORTS):
        with psycopg.connect(make_conninfo(server.dsn, dbname=database)) as connection:
            snapshot[database] = [
                connection.execute(query).fetchall()
                for query in (
                    "select nspname, nspowner::regrole::text, nspacl::text from pg_namespace order by 1",
                    "select oid::regclass::text, relowner::regrole::text, relacl::text from pg_class"
                    " where relnamespace::regnamespace::text not in ('pg_catalog', 'information_schema') order by 1",
                    "select oid::regprocedure::text, proowner::regrole::text, proacl::text from pg_proc"
                    " where pronamespace::regnamespace::text not in ('pg_catalog', 'information_schema') order by 1",
                    "select defaclrole::regrole::text, defaclnamespace, defaclobjtype, defaclacl::text"
                    " from pg_default_acl order by 1, 2, 3",
                    "select extname, extversion from pg_extension order by 1",
                )
            ]
    return snapshot


def test_second_bootstrap_changes_nothing(model: Bootstrapped) -> None:
    assert model.first.changes, "the first run on an empty server must have created something"
    before = _catalog(model.server)
    again = bootstrap(model.server.dsn, SPORTS)
    assert again.changes == ()
    assert _catalog(model.server) == before


def test_login_roles_carry_their_limits(model: Bootstrapped) -> None:
    for login in roles.LOGINS:
        dsn = model.dsn(login.name)
        assert _value(dsn, "select current_setting('statement_timeout')") == _timeout_text(login.statement_timeout_ms)
        assert _value(dsn, "select rolconnlimit from pg_roles where rolname = current_user") == login.connection_limit
        groups = _value(
            dsn,
            "select array_agg(g.rolname::text) from pg_auth_members m join pg_roles g on g.oid = m.roleid"
            " where m.member = (select oid from pg_roles where rolname = current_user)",
        )
        assert groups == [login.group]
        assert (
            _value(dsn, "select rolsuper or rolcreatedb or rolcreaterole from pg_roles where rolname = current_user")
            is False
        )


def _timeout_text(ms: int) -> str:
    """How PostgreSQL shows a timeout: the largest unit that divides it."""
    for unit, size in (("h", 3_600_000), ("min", 60_000), ("s", 1000)):
        if ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


@pytest.mark.parametrize("login", ["analyst", "app"])
def test_readers_query_and_call_both_as_of_functions(model: Bootstrapped, login: str) -> None:
    dsn = model.dsn(login)
    assert _value(dsn, "select count(*) from nba.games") == len(HAND_MADE.games)
    moment = max(event.wall_clock_time for event in HAND_MADE.events)
    team = HAND_MADE.games[0].home_team_id
    for query, subject in (
        ("select row(nba.player_stats_as_of(%s, %s, 'career'))::text", KOBE),
        ("select row(nba.team_stats_as_of(%s, %s, 'career'))::text", team),
    ):
        answer = _value(dsn, query, (subject, moment))
        assert answer == _value(model.dsn("postgres"), query, (subject, moment))  # the superuser's answer
        assert answer != "()"
    assert _value(dsn, "select max(version) from temporaldb_meta.schema_migrations") == len(
        read_migrations(default_migrations_dir())
    )


@pytest.mark.parametrize(
    "statement",
    [
        "insert into nba.teams (team_id, abbreviation, name) values (99, 'XX', 'Nobody')",
        "update nba.games set season = season",
        "delete from nba.play_by_play",
        "truncate nba.stat_lines",
        "create table nba.scratch (x int)",
        "create table public.scratch (x int)",
        "create schema scratch",
        "select nba_load.analyze_tables(false)",
        "drop function nba.player_stats_as_of(bigint, timestamptz, text, text)",
        "delete from temporaldb_meta.schema_migrations",
    ],
)
def test_readers_cannot_write_or_create(model: Bootstrapped, statement: str) -> None:
    _refused(model.dsn("analyst"), statement)


@pytest.mark.parametrize(
    "statement",
    [
        "create table nba.scratch (x int)",
        "create table public.scratch (x int)",
        "create schema scratch",
        "drop table nba.games",
        "alter table nba.play_by_play drop constraint play_by_play_pkey",
        "truncate nba.stat_lines",
        "create index on nba.games (season)",
        "create function nba.scratch() returns int language sql as 'select 1'",
        "delete from temporaldb_meta.schema_migrations",
    ],
)
def test_the_writer_cannot_change_the_schema(model: Bootstrapped, statement: str) -> None:
    _refused(model.dsn("etl"), statement)


def test_the_writer_loaded_and_its_routines_stay_guarded(model: Bootstrapped) -> None:
    """The fixture loaded HAND_MADE as etl; the key routine refuses a table that holds events."""
    dsn = model.dsn("etl")
    assert _value(dsn, "select count(*) from nba.play_by_play") == len(HAND_MADE.events)
    with psycopg.connect(dsn) as connection, pytest.raises(errors.ObjectNotInPrerequisiteState):
        connection.execute("select nba_load.drop_event_key()")
    owner = _value(dsn, "select pg_get_userbyid(relowner) from pg_class where oid = 'nba.play_by_play'::regclass")
    assert owner == roles.OWNER_GROUP


def test_public_cannot_connect(model: Bootstrapped) -> None:
    with psycopg.connect(model.server.dsn, autocommit=True) as admin:
        admin.execute("drop role if exists outsider")
        admin.execute("create role outsider login")
    assert _value(model.dsn("outsider", "postgres"), "select current_user") == "outsider"
    for database in (NBA, NFL):
        with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
            psycopg.connect(model.dsn("outsider", database), connect_timeout=10)


def test_privileges_match_the_model_on_every_object(model: Bootstrapped) -> None:
    """A plain reference: for each login role, object and privilege, granted exactly when the model says so."""
    with psycopg.connect(model.dsn("postgres")) as connection:
        tables = connection.execute(
            "select c.oid::regclass::text, n.nspname from pg_class c join pg_namespace n on n.oid = c.relnamespace"
            " where n.nspname = any(%s) and c.relkind in ('r', 'v')",
            (list(roles.MANAGED_SCHEMAS),),
        ).fetchall()
        functions = connection.execute(
            "select p.oid::regprocedure::text, n.nspname from pg_proc p join pg_namespace n on n.oid = p.pronamespace"
            " where n.nspname = any(%s)",
            (list(roles.MANAGED_SCHEMAS),),
        ).fetchall()
        assert len(tables) > 5
        assert len(functions) > 5
        for login in roles.LOGINS:
            if login.group == roles.OWNER_GROUP:
                continue
            for schema in roles.MANAGED_SCHEMAS:
                usage = connection.execute("select has_schema_privilege(%s, %s, 'USAGE')", (login.name, schema))
                assert _one(usage) == ("USAGE" in _granted(login.group, schema, "schema")), (login.name, schema)
            for table, schema in tables:
                for privilege in TABLE_PRIVILEGES:
                    has = _one(
                        connection.execute("select has_table_privilege(%s, %s, %s)", (login.name, table, privilege))
                    )
                    assert has == (privilege in _granted(login.group, schema, "table")), (login.name, table, privilege)
            for function, schema in functions:
                has = _one(
                    connection.execute("select has_function_privilege(%s, %s, 'EXECUTE')", (login.name, function))
                )
                assert has == ("EXECUTE" in _granted(login.group, schema, "function")), (login.name, function)


def _granted(group: str, schema: str, object_type: str) -> set[str]:
    return {
        privilege
        for grant in roles.OBJECT_GRANTS
        if grant.role == group and grant.schema == schema and grant.object_type == object_type
        for privilege in grant.privileges
    }


def _one(cursor: psycopg.Cursor[tuple[object, ...]]) -> object:
    row = cursor.fetchone()
    assert row is not None
    return row[0]


def test_the_migrator_migrates_and_new_objects_follow_the_model(model: Bootstrapped, migrations: Path) -> None:
    folder = migrations
    version = len(read_migrations(folder)) + 1
    (folder / f"V{version:04d}__scratch.sql").write_text(
        "-- Purpose: a test migration.\n-- Requires: nothing.\n-- Lock/downtime: none.\n"
        "create table nba.scratch (x int);\n"
        "create function nba.scratch_count() returns bigint language sql as 'select count(*) from nba.scratch';\n"
        "create function nba_load.scratch_fill() returns void language sql as 'insert into nba.scratch values (1)';\n",
        encoding="utf-8",
    )
    result = migrate(model.dsn("migrator", NFL), folder)  # nfl: the other tests keep the model's schema
    assert result.role == roles.OWNER_GROUP
    assert [migration.version for migration in result.applied] == [version]
    with psycopg.connect(model.dsn("postgres", NFL)) as connection:
        owner = connection.execute("select pg_get_userbyid(relowner) from pg_class where oid = 'nba.scratch'::regclass")
        assert _one(owner) == roles.OWNER_GROUP
        checks = {
            ("analyst", "select on nba.scratch"): "select has_table_privilege('analyst', 'nba.scratch', 'SELECT')",
            ("analyst", "insert on nba.scratch"): "select has_table_privilege('analyst', 'nba.scratch', 'INSERT')",
            ("etl", "insert on nba.scratch"): "select has_table_privilege('etl', 'nba.scratch', 'INSERT')",
            ("app", "execute scratch_count"): "select has_function_privilege('app', 'nba.scratch_count()', 'EXECUTE')",
            ("etl", "execute scratch_count"): "select has_function_privilege('etl', 'nba.scratch_count()', 'EXECUTE')",
            (
                "etl",
                "execute scratch_fill",
            ): "select has_function_privilege('etl', 'nba_load.scratch_fill()', 'EXECUTE')",
            (
                "app",
                "execute scratch_fill",
            ): "select has_function_privilege('app', 'nba_load.scratch_fill()', 'EXECUTE')",
        }
        found = {key: _one(connection.execute(query)) for key, query in checks.items()}
    assert found == {
        ("analyst", "select on nba.scratch"): True,
        ("analyst", "insert on nba.scratch"): False,
        ("etl", "insert on nba.scratch"): True,
        ("app", "execute scratch_count"): True,
        ("etl", "execute scratch_count"): False,
        ("etl", "execute scratch_fill"): True,
        ("app", "execute scratch_fill"): False,
    }


def test_a_database_migrated_before_the_model_is_adopted(model: Bootstrapped, tmp_path: Path) -> None:
    """A superuser-migrated database (as the local server made before roles existed) moves to the owner group."""
    legacy = roles.database_name("legacy")
    with psycopg.connect(model.server.dsn, autocommit=True) as admin:
        admin.execute(f"drop database if exists {legacy} with (force)")
        admin.execute(f"create database {legacy}")
    assert migrate(make_conninfo(model.server.dsn, dbname=legacy)).role == "postgres"
    result = bootstrap(model.server.dsn, ("legacy",))
    assert any("now owned by temporal_migrator" in change for change in result.changes)
    foreign = _value(
        model.dsn("postgres", legacy),
        "select count(*) from pg_class c join pg_namespace n on n.oid = c.relnamespace"
        " where n.nspname = any(%s) and c.relowner <> 'temporal_migrator'::regrole",
        (list(roles.MANAGED_SCHEMAS),),
    )
    assert foreign == 0
    summary = load_directory(model.dsn("etl", legacy), write_league(tmp_path / "l", HAND_MADE))
    assert summary.rows["events"] == len(HAND_MADE.events)


def test_a_membership_without_set_is_repaired_and_never_migrated_around(model: Bootstrapped, migrations: Path) -> None:
    """PostgreSQL 16+: a member that cannot SET ROLE would create objects outside the model; both guards hold."""
    with psycopg.connect(model.server.dsn, autocommit=True) as admin:
        admin.execute("revoke temporal_migrator from migrator")
        admin.execute("grant temporal_migrator to migrator with set false")
    with pytest.raises(MigrationError, match="migrator cannot SET ROLE temporal_migrator"):
        migrate(model.dsn("migrator", NBA), migrations)
    repaired = bootstrap(model.server.dsn, ("nba",))  # nfl carries a test migration by now
    assert "granted temporal_migrator to migrator" in repaired.changes
    assert migrate(model.dsn("migrator", NBA), migrations).role == roles.OWNER_GROUP
