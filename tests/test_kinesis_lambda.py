"""Kinesis -> Lambda event source mappings, polled as AWS polls them (``localaws/awslambda/streams.py``).

Every test freezes the stack's clock: the mapping's poller reads its shards
once a second of that clock, so :func:`poll` (advance one second, wait for
the poll to finish) drives it one step at a time, deterministically.
"""
from __future__ import annotations

import base64
import json
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest

from localaws.core.waiting import wait_until

ROOT = Path(__file__).resolve().parents[1]

HANDLERS = '''
import base64, json

def echo(event, context):
    records = event["Records"]
    print("EVENT " + json.dumps(records[0]))
    return None

def fails(event, context):
    raise RuntimeError("cannot process " + str(len(event["Records"])) + " records")

def poison(event, context):
    for r in event["Records"]:
        if base64.b64decode(r["kinesis"]["data"]) == b"poison":
            raise ValueError("poison record " + r["kinesis"]["sequenceNumber"])

def partial(event, context):
    bad = [r["kinesis"]["sequenceNumber"] for r in event["Records"]
           if base64.b64decode(r["kinesis"]["data"]).startswith(b"bad")]
    return {"batchItemFailures": [{"itemIdentifier": s} for s in reversed(bad)]}
'''


# ------------------------------------------------------------------ helpers
@pytest.fixture(scope="module")
def functions(create_function):
    """One function per handler of HANDLERS: ``kl-echo``, ``kl-fails``, ``kl-poison``, ``kl-partial``."""
    for name in ("echo", "fails", "poison", "partial"):
        lam = create_function(f"kl-{name}", HANDLERS, f"app.{name}")
    return lam


@pytest.fixture
def make_stream(stack):
    """``make_stream(shards=1)`` -> (name, ARN) of a new stream, deleted after the test (mappings first)."""
    kinesis, lam, made = stack.client("kinesis"), stack.client("lambda"), []

    def make(shards=1):
        name = f"kl-{uuid.uuid4().hex[:8]}"
        kinesis.create_stream(StreamName=name, ShardCount=shards)
        arn = kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamARN"]
        made.append(arn)
        return name, arn
    yield make
    for arn in made:
        for m in lam.list_event_source_mappings(EventSourceArn=arn)["EventSourceMappings"]:
            lam.delete_event_source_mapping(UUID=m["UUID"])
        kinesis.delete_stream(StreamARN=arn)


@pytest.fixture
def queue(stack):
    """(URL, ARN) of a new SQS queue: an OnFailure destination."""
    sqs = stack.client("sqs")
    url = sqs.create_queue(QueueName=f"kl-dlq-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    yield url, arn
    sqs.delete_queue(QueueUrl=url)


def stats(stack, mapping_id):
    return stack.local.awslambda.stream_stats(mapping_id)


def settled(stack, mapping_id) -> None:
    """Wait until the poller has finished its poll and waits for the clock."""
    assert wait_until(lambda: stats(stack, mapping_id)["waiting"], 60, poll=0.02)


def poll(stack, mapping_id, times: int = 1) -> dict:
    """Advance the frozen clock one second ``times`` times, each time waiting for the poll to end."""
    for _ in range(times):
        settled(stack, mapping_id)
        before = stats(stack, mapping_id)["polls"]
        stack.local.clock.advance(1)
        assert wait_until(lambda: stats(stack, mapping_id)["polls"] > before
                          and stats(stack, mapping_id)["waiting"], 60, poll=0.02)
    return stats(stack, mapping_id)


def map_stream(stack, arn, function, **kwargs) -> str:
    """CreateEventSourceMapping, then wait for ``Enabled`` (its first poll done); the mapping's UUID."""
    kwargs.setdefault("StartingPosition", "TRIM_HORIZON")
    lam = stack.client("lambda")
    created = lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=function, **kwargs)
    assert created["State"] in ("Creating", "Enabled")
    mapping_id = created["UUID"]
    assert wait_until(lambda: lam.get_event_source_mapping(UUID=mapping_id)["State"] == "Enabled", 60, poll=0.05)
    settled(stack, mapping_id)
    return mapping_id


def put(stack, name, values, key="k") -> list[str]:
    kinesis = stack.client("kinesis")
    return [kinesis.put_record(StreamName=name, Data=v.encode() if isinstance(v, str) else v,
                               PartitionKey=key)["SequenceNumber"] for v in values]


