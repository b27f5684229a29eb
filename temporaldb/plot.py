"""`temporaldb plot race|standings`: pictures of panels and standings, PNG or SVG, drawn with matplotlib's Agg.

Registered by temporaldb/cli.py (`register(commands)`). `race_picture` and `standings_picture` return the
matplotlib Figure (tests read its axes; a notebook shows it); `save` writes it whole or not at all. matplotlib
is imported only when a picture is drawn, and no global pyplot state is touched: each figure has its own Agg
canvas, so a notebook's backend is left alone.
Exit codes: 0 done, 2 usage (--out not .png or .svg, or not writable), 3 bad input (a time, a name, a season,
more than 10 subjects), and the database codes of the other commands.
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from temporaldb import moments, panelquery
from temporaldb.asof import SCOPES, SEASON_TYPES, STATS
from temporaldb.output import atomic_file
from temporaldb.panel import UsageError, one_line_errors

if TYPE_CHECKING:
    import numpy as np
    import psycopg
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

NAME = "plot"
MAX_SUBJECTS = 10
PICTURE_FORMATS = {".png": "png", ".svg": "svg"}
SERIES_GID = "subject"
"""The gid of each subject's line (the as-of line and reference lines have their own)."""
AS_OF_GID = "as-of"
REFERENCE_GID = "reference"
SEASON = re.compile(r"[0-9]{4}-[0-9]{2}")
STANDINGS_HOUR_UTC = 12
"""Standings are taken each day at 12:00 UTC (7 or 8 AM in New York): every game of the night before is over."""
STAT_LABELS = {
    "games_played": "games played", "fgm": "field goals made", "fga": "field goals attempted",
    "fg3m": "threes made", "fg3a": "threes attempted", "ftm": "free throws made", "fta": "free throws attempted",
    "oreb": "offensive rebounds", "dreb": "defensive rebounds",
}  # fmt: skip
SEASON_TYPE_LABELS = {"regular": "regular season", "playoffs": "playoffs", "all": "regular season and playoffs"}
METRICS = {"diff": "wins minus losses", "pct": "win %"}
DPI = 100
LABEL_SPACING = 0.021
"""Team labels at least this far apart, as a share of the axis: a 7.5 pt label in the standings figure."""
EXIT_CODES = (
    "Exit codes: 0 done, 2 usage (--out not .png or .svg, or not writable), 3 bad input (a time, a name, a "
    "season, more than 10 subjects), 4 cannot reach the database; with --stack as for `temporaldb asof`."
)


@dataclass(frozen=True)
class Series:
    """One line: a name and its values at increasing moments (None: no value yet)."""

    name: str
    times: list[dt.datetime]
    values: list[float | None]


# --- the command line --------------------------------------------------------------------------------------


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from temporaldb import cli  # cli imports this module

    plot = commands.add_parser(
        NAME,
        help="pictures: a race of players' or teams' totals, a season's standings (PNG or SVG)",
        description="Draw a picture from the database with matplotlib (no display needed) into a .png or .svg.",
    )
    pictures = plot.add_subparsers(dest="picture", required=True, metavar="PICTURE")
    race = pictures.add_parser(
        "race",
        help="1 to 10 players or teams: a stat over time, game by game",
        description="A stat of 1 to 10 players or teams from --from to --to, as steps at the end of each of "
        "their games, e.g. temporaldb plot race --players 'Kobe Bryant,Paul Gray' --from 2015-10-28 "
        "--to 2016-04-14 --stat points --scope season --out race.png",
        epilog=EXIT_CODES,
    )
    who = race.add_mutually_exclusive_group(required=True)
    who.add_argument("--players", metavar="ID|NAME,...", help="players by id, full name or a unique part of it")
    who.add_argument("--teams", metavar="TEAM,...", help="teams by id, name or abbreviation")
    race.add_argument("--from", dest="start", required=True, metavar="T", help="ISO 8601 (as for temporaldb panel)")
    race.add_argument("--to", dest="end", required=True, metavar="T")
    race.add_argument("--stat", choices=STATS, default="points", help="default points")
    race.add_argument("--at", metavar="T", help="mark this moment with a vertical line (within the span)")
    race.add_argument("--scope", choices=SCOPES, default="career")
    race.add_argument("--season-type", choices=SEASON_TYPES, default="regular")
    race.add_argument("--tz", metavar="ZONE", help="zone of times without an offset, and of the date labels")
    _add_out(race)
    cli._add_connection(race, "analyst")
    race.set_defaults(handler=cli._database_errors(_run_race))

    standings = pictures.add_parser(
        "standings",
        help="a season's standings day by day, one line per team",
        description="Each team's wins minus losses (or win %) through a regular season, one line per team "
        "labelled at its end, from nba.standings_as_of at 12:00 UTC each day, e.g. "
        "temporaldb plot standings --season 2015-16 --out standings.png",
        epilog=EXIT_CODES,
    )
    standings.add_argument("--season", required=True, metavar="YYYY-YY", help="e.g. 2015-16")
    standings.add_argument(
        "--metric", choices=tuple(METRICS), default="diff", help="diff: wins minus losses (default); pct: win %%"
    )
    _add_out(standings)
    cli._add_connection(standings, "analyst")
    standings.set_defaults(handler=cli._database_errors(_run_standings))


