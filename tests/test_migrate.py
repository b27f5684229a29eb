"""Migrations on a real PostgreSQL: from empty, re-run, edited files, failures, concurrency."""

from __future__ import annotations

import re
import threading
from pathlib import Path

import psycopg
import pytest

from temporaldb.migrate import MigrationError, default_migrations_dir, migrate, read_migrations


def catalog(dsn: str) -> list[tuple[str, ...]]:
    """Every relation, function and type of the schemas we own, to compare before and after."""
    with psycopg.connect(dsn) as connection:
        return connection.execute(
            """select n.nspname, c.relname, c.relkind::text
               from pg_class c join pg_namespace n on n.oid = c.relnamespace
               where n.nspname in ('nba', 'temporaldb_meta')
               union all
               select n.nspname, p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')', 'f'
               from pg_proc p join pg_namespace n on n.oid = p.pronamespace where n.nspname = 'nba'
               order by 1, 2"""
        ).fetchall()


def history(dsn: str) -> list[tuple[int, str, str]]:
    with psycopg.connect(dsn) as connection:
        return connection.execute(
            "select version, name, checksum from temporaldb_meta.schema_migrations order by version"
        ).fetchall()


def test_from_empty_applies_every_file_once(empty_database: str) -> None:
    result = migrate(empty_database)
    files = read_migrations(default_migrations_dir())
    assert [m.file_name for m in result.applied] == [m.file_name for m in files]
    assert [(v, c) for v, _, c in history(empty_database)] == [(m.version, m.checksum) for m in files]
    names = {name for _, name, _ in catalog(empty_database)}
    assert {"teams", "players", "games", "play_by_play", "stat_lines", "player_stats", "team_stats"} <= names
    assert any(name.startswith("player_stats_as_of(") for name in names)


def test_rerun_changes_nothing(database: str) -> None:
    before = (catalog(database), history(database))
    result = migrate(database)
    assert result.applied == ()
    assert result.already_applied == len(before[1])
    assert (catalog(database), history(database)) == before


def test_edited_applied_file_is_refused(database: str, migrations: Path) -> None:
    migrate(database, migrations)
    edited = migrations / "V0002__as_of_functions.sql"
    edited.write_text(edited.read_text() + "\n-- an innocent-looking edit\n")
    with pytest.raises(MigrationError, match=r"V0002__as_of_functions\.sql was edited after it was applied"):
        migrate(database, migrations)


def test_new_file_is_applied_and_a_failing_one_leaves_nothing(database: str, migrations: Path) -> None:
    header = "-- Purpose: test\n-- Requires: nba\n-- Lock/downtime: none\n"
    added = len(read_migrations(migrations)) + 1
    notes, broken = migrations / f"V{added:04d}__add_notes.sql", migrations / f"V{added + 1:04d}__broken.sql"
    notes.write_text(header + "create table nba.notes (note text);\n")
    broken.write_text(header + "create table nba.half_done (x int);\nselect 1/0;\n")
    before = catalog(database)
    with pytest.raises(MigrationError, match=re.escape(broken.name) + " failed, nothing was applied"):
        migrate(database, migrations)
    assert catalog(database) == before
    broken.unlink()
    assert [m.file_name for m in migrate(database, migrations).applied] == [notes.name]


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("V3__short.sql", "-- Purpose: x\n-- Requires: x\n-- Lock/downtime: x\n", "name must look like"),
        ("V0098__no_header.sql", "create table x (y int);\n", "first three lines must be"),
        ("V0099__gap.sql", "-- Purpose: x\n-- Requires: x\n-- Lock/downtime: x\n", "expected version V00\\d\\d next"),
    ],
)
def test_malformed_files_are_refused_before_connecting(migrations: Path, name: str, text: str, message: str) -> None:
    (migrations / name).write_text(text)
    with pytest.raises(MigrationError, match=message):
        migrate("host=/nonexistent dbname=never", migrations)


def test_concurrent_runs_apply_once(empty_database: str) -> None:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            migrate(empty_database)
        except BaseException as error:  # reported by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert [v for v, _, _ in history(empty_database)] == [m.version for m in read_migrations(default_migrations_dir())]


def test_every_file_documents_itself() -> None:
    for migration in read_migrations(default_migrations_dir()):
        created = re.findall(r"create (?:or replace )?(?:table|view|function|type) (nba\.\w+)", migration.sql)
        for name in created:
            assert re.search(rf"comment on \w+ {re.escape(name)}\b", migration.sql), f"{migration.file_name}: {name}"
        # Every function pins its search_path, except a wrapper the planner is meant to inline (PostgreSQL does
        # not inline a function with a SET clause), which says so on the line before it.
        functions = len(re.findall(r"create (?:or replace )?function", migration.sql))
        inlinable = len(
            re.findall(r"^-- Inlinable: no SET clause.*\ncreate (?:or replace )?function", migration.sql, re.M)
        )
        pinned = migration.sql.count("set search_path = pg_catalog, pg_temp")
        assert pinned + inlinable == functions, migration.file_name
