"""Firehose beyond PutRecord-and-deliver: a Kinesis stream as source, Lambda
transformation, JSON -> Parquet/ORC conversion with a Glue schema, dynamic
partitioning, and counts that add up. Time moves with the stack's frozen
clock (``stack.local.clock.advance``), never with sleeps."""
import base64
import io
import json
import subprocess
import sys
from pathlib import Path

import pyarrow.orc as orc
import pyarrow.parquet as pq
import pytest

from localaws.core.waiting import wait_until

BUCKET = "t-fhp"
ROOT = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------ fixtures and helpers
@pytest.fixture(scope="module")
def fh(stack, lambda_role):
    stack.client("s3").create_bucket(Bucket=BUCKET)
    client = stack.client("firehose")
    client.role = lambda_role
    return client


@pytest.fixture
def clock(stack):
    """The stack's clock, frozen for the test and running again after it."""
    stack.local.clock.freeze()
    yield stack.local.clock
    stack.local.clock.resume()


@pytest.fixture(scope="module")
def glue(stack):
    client = stack.client("glue")
    client.create_database(DatabaseInput={"Name": "t_fhp"})
    client.create_table(DatabaseName="t_fhp", TableInput={"Name": "orders", "StorageDescriptor": {"Columns": [
        {"Name": "id", "Type": "int"}, {"Name": "customer", "Type": "string"},
        {"Name": "price", "Type": "decimal(10,2)"}, {"Name": "ts", "Type": "timestamp"},
        {"Name": "tags", "Type": "array<string>"}, {"Name": "address", "Type": "struct<city:string,zip:int>"},
    ]}})
    return client


def s3_config(fh, name, size=1, interval=60, **extra):
    return {"RoleARN": fh.role, "BucketARN": f"arn:aws:s3:::{BUCKET}", "Prefix": f"{name}/",
            "BufferingHints": {"SizeInMBs": size, "IntervalInSeconds": interval}, **extra}


def lambda_processor(arn, **params):
    return {"Enabled": True, "Processors": [{"Type": "Lambda", "Parameters": [
        {"ParameterName": k, "ParameterValue": str(v)} for k, v in {"LambdaArn": arn, **params}.items()]}]}


def conversion(output="ParquetSerDe", table="orders", deserializer=None):
    return {"Enabled": True, "SchemaConfiguration": {
        "DatabaseName": "t_fhp", "TableName": table, "RoleARN": "arn:aws:iam::123456789012:role/lambda-test-role"},
        "InputFormatConfiguration": {"Deserializer": deserializer or {"OpenXJsonSerDe": {}}},
        "OutputFormatConfiguration": {"Serializer": {output: {}}}}


def objects(stack, prefix):
    """``{key: body}`` of every object under ``prefix``."""
    s3 = stack.client("s3")
    listing = s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])
    return {o["Key"]: s3.get_object(Bucket=BUCKET, Key=o["Key"])["Body"].read() for o in listing}


def error_rows(stack, prefix):
    return [json.loads(line) for body in objects(stack, prefix).values() for line in body.splitlines()]


def stats(stack, name):
    return stack.local.firehose.stats(name)


def settled(stack, name, count, timeout=30):
    """Wait until ``count`` records entered ``name`` (a Kinesis read happens on the reader thread)."""
    return wait_until(lambda: stats(stack, name)["records_in"] >= count, timeout, poll=0.02)


def adds_up(s):
    return s["records_in"] == s["records_delivered"] + s["records_dropped"] + s["records_failed"]


def function_arn(lam, name):
    return lam.get_function(FunctionName=name)["Configuration"]["FunctionArn"]


# ------------------------------------------------------------------ Kinesis data stream as source
def make_kinesis(stack, name, shards=1):
    kinesis = stack.client("kinesis")
    kinesis.create_stream(StreamName=name, ShardCount=shards)
    return kinesis, kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamARN"]


def kinesis_stream(fh, name, stream_arn, **destination):
    fh.create_delivery_stream(
        DeliveryStreamName=name, DeliveryStreamType="KinesisStreamAsSource",
        KinesisStreamSourceConfiguration={"KinesisStreamARN": stream_arn, "RoleARN": fh.role},
        ExtendedS3DestinationConfiguration=s3_config(fh, name, **destination))


