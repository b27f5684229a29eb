"""The RDS side of the drills, with boto3: find the stack's instance, restore a tagged copy, wait, tear down.

The drills never change the source instance. Every instance (and Aurora
cluster, temporaldb/drills/rds_cluster.py) a drill creates carries the tag
`temporaldb:drill = <run id>`; a run refuses to start when anything already
carries its id, and teardown deletes only what this run asked for, after
reading that tag back.

AWS answers are plain dicts (botocore has no published stubs for this
release); the few fields read are converted into typed values here.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Final, Protocol

DRILL_TAG: Final = "temporaldb:drill"
DRILL_KIND_TAG: Final = "temporaldb:drill-kind"
STACK_TAG: Final = "stack"
PROJECT_TAG: Final = "project"
PROJECT: Final = "temporaldb"
MAX_IDENTIFIER: Final = 63
# AWS answers meaning the caller's identity is the problem, not the drill's request.
CREDENTIAL_ERRORS: Final = frozenset(
    {"AccessDenied", "AccessDeniedException", "ExpiredToken", "InvalidClientTokenId", "UnrecognizedClientException"}
)
HEARTBEAT_SECONDS: Final = 300.0  # a long wait still says it is alive this often
# States from which an instance never becomes available without someone acting.
TERMINAL_STATES: Final = frozenset(
    {"failed", "incompatible-restore", "incompatible-parameters", "incompatible-network", "storage-full",
     "inaccessible-encryption-credentials", "restore-error", "deleting"}
)  # fmt: skip

Say = Callable[[str], None]
Client = Any  # a boto3 RDS client


@dataclass(frozen=True)
class Limits:
    """How a drill waits: between polls, in all, and with what (tests pass a sleep that returns at once)."""

    poll_seconds: float = 30.0
    timeout_seconds: float = 3 * 3600.0
    sleep: Callable[[float], None] = time.sleep

    def kwargs(self) -> dict[str, Any]:
        """As the keyword arguments of the waits and deletions that take them one by one."""
        return {"poll_seconds": self.poll_seconds, "timeout_seconds": self.timeout_seconds, "sleep": self.sleep}


class RdsDrillError(Exception):
    """An AWS step of a drill failed; the message says which and why."""


class PreconditionError(RdsDrillError):
    """The drill refuses to start: nothing has been changed."""


@dataclass(frozen=True)
class SourceInstance:
    """What a drill copies from the stack's instance (restores otherwise get the account defaults)."""

    identifier: str
    arn: str
    engine: str
    engine_version: str
    instance_class: str
    subnet_group: str
    security_group_ids: tuple[str, ...]
    parameter_group: str
    port: int
    address: str
    latest_restorable_time: dt.datetime | None
    tags: Mapping[str, str]
    iam_auth: bool
    resource_id: str = ""
    """DbiResourceId: tells this instance's backups from those of an earlier instance of the same name."""
    backup_retention_days: int = 0


def new_run_id(now: dt.datetime | None = None) -> str:
    """`20261126t041500-a1b2`: sortable, and unique enough to tag one drill's resources."""
    moment = now or dt.datetime.now(dt.UTC)
    return f"{moment:%Y%m%dt%H%M%S}-{secrets.token_hex(2)}"


def drill_identifier(source: str, kind: str, run_id: str, member: str = "") -> str:
    """A valid, unique RDS identifier for the drill's copy: letters, digits and single hyphens, at most 63.

    `member` names an instance of a copied cluster (`writer`): `<source>-<kind>-<run id>-writer`, the source's stem
    shortened first, so that the cluster's and its instances' names share it.
    """
    suffix = f"-{kind}-{run_id}" + (f"-{member}" if member else "")
    stem = re.sub(r"-+", "-", source[: MAX_IDENTIFIER - len(suffix)]).rstrip("-")
    return f"{stem}{suffix}"


def tags_of(raw: Sequence[Mapping[str, str]] | None) -> dict[str, str]:
    """An AWS TagList as a dict."""
    return {str(tag["Key"]): str(tag["Value"]) for tag in raw or ()}


def _source(instance: Mapping[str, Any]) -> SourceInstance:
    endpoint = instance.get("Endpoint") or {}
    groups = instance.get("DBParameterGroups") or [{}]
    return SourceInstance(
        identifier=str(instance["DBInstanceIdentifier"]),
        arn=str(instance.get("DBInstanceArn", "")),
        engine=str(instance.get("Engine", "")),
        engine_version=str(instance.get("EngineVersion", "")),
        instance_class=str(instance.get("DBInstanceClass", "")),
        subnet_group=str((instance.get("DBSubnetGroup") or {}).get("DBSubnetGroupName", "")),
        security_group_ids=tuple(str(group["VpcSecurityGroupId"]) for group in instance.get("VpcSecurityGroups") or ()),
        parameter_group=str(groups[0].get("DBParameterGroupName", "")),
        port=int(endpoint.get("Port") or instance.get("DbInstancePort") or 5432),
        address=str(endpoint.get("Address", "")),
        latest_restorable_time=instance.get("LatestRestorableTime"),
        tags=tags_of(instance.get("TagList")),
        iam_auth=bool(instance.get("IAMDatabaseAuthenticationEnabled")),
        resource_id=str(instance.get("DbiResourceId", "")),
        backup_retention_days=int(instance.get("BackupRetentionPeriod") or 0),
    )


