"""`temporaldb bench --server-like db.t3.micro`: the full-history load on a server sized like a small RDS class.

The loader scales its work_mem and maintenance_work_mem to the server (temporaldb/loadmemory.py); this shows
the benchmark's 29 seasons loading into a throwaway PostgreSQL 18 (the embedded one) configured as RDS's
default parameter group (default.postgres16/17/18) configures the class: the memory-derived parameters computed
from its DBInstanceClassMemory, with the stack's own parameters (components/database.py) over them. The
generated data, the fresh database, the child-process loader and the VACUUM ANALYZE are the full benchmark's
(temporaldb/bench.py). Reported: wall time, events/s, the load memory the loader chose, the server's peak
memory and the loader's peak RSS.

Where a cgroup v1 memory controller is writable (root on Linux), the server runs inside a child of our own
memory cgroup limited to the class's nominal memory: its processes, shared memory and page cache together
cannot exceed it, so a load that completes fits. The server's data folder (under .local/, next to the
generated data) and the cgroup are removed afterwards, whether the load succeeded or not.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import shlex
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Final

import psycopg

from infra.catalog import INSTANCE_CLASSES
from temporaldb import bench, loadmemory
from temporaldb.pgcluster import (
    PgBinaries,
    ServerAccount,
    init_cluster,
    log_tail,
    reachable_folder,
    read_postmaster,
    server_account,
    socket_dsn,
    socket_path_fits,
    start_cluster,
    stop_cluster,
    wheel_binaries,
    write_settings,
)

MIB: Final = 1024**2
GIB: Final = 1024**3
SECTION: Final = "small-server"
SOCKET_PORT: Final = 5432  # names the socket file only: the server opens no TCP port, so none can collide
START_TIMEOUT_SECONDS: Final = 120.0
SAMPLE_SECONDS: Final = 0.5
Say = Callable[[str], None]

# DBInstanceClassMemory is the class's memory less what RDS keeps for the OS and its agents; AWS publishes no
# figure. For db.t3.micro we take 744 MiB, reasoned from a db.t3.micro on RDS for PostgreSQL 16.1 with the
# default parameter group (a public benchmark write-up listing its settings): shared_buffers 186 MB, i.e.
# 23,808 x 8kB = DBInstanceClassMemory/32768 (its wal_buffers, 5952kB = shared_buffers/32, agrees), so
# DBInstanceClassMemory = 780,140,544 bytes (to within 32 KiB), which its effective_cache_size (372 MB, /16384)
# and max_connections (81, /9531392) confirm. Other reports differ (the README cites 79 to 87 connections);
# infra/catalog.py's estimate (724 MiB) is deliberately low, for alarms. Taking the larger figure gives the
# load more memory, so fitting in 1 GiB is the harder test. Other classes use the catalog's estimate.
MEASURED_CLASS_MEMORY: Final = {"db.t3.micro": 23_808 * 32_768}
MEASURED_SOURCE: Final = "reasoned from the settings a real db.t3.micro reports: see bench_small_server.py"


@dataclass(frozen=True)
class RdsFormula:
    """One memory-derived parameter of RDS's default parameter group, in the group's own units."""

    name: str
    formula: str
    unit: str
    """pg_settings' unit of the value: 8kB pages, kB, or none."""
    value: Callable[[int], int]
    """The value for a DBInstanceClassMemory in bytes."""