def receive_all(stack, url) -> list[dict]:
    sqs = stack.client("sqs")
    out = []
    while True:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not got:
            return out
        out += [json.loads(m["Body"]) for m in got]
        for m in got:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


# ------------------------------------------------------------------ tests
def test_batches_of_batch_size_in_the_event_shape_aws_sends(stack, functions, frozen, make_stream,
                                                            log_messages, lambda_role):
    name, arn = make_stream()
    sequences = put(stack, name, [f"r{i}" for i in range(250)])
    mapping_id = map_stream(stack, arn, "kl-echo", BatchSize=100)
    s = poll(stack, mapping_id, 2)
    assert [b["size"] for b in s["batches"]] == [100, 100, 50]     # one GetRecords per shard per poll
    assert s["processed"] == sequences and s["records_processed"] == 250

    events = [json.loads(m[len("EVENT "):]) for m in log_messages("kl-echo") if m.startswith("EVENT ")]
    first = next(e for e in events if e["kinesis"]["sequenceNumber"] == sequences[0])
    assert set(first) == {"kinesis", "eventSource", "eventVersion", "eventID", "eventName",
                          "invokeIdentityArn", "awsRegion", "eventSourceARN"}
    assert first["eventSource"] == "aws:kinesis" and first["eventName"] == "aws:kinesis:record"
    assert first["eventID"] == f"shardId-000000000000:{sequences[0]}"
    assert first["eventSourceARN"] == arn and first["awsRegion"] == stack.region
    assert first["invokeIdentityArn"] == lambda_role
    k = first["kinesis"]
    assert k["kinesisSchemaVersion"] == "1.0" and k["partitionKey"] == "k"
    assert base64.b64decode(k["data"]) == b"r0"
    assert abs(k["approximateArrivalTimestamp"] - stack.local.clock.time()) < 60

    config = stack.client("lambda").get_event_source_mapping(UUID=mapping_id)
    assert config["BatchSize"] == 100 and config["StartingPosition"] == "TRIM_HORIZON"
    assert config["LastProcessingResult"] == "OK"
    assert config["MaximumRetryAttempts"] == -1 and config["MaximumRecordAgeInSeconds"] == -1
    assert config["ParallelizationFactor"] == 1 and config["BisectBatchOnFunctionError"] is False


def test_put_record_no_longer_invokes_inline(stack, functions, frozen, make_stream):
    name, arn = make_stream()
    mapping_id = map_stream(stack, arn, "kl-echo")
    put(stack, name, ["a", "b"])
    assert stats(stack, mapping_id)["invocations"] == 0       # nothing ran inside PutRecord
    assert poll(stack, mapping_id)["batches"][0]["size"] == 2  # the poller sends both, in one batch


def test_batching_window_gathers_records_on_the_stacks_clock(stack, functions, frozen, make_stream):
    name, arn = make_stream()
    mapping_id = map_stream(stack, arn, "kl-echo", BatchSize=100, MaximumBatchingWindowInSeconds=5)
    put(stack, name, ["a", "b", "c"])
    poll(stack, mapping_id)                        # read: the window opens
    assert poll(stack, mapping_id, 4)["invocations"] == 0
    s = poll(stack, mapping_id)                    # five seconds after the read
    assert s["invocations"] == 1 and s["batches"][0]["size"] == 3


def test_a_full_batch_does_not_wait_for_the_window(stack, functions, frozen, make_stream):
    name, arn = make_stream()
    put(stack, name, [str(i) for i in range(25)])
    mapping_id = map_stream(stack, arn, "kl-echo", BatchSize=10, MaximumBatchingWindowInSeconds=300)
    s = poll(stack, mapping_id, 2)      # 10 at once, 10 at the next poll; the last 5 wait for the window
    assert [b["size"] for b in s["batches"]] == [10, 10]


def test_starting_positions(stack, functions, frozen, make_stream):
    name, arn = make_stream()
    clock = stack.local.clock
    old = put(stack, name, ["old"])
    clock.advance(5)
    timestamp = clock.time()
    clock.advance(1)
    mid = put(stack, name, ["mid"])
    latest = map_stream(stack, arn, "kl-echo", StartingPosition="LATEST")
    new = put(stack, name, ["new"])
    horizon = map_stream(stack, arn, "kl-echo", StartingPosition="TRIM_HORIZON")
    at_time = map_stream(stack, arn, "kl-echo", StartingPosition="AT_TIMESTAMP",
                         StartingPositionTimestamp=timestamp)
    poll(stack, latest)
    for m in (horizon, at_time):
        settled(stack, m)
    assert stats(stack, latest)["processed"] == new
    assert stats(stack, at_time)["processed"] == mid + new
    assert stats(stack, horizon)["processed"] == old + mid + new