def find_source(rds: Client, *, identifier: str | None = None, stack: str | None = None) -> SourceInstance:
    """The instance named `identifier`, else the one tagged `project=temporaldb, stack=temporaldb-<stack>`."""
    if identifier:
        try:
            found = rds.describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"]
        except rds.exceptions.DBInstanceNotFoundFault:
            raise PreconditionError(f"no RDS instance {identifier!r} in this account and region") from None
        return _source(found[0])
    if not stack:
        raise PreconditionError("name the source: --instance IDENTIFIER or --stack STACK")
    wanted = {PROJECT_TAG: PROJECT, STACK_TAG: f"{PROJECT}-{stack}"}
    matches = [
        instance
        for page in rds.get_paginator("describe_db_instances").paginate()
        for instance in page["DBInstances"]
        if _has_tags(instance, wanted)
        and DRILL_TAG not in tags_of(instance.get("TagList"))
        and not instance.get("ReadReplicaSourceDBInstanceIdentifier")  # replicas carry the stack's tags too
        and not instance.get("DBClusterIdentifier")  # so do an Aurora cluster's instances: the cluster is the source
    ]
    if len(matches) != 1:
        names = ", ".join(str(m["DBInstanceIdentifier"]) for m in matches) or "none"
        raise PreconditionError(
            f"expected one RDS instance (or one Aurora cluster) tagged project={PROJECT}, stack={PROJECT}-{stack}; "
            f"found {names}: pass --instance or --cluster to choose"
        )
    return _source(matches[0])


def _has_tags(instance: Mapping[str, Any], wanted: Mapping[str, str]) -> bool:
    tags = tags_of(instance.get("TagList"))
    return all(tags.get(key) == value for key, value in wanted.items())


class Tagged(Protocol):
    """A drill's source, instance or cluster: what its tags are."""

    @property
    def tags(self) -> Mapping[str, str]: ...


def drill_tags(source: Tagged, kind: str, run_id: str) -> list[dict[str, str]]:
    """The source's project/stack/costCenter tags (so costs land on the stack) plus the drill's own."""
    kept = {key: value for key, value in source.tags.items() if key in (PROJECT_TAG, STACK_TAG, "costCenter")}
    kept.update({DRILL_TAG: run_id, DRILL_KIND_TAG: kind})
    return [{"Key": key, "Value": value} for key, value in sorted(kept.items())]


@dataclass(frozen=True)
class PlannedCall:
    """One AWS call, printed by a dry run and made by `--apply`."""

    operation: str
    params: Mapping[str, Any] = field(default_factory=dict)
    why: str = ""

    def render(self) -> str:
        shown = ", ".join(f"{key}={_short(value)}" for key, value in self.params.items())
        return f"rds.{self.operation}({shown})" + (f"  # {self.why}" if self.why else "")


def _short(value: object) -> str:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, list) and value and isinstance(value[0], dict) and "Key" in value[0]:
        return "{" + ", ".join(f"{tag['Key']}={tag['Value']}" for tag in value) + "}"
    return repr(value)


def restore_call(
    source: SourceInstance,
    target: str,
    tags: list[dict[str, str]],
    *,
    restore_time: dt.datetime | None = None,
    snapshot: str | None = None,
) -> PlannedCall:
    """The restore, with the stack's subnet group, security groups and parameter group passed explicitly."""
    common: dict[str, Any] = {
        "DBSubnetGroupName": source.subnet_group,
        "VpcSecurityGroupIds": list(source.security_group_ids),
        "DBParameterGroupName": source.parameter_group,
        "DBInstanceClass": source.instance_class,
        "MultiAZ": False,  # a drill copy needs no standby
        "PubliclyAccessible": False,
        "DeletionProtection": False,
        "EnableIAMDatabaseAuthentication": source.iam_auth,
        "CopyTagsToSnapshot": True,
        "Tags": tags,
    }
    if snapshot:
        params = {"DBInstanceIdentifier": target, "DBSnapshotIdentifier": snapshot, **common}
        return PlannedCall("restore_db_instance_from_db_snapshot", params, f"copy of {source.identifier}")
    when: dict[str, Any] = {"RestoreTime": restore_time} if restore_time else {"UseLatestRestorableTime": True}
    params = {"SourceDBInstanceIdentifier": source.identifier, "TargetDBInstanceIdentifier": target, **when, **common}
    return PlannedCall("restore_db_instance_to_point_in_time", params, f"copy of {source.identifier}")


