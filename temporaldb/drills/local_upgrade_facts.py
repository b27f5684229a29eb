"""What must survive the local upgrade, measured on one cluster: `collect_facts(cluster, questions)`.

Server version, locale and data-checksum setting, schema version and checksum, per table the exact row count and
a digest of every row's content, the model's roles and their groups, the installed extensions, and the answers
(as `analyst`) of canary as-of questions that `choose_canaries` picks from the loaded data. `Facts.differences`
compares two measurements, the server version aside.

More than temporaldb.drills.facts holds (what the restore and RDS drills compare): the drill owns both clusters,
so it reads the catalogs and every table as the superuser; only the canaries are asked as `analyst`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, NamedTuple

from psycopg import sql

from temporaldb import roles
from temporaldb.demo import HEADLINE_MOMENT
from temporaldb.drills.local_upgrade_clusters import DrillCluster
from temporaldb.drills.upgrade_prechecks import Connection
from temporaldb.migrate import history_checksum

SPORT: Final = "nba"
DATABASE: Final = roles.database_name(SPORT)
DATA_SCHEMAS: Final = roles.MANAGED_SCHEMAS


class Question(NamedTuple):
    """An as-of question: `nba.<function>(subject_id, at, scope, season_type)`."""

    function: str
    subject_id: int
    at: dt.datetime
    scope: str
    season_type: str


@dataclass(frozen=True)
class Canary:
    """One as-of question and the answer the source gave (the 16 stat columns, in the API's order)."""

    function: str
    subject_id: int
    at: str
    """ISO 8601 instant."""
    scope: str
    season_type: str
    answer: tuple[int, ...]

    @property
    def question(self) -> str:
        return f"nba.{self.function}({self.subject_id}, '{self.at}', '{self.scope}', '{self.season_type}')"


@dataclass(frozen=True)
class Facts:
    """What must survive the upgrade, as measured on one cluster."""

    server_version: str
    server_version_num: int
    locale: str
    """Encoding, locale provider, LC_COLLATE and LC_CTYPE of template0, e.g. `UTF8 c C C`."""
    data_checksums: bool
    schema_version: int
    schema_checksum: str
    """As temporaldb migrate computes it over the applied migrations (version and SHA-256 of each file)."""
    row_counts: dict[str, int]
    digests: dict[str, str]
    """Per table: the sum of a stable hash of every row's text; any changed value changes it."""
    roles: dict[str, list[str]]
    """The model's roles and the groups each is a member of."""
    extensions: list[str]
    canaries: tuple[Canary, ...]

    def differences(self, other: Facts) -> list[str]:
        """What differs in `other`, the server version aside (an upgrade changes it by design)."""
        found = [
            f"{name}: {mine!r} before, {theirs!r} after"
            for name in ("locale", "data_checksums", "schema_version", "schema_checksum", "roles", "extensions")
            if (mine := getattr(self, name)) != (theirs := getattr(other, name))
        ]
        for table in sorted(self.row_counts.keys() | other.row_counts.keys()):
            before, after = self.row_counts.get(table), other.row_counts.get(table)
            if before != after:
                found.append(f"{table}: {before} rows before, {after} after")
            elif self.digests.get(table) != other.digests.get(table):
                found.append(f"{table}: same row count, different content")
        answers = {canary.question: canary.answer for canary in other.canaries}
        for canary in self.canaries:
            after_answer = answers.get(canary.question)
            if after_answer != canary.answer:
                found.append(f"{canary.question}: {canary.answer} before, {after_answer} after")
        if len(self.canaries) != len(other.canaries):
            found.append(f"{len(self.canaries)} canary answers before, {len(other.canaries)} after")
        return found


_TABLES = """
select quote_ident(n.nspname) || '.' || quote_ident(c.relname)
from pg_class c join pg_namespace n on n.oid = c.relnamespace
where n.nspname = any(%s) and c.relkind in ('r', 'p') and not c.relispartition
order by 1
"""

_ROLES = """
select r.rolname,
       coalesce(array_agg(distinct g.rolname order by g.rolname) filter (where g.rolname is not null), '{}')
from pg_roles r
left join pg_auth_members m on m.member = r.oid
left join pg_roles g on g.oid = m.roleid
where r.rolname = any(%s)
group by r.rolname
order by r.rolname
"""

_LOCALE = """
select pg_encoding_to_char(encoding) || ' ' || datlocprovider::text || ' ' || datcollate || ' ' || datctype
from pg_database where datname = 'template0'
"""


def choose_canaries(connection: Connection) -> list[Question]:
    """Questions whose answers must survive: the busiest players and team, in a game, mid-data and after it.

    Each is (function, subject id, moment, scope, season type); none when nothing is loaded.
    """
    bounds = connection.execute(
        "select max(wall_clock_time) + interval '1 day',"
        " percentile_disc(0.5) within group (order by wall_clock_time) from nba.play_by_play"
    ).fetchone()
    if bounds is None or bounds[0] is None:
        return []
    after_all, middle = bounds
    players = [
        int(row[0])
        for row in connection.execute(
            "select player_id from nba.play_by_play where player_id is not null"
            " group by player_id order by count(*) desc, player_id limit 2"
        )
    ]
    teams = [
        int(row[0])
        for row in connection.execute(
            "select team_id from (select home_team_id as team_id from nba.games"
            " union all select away_team_id from nba.games) g group by team_id order by count(*) desc, team_id limit 1"
        )
    ]
    questions: list[Question] = []
    for function, subjects, whole, latest_game in (
        ("player_stats_as_of", players, "career", _LATEST_PLAYER_GAME),
        ("team_stats_as_of", teams, "season", _LATEST_TEAM_GAME),
    ):
        for subject in subjects:
            questions.append(Question(function, subject, after_all, whole, "all"))
            questions.append(Question(function, subject, middle, "season", "regular"))
            game = connection.execute(latest_game, {"id": subject}).fetchone()
            if game is not None:
                questions.append(Question(function, subject, game[0], "game", "all"))
    if connection.execute("select from nba.players where player_id = 977").fetchone() is not None:
        questions.append(Question("player_stats_as_of", 977, HEADLINE_MOMENT, "career", "regular"))
    return questions


# The instant of the middle event of the subject's latest game: an answer that sums a game in progress.
_MIDDLE_OF = """
select e.wall_clock_time from nba.play_by_play e
where e.game_id = ({game})
order by e.event_num
offset (select count(*) / 2 from nba.play_by_play where game_id = ({game})) limit 1
"""
_LATEST_PLAYER_GAME = _MIDDLE_OF.format(
    game="select game_id from nba.play_by_play where %(id)s in (player_id, secondary_player_id)"
    " order by wall_clock_time desc limit 1"
)
_LATEST_TEAM_GAME = _MIDDLE_OF.format(
    game="select game_id from nba.games where %(id)s in (home_team_id, away_team_id) order by tipoff_at desc limit 1"
)


def ask(connection: Connection, question: Question) -> tuple[int, ...]:
    """The answer to one canary question: the 16 stat columns, in the API's order."""
    query = sql.SQL("select * from nba.{}(%s, %s, %s, %s)").format(sql.Identifier(question.function))
    row = connection.execute(query, question[1:]).fetchone()
    return tuple(int(value) for value in row) if row is not None else ()


def collect_facts(cluster: DrillCluster, questions: Sequence[Question]) -> Facts:
    """Measure a cluster: as the superuser for the catalog and the tables, as `analyst` for the canaries."""
    with cluster.connect() as server:
        version_row = server.execute(
            "select current_setting('server_version'), current_setting('server_version_num')::int,"
            " current_setting('data_checksums')"
        ).fetchone()
        locale_row = server.execute(_LOCALE).fetchone()
        model_roles = [group.name for group in roles.GROUPS] + [login.name for login in roles.LOGINS]
        role_rows = server.execute(_ROLES, (model_roles,)).fetchall()
    assert version_row is not None
    assert locale_row is not None
    with cluster.connect(DATABASE) as database:
        history = database.execute(
            "select version, checksum from temporaldb_meta.schema_migrations order by version"
        ).fetchall()
        counts: dict[str, int] = {}
        digests: dict[str, str] = {}
        for (table,) in database.execute(_TABLES, (list(DATA_SCHEMAS),)).fetchall():
            # Table names come quoted from the catalog.
            query = sql.SQL("select count(*), coalesce(sum(hashtextextended(t::text, 0)), 0)::text from {} t").format(
                sql.SQL(table)
            )
            row = database.execute(query).fetchone()
            assert row is not None
            counts[str(table)], digests[str(table)] = int(row[0]), str(row[1])
        extensions = [str(row[0]) for row in database.execute("select extname from pg_extension order by 1")]
    # As on RDS, questions are asked as `analyst`: the grants must have survived too.
    with cluster.connect(DATABASE, "analyst") as reader:
        canaries = tuple(
            Canary(q.function, q.subject_id, q.at.isoformat(), q.scope, q.season_type, ask(reader, q))
            for q in questions
        )
    return Facts(
        server_version=str(version_row[0]),
        server_version_num=int(version_row[1]),
        locale=str(locale_row[0]),
        data_checksums=version_row[2] == "on",
        schema_version=max((int(row[0]) for row in history), default=0),
        schema_checksum=history_checksum((int(version), str(checksum)) for version, checksum in history),
        row_counts=counts,
        digests=digests,
        roles={str(name): [str(group) for group in groups] for name, groups in role_rows},
        extensions=extensions,
        canaries=canaries,
    )
