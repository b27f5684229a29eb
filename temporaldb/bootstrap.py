"""The role model (temporaldb/roles.py) applied with plain SQL: the local twin of components/access.py.

`bootstrap()` connects as a superuser (the embedded server's `postgres`),
creates the roles and one database per sport, migrates each as `migrator`,
then grants. Every step reads the catalog first and changes only what
differs, and the changes made are returned: a second run returns none.

On RDS the same model is applied by `pulumi up` through the `postgresql`
provider; nothing here needs superuser rights that the model relies on, the
superuser only stands in for the RDS master user.

Passwords of login roles, when given, reach the server only as SCRAM-SHA-256
verifiers computed here (temporaldb/scram.py), as on RDS: the ALTER ROLE text
that `log_statement = ddl` logs and pg_stat_statements keeps holds no password.
A role keeps its verifier while it still matches the password (checked against
pg_authid, which needs the superuser), so a second run changes nothing.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from temporaldb import roles, scram
from temporaldb.migrate import MigrationResult, migrate

Connection = psycopg.Connection[tuple[object, ...]]
Privileges = frozenset[str]

# Grantees whose privileges the model decides on every managed object: what it
# does not list, they do not get. The owner group owns the objects instead.
MANAGED_GRANTEES: Final = (roles.WRITER_GROUP, roles.READER_GROUP, roles.PUBLIC)
MAINTENANCE_DATABASE: Final = "postgres"
_OBJECT_KEYWORDS: Final = {"table": "tables", "function": "functions"}
_DEFAULT_ACL_TYPES: Final = {"table": "r", "function": "f"}


@dataclass(frozen=True)
class BootstrapResult:
    changes: tuple[str, ...]
    """What was changed, one line each; empty when the server already matched the model."""
    migrations: Mapping[str, MigrationResult]
    """The migration outcome per database."""
    skipped_extensions: tuple[str, ...]
    """Extensions of the model that this server does not ship."""


def bootstrap(
    admin_conninfo: str,
    sports: Sequence[str],
    migrations_dir: Path | None = None,
    say: Callable[[str], None] | None = None,
    passwords: Mapping[str, str] | None = None,
) -> BootstrapResult:
    """Bring roles, databases, schema and grants in line with the model; return what changed.

    `passwords` gives login roles of the model their password ({role: password});
    a login role it does not name keeps whatever password it has (none when created here).
    """
    report = say or (lambda _: None)
    wanted_passwords = _checked_passwords(passwords or {})
    changes: list[str] = []
    skipped: list[str] = []
    migrations: dict[str, MigrationResult] = {}

    def note(change: str) -> None:
        changes.append(change)
        report(change)

    with _connect(admin_conninfo, MAINTENANCE_DATABASE) as server:
        _ensure_roles(server, note)
        for login, password in wanted_passwords.items():
            _ensure_password(server, login, password, note)
        for sport in sports:
            _ensure_database(server, roles.database_name(sport), note)
    for sport in sports:
        database = roles.database_name(sport)
        with _connect(admin_conninfo, database) as connection:
            _reconcile(
                connection,
                sql.SQL("database {}").format(sql.Identifier(database)),
                _database_acl(connection, database),
                _wanted(roles.DATABASE_PRIVILEGES),
                note,
            )
            _reconcile(
                connection,
                sql.SQL("schema public"),
                _schema_acl(connection, "public"),
                {roles.PUBLIC: frozenset(roles.PUBLIC_SCHEMA_PRIVILEGES)},
                note,
            )
            skipped += _ensure_extensions(connection, note)
            _adopt_objects(connection, note)
        migrator = roles.LOGINS[0].name
        result = migrate(make_conninfo(admin_conninfo, dbname=database, user=migrator), migrations_dir)
        migrations[database] = result
        for applied in result.applied:
            note(f"{database}: applied {applied.file_name} as {result.role}")
        with _connect(admin_conninfo, database) as connection:
            _grant_on_objects(connection, note)
            _grant_on_future_objects(connection, note)
    return BootstrapResult(tuple(changes), migrations, tuple(sorted(set(skipped))))


def _connect(conninfo: str, database: str) -> Connection:
    return psycopg.connect(make_conninfo(conninfo, dbname=database), autocommit=True, connect_timeout=15)


# --------------------------------------------------------------------------------------------------------------
# Roles and databases
# --------------------------------------------------------------------------------------------------------------

_ROLE_ROW = """
select rolcanlogin, rolconnlimit, rolsuper or rolcreatedb or rolcreaterole or rolreplication or rolbypassrls,
       coalesce(rolconfig, '{}')
