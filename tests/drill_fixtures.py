"""What the RDS drill tests share: an AWS emulator (moto over HTTP), a stack as Pulumi leaves it, league servers.

Plain functions and context managers, not fixtures: each test module wraps them in fixtures of the scope it needs.
The emulator's endpoints do not exist, so SQL goes to real PostgreSQL servers holding the role model and a small
league, reached through `--db-host`/`--copy-db-host` (Unix socket folders) as SSM tunnels would be.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import psycopg
import pytest
from botocore.awsrequest import AWSResponse
from psycopg.conninfo import make_conninfo

from temporaldb.bootstrap import bootstrap
from temporaldb.drills import rds
from temporaldb.drills.aws_restore import RestoreOptions, SqlAccess
from temporaldb.drills.aws_upgrade_options import Login, Logins, UpgradeAccess
from temporaldb.drills.report import DrillReport
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


@dataclass
class Servers:
    """What a restore drill's source and its copy resolve to (through `--db-host` and `--copy-db-host`, as tunnels
    would): two servers holding the same league."""

    source: ThrowawayServer
    copy: ThrowawayServer


@contextlib.contextmanager
def source_and_copy(factory: pytest.TempPathFactory) -> Iterator[Servers]:
    with contextlib.ExitStack() as stack:
        source = league_server(factory.mktemp("drill-source"))
        stack.callback(source.stop)
        copy = league_server(factory.mktemp("drill-copy"))
        stack.callback(copy.stop)
        yield Servers(source, copy)


def restore_args(endpoint: str, servers: Servers, *extra: str, stack: str = "dev") -> list[str]:
    """restore_drill.py's arguments against the emulator, SQL going to `servers`."""
    return [
        "--stack", stack, "--endpoint-url", endpoint, "--region", REGION,
        "--db-host", str(servers.source.root_dir), "--db-port", "5432",
        "--copy-db-host", str(servers.copy.root_dir), "--copy-db-port", "5432", "--poll-seconds", "0", *extra,
    ]  # fmt: skip


def main_with_hooks(main: Callable[[list[str]], int], argv: list[str], *hooks: Hook) -> int:
    """Run a drill script with botocore event hooks on every RDS client it makes (the calls still reach moto)."""
    original = boto3.session.Session.client

    def client(self: Any, service: str, *args: Any, **kwargs: Any) -> Any:
        made = original(self, service, *args, **kwargs)
        if service == "rds":
            for event, hook in hooks:
                made.meta.events.register(event, hook)
        return made

    patch = pytest.MonkeyPatch()
    patch.setattr(boto3.session.Session, "client", client)
    try:
        return main(argv)
    finally:
        patch.undo()


def like_rds(server: ThrowawayServer) -> None:
    """The master user as on RDS (not a superuser), and an `rdsadmin` database it may not enter."""
    with psycopg.connect(server.dsn, autocommit=True) as admin:
        admin.execute(f"create role {MASTER_USER} login createdb createrole")
        admin.execute(f"grant connect on database nba_temporal to {MASTER_USER}")
        admin.execute("create database rdsadmin")
        admin.execute("revoke connect on database rdsadmin from public")


@dataclass
class Copy:
    """An upgrade drill's copy as the tunnel shows it: `host` links to the 16 server, then (after the upgrade) the
    18 one, which holds the same role model and league."""

    before: ThrowawayServer
    after: ThrowawayServer
    host: Path

    def point_at(self, server: ThrowawayServer) -> None:
        scratch = self.host.with_name("next")
        scratch.unlink(missing_ok=True)
        scratch.symlink_to(server.root_dir)
        os.replace(scratch, self.host)

    def upgrade(self, http_response: AWSResponse, **_: Any) -> None:
        """A botocore after-call hook of the upgrade call: once AWS accepts, the copy runs PostgreSQL 18."""
        if http_response.status_code < 300:
            self.point_at(self.after)

    def dsn(self, server: ThrowawayServer) -> str:
        return server.dsn_for("nba_temporal")

    def access(self) -> UpgradeAccess:
        """The upgrade drill's logins on the copy, through the tunnel folder."""
        logins = Logins(Login("analyst", None), Login("migrator", None), Login(MASTER_USER, None))
        return UpgradeAccess(logins, copy_host=str(self.host), copy_port=5432)


@contextlib.contextmanager
def upgrade_servers(factory: pytest.TempPathFactory) -> Iterator[Copy]:
    """PostgreSQL 16 and 18 servers like RDS's, holding the same league: the copy before and after its upgrade."""
    with contextlib.ExitStack() as stack:
        before = league_server(factory.mktemp("copy-16"), major=16)
        stack.callback(before.stop)
        after = league_server(factory.mktemp("copy-18"), major=18)
        stack.callback(after.stop)
        for server in (before, after):
            like_rds(server)
        folder = Path(tempfile.mkdtemp(prefix="tdb-tunnel-"))  # short: socket paths are limited
        stack.callback(shutil.rmtree, folder, ignore_errors=True)
        yield Copy(before, after, folder / "copy")


Hook = tuple[str, Callable[..., Any]]


