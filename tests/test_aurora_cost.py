"""`temporaldb plan` of Aurora stacks: the cost lines against figures worked out by hand from the price table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from temporaldb import cost
from temporaldb.cli import EXIT_OK, EXIT_OVER_BUDGET, EXIT_USAGE, main
from temporaldb.cost import CostEstimate, CostLine
from temporaldb.preview import run_program

PRICES = cost.load_prices()
TABLE = PRICES["regions"]["us-east-1"]
AURORA = TABLE["aurora_postgresql"]
ASSUMED = PRICES["assumptions"]
HOURS = 730
PAUSED_DEV = {"temporaldb:engine": "aurora", "temporaldb:auroraMinAcu": "0"}
PROD_ONE_READER = {"temporaldb:engine": "aurora", "temporaldb:auroraReaders": "1"}


def line(estimate: CostEstimate, item: str) -> CostLine:
    [found] = [entry for entry in estimate.lines if entry.item == item]
    return found


def shared_lines(alarms: int, retention: int) -> float:
    """What an Aurora stack pays besides capacity and I/O: volume, backups, logs, secrets, tunnel, alarms."""
    volume = ASSUMED["aurora_volume_gib"]
    storage = volume * AURORA["storage_gb_month"]["standard"]
    backups = round(volume * ASSUMED["backup_daily_change_fraction"] * retention * AURORA["backup_storage_gb_month"], 2)
    logs = ASSUMED["postgresql_log_gb_month"] * TABLE["cloudwatch_logs_ingested_gb"]
    secrets = (1 + 4) * TABLE["secrets_manager_secret_month"]  # the master secret and four login secrets
    tunnel = TABLE["ec2_instance_hour"]["t4g.nano"] * HOURS + 8 * TABLE["ebs_gp3_gb_month"]
    return storage + backups + logs + secrets + round(tunnel, 2) + alarms * TABLE["cloudwatch_alarm_month"]


def test_a_paused_dev_cluster_lands_under_the_dev_budget(project_root: Path) -> None:
    estimate = cost.estimate(run_program(project_root, "dev", PAUSED_DEV))
    acu_hour = AURORA["serverless_v2_acu_hour"]["standard"]
    # By hand: 1 ACU x 120 running hours x $0.12 = $14.40 of capacity; 0.05 M I/O x 120 h x $0.20 = $1.20;
    # 5 GiB x $0.10 = $0.50 of volume; the rest as on the instance stack, with 5 alarms (writer 4, volume 1).
    capacity = 1 * 120 * acu_hour
    io = 0.05 * 120 * AURORA["io_million_requests"]["standard"]
    assert capacity == pytest.approx(14.40)
    writer = line(estimate, "temporaldb-dev-writer capacity")
    assert writer.monthly_usd == pytest.approx(capacity)
    assert writer.at_minimum_usd == 0.0, "paused all month, capacity costs nothing"
    assert writer.at_ceiling_usd == pytest.approx(4 * HOURS * acu_hour)
    assert "paused (0 ACU, not billed) the other 610 h" in writer.detail
    assert line(estimate, "temporaldb-dev I/O").monthly_usd == pytest.approx(io)
    assert line(estimate, "temporaldb-dev I/O").at_minimum_usd == 0.0
    expected = capacity + io + shared_lines(alarms=5, retention=7)
    assert estimate.monthly_usd == pytest.approx(expected, abs=0.02)
    assert estimate.at_minimum_usd == pytest.approx(expected - capacity - io, abs=0.02)
    assert estimate.budget_usd == 30
    assert estimate.within_budget
    [note] = estimate.notes
    assert note.startswith("temporaldb-dev pauses when idle (auroraMinAcu 0)")
    assert "about 15 s" in note


def test_prod_prices_each_instance_all_month(project_root: Path) -> None:
    estimate = cost.estimate(run_program(project_root, "prod", PROD_ONE_READER))
    acu_hour = AURORA["serverless_v2_acu_hour"]["standard"]
    per_instance = 1 * HOURS * acu_hour  # $87.60: a minimum of 0.5 ACU never pauses
    monitoring = HOURS * 3600 / 60 * ASSUMED["enhanced_monitoring_kb_per_sample"] / 1024**2 * 0.5
    for role in ("writer", "reader-1"):
        capacity = line(estimate, f"temporaldb-prod-{role} capacity")
        assert capacity.monthly_usd == pytest.approx(per_instance)
        assert capacity.at_minimum_usd == pytest.approx(0.5 * HOURS * acu_hour)
        assert capacity.at_ceiling_usd == pytest.approx(4 * HOURS * acu_hour)
        assert line(estimate, f"temporaldb-prod-{role} Enhanced Monitoring").monthly_usd == round(monitoring, 2)
    io = 0.05 * HOURS * AURORA["io_million_requests"]["standard"]
    assert line(estimate, "temporaldb-prod I/O").monthly_usd == pytest.approx(io)
    # 10 alarms: four per instance, replica lag on the reader, the volume.
    expected = 2 * per_instance + 2 * round(monitoring, 2) + io + shared_lines(alarms=10, retention=14)
    assert estimate.monthly_usd == pytest.approx(expected, abs=0.02)
    # The volume alarm sits at a quarter of the $120 budget: 300 GiB, priced at ceiling.
    assert line(estimate, "temporaldb-prod storage").at_ceiling_usd == pytest.approx(300 * 0.10)
    assert not estimate.within_budget, "two instances at 1 ACU all month cost more than the instance stack's budget"
    assert estimate.notes == ()


def test_io_optimized_trades_io_for_dearer_capacity_and_storage(project_root: Path) -> None:
    run = run_program(project_root, "dev", {**PAUSED_DEV, "temporaldb:auroraStorage": "io-optimized"})
    estimate = cost.estimate(run)
    assert line(estimate, "temporaldb-dev-writer capacity").monthly_usd == pytest.approx(
        120 * AURORA["serverless_v2_acu_hour"]["io_optimized"]
    )
    assert line(estimate, "temporaldb-dev storage").monthly_usd == pytest.approx(
        5 * AURORA["storage_gb_month"]["io_optimized"], abs=0.005
    )
    io = line(estimate, "temporaldb-dev I/O")
    assert (io.monthly_usd, io.at_ceiling_usd, io.detail) == (0.0, 0.0, "included in Aurora I/O-Optimized")


def test_the_stacks_usage_assumptions_drive_the_estimate(project_root: Path) -> None:
    busier = {**PAUSED_DEV, "temporaldb:auroraExpectedAcu": "2", "temporaldb:auroraActiveHoursPerMonth": "60"}
    estimate = cost.estimate(run_program(project_root, "dev", busier))
    writer = line(estimate, "temporaldb-dev-writer capacity")
    assert writer.monthly_usd == pytest.approx(2 * 60 * AURORA["serverless_v2_acu_hour"]["standard"])
    assert "~2 ACU x 60 h" in writer.detail
    never_pauses = cost.estimate(run_program(project_root, "dev", {"temporaldb:engine": "aurora"}))
    assert "730 h" in line(never_pauses, "temporaldb-dev-writer capacity").detail
    assert never_pauses.notes == ()


def test_acceptance_plan_of_a_paused_dev_cluster(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["plan", "--stack", "dev", "--set", "engine=aurora", "--set", "auroraMinAcu=0"])
    out = capsys.readouterr().out
    assert code == EXIT_OK
    assert "temporaldb:database:AuroraCluster temporaldb-dev-aurora" in out
    assert "aurora-postgresql 17, Serverless v2 0-4 ACU, pauses after 300 s idle, storage Standard" in out
    assert "db.serverless writer in us-east-1a" in out
    assert "aurora-postgresql17: rds.force_ssl=1, ssl_min_protocol_version=TLSv1.2" in out
    assert "expected  at minimum  at ceiling  basis" in out
    assert "within budget" in out
    assert "note: temporaldb-dev pauses when idle" in out


def test_acceptance_plan_of_prod_with_a_reader(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["plan", "--stack", "prod", "--set", "engine=aurora", "--set", "auroraReaders=1"])
    captured = capsys.readouterr()
    assert code == EXIT_OVER_BUDGET
    assert "ClusterInstance temporaldb-prod-aurora-reader-1 [protected]" in captured.out
    assert "db.serverless reader, failover tier 1 in us-east-1b" in captured.out
    assert "temporaldb-prod-reader-1 capacity" in captured.out
    assert "OVER budget" in captured.out
    assert "temporaldb:maxAllocatedStorageGb = 500 does not apply to engine aurora" in captured.err


def test_plan_json_of_an_aurora_stack(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["plan", "--stack", "dev", "--set", "engine=aurora", "--set", "auroraMinAcu=0", "--json"])
    assert code == EXIT_OK
    [document] = json.loads(capsys.readouterr().out)
    assert document["cost"]["at_minimum_usd"] < document["cost"]["monthly_usd"] < document["cost"]["at_ceiling_usd"]
    assert document["outputs"]["readerEndpoint"].startswith("temporaldb-dev.cluster-ro-")
    assert len(document["cost"]["notes"]) == 1


def test_instance_plans_keep_their_two_columns(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "--stack", "dev"]) == EXIT_OK
    out = capsys.readouterr().out
    assert "expected  at ceiling  basis" in out
    assert "at minimum" not in out


def test_an_unpriced_region_is_refused_by_the_plan_and_warned_about_by_the_program(
    project_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = run_program(project_root, "dev", {**PAUSED_DEV, "aws:region": "eu-west-3"})
    assert any("the cluster volume alarm uses us-east-1 (no eu-west-3 figure" in w for w in run.warnings)
    code = main(["plan", "--stack", "dev", "--set", "engine=aurora", "--set", "aws:region=eu-west-3"])
    assert code == EXIT_USAGE
    assert "no prices for region 'eu-west-3'" in capsys.readouterr().err
