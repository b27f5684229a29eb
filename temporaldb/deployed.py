"""Reach a deployed stack: find its RDS instance by tags, log in as a role of the model, over verified TLS.

`temporaldb migrate|load|asof --stack dev [--role ROLE]` and `temporaldb dsn --stack dev` come here:

- the region (and AWS profile) come from the stack file, `Pulumi.<stack>.yaml` (`aws:region`,
  `aws:profile`), read without Pulumi; `--region` and `--endpoint-url` override;
- the instance is the one tagged `project=temporaldb, stack=temporaldb-<stack>` (read replicas and drill
  copies carry the tags too and are left out), as the drills find it; on a stack with `engine: aurora`, the
  Aurora cluster so tagged, at its writer endpoint, or at its reader endpoint for a login of the reader group
  (analyst, app: what `asof`, `panel` and `plot` log in as) when the cluster has readers;
- a role listed in the stack's `iamAuthUsers` gets an IAM auth token (valid 15 minutes, signed for the
  instance's own address and port); any other role reads its login secret, `temporaldb-<stack>/<role>-*`
  in Secrets Manager, as `pulumi up` wrote it;
- `--host`/`--port` name the local end of a tunnel: libpq then connects to that address (`hostaddr`) while
  TLS checks the certificate against the instance's name (`host`);
- TLS is always on: `verify-full` against an RDS CA bundle (`--ca-bundle`, `$TEMPORALDB_RDS_CA_BUNDLE`, or
  the one shipped in `temporaldb/data/`), else `require` with a warning that the server is not verified.

The password never leaves this process except to libpq: it is in no printed DSN, message or argv.
Nothing here imports Pulumi; boto3, botocore and psycopg are imported when first needed.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Final

from temporaldb import roles
from temporaldb.stackconfig import ProjectFiles, StackConfigError, load_stack_config

# Exit codes of the commands that reach a stack (2 is argparse's usage error, 4 the database's).
EXIT_USAGE: Final = 2
EXIT_NOT_DEPLOYED: Final = 5
EXIT_NO_LOGIN: Final = 6
EXIT_AWS: Final = 7

CA_BUNDLE_ENV: Final = "TEMPORALDB_RDS_CA_BUNDLE"
SHIPPED_CA_BUNDLE: Final = Path(__file__).resolve().parent / "data" / "rds-ca-bundle.pem"
# The shipped bundle names each certificate on a comment line: "# Amazon RDS <region> Root CA <kind> (...)".
CA_KINDS: Final = {
    "rds-ca-rsa2048-g1": "RSA2048 G1",
    "rds-ca-rsa4096-g1": "RSA4096 G1",
    "rds-ca-ecc384-g1": "ECC384 G1",
}
IAM_TOKEN_MINUTES: Final = 15
CONNECT_TIMEOUT_SECONDS: Final = 15
CLUSTER_CONNECT_TIMEOUT_SECONDS: Final = 60
"""An Aurora Serverless v2 instance that paused resumes on the first connection attempt, in about 15 s."""
PROJECT: Final = "temporaldb"

Say = Callable[[str], None]


class DeployedStackError(Exception):
    """The stack cannot be reached; the message is one line saying why, `exit_code` what to exit with."""

    exit_code: ClassVar[int] = EXIT_NOT_DEPLOYED


class UsageError(DeployedStackError):
    """A stack file, role, CA bundle or tunnel host that does not exist, or options that do not go together."""

    exit_code = EXIT_USAGE


class NotDeployedError(DeployedStackError):
    """No instance (or more than one) carries the stack's tags, or it has no endpoint yet."""

    exit_code = EXIT_NOT_DEPLOYED


class NoLoginError(DeployedStackError):
    """The role has no usable login: no secret (or several), a malformed one, or IAM auth off."""

    exit_code = EXIT_NO_LOGIN


class AwsError(DeployedStackError):
    """AWS cannot be reached, there are no credentials, or AWS refused them or the request."""

    exit_code = EXIT_AWS


