"""`temporaldb import SOURCE...`: feed documents into the database, reconciled with their box scores.

Registered by temporaldb/cli.py (`register(commands)`); the work is in importer.py and reconcile.py.
Exit codes: 0 done, 3 bad input (a FeedError, a LoadError or, with --strict, an unexplained difference:
nothing was changed), and the database and stack codes of `temporaldb load`.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from temporaldb.feeds.importer import ImportResult, Prepared
    from temporaldb.feeds.reconcile import Reconciliation

NAME = "import"
FORMAT_CHOICES: Final = ("auto", "v2", "v3", "live")
MESSAGES_SHOWN: Final = 5
"""Assumptions and notes printed to stderr; the report has all of them."""
GAMES_NAMED: Final = 10
"""importer.FORMAT_CHOICES, kept here so that building the parser imports no feed module."""


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from temporaldb import cli  # noqa: PLC0415 (cli imports this module)

    parser = commands.add_parser(
        NAME,
        help="import NBA feed documents (play-by-play and box scores), reconciled with the box scores",
        description="Read playbyplayv2, playbyplayv3 and live play-by-play documents and their box scores "
        "(boxscoretraditionalv2/v3 + boxscoresummaryv2, live box score) from files, folders and s3:// prefixes, "
        "group them by game, load each game in one transaction replacing its stored events, and compare the "
        "loaded end-of-game lines with the box scores before committing. --endpoint-url and --region also "
        "apply to s3:// sources (without --stack, to them only).",
        epilog=cli.DATABASE_EXIT_CODES + " Code 3 here also means: with --strict, an unexplained difference.",
    )
    parser.add_argument(
        "sources", nargs="+", metavar="SOURCE", help="a JSON (.json, .json.gz) file, folder or s3:// prefix"
    )
    parser.add_argument(
        "--format",
        dest="feed_format",
        choices=FORMAT_CHOICES,
        default="auto",
        help="the play-by-play format to accept (default auto: each document's own)",
    )
    parser.add_argument(
        "--box", action="append", default=[], metavar="SOURCE", help="box score documents (file, folder, s3://)"
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        help="an unexplained difference from a box score rolls the import back and exits 3",
    )
    parser.add_argument(
        "--report", type=Path, metavar="PATH", help="write the reconciliation here (JSON when PATH ends in .json)"
    )
    cli._add_connection(parser, "etl")
    parser.set_defaults(handler=cli._database_errors(_run))


def _counts(title: str, counts: Counter[str]) -> str | None:
    if not counts:
        return None
    return f"{title} {sum(counts.values())}: " + ", ".join(f"{key} {value}" for key, value in sorted(counts.items()))


def _write_report(path: Path, reconciliation: Reconciliation, prepared: Prepared, outcome: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        if path.name.endswith(".json"):
            extra = {"outcome": outcome, "assumptions": prepared.assumptions, "notes": prepared.notes}
            reconciliation.write_json(handle, extra)
            return
        lines = [f"outcome: {outcome}"]
        lines += [f"assumption: {text}" for text in prepared.assumptions]
        lines += [f"note: {text}" for text in prepared.notes]
        handle.write("\n".join(lines) + "\n")
        reconciliation.write_text(handle)


def _run(args: argparse.Namespace) -> int:
    from temporaldb.feeds import importer  # noqa: PLC0415
    from temporaldb.feeds.model import FeedError  # noqa: PLC0415

    endpoint_url, region = args.endpoint_url, args.region
    if args.stack is None:  # not stack options here: they are for the s3:// sources
        args = argparse.Namespace(**{**vars(args), "endpoint_url": None, "region": None})
    try:
        prepared = importer.prepare(
            args.sources, args.box, feed_format=args.feed_format, endpoint_url=endpoint_url, region=region
        )
    except FeedError as error:
        return _bad_input(error)
    with prepared:
        return _load(args, prepared)


def _say_some(lines: list[str], limit: int = MESSAGES_SHOWN) -> None:
    from temporaldb import cli  # noqa: PLC0415

    for text in lines[:limit]:
        cli._say(f"temporaldb import: {text}")
    if len(lines) > limit:
        cli._say(f"temporaldb import: ... and {len(lines) - limit} more like these (all of them go to --report)")


def _games_named(prepared: Prepared, limit: int = GAMES_NAMED) -> str:
    named = ", ".join(f"{game.game_id:010d} ({game.feed_format})" for game in prepared.games[:limit])
    return named + (f", ... {len(prepared.games) - limit} more" if len(prepared.games) > limit else "")


def _load(args: argparse.Namespace, prepared: Prepared) -> int:
    from temporaldb import cli  # noqa: PLC0415
    from temporaldb.feeds import importer  # noqa: PLC0415
    from temporaldb.feeds.reconcile import ReconciliationError  # noqa: PLC0415
    from temporaldb.load import LoadError  # noqa: PLC0415

    _say_some(prepared.assumptions)
    _say_some(prepared.notes)
    dsn = cli._connect_dsn(args, "etl")
    cli._say(f"temporaldb import: loading {len(prepared.games)} games, {prepared.events:,} events")
    try:
        result = importer.import_games(dsn, prepared, cli._report, strict=args.strict)
    except ReconciliationError as error:
        with closing(error.reconciliation):
            cli._say(error.reconciliation.headline())
            if args.report:
                _write_report(args.report, error.reconciliation, prepared, "refused (--strict): nothing was changed")
        return _bad_input(error)
    except LoadError as error:
        return _bad_input(error)
    with closing(result.reconciliation):
        return _summarise(args, prepared, result)


def _summarise(args: argparse.Namespace, prepared: Prepared, result: ImportResult) -> int:
    from temporaldb import cli  # noqa: PLC0415

    reconciliation = result.reconciliation
    cli._say(reconciliation.headline())
    for difference in reconciliation.unexplained[:10]:
        cli._say(f"  {difference.describe()}")
    if args.report:
        _write_report(args.report, reconciliation, prepared, "imported")
        cli._say(f"temporaldb import: report written to {args.report}")
    summary = result.summary
    lines = [
        f"imported {len(prepared.games)} games [{_games_named(prepared)}]: {prepared.events:,} events, "
        f"{summary.events_changed:,} new or changed, {summary.events_removed:,} removed",
        _counts("skipped feed rows", prepared.skipped),
        _counts("merged feed rows", prepared.merged),
        _counts("dropped events", prepared.dropped),
        reconciliation.headline(),
    ]
    print("\n".join(line for line in lines if line))
    return cli.EXIT_OK


def _bad_input(error: Exception) -> int:
    print(f"temporaldb import: {error}", file=sys.stderr)
    print("temporaldb import: nothing was changed", file=sys.stderr)
    return 3
