"""Amazon MSK (``kafka``) on real Apache Kafka brokers: the API, the brokers, a broker failure.

One 3-broker cluster (three subnets in three Availability Zones) serves the
module. Every client is unchanged from AWS: boto3 for the MSK API,
confluent-kafka with the bootstrap string GetBootstrapBrokers returns.
"""
from __future__ import annotations

import base64

import pytest
from botocore.exceptions import ClientError
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewPartitions, NewTopic

from localaws.core.waiting import wait_until
from localaws.kafka.client import partitions

ZONES = ("us-east-1a", "us-east-1b", "us-east-1c")


def code(info) -> str:
    return info.value.response["Error"]["Code"]


@pytest.fixture(scope="module")
def subnets(zone_subnets):
    return zone_subnets(ZONES)


@pytest.fixture(scope="module")
def cluster(stack, msk, subnets):
    props = b"auto.create.topics.enable=false\ndefault.replication.factor=3\nmin.insync.replicas=2\n"
    config = msk.create_configuration(Name="course-config", ServerProperties=props, KafkaVersions=["4.1.x"])
    arn = msk.create_cluster(
        ClusterName="orders", KafkaVersion="4.1.x.kraft", NumberOfBrokerNodes=3,
        BrokerNodeGroupInfo={"InstanceType": "kafka.m7g.large", "ClientSubnets": subnets},
        ConfigurationInfo={"Arn": config["Arn"], "Revision": 1})["ClusterArn"]
    assert msk.describe_cluster(ClusterArn=arn)["ClusterInfo"]["State"] == "CREATING"
    assert wait_until(lambda: msk.describe_cluster(ClusterArn=arn)["ClusterInfo"]["State"] == "ACTIVE", 120, poll=0.5)
    yield arn
    msk.delete_cluster(ClusterArn=arn)
    assert stack.context.registry.planes["kafka"].engine.clusters == {}


def test_an_active_cluster_serves_kafka_clients_at_its_bootstrap_brokers(msk, cluster):
    info = msk.describe_cluster(ClusterArn=cluster)["ClusterInfo"]
    assert info["NumberOfBrokerNodes"] == 3 and "ZookeeperConnectString" not in info
    boot = msk.get_bootstrap_brokers(ClusterArn=cluster)["BootstrapBrokerString"]
    assert len(boot.split(",")) == 3
    admin = AdminClient({"bootstrap.servers": boot})
    admin.create_topics([NewTopic("orders", 3)])["orders"].result()        # RF 3 from the configuration
    assert wait_until(lambda: len(partitions(admin, "orders")) == 3, 30, poll=0.2)
    assert all(len(p.replicas) == 3 for p in partitions(admin, "orders"))
    producer = Producer({"bootstrap.servers": boot, "acks": "all"})
    for i in range(30):
        producer.produce("orders", key=f"customer-{i % 5}", value=str(i).encode())
    assert producer.flush(30) == 0
    consumer = Consumer({"bootstrap.servers": boot, "group.id": "t", "auto.offset.reset": "earliest"})
    consumer.subscribe(["orders"])
    got = []
    wait_until(lambda: got.extend(m.value() for m in consumer.consume(30, 1) if not m.error()) or len(got) >= 30, 60)
    consumer.close()
    assert sorted(int(v) for v in got) == list(range(30))


def test_list_nodes_spreads_brokers_over_the_subnets_zones(stack, msk, cluster, subnets):
    nodes = msk.list_nodes(ClusterArn=cluster)["NodeInfoList"]
    assert [n["BrokerNodeInfo"]["ClientSubnet"] for n in nodes] == subnets
    racks = [b["rack"] for b in stack.local.kafka.brokers(cluster)]
    assert len(set(racks)) == 3


def test_a_killed_broker_moves_leadership_and_comes_back_in_sync(stack, msk, cluster):
    boot = msk.get_bootstrap_brokers(ClusterArn=cluster)["BootstrapBrokerString"]
    admin = AdminClient({"bootstrap.servers": boot})
    admin.create_topics([NewTopic("payments", 3, 3, config={"min.insync.replicas": "2"})])["payments"].result()

    assert wait_until(lambda: len(partitions(admin, "payments")) == 3, 30, poll=0.2)
    stack.local.kafka.kill_broker(cluster, 1)
    assert wait_until(lambda: (found := partitions(admin, "payments"))
                      and all(p.leader not in (1, -1) for p in found), 30, poll=0.2)
    producer = Producer({"bootstrap.servers": boot, "acks": "all"})
    for i in range(100):
        producer.produce("payments", value=str(i).encode())
    assert producer.flush(30) == 0                                   # 2 in-sync replicas: acks=all holds
    stack.local.kafka.restart_broker(cluster, 1)
    assert wait_until(lambda: (found := partitions(admin, "payments"))
                      and all(len(p.isrs) == 3 for p in found), 60, poll=0.2)