@dataclass(frozen=True)
class StackRequest:
    """What the command line asked for."""

    stack: str
    role: str
    project_root: Path
    host: str | None = None
    """The local end of a tunnel to the instance (a host name or IP address)."""
    port: int | None = None
    """The tunnel's local port (default: the instance's port)."""
    database: str | None = None
    """Default: the database of the stack's first sport (nba_temporal)."""
    ca_bundle: Path | None = None
    region: str | None = None
    endpoint_url: str | None = None


@dataclass(frozen=True)
class StackFile:
    """What the stack file says about reaching the stack."""

    stack: str
    file_name: str
    region: str | None
    profile: str | None
    iam_users: tuple[str, ...]
    database: str

    @property
    def qualified(self) -> str:
        """The `stack` tag value and the login secrets' name prefix: temporaldb-<stack>."""
        return f"{PROJECT}-{self.stack}"


@dataclass(frozen=True)
class Instance:
    """Where to connect: an RDS instance, or an endpoint of an Aurora cluster."""

    identifier: str
    address: str
    port: int
    status: str
    iam_auth: bool
    ca_identifier: str
    endpoint: str | None = None
    """For a cluster: which of its endpoints `address` is ("writer endpoint" or "reader endpoint")."""

    @property
    def name(self) -> str:
        return f"{self.identifier} {self.endpoint}" if self.endpoint else self.identifier


@dataclass(frozen=True)
class Tls:
    sslmode: str
    root_cert: Path | None
    warning: str | None = None
    """Set when the server's identity is not verified: why, and how to fix it."""


@dataclass(frozen=True)
class Login:
    """Where and as whom to connect; never the password."""

    stack: str
    region: str
    instance: Instance
    user: str
    database: str
    tls: Tls
    tunnel: tuple[str, ...] = ()
    """IP addresses of the tunnel's local end (libpq hostaddr), empty to connect to the instance directly."""
    tunnel_port: int | None = None
    secret_arn: str | None = None
    """The login secret holding the password; None for an IAM user."""

    @property
    def iam(self) -> bool:
        return self.secret_arn is None

    @property
    def port(self) -> int:
        return self.tunnel_port if self.tunnel and self.tunnel_port else self.instance.port

    def params(self) -> dict[str, str]:
        """libpq keywords, without the password."""
        address = self.instance.address
        params = {"host": ",".join([address] * len(self.tunnel)) if self.tunnel else address}
        if self.tunnel:
            params["hostaddr"] = ",".join(self.tunnel)
        params.update(port=str(self.port), dbname=self.database, user=self.user, sslmode=self.tls.sslmode)
        if self.tls.root_cert is not None:
            params["sslrootcert"] = str(self.tls.root_cert)
        timeout = CLUSTER_CONNECT_TIMEOUT_SECONDS if self.instance.endpoint else CONNECT_TIMEOUT_SECONDS
        params["connect_timeout"] = str(timeout)
        return params

    def dsn(self) -> str:
        """The libpq DSN to show: everything but the password."""
        from psycopg.conninfo import make_conninfo  # noqa: PLC0415 (psycopg is only needed to connect)

        return make_conninfo("", **self.params())

    def describe(self) -> str:
        """One line for stderr: which instance, through what, as whom, how the password comes, TLS."""
        instance = self.instance
        through = f" through {self.tunnel[0]}:{self.port}" if self.tunnel else ""
        how = "an IAM token" if self.iam else f"password from secret {self.secret_arn}"
        verified = f"verify-full against {self.tls.root_cert}" if self.tls.root_cert else self.tls.sslmode
        return (
            f"stack {self.stack}: {instance.name} ({instance.status}) at {instance.address}:{instance.port}"
            f"{through}, database {self.database} as {self.user} ({how}), TLS {verified}"
        )

    def password_hint(self) -> str:
        """How to get the password by hand (`temporaldb dsn` prints this instead of the password)."""
        if self.iam:
            return (
                f"the password is an IAM auth token, valid {IAM_TOKEN_MINUTES} minutes: "
                f"aws rds generate-db-auth-token --hostname {self.instance.address} --port {self.instance.port} "
                f"--username {self.user} --region {self.region}"
            )
        return (
            f"the password is the `password` field of secret {self.secret_arn}: "
            f"aws secretsmanager get-secret-value --secret-id {self.secret_arn} --region {self.region}"
        )


