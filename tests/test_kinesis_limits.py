"""Kinesis Data Streams: bad inputs get AWS's error code and message, and nothing is half-written.

Each case names what moto answered before the data plane (``localaws/kinesis``):
often a success, a bare ``partition_key`` message, or an ``InternalFailure``
naming a Python exception.
"""
from __future__ import annotations

import botocore.exceptions
import pytest
from botocore.config import Config

from test_kinesis import aws_error, kinesis, make_stream, read_shard, strict  # noqa: F401 (fixtures)

MiB = 1024 * 1024
SHARD = "shardId-000000000000"


def stored(kinesis, name):
    return read_shard(kinesis, name, SHARD)[0]


def refused(call, **kwargs) -> tuple[str, str]:
    with pytest.raises(botocore.exceptions.ClientError) as info:
        call(**kwargs)
    return aws_error(info)


# ------------------------------------------------------------------ record size
def test_a_record_over_1_mib_is_refused(kinesis, make_stream):
    """moto stored a 1.5 MiB record."""
    name = make_stream()
    code, message = refused(kinesis.put_record, StreamName=name, Data=b"x" * (MiB + 1), PartitionKey="k")
    assert (code, message) == ("ValidationException", "1 validation error detected: Value at 'data' failed to "
                               "satisfy constraint: Member must have length less than or equal to 1048576")
    assert stored(kinesis, name) == []


def test_the_partition_key_counts_towards_the_record_size(kinesis, make_stream):
    name = make_stream()
    assert refused(kinesis.put_record, StreamName=name, Data=b"x" * (MiB - 5),
                   PartitionKey="abcdef")[0] == "ValidationException"
    kinesis.put_record(StreamName=name, Data=b"x" * (MiB - 6), PartitionKey="abcdef")     # exactly 1 MiB


