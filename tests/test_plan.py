"""`temporaldb plan`: resources, cost estimate, budget verdict and errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from temporaldb import cost
from temporaldb.cli import EXIT_OK, EXIT_OVER_BUDGET, EXIT_USAGE, main
from temporaldb.preview import ProgramRun, run_program

PRICES = cost.load_prices()["regions"]["us-east-1"]
HOURS = 730


def plan(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["plan", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def reference_monthly(
    instance_class: str, multi_az: bool, storage_gb: int, retention: int, interval: int, login_secrets: int = 4
) -> float:
    """The estimate written out by hand from the price table (a secret per password login role)."""
    deployment = "multi_az" if multi_az else "single_az"
    compute = PRICES["rds_postgresql_instance_hour"][instance_class][deployment] * HOURS
    storage = storage_gb * PRICES["gp3_storage_gb_month"][deployment]
    backups = storage_gb * 0.05 * retention * PRICES["backup_storage_gb_month"]
    monitoring = (HOURS * 3600 / interval * 2.0 / 1024**2 * 0.50) if interval else 0.0
    logs = 0.5 * PRICES["cloudwatch_logs_ingested_gb"]
    secrets = (1 + login_secrets) * PRICES["secrets_manager_secret_month"]
    tunnel_host = PRICES["ec2_instance_hour"]["t4g.nano"] * HOURS + 8 * PRICES["ebs_gp3_gb_month"]
    alarms = (7 if instance_class.startswith("db.t") else 6) * 0.10  # CPU credits on burstable classes
    return compute + storage + backups + monitoring + logs + secrets + tunnel_host + alarms


def test_dev_estimate(dev_run: ProgramRun) -> None:
    estimate = cost.estimate(dev_run)
    assert estimate.monthly_usd == pytest.approx(reference_monthly("db.t3.micro", False, 20, 7, 0), abs=0.02)
    assert estimate.budget_usd == 30
    assert estimate.within_budget


def test_prod_estimate_counts_multi_az_twice(prod_run: ProgramRun) -> None:
    estimate = cost.estimate(prod_run)
    assert estimate.monthly_usd == pytest.approx(reference_monthly("db.t3.small", True, 20, 14, 60), abs=0.03)
    instance = next(line for line in estimate.lines if line.item == "temporaldb-prod instance")
    assert instance.monthly_usd == pytest.approx(
        2 * PRICES["rds_postgresql_instance_hour"]["db.t3.small"]["single_az"] * HOURS
    )
    storage = next(line for line in estimate.lines if line.item == "temporaldb-prod storage")
    assert storage.at_ceiling_usd == pytest.approx(500 * PRICES["gp3_storage_gb_month"]["multi_az"])
    assert estimate.within_budget


def test_tunnel_path_is_priced_and_optional(project_root: Path) -> None:
    base = cost.estimate(run_program(project_root, "dev"))
    without = cost.estimate(run_program(project_root, "dev", {"temporaldb:tunnel": "false"}))
    host = 0.0042 * 730 + 8 * 0.08  # t4g.nano on demand, 8 GiB gp3 (the AWS price pages)
    assert base.monthly_usd - without.monthly_usd == pytest.approx(host, abs=0.01)
    [endpoint] = [line for line in base.lines if line.item.endswith("-tunnel-endpoint")]
    assert endpoint.monthly_usd == 0.0
    assert "no charge" in endpoint.detail


def test_plan_dev_prints_resources_cost_and_verdict(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = plan(capsys, "--stack", "dev")
    assert code == EXIT_OK
    assert "db.t3.micro, Single-AZ, postgres 17" in out
    assert "rds.force_ssl=1" in out
    assert "tcp 5432 from 10.42.0.0/16" in out
    assert "within budget" in out


def test_login_secrets_are_priced_and_iam_users_have_none(project_root: Path) -> None:
    run = run_program(project_root, "dev", {"temporaldb:iamAuthUsers": '["app", "analyst"]'})
    [line] = [line for line in cost.estimate(run).lines if line.item == "Login secrets"]
    assert line.monthly_usd == pytest.approx(2 * PRICES["secrets_manager_secret_month"])
    unmanaged = run_program(project_root, "dev", {"temporaldb:manageDatabase": "false"})
    assert cost.estimate(unmanaged).monthly_usd == pytest.approx(
        reference_monthly("db.t3.micro", False, 20, 7, 0, login_secrets=0), abs=0.02
    )


def test_plan_shows_the_in_database_part(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = plan(capsys, "--stack", "dev")
    assert code == EXIT_OK
    assert "temporaldb_admin@localhost:5432/postgres, sslmode require, superuser no" in out
    assert "temporaldb_admin@localhost:5432/nba_temporal, sslmode require, superuser no" in out
    assert "database nba_temporal" in out
    assert "login, member of temporal_reader, password, at most 40 connections, statement timeout 5000 ms" in out
    assert "statement timeout 3600000 ms" in out
    assert "nothing (revoke all) on database nba_temporal to public" in out
    assert "SELECT on every table in nba to temporal_reader" in out
    assert "future functions of temporal_migrator anywhere in the database: nothing (revoke all) to public" in out
    assert "MigratedSchema temporaldb-dev-access-nba-schema" in out
    assert "checksums pinned) as migrator@localhost:5432/nba_temporal" in out
    assert "secret string [secret]" in out
    assert "MOCK-" not in out
    assert "Login secrets" in out


def test_plan_json_masks_secrets(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = plan(capsys, "--stack", "prod", "--json")
    assert code == EXIT_OK
    assert "MOCK-" not in out
    [document] = json.loads(out)
    [server] = [r for r in document["resources"] if r["name"] == "temporaldb-prod-access-server"]
    assert server["inputs"]["password"] == "[secret]"
    assert document["outputs"]["databases"] == ["nba_temporal"]


def test_plan_json_is_machine_readable(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = plan(capsys, "--stack", "dev", "--stack", "prod", "--json")
    assert code == EXIT_OK
    documents = json.loads(out)
    assert [d["stack"] for d in documents] == ["dev", "prod"]
    for document in documents:
        assert document["cost"]["within_budget"] is True
        assert document["cost"]["monthly_usd"] < document["cost"]["budget_usd"]
        types = {r["type"] for r in document["resources"]}
        assert "aws:rds/instance:Instance" in types
    prod = documents[1]
    [instance] = [r for r in prod["resources"] if r["type"] == "aws:rds/instance:Instance"]
    assert instance["protect"] is True
    assert instance["inputs"]["multiAz"] is True


def test_budget_breach_exits_one(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = plan(capsys, "--stack", "dev", "--set", "monthlyBudgetUsd=10")
    assert code == EXIT_OVER_BUDGET
    assert "OVER budget" in out
    assert "dev: estimate" in err
    assert "exceeds the budget of 10.00" in err


def test_bigger_class_breaches_the_budget(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = plan(capsys, "--stack", "prod", "--set", "temporaldb:instanceClass=db.r5.xlarge")
    assert code == EXIT_OVER_BUDGET
    assert "prod: estimate" in err


def test_unknown_price_is_an_error_not_a_guess(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = plan(capsys, "--stack", "dev", "--set", "instanceClass=db.r7g.large")
    assert code == EXIT_USAGE
    assert out == ""
    assert "no us-east-1 price for db.r7g.large" in err


def test_unknown_region_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = plan(capsys, "--stack", "dev", "--set", "aws:region=eu-west-3")
    assert code == EXIT_USAGE
    assert "no prices for region 'eu-west-3'" in err


def test_bad_setting_names_key_and_file(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = plan(capsys, "--stack", "prod", "--set", "publiclyAccessible=true", "--set", "backupRetentionDays=0")
    assert code == EXIT_USAGE
    assert "Pulumi.prod.yaml: 2 invalid settings" in err
    assert "temporaldb:publiclyAccessible = true" in err
    assert "temporaldb:backupRetentionDays = 0" in err


def test_unknown_stack_lists_the_known_ones(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = plan(capsys, "--stack", "staging")
    assert code == EXIT_USAGE
    assert "no Pulumi.staging.yaml" in err
    assert "stacks: dev, prod" in err


def test_bad_override_syntax_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["plan", "--set", "instanceClass"])
    assert caught.value.code == 2
    assert "is not KEY=VALUE" in capsys.readouterr().err


def test_installed_command_runs_from_a_subfolder(project_root: Path) -> None:
    """The console script a user runs, from inside the project, with no AWS or Pulumi environment."""
    command = Path(sys.executable).with_name("temporaldb")
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PULUMI_"))}
    result = subprocess.run(
        [str(command), "plan", "--stack", "dev", "--json"],
        cwd=project_root / "tests",
        env=environment,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == EXIT_OK, result.stderr
    [document] = json.loads(result.stdout)
    assert document["outputs"]["instanceIdentifier"] == "temporaldb-dev"


def test_plan_shows_the_programs_warnings(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PULUMI_RUN_PROGRAM", raising=False)
    code, _, err = plan(capsys, "--stack", "dev")
    assert code == EXIT_OK
    assert "temporaldb plan: dev: the program warns (as pulumi up would): PULUMI_RUN_PROGRAM is not set" in err
