"""AWS IoT Core topic rules: iot-data Publish runs every enabled rule's SQL and actions.

Rules match by topic filter (``+``, ``#``) and WHERE; the SELECT shapes what
the actions receive; ``topic(n)`` and substitution templates reach the
Kinesis partition key and the S3 key; every action type lands where it
should; a disabled rule does nothing; a failing action (a missing stream, a
throttled shard on a frozen clock) sends AWS's error document to the
rule's errorAction.
"""
from __future__ import annotations

import base64
import json
import uuid

import pytest

from localaws.core.waiting import wait_until

ROLE = "arn:aws:iam::123456789012:role/iot-rules"


@pytest.fixture(scope="module")
def iot(stack):
    return stack.client("iot")


@pytest.fixture(scope="module")
def data(stack):
    return stack.client("iot-data")


@pytest.fixture
def rule(iot):
    """``rule(sql, actions, error_action=None)`` -> the new rule's name (deleted after the test)."""
    made = []

    def create(sql, actions, error_action=None, disabled=False):
        name = "t_" + uuid.uuid4().hex[:10]
        payload = {"sql": sql, "awsIotSqlVersion": "2016-03-23", "actions": actions, "ruleDisabled": disabled}
        if error_action:
            payload["errorAction"] = error_action
        iot.create_topic_rule(ruleName=name, topicRulePayload=payload)
        made.append(name)
        return name
    yield create
    for name in made:
        iot.delete_topic_rule(ruleName=name)


@pytest.fixture
def stream(stack, unique):
    """``stream(shards=1)`` -> a new Kinesis stream's name; ``records(name)`` reads it all."""
    kinesis = stack.client("kinesis")
    made = []

    def create(shards=1):
        name = unique("iot")
        kinesis.create_stream(StreamName=name, ShardCount=shards)
        made.append(name)
        return name
    yield create
    for name in made:
        kinesis.delete_stream(StreamName=name)


def records(stack, stream_name):
    kinesis = stack.client("kinesis")
    found = []
    for shard in kinesis.list_shards(StreamName=stream_name)["Shards"]:
        it = kinesis.get_shard_iterator(StreamName=stream_name, ShardId=shard["ShardId"],
                                        ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        found += kinesis.get_records(ShardIterator=it, Limit=10000)["Records"]
    return found


@pytest.fixture
def bucket(stack, unique):
    name = unique("iot")
    stack.client("s3").create_bucket(Bucket=name)
    return name


def objects(stack, bucket, prefix=""):
    s3 = stack.client("s3")
    return {o["Key"]: s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()
            for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])}


def publish(data, topic, doc):
    body = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    answer = data.publish(topic=topic, qos=1, payload=body)
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 200


# ------------------------------------------------------------------ matching and projection
def test_topic_filter_where_and_projection_reach_kinesis(stack, data, rule, stream):
    name = stream()
    r = rule("SELECT device_id, reading.temp * 2 AS double_temp, topic(2) AS device, timestamp() AS ts "
             "FROM 'fleet/+/telemetry' WHERE reading.temp > 30",
             [{"kinesis": {"streamName": name, "partitionKey": "${topic(2)}", "roleArn": ROLE}}])
    publish(data, "fleet/d1/telemetry", {"device_id": "d1", "reading": {"temp": 31.5}})
    publish(data, "fleet/d2/telemetry", {"device_id": "d2", "reading": {"temp": 20}})    # WHERE false
    publish(data, "fleet/d3/status", {"device_id": "d3", "reading": {"temp": 99}})       # other topic
    publish(data, "fleet/d4/telemetry", {"device_id": "d4"})                              # Undefined: no match
    publish(data, "fleet/d5/x/telemetry", {"device_id": "d5", "reading": {"temp": 99}})  # + is one level
    got = records(stack, name)
    assert len(got) == 1
    body = json.loads(got[0]["Data"])
    assert got[0]["PartitionKey"] == "d1"
    assert body["device_id"] == "d1" and body["double_temp"] == 63.0 and body["device"] == "d1"
    assert abs(body["ts"] - stack.local.clock.time() * 1000) < 60_000
    assert stack.local.iot.rule_stats(r) == {"matched": 1, "actions_succeeded": 1,
                                             "actions_failed": 0, "error_actions": 0}


