"""The import's worker processes: an ordered map over documents or games, a bounded window ahead.

Reading and mapping a feed is pure Python and per document or per game, so one
process per core does it; the importing process takes the results in input
order (errors too: the first bad item in order is the one reported, as in one
process) and writes them. Few items are mapped in this process: starting
workers would cost more than it saves.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from types import TracebackType
from typing import Final, TypeVar

from temporaldb.feeds.model import FeedError

WORKERS_ENV: Final = "TEMPORALDB_IMPORT_WORKERS"
PARALLEL_FROM: Final = 16
"""Fewer items are mapped in this process."""
WINDOW_PER_WORKER: Final = 4
"""Chunks submitted ahead per worker: enough to keep them busy, few enough to bound memory."""
CHUNK: Final = 8
"""Items a worker takes at once: a task's round trip costs a few hundred microseconds, a game's mapping ~10 ms."""

PRELOAD: Final = ("temporaldb.feeds.importer",)
"""Imported by the fork server, so that each worker starts with them."""

Item = TypeVar("Item")
Result = TypeVar("Result")


def default_workers() -> int:
    """One process per core; TEMPORALDB_IMPORT_WORKERS overrides (1: everything in this process)."""
    given = os.environ.get(WORKERS_ENV)
    if not given:
        return os.cpu_count() or 1
    try:
        count = int(given)
    except ValueError:
        count = 0
    if count < 1:
        raise FeedError(f"{WORKERS_ENV}={given!r}: expected a whole number of processes, 1 or more")
    return count


def _map_chunk(function: Callable[[Item], Result], items: Sequence[Item]) -> list[Result]:
    """In a worker: the items in order; the first that fails raises, as it would in one process."""
    return [function(item) for item in items]


class Workers:
    """A pool started on first use and stopped on exit (cancelling what is still queued)."""

    def __init__(self, count: int) -> None:
        self.count = count
        self._pool: ProcessPoolExecutor | None = None

    def map(self, function: Callable[[Item], Result], items: Sequence[Item]) -> Iterator[Result]:
        """function(item) for each item, in order."""
        if self.count <= 1 or len(items) < PARALLEL_FROM:
            yield from map(function, items)
            return
        if self._pool is None:
            # forkserver, not fork: the importing process may run threads (an S3 client's), which fork
            # would copy in an unknown state. The server imports the feed modules once; workers fork from it.
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(list(PRELOAD))
            self._pool = ProcessPoolExecutor(self.count, mp_context=context)
        window: deque[Future[list[Result]]] = deque()
        try:
            for start in range(0, len(items), CHUNK):
                window.append(self._pool.submit(_map_chunk, function, items[start : start + CHUNK]))
                if len(window) >= WINDOW_PER_WORKER * self.count:
                    yield from window.popleft().result()
            while window:
                yield from window.popleft().result()
        finally:
            for future in window:
                future.cancel()

    def __enter__(self) -> Workers:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
