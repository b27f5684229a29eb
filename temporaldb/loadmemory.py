"""How much memory a load may ask the server for: scaled to the server, not fixed.

The loader's sorts and its index rebuild run faster with generous work_mem and
maintenance_work_mem, but 256 MB and 1 GB on a 1 GiB db.t3.micro would invite
the out-of-memory killer. A session cannot see the machine's memory; it can
see how the server was sized. RDS's default parameter group sets
shared_buffers to a quarter and effective_cache_size to half of
DBInstanceClassMemory, and hand-tuned servers follow the same rules of thumb,
so the larger of 4 x shared_buffers and 2 x effective_cache_size estimates the
memory, and the load takes a sixteenth of it per sort (work_mem) and an eighth
for the index build (maintenance_work_mem), within fixed floors and ceilings.
`TEMPORALDB_LOAD_WORK_MEM` / `TEMPORALDB_LOAD_MAINTENANCE_WORK_MEM` override
the result (PostgreSQL units, e.g. 64MB).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Final, Protocol

MIB: Final = 1024**2
WORK_MEM_RANGE: Final = (4 * MIB, 256 * MIB)
MAINTENANCE_RANGE: Final = (64 * MIB, 1024 * MIB)
WORK_MEM_ENV: Final = "TEMPORALDB_LOAD_WORK_MEM"
MAINTENANCE_ENV: Final = "TEMPORALDB_LOAD_MAINTENANCE_WORK_MEM"

_SIZING = """
select pg_size_bytes(current_setting('shared_buffers')), pg_size_bytes(current_setting('effective_cache_size'))
"""


class _Executes(Protocol):
    def execute(self, query: str) -> _Rows: ...


class _Rows(Protocol):
    def fetchone(self) -> tuple[object, ...] | None: ...


@dataclass(frozen=True)
class LoadMemory:
    work_mem: str
    maintenance_work_mem: str
    estimated_server_bytes: int
    """0 when both settings came from the environment."""


def _clamp(value: int, bounds: tuple[int, int]) -> int:
    return max(bounds[0], min(bounds[1], value))


def _megabytes(value: int) -> str:
    return f"{value // MIB}MB"


def for_server(shared_buffers_bytes: int, effective_cache_bytes: int) -> LoadMemory:
    """The settings for a server sized like this (pure: the tests and the plan use it directly)."""
    memory = max(4 * shared_buffers_bytes, 2 * effective_cache_bytes)
    return LoadMemory(
        work_mem=os.environ.get(WORK_MEM_ENV) or _megabytes(_clamp(memory // 16, WORK_MEM_RANGE)),
        maintenance_work_mem=os.environ.get(MAINTENANCE_ENV) or _megabytes(_clamp(memory // 8, MAINTENANCE_RANGE)),
        estimated_server_bytes=memory,
    )


def choose(connection: _Executes) -> LoadMemory:
    """Read how the connected server is sized and scale the load's memory to it."""
    row = connection.execute(_SIZING).fetchone()
    if row is None:
        raise RuntimeError("the server did not report shared_buffers")
    return for_server(int(str(row[0])), int(str(row[1])))
