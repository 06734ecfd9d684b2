"""Producer -> Kinesis -> Firehose -> S3, with throttling and a consumer that crashes.

20,000 numbered records go through PutRecords into a 2-shard stream faster
than its shards take them (1,000 records/s each): some entries are refused
(``ProvisionedThroughputExceededException`` in the answer) and the producer
sends them again after backing off half a second of the stack's frozen
clock. Two readers share the stream: a Firehose delivery stream (Kinesis
source, S3 destination) and a KCL-style consumer (``localaws.kinesis.leases``)
whose first worker dies in the middle of a batch; a second worker takes its
leases when they expire and goes on from the checkpoints.

What the counts must say:

- S3 holds every record exactly once, and Firehose's own counts add up
  (records in = delivered + failed + dropped), with none failed or dropped;
- the consumer saw every record at least once, and twice exactly the
  records of the batch the dead worker processed but never checkpointed:
  at-least-once delivery, with the duplicates where the model allows them.
"""
from __future__ import annotations

import json
import uuid
from collections import Counter

import pytest
from botocore.config import Config

from localaws.core.waiting import wait_until
from localaws.kinesis.leases import LeaseConsumer

N = 20_000
BACKOFF_S = 0.5          # simulated seconds the producer waits before sending refused entries again


class Crash(Exception):
    pass


@pytest.fixture
def pipeline(stack, lambda_role, frozen):
    """A 2-shard stream, a bucket and a Firehose stream reading the stream into the bucket."""
    name = f"t-rel-{uuid.uuid4().hex[:8]}"
    kinesis = stack.client("kinesis", config=Config(retries={"total_max_attempts": 1}))
    kinesis.create_stream(StreamName=name, ShardCount=2)
    arn = kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamARN"]
    stack.client("s3").create_bucket(Bucket=name)
    firehose = stack.client("firehose")
    firehose.create_delivery_stream(
        DeliveryStreamName=name, DeliveryStreamType="KinesisStreamAsSource",
        KinesisStreamSourceConfiguration={"KinesisStreamARN": arn, "RoleARN": lambda_role},
        ExtendedS3DestinationConfiguration={
            "RoleARN": lambda_role, "BucketARN": f"arn:aws:s3:::{name}", "Prefix": "raw/",
            "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 60}})
    # the source reads from LATEST, taken at creation: wait for its first read before producing
    assert wait_until(lambda: stack.local.firehose.stats(name)["source"]["reads"] >= 1, 10, poll=0.02)
    yield name, kinesis
    firehose.delete_delivery_stream(DeliveryStreamName=name)
    kinesis.delete_stream(StreamName=name)


def record(i: int) -> bytes:
    return json.dumps({"id": i, "sensor": f"s-{i % 17}", "reading": i * 7 % 1000}).encode() + b"\n"


def s3_ids(stack, bucket: str) -> Counter:
    s3 = stack.client("s3")
    ids = Counter()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="raw/"):
        for obj in page.get("Contents", []):
            body = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
            ids.update(json.loads(line)["id"] for line in body.splitlines())
    return ids


def test_no_record_is_lost_and_duplicates_are_only_the_uncheckpointed_batch(stack, pipeline, frozen):
    name, kinesis = pipeline
    seen: list[tuple[str, int]] = []                   # (worker, record id) as the consumer processed them
    batches: dict[str, list[list[int]]] = {}
    crash_after = {"A": 3}                             # worker A dies after processing its 3rd batch

    def worker(worker_id: str) -> LeaseConsumer:
        def process(shard_id, records):
            ids = [json.loads(r["Data"])["id"] for r in records]
            batches.setdefault(worker_id, []).append(ids)
            seen.extend((worker_id, i) for i in ids)
            if len(batches[worker_id]) == crash_after.get(worker_id):
                raise Crash(worker_id)
        return LeaseConsumer(kinesis, stack.client("dynamodb"), name, f"{name}-app", worker_id, process,
                             clock=frozen.monotonic, batch_limit=1000)

    consumer, crashes = worker("A"), []

    def consume():
        nonlocal consumer
        try:
            return consumer.run_once()
        except Crash as crash:                         # the process is gone, with its leases and memory
            crashes.append(crash.args[0])
            consumer = worker("B")
            return None

    # -- the producer: as fast as PutRecords answers, resending what was refused
    pending, throttled, calls = list(range(N)), 0, 0
    while pending:
        batch, pending = pending[:500], pending[500:]
        answer = kinesis.put_records(StreamName=name, Records=[{"Data": record(i), "PartitionKey": str(i)}
                                                               for i in batch])
        calls += 1
        refused = [i for i, entry in zip(batch, answer["Records"]) if "ErrorCode" in entry]
        assert answer["FailedRecordCount"] == len(refused)
        assert {e["ErrorCode"] for e in answer["Records"] if "ErrorCode" in e} <= \
            {"ProvisionedThroughputExceededException"}
        throttled += len(refused)
        if refused:
            pending = refused + pending
            frozen.advance(BACKOFF_S)
            consume()
    assert throttled > 0                               # faster than 2 x 1,000 records/s: refused, then resent
    assert crashes == ["A"]

    # -- drain: a second of the clock at a time, until both readers have everything
    def firehose_in():
        return stack.local.firehose.stats(name)["records_in"]

    for _ in range(60):
        frozen.advance(1)
        last = consume()
        done = last is not None and last["records"] == 0 and last["throttled"] == 0 and last["blocked"] == 0
        if done and {i for _, i in seen} == set(range(N)) and wait_until(lambda: firehose_in() == N, 2, poll=0.02):
            break
    assert firehose_in() == N

    # -- Firehose: the interval (60 s of the clock) delivers what is buffered
    frozen.advance(60)
    assert stack.local.firehose.wait_idle(name, timeout=30)
    stats = stack.local.firehose.stats(name)
    assert stats["records_in"] == stats["records_delivered"] + stats["records_failed"] + stats["records_dropped"]
    assert (stats["records_delivered"], stats["records_failed"], stats["records_dropped"]) == (N, 0, 0)
    in_s3 = s3_ids(stack, name)
    assert set(in_s3) == set(range(N)) and set(in_s3.values()) == {1}      # exactly once in S3

    # -- the consumer: at least once; twice only the batch processed but not checkpointed
    by_id = Counter(i for _, i in seen)
    assert set(by_id) == set(range(N))
    crashed_batch = batches["A"][-1]
    duplicates = sorted(i for i, n in by_id.items() if n > 1)
    assert duplicates == sorted(crashed_batch) and max(by_id.values()) == 2
    assert len(seen) == N + len(crashed_batch)
    assert {w for w, i in seen if i in set(crashed_batch)} == {"A", "B"}    # A processed it, B replayed it
    table = consumer.leases()
    assert set(table["leaseOwner"]) == {"B"}
    print(f"\n{N} records, {calls} PutRecords calls, {throttled} entries refused and resent; "
          f"Firehose delivered {stats['records_delivered']} in {len(stats['deliveries'])} objects; "
          f"the consumer processed {len(seen)}: {len(duplicates)} twice (worker A's last batch, "
          f"processed but not checkpointed when it died)")