def _add_out(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out", type=Path, required=True, metavar="FILE", help="a .png or .svg file, written whole or not at all"
    )


def _run_race(args: argparse.Namespace) -> int:
    def draw(connection: psycopg.Connection[Any]) -> Figure:
        option, text = ("--teams", args.teams) if args.teams else ("--players", args.players)
        names = panelquery.split_names(text, option)
        if len(names) > MAX_SUBJECTS:
            raise panelquery.PanelError(f"{option}: {len(names)} subjects; a race draws 1 to {MAX_SUBJECTS}")
        span = moments.parse_span(args.start, args.end, args.tz)
        at = None if args.at is None else moments.parse_time(args.at, args.tz, "--at")
        who = panelquery.Who("team" if args.teams else "player", names=names)
        when = panelquery.When(span, None, args.scope, args.season_type)
        return race_picture(connection, who, when, stat=args.stat, at=at, zone=moments.output_zone(args.tz))

    return _command(args, draw)


def _run_standings(args: argparse.Namespace) -> int:
    return _command(args, lambda connection: standings_picture(connection, args.season, metric=args.metric))


def _command(args: argparse.Namespace, draw: Callable[[psycopg.Connection[Any]], Figure]) -> int:
    """Check --out, connect as analyst, draw, save, print the path; one-line errors as `temporaldb panel`."""

    def work() -> None:
        import psycopg

        from temporaldb import cli  # cli imports this module

        form = picture_format(args.out)
        with atomic_file(args.out) as handle:
            with psycopg.connect(cli._connect_dsn(args, "analyst"), autocommit=True) as connection:
                figure = draw(connection)
            save(figure, handle, form)
        print(args.out)

    return one_line_errors(NAME, work)


def picture_format(path: Path) -> str:
    form = PICTURE_FORMATS.get(path.suffix.lower())
    if form is None:
        raise UsageError(f"--out {path}: the picture is written as .png or .svg; name the file so")
    return form


def save(figure: Figure, handle: Any, form: str) -> None:
    figure.savefig(handle, format=form, dpi=DPI, metadata={"Software": "temporaldb"} if form == "png" else None)


def save_to(figure: Figure, path: Path) -> None:
    """Write the picture to `path` (.png or .svg), whole or not at all."""
    form = picture_format(path)
    with atomic_file(path) as handle:
        save(figure, handle, form)


# --- the race ----------------------------------------------------------------------------------------------


def race_picture(
    connection: psycopg.Connection[Any], who: panelquery.Who, when: panelquery.When, *, stat: str = "points",
    at: dt.datetime | None = None, zone: dt.tzinfo = dt.UTC,
) -> Figure:  # fmt: skip
    """The figure of `temporaldb plot race`: `stat` of each subject at the span's ends and at the end of each
    of its games (where its line steps), and at `at`, marked by a vertical line."""
    if at is not None and not when.span.start <= at <= when.span.end:
        raise panelquery.PanelError(f"--at {at.isoformat()} is outside --from .. --to")
    series = race_series(connection, who, when, stat, at)
    return race_figure(series, stat=stat, when=when, at=at, zone=zone)