from pg_roles where rolname = %s
"""


def _ensure_roles(connection: Connection, note: Callable[[str], None]) -> None:
    for group in roles.GROUPS:
        _ensure_role(connection, group.name, login=False, connection_limit=-1, settings={}, note=note)
    for login in roles.LOGINS:
        settings = {"statement_timeout": str(login.statement_timeout_ms)}
        _ensure_role(
            connection, login.name, login=True, connection_limit=login.connection_limit, settings=settings, note=note
        )
        _ensure_membership(connection, login.name, login.group, note)


def _ensure_role(
    connection: Connection,
    name: str,
    *,
    login: bool,
    connection_limit: int,
    settings: Mapping[str, str],
    note: Callable[[str], None],
) -> None:
    role = sql.Identifier(name)
    attributes = sql.SQL("{} nosuperuser nocreatedb nocreaterole noreplication nobypassrls connection limit {}").format(
        sql.SQL("login" if login else "nologin"), sql.Literal(connection_limit)
    )
    row = connection.execute(_ROLE_ROW, (name,)).fetchone()
    if row is None:
        connection.execute(sql.SQL("create role {} {}").format(role, attributes))
        note(f"created role {name}")
        current_settings: list[str] = []
    else:
        can_login, limit, powerful, config = row
        if (can_login, limit, powerful) != (login, connection_limit, False):
            connection.execute(sql.SQL("alter role {} {}").format(role, attributes))
            note(f"reset the attributes of role {name}")
        current_settings = list(config) if isinstance(config, list) else []
    for setting, value in settings.items():
        if f"{setting}={value}" not in current_settings:
            connection.execute(
                sql.SQL("alter role {} set {} = {}").format(role, sql.Identifier(setting), sql.Literal(value))
            )
            note(f"set {setting} = {value} for role {name}")


def _checked_passwords(passwords: Mapping[str, str]) -> dict[str, str]:
    """The passwords, in the model's order, once each names a login role and has a verifier (else ValueError)."""
    unknown = sorted(set(passwords) - set(roles.login_names()))
    if unknown:
        raise ValueError(f"passwords for roles that are not login roles of the model: {', '.join(unknown)}")
    checked: dict[str, str] = {}
    for name in roles.login_names():
        if name in passwords:
            try:
                scram.verifier(passwords[name], bytes(scram.SALT_BYTES), iterations=1)  # a cheap check of the text
            except ValueError as error:
                raise ValueError(f"the password of role {name}: {error}") from None
            checked[name] = passwords[name]
    return checked


def _ensure_password(connection: Connection, name: str, password: str, note: Callable[[str], None]) -> None:
    """The role's stored verifier is one of `password`; else a new one, made here with a fresh salt, replaces it.

    Only the verifier is sent: PostgreSQL stores it as is, and the statement
    text (server log, pg_stat_statements) never holds the password.
    """
    row = connection.execute("select rolpassword from pg_authid where rolname = %s", (name,)).fetchone()
    current = row[0] if row is not None else None
    if isinstance(current, str) and scram.matches(password, current):
        return
    wanted = scram.verifier(password, secrets.token_bytes(scram.SALT_BYTES))
    connection.execute(sql.SQL("alter role {} password {}").format(sql.Identifier(name), sql.Literal(wanted)))
    note(f"set the password of role {name}")


