"""Box scores: each format read from a small hand-made fixture of one game, and every way one is refused.

The four fixtures under tests/fixtures/feeds/box/ describe the same made-up game (LAL @ BOS, 0021900101) in
boxscoretraditionalv2, boxscoretraditionalv3 and the live box score, plus its boxscoresummaryv2; a fifth is a
range box of its third quarter. The expected lines below are copied by hand from the fixtures.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from temporaldb.feeds import boxscore
from temporaldb.feeds.boxscore import PartialBoxScoreError
from temporaldb.feeds.model import STATS, BoxScore, FeedError, FeedPlayer, FeedTeam

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "feeds" / "box"
GAME = 21900101
BOS, LAL = 1610612738, 1610612747
ALPHA, BETA, GAMMA, ZETA, DELTA, EPSILON = 201, 202, 203, 204, 301, 302
BOSTON, LOS_ANGELES = FeedTeam(BOS, "BOS", "Boston Celtics"), FeedTeam(LAL, "LAL", "Los Angeles Lakers")
BOXES = ("traditional_v2.json", "traditional_v3.json", "live_box.json")


def line(*values: int) -> dict[str, int]:
    """A box line's stats in STATS order: points, fgm, fga, fg3m, fg3a, ftm, fta, oreb, dreb, rebounds, ..."""
    return dict(zip(STATS, values, strict=True))


EXPECTED = {
    ("p", ALPHA): line(22, 8, 15, 2, 5, 4, 5, 1, 6, 7, 5, 1, 0, 3, 2),
    ("p", BETA): line(11, 5, 9, 0, 1, 1, 2, 3, 4, 7, 1, 0, 2, 1, 4),
    ("p", DELTA): line(23, 9, 20, 3, 8, 2, 2, 0, 5, 5, 7, 2, 1, 2, 3),
    ("p", EPSILON): line(3, 1, 4, 1, 3, 0, 0, 1, 1, 2, 0, 0, 0, 0, 1),
    ("t", BOS): line(33, 13, 24, 2, 6, 5, 7, 4, 10, 14, 6, 1, 2, 4, 6),
    ("t", LAL): line(26, 10, 24, 4, 11, 2, 2, 1, 6, 7, 7, 2, 1, 2, 4),
}
"""Gamma Three (203) did not play: no line. Team lines count players only."""
TEAM_REBOUNDS = {BOS: 3, LAL: 2}
TEAM_TURNOVERS = {BOS: 1, LAL: 0}
ROSTER = {
    FeedPlayer(ALPHA, "Alpha One", BOS),
    FeedPlayer(BETA, "Beta Two", BOS),
    FeedPlayer(GAMMA, "Gamma Three", BOS),
    FeedPlayer(DELTA, "Delta Four", LAL),
    FeedPlayer(EPSILON, "Epsilon", LAL),
}


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def summary(document: Any = None) -> boxscore.Summary:
    return boxscore.parse_summary(document or load("summary_v2.json"), "summary_v2.json")


def lines_of(box: BoxScore) -> dict[tuple[str, int], dict[str, int]]:
    by_subject = {(box_line.subject_kind, box_line.subject_id): box_line.stats for box_line in box.lines}
    assert len(by_subject) == len(box.lines)
    return by_subject


def result_set(document: Any, name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(rs for rs in document["resultSets"] if rs["name"] == name)
    return found


def set_cell(document: Any, name: str, column: str, value: object, row: int = 0) -> None:
    rs = result_set(document, name)
    rs["rowSet"][row][rs["headers"].index(column)] = value


def one_line_error(excinfo: pytest.ExceptionInfo[FeedError]) -> str:
    message = str(excinfo.value)
    assert "\n" not in message
    return message


# ---------------------------------------------------------------------------------------------------- formats


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("traditional_v2.json", "traditional_v2"),
        ("traditional_v2_range.json", "traditional_v2"),
        ("summary_v2.json", "summary_v2"),
        ("traditional_v3.json", "traditional_v3"),
        ("live_box.json", "live_box"),
    ],
)
def test_looks_like_names_each_format(name: str, kind: str) -> None:
    assert boxscore.looks_like(load(name)) == kind


