"""stats.nba.com playbyplayv3 importer: every mapping rule on small hand-written fixtures (tests/fixtures/feeds/v3)."""

from __future__ import annotations

import copy
import datetime as dt
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from temporaldb.feeds import stats_v3
from temporaldb.feeds.model import (
    FOUL_KINDS,
    NON_PERSONAL_FOUL_KINDS,
    FeedError,
    FeedEvent,
    FeedPlayer,
    FeedTeam,
    UnsupportedGameError,
)

FIXTURES = Path(__file__).parent / "fixtures" / "feeds" / "v3"
HOME, AWAY = 1610612701, 1610612702
CLOCK = re.compile(r"^[0-9]{1,2}:[0-5][0-9](\.[0-9]{1,3})?$")  # README "Canonical input": MM:SS or MM:SS.f
ROSTER = {
    p.player_id: p
    for p in (
        FeedPlayer(101, "Amos Able", HOME), FeedPlayer(102, "Bo Baker", HOME), FeedPlayer(103, "Cal Jones Jr.", HOME),
        FeedPlayer(104, "Dino Vučić", HOME), FeedPlayer(201, "Finn Cole", AWAY), FeedPlayer(202, "Gus Dunn", AWAY),
        FeedPlayer(203, "Hal Evans", AWAY),
    )
}  # fmt: skip

# (period, clock, event_type, team, player, secondary, points, is_three, foul_kind, ft_value, source_event_id)
EXPECTED = [
    (1, "12:00", "period_start", None, None, None, 0, False, None, None, "2"),
    (1, "12:00", "jump_ball", HOME, 101, None, 0, False, None, None, "4"),  # Able vs. Cole, tipped to Able's side
    (1, "11:41", "fg_made", HOME, 101, 102, 3, True, None, None, "7"),  # (Baker 1 AST)
    (1, "11:20", "fg_missed", AWAY, 201, 104, 0, False, None, None, "8"),  # + blank row "Vucic BLOCK"
    (1, "11:18", "rebound_def", HOME, None, None, 0, False, None, None, "10"),  # team row: personId = team id
    (1, "11:02", "fg_made", HOME, 103, 104, 2, False, None, None, "11"),  # (Vucic 1 AST) -> Vučić
    (1, "10:40", "turnover", HOME, 102, 202, 0, False, None, None, "13"),  # + blank row "Dunn STEAL"
    (1, "10:35", "fg_made", AWAY, 202, None, 2, False, None, None, "14"),
    (1, "10:20", "foul", AWAY, 201, None, 0, False, "shooting", None, "16"),
    (1, "10:20", "ft_made", HOME, 101, None, 1, False, None, 1, "18"),
    (1, "10:20", "substitution", AWAY, 203, 201, 0, False, None, None, "17"),  # SUB: Evans FOR Cole; feed order
    (1, "10:20", "ft_missed", HOME, 101, None, 0, False, None, 1, "19"),
    (1, "10:18", "rebound_off", HOME, 101, None, 0, False, None, None, "20"),  # after his own team's missed FT
    (1, "10:10", "fg_missed", HOME, 101, None, 0, True, None, None, "21"),
    (1, "10:08", "rebound_def", AWAY, 203, None, 0, False, None, None, "22"),
    (1, "10:08", "timeout", AWAY, None, None, 0, False, None, None, "24"),
    (1, "10:08", "foul", HOME, None, None, 0, False, "technical", None, "25"),  # team technical
    (1, "10:08", "ft_made", AWAY, 202, None, 1, False, None, 1, "26"),  # Free Throw Technical
    (1, "09:50", "foul", HOME, 102, None, 0, False, "defensive_3_seconds", None, "27"),
    (1, "09:50", "foul", AWAY, 203, None, 0, False, "technical", None, "28"),
    (1, "09:50", "ft_missed", HOME, 101, None, 0, False, None, 1, "29"),
    (1, "09:40", "violation", AWAY, 202, None, 0, False, None, None, "30"),
    (1, "09:40", "violation", HOME, None, None, 0, False, None, None, "31"),  # delay of game, team only
    (1, "09:20", "turnover", AWAY, None, None, 0, False, None, None, "32"),  # shot clock, team turnover
    (1, "00:46.2", "fg_made", HOME, 104, 103, 2, False, None, None, "37"),  # (Jones Jr. 1 AST)
    (1, "00:20", "fg_missed", AWAY, 202, None, 0, True, None, None, "38"),
    (1, "00:19", "rebound_off", AWAY, None, None, 0, False, None, None, "39"),  # team offensive rebound
    (1, "00:00", "period_end", None, None, None, 0, False, None, None, "40"),
]


