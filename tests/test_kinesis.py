"""Kinesis Data Streams: what moto already did right, and the data plane on top of it.

Ordering per key across SplitShard/MergeShards/UpdateShardCount, iterators
that end on a closed shard, per-shard throttling on a frozen clock, retention
on the stack's clock, and the CloudWatch metrics the course reads. The bad
inputs and their AWS error shapes are in ``test_kinesis_limits.py``.
"""
from __future__ import annotations

import uuid
from datetime import timedelta

import botocore.exceptions
import pytest
from botocore.config import Config

from localaws.core.waiting import wait_until
from localaws.kinesis import engine

MiB = 1024 * 1024


# ------------------------------------------------------------------ fixtures (shared with test_kinesis_limits)
@pytest.fixture
def strict(stack):
    """A Kinesis client that does not retry throttles (botocore would retry them 4 times)."""
    return stack.client("kinesis", config=Config(retries={"total_max_attempts": 1}))


@pytest.fixture
def kinesis(stack):
    """A consumer that keeps to 5 GetRecords calls a second per shard: before each call it
    waits 200 ms on the stack's clock (instantly: it advances the clock)."""
    client = stack.client("kinesis", config=Config(retries={"total_max_attempts": 1}))
    client.meta.events.register("before-call.kinesis.GetRecords", lambda **_: stack.local.clock.advance(0.2))
    return client


@pytest.fixture
def make_stream(kinesis):
    """``make_stream(shards=1, **create_stream_kwargs)`` -> the name of a new stream, deleted after the test."""
    made = []

    def make(shards=1, **kwargs):
        name = f"t-{uuid.uuid4().hex[:10]}"
        if kwargs.get("StreamModeDetails", {}).get("StreamMode") != "ON_DEMAND":
            kwargs["ShardCount"] = shards
        kinesis.create_stream(StreamName=name, **kwargs)
        made.append(name)
        return name
    yield make
    for name in made:
        try:
            kinesis.delete_stream(StreamName=name)
        except kinesis.exceptions.ResourceNotFoundException:
            pass


def aws_error(info) -> tuple[str, str]:
    """(code, message) of a ClientError, after checking it is a 400, not a traceback page."""
    err = info.value.response
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 400
    return err["Error"]["Code"], err["Error"]["Message"]


def read_shard(kinesis, name, shard_id, kind="TRIM_HORIZON", **kwargs):
    """Every record of one shard from ``kind``, and the last GetRecords answer."""
    iterator = kinesis.get_shard_iterator(StreamName=name, ShardId=shard_id, ShardIteratorType=kind,
                                          **kwargs)["ShardIterator"]
    records = []
    while True:
        answer = kinesis.get_records(ShardIterator=iterator)
        records += answer["Records"]
        iterator = answer.get("NextShardIterator")
        if iterator is None or not answer["Records"]:
            return records, answer


def shards(kinesis, name):
    return {s["ShardId"]: s for s in kinesis.list_shards(StreamName=name)["Shards"]}


# ------------------------------------------------------------------ what moto already does right
def test_records_round_trip_in_order_with_growing_sequence_numbers(kinesis, make_stream):
    name = make_stream()
    put = [kinesis.put_record(StreamName=name, Data=f"r{i}".encode(), PartitionKey="k") for i in range(5)]
    records, last = read_shard(kinesis, name, "shardId-000000000000")
    assert [r["Data"] for r in records] == [f"r{i}".encode() for i in range(5)]
    assert [r["SequenceNumber"] for r in records] == [p["SequenceNumber"] for p in put]
    numbers = [int(p["SequenceNumber"]) for p in put]
    assert numbers == sorted(numbers) and len(set(numbers)) == 5 and len(put[0]["SequenceNumber"]) == 56
    assert last["MillisBehindLatest"] == 0 and last["NextShardIterator"]   # open shard: the iterator goes on
    assert all(r["PartitionKey"] == "k" and r["ApproximateArrivalTimestamp"] for r in records)


def test_a_partition_key_always_lands_in_the_shard_owning_its_md5(kinesis, make_stream):
    name = make_stream(4)
    ranges = {sid: (int(s["HashKeyRange"]["StartingHashKey"]), int(s["HashKeyRange"]["EndingHashKey"]))
              for sid, s in shards(kinesis, name).items()}
    assert sorted(ranges.values())[0][0] == 0 and sorted(ranges.values())[-1][1] == 2 ** 128 - 1
    for key in ["sensor-001", "sensor-007", "sensor-013", "éàü"]:
        got = {kinesis.put_record(StreamName=name, Data=b"x", PartitionKey=key)["ShardId"] for _ in range(3)}
        (shard_id,) = got
        low, high = ranges[shard_id]
        assert low <= engine.hash_key(key, None) <= high


