"""The SQL pre-checks of a major-version upgrade (rds-operations.md 6.1, and the pg_upgrade rules behind them).

`run_prechecks(connect, source_major, target_extensions)` searches a running server, every database that accepts
connections, for what would make `pg_upgrade` (or AWS's upgrade of an RDS instance) fail or lose something:
prepared transactions, stored reg*, aclitem and system composite columns, logical replication slots, extensions,
reserved role names, views on pg_stat_activity and databases that refuse connections. Each problem is a `Finding`,
a blocker or a warning, with its remedy; each check a `Precheck`.

The local upgrade drill runs them on its source cluster (temporaldb.drills.local_upgrade), the RDS drill on its
copy of the instance (temporaldb.drills.aws_upgrade).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

import psycopg

from temporaldb import roles
from temporaldb.drills.local_upgrade_binaries import TARGET_MAJOR
from temporaldb.drills.report import first_line

BLOCKER: Final = "blocker"
WARNING: Final = "warning"

Connection = psycopg.Connection[tuple[Any, ...]]
"""A connection to the server under check (a local drill cluster, an RDS copy); rows come as tuples."""


@dataclass(frozen=True)
class Finding:
    """One problem a pre-check found: a blocker stops the upgrade, a warning only needs attention."""

    check: str
    severity: str
    database: str | None
    """None for cluster-wide objects (roles, slots, prepared transactions)."""
    subject: str
    remedy: str


@dataclass(frozen=True)
class Precheck:
    name: str
    description: str
    findings: tuple[Finding, ...]
    passed: bool
    """No blocker among the findings."""


# pg_upgrade keeps pg_class, pg_type, pg_enum and pg_authid OIDs only: regclass, regtype and regrole survive,
# the other reg* types would point at the wrong objects (pg_upgrade's own list, wider than the AWS query's).
UNSUPPORTED_REG_TYPES: Final = (
    "regcollation", "regconfig", "regdictionary", "regnamespace", "regoper", "regoperator", "regproc", "regprocedure",
)  # fmt: skip
KNOWN_EXTENSIONS: Final = frozenset(("plpgsql", *roles.EXTENSIONS))
POSTGIS_FAMILY: Final = frozenset(
    (
        "postgis",
        "postgis_raster",
        "postgis_topology",
        "postgis_tiger_geocoder",
        "postgis_sfcgal",
        "address_standardizer",
    )
)

# Stored columns (tables, materialized views, indexes) of the given types, also wrapped in domains, arrays,
# composites or ranges: the recursive search pg_upgrade's data type checks make.
_COLUMNS_OF_TYPES = """
with recursive oids as (
    {base}
    union all
    select * from (
        with x as (select oid from oids)
        select t.oid from pg_catalog.pg_type t, x where t.typbasetype = x.oid and t.typtype = 'd'
        union all
        select t.oid from pg_catalog.pg_type t, x where t.typelem = x.oid and t.typtype = 'b'
        union all
        select t.oid from pg_catalog.pg_type t, pg_catalog.pg_class c, pg_catalog.pg_attribute a, x
        where t.typtype = 'c' and t.oid = c.reltype and c.oid = a.attrelid and not a.attisdropped
          and a.atttypid = x.oid
        union all
        select t.oid from pg_catalog.pg_type t, pg_catalog.pg_range r, x
        where t.typtype = 'r' and r.rngtypid = t.oid and r.rngsubtype = x.oid
    ) nested
)
select quote_ident(n.nspname) || '.' || quote_ident(c.relname) || '.' || quote_ident(a.attname),
       pg_catalog.format_type(a.atttypid, a.atttypmod)
from pg_catalog.pg_class c
join pg_catalog.pg_namespace n on n.oid = c.relnamespace
join pg_catalog.pg_attribute a on a.attrelid = c.oid
where not a.attisdropped and a.atttypid in (select oid from oids) and c.relkind in ('r', 'm', 'i')
  and n.nspname !~ '^pg_temp_' and n.nspname !~ '^pg_toast_temp_'
  and n.nspname not in ('pg_catalog', 'information_schema')
