"""DatabaseAccess: the sport databases, the role model and the schema, inside PostgreSQL.

Through the `postgresql` provider, connected as the RDS master user (not a
superuser on RDS, hence `superuser=False`), over TLS. The role model is
`temporaldb/roles.py`: three group roles carry the privileges, four login
roles only their membership, connection limit and statement timeout. Each
password login role gets a random password and a Secrets Manager secret
holding it; IAM users get `rds_iam` instead, and no password or secret.

The server is never sent a password: the provider sends `CREATE ROLE ...
PASSWORD '<text>'` as SQL, which `log_statement = ddl` writes to the log that
RDS exports to CloudWatch Logs. The text is the role's SCRAM-SHA-256 verifier,
computed here with a salt kept in state (`temporaldb/scram.py`); PostgreSQL
stores a verifier as it is, and the provider reads it back unchanged.

Deletion order: every sport database waits for every role, so `pulumi destroy`
(or `manageDatabase: false`) drops the databases, and with them the objects the
roles own and the privileges granted to them, before it drops the roles.

Then one SportDatabase per sport: the database `<sport>_temporal`, a provider
pointed at it, the database and schema grants, the extensions, the schema
(MigratedSchema, applied as the migrator) and, once the schema exists, the
object grants and default privileges.

No config is read here and nothing is looked up: the program passes the
master password and where to connect.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_postgresql as postgresql
import pulumi_random as random

from components.schema import MigratedSchema, MigratedSchemaArgs
from temporaldb import roles, scram

MAINTENANCE_DATABASE = "postgres"
# The login that runs the migrations: the one of the owner group (it always has a password).
MIGRATOR: str = next(login.name for login in roles.LOGINS if login.group == roles.OWNER_GROUP)


@dataclass(frozen=True)
class SportDatabaseArgs:
    sport: str
    host: pulumi.Input[str]
    """Where `pulumi up` connects (the instance address, or the local end of a tunnel)."""
    port: pulumi.Input[int]
    admin_password: pulumi.Input[str]
    """The master password; stored as a secret."""
    role_names: Mapping[str, pulumi.Input[str]]
    """Every group role and the migrator login, by model name: the registered names, so grants wait for the roles."""
    migrator_password: pulumi.Input[str]
    migrations: Mapping[str, str]
    """{file name: sha256} of the migrations to apply, as planned."""
    admin_username: pulumi.Input[str] = "temporaldb_admin"
    sslmode: pulumi.Input[str] = "require"
    connect_timeout_seconds: pulumi.Input[int] = 15
    protect: bool = True
    """Refuse to delete the database (and its data) in a `pulumi up` or `pulumi destroy`."""
    migrate_after: Sequence[pulumi.Resource] = ()
    """Resources the migrations wait for: the other sports' schemas, as the migrator has few connections."""
    roles_first: Sequence[pulumi.Resource] = ()
    """The role resources: the database waits for them, so it is dropped before them."""


