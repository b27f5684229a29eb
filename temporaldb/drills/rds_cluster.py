"""The Aurora side of the drills: find the stack's cluster, copy it with a writer, wait, tear the copy down.

A stack runs either one RDS instance or one Aurora PostgreSQL cluster (a
writer instance and up to 15 readers, all `db.serverless`). The drills copy
a cluster with `restore_db_cluster_to_point_in_time` (a full copy to a
moment, or a copy-on-write clone) and then give the copy a writer with
`create_db_instance`: AWS restores only the cluster, never its instances.

Everything a drill creates carries this run's tag `temporaldb:drill`, like
the instance drills' copies (temporaldb/drills/rds.py), and teardown deletes
only what carries it: the copy's instances first, then the copy (AWS refuses
to delete a cluster whose instances are not deleting).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Final

from temporaldb.drills import rds
from temporaldb.drills.report import DrillReport, Say

CLUSTER_ENGINE: Final = "aurora-postgresql"
SERVERLESS_CLASS: Final = "db.serverless"
WRITER: Final = "writer"
RESUME_CONNECT_TIMEOUT: Final = 60
"""Seconds a drill waits for an Aurora connection: a paused Serverless v2 instance (MinCapacity 0) resumes on the
first connection attempt, which AWS says can take up to 15 seconds, and asks clients to wait longer than that."""
SCALING_KEYS: Final = ("MinCapacity", "MaxCapacity", "SecondsUntilAutoPause")
"""What a copy takes of the source's ServerlessV2ScalingConfiguration (MinCapacity 0: it pauses when idle)."""


@dataclass(frozen=True)
class SourceCluster:
    """What a drill copies from the stack's Aurora cluster (a restore otherwise gets the account defaults)."""

    identifier: str
    arn: str
    engine: str
    engine_version: str
    subnet_group: str
    security_group_ids: tuple[str, ...]
    cluster_parameter_group: str
    port: int
    address: str
    """The cluster (writer) endpoint."""
    earliest_restorable_time: dt.datetime | None
    latest_restorable_time: dt.datetime | None
    tags: Mapping[str, str]
    iam_auth: bool
    backup_retention_days: int
    scaling: Mapping[str, float]
    """ServerlessV2ScalingConfiguration as described: MinCapacity, MaxCapacity, SecondsUntilAutoPause."""
    writer: str | None
    writer_class: str
    writer_parameter_group: str
    """The writer's DB parameter group (instance level), "" when unknown."""
    master_secret_arn: str | None = None
    status: str = ""
    pending_modified_values: Mapping[str, Any] = field(default_factory=dict)

    @property
    def custom_writer_group(self) -> str | None:
        """The writer's DB parameter group when it is the stack's own (RDS's `default.*` ones follow the engine)."""
        group = self.writer_parameter_group
        return group if group and not group.startswith("default.") else None

    @property
    def instance_class(self) -> str:
        """The class of the copy's writer: the source writer's, db.serverless when it has none."""
        return self.writer_class or SERVERLESS_CLASS


def describe_cluster(client: rds.Client, identifier: str) -> dict[str, Any] | None:
    """The cluster's description, None when there is no such cluster."""
    try:
        found: dict[str, Any] = client.describe_db_clusters(DBClusterIdentifier=identifier)["DBClusters"][0]
    except client.exceptions.DBClusterNotFoundFault:
        return None
    return found


def stack_tags(stack: str) -> dict[str, str]:
    """The tags Pulumi's provider puts on every resource of the stack (the drills find the source by them)."""
    return {rds.PROJECT_TAG: rds.PROJECT, rds.STACK_TAG: f"{rds.PROJECT}-{stack}"}


def drills_cluster(client: rds.Client, *, cluster: str | None, instance: str | None, stack: str | None) -> bool:
    """Whether the drill's source is an Aurora cluster: `--cluster`, or a stack that runs one.

    A stack with both an instance and a cluster (or neither) is refused by the drill's own preconditions, which
    name what they found.
    """
    if cluster or instance:
        return bool(cluster)
    return bool(stack) and bool(_stack_clusters(client, str(stack)))