@dataclass
class AwsClients:
    """boto3 clients for the stack's region, and where that region came from (for error messages)."""

    rds: Any
    secrets: Any
    ec2: Any
    region: str
    region_origin: str
    endpoint_url: str | None


# --------------------------------------------------------------------------------------------------------------
# Pure steps: the stack file, the role, the tunnel, the CA bundle
# --------------------------------------------------------------------------------------------------------------


def check_role(role: str) -> roles.LoginRole:
    try:
        return roles.login(role)
    except KeyError:
        known = ", ".join(roles.login_names())
        raise UsageError(f"{role!r} is not a login role of the model ({known})") from None


def read_stack_file(project_root: Path, stack: str) -> StackFile:
    """Region, profile, IAM users and default database from `Pulumi.<stack>.yaml` (and Pulumi.yaml's defaults)."""
    files = ProjectFiles(project_root)
    try:
        config = load_stack_config(files, stack, skip_encrypted=True)
    except StackConfigError as error:
        raise UsageError(str(error)) from None
    file_name = files.stack_file(stack).name
    iam_users = _string_list(config, "temporaldb:iamAuthUsers", file_name)
    sports = _string_list(config, "temporaldb:sports", file_name)
    return StackFile(
        stack=stack,
        file_name=file_name,
        region=config.get("aws:region") or None,
        profile=config.get("aws:profile") or None,
        iam_users=iam_users,
        database=roles.database_name(sports[0] if sports else "nba"),
    )


def _string_list(config: Mapping[str, str], key: str, file_name: str) -> tuple[str, ...]:
    raw = config.get(key, "")
    try:
        value = json.loads(raw) if raw else []
    except json.JSONDecodeError:
        value = None
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise UsageError(f"{file_name}: {key} = {raw} is not a list of names")
    return tuple(value)


def tunnel_addresses(host: str) -> tuple[str, ...]:
    """The IP addresses of `--host`, in the resolver's order (libpq tries each, like it would the name)."""
    if host.startswith("/"):
        raise UsageError(f"--host {host} is a socket folder: give the tunnel's host name or IP address (TLS needs TCP)")
    try:
        found = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        raise UsageError(f"cannot resolve --host {host!r}: {getattr(error, 'strerror', None) or error}") from None
    return tuple(dict.fromkeys(str(entry[4][0]) for entry in found))


def named_ca_bundle(explicit: Path | None) -> Path | None:
    """The CA bundle the user named (--ca-bundle, else the environment), checked to exist; None if neither."""
    if explicit is not None:
        path, origin = explicit, "--ca-bundle"
    elif os.environ.get(CA_BUNDLE_ENV):
        path, origin = Path(os.environ[CA_BUNDLE_ENV]), f"${CA_BUNDLE_ENV}"
    else:
        return None
    if not path.is_file():
        raise UsageError(f"{origin} {path}: no such file (the RDS CA bundle, e.g. AWS's global-bundle.pem)")
    return path.resolve()


def choose_tls(named: Path | None, region: str, instance: Instance) -> Tls:
    """verify-full against the named bundle, else the shipped one if it covers the instance's CA; else require."""
    if named is not None:
        return Tls("verify-full", named)
    kind = CA_KINDS.get(instance.ca_identifier)
    wanted = f"# Amazon RDS {region} Root CA {kind} (" if kind else f"# Amazon RDS {region} Root CA "
    try:
        shipped = SHIPPED_CA_BUNDLE.read_text(encoding="utf-8")
    except OSError:
        return Tls("require", None, _unverified(region, f"no RDS CA bundle was found ({SHIPPED_CA_BUNDLE} is missing)"))
    if wanted not in shipped:
        what = f"{instance.ca_identifier} root for {region}" if kind else f"root for {region}"
        return Tls("require", None, _unverified(region, f"the RDS CA bundle shipped with temporaldb has no {what}"))
    return Tls("verify-full", SHIPPED_CA_BUNDLE)


def _unverified(region: str, why: str) -> str:
    return (
        f"warning: TLS without server verification (sslmode=require): the server's identity is not checked, "
        f"because {why}; download https://truststore.pki.rds.amazonaws.com/{region}/{region}-bundle.pem and pass "
        f"--ca-bundle PATH or set {CA_BUNDLE_ENV}"
    )


