"""The major-version upgrade drill on an Aurora cluster: clone the stack's cluster, upgrade the clone, verify, delete.

Stages (each timed in the report):

    preconditions    `plan()`: the source cluster, a valid aurora-postgresql major-version target, its parameter
                     group family, db.serverless on the target, the target's lowest Serverless v2 capacity against the
                     source's minimum, pending maintenance, the stack's target-family groups; no change
    clone            a copy-on-write clone of the latest restorable time (restore_db_cluster_to_point_in_time) with
                     the stack's subnet group, security groups, cluster parameter group and scaling, tagged; it
                     shares the source's storage until written, so it is fast and costs little
    add_writer       the clone's writer (create_db_instance, db.serverless, the source writer's DB parameter group)
    parameter_group  the target family's cluster parameter group: the stack's if there is one, else
                     `<clone>-cluster-params` with the source's user-modified cluster parameters; likewise a DB
                     parameter group when the source's writer has a custom one (a default one follows the upgrade)
    record_facts     as the instance drill (temporaldb/drills/aws_upgrade_drill.py, shared)
    prechecks        AWS's SQL pre-checks on the clone (master login); a blocker stops the drill here
    upgrade          `modify_db_cluster(EngineVersion, AllowMajorVersionUpgrade, DBClusterParameterGroupName,
                     [DBInstanceParameterGroupName,] ApplyImmediately)`: the cluster and its instances upgrade
                     together; wait until it runs the target and its writer is available
    analyze, verify  shared with the instance drill
    teardown         the writer, then the clone, then the groups the drill made: each only with this run's tag

The source is never changed. The engine catalog (valid targets, families, orderable classes, Serverless v2 limits,
pending maintenance) is the instance drill's `EngineCatalog`, the seam tests stub (moto lacks those calls).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Final

from temporaldb.drills import rds, rds_cluster
from temporaldb.drills.aws_upgrade_drill import UpgradeDrill, access_for, drive
from temporaldb.drills.aws_upgrade_lifecycle import Upgrading, wait_version
from temporaldb.drills.aws_upgrade_options import UpgradeAccess, UpgradeOptions, stack_name
from temporaldb.drills.aws_upgrade_plan import (
    CLUSTER_GROUPS,
    INSTANCE_GROUPS,
    GroupPlan,
    Majors,
    UpgradeRefused,
    plan_group,
    render,
    stack_file_name,
)
from temporaldb.drills.aws_upgrade_targets import EngineCatalog, UpgradeTarget, choose_target
from temporaldb.drills.report import DrillReport, Say, StageResult

KIND: Final = "upgrade"
# Stage names, in the order they run.
STAGES: Final = (
    "preconditions", "clone", "add_writer", "parameter_group", "record_facts", "prechecks", "upgrade", "analyze",
    "verify", "teardown",
)  # fmt: skip


@dataclass(frozen=True)
class ClusterUpgradePlan(Majors):
    """What `plan()` found and what the drill will call; nothing has been changed."""

    source: rds_cluster.SourceCluster
    stack: str | None
    clone: str
    writer: str
    target: UpgradeTarget
    target_family: str
    cluster_group: GroupPlan
    instance_group: GroupPlan | None
    """None when the source's writer uses a default DB parameter group (the upgrade gives the target's default)."""
    pending_maintenance: tuple[str, ...]
    calls: tuple[rds.PlannedCall, ...]
    """Every AWS call that changes something, in order; teardown's deletions last."""
    pending_modified_values: Mapping[str, Any] = field(default_factory=dict)

    @property
    def groups(self) -> list[GroupPlan]:
        return [self.cluster_group, *([self.instance_group] if self.instance_group else [])]


