"""The Pulumi program under mocks: dev and prod resources and their properties."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest
from pulumi.runtime.rpc import is_rpc_secret

from infra.settings import SettingsError
from temporaldb.migrate import default_migrations_dir, read_migrations
from temporaldb.preview import ProgramRun, Registration, execute, run_program
from temporaldb.stackconfig import ProjectFiles, load_stack_config

INSTANCE = "aws:rds/instance:Instance"
PARAMETER_GROUP = "aws:rds/parameterGroup:ParameterGroup"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
EVENTS = "aws:rds/eventSubscription:EventSubscription"
TOPIC = "aws:sns/topic:Topic"


def primary(run: ProgramRun) -> Registration:
    [instance] = [r for r in run.of_type(INSTANCE) if not r.inputs.get("replicateSourceDb")]
    return instance


def parameters(run: ProgramRun) -> dict[str, tuple[str, str]]:
    group = run.one(PARAMETER_GROUP)
    return {p["name"]: (p["value"], p["applyMethod"]) for p in group.inputs["parameters"]}


def test_dev_is_a_single_az_micro_with_ephemeral_profile(dev_run: ProgramRun) -> None:
    instance = primary(dev_run)
    inputs = instance.inputs
    assert inputs["instanceClass"] == "db.t3.micro"
    assert inputs["multiAz"] is False
    assert inputs["deletionProtection"] is False
    assert inputs["skipFinalSnapshot"] is True
    assert "finalSnapshotIdentifier" not in inputs
    assert inputs["deleteAutomatedBackups"] is True
    assert inputs["backupRetentionPeriod"] == 7
    assert inputs["monitoringInterval"] == 0
    assert "monitoringRoleArn" not in inputs
    assert not dev_run.of_type("aws:iam/role:Role")
    assert not instance.protect


def test_prod_is_a_multi_az_small_that_survives_deletion(prod_run: ProgramRun) -> None:
    instance = primary(prod_run)
    inputs = instance.inputs
    assert inputs["instanceClass"] == "db.t3.small"
    assert inputs["multiAz"] is True
    assert inputs["deletionProtection"] is True
    assert inputs["skipFinalSnapshot"] is False
    assert inputs["deleteAutomatedBackups"] is False
    assert inputs["backupRetentionPeriod"] == 14
    assert instance.protect
    # Unique per stack lifetime: the suffix is a RandomId keyed on the identifier.
    suffix = prod_run.one("random:index/randomId:RandomId")
    assert suffix.inputs["keepers"] == {"identifier": "temporaldb-prod"}
    assert re.fullmatch(r"temporaldb-prod-final-[0-9a-f]{8}", inputs["finalSnapshotIdentifier"])
    assert suffix.urn in instance.dependencies


def test_prod_enhanced_monitoring_has_its_role(prod_run: ProgramRun) -> None:
    inputs = primary(prod_run).inputs
    role = prod_run.one("aws:iam/role:Role")
    trust = json.loads(role.inputs["assumeRolePolicy"])
    assert trust["Statement"][0]["Principal"] == {"Service": "monitoring.rds.amazonaws.com"}
    attachment = prod_run.one("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
    assert attachment.inputs["policyArn"].endswith(":policy/service-role/AmazonRDSEnhancedMonitoringRole")
    assert inputs["monitoringInterval"] == 60
    assert inputs["monitoringRoleArn"]
    assert attachment.urn in primary(prod_run).dependencies


def test_secure_defaults_on_every_stack(any_run: ProgramRun) -> None:
    inputs = primary(any_run).inputs
    assert inputs["engine"] == "postgres"
    assert inputs["engineVersion"] == "17"
    assert inputs["storageType"] == "gp3"
    assert inputs["storageEncrypted"] is True
    assert inputs["allocatedStorage"] == 20
    assert inputs["maxAllocatedStorage"] > inputs["allocatedStorage"]
    assert inputs["publiclyAccessible"] is False
    assert inputs["manageMasterUserPassword"] is True
    assert inputs["username"] not in ("postgres", "admin", "root")
    assert inputs["iamDatabaseAuthenticationEnabled"] is True
    assert inputs["copyTagsToSnapshot"] is True
    assert inputs["autoMinorVersionUpgrade"] is True
    assert inputs["allowMajorVersionUpgrade"] is False
    assert inputs["engineLifecycleSupport"] == "open-source-rds-extended-support-disabled"
    assert inputs["performanceInsightsEnabled"] is True
    assert inputs["performanceInsightsRetentionPeriod"] == 7
    assert inputs["caCertIdentifier"] == "rds-ca-rsa2048-g1"
    assert inputs["identifier"] == f"temporaldb-{any_run.stack}"


def test_no_password_reaches_any_input(any_run: ProgramRun) -> None:
    """A password input is a flag, or a secret (the in-database part sets the login roles' passwords)."""
    for resource in any_run.resources:
        for key, value in resource.inputs.items():
            if "password" in key.lower() and not isinstance(value, bool):
                assert is_rpc_secret(value), f"{resource.name}.{key} carries a value in plain text"
                assert resource.type.startswith(("postgresql:", "pulumi:providers:postgresql", "pulumi-python:dynamic"))


def test_parameter_group_forces_tls_and_logs(any_run: ProgramRun) -> None:
    group = any_run.one(PARAMETER_GROUP)
    assert group.inputs["family"] == "postgres17"
    assert "name" not in group.inputs, "a fixed name blocks create-before-delete on a family change"
    assert group.inputs["namePrefix"].startswith(f"temporaldb-{any_run.stack}-postgres17-")
    params = parameters(any_run)
    assert params["rds.force_ssl"] == ("1", "immediate")
    assert params["shared_preload_libraries"] == ("pg_stat_statements", "pending-reboot")
    assert params["track_io_timing"][0] == "1"
    assert int(params["log_min_duration_statement"][0]) > 0
    assert primary(any_run).inputs["parameterGroupName"].startswith(group.inputs["namePrefix"])


def database_group(run: ProgramRun) -> Registration:
    [group] = [g for g in run.of_type("aws:ec2/securityGroup:SecurityGroup") if g.name.endswith("-db-access-sg")]
    return group


def test_security_group_admits_only_postgres_from_allowed_sources(any_run: ProgramRun) -> None:
    group = database_group(any_run)
    assert not group.inputs.get("ingress")
    assert not group.inputs.get("egress")
    rules = [r for r in any_run.of_type(INGRESS) if r.inputs["securityGroupId"] == f"{group.name}-id"]
    allowed = json.loads(any_run.config["temporaldb:allowedCidrs"])
    # The CIDRs of the stack file, and the tunnel host (tests/test_stack_access.py).
    assert sorted(r.inputs["cidrIpv4"] for r in rules if "cidrIpv4" in r.inputs) == sorted(allowed)
    assert [r.name for r in rules if "cidrIpv4" not in r.inputs] == [
        f"temporaldb-{any_run.stack}-tunnel-database-from-host"
    ]
    for rule in rules:
        assert (rule.inputs["ipProtocol"], rule.inputs["fromPort"], rule.inputs["toPort"]) == ("tcp", 5432, 5432)
    assert primary(any_run).inputs["vpcSecurityGroupIds"] == [f"{group.name}-id"]


def test_isolated_network_has_no_way_to_the_internet(any_run: ProgramRun) -> None:
    subnets = any_run.of_type("aws:ec2/subnet:Subnet")
    assert len(subnets) == 2
    assert len({s.inputs["availabilityZone"] for s in subnets}) == 2
    assert all(s.inputs["mapPublicIpOnLaunch"] is False for s in subnets)
    assert all(s.ignore_changes == ("availabilityZone",) for s in subnets)
    for gateway in ("internetGateway:InternetGateway", "natGateway:NatGateway", "route:Route", "eip:Eip"):
        assert not any_run.of_type(f"aws:ec2/{gateway}")
    assert not any_run.one("aws:ec2/routeTable:RouteTable").inputs.get("routes")
    subnet_group = any_run.one("aws:rds/subnetGroup:SubnetGroup")
    assert sorted(subnet_group.inputs["subnetIds"]) == sorted(f"{s.name}-id" for s in subnets)
    default_group = any_run.one("aws:ec2/defaultSecurityGroup:DefaultSecurityGroup")
    assert not default_group.inputs.get("ingress")
    assert not default_group.inputs.get("egress")


def test_logs_are_exported_to_groups_made_first(any_run: ProgramRun) -> None:
    instance = primary(any_run)
    assert instance.inputs["enabledCloudwatchLogsExports"] == ["postgresql", "upgrade"]
    groups = any_run.of_type(LOG_GROUP)
    identifier = instance.inputs["identifier"]
    assert sorted(g.inputs["name"] for g in groups) == [
        f"/aws/rds/instance/{identifier}/postgresql",
        f"/aws/rds/instance/{identifier}/upgrade",
    ]
    assert all(g.inputs["retentionInDays"] == 30 for g in groups)
    assert all(g.urn in instance.dependencies for g in groups)


def test_alarms_and_events_reach_the_topic(any_run: ProgramRun) -> None:
    topic_arn = f"arn:aws:sns:us-east-1:123456789012:{any_run.one(TOPIC).name}"
    alarms = any_run.of_type(ALARM)
    metrics = {a.inputs["metricName"] for a in alarms}
    assert metrics == {
        "CPUUtilization",
        "CPUCreditBalance",  # both stacks run a t3
        "FreeStorageSpace",
        "FreeableMemory",
        "DatabaseConnections",
        "ReadLatency",
        "WriteLatency",
    }
    for alarm in alarms:
        assert alarm.inputs["namespace"] == "AWS/RDS"
        assert alarm.inputs["dimensions"] == {"DBInstanceIdentifier": f"temporaldb-{any_run.stack}"}
        assert alarm.inputs["alarmActions"] == [topic_arn]
    storage = next(a for a in alarms if a.inputs["metricName"] == "FreeStorageSpace")
    assert storage.inputs["threshold"] == pytest.approx(20 * 1024**3 * 0.10)
    subscriptions = {s.inputs["sourceType"]: s for s in any_run.of_type(EVENTS)}
    instance_events = set(subscriptions["db-instance"].inputs["eventCategories"])
    assert {"failure", "maintenance", "configuration change"} <= instance_events
    assert subscriptions["db-parameter-group"].inputs["eventCategories"] == ["configuration change"]
    assert all(s.inputs["snsTopic"] == topic_arn for s in subscriptions.values())


def test_budget_matches_the_stack_setting(any_run: ProgramRun) -> None:
    budget = any_run.one("aws:budgets/budget:Budget")
    expected = int(any_run.config["temporaldb:monthlyBudgetUsd"])
    assert float(budget.inputs["limitAmount"]) == expected
    assert budget.inputs["timeUnit"] == "MONTHLY"
    assert budget.inputs["costFilters"] == [
        {"name": "TagKeyValue", "values": [f"user:stack$temporaldb-{any_run.stack}"]}
    ]
    kinds = {n["notificationType"] for n in budget.inputs["notifications"]}
    assert kinds == {"ACTUAL", "FORECASTED"}


def test_one_provider_tags_every_aws_resource(any_run: ProgramRun) -> None:
    [provider] = [r for r in any_run.resources if r.type == "pulumi:providers:aws"]
    tags = json.loads(provider.inputs["defaultTags"])["tags"]
    assert tags == {"project": "temporaldb", "stack": f"temporaldb-{any_run.stack}", "costCenter": "sports-analytics"}
    for resource in any_run.resources:
        if resource.custom and resource.type.startswith("aws:"):
            assert resource.provider.startswith(provider.urn + "::"), resource.name


def test_the_provider_uses_the_stacks_aws_profile(project_root: Path, any_run: ProgramRun) -> None:
    """An explicit provider ignores `aws:profile` unless it is passed on: without it, `pulumi up` would use the
    default credentials even when the stack names a profile."""
    [default] = any_run.of_type("pulumi:providers:aws")
    assert "profile" not in default.inputs
    run = run_program(project_root, "dev", {"aws:profile": "sports-dev"})
    assert run.one("pulumi:providers:aws").inputs["profile"] == "sports-dev"
    with pytest.raises(SettingsError, match="aws:profile = dev team: is not an AWS profile name"):
        run_program(project_root, "dev", {"aws:profile": "dev team"})


def test_exports(any_run: ProgramRun) -> None:
    outputs = any_run.outputs
    stack = any_run.stack
    assert outputs["instanceIdentifier"] == f"temporaldb-{stack}"
    assert outputs["endpoint"] == f"{outputs['address']}:5432"
    assert outputs["port"] == 5432
    assert outputs["masterSecretArn"].startswith("arn:aws:secretsmanager:")
    assert outputs["securityGroupId"] == f"temporaldb-{stack}-db-access-sg-id"
    assert outputs["parameterGroupName"].startswith(f"temporaldb-{stack}-postgres17-")
    assert outputs["databases"] == ["nba_temporal"]
    assert sorted(outputs["loginSecretArns"]) == ["analyst", "app", "etl", "migrator"]
    assert all(arn.startswith("arn:aws:secretsmanager:") for arn in outputs["loginSecretArns"].values())
    assert outputs["schemaVersion"] == {"nba": len(read_migrations(default_migrations_dir()))}


# --- component structure: what the mocks do not check for us -------------------------------------


def test_every_resource_belongs_to_a_component(any_run: ProgramRun) -> None:
    components = {r.urn: r for r in any_run.resources if not r.custom}
    for resource in any_run.resources:
        if resource.is_provider or not resource.custom:
            continue
        parent = components.get(resource.parent)
        assert parent is not None, f"{resource.name} is not parented to a component"
        assert resource.name.startswith(f"{parent.name}-"), f"{resource.name} is not named after {parent.name}"


def test_components_follow_the_conventions(any_run: ProgramRun) -> None:
    components = [r for r in any_run.resources if not r.custom]
    assert sorted(c.type for c in components) == [
        "temporaldb:access:DatabaseAccess",
        "temporaldb:access:DatabaseFirewall",
        "temporaldb:access:SportDatabase",
        "temporaldb:access:TunnelPath",
        "temporaldb:cost:CostBudget",
        "temporaldb:database:PostgresDatabase",
        "temporaldb:monitoring:DatabaseAlarms",
        "temporaldb:network:IsolatedNetwork",
    ]
    for component in components:
        assert re.fullmatch(r"temporaldb:[a-z]+:[A-Z][A-Za-z]+", component.type), component.type
        assert component.urn in any_run.components_with_outputs, f"{component.type} skipped register_outputs"
    assert not any_run.duplicate_urns


def test_components_never_read_config_or_create_inside_apply(project_root: Path) -> None:
    for path in sorted((project_root / "components").glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr == "Config":
                pytest.fail(f"{path.name}:{node.lineno} uses pulumi.Config")
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "apply":
                for inner in ast.walk(node):
                    if isinstance(inner, ast.Call) and isinstance(inner.func, ast.Attribute):
                        owner = inner.func.value
                        if isinstance(owner, ast.Attribute) and isinstance(owner.value, ast.Name):
                            assert owner.value.id not in ("aws", "random", "postgresql"), f"{path.name}:{inner.lineno}"


# --- settings change what is built ----------------------------------------------------------------


def test_read_replicas_are_refused_with_the_reason(project_root: Path) -> None:
    with pytest.raises(SettingsError) as refused:
        run_program(project_root, "prod", {"temporaldb:readReplicas": "2"})
    message = str(refused.value)
    assert "temporaldb:readReplicas = 2" in message
    assert "Secrets Manager" in message
    assert "instanceClass" in message


def test_alarm_email_subscribes_to_the_topic_and_budget(project_root: Path) -> None:
    run = run_program(project_root, "dev", {"temporaldb:alarmEmail": "oncall@example.com"})
    subscription = run.one("aws:sns/topicSubscription:TopicSubscription")
    assert (subscription.inputs["protocol"], subscription.inputs["endpoint"]) == ("email", "oncall@example.com")
    budget = run.one("aws:budgets/budget:Budget")
    assert all(n["subscriberEmailAddresses"] == ["oncall@example.com"] for n in budget.inputs["notifications"])


def test_security_group_and_ipv6_sources(project_root: Path) -> None:
    run = run_program(
        project_root,
        "prod",
        {
            "temporaldb:allowedCidrs": '["2001:db8::/32"]',
            "temporaldb:allowedSecurityGroupIds": '["sg-0123456789abcdef0"]',
            "temporaldb:vpcId": "vpc-0123456789abcdef0",
            "temporaldb:subnetIds": '["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"]',
        },
    )
    group = database_group(run)
    rules = [r for r in run.of_type(INGRESS) if r.inputs["securityGroupId"] == f"{group.name}-id"]
    sources = {(r.inputs.get("cidrIpv6"), r.inputs.get("referencedSecurityGroupId")) for r in rules}
    tunnel_host = "temporaldb-prod-tunnel-host-sg-id"
    assert sources == {("2001:db8::/32", None), (None, "sg-0123456789abcdef0"), (None, tunnel_host)}


def test_own_subnets_skip_the_network(project_root: Path) -> None:
    subnets = ["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"]
    run = run_program(
        project_root,
        "prod",
        {"temporaldb:vpcId": "vpc-0123456789abcdef0", "temporaldb:subnetIds": json.dumps(subnets)},
    )
    assert not run.of_type("aws:ec2/vpc:Vpc")
    assert run.one("aws:rds/subnetGroup:SubnetGroup").inputs["subnetIds"] == subnets
    groups = run.of_type("aws:ec2/securityGroup:SecurityGroup")
    assert {g.inputs["vpcId"] for g in groups} == {"vpc-0123456789abcdef0"}


def test_major_version_changes_family_and_group_name(project_root: Path) -> None:
    run = run_program(project_root, "dev", {"temporaldb:engineVersion": "16"})
    group = run.one(PARAMETER_GROUP)
    assert group.inputs["family"] == "postgres16"
    assert group.inputs["namePrefix"] == "temporaldb-dev-postgres16-"
    assert primary(run).inputs["engineVersion"] == "16"
    assert primary(run).inputs["allowMajorVersionUpgrade"] is False


def test_major_upgrade_is_allowed_only_when_asked(project_root: Path) -> None:
    run = run_program(
        project_root, "prod", {"temporaldb:engineVersion": "18", "temporaldb:allowMajorVersionUpgrade": "true"}
    )
    inputs = primary(run).inputs
    assert (inputs["engineVersion"], inputs["allowMajorVersionUpgrade"], inputs["applyImmediately"]) == (
        "18",
        True,
        True,
    )
    assert run.one(PARAMETER_GROUP).inputs["family"] == "postgres18"


def test_performance_insights_off_sends_no_retention(project_root: Path) -> None:
    inputs = primary(run_program(project_root, "dev", {"temporaldb:performanceInsights": "false"})).inputs
    assert inputs["performanceInsightsEnabled"] is False
    assert "performanceInsightsRetentionPeriod" not in inputs


def test_bad_setting_stops_before_any_resource(project_root: Path) -> None:
    config = load_stack_config(ProjectFiles(project_root), "prod")
    config["temporaldb:publiclyAccessible"] = "true"
    run = ProgramRun(stack="prod", config=config)
    with pytest.raises(SettingsError, match=r"(?s)Pulumi\.prod\.yaml: .*temporaldb:publiclyAccessible = true"):
        execute(project_root, run)
    assert run.resources == []
