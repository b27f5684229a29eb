"""RDS for PostgreSQL instance classes this project knows, with their size.

The catalog answers two questions without calling AWS: is a configured class
one that RDS offers for PostgreSQL, and how much memory does it have (the
memory sizes the freeable-memory and connection alarms). Prices are not kept
here: they live, dated and sourced, in temporaldb/data/prices.json.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class InstanceClass:
    name: str
    vcpus: int
    memory_gib: int

    @property
    def default_max_connections(self) -> int:
        """RDS default: LEAST(DBInstanceClassMemory / 9531392, 5000).

        DBInstanceClassMemory is the class memory less what RDS reserves for
        the OS; about 10% is a close, slightly low, approximation.
        """
        usable_bytes = int(self.memory_gib * 1024**3 * 0.9)
        return min(usable_bytes // 9531392, 5000)


# (vcpus, memory GiB) per size, by family shape.
_BURSTABLE = {
    "micro": (2, 1),
    "small": (2, 2),
    "medium": (2, 4),
    "large": (2, 8),
    "xlarge": (4, 16),
    "2xlarge": (8, 32),
}
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
    f"db.{family}.{size}": InstanceClass(f"db.{family}.{size}", vcpus, memory)
    for family, sizes in _FAMILIES.items()
    for size, (vcpus, memory) in sizes.items()
}

# Major versions RDS for PostgreSQL creates without paid Extended Support (which
# the program turns off): 13 left standard support on 2026-02-28.
SUPPORTED_MAJOR_VERSIONS = ("14", "15", "16", "17", "18")


def parameter_group_family(major_version: str) -> str:
    return f"postgres{major_version}"
