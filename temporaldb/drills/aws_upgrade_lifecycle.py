"""The RDS upgrade drill's waits and deletions: its snapshot, its copy's upgrade, its parameter group.

The deletions touch only what carries this run's drill tag.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any, Final

from temporaldb.drills import rds
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


def delete_drill_parameter_group(client: rds.Client, name: str, run_id: str) -> bool:
    """Delete a parameter group if, and only if, it carries this run's drill tag; False when there is none."""
    try:
        found = client.describe_db_parameter_groups(DBParameterGroupName=name)["DBParameterGroups"]
    except client.exceptions.DBParameterGroupNotFoundFault:
        return False
    if not found:
        return False
    arn = found[0].get("DBParameterGroupArn")
    raw = client.list_tags_for_resource(ResourceName=arn).get("TagList") if arn else None
    rds.require_run_tag(raw, f"parameter group {name}", run_id)
    client.delete_db_parameter_group(DBParameterGroupName=name)
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
    """Poll until `identifier` is available on `version`, after a modify_db_instance that asked for it.

    RDS answers the modify while the instance is still `available` on the old version (the new one pending), then
    goes `upgrading`; a failed pre-check brings it back to `available` on the old version with nothing pending.
    `accepted` is the modify's answer (its PendingModifiedValues show the upgrade was taken).
    """
    started_at = time.monotonic()
    deadline = started_at + timeout_seconds
    started = bool(((accepted or {}).get("PendingModifiedValues") or {}).get("EngineVersion"))
    last = ""
    while True:
        try:
            instance: dict[str, Any] = client.describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"][0]
        except client.exceptions.DBInstanceNotFoundFault:
            raise rds.RdsDrillError(f"{identifier} disappeared during its upgrade") from None
        status = str(instance.get("DBInstanceStatus"))
        running = str(instance.get("EngineVersion", ""))
        pending = (instance.get("PendingModifiedValues") or {}).get("EngineVersion")
        shown = f"{status}, {running}" + (f" (pending {pending})" if pending else "")
        if shown != last:
            say(f"{identifier}: {shown} after {time.monotonic() - started_at:.0f} s")
            last = shown
        if status in rds.TERMINAL_STATES:
            raise rds.RdsDrillError(f"{identifier} went to {status!r} during its upgrade{_events(client, identifier)}")
        if status == "available" and running == version:
            return instance
        if status != "available" or pending:
            started = True
        elif started or time.monotonic() - started_at >= start_grace_seconds:
            raise rds.RdsDrillError(
                f"{identifier} is available but runs {running}, not {version}: RDS did not upgrade it"
                f"{_events(client, identifier)} (the upgrade logs: aws rds describe-db-log-files "
                f"--db-instance-identifier {identifier}, pg_upgrade_precheck.log)"
            )
        if time.monotonic() >= deadline:
            raise rds.RdsDrillError(f"{identifier} not upgraded after {timeout_seconds:.0f} s (last status {status})")
        sleep(poll_seconds)


def _events(client: rds.Client, identifier: str) -> str:
    """The instance's recent events, best effort: where RDS says why an upgrade failed."""
    try:
        events = client.describe_events(SourceIdentifier=identifier, SourceType="db-instance", Duration=720)["Events"]
    except Exception:  # only a hint for the error message: the error itself is what matters
        return ""
    messages = [str(event.get("Message", "")) for event in events[-3:]]
    return f"; its last events: {' | '.join(messages)}" if messages else ""
