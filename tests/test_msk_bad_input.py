"""Amazon MSK (``kafka``) and Apache Kafka given bad input: each mistake gets the error AWS or
Kafka gives it, and leaves nothing half-created behind.

Two kinds of error shape:

- the MSK API (boto3): a ``ClientError`` whose code and HTTP status are those of the MSK API
  reference (BadRequestException 400, NotFoundException 404; each operation's Responses table,
  e.g. https://docs.aws.amazon.com/msk/1.0/apireference/clusters-clusterarn-bootstrap-brokers.html
  lists 404 for GetBootstrapBrokers, and
  https://docs.aws.amazon.com/msk/1.0/apireference/configurations-arn-revisions-revision.html
  for DescribeConfigurationRevision); what the local stack does not run (MSK Serverless)
  answers ``NotImplemented`` 501, which botocore does not retry (``localaws/core/errors.py``);
- the Kafka protocol (confluent-kafka): a ``KafkaError`` named by Kafka (``MSG_SIZE_TOO_LARGE``,
  ``UNKNOWN_TOPIC_OR_PART``, ``INVALID_PARTITIONS``, ``INVALID_CONFIG``,
  ``INVALID_REPLICATION_FACTOR``) or by librdkafka for what never reached a broker
  (``_TRANSPORT``, ``_RESOLVE``, ``_ALL_BROKERS_DOWN``, ``_MSG_TIMED_OUT``).

MSK's rules checked here: two or three client subnets in different Availability Zones, brokers
spread evenly over them (https://docs.aws.amazon.com/msk/latest/developerguide/msk-create-cluster.html);
``auto.create.topics.enable`` false by default
(https://docs.aws.amazon.com/msk/latest/developerguide/msk-default-configuration.html).

One 3-broker cluster (three subnets in three zones) serves the module; two more short-lived
2-broker clusters are created and deleted by the tests about deletion. Every Kafka client call
has a bounded timeout: a mistake fails, it does not hang.
"""
from __future__ import annotations

import contextlib
import threading

import psutil
import pytest
from botocore.exceptions import ClientError
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewPartitions, NewTopic

from localaws.core.kafka import free_port
from localaws.core.waiting import wait_until
from localaws.kafka.client import partitions

ZONES = ("us-east-1a", "us-east-1b", "us-east-1c")
PROPS = b"auto.create.topics.enable=false\ndefault.replication.factor=3\nmin.insync.replicas=2\n"
QUIET = {"log_level": 0}            # librdkafka's own log lines would only repeat the errors asserted


# -- helpers ---------------------------------------------------------------------------------
def aws_error(info) -> tuple[str, int]:
    """(error code, HTTP status) of a botocore ClientError."""
    response = info.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


def kafka_error(info) -> KafkaError:
    return info.value.args[0]


def plane(stack):
    return stack.context.registry.planes["kafka"]


def create_topic(admin, topic: str, count: int = 1, **kwargs) -> None:
    admin.create_topics([NewTopic(topic, count, **kwargs)])[topic].result(30)
    assert wait_until(lambda: len(partitions(admin, topic)) == count, 30, poll=0.2)


def snapshot(stack, msk, admin=None) -> dict:
    """Everything a failed call could have half-created: clusters (API and running brokers),
    configurations, cluster operations, and (given an admin client) the topics learners make."""
    state = {"clusters": sorted(c["ClusterArn"] for c in msk.list_clusters()["ClusterInfoList"]),
             "running": sorted(plane(stack).engine.clusters),
             "configurations": sorted(c["Arn"] for c in msk.list_configurations()["Configurations"]),
             "operations": sorted(plane(stack).engine.operations)}
    if admin is not None:
        state["topics"] = settled_topics(admin)
    return state


