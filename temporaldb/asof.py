"""`temporaldb asof`: a player's or team's stat line at an exact moment."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

if TYPE_CHECKING:
    import psycopg

STATS = (
    "games_played", "points", "fgm", "fga", "fg3m", "fg3a", "ftm", "fta", "oreb", "dreb", "rebounds",
    "assists", "steals", "blocks", "turnovers", "fouls",
)  # fmt: skip
SCOPES = ("career", "season", "game")
SEASON_TYPES = ("regular", "playoffs", "all")


class AsOfError(ValueError):
    """The subject or the moment cannot be resolved."""


def default_scope(team: bool) -> str:
    """Career for a player, season for a team (as the one-cell SQL functions)."""
    return "season" if team else "career"


@dataclass(frozen=True)
class Subject:
    kind: str  # "player" or "team"
    subject_id: int
    name: str


@dataclass(frozen=True)
class AsOfAnswer:
    subject: Subject
    as_of: dt.datetime
    scope: str
    season_type: str
    stats: dict[str, int]
    latency_ms: float


def parse_zone(zone: str, option: str = "--tz") -> ZoneInfo:
    """A time zone by IANA name (e.g. America/Chicago)."""
    try:
        return ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise AsOfError(f"{option} {zone!r} is not a time zone name such as America/Chicago") from None


def parse_moment(text: str, zone: str | None, option: str = "--at") -> dt.datetime:
    """ISO 8601; a time without an offset needs --tz (e.g. America/Chicago for CT). `option` names the input
    in errors."""
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise AsOfError(f"{option} {text!r} is not an ISO 8601 time such as 2016-06-19T19:02:34.560-05:00") from None
    if moment.tzinfo is not None:
        return moment
    if zone is None:
        raise AsOfError(f"{option} {text!r} has no UTC offset; add one (e.g. -05:00) or pass --tz America/Chicago")
    return moment.replace(tzinfo=parse_zone(zone))


def resolve_subject(connection: psycopg.Connection[Any], text: str, *, team: bool) -> Subject:
    """A player (or team) by id, exact name (any case), or a unique part of the name."""
    table, key, label = ("nba.teams", "team_id", "name") if team else ("nba.players", "player_id", "full_name")
    kind = "team" if team else "player"
    if text.isdigit():
        row = connection.execute(f"select {key}, {label} from {table} where {key} = %s", (int(text),)).fetchone()
        if row is None:
            raise AsOfError(f"no {kind} with id {text}")
        return Subject(kind, row[0], row[1])
    exact_or_abbreviation = f"lower({label}) = lower(%s)" + (" or lower(abbreviation) = lower(%s)" if team else "")
    params = (text, text) if team else (text,)
    rows = connection.execute(f"select {key}, {label} from {table} where {exact_or_abbreviation}", params).fetchall()
    if not rows:
        rows = connection.execute(
            f"select {key}, {label} from {table} where {label} ilike %s order by {label} limit 11", (f"%{text}%",)
        ).fetchall()
    if not rows:
        raise AsOfError(f"no {kind} named {text!r}")
    if len(rows) > 1:
        names = ", ".join(f"{name} ({identifier})" for identifier, name in rows[:10])
        raise AsOfError(f"{text!r} matches several {kind}s: {names}; give the id or the full name")
    return Subject(kind, rows[0][0], rows[0][1])


def stats_as_of(
    connection: psycopg.Connection[Any], subject: Subject, as_of: dt.datetime, scope: str, season_type: str
) -> AsOfAnswer:
    function = "nba.team_stats_as_of" if subject.kind == "team" else "nba.player_stats_as_of"
    started = time.perf_counter()
    row = connection.execute(
        f"select * from {function}(%s, %s, %s, %s)", (subject.subject_id, as_of, scope, season_type), prepare=True
    ).fetchone()
    latency_ms = (time.perf_counter() - started) * 1000
    if row is None:
        raise AsOfError(f"{function} returned no row")
    return AsOfAnswer(subject, as_of, scope, season_type, dict(zip(STATS, row, strict=True)), latency_ms)


def document(answer: AsOfAnswer) -> dict[str, Any]:
    """The answer as `temporaldb asof --json` prints it (and `temporaldb.connect().asof` returns it)."""
    subject = answer.subject
    return {
        "subject": {"kind": subject.kind, "id": subject.subject_id, "name": subject.name},
        "as_of": answer.as_of.isoformat(timespec="milliseconds"),
        "scope": answer.scope,
        "season_type": answer.season_type,
        "stats": answer.stats,
        "latency_ms": round(answer.latency_ms, 3),
    }


def render(answer: AsOfAnswer) -> str:
    s = answer.stats
    shooting = f"FG {s['fgm']}-{s['fga']}, 3P {s['fg3m']}-{s['fg3a']}, FT {s['ftm']}-{s['fta']}"
    boards = f"{s['rebounds']} rebounds ({s['oreb']} off, {s['dreb']} def)"
    others = (
        f"{s['assists']} assists, {s['steals']} steals, {s['blocks']} blocks, "
        f"{s['turnovers']} turnovers, {s['fouls']} fouls"
    )
    return (
        f"{answer.subject.name} ({answer.subject.kind} {answer.subject.subject_id}), {answer.scope} "
        f"{answer.season_type} totals as of {answer.as_of.isoformat(timespec='milliseconds')}:\n"
        f"  {s['points']} points in {s['games_played']} games; {shooting}\n  {boards}; {others}\n"
        f"  answered in {answer.latency_ms:.3f} ms (one call; the first on a connection includes planning)"
    )
