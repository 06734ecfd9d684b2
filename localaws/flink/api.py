"""Managed Service for Apache Flink (``kinesisanalyticsv2``): Flink SQL applications that really run.

moto keeps the applications (CreateApplication, DescribeApplication,
ListApplications, tags) but runs nothing: its new application is already
``STARTING`` and it has no Start, Stop, Update, Delete or snapshot
operations. This plane takes over (see ``localaws/core/plane.py`` for the marks):

- **CreateApplication** is moto's, with AWS's status (``READY``) and a
  ``ResourceInUseException`` for a name already taken (moto overwrote it).
- **The code.** On AWS a Flink application is a JAR (or a PyFlink zip) in S3,
  and Flink SQL runs in Studio notebooks. As a *local convenience* the
  application's code may be a Flink SQL script given as text:
  ``ApplicationCodeConfiguration={"CodeContentType": "PLAINTEXT",
  "CodeContent": {"TextContent": sql}}`` (the shape the API has for text
  code). A JAR or zip in S3 is kept but cannot start here (HTTP 501, not
  emulated). The SQL reads and writes Kinesis with AWS's own connector
  (``'connector' = 'kinesis'``; point ``'aws.endpoint'`` at the stack).
- **StartApplication** submits the script to the stack's one Flink cluster
  (started on first use, ~10-15 s, and stopped with the stack). A script
  Flink refuses fails the call with Flink's own message
  (``InvalidApplicationConfigurationException``). The status is the job's:
  ``STARTING`` until every task runs, then ``RUNNING``.
- **StopApplication**: ``STOPPING``, then ``READY``. Unless ``Force=True``,
  and when snapshots are enabled, the job stops with a savepoint, which
  becomes a snapshot. **Snapshots** (Create/List/Describe/DeleteApplicationSnapshot)
  are savepoints; StartApplication's ``ApplicationRestoreConfiguration``
  restores from the latest one, a named one, or none.
- **UpdateApplication** replaces the SQL (and the snapshot switch); a running
  application restarts from a snapshot of its state, as on AWS.
- **DeleteApplication** halts a running application (no snapshot) and deletes it.

Teaching hooks (``stack.local.flink``, local only): ``kill_taskmanager()``
crashes the cluster's worker and starts a replacement, so a chapter can show
a job recover from its latest checkpoint; ``checkpoints(name)`` and
``wait_for_checkpoint(name)`` read the job's checkpoints from Flink's REST API.

Only ``FLINK-1_19`` runs: the cluster is Flink 1.19.1 (``core/flink.py`` says
why). Not emulated: JAR/zip code, KPUs and autoscaling, VPCs, CloudWatch
logging, rollbacks, Studio (``INTERACTIVE``) applications, application operations.
"""
from __future__ import annotations

import threading
import time
import uuid
from datetime import datetime, timezone

from localaws.core import Plane, local_hook, moto_hook, not_emulated, operation
from localaws.core.waiting import wait_until
from localaws.core.flink import RUNTIME_ENVIRONMENT, FlinkError
from . import engine, errors

BACKEND = "moto.kinesisanalyticsv2.models:KinesisAnalyticsV2Backend"
SERVICE = "kinesisanalyticsv2"
BUSY = ("STARTING", "STOPPING", "UPDATING", "DELETING")


def _code(app) -> dict:
    config = app.app_config_description or {}
    return config.get("ApplicationCodeConfigurationDescription") or {}


def _sql(app) -> str:
    code = _code(app)
    text = (code.get("CodeContentDescription") or {}).get("TextContent")
    if code.get("CodeContentType") != "PLAINTEXT" or not text:
        raise not_emulated(SERVICE, "StartApplication",
                           "only Flink SQL applications run locally: give the SQL script as "
                           "ApplicationCodeConfiguration CodeContentType PLAINTEXT, CodeContent "
                           "TextContent. A JAR or zip in S3 is not run here")
    return text


def _snapshots_enabled(app) -> bool:
    config = app.app_config_description or {}
    return bool((config.get("ApplicationSnapshotConfigurationDescription") or {})
                .get("SnapshotsEnabled", False))


