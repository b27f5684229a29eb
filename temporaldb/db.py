"""Which database a command talks to: --stack (a deployed stack), --dsn, TEMPORALDB_DSN, else the local server."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from temporaldb.deployed import StackRequest

DSN_ENV = "TEMPORALDB_DSN"


class NoDatabaseError(Exception):
    """No DSN was given and no local server is running."""


def resolve_dsn(
    explicit: str | None,
    role: str | None = None,
    *,
    stack: StackRequest | None = None,
    say: Callable[[str], None] | None = None,
) -> str:
    """The DSN to hand psycopg.

    `stack`: the deployed stack's instance, as the request's role, with its password or IAM token in the
    returned DSN (never print it); `say` hears which instance and how. Otherwise `role` picks the login role
    of the model on the local server; an explicit DSN names its own user.
    """
    if stack is not None:
        from temporaldb import deployed  # noqa: PLC0415 (AWS is only needed for --stack)

        return deployed.connection_dsn(stack, say or (lambda _message: None))
    if explicit:
        return explicit
    from_env = os.environ.get(DSN_ENV)
    if from_env:
        return from_env
    from temporaldb import localpg  # noqa: PLC0415 (the embedded server is only needed without a DSN)

    local = localpg.default_dsn(role=role)
    if local is None:
        raise NoDatabaseError(
            f"no database: pass --dsn or --stack, set {DSN_ENV}, or start the local server with "
            "`temporaldb local start`"
        )
    return local