def settled_topics(admin) -> list[str]:
    """The learners' topics once three answers in a row agree: each request may reach another
    broker, and a broker learns of a topic made by an earlier test a moment later.
    (Kafka's internal topics, __consumer_offsets, appear when a group first needs them.)"""
    seen = []

    def stable() -> bool:
        seen.append(sorted(t for t in admin.list_topics(timeout=10).topics if not t.startswith("__")))
        return len(seen) >= 3 and seen[-1] == seen[-2] == seen[-3]
    wait_until(stable, 30, poll=0.3)
    return seen[-1]


@contextlib.contextmanager
def nothing_created(stack, msk, admin=None):
    before = snapshot(stack, msk, admin)
    yield
    assert snapshot(stack, msk, admin) == before


def kafka_pids(marker: str) -> list[int]:
    """Pids of the Kafka processes whose command line names ``marker`` (a cluster's folder)."""
    found = []
    for proc in psutil.process_iter(["pid", "cmdline", "status"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if "kafka.Kafka" in cmdline and marker in cmdline and proc.info["status"] != psutil.STATUS_ZOMBIE:
            found.append(proc.info["pid"])
    return found


# -- fixtures --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def subnets(zone_subnets):
    """Three subnets in three zones, and a fourth in the first subnet's zone."""
    return zone_subnets(ZONES + ZONES[:1])


@pytest.fixture(scope="module")
def config(msk):
    return msk.create_configuration(Name="bad-input-config", ServerProperties=PROPS, KafkaVersions=["4.1.x"])


def node_group(subnets: list[str]) -> dict:
    return {"InstanceType": "kafka.m7g.large", "ClientSubnets": subnets}


@pytest.fixture(scope="module")
def cluster(stack, msk, subnets, config):
    arn = msk.create_cluster(ClusterName="bad-input", KafkaVersion="4.1.x.kraft", NumberOfBrokerNodes=3,
                             BrokerNodeGroupInfo=node_group(subnets[:3]),
                             ConfigurationInfo={"Arn": config["Arn"], "Revision": 1})["ClusterArn"]
    assert wait_until(lambda: msk.describe_cluster(ClusterArn=arn)["ClusterInfo"]["State"] == "ACTIVE",
                      180, poll=0.5)
    pids = list(plane(stack).engine.clusters[arn].kafka.pids().values())
    yield arn
    msk.delete_cluster(ClusterArn=arn)
    assert arn not in plane(stack).engine.clusters
    assert [pid for pid in pids if psutil.pid_exists(pid)
            and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE] == []


@pytest.fixture(scope="module")
def boot(msk, cluster) -> str:
    return msk.get_bootstrap_brokers(ClusterArn=cluster)["BootstrapBrokerString"]


@pytest.fixture(scope="module")
def admin(boot):
    return AdminClient({"bootstrap.servers": boot, **QUIET})


# -- the Kafka protocol ----------------------------------------------------------------------
def test_an_oversized_message_is_refused_by_the_broker_and_by_the_client(admin, boot):
    """A topic's ``max.message.bytes`` is the broker's limit: a bigger record comes back in its
    delivery report as MSG_SIZE_TOO_LARGE. Above the producer's own ``message.max.bytes``
    the client refuses it before sending (same error, raised by produce())."""
    create_topic(admin, "small-records", config={"max.message.bytes": "100000"})
    producer = Producer({"bootstrap.servers": boot, "acks": "all", "message.timeout.ms": 20000, **QUIET})
    reports = []
    producer.produce("small-records", b"x" * 200_000, on_delivery=lambda err, msg: reports.append(err))
    assert producer.flush(30) == 0
    assert [err.name() for err in reports] == ["MSG_SIZE_TOO_LARGE"]
    assert reports[0].code() == KafkaError.MSG_SIZE_TOO_LARGE

    with pytest.raises(KafkaException) as info:
        producer.produce("small-records", b"x" * 2_000_000)            # > the client's 1,000,000 bytes
    assert kafka_error(info).code() == KafkaError.MSG_SIZE_TOO_LARGE
    assert len(producer) == 0

    reader = Consumer({"bootstrap.servers": boot, "group.id": "unused", **QUIET})
    low, high = reader.get_watermark_offsets(TopicPartition("small-records", 0), timeout=10)
    reader.close()
    assert (low, high) == (0, 0)                                       # nothing was written


def test_producing_to_an_unknown_topic_fails_and_does_not_create_it(stack, msk, admin, boot):
    """``auto.create.topics.enable=false`` (MSK's default): the broker answers
    UNKNOWN_TOPIC_OR_PART, which the producer reports once the topic has stayed unknown for
    ``topic.metadata.propagation.max.ms``."""
    with nothing_created(stack, msk, admin):
        producer = Producer({"bootstrap.servers": boot, "acks": "all", "message.timeout.ms": 20000,
                             "topic.metadata.propagation.max.ms": 1000, **QUIET})
        reports = []
        producer.produce("no-such-topic", b"x", on_delivery=lambda err, msg: reports.append(err))
        assert producer.flush(30) == 0
        assert [err.name() for err in reports] == ["UNKNOWN_TOPIC_OR_PART"]
        assert reports[0].code() == KafkaError.UNKNOWN_TOPIC_OR_PART
    assert "no-such-topic" not in admin.list_topics(timeout=10).topics


def test_partitions_can_not_be_reduced(admin):
    create_topic(admin, "four-partitions", 4)
    with pytest.raises(KafkaException) as info:
        admin.create_partitions([NewPartitions("four-partitions", 2)])["four-partitions"].result(30)
    assert kafka_error(info).code() == KafkaError.INVALID_PARTITIONS
    assert "4 partition" in kafka_error(info).str()
    assert len(partitions(admin, "four-partitions")) == 4


@pytest.mark.parametrize("topic_config, says", [
    ({"no.such.config": "1"}, "Unknown topic config name"),
    ({"min.insync.replicas": "two"}, "Not a number"),
    ({"cleanup.policy": "sometimes"}, "String must be one of"),
], ids=["unknown-name", "not-a-number", "not-an-allowed-value"])
def test_an_invalid_topic_config_is_refused_by_create_topics(stack, msk, admin, topic_config, says):
    with nothing_created(stack, msk, admin):
        with pytest.raises(KafkaException) as info:
            admin.create_topics([NewTopic("badly-configured", 1, config=topic_config)])["badly-configured"].result(30)
    assert kafka_error(info).code() == KafkaError.INVALID_CONFIG
    assert says in kafka_error(info).str()


def test_a_replication_factor_above_the_broker_count_is_refused(stack, msk, admin):
    with nothing_created(stack, msk, admin):
        with pytest.raises(KafkaException) as info:
            admin.create_topics([NewTopic("four-copies", 1, 4)])["four-copies"].result(30)
    assert kafka_error(info).code() == KafkaError.INVALID_REPLICATION_FACTOR
    assert "only 3 broker(s)" in kafka_error(info).str()


@pytest.mark.parametrize("bootstrap", ["closed-port", "cluster-arn"])
def test_a_bad_bootstrap_string_fails_within_the_clients_timeouts(cluster, bootstrap):
    """No broker at the address (a closed port), or the cluster's ARN passed where
    GetBootstrapBrokers' string belongs (a name that does not resolve): a metadata request fails
    after its timeout with _TRANSPORT; a producer reports _ALL_BROKERS_DOWN to its error
    callback and fails the record with _MSG_TIMED_OUT after ``message.timeout.ms``."""
    servers = f"127.0.0.1:{free_port()}" if bootstrap == "closed-port" else cluster
    admin = AdminClient({"bootstrap.servers": servers, **QUIET})
    with pytest.raises(KafkaException) as info:
        admin.list_topics(timeout=3)
    assert kafka_error(info).code() == KafkaError._TRANSPORT

    errors, reports = [], []
    producer = Producer({"bootstrap.servers": servers, "message.timeout.ms": 3000,
                         "error_cb": lambda err: errors.append(err.code()), **QUIET})
    producer.produce("orders", b"x", on_delivery=lambda err, msg: reports.append(err))
    assert producer.flush(20) == 0
    assert [err.code() for err in reports] == [KafkaError._MSG_TIMED_OUT]
    assert KafkaError._ALL_BROKERS_DOWN in errors
    first = KafkaError._TRANSPORT if bootstrap == "closed-port" else KafkaError._RESOLVE
    assert errors[0] == first


# -- the MSK API -----------------------------------------------------------------------------
@pytest.mark.parametrize("properties, says", [
    (b"no.such.property=1\n", "not supported"),
    (b"min.insync.replicas=two\n", "Invalid value"),
    (b"min.insync.replicas\n", "Expected key=value"),
], ids=["unknown-property", "not-a-number", "no-equals-sign"])
def test_an_invalid_server_property_is_refused_by_create_configuration(stack, msk, properties, says):
    with nothing_created(stack, msk):
        with pytest.raises(ClientError) as info:
            msk.create_configuration(Name="refused-config", ServerProperties=properties)
    assert aws_error(info) == ("BadRequestException", 400)
    assert says in str(info.value)


def test_a_configuration_revision_that_does_not_exist(stack, msk, subnets, config):
    with pytest.raises(ClientError) as info:
        msk.describe_configuration_revision(Arn=config["Arn"], Revision=2)
    assert aws_error(info) == ("NotFoundException", 404)
    with nothing_created(stack, msk):
        with pytest.raises(ClientError) as info:
            msk.create_cluster(ClusterName="unknown-revision", KafkaVersion="4.1.x.kraft", NumberOfBrokerNodes=3,
                               BrokerNodeGroupInfo=node_group(subnets[:3]),
                               ConfigurationInfo={"Arn": config["Arn"], "Revision": 2})
    assert aws_error(info) == ("BadRequestException", 400)
    assert "revision 2 does not exist" in str(info.value)


@pytest.mark.parametrize("case", ["4-brokers-over-3-zones", "one-subnet", "two-subnets-one-zone",
                                  "unknown-subnet", "v2-4-brokers-over-3-zones"])
def test_broker_count_and_subnets_must_match_msks_rules(stack, msk, subnets, case):
    """2 or 3 subnets, each in its own zone, and a broker count that is a multiple of them."""
    def create(count, chosen):
        return msk.create_cluster(ClusterName=f"refused-{case}", KafkaVersion="4.1.x.kraft",
                                  NumberOfBrokerNodes=count, BrokerNodeGroupInfo=node_group(chosen))
    calls = {
        "4-brokers-over-3-zones": lambda: create(4, subnets[:3]),
        "one-subnet": lambda: create(1, subnets[:1]),
        "two-subnets-one-zone": lambda: create(2, [subnets[0], subnets[3]]),
        "unknown-subnet": lambda: create(2, [subnets[0], "subnet-0123456789abcdef0"]),
        "v2-4-brokers-over-3-zones": lambda: msk.create_cluster_v2(
            ClusterName=f"refused-{case}", Provisioned={"BrokerNodeGroupInfo": node_group(subnets[:3]),
                                                       "KafkaVersion": "4.1.x.kraft", "NumberOfBrokerNodes": 4}),
    }
    with nothing_created(stack, msk):
        with pytest.raises(ClientError) as info:
            calls[case]()
    assert aws_error(info) == ("BadRequestException", 400)


def test_update_broker_count_refuses_a_wrong_version_and_a_smaller_target(stack, msk, cluster):
    """CurrentVersion must be the cluster's current one; on a cluster of 3 brokers in 3 zones a
    target of 2 is neither a multiple of the zones nor an addition."""
    info_before = msk.describe_cluster(ClusterArn=cluster)["ClusterInfo"]
    with nothing_created(stack, msk):
        with pytest.raises(ClientError) as info:
            msk.update_broker_count(ClusterArn=cluster, CurrentVersion="K3AEGXETSR30VB",
                                    TargetNumberOfBrokerNodes=6)
        assert aws_error(info) == ("BadRequestException", 400)
        with pytest.raises(ClientError) as info:
            msk.update_broker_count(ClusterArn=cluster, CurrentVersion=info_before["CurrentVersion"],
                                    TargetNumberOfBrokerNodes=2)
        assert aws_error(info) == ("BadRequestException", 400)
    after = msk.describe_cluster(ClusterArn=cluster)["ClusterInfo"]
    assert (after["State"], after["NumberOfBrokerNodes"], after["CurrentVersion"]) == \
        ("ACTIVE", 3, info_before["CurrentVersion"])
    assert len(stack.local.kafka.brokers(cluster)) == 3


def test_a_serverless_cluster_is_not_emulated(stack, msk, subnets):
    """CreateClusterV2 with ``Serverless``: the plane's NotImplemented (501, not retried)."""
    with nothing_created(stack, msk):
        with pytest.raises(ClientError) as info:
            msk.create_cluster_v2(ClusterName="serverless", Serverless={"VpcConfigs": [{"SubnetIds": subnets[:3]}]})
    assert aws_error(info) == ("NotImplemented", 501)
    assert info.value.response["ResponseMetadata"]["RetryAttempts"] == 0
    assert "MSK Serverless" in str(info.value)


def test_get_bootstrap_brokers_of_a_deleted_cluster_is_not_found(stack, msk, subnets):
    before = snapshot(stack, msk)
    arn = msk.create_cluster(ClusterName="deleted", KafkaVersion="4.1.x.kraft", NumberOfBrokerNodes=2,
                             BrokerNodeGroupInfo=node_group(subnets[:2]))["ClusterArn"]
    assert wait_until(lambda: msk.describe_cluster(ClusterArn=arn)["ClusterInfo"]["State"] == "ACTIVE",
                      180, poll=0.5)
    pids = list(plane(stack).engine.clusters[arn].kafka.pids().values())
    assert len(pids) == 3                                   # a controller and 2 brokers
    assert msk.delete_cluster(ClusterArn=arn)["State"] == "DELETING"
    with pytest.raises(ClientError) as info:
        msk.get_bootstrap_brokers(ClusterArn=arn)
    assert aws_error(info) == ("NotFoundException", 404)
    with pytest.raises(ClientError) as info:
        msk.describe_cluster(ClusterArn=arn)
    assert aws_error(info) == ("NotFoundException", 404)
    after = snapshot(stack, msk)
    assert (after["clusters"], after["running"]) == (before["clusters"], before["running"])
    assert [pid for pid in pids if psutil.pid_exists(pid)
            and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE] == []


def test_deleting_a_cluster_while_it_is_creating_leaves_no_broker_running(stack, msk, subnets):
    name = "deleted-while-creating"
    arn = msk.create_cluster(ClusterName=name, KafkaVersion="4.1.x.kraft", NumberOfBrokerNodes=2,
                             BrokerNodeGroupInfo=node_group(subnets[:2]))["ClusterArn"]
    msk.delete_cluster(ClusterArn=arn)
    marker = f"{stack.context.work_dir}/kafka/{name}-"
    try:
        # the creation thread ends either way: brokers started, or start() failed and stopped them
        assert wait_until(lambda: not any(t.name == f"msk-create-{name}" for t in threading.enumerate()),
                          180, poll=0.2)
        assert kafka_pids(marker) == []
    finally:
        tracker = stack.context.processes
        for proc in [p for p in list(tracker._procs.values()) if marker in " ".join(map(str, p.args))]:
            tracker.kill(proc)                              # by pid, the ones this test caused
        assert kafka_pids(marker) == []
