"""CostBudget: an AWS Budgets monthly cost budget for one stack.

The budget counts the costs of resources tagged with this stack's tags. AWS
only filters on tags that are activated as cost allocation tags (Billing
console, once per account); README explains the step.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws


@dataclass(frozen=True)
class CostBudgetArgs:
    monthly_limit_usd: int
    cost_allocation_tag: tuple[str, str]
    """(key, value) of the tag whose resources the budget counts; AWS ORs the
    values of one filter, so a single tag unique to the stack is used."""
    sns_topic_arn: pulumi.Input[str] | None = None
    email_addresses: Sequence[str] = field(default_factory=tuple)
    actual_alert_percent: int = 80
    forecast_alert_percent: int = 100


class CostBudget(pulumi.ComponentResource):
    budget_name: pulumi.Output[str]

    def __init__(self, name: str, args: CostBudgetArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("temporaldb:cost:CostBudget", name, None, opts)
        subscribers: dict[str, object] = {}
        if args.sns_topic_arn is not None:
            subscribers["subscriber_sns_topic_arns"] = [args.sns_topic_arn]
        if args.email_addresses:
            subscribers["subscriber_email_addresses"] = list(args.email_addresses)
        notifications = [
            aws.budgets.BudgetNotificationArgs(
                comparison_operator="GREATER_THAN",
                threshold=percent,
                threshold_type="PERCENTAGE",
                notification_type=kind,
                **subscribers,  # type: ignore[arg-type]
            )
            for kind, percent in (("ACTUAL", args.actual_alert_percent), ("FORECASTED", args.forecast_alert_percent))
        ]
        budget = aws.budgets.Budget(
            f"{name}-budget",
            budget_type="COST",
            limit_amount=f"{args.monthly_limit_usd:.2f}",
            limit_unit="USD",
            time_unit="MONTHLY",
            cost_filters=[
                aws.budgets.BudgetCostFilterArgs(
                    name="TagKeyValue",
                    values=[f"user:{args.cost_allocation_tag[0]}${args.cost_allocation_tag[1]}"],
                )
            ],
            notifications=notifications if subscribers else None,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.budget_name = budget.name
        self.register_outputs({"budget_name": self.budget_name})
