"""The drill report: every stage's start, end and result, the figures and what was torn down.

Written as JSON by the runbooks (`--report PATH`), on failure too: then it
names the stage that failed, the error, and what teardown removed.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

Say = Callable[[str], None]


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def iso(moment: dt.datetime | None) -> str | None:
    return moment.astimezone(dt.UTC).isoformat(timespec="milliseconds") if moment else None


class Terminated(KeyboardInterrupt):
    """SIGTERM (a scheduler's stop), raised where Ctrl-C would be so that the same teardown runs."""


@dataclass
class StageResult:
    """One stage of any drill (RDS or local, restore or upgrade), as its report records it.

    Made when the stage starts (`ok` None while it runs); `finish()` closes it with its duration.
    """

    name: str
    started_at: str = field(default_factory=lambda: iso(utc_now()) or "")
    """ISO 8601, UTC, milliseconds."""
    ended_at: str | None = None
    seconds: float | None = None
    ok: bool | None = None
    detail: str = ""

    def __post_init__(self) -> None:
        # Not a field (so not in the JSON): durations come from a monotonic clock, not from the wall clock.
        self._clock = time.perf_counter()

    def finish(self, ok: bool, detail: str | None = None) -> None:
        """Close the stage: its end, its duration, whether it passed, and (if given) what it found."""
        self.ended_at = iso(utc_now())
        self.seconds = round(time.perf_counter() - self._clock, 3)
        self.ok = ok
        if detail is not None:
            self.detail = detail


@dataclass
class DrillReport:
    drill: str
    """`restore` or `upgrade`."""
    mode: str
    """`aws` or `local`."""
    run_id: str
    applied: bool
    started_at: str = field(default_factory=lambda: iso(utc_now()) or "")
    stages: list[StageResult] = field(default_factory=list)
    verified: bool = False
    rto_seconds: float | None = None
    rpo_seconds: float | None = None
    failed_stage: str | None = None
    error: str | None = None
    torn_down: list[str] = field(default_factory=list)
    changed: bool = False
    """Whether the drill has asked for a change (a snapshot, a restore): from then on a failure needs teardown."""
    planned_calls: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    @contextlib.contextmanager
    def stage(self, name: str, say: Say) -> Iterator[StageResult]:
        """Time one stage; a failure marks it (and the report) failed with the error, then propagates."""
        result = StageResult(name)
        try:  # all of it, saying included: a signal landing anywhere in the stage is recorded against it
            self.stages.append(result)
            say(f"[{name}] started")
            yield result
            result.finish(True)
            say(f"[{name}] done in {result.seconds:.1f} s" + (f": {result.detail}" if result.detail else ""))
        except BaseException as error:
            self._failed(result, error, say)
            raise

    def _failed(self, result: StageResult, error: BaseException, say: Say) -> None:
        reason = describe(error)
        result.finish(False, f"{result.detail}: {reason}" if result.detail else reason)
        if self.failed_stage is None:
            self.failed_stage, self.error = result.name, reason
        else:  # e.g. teardown failing after the stage that failed first: keep both
            self.details.setdefault("also_failed", []).append(f"{result.name}: {reason}")
        say(f"[{result.name}] FAILED in {result.seconds:.1f} s: {result.detail}")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def write(self, path: Path) -> None:
        """Write atomically (a reader never sees half a report)."""
        scratch = path.with_name(path.name + ".tmp")
        scratch.write_text(json.dumps(self.as_dict(), indent=2, default=str) + "\n", encoding="utf-8")
        scratch.replace(path)


def describe(error: BaseException) -> str:
    """What stopped a stage, for a report: the error's message, or which signal interrupted it."""
    if isinstance(error, KeyboardInterrupt):
        return str(error) or "interrupted (Ctrl-C)"  # Terminated says "terminated (SIGTERM)"
    return str(error) or type(error).__name__


def first_line(text: str) -> str:
    """The first line of a stage's detail or an error's message, for a one-line summary ("" for "")."""
    return text.splitlines()[0] if text else ""
