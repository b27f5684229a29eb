"""The loaded end-of-game lines against the official box score, inside the load's transaction.

For each imported game with an end-of-game box score, the per-player and per-team lines of the 15 STATS
are read back from the database with SQL over `nba.event_credits` (the single definition of the stat
rules, README "Stat rules"), so what is compared is exactly what the database will answer, and set
against the BoxScore lines. A subject missing on one side counts as all zeros there (a player who did
not play has no box line; a substitute with no stat has a play-by-play line of zeros).

Known definitional differences, which do not fail `--strict`:
- The box score's team lines count players only, while the play-by-play's team line includes team
  rebounds and team turnovers. Where the box score gives them apart (`BoxScore.team_rebounds` /
  `team_turnovers`), the team's `rebounds` and `turnovers` must equal the box's figure plus them (the box
  value shown includes them). The summary gives team rebounds as one total, so the team's `oreb`/`dreb`
  differences are explained ("team rebounds") when the total matches and they are both non-negative and add
  up to the team rebounds. Where the box score does not give them, a team difference equal to the
  play-by-play's own team-only events of that stat is explained the same way ("... not given by the box
  score").
Every other difference is unexplained.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import IO, Any, Final

from temporaldb.feeds.model import STATS, BoxScore, FeedError

TEAM_REBOUNDS: Final = "team rebounds"
TEAM_TURNOVERS: Final = "team turnovers"
NOT_GIVEN: Final = " (not given by the box score)"
FIRST_SHOWN: Final = 3
KEPT_UNEXPLAINED: Final = 50
"""Unexplained differences kept in memory for messages; the report has them all."""

_SUMS: Final = ", ".join(f"sum(c.{stat})::int" for stat in STATS)
_LINES: Final = f"""
select c.game_id, c.subject_kind::text, c.subject_id, {_SUMS}
from nba.event_credits c
where c.game_id = any(%s)
group by c.game_id, c.subject_kind, c.subject_id
"""
# The same lines as the load computed them for the games it changed (load.py's temp table new_box, which
# lives until the commit that before_commit precedes): no second aggregation over nba.event_credits.
_LOADED_LINES: Final = f"""
select game_id, subject_kind::text, subject_id, {", ".join(f"{stat}::int" for stat in STATS)}
from new_box
where game_id = any(%s)
"""
_CHANGED_GAMES: Final = """
select game_id from changed_games where game_id = any(%s)
"""
_HAS_LOADED_LINES: Final = (
    "select to_regclass('pg_temp.new_box') is not null and to_regclass('pg_temp.changed_games') is not null"
)
# The team-only events (no player): team rebounds and team turnovers.
_TEAM_ONLY: Final = """
select game_id, team_id,
       count(*) filter (where event_type = 'rebound_off')::int,
       count(*) filter (where event_type = 'rebound_def')::int,
       count(*) filter (where event_type = 'turnover')::int
from nba.play_by_play
where game_id = any(%s) and player_id is null and team_id is not null
group by game_id, team_id
"""
BATCH_GAMES: Final = 200
"""Games whose loaded lines one query fetches: few queries, bounded memory."""
_NAMES: Final = """
select 'p', player_id, full_name from nba.players where player_id = any(%(players)s)
union all
select 't', team_id, name from nba.teams where team_id = any(%(teams)s)
"""


@dataclass(frozen=True)
class Difference:
    game_id: int
    subject_kind: str
    """'p' or 't'."""
    subject_id: int
    name: str
    stat: str
    pbp: int
    box: int
    difference: int
    """pbp - box."""
    known_cause: str | None

    def describe(self) -> str:
        who = "player" if self.subject_kind == "p" else "team"
        cause = f" (known cause: {self.known_cause})" if self.known_cause else ""
        return (
            f"game {self.game_id:010d} {who} {self.subject_id} ({self.name}) {self.stat}: play-by-play {self.pbp}, "
            f"box score {self.box} ({self.difference:+d}){cause}"
        )


@dataclass
class GameResult:
    game_id: int
    source: str
    """The box score's source ('' when the game has none)."""
    subjects: int = 0
    """Player and team lines compared."""
    differences: list[Difference] = field(default_factory=list)

    @property
    def reconciled(self) -> bool:
        return bool(self.source)