def _stack_clusters(client: rds.Client, stack: str) -> list[dict[str, Any]]:
    wanted = stack_tags(stack)
    return [
        cluster
        for page in client.get_paginator("describe_db_clusters").paginate()
        for cluster in page["DBClusters"]
        if _carries(cluster, wanted)
    ]


def _stack_instances(client: rds.Client, stack: str) -> list[str]:
    """The stack's standalone instances (not a cluster's, not a replica, not a drill's copy)."""
    wanted = stack_tags(stack)
    return [
        str(instance["DBInstanceIdentifier"])
        for page in client.get_paginator("describe_db_instances").paginate()
        for instance in page["DBInstances"]
        if _carries(instance, wanted)
        and not instance.get("DBClusterIdentifier")
        and not instance.get("ReadReplicaSourceDBInstanceIdentifier")
    ]


def _carries(resource: Mapping[str, Any], wanted: Mapping[str, str]) -> bool:
    tags = rds.tags_of(resource.get("TagList"))
    return all(tags.get(key) == value for key, value in wanted.items()) and rds.DRILL_TAG not in tags


def find_cluster_source(
    client: rds.Client, *, identifier: str | None = None, stack: str | None = None
) -> SourceCluster:
    """The cluster named `identifier`, else the one tagged `project=temporaldb, stack=temporaldb-<stack>`.

    Raises PreconditionError when the stack has no such cluster, several, or an RDS instance as well.
    """
    if identifier:
        described = describe_cluster(client, identifier)
        if described is None:
            raise rds.PreconditionError(f"no Aurora cluster {identifier!r} in this account and region")
        return _source(client, described)
    if not stack:
        raise rds.PreconditionError("name the source: --cluster IDENTIFIER or --stack STACK")
    clusters = _stack_clusters(client, stack)
    instances = _stack_instances(client, stack)
    tagged = f"tagged project={rds.PROJECT}, stack={rds.PROJECT}-{stack}"
    names = ", ".join(str(cluster["DBClusterIdentifier"]) for cluster in clusters) or "none"
    if instances:
        raise rds.PreconditionError(
            f"both an RDS instance ({', '.join(instances)}) and an Aurora cluster ({names}) are {tagged}: a stack "
            "runs one or the other; pass --instance or --cluster to choose"
        )
    if len(clusters) != 1:
        raise rds.PreconditionError(f"expected one Aurora cluster {tagged}; found {names}: pass --cluster to choose")
    return _source(client, clusters[0])


def _source(client: rds.Client, cluster: Mapping[str, Any]) -> SourceCluster:
    identifier = str(cluster["DBClusterIdentifier"])
    engine = str(cluster.get("Engine", ""))
    if engine != CLUSTER_ENGINE:
        raise rds.PreconditionError(
            f"{identifier} runs {engine or 'an unknown engine'}; the drills need {CLUSTER_ENGINE}"
        )
    writer = next(
        (str(m["DBInstanceIdentifier"]) for m in cluster.get("DBClusterMembers") or () if m.get("IsClusterWriter")),
        None,
    )
    described = rds.describe_instance(client, writer) if writer else None
    groups = (described or {}).get("DBParameterGroups") or [{}]
    scaling = cluster.get("ServerlessV2ScalingConfiguration") or {}
    return SourceCluster(
        identifier=identifier,
        arn=str(cluster.get("DBClusterArn", "")),
        engine=engine,
        engine_version=str(cluster.get("EngineVersion", "")),
        subnet_group=str(cluster.get("DBSubnetGroup", "")),
        security_group_ids=tuple(str(group["VpcSecurityGroupId"]) for group in cluster.get("VpcSecurityGroups") or ()),
        cluster_parameter_group=str(cluster.get("DBClusterParameterGroup", "")),
        port=int(cluster.get("Port") or 5432),
        address=str(cluster.get("Endpoint", "")),
        earliest_restorable_time=cluster.get("EarliestRestorableTime"),
        latest_restorable_time=cluster.get("LatestRestorableTime"),
        tags=rds.tags_of(cluster.get("TagList")),
        iam_auth=bool(cluster.get("IAMDatabaseAuthenticationEnabled")),
        backup_retention_days=int(cluster.get("BackupRetentionPeriod") or 0),
        scaling={key: scaling[key] for key in SCALING_KEYS if scaling.get(key) is not None},
        writer=writer,
        writer_class=str((described or {}).get("DBInstanceClass", "")),
        writer_parameter_group=str(groups[0].get("DBParameterGroupName", "")),
        master_secret_arn=(cluster.get("MasterUserSecret") or {}).get("SecretArn"),
        status=str(cluster.get("Status", "")),
        pending_modified_values=dict(cluster.get("PendingModifiedValues") or {}),
    )


