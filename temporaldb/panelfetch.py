"""Panel cells as Arrow tables, fetched with COPY on one or more connections that share one snapshot.

The rows path (panelquery.rows) turns every value into a Python object, about as slow as the SQL itself; here
each SQL call's cells come back as CSV from `COPY (select ...) TO STDOUT` and pyarrow parses them in C++.

With `jobs` above one, each call of panelquery.calls (a block of subjects x moments) is cut into `jobs` runs of
consecutive moments, fetched at once on that many connections; each runs in a repeatable-read transaction
that imports the caller's snapshot (pg_export_snapshot), so the panel still reads one state of the database.
Cutting by moments, not subjects, divides all the server's work: the games in progress at a run's moments, whose
events it reads, are that run's alone. The runs of a block are put back in the panel's order (id, then moment)
before the block is handed on, and at most `jobs` runs are fetched ahead of the reader: memory stays about a
block, whatever the panel's size.
"""

from __future__ import annotations

import io
import threading
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from typing import TYPE_CHECKING, Any, Literal

import psycopg
import pyarrow as pa
from psycopg import sql
from pyarrow import csv

from temporaldb.panelquery import CHUNK_CELLS, Panel, PanelError, calls
from temporaldb.panelwrite import arrow_schema, columns

if TYPE_CHECKING:
    import datetime as dt

Call = tuple[list[int], list["dt.datetime"]]
EXPORT_SNAPSHOT = "select pg_catalog.pg_export_snapshot()"


def tables(
    connection: psycopg.Connection[Any],
    panel: Panel,
    chunk_cells: int = CHUNK_CELLS,
    *,
    dsn: str | None = None,
    jobs: int = 1,
) -> Iterator[pa.Table]:
    """The panel's cells, ordered by id then moment, a table per call of panelquery.calls. Call inside
    panelquery.snapshot on `connection`; with jobs > 1, `dsn` opens the other connections (the same login)."""
    if jobs > 1 and dsn is None:
        raise ValueError("more than one job needs the dsn to open the other connections")
    schema = arrow_schema(panel.id_column)
    if jobs <= 1:
        _utc(connection)
        for call in calls(panel, chunk_cells):
            yield _copy(connection, panel, call, schema)
        return
    try:
        snapshot = str(connection.execute(EXPORT_SNAPSHOT).fetchall()[0][0])
    except psycopg.Error as error:
        # PostgreSQL exports snapshots on a hot standby too (since 10); a server that refuses says so.
        raise PanelError(
            f"--jobs {jobs}: the server cannot share one snapshot between connections "
            f"({error.diag.message_primary or str(error).splitlines()[0]}); "
            "run with --jobs 1"
        ) from None
    yield from _parallel(panel, calls(panel, chunk_cells), schema, dsn=str(dsn), snapshot=snapshot, jobs=jobs)


def _runs(call: Call, parts: int) -> list[Call]:
    """A call's moments cut into at most `parts` runs of consecutive moments, the same subjects in each."""
    ids, moments = call
    size = -(-len(moments) // parts)
    return [(ids, moments[start : start + size]) for start in range(0, len(moments), size)]


def _parallel(
    panel: Panel, blocks: Iterator[Call], schema: pa.Schema, *, dsn: str, snapshot: str, jobs: int
) -> Iterator[pa.Table]:
    local = threading.local()
    order: list[tuple[str, Literal["ascending", "descending"]]] = [
        (panel.id_column, "ascending"),
        ("as_of", "ascending"),
    ]
    with ExitStack() as connections, ThreadPoolExecutor(jobs, thread_name_prefix="temporaldb-panel") as pool:
        opened = threading.Lock()

        def fetch(call: Call) -> pa.Table:
            if not hasattr(local, "connection"):
                with opened:
                    local.connection = connections.enter_context(_joined(dsn, snapshot))
            return _copy(local.connection, panel, call, schema)

        # The runs being fetched, in order, each with whether it is the last of its block.
        pending: deque[tuple[Future[pa.Table], bool]] = deque()
        done: list[pa.Table] = []

        def collect() -> Iterator[pa.Table]:
            future, last = pending.popleft()
            done.append(future.result())
            if last:
                block = pa.concat_tables(done) if len(done) > 1 else done[0]
                done.clear()
                yield block.sort_by(order)

        for block in blocks:
            runs = _runs(block, jobs)
            for index, run in enumerate(runs):
                while len(pending) >= jobs:
                    yield from collect()
                pending.append((pool.submit(fetch, run), index == len(runs) - 1))
        while pending:
            yield from collect()


def _joined(dsn: str, snapshot: str) -> psycopg.Connection[Any]:
    """A connection in a read-only repeatable-read transaction that sees `snapshot`; closed (and the transaction
    with it) on exit."""
    connection = psycopg.connect(dsn, autocommit=True)
    try:
        connection.execute("begin isolation level repeatable read, read only")
        connection.execute(sql.SQL("set transaction snapshot {}").format(sql.Literal(snapshot)))
        _utc(connection)
    except BaseException:
        connection.close()
        raise
    return connection


def _utc(connection: psycopg.Connection[Any]) -> None:
    """COPY writes timestamptz in the session's zone and date style: make them what the parser reads."""
    connection.execute("set local timezone = 'UTC'")
    connection.execute("set local datestyle = 'ISO, YMD'")


def _copy(connection: psycopg.Connection[Any], panel: Panel, call: Call, schema: pa.Schema) -> pa.Table:
    ids, moments = call
    # COPY takes no parameters: the arrays go in as literals (psycopg quotes them).
    query = sql.SQL("copy (select * from {}({}::bigint[], {}::timestamptz[], {}, {})) to stdout (format csv)").format(
        sql.Identifier("nba", f"{panel.kind}_stats_panel"),
        sql.Literal(ids),
        sql.Literal(moments),
        sql.Literal(panel.scope),
        sql.Literal(panel.season_type),
    )
    text = io.BytesIO()
    with connection.cursor().copy(query) as copy:
        for row in copy:
            text.write(row)
    if not text.tell():
        return schema.empty_table()
    text.seek(0)
    names = columns(panel.id_column)
    return csv.read_csv(
        text,
        read_options=csv.ReadOptions(column_names=names),
        convert_options=csv.ConvertOptions(column_types=dict(zip(names, schema.types, strict=True))),
    ).cast(schema)
