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


@dataclass
class StageResult:
    name: str
    started_at: str
    ended_at: str | None = None
    seconds: float | None = None
    ok: bool | None = None
    detail: str = ""


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
        result = StageResult(name, iso(utc_now()) or "")
        self.stages.append(result)
        started = time.perf_counter()
        try:
            say(f"[{name}] started")
            yield result
        except BaseException as error:
            result.ok = False
            result.detail = f"{result.detail}: {_describe(error)}" if result.detail else _describe(error)
            if self.failed_stage is None:
                self.failed_stage, self.error = name, _describe(error)
            else:  # e.g. teardown failing after the stage that failed first: keep both
                self.details.setdefault("also_failed", []).append(f"{name}: {_describe(error)}")
            raise
        else:
            result.ok = True
        finally:
            result.ended_at = iso(utc_now())
            result.seconds = round(time.perf_counter() - started, 3)
            say(
                f"[{name}] {'done' if result.ok else 'FAILED'} in {result.seconds:.1f} s"
                + (f": {result.detail}" if result.detail else "")
            )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def write(self, path: Path) -> None:
        """Write atomically (a reader never sees half a report)."""
        scratch = path.with_name(path.name + ".tmp")
        scratch.write_text(json.dumps(self.as_dict(), indent=2, default=str) + "\n", encoding="utf-8")
        scratch.replace(path)


def _describe(error: BaseException) -> str:
    if isinstance(error, KeyboardInterrupt):
        return "interrupted (Ctrl-C)"
    return str(error) or type(error).__name__
