"""Kafka (local MSK) vs Kinesis (the stand-in): one workload through both, and a broker failover.

Prints figures and ratios on this machine (never pass/fail):

1. **the same workload** through each: ``--records`` keyed records of ``--size`` bytes (JSON
   with an id, a send timestamp and padding; partition key / message key ``sensor-<i mod 1000>``):

   - (a) a local MSK cluster (3 brokers in 3 Availability Zones, a topic of ``--partitions``
     partitions, replication factor 3, ``min.insync.replicas`` 2) with confluent-kafka and the
     bootstrap string of GetBootstrapBrokers: an idempotent ``acks=all`` producer;
   - (b) a Kinesis stream of ``--shards`` shards with boto3 PutRecords batches of 500 (refused
     entries sent again after a short back-off, as any producer must); 16 shards take 16,000
     records/s and 16 MiB/s (1,000 records/s and 1 MiB/s each:
     https://docs.aws.amazon.com/streams/latest/dev/service-sizes-and-limits.html), more than one
     local producer reaches, so the shards do not throttle (the output counts refused entries);

   for each: **produce throughput** (first send to last acknowledgement), **end-to-end latency**
   p50/p95 (a consumer in a process of its own, started before the producer, subtracts each
   record's send timestamp from the time it received it: Kafka's fetch, Kinesis's GetRecords
   polled at the 5 calls/s a shard allows), and **consume throughput** (a second consumer, after
   the producer is done, reads all records from the start). At full speed the latency is mostly
   the records queued behind the producer, so a **paced** run follows: ``--paced-records`` at
   ``--rate`` records/s (both producers hand over what is due every 20 ms), the latency of an
   engine that is not saturated. Side by side, with ratios.

2. **broker failover** (Kafka): the broker leading most of the topic's partitions is SIGKILLed
   (``stack.local.kafka.kill_broker``); seconds until every partition it led has a new leader in
   the metadata, and until an ``acks=all`` record sent right after the kill is acknowledged on
   every partition (those it led, and those it only followed: they wait until the controller
   drops it from their in-sync replicas). The local brokers are fenced after
   ``broker.session.timeout.ms`` (printed; Kafka's default is 9 s).

Usage: ``.venv/bin/python benchmarks/kafka_vs_kinesis.py [--records 50000] [--size 200]
[--partitions 16] [--shards 16] [--rate 1000] [--paced-records 5000]``

The stand-ins are not the services: the brokers are JVMs on this machine, the Kinesis stand-in
an HTTP server in this process, so the figures compare the two engines on a laptop, not MSK
with Kinesis on AWS (where the network and the brokers' instances set the numbers). The machine
is shared: timings include whatever else runs; the load average is printed before and after.
Everything runs in one local stack, stopped at the end (with every process it started); the
consumer processes are ended by their pids.
"""
from __future__ import annotations

import argparse
import json
import os
import queue
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter

import pandas as pd
from botocore.config import Config

import _results
import localaws
from localaws.core.kafka import BROKER_DEFAULTS
from localaws.core.waiting import wait_until
from localaws.kafka.client import partitions

ZONES = ("us-east-1a", "us-east-1b", "us-east-1c")
PROPS = b"auto.create.topics.enable=false\ndefault.replication.factor=3\nmin.insync.replicas=2\n"
QUIET = {"log_level": 0}        # a killed broker makes librdkafka log every reconnection attempt


def record(i: int, size: int) -> bytes:
    """A JSON record of about ``size`` bytes carrying its id and its send time."""
    head = json.dumps({"id": i, "ts": time.time(), "pad": ""})
    return (head[:-2] + "x" * max(0, size - len(head)) + '"}').encode()


def key(i: int) -> str:
    return f"sensor-{i % 1000}"


