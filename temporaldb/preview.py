"""Run the real Pulumi program offline, under Pulumi's mocks.

No Pulumi CLI, no credentials and no network: the program registers its
resources with a recording monitor that answers like a provider would after
`pulumi up` (ids, ARNs, endpoints), and we keep every registration with its
inputs, parent, provider and options. The plan command and the tests read
the same record.
"""

from __future__ import annotations

import base64
import hashlib
import json
import runpy
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

import pulumi
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import settings as pulumi_settings
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from temporaldb.stackconfig import ProjectFiles, load_stack_config

MOCK_ACCOUNT = "123456789012"
STACK_TYPE = "pulumi:pulumi:Stack"
MOCK_MASTER_USERNAME = "temporaldb_admin"
MOCK_MASTER_PASSWORD = "MOCK-MASTER-PASSWORD"
MOCK_PASSWORD_PREFIX = "MOCK-PASSWORD-"
MOCK_IMAGE_ID = "ami-0123456789abcdef0"
# A CLI recent enough for every option the program uses; tests lower it to see the program refuse.
MOCK_CLI_VERSION = "3.210.0"
DYNAMIC_TYPE_PREFIX = "pulumi-python:dynamic"
# How the engine marks a secret value inside a property struct.
SECRET_SIG_KEY = "4dabf18193072939515e22adb298388d"
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"


@dataclass(frozen=True)
class Registration:
    """One resource the program registered."""

    urn: str
    type: str
    name: str
    custom: bool
    inputs: dict[str, Any]
    parent: str
    provider: str
    protect: bool
    dependencies: tuple[str, ...]
    ignore_changes: tuple[str, ...] = ()
    delete_before_replace: bool = False
    replace_with: tuple[str, ...] = ()
    plain_strings: frozenset[str] = frozenset()
    """Every string in the inputs as sent to the engine, except those inside a secret."""

    @property
    def is_provider(self) -> bool:
        return self.type.startswith("pulumi:providers:")


@dataclass(frozen=True)
class LiveWorld:
    """What the program's look-ups find, as they would in the account and on this machine."""

    instance_exists: bool = True
    """The stack's RDS instance or Aurora cluster exists (False: the first `pulumi up` of a new stack)."""
    tunnel_open: bool = True
    """Something accepts connections where `pulumi up` connects for the in-database part."""
    cli_version: str = MOCK_CLI_VERSION
    """The Pulumi CLI version the engine reports."""
    allocated_storage_gb: int | None = None
    """What the instance reports as allocated after storage autoscaling grew it (None: as configured)."""


@dataclass
class ProgramRun:
    stack: str
    config: dict[str, str]
    world: LiveWorld = field(default_factory=LiveWorld)
    resources: list[Registration] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    duplicate_urns: list[str] = field(default_factory=list)
    components_with_outputs: set[str] = field(default_factory=set)
    warnings: list[str] = field(default_factory=list)
    """What the program logged as warnings (pulumi.log.warn)."""

    def of_type(self, type_token: str) -> list[Registration]:
        return [resource for resource in self.resources if resource.type == type_token]

    def one(self, type_token: str) -> Registration:
        found = self.of_type(type_token)
        if len(found) != 1:
            raise LookupError(f"expected one {type_token}, the program registered {len(found)}")
        return found[0]

    def by_urn(self, urn: str) -> Registration:
        for resource in self.resources:
            if resource.urn == urn:
                return resource
        raise LookupError(urn)


