"""What the RDS upgrade drill is given: its options, the logins it uses on its copy and how it reaches the copy.

The logins come from Secrets Manager (`read_logins`); SQL only ever goes to the drill's copy, never to the source.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from temporaldb import roles
from temporaldb.drills import rds, rds_cluster
from temporaldb.drills.aws_restore import SqlAccess, login_secret, read_login

APPLICATION_NAME: Final = "temporaldb upgrade drill"


@dataclass(frozen=True)
class Login:
    user: str
    password: str | None


@dataclass(frozen=True)
class Logins:
    """The three logins the drill uses on the copy (a copy restored from a snapshot keeps the source's passwords)."""

    analyst: Login
    """Reads the facts (the model's reader group)."""
    migrator: Login
    """Runs ANALYZE (its group owns the tables)."""
    master: Login
    """Runs the pre-checks (reads every database's catalog)."""


@dataclass(frozen=True)
class UpgradeAccess:
    """How the drill reaches its copy over SQL; it never connects to the source."""

    logins: Logins
    database: str = roles.database_name("nba")
    copy_host: str | None = None
    """Reach the copy here instead of its address (the local end of an SSM tunnel)."""
    copy_port: int | None = None
    sslmode: str = "require"
    connect_timeout: int = 15
    """Seconds; the Aurora drill waits longer (a paused Serverless v2 instance resumes on the first connection)."""

    def dsn(self, login: Login, address: str, port: int, database: str | None = None) -> str:
        access = SqlAccess(
            login.user,
            login.password,
            database or self.database,
            copy_host=self.copy_host,
            copy_port=self.copy_port,
            sslmode=self.sslmode,
            application_name=APPLICATION_NAME,
            connect_timeout=self.connect_timeout,
        )
        return access.dsn(address, port, copy=True)


@dataclass(frozen=True)
class UpgradeOptions:
    instance: str | None = None
    stack: str | None = None
    target_version: str = "18"
    """A major ("18": the highest 18.x RDS offers as an upgrade of the source) or a full version ("18.1")."""
    poll_seconds: float = 30.0
    timeout_seconds: float = 3 * 3600.0
    """The limit of every wait: the snapshot, the copy, the upgrade, the copy's deletion."""
    cluster: str | None = None
    """An Aurora cluster as the source (temporaldb/drills/aws_cluster_upgrade.py)."""


def read_logins(
    client: rds.Client,
    secrets: Any,
    options: UpgradeOptions,
    *,
    cluster: bool = False,
    master_secret_id: str | None = None,
    analyst_secret_id: str | None = None,
    migrator_secret_id: str | None = None,
) -> Logins:
    """The logins from Secrets Manager: `temporaldb-<stack>/{analyst,migrator}-*`, and the master user's secret.

    The master secret is `master_secret_id`, else the one RDS manages for the source (`MasterUserSecret` of the
    instance, or with `cluster` of the Aurora cluster). The stack is `options.stack`, else the source's `stack` tag.
    Raises PreconditionError when a secret cannot be found.
    """
    source: rds.SourceInstance | rds_cluster.SourceCluster
    if cluster:
        source = rds_cluster.find_cluster_source(client, identifier=options.cluster, stack=options.stack)
        managed = source.master_secret_arn
    else:
        source = rds.find_source(client, identifier=options.instance, stack=options.stack)
        described = client.describe_db_instances(DBInstanceIdentifier=source.identifier)["DBInstances"][0]
        managed = (described.get("MasterUserSecret") or {}).get("SecretArn")
    secret_ids = (master_secret_id or managed, analyst_secret_id, migrator_secret_id)
    return _read_logins(secrets, source.identifier, options.stack or stack_name(source), secret_ids)


def _read_logins(secrets: Any, source: str, stack: str | None, secret_ids: tuple[str | None, ...]) -> Logins:
    """The analyst and migrator logins (their secret ids, else the stack's secrets) and the master's."""
    master_secret_id, analyst_secret_id, migrator_secret_id = secret_ids

    def stack_login(role: str, secret_id: str | None) -> Login:
        if secret_id:
            return Login(*read_login(secrets, secret_id))
        if stack is None:
            raise rds.PreconditionError(f"{source} has no stack tag: pass --stack or the {role} secret id")
        return Login(*login_secret(secrets, stack, role))

    analyst = stack_login("analyst", analyst_secret_id)
    migrator = stack_login("migrator", migrator_secret_id)
    if not master_secret_id:
        raise rds.PreconditionError(f"{source} has no RDS-managed master secret: pass the master login's secret id")
    return Logins(analyst, migrator, Login(*read_login(secrets, master_secret_id)))


def stack_name(source: rds.Tagged) -> str | None:
    """`dev` from the source's tag `stack=temporaldb-dev`."""
    tag = source.tags.get(rds.STACK_TAG, "")
    prefix = f"{rds.PROJECT}-"
    return tag.removeprefix(prefix) if tag.startswith(prefix) else None