# -- consumers, each in a process of its own ---------------------------------------------------
CONSUMER = r'''
import json, sys, time
kind, mode, target, topic = sys.argv[1:5]           # Kinesis: target is the stream, topic unused
count, expected = int(sys.argv[5]), int(sys.argv[6])   # partitions or shards; records to read
latencies, ids, first = [], set(), []
say = lambda **kw: print(json.dumps(kw), flush=True)

def took(payload):
    if not first:
        first.append(time.perf_counter())               # consume time runs from the first record
    value = json.loads(payload)
    if mode == "tail":
        latencies.append(time.time() - value["ts"])
    ids.add(value["id"])

if kind == "kafka":
    from confluent_kafka import Consumer, TopicPartition
    consumer = Consumer({"bootstrap.servers": target, "group.id": f"bench-{mode}", "enable.auto.commit": False,
                         "fetch.wait.max.ms": 100, "log_level": 0})
    consumer.assign([TopicPartition(topic, p, 0) for p in range(count)])
    for p in range(count):                              # connected to every leader before the producer starts
        consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
    def fetched(timeout):
        """What the fetcher holds: as soon as one record is there (consume(n, t) would wait for n
        records or t seconds), then whatever else arrived with it."""
        first_one = consumer.poll(timeout)
        return ([first_one] if first_one is not None else []) + consumer.consume(1000, 0)
    if mode == "tail":                                  # fetching (an empty topic) before the producer starts
        for _ in range(3):
            for msg in fetched(0.5):
                if not msg.error():
                    took(msg.value())
    say(ready=True)
    while len(ids) < expected:
        for msg in fetched(1.0):
            if not msg.error():
                took(msg.value())
    seconds = time.perf_counter() - first[0]
    consumer.close()
else:
    import boto3
    from botocore.config import Config
    kinesis = boto3.client("kinesis", config=Config(retries={"total_max_attempts": 1}))
    shards = [s["ShardId"] for s in kinesis.list_shards(StreamName=target)["Shards"]]
    iterators = {s: kinesis.get_shard_iterator(StreamName=target, ShardId=s,
                                               ShardIteratorType="TRIM_HORIZON")["ShardIterator"] for s in shards}
    due = {s: 0.0 for s in shards}
    PERIOD = 1 / 5                                      # 5 GetRecords calls a second per shard: AWS's limit
    def read(shard):
        due[shard] = time.monotonic() + PERIOD
        try:
            page = kinesis.get_records(ShardIterator=iterators[shard], Limit=10000)
        except kinesis.exceptions.ProvisionedThroughputExceededException:
            return []
        iterators[shard] = page["NextShardIterator"]
        return page["Records"]
    if mode == "tail":                                  # each shard read once before the producer starts
        for shard in shards:
            for rec in read(shard):
                took(rec["Data"])
    say(ready=True)
    while len(ids) < expected:
        shard = min(due, key=due.get)
        wait = due[shard] - time.monotonic()
        if wait > 0:
            time.sleep(wait)                            # the shard's next allowed call
        for rec in read(shard):
            took(rec["Data"])
    seconds = time.perf_counter() - first[0]
latencies.sort()
pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] if latencies else None
say(records=len(ids), seconds=seconds, p50=pick(0.50), p95=pick(0.95), p99=pick(0.99))
'''


class ConsumerProcess:
    """A consumer in a child process; its JSON lines arrive on a queue."""

    def __init__(self, kind: str, mode: str, target: str, topic: str, count: int, expected: int,
                 env: dict | None = None):
        self.proc = subprocess.Popen([sys.executable, "-c", CONSUMER, kind, mode, target, topic, str(count),
                                      str(expected)],
                                     stdout=subprocess.PIPE, text=True, env={**os.environ, **(env or {})})
        self.lines: queue.Queue = queue.Queue()
        threading.Thread(target=lambda: [self.lines.put(json.loads(line)) for line in self.proc.stdout],
                         daemon=True).start()

    def until(self, key: str, timeout: float = 300) -> dict:
        while True:
            line = self.lines.get(timeout=timeout)
            if key in line:
                return line

    def end(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=30)