def load(name: str = "game.json") -> dict[str, Any]:
    document: dict[str, Any] = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    return document


def actions(document: dict[str, Any]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = document["game"]["actions"]
    return rows


def action(document: dict[str, Any], number: int, *, blank: bool = False) -> dict[str, Any]:
    """The row with this actionNumber (the blank steal/block row when `blank`)."""
    return next(a for a in actions(document) if a["actionNumber"] == number and (a["actionType"] == "") == blank)


def add_row(document: dict[str, Any], like: int, **changes: Any) -> dict[str, Any]:
    """Appends a copy of row `like` with `changes`, before the period end."""
    row = copy.deepcopy(action(document, like)) | changes
    actions(document).insert(len(actions(document)) - 1, row)
    return row


def as_tuple(e: FeedEvent) -> tuple[object, ...]:
    return (
        e.period, e.clock, e.event_type, e.team_id, e.player_id, e.secondary_player_id, e.points, e.is_three,
        e.foul_kind, e.ft_value, e.source_event_id,
    )  # fmt: skip


# --- recognising and reading a document --------------------------------------------------------------------------


def test_looks_like_accepts_v3_and_refuses_the_other_formats() -> None:
    document = load()
    live = copy.deepcopy(document)
    actions(live)[0]["timeActual"] = "2024-10-22T23:40:00.0Z"
    assert stats_v3.looks_like(document)
    assert not stats_v3.looks_like(live)
    assert not stats_v3.looks_like({"resource": "playbyplay", "resultSets": []})
    assert not stats_v3.looks_like({"game": {"gameId": "0022400001", "actions": []}})
    assert not stats_v3.looks_like([document])


def test_game_header_comes_from_the_game_id_and_the_rows() -> None:
    game = stats_v3.parse(load(), "game.json")
    assert (game.game_id, game.league, game.season, game.season_type) == (22400001, "nba", "2024-25", "regular")
    assert (game.home, game.away) == (FeedTeam(HOME, "HOM", "HOM"), FeedTeam(AWAY, "AWY", "AWY"))
    assert (game.source, game.feed_format, game.wall_clock_precision) == ("game.json", "v3", "none")
    assert game.tipoff_at is None
    assert all(e.wall_clock is None for e in game.events)


def test_every_row_maps_to_its_canonical_event_in_feed_order() -> None:
    game = stats_v3.parse(load(), "game.json")
    assert [as_tuple(e) for e in game.events] == EXPECTED
    assert all(CLOCK.match(e.clock) for e in game.events)


def test_every_row_is_an_event_a_counted_skip_or_a_counted_merge() -> None:
    document = load()
    game = stats_v3.parse(document, "game.json")
    assert game.skipped == {
        "v3:Turnover No Turnover": 1, "v3:Timeout without team": 1, "v3:Instant Replay": 1, "v3:Ejection": 1,
    }  # fmt: skip
    assert game.merged == {"v3:block": 1, "v3:steal": 1}
    assert len(actions(document)) == len(game.events) + game.skipped.total() + game.merged.total()


def test_players_are_the_people_of_the_events_named_as_the_feed_names_them() -> None:
    game = stats_v3.parse(load(), "game.json")
    assert set(game.players) == {
        FeedPlayer(101, "A. Able", HOME), FeedPlayer(201, "F. Cole", AWAY), FeedPlayer(102, "B. Baker", HOME),
        FeedPlayer(104, "D. Vučić", HOME), FeedPlayer(103, "C. Jones Jr.", HOME), FeedPlayer(202, "G. Dunn", AWAY),
        FeedPlayer(203, "H. Evans", AWAY),
    }  # fmt: skip
    assert len(game.players) == len(set(game.players))


def test_one_shot_free_throws_are_worth_their_value() -> None:
    game = stats_v3.parse(load("gleague_one_shot.json"), "gleague_one_shot.json")
    assert (game.league, game.season, game.season_type) == ("gleague", "2019-20", "regular")
    throws = [(e.event_type, e.player_id, e.points, e.ft_value) for e in game.events if e.ft_value is not None]
    assert throws == [("ft_made", 101, 2, 2), ("ft_missed", 202, 0, 3), ("ft_made", 101, 1, 1)]


# --- names ---------------------------------------------------------------------------------------------------------


def test_the_roster_names_the_players_and_resolves_someone_seen_only_coming_in() -> None:
    document = load()
    add_row(document, 22, actionNumber=41, actionType="Substitution", subType="", description="SUB: Quinn FOR Evans")
    with pytest.raises(FeedError, match=r"game.json: actionNumber 41 \(Substitution\): .*'Quinn' matches no player"):
        stats_v3.parse(document, "game.json")
    roster = ROSTER | {204: FeedPlayer(204, "Sam Quinn", AWAY), 205: FeedPlayer(205, "Did Notplay", AWAY)}
    game = stats_v3.parse(document, "game.json", roster)
    sub = game.events[-2]
    assert (sub.event_type, sub.player_id, sub.secondary_player_id) == ("substitution", 204, 203)
    assert {p.player_id: p.full_name for p in game.players} == {p: roster[p].full_name for p in (*ROSTER, 204)}


def test_initials_tell_two_players_with_one_family_name_apart() -> None:
    document = load()
    add_row(document, 14, actionNumber=41, description="Dunn 2' Layup (4 PTS) (Jal. Williams 1 AST)")
    roster = ROSTER | {301: FeedPlayer(301, "Jalen Williams", AWAY), 302: FeedPlayer(302, "Jaylin Williams", AWAY)}
    assert stats_v3.parse(document, "game.json", roster).events[-2].secondary_player_id == 301
    action(document, 41)["description"] = "Dunn 2' Layup (4 PTS) (Williams 1 AST)"
    with pytest.raises(FeedError, match=r"actionNumber 41 .*'Williams' matches several players \(301, 302\)"):
        stats_v3.parse(document, "game.json", roster)


def test_with_a_roster_an_unknown_person_is_staff_on_a_technical_and_an_error_elsewhere() -> None:
    document = load()
    coach = {"personId": 9001, "playerName": "Coach", "playerNameI": "X. Coach"}
    add_row(document, 28, actionNumber=41, description="Coach T.FOUL (R.Ref)", **coach)
    foul = stats_v3.parse(document, "game.json", ROSTER).events[-2]
    assert (foul.event_type, foul.team_id, foul.player_id, foul.foul_kind) == ("foul", AWAY, None, "technical")
    add_row(document, 14, actionNumber=42, **coach)
    with pytest.raises(FeedError, match=r"actionNumber 42 \(Made Shot .*personId 9001 \(Coach\) is not in the roster"):
        stats_v3.parse(document, "game.json", ROSTER)


def test_names_match_without_accents_and_punctuation() -> None:
    assert stats_v3.normalize_name(" N. Vučević ") == "n vucevic"
    assert stats_v3.normalize_name("Shai Gilgeous-Alexander") == "shai gilgeousalexander"
    assert stats_v3.normalize_name("De'Aaron Fox") == "deaaron fox"


# --- fouls ---------------------------------------------------------------------------------------------------------


def test_every_foul_subtype_maps_to_a_canonical_kind_and_technicals_are_not_personal() -> None:
    assert set(stats_v3.FOUL_KIND_BY_SUBTYPE.values()) <= FOUL_KINDS
    technicals = {s for s in stats_v3.FOUL_KIND_BY_SUBTYPE if "Technical" in s or s in ("Flopping", "Bench")}
    assert {stats_v3.FOUL_KIND_BY_SUBTYPE[s] for s in technicals} <= NON_PERSONAL_FOUL_KINDS
    assert stats_v3.FOUL_KIND_BY_SUBTYPE["Defense 3 Second"] in NON_PERSONAL_FOUL_KINDS


@pytest.mark.parametrize(
    ("sub_type", "description", "like", "fouls"),
    [  # `like`: a row of the player the double-foul row names in personId (7: Able, 30: Dunn)
        ("Double Personal", "Foul : Double Personal - Able (1 PF), Dunn (1 PF) (R.Ref)", 7,
         [(HOME, 101, "double_personal"), (AWAY, 202, "double_personal")]),
        ("Double Technical", "Double Technical - Able, Dunn (R.Ref)", 30,
         [(AWAY, 202, "double_technical"), (HOME, 101, "double_technical")]),
    ],
)  # fmt: skip
def test_a_double_foul_row_charges_both_players(sub_type: str, description: str, like: int, fouls: list[Any]) -> None:
    document = load()
    add_row(document, like, actionNumber=41, actionType="Foul", subType=sub_type, description=description)
    game = stats_v3.parse(document, "game.json")
    assert [(e.team_id, e.player_id, e.foul_kind) for e in game.events if e.source_event_id == "41"] == fouls


def test_a_double_foul_partner_with_a_row_of_their_own_is_not_charged_twice() -> None:
    document = load()
    text = "Foul : Double Personal - Able (1 PF), Dunn (1 PF) (R.Ref)"
    same = {"actionType": "Foul", "subType": "Double Personal", "description": text, "clock": "PT09M40.00S"}
    add_row(document, 7, actionNumber=41, **same)
    add_row(document, 30, actionNumber=42, **same)
    game = stats_v3.parse(document, "game.json")
    assert [(e.player_id, e.source_event_id) for e in game.events if e.event_type == "foul"][-2:] == [
        (101, "41"), (202, "42"),
    ]  # fmt: skip


# --- game ids ------------------------------------------------------------------------------------------------------


def test_other_games_are_refused_with_the_shared_message() -> None:
    # Every league and season-type digit, in every format: tests/test_feed_game_ids.py.
    document = load()
    document["game"]["gameId"] = "0032200001"
    with pytest.raises(UnsupportedGameError) as error:
        stats_v3.parse(document, "x.json")
    assert str(error.value) == (
        "x.json: game 0032200001 is an NBA All-Star game; "
        "only NBA and G League regular-season and playoff games are read"
    )


def test_a_game_id_given_as_a_number_is_read_with_its_leading_zeros() -> None:
    document = load()
    document["game"]["gameId"] = 42200401
    game = stats_v3.parse(document, "x.json")
    assert (game.game_id, game.league, game.season, game.season_type) == (42200401, "nba", "2022-23", "playoffs")


# --- tip-off and game clocks ---------------------------------------------------------------------------------------


def test_tipoff_is_the_clock_the_start_of_period_1_states() -> None:
    assert stats_v3.parse(load(), "game.json").tipoff_eastern == dt.time(19, 11)  # "Start of 1st Period (7:11 PM EST)"
    document = load()
    action(document, 2)["description"] = "Start of 1st Period (12:02 AM EDT)"
    assert stats_v3.parse(document, "game.json").tipoff_eastern == dt.time(0, 2)


@pytest.mark.parametrize(
    "description",
    ["Start of 1st Period", "Start of 1st Period (25:99 PM EST)", "Start of 1st Period (7:11 PM CST)",
     "Start of 1st Period (7:11 PM EST) extra", "Start of 1st Period (7:11 EST)"],
)  # fmt: skip
def test_no_or_a_malformed_start_clock_gives_no_tipoff(description: str) -> None:
    document = load()
    action(document, 2)["description"] = description
    game, unchanged = stats_v3.parse(document, "game.json"), stats_v3.parse(load(), "game.json")
    assert game.tipoff_eastern is None  # not the period end's "(7:38 PM EST)" either
    assert (game.events, game.skipped) == (unchanged.events, unchanged.skipped)


def test_a_start_row_without_a_clock_gives_no_tipoff() -> None:
    assert stats_v3.parse(load("gleague_one_shot.json"), "g.json").tipoff_eastern is None  # "Start of 1st Period"


@pytest.mark.parametrize(
    ("clock", "expected"),
    [("PT12M00.00S", "12:00"), ("PT05M00.00S", "05:00"), ("PT00M46.20S", "00:46.2"), ("PT0M7.5S", "00:07.5"),
     ("PT00M00.05S", "00:00.05"), ("PT01M02S", "01:02")],
)  # fmt: skip
def test_clocks_become_minutes_and_seconds(clock: str, expected: str) -> None:
    assert stats_v3.canonical_clock(clock, "x") == expected
    assert CLOCK.match(expected)


@pytest.mark.parametrize("clock", ["12:00", "PT12M60.00S", "", "PT-1M00.00S"])
def test_a_bad_clock_is_an_error(clock: str) -> None:
    with pytest.raises(FeedError, match=re.escape(f"clock {clock!r} is not like PT12M00.00S")):
        stats_v3.canonical_clock(clock, "x")


# --- everything else is an error naming the source and the row --------------------------------------------------

Mutation = Callable[[dict[str, Any]], object]


def _set(number: int, blank: bool = False, **changes: Any) -> Mutation:
    return lambda document: action(document, number, blank=blank).update(changes)


def _only_rebound_first(document: dict[str, Any]) -> None:
    rows = actions(document)
    rows[:] = [rows[0], action(document, 14), action(document, 20)]


def _no_locations(document: dict[str, Any]) -> None:
    for row in actions(document):
        row["location"] = ""


ERRORS: dict[str, tuple[Mutation, str]] = {
    "unknown action type": (_set(30, actionType="Dance"), r"actionNumber 30 \(Dance / Kicked Ball\): unknown action"),
    "unknown foul subtype": (_set(16, subType="Elbow"), r"actionNumber 16 .*unknown foul subType 'Elbow'"),
    "unknown free throw": (_set(18, subType="Free Throw 4 of 4"), r"actionNumber 18 .*unknown free-throw subType"),
    "unknown period subtype": (_set(2, subType="pause"), r"actionNumber 2 .*unknown period subType 'pause'"),
    "assist nobody": (
        _set(7, description="Able 3PT Jump Shot (3 PTS) (Nobody 1 AST)"),
        r"actionNumber 7 \(Made Shot / Jump Shot\): assist: the name 'Nobody' matches no player of team 1610612701",
    ),
    "jumper nobody": (
        _set(4, description="Jump Ball Able vs. Zed: Tip to Dunn"),  # the away jumper won: he must be named
        r"actionNumber 4 .*jumper: the name 'Zed' matches no player of team 1610612702",
    ),
    "steal without turnover": (_set(13, actionNumber=12), r"actionNumber 13 \(blank actionType\): .*has no turnover"),
    "block without miss": (_set(8, actionNumber=9), r"actionNumber 8 \(blank actionType\): .*has no missed shot"),
    "blank row of another kind": (_set(13, blank=True, description="Dunn DEFLECTION"), r"must be a STEAL or a BLOCK"),
    "steal from a teammate": (
        _set(13, blank=True, personId=101, teamId=HOME, playerName="Able", location="h"),
        r"actionNumber 13 .*Able is credited with a STEAL against their own team",
    ),
    "rebound before any miss": (_only_rebound_first, r"actionNumber 20 .*a rebound with no missed shot"),
    "substitution text": (_set(17, description="SUB: Evans"), r"actionNumber 17 .*must read 'SUB: In FOR Out'"),
    "shot without player": (_set(14, personId=0), r"actionNumber 14 \(Made Shot / .*\): no player"),
    "foul without team": (_set(16, teamId=0, personId=0, location=""), r"actionNumber 16 .*: no team"),
    "bad action number": (_set(7, actionNumber="7a"), r"game.actions\[2\]: actionNumber must be a whole number"),
    "bad period": (_set(7, period=0), r"actionNumber 7: period must be 1 or more"),
    "no home team": (_no_locations, r"expected one home team \(location 'h'\), found \[\]"),
    "bad game id": (lambda d: d["game"].update(gameId="22400001"), r"game id '22400001' is not a ten-digit NBA game"),
    "not v3": (lambda d: d.pop("game"), r"not a playbyplayv3 document"),
}


@pytest.mark.parametrize("case", ERRORS)
def test_anything_unmapped_is_a_feed_error_naming_source_and_row(case: str) -> None:
    mutate, message = ERRORS[case]
    document = load()
    mutate(document)
    with pytest.raises(FeedError, match=message) as raised:
        stats_v3.parse(document, "game.json")
    assert str(raised.value).startswith("game.json: ")
    assert not isinstance(raised.value, UnsupportedGameError)


def test_the_jump_ball_names_the_jumper_whose_team_won_the_tip() -> None:
    document = load()
    document["game"]["actions"][1]["description"] = "Jump Ball Able vs. Cole: Tip to Dunn"
    [jump] = [e for e in stats_v3.parse(document, "game.json").events if e.event_type == "jump_ball"]
    assert (jump.team_id, jump.player_id, jump.secondary_player_id) == (AWAY, 201, None)
