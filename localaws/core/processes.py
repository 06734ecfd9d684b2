"""Child processes the stack starts, tracked by PID and ended by PID.

Every server or worker localaws starts (a Lambda handler, later a Spark
worker or a Kafka broker) goes through :class:`ProcessTracker`, so that
stopping the stack ends exactly the processes we started, and nothing else
on the machine. Each child gets its own process group, so a handler that
starts grandchildren is ended with them.
"""
from __future__ import annotations

import os
import signal
import subprocess
import threading


class ProcessTracker:
    def __init__(self):
        self._lock = threading.Lock()
        self._procs: dict[int, subprocess.Popen] = {}

    def popen(self, args, **kwargs) -> subprocess.Popen:
        """``subprocess.Popen`` in a new process group, remembered until it ends."""
        kwargs.setdefault("start_new_session", True)
        proc = subprocess.Popen(args, **kwargs)
        with self._lock:
            self._procs[proc.pid] = proc
        return proc

    def forget(self, proc: subprocess.Popen) -> None:
        with self._lock:
            self._procs.pop(proc.pid, None)

    def kill(self, proc: subprocess.Popen) -> None:
        """SIGKILL ``proc`` and its process group, then reap it."""
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:  # pragma: no cover - kernel is slow
            pass
        self.forget(proc)

    def pids(self) -> list[int]:
        with self._lock:
            return [pid for pid, p in self._procs.items() if p.poll() is None]

    def stop_all(self) -> None:
        """End every child still running: SIGTERM, then SIGKILL after 3 s."""
        with self._lock:
            procs = list(self._procs.values())
        for proc in procs:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except (ProcessLookupError, PermissionError):
                    pass
        for proc in procs:
            try:
                proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                self.kill(proc)
            self.forget(proc)
