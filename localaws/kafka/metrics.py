"""An MSK cluster's CloudWatch metrics, measured on the real brokers every few seconds.

MSK publishes broker and consumer-lag metrics to CloudWatch under ``AWS/Kafka``
(https://docs.aws.amazon.com/msk/latest/developerguide/metrics-details.html).
The ones a learner watches during a failure or a slow consumer:

- ``UnderReplicatedPartitions`` (dimensions ``Cluster Name``, ``Broker ID``): the
  partitions this broker leads whose in-sync replicas are fewer than their
  replicas: a follower is down or behind;
- ``OfflinePartitionsCount`` (``Cluster Name``): partitions with no leader at all:
  nobody can read or write them;
- ``SumOffsetLag`` and ``MaxOffsetLag`` (``Cluster Name``, ``Consumer Group``,
  ``Topic``): how many records a consumer group has not committed yet, summed
  over a topic's partitions, and at its worst partition. Sampled only while
  every broker runs and every partition is fully replicated: librdkafka's
  group-offsets request can abort the process during a broker failure
  (confluentinc/librdkafka#4605), so during one the lag metrics pause.

Every :data:`SAMPLE_SECONDS` a thread asks each ACTIVE cluster, through Kafka's
own admin protocol (the AdminClient of confluent-kafka): topic metadata for
the partition counts, the groups' committed offsets and the partitions' end
offsets for the lag; then publishes them through the shared publisher of
``localaws/core/metrics.py``. AWS publishes once a minute (``DEFAULT``
monitoring); here a few seconds, so a notebook sees a failure come and go.
"""
from __future__ import annotations

import logging
import threading
from collections import defaultdict

from localaws.core.metrics import MetricsPublisher

log = logging.getLogger("localaws")
SAMPLE_SECONDS = 2.0
TIMEOUT = 2.0       # seconds for each admin request: a dead broker must not hold the sampler


def partition_counts(metadata) -> tuple[dict[int, int], int]:
    """(broker id -> under-replicated partitions it leads, offline partitions) from topic metadata."""
    under, offline = defaultdict(int), 0
    for topic in metadata.topics.values():
        for partition in topic.partitions.values():
            if partition.leader < 0:
                offline += 1
            elif len(partition.isrs) < len(partition.replicas):
                under[partition.leader] += 1
    return under, offline


def group_lags(admin) -> dict[tuple[str, str], list[int]]:
    """(group, topic) -> the lag of each partition the group has committed offsets for."""
    from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
    from confluent_kafka.admin import OffsetSpec

    lags = defaultdict(list)
    groups = admin.list_consumer_groups(request_timeout=TIMEOUT).result().valid
    for group in groups:
        listing = admin.list_consumer_group_offsets(
            [ConsumerGroupTopicPartitions(group.group_id)], request_timeout=TIMEOUT)
        committed = [tp for tp in listing[group.group_id].result().topic_partitions if tp.offset >= 0]
        if not committed:
            continue
        ends = admin.list_offsets({TopicPartition(tp.topic, tp.partition): OffsetSpec.latest()
                                   for tp in committed}, request_timeout=TIMEOUT)
        for tp in committed:
            end = ends[TopicPartition(tp.topic, tp.partition)].result().offset
            lags[(group.group_id, tp.topic)].append(max(0, end - tp.offset))
    return lags


class Sampler:
    """One thread for the plane: every :data:`SAMPLE_SECONDS`, every ACTIVE cluster's metrics."""

    def __init__(self, engine, cloudwatch, clock):
        self.engine = engine
        self.clock = clock
        self.publisher = MetricsPublisher(cloudwatch, "AWS/Kafka", "Cluster Name")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # a cluster being deleted waits for a sample of it in progress (its brokers are stopping)
        self._lock = threading.Lock()

    def ensure_running(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="localaws-metrics-kafka", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_SECONDS):
            for arn, running in list(self.engine.clusters.items()):
                with self._lock:
                    if running.state not in ("ACTIVE", "UPDATING") or self._stop.is_set():
                        continue
                    try:
                        self.sample(arn, running)
                    except Exception:            # a broker going down mid-sample: next time
                        log.debug("could not sample MSK metrics of %s", arn, exc_info=True)

    @staticmethod
    def _admin(running):
        """A new AdminClient for one sample. A long-lived one aborts the process in a group
        request after a broker restart (librdkafka#4605); one per sample, made and destroyed
        in this thread, does not."""
        from confluent_kafka.admin import AdminClient
        return AdminClient({"bootstrap.servers": running.kafka.bootstrap_servers,
                            "socket.timeout.ms": int(TIMEOUT * 1000), "log_level": 0})

    def sample(self, arn: str, running) -> None:
        admin = self._admin(running)
        region, name = arn.split(":")[3], running.name
        when = self.clock.now()
        under, offline = partition_counts(admin.list_topics(timeout=TIMEOUT))
        self.publisher.publish(region, name, [("OfflinePartitionsCount", offline, "Count")], when)
        for broker_id in running.kafka.brokers:
            self.publisher.publish(region, name, [("UnderReplicatedPartitions", under.get(broker_id, 0), "Count")],
                                   when, {"Broker ID": str(broker_id)})
        healthy = not offline and not any(under.values()) and len(running.kafka.pids()) == len(running.kafka.brokers) + 1
        if not healthy:
            # librdkafka's group-offsets request can abort the whole process while a broker is
            # down or catching up (confluentinc/librdkafka#4605): lag waits for a healthy cluster
            return
        for (group, topic), lags in group_lags(admin).items():
            self.publisher.publish(region, name, [("SumOffsetLag", sum(lags), "Count"),
                                                  ("MaxOffsetLag", max(lags), "Count")],
                                   when, {"Consumer Group": group, "Topic": topic})

    def forget(self, arn: str) -> None:
        """Wait for a sample of the cluster in progress to end (before its brokers stop)."""
        with self._lock:
            pass

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self.publisher.stop()
