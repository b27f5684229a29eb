"""The local major-version upgrade drill, for real: pg_upgrade from PostgreSQL 15 (apt) and 16 (pgserver) to 18.

Every source major whose binaries this machine has is in the matrix; 16 always is (the pgserver wheel is a dev
dependency) and 15 is whenever /usr/lib/postgresql/15/bin exists (`make setup` installs it).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from temporaldb.drills import local_upgrade
from temporaldb.drills.local_upgrade import (
    STAGES,
    DrillCluster,
    SourceBinariesError,
    UpgradeDrillFailed,
    available_source_majors,
    install_hint,
    run,
    source_binaries,
    target_binaries,
)
from temporaldb.drills.local_upgrade_binaries import DEBIAN_BIN_DIR, extensions_shipped
from temporaldb.drills.local_upgrade_clusters import TARGET_PORT
from temporaldb.drills.local_upgrade_facts import DATABASE
from temporaldb.pgcluster import (
    LocalServerError,
    read_postmaster,
    server_account,
    socket_dsn,
    start_cluster,
    stop_cluster,
)
from tests.nbadata import reference_line, write_league
from tests.test_load import HAND_MADE, KOBE, TIP, line

MAJORS = available_source_majors()
ALWAYS_AVAILABLE = 16
KOBE_FINAL_LINE = line(
    games_played=2, points=6, fgm=2, fga=2, fg3m=1, fg3a=1, ftm=1, fta=2, dreb=1, rebounds=1, steals=1, blocks=1
)


@pytest.fixture(params=MAJORS, ids=[f"pg{major}" for major in MAJORS])
def source_major(request: pytest.FixtureRequest) -> int:
    major: int = request.param
    return major


def hand_made(folder: Path) -> None:
    write_league(folder, HAND_MADE)


def postgres_processes_in(folder: Path) -> list[int]:
    """Live processes whose command line names `folder` (a postmaster started with -D under it)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if os.fsencode(folder) in command:
                found.append(int(entry.name))
    return found


def test_the_matrix_has_every_source_major_installed_here() -> None:
    assert ALWAYS_AVAILABLE in MAJORS
    assert (15 in MAJORS) == Path(DEBIAN_BIN_DIR.format(major=15), "postgres").is_file()


def test_the_drill_upgrades_to_18_and_every_answer_survives(source_major: int, tmp_path: Path) -> None:
    messages: list[str] = []
    report = run(tmp_path, source_major, messages.append, write_data=hand_made, keep=True)
    drill = Path(report.drill_dir)
    try:
        assert (report.verified, report.source_unchanged, report.safe_to_schedule) == (True, True, True)
        assert (report.must_change_first, report.differences, report.failed_stage) == ((), (), None)
        assert [stage.name for stage in report.stages] == list(STAGES)
        assert all(stage.ok for stage in report.stages)
        assert all(check.passed and not check.findings for check in report.prechecks)

        before, after = report.facts_before, report.facts_after
        assert before is not None
        assert after is not None
        assert before.server_version_num // 10000 == source_major
        assert after.server_version_num // 10000 == 18
        assert before.differences(after) == []
        assert before.row_counts["nba.play_by_play"] == len(HAND_MADE.events)
        assert before.schema_version >= 3
        # The canaries are real questions with real answers, and both servers give the reference's.
        assert len(before.canaries) >= 7
        for canary in after.canaries:
            kind = "p" if canary.function == "player_stats_as_of" else "t"
            moment = dt.datetime.fromisoformat(canary.at)
            expected = reference_line(HAND_MADE, kind, canary.subject_id, moment, canary.scope, canary.season_type)
            assert canary.answer == expected, canary.question
        assert KOBE_FINAL_LINE in [canary.answer for canary in after.canaries if canary.subject_id == KOBE]

        seconds = report.seconds_by_stage
        assert report.downtime_seconds == pytest.approx(
            seconds["source_stop"] + seconds["upgrade"] + seconds["target_start"]
        )
        assert report.downtime_with_analyze_seconds == pytest.approx(report.downtime_seconds + seconds["analyze"])
        assert report.total_seconds >= report.downtime_with_analyze_seconds > 0
        for stage in report.stages:
            assert dt.datetime.fromisoformat(stage.started_at) <= dt.datetime.fromisoformat(stage.ended_at)
        assert any("[1/14] source_init" in message for message in messages)
        assert json.loads(json.dumps(report.as_dict()))["facts_after"]["server_version_num"] >= 180000

        # Kept: both clusters stopped, the source still a cluster of its major, the target one of 18 that
        # starts on its own and answers as the analyst role.
        assert not postgres_processes_in(drill)
        assert (drill / "source" / "PG_VERSION").read_text().strip() == str(source_major)
        assert (drill / "target" / "PG_VERSION").read_text().strip() == "18"
        _ask_the_kept_target(drill, Path(report.socket_dir))
    finally:
        shutil.rmtree(drill, ignore_errors=True)
        shutil.rmtree(report.socket_dir, ignore_errors=True)