class Reconciliation:
    """Every game's result, kept in a temporary spool file, not in memory: a full-history import compares
    tens of thousands of games, each with a few known-cause differences. Counts and the first
    KEPT_UNEXPLAINED unexplained differences stay in memory for the summary."""

    def __init__(self) -> None:
        self._spool: IO[str] = tempfile.TemporaryFile("w+", encoding="utf-8")  # noqa: SIM115 (closed by close())
        self.checked_games: set[int] = set()
        self.all_games: set[int] = set()
        self.lines = 0
        self.unexplained_count = 0
        self.explained_count = 0
        self.unexplained: list[Difference] = []
        """The first KEPT_UNEXPLAINED unexplained differences."""

    def add(self, game: GameResult) -> None:
        self.all_games.add(game.game_id)
        if game.reconciled:
            self.checked_games.add(game.game_id)
            self.lines += game.subjects
        for difference in game.differences:
            if difference.known_cause is None:
                self.unexplained_count += 1
                if len(self.unexplained) < KEPT_UNEXPLAINED:
                    self.unexplained.append(difference)
            else:
                self.explained_count += 1
        self._spool.write(json.dumps(asdict(game)) + "\n")

    def games(self) -> Iterator[GameResult]:
        """Every game's result, in the order compared, read back from the spool."""
        self._spool.flush()
        self._spool.seek(0)
        for line in self._spool:
            data = json.loads(line)
            differences = [Difference(**difference) for difference in data.pop("differences")]
            yield GameResult(**data, differences=differences)
        self._spool.seek(0, 2)

    def close(self) -> None:
        self._spool.close()

    def headline(self) -> str:
        unchecked = len(self.all_games - self.checked_games)
        text = (
            f"reconciled {len(self.checked_games)} games ({self.lines} player and team lines) with their box scores: "
            f"{self.unexplained_count} unexplained differences, {self.explained_count} with a known cause"
        )
        return text + (f"; {unchecked} games without a box score not reconciled" if unchecked else "")

    def write_text(self, handle: IO[str]) -> None:
        handle.write(self.headline() + "\n")
        for game in self.games():
            if not game.reconciled:
                handle.write(f"game {game.game_id:010d}: no end-of-game box score, not reconciled\n")
                continue
            unexplained = sum(1 for d in game.differences if d.known_cause is None)
            handle.write(
                f"game {game.game_id:010d} vs {game.source}: {game.subjects} lines, {unexplained} unexplained, "
                f"{len(game.differences) - unexplained} known-cause differences\n"
            )
            handle.writelines(f"  {difference.describe()}\n" for difference in game.differences)

    def write_json(self, handle: IO[str], extra: Mapping[str, object] | None = None) -> None:
        """One JSON document, written a game at a time."""
        head = {"summary": self.headline(), "unexplained": self.unexplained_count, **(extra or {})}
        handle.write(json.dumps(head, indent=2)[:-2] + ',\n  "games": [')
        for number, game in enumerate(self.games()):
            entry = {
                "game_id": f"{game.game_id:010d}",
                "box_score": game.source or None,
                "lines_compared": game.subjects,
                "differences": [asdict(difference) for difference in game.differences],
            }
            handle.write(("," if number else "") + "\n    " + json.dumps(entry))
        handle.write("\n  ]\n}\n")


class ReconciliationError(FeedError):
    """Unexplained differences under --strict: raised inside the load's transaction, so it rolls back."""

    def __init__(self, reconciliation: Reconciliation) -> None:
        self.reconciliation = reconciliation
        count = reconciliation.unexplained_count
        first = "; ".join(difference.describe() for difference in reconciliation.unexplained[:FIRST_SHOWN])
        more = f" (and {count - FIRST_SHOWN} more)" if count > FIRST_SHOWN else ""
        super().__init__(f"{count} unexplained differences between the play-by-play and the box score: {first}{more}")


def _team_difference(
    stat: str, pbp: Mapping[str, int], box: Mapping[str, int], given: Mapping[str, int | None], team_only: Sequence[int]
) -> tuple[int, str | None]:
    """(the box value to compare with, the known cause of a remaining difference or None) for a team stat."""
    own_oreb, own_dreb, own_turnovers = team_only
    own = {"rebounds": own_oreb + own_dreb, "oreb": own_oreb, "dreb": own_dreb, "turnovers": own_turnovers}
    if stat not in own:
        return box[stat], None
    apart = given["turnovers" if stat == "turnovers" else "rebounds"]
    cause = TEAM_TURNOVERS if stat == "turnovers" else TEAM_REBOUNDS
    if apart is None:  # not given: explained when the difference is the play-by-play's own team events
        return box[stat], cause + NOT_GIVEN if pbp[stat] - box[stat] == own[stat] else None
    if stat in ("rebounds", "turnovers"):
        return box[stat] + apart, None
    # oreb/dreb: the box gives team rebounds as one total, which cannot be split.
    extra = [pbp[name] - box[name] for name in ("oreb", "dreb")]
    explained = pbp["rebounds"] == box["rebounds"] + apart and min(extra) >= 0 and sum(extra) == apart
    return box[stat], cause if explained else None


