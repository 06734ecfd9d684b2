"""The Lambda runtime really runs handlers: results, errors, timeouts, logs, events."""
import base64
import json

import pytest


HANDLERS = '''
import json, os, time
import boto3

def handler(event, context):
    print("adding", event["a"], "and", event["b"])
    return {"sum": event["a"] + event["b"], "function": context.function_name,
            "remaining_ok": 0 < context.get_remaining_time_in_millis() <= 3000}

def fails(event, context):
    raise ValueError("order 42 has no items")

def sleeps(event, context):
    time.sleep(30)

def record(event, context):
    """Write one marker object per record, so the test can count deliveries."""
    s3 = boto3.client("s3")   # AWS_ENDPOINT_URL points at the local stack
    for r in event["Records"]:
        if r.get("eventSource") == "aws:s3":
            key = r["s3"]["object"]["key"]
        else:
            key = "sqs/" + r["body"]
        s3.put_object(Bucket=os.environ["OUT_BUCKET"], Key="seen/" + key, Body=b"1")
    return len(event["Records"])
'''


@pytest.fixture(scope="module")
def lam(stack, create_function):
    client = create_function("t-add", HANDLERS, "app.handler")
    create_function("t-fails", HANDLERS, "app.fails")
    create_function("t-sleeps", HANDLERS, "app.sleeps", timeout=1)
    return client


def test_request_response_returns_the_handlers_result(lam):
    resp = lam.invoke(FunctionName="t-add", Payload=json.dumps({"a": 2, "b": 40}))
    assert resp["StatusCode"] == 200
    assert "FunctionError" not in resp
    assert json.loads(resp["Payload"].read()) == {"sum": 42, "function": "t-add", "remaining_ok": True}


def test_handler_exception_is_a_function_error(lam):
    resp = lam.invoke(FunctionName="t-fails", Payload=b"{}")
    assert resp["StatusCode"] == 200          # the API call worked; the function did not
    assert resp["FunctionError"] == "Unhandled"
    error = json.loads(resp["Payload"].read())
    assert error["errorType"] == "ValueError"
    assert error["errorMessage"] == "order 42 has no items"
    assert any('File "/var/task/app.py"' in frame for frame in error["stackTrace"])


def test_timeout_is_enforced(lam, stack, log_messages):
    before = set(stack.processes.pids())       # other planes' servers may be running
    resp = lam.invoke(FunctionName="t-sleeps", Payload=b"{}")
    assert resp["FunctionError"] == "Unhandled"
    error = json.loads(resp["Payload"].read())
    assert error["errorType"] == "Sandbox.Timedout"
    assert "Task timed out after 1.00 seconds" in error["errorMessage"]
    assert set(stack.processes.pids()) <= before        # the sleeping handler was killed
    assert any("Status: timeout" in m for m in log_messages("t-sleeps"))


def test_prints_are_captured_in_cloudwatch_logs(lam, stack, log_messages):
    resp = lam.invoke(FunctionName="t-add", Payload=json.dumps({"a": 1, "b": 1}), LogType="Tail")
    tail = base64.b64decode(resp["LogResult"]).decode()
    assert "adding 1 and 1" in tail
    messages = log_messages("t-add")
    assert "adding 1 and 1" in messages
    assert any(m.startswith("START RequestId: ") for m in messages)
    assert any(m.startswith("REPORT RequestId: ") and "Billed Duration" in m for m in messages)


def test_event_invocation_is_asynchronous(lam, stack, log_messages):
    resp = lam.invoke(FunctionName="t-add", InvocationType="Event", Payload=json.dumps({"a": 5, "b": 5}))
    assert resp["StatusCode"] == 202
    assert resp["Payload"].read() == b""
    assert stack.local.awslambda.wait_idle(30)
    assert "adding 5 and 5" in log_messages("t-add")


def test_s3_notification_invokes_once_per_object(stack, create_function, log_messages):
    s3 = stack.client("s3")
    s3.create_bucket(Bucket="t-incoming")
    s3.create_bucket(Bucket="t-out-s3")
    lam = create_function("t-record-s3", HANDLERS, "app.record",
                          Environment={"Variables": {"OUT_BUCKET": "t-out-s3"}})
    arn = lam.get_function(FunctionName="t-record-s3")["Configuration"]["FunctionArn"]
    s3.put_bucket_notification_configuration(Bucket="t-incoming", NotificationConfiguration={
        "LambdaFunctionConfigurations": [{"LambdaFunctionArn": arn, "Events": ["s3:ObjectCreated:*"]}]})
    keys = [f"data/part-{i}.csv" for i in range(5)]
    for key in keys:
        s3.put_object(Bucket="t-incoming", Key=key, Body=b"a,b\n1,2\n")
    assert stack.local.awslambda.wait_idle(60)
    seen = sorted(o["Key"] for o in s3.list_objects_v2(Bucket="t-out-s3")["Contents"])
    assert seen == [f"seen/{k}" for k in keys]
    starts = [m for m in log_messages("t-record-s3") if m.startswith("START")]
    assert len(starts) == len(keys)           # exactly one invocation per object


def test_sqs_event_source_mapping_delivers_and_deletes(stack, create_function):
    sqs = stack.client("sqs")
    s3 = stack.client("s3")
    s3.create_bucket(Bucket="t-out-sqs")
    queue_url = sqs.create_queue(QueueName="t-orders")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    lam = create_function("t-record-sqs", HANDLERS, "app.record",
                          Environment={"Variables": {"OUT_BUCKET": "t-out-sqs"}})
    uuid = lam.create_event_source_mapping(EventSourceArn=queue_arn, FunctionName="t-record-sqs",
                                           BatchSize=10)["UUID"]
    for body in ["order-1", "order-2", "order-3"]:
        sqs.send_message(QueueUrl=queue_url, MessageBody=body)
    # Lambda's poller reads the queue in the background, as on AWS: wait until it is drained.
    assert stack.local.awslambda.wait_sqs_idle(uuid, 60)
    seen = sorted(o["Key"] for o in s3.list_objects_v2(Bucket="t-out-sqs")["Contents"])
    assert seen == ["seen/sqs/order-1", "seen/sqs/order-2", "seen/sqs/order-3"]
    attrs = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])["Attributes"]
    assert attrs["ApproximateNumberOfMessages"] == "0"
