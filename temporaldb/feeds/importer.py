"""`temporaldb import`: feed documents to loaded, reconciled games.

1. Every document of the sources (and of `--box`) is read (`sources.read_sources`) and classified by the
   format modules' `looks_like`: a play-by-play (stats_v2, stats_v3, live) or a box score
   (boxscore.looks_like). A document of no known shape is a FeedError naming it.
2. Documents are grouped by game id: each play-by-play with the box score documents of its game, wherever
   they came from (a traditional box score and its summary combine; a live box score stands alone). A box
   score of a game with no play-by-play among the sources, or two play-by-plays of one game, is a FeedError.
   A range box (or another partial one) is noted and used for names only, never reconciled.
3. The play-by-play is parsed with the box score's teams and players (`boxscore.facts`) when there is one.
4. Tip-off: the live feed's own; else the box score's (the live box's gameTimeUTC); else the summary's
   GAME_DATE_EST at 19:00 US Eastern, an assumption the report states; without any box score a FeedError
   asks for one.
5. `canonical.to_canonical` and `write_folder` make a temporary canonical folder, which
   `load_directory(..., replace_games=True)` loads in one transaction; just before the commit,
   `reconcile.reconcile` compares the loaded end-of-game lines with the box scores (see reconcile.py), and
   with `strict` an unexplained difference rolls everything back.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final
from zoneinfo import ZoneInfo

from temporaldb.feeds import boxscore, live, stats_v2, stats_v3
from temporaldb.feeds.canonical import CanonicalGame, to_canonical, write_folder
from temporaldb.feeds.model import BoxScore, FeedError, FeedGame
from temporaldb.feeds.reconcile import Reconciliation, ReconciliationError, reconcile
from temporaldb.feeds.sources import FeedDocument, read_sources

PBP_FORMATS: Final = ("v2", "v3", "live")
FORMAT_CHOICES: Final = ("auto", *PBP_FORMATS)
ASSUMED_TIPOFF: Final = dt.time(19, 0)
EASTERN: Final = ZoneInfo("America/New_York")
_PBP_LOOKS_LIKE: Final = (("live", live.looks_like), ("v3", stats_v3.looks_like), ("v2", stats_v2.looks_like))
_PBP_NAMES: Final = {"v2": "playbyplayv2", "v3": "playbyplayv3", "live": "live play-by-play"}


@dataclass(frozen=True)
class Classified:
    document: FeedDocument
    kind: str
    """'v2', 'v3', 'live' (play-by-play) or one of boxscore.FORMATS."""
    game_id: int


@dataclass
class GameDocuments:
    """One game's documents, as grouped from the sources."""

    game_id: int
    pbp: Classified | None = None
    traditional: list[Classified] = field(default_factory=list)
    summaries: list[Classified] = field(default_factory=list)
    live_boxes: list[Classified] = field(default_factory=list)


@dataclass
class PreparedGame:
    game: FeedGame
    canonical: CanonicalGame
    boxes: list[BoxScore]
    """The end-of-game box scores it is reconciled with (none: not reconciled)."""
    tipoff_from: str


@dataclass
class Prepared:
    games: list[PreparedGame]
    assumptions: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    """What was read but not used for reconciliation (range boxes and other partial box scores)."""

    @property
    def skipped(self) -> Counter[str]:
        return sum((game.game.skipped for game in self.games), Counter())

    @property
    def merged(self) -> Counter[str]:
        return sum((game.game.merged for game in self.games), Counter())

    @property
    def dropped(self) -> Counter[str]:
        return sum((game.canonical.dropped for game in self.games), Counter())

    @property
    def events(self) -> int:
        return sum(len(game.canonical.events) for game in self.games)


@dataclass
class ImportResult:
    prepared: Prepared
    summary: Any
    """load.LoadSummary"""
    reconciliation: Reconciliation


# ---------------------------------------------------------------------------------------------------- reading


def classify(document: FeedDocument) -> str | None:
    """The document's kind: a play-by-play format (PBP_FORMATS), a box score format, or None."""
    for kind, looks in _PBP_LOOKS_LIKE:
        if looks(document.document):
            return kind
    return boxscore.looks_like(document.document)


def _pbp_game_id(kind: str, document: FeedDocument) -> int:
    if kind == "v2":
        game_text, _ = stats_v2.read_rows(document.document, document.name)
        return boxscore._game_id(game_text, document.name)
    game = document.document.get("game") if isinstance(document.document, Mapping) else None
    value = game.get("gameId") if isinstance(game, Mapping) else None
    return boxscore._game_id(value, document.name)


def _box_game_id(kind: str, document: FeedDocument) -> int:
    if kind == "summary_v2":
        return boxscore.parse_summary(document.document, document.name).game_id
    return boxscore.facts(document.document, document.name).game_id


def _classified(document: FeedDocument, *, box_only: bool, feed_format: str) -> Classified:
    kind = classify(document)
    if kind is None:
        raise FeedError(
            f"{document.name}: not a known feed document (expected a playbyplayv2, playbyplayv3 or live "
            "play-by-play, or a boxscoretraditionalv2/v3, boxscoresummaryv2 or live box score)"
        )
    if kind in PBP_FORMATS:
        if box_only:
            raise FeedError(f"{document.name}: given with --box but it is a {_PBP_NAMES[kind]}, not a box score")
        if feed_format not in ("auto", kind):
            raise FeedError(f"{document.name}: a {_PBP_NAMES[kind]} document, but --format {feed_format} was given")
        return Classified(document, kind, _pbp_game_id(kind, document))
    return Classified(document, kind, _box_game_id(kind, document))


