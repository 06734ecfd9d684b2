"""SQS -> Lambda event source mappings: the queue poller AWS runs for you.

When you map a function to an SQS queue (CreateEventSourceMapping), your code
never calls ReceiveMessage or DeleteMessage. Lambda runs pollers that
long-poll the queue, invoke your function with batches of messages and
delete them when it succeeds. The rules below are AWS's, from the Lambda
Developer Guide: "Using Lambda with Amazon SQS"
(https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html), "Lambda
parameters for Amazon SQS event source mappings" (services-sqs-parameters.html),
"Creating and configuring an Amazon SQS event source mapping"
(services-sqs-configure.html), "Configuring scaling behavior for SQS event
source mappings" (services-sqs-scaling.html) and "Handling errors for an SQS
event source in Lambda" (services-sqs-errorhandling.html).

Reading
    One poller thread per mapping calls ``ReceiveMessage`` through the SQS API,
    with long polling (``WaitTimeSeconds=1`` here, so that a stop is prompt),
    as any consumer would. A received message is *in flight*: invisible to
    every other consumer for the queue's ``VisibilityTimeout``.

Batching
    ``BatchSize`` (default 10; at most 10,000 for a standard queue, 10 for a
    FIFO queue) caps the messages of one invocation; one ReceiveMessage returns
    at most 10, so bigger batches are gathered over several calls during
    ``MaximumBatchingWindowInSeconds`` (default 0, at most 300; at least 1 when
    BatchSize is over 10; not for FIFO queues). With a window of 0 the function
    is invoked with whatever one ReceiveMessage returned.

Success and failure
    The function succeeded: Lambda deletes the batch (``DeleteMessageBatch``).
    It failed (an exception, a timeout, or its process died): Lambda does
    *nothing*; the messages stay in flight and "after your queue's visibility
    timeout runs out, the message will again reappear in the queue", to be
    received again, with a higher ``ApproximateReceiveCount``. The queue's
    ``RedrivePolicy`` then decides: once a message has been received
    ``maxReceiveCount`` times, SQS moves it to the ``deadLetterTargetArn`` queue
    instead of delivering it again (SQS does this, not Lambda: here moto does
    it inside ReceiveMessage). Without a redrive policy a poison message comes
    back until its retention period ends.

    With ``FunctionResponseTypes=["ReportBatchItemFailures"]`` the handler may
    return ``{"batchItemFailures": [{"itemIdentifier": "<messageId>"}]}``: only
    those messages stay (the others are deleted). An empty or null list, or an
    empty or null response, is complete success; an empty or null
    ``itemIdentifier``, an unknown message ID, or a wrong key name is complete
    failure (nothing is deleted); an exception is complete failure.

Since a failed batch is received again, a function may see a message more
than once (SQS standard queues are at-least-once anyway): handlers must be
idempotent.

Not emulated: concurrency. AWS starts with five concurrent batches and scales
up to 1,000 (``ScalingConfig.MaximumConcurrency``, 2-1,000, caps that; it is
checked and shown, not used): here one poller invokes one batch at a time.
Also not: the 6 MB payload cap of a batch, ``FilterCriteria``, the backoff
after errors (a failed batch's messages simply come back after the visibility
timeout), ``ProvisionedPollerConfig``. SQS visibility is real time in moto,
so this poller and its batching window run on real time, not the stack's clock.
"""
from __future__ import annotations

import base64
import json
import threading
import time
from typing import Any, Callable

from . import errors
from .streams import KEPT_BATCHES, _range_error, toggled_state

DEFAULT_BATCH_SIZE, MAX_BATCH_SIZE, MAX_FIFO_BATCH_SIZE = 10, 10_000, 10   # services-sqs-parameters
MAX_WINDOW = 300                                       # MaximumBatchingWindowInSeconds
CONCURRENCY_RANGE = (2, 1000)                          # ScalingConfig.MaximumConcurrency
RECEIVE_MAX = 10                                       # ReceiveMessage's MaxNumberOfMessages
DELETE_MAX = 10                                        # DeleteMessageBatch's entries
WAIT_SECONDS = 1                                       # long polling, short so that stop is prompt


def is_sqs(arn) -> bool:
    return isinstance(arn, str) and arn.split(":")[2:3] == ["sqs"]


