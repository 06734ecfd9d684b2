"""Kinesis -> Lambda event source mappings: the poller AWS runs for you.

When you map a function to a Kinesis data stream (CreateEventSourceMapping),
your code never calls GetRecords. Lambda runs a *poller* for the mapping
that reads every shard and invokes your function with batches of records.
The rules below are AWS's, from the Lambda Developer Guide: "Using Lambda
with Kinesis" (https://docs.aws.amazon.com/lambda/latest/dg/with-kinesis.html,
section "Polling and batching streams"), "Lambda parameters for Kinesis event
source mappings" (services-kinesis-parameters.html), "Retain discarded batch
records" (kinesis-on-failure-destination.html) and "Configuring partial batch
response" (services-kinesis-batchfailurereporting.html).

Reading
    Lambda polls each shard (standard iterator) about once per second, through
    the same GetRecords API as any consumer, so it shares the shard's 5 reads/s
    and 2 MiB/s with the others. Here one thread per mapping polls its shards
    once a second *of the stack's clock*: a frozen clock polls only when a
    notebook calls ``advance``. StartingPosition (required for Kinesis)
    is TRIM_HORIZON, LATEST or AT_TIMESTAMP (with StartingPositionTimestamp).
    A closed (split or merged) shard is read to its end before its children.

Batching
    BatchSize (default 100, at most 10,000) caps the records of one invocation;
    MaximumBatchingWindowInSeconds (default 0, at most 300) lets Lambda gather
    records for that long before it invokes, unless the batch fills first.
    (The 6 MB invocation payload cap is not checked here.) ParallelizationFactor
    (1 to 10 on AWS) is recorded but a shard is always processed one batch at a
    time here, as with the default factor 1.

Errors (per shard, in order)
    A failed batch blocks its shard: Lambda retries it, it does not skip it,
    until it succeeds, MaximumRetryAttempts is used up, or its records are
    older than MaximumRecordAgeInSeconds (both default -1, "until the records
    expire from the stream"). Only then is the batch discarded, a record of it
    sent to the DestinationConfig OnFailure queue or topic, and the shard moves
    on. Here a retry waits for the next poll (one second of the stack's clock).

    BisectBatchOnFunctionError splits a failed batch in two and retries each
    half; "splitting a batch does not count towards the retry quota", so a
    poison record ends up alone in a batch of one, and only it is discarded.

    With FunctionResponseTypes ["ReportBatchItemFailures"] the handler may
    return ``{"batchItemFailures": [{"itemIdentifier": "<sequence number>"}]}``:
    Lambda checkpoints at the lowest reported sequence number and retries from
    that record on (the records before it count as processed). An empty or null
    list, or an empty or null response, is complete success; an empty or null
    ``itemIdentifier``, or a wrong key name, is complete failure.

After a success the shard's checkpoint moves past the batch: a record is
processed once per success, never again.
"""
from __future__ import annotations

import base64
import json
import threading
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable

from localaws.core.clock import reached

from . import errors

STARTING_POSITIONS = ("TRIM_HORIZON", "LATEST", "AT_TIMESTAMP")
DEFAULT_BATCH_SIZE, MAX_BATCH_SIZE = 100, 10_000          # services-kinesis-parameters
MAX_WINDOW = 300                                          # MaximumBatchingWindowInSeconds
RETRY_RANGE = (-1, 10_000)                                # MaximumRetryAttempts
AGE_RANGE = (60, 604_800)                                 # MaximumRecordAgeInSeconds (or -1)
PARALLELIZATION_RANGE = (1, 10)
POLL_SECONDS = 1.0                                        # "polls ... once per second"
KEPT_BATCHES = 1000                                       # the stats keep the last batches only


def _range_error(field: str, value, low: int | None, high: int | None) -> None:
    """The API model's ValidationException wording for a number out of range."""
    if low is not None and value < low:
        rule = f"have value greater than or equal to {low}"
    elif high is not None and value > high:
        rule = f"have value less than or equal to {high}"
    else:
        return
    raise errors.ValidationException(f"1 validation error detected: Value '{value}' at '{field}' "
                                     f"failed to satisfy constraint: Member must {rule}")


