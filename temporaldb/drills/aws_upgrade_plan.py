"""The RDS upgrade drill's plan: every precondition checked and every AWS call that changes something, in order.

`plan()` changes nothing. It finds the source, chooses the target (temporaldb/drills/aws_upgrade_targets.py), the
target family's parameter group (the stack's own, else one the drill makes with the source group's user-modified
parameters) and refuses, with what to change first, an instance class that cannot run the target.

`plan_group` plans a target-family group of either kind (`INSTANCE_GROUPS`, `CLUSTER_GROUPS`): the Aurora upgrade
drill (temporaldb/drills/aws_cluster_upgrade.py) plans its cluster's and its writer's groups with it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

from temporaldb.drills import rds
from temporaldb.drills.aws_upgrade_options import UpgradeOptions, stack_name
from temporaldb.drills.aws_upgrade_targets import EngineCatalog, UpgradeTarget, choose_target, major_of

KIND: Final = "upgrade"
PARAMETER_CHUNK: Final = 20
"""modify_db_parameter_group takes at most 20 parameters per call."""


@dataclass(frozen=True)
class GroupApi:
    """The RDS calls and names of one kind of parameter group: an instance's (DB parameter group) or a cluster's."""

    kind: str
    name_key: str
    listed: str
    arn_key: str
    describe_groups: str
    describe_parameters: str
    create: str
    modify: str
    delete: str
    defined_in: str
    """Where the program sets these parameters (a refused one is changed there)."""


INSTANCE_GROUPS: Final = GroupApi(
    "parameter group", "DBParameterGroupName", "DBParameterGroups", "DBParameterGroupArn",
    "describe_db_parameter_groups", "describe_db_parameters", "create_db_parameter_group", "modify_db_parameter_group",
    "delete_db_parameter_group", "components/database.py PARAMETERS",
)  # fmt: skip
CLUSTER_GROUPS: Final = GroupApi(
    "cluster parameter group", "DBClusterParameterGroupName", "DBClusterParameterGroups",
    "DBClusterParameterGroupArn", "describe_db_cluster_parameter_groups", "describe_db_cluster_parameters",
    "create_db_cluster_parameter_group", "modify_db_cluster_parameter_group", "delete_db_cluster_parameter_group",
    "the Aurora cluster's parameters in components/",
)  # fmt: skip


@dataclass(frozen=True)
class GroupPlan:
    """The target family's parameter group the upgraded copy uses: the stack's own, or one the drill makes (tagged
    with the run) holding the source group's user-modified parameters."""

    api: GroupApi
    name: str
    family: str
    source_group: str
    create: bool
    parameters: tuple[Mapping[str, str], ...]
    """The source group's user-modified parameters to copy (ParameterName, ParameterValue, ApplyMethod), empty when
    the stack's group is used."""
    run_id: str
    tags: tuple[Mapping[str, str], ...] = ()

    def setup_calls(self) -> list[rds.PlannedCall]:
        """Create the group and copy the parameters, 20 a call; nothing when the stack's group is used."""
        if not self.create:
            return []
        create = rds.PlannedCall(
            self.api.create,
            {
                self.api.name_key: self.name,
                "DBParameterGroupFamily": self.family,
                "Description": f"temporaldb upgrade drill {self.run_id}: {self.source_group} in {self.family}",
                "Tags": [dict(tag) for tag in self.tags],
            },
            f"no {self.api.kind} of {self.family} tagged with the stack: the drill makes one",
        )
        return [create, *(self.parameters_call(chunk) for chunk in parameter_chunks(self.parameters))]

    def parameters_call(self, chunk: Sequence[Mapping[str, str]]) -> rds.PlannedCall:
        return rds.PlannedCall(
            self.api.modify,
            {self.api.name_key: self.name, "Parameters": [dict(parameter) for parameter in chunk]},
            f"the source {self.api.kind}'s user-modified parameters",
        )

    def teardown_calls(self) -> list[rds.PlannedCall]:
        if not self.create:
            return []
        only = f"teardown, only if tagged {rds.DRILL_TAG}={self.run_id}"
        return [rds.PlannedCall(self.api.delete, {self.api.name_key: self.name}, only)]

    def describe(self) -> str:
        if self.create:
            return f"creates {self.name} in {self.family} with {len(self.parameters)} parameters of {self.source_group}"
        return f"uses the stack's {self.name} ({self.family})"


def plan_group(
    client: rds.Client,
    api: GroupApi,
    source: rds.Tagged,
    *,
    source_group: str,
    family: str,
    name: str,
    run_id: str,
    tags: Sequence[Mapping[str, str]],
) -> GroupPlan:
    """The stack's group of `family` if there is one (tagged like `source`), else `name`, to be made with
    `source_group`'s user-modified parameters."""
    existing = _stack_group(client, api, source, family)
    if existing is not None:
        return GroupPlan(api, existing, family, source_group, False, (), run_id)
    parameters = _user_parameters(client, api, source_group)
    return GroupPlan(api, name, family, source_group, True, parameters, run_id, tuple(tags))


