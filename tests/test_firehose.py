"""Firehose: real buffering (size and interval triggers), counts in = counts
delivered, no loss or duplicates, API limits, OpenSearch and S3 destinations,
transforms and CloudWatch Logs subscriptions."""
import base64
import json
import time

import pytest

from localaws.core.waiting import wait_until


BUCKET = "t-firehose"


@pytest.fixture(scope="module")
def fh(stack, lambda_role):
    stack.client("s3").create_bucket(Bucket=BUCKET)
    client = stack.client("firehose")
    client.role = lambda_role            # the role every stream of this module delivers with
    yield client
    # Leave the shared session stack as we found it: no server keeps running.
    domains = stack.client("opensearch")
    for d in domains.list_domain_names()["DomainNames"]:
        if d["DomainName"].startswith("t-"):
            domains.delete_domain(DomainName=d["DomainName"])


def make_s3_stream(fh, stack, name, size_mb, interval_s, prefix=None, **extra):
    fh.create_delivery_stream(DeliveryStreamName=name, ExtendedS3DestinationConfiguration={
        "RoleARN": fh.role, "BucketARN": f"arn:aws:s3:::{BUCKET}",
        "Prefix": prefix or f"{name}/", "BufferingHints": {"SizeInMBs": size_mb, "IntervalInSeconds": interval_s},
        **extra})


def objects(stack, prefix):
    s3 = stack.client("s3")
    listing = s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])
    return [s3.get_object(Bucket=BUCKET, Key=o["Key"])["Body"].read() for o in sorted(listing, key=lambda o: o["Key"])]


def wait_for(predicate, timeout=20):
    return wait_until(predicate, timeout, poll=0.05)


def test_interval_trigger_delivers_one_object_later(stack, fh):
    make_s3_stream(fh, stack, "t-interval", 128, 1)
    recs = [{"Data": f"record {i}\n".encode()} for i in range(10)]
    fh.put_record_batch(DeliveryStreamName="t-interval", Records=recs)
    assert stack.local.firehose.stats("t-interval")["buffered"] == 10      # not yet delivered
    assert objects(stack, "t-interval/") == []
    assert stack.local.firehose.wait_idle("t-interval", timeout=20)
    assert objects(stack, "t-interval/") == [b"".join(r["Data"] for r in recs)]
    (delivery,) = stack.local.firehose.stats("t-interval")["deliveries"]
    assert delivery["reason"] == "interval" and delivery["records"] == 10


def test_a_frozen_clock_delivers_a_15_minute_buffer_when_advanced(stack, fh):
    """The same interval trigger, on the stack's clock: 900 s pass in no time."""
    clock = stack.local.clock
    clock.freeze()
    try:
        make_s3_stream(fh, stack, "t-clock", 128, 900)
        fh.put_record_batch(DeliveryStreamName="t-clock", Records=[{"Data": b"tick\n"}] * 3)
        clock.advance(899)
        assert not stack.local.firehose.wait_idle("t-clock", timeout=0.5)   # 1 s of clock time left
        assert objects(stack, "t-clock/") == []
        started = time.monotonic()
        clock.advance(1)
        assert stack.local.firehose.wait_idle("t-clock", timeout=20)
        assert time.monotonic() - started < 10                               # not 900 real seconds
        assert objects(stack, "t-clock/") == [b"tick\n" * 3]
        (delivery,) = stack.local.firehose.stats("t-clock")["deliveries"]
        assert delivery["reason"] == "interval" and delivery["latency_s"] >= 900
    finally:
        clock.resume()


