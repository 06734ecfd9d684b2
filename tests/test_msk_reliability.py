"""Amazon MSK (``kafka``) reliability on real Apache Kafka brokers: nothing lost, nothing doubled
that the application did not itself leave uncommitted.

"Produce N with ``acks=all``, kill a broker and a consumer mid-batch, restart both: exactly N
records processed with committed offsets, none lost."

- One 3-broker cluster (three subnets in three Availability Zones) serves the module; the topic
  has replication factor 3 (MSK's default for a 3-AZ cluster:
  https://docs.aws.amazon.com/msk/latest/developerguide/msk-default-configuration.html) and
  ``min.insync.replicas`` 2, so one broker down still leaves two in-sync replicas and
  ``acks=all`` writes go on.
- An idempotent ``acks=all`` producer (confluent-kafka, the bootstrap string of
  GetBootstrapBrokers) writes N uniquely numbered records while a broker is SIGKILLed
  (``stack.local.kafka.kill_broker``) with records in flight and restarted later: every record
  is in the topic exactly once (the idempotent producer's sequence numbers drop the resends).
- A consumer group member, in a process of its own, processes records in batches and commits
  after each; while it runs, the broker coordinating its group is killed; then the member is
  SIGKILLed after processing a batch it has not committed. A new member resumes from the
  committed offsets: every record is processed, the only ones processed twice are those of the
  batch that was processed but not committed, and the committed offsets end at the topic's end.
- Stopping the stack ends every broker process and closes every broker port.
"""
from __future__ import annotations

import json
import queue
import socket
import subprocess
import sys
import threading
from collections import Counter

import psutil
import pytest
from confluent_kafka import (Consumer, ConsumerGroupTopicPartitions, KafkaError, KafkaException, Producer,
                             TopicPartition)
from confluent_kafka.admin import AdminClient, NewTopic

from localaws.core.waiting import wait_until
from localaws.kafka.client import partitions

ZONES = ("us-east-1a", "us-east-1b", "us-east-1c")
PROPS = b"auto.create.topics.enable=false\ndefault.replication.factor=3\nmin.insync.replicas=2\n"
TOPIC, PARTITIONS, N = "ledger", 6, 5000
GROUP = "ledger-processors"
QUIET = {"log_level": 0}        # a killed broker makes librdkafka log every reconnection


def alive(pids) -> list[int]:
    return [pid for pid in pids if psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]


@pytest.fixture(scope="module")
def subnets(zone_subnets):
    return zone_subnets(ZONES)


@pytest.fixture(scope="module")
def cluster(stack, msk, subnets):
    config = msk.create_configuration(Name="reliability-config", ServerProperties=PROPS, KafkaVersions=["4.1.x"])
    arn = msk.create_cluster(
        ClusterName="reliability", KafkaVersion="4.1.x.kraft", NumberOfBrokerNodes=3,
        BrokerNodeGroupInfo={"InstanceType": "kafka.m7g.large", "ClientSubnets": subnets},
        ConfigurationInfo={"Arn": config["Arn"], "Revision": 1})["ClusterArn"]
    assert wait_until(lambda: msk.describe_cluster(ClusterArn=arn)["ClusterInfo"]["State"] == "ACTIVE",
                      180, poll=0.5)
    running = stack.context.registry.planes["kafka"].engine.clusters[arn].kafka
    yield arn
    pids = set(running.pids().values())       # taken at the end: a restarted broker has a new pid
    msk.delete_cluster(ClusterArn=arn)
    assert arn not in stack.context.registry.planes["kafka"].engine.clusters
    assert len(pids) == 4 and alive(pids) == []                  # the controller and 3 brokers


@pytest.fixture(scope="module")
def boot(msk, cluster) -> str:
    return msk.get_bootstrap_brokers(ClusterArn=cluster)["BootstrapBrokerString"]


