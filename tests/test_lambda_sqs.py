"""SQS -> Lambda event source mappings, polled as AWS polls them (``localaws/awslambda/sqs.py``).

Visibility timeouts are real time in SQS (and in moto): the tests use queues
with a 1-2 second VisibilityTimeout so that a failed batch comes back soon,
and wait for the mapping to drain with ``stack.local.awslambda.wait_sqs_idle``.
"""
from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from localaws.core.waiting import wait_until

ROOT = Path(__file__).resolve().parents[1]

HANDLERS = '''
import json, os
import boto3

s3 = boto3.client("s3")


def _mark(event, context):
    """One object per message delivered, whose body is the message as the function saw it."""
    for r in event["Records"]:
        s3.put_object(Bucket=os.environ["OUT"], Key=f"seen/{r['body']}/{context.aws_request_id}",
                      Body=json.dumps(r).encode())


def record(event, context):
    _mark(event, context)


def fail_first(event, context):
    if any(r["attributes"]["ApproximateReceiveCount"] == "1" for r in event["Records"]):
        raise RuntimeError("first delivery fails")
    _mark(event, context)


def partial(event, context):
    bad = [r for r in event["Records"] if r["body"].startswith("bad") and
           r["attributes"]["ApproximateReceiveCount"] == "1"]
    _mark({"Records": [r for r in event["Records"] if r not in bad]}, context)
    return {"batchItemFailures": [{"itemIdentifier": r["messageId"]} for r in bad]}


def bad_identifier(event, context):
    return {"batchItemFailures": [{"itemIdentifier": "no-such-message"}]}


def always_fails(event, context):
    raise ValueError("poison message")
'''

BUCKET = "t-lambda-sqs-out"


@pytest.fixture(scope="module")
def functions(stack, create_function):
    stack.client("s3").create_bucket(Bucket=BUCKET)
    env = {"Variables": {"OUT": BUCKET}}
    # 5 s: a slow start on a loaded machine (the timeout counts the process start and the boto3
    # import) must not turn a success into a timeout. So their queues need a visibility timeout of
    # at least 5 s (AWS's rule). always_fails fails anyway and keeps 1 s for its 1 s queue.
    for name in ("record", "fail_first", "partial", "bad_identifier", "always_fails"):
        lam = create_function(f"ls-{name.replace('_', '-')}", HANDLERS, f"app.{name}",
                              timeout=1 if name == "always_fails" else 5, Environment=env)
    return lam


@pytest.fixture
def make_queue(stack, unique):
    """``make_queue(visibility=5, **attributes)`` -> (url, ARN) of a new queue; its mappings deleted after."""
    sqs, lam, made = stack.client("sqs"), stack.client("lambda"), []

    def make(visibility=5, **attributes):
        url = sqs.create_queue(QueueName=unique("lsq"), Attributes={"VisibilityTimeout": str(visibility),
                                                                     **attributes})["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        made.append((url, arn))
        return url, arn
    yield make
    for url, arn in made:
        for m in lam.list_event_source_mappings(EventSourceArn=arn)["EventSourceMappings"]:
            lam.delete_event_source_mapping(UUID=m["UUID"])
        sqs.delete_queue(QueueUrl=url)


def send(stack, url, *bodies):
    stack.client("sqs").send_message_batch(QueueUrl=url, Entries=[
        {"Id": str(i), "MessageBody": b} for i, b in enumerate(bodies)])


def deliveries(stack, body) -> list[dict]:
    """The records the function saw for message ``body``, one per successful delivery."""
    s3 = stack.client("s3")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=f"seen/{body}/").get("Contents", [])]
    return [json.loads(s3.get_object(Bucket=BUCKET, Key=k)["Body"].read()) for k in keys]


def counts(stack, url) -> dict:
    attrs = stack.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    return {k: int(attrs[k]) for k in ("ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible")}


def test_a_batch_is_delivered_in_lambdas_event_shape_and_deleted(stack, functions, make_queue, unique):
    url, arn = make_queue(visibility=5)
    bodies = [unique("order") for _ in range(5)]
    send(stack, url, *bodies)
    lam = stack.client("lambda")
    mapping = lam.create_event_source_mapping(EventSourceArn=arn, FunctionName="ls-record", BatchSize=10)
    assert mapping["BatchSize"] == 10 and "StartingPosition" not in mapping
    assert stack.local.awslambda.wait_sqs_idle(mapping["UUID"], 60)

    stats = stack.local.awslambda.sqs_stats(mapping["UUID"])
    assert stats["invocations"] == 1 and stats["messages_deleted"] == 5
    assert sorted(stats["batches"][0]["bodies"]) == sorted(bodies)
    assert counts(stack, url) == {"ApproximateNumberOfMessages": 0, "ApproximateNumberOfMessagesNotVisible": 0}
    record = deliveries(stack, bodies[0])
    assert len(record) == 1
    r = record[0]
    assert set(r) == {"messageId", "receiptHandle", "body", "attributes", "messageAttributes", "md5OfBody",
                      "eventSource", "eventSourceARN", "awsRegion"}
    assert (r["eventSource"], r["eventSourceARN"], r["awsRegion"]) == ("aws:sqs", arn, "us-east-1")
    assert r["attributes"]["ApproximateReceiveCount"] == "1"
    assert lam.get_event_source_mapping(UUID=mapping["UUID"])["State"] == "Enabled"


