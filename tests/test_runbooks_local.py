"""The drill scripts end to end in `--local` mode, as the acceptance runs them: real servers, real reports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runbooks import restore_drill, upgrade_drill
from temporaldb.drills.runbook import EXIT_OK, EXIT_REFUSED


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
    expected, restored, source = (
        {key: value for key, value in evidence[name].items() if key != "taken_at"}
        for name in ("expected", "restored", "source_at_end")
    )
    assert expected == restored
    assert restored != source  # the second season is only in the source
    assert evidence["batch_b_games_restored"] == 0
    assert report["torn_down"]
    assert not Path(report["details"]["drill_dir"]).exists()
    assert f"verified; rto_seconds={report['rto_seconds']}" in out


def test_local_dry_run_changes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert restore_drill.main(["--local", "--work-dir", str(tmp_path)]) == EXIT_OK
    assert list(tmp_path.iterdir()) == []
    assert "dry run, nothing changed" in capsys.readouterr().out


@pytest.mark.parametrize("source_major", [15, 16])
def test_local_upgrade_drill_verifies_and_reports(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], source_major: int
) -> None:
    path = tmp_path / "u.json"
    argv = ["--local", "--apply", "--source-major", str(source_major), "--report", str(path)]
    assert upgrade_drill.main(argv) == EXIT_OK
    out = capsys.readouterr().out
    report = json.loads(path.read_text())
    assert report["verified"] is True
    assert report["details"]["safe_to_schedule"] is True
    assert report["details"]["source_major"] == source_major
    assert report["details"]["target_major"] == 18
    assert report["details"]["facts_before"]["canaries"] == report["details"]["facts_after"]["canaries"]
    assert 0 < report["rto_seconds"] < report["details"]["total_seconds"]
    assert [stage["name"] for stage in report["stages"]][-1] == "teardown"
    assert not Path(report["details"]["drill_dir"]).exists()
    assert "safe_to_schedule=True" in out


def test_a_missing_source_major_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from temporaldb.drills import local_upgrade

    def missing(major: int, _bin_dir: Path | None = None) -> None:
        raise local_upgrade.SourceBinariesError(f"no PostgreSQL {major} here: {local_upgrade.install_hint(major)}")

    monkeypatch.setattr(local_upgrade, "source_binaries", missing)
    path = tmp_path / "u.json"
    assert upgrade_drill.main(["--local", "--apply", "--report", str(path)]) == EXIT_REFUSED
    assert "apt-get install -y postgresql-15" in json.loads(path.read_text())["error"]