# -- Kafka ------------------------------------------------------------------------------------
def start_cluster(stack) -> tuple[str, str, float]:
    ec2, msk = stack.client("ec2"), stack.client("kafka")
    vpc = ec2.create_vpc(CidrBlock="10.49.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.49.{i}.0/24", AvailabilityZone=zone)["Subnet"]["SubnetId"]
               for i, zone in enumerate(ZONES)]
    config = msk.create_configuration(Name="bench-config", ServerProperties=PROPS, KafkaVersions=["4.1.x"])
    started = time.perf_counter()
    arn = msk.create_cluster(ClusterName="bench", KafkaVersion="4.1.x.kraft", NumberOfBrokerNodes=3,
                             BrokerNodeGroupInfo={"InstanceType": "kafka.m7g.large", "ClientSubnets": subnets},
                             ConfigurationInfo={"Arn": config["Arn"], "Revision": 1})["ClusterArn"]
    assert wait_until(lambda: msk.describe_cluster(ClusterArn=arn)["ClusterInfo"]["State"] == "ACTIVE", 300, poll=0.2)
    return arn, msk.get_bootstrap_brokers(ClusterArn=arn)["BootstrapBrokerString"], time.perf_counter() - started


class KafkaSide:
    """The local MSK cluster's side: an idempotent ``acks=all`` producer, consumers by process."""

    name = "kafka"

    def __init__(self, boot: str, partition_count: int):
        from confluent_kafka import Producer
        from confluent_kafka.admin import AdminClient, NewTopic

        self.boot, self.count = boot, partition_count
        admin = AdminClient({"bootstrap.servers": boot, **QUIET})
        for topic in ("bench", "bench-paced"):
            admin.create_topics([NewTopic(topic, partition_count, 3, config={"min.insync.replicas": "2"})])[topic].result(60)
            assert wait_until(lambda: len(partitions(admin, topic)) == partition_count, 60, poll=0.2)
        self.producer = Producer({"bootstrap.servers": boot, "acks": "all", "enable.idempotence": True,
                                  "linger.ms": 5, **QUIET})
        self.failed = []

    def consumer(self, mode: str, where: str, expected: int) -> ConsumerProcess:
        return ConsumerProcess("kafka", mode, self.boot, where, self.count, expected)

    def _report(self, err, msg):
        if err:
            self.failed.append(err)

    def send(self, where: str, ids: list[int], size: int) -> int:
        for i in ids:
            while True:
                try:
                    self.producer.produce(where, key=key(i), value=record(i, size), on_delivery=self._report)
                    break
                except BufferError:                      # the client's queue is full: let it drain
                    self.producer.poll(0.05)
            self.producer.poll(0)
        return 0

    def finish(self) -> None:
        assert self.producer.flush(300) == 0 and self.failed == [], self.failed[:3]


class KinesisSide:
    """The Kinesis stand-in's side: PutRecords of up to 500 records, refused entries sent again."""

    name = "kinesis"

    def __init__(self, stack, shards: int):
        self.kinesis = stack.client("kinesis", config=Config(retries={"total_max_attempts": 1}))
        self.count, self.env = shards, stack.env()
        self.streams = {}
        for where in ("bench", "bench-paced"):
            self.streams[where] = f"{where}-{uuid.uuid4().hex[:6]}"
            self.kinesis.create_stream(StreamName=self.streams[where], ShardCount=shards)
            self.kinesis.get_waiter("stream_exists").wait(StreamName=self.streams[where], WaiterConfig={"Delay": 1})

    def consumer(self, mode: str, where: str, expected: int) -> ConsumerProcess:
        return ConsumerProcess("kinesis", mode, self.streams[where], "-", self.count, expected, self.env)

    def send(self, where: str, ids: list[int], size: int) -> int:
        """PutRecords ``ids`` (500 a call); returns the entries refused (and sent again)."""
        pending, refused = list(ids), 0
        while pending:
            batch, pending = pending[:500], pending[500:]
            answer = self.kinesis.put_records(StreamName=self.streams[where],
                                              Records=[{"Data": record(i, size), "PartitionKey": key(i)} for i in batch])
            again = [i for i, entry in zip(batch, answer["Records"]) if "ErrorCode" in entry]
            if again:
                refused += len(again)
                pending = again + pending
                time.sleep(0.05)            # the producer's back-off: the shards refill on the real clock
        return refused

    def finish(self) -> None:
        pass