def _checkpoint_properties(app) -> dict[str, str]:
    flink = (app.app_config_description or {}).get("FlinkApplicationConfigurationDescription") or {}
    checkpoint = flink.get("CheckpointConfigurationDescription") or {}
    parallelism = (flink.get("ParallelismConfigurationDescription") or {}).get("Parallelism", 1)
    props = {"parallelism.default": str(min(int(parallelism), 2))}   # the TaskManager has 2 slots
    if checkpoint.get("CheckpointingEnabled", True):
        interval = checkpoint.get("CheckpointInterval", engine.DEFAULT_CHECKPOINT_INTERVAL_MS)
        props["execution.checkpointing.interval"] = f"{int(interval)}ms"
    return props


class FlinkPlane(Plane):
    """Managed Service for Apache Flink: SQL applications as jobs on a real Flink cluster."""

    name = "flink"
    services = (SERVICE,)

    def __init__(self, ctx):
        super().__init__(ctx)
        self.engine = engine.FlinkEngine(ctx.work_dir, ctx.processes, ctx.endpoint, ctx.region)
        self._runs: dict[tuple[str, str], engine.Run] = {}    # (region, name) -> Run
        self._lock = threading.RLock()

    def stop(self):
        for run in list(self._runs.values()):
            if run.stopper is not None:
                run.stopper.join(timeout=60)
        self.engine.stop()

    # -- helpers ------------------------------------------------------------------
    def _backend(self, region: str):
        from moto.kinesisanalyticsv2.models import kinesisanalyticsv2_backends
        return kinesisanalyticsv2_backends[self.ctx.account_id][region]

    def _app(self, region: str, name: str | None):
        app = self._backend(region).applications.get(name or "")
        if app is None:
            raise errors.ResourceNotFoundException(f"Application {name} not found")
        return app

    def _run(self, app) -> engine.Run:
        """The application's run state, its status refreshed from the real job."""
        key = (app.region_name, app.application_name)
        run = self._runs.setdefault(key, engine.Run(app.application_name))
        if run.status in ("STARTING", "RUNNING") and run.job_id and run.stopper is None:
            run.status = self.engine.status(run.job_id)
            if run.status == "READY":
                run.job_id = None
        app.application_status = run.status
        return run

    @staticmethod
    def _new_version(app) -> None:
        app.application_version_id += 1
        app.last_updated_date_time = datetime.now().isoformat()

    # -- what moto keeps ----------------------------------------------------------
    @moto_hook(f"{BACKEND}.create_application")
    def create_application(self, original, backend, *args, **kwargs):
        name = kwargs.get("application_name")
        if name in backend.applications:
            raise errors.ResourceInUseException(f"Application {name} already exists.")
        detail = original(backend, *args, **kwargs)
        backend.applications[name].application_status = detail["ApplicationStatus"] = "READY"
        return detail

    @moto_hook(f"{BACKEND}.describe_application")
    def describe_application(self, original, backend, application_name):
        with self._lock:
            self._run(self._app(backend.region_name, application_name))
            return original(backend, application_name)

    @moto_hook(f"{BACKEND}.list_applications")
    def list_applications(self, original, backend):
        with self._lock:
            for app in backend.applications.values():
                self._run(app)
            return original(backend)

    # -- running ------------------------------------------------------------------
    def _restore_path(self, app, run: engine.Run, restore: dict) -> str | None:
        kind = restore.get("ApplicationRestoreType") or (
            "RESTORE_FROM_LATEST_SNAPSHOT" if _snapshots_enabled(app) else "SKIP_RESTORE_FROM_SNAPSHOT")
        if kind == "SKIP_RESTORE_FROM_SNAPSHOT":
            return None
        if kind == "RESTORE_FROM_LATEST_SNAPSHOT":
            latest = run.latest_snapshot()
            return latest.path if latest else None
        name = restore.get("SnapshotName")
        if not name:
            raise errors.InvalidArgumentException(
                "SnapshotName is required when ApplicationRestoreType is RESTORE_FROM_CUSTOM_SNAPSHOT")
        if name not in run.snapshots:
            raise errors.ResourceNotFoundException(
                f"Snapshot {name} not found for application {app.application_name}")
        return run.snapshots[name].path

    def _start_job(self, app, run: engine.Run, run_config: dict) -> None:
        """Submit the application's SQL (restoring state as asked); Flink's refusal -> AWS error."""
        if app.runtime_environment != RUNTIME_ENVIRONMENT:
            raise not_emulated(SERVICE, "StartApplication",
                               f"the local Flink cluster runs Flink 1.19 only; create the "
                               f"application with RuntimeEnvironment {RUNTIME_ENVIRONMENT} "
                               f"(this one is {app.runtime_environment})")
        sql = _sql(app)
        properties = _checkpoint_properties(app)
        path = self._restore_path(app, run, run_config.get("ApplicationRestoreConfiguration") or {})
        if path:
            properties["execution.savepoint.path"] = path
            allow = (run_config.get("FlinkRunConfiguration") or {}).get("AllowNonRestoredState", False)
            properties["execution.savepoint.ignore-unclaimed-state"] = "true" if allow else "false"
        try:
            run.job_id = self.engine.submit(app.application_name, sql, properties)
        except FlinkError as exc:
            run.status = app.application_status = "READY"
            raise errors.InvalidApplicationConfigurationException(
                f"Flink refused the application's SQL: {engine.flink_message(exc)}") from None
        run.status = app.application_status = "STARTING"

    @operation("StartApplication")
    def start_application(self, req):
        with self._lock:
            app = self._app(req.region, req.params.get("ApplicationName"))
            run = self._run(app)
            if run.status != "READY":
                raise errors.ResourceInUseException(
                    f"Application {app.application_name} is in {run.status} status; "
                    "only an application in READY status can be started.")
            run.status = app.application_status = "STARTING"
            try:
                self._start_job(app, run, req.params.get("RunConfiguration") or {})
            except BaseException:
                run.status = app.application_status = "READY"
                raise
        return {"OperationId": uuid.uuid4().hex[:20]}

    def _stop(self, app, run: engine.Run, snapshot: bool) -> None:
        """Stop the job (with a savepoint when ``snapshot``); then READY."""
        try:
            if snapshot:
                stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%f")
                self.engine.snapshot(run, f"stop-{app.application_name}-{stamp}",
                                     app.application_version_id, stop=True)
            else:
                self.engine.cancel(run.job_id)
        except FlinkError:
            self.engine.cancel(run.job_id)
        finally:
            with self._lock:
                run.job_id, run.stopper = None, None
                run.status = app.application_status = "READY"

    @operation("StopApplication")
    def stop_application(self, req):
        with self._lock:
            app = self._app(req.region, req.params.get("ApplicationName"))
            run = self._run(app)
            force = bool(req.params.get("Force"))
            if run.status != "RUNNING" and not (force and run.status in BUSY and run.job_id):
                raise errors.ResourceInUseException(
                    f"Application {app.application_name} is in {run.status} status; "
                    "only a RUNNING application can be stopped (or a starting one, with Force).")
            run.status = app.application_status = "FORCE_STOPPING" if force else "STOPPING"
            snapshot = not force and _snapshots_enabled(app)
            run.stopper = threading.Thread(target=self._stop, args=(app, run, snapshot),
                                           name=f"flink-stop-{app.application_name}", daemon=True)
            run.stopper.start()
        return {"OperationId": uuid.uuid4().hex[:20]}

    @operation("UpdateApplication")
    def update_application(self, req):
        p = req.params
        with self._lock:
            app = self._app(req.region, p.get("ApplicationName"))
            run = self._run(app)
            current = p.get("CurrentApplicationVersionId")
            if current is None and not p.get("ConditionalToken"):
                raise errors.InvalidArgumentException(
                    "Either CurrentApplicationVersionId or ConditionalToken must be provided.")
            if current is not None and current != app.application_version_id:
                raise errors.ConcurrentModificationException(
                    f"Current application version {app.application_version_id} does not match "
                    f"CurrentApplicationVersionId {current}.")
            if run.status not in ("READY", "RUNNING"):
                raise errors.ResourceInUseException(
                    f"Application {app.application_name} is in {run.status} status.")
            update = p.get("ApplicationConfigurationUpdate") or {}
            config = app.app_config_description = app.app_config_description or {}
            text = (((update.get("ApplicationCodeConfigurationUpdate") or {})
                     .get("CodeContentUpdate") or {}).get("TextContentUpdate"))
            if text is not None:
                config["ApplicationCodeConfigurationDescription"] = {
                    "CodeContentType": "PLAINTEXT", "CodeContentDescription": {"TextContent": text}}
            snap = (update.get("ApplicationSnapshotConfigurationUpdate") or {}).get("SnapshotsEnabledUpdate")
            if snap is not None:
                config["ApplicationSnapshotConfigurationDescription"] = {"SnapshotsEnabled": bool(snap)}
            was_running = run.status == "RUNNING"
            self._new_version(app)
            if was_running:
                # As on AWS: snapshot (when enabled), stop, start the new version from it.
                run.status = app.application_status = "UPDATING"
                self._stop(app, run, _snapshots_enabled(app))
                run.status = "STARTING"
                run_update = p.get("RunConfigurationUpdate") or {}
                try:
                    self._start_job(app, run, run_update)
                except BaseException:
                    run.status = app.application_status = "READY"
                    raise
            detail = self._backend(req.region).describe_application(app.application_name)
        return {"ApplicationDetail": detail, "OperationId": uuid.uuid4().hex[:20]}

    @operation("DeleteApplication")
    def delete_application(self, req):
        with self._lock:
            app = self._app(req.region, req.params.get("ApplicationName"))
            run = self._run(app)
            if run.status in BUSY or run.status == "FORCE_STOPPING":
                raise errors.ResourceInUseException(
                    f"Application {app.application_name} is in {run.status} status.")
            self.engine.cancel(run.job_id)           # AWS halts a running application
            for snap in run.snapshots.values():
                self.engine.delete_snapshot_files(snap)
            del self._backend(req.region).applications[app.application_name]
            self._runs.pop((app.region_name, app.application_name), None)
        return {}

    # -- snapshots ----------------------------------------------------------------
    @operation("CreateApplicationSnapshot")
    def create_application_snapshot(self, req):
        name = req.params.get("SnapshotName")
        with self._lock:
            app = self._app(req.region, req.params.get("ApplicationName"))
            run = self._run(app)
            if run.status != "RUNNING":
                raise errors.ResourceInUseException(
                    f"Application {app.application_name} is in {run.status} status; "
                    "snapshots are taken of a RUNNING application.")
            if not _snapshots_enabled(app):
                raise errors.InvalidRequestException(
                    f"Snapshots are disabled for application {app.application_name} "
                    "(ApplicationSnapshotConfiguration SnapshotsEnabled).")
            if name in run.snapshots:
                raise errors.InvalidArgumentException(
                    f"Snapshot {name} already exists for application {app.application_name}.")
            try:
                self.engine.snapshot(run, name, app.application_version_id, stop=False)
            except FlinkError as exc:
                raise errors.InvalidApplicationConfigurationException(
                    f"Flink could not take the snapshot: {engine.flink_message(exc)}") from None
        return {}

    def _snapshot(self, req):
        app = self._app(req.region, req.params.get("ApplicationName"))
        run = self._run(app)
        snap = run.snapshots.get(req.params.get("SnapshotName") or "")
        if snap is None:
            raise errors.ResourceNotFoundException(
                f"Snapshot {req.params.get('SnapshotName')} not found for application "
                f"{app.application_name}")
        return app, run, snap

    @operation("ListApplicationSnapshots")
    def list_application_snapshots(self, req):
        with self._lock:
            app = self._app(req.region, req.params.get("ApplicationName"))
            snaps = sorted(self._run(app).snapshots.values(), key=lambda s: s.created)
            return {"SnapshotSummaries": [s.summary(app.runtime_environment) for s in snaps]}

    @operation("DescribeApplicationSnapshot")
    def describe_application_snapshot(self, req):
        with self._lock:
            app, _, snap = self._snapshot(req)
            return {"SnapshotDetails": snap.summary(app.runtime_environment)}

    @operation("DeleteApplicationSnapshot")
    def delete_application_snapshot(self, req):
        with self._lock:
            app, run, snap = self._snapshot(req)
            stamp = req.params.get("SnapshotCreationTimestamp")
            if stamp is not None and abs(float(stamp) - snap.created.timestamp()) >= 1:
                raise errors.InvalidArgumentException(
                    f"SnapshotCreationTimestamp does not match snapshot {snap.name}.")
            self.engine.delete_snapshot_files(snap)
            del run.snapshots[snap.name]
        return {}

    # -- teaching hooks -------------------------------------------------------------
    def _job_id(self, application_name: str) -> str:
        """The Flink job of a running application (ValueError naming its status otherwise)."""
        with self._lock:
            run = self._run(self._app(self.ctx.region, application_name))
            if run.job_id is None or self.engine.cluster is None:
                raise ValueError(f"application {application_name} has no running job (it is {run.status})")
            return run.job_id

    @local_hook("On AWS, the service runs the task managers and replaces a failed one itself: there is "
                "nothing to kill. Watch the application's CloudWatch metrics numRestarts and downtime "
                "(namespace AWS/KinesisAnalytics) to see a restart.")
    def kill_taskmanager(self) -> dict:
        """A crashed worker: SIGKILL the cluster's TaskManager, then start a replacement.

        The TaskManager runs the tasks of every application and holds their
        state in memory. Killed with SIGKILL it cannot say goodbye: the
        JobManager notices the lost connection, fails the jobs' tasks and,
        by its restart strategy, restarts each job from its latest completed
        checkpoint once task slots are back. On AWS a crash is followed by a
        replacement too; here the replacement has registered with the
        JobManager when this returns. Returns the resource ids of the killed
        TaskManager and of its replacement.
        """
        cluster = self.engine.cluster
        if cluster is None or "taskmanager" not in cluster.pids():
            raise ValueError("no TaskManager is running: start an application first")
        before = {tm["id"] for tm in cluster.rest("/taskmanagers")["taskmanagers"]}
        cluster.kill_taskmanager()
        cluster.start_taskmanager()
        after = {tm["id"] for tm in cluster.rest("/taskmanagers")["taskmanagers"]}
        return {"killed": sorted(before), "replacement": sorted(after - before)}

    @local_hook("On AWS, read the application's CloudWatch metrics (namespace AWS/KinesisAnalytics): "
                "lastCheckpointDuration, lastCheckpointSize and numberOfFailedCheckpoints; numRestarts "
                "counts restarts.")
    def checkpoints(self, application_name: str) -> dict:
        """The checkpoints of the application's job, as Flink's REST API reports them.

        ``completed``, ``failed`` and ``in_progress`` count checkpoints since the
        job was submitted (a restart keeps the job, and its count);
        ``latest`` is the latest completed one (``id``, ``state_bytes``,
        ``duration_ms``, ``triggered`` as a UTC datetime), None before the
        first; ``restored_from`` is ``"checkpoint"`` after a recovery,
        ``"snapshot"`` when the job started from a snapshot (a savepoint),
        else None; ``failures`` counts the job's failures (each one a restart).
        """
        job = self._job_id(application_name)
        stats = self.engine.cluster.rest(f"/jobs/{job}/checkpoints")
        failures = self.engine.cluster.rest(f"/jobs/{job}/exceptions")
        counts, latest = stats["counts"], stats.get("latest") or {}
        done, restored = latest.get("completed"), latest.get("restored")
        return {
            "completed": counts["completed"], "failed": counts["failed"], "in_progress": counts["in_progress"],
            "latest": done and {
                "id": done["id"], "state_bytes": done["state_size"], "duration_ms": done["end_to_end_duration"],
                "triggered": datetime.fromtimestamp(done["trigger_timestamp"] / 1000, timezone.utc)},
            "restored_from": restored and ("snapshot" if restored["is_savepoint"] else "checkpoint"),
            "failures": len((failures.get("exceptionHistory") or {}).get("entries", [])),
        }

    @local_hook("On AWS, a checkpoint is taken every CheckpointInterval (CheckpointConfiguration): wait "
                "that long. For a backup you can name and restore, take a snapshot "
                "(CreateApplicationSnapshot).")
    def wait_for_checkpoint(self, application_name: str, timeout: float = 60) -> dict:
        """Block until a checkpoint *triggered after this call* has completed; return
        :meth:`checkpoints`. Everything the job wrote before the call is then
        covered by a checkpoint: a recovery will not write it again."""
        since = datetime.fromtimestamp(time.time(), timezone.utc)

        def newer() -> bool:
            latest = self.checkpoints(application_name)["latest"]
            return latest is not None and latest["triggered"] > since

        if not wait_until(newer, timeout, poll=0.25):
            raise TimeoutError(f"no checkpoint of {application_name} completed within {timeout:.0f} s")
        return self.checkpoints(application_name)
