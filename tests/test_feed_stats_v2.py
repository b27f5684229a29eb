"""stats.nba.com playbyplayv2 documents become FeedGames: every row type mapped, skipped with a count, or refused."""

from __future__ import annotations

import copy
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from temporaldb.feeds import stats_v2
from temporaldb.feeds.model import (
    FOUL_KINDS,
    NON_PERSONAL_FOUL_KINDS,
    FeedError,
    FeedEvent,
    FeedGame,
    FeedPlayer,
    FeedTeam,
    UnsupportedGameError,
    twelve_hour_time,
)

FIXTURES = Path(__file__).parent / "fixtures" / "feeds" / "v2"
HOME, AWAY = 1610612790, 1610612791  # Harbor City Herons, Away Town Wolves
HAL, HANK, HUEY, HUGO = 9001, 9002, 9003, 9004
AL, ACE, ABE = 9101, 9102, 9103


def document(name: str = "nba_regular.json") -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def rows(doc: dict[str, Any]) -> list[list[Any]]:
    return doc["resultSets"][0]["rowSet"]  # type: ignore[no-any-return]


def column(doc: dict[str, Any], name: str) -> int:
    return int(doc["resultSets"][0]["headers"].index(name))


def row_of(doc: dict[str, Any], event_num: int) -> list[Any]:
    return next(row for row in rows(doc) if row[column(doc, "EVENTNUM")] == event_num)


def edit(doc: dict[str, Any], event_num: int, **cells: Any) -> dict[str, Any]:
    row = row_of(doc, event_num)
    for name, value in cells.items():
        row[column(doc, name)] = value
    return doc


def with_game_id(game_id: str, name: str = "nba_regular.json") -> dict[str, Any]:
    doc = document(name)
    for row in rows(doc):
        row[column(doc, "GAME_ID")] = game_id
    return doc


@pytest.fixture(scope="module")
def game() -> FeedGame:
    return stats_v2.parse(document(), "nba_regular.json")


def event(game: FeedGame, source_event_id: str, index: int = 0) -> FeedEvent:
    return [e for e in game.events if e.source_event_id == source_event_id][index]


def test_looks_like_tells_a_playbyplayv2_from_other_documents() -> None:
    assert stats_v2.looks_like(document())
    assert stats_v2.looks_like(document("gleague_one_shot_free_throws.json"))
    v1 = document()
    v1["resultSets"][0]["headers"] = v1["resultSets"][0]["headers"][:12]  # the older playbyplay: no PLAYERn columns
    others: tuple[object, ...] = ({}, [], "text", {"game": {"actions": []}}, {"resultSets": [{"name": "X"}]}, v1)
    assert not any(stats_v2.looks_like(other) for other in others)


def test_a_document_that_is_not_v2_is_a_one_line_error_naming_it() -> None:
    with pytest.raises(FeedError) as error:
        stats_v2.parse({"game": {"actions": []}}, "raw/live_1.json")
    assert str(error.value).startswith("raw/live_1.json: not a stats.nba.com playbyplayv2")
    assert "\n" not in str(error.value)
    short = document()
    short["resultSets"][0]["headers"].remove("PLAYER3_TEAM_ID")
    with pytest.raises(FeedError, match=r"b\.json: .*lacks PLAYER3_TEAM_ID"):
        stats_v2.parse(short, "b.json")


def test_the_game_its_teams_and_players(game: FeedGame) -> None:
    assert (game.game_id, game.league, game.season, game.season_type) == (21600901, "nba", "2016-17", "regular")
    assert game.home == FeedTeam(HOME, "HCH", "Harbor City Herons")
    assert game.away == FeedTeam(AWAY, "ATW", "Away Town Wolves")
    assert (game.feed_format, game.source) == ("v2", "nba_regular.json")
    assert {p.player_id: (p.full_name, p.team_id) for p in game.players} == {
        HAL: ("Hal Home", HOME), HANK: ("Hank Hoop", HOME), HUEY: ("Huey Hook", HOME), HUGO: ("Hugo Help", HOME),
        AL: ("Al Away", AWAY), ACE: ("Ace Arc", AWAY), ABE: ("Abe Anchor", AWAY),
    }  # fmt: skip