def test_select_star_hash_filter_and_disabled_rule(stack, data, rule, stream, iot):
    star, off = stream(), stream()
    rule("SELECT * FROM 'site/#'", [{"kinesis": {"streamName": star, "roleArn": ROLE}}])
    disabled = rule("SELECT * FROM 'site/#'", [{"kinesis": {"streamName": off, "roleArn": ROLE}}], disabled=True)
    publish(data, "site", {"a": 1})
    publish(data, "site/x/y", {"a": 2, "nested": {"b": [1, 2]}})
    publish(data, "other/site", {"a": 3})
    assert [json.loads(r["Data"]) for r in records(stack, star)] == [{"a": 1}, {"a": 2, "nested": {"b": [1, 2]}}]
    assert records(stack, off) == []
    assert stack.local.iot.rule_stats(disabled)["matched"] == 0
    iot.enable_topic_rule(ruleName=disabled)
    publish(data, "site/z", {"a": 4})
    assert len(records(stack, off)) == 1


def test_binary_payload_passes_select_star_only(stack, data, rule, stream):
    raw, attr = stream(), stream()
    rule("SELECT * FROM 'bin/+'", [{"kinesis": {"streamName": raw, "roleArn": ROLE}}])
    rule("SELECT a FROM 'bin/+'", [{"kinesis": {"streamName": attr, "roleArn": ROLE}}])
    rule("SELECT * FROM 'bin/+' WHERE a = 1", [{"kinesis": {"streamName": attr, "roleArn": ROLE}}])
    publish(data, "bin/x", b"\x00\x01not json")
    assert [r["Data"] for r in records(stack, raw)] == [b"\x00\x01not json"]
    got = [json.loads(r["Data"]) for r in records(stack, attr)]
    assert got == [{}]           # SELECT a of a binary payload: a is Undefined, left out


# ------------------------------------------------------------------ the other actions
def test_s3_sqs_firehose_and_republish_actions(stack, data, rule, stream, bucket):
    sqs = stack.client("sqs")
    queue = sqs.create_queue(QueueName="iot-" + uuid.uuid4().hex[:8])["QueueUrl"]
    republished = stream()
    firehose = stack.client("firehose")
    delivery = "iot-" + uuid.uuid4().hex[:8]
    firehose.create_delivery_stream(
        DeliveryStreamName=delivery, DeliveryStreamType="DirectPut",
        ExtendedS3DestinationConfiguration={"RoleARN": ROLE, "BucketARN": f"arn:aws:s3:::{bucket}",
                                            "Prefix": "fh/",
                                            "BufferingHints": {"IntervalInSeconds": 0, "SizeInMBs": 1}})
    rule("SELECT temp, topic(3) AS room FROM 'home/+/+' WHERE temp > 0", [
        {"s3": {"bucketName": bucket, "key": "raw/${topic(2)}/${timestamp()}.json", "roleArn": ROLE}},
        {"sqs": {"queueUrl": queue, "useBase64": True, "roleArn": ROLE}},
        {"firehose": {"deliveryStreamName": delivery, "separator": "\n", "roleArn": ROLE}},
        {"republish": {"topic": "copies/${topic(3)}", "roleArn": ROLE}},
    ])
    rule("SELECT *, topic() AS t FROM 'copies/#'", [{"kinesis": {"streamName": republished, "roleArn": ROLE}}])
    publish(data, "home/h1/kitchen", {"temp": 21})

    raw = objects(stack, bucket, "raw/h1/")
    assert len(raw) == 1 and json.loads(next(iter(raw.values()))) == {"temp": 21, "room": "kitchen"}
    msgs = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    assert [json.loads(base64.b64decode(m["Body"])) for m in msgs] == [{"temp": 21, "room": "kitchen"}]
    assert [json.loads(r["Data"]) for r in records(stack, republished)] == \
        [{"temp": 21, "room": "kitchen", "t": "copies/kitchen"}]
    assert wait_until(lambda: objects(stack, bucket, "fh/"), 30)
    delivered = b"".join(objects(stack, bucket, "fh/").values())
    assert delivered == b'{"temp":21,"room":"kitchen"}\n'


