"""The local restore drill's recovery machinery: WAL archiving, the base backup and point-in-time recovery.

`source_settings` configures the source to archive every WAL segment into the drill's archive folder;
`take_base_backup` copies it with pg_basebackup (checked by pg_verifybackup); `target_moment` reads the restore
target and the last commit before it from the source's clock; `archive_current_wal` switches WAL and waits until
the archiver has copied the segment; `recover` copies the base backup into a new cluster, points `restore_command`
at the archive and `recovery_target_time` at the target, starts it and waits until it is promoted.
"""

from __future__ import annotations

import datetime as dt
import shlex
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Final

import psycopg

from temporaldb.drills.local_restore_clusters import SOCKET_PORT, Cluster, DrillError, DrillSite, utc_iso
from temporaldb.drills.progress import Ticker
from temporaldb.drills.report import Say
from temporaldb.pgcluster import (
    SUPERUSER,
    LocalServerError,
    PgBinaries,
    log_tail,
    read_postmaster,
    start_cluster,
    write_settings,
)

BACKUP_TIMEOUT_SECONDS: Final = 600.0
POLL_SECONDS: Final = 0.2


def _base_settings(binaries: PgBinaries, socket_dir: Path) -> dict[str, str]:
    settings = {
        "listen_addresses": "",
        "port": str(SOCKET_PORT),
        "unix_socket_directories": str(socket_dir),
        "unix_socket_permissions": "0700",
        "wal_level": "replica",
        "track_commit_timestamp": "on",  # the last commit before the target, for the RPO
        "shared_buffers": "256MB",
        "max_wal_size": "2GB",
        "jit": "off",
        "timezone": "UTC",
        "log_timezone": "UTC",
    }
    if binaries.has_library("pg_stat_statements"):  # as the local server and RDS have it
        settings["shared_preload_libraries"] = "pg_stat_statements"
    return settings


def _command_path(path: Path) -> str:
    """A folder for archive_command / restore_command: shell-quoted, with % doubled (PostgreSQL's escape)."""
    return shlex.quote(str(path)).replace("%", "%%")


def source_settings(where: DrillSite, socket_dir: Path) -> dict[str, str]:
    """The source's settings: a private socket, commit timestamps, every WAL segment archived to `where.archive`."""
    folder = _command_path(where.archive)
    # Copy under a temporary name, then rename: a half-copied segment never looks archived; never overwrite.
    command = f"test ! -f {folder}/%f && cp %p {folder}/%f.part && mv {folder}/%f.part {folder}/%f"
    return {**_base_settings(where.binaries, socket_dir), "archive_mode": "on", "archive_command": command}


def _restore_settings(where: DrillSite, socket_dir: Path, target: dt.datetime) -> dict[str, str]:
    return {
        **_base_settings(where.binaries, socket_dir),
        "archive_mode": "off",  # the restored cluster must not write into the source's archive
        "restore_command": f"cp {_command_path(where.archive)}/%f %p",
        "recovery_target_time": target.astimezone(dt.UTC).isoformat(timespec="microseconds"),
        "recovery_target_inclusive": "on",
        "recovery_target_action": "promote",
    }


def server_clock(cluster: Cluster) -> dt.datetime:
    """The server's clock now (clock_timestamp())."""
    with psycopg.connect(cluster.dsn("postgres"), autocommit=True) as connection:
        row = connection.execute("select clock_timestamp()").fetchone()
    if row is None or not isinstance(row[0], dt.datetime):
        raise LocalServerError("select clock_timestamp() returned nothing")
    return row[0]


def target_moment(cluster: Cluster) -> tuple[dt.datetime, dt.datetime | None]:
    """The restore target (the server's clock now) and the last commit before it."""
    with psycopg.connect(cluster.dsn("postgres"), autocommit=True) as connection:
        row = connection.execute("select clock_timestamp(), (pg_last_committed_xact()).timestamp").fetchone()
    if row is None or not isinstance(row[0], dt.datetime):
        raise LocalServerError("select clock_timestamp() returned nothing")
    return row[0], row[1] if isinstance(row[1], dt.datetime) else None


def _run_tool(where: DrillSite, name: str, args: Sequence[str], timeout: float) -> None:
    result = where.account.run([where.binaries.tool(name), *args], timeout=timeout)
    if result.returncode != 0:
        output = (result.stderr or result.stdout).strip()
        raise LocalServerError(f"{name} failed (exit {result.returncode}): {output}")