def test_kinesis_source_reads_from_latest_once_per_second(stack, fh, clock):
    kinesis, arn = make_kinesis(stack, "t-src", shards=2)
    kinesis.put_records(StreamName="t-src", Records=[
        {"Data": f"old {i}\n".encode(), "PartitionKey": str(i)} for i in range(5)])
    clock.advance(1)
    kinesis_stream(fh, "t-src-fh", arn)
    source = fh.describe_delivery_stream(DeliveryStreamName="t-src-fh")["DeliveryStreamDescription"]
    assert source["DeliveryStreamType"] == "KinesisStreamAsSource"
    assert source["Source"]["KinesisStreamSourceDescription"]["KinesisStreamARN"] == arn
    assert "DeliveryStartTimestamp" in source["Source"]["KinesisStreamSourceDescription"]

    assert wait_until(lambda: stats(stack, "t-src-fh")["source"]["reads"] >= 2, 10, poll=0.02)  # 1st read
    sent = [f"new {i}\n".encode() for i in range(20)]
    kinesis.put_records(StreamName="t-src", Records=[{"Data": d, "PartitionKey": str(i)}
                                                      for i, d in enumerate(sent)])
    assert not settled(stack, "t-src-fh", 1, timeout=0.3)   # the clock is frozen: no second read yet
    clock.advance(1)                                       # one GetRecords per shard
    assert settled(stack, "t-src-fh", 20)
    assert stats(stack, "t-src-fh")["buffered"] == 20
    clock.advance(60)
    assert stack.local.firehose.wait_idle("t-src-fh", timeout=20)
    delivered = b"".join(objects(stack, "t-src-fh/").values())
    assert sorted(delivered.splitlines(keepends=True)) == sorted(sent)    # LATEST: the old records stay
    s = stats(stack, "t-src-fh")
    assert s["records_in"] == s["records_delivered"] == 20 and adds_up(s)
    assert sorted(s["source"]["reading"]) == ["shardId-000000000000", "shardId-000000000001"]


def drain(stack, clock, name, count, polls=6):
    """Advance the clock a second at a time (one read per shard each) until ``count`` records were read."""
    for _ in range(polls):
        if settled(stack, name, count, timeout=1):
            return True
        clock.advance(1)
    return settled(stack, name, count)


def test_kinesis_source_reads_parents_before_children(stack, fh, clock):
    kinesis, arn = make_kinesis(stack, "t-reshard", shards=1)
    kinesis_stream(fh, "t-reshard-fh", arn, interval=300)
    clock.advance(1)

    def put(numbers):
        for n in numbers:       # one partition key: its records must stay in order
            kinesis.put_record(StreamName="t-reshard", Data=f"{n}\n".encode(), PartitionKey="order-42")

    put(range(0, 5))
    kinesis.split_shard(StreamName="t-reshard", ShardToSplit="shardId-000000000000",
                        NewStartingHashKey=str(2 ** 127))
    put(range(5, 10))
    assert drain(stack, clock, "t-reshard-fh", 10)    # the parent to its end, then the children
    kinesis.merge_shards(StreamName="t-reshard", ShardToMerge="shardId-000000000001",
                         AdjacentShardToMerge="shardId-000000000002")
    put(range(10, 15))
    assert drain(stack, clock, "t-reshard-fh", 15)    # both children end; the merged child after both
    source = stats(stack, "t-reshard-fh")["source"]
    assert source["finished"] == ["shardId-000000000000", "shardId-000000000001", "shardId-000000000002"]
    assert source["reading"] == ["shardId-000000000003"]
    clock.advance(300)
    assert stack.local.firehose.wait_idle("t-reshard-fh", timeout=20)
    (body,) = objects(stack, "t-reshard-fh/").values()
    assert [int(x) for x in body.split()] == list(range(15))


def test_put_record_to_a_kinesis_sourced_stream_is_refused(stack, fh):
    _, arn = make_kinesis(stack, "t-refuse")
    kinesis_stream(fh, "t-refuse-fh", arn)
    for call in (lambda: fh.put_record(DeliveryStreamName="t-refuse-fh", Record={"Data": b"x"}),
                 lambda: fh.put_record_batch(DeliveryStreamName="t-refuse-fh", Records=[{"Data": b"x"}])):
        with pytest.raises(fh.exceptions.InvalidArgumentException) as err:
            call()
        assert err.value.response["Error"]["Message"] == \
            "This operation is not permitted on KinesisStreamAsSource delivery stream type."
    assert stats(stack, "t-refuse-fh")["records_in"] == 0


def test_a_missing_kinesis_stream_is_refused_and_nothing_is_created(stack, fh):
    with pytest.raises(fh.exceptions.InvalidArgumentException):
        kinesis_stream(fh, "t-nostream-fh", "arn:aws:kinesis:us-east-1:123456789012:stream/t-absent")
    assert "t-nostream-fh" not in fh.list_delivery_streams()["DeliveryStreamNames"]