def test_max_record_size_can_be_raised_to_10_mib_per_stream(kinesis, make_stream):
    """MaxRecordSizeInKiB (CreateStream) and UpdateMaxRecordSize: moto ignored the one, lacked the other."""
    big, default = make_stream(MaxRecordSizeInKiB=2048), make_stream()
    kinesis.put_record(StreamName=big, Data=b"x" * (MiB + MiB // 2), PartitionKey="k")
    summary = kinesis.describe_stream_summary(StreamName=big)["StreamDescriptionSummary"]
    assert summary["MaxRecordSizeInKiB"] == 2048
    arn = kinesis.describe_stream_summary(StreamName=default)["StreamDescriptionSummary"]["StreamARN"]
    kinesis.update_max_record_size(StreamARN=arn, MaxRecordSizeInKiB=4096)
    kinesis.put_record(StreamName=default, Data=b"x" * (3 * MiB), PartitionKey="k")
    kinesis.update_max_record_size(StreamARN=arn, MaxRecordSizeInKiB=1024)
    code, message = refused(kinesis.put_record, StreamName=default, Data=b"x" * (2 * MiB), PartitionKey="k")
    assert code == "ValidationException" and message.endswith("less than or equal to 1048576")
    code, message = refused(kinesis.update_max_record_size, StreamARN=arn, MaxRecordSizeInKiB=10241)
    assert (code, message) == ("ValidationException", "1 validation error detected: Value '10241' at "
                               "'maxRecordSizeInKiB' failed to satisfy constraint: Member must have value "
                               "less than or equal to 10240")
    assert refused(kinesis.create_stream, StreamName="t-too-big", ShardCount=1,
                   MaxRecordSizeInKiB=20480)[0] == "ValidationException"
    assert refused(kinesis.update_max_record_size, MaxRecordSizeInKiB=2048,
                   StreamARN=arn.replace(default, "t-nope"))[0] == "ResourceNotFoundException"


# ------------------------------------------------------------------ PutRecords batches
def test_a_batch_of_501_records_is_refused_whole(kinesis, make_stream):
    name = make_stream()
    code, message = refused(kinesis.put_records, StreamName=name,
                            Records=[{"Data": b"x", "PartitionKey": "k"}] * 501)
    assert (code, message) == ("ValidationException", "1 validation error detected: Value at 'records' failed "
                               "to satisfy constraint: Member must have length less than or equal to 500")
    assert stored(kinesis, name) == []


def test_a_batch_over_10_mib_is_refused_whole(kinesis, make_stream):
    """10 MiB since the large-records launch (it was 5 MiB; moto still says 5)."""
    name = make_stream(8)
    records = [{"Data": b"x" * 1_000_000, "PartitionKey": f"k{i}"} for i in range(11)]
    assert refused(kinesis.put_records, StreamName=name, Records=records) == (
        "InvalidArgumentException", "Records size exceeds 10 MB limit")
    answer = kinesis.put_records(StreamName=name, Records=records[:6])    # 6 MB: over the old 5 MiB, fine now
    assert len(answer["Records"]) == 6


def test_one_oversized_record_refuses_the_whole_batch(kinesis, make_stream):
    name = make_stream()
    records = [{"Data": b"ok", "PartitionKey": "k"}, {"Data": b"x" * (MiB + 1), "PartitionKey": "k"},
               {"Data": b"ok", "PartitionKey": "k"}]
    code, message = refused(kinesis.put_records, StreamName=name, Records=records)
    assert code == "ValidationException"
    assert "'records.2.member.data'" in message and "less than or equal to 1048576" in message
    assert stored(kinesis, name) == []


# ------------------------------------------------------------------ partition and hash keys
def test_an_empty_partition_key_is_refused_by_botocore_then_by_the_service(stack, kinesis, make_stream):
    name = make_stream()
    with pytest.raises(botocore.exceptions.ParamValidationError):      # boto3 checks minimum lengths
        kinesis.put_record(StreamName=name, Data=b"x", PartitionKey="")
    raw = stack.client("kinesis", config=Config(parameter_validation=False, retries={"total_max_attempts": 1}))
    assert refused(raw.put_record, StreamName=name, Data=b"x", PartitionKey="") == (
        "ValidationException", "1 validation error detected: Value '' at 'partitionKey' failed to satisfy "
        "constraint: Member must have length greater than or equal to 1")
    code, message = refused(raw.put_records, StreamName=name, Records=[{"Data": b"x", "PartitionKey": "a"},
                                                                      {"Data": b"x", "PartitionKey": ""}])
    assert code == "ValidationException" and "'records.2.member.partitionKey'" in message
    assert stored(kinesis, name) == []


def test_a_partition_key_over_256_characters_is_refused(kinesis, make_stream):
    """moto: InvalidArgumentException 'partition_key'."""
    name = make_stream()
    code, message = refused(kinesis.put_record, StreamName=name, Data=b"x", PartitionKey="é" * 257)
    assert code == "ValidationException"
    assert message == ("1 validation error detected: Value '" + "é" * 257 + "' at 'partitionKey' failed to "
                       "satisfy constraint: Member must have length less than or equal to 256")
    kinesis.put_record(StreamName=name, Data=b"x", PartitionKey="é" * 256)     # characters, not bytes


def test_bad_explicit_hash_keys(kinesis, make_stream):
    """moto: 'explicit_hash_key', or InternalFailure (ValueError) for a non-number."""
    name = make_stream()
    assert refused(kinesis.put_record, StreamName=name, Data=b"x", PartitionKey="k", ExplicitHashKey="abc") == (
        "ValidationException", "1 validation error detected: Value 'abc' at 'explicitHashKey' failed to satisfy "
        "constraint: Member must satisfy regular expression pattern: 0|([1-9]\\d{0,38})")
    assert refused(kinesis.put_record, StreamName=name, Data=b"x", PartitionKey="k",
                   ExplicitHashKey=str(2 ** 128)) == (
        "InvalidArgumentException", "Invalid ExplicitHashKey. ExplicitHashKey must be in the range: "
        f"[0, 2^128-1]. Specified value was {2 ** 128}")
    assert refused(kinesis.put_records, StreamName=name, Records=[
        {"Data": b"x", "PartitionKey": "k"},
        {"Data": b"x", "PartitionKey": "k", "ExplicitHashKey": "-1"}])[0] == "ValidationException"
    assert stored(kinesis, name) == []


# ------------------------------------------------------------------ streams and shards that do not exist
def test_a_stream_that_does_not_exist(kinesis):
    message = "Stream t-nope under account 123456789012 not found."
    assert refused(kinesis.put_record, StreamName="t-nope", Data=b"x", PartitionKey="k") == (
        "ResourceNotFoundException", message)
    assert refused(kinesis.put_records, StreamName="t-nope", Records=[{"Data": b"x", "PartitionKey": "k"}]) == (
        "ResourceNotFoundException", message)
    assert refused(kinesis.get_shard_iterator, StreamName="t-nope", ShardId=SHARD,
                   ShardIteratorType="LATEST") == ("ResourceNotFoundException", message)


def test_a_shard_that_does_not_exist_and_a_stream_created_twice(kinesis, make_stream):
    name = make_stream()
    assert refused(kinesis.get_shard_iterator, StreamName=name, ShardId="shardId-000000000009",
                   ShardIteratorType="LATEST") == (
        "ResourceNotFoundException", f"Shard shardId-000000000009 in stream {name} under account "
        "123456789012 does not exist")
    assert refused(kinesis.create_stream, StreamName=name, ShardCount=1) == (
        "ResourceInUseException", f"Stream {name} under account 123456789012 already exists.")


# ------------------------------------------------------------------ iterators
def test_a_malformed_iterator(kinesis, make_stream):
    """moto: InternalFailure (binascii.Error)."""
    for garbage in ("not-an-iterator!!", "AAAAAAAAAAE=", "a2RzMXxub3BlfHNoYXJkfDF8Mg=="):
        assert refused(kinesis.get_records, ShardIterator=garbage) == (
            "InvalidArgumentException", "Invalid ShardIterator.")


def test_an_iterator_expires_after_5_minutes(strict, make_stream, frozen):
    name = make_stream()
    it = strict.get_shard_iterator(StreamName=name, ShardId=SHARD, ShardIteratorType="TRIM_HORIZON")
    frozen.advance(299)
    fresh = strict.get_records(ShardIterator=it["ShardIterator"])["NextShardIterator"]
    frozen.advance(2)
    code, message = refused(strict.get_records, ShardIterator=it["ShardIterator"])
    assert code == "ExpiredIteratorException"
    assert message.startswith("Iterator expired. The iterator was created at time ")
    assert message.endswith(" which is further in the future than the tolerated delay of 300000 milliseconds.")
    strict.get_records(ShardIterator=fresh)            # NextShardIterator is a new 5 minutes


def test_get_records_on_a_closed_shard_at_its_end(kinesis, make_stream):
    name = make_stream()
    kinesis.split_shard(StreamName=name, ShardToSplit=SHARD, NewStartingHashKey=str(2 ** 127))
    it = kinesis.get_shard_iterator(StreamName=name, ShardId=SHARD, ShardIteratorType="TRIM_HORIZON")
    answer = kinesis.get_records(ShardIterator=it["ShardIterator"])
    assert answer["Records"] == [] and "NextShardIterator" not in answer
    assert [c["ShardId"] for c in answer["ChildShards"]] == ["shardId-000000000001", "shardId-000000000002"]


def test_bad_iterator_requests(kinesis, make_stream):
    name = make_stream()
    code, message = refused(kinesis.get_shard_iterator, StreamName=name, ShardId=SHARD,
                            ShardIteratorType="TRIMHORIZON")
    assert code == "ValidationException" and "Member must satisfy enum value set" in message
    assert refused(kinesis.get_shard_iterator, StreamName=name, ShardId=SHARD,
                   ShardIteratorType="AT_SEQUENCE_NUMBER")[1].endswith(
        "Request specified AT_SEQUENCE_NUMBER and no StartingSequenceNumber.")
    assert refused(kinesis.get_shard_iterator, StreamName=name, ShardId=SHARD, ShardIteratorType="AT_SEQUENCE_NUMBER",
                   StartingSequenceNumber="12345")[0] == "InvalidArgumentException"
    it = kinesis.get_shard_iterator(StreamName=name, ShardId=SHARD, ShardIteratorType="LATEST")["ShardIterator"]
    assert refused(kinesis.get_records, ShardIterator=it, Limit=10001)[0] == "InvalidArgumentException"


# ------------------------------------------------------------------ throughput
def test_put_over_the_shard_write_rate(strict, make_stream, frozen):
    name = make_stream()
    strict.put_record(StreamName=name, Data=b"x" * (MiB - 1), PartitionKey="k")
    assert refused(strict.put_record, StreamName=name, Data=b"x", PartitionKey="k") == (
        "ProvisionedThroughputExceededException",
        f"Rate exceeded for shard {SHARD} in stream {name} under account 123456789012.")
    assert len(stored(strict, name)) == 1


def test_get_over_5_calls_a_second(strict, make_stream, frozen):
    name = make_stream()
    it = strict.get_shard_iterator(StreamName=name, ShardId=SHARD, ShardIteratorType="LATEST")["ShardIterator"]
    for _ in range(5):
        strict.get_records(ShardIterator=it)
    assert refused(strict.get_records, ShardIterator=it) == (
        "ProvisionedThroughputExceededException", f"Rate exceeded for Shard - 123456789012/{name}/{SHARD}")


# ------------------------------------------------------------------ resharding
def test_bad_resharding_requests(kinesis, make_stream):
    name = make_stream(3)
    assert refused(kinesis.merge_shards, StreamName=name, ShardToMerge="shardId-000000000000",
                   AdjacentShardToMerge="shardId-000000000002") == (
        "InvalidArgumentException", f"Shards shardId-000000000000 and shardId-000000000002 in stream {name} "
        "under account 123456789012 are not an adjacent pair of shards eligible for merging")
    kinesis.split_shard(StreamName=name, ShardToSplit=SHARD, NewStartingHashKey="1000")
    code, message = refused(kinesis.split_shard, StreamName=name, ShardToSplit=SHARD, NewStartingHashKey="2000")
    assert code == "InvalidArgumentException" and "has already been merged or split" in message
    assert refused(kinesis.split_shard, StreamName=name, ShardToSplit="shardId-000000000001",
                   NewStartingHashKey="1")[0] == "InvalidArgumentException"     # outside the shard's range
    assert refused(kinesis.update_shard_count, StreamName=name, TargetShardCount=9,
                   ScalingType="UNIFORM_SCALING") == (
        "LimitExceededException", "UpdateShardCount cannot scale up over double your current open shard "
        "count. Current open shard count: 4, Target shard count: 9")
    assert refused(kinesis.update_shard_count, StreamName=name, TargetShardCount=1,
                   ScalingType="UNIFORM_SCALING")[0] == "LimitExceededException"
