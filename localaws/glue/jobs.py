"""Glue job runs, for real: each StartJobRun runs the job's script, and the run's state follows it.

What Glue does with a run of a Spark job (``Command.Name`` ``glueetl``, or
``gluestreaming`` for Spark Structured Streaming) is provision workers
(``WorkerType`` x ``NumberOfWorkers``, or ``MaxCapacity`` DPUs), copy the
script from ``Command.ScriptLocation`` in S3, and run it as the driver of
a Spark application across those workers, with the ``awsglue`` library on
its path. A ``pythonshell`` job is a plain Python process, no Spark.

Locally:

- a Spark job runs ``spark-submit --master local[2]``: **one** driver JVM
  whose two task threads stand in for the workers (this is a 2-core
  machine), its heap bounded by ``core/limits.py`` (``spark-driver``). The
  workers Glue would give it are reported (``WorkerType``,
  ``NumberOfWorkers``, ``MaxCapacity``) but not started.
- the run acts as the job's IAM role, as on Glue: each run assumes ``Role``
  (session ``GlueJobRunnerSession``) and both its boto3 calls and Spark's
  ``s3://`` (Hadoop's S3A connector on the local endpoint,
  ``core/spark.s3a_conf``) sign with that session's key. So Lake Formation
  holds the run to the role's grants, and the endpoint meters the bytes each
  run reads (the key is the run's own).
- Lake Formation: a Data Catalog table read through ``from_catalog`` is
  authorized and filtered for the role (``runtime/awsglue/_lakeformation.py``),
  its registered S3 data read with credentials Lake Formation vends for the
  run (``GetTemporaryGlueTableCredentials``, counted as the run's reads too).
  Row, column and cell filters need Glue 5.0+ and
  ``--enable-lakeformation-fine-grained-access true`` (recorded in ``run.json``).
- the job's ``GlueVersion`` picks the Spark line's SQL defaults
  (``versions.py``, ``core/spark.release_conf``); a ``gluestreaming`` job
  gets Spark's Kafka connector (the locked ``spark-kafka`` jar set).
- the script gets Glue's arguments (``--JOB_NAME``, ``--JOB_ID``,
  ``--JOB_RUN_ID``, ``--job-bookmark-option``, ``--TempDir`` when set, and
  the job's ``DefaultArguments`` merged with the run's ``Arguments``, the
  run's winning, and ``NonOverridableArguments`` winning over both), and
  the local ``awsglue`` library (``runtime/awsglue/``) on ``PYTHONPATH``.

Run states, as Glue reports them: ``STARTING`` (the script is fetched) ->
``RUNNING`` (the driver process runs) -> ``SUCCEEDED`` / ``FAILED`` (with the
script's exception as ``ErrorMessage``) / ``TIMEOUT`` (the run outlived
``Timeout`` minutes, on the stack's clock; the process is ended) /
``STOPPING`` -> ``STOPPED`` (BatchStopJobRun). A failed run is retried as a
new run (``MaxRetries``): id ``<first run id>_attempt_<n>``, ``Attempt`` n,
``PreviousRunId`` the run it retries; a timed-out or stopped run is not.

Logs go to CloudWatch Logs while the run goes, stream = the run id:
``/aws-glue/jobs/output`` gets what the script prints (its stdout and
stderr), ``/aws-glue/jobs/error`` Spark's own log lines (WARN and above),
``GlueLogger`` messages and the traceback of a failed run, as Glue 5.0 sorts
them.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from localaws.core import cwlogs, not_emulated, s3 as s3uri
from localaws.core.java import require_java_home
from localaws.core.limits import FAST_JVM, heap_mb
from localaws.core.spark import (jar_sets_for, local_conf, release_conf, s3a_conf, submit_command,
                                 submit_env)
from . import bookmarks, errors, versions

log = logging.getLogger("localaws.glue")

ACTIVE = ("STARTING", "RUNNING", "STOPPING", "WAITING")
SPARK_COMMANDS = ("glueetl", "gluestreaming")
COMMANDS = (*SPARK_COMMANDS, "pythonshell")
BOOKMARK_OPTIONS = ("job-bookmark-enable", "job-bookmark-disable", "job-bookmark-pause")
KAFKA_PACKAGE = "org.apache.spark:spark-sql-kafka-0-10_2.12:3.5.1"     # what Glue streaming ships
ROLE_SESSION = "GlueJobRunnerSession"     # the session name Glue's runs show in CloudTrail
FGAC_ARGUMENT = "--enable-lakeformation-fine-grained-access"

RUNTIME = Path(__file__).with_name("runtime")            # holds the awsglue package
LAUNCHER = RUNTIME / "awsglue" / "_launcher.py"
LOG_GROUP = "/aws-glue/jobs"
OUTPUT_GROUP, ERROR_GROUP = f"{LOG_GROUP}/output", f"{LOG_GROUP}/error"

#: DPUs per worker, by WorkerType (CreateJob's WorkerType documentation).
DPU = {"Standard": 1, "G.025X": 0.25, "G.1X": 1, "G.2X": 2, "G.4X": 4, "G.8X": 8, "G.12X": 12, "G.16X": 16,
       "R.1X": 1, "R.2X": 2, "R.4X": 4, "R.8X": 8, "Z.2X": 2}
PYTHONSHELL_DPU = 0.0625          # a Python shell job's default MaxCapacity
STOP_GRACE_SECONDS = 60           # a stopped streaming driver finishes its window within this
POLL_SECONDS = 0.5                # how often a run's supervisor looks at its process and clock
LOG_FLUSH_SECONDS = 2.0


class RunError(Exception):
    """Why a run failed before its script could start; becomes the run's ErrorMessage."""