@pytest.mark.parametrize(
    "document",
    [
        {},
        [],
        "box",
        {"resultSets": [{"name": "PlayByPlay", "headers": ["GAME_ID", "EVENTNUM"], "rowSet": []}]},
        {"resultSets": [{"name": "PlayerStats", "headers": ["PLAYER_ID", "OFF_RATING"], "rowSet": []},
                        {"name": "TeamStats", "headers": ["TEAM_ID", "OFF_RATING"], "rowSet": []}]},
        {"game": {"gameId": "0021900101", "actions": []}},
    ],
    ids=["empty", "list", "string", "playbyplayv2", "boxscoreadvancedv2", "live-playbyplay"],
)  # fmt: skip
def test_looks_like_refuses_other_documents(document: object) -> None:
    assert boxscore.looks_like(document) is None


@pytest.mark.parametrize("name", BOXES)
def test_every_format_gives_the_same_lines_without_the_player_who_did_not_play(name: str) -> None:
    box = boxscore.box_score(load(name), name)
    assert box.game_id == GAME
    assert box.source == name
    assert lines_of(box) == EXPECTED
    assert all(list(box_line.stats) == list(STATS) for box_line in box.lines)
    facts = boxscore.facts(load(name), name)
    assert set(facts.players) == ROSTER
    assert facts.played == {ALPHA, BETA, DELTA, EPSILON}


def test_traditional_v2_alone_has_no_team_figures_and_no_home_team() -> None:
    box = boxscore.box_score(load("traditional_v2.json"), "traditional_v2.json")
    assert box.team_rebounds == {}
    assert box.team_turnovers == {}
    facts = boxscore.facts(load("traditional_v2.json"), "traditional_v2.json")
    assert (facts.home, facts.away) == (None, None)
    assert facts.teams == (LOS_ANGELES, BOSTON)  # TeamStats order
    assert (facts.game_date, facts.tipoff_at, facts.final) == (None, None, None)


@pytest.mark.parametrize("name", ["traditional_v2.json", "traditional_v3.json"])
def test_a_traditional_box_with_its_summary_gets_team_rebounds_turnovers_and_game_facts(name: str) -> None:
    box = boxscore.box_score(load(name), name, summary=summary(), expect_game_id="0021900101")
    assert lines_of(box) == EXPECTED
    assert box.team_rebounds == TEAM_REBOUNDS
    assert box.team_turnovers == TEAM_TURNOVERS  # TOTAL_TURNOVERS 5 and 2 minus the players' 4 and 2
    assert box.source == f"{name} + summary_v2.json"
    facts = boxscore.facts(load(name), name, summary=summary())
    assert (facts.home, facts.away, facts.teams) == (BOSTON, LOS_ANGELES, (BOSTON, LOS_ANGELES))
    assert facts.game_date == dt.date(2019, 11, 20)
    assert facts.final is True
    assert set(facts.players) == {*ROSTER, FeedPlayer(ZETA, "Zeta Six", BOS)}  # the inactive player, for names
    assert ZETA not in facts.played


def test_the_live_box_gives_team_rebounds_and_turnovers_apart_and_the_tipoff() -> None:
    box = boxscore.box_score(load("live_box.json"), "live_box.json", expect_game_id=GAME)
    assert box.team_rebounds == TEAM_REBOUNDS  # reboundsTeam; the team line's rebounds are reboundsPersonal
    assert box.team_turnovers == TEAM_TURNOVERS
    facts = boxscore.facts(load("live_box.json"), "live_box.json")
    assert (facts.home, facts.away) == (BOSTON, LOS_ANGELES)
    assert facts.tipoff_at == dt.datetime(2019, 11, 21, 0, 30, tzinfo=dt.UTC)
    assert facts.game_date == dt.date(2019, 11, 20)
    assert facts.final is True


def test_the_live_box_team_totals_must_be_players_plus_team() -> None:
    document = load("live_box.json")
    document["game"]["homeTeam"]["statistics"]["reboundsTotal"] = 16
    with pytest.raises(FeedError) as excinfo:
        boxscore.box_score(document, "live_box.json")
    assert "team 1610612738 reboundsTotal 16 is not players' 14 + reboundsTeam 3" in one_line_error(excinfo)


def test_v2_turnovers_may_be_named_tov() -> None:
    document = load("traditional_v2.json")
    for name in ("PlayerStats", "TeamStats"):
        headers = result_set(document, name)["headers"]
        headers[headers.index("TO")] = "TOV"
    assert boxscore.looks_like(document) == "traditional_v2"
    assert lines_of(boxscore.box_score(document, "tov.json")) == EXPECTED


