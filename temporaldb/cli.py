"""The `temporaldb` command line.

Each command keeps its heavy imports (Pulumi, database drivers) inside its
handler so `temporaldb --help` and unrelated commands stay fast.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from temporaldb import deployed, localcli, panel, plot, tunnel
from temporaldb.feeds import bench as import_bench
from temporaldb.feeds import command
from temporaldb.roles import login_names

EXIT_OK = 0
EXIT_OVER_BUDGET = 1
EXIT_USAGE = 2
EXIT_BAD_INPUT = 3
EXIT_DATABASE = 4
EXIT_NOT_DEPLOYED = deployed.EXIT_NOT_DEPLOYED
EXIT_NO_LOGIN = deployed.EXIT_NO_LOGIN
EXIT_AWS = deployed.EXIT_AWS

DATABASE_EXIT_CODES = (
    "Exit codes: 0 done, 2 usage (an unknown stack or role, a missing --ca-bundle, an unresolvable --host), "
    "3 bad input, 4 cannot reach the database or it refused the login, and with --stack: 5 no instance (or more "
    "than one) tagged for the stack, 6 no login for the role (no secret, or IAM auth off), 7 AWS unreachable, "
    "no credentials or refused."
)

if TYPE_CHECKING:
    Commands = argparse._SubParsersAction[argparse.ArgumentParser]


def _parse_override(text: str) -> tuple[str, str]:
    key, separator, value = text.partition("=")
    if not separator or not key:
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=VALUE (e.g. temporaldb:instanceClass=db.t3.small)")
    return (key if ":" in key else f"temporaldb:{key}"), value


def _add_plan(commands: Commands) -> None:
    plan = commands.add_parser(
        "plan",
        help="show what a stack would create and its monthly cost, offline",
        description=(
            "Run the Pulumi program under mocks (no Pulumi CLI, no AWS credentials, no network), list the "
            "resources each stack would create with their key settings, and estimate the monthly cost. "
            "Exits 1 when an estimate exceeds the stack's monthlyBudgetUsd, 2 on a configuration error."
        ),
    )
    plan.add_argument("--stack", action="append", help="stack to plan (repeatable; default: every Pulumi.<stack>.yaml)")
    plan.add_argument("--json", action="store_true", help="print a JSON list of stack documents instead of text")
    plan.add_argument(
        "--set",
        dest="overrides",
        action="append",
        type=_parse_override,
        default=[],
        metavar="KEY=VALUE",
        help="override a config value for this plan only, as `pulumi config set` would",
    )
    plan.add_argument(
        "--project-dir", type=Path, help="folder holding Pulumi.yaml (default: found from the current folder)"
    )
    plan.set_defaults(handler=_run_plan)


def _run_plan(args: argparse.Namespace) -> int:
    import json

    from infra.settings import SettingsError
    from temporaldb import cost, plan
    from temporaldb.preview import run_program
    from temporaldb.stackconfig import ProjectFiles, StackConfigError

    try:
        root = _project_root(args)
        stacks = args.stack or ProjectFiles(root).stacks()
        documents, texts, over_budget = [], [], []
        for stack in stacks:
            print(f"planning stack {stack}: running the program under Pulumi mocks", file=sys.stderr)
            run = run_program(root, stack, dict(args.overrides))
            for warning in run.warnings:
                print(f"temporaldb plan: {stack}: the program warns (as pulumi up would): {warning}", file=sys.stderr)
            estimate = cost.estimate(run)
            if not estimate.within_budget:
                over_budget.append(
                    f"{stack}: estimate {estimate.monthly_usd:.2f} USD exceeds the budget of {estimate.budget_usd:.2f}"
                )
            if args.json:
                documents.append(plan.document(run, estimate))
            else:
                texts.append(plan.render_text(run, estimate))
    except (SettingsError, StackConfigError, cost.PricingError) as error:
        print(f"temporaldb plan: {error}", file=sys.stderr)
        return EXIT_USAGE
    print(json.dumps(documents, indent=2, default=str) if args.json else "\n\n".join(texts))
    for message in over_budget:
        print(f"temporaldb plan: {message}", file=sys.stderr)
    return EXIT_OVER_BUDGET if over_budget else EXIT_OK


def _add_dsn(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dsn",
        help="libpq connection string or URL (default: $TEMPORALDB_DSN, else the local server as the login role "
        "of the model this command needs: migrator, etl or analyst)",
    )


def _add_connection(parser: argparse.ArgumentParser, default_role: str) -> None:
    """--dsn or --stack (with --role and the tunnel, TLS and AWS options), for a command that logs in as a role."""
    where = parser.add_argument_group(
        "where to connect", f"default: $TEMPORALDB_DSN, else the local server as {default_role}"
    )
    choice = where.add_mutually_exclusive_group()
    choice.add_argument("--dsn", help="libpq connection string or URL (it names its own user)")
    choice.add_argument(
        "--stack",
        metavar="NAME",
        help="a deployed stack (Pulumi.NAME.yaml): its RDS instance, found by its tags, with the role's login secret "
        "or an IAM token, over TLS",
    )
    where.add_argument(
        "--role",
        metavar="ROLE",
        help=f"login role of the model ({', '.join(login_names())}) on the stack or the local server "
        f"(default {default_role})",
    )
    _add_stack_options(parser, "with --stack")


def _add_stack_options(parser: argparse.ArgumentParser, title: str) -> None:
    group = parser.add_argument_group(title)
    group.add_argument(
        "--host",
        help="connect through a tunnel's local end (host name or IP); TLS still checks the instance's own name",
    )
    group.add_argument("--port", type=int, help="the tunnel's local port (default: the instance's port)")
    group.add_argument("--database", help="database (default: the stack's first sport's, e.g. nba_temporal)")
    group.add_argument(
        "--ca-bundle",
        type=Path,
        metavar="PATH",
        help=f"RDS CA bundle for sslmode=verify-full (default: ${deployed.CA_BUNDLE_ENV}, else the bundle shipped in "
        "temporaldb/data/ for the regions it covers, else sslmode=require with a warning)",
    )
    group.add_argument("--region", help="AWS region (default: aws:region of the stack file)")
    group.add_argument("--endpoint-url", metavar="URL", help="AWS endpoint, e.g. an emulator at http://127.0.0.1:5000")
    group.add_argument(
        "--project-dir",
        type=Path,
        metavar="DIR",
        help="folder holding Pulumi.yaml and the stack files (default: found from the current folder)",
    )


_STACK_ONLY = ("host", "port", "database", "ca_bundle", "region", "endpoint_url")


def _target(args: argparse.Namespace, default_role: str) -> tuple[str, deployed.StackRequest | None]:
    """The role to log in as and, with --stack, what to reach; refuses options that do not apply."""
    role: str = args.role or default_role
    deployed.check_role(role)
    if args.stack is None:
        given = [f"--{name.replace('_', '-')}" for name in _STACK_ONLY if getattr(args, name) is not None]
        if given:
            raise deployed.UsageError(f"{', '.join(given)} only apply with --stack")
        if args.role and args.dsn:
            raise deployed.UsageError("--role does not apply with --dsn: the DSN names its own user")
        return role, None
    from temporaldb.stackconfig import StackConfigError

    try:
        project_root = _project_root(args)
    except StackConfigError as error:
        raise deployed.UsageError(str(error)) from None
    request = deployed.StackRequest(
        stack=args.stack,
        role=role,
        project_root=project_root,
        host=args.host,
        port=args.port,
        database=args.database,
        ca_bundle=args.ca_bundle,
        region=args.region,
        endpoint_url=args.endpoint_url,
    )
    return role, request


def _connect_dsn(args: argparse.Namespace, default_role: str) -> str:
    """The DSN for psycopg (with the password when --stack: never print it)."""
    from temporaldb.db import resolve_dsn

    role, request = _target(args, default_role)
    return resolve_dsn(args.dsn, role=role, stack=request, say=lambda line: _say(f"temporaldb {args.command}: {line}"))


def _say(message: str) -> None:
    """Progress and logs go to stderr; results to stdout."""
    print(message, file=sys.stderr, flush=True)


def _report(phase: str, done: int, total: int) -> None:
    """Load progress on stderr: the phase, with a percentage when it has a size."""
    percent = f" {100 * done / total:5.1f}%" if total > 1 else ""
    _say(f"  {phase}{percent}")


def _project_root(args: argparse.Namespace) -> Path:
    from temporaldb.stackconfig import find_project_root

    return args.project_dir.resolve() if args.project_dir else find_project_root(Path.cwd())


def _database_errors(handler: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Turn a missing or unreachable database into a one-line error and exit code 4; a stack that cannot be
    reached into a one-line error and its own exit code (see DATABASE_EXIT_CODES)."""

    def run(args: argparse.Namespace) -> int:
        import psycopg

        from temporaldb.db import NoDatabaseError

        try:
            return handler(args)
        except deployed.DeployedStackError as error:
            print(f"temporaldb {args.command}: {error}", file=sys.stderr)
            return error.exit_code
        except NoDatabaseError as error:
            print(f"temporaldb {args.command}: {error}", file=sys.stderr)
        except psycopg.OperationalError as error:
            reason = " ".join(str(error).split())
            print(f"temporaldb {args.command}: cannot reach the database: {reason}", file=sys.stderr)
        except psycopg.errors.InsufficientPrivilege as error:
            # A role the model does not allow this (e.g. etl asking as-of questions): say so, no traceback.
            reason = " ".join(str(error).split())
            print(f"temporaldb {args.command}: the role may not do this: {reason}", file=sys.stderr)
        return EXIT_DATABASE

    return run


