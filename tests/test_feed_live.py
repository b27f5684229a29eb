"""The cdn.nba.com live play-by-play importer, on a hand-written game (tests/fixtures/feeds/live).

The fixture is one made-up first quarter of BKN (home) against GSW with a row for every mapping rule:
a jump ball, made and missed shots with an assist and a block row, team and player rebounds (one with
no subType), a steal row, free throws, fouls, paired substitutions, team and official timeouts, a
violation, a team turnover, a "no turnover" placeholder, rows that are skipped, and a putback stamped
before its rebound.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from temporaldb.feeds import live
from temporaldb.feeds.model import (
    FOUL_KINDS,
    FeedError,
    FeedEvent,
    FeedGame,
    FeedPlayer,
    FeedTeam,
    UnsupportedGameError,
)

FIXTURE = Path(__file__).parent / "fixtures" / "feeds" / "live" / "playbyplay_0022000901.json"
SOURCE = "playbyplay_0022000901.json"
BKN, GSW = 1610612751, 1610612744
JORDAN, IRVING, DURANT, ALLEN = 201599, 202681, 201142, 1628386
WIGGINS, CURRY, GREEN, LOONEY = 203952, 201939, 203110, 1626172
ROSTER = {
    player.player_id: player
    for player in (
        FeedPlayer(JORDAN, "DeAndre Jordan", BKN), FeedPlayer(IRVING, "Kyrie Irving", BKN),
        FeedPlayer(DURANT, "Kevin Durant", BKN), FeedPlayer(ALLEN, "Jarrett Allen", BKN),
        FeedPlayer(WIGGINS, "Andrew Wiggins", GSW), FeedPlayer(CURRY, "Stephen Curry", GSW),
        FeedPlayer(GREEN, "Draymond Green", GSW), FeedPlayer(LOONEY, "Kevon Looney", GSW),
    )
}  # fmt: skip
TEAMS = {BKN: FeedTeam(BKN, "BKN", "Brooklyn Nets"), GSW: FeedTeam(GSW, "GSW", "Golden State Warriors")}

# (event_type, team, player, secondary, points, is_three, foul_kind, ft_value, source_event_id), feed order.
EXPECTED = [
    ("period_start", None, None, None, 0, False, None, None, "2"),
    ("jump_ball", BKN, JORDAN, None, 0, False, None, None, "4"),
    ("fg_made", BKN, IRVING, DURANT, 2, False, None, None, "7"),
    ("fg_missed", GSW, WIGGINS, JORDAN, 0, False, None, None, "8+10"),
    ("rebound_def", BKN, None, None, 0, False, None, None, "9"),
    ("turnover", BKN, DURANT, CURRY, 0, False, None, None, "11+12"),
    ("fg_made", GSW, CURRY, GREEN, 3, True, None, None, "13"),
    ("foul", BKN, IRVING, None, 0, False, "shooting", None, "14"),
    ("ft_missed", GSW, WIGGINS, None, 0, False, None, 1, "15"),
    ("rebound_off", GSW, None, None, 0, False, None, None, "16"),
    ("ft_made", GSW, WIGGINS, None, 1, False, None, 1, "17"),
    ("timeout", GSW, None, None, 0, False, None, None, "18"),
    ("substitution", BKN, ALLEN, JORDAN, 0, False, None, None, "20+21"),
    ("substitution", GSW, LOONEY, WIGGINS, 0, False, None, None, "19+22"),
    ("fg_missed", BKN, DURANT, None, 0, True, None, None, "23"),
    ("rebound_off", BKN, ALLEN, None, 0, False, None, None, "24"),
    ("turnover", BKN, None, None, 0, False, None, None, "25"),
    ("foul", GSW, CURRY, None, 0, False, "offensive", None, "27"),
    ("foul", BKN, DURANT, None, 0, False, "technical", None, "28"),
    ("ft_made", GSW, CURRY, None, 1, False, None, 1, "29"),
    ("violation", GSW, LOONEY, None, 0, False, None, None, "30"),
    ("timeout", None, None, None, 0, False, None, None, "31"),
    ("fg_missed", BKN, IRVING, None, 0, False, None, None, "36"),
    ("rebound_off", BKN, ALLEN, None, 0, False, None, None, "37"),
    ("fg_made", BKN, ALLEN, None, 2, False, None, None, "38"),
    ("period_end", None, None, None, 0, False, None, None, "39"),
]


def document() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(FIXTURE.read_text(encoding="utf-8"))
    return copy.deepcopy(data)


def action(doc: dict[str, Any], number: int) -> dict[str, Any]:
    found: dict[str, Any] = next(a for a in doc["game"]["actions"] if a["actionNumber"] == number)
    return found


def changed(edit: Callable[[dict[str, Any]], object]) -> dict[str, Any]:
    doc = document()
    edit(doc)
    return doc


def parse(doc: dict[str, Any] | None = None, **options: Any) -> FeedGame:
    return live.parse(document() if doc is None else doc, SOURCE, **options)


def summary(event: FeedEvent) -> tuple[object, ...]:
    return (
        event.event_type, event.team_id, event.player_id, event.secondary_player_id, event.points, event.is_three,
        event.foul_kind, event.ft_value, event.source_event_id,
    )  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Recognizing the format, the game and its teams
# ---------------------------------------------------------------------------------------------


def test_looks_like_the_live_feed_only() -> None:
    assert live.looks_like(document())
    v3 = {"game": {"gameId": "0022200552", "videoAvailable": 1, "actions": [
        {"actionNumber": 2, "clock": "PT12M00.00S", "period": 1, "actionType": "period", "actionId": 1},
    ]}}  # fmt: skip
    box = {"game": {"gameId": "0022000001", "homeTeam": {}, "awayTeam": {}}}
    others: tuple[object, ...] = (v3, box, {"resultSets": []}, [], "text", {"game": {"gameId": "1", "actions": []}})
    for other in others:
        assert not live.looks_like(other)


def test_the_game_its_season_and_teams() -> None:
    game = parse()
    assert (game.game_id, game.league, game.season, game.season_type) == (22000901, "nba", "2020-21", "regular")
    assert (game.feed_format, game.source, game.wall_clock_precision) == ("live", SOURCE, "100ms")
    # scoreHome rises on BKN's baskets: BKN is home. Without names, the tricode is the name.
    assert (game.home, game.away) == (FeedTeam(BKN, "BKN", "BKN"), FeedTeam(GSW, "GSW", "GSW"))
    assert game.tipoff_at == dt.datetime(2021, 1, 10, 0, 40, 19, tzinfo=dt.UTC)
    assert game.tipoff_eastern is None  # the live feed has a real instant instead


def test_names_come_from_the_roster_and_teams() -> None:
    game = parse(roster=ROSTER, teams=TEAMS)
    assert (game.home.name, game.away.name) == ("Brooklyn Nets", "Golden State Warriors")
    assert {player.full_name for player in game.players} == {player.full_name for player in ROSTER.values()}


def test_without_a_roster_players_are_named_and_placed_by_the_feed() -> None:
    players = {player.player_id: player for player in parse().players}
    assert set(players) == set(ROSTER)
    assert players[CURRY] == FeedPlayer(CURRY, "S. Curry", GSW)
    # Green appears only as Curry's assister: the shooter's team, the assist's initial-and-name.
    assert players[GREEN] == FeedPlayer(GREEN, "D. Green", GSW)


def test_declared_sides_are_used_and_must_agree_with_the_score() -> None:
    def declare(home: int, away: int) -> Callable[[dict[str, Any]], object]:
        def edit(doc: dict[str, Any]) -> None:
            doc["game"]["homeTeam"] = {"teamId": home, "teamTricode": "X", "teamCity": "Brooklyn", "teamName": "Nets"}
            doc["game"]["awayTeam"] = {"teamId": away, "teamCity": "Golden State", "teamName": "Warriors"}

        return edit

    game = parse(changed(declare(BKN, GSW)))
    assert (game.home.name, game.away.name) == ("Brooklyn Nets", "Golden State Warriors")
    with pytest.raises(FeedError, match=rf"^{SOURCE}: game.homeTeam is {GSW} but team"):
        parse(changed(declare(GSW, BKN)))


def test_without_a_basket_or_declared_sides_home_is_unknown() -> None:
    def no_scores(doc: dict[str, Any]) -> None:
        for row in doc["game"]["actions"]:
            row["scoreHome"] = row["scoreAway"] = "0"

    with pytest.raises(FeedError, match="cannot tell home from away"):
        parse(changed(no_scores))


@pytest.mark.parametrize(
    ("game_id", "league", "season", "season_type"),
    [
        ("0022000901", "nba", "2020-21", "regular"),
        ("0041900406", "nba", "2019-20", "playoffs"),
        ("0029900001", "nba", "1999-00", "regular"),
        ("2021900002", "gleague", "2019-20", "regular"),
        ("2041900001", "gleague", "2019-20", "playoffs"),
    ],
)
def test_supported_games(game_id: str, league: str, season: str, season_type: str) -> None:
    game = parse(changed(lambda doc: doc["game"].update(gameId=game_id)))
    assert (game.game_id, game.league, game.season, game.season_type) == (int(game_id), league, season, season_type)


def test_other_games_are_refused_with_the_shared_message() -> None:
    # Every league and season-type digit, in every format: tests/test_feed_game_ids.py.
    with pytest.raises(UnsupportedGameError) as caught:
        parse(changed(lambda doc: doc["game"].update(gameId="1022200034")))
    assert str(caught.value) == (
        f"{SOURCE}: game 1022200034 is a WNBA regular-season game; "
        "only NBA and G League regular-season and playoff games are read"
    )


def test_a_malformed_game_id_is_a_feed_error() -> None:
    with pytest.raises(FeedError, match=r"game id '22000901' is not a ten-digit NBA game id") as caught:
        parse(changed(lambda doc: doc["game"].update(gameId="22000901")))
    assert not isinstance(caught.value, UnsupportedGameError)
    with pytest.raises(FeedError, match=r"^x\.json: not a live play-by-play document"):
        live.parse({"game": {}}, "x.json")


# ---------------------------------------------------------------------------------------------
# Mapping
# ---------------------------------------------------------------------------------------------


def test_every_row_becomes_an_event_in_feed_order() -> None:
    assert [summary(event) for event in parse().events] == EXPECTED


def test_every_row_is_accounted_for() -> None:
    game = parse()
    assert dict(game.skipped) == {
        "live:turnover": 1,  # no subType: a "no turnover" placeholder
        "live:stoppage out-of-bounds": 1, "live:instantreplay challenge": 1, "live:memo": 1,
        "live:ejection other": 1, "live:game end": 1,
    }  # fmt: skip
    assert dict(game.merged) == {"live:block": 1, "live:steal": 1, "live:substitution (paired)": 2}
    rows = len(document()["game"]["actions"])
    assert rows == len(game.events) + sum(game.skipped.values()) + sum(game.merged.values())


def test_clocks_and_wall_clocks() -> None:
    events = parse().events
    assert [event.clock for event in events[-4:]] == ["00:03", "00:02.2", "00:02.2", "00:00"]
    moments = [event.wall_clock for event in events if event.wall_clock is not None]
    assert len(moments) == len(events)
    assert all(moment.utcoffset() == dt.timedelta(0) for moment in moments)
    assert events[2].wall_clock == dt.datetime(2021, 1, 10, 0, 40, 45, 500000, tzinfo=dt.UTC)
    # The putback (timeActual 02.2) was stamped before its rebound (02.5): it takes the rebound's time.
    assert events[-2].wall_clock == events[-3].wall_clock == dt.datetime(2021, 1, 10, 1, 10, 2, 500000, tzinfo=dt.UTC)
    assert moments == sorted(moments)


def test_a_rebound_without_subtype_follows_the_last_miss() -> None:
    def drop_shot_number(doc: dict[str, Any]) -> None:
        del action(doc, 24)["shotActionNumber"]

    assert summary(parse(changed(drop_shot_number)).events[15])[:3] == ("rebound_off", BKN, ALLEN)

    def defensive(doc: dict[str, Any]) -> None:
        action(doc, 24).update(teamId=GSW, teamTricode="GSW", personId=LOONEY)

    assert summary(parse(changed(defensive)).events[15])[:3] == ("rebound_def", GSW, LOONEY)


def test_a_block_row_credits_a_miss_that_names_no_blocker() -> None:
    game = parse(changed(lambda doc: action(doc, 8).pop("blockPersonId")))
    assert summary(game.events[3])[:4] == ("fg_missed", GSW, WIGGINS, JORDAN)
    game = parse(changed(lambda doc: action(doc, 11).pop("stealPersonId")))
    assert summary(game.events[5])[:4] == ("turnover", BKN, DURANT, CURRY)


def test_a_block_or_steal_row_must_agree_with_its_play() -> None:
    with pytest.raises(FeedError, match=rf"^{SOURCE}: action 10: block by {ALLEN} .* action 8 names {JORDAN}"):
        parse(changed(lambda doc: action(doc, 10).update(personId=ALLEN)))
    with pytest.raises(FeedError, match=rf"^{SOURCE}: action 12: steal by {GREEN} matches no turnover"):
        parse(changed(lambda doc: action(doc, 12).update(personId=GREEN)))
    with pytest.raises(FeedError, match=rf"^{SOURCE}: action 10: block by {JORDAN} matches no missed shot at 11:19"):
        parse(changed(lambda doc: action(doc, 10).update(clock="PT11M19.00S")))


def test_an_unpaired_substitution_is_an_error() -> None:
    with pytest.raises(FeedError, match=rf"^{SOURCE}: action 19: substitution out of player {WIGGINS} has no partner"):
        parse(changed(lambda doc: action(doc, 22).update(teamId=BKN, teamTricode="BKN", personId=2000)))


def test_a_jump_ball_without_a_winner_is_skipped() -> None:
    game = parse(changed(lambda doc: action(doc, 4).pop("jumpBallWonPersonId")))
    assert game.skipped["live:jumpball (no winner)"] == 1
    assert "jump_ball" not in {event.event_type for event in game.events}


def test_the_foul_table_gives_every_canonical_kind_and_no_other() -> None:
    assert set(live.FOUL_KIND_BY_TYPE.values()) == FOUL_KINDS


@pytest.mark.parametrize(
    ("sub_type", "descriptor", "kind"),
    [
        ("personal", None, "personal"),
        ("personal", "shooting", "shooting"),
        ("personal", "loose ball", "loose_ball"),
        ("personal", "take", "personal_take"),
        ("personal", "transition", "transition_take"),
        ("personal", "away from play", "away_from_play"),
        ("personal", "clear path", "clear_path"),
        ("personal", "inbound", "inbound"),
        ("personal", "double", "double_personal"),
        ("personal", "flagrant-type-1", "flagrant_1"),
        ("flagrant", "flagrant-type-2", "flagrant_2"),
        ("offensive", None, "offensive"),
        ("offensive", "charge", "offensive"),
        ("technical", None, "technical"),
        ("technical", "double", "double_technical"),
        ("technical", "defensive-3-second", "defensive_3_seconds"),
        ("technical", "delay-of-game", "delay_technical"),
    ],
)
def test_foul_kinds(sub_type: str, descriptor: str | None, kind: str) -> None:
    game = parse(changed(lambda doc: action(doc, 14).update(subType=sub_type, descriptor=descriptor)))
    assert game.events[7].foul_kind == kind


def test_a_team_technical_and_a_coach_technical() -> None:
    team_technical = changed(lambda doc: action(doc, 28).update(personId=0))
    assert summary(parse(team_technical).events[18])[:4] == ("foul", BKN, None, None)
    coach = changed(lambda doc: action(doc, 28).update(personId=1627888))  # not a player: not on the roster
    assert summary(parse(coach, roster=ROSTER).events[18])[:4] == ("foul", BKN, None, None)


@pytest.mark.parametrize(
    ("number", "edit", "message"),
    [
        (30, {"actionType": "heave"}, "unknown actionType/subType 'heave'/'kicked ball'"),
        (2, {"subType": "restart"}, "unknown actionType/subType 'period'/'restart'"),
        (24, {"subType": "team"}, "unknown actionType/subType 'rebound'/'team'"),
        (19, {"subType": "swap"}, "unknown actionType/subType 'substitution'/'swap'"),
        (15, {"subType": "1 of 4"}, "unknown actionType/subType 'freethrow'/'1 of 4'"),
        (14, {"descriptor": "elbow"}, "unknown foul subType/descriptor 'personal'/'elbow'"),
        (7, {"shotResult": "Blocked"}, "shotResult 'Blocked' is neither Made nor Missed"),
        (7, {"clock": "11:40"}, "clock '11:40' is not PT<m>M<s>S"),
        (7, {"timeActual": "2021-01-10 00:40"}, "timeActual '2021-01-10 00:40' has no time zone"),
        (9, {"actionNumber": 8}, "actionNumber 8 appears 2 times"),
    ],
)
def test_what_cannot_be_read_is_an_error_naming_the_action(number: int, edit: dict[str, Any], message: str) -> None:
    prefix = "" if "appears" in message else f"action {number}: "
    with pytest.raises(FeedError, match=rf"^{SOURCE}: {prefix}{message}"):
        parse(changed(lambda doc: action(doc, number).update(edit)))


def test_roster_disagreements_are_errors() -> None:
    with pytest.raises(FeedError, match=rf"player {LOONEY} \(K. Looney\) is not on the roster"):
        parse(roster={k: v for k, v in ROSTER.items() if k != LOONEY})
    moved = {**ROSTER, CURRY: FeedPlayer(CURRY, "Stephen Curry", BKN)}
    with pytest.raises(FeedError, match=rf"player {CURRY} plays for {GSW}, the roster says {BKN}"):
        parse(roster=moved)


def test_a_player_on_two_teams_is_an_error() -> None:
    with pytest.raises(FeedError, match=rf"^{SOURCE}: action 30: player {LOONEY} plays for {GSW} and {BKN}"):
        parse(changed(lambda doc: action(doc, 30).update(teamId=BKN, teamTricode="BKN")))