def test_no_wall_clock_per_event_from_minute_text(game: FeedGame) -> None:
    assert game.wall_clock_precision == "none"
    assert game.tipoff_at is None
    assert all(e.wall_clock is None for e in game.events)


def test_tipoff_is_the_wctimestring_of_the_first_period_start(game: FeedGame) -> None:
    assert game.tipoff_eastern == dt.time(19, 10)  # EVENTNUM 0, "7:10 PM"; the first field goal is at 7:11
    gleague = stats_v2.parse(document("gleague_one_shot_free_throws.json"), "g.json")
    assert gleague.tipoff_eastern == dt.time(19, 4)


def test_tipoff_falls_back_to_the_first_stamped_row_of_period_1() -> None:
    doc = edit(document(), 0, WCTIMESTRING=None)  # the start row: no clock
    edit(doc, 1, WCTIMESTRING="")  # the jump ball: an empty one
    assert stats_v2.parse(edit(doc, 2, WCTIMESTRING="7:11 PM"), "g.json").tipoff_eastern == dt.time(19, 11)
    doc = edit(document(), 0, PERIOD=2)  # no period-1 start row: EVENTNUM 1, not a later period's clock
    assert stats_v2.parse(edit(doc, 1, WCTIMESTRING="7:09 PM"), "g.json").tipoff_eastern == dt.time(19, 9)


@pytest.mark.parametrize("clock", ["25:99 PM", "13:05 PM", "7:60 PM", "7:10", "19:10", "noon", 710])
def test_a_malformed_tipoff_clock_is_none_and_not_an_error(clock: object) -> None:
    parsed = stats_v2.parse(edit(document(), 0, WCTIMESTRING=clock), "g.json")
    assert parsed.tipoff_eastern is None  # no guess from the rows after it
    assert parsed.skipped == stats_v2.parse(document(), "g.json").skipped


def test_a_document_without_wctimestring_has_no_tipoff() -> None:
    doc = document()
    position = column(doc, "WCTIMESTRING")
    doc["resultSets"][0]["headers"].pop(position)
    for row in rows(doc):
        row.pop(position)
    assert stats_v2.looks_like(doc)
    assert stats_v2.parse(doc, "g.json").tipoff_eastern is None


def test_twelve_hour_clocks() -> None:
    assert [twelve_hour_time(t) for t in ("12:05 AM", "12:05 PM", "1:00 am", "11:59 P.M.", " 8:11 PM ")] == [
        dt.time(0, 5), dt.time(12, 5), dt.time(1, 0), dt.time(23, 59), dt.time(20, 11),
    ]  # fmt: skip
    assert [twelve_hour_time(t) for t in ("0:30 AM", "8:1 PM", "8:11 XM", "8:11 PM EST", None)] == [None] * 5


def test_feed_order_decides_not_eventnum_and_clocks_are_mm_ss(game: FeedGame) -> None:
    ids = [e.source_event_id for e in game.events]
    assert [i for i in ids if i in {"29", "30", "31"}] == ["31", "29", "30"]  # the rowSet's order, not EVENTNUM's
    assert [(e.period, e.clock) for e in game.events[:3]] == [(1, "12:00"), (1, "12:00"), (1, "11:40")]
    assert event(game, "11").clock == "09:50"
    assert event(game, "31").clock == "00:30"


def test_period_start_and_end_have_no_team_or_player(game: FeedGame) -> None:
    bounds = [(e.event_type, e.period) for e in game.events if e.event_type.startswith("period_")]
    assert bounds == [("period_start", 1), ("period_end", 1), ("period_start", 2), ("period_end", 2)]
    assert all(e.team_id is None and e.player_id is None for e in game.events if e.event_type.startswith("period_"))


