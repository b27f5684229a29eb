"""The local restore drill (temporaldb/drills/local_restore.py), for real: WAL archiving, a base backup,
point-in-time recovery on embedded PostgreSQL 18, verification, and a teardown that leaves nothing behind.

The data is the league generator's, cut to 30 games per season and made once per session (batch A: 2014-15,
batch B: 2015-16); each drill copies it in.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from temporaldb.drills.facts import CANARY_MOMENT, CanaryAnswer, CanaryQuestion, DatabaseFacts, compare, snapshot
from temporaldb.drills.local_restore import STAGES, BatchWriter, DrillError, LocalRestoreReport, generated_batches, run
from temporaldb.load import load_directory
from temporaldb.migrate import default_migrations_dir, read_migrations, set_checksum
from tests import drill_fixtures

GAMES_PER_SEASON = 30
UTC = dt.UTC


@pytest.fixture(scope="session")
def small_league(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two batches of canonical CSV: `a/` (first season) and `b/` (the next)."""
    folder = tmp_path_factory.mktemp("drill-batches")
    generated_batches(1, games_per_season=GAMES_PER_SEASON)(folder / "a", folder / "b")
    return folder


def copy_of(folder: Path) -> BatchWriter:
    def write(batch_a: Path, batch_b: Path) -> None:
        shutil.copytree(folder / "a", batch_a, dirs_exist_ok=True)
        shutil.copytree(folder / "b", batch_b, dirs_exist_ok=True)

    return write