def test_explicit_hash_keys_reach_both_ends_of_a_shard(kinesis, make_stream):
    """moto missed each shard's last hash key (a traceback); both ends belong to the shard."""
    name = make_stream(2)
    s0, s1 = shards(kinesis, name).values()
    for shard in (s0, s1):
        for key in (shard["HashKeyRange"]["StartingHashKey"], shard["HashKeyRange"]["EndingHashKey"]):
            put = kinesis.put_record(StreamName=name, Data=b"x", PartitionKey="p", ExplicitHashKey=key)
            assert put["ShardId"] == shard["ShardId"]


def test_at_and_after_sequence_number_and_latest_iterators(kinesis, make_stream):
    name = make_stream()
    put = [kinesis.put_record(StreamName=name, Data=f"r{i}".encode(), PartitionKey="k") for i in range(4)]
    shard = "shardId-000000000000"
    at, _ = read_shard(kinesis, name, shard, "AT_SEQUENCE_NUMBER", StartingSequenceNumber=put[1]["SequenceNumber"])
    after, _ = read_shard(kinesis, name, shard, "AFTER_SEQUENCE_NUMBER",
                          StartingSequenceNumber=put[1]["SequenceNumber"])
    assert [r["Data"] for r in at] == [b"r1", b"r2", b"r3"] and [r["Data"] for r in after] == [b"r2", b"r3"]
    latest = kinesis.get_shard_iterator(StreamName=name, ShardId=shard, ShardIteratorType="LATEST")["ShardIterator"]
    assert kinesis.get_records(ShardIterator=latest)["Records"] == []
    kinesis.put_record(StreamName=name, Data=b"new", PartitionKey="k")
    assert [r["Data"] for r in kinesis.get_records(ShardIterator=latest)["Records"]] == [b"new"]


def test_at_timestamp_iterator_on_the_stack_clock(kinesis, make_stream, frozen):
    name = make_stream()
    kinesis.put_record(StreamName=name, Data=b"early", PartitionKey="k")
    frozen.advance(60)
    middle = frozen.now()
    frozen.advance(60)
    kinesis.put_record(StreamName=name, Data=b"late", PartitionKey="k")
    records, _ = read_shard(kinesis, name, "shardId-000000000000", "AT_TIMESTAMP", Timestamp=middle)
    assert [r["Data"] for r in records] == [b"late"]


def test_retention_tags_consumers_and_describe(kinesis, make_stream):
    name = make_stream(2, Tags={"team": "analytics"})
    assert kinesis.list_tags_for_stream(StreamName=name)["Tags"] == [{"Key": "team", "Value": "analytics"}]
    kinesis.increase_stream_retention_period(StreamName=name, RetentionPeriodHours=48)
    summary = kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
    assert summary["RetentionPeriodHours"] == 48 and summary["OpenShardCount"] == 2
    assert summary["MaxRecordSizeInKiB"] == 1024
    arn = summary["StreamARN"]
    consumer = kinesis.register_stream_consumer(StreamARN=arn, ConsumerName="app")["Consumer"]
    assert consumer["ConsumerName"] == "app"
    assert [c["ConsumerName"] for c in kinesis.list_stream_consumers(StreamARN=arn)["Consumers"]] == ["app"]


def test_on_demand_streams_have_4_shards_and_no_manual_resharding(kinesis, make_stream):
    name = make_stream(StreamModeDetails={"StreamMode": "ON_DEMAND"})
    assert len(shards(kinesis, name)) == 4
    with pytest.raises(kinesis.exceptions.ClientError) as info:
        kinesis.split_shard(StreamName=name, ShardToSplit="shardId-000000000000", NewStartingHashKey="100")
    assert aws_error(info) == ("ValidationException", f"Request is invalid. Stream {name} under account "
                                                      "123456789012 is in On-Demand mode.")
    with pytest.raises(kinesis.exceptions.ClientError) as info:
        kinesis.update_shard_count(StreamName=name, TargetShardCount=8, ScalingType="UNIFORM_SCALING")
    assert aws_error(info)[0] == "ValidationException"