def test_made_field_goals_points_threes_and_assists(game: FeedGame) -> None:
    two, three = event(game, "2"), event(game, "3")
    assert (two.event_type, two.team_id, two.player_id, two.secondary_player_id) == ("fg_made", AWAY, ACE, AL)
    assert (two.points, two.is_three) == (2, False)
    assert (three.event_type, three.player_id, three.secondary_player_id) == ("fg_made", HAL, None)
    assert (three.points, three.is_three) == (3, True)


def test_missed_field_goals_blocks_only_on_a_miss(game: FeedGame) -> None:
    missed_three, blocked = event(game, "4"), event(game, "6")
    assert (missed_three.event_type, missed_three.player_id, missed_three.is_three) == ("fg_missed", AL, True)
    assert missed_three.points == 0
    assert (blocked.event_type, blocked.team_id, blocked.player_id) == ("fg_missed", HOME, HANK)
    assert (blocked.secondary_player_id, blocked.is_three) == (ABE, False)


def test_rebounds_player_and_team_offensive_or_defensive_by_the_last_miss(game: FeedGame) -> None:
    player_defensive = event(game, "5")  # Hoop after Away's miss
    assert (player_defensive.event_type, player_defensive.team_id, player_defensive.player_id) == (
        "rebound_def", HOME, HANK,
    )  # fmt: skip
    team_after_own_fg_miss = event(game, "7")
    assert (team_after_own_fg_miss.event_type, team_after_own_fg_miss.team_id) == ("rebound_off", HOME)
    assert team_after_own_fg_miss.player_id is None
    team_after_their_miss = event(game, "10")
    assert (team_after_their_miss.event_type, team_after_their_miss.team_id) == ("rebound_def", HOME)
    team_after_own_ft_miss = event(game, "13")
    assert (team_after_own_ft_miss.event_type, team_after_own_ft_miss.team_id) == ("rebound_off", HOME)
    assert team_after_own_ft_miss.player_id is None


def test_free_throws_made_missed_and_technical(game: FeedGame) -> None:
    missed, made, technical, and_one = event(game, "12"), event(game, "15"), event(game, "18"), event(game, "30")
    assert (missed.event_type, missed.player_id, missed.points, missed.ft_value) == ("ft_missed", HANK, 0, 1)
    assert (made.event_type, made.player_id, made.points, made.ft_value) == ("ft_made", HANK, 1, 1)
    assert (technical.event_type, technical.team_id, technical.player_id) == ("ft_made", AWAY, ACE)
    assert (technical.points, technical.ft_value) == (1, 1)
    assert (and_one.event_type, and_one.points) == ("ft_made", 1)


def test_turnovers_with_steals_and_team_turnovers(game: FeedGame) -> None:
    stolen, shot_clock = event(game, "8"), event(game, "19")
    assert (stolen.event_type, stolen.team_id, stolen.player_id, stolen.secondary_player_id) == (
        "turnover", HOME, HAL, ACE,
    )  # fmt: skip
    assert (shot_clock.event_type, shot_clock.team_id, shot_clock.player_id) == ("turnover", AWAY, None)
    assert shot_clock.secondary_player_id is None
    assert not [e for e in game.events if e.source_event_id == "20"]  # action 0: no turnover


def test_fouls_carry_their_kind_and_a_technical_is_not_a_personal_foul(game: FeedGame) -> None:
    assert (event(game, "11").foul_kind, event(game, "11").player_id, event(game, "11").team_id) == (
        "shooting", ABE, AWAY,
    )  # fmt: skip
    technical = event(game, "17")
    assert (technical.event_type, technical.player_id, technical.foul_kind) == ("foul", HAL, "technical")
    assert technical.foul_kind in NON_PERSONAL_FOUL_KINDS
    assert event(game, "24").foul_kind == "personal"
    assert event(game, "24").secondary_player_id is None  # the fouled player is not stored
    personal_fouls = {e.player_id for e in game.events if e.event_type == "foul"} - {None}
    counted = [
        e.player_id for e in game.events if e.event_type == "foul" and e.foul_kind not in NON_PERSONAL_FOUL_KINDS
    ]
    assert personal_fouls == {HAL, HANK, HUGO, ABE}
    assert counted.count(HAL) == 1  # his personal foul at 0:30, not the technical