# --------------------------------------------------------------------------------------------------------------
# AWS: the instance, the login secret, the IAM token
# --------------------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def aws_errors(what: str, aws: AwsClients | None = None) -> Iterator[None]:
    """botocore's exceptions as one-line AwsError messages saying what was being done."""
    import botocore.exceptions  # noqa: PLC0415

    from temporaldb.drills.rds import CREDENTIAL_ERRORS  # noqa: PLC0415

    where = ""
    if aws is not None:
        where = f" in {aws.region}" + (f" at {aws.endpoint_url}" if aws.endpoint_url else "")
    try:
        yield
    except botocore.exceptions.NoCredentialsError:
        raise AwsError(
            f"no AWS credentials to {what}{where}: configure them (aws configure, AWS_PROFILE or aws:profile in the "
            "stack file)"
        ) from None
    except botocore.exceptions.ClientError as error:
        details = error.response.get("Error", {})
        code = str(details.get("Code", "error"))
        reason = f"{code}: {details.get('Message', '')}".rstrip(": ")
        if code in CREDENTIAL_ERRORS:
            raise AwsError(f"AWS refused the credentials or the permission to {what}{where}: {reason}") from None
        raise AwsError(f"AWS refused to {what}{where}: {reason}") from None
    except botocore.exceptions.BotoCoreError as error:  # endpoint unreachable, timeouts, bad profile, ...
        raise AwsError(f"cannot reach AWS to {what}{where}: {error}") from None


def clients(stack_file: StackFile, request: StackRequest) -> AwsClients:
    import boto3  # noqa: PLC0415 (only --stack needs AWS)
    import botocore.config  # noqa: PLC0415
    import botocore.exceptions  # noqa: PLC0415

    try:
        session = boto3.session.Session(profile_name=stack_file.profile)
    except botocore.exceptions.ProfileNotFound:
        raise AwsError(
            f"the AWS profile {stack_file.profile!r} (aws:profile in {stack_file.file_name}) is not in the AWS "
            "configuration (~/.aws/config)"
        ) from None
    if request.region:
        region, origin = request.region, "--region"
    elif stack_file.region:
        region, origin = stack_file.region, f"aws:region in {stack_file.file_name}"
    elif session.region_name:
        region, origin = str(session.region_name), "the AWS configuration"
    else:
        raise UsageError(f"no AWS region: set aws:region in {stack_file.file_name} or pass --region")
    config = botocore.config.Config(
        connect_timeout=10, read_timeout=30, retries={"max_attempts": 3, "mode": "standard"}
    )
    with aws_errors("create the AWS clients"):
        rds = session.client("rds", region_name=region, endpoint_url=request.endpoint_url, config=config)
        secrets = session.client("secretsmanager", region_name=region, endpoint_url=request.endpoint_url, config=config)
        ec2 = session.client("ec2", region_name=region, endpoint_url=request.endpoint_url, config=config)
    return AwsClients(rds, secrets, ec2, region, origin, request.endpoint_url)