order by 1
"""
_REG_TYPES = (
    "select t.oid from pg_catalog.pg_type t join pg_catalog.pg_namespace n on n.oid = t.typnamespace"
    " where n.nspname = 'pg_catalog' and t.typname = any(%(names)s)"
)
_SYSTEM_COMPOSITES = (
    "select t.oid from pg_catalog.pg_type t left join pg_catalog.pg_namespace n on n.oid = t.typnamespace"
    " where t.typtype = 'c' and (t.oid < 16384 or n.nspname = 'information_schema')"
)
_ACLITEM = "select 'pg_catalog.aclitem'::pg_catalog.regtype::oid"

_VIEWS_ON_PG_STAT_ACTIVITY = """
select distinct quote_ident(n.nspname) || '.' || quote_ident(v.relname)
from pg_catalog.pg_depend d
join pg_catalog.pg_rewrite r on r.oid = d.objid and d.classid = 'pg_catalog.pg_rewrite'::regclass
join pg_catalog.pg_class v on v.oid = r.ev_class
join pg_catalog.pg_namespace n on n.oid = v.relnamespace
where d.refobjid = 'pg_catalog.pg_stat_activity'::regclass and v.oid >= 16384
order by 1
"""


@dataclass
class _PrecheckRun:
    """Findings gathered per check across the databases, in the order the checks are declared."""

    descriptions: dict[str, str]
    findings: dict[str, list[Finding]] = field(default_factory=dict)

    def add(self, check: str, severity: str, database: str | None, subject: str, remedy: str) -> None:
        self.findings.setdefault(check, []).append(Finding(check, severity, database, subject, remedy))

    def result(self) -> tuple[Precheck, ...]:
        return tuple(
            Precheck(
                name,
                description,
                tuple(self.findings.get(name, [])),
                not any(finding.severity == BLOCKER for finding in self.findings.get(name, [])),
            )
            for name, description in self.descriptions.items()
        )


PRECHECK_DESCRIPTIONS: Final = {
    "prepared_transactions": "no prepared transactions (pg_prepared_xacts is empty)",
    "reg_types": "no stored column of a reg* type pg_upgrade cannot carry (regclass, regrole, regtype are fine)",
    "aclitem_columns": "no stored aclitem column (its format changed in PostgreSQL 16; checked from 15 only)",
    "system_composite_columns": "no stored column of a system composite type (their OIDs change between majors)",
    "logical_replication_slots": "no logical replication slot (AWS refuses the upgrade; pg_upgrade drops them)",
    "extensions": f"every installed extension ships with PostgreSQL {TARGET_MAJOR} here; none outside the model",
    "reserved_role_names": "no user-defined role named pg_*",
    "views_on_pg_stat_activity": "no user view on pg_stat_activity (an AWS pre-check failure)",
    "databases": "every database but template0 accepts connections and is valid (pg_upgrade visits each)",
}


Connect = Callable[[str], Connection]
"""Opens a connection to the named database of the server under check (the local drill's `DrillCluster.connect`)."""
MAINTENANCE_DATABASE: Final = "postgres"
UNKNOWN_EXTENSIONS_DESCRIPTION: Final = (
    "no extension outside the model, PostGIS-family ones flagged (whether the target ships each is not checked: "
    "its extension list is unknown here)"
)


def run_prechecks(
    connect: Connect,
    source_major: int,
    target_extensions: frozenset[str] | None,
    *,
    refused_connection: str | None = None,
) -> tuple[Precheck, ...]:
    """The pre-checks, on the running server `connect` reaches; every database that accepts connections is searched.

    `connect(database)` opens a connection as a role that can read the catalogs (the superuser locally, the master
    user on RDS); the cluster-wide checks use the `postgres` database. `target_extensions` is what the target major
    ships; None (unknown, as on RDS) skips that availability check but keeps the other extension findings.
    `refused_connection` is the severity of the finding made for a database that refuses the connection (on RDS,
    `rdsadmin` refuses the master user while AWS's own pg_upgrade reaches it); None lets the error propagate.
    """
    descriptions = dict(PRECHECK_DESCRIPTIONS)
    if target_extensions is None:
        descriptions["extensions"] = UNKNOWN_EXTENSIONS_DESCRIPTION
    run = _PrecheckRun(descriptions)
    with connect(MAINTENANCE_DATABASE) as server:
        _cluster_wide_checks(server, run)
        databases = [
            str(row[0]) for row in server.execute("select datname from pg_database where datallowconn order by datname")
        ]
    for database in databases:
        try:
            connection = connect(database)
        except psycopg.OperationalError as error:
            if refused_connection is None:
                raise
            run.add(
                "databases",
                refused_connection,
                database,
                f"database {database} refused the connection: {first_line(str(error).strip())}",
                f"nothing if the service keeps {database} for itself (RDS: rdsadmin); otherwise grant CONNECT and "
                "run the pre-checks again (pg_upgrade visits every database)",
            )
            continue
        with connection:
            _database_checks(connection, database, source_major, target_extensions, run)
    return run.result()


def _cluster_wide_checks(server: Connection, run: _PrecheckRun) -> None:
    for gid, database, owner, prepared in server.execute(
        "select gid, database, owner, prepared from pg_prepared_xacts order by prepared"
    ):
        run.add(
            "prepared_transactions",
            BLOCKER,
            str(database),
            f"prepared transaction {gid!r} (owner {owner}, prepared at {prepared:%Y-%m-%d %H:%M:%S%z})",
            f"in database {database}: COMMIT PREPARED '{gid}' or ROLLBACK PREPARED '{gid}'",
        )
    for name, slot_type, plugin, database in server.execute(
        "select slot_name, slot_type, plugin, database from pg_replication_slots order by slot_name"
    ):
        if slot_type == "logical":
            run.add(
                "logical_replication_slots",
                BLOCKER,
                str(database),
                f"logical replication slot {name!r} (plugin {plugin})",
                f"select pg_drop_replication_slot('{name}') once its consumer is stopped",
            )
        else:
            run.add(
                "logical_replication_slots",
                WARNING,
                None,
                f"physical replication slot {name!r}",
                "pg_upgrade does not carry physical slots: re-create it on the upgraded server",
            )
    for (name,) in server.execute("select rolname from pg_roles where rolname ~ '^pg_' and oid >= 16384"):
        run.add("reserved_role_names", BLOCKER, None, f"role {name}", f"rename role {name} (pg_* names are reserved)")
    for name, allowed, limit in server.execute(
        "select datname, datallowconn, datconnlimit from pg_database"
        " where datname <> 'template0' and (not datallowconn or datconnlimit = -2) order by 1"
    ):
        problem = "does not accept connections" if not allowed else "is invalid (an interrupted DROP DATABASE)"
        remedy = (
            f"ALTER DATABASE {name} ALLOW_CONNECTIONS true" if not allowed else f"DROP DATABASE {name} (it is unusable)"
        )
        run.add("databases", BLOCKER, str(name), f"database {name} {problem} (connection limit {limit})", remedy)


def _database_checks(
    connection: Connection,
    database: str,
    source_major: int,
    target_extensions: frozenset[str] | None,
    run: _PrecheckRun,
) -> None:
    type_checks = [
        ("reg_types", _REG_TYPES, "store the object's name as text instead, or drop the column"),
        ("system_composite_columns", _SYSTEM_COMPOSITES, "drop the column or change it to a user-defined type"),
    ]
    if source_major <= 15:
        type_checks.append(("aclitem_columns", _ACLITEM, "store the privileges as text (aclitem::text) or drop it"))
    for check, base, remedy in type_checks:
        query = _COLUMNS_OF_TYPES.format(base=base)
        for column, type_name in connection.execute(query, {"names": list(UNSUPPORTED_REG_TYPES)}):
            run.add(
                check, BLOCKER, database, f"column {column} of type {type_name}", f"in {database}, {column}: {remedy}"
            )
    for name, version in connection.execute("select extname, extversion from pg_extension order by 1"):
        if target_extensions is not None and name not in target_extensions:
            run.add(
                "extensions",
                BLOCKER,
                database,
                f"extension {name} {version} is not shipped with PostgreSQL {TARGET_MAJOR} here",
                f"in {database}: DROP EXTENSION {name}, or install it for PostgreSQL {TARGET_MAJOR} "
                "(on RDS: check it is supported on the target version)",
            )
        elif name in POSTGIS_FAMILY:
            run.add(
                "extensions",
                WARNING,
                database,
                f"extension {name} {version}",
                f"in {database}: ALTER EXTENSION {name} UPDATE (PostGIS first) before a version-skipping upgrade",
            )
        elif name not in KNOWN_EXTENSIONS:
            run.add(
                "extensions",
                WARNING,
                database,
                f"extension {name} {version} is not part of the role model",
                "check that the target version supports it, and whether it belongs in temporaldb/roles.py",
            )
    for (view,) in connection.execute(_VIEWS_ON_PG_STAT_ACTIVITY):
        run.add(
            "views_on_pg_stat_activity",
            BLOCKER,
            database,
            f"view {view} depends on pg_stat_activity",
            f"in {database}: drop {view} before the upgrade and re-create it after",
        )
