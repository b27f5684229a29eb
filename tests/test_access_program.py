"""The in-database part of the program under mocks: sport databases, the role model, grants and the schema.

What `pulumi up` would ask the `postgresql` provider (and the schema resource)
to create, with their parents, providers and dependencies, for dev and prod,
and how the settings (sports, iamAuthUsers, manageDatabase, dbHost, dbPort)
change it. The role model itself is temporaldb/roles.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pulumi.runtime.rpc import is_rpc_secret, unwrap_rpc_secret

from temporaldb import roles
from temporaldb.migrate import default_migrations_dir, read_migrations
from temporaldb.preview import MOCK_MASTER_PASSWORD, MOCK_PASSWORD_PREFIX, ProgramRun, Registration, run_program

ACCESS = "temporaldb:access:DatabaseAccess"
SPORT = "temporaldb:access:SportDatabase"
PROVIDER = "pulumi:providers:postgresql"
ROLE = "postgresql:index/role:Role"
DATABASE = "postgresql:index/database:Database"
GRANT = "postgresql:index/grant:Grant"
DEFAULT_PRIVILEGES = "postgresql:index/defaultPrivileges:DefaultPrivileges"
EXTENSION = "postgresql:index/extension:Extension"
SCHEMA = "pulumi-python:dynamic/temporaldb:MigratedSchema"
PASSWORD = "random:index/randomPassword:RandomPassword"
SECRET = "aws:secretsmanager/secret:Secret"
SECRET_VERSION = "aws:secretsmanager/secretVersion:SecretVersion"
MIGRATOR = "migrator"


# --- runs with other settings ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def two_sports_run(project_root: Path) -> ProgramRun:
    return run_program(project_root, "prod", {"temporaldb:sports": '["nba","nfl"]'})


@pytest.fixture(scope="module")
def iam_run(project_root: Path) -> ProgramRun:
    return run_program(project_root, "dev", {"temporaldb:iamAuthUsers": '["app"]'})


@pytest.fixture(scope="module")
def unmanaged_run(project_root: Path) -> ProgramRun:
    return run_program(project_root, "dev", {"temporaldb:manageDatabase": "false"})


# --- helpers --------------------------------------------------------------------------------------


def access(run: ProgramRun) -> Registration:
    return run.one(ACCESS)


def sport(run: ProgramRun, name: str = "nba") -> Registration:
    [component] = [r for r in run.of_type(SPORT) if r.name == f"{access(run).name}-{name}"]
    return component


def provider_named(run: ProgramRun, database: str) -> Registration:
    [provider] = [r for r in run.of_type(PROVIDER) if r.inputs.get("database") == database]
    return provider


def server(run: ProgramRun) -> Registration:
    return provider_named(run, "postgres")


def uses(resource: Registration, provider: Registration) -> bool:
    return resource.provider.startswith(f"{provider.urn}::")


def role(run: ProgramRun, name: str) -> Registration:
    [found] = [r for r in run.of_type(ROLE) if r.inputs["name"] == name]
    return found


def children(run: ProgramRun, parent: Registration, type_token: str) -> list[Registration]:
    return [r for r in run.of_type(type_token) if r.parent == parent.urn]


def grants(run: ProgramRun, sport_name: str = "nba") -> dict[tuple[str, str | None, str], Registration]:
    """The sport's grants by (role, schema, object type); schema None for a database grant."""
    found = {}
    for grant in children(run, sport(run, sport_name), GRANT):
        key = (grant.inputs["role"], grant.inputs.get("schema"), grant.inputs["objectType"])
        assert key not in found, f"two grants for {key}"
        found[key] = grant
    return found


def secret_value(value: Any) -> Any:
    assert is_rpc_secret(value), f"{value!r} is not a secret"
    return unwrap_rpc_secret(value)