class _ProviderLikeMocks(pulumi.runtime.Mocks):
    """Answers as AWS would after creation: the computed attributes the program reads.

    Inputs and state use the engine's camelCase property names.
    """

    def __init__(self, region: str, world: LiveWorld) -> None:
        self.region = region
        self.world = world

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        state = dict(args.inputs)
        resource_id = f"{args.name}-id"
        if args.typ == "aws:rds/instance:Instance":
            identifier = state.get("identifier") or args.name
            address = f"{identifier}.c0ffee000000.{self.region}.rds.amazonaws.com"
            state.update(
                address=address,
                endpoint=f"{address}:5432",
                port=5432,
                engineVersionActual=f"{state.get('engineVersion', '')}.x",
                arn=f"arn:aws:rds:{self.region}:{MOCK_ACCOUNT}:db:{identifier}",
                masterUserSecrets=[
                    {"secretArn": f"arn:aws:secretsmanager:{self.region}:{MOCK_ACCOUNT}:secret:rds!db-{identifier}"}
                ]
                if state.get("manageMasterUserPassword")
                else [],
            )
            if self.world.allocated_storage_gb is not None:
                state["allocatedStorage"] = self.world.allocated_storage_gb
            resource_id = identifier
        elif args.typ == "aws:rds/cluster:Cluster":
            resource_id = state.get("clusterIdentifier") or args.name
            state.update(self._cluster(resource_id, managed_secret=bool(state.get("manageMasterUserPassword"))))
            state["engineVersionActual"] = f"{state.get('engineVersion', '')}.x"
        elif args.typ == "aws:rds/clusterInstance:ClusterInstance":
            resource_id = state.get("identifier") or args.name
            address = f"{resource_id}.c0ffee000000.{self.region}.rds.amazonaws.com"
            state.update(
                endpoint=address,
                port=5432,
                arn=f"arn:aws:rds:{self.region}:{MOCK_ACCOUNT}:db:{resource_id}",
                writer=resource_id.endswith("-writer"),
            )
        elif args.typ in (
            "aws:rds/parameterGroup:ParameterGroup",
            "aws:rds/clusterParameterGroup:ClusterParameterGroup",
            "aws:rds/subnetGroup:SubnetGroup",
        ):
            state["name"] = f"{state.get('namePrefix', args.name)}0001"
            resource_id = state["name"]
        elif args.typ == "random:index/randomId:RandomId":
            state.update(hex="5eed0001", b64Url="Xu0AAQ")
        elif args.typ in ("aws:cloudwatch/metricAlarm:MetricAlarm", "aws:budgets/budget:Budget"):
            state["name"] = args.name
        elif args.typ == "random:index/randomBytes:RandomBytes":
            raw = hashlib.sha256(args.name.encode()).digest()[: int(state.get("length", 16))]
            state.update(base64=base64.b64encode(raw).decode(), hex=raw.hex())
        elif args.typ == "random:index/randomPassword:RandomPassword":
            state["result"] = f"{MOCK_PASSWORD_PREFIX}{args.name}"
        elif args.typ.startswith(DYNAMIC_TYPE_PREFIX):
            state.update(_mock_schema_outputs(state.get("migrations")))
        service = args.typ.split(":")[1].split("/")[0] if args.typ.startswith("aws:") else ""
        state.setdefault("arn", f"arn:aws:{service}:{self.region}:{MOCK_ACCOUNT}:{args.name}")
        return resource_id, state

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        answers: dict[str, Callable[[Mapping[str, Any]], dict[str, Any]]] = {
            "aws:index/getAvailabilityZones:getAvailabilityZones": self._zones,
            "aws:secretsmanager/getSecretVersion:getSecretVersion": _master_secret_version,
            "aws:rds/getInstances:getInstances": self._instances,
            "aws:rds/getInstance:getInstance": self._instance,
            "aws:rds/getClusters:getClusters": self._clusters,
            "aws:rds/getCluster:getCluster": self._cluster_detail,
            "aws:ec2/getSubnet:getSubnet": self._subnet,
            "aws:ssm/getParameter:getParameter": _image_parameter,
        }
        answer = answers.get(args.token)
        if answer is None:
            raise NotImplementedError(f"the offline plan has no answer for the invoke {args.token}")
        return answer(args.args), []

    def _instances(self, arguments: Mapping[str, Any]) -> dict[str, Any]:
        found = _filter_values(arguments) if self.world.instance_exists else []
        return {"id": self.region, "instanceIdentifiers": found, "instanceArns": []}

    def _instance(self, arguments: Mapping[str, Any]) -> dict[str, Any]:
        identifier = str(arguments.get("dbInstanceIdentifier"))
        address = f"{identifier}.c0ffee000000.{self.region}.rds.amazonaws.com"
        return {"id": identifier, "address": address, "port": 5432, "endpoint": f"{address}:5432"}

    def _clusters(self, arguments: Mapping[str, Any]) -> dict[str, Any]:
        found = _filter_values(arguments) if self.world.instance_exists else []
        return {"id": self.region, "clusterIdentifiers": found, "clusterArns": []}

    def _cluster_detail(self, arguments: Mapping[str, Any]) -> dict[str, Any]:
        identifier = str(arguments.get("clusterIdentifier"))
        return {"id": identifier, "clusterIdentifier": identifier, **self._cluster(identifier, managed_secret=True)}

    def _subnet(self, arguments: Mapping[str, Any]) -> dict[str, Any]:
        """The stack's own subnets: a zone per last hex digit, spread over three as a real stack's would be."""
        subnet_id = str(arguments.get("id"))
        zone = f"{self.region}{'abc'[int(subnet_id[-1], 16) % 3]}"
        return {"id": subnet_id, "availabilityZone": zone, "vpcId": "vpc-mock"}

    def _cluster(self, identifier: str, *, managed_secret: bool) -> dict[str, Any]:
        """An Aurora cluster's endpoints, port, ARN and managed master secret, as RDS reports them."""
        secret = f"arn:aws:secretsmanager:{self.region}:{MOCK_ACCOUNT}:secret:rds!cluster-{identifier}"
        return {
            "endpoint": f"{identifier}.cluster-c0ffee000000.{self.region}.rds.amazonaws.com",
            "readerEndpoint": f"{identifier}.cluster-ro-c0ffee000000.{self.region}.rds.amazonaws.com",
            "port": 5432,
            "arn": f"arn:aws:rds:{self.region}:{MOCK_ACCOUNT}:cluster:{identifier}",
            "masterUserSecrets": [{"secretArn": secret}] if managed_secret else [],
        }

    def _zones(self, arguments: Mapping[str, Any]) -> dict[str, Any]:
        """The region's zones as AWS lists them: by name, so an opted-in Local Zone comes first."""
        zones = [(f"{self.region}-bos-1a", "local-zone")] + [
            (f"{self.region}{letter}", "availability-zone") for letter in "abc"
        ]
        for wanted in arguments.get("filters") or []:
            if wanted.get("name") == "zone-type":
                zones = [zone for zone in zones if zone[1] in wanted.get("values", [])]
        names = [name for name, _ in zones]
        return {"names": names, "zoneIds": [f"id-{name}" for name in names], "id": self.region}


