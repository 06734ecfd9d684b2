"""A real Spark standalone cluster: one master JVM, one worker JVM per node.

An EMR cluster is a set of EC2 instances in three roles:

- the **master** node runs the cluster managers (YARN ResourceManager, HDFS
  NameNode, Spark history server) and the step drivers;
- **core** nodes run tasks *and* store data (HDFS DataNodes);
- **task** nodes only run tasks.

Here every node is a process on this machine, started from the pyspark
package: the master node is Spark's standalone ``Master`` (the role YARN's
ResourceManager plays on EMR), each core or task node is one Spark
``Worker`` with the cores and memory of its instance type, scaled down
(``instances.py``). Everything binds to 127.0.0.1 on free ports. Each worker
is labelled by the port we gave it: the master's ``/json/`` status page
lists workers with their port, so we know which EMR instance each Spark
worker is, and whether Spark sees it ``ALIVE`` or ``DEAD``.

Processes are started through the stack's process tracker, so stopping the
stack ends exactly these JVMs, by PID.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from localaws.core.limits import FAST_JVM, heap_mb
from localaws.core.spark import spark_home
from localaws.core.waiting import wait_until

START_TIMEOUT = 120      # seconds for a master or worker to come up


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def now() -> datetime:
    """UTC now, naive, like moto's own timestamps (its serializer adds the zone)."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


def spark_env(java_home: str) -> dict[str, str]:
    """Environment of every JVM and driver we start."""
    env = dict(os.environ)
    for name in ("PYSPARK_DRIVER_PYTHON", "SPARK_CONF_DIR", "SPARK_MASTER_HOST", "AWS_ENDPOINT_URL"):
        env.pop(name, None)
    env.update({
        "SPARK_HOME": spark_home(), "JAVA_HOME": java_home, "SPARK_LOCAL_IP": "127.0.0.1",
        "SPARK_LOCAL_HOSTNAME": "127.0.0.1", "PYSPARK_PYTHON": sys.executable,
        # Small daemons: the master and workers only coordinate; executors get the memory.
        # Their heap bound (core/limits.py) goes in SPARK_DAEMON_MEMORY: spark-class turns it
        # into -Xmx and refuses -Xmx in SPARK_DAEMON_JAVA_OPTS.
        "SPARK_DAEMON_MEMORY": f"{heap_mb('spark-daemon')}m",
        "SPARK_DAEMON_JAVA_OPTS": FAST_JVM,
        "SPARK_NO_DAEMONIZE": "1",
    })
    env["PATH"] = os.pathsep.join([str(Path(java_home) / "bin"), env.get("PATH", "")])
    return env


@dataclass
class Node:
    """One EMR instance, i.e. one Spark process on this machine."""
    instance_id: str
    group_id: str
    role: str                   # MASTER | CORE | TASK
    market: str                 # ON_DEMAND | SPOT
    instance_type: str
    cores: int
    memory_mb: int
    folder: Path
    port: int = 0
    webui_port: int = 0
    proc: subprocess.Popen | None = None
    state: str = "PROVISIONING"  # EMR instance states: PROVISIONING, BOOTSTRAPPING, RUNNING, TERMINATED
    reason_code: str | None = None
    reason: str | None = None
    created: datetime = field(default_factory=now)
    ready: datetime | None = None
    ended: datetime | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def end(self, code: str, message: str) -> None:
        if self.state != "TERMINATED":
            self.state, self.reason_code, self.reason, self.ended = "TERMINATED", code, message, now()

    def seconds(self, until: datetime | None = None) -> float:
        """Seconds this instance has been billed for so far (from request to end)."""
        end = self.ended or until or now()
        return max(0.0, (end - self.created).total_seconds())


