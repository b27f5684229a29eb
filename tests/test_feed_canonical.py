"""Parsed feed games become canonical rows: feed order numbers the events, wall clocks are real or derived."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from temporaldb.feeds.canonical import checked_lines, derived_wall_clock, period_start_ms, to_canonical, write_folder
from temporaldb.feeds.model import FeedError, FeedEvent, FeedGame, FeedPlayer, FeedTeam

TIP = dt.datetime(2023, 1, 3, 0, 30, tzinfo=dt.UTC)
HOME, AWAY = FeedTeam(1610612739, "CLE", "Cleveland Cavaliers"), FeedTeam(1610612741, "CHI", "Chicago Bulls")
MITCHELL = FeedPlayer(1628378, "Donovan Mitchell", HOME.team_id)


def game(*events: FeedEvent, tipoff: dt.datetime | None = None) -> FeedGame:
    return FeedGame(22200552, "nba", "2022-23", "regular", HOME, AWAY, (MITCHELL,), events, "test.json", "v3", tipoff)


def test_the_documented_stretch() -> None:
    # 12:00 of game clock is 28m48s; 2m30s between periods, 15m at halftime; overtimes 5:00 -> 12m.
    assert period_start_ms(2) == 1_728_000 + 150_000
    assert period_start_ms(3) == 2 * 1_728_000 + 150_000 + 900_000
    assert period_start_ms(5) == 4 * 1_728_000 + 2 * 150_000 + 900_000 + 150_000  # regulation 2h15m12s, then a break
    moment = derived_wall_clock(TIP, 1, "11:00", 7)
    assert moment - TIP == dt.timedelta(seconds=60 * 2.4, milliseconds=7)


def test_events_are_numbered_in_feed_order_and_derived_times_increase() -> None:
    events = (
        FeedEvent(1, "12:00", "period_start", source_event_id="2"),
        FeedEvent(1, "11:40", "fg_made", HOME.team_id, MITCHELL.player_id, points=2, source_event_id="9"),
        FeedEvent(1, "11:40", "foul", AWAY.team_id, None, foul_kind="shooting", source_event_id="8"),
        FeedEvent(1, "11:40", "ft_made", HOME.team_id, MITCHELL.player_id, points=1, ft_value=1, source_event_id="10"),
    )
    rows = to_canonical(game(*events), TIP).events
    assert [row[1] for row in rows] == [1, 2, 3, 4]
    assert [row[-1] for row in rows] == ["2", "9", "8", "10"]
    moments = [dt.datetime.fromisoformat(str(row[4])) for row in rows]
    assert moments == sorted(moments)
    assert len(set(moments)) == len(moments), "event_num milliseconds break the ties"


def test_a_real_wall_clock_is_kept() -> None:
    real = dt.datetime(2023, 1, 3, 0, 41, 12, 300000, tzinfo=dt.UTC)
    rows = to_canonical(game(FeedEvent(1, "10:00", "violation", AWAY.team_id, wall_clock=real)), TIP).events
    assert rows[0][4] == "2023-01-03T00:41:12.300+00:00"


def test_teamless_events_are_dropped_and_counted() -> None:
    canonical = to_canonical(game(FeedEvent(2, "06:00", "timeout"), FeedEvent(2, "12:00", "period_start")), TIP)
    assert [row[5] for row in canonical.events] == ["period_start"]
    assert canonical.dropped == {"timeout without a team": 1}


def test_a_tipoff_is_required() -> None:
    with pytest.raises(FeedError, match=r"^test\.json: game 22200552 has no tip-off time"):
        to_canonical(game(FeedEvent(1, "12:00", "period_start")))


def test_write_folder_gives_the_loaders_files(tmp_path: Path) -> None:
    canonical = to_canonical(game(FeedEvent(1, "12:00", "period_start")), TIP)
    folder = write_folder([canonical], tmp_path / "out")
    assert (folder / "games.csv").read_text().splitlines()[1] == (
        "22200552,2022-23,regular,1610612739,1610612741,2023-01-03T00:30:00.000+00:00"
    )
    header, row = (folder / "events.csv").read_text().splitlines()
    assert header.endswith(",foul_kind,ft_value,source_event_id")
    assert row.startswith("22200552,1,1,12:00,2023-01-03T00:30:00.001+00:00,period_start,,,,0,false")
    assert (folder / "players.csv").read_text().splitlines()[1] == "1628378,Donovan Mitchell"


@pytest.mark.parametrize(
    ("offset", "inside"),
    [
        (dt.timedelta(0), True),
        (dt.timedelta(hours=6), True),
        (dt.timedelta(milliseconds=-1), False),
        (dt.timedelta(hours=6, milliseconds=1), False),
        (dt.timedelta(days=1), False),
    ],
)
def test_an_event_outside_its_game_is_refused_naming_the_feed_and_event(offset: dt.timedelta, inside: bool) -> None:
    event = FeedEvent(1, "10:00", "violation", AWAY.team_id, wall_clock=TIP + offset, source_event_id="41")
    if inside:
        assert len(to_canonical(game(event), TIP).events) == 1
        return
    with pytest.raises(FeedError, match=r"^test\.json: event 41: its time .* is outside game 0022200552, which runs "):
        to_canonical(game(event), TIP)


def test_checked_lines_are_the_loaders_copy_lines_and_refuse_what_the_loader_would() -> None:

    scored = FeedEvent(1, "11:40", "fg_made", HOME.team_id, MITCHELL.player_id, points=2, source_event_id="9")
    canonical = to_canonical(game(FeedEvent(1, "12:00", "period_start", source_event_id="2"), scored), TIP)
    lines = checked_lines(canonical, "test.json")
    assert [line.split(",")[:2] for line in lines] == [["22200552", "1"], ["22200552", "2"]]
    assert lines[1].endswith(",2,false,,,9")
    stranger = FeedEvent(1, "11:40", "fg_made", HOME.team_id, 999, points=2, source_event_id="12")
    canonical = to_canonical(game(stranger), TIP)
    with pytest.raises(
        FeedError, match=r"^test\.json: event 12 \(game 0022200552, event_num 1\): unknown player_id 999"
    ):
        checked_lines(canonical, "test.json")