def test_size_trigger_delivers_without_waiting_for_the_interval(stack, fh):
    make_s3_stream(fh, stack, "t-size", 1, 900)
    record = b"x" * 1000 + b"\n"
    for _ in range(3):                                   # 3 x 500 x 1001 bytes > 1 MiB
        fh.put_record_batch(DeliveryStreamName="t-size", Records=[{"Data": record}] * 500)
    assert wait_for(lambda: stack.local.firehose.stats("t-size")["records_delivered"] > 0)
    stats = stack.local.firehose.stats("t-size")
    assert [d["reason"] for d in stats["deliveries"]] == ["size"]
    assert stats["deliveries"][0]["records"] == 1048 # the record that reaches 1 MiB is the last in
    assert stats["buffered"] == 1500 - 1048          # the rest waits for 900 s or more data
    fh.delete_delivery_stream(DeliveryStreamName="t-size")   # delivers the rest first
    bodies = objects(stack, "t-size/")
    assert sum(b.count(b"\n") for b in bodies) == 1500


def test_counts_in_equal_counts_delivered_no_loss_no_duplicates(stack, fh):
    make_s3_stream(fh, stack, "t-count", 1, 1)
    sent = []
    for batch in range(8):
        recs = [json.dumps({"id": batch * 500 + i, "pad": "p" * 300}).encode() + b"\n" for i in range(500)]
        sent.extend(recs)
        resp = fh.put_record_batch(DeliveryStreamName="t-count", Records=[{"Data": r} for r in recs])
        assert resp["FailedPutCount"] == 0 and len(resp["RequestResponses"]) == 500
    assert stack.local.firehose.wait_idle("t-count", timeout=30)
    stats = stack.local.firehose.stats("t-count")
    assert stats["records_in"] == stats["records_delivered"] == 4000
    assert {d["reason"] for d in stats["deliveries"]} == {"size", "interval"}
    delivered = [line + b"\n" for body in objects(stack, "t-count/") for line in body.splitlines()]
    assert len(delivered) == 4000 and sorted(delivered) == sorted(sent)


def test_firehose_adds_no_newline(stack, fh):
    make_s3_stream(fh, stack, "t-raw", 1, 0)             # interval 0: deliver at once
    fh.put_record(DeliveryStreamName="t-raw", Record={"Data": b'{"a":1}'})
    fh.put_record(DeliveryStreamName="t-raw", Record={"Data": b'{"a":2}'})
    assert stack.local.firehose.wait_idle("t-raw", timeout=10)
    assert sorted(objects(stack, "t-raw/")) == [b'{"a":1}', b'{"a":2}']


def test_gzip_compression(stack, fh):
    import gzip
    make_s3_stream(fh, stack, "t-gz", 1, 0, CompressionFormat="GZIP")
    fh.put_record(DeliveryStreamName="t-gz", Record={"Data": b"hello\n"})
    assert stack.local.firehose.wait_idle("t-gz", timeout=10)
    (body,) = objects(stack, "t-gz/")
    assert gzip.decompress(body) == b"hello\n"


@pytest.mark.parametrize("records,code", [
    ([{"Data": b"x"}] * 501, "ValidationException"),
    ([{"Data": b"x" * 1_024_001}], "ValidationException"),
    ([{"Data": b"x" * 1_000_000}] * 5, "InvalidArgumentException"),
], ids=["501 records", "record over 1,000 KiB", "request over 4 MiB"])
def test_api_limits_refuse_the_whole_call(stack, fh, records, code):
    make_s3_stream(fh, stack, "t-limits", 1, 900) if "t-limits" not in fh.list_delivery_streams()[
        "DeliveryStreamNames"] else None
    with pytest.raises(fh.exceptions.ClientError) as err:
        fh.put_record_batch(DeliveryStreamName="t-limits", Records=records)
    assert err.value.response["Error"]["Code"] == code
    assert stack.local.firehose.stats("t-limits")["records_in"] == 0


def test_unknown_stream(fh):
    with pytest.raises(fh.exceptions.ResourceNotFoundException):
        fh.put_record(DeliveryStreamName="t-nope", Record={"Data": b"x"})


@pytest.mark.parametrize("hints,field", [({"SizeInMBs": 129, "IntervalInSeconds": 60}, "sizeInMBs"),
                                         ({"SizeInMBs": 5, "IntervalInSeconds": 901}, "intervalInSeconds")])
