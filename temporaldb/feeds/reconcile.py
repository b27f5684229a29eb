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
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Final

from temporaldb.feeds.model import STATS, BoxScore, FeedError

TEAM_REBOUNDS: Final = "team rebounds"
TEAM_TURNOVERS: Final = "team turnovers"
NOT_GIVEN: Final = " (not given by the box score)"
FIRST_SHOWN: Final = 3

_SUMS: Final = ", ".join(f"sum(c.{stat})::int" for stat in STATS)
_LINES: Final = f"""
select c.subject_kind::text, c.subject_id, {_SUMS}
from nba.event_credits c
where c.game_id = %s
group by c.subject_kind, c.subject_id
"""
# The team-only events (no player): team rebounds and team turnovers.
_TEAM_ONLY: Final = """
select team_id,
       count(*) filter (where event_type = 'rebound_off')::int,
       count(*) filter (where event_type = 'rebound_def')::int,
       count(*) filter (where event_type = 'turnover')::int
from nba.play_by_play
where game_id = %s and player_id is null and team_id is not null
group by team_id
"""
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


@dataclass
class Reconciliation:
    games: list[GameResult] = field(default_factory=list)

    @property
    def differences(self) -> list[Difference]:
        return [difference for game in self.games for difference in game.differences]

    @property
    def unexplained(self) -> list[Difference]:
        return [difference for difference in self.differences if difference.known_cause is None]

    def headline(self) -> str:
        checked = [game for game in self.games if game.reconciled]
        games = {game.game_id for game in checked}
        unchecked = len({game.game_id for game in self.games} - games)
        explained = len(self.differences) - len(self.unexplained)
        text = (
            f"reconciled {len(games)} games ({sum(game.subjects for game in checked)} player and team lines) "
            f"with their box scores: {len(self.unexplained)} unexplained differences, {explained} with a known cause"
        )
        return text + (f"; {unchecked} games without a box score not reconciled" if unchecked else "")

    def text(self) -> str:
        lines = [self.headline()]
        for game in self.games:
            if not game.reconciled:
                lines.append(f"game {game.game_id:010d}: no end-of-game box score, not reconciled")
                continue
            unexplained = sum(1 for d in game.differences if d.known_cause is None)
            lines.append(
                f"game {game.game_id:010d} vs {game.source}: {game.subjects} lines, {unexplained} unexplained, "
                f"{len(game.differences) - unexplained} known-cause differences"
            )
            lines.extend(f"  {difference.describe()}" for difference in game.differences)
        return "\n".join(lines) + "\n"

    def to_json(self, extra: Mapping[str, object] | None = None) -> str:
        document = {
            "summary": self.headline(),
            "unexplained": len(self.unexplained),
            "games": [
                {
                    "game_id": f"{game.game_id:010d}",
                    "box_score": game.source or None,
                    "lines_compared": game.subjects,
                    "differences": [asdict(difference) for difference in game.differences],
                }
                for game in self.games
            ],
            **(extra or {}),
        }
        return json.dumps(document, indent=2) + "\n"


class ReconciliationError(FeedError):
    """Unexplained differences under --strict: raised inside the load's transaction, so it rolls back."""

    def __init__(self, reconciliation: Reconciliation) -> None:
        self.reconciliation = reconciliation
        unexplained = reconciliation.unexplained
        first = "; ".join(difference.describe() for difference in unexplained[:FIRST_SHOWN])
        more = f" (and {len(unexplained) - FIRST_SHOWN} more)" if len(unexplained) > FIRST_SHOWN else ""
        super().__init__(
            f"{len(unexplained)} unexplained differences between the play-by-play and the box score: {first}{more}"
        )


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


def _compare(connection: Any, game_id: int, box: BoxScore) -> GameResult:
    result = GameResult(game_id, box.source)
    rows = connection.execute(_LINES, (game_id,)).fetchall()
    pbp_lines = {(row[0], int(row[1])): dict(zip(STATS, row[2:], strict=True)) for row in rows}
    team_only = {
        int(row[0]): (int(row[1]), int(row[2]), int(row[3]))
        for row in connection.execute(_TEAM_ONLY, (game_id,)).fetchall()
    }
    box_lines = {(line.subject_kind, line.subject_id): line.stats for line in box.lines}
    subjects = sorted(pbp_lines.keys() | box_lines.keys(), key=lambda key: (key[0] != "t", key[1]))
    players = [subject for kind, subject in subjects if kind == "p"]
    teams = [subject for kind, subject in subjects if kind == "t"]
    names = {
        (str(kind), int(subject)): str(name)
        for kind, subject, name in connection.execute(_NAMES, {"players": players, "teams": teams}).fetchall()
    }
    zeros = dict.fromkeys(STATS, 0)
    result.subjects = len(subjects)
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
                name = names.get((kind, subject), f"{'player' if kind == 'p' else 'team'} {subject}")
                result.differences.append(
                    Difference(game_id, kind, subject, name, stat, pbp[stat], box_value, pbp[stat] - box_value, cause)
                )
    return result


def reconcile(connection: Any, games: Iterable[tuple[int, Sequence[BoxScore]]]) -> Reconciliation:
    """Compare every game's loaded lines with each of its end-of-game box scores (none: not reconciled).

    `games` is (game id, box scores) per game, consumed one at a time.
    """
    reconciliation = Reconciliation()
    for game_id, boxes in games:
        if not boxes:
            reconciliation.games.append(GameResult(game_id, ""))
        for box in boxes:
            reconciliation.games.append(_compare(connection, game_id, box))
    return reconciliation
