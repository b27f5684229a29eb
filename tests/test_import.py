"""`temporaldb import`: feed documents into a real server, reconciled with their box scores before the commit.

The pair that shares a game: tests/fixtures/feeds/v2/nba_regular.json (playbyplayv2, game 0021600901) and
tests/fixtures/feeds/box_0021600901/ (its boxscoretraditionalv2 + boxscoresummaryv2, written for it).
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
import shutil
import tracemalloc
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import psycopg
import pytest

from temporaldb.cli import EXIT_BAD_INPUT, EXIT_OK, main
from temporaldb.feeds import command, grouping, importer, parallel
from temporaldb.feeds.model import FeedError
from temporaldb.feeds.reconcile import Difference, GameResult, Reconciliation
from temporaldb.feeds.sources import decode
from tests import drill_fixtures
from tests.test_load import fingerprint

FEEDS = Path(__file__).resolve().parent / "fixtures" / "feeds"
PBP_V2 = FEEDS / "v2" / "nba_regular.json"
BOX_V2 = FEEDS / "box_0021600901"
LIVE = FEEDS / "live" / "playbyplay_0022000901.json"
OTHER_GAME_BOX = FEEDS / "box" / "traditional_v2.json"
GAME = 21600901
HOME, AWAY = 1610612790, 1610612791
BUCKET = "import-feeds"


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def stored_events(dsn: str, game_id: int) -> list[tuple[object, ...]]:
    with psycopg.connect(dsn) as connection:
        return connection.execute(
            "select game_id, event_num, period, clock, wall_clock_time, event_type, team_id, player_id,"
            " secondary_player_id, points, is_three, foul_kind, ft_value, source_event_id"
            " from nba.play_by_play where game_id = %s order by event_num",
            (game_id,),
        ).fetchall()


def as_stored(row: list[str]) -> tuple[object, ...]:
    """A canonical events.csv row in the types the database returns."""
    whole = (0, 1, 2, 6, 7, 8, 9, 12)
    values: list[object] = [int(text) if i in whole and text else (text or None) for i, text in enumerate(row)]
    values[4] = dt.datetime.fromisoformat(row[4])
    values[10] = row[10] == "true"
    return tuple(values)


def expected_events(*sources: str) -> list[tuple[object, ...]]:
    """The events the importer writes for these sources, as the database returns them."""
    with importer.prepare(sources) as prepared, (prepared.folder / "events.csv").open(encoding="utf-8") as handle:
        return [as_stored(row) for row in list(csv.reader(handle))[1:]]


def test_events_loaded_equal_the_canonical_rows(database: str, capsys: pytest.CaptureFixture[str]) -> None:
    expected = expected_events(str(PBP_V2), str(BOX_V2))
    code, out, err = run(capsys, "import", str(PBP_V2), "--box", str(BOX_V2), "--dsn", database)
    assert code == EXIT_OK, err
    assert stored_events(database, GAME) == expected
    assert out.startswith(f"imported 1 games [0021600901 (v2)]: {len(expected)} events, {len(expected)} new or changed")
    assert "skipped feed rows 4: v2:11 ejection 1" in out
    # The summary's date (GAME_DATE_EST) with the feed's start-of-period clock, "7:10 PM" US Eastern.
    assert "assumed" not in err
    with psycopg.connect(database) as connection:
        row = connection.execute("select tipoff_at from nba.games where game_id = %s", (GAME,)).fetchone()
    assert row is not None
    assert row[0] == dt.datetime(2017, 3, 1, 0, 10, tzinfo=dt.UTC)


def test_without_a_clock_in_the_feed_the_tipoff_is_an_assumption_and_said(
    database: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = json.loads(PBP_V2.read_text(encoding="utf-8"))
    result = document["resultSets"][0]
    for row in result["rowSet"]:
        row[result["headers"].index("WCTIMESTRING")] = None
    no_clock = tmp_path / "pbp.json"
    no_clock.write_text(json.dumps(document), encoding="utf-8")
    report = tmp_path / "report.txt"
    code, _, err = run(capsys, "import", str(no_clock), str(BOX_V2), "--report", str(report), "--dsn", database)
    assert code == EXIT_OK, err
    assert "tip-off assumed at 19:00 US Eastern (2017-02-28T19:00:00-05:00)" in err
    text = report.read_text(encoding="utf-8")
    assert text.startswith("outcome: imported\nassumption: game 0021600901: the box score gives only the date")
    with psycopg.connect(database) as connection:
        row = connection.execute("select tipoff_at from nba.games where game_id = %s", (GAME,)).fetchone()
    assert row is not None
    assert row[0] == dt.datetime(2017, 3, 1, 0, 0, tzinfo=dt.UTC)


def test_a_second_import_changes_nothing(database: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first, second = tmp_path / "first.json", tmp_path / "second.json"
    assert run(capsys, "import", str(PBP_V2), str(BOX_V2), "--report", str(first), "--dsn", database)[0] == EXIT_OK
    before = fingerprint(database)
    code, out, _ = run(capsys, "import", str(PBP_V2), str(BOX_V2), "--report", str(second), "--dsn", database)
    assert code == EXIT_OK
    assert "0 new or changed, 0 removed" in out
    assert fingerprint(database) == before
    # Reconciled from the load's own lines the first time (the game changed), from nba.event_credits the
    # second (it did not): the same report.
    assert (
        json.loads(first.read_text(encoding="utf-8"))["games"]
        == json.loads(second.read_text(encoding="utf-8"))["games"]
    )
    assert json.loads(second.read_text(encoding="utf-8"))["games"][0]["differences"]


def test_a_reimport_replaces_events_the_feed_no_longer_has(
    database: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "import", str(PBP_V2), str(BOX_V2), "--dsn", database)[0] == EXIT_OK
    document = json.loads(PBP_V2.read_text(encoding="utf-8"))
    rows = document["resultSets"][0]["rowSet"]
    document["resultSets"][0]["rowSet"] = [row for row in rows if row[4] != 2]  # period 2: no stat
    shorter = tmp_path / "pbp.json"
    shorter.write_text(json.dumps(document), encoding="utf-8")
    code, out, err = run(capsys, "import", str(shorter), str(BOX_V2), "--dsn", database, "--strict")
    assert code == EXIT_OK, err
    expected = expected_events(str(shorter), str(BOX_V2))
    assert f"{len(expected)} events, 0 new or changed, 2 removed" in out  # period 2's start and end
    assert stored_events(database, GAME) == expected


def test_a_box_that_agrees_reconciles_with_known_causes_only(
    database: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "report.json"
    code, out, err = run(
        capsys, "import", str(PBP_V2), "--box", str(BOX_V2), "--strict", "--report", str(report), "--dsn", database
    )
    assert code == EXIT_OK, err
    assert "reconciled 1 games (9 player and team lines) with their box scores: 0 unexplained differences" in out
    document = json.loads(report.read_text(encoding="utf-8"))
    assert document["unexplained"] == 0
    assert document["outcome"] == "imported"
    differences = document["games"][0]["differences"]
    # The home team's 3 team rebounds (2 offensive, 1 defensive) are in its play-by-play line only.
    assert {(d["subject_id"], d["stat"], d["difference"], d["known_cause"]) for d in differences} == {
        (HOME, "oreb", 2, "team rebounds"),
        (HOME, "dreb", 1, "team rebounds"),
    }
    text_report = tmp_path / "report.txt"
    assert run(capsys, "import", str(PBP_V2), str(BOX_V2), "--report", str(text_report), "--dsn", database)[0] == 0
    text = text_report.read_text(encoding="utf-8")
    assert text.startswith("outcome: imported\nreconciled 1 games")
    assert "oreb: play-by-play 2, box score 0 (+2) (known cause: team rebounds)" in text


def tampered_box(tmp_path: Path) -> Path:
    """The box score with one stat changed: Al Away (9101) with 2 assists instead of 1."""
    folder = tmp_path / "tampered"
    shutil.copytree(BOX_V2, folder)
    path = folder / "traditional_v2.json"
    document = json.loads(path.read_text(encoding="utf-8"))
    players = document["resultSets"][0]
    column = players["headers"].index("AST")
    row = next(row for row in players["rowSet"] if row[4] == 9101)
    row[column] = 2
    path.write_text(json.dumps(document), encoding="utf-8")
    return folder


def test_a_tampered_box_fails_strict_and_changes_nothing(
    database: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "import", str(LIVE), "--dsn", database)[0] == EXIT_OK  # something already there
    before = fingerprint(database)
    report = tmp_path / "strict.txt"
    box = tampered_box(tmp_path)
    code, out, err = run(
        capsys, "import", str(PBP_V2), "--box", str(box), "--strict", "--report", str(report), "--dsn", database
    )
    assert code == EXIT_BAD_INPUT
    assert out == ""
    assert (
        "temporaldb import: 1 unexplained differences between the play-by-play and the box score: game 0021600901 "
        "player 9101 (Al Away) assists: play-by-play 1, box score 2 (-1)\n" in err
    )
    assert err.endswith("temporaldb import: nothing was changed\n")
    assert fingerprint(database) == before
    assert report.read_text(encoding="utf-8").startswith("outcome: refused (--strict): nothing was changed\n")
    # Without --strict the same import loads, and says what differs.
    code, out, err = run(capsys, "import", str(PBP_V2), "--box", str(box), "--dsn", database)
    assert code == EXIT_OK
    assert "1 unexplained differences" in out
    assert "player 9101 (Al Away) assists: play-by-play 1, box score 2 (-1)" in err


def test_a_box_of_another_game_is_a_one_line_error(database: str, capsys: pytest.CaptureFixture[str]) -> None:
    before = fingerprint(database)
    code, out, err = run(capsys, "import", str(PBP_V2), str(BOX_V2), "--box", str(OTHER_GAME_BOX), "--dsn", database)
    assert code == EXIT_BAD_INPUT
    assert (out, err.splitlines()) == (
        "",
        [
            f"temporaldb import: {OTHER_GAME_BOX}: box score of game 0021900101, but no play-by-play of that game "
            "is among the sources",
            "temporaldb import: nothing was changed",
        ],
    )
    assert fingerprint(database) == before


def test_an_unknown_document_is_a_one_line_error_naming_it(
    database: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stray = tmp_path / "stray.json"
    stray.write_text(json.dumps({"resultSets": [{"name": "Something", "headers": [], "rowSet": []}]}))
    code, _, err = run(capsys, "import", str(PBP_V2), str(BOX_V2), str(stray), "--dsn", database)
    assert code == EXIT_BAD_INPUT
    first = err.splitlines()[0]
    assert first.startswith(f"temporaldb import: {stray}: not a known feed document (expected a playbyplayv2")
    assert "Traceback" not in err


def test_an_event_a_day_after_its_game_is_a_one_line_error_and_changes_nothing(
    database: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "import", str(PBP_V2), str(BOX_V2), "--dsn", database)[0] == EXIT_OK
    before = fingerprint(database)
    document = json.loads(LIVE.read_text(encoding="utf-8"))
    late = next(action for action in document["game"]["actions"] if action["actionType"] == "2pt")
    late["timeActual"] = "2099-01-01T00:00:00.0Z"
    bad = tmp_path / "late.json"
    bad.write_text(json.dumps(document), encoding="utf-8")
    code, _, err = run(capsys, "import", str(bad), "--dsn", database)
    assert code == EXIT_BAD_INPUT
    assert err.splitlines()[0].startswith(f"temporaldb import: {bad}: event {late['actionNumber']}: its time 2099-")
    assert fingerprint(database) == before


def test_a_play_by_play_without_a_clock_needs_its_box_score(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(FeedError, match=r"game 0021600901 has no tip-off time: .* give its box score"):
        importer.prepare([str(PBP_V2)])
    code, _, err = run(capsys, "import", str(PBP_V2), "--dsn", "postgresql:///never-reached")
    assert code == EXIT_BAD_INPUT
    assert "give its box score" in err


def test_format_and_box_options_refuse_the_wrong_documents() -> None:
    assert command.FORMAT_CHOICES == importer.FORMAT_CHOICES
    with pytest.raises(FeedError, match=r"nba_regular.json: a playbyplayv2 document, but --format live was given"):
        importer.prepare([str(PBP_V2), str(BOX_V2)], feed_format="live")
    with pytest.raises(FeedError, match=r"given with --box but it is a live play-by-play, not a box score"):
        importer.prepare([str(PBP_V2), str(BOX_V2)], [str(LIVE)])
    with pytest.raises(FeedError, match=r"a second play-by-play of game 0021600901"):
        importer.prepare([str(PBP_V2), str(PBP_V2), str(BOX_V2)])


def test_a_range_box_is_used_for_names_only(tmp_path: Path) -> None:
    folder = tmp_path / "with-range"
    shutil.copytree(BOX_V2, folder)
    document = json.loads((folder / "traditional_v2.json").read_text(encoding="utf-8"))
    document["parameters"].update({"RangeType": 2, "StartRange": 0, "EndRange": 7200})
    (folder / "traditional_v2_range.json").write_text(json.dumps(document), encoding="utf-8")
    with importer.prepare([str(PBP_V2), str(folder)]) as prepared:
        assert [game.boxes for game in prepared.games] == [1]
        assert [(game_id, len(boxes)) for game_id, boxes in prepared.boxes()] == [(GAME, 1)]
        assert len(prepared.notes) == 1
        assert "a range box score (RangeType=2" in prepared.notes[0]
        assert prepared.notes[0].endswith("(used for names only, not reconciled)")


@pytest.fixture
def bucket(emulator: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    drill_fixtures.set_credentials(monkeypatch)
    with drill_fixtures.s3_bucket(emulator, BUCKET) as client:
        yield client


def test_an_s3_source_imports_like_files(
    database: str, bucket: Any, emulator: str, capsys: pytest.CaptureFixture[str]
) -> None:
    for path, key in ((PBP_V2, "2017/pbp.json"), *((p, f"2017/box/{p.name}") for p in sorted(BOX_V2.iterdir()))):
        bucket.put_object(Bucket=BUCKET, Key=key, Body=path.read_bytes())
    code, out, err = run(
        capsys, "import", f"s3://{BUCKET}/2017/", "--endpoint-url", emulator, "--strict", "--dsn", database
    )
    assert code == EXIT_OK, err
    assert "0 unexplained differences" in out
    assert stored_events(database, GAME) == expected_events(str(PBP_V2), str(BOX_V2))


def copies_of_the_game(folder: Path, count: int) -> Path:
    """`count` games: the v2 fixture and its box score under game ids 0021600001, 0021600002, ..."""
    for number in range(1, count + 1):
        game_id = f"00216{number:05d}"
        for path in (PBP_V2, *sorted(BOX_V2.iterdir())):
            text = path.read_text(encoding="utf-8").replace("0021600901", game_id)
            (folder / game_id).mkdir(parents=True, exist_ok=True)
            (folder / game_id / path.name).write_text(text, encoding="utf-8")
    return folder


def peak_while_preparing(folder: Path) -> tuple[int, int]:
    """(games prepared, peak bytes Python allocated meanwhile), preparing in this process (workers=1)."""
    tracemalloc.start()
    try:
        with importer.prepare([str(folder)], workers=1) as prepared:
            games = len(prepared.games)
        return games, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_while_preparing_does_not_grow_with_the_number_of_games(tmp_path: Path) -> None:
    few = peak_while_preparing(copies_of_the_game(tmp_path / "few", 3))
    many = peak_while_preparing(copies_of_the_game(tmp_path / "many", 30))
    assert (few[0], many[0]) == (3, 30)
    # Holding every document (as the importer once did) made the peak grow about tenfold here.
    assert many[1] < 1.5 * few[1], (few, many)


def test_worker_processes_prepare_exactly_what_this_process_does(tmp_path: Path) -> None:
    folder = copies_of_the_game(tmp_path / "games", parallel.PARALLEL_FROM + 3)
    outputs = []
    for workers in (1, 2):
        with importer.prepare([str(folder)], workers=workers) as prepared:
            files = {path.name: path.read_bytes() for path in sorted(prepared.folder.iterdir())}
            outputs.append((files, prepared.games, list(prepared.boxes()), prepared.skipped, prepared.assumptions))
    assert outputs[0] == outputs[1]
    assert len(outputs[0][1]) == parallel.PARALLEL_FROM + 3


def test_a_bad_game_among_many_is_the_same_one_line_error_from_a_worker(tmp_path: Path) -> None:
    folder = copies_of_the_game(tmp_path / "games", parallel.PARALLEL_FROM + 3)
    bad = folder / "0021600007" / PBP_V2.name
    bad.write_bytes(_v2_with(3, PLAYER1_ID=777, PLAYER1_NAME="Nobody").replace(b"0021600901", b"0021600007"))
    for workers in (1, 2):
        with pytest.raises(FeedError, match=rf"^{re.escape(str(bad))}: EVENTNUM 3: player 777 \(Nobody\) is on "):
            importer.prepare([str(folder)], workers=workers)


def _v2_with(event_num: int, **cells: object) -> bytes:
    document = json.loads(PBP_V2.read_text(encoding="utf-8"))
    result = document["resultSets"][0]
    row = next(row for row in result["rowSet"] if row[result["headers"].index("EVENTNUM")] == event_num)
    for name, value in cells.items():
        row[result["headers"].index(name)] = value
    return json.dumps(document).encode()


BAD_PLAY_BY_PLAY = {
    "truncated": (PBP_V2.read_bytes()[:500], r"cut off \(truncated JSON\)"),
    "not JSON": (b"<html>502 Bad Gateway</html>", r"not JSON"),
    "unknown event type": (_v2_with(2, EVENTMSGTYPE=99), r"EVENTNUM 2: .*99"),
    "player on neither roster": (
        _v2_with(3, PLAYER1_ID=777, PLAYER1_NAME="Nobody"),
        r"EVENTNUM 3: player 777 \(Nobody\) is on neither roster of the box score",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_PLAY_BY_PLAY))
def test_a_bad_play_by_play_is_one_line_naming_it_and_changes_nothing(
    case: str, database: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "import", str(PBP_V2), str(BOX_V2), "--dsn", database)[0] == EXIT_OK
    before = fingerprint(database)
    content, message = BAD_PLAY_BY_PLAY[case]
    bad = tmp_path / "pbp.json"
    bad.write_bytes(content)
    code, out, err = run(capsys, "import", str(bad), str(BOX_V2), "--strict", "--dsn", database)
    assert (code, out) == (EXIT_BAD_INPUT, "")
    first, *rest = err.splitlines()
    assert re.match(rf"temporaldb import: {re.escape(str(bad))}: .*{message}", first), first
    assert rest == ["temporaldb import: nothing was changed"]
    assert fingerprint(database) == before


def test_bad_s3_sources_are_one_line_naming_them_and_change_nothing(
    database: str, bucket: Any, emulator: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "import", str(PBP_V2), str(BOX_V2), "--dsn", database)[0] == EXIT_OK
    before = fingerprint(database)
    # An archived object (the raw-feed bucket's lifecycle moved it to Glacier) cannot be read until restored.
    bucket.put_object(Bucket=BUCKET, Key="archived/pbp.json", Body=PBP_V2.read_bytes(), StorageClass="GLACIER")
    cases = {
        f"s3://{BUCKET}/nothing-here/": f"s3://{BUCKET}/nothing-here/: no objects under this prefix",
        f"s3://{BUCKET}/archived/": f"s3://{BUCKET}/archived/pbp.json: cannot read it (InvalidObjectState: ",
    }
    for source, message in cases.items():
        code, out, err = run(capsys, "import", source, "--endpoint-url", emulator, "--dsn", database)
        assert (code, out) == (EXIT_BAD_INPUT, ""), source
        assert err.splitlines()[0].startswith(f"temporaldb import: {message}"), err
        assert err.splitlines()[1:] == ["temporaldb import: nothing was changed"]
    assert fingerprint(database) == before


def _result(game_id: int) -> GameResult:
    differences = [
        Difference(game_id, "t", HOME, f"Herons of game {game_id}", stat, 2, 0, 2, "team rebounds")
        for stat in ("oreb", "dreb", "rebounds", "turnovers")
    ]
    differences.append(Difference(game_id, "p", 9101, f"Al Away {game_id}", "assists", 1, 2, -1, None))
    return GameResult(game_id, f"box_{game_id}.json", 26, differences)


def _held_after_adding(count: int) -> tuple[Reconciliation, int]:
    tracemalloc.start()
    try:
        reconciliation = Reconciliation()
        for game_id in range(count):
            reconciliation.add(_result(game_id))
        return reconciliation, tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()


def test_the_reconciliation_spools_its_games_and_writes_them_back_whole(tmp_path: Path) -> None:
    few, few_bytes = _held_after_adding(100)
    many, many_bytes = _held_after_adding(5000)
    with closing(few), closing(many):
        # What stays in memory per game: its id in two sets; the rest is in the spool file.
        assert many_bytes - few_bytes < 4900 * 500, (few_bytes, many_bytes)  # holding them: about 1,400 a game
        assert (many.unexplained_count, many.explained_count, len(many.unexplained)) == (5000, 20000, 50)
        assert list(many.games()) == [_result(game_id) for game_id in range(5000)]
        report = tmp_path / "report.json"
        with report.open("w", encoding="utf-8") as handle:
            many.write_json(handle, {"outcome": "imported"})
        document = json.loads(report.read_text(encoding="utf-8"))
        assert (document["unexplained"], document["outcome"], len(document["games"])) == (5000, "imported", 5000)
        assert document["games"][7]["differences"][4]["stat"] == "assists"


def test_a_live_feed_cut_off_after_its_beginning_is_the_same_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The first pass may know a live play-by-play from its first bytes; the rest is still read and checked."""
    raw = LIVE.read_bytes()
    cut = tmp_path / "live.json"
    cut.write_bytes(raw[: len(raw) * 2 // 3])
    assert grouping._from_head(grouping.DocumentRef(str(cut), cut), False, "auto") is not None
    code, out, err = run(capsys, "import", str(cut), "--dsn", "postgresql:///never-reached")
    assert (code, out) == (EXIT_BAD_INPUT, "")
    with pytest.raises(FeedError) as decoding:
        decode(str(cut), cut.read_bytes())
    assert err.splitlines()[0] == f"temporaldb import: {decoding.value}"
    # Recognised from its head or decoded whole, a document gets the same classification.
    whole = grouping._classified((grouping.DocumentRef(str(LIVE), LIVE), False, "auto"))
    decoded = grouping._kind_and_game(grouping.DocumentRef(str(LIVE), LIVE).read(), box_only=False, feed_format="auto")
    assert (whole.from_head, (whole.kind, whole.game_id)) == (True, decoded)
    assert grouping._from_head(grouping.DocumentRef(str(LIVE), LIVE), False, "v3") is None