# ------------------------------------------------------------------ resharding keeps per-key order
def test_split_closes_the_parent_which_keeps_its_records_and_ends(kinesis, make_stream):
    name = make_stream()
    before = [kinesis.put_record(StreamName=name, Data=f"b{i}".encode(), PartitionKey="key") for i in range(3)]
    kinesis.split_shard(StreamName=name, ShardToSplit="shardId-000000000000", NewStartingHashKey=str(2 ** 127))
    after = [kinesis.put_record(StreamName=name, Data=f"a{i}".encode(), PartitionKey="key") for i in range(3)]
    child = after[0]["ShardId"]
    assert child != "shardId-000000000000" and {a["ShardId"] for a in after} == {child}
    assert min(int(a["SequenceNumber"]) for a in after) > max(int(b["SequenceNumber"]) for b in before)

    parent_records, end = read_shard(kinesis, name, "shardId-000000000000")
    assert [r["Data"] for r in parent_records] == [b"b0", b"b1", b"b2"]          # nothing moved, nothing added
    assert end.get("NextShardIterator") is None                                 # the closed shard ends here
    assert sorted(c["ShardId"] for c in end["ChildShards"]) == ["shardId-000000000001", "shardId-000000000002"]
    assert all(c["ParentShards"] == ["shardId-000000000000"] for c in end["ChildShards"])
    child_records, _ = read_shard(kinesis, name, child)
    assert [r["Data"] for r in parent_records + child_records] == [b"b0", b"b1", b"b2", b"a0", b"a1", b"a2"]

    listed = shards(kinesis, name)
    parent_range = listed["shardId-000000000000"]["SequenceNumberRange"]
    assert int(parent_range["EndingSequenceNumber"]) >= int(before[-1]["SequenceNumber"])
    assert "EndingSequenceNumber" not in listed[child]["SequenceNumberRange"]
    assert kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["OpenShardCount"] == 2


def test_merge_keeps_both_parents_records_and_orders_the_child_after_them(kinesis, make_stream):
    name = make_stream(2)
    low, high = "shardId-000000000000", "shardId-000000000001"
    keys = {}      # one key per shard
    for i in range(50):
        keys.setdefault(kinesis.put_record(StreamName=name, Data=b"probe", PartitionKey=f"k{i}")["ShardId"], f"k{i}")
    for shard_id, key in keys.items():
        kinesis.put_record(StreamName=name, Data=f"{key}-before".encode(), PartitionKey=key)
    kinesis.merge_shards(StreamName=name, ShardToMerge=low, AdjacentShardToMerge=high)
    for key in keys.values():
        assert kinesis.put_record(StreamName=name, Data=f"{key}-after".encode(),
                                  PartitionKey=key)["ShardId"] == "shardId-000000000002"
    for shard_id, key in keys.items():
        parent, end = read_shard(kinesis, name, shard_id)
        assert parent[-1]["Data"] == f"{key}-before".encode() and end.get("NextShardIterator") is None
        assert end["ChildShards"] == [{"ShardId": "shardId-000000000002", "ParentShards": [low, high],
                                       "HashKeyRange": {"StartingHashKey": "0",
                                                        "EndingHashKey": str(2 ** 128 - 1)}}]
    child, _ = read_shard(kinesis, name, "shardId-000000000002")
    assert sorted(r["Data"] for r in child) == sorted(f"{k}-after".encode() for k in keys.values())
    assert all(int(r["SequenceNumber"]) > int(parent[-1]["SequenceNumber"]) for r in child)


def test_update_shard_count_then_read_parents_before_children(kinesis, make_stream):
    """The reader a KCL-style consumer is: drain each shard before its children, per key in order."""
    name = make_stream(2)
    sent = {f"dev-{i}": [] for i in range(6)}

    def send(round_):
        for key in sent:
            kinesis.put_record(StreamName=name, Data=f"{key}:{round_}".encode(), PartitionKey=key)
            sent[key].append(f"{key}:{round_}")
    send(0)
    assert kinesis.update_shard_count(StreamName=name, TargetShardCount=4,
                                      ScalingType="UNIFORM_SCALING")["TargetShardCount"] == 4
    send(1)
    kinesis.update_shard_count(StreamName=name, TargetShardCount=3, ScalingType="UNIFORM_SCALING")
    send(2)
    listed = shards(kinesis, name)
    assert sum("EndingSequenceNumber" not in s["SequenceNumberRange"] for s in listed.values()) == 3

    got = {key: [] for key in sent}
    done, todo = set(), [sid for sid, s in listed.items() if "ParentShardId" not in s]
    while todo:
        shard_id = todo.pop(0)
        parents = {listed[shard_id].get("ParentShardId"), listed[shard_id].get("AdjacentParentShardId")} - {None}
        if not parents <= done:
            todo.append(shard_id)
            continue
        records, end = read_shard(kinesis, name, shard_id)
        for r in records:
            key, _ = r["Data"].decode().split(":")
            got[key].append(r["Data"].decode())
        done.add(shard_id)
        todo += [c["ShardId"] for c in end.get("ChildShards", []) if c["ShardId"] not in done | set(todo)]
    assert got == sent


