"""`temporaldb import`: feed documents to loaded, reconciled games, in memory bounded by one game.

1. `grouping.group` reads every document of the sources (and of `--box`) once, classifies it (a
   play-by-play format or a box score format) and groups it by game id, keeping only where to read it again
   (an S3 object's bytes go to a spool folder). Bad documents and bad groupings are FeedErrors.
2. Game by game: its documents are read again, the play-by-play is parsed with the box score's teams and
   players (`boxscore.facts`) when there is one (a traditional box score and its summary combine; a live box
   score stands alone; a range box, or another partial one, is noted and used for names only, never
   reconciled), its canonical rows are made and checked with the loader's own EventChecker
   (`canonical.checked_lines`), and appended to a temporary canonical folder; its end-of-game box scores go
   to a spool file in the same order. With many games this runs in one worker process per core, a bounded
   window of games ahead, results taken in order (TEMPORALDB_IMPORT_WORKERS=1 keeps it in this process).
3. Tip-off: the live feed's own; else the box score's (the live box's gameTimeUTC); else the
   summary's GAME_DATE_EST with the clock time the stats.nba.com feed states for the first period's start
   (playbyplayv3 "Start of 1st Period (7:11 PM EST)", playbyplayv2 WCTIMESTRING), US Eastern, minute
   precision; else 19:00 US Eastern on that date, an assumption the report states. Without any box score a
   FeedError asks for one.
4. `load_directory(..., replace_games=True)` loads the folder in one transaction; just before the commit,
   `reconcile.reconcile` compares the loaded end-of-game lines with the spooled box scores one game at a
   time (see reconcile.py), and with `strict` an unexplained difference rolls everything back.
"""

from __future__ import annotations

import datetime as dt
import pickle
import tempfile
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import TracebackType
from typing import Any, Final
from zoneinfo import ZoneInfo

from temporaldb.feeds import boxscore, live, stats_v2, stats_v3
from temporaldb.feeds.canonical import CanonicalGame, CanonicalWriter, checked_lines, to_canonical
from temporaldb.feeds.grouping import FORMAT_CHOICES, PBP_FORMATS, PBP_NAMES, GameDocuments, group
from temporaldb.feeds.model import BoxScore, FeedError, FeedGame
from temporaldb.feeds.parallel import Workers, default_workers
from temporaldb.feeds.reconcile import Reconciliation, ReconciliationError, reconcile

__all__ = ["FORMAT_CHOICES", "PBP_FORMATS", "ImportResult", "Prepared", "PreparedGame", "import_games", "prepare"]

ASSUMED_TIPOFF: Final = dt.time(19, 0)
EASTERN: Final = ZoneInfo("America/New_York")


@dataclass(frozen=True)
class PreparedGame:
    """What the summary and the report say of one prepared game (its rows are in the canonical folder)."""

    game_id: int
    feed_format: str
    source: str
    events: int
    boxes: int
    """End-of-game box scores it is reconciled with (0: not reconciled)."""
    tipoff_from: str


@dataclass
class Prepared:
    """Every game read and written to a temporary canonical folder, ready to load; `close` removes it."""

    workspace: Path
    games: list[PreparedGame] = field(default_factory=list)
    assumptions: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    """What was read but not used for reconciliation (range boxes and other partial box scores)."""
    skipped: Counter[str] = field(default_factory=Counter)
    merged: Counter[str] = field(default_factory=Counter)
    dropped: Counter[str] = field(default_factory=Counter)
    _cleanup: tempfile.TemporaryDirectory[str] | None = None

    @property
    def folder(self) -> Path:
        """The canonical CSV folder `temporaldb load` takes."""
        return self.workspace / "canonical"

    @property
    def box_spool(self) -> Path:
        return self.workspace / "boxes.pickle"

    @property
    def events(self) -> int:
        return sum(game.events for game in self.games)

    def boxes(self) -> Iterator[tuple[int, list[BoxScore]]]:
        """(game id, its end-of-game box scores) per game, in the order prepared, read back from the spool."""
        with self.box_spool.open("rb") as handle:
            for _ in self.games:
                yield pickle.load(handle)

    def close(self) -> None:
        if self._cleanup is not None:
            self._cleanup.cleanup()
            self._cleanup = None

    def __enter__(self) -> Prepared:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()


