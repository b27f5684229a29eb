"""The RDS upgrade drill's engine catalog and its choice of target: which versions RDS upgrades the source to.

The describe calls about engine versions, instance classes and maintenance go through an `EngineCatalog` (the
drill's seam): by default `EngineCatalog(client)`, the drill's own RDS client; tests pass one built on a
botocore-stubbed client, since the emulator (moto) lacks `describe_db_engine_versions` and
`describe_pending_maintenance_actions` and offers no orderable PostgreSQL class. The same catalog serves Aurora
(`aurora-postgresql`): its versions, families (`aurora-postgresql17`) and Serverless v2 limits.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from temporaldb.drills import rds


@dataclass(frozen=True)
class UpgradeTarget:
    """One entry of `ValidUpgradeTarget` (API_UpgradeTarget)."""

    engine: str
    version: str
    major_upgrade: bool
    description: str = ""


class EngineCatalog:
    """The read-only RDS calls about engine versions, instance classes and maintenance.

    Give it the drill's RDS client in real use. Against the emulator, give it a client whose answers a botocore
    Stubber provides (moto implements neither describe_db_engine_versions nor describe_pending_maintenance_actions,
    and lists no orderable PostgreSQL class); everything else still goes to the drill's own client.
    """

    def __init__(self, client: rds.Client) -> None:
        self.client = client

    def _describe(self, operation: str, **params: Any) -> dict[str, Any]:
        try:
            answer: dict[str, Any] = getattr(self.client, operation)(**params)
        except self.client.exceptions.ClientError as error:
            details = error.response.get("Error", {})
            if details.get("Code") in rds.CREDENTIAL_ERRORS:
                raise  # a credentials problem, not a refusal: the runbook maps it to exit 3
            raise rds.PreconditionError(
                f"{operation} refused: {details.get('Code', 'error')}: {details.get('Message', error)}"
            ) from error
        return answer

    def _version(self, engine: str, version: str) -> dict[str, Any]:
        # IncludeAll: a source on a minor RDS no longer offers (the urgent case) must still be found.
        found = self._describe("describe_db_engine_versions", Engine=engine, EngineVersion=version, IncludeAll=True)
        versions = found.get("DBEngineVersions") or []
        if not versions:
            raise rds.PreconditionError(f"RDS does not know {engine} {version} in this region")
        first: dict[str, Any] = versions[0]
        return first

    def upgrade_targets(self, engine: str, version: str) -> tuple[UpgradeTarget, ...]:
        """The versions RDS upgrades `engine version` to (minor and major)."""
        return tuple(
            UpgradeTarget(
                str(target.get("Engine", engine)),
                str(target["EngineVersion"]),
                bool(target.get("IsMajorVersionUpgrade")),
                str(target.get("Description", "")),
            )
            for target in self._version(engine, version).get("ValidUpgradeTarget") or ()
        )

    def parameter_group_family(self, engine: str, version: str) -> str:
        """The DBParameterGroupFamily of a version, as RDS names it (not derived from the version string)."""
        family = self._version(engine, version).get("DBParameterGroupFamily")
        if not family:
            raise rds.PreconditionError(f"RDS gives no parameter group family for {engine} {version}")
        return str(family)

    def serverless_v2_minimum(self, engine: str, version: str) -> float | None:
        """The lowest Serverless v2 MinCapacity `engine version` accepts (0: it can pause), None when RDS says none."""
        support = self._version(engine, version).get("ServerlessV2FeaturesSupport") or {}
        minimum = support.get("MinCapacity")
        return float(minimum) if minimum is not None else None

    def orderable(self, engine: str, version: str, instance_class: str) -> bool:
        """Whether `instance_class` can run `engine version` in this region."""
        found = self._describe(
            "describe_orderable_db_instance_options",
            Engine=engine,
            EngineVersion=version,
            DBInstanceClass=instance_class,
            MaxRecords=20,
        )
        return bool(found.get("OrderableDBInstanceOptions"))

    def pending_maintenance(self, resource_arn: str) -> tuple[str, ...]:
        """The pending maintenance actions of a resource, one readable line each."""
        found = self._describe("describe_pending_maintenance_actions", ResourceIdentifier=resource_arn)
        lines = []
        for resource in found.get("PendingMaintenanceActions") or ():
            for action in resource.get("PendingMaintenanceActionDetails") or ():
                when = [
                    f"{label} {action[key]:%Y-%m-%d}"
                    for key, label in (
                        ("AutoAppliedAfterDate", "auto-applied after"),
                        ("ForcedApplyDate", "forced on"),
                    )
                    if action.get(key)
                ]
                if action.get("OptInStatus"):
                    when.append(f"opt-in {action['OptInStatus']}")
                detail = f" ({', '.join(when)})" if when else ""
                lines.append(f"{action.get('Action', 'maintenance')}: {action.get('Description', '')}{detail}".strip())
        return tuple(lines)


def version_key(version: str) -> tuple[int, ...]:
    """`18.1` sorts after `17.6` and `18.0`: numeric parts, in order."""
    return tuple(int(part) for part in re.findall(r"\d+", version))


def major_of(version: str) -> str:
    """`18` from `18.1` or `18` (PostgreSQL 10 and later: the first number is the major)."""
    return version.split(".", 1)[0]


def choose_target(
    source_version: str, targets: Sequence[UpgradeTarget], requested: str, engine: str = "postgres"
) -> UpgradeTarget:
    """The major-version target RDS offers for `requested`: that exact version, or the highest of that major."""
    majors = sorted((t for t in targets if t.major_upgrade), key=lambda t: version_key(t.version))
    offered = ", ".join(t.version for t in majors) or "none"
    if not re.fullmatch(r"\d+(\.\d+)*", requested):
        raise rds.PreconditionError(f"target version {requested!r} is not a version such as 18 or 18.1")
    if version_key(major_of(requested)) <= version_key(major_of(source_version)):
        raise rds.PreconditionError(
            f"{requested} is not a major-version upgrade of {source_version}; the drill rehearses major upgrades "
            f"(offered: {offered})"
        )
    if "." in requested:
        chosen = [t for t in majors if t.version == requested]
    else:
        chosen = [t for t in majors if major_of(t.version) == requested]
    if not chosen:
        raise rds.PreconditionError(
            f"RDS cannot upgrade {engine} {source_version} to {requested}: its valid major-version targets are "
            f"{offered} (aws rds describe-db-engine-versions --engine {engine} --engine-version {source_version})"
        )
    return chosen[-1]