def executor_error(message: str) -> RunError:
    """A check Glue's job executor makes when the run starts (the run fails; StartJobRun did not)."""
    return RunError(f"{message} (Service: AWSGlueJobExecutor; Status Code: 400; Error Code: InvalidInputException; "
                    f"Request ID: {uuid.uuid4()}; Proxy: null)")


def _version_at_least(version: str, floor: tuple[int, ...]) -> bool:
    """``"5.0"`` >= (5, 0)? (Glue versions are ``major.minor``.)"""
    try:
        return tuple(int(p) for p in version.split(".")) >= floor
    except ValueError:
        return False


def utcnow(clock) -> datetime:
    """The stack clock's UTC time, naive, like moto's own timestamps (its serializer adds the zone)."""
    return clock.now().replace(tzinfo=None)


@dataclass
class JobSpec:
    """The job definition as a run started (a later change to the job does not change the run)."""
    name: str
    command: dict
    default_arguments: dict
    non_overridable_arguments: dict
    glue_version: str | None
    worker_type: str | None
    number_of_workers: int | None
    max_capacity: float | None
    allocated_capacity: int | None
    timeout: int | None
    max_retries: int
    max_concurrent_runs: int
    execution_class: str
    security_configuration: str | None
    notification_property: dict | None
    role: str | None = None
    moto_job: object = None           # moto's FakeJob: retries are recorded there too

    @classmethod
    def from_moto(cls, job) -> "JobSpec":
        return cls(job.name, dict(job.command or {}), dict(job.default_arguments or {}),
                   dict(job.non_overridable_arguments or {}), job.glue_version, job.worker_type,
                   job.number_of_workers, job.max_capacity, job.allocated_capacity, job.timeout,
                   int(job.max_retries or 0), int((job.execution_property or {}).get("MaxConcurrentRuns", 1)),
                   job.execution_class or "STANDARD", job.security_configuration, job.notification_property,
                   getattr(job, "role", None), job)

    @property
    def kind(self) -> str:
        return self.command.get("Name") or "glueetl"


