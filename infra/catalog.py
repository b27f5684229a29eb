"""RDS for PostgreSQL instance classes this project knows, with their size; Aurora's capacity unit.

The catalog answers two questions without calling AWS: is a configured class
one that RDS offers for PostgreSQL, and how much memory does it have (the
memory sizes the freeable-memory and connection alarms). Prices are not kept
here: they live, dated and sourced, in temporaldb/data/prices.json.
"""

from __future__ import annotations

from dataclasses import dataclass

MIB = 1024**2
GIB = 1024**3
# RDS's default max_connections for PostgreSQL: LEAST(DBInstanceClassMemory / 9531392, 5000).
BYTES_PER_CONNECTION = 9531392
MAX_CONNECTIONS_CEILING = 5000


@dataclass(frozen=True)
class InstanceClass:
    name: str
    vcpus: int
    memory_gib: int
    cpu_credits_per_hour: int | None = None
    """Burstable classes only: CPU credits earned per hour (EC2's table for the same size)."""

    @property
    def instance_class_memory_bytes(self) -> int:
        """An estimate, on the low side, of RDS's DBInstanceClassMemory for this class (see
        `instance_class_memory_bytes`)."""
        return instance_class_memory_bytes(self.memory_gib)

    @property
    def default_max_connections(self) -> int:
        """RDS default: LEAST(DBInstanceClassMemory / 9531392, 5000), with the estimate above."""
        return default_max_connections(self.memory_gib)

    @property
    def max_cpu_credits(self) -> int | None:
        """The most credits a burstable class can hold: 24 hours of earning."""
        return None if self.cpu_credits_per_hour is None else 24 * self.cpu_credits_per_hour


def instance_class_memory_bytes(memory_gib: float) -> int:
    """An estimate, on the low side, of RDS's DBInstanceClassMemory for `memory_gib` of memory.

    RDS subtracts what the OS and its own processes reserve and publishes no
    figure. Reported max_connections values (db.t3.micro 79 to 87, db.t2.small
    198, db.t2.medium 413) fit a reservation of about 300 MiB on small
    classes; taking the larger of 300 MiB and 10% of the memory stays at or
    below every one of them, so alarms derived from it fire early, not late.
    """
    memory = round(memory_gib * GIB)
    return memory - max(300 * MIB, memory // 10)


def default_max_connections(memory_gib: float) -> int:
    """RDS's default max_connections, LEAST(DBInstanceClassMemory / 9531392, 5000), with the estimate above."""
    return min(instance_class_memory_bytes(memory_gib) // BYTES_PER_CONNECTION, MAX_CONNECTIONS_CEILING)


# Aurora Serverless v2: one Aurora capacity unit is about 2 GiB of memory with its CPU and network.
GIB_PER_ACU = 2


def serverless_max_connections(max_acu: float) -> int:
    """An Aurora Serverless v2 instance's max_connections, estimated like a class's from the memory of its
    maximum capacity: Aurora sizes the setting for the most an instance can scale to."""
    return default_max_connections(max_acu * GIB_PER_ACU)


# (vcpus, memory GiB) per size, by family shape.
_BURSTABLE = {
    "micro": (2, 1),
    "small": (2, 2),
    "medium": (2, 4),
    "large": (2, 8),
    "xlarge": (4, 16),
    "2xlarge": (8, 32),
}
# CPU credits earned per hour by burstable size, the same for t3 and t4g (EC2 User Guide, "Key concepts and
# definitions for burstable performance instances"). RDS runs both in Unlimited mode: past the balance they
# keep bursting and the surplus is billed, they are not throttled.
_CREDITS_PER_HOUR = {"micro": 12, "small": 24, "medium": 24, "large": 36, "xlarge": 96, "2xlarge": 192}
_BURSTABLE_FAMILIES = ("t3", "t4g")
_GENERAL = {"large": (2, 8), "xlarge": (4, 16), "2xlarge": (8, 32), "4xlarge": (16, 64), "8xlarge": (32, 128)}
_MEMORY = {"large": (2, 16), "xlarge": (4, 32), "2xlarge": (8, 64), "4xlarge": (16, 128), "8xlarge": (32, 256)}

_FAMILIES: dict[str, dict[str, tuple[int, int]]] = {
    "t3": _BURSTABLE,
    "t4g": _BURSTABLE,
    "m5": _GENERAL,
    "m6g": _GENERAL,
    "m6i": _GENERAL,
    "m7g": _GENERAL,
    "r5": _MEMORY,
    "r6g": _MEMORY,
    "r6i": _MEMORY,
    "r7g": _MEMORY,
}

INSTANCE_CLASSES: dict[str, InstanceClass] = {
    f"db.{family}.{size}": InstanceClass(
        f"db.{family}.{size}",
        vcpus,
        memory,
        cpu_credits_per_hour=_CREDITS_PER_HOUR[size] if family in _BURSTABLE_FAMILIES else None,
    )
    for family, sizes in _FAMILIES.items()
    for size, (vcpus, memory) in sizes.items()
}

# Major versions RDS for PostgreSQL creates without paid Extended Support (which
# the program turns off): 13 left standard support on 2026-02-28.
SUPPORTED_MAJOR_VERSIONS = ("14", "15", "16", "17", "18")


def parameter_group_family(major_version: str) -> str:
    return f"postgres{major_version}"


def aurora_parameter_group_family(major_version: str) -> str:
    """The family of an Aurora PostgreSQL cluster's and its instances' parameter groups."""
    return f"aurora-postgresql{major_version}"
