"""The local upgrade drill's stages and its report: what was measured, and whether the upgrade is safe to schedule.

`STAGES` names the stages in the order they run; `build_report` turns what a run recorded (its stages, pre-checks
and facts) into a `LocalUpgradeReport`: the differences, the downtime, `safe_to_schedule` and what must change
first.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from temporaldb.drills.local_upgrade_binaries import TARGET_MAJOR
from temporaldb.drills.local_upgrade_facts import Facts
from temporaldb.drills.report import StageResult, first_line
from temporaldb.drills.upgrade_prechecks import BLOCKER, Precheck

# Stage names, in the order they run.
SOURCE_INIT: Final = "source_init"
SOURCE_LOAD: Final = "source_load"
FACTS_BEFORE: Final = "facts_before"
PRECHECKS: Final = "prechecks"
SOURCE_STOP: Final = "source_stop"
TARGET_INIT: Final = "target_init"
UPGRADE_CHECK: Final = "upgrade_check"
UPGRADE: Final = "upgrade"
TARGET_START: Final = "target_start"
ANALYZE: Final = "analyze"
UPDATE_EXTENSIONS: Final = "update_extensions"
VERIFY: Final = "verify"
SOURCE_RECHECK: Final = "source_recheck"
TEARDOWN: Final = "teardown"
STAGES: Final = (
    SOURCE_INIT, SOURCE_LOAD, FACTS_BEFORE, PRECHECKS, TARGET_INIT, UPGRADE_CHECK, SOURCE_STOP, UPGRADE,
    TARGET_START, ANALYZE, UPDATE_EXTENSIONS, VERIFY, SOURCE_RECHECK, TEARDOWN,
)  # fmt: skip
DOWNTIME_STAGES: Final = (SOURCE_STOP, UPGRADE, TARGET_START)
"""From the source's shutdown to the upgraded server accepting connections."""


@dataclass(frozen=True)
class LocalUpgradeReport:
    """Everything the drill measured; `dataclasses.asdict(report)` (or `as_dict()`) is ready for json.dumps."""

    source_major: int
    source_version: str
    target_major: int
    target_version: str
    drill_dir: str
    """The drill's folder: the clusters are in its `source/` and `target/`, pg_upgrade's scripts in `pg_upgrade/`."""
    socket_dir: str
    """Where both clusters' Unix sockets are (ports 5432 and 5433: socket names, no TCP)."""
    kept: bool
    """The clusters' folders were kept (stopped) for inspection instead of deleted."""
    stages: tuple[StageResult, ...]
    prechecks: tuple[Precheck, ...]
    facts_before: Facts | None
    facts_after: Facts | None
    """The upgraded cluster's facts (None when the drill stopped before)."""
    differences: tuple[str, ...]
    """facts_before vs facts_after, then vs the source's facts after it was restarted."""
    verified: bool
    """The upgraded cluster runs PostgreSQL 18 and every fact equals the one before."""
    source_unchanged: bool
    """The source started again after the upgrade, with the same facts."""
    safe_to_schedule: bool
    """verified, source_unchanged, no blocker and every stage up to source_recheck passed."""
    must_change_first: tuple[str, ...]
    """What to fix before scheduling the real upgrade (the blockers' remedies, the failed stage)."""
    after_upgrade: tuple[str, ...]
    """Steps the drill had to take on the upgraded cluster, which the real upgrade needs too."""
    failed_stage: str | None
    error: str | None
    total_seconds: float
    seconds_by_stage: dict[str, float]
    downtime_seconds: float | None
    """source_stop through target_start: how long the database could not be reached."""
    downtime_with_analyze_seconds: float | None
    """The downtime plus analyze: until the planner has statistics again."""

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def summary(self) -> str:
        """A few lines for a terminal."""
        lines = [
            f"PostgreSQL {self.source_version} -> {self.target_version}: "
            + ("verified" if self.verified else f"NOT verified (failed at {self.failed_stage or '-'})"),
            *(
                f"  {stage.name:<18} {'ok' if stage.ok else 'FAILED':<6} {stage_seconds(stage):8.2f} s  "
                + first_line(stage.detail)
                for stage in self.stages
            ),
        ]
        if self.downtime_seconds is not None:
            lines.append(
                f"  downtime {self.downtime_seconds:.2f} s, with analyze {self.downtime_with_analyze_seconds:.2f} s"
            )
        lines.append(f"  safe to schedule: {'yes' if self.safe_to_schedule else 'no'}")
        lines += [f"  must change first: {item}" for item in self.must_change_first]
        return "\n".join(lines)


def stage_seconds(stage: StageResult) -> float:
    """A recorded stage's duration (every stage the report holds has finished; 0 would mean one had not)."""
    return stage.seconds or 0.0


def build_report(
    *,
    source_major: int,
    source_version: str,
    target_version: str,
    drill_dir: str,
    socket_dir: str,
    kept: bool,
    stages: Sequence[StageResult],
    prechecks: tuple[Precheck, ...],
    facts_before: Facts | None,
    facts_after: Facts | None,
    source_after: Facts | None,
    after_upgrade: Sequence[str],
    failed_stage: str | None,
    error: str | None,
) -> LocalUpgradeReport:
    """The report of a run, finished or not: `source_after` is the source's facts once restarted (source_recheck)."""
    seconds = {stage.name: stage_seconds(stage) for stage in stages}
    passed = {stage.name for stage in stages if stage.ok}
    downtime = (
        round(sum(seconds[name] for name in DOWNTIME_STAGES), 3)
        if all(name in passed for name in DOWNTIME_STAGES)
        else None
    )
    with_analyze = round(downtime + seconds[ANALYZE], 3) if downtime is not None and ANALYZE in passed else None
    differences: list[str] = []
    if facts_before is not None and facts_after is not None:
        differences += facts_before.differences(facts_after)
    if facts_before is not None and source_after is not None:
        differences += [f"source: {item}" for item in facts_before.differences(source_after)]
    verified = VERIFY in passed
    source_unchanged = SOURCE_RECHECK in passed
    blockers = [finding for check in prechecks for finding in check.findings if finding.severity == BLOCKER]
    must_change = list(dict.fromkeys(finding.remedy for finding in blockers))
    if failed_stage is not None and failed_stage != PRECHECKS:
        must_change.append(f"fix what failed at {failed_stage}: {first_line(error or '')}")
    upgrade_stages_ok = all(name in passed for name in STAGES if name != TEARDOWN)
    return LocalUpgradeReport(
        source_major=source_major,
        source_version=source_version,
        target_major=TARGET_MAJOR,
        target_version=target_version,
        drill_dir=drill_dir,
        socket_dir=socket_dir,
        kept=kept,
        stages=tuple(stages),
        prechecks=prechecks,
        facts_before=facts_before,
        facts_after=facts_after,
        differences=tuple(differences),
        verified=verified,
        source_unchanged=source_unchanged,
        safe_to_schedule=verified and source_unchanged and not blockers and upgrade_stages_ok,
        must_change_first=tuple(must_change),
        after_upgrade=tuple(dict.fromkeys(after_upgrade)),
        failed_stage=failed_stage,
        error=error,
        total_seconds=round(sum(stage_seconds(stage) for stage in stages), 3),
        seconds_by_stage=seconds,
        downtime_seconds=downtime,
        downtime_with_analyze_seconds=with_analyze,
    )
