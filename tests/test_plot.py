"""`temporaldb plot race|standings` on a real PostgreSQL with the small league of tests/panelfixtures.py.

The figures are checked as objects, not pixels: axis labels, one line per subject drawn as steps through the
panel's values, the --at line; the commands write real PNG and SVG files, and refuse bad input in one line
without leaving a file.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import psycopg
import pytest
from matplotlib.dates import date2num
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from temporaldb import moments, panelquery, plot
from temporaldb.cli import EXIT_BAD_INPUT, EXIT_OK, EXIT_USAGE
from tests.nbadata import UTC
from tests.panelfixtures import GAME_ENDS, SPAN, load_league, run, sql_panel
from tests.test_load import HAYWARD, KOBE

PNG = b"\x89PNG\r\n\x1a\n"
AT = dt.datetime(2016, 4, 12, tzinfo=UTC)


@pytest.fixture
def league(database: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    return load_league(database, tmp_path_factory.mktemp("league"))


def lines(figure: Figure, gid: str) -> list[Line2D]:
    return [line for line in figure.axes[0].get_lines() if line.get_gid() == gid]


def test_race_figure_has_a_step_line_per_subject_and_the_as_of_line(league: str) -> None:
    span = moments.parse_span(*SPAN, None)
    when = panelquery.When(span, None, "season", "regular")
    who = panelquery.Who("player", names=("Kobe Bryant", str(HAYWARD)))
    with psycopg.connect(league, autocommit=True) as connection:
        figure = plot.race_picture(connection, who, when, stat="points", at=AT)
    axes = figure.axes[0]
    assert axes.get_ylabel() == "points (season, regular season)"
    assert axes.get_xlabel() == "time (UTC)"
    drawn = lines(figure, plot.SERIES_GID)
    assert [line.get_label() for line in drawn] == ["Kobe Bryant", "Gordon Hayward"]  # by id
    assert {line.get_drawstyle() for line in drawn} == {"steps-post"}
    # Kobe's line goes through the panel's values at the span's ends, the ends of his games and --at
    kobe = drawn[0]
    ends = sorted(end for game, end in GAME_ENDS.items() if span.start <= end <= span.end and game != 41500101)
    marks = sorted({span.start, span.end, AT, *ends})
    expected = sql_panel(league, "player", [KOBE], marks, "season")
    assert list(kobe.get_xdata()) == [np.datetime64(mark.replace(tzinfo=None), "us") for mark in marks]  # UTC
    assert list(kobe.get_ydata()) == [row[3] for row in expected]
    # the as-of line: vertical, at --at, in the legend
    (as_of,) = lines(figure, plot.AS_OF_GID)
    assert list(as_of.get_xdata()) == [date2num(AT)] * 2
    assert as_of.get_label().startswith("as of 2016-04-12")
    assert "as of 2016-04-12" in [text.get_text() for text in axes.get_legend().get_texts()]


def test_race_without_at_has_no_vertical_line(league: str) -> None:
    span = moments.parse_span(*SPAN, None)
    with psycopg.connect(league, autocommit=True) as connection:
        figure = plot.race_picture(
            connection, panelquery.Who("team", names=("LAL", "UTA", "GSW")), panelquery.When(span, None),
            stat="rebounds", zone=moments.output_zone("America/New_York"),
        )  # fmt: skip
    assert len(lines(figure, plot.SERIES_GID)) == 3
    assert lines(figure, plot.AS_OF_GID) == []
    assert figure.axes[0].get_xlabel() == "time (America/New_York)"
    assert figure.axes[0].get_ylabel() == "rebounds (career, regular season)"


@pytest.mark.parametrize(("metric", "label"), [("diff", "wins minus losses"), ("pct", "win %")])
def test_standings_figure_has_a_line_per_team(league: str, metric: str, label: str) -> None:
    with psycopg.connect(league, autocommit=True) as connection:
        figure = plot.standings_picture(connection, "2015-16", metric=metric)
    axes = figure.axes[0]
    assert axes.get_ylabel() == label
    drawn = lines(figure, plot.SERIES_GID)
    assert sorted(line.get_label() for line in drawn) == ["GSW", "LAL", "UTA"]
    # each line ends at the regular season's final record: LAL won G1 and both hand-made games and lost G3 (3-1),
    # UTA won G2 only (1-3), GSW G3 but not G2 (1-1); G4 has no event and decides nothing
    final = {line.get_label(): line.get_ydata()[-1] for line in drawn}
    expected = {"LAL": 2.0, "UTA": -2.0, "GSW": 0.0} if metric == "diff" else {"LAL": 75.0, "UTA": 25.0, "GSW": 50.0}
    assert final == pytest.approx(expected)
    # every team labelled at the end of its line
    assert sorted(text.get_text() for text in axes.texts) == ["GSW", "LAL", "UTA"]


def test_labels_are_spread_within_the_axis() -> None:
    # apart, a label stays at its value; crowded ones centre on their mean, 5 apart (5% of 0..100) ...
    assert plot._spread([10, 50, 90], 0, 100, 0.05) == [10, 50, 90]
    assert plot._spread([40, 40, 41], 0, 100, 0.05) == pytest.approx([35.33, 40.33, 45.33], abs=0.01)
    # ... and within the axis: this group's centre would put its lowest label at -5.98
    assert plot._spread([0, 0, 0, 10, 10.1], 0, 100, 0.05) == pytest.approx([0, 5, 10, 15, 20])


@pytest.mark.parametrize("suffix", [".png", ".svg"])
def test_the_commands_write_pictures(
    league: str, capsys: pytest.CaptureFixture[str], tmp_path: Path, suffix: str
) -> None:
    race = tmp_path / f"race{suffix}"
    code, out, err = run(capsys, "plot", "race", "--players", f"{KOBE},Gordon Hayward", "--from", SPAN[0],
                         "--to", SPAN[1], "--at", "2016-04-12", "--scope", "season", "--out", str(race),
                         "--dsn", league)  # fmt: skip
    assert (code, out) == (EXIT_OK, f"{race}\n"), err
    standings = tmp_path / f"standings{suffix}"
    code, _, err = run(capsys, "plot", "standings", "--season", "2015-16", "--out", str(standings), "--dsn", league)
    assert code == EXIT_OK, err
    for picture in (race, standings):
        content = picture.read_bytes()
        assert content.startswith(PNG) if suffix == ".png" else b"<svg" in content[:500]
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted([race.name, standings.name])


ELEVEN = ",".join(["977"] * 11)
BAD = [
    (("race", "--players", ELEVEN, "--from", SPAN[0], "--to", SPAN[1]), EXIT_BAD_INPUT, "--players: 11 subjects"),
    (("race", "--teams", "Nowhere", "--from", SPAN[0], "--to", SPAN[1]), EXIT_BAD_INPUT, "--teams: no team named"),
    (("race", "--players", "977", "--from", SPAN[0], "--to", SPAN[1], "--at", "2017-01-01"), EXIT_BAD_INPUT,
     "--at 2017-01-01T00:00:00+00:00 is outside --from .. --to"),
    (("race", "--players", "977", "--from", "2016-01-09T00:00", "--to", SPAN[1]), EXIT_BAD_INPUT, "--from "),
    (("standings", "--season", "2015"), EXIT_BAD_INPUT, "--season '2015' is not a season such as 2015-16"),
    (("standings", "--season", "1999-00"), EXIT_BAD_INPUT, "--season 1999-00: no regular-season game"),
]  # fmt: skip


@pytest.mark.parametrize(("args", "code", "message"), BAD, ids=[message.split(" ")[0] for *_, message in BAD])
def test_bad_input_is_one_line_and_leaves_no_file(
    league: str, capsys: pytest.CaptureFixture[str], tmp_path: Path, args: tuple[str, ...], code: int, message: str
) -> None:
    result = run(capsys, "plot", *args, "--out", str(tmp_path / "picture.png"), "--dsn", league)
    assert result[:2] == (code, "")
    assert result[2].count("\n") == 1, result[2]
    assert result[2].startswith(f"temporaldb plot: {message}"), result[2]
    assert list(tmp_path.iterdir()) == []


def test_out_must_be_a_picture_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, "plot", "standings", "--season", "2015-16", "--out", str(tmp_path / "s.jpg"),
                       "--dsn", f"host={tmp_path} dbname=nowhere")  # fmt: skip
    assert code == EXIT_USAGE  # refused before connecting
    assert (
        err
        == f"temporaldb plot: --out {tmp_path / 's.jpg'}: the picture is written as .png or .svg; name the file so\n"
    )
    assert list(tmp_path.iterdir()) == []