def check_restore_time(rds: Client, source: SourceInstance, restore_time: dt.datetime) -> None:
    """Refuse a time outside the restorable window before asking AWS (which answers InvalidRestoreFault)."""
    latest = source.latest_restorable_time
    earliest: dt.datetime | None = None
    backups = rds.describe_db_instance_automated_backups(DBInstanceIdentifier=source.identifier).get(
        "DBInstanceAutomatedBackups", []
    )
    for backup in backups:
        # Only this instance's live backups: a deleted namesake's retained backups list their own window.
        if backup.get("Status", "active") != "active" or not _same_instance(backup, source):
            continue
        window = backup.get("RestoreWindow") or {}
        earliest = window.get("EarliestTime") or earliest
        latest = window.get("LatestTime") or latest
    if latest is not None and restore_time > latest:
        raise PreconditionError(
            f"--restore-time {restore_time.isoformat()} is after the latest restorable time {latest.isoformat()} "
            f"of {source.identifier}; pick an earlier time or omit it for the latest"
        )
    if earliest is not None and restore_time < earliest:
        raise PreconditionError(
            f"--restore-time {restore_time.isoformat()} is before the earliest restorable time "
            f"{earliest.isoformat()} of {source.identifier} (backup retention)"
        )


def _same_instance(backup: Mapping[str, Any], source: SourceInstance) -> bool:
    owner = backup.get("DbiResourceId")
    return not owner or not source.resource_id or owner == source.resource_id


def call(rds: Client, planned: PlannedCall) -> dict[str, Any]:
    """Make a planned call; AWS errors become RdsDrillError naming the operation and AWS's reason."""
    try:
        result: dict[str, Any] = getattr(rds, planned.operation)(**planned.params)
    except rds.exceptions.ClientError as error:
        details = error.response.get("Error", {})
        raise RdsDrillError(
            f"{planned.operation} refused: {details.get('Code', 'error')}: {details.get('Message', error)}"
        ) from error
    return result


Describe = Callable[[], dict[str, Any] | None]
"""Describes one resource (instance or cluster) as AWS does; None while it does not exist."""


def describe_instance(rds: Client, identifier: str) -> dict[str, Any] | None:
    try:
        found: dict[str, Any] = rds.describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"][0]
    except rds.exceptions.DBInstanceNotFoundFault:
        return None
    return found