class SparkCluster:
    """The processes of one EMR cluster."""

    def __init__(self, cluster_id: str, folder: Path, processes, java_home: str):
        self.cluster_id = cluster_id
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.processes = processes
        self.env = spark_env(java_home)
        self.master: Node | None = None
        self.workers: list[Node] = []
        self.lock = threading.RLock()

    # -- addresses ------------------------------------------------------------
    @property
    def master_url(self) -> str:
        return f"spark://127.0.0.1:{self.master.port}"

    def master_json(self, timeout: float = 2.0) -> dict | None:
        """The master's status page as JSON (workers, apps), or None if it does not answer."""
        if not self.master or not self.master.webui_port:
            return None
        try:
            url = f"http://127.0.0.1:{self.master.webui_port}/json/"
            with urllib.request.urlopen(url, timeout=timeout) as resp:
                return json.loads(resp.read())
        except (OSError, ValueError):
            return None

    def worker_status(self) -> dict[int, dict]:
        """Each registered worker's entry in the master's JSON, by worker port (its label).

        A port seen twice (a worker that re-registered) keeps its latest entry.
        """
        status = self.master_json() or {}
        return {w["port"]: w for w in status.get("workers", [])}

    # -- start ------------------------------------------------------------------
    def _spawn(self, node: Node, args: list[str]) -> None:
        node.folder.mkdir(parents=True, exist_ok=True)
        log = open(node.folder / "daemon.log", "ab")
        cmd = [str(Path(self.env["SPARK_HOME"]) / "bin" / "spark-class"), *args]
        node.proc = self.processes.popen(cmd, env=self.env, cwd=str(node.folder),
                                         stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        node.state = "BOOTSTRAPPING"

    def start_master(self, node: Node) -> None:
        node.port, node.webui_port = free_port(), free_port()
        self.master = node
        self._spawn(node, ["org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
                           "--port", str(node.port), "--webui-port", str(node.webui_port)])

    def start_worker(self, node: Node) -> None:
        node.port, node.webui_port = free_port(), free_port()
        work_dir = node.folder / "work"
        local_dir = node.folder / "local"
        work_dir.mkdir(parents=True, exist_ok=True)
        local_dir.mkdir(parents=True, exist_ok=True)
        with self.lock:
            self.workers.append(node)
        env_args = ["org.apache.spark.deploy.worker.Worker", self.master_url,
                    "--cores", str(node.cores), "--memory", f"{node.memory_mb}m",
                    "--host", "127.0.0.1", "--port", str(node.port),
                    "--webui-port", str(node.webui_port), "--work-dir", str(work_dir)]
        # Shuffle files and spilled blocks go to the node's own disk.
        saved = self.env.get("SPARK_LOCAL_DIRS")
        self.env["SPARK_LOCAL_DIRS"] = str(local_dir)
        try:
            self._spawn(node, env_args)
        finally:
            if saved is None:
                self.env.pop("SPARK_LOCAL_DIRS", None)
            else:
                self.env["SPARK_LOCAL_DIRS"] = saved

    # -- watch ----------------------------------------------------------------
    def refresh(self) -> dict | None:
        """Update node states from what really runs: processes and the master's JSON."""
        status = self.master_json()
        if self.master and self.master.state != "TERMINATED":
            if self.master.proc and self.master.proc.poll() is not None:
                self.master.end("INSTANCE_FAILURE", "The master node's process ended.")
            elif status and status.get("status") == "ALIVE" and self.master.state != "RUNNING":
                self.master.state, self.master.ready = "RUNNING", now()
        by_port = {w["port"]: w for w in (status or {}).get("workers", [])}
        with self.lock:
            workers = list(self.workers)
        for node in workers:
            if node.state == "TERMINATED":
                continue
            if node.proc and node.proc.poll() is not None:
                node.end("INSTANCE_FAILURE", "Instance was lost: its process ended.")
                continue
            entry = by_port.get(node.port)
            if entry and entry.get("state") == "ALIVE" and node.state != "RUNNING":
                node.state, node.ready = "RUNNING", now()
        return status

    def wait(self, predicate, timeout: float, poll: float = 0.25) -> bool:
        """Refresh until ``predicate()`` holds or ``timeout`` seconds pass (other processes can only be polled)."""
        def refreshed() -> bool:
            self.refresh()
            return predicate()
        return wait_until(refreshed, timeout, poll=poll)

    # -- losing and removing nodes ---------------------------------------------------
    def kill(self, node: Node, code: str, message: str) -> None:
        """SIGKILL a node's process group (the worker JVM and its executors), as a lost instance."""
        if node.proc is not None:
            self.processes.kill(node.proc)
        node.end(code, message)

    def decommission(self, node: Node, message: str) -> None:
        """End a node gracefully (SIGTERM: the worker stops its executors first)."""
        if node.proc is not None and node.proc.poll() is None:
            try:
                os.killpg(node.proc.pid, signal.SIGTERM)
                node.proc.wait(timeout=10)
            except (ProcessLookupError, PermissionError):
                pass
            except subprocess.TimeoutExpired:
                pass
            self.processes.kill(node.proc)
        node.end("CLUSTER_TERMINATED" if "terminat" in message.lower() else "INTERNAL_ERROR", message)

    def stop(self, message: str = "Cluster was terminated.") -> None:
        """End every process of the cluster: workers first, then the master."""
        with self.lock:
            nodes = [n for n in self.workers if n.proc is not None]
        for node in nodes:
            if node.proc.poll() is None:
                try:
                    os.killpg(node.proc.pid, signal.SIGTERM)
                except (ProcessLookupError, PermissionError):
                    pass
        for node in nodes:
            try:
                node.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
            self.processes.kill(node.proc)
            node.end("CLUSTER_TERMINATED", message)
        if self.master and self.master.proc is not None:
            self.processes.kill(self.master.proc)
            self.master.end("CLUSTER_TERMINATED", message)

    def pids(self) -> list[int]:
        nodes = ([self.master] if self.master else []) + list(self.workers)
        return [n.pid for n in nodes if n.proc is not None and n.proc.poll() is None]
