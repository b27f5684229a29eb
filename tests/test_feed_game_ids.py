"""One rule for game ids: the same id gives the same game or the same refusal in playbyplayv2, v3 and live.

Each format's fixture (tests/fixtures/feeds) is parsed with only its game id changed, over every league
prefix and season-type digit of the table below and over random ids; the expected answer is written here
independently of temporaldb.feeds.model, so a format that drifts from the rule, or a rule that drifts from
this table, fails.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from temporaldb.feeds import live, stats_v2, stats_v3
from temporaldb.feeds.model import FeedError, FeedGame, GameKind, UnsupportedGameError, game_kind

FIXTURES = Path(__file__).parent / "fixtures" / "feeds"
SOURCE = "g.json"
READ_GAMES = "only NBA and G League regular-season and playoff games are read"
READ: dict[tuple[str, str], tuple[str, str]] = {
    ("00", "2"): ("nba", "regular"),
    ("00", "4"): ("nba", "playoffs"),
    ("20", "2"): ("gleague", "regular"),
    ("20", "4"): ("gleague", "playoffs"),
}
"""(league prefix, season-type digit) of the games read -> (league, season_type); the database holds no other."""
LEAGUE_NAMES = {"00": "an NBA", "01": "an ABA", "10": "a WNBA", "20": "a G League"}
SEASON_TYPE_NAMES = {
    "1": "preseason", "2": "regular-season", "3": "All-Star", "4": "playoff", "5": "play-in",
    "6": "in-season tournament final",
}  # fmt: skip
LEAGUE_CODES = ("00", "01", "10", "15", "20", "99")  # 15 (Summer League, unconfirmed) and 99: not named
SEASON_DIGITS = tuple("0123456789")

Outcome = tuple[object, ...]


@cache
def _fixture(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    return document


def v2_document(game_id: object) -> dict[str, Any]:
    document = copy.deepcopy(_fixture("v2/nba_regular.json"))
    table = document["resultSets"][0]
    column = table["headers"].index("GAME_ID")
    for row in table["rowSet"]:
        row[column] = game_id
    return document


def v3_document(game_id: object) -> dict[str, Any]:
    document = copy.deepcopy(_fixture("v3/game.json"))
    document["game"]["gameId"] = game_id
    return document


def live_document(game_id: object) -> dict[str, Any]:
    document = copy.deepcopy(_fixture("live/playbyplay_0022000901.json"))
    document["game"]["gameId"] = game_id
    return document


FORMATS: dict[str, tuple[Callable[[object], dict[str, Any]], Callable[[object, str], FeedGame]]] = {
    "v2": (v2_document, stats_v2.parse),
    "v3": (v3_document, stats_v3.parse),
    "live": (live_document, live.parse),
}


def outcome(feed_format: str, game_id: object) -> Outcome:
    """What the format makes of its fixture with this game id: the game's header, a refusal or an error."""
    build, parse = FORMATS[feed_format]
    try:
        game = parse(build(game_id), SOURCE)
    except UnsupportedGameError as refusal:
        return ("refused", str(refusal))
    except FeedError as error:
        return ("error", str(error))
    return ("read", game.game_id, game.league, game.season, game.season_type)


def expected(game_id: str) -> Outcome:
    """The rule, written out: NBA and G League regular season and playoffs are read, all else refused by name."""
    league_code, digit, yy = game_id[:2], game_id[2], int(game_id[3:5])
    if (league_code, digit) in READ:
        league_name, season_type_name = READ[league_code, digit]
        first = (1900 if yy >= 46 else 2000) + yy
        return ("read", int(game_id), league_name, f"{first}-{str(first + 1)[2:]}", season_type_name)
    league = LEAGUE_NAMES.get(league_code, f"a league-{league_code}")
    season_type = SEASON_TYPE_NAMES.get(digit, f"season-type-{digit}")
    return ("refused", f"{SOURCE}: game {game_id} is {league} {season_type} game; {READ_GAMES}")


def test_the_table_reads_exactly_four_kinds_of_game() -> None:
    ids = [f"{league}{digit}1600001" for league in LEAGUE_CODES for digit in SEASON_DIGITS]
    read = [game_id for game_id in ids if expected(game_id)[0] == "read"]
    assert read == ["0021600001", "0041600001", "2021600001", "2041600001"]


@pytest.mark.parametrize("league_code", LEAGUE_CODES)
@pytest.mark.parametrize("digit", SEASON_DIGITS)
def test_every_format_gives_the_same_answer_for_every_league_and_season_type(league_code: str, digit: str) -> None:
    game_id = f"{league_code}{digit}1600123"
    answers = {feed_format: outcome(feed_format, game_id) for feed_format in FORMATS}
    assert answers == dict.fromkeys(FORMATS, expected(game_id))


@pytest.mark.parametrize(
    ("game_id", "season"),
    [("0024600001", "1946-47"), ("0029900001", "1999-00"), ("0020000001", "2000-01"), ("0024500001", "2045-46"),
     ("2041900001", "2019-20")],
)  # fmt: skip
def test_yy_is_the_first_year_46_to_99_in_the_1900s(game_id: str, season: str) -> None:
    assert {outcome(feed_format, game_id)[3] for feed_format in FORMATS} == {season}


@settings(max_examples=60, deadline=None)
@given(
    league_code=st.sampled_from(["00", "20", "10", "01"]) | st.integers(0, 99).map("{:02d}".format),
    digit=st.integers(0, 9).map(str),
    yy=st.integers(0, 99),
    number=st.integers(0, 99999),
)
def test_any_game_id_gets_one_answer_across_formats(league_code: str, digit: str, yy: int, number: int) -> None:
    game_id = f"{league_code}{digit}{yy:02d}{number:05d}"
    answers = {feed_format: outcome(feed_format, game_id) for feed_format in FORMATS}
    assert answers == dict.fromkeys(FORMATS, expected(game_id))


@pytest.mark.parametrize("game_id", ["22000901", "00220009011", "002200090a", "", " 0022000901", "0022OOO901"])
def test_a_malformed_game_id_is_the_same_feed_error_everywhere(game_id: str) -> None:
    message = f"{SOURCE}: game id {game_id!r} is not a ten-digit NBA game id (LLSyyNNNNN)"
    assert {feed_format: outcome(feed_format, game_id) for feed_format in FORMATS} == dict.fromkeys(
        FORMATS, ("error", message)
    )


@pytest.mark.parametrize(("number", "text"), [(21600123, "0021600123"), (1022200034, "1022200034")])
def test_a_json_number_is_the_id_without_its_leading_zeros(number: int, text: str) -> None:
    # The live feed's gameId is always text (a number there is not a live document); v2 and v3 take both.
    for feed_format in ("v2", "v3"):
        assert outcome(feed_format, number) == expected(text)


def test_game_kind_names_its_fields() -> None:
    kind = game_kind("2041900001", SOURCE)
    assert kind == GameKind(game_id=2041900001, league="gleague", season="2019-20", season_type="playoffs")
    with pytest.raises(FeedError, match=r"^g\.json: game id True is not") as caught:
        game_kind(True, SOURCE)
    assert not isinstance(caught.value, UnsupportedGameError)
