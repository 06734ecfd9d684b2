"""A real Apache Kafka cluster on 127.0.0.1: the engine behind Amazon MSK.

Used by ``localaws/kafka/``. An MSK cluster is Apache Kafka run by AWS:
broker nodes you choose (their number, their instance type, spread over two
or three Availability Zones) and, since Kafka 3.7 on MSK, a **KRaft**
controller quorum AWS runs for you and does not bill (ZooKeeper before).
Locally the same processes run from the jars of set ``kafka`` of
``jars.lock`` (``make`` installs them; Maven Central has Kafka's jars, not
its binary tarball):

- one **controller** (``process.roles=controller``): the KRaft quorum of one,
  holding the cluster's metadata (topics, partitions, leaders, in-sync
  replicas). As on MSK, it is not one of "your" brokers: ListNodes does not
  show it and a learner never stops it;
- N **brokers** (``process.roles=broker``), each a JVM of its own, each with
  ``broker.rack`` set to the Availability Zone of its client subnet, so that
  Kafka places a partition's replicas in different zones (MSK-3).

Each process is started by PID and ended by PID, its heap, direct memory and
metaspace bounded (:data:`MEMORY_MB`); every listener binds 127.0.0.1 on a
free port. Storage is formatted once per node with ``kafka-storage format``
(``kafka.tools.StorageTool``) and the same cluster id, as KRaft requires.

Use::

    cluster = KafkaCluster(workdir, racks=["use1-az1", "use1-az2", "use1-az3"]).start()
    cluster.bootstrap_servers        # "127.0.0.1:40123,127.0.0.1:40125,..."
    cluster.kill(2)                  # SIGKILL broker 2: its partitions elect new leaders
    cluster.restart(2)               # same node id, same log dirs: it catches up
    cluster.stop()

Measured on the course machine (2 cores, Java 17; Kafka 4.1.1): controller +
3 brokers ready in 8.4 s (3.4 s of it formatting storage), 920 MiB RSS in all
(133 MiB controller, 262 MiB per broker), 10,000 ``acks=all`` records in
0.4 s, leaders moved off a killed broker in 9.7 s with Kafka's default
9-second broker session timeout (set shorter here, :data:`BROKER_DEFAULTS`).

Standard library only.
"""
from __future__ import annotations

import base64
import os
import signal
import socket
import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from . import java, jvm, limits
from .waiting import wait_until

#: The Kafka release the stack runs. MSK offers 3.6 to 4.x (4.0.x since
#: 2025-05-16; 4.1.x KRaft since); KRaft only from 4.0 on, as here.
KAFKA_VERSION = "4.1.1"

#: Memory of each process, in MiB: the one policy lives in ``limits.py``.
MEMORY_MB = limits.KAFKA_MEMORY_MB

#: The controller's node id (brokers are 1..N, as MSK numbers its broker nodes).
CONTROLLER_ID = 1000

#: Server properties every broker gets unless the cluster's configuration
#: says otherwise. Small thread pools for two cores; a lost broker noticed
#: in 3 s instead of 9; a consumer group formed at once (the 3 s initial
#: rebalance delay only helps big groups start together).
BROKER_DEFAULTS = {
    "num.network.threads": 2,
    "num.io.threads": 2,
    "background.threads": 2,
    "num.recovery.threads.per.data.dir": 1,
    "broker.heartbeat.interval.ms": 1000,
    "broker.session.timeout.ms": 3000,
    "group.initial.rebalance.delay.ms": 0,
    "auto.create.topics.enable": "false",     # MSK's default too
}

START_TIMEOUT = 120      # seconds for every broker to register (JVM start on a busy machine)

LOG4J = """\
status = warn
appender.file.type = File
appender.file.name = file
appender.file.fileName = ${sys:kafka.logs.dir}/server.log
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = %d{HH:mm:ss,SSS} %p %c{1} - %m%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = file
"""

#: The log line a KRaft node writes once it serves (brokers: registered and unfenced).
STARTED = "Kafka Server started"


