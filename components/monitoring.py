"""DatabaseAlarms: CloudWatch alarms and RDS events, delivered through SNS.

One topic receives the alarms (CPU, free storage, freeable memory,
connections, read and write latency), the RDS event subscriptions that FSBP
RDS.20/RDS.21 ask for, and the cost budget's alerts; an e-mail address can be
subscribed to it.

The topic is not KMS-encrypted on purpose: CloudWatch alarms cannot publish to
a topic encrypted with the AWS-managed SNS key, and nothing secret is sent.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

GIB = 1024**3
INSTANCE_EVENTS = (
    "availability",
    "failover",
    "failure",
    "low storage",
    "maintenance",
    "configuration change",
    "notification",
)
PARAMETER_GROUP_EVENTS = ("configuration change",)
PUBLISHING_SERVICES = ("cloudwatch.amazonaws.com", "events.rds.amazonaws.com", "budgets.amazonaws.com")


@dataclass(frozen=True)
class AlarmSpec:
    suffix: str
    metric: str
    comparison: str
    threshold: float
    description: str


@dataclass(frozen=True)
class DatabaseAlarmsArgs:
    instance_identifier: pulumi.Input[str]
    parameter_group_name: pulumi.Input[str]
    allocated_storage_gb: int
    memory_gib: int
    max_connections: int
    alarm_email: pulumi.Input[str] | None = None
    cpu_percent: float = 80.0
    free_storage_fraction: float = 0.10
    free_memory_fraction: float = 0.10
    connections_fraction: float = 0.80
    latency_seconds: float = 0.020
    period_seconds: int = 300
    evaluation_periods: int = 3


def alarm_specs(args: DatabaseAlarmsArgs) -> list[AlarmSpec]:
    """The alarms and their thresholds, derived from the instance's size."""
    free_storage = args.allocated_storage_gb * GIB * args.free_storage_fraction
    free_memory = args.memory_gib * GIB * args.free_memory_fraction
    connections = round(args.max_connections * args.connections_fraction)
    sustained = f"for {args.period_seconds * args.evaluation_periods // 60} minutes"
    specs = [
        AlarmSpec(
            "cpu", "CPUUtilization", "GreaterThanThreshold", args.cpu_percent, f"CPU above {args.cpu_percent:g}%"
        ),
        AlarmSpec(
            "free-storage",
            "FreeStorageSpace",
            "LessThanThreshold",
            free_storage,
            f"free storage below {args.free_storage_fraction:.0%} of the allocated {args.allocated_storage_gb} GiB",
        ),
        AlarmSpec(
            "freeable-memory",
            "FreeableMemory",
            "LessThanThreshold",
            free_memory,
            f"freeable memory below {args.free_memory_fraction:.0%} of {args.memory_gib} GiB",
        ),
        AlarmSpec(
            "connections",
            "DatabaseConnections",
            "GreaterThanThreshold",
            connections,
            f"connections above {args.connections_fraction:.0%} of max_connections ({args.max_connections})",
        ),
        AlarmSpec(
            "read-latency",
            "ReadLatency",
            "GreaterThanThreshold",
            args.latency_seconds,
            f"read latency above {args.latency_seconds * 1000:g} ms",
        ),
        AlarmSpec(
            "write-latency",
            "WriteLatency",
            "GreaterThanThreshold",
            args.latency_seconds,
            f"write latency above {args.latency_seconds * 1000:g} ms",
        ),
    ]
    return [AlarmSpec(s.suffix, s.metric, s.comparison, s.threshold, f"{s.description} {sustained}") for s in specs]


class DatabaseAlarms(pulumi.ComponentResource):
    topic_arn: pulumi.Output[str]
    alarm_names: pulumi.Output[list[str]]

    def __init__(self, name: str, args: DatabaseAlarmsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("temporaldb:monitoring:DatabaseAlarms", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        topic = aws.sns.Topic(f"{name}-topic", opts=child)
        aws.sns.TopicPolicy(f"{name}-topic-policy", arn=topic.arn, policy=topic.arn.apply(_topic_policy), opts=child)
        if args.alarm_email is not None:
            aws.sns.TopicSubscription(
                f"{name}-email", topic=topic.arn, protocol="email", endpoint=args.alarm_email, opts=child
            )
        alarms = [
            aws.cloudwatch.MetricAlarm(
                f"{name}-{spec.suffix}",
                alarm_description=spec.description,
                namespace="AWS/RDS",
                metric_name=spec.metric,
                dimensions={"DBInstanceIdentifier": args.instance_identifier},
                statistic="Average",
                period=args.period_seconds,
                evaluation_periods=args.evaluation_periods,
                comparison_operator=spec.comparison,
                threshold=spec.threshold,
                treat_missing_data="missing",
                alarm_actions=[topic.arn],
                ok_actions=[topic.arn],
                opts=child,
            )
            for spec in alarm_specs(args)
        ]
        aws.rds.EventSubscription(
            f"{name}-instance-events",
            sns_topic=topic.arn,
            source_type="db-instance",
            source_ids=[args.instance_identifier],
            event_categories=list(INSTANCE_EVENTS),
            opts=child,
        )
        aws.rds.EventSubscription(
            f"{name}-parameter-events",
            sns_topic=topic.arn,
            source_type="db-parameter-group",
            source_ids=[args.parameter_group_name],
            event_categories=list(PARAMETER_GROUP_EVENTS),
            opts=child,
        )
        self.topic_arn = topic.arn
        self.alarm_names = pulumi.Output.all(*[alarm.name for alarm in alarms])
        self.register_outputs({"topic_arn": self.topic_arn, "alarm_names": self.alarm_names})


def _topic_policy(topic_arn: str) -> str:
    """Only this account's CloudWatch, RDS events and Budgets may publish."""
    account_id = topic_arn.split(":")[4]
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "AccountOwnerManages",
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{account_id}:root"},
                    "Action": ["SNS:GetTopicAttributes", "SNS:SetTopicAttributes", "SNS:Subscribe", "SNS:Publish"],
                    "Resource": topic_arn,
                },
                {
                    "Sid": "ServicesPublish",
                    "Effect": "Allow",
                    "Principal": {"Service": list(PUBLISHING_SERVICES)},
                    "Action": "SNS:Publish",
                    "Resource": topic_arn,
                    "Condition": {"StringEquals": {"aws:SourceAccount": account_id}},
                },
            ],
        }
    )
