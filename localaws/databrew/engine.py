"""DataBrew job runs: real work in background threads, with AWS's run states.

``StartJobRun`` answers at once with a ``RunId``, as on AWS, and the run
goes on without the caller::

    STARTING --> RUNNING --> SUCCEEDED
        |           |    \\-> FAILED   (ErrorMessage says why; nothing was written)
        \\-----------+-----> STOPPING --> STOPPED   (StopJobRun)

A :class:`Runner` owns the runs, each with a thread of its own (a daemon:
it never holds up the interpreter's exit). At most :data:`WORKERS` runs work
at once; the others wait in ``STARTING``, as runs wait for capacity on AWS
(and so do new runs while :meth:`Runner.hold` is on, which is how a chapter
shows StopJobRun on a run that has not begun). Then a *task* does the work
(``jobs.py``: a recipe job's or a profile job's), calling its *checkpoint*
between steps: that is where a stop request (StopJobRun) takes effect, never
in the middle of writing the outputs.

A task raises :class:`RunFailed` (a missing column, a missing S3 object...) to end
the run ``FAILED`` with that message as ``ErrorMessage``. Run ids, times and
state changes are kept here; moto keeps the jobs, datasets and recipes.
"""
from __future__ import annotations

import logging
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable

from localaws.core.waiting import wait_until
from . import errors

log = logging.getLogger(__name__)

ACTIVE = ("STARTING", "RUNNING", "STOPPING")
ENDED = ("SUCCEEDED", "FAILED", "STOPPED", "TIMEOUT")
WORKERS = 2                 # runs that do work at once (the machine has 2 cores)
MAX_ACTIVE_RUNS = 8         # a guard for this laptop, not AWS's quota: more -> ServiceQuotaExceededException


class RunFailed(Exception):
    """A job run that cannot finish (its data, a step, an output); the run ends ``FAILED``
    with this message as its ``ErrorMessage``, and nothing is written."""


class Stopped(Exception):
    """Raised inside a task when StopJobRun asked the run to stop."""


def new_run_id() -> str:
    return f"db_{uuid.uuid4().hex}"


@dataclass
class JobRun:
    """One run of a job, as DescribeJobRun reports it."""
    run_id: str
    region: str
    job_name: str
    job_type: str                           # RECIPE or PROFILE
    dataset_name: str | None
    started_by: str
    started_on: datetime
    log_subscription: str = "ENABLE"
    outputs: list | None = None             # a recipe job's Outputs
    recipe_reference: dict | None = None    # {"Name", "RecipeVersion"}: the version that ran
    profile_configuration: dict | None = None
    job_sample: dict | None = None
    state: str = "STARTING"
    completed_on: datetime | None = None
    error_message: str | None = None
    stop_requested: bool = False
    history: list[str] = field(default_factory=lambda: ["STARTING"])
    written: list[str] = field(default_factory=list)       # s3:// URIs of the files the run wrote
    log_lines: list[str] = field(default_factory=list)

    @property
    def log_group_name(self) -> str | None:
        return None if self.log_subscription == "DISABLE" else f"/aws-glue-databrew/jobs/{self.job_name}"

    def describe(self) -> dict:
        """The run in the API's ``JobRun`` shape (timestamps as epoch seconds)."""
        out = {"Attempt": 0, "RunId": self.run_id, "JobName": self.job_name, "State": self.state,
               "StartedBy": self.started_by, "StartedOn": self.started_on.timestamp(),
               "LogSubscription": self.log_subscription}
        optional = {"DatasetName": self.dataset_name, "ErrorMessage": self.error_message,
                    "LogGroupName": self.log_group_name, "Outputs": self.outputs,
                    "RecipeReference": self.recipe_reference, "ProfileConfiguration": self.profile_configuration,
                    "JobSample": self.job_sample}
        out.update({k: v for k, v in optional.items() if v})
        if self.completed_on is not None:
            out["CompletedOn"] = self.completed_on.timestamp()
            out["ExecutionTime"] = int(round((self.completed_on - self.started_on).total_seconds()))
        return out


Task = Callable[[JobRun, Callable[[], None]], None]