def take_base_backup(where: DrillSite, source: Cluster, say: Say) -> None:
    """pg_basebackup of the running source into the drill's `base-backup` folder, checked by pg_verifybackup."""
    connection = ["-h", str(source.socket_dir), "-p", str(SOCKET_PORT), "-U", SUPERUSER, "--no-password"]
    say(f"pg_basebackup into {where.backup} (fast checkpoint, WAL streamed)")
    args = ["-D", str(where.backup), "-F", "plain", "-X", "stream", "-c", "fast", "-l", "restore drill"]
    _run_tool(where, "pg_basebackup", [*args, *connection], BACKUP_TIMEOUT_SECONDS)
    _run_tool(where, "pg_verifybackup", ["--quiet", str(where.backup)], BACKUP_TIMEOUT_SECONDS)


def archive_current_wal(source: Cluster, archive: Path, timeout: float, say: Say) -> tuple[str, float]:
    """Switch to a new WAL segment and wait until the archiver has copied the last one: (its name, seconds)."""
    started = time.monotonic()
    with psycopg.connect(source.dsn("postgres"), autocommit=True) as connection:
        row = connection.execute("select pg_walfile_name(pg_switch_wal())").fetchone()
        segment = str(row[0]) if row else ""
        say(f"switched WAL; waiting for the archiver to copy {segment}")
        ticker = Ticker(say)
        while True:
            state = connection.execute(
                "select last_archived_wal, failed_count, last_failed_wal from pg_stat_archiver"
            ).fetchone()
            last, failures, failed = state if state else (None, 0, None)
            if last is not None and str(last) >= segment and (archive / segment).is_file():
                return segment, time.monotonic() - started
            waited = time.monotonic() - started
            if waited > timeout:
                raise DrillError(
                    "archive_wal",
                    f"{segment} not archived after {timeout:.0f} s (last archived {last}, {failures} failures, "
                    f"last failed {failed}); last lines of {source.log_file}:\n{log_tail(source.log_file)}",
                )
            ticker.tick(f"still waiting for {segment} (last archived {last}, {failures} failures, {waited:.0f} s)")
            time.sleep(POLL_SECONDS)


def recover(where: DrillSite, restored: Cluster, target: dt.datetime, timeout: float, say: Say) -> None:
    """Point-in-time recovery of the base backup into `restored` up to `target`, until it is promoted."""
    say(f"copying the base backup to {restored.data_dir}")
    copy = ["cp", "-a", "--", str(where.backup), str(restored.data_dir)]
    copied = where.account.run(copy, timeout=BACKUP_TIMEOUT_SECONDS)
    if copied.returncode != 0:
        raise LocalServerError(f"copying {where.backup} failed: {(copied.stderr or copied.stdout).strip()}")
    settings = _restore_settings(where, restored.socket_dir, target)
    write_settings(where.account, restored.data_dir, settings)
    signal = restored.data_dir / "recovery.signal"
    signal.touch()
    where.account.own(signal)
    say(f"starting recovery to {utc_iso(target)}, restore_command from {where.archive}")
    try:
        start_cluster(where.binaries, where.account, restored.data_dir, restored.log_file, timeout)
    except LocalServerError as error:
        raise DrillError("restore", f"the restored cluster did not start: {error}") from error
    _wait_for_promotion(restored, timeout, say)


def _wait_for_promotion(restored: Cluster, timeout: float, say: Say) -> None:
    started = time.monotonic()
    ticker = Ticker(say)
    while True:
        waited = time.monotonic() - started
        try:
            with psycopg.connect(restored.dsn("postgres"), autocommit=True, connect_timeout=5) as connection:
                row = connection.execute(
                    "select pg_is_in_recovery(), pg_last_wal_replay_lsn()::text, pg_last_xact_replay_timestamp()"
                ).fetchone()
        except psycopg.OperationalError as error:
            if read_postmaster(restored.data_dir) is None:
                raise DrillError(
                    "restore",
                    f"the restored cluster stopped during recovery; last lines of {restored.log_file}:\n"
                    f"{log_tail(restored.log_file)}",
                ) from error
            row = None
        if row is not None and not row[0]:
            say(f"recovery finished and the cluster is promoted, {waited:.1f} s after it started")
            return
        if waited > timeout:
            raise DrillError(
                "restore",
                f"still in recovery after {timeout:.0f} s; last lines of {restored.log_file}:\n"
                f"{log_tail(restored.log_file)}",
            )
        if row is None:
            ticker.tick(f"waiting for the restored cluster to accept connections ({waited:.0f} s)")
        else:
            ticker.tick(f"replaying WAL: at {row[1]}, last replayed commit {utc_iso(row[2])} ({waited:.0f} s)")
        time.sleep(POLL_SECONDS)
