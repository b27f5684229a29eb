"""Writing panels as they stream: CSV and JSON Lines from rows, Parquet in row groups from Arrow tables.

CSV and JSON Lines write each moment as ISO 8601 with its offset (in --tz, else UTC). Parquet keeps the types:
the id and every stat int64, `as_of` a timestamp with time zone UTC (microseconds, PostgreSQL's precision); its
tables come from temporaldb/panelfetch.py. pyarrow is imported only when Parquet (or a DataFrame) is asked for.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, BinaryIO, Protocol

import orjson

from temporaldb.asof import STATS
from temporaldb.moments import iso
from temporaldb.panelquery import Row

if TYPE_CHECKING:
    import pyarrow as pa

FORMATS = ("csv", "json", "parquet")
ROW_GROUP_ROWS = 131_072
"""Rows per Parquet row group: about 19 MB of int64 columns held before each group is written."""

TextSink = Callable[[str], object]


def columns(id_column: str) -> list[str]:
    return [id_column, "as_of", *STATS]


class Writer(Protocol):
    def finish(self) -> None: ...

    def abort(self) -> None: ...


class TextWriter(Writer, Protocol):
    def write(self, rows: Sequence[Row]) -> None: ...


class CsvWriter:
    """A header, then one line per row."""

    def __init__(self, sink: TextSink, names: list[str], zone: dt.tzinfo) -> None:
        self._sink, self._zone = sink, zone
        self._write_lines([names])

    def write(self, rows: Sequence[Row]) -> None:
        self._write_lines([(row[0], iso(row[1], self._zone), *row[2:]) for row in rows])

    def _write_lines(self, lines: Sequence[Sequence[object]]) -> None:
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerows(lines)
        self._sink(buffer.getvalue())

    def finish(self) -> None:
        """Nothing is held back."""

    def abort(self) -> None:
        """Nothing to undo: the caller drops the output."""


class JsonLinesWriter:
    """One JSON object per line, keys in column order."""

    def __init__(self, sink: TextSink, names: list[str], zone: dt.tzinfo) -> None:
        self._sink, self._names, self._zone = sink, names, zone

    def write(self, rows: Sequence[Row]) -> None:
        lines = (
            orjson.dumps(dict(zip(self._names, (row[0], iso(row[1], self._zone), *row[2:]), strict=True)))
            for row in rows
        )
        self._sink(b"".join(line + b"\n" for line in lines).decode())

    def finish(self) -> None:
        """Nothing is held back."""

    def abort(self) -> None:
        """Nothing to undo: the caller drops the output."""


def arrow_schema(id_column: str) -> pa.Schema:
    import pyarrow as pa

    stats = [pa.field(name, pa.int64(), nullable=False) for name in STATS]
    return pa.schema(
        [
            pa.field(id_column, pa.int64(), nullable=False),
            pa.field("as_of", pa.timestamp("us", tz="UTC"), nullable=False),
            *stats,
        ]
    )


class ParquetWriter:
    """Row groups of ROW_GROUP_ROWS rows, written as they fill."""

    def __init__(self, handle: BinaryIO, id_column: str, row_group_rows: int | None = None) -> None:
        import pyarrow.parquet as pq

        self._schema = arrow_schema(id_column)
        self._writer = pq.ParquetWriter(handle, self._schema)
        self._pending: list[pa.RecordBatch] = []
        self._pending_rows = 0
        self._group_rows = row_group_rows or ROW_GROUP_ROWS

    def write_table(self, table: pa.Table) -> None:
        """Cells already in columns of this schema (temporaldb.panelfetch)."""
        for batch in table.to_batches():
            self._pending.append(batch)
            self._pending_rows += batch.num_rows
        if self._pending_rows >= self._group_rows:
            self._flush()

    def _flush(self) -> None:
        import pyarrow as pa

        if self._pending:
            self._writer.write_table(pa.Table.from_batches(self._pending), row_group_size=self._group_rows)
        self._pending, self._pending_rows = [], 0
        # Arrow's allocator keeps freed blocks for reuse; without handing them back, a long panel's peak RSS
        # grows by tens of MB over what it holds.
        pa.default_memory_pool().release_unused()

    def finish(self) -> None:
        self._flush()
        self._writer.close()

    def abort(self) -> None:
        """Close while the file is still open (the caller drops it): pyarrow would otherwise close it later."""
        self._pending = []
        self._writer.close()


def open_text_writer(form: str, names: list[str], zone: dt.tzinfo, sink: TextSink) -> TextWriter:
    """The writer of a text format (csv or json), writing to `sink`."""
    return CsvWriter(sink, names, zone) if form == "csv" else JsonLinesWriter(sink, names, zone)