@dataclass
class Overrides:
    """What StartJobRun may set for one run instead of the job's values."""
    arguments: dict = field(default_factory=dict)
    timeout: int | None = None
    worker_type: str | None = None
    number_of_workers: int | None = None
    max_capacity: float | None = None
    allocated_capacity: int | None = None
    security_configuration: str | None = None
    notification_property: dict | None = None


@dataclass
class Run:
    """One job run: its settings, its process, its state."""
    id: str
    spec: JobSpec
    overrides: Overrides
    attempt: int
    previous_run_id: str | None
    folder: Path
    started_on: datetime
    state: str = "STARTING"
    error_message: str | None = None
    last_modified_on: datetime | None = None
    completed_on: datetime | None = None
    started_clock: float = 0.0
    ended_clock: float | None = None
    proc: subprocess.Popen | None = None
    stop_event: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None
    usage: object | None = None        # core.s3.Usage: what the run's process read from S3 (the run's key)
    access_key: str | None = None      # the key the run signs with (its role session's)
    vended: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)  # meters of vended keys
    vended_usage: list = field(default_factory=list)

    # -- the settings Glue reports for the run ----------------------------------
    @property
    def glue_version(self) -> str:
        if self.spec.kind == "pythonshell":
            return self.spec.glue_version or versions.PYTHONSHELL_DEFAULT
        return versions.resolve(self.spec.glue_version)

    @property
    def timeout(self) -> int:
        """Minutes (the run's, else the job's, else Glue's default for the version)."""
        chosen = self.overrides.timeout or self.spec.timeout
        if chosen:
            return int(chosen)
        if self.spec.kind == "pythonshell":
            return versions.PYTHONSHELL_TIMEOUT_MINUTES
        found = versions.VERSIONS.get(self.glue_version)
        return found.default_timeout_minutes if found else 2880

    @property
    def capacity(self) -> tuple[str | None, int | None, float]:
        """(WorkerType, NumberOfWorkers, MaxCapacity) as Glue fills them in."""
        worker = self.overrides.worker_type or self.spec.worker_type
        workers = self.overrides.number_of_workers or self.spec.number_of_workers
        capacity = self.overrides.max_capacity or self.spec.max_capacity
        if self.spec.kind == "pythonshell":
            return None, None, float(capacity or PYTHONSHELL_DPU)
        if worker and workers:
            return worker, int(workers), float(workers * DPU.get(worker, 1))
        allocated = self.overrides.allocated_capacity or self.spec.allocated_capacity
        return worker, workers, float(capacity or allocated or 10)

    def execution_seconds(self, clock) -> int:
        end = self.ended_clock if self.ended_clock is not None else clock.monotonic()
        return max(0, int(round(end - self.started_clock)))

    def as_dict(self, clock) -> dict:
        """The ``JobRun`` structure of GetJobRun / GetJobRuns."""
        worker, workers, capacity = self.capacity
        run = {"Id": self.id, "Attempt": self.attempt, "JobName": self.spec.name, "JobMode": "SCRIPT",
               "StartedOn": self.started_on, "LastModifiedOn": self.last_modified_on or self.started_on,
               "JobRunState": self.state, "PredecessorRuns": [], "ExecutionTime": self.execution_seconds(clock),
               "Timeout": self.timeout, "MaxCapacity": capacity, "LogGroupName": LOG_GROUP,
               "GlueVersion": self.glue_version, "ExecutionClass": self.spec.execution_class}
        if self.spec.kind != "pythonshell":
            run["AllocatedCapacity"] = int(capacity)
        optional = {"PreviousRunId": self.previous_run_id, "CompletedOn": self.completed_on,
                    "ErrorMessage": self.error_message, "Arguments": self.overrides.arguments or None,
                    "WorkerType": worker, "NumberOfWorkers": workers,
                    "SecurityConfiguration": self.overrides.security_configuration or self.spec.security_configuration,
                    "NotificationProperty": self.overrides.notification_property or self.spec.notification_property}
        run.update({k: v for k, v in optional.items() if v})
        if self.spec.execution_class == "FLEX" and self.state not in ACTIVE:
            # Glue reports DPU-seconds for Flex runs: executor time x DPUs (locally: the run's time).
            run["DPUSeconds"] = float(self.execution_seconds(clock) * capacity)
        return run