def _add_migrate(commands: Commands) -> None:
    parser = commands.add_parser(
        "migrate",
        help="apply pending SQL migrations",
        description="Apply every pending sql/migrations file in one transaction under an advisory lock; "
        "refuse when an applied file was edited. Re-running with nothing pending changes nothing.",
        epilog=DATABASE_EXIT_CODES,
    )
    _add_connection(parser, "migrator")
    parser.set_defaults(handler=_database_errors(_run_migrate))


def _run_migrate(args: argparse.Namespace) -> int:
    from temporaldb.migrate import MigrationError, migrate

    dsn = _connect_dsn(args, "migrator")
    try:
        result = migrate(dsn)
    except MigrationError as error:
        print(f"temporaldb migrate: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    for migration in result.applied:
        print(f"applied {migration.file_name}", file=sys.stderr)
    if not result.applied:
        print(f"nothing to apply: {result.already_applied} migrations already applied", file=sys.stderr)
    print(f"schema version {result.version} checksum {result.checksum}")
    return EXIT_OK


def _add_load(commands: Commands) -> None:
    parser = commands.add_parser(
        "load",
        help="load a folder of canonical CSV files",
        description="Load teams.csv, players.csv, games.csv and events.csv (or .csv.gz) in one transaction. "
        "A bad row stops the load with file:line: reason and changes nothing. Later loads may correct events.",
        epilog=DATABASE_EXIT_CODES,
    )
    parser.add_argument("folder", type=Path, help="folder holding the canonical CSV files")
    parser.add_argument(
        "--replace-games",
        action="store_true",
        help="each game in games.csv or events.csv gets exactly this load's events: stored events it no longer "
        "carries (dropped or renumbered in a corrected feed) are deleted. Default: merge by (game_id, event_num), "
        "for a game split over several loads",
    )
    _add_connection(parser, "etl")
    parser.set_defaults(handler=_database_errors(_run_load))


def _run_load(args: argparse.Namespace) -> int:
    from temporaldb.load import LoadError, load_directory

    dsn = _connect_dsn(args, "etl")
    print(f"loading {args.folder}", file=sys.stderr)
    try:
        summary = load_directory(dsn, args.folder, _report, replace_games=args.replace_games)
    except LoadError as error:
        print(f"temporaldb load: {error}", file=sys.stderr)
        print("temporaldb load: nothing was changed", file=sys.stderr)
        return EXIT_BAD_INPUT
    rows = ", ".join(f"{count:,} {table}" for table, count in summary.rows.items())
    print(
        f"loaded {rows} in {summary.seconds:.1f} s: {summary.events_changed:,} events new or changed, "
        + (f"{summary.events_removed:,} removed, " if args.replace_games else "")
        + f"{summary.games_rebuilt:,} games rebuilt"
    )
    return EXIT_OK


def _add_asof(commands: Commands) -> None:
    parser = commands.add_parser(
        "asof",
        help="a player's or team's totals at an exact moment",
        description="Answer a cumulative stat line as of an exact moment, e.g. "
        "temporaldb asof 'Kobe Bryant' --at 2016-06-19T19:02:34.560 --tz America/Chicago",
        epilog=DATABASE_EXIT_CODES,
    )
    parser.add_argument("subject", help="player name or id (with --team: team name, abbreviation or id)")
    parser.add_argument("--at", required=True, help="ISO 8601 moment; without an offset, give --tz")
    parser.add_argument("--tz", help="time zone of --at when it has no offset, e.g. America/Chicago")
    parser.add_argument("--team", action="store_true", help="the subject is a team")
    parser.add_argument(
        "--scope", choices=("career", "season", "game"), help="default: career for players, season for teams"
    )
    parser.add_argument("--season-type", choices=("regular", "playoffs", "all"), default="regular")
    parser.add_argument("--json", action="store_true", help="print JSON")
    _add_connection(parser, "analyst")
    parser.set_defaults(handler=_database_errors(_run_asof))


def _run_asof(args: argparse.Namespace) -> int:
    import json

    import psycopg

    from temporaldb import asof

    scope = args.scope or asof.default_scope(args.team)
    try:
        moment = asof.parse_moment(args.at, args.tz)
        with psycopg.connect(_connect_dsn(args, "analyst")) as connection:
            subject = asof.resolve_subject(connection, args.subject, team=args.team)
            answer = asof.stats_as_of(connection, subject, moment, scope, args.season_type)
    except asof.AsOfError as error:
        print(f"temporaldb asof: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.json:
        print(json.dumps(asof.document(answer), indent=2))
    else:
        print(asof.render(answer))
    return EXIT_OK


def _add_stack_dsn(commands: Commands) -> None:
    parser = commands.add_parser(
        "dsn",
        help="print the libpq DSN of a deployed stack's database for a role, without the password",
        description="Find the stack's RDS instance by its tags and print a libpq DSN (host, hostaddr through a "
        "tunnel, port, database, user, TLS settings) for psql or psycopg, without the password; stderr says how "
        "to get it (the login secret's ARN, or the command that makes an IAM token). Reads no secret value. "
        "(`temporaldb local dsn` prints the local server's.)",
        epilog=DATABASE_EXIT_CODES,
    )
    parser.add_argument("--stack", metavar="NAME", required=True, help="the deployed stack (Pulumi.NAME.yaml)")
    parser.add_argument(
        "--role", metavar="ROLE", default="analyst", help=f"login role ({', '.join(login_names())}; default analyst)"
    )
    _add_stack_options(parser, "tunnel, TLS and AWS")
    parser.set_defaults(handler=_database_errors(_run_stack_dsn), dsn=None)


def _run_stack_dsn(args: argparse.Namespace) -> int:
    _, request = _target(args, "analyst")
    if request is None:  # argparse requires --stack
        raise deployed.UsageError("--stack is required")
    login, _ = deployed.locate(request)
    _say(f"temporaldb dsn: {login.describe()}")
    if login.tls.warning:
        _say(f"temporaldb dsn: {login.tls.warning}")
    _say(f"temporaldb dsn: {login.password_hint()}")
    print(login.dsn())
    return EXIT_OK


def _add_generate(commands: Commands) -> None:
    parser = commands.add_parser(
        "generate",
        help="write a seeded synthetic league in the canonical CSV format",
        description="Write teams.csv, players.csv, games.csv and events.csv for N seasons of a synthetic league: "
        "real franchises and schedules, rosters and careers, 450-500 events per game. Same seed, same bytes.",
    )
    parser.add_argument("folder", type=Path, help="output folder (created if missing)")
    parser.add_argument("--seasons", type=int, default=1, help="number of seasons (default 1)")
    parser.add_argument("--first-season", type=int, default=1996, help="first season's start year (default 1996)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--gzip", action="store_true", help="write .csv.gz files")
    parser.set_defaults(handler=_run_generate)


def _run_generate(args: argparse.Namespace) -> int:
    from temporaldb.generate import generate_league

    if args.seasons < 1:
        print("temporaldb generate: --seasons must be 1 or more", file=sys.stderr)
        return EXIT_USAGE
    last = [0.0]

    def progress(done: int, total: int) -> None:
        if time.monotonic() - last[0] > 2 or done == total:
            print(f"  {done:,}/{total:,} games", file=sys.stderr, flush=True)
            last[0] = time.monotonic()

    try:
        summary = generate_league(
            args.folder, seasons=args.seasons, first_season=args.first_season, seed=args.seed,
            compress=args.gzip, progress=progress,
        )  # fmt: skip
    except ValueError as error:
        print(f"temporaldb generate: {error}", file=sys.stderr)
        return EXIT_USAGE
    print(
        f"wrote {summary.teams} teams, {summary.players:,} players, {summary.games:,} games, "
        f"{summary.events:,} events to {args.folder}"
    )
    return EXIT_OK


def _add_demo(commands: Commands) -> None:
    parser = commands.add_parser(
        "demo",
        help="local server, migrations, three synthetic seasons, a headline as-of answer and a picture",
        description="Start the embedded server, migrate, generate and load 2013-14 to 2015-16, answer "
        "Kobe Bryant's career totals at 7:02:34.560 PM CT on June 19, 2016 with its latency, and draw the "
        "top scorers' career points to .local/demo-race.png.",
    )
    parser.add_argument("--project-dir", type=Path, help="folder holding Pulumi.yaml (default: found from here)")
    parser.set_defaults(handler=_database_errors(_run_demo))


def _run_demo(args: argparse.Namespace) -> int:
    from temporaldb import demo
    from temporaldb.load import LoadError
    from temporaldb.pgcluster import LocalServerError
    from temporaldb.stackconfig import StackConfigError

    try:
        print(demo.run(_project_root(args), _say))
    except (StackConfigError, LocalServerError, LoadError) as error:
        print(f"temporaldb demo: {error}", file=sys.stderr)
        return EXIT_DATABASE
    return EXIT_OK


def _add_bench(commands: Commands) -> None:
    parser = commands.add_parser(
        "bench",
        help="full-history benchmark: load time, as-of latency, naive ratio, sizes",
        description="Generate >= 36,000 games / 16M events, load them into a fresh database nba_bench on the "
        "server of --dsn (default: the local server) and measure. Takes about 10 minutes on 2 cores. "
        "With --server-like, only the load, into a throwaway server sized like that RDS class.",
    )
    _add_dsn(parser)
    parser.add_argument("--data", type=Path, default=Path(".local/bench-data"), help="generated data folder (reused)")
    parser.add_argument("--seasons", type=int, default=29, help="seasons from 1996-97 (default 29: full history)")
    parser.add_argument("--queries", type=int, help="as-of and floor queries per round (default 20000)")
    parser.add_argument("--results", type=Path, help="write the Markdown report here (e.g. bench/RESULTS.md)")
    parser.add_argument("--json", action="store_true", help="print the raw figures as JSON")
    small = parser.add_argument_group(
        "small server",
        "--server-like CLASS starts a throwaway PostgreSQL 18 under the --data folder's parent, configured as RDS's "
        "default parameter group configures CLASS (plus the stack's own parameters), inside a memory cgroup of the "
        "class's size when one can be made; it loads the data, reports time and peak memory, and removes the "
        "server. With --results it replaces only its own section of the file; a full run keeps that section.",
    )
    panels = parser.add_argument_group(
        "panels",
        "--panels measures the panels on the database nba_bench a full run loaded (run that first): a season's "
        "panel to Parquet against the one-cell function cell by cell, and `temporaldb panel`'s peak RSS. With "
        "--results it replaces only its own section of the file.",
    )
    panels.add_argument("--panels", action="store_true", help="only the panel benchmark")
    panels.add_argument("--season", help="the panel's season, e.g. 2015-16 (default: the last in the data)")
    panels.add_argument("--jobs", type=int, default=2, help="connections fetching the panel (default 2)")
    panels.add_argument("--rounds", type=int, default=5, help="rounds of each measure (default 5)")
    small.add_argument("--server-like", metavar="CLASS", help="an RDS instance class, e.g. db.t3.micro")
    small.add_argument(
        "--class-memory",
        type=int,
        metavar="MIB",
        help="DBInstanceClassMemory in MiB, the memory RDS's formulas see (default: 744 for db.t3.micro, "
        "reasoned from a real instance's settings; else infra/catalog.py's estimate)",
    )
    parser.set_defaults(handler=_database_errors(_run_bench))


def _run_bench(args: argparse.Namespace) -> int:
    import shlex

    from temporaldb import bench, bench_small_server
    from temporaldb.db import resolve_dsn
    from temporaldb.pgcluster import LocalServerError

    command = "temporaldb " + " ".join(shlex.quote(part) for part in args.argv if not part.startswith("postgres"))
    if args.panels:
        print(_bench_panels(args, resolve_dsn(args.dsn), command))
        return EXIT_OK
    if args.server_like is None and args.class_memory is None:
        queries = 20000 if args.queries is None else args.queries
        result = bench.run(resolve_dsn(args.dsn), args.data, seasons=args.seasons, queries=queries, say=_say)
        report = bench.render_markdown(result, command)
        if args.results:
            bench.write_report(args.results, report)
        print(bench.as_json(result) if args.json else report)
        return EXIT_OK
    try:
        print(bench_small_server.from_command(args, command, _say))
    except ValueError as error:
        print(f"temporaldb bench: {error}", file=sys.stderr)
        return EXIT_USAGE
    except (LocalServerError, RuntimeError) as error:
        print(f"temporaldb bench: {error}", file=sys.stderr)
        return EXIT_DATABASE
    return EXIT_OK


def _bench_panels(args: argparse.Namespace, server_dsn: str, command: str) -> str:
    """The panel benchmark on nba_bench of the server; its section of --results replaced."""
    from temporaldb import bench, bench_panel

    dsn = bench.database_dsn(server_dsn)
    result = bench_panel.run(dsn, season=args.season, jobs=args.jobs, rounds=args.rounds, say=_say)
    section = bench_panel.render_section(result, command)
    if args.results:
        bench.write_section(args.results, bench_panel.SECTION, section)
    return bench_panel.as_json(result) if args.json else section


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="temporaldb",
        description="Temporal sports-analytics database: plan the AWS stacks, run the database locally.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_plan(commands)
    _add_migrate(commands)
    _add_load(commands)
    command.register(commands)
    _add_asof(commands)
    panel.register(commands)
    plot.register(commands)
    _add_stack_dsn(commands)
    _add_generate(commands)
    localcli.register(commands)
    tunnel.register(commands)
    _add_bench(commands)
    import_bench.register(commands)
    _add_demo(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    given = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(given)
    args.argv = given  # what the command was, for reports
    handler = args.handler
    result: int = handler(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