def strings_inside(value: Any) -> list[str]:
    """Every string in a deserialized input, secrets unwrapped."""
    value = unwrap_rpc_secret(value)
    if isinstance(value, dict):
        return [text for item in value.values() for text in strings_inside(item)]
    if isinstance(value, list):
        return [text for item in value for text in strings_inside(item)]
    return [value] if isinstance(value, str) else []


def planned() -> dict[str, str]:
    return {m.file_name: m.checksum for m in read_migrations(default_migrations_dir())}


def instance_address(run: ProgramRun) -> str:
    return f"temporaldb-{run.stack}.c0ffee000000.us-east-1.rds.amazonaws.com"


# --- dev and prod ---------------------------------------------------------------------------------


def test_one_database_per_sport_through_the_server_provider(any_run: ProgramRun) -> None:
    [database] = any_run.of_type(DATABASE)
    assert database.inputs["name"] == "nba_temporal"
    assert database.parent == sport(any_run).urn
    assert uses(database, server(any_run))
    assert database.protect is (any_run.stack == "prod"), "dropping the database drops the data"


def test_server_provider_is_the_master_user_over_tls(any_run: ProgramRun) -> None:
    provider = server(any_run)
    inputs = provider.inputs
    assert provider.parent == access(any_run).urn
    assert (inputs["host"], inputs["port"], inputs["database"]) == ("localhost", "5432", "postgres")
    assert inputs["username"] == "temporaldb_admin"
    assert (inputs["sslmode"], inputs["superuser"]) == ("require", "false")
    assert int(inputs["connectTimeout"]) > 0
    # Read by the program from the instance's Secrets Manager secret, and kept secret.
    assert secret_value(inputs["password"]) == MOCK_MASTER_PASSWORD


def test_group_roles_cannot_log_in(any_run: ProgramRun) -> None:
    groups = [r for r in any_run.of_type(ROLE) if not r.inputs.get("login")]
    assert sorted(r.inputs["name"] for r in groups) == sorted(g.name for g in roles.GROUPS)
    for group in groups:
        assert group.parent == access(any_run).urn
        assert uses(group, server(any_run))
        assert "password" not in group.inputs
        assert not group.inputs.get("roles")


@pytest.mark.parametrize("login", roles.LOGINS, ids=lambda login: login.name)
def test_login_role_follows_the_model(any_run: ProgramRun, login: roles.LoginRole) -> None:
    found = role(any_run, login.name)
    inputs = found.inputs
    assert inputs["login"] is True
    assert inputs["roles"] == [login.group]
    assert inputs["connectionLimit"] == login.connection_limit
    assert inputs["statementTimeout"] == login.statement_timeout_ms
    # The verifier of the login's random password, never the password (tests/test_stack_access.py).
    assert secret_value(inputs["password"]).startswith("SCRAM-SHA-256$4096:")
    assert found.parent == access(any_run).urn
    assert uses(found, server(any_run))
    assert role(any_run, login.group).urn in found.dependencies, "membership needs the group first"


def test_each_password_login_has_a_random_password_and_a_secret(any_run: ProgramRun) -> None:
    name = access(any_run).name
    passwords = {r.name: r for r in children(any_run, access(any_run), PASSWORD)}
    assert sorted(passwords) == sorted(f"{name}-{login}-password" for login in roles.login_names())
    assert all(p.inputs["length"] >= 32 for p in passwords.values())
    secrets = {r.name: r for r in children(any_run, access(any_run), SECRET)}
    versions = {r.name: r for r in children(any_run, access(any_run), SECRET_VERSION)}
    for login in roles.LOGINS:
        secret = secrets[f"{name}-{login.name}-secret"]
        assert secret.inputs["namePrefix"] == f"temporaldb-{any_run.stack}/{login.name}-"
        version = versions[f"{name}-{login.name}-secret-version"]
        assert version.inputs["secretId"] == f"{secret.name}-id"
        content = json.loads(secret_value(version.inputs["secretString"]))
        # Clients get the instance's address, never the tunnel pulumi up goes through.
        assert content == {
            "engine": "postgres",
            "host": instance_address(any_run),
            "port": 5432,
            "username": login.name,
            "password": f"{MOCK_PASSWORD_PREFIX}{name}-{login.name}-password",
        }


