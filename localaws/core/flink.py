"""A real Apache Flink session cluster on 127.0.0.1: the engine behind Managed Service for Apache Flink.

Used by ``localaws/flink/`` (see ``docs/flink_measurements.md`` for what it costs). On AWS, a
Managed Service for Apache Flink application runs on a Flink cluster the
service owns: a JobManager that schedules and checkpoints, TaskManagers
that run the tasks, and (in Studio notebooks) Flink SQL. Locally the same
three Flink processes run from the jars of set ``flink`` of ``jars.lock``
(``make`` installs them; no Flink binary tarball is needed):

- the **JobManager**, ``StandaloneSessionClusterEntrypoint``: REST API and
  web UI, scheduling, the checkpoint coordinator;
- one **TaskManager**, ``TaskManagerRunner``: task slots; it registers with
  the JobManager over Flink's RPC;
- the **SQL Gateway**, ``SqlGateway``: Flink SQL over a REST API; it plans
  each statement and submits the job to the JobManager.

Each is a JVM of its own, started by PID and ended by PID, its heap, direct
memory and metaspace bounded by :data:`MEMORY_MB` (Flink's own shell scripts
compute the same JVM options from ``config.yaml``; here they are written out,
and the same figures go into ``config.yaml`` so that Flink's memory model and
the JVM agree). Every port binds 127.0.0.1: the fixed ones (JobManager RPC,
REST, SQL Gateway) are free ports picked at start, the others are ephemeral.

Use::

    with FlinkCluster(workdir) as cluster:          # JobManager + TaskManager
        gateway = cluster.start_gateway()
        with gateway.session() as sql:
            rows = sql.query("SELECT 1 + 1")            # [[2]]

:meth:`FlinkCluster.kill_taskmanager` and :meth:`FlinkCluster.start_taskmanager`
kill -9 and restart the TaskManager, so a course can show a job recovering
from its last checkpoint (``state.checkpoints.dir``, a local folder; Flink 2
renamed the key ``execution.checkpointing.dir``). :meth:`FlinkCluster.savepoint`
and :meth:`FlinkCluster.stop_job` take savepoints (``state.savepoints.dir``):
what Managed Service for Apache Flink calls application *snapshots*.

**S3.** A Flink job on AWS reads and writes ``s3://`` paths (a reference
table in S3, a filesystem sink) through Flink's S3 plugin, which wraps
Hadoop's S3A connector. That plugin (``flink-s3-fs-hadoop``) is not served by
the course's Maven registry, so the ``flink`` set carries the pieces it is
made of instead: ``flink-hadoop-fs`` (Flink's bridge to any Hadoop file
system), Hadoop 3.5.0's shaded client and ``hadoop-aws`` (S3A).
:func:`s3_settings` maps ``s3://``, ``s3a://`` and ``s3n://`` onto S3A at the
stack's endpoint (``fs.allowed-fallback-filesystems`` lets Flink use Hadoop
for schemes it would otherwise want its plugin for), so a source table with
``'path' = 's3://bucket/prefix/'`` in a learner's SQL works unchanged. A
filesystem *sink* to ``s3://`` does not: Flink's streaming file sink needs the
plugin's S3 "recoverable writer" (multipart uploads committed on checkpoint),
and plain Hadoop offers one for HDFS only ("Recoverable writers on Hadoop are
only supported for HDFS"). Write to a Kinesis stream instead and let a
Firehose delivery stream carry it to S3, a common shape on AWS too.

Standard library only.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from . import java, jvm, limits, s3
from .waiting import wait_until

#: The Flink release. Managed Service for Apache Flink still runs 1.19 (and
#: 1.20 and 2.2); 1.19 is the newest line for which this course's Maven
#: registry serves AWS's own Kinesis connector (``flink-connector-kinesis``
#: 4.3.0-1.19, SQL ``'connector' = 'kinesis'``), so a learner's SQL reads and
#: writes the local Kinesis streams exactly as it would on AWS. 1.19.1, not
#: 1.19.3: ``flink-sql-gateway`` is only served in 1.19.1.
FLINK_VERSION = "1.19.1"

#: The RuntimeEnvironment value Managed Service for Apache Flink gives this version.
RUNTIME_ENVIRONMENT = "FLINK-1_19"

#: Memory of each process, in MiB: the one policy lives in ``limits.py``.
MEMORY_MB = limits.FLINK_MEMORY_MB

#: JVM overhead Flink reserves per process (thread stacks, code cache, GC):
#: only counted in Flink's process size, not a JVM flag.
JVM_OVERHEAD_MB = 128

#: Options every Flink JVM gets: serial GC (no GC threads competing for two
#: cores), the module openings Flink needs on Java 17 (those of the
#: ``env.java.opts.all`` line of the distribution's config.yaml), and JSON
#: instead of CBOR for Kinesis: the AWS SDKs inside the Kinesis connector
#: speak CBOR to Kinesis by default, which the local endpoint does not parse.
#: ``aws.cborEnabled`` is the SDK v2 switch (the connector's sink); the SDK v1
#: switch (its source) is the environment variable in :data:`JVM_ENVIRONMENT`.
JVM_OPTIONS = ["-XX:+UseSerialGC", "-Daws.cborEnabled=false"] + [
    f"--add-exports={name}=ALL-UNNAMED" for name in (
        "java.base/sun.net.util", "java.rmi/sun.rmi.registry",
        "jdk.compiler/com.sun.tools.javac.api", "jdk.compiler/com.sun.tools.javac.file",
        "jdk.compiler/com.sun.tools.javac.parser", "jdk.compiler/com.sun.tools.javac.tree",
        "jdk.compiler/com.sun.tools.javac.util", "java.security.jgss/sun.security.krb5")
] + [
    f"--add-opens=java.base/{name}=ALL-UNNAMED" for name in (
        "java.lang", "java.net", "java.io", "java.nio", "sun.nio.ch", "java.lang.reflect",
        "java.text", "java.time", "java.util", "java.util.concurrent",
        "java.util.concurrent.atomic", "java.util.concurrent.locks")
]

#: Environment of every Flink JVM (see :data:`JVM_OPTIONS`).
JVM_ENVIRONMENT = {"AWS_CBOR_DISABLE": "true"}

MAIN_CLASS = {
    "jobmanager": "org.apache.flink.runtime.entrypoint.StandaloneSessionClusterEntrypoint",
    "taskmanager": "org.apache.flink.runtime.taskexecutor.TaskManagerRunner",
    "sql-gateway": "org.apache.flink.table.gateway.SqlGateway",
}

START_TIMEOUT = 120   # seconds for a process to answer (JVM start + class loading on a busy machine)

LOG4J = """\
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = MainAppender
appender.main.name = MainAppender
appender.main.type = File
appender.main.append = true
appender.main.fileName = ${sys:log.file}
appender.main.layout.type = PatternLayout
appender.main.layout.pattern = %d{HH:mm:ss,SSS} %-5p %-40c{1.} - %m%n
logger.pekko.name = org.apache.pekko
logger.pekko.level = WARN
logger.kafka.name = org.apache.kafka
logger.kafka.level = WARN
logger.zookeeper.name = org.apache.zookeeper
logger.zookeeper.level = WARN
"""


class FlinkError(RuntimeError):
    """A Flink process did not start, or a REST call or SQL statement failed."""


#: How often a process is started again on new ports when one it was given was taken.
PORT_ATTEMPTS = 3
#: What a Flink process logs when a port it was given is taken.
PORT_TAKEN = ("Address already in use", "BindException", "Could not start rest endpoint on any port")


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def classpath(jar_set: str = "flink") -> str:
    """The installed jars of ``jar_set``, joined into one classpath."""
    return os.pathsep.join(str(path) for path in jvm.jars(jar_set))


def s3_settings(endpoint_url: str, access_key: str = "flink", secret_key: str = "localaws",
                region: str = "us-east-1") -> dict[str, str]:
    """``config.yaml`` settings for ``s3://`` paths on ``endpoint_url`` (see the module docstring).

    Flink hands every ``flink.hadoop.X`` setting to Hadoop as ``X``; the
    endpoint meters the bytes each access key reads, so Flink signs as its own key.
    """
    hadoop = s3.hadoop_s3a_settings(endpoint_url, access_key, secret_key, region)
    return {"fs.allowed-fallback-filesystems": "s3;s3a;s3n",
            **{f"flink.hadoop.{key}": value for key, value in hadoop.items()}}


def jvm_memory_options(kind: str) -> list[str]:
    """The explicit -Xmx / -XX:MaxDirectMemorySize / -XX:MaxMetaspaceSize of ``kind``."""
    mem = MEMORY_MB[kind]
    if kind == "taskmanager":
        heap = mem["framework_heap"] + mem["task_heap"]
        direct = mem["framework_off_heap"] + mem["network"]
    else:
        heap, direct = mem["heap"], mem["direct"]
    return [f"-Xmx{heap}m", f"-Xms{min(heap, 64)}m", f"-XX:MaxDirectMemorySize={direct}m",
            f"-XX:MaxMetaspaceSize={mem['metaspace']}m"]


def _yaml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return json.dumps(str(value))          # a JSON string is a YAML string


def config_yaml(settings: dict[str, object]) -> str:
    """Flink's ``config.yaml`` with flat dotted keys. Flink 1.19 reads ``conf/config.yaml``
    as standard YAML (FLIP-366; the older ``flink-conf.yaml`` is its fallback)."""
    return "".join(f"{key}: {_yaml_value(value)}\n" for key, value in sorted(settings.items()))


def rest_call(url: str, body: dict | None = None, method: str | None = None,
              timeout: float = 30) -> dict:
    """One JSON request to a Flink REST API; FlinkError with Flink's own message on failure."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method or ("POST" if data else "GET"),
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            text = response.read().decode()
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")
        try:
            errors = json.loads(detail).get("errors", [detail])
        except ValueError:
            errors = [detail]
        raise FlinkError(f"{method or 'GET'} {url}: HTTP {exc.code}: "
                         + "\n".join(str(e) for e in errors)[-4000:]) from None
    return json.loads(text) if text else {}