def find_instance(aws: AwsClients, stack_file: StackFile, *, read_only: bool = False) -> Instance:
    """The stack's database: its Aurora cluster (at the reader endpoint when `read_only` and it has readers,
    else the writer endpoint) or else the one primary instance tagged project=temporaldb,
    stack=temporaldb-<stack> (not a replica, a drill copy or a cluster's member)."""
    from temporaldb.drills import rds as drill_rds  # noqa: PLC0415

    wanted = {drill_rds.PROJECT_TAG: PROJECT, drill_rds.STACK_TAG: stack_file.qualified}
    cluster = _find_cluster(aws, stack_file, wanted)
    if cluster is not None:
        return _cluster_endpoint(aws, cluster, read_only=read_only)
    with aws_errors("list the RDS instances", aws):
        described = [
            instance
            for page in aws.rds.get_paginator("describe_db_instances").paginate()
            for instance in page["DBInstances"]
        ]
    matches = []
    for instance in described:
        tags = drill_rds.tags_of(instance.get("TagList"))
        if all(tags.get(key) == value for key, value in wanted.items()) and not (
            drill_rds.DRILL_TAG in tags
            or instance.get("ReadReplicaSourceDBInstanceIdentifier")
            or instance.get("DBClusterIdentifier")
        ):
            matches.append(instance)
    tagged = f"tagged project={PROJECT}, stack={stack_file.qualified}"
    if not matches:
        raise NotDeployedError(
            f"no RDS instance {tagged} in {aws.region} (region from {aws.region_origin}): "
            f"has `pulumi up` run for stack {stack_file.stack}?"
        )
    if len(matches) > 1:
        names = ", ".join(sorted(str(match["DBInstanceIdentifier"]) for match in matches))
        raise NotDeployedError(
            f"{len(matches)} RDS instances {tagged} in {aws.region} ({names}); expected one: "
            "remove the stray instance or its stack tag"
        )
    found = matches[0]
    endpoint = found.get("Endpoint") or {}
    identifier = str(found["DBInstanceIdentifier"])
    status = str(found.get("DBInstanceStatus", "unknown"))
    if not endpoint.get("Address"):
        raise NotDeployedError(f"{identifier} is {status} and has no endpoint yet; try again when it is available")
    return Instance(
        identifier=identifier,
        address=str(endpoint["Address"]),
        port=int(endpoint.get("Port") or found.get("DbInstancePort") or 5432),
        status=status,
        iam_auth=bool(found.get("IAMDatabaseAuthenticationEnabled")),
        ca_identifier=str(found.get("CACertificateIdentifier", "")),
    )


def _find_cluster(aws: AwsClients, stack_file: StackFile, wanted: Mapping[str, str]) -> dict[str, Any] | None:
    """The one Aurora cluster carrying the stack's tags (not a drill's copy), or None on an instance stack."""
    from temporaldb.drills import rds as drill_rds  # noqa: PLC0415

    with aws_errors("list the RDS clusters", aws):
        described = [
            cluster
            for page in aws.rds.get_paginator("describe_db_clusters").paginate()
            for cluster in page["DBClusters"]
        ]
    matches = [
        cluster
        for cluster in described
        if all(drill_rds.tags_of(cluster.get("TagList")).get(key) == value for key, value in wanted.items())
        and drill_rds.DRILL_TAG not in drill_rds.tags_of(cluster.get("TagList"))
    ]
    if len(matches) > 1:
        names = ", ".join(sorted(str(match["DBClusterIdentifier"]) for match in matches))
        raise NotDeployedError(
            f"{len(matches)} Aurora clusters tagged project={PROJECT}, stack={stack_file.qualified} in {aws.region} "
            f"({names}); expected one: remove the stray cluster or its stack tag"
        )
    return matches[0] if matches else None


def _cluster_endpoint(aws: AwsClients, cluster: Mapping[str, Any], *, read_only: bool) -> Instance:
    """The writer endpoint, or the reader endpoint for a read-only login when the cluster has a reader (the
    reader endpoint of a cluster without one leads to the writer anyway)."""
    identifier = str(cluster["DBClusterIdentifier"])
    status = str(cluster.get("Status", "unknown"))
    members = cluster.get("DBClusterMembers") or []
    writers = [str(member["DBInstanceIdentifier"]) for member in members if member.get("IsClusterWriter")]
    has_reader = any(not member.get("IsClusterWriter") for member in members)
    use_reader = read_only and has_reader
    address = cluster.get("ReaderEndpoint") if use_reader else cluster.get("Endpoint")
    if not address or not writers:
        raise NotDeployedError(
            f"Aurora cluster {identifier} is {status} and has no writer endpoint yet; try again when its writer "
            "is available"
        )
    # The server certificate is an instance's: the writer's CA stands for the cluster's.
    with aws_errors(f"describe the writer {writers[0]}", aws):
        [writer] = aws.rds.describe_db_instances(DBInstanceIdentifier=writers[0])["DBInstances"]
    return Instance(
        identifier=identifier,
        address=str(address),
        port=int(cluster.get("Port") or 5432),
        status=status,
        iam_auth=bool(cluster.get("IAMDatabaseAuthenticationEnabled")),
        ca_identifier=str(writer.get("CACertificateIdentifier", "")),
        endpoint="reader endpoint" if use_reader else "writer endpoint",
    )