STOP = """
import json, threading, localaws
s = localaws.start()
role = s.client("iam").create_role(RoleName="r", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
s.client("s3").create_bucket(Bucket="t-stop")
k = s.client("kinesis")
k.create_stream(StreamName="k", ShardCount=1)
arn = k.describe_stream_summary(StreamName="k")["StreamDescriptionSummary"]["StreamARN"]
s.client("firehose").create_delivery_stream(
    DeliveryStreamName="f", DeliveryStreamType="KinesisStreamAsSource",
    KinesisStreamSourceConfiguration={"KinesisStreamARN": arn, "RoleARN": role},
    ExtendedS3DestinationConfiguration={"RoleARN": role, "BucketARN": "arn:aws:s3:::t-stop"})
names = lambda: sorted(t.name for t in threading.enumerate() if t.name.startswith("firehose"))
before = names()
s.stop()
print(json.dumps([before, names()]))
"""


def test_stopping_the_stack_ends_the_kinesis_reader():
    """In a fresh interpreter, so the session's shared stack is untouched."""
    out = subprocess.run([sys.executable, "-c", STOP], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    before, after = json.loads(out.stdout.strip().splitlines()[-1])
    assert "firehose-kinesis-source" in before and "firehose-flusher" in before
    assert "firehose-kinesis-source" not in after and "firehose-flusher" not in after


# ------------------------------------------------------------------ Lambda transformation
HANDLERS = '''
import base64, json

def echo(event, context):
    """Each record becomes a JSON line saying what the function was sent."""
    out = []
    for r in event["records"]:
        seen = {"data": base64.b64decode(r["data"]).decode(), "fields": sorted(r),
                "event": sorted(event), "arrival": r["approximateArrivalTimestamp"],
                "stream": event["deliveryStreamArn"], "region": event["region"],
                "batch": len(event["records"])}
        out.append({"recordId": r["recordId"], "result": "Ok",
                    "data": base64.b64encode(json.dumps(seen).encode() + b"\\n").decode()})
    return {"records": out}

def mixed(event, context):
    """n % 10: 0 dropped, 1 failed, else Ok with a customer key from Lambda."""
    out = []
    for r in event["records"]:
        doc = json.loads(base64.b64decode(r["data"]))
        n = doc["n"]
        if n % 10 == 0:
            out.append({"recordId": r["recordId"], "result": "Dropped"})
        elif n % 10 == 1:
            out.append({"recordId": r["recordId"], "result": "ProcessingFailed", "data": r["data"]})
        else:
            out.append({"recordId": r["recordId"], "result": "Ok", "data": r["data"],
                        "metadata": {"partitionKeys": {"shop": doc.get("shop")}}})
    return {"records": out}

def missing(event, context):
    return {"records": [{"recordId": r["recordId"], "result": "Ok", "data": r["data"]}
                        for r in event["records"][1:]]}

def duplicated(event, context):
    r = event["records"][0]
    return {"records": [{"recordId": r["recordId"], "result": "Ok", "data": r["data"]}] * 2
            + [{"recordId": x["recordId"], "result": "Ok", "data": x["data"]} for x in event["records"][1:]]}

def bad_base64(event, context):
    return {"records": [{"recordId": r["recordId"], "result": "Ok", "data": "not base64!"}
                        for r in event["records"]]}

def bad_result(event, context):
    return {"records": [{"recordId": r["recordId"], "result": "Maybe", "data": r["data"]}
                        for r in event["records"]]}

def not_json(event, context):
    return "all good"

def raises(event, context):
    raise RuntimeError("the transform is broken")
'''


@pytest.fixture(scope="module")
def functions(stack, create_function):
    lam = None
    for handler in ("echo", "mixed", "missing", "duplicated", "bad_base64", "bad_result", "not_json", "raises"):
        lam = create_function(f"t-fhp-{handler}", HANDLERS, f"app.{handler}", timeout=10)
    return lambda handler: function_arn(lam, f"t-fhp-{handler}")


def test_lambda_gets_the_documented_event_after_its_own_buffer_interval(stack, fh, clock, functions):
    fh.create_delivery_stream(DeliveryStreamName="t-echo", ExtendedS3DestinationConfiguration=s3_config(
        fh, "t-echo", interval=60, ProcessingConfiguration=lambda_processor(
            functions("echo"), BufferIntervalInSeconds=30, BufferSizeInMBs=1)))
    arrival = int(clock.time() * 1000)
    fh.put_record_batch(DeliveryStreamName="t-echo", Records=[{"Data": f"r{i}".encode()} for i in range(5)])
    clock.advance(29)
    assert not stack.local.firehose.wait_idle("t-echo", timeout=0.3)
    assert stats(stack, "t-echo")["transforms"] == []          # the Lambda buffer still holds them
    clock.advance(1)
    assert wait_until(lambda: stats(stack, "t-echo")["transforms"], 30, poll=0.02)
    assert stats(stack, "t-echo")["buffered"] == 5              # now in the destination's buffer
    clock.advance(60)
    assert stack.local.firehose.wait_idle("t-echo", timeout=20)
    (body,) = objects(stack, "t-echo/").values()
    seen = [json.loads(line) for line in body.splitlines()]
    assert sorted(s["data"] for s in seen) == [f"r{i}" for i in range(5)]
    arn = fh.describe_delivery_stream(DeliveryStreamName="t-echo")["DeliveryStreamDescription"]["DeliveryStreamARN"]
    for s in seen:
        assert s["event"] == ["deliveryStreamArn", "invocationId", "records", "region"]
        assert s["fields"] == ["approximateArrivalTimestamp", "data", "recordId"]
        assert (s["stream"], s["region"], s["arrival"], s["batch"]) == (arn, "us-east-1", arrival, 5)


def test_lambda_buffer_size_triggers_without_the_clock(stack, fh, clock, functions):
    fh.create_delivery_stream(DeliveryStreamName="t-echo-size", ExtendedS3DestinationConfiguration=s3_config(
        fh, "t-echo-size", interval=60, ProcessingConfiguration=lambda_processor(
            functions("echo"), BufferIntervalInSeconds=900, BufferSizeInMBs="0.2")))
    fh.put_record_batch(DeliveryStreamName="t-echo-size", Records=[{"Data": b"x" * 1000}] * 250)
    assert wait_until(lambda: stats(stack, "t-echo-size")["transforms"], 30, poll=0.02)
    (transform,) = stats(stack, "t-echo-size")["transforms"]
    assert transform["reason"] == "size" and transform["records"] == 210     # 0.2 MiB = 209,716 bytes


def test_kinesis_records_reach_lambda_with_their_metadata(stack, fh, clock, functions):
    kinesis, arn = make_kinesis(stack, "t-src-lambda")
    fh.create_delivery_stream(
        DeliveryStreamName="t-src-lambda-fh", DeliveryStreamType="KinesisStreamAsSource",
        KinesisStreamSourceConfiguration={"KinesisStreamARN": arn, "RoleARN": fh.role},
        ExtendedS3DestinationConfiguration=s3_config(fh, "t-src-lambda-fh", interval=0, ProcessingConfiguration=
                                                     lambda_processor(functions("echo"), BufferIntervalInSeconds=0)))
    kinesis.put_record(StreamName="t-src-lambda", Data=b"from kinesis", PartitionKey="p")
    clock.advance(1)
    assert wait_until(lambda: objects(stack, "t-src-lambda-fh/"), 30, poll=0.05)
    (body,) = objects(stack, "t-src-lambda-fh/").values()
    seen = json.loads(body)
    assert seen["data"] == "from kinesis"
    assert "sourceKinesisStreamArn" in seen["event"] and "kinesisRecordMetadata" in seen["fields"]


@pytest.mark.parametrize("handler,code", [
    ("missing", "Lambda.MissingRecordId"),
    ("duplicated", "Lambda.DuplicatedRecordId"),
    ("bad_base64", "Lambda.JsonProcessingException"),
    ("bad_result", "Lambda.JsonProcessingException"),
    ("not_json", "Lambda.JsonProcessingException"),
    ("raises", "Lambda.FunctionError"),
])
def test_a_lambda_breaking_the_contract_fails_the_whole_invocation(stack, fh, functions, handler, code):
    name = f"t-bad-{handler.replace('_', '-')}"
    fh.create_delivery_stream(DeliveryStreamName=name, ExtendedS3DestinationConfiguration=s3_config(
        fh, name, interval=0, ProcessingConfiguration=lambda_processor(
            functions(handler), NumberOfRetries=0, BufferIntervalInSeconds=0)))
    sent = [f"record {i}".encode() for i in range(3)]
    fh.put_record_batch(DeliveryStreamName=name, Records=[{"Data": d} for d in sent])
    assert stack.local.firehose.wait_idle(name, timeout=30)
    rows = error_rows(stack, "processing-failed/")
    rows = [r for r in rows if r["lambdaArn"] == functions(handler)]
    assert sorted(base64.b64decode(r["rawData"]) for r in rows) == sent
    assert {r["errorCode"] for r in rows} == {code}
    assert all(r["attemptsMade"] == 1 and r["attemptEndingTimestamp"] >= r["arrivalTimestamp"] for r in rows)
    assert set(rows[0]) == {"attemptsMade", "arrivalTimestamp", "errorCode", "errorMessage",
                            "attemptEndingTimestamp", "rawData", "lambdaArn"}
    s = stats(stack, name)
    assert (s["records_in"], s["records_failed"], s["records_delivered"]) == (3, 3, 0)
    assert objects(stack, f"{name}/") == {}


def test_a_failing_invocation_is_retried_number_of_retries_times(stack, fh, functions, log_messages):
    fh.create_delivery_stream(DeliveryStreamName="t-retries", ExtendedS3DestinationConfiguration=s3_config(
        fh, "t-retries", interval=0, ErrorOutputPrefix="t-retries-errors/!{firehose:error-output-type}/",
        Prefix="t-retries/!{timestamp:yyyy}/",
        ProcessingConfiguration=lambda_processor(functions("raises"), BufferIntervalInSeconds=0)))
    starts = len([m for m in log_messages("t-fhp-raises") if m.startswith("START")])
    fh.put_record(DeliveryStreamName="t-retries", Record={"Data": b"one"})
    assert stack.local.firehose.wait_idle("t-retries", timeout=60)
    (row,) = error_rows(stack, "t-retries-errors/processing-failed/")
    assert row["attemptsMade"] == 4 and row["errorCode"] == "Lambda.FunctionError"   # 3 retries by default
    assert "RuntimeError: the transform is broken" in row["errorMessage"]
    assert len([m for m in log_messages("t-fhp-raises") if m.startswith("START")]) - starts == 4


@pytest.mark.parametrize("params,word", [({"BufferSizeInMBs": "4"}, "BufferSizeInMBs"),
                                         ({"BufferIntervalInSeconds": "901"}, "BufferIntervalInSeconds")])
def test_lambda_buffer_hints_out_of_range(stack, fh, functions, params, word):
    with pytest.raises(fh.exceptions.InvalidArgumentException) as err:
        fh.create_delivery_stream(DeliveryStreamName="t-bad-hints", ExtendedS3DestinationConfiguration=s3_config(
            fh, "t-bad-hints", ProcessingConfiguration=lambda_processor(functions("echo"), **params)))
    assert word in err.value.response["Error"]["Message"]
    assert "t-bad-hints" not in fh.list_delivery_streams()["DeliveryStreamNames"]


# ------------------------------------------------------------------ record format conversion
ORDERS = [
    {"id": 1, "customer": "ann", "price": 9.5, "ts": "2024-03-01T10:00:00Z", "tags": ["a"],
     "address": {"city": "Oslo", "zip": 150}},
    {"ID": "2", "Customer": "bob", "price": "12.25", "ts": 1709287200, "extra": "ignored"},
]


def test_json_to_parquet_with_the_glue_tables_schema(stack, fh, clock, glue):
    fh.create_delivery_stream(DeliveryStreamName="t-parquet", ExtendedS3DestinationConfiguration=s3_config(
        fh, "t-parquet", size=64, interval=120, DataFormatConversionConfiguration=conversion()))
    good = [json.dumps(o).encode() for o in ORDERS]
    two_in_one = b'{"id": 3, "customer": "cy"} {"id": 4, "customer": "di"}'
    bad = [b"this is not JSON", b'{"id": "three", "customer": "eve"}', b'{"id": 5, "tags": "not a list"}']
    fh.put_record_batch(DeliveryStreamName="t-parquet", Records=[{"Data": d} for d in good + [two_in_one] + bad])
    clock.advance(120)
    assert stack.local.firehose.wait_idle("t-parquet", timeout=20)
    (body,) = objects(stack, "t-parquet/").values()                # one Parquet file per flush
    table = pq.read_table(io.BytesIO(body))
    assert table.column_names == ["id", "customer", "price", "ts", "tags", "address"]
    assert str(table.schema.field("price").type) == "decimal128(10, 2)"
    rows = sorted(table.to_pylist(), key=lambda r: r["id"])
    assert [r["id"] for r in rows] == [1, 2, 3, 4]
    assert str(rows[1]["price"]) == "12.25" and rows[1]["customer"] == "bob"      # OpenX: lenient, keys any case
    assert rows[0]["address"] == {"city": "Oslo", "zip": 150} and rows[0]["tags"] == ["a"]
    assert rows[0]["ts"].isoformat() == "2024-03-01T10:00:00" and rows[1]["ts"].isoformat() == "2024-03-01T10:00:00"
    failed = error_rows(stack, "format-conversion-failed/")
    failed = [r for r in failed if base64.b64decode(r["rawData"]) in bad]
    assert sorted(base64.b64decode(r["rawData"]) for r in failed) == sorted(bad)
    codes = {base64.b64decode(r["rawData"]): r["lastErrorCode"] for r in failed}
    assert codes[b"this is not JSON"] == "DataFormatConversion.ParseError"
    assert codes[b'{"id": "three", "customer": "eve"}'] == "DataFormatConversion.MalformedData"
    assert failed[0]["dataCatalogTable"]["tableName"] == "orders"
    s = stats(stack, "t-parquet")
    assert (s["records_in"], s["records_delivered"], s["records_failed"]) == (6, 3, 3) and adds_up(s)


def test_json_to_orc(stack, fh, clock, glue):
    fh.create_delivery_stream(DeliveryStreamName="t-orc", ExtendedS3DestinationConfiguration=s3_config(
        fh, "t-orc", size=64, interval=60, DataFormatConversionConfiguration=conversion("OrcSerDe")))
    fh.put_record_batch(DeliveryStreamName="t-orc", Records=[{"Data": json.dumps(o).encode()} for o in ORDERS])
    clock.advance(60)
    assert stack.local.firehose.wait_idle("t-orc", timeout=20)
    (body,) = objects(stack, "t-orc/").values()
    table = orc.read_table(io.BytesIO(body))
    assert sorted(table.column("id").to_pylist()) == [1, 2]


def test_the_hive_serde_is_strict_where_openx_is_lenient(stack, fh, clock, glue):
    fh.create_delivery_stream(DeliveryStreamName="t-hive", ExtendedS3DestinationConfiguration=s3_config(
        fh, "t-hive", size=64, interval=60, DataFormatConversionConfiguration=conversion(
            deserializer={"HiveJsonSerDe": {"TimestampFormats": ["yyyy-MM-dd'T'HH:mm:ss'Z'"]}})))
    fh.put_record_batch(DeliveryStreamName="t-hive", Records=[
        {"Data": b'{"id": 1, "ts": "2024-03-01T10:00:00Z"}'}, {"Data": b'{"id": "2"}'}])
    clock.advance(60)
    assert stack.local.firehose.wait_idle("t-hive", timeout=20)
    (body,) = objects(stack, "t-hive/").values()
    assert pq.read_table(io.BytesIO(body)).column("id").to_pylist() == [1]
    (row,) = [r for r in error_rows(stack, "format-conversion-failed/") if base64.b64decode(r["rawData"]) ==
              b'{"id": "2"}']
    assert row["lastErrorCode"] == "DataFormatConversion.MalformedData"


@pytest.mark.parametrize("extra,message", [
    ({"BufferingHints": {"SizeInMBs": 5, "IntervalInSeconds": 60}},
     "BufferingHints.SizeInMBs must be at least 64 when data format conversion is enabled."),
    ({"BufferingHints": {"SizeInMBs": 64, "IntervalInSeconds": 60}, "CompressionFormat": "GZIP"},
     "CompressionFormat must be UNCOMPRESSED"),
    ({"DataFormatConversionConfiguration": conversion(table="no_such_table")}, "EntityNotFoundException"),
], ids=["buffer under 64 MiB", "GZIP", "no Glue table"])
def test_conversion_configuration_refused(stack, fh, glue, extra, message):
    config = {**s3_config(fh, "t-bad-conv", size=64), "DataFormatConversionConfiguration": conversion(), **extra}
    with pytest.raises(fh.exceptions.InvalidArgumentException) as err:
        fh.create_delivery_stream(DeliveryStreamName="t-bad-conv", ExtendedS3DestinationConfiguration=config)
    assert message in err.value.response["Error"]["Message"]
    assert "t-bad-conv" not in fh.list_delivery_streams()["DeliveryStreamNames"]


def test_conversion_without_buffering_hints_buffers_128_mib(stack, fh, clock, glue):
    config = s3_config(fh, "t-conv-default", DataFormatConversionConfiguration=conversion())
    del config["BufferingHints"]
    fh.create_delivery_stream(DeliveryStreamName="t-conv-default", ExtendedS3DestinationConfiguration=config)
    fh.put_record(DeliveryStreamName="t-conv-default", Record={"Data": b'{"id": 7}'})
    clock.advance(299)
    assert not stack.local.firehose.wait_idle("t-conv-default", timeout=0.3)     # 300 s by default
    clock.advance(1)
    assert stack.local.firehose.wait_idle("t-conv-default", timeout=20)
    assert len(objects(stack, "t-conv-default/")) == 1


# ------------------------------------------------------------------ dynamic partitioning
def partitioned(fh, name, query="{customer_id: .customer.id}", prefix=None, **extra):
    processors = [{"Type": "MetadataExtraction", "Parameters": [
        {"ParameterName": "MetadataExtractionQuery", "ParameterValue": query},
        {"ParameterName": "JsonParsingEngine", "ParameterValue": "JQ-1.6"}]}]
    return s3_config(fh, name, size=64, interval=60,
                     Prefix=prefix or f"{name}/customer_id=!{{partitionKeyFromQuery:customer_id}}/"
                                      "year=!{timestamp:yyyy}/",
                     ErrorOutputPrefix=f"{name}-errors/!{{firehose:error-output-type}}/",
                     DynamicPartitioningConfiguration={"Enabled": True},
                     ProcessingConfiguration={"Enabled": True, "Processors": processors}, **extra)


def test_dynamic_partitioning_by_a_jq_query(stack, fh, clock):
    fh.create_delivery_stream(DeliveryStreamName="t-dp", ExtendedS3DestinationConfiguration=partitioned(fh, "t-dp"))
    year = clock.now().year
    records = [{"customer": {"id": c}, "n": i} for i, c in enumerate(["a", "b", "a", "a", "b"])]
    broken = [{"customer": {}}, {"customer": {"id": None}}, {"customer": {"id": ""}}]
    fh.put_record_batch(DeliveryStreamName="t-dp", Records=[{"Data": json.dumps(r).encode() + b"\n"}
                                                            for r in records + broken] + [{"Data": b"not json"}])
    assert stats(stack, "t-dp")["partitions"] == 2
    clock.advance(60)
    assert stack.local.firehose.wait_idle("t-dp", timeout=20)
    delivered = objects(stack, "t-dp/")
    by_customer = {}
    for key, body in delivered.items():
        assert key.startswith(("t-dp/customer_id=a/", "t-dp/customer_id=b/"))
        assert key.split("/")[2] == f"year={year}"                # no yyyy/MM/dd/HH/ appended
        by_customer[key.split("/")[1]] = [json.loads(line)["n"] for line in body.splitlines()]
    assert by_customer == {"customer_id=a": [0, 2, 3], "customer_id=b": [1, 4]}
    rows = error_rows(stack, "t-dp-errors/partitioning-failed/")
    assert len(rows) == 4 and {r["errorCode"] for r in rows} == {"DynamicPartitioning.MetadataExtractionFailed"}
    s = stats(stack, "t-dp")
    assert (s["records_in"], s["records_delivered"], s["records_failed"]) == (9, 5, 4) and adds_up(s)
    assert {tuple(d["partition"].items()) for d in s["deliveries"]} == {(("customer_id", "a"),),
                                                                        (("customer_id", "b"),)}


@pytest.mark.parametrize("change,message", [
    ({"BufferingHints": {"SizeInMBs": 5, "IntervalInSeconds": 60}},
     "BufferingHints.SizeInMBs must be at least 64 when Dynamic Partitioning is enabled."),
    ({"BufferingHints": {"SizeInMBs": 64, "IntervalInSeconds": 0}}, "IntervalInSeconds"),
    ({"ErrorOutputPrefix": None}, "ErrorOutputPrefix cannot be null or empty when Prefix contains expressions"),
    ({"Prefix": "plain/"}, "S3 Prefix should contain Dynamic Partitioning namespaces"),
    ({"DynamicPartitioningConfiguration": {"Enabled": False}, "ProcessingConfiguration": None},
     "Dynamic Partitioning Namespaces can only be part of a prefix expression when Dynamic Partitioning is enabled."),
    ({"DynamicPartitioningConfiguration": {"Enabled": False}, "Prefix": "plain/"},
     "MetadataExtractionProcessor can only be present when Dynamic Partitioning is enabled."),
    ({"ErrorOutputPrefix": "errors/!{timestamp:yyyy}/"}, "error-output-type"),
    ({"Prefix": "x/!{firehose:error-output-type}/!{partitionKeyFromQuery:customer_id}/"}, "error-output-type"),
], ids=["buffer under 64 MiB", "zero interval", "no error prefix", "no partition key in prefix",
        "partition keys without partitioning", "extraction without partitioning", "error prefix without type",
        "error type in prefix"])
def test_dynamic_partitioning_configuration_refused(stack, fh, change, message):
    config = {k: v for k, v in {**partitioned(fh, "t-bad-dp"), **change}.items() if v is not None}
    with pytest.raises(fh.exceptions.InvalidArgumentException) as err:
        fh.create_delivery_stream(DeliveryStreamName="t-bad-dp", ExtendedS3DestinationConfiguration=config)
    assert message in err.value.response["Error"]["Message"]
    assert "t-bad-dp" not in fh.list_delivery_streams()["DeliveryStreamNames"]


def test_a_jq_query_outside_the_local_subset_is_not_emulated(stack, fh):
    config = partitioned(fh, "t-jq", query='{year: .ts | strftime("%Y")}')
    with pytest.raises(fh.exceptions.ClientError) as err:
        fh.create_delivery_stream(DeliveryStreamName="t-jq", ExtendedS3DestinationConfiguration=config)
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 501


# ------------------------------------------------------------------ everything at once: counts add up
def test_counts_add_up_for_a_mixed_batch(stack, fh, clock, functions, glue):
    """Lambda Ok/Dropped/ProcessingFailed, partition keys from Lambda (some missing), Parquet
    conversion (some records do not fit): every record is counted once, where it went."""
    fh.create_delivery_stream(DeliveryStreamName="t-mixed", ExtendedS3DestinationConfiguration=s3_config(
        fh, "t-mixed", size=64, interval=60, Prefix="t-mixed/shop=!{partitionKeyFromLambda:shop}/",
        ErrorOutputPrefix="t-mixed-errors/!{firehose:error-output-type}/",
        DynamicPartitioningConfiguration={"Enabled": True},
        DataFormatConversionConfiguration=conversion(),
        ProcessingConfiguration=lambda_processor(functions("mixed"), BufferIntervalInSeconds=10)))
    records = []
    for n in range(40):
        doc = {"n": n, "id": n, "customer": f"c{n}"}
        if n % 10 != 5:
            doc["shop"] = "north" if n % 2 else "south"       # n % 10 == 5: no partition key
        if n % 10 == 7:
            doc["id"] = "not a number"                         # does not fit the int column
        records.append({"Data": json.dumps(doc).encode()})
    fh.put_record_batch(DeliveryStreamName="t-mixed", Records=records)
    clock.advance(10)                                          # the Lambda buffer
    assert wait_until(lambda: stats(stack, "t-mixed")["transforms"], 30, poll=0.02)
    clock.advance(60)                                          # the destination and error buffers
    assert stack.local.firehose.wait_idle("t-mixed", timeout=30)
    s = stats(stack, "t-mixed")
    processing = error_rows(stack, "t-mixed-errors/processing-failed/")
    partitioning = error_rows(stack, "t-mixed-errors/partitioning-failed/")
    converting = error_rows(stack, "t-mixed-errors/format-conversion-failed/")
    parquet_rows = sum(pq.read_table(io.BytesIO(b)).num_rows for b in objects(stack, "t-mixed/").values())
    assert (len(processing), len(partitioning), len(converting)) == (4, 4, 4)
    assert (s["records_dropped"], parquet_rows) == (4, 40 - 16)
    assert s["records_in"] == 40 == parquet_rows + s["records_dropped"] + len(processing) + len(partitioning) \
        + len(converting)
    assert s["records_delivered"] == parquet_rows and s["records_failed"] == 12 and adds_up(s)
    assert sorted(objects(stack, "t-mixed/"))[0].startswith("t-mixed/shop=north/")


def test_a_record_split_into_log_events_is_counted_once(stack, fh):
    """CloudWatch Logs processing turns one record into one record per log event (a
    CONTROL_MESSAGE into none): the counts stay in records put."""
    import gzip
    fh.create_delivery_stream(DeliveryStreamName="t-split", ExtendedS3DestinationConfiguration=s3_config(
        fh, "t-split", interval=0, ProcessingConfiguration={"Enabled": True, "Processors": [
            {"Type": "Decompression", "Parameters": [{"ParameterName": "CompressionFormat", "ParameterValue": "GZIP"}]},
            {"Type": "CloudWatchLogProcessing", "Parameters": [
                {"ParameterName": "DataMessageExtraction", "ParameterValue": "true"}]},
            {"Type": "AppendDelimiterToRecord", "Parameters": []}]}))
    data = {"messageType": "DATA_MESSAGE", "logEvents": [{"id": str(i), "message": f"event {i}"} for i in range(3)]}
    control = {"messageType": "CONTROL_MESSAGE", "logEvents": [{"id": "0", "message": "CWL CONTROL MESSAGE"}]}
    fh.put_record_batch(DeliveryStreamName="t-split", Records=[
        {"Data": gzip.compress(json.dumps(doc).encode())} for doc in (data, control)] + [{"Data": b"not gzip"}])
    assert stack.local.firehose.wait_idle("t-split", timeout=20)
    (body,) = objects(stack, "t-split/").values()
    assert body.splitlines() == [b"event 0", b"event 1", b"event 2"]
    s = stats(stack, "t-split")
    assert (s["records_in"], s["records_delivered"], s["records_dropped"], s["records_failed"]) == (3, 1, 1, 1)
    assert s["deliveries"][0]["delivered"] == 3                  # three log events in the object