class Runner:
    """The runs of one stack, and the threads that do their work."""

    def __init__(self, clock, on_end: Callable[[JobRun], None] | None = None):
        self._clock = clock
        self._on_end = on_end
        self._cond = threading.Condition(threading.RLock())
        self._threads: list[threading.Thread] = []
        self._working = 0                     # runs past STARTING, at most WORKERS
        self._held = False
        self._closing = False
        self._runs: dict[tuple[str, str], list[JobRun]] = {}     # (region, job) -> runs, oldest first

    # -- starting and stopping runs -------------------------------------------------
    def start(self, run: JobRun, task: Task) -> JobRun:
        """Register ``run`` (STARTING) and queue ``task`` for it; AWS errors for a busy job or stack."""
        with self._cond:
            mine = self._runs.setdefault((run.region, run.job_name), [])
            busy = next((r for r in mine if r.state in ACTIVE), None)
            if busy is not None:
                raise errors.ConflictException(f"Job {run.job_name} is already running (run {busy.run_id}, "
                                               f"{busy.state}); wait for it to end or stop it (StopJobRun)")
            active = sum(r.state in ACTIVE for runs in self._runs.values() for r in runs)
            if active >= MAX_ACTIVE_RUNS:
                raise errors.ServiceQuotaExceededException(
                    f"This local stand-in runs at most {MAX_ACTIVE_RUNS} DataBrew job runs at once; "
                    "wait for one to end")
            mine.append(run)
            thread = threading.Thread(target=self._execute, args=(run, task), daemon=True,
                                      name=f"databrew-{run.run_id}")
            self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()
        return run

    def request_stop(self, run: JobRun) -> bool:
        """Ask an active run to stop (STOPPING); False if it has already ended."""
        with self._cond:
            if run.state in ("STARTING", "RUNNING"):
                run.stop_requested = True
                self._set(run, "STOPPING")
            return run.state in ACTIVE

    def hold(self) -> None:
        """Keep new runs in STARTING (they wait as runs wait for capacity on AWS)."""
        with self._cond:
            self._held = True

    def release(self) -> None:
        with self._cond:
            self._held = False
            self._cond.notify_all()

    def stop(self) -> None:
        """Stop every active run and the worker threads (the stack is stopping)."""
        with self._cond:
            self._closing = True
            for runs in self._runs.values():
                for run in runs:
                    if run.state in ("STARTING", "RUNNING"):
                        run.stop_requested = True
            self._cond.notify_all()
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout=60)

    def live_threads(self) -> list[threading.Thread]:
        """The run threads still alive (none once :meth:`stop` has returned)."""
        with self._cond:
            return [t for t in self._threads if t.is_alive()]

    # -- looking runs up ------------------------------------------------------------
    def runs(self, region: str, job_name: str) -> list[JobRun]:
        """The job's runs, newest first."""
        with self._cond:
            return list(reversed(self._runs.get((region, job_name), [])))

    def find(self, region: str, job_name: str, run_id: str) -> JobRun | None:
        return next((r for r in self.runs(region, job_name) if r.run_id == run_id), None)

    def wait(self, run: JobRun, timeout: float | None = 60) -> bool:
        """Wait until ``run`` has ended; True if it did within ``timeout`` seconds."""
        return wait_until(lambda: run.state in ENDED, timeout, condition=self._cond)

    # -- the work -------------------------------------------------------------------
    def _set(self, run: JobRun, state: str) -> None:
        run.state = state
        run.history.append(state)
        self._cond.notify_all()

    def _end(self, run: JobRun, state: str, message: str | None = None) -> None:
        run.completed_on = self._clock.now()
        run.error_message = message
        self._set(run, state)

    def _checkpoint(self, run: JobRun) -> None:
        if run.stop_requested:
            raise Stopped()

    def _may_begin(self, run: JobRun) -> bool:
        return run.stop_requested or self._closing or (not self._held and self._working < WORKERS)

    def _execute(self, run: JobRun, task: Task) -> None:
        with self._cond:     # an RLock: waiting inside releases it, and the slot is taken under it
            wait_until(lambda: self._may_begin(run), None, condition=self._cond)
            began = not (run.stop_requested or self._closing)
            if began:
                self._working += 1
                self._set(run, "RUNNING")
        state, message = "STOPPED", None
        if began:
            run.log_lines.append(f"Job run {run.run_id} of {run.job_type.lower()} job {run.job_name} started")
            state = "SUCCEEDED"
            try:
                task(run, lambda: self._checkpoint(run))
            except Stopped:
                state = "STOPPED"
            except RunFailed as exc:
                state, message = "FAILED", str(exc)
            except Exception as exc:           # a bug of the stand-in: the run fails, saying so
                log.debug("DataBrew run %s failed", run.run_id, exc_info=True)
                state, message = "FAILED", f"The local stand-in failed: {type(exc).__name__}: {exc}"
        run.log_lines.append(f"Job run {run.run_id} {state}" + (f": {message}" if message else "")
                             + ("" if began else " before it started"))
        if self._on_end is not None:           # the logs are complete once the run reports its end
            try:
                self._on_end(run)
            except Exception:
                log.debug("DataBrew run %s: writing its logs failed", run.run_id, exc_info=True)
        with self._cond:
            if began:
                self._working -= 1
            self._end(run, state, message)
