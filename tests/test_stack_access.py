"""A deployed stack, for real: the first up, the tunnel, passwords, deletion order, alarms and network details.

Each test stands for something only a real `pulumi up` would show, checked
here on what the program registers under mocks (temporaldb/preview.py), whose
look-ups answer from a `LiveWorld`: whether the instance exists yet, whether
the tunnel is open, which CLI runs the program.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from pulumi.runtime.rpc import unwrap_rpc_secret

from infra import discovery
from infra.catalog import INSTANCE_CLASSES
from temporaldb import roles, scram
from temporaldb.bootstrap import bootstrap
from temporaldb.preview import MOCK_IMAGE_ID, MOCK_PASSWORD_PREFIX, LiveWorld, ProgramRun, Registration, run_program
from tests.pgservers import ThrowawayServer, available_majors, start_throwaway_server

GIB = 1024**3
POSTGRESQL_TYPES = ("pulumi:providers:postgresql", "postgresql:", "pulumi-python:dynamic")
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
EGRESS = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
ROLE = "postgresql:index/role:Role"
DATABASE = "postgresql:index/database:Database"


def in_database(run: ProgramRun) -> list[Registration]:
    return [r for r in run.resources if r.type.startswith(POSTGRESQL_TYPES)]


def named(run: ProgramRun, name: str) -> Registration:
    [found] = [r for r in run.resources if r.name == name]
    return found


# --- 3. the first `pulumi up` of a new stack, and the tunnel ---------------------------------------


@pytest.fixture(scope="module")
def first_up(project_root: Path) -> ProgramRun:
    return run_program(project_root, "dev", world=LiveWorld(instance_exists=False))


def test_first_up_creates_the_aws_part_and_defers_the_database_part(first_up: ProgramRun, dev_run: ProgramRun) -> None:
    assert not in_database(first_up), "nothing can reach PostgreSQL before the instance exists"
    assert first_up.one("aws:rds/instance:Instance").inputs["identifier"] == "temporaldb-dev"
    assert first_up.of_type("aws:ec2transitgateway/instanceConnectEndpoint:InstanceConnectEndpoint")
    # The same files, once the instance exists: the whole stack, and the AWS part unchanged.
    assert in_database(dev_run)
    inside = {dev_run.one("temporaldb:access:DatabaseAccess").urn}
    for resource in dev_run.resources:  # parents register before their children
        if resource.parent in inside:
            inside.add(resource.urn)
    assert {r.urn for r in dev_run.resources} - inside == {r.urn for r in first_up.resources}


def test_first_up_says_what_to_run_next(first_up: ProgramRun) -> None:
    [warning] = [w for w in first_up.warnings if "is new" in w]
    assert "temporaldb tunnel --stack dev" in warning
    assert "pulumi up" in warning
    assert first_up.outputs["nextStep"] == warning
    assert "databases" not in first_up.outputs


def test_closed_tunnel_stops_the_update_before_anything_is_registered(project_root: Path) -> None:
    import pulumi

    world = LiveWorld(tunnel_open=False)
    with pytest.raises(pulumi.RunError) as stopped:
        run_program(project_root, "dev", world=world)
    message = str(stopped.value)
    assert "localhost:5432" in message
    assert "temporaldb tunnel --stack dev" in message


def test_a_closed_tunnel_is_no_obstacle_without_the_database_part(project_root: Path) -> None:
    run = run_program(project_root, "dev", {"temporaldb:manageDatabase": "false"}, world=LiveWorld(tunnel_open=False))
    assert not in_database(run)
    assert run.of_type("aws:rds/instance:Instance")


def test_port_probe_tells_a_listener_from_a_closed_port() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        assert discovery.port_is_open("127.0.0.1", port)
    assert not discovery.port_is_open("127.0.0.1", port, timeout_seconds=0.5)


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_tunnel_path_lets_each_hop_reach_only_the_next(project_root: Path, stack: str) -> None:
    run = run_program(project_root, stack)
    prefix = f"temporaldb-{stack}"
    group_id = {name: f"{prefix}-{name}-id" for name in ("db-access-sg", "tunnel-endpoint-sg", "tunnel-host-sg")}

    def rules(kind: str, group: str) -> set[tuple[int, str]]:
        return {
            (int(r.inputs["fromPort"]), str(r.inputs.get("referencedSecurityGroupId") or r.inputs.get("cidrIpv4")))
            for r in run.of_type(kind)
            if r.inputs["securityGroupId"] == group_id[group]
        }

    assert rules(EGRESS, "tunnel-endpoint-sg") == {(22, group_id["tunnel-host-sg"])}
    assert rules(INGRESS, "tunnel-host-sg") == {(22, group_id["tunnel-endpoint-sg"])}
    assert rules(EGRESS, "tunnel-host-sg") == {(5432, group_id["db-access-sg"])}
    assert (5432, group_id["tunnel-host-sg"]) in rules(INGRESS, "db-access-sg")
    assert not rules(INGRESS, "tunnel-endpoint-sg")
    assert not rules(EGRESS, "db-access-sg")
    for group in run.of_type("aws:ec2/securityGroup:SecurityGroup"):
        inline_rules = [*group.inputs.get("ingress", []), *group.inputs.get("egress", [])]
        assert not inline_rules, f"{group.name} has inline rules"
    endpoint = named(run, f"{prefix}-tunnel-endpoint")
    host = named(run, f"{prefix}-tunnel-host")
    subnet_1 = f"{prefix}-network-subnet-1-id"
    assert endpoint.inputs["subnetId"] == subnet_1
    assert host.inputs["subnetId"] == subnet_1
    assert endpoint.inputs["preserveClientIp"] is False
    assert host.inputs["associatePublicIpAddress"] is False
    assert host.inputs["metadataOptions"]["httpTokens"] == "required"
    assert host.inputs["rootBlockDevice"]["encrypted"] is True
    assert host.inputs["ami"] == MOCK_IMAGE_ID
    assert "keyName" not in host.inputs, "keys are pushed per session by EC2 Instance Connect"
    assert run.outputs["tunnelHostId"] == f"{prefix}-tunnel-host-id"


def test_tunnel_false_leaves_no_way_in(project_root: Path) -> None:
    run = run_program(project_root, "dev", {"temporaldb:tunnel": "false"})
    assert not [r for r in run.resources if "-tunnel-" in r.name or r.name.endswith("-tunnel")]
    assert all("referencedSecurityGroupId" not in r.inputs for r in run.of_type(INGRESS))
    assert "tunnelHostId" not in run.outputs


# --- 1. no password reaches the server ------------------------------------------------------------


def test_roles_get_the_scram_verifier_of_their_password_never_the_password(dev_run: ProgramRun) -> None:
    access = dev_run.one("temporaldb:access:DatabaseAccess").name
    for login in roles.LOGINS:
        [role] = [r for r in dev_run.of_type(ROLE) if r.inputs["name"] == login.name]
        sent = unwrap_rpc_secret(role.inputs["password"])
        salt = named(dev_run, f"{access}-{login.name}-salt")
        # The mock's RandomBytes answer, as preview.py computes it.
        raw_salt = base64.b64decode(_mock_salt_b64(salt.name))
        password = f"{MOCK_PASSWORD_PREFIX}{access}-{login.name}-password"
        assert sent == scram.verifier(password, raw_salt)
        assert password not in json.dumps(role.inputs, default=str)
        assert salt.inputs["length"] == 16


def _mock_salt_b64(name: str) -> str:
    import hashlib

    return base64.b64encode(hashlib.sha256(name.encode()).digest()[:16]).decode()


# --- 4. deletion order ----------------------------------------------------------------------------


def _needs(resource: Registration) -> set[str]:
    """What Pulumi deletes after `resource`: its dependencies, its provider and its parent."""
    needs = set(resource.dependencies)
    if resource.provider:
        needs.add(resource.provider.rsplit("::", 1)[0])
    if resource.parent:
        needs.add(resource.parent)
    return needs


def destroy_order(run: ProgramRun, prefer: str) -> list[Registration]:
    """An order `pulumi destroy` may delete in: no resource before one that depends on it.

    Among resources free to go, those of type `prefer` go first: the least
    favourable choice the engine's parallel deletes could make.
    """
    remaining = {r.urn: r for r in run.resources}
    order: list[Registration] = []
    while remaining:
        needed = {urn for r in remaining.values() for urn in _needs(r)}
        free = sorted((r for urn, r in remaining.items() if urn not in needed), key=lambda r: r.type != prefer)
        assert free, "the dependency graph has a cycle"
        order.append(free[0])
        del remaining[free[0].urn]
    return order


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_every_database_is_dropped_before_any_role(project_root: Path, stack: str) -> None:
    run = run_program(project_root, stack, {"temporaldb:sports": '["nba","nfl"]'})
    order = [r.type for r in destroy_order(run, prefer=ROLE)]
    assert order.count(DATABASE) == 2
    last_database = max(i for i, kind in enumerate(order) if kind == DATABASE)
    first_role = min(i for i, kind in enumerate(order) if kind == ROLE)
    assert last_database < first_role


def test_everything_inside_postgresql_goes_before_the_instance(dev_run: ProgramRun) -> None:
    order = destroy_order(dev_run, prefer="aws:rds/instance:Instance")
    instance_at = next(i for i, r in enumerate(order) if r.type == "aws:rds/instance:Instance")
    assert all(i < instance_at for i, r in enumerate(order) if r.type.startswith(POSTGRESQL_TYPES))


@pytest.fixture(scope="module")
def bootstrapped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThrowawayServer]:
    """The model on a real server, with the schema migrated and owned by its group."""
    server = start_throwaway_server(max(available_majors()), tmp_path_factory.mktemp("destroy"))
    try:
        bootstrap(server.dsn, ["nba"])
        yield server
    finally:
        server.stop()


def test_the_destroy_order_succeeds_on_a_real_server(bootstrapped: ThrowawayServer, dev_run: ProgramRun) -> None:
    """The databases and roles of `pulumi destroy` (or manageDatabase: false), dropped in the graph's order."""
    statements = []
    for resource in destroy_order(dev_run, prefer=ROLE):
        if resource.type == DATABASE:
            statements.append(sql.SQL("drop database {} with (force)").format(sql.Identifier(resource.inputs["name"])))
        elif resource.type == ROLE:
            statements.append(sql.SQL("drop role {}").format(sql.Identifier(resource.inputs["name"])))
    with psycopg.connect(bootstrapped.dsn, autocommit=True) as admin:
        for statement in statements:
            admin.execute(statement)
        left = admin.execute(
            "select rolname from pg_roles where rolname = any(%s)",
            ([*roles.login_names(), *(group.name for group in roles.GROUPS)],),
        ).fetchall()
    assert left == []