def group(
    sources: Sequence[str],
    box_sources: Sequence[str] = (),
    *,
    feed_format: str = "auto",
    endpoint_url: str | None = None,
    region: str | None = None,
) -> dict[int, GameDocuments]:
    """Every document, classified and grouped by game id (in the order first seen)."""
    games: dict[int, GameDocuments] = {}
    for box_only, names in ((False, sources), (True, box_sources)):
        if not names:
            continue
        for document in read_sources(names, endpoint_url=endpoint_url, region=region):
            item = _classified(document, box_only=box_only, feed_format=feed_format)
            documents = games.setdefault(item.game_id, GameDocuments(item.game_id))
            if item.kind in PBP_FORMATS:
                if documents.pbp is not None:
                    raise FeedError(
                        f"{document.name}: a second play-by-play of game {item.game_id:010d} "
                        f"(the first is {documents.pbp.document.name}); give one per game"
                    )
                documents.pbp = item
            elif item.kind == "summary_v2":
                documents.summaries.append(item)
            elif item.kind == "live_box":
                documents.live_boxes.append(item)
            else:
                documents.traditional.append(item)
    for documents in games.values():
        if documents.pbp is None:
            box = (documents.traditional + documents.summaries + documents.live_boxes)[0]
            raise FeedError(
                f"{box.document.name}: box score of game {documents.game_id:010d}, but no play-by-play of that game "
                "is among the sources"
            )
        if len(documents.summaries) > 1:
            raise FeedError(
                f"{documents.summaries[1].document.name}: a second boxscoresummaryv2 of game "
                f"{documents.game_id:010d} (the first is {documents.summaries[0].document.name})"
            )
    return games


# ---------------------------------------------------------------------------------------------------- preparing


def _boxes_and_facts(
    documents: GameDocuments, notes: list[str]
) -> tuple[list[BoxScore], boxscore.BoxFacts | None, boxscore.Summary | None]:
    summary = None
    if documents.summaries:
        item = documents.summaries[0]
        summary = boxscore.parse_summary(item.document.document, item.document.name)
    boxes: list[BoxScore] = []
    whole: list[boxscore.BoxFacts] = []
    partial: list[boxscore.BoxFacts] = []
    for item in documents.traditional + documents.live_boxes:
        with_summary = summary if item.kind != "live_box" else None
        document, name = item.document.document, item.document.name
        try:
            boxes.append(boxscore.box_score(document, name, summary=with_summary))
            whole.append(boxscore.facts(document, name, summary=with_summary))
        except boxscore.PartialBoxScoreError as error:
            notes.append(f"{error} (used for names only, not reconciled)")
            partial.append(boxscore.facts(document, name, summary=with_summary))
    facts = whole + partial
    return boxes, (facts[0] if facts else None), summary


def _parse(documents: GameDocuments, facts: boxscore.BoxFacts | None) -> FeedGame:
    pbp = documents.pbp
    assert pbp is not None
    document, name = pbp.document.document, pbp.document.name
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
    if date is not None:
        tipoff = dt.datetime.combine(date, ASSUMED_TIPOFF, tzinfo=EASTERN)
        assumptions.append(
            f"game {game.game_id:010d}: the box score gives only the date {date.isoformat()} (GAME_DATE_EST); "
            f"tip-off assumed at 19:00 US Eastern ({tipoff.isoformat()}), event times derived from it"
        )
        return tipoff, "assumed: 19:00 US Eastern on GAME_DATE_EST"
    raise FeedError(
        f"{game.source}: game {game.game_id:010d} has no tip-off time: the {_PBP_NAMES[game.feed_format]} has no wall "
        "clock; give its box score (boxscoresummaryv2 with its traditional box score, or the live box score) "
        "among the sources or with --box"
    )


def prepare(
    sources: Sequence[str],
    box_sources: Sequence[str] = (),
    *,
    feed_format: str = "auto",
    endpoint_url: str | None = None,
    region: str | None = None,
) -> Prepared:
    """Read, group and parse every game; nothing touches a database. FeedError on bad input."""
    if feed_format not in FORMAT_CHOICES:
        raise FeedError(f"--format {feed_format}: expected one of {', '.join(FORMAT_CHOICES)}")
    grouped = group(sources, box_sources, feed_format=feed_format, endpoint_url=endpoint_url, region=region)
    prepared = Prepared([])
    for documents in grouped.values():
        boxes, facts, summary = _boxes_and_facts(documents, prepared.notes)
        game = _parse(documents, facts)
        tipoff, tipoff_from = _tipoff(game, facts, summary, prepared.assumptions)
        prepared.games.append(PreparedGame(game, to_canonical(game, tipoff), boxes, tipoff_from))
    return prepared


# ---------------------------------------------------------------------------------------------------- loading


def import_games(dsn: str, prepared: Prepared, progress: Any = None, *, strict: bool = False) -> ImportResult:
    """Load the prepared games (replacing them) and reconcile them before the commit.

    Raises LoadError (bad rows) or ReconciliationError (strict, an unexplained difference, which carries the
    reconciliation for the report); either way the transaction is rolled back and nothing changes.
    """
    from temporaldb.load import load_directory  # noqa: PLC0415 (psycopg only when loading)

    found: list[Reconciliation] = []

    def check(connection: Any) -> None:
        result = reconcile(connection, [(game.game, game.boxes) for game in prepared.games])
        found.append(result)
        if strict and result.unexplained:
            raise ReconciliationError(result)

    with tempfile.TemporaryDirectory(prefix="temporaldb-import-") as folder:
        write_folder([game.canonical for game in prepared.games], Path(folder))
        summary = load_directory(dsn, Path(folder), progress, replace_games=True, before_commit=check)
    return ImportResult(prepared, summary, found[0])