def _ask_the_kept_target(drill: Path, socket_dir: Path) -> None:
    account = server_account()
    binaries = target_binaries().runnable_by(account)
    start_cluster(binaries, account, drill / "target", drill / "target.log", 30)
    try:
        with psycopg.connect(socket_dsn(socket_dir, TARGET_PORT, DATABASE, "analyst")) as connection:
            version = connection.execute("select current_setting('server_version_num')::int").fetchone()
            answer = connection.execute(
                "select * from nba.player_stats_as_of(%s, %s)", (KOBE, TIP + dt.timedelta(hours=5))
            ).fetchone()
        assert version is not None
        assert version[0] // 10000 == 18
        assert answer == KOBE_FINAL_LINE
    finally:
        stop_cluster(binaries, account, drill / "target", "immediate", 30)


def _plant_problems(missing_extension: str | None) -> tuple[list[Path], Callable[[DrillCluster], None]]:
    """A prepare_source hook planting one problem per pre-check, and the list it records the drill folder in."""
    seen: list[Path] = []

    def plant(cluster: DrillCluster) -> None:
        seen.append(cluster.data_dir.parent)
        with psycopg.connect(cluster.dsn(DATABASE), autocommit=True) as connection:
            # regclass, regrole and regtype survive pg_upgrade: only `handler` and the wrapped array are problems.
            connection.execute(
                "create table nba.planted (id int primary key, handler regproc, owner regrole, target regclass,"
                " kind regtype)"
            )
            connection.execute("insert into nba.planted values (1, 'now', 'etl', 'nba.games', 'int4')")
            connection.execute("create domain public.handler_ref as regoperator")
            connection.execute("create table public.wrapped (refs public.handler_ref[])")
            connection.execute("create view public.sessions as select pid, state from pg_stat_activity")
            connection.execute("select pg_create_logical_replication_slot('drill_slot', 'pgoutput')")
            if missing_extension is not None:
                connection.execute(f'create extension "{missing_extension}"')
        # Last: a logical slot waits for running transactions, a prepared one included.
        preparing = psycopg.connect(cluster.dsn(DATABASE))
        try:  # no `with`: leaving it would commit, which a prepared transaction refuses
            preparing.tpc_begin("drill-gid")
            preparing.execute("insert into nba.planted values (2, 'now', 'etl', 'nba.games', 'int4')")
            preparing.tpc_prepare()
        finally:
            preparing.close()

    return seen, plant


def test_prechecks_refuse_planted_problems_and_tear_down(source_major: int, tmp_path: Path) -> None:
    # An extension the source ships and PostgreSQL 18 here does not (15 has adminpack, pgcrypto, ...; 16 none).
    missing = sorted(extensions_shipped(source_binaries(source_major)) - extensions_shipped(target_binaries()))
    missing_extension = missing[0] if missing else None
    seen, plant = _plant_problems(missing_extension)
    with pytest.raises(UpgradeDrillFailed, match=r"failed at stage prechecks: 9 checks, \d+ blockers") as failure:
        run(
            tmp_path,
            source_major,
            write_data=hand_made,
            source_settings={"max_prepared_transactions": "4", "wal_level": "logical"},
            prepare_source=plant,
        )
    error = failure.value
    report = error.report
    assert error.stage == report.failed_stage == "prechecks"
    findings = {check.name: check.findings for check in report.prechecks}
    assert [(f.subject, f.database) for f in findings["reg_types"]] == [
        ("column nba.planted.handler of type regproc", DATABASE),
        ("column public.wrapped.refs of type handler_ref[]", DATABASE),
    ]
    assert [f.subject.split(" (")[0] for f in findings["prepared_transactions"]] == ["prepared transaction 'drill-gid'"]
    assert [f.subject for f in findings["logical_replication_slots"]] == [
        "logical replication slot 'drill_slot' (plugin pgoutput)"
    ]
    assert [f.subject for f in findings["views_on_pg_stat_activity"]] == [
        "view public.sessions depends on pg_stat_activity"
    ]
    blocking_extensions = [f.subject.split()[1] for f in findings["extensions"] if f.severity == "blocker"]
    assert blocking_extensions == ([missing_extension] if missing_extension else [])
    for name in ("reserved_role_names", "databases", "system_composite_columns"):
        assert findings[name] == ()
    assert "ROLLBACK PREPARED 'drill-gid'" in " ".join(report.must_change_first)
    assert "pg_drop_replication_slot('drill_slot')" in " ".join(report.must_change_first)
    assert not report.safe_to_schedule
    assert not report.verified
    assert [stage.name for stage in report.stages] == [
        "source_init",
        "source_load",
        "facts_before",
        "prechecks",
        "teardown",
    ]
    assert [stage.ok for stage in report.stages] == [True, True, True, False, True]
    # The failure tore everything down.
    assert seen
    assert not seen[0].exists()
    assert not postgres_processes_in(seen[0])