@dataclass
class _Loaded:
    """A batch of games' loaded lines: per game, (kind, subject) -> stats, and team id -> team-only counts."""

    lines: dict[int, dict[tuple[str, int], dict[str, int]]] = field(default_factory=dict)
    team_only: dict[int, dict[int, tuple[int, int, int]]] = field(default_factory=dict)


def _loaded(connection: Any, game_ids: list[int], *, from_load: bool) -> _Loaded:
    loaded = _Loaded()
    rows: list[Any] = []
    if from_load:
        changed = {int(row[0]) for row in connection.execute(_CHANGED_GAMES, (game_ids,)).fetchall()}
        rows += connection.execute(_LOADED_LINES, (sorted(changed),)).fetchall()
        game_ids = [game_id for game_id in game_ids if game_id not in changed]
    if game_ids:
        rows += connection.execute(_LINES, (game_ids,)).fetchall()
    for row in rows:
        game = loaded.lines.setdefault(int(row[0]), {})
        game[(str(row[1]), int(row[2]))] = dict(zip(STATS, row[3:], strict=True))
    for game_id, team, oreb, dreb, turnovers in connection.execute(_TEAM_ONLY, (game_ids,)).fetchall():
        loaded.team_only.setdefault(int(game_id), {})[int(team)] = (int(oreb), int(dreb), int(turnovers))
    return loaded


def _compare(connection: Any, game_id: int, box: BoxScore, loaded: _Loaded) -> GameResult:
    result = GameResult(game_id, box.source)
    pbp_lines = loaded.lines.get(game_id, {})
    team_only = loaded.team_only.get(game_id, {})
    box_lines = {(line.subject_kind, line.subject_id): line.stats for line in box.lines}
    subjects = sorted(pbp_lines.keys() | box_lines.keys(), key=lambda key: (key[0] != "t", key[1]))
    zeros = dict.fromkeys(STATS, 0)
    result.subjects = len(subjects)
    found: list[tuple[str, int, str, int, int, str | None]] = []
    for kind, subject in subjects:
        pbp, stats = pbp_lines.get((kind, subject), zeros), box_lines.get((kind, subject), zeros)
        given: dict[str, int | None] = {
            "rebounds": box.team_rebounds.get(subject),
            "turnovers": box.team_turnovers.get(subject),
        }
        for stat in STATS:
            if kind == "t":
                box_value, cause = _team_difference(stat, pbp, stats, given, team_only.get(subject, (0, 0, 0)))
            else:
                box_value, cause = stats[stat], None
            if pbp[stat] != box_value:
                found.append((kind, subject, stat, pbp[stat], box_value, cause))
    if found:  # names only for what differs: most games have few differences, many have none
        players = [subject for kind, subject, *_ in found if kind == "p"]
        teams = [subject for kind, subject, *_ in found if kind == "t"]
        names = {
            (str(kind), int(subject)): str(name)
            for kind, subject, name in connection.execute(_NAMES, {"players": players, "teams": teams}).fetchall()
        }
        for kind, subject, stat, pbp_value, box_value, cause in found:
            name = names.get((kind, subject), f"{'player' if kind == 'p' else 'team'} {subject}")
            result.differences.append(
                Difference(game_id, kind, subject, name, stat, pbp_value, box_value, pbp_value - box_value, cause)
            )
    return result


def _batches(games: Iterable[tuple[int, Sequence[BoxScore]]]) -> Iterator[list[tuple[int, Sequence[BoxScore]]]]:
    batch: list[tuple[int, Sequence[BoxScore]]] = []
    for game in games:
        batch.append(game)
        if len(batch) >= BATCH_GAMES:
            yield batch
            batch = []
    if batch:
        yield batch


def reconcile(connection: Any, games: Iterable[tuple[int, Sequence[BoxScore]]]) -> Reconciliation:
    """Compare every game's loaded lines with each of its end-of-game box scores (none: not reconciled).

    Inside a load (load_directory's before_commit) the changed games' lines come from the load's own new_box;
    the others, and every game outside a load, are summed from nba.event_credits.

    `games` is (game id, box scores) per game, consumed one at a time.
    """
    reconciliation = Reconciliation()
    row = connection.execute(_HAS_LOADED_LINES).fetchone()
    from_load = bool(row and row[0])
    for batch in _batches(games):
        loaded = _loaded(connection, [game_id for game_id, boxes in batch if boxes], from_load=from_load)
        for game_id, boxes in batch:
            if not boxes:
                reconciliation.add(GameResult(game_id, ""))
            for box in boxes:
                reconciliation.add(_compare(connection, game_id, box, loaded))
    return reconciliation