def run(side, count: int, size: int, rate: int, paced_count: int) -> dict:
    """The workload through one side: saturated produce with a tail consumer, a catch-up read,
    then a paced run at ``rate`` records/s for the latency of an engine that is not queueing."""
    procs = []
    try:
        tail = side.consumer("tail", "bench", count)
        procs.append(tail)
        tail.until("ready")
        started = time.perf_counter()
        refused = side.send("bench", list(range(count)), size)
        side.finish()
        produce_s = time.perf_counter() - started
        saturated = tail.until("records")

        catchup = side.consumer("catchup", "bench", count)
        procs.append(catchup)
        catchup.until("ready")
        read = catchup.until("records")

        paced = side.consumer("tail", "bench-paced", paced_count)
        procs.append(paced)
        paced.until("ready")
        step = 0.02                                      # both producers hand over what is due every 20 ms
        started = time.perf_counter()
        for n in range(0, paced_count, max(1, int(rate * step))):
            due = started + n / rate
            if due > time.perf_counter():
                time.sleep(due - time.perf_counter())   # the pace: records become due at ``rate`` a second
            side.send("bench-paced", list(range(n, min(paced_count, n + max(1, int(rate * step))))), size)
        side.finish()
        calm = paced.until("records")
    finally:
        for proc in procs:
            proc.end()
    assert saturated["records"] == read["records"] == count and calm["records"] == paced_count, (saturated, read, calm)
    return {"produce_s": produce_s, "refused": refused, "consume_s": read["seconds"],
            "p50": saturated["p50"], "p95": saturated["p95"], "paced_p50": calm["p50"], "paced_p95": calm["p95"]}


