"""temporaldb: a temporal NBA play-by-play database, its CLI and a notebook API (`temporaldb.connect`).

`connect` and `Client` are loaded on first use, so importing the package (as the CLI does) loads no driver.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from temporaldb.api import Client, connect

__all__ = ["Client", "connect"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from temporaldb import api

        return getattr(api, name)
    raise AttributeError(f"module 'temporaldb' has no attribute {name!r}")
