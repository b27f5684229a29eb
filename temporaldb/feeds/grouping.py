"""The import's first pass: every document classified and grouped by game, none of them kept in memory.

Each document is parsed once here (by the worker processes, for many) to learn what it is (a play-by-play format or
a box score format, `classify`) and which game it belongs to; then only a
`DocumentRef` stays: the local file, or for an S3 object a copy of its bytes in
the import's spool folder. The second pass (importer.py) reads one game's
documents again, so memory holds one game at a time whatever the input size.

Grouping rules: a game needs exactly one play-by-play; a box score of a game
with no play-by-play among the sources, two play-by-plays of one game, or two
boxscoresummaryv2 of one game are FeedErrors naming the documents.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from temporaldb.feeds import boxscore, live, stats_v2, stats_v3
from temporaldb.feeds.model import FeedError
from temporaldb.feeds.parallel import Workers
from temporaldb.feeds.sources import FeedDocument, RawDocument, decode, read_file, read_raw

PBP_FORMATS: Final = ("v2", "v3", "live")
FORMAT_CHOICES: Final = ("auto", *PBP_FORMATS)
PBP_NAMES: Final = {"v2": "playbyplayv2", "v3": "playbyplayv3", "live": "live play-by-play"}
_PBP_LOOKS_LIKE: Final = (("live", live.looks_like), ("v3", stats_v3.looks_like), ("v2", stats_v2.looks_like))


@dataclass(frozen=True)
class DocumentRef:
    """Where to read a document again: its name for messages and a local file."""

    name: str
    path: Path

    def read(self) -> FeedDocument:
        return decode(self.name, read_file(self.path, self.name))


@dataclass(frozen=True)
class Classified:
    ref: DocumentRef
    kind: str
    """'v2', 'v3', 'live' (play-by-play) or one of boxscore.FORMATS."""
    game_id: int
    from_head: bool = False
    """Classified from the document's first bytes only (`_from_head`): `read_checked` checks the whole."""

    def read_checked(self, *, feed_format: str = "auto") -> FeedDocument:
        """The document, checked to be what its classification says (when that came from its head only)."""
        document = self.ref.read()
        if self.from_head:
            kind, game_id = _kind_and_game(document, box_only=False, feed_format=feed_format)
            if (kind, game_id) != (self.kind, self.game_id):
                raise FeedError(f"{self.ref.name}: its beginning is a {PBP_NAMES[self.kind]}, the rest is not")
        return document


@dataclass
class GameDocuments:
    """One game's documents, as grouped from the sources."""

    game_id: int
    pbp: Classified | None = None
    traditional: list[Classified] = field(default_factory=list)
    summaries: list[Classified] = field(default_factory=list)
    live_boxes: list[Classified] = field(default_factory=list)

    @property
    def boxes(self) -> list[Classified]:
        return self.traditional + self.summaries + self.live_boxes


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


# The live CDN play-by-play begins the same way every time: meta, then the game id, then the first action.
_LIVE_HEAD: Final = re.compile(
    rb'\A\s*\{\s*"meta"\s*:\s*\{[^{}]*\}\s*,\s*"game"\s*:\s*\{\s*"gameId"\s*:\s*"(\d{10})"\s*,'
    rb'\s*"actions"\s*:\s*\[\s*(\{[^{}\[\]]*(?:\[[^{}\[\]]*\][^{}\[\]]*)*\})'
)
HEAD_BYTES: Final = 8192


def _from_head(ref: DocumentRef, box_only: bool, feed_format: str) -> Classified | None:
    """A live play-by-play recognised from its first bytes (its first action judged as live.looks_like judges
    it), without decoding the whole, which the second pass does anyway; None: decode it to know."""
    if box_only or feed_format not in ("auto", "live"):
        return None
    try:
        with ref.path.open("rb") as handle:
            head = handle.read(HEAD_BYTES)
    except OSError:
        return None  # the full read names the problem
    match = _LIVE_HEAD.match(head)
    if match is None:
        return None
    try:
        first = json.loads(match[2])
    except ValueError:
        return None
    if not live.looks_like({"game": {"gameId": match[1].decode(), "actions": [first]}}):
        return None
    return Classified(ref, "live", boxscore._game_id(match[1].decode(), ref.name), from_head=True)


