"""`temporaldb plan`: what a stack would create and what it would cost, offline."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from temporaldb.cost import CostEstimate
from temporaldb.preview import DYNAMIC_TYPE_PREFIX, SECRET_SIG, SECRET_SIG_KEY, ProgramRun, Registration

SECRET_SHOWN = "[secret]"


def _yes(value: object) -> str:
    return "yes" if value else "no"


def _num(value: object) -> str:
    """Engine numbers arrive as floats; show 5432, not 5432.0 (and 3600000, not 3.6e+06)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return f"{value:g}" if isinstance(value, (int, float)) else str(value)


def _instance(inputs: dict[str, Any]) -> str:
    parts = [
        f"{inputs.get('instanceClass')}",
        "Multi-AZ" if inputs.get("multiAz") else "Single-AZ",
        f"postgres {inputs.get('engineVersion')}",
        f"gp3 {_num(inputs.get('allocatedStorage'))}->{_num(inputs.get('maxAllocatedStorage'))} GiB autoscaling",
        f"encrypted {_yes(inputs.get('storageEncrypted'))}",
        f"backups {_num(inputs.get('backupRetentionPeriod'))} d at {inputs.get('backupWindow')}",
        f"maintenance {inputs.get('maintenanceWindow')}",
        f"deletion protection {_yes(inputs.get('deletionProtection'))}",
        f"final snapshot {'no' if inputs.get('skipFinalSnapshot') else inputs.get('finalSnapshotIdentifier')}",
        f"public {_yes(inputs.get('publiclyAccessible'))}",
        f"IAM auth {_yes(inputs.get('iamDatabaseAuthenticationEnabled'))}",
        f"logs {'+'.join(inputs.get('enabledCloudwatchLogsExports') or []) or 'none'}",
        f"PI {_yes(inputs.get('performanceInsightsEnabled'))}",
        f"monitoring {_num(inputs.get('monitoringInterval')) + ' s' if inputs.get('monitoringInterval') else 'off'}",
    ]
    return ", ".join(parts)


def _cluster(inputs: dict[str, Any]) -> str:
    scaling = inputs.get("serverlessv2ScalingConfiguration") or {}
    pause = scaling.get("secondsUntilAutoPause")
    parts = [
        f"{inputs.get('engine')} {inputs.get('engineVersion')}",
        f"Serverless v2 {_num(scaling.get('minCapacity'))}-{_num(scaling.get('maxCapacity'))} ACU",
        f"pauses after {_num(pause)} s idle" if pause else "never pauses",
        f"storage {'I/O-Optimized' if inputs.get('storageType') == 'aurora-iopt1' else 'Standard'}",
        f"encrypted {_yes(inputs.get('storageEncrypted'))}",
        f"backups {_num(inputs.get('backupRetentionPeriod'))} d at {inputs.get('preferredBackupWindow')}",
        f"maintenance {inputs.get('preferredMaintenanceWindow')}",
        f"deletion protection {_yes(inputs.get('deletionProtection'))}",
        f"final snapshot {'no' if inputs.get('skipFinalSnapshot') else inputs.get('finalSnapshotIdentifier')}",
        f"managed master secret {_yes(inputs.get('manageMasterUserPassword'))}",
        f"IAM auth {_yes(inputs.get('iamDatabaseAuthenticationEnabled'))}",
        f"logs {'+'.join(inputs.get('enabledCloudwatchLogsExports') or []) or 'none'}",
    ]
    return ", ".join(parts)


def _cluster_instance(inputs: dict[str, Any]) -> str:
    tier = int(inputs.get("promotionTier") or 0)
    role = "writer" if str(inputs.get("identifier", "")).endswith("-writer") else f"reader, failover tier {tier}"
    monitoring = f"{_num(inputs.get('monitoringInterval'))} s" if inputs.get("monitoringInterval") else "off"
    return (
        f"{inputs.get('instanceClass')} {role} in {inputs.get('availabilityZone')}, public "
        f"{_yes(inputs.get('publiclyAccessible'))}, PI {_yes(inputs.get('performanceInsightsEnabled'))}, "
        f"monitoring {monitoring}"
    )