# -- a consumer group member in a process of its own, so that it can be SIGKILLed ---------------
MEMBER = r'''
import json, sys, time
from confluent_kafka import Consumer, KafkaError, KafkaException

boot, topic, group, out_path, mode = sys.argv[1:6]
pause_at, uncommitted_at = int(sys.argv[6]), int(sys.argv[7])
say = lambda **kw: (print(json.dumps(kw), flush=True))
consumer = Consumer({"bootstrap.servers": boot, "group.id": group, "enable.auto.commit": False,
                     "auto.offset.reset": "earliest", "enable.partition.eof": True,
                     "session.timeout.ms": 10000, "heartbeat.interval.ms": 1000,
                     "max.poll.interval.ms": 60000, "log_level": 0})
consumer.subscribe([topic])
out = open(out_path, "a")
REBALANCED = (KafkaError.ILLEGAL_GENERATION, KafkaError.UNKNOWN_MEMBER_ID, KafkaError.REBALANCE_IN_PROGRESS,
              KafkaError._NO_OFFSET)

def commit() -> bool:
    """Commit the batch just processed, retrying while the group coordinator moves; False if the
    group took the partitions away (the batch stays uncommitted)."""
    deadline = time.monotonic() + 120
    while True:
        try:
            consumer.commit(asynchronous=False)
            return True
        except KafkaException as exc:
            err = exc.args[0]
            if err.fatal() or time.monotonic() > deadline:
                raise
            if err.code() in REBALANCED:
                return False

processed, eof = 0, set()
paused = False
while True:
    batch = []
    for msg in consumer.consume(num_messages=250, timeout=1.0):
        if msg.error():
            if msg.error().code() == KafkaError._PARTITION_EOF:
                eof.add(msg.partition())
            elif msg.error().fatal():
                raise KafkaException(msg.error())
            continue                                    # a broker down: librdkafka retries
        eof.discard(msg.partition())
        batch.append(json.loads(msg.value())["id"])
    if batch:
        out.write("".join(f"{i}\n" for i in batch))     # the processing: record each id handled
        out.flush()
        processed += len(batch)
        if mode == "crash" and processed >= uncommitted_at:
            say(uncommitted=batch)                      # processed, not committed: now SIGKILL
            sys.stdin.readline()
            sys.exit(3)
        if commit():
            say(committed=processed)
        else:
            say(uncommitted=batch)
        if mode == "crash" and processed >= pause_at and not paused:
            paused = True
            say(paused=processed)
            sys.stdin.readline()                        # the test kills a broker, then says go
    assignment = consumer.assignment()
    if mode == "resume" and assignment and eof >= {tp.partition for tp in assignment}:
        break
consumer.close()
say(done=processed, partitions=sorted(eof))
'''


