"""The restore drill against an Aurora cluster: copy the stack's cluster, add a writer, verify the copy, delete both.

Stages: preconditions, record_facts, wait_restorable, restore, wait_available
(the copied cluster), add_writer (AWS restores the cluster's storage, never
its instances), verify, then teardown, which runs whatever happened (failure,
Ctrl-C) and deletes only what carries this run's drill tag: the writer, then
the cluster.

The copy is a full copy (`RestoreType=full-copy`) to the moment the source's
facts were recorded, as the instance drill's is (temporaldb/drills/aws_restore.py,
whose stages this module runs), or to `--restore-time`; or, with `--clone`, a
copy-on-write clone of the latest restorable time, which AWS chooses: the
clone must then match the facts recorded before the request, or those
recorded right after it (a load may commit in between).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass

from temporaldb.drills import rds, rds_cluster
from temporaldb.drills.aws_restore import (
    RestoreOptions,
    RestoreRun,
    SqlAccess,
    pinned,
    record_source_facts,
    verify_copy,
    wait_restorable,
)
from temporaldb.drills.facts import DatabaseFacts, snapshot
from temporaldb.drills.report import DrillReport, Say, iso

KIND = "restore"


@dataclass(frozen=True)
class ClusterRestorePlan:
    """What `plan()` found and what the drill will call; nothing has been changed."""

    source: rds_cluster.SourceCluster
    cluster: str
    """The copied cluster."""
    writer: str
    """The copy's writer instance."""
    restore: rds.PlannedCall
    add_writer: rds.PlannedCall
    teardown: tuple[rds.PlannedCall, ...]

    @property
    def calls(self) -> tuple[rds.PlannedCall, ...]:
        return (self.restore, self.add_writer, *self.teardown)


def plan(client: rds.Client, options: RestoreOptions, run_id: str) -> ClusterRestorePlan:
    """Find the source cluster and check every precondition; nothing is changed."""
    source = rds_cluster.find_cluster_source(client, identifier=options.cluster, stack=options.stack)
    if options.snapshot:
        raise rds.PreconditionError(
            f"--snapshot restores an RDS instance's snapshot; {source.identifier} is an Aurora cluster: copy it to "
            "a moment (--restore-time) or --clone it"
        )
    if options.clone and options.restore_time is not None:
        raise rds.PreconditionError("a clone is of the latest restorable time: drop --restore-time or --clone")
    rds_cluster.check_available(source)
    rds.refuse_reused_run(client, run_id)
    if options.restore_time is not None:
        rds_cluster.check_restore_window(source, options.restore_time)
    cluster = rds.drill_identifier(source.identifier, KIND, run_id)
    writer = rds.drill_identifier(source.identifier, KIND, run_id, rds_cluster.WRITER)
    tags = rds.drill_tags(source, KIND, run_id)
    return ClusterRestorePlan(
        source=source,
        cluster=cluster,
        writer=writer,
        restore=rds_cluster.restore_call(source, cluster, tags, restore_time=options.restore_time, clone=options.clone),
        add_writer=rds_cluster.writer_call(source, cluster, writer, tags),
        teardown=tuple(rds_cluster.teardown_calls(cluster, writer, run_id)),
    )