def check_available(source: SourceCluster) -> None:
    """A drill copies an available cluster only (a paused Serverless v2 writer still says available)."""
    if source.status != "available":
        raise rds.PreconditionError(f"{source.identifier} is {source.status!r}, not available")
    if source.instance_class == SERVERLESS_CLASS and not source.scaling:
        raise rds.PreconditionError(
            f"{source.identifier} has no ServerlessV2ScalingConfiguration, which a {SERVERLESS_CLASS} writer needs"
        )


def check_restore_window(source: SourceCluster, restore_time: dt.datetime) -> None:
    """Refuse a time outside the cluster's restorable window before asking AWS (which answers InvalidRestoreFault)."""
    latest, earliest = source.latest_restorable_time, source.earliest_restorable_time
    if latest is not None and restore_time > latest:
        raise rds.PreconditionError(
            f"--restore-time {restore_time.isoformat()} is after the latest restorable time {latest.isoformat()} "
            f"of {source.identifier}; pick an earlier time or omit it for the latest"
        )
    if earliest is not None and restore_time < earliest:
        raise rds.PreconditionError(
            f"--restore-time {restore_time.isoformat()} is before the earliest restorable time "
            f"{earliest.isoformat()} of {source.identifier} (backup retention)"
        )


def restore_call(
    source: SourceCluster,
    target: str,
    tags: list[dict[str, str]],
    *,
    restore_time: dt.datetime | None = None,
    clone: bool = False,
) -> rds.PlannedCall:
    """The copy of the cluster, with the stack's subnet group, security groups and cluster parameter group.

    A clone (copy-on-write) is of the latest restorable time: AWS refuses RestoreToTime with it. A full copy is of
    `restore_time`, else of the latest restorable time.
    """
    if clone:
        when: dict[str, Any] = {"RestoreType": "copy-on-write", "UseLatestRestorableTime": True}
    elif restore_time is not None:
        when = {"RestoreType": "full-copy", "RestoreToTime": restore_time}
    else:
        when = {"RestoreType": "full-copy", "UseLatestRestorableTime": True}
    params: dict[str, Any] = {
        "DBClusterIdentifier": target,
        "SourceDBClusterIdentifier": source.identifier,
        **when,
        "DBSubnetGroupName": source.subnet_group,
        "VpcSecurityGroupIds": list(source.security_group_ids),
        "DBClusterParameterGroupName": source.cluster_parameter_group,
        "Port": source.port,
        "EnableIAMDatabaseAuthentication": source.iam_auth,
        "DeletionProtection": False,
        "CopyTagsToSnapshot": True,
        "Tags": tags,
    }
    if source.scaling:
        params["ServerlessV2ScalingConfiguration"] = dict(source.scaling)
    kind = "clone" if clone else "copy"
    return rds.PlannedCall("restore_db_cluster_to_point_in_time", params, f"{kind} of {source.identifier}")


def writer_call(source: SourceCluster, cluster: str, writer: str, tags: list[dict[str, str]]) -> rds.PlannedCall:
    """The copy's writer. Storage, engine version, master user, security groups, encryption and IAM auth are the
    cluster's: AWS documents them as not applying to an Aurora instance."""
    params: dict[str, Any] = {
        "DBInstanceIdentifier": writer,
        "DBClusterIdentifier": cluster,
        "Engine": source.engine,
        "DBInstanceClass": source.instance_class,
        "PubliclyAccessible": False,
        "Tags": tags,
    }
    if source.custom_writer_group:
        params["DBParameterGroupName"] = source.custom_writer_group
    return rds.PlannedCall("create_db_instance", params, f"the writer of {cluster} (AWS restores no instance)")


