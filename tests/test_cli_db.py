"""The database commands as a user runs them: migrate, asof, generate, and DSN resolution."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from temporaldb.cli import EXIT_BAD_INPUT, EXIT_DATABASE, EXIT_OK, EXIT_USAGE, main
from temporaldb.load import load_directory
from temporaldb.migrate import default_migrations_dir, read_migrations
from tests.nbadata import write_league
from tests.test_load import HAND_MADE, KOBE


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def hand_made(database: str, tmp_path: Path) -> str:
    load_directory(database, write_league(tmp_path / "hand", HAND_MADE))
    return database


def test_migrate_twice_reports_the_same_version(empty_database: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, first, err = run(capsys, "migrate", "--dsn", empty_database)
    assert code == EXIT_OK
    assert "applied V0001__create_core_schema.sql" in err
    code, second, err = run(capsys, "migrate", "--dsn", empty_database)
    assert code == EXIT_OK
    assert "nothing to apply" in err
    assert first == second
    assert first.startswith(f"schema version {len(read_migrations(default_migrations_dir()))} checksum ")


def test_asof_by_name_with_a_time_zone(hand_made: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys, "asof", "kobe bryant", "--at", "2016-06-19T19:02:34.560", "--tz", "America/Chicago",
        "--dsn", hand_made, "--json",
    )  # fmt: skip
    assert code == EXIT_OK
    answer = json.loads(out)
    assert answer["subject"] == {"kind": "player", "id": KOBE, "name": "Kobe Bryant"}
    assert answer["as_of"] == "2016-06-19T19:02:34.560-05:00"
    assert (answer["stats"]["games_played"], answer["stats"]["points"]) == (2, 6)


def test_asof_team_by_abbreviation_defaults_to_season(hand_made: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "asof", "uta", "--team", "--at", "2016-04-14T06:00:00Z", "--dsn", hand_made)
    assert code == EXIT_OK
    assert "Utah Jazz (team 1610612762), season regular totals" in out


@pytest.mark.parametrize(
    ("subject", "at", "message"),
    [
        ("Kobe Bryant", "2016-06-19T19:02:34", "has no UTC offset"),
        ("Kobe Bryant", "June 19", "is not an ISO 8601 time"),
        ("Nobody Atall", "2016-06-19T19:02:34Z", "no player named 'Nobody Atall'"),
        ("o", "2016-06-19T19:02:34Z", "matches several players"),
        ("424242", "2016-06-19T19:02:34Z", "no player with id 424242"),
    ],
)
def test_asof_bad_input_says_what_is_wrong(
    hand_made: str, capsys: pytest.CaptureFixture[str], subject: str, at: str, message: str
) -> None:
    code, out, err = run(capsys, "asof", subject, "--at", at, "--dsn", hand_made)
    assert code == EXIT_BAD_INPUT
    assert out == ""
    assert message in err


def test_unreachable_database_is_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, "migrate", "--dsn", f"host={tmp_path} dbname=nowhere connect_timeout=2")
    assert code == EXIT_DATABASE
    assert err.startswith("temporaldb migrate: cannot reach the database:")


def test_environment_dsn_is_used(
    hand_made: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEMPORALDB_DSN", hand_made)
    code, out, _ = run(capsys, "asof", str(KOBE), "--at", "2016-04-14T02:30:30Z", "--scope", "game")
    assert code == EXIT_OK
    assert "2 points in 1 games" in out


def test_generate_writes_the_canonical_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(
        capsys, "generate", str(tmp_path / "league"), "--seasons", "1", "--first-season", "1998", "--gzip"
    )
    assert code == EXIT_OK
    assert out.startswith("wrote 29 teams")
    names = sorted(path.name for path in (tmp_path / "league").iterdir())
    assert names == ["events.csv.gz", "games.csv.gz", "players.csv.gz", "teams.csv.gz"]
    assert "games" in err
    code, _, err = run(capsys, "generate", str(tmp_path / "none"), "--seasons", "0")
    assert code == EXIT_USAGE
    assert "--seasons must be 1 or more" in err
