"""The engine behind Managed Service for Apache Flink: one real Flink cluster, applications as jobs.

On AWS, every application gets a Flink cluster of its own, sized in KPUs.
Locally, the stack runs **one** Flink session cluster (JobManager,
TaskManager and SQL Gateway: ``localaws/core/flink.py``), started on the
first StartApplication and stopped with the stack; each running application
is one Flink job on it. What the API calls things, and what they are here:

=========================  =====================================================
Managed Flink              local Flink
=========================  =====================================================
application code           a Flink SQL script (``CREATE TABLE`` ... ``INSERT INTO``)
StartApplication           the script sent to the SQL Gateway; the INSERT is a job
ApplicationStatus RUNNING  the job is RUNNING with every task running
StopApplication            stop-with-savepoint (``Force=True``: cancel, no savepoint)
snapshot                   a savepoint, in ``<work_dir>/flink/savepoints/<app>/``
restore from a snapshot    the job started with ``execution.savepoint.path``
=========================  =====================================================
"""
from __future__ import annotations

import re
import shutil
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from localaws.core.flink import FlinkCluster, FlinkError, s3_settings

#: Managed Flink's default checkpoint interval (CheckpointConfiguration DEFAULT), in ms.
DEFAULT_CHECKPOINT_INTERVAL_MS = 60_000

#: Flink job states, and the application status each one shows. A job that
#: restarts after a failure is still a RUNNING application on AWS.
JOB_TO_STATUS = {
    "INITIALIZING": "STARTING", "CREATED": "STARTING",
    "RUNNING": "RUNNING", "RESTARTING": "RUNNING", "FAILING": "RUNNING",
    "CANCELLING": "STOPPING", "SUSPENDED": "READY",
    "FINISHED": "READY", "CANCELED": "READY", "FAILED": "READY",
}


def split_statements(script: str) -> list[str]:
    """The statements of a SQL script, split on ``;`` outside quotes and comments."""
    statements, current, i, quote = [], [], 0, None
    while i < len(script):
        ch = script[i]
        if quote:
            current.append(ch)
            if ch == quote:
                quote = None
        elif ch in "'`\"":
            quote = ch
            current.append(ch)
        elif script.startswith("--", i):
            end = script.find("\n", i)
            i = len(script) if end < 0 else end
            continue
        elif ch == ";":
            statements.append("".join(current).strip())
            current = []
        else:
            current.append(ch)
        i += 1
    statements.append("".join(current).strip())
    return [s for s in statements if s]


def is_insert(statement: str) -> bool:
    return re.match(r"(?is)\s*(insert\s|execute\s+statement\s+set)", statement) is not None


def flink_message(error: Exception) -> str:
    """Flink's own words from a Gateway error: the most specific ``Caused by`` line
    (the parser's or the validator's message), not the Java stack trace."""
    text = str(error)
    causes = re.findall(r"Caused by: ([\w.$]+(?:Exception|Error)): (.*)", text)
    for name, message in causes:
        if name.endswith(("SqlParserException", "ValidationException", "ParseException")):
            return message.strip()
    if causes:
        return causes[-1][1].strip()
    return text.strip().splitlines()[-1][:2000] if text.strip() else repr(error)


@dataclass
class Snapshot:
    """One application snapshot: a Flink savepoint on disk."""
    name: str
    path: str
    version_id: int
    created: datetime
    status: str = "READY"

    def summary(self, runtime: str) -> dict:
        return {"SnapshotName": self.name, "SnapshotStatus": self.status,
                "ApplicationVersionId": self.version_id,
                "SnapshotCreationTimestamp": self.created.timestamp(),
                "RuntimeEnvironment": runtime}


@dataclass
class Run:
    """What the engine knows of one application: its job, status and snapshots."""
    name: str
    status: str = "READY"
    job_id: str | None = None
    snapshots: dict[str, Snapshot] = field(default_factory=dict)
    stopper: threading.Thread | None = None

    def latest_snapshot(self) -> Snapshot | None:
        ready = [s for s in self.snapshots.values() if s.status == "READY"]
        return max(ready, key=lambda s: s.created) if ready else None