def test_the_sport_database_has_its_own_provider(any_run: ProgramRun) -> None:
    provider = provider_named(any_run, "nba_temporal")
    assert provider.parent == sport(any_run).urn
    assert (provider.inputs["host"], provider.inputs["port"]) == ("localhost", "5432")
    assert (provider.inputs["username"], provider.inputs["sslmode"], provider.inputs["superuser"]) == (
        "temporaldb_admin",
        "require",
        "false",
    )
    assert secret_value(provider.inputs["password"]) == MOCK_MASTER_PASSWORD
    assert any_run.one(DATABASE).urn in provider.dependencies, "it connects to the database once it exists"


def test_database_and_public_schema_grants(any_run: ProgramRun) -> None:
    found = grants(any_run)
    sport_provider = provider_named(any_run, "nba_temporal")
    for grantee, privileges in roles.DATABASE_PRIVILEGES.items():
        grant = found[(grantee, None, "database")]
        assert grant.inputs["database"] == "nba_temporal"
        assert grant.inputs["privileges"] == list(privileges)
        assert uses(grant, sport_provider)
        assert grant.delete_before_replace
        if grantee != roles.PUBLIC:
            assert role(any_run, grantee).urn in grant.dependencies
    assert found[(roles.PUBLIC, None, "database")].inputs["privileges"] == [], "PUBLIC may not even connect"
    public_schema = found[(roles.PUBLIC, "public", "schema")]
    assert public_schema.inputs["privileges"] == list(roles.PUBLIC_SCHEMA_PRIVILEGES)
    assert uses(public_schema, sport_provider)


def test_extensions_are_created_before_the_schema(any_run: ProgramRun) -> None:
    extensions = children(any_run, sport(any_run), EXTENSION)
    assert sorted(e.inputs["name"] for e in extensions) == sorted(roles.EXTENSIONS)
    schema = any_run.one(SCHEMA)
    for extension in extensions:
        assert extension.inputs["database"] == "nba_temporal"
        assert uses(extension, provider_named(any_run, "nba_temporal"))
        assert extension.urn in schema.dependencies


def test_object_grants_follow_the_model_once_the_schema_exists(any_run: ProgramRun) -> None:
    found = grants(any_run)
    schema = any_run.one(SCHEMA)
    expected_keys = {(g.role, g.schema, g.object_type) for g in roles.OBJECT_GRANTS}
    database_level = {(grantee, None, "database") for grantee in roles.DATABASE_PRIVILEGES}
    assert set(found) == expected_keys | database_level | {(roles.PUBLIC, "public", "schema")}
    for expected in roles.OBJECT_GRANTS:
        grant = found[(expected.role, expected.schema, expected.object_type)]
        assert grant.inputs["privileges"] == list(expected.privileges)
        assert "objects" not in grant.inputs, "no objects: every table or function in the schema"
        assert grant.inputs["database"] == "nba_temporal"
        assert uses(grant, provider_named(any_run, "nba_temporal"))
        assert schema.urn in grant.dependencies, "the migrations create the schema first"
        assert grant.delete_before_replace, "a replacement created first would be revoked by the delete"