def test_a_double_personal_foul_is_one_foul_for_each_player(game: FeedGame) -> None:
    first, second = event(game, "25", 0), event(game, "25", 1)
    assert (first.player_id, first.team_id, first.foul_kind) == (HANK, HOME, "double_personal")
    assert (second.player_id, second.team_id, second.foul_kind) == (ABE, AWAY, "double_personal")


def test_the_foul_table_maps_to_model_kinds_only() -> None:
    assert set(stats_v2.FOUL_KIND_BY_ACTION.values()) <= FOUL_KINDS
    technical_codes = {11, 12, 13, 16, 17, 18, 19, 25, 30}
    assert all(stats_v2.FOUL_KIND_BY_ACTION[code] in NON_PERSONAL_FOUL_KINDS for code in technical_codes)
    personal_codes = {1, 2, 3, 4, 5, 6, 9, 10, 14, 15, 26, 27, 28, 29, 31}
    assert not any(stats_v2.FOUL_KIND_BY_ACTION[code] in NON_PERSONAL_FOUL_KINDS for code in personal_codes)


def test_substitution_enters_as_player_leaves_as_secondary(game: FeedGame) -> None:
    sub = event(game, "14")
    assert (sub.event_type, sub.team_id, sub.player_id, sub.secondary_player_id) == ("substitution", HOME, HUGO, HUEY)


def test_timeouts_violations_and_the_jump_ball(game: FeedGame) -> None:
    team_timeout, official = event(game, "16"), event(game, "23")
    assert (team_timeout.event_type, team_timeout.team_id, team_timeout.player_id) == ("timeout", AWAY, None)
    assert (official.event_type, official.team_id, official.player_id) == ("timeout", None, None)
    kicked, delay = event(game, "21"), event(game, "22")
    assert (kicked.event_type, kicked.team_id, kicked.player_id) == ("violation", AWAY, AL)
    assert (delay.event_type, delay.team_id, delay.player_id) == ("violation", HOME, None)
    jump = event(game, "1")  # Home v Away, tipped to Arc (Away Town): Away's jumper won it
    assert (jump.event_type, jump.team_id, jump.player_id, jump.secondary_player_id) == ("jump_ball", AWAY, AL, None)


def test_ejection_replay_and_placeholders_are_skipped_and_counted(game: FeedGame) -> None:
    assert game.skipped == {
        "v2:11 ejection": 1,
        "v2:18 instant replay": 1,
        "v2:5 no turnover (placeholder)": 1,
        "v2:4 rebound without player or team": 1,
    }
    assert not game.merged
    assert not {"26", "27", "34"} & {e.source_event_id for e in game.events}


def test_every_feed_row_is_an_event_or_counted() -> None:
    doc = document()
    parsed = stats_v2.parse(doc, "nba_regular.json")
    doubles = 1  # the double personal foul is two events
    assert len(parsed.events) - doubles + sum(parsed.skipped.values()) == len(rows(doc))