def test_latest_on_a_closed_shard_is_at_its_end(kinesis, make_stream):
    name = make_stream()
    kinesis.put_record(StreamName=name, Data=b"x", PartitionKey="k")
    kinesis.split_shard(StreamName=name, ShardToSplit="shardId-000000000000", NewStartingHashKey="1000")
    it = kinesis.get_shard_iterator(StreamName=name, ShardId="shardId-000000000000",
                                    ShardIteratorType="LATEST")["ShardIterator"]
    answer = kinesis.get_records(ShardIterator=it)
    assert answer["Records"] == [] and answer.get("NextShardIterator") is None and len(answer["ChildShards"]) == 2


# ------------------------------------------------------------------ throughput on a frozen clock
def test_a_shard_takes_1000_records_a_second(strict, make_stream, frozen):
    name, other = make_stream(), make_stream()
    for _ in range(2):
        answer = strict.put_records(StreamName=name, Records=[{"Data": b"x", "PartitionKey": "k"}] * 500)
        assert answer["FailedRecordCount"] == 0
    with pytest.raises(strict.exceptions.ProvisionedThroughputExceededException) as info:
        strict.put_record(StreamName=name, Data=b"x", PartitionKey="k")
    assert aws_error(info) == ("ProvisionedThroughputExceededException",
                               f"Rate exceeded for shard shardId-000000000000 in stream {name} "
                               "under account 123456789012.")
    strict.put_record(StreamName=other, Data=b"x", PartitionKey="k")       # every stream its own shards
    frozen.advance(0.5)                                                     # 500 records' worth refills
    answer = strict.put_records(StreamName=name, Records=[{"Data": b"y", "PartitionKey": "k"}] * 500)
    assert answer["FailedRecordCount"] == 0
    answer = strict.put_records(StreamName=name, Records=[{"Data": b"z", "PartitionKey": "k"}] * 2)
    assert answer["FailedRecordCount"] == 2 and all("ErrorCode" in r for r in answer["Records"])
    stored, _ = read_shard(strict, name, "shardId-000000000000")
    assert len(stored) == 1500                                   # the refused record was not stored


def test_a_shard_takes_1_mib_a_second_and_put_records_fails_per_record(kinesis, make_stream, frozen):
    name = make_stream(2)
    s0, s1 = shards(kinesis, name).values()
    key0, key1 = s0["HashKeyRange"]["StartingHashKey"], s1["HashKeyRange"]["StartingHashKey"]
    big = b"x" * (600 * 1024)
    answer = kinesis.put_records(StreamName=name, Records=[
        {"Data": big, "PartitionKey": "a", "ExplicitHashKey": key0},
        {"Data": big, "PartitionKey": "b", "ExplicitHashKey": key0},     # 1.2 MiB in shard 0: refused
        {"Data": big, "PartitionKey": "c", "ExplicitHashKey": key1},     # shard 1 has its own MiB
    ])
    first, second, third = answer["Records"]
    assert answer["FailedRecordCount"] == 1
    assert first["ShardId"] == s0["ShardId"] and third["ShardId"] == s1["ShardId"]
    assert second == {"ErrorCode": "ProvisionedThroughputExceededException",
                      "ErrorMessage": f"Rate exceeded for shard {s0['ShardId']} in stream {name} "
                                      "under account 123456789012."}
    frozen.advance(1)
    assert kinesis.put_record(StreamName=name, Data=big, PartitionKey="b", ExplicitHashKey=key0)