def test_partitions_can_be_added_not_removed(msk, cluster):
    admin = AdminClient({"bootstrap.servers": msk.get_bootstrap_brokers(ClusterArn=cluster)["BootstrapBrokerString"]})
    admin.create_topics([NewTopic("clicks", 2)])["clicks"].result()
    assert wait_until(lambda: len(partitions(admin, "clicks")) == 2, 30, poll=0.2)
    admin.create_partitions([NewPartitions("clicks", 4)])["clicks"].result()
    with pytest.raises(KafkaException, match="INVALID_PARTITIONS"):
        admin.create_partitions([NewPartitions("clicks", 3)])["clicks"].result()


def test_bad_requests_get_msks_errors(msk, subnets, cluster):
    with pytest.raises(ClientError) as info:
        msk.create_cluster(ClusterName="odd", KafkaVersion="4.1.x.kraft", NumberOfBrokerNodes=4,
                           BrokerNodeGroupInfo={"InstanceType": "kafka.m7g.large", "ClientSubnets": subnets})
    assert code(info) == "BadRequestException" and "multiple of Availability Zones" in str(info.value)
    with pytest.raises(ClientError) as info:
        msk.create_cluster(ClusterName="one-zone", KafkaVersion="4.1.x.kraft", NumberOfBrokerNodes=1,
                           BrokerNodeGroupInfo={"InstanceType": "kafka.m7g.large", "ClientSubnets": subnets[:1]})
    assert code(info) == "BadRequestException"
    with pytest.raises(ClientError) as info:
        msk.create_configuration(Name="bad", ServerProperties=b"no.such.property=1\n")
    assert code(info) == "BadRequestException"
    with pytest.raises(ClientError) as info:
        msk.get_bootstrap_brokers(ClusterArn=cluster.replace("cluster/", "cluster/missing-"))
    assert code(info) == "NotFoundException"
    current = msk.describe_cluster(ClusterArn=cluster)["ClusterInfo"]["CurrentVersion"]
    with pytest.raises(ClientError) as info:
        msk.update_broker_count(ClusterArn=cluster, CurrentVersion=current, TargetNumberOfBrokerNodes=2)
    assert code(info) == "BadRequestException"


def test_configuration_revision_round_trips(msk):
    listed = msk.list_configurations()["Configurations"]
    arn = next(c["Arn"] for c in listed if c["Name"] == "course-config")
    revision = msk.describe_configuration_revision(Arn=arn, Revision=1)
    assert b"min.insync.replicas=2" in revision["ServerProperties"]
    assert msk.describe_configuration(Arn=arn)["LatestRevision"]["Revision"] == 1


def test_cloudwatch_shows_under_replicated_partitions_and_consumer_lag(stack, msk, cluster):
    """AWS/Kafka metrics from the real brokers: a stopped follower, a group that has not caught up."""
    cloudwatch = stack.client("cloudwatch")
    boot = msk.get_bootstrap_brokers(ClusterArn=cluster)["BootstrapBrokerString"]
    admin = AdminClient({"bootstrap.servers": boot})
    admin.create_topics([NewTopic("lagging", 3, 3)])["lagging"].result()
    assert wait_until(lambda: len(partitions(admin, "lagging")) == 3, 30, poll=0.2)
    producer = Producer({"bootstrap.servers": boot, "acks": "all"})
    for i in range(60):
        producer.produce("lagging", key=str(i), value=b"x")
    assert producer.flush(30) == 0
    consumer = Consumer({"bootstrap.servers": boot, "group.id": "slow", "enable.auto.commit": False})
    # the group has processed the first 5 records of each partition, and committed that
    done = [TopicPartition("lagging", p, 5) for p in range(3)]
    consumer.commit(offsets=done, asynchronous=False)
    ends = [consumer.get_watermark_offsets(TopicPartition("lagging", p), timeout=10)[1] for p in range(3)]
    consumer.close()
    expected_lag = sum(end - 5 for end in ends)
    name = msk.describe_cluster(ClusterArn=cluster)["ClusterInfo"]["ClusterName"]

    def latest(metric, dims):
        now = stack.context.clock.now()
        points = cloudwatch.get_metric_statistics(
            Namespace="AWS/Kafka", MetricName=metric, Dimensions=[{"Name": k, "Value": v} for k, v in dims.items()],
            StartTime=now.replace(year=now.year - 1), EndTime=now.replace(year=now.year + 1), Period=60,
            Statistics=["Maximum"])["Datapoints"]
        return max((p["Timestamp"], p["Maximum"]) for p in points)[1] if points else None

    lag = {"Cluster Name": name, "Consumer Group": "slow", "Topic": "lagging"}
    assert wait_until(lambda: latest("SumOffsetLag", lag) == expected_lag, 30, poll=0.5)
    assert latest("MaxOffsetLag", lag) == max(ends) - 5
    stack.local.kafka.kill_broker(cluster, 3)
    try:
        led_by = lambda b: {"Cluster Name": name, "Broker ID": str(b)}      # noqa: E731
        assert wait_until(lambda: (latest("UnderReplicatedPartitions", led_by(1)) or 0)
                          + (latest("UnderReplicatedPartitions", led_by(2)) or 0) > 0, 30, poll=0.5)
    finally:
        stack.local.kafka.restart_broker(cluster, 3)