def _filter_values(arguments: Mapping[str, Any]) -> list[str]:
    return [str(value) for wanted in arguments.get("filters") or [] for value in wanted.get("values") or []]


def _master_secret_version(arguments: Mapping[str, Any]) -> dict[str, Any]:
    secret = {"username": MOCK_MASTER_USERNAME, "password": MOCK_MASTER_PASSWORD}
    secret_id = str(arguments.get("secretId", ""))
    return {"arn": secret_id, "id": secret_id, "secretId": secret_id, "secretString": json.dumps(secret)}


def _image_parameter(arguments: Mapping[str, Any]) -> dict[str, Any]:
    name = str(arguments.get("name"))
    return {"id": name, "name": name, "value": MOCK_IMAGE_ID, "type": "String"}


class _RecordingEngine(pulumi_mocks.MockEngine):
    """The engine side of the mocks: keeps warnings, and answers version checks like the CLI would."""

    def __init__(self, run: ProgramRun) -> None:
        super().__init__(None)
        self.run = run

    def Log(self, request: Any) -> None:  # noqa: N802 (gRPC method name)
        from pulumi.runtime.proto import engine_pb2  # noqa: PLC0415 (generated code, only needed here)

        # Warnings are kept for the caller to show (the plan prints them); the rest goes to logging.
        if request.severity == engine_pb2.WARNING:
            self.run.warnings.append(request.message)
        else:
            super().Log(request)  # type: ignore[no-untyped-call]

    def RequirePulumiVersion(self, request: Any) -> None:  # noqa: N802 (gRPC method name)
        wanted = request.pulumi_version_range
        if not _satisfies(self.run.world.cli_version, wanted):
            raise RuntimeError(f"Pulumi CLI version {self.run.world.cli_version} does not satisfy {wanted}")


def _satisfies(version: str, wanted: str) -> bool:
    """The `>=X.Y.Z` ranges the program uses; anything else is a mistake in the program."""
    if not wanted.startswith(">="):
        raise ValueError(f"the offline engine only checks >= ranges, not {wanted!r}")

    def parts(text: str) -> tuple[int, ...]:
        return tuple(int(part) for part in text.split("."))

    return parts(version) >= parts(wanted[2:])


