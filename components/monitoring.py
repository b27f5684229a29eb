"""DatabaseAlarms: CloudWatch alarms and RDS events, delivered through SNS.

One topic receives the alarms (CPU, CPU credits on burstable classes, free
storage, freeable memory, connections, read and write latency), the RDS event
subscriptions that FSBP RDS.20/RDS.21 ask for, and the cost budget's alerts;
an e-mail address can be subscribed to it. Everything that publishes to the
topic waits for the topic policy that lets it: `topic_arn` resolves only once
the policy exists.

Thresholds come from the instance, so they fire before the outage:
- connections: a share of the class's real max_connections (RDS derives it
  from DBInstanceClassMemory, less than the class's memory; infra/catalog.py);
- free storage: a share of the current allocation, which storage autoscaling
  grows; sustained for the whole evaluation, it means autoscaling did not catch
  up or has reached its ceiling;
- CPU credits (t3/t4g): a share of the most the class can hold. RDS runs these
  classes in Unlimited mode, so an empty balance means billed surplus credits
  (and a workload beyond the class's baseline), not throttling.

The topic is not KMS-encrypted on purpose: CloudWatch alarms cannot publish to
a topic encrypted with the AWS-managed SNS key, and nothing secret is sent.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
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
    threshold: pulumi.Input[float]
    description: pulumi.Input[str]
    statistic: str = "Average"


@dataclass(frozen=True)
class DatabaseAlarmsArgs:
    instance_identifier: pulumi.Input[str]
    parameter_group_name: pulumi.Input[str]
    allocated_storage_gb: pulumi.Input[int]
    """The current allocation (the instance's output, which storage autoscaling grows)."""
    memory_gib: int
    max_connections: int
    """The class's max_connections as RDS sets it by default."""
    cpu_credits_per_hour: int | None = None
    """Burstable classes only: credits earned per hour; None adds no credit alarm."""
    alarm_email: pulumi.Input[str] | None = None
    cpu_percent: float = 80.0
    cpu_credit_fraction: float = 0.20
    free_storage_fraction: float = 0.10
    free_memory_fraction: float = 0.10
    connections_fraction: float = 0.80
    latency_seconds: float = 0.020
    period_seconds: int = 300
    evaluation_periods: int = 3


def alarm_specs(args: DatabaseAlarmsArgs) -> list[AlarmSpec]:
    """The alarms and their thresholds, derived from the instance's size."""
    free_memory = args.memory_gib * GIB * args.free_memory_fraction
    connections = round(args.max_connections * args.connections_fraction)
    sustained = f"for {args.period_seconds * args.evaluation_periods // 60} minutes"
    specs = [
        AlarmSpec(
            "cpu", "CPUUtilization", "GreaterThanThreshold", args.cpu_percent, f"CPU above {args.cpu_percent:g}%"
        ),
        _free_storage(args),
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
    if args.cpu_credits_per_hour is not None:
        most = 24 * args.cpu_credits_per_hour
        specs.insert(
            1,
            AlarmSpec(
                "cpu-credits",
                "CPUCreditBalance",
                "LessThanThreshold",
                most * args.cpu_credit_fraction,
                f"CPU credit balance below {args.cpu_credit_fraction:.0%} of the {most} a full day earns: "
                "bursting beyond the baseline, soon billed as surplus credits (Unlimited mode)",
            ),
        )
    return [
        AlarmSpec(
            s.suffix,
            s.metric,
            s.comparison,
            s.threshold,
            pulumi.Output.from_input(s.description).apply(lambda text: f"{text} {sustained}"),
        )
        for s in specs
    ]


def _free_storage(args: DatabaseAlarmsArgs) -> AlarmSpec:
    allocated = pulumi.Output.from_input(args.allocated_storage_gb)
    return AlarmSpec(
        "free-storage",
        "FreeStorageSpace",
        "LessThanThreshold",
        allocated.apply(lambda gib: float(gib) * GIB * args.free_storage_fraction),
        allocated.apply(
            lambda gib: (
                f"free storage below {args.free_storage_fraction:.0%} of the allocated {gib} GiB"
                " (autoscaling did not catch up, or is at its ceiling)"
            )
        ),
    )


class DatabaseAlarms(pulumi.ComponentResource):
    topic_arn: pulumi.Output[str]
    alarm_names: pulumi.Output[list[str]]

    def __init__(self, name: str, args: DatabaseAlarmsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("temporaldb:monitoring:DatabaseAlarms", name, None, opts)
        topic_arn = alert_topic(self, name, args.alarm_email)
        alarms = [
            metric_alarm(
                self,
                f"{name}-{spec.suffix}",
                spec,
                dimensions={"DBInstanceIdentifier": args.instance_identifier},
                topic_arn=topic_arn,
                period_seconds=args.period_seconds,
                evaluation_periods=args.evaluation_periods,
            )
            for spec in alarm_specs(args)
        ]
        instance_events(
            self,
            name,
            topic_arn=topic_arn,
            instance_identifiers=[args.instance_identifier],
            parameter_group_name=args.parameter_group_name,
        )
        self.topic_arn = topic_arn
        self.alarm_names = pulumi.Output.all(*[alarm.name for alarm in alarms])
        self.register_outputs({"topic_arn": self.topic_arn, "alarm_names": self.alarm_names})


def alert_topic(owner: pulumi.Resource, name: str, alarm_email: pulumi.Input[str] | None) -> pulumi.Output[str]:
    """The SNS topic, its policy and the e-mail subscription; its ARN once the policy lets publishers in."""
    child = pulumi.ResourceOptions(parent=owner)
    topic = aws.sns.Topic(f"{name}-topic", opts=child)
    policy = aws.sns.TopicPolicy(
        f"{name}-topic-policy", arn=topic.arn, policy=topic.arn.apply(_topic_policy), opts=child
    )
    if alarm_email is not None:
        aws.sns.TopicSubscription(f"{name}-email", topic=topic.arn, protocol="email", endpoint=alarm_email, opts=child)
    # Publishers must not be created before the policy that lets them publish: an RDS event subscription
    # or a budget notification made first would have its first messages refused.
    return pulumi.Output.all(topic.arn, policy.id).apply(lambda values: str(values[0]))


def metric_alarm(
    owner: pulumi.Resource,
    name: str,
    spec: AlarmSpec,
    *,
    dimensions: Mapping[str, pulumi.Input[str]],
    topic_arn: pulumi.Input[str],
    period_seconds: int,
    evaluation_periods: int,
) -> aws.cloudwatch.MetricAlarm:
    """One AWS/RDS alarm that notifies the topic when it fires and when it clears."""
    return aws.cloudwatch.MetricAlarm(
        name,
        alarm_description=spec.description,
        namespace="AWS/RDS",
        metric_name=spec.metric,
        dimensions=dimensions,
        statistic=spec.statistic,
        period=period_seconds,
        evaluation_periods=evaluation_periods,
        comparison_operator=spec.comparison,
        threshold=spec.threshold,
        treat_missing_data="missing",
        alarm_actions=[topic_arn],
        ok_actions=[topic_arn],
        opts=pulumi.ResourceOptions(parent=owner),
    )


def instance_events(
    owner: pulumi.Resource,
    name: str,
    *,
    topic_arn: pulumi.Input[str],
    instance_identifiers: Sequence[pulumi.Input[str]],
    parameter_group_name: pulumi.Input[str],
) -> None:
    """The RDS events of the database instances and of their DB parameter group (FSBP RDS.20, RDS.21)."""
    event_subscription(
        owner,
        f"{name}-instance-events",
        topic_arn=topic_arn,
        source_type="db-instance",
        source_ids=instance_identifiers,
        categories=INSTANCE_EVENTS,
    )
    event_subscription(
        owner,
        f"{name}-parameter-events",
        topic_arn=topic_arn,
        source_type="db-parameter-group",
        source_ids=[parameter_group_name],
        categories=PARAMETER_GROUP_EVENTS,
    )


def event_subscription(
    owner: pulumi.Resource,
    name: str,
    *,
    topic_arn: pulumi.Input[str],
    source_type: str,
    source_ids: Sequence[pulumi.Input[str]],
    categories: Sequence[str],
) -> aws.rds.EventSubscription:
    return aws.rds.EventSubscription(
        name,
        sns_topic=topic_arn,
        source_type=source_type,
        source_ids=list(source_ids),
        event_categories=list(categories),
        opts=pulumi.ResourceOptions(parent=owner),
    )


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