class LogTail:
    """Follows one of the run's files and sends its new complete lines to a CloudWatch Logs stream."""

    def __init__(self, path: Path, group: str):
        self.path, self.group = path, group
        self._offset = 0
        self._partial = b""

    def new_lines(self, final: bool = False) -> list[str]:
        if not self.path.exists():
            return []
        with open(self.path, "rb") as f:
            f.seek(self._offset)
            data = f.read()
        self._offset += len(data)
        data = self._partial + data
        lines = data.split(b"\n")
        self._partial = b"" if final else lines.pop()
        return [line.decode("utf-8", "replace").rstrip("\r") for line in lines if line.strip()]


class JobRuns:
    """Every job run of the stack: its process, state and outcome."""

    def __init__(self, ctx):
        self.ctx = ctx
        self.lock = threading.RLock()             # StartJobRun's check-and-start, BatchStopJobRun, states
        self.runs: dict[str, Run] = {}
        self.bookmarks = bookmarks.Bookmarks()
        self._closing = False
        self._java_home: str | None = None

    # ================================================================ starting
    def check_start(self, spec: JobSpec, overrides: Overrides) -> None:
        """What StartJobRun refuses before any run exists (AWS's error shape)."""
        if spec.kind == "glueray":
            raise not_emulated("glue", "StartJobRun", "Ray jobs (Command.Name 'glueray') are not emulated")
        if spec.kind not in COMMANDS:
            raise errors.InvalidInputException(f"Command name {spec.kind} is not supported; "
                                               f"use one of {', '.join(COMMANDS)}")
        timeout = overrides.timeout
        if timeout is not None and not 1 <= int(timeout) <= 10080:
            raise errors.InvalidInputException("Timeout must be between 1 and 10080 minutes (7 days)")
        active = [r for r in self.runs.values() if r.spec.name == spec.name and r.state in ACTIVE]
        if len(active) >= max(1, spec.max_concurrent_runs):
            raise errors.ConcurrentRunsExceededException(f"Concurrent runs exceeded for {spec.name}")

    def start(self, spec: JobSpec, run_id: str, overrides: Overrides, attempt: int = 0,
              previous_run_id: str | None = None) -> Run:
        """Register run ``run_id`` (moto has recorded it) and start it in a thread of its own."""
        folder = Path(self.ctx.work_dir) / "glue" / "runs" / run_id
        folder.mkdir(parents=True, exist_ok=True)
        now = utcnow(self.ctx.clock)
        run = Run(run_id, spec, overrides, attempt, previous_run_id, folder, now, last_modified_on=now,
                  started_clock=self.ctx.clock.monotonic())
        with self.lock:
            self.runs[run_id] = run
            run.thread = threading.Thread(target=self._execute, args=(run,), name=f"glue-{run_id[:12]}", daemon=True)
        run.thread.start()
        return run

    # ================================================================ the run's life
    def _set(self, run: Run, state: str, message: str | None = None, *, ran: bool = True) -> None:
        """Move ``run`` to ``state``; a run that ends before its script started (``ran=False``)
        consumed no execution time: Glue reports ``ExecutionTime`` 0 for it."""
        with self.lock:
            run.state = state
            run.last_modified_on = utcnow(self.ctx.clock)
            if message:
                run.error_message = message
            if state not in ACTIVE:
                run.completed_on = run.last_modified_on
                run.ended_clock = self.ctx.clock.monotonic() if ran else run.started_clock

    def _execute(self, run: Run) -> None:
        """The run, from STARTING to its end (the run's thread)."""
        # A Spark driver's stdout holds the script's prints (Spark's PythonRunner merges the Python
        # process's stdout and stderr into it); its stderr holds Spark's own log lines.
        tails = [LogTail(run.folder / "stdout", OUTPUT_GROUP),
                 LogTail(run.folder / "stderr", ERROR_GROUP if run.spec.kind in SPARK_COMMANDS else OUTPUT_GROUP),
                 LogTail(run.folder / "glue-logger.log", ERROR_GROUP)]
        try:
            cmd, env = self._prepare(run)
        except RunError as exc:
            self._send_logs(run, [], extra_error=[str(exc)])
            self._set(run, "FAILED", str(exc), ran=False)
            return
        except Exception as exc:  # noqa: BLE001 - a bug must still end the run, visibly
            log.exception("glue run %s could not start", run.id)
            self._set(run, "FAILED", f"InternalServiceException: {exc}")
            return
        if run.stop_event.is_set():
            self._set(run, "STOPPED")
            return
        with self.ctx.s3.meter.track(run.access_key or run.id) as usage:   # the run's S3 reads, by its key
            run.usage = usage
            try:
                outcome = self._supervise(run, cmd, env, tails)
            finally:
                with self.lock:
                    run.vended.close()          # stop metering the credentials vended to the run
                for extra in run.vended_usage:
                    usage.bytes_read += extra.bytes_read
                    usage.requests += extra.requests
                    usage.objects |= extra.objects
        self._send_logs(run, tails, final=True, extra_error=self._traceback(run))
        if outcome == "STOPPED":
            self._set(run, "STOPPED")
        elif outcome == "TIMEOUT":
            self._set(run, "TIMEOUT", f"Job run timed out after {run.timeout} minutes (its Timeout); "
                                      "the driver was stopped.")
        elif outcome == 0:
            self._commit_bookmark(run)
            self._set(run, "SUCCEEDED")
        else:
            self._set(run, "FAILED", self._failure(run, outcome))
            self._retry(run)

    def _prepare(self, run: Run) -> tuple[list[str], dict]:
        """Check the run's arguments, fetch the script, write ``run.json``; the command and its environment."""
        spec = run.spec
        args = {**spec.default_arguments, **run.overrides.arguments, **spec.non_overridable_arguments}
        option = args.get("--job-bookmark-option", "job-bookmark-disable")
        if option not in BOOKMARK_OPTIONS:
            raise executor_error(f"Job bookmark option {option} is not valid. "
                                 f"Valid values are: {', '.join(BOOKMARK_OPTIONS)}")
        version = None
        if spec.kind in SPARK_COMMANDS:
            try:
                version = versions.spark_job(spec.glue_version)
            except versions.UnsupportedVersion as exc:
                raise executor_error(str(exc)) from None
        script = self._fetch_script(run, args.get("--scriptLocation") or spec.command.get("ScriptLocation"))
        key, secret, token = self._role_session(run)
        fine_grained = (version is not None and _version_at_least(run.glue_version, (5, 0))
                        and str(args.get(FGAC_ARGUMENT, "false")).lower() == "true")
        (run.folder / "run.json").write_text(json.dumps({
            "job_name": spec.name, "run_id": run.id, "attempt": run.attempt, "bookmark_option": option,
            "bookmark": self.bookmarks.committed(spec.name) if option != "job-bookmark-disable" else None,
            "account_id": self.ctx.principals.account_id, "glue_version": run.glue_version,
            "lakeformation_fine_grained_access": fine_grained}))
        glue_args = {"--JOB_ID": "j_" + hashlib.sha256(spec.name.encode()).hexdigest(), "--JOB_RUN_ID": run.id,
                     "--job-bookmark-option": option, "--JOB_NAME": spec.name}
        glue_args.update({k: v for k, v in args.items() if k not in glue_args})
        script_args = [str(part) for pair in glue_args.items() for part in pair]
        env = {**self.ctx.env(), "AWS_ACCESS_KEY_ID": key, "AWS_SECRET_ACCESS_KEY": secret,  # the role's session
               "PYTHONPATH": str(RUNTIME), "LOCALAWS_GLUE_RUN_DIR": str(run.folder), "PYTHONUNBUFFERED": "1"}
        if token:
            env["AWS_SESSION_TOKEN"] = token
        if spec.kind == "pythonshell":
            base = {k: v for k, v in os.environ.items() if k not in ("AWS_ENDPOINT_URL", "PYTHONPATH")}
            return [sys.executable, str(LAUNCHER), str(script), *script_args], {**base, **env}
        return self._spark_command(run, version, script, script_args, args, secret), {
            **submit_env(self._java(), local_dir=run.folder / "local"), **env}

    def _role_session(self, run: Run) -> tuple[str, str, str | None]:
        """Assume the job's role for this run (Glue's session name): (access key, secret, session token).

        ``Role`` may be a role name or ARN, as CreateJob takes it. The role need
        not exist in IAM locally (STS here assumes any role ARN); it then holds no
        Lake Formation grants and no IAM policies. A spec without a role signs
        with the run's id: the stack's administrator.
        """
        role = run.spec.role
        if not role:
            run.access_key = run.id
            return run.id, "localaws", None
        if not role.startswith("arn:"):
            role = f"arn:aws:iam::{self.ctx.principals.account_id}:role/{role}"
        try:
            creds = self.ctx.client("sts").assume_role(RoleArn=role, RoleSessionName=ROLE_SESSION)["Credentials"]
        except Exception as exc:  # noqa: BLE001 - e.g. a malformed role ARN
            raise executor_error(f"Unable to assume role {role}: {exc}") from None
        run.access_key = creds["AccessKeyId"]
        return creds["AccessKeyId"], creds["SecretAccessKey"], creds.get("SessionToken")

    # ================================================================ Lake Formation's vended credentials
    def run_of_key(self, access_key: str | None) -> Run | None:
        """The active run that signs with ``access_key`` (its role session), if any."""
        if not access_key:
            return None
        with self.lock:
            for run in self.runs.values():
                if run.access_key == access_key and run.state in ACTIVE:
                    return run
        return None

    def credentials_vended(self, caller_key: str | None, vended_key: str) -> None:
        """Lake Formation vended ``vended_key`` to the caller: if the caller is a run, the S3
        reads signed with it count as the run's (``objects_read``) until the run ends."""
        run = self.run_of_key(caller_key)
        if run is None:
            return
        with self.lock:
            if run.state in ACTIVE:
                run.vended_usage.append(run.vended.enter_context(self.ctx.s3.meter.track(vended_key)))

    def _java(self) -> str:
        if self._java_home is None:
            try:
                self._java_home = require_java_home()
            except RuntimeError as exc:
                raise RunError(str(exc)) from None
        return self._java_home

    def _spark_command(self, run: Run, version, script: Path, script_args: list[str], args: dict,
                       secret: str) -> list[str]:
        """``spark-submit --master local[2]``: the driver JVM, its two task threads standing in for the workers."""
        jar_sets = jar_sets_for([KAFKA_PACKAGE]) if run.spec.kind == "gluestreaming" else []
        try:
            conf = s3a_conf(self.ctx.endpoint, run.access_key, secret, self.ctx.region, jar_sets=jar_sets)
        except RuntimeError as exc:           # a jar set is not installed
            raise RunError(str(exc)) from None
        conf.update(local_conf(driver_heap_mb=heap_mb("spark-driver"), jvm_options=FAST_JVM))
        conf.update(release_conf(version.spark))
        conf["spark.log.level"] = "WARN"        # the error log: Spark's warnings and errors, not its INFO chatter
        for item in (args.get("--conf") or "").split("--conf"):       # Glue's "--conf k=v --conf k2=v2"
            key, eq, value = item.strip().partition("=")
            if eq and key.startswith("spark."):
                conf[key] = value
        return submit_command("local[2]", conf, LAUNCHER, [str(script), *script_args],
                              options=["--name", run.spec.name])

    def _fetch_script(self, run: Run, location: str | None) -> Path:
        if not location:
            raise executor_error("Command.ScriptLocation is not set")
        if not s3uri.is_s3(location):
            raise executor_error(f"ScriptLocation {location} is not an s3:// location")
        target = run.folder / "script" / (Path(s3uri.split(location)[1]).name or "script.py")
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.ctx.s3.download(location, str(target), access_key=run.id)
        except Exception as exc:  # noqa: BLE001 - botocore's error says what is missing
            raise RunError(f"Error downloading script {location}: fatal error: {exc}") from None
        return target

    def _supervise(self, run: Run, cmd: list[str], env: dict, tails: list[LogTail]):
        """Run the process to its end: its exit code, or "STOPPED" / "TIMEOUT"."""
        clock = self.ctx.clock
        deadline = run.started_clock + run.timeout * 60
        with open(run.folder / "stdout", "wb") as out, open(run.folder / "stderr", "wb") as err:
            proc = self.ctx.processes.popen(cmd, env=env, cwd=str(run.folder), stdout=out, stderr=err,
                                            stdin=subprocess.DEVNULL)
        run.proc = proc
        with self.lock:
            if run.state == "STARTING":
                self._set(run, "RUNNING")
        outcome, stop_sent, kill_at, flushed = None, False, None, time.monotonic()
        try:
            while proc.poll() is None:
                if run.stop_event.is_set() and not stop_sent:
                    stop_sent, outcome = True, "STOPPED"
                    if run.spec.kind == "gluestreaming" and not self._closing:
                        (run.folder / "stop").touch()          # the driver ends between two windows
                        kill_at = time.monotonic() + STOP_GRACE_SECONDS
                    else:
                        self.ctx.processes.kill(proc)
                        break
                if kill_at is not None and time.monotonic() >= kill_at:
                    self.ctx.processes.kill(proc)
                    break
                if outcome is None and clock.monotonic() >= deadline:
                    outcome = "TIMEOUT"
                    self.ctx.processes.kill(proc)
                    break
                if time.monotonic() - flushed >= LOG_FLUSH_SECONDS:
                    self._send_logs(run, tails)
                    flushed = time.monotonic()
                try:
                    proc.wait(timeout=POLL_SECONDS)
                except subprocess.TimeoutExpired:
                    pass
        finally:
            self.ctx.processes.forget(proc)
        if outcome is None and run.stop_event.is_set():
            outcome = "STOPPED"                 # ended by BatchStopJobRun (or the stack stopping) as it exited
        return outcome if outcome is not None else proc.returncode

    # ================================================================ outcomes
    def _traceback(self, run: Run) -> list[str]:
        path = run.folder / "traceback.txt"
        return path.read_text(errors="replace").splitlines() if path.exists() else []

    def _failure(self, run: Run, code) -> str:
        """The ErrorMessage of a failed run: the script's exception, else the driver's last error line."""
        path = run.folder / "error.json"
        if path.exists():
            return json.loads(path.read_text())["ErrorMessage"]
        for name in ("stderr", "stdout"):
            lines = [line.strip() for line in (run.folder / name).read_text(errors="replace").splitlines()]
            for line in reversed(lines):
                if ("Error" in line or "Exception" in line) and ":" in line and not line.startswith(("at ", "File ")):
                    return line[:1000]
        return f"Command failed with exit code {code}"

    def _commit_bookmark(self, run: Run) -> None:
        path = run.folder / "bookmark.json"
        if path.exists():
            self.bookmarks.commit(run.spec.name, run.id, run.attempt, json.loads(path.read_text()))

    def _retry(self, run: Run) -> None:
        """MaxRetries: a failed run starts again as a new run, ``<first id>_attempt_<n>``."""
        spec = run.spec
        if self._closing or run.attempt >= spec.max_retries:
            return
        job = spec.moto_job
        backend = getattr(job, "backend", None)
        if job is None or backend is None or backend.jobs.get(spec.name) is not job:
            return                              # the job was deleted meanwhile
        o = run.overrides
        with self.lock:
            try:
                job.start_job_run(allocated_capacity=o.allocated_capacity, max_capacity=o.max_capacity,
                                  timeout=o.timeout, worker_type=o.worker_type,
                                  security_configuration=o.security_configuration,
                                  number_of_workers=o.number_of_workers,
                                  notification_property=o.notification_property,
                                  previous_run_id=run.id, arguments=o.arguments)
            except Exception:  # noqa: BLE001 - e.g. MaxConcurrentRuns reached by a run started meanwhile
                log.info("glue run %s: no retry", run.id, exc_info=True)
                return
            record = job.job_runs[-1]
            record.job_run_id = f"{run.id.split('_attempt_')[0]}_attempt_{run.attempt + 1}"
            self.start(spec, record.job_run_id, o, attempt=run.attempt + 1, previous_run_id=run.id)

    # ================================================================ logs
    def _send_logs(self, run: Run, tails: list[LogTail], final: bool = False, extra_error=()) -> None:
        """New lines of the run's files to ``/aws-glue/jobs/{output,error}``, stream = the run id."""
        by_group: dict[str, list[str]] = {}
        for tail in tails:
            by_group.setdefault(tail.group, []).extend(tail.new_lines(final))
        by_group.setdefault(ERROR_GROUP, []).extend(line for line in extra_error if line.strip())
        try:
            logs = self.ctx.client("logs")
            for group, lines in by_group.items():
                cwlogs.append(logs, group, run.id, lines)
        except Exception:  # noqa: BLE001 - logs must never fail the run
            log.debug("could not write the logs of %s", run.id, exc_info=True)

    # ================================================================ stopping
    def stop_runs(self, job_name: str, run_ids: list[str]) -> dict:
        """BatchStopJobRun: STOPPING for each active run; an error entry for each other id."""
        stopped, failed = [], []
        with self.lock:
            for run_id in run_ids:
                run = self.runs.get(run_id)
                if run is None or run.spec.name != job_name:
                    failed.append({"JobName": job_name, "JobRunId": run_id, "ErrorDetail": {
                        "ErrorCode": "EntityNotFoundException", "ErrorMessage": f"Job Run {run_id} not found"}})
                elif run.state not in ACTIVE:
                    failed.append({"JobName": job_name, "JobRunId": run_id, "ErrorDetail": {
                        "ErrorCode": "InvalidInputException",
                        "ErrorMessage": f"Job Run {run_id} is in terminal state {run.state} and cannot be stopped"}})
                else:
                    if run.state != "STOPPING":
                        self._set(run, "STOPPING")
                    run.stop_event.set()
                    stopped.append({"JobName": job_name, "JobRunId": run_id})
        return {"SuccessfulSubmissions": stopped, "Errors": failed}

    def pids(self, run_id: str | None = None) -> list[int]:
        """PIDs of the live driver processes (one run, or all)."""
        runs = [self.runs[run_id]] if run_id else list(self.runs.values())
        return [r.proc.pid for r in runs if r.proc is not None and r.proc.poll() is None]

    def stop(self) -> None:
        """End every run's process (by PID) and wait for the runs' threads."""
        with self.lock:
            self._closing = True
            runs = list(self.runs.values())
        for run in runs:
            run.stop_event.set()
            if run.proc is not None and run.proc.poll() is None:
                self.ctx.processes.kill(run.proc)
        for run in runs:
            if run.thread is not None and run.thread is not threading.current_thread():
                run.thread.join(timeout=30)
        for run in runs:
            shutil.rmtree(run.folder / "local", ignore_errors=True)
