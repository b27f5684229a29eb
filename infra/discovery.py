"""What the program must know about the account before it registers the in-database part.

The sport databases, roles and schema go through the `postgresql` provider,
which needs a live instance (or an Aurora cluster, whose writer it connects to)
and a network path to it. On the first `pulumi up` of a new stack neither
exists yet, so the program looks the database up and, while there is none,
leaves the in-database part for the next run instead of
letting every postgresql resource fail. Once the instance exists, the program
checks that the address it will connect to (usually the local end of the
tunnel) accepts connections, and says how to open the tunnel when it does not.

This is the program's only look-up of live state; components never call AWS.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

PROBE_TIMEOUT_SECONDS = 3.0


@dataclass(frozen=True)
class LiveInstance:
    """The stack's RDS instance (or Aurora cluster, at its writer endpoint) as it is in the account now."""

    identifier: str
    address: str
    port: int


def find_instance(identifier: str, provider: aws.Provider) -> LiveInstance | None:
    """The instance named `identifier` in the provider's account and region, or None when there is none."""
    # A filter, not get_instance: looking up a missing identifier is an answer here, not an error.
    found = aws.rds.get_instances(
        filters=[aws.rds.GetInstancesFilterArgs(name="db-instance-id", values=[identifier])],
        opts=pulumi.InvokeOptions(provider=provider),
    )
    if identifier not in (found.instance_identifiers or []):
        return None
    detail = aws.rds.get_instance(db_instance_identifier=identifier, opts=pulumi.InvokeOptions(provider=provider))
    return LiveInstance(identifier=identifier, address=detail.address, port=int(detail.port))


def find_cluster(identifier: str, provider: aws.Provider) -> LiveInstance | None:
    """The Aurora cluster named `identifier`, at its writer endpoint, or None when there is none."""
    # A filter, not get_cluster: looking up a missing identifier is an answer here, not an error.
    found = aws.rds.get_clusters(
        filters=[aws.rds.GetClustersFilterArgs(name="db-cluster-id", values=[identifier])],
        opts=pulumi.InvokeOptions(provider=provider),
    )
    if identifier not in (found.cluster_identifiers or []):
        return None
    detail = aws.rds.get_cluster(cluster_identifier=identifier, opts=pulumi.InvokeOptions(provider=provider))
    return LiveInstance(identifier=identifier, address=detail.endpoint, port=int(detail.port))


def port_is_open(host: str, port: int, timeout_seconds: float = PROBE_TIMEOUT_SECONDS) -> bool:
    """Whether something accepts TCP connections at host:port (a tunnel's local end, or the instance)."""
    try:
        with socket.create_connection((host, port), timeout=timeout_seconds):
            return True
    except OSError:
        return False
