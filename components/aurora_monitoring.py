"""AuroraAlarms: the alarms and RDS events that fit an Aurora Serverless v2 cluster, through SNS.

Capacity replaces the instance's CPU, memory and storage alarms: a Serverless
v2 instance grows into its maximum instead of running out, so what matters is
how close it runs to that maximum and whether it sits there. Per instance:

- ACU utilization (capacity as a share of the maximum) high for 15 minutes;
- capacity at the maximum (ServerlessDatabaseCapacity, Maximum statistic):
  the instance cannot grow any more, queries queue;
- free local storage (temporary files and logs live on the instance, not on
  the cluster volume) below a floor;
- connections above a share of max_connections, which Aurora sizes from the
  memory of the maximum capacity (an estimate, infra/catalog.py);
- on readers, replica lag: how far a reader's answers trail the writer.

For the cluster: the volume (VolumeBytesUsed, hourly) above the size whose
storage would cost a share of the stack's monthly budget, since the volume
has no ceiling of its own. RDS events for the cluster, its instances and their
parameter group reach the same topic as the alarms and the budget
(components/monitoring.py makes it); a paused instance reports no metrics,
which leaves each alarm as it was.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi

from components.monitoring import AlarmSpec, alert_topic, event_subscription, instance_events, metric_alarm

GIB = 1024**3
CLUSTER_EVENTS = ("configuration change", "failover", "failure", "maintenance", "notification")
WRITER = "writer"


@dataclass(frozen=True)
class AuroraAlarmsArgs:
    cluster_identifier: pulumi.Input[str]
    writer_identifier: pulumi.Input[str]
    reader_identifiers: Sequence[pulumi.Input[str]]
    """In order: reader-1, reader-2, ..."""
    parameter_group_name: pulumi.Input[str]
    """The instances' DB parameter group (RDS sends no events for cluster parameter groups)."""
    max_acu: float
    max_connections: int
    """max_connections at the maximum capacity, as estimated by infra.catalog.serverless_max_connections."""
    volume_alarm_bytes: float
    """The cluster volume size to alarm above."""
    volume_basis: str
    """Why that size, for the alarm's description."""
    alarm_email: pulumi.Input[str] | None = None
    acu_utilization_percent: float = 80.0
    free_local_storage_bytes: float = 1.0 * GIB
    connections_fraction: float = 0.80
    replica_lag_ms: float = 1000.0
    period_seconds: int = 300
    evaluation_periods: int = 3
    volume_period_seconds: int = 3600
    """VolumeBytesUsed is a cluster figure that moves slowly; one hour's average is plenty."""


def instance_specs(args: AuroraAlarmsArgs, *, reader: bool) -> list[AlarmSpec]:
    """The alarms of one instance, sustained for `evaluation_periods` periods."""
    sustained = f"for {args.period_seconds * args.evaluation_periods // 60} minutes"
    connections = round(args.max_connections * args.connections_fraction)
    specs = [
        AlarmSpec(
            "acu-utilization",
            "ACUUtilization",
            "GreaterThanThreshold",
            args.acu_utilization_percent,
            f"capacity above {args.acu_utilization_percent:g}% of auroraMaxAcu ({args.max_acu:g} ACU) {sustained}",
        ),
        AlarmSpec(
            "capacity-at-max",
            "ServerlessDatabaseCapacity",
            "GreaterThanOrEqualToThreshold",
            args.max_acu,
            f"capacity at auroraMaxAcu ({args.max_acu:g} ACU) {sustained}: it cannot grow, raise the maximum",
            statistic="Maximum",
        ),
        AlarmSpec(
            "free-local-storage",
            "FreeLocalStorage",
            "LessThanThreshold",
            args.free_local_storage_bytes,
            f"local storage (temporary files, logs) below {args.free_local_storage_bytes / GIB:g} GiB {sustained}",
        ),
        AlarmSpec(
            "connections",
            "DatabaseConnections",
            "GreaterThanThreshold",
            connections,
            f"connections above {args.connections_fraction:.0%} of max_connections at {args.max_acu:g} ACU "
            f"({args.max_connections}) {sustained}",
        ),
    ]
    if reader:
        specs.append(
            AlarmSpec(
                "replica-lag",
                "AuroraReplicaLag",
                "GreaterThanThreshold",
                args.replica_lag_ms,
                f"answers trail the writer by more than {args.replica_lag_ms:g} ms {sustained}",
                statistic="Maximum",
            )
        )
    return specs


def volume_spec(args: AuroraAlarmsArgs) -> AlarmSpec:
    return AlarmSpec(
        "volume-bytes",
        "VolumeBytesUsed",
        "GreaterThanThreshold",
        args.volume_alarm_bytes,
        f"cluster volume above {args.volume_alarm_bytes / GIB:.0f} GiB: {args.volume_basis}",
    )


class AuroraAlarms(pulumi.ComponentResource):
    topic_arn: pulumi.Output[str]
    alarm_names: pulumi.Output[list[str]]

    def __init__(self, name: str, args: AuroraAlarmsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("temporaldb:monitoring:AuroraAlarms", name, None, opts)
        topic_arn = alert_topic(self, name, args.alarm_email)
        instances = {WRITER: args.writer_identifier} | {
            f"reader-{number}": identifier for number, identifier in enumerate(args.reader_identifiers, start=1)
        }
        alarms = [
            metric_alarm(
                self,
                f"{name}-{role}-{spec.suffix}",
                spec,
                dimensions={"DBInstanceIdentifier": identifier},
                topic_arn=topic_arn,
                period_seconds=args.period_seconds,
                evaluation_periods=args.evaluation_periods,
            )
            for role, identifier in instances.items()
            for spec in instance_specs(args, reader=role != WRITER)
        ]
        alarms.append(
            metric_alarm(
                self,
                f"{name}-cluster-volume-bytes",
                volume_spec(args),
                dimensions={"DBClusterIdentifier": args.cluster_identifier},
                topic_arn=topic_arn,
                period_seconds=args.volume_period_seconds,
                evaluation_periods=1,
            )
        )
        event_subscription(
            self,
            f"{name}-cluster-events",
            topic_arn=topic_arn,
            source_type="db-cluster",
            source_ids=[args.cluster_identifier],
            categories=CLUSTER_EVENTS,
        )
        instance_events(
            self,
            name,
            topic_arn=topic_arn,
            instance_identifiers=list(instances.values()),
            parameter_group_name=args.parameter_group_name,
        )
        self.topic_arn = topic_arn
        self.alarm_names = pulumi.Output.all(*[alarm.name for alarm in alarms])
        self.register_outputs({"topic_arn": self.topic_arn, "alarm_names": self.alarm_names})