def test_buffering_hints_out_of_range(stack, fh, hints, field, lambda_role):
    with pytest.raises(fh.exceptions.ClientError) as err:
        fh.create_delivery_stream(DeliveryStreamName="t-hints", ExtendedS3DestinationConfiguration={
            "RoleARN": lambda_role, "BucketARN": f"arn:aws:s3:::{BUCKET}", "BufferingHints": hints})
    assert err.value.response["Error"]["Code"] == "ValidationException"
    assert field in err.value.response["Error"]["Message"]
    assert "t-hints" not in fh.list_delivery_streams()["DeliveryStreamNames"]


def test_missing_bucket_keeps_records_until_it_exists(stack, fh, lambda_role):
    fh.create_delivery_stream(DeliveryStreamName="t-retry", ExtendedS3DestinationConfiguration={
        "RoleARN": lambda_role, "BucketARN": "arn:aws:s3:::t-not-yet",
        "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 0}})
    fh.put_record_batch(DeliveryStreamName="t-retry", Records=[{"Data": b"a\n"}, {"Data": b"b\n"}])
    assert wait_for(lambda: stack.local.firehose.stats("t-retry")["errors"])
    assert stack.local.firehose.stats("t-retry")["records_delivered"] == 0
    stack.client("s3").create_bucket(Bucket="t-not-yet")
    assert stack.local.firehose.wait_idle("t-retry", timeout=30)
    s3 = stack.client("s3")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="t-not-yet")["Contents"]]
    assert b"".join(s3.get_object(Bucket="t-not-yet", Key=k)["Body"].read() for k in keys) == b"a\nb\n"


def test_opensearch_destination_indexes_and_backs_up_failures(stack, fh, lambda_role):
    domain = stack.client("opensearch").create_domain(DomainName="t-fh")["DomainStatus"]
    client = stack.local.opensearch.client("t-fh")
    client.indices.create(index="t-events", body={"mappings": {"properties": {"n": {"type": "integer"}}}})
    fh.create_delivery_stream(DeliveryStreamName="t-os", AmazonopensearchserviceDestinationConfiguration={
        "RoleARN": lambda_role, "DomainARN": domain["ARN"], "IndexName": "t-events",
        "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 1},
        "S3Configuration": {"RoleARN": lambda_role, "BucketARN": f"arn:aws:s3:::{BUCKET}",
                            "Prefix": "t-os/"}})
    desc = fh.describe_delivery_stream(DeliveryStreamName="t-os")["DeliveryStreamDescription"]
    assert "AmazonopensearchserviceDestinationDescription" in desc["Destinations"][0]
    good = [{"Data": json.dumps({"n": i}).encode()} for i in range(50)]
    bad = [{"Data": b'{"n": "fifty"}'}, {"Data": b"not json"}]
    fh.put_record_batch(DeliveryStreamName="t-os", Records=good + bad)
    assert stack.local.firehose.wait_idle("t-os", timeout=20)
    client.indices.refresh(index="t-events")
    assert client.count(index="t-events")["count"] == 50
    stats = stack.local.firehose.stats("t-os")
    assert (stats["records_in"], stats["records_delivered"], stats["records_failed"]) == (52, 50, 2)
    (backup,) = objects(stack, "t-os/AmazonOpenSearchService-failed/")
    rows = [json.loads(line) for line in backup.splitlines()]
    assert sorted(base64.b64decode(r["rawData"]) for r in rows) == sorted(r["Data"] for r in bad)
    assert all(r["esIndexName"] == "t-events" and r["errorCode"] == "400" for r in rows)