def test_default_privileges_follow_the_model(any_run: ProgramRun) -> None:
    found = children(any_run, sport(any_run), DEFAULT_PRIVILEGES)
    schema = any_run.one(SCHEMA)
    by_key = {(d.inputs["role"], d.inputs.get("schema"), d.inputs["objectType"]): d for d in found}
    assert len(by_key) == len(found) == len(roles.default_privileges())
    for expected in roles.default_privileges():
        default = by_key[(expected.role, expected.schema, expected.object_type)]
        assert default.inputs["owner"] == roles.OWNER_GROUP
        assert default.inputs["privileges"] == list(expected.privileges)
        assert default.inputs["database"] == "nba_temporal"
        assert uses(default, provider_named(any_run, "nba_temporal"))
        assert schema.urn in default.dependencies
        assert role(any_run, roles.OWNER_GROUP).urn in default.dependencies
        assert default.delete_before_replace
    # The one revoke PostgreSQL only takes database-wide.
    assert by_key[(roles.PUBLIC, None, "function")].inputs["privileges"] == []


def test_schema_resource_applies_the_planned_files_as_the_migrator(any_run: ProgramRun) -> None:
    schema = any_run.one(SCHEMA)
    inputs = schema.inputs
    assert schema.parent == sport(any_run).urn
    assert schema.name == f"{sport(any_run).name}-schema"
    assert not schema.provider.startswith("urn:"), "a dynamic resource has no postgresql provider"
    assert inputs["migrations"] == planned()
    assert (inputs["host"], inputs["port"], inputs["database"]) == ("localhost", 5432, "nba_temporal")
    assert (inputs["user"], inputs["sslmode"]) == (MIGRATOR, "require")
    assert secret_value(inputs["password"]) == f"{MOCK_PASSWORD_PREFIX}{access(any_run).name}-{MIGRATOR}-password"
    assert is_rpc_secret(inputs["__provider"])
    needs = {any_run.one(DATABASE).urn, role(any_run, MIGRATOR).urn}
    needs |= {g.urn for (_, _, kind), g in grants(any_run).items() if kind == "database"}
    needs |= {e.urn for e in any_run.of_type(EXTENSION)}
    assert needs <= set(schema.dependencies)
    assert schema.replace_with == (any_run.one(DATABASE).urn,)  # a re-created database gets migrated


def test_no_password_in_plain_text_anywhere(any_run: ProgramRun) -> None:
    for resource in any_run.resources:
        leaked = [text for text in resource.plain_strings if "MOCK-" in text]
        assert not leaked, f"{resource.type} {resource.name} sends {leaked} unencrypted"
    # The check means something: the passwords are there, inside secrets.
    everything = [text for r in any_run.resources for value in r.inputs.values() for text in strings_inside(value)]
    assert MOCK_MASTER_PASSWORD in everything
    # Each login's password once, in its Secrets Manager secret (the role gets its verifier).
    assert sum(MOCK_PASSWORD_PREFIX in text for text in everything) >= len(roles.LOGINS)
    assert "temporal_reader" in role(any_run, "app").plain_strings


def test_components_register_outputs_and_urns_are_unique(any_run: ProgramRun) -> None:
    for component in [access(any_run), *any_run.of_type(SPORT)]:
        assert component.urn in any_run.components_with_outputs
    assert not any_run.duplicate_urns
    owners = {access(any_run).urn, sport(any_run).urn}
    for resource in any_run.resources:
        if resource.type.startswith(("postgresql:", PROVIDER, "pulumi-python:dynamic", "random:index/randomPassword")):
            assert resource.parent in owners, resource.name


def test_exports(any_run: ProgramRun) -> None:
    outputs = any_run.outputs
    assert outputs["databases"] == ["nba_temporal"]
    assert outputs["schemaVersion"] == {"nba": len(planned())}
    secrets = {r.name: r for r in any_run.of_type(SECRET)}
    assert outputs["loginSecretArns"] == {
        login: f"arn:aws:secretsmanager:us-east-1:123456789012:{access(any_run).name}-{login}-secret"
        for login in roles.login_names()
    }
    assert len(secrets) == len(roles.LOGINS)


# --- settings change what is built ----------------------------------------------------------------