def check(spec: dict, *, fifo: bool, visibility_timeout: int | None, function_timeout: int | None,
          current=None) -> None:
    """Refuse an SQS mapping AWS would refuse, before moto records anything.

    ``current`` is the mapping being updated (its settings fill what ``spec`` leaves out).
    """
    size = spec.get("BatchSize", getattr(current, "batch_size", None))
    window = spec.get("MaximumBatchingWindowInSeconds", getattr(current, "max_batch_window", None))
    if spec.get("BatchSize") is not None:
        _range_error("batchSize", spec["BatchSize"], 1, MAX_FIFO_BATCH_SIZE if fifo else MAX_BATCH_SIZE)
    if spec.get("MaximumBatchingWindowInSeconds") is not None:
        _range_error("maximumBatchingWindowInSeconds", spec["MaximumBatchingWindowInSeconds"], 0, MAX_WINDOW)
        if fifo and spec["MaximumBatchingWindowInSeconds"]:
            raise errors.InvalidParameterValueException("Batching window is not supported for FIFO queues.")
    if size is not None and size > DEFAULT_BATCH_SIZE and not window:
        raise errors.InvalidParameterValueException(
            "Maximum batch window in seconds must be greater than 0 if maximum batch size is greater than 10")
    concurrency = (spec.get("ScalingConfig") or {}).get("MaximumConcurrency")
    if concurrency is not None:
        _range_error("scalingConfig.maximumConcurrency", concurrency, *CONCURRENCY_RANGE)
    if visibility_timeout is not None and function_timeout is not None and function_timeout > visibility_timeout:
        raise errors.InvalidParameterValueException(
            f"Queue visibility timeout: {visibility_timeout} seconds is less than Function timeout: "
            f"{function_timeout} seconds")


def event_record(message: dict, queue_arn: str) -> dict:
    """One message of the event, in the shape Lambda sends for SQS (ReceiveMessage's shape in)."""
    attributes = {k: message.get("Attributes", {}).get(k) for k in
                  ("ApproximateReceiveCount", "SentTimestamp", "SenderId", "ApproximateFirstReceiveTimestamp")}
    for k in ("SequenceNumber", "MessageGroupId", "MessageDeduplicationId"):       # FIFO queues
        if k in message.get("Attributes", {}):
            attributes[k] = message["Attributes"][k]
    user = {}
    for name, value in (message.get("MessageAttributes") or {}).items():
        binary = value.get("BinaryValue")
        user[name] = {"stringValue": value.get("StringValue"),
                      "binaryValue": base64.b64encode(binary).decode() if binary is not None else None,
                      "stringListValues": [], "binaryListValues": [], "dataType": value.get("DataType")}
    return {"messageId": message["MessageId"], "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"], "attributes": attributes, "messageAttributes": user,
            "md5OfBody": message.get("MD5OfBody"), "eventSource": "aws:sqs",
            "eventSourceARN": queue_arn, "awsRegion": queue_arn.split(":")[3]}


def failed_ids(message_ids: list[str], error: str | None, payload: bytes, reports: bool) -> set[str]:
    """The messages of a batch that must stay in the queue after its invocation."""
    if error:
        return set(message_ids)                       # an exception, a timeout, a crash: all of them
    if not reports:
        return set()
    try:
        response = json.loads(payload or b"null")
    except ValueError:
        return set()
    if not isinstance(response, dict) or not response.get("batchItemFailures"):
        return set()                                  # empty or null list or response: success
    known, failed = set(message_ids), set()
    for item in response["batchItemFailures"]:
        ident = item.get("itemIdentifier") if isinstance(item, dict) else None
        if not ident or ident not in known:
            return set(message_ids)                   # null, empty, unknown, wrong key: complete failure
        failed.add(ident)
    return failed