def test_lambda_action_invokes_asynchronously(stack, data, rule, create_function, log_messages):
    name = "iot-" + uuid.uuid4().hex[:8]
    lam = create_function(name, "import json\ndef handler(event, context):\n    print('EVENT', json.dumps(event))\n")
    arn = lam.get_function(FunctionName=name)["Configuration"]["FunctionArn"]
    r = rule("SELECT device_id FROM 'lam/+'", [{"lambda": {"functionArn": arn}}])
    publish(data, "lam/a", {"device_id": "d7", "noise": 1})
    assert stack.local.iot.rule_stats(r)["actions_succeeded"] == 1

    def logged():
        try:
            return [m for m in log_messages(name) if m.startswith("EVENT")]
        except Exception:
            return []
    assert wait_until(logged, 60)
    assert json.loads(logged()[0][len("EVENT "):]) == {"device_id": "d7"}


# ------------------------------------------------------------------ errorAction
def test_missing_stream_sends_the_error_document_to_the_error_action(stack, data, rule, bucket):
    r = rule("SELECT * FROM 'err/+'",
             [{"kinesis": {"streamName": "no-such-stream", "roleArn": ROLE}}],
             {"s3": {"bucketName": bucket, "key": "errors/${newuuid()}", "roleArn": ROLE}})
    publish(data, "err/1", {"x": 1})
    docs = [json.loads(v) for v in objects(stack, bucket, "errors/").values()]
    assert len(docs) == 1
    doc = docs[0]
    assert doc["ruleName"] == r and doc["topic"] == "err/1" and doc["clientId"] == "n/a"
    assert set(doc) == {"ruleName", "topic", "cloudwatchTraceId", "clientId", "base64OriginalPayload", "failures"}
    assert json.loads(base64.b64decode(doc["base64OriginalPayload"])) == {"x": 1}
    [failure] = doc["failures"]
    assert failure["failedAction"] == "KinesisAction" and failure["failedResource"] == "no-such-stream"
    assert "ResourceNotFoundException" in failure["errorMessage"]
    assert stack.local.iot.rule_stats(r) == {"matched": 1, "actions_succeeded": 0,
                                             "actions_failed": 1, "error_actions": 1}


def test_throttled_shard_sends_the_overflow_to_the_error_action(stack, data, rule, stream, bucket, frozen):
    """A 1-shard stream takes 1,000 records per second: in one frozen second, the 1,001st
    PutRecord is throttled and that message goes to the error action."""
    name = stream(1)
    r = rule("SELECT * FROM 'burst/+'",
             [{"kinesis": {"streamName": name, "partitionKey": "${n}", "roleArn": ROLE}}],
             {"s3": {"bucketName": bucket, "key": "throttled/${n}", "roleArn": ROLE}})
    for n in range(1005):
        publish(data, "burst/x", {"n": n})
    assert len(records(stack, name)) == 1000
    throttled = objects(stack, bucket, "throttled/")
    assert sorted(throttled) == [f"throttled/{n}" for n in range(1000, 1005)]
    failure = json.loads(throttled["throttled/1000"])["failures"][0]
    assert "ProvisionedThroughputExceededException" in failure["errorMessage"]
    assert stack.local.iot.rule_stats(r) == {"matched": 1005, "actions_succeeded": 1000,
                                             "actions_failed": 5, "error_actions": 5}
    frozen.advance(1)                       # the next second has room again
    publish(data, "burst/x", {"n": 2000})
    assert len(records(stack, name)) == 1001


def test_rule_metrics_reach_cloudwatch(stack, data, rule, stream):
    name = stream()
    r = rule("SELECT * FROM 'metrics/+'", [{"kinesis": {"streamName": name, "roleArn": ROLE}}])
    publish(data, "metrics/a", {"v": 1})
    assert stack.local.iot.flush_metrics()
    cw = stack.client("cloudwatch")
    listed = cw.list_metrics(Namespace="AWS/IoT", Dimensions=[{"Name": "RuleName", "Value": r}])["Metrics"]
    assert {m["MetricName"] for m in listed} == {"TopicMatch", "Success"}