# default.postgres16/17/18, the formulas as the group writes them (integer arithmetic):
# - shared_buffers: RDS User Guide, "RDS for PostgreSQL memory" (PostgreSQL.Tuning.concepts.memory); in 8kB
#   pages, so a quarter of the memory.
# - effective_cache_size: exports of the default group (public Terraform dumps) and the db.t3.micro figures above
#   (372 MB, half the memory).
# - maintenance_work_mem, autovacuum_work_mem (PostgreSQL 15 and later; -1 before): RDS User Guide, "Working
#   with PostgreSQL autovacuum on Amazon RDS for PostgreSQL", "Allocating memory for autovacuum"; in kB.
# - max_connections: RDS User Guide, "Quotas and constraints for Amazon RDS", "Maximum number of database
#   connections".
# - autovacuum_max_workers: exports of the default group and the db.t3.micro figures above.
RDS_MEMORY_FORMULAS: Final = (
    RdsFormula("shared_buffers", "{DBInstanceClassMemory/32768}", "8kB", lambda memory: memory // 32768),
    RdsFormula("effective_cache_size", "{DBInstanceClassMemory/16384}", "8kB", lambda memory: memory // 16384),
    RdsFormula(
        "maintenance_work_mem",
        "GREATEST({DBInstanceClassMemory*1024/63963136},65536)",
        "kB",
        lambda memory: max(memory * 1024 // 63963136, 65536),
    ),
    RdsFormula(
        "autovacuum_work_mem",
        "GREATEST({DBInstanceClassMemory/32768},65536)",
        "kB",
        lambda memory: max(memory // 32768, 65536),
    ),
    RdsFormula(
        "max_connections",
        "LEAST({DBInstanceClassMemory/9531392},5000)",
        "",
        lambda memory: min(memory // 9531392, 5000),
    ),
    RdsFormula(
        "autovacuum_max_workers",
        "GREATEST({DBInstanceClassMemory/64371566592},3)",
        "",
        lambda memory: max(memory // 64371566592, 3),
    ),
)

# The rest of the default group that shapes a load's memory or WAL, not derived from memory. work_mem and
# wal_buffers are left at the engine's defaults by the group (4MB: "RDS for PostgreSQL memory"; -1, i.e.
# shared_buffers/32, which gave the 5952kB above). max_wal_size 2048 MB and min_wal_size 192 MB, the autovacuum
# naptime and scale factors: exports of the default group and the db.t3.micro figures above. Huge pages are off
# on micro, small and medium classes (RDS User Guide, "Huge pages for RDS for PostgreSQL").
RDS_FIXED_DEFAULTS: Final = {
    "work_mem": "4MB",
    "wal_buffers": "-1",
    "max_wal_size": "2048MB",
    "min_wal_size": "192MB",
    "checkpoint_completion_target": "0.9",
    "autovacuum_naptime": "15s",
    "autovacuum_vacuum_scale_factor": "0.1",
    "autovacuum_analyze_scale_factor": "0.05",
    "huge_pages": "off",
}
REPORTED_SETTINGS: Final = (
    *(formula.name for formula in RDS_MEMORY_FORMULAS),
    "work_mem",
    "wal_buffers",
    "max_wal_size",
    "huge_pages",
    "shared_preload_libraries",
)


@dataclass(frozen=True)
class ServerShape:
    instance_class: str
    memory_bytes: int
    """The class's nominal memory: the cgroup's limit."""
    class_memory_bytes: int
    """DBInstanceClassMemory: what RDS's formulas see."""
    class_memory_source: str


def shape_of(instance_class: str, class_memory_mib: int | None = None) -> ServerShape:
    """The class's memory and DBInstanceClassMemory (given in MiB, measured, or the catalog's estimate)."""
    known = INSTANCE_CLASSES.get(instance_class)
    if known is None:
        raise ValueError(f"{instance_class!r} is not an RDS instance class this project knows (e.g. db.t3.micro)")
    nominal = known.memory_gib * GIB
    if class_memory_mib is not None:
        if not 0 < class_memory_mib * MIB <= nominal:
            raise ValueError(
                f"--class-memory {class_memory_mib} MiB is not within {instance_class}'s {nominal // MIB} MiB"
            )
        return ServerShape(instance_class, nominal, class_memory_mib * MIB, "given with --class-memory")
    if instance_class in MEASURED_CLASS_MEMORY:
        return ServerShape(instance_class, nominal, MEASURED_CLASS_MEMORY[instance_class], MEASURED_SOURCE)
    estimate = known.instance_class_memory_bytes
    return ServerShape(instance_class, nominal, estimate, "infra/catalog.py's estimate (on the low side)")


def rds_default_parameters(class_memory: int) -> dict[str, str]:
    """What default.postgres16/17/18 sets for a class with this DBInstanceClassMemory (values in pg_settings units)."""
    computed = {formula.name: str(formula.value(class_memory)) for formula in RDS_MEMORY_FORMULAS}
    return {**RDS_FIXED_DEFAULTS, **computed}


def stack_parameters(binaries: PgBinaries) -> dict[str, str]:
    """The stack's own parameter group (components/database.py), less what only RDS knows or is not installed."""
    from components.database import PARAMETERS  # noqa: PLC0415 (imports Pulumi: only this mode needs it)

    settings = {name: value for name, value, _ in PARAMETERS if not name.startswith("rds.")}
    libraries = [name for name in settings.get("shared_preload_libraries", "").split(",") if name.strip()]
    installed = [name for name in libraries if binaries.has_library(name.strip())]
    if installed:
        settings["shared_preload_libraries"] = ",".join(installed)
    else:
        settings.pop("shared_preload_libraries", None)
    return settings


def server_settings(shape: ServerShape, binaries: PgBinaries, socket_dir: Path) -> dict[str, str]:
    """RDS's defaults for the class, the stack's group over them (as a custom group copies the default), and
    what a private throwaway server needs: the Unix socket only, UTC."""
    local = {
        "listen_addresses": "",
        "port": str(SOCKET_PORT),
        "unix_socket_directories": str(socket_dir),
        "unix_socket_permissions": "0700",
        "timezone": "UTC",
        "log_timezone": "UTC",
    }
    return {**rds_default_parameters(shape.class_memory_bytes), **stack_parameters(binaries), **local}


# --------------------------------------------------------------------------------------------------------
# The memory cgroup (v1) the server runs in, when we may make one
# --------------------------------------------------------------------------------------------------------

CGROUP_V1_MEMORY: Final = Path("/sys/fs/cgroup/memory")


@dataclass(frozen=True)
class MemoryCgroup:
    """A child of our own v1 memory cgroup (so the session's own limits still apply), limited to `limit_bytes`."""

    path: Path
    limit_bytes: int

    def read(self, name: str) -> str:
        return (self.path / name).read_text(encoding="utf-8")

    def counters(self, name: str) -> dict[str, int]:
        """A file of `key value` lines, such as memory.stat."""
        return {key: int(value) for key, value in (line.split() for line in self.read(name).splitlines())}

    def unreclaimable_bytes(self) -> int:
        """Anonymous memory and shared memory: what cannot be dropped like page cache (there is no swap here)."""
        stat = self.counters("memory.stat")
        return stat.get("total_rss", 0) + stat.get("total_shmem", 0)

    def oom_kills(self) -> int:
        return self.counters("memory.oom_control").get("oom_kill", 0)

    def remove(self) -> None:
        """Remove the (empty) cgroup; the last server processes may take a moment to leave it after the stop."""
        for _ in range(50):
            try:
                self.path.rmdir()
            except FileNotFoundError:
                return
            except OSError:
                time.sleep(0.1)
            else:
                return


def memory_cgroup(limit_bytes: int, account: ServerAccount) -> tuple[MemoryCgroup | None, str]:
    """A memory cgroup the server account may enter, limited to `limit_bytes`; or None and why not."""
    try:
        mine = next(
            line.split(":", 2)[2]
            for line in Path("/proc/self/cgroup").read_text(encoding="utf-8").splitlines()
            if line.split(":", 2)[1] == "memory"
        )
    except (OSError, StopIteration, IndexError):
        return None, "no cgroup v1 memory controller here (cgroup v2 would need a delegated subtree)"
    path = CGROUP_V1_MEMORY / mine.lstrip("/") / f"temporaldb-bench-{os.getpid()}"
    try:
        path.mkdir()
    except OSError as error:
        return None, f"cannot create a memory cgroup under {path.parent}: {error.strerror}"
    cgroup = MemoryCgroup(path, limit_bytes)
    try:
        (path / "memory.limit_in_bytes").write_text(str(limit_bytes), encoding="utf-8")
        if int(cgroup.read("memory.limit_in_bytes")) != limit_bytes:
            raise OSError(0, f"the kernel set the limit to {cgroup.read('memory.limit_in_bytes').strip()}")
        account.own(path / "cgroup.procs")  # the server's pg_ctl moves itself in, as the server account
    except OSError as error:
        cgroup.remove()
        return None, f"cannot limit the memory cgroup {path}: {error.strerror}"
    return cgroup, f"the server runs in the memory cgroup {path}, limited to {limit_bytes // MIB} MiB"


@dataclass(frozen=True)
class CgroupBinaries(PgBinaries):
    """The binaries, with pg_ctl wrapped: the wrapper enters the cgroup first, so the postmaster it starts, its
    shared memory and every backend belong to the cgroup from the first byte."""

    wrapper: Path = Path()

    def tool(self, name: str) -> str:
        return str(self.wrapper) if name == "pg_ctl" else super().tool(name)


def wrap_pg_ctl(binaries: PgBinaries, cgroup: MemoryCgroup, folder: Path, account: ServerAccount) -> CgroupBinaries:
    wrapper = folder / "pg_ctl-in-cgroup"
    wrapper.write_text(
        "#!/bin/sh\n"
        f"echo $$ > {shlex.quote(str(cgroup.path / 'cgroup.procs'))} || exit 1\n"
        f'exec {shlex.quote(binaries.tool("pg_ctl"))} "$@"\n',
        encoding="utf-8",
    )
    wrapper.chmod(0o755)
    account.own(wrapper)
    return CgroupBinaries(binaries.package, binaries.bin_dir, wrapper)


# --------------------------------------------------------------------------------------------------------
# The throwaway server
# --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SmallServer:
    area: Path
    """The server's folder (data, socket, log), removed when it stops."""
    pid: int
    version: str
    cgroup: MemoryCgroup | None
    cgroup_note: str

    @property
    def dsn(self) -> str:
        return socket_dsn(self.area, SOCKET_PORT, "postgres")


def _area(parent: Path, account: ServerAccount, say: Say) -> Path:
    """A new private folder under `parent` (the system temp dir when the server account cannot use it)."""
    base = reachable_folder(account, parent, say)
    if not socket_path_fits(base / "bench-small-server-xxxxxxxx", SOCKET_PORT):
        base = Path(tempfile.gettempdir())
    area = Path(tempfile.mkdtemp(prefix="bench-small-server-", dir=base))
    account.own(area)
    return area


@contextlib.contextmanager
def small_server(shape: ServerShape, parent: Path, say: Say) -> Iterator[SmallServer]:
    """A fresh PostgreSQL 18 configured like `shape`, in a new folder under `parent`; stopped and removed after,
    whatever happens (the last lines of its log go to `say` on a failure)."""
    account = server_account()
    binaries: PgBinaries = wheel_binaries().runnable_by(account)
    area = _area(parent, account, say)
    data, log = area / "data", area / "server.log"
    cgroup: MemoryCgroup | None = None
    try:
        cgroup, note = memory_cgroup(shape.memory_bytes, account)
        say(f"memory: {note}")
        if cgroup is not None:
            binaries = wrap_pg_ctl(binaries, cgroup, area, account)
        init_cluster(binaries, account, data, ["--no-sync"])  # nothing to make durable before the first start
        write_settings(account, data, server_settings(shape, binaries, area))
        pid = start_cluster(binaries, account, data, log, START_TIMEOUT_SECONDS)
        say(f"started PostgreSQL {binaries.version} like {shape.instance_class} in {area} (pid {pid})")
        yield SmallServer(area, pid, binaries.version, cgroup, note)
    except BaseException:
        say(f"last lines of {log}:\n{log_tail(log)}")
        raise
    finally:
        _tear_down(binaries, account, area, cgroup)


def _tear_down(binaries: PgBinaries, account: ServerAccount, area: Path, cgroup: MemoryCgroup | None) -> None:
    try:
        if read_postmaster(area / "data") is not None:
            stop_cluster(binaries, account, area / "data", mode="immediate", timeout=60)
    finally:
        shutil.rmtree(area, ignore_errors=True)
        if cgroup is not None:
            cgroup.remove()


# --------------------------------------------------------------------------------------------------------
# Memory sampling
# --------------------------------------------------------------------------------------------------------


def server_pids(postmaster: int) -> list[int]:
    """The postmaster and its children (every backend and auxiliary process is one)."""
    pids = [postmaster]
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):  # processes come and go while we look
            after_name = (entry / "stat").read_text(encoding="utf-8").rsplit(")", 1)[1].split()
            if int(after_name[1]) == postmaster:
                pids.append(int(entry.name))
    return pids


def pss_bytes(pid: int) -> int:
    """Proportional set size: private pages plus a share of the shared ones, so shared_buffers counts once."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text(encoding="utf-8").splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    return 0


@dataclass
class MemoryPeaks:
    server_pss_bytes: int = 0
    cgroup_unreclaimable_bytes: int = 0
    samples: int = 0


class MemorySampler:
    """Samples the server's memory every SAMPLE_SECONDS in a thread while in use, keeping the peaks."""

    def __init__(self, server: SmallServer) -> None:
        self.server = server
        self.peaks = MemoryPeaks()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="memory-sampler", daemon=True)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while True:
            self.sample()
            if self._stop.wait(SAMPLE_SECONDS):
                return

    def sample(self) -> None:
        pss = sum(pss_bytes(pid) for pid in server_pids(self.server.pid))
        self.peaks.server_pss_bytes = max(self.peaks.server_pss_bytes, pss)
        if self.server.cgroup is not None:
            with contextlib.suppress(OSError, ValueError):
                held = self.server.cgroup.unreclaimable_bytes()
                self.peaks.cgroup_unreclaimable_bytes = max(self.peaks.cgroup_unreclaimable_bytes, held)
        self.peaks.samples += 1


# --------------------------------------------------------------------------------------------------------
# The run and its report
# --------------------------------------------------------------------------------------------------------


@dataclass
class CgroupFigures:
    limit_mb: float
    peak_usage_mb: float
    """The kernel's high-water mark: processes, shared memory and page cache (which it reclaims at the limit)."""
    peak_unreclaimable_mb: float
    """Sampled: anonymous plus shared memory."""
    limit_hits: int
    oom_kills: int


@dataclass
class SmallServerResult(bench.LoadResult):
    load_average_before: float = 0.0
    instance_class: str = ""
    memory_mb: float = 0.0
    class_memory_mb: float = 0.0
    class_memory_source: str = ""
    settings: dict[str, str] = field(default_factory=dict)
    """What the server reported (pg_settings' setting and unit) for the parameters the report shows."""
    load_work_mem: str = ""
    load_maintenance_work_mem: str = ""
    server_peak_pss_mb: float = 0.0
    memory_samples: int = 0
    temp_files: int = 0
    temp_mb: float = 0.0
    cgroup: CgroupFigures | None = None
    cgroup_note: str = ""
    wall_seconds: float = 0.0
    """From starting the server to the end of the VACUUM ANALYZE."""


def _reported_settings(dsn: str) -> dict[str, str]:
    with psycopg.connect(dsn) as connection:
        rows = connection.execute(
            "select name, setting || coalesce(' ' || unit, '') from pg_settings where name = any(%s) order by name",
            (list(REPORTED_SETTINGS),),
        ).fetchall()
    return {str(name): str(value) for name, value in rows}


def _temp_spill(dsn: str) -> tuple[int, float]:
    """Temporary files the load's sorts and hashes wrote: what a work_mem too small for them costs."""
    with psycopg.connect(dsn) as connection:
        row = connection.execute(
            "select temp_files, temp_bytes from pg_stat_database where datname = current_database()"
        ).fetchone()
    return (int(row[0]), row[1] / MIB) if row else (0, 0.0)


def _cgroup_figures(cgroup: MemoryCgroup, peaks: MemoryPeaks) -> CgroupFigures:
    return CgroupFigures(
        limit_mb=cgroup.limit_bytes / MIB,
        peak_usage_mb=int(cgroup.read("memory.max_usage_in_bytes")) / MIB,
        peak_unreclaimable_mb=peaks.cgroup_unreclaimable_bytes / MIB,
        limit_hits=int(cgroup.read("memory.failcnt")),
        oom_kills=cgroup.oom_kills(),
    )


def run(data_folder: Path, shape: ServerShape, *, seasons: int, say: Say) -> SmallServerResult:
    """Generate (or reuse) the league, then load it into a throwaway server sized like `shape`."""
    result = SmallServerResult(
        started_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        machine=bench.machine(),
        load_average_before=round(os.getloadavg()[0], 2),
        postgres="",
        instance_class=shape.instance_class,
        memory_mb=shape.memory_bytes / MIB,
        class_memory_mb=round(shape.class_memory_bytes / MIB, 2),
        class_memory_source=shape.class_memory_source,
        seasons=seasons,
    )
    result.note_generation(bench.generate(data_folder, seasons, say))
    started = time.perf_counter()
    with small_server(shape, data_folder.parent, say) as server:
        result.postgres, result.cgroup_note = server.version, server.cgroup_note
        _load(server, data_folder, result, say)
        result.wall_seconds = time.perf_counter() - started
    return result


def _load(server: SmallServer, data_folder: Path, result: SmallServerResult, say: Say) -> None:
    result.settings = _reported_settings(server.dsn)
    with psycopg.connect(server.dsn) as connection:
        memory = loadmemory.choose(connection)  # what the loader computes from the same server's settings
    result.load_work_mem, result.load_maintenance_work_mem = memory.work_mem, memory.maintenance_work_mem
    say(f"the loader will take work_mem {memory.work_mem}, maintenance_work_mem {memory.maintenance_work_mem}")
    with MemorySampler(server) as sampler:
        try:
            load = bench.load_fresh(server.dsn, data_folder, result.events, say)
        except RuntimeError as error:
            raise RuntimeError(f"{error}{_oom_hint(server)}") from None
    result.note_load(load)
    result.server_peak_pss_mb, result.memory_samples = sampler.peaks.server_pss_bytes / MIB, sampler.peaks.samples
    result.temp_files, result.temp_mb = _temp_spill(load.dsn)
    if server.cgroup is not None:
        result.cgroup = _cgroup_figures(server.cgroup, sampler.peaks)


def _oom_hint(server: SmallServer) -> str:
    """Why a load failed, when the cgroup knows: the out-of-memory killer."""
    if server.cgroup is None:
        return ""
    with contextlib.suppress(OSError, ValueError):
        kills, limit = server.cgroup.oom_kills(), server.cgroup.limit_bytes // MIB
        if kills:
            return f" (the out-of-memory killer ended {kills} server process(es) at the {limit} MiB limit)"
    return ""


def as_json(result: SmallServerResult) -> str:
    return json.dumps(asdict(result), indent=2)


def _parameter_rows(result: SmallServerResult) -> list[str]:
    memory = round(result.class_memory_mb * MIB)
    rows = [
        f"| {formula.name} | `{formula.formula}` | {' '.join(filter(None, (str(formula.value(memory)), formula.unit)))}"
        f" | {result.settings.get(formula.name, 'not reported')} |"
        for formula in RDS_MEMORY_FORMULAS
    ]
    for name in ("work_mem", "wal_buffers", "max_wal_size", "huge_pages"):
        rows.append(f"| {name} | default group: {RDS_FIXED_DEFAULTS[name]} | | {result.settings.get(name, '')} |")
    return rows


def _memory_lines(result: SmallServerResult) -> list[str]:
    lines = [
        f"- server peak memory, the postgres processes' proportional set size (PSS: shared buffers counted once) "
        f"summed, sampled every {SAMPLE_SECONDS} s ({result.memory_samples:,} samples): "
        f"**{result.server_peak_pss_mb:,.0f} MB**",
    ]
    figures = result.cgroup
    if figures is None:
        lines.append(f"- no memory limit: {result.cgroup_note}; the figure above is sampled, not enforced")
        return lines
    lines += [
        f"- the server ran in a memory cgroup limited to {figures.limit_mb:,.0f} MiB (the class's memory): "
        f"out-of-memory kills **{figures.oom_kills}**; peak usage counting page cache {figures.peak_usage_mb:,.0f} "
        f"MiB (the kernel reclaims cache at the limit: it was reached {figures.limit_hits:,} times); "
        f"peak anonymous + shared memory (sampled) {figures.peak_unreclaimable_mb:,.0f} MiB",
    ]
    return lines


def render_section(result: SmallServerResult, command: str) -> str:
    """The results file's section for this mode (bench.write_section puts it in place)."""
    lines = [
        f"## Full-history load on a server sized like {result.instance_class}",
        "",
        f"- command: `{command}`",
        f"- date: {result.started_at}",
        f"- machine: {result.machine}; 1-minute load average before the run {result.load_average_before} "
        "(the machine is shared with other work, so times move between runs)",
        f"- PostgreSQL: {result.postgres}, a throwaway server (socket only, removed afterwards) with RDS's default "
        f"parameter group for {result.instance_class} ({result.memory_mb:,.0f} MiB) computed for "
        f"DBInstanceClassMemory = {result.class_memory_mb:,.0f} MiB ({result.class_memory_source}), the stack's "
        "own parameters (components/database.py, less rds.*) over them",
        f"- data: {result.seasons} seasons, {result.games:,} games, {result.events:,} events, "
        f"{result.players:,} players (the full benchmark's, seed 1); generated in {result.generate_seconds:.0f} s",
        "",
        "| parameter | default group | computed | server reports |",
        "|---|---|---|---|",
        *_parameter_rows(result),
        "",
        f"- the loader's choice (temporaldb/loadmemory.py, from this server's shared_buffers and "
        f"effective_cache_size): work_mem **{result.load_work_mem}**, maintenance_work_mem "
        f"**{result.load_maintenance_work_mem}**; the load's sorts and hashes wrote {result.temp_files:,} "
        f"temporary files ({result.temp_mb:,.0f} MB)",
        f"- `temporaldb load` wall time: {result.load_seconds:.1f} s; with the VACUUM ANALYZE: "
        f"**{result.load_to_queryable_seconds:.1f} s ({result.events_per_second:,} events/s)**; "
        f"from server start to the end: {result.wall_seconds:.0f} s",
        *_memory_lines(result),
        f"- loader peak RSS: {result.loader_peak_rss_mb:.0f} MB (a separate process, outside the server's limit, "
        "as a client is outside RDS)",
        f"- nba.play_by_play: {result.play_by_play_mb:,.0f} MB; derived: {result.derived_mb:,.0f} MB",
    ]
    return "\n".join(lines)


def from_command(args: argparse.Namespace, command: str, say: Say) -> str:
    """`temporaldb bench --server-like`: check the options, run, write the results section; return what to print.

    ValueError: options that do not apply here (this mode starts its own server and measures the load only).
    """
    if args.server_like is None:
        raise ValueError("--class-memory needs --server-like")
    for option, value in (("--dsn", args.dsn), ("--queries", args.queries)):
        if value is not None:
            raise ValueError(f"{option} does not apply with --server-like: it starts its own server and only loads")
    shape = shape_of(args.server_like, args.class_memory)
    result = run(args.data, shape, seasons=args.seasons, say=say)
    section = render_section(result, command)
    if args.results is not None:
        bench.write_section(args.results, SECTION, section)
    return as_json(result) if args.json else section
