"""A game replaces itself: with replace_games, any sequence of loads of versions of a game equals loading the last.

Versions are what corrected feeds do to a game: events dropped, renumbered,
changed. Merge mode (the default) keeps a game's stored events that a later
load does not carry, which is right for one game split over several loads and
wrong for a corrected feed; replace mode is for the latter.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from temporaldb.cli import EXIT_OK, main
from temporaldb.load import LoadError, load_directory
from tests.nbadata import Event, Game, League, write_csv, write_league
from tests.test_asof_property import reset
from tests.test_load import FINAL, HAND_MADE, fingerprint

GAME_EVENTS = tuple(e for e in HAND_MADE.events if e.game_id == FINAL)
OTHER_EVENTS = tuple(e for e in HAND_MADE.events if e.game_id != FINAL)
EVENT_COLUMNS = [f.name for f in dataclasses.fields(Event)]
GAME_COLUMNS = [f.name for f in dataclasses.fields(Game)]
THE_GAME = tuple(g for g in HAND_MADE.games if g.game_id == FINAL)


@st.composite
def versions(draw: st.DrawFn) -> tuple[Event, ...]:
    """One version of game FINAL: a subset of its events, renumbered, some made misses instead of makes."""
    kept = [e for e in GAME_EVENTS if draw(st.booleans())]
    first = draw(st.integers(min_value=1, max_value=30))
    step = draw(st.integers(min_value=1, max_value=3))
    version = []
    for index, original in enumerate(kept):
        changed = dataclasses.replace(original, event_num=first + index * step)
        if changed.event_type == "fg_made" and draw(st.booleans()):
            changed = dataclasses.replace(changed, event_type="fg_missed", points=0, secondary_player_id=None)
        version.append(changed)
    return tuple(version)


def write_events(folder: Path, events: tuple[Event, ...]) -> Path:
    """A version of game FINAL as an importer writes it: the game's row, and its events (perhaps none)."""
    folder.mkdir(parents=True)
    write_csv(folder / "games.csv", THE_GAME, GAME_COLUMNS)
    write_csv(folder / "events.csv", events, EVENT_COLUMNS)
    return folder


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(sequence=st.lists(versions(), min_size=1, max_size=4))
def test_any_sequence_of_versions_equals_loading_the_last(
    database: str, tmp_path_factory: pytest.TempPathFactory, sequence: list[tuple[Event, ...]]
) -> None:
    folder = tmp_path_factory.mktemp("versions")
    reset(database)
    load_directory(database, write_league(folder / "from-scratch", HAND_MADE, events=(*OTHER_EVENTS, *sequence[-1])))
    expected = fingerprint(database)

    reset(database)
    load_directory(database, write_league(folder / "original", HAND_MADE))
    for number, version in enumerate(sequence):
        load_directory(database, write_events(folder / f"version-{number}", version), replace_games=True)
    assert fingerprint(database) == expected


def test_merge_mode_keeps_events_a_later_load_does_not_carry(database: str, tmp_path: Path) -> None:
    """Why replace mode exists: the default merge leaves a dropped event behind."""
    reset(database)
    load_directory(database, write_league(tmp_path / "original", HAND_MADE))
    shorter = GAME_EVENTS[:-1]
    load_directory(database, write_events(tmp_path / "merge", shorter))
    assert _event_count(database) == len(HAND_MADE.events)
    summary = load_directory(database, write_events(tmp_path / "replace", shorter), replace_games=True)
    assert _event_count(database) == len(HAND_MADE.events) - 1
    assert summary.events_removed == 1


def test_a_game_in_games_csv_without_events_is_emptied(database: str, tmp_path: Path) -> None:
    reset(database)
    load_directory(database, write_league(tmp_path / "original", HAND_MADE))
    only_games = tmp_path / "games-only"
    write_league(only_games, League(HAND_MADE.teams, HAND_MADE.players, HAND_MADE.games, ()))
    (only_games / "events.csv").unlink()
    load_directory(database, only_games, replace_games=True)
    assert _event_count(database) == 0
    reset(database)
    load_directory(database, write_league(tmp_path / "from-scratch", HAND_MADE, events=()))
    expected_lines = fingerprint(database)[4]
    assert expected_lines[0] == 0  # no events, no stat lines


def test_a_bad_replacement_changes_nothing(database: str, tmp_path: Path) -> None:
    reset(database)
    load_directory(database, write_league(tmp_path / "original", HAND_MADE))
    before = fingerprint(database)
    bad = write_events(tmp_path / "bad", GAME_EVENTS[:3])
    with (bad / "events.csv").open("a", encoding="utf-8") as handle:
        handle.write(f"{FINAL},99,1,11:00,not-a-time,fg_made,,,,2,false\n")
    with pytest.raises(LoadError, match=r"events\.csv:5"):
        load_directory(database, bad, replace_games=True)
    assert fingerprint(database) == before


def test_cli_replace_games_reports_what_it_removed(
    database: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reset(database)
    load_directory(database, write_league(tmp_path / "original", HAND_MADE))
    folder = write_events(tmp_path / "shorter", GAME_EVENTS[:-2])
    assert main(["load", str(folder), "--dsn", database, "--replace-games"]) == EXIT_OK
    assert "2 removed" in capsys.readouterr().out


def _event_count(dsn: str) -> int:
    with psycopg.connect(dsn) as connection:
        row = connection.execute("select count(*) from nba.play_by_play").fetchone()
    assert row is not None
    return int(row[0])