class UpgradeRefused(rds.PreconditionError):
    """The drill will not upgrade: a precondition or a pre-check blocker. Whatever it made has been torn down.

    `must_change_first` lists what to change before the real upgrade (also in the report's details).
    A PreconditionError, so the runbook maps it to "refused" (exit 4).
    """

    def __init__(self, message: str, must_change_first: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.must_change_first = tuple(must_change_first)


class HasEngineVersion(Protocol):
    @property
    def engine_version(self) -> str: ...


class Majors:
    """The source's and the target's major versions, for a plan of either drill (instance or cluster)."""

    source: HasEngineVersion
    target: UpgradeTarget

    @property
    def source_major(self) -> int:
        return int(major_of(self.source.engine_version))

    @property
    def target_major(self) -> int:
        return int(major_of(self.target.version))


@dataclass(frozen=True)
class UpgradePlan(Majors):
    """What `plan()` found and what the drill will call; nothing has been changed."""

    source: rds.SourceInstance
    stack: str | None
    """The stack's name (`dev`), from the options or the source's tag."""
    copy: str
    """The drill's copy; its snapshot has the same identifier."""
    snapshot: str
    target: UpgradeTarget
    target_family: str
    group: GroupPlan
    """The target family's parameter group of the upgraded copy."""
    pending_maintenance: tuple[str, ...]
    pending_modified_values: Mapping[str, Any]
    """The source's own pending modifications: the real upgrade's ApplyImmediately applies them too."""
    master_secret_arn: str | None
    calls: tuple[rds.PlannedCall, ...]
    """Every AWS call that changes something, in order; teardown's deletions last."""


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
    tags = rds.drill_tags(source, KIND, run_id)
    group = plan_group(
        client,
        INSTANCE_GROUPS,
        source,
        source_group=source.parameter_group,
        family=family,
        name=f"{copy}-params",
        run_id=run_id,
        tags=tags,
    )
    calls = [
        rds.PlannedCall(
            "create_db_snapshot",
            {"DBSnapshotIdentifier": copy, "DBInstanceIdentifier": source.identifier, "Tags": tags},
            "the copy's starting point (a Single-AZ source pauses I/O briefly)",
        ),
        rds.restore_call(source, copy, tags, snapshot=copy),
        *group.setup_calls(),
        upgrade_call(copy, target.version, group.name),
        rds.PlannedCall(
            "delete_db_instance",
            {"DBInstanceIdentifier": copy, "SkipFinalSnapshot": True, "DeleteAutomatedBackups": True},
            f"teardown, only if tagged {rds.DRILL_TAG}={run_id}",
        ),
        rds.PlannedCall(
            "delete_db_snapshot", {"DBSnapshotIdentifier": copy}, f"teardown, only if tagged {rds.DRILL_TAG}={run_id}"
        ),
        *group.teardown_calls(),
    ]
    return UpgradePlan(
        source=source,
        stack=stack,
        copy=copy,
        snapshot=copy,
        target=target,
        target_family=family,
        group=group,
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


def parameter_chunks(parameters: Sequence[Mapping[str, str]]) -> Iterator[Sequence[Mapping[str, str]]]:
    """The parameters in groups of PARAMETER_CHUNK, as modify_db_parameter_group takes them."""
    for start in range(0, len(parameters), PARAMETER_CHUNK):
        yield parameters[start : start + PARAMETER_CHUNK]


def _stack_group(client: rds.Client, api: GroupApi, source: rds.Tagged, family: str) -> str | None:
    """A group of `family` tagged like the source (project and stack), not a drill's; the first by name."""
    stack = source.tags.get(rds.STACK_TAG)
    if not stack:
        return None
    wanted = {rds.PROJECT_TAG: rds.PROJECT, rds.STACK_TAG: stack}
    candidates = sorted(
        (str(group[api.name_key]), str(group.get(api.arn_key, "")))
        for page in client.get_paginator(api.describe_groups).paginate()
        for group in page[api.listed]
        if group.get("DBParameterGroupFamily") == family
    )
    for name, arn in candidates:
        tags = rds.tags_of(client.list_tags_for_resource(ResourceName=arn).get("TagList")) if arn else {}
        if all(tags.get(key) == value for key, value in wanted.items()) and rds.DRILL_TAG not in tags:
            return name
    return None


def _user_parameters(client: rds.Client, api: GroupApi, group: str) -> tuple[dict[str, str], ...]:
    """The parameters someone set in `group` (Source=user), ready for the modify call."""
    if not group:
        return ()
    found = []
    for page in client.get_paginator(api.describe_parameters).paginate(**{api.name_key: group}, Source="user"):
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
    api = next((api for api in (INSTANCE_GROUPS, CLUSTER_GROUPS) if api.modify == call.operation), None)
    if api is None:
        return call.render()
    names = ", ".join(f"{p['ParameterName']}={p['ParameterValue']}" for p in call.params["Parameters"])
    group = call.params[api.name_key]
    return f"rds.{call.operation}({api.name_key}={group!r}, Parameters=[{names}])  # {call.why}"


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