class SportDatabase(pulumi.ComponentResource):
    """One sport's database with its grants and schema.

    The database itself is created through the provider the component
    inherits (pass the server provider as `providers={"postgresql": ...}`);
    everything inside it goes through its own provider.
    """

    database_name: pulumi.Output[str]
    schema_version: pulumi.Output[int]
    schema_checksum: pulumi.Output[str]
    schema: MigratedSchema
    """The schema resource, for ordering (see `migrate_after`)."""

    def __init__(self, name: str, args: SportDatabaseArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("temporaldb:access:SportDatabase", name, None, opts)
        self._name = name
        self._args = args
        database = postgresql.Database(
            f"{name}-database",
            name=roles.database_name(args.sport),
            # DROP ROLE fails while the role owns objects in, or holds privileges on, a database.
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect, depends_on=list(args.roles_first)),
        )
        provider = postgresql.Provider(
            f"{name}-provider",
            host=args.host,
            port=args.port,
            database=database.name,
            username=args.admin_username,
            password=pulumi.Output.secret(args.admin_password),
            sslmode=args.sslmode,
            superuser=False,
            connect_timeout=args.connect_timeout_seconds,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self._database = database.name
        # Grants, default privileges and extensions have a fixed identity in the database: a replacement
        # created before the old one is deleted would be revoked (or dropped) by that delete.
        self._inside = pulumi.ResourceOptions(parent=self, provider=provider, delete_before_replace=True)
        grants = self._database_grants()
        extensions = [
            postgresql.Extension(
                f"{name}-extension-{extension}", name=extension, database=database.name, opts=self._inside
            )
            for extension in roles.EXTENSIONS
        ]
        schema = MigratedSchema(
            f"{name}-schema",
            MigratedSchemaArgs(
                host=args.host,
                port=args.port,
                database=database.name,
                user=args.role_names[MIGRATOR],
                password=args.migrator_password,
                migrations=args.migrations,
                sslmode=args.sslmode,
                connect_timeout_seconds=args.connect_timeout_seconds,
            ),
            # A re-created database is empty: replacing the schema resource with it migrates the new one.
            pulumi.ResourceOptions(
                parent=self, depends_on=[database, *grants, *extensions, *args.migrate_after], replace_with=[database]
            ),
        )
        self._object_grants(schema)
        self._default_privileges(schema)

        self.schema = schema
        self.database_name = database.name
        self.schema_version = schema.version
        self.schema_checksum = schema.checksum
        self.register_outputs(
            {
                "database_name": self.database_name,
                "schema_version": self.schema_version,
                "schema_checksum": self.schema_checksum,
            }
        )

    def _role(self, name: str) -> pulumi.Input[str]:
        return roles.PUBLIC if name == roles.PUBLIC else self._args.role_names[name]

    def _database_grants(self) -> list[postgresql.Grant]:
        grants = [
            postgresql.Grant(
                f"{self._name}-grant-{role}-database",
                database=self._database,
                object_type="database",
                role=self._role(role),
                privileges=list(privileges),
                opts=self._inside,
            )
            for role, privileges in roles.DATABASE_PRIVILEGES.items()
        ]
        grants.append(
            postgresql.Grant(
                f"{self._name}-grant-{roles.PUBLIC}-public-schema",
                database=self._database,
                object_type="schema",
                schema="public",
                role=roles.PUBLIC,
                privileges=list(roles.PUBLIC_SCHEMA_PRIVILEGES),
                opts=self._inside,
            )
        )
        return grants

    def _object_grants(self, schema: MigratedSchema) -> None:
        after_schema = pulumi.ResourceOptions.merge(self._inside, pulumi.ResourceOptions(depends_on=[schema]))
        for grant in roles.OBJECT_GRANTS:
            postgresql.Grant(
                f"{self._name}-grant-{grant.role}-{grant.schema}-{grant.object_type}",
                database=self._database,
                schema=grant.schema,
                object_type=grant.object_type,
                role=self._role(grant.role),
                privileges=list(grant.privileges),
                opts=after_schema,
            )

    def _default_privileges(self, schema: MigratedSchema) -> None:
        after_schema = pulumi.ResourceOptions.merge(self._inside, pulumi.ResourceOptions(depends_on=[schema]))
        for default in roles.default_privileges():
            postgresql.DefaultPrivileges(
                f"{self._name}-default-{default.role}-{default.schema or 'database'}-{default.object_type}",
                database=self._database,
                owner=self._role(roles.OWNER_GROUP),
                schema=default.schema,
                object_type=default.object_type,
                role=self._role(default.role),
                privileges=list(default.privileges),
                opts=after_schema,
            )


@dataclass(frozen=True)
class DatabaseAccessArgs:
    sports: Sequence[str]
    host: pulumi.Input[str]
    """Where `pulumi up` connects: the instance address, or the local end of an SSM/bastion tunnel."""
    port: pulumi.Input[int]
    admin_password: pulumi.Input[str]
    """The RDS master password, read by the program; stored as a secret."""
    endpoint_address: pulumi.Input[str]
    """The instance address the login secrets give to clients (never the tunnel)."""
    endpoint_port: pulumi.Input[int]
    migrations: Mapping[str, str]
    """{file name: sha256} of the migrations each sport database gets (`components.schema.planned_migrations()`)."""
    secret_name_prefix: str
    """Login secrets are named `<prefix>/<role>-<random suffix>`."""
    admin_username: pulumi.Input[str] = "temporaldb_admin"
    iam_users: Sequence[str] = ()
    """Login roles that log in with an IAM token: `rds_iam`, no password, no secret."""
    sslmode: pulumi.Input[str] = "require"
    connect_timeout_seconds: pulumi.Input[int] = 15
    password_length: int = 40
    protect: bool = True
    """Protect the sport databases from deletion."""


class DatabaseAccess(pulumi.ComponentResource):
    databases: pulumi.Output[list[str]]
    login_secret_arns: pulumi.Output[dict[str, str]]
    schema_versions: pulumi.Output[dict[str, int]]

    def __init__(self, name: str, args: DatabaseAccessArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("temporaldb:access:DatabaseAccess", name, None, opts)
        self._name = name
        self._args = args
        for user in args.iam_users:
            if not roles.login(user).may_use_iam:
                raise ValueError(f"{user} must keep its password: the schema resource runs the migrations as it")
        admin_password = pulumi.Output.secret(args.admin_password)
        server = postgresql.Provider(
            f"{name}-server",
            host=args.host,
            port=args.port,
            database=MAINTENANCE_DATABASE,
            username=args.admin_username,
            password=admin_password,
            sslmode=args.sslmode,
            superuser=False,  # the RDS master user is not a superuser
            connect_timeout=args.connect_timeout_seconds,
            opts=pulumi.ResourceOptions(parent=self),
        )
        on_server = pulumi.ResourceOptions(parent=self, provider=server)
        groups = {
            group.name: postgresql.Role(f"{name}-role-{group.name}", name=group.name, login=False, opts=on_server)
            for group in roles.GROUPS
        }
        passwords: dict[str, pulumi.Output[str]] = {}
        logins: dict[str, postgresql.Role] = {}
        for login in roles.LOGINS:
            iam = login.name in args.iam_users
            if not iam:
                passwords[login.name] = self._password(login.name)
            logins[login.name] = postgresql.Role(
                f"{name}-role-{login.name}",
                name=login.name,
                login=True,
                roles=[groups[login.group].name, *([roles.RDS_IAM_ROLE] if iam else [])],
                password=self._verifier(login.name, passwords[login.name]) if not iam else None,
                connection_limit=login.connection_limit,
                statement_timeout=login.statement_timeout_ms,
                opts=on_server,
            )
        secret_arns = {role: self._login_secret(role, password) for role, password in passwords.items()}
        role_names: dict[str, pulumi.Input[str]] = {group: role.name for group, role in groups.items()}
        role_names[MIGRATOR] = logins[MIGRATOR].name
        sports: list[SportDatabase] = []
        for sport in args.sports:
            # One sport's migrations after another's: the migrator's connection limit is small.
            sports.append(
                SportDatabase(
                    f"{name}-{sport}",
                    SportDatabaseArgs(
                        sport=sport,
                        host=args.host,
                        port=args.port,
                        admin_username=args.admin_username,
                        admin_password=admin_password,
                        role_names=role_names,
                        migrator_password=passwords[MIGRATOR],
                        migrations=args.migrations,
                        sslmode=args.sslmode,
                        connect_timeout_seconds=args.connect_timeout_seconds,
                        protect=args.protect,
                        migrate_after=[sports[-1].schema] if sports else [],
                        roles_first=[*groups.values(), *logins.values()],
                    ),
                    pulumi.ResourceOptions(parent=self, providers={"postgresql": server}),
                )
            )

        self.databases = pulumi.Output.all(*[sport.database_name for sport in sports])
        self.login_secret_arns = pulumi.Output.all(**secret_arns)
        self.schema_versions = pulumi.Output.all(
            **{sport_name: sport.schema_version for sport_name, sport in zip(args.sports, sports, strict=True)}
        )
        self.register_outputs(
            {
                "databases": self.databases,
                "login_secret_arns": self.login_secret_arns,
                "schema_versions": self.schema_versions,
            }
        )

    def _password(self, role: str) -> pulumi.Output[str]:
        password = random.RandomPassword(
            f"{self._name}-{role}-password",
            length=self._args.password_length,
            special=False,  # letters and digits: safe in URLs, .pgpass and shell variables
            opts=pulumi.ResourceOptions(parent=self),
        )
        # Explicitly secret: not every engine path applies the provider's additional_secret_outputs.
        return pulumi.Output.secret(password.result)

    def _verifier(self, role: str, password: pulumi.Output[str]) -> pulumi.Output[str]:
        """The SCRAM-SHA-256 verifier the role gets instead of its password (see the module docstring)."""
        # Kept in state: a salt drawn on every run would change the verifier, and the role, on every up.
        salt = random.RandomBytes(
            f"{self._name}-{role}-salt", length=scram.SALT_BYTES, opts=pulumi.ResourceOptions(parent=self)
        )
        verifier = pulumi.Output.all(password, salt.base64).apply(
            lambda values: scram.verifier_from_b64_salt(values[0], values[1])
        )
        return pulumi.Output.secret(verifier)

    def _login_secret(self, role: str, password: pulumi.Output[str]) -> pulumi.Output[str]:
        child = pulumi.ResourceOptions(parent=self)
        secret = aws.secretsmanager.Secret(
            f"{self._name}-{role}-secret",
            name_prefix=f"{self._args.secret_name_prefix}/{role}-",
            description=f"PostgreSQL login {role}: {roles.login(role).purpose}",
            opts=child,
        )
        value = pulumi.Output.all(
            host=self._args.endpoint_address, port=self._args.endpoint_port, password=password
        ).apply(
            lambda v: json.dumps(
                {
                    "engine": "postgres",
                    "host": v["host"],
                    "port": v["port"],
                    "username": role,
                    "password": v["password"],
                }
            )
        )
        secret_string: pulumi.Output[str] = pulumi.Output.secret(value)
        aws.secretsmanager.SecretVersion(
            f"{self._name}-{role}-secret-version",
            secret_id=secret.id,
            secret_string=secret_string,
            opts=child,
        )
        return secret.arn