def _default_tags(inputs: dict[str, Any]) -> dict[str, str]:
    """Provider inputs reach the engine as JSON strings for nested values."""
    raw = inputs.get("defaultTags") or {}
    decoded: dict[str, Any] = json.loads(raw) if isinstance(raw, str) else raw
    tags: dict[str, str] = decoded.get("tags") or {}
    return tags


def _parameters(inputs: dict[str, Any]) -> str:
    params = ", ".join(f"{p['name']}={p['value']}" for p in inputs.get("parameters") or [])
    return f"{inputs.get('family')}: {params}"


def _ingress(inputs: dict[str, Any]) -> str:
    source = inputs.get("cidrIpv4") or inputs.get("cidrIpv6") or inputs.get("referencedSecurityGroupId")
    return f"{inputs.get('ipProtocol')} {_num(inputs.get('fromPort'))} from {source}"


def _egress(inputs: dict[str, Any]) -> str:
    target = inputs.get("cidrIpv4") or inputs.get("cidrIpv6") or inputs.get("referencedSecurityGroupId")
    return f"{inputs.get('ipProtocol')} {_num(inputs.get('fromPort'))} to {target}"


def _host(inputs: dict[str, Any]) -> str:
    root = inputs.get("rootBlockDevice") or {}
    metadata = inputs.get("metadataOptions") or {}
    return (
        f"{inputs.get('instanceType')} {inputs.get('ami')}, public IP {_yes(inputs.get('associatePublicIpAddress'))},"
        f" IMDSv2 {_yes(metadata.get('httpTokens') == 'required')},"
        f" root {root.get('volumeType')} {_num(root.get('volumeSize') or 'image-sized')}"
        f"{' GiB' if root.get('volumeSize') else ''} encrypted {_yes(root.get('encrypted'))}"
    )


def _alarm(inputs: dict[str, Any]) -> str:
    threshold = float(inputs.get("threshold") or 0)
    shown = (
        f"{threshold / 1024**3:.2f} GiB"
        if inputs.get("metricName") in ("FreeStorageSpace", "FreeableMemory")
        else f"{threshold:g}"
    )
    return f"{inputs.get('metricName')} {inputs.get('comparisonOperator')} {shown}"


def _budget(inputs: dict[str, Any]) -> str:
    filters = "; ".join(f"{f['name']}={','.join(f['values'])}" for f in inputs.get("costFilters") or [])
    return f"{inputs.get('limitAmount')} {inputs.get('limitUnit')}/{inputs.get('timeUnit')}, {filters}"


def _postgresql_provider(inputs: dict[str, Any]) -> str:
    superuser = str(inputs.get("superuser", "")).lower() == "true"
    return (
        f"{_shown(inputs.get('username'))}@{_shown(inputs.get('host'))}:{_num(_number(inputs.get('port')))}"
        f"/{_shown(inputs.get('database'))}, sslmode {inputs.get('sslmode')}, superuser {_yes(superuser)}"
    )


def _role(inputs: dict[str, Any]) -> str:
    if not inputs.get("login"):
        return "group role, no login"
    member_of = ", ".join(inputs.get("roles") or []) or "nothing"
    password = "password" if inputs.get("password") else "no password"
    return (
        f"login, member of {member_of}, {password}, at most {_num(inputs.get('connectionLimit'))} connections,"
        f" statement timeout {_num(inputs.get('statementTimeout'))} ms"
    )


def _privileges(inputs: dict[str, Any]) -> str:
    return ", ".join(inputs.get("privileges") or []) or "nothing (revoke all)"


def _grant(inputs: dict[str, Any]) -> str:
    kind = inputs.get("objectType")
    if kind == "database":
        target = f"database {inputs.get('database')}"
    elif kind == "schema":
        target = f"schema {inputs.get('schema')}"
    else:
        target = f"every {kind} in {inputs.get('schema')}"
    return f"{_privileges(inputs)} on {target} to {inputs.get('role')}"


def _default_privileges(inputs: dict[str, Any]) -> str:
    where = f"in {inputs['schema']}" if inputs.get("schema") else "anywhere in the database"
    return (
        f"future {inputs.get('objectType')}s of {inputs.get('owner')} {where}: {_privileges(inputs)}"
        f" to {inputs.get('role')}"
    )