def test_g_league_one_shot_free_throws_are_worth_their_value() -> None:
    parsed = stats_v2.parse(document("gleague_one_shot_free_throws.json"), "gl.json")
    assert (parsed.league, parsed.season, parsed.season_type) == ("gleague", "2019-20", "regular")
    throws = {e.source_event_id: (e.event_type, e.points, e.ft_value) for e in parsed.events if e.ft_value}
    assert throws == {
        "6": ("ft_made", 2, 2),  # Free Throw 2PT (action 31)
        "8": ("ft_missed", 0, 2),
        "11": ("ft_made", 3, 3),  # Free Throw 3PT (action 32)
        "13": ("ft_made", 1, 1),  # Free Throw 1PT (action 30)
        "15": ("ft_made", 1, 1),  # Free Technical 1PT (action 38)
    }
    assert (parsed.events[1].event_type, parsed.events[1].team_id, parsed.events[1].player_id) == (
        "jump_ball", 1612709901, 8001,
    )  # fmt: skip
    rebound = next(e for e in parsed.events if e.event_type.startswith("rebound"))
    assert rebound.event_type == "rebound_def"  # after the away team's missed 2PT free throw
    points = {team: sum(e.points for e in parsed.events if e.team_id == team) for team in (1612709901, 1612709902)}
    assert points == {1612709901: 6, 1612709902: 1}


def test_a_free_throw_whose_text_disagrees_with_its_action_is_refused() -> None:
    doc = edit(document("gleague_one_shot_free_throws.json"), 6, EVENTMSGACTIONTYPE=30)
    with pytest.raises(FeedError, match=r"gl\.json: EVENTNUM 6: free throw action 30 is worth 1, the text says 2PT"):
        stats_v2.parse(doc, "gl.json")


def test_playoff_games_are_read() -> None:
    parsed = stats_v2.parse(with_game_id("0041600101"), "p.json")
    assert (parsed.game_id, parsed.season, parsed.season_type) == (41600101, "2016-17", "playoffs")
    assert stats_v2.parse(with_game_id("0029900001"), "old.json").season == "1999-00"


def test_other_games_are_refused_with_the_shared_message() -> None:
    # Every league and season-type digit, in every format: tests/test_feed_game_ids.py.
    with pytest.raises(UnsupportedGameError) as error:
        stats_v2.parse(with_game_id("0052000121"), "x.json")
    assert str(error.value) == (
        "x.json: game 0052000121 is an NBA play-in game; "
        "only NBA and G League regular-season and playoff games are read"
    )


def test_an_unknown_event_type_names_file_eventnum_and_type() -> None:
    doc = edit(document(), 21, EVENTMSGTYPE=14)
    with pytest.raises(
        FeedError, match=r"^g\.json: EVENTNUM 21: EVENTMSGTYPE 14 \(action 5\) is not in the v2 mapping"
    ):
        stats_v2.parse(doc, "g.json")


def test_an_unknown_foul_action_is_refused() -> None:
    doc = edit(document(), 24, EVENTMSGACTIONTYPE=7)
    with pytest.raises(FeedError, match=r"^g\.json: EVENTNUM 24: foul action type 7 is not in the v2 foul table"):
        stats_v2.parse(doc, "g.json")


def test_a_player_on_neither_team_is_refused_naming_the_event() -> None:
    doc = edit(document(), 24, PLAYER1_ID=7777, PLAYER1_NAME="Stray Guy", PLAYER1_TEAM_ID=1610612799)
    with pytest.raises(FeedError, match=r"^g\.json: EVENTNUM 24: player 7777 \(Stray Guy\) is on neither team"):
        stats_v2.parse(doc, "g.json")


def test_a_rebound_with_no_miss_before_it_in_the_period_is_refused() -> None:
    doc = edit(document(), 34, EVENTMSGACTIONTYPE=0, PLAYER1_ID=HOME, PERSON1TYPE=2)
    with pytest.raises(FeedError, match=r"^g\.json: EVENTNUM 34: a rebound with no missed shot before it in period 2"):
        stats_v2.parse(doc, "g.json")


def test_an_assister_from_the_other_team_is_refused() -> None:
    doc = edit(document(), 2, PLAYER2_ID=HAL, PLAYER2_NAME="Hal Home", PLAYER2_TEAM_ID=HOME)
    with pytest.raises(FeedError, match=r"^g\.json: EVENTNUM 2: PLAYER2 9001 should be on the same team"):
        stats_v2.parse(doc, "g.json")