def test_a_failing_batch_is_retried_then_recorded_on_the_failure_queue(stack, functions, frozen, make_stream,
                                                                      queue):
    name, arn = make_stream()
    url, queue_arn = queue
    sequences = put(stack, name, ["x", "y", "z"])
    mapping_id = map_stream(stack, arn, "kl-fails", MaximumRetryAttempts=2,
                            DestinationConfig={"OnFailure": {"Destination": queue_arn}})
    assert stats(stack, mapping_id)["invocations"] == 1
    assert receive_all(stack, url) == []              # blocked, retrying: nothing skipped yet
    s = poll(stack, mapping_id, 2)                    # one retry per poll
    assert s["invocations"] == 3 and s["records_processed"] == 0 and s["records_discarded"] == 3
    config = stack.client("lambda").get_event_source_mapping(UUID=mapping_id)
    assert config["LastProcessingResult"] == "PROBLEM: Function call failed"

    [record] = receive_all(stack, url)
    fn_arn = stack.client("lambda").get_function(FunctionName="kl-fails")["Configuration"]["FunctionArn"]
    assert record["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 3
    assert record["requestContext"]["functionArn"] == fn_arn
    assert record["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST",
                                         "functionError": "Unhandled"}
    assert record["version"] == "1.0" and record["timestamp"].endswith("Z")
    info = record["KinesisBatchInfo"]
    assert info["shardId"] == "shardId-000000000000" and info["streamArn"] == arn
    assert (info["startSequenceNumber"], info["endSequenceNumber"], info["batchSize"]) == \
        (sequences[0], sequences[-1], 3)

    later = put(stack, name, ["w"])                   # the shard moved on
    assert poll(stack, mapping_id)["batches"][-1]["sequence_numbers"] == later


def test_bisect_on_error_isolates_the_poison_record(stack, functions, frozen, make_stream, queue):
    name, arn = make_stream()
    url, queue_arn = queue
    values = ["a", "b", "c", "d", "e", "poison", "g", "h"]
    sequences = put(stack, name, values)
    mapping_id = map_stream(stack, arn, "kl-poison", BisectBatchOnFunctionError=True, MaximumRetryAttempts=0,
                            DestinationConfig={"OnFailure": {"Destination": queue_arn}})
    s = stats(stack, mapping_id)
    poisoned = sequences[5]
    assert s["processed"] == [q for q in sequences if q != poisoned]
    assert s["records_discarded"] == 1 and s["bisections"] == 3
    [record] = receive_all(stack, url)
    info = record["KinesisBatchInfo"]
    assert (info["startSequenceNumber"], info["endSequenceNumber"], info["batchSize"]) == (poisoned, poisoned, 1)


def test_partial_batch_response_retries_from_the_first_failed_record(stack, functions, frozen, make_stream,
                                                                     queue):
    name, arn = make_stream()
    url, queue_arn = queue
    sequences = put(stack, name, ["a", "b", "bad-1", "c", "bad-2"])
    mapping_id = map_stream(stack, arn, "kl-partial", FunctionResponseTypes=["ReportBatchItemFailures"],
                            MaximumRetryAttempts=1, DestinationConfig={"OnFailure": {"Destination": queue_arn}})
    s = stats(stack, mapping_id)
    assert s["processed"] == sequences[:2]                 # checkpoint at the lowest reported number
    s = poll(stack, mapping_id)
    assert [b["sequence_numbers"] for b in s["batches"]] == [sequences, sequences[2:]]
    assert s["records_discarded"] == 3
    [record] = receive_all(stack, url)
    assert record["KinesisBatchInfo"]["startSequenceNumber"] == sequences[2]
    assert record["KinesisBatchInfo"]["batchSize"] == 3


def test_order_per_shard_and_each_record_processed_once(stack, functions, frozen, make_stream):
    name, arn = make_stream(shards=2)
    kinesis = stack.client("kinesis")
    by_shard: dict[str, list[str]] = {}
    for i in range(60):
        r = kinesis.put_record(StreamName=name, Data=str(i).encode(), PartitionKey=f"key-{i % 4}")
        by_shard.setdefault(r["ShardId"], []).append(r["SequenceNumber"])
    assert len(by_shard) == 2
    mapping_id = map_stream(stack, arn, "kl-echo", BatchSize=7)
    for _ in range(20):
        if stats(stack, mapping_id)["records_processed"] == 60:
            break
        poll(stack, mapping_id)
    s = poll(stack, mapping_id, 2)                         # more polls process nothing again
    assert s["records_processed"] == 60 and len(set(s["processed"])) == 60
    for shard, sequences in by_shard.items():
        batches = [b for b in s["batches"] if b["shard"] == shard]
        assert [q for b in batches for q in b["sequence_numbers"]] == sequences
        assert all(b["size"] <= 7 for b in batches)


def test_disable_enable_and_delete(stack, functions, frozen, make_stream):
    name, arn = make_stream()
    lam = stack.client("lambda")
    mapping_id = map_stream(stack, arn, "kl-echo")
    first = put(stack, name, ["one"])
    assert poll(stack, mapping_id)["processed"] == first

    assert lam.update_event_source_mapping(UUID=mapping_id, Enabled=False)["State"] in ("Disabling", "Disabled")
    assert wait_until(lambda: lam.get_event_source_mapping(UUID=mapping_id)["State"] == "Disabled", 30, poll=0.05)
    second = put(stack, name, ["two"])
    assert poll(stack, mapping_id)["processed"] == first          # paused
    assert lam.update_event_source_mapping(UUID=mapping_id, Enabled=True)["State"] in ("Enabling", "Enabled")
    assert wait_until(lambda: stats(stack, mapping_id)["processed"] == first + second, 30, poll=0.05)

    assert lam.delete_event_source_mapping(UUID=mapping_id)["State"] == "Deleting"
    assert not any(t.name == f"lambda-kinesis-{mapping_id[:8]}" for t in threading.enumerate())
    polls = stats(stack, mapping_id)["polls"]
    put(stack, name, ["three"])
    stack.local.clock.advance(5)
    assert stats(stack, mapping_id)["polls"] == polls
    assert stats(stack, mapping_id)["processed"] == first + second


def test_bad_parameters_are_refused_before_anything_is_recorded(stack, functions, make_stream):
    _, arn = make_stream()
    lam = stack.client("lambda")
    for kwargs, code in [({}, "InvalidParameterValueException"),
                         ({"StartingPosition": "TRIM_HORIZON", "BatchSize": 10_001}, "ValidationException"),
                         ({"StartingPosition": "LATEST", "MaximumRecordAgeInSeconds": 30}, "ValidationException"),
                         ({"StartingPosition": "LATEST", "MaximumBatchingWindowInSeconds": 301}, "ValidationException")]:
        with pytest.raises(lam.exceptions.ClientError) as info:
            lam.create_event_source_mapping(EventSourceArn=arn, FunctionName="kl-echo", **kwargs)
        assert info.value.response["Error"]["Code"] == code
    assert lam.list_event_source_mappings(EventSourceArn=arn)["EventSourceMappings"] == []


STOP = """
import json, threading, localaws
from localaws.awslambda import zip_package
from localaws.core.waiting import wait_until
with localaws.start() as s:
    role = s.client("iam").create_role(RoleName="r", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    s.client("lambda").create_function(FunctionName="f", Runtime="python3.11", Role=role, Handler="app.h",
                                       Code={"ZipFile": zip_package({"app.py": "def h(e, c):\\n    return None\\n"})})
    k = s.client("kinesis")
    k.create_stream(StreamName="s", ShardCount=1)
    arn = k.describe_stream_summary(StreamName="s")["StreamDescriptionSummary"]["StreamARN"]
    m = s.client("lambda").create_event_source_mapping(EventSourceArn=arn, FunctionName="f",
                                                       StartingPosition="TRIM_HORIZON")["UUID"]
    k.put_record(StreamName="s", Data=b"x", PartitionKey="p")
    ok = wait_until(lambda: s.local.awslambda.stream_stats(m)["records_processed"] == 1, 60)
print(json.dumps({"processed": ok, "threads": [t.name for t in threading.enumerate()
                                                if t.name.startswith("lambda-kinesis")]}))
"""


def test_no_poller_thread_is_left_after_the_stack_stops():
    out = subprocess.run([sys.executable, "-c", STOP], capture_output=True, text=True, timeout=180, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {"processed": True, "threads": []}