def race_series(
    connection: psycopg.Connection[Any], who: panelquery.Who, when: panelquery.When, stat: str, at: dt.datetime | None
) -> list[Series]:
    with panelquery.snapshot(connection):
        ids, names = panelquery.resolve(connection, who, when.span, panelquery.Labels(team="--teams"))
        ends = panelquery.game_ends(connection, who.kind, ids, when)
        marks = sorted({when.span.start, when.span.end, *ends, *([at] if at is not None else [])})
        panel = panelquery.Panel(who.kind, tuple(ids), moments.Listed(marks), when.scope, when.season_type)
        column = 2 + STATS.index(stat)
        lines: dict[int, Series] = {i: Series(name, [], []) for i, name in zip(ids, names, strict=True)}
        for batch in panelquery.rows(connection, panel):
            for row in batch:
                lines[row[0]].times.append(row[1])
                lines[row[0]].values.append(row[column])
    return list(lines.values())


def race_figure(
    series: Sequence[Series], *, stat: str, when: panelquery.When, at: dt.datetime | None, zone: dt.tzinfo
) -> Figure:
    figure, axes = _figure((10, 5.5))
    for line in series:
        # values are taken at the end of each game and hold until the next one: steps after each point
        axes.step(*_arrays(line), where="post", label=line.name, gid=SERIES_GID, linewidth=1.8)
    if at is not None:
        from matplotlib.dates import date2num

        axes.axvline(
            date2num(at), color="0.2", linestyle="--", linewidth=1, gid=AS_OF_GID, label=f"as of {_when(at, zone)}"
        )
    label = STAT_LABELS.get(stat, stat)
    axes.set_ylabel(f"{label} ({when.scope}, {SEASON_TYPE_LABELS[when.season_type]})")
    axes.set_xlabel(f"time ({_zone_name(zone)})")
    axes.set_title(f"{label.capitalize()}, {_when(when.span.start, zone)} to {_when(when.span.end, zone)}")
    _dates(axes, zone)
    axes.legend(loc="best", fontsize="small")
    return figure


# --- the standings -----------------------------------------------------------------------------------------


def standings_picture(connection: psycopg.Connection[Any], season: str, *, metric: str = "diff") -> Figure:
    """The figure of `temporaldb plot standings`: each team's wins minus losses (or win %) day by day."""
    return standings_figure(standings_series(connection, season, metric), season=season, metric=metric)


def standings_series(connection: psycopg.Connection[Any], season: str, metric: str) -> list[Series]:
    if not SEASON.fullmatch(season):
        raise panelquery.PanelError(f"--season {season!r} is not a season such as 2015-16")
    with panelquery.snapshot(connection):
        first, last = connection.execute(
            "select min(tipoff_at), max(tipoff_at) from nba.games where season = %s and season_type = 'regular'",
            (season,),
        ).fetchone() or (None, None)
        if first is None or last is None:
            raise panelquery.PanelError(f"--season {season}: no regular-season game in the database")
        rows = connection.execute(
            """select s.abbreviation, d.day, s.wins, s.losses, s.win_pct
               from unnest(%s::timestamptz[]) d(day) cross join lateral nba.standings_as_of(d.day, %s) s
               order by s.abbreviation, d.day""",
            (_days(first, last), season),
        ).fetchall()
    lines: dict[str, Series] = {}
    for team, day, wins, losses, pct in rows:
        line = lines.setdefault(team, Series(team, [], []))
        line.times.append(day)
        line.values.append(wins - losses if metric == "diff" else None if pct is None else float(pct) * 100)
    return list(lines.values())


def _days(first: dt.datetime, last: dt.datetime) -> list[dt.datetime]:
    """Each day at 12:00 UTC from the first game's day until the last game is over (every game ends within
    six hours of its tip-off)."""
    day = dt.datetime.combine(first.astimezone(dt.UTC).date(), dt.time(STANDINGS_HOUR_UTC), dt.UTC)
    days = [day]
    while days[-1] < last + dt.timedelta(hours=6):
        days.append(days[-1] + dt.timedelta(days=1))
    return days


