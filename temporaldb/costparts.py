"""The pieces of a monthly estimate, shared by the RDS instance's (cost.py) and Aurora's (cost_aurora.py).

A `CostLine` is one priced item with its basis; `Pricer` looks prices up in
the dated table (temporaldb/data/prices.json) for one region and refuses,
never guesses, a figure the table lacks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from temporaldb.prices import AURORA, PRICE_FILE, PricingError, region_table, storage_key


@dataclass(frozen=True)
class CostLine:
    item: str
    detail: str
    monthly_usd: float
    at_ceiling_usd: float
    """The same line at its ceiling: storage grown to its autoscaling ceiling, or Aurora at its maximum
    capacity all month."""
    at_minimum_usd: float | None = None
    """Aurora only: the same line at the minimum capacity all month (0 when the cluster is paused)."""


class Pricer:
    """One region's prices, the estimate's assumptions and how long a month is."""

    def __init__(self, prices: dict[str, Any], region: str) -> None:
        self.table: dict[str, Any] = region_table(prices, region)
        self.assumptions: dict[str, Any] = prices["assumptions"]
        self.hours: float = prices["hours_per_month"]
        self.region = region
        self.retrieved: str = prices["retrieved"]

    def instance_hour(self, instance_class: str, multi_az: bool) -> float:
        try:
            row = self.table["rds_postgresql_instance_hour"][instance_class]
        except KeyError:
            raise PricingError(
                f"no {self.region} price for {instance_class} in {PRICE_FILE} (dated {self.retrieved}); "
                "add it from https://aws.amazon.com/rds/postgresql/pricing/ rather than guess"
            ) from None
        return float(row["multi_az" if multi_az else "single_az"])

    def ec2_hour(self, instance_type: str) -> float:
        try:
            return float(self.table["ec2_instance_hour"][instance_type])
        except KeyError:
            raise PricingError(
                f"no {self.region} price for EC2 {instance_type} in {PRICE_FILE} (dated {self.retrieved}); "
                "add it from https://aws.amazon.com/ec2/pricing/on-demand/ rather than guess"
            ) from None

    def aurora(self, item: str, *, io_optimized: bool | None = None) -> float:
        """An Aurora PostgreSQL figure; `io_optimized` picks the storage configuration's column."""
        try:
            row = self.table[AURORA][item]
            return float(row if io_optimized is None else row[storage_key(io_optimized)])
        except KeyError:
            raise PricingError(
                f"no {self.region} Aurora PostgreSQL {item} in {PRICE_FILE} (dated {self.retrieved}); "
                "add it from https://aws.amazon.com/rds/aurora/pricing/ rather than guess"
            ) from None


def database_extras(pricer: Pricer, inputs: dict[str, Any], label: str) -> list[CostLine]:
    """Performance Insights, Enhanced Monitoring, log exports and the master secret, from whichever of their
    inputs a database resource (an instance, a cluster or a cluster's instance) carries."""
    lines = []
    logs_price = float(pricer.table["cloudwatch_logs_ingested_gb"])
    if inputs.get("performanceInsightsEnabled"):
        retention = int(inputs.get("performanceInsightsRetentionPeriod") or 7)
        if retention > int(pricer.table["performance_insights_free_retention_days"]):
            raise PricingError(f"{label}: Performance Insights retention of {retention} days is not in {PRICE_FILE}")
        lines.append(CostLine(f"{label} Performance Insights", f"{retention}-day retention (free tier)", 0.0, 0.0))
    interval = int(inputs.get("monitoringInterval") or 0)
    if interval:
        samples = pricer.hours * 3600 / interval
        gigabytes = samples * float(pricer.assumptions["enhanced_monitoring_kb_per_sample"]) / 1024**2
        cost = round(gigabytes * logs_price, 2)
        lines.append(
            CostLine(
                f"{label} Enhanced Monitoring",
                f"every {interval} s, ~{gigabytes:.2f} GB logs x ${logs_price}/GB",
                cost,
                cost,
            )
        )
    if inputs.get("enabledCloudwatchLogsExports"):
        gigabytes = float(pricer.assumptions["postgresql_log_gb_month"])
        cost = round(gigabytes * logs_price, 2)
        lines.append(CostLine(f"{label} log exports", f"~{gigabytes:g} GB/month x ${logs_price}/GB", cost, cost))
    if inputs.get("manageMasterUserPassword"):
        cost = float(pricer.table["secrets_manager_secret_month"])
        lines.append(CostLine(f"{label} master secret", "Secrets Manager, 1 secret", cost, cost))
    return lines
