"""`temporaldb tunnel --stack NAME` against the AWS emulator over HTTP: finds host and instance, runs the forward."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from temporaldb.cli import main
from temporaldb.tunnel import EXIT_NO_AWS_CLI
from tests import drill_fixtures

PROJECT_ROOT = Path(__file__).resolve().parent.parent
REGION = drill_fixtures.REGION
CLI = (sys.executable, "-m", "temporaldb.cli")


def _client(endpoint: str, service: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def _tags(stack: str, **more: str) -> list[dict[str, str]]:
    tags = {"project": "temporaldb", "stack": f"temporaldb-{stack}", **more}
    return [{"Key": key, "Value": value} for key, value in tags.items()]


def _tunnel_host(endpoint: str, stack: str) -> str:
    """A host as components/tunnel.py tags it."""
    reservation = _client(endpoint, "ec2").run_instances(
        ImageId="ami-12c6146b",
        MinCount=1,
        MaxCount=1,
        InstanceType="t4g.nano",
        TagSpecifications=[{"ResourceType": "instance", "Tags": _tags(stack, **{"temporaldb:purpose": "tunnel"})}],
    )
    return str(reservation["Instances"][0]["InstanceId"])


def _instance(endpoint: str, stack: str) -> str:
    _client(endpoint, "rds").create_db_instance(
        DBInstanceIdentifier=f"temporaldb-{stack}",
        Engine="postgres",
        DBInstanceClass="db.t3.micro",
        AllocatedStorage=20,
        MasterUsername="temporaldb_admin",
        MasterUserPassword="not-used-here",
        Tags=_tags(stack),
    )
    described = _client(endpoint, "rds").describe_db_instances(DBInstanceIdentifier=f"temporaldb-{stack}")
    return str(described["DBInstances"][0]["Endpoint"]["Address"])


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("tunnel") / "project"
    folder.mkdir()
    shutil.copy(PROJECT_ROOT / "Pulumi.yaml", folder / "Pulumi.yaml")
    for stack in ("dev", "bare"):
        (folder / f"Pulumi.{stack}.yaml").write_text(json.dumps({"config": {"aws:region": REGION}}))
    return folder


@pytest.fixture(scope="module")
def deployed_stack(emulator: str) -> Iterator[tuple[str, str]]:
    drill_fixtures.reset(emulator)
    address = _instance(emulator, "dev")
    host = _tunnel_host(emulator, "dev")
    _tunnel_host(emulator, "other")  # another stack's host: never chosen
    _instance(emulator, "bare")  # a stack deployed with tunnel: false
    yield address, host
    drill_fixtures.reset(emulator)


@pytest.fixture(autouse=True)
def credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    drill_fixtures.set_credentials(monkeypatch)


def tunnel(capsys: pytest.CaptureFixture[str], project: Path, emulator: str, *args: str) -> tuple[int, str, str]:
    code = main(["tunnel", "--project-dir", str(project), "--endpoint-url", emulator, *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_print_gives_the_ssh_forward_through_the_endpoint(
    capsys: pytest.CaptureFixture[str], project: Path, emulator: str, deployed_stack: tuple[str, str]
) -> None:
    address, host = deployed_stack
    code, out, _ = tunnel(capsys, project, emulator, "--stack", "dev", "--print", "--local-port", "15432")
    assert code == 0
    words = out.split()
    assert words[:3] == ["aws", "ec2-instance-connect", "ssh"]
    options = dict(zip(words[3::2], words[4::2], strict=True))
    assert options == {
        "--instance-id": host,
        "--os-user": "ec2-user",
        "--connection-type": "eice",
        "--local-forwarding": f"15432:{address}:5432",
        "--region": REGION,
    }


def test_address_forwards_to_another_server_of_the_stack(
    capsys: pytest.CaptureFixture[str], project: Path, emulator: str, deployed_stack: tuple[str, str]
) -> None:
    copy = "temporaldb-dev-restore-1.c0ffee.us-east-1.rds.amazonaws.com"
    code, out, _ = tunnel(capsys, project, emulator, "--stack", "dev", "--print", "--address", copy)
    assert code == 0
    assert f"--local-forwarding 5432:{copy}:5432" in out
    assert f"--instance-id {deployed_stack[1]}" in out


@pytest.mark.usefixtures("deployed_stack")
def test_a_stack_without_a_tunnel_host_says_so(
    capsys: pytest.CaptureFixture[str], project: Path, emulator: str
) -> None:
    code, _, err = tunnel(capsys, project, emulator, "--stack", "bare", "--print")
    assert code == 5
    assert "no running tunnel host tagged stack=temporaldb-bare" in err
    assert "tunnel: true" in err
    assert len(err.strip().splitlines()) == 1


def test_without_the_aws_cli_it_says_what_to_install_and_what_to_run(
    capsys: pytest.CaptureFixture[str],
    project: Path,
    emulator: str,
    deployed_stack: tuple[str, str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    code, _, err = tunnel(capsys, project, emulator, "--stack", "dev")
    assert code == EXIT_NO_AWS_CLI
    assert "AWS CLI v2" in err
    assert f"--instance-id {deployed_stack[1]}" in err


def test_it_runs_the_aws_cli_with_that_command(
    project: Path, emulator: str, deployed_stack: tuple[str, str], tmp_path: Path
) -> None:
    """The real exec, in a child process: a stand-in `aws` records what it was given."""
    record = tmp_path / "argv.json"
    fake = tmp_path / "bin" / "aws"
    fake.parent.mkdir()
    fake.write_text(f"#!{sys.executable}\nimport json, sys\njson.dump(sys.argv[1:], open({str(record)!r}, 'w'))\n")
    fake.chmod(0o755)
    environment = {**os.environ, "PATH": f"{fake.parent}{os.pathsep}{os.environ['PATH']}"}
    environment.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
    finished = subprocess.run(
        [*CLI, "tunnel", "--stack", "dev", "--project-dir", str(project), "--endpoint-url", emulator],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert finished.returncode == 0, finished.stderr
    assert "leave this open" in finished.stderr
    argv = json.loads(record.read_text())
    assert argv[:2] == ["ec2-instance-connect", "ssh"]
    assert argv[argv.index("--local-forwarding") + 1] == f"5432:{deployed_stack[0]}:5432"


def test_a_stack_file_with_an_encrypted_value_still_names_its_region(tmp_path: Path) -> None:
    from temporaldb import deployed
    from temporaldb.stackconfig import ProjectFiles, StackConfigError, load_stack_config

    shutil.copy(PROJECT_ROOT / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    config = {"aws:region": "eu-west-1", "temporaldb:alarmEmail": {"secure": "v1:c2VjcmV0"}}
    (tmp_path / "Pulumi.team.yaml").write_text(json.dumps({"config": config}))
    with pytest.raises(StackConfigError, match="alarmEmail is encrypted"):
        load_stack_config(ProjectFiles(tmp_path), "team")  # the offline plan cannot do without it
    assert deployed.read_stack_file(tmp_path, "team").region == "eu-west-1"
