"""What the RDS drill tests share: an AWS emulator (moto over HTTP), a stack as Pulumi leaves it, league servers.

Plain functions and context managers, not fixtures: each test module wraps them in fixtures of the scope it needs.
The emulator's endpoints do not exist, so SQL goes to real PostgreSQL servers holding the role model and a small
league, reached through `--db-host`/`--copy-db-host` (Unix socket folders) as SSM tunnels would be.
"""

from __future__ import annotations

import contextlib
import json
import os
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from psycopg.conninfo import make_conninfo

from temporaldb.bootstrap import bootstrap
from temporaldb.feeds.bench import s3_emulator
from temporaldb.load import load_directory
from tests.nbadata import write_league
from tests.pgservers import ThrowawayServer, start_throwaway_server
from tests.test_load import HAND_MADE

REGION = "us-east-1"
SOURCE = "temporaldb-dev"
MASTER_USER = "temporaldb_admin"
STACK_TAGS = [
    {"Key": "project", "Value": "temporaldb"},
    {"Key": "stack", "Value": "temporaldb-dev"},
    {"Key": "costCenter", "Value": "sports-analytics"},
]
VOLATILE = ("LatestRestorableTime",)  # moto answers "now"


# One moto server helper for the tests and the import benchmark.
emulator = s3_emulator
"""moto's server on a free local port; its endpoint URL."""


def reset(endpoint: str) -> None:
    """Forget every resource the emulator holds (its state outlives clients)."""
    request = urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")
    with urllib.request.urlopen(request, timeout=10) as answer:
        answer.read()


def set_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)


def league_server(base: Path, major: int = 18) -> ThrowawayServer:
    """A real PostgreSQL with the role model and a small league loaded as etl."""
    server = start_throwaway_server(major, base)
    try:
        bootstrap(server.dsn, ["nba"])
        etl = make_conninfo(server.dsn, dbname="nba_temporal", user="etl")
        load_directory(etl, write_league(server.root_dir / "league", HAND_MADE))
    except BaseException:
        server.stop()
        raise
    return server


@dataclass
class Stack:
    endpoint: str
    rds: Any
    subnet_group: str
    security_group: str
    parameter_group: str
    secrets: dict[str, str] = field(default_factory=dict)
    """Login role -> secret name."""


def make_stack(
    endpoint: str,
    *,
    engine_version: str = "17.4",
    family: str = "postgres17",
    logins: Sequence[str] = ("analyst",),
    parameters: Sequence[tuple[str, str, str]] = (),
    managed_master_password: bool = False,
) -> Stack:
    """The dev stack's instance as Pulumi would leave it: subnet, security and parameter groups, tags, secrets.

    `parameters` (name, value, apply method) are set in the stack's parameter group; `logins` get a secret
    `temporaldb-dev/<role>-<suffix>` holding `{"username": role, "password": "pw-<role>"}`.
    """
    boto3.client("s3", endpoint_url=endpoint).list_buckets()  # the server answers
    ec2 = boto3.client("ec2", endpoint_url=endpoint)
    client = boto3.client("rds", endpoint_url=endpoint)
    vpc = ec2.create_vpc(CidrBlock="10.42.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.42.{n}.0/24", AvailabilityZone=f"{REGION}{zone}")["Subnet"][
            "SubnetId"
        ]
        for n, zone in ((0, "a"), (1, "b"))
    ]
    group = ec2.create_security_group(GroupName=f"db-{vpc}", Description="5432", VpcId=vpc)["GroupId"]
    client.create_db_subnet_group(
        DBSubnetGroupName=f"subnets-{vpc}", DBSubnetGroupDescription="stack", SubnetIds=subnets
    )
    client.create_db_parameter_group(
        DBParameterGroupName=f"params-{vpc}", DBParameterGroupFamily=family, Description="stack", Tags=STACK_TAGS
    )
    for start in range(0, len(parameters), 20):
        client.modify_db_parameter_group(
            DBParameterGroupName=f"params-{vpc}",
            Parameters=[
                {"ParameterName": name, "ParameterValue": value, "ApplyMethod": method}
                for name, value, method in parameters[start : start + 20]
            ],
        )
    password: dict[str, Any] = (
        {"ManageMasterUserPassword": True} if managed_master_password else {"MasterUserPassword": "not-used-here"}
    )
    client.create_db_instance(
        DBInstanceIdentifier=SOURCE,
        Engine="postgres",
        EngineVersion=engine_version,
        DBInstanceClass="db.t3.micro",
        AllocatedStorage=20,
        MasterUsername=MASTER_USER,
        DBSubnetGroupName=f"subnets-{vpc}",
        VpcSecurityGroupIds=[group],
        DBParameterGroupName=f"params-{vpc}",
        BackupRetentionPeriod=7,
        Tags=STACK_TAGS,
        **password,
    )
    secrets = boto3.client("secretsmanager", endpoint_url=endpoint)
    names = {}
    for role in logins:
        names[role] = f"temporaldb-dev/{role}-{vpc}"
        secrets.create_secret(Name=names[role], SecretString=json.dumps({"username": role, "password": f"pw-{role}"}))
    return Stack(endpoint, client, f"subnets-{vpc}", group, f"params-{vpc}", names)


def remove_stack(stack: Stack) -> None:
    """Delete the instances and the login secrets (the restore tests share one emulator state)."""
    for instance in stack.rds.describe_db_instances()["DBInstances"]:
        stack.rds.delete_db_instance(DBInstanceIdentifier=instance["DBInstanceIdentifier"], SkipFinalSnapshot=True)
    secrets = boto3.client("secretsmanager", endpoint_url=stack.endpoint)
    for name in stack.secrets.values():
        secrets.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)


def instances(client: Any) -> dict[str, dict[str, Any]]:
    """Every instance's description, without the fields that change by themselves."""
    return {
        i["DBInstanceIdentifier"]: {key: value for key, value in i.items() if key not in VOLATILE}
        for i in client.describe_db_instances()["DBInstances"]
    }


def processes_naming(folder: Path) -> dict[int, str]:
    """Live processes (but this one) whose command line names `folder`, by pid: a postmaster runs as `postgres -D`."""
    found = {}
    needle = os.fsencode(folder)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if needle in command:
            found[int(entry.name)] = command.replace(b"\0", b" ").decode(errors="replace")
    return found


@contextlib.contextmanager
def s3_bucket(endpoint: str, name: str) -> Iterator[Any]:
    """A bucket in the emulator and a client for it (test credentials); the emulator is emptied afterwards."""
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    client.create_bucket(Bucket=name)
    try:
        yield client
    finally:
        reset(endpoint)
