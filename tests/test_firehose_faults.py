"""Firehose faults a pipeline must survive: a duplicate delivery (at-least-once), a failing transform."""
from __future__ import annotations

import base64
import json
import re

import pytest

from localaws.firehose import errors

BUCKET = "t-firehose-faults"

TRANSFORM = '''
import base64, json

def handler(event, context):
    docs = [json.loads(base64.b64decode(r["data"])) for r in event["records"]]
    if any(d.get("fail") for d in docs):
        raise RuntimeError("this batch cannot be transformed")
    return {"records": [{"recordId": r["recordId"], "result": "Ok",
                         "data": base64.b64encode(json.dumps(d).encode() + b"\\n").decode()}
                        for r, d in zip(event["records"], docs)]}
'''


@pytest.fixture(scope="module")
def fh(stack, lambda_role):
    stack.client("s3").create_bucket(Bucket=BUCKET)
    client = stack.client("firehose")
    client.role = lambda_role
    return client


def keys(stack, prefix):
    listing = stack.client("s3").list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])
    return sorted(o["Key"] for o in listing)


def body(stack, key):
    return stack.client("s3").get_object(Bucket=BUCKET, Key=key)["Body"].read()


def make_stream(fh, name, **extra):
    fh.create_delivery_stream(DeliveryStreamName=name, ExtendedS3DestinationConfiguration={
        "RoleARN": fh.role, "BucketARN": f"arn:aws:s3:::{BUCKET}", "Prefix": f"{name}/",
        "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 0}, **extra})


def test_duplicate_next_delivery_writes_one_batch_twice(stack, fh, unique):
    name = unique("t-dup")
    make_stream(fh, name)
    stack.local.firehose.duplicate_next_delivery(name)
    first = [{"Data": json.dumps({"record_id": i}).encode() + b"\n"} for i in range(5)]
    fh.put_record_batch(DeliveryStreamName=name, Records=first)
    assert stack.local.firehose.wait_idle(name, timeout=30)
    written = keys(stack, f"{name}/")
    assert len(written) == 2                                   # two objects...
    assert body(stack, written[0]) == body(stack, written[1]) == b"".join(r["Data"] for r in first)  # ...same records
    pattern = re.compile(rf"{name}/\d{{4}}/\d\d/\d\d/\d\d/{name}-1-\d{{4}}-\d\d-\d\d-\d\d-\d\d-\d\d-[0-9a-f-]{{36}}$")
    assert all(pattern.match(k) for k in written), written     # both named as Firehose names objects
    stats = stack.local.firehose.stats(name)
    assert stats["duplicate_deliveries"] == 1
    assert stats["records_in"] == stats["records_delivered"] == 5        # each record counted once
    assert {stats["deliveries"][0]["key"], stats["deliveries"][0]["duplicate_key"]} == set(written)

    fh.put_record_batch(DeliveryStreamName=name, Records=[{"Data": b"only once\n"}])   # the next one is normal
    assert stack.local.firehose.wait_idle(name, timeout=30)
    assert len(keys(stack, f"{name}/")) == 3
    assert stack.local.firehose.stats(name)["duplicate_deliveries"] == 1
    fh.delete_delivery_stream(DeliveryStreamName=name)


def test_duplicate_next_delivery_needs_an_existing_s3_stream(stack):
    with pytest.raises(errors.ResourceNotFoundException):
        stack.local.firehose.duplicate_next_delivery("t-no-such-stream")


def test_a_transform_failing_a_batch_sends_it_to_processing_failed_after_the_retries(
        stack, fh, create_function, unique, log_messages):
    lam = create_function("t-faults-transform", TRANSFORM)
    arn = lam.get_function(FunctionName="t-faults-transform")["Configuration"]["FunctionArn"]
    name = unique("t-fail")
    make_stream(fh, name, ErrorOutputPrefix=f"{name}-errors/!{{firehose:error-output-type}}/",
                Prefix=f"{name}/", ProcessingConfiguration={"Enabled": True, "Processors": [{
                    "Type": "Lambda", "Parameters": [
                        {"ParameterName": "LambdaArn", "ParameterValue": arn},
                        {"ParameterName": "NumberOfRetries", "ParameterValue": "1"},
                        {"ParameterName": "BufferIntervalInSeconds", "ParameterValue": "0"}]}]})
    good = [json.dumps({"record_id": i}).encode() for i in range(3)]
    bad = [json.dumps({"record_id": 10 + i, "fail": i == 0}).encode() for i in range(2)]
    fh.put_record_batch(DeliveryStreamName=name, Records=[{"Data": d} for d in good])
    assert stack.local.firehose.wait_idle(name, timeout=60)
    fh.put_record_batch(DeliveryStreamName=name, Records=[{"Data": d} for d in bad])
    assert stack.local.firehose.wait_idle(name, timeout=60)

    (delivered,) = keys(stack, f"{name}/")
    assert [json.loads(line)["record_id"] for line in body(stack, delivered).splitlines()] == [0, 1, 2]
    (failed,) = keys(stack, f"{name}-errors/processing-failed/")
    rows = [json.loads(line) for line in body(stack, failed).splitlines()]
    assert sorted(base64.b64decode(r["rawData"]) for r in rows) == sorted(bad)   # the whole batch, as sent
    for row in rows:
        assert set(row) == {"attemptsMade", "arrivalTimestamp", "errorCode", "errorMessage",
                            "attemptEndingTimestamp", "rawData", "lambdaArn"}
        assert row["attemptsMade"] == 2 and row["errorCode"] == "Lambda.FunctionError"   # 1 try + 1 retry
        assert row["lambdaArn"] == arn and "this batch cannot be transformed" in row["errorMessage"]
    stats = stack.local.firehose.stats(name)
    assert (stats["records_in"], stats["records_delivered"], stats["records_failed"]) == (5, 3, 2)
    starts = [m for m in log_messages("t-faults-transform") if m.startswith("START")]
    assert len(starts) == 3                                   # 1 good batch + the bad one tried twice
    fh.delete_delivery_stream(DeliveryStreamName=name)