def find_login_secret(aws: AwsClients, stack_file: StackFile, role: str) -> str:
    """The ARN of the role's login secret, named `temporaldb-<stack>/<role>-<suffix>` by `pulumi up`."""
    prefix = f"{stack_file.qualified}/{role}-"
    with aws_errors("list the login secrets", aws):
        found = [
            entry
            for page in aws.secrets.get_paginator("list_secrets").paginate(
                Filters=[{"Key": "name", "Values": [prefix]}]
            )
            for entry in page["SecretList"]
            if str(entry.get("Name", "")).startswith(prefix)
        ]
    if not found:
        raise NoLoginError(
            f"no login secret {prefix}* in {aws.region} for role {role}: either it signs in with an IAM token "
            f"(list it in temporaldb:iamAuthUsers of {stack_file.file_name}) or the stack's in-database part is "
            "not deployed (manageDatabase: true, then `pulumi up`)"
        )
    if len(found) > 1:
        names = ", ".join(sorted(str(entry["Name"]) for entry in found))
        raise NoLoginError(f"{len(found)} secrets match {prefix}* in {aws.region} ({names}); expected one")
    return str(found[0]["ARN"])


def read_password(aws: AwsClients, arn: str, role: str) -> str:
    """The password of the login secret (the secret's other fields name the user and the instance)."""
    with aws_errors(f"read secret {arn}", aws):
        text = aws.secrets.get_secret_value(SecretId=arn).get("SecretString")
    try:
        value = json.loads(text or "")
        username, password = value["username"], value["password"]
    except (ValueError, KeyError, TypeError):
        raise NoLoginError(f"secret {arn} does not hold JSON with a username and a password") from None
    if username != role or not isinstance(password, str) or not password:
        raise NoLoginError(f"secret {arn} is not the login of role {role} (its username is {username!r})")
    return password


def iam_token(aws: AwsClients, instance: Instance, user: str) -> str:
    """An IAM auth token for `user` on the instance's own address and port (signed locally, valid 15 minutes)."""
    with aws_errors(f"sign an IAM auth token for {user}", aws):
        token = aws.rds.generate_db_auth_token(
            DBHostname=instance.address, Port=instance.port, DBUsername=user, Region=aws.region
        )
    return str(token)


# --------------------------------------------------------------------------------------------------------------
# The whole way
# --------------------------------------------------------------------------------------------------------------


def locate(request: StackRequest) -> tuple[Login, AwsClients]:
    """Find everything needed to connect, without reading a password."""
    check_role(request.role)
    stack_file = read_stack_file(request.project_root, request.stack)
    named = named_ca_bundle(request.ca_bundle)
    tunnel = tunnel_addresses(request.host) if request.host else ()
    if request.port is not None and not tunnel:
        raise UsageError("--port is the tunnel's port: give --host too (e.g. --host localhost --port 15432)")
    aws = clients(stack_file, request)
    # Logins of the reader group only read: on a cluster with readers they go to the reader endpoint.
    instance = find_instance(aws, stack_file, read_only=roles.login(request.role).group == roles.READER_GROUP)
    if request.role in stack_file.iam_users:
        if not instance.iam_auth:
            raise NoLoginError(
                f"{request.role} is an IAM user in {stack_file.file_name} but {instance.name} has IAM "
                "database authentication off"
            )
        secret_arn = None
    else:
        secret_arn = find_login_secret(aws, stack_file, request.role)
    login = Login(
        stack=request.stack,
        region=aws.region,
        instance=instance,
        user=request.role,
        database=request.database or stack_file.database,
        tls=choose_tls(named, aws.region, instance),
        tunnel=tunnel,
        tunnel_port=request.port,
        secret_arn=secret_arn,
    )
    return login, aws


def connection_dsn(request: StackRequest, say: Say) -> str:
    """A libpq DSN with the password (or IAM token), for psycopg only: never print it or pass it on."""
    from psycopg.conninfo import make_conninfo  # noqa: PLC0415

    login, aws = locate(request)
    say(login.describe())
    if login.tls.warning:
        say(login.tls.warning)
    if login.secret_arn is None:
        password = iam_token(aws, login.instance, login.user)
    else:
        password = read_password(aws, login.secret_arn, login.user)
    return make_conninfo(login.dsn(), password=password)