@pytest.fixture
def work_dir() -> Iterator[Path]:
    """A work folder the server account can reach even as root (pytest's temp root is private), so the drill
    folder lands inside it and the tests can see what is left."""
    folder = Path(tempfile.mkdtemp(prefix="temporaldb-drill-test-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def interrupt_when(fragment: str, messages: list[str]) -> Callable[[str], None]:
    """A `say` that records every message and raises KeyboardInterrupt (once) at the first containing `fragment`."""
    fired = []

    def say(message: str) -> None:
        messages.append(message)
        if fragment in message and not fired:
            fired.append(message)
            raise KeyboardInterrupt

    return say


# --- the whole drill ------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Drilled:
    report: LocalRestoreReport
    messages: list[str]


@pytest.fixture(scope="module")
def drilled(tmp_path_factory: pytest.TempPathFactory, small_league: Path) -> Drilled:
    """One complete drill, shared by the tests below (as root the folder falls back to the system temp dir)."""
    messages: list[str] = []
    report = run(tmp_path_factory.mktemp("drill"), messages.append, batches=copy_of(small_league))
    return Drilled(report, messages)


def test_every_stage_ran_in_order_and_the_restore_is_verified(drilled: Drilled) -> None:
    report = drilled.report
    assert report.verified, report.evidence.problems
    assert report.evidence.problems == ()
    assert [stage.name for stage in report.stages] == list(STAGES)
    assert all(stage.ok for stage in report.stages), report.stages
    moments = [dt.datetime.fromisoformat(stage.started_at) for stage in report.stages]
    assert moments == sorted(moments)
    assert all(dt.datetime.fromisoformat(s.ended_at) >= dt.datetime.fromisoformat(s.started_at) for s in report.stages)
    assert report.postgres_version.startswith("18.")


def test_the_restore_equals_the_facts_recorded_at_the_target(drilled: Drilled) -> None:
    evidence = drilled.report.evidence
    expected, restored = evidence.expected, evidence.restored
    assert restored == expected
    assert compare(expected, restored) == []
    assert evidence.differences == ()
    assert expected.row_counts["nba.games"] == GAMES_PER_SEASON
    assert expected.row_counts["nba.seasons"] == 1
    assert expected.row_counts["nba.play_by_play"] > 10_000
    assert [answer.question.kind for answer in expected.canaries] == ["player"] * 3 + ["team"] * 2
    assert all(answer.stats["points"] > 0 for answer in expected.canaries)
    migrations = read_migrations(default_migrations_dir())
    assert expected.schema_version == migrations[-1].version
    assert expected.schema_checksum == set_checksum(migrations)


def test_batch_b_is_in_the_source_and_not_in_the_restore(drilled: Drilled) -> None:
    evidence = drilled.report.evidence
    restored, final = evidence.restored, evidence.source_after_batch_b
    assert final.row_counts["nba.games"] == 2 * GAMES_PER_SEASON
    assert final.row_counts["nba.seasons"] == 2
    assert final.row_counts["nba.play_by_play"] > restored.row_counts["nba.play_by_play"]
    assert restored.row_counts != final.row_counts
    assert restored.canaries != final.canaries
    assert "nba.games: expected 30 rows, found 60" in compare(evidence.expected, final)
    assert (evidence.batch_b_games, evidence.batch_b_games_restored, evidence.batch_b_games_in_source) == (30, 0, 30)
    assert evidence.source_at_end == final
    assert evidence.source_differences == ()


def test_the_timeline_rto_and_rpo(drilled: Drilled) -> None:
    report, evidence = drilled.report, drilled.report.evidence
    replayed, last_commit = evidence.last_replayed_commit, evidence.last_commit_before_target
    assert replayed is not None
    assert last_commit is not None
    # backup < last commit before the target <= last replayed commit <= target
    assert report.base_backup_finished_at < last_commit <= replayed <= report.restore_target
    assert report.rpo_seconds == pytest.approx((report.restore_target - replayed).total_seconds())
    assert 0 <= report.rpo_seconds < 30
    restore_stage = next(stage for stage in report.stages if stage.name == "restore")
    restore_seconds = (
        dt.datetime.fromisoformat(restore_stage.ended_at) - dt.datetime.fromisoformat(restore_stage.started_at)
    ).total_seconds()
    assert report.rto_seconds is not None
    assert report.rto_seconds > 0
    assert report.rto_seconds >= restore_seconds - 0.01
    assert any("recovery stopping before commit" in line for line in evidence.recovery_log), evidence.recovery_log


def test_the_drill_tears_down_and_reports_in_json(drilled: Drilled) -> None:
    report = drilled.report
    assert not report.kept
    assert not report.drill_dir.exists()
    assert drill_fixtures.processes_naming(report.drill_dir) == {}
    assert "[restore] ..." in drilled.messages
    assert any(message.startswith("[teardown] done") for message in drilled.messages)
    document = json.loads(json.dumps(report.to_dict()))
    assert document["verified"] is True
    assert document["restore_target"] == report.restore_target.isoformat(timespec="microseconds")
    assert [stage["name"] for stage in document["stages"]] == list(STAGES)
    assert document["evidence"]["expected"]["row_counts"]["nba.games"] == GAMES_PER_SEASON


def test_target_before_the_base_backup_fails_in_the_restore_stage_and_cleans_up(
    work_dir: Path, small_league: Path
) -> None:
    messages: list[str] = []
    too_early = dt.datetime(2000, 1, 1, tzinfo=UTC)
    with pytest.raises(DrillError) as caught:
        run(work_dir, messages.append, batches=copy_of(small_league), restore_target=too_early)

    error = caught.value
    assert error.stage == "restore"
    assert "stage restore" in str(error)
    assert "before the base backup finished" in str(error)
    assert [stage.name for stage in error.stages] == list(STAGES[: STAGES.index("restore") + 1])
    assert [stage.ok for stage in error.stages] == [True] * (len(error.stages) - 1) + [False]
    assert error.drill_dir is not None
    assert error.drill_dir.parent == work_dir.resolve()
    assert not error.drill_dir.exists()
    assert list(work_dir.iterdir()) == []
    assert drill_fixtures.processes_naming(work_dir) == {}
    assert any(message.startswith("[teardown] done") for message in messages)


def test_a_target_beyond_the_archived_wal_fails_in_the_restore_stage_with_the_server_log(
    work_dir: Path, small_league: Path
) -> None:
    too_late = dt.datetime.now(UTC) + dt.timedelta(hours=1)
    with pytest.raises(DrillError) as caught:
        run(work_dir, lambda _: None, batches=copy_of(small_league), restore_target=too_late)
    assert caught.value.stage == "restore"
    # pg_ctl may see the server fail while starting, or the drill while waiting for promotion: the log says which
    assert "recovery ended before configured recovery target was reached" in str(caught.value)
    assert list(work_dir.iterdir()) == []
    assert drill_fixtures.processes_naming(work_dir) == {}


def test_batches_that_add_no_game_are_refused_before_any_server_starts(work_dir: Path, small_league: Path) -> None:
    def same_twice(batch_a: Path, batch_b: Path) -> None:
        shutil.copytree(small_league / "a", batch_a, dirs_exist_ok=True)
        shutil.copytree(small_league / "a", batch_b, dirs_exist_ok=True)

    with pytest.raises(DrillError, match="stage prepare_data: batch A has 30 games and batch B adds 0") as caught:
        run(work_dir, lambda _: None, batches=same_twice)
    assert [stage.name for stage in caught.value.stages] == ["prepare_data"]
    assert list(work_dir.iterdir()) == []


def test_ctrl_c_during_recovery_stops_both_clusters_and_deletes_everything(work_dir: Path, small_league: Path) -> None:
    messages: list[str] = []
    say = interrupt_when("recovery finished", messages)  # both clusters are running at that moment
    with pytest.raises(KeyboardInterrupt):
        run(work_dir, say, batches=copy_of(small_league))
    assert any(message.startswith("[teardown] done") for message in messages)
    assert list(work_dir.iterdir()) == []
    assert drill_fixtures.processes_naming(work_dir) == {}


def test_keep_leaves_the_folder_with_the_clusters_stopped(work_dir: Path, small_league: Path) -> None:
    messages: list[str] = []
    with pytest.raises(KeyboardInterrupt):
        run(work_dir, interrupt_when("[load_batch_a]", messages), batches=copy_of(small_league), keep=True)
    (drill_dir,) = work_dir.iterdir()
    assert (drill_dir / "source" / "PG_VERSION").is_file()
    assert (drill_dir / "base-backup" / "backup_manifest").is_file()
    assert not (drill_dir / "source" / "postmaster.pid").exists()
    assert drill_fixtures.processes_naming(work_dir) == {}
    assert any(f"kept {drill_dir}" in message for message in messages)


# --- snapshot and compare, usable against any database (RDS too) ----------------------------------------------


def test_snapshot_reads_counts_schema_and_canaries_and_asks_the_same_questions(
    database: str, small_league: Path
) -> None:
    load_directory(database, small_league / "a")
    first = snapshot(database)

    assert first.row_counts["nba.games"] == GAMES_PER_SEASON
    assert set(first.row_counts) >= {"nba.teams", "nba.players", "nba.games", "nba.play_by_play", "nba.stat_lines"}
    assert first.schema_version == read_migrations(default_migrations_dir())[-1].version
    assert len(first.questions) == 5
    assert all(question.as_of == CANARY_MOMENT for question in first.questions)
    player = first.canaries[0]
    with psycopg.connect(database) as connection:
        row = connection.execute(
            "select * from nba.player_stats_as_of(%s, %s, 'career', 'all')", (player.question.subject_id, CANARY_MOMENT)
        ).fetchone()
        busiest = connection.execute(
            "select subject_id from nba.stat_lines where subject_kind = 'p'"
            " group by 1 order by count(*) desc, 1 limit 1"
        ).fetchone()
    assert row is not None
    assert busiest is not None
    assert player.question.subject_id == busiest[0]
    assert tuple(player.stats.values()) == tuple(row)
    assert compare(first, snapshot(database, first.questions)) == []

    load_directory(database, small_league / "b")
    second = snapshot(database, first.questions)
    assert second.questions == first.questions
    differences = compare(first, second)
    assert "nba.games: expected 30 rows, found 60" in differences
    assert any(line.startswith(f"team {first.questions[-1].subject_id} season/all") for line in differences)


def _facts(**changes: object) -> DatabaseFacts:
    question = CanaryQuestion("player", 977, "career", "all", CANARY_MOMENT)
    facts = DatabaseFacts(
        database="nba_temporal",
        schema_version=3,
        schema_checksum="a" * 64,
        row_counts={"nba.games": 10, "nba.teams": 2},
        canaries=(CanaryAnswer(question, {"games_played": 2, "points": 40, "fouls": 3}),),
    )
    return dataclasses.replace(facts, **changes)


def test_compare_names_every_difference() -> None:
    expected = _facts()
    assert compare(expected, _facts()) == []
    other_question = CanaryQuestion("team", 1610612747, "season", "all", CANARY_MOMENT)
    actual = _facts(
        schema_version=4,
        schema_checksum="b" * 64,
        row_counts={"nba.games": 11, "nba.seasons": 1},
        canaries=(
            CanaryAnswer(expected.questions[0], {"games_played": 2, "points": 38, "fouls": 4}),
            CanaryAnswer(other_question, {"points": 1}),
        ),
    )
    assert compare(expected, actual) == [
        "schema version: expected 3, found 4",
        "schema checksum: expected aaaaaaaaaaaa, found bbbbbbbbbbbb",
        "nba.games: expected 10 rows, found 11",
        "nba.seasons: unexpected table (1 rows)",
        "nba.teams: table missing (expected 2 rows)",
        "player 977 career/all as of 2100-01-01T00:00:00.000+00:00: points expected 40, found 38; "
        "fouls expected 3, found 4",
        "team 1610612747 season/all as of 2100-01-01T00:00:00.000+00:00: unexpected canary",
    ]
    assert compare(expected, _facts(canaries=())) == [
        "player 977 career/all as of 2100-01-01T00:00:00.000+00:00: not asked"
    ]