@dataclass
class ImportResult:
    prepared: Prepared
    summary: Any
    """load.LoadSummary"""
    reconciliation: Reconciliation


# ---------------------------------------------------------------------------------------------------- preparing


def _boxes_and_facts(
    documents: GameDocuments, notes: list[str]
) -> tuple[list[BoxScore], boxscore.BoxFacts | None, boxscore.Summary | None]:
    summary = None
    if documents.summaries:
        item = documents.summaries[0]
        summary = boxscore.parse_summary(item.ref.read().document, item.ref.name)
    boxes: list[BoxScore] = []
    whole: list[boxscore.BoxFacts] = []
    partial: list[boxscore.BoxFacts] = []
    for item in documents.traditional + documents.live_boxes:
        with_summary = summary if item.kind != "live_box" else None
        document, name = item.ref.read().document, item.ref.name
        reading = boxscore.box_score_and_facts(document, name, summary=with_summary)
        if reading.box_score is None:
            notes.append(f"{reading.partial} (used for names only, not reconciled)")
            partial.append(reading.facts)
        else:
            boxes.append(reading.box_score)
            whole.append(reading.facts)
    facts = whole + partial
    return boxes, (facts[0] if facts else None), summary


def _parse(documents: GameDocuments, facts: boxscore.BoxFacts | None) -> FeedGame:
    pbp = documents.pbp
    if pbp is None:  # grouping.group refuses such a game
        raise FeedError(f"game {documents.game_id:010d}: no play-by-play")
    document, name = pbp.read_checked().document, pbp.ref.name
    roster = {player.player_id: player for player in facts.players} if facts else None
    if pbp.kind == "v2":
        given = None
        if facts is not None:
            home = facts.home.team_id if facts.home else None
            given = stats_v2.Roster(facts.teams, facts.players, home)
        return stats_v2.parse(document, name, given)
    if pbp.kind == "v3":
        game = stats_v3.parse(document, name, roster)
        if facts is None:
            return game
        # v3 names a team by its tricode only; the box score has its full name.
        named = {team.team_id: team for team in facts.teams}
        return replace(game, home=named.get(game.home.team_id, game.home), away=named.get(game.away.team_id, game.away))
    teams = {team.team_id: team for team in facts.teams} if facts else None
    return live.parse(document, name, roster, teams=teams)


def _tipoff(
    game: FeedGame, facts: boxscore.BoxFacts | None, summary: boxscore.Summary | None, assumptions: list[str]
) -> tuple[dt.datetime, str]:
    if game.tipoff_at is not None:
        return game.tipoff_at, "the feed's own clock"
    if facts is not None and facts.tipoff_at is not None:
        return facts.tipoff_at, f"the box score ({facts.source})"
    date = (facts.game_date if facts else None) or (summary.game_date if summary else None)
    if date is not None and game.tipoff_eastern is not None:
        # GAME_DATE_EST is the game's date in US Eastern time, the zone the feed's clock is in (see
        # stats_v2/stats_v3), so the two combine without a day roll-over; the zone rules pick EST or EDT.
        tipoff = dt.datetime.combine(date, game.tipoff_eastern, tzinfo=EASTERN)
        return tipoff, f"the {PBP_NAMES[game.feed_format]}'s period-start clock on GAME_DATE_EST (US Eastern, minute)"
    if date is not None:
        tipoff = dt.datetime.combine(date, ASSUMED_TIPOFF, tzinfo=EASTERN)
        assumptions.append(
            f"game {game.game_id:010d}: the box score gives only the date {date.isoformat()} (GAME_DATE_EST) and "
            f"the {PBP_NAMES[game.feed_format]} no clock; tip-off assumed at 19:00 US Eastern ({tipoff.isoformat()}), "
            "event times derived from it"
        )
        return tipoff, "assumed: 19:00 US Eastern on GAME_DATE_EST"
    raise FeedError(
        f"{game.source}: game {game.game_id:010d} has no tip-off time: the {PBP_NAMES[game.feed_format]} has no wall "
        "clock; give its box score (boxscoresummaryv2 with its traditional box score, or the live box score) "
        "among the sources or with --box"
    )