def wait_available(
    rds: Client,
    identifier: str,
    say: Say,
    *,
    poll_seconds: float = 30.0,
    timeout_seconds: float = 3 * 3600,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Poll until instance `identifier` is available, saying its status as it changes; explicit limits."""
    return wait_status(
        partial(describe_instance, rds, identifier),
        identifier,
        say,
        status_key="DBInstanceStatus",
        poll_seconds=poll_seconds,
        timeout_seconds=timeout_seconds,
        sleep=sleep,
    )


def wait_status(
    describe: Describe,
    identifier: str,
    say: Say,
    *,
    status_key: str,
    poll_seconds: float,
    timeout_seconds: float,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Poll `describe` until the resource's `status_key` says available, saying it as it changes, like a waiter
    with explicit limits; a terminal state fails at once."""
    deadline = time.monotonic() + timeout_seconds
    started = said_at = time.monotonic()
    last = ""
    while True:
        described = describe() or {status_key: "not-yet-visible"}
        status = str(described.get(status_key))
        if status != last or time.monotonic() - said_at >= HEARTBEAT_SECONDS:
            say(f"{identifier}: {status} after {time.monotonic() - started:.0f} s")
            last, said_at = status, time.monotonic()
        if status == "available":
            return described
        if status in TERMINAL_STATES:
            raise RdsDrillError(f"{identifier} went to {status!r}; it will not become available by itself")
        if time.monotonic() >= deadline:
            raise RdsDrillError(f"{identifier} not available after {timeout_seconds:.0f} s (last status {status})")
        sleep(poll_seconds)


def tagged_with_run(rds: Client, run_id: str) -> list[str]:
    """Instances, Aurora clusters and snapshots already carrying this run's drill tag (a reused --run-id must find
    none)."""
    found = [
        f"instance {instance['DBInstanceIdentifier']}"
        for page in rds.get_paginator("describe_db_instances").paginate()
        for instance in page["DBInstances"]
        if tags_of(instance.get("TagList")).get(DRILL_TAG) == run_id
    ]
    found += [
        f"cluster {cluster['DBClusterIdentifier']}"
        for page in rds.get_paginator("describe_db_clusters").paginate()
        for cluster in page["DBClusters"]
        if tags_of(cluster.get("TagList")).get(DRILL_TAG) == run_id
    ]
    found += [
        f"snapshot {snapshot['DBSnapshotIdentifier']}"
        for page in rds.get_paginator("describe_db_snapshots").paginate(SnapshotType="manual")
        for snapshot in page["DBSnapshots"]
        if tags_of(snapshot.get("TagList")).get(DRILL_TAG) == run_id
    ]
    return found


def require_run_tag(raw_tags: Sequence[Mapping[str, str]] | None, what: str, run_id: str) -> None:
    """The guard before every deletion: `what` must carry this run's drill tag."""
    tag = tags_of(raw_tags).get(DRILL_TAG)
    if tag != run_id:
        raise RdsDrillError(f"refusing to delete {what}: its {DRILL_TAG} tag is {tag!r}, not this run's {run_id}")


def refuse_reused_run(rds: Client, run_id: str) -> None:
    """Teardown deletes what carries the run's tag: nothing may carry it before the run starts."""
    found = tagged_with_run(rds, run_id)
    if found:
        raise PreconditionError(f"{', '.join(found)} already carry {DRILL_TAG}={run_id}: use a new run id")


def delete_drill_instance(
    rds: Client,
    identifier: str,
    run_id: str,
    *,
    cluster_member: bool = False,
    poll_seconds: float = 15.0,
    timeout_seconds: float = 15 * 60.0,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """Delete `identifier` if, and only if, it carries this run's drill tag; returns what became of it.

    An instance still being created, modified or backed up refuses deletion
    (InvalidDBInstanceState): retry until RDS accepts, within the limits.
    An Aurora cluster's instance (`cluster_member`) is deleted by name alone:
    its backups are the cluster's, and AWS refuses a final snapshot of it.
    """
    params: dict[str, Any] = {"DBInstanceIdentifier": identifier}
    if not cluster_member:
        params.update(SkipFinalSnapshot=True, DeleteAutomatedBackups=True)
    return delete_tagged(
        partial(describe_instance, rds, identifier),
        partial(rds.delete_db_instance, **params),
        identifier,
        run_id,
        status_key="DBInstanceStatus",
        busy=rds.exceptions.InvalidDBInstanceStateFault,
        poll_seconds=poll_seconds,
        timeout_seconds=timeout_seconds,
        sleep=sleep,
    )


def delete_tagged(
    describe: Describe,
    delete: Callable[[], object],
    identifier: str,
    run_id: str,
    *,
    status_key: str,
    busy: type[Exception],
    poll_seconds: float,
    timeout_seconds: float,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """Delete a resource if, and only if, its description carries this run's drill tag: "already gone",
    "deleting" (someone asked before) or "deletion requested". While AWS answers `busy` (the resource is being
    created or modified), retry within the limits."""
    deadline = time.monotonic() + timeout_seconds
    while True:
        described = describe()
        if described is None:
            return "already gone"
        require_run_tag(described.get("TagList"), identifier, run_id)
        if described.get(status_key) == "deleting":
            return "deleting"
        try:
            delete()
        except busy:
            if time.monotonic() >= deadline:
                raise RdsDrillError(
                    f"{identifier} is still {described.get(status_key)!r} and refuses deletion after "
                    f"{timeout_seconds:.0f} s: delete it by hand (runbook, Rollback)"
                ) from None
            sleep(poll_seconds)
            continue
        return "deletion requested"


def wait_deleted(
    rds: Client,
    identifier: str,
    say: Say,
    *,
    poll_seconds: float = 30.0,
    timeout_seconds: float = 30 * 60.0,
    sleep: Callable[[float], None] = time.sleep,
) -> bool:
    """Poll until instance `identifier` no longer exists; False when it is still deleting at the time limit."""
    return wait_gone(
        partial(describe_instance, rds, identifier),
        identifier,
        say,
        poll_seconds=poll_seconds,
        timeout_seconds=timeout_seconds,
        sleep=sleep,
    )


def wait_gone(
    describe: Describe,
    identifier: str,
    say: Say,
    *,
    poll_seconds: float,
    timeout_seconds: float,
    sleep: Callable[[float], None] = time.sleep,
) -> bool:
    """Poll until `describe` finds nothing; False (and said) when it still exists at the time limit."""
    deadline = time.monotonic() + timeout_seconds
    while True:
        if describe() is None:
            return True
        if time.monotonic() >= deadline:
            say(f"{identifier} is still deleting after {timeout_seconds:.0f} s; RDS will finish on its own")
            return False
        sleep(poll_seconds)