def _ensure_membership(connection: Connection, login: str, group: str, note: Callable[[str], None]) -> None:
    """`login` is in `group` (inheriting it, and allowed to SET ROLE to it) and in no other group of the model."""
    modern = int(connection.info.server_version) >= 160000
    options = "m.inherit_option and m.set_option" if modern else "true"
    rows = connection.execute(
        f"select g.rolname, {options} from pg_auth_members m join pg_roles g on g.oid = m.roleid "
        "join pg_roles u on u.oid = m.member where u.rolname = %s",
        (login,),
    ).fetchall()
    current = {str(name): bool(complete) for name, complete in rows}
    for other in sorted(current.keys() & {g.name for g in roles.GROUPS} - {group}):
        connection.execute(sql.SQL("revoke {} from {}").format(sql.Identifier(other), sql.Identifier(login)))
        note(f"removed {login} from {other}")
    if current.get(group):
        return
    # PostgreSQL 16 grants membership with options; the migrator must SET ROLE, everyone inherits.
    with_options = sql.SQL(" with inherit true, set true") if modern else sql.SQL("")
    connection.execute(sql.SQL("grant {} to {}{}").format(sql.Identifier(group), sql.Identifier(login), with_options))
    note(f"granted {group} to {login}")


def _ensure_database(connection: Connection, name: str, note: Callable[[str], None]) -> None:
    if connection.execute("select from pg_database where datname = %s", (name,)).fetchone() is None:
        connection.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
        note(f"created database {name}")


def _ensure_extensions(connection: Connection, note: Callable[[str], None]) -> list[str]:
    database = connection.info.dbname
    skipped = []
    for name in roles.EXTENSIONS:
        row = connection.execute(
            "select installed_version is not null from pg_available_extensions where name = %s", (name,)
        ).fetchone()
        if row is None:
            skipped.append(name)
        elif not row[0]:
            connection.execute(sql.SQL("create extension {}").format(sql.Identifier(name)))
            note(f"{database}: created extension {name}")
    return skipped


# --------------------------------------------------------------------------------------------------------------
# Ownership: objects made before the model existed (e.g. by a superuser) move to the owner group
# --------------------------------------------------------------------------------------------------------------

_FOREIGN_OWNED = """
with owner as (select oid from pg_roles where rolname = %(owner)s),
     managed as (select oid, nspname from pg_namespace where nspname = any(%(schemas)s))
select 'schema', quote_ident(n.nspname)
from managed m join pg_namespace n on n.oid = m.oid
where n.nspowner <> (select oid from owner)
union all
select case c.relkind when 'v' then 'view' when 'm' then 'materialized view' when 'S' then 'sequence'
                      else 'table' end,
       quote_ident(m.nspname) || '.' || quote_ident(c.relname)
from pg_class c join managed m on m.oid = c.relnamespace
where c.relkind in ('r', 'p', 'v', 'm', 'S') and c.relowner <> (select oid from owner)
  -- a sequence that belongs to a column follows its table
  and not exists (select from pg_depend d where d.classid = 'pg_class'::regclass and d.objid = c.oid
                  and d.deptype in ('a', 'i'))
union all
select 'function', p.oid::regprocedure::text
from pg_proc p join managed m on m.oid = p.pronamespace
where p.proowner <> (select oid from owner)
union all
select 'type', quote_ident(m.nspname) || '.' || quote_ident(t.typname)
from pg_type t join managed m on m.oid = t.typnamespace
where t.typowner <> (select oid from owner)
  and (t.typtype in ('e', 'd', 'r')
       or (t.typtype = 'c' and (select relkind from pg_class where oid = t.typrelid) = 'c'))
order by 1, 2
"""