def test_a_second_sport_gets_its_own_database_provider_and_schema(two_sports_run: ProgramRun) -> None:
    run = two_sports_run
    assert sorted(d.inputs["name"] for d in run.of_type(DATABASE)) == ["nba_temporal", "nfl_temporal"]
    nfl_provider = provider_named(run, "nfl_temporal")
    assert nfl_provider.parent == sport(run, "nfl").urn
    assert nfl_provider.urn != provider_named(run, "nba_temporal").urn
    nfl_grants = grants(run, "nfl")
    assert len(nfl_grants) == len(grants(run, "nba"))
    assert all(uses(g, nfl_provider) and g.inputs["database"] == "nfl_temporal" for g in nfl_grants.values())
    schemas = {s.inputs["database"]: s for s in run.of_type(SCHEMA)}
    assert sorted(schemas) == ["nba_temporal", "nfl_temporal"]
    assert schemas["nfl_temporal"].parent == sport(run, "nfl").urn
    # Roles are cluster-wide: still one of each.
    assert len(run.of_type(ROLE)) == len(roles.GROUPS) + len(roles.LOGINS)
    # One sport's migrations after the other's: the migrator may hold two connections only.
    assert schemas["nba_temporal"].urn in schemas["nfl_temporal"].dependencies
    assert schemas["nfl_temporal"].urn not in schemas["nba_temporal"].dependencies
    assert run.outputs["databases"] == ["nba_temporal", "nfl_temporal"]
    assert sorted(run.outputs["schemaVersion"]) == ["nba", "nfl"]
    assert not run.duplicate_urns


def test_iam_user_gets_rds_iam_and_no_password(iam_run: ProgramRun) -> None:
    app = role(iam_run, "app")
    assert app.inputs["roles"] == [roles.READER_GROUP, roles.RDS_IAM_ROLE]
    assert "password" not in app.inputs
    name = access(iam_run).name
    assert f"{name}-app-password" not in {r.name for r in iam_run.of_type(PASSWORD)}
    assert f"{name}-app-secret" not in {r.name for r in iam_run.of_type(SECRET)}
    assert sorted(iam_run.outputs["loginSecretArns"]) == ["analyst", "etl", "migrator"]
    for other in ("migrator", "etl", "analyst"):
        assert roles.RDS_IAM_ROLE not in role(iam_run, other).inputs["roles"]
        assert is_rpc_secret(role(iam_run, other).inputs["password"])


def test_manage_database_false_registers_nothing_inside_postgresql(
    unmanaged_run: ProgramRun, dev_run: ProgramRun
) -> None:
    kinds = {r.type for r in unmanaged_run.resources}
    assert not [k for k in kinds if k.startswith(("postgresql:", PROVIDER, "pulumi-python:dynamic"))]
    assert not kinds & {ACCESS, SPORT, PASSWORD, SECRET, SECRET_VERSION}
    assert not {"databases", "loginSecretArns", "schemaVersion"} & set(unmanaged_run.outputs)
    aws_part = {r.urn for r in dev_run.resources if r.type.startswith("aws:")} - {
        r.urn for r in dev_run.of_type(SECRET) + dev_run.of_type(SECRET_VERSION)
    }
    assert {r.urn for r in unmanaged_run.resources if r.type.startswith("aws:")} == aws_part


def test_empty_db_host_connects_to_the_instance_address(project_root: Path) -> None:
    run = run_program(project_root, "dev", {"temporaldb:dbHost": "", "temporaldb:dbPort": "15432"})
    for provider in run.of_type(PROVIDER):
        assert (provider.inputs["host"], provider.inputs["port"]) == (instance_address(run), "15432")
    schema = run.one(SCHEMA)
    assert (schema.inputs["host"], schema.inputs["port"]) == (instance_address(run), 15432)
    # The secrets still give clients the instance's own port.
    version = next(iter(run.of_type(SECRET_VERSION)))
    assert json.loads(secret_value(version.inputs["secretString"]))["port"] == 5432
