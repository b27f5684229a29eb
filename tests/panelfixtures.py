"""A small league for the panel, plot and API tests, and helpers to run the CLI and read its output.

The league joins the hand-made games of tests/test_load.py (Kobe Bryant's last two, April 2016) and the
standings games of tests/test_panels.py (2014-15 and 2015-16, a game without events, a playoff game): eight
games, three teams, two seasons, both season types.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Sequence
from pathlib import Path

import psycopg
import pytest

from temporaldb.cli import main
from temporaldb.load import load_directory
from tests.nbadata import League, write_league
from tests.test_load import HAND_MADE
from tests.test_panels import STANDINGS_LEAGUE

LEAGUE = League(
    teams=HAND_MADE.teams,
    players=HAND_MADE.players,
    games=(*STANDINGS_LEAGUE.games, *HAND_MADE.games),
    events=(*STANDINGS_LEAGUE.events, *HAND_MADE.events),
)
SPAN = ("2016-01-09", "2016-04-20")
"""Around every 2015-16 game of the league, in days."""
GAME_ENDS = {
    game.game_id: max(event.wall_clock_time for event in LEAGUE.events if event.game_id == game.game_id)
    for game in LEAGUE.games
    if any(event.game_id == game.game_id for event in LEAGUE.events)
}
"""Each game's last event (a game without events has no end)."""

Row = tuple[object, ...]


def load_league(dsn: str, folder: Path) -> str:
    load_directory(dsn, write_league(folder, LEAGUE))
    return dsn


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def sql_panel(dsn: str, kind: str, ids: Sequence[int] | None, moments: Sequence[dt.datetime], *extra: str) -> list[Row]:
    """nba.<kind>_stats_panel's rows, straight from SQL."""
    arguments = ", ".join(["%s", "%s", *(["%s"] * len(extra))])
    with psycopg.connect(dsn) as connection:
        return connection.execute(
            f"select * from nba.{kind}_stats_panel({arguments})", (None if ids is None else list(ids), moments, *extra)
        ).fetchall()


def csv_rows(text: str) -> tuple[list[str], list[Row]]:
    """The header and the typed rows of the CLI's CSV: ints, and aware datetimes for as_of."""
    lines = list(csv.reader(io.StringIO(text)))
    return lines[0], [(int(line[0]), dt.datetime.fromisoformat(line[1]), *map(int, line[2:])) for line in lines[1:]]