def _schema(inputs: dict[str, Any]) -> str:
    migrations = sorted(inputs.get("migrations") or {})
    files = f"{migrations[0]} .. {migrations[-1]}" if len(migrations) > 1 else ", ".join(migrations) or "none"
    return (
        f"migrations {files} ({len(migrations)} files, checksums pinned) as {_shown(inputs.get('user'))}"
        f"@{_shown(inputs.get('host'))}:{_num(inputs.get('port'))}/{_shown(inputs.get('database'))}"
    )


def _number(value: object) -> object:
    """Provider inputs reach the engine as strings."""
    try:
        return float(str(value))
    except ValueError:
        return value


def _shown(value: object) -> str:
    return SECRET_SHOWN if _is_secret(value) else str(value)


def _is_secret(value: object) -> bool:
    return isinstance(value, dict) and value.get(SECRET_SIG_KEY) == SECRET_SIG


def mask_secrets(value: Any) -> Any:
    """The inputs with every secret value replaced by a marker, for printing."""
    if _is_secret(value):
        return SECRET_SHOWN
    if isinstance(value, dict):
        return {key: mask_secrets(item) for key, item in value.items()}
    if isinstance(value, list):
        return [mask_secrets(item) for item in value]
    return value


_DESCRIBE: dict[str, Callable[[dict[str, Any]], str]] = {
    "aws:rds/instance:Instance": _instance,
    "aws:rds/parameterGroup:ParameterGroup": _parameters,
    "aws:rds/clusterParameterGroup:ClusterParameterGroup": _parameters,
    "aws:rds/cluster:Cluster": _cluster,
    "aws:rds/clusterInstance:ClusterInstance": _cluster_instance,
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": _ingress,
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": _egress,
    "aws:ec2/instance:Instance": _host,
    "aws:ec2transitgateway/instanceConnectEndpoint:InstanceConnectEndpoint": lambda i: (
        f"in {i.get('subnetId')}, preserve client IP {_yes(i.get('preserveClientIp'))}"
    ),
    "random:index/randomBytes:RandomBytes": lambda i: f"{_num(i.get('length'))} random bytes (a SCRAM salt)",
    "aws:cloudwatch/metricAlarm:MetricAlarm": _alarm,
    "aws:budgets/budget:Budget": _budget,
    "aws:cloudwatch/logGroup:LogGroup": lambda i: f"{i.get('name')}, {_num(i.get('retentionInDays'))} days",
    "aws:ec2/vpc:Vpc": lambda i: f"{i.get('cidrBlock')}, no internet gateway",
    "aws:ec2/subnet:Subnet": lambda i: (
        f"{i.get('cidrBlock')} in {i.get('availabilityZone')}, public IPs {_yes(i.get('mapPublicIpOnLaunch'))}"
    ),
    "aws:rds/eventSubscription:EventSubscription": lambda i: (
        f"{i.get('sourceType')}: {', '.join(i.get('eventCategories') or [])}"
    ),
    "aws:sns/topicSubscription:TopicSubscription": lambda i: f"{i.get('protocol')} {i.get('endpoint')}",
    "pulumi:providers:aws": lambda i: f"region {i.get('region')}, default tags {_default_tags(i)}",
    "aws:secretsmanager/secret:Secret": lambda i: f"{i.get('namePrefix') or i.get('name')}*, {i.get('description')}",
    "aws:secretsmanager/secretVersion:SecretVersion": lambda i: (
        f"secret string {SECRET_SHOWN if _is_secret(i.get('secretString')) else 'IN PLAIN TEXT'}"
    ),
    "random:index/randomPassword:RandomPassword": lambda i: (
        f"{_num(i.get('length'))} characters, special characters {_yes(i.get('special'))}"
    ),
    "pulumi:providers:postgresql": _postgresql_provider,
    "postgresql:index/role:Role": _role,
    "postgresql:index/database:Database": lambda i: f"database {i.get('name')}",
    "postgresql:index/extension:Extension": lambda i: f"extension {i.get('name')} in {i.get('database')}",
    "postgresql:index/grant:Grant": _grant,
    "postgresql:index/defaultPrivileges:DefaultPrivileges": _default_privileges,
}


def describe(resource: Registration) -> str:
    if resource.type.startswith(DYNAMIC_TYPE_PREFIX):
        return _schema(resource.inputs)
    describer = _DESCRIBE.get(resource.type)
    return describer(resource.inputs) if describer else ""