def test_a_player_listed_with_zero_minutes_and_no_comment_played() -> None:
    document = load("traditional_v2.json")
    rs = result_set(document, "PlayerStats")
    gamma = rs["rowSet"][2]
    for column in ("FGM", "FGA", "FG3M", "FG3A", "FTM", "FTA", "OREB", "DREB", "REB", "AST", "STL", "BLK", "TO"):
        gamma[rs["headers"].index(column)] = 0
    for column, value in (("COMMENT", ""), ("MIN", "0:00"), ("PF", 0), ("PTS", 0)):
        gamma[rs["headers"].index(column)] = value
    assert lines_of(boxscore.box_score(document, "zero.json"))[("p", GAMMA)] == dict.fromkeys(STATS, 0)


# ---------------------------------------------------------------------------------------------------- summaries


def test_team_turnovers_that_contradict_total_turnovers_are_refused() -> None:
    document = load("summary_v2.json")
    set_cell(document, "OtherStats", "TEAM_TURNOVERS", 2, row=1)  # BOS: TOTAL 5 - TO 4 = 1
    with pytest.raises(FeedError) as excinfo:
        boxscore.box_score(load("traditional_v2.json"), "box.json", summary=summary(document))
    assert "team 1610612738 TOTAL_TURNOVERS 5 - TO 4 = 1, but TEAM_TURNOVERS is 2" in one_line_error(excinfo)


def test_a_summary_of_another_game_or_other_teams_is_refused() -> None:
    other_game = load("summary_v2.json")
    set_cell(other_game, "GameSummary", "GAME_ID", "0021900102")
    with pytest.raises(FeedError) as excinfo:
        boxscore.box_score(load("traditional_v2.json"), "box.json", summary=summary(other_game))
    assert one_line_error(excinfo) == (
        "summary_v2.json: summary of game 0021900102 given with box.json (game 0021900101)"
    )
    other_teams = load("summary_v2.json")
    set_cell(other_teams, "GameSummary", "VISITOR_TEAM_ID", 1610612744)
    set_cell(other_teams, "LineScore", "TEAM_ID", 1610612744, row=1)
    set_cell(other_teams, "OtherStats", "TEAM_ID", 1610612744, row=0)
    with pytest.raises(FeedError, match=r"summary teams \[1610612738, 1610612744\] differ from box.json"):
        boxscore.box_score(load("traditional_v2.json"), "box.json", summary=summary(other_teams))


def test_an_unfinished_game_is_refused_but_its_facts_are_read() -> None:
    document = load("summary_v2.json")
    set_cell(document, "GameSummary", "GAME_STATUS_ID", 2)
    set_cell(document, "GameSummary", "GAME_STATUS_TEXT", "3rd Qtr")
    with pytest.raises(PartialBoxScoreError) as excinfo:
        boxscore.box_score(load("traditional_v2.json"), "box.json", summary=summary(document))
    assert "game 0021900101 is not over (status 2 '3rd Qtr')" in one_line_error(excinfo)
    assert boxscore.facts(load("traditional_v2.json"), "box.json", summary=summary(document)).final is False
    live = load("live_box.json")
    live["game"]["gameStatus"] = 2
    with pytest.raises(PartialBoxScoreError, match="is not over"):
        boxscore.box_score(live, "live_box.json")


@pytest.mark.parametrize(
    ("name", "with_summary"),
    [(name, False) for name in BOXES] + [("traditional_v2.json", True), ("traditional_v3.json", True)],
)
def test_box_score_and_facts_reads_a_box_once_for_both(name: str, with_summary: bool) -> None:
    given = summary() if with_summary else None
    reading = boxscore.box_score_and_facts(load(name), name, summary=given)
    assert reading.box_score == boxscore.box_score(load(name), name, summary=given)
    assert reading.facts == boxscore.facts(load(name), name, summary=given)
    assert reading.partial is None