class KafkaError(RuntimeError):
    """A broker process did not start or stop as asked (its log tail in the message)."""


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def new_cluster_id() -> str:
    """A KRaft cluster id: 16 random bytes, URL-safe base64 without padding (not starting with '-')."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def properties_text(settings: dict[str, object]) -> str:
    return "".join(f"{key}={value}\n" for key, value in settings.items())


@dataclass
class Node:
    """One Kafka process: the controller, or broker ``node_id`` in Availability Zone ``rack``."""
    node_id: int
    port: int
    folder: Path
    rack: str | None = None
    proc: subprocess.Popen | None = None

    @property
    def is_controller(self) -> bool:
        return self.node_id == CONTROLLER_ID

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        path = self.folder / "server.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


@dataclass
class KafkaCluster:
    """A KRaft controller and one broker per entry of ``racks``, on 127.0.0.1.

    ``settings`` are server properties for every broker (a cluster
    configuration's ``ServerProperties``), over :data:`BROKER_DEFAULTS`.
    """
    workdir: Path
    racks: list[str]
    settings: dict[str, object] = field(default_factory=dict)
    tracker: object | None = None
    cluster_id: str = field(default_factory=new_cluster_id)
    controller: Node | None = field(default=None, init=False)
    brokers: dict[int, Node] = field(default_factory=dict, init=False)

    def __post_init__(self):
        self.workdir = Path(self.workdir)
        self.controller = Node(CONTROLLER_ID, free_port(), self.workdir / "controller")
        for rack in self.racks:
            self._new_broker(rack)

    # ----------------------------------------------------------------- configuration

    @property
    def bootstrap_servers(self) -> str:
        """What GetBootstrapBrokers answers: every broker's host:port, comma-separated."""
        return ",".join(node.address for node in self.brokers.values())

    def _voters(self) -> str:
        return f"{CONTROLLER_ID}@{self.controller.address}"

    def node_properties(self, node: Node) -> dict[str, object]:
        """The ``server.properties`` of ``node``."""
        common = {"node.id": node.node_id, "controller.quorum.voters": self._voters(),
                  "controller.listener.names": "CONTROLLER", "log.dirs": str(node.folder / "data")}
        if node.is_controller:
            return {"process.roles": "controller", **common,
                    "listeners": f"CONTROLLER://{node.address}",
                    "listener.security.protocol.map": "CONTROLLER:PLAINTEXT",
                    # the controller fences a broker whose heartbeats stop for this long
                    "broker.session.timeout.ms": BROKER_DEFAULTS["broker.session.timeout.ms"],
                    # KRaft creates topics in the controller: default.replication.factor,
                    # num.partitions and min.insync.replicas are read there
                    **self.settings}
        replicas = min(3, len(self.brokers))
        return {"process.roles": "broker", **common,
                "listeners": f"PLAINTEXT://{node.address}",
                "advertised.listeners": f"PLAINTEXT://{node.address}",
                "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                "inter.broker.listener.name": "PLAINTEXT",
                "broker.rack": node.rack,
                # Kafka's internal topics, replicated like MSK's (3 where there are 3 brokers).
                "offsets.topic.replication.factor": replicas,
                "transaction.state.log.replication.factor": replicas,
                "transaction.state.log.min.isr": min(2, replicas),
                **BROKER_DEFAULTS, **self.settings}

    def _new_broker(self, rack: str) -> Node:
        node_id = max(self.brokers, default=0) + 1
        node = Node(node_id, free_port(), self.workdir / f"broker-{node_id}", rack)
        self.brokers[node_id] = node
        return node

    def _prepare(self, node: Node) -> None:
        """Write the node's properties and log4j file; format its storage the first time."""
        node.folder.mkdir(parents=True, exist_ok=True)
        (node.folder / "server.properties").write_text(properties_text(self.node_properties(node)))
        (node.folder / "log4j2.properties").write_text(LOG4J)
        if (node.folder / "data" / "meta.properties").exists():
            return
        done = subprocess.run(
            self._java("tool") + ["kafka.tools.StorageTool", "format", f"--cluster-id={self.cluster_id}",
                                  "--config", str(node.folder / "server.properties")],
            capture_output=True, text=True, timeout=120)
        if done.returncode:
            raise KafkaError(f"formatting the storage of node {node.node_id} failed: "
                             f"{(done.stderr or done.stdout).strip()[-800:]}")

    @staticmethod
    def _java(kind: str) -> list[str]:
        mem = MEMORY_MB[kind]
        return [str(Path(java.require_java_home(), "bin", "java")),
                f"-Xmx{mem['heap']}m", f"-Xms{min(mem['heap'], 64)}m",
                f"-XX:MaxDirectMemorySize={mem['direct']}m", f"-XX:MaxMetaspaceSize={mem['metaspace']}m",
                "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",      # quick start, no GC threads
                "-cp", os.pathsep.join(str(path) for path in jvm.jars("kafka"))]

    # ----------------------------------------------------------------- processes

    def _launch(self, node: Node) -> None:
        self._prepare(node)
        log = node.folder / "server.log"
        log.unlink(missing_ok=True)                  # a restart waits for a new "started" line
        kind = "controller" if node.is_controller else "broker"
        args = self._java(kind) + [f"-Dkafka.logs.dir={node.folder}",
                                   f"-Dlog4j2.configurationFile={node.folder / 'log4j2.properties'}",
                                   "kafka.Kafka", str(node.folder / "server.properties")]
        out = open(node.folder / "out.log", "ab")
        try:
            popen = self.tracker.popen if self.tracker is not None else subprocess.Popen
            node.proc = popen(args, cwd=node.folder, stdout=out, stderr=subprocess.STDOUT,
                              stdin=subprocess.DEVNULL, start_new_session=True)
        finally:
            out.close()

    def _wait_started(self, nodes: list[Node], timeout: float) -> None:
        def started(node: Node) -> bool:
            if not node.running():
                raise KafkaError(f"node {node.node_id} exited: {node.log_tail()}")
            log = node.folder / "server.log"
            return log.exists() and STARTED in log.read_text(errors="replace")
        if not wait_until(lambda: all(started(n) for n in nodes), timeout, poll=0.1):
            slow = [n for n in nodes if not started(n)]
            raise KafkaError(f"node {slow[0].node_id} did not start in {timeout:.0f} s: {slow[0].log_tail()}")

    def start(self, timeout: float = START_TIMEOUT) -> "KafkaCluster":
        """Format and start the controller and every broker; return once all serve."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        try:
            nodes = [self.controller, *self.brokers.values()]
            with ThreadPoolExecutor(len(nodes)) as pool:        # formatting is a JVM start each
                list(pool.map(self._prepare, nodes))
            for node in nodes:
                self._launch(node)
            self._wait_started([self.controller, *self.brokers.values()], timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def add_broker(self, rack: str, timeout: float = START_TIMEOUT) -> Node:
        """One more broker (UpdateBrokerCount): it joins with no partitions until some are
        created or reassigned, as on MSK."""
        node = self._new_broker(rack)
        self._launch(node)
        self._wait_started([node], timeout)
        return node

    def kill(self, node_id: int) -> int:
        """SIGKILL broker ``node_id`` (a crash: no controlled shutdown); returns its pid."""
        node = self.brokers[node_id]
        if not node.running():
            raise KafkaError(f"broker {node_id} is not running")
        pid = node.proc.pid
        self._end(node, signal.SIGKILL, 10)
        return pid

    def restart(self, node_id: int, timeout: float = START_TIMEOUT) -> None:
        """Start broker ``node_id`` again on its log dirs: it re-registers and its replicas
        catch up from the leaders until they are back in sync."""
        node = self.brokers[node_id]
        if node.running():
            raise KafkaError(f"broker {node_id} is already running")
        self._launch(node)
        self._wait_started([node], timeout)

    def _end(self, node: Node, sig: int, grace: float) -> None:
        proc = node.proc
        if proc is None:
            return
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, sig)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        if self.tracker is not None:
            self.tracker.forget(proc)
        node.proc = None

    def pids(self) -> dict[int, int]:
        """node id -> pid of every running process (the controller under :data:`CONTROLLER_ID`)."""
        return {n.node_id: n.proc.pid for n in (self.controller, *self.brokers.values()) if n.running()}

    def stop(self, grace: float = 5) -> None:
        """End every process: SIGTERM to all at once, SIGKILL after ``grace`` seconds.
        Brokers first (a broker without its controller would wait for it), then the controller."""
        brokers = [n for n in self.brokers.values() if n.running()]
        for node in brokers:
            try:
                os.killpg(node.proc.pid, signal.SIGTERM)
            except (ProcessLookupError, PermissionError):
                pass
        deadline = time.monotonic() + grace
        for node in brokers:
            self._end(node, signal.SIGTERM, max(0.0, deadline - time.monotonic()))
        self._end(self.controller, signal.SIGTERM, grace)