def test_messages_sent_later_are_polled_not_delivered_inside_send_message(stack, functions, make_queue, unique):
    url, arn = make_queue()
    mapping = stack.client("lambda").create_event_source_mapping(EventSourceArn=arn, FunctionName="ls-record")
    body = unique("late")
    send(stack, url, body)
    assert stack.local.awslambda.wait_sqs_idle(mapping["UUID"], 60)
    assert len(deliveries(stack, body)) == 1
    assert stack.local.awslambda.sqs_stats(mapping["UUID"])["receives"] >= 1


def test_a_failed_batch_comes_back_after_the_visibility_timeout(stack, functions, make_queue, unique):
    url, arn = make_queue(visibility=5)
    bodies = [unique("retry") for _ in range(2)]
    send(stack, url, *bodies)
    mapping = stack.client("lambda").create_event_source_mapping(EventSourceArn=arn, FunctionName="ls-fail-first")
    assert stack.local.awslambda.wait_sqs_idle(mapping["UUID"], 60)
    stats = stack.local.awslambda.sqs_stats(mapping["UUID"])
    assert stats["failed_invocations"] == 1 and stats["messages_deleted"] == 2
    assert [b["outcome"] for b in stats["batches"]] == ["error", "ok"]
    for body in bodies:
        (seen,) = deliveries(stack, body)            # processed once, on its second receive
        assert seen["attributes"]["ApproximateReceiveCount"] == "2"


def test_partial_batch_response_keeps_only_the_failed_messages(stack, functions, make_queue, unique):
    url, arn = make_queue(visibility=5)
    good, bad = [unique("good") for _ in range(2)], [unique("bad") for _ in range(2)]
    send(stack, url, *good, *bad)
    mapping = stack.client("lambda").create_event_source_mapping(
        EventSourceArn=arn, FunctionName="ls-partial", FunctionResponseTypes=["ReportBatchItemFailures"])
    assert stack.local.awslambda.wait_sqs_idle(mapping["UUID"], 60)
    first, second = stack.local.awslambda.sqs_stats(mapping["UUID"])["batches"]
    assert first["outcome"] == "partial" and len(first["failed"]) == 2
    assert sorted(second["bodies"]) == sorted(bad) and second["outcome"] == "ok"   # only they came back
    for body in good:
        assert [s["attributes"]["ApproximateReceiveCount"] for s in deliveries(stack, body)] == ["1"]
    for body in bad:
        assert [s["attributes"]["ApproximateReceiveCount"] for s in deliveries(stack, body)] == ["2"]


def test_an_unknown_item_identifier_fails_the_whole_batch(stack, functions, make_queue, unique):
    url, arn = make_queue(visibility=30)
    send(stack, url, unique("m"))
    lam = stack.client("lambda")
    mapping = lam.create_event_source_mapping(EventSourceArn=arn, FunctionName="ls-bad-identifier",
                                              FunctionResponseTypes=["ReportBatchItemFailures"])
    assert wait_until(lambda: stack.local.awslambda.sqs_stats(mapping["UUID"])["invocations"] == 1, 60)
    assert wait_until(lambda: not stack.local.awslambda.sqs_stats(mapping["UUID"])["busy"], 60)
    assert stack.local.awslambda.sqs_stats(mapping["UUID"])["messages_deleted"] == 0
    assert counts(stack, url)["ApproximateNumberOfMessagesNotVisible"] == 1      # in flight, not deleted


def test_a_poison_message_goes_to_the_dead_letter_queue_after_max_receive_count(stack, functions, make_queue,
                                                                                unique):
    dlq_url, dlq_arn = make_queue(visibility=30)
    url, arn = make_queue(visibility=1, RedrivePolicy=json.dumps({"deadLetterTargetArn": dlq_arn,
                                                                   "maxReceiveCount": "2"}))
    body = unique("poison")
    send(stack, url, body)
    mapping = stack.client("lambda").create_event_source_mapping(EventSourceArn=arn,
                                                                 FunctionName="ls-always-fails")
    assert stack.local.awslambda.wait_sqs_idle(mapping["UUID"], 60)     # the source queue is empty...
    stats = stack.local.awslambda.sqs_stats(mapping["UUID"])
    assert stats["invocations"] == 2 and stats["failed_invocations"] == 2 and stats["messages_deleted"] == 0
    moved = stack.client("sqs").receive_message(QueueUrl=dlq_url, WaitTimeSeconds=5)["Messages"]
    assert [m["Body"] for m in moved] == [body]                         # ...the message is in the DLQ