class FlinkEngine:
    """The stack's Flink cluster (started on first use) and the applications' jobs."""

    def __init__(self, work_dir: str | Path, processes, endpoint_url: str | None = None,
                 region: str = "us-east-1"):
        self.work_dir = Path(work_dir) / "flink"
        self.endpoint_url, self.region = endpoint_url, region
        self.processes = processes
        self.cluster: FlinkCluster | None = None
        self.gateway = None
        self._lock = threading.Lock()

    # -- the cluster -------------------------------------------------------------
    def ensure_cluster(self) -> FlinkCluster:
        """Start JobManager, TaskManager and SQL Gateway once (~8-15 s), tracked by PID."""
        with self._lock:
            if self.cluster is None or not self.cluster.pids():
                settings = {"table.local-time-zone": "UTC"}
                if self.endpoint_url:        # s3:// paths in a job's SQL reach the stack's S3
                    settings.update(s3_settings(self.endpoint_url, region=self.region))
                cluster = FlinkCluster(self.work_dir, tracker=self.processes, settings=settings)
                cluster.start()
                try:
                    self.gateway = cluster.start_gateway()
                except BaseException:
                    cluster.stop()
                    raise
                self.cluster = cluster
            return self.cluster

    def pids(self) -> dict[str, int]:
        return self.cluster.pids() if self.cluster else {}

    def stop(self) -> None:
        with self._lock:
            if self.cluster is not None:
                self.cluster.stop()
                self.cluster = None

    def savepoint_dir(self, app: str) -> Path:
        return self.work_dir / "savepoints" / app

    # -- jobs --------------------------------------------------------------------
    def submit(self, app: str, script: str, properties: dict[str, str]) -> str:
        """Run the application's SQL: every statement in one Gateway session, the INSERTs
        as one job (a statement set when there are several). Return the job id.
        FlinkError carries Flink's message when Flink refuses the SQL."""
        statements = split_statements(script)
        inserts = [s for s in statements if is_insert(s)]
        if not inserts:
            raise FlinkError("The application's SQL has no INSERT INTO statement: an application "
                             "writes its results to a sink table (a Kinesis stream, files...).")
        self.ensure_cluster()
        session_properties = {"execution.runtime-mode": "streaming",
                              "table.local-time-zone": "UTC", "pipeline.name": app, **properties}
        with self.gateway.session(session_properties) as sql:
            for statement in statements:
                if not is_insert(statement):
                    sql.execute(statement)
            job = inserts[0] if len(inserts) == 1 else (
                "EXECUTE STATEMENT SET BEGIN\n" + ";\n".join(inserts) + ";\nEND")
            result = sql.execute(job)
        if not result.job_id:
            raise FlinkError(f"the Gateway ran the INSERT but returned no job id: {result.rows}")
        return result.job_id

    def status(self, job_id: str | None) -> str:
        """The application status the job's state shows (READY when there is no job)."""
        if not job_id or self.cluster is None:
            return "READY"
        try:
            return JOB_TO_STATUS.get(self.cluster.job_state(job_id), "RUNNING")
        except (FlinkError, OSError):
            return "READY"

    def wait_for_job(self, job_id: str, timeout: float = 60) -> str:
        """Wait until the job runs (or ended); return the application status."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self.status(job_id)
            if status != "STARTING":
                return status
            time.sleep(0.25)
        return self.status(job_id)

    def snapshot(self, run: Run, name: str, version_id: int, stop: bool) -> Snapshot:
        """A savepoint of the run's job (``stop``: stop-with-savepoint) as a snapshot."""
        folder = self.savepoint_dir(run.name)
        folder.mkdir(parents=True, exist_ok=True)
        take = self.cluster.stop_job if stop else self.cluster.savepoint
        path = take(run.job_id, folder)
        snap = Snapshot(name, path, version_id, datetime.now(timezone.utc))
        run.snapshots[name] = snap
        return snap

    def cancel(self, job_id: str | None) -> None:
        if job_id and self.cluster is not None:
            try:
                self.cluster.cancel_job(job_id)
            except (FlinkError, OSError):
                pass

    @staticmethod
    def delete_snapshot_files(snap: Snapshot) -> None:
        path = snap.path[len("file:"):] if snap.path.startswith("file:") else snap.path
        shutil.rmtree(path, ignore_errors=True)