@dataclass
class GameOutcome:
    """One game prepared, in whichever process did it: its rows, its box scores, what it noted."""

    canonical: CanonicalGame
    """Its teams, players and game row; its events are in `lines`."""
    lines: list[str]
    """The events as checked COPY lines (canonical.checked_lines)."""
    boxes: list[BoxScore]
    summary: PreparedGame
    skipped: Counter[str]
    merged: Counter[str]
    notes: list[str]
    assumptions: list[str]


def prepare_game(documents: GameDocuments) -> GameOutcome:
    """Read one game's documents and make its canonical rows (runs in a worker process for large imports)."""
    notes: list[str] = []
    assumptions: list[str] = []
    boxes, facts, summary = _boxes_and_facts(documents, notes)
    game = _parse(documents, facts)
    tipoff, tipoff_from = _tipoff(game, facts, summary, assumptions)
    canonical = to_canonical(game, tipoff)
    lines = checked_lines(canonical, game.source)
    described = PreparedGame(game.game_id, game.feed_format, game.source, len(lines), len(boxes), tipoff_from)
    # The rows travel once, as lines: a worker's result is pickled back to the importing process.
    slim = replace(canonical, events=())
    return GameOutcome(slim, lines, boxes, described, game.skipped, game.merged, notes, assumptions)


def _prepare_games(grouped: dict[int, GameDocuments], prepared: Prepared, workers: Workers) -> None:
    writer = CanonicalWriter(prepared.folder)
    try:
        with prepared.box_spool.open("wb") as spool:
            for outcome in workers.map(prepare_game, list(grouped.values())):
                writer.add(outcome.canonical, outcome.lines)
                pickle.dump((outcome.summary.game_id, outcome.boxes), spool)
                prepared.skipped.update(outcome.skipped)
                prepared.merged.update(outcome.merged)
                prepared.dropped.update(outcome.canonical.dropped)
                prepared.notes.extend(outcome.notes)
                prepared.assumptions.extend(outcome.assumptions)
                prepared.games.append(outcome.summary)
    finally:
        writer.close()


def prepare(
    sources: Sequence[str],
    box_sources: Sequence[str] = (),
    *,
    feed_format: str = "auto",
    endpoint_url: str | None = None,
    region: str | None = None,
    workers: int | None = None,
) -> Prepared:
    """Read, group and parse every game into a temporary folder; nothing touches a database.

    FeedError on bad input (and the folder is removed). Use the result as a context manager, or `close` it.
    """
    cleanup = tempfile.TemporaryDirectory(prefix="temporaldb-import-")
    prepared = Prepared(Path(cleanup.name), _cleanup=cleanup)
    try:
        spool = prepared.workspace / "spool"
        spool.mkdir()
        with Workers(default_workers() if workers is None else workers) as pool:
            grouped = group(
                sources, box_sources, spool=spool, feed_format=feed_format, endpoint_url=endpoint_url,
                region=region, workers=pool,
            )  # fmt: skip
            _prepare_games(grouped, prepared, pool)
    except BaseException:
        prepared.close()
        raise
    return prepared


# ---------------------------------------------------------------------------------------------------- loading


def import_games(dsn: str, prepared: Prepared, progress: Any = None, *, strict: bool = False) -> ImportResult:
    """Load the prepared games (replacing them) and reconcile them before the commit.

    Raises LoadError (bad rows) or ReconciliationError (strict, an unexplained difference, which carries the
    reconciliation for the report); either way the transaction is rolled back and nothing changes. The
    caller closes the reconciliation it gets (its spool file); one from a failed load is closed here.
    """
    from temporaldb.load import load_directory  # noqa: PLC0415 (psycopg only when loading)

    found: list[Reconciliation] = []

    def check(connection: Any) -> None:
        result = reconcile(connection, prepared.boxes())
        found.append(result)
        if strict and result.unexplained_count:
            raise ReconciliationError(result)

    try:
        summary = load_directory(
            dsn, prepared.folder, progress, replace_games=True, before_commit=check, checked_events=True
        )
    except ReconciliationError:
        raise
    except BaseException:
        for result in found:
            result.close()
        raise
    return ImportResult(prepared, summary, found[0])
