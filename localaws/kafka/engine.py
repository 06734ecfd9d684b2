"""The real work behind the MSK API: Kafka clusters and cluster configurations.

A cluster's brokers start in a background thread (CreateCluster returns at
once, in state CREATING, as on AWS); DescribeCluster then reports what the
processes do: ACTIVE once every broker serves, FAILED with the reason if one
cannot start. A **configuration** is a named, versioned set of Kafka server
properties (``CreateConfiguration``); a cluster created with one starts its
brokers with those properties, so ``message.max.bytes`` or
``default.replication.factor`` really change what the brokers accept.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from localaws.core.kafka import KAFKA_VERSION, KafkaCluster, KafkaError
from . import errors

#: Server properties MSK lets a configuration set, with the kind of value each takes
#: (a subset of https://docs.aws.amazon.com/msk/latest/developerguide/msk-configuration-properties.html:
#: the ones this course uses; others are refused rather than silently ignored).
PROPERTIES = {
    "auto.create.topics.enable": bool, "default.replication.factor": int,
    "min.insync.replicas": int, "num.partitions": int, "message.max.bytes": int,
    "replica.fetch.max.bytes": int, "log.retention.ms": int, "log.retention.hours": int,
    "log.retention.bytes": int, "log.segment.bytes": int, "unclean.leader.election.enable": bool,
    "offsets.retention.minutes": int, "delete.topic.enable": bool,
    "group.initial.rebalance.delay.ms": int,
}


def parse_server_properties(text: str) -> dict[str, str]:
    """``key=value`` lines (``#`` comments allowed) -> dict; BadRequestException on a line MSK refuses."""
    settings = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = (part.strip() for part in line.partition("="))
        if not sep:
            raise errors.BadRequestException(f"Invalid server property on line {number}: '{line}'. "
                                              "Expected key=value.")
        kind = PROPERTIES.get(key)
        if kind is None:
            raise errors.BadRequestException(f"The server property '{key}' is not supported. "
                                              "See the list of supported properties in the Amazon MSK "
                                              "Developer Guide.")
        if kind is int and not value.lstrip("-").isdigit() or kind is bool and value not in ("true", "false"):
            raise errors.BadRequestException(f"Invalid value '{value}' for the server property '{key}'.")
        settings[key] = value
    return settings


@dataclass
class Revision:
    revision: int
    description: str
    server_properties: bytes
    created: datetime = field(default_factory=lambda: datetime.now(timezone.utc))


@dataclass
class Configuration:
    arn: str
    name: str
    kafka_versions: list[str]
    revisions: list[Revision] = field(default_factory=list)

    @property
    def latest(self) -> Revision:
        return self.revisions[-1]


@dataclass
class Operation:
    """A cluster operation (CREATE, UPDATE_BROKER_COUNT, DELETE) as ListClusterOperations shows it."""
    arn: str
    cluster_arn: str
    kind: str
    state: str = "PENDING"
    started: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    ended: datetime | None = None
    error: str | None = None

    def finish(self, error: str | None = None) -> None:
        self.state, self.error = ("UPDATE_FAILED", error) if error else ("UPDATE_COMPLETE", None)
        self.ended = datetime.now(timezone.utc)


@dataclass
class Running:
    """One MSK cluster's brokers and what the API reports of them."""
    name: str
    kafka: KafkaCluster
    subnets: list[str]
    instance_type: str
    state: str = "CREATING"
    reason: str | None = None
    added: dict[int, datetime] = field(default_factory=dict)


class KafkaEngine:
    """Every cluster of the stack: (arn) -> :class:`Running`; configurations by arn."""

    def __init__(self, work_dir: str | Path, processes):
        self.work_dir = Path(work_dir) / "kafka"
        self.processes = processes
        self.clusters: dict[str, Running] = {}
        self.configurations: dict[str, Configuration] = {}
        self.operations: dict[str, Operation] = {}
        self._lock = threading.RLock()

    # -- clusters -------------------------------------------------------------------
    def create(self, arn: str, name: str, racks: list[str], subnets: list[str], instance_type: str,
               settings: dict[str, str], operation: Operation) -> None:
        """Start the brokers in the background; the cluster is CREATING until they serve."""
        folder = self.work_dir / f"{name}-{arn.rsplit('/', 1)[-1][:8]}"
        running = Running(name, KafkaCluster(folder, racks, settings, tracker=self.processes), subnets,
                          instance_type)
        with self._lock:
            self.clusters[arn] = running
            self.operations[operation.arn] = operation

        def start():
            operation.state = "UPDATE_IN_PROGRESS"
            try:
                running.kafka.start()
            except KafkaError as exc:
                running.state, running.reason = "FAILED", str(exc)[:500]
                operation.finish(running.reason)
                return
            if running.state == "DELETING":          # DeleteCluster came while it was CREATING
                running.kafka.stop()
                operation.finish("the cluster was deleted while it was being created")
                return
            now = datetime.now(timezone.utc)
            running.added = {node_id: now for node_id in running.kafka.brokers}
            running.state = "ACTIVE"
            operation.finish()
        threading.Thread(target=start, name=f"msk-create-{name}", daemon=True).start()

    def get(self, arn: str) -> Running:
        with self._lock:
            running = self.clusters.get(arn)
        if running is None:
            raise errors.NotFoundException(f"The specified cluster was not found: {arn}")
        return running

    def add_brokers(self, arn: str, target: int, operation: Operation) -> None:
        """UpdateBrokerCount: new brokers, spread over the cluster's subnets like the first ones."""
        running = self.get(arn)
        racks = [node.rack for _, node in sorted(running.kafka.brokers.items())]
        per_zone = racks[:len(running.subnets)] or sorted(set(racks))     # the subnets' order
        running.state = "UPDATING"
        with self._lock:
            self.operations[operation.arn] = operation

        def grow():
            operation.state = "UPDATE_IN_PROGRESS"
            try:
                for n in range(len(racks), target):
                    node = running.kafka.add_broker(per_zone[n % len(per_zone)])
                    running.added[node.node_id] = datetime.now(timezone.utc)
            except KafkaError as exc:
                operation.finish(str(exc)[:500])
            else:
                operation.finish()
            running.state = "ACTIVE"
        threading.Thread(target=grow, name="msk-update-broker-count", daemon=True).start()

    def delete(self, arn: str) -> None:
        with self._lock:
            running = self.clusters.pop(arn, None)
        if running is not None:
            running.state = "DELETING"      # a start still in progress stops what it started
            running.kafka.stop()

    def stop(self) -> None:
        with self._lock:
            arns = list(self.clusters)
        for arn in arns:
            self.delete(arn)

    @staticmethod
    def version_note(requested: str | None) -> str | None:
        """What to say when the requested KafkaVersion is not the one that runs (None if it is)."""
        if requested and not requested.startswith(KAFKA_VERSION.rsplit(".", 1)[0]):
            return f"requested Apache Kafka {requested}; the local brokers run {KAFKA_VERSION}"
        return None