def _adopt_objects(connection: Connection, note: Callable[[str], None]) -> None:
    database = connection.info.dbname
    rows = connection.execute(
        _FOREIGN_OWNED, {"owner": roles.OWNER_GROUP, "schemas": list(roles.MANAGED_SCHEMAS)}
    ).fetchall()
    for kind, name in rows:
        # Names come from the catalog, quoted there (quote_ident, regprocedure).
        connection.execute(
            sql.SQL("alter {} {} owner to {}").format(
                sql.SQL(str(kind)), sql.SQL(str(name)), sql.Identifier(roles.OWNER_GROUP)
            )
        )
        note(f"{database}: {kind} {name} now owned by {roles.OWNER_GROUP}")


# --------------------------------------------------------------------------------------------------------------
# Privileges
# --------------------------------------------------------------------------------------------------------------


def _grantee(role: str) -> sql.Composable:
    """PUBLIC is a key word, not a role name: quoted it would name a role called "public"."""
    return sql.SQL("public") if role == roles.PUBLIC else sql.Identifier(role)


def _wanted(privileges: Mapping[str, tuple[str, ...]]) -> dict[str, Privileges]:
    return {role: frozenset(granted) for role, granted in privileges.items()}


def _model_privileges(schema: str, object_type: roles.ObjectType) -> dict[str, Privileges]:
    """Every managed grantee's privileges on `object_type` objects in `schema`: unlisted means none."""
    wanted: dict[str, Privileges] = dict.fromkeys(MANAGED_GRANTEES, frozenset())
    for grant in roles.OBJECT_GRANTS:
        if grant.schema == schema and grant.object_type == object_type:
            wanted[grant.role] = frozenset(grant.privileges)
    return wanted


_ACL_BY_GRANTEE = """
select o.name, coalesce(r.rolname, 'public'), array_agg(a.privilege_type::text)
from ({source}) o
cross join lateral aclexplode(o.acl) a
left join pg_roles r on r.oid = a.grantee
group by 1, 2
"""


def _acls(
    connection: Connection, source: str, params: Sequence[object] | Mapping[str, object]
) -> dict[str, dict[str, Privileges]]:
    """Privileges by object and grantee; `source` yields (name, acl) rows (a null acl grants nothing)."""
    found: dict[str, dict[str, Privileges]] = {}
    for name, grantee, granted in connection.execute(_ACL_BY_GRANTEE.format(source=source), params):
        listed = granted if isinstance(granted, list) else []
        found.setdefault(str(name), {})[str(grantee)] = frozenset(str(privilege) for privilege in listed)
    return found


def _database_acl(connection: Connection, database: str) -> dict[str, Privileges]:
    source = (
        "select datname as name, coalesce(datacl, acldefault('d', datdba)) as acl from pg_database where datname = %s"
    )
    return _acls(connection, source, (database,)).get(database, {})


def _schema_acl(connection: Connection, schema: str) -> dict[str, Privileges]:
    source = (
        "select nspname as name, coalesce(nspacl, acldefault('n', nspowner)) as acl"
        " from pg_namespace where nspname = %s"
    )
    return _acls(connection, source, (schema,)).get(schema, {})


def _reconcile(
    connection: Connection,
    target: sql.Composable,
    actual: Mapping[str, Privileges],
    wanted: Mapping[str, Privileges],
    note: Callable[[str], None],
) -> None:
    """Make each wanted grantee hold exactly its privileges on `target` (e.g. `table nba.games`)."""
    for role, privileges in wanted.items():
        if actual.get(role, frozenset()) == privileges:
            continue
        connection.execute(sql.SQL("revoke all on {} from {}").format(target, _grantee(role)))
        if privileges:
            listed = sql.SQL(", ").join(sql.SQL(privilege) for privilege in sorted(privileges))
            connection.execute(sql.SQL("grant {} on {} to {}").format(listed, target, _grantee(role)))
        shown = ", ".join(sorted(privileges)) or "nothing"
        note(f"{connection.info.dbname}: {role} now has {shown} on {target.as_string(connection)}")