def test_a_consumer_crash_mid_batch_is_redelivered_and_processed_once_more(stack, functions, make_queue,
                                                                          unique):
    url, arn = make_queue(visibility=5)
    bodies = [unique("crash") for _ in range(3)]
    send(stack, url, *bodies)
    stack.local.awslambda.crash_next_invocation("ls-record")
    mapping = stack.client("lambda").create_event_source_mapping(EventSourceArn=arn, FunctionName="ls-record")
    assert stack.local.awslambda.wait_sqs_idle(mapping["UUID"], 60)
    stats = stack.local.awslambda.sqs_stats(mapping["UUID"])
    assert [b["outcome"] for b in stats["batches"]] == ["error", "ok"]
    assert stats["messages_deleted"] == 3
    for body in bodies:
        (seen,) = deliveries(stack, body)
        assert seen["attributes"]["ApproximateReceiveCount"] == "2"


def test_crash_hook_refuses_a_negative_delay(stack):
    with pytest.raises(ValueError):
        stack.local.awslambda.crash_next_invocation("ls-record", after_seconds=-1)


def test_enabled_false_pauses_the_poller_and_true_resumes_it(stack, functions, make_queue, unique):
    url, arn = make_queue()
    lam = stack.client("lambda")
    uuid = lam.create_event_source_mapping(EventSourceArn=arn, FunctionName="ls-record")["UUID"]
    lam.update_event_source_mapping(UUID=uuid, Enabled=False)
    assert wait_until(lambda: lam.get_event_source_mapping(UUID=uuid)["State"] == "Disabled", 30)
    body = unique("paused")
    send(stack, url, body)
    assert not stack.local.awslambda.wait_sqs_idle(uuid, 2)            # nobody reads the queue
    assert stack.local.awslambda.sqs_stats(uuid)["invocations"] == 0
    assert counts(stack, url)["ApproximateNumberOfMessages"] == 1
    lam.update_event_source_mapping(UUID=uuid, Enabled=True)
    assert stack.local.awslambda.wait_sqs_idle(uuid, 60)
    assert len(deliveries(stack, body)) == 1
    assert lam.get_event_source_mapping(UUID=uuid)["State"] == "Enabled"


def test_delete_stops_the_poller(stack, functions, make_queue, unique):
    url, arn = make_queue()
    lam = stack.client("lambda")
    uuid = lam.create_event_source_mapping(EventSourceArn=arn, FunctionName="ls-record")["UUID"]
    assert wait_until(lambda: stack.local.awslambda.sqs_stats(uuid)["receives"] >= 1, 30)
    assert lam.delete_event_source_mapping(UUID=uuid)["State"] == "Deleting"
    assert not [t for t in threading.enumerate() if t.name == f"lambda-sqs-{uuid[:8]}"]
    send(stack, url, unique("orphan"))
    assert counts(stack, url)["ApproximateNumberOfMessages"] == 1       # nobody delivers it now
    assert stack.local.awslambda.sqs_stats(uuid)["invocations"] == 0


def test_bad_parameters_are_refused_before_anything_is_recorded(stack, functions, make_queue):
    _url, arn = make_queue(visibility=5)
    lam = stack.client("lambda")
    for kwargs, code in [({"BatchSize": 20}, "InvalidParameterValueException"),        # > 10 needs a window
                         ({"BatchSize": 10_001, "MaximumBatchingWindowInSeconds": 1}, "ValidationException"),
                         ({"MaximumBatchingWindowInSeconds": 301}, "ValidationException"),
                         ({"ScalingConfig": {"MaximumConcurrency": 1001}}, "ValidationException")]:
        with pytest.raises(lam.exceptions.ClientError) as info:
            lam.create_event_source_mapping(EventSourceArn=arn, FunctionName="ls-record", **kwargs)
        assert info.value.response["Error"]["Code"] == code
    _url, short = make_queue(visibility=4)          # the function's 5 s timeout exceeds it
    with pytest.raises(lam.exceptions.InvalidParameterValueException, match="visibility timeout"):
        lam.create_event_source_mapping(EventSourceArn=short, FunctionName="ls-record")
    for queue in (arn, short):
        assert lam.list_event_source_mappings(EventSourceArn=queue)["EventSourceMappings"] == []


STOP = """
import json, threading, localaws
from localaws.awslambda import zip_package
with localaws.start() as s:
    role = s.client("iam").create_role(RoleName="r", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    s.client("lambda").create_function(FunctionName="f", Runtime="python3.11", Role=role, Handler="app.h",
                                       Code={"ZipFile": zip_package({"app.py": "def h(e, c):\\n    return None\\n"})})
    sqs = s.client("sqs")
    url = sqs.create_queue(QueueName="q")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    m = s.client("lambda").create_event_source_mapping(EventSourceArn=arn, FunctionName="f")["UUID"]
    sqs.send_message(QueueUrl=url, MessageBody="x")
    ok = s.local.awslambda.wait_sqs_idle(m, 60)
    processes = s.processes
print(json.dumps({"processed": ok, "pids": processes.pids(),
                  "threads": [t.name for t in threading.enumerate() if t.name.startswith("lambda-sqs")]}))
"""


def test_no_poller_thread_or_process_is_left_after_the_stack_stops():
    out = subprocess.run([sys.executable, "-c", STOP], capture_output=True, text=True, timeout=180, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {"processed": True, "pids": [], "threads": []}
