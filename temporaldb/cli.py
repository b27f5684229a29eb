"""The `temporaldb` command line.

Each command keeps its heavy imports (Pulumi, database drivers) inside its
handler so `temporaldb --help` and unrelated commands stay fast.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

EXIT_OK = 0
EXIT_OVER_BUDGET = 1
EXIT_USAGE = 2


def _parse_override(text: str) -> tuple[str, str]:
    key, separator, value = text.partition("=")
    if not separator or not key:
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=VALUE (e.g. temporaldb:instanceClass=db.t3.small)")
    return (key if ":" in key else f"temporaldb:{key}"), value


def _add_plan(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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
    from temporaldb.stackconfig import ProjectFiles, StackConfigError, find_project_root

    try:
        root = args.project_dir.resolve() if args.project_dir else find_project_root(Path.cwd())
        stacks = args.stack or ProjectFiles(root).stacks()
        documents, texts, over_budget = [], [], []
        for stack in stacks:
            print(f"planning stack {stack}: running the program under Pulumi mocks", file=sys.stderr)
            run = run_program(root, stack, dict(args.overrides))
            estimate = cost.estimate(run)
            if not estimate.within_budget:
                over_budget.append(
                    f"{stack}: estimate {estimate.monthly_usd:.2f} USD exceeds the budget of {estimate.budget_usd:.2f}"
                )
            if args.json:
                documents.append(json.loads(plan.render_json(run, estimate)))
            else:
                texts.append(plan.render_text(run, estimate))
    except (SettingsError, StackConfigError, cost.PricingError) as error:
        print(f"temporaldb plan: {error}", file=sys.stderr)
        return EXIT_USAGE
    print(json.dumps(documents, indent=2, default=str) if args.json else "\n\n".join(texts))
    for message in over_budget:
        print(f"temporaldb plan: {message}", file=sys.stderr)
    return EXIT_OVER_BUDGET if over_budget else EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="temporaldb",
        description="Temporal sports-analytics database: plan the AWS stacks, run the database locally.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_plan(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler = args.handler
    result: int = handler(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
