"""Which database a command talks to: --dsn, else TEMPORALDB_DSN, else the local server."""

from __future__ import annotations

import os

DSN_ENV = "TEMPORALDB_DSN"


class NoDatabaseError(Exception):
    """No DSN was given and no local server is running."""


def resolve_dsn(explicit: str | None, role: str | None = None) -> str:
    """`role` picks the login role of the model on the local server; an explicit DSN names its own user."""
    if explicit:
        return explicit
    from_env = os.environ.get(DSN_ENV)
    if from_env:
        return from_env
    from temporaldb import localpg  # noqa: PLC0415 (the embedded server is only needed without a DSN)

    local = localpg.default_dsn(role=role)
    if local is None:
        raise NoDatabaseError(
            f"no database: pass --dsn, set {DSN_ENV}, or start the local server with `temporaldb local start`"
        )
    return local