def check(spec: dict, create: bool = True) -> None:
    """Refuse a Kinesis mapping AWS would refuse, before moto records anything.

    Ranges from "Lambda parameters for Amazon Kinesis Data Streams event source
    mappings": BatchSize 1-10,000, MaximumBatchingWindowInSeconds 0-300,
    MaximumRetryAttempts -1-10,000, MaximumRecordAgeInSeconds -1 or 60-604,800,
    ParallelizationFactor 1-10; StartingPosition is required.
    """
    if spec.get("BatchSize") is not None:
        _range_error("batchSize", spec["BatchSize"], 1, MAX_BATCH_SIZE)
    if spec.get("MaximumBatchingWindowInSeconds") is not None:
        _range_error("maximumBatchingWindowInSeconds", spec["MaximumBatchingWindowInSeconds"], 0, MAX_WINDOW)
    if spec.get("MaximumRetryAttempts") is not None:
        _range_error("maximumRetryAttempts", spec["MaximumRetryAttempts"], *RETRY_RANGE)
    if spec.get("ParallelizationFactor") is not None:
        _range_error("parallelizationFactor", spec["ParallelizationFactor"], *PARALLELIZATION_RANGE)
    age = spec.get("MaximumRecordAgeInSeconds")
    if age is not None and age != -1:
        _range_error("maximumRecordAgeInSeconds", age, *AGE_RANGE)
    if create:
        position = spec.get("StartingPosition")
        if position is None:
            raise errors.InvalidParameterValueException(
                "1 validation error detected: Value null at 'startingPosition' failed to satisfy "
                "constraint: Member must not be null")
        if position not in STARTING_POSITIONS:
            raise errors.ValidationException(
                f"1 validation error detected: Value '{position}' at 'startingPosition' failed to satisfy "
                f"constraint: Member must satisfy enum value set: [{', '.join(STARTING_POSITIONS)}]")
        if position == "AT_TIMESTAMP" and spec.get("StartingPositionTimestamp") is None:
            raise errors.InvalidParameterValueException(
                "StartingPositionTimestamp must be set when StartingPosition is AT_TIMESTAMP.")
    destination = (((spec.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination"))
    if destination and destination.split(":")[2:3] not in (["sqs"], ["sns"]):
        raise errors.InvalidParameterValueException(
            "Unsupported OnFailure destination: only an Amazon SQS queue or an Amazon SNS topic "
            "runs locally (AWS also accepts an S3 bucket or a Kafka topic).")


def _iso(epoch: float) -> str:
    """``2019-11-14T00:38:04.835Z``, as the on-failure record writes times."""
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _epoch(value) -> float:
    return value.timestamp() if isinstance(value, datetime) else float(value)


@dataclass
class Batch:
    """Records of one shard that go to the function together (GetRecords' shapes)."""
    records: list[dict]
    retries: int = 0            # failed invocations of this batch that counted towards the quota
    invocations: int = 0        # every invocation of it ("approximateInvokeCount")


@dataclass
class Shard:
    """The poller's cursor in one shard."""
    shard_id: str
    parents: tuple[str, ...]
    iterator: str | None = None
    after: str | None = None                   # last sequence number read
    started_at: float | None = None            # stack time the first iterator was taken
    kind: str = "TRIM_HORIZON"
    timestamp: float | None = None
    buffer: list[dict] = field(default_factory=list)    # read, not yet batched
    buffer_since: float | None = None          # stack monotonic time the buffer started filling
    work: deque = field(default_factory=deque)          # batches to invoke, in order
    ended: bool = False                        # a closed shard read to its end

    @property
    def done(self) -> bool:
        return self.ended and not self.buffer and not self.work


def toggled_state(state: str, enabled: bool) -> str:
    """A mapping's State right after UpdateEventSourceMapping(Enabled=...), until its poller acts:
    ``Enabling`` or ``Disabling`` when it changes, else unchanged."""
    if enabled and state in ("Disabled", "Disabling"):
        return "Enabling"
    if not enabled and state in ("Enabled", "Enabling", "Creating"):
        return "Disabling"
    return state


class KinesisPoller:
    """The poller of one Kinesis event source mapping: one thread, every shard in turn.

    ``mapping`` is moto's EventSourceMapping record (its fields are re-read each
    poll, so UpdateEventSourceMapping takes effect at the next one);
    ``kinesis`` a boto3 client of the stream's Region; ``invoke(function_arn,
    event)`` runs the function and returns ``(function_error, payload, request_id)``;
    ``send_failure(destination_arn, document)`` delivers an on-failure record.
    """

    def __init__(self, mapping, *, kinesis, clock, invoke: Callable, send_failure: Callable,
                 role: str):
        self.mapping = mapping
        self.kinesis = kinesis
        self.clock = clock
        self.invoke = invoke
        self.send_failure = send_failure
        self.role = role
        self.stream_arn: str = mapping.event_source_arn
        self.region = self.stream_arn.split(":")[3]
        self.state = "Creating" if mapping.enabled else "Disabled"
        self.last_result = "No records processed"
        self.shards: dict[str, Shard] = {}
        self._started = False
        self._stop = False
        self._cond = threading.Condition()
        self._last_poll: float | None = None
        self.stats: dict[str, Any] = {"polls": 0, "waiting": False, "invocations": 0, "records_processed": 0,
                                      "failed_invocations": 0, "bisections": 0, "records_discarded": 0,
                                      "sent_on_failure": 0, "processed": [], "batches": []}
        self.thread = threading.Thread(target=self._run, daemon=True,
                                       name=f"lambda-kinesis-{mapping.uuid[:8]}")

    # -- control: CreateEventSourceMapping, Update (Enabled), Delete, stack stop -------------
    def start(self) -> None:
        self.clock.watch(self._cond)
        self.thread.start()

    def set_enabled(self, enabled: bool) -> None:
        """UpdateEventSourceMapping(Enabled=...): ``Enabling``/``Disabling`` until the poller acts."""
        with self._cond:
            self.state = toggled_state(self.state, enabled)
            self._cond.notify_all()

    def wake(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def stop(self, timeout: float = 30) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        if self.thread.is_alive() and self.thread is not threading.current_thread():
            self.thread.join(timeout)
        self.clock.unwatch(self._cond)

    # -- the loop ----------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stop and not self._due():
                    self.stats["waiting"] = True
                    self.clock.wait(self._cond, self._seconds_to_due())
                self.stats["waiting"] = False
                if self._stop:
                    return
                if self.state == "Disabling":
                    self.state = "Disabled"
                enabled = self.state in ("Creating", "Enabling", "Enabled")
            try:
                if enabled:
                    self._poll()
            except Exception as exc:       # a poller never dies: AWS keeps retrying, so do we
                self.last_result = f"PROBLEM: {type(exc).__name__}: {exc}"
            with self._cond:
                self._last_poll = self.clock.monotonic()
                if enabled and self.state in ("Creating", "Enabling"):
                    self.state = "Enabled"
                self.stats["polls"] += 1
                self._cond.notify_all()

    def _due(self) -> bool:
        if self.state in ("Creating", "Enabling", "Disabling") or self._last_poll is None:
            return True
        return self._seconds_to_due() <= 0

    def _seconds_to_due(self) -> float:
        now = self.clock.monotonic()
        due = (self._last_poll or now) + POLL_SECONDS
        for shard in self.shards.values():          # a batching window may end before the next poll
            if shard.buffer and shard.buffer_since is not None and not shard.work:
                due = min(due, shard.buffer_since + self._window())
        return due - now

    # -- configuration, read from moto's record each time ------------------------------------
    def _batch_size(self) -> int:
        return int(self.mapping.batch_size or DEFAULT_BATCH_SIZE)

    def _window(self) -> float:
        return float(self.mapping.max_batch_window or 0)

    def _max_retries(self) -> int:
        value = self.mapping.max_retry_attempts
        return -1 if value is None else int(value)

    def _max_age(self) -> int:
        value = self.mapping.max_record_age
        return -1 if value is None else int(value)

    def _reports_item_failures(self) -> bool:
        return "ReportBatchItemFailures" in (self.mapping.function_response_types or [])

    # -- one poll: every shard, parents before children ----------------------------------------
    def _poll(self) -> None:
        self._discover()
        for shard in list(self.shards.values()):
            if self._stop:
                return
            if shard.done or any(p in self.shards and not self.shards[p].done for p in shard.parents):
                continue
            if not shard.work:
                self._read(shard)
                self._cut(shard)
            self._process(shard)

    def _discover(self) -> None:
        """ListShards: new shards (children of a split or merge) start at their beginning."""
        listed, token = [], None
        while True:
            page = (self.kinesis.list_shards(NextToken=token) if token
                    else self.kinesis.list_shards(StreamARN=self.stream_arn))
            listed += page["Shards"]
            token = page.get("NextToken")
            if not token:
                break
        first = not self._started
        for s in listed:
            if s["ShardId"] in self.shards:
                continue
            parents = tuple(p for p in (s.get("ParentShardId"), s.get("AdjacentParentShardId")) if p)
            shard = Shard(s["ShardId"], parents)
            closed = "EndingSequenceNumber" in s["SequenceNumberRange"]
            if first:
                shard.kind = self.mapping.starting_position or "TRIM_HORIZON"
                if shard.kind == "AT_TIMESTAMP":
                    shard.timestamp = _epoch(self.mapping.starting_position_timestamp)
                if shard.kind == "LATEST" and closed:
                    shard.ended = True          # nothing new will ever arrive in a closed shard
            self.shards[shard.shard_id] = shard
            if not shard.ended:
                self._new_iterator(shard)
        self._started = True

    def _new_iterator(self, shard: Shard) -> None:
        """GetShardIterator: at the start position, or after the last record read."""
        args: dict[str, Any] = {"StreamARN": self.stream_arn, "ShardId": shard.shard_id}
        if shard.after is not None:
            args.update(ShardIteratorType="AFTER_SEQUENCE_NUMBER", StartingSequenceNumber=shard.after)
        elif shard.kind == "AT_TIMESTAMP" or (shard.kind == "LATEST" and shard.started_at is not None):
            # an expired LATEST iterator that read nothing: go on from when it was taken
            args.update(ShardIteratorType="AT_TIMESTAMP",
                        Timestamp=shard.timestamp if shard.kind == "AT_TIMESTAMP" else shard.started_at)
        else:
            args.update(ShardIteratorType=shard.kind)
        if shard.started_at is None:
            shard.started_at = self.clock.time()
        shard.iterator = self.kinesis.get_shard_iterator(**args)["ShardIterator"]

    def _read(self, shard: Shard) -> None:
        """One GetRecords per shard per poll, for at most the records a batch still lacks."""
        if shard.ended:
            return
        wanted = self._batch_size() - len(shard.buffer)
        if wanted <= 0:
            return
        errors = self.kinesis.exceptions
        try:
            answer = self.kinesis.get_records(ShardIterator=shard.iterator, Limit=min(wanted, MAX_BATCH_SIZE))
        except errors.ExpiredIteratorException:
            self._new_iterator(shard)
            return
        except errors.ProvisionedThroughputExceededException:
            return                                   # over the shard's 5 reads/s: next poll
        records = answer["Records"]
        if records:
            if not shard.buffer:
                shard.buffer_since = self.clock.monotonic()
            shard.buffer += records
            shard.after = records[-1]["SequenceNumber"]
        shard.iterator = answer.get("NextShardIterator")
        if shard.iterator is None:
            shard.ended = True

    def _cut(self, shard: Shard) -> None:
        """Make a batch of the buffer when it is full, the window has passed, or the shard ended."""
        if not shard.buffer:
            return
        size = self._batch_size()
        waited = self.clock.monotonic() - (shard.buffer_since or 0)
        if len(shard.buffer) >= size or reached(waited, self._window()) or shard.ended:
            shard.work.append(Batch(shard.buffer[:size]))
            shard.buffer = shard.buffer[size:]
            shard.buffer_since = self.clock.monotonic() if shard.buffer else None

    # -- invoking, retrying, bisecting, discarding ---------------------------------------------
    def _process(self, shard: Shard) -> None:
        """Invoke the shard's batches in order; stop at a failure (it is retried next poll)."""
        while shard.work and not self._stop:
            batch = shard.work[0]
            self._drop_expired(shard, batch)
            if not batch.records:
                shard.work.popleft()
                continue
            error, payload, request_id = self._invoke(shard, batch)
            failed_from = self._failed_from(batch, error, payload)
            if failed_from is None:                       # complete success: checkpoint past it
                self._succeeded(batch.records)
                shard.work.popleft()
                self.last_result = "OK"
                continue
            self.stats["failed_invocations"] += 1
            self.last_result = "PROBLEM: Function call failed"
            self._succeeded(batch.records[:failed_from])
            remaining = batch.records[failed_from:]
            if error and self.mapping.bisect_on_error and len(remaining) > 1:
                half = len(remaining) // 2                 # the split is not a counted retry
                shard.work.popleft()
                shard.work.extendleft([Batch(remaining[half:], batch.retries),
                                       Batch(remaining[:half], batch.retries)])
                self.stats["bisections"] += 1
                continue
            batch.records = remaining
            limit = self._max_retries()
            if limit != -1 and batch.retries >= limit:
                self._discard(shard, batch, "RetryAttemptsExhausted", request_id, error)
                shard.work.popleft()
                continue
            batch.retries += 1
            return                                        # retried at the next poll

    def _drop_expired(self, shard: Shard, batch: Batch) -> None:
        """Records older than MaximumRecordAgeInSeconds are discarded, not sent to the function."""
        max_age = self._max_age()
        if max_age == -1:
            return
        now = self.clock.time()
        old = [r for r in batch.records if now - _epoch(r["ApproximateArrivalTimestamp"]) > max_age]
        if old:
            batch.records = batch.records[len(old):]
            self._discard(shard, Batch(old, batch.retries, batch.invocations), "RecordAgeExceeded", None, None)

    def _invoke(self, shard: Shard, batch: Batch):
        event = {"Records": [self._event_record(shard, r) for r in batch.records]}
        batch.invocations += 1
        self.stats["invocations"] += 1
        error, payload, request_id = self.invoke(self.mapping.function_arn, json.dumps(event).encode())
        self._note(shard, batch.records, "error" if error else "ok")
        return error, payload, request_id

    def _event_record(self, shard: Shard, r: dict) -> dict:
        """One record of the event, in the shape Lambda sends for Kinesis."""
        data = r["Data"] if isinstance(r["Data"], bytes) else str(r["Data"]).encode()
        return {
            "kinesis": {"kinesisSchemaVersion": "1.0", "partitionKey": r["PartitionKey"],
                        "sequenceNumber": r["SequenceNumber"], "data": base64.b64encode(data).decode(),
                        "approximateArrivalTimestamp": round(_epoch(r["ApproximateArrivalTimestamp"]), 3)},
            "eventSource": "aws:kinesis", "eventVersion": "1.0",
            "eventID": f"{shard.shard_id}:{r['SequenceNumber']}", "eventName": "aws:kinesis:record",
            "invokeIdentityArn": self.role, "awsRegion": self.region, "eventSourceARN": self.stream_arn,
        }

    def _failed_from(self, batch: Batch, error: str | None, payload: bytes) -> int | None:
        """Index of the first record to retry, or None when the batch succeeded."""
        if error:
            return 0
        if not self._reports_item_failures():
            return None
        try:
            response = json.loads(payload or b"null")
        except ValueError:
            return None
        if not isinstance(response, dict) or not response.get("batchItemFailures"):
            return None                                  # empty or null list/response: success
        positions = {r["SequenceNumber"]: i for i, r in enumerate(batch.records)}
        found = []
        for item in response["batchItemFailures"]:
            ident = item.get("itemIdentifier") if isinstance(item, dict) else None
            if not ident or ident not in positions:
                return 0                                  # null/empty/wrong key: complete failure
            found.append(positions[ident])
        return min(found)                                 # checkpoint at the lowest sequence number

    def _succeeded(self, records: list[dict]) -> None:
        self.stats["records_processed"] += len(records)
        self.stats["processed"] += [r["SequenceNumber"] for r in records]

    def _note(self, shard: Shard, records: list[dict], outcome: str) -> None:
        kept = self.stats["batches"]
        kept.append({"shard": shard.shard_id, "size": len(records), "outcome": outcome,
                     "sequence_numbers": [r["SequenceNumber"] for r in records]})
        del kept[:-KEPT_BATCHES]

    def _discard(self, shard: Shard, batch: Batch, condition: str, request_id: str | None,
                 error: str | None) -> None:
        """Skip the batch and send a record of it to the OnFailure destination, if there is one."""
        records = batch.records
        self.stats["records_discarded"] += len(records)
        destination = ((self.mapping.destination_config or {}).get("OnFailure") or {}).get("Destination")
        if not destination:
            return
        arrivals = [_epoch(r["ApproximateArrivalTimestamp"]) for r in records]
        document = {
            "requestContext": {"requestId": request_id or str(uuid.uuid4()),
                               "functionArn": self.mapping.function_arn, "condition": condition,
                               "approximateInvokeCount": batch.invocations},
            "responseContext": {"statusCode": 200, "executedVersion": "$LATEST",
                                "functionError": error or ""},
            "version": "1.0",
            "timestamp": _iso(self.clock.time()),
            "KinesisBatchInfo": {"shardId": shard.shard_id,
                                 "startSequenceNumber": records[0]["SequenceNumber"],
                                 "endSequenceNumber": records[-1]["SequenceNumber"],
                                 "approximateArrivalOfFirstRecord": _iso(arrivals[0]),
                                 "approximateArrivalOfLastRecord": _iso(arrivals[-1]),
                                 "batchSize": len(records), "streamArn": self.stream_arn},
        }
        if not batch.invocations:                        # the function never saw these records
            document.pop("responseContext")
        self.send_failure(destination, document)
        self.stats["sent_on_failure"] += 1

    # -- what a notebook may look at -------------------------------------------------------------
    def snapshot(self) -> dict:
        with self._cond:
            out = {k: (list(v) if isinstance(v, list) else v) for k, v in self.stats.items()}
            out["state"] = self.state
            out["last_processing_result"] = self.last_result
        return out
