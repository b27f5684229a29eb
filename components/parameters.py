"""The PostgreSQL settings every stack runs with, defined once for both engines.

An RDS instance takes them all in its DB parameter group. An Aurora cluster
splits them: settings that must be the same on every instance of the cluster
(TLS, the preloaded libraries, autovacuum, which runs on the writer only) go in
its cluster parameter group; settings that shape one instance's queries and logs
go in the DB parameter group its instances share, where a reader could differ.

Nothing here creates a resource: components/database.py and components/aurora.py do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

Scope = Literal["cluster", "instance"]
CLUSTER: Final = "cluster"
INSTANCE: Final = "instance"


@dataclass(frozen=True)
class Parameter:
    name: str
    value: str
    apply_method: str
    """Static parameters must say pending-reboot, or every update shows a diff (pulumi/pulumi-aws#2442)."""
    scope: Scope
    """Where an Aurora cluster keeps it (an RDS instance keeps every parameter in its one group)."""


STACK_PARAMETERS: Final[tuple[Parameter, ...]] = (
    Parameter("rds.force_ssl", "1", "immediate", CLUSTER),  # FSBP RDS.38: TLS only
    Parameter("ssl_min_protocol_version", "TLSv1.2", "immediate", CLUSTER),
    Parameter("log_min_duration_statement", "500", "immediate", INSTANCE),  # ms; CKV2_AWS_30
    Parameter("log_statement", "ddl", "immediate", INSTANCE),  # CKV2_AWS_30, without logging data
    Parameter("shared_preload_libraries", "pg_stat_statements", "pending-reboot", CLUSTER),
    Parameter("track_io_timing", "1", "immediate", INSTANCE),
    # As-of lookups run in well under a millisecond; JIT compilation would cost
    # more than the query whenever the planner's estimate crosses jit_above_cost.
    Parameter("jit", "0", "immediate", INSTANCE),
    Parameter("random_page_cost", "1.1", "immediate", INSTANCE),  # SSD storage (gp3, Aurora): index lookups are cheap
    # An idle open transaction holds back vacuum of the cumulative tables.
    Parameter("idle_in_transaction_session_timeout", "300000", "immediate", INSTANCE),
    Parameter("log_autovacuum_min_duration", "10000", "immediate", CLUSTER),
)


def in_scope(scope: Scope) -> tuple[Parameter, ...]:
    """The parameters an Aurora cluster keeps at `scope`, in their declared order."""
    return tuple(parameter for parameter in STACK_PARAMETERS if parameter.scope == scope)