def failover(stack, arn: str, boot: str) -> dict:
    """Kill the broker leading most partitions of ``bench``; time leadership and acks=all."""
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": boot, **QUIET})
    before = {p.id: p.leader for p in partitions(admin, "bench")}
    victim = Counter(before.values()).most_common(1)[0][0]
    led = [p for p, leader in before.items() if leader == victim]
    producer = Producer({"bootstrap.servers": boot, "acks": "all", "enable.idempotence": True, "linger.ms": 0,
                         "message.timeout.ms": 120000, **QUIET})
    for p in before:                                     # connections up, producer id assigned
        producer.produce("bench", value=b"warm-up", partition=p)
    assert producer.flush(60) == 0

    acked, failed, moved = {}, [], {}
    def report(err, msg):
        if err:
            failed.append(err)
        else:
            acked[msg.partition()] = time.perf_counter()

    def watch_leaders():
        deadline = time.perf_counter() + 180
        while "at" not in moved and time.perf_counter() < deadline:
            found = {p.id: p.leader for p in partitions(admin, "bench")}
            if found and all(found.get(p, -1) not in (-1, victim) for p in led):
                moved["at"] = time.perf_counter()
    killed_pid = stack.local.kafka.kill_broker(arn, victim)["killed_pid"]
    killed = time.perf_counter()
    watcher = threading.Thread(target=watch_leaders, daemon=True)
    watcher.start()
    for p in before:
        producer.produce("bench", value=b"after-the-kill", partition=p, on_delivery=report)
    assert wait_until(lambda: producer.poll(0.01) >= 0 and len(acked) + len(failed) == len(before), 180, poll=0)
    watcher.join(timeout=180)
    assert failed == [] and "at" in moved, (failed, moved)
    followed = [p for p in before if p not in led]
    return {"victim": victim, "pid": killed_pid, "led": len(led), "followed": len(followed),
            "leaders_s": moved["at"] - killed,
            "acks_led_s": max(acked[p] for p in led) - killed,
            "acks_followed_s": max((acked[p] for p in followed), default=killed) - killed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=50_000)
    parser.add_argument("--size", type=int, default=200)
    parser.add_argument("--partitions", type=int, default=16)
    parser.add_argument("--shards", type=int, default=16)
    parser.add_argument("--rate", type=int, default=1000, help="records/s of the paced run")
    parser.add_argument("--paced-records", type=int, default=5000)
    args = parser.parse_args()
    print(f"{os.cpu_count()} cores; load average {os.getloadavg()}")
    stack = localaws.start()
    try:
        arn, boot, create_s = start_cluster(stack)
        print(f"MSK cluster of 3 brokers ACTIVE {create_s:.1f} s after CreateCluster (local JVMs)")
        kafka = run(KafkaSide(boot, args.partitions), args.records, args.size, args.rate, args.paced_records)
        kinesis = run(KinesisSide(stack, args.shards), args.records, args.size, args.rate, args.paced_records)

        mib = args.records * args.size / 2**20
        rows = []
        for name, result, layout in (("Kafka (local MSK, acks=all)", kafka, f"{args.partitions} partitions, RF 3"),
                                     ("Kinesis (stand-in)", kinesis, f"{args.shards} shards")):
            rows.append({"engine": name, "layout": layout,
                         "produce rec/s": args.records / result["produce_s"],
                         "produce MiB/s": mib / result["produce_s"],
                         "consume rec/s": args.records / result["consume_s"],
                         "e2e p50 ms": result["p50"] * 1000, "e2e p95 ms": result["p95"] * 1000,
                         "paced p50 ms": result["paced_p50"] * 1000, "paced p95 ms": result["paced_p95"] * 1000,
                         "refused": result["refused"]})
        table = pd.DataFrame(rows)
        print(f"\n1. {args.records:,} keyed records of {args.size} bytes ({mib:.1f} MiB) through each, as fast as "
              f"the producer goes (e2e: a tail consumer in its own process); paced: {args.paced_records:,} records "
              f"at {args.rate:,} records/s")
        print(table.to_string(index=False, float_format=lambda v: f"{v:,.1f}"))
        k, s = rows
        ratio = lambda column: k[column] / s[column]            # noqa: E731
        print(f"   Kafka / Kinesis: produce {ratio('produce rec/s'):.2f}x, consume {ratio('consume rec/s'):.2f}x, "
              f"e2e p50 {ratio('e2e p50 ms'):.2f}x, p95 {ratio('e2e p95 ms'):.2f}x; "
              f"paced p50 {ratio('paced p50 ms'):.2f}x, p95 {ratio('paced p95 ms'):.2f}x")
        for column, unit in (("produce rec/s", "records/s"), ("consume rec/s", "records/s"), ("e2e p50 ms", "ms"),
                             ("e2e p95 ms", "ms"), ("paced p50 ms", "ms"), ("paced p95 ms", "ms")):
            _results.record("kafka_vs_kinesis", f"{column.rsplit(' ', 1)[0]}: Kafka / Kinesis", ratio(column),
                            note=f"{k[column]:,.1f} / {s[column]:,.1f} {unit}")

        f = failover(stack, arn, boot)
        print(f"\n2. broker failover (broker.session.timeout.ms = {BROKER_DEFAULTS['broker.session.timeout.ms']} "
              f"locally): broker {f['victim']} SIGKILLed, leading {f['led']} of the {f['led'] + f['followed']} "
              "partitions")
        print(f"   every partition it led has a new leader after {f['leaders_s']:.2f} s")
        print(f"   acks=all records sent right after the kill acknowledged: on the partitions it led after "
              f"{f['acks_led_s']:.2f} s, on those it only followed after {f['acks_followed_s']:.2f} s")
        _results.record("kafka_vs_kinesis", "broker SIGKILLed -> every partition it led has a new leader",
                        f["leaders_s"], unit="s",
                        note=f"broker.session.timeout.ms = {BROKER_DEFAULTS['broker.session.timeout.ms']}")
        _results.record("kafka_vs_kinesis", "broker SIGKILLed -> acks=all acknowledged on every partition",
                        max(f["acks_led_s"], f["acks_followed_s"]), unit="s")
        stack.client("kafka").delete_cluster(ClusterArn=arn)
    finally:
        stack.stop()
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