class SqsPoller:
    """The poller of one SQS event source mapping: one thread, one batch at a time.

    ``mapping`` is moto's EventSourceMapping record (re-read each batch, so
    UpdateEventSourceMapping takes effect at the next one); ``sqs`` a boto3
    client of the queue's Region; ``invoke(function_arn, event)`` runs the
    function and returns ``(function_error, payload, request_id)``.
    """

    def __init__(self, mapping, *, sqs, invoke: Callable):
        self.mapping = mapping
        self.sqs = sqs
        self.invoke = invoke
        self.queue_arn: str = mapping.event_source_arn
        self.queue_url: str | None = None
        self.state = "Creating" if mapping.enabled else "Disabled"
        self.busy = False                      # a batch is received and not yet settled
        self._stop = False
        self._cond = threading.Condition()
        self.stats: dict[str, Any] = {"receives": 0, "invocations": 0, "failed_invocations": 0,
                                      "messages_received": 0, "messages_deleted": 0, "processed": [],
                                      "batches": [], "last_error": None}
        self.thread = threading.Thread(target=self._run, daemon=True, name=f"lambda-sqs-{mapping.uuid[:8]}")

    # -- control: CreateEventSourceMapping, Update (Enabled), Delete, stack stop -------------
    def start(self) -> None:
        self.thread.start()

    def set_enabled(self, enabled: bool) -> None:
        """UpdateEventSourceMapping(Enabled=...): ``Enabling``/``Disabling`` until the poller acts."""
        with self._cond:
            self.state = toggled_state(self.state, enabled)
            self._cond.notify_all()

    def stop(self, timeout: float = 30) -> None:
        """Stop after the batch in flight (if any); its messages come back if it was not settled."""
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        if self.thread.is_alive() and self.thread is not threading.current_thread():
            self.thread.join(timeout)

    def _enabled(self) -> bool:
        return not self._stop and self.state in ("Creating", "Enabling", "Enabled")

    # -- the loop ----------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._cond:
                if self.state == "Disabling":
                    self.state = "Disabled"
                    self._cond.notify_all()
                while not self._stop and self.state == "Disabled":
                    self._cond.wait()
                if self._stop:
                    return
                if self.state in ("Creating", "Enabling"):
                    self.state = "Enabled"
            try:
                if self.queue_url is None:
                    name, account = self.queue_arn.split(":")[5], self.queue_arn.split(":")[4]
                    self.queue_url = self.sqs.get_queue_url(QueueName=name,
                                                            QueueOwnerAWSAccountId=account)["QueueUrl"]
                batch = self._receive()
                if batch:
                    self._process(batch)
            except Exception as exc:       # a poller never dies: AWS keeps polling, so do we
                self.stats["last_error"] = f"{type(exc).__name__}: {exc}"
                with self._cond:           # not a hot loop: wait a second, or less if stopped
                    self._cond.wait_for(lambda: self._stop, timeout=1.0)
            finally:
                with self._cond:
                    self.busy = False
                    self._cond.notify_all()

    def _batch_size(self) -> int:
        return int(self.mapping.batch_size or DEFAULT_BATCH_SIZE)

    def _window(self) -> float:
        return float(self.mapping.max_batch_window or 0)

    def _reports_item_failures(self) -> bool:
        return "ReportBatchItemFailures" in (self.mapping.function_response_types or [])

    def _receive(self) -> list[dict]:
        """Long-poll until a first message arrives, then fill the batch during the window."""
        batch: list[dict] = []
        size, window = self._batch_size(), self._window()
        first_at = None
        while len(batch) < size and self._enabled():
            if batch and (window == 0 or time.monotonic() - first_at >= window):
                break
            answer = self.sqs.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=min(RECEIVE_MAX, size - len(batch)),
                WaitTimeSeconds=WAIT_SECONDS, AttributeNames=["All"], MessageAttributeNames=["All"])
            self.stats["receives"] += 1
            got = answer.get("Messages", [])
            if got:
                with self._cond:
                    self.busy = True
                if first_at is None:
                    first_at = time.monotonic()
                batch += got
            elif not batch:
                return []                  # back to the loop: look at Enabled and stop
        self.stats["messages_received"] += len(batch)
        return batch

    def _process(self, batch: list[dict]) -> None:
        event = {"Records": [event_record(m, self.queue_arn) for m in batch]}
        self.stats["invocations"] += 1
        error, payload, _request_id = self.invoke(self.mapping.function_arn, json.dumps(event).encode())
        ids = [m["MessageId"] for m in batch]
        failed = failed_ids(ids, error, payload, self._reports_item_failures())
        if failed:
            self.stats["failed_invocations"] += 1
        done = [m for m in batch if m["MessageId"] not in failed]
        for start in range(0, len(done), DELETE_MAX):
            chunk = done[start:start + DELETE_MAX]
            self.sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)])
        self.stats["messages_deleted"] += len(done)
        self.stats["processed"] += [m["MessageId"] for m in done]
        kept = self.stats["batches"]
        kept.append({"size": len(batch), "outcome": "error" if error else ("partial" if failed else "ok"),
                     "message_ids": ids, "failed": sorted(failed), "bodies": [m["Body"] for m in batch]})
        del kept[:-KEPT_BATCHES]

    # -- what a notebook may look at -------------------------------------------------------------
    def snapshot(self) -> dict:
        with self._cond:
            out = {k: (list(v) if isinstance(v, list) else v) for k, v in self.stats.items()}
            out["state"] = self.state
            out["busy"] = self.busy
        return out
