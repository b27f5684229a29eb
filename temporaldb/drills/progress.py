"""Progress lines for long waits: `Ticker.tick(message)` says it at most every few seconds."""

from __future__ import annotations

import time
from typing import Final

from temporaldb.drills.report import Say

PROGRESS_EVERY_SECONDS: Final = 5.0


class Ticker:
    """say() at most every PROGRESS_EVERY_SECONDS, for long waits."""

    def __init__(self, say: Say) -> None:
        self.say = say
        self.last = time.monotonic()

    def tick(self, message: str, *, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self.last >= PROGRESS_EVERY_SECONDS:
            self.last = now
            self.say(message)
