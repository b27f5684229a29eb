"""The Aurora PostgreSQL Serverless v2 lines of the monthly estimate.

Capacity is billed per ACU-hour for each instance, so each instance gets
three figures: at an expected average (the middle column, `expected`), at the
cluster's minimum all month (`at minimum`; nothing while paused, with a
minimum of 0) and at its maximum all month (`at ceiling`). With a minimum of
0 the instances pause when idle: the expected figure counts only the hours
they run (`auroraActiveHoursPerMonth`), and says so.

The cluster adds its volume (billed per GiB used: an assumed size, and at
ceiling the size its alarm watches for), I/O requests (Aurora Standard only),
backups beyond the free 100% of the volume, log exports and the master
secret. What the estimate assumes (expected capacity, running hours) comes
from the stack's settings, parsed once as the program parses them; the
volume and I/O assumptions come from temporaldb/data/prices.json.
"""

from __future__ import annotations

from typing import Any

from infra.settings import parse_settings
from infra.settings_aurora import AuroraSettings
from temporaldb.costparts import CostLine, Pricer, database_extras
from temporaldb.preview import ProgramRun, Registration

CLUSTER = "aws:rds/cluster:Cluster"
CLUSTER_INSTANCE = "aws:rds/clusterInstance:ClusterInstance"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
VOLUME_METRIC = "VolumeBytesUsed"
IO_OPTIMIZED_STORAGE = "aurora-iopt1"
GIB = 1024**3


def aurora_lines(pricer: Pricer, run: ProgramRun) -> tuple[list[CostLine], list[str]]:
    """Every cluster the run registered, with its instances, and what to say about them; nothing for an
    instance stack."""
    clusters = run.of_type(CLUSTER)
    if not clusters:
        return [], []
    assumed = parse_settings(run.config, run.stack).aurora
    lines: list[CostLine] = []
    notes: list[str] = []
    for cluster in clusters:
        lines += _cluster_lines(pricer, run, cluster, assumed)
        if cluster.inputs["serverlessv2ScalingConfiguration"]["minCapacity"] == 0:
            notes.append(
                f"{cluster.inputs.get('clusterIdentifier', cluster.name)} pauses when idle (auroraMinAcu 0): paused "
                "all month it costs the 'at minimum' total, its capacity and I/O nothing while the volume, backups, "
                "secrets, alarms and the tunnel host keep billing; the first connection after a pause waits about "
                "15 s while it resumes"
            )
    return lines, notes


def _cluster_lines(pricer: Pricer, run: ProgramRun, cluster: Registration, assumed: AuroraSettings) -> list[CostLine]:
    inputs = cluster.inputs
    label = str(inputs.get("clusterIdentifier", cluster.name))
    io_optimized = inputs.get("storageType") == IO_OPTIMIZED_STORAGE
    members = sorted(
        (i for i in run.of_type(CLUSTER_INSTANCE) if i.inputs.get("clusterIdentifier") == label),
        key=_writer_first,
    )
    scaling = inputs["serverlessv2ScalingConfiguration"]
    lines: list[CostLine] = []
    for member in members:
        lines.append(_capacity(pricer, member, scaling, io_optimized, assumed))
        lines += database_extras(pricer, member.inputs, str(member.inputs["identifier"]))
    volume = float(pricer.assumptions["aurora_volume_gib"])
    ceiling = _alarmed_volume_gib(run, label) or volume
    lines.append(_storage(pricer, label, volume, ceiling, io_optimized))
    lines.append(_io(pricer, label, io_optimized, assumed))
    retention = int(inputs.get("backupRetentionPeriod") or 0)
    if retention:
        lines.append(_backups(pricer, label, volume, ceiling, retention))
    lines += database_extras(pricer, inputs, label)
    return lines


def _writer_first(instance: Registration) -> tuple[int, str]:
    identifier = str(instance.inputs.get("identifier", ""))
    return (0 if identifier.endswith("-writer") else 1, f"{len(identifier):04d}{identifier}")


def _capacity(
    pricer: Pricer, instance: Registration, scaling: dict[str, Any], io_optimized: bool, assumed: AuroraSettings
) -> CostLine:
    label = str(instance.inputs["identifier"])
    minimum, maximum = float(scaling["minCapacity"]), float(scaling["maxCapacity"])
    rate = pricer.aurora("serverless_v2_acu_hour", io_optimized=io_optimized)
    month = pricer.hours
    running = min(float(assumed.active_hours), month) if minimum == 0 else month
    expected = round(assumed.expected_acu * running * rate, 2)
    usage = f"~{assumed.expected_acu:g} ACU x {running:g} h x ${rate}/ACU-hour"
    if minimum == 0:
        usage += (
            f" running, paused (0 ACU, not billed) the other {month - running:g} h (assumed: auroraActiveHoursPerMonth)"
        )
    return CostLine(
        f"{label} capacity",
        f"db.serverless {minimum:g}-{maximum:g} ACU: {usage}",
        expected,
        round(maximum * month * rate, 2),
        at_minimum_usd=round(minimum * month * rate, 2),
    )


def _storage(pricer: Pricer, label: str, volume: float, ceiling: float, io_optimized: bool) -> CostLine:
    gib_month = pricer.aurora("storage_gb_month", io_optimized=io_optimized)
    kind = "I/O-Optimized" if io_optimized else "Standard"
    return CostLine(
        f"{label} storage",
        f"Aurora {kind} volume ~{volume:g} GiB used (at ceiling {ceiling:.0f} GiB, its alarm) x ${gib_month}/GiB-month",
        round(volume * gib_month, 2),
        round(ceiling * gib_month, 2),
    )


def _io(pricer: Pricer, label: str, io_optimized: bool, assumed: AuroraSettings) -> CostLine:
    if io_optimized:
        return CostLine(f"{label} I/O", "included in Aurora I/O-Optimized", 0.0, 0.0)
    per_hour = float(pricer.assumptions["aurora_io_million_requests_per_active_hour"])
    price = pricer.aurora("io_million_requests", io_optimized=False)
    month = pricer.hours
    running = min(float(assumed.active_hours), month)
    return CostLine(
        f"{label} I/O",
        f"~{per_hour:g} million requests per running hour x {running:g} h x ${price}/million (assumed)",
        round(per_hour * running * price, 2),
        round(per_hour * month * price, 2),
        at_minimum_usd=0.0 if assumed.auto_pause else round(per_hour * month * price, 2),
    )


def _backups(pricer: Pricer, label: str, volume: float, ceiling: float, retention: int) -> CostLine:
    rate = float(pricer.assumptions["backup_daily_change_fraction"])
    price = pricer.aurora("backup_storage_gb_month")
    return CostLine(
        f"{label} backups",
        f"{retention} days x {rate:.0%} daily change beyond the free 100% of the volume x ${price}/GiB-month",
        round(volume * rate * retention * price, 2),
        round(ceiling * rate * retention * price, 2),
    )


def _alarmed_volume_gib(run: ProgramRun, cluster_identifier: str) -> float | None:
    """The volume size the cluster's VolumeBytesUsed alarm fires above, if it has one."""
    for alarm in run.of_type(ALARM):
        inputs = alarm.inputs
        if inputs.get("metricName") == VOLUME_METRIC and inputs.get("dimensions", {}).get("DBClusterIdentifier") == (
            cluster_identifier
        ):
            return float(inputs["threshold"]) / GIB
    return None
