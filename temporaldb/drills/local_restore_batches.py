"""The local restore drill's data: two batches of canonical CSV, batch A before the restore target, B after it.

`generated_batches(seasons)` makes them with the league generator; `split_by_season` splits any canonical CSV
folder by season; a `BatchWriter` is what the drill calls to fill the two folders (a test can bring its own).
"""

from __future__ import annotations

import csv
import gzip
import io
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Final

from temporaldb.drills.progress import Ticker
from temporaldb.drills.report import Say
from temporaldb.generate import generate_league
from temporaldb.load import find_input

BatchWriter = Callable[[Path, Path], None]
"""write(batch_a, batch_b): fill two empty folders with canonical CSV (see README); batch B must add games."""

DEFAULT_FIRST_SEASON: Final = 2014


def generated_batches(
    seasons: int = 1,
    *,
    first_season: int = DEFAULT_FIRST_SEASON,
    seed: int = 1,
    games_per_season: int | None = None,
    say: Say | None = None,
) -> BatchWriter:
    """Batches from the league generator: A = `seasons` seasons from `first_season`, B = the `seasons` after.

    Both come from one generation of 2 x `seasons` seasons, split by season: A holds the players of its
    events, B every player (unchanged ones are no-ops for the loader). `games_per_season` keeps only the
    first games of each season, in play order (a smaller, still valid league for quick runs).
    """
    report = say or (lambda _: None)

    def write(batch_a: Path, batch_b: Path) -> None:
        scratch = batch_a.parent / "generated"
        started = time.monotonic()
        ticker = Ticker(report)

        def progress(done: int, total: int) -> None:
            ticker.tick(f"generating: {done}/{total} games ({time.monotonic() - started:.0f} s)")

        generate_league(scratch, seasons=2 * seasons, first_season=first_season, seed=seed, progress=progress)
        split_by_season(scratch, batch_a, batch_b, seasons, games_per_season)
        shutil.rmtree(scratch, ignore_errors=True)

    return write


def split_by_season(
    source: Path, batch_a: Path, batch_b: Path, seasons_in_a: int, games_per_season: int | None = None
) -> None:
    """Split a canonical CSV folder: the first `seasons_in_a` seasons (by label) to A, the others to B."""
    for folder in (batch_a, batch_b):
        folder.mkdir(parents=True, exist_ok=True)
    games_file = _required_input(source, "games")
    with _open_text(games_file) as stream:
        rows = list(csv.reader(stream))
    header, games = rows[0], rows[1:]
    season_column, game_column = header.index("season"), header.index("game_id")
    labels = sorted({game[season_column] for game in games})
    kept: dict[str, list[list[str]]] = {}
    for game in games:
        listed = kept.setdefault(game[season_column], [])
        if games_per_season is None or len(listed) < games_per_season:
            listed.append(game)
    side = {
        game[game_column]: ("a" if labels.index(label) < seasons_in_a else "b")
        for label, listed in kept.items()
        for game in listed
    }
    for name, batch in (("a", batch_a), ("b", batch_b)):
        _write_rows(batch / "games.csv", header, [game for game in games if side.get(game[game_column]) == name])
        shutil.copyfile(_required_input(source, "teams"), batch / "teams.csv")
    players_in_a = _split_events(
        _required_input(source, "events"), batch_a / "events.csv", batch_b / "events.csv", side
    )
    with _open_text(_required_input(source, "players")) as stream:
        players = list(csv.reader(stream))
    player_column = players[0].index("player_id")
    _write_rows(batch_a / "players.csv", players[0], [row for row in players[1:] if row[player_column] in players_in_a])
    _write_rows(batch_b / "players.csv", players[0], players[1:])


def _split_events(events: Path, to_a: Path, to_b: Path, side: Mapping[str, str]) -> set[str]:
    """Route each event line by its game (generated events need no CSV quoting); the players A refers to."""
    players: set[str] = set()
    with _open_text(events) as stream, to_a.open("w", encoding="utf-8") as a, to_b.open("w", encoding="utf-8") as b:
        header = stream.readline()
        columns = header.rstrip("\n").split(",")
        game, player, helper = (columns.index(name) for name in ("game_id", "player_id", "secondary_player_id"))
        a.write(header)
        b.write(header)
        for line in stream:
            fields = line.rstrip("\n").split(",")
            target = side.get(fields[game])
            if target == "a":
                a.write(line)
                players.update((fields[player], fields[helper]))
            elif target == "b":
                b.write(line)
    players.discard("")
    return players


def _required_input(folder: Path, table: str) -> Path:
    found = find_input(folder, table)
    if found is None:
        raise FileNotFoundError(f"{folder} has no {table}.csv or {table}.csv.gz")
    return found


def _open_text(path: Path) -> IO[str]:
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return path.open(encoding="utf-8", newline="")


def _write_rows(path: Path, header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as stream:
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def game_ids(folder: Path) -> set[int]:
    """The games of a batch folder (none without a games file)."""
    games = find_input(folder, "games")
    if games is None:
        return set()
    with _open_text(games) as stream:
        reader = csv.DictReader(stream)
        return {int(row["game_id"]) for row in reader}
