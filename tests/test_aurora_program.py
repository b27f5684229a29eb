"""The Pulumi program with `engine: aurora` under mocks: the cluster, its groups, writer and readers, alarms,
the access layer on the writer and the exports, for dev and prod; and the instance stacks left as they were."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pulumi
import pytest
from pulumi.runtime.rpc import is_rpc_secret, unwrap_rpc_secret

from components.parameters import CLUSTER, INSTANCE, STACK_PARAMETERS, in_scope
from infra.catalog import serverless_max_connections
from temporaldb.preview import MOCK_MASTER_PASSWORD, LiveWorld, ProgramRun, Registration, run_program

CLUSTER_TYPE = "aws:rds/cluster:Cluster"
CLUSTER_INSTANCE = "aws:rds/clusterInstance:ClusterInstance"
CLUSTER_PARAMETERS = "aws:rds/clusterParameterGroup:ClusterParameterGroup"
PARAMETER_GROUP = "aws:rds/parameterGroup:ParameterGroup"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
EVENTS = "aws:rds/eventSubscription:EventSubscription"
SUBNET = "aws:ec2/subnet:Subnet"
GIB = 1024**3
AURORA_DEV = {"temporaldb:engine": "aurora", "temporaldb:auroraMinAcu": "0"}
AURORA_PROD = {"temporaldb:engine": "aurora", "temporaldb:auroraReaders": "2"}
CLUSTER_HOST = "{stack}.cluster-c0ffee000000.us-east-1.rds.amazonaws.com"
READER_HOST = "{stack}.cluster-ro-c0ffee000000.us-east-1.rds.amazonaws.com"


@pytest.fixture(scope="module")
def aurora_dev(project_root: Path) -> ProgramRun:
    return run_program(project_root, "dev", AURORA_DEV)


@pytest.fixture(scope="module")
def aurora_prod(project_root: Path) -> ProgramRun:
    return run_program(project_root, "prod", AURORA_PROD)


@pytest.fixture(params=["dev", "prod"])
def aurora_run(request: pytest.FixtureRequest, aurora_dev: ProgramRun, aurora_prod: ProgramRun) -> ProgramRun:
    return aurora_dev if request.param == "dev" else aurora_prod


def named(run: ProgramRun, name: str) -> Registration:
    [found] = [r for r in run.resources if r.name == name]
    return found


def instances(run: ProgramRun) -> dict[str, Registration]:
    """The cluster's instances by role: writer, reader-1, ..."""
    return {r.inputs["identifier"].removeprefix(f"temporaldb-{run.stack}-"): r for r in run.of_type(CLUSTER_INSTANCE)}


def parameters(group: Registration) -> list[tuple[str, str, str]]:
    return [(p["name"], p["value"], p["applyMethod"]) for p in group.inputs["parameters"]]


# --- the cluster --------------------------------------------------------------------------------------------


def test_the_cluster_is_encrypted_serverless_v2_with_a_managed_secret(aurora_run: ProgramRun) -> None:
    cluster = aurora_run.one(CLUSTER_TYPE)
    inputs = cluster.inputs
    assert inputs["clusterIdentifier"] == f"temporaldb-{aurora_run.stack}"
    assert (inputs["engine"], inputs["engineMode"], inputs["engineVersion"]) == (
        "aurora-postgresql",
        "provisioned",
        "17",
    )
    assert inputs["storageEncrypted"] is True
    assert inputs["manageMasterUserPassword"] is True
    assert "masterPassword" not in inputs
    assert inputs["masterUsername"] == "temporaldb_admin"
    assert inputs["iamDatabaseAuthenticationEnabled"] is True
    assert inputs["enabledCloudwatchLogsExports"] == ["postgresql"]
    assert inputs["copyTagsToSnapshot"] is True
    assert inputs["engineLifecycleSupport"] == "open-source-rds-extended-support-disabled"
    assert "storageType" not in inputs, "Aurora Standard is the default configuration"
    assert "dbInstanceParameterGroupName" not in inputs, "only valid with allowMajorVersionUpgrade"
    assert inputs["allowMajorVersionUpgrade"] is False
    assert inputs["vpcSecurityGroupIds"] == [f"temporaldb-{aurora_run.stack}-db-access-sg-id"]
    log = named(aurora_run, f"temporaldb-{aurora_run.stack}-aurora-cluster-postgresql-log")
    assert log.inputs["name"] == f"/aws/rds/cluster/temporaldb-{aurora_run.stack}/postgresql"
    assert log.urn in cluster.dependencies, "the log group exists, with its retention, before RDS writes to it"