def _mock_schema_outputs(migrations: Any) -> dict[str, Any]:
    """What the schema resource reports after applying `migrations` ({file name: sha256})."""
    planned = dict(migrations) if isinstance(migrations, dict) else {}
    versions = [int(name[1:5]) for name in planned if name[1:5].isdigit()]
    digest = hashlib.sha256(json.dumps(planned, sort_keys=True).encode()).hexdigest()
    return {"version": max(versions, default=0), "checksum": digest}


def _plain_strings(value: Any) -> Iterator[str]:
    """String leaves of a protobuf property Struct, skipping every secret-wrapped value.

    Struct and ListValue unwrap their members to Python values as they are read.
    """
    if isinstance(value, str):
        yield value
    elif hasattr(value, "fields"):  # a Struct
        if SECRET_SIG_KEY in value and value[SECRET_SIG_KEY] == SECRET_SIG:
            return
        for _, item in value.items():
            yield from _plain_strings(item)
    elif isinstance(value, Iterable):  # a ListValue
        for item in value:
            yield from _plain_strings(item)


class _RecordingMonitor(pulumi_mocks.MockMonitor):
    """MockMonitor that also keeps each registration's parent, provider and options."""

    def __init__(self, mocks: pulumi.runtime.Mocks, run: ProgramRun) -> None:
        super().__init__(mocks)
        self.run = run

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 (gRPC method name)
        response = super().RegisterResource(request)  # type: ignore[no-untyped-call]
        if request.type == STACK_TYPE:
            return response
        if any(existing.urn == response.urn for existing in self.run.resources):
            self.run.duplicate_urns.append(response.urn)
        self.run.resources.append(
            Registration(
                urn=response.urn,
                type=request.type,
                name=request.name,
                custom=bool(request.custom),
                inputs=pulumi.runtime.rpc.deserialize_properties(request.object),
                parent=request.parent,
                provider=request.provider,
                protect=bool(request.protect),
                dependencies=tuple(request.dependencies),
                ignore_changes=tuple(request.ignoreChanges),
                delete_before_replace=bool(request.deleteBeforeReplace),
                replace_with=tuple(request.replace_with),
                plain_strings=frozenset(_plain_strings(request.object)),
            )
        )
        return response

    def RegisterResourceOutputs(self, request: Any) -> Any:  # noqa: N802 (gRPC method name)
        self.run.components_with_outputs.add(request.urn)
        return super().RegisterResourceOutputs(request)  # type: ignore[no-untyped-call]


def run_program(
    project_root: Path, stack: str, overrides: Mapping[str, str] | None = None, *, world: LiveWorld | None = None
) -> ProgramRun:
    """Run `__main__.py` of the project for `stack` and return what it registered.

    `overrides` replaces config values (full keys, engine strings), as
    `pulumi config set` would. `world` is what the program's look-ups find;
    by default a live instance with the tunnel open, so the plan shows the
    whole stack. Raises whatever the program raises, e.g.
    infra.settings.SettingsError for bad settings.
    """
    config = load_stack_config(ProjectFiles(project_root), stack)
    config.update(overrides or {})
    run = ProgramRun(stack=stack, config=config, world=world or LiveWorld())
    execute(project_root, run)
    return run


def execute(project_root: Path, run: ProgramRun) -> None:
    """Run the program with `run.config`, recording into `run` as it goes."""
    mocks = _ProviderLikeMocks(region=run.config.get("aws:region", "us-east-1"), world=run.world)
    pulumi_settings.ROOT.set(None)
    pulumi.runtime.set_mocks(
        mocks, project="temporaldb", stack=run.stack, preview=False, monitor=_RecordingMonitor(mocks, run)
    )
    pulumi_settings.SETTINGS.engine = _RecordingEngine(run)
    pulumi.runtime.set_all_config(dict(run.config))
    pulumi_settings.SETTINGS.rpc_manager.clear()
    pulumi_settings.SETTINGS.outputs.clear()

    if str(project_root) not in sys.path:
        sys.path.insert(0, str(project_root))

    async def program() -> None:
        runpy.run_path(str(project_root / "__main__.py"), run_name="__main__")
        root = pulumi_settings.get_root_resource()
        exported = getattr(root, "outputs", {})
        run.outputs = await pulumi.Output.from_input(dict(exported)).future() or {}

    # The program's TCP check of the tunnel answers from `run.world`, never from this machine's ports.
    with mock.patch("infra.discovery.port_is_open", return_value=run.world.tunnel_open):
        _sync_await(run_pulumi_func(program))
