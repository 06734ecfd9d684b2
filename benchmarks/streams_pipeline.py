"""Streams stand-in: records/s through Kinesis -> Firehose -> S3, and delivery latency by buffer setting.

Prints figures and ratios on this machine (never pass/fail):

1. **throughput**, on the real clock: ``--records`` records of about
   ``--size`` bytes (JSON lines, one partition key each) sent with
   PutRecords (500 a call, refused entries sent again) into a stream of
   ``--shards`` shards,

   - to a stream alone: PutRecords records/s;
   - to a stream read by a Firehose delivery stream (Kinesis source, S3
     destination, ``SizeInMBs`` 1, ``IntervalInSeconds`` 1): records/s from the
     first PutRecords to the last record delivered to S3 (checked by reading
     the objects back), and that rate over PutRecords alone;

2. **delivery latency by buffer setting** (DirectPut streams, S3 destination):

   - ``IntervalInSeconds`` 0 on the real clock: seconds from PutRecordBatch to
     the object in S3 (median of 5);
   - ``IntervalInSeconds`` 60 and 300 on the stack's frozen clock, advanced one
     second at a time: simulated seconds until the buffer is delivered, over
     the setting, and the real seconds the delivery took once due;
   - ``SizeInMBs`` 1 and 5 with a fixed record rate (1,000 records of 1 KiB per
     simulated second, ``IntervalInSeconds`` 900 so that only size cuts):
     simulated seconds until the first object, side by side.

Flink checkpoint recovery (a TaskManager killed and a job restored from its
last checkpoint) is measured by ``benchmarks/flink_cluster.py``, not here.

Usage: ``.venv/bin/python benchmarks/streams_pipeline.py [--records 50000] [--size 200] [--shards 16]``

16 shards take 16,000 records/s, more than one local producer reached on 2
cores, so the figure is the machine's; with fewer shards their write limit
may refuse entries (the output counts them).

The machine is shared: timings include whatever else runs; the load average
is printed before and after. Everything runs in one local stack, stopped at
the end (with every thread and process it started).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import time
import uuid

import pandas as pd
from botocore.config import Config

import _results
import localaws
from localaws.core.waiting import wait_until

ROLE_POLICY = json.dumps({"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"Service": "firehose.amazonaws.com"}, "Action": "sts:AssumeRole"}]})


def record(i: int, size: int) -> bytes:
    """A JSON line of about ``size`` bytes."""
    head = json.dumps({"id": i, "sensor": f"s-{i % 97}", "pad": ""})
    return (head[:-2] + "x" * max(0, size - len(head) - 1) + '"}\n').encode()


def put_all(kinesis, stream: str, count: int, size: int) -> tuple[float, int, int]:
    """PutRecords everything, 500 a call, sending refused entries again after a short back-off
    (as any producer must). Returns (seconds, calls, entries refused)."""
    pending, calls, refused = list(range(count)), 0, 0
    started = time.perf_counter()
    while pending:
        batch, pending = pending[:500], pending[500:]
        answer = kinesis.put_records(StreamName=stream, Records=[{"Data": record(i, size), "PartitionKey": str(i)}
                                                                 for i in batch])
        calls += 1
        failed = [i for i, entry in zip(batch, answer["Records"]) if "ErrorCode" in entry]
        if failed:
            refused += len(failed)
            pending = failed + pending
            time.sleep(0.05)            # the producer's back-off: the shards refill on the real clock
    return time.perf_counter() - started, calls, refused


def s3_records(s3, bucket: str, prefix: str) -> tuple[int, int, int]:
    """(objects, records, distinct ids) under ``prefix``."""
    objects, ids, lines = 0, set(), 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            objects += 1
            for line in s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read().splitlines():
                lines += 1
                ids.add(json.loads(line)["id"])
    return objects, lines, len(ids)


def throughput(stack, role: str, bucket: str, count: int, size: int, shards: int) -> list[tuple]:
    kinesis = stack.client("kinesis", config=Config(retries={"total_max_attempts": 1}))
    firehose, s3 = stack.client("firehose"), stack.client("s3")
    alone, piped = f"bench-put-{uuid.uuid4().hex[:6]}", f"bench-pipe-{uuid.uuid4().hex[:6]}"
    for name in (alone, piped):
        kinesis.create_stream(StreamName=name, ShardCount=shards)
    put_s, put_calls, put_refused = put_all(kinesis, alone, count, size)

    arn = kinesis.describe_stream_summary(StreamName=piped)["StreamDescriptionSummary"]["StreamARN"]
    firehose.create_delivery_stream(
        DeliveryStreamName=piped, DeliveryStreamType="KinesisStreamAsSource",
        KinesisStreamSourceConfiguration={"KinesisStreamARN": arn, "RoleARN": role},
        ExtendedS3DestinationConfiguration={"RoleARN": role, "BucketARN": f"arn:aws:s3:::{bucket}",
                                            "Prefix": "pipe/", "BufferingHints": {"SizeInMBs": 1,
                                                                                  "IntervalInSeconds": 1}})
    stats = lambda: stack.local.firehose.stats(piped)         # noqa: E731
    assert wait_until(lambda: stats()["source"]["reads"] >= 1, 30, poll=0.02)    # reading from LATEST
    started = time.perf_counter()
    pipe_put_s, pipe_calls, pipe_refused = put_all(kinesis, piped, count, size)
    assert wait_until(lambda: stats()["records_delivered"] >= count, 600, poll=0.05), stats()
    end_to_end_s = time.perf_counter() - started
    objects, lines, distinct = s3_records(s3, bucket, "pipe/")
    assert lines == distinct == count, (lines, distinct)
    put_rate, pipe_rate = count / put_s, count / end_to_end_s
    print(f"1. {count:,} records of {size} bytes, {shards} shards (their write limit: "
          f"{shards * 1000:,} records/s and {shards} MiB/s)")
    print(f"   PutRecords alone: {put_s:.1f} s, {put_rate:,.0f} records/s "
          f"({put_calls} calls, {put_refused:,} entries refused and resent)")
    print(f"   Kinesis -> Firehose -> S3: {end_to_end_s:.1f} s from the first PutRecords to the last record "
          f"in S3 ({pipe_put_s:.1f} s of PutRecords, {pipe_calls} calls, {pipe_refused:,} refused), "
          f"{pipe_rate:,.0f} records/s in {objects} objects, {lines:,} records read back, each once")
    print(f"   end to end / PutRecords alone = {pipe_rate / put_rate:.2f}")
    _results.record("streams_pipeline", "records/s: Kinesis -> Firehose -> S3 / PutRecords alone",
                    pipe_rate / put_rate, note=f"{pipe_rate:,.0f} / {put_rate:,.0f} records/s, {shards} shards")
    _results.record("streams_pipeline", "PutRecords alone", put_rate, unit="records/s")
    return [("throughput", "PutRecords alone", f"{put_rate:,.0f} records/s"),
            ("throughput", "Kinesis -> Firehose -> S3", f"{pipe_rate:,.0f} records/s")]


def direct_stream(stack, role: str, bucket: str, size_mb: int, interval: int) -> str:
    name = f"bench-buf-{uuid.uuid4().hex[:6]}"
    stack.client("firehose").create_delivery_stream(
        DeliveryStreamName=name, DeliveryStreamType="DirectPut",
        ExtendedS3DestinationConfiguration={"RoleARN": role, "BucketARN": f"arn:aws:s3:::{bucket}",
                                            "Prefix": f"{name}/", "BufferingHints": {
                                                "SizeInMBs": size_mb, "IntervalInSeconds": interval}})
    return name


def put_batch(stack, name: str, count: int, size: int) -> None:
    stack.client("firehose").put_record_batch(DeliveryStreamName=name,
                                              Records=[{"Data": record(i, size)} for i in range(count)])


def zero_interval(stack, role: str, bucket: str, runs: int = 5) -> dict:
    """IntervalInSeconds 0 on the real clock: seconds from PutRecordBatch to the object written."""
    spans = []
    for _ in range(runs):
        name = direct_stream(stack, role, bucket, 1, 0)
        started = time.perf_counter()
        put_batch(stack, name, 100, 200)
        assert wait_until(lambda: stack.local.firehose.stats(name)["records_delivered"] == 100, 30, poll=0.005)
        spans.append(time.perf_counter() - started)
    return {"setting": "IntervalInSeconds 0 (real clock)", "expected_s": 0.0,
            "simulated_s": None, "real_s": statistics.median(spans)}


def simulated_until_cut(stack, name: str, step: float, feed=None, limit_s: float = 1000) -> tuple[float, float]:
    """Advance the frozen clock ``step`` at a time (calling ``feed()`` before each step, if given)
    until ``name`` cuts its first buffer. Returns (simulated seconds since the start, real seconds
    from the advance that made it due to the object written)."""
    clock = stack.local.clock
    stats = lambda: stack.local.firehose.stats(name)         # noqa: E731
    cut = lambda: stats()["in_flight"] > 0 or stats()["deliveries"]     # noqa: E731
    def delivered(due_at: float) -> tuple[float, float]:
        assert wait_until(lambda: stats()["deliveries"] and stats()["in_flight"] == 0, 30, poll=0.002)
        return clock.monotonic() - start, time.perf_counter() - due_at

    start = clock.monotonic()
    while clock.monotonic() - start < limit_s:
        if feed:
            due_at = time.perf_counter()
            feed()                                 # the size trigger cuts inside the put that fills the buffer
            if cut():
                return delivered(due_at)
        clock.advance(step)
        due_at = time.perf_counter()
        if wait_until(cut, 0.05, poll=0.002):      # the interval trigger: the flusher thread wakes on advance
            return delivered(due_at)
    raise AssertionError(f"{name}: nothing delivered in {limit_s} simulated seconds")


def interval_latency(stack, role: str, bucket: str, interval: int) -> dict:
    name = direct_stream(stack, role, bucket, 128, interval)
    put_batch(stack, name, 100, 200)
    simulated, real = simulated_until_cut(stack, name, 1.0)
    return {"setting": f"IntervalInSeconds {interval} (frozen clock)", "expected_s": float(interval),
            "simulated_s": simulated, "real_s": real}


def size_latency(stack, role: str, bucket: str, size_mb: int, per_second: int = 1000) -> dict:
    """Records of 1 KiB arriving at ``per_second`` a second of the frozen clock, interval 900 s."""
    name = direct_stream(stack, role, bucket, size_mb, 900)
    step, per_step = 0.1, per_second // 10
    simulated, real = simulated_until_cut(stack, name, step, feed=lambda: put_batch(stack, name, per_step, 1024))
    size = stack.local.firehose.stats(name)["deliveries"][0]
    expected = size_mb * 2**20 / (per_second * 1024)
    return {"setting": f"SizeInMBs {size_mb}, {per_second:,} x 1 KiB records/s (frozen clock)",
            "expected_s": expected, "simulated_s": simulated, "real_s": real, "records": size["records"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=50_000)
    parser.add_argument("--size", type=int, default=200)
    parser.add_argument("--shards", type=int, default=16)
    args = parser.parse_args()
    print(f"{os.cpu_count()} cores; load average {os.getloadavg()}")
    stack = localaws.start()
    try:
        role = stack.client("iam").create_role(RoleName="bench-firehose",
                                               AssumeRolePolicyDocument=ROLE_POLICY)["Role"]["Arn"]
        bucket = f"bench-streams-{uuid.uuid4().hex[:6]}"
        stack.client("s3").create_bucket(Bucket=bucket)
        throughput(stack, role, bucket, args.records, args.size, args.shards)

        rows = [zero_interval(stack, role, bucket)]
        stack.local.clock.freeze()
        try:
            rows += [interval_latency(stack, role, bucket, s) for s in (60, 300)]
            rows += [size_latency(stack, role, bucket, mb) for mb in (1, 5)]
        finally:
            stack.local.clock.resume()
        table = pd.DataFrame(rows)
        table["simulated / expected"] = [s / e if s is not None and e else None
                                         for s, e in zip(table["simulated_s"], table["expected_s"])]
        print("\n2. delivery latency by buffer setting (simulated: seconds of the stack's clock until the "
              "buffer was cut; real: wall seconds of the delivery once due)")
        print(table.drop(columns=["records"]).to_string(index=False, na_rep="-", float_format=lambda v: f"{v:,.2f}"))
        by = dict(zip(table["setting"], table["simulated_s"]))
        i60, i300 = (by[f"IntervalInSeconds {s} (frozen clock)"] for s in (60, 300))
        s1, s5 = (by[f"SizeInMBs {mb}, 1,000 x 1 KiB records/s (frozen clock)"] for mb in (1, 5))
        print(f"   interval 300 / interval 60 = {i300 / i60:.2f} (settings: {300 / 60:.2f}); "
              f"size 5 MiB / size 1 MiB = {s5 / s1:.2f} (settings: {5 / 1:.2f}); records per object "
              f"{int(table['records'].iloc[3])} / {int(table['records'].iloc[4])}")
        _results.record("streams_pipeline", "delivery, simulated s: IntervalInSeconds 300 / 60", i300 / i60,
                        note=f"{i300:.0f} / {i60:.0f} s; the settings' ratio is {300 / 60:.2f}")
        _results.record("streams_pipeline", "delivery, simulated s: SizeInMBs 5 / 1", s5 / s1,
                        note=f"{s5:.1f} / {s1:.1f} s; the settings' ratio is {5 / 1:.2f}")
        _results.record("streams_pipeline", "IntervalInSeconds 0: PutRecordBatch -> object in S3 (median of 5)",
                        rows[0]["real_s"], unit="s")
    finally:
        stack.stop()
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
