"""Amazon MSK on your laptop: each cluster a real Apache Kafka (KRaft) cluster of brokers.

``api.py`` holds ``KafkaPlane`` (see ``docs/adding_a_service.md``). moto keeps
each cluster's record (name, ARN, broker node group, tags); the plane runs it:
CreateCluster starts a KRaft controller and NumberOfBrokerNodes brokers
(``localaws/core/kafka.py``), one ``broker.rack`` per client subnet's
Availability Zone, with the cluster configuration's server properties;
DescribeCluster is ACTIVE once they serve; GetBootstrapBrokers gives their
addresses to any Kafka client (confluent-kafka, kafka-python, Flink, Spark).
``engine.py`` holds the clusters and the configurations.
"""
from .api import KafkaPlane

__all__ = ["KafkaPlane"]