def test_dev_scales_to_zero_and_pauses(aurora_dev: ProgramRun) -> None:
    inputs = aurora_dev.one(CLUSTER_TYPE).inputs
    assert inputs["serverlessv2ScalingConfiguration"] == {
        "minCapacity": 0,
        "maxCapacity": 4,
        "secondsUntilAutoPause": 300,
    }
    assert inputs["deletionProtection"] is False
    assert inputs["skipFinalSnapshot"] is True
    assert inputs["deleteAutomatedBackups"] is True
    assert "finalSnapshotIdentifier" not in inputs
    assert not aurora_dev.one(CLUSTER_TYPE).protect


def test_prod_keeps_its_capacity_and_survives_deletion(aurora_prod: ProgramRun) -> None:
    cluster = aurora_prod.one(CLUSTER_TYPE)
    inputs = cluster.inputs
    assert inputs["serverlessv2ScalingConfiguration"] == {"minCapacity": 0.5, "maxCapacity": 4}, (
        "no pause time unless the minimum is 0"
    )
    assert inputs["deletionProtection"] is True
    assert inputs["skipFinalSnapshot"] is False
    assert inputs["deleteAutomatedBackups"] is False
    assert re.fullmatch(r"temporaldb-prod-final-[0-9a-f]{8}", inputs["finalSnapshotIdentifier"])
    assert (inputs["backupRetentionPeriod"], inputs["preferredBackupWindow"]) == (14, "03:00-03:30")
    assert inputs["preferredMaintenanceWindow"] == "sun:04:30-sun:05:00"
    assert cluster.protect
    assert all(instance.protect for instance in instances(aurora_prod).values())


def test_io_optimized_and_a_major_upgrade_reach_the_cluster(project_root: Path) -> None:
    run = run_program(
        project_root,
        "dev",
        {**AURORA_DEV, "temporaldb:auroraStorage": "io-optimized", "temporaldb:allowMajorVersionUpgrade": "true"},
    )
    inputs = run.one(CLUSTER_TYPE).inputs
    assert inputs["storageType"] == "aurora-iopt1"
    assert (inputs["allowMajorVersionUpgrade"], inputs["applyImmediately"]) == (True, True)
    assert inputs["dbInstanceParameterGroupName"] == f"{run.one(PARAMETER_GROUP).inputs['namePrefix']}0001"


def test_the_groups_carry_the_instances_settings_split_by_level(aurora_run: ProgramRun, dev_run: ProgramRun) -> None:
    cluster_group = aurora_run.one(CLUSTER_PARAMETERS)
    instance_group = aurora_run.one(PARAMETER_GROUP)
    for group, kind in ((cluster_group, ""), (instance_group, "instance-")):
        assert group.inputs["family"] == "aurora-postgresql17"
        assert "name" not in group.inputs, "a fixed name blocks create-before-delete on a family change"
        assert group.inputs["namePrefix"] == f"temporaldb-{aurora_run.stack}-aurora-postgresql17-{kind}"
    as_triples = [(p.name, p.value, p.apply_method) for p in STACK_PARAMETERS]
    assert parameters(cluster_group) == [(p.name, p.value, p.apply_method) for p in in_scope(CLUSTER)]
    assert parameters(instance_group) == [(p.name, p.value, p.apply_method) for p in in_scope(INSTANCE)]
    # The same settings as the instance stack's one group, none lost or changed in the split.
    instance_stack = parameters(dev_run.one(PARAMETER_GROUP))
    assert sorted(parameters(cluster_group) + parameters(instance_group)) == sorted(instance_stack)
    assert sorted(instance_stack) == sorted(as_triples)
    assert ("rds.force_ssl", "1", "immediate") in parameters(cluster_group)
    assert ("shared_preload_libraries", "pg_stat_statements", "pending-reboot") in parameters(cluster_group)
    cluster = aurora_run.one(CLUSTER_TYPE)
    assert cluster.inputs["dbClusterParameterGroupName"] == f"{cluster_group.inputs['namePrefix']}0001"


