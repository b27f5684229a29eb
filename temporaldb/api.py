"""The notebook API: `temporaldb.connect()` and a Client that answers as-of questions, panels and standings.

    import temporaldb

    with temporaldb.connect() as db:  # $TEMPORALDB_DSN, else the local server as analyst
        line = db.asof("Kobe Bryant", "2016-06-19T19:02:34.560-05:00")
        season = db.panel(players="all", start="2015-10-27", end="2016-04-14", every="1d")
        table = db.standings("2016-03-01T12:00Z")

The names, moments and panels are resolved by the same code as `temporaldb asof` and `temporaldb panel`
(asof.py, moments.py, panelquery.py). DataFrames need pandas, the optional extra `temporaldb[analysis]`; the
rest of the package does not.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, Self

from temporaldb import asof, moments, panelquery

if TYPE_CHECKING:
    import pandas as pd
    import psycopg

ALL = "all"
Subjects = Sequence[str | int] | Literal["all"] | None
Moment = dt.datetime | str
PANDAS_MISSING = "DataFrames need pandas: pip install 'temporaldb[analysis]'"


def connect(dsn: str | None = None, *, stack: str | None = None, role: str = "analyst") -> Client:
    """A client on `dsn`, else a deployed stack's database (found from the Pulumi project of the current folder),
    else $TEMPORALDB_DSN, else the local server; `role` is the login role for a stack or the local server."""
    import psycopg

    from temporaldb import deployed
    from temporaldb.db import resolve_dsn

    deployed.check_role(role)
    request = None
    if stack is not None:
        from temporaldb.stackconfig import find_project_root

        request = deployed.StackRequest(stack=stack, role=role, project_root=find_project_root(Path.cwd()))
    return Client(psycopg.connect(resolve_dsn(dsn, role=role, stack=request), autocommit=True))


class Client:
    """One connection; use it as a context manager, or call close()."""

    def __init__(self, connection: psycopg.Connection[Any]) -> None:
        self.connection = connection

    def asof(
        self, subject: str | int, at: Moment, *, team: bool = False, scope: str | None = None,
        season_type: str = "regular", tz: str | None = None,
    ) -> dict[str, Any]:  # fmt: skip
        """A player's (or, with team=True, a team's) stat line at `at`, as `temporaldb asof --json` prints it."""
        moment = _moment(at, tz, "at")
        found = asof.resolve_subject(self.connection, str(subject), team=team)
        answer = asof.stats_as_of(self.connection, found, moment, scope or asof.default_scope(team), season_type)
        return asof.document(answer)

    def panel(
        self, players: Subjects = None, teams: Subjects = None, *, start: Moment, end: Moment, every: str = "1d",
        roster: str | int | None = None, scope: str = "career", season_type: str = "regular", tz: str | None = None,
    ) -> pd.DataFrame:  # fmt: skip
        """Stat lines of `players` or `teams` (ids or names, or "all"), or of a team's `roster`, from `start` to
        `end` every `every` ("1d", "6h", "15m", ... or "game"), as `temporaldb panel` writes them: one row per
        subject and moment, `as_of` in UTC, ids and stats int64."""
        pandas_required()
        import pyarrow as pa

        from temporaldb import panelfetch
        from temporaldb.panelwrite import arrow_schema

        who = _who(players, teams, roster)
        span = moments.parse_span(_text(start), _text(end), tz, ("start", "end"))
        step = moments.parse_step(every, "every")
        when = panelquery.When(span, step, scope, season_type)
        labels = panelquery.Labels(players="players", team="roster" if roster is not None else "teams")
        with panelquery.snapshot(self.connection):
            panel = panelquery.plan(self.connection, who, when, labels)
            tables = list(panelfetch.tables(self.connection, panel))
        return pa.concat_tables(tables or [arrow_schema(panel.id_column).empty_table()]).to_pandas()

    def standings(self, at: Moment, season: str | None = None, *, tz: str | None = None) -> pd.DataFrame:
        """nba.standings_as_of: one row per team of the season in progress at `at` (or of `season`)."""
        pandas_required()
        import pandas as pd

        cursor = self.connection.execute("select * from nba.standings_as_of(%s, %s)", (_moment(at, tz, "at"), season))
        names = [column.name for column in cursor.description or ()]
        frame = pd.DataFrame.from_records(cursor.fetchall(), columns=names)
        # numeric (Decimal) in SQL, float here; NULL win_pct (no game decided yet) becomes NaN
        return frame.astype({"win_pct": "float64", "games_behind": "float64"})

    def close(self) -> None:
        self.connection.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()


def pandas_required() -> None:
    """Check that pandas is there, before any work: an ImportError saying how to install it."""
    try:
        import pandas  # noqa: F401 (imported to be checked)
    except ImportError:
        raise ImportError(PANDAS_MISSING) from None


def _who(players: Subjects, teams: Subjects, roster: str | int | None) -> panelquery.Who:
    given = [name for name, value in (("players", players), ("teams", teams), ("roster", roster)) if value is not None]
    if len(given) != 1:
        raise panelquery.PanelError(f"give one of players, teams or roster (got {', '.join(given) or 'none'})")
    if roster is not None:
        return panelquery.Who("player", roster=str(roster))
    kind, subjects = ("player", players) if players is not None else ("team", teams)
    if subjects == ALL:
        return panelquery.Who(kind)
    if isinstance(subjects, str):  # one name: a list of its characters is never what was meant
        subjects = [subjects]
    return panelquery.Who(kind, names=tuple(str(subject) for subject in subjects or ()))


def _text(value: Moment) -> str:
    return value if isinstance(value, str) else value.isoformat()


def _moment(value: Moment, tz: str | None, name: str) -> dt.datetime:
    return moments.parse_time(_text(value), tz, name)
