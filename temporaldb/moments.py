"""The moments of a panel: a span (--from, --to) and a step (--every), or a given list (game ends).

A step in days keeps the wall-clock time of --from in its zone (every day at 19:00 Chicago time stays at 19:00
across a daylight-saving change); hours, minutes and seconds are exact elapsed time. Moments are computed by
index, never all held at once, so a panel of millions of moments costs no memory here.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from temporaldb.asof import AsOfError, parse_moment, parse_zone

UTC = dt.UTC
GAME = "game"
STEP = re.compile(r"(?P<count>[1-9][0-9]*)(?P<unit>[dhms])")
UNITS = {
    "d": dt.timedelta(days=1),
    "h": dt.timedelta(hours=1),
    "m": dt.timedelta(minutes=1),
    "s": dt.timedelta(seconds=1),
}
DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


class MomentError(AsOfError):
    """A time, a span or a step that cannot be used; the message names the option."""


def parse_time(text: str, zone: str | None, option: str) -> dt.datetime:
    """ISO 8601 with an offset, or without one in --tz. A date alone (2015-10-27) is midnight in --tz, or UTC
    without --tz: a day has no time of day to misread, and UTC is what the panel stores."""
    if zone is None and DATE.fullmatch(text):
        return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)
    return parse_moment(text, zone, option)


def parse_span(start: str, end: str, zone: str | None, options: tuple[str, str] = ("--from", "--to")) -> Span:
    span = Span(parse_time(start, zone, options[0]), parse_time(end, zone, options[1]))
    if span.start > span.end:
        raise MomentError(f"{options[0]} {start!r} is after {options[1]} {end!r}")
    return span


def output_zone(zone: str | None) -> dt.tzinfo:
    """The zone moments are written in: --tz, else UTC."""
    return UTC if zone is None else parse_zone(zone)


@dataclass(frozen=True)
class Span:
    start: dt.datetime
    end: dt.datetime


@dataclass(frozen=True)
class Step:
    count: int
    unit: str  # d, h, m or s

    @property
    def delta(self) -> dt.timedelta:
        return self.count * UNITS[self.unit]


def parse_step(text: str, option: str = "--every") -> Step | None:
    """`<n>d|h|m|s`, or `game` (None: the moments are the ends of games, found in the database)."""
    if text == GAME:
        return None
    found = STEP.fullmatch(text)
    if found is None:
        raise MomentError(f"{option} {text!r} is not a step such as 1d, 6h, 15m, 30s or game")
    return Step(int(found["count"]), found["unit"])


class Moments(Protocol):
    """Increasing moments, reachable by index."""

    def __len__(self) -> int: ...

    def at(self, index: int) -> dt.datetime: ...


@dataclass(frozen=True)
class Listed:
    """Moments given one by one (sorted, distinct)."""

    moments: Sequence[dt.datetime]

    def __len__(self) -> int:
        return len(self.moments)

    def at(self, index: int) -> dt.datetime:
        return self.moments[index]


@dataclass(frozen=True)
class Stepped:
    """From span.start to span.end inclusive, every step."""

    span: Span
    step: Step

    def at(self, index: int) -> dt.datetime:
        if self.step.unit == "d":
            # Wall-clock arithmetic: an aware datetime plus days keeps its local time (ZoneInfo recomputes the
            # offset); the UTC value is taken for comparisons, which Python makes on wall time within one zone.
            return (self.span.start + index * self.step.delta).astimezone(UTC)
        return self.span.start.astimezone(UTC) + index * self.step.delta

    def __len__(self) -> int:
        end = self.span.end.astimezone(UTC)
        # Exact for elapsed steps; for days, a daylight-saving change moves the count by at most one either way.
        guess = int((end - self.span.start.astimezone(UTC)) / self.step.delta)
        while guess > 0 and self.at(guess) > end:
            guess -= 1
        while self.at(guess + 1) <= end:
            guess += 1
        return guess + 1


def chunk(moments: Moments, start: int, stop: int) -> list[dt.datetime]:
    return [moments.at(index) for index in range(start, min(stop, len(moments)))]


def iso(moment: dt.datetime, zone: dt.tzinfo) -> str:
    """ISO 8601 with the offset of `zone`; milliseconds (the events' precision), microseconds when given."""
    local = moment.astimezone(zone)
    return local.isoformat(timespec="microseconds" if local.microsecond % 1000 else "milliseconds")