# --- the writer and the readers ---------------------------------------------------------------------------


def test_writer_and_readers_are_serverless_instances_of_the_cluster(aurora_run: ProgramRun) -> None:
    found = instances(aurora_run)
    expected_roles = ["writer"] if aurora_run.stack == "dev" else ["reader-1", "reader-2", "writer"]
    assert sorted(found) == expected_roles
    group = f"{aurora_run.one(PARAMETER_GROUP).inputs['namePrefix']}0001"
    monitoring = 60 if aurora_run.stack == "prod" else 0
    for role, instance in found.items():
        inputs = instance.inputs
        assert inputs["identifier"] == f"temporaldb-{aurora_run.stack}-{role}"
        assert inputs["clusterIdentifier"] == f"temporaldb-{aurora_run.stack}"
        assert (inputs["engine"], inputs["instanceClass"]) == ("aurora-postgresql", "db.serverless")
        assert inputs["dbParameterGroupName"] == group
        assert inputs["publiclyAccessible"] is False
        assert (inputs["performanceInsightsEnabled"], inputs["performanceInsightsRetentionPeriod"]) == (True, 7)
        assert inputs["monitoringInterval"] == monitoring
        assert ("monitoringRoleArn" in inputs) is bool(monitoring)
        assert inputs["caCertIdentifier"] == "rds-ca-rsa2048-g1"
        assert inputs["autoMinorVersionUpgrade"] is True
        assert instance.ignore_changes == ("availabilityZone",)
        assert aurora_run.one(CLUSTER_TYPE).urn in instance.dependencies


def test_readers_come_after_the_writer_in_other_zones(aurora_prod: ProgramRun) -> None:
    found = instances(aurora_prod)
    writer = found["writer"]
    zones = {role: instance.inputs["availabilityZone"] for role, instance in found.items()}
    assert zones == {"writer": "us-east-1a", "reader-1": "us-east-1b", "reader-2": "us-east-1c"}
    tiers = {role: instance.inputs["promotionTier"] for role, instance in found.items()}
    assert tiers == {"writer": 0, "reader-1": 1, "reader-2": 2}, "reader-1, the failover target, scales with the writer"
    for role in ("reader-1", "reader-2"):
        assert writer.urn in found[role].dependencies, "Aurora makes the first instance of a cluster its writer"
    subnets = aurora_prod.of_type(SUBNET)
    assert sorted(s.inputs["availabilityZone"] for s in subnets) == ["us-east-1a", "us-east-1b", "us-east-1c"]


def test_own_subnets_place_readers_by_their_zones(project_root: Path) -> None:
    own = {
        "temporaldb:vpcId": "vpc-0123456789abcdef0",
        "temporaldb:subnetIds": '["subnet-0123456789abcdef0","subnet-0123456789abcdef1"]',
    }
    run = run_program(project_root, "prod", {**AURORA_PROD, **own})
    assert not run.of_type(SUBNET)
    zones = {role: instance.inputs["availabilityZone"] for role, instance in instances(run).items()}
    # The mock puts subnet-...0 in us-east-1a and subnet-...1 in us-east-1b: reader-2 goes round to a.
    assert zones == {"writer": "us-east-1a", "reader-1": "us-east-1b", "reader-2": "us-east-1a"}