def _classified(task: tuple[DocumentRef, bool, str]) -> Classified:
    """Read a document and tell its kind and game (runs in a worker process for many documents)."""
    ref, box_only, feed_format = task
    quick = _from_head(ref, box_only, feed_format)
    if quick is not None:
        return quick
    kind, game_id = _kind_and_game(ref.read(), box_only=box_only, feed_format=feed_format)
    return Classified(ref, kind, game_id)


def _kind_and_game(document: FeedDocument, *, box_only: bool, feed_format: str) -> tuple[str, int]:
    kind = classify(document)
    if kind is None:
        raise FeedError(
            f"{document.name}: not a known feed document (expected a playbyplayv2, playbyplayv3 or live "
            "play-by-play, or a boxscoretraditionalv2/v3, boxscoresummaryv2 or live box score)"
        )
    if kind in PBP_FORMATS:
        if box_only:
            raise FeedError(f"{document.name}: given with --box but it is a {PBP_NAMES[kind]}, not a box score")
        if feed_format not in ("auto", kind):
            raise FeedError(f"{document.name}: a {PBP_NAMES[kind]} document, but --format {feed_format} was given")
        return kind, _pbp_game_id(kind, document)
    return kind, _box_game_id(kind, document)


class _Spool:
    """Copies of documents that have no local file (S3 objects), numbered in the order read."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.count = 0

    def ref(self, raw: RawDocument) -> DocumentRef:
        if raw.path is not None:
            return DocumentRef(raw.name, raw.path)
        self.count += 1
        path = self.folder / f"document-{self.count:07d}"
        path.write_bytes(raw.content())
        return DocumentRef(raw.name, path)


def _add(games: dict[int, GameDocuments], item: Classified) -> None:
    documents = games.setdefault(item.game_id, GameDocuments(item.game_id))
    if item.kind in PBP_FORMATS:
        if documents.pbp is not None:
            raise FeedError(
                f"{item.ref.name}: a second play-by-play of game {item.game_id:010d} "
                f"(the first is {documents.pbp.ref.name}); give one per game"
            )
        documents.pbp = item
    elif item.kind == "summary_v2":
        if documents.summaries:
            raise FeedError(
                f"{item.ref.name}: a second boxscoresummaryv2 of game {item.game_id:010d} "
                f"(the first is {documents.summaries[0].ref.name})"
            )
        documents.summaries.append(item)
    elif item.kind == "live_box":
        documents.live_boxes.append(item)
    else:
        documents.traditional.append(item)


def group(
    sources: Sequence[str],
    box_sources: Sequence[str] = (),
    *,
    spool: Path,
    feed_format: str = "auto",
    endpoint_url: str | None = None,
    region: str | None = None,
    workers: Workers | None = None,
) -> dict[int, GameDocuments]:
    """Every document, classified and grouped by game id (in the order first seen); S3 objects go to `spool`.

    The documents are listed (and S3 objects copied) here, then read and classified by `workers`.
    """
    if feed_format not in FORMAT_CHOICES:
        raise FeedError(f"--format {feed_format}: expected one of {', '.join(FORMAT_CHOICES)}")
    copies = _Spool(spool)
    tasks: list[tuple[DocumentRef, bool, str]] = []
    for box_only, names in ((False, sources), (True, box_sources)):
        if names:
            for raw in read_raw(names, endpoint_url=endpoint_url, region=region):
                tasks.append((copies.ref(raw), box_only, feed_format))
    games: dict[int, GameDocuments] = {}
    for item in (workers or Workers(1)).map(_classified, tasks):
        _add(games, item)
    for documents in games.values():
        if documents.pbp is None:
            raise FeedError(
                f"{documents.boxes[0].ref.name}: box score of game {documents.game_id:010d}, but no play-by-play of "
                "that game is among the sources"
            )
    return games