def test_rows_of_two_games_or_bad_cells_are_refused() -> None:
    doc = edit(document(), 5, GAME_ID="0021600902")
    with pytest.raises(FeedError, match=r"holds one game with rows; GAME_ID found: 0021600901, 0021600902"):
        stats_v2.parse(doc, "g.json")
    with pytest.raises(FeedError, match=r"^g\.json: EVENTNUM 5: PCTIMESTRING '10 58' is not M:SS"):
        stats_v2.parse(edit(document(), 5, PCTIMESTRING="10 58"), "g.json")
    with pytest.raises(FeedError, match=r"^g\.json: EVENTNUM 5: PERIOD 'one' is not a whole number"):
        stats_v2.parse(edit(document(), 5, PERIOD="one"), "g.json")


def test_a_roster_fills_names_and_is_checked_against_the_feed() -> None:
    doc = edit(document(), 24, PLAYER1_NAME=None)
    with pytest.raises(FeedError, match=r"player 9004 has no name in the feed: give a roster"):
        stats_v2.parse(edit(doc, 14, PLAYER2_NAME=None), "g.json")
    teams = (FeedTeam(HOME, "HCH", "Harbor City"), FeedTeam(AWAY, "ATW", "Away Town"))
    others = tuple(p for p in stats_v2.parse(document(), "g.json").players if p.player_id != HUGO)
    roster = stats_v2.Roster(teams, (*others, FeedPlayer(HUGO, "Hugo H. Help", HOME)), HOME)
    parsed = stats_v2.parse(edit(doc, 14, PLAYER2_NAME=None), "g.json", roster)
    assert next(p.full_name for p in parsed.players if p.player_id == HUGO) == "Hugo H. Help"
    assert parsed.home.name == "Harbor City Herons"  # the feed's own names come first
    # The box score lists everyone who played: a player it does not list is an error naming the first row.
    with pytest.raises(FeedError, match=r"^g\.json: EVENTNUM \d+: player 9004 \(Hugo Help\) is on neither roster of "):
        stats_v2.parse(document(), "g.json", stats_v2.Roster(teams, others, HOME))
    wrong_team = stats_v2.Roster(teams, (*others, FeedPlayer(HUGO, "Hugo Help", AWAY)), HOME)
    with pytest.raises(FeedError, match=r"player 9004 is on team 1610612790 in the feed and on team 1610612791"):
        stats_v2.parse(document(), "g.json", wrong_team)
    with pytest.raises(FeedError, match=r"the descriptions make team 1610612790 the home team, the roster 1610612791"):
        stats_v2.parse(document(), "g.json", stats_v2.Roster(teams, (), AWAY))


def test_without_descriptions_the_roster_names_the_home_team() -> None:
    doc = document()
    home_text, visitor_text = column(doc, "HOMEDESCRIPTION"), column(doc, "VISITORDESCRIPTION")
    for row in rows(doc):
        row[home_text] = row[home_text] or row[visitor_text]
        row[visitor_text] = None
    with pytest.raises(FeedError, match=r"cannot tell the home team from the away team"):
        stats_v2.parse(doc, "g.json")
    teams = (FeedTeam(HOME, "HCH", "Harbor City Herons"), FeedTeam(AWAY, "ATW", "Away Town Wolves"))
    parsed = stats_v2.parse(doc, "g.json", stats_v2.Roster(teams, (), HOME))
    assert (parsed.home.team_id, parsed.away.team_id) == (HOME, AWAY)


def test_the_mapping_table_covers_the_documented_types() -> None:
    covered = {msg_type for msg_type, _ in stats_v2.MAPPING}
    assert covered == {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 18}
    skipped = {key: rule.what for key, rule in stats_v2.MAPPING.items() if rule.handler is None}
    assert skipped == {(5, 0): "no turnover (placeholder)", (11, None): "ejection", (18, None): "instant replay"}


def test_parsing_does_not_change_the_document() -> None:
    doc = document()
    before = copy.deepcopy(doc)
    stats_v2.parse(doc, "g.json")
    assert doc == before