def test_box_score_and_facts_of_a_partial_box_gives_the_facts_and_the_reason() -> None:
    reading = boxscore.box_score_and_facts(load("traditional_v2_range.json"), "range.json", summary=summary())
    assert reading.box_score is None
    assert reading.facts == boxscore.facts(load("traditional_v2_range.json"), "range.json", summary=summary())
    with pytest.raises(PartialBoxScoreError) as excinfo:
        boxscore.box_score(load("traditional_v2_range.json"), "range.json", summary=summary())
    assert isinstance(reading.partial, PartialBoxScoreError)
    assert str(reading.partial) == str(excinfo.value)
    # Any other refusal is raised, as box_score raises it
    document = load("summary_v2.json")
    set_cell(document, "OtherStats", "TEAM_TURNOVERS", 2, row=1)
    with pytest.raises(FeedError, match="TOTAL_TURNOVERS 5 - TO 4 = 1, but TEAM_TURNOVERS is 2"):
        boxscore.box_score_and_facts(load("traditional_v2.json"), "box.json", summary=summary(document))
    with pytest.raises(FeedError, match="box score of game 0021900101, expected game 0021900102"):
        boxscore.box_score_and_facts(load("live_box.json"), "live_box.json", expect_game_id="0021900102")


# ---------------------------------------------------------------------------------------------------- range boxes


def test_a_range_box_is_refused_as_an_end_of_game_box_score() -> None:
    with pytest.raises(PartialBoxScoreError) as excinfo:
        boxscore.box_score(load("traditional_v2_range.json"), "range.json")
    assert one_line_error(excinfo) == (
        "range.json: a range box score (RangeType=2, StartRange=14400, EndRange=21600: game time 24:00.0-36:00.0)"
        " covers part of game 0021900101, not the whole game; refused as an end-of-game box score"
    )
    with pytest.raises(PartialBoxScoreError, match=r"game time 24:00.0-36:00.0 of a 48:00.0 game"):
        boxscore.box_score(load("traditional_v2_range.json"), "range.json", summary=summary())
    facts = boxscore.facts(load("traditional_v2_range.json"), "range.json", summary=summary())
    assert facts.played == {ALPHA, BETA, DELTA, EPSILON}


def test_a_range_box_without_its_parameters_is_caught_by_the_final_score() -> None:
    document = load("traditional_v2_range.json")
    del document["parameters"]
    with pytest.raises(PartialBoxScoreError) as excinfo:
        boxscore.box_score(document, "range.json", summary=summary())
    assert "team 1610612738 has 9 points in the box score but 33 in the final score" in one_line_error(excinfo)


@pytest.mark.parametrize(
    ("parameters", "periods", "partial"),
    [
        ({"RangeType": 0, "StartPeriod": 1, "EndPeriod": 1}, 4, False),  # RangeType 0: the whole game
        ({"RangeType": 2, "StartPeriod": 1, "EndPeriod": 10, "StartRange": 0, "EndRange": 55800}, 5, False),
        ({"RangeType": 2, "StartRange": 0, "EndRange": 28800}, 4, False),
        ({"RangeType": 2, "StartRange": 0, "EndRange": 28800}, 5, True),  # overtime left out
        ({"RangeType": "2", "StartRange": "28800", "EndRange": "31800"}, 5, True),
        ({"RangeType": 1, "StartPeriod": 1, "EndPeriod": 2}, 4, True),
        ({"RangeType": 1, "StartPeriod": 1, "EndPeriod": 4}, 4, False),
        ({"RangeType": 1, "StartPeriod": 1, "EndPeriod": 4}, 5, True),
        ({"RangeType": 1, "StartPeriod": 0, "EndPeriod": 0}, 4, False),
    ],
)
def test_request_windows(parameters: dict[str, object], periods: int, partial: bool) -> None:
    document = load("traditional_v2.json")
    document["parameters"] = {"GameID": "0021900101", **parameters}
    summary_document = load("summary_v2.json")
    set_cell(summary_document, "GameSummary", "LIVE_PERIOD", periods)
    if partial:
        with pytest.raises(PartialBoxScoreError, match=f"RangeType={parameters['RangeType']}"):
            boxscore.box_score(document, "box.json", summary=summary(summary_document))
    else:
        assert lines_of(boxscore.box_score(document, "box.json", summary=summary(summary_document))) == EXPECTED


def test_a_v3_range_request_is_refused() -> None:
    document = load("traditional_v3.json")
    document["meta"]["request"] += "&StartPeriod=0&EndPeriod=0&StartRange=14400&EndRange=21600&RangeType=2"
    with pytest.raises(PartialBoxScoreError, match="a range box score"):
        boxscore.box_score(document, "v3.json")


# ---------------------------------------------------------------------------------------------------- refusals


