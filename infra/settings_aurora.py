"""The engine a stack runs, and the Aurora PostgreSQL Serverless v2 settings when it is `aurora`.

`engine: instance` (the default) is one RDS for PostgreSQL instance. `engine:
aurora` is an Aurora PostgreSQL cluster whose writer and readers are
`db.serverless` instances scaling between `auroraMinAcu` and `auroraMaxAcu`
Aurora capacity units (1 ACU is about 2 GiB of memory with its CPU). A minimum
of 0 lets the instances pause after `auroraPauseAfterSeconds` without
connections; the first connection resumes them (about 15 seconds).

The keys an RDS instance reads and a cluster does not (the storage sizes, the
instance class, Multi-AZ, read replicas) either mean nothing for Aurora or are
done differently; a value that asks for what a cluster cannot give is a problem,
one left over from an instance stack file is a notice naming what replaces it.

`auroraExpectedAcu`, `auroraStorage` and `auroraActiveHoursPerMonth` shape the
cost estimate (temporaldb/cost_aurora.py) and the storage choice; the estimate
reads them from here, parsed once, like the program does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from infra.configreader import ConfigReader, full_key

ENGINE_INSTANCE: Final = "instance"
ENGINE_AURORA: Final = "aurora"
ENGINES: Final = (ENGINE_INSTANCE, ENGINE_AURORA)
STORAGE_STANDARD: Final = "standard"
STORAGE_IO_OPTIMIZED: Final = "io-optimized"
STORAGE_CONFIGURATIONS: Final = (STORAGE_STANDARD, STORAGE_IO_OPTIMIZED)

# Aurora PostgreSQL majors in standard support that run Serverless v2. 13 left standard support on
# 2026-02-28 and the program turns paid Extended Support off; 18 is not offered here until checked.
AURORA_MAJOR_VERSIONS: Final = ("14", "15", "16", "17")
# The first minor of each major whose Serverless v2 instances scale to 0 ACU and pause (AWS, "Scaling to
# Zero ACUs with automatic pause and resume"). engineVersion is a major only: a new cluster gets the
# current default minor, which is later than these; a cluster still on an older minor must be upgraded
# (in the maintenance window) before its minimum can be 0.
AUTO_PAUSE_SINCE: Final = {"14": "14.12", "15": "15.7", "16": "16.3", "17": "17.4"}

MAX_ACU: Final = 256.0
MIN_MAX_ACU: Final = 1.0
ACTIVE_MINIMUM_ACU: Final = 0.5
"""The least a running (not paused) Serverless v2 instance has."""
MAX_READERS: Final = 15
PAUSE_SECONDS_RANGE: Final = (300, 86400)
HOURS_PER_MONTH: Final = 730
"""The month the estimate counts (temporaldb/data/prices.json, hours_per_month)."""

# Keys only an RDS instance reads, their declared defaults in Pulumi.yaml (tests/test_settings.py keeps the
# two in step) and what takes their place in a cluster.
INSTANCE_ONLY: Final = {
    "instanceClass": ("db.t3.micro", "each instance is db.serverless, sized by auroraMinAcu/auroraMaxAcu"),
    "allocatedStorageGb": (
        "20",
        "the cluster volume grows and shrinks with the data by itself (billed per GiB used); "
        "the VolumeBytesUsed alarm watches it against monthlyBudgetUsd",
    ),
    "maxAllocatedStorageGb": (
        "100",
        "the cluster volume has no ceiling to set (up to 128 TiB); "
        "the VolumeBytesUsed alarm watches it against monthlyBudgetUsd",
    ),
}


@dataclass(frozen=True)
class AuroraSettings:
    min_acu: float
    max_acu: float
    pause_after_seconds: int
    """Idle seconds before an instance pauses; only sent when min_acu is 0."""
    readers: int
    expected_acu: float
    """The average capacity of each instance while it runs (the estimate's middle figure)."""
    storage: str
    active_hours_per_month: int
    """How long the instances run in a month when they may pause (min_acu 0); the rest they are paused."""

    @property
    def auto_pause(self) -> bool:
        return self.min_acu == 0

    @property
    def io_optimized(self) -> bool:
        return self.storage == STORAGE_IO_OPTIMIZED

    @property
    def active_hours(self) -> int:
        """Hours a month the instances run: all of them unless they may pause."""
        return self.active_hours_per_month if self.auto_pause else HOURS_PER_MONTH


def parse_engine(reader: ConfigReader) -> str:
    return reader.choice("engine", ENGINES)


def parse_aurora(reader: ConfigReader, *, engine: str, production: bool, major: str) -> AuroraSettings:
    """The Aurora keys, checked on every stack (a typo waits for no engine switch); the rules of a
    cluster only when the stack runs one."""
    minimum = reader.half_steps("auroraMinAcu", 0.0, MAX_ACU)
    maximum = reader.half_steps("auroraMaxAcu", MIN_MAX_ACU, MAX_ACU)
    pause = reader.integer("auroraPauseAfterSeconds", *PAUSE_SECONDS_RANGE)
    readers = reader.integer("auroraReaders", 0, MAX_READERS)
    expected = reader.half_steps("auroraExpectedAcu", ACTIVE_MINIMUM_ACU, MAX_ACU)
    storage = reader.choice("auroraStorage", STORAGE_CONFIGURATIONS)
    active = reader.integer("auroraActiveHoursPerMonth", 0, HOURS_PER_MONTH)
    if maximum < minimum:
        reader.problem("auroraMaxAcu", f"must be at least auroraMinAcu ({minimum:g})")
    if not max(minimum, ACTIVE_MINIMUM_ACU) <= expected <= maximum:
        reader.problem(
            "auroraExpectedAcu",
            f"is the average capacity of a running instance: between {max(minimum, ACTIVE_MINIMUM_ACU):g} "
            f"and auroraMaxAcu ({maximum:g})",
        )
    if engine == ENGINE_AURORA:
        if minimum == 0 and major not in AUTO_PAUSE_SINCE:
            reader.problem(
                "auroraMinAcu", f"0 (auto-pause) needs an Aurora PostgreSQL version that supports it, not {major}"
            )
        if production and readers < 1:
            reader.problem(
                "auroraReaders",
                "a prod cluster needs at least one reader, in another Availability Zone: it is the writer's "
                "failover target",
            )
    return AuroraSettings(
        min_acu=minimum,
        max_acu=maximum,
        pause_after_seconds=pause,
        readers=readers,
        expected_acu=expected,
        storage=storage,
        active_hours_per_month=active,
    )


def check_instance_keys(reader: ConfigReader, *, multi_az: bool, aurora: AuroraSettings) -> tuple[str, ...]:
    """For an Aurora stack: Multi-AZ without a reader is refused; instance-only values are notices."""
    if multi_az and aurora.readers == 0:
        reader.problem(
            "multiAz",
            "a cluster does not read multiAz: its standby is a reader in another Availability Zone, "
            "so set auroraReaders to 1 or more",
        )
    notices = []
    for key, (default, replacement) in INSTANCE_ONLY.items():
        value = reader.raw.get(full_key(key), default).strip()
        if value != default:
            notices.append(
                f"{full_key(key)} = {value} does not apply to engine aurora and is not read: {replacement}; "
                "remove it from the stack file"
            )
    return tuple(notices)
