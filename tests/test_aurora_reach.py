"""Reaching an Aurora stack from the CLI, against the AWS emulator: the writer endpoint for writes, the reader
endpoint for the reader group's logins (asof, panel, plot, `--role analyst`) when the cluster has readers."""

from __future__ import annotations

import json
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from psycopg.conninfo import conninfo_to_dict

from temporaldb import deployed
from temporaldb.cli import EXIT_NOT_DEPLOYED, EXIT_OK, EXIT_USAGE, main
from tests import drill_fixtures

PROJECT_ROOT = Path(__file__).resolve().parent.parent
REGION = drill_fixtures.REGION
STACKS = ("aur", "solo", "twins")
ROLES = ("migrator", "etl", "analyst", "app")


def _client(endpoint: str, service: str) -> Any:
    return boto3.client(
        service, endpoint_url=endpoint, region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing"
    )


def _tags(stack: str, **more: str) -> list[dict[str, str]]:
    tags = {"project": "temporaldb", "stack": f"temporaldb-{stack}", "costCenter": "sports-analytics", **more}
    return [{"Key": key, "Value": value} for key, value in tags.items()]


def _cluster(endpoint: str, identifier: str, stack: str, readers: int, **tags: str) -> dict[str, str]:
    """A cluster as components/aurora.py makes it (tags, IAM auth, writer first); its two endpoints."""
    rds = _client(endpoint, "rds")
    rds.create_db_cluster(
        DBClusterIdentifier=identifier,
        Engine="aurora-postgresql",
        EngineVersion="17.4",
        MasterUsername="temporaldb_admin",
        ManageMasterUserPassword=True,
        EnableIAMDatabaseAuthentication=True,
        ServerlessV2ScalingConfiguration={"MinCapacity": 0, "MaxCapacity": 4},
        Tags=_tags(stack, **tags),
    )
    for role in ["writer", *(f"reader-{n}" for n in range(1, readers + 1))]:
        rds.create_db_instance(
            DBInstanceIdentifier=f"{identifier}-{role}",
            DBClusterIdentifier=identifier,
            Engine="aurora-postgresql",
            DBInstanceClass="db.serverless",
            CACertificateIdentifier="rds-ca-rsa2048-g1",
            Tags=_tags(stack, **tags),
        )
    [described] = rds.describe_db_clusters(DBClusterIdentifier=identifier)["DBClusters"]
    return {"writer": str(described["Endpoint"]), "reader": str(described["ReaderEndpoint"])}


def _login_secrets(endpoint: str, stack: str, host: str) -> None:
    for role in ROLES:
        value = {"engine": "postgres", "host": host, "port": 5432, "username": role, "password": "not-used"}
        _client(endpoint, "secretsmanager").create_secret(
            Name=f"temporaldb-{stack}/{role}-{secrets.token_hex(4)}", SecretString=json.dumps(value)
        )