def plan(
    client: rds.Client, options: UpgradeOptions, run_id: str, *, catalog: EngineCatalog | None = None
) -> ClusterUpgradePlan:
    """Check every precondition and plan the calls; nothing is changed. Raises PreconditionError (or UpgradeRefused,
    carrying what to change first) with a message that says what is wrong."""
    catalog = catalog or EngineCatalog(client)
    source = rds_cluster.find_cluster_source(client, identifier=options.cluster, stack=options.stack)
    rds_cluster.check_available(source)
    stack = options.stack or stack_name(source)
    engine, version = source.engine, source.engine_version
    target = choose_target(version, catalog.upgrade_targets(engine, version), options.target_version.strip(), engine)
    family = catalog.parameter_group_family(engine, target.version)
    _check_target_runs_the_writer(catalog, source, target, stack)
    pending = catalog.pending_maintenance(source.arn) if source.arn else ()
    clone = rds.drill_identifier(source.identifier, KIND, run_id)
    writer = rds.drill_identifier(source.identifier, KIND, run_id, rds_cluster.WRITER)
    rds.refuse_reused_run(client, run_id)  # teardown deletes what carries the run's tag
    tags = rds.drill_tags(source, KIND, run_id)
    group = partial(plan_group, client, source=source, family=family, run_id=run_id, tags=tags)
    cluster_group = group(CLUSTER_GROUPS, source_group=source.cluster_parameter_group, name=f"{clone}-cluster-params")
    custom = source.custom_writer_group
    instance_group = group(INSTANCE_GROUPS, source_group=custom, name=f"{clone}-params") if custom else None
    calls = [
        rds_cluster.restore_call(source, clone, tags, clone=True),
        rds_cluster.writer_call(source, clone, writer, tags),
        *cluster_group.setup_calls(),
        *(instance_group.setup_calls() if instance_group else []),
        upgrade_call(clone, target.version, cluster_group.name, instance_group.name if instance_group else None),
        *rds_cluster.teardown_calls(clone, writer, run_id),
        *cluster_group.teardown_calls(),
        *(instance_group.teardown_calls() if instance_group else []),
    ]
    return ClusterUpgradePlan(
        source=source,
        stack=stack,
        clone=clone,
        writer=writer,
        target=target,
        target_family=family,
        cluster_group=cluster_group,
        instance_group=instance_group,
        pending_maintenance=pending,
        calls=tuple(calls),
        pending_modified_values=source.pending_modified_values,
    )


def _check_target_runs_the_writer(
    catalog: EngineCatalog, source: rds_cluster.SourceCluster, target: UpgradeTarget, stack: str | None
) -> None:
    """The writer's class must exist on the target, and a Serverless v2 minimum the target accepts."""
    engine, stack_file = source.engine, stack_file_name(stack)
    if not catalog.orderable(engine, target.version, source.instance_class):
        raise UpgradeRefused(
            f"{source.instance_class} cannot run {engine} {target.version} in this region; the upgrade would be "
            "refused",
            [
                f"{stack_file}: an Aurora version whose valid upgrade targets run {source.instance_class} (aws rds "
                f"describe-orderable-db-instance-options --engine {engine} --db-instance-class "
                f"{source.instance_class} --query 'OrderableDBInstanceOptions[].EngineVersion')"
            ],
        )
    lowest = catalog.serverless_v2_minimum(engine, target.version)
    floor = source.scaling.get("MinCapacity")
    if lowest is not None and floor is not None and floor < lowest:
        raise UpgradeRefused(
            f"{source.identifier} scales down to {floor:g} ACU; {engine} {target.version} accepts at least "
            f"{lowest:g} (it cannot pause)",
            [f"{stack_file}: a Serverless v2 minimum capacity of at least {lowest:g} ACU, in its own update first"],
        )


