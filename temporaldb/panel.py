"""`temporaldb panel`: many subjects' stat lines at many moments, streamed to CSV, JSON Lines or Parquet.

Registered by temporaldb/cli.py (`register(commands)`); the subjects, moments and queries are in
panelquery.py, the formats in panelwrite.py, the all-or-nothing output file in output.py. Exit codes: 0 done,
1 stdout closed by its reader, 2 usage (options that do not go together, a bad --every, an unwritable --out),
3 bad input (a time, a name or id, more cells than --max-cells), and the database codes of the other commands.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, TypeVar

from temporaldb import moments, panelquery
from temporaldb.asof import SCOPES, SEASON_TYPES, AsOfError
from temporaldb.output import OutputError, atomic_file
from temporaldb.panelquery import CHUNK_CELLS, Panel, PanelError, Who
from temporaldb.panelwrite import ParquetWriter, columns, open_text_writer

if TYPE_CHECKING:
    from temporaldb.panelwrite import Writer

Batch = TypeVar("Batch")
NAME = "panel"
MAX_CELLS = 50_000_000
JOBS = 2
"""Connections fetching a Parquet panel at once: the server's work runs on two cores, the parsing here."""
MAX_JOBS = 16
M_TRIM_THRESHOLD = -1
"""glibc's mallopt parameter number (malloc.h)."""
EXIT_STDOUT_CLOSED = 1
PROGRESS_SECONDS = 1.0
SUFFIXES = {".parquet": "parquet", ".json": "json", ".jsonl": "json", ".csv": "csv"}
EXIT_CODES = (
    "Exit codes: 0 done, 1 stdout closed by its reader (e.g. | head), 2 usage (options that do not go "
    "together, a bad --every, an unwritable --out), 3 bad "
    "input (a time, a name or id, more cells than --max-cells), 4 cannot reach the database; with --stack as "
    "for `temporaldb asof`. On any error no --out file is written."
)


class UsageError(Exception):
    """Options that do not go together, or an --out of the wrong kind; one line naming them."""


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from temporaldb import cli  # cli imports this module

    parser = commands.add_parser(
        NAME,
        help="many players' or teams' stat lines at many moments, to CSV, JSON Lines or Parquet",
        description="Write the stat line of each subject at each moment from --from to --to (both included) "
        "every --every, streamed from nba.player_stats_panel / nba.team_stats_panel with bounded memory, e.g. "
        "temporaldb panel --all --from 2015-10-27 --to 2016-04-14 --every 1d --format parquet --out season.parquet",
        epilog=EXIT_CODES,
    )
    who = parser.add_mutually_exclusive_group(required=True)
    who.add_argument("--players", metavar="ID|NAME,...", help="players by id, full name or a unique part of it")
    who.add_argument("--team", metavar="TEAM", help="a team (id, name or abbreviation): its own line")
    who.add_argument("--all", action="store_true", help="every player (with --teams: every team) with a game by --to")
    parser.add_argument(
        "--roster", action="store_true", help="with --team: every player with an event for it in the span"
    )
    parser.add_argument("--teams", action="store_true", help="with --all: teams instead of players")
    parser.add_argument(
        "--from",
        dest="start",
        required=True,
        metavar="T",
        help="ISO 8601 (with an offset, or --tz); a date alone is midnight (UTC without --tz)",
    )
    parser.add_argument(
        "--to", dest="end", required=True, metavar="T", help="the last moment, included when a step lands on it"
    )
    parser.add_argument(
        "--every",
        required=True,
        metavar="STEP",
        help="1d, 6h, 15m, 30s (any <n>d|h|m|s; days keep the wall-clock time of --from), or game: the end "
        "(last event) of every game of the subjects ending in the span (with --all: of every game)",
    )
    parser.add_argument("--scope", choices=SCOPES, default="career", help="default career (players and teams)")
    parser.add_argument("--season-type", choices=SEASON_TYPES, default="regular")
    parser.add_argument(
        "--format", dest="form", choices=("csv", "json", "parquet"), help="default: from --out's extension, else csv"
    )
    parser.add_argument(
        "--out",
        type=Path,
        metavar="FILE",
        help="write here, whole or not at all (default: stdout; Parquet needs a file)",
    )
    parser.add_argument(
        "--tz", metavar="ZONE", help="zone of times without an offset, and of the times written (default UTC)"
    )
    parser.add_argument(
        "--max-cells", type=int, default=MAX_CELLS, metavar="N", help=f"refuse a larger panel (default {MAX_CELLS:,})"
    )
    parser.add_argument(
        "--chunk-cells", type=int, default=CHUNK_CELLS, metavar="N", help=f"cells per query (default {CHUNK_CELLS:,})"
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=JOBS,
        metavar="N",
        help=f"Parquet: queries at once, on N connections reading one snapshot (default {JOBS}; 1 to {MAX_JOBS})",
    )
    cli._add_connection(parser, "analyst")
    parser.set_defaults(handler=cli._database_errors(_run))


def _run(args: argparse.Namespace) -> int:
    try:
        return one_line_errors(NAME, lambda: _panel(args))
    except BrokenPipeError:
        # The reader of stdout stopped (`| head`): no traceback, and nothing left to flush when Python exits.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        print("temporaldb panel: stdout was closed by its reader; stopped", file=sys.stderr)
        return EXIT_STDOUT_CLOSED