def test_publishers_wait_for_the_topic_policy(any_run: ProgramRun) -> None:
    policy = any_run.one("aws:sns/topicPolicy:TopicPolicy").urn
    publishers = [
        *any_run.of_type("aws:rds/eventSubscription:EventSubscription"),
        any_run.one("aws:budgets/budget:Budget"),
        *any_run.of_type(ALARM),
    ]
    for publisher in publishers:
        assert policy in publisher.dependencies, f"{publisher.name} may be created before the topic policy"


# --- 2. and 6. settings AWS would refuse, network details -------------------------------------------


def test_subnets_use_standard_zones_only(any_run: ProgramRun) -> None:
    zones = sorted(s.inputs["availabilityZone"] for s in any_run.of_type("aws:ec2/subnet:Subnet"))
    assert zones == ["us-east-1a", "us-east-1b"], "an opted-in Local Zone sorts first and must be skipped"


def test_dev_and_prod_networks_do_not_overlap(stack_config: Any) -> None:
    blocks = {stack: ipaddress.ip_network(stack_config(stack)["temporaldb:vpcCidr"]) for stack in ("dev", "prod")}
    assert not blocks["dev"].overlaps(blocks["prod"])
    for stack, block in blocks.items():
        for cidr in json.loads(stack_config(stack)["temporaldb:allowedCidrs"]):
            assert ipaddress.ip_network(cidr).subnet_of(block), f"{stack} admits {cidr}, outside its own VPC"


