"""Job bookmarks: what a job's runs have already processed, kept between runs.

On Glue the bookmark service keeps, per job, the state its last successful
run committed (``Job.commit()`` in the script), and a run started with
``--job-bookmark-option job-bookmark-enable`` (or ``-pause``) reads only what
that state does not cover. ``GetJobBookmark`` shows it as a
``JobBookmarkEntry``; ``ResetJobBookmark`` clears it (or, given a ``RunId``,
rewinds it to the state that run committed); deleting the job deletes it.

Locally this module is the bookmark service: the runner (``jobs.py``) hands
the committed state to the driver in the run's folder and stores the state
the driver hands back, when the run ends SUCCEEDED. *Which* S3 objects a
state covers is decided in the driver (``runtime/awsglue/_bookmarks.py``).

``JobBookmarkEntry`` fields: ``JobName``; ``Version`` (goes up with every
commit and reset); ``Run`` (how many runs have committed); ``Attempt`` and
``RunId`` of the run that committed; ``PreviousRunId`` (the run that
committed before it); ``JobBookmark``, the state as a JSON string (locally
``{"states": {<transformation_ctx>: {"high_ms", "in_band", "paths"}}}``;
Glue's own document has another layout).
"""
from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field

from . import errors


@dataclass
class Entry:
    job_name: str
    version: int = 0
    run: int = 0
    attempt: int = 0
    run_id: str | None = None
    previous_run_id: str | None = None
    state: dict = field(default_factory=dict)
    history: dict = field(default_factory=dict)      # run id -> the state it committed

    def as_dict(self) -> dict:
        entry = {"JobName": self.job_name, "Version": self.version, "Run": self.run, "Attempt": self.attempt,
                 "JobBookmark": json.dumps(self.state, sort_keys=True)}
        if self.run_id:
            entry["RunId"] = self.run_id
        if self.previous_run_id:
            entry["PreviousRunId"] = self.previous_run_id
        return entry


class Bookmarks:
    """Every job's bookmark entry (threads: the runs commit, the API reads and resets)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._entries: dict[str, Entry] = {}

    def committed(self, job_name: str) -> dict | None:
        """The state a new run starts from (None: read everything)."""
        with self._lock:
            entry = self._entries.get(job_name)
            return json.loads(json.dumps(entry.state)) if entry and entry.state else None

    def commit(self, job_name: str, run_id: str, attempt: int, state: dict) -> None:
        """Store what a successful run committed."""
        with self._lock:
            entry = self._entries.setdefault(job_name, Entry(job_name))
            entry.previous_run_id = entry.run_id
            entry.run_id, entry.attempt = run_id, attempt
            entry.version += 1
            entry.run += 1
            entry.state = state
            entry.history[run_id] = state

    def get(self, job_name: str, run_id: str | None = None) -> dict:
        """GetJobBookmark: the entry (as of ``run_id``'s commit, when given)."""
        with self._lock:
            entry = self._entries.get(job_name)
            if entry is None:
                raise errors.EntityNotFoundException(f"Continuation for job {job_name} not found")
            if run_id and run_id != entry.run_id:
                if run_id not in entry.history:
                    raise errors.EntityNotFoundException(
                        f"Continuation for job {job_name} and run {run_id} not found")
                found = entry.as_dict()
                found.update(RunId=run_id, JobBookmark=json.dumps(entry.history[run_id], sort_keys=True))
                return found
            return entry.as_dict()

    def reset(self, job_name: str, run_id: str | None = None) -> dict:
        """ResetJobBookmark: forget everything, or rewind to the state ``run_id`` committed."""
        with self._lock:
            entry = self._entries.setdefault(job_name, Entry(job_name))
            if run_id:
                if run_id not in entry.history:
                    raise errors.EntityNotFoundException(
                        f"Continuation for job {job_name} and run {run_id} not found")
                entry.state = entry.history[run_id]
            else:
                entry.state = {}
            entry.version += 1
            return entry.as_dict()

    def forget(self, job_name: str) -> None:
        """DeleteJob deletes the job's bookmark with it."""
        with self._lock:
            self._entries.pop(job_name, None)