# (name, acl) of every table (views included: GRANT ON TABLE covers them) and function in a schema.
_OBJECTS: Final = {
    "table": """
select quote_ident(n.nspname) || '.' || quote_ident(c.relname) as name,
       coalesce(c.relacl, acldefault('r', c.relowner)) as acl
from pg_class c join pg_namespace n on n.oid = c.relnamespace
where n.nspname = %s and c.relkind in ('r', 'p', 'v', 'm', 'f')
""",
    "function": """
select p.oid::regprocedure::text as name, coalesce(p.proacl, acldefault('f', p.proowner)) as acl
from pg_proc p join pg_namespace n on n.oid = p.pronamespace
where n.nspname = %s and p.prokind = 'f'
""",
}


def _grant_on_objects(connection: Connection, note: Callable[[str], None]) -> None:
    """The model's privileges on each managed schema and on every table and function in it."""
    for schema in roles.MANAGED_SCHEMAS:
        _reconcile(
            connection,
            sql.SQL("schema {}").format(sql.Identifier(schema)),
            _schema_acl(connection, schema),
            _model_privileges(schema, "schema"),
            note,
        )
        for object_type in ("table", "function"):
            wanted = _model_privileges(schema, object_type)
            for name, actual in sorted(_acls(connection, _OBJECTS[object_type], (schema,)).items()):
                # Names come quoted from the catalog (quote_ident, regprocedure).
                target = sql.SQL("{} {}").format(sql.SQL(object_type), sql.SQL(name))
                _reconcile(connection, target, actual, wanted, note)


# Without an entry, a schema has no default privileges and the database has PostgreSQL's built-in ones.
_DEFAULT_ACL = """
select '' as name,
       coalesce(d.defaclacl, case when %(schema)s::text is null then acldefault(%(kind)s::"char", r.oid) end) as acl
from pg_roles r
left join pg_default_acl d on d.defaclrole = r.oid and d.defaclobjtype = %(kind)s::"char"
     and d.defaclnamespace = coalesce((select oid from pg_namespace where nspname = %(schema)s), 0)
where r.rolname = %(owner)s
"""


def _grant_on_future_objects(connection: Connection, note: Callable[[str], None]) -> None:
    """Default privileges for what the owner group creates later, as the model declares them."""
    for schema in roles.MANAGED_SCHEMAS:
        for object_type in _OBJECT_KEYWORDS:
            _reconcile_default(connection, schema, object_type, _model_privileges(schema, object_type), note)  # type: ignore[arg-type]
    for default in roles.default_privileges():
        if default.schema is None:
            _reconcile_default(
                connection, None, default.object_type, {default.role: frozenset(default.privileges)}, note
            )


def _reconcile_default(
    connection: Connection,
    schema: str | None,
    object_type: str,
    wanted: Mapping[str, Privileges],
    note: Callable[[str], None],
) -> None:
    params = {"schema": schema, "kind": _DEFAULT_ACL_TYPES[object_type], "owner": roles.OWNER_GROUP}
    actual = _acls(connection, _DEFAULT_ACL, params).get("", {})
    scope = sql.SQL(" in schema {}").format(sql.Identifier(schema)) if schema else sql.SQL("")
    prefix = sql.SQL("alter default privileges for role {}{} ").format(sql.Identifier(roles.OWNER_GROUP), scope)
    keyword = sql.SQL(_OBJECT_KEYWORDS[object_type])
    for role, privileges in wanted.items():
        if actual.get(role, frozenset()) == privileges:
            continue
        connection.execute(prefix + sql.SQL("revoke all on {} from {}").format(keyword, _grantee(role)))
        if privileges:
            listed = sql.SQL(", ").join(sql.SQL(privilege) for privilege in sorted(privileges))
            connection.execute(prefix + sql.SQL("grant {} on {} to {}").format(listed, keyword, _grantee(role)))
        where = f"in schema {schema}" if schema else "database-wide"
        shown = ", ".join(sorted(privileges)) or "nothing"
        note(f"{connection.info.dbname}: {role} gets {shown} on future {object_type}s {where}")