@dataclass
class Calls:
    """What a drill asked the emulator, captured by botocore hooks (the calls still reach moto)."""

    by_operation: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def __getitem__(self, operation: str) -> list[dict[str, Any]]:
        return self.by_operation.setdefault(operation, [])

    def recorders(self, operations: Sequence[str]) -> list[Hook]:
        """Hooks recording each of `operations`' parameters (API names: CreateDBInstance)."""

        def recorder(operation: str) -> Callable[..., None]:
            def record(params: dict[str, Any], **_: Any) -> None:
                self[operation].append(dict(params))

            return record

        return [(f"provide-client-params.rds.{operation}", recorder(operation)) for operation in operations]


@contextlib.contextmanager
def hooked(client: Any, hooks: Sequence[Hook]) -> Iterator[None]:
    """botocore event hooks on `client` for the duration."""
    for event, handler in hooks:
        client.meta.events.register(event, handler)
    try:
        yield
    finally:
        for event, handler in hooks:
            client.meta.events.unregister(event, handler)


def refuse(
    operation: str, code: str, message: str, when: Callable[[dict[str, Any]], bool] = lambda _: True
) -> list[Hook]:
    """Hooks making the emulator's client answer `operation` with AWS's error, as AWS would (moto accepts it)."""

    def remember(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["refuse"] = when(params)

    def answer(context: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        if not context.get("refuse"):
            return None
        error = {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": 400}}
        return AWSResponse("", 400, {}, None), error

    return [(f"provide-client-params.rds.{operation}", remember), (f"before-call.rds.{operation}", answer)]


def stop_at_verify(run: Callable[..., None], client: Any, servers: Servers, interruption: str) -> DrillReport:
    """Run a restore drill (aws_restore.run or aws_cluster_restore.run) on the dev stack, stopped in its verify stage
    by a row only the copy holds ("mismatch") or by Ctrl-C; its report, once the drill has raised."""
    admin = make_conninfo(servers.copy.dsn, dbname="nba_temporal")

    def say(message: str) -> None:
        if message != "[verify] started":
            return
        if interruption == "ctrl-c":
            raise KeyboardInterrupt
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute("insert into nba.teams (team_id, abbreviation, name) values (99, 'ZZ', 'Late')")

    report = DrillReport("restore", "aws", rds.new_run_id(), applied=True)
    options = RestoreOptions(stack="dev", poll_seconds=0)
    access = SqlAccess(
        "analyst", None, host=str(servers.source.root_dir), port=5432, copy_host=str(servers.copy.root_dir)
    )
    try:
        with pytest.raises(KeyboardInterrupt if interruption == "ctrl-c" else rds.RdsDrillError):
            run(client, options, access, report, say=say)
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute("delete from nba.teams where team_id = 99")
    return report


def plan_upgrade_by_script(
    monkeypatch: pytest.MonkeyPatch, engine: Any, catalog: Any, endpoint: str, folder: Path
) -> tuple[int, dict[str, Any]]:
    """`upgrade_drill.py --stack dev --target-version 18` (a dry run) with `engine`'s (aws_upgrade's or
    aws_cluster_upgrade's) EngineCatalog replaced by `catalog`: the exit code and the report."""
    from runbooks import upgrade_drill

    monkeypatch.setattr(engine, "EngineCatalog", lambda _client: catalog)
    argv = ["--stack", "dev", "--target-version", "18", "--endpoint-url", endpoint, "--region", REGION]
    code = upgrade_drill.main([*argv, "--report", str(folder / "u.json")])
    return code, json.loads((folder / "u.json").read_text())


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
    """The instance's parameter group; for an Aurora stack, the cluster parameter group."""
    secrets: dict[str, str] = field(default_factory=dict)
    """Login role -> secret name."""
    instance_parameter_group: str = ""
    """Aurora: the writer's (instance-level) parameter group."""


@dataclass(frozen=True)
class _Network:
    vpc: str
    subnet_group: str
    security_group: str


def _network(endpoint: str, client: Any) -> _Network:
    """A VPC with two subnets, a DB subnet group and a security group, as the program makes them."""
    boto3.client("s3", endpoint_url=endpoint).list_buckets()  # the server answers
    ec2 = boto3.client("ec2", endpoint_url=endpoint)
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
    return _Network(vpc, f"subnets-{vpc}", group)


def _set_parameters(modify: Any, group: dict[str, str], parameters: Sequence[tuple[str, str, str]]) -> None:
    """(name, value, apply method) into a parameter group, 20 a call as AWS takes them."""
    for start in range(0, len(parameters), 20):
        modify(
            **group,
            Parameters=[
                {"ParameterName": name, "ParameterValue": value, "ApplyMethod": method}
                for name, value, method in parameters[start : start + 20]
            ],
        )


def _login_secrets(endpoint: str, vpc: str, logins: Sequence[str]) -> dict[str, str]:
    """A secret `temporaldb-dev/<role>-<suffix>` holding `{"username": role, "password": "pw-<role>"}` per login."""
    secrets = boto3.client("secretsmanager", endpoint_url=endpoint)
    names = {}
    for role in logins:
        names[role] = f"temporaldb-dev/{role}-{vpc}"
        secrets.create_secret(Name=names[role], SecretString=json.dumps({"username": role, "password": f"pw-{role}"}))
    return names


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
    client = boto3.client("rds", endpoint_url=endpoint)
    network = _network(endpoint, client)
    vpc = network.vpc
    client.create_db_parameter_group(
        DBParameterGroupName=f"params-{vpc}", DBParameterGroupFamily=family, Description="stack", Tags=STACK_TAGS
    )
    _set_parameters(client.modify_db_parameter_group, {"DBParameterGroupName": f"params-{vpc}"}, parameters)
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
        DBSubnetGroupName=network.subnet_group,
        VpcSecurityGroupIds=[network.security_group],
        DBParameterGroupName=f"params-{vpc}",
        BackupRetentionPeriod=7,
        Tags=STACK_TAGS,
        **password,
    )
    names = _login_secrets(endpoint, vpc, logins)
    return Stack(endpoint, client, network.subnet_group, network.security_group, f"params-{vpc}", names)


SCALING = {"MinCapacity": 0.0, "MaxCapacity": 4.0, "SecondsUntilAutoPause": 600}
"""The dev stack's Serverless v2 scaling: it pauses after ten idle minutes."""


def make_cluster_stack(
    endpoint: str,
    *,
    engine_version: str = "17.4",
    family: str = "aurora-postgresql17",
    logins: Sequence[str] = ("analyst",),
    parameters: Sequence[tuple[str, str, str]] = (),
    readers: int = 0,
    custom_instance_group: bool = True,
) -> Stack:
    """The dev stack on Aurora PostgreSQL Serverless v2 as the program leaves it: a cluster tagged with the stack,
    its cluster parameter group (with `parameters`), subnet group, security group, RDS-managed master password,
    encryption and IAM auth; a writer `temporaldb-dev-writer` and `readers` readers `temporaldb-dev-reader-<n>`,
    all db.serverless with the stack's instance parameter group (or RDS's default one); and the login secrets."""
    client = boto3.client("rds", endpoint_url=endpoint)
    network = _network(endpoint, client)
    vpc = network.vpc
    cluster_group, instance_group = f"cluster-params-{vpc}", f"instance-params-{vpc}"
    client.create_db_cluster_parameter_group(
        DBClusterParameterGroupName=cluster_group, DBParameterGroupFamily=family, Description="stack", Tags=STACK_TAGS
    )
    _set_parameters(
        client.modify_db_cluster_parameter_group, {"DBClusterParameterGroupName": cluster_group}, parameters
    )
    if custom_instance_group:
        client.create_db_parameter_group(
            DBParameterGroupName=instance_group, DBParameterGroupFamily=family, Description="stack", Tags=STACK_TAGS
        )
    client.create_db_cluster(
        DBClusterIdentifier=SOURCE,
        Engine="aurora-postgresql",
        EngineVersion=engine_version,
        MasterUsername=MASTER_USER,
        ManageMasterUserPassword=True,
        DBSubnetGroupName=network.subnet_group,
        VpcSecurityGroupIds=[network.security_group],
        DBClusterParameterGroupName=cluster_group,
        ServerlessV2ScalingConfiguration=SCALING,
        StorageEncrypted=True,
        EnableIAMDatabaseAuthentication=True,
        BackupRetentionPeriod=7,
        Tags=STACK_TAGS,
    )
    for member in ["writer", *(f"reader-{n}" for n in range(1, readers + 1))]:
        client.create_db_instance(
            DBInstanceIdentifier=f"{SOURCE}-{member}",
            DBClusterIdentifier=SOURCE,
            Engine="aurora-postgresql",
            DBInstanceClass="db.serverless",
            **({"DBParameterGroupName": instance_group} if custom_instance_group else {}),
            Tags=STACK_TAGS,
        )
    names = _login_secrets(endpoint, vpc, logins)
    instance_group = instance_group if custom_instance_group else ""
    return Stack(endpoint, client, network.subnet_group, network.security_group, cluster_group, names, instance_group)


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


def clusters(client: Any) -> dict[str, dict[str, Any]]:
    """Every cluster's description, without the fields that change by themselves."""
    return {
        c["DBClusterIdentifier"]: {key: value for key, value in c.items() if key not in VOLATILE}
        for c in client.describe_db_clusters()["DBClusters"]
    }


def tagged_with(client: Any, run_id: str) -> list[str]:
    """Every instance and cluster carrying the drill tag of `run_id`: what a drill's teardown must leave none of."""
    found = [
        f"instance {i['DBInstanceIdentifier']}"
        for i in client.describe_db_instances()["DBInstances"]
        if rds.tags_of(i.get("TagList")).get(rds.DRILL_TAG) == run_id
    ]
    return found + [
        f"cluster {c['DBClusterIdentifier']}"
        for c in client.describe_db_clusters()["DBClusters"]
        if rds.tags_of(c.get("TagList")).get(rds.DRILL_TAG) == run_id
    ]


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