def test_get_records_5_calls_a_second_per_shard(strict, make_stream, frozen):
    name = make_stream()
    strict.put_record(StreamName=name, Data=b"x", PartitionKey="k")
    it = strict.get_shard_iterator(StreamName=name, ShardId="shardId-000000000000",
                                    ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    for _ in range(5):
        it = strict.get_records(ShardIterator=it)["NextShardIterator"]
    with pytest.raises(strict.exceptions.ProvisionedThroughputExceededException) as info:
        strict.get_records(ShardIterator=it)
    assert aws_error(info) == ("ProvisionedThroughputExceededException",
                               f"Rate exceeded for Shard - 123456789012/{name}/shardId-000000000000")
    frozen.advance(0.2)                                          # one call's worth
    it = strict.get_records(ShardIterator=it)["NextShardIterator"]
    with pytest.raises(strict.exceptions.ProvisionedThroughputExceededException):
        strict.get_records(ShardIterator=it)


def test_one_calls_worth_of_clock_is_one_call_despite_float_rounding():
    """At a monotonic reading of 847586.3032002954 s, 0.2 s later is 0.19999999995 s
    later in floating point; the bucket must still hold the fifth of a second's call."""
    start = 847586.3032002954
    assert (start + 0.2) - start < 0.2
    bucket = engine.TokenBucket(rate=5, capacity=5, now=start)
    bucket.spend(5)
    assert not bucket.has(1, start + 0.19)
    assert bucket.has(1, start + 0.2)


def test_a_big_read_overdraws_2_mib_a_second(strict, make_stream, frozen):
    """A 5 MiB record (allowed by MaxRecordSizeInKiB) comes back in one call; the shard
    then refuses reads until 2 MiB/s has paid it back."""
    name = make_stream(MaxRecordSizeInKiB=8192)
    strict.put_record(StreamName=name, Data=b"x" * (5 * MiB), PartitionKey="k")
    it = strict.get_shard_iterator(StreamName=name, ShardId="shardId-000000000000",
                                    ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    answer = strict.get_records(ShardIterator=it)
    assert len(answer["Records"][0]["Data"]) == 5 * MiB
    frozen.advance(1.4)         # 2 MiB - 5 MiB + 2.8 MiB < 0: still refused
    with pytest.raises(strict.exceptions.ProvisionedThroughputExceededException):
        strict.get_records(ShardIterator=answer["NextShardIterator"])
    frozen.advance(0.2)
    assert strict.get_records(ShardIterator=answer["NextShardIterator"])["Records"] == []


# ------------------------------------------------------------------ time: retention and iterators
def test_records_expire_after_the_retention_period(kinesis, make_stream, frozen):
    short, long_ = make_stream(), make_stream()
    kinesis.increase_stream_retention_period(StreamName=long_, RetentionPeriodHours=48)
    for name in (short, long_):
        kinesis.put_record(StreamName=name, Data=b"old", PartitionKey="k")
    frozen.advance(24 * 3600 + 1)
    kinesis.put_record(StreamName=short, Data=b"new", PartitionKey="k")
    assert [r["Data"] for r in read_shard(kinesis, short, "shardId-000000000000")[0]] == [b"new"]
    assert [r["Data"] for r in read_shard(kinesis, long_, "shardId-000000000000")[0]] == [b"old"]


def test_millis_behind_latest_counts_on_the_stack_clock(strict, make_stream, frozen):
    name = make_stream()
    strict.put_record(StreamName=name, Data=b"1", PartitionKey="k")
    frozen.advance(30)
    strict.put_record(StreamName=name, Data=b"2", PartitionKey="k")
    frozen.advance(10)
    it = strict.get_shard_iterator(StreamName=name, ShardId="shardId-000000000000",
                                    ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    first = strict.get_records(ShardIterator=it, Limit=1)
    assert first["MillisBehindLatest"] == 10_000           # the next unread record arrived 10 s ago
    assert strict.get_records(ShardIterator=first["NextShardIterator"])["MillisBehindLatest"] == 0


def test_unread_records_that_arrived_just_now_are_not_caught_up(strict, make_stream, frozen):
    """0 means caught up; on a frozen clock a record that arrived "now" is still unread."""
    name = make_stream()
    strict.put_records(StreamName=name, Records=[{"Data": b"x", "PartitionKey": "k"}] * 2)
    it = strict.get_shard_iterator(StreamName=name, ShardId="shardId-000000000000",
                                    ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    first = strict.get_records(ShardIterator=it, Limit=1)
    assert first["MillisBehindLatest"] >= 1
    assert strict.get_records(ShardIterator=first["NextShardIterator"])["MillisBehindLatest"] == 0


def test_an_empty_shard_closed_by_a_split_ends_at_or_after_its_start(kinesis, make_stream):
    name = make_stream()
    kinesis.split_shard(StreamName=name, ShardToSplit="shardId-000000000000",
                        NewStartingHashKey=str(2 ** 127))
    kinesis.update_shard_count(StreamName=name, TargetShardCount=1, ScalingType="UNIFORM_SCALING")
    for shard in kinesis.list_shards(StreamName=name)["Shards"]:
        numbers = shard["SequenceNumberRange"]
        if "EndingSequenceNumber" in numbers:
            assert int(numbers["EndingSequenceNumber"]) >= int(numbers["StartingSequenceNumber"]), shard


# ------------------------------------------------------------------ CloudWatch metrics
def metric(stack, name, metric_name, statistic="Sum"):
    """The stream's metric over the last 10 minutes of the stack's clock (Sum, or Maximum), or None."""
    cw = stack.client("cloudwatch")
    now = stack.local.clock.now()
    points = cw.get_metric_statistics(
        Namespace="AWS/Kinesis", MetricName=metric_name, Dimensions=[{"Name": "StreamName", "Value": name}],
        StartTime=now - timedelta(minutes=10), EndTime=now + timedelta(minutes=10), Period=60,
        Statistics=[statistic])["Datapoints"]
    values = [p[statistic] for p in points]
    return (sum(values) if statistic == "Sum" else max(values)) if values else None


def eventually(stack, name, metric_name, expected, statistic="Sum"):
    """Metrics reach CloudWatch a few milliseconds after the call (on AWS, about a minute): poll."""
    wait_until(lambda: metric(stack, name, metric_name, statistic) == expected, timeout=10, poll=0.05)
    return metric(stack, name, metric_name, statistic)


def test_metrics_are_published_per_stream(stack, strict, make_stream, frozen):
    name = make_stream()
    strict.put_record(StreamName=name, Data=b"12345", PartitionKey="abc")          # 8 bytes with the key
    strict.put_records(StreamName=name, Records=[{"Data": b"x" * 700_000, "PartitionKey": "k"},
                                                  {"Data": b"x" * 700_000, "PartitionKey": "k"}])  # 2nd refused
    frozen.advance(5)
    it = strict.get_shard_iterator(StreamName=name, ShardId="shardId-000000000000",
                                    ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    strict.get_records(ShardIterator=it)
    assert eventually(stack, name, "IncomingRecords", 2) == 2
    assert eventually(stack, name, "IncomingBytes", 8 + 700_001) == 8 + 700_001
    assert eventually(stack, name, "WriteProvisionedThroughputExceeded", 1) == 1
    assert eventually(stack, name, "GetRecords.IteratorAgeMilliseconds", 5000, "Maximum") == 5000
    assert eventually(stack, name, "GetRecords.Records", 2) == 2
    assert metric(stack, "t-no-such-stream", "IncomingRecords") is None


# ------------------------------------------------------------------ consumers
def test_a_lambda_mapping_gets_each_record_and_may_write_to_a_stream(kinesis, make_stream, create_function):
    """Lambda's poller reads the shard and invokes the function (``localaws/awslambda/streams.py``);
    a handler that writes to Kinesis itself does not deadlock the plane's lock."""
    source, sink = make_stream(), make_stream()
    lam = create_function(f"{source}-copy", (
        "import base64, boto3\n"
        "def handler(event, context):\n"
        "    k = boto3.client('kinesis')\n"
        "    for r in event['Records']:\n"
        f"        k.put_record(StreamName='{sink}', PartitionKey='p',\n"
        "                     Data=base64.b64decode(r['kinesis']['data']) + b'!')\n"), timeout=10)
    arn = kinesis.describe_stream_summary(StreamName=source)["StreamDescriptionSummary"]["StreamARN"]
    mapping = lam.create_event_source_mapping(FunctionName=f"{source}-copy", EventSourceArn=arn,
                                              StartingPosition="TRIM_HORIZON")["UUID"]
    try:
        kinesis.put_record(StreamName=source, Data=b"hello", PartitionKey="k")
        assert wait_until(lambda: read_shard(kinesis, sink, "shardId-000000000000")[0], 30)   # polled once a second
        assert [r["Data"] for r in read_shard(kinesis, sink, "shardId-000000000000")[0]] == [b"hello!"]
    finally:
        lam.delete_event_source_mapping(UUID=mapping)          # its poller ends with it
