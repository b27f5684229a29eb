"""Monthly cost estimate of what a stack's program would create.

Works from the registrations of an offline run (temporaldb.preview), so the
estimate prices exactly the resources and settings `pulumi up` would create.
An RDS instance is priced here, an Aurora cluster in cost_aurora.py.
Prices come from a dated, sourced table in temporaldb/data/prices.json; a
class or region missing there is an error, never a guess.
"""

from __future__ import annotations

from dataclasses import dataclass

from temporaldb.cost_aurora import aurora_lines
from temporaldb.costparts import CostLine, Pricer, database_extras
from temporaldb.preview import ProgramRun, Registration
from temporaldb.prices import PRICE_FILE, PricingError, load_prices

INSTANCE = "aws:rds/instance:Instance"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
BUDGET = "aws:budgets/budget:Budget"
SECRET = "aws:secretsmanager/secret:Secret"
EC2_INSTANCE = "aws:ec2/instance:Instance"
CONNECT_ENDPOINT = "aws:ec2transitgateway/instanceConnectEndpoint:InstanceConnectEndpoint"

__all__ = ["PRICE_FILE", "CostEstimate", "CostLine", "PricingError", "estimate", "load_prices"]


@dataclass(frozen=True)
class CostEstimate:
    stack: str
    region: str
    lines: tuple[CostLine, ...]
    budget_usd: float | None
    prices_retrieved: str
    prices_source: str
    notes: tuple[str, ...] = ()
    """What the figures mean beyond their lines (e.g. a cluster that pauses)."""

    @property
    def monthly_usd(self) -> float:
        return round(sum(line.monthly_usd for line in self.lines), 2)

    @property
    def at_ceiling_usd(self) -> float:
        return round(sum(line.at_ceiling_usd for line in self.lines), 2)

    @property
    def has_minimum(self) -> bool:
        """Whether any line scales down (Aurora capacity): the estimate then has an `at minimum` figure."""
        return any(line.at_minimum_usd is not None for line in self.lines)

    @property
    def at_minimum_usd(self) -> float:
        """Every line at its minimum: Aurora at its minimum capacity all month (paused, with 0 ACU)."""
        return round(
            sum(line.monthly_usd if line.at_minimum_usd is None else line.at_minimum_usd for line in self.lines), 2
        )

    @property
    def within_budget(self) -> bool:
        return self.budget_usd is None or self.monthly_usd <= self.budget_usd


def _instance_lines(pricer: Pricer, instance: Registration) -> list[CostLine]:
    inputs = instance.inputs
    label = str(inputs.get("identifier", instance.name))
    multi_az = bool(inputs.get("multiAz", False))
    deployment = "multi_az" if multi_az else "single_az"
    instance_class = str(inputs["instanceClass"])
    allocated = float(inputs.get("allocatedStorage", 0))
    ceiling = float(inputs.get("maxAllocatedStorage") or allocated)
    hour = pricer.instance_hour(instance_class, multi_az)
    compute = round(hour * pricer.hours, 2)
    gb_month = float(pricer.table["gp3_storage_gb_month"][deployment])
    az_text = "Multi-AZ" if multi_az else "Single-AZ"
    lines = [
        CostLine(f"{label} instance", f"{instance_class} {az_text}, {pricer.hours:g} h x ${hour}/h", compute, compute),
        CostLine(
            f"{label} storage",
            f"gp3 {allocated:g} GiB (ceiling {ceiling:g} GiB) x ${gb_month}/GiB-month",
            round(allocated * gb_month, 2),
            round(ceiling * gb_month, 2),
        ),
    ]
    retention = int(inputs.get("backupRetentionPeriod") or 0)
    if retention:
        rate = float(pricer.assumptions["backup_daily_change_fraction"])
        backup_price = float(pricer.table["backup_storage_gb_month"])
        lines.append(
            CostLine(
                f"{label} backups",
                f"{retention} days x {rate:.0%} daily change beyond the free 100% of storage"
                f" x ${backup_price}/GiB-month",
                round(allocated * rate * retention * backup_price, 2),
                round(ceiling * rate * retention * backup_price, 2),
            )
        )
    lines += database_extras(pricer, inputs, label)
    return lines


def _tunnel_lines(pricer: Pricer, run: ProgramRun) -> list[CostLine]:
    """The way in: an EC2 Instance Connect Endpoint (free) and the tunnel host with its root volume."""
    lines = []
    for endpoint in run.of_type(CONNECT_ENDPOINT):
        cost = float(pricer.table["ec2_instance_connect_endpoint_month"])
        lines.append(CostLine(endpoint.name, "EC2 Instance Connect Endpoint (no charge)", cost, cost))
    for host in run.of_type(EC2_INSTANCE):
        instance_type = str(host.inputs["instanceType"])
        hour = pricer.ec2_hour(instance_type)
        root = host.inputs.get("rootBlockDevice") or {}
        gib = float(root.get("volumeSize") or pricer.assumptions["tunnel_host_root_gib"])
        gb_month = float(pricer.table["ebs_gp3_gb_month"])
        cost = round(hour * pricer.hours + gib * gb_month, 2)
        detail = f"{instance_type} {pricer.hours:g} h x ${hour}/h + gp3 {gib:g} GiB x ${gb_month}/GiB-month"
        lines.append(CostLine(host.name, detail, cost, cost))
    return lines


def estimate(run: ProgramRun) -> CostEstimate:
    """Price every instance, cluster, alarm and secret the run registered.

    Resources with no AWS bill (PostgreSQL roles, grants, random passwords) add nothing.
    """
    prices = load_prices()
    pricer = Pricer(prices, run.config.get("aws:region", ""))
    lines: list[CostLine] = []
    for instance in run.of_type(INSTANCE):
        lines += _instance_lines(pricer, instance)
    cluster_lines, notes = aurora_lines(pricer, run)
    lines += cluster_lines
    lines += _tunnel_lines(pricer, run)
    alarms = run.of_type(ALARM)
    if alarms:
        alarm_price = float(pricer.table["cloudwatch_alarm_month"])
        cost = round(len(alarms) * alarm_price, 2)
        lines.append(CostLine("CloudWatch alarms", f"{len(alarms)} standard alarms x ${alarm_price}/month", cost, cost))
    secrets = run.of_type(SECRET)
    if secrets:
        secret_price = float(pricer.table["secrets_manager_secret_month"])
        cost = round(len(secrets) * secret_price, 2)
        lines.append(
            CostLine("Login secrets", f"Secrets Manager, {len(secrets)} secrets x ${secret_price}/month", cost, cost)
        )
    budgets = run.of_type(BUDGET)
    budget = float(budgets[0].inputs["limitAmount"]) if budgets else None
    return CostEstimate(
        stack=run.stack,
        region=pricer.region,
        lines=tuple(lines),
        budget_usd=budget,
        prices_retrieved=str(prices["retrieved"]),
        prices_source=str(prices["source"]),
        notes=tuple(notes),
    )