class Member:
    """A consumer group member process; its stdout lines (JSON) arrive on ``lines``."""

    def __init__(self, boot: str, out_path, mode: str, pause_at: int = 0, uncommitted_at: int = 0):
        self.proc = subprocess.Popen(
            [sys.executable, "-c", MEMBER, boot, TOPIC, GROUP, str(out_path), mode, str(pause_at),
             str(uncommitted_at)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(json.loads(line))

    def until(self, key: str, timeout: float = 180) -> tuple[dict, list[dict]]:
        """The first line carrying ``key``, and every line read before it."""
        seen = []
        while True:
            line = self.lines.get(timeout=timeout)
            if key in line:
                return line, seen
            seen.append(line)

    def say(self, text: str) -> None:
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=30)


def group_call(boot: str, method: str, groups: list):
    """One consumer-group admin request, from an AdminClient of its own made for it.

    librdkafka's group requests (coordinator lookups) can abort the whole process with
    ``rd_kafka_enq_once_del_source_return: Assertion `eonce->refcnt > 0' failed`` when an
    AdminClient that lived through a broker restart sends one (an open librdkafka bug:
    https://github.com/confluentinc/librdkafka/issues/4605, seen here with confluent-kafka
    2.16.1); the workaround its reporters give is a fresh client each time."""
    client = AdminClient({"bootstrap.servers": boot, **QUIET})
    try:
        return next(iter(getattr(client, method)(groups, request_timeout=30).values())).result(60)
    finally:
        del client


def read_topic(boot: str) -> Counter:
    """Every record's id, read from offset 0 of each partition to its end (no group commits)."""
    reader = Consumer({"bootstrap.servers": boot, "group.id": "ledger-audit", "enable.auto.commit": False,
                       "enable.partition.eof": True, **QUIET})
    reader.assign([TopicPartition(TOPIC, p, 0) for p in range(PARTITIONS)])
    ids, eof = Counter(), set()
    def drain():
        for msg in reader.consume(500, 1.0):
            if msg.error():
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    eof.add(msg.partition())
                continue
            ids[json.loads(msg.value())["id"]] += 1
        return len(eof) == PARTITIONS
    assert wait_until(drain, 120, poll=0)
    reader.close()
    return ids


@pytest.fixture
def members():
    """The consumer group member processes a test starts; any still running is killed at the end."""
    started: list[Member] = []
    yield started
    for member in started:
        if member.proc.poll() is None:
            member.kill()


def test_acks_all_survives_a_broker_and_a_consumer_killed_mid_batch(stack, msk, cluster, boot, tmp_path, members):
    admin = AdminClient({"bootstrap.servers": boot, **QUIET})
    admin.create_topics([NewTopic(TOPIC, PARTITIONS, 3, config={"min.insync.replicas": "2"})])[TOPIC].result(30)
    assert wait_until(lambda: len(partitions(admin, TOPIC)) == PARTITIONS, 30, poll=0.2)
    assert all(len(p.replicas) == 3 for p in partitions(admin, TOPIC))

    # 1. produce N while broker 2 is killed (records in flight) and later restarted
    led_by_2 = [p.id for p in partitions(admin, TOPIC) if p.leader == 2]
    assert led_by_2, "broker 2 leads none of the topic's partitions"
    producer = Producer({"bootstrap.servers": boot, "acks": "all", "enable.idempotence": True,
                         "linger.ms": 5, "message.timeout.ms": 120000, **QUIET})
    failed, delivered = [], []
    def report(err, msg):
        (failed if err else delivered).append((err, msg.key()))
    def produce(ids):
        for i in ids:
            producer.produce(TOPIC, key=f"account-{i % 97}", value=json.dumps({"id": i}).encode(), on_delivery=report)
            producer.poll(0)
    produce(range(0, N // 2))
    stack.local.kafka.kill_broker(cluster, 2)          # SIGKILL, no controlled shutdown
    produce(range(N // 2, 3 * N // 4))                 # while broker 2 is down
    assert producer.flush(120) == 0
    assert wait_until(lambda: (moved := partitions(admin, TOPIC))          # once the metadata says so
                      and all(p.leader != 2 and 2 not in p.isrs for p in moved), 30, poll=0.2)
    stack.local.kafka.restart_broker(cluster, 2)
    produce(range(3 * N // 4, N))
    assert producer.flush(120) == 0
    assert failed == [] and len(delivered) == N

    written = read_topic(boot)
    assert sorted(written) == list(range(N))
    assert set(written.values()) == {1}                # every id once: idempotence dropped the resends

    # 2. a member processes, commits, survives its coordinator's death, and is killed mid-batch
    first = Member(boot, tmp_path / "first.txt", "crash", pause_at=N // 5, uncommitted_at=3 * N // 5)
    members.append(first)
    first.until("paused")
    group = group_call(boot, "describe_consumer_groups", [GROUP])
    coordinator = group.coordinator.id
    assert [m.client_id for m in group.members] and coordinator in (1, 2, 3)
    stack.local.kafka.kill_broker(cluster, coordinator)
    first.say("go")
    crash, before_crash = first.until("uncommitted")
    first.kill()
    uncommitted = set(crash["uncommitted"])
    uncommitted |= {i for line in before_crash for i in line.get("uncommitted", [])}   # commits the group refused
    assert any("committed" in line for line in before_crash)
    stack.local.kafka.restart_broker(cluster, coordinator)

    # 3. a new member resumes from the committed offsets and reaches the end of every partition
    second = Member(boot, tmp_path / "second.txt", "resume")
    members.append(second)
    done, _ = second.until("done")
    assert second.proc.wait(timeout=60) == 0 and done["partitions"] == list(range(PARTITIONS))

    processed = Counter(int(line) for name in ("first.txt", "second.txt")
                        for line in (tmp_path / name).read_text().split())
    assert sorted(processed) == list(range(N))                                  # none lost
    twice = {i for i, n in processed.items() if n > 1}
    assert max(processed.values()) <= 2
    assert twice <= uncommitted and 0 < len(twice) <= len(uncommitted)         # only what was not committed
    assert sum(processed.values()) - N == len(twice)

    committed = group_call(boot, "list_consumer_group_offsets", [ConsumerGroupTopicPartitions(GROUP)])
    reader = Consumer({"bootstrap.servers": boot, "group.id": "ledger-audit", **QUIET})
    ends = {p: reader.get_watermark_offsets(TopicPartition(TOPIC, p), timeout=10)[1] for p in range(PARTITIONS)}
    reader.close()
    assert {tp.partition: tp.offset for tp in committed.topic_partitions if tp.topic == TOPIC} == ends
    assert sum(ends.values()) == N

    # both restarted brokers are back in every partition's in-sync replicas
    assert wait_until(lambda: (found := partitions(admin, TOPIC)) and all(len(p.isrs) == 3 for p in found),
                      120, poll=0.5)


STACK_STOP_SCRIPT = """
import json, localaws
from localaws.core.waiting import wait_until
stack = localaws.start()
ec2, msk = stack.client("ec2"), stack.client("kafka")
vpc = ec2.create_vpc(CidrBlock="10.39.0.0/16")["Vpc"]["VpcId"]
subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.39.{i}.0/24", AvailabilityZone=zone)["Subnet"]["SubnetId"]
           for i, zone in enumerate(["us-east-1a", "us-east-1b"])]
arn = msk.create_cluster(ClusterName="stopped-with-the-stack", KafkaVersion="4.1.x.kraft", NumberOfBrokerNodes=2,
                         BrokerNodeGroupInfo={"InstanceType": "kafka.m7g.large", "ClientSubnets": subnets})["ClusterArn"]
assert wait_until(lambda: msk.describe_cluster(ClusterArn=arn)["ClusterInfo"]["State"] == "ACTIVE", 180, poll=0.5)
kafka = stack.context.registry.planes["kafka"].engine.clusters[arn].kafka
pids = list(kafka.pids().values())
ports = [node.port for node in (kafka.controller, *kafka.brokers.values())]
stack.stop()
print(json.dumps({"pids": pids, "ports": ports}))
"""


def test_no_broker_process_or_port_remains_after_the_stack_stops():
    """A stack of its own, in a subprocess (the session's stack must keep running)."""
    done = subprocess.run([sys.executable, "-c", STACK_STOP_SCRIPT], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(found["pids"]) == 3 and len(found["ports"]) == 3          # a controller and 2 brokers
    assert alive(found["pids"]) == []
    for port in found["ports"]:
        with socket.socket() as sock, pytest.raises(ConnectionRefusedError):
            sock.settimeout(5)
            sock.connect(("127.0.0.1", port))
