"""Files written whole or not at all: a temporary file beside the target, renamed over it at the end.

The temporary file is created first, so an unwritable path is reported before any work; on an error, Ctrl-C or
SIGTERM it is removed, so no partial file is ever left under the target's name (nor beside it).
"""

from __future__ import annotations

import os
import signal
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import BinaryIO


class OutputError(Exception):
    """The output path cannot be written; the message is one line naming the option and the path."""


@contextmanager
def atomic_file(path: Path, option: str = "--out") -> Iterator[BinaryIO]:
    """A binary handle whose content replaces `path` when the block ends without an error."""
    if path.is_dir():
        raise OutputError(f"{option} {path}: is a folder; give a file name")
    try:
        descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    except OSError as error:
        raise OutputError(f"{option} {path}: cannot write there: {error.strerror or error}") from None
    try:
        with os.fdopen(descriptor, "wb") as handle, _terminate_as_exit():
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o666 & ~_umask())  # mkstemp makes it private; the result gets the usual mode
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextmanager
def _terminate_as_exit() -> Iterator[None]:
    """SIGTERM raises SystemExit (143) meanwhile, so the cleanup above runs (in the main thread only)."""

    def terminate(_signal: int, _frame: FrameType | None) -> None:
        raise SystemExit(128 + signal.SIGTERM)

    try:
        previous = signal.signal(signal.SIGTERM, terminate)
    except ValueError:  # not the main thread: signals cannot be caught here
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