def _answers(url: str) -> bool:
    try:
        rest_call(url, timeout=5)
        return True
    except (OSError, FlinkError, ValueError):
        return False


@dataclass
class FlinkCluster:
    """A Flink session cluster (JobManager + one TaskManager, separate JVMs) on 127.0.0.1.

    ``workdir`` holds ``conf/config.yaml``, ``log/`` (one ``.log`` and one
    ``.out`` per process) and, unless given elsewhere, ``checkpoints/``.
    Every job checkpoints every ``checkpoint_interval`` (Managed Service for
    Apache Flink's default is 60 s; a local demo wants to see several).
    ``settings`` are added to (or override) the generated ``config.yaml``.
    """
    workdir: Path
    slots: int = 2
    checkpoint_dir: Path | None = None
    savepoint_dir: Path | None = None
    checkpoint_interval: str = "5s"
    settings: dict[str, object] = field(default_factory=dict)
    jar_set: str = "flink"
    tracker: object | None = None
    processes: dict[str, subprocess.Popen] = field(default_factory=dict, init=False)
    rpc_port: int = field(default=0, init=False)
    rest_port: int = field(default=0, init=False)
    gateway_port: int = field(default=0, init=False)
    _tm_starts: int = field(default=0, init=False)

    def __post_init__(self):
        self.workdir = Path(self.workdir)
        self.checkpoint_dir = Path(self.checkpoint_dir or self.workdir / "checkpoints")
        self.savepoint_dir = Path(self.savepoint_dir or self.workdir / "savepoints")

    # ----------------------------------------------------------------- configuration

    @property
    def conf_dir(self) -> Path:
        return self.workdir / "conf"

    @property
    def log_dir(self) -> Path:
        return self.workdir / "log"

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self.rest_port}"

    def config(self) -> dict[str, object]:
        """Every setting of the generated ``config.yaml``."""
        tm, jm, gw = MEMORY_MB["taskmanager"], MEMORY_MB["jobmanager"], MEMORY_MB["sql-gateway"]
        settings = {
            # Where everything listens: 127.0.0.1 only.
            "jobmanager.rpc.address": "127.0.0.1", "jobmanager.rpc.port": self.rpc_port,
            "jobmanager.bind-host": "127.0.0.1",
            "taskmanager.host": "127.0.0.1", "taskmanager.bind-host": "127.0.0.1",
            "taskmanager.rpc.port": "0", "taskmanager.data.port": 0,
            "rest.address": "127.0.0.1", "rest.bind-address": "127.0.0.1",
            "rest.port": self.rest_port,
            "blob.server.port": "0",
            "sql-gateway.endpoint.rest.address": "127.0.0.1",
            "sql-gateway.endpoint.rest.bind-address": "127.0.0.1",
            "sql-gateway.endpoint.rest.port": self.gateway_port,
            # Memory: every component explicit (see MEMORY_MB).
            "jobmanager.memory.heap.size": f"{jm['heap']}m",
            "jobmanager.memory.off-heap.size": f"{jm['direct']}m",
            "jobmanager.memory.jvm-metaspace.size": f"{jm['metaspace']}m",
            "jobmanager.memory.jvm-overhead.min": f"{JVM_OVERHEAD_MB}m",
            "jobmanager.memory.jvm-overhead.max": f"{JVM_OVERHEAD_MB}m",
            "taskmanager.memory.framework.heap.size": f"{tm['framework_heap']}m",
            "taskmanager.memory.task.heap.size": f"{tm['task_heap']}m",
            "taskmanager.memory.framework.off-heap.size": f"{tm['framework_off_heap']}m",
            "taskmanager.memory.task.off-heap.size": "0m",
            "taskmanager.memory.network.min": f"{tm['network']}m",
            "taskmanager.memory.network.max": f"{tm['network']}m",
            "taskmanager.memory.managed.size": f"{tm['managed']}m",
            "taskmanager.memory.jvm-metaspace.size": f"{tm['metaspace']}m",
            "taskmanager.memory.jvm-overhead.min": f"{JVM_OVERHEAD_MB}m",
            "taskmanager.memory.jvm-overhead.max": f"{JVM_OVERHEAD_MB}m",
            "taskmanager.numberOfTaskSlots": self.slots,
            "taskmanager.cpu.cores": 2,
            "parallelism.default": 1,
            # Fault tolerance: checkpoints in a local folder; a lost TaskManager is
            # noticed within seconds (AWS's defaults are tuned for real networks).
            "state.backend.type": "hashmap",
            "state.checkpoints.dir": self.checkpoint_dir.resolve().as_uri(),
            "state.savepoints.dir": self.savepoint_dir.resolve().as_uri(),
            "execution.checkpointing.interval": self.checkpoint_interval,
            "execution.checkpointing.externalized-checkpoint-retention": "RETAIN_ON_CANCELLATION",
            "restart-strategy.type": "fixed-delay",
            "restart-strategy.fixed-delay.attempts": 20,
            "restart-strategy.fixed-delay.delay": "2s",
            "heartbeat.interval": 2000, "heartbeat.timeout": 10000,
            "jobmanager.execution.failover-strategy": "region",
            # The SQL Gateway submits to this cluster.
            "execution.target": "remote",
            "io.tmp.dirs": str((self.workdir / "tmp").resolve()),
            "web.tmpdir": str((self.workdir / "web").resolve()),
        }
        settings.update(self.settings)
        return settings

    def write_config(self) -> Path:
        """Pick free ports (first call) and write ``conf/config.yaml`` and log4j's file."""
        if not self.rpc_port:
            self.rpc_port, self.rest_port, self.gateway_port = free_port(), free_port(), free_port()
        for folder in (self.conf_dir, self.log_dir, self.workdir / "tmp", self.workdir / "web"):
            folder.mkdir(parents=True, exist_ok=True)
        (self.conf_dir / "log4j.properties").write_text(LOG4J)
        path = self.conf_dir / "config.yaml"
        path.write_text(config_yaml(self.config()))
        return path

    # ----------------------------------------------------------------- processes

    def command(self, kind: str) -> list[str]:
        """The ``java`` command line of process ``kind`` (``jobmanager``, ``taskmanager``, ``sql-gateway``)."""
        home = java.require_java_home()
        log = self.log_dir / f"{kind}.log"
        args = ([str(Path(home, "bin", "java"))] + jvm_memory_options(kind) + JVM_OPTIONS + [
            f"-Dlog.file={log}",
            f"-Dlog4j.configurationFile={(self.conf_dir / 'log4j.properties').as_uri()}",
            "-classpath", classpath(self.jar_set), MAIN_CLASS[kind]])
        if kind == "sql-gateway":
            return args        # reads FLINK_CONF_DIR
        return args + ["--configDir", str(self.conf_dir)]

    def start_process(self, kind: str, extra: list[str] = ()) -> subprocess.Popen:
        """Start one process (``jobmanager``, ``taskmanager``, ``sql-gateway``) without
        waiting for it; its output goes to ``log/<kind>.out``, its log to ``log/<kind>.log``."""
        if kind in self.processes and self.processes[kind].poll() is None:
            raise FlinkError(f"the {kind} is already running (pid {self.processes[kind].pid})")
        env = dict(os.environ, FLINK_CONF_DIR=str(self.conf_dir), JAVA_HOME=java.require_java_home(),
                   **JVM_ENVIRONMENT)
        for name in ("FLINK_HOME", "FLINK_LIB_DIR", "FLINK_PLUGINS_DIR", "HADOOP_CLASSPATH"):
            env.pop(name, None)
        out = open(self.log_dir / f"{kind}.out", "ab")
        try:
            popen = self.tracker.popen if self.tracker is not None else subprocess.Popen
            proc = popen(self.command(kind) + list(extra), cwd=self.workdir, env=env,
                         stdout=out, stderr=subprocess.STDOUT,
                         stdin=subprocess.DEVNULL, start_new_session=True)
        finally:
            out.close()
        self.processes[kind] = proc
        return proc

    def _wait(self, kind: str, ready, what: str, timeout: float) -> None:
        proc = self.processes[kind]
        if not wait_until(lambda: proc.poll() is not None or ready(), timeout, poll=0.25) \
                or proc.poll() is not None:
            tail = self.log_tail(kind)
            raise FlinkError(f"the Flink {kind} (pid {proc.pid}) did not {what} within "
                             f"{timeout:.0f} s (exit code {proc.poll()}). Its log ends:\n{tail}")

    def log_tail(self, kind: str, lines: int = 40) -> str:
        text = ""
        for suffix in (".out", ".log"):
            path = self.log_dir / f"{kind}{suffix}"
            if path.exists():
                text += "".join(path.read_text(errors="replace").splitlines(True)[-lines:])
        return text

    def start(self, timeout: float = START_TIMEOUT) -> "FlinkCluster":
        """Write the config, start the JobManager, then the TaskManager; return when
        the REST API answers ``/overview`` with the TaskManager registered.

        The ports were free when :func:`free_port` picked them, but any process may
        take one before the JobManager binds it (outgoing connections draw from the
        same ephemeral range): then new ports are picked and the JobManager started
        again, up to :data:`PORT_ATTEMPTS` times."""
        try:
            for attempt in range(1, PORT_ATTEMPTS + 1):
                self.write_config()
                self.start_process("jobmanager")
                try:
                    self._wait("jobmanager", lambda: _answers(f"{self.rest_url}/overview"),
                               f"answer {self.rest_url}/overview", timeout)
                    break
                except FlinkError:
                    if attempt == PORT_ATTEMPTS or not self._port_taken("jobmanager"):
                        raise
                    self._kill(self.processes["jobmanager"], signal.SIGKILL)
                    self.rpc_port = 0                      # write_config picks new ports
            self.start_taskmanager(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _port_taken(self, kind: str) -> bool:
        """Did process ``kind`` fail because a port it was given was taken?"""
        return any(sign in self.log_tail(kind, 200) for sign in PORT_TAKEN)

    def taskmanagers(self) -> int:
        """How many TaskManagers the JobManager has registered."""
        return int(self.rest("/overview").get("taskmanagers", 0))

    def start_taskmanager(self, timeout: float = START_TIMEOUT) -> subprocess.Popen:
        """Start the TaskManager (a new one after :meth:`kill_taskmanager`); return
        when the JobManager lists it. Each start gets its own resource id."""
        self._tm_starts += 1
        resource_id = f"localaws-taskmanager-{self._tm_starts}"
        proc = self.start_process("taskmanager", ["-D", f"taskmanager.resource-id={resource_id}"])
        self._wait("taskmanager", lambda: resource_id in self._taskmanager_ids(),
                   "register with the JobManager", timeout)
        return proc

    def _taskmanager_ids(self) -> list[str]:
        try:
            return [tm["id"] for tm in self.rest("/taskmanagers")["taskmanagers"]]
        except (OSError, FlinkError, ValueError, KeyError):
            return []

    def kill_taskmanager(self) -> int:
        """kill -9 the TaskManager (a lost node); return its PID."""
        proc = self.processes["taskmanager"]
        self._kill(proc, signal.SIGKILL)
        return proc.pid

    def start_gateway(self, timeout: float = START_TIMEOUT) -> "SqlGateway":
        """Start the SQL Gateway against this cluster; return a client of its REST API
        (on a taken port, again on a new one, as :meth:`start` does)."""
        for attempt in range(1, PORT_ATTEMPTS + 1):
            proc = self.start_process("sql-gateway")
            gateway = SqlGateway(f"http://127.0.0.1:{self.gateway_port}")
            try:
                self._wait("sql-gateway", lambda: _answers(f"{gateway.url}/v1/info"),
                           f"answer {gateway.url}/v1/info", timeout)
                return gateway
            except FlinkError:
                self._kill(proc, signal.SIGKILL)
                if attempt == PORT_ATTEMPTS or not self._port_taken("sql-gateway"):
                    raise
                self.gateway_port = free_port()
                self.write_config()                        # the gateway reads its port from it
        raise AssertionError("unreachable")

    def rest(self, path: str, body: dict | None = None, method: str | None = None) -> dict:
        """A call to the JobManager's REST API (``/overview``, ``/jobs/<id>``, ...)."""
        return rest_call(self.rest_url + path, body, method)

    def pids(self) -> dict[str, int]:
        """PID of each process still running, by kind."""
        return {kind: proc.pid for kind, proc in self.processes.items() if proc.poll() is None}

    @staticmethod
    def _kill(proc: subprocess.Popen, sig: int, wait: float = 10) -> None:
        FlinkCluster._signal(proc, sig)
        try:
            proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            if sig != signal.SIGKILL:
                FlinkCluster._kill(proc, signal.SIGKILL)

    @staticmethod
    def _signal(proc: subprocess.Popen, sig: int) -> None:
        try:
            os.killpg(proc.pid, sig)      # its own process group: the JVM and anything it started
        except (ProcessLookupError, PermissionError):
            pass

    def stop(self, grace: float = 10) -> None:
        """End every process started here, by PID: SIGTERM to all three at once (Flink's
        shutdown hooks run), then SIGKILL to any still there after ``grace`` seconds.

        All at once, so that stopping takes at most ``grace`` seconds, not three times
        that: a Jupyter kernel being shut down does not wait long for its exit handlers."""
        procs = [p for p in (self.processes.get(k) for k in ("sql-gateway", "taskmanager", "jobmanager"))
                 if p is not None]
        for proc in procs:
            if proc.poll() is None:
                self._signal(proc, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for proc in procs:
            if proc.poll() is None:
                self._kill(proc, signal.SIGTERM, max(0.0, deadline - time.monotonic()))
            if self.tracker is not None:
                self.tracker.forget(proc)

    # ----------------------------------------------------------------- jobs and savepoints

    def job_state(self, job_id: str) -> str:
        """The job's state (``INITIALIZING``, ``RUNNING``, ``RESTARTING``, ``FINISHED``,
        ``CANCELED``, ``FAILED``...), or ``RUNNING`` only once every task runs."""
        job = self.rest(f"/jobs/{job_id}")
        state = job["state"]
        # A bounded source (a file read once) FINISHES while the rest of the job runs on.
        if state == "RUNNING" and any(v.get("status") not in ("RUNNING", "FINISHED")
                                      for v in job.get("vertices", [])):
            return "INITIALIZING"
        return state

    def cancel_job(self, job_id: str) -> None:
        """Cancel a job without a savepoint (what a forced stop does)."""
        self.rest(f"/jobs/{job_id}", method="PATCH")

    def _savepoint_result(self, job_id: str, trigger: str, timeout: float) -> str:
        answer = {}

        def done() -> bool:
            answer.update(self.rest(f"/jobs/{job_id}/savepoints/{trigger}"))
            return answer.get("status", {}).get("id") == "COMPLETED"

        if not wait_until(done, timeout, poll=0.25):
            raise FlinkError(f"the savepoint of job {job_id} did not complete within {timeout:.0f} s")
        operation = answer.get("operation") or {}
        if "failure-cause" in operation:
            cause = operation["failure-cause"]
            raise FlinkError(f"the savepoint of job {job_id} failed: "
                             f"{cause.get('stack-trace', cause)}"[:4000])
        return operation["location"]

    def savepoint(self, job_id: str, directory: Path, timeout: float = 120) -> str:
        """Take a savepoint of a running job into ``directory``; return its path (the job runs on)."""
        trigger = self.rest(f"/jobs/{job_id}/savepoints",
                            {"target-directory": Path(directory).resolve().as_uri(),
                             "cancel-job": False})["request-id"]
        return self._savepoint_result(job_id, trigger, timeout)

    def stop_job(self, job_id: str, directory: Path, timeout: float = 120) -> str:
        """Stop a job with a savepoint ("stop-with-savepoint": sources stop, the savepoint
        is the job's last state, sinks flush); return the savepoint's path."""
        trigger = self.rest(f"/jobs/{job_id}/stop",
                            {"targetDirectory": Path(directory).resolve().as_uri(),
                             "drain": False})["request-id"]
        return self._savepoint_result(job_id, trigger, timeout)

    def __enter__(self) -> "FlinkCluster":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class SqlGateway:
    """A client of the SQL Gateway's REST API (``/v1``): sessions, statements, results."""

    def __init__(self, url: str):
        self.url = url.rstrip("/")

    def session(self, properties: dict[str, str] | None = None) -> "SqlSession":
        """Open a session; ``properties`` are session settings (``execution.runtime-mode`` ...)."""
        answer = rest_call(f"{self.url}/v1/sessions", {"properties": properties or {}})
        return SqlSession(self, answer["sessionHandle"])


@dataclass
class SqlResult:
    """What one statement gave: its columns, its rows (insert-only), and its job, if it ran one."""
    columns: list[str]
    rows: list[list]
    job_id: str | None
    kinds: list[str]


class SqlSession:
    """One SQL Gateway session: statements run in order and share their tables."""

    def __init__(self, gateway: SqlGateway, handle: str):
        self.gateway, self.handle = gateway, handle
        self.base = f"{gateway.url}/v1/sessions/{handle}"

    def submit(self, statement: str) -> str:
        """Send one statement; return its operation handle (it runs in the gateway)."""
        return rest_call(f"{self.base}/statements", {"statement": statement})["operationHandle"]

    def fetch(self, operation: str, max_rows: int | None = None,
              timeout: float = 120) -> SqlResult:
        """Page through an operation's results until the end (or ``max_rows`` rows,
        for an unbounded query: the operation is then closed, which cancels its job)."""
        uri = f"/v1/sessions/{self.handle}/operations/{operation}/result/0"
        columns, rows, kinds, job_id = [], [], [], None
        deadline = time.monotonic() + timeout
        while uri:
            page = rest_call(self.gateway.url + uri, timeout=timeout)
            job_id = page.get("jobID") or job_id
            kind = page.get("resultType")
            results = page.get("results") or {}
            columns = [c["name"] for c in results.get("columns", [])] or columns
            for row in results.get("data", []):
                rows.append(row["fields"])
                kinds.append(row.get("kind", "INSERT"))
            if kind == "EOS" or (max_rows is not None and len(rows) >= max_rows):
                break
            if kind == "NOT_READY" or not results.get("data"):
                if time.monotonic() > deadline:
                    raise FlinkError(f"no result of operation {operation} within {timeout:.0f} s")
                time.sleep(0.2)
            uri = page.get("nextResultUri")
        if max_rows is not None:
            self.close_operation(operation)
        return SqlResult(columns, rows, job_id, kinds)

    def status(self, operation: str) -> str:
        return rest_call(f"{self.base}/operations/{operation}/status")["status"]

    def execute(self, statement: str, max_rows: int | None = None, timeout: float = 120) -> SqlResult:
        """Run one statement and return its result (DDL: ``OK``; INSERT: the job id)."""
        return self.fetch(self.submit(statement), max_rows, timeout)

    def query(self, statement: str, **kwargs) -> list[list]:
        """The rows of a bounded query."""
        return self.execute(statement, **kwargs).rows

    def close_operation(self, operation: str) -> None:
        try:
            rest_call(f"{self.base}/operations/{operation}/close", method="DELETE")
        except FlinkError:
            pass

    def close(self) -> None:
        try:
            rest_call(self.base, method="DELETE")
        except (FlinkError, OSError):
            pass

    def __enter__(self) -> "SqlSession":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