@pytest.mark.parametrize("name", BOXES)
def test_a_box_score_of_another_game_is_refused(name: str) -> None:
    assert boxscore.box_score(load(name), name, expect_game_id=GAME).game_id == GAME
    with pytest.raises(FeedError) as excinfo:
        boxscore.box_score(load(name), name, expect_game_id="0021900102")
    assert one_line_error(excinfo) == f"{name}: box score of game 0021900101, expected game 0021900102"
    with pytest.raises(FeedError, match="expected game 0021900102"):
        boxscore.facts(load(name), name, expect_game_id=21900102)


def test_a_summary_of_another_game_is_refused() -> None:
    with pytest.raises(FeedError) as excinfo:
        boxscore.parse_summary(load("summary_v2.json"), "summary_v2.json", expect_game_id="0021900102")
    assert one_line_error(excinfo) == "summary_v2.json: summary of game 0021900101, expected game 0021900102"


def test_documents_that_are_not_box_scores_are_refused() -> None:
    with pytest.raises(FeedError) as excinfo:
        boxscore.box_score({"resultSets": []}, "pbp.json")
    assert one_line_error(excinfo).startswith("pbp.json: not a box score (expected boxscoretraditionalv2")
    with pytest.raises(FeedError, match=r"summary_v2\.json: a boxscoresummaryv2 has no player lines"):
        boxscore.box_score(load("summary_v2.json"), "summary_v2.json")
    with pytest.raises(FeedError, match=r"live_box\.json: a live box score .* takes no summary"):
        boxscore.box_score(load("live_box.json"), "live_box.json", summary=summary())
    with pytest.raises(FeedError, match=r"box\.json: not a boxscoresummaryv2"):
        boxscore.parse_summary(load("traditional_v2.json"), "box.json")


@pytest.mark.parametrize(
    ("column", "row", "value", "message"),
    [
        ("PTS", 0, "many", "box.json: player 201 PTS is 'many', not a whole number"),
        ("REB", 1, None, "box.json: player 202 REB is missing"),
        ("AST", 0, -1, "box.json: player 201 AST is negative (-1)"),
        ("TEAM_ID", 3, 1610612744, "box.json: player 301 is on team 1610612744, not one of the game's teams"),
        ("PLAYER_ID", 1, ALPHA, "box.json: player 201 is listed twice"),
        ("GAME_ID", 4, "0021900102", "box.json: rows of several games ['0021900101', '0021900102']"),
    ],
)
def test_bad_player_rows_are_refused(column: str, row: int, value: object, message: str) -> None:
    document = load("traditional_v2.json")
    set_cell(document, "PlayerStats", column, value, row=row)
    with pytest.raises(FeedError) as excinfo:
        boxscore.box_score(document, "box.json")
    assert one_line_error(excinfo).startswith(message)


def test_files_are_read_by_path(tmp_path: Path) -> None:
    box = boxscore.read_box_score(FIXTURES / "traditional_v2.json", FIXTURES / "summary_v2.json", expect_game_id=GAME)
    assert box.team_rebounds == TEAM_REBOUNDS
    assert boxscore.read_facts(FIXTURES / "live_box.json").home == BOSTON
    broken = tmp_path / "broken.json"
    broken.write_text('{"resultSets": [', encoding="utf-8")
    with pytest.raises(FeedError) as excinfo:
        boxscore.read_box_score(broken)
    assert one_line_error(excinfo).startswith(f"{broken}: cannot read JSON")


def test_fixtures_agree_with_each_other() -> None:
    """The three box formats and the summary describe one game: a wrong fixture would make the tests above lie."""
    v2 = boxscore.box_score(load("traditional_v2.json"), "v2", summary=summary())
    v3 = boxscore.box_score(load("traditional_v3.json"), "v3", summary=summary())
    live = boxscore.box_score(load("live_box.json"), "live")
    assert lines_of(v2) == lines_of(v3) == lines_of(live)
    assert (v2.team_rebounds, v2.team_turnovers) == (v3.team_rebounds, v3.team_turnovers)
    assert (v2.team_rebounds, v2.team_turnovers) == (live.team_rebounds, live.team_turnovers)
    for subject, stats in EXPECTED.items():
        assert stats["points"] == 2 * stats["fgm"] + stats["fg3m"] + stats["ftm"], subject
        assert stats["rebounds"] == stats["oreb"] + stats["dreb"], subject
