"""The role model, defined once.

Two consumers turn it into privileges: the Pulumi component
`components/access.py` (through the `postgresql` provider, on RDS) and the
local bootstrap `temporaldb/bootstrap.py` (plain SQL, on the embedded
server). Nothing here talks to a database or to Pulumi.

Group roles (NOLOGIN) carry privileges; login roles only carry membership of
one group, a connection limit and a statement timeout. Objects are owned by
the migrator group (migrations run with `SET ROLE temporal_migrator`), so the
default privileges below, which are declared for objects that group creates,
make future tables and functions follow the model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

OWNER_GROUP: Final = "temporal_migrator"
WRITER_GROUP: Final = "temporal_writer"
READER_GROUP: Final = "temporal_reader"
PUBLIC: Final = "public"

# Schemas the migrations create; grants on them wait for the schema to exist.
DATA_SCHEMA: Final = "nba"
LOAD_SCHEMA: Final = "nba_load"
META_SCHEMA: Final = "temporaldb_meta"
MANAGED_SCHEMAS: Final = (DATA_SCHEMA, LOAD_SCHEMA, META_SCHEMA)

# Extensions created by the admin connection before the migrations run (the
# migrator may not create them); pg_stat_statements also needs the library
# preloaded, which the RDS parameter group and the local server both do.
EXTENSIONS: Final = ("pg_stat_statements",)

# RDS grants this role to users that log in with an IAM token instead of a password.
RDS_IAM_ROLE: Final = "rds_iam"

ObjectType = Literal["schema", "table", "function"]


@dataclass(frozen=True)
class GroupRole:
    name: str
    purpose: str


@dataclass(frozen=True)
class LoginRole:
    name: str
    group: str
    connection_limit: int
    statement_timeout_ms: int
    purpose: str

    @property
    def may_use_iam(self) -> bool:
        """The migrator logs in with a password: the schema resource of `pulumi up` connects as it."""
        return self.group != OWNER_GROUP


@dataclass(frozen=True)
class ObjectGrant:
    """Privileges of `role` on a schema, or on every table (views included) or function in it.

    Table and function grants also hold for objects created later by the owner
    group (default privileges); an empty `privileges` revokes everything.
    """

    role: str
    schema: str
    object_type: ObjectType
    privileges: tuple[str, ...]


GROUPS: Final = (
    GroupRole(OWNER_GROUP, "owns the schema objects and runs migrations (DDL)"),
    GroupRole(WRITER_GROUP, "loads data: INSERT/UPDATE/DELETE on data tables, EXECUTE on load routines, no DDL"),
    GroupRole(READER_GROUP, "reads: SELECT and the as-of functions, nothing else"),
)

_MINUTE_MS: Final = 60_000
LOGINS: Final = (
    LoginRole("migrator", OWNER_GROUP, 2, 60 * _MINUTE_MS, "runs migrations (temporaldb migrate, pulumi up)"),
    LoginRole("etl", WRITER_GROUP, 4, 60 * _MINUTE_MS, "runs temporaldb load; a full-history load takes minutes"),
    LoginRole("analyst", READER_GROUP, 10, 5 * _MINUTE_MS, "people asking questions in SQL or temporaldb asof"),
    LoginRole("app", READER_GROUP, 40, 5_000, "the application: as-of lookups take well under a millisecond"),
)

# Privileges on each sport database; PUBLIC gets none (not even CONNECT).
DATABASE_PRIVILEGES: Final[dict[str, tuple[str, ...]]] = {
    PUBLIC: (),
    OWNER_GROUP: ("CONNECT", "CREATE", "TEMPORARY"),
    WRITER_GROUP: ("CONNECT", "TEMPORARY"),  # the loader stages rows in temporary tables
    READER_GROUP: ("CONNECT",),
}

# PUBLIC keeps USAGE but loses CREATE on schema public (PostgreSQL 14 and older grant it).
PUBLIC_SCHEMA_PRIVILEGES: Final = ("USAGE",)

OBJECT_GRANTS: Final = (
    ObjectGrant(READER_GROUP, DATA_SCHEMA, "schema", ("USAGE",)),
    ObjectGrant(READER_GROUP, DATA_SCHEMA, "table", ("SELECT",)),
    ObjectGrant(READER_GROUP, DATA_SCHEMA, "function", ("EXECUTE",)),
    ObjectGrant(READER_GROUP, META_SCHEMA, "schema", ("USAGE",)),
    ObjectGrant(READER_GROUP, META_SCHEMA, "table", ("SELECT",)),  # the applied schema version
    ObjectGrant(WRITER_GROUP, DATA_SCHEMA, "schema", ("USAGE",)),
    ObjectGrant(WRITER_GROUP, DATA_SCHEMA, "table", ("SELECT", "INSERT", "UPDATE", "DELETE")),
    ObjectGrant(WRITER_GROUP, LOAD_SCHEMA, "schema", ("USAGE",)),
    ObjectGrant(WRITER_GROUP, LOAD_SCHEMA, "function", ("EXECUTE",)),
    ObjectGrant(WRITER_GROUP, META_SCHEMA, "schema", ("USAGE",)),
    ObjectGrant(WRITER_GROUP, META_SCHEMA, "table", ("SELECT",)),
    # PostgreSQL lets PUBLIC execute every new function; here only the grants above do.
    *(ObjectGrant(PUBLIC, schema, "function", ()) for schema in MANAGED_SCHEMAS),
)


@dataclass(frozen=True)
class DefaultPrivilege:
    """What `role` gets on objects the owner group creates later, in `schema` (None: the whole database)."""

    role: str
    schema: str | None
    object_type: ObjectType
    privileges: tuple[str, ...]


def default_privileges() -> tuple[DefaultPrivilege, ...]:
    """The table and function grants, for future objects of the owner group.

    PostgreSQL cannot take away a built-in default (PUBLIC's EXECUTE on
    functions) per schema, only database-wide; that revoke has schema None.
    """
    granted = tuple(
        DefaultPrivilege(grant.role, grant.schema, grant.object_type, grant.privileges)
        for grant in OBJECT_GRANTS
        if grant.object_type != "schema" and grant.role != PUBLIC
    )
    return (*granted, DefaultPrivilege(PUBLIC, None, "function", ()))


def database_name(sport: str) -> str:
    """`nba` gives `nba_temporal`."""
    return f"{sport}_temporal"


def login(name: str) -> LoginRole:
    for role in LOGINS:
        if role.name == name:
            return role
    raise KeyError(f"{name!r} is not a login role (known: {', '.join(role.name for role in LOGINS)})")


def login_names() -> tuple[str, ...]:
    return tuple(role.name for role in LOGINS)