TRANSFORM = '''
import base64, json
def handler(event, context):
    out = []
    for r in event["records"]:
        doc = json.loads(base64.b64decode(r["data"]))
        if doc["n"] % 10 == 0:
            out.append({"recordId": r["recordId"], "result": "Dropped"})
        elif doc["n"] % 10 == 1:
            out.append({"recordId": r["recordId"], "result": "ProcessingFailed", "data": r["data"]})
        else:
            doc["double"] = doc["n"] * 2
            data = base64.b64encode(json.dumps(doc).encode() + b"\\n").decode()
            out.append({"recordId": r["recordId"], "result": "Ok", "data": data})
    return {"records": out}
'''


def test_lambda_transformation(stack, fh, create_function):
    lam = create_function("t-transform", TRANSFORM)
    arn = lam.get_function(FunctionName="t-transform")["Configuration"]["FunctionArn"]
    make_s3_stream(fh, stack, "t-lambda", 1, 1, ProcessingConfiguration={"Enabled": True, "Processors": [
        {"Type": "Lambda", "Parameters": [{"ParameterName": "LambdaArn", "ParameterValue": arn}]}]})
    fh.put_record_batch(DeliveryStreamName="t-lambda",
                        Records=[{"Data": json.dumps({"n": i}).encode()} for i in range(30)])
    assert stack.local.firehose.wait_idle("t-lambda", timeout=30)
    stats = stack.local.firehose.stats("t-lambda")
    assert (stats["records_delivered"], stats["records_dropped"], stats["records_failed"]) == (24, 3, 3)
    (body,) = objects(stack, "t-lambda/")
    docs = [json.loads(line) for line in body.splitlines()]
    assert sorted(d["n"] for d in docs) == [i for i in range(30) if i % 10 > 1]
    assert all(d["double"] == 2 * d["n"] for d in docs)
    (failed,) = objects(stack, "processing-failed/")
    assert sorted(json.loads(base64.b64decode(json.loads(l)["rawData"]))["n"] for l in failed.splitlines()) == [1, 11, 21]


def test_cloudwatch_logs_subscription_to_opensearch(stack, fh, lambda_role):
    domain = stack.client("opensearch").create_domain(DomainName="t-logs")["DomainStatus"]
    fh.create_delivery_stream(DeliveryStreamName="t-logs", AmazonopensearchserviceDestinationConfiguration={
        "RoleARN": lambda_role, "DomainARN": domain["ARN"], "IndexName": "app-logs",
        "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 1},
        "S3Configuration": {"RoleARN": lambda_role, "BucketARN": f"arn:aws:s3:::{BUCKET}"},
        "ProcessingConfiguration": {"Enabled": True, "Processors": [
            {"Type": "Decompression", "Parameters": [{"ParameterName": "CompressionFormat", "ParameterValue": "GZIP"}]},
            {"Type": "CloudWatchLogProcessing", "Parameters": [
                {"ParameterName": "DataMessageExtraction", "ParameterValue": "true"}]}]}})
    arn = fh.describe_delivery_stream(DeliveryStreamName="t-logs")["DeliveryStreamDescription"]["DeliveryStreamARN"]
    logs = stack.client("logs")
    logs.create_log_group(logGroupName="/t/app")
    logs.create_log_stream(logGroupName="/t/app", logStreamName="s1")
    logs.put_subscription_filter(logGroupName="/t/app", filterName="all", filterPattern="",
                                 destinationArn=arn, roleArn=lambda_role)
    now = int(time.time() * 1000)
    for batch in range(3):
        logs.put_log_events(logGroupName="/t/app", logStreamName="s1", logEvents=[
            {"timestamp": now, "message": json.dumps({"level": "INFO", "n": batch * 10 + i})} for i in range(10)])
    assert stack.local.firehose.wait_idle("t-logs", timeout=20)
    client = stack.local.opensearch.client("t-logs")
    client.indices.refresh(index="app-logs")
    hits = client.search(index="app-logs", body={"size": 100, "query": {"match_all": {}}})["hits"]["hits"]
    assert sorted(h["_source"]["n"] for h in hits) == list(range(30))
    assert stack.local.firehose.stats("t-logs")["records_in"] == 3    # one gzipped record per PutLogEvents