def _tunnel_host(endpoint: str, stack: str) -> None:
    _client(endpoint, "ec2").run_instances(
        ImageId="ami-12c6146b",
        MinCount=1,
        MaxCount=1,
        InstanceType="t4g.nano",
        TagSpecifications=[{"ResourceType": "instance", "Tags": _tags(stack, **{"temporaldb:purpose": "tunnel"})}],
    )


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("aurora") / "project"
    folder.mkdir()
    shutil.copy(PROJECT_ROOT / "Pulumi.yaml", folder / "Pulumi.yaml")
    for stack in STACKS:
        config = {"aws:region": REGION, "temporaldb:engine": "aurora", "temporaldb:sports": ["nba"]}
        (folder / f"Pulumi.{stack}.yaml").write_text(json.dumps({"config": config}), encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def endpoints(emulator: str) -> Iterator[dict[str, dict[str, str]]]:
    drill_fixtures.reset(emulator)
    found = {
        "aur": _cluster(emulator, "temporaldb-aur", "aur", readers=2),
        "solo": _cluster(emulator, "temporaldb-solo", "solo", readers=0),
    }
    # A restore drill's copy carries the stack's tags and its own drill tag: never the stack's cluster.
    _cluster(emulator, "temporaldb-aur-restore-1", "aur", readers=0, **{"temporaldb:drill": "run-1"})
    _cluster(emulator, "temporaldb-twins-a", "twins", readers=0)
    _cluster(emulator, "temporaldb-twins-b", "twins", readers=0)
    for stack in ("aur", "solo"):
        _login_secrets(emulator, stack, found[stack]["writer"])
    _tunnel_host(emulator, "aur")
    _tunnel_host(emulator, "solo")
    yield found
    drill_fixtures.reset(emulator)


@pytest.fixture(autouse=True)
def credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    drill_fixtures.set_credentials(monkeypatch)


def locate(project: Path, emulator: str, stack: str, role: str) -> deployed.Login:
    request = deployed.StackRequest(stack=stack, role=role, project_root=project, endpoint_url=emulator)
    login, _ = deployed.locate(request)
    return login


@pytest.mark.parametrize(
    ("role", "endpoint"), [("analyst", "reader"), ("app", "reader"), ("etl", "writer"), ("migrator", "writer")]
)
def test_reads_go_to_the_reader_endpoint_writes_to_the_writer(
    project: Path, emulator: str, endpoints: dict[str, dict[str, str]], role: str, endpoint: str
) -> None:
    login = locate(project, emulator, "aur", role)
    assert login.instance.address == endpoints["aur"][endpoint]
    assert login.instance.endpoint == f"{endpoint} endpoint"
    assert login.instance.identifier == "temporaldb-aur"
    assert login.instance.iam_auth
    assert login.instance.ca_identifier == "rds-ca-rsa2048-g1", "the writer's certificate authority"
    assert login.describe().startswith(f"stack aur: temporaldb-aur {endpoint} endpoint (available) at ")


def test_without_readers_every_login_goes_to_the_writer(
    project: Path, emulator: str, endpoints: dict[str, dict[str, str]]
) -> None:
    login = locate(project, emulator, "solo", "analyst")
    assert (login.instance.address, login.instance.endpoint) == (endpoints["solo"]["writer"], "writer endpoint")


def test_dsn_of_the_analyst_names_the_reader_endpoint(
    capsys: pytest.CaptureFixture[str], project: Path, emulator: str, endpoints: dict[str, dict[str, str]]
) -> None:
    common = ["--stack", "aur", "--project-dir", str(project), "--endpoint-url", emulator]
    assert main(["dsn", *common]) == EXIT_OK
    reader = conninfo_to_dict(capsys.readouterr().out.strip())
    assert (reader["host"], reader["user"]) == (endpoints["aur"]["reader"], "analyst")
    assert reader["connect_timeout"] == "60", "long enough for a paused instance to resume"
    assert main(["dsn", *common, "--role", "etl"]) == EXIT_OK
    assert conninfo_to_dict(capsys.readouterr().out.strip())["host"] == endpoints["aur"]["writer"]


def test_two_clusters_with_the_stack_tags_are_refused(
    capsys: pytest.CaptureFixture[str], project: Path, emulator: str, endpoints: dict[str, dict[str, str]]
) -> None:
    assert endpoints
    code = main(["dsn", "--stack", "twins", "--project-dir", str(project), "--endpoint-url", emulator])
    assert code == EXIT_NOT_DEPLOYED
    assert "2 Aurora clusters tagged project=temporaldb, stack=temporaldb-twins" in capsys.readouterr().err


def test_the_tunnel_forwards_to_the_writer_or_with_reader_to_the_readers(
    capsys: pytest.CaptureFixture[str], project: Path, emulator: str, endpoints: dict[str, dict[str, str]]
) -> None:
    common = ["tunnel", "--stack", "aur", "--project-dir", str(project), "--endpoint-url", emulator, "--print"]
    assert main(common) == EXIT_OK
    assert f"5432:{endpoints['aur']['writer']}:5432" in capsys.readouterr().out
    assert main([*common, "--reader", "--local-port", "5433"]) == EXIT_OK
    assert f"5433:{endpoints['aur']['reader']}:5432" in capsys.readouterr().out
    solo = ["tunnel", "--stack", "solo", "--project-dir", str(project), "--endpoint-url", emulator, "--print"]
    assert main([*solo, "--reader"]) == EXIT_USAGE
    assert "has no reader endpoint to forward to" in capsys.readouterr().err