def test_an_old_pulumi_cli_is_refused_before_anything_is_registered(project_root: Path) -> None:
    import pulumi

    world = LiveWorld(cli_version="3.206.0")
    with pytest.raises(pulumi.RunError, match=r"needs Pulumi CLI >=3\.207\.0"):
        run_program(project_root, "dev", world=world)


def test_run_program_warning_depends_on_the_environment(project_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PULUMI_RUN_PROGRAM", raising=False)
    unset = run_program(project_root, "dev")
    assert any("PULUMI_RUN_PROGRAM is not set" in w and "7 days" in w for w in unset.warnings)
    monkeypatch.setenv("PULUMI_RUN_PROGRAM", "true")
    set_run = run_program(project_root, "dev")
    assert not any("PULUMI_RUN_PROGRAM" in w for w in set_run.warnings)


# --- 5. alarms that fire before the outage --------------------------------------------------------


def alarm(run: ProgramRun, metric: str) -> Registration:
    [found] = [a for a in run.of_type(ALARM) if a.inputs["metricName"] == metric]
    return found


# max_connections that people have read from real db.t3.micro instances (79 to 87; none higher): the
# alarm must fire below the lowest, or it could only fire once connections are already refused.
REPORTED_T3_MICRO_MAX_CONNECTIONS = (79, 81, 85, 87)


def test_connections_alarm_fires_below_the_real_limit(dev_run: ProgramRun) -> None:
    threshold = float(alarm(dev_run, "DatabaseConnections").inputs["threshold"])
    assert threshold <= 0.8 * min(REPORTED_T3_MICRO_MAX_CONNECTIONS)
    assert threshold >= 0.5 * min(REPORTED_T3_MICRO_MAX_CONNECTIONS), "too low to mean anything"


def test_cpu_credit_alarm_on_burstable_classes_only(project_root: Path, dev_run: ProgramRun) -> None:
    credits = alarm(dev_run, "CPUCreditBalance")
    assert credits.inputs["comparisonOperator"] == "LessThanThreshold"
    assert float(credits.inputs["threshold"]) == pytest.approx(0.2 * 24 * 12)  # t3.micro: 12 credits an hour
    large = run_program(project_root, "prod", {"temporaldb:instanceClass": "db.m6g.large"})
    assert not [a for a in large.of_type(ALARM) if a.inputs["metricName"] == "CPUCreditBalance"]
    assert INSTANCE_CLASSES["db.m6g.large"].cpu_credits_per_hour is None


def test_free_storage_alarm_follows_the_current_allocation(project_root: Path) -> None:
    grown = run_program(project_root, "dev", world=LiveWorld(allocated_storage_gb=57))
    free = alarm(grown, "FreeStorageSpace")
    assert float(free.inputs["threshold"]) == pytest.approx(0.10 * 57 * GIB)
    assert "57 GiB" in free.inputs["alarmDescription"]