def _tree(run: ProgramRun) -> list[tuple[int, Registration]]:
    """Resources in registration order, children under their component."""
    children: dict[str, list[Registration]] = {}
    for resource in run.resources:
        children.setdefault(resource.parent, []).append(resource)
    known = {resource.urn for resource in run.resources}
    roots = [resource for resource in run.resources if resource.parent not in known]
    ordered: list[tuple[int, Registration]] = []

    def visit(resource: Registration, depth: int) -> None:
        ordered.append((depth, resource))
        for child in children.get(resource.urn, []):
            visit(child, depth + 1)

    for root in roots:
        visit(root, 0)
    return ordered


def render_text(run: ProgramRun, cost: CostEstimate) -> str:
    custom = [r for r in run.resources if r.custom and not r.is_provider]
    lines = [
        f"Stack {run.stack} ({cost.region}): {len(custom)} resources"
        f" in {len(run.resources) - len(custom)} components and providers",
        "",
    ]
    for depth, resource in _tree(run):
        kind = resource.type.split(":")[-1] if resource.custom else resource.type
        protect = " [protected]" if resource.protect else ""
        detail = describe(resource)
        lines.append(
            f"{'  ' * depth}{kind} {resource.name}{protect}" + (f"\n{'  ' * depth}    {detail}" if detail else "")
        )
    lines += ["", f"Monthly cost estimate (USD, {cost.region} On-Demand, prices of {cost.prices_retrieved}):"]
    lines += _cost_table(cost)
    if cost.budget_usd is not None:
        verdict = "within" if cost.within_budget else "OVER"
        lines.append(f"Budget: {cost.budget_usd:.2f} USD/month, estimate {cost.monthly_usd:.2f}: {verdict} budget")
        if cost.at_ceiling_usd > cost.budget_usd:
            ceiling = (
                "every instance at auroraMaxAcu all month and the volume at its alarm"
                if cost.has_minimum
                else "storage at its autoscaling ceiling"
            )
            lines.append(f"  note: with {ceiling} the stack would cost {cost.at_ceiling_usd:.2f}, above the budget")
    lines += [f"  note: {note}" for note in cost.notes]
    return "\n".join(lines)


def _cost_table(cost: CostEstimate) -> list[str]:
    """The lines, their figures and basis; an `at minimum` column when capacity scales down (Aurora)."""
    width = max(len(line.item) for line in cost.lines)
    minimum = cost.has_minimum
    lines = [
        f"  {'item'.ljust(width)}  {'expected':>9}"
        + (f"  {'at minimum':>10}" if minimum else "")
        + f"  {'at ceiling':>10}  basis"
    ]
    for line in cost.lines:
        at_minimum = line.monthly_usd if line.at_minimum_usd is None else line.at_minimum_usd
        lines.append(
            f"  {line.item.ljust(width)}  {line.monthly_usd:9.2f}"
            + (f"  {at_minimum:10.2f}" if minimum else "")
            + f"  {line.at_ceiling_usd:10.2f}  {line.detail}"
        )
    lines.append(
        f"  {'total'.ljust(width)}  {cost.monthly_usd:9.2f}"
        + (f"  {cost.at_minimum_usd:10.2f}" if minimum else "")
        + f"  {cost.at_ceiling_usd:10.2f}"
    )
    return lines


def document(run: ProgramRun, cost: CostEstimate) -> dict[str, Any]:
    """One stack's plan as a JSON-ready document."""
    return {
        "stack": run.stack,
        "region": cost.region,
        "resources": [
            {
                "type": r.type,
                "name": r.name,
                "urn": r.urn,
                "parent": r.parent,
                "custom": r.custom,
                "protect": r.protect,
                "summary": describe(r),
                "inputs": mask_secrets(r.inputs),
            }
            for r in run.resources
        ],
        "outputs": run.outputs,
        "cost": {
            "currency": "USD",
            "monthly_usd": cost.monthly_usd,
            "at_ceiling_usd": cost.at_ceiling_usd,
            **({"at_minimum_usd": cost.at_minimum_usd} if cost.has_minimum else {}),
            "notes": list(cost.notes),
            "budget_usd": cost.budget_usd,
            "within_budget": cost.within_budget,
            "prices_retrieved": cost.prices_retrieved,
            "prices_source": cost.prices_source,
            "lines": [asdict(line) for line in cost.lines],
        },
    }
