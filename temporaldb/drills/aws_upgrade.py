"""The major-version upgrade drill against RDS: upgrade a tagged copy of the stack's instance, verify it, delete it.

Stages (each timed in the report):

    preconditions    `plan()`: the source, a valid major-version target, the target's parameter group family, the
                     instance class on the target, pending maintenance, the stack's target-family group; no change
    snapshot         a manual snapshot of the source, tagged with this run's drill tag (on a Single-AZ source this
                     briefly suspends I/O, as every snapshot does)
    restore          the copy, from that snapshot, with the stack's subnet group, security groups and parameter group
    wait_available   the copy answers
    parameter_group  the stack's group of the target family if there is one, else `<copy>-params` in that family,
                     tagged, with the source group's user-modified parameters (a parameter the new family refuses
                     becomes a finding, not a crash)
    record_facts     schema version and checksum, row counts, canary as-of answers of the copy (analyst login)
    prechecks        the SQL pre-checks AWS documents, on the copy (master login); a blocker stops the drill here
    upgrade          `modify_db_instance(EngineVersion, AllowMajorVersionUpgrade, DBParameterGroupName,
                     ApplyImmediately)`, wait until available, check the copy runs the target version
    analyze          `ANALYZE` of the model's tables (migrator login: its group owns them)
    verify           the copy's server runs the target major and its facts equal those before
    teardown         deletes the copy (only if it carries this run's tag) and waits until it is gone, then the drill's
                     snapshot and parameter group (only if they carry this run's tag); runs on failure and Ctrl-C too

The drill never changes the source (the snapshot aside). SQL reaches only the copy, through
`UpgradeAccess.copy_host/copy_port` when a tunnel stands in for its private address.

The describe calls about engine versions and maintenance go through an `EngineCatalog` (the seam): by default
`EngineCatalog(client)`, the same RDS client; tests pass one built on a botocore-stubbed client, since the emulator
(moto) lacks `describe_db_engine_versions` and `describe_pending_maintenance_actions` and offers no orderable
PostgreSQL class.
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Final

import psycopg
from botocore.exceptions import BotoCoreError
from psycopg import sql

from infra.catalog import SUPPORTED_MAJOR_VERSIONS
from temporaldb import roles
from temporaldb.drills import rds
from temporaldb.drills.aws_restore import SqlAccess, login_secret, read_login
from temporaldb.drills.facts import DatabaseFacts, compare, snapshot
from temporaldb.drills.report import DrillReport, Say, StageResult
from temporaldb.drills.upgrade_prechecks import BLOCKER, WARNING, Connection, Finding, Precheck, run_prechecks

KIND: Final = "upgrade"
APPLICATION_NAME: Final = "temporaldb upgrade drill"
PARAMETER_CHUNK: Final = 20
"""modify_db_parameter_group takes at most 20 parameters per call."""
REJECTED_PARAMETER_CODES: Final = frozenset({"InvalidParameterValue", "InvalidParameterCombination"})
UPGRADE_START_GRACE_SECONDS: Final = 600.0
"""How long an instance may stay available on the old version after the modify before the drill calls it failed."""
SNAPSHOT_FAILED_STATES: Final = frozenset({"failed", "error", "incompatible-restore", "deleting"})

# Stage names, in the order they run.
STAGES: Final = (
    "preconditions", "snapshot", "restore", "wait_available", "parameter_group", "record_facts", "prechecks",
    "upgrade", "analyze", "verify", "teardown",
)  # fmt: skip


class UpgradeRefused(rds.PreconditionError):
    """The drill will not upgrade: a precondition or a pre-check blocker. Whatever it made has been torn down.

    `must_change_first` lists what to change before the real upgrade (also in the report's details).
    A PreconditionError, so the runbook maps it to "refused" (exit 4).
    """

    def __init__(self, message: str, must_change_first: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.must_change_first = tuple(must_change_first)


# --------------------------------------------------------------------------------------------------------------
# Logins and options
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Login:
    user: str
    password: str | None


@dataclass(frozen=True)
class Logins:
    """The three logins the drill uses on the copy (a copy restored from a snapshot keeps the source's passwords)."""

    analyst: Login
    """Reads the facts (the model's reader group)."""
    migrator: Login
    """Runs ANALYZE (its group owns the tables)."""
    master: Login
    """Runs the pre-checks (reads every database's catalog)."""


@dataclass(frozen=True)
class UpgradeAccess:
    """How the drill reaches its copy over SQL; it never connects to the source."""

    logins: Logins
    database: str = roles.database_name("nba")
    copy_host: str | None = None
    """Reach the copy here instead of its address (the local end of an SSM tunnel)."""
    copy_port: int | None = None
    sslmode: str = "require"

    def dsn(self, login: Login, address: str, port: int, database: str | None = None) -> str:
        access = SqlAccess(
            login.user,
            login.password,
            database or self.database,
            copy_host=self.copy_host,
            copy_port=self.copy_port,
            sslmode=self.sslmode,
            application_name=APPLICATION_NAME,
        )
        return access.dsn(address, port, copy=True)


@dataclass(frozen=True)
class UpgradeOptions:
    instance: str | None = None
    stack: str | None = None
    target_version: str = "18"
    """A major ("18": the highest 18.x RDS offers as an upgrade of the source) or a full version ("18.1")."""
    poll_seconds: float = 30.0
    timeout_seconds: float = 3 * 3600.0
    """The limit of every wait: the snapshot, the copy, the upgrade, the copy's deletion."""


def read_logins(
    client: rds.Client,
    secrets: Any,
    options: UpgradeOptions,
    *,
    master_secret_id: str | None = None,
    analyst_secret_id: str | None = None,
    migrator_secret_id: str | None = None,
) -> Logins:
    """The logins from Secrets Manager: `temporaldb-<stack>/{analyst,migrator}-*`, and the master user's secret.

    The master secret is `master_secret_id`, else the one RDS manages for the source (`MasterUserSecret`). The stack
    is `options.stack`, else the source's `stack` tag. Raises PreconditionError when a secret cannot be found.
    """
    source = rds.find_source(client, identifier=options.instance, stack=options.stack)
    stack = options.stack or stack_name(source)

    def stack_login(role: str, secret_id: str | None) -> Login:
        if secret_id:
            return Login(*read_login(secrets, secret_id))
        if stack is None:
            raise rds.PreconditionError(f"{source.identifier} has no stack tag: pass --stack or the {role} secret id")
        return Login(*login_secret(secrets, stack, role))

    analyst = stack_login("analyst", analyst_secret_id)
    migrator = stack_login("migrator", migrator_secret_id)
    if master_secret_id is None:
        described = client.describe_db_instances(DBInstanceIdentifier=source.identifier)["DBInstances"][0]
        master_secret_id = (described.get("MasterUserSecret") or {}).get("SecretArn")
        if not master_secret_id:
            raise rds.PreconditionError(
                f"{source.identifier} has no RDS-managed master secret: pass the master login's secret id"
            )
    return Logins(analyst, migrator, Login(*read_login(secrets, str(master_secret_id))))


def stack_name(source: rds.SourceInstance) -> str | None:
    """`dev` from the source's tag `stack=temporaldb-dev`."""
    tag = source.tags.get(rds.STACK_TAG, "")
    prefix = f"{rds.PROJECT}-"
    return tag.removeprefix(prefix) if tag.startswith(prefix) else None


# --------------------------------------------------------------------------------------------------------------
# The engine catalog: the seam for what the emulator lacks
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UpgradeTarget:
    """One entry of `ValidUpgradeTarget` (API_UpgradeTarget)."""

    engine: str
    version: str
    major_upgrade: bool
    description: str = ""


class EngineCatalog:
    """The read-only RDS calls about engine versions, instance classes and maintenance.

    Give it the drill's RDS client in real use. Against the emulator, give it a client whose answers a botocore
    Stubber provides (moto implements neither describe_db_engine_versions nor describe_pending_maintenance_actions,
    and lists no orderable PostgreSQL class); everything else still goes to the drill's own client.
    """

    def __init__(self, client: rds.Client) -> None:
        self.client = client

    def _describe(self, operation: str, **params: Any) -> dict[str, Any]:
        try:
            answer: dict[str, Any] = getattr(self.client, operation)(**params)
        except self.client.exceptions.ClientError as error:
            details = error.response.get("Error", {})
            if details.get("Code") in rds.CREDENTIAL_ERRORS:
                raise  # a credentials problem, not a refusal: the runbook maps it to exit 3
            raise rds.PreconditionError(
                f"{operation} refused: {details.get('Code', 'error')}: {details.get('Message', error)}"
            ) from error
        return answer

    def _version(self, engine: str, version: str) -> dict[str, Any]:
        # IncludeAll: a source on a minor RDS no longer offers (the urgent case) must still be found.
        found = self._describe("describe_db_engine_versions", Engine=engine, EngineVersion=version, IncludeAll=True)
        versions = found.get("DBEngineVersions") or []
        if not versions:
            raise rds.PreconditionError(f"RDS does not know {engine} {version} in this region")
        first: dict[str, Any] = versions[0]
        return first

    def upgrade_targets(self, engine: str, version: str) -> tuple[UpgradeTarget, ...]:
        """The versions RDS upgrades `engine version` to (minor and major)."""
        return tuple(
            UpgradeTarget(
                str(target.get("Engine", engine)),
                str(target["EngineVersion"]),
                bool(target.get("IsMajorVersionUpgrade")),
                str(target.get("Description", "")),
            )
            for target in self._version(engine, version).get("ValidUpgradeTarget") or ()
        )

    def parameter_group_family(self, engine: str, version: str) -> str:
        """The DBParameterGroupFamily of a version, as RDS names it (not derived from the version string)."""
        family = self._version(engine, version).get("DBParameterGroupFamily")
        if not family:
            raise rds.PreconditionError(f"RDS gives no parameter group family for {engine} {version}")
        return str(family)

    def orderable(self, engine: str, version: str, instance_class: str) -> bool:
        """Whether `instance_class` can run `engine version` in this region."""
        found = self._describe(
            "describe_orderable_db_instance_options",
            Engine=engine,
            EngineVersion=version,
            DBInstanceClass=instance_class,
            MaxRecords=20,
        )
        return bool(found.get("OrderableDBInstanceOptions"))

    def pending_maintenance(self, resource_arn: str) -> tuple[str, ...]:
        """The pending maintenance actions of a resource, one readable line each."""
        found = self._describe("describe_pending_maintenance_actions", ResourceIdentifier=resource_arn)
        lines = []
        for resource in found.get("PendingMaintenanceActions") or ():
            for action in resource.get("PendingMaintenanceActionDetails") or ():
                when = [
                    f"{label} {action[key]:%Y-%m-%d}"
                    for key, label in (
                        ("AutoAppliedAfterDate", "auto-applied after"),
                        ("ForcedApplyDate", "forced on"),
                    )
                    if action.get(key)
                ]
                if action.get("OptInStatus"):
                    when.append(f"opt-in {action['OptInStatus']}")
                detail = f" ({', '.join(when)})" if when else ""
                lines.append(f"{action.get('Action', 'maintenance')}: {action.get('Description', '')}{detail}".strip())
        return tuple(lines)


def version_key(version: str) -> tuple[int, ...]:
    """`18.1` sorts after `17.6` and `18.0`: numeric parts, in order."""
    return tuple(int(part) for part in re.findall(r"\d+", version))


def major_of(version: str) -> str:
    """`18` from `18.1` or `18` (PostgreSQL 10 and later: the first number is the major)."""
    return version.split(".", 1)[0]


def choose_target(source_version: str, targets: Sequence[UpgradeTarget], requested: str) -> UpgradeTarget:
    """The major-version target RDS offers for `requested`: that exact version, or the highest of that major."""
    majors = sorted((t for t in targets if t.major_upgrade), key=lambda t: version_key(t.version))
    offered = ", ".join(t.version for t in majors) or "none"
    if not re.fullmatch(r"\d+(\.\d+)*", requested):
        raise rds.PreconditionError(f"target version {requested!r} is not a version such as 18 or 18.1")
    if version_key(major_of(requested)) <= version_key(major_of(source_version)):
        raise rds.PreconditionError(
            f"{requested} is not a major-version upgrade of {source_version}; the drill rehearses major upgrades "
            f"(offered: {offered})"
        )
    if "." in requested:
        chosen = [t for t in majors if t.version == requested]
    else:
        chosen = [t for t in majors if major_of(t.version) == requested]
    if not chosen:
        raise rds.PreconditionError(
            f"RDS cannot upgrade postgres {source_version} to {requested}: its valid major-version targets are "
            f"{offered} (aws rds describe-db-engine-versions --engine postgres --engine-version {source_version})"
        )
    return chosen[-1]


# --------------------------------------------------------------------------------------------------------------
# The plan
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UpgradePlan:
    """What `plan()` found and what the drill will call; nothing has been changed."""

    source: rds.SourceInstance
    stack: str | None
    """The stack's name (`dev`), from the options or the source's tag."""
    copy: str
    """The drill's copy; its snapshot has the same identifier."""
    snapshot: str
    target: UpgradeTarget
    target_family: str
    parameter_group: str
    create_parameter_group: bool
    parameters: tuple[Mapping[str, str], ...]
    """The source group's user-modified parameters to copy into a new group (ParameterName, ParameterValue,
    ApplyMethod), empty when an existing group is used."""
    pending_maintenance: tuple[str, ...]
    pending_modified_values: Mapping[str, Any]
    """The source's own pending modifications: the real upgrade's ApplyImmediately applies them too."""
    master_secret_arn: str | None
    calls: tuple[rds.PlannedCall, ...]
    """Every AWS call that changes something, in order; teardown's deletions last."""

    @property
    def source_major(self) -> int:
        return int(major_of(self.source.engine_version))

    @property
    def target_major(self) -> int:
        return int(major_of(self.target.version))


def plan(
    client: rds.Client, options: UpgradeOptions, run_id: str, *, catalog: EngineCatalog | None = None
) -> UpgradePlan:
    """Check every precondition and plan the calls; nothing is changed. Raises PreconditionError (or UpgradeRefused,
    carrying what to change first) with a message that says what is wrong."""
    catalog = catalog or EngineCatalog(client)
    source = rds.find_source(client, identifier=options.instance, stack=options.stack)
    described = client.describe_db_instances(DBInstanceIdentifier=source.identifier)["DBInstances"][0]
    status = described.get("DBInstanceStatus")
    if status != "available":
        raise rds.PreconditionError(f"{source.identifier} is {status!r}, not available")
    stack = options.stack or stack_name(source)
    target = choose_target(
        source.engine_version,
        catalog.upgrade_targets(source.engine, source.engine_version),
        options.target_version.strip(),
    )
    family = catalog.parameter_group_family(source.engine, target.version)
    if not catalog.orderable(source.engine, target.version, source.instance_class):
        raise UpgradeRefused(
            f"{source.instance_class} cannot run {source.engine} {target.version} in this region; the upgrade "
            "would be refused",
            [_instance_class_change(stack, source, target)],
        )
    pending = catalog.pending_maintenance(source.arn) if source.arn else ()
    copy = rds.drill_identifier(source.identifier, KIND, run_id)
    rds.refuse_reused_run(client, run_id)  # teardown deletes what carries the run's tag
    existing = _stack_group(client, source, family)
    group = existing or f"{copy}-params"
    parameters = () if existing else _user_parameters(client, source.parameter_group)
    tags = rds.drill_tags(source, KIND, run_id)
    calls = [
        rds.PlannedCall(
            "create_db_snapshot",
            {"DBSnapshotIdentifier": copy, "DBInstanceIdentifier": source.identifier, "Tags": tags},
            "the copy's starting point (a Single-AZ source pauses I/O briefly)",
        ),
        rds.restore_call(source, copy, tags, snapshot=copy),
    ]
    if existing is None:
        calls.append(_create_group_call(group, family, source, run_id, tags))
        calls += [_parameters_call(group, chunk) for chunk in _chunks(parameters)]
    calls += [
        upgrade_call(copy, target.version, group),
        rds.PlannedCall(
            "delete_db_instance",
            {"DBInstanceIdentifier": copy, "SkipFinalSnapshot": True, "DeleteAutomatedBackups": True},
            f"teardown, only if tagged {rds.DRILL_TAG}={run_id}",
        ),
        rds.PlannedCall(
            "delete_db_snapshot", {"DBSnapshotIdentifier": copy}, f"teardown, only if tagged {rds.DRILL_TAG}={run_id}"
        ),
    ]
    if existing is None:
        calls.append(
            rds.PlannedCall(
                "delete_db_parameter_group",
                {"DBParameterGroupName": group},
                f"teardown, only if tagged {rds.DRILL_TAG}={run_id}",
            )
        )
    return UpgradePlan(
        source=source,
        stack=stack,
        copy=copy,
        snapshot=copy,
        target=target,
        target_family=family,
        parameter_group=group,
        create_parameter_group=existing is None,
        parameters=parameters,
        pending_maintenance=pending,
        pending_modified_values=dict(described.get("PendingModifiedValues") or {}),
        master_secret_arn=(described.get("MasterUserSecret") or {}).get("SecretArn"),
        calls=tuple(calls),
    )


def upgrade_call(copy: str, version: str, parameter_group: str) -> rds.PlannedCall:
    """The upgrade as AWS documents it: the flag, the target-family group and ApplyImmediately."""
    return rds.PlannedCall(
        "modify_db_instance",
        {
            "DBInstanceIdentifier": copy,
            "EngineVersion": version,
            "AllowMajorVersionUpgrade": True,
            "DBParameterGroupName": parameter_group,
            "ApplyImmediately": True,
        },
        "the major-version upgrade of the copy",
    )


def _create_group_call(
    name: str, family: str, source: rds.SourceInstance, run_id: str, tags: list[dict[str, str]]
) -> rds.PlannedCall:
    return rds.PlannedCall(
        "create_db_parameter_group",
        {
            "DBParameterGroupName": name,
            "DBParameterGroupFamily": family,
            "Description": f"temporaldb upgrade drill {run_id}: {source.parameter_group} in {family}",
            "Tags": tags,
        },
        f"no group of {family} tagged with the stack: the drill makes one",
    )


def _parameters_call(group: str, chunk: Sequence[Mapping[str, str]]) -> rds.PlannedCall:
    return rds.PlannedCall(
        "modify_db_parameter_group",
        {"DBParameterGroupName": group, "Parameters": [dict(parameter) for parameter in chunk]},
        "the source group's user-modified parameters",
    )


def _chunks(parameters: Sequence[Mapping[str, str]]) -> Iterator[Sequence[Mapping[str, str]]]:
    for start in range(0, len(parameters), PARAMETER_CHUNK):
        yield parameters[start : start + PARAMETER_CHUNK]


def _stack_group(client: rds.Client, source: rds.SourceInstance, family: str) -> str | None:
    """A parameter group of `family` tagged like the source (project and stack), not a drill's; the first by name."""
    stack = source.tags.get(rds.STACK_TAG)
    if not stack:
        return None
    wanted = {rds.PROJECT_TAG: rds.PROJECT, rds.STACK_TAG: stack}
    candidates = sorted(
        (str(group["DBParameterGroupName"]), str(group.get("DBParameterGroupArn", "")))
        for page in client.get_paginator("describe_db_parameter_groups").paginate()
        for group in page["DBParameterGroups"]
        if group.get("DBParameterGroupFamily") == family
    )
    for name, arn in candidates:
        tags = rds.tags_of(client.list_tags_for_resource(ResourceName=arn).get("TagList")) if arn else {}
        if all(tags.get(key) == value for key, value in wanted.items()) and rds.DRILL_TAG not in tags:
            return name
    return None


def _user_parameters(client: rds.Client, group: str) -> tuple[dict[str, str], ...]:
    """The parameters someone set in `group` (Source=user), ready for modify_db_parameter_group."""
    if not group:
        return ()
    found = []
    for page in client.get_paginator("describe_db_parameters").paginate(DBParameterGroupName=group, Source="user"):
        for parameter in page["Parameters"]:
            if parameter.get("ParameterValue") is None:
                continue
            static = parameter.get("ApplyType") == "static"
            method = "pending-reboot" if static else str(parameter.get("ApplyMethod") or "immediate")
            found.append(
                {
                    "ParameterName": str(parameter["ParameterName"]),
                    "ParameterValue": str(parameter["ParameterValue"]),
                    "ApplyMethod": method,
                }
            )
    return tuple(found)


def render(call: rds.PlannedCall) -> str:
    """A planned call on one line; parameter lists shortened to `name=value`."""
    if call.operation != "modify_db_parameter_group":
        return call.render()
    names = ", ".join(f"{p['ParameterName']}={p['ParameterValue']}" for p in call.params["Parameters"])
    group = call.params["DBParameterGroupName"]
    return f"rds.modify_db_parameter_group(DBParameterGroupName={group!r}, Parameters=[{names}])  # {call.why}"


def _instance_class_change(stack: str | None, source: rds.SourceInstance, target: UpgradeTarget) -> str:
    return (
        f"{_stack_file(stack)}: temporaldb:instanceClass: a class that runs both {source.engine} "
        f"{source.engine_version} and {target.version} ({source.instance_class} cannot run {target.version}), in "
        f"its own update before the upgrade; list them with `aws rds describe-orderable-db-instance-options "
        f"--engine {source.engine} --engine-version {target.version} "
        f"--query 'OrderableDBInstanceOptions[].DBInstanceClass'`"
    )


def _stack_file(stack: str | None) -> str:
    return f"Pulumi.{stack or '<stack>'}.yaml"


# --------------------------------------------------------------------------------------------------------------
# Teardown helpers: delete only what carries this run's tag
# --------------------------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------------------------
# The drill
# --------------------------------------------------------------------------------------------------------------


def run(
    client: rds.Client,
    options: UpgradeOptions,
    access: UpgradeAccess | None,
    report: DrillReport,
    *,
    say: Say,
    sleep: Callable[[float], None] = time.sleep,
    catalog: EngineCatalog | None = None,
) -> None:
    """The whole drill; raises on failure (UpgradeRefused on a refusal) after teardown. `report` fills in as it goes.

    Without `report.applied`, only the preconditions run and the planned calls are said and recorded; `access`
    (the logins) may then be None.
    """
    if access is None and report.applied:
        raise ValueError("an applied upgrade drill needs the logins (access)")
    no_login = Login("", None)
    dry = UpgradeAccess(Logins(no_login, no_login, no_login))  # never used: a dry run connects to nothing
    drill = _Drill(client, options, access or dry, report, say, sleep, catalog or EngineCatalog(client))
    try:
        with report.stage("preconditions", say) as stage:
            try:
                drill.plan = found = plan(client, options, report.run_id, catalog=drill.catalog)
            except UpgradeRefused as refusal:
                drill.refused = True
                drill.changes.extend(refusal.must_change_first)
                raise
            drill.describe_plan(stage)
        if not report.applied:
            for line in report.planned_calls:
                say(f"would call {line}")
            return
        try:
            drill.execute(found)
        finally:
            drill.teardown(found)
    finally:
        drill.conclude()


@dataclass
class _Drill:
    client: rds.Client
    options: UpgradeOptions
    access: UpgradeAccess
    report: DrillReport
    say: Say
    sleep: Callable[[float], None]
    catalog: EngineCatalog
    plan: UpgradePlan | None = None
    findings: list[Finding] = field(default_factory=list)
    prechecks: tuple[Precheck, ...] = ()
    changes: list[str] = field(default_factory=list)
    """What to change first found along the way (a refused instance class)."""
    refused: bool = False
    """The drill stopped on a refusal (its reasons are in `changes` and the findings)."""
    address: str = ""
    port: int = 5432
    facts_before: DatabaseFacts | None = None

    # --- preconditions ----------------------------------------------------------------------------------------

    def describe_plan(self, stage: StageResult) -> None:
        found, report, say = self._plan(), self.report, self.say
        source = found.source
        report.planned_calls = [render(call) for call in found.calls]
        copy_address = source.address.replace(source.identifier, found.copy, 1)
        report.details.update(
            source=source.identifier,
            source_version=source.engine_version,
            target_version=found.target.version,
            target_family=found.target_family,
            drill_instance=found.copy,
            drill_snapshot=found.snapshot,
            drill_address=copy_address,
            parameter_group=found.parameter_group,
            parameter_group_created=found.create_parameter_group,
            pending_maintenance=list(found.pending_maintenance),
            pending_modified_values=dict(found.pending_modified_values),
        )
        for line in found.pending_maintenance:
            self._finding(
                "pending_maintenance",
                WARNING,
                f"pending maintenance on {source.identifier}: {line}",
                "not blocking: apply it before the upgrade (aws rds apply-pending-maintenance-action) or expect it "
                "in a later window; the upgrade does not include it",
            )
        if found.pending_modified_values:
            self._finding(
                "pending_modifications",
                WARNING,
                f"{source.identifier} has pending modifications {dict(found.pending_modified_values)}",
                "the real upgrade's ApplyImmediately applies them too: apply or revert them first",
            )
        group = (
            f"creates {found.parameter_group} in {found.target_family} with {len(found.parameters)} parameters "
            f"of {source.parameter_group}"
            if found.create_parameter_group
            else f"uses the stack's {found.parameter_group} ({found.target_family})"
        )
        stage.detail = (
            f"{source.identifier} {source.engine} {source.engine_version} -> {found.target.version}; copy "
            f"{found.copy}; {group}"
        )
        say(f"the copy will answer at {copy_address}:{source.port} (run id {report.run_id})")

    def _plan(self) -> UpgradePlan:
        if self.plan is None:
            raise rds.RdsDrillError("the drill has no plan")
        return self.plan

    def _finding(self, check: str, severity: str, subject: str, remedy: str, database: str | None = None) -> None:
        self.findings.append(Finding(check, severity, database, subject, remedy))
        self.say(f"{severity}: {check}: {subject}")

    # --- the stages -------------------------------------------------------------------------------------------

    def execute(self, found: UpgradePlan) -> None:
        report, say, options = self.report, self.say, self.options
        calls = {call.operation: call for call in found.calls}
        with report.stage("snapshot", say) as stage:
            report.changed = True  # from here a failure needs teardown
            rds.call(self.client, calls["create_db_snapshot"])
            wait_snapshot(
                self.client,
                found.snapshot,
                say,
                poll_seconds=options.poll_seconds,
                timeout_seconds=options.timeout_seconds,
                sleep=self.sleep,
            )
            stage.detail = f"snapshot {found.snapshot} of {found.source.identifier} available"
        with report.stage("restore", say) as stage:
            restore = calls["restore_db_instance_from_db_snapshot"]
            rds.call(self.client, restore)
            stage.detail = restore.render()
        with report.stage("wait_available", say) as stage:
            instance = self._wait_available(found.copy)
            endpoint = instance.get("Endpoint") or {}
            self.address = str(endpoint.get("Address", ""))
            self.port = int(endpoint.get("Port") or found.source.port)
            stage.detail = f"{found.copy} available at {self.address}"
        with report.stage("parameter_group", say) as stage:
            stage.detail = self._parameter_group(found)
        with report.stage("record_facts", say) as stage:
            version = self._server_version(found.source_major, "before the upgrade")
            self.facts_before = facts = snapshot(self._dsn(self.access.logins.analyst))
            report.details["server_version_before"] = version
            report.details["facts_before"] = facts.to_dict()
            stage.detail = f"PostgreSQL {version}; {_summary(facts)}"
        with report.stage("prechecks", say) as stage:
            stage.detail = self._prechecks(found)
        with report.stage("upgrade", say) as stage:
            requested = time.perf_counter()
            answer = rds.call(self.client, calls["modify_db_instance"])
            instance = wait_upgraded(
                self.client,
                found.copy,
                found.target.version,
                say,
                accepted=answer.get("DBInstance") or {},
                poll_seconds=options.poll_seconds,
                timeout_seconds=options.timeout_seconds,
                sleep=self.sleep,
            )
            running = str(instance.get("EngineVersion", ""))
            report.rto_seconds = round(time.perf_counter() - requested, 3)
            report.details["upgrade_seconds"] = report.rto_seconds
            groups = [g.get("DBParameterGroupName") for g in instance.get("DBParameterGroups") or ()]
            stage.detail = f"{found.copy} runs {running} with {', '.join(map(str, groups)) or 'no group'}"
        with report.stage("analyze", say) as stage:
            stage.detail = self._analyze()
        with report.stage("verify", say) as stage:
            stage.detail = self._verify(found)

    def _wait_available(self, identifier: str) -> dict[str, Any]:
        return rds.wait_available(
            self.client,
            identifier,
            self.say,
            poll_seconds=self.options.poll_seconds,
            timeout_seconds=self.options.timeout_seconds,
            sleep=self.sleep,
        )

    def _dsn(self, login: Login, database: str | None = None) -> str:
        return self.access.dsn(login, self.address, self.port, database)

    def _parameter_group(self, found: UpgradePlan) -> str:
        if not found.create_parameter_group:
            return f"using the stack's {found.parameter_group} ({found.target_family})"
        create = next(call for call in found.calls if call.operation == "create_db_parameter_group")
        rds.call(self.client, create)
        copied = rejected = 0
        for chunk in _chunks(found.parameters):
            try:
                self.client.modify_db_parameter_group(
                    DBParameterGroupName=found.parameter_group, Parameters=[dict(parameter) for parameter in chunk]
                )
                copied += len(chunk)
                continue
            except self.client.exceptions.ClientError as error:
                if _error_code(error) not in REJECTED_PARAMETER_CODES:
                    raise _drill_error("modify_db_parameter_group", error) from error
            for parameter in chunk:  # the family refused one of them: find which, one at a time
                try:
                    self.client.modify_db_parameter_group(
                        DBParameterGroupName=found.parameter_group, Parameters=[dict(parameter)]
                    )
                    copied += 1
                except self.client.exceptions.ClientError as error:
                    if _error_code(error) not in REJECTED_PARAMETER_CODES:
                        raise _drill_error("modify_db_parameter_group", error) from error
                    rejected += 1
                    self._reject(found, parameter, error)
        self.report.details["parameters_copied"] = copied
        return (
            f"created {found.parameter_group} in {found.target_family}; {copied} of "
            f"{len(found.parameters)} parameters of {found.source.parameter_group} copied"
            + (f", {rejected} refused by {found.target_family}" if rejected else "")
        )

    def _reject(self, found: UpgradePlan, parameter: Mapping[str, str], error: Any) -> None:
        name, value = parameter["ParameterName"], parameter["ParameterValue"]
        message = error.response.get("Error", {}).get("Message", str(error))
        self._finding(
            "parameter_group",
            BLOCKER,
            f"parameter {name}={value} of {found.source.parameter_group} is refused by {found.target_family}: "
            f"{_error_code(error)}: {message}",
            f"components/database.py PARAMETERS: drop or change {name} for {found.target_family} (pulumi up "
            "creates the new family's group with it, and would fail)",
        )

    def _server_version(self, major: int, when: str) -> str:
        with psycopg.connect(self._dsn(self.access.logins.analyst)) as connection:
            row = connection.execute(
                "select current_setting('server_version'), current_setting('server_version_num')::int"
            ).fetchone()
        if row is None:
            raise rds.RdsDrillError("the copy did not say its version")
        if int(row[1]) // 10000 != major:
            raise rds.RdsDrillError(
                f"the copy's connection reaches PostgreSQL {row[0]} {when}, not {major}: another server answers "
                "(the source?); give the copy its own tunnel (copy host and port) or run from inside the VPC"
            )
        return str(row[0])

    def _prechecks(self, found: UpgradePlan) -> str:
        master = self.access.logins.master

        def connect(database: str) -> Connection:
            return psycopg.connect(self._dsn(master, database), autocommit=True)

        self.prechecks = run_prechecks(connect, found.source_major, None, refused_connection=WARNING)
        for check in self.prechecks:
            for finding in check.findings:
                self.findings.append(finding)
                where = f" in {finding.database}" if finding.database else ""
                self.say(f"{finding.severity}: {finding.check}: {finding.subject}{where}")
        self.report.details["prechecks"] = [dataclasses.asdict(check) for check in self.prechecks]
        found_now = [finding for check in self.prechecks for finding in check.findings]
        blockers = [finding for finding in found_now if finding.severity == BLOCKER]
        summary = (
            f"{len(self.prechecks)} checks, {len(blockers)} blockers, {len(found_now) - len(blockers)} warnings "
            f"(as {master.user})"
        )
        if blockers:
            self.refused = True
            listed = "; ".join(f"{finding.check}: {finding.subject}" for finding in blockers)
            raise UpgradeRefused(
                f"{summary}; the upgrade would fail: {listed}", [finding.remedy for finding in blockers]
            )
        return summary

    def _analyze(self) -> str:
        with psycopg.connect(self._dsn(self.access.logins.migrator), autocommit=True) as connection:
            tables = [
                sql.Identifier(str(schema), str(name))
                for schema, name in connection.execute(_OWNED_TABLES, (list(roles.MANAGED_SCHEMAS),))
            ]
            counted = connection.execute(_COLUMNS_WITH_STATISTICS, (list(roles.MANAGED_SCHEMAS),)).fetchone()
            if tables:
                connection.execute(sql.SQL("analyze {}").format(sql.SQL(", ").join(tables)))
        carried = f"{counted[0]} of {counted[1]} columns had statistics after the upgrade" if counted else ""
        self.report.details["after_upgrade"] = [
            "ANALYZE in every database (vacuumdb --all --analyze-in-stages as the master user): optimizer "
            "statistics are not carried by every major upgrade"
        ]
        return f"ANALYZE of {len(tables)} tables as {self.access.logins.migrator.user}; {carried}"

    def _verify(self, found: UpgradePlan) -> str:
        before = self.facts_before
        if before is None:
            raise rds.RdsDrillError("no facts were recorded before the upgrade")
        version = self._server_version(found.target_major, "after the upgrade")
        self.report.details["server_version_after"] = version
        after = snapshot(self._dsn(self.access.logins.analyst), questions=before.questions)
        self.report.details["facts_after"] = after.to_dict()
        with psycopg.connect(self._dsn(self.access.logins.analyst)) as connection:
            stale = connection.execute(
                "select name, installed_version, default_version from pg_available_extensions"
                " where installed_version is not null and installed_version <> default_version order by 1"
            ).fetchall()
        self.report.details.setdefault("after_upgrade", []).extend(
            f"in {self.access.database}: ALTER EXTENSION {name} UPDATE ({installed} -> {default})"
            for name, installed, default in stale
        )
        differences = compare(before, after)
        self.report.details["differences"] = differences
        if differences:
            raise rds.RdsDrillError(f"the upgraded copy differs: {'; '.join(differences[:5])}")
        self.report.verified = True
        return f"PostgreSQL {version}; every fact equal ({_summary(after)})"

    # --- teardown and conclusion ------------------------------------------------------------------------------

    def teardown(self, found: UpgradePlan) -> None:
        """Delete the copy, wait until it is gone, then the snapshot and the group; each only with this run's tag."""
        report, run_id, options = self.report, self.report.run_id, self.options
        with report.stage("teardown", self.say) as stage:
            problems: list[str] = []
            try:
                outcome = rds.delete_drill_instance(
                    self.client,
                    found.copy,
                    run_id,
                    poll_seconds=options.poll_seconds,
                    timeout_seconds=options.timeout_seconds,
                    sleep=self.sleep,
                )
                if outcome != "already gone":
                    gone = rds.wait_deleted(
                        self.client,
                        found.copy,
                        self.say,
                        poll_seconds=options.poll_seconds,
                        timeout_seconds=options.timeout_seconds,
                        sleep=self.sleep,
                    )
                    report.torn_down.append(f"rds instance {found.copy}")
                    if not gone:
                        problems.append(f"instance {found.copy} is still deleting")
            except (rds.RdsDrillError, self.client.exceptions.ClientError, BotoCoreError) as error:
                problems.append(f"instance {found.copy}: {error}")
            try:
                if self._retry(partial(delete_drill_snapshot, self.client, found.snapshot, run_id), found.snapshot):
                    report.torn_down.append(f"rds snapshot {found.snapshot}")
            except (rds.RdsDrillError, self.client.exceptions.ClientError, BotoCoreError) as error:
                problems.append(f"snapshot {found.snapshot}: {error}")
            if found.create_parameter_group and problems and problems[0].startswith("instance "):
                # Still attached to a copy that is not gone: deleting it would only wait out the time limit.
                problems.append(f"parameter group {found.parameter_group}: kept while {found.copy} exists")
            elif found.create_parameter_group:
                name = found.parameter_group
                try:
                    if self._retry(partial(delete_drill_parameter_group, self.client, name, run_id), name):
                        report.torn_down.append(f"rds parameter group {name}")
                except (rds.RdsDrillError, self.client.exceptions.ClientError, BotoCoreError) as error:
                    problems.append(f"parameter group {name}: {error}")
            stage.detail = ", ".join(report.torn_down) or "nothing to remove"
            if problems:
                report.details["left_behind"] = problems
                raise rds.RdsDrillError(
                    f"teardown left drill resources tagged {rds.DRILL_TAG}={run_id}: " + "; ".join(problems)
                )

    def _retry(self, action: Callable[[], bool], what: str) -> bool:
        """Run a deletion, waiting while AWS answers that the resource is busy (a snapshot in progress, a group
        still attached to an instance being deleted)."""
        busy = (
            self.client.exceptions.InvalidDBSnapshotStateFault,
            self.client.exceptions.InvalidDBParameterGroupStateFault,
        )
        deadline = time.monotonic() + self.options.timeout_seconds
        while True:
            try:
                return action()
            except busy as error:
                if time.monotonic() >= deadline:
                    raise
                self.say(f"{what} cannot be deleted yet ({_error_code(error)}); retrying")
                self.sleep(self.options.poll_seconds)

    def conclude(self) -> None:
        """Findings, must_change_first and safe_to_schedule into the report's details (after failures too)."""
        report = self.report
        blockers = [finding for finding in self.findings if finding.severity == BLOCKER]
        changes = [*(finding.remedy for finding in blockers), *self.changes]
        if report.failed_stage not in (None, "teardown") and not self.refused:
            changes.append(f"fix what failed at {report.failed_stage}: {_first_line(report.error or '')}")
        found = self.plan
        if found is not None:
            major = str(found.target_major)
            stack_file = _stack_file(found.stack)
            if major not in SUPPORTED_MAJOR_VERSIONS:
                changes.append(f'infra/catalog.py: add "{major}" to SUPPORTED_MAJOR_VERSIONS')
            changes.append(
                f'{stack_file}: temporaldb:engineVersion: "{major}" (RDS then installs its default {major}.x; '
                f"the drill rehearsed {found.target.version})"
            )
            changes.append(
                f"{stack_file}: temporaldb:allowMajorVersionUpgrade: true for that one update (it is applied at "
                "once, not in the maintenance window); set it back to false afterwards"
            )
        report.details["findings"] = [dataclasses.asdict(finding) for finding in self.findings]
        report.details["must_change_first"] = list(dict.fromkeys(changes))
        report.details["safe_to_schedule"] = report.verified and not blockers


_OWNED_TABLES: Final = """
select n.nspname, c.relname
from pg_class c join pg_namespace n on n.oid = c.relnamespace
where n.nspname = any(%s) and c.relkind in ('r', 'p', 'm') and pg_has_role(c.relowner, 'USAGE')
order by 1, 2
"""
_COLUMNS_WITH_STATISTICS: Final = """
select count(*) filter (where s.attname is not null), count(*)
from pg_attribute a
join pg_class c on c.oid = a.attrelid
join pg_namespace n on n.oid = c.relnamespace
left join pg_stats s on s.schemaname = n.nspname and s.tablename = c.relname and s.attname = a.attname
where n.nspname = any(%s) and c.relkind = 'r' and a.attnum > 0 and not a.attisdropped
"""


def _error_code(error: Any) -> str:
    return str(error.response.get("Error", {}).get("Code", "error"))


def _drill_error(operation: str, error: Any) -> rds.RdsDrillError:
    details = error.response.get("Error", {})
    return rds.RdsDrillError(f"{operation} refused: {details.get('Code', 'error')}: {details.get('Message', error)}")


def _first_line(text: str) -> str:
    return text.splitlines()[0] if text else ""


def _summary(facts: DatabaseFacts) -> str:
    rows = sum(facts.row_counts.values())
    return (
        f"schema V{facts.schema_version:04d}, {rows:,} rows in {len(facts.row_counts)} tables, "
        f"{len(facts.canaries)} canaries"
    )