def test_a_reader_needs_a_second_zone(project_root: Path) -> None:
    one_zone = {
        "temporaldb:vpcId": "vpc-0123456789abcdef0",
        "temporaldb:subnetIds": '["subnet-0123456789abcdef0","subnet-0123456789abcdef3"]',
    }
    with pytest.raises(Exception, match="subnets in a second Availability Zone"):
        run_program(project_root, "prod", {**AURORA_PROD, **one_zone})


# --- alarms and events ------------------------------------------------------------------------------------


def test_alarms_fit_a_serverless_cluster(aurora_run: ProgramRun) -> None:
    stack = aurora_run.stack
    roles = sorted(instances(aurora_run))
    by_name = {alarm.name.removeprefix(f"temporaldb-{stack}-alarms-"): alarm for alarm in aurora_run.of_type(ALARM)}
    per_instance = ["acu-utilization", "capacity-at-max", "free-local-storage", "connections"]
    expected = {f"{role}-{kind}" for role in roles for kind in per_instance}
    expected |= {f"{role}-replica-lag" for role in roles if role != "writer"}
    expected.add("cluster-volume-bytes")
    assert set(by_name) == expected
    for name, alarm in by_name.items():
        assert alarm.inputs["namespace"] == "AWS/RDS"
        if name == "cluster-volume-bytes":
            assert alarm.inputs["dimensions"] == {"DBClusterIdentifier": f"temporaldb-{stack}"}
        else:
            role = name.split("-")[0] if name.startswith("writer") else "-".join(name.split("-")[:2])
            assert alarm.inputs["dimensions"] == {"DBInstanceIdentifier": f"temporaldb-{stack}-{role}"}
    at_max = by_name["writer-capacity-at-max"].inputs
    assert (at_max["metricName"], at_max["statistic"], at_max["threshold"]) == (
        "ServerlessDatabaseCapacity",
        "Maximum",
        4,
    )
    assert at_max["comparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert by_name["writer-acu-utilization"].inputs["metricName"] == "ACUUtilization"
    assert by_name["writer-connections"].inputs["threshold"] == round(0.8 * serverless_max_connections(4))
    assert by_name["writer-free-local-storage"].inputs["metricName"] == "FreeLocalStorage"
    if stack == "prod":
        lag = by_name["reader-1-replica-lag"].inputs
        assert (lag["metricName"], lag["statistic"], lag["threshold"]) == ("AuroraReplicaLag", "Maximum", 1000)


@pytest.mark.parametrize(("stack", "budget"), [("dev", 30), ("prod", 120)])
def test_the_volume_alarm_watches_the_budget(
    aurora_dev: ProgramRun, aurora_prod: ProgramRun, stack: str, budget: int
) -> None:
    run = aurora_dev if stack == "dev" else aurora_prod
    volume = named(run, f"temporaldb-{stack}-alarms-cluster-volume-bytes").inputs
    assert volume["metricName"] == "VolumeBytesUsed"
    # A quarter of the budget at Aurora Standard's $0.10 per GiB-month: dev 75 GiB, prod 300 GiB.
    assert volume["threshold"] == pytest.approx(budget * 0.25 / 0.10 * GIB)
    assert (volume["period"], volume["evaluationPeriods"]) == (3600, 1)
    assert f"${budget} monthly budget" in volume["alarmDescription"]


def test_events_of_the_cluster_its_instances_and_their_group_reach_the_topic(aurora_run: ProgramRun) -> None:
    stack = aurora_run.stack
    topic_arn = f"arn:aws:sns:us-east-1:123456789012:temporaldb-{stack}-alarms-topic"
    policy = aurora_run.one("aws:sns/topicPolicy:TopicPolicy")
    subscriptions = {s.inputs["sourceType"]: s for s in aurora_run.of_type(EVENTS)}
    assert sorted(subscriptions) == ["db-cluster", "db-instance", "db-parameter-group"]
    assert subscriptions["db-cluster"].inputs["sourceIds"] == [f"temporaldb-{stack}"]
    assert {"failover", "failure", "maintenance"} <= set(subscriptions["db-cluster"].inputs["eventCategories"])
    assert sorted(subscriptions["db-instance"].inputs["sourceIds"]) == sorted(
        f"temporaldb-{stack}-{role}" for role in instances(aurora_run)
    )
    group = aurora_run.one(PARAMETER_GROUP).inputs["namePrefix"] + "0001"
    assert subscriptions["db-parameter-group"].inputs["sourceIds"] == [group]
    for publisher in [*subscriptions.values(), *aurora_run.of_type(ALARM), aurora_run.one("aws:budgets/budget:Budget")]:
        assert policy.urn in publisher.dependencies
        assert topic_arn in json.dumps(publisher.inputs)


# --- the access layer and the exports ---------------------------------------------------------------------


def test_the_access_layer_connects_to_the_writer(project_root: Path) -> None:
    run = run_program(project_root, "dev", {**AURORA_DEV, "temporaldb:dbHost": ""})
    writer_host = CLUSTER_HOST.format(stack="temporaldb-dev")
    for provider in run.of_type("pulumi:providers:postgresql"):
        assert provider.inputs["host"] == writer_host
        assert unwrap_rpc_secret(provider.inputs["password"]) == MOCK_MASTER_PASSWORD
    assert run.one("pulumi-python:dynamic/temporaldb:MigratedSchema").inputs["host"] == writer_host
    for version in run.of_type("aws:secretsmanager/secretVersion:SecretVersion"):
        assert is_rpc_secret(version.inputs["secretString"])
        assert json.loads(unwrap_rpc_secret(version.inputs["secretString"]))["host"] == writer_host
    # A paused writer resumes on the first connection, in about 15 s: pulumi up waits a minute for it.
    assert {p.inputs["connectTimeout"] for p in run.of_type("pulumi:providers:postgresql")} == {"60"}
    assert run.one("pulumi-python:dynamic/temporaldb:MigratedSchema").inputs["connect_timeout"] == 60
    # pulumi destroy deletes the in-database part before the cluster and its writer.
    server = next(p for p in run.of_type("pulumi:providers:postgresql") if p.inputs["database"] == "postgres")
    assert run.one(CLUSTER_TYPE).urn in server.dependencies


def test_a_cluster_that_never_pauses_keeps_the_usual_timeout(aurora_prod: ProgramRun) -> None:
    assert {p.inputs["connectTimeout"] for p in aurora_prod.of_type("pulumi:providers:postgresql")} == {"15"}


def test_exports_name_the_cluster_and_its_reader_endpoint(aurora_run: ProgramRun) -> None:
    outputs = aurora_run.outputs
    stack = f"temporaldb-{aurora_run.stack}"
    assert outputs["clusterIdentifier"] == stack
    assert outputs["address"] == CLUSTER_HOST.format(stack=stack)
    assert outputs["endpoint"] == f"{outputs['address']}:5432"
    assert outputs["port"] == 5432
    assert outputs["readerEndpoint"] == READER_HOST.format(stack=stack)
    assert outputs["instanceIdentifier"] == f"{stack}-writer"
    assert outputs["masterSecretArn"] == f"arn:aws:secretsmanager:us-east-1:123456789012:secret:rds!cluster-{stack}"
    assert outputs["parameterGroupName"].startswith(f"{stack}-aurora-postgresql17-")
    assert not outputs["parameterGroupName"].startswith(f"{stack}-aurora-postgresql17-instance-")
    assert outputs["readerIdentifiers"] == [f"{stack}-reader-{n}" for n in range(1, len(instances(aurora_run)))]
    assert outputs["databases"] == ["nba_temporal"]


def test_every_aws_resource_carries_the_stack_tags(aurora_run: ProgramRun) -> None:
    [provider] = aurora_run.of_type("pulumi:providers:aws")
    assert json.loads(provider.inputs["defaultTags"])["tags"]["stack"] == f"temporaldb-{aurora_run.stack}"
    for resource in [aurora_run.one(CLUSTER_TYPE), *aurora_run.of_type(CLUSTER_INSTANCE)]:
        assert resource.provider.startswith(provider.urn + "::"), resource.name


def test_components_follow_the_conventions(aurora_run: ProgramRun) -> None:
    components = {r.urn: r for r in aurora_run.resources if not r.custom}
    assert {"temporaldb:database:AuroraCluster", "temporaldb:monitoring:AuroraAlarms"} <= {
        c.type for c in components.values()
    }
    assert not {"temporaldb:database:PostgresDatabase", "temporaldb:monitoring:DatabaseAlarms"} & {
        c.type for c in components.values()
    }
    for component in components.values():
        assert component.urn in aurora_run.components_with_outputs, component.type
    for resource in aurora_run.resources:
        if resource.custom and not resource.is_provider:
            parent = components[resource.parent]
            assert resource.name.startswith(f"{parent.name}-"), resource.name
    assert not aurora_run.duplicate_urns
    assert not aurora_run.of_type("aws:rds/instance:Instance")


def test_no_password_reaches_any_input(aurora_run: ProgramRun) -> None:
    for resource in aurora_run.resources:
        leaked = [text for text in resource.plain_strings if "MOCK-" in text]
        assert not leaked, f"{resource.name} sends {leaked} unencrypted"


# --- the first up, and what the settings say -------------------------------------------------------------


def test_first_up_creates_the_cluster_and_defers_the_database_part(project_root: Path) -> None:
    run = run_program(project_root, "dev", AURORA_DEV, world=LiveWorld(instance_exists=False))
    assert not run.of_type("pulumi:providers:postgresql")
    assert run.one(CLUSTER_TYPE)
    [warning] = [w for w in run.warnings if "is new" in w]
    assert warning.startswith("The cluster temporaldb-dev is new")
    assert run.outputs["nextStep"] == warning


def test_a_closed_tunnel_stops_the_update_of_a_live_cluster(project_root: Path) -> None:
    with pytest.raises(pulumi.RunError, match="PostgreSQL of temporaldb-dev is not reachable at localhost:5432"):
        run_program(project_root, "dev", AURORA_DEV, world=LiveWorld(tunnel_open=False))


def test_instance_keys_left_in_the_prod_file_are_warned_about(aurora_prod: ProgramRun) -> None:
    notices = [w for w in aurora_prod.warnings if "does not apply to engine aurora" in w]
    assert [n.split(" = ")[0] for n in notices] == ["temporaldb:instanceClass", "temporaldb:maxAllocatedStorageGb"]


# --- the instance stacks, as they were -------------------------------------------------------------------

# Registrations and input keys of the instance stacks before Aurora came (commit 3a76ca8, the same files):
# the engine switch must not change one resource of a stack that does not use it.
INSTANCE_PATH = {"dev": (97, 438), "prod": (100, 445)}


def test_instance_stacks_register_what_they_did_before(dev_run: ProgramRun, prod_run: ProgramRun) -> None:
    for run in (dev_run, prod_run):
        registrations = len(run.resources)
        input_keys = sum(len(r.inputs) for r in run.resources)
        assert (registrations, input_keys) == INSTANCE_PATH[run.stack]
        kinds = Counter(r.type for r in run.resources)
        assert kinds["aws:rds/instance:Instance"] == 1
        assert kinds[SUBNET] == 2
        assert not kinds[CLUSTER_TYPE] + kinds[CLUSTER_INSTANCE] + kinds[CLUSTER_PARAMETERS]
        assert "readerEndpoint" not in run.outputs
        assert "clusterIdentifier" not in run.outputs