def test_pg_upgrade_check_refuses_what_the_prechecks_flag(tmp_path: Path) -> None:
    def plant(cluster: DrillCluster) -> None:
        with psycopg.connect(cluster.dsn(DATABASE), autocommit=True) as connection:
            connection.execute("create table nba.planted (id int primary key, handler regproc)")

    with pytest.raises(UpgradeDrillFailed, match="failed at stage upgrade_check") as failure:
        run(tmp_path, ALWAYS_AVAILABLE, write_data=hand_made, prepare_source=plant, stop_on_blockers=False)
    report = failure.value.report
    assert "reg* data types" in failure.value.reason
    assert "nba.planted.handler" in failure.value.reason  # pg_upgrade's own list of problem columns
    assert [stage.name for stage in report.stages][-3:] == ["target_init", "upgrade_check", "teardown"]
    assert report.stages[-2].ok is False
    assert report.must_change_first[-1].startswith("fix what failed at upgrade_check")
    assert any("nba.planted.handler" in remedy for remedy in report.must_change_first)
    assert not Path(report.drill_dir).exists()


def test_an_interrupt_still_tears_everything_down(tmp_path: Path) -> None:
    seen: list[Path] = []

    def interrupt(cluster: DrillCluster) -> None:
        seen.append(cluster.data_dir.parent)
        assert read_postmaster(cluster.data_dir) is not None
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(tmp_path, ALWAYS_AVAILABLE, write_data=hand_made, prepare_source=interrupt)
    assert seen
    assert not seen[0].exists()
    assert not postgres_processes_in(seen[0])


def test_a_cluster_that_cannot_be_stopped_keeps_its_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Deleting the data of a running server would hide it: teardown reports it and keeps the folder."""
    seen: list[DrillCluster] = []

    def interrupt_and_jam(cluster: DrillCluster) -> None:
        seen.append(cluster)

        def jammed(*_: object, **__: object) -> None:
            raise LocalServerError("pg_ctl stop timed out")

        monkeypatch.setattr(local_upgrade, "stop_cluster", jammed)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(tmp_path, ALWAYS_AVAILABLE, write_data=hand_made, prepare_source=interrupt_and_jam)
    (source,) = seen
    try:
        assert source.data_dir.exists()
        assert read_postmaster(source.data_dir) is not None
    finally:
        monkeypatch.undo()
        stop_cluster(source.binaries, server_account(), source.data_dir, "immediate", 30)
        shutil.rmtree(source.data_dir.parent, ignore_errors=True)


def test_missing_source_binaries_say_how_to_install_them(tmp_path: Path) -> None:
    with pytest.raises(SourceBinariesError, match=r"apt-get install -y postgresql-15"):
        source_binaries(15, tmp_path / "nowhere")
    wheel_16 = source_binaries(16)
    with pytest.raises(SourceBinariesError, match="no PostgreSQL 15 binaries"):
        source_binaries(15, wheel_16.bin_dir)  # binaries of another major are refused
    with pytest.raises(SourceBinariesError, match="not from 14"):
        source_binaries(14)
    assert "pgserver" in install_hint(16)
    with pytest.raises(SourceBinariesError, match="postgresql-15"):
        run(tmp_path / "work", 15, source_bin_dir=tmp_path / "nowhere")
    assert not (tmp_path / "work").exists()  # nothing was made before the binaries were found
