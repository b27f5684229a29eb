"""The schema resource's provider (components/schema.py) against a real PostgreSQL.

The provider is what `pulumi up` runs: create and update apply the planned
migrations with temporaldb.migrate, diff decides whether an update is needed,
delete drops nothing.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict
from pulumi.dynamic.dynamic import serialize_provider

from components.schema import MigrationPlanError, MigrationsProvider, planned_migrations
from temporaldb.migrate import default_migrations_dir, read_migrations, set_checksum

PASSWORD = "not-a-real-password"
HEADER = "-- Purpose: test\n-- Requires: the previous file\n-- Lock/downtime: none\n"


def props_for(dsn: str, folder: Path | None = None) -> dict[str, Any]:
    """The inputs the engine would hand the provider for this database.

    The test server trusts local connections, and libpq ignores sslmode on its Unix socket.
    """
    parts = conninfo_to_dict(dsn)
    return {
        "host": parts["host"],
        "port": int(str(parts.get("port", 5432))),
        "database": parts["dbname"],
        "user": parts["user"],
        "password": PASSWORD,
        "sslmode": "require",
        "connect_timeout": 10,
        "migrations": planned_migrations(folder),
    }


def history(dsn: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn) as connection:
        exists = connection.execute("select to_regclass('temporaldb_meta.schema_migrations') is not null").fetchone()
        if not exists or not exists[0]:
            return []
        return connection.execute(
            "select version, name, checksum, applied_at from temporaldb_meta.schema_migrations order by version"
        ).fetchall()


def test_create_applies_every_migration_and_reports_version_and_checksum(empty_database: str) -> None:
    expected = read_migrations(default_migrations_dir())
    result = MigrationsProvider().create(props_for(empty_database))
    outs = result.outs or {}
    assert outs["version"] == expected[-1].version
    assert outs["checksum"] == set_checksum(expected)
    assert [(row[0], row[2]) for row in history(empty_database)] == [(m.version, m.checksum) for m in expected]
    # What the next diff compares, and nothing that lets anyone log in.
    assert set(outs) == {"version", "checksum", "host", "port", "database", "migrations"}
    assert PASSWORD not in repr(outs)
    assert result.id


def test_second_create_and_update_change_nothing(empty_database: str) -> None:
    provider = MigrationsProvider()
    props = props_for(empty_database)
    first = provider.create(props)
    applied = history(empty_database)
    again = provider.create(props)
    updated = provider.update(first.id, first.outs or {}, props)
    assert again.outs == first.outs
    assert updated.outs == first.outs
    assert history(empty_database) == applied, "a re-run must not touch the history (applied_at included)"


def test_diff_reports_changes_only_for_files_or_target(empty_database: str) -> None:
    provider = MigrationsProvider()
    props = props_for(empty_database)
    olds = provider.create(props).outs or {}

    def changes(**different: Any) -> bool | None:
        return provider.diff("id", olds, {**props, **different}).changes

    assert changes() is False
    assert changes(password="a-rotated-password", sslmode="verify-full", connect_timeout=30) is False
    assert changes(port=float(props["port"])) is False, "numbers cross the engine as floats"
    some_file = next(iter(props["migrations"]))
    assert changes(migrations={**props["migrations"], some_file: "0" * 64}) is True
    assert changes(migrations={**props["migrations"], "V9999__later.sql": "0" * 64}) is True
    assert changes(host="localhost") is True
    assert changes(port=props["port"] + 1) is True
    assert changes(database="other_temporal") is True
    assert provider.diff("id", olds, props).replaces == [], "a change is an update, never a replacement"


def test_file_edited_after_planning_is_refused_and_nothing_applied(empty_database: str, migrations: Path) -> None:
    props = props_for(empty_database, migrations)
    edited = migrations / "V0002__as_of_functions.sql"
    edited.write_text(edited.read_text() + "\n-- edited after the preview\n")
    with pytest.raises(MigrationPlanError, match=r"V0002__as_of_functions\.sql was edited \(planned sha256 "):
        MigrationsProvider(migrations).create(props)
    assert history(empty_database) == []


def test_file_added_after_planning_is_refused(database: str, migrations: Path) -> None:
    provider = MigrationsProvider(migrations)
    props = props_for(database, migrations)
    olds = provider.create(props).outs or {}
    next_version = len(read_migrations(migrations)) + 1
    added = f"V{next_version:04d}__notes.sql"
    (migrations / added).write_text(HEADER + "create table nba.notes (note text);\n")
    applied = history(database)
    with pytest.raises(MigrationPlanError, match=rf"{added} was added.*Nothing was applied"):
        provider.update("id", olds, props)
    assert history(database) == applied
    # Planned again, the new file is a change and the update applies it.
    replanned = {**props, "migrations": planned_migrations(migrations)}
    assert provider.diff("id", olds, replanned).changes is True
    assert (provider.update("id", olds, replanned).outs or {})["version"] == next_version


def test_delete_drops_nothing(empty_database: str) -> None:
    provider = MigrationsProvider()
    props = props_for(empty_database)
    outs = provider.create(props).outs or {}
    applied = history(empty_database)
    provider.delete("id", {**props, **outs})
    assert history(empty_database) == applied


def test_provider_is_pickled_by_reference() -> None:
    """`pulumi up` runs the provider from the project's code, not from a copy frozen into the state."""
    pickled = base64.b64decode(serialize_provider(MigrationsProvider()))
    assert b"components.schema" in pickled
    assert b"MigrationsProvider" in pickled
    assert len(pickled) < 500
