"""The RDS upgrade drill's plan: every precondition checked and every AWS call that changes something, in order.

`plan()` changes nothing. It finds the source, chooses the target (temporaldb/drills/aws_upgrade_targets.py), the
target family's parameter group (the stack's own, else one the drill makes with the source group's user-modified
parameters) and refuses, with what to change first, an instance class that cannot run the target.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from temporaldb.drills import rds
from temporaldb.drills.aws_upgrade_options import UpgradeOptions, stack_name
from temporaldb.drills.aws_upgrade_targets import EngineCatalog, UpgradeTarget, choose_target, major_of

KIND: Final = "upgrade"
PARAMETER_CHUNK: Final = 20
"""modify_db_parameter_group takes at most 20 parameters per call."""


class UpgradeRefused(rds.PreconditionError):
    """The drill will not upgrade: a precondition or a pre-check blocker. Whatever it made has been torn down.

    `must_change_first` lists what to change before the real upgrade (also in the report's details).
    A PreconditionError, so the runbook maps it to "refused" (exit 4).
    """

    def __init__(self, message: str, must_change_first: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.must_change_first = tuple(must_change_first)


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
        calls += [_parameters_call(group, chunk) for chunk in parameter_chunks(parameters)]
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


def parameter_chunks(parameters: Sequence[Mapping[str, str]]) -> Iterator[Sequence[Mapping[str, str]]]:
    """The parameters in groups of PARAMETER_CHUNK, as modify_db_parameter_group takes them."""
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
        f"{stack_file_name(stack)}: temporaldb:instanceClass: a class that runs both {source.engine} "
        f"{source.engine_version} and {target.version} ({source.instance_class} cannot run {target.version}), in "
        f"its own update before the upgrade; list them with `aws rds describe-orderable-db-instance-options "
        f"--engine {source.engine} --engine-version {target.version} "
        f"--query 'OrderableDBInstanceOptions[].DBInstanceClass'`"
    )


def stack_file_name(stack: str | None) -> str:
    """The stack's settings file, `Pulumi.dev.yaml` (`Pulumi.<stack>.yaml` when the stack is unknown)."""
    return f"Pulumi.{stack or '<stack>'}.yaml"