def run(
    client: rds.Client,
    options: RestoreOptions,
    access: SqlAccess,
    report: DrillReport,
    *,
    say: Say,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """The whole drill; raises on failure after teardown. `report` is filled in as it goes."""
    with report.stage("preconditions", say) as stage:
        found = plan(client, options, report.run_id)
        source = found.source
        report.planned_calls = [call.render() for call in found.calls]
        address = rds_cluster.copy_address(source, found.cluster)
        report.details.update(
            source=source.identifier,
            source_kind="aurora cluster",
            drill_cluster=found.cluster,
            drill_instance=found.writer,
            drill_address=address,
            restore_type=found.restore.params["RestoreType"],
        )
        stage.detail = (
            f"source cluster {source.identifier} ({source.engine} {source.engine_version}, writer "
            f"{source.writer} {source.instance_class}), {found.restore.why} {found.cluster} with writer {found.writer}"
        )
        say(f"the copy will answer at {address}:{source.port} (run id {report.run_id})")
    if not report.applied:
        for line in report.planned_calls:
            say(f"would call {line}")
        return
    access = dataclasses.replace(access, connect_timeout=rds_cluster.RESUME_CONNECT_TIMEOUT)
    drill = _ClusterDrill(client, RestoreRun(report, say, options, access, sleep), found)
    try:
        drill.restore_and_verify()
    finally:
        drill.teardown()


@dataclass(frozen=True)
class _ClusterDrill:
    client: rds.Client
    run: RestoreRun
    found: ClusterRestorePlan

    @property
    def limits(self) -> rds.Limits:
        return self.run.limits

    def restore_and_verify(self) -> None:
        report, say, options, found = self.run.report, self.run.say, self.run.options, self.found
        source, call = found.source, found.restore
        before = record_source_facts(self.run, source.address, source.port, self._latest_restorable)
        if options.exact:  # the moment the facts describe: restore to it (a clone gets AWS's latest, at least it)
            wait_restorable(self.run, self._latest_restorable, before.seen_at, source.identifier)
            if not options.clone:
                call = pinned(call, "RestoreToTime", before.seen_at)
        with report.stage("restore", say) as stage:
            requested = time.perf_counter()
            report.changed = True  # from here on, a failure leaves something to tear down
            rds.call(self.client, call)
            stage.detail = call.render()
            at_request = self._facts_at_request() if options.clone else None
        with report.stage("wait_available", say) as stage:
            cluster = rds_cluster.wait_available(self.client, found.cluster, say, self.limits)
            stage.detail = f"cluster {found.cluster} available at {cluster.get('Endpoint')}"
        with report.stage("add_writer", say) as stage:
            rds.call(self.client, found.add_writer)
            limits = self.limits
            rds.wait_available(
                self.client,
                found.writer,
                say,
                **limits.kwargs(),
            )
            stage.detail = f"{found.writer} ({source.instance_class}) available in {found.cluster}"
        address, port = str(cluster.get("Endpoint", "")), int(cluster.get("Port") or source.port)
        dsn = self.run.access.dsn(address, port, copy=True)
        verify_copy(self.run, dsn, before, requested, also_matches=at_request)

    def _facts_at_request(self) -> DatabaseFacts:
        """The source's facts right after the clone was requested: the clone holds these or the earlier ones."""
        source = self.found.source
        facts = snapshot(self.run.access.dsn(source.address, source.port), between_loads=True)
        self.run.report.details["facts_at_clone_request"] = facts.to_dict()
        self.run.say(f"facts at the clone request recorded at {iso(facts.taken_at)}")
        return facts

    def _latest_restorable(self) -> dt.datetime | None:
        described = rds_cluster.describe_cluster(self.client, self.found.source.identifier) or {}
        latest = described.get("LatestRestorableTime")
        return latest if isinstance(latest, dt.datetime) else None

    def teardown(self) -> None:
        """Delete the copy's instances, then the copy, each only with this run's tag, once the restore was asked
        for; wait (bounded) until they are gone."""
        report, found = self.run.report, self.found
        with report.stage("teardown", self.run.say) as stage:
            if not report.changed:
                stage.detail = "nothing was created"
                return
            problems = rds_cluster.tear_down_copy(
                self.client, found.cluster, found.writer, report, say=self.run.say, limits=self.limits
            )
            stage.detail = ", ".join(report.torn_down) or f"{found.cluster} did not exist"
            if problems:
                report.details["left_behind"] = problems
                raise rds.RdsDrillError(
                    f"teardown left drill resources tagged {rds.DRILL_TAG}={report.run_id}: " + "; ".join(problems)
                )
