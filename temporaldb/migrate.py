"""Versioned, append-only SQL migrations (`temporaldb migrate`).

Files `sql/migrations/V<4 digits>__<name>.sql` are applied in order, all
pending ones in one transaction under an advisory lock, and recorded with
their SHA-256 in `temporaldb_meta.schema_migrations`. An applied file whose
bytes changed is refused: migrations are append-only, fix forward with a new
file. Re-running with nothing pending changes nothing.

Where the role model is in place (temporaldb/roles.py), migrations run as
its owner group (`SET ROLE temporal_migrator`), whoever connects: the objects
they create are then owned by that group and get its default privileges.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import psycopg

from temporaldb.roles import OWNER_GROUP

FILE_NAME = re.compile(r"^V(\d{4})__([a-z0-9_]+)\.sql$")
# Any stable 64-bit number; two concurrent migrate runs queue on it.
ADVISORY_LOCK_KEY = 0x7E3D_0001
HEADER_LINES = ("-- Purpose:", "-- Requires:", "-- Lock/downtime:")


class MigrationError(Exception):
    """A migration file is malformed, edited after being applied, or missing."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path
    sql: str
    checksum: str

    @property
    def file_name(self) -> str:
        return self.path.name


@dataclass(frozen=True)
class MigrationResult:
    applied: tuple[Migration, ...]
    already_applied: int
    version: int
    checksum: str
    """Checksum of the whole applied set: changes whenever any migration is added."""
    role: str
    """The role the migrations ran as (the owner of what they created)."""


def default_migrations_dir() -> Path:
    """sql/migrations of the project this package belongs to."""
    return Path(str(resources.files("temporaldb"))).parent / "sql" / "migrations"


def read_migrations(folder: Path) -> list[Migration]:
    """Every migration file in `folder`, checked for name, numbering and header."""
    migrations = []
    for path in sorted(folder.glob("*.sql")):
        match = FILE_NAME.match(path.name)
        if match is None:
            raise MigrationError(f"{path}: name must look like V0001__create_core_schema.sql")
        data = path.read_bytes()
        text = data.decode("utf-8")
        lines = text.splitlines()[:3]
        header_ok = len(lines) == 3 and all(
            line.startswith(prefix) for line, prefix in zip(lines, HEADER_LINES, strict=True)
        )
        if not header_ok:
            raise MigrationError(f"{path}: the first three lines must be {', '.join(HEADER_LINES)} comments")
        migrations.append(Migration(int(match[1]), match[2], path, text, hashlib.sha256(data).hexdigest()))
    for expected, migration in enumerate(migrations, start=1):
        if migration.version != expected:
            raise MigrationError(
                f"{migration.path}: expected version V{expected:04d} next (versions must be contiguous)"
            )
    return migrations


def set_checksum(migrations: list[Migration]) -> str:
    return history_checksum((migration.version, migration.checksum) for migration in migrations)


def history_checksum(applied: Iterable[tuple[int, str]]) -> str:
    """Checksum of a set of (version, file sha256) pairs, e.g. read back from temporaldb_meta.schema_migrations."""
    digest = hashlib.sha256()
    for version, checksum in applied:
        digest.update(f"{version}:{checksum}\n".encode())
    return digest.hexdigest()


_HISTORY_DDL = """
create schema if not exists temporaldb_meta;
create table if not exists temporaldb_meta.schema_migrations (
    version integer primary key,
    name text not null,
    checksum text not null,
    applied_at timestamptz not null default now(),
    applied_by text not null default current_user,
    execution_ms integer not null
);
comment on table temporaldb_meta.schema_migrations is 'Applied migrations of sql/migrations, with their SHA-256.';
"""


def _check_applied(applied: dict[int, tuple[str, str]], migrations: list[Migration]) -> None:
    on_disk = {migration.version: migration for migration in migrations}
    for version, (name, checksum) in sorted(applied.items()):
        migration = on_disk.get(version)
        if migration is None:
            raise MigrationError(
                f"V{version:04d}__{name}.sql is applied in the database but missing from the migrations folder"
            )
        if migration.checksum != checksum:
            raise MigrationError(
                f"{migration.file_name} was edited after it was applied (recorded sha256 {checksum[:12]}, "
                f"file {migration.checksum[:12]}); migrations are append-only: restore it and add a new file"
            )


def migrate(conninfo: str, folder: Path | None = None) -> MigrationResult:
    """Apply every pending migration in one transaction; a no-op when none is pending."""
    migrations = read_migrations(folder or default_migrations_dir())
    with psycopg.connect(conninfo, autocommit=False) as connection, connection.transaction():
        connection.execute("select pg_advisory_xact_lock(%s)", (ADVISORY_LOCK_KEY,))
        role = _become_owner(connection)
        connection.execute(_HISTORY_DDL)
        rows = connection.execute("select version, name, checksum from temporaldb_meta.schema_migrations").fetchall()
        applied = {version: (name, checksum) for version, name, checksum in rows}
        _check_applied(applied, migrations)
        pending = [migration for migration in migrations if migration.version not in applied]
        for migration in pending:
            started = time.perf_counter()
            try:
                connection.execute(migration.sql.encode())
            except psycopg.Error as error:
                raise MigrationError(f"{migration.file_name} failed, nothing was applied: {error}") from error
            elapsed_ms = round((time.perf_counter() - started) * 1000)
            connection.execute(
                "insert into temporaldb_meta.schema_migrations (version, name, checksum, execution_ms)"
                " values (%s, %s, %s, %s)",
                (migration.version, migration.name, migration.checksum, elapsed_ms),
            )
    version = migrations[-1].version if migrations else 0
    return MigrationResult(tuple(pending), len(applied), version, set_checksum(migrations), role)


def _become_owner(connection: psycopg.Connection[tuple[object, ...]]) -> str:
    """`SET LOCAL ROLE` to the owner group where the model is in place; the role the migrations run as.

    The model is in place when the owner group may create in this database. Then
    migrating as anyone else would leave objects without the model's grants, so
    a connecting role that cannot SET ROLE to the group is refused.
    """
    row = connection.execute(
        "select has_database_privilege(oid, current_database(), 'CREATE'), case"
        # PostgreSQL 16 split membership from the right to SET ROLE (an RDS master holds only ADMIN on its roles).
        " when current_setting('server_version_num')::int >= 160000 then pg_has_role(current_user, oid, 'SET')"
        " else pg_has_role(current_user, oid, 'MEMBER') end, current_user"
        " from pg_roles where rolname = %s",
        (OWNER_GROUP,),
    ).fetchone()
    if row is not None and row[0]:
        if not row[1]:
            raise MigrationError(
                f"this database belongs to the role model, but {row[2]} cannot SET ROLE {OWNER_GROUP}: migrate as "
                f"the migrator login, or grant {OWNER_GROUP} to {row[2]} (with SET TRUE on PostgreSQL 16 and later)"
            )
        connection.execute(f"set local role {OWNER_GROUP}")
    current = connection.execute("select current_user").fetchone()
    return str(current[0]) if current else ""
