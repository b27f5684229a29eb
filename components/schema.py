"""MigratedSchema: the SQL migrations of sql/migrations, applied to one database by `pulumi up`.

A dynamic resource: its provider runs `temporaldb.migrate.migrate`, the same
runner as `temporaldb migrate` (one transaction, advisory lock, append-only
checksums), connected as the migrator login role.

The plan records the file names and SHA-256 of every migration; create and
update first check that the files on disk are still those, so `pulumi up`
never applies a file nobody previewed. A change shows in the diff only when
the files or the target (host, port, database) change: a new password alone
changes nothing. Delete never drops anything; dropping the database drops the
schema with it.

The state keeps `version` and `checksum` (of the applied set) plus what the
next diff compares: the planned files and the target. The engine hands a
dynamic provider's diff the old *outputs*, not the old inputs, so these must
be outputs; the user and password never are.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import pulumi.dynamic
from psycopg.conninfo import make_conninfo
from pulumi.runtime import rpc

from temporaldb.migrate import default_migrations_dir, migrate, read_migrations

TARGET_KEYS = ("host", "port", "database")
PLANNED_KEY = "migrations"
APPLICATION_NAME = "pulumi-temporaldb-schema"


class MigrationPlanError(Exception):
    """The migration files changed between the plan and the update; nothing was applied."""


def planned_migrations(folder: Path | None = None) -> dict[str, str]:
    """{file name: sha256} of every migration in `folder` (default: the project's sql/migrations)."""
    return {
        migration.file_name: migration.checksum for migration in read_migrations(folder or default_migrations_dir())
    }


def _plain(value: Any) -> Any:
    return rpc.unwrap_rpc_secret(value)


def _conninfo(props: Mapping[str, Any]) -> str:
    return make_conninfo(
        "",
        host=str(_plain(props["host"])),
        port=str(int(_plain(props["port"]))),
        dbname=str(_plain(props["database"])),
        user=str(_plain(props["user"])),
        password=str(_plain(props["password"])),
        sslmode=str(_plain(props.get("sslmode") or "require")),
        connect_timeout=str(int(_plain(props.get("connect_timeout") or 15))),
        application_name=APPLICATION_NAME,
    )


def _target(props: Mapping[str, Any]) -> tuple[str, str, str]:
    host, port, database = (_plain(props.get(key)) for key in TARGET_KEYS)
    # Numbers cross the engine as floats: 5432 and 5432.0 are the same port.
    port_text = str(int(port)) if isinstance(port, (int, float)) else str(port)
    return str(host), port_text, str(database)


def _differences(planned: Mapping[str, str], on_disk: Mapping[str, str]) -> list[str]:
    found = []
    for file_name in sorted(set(planned) | set(on_disk)):
        before, now = planned.get(file_name), on_disk.get(file_name)
        if before is None:
            found.append(f"{file_name} was added")
        elif now is None:
            found.append(f"{file_name} was removed")
        elif before != now:
            found.append(f"{file_name} was edited (planned sha256 {before[:12]}, now {now[:12]})")
    return found


class MigrationsProvider(pulumi.dynamic.ResourceProvider):
    """Applies the planned migrations with `temporaldb.migrate.migrate`."""

    def __init__(self, folder: Path | None = None) -> None:
        super().__init__()
        self.folder = folder
        """None: the project's sql/migrations, resolved where the provider runs."""

    def create(self, props: dict[str, Any]) -> pulumi.dynamic.CreateResult:
        outs = self._apply(props)
        return pulumi.dynamic.CreateResult(f"{outs['database']}@{outs['host']}:{outs['port']}", outs)

    def diff(self, _id: str, _olds: dict[str, Any], _news: dict[str, Any]) -> pulumi.dynamic.DiffResult:
        changed = _target(_olds) != _target(_news) or dict(_olds.get(PLANNED_KEY) or {}) != dict(
            _news.get(PLANNED_KEY) or {}
        )
        # An update, never a replacement: migrating is idempotent, and a new host may be a tunnel to the same database.
        return pulumi.dynamic.DiffResult(changes=changed, replaces=[], delete_before_replace=False)

    def update(self, _id: str, _olds: dict[str, Any], _news: dict[str, Any]) -> pulumi.dynamic.UpdateResult:
        return pulumi.dynamic.UpdateResult(self._apply(_news))

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        """Drops nothing: the schema goes with its database, and data is never removed by a schema resource."""

    def _apply(self, props: Mapping[str, Any]) -> dict[str, Any]:
        folder = self.folder or default_migrations_dir()
        planned = {str(name): str(checksum) for name, checksum in dict(_plain(props[PLANNED_KEY])).items()}
        differences = _differences(planned, planned_migrations(folder))
        if differences:
            raise MigrationPlanError(
                f"the migrations in {folder} changed after this update was planned: {'; '.join(differences)}. "
                "Nothing was applied; preview and run pulumi up again to apply the files as they are now."
            )
        result = migrate(_conninfo(props), folder)
        host, port, database = _target(props)
        return {
            "version": result.version,
            "checksum": result.checksum,
            "host": host,
            "port": int(port),
            "database": database,
            PLANNED_KEY: planned,
        }


@dataclass(frozen=True)
class MigratedSchemaArgs:
    host: pulumi.Input[str]
    port: pulumi.Input[int]
    database: pulumi.Input[str]
    password: pulumi.Input[str]
    """The migrator's password; always stored as a secret."""
    migrations: Mapping[str, str]
    """{file name: sha256} as planned, from `planned_migrations()`."""
    user: pulumi.Input[str] = "migrator"
    sslmode: pulumi.Input[str] = "require"
    connect_timeout_seconds: pulumi.Input[int] = 15


class MigratedSchema(pulumi.dynamic.Resource, module="temporaldb", name="MigratedSchema"):
    version: pulumi.Output[int]
    """The highest migration version applied."""
    checksum: pulumi.Output[str]
    """Checksum of the whole applied set (`temporaldb.migrate.set_checksum`)."""

    def __init__(
        self,
        name: str,
        args: MigratedSchemaArgs,
        opts: pulumi.ResourceOptions | None = None,
        folder: Path | None = None,
    ) -> None:
        super().__init__(
            MigrationsProvider(folder),
            name,
            {
                "host": args.host,
                "port": args.port,
                "database": args.database,
                "user": args.user,
                "password": pulumi.Output.secret(args.password),
                "sslmode": args.sslmode,
                "connect_timeout": args.connect_timeout_seconds,
                PLANNED_KEY: dict(args.migrations),
                "version": None,
                "checksum": None,
            },
            opts,
        )
