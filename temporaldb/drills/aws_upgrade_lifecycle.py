"""The RDS upgrade drills' waits and deletions: the snapshot, the copy's upgrade (instance or cluster), the groups.

The deletions touch only what carries this run's drill tag.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any, Final

from temporaldb.drills import rds
from temporaldb.drills.aws_upgrade_plan import INSTANCE_GROUPS, GroupApi
from temporaldb.drills.report import Say

UPGRADE_START_GRACE_SECONDS: Final = 600.0
"""How long an instance may stay available on the old version after the modify before the drill calls it failed."""
SNAPSHOT_FAILED_STATES: Final = frozenset({"failed", "error", "incompatible-restore", "deleting"})


def delete_drill_snapshot(client: rds.Client, identifier: str, run_id: str) -> bool:
    """Delete a manual snapshot if, and only if, it carries this run's drill tag; False when there is none."""
    try:
        found = client.describe_db_snapshots(DBSnapshotIdentifier=identifier)["DBSnapshots"]
    except client.exceptions.DBSnapshotNotFoundFault:
        return False
    if not found:
        return False
    described = found[0]
    raw = described.get("TagList")
    if raw is None:
        raw = client.list_tags_for_resource(ResourceName=described["DBSnapshotArn"]).get("TagList")
    rds.require_run_tag(raw, f"snapshot {identifier}", run_id)
    client.delete_db_snapshot(DBSnapshotIdentifier=identifier)
    return True


def delete_drill_parameter_group(client: rds.Client, name: str, run_id: str, api: GroupApi = INSTANCE_GROUPS) -> bool:
    """Delete a parameter group (of `api`'s kind) if, and only if, it carries this run's drill tag; False when there
    is none."""
    try:
        found = getattr(client, api.describe_groups)(**{api.name_key: name})[api.listed]
    except client.exceptions.DBParameterGroupNotFoundFault:
        return False
    if not found:
        return False
    arn = found[0].get(api.arn_key)
    raw = client.list_tags_for_resource(ResourceName=arn).get("TagList") if arn else None
    rds.require_run_tag(raw, f"{api.kind} {name}", run_id)
    getattr(client, api.delete)(**{api.name_key: name})
    return True


def wait_snapshot(
    client: rds.Client,
    identifier: str,
    say: Say,
    *,
    poll_seconds: float,
    timeout_seconds: float,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Poll until the snapshot is available, saying its status (and progress) as it changes."""
    deadline = time.monotonic() + timeout_seconds
    started = time.monotonic()
    last = ""
    while True:
        try:
            found = client.describe_db_snapshots(DBSnapshotIdentifier=identifier)["DBSnapshots"]
        except client.exceptions.DBSnapshotNotFoundFault:
            found = []
        described: dict[str, Any] = found[0] if found else {"Status": "not-yet-visible"}
        status = str(described.get("Status"))
        shown = f"{status} {described['PercentProgress']}%" if "PercentProgress" in described else status
        if shown != last:
            say(f"snapshot {identifier}: {shown} after {time.monotonic() - started:.0f} s")
            last = shown
        if status == "available":
            return described
        if status in SNAPSHOT_FAILED_STATES:
            raise rds.RdsDrillError(f"snapshot {identifier} went to {status!r}")
        if time.monotonic() >= deadline:
            raise rds.RdsDrillError(f"snapshot {identifier} not available after {timeout_seconds:.0f} s ({status})")
        sleep(poll_seconds)


@dataclass(frozen=True)
class Upgrading:
    """What an upgrade wait watches: an instance or an Aurora cluster, and where its upgrade logs are."""

    identifier: str
    describe: rds.Describe
    status_key: str
    source_type: str
    """Its events' SourceType (describe_events)."""
    logs_of: str
    """The instance whose upgrade logs (pg_upgrade_precheck.log) say why an upgrade failed."""


def wait_upgraded(
    client: rds.Client,
    identifier: str,
    version: str,
    say: Say,
    *,
    accepted: Mapping[str, Any] | None = None,
    poll_seconds: float,
    timeout_seconds: float,
    start_grace_seconds: float = UPGRADE_START_GRACE_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Poll until instance `identifier` is available on `version`, after a modify_db_instance that asked for it.

    RDS answers the modify while the instance is still `available` on the old version (the new one pending), then
    goes `upgrading`; a failed pre-check brings it back to `available` on the old version with nothing pending.
    `accepted` is the modify's answer (its PendingModifiedValues show the upgrade was taken).
    """
    watched = Upgrading(
        identifier, partial(rds.describe_instance, client, identifier), "DBInstanceStatus", "db-instance", identifier
    )
    limits = rds.Limits(poll_seconds, timeout_seconds, sleep)
    return wait_version(client, watched, version, say, accepted=accepted, limits=limits, grace=start_grace_seconds)


def wait_version(
    client: rds.Client,
    watched: Upgrading,
    version: str,
    say: Say,
    *,
    accepted: Mapping[str, Any] | None,
    limits: rds.Limits,
    grace: float = UPGRADE_START_GRACE_SECONDS,
) -> dict[str, Any]:
    """Poll until the watched instance or cluster is available on `version` (see wait_upgraded)."""
    identifier = watched.identifier
    started_at = time.monotonic()
    deadline = started_at + limits.timeout_seconds
    started = bool(((accepted or {}).get("PendingModifiedValues") or {}).get("EngineVersion"))
    last = ""
    while True:
        described = watched.describe()
        if described is None:
            raise rds.RdsDrillError(f"{identifier} disappeared during its upgrade")
        status = str(described.get(watched.status_key))
        running = str(described.get("EngineVersion", ""))
        pending = (described.get("PendingModifiedValues") or {}).get("EngineVersion")
        shown = f"{status}, {running}" + (f" (pending {pending})" if pending else "")
        if shown != last:
            say(f"{identifier}: {shown} after {time.monotonic() - started_at:.0f} s")
            last = shown
        if status in rds.TERMINAL_STATES:
            raise rds.RdsDrillError(f"{identifier} went to {status!r} during its upgrade{_events(client, watched)}")
        if status == "available" and running == version:
            return described
        if status != "available" or pending:
            started = True
        elif started or time.monotonic() - started_at >= grace:
            raise rds.RdsDrillError(
                f"{identifier} is available but runs {running}, not {version}: RDS did not upgrade it"
                f"{_events(client, watched)} (the upgrade logs: aws rds describe-db-log-files "
                f"--db-instance-identifier {watched.logs_of}, pg_upgrade_precheck.log)"
            )
        if time.monotonic() >= deadline:
            raise rds.RdsDrillError(
                f"{identifier} not upgraded after {limits.timeout_seconds:.0f} s (last status {status})"
            )
        limits.sleep(limits.poll_seconds)


def _events(client: rds.Client, watched: Upgrading) -> str:
    """The resource's recent events, best effort: where RDS says why an upgrade failed."""
    try:
        events = client.describe_events(
            SourceIdentifier=watched.identifier, SourceType=watched.source_type, Duration=720
        )["Events"]
    except Exception:  # only a hint for the error message: the error itself is what matters
        return ""
    messages = [str(event.get("Message", "")) for event in events[-3:]]
    return f"; its last events: {' | '.join(messages)}" if messages else ""
