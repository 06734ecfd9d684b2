"""Helpers for Kafka clients that work the same against MSK on AWS (confluent-kafka only)."""
from __future__ import annotations


def partitions(admin, topic: str, timeout: float = 5) -> list:
    """The topic's partitions (``PartitionMetadata``: id, leader, replicas, isrs), by id, as the
    broker answering sees them; [] if the topic does not exist, that broker does not know it yet
    (KRaft metadata reaches each broker a moment after CreateTopics), or no broker answers."""
    from confluent_kafka import KafkaException
    try:
        found = admin.list_topics(topic=topic, timeout=timeout).topics.get(topic)
    except KafkaException:
        return []
    if found is None or found.error is not None:
        return []
    return sorted(found.partitions.values(), key=lambda p: p.id)
