"""The drill scripts end to end in `--local` mode, as the acceptance runs them: real servers, real reports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runbooks import restore_drill
from temporaldb.drills.runbook import EXIT_OK


def test_local_restore_drill_verifies_and_reports(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "r.json"
    assert restore_drill.main(["--local", "--apply", "--report", str(path)]) == EXIT_OK
    out = capsys.readouterr().out
    report = json.loads(path.read_text())
    assert report["mode"] == "local"
    assert report["verified"] is True
    assert 0 < report["rto_seconds"] < 600
    assert 0 <= report["rpo_seconds"] < 30
    assert report["failed_stage"] is None
    names = [stage["name"] for stage in report["stages"]]
    assert names[0] == "prepare_data"
    assert names[-1] == "teardown"
    assert all(stage["ok"] and stage["seconds"] >= 0 for stage in report["stages"])
    evidence = report["details"]["evidence"]
    assert evidence["expected"] == evidence["restored"]
    assert evidence["restored"] != evidence["source_at_end"]  # the second season is only in the source
    assert evidence["batch_b_games_restored"] == 0
    assert report["torn_down"]
    assert not Path(report["details"]["drill_dir"]).exists()
    assert f"verified; rto_seconds={report['rto_seconds']}" in out


def test_local_dry_run_changes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert restore_drill.main(["--local", "--work-dir", str(tmp_path)]) == EXIT_OK
    assert list(tmp_path.iterdir()) == []
    assert "dry run, nothing changed" in capsys.readouterr().out