def one_line_errors(command: str, work: Callable[[], None]) -> int:
    """Run `work`; a usage or input error becomes one line on stderr and its exit code (the database's errors
    are left to cli._database_errors)."""
    from temporaldb import cli  # cli imports this module

    try:
        work()
    except (UsageError, OutputError) as error:
        cli._say(f"temporaldb {command}: {error}")
        return cli.EXIT_USAGE
    except (AsOfError, PanelError) as error:
        cli._say(f"temporaldb {command}: {error}")
        return cli.EXIT_BAD_INPUT
    return cli.EXIT_OK


def _panel(args: argparse.Namespace) -> None:
    import psycopg  # not needed for --help

    from temporaldb import cli, panelfetch  # cli imports this module; panelfetch imports pyarrow

    form = _format(args)
    who = _who(args)
    step = _step(args.every)
    span = moments.parse_span(args.start, args.end, args.tz)
    zone = moments.output_zone(args.tz)
    started = time.monotonic()
    when = panelquery.When(span, step, args.scope, args.season_type)
    dsn = cli._connect_dsn(args, "analyst")
    with (
        _destination(args.out) as handle,
        psycopg.connect(dsn, autocommit=True) as connection,
        panelquery.snapshot(connection),
    ):
        panel = panelquery.plan(connection, who, when)
        _check_size(panel, args.max_cells)
        if form == "parquet" and handle is not None:
            _hand_back_freed_memory()
            parquet = ParquetWriter(handle, panel.id_column)
            tables = panelfetch.tables(connection, panel, args.chunk_cells, dsn=dsn, jobs=args.jobs)
            written = _stream(tables, parquet.write_table, lambda table: table.num_rows, writer=parquet, panel=panel)
        else:
            sink = sys.stdout.write if handle is None else (lambda text: handle.write(text.encode()))
            writer = open_text_writer(form, columns(panel.id_column), zone, sink)
            batches = panelquery.rows(connection, panel, args.chunk_cells)
            written = _stream(batches, writer.write, len, writer=writer, panel=panel)
    where = f" to {args.out}" if args.out else ""
    shape = f"{_count(len(panel.ids), panel.kind)} x {_count(len(panel.moments), 'moment')}"
    cli._say(f"temporaldb panel: {written:,} cells ({shape}){where} in {time.monotonic() - started:.1f} s")


def _hand_back_freed_memory() -> None:
    """Have glibc return freed heap memory to the system from 128 KiB on (M_TRIM_THRESHOLD).

    Its default threshold rises with the largest block freed (up to 32 MiB), so the CSV and Arrow buffers of each
    call, freed by the threads that fetched them, stayed mapped: a panel's peak RSS grew with its size (268 MB
    against 232 MB for 4.8M cells, measured). Other C libraries: nothing to do.
    """
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except AttributeError:
        return
    mallopt(M_TRIM_THRESHOLD, 128 * 1024)


def _format(args: argparse.Namespace) -> str:
    for option, value in (("--max-cells", args.max_cells), ("--chunk-cells", args.chunk_cells)):
        if value < 1:
            raise UsageError(f"{option} {value}: must be 1 or more")
    if not 1 <= args.jobs <= MAX_JOBS:
        raise UsageError(f"--jobs {args.jobs}: must be 1 to {MAX_JOBS}")
    form: str = args.form or (SUFFIXES.get(args.out.suffix.lower(), "csv") if args.out else "csv")
    if form == "parquet" and args.out is None:
        raise UsageError("--format parquet needs --out FILE (Parquet is not written to stdout)")
    return form


def _who(args: argparse.Namespace) -> Who:
    if args.roster and args.team is None:
        raise UsageError("--roster needs --team TEAM (the team whose players to list)")
    if args.teams and not args.all:
        raise UsageError("--teams goes with --all (every team); for one team give --team TEAM")
    if args.players is not None:
        return Who("player", names=panelquery.split_names(args.players, "--players"))
    if args.team is not None:
        return Who("player", roster=args.team) if args.roster else Who("team", names=(args.team,))
    return Who("team" if args.teams else "player")


def _step(text: str) -> moments.Step | None:
    try:
        return moments.parse_step(text)
    except moments.MomentError as error:
        raise UsageError(str(error)) from None


def _check_size(panel: Panel, max_cells: int) -> None:
    """Refuse a panel larger than --max-cells, counted before any cell is computed."""
    if panel.cells > max_cells:
        raise PanelError(
            f"--max-cells {max_cells:,}: this panel has {panel.cells:,} cells ({_count(len(panel.ids), panel.kind)} x "
            f"{_count(len(panel.moments), 'moment')}); narrow it (fewer subjects, a shorter span, a longer --every) or "
            f"raise --max-cells"
        )


def _count(number: int, noun: str) -> str:
    return f"{number:,} {noun}{'' if number == 1 else 's'}"


@contextmanager
def _destination(out: Path | None) -> Iterator[BinaryIO | None]:
    """The --out file (written whole at the end, or not at all), or None for stdout."""
    with atomic_file(out) if out is not None else nullcontext() as handle:
        yield handle


def _stream(
    batches: Iterator[Batch],
    write: Callable[[Batch], None],
    size: Callable[[Batch], int],
    *,
    writer: Writer,
    panel: Panel,
) -> int:
    """Write every batch; progress on stderr about every second when it takes longer than that."""
    from temporaldb.cli import _say as say  # cli imports this module

    written, last = 0, time.monotonic()
    try:
        for batch in batches:
            write(batch)
            written += size(batch)
            if time.monotonic() - last >= PROGRESS_SECONDS:
                say(f"temporaldb panel: {written:,} / {panel.cells:,} cells ({100 * written / panel.cells:.0f}%)")
                last = time.monotonic()
        writer.finish()
    except BaseException:
        writer.abort()
        raise
    return written
