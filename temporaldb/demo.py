"""`temporaldb demo`: the whole database on this machine, from nothing to an as-of answer.

Starts the embedded server with the role model and the migrations applied, generates three synthetic
seasons (2013-14 to 2015-16, Kobe Bryant's last three), loads them and answers
the headline question: Kobe Bryant's career regular-season totals at
7:02:34.560 PM Central on June 19, 2016, two months after his last game.
"""

from __future__ import annotations

import datetime as dt
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg

from temporaldb import asof, localpg, plot
from temporaldb.generate import generate_once
from temporaldb.load import load_directory
from temporaldb.moments import Span
from temporaldb.panelquery import When, Who

FIRST_SEASON = 2013
SEASONS = 3
HEADLINE_MOMENT = dt.datetime(2016, 6, 19, 19, 2, 34, 560000, tzinfo=ZoneInfo("America/Chicago"))
HEADLINE_PLAYER = "Kobe Bryant"
LATENCY_RUNS = 200
RACE_LEADERS = 4
"""The demo's picture: the top scorers in the data by the headline moment, and the headline player."""
RACE_END = dt.datetime(2016, 7, 1, tzinfo=ZoneInfo("America/Chicago"))

Say = Callable[[str], None]


def _generated(folder: Path, say: Say, *, seasons: int, first_season: int) -> int:
    """Generate the demo seasons once; return the number of games."""
    say(f"demo seasons {first_season}-{(first_season + 1) % 100:02d} onwards ({seasons}) in {folder}")
    generation = generate_once(folder, seasons=seasons, first_season=first_season, seed=1)
    summary = generation.summary
    state = "reused" if generation.reused else f"generated in {generation.seconds:.0f} s"
    say(f"  {summary.games:,} games, {summary.events:,} events, {summary.players:,} players ({state})")
    return summary.games


def _loaded_games(dsn: str) -> int:
    with psycopg.connect(dsn) as connection:
        row = connection.execute("select count(*) from nba.games").fetchone()
    return int(row[0]) if row else 0


def _headline(dsn: str) -> tuple[asof.AsOfAnswer, float]:
    """The answer, and the median latency of repeated warm calls on one connection."""
    with psycopg.connect(dsn) as connection:
        subject = asof.resolve_subject(connection, HEADLINE_PLAYER, team=False)
        answer = asof.stats_as_of(connection, subject, HEADLINE_MOMENT, "career", "regular")
        samples = []
        for _ in range(LATENCY_RUNS):
            started = time.perf_counter()
            asof.stats_as_of(connection, subject, HEADLINE_MOMENT, "career", "regular")
            samples.append((time.perf_counter() - started) * 1000)
    return answer, statistics.median(samples)


def _race_picture(dsn: str, path: Path) -> Path:
    """Career points of the top scorers and the headline player from the first game loaded, the headline
    moment marked: the picture README.md shows (docs/race.png)."""
    with psycopg.connect(dsn, autocommit=True) as connection:
        first = connection.execute("select min(tipoff_at) from nba.games").fetchone()
        leaders = connection.execute(
            "select player_id from nba.player_stats_panel(null, array[%s]::timestamptz[]) "
            "order by points desc, player_id limit %s",
            (HEADLINE_MOMENT, RACE_LEADERS),
        ).fetchall()
        zone = HEADLINE_MOMENT.tzinfo or dt.UTC
        start = dt.datetime.combine((first[0] if first else HEADLINE_MOMENT).astimezone(zone).date(), dt.time(0), zone)
        who = Who("player", names=(*(str(row[0]) for row in leaders), HEADLINE_PLAYER))
        when = When(Span(start, RACE_END), None, "career", "regular")
        figure = plot.race_picture(connection, who, when, at=HEADLINE_MOMENT, zone=zone)
    plot.save_to(figure, path)
    return path


def run(project_root: Path, say: Say, *, seasons: int = SEASONS, first_season: int = FIRST_SEASON) -> str:
    """The demo; `seasons` and `first_season` shrink the league (the tests load one season)."""
    server = localpg.start(project_root)
    say(f"local PostgreSQL {server.version} {'already running' if server.already_running else 'started'}")
    changed = f"{len(server.changes)} changes now" if server.changes else "already in place"
    say(f"roles, grants and schema version {server.schema_version}: {changed}")
    # As on RDS: the loader connects as etl, questions are asked as analyst.
    writer_dsn, reader_dsn = server.dsn(role="etl"), server.dsn(role="analyst")
    folder = project_root / ".local" / "demo-data"
    games = _generated(folder, say, seasons=seasons, first_season=first_season)
    if _loaded_games(reader_dsn) >= games:
        say("the demo seasons are already loaded (a reload would change nothing)")
    else:

        def progress(phase: str, done: int, total: int) -> None:
            say(f"  {phase}" + (f" {100 * done / total:.0f}%" if total > 1 else ""))

        summary = load_directory(writer_dsn, folder, progress)
        say(f"loaded {summary.rows.get('events', 0):,} events in {summary.seconds:.1f} s")
    answer, median_ms = _headline(reader_dsn)
    picture = _race_picture(reader_dsn, project_root / ".local" / "demo-race.png")
    return (
        f"\n{asof.render(answer)}\n  warm median over {LATENCY_RUNS} calls: {median_ms:.3f} ms\n"
        f"  (synthetic data: the generator gives this player a 20-season career ending on 2016-04-13; "
        f"the real figures are 33,643 points in 1,346 games)\n\n"
        f"Picture: {picture} (career points of the top scorers and {HEADLINE_PLAYER}, the headline moment marked)\n\n"
        f"Try: .venv/bin/temporaldb asof 'Kobe Bryant' --at 2016-04-14T03:45:00Z --scope game\n"
        f"     .venv/bin/temporaldb asof LAL --team --at 2016-04-14T03:45:00Z\n"
        f"     .venv/bin/temporaldb panel --all --from 2015-10-27 --to 2016-04-14 --every 1d --out season.parquet\n"
        f"     .venv/bin/temporaldb plot standings --season 2015-16 --out standings.png"
    )