def teardown_calls(cluster: str, writer: str, run_id: str) -> list[rds.PlannedCall]:
    """What teardown calls, in order, for a dry run to show."""
    only = f"teardown, only if tagged {rds.DRILL_TAG}={run_id}"
    return [
        rds.PlannedCall(
            "delete_db_instance", {"DBInstanceIdentifier": writer}, f"{only} (and any other instance of it)"
        ),
        rds.PlannedCall(
            "delete_db_cluster",
            {"DBClusterIdentifier": cluster, "SkipFinalSnapshot": True, "DeleteAutomatedBackups": True},
            f"{only}, once its instances are deleting",
        ),
    ]


def copy_address(source: SourceCluster, target: str) -> str:
    """The copy's endpoint: `<cluster>.cluster-<account and region hash>.<region>.rds.amazonaws.com`."""
    return source.address.replace(source.identifier, target, 1)


def wait_available(client: rds.Client, identifier: str, say: Say, limits: rds.Limits) -> dict[str, Any]:
    """Poll until cluster `identifier` is available; a terminal state fails at once."""
    return rds.wait_status(
        partial(describe_cluster, client, identifier),
        identifier,
        say,
        status_key="Status",
        **limits.kwargs(),
    )


def delete_drill_cluster(client: rds.Client, identifier: str, run_id: str, limits: rds.Limits) -> str:
    """Delete cluster `identifier` if, and only if, it carries this run's drill tag (no final snapshot); while AWS
    refuses (the cluster is being created, or an instance is not deleting yet), retry within the limits."""
    return rds.delete_tagged(
        partial(describe_cluster, client, identifier),
        partial(
            client.delete_db_cluster,
            DBClusterIdentifier=identifier,
            SkipFinalSnapshot=True,
            DeleteAutomatedBackups=True,
        ),
        identifier,
        run_id,
        status_key="Status",
        busy=client.exceptions.InvalidDBClusterStateFault,
        **limits.kwargs(),
    )


def tear_down_copy(
    client: rds.Client, cluster: str, writer: str, report: DrillReport, *, say: Say, limits: rds.Limits
) -> list[str]:
    """Delete the copy's instances (the planned writer and any other member), wait until they are gone, then the
    copy, each only with this run's tag. Adds what went to `report.torn_down`; returns what could not be removed."""
    run_id, problems = report.run_id, []
    described = describe_cluster(client, cluster) or {}
    members = [writer, *(str(m["DBInstanceIdentifier"]) for m in described.get("DBClusterMembers") or ())]
    for member in dict.fromkeys(members):
        try:
            outcome = rds.delete_drill_instance(
                client,
                member,
                run_id,
                cluster_member=True,
                **limits.kwargs(),
            )
            if outcome != "already gone":
                gone = _wait_gone(partial(rds.describe_instance, client, member), member, say, limits)
                report.torn_down.append(f"rds instance {member} ({'deleted' if gone else 'deleting'})")
        except (rds.RdsDrillError, client.exceptions.ClientError) as error:
            problems.append(f"instance {member}: {error}")
    if problems:  # AWS would refuse the cluster while an instance is not deleting: waiting would not help
        return [*problems, f"cluster {cluster}: kept while its instances exist"]
    try:
        if delete_drill_cluster(client, cluster, run_id, limits) != "already gone":
            gone = _wait_gone(partial(describe_cluster, client, cluster), cluster, say, limits)
            report.torn_down.append(f"rds cluster {cluster} ({'deleted' if gone else 'deleting'})")
    except (rds.RdsDrillError, client.exceptions.ClientError) as error:
        problems.append(f"cluster {cluster}: {error}")
    return problems


def _wait_gone(describe: rds.Describe, identifier: str, say: Say, limits: rds.Limits) -> bool:
    return rds.wait_gone(
        describe,
        identifier,
        say,
        **limits.kwargs(),
    )