def upgrade_call(cluster: str, version: str, cluster_group: str, instance_group: str | None) -> rds.PlannedCall:
    """The upgrade as AWS documents ModifyDBCluster: the flag, the target-family cluster parameter group, the
    instances' DB parameter group when they have a custom one (valid with AllowMajorVersionUpgrade only), at once."""
    params: dict[str, Any] = {
        "DBClusterIdentifier": cluster,
        "EngineVersion": version,
        "AllowMajorVersionUpgrade": True,
        "DBClusterParameterGroupName": cluster_group,
    }
    if instance_group:
        params["DBInstanceParameterGroupName"] = instance_group
    params["ApplyImmediately"] = True
    return rds.PlannedCall("modify_db_cluster", params, "the major-version upgrade of the clone and its instances")


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

    Without `report.applied`, only the preconditions run; `access` (the logins) may then be None.
    """
    access = dataclasses.replace(access_for(access, report), connect_timeout=rds_cluster.RESUME_CONNECT_TIMEOUT)
    drive(_ClusterDrill(client, options, access, report, say, sleep, catalog or EngineCatalog(client)))


@dataclass
class _ClusterDrill(UpgradeDrill[ClusterUpgradePlan]):
    def make_plan(self) -> ClusterUpgradePlan:
        return plan(self.client, self.options, self.report.run_id, catalog=self.catalog)

    def describe_plan(self, stage: StageResult) -> None:
        found, report = self._plan(), self.report
        source = found.source
        report.planned_calls = [render(call) for call in found.calls]
        address = rds_cluster.copy_address(source, found.clone)
        report.details.update(
            source=source.identifier,
            source_kind="aurora cluster",
            source_version=source.engine_version,
            target_version=found.target.version,
            target_family=found.target_family,
            drill_cluster=found.clone,
            drill_instance=found.writer,
            drill_address=address,
            cluster_parameter_group=found.cluster_group.name,
            cluster_parameter_group_created=found.cluster_group.create,
            instance_parameter_group=found.instance_group.name if found.instance_group else None,
            instance_parameter_group_created=bool(found.instance_group and found.instance_group.create),
            pending_maintenance=list(found.pending_maintenance),
            pending_modified_values=dict(found.pending_modified_values),
        )
        self.note_pending(source.identifier, found.pending_maintenance, found.pending_modified_values)
        groups = "; ".join(group.describe() for group in found.groups)
        stage.detail = (
            f"cluster {source.identifier} {source.engine} {source.engine_version} -> {found.target.version}; clone "
            f"{found.clone} with writer {found.writer}; {groups}"
        )
        self.say(f"the clone will answer at {address}:{source.port} (run id {report.run_id})")

    def make_copy(self, found: ClusterUpgradePlan) -> None:
        report, say, limits = self.report, self.say, self.limits
        restore, add_writer = found.calls[:2]
        with report.stage("clone", say) as stage:
            report.changed = True  # from here a failure needs teardown
            rds.call(self.client, restore)
            cluster = rds_cluster.wait_available(self.client, found.clone, say, limits)
            self.address = str(cluster.get("Endpoint", ""))
            self.port = int(cluster.get("Port") or found.source.port)
            stage.detail = f"{restore.why}: {found.clone} available at {self.address}"
        with report.stage("add_writer", say) as stage:
            rds.call(self.client, add_writer)
            rds.wait_available(
                self.client,
                found.writer,
                say,
                **limits.kwargs(),
            )
            stage.detail = f"{found.writer} ({found.source.instance_class}) available in {found.clone}"
        with report.stage("parameter_group", say) as stage:
            stage.detail = "; ".join(self.copy_group(group) for group in found.groups)

    def upgrade(self, found: ClusterUpgradePlan) -> str:
        call = next(call for call in found.calls if call.operation == "modify_db_cluster")
        answer = rds.call(self.client, call)
        watched = Upgrading(
            found.clone, partial(rds_cluster.describe_cluster, self.client, found.clone), "Status", "db-cluster",
            found.writer,
        )  # fmt: skip
        cluster = wait_version(
            self.client, watched, found.target.version, self.say, accepted=answer.get("DBCluster"), limits=self.limits
        )
        limits = self.limits
        writer = rds.wait_available(
            self.client,
            found.writer,
            self.say,
            **limits.kwargs(),
        )
        groups = [g.get("DBParameterGroupName") for g in writer.get("DBParameterGroups") or ()]
        return (
            f"{found.clone} runs {cluster.get('EngineVersion')} with {cluster.get('DBClusterParameterGroup')}; "
            f"writer {found.writer} available with {', '.join(map(str, groups)) or 'no group'}"
        )

    def teardown(self, found: ClusterUpgradePlan) -> None:
        """Delete the writer and any other instance of the clone, then the clone, then the groups the drill made;
        each only with this run's tag."""
        report = self.report
        with report.stage("teardown", self.say) as stage:
            if not report.changed:
                stage.detail = "nothing was created"
                return
            problems = rds_cluster.tear_down_copy(
                self.client, found.clone, found.writer, report, say=self.say, limits=self.limits
            )
            self.delete_groups(found.groups, problems)
            stage.detail = ", ".join(report.torn_down) or "nothing to remove"
            self.left_behind(problems)
