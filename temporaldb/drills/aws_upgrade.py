"""The major-version upgrade drill against RDS: upgrade a tagged copy of the stack's instance, verify it, delete it.

Stages (each timed in the report):

    preconditions    `plan()`: the source, a valid major-version target, the target's parameter group family, the
                     instance class on the target, pending maintenance, the stack's target-family group; no change
    snapshot         a manual snapshot of the source, tagged with this run's drill tag (on a Single-AZ source this
                     briefly suspends I/O, as every snapshot does)
    restore          the copy, from that snapshot, with the stack's subnet group, security groups and parameter group
    wait_available   the copy answers
    parameter_group  the stack's group of the target family if there is one, else `<copy>-params` in that family,
                     tagged, with the source group's user-modified parameters (a parameter the new family refuses
                     becomes a finding, not a crash)
    record_facts     schema version and checksum, row counts, canary as-of answers of the copy (analyst login)
    prechecks        the SQL pre-checks AWS documents, on the copy (master login); a blocker stops the drill here
    upgrade          `modify_db_instance(EngineVersion, AllowMajorVersionUpgrade, DBParameterGroupName,
                     ApplyImmediately)`, wait until available, check the copy runs the target version
    analyze          `ANALYZE` of the model's tables (migrator login: its group owns them)
    verify           the copy's server runs the target major and its facts equal those before
    teardown         deletes the copy (only if it carries this run's tag) and waits until it is gone, then the drill's
                     snapshot and parameter group (only if they carry this run's tag); runs on failure and Ctrl-C too

The drill never changes the source (the snapshot aside). SQL reaches only the copy, through
`UpgradeAccess.copy_host/copy_port` when a tunnel stands in for its private address.

The describe calls about engine versions and maintenance go through an `EngineCatalog`, the seam tests replace
(`run(catalog=...)`, by default `EngineCatalog(client)`, the same RDS client): see aws_upgrade_targets.

This module makes, upgrades and deletes the copy (`run` and the `_Drill` behind it); the rest of the drill is in:

    aws_upgrade_drill      `drive` and `UpgradeDrill`: the stages on the copy the Aurora drill shares
    aws_upgrade_options    `UpgradeOptions`, the logins (`read_logins`) and `UpgradeAccess` to the copy
    aws_upgrade_targets    `EngineCatalog` (the seam for what the emulator lacks) and `choose_target`
    aws_upgrade_plan       `plan()`, `UpgradePlan` and `UpgradeRefused`
    aws_upgrade_lifecycle  the waits (snapshot, upgrade) and the tag-checked deletions
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Final

from botocore.exceptions import BotoCoreError

from temporaldb.drills import rds
from temporaldb.drills.aws_upgrade_drill import UpgradeDrill, access_for, drive
from temporaldb.drills.aws_upgrade_lifecycle import delete_drill_snapshot, wait_snapshot, wait_upgraded
from temporaldb.drills.aws_upgrade_options import UpgradeAccess, UpgradeOptions
from temporaldb.drills.aws_upgrade_plan import UpgradePlan, plan, render
from temporaldb.drills.aws_upgrade_targets import EngineCatalog
from temporaldb.drills.report import DrillReport, Say, StageResult

# Stage names, in the order they run.
STAGES: Final = (
    "preconditions", "snapshot", "restore", "wait_available", "parameter_group", "record_facts", "prechecks",
    "upgrade", "analyze", "verify", "teardown",
)  # fmt: skip


def run(
    client: rds.Client,
    options: UpgradeOptions,
    access: UpgradeAccess | None,
    report: DrillReport,
    *,
    say: Say,
    sleep: Callable[[float], None] = time.sleep,
    catalog: EngineCatalog | None = None,
) -> None:
    """The whole drill; raises on failure (UpgradeRefused on a refusal) after teardown. `report` fills in as it goes.

    Without `report.applied`, only the preconditions run and the planned calls are said and recorded; `access`
    (the logins) may then be None.
    """
    access = access_for(access, report)
    drive(_Drill(client, options, access, report, say, sleep, catalog or EngineCatalog(client)))


@dataclass
class _Drill(UpgradeDrill[UpgradePlan]):
    def make_plan(self) -> UpgradePlan:
        return plan(self.client, self.options, self.report.run_id, catalog=self.catalog)

    def describe_plan(self, stage: StageResult) -> None:
        found, report = self._plan(), self.report
        source, group = found.source, found.group
        report.planned_calls = [render(call) for call in found.calls]
        copy_address = source.address.replace(source.identifier, found.copy, 1)
        report.details.update(
            source=source.identifier,
            source_version=source.engine_version,
            target_version=found.target.version,
            target_family=found.target_family,
            drill_instance=found.copy,
            drill_snapshot=found.snapshot,
            drill_address=copy_address,
            parameter_group=group.name,
            parameter_group_created=group.create,
            pending_maintenance=list(found.pending_maintenance),
            pending_modified_values=dict(found.pending_modified_values),
        )
        self.note_pending(source.identifier, found.pending_maintenance, found.pending_modified_values)
        stage.detail = (
            f"{source.identifier} {source.engine} {source.engine_version} -> {found.target.version}; copy "
            f"{found.copy}; {group.describe()}"
        )
        self.say(f"the copy will answer at {copy_address}:{source.port} (run id {report.run_id})")

    def make_copy(self, found: UpgradePlan) -> None:
        report, say = self.report, self.say
        calls = {call.operation: call for call in found.calls}
        with report.stage("snapshot", say) as stage:
            report.changed = True  # from here a failure needs teardown
            rds.call(self.client, calls["create_db_snapshot"])
            wait_snapshot(
                self.client,
                found.snapshot,
                say,
                **self.limits.kwargs(),
            )
            stage.detail = f"snapshot {found.snapshot} of {found.source.identifier} available"
        with report.stage("restore", say) as stage:
            restore = calls["restore_db_instance_from_db_snapshot"]
            rds.call(self.client, restore)
            stage.detail = restore.render()
        with report.stage("wait_available", say) as stage:
            instance = rds.wait_available(
                self.client,
                found.copy,
                say,
                **self.limits.kwargs(),
            )
            endpoint = instance.get("Endpoint") or {}
            self.address = str(endpoint.get("Address", ""))
            self.port = int(endpoint.get("Port") or found.source.port)
            stage.detail = f"{found.copy} available at {self.address}"
        with report.stage("parameter_group", say) as stage:
            stage.detail = self.copy_group(found.group)

    def upgrade(self, found: UpgradePlan) -> str:
        answer = rds.call(self.client, next(call for call in found.calls if call.operation == "modify_db_instance"))
        instance = wait_upgraded(
            self.client,
            found.copy,
            found.target.version,
            self.say,
            accepted=answer.get("DBInstance") or {},
            **self.limits.kwargs(),
        )
        running = str(instance.get("EngineVersion", ""))
        groups = [g.get("DBParameterGroupName") for g in instance.get("DBParameterGroups") or ()]
        return f"{found.copy} runs {running} with {', '.join(map(str, groups)) or 'no group'}"

    def teardown(self, found: UpgradePlan) -> None:
        """Delete the copy, wait until it is gone, then the snapshot and the group; each only with this run's tag."""
        report, run_id = self.report, self.report.run_id
        with report.stage("teardown", self.say) as stage:
            problems: list[str] = []
            try:
                outcome = rds.delete_drill_instance(
                    self.client,
                    found.copy,
                    run_id,
                    **self.limits.kwargs(),
                )
                if outcome != "already gone":
                    gone = rds.wait_deleted(
                        self.client,
                        found.copy,
                        self.say,
                        **self.limits.kwargs(),
                    )
                    report.torn_down.append(f"rds instance {found.copy}")
                    if not gone:
                        problems.append(f"instance {found.copy} is still deleting")
            except (rds.RdsDrillError, self.client.exceptions.ClientError, BotoCoreError) as error:
                problems.append(f"instance {found.copy}: {error}")
            try:
                if self.retry(partial(delete_drill_snapshot, self.client, found.snapshot, run_id), found.snapshot):
                    report.torn_down.append(f"rds snapshot {found.snapshot}")
            except (rds.RdsDrillError, self.client.exceptions.ClientError, BotoCoreError) as error:
                problems.append(f"snapshot {found.snapshot}: {error}")
            self.delete_groups([found.group], problems)
            stage.detail = ", ".join(report.torn_down) or "nothing to remove"
            self.left_behind(problems)
