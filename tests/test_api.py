"""The notebook API (`temporaldb.connect`) on a real PostgreSQL with the small league of tests/panelfixtures.py.

- panel() DataFrames equal the CLI's CSV (players, teams, --all, a roster, game steps), with int64 and UTC types;
- asof() is `temporaldb asof --json`; standings() is nba.standings_as_of with floats for the numeric columns;
- bad arguments are ValueErrors naming the argument; without pandas, an ImportError saying what to install;
- the client closes its connection; importing the package (or `temporaldb --help`) loads no heavy module.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import psycopg
import pytest

import temporaldb
from temporaldb.api import PANDAS_MISSING, Client
from tests.panelfixtures import SPAN, load_league, run
from tests.test_load import KOBE, LAL

PROJECT = Path(__file__).resolve().parent.parent


@pytest.fixture
def league(database: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    return load_league(database, tmp_path_factory.mktemp("league"))


@pytest.fixture
def client(league: str) -> Iterator[Client]:
    with temporaldb.connect(league) as opened:
        yield opened


def cli_frame(capsys: pytest.CaptureFixture[str], dsn: str, *args: str) -> pd.DataFrame:
    """The CLI's CSV as a DataFrame with the API's types."""
    code, out, err = run(capsys, "panel", "--from", SPAN[0], "--to", SPAN[1], "--dsn", dsn, *args)
    assert code == 0, err
    frame = pd.read_csv(io.StringIO(out))
    frame["as_of"] = pd.to_datetime(frame["as_of"], utc=True, format="ISO8601").astype("datetime64[us, UTC]")
    return frame


CASES = [
    ({"players": [KOBE, "Gordon Hayward"]}, ("--players", f"{KOBE},Gordon Hayward"), {}),
    ({"teams": ["LAL"]}, ("--team", "LAL"), {"scope": "season", "season_type": "all"}),
    ({"players": "all"}, ("--all",), {"every": "game", "scope": "game"}),
    ({"teams": "all"}, ("--all", "--teams"), {"every": "12h"}),
    ({"roster": "UTA"}, ("--team", "UTA", "--roster"), {"every": "game"}),
]


@pytest.mark.parametrize(("who", "flags", "options"), CASES, ids=["players", "team", "all", "teams", "roster"])
def test_panel_frames_equal_the_cli_csv(
    client: Client, league: str, capsys: pytest.CaptureFixture[str], who: dict[str, object],
    flags: tuple[str, ...], options: dict[str, str],
) -> None:  # fmt: skip
    frame = client.panel(**who, start=SPAN[0], end=SPAN[1], **options)  # type: ignore[arg-type]
    options = {"every": "1d", **options}
    option_flags = [part for key, value in options.items() for part in (f"--{key.replace('_', '-')}", value)]
    expected = cli_frame(capsys, league, *flags, *option_flags)
    assert len(frame) > 0
    pd.testing.assert_frame_equal(frame, expected)
    assert {str(dtype) for name, dtype in frame.dtypes.items() if name != "as_of"} == {"int64"}
    assert str(frame.dtypes["as_of"]) == "datetime64[us, UTC]"


def test_asof_is_the_cli_answer(client: Client, league: str, capsys: pytest.CaptureFixture[str]) -> None:
    answer = client.asof("kobe bryant", "2016-06-19T19:02:34.560", tz="America/Chicago")
    at = "2016-06-19T19:02:34.560-05:00"
    code, out, _ = run(capsys, "asof", "Kobe Bryant", "--at", at, "--json", "--dsn", league)
    assert code == 0
    cli = json.loads(out)
    assert {**answer, "latency_ms": None} == {**cli, "latency_ms": None}
    team = client.asof(LAL, "2016-04-20T00:00Z", team=True)
    assert (team["scope"], team["subject"]["name"]) == ("season", "Los Angeles Lakers")


def test_standings_are_the_sql_rows(client: Client, league: str) -> None:
    frame = client.standings("2016-04-20T00:00Z")
    with psycopg.connect(league) as connection:
        rows = connection.execute("select * from nba.standings_as_of('2016-04-20T00:00Z')").fetchall()
    assert list(frame.columns[:4]) == ["season", "team_id", "abbreviation", "name"]
    assert [tuple(row) for row in frame.itertuples(index=False)] == [
        (*row[:6], float(row[6]), float(row[7]), *row[8:]) for row in rows
    ]
    assert str(frame.dtypes["win_pct"]) == "float64"
    assert client.standings("2016-04-20", "2014-15")["team_id"].tolist() == [1610612762, 1610612747]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"players": [KOBE], "teams": ["LAL"]}, "give one of players, teams or roster (got players, teams)"),
        ({}, "give one of players, teams or roster (got none)"),
        ({"players": ["Nobody Atall"]}, "players: no player named 'Nobody Atall'"),
        ({"teams": "Nowhere"}, "teams: no team named 'Nowhere'"),
        ({"players": "all", "every": "1w"}, "every '1w' is not a step"),
        ({"players": "all", "start": "2016-01-09T00:00"}, "start '2016-01-09T00:00' has no UTC offset"),
    ],
)
def test_bad_arguments_are_value_errors_naming_them(client: Client, arguments: dict[str, object], message: str) -> None:
    given = {"start": SPAN[0], "end": SPAN[1], **arguments}
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        client.panel(**given)  # type: ignore[arg-type]


def test_without_pandas_the_error_says_what_to_install(client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pandas", None)  # import pandas now raises ImportError
    with pytest.raises(ImportError, match=r"pip install 'temporaldb\[analysis\]'") as caught:
        client.panel(players="all", start=SPAN[0], end=SPAN[1])
    assert str(caught.value) == PANDAS_MISSING
    assert client.asof(KOBE, "2016-04-20T00:00Z")["stats"]["points"] > 0  # the rest works without pandas


def test_the_client_closes_its_connection(league: str) -> None:
    with temporaldb.connect(league) as client:
        assert not client.connection.closed
    assert client.connection.closed


def test_imports_stay_light() -> None:
    """`import temporaldb` loads no driver, and `temporaldb --help` none of the heavy modules."""
    heavy = ("pyarrow", "matplotlib", "pandas", "numpy", "pulumi_aws", "psycopg")
    script = """
import contextlib, io, json, sys
import temporaldb
package = sorted({name.split(".")[0] for name in sys.modules})
from temporaldb import cli
with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):
    cli.main(["--help"])
print(json.dumps([package, sorted({name.split(".")[0] for name in sys.modules})]))
"""
    out = subprocess.run([sys.executable, "-c", script], cwd=PROJECT, capture_output=True, text=True, check=True)
    package, helped = json.loads(out.stdout)
    assert not set(package) & set(heavy)
    assert not set(helped) & set(heavy)