def standings_figure(series: Sequence[Series], *, season: str, metric: str) -> Figure:
    import matplotlib as mpl

    figure, axes = _figure((11, 7.5))
    # 40 distinct colours for the 30 teams: tab20, then tab20b
    colors = [mpl.colormaps[name](index) for name in ("tab20", "tab20b") for index in range(20)]
    for index, line in enumerate(series):
        color = colors[index % len(colors)]
        axes.step(*_arrays(line), where="post", gid=SERIES_GID, label=line.name, color=color, linewidth=1.3)
    axes.axhline(0 if metric == "diff" else 50, color="0.5", linewidth=0.8, gid=REFERENCE_GID)
    _end_labels(axes, series, colors)
    axes.set_ylabel(METRICS[metric])
    axes.set_xlabel("day (UTC, standings at 12:00)")
    axes.set_title(f"{season} regular season: {METRICS[metric]}, day by day")
    _dates(axes, dt.UTC)
    return figure


def _end_labels(axes: Axes, series: Sequence[Series], colors: Sequence[Any]) -> None:
    """Each team's name at the right of its line's end, nudged apart so that no two overlap."""
    ends = sorted(
        (line.values[-1], index) for index, line in enumerate(series) if line.values and line.values[-1] is not None
    )
    if not ends:
        return
    placed = _spread([value for value, _ in ends], *axes.get_ylim(), LABEL_SPACING)
    last = max(line.times[-1] for line in series if line.times)
    for (_, index), where in zip(ends, placed, strict=True):
        axes.annotate(
            series[index].name, (last, where), xytext=(4, 0), textcoords="offset points", va="center",
            fontsize=7.5, color=colors[index % len(colors)], annotation_clip=False,
        )  # fmt: skip


def _spread(values: Sequence[float], low: float, high: float, spacing: float) -> list[float]:
    """Sorted positions moved apart by at least `spacing` of the axis (low..high) and as little as possible:
    labels that would overlap form a group centred on the mean of its values, groups merging as they grow."""
    gap = (high - low) * spacing
    groups: list[list[float]] = []

    def bottom(group: list[float]) -> float:
        return sum(group) / len(group) - (len(group) - 1) * gap / 2

    for value in values:
        groups.append([value])
        while len(groups) > 1 and bottom(groups[-2]) + len(groups[-2]) * gap > bottom(groups[-1]):
            merged = groups.pop()
            groups[-1].extend(merged)
    placed: list[float] = []
    for group in groups:
        first = min(max(bottom(group), low), high - (len(group) - 1) * gap)  # within the axis
        placed.extend(first + index * gap for index in range(len(group)))
    return placed


# --- shared --------------------------------------------------------------------------------------------------


def _figure(size: tuple[float, float]) -> tuple[Figure, Axes]:
    """A figure on its own Agg canvas (no pyplot: no global state, no display)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=size, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.grid(visible=True, alpha=0.3)
    return figure, axes


def _dates(axes: Axes, zone: dt.tzinfo) -> None:
    """Concise date labels (months, then days when zoomed in) in `zone`."""
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter

    locator = AutoDateLocator(tz=zone, minticks=4, maxticks=10)
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(ConciseDateFormatter(locator, tz=zone))


def _arrays(line: Series) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Times as UTC datetime64 (matplotlib reads them as UTC) and values as floats (None: NaN, a gap)."""
    import numpy as np

    times = np.array([time.astimezone(dt.UTC).replace(tzinfo=None) for time in line.times], dtype="datetime64[us]")
    return times, np.array([np.nan if value is None else value for value in line.values], dtype=float)


def _zone_name(zone: dt.tzinfo) -> str:
    return str(getattr(zone, "key", None) or zone.tzname(None) or zone)


def _when(moment: dt.datetime, zone: dt.tzinfo) -> str:
    local = moment.astimezone(zone)
    return local.strftime("%Y-%m-%d") if local.time() == dt.time(0) else local.strftime("%Y-%m-%d %H:%M")
