"""The local restore drill's verdict: does the restored cluster hold exactly the source as it was at the target?

`verify_restore(source, restored, recorded, target)` compares the restored facts with those recorded at the target
(`TargetRecord`), checks that none of batch B's games came back and that the source still has them all, unchanged,
and places the last replayed commit between the last commit before the target and the target. The result is a
`RestoreEvidence`, whose `problems` are empty when the restore is verified.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import psycopg

from temporaldb.drills.facts import DatabaseFacts, compare, snapshot
from temporaldb.drills.local_restore_clusters import Cluster, utc_iso


@dataclass(frozen=True)
class RestoreEvidence:
    """What the verification compared, and what it found wrong (`problems`, empty when verified)."""

    expected: DatabaseFacts
    """The source's facts recorded at the restore target (after batch A)."""
    restored: DatabaseFacts
    """The restored cluster's facts, asked the same canary questions."""
    source_after_batch_b: DatabaseFacts
    """The source's facts right after batch B: they must differ from `expected`."""
    source_at_end: DatabaseFacts
    """The source's facts after the restore: they must equal `source_after_batch_b` (the drill never writes it)."""
    differences: tuple[str, ...]
    """compare(expected, restored)."""
    source_differences: tuple[str, ...]
    """compare(source_after_batch_b, source_at_end)."""
    batch_b_games: int
    """Games batch B added to the source."""
    batch_b_games_restored: int
    """How many of them the restored cluster has (must be 0)."""
    batch_b_games_in_source: int
    """How many of them the source still has (must be all)."""
    last_commit_before_target: dt.datetime | None
    """The source's last commit at the moment the target was recorded (track_commit_timestamp)."""
    last_replayed_commit: dt.datetime | None
    """pg_last_xact_replay_timestamp() of the restored cluster: the last transaction the restore includes."""
    recovery_log: tuple[str, ...]
    """The restored server's own account of the recovery (where it started, stopped and why), from its log."""
    problems: tuple[str, ...]

    def to_dict(self) -> dict[str, object]:
        return {
            "expected": self.expected.to_dict(),
            "restored": self.restored.to_dict(),
            "source_after_batch_b": self.source_after_batch_b.to_dict(),
            "source_at_end": self.source_at_end.to_dict(),
            "differences": list(self.differences),
            "source_differences": list(self.source_differences),
            "batch_b_games": self.batch_b_games,
            "batch_b_games_restored": self.batch_b_games_restored,
            "batch_b_games_in_source": self.batch_b_games_in_source,
            "last_commit_before_target": utc_iso(self.last_commit_before_target),
            "last_replayed_commit": utc_iso(self.last_replayed_commit),
            "recovery_log": list(self.recovery_log),
            "problems": list(self.problems),
        }


@dataclass(frozen=True)
class TargetRecord:
    """The source at the restore target, and after batch B."""

    expected: DatabaseFacts
    target: dt.datetime
    last_commit: dt.datetime | None
    after_b: DatabaseFacts
    new_games: frozenset[int]


def _present_games(cluster: Cluster, game_ids: set[int]) -> set[int]:
    with psycopg.connect(cluster.dsn(), autocommit=True) as connection:
        rows = connection.execute(
            "select game_id from nba.games where game_id = any(%s)", (sorted(game_ids),)
        ).fetchall()
    return {int(row[0]) for row in rows}


def verify_restore(source: Cluster, restored: Cluster, recorded: TargetRecord, target: dt.datetime) -> RestoreEvidence:
    """What the restore holds against what it should (`target` is the moment it was restored to)."""
    expected, new_games, last_commit = recorded.expected, set(recorded.new_games), recorded.last_commit
    restored_facts = snapshot(restored.dsn(), expected.questions)
    source_now = snapshot(source.dsn(), expected.questions)
    with psycopg.connect(restored.dsn("postgres"), autocommit=True) as connection:
        row = connection.execute("select pg_is_in_recovery(), pg_last_xact_replay_timestamp()").fetchone()
    in_recovery = bool(row and row[0])
    replayed = row[1] if row and isinstance(row[1], dt.datetime) else None
    restored_b = len(_present_games(restored, new_games))
    source_b = len(_present_games(source, new_games))
    differences = tuple(compare(expected, restored_facts))
    source_differences = tuple(compare(recorded.after_b, source_now))
    problems = [f"restored differs from the facts at the target: {line}" for line in differences]
    problems += [f"the source changed during the drill: {line}" for line in source_differences]
    if restored_b:
        problems.append(f"the restore holds {restored_b} of the {len(new_games)} games batch B added after the target")
    if source_b != len(new_games):
        problems.append(f"the source holds {source_b} of the {len(new_games)} games of batch B")
    if in_recovery:
        problems.append("the restored cluster is still in recovery")
    if replayed is None:
        problems.append("the restore replayed no transaction")
    else:
        if replayed > target:
            problems.append(f"the restore replayed a transaction of {utc_iso(replayed)}, after the target")
        if last_commit is not None and replayed < last_commit:
            problems.append(f"the restore stops at {utc_iso(replayed)}, before the last commit {utc_iso(last_commit)}")
    return RestoreEvidence(
        expected=expected,
        restored=restored_facts,
        source_after_batch_b=recorded.after_b,
        source_at_end=source_now,
        differences=differences,
        source_differences=source_differences,
        batch_b_games=len(new_games),
        batch_b_games_restored=restored_b,
        batch_b_games_in_source=source_b,
        last_commit_before_target=last_commit,
        last_replayed_commit=replayed,
        recovery_log=_recovery_lines(restored.log_file),
        problems=tuple(problems),
    )


_RECOVERY_MESSAGES: Final = (
    "starting point-in-time recovery",
    "consistent recovery state reached",
    "recovery stopping",
    "last completed transaction",
    "selected new timeline",
)


def _recovery_lines(log_file: Path) -> tuple[str, ...]:
    try:
        text = log_file.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ()
    return tuple(line for line in text.splitlines() if any(message in line for message in _RECOVERY_MESSAGES))
