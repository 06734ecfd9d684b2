"""Kinesis Data Streams' data plane: limits, throttling, iterators and resharding as on AWS.

moto keeps the streams, shards and records and gets much right: shard ids
and even hash ranges, MD5 routing of partition keys, DescribeStream,
ListShards, retention periods (24 to 8,760 hours), consumers, tags,
encryption settings, the 500-record PutRecords limit, ON_DEMAND streams (4
shards, no UpdateShardCount). What it gets wrong, and this plane takes over
(see ``localaws/core/plane.py`` for the marks):

- **Limits.** moto accepts a PutRecord of any size (PutRecords stops at
  1 MiB and at the old 5 MB per request), answers a 257-character partition
  key with ``InvalidArgumentException: partition_key`` and a bad
  ``ExplicitHashKey`` with a Python traceback; it ignores
  ``MaxRecordSizeInKiB`` and has no UpdateMaxRecordSize. Here the limits of
  ``engine.py`` hold, worded as AWS words them.
- **Throughput.** moto never throttles. Here every shard has token buckets on
  the stack's clock: PutRecord raises ``ProvisionedThroughputExceededException``,
  PutRecords fails the records that do not fit (``ErrorCode``/``ErrorMessage``,
  ``FailedRecordCount``) and stores the others, GetRecords over 5 calls/s or
  2 MiB/s raises.
- **Resharding.** moto's SplitShard moves the parent's records away and then
  keeps writing new records into the *closed* parent (its shard lookup ignores
  whether a shard is open, and misses each shard's last hash key); MergeShards
  copies both parents' records into the child with new sequence numbers.
  Here, as on AWS, a parent keeps its records and closes; new records go to
  the children; sequence numbers grow across the stack, so a key's records
  in a child come after those in its parent. Read the parent to its end, then
  the children (GetRecords then answers ``NextShardIterator`` None and lists
  ``ChildShards``): that is how per-key order survives resharding.
- **Iterators.** moto's never expire, never end and crash on garbage. Here an
  iterator lives 5 minutes of the stack's clock (``ExpiredIteratorException``),
  a malformed one is ``InvalidArgumentException: Invalid ShardIterator.``,
  records past the retention period are gone, ``MillisBehindLatest`` is real.
- **Metrics.** IncomingRecords, IncomingBytes, WriteProvisionedThroughputExceeded,
  ReadProvisionedThroughputExceeded, GetRecords.Records, GetRecords.Bytes and
  GetRecords.IteratorAgeMilliseconds are published to CloudWatch (namespace
  ``AWS/Kinesis``, dimension ``StreamName``) from what this plane measured,
  stamped with the stack's clock, through the CloudWatch API as any client would
  (from a background thread, ``metrics.py``: they appear milliseconds later).

Lambda event source mappings are not this plane's business: as on AWS, Lambda
runs a poller per mapping that reads the shards through GetShardIterator and
GetRecords (``localaws/awslambda/streams.py``), so a mapping shares each shard's
read limits with every other consumer. moto's inline delivery (the function
run inside PutRecord, once per record) is switched off by the Lambda plane
(its hook of ``LambdaBackend.send_kinesis_message``). Not emulated:
enhanced fan-out (SubscribeToShard), the 5 calls/s limits of GetShardIterator
and of the control plane, UpdateShardCount's 10 scalings a day, on-demand
scaling and KMS. A Firehose delivery stream with a Kinesis source reads the
stream through this API, as any consumer does (``localaws/firehose/source.py``).
"""
from __future__ import annotations

import re
import threading

from localaws.core import AWSError, Plane, moto_hook, operation
from . import engine, errors
from .metrics import MetricsPublisher

MODELS = "moto.kinesis.models"


def _moto(call, *args, **kwargs):
    """Call moto from an ``@operation`` handler, turning its errors into ours."""
    from moto.core.exceptions import JsonRESTError
    try:
        return call(*args, **kwargs)
    except JsonRESTError as exc:
        raise AWSError(exc.message, code=exc.error_type, status=exc.code) from None


class KinesisPlane(Plane):
    """Kinesis Data Streams with AWS's limits, throttling, iterators and resharding."""

    name = "kinesis"
    services = ("kinesis",)

    def __init__(self, ctx):
        super().__init__(ctx)
        # moto's shards are not safe for concurrent use: appends, reads, buckets and resharding
        # take this lock (never while a Lambda handler runs)
        self._lock = threading.RLock()
        self.sequencer = engine.Sequencer()
        self.throughput = engine.Throughput()
        self._max_record_kib: dict[str, int] = {}   # stream ARN -> MaxRecordSizeInKiB
        self._cloudwatch: dict[str, object] = {}    # region -> client
        self.metrics = MetricsPublisher(self._cloudwatch_client)

    def stop(self):
        self.metrics.stop()

    # -- helpers ------------------------------------------------------------------
    def _backend(self, region: str):
        from moto.kinesis.models import kinesis_backends
        return kinesis_backends[self.ctx.account_id][region]

    def _stream(self, req):
        p = req.params
        return _moto(self._backend(req.region).describe_stream, p.get("StreamARN"), p.get("StreamName"))

    def _max_record_bytes(self, stream) -> int:
        return self._max_record_kib.get(stream.arn, engine.DEFAULT_MAX_RECORD_KIB) * 1024

    def _shard_limits(self, stream, shard) -> engine.ShardThroughput:
        return self.throughput.shard(stream.arn, shard.shard_id, self.ctx.clock.monotonic(),
                                     self._max_record_bytes(stream))

    def _cloudwatch_client(self, region: str):
        if region not in self._cloudwatch:
            self._cloudwatch[region] = self.ctx.client("cloudwatch", region_name=region)
        return self._cloudwatch[region]

    def _publish(self, stream, metrics: list[tuple[str, float, str]]) -> None:
        """Queue ``[(name, value, unit)]`` for ``stream``'s CloudWatch metrics, at the stack's time."""
        self.metrics.publish(stream.region, stream.stream_name, metrics, self.ctx.clock.now())

    # -- CreateStream, UpdateMaxRecordSize, DeleteStream, DescribeStreamSummary ---------
    @operation("CreateStream")
    def create_stream(self, req):
        """moto's CreateStream, plus ``MaxRecordSizeInKiB`` and ``Tags``, which moto drops."""
        p = req.params
        name, kib = p.get("StreamName") or "", p.get("MaxRecordSizeInKiB")
        if not re.fullmatch(r"[a-zA-Z0-9_.-]{1,128}", name):
            raise errors.ValidationException(engine.validation_message([engine.constraint(
                "streamName", "satisfy regular expression pattern: [a-zA-Z0-9_.-]+", name)]))
        self._check_record_kib(kib)
        mode = (p.get("StreamModeDetails") or {}).get("StreamMode", "PROVISIONED")
        if mode == "PROVISIONED" and p.get("ShardCount") is None:
            raise errors.ValidationException(engine.validation_message([engine.constraint(
                "shardCount", "not be null", None)]))
        backend = self._backend(req.region)
        if name in backend.streams:
            raise errors.ResourceInUseException(
                f"Stream {name} under account {self.ctx.account_id} already exists.")
        stream = _moto(backend.create_stream, name, p.get("ShardCount"),
                       stream_mode=p.get("StreamModeDetails"))
        stream.tags.update(p.get("Tags") or {})
        self._max_record_kib[stream.arn] = kib or engine.DEFAULT_MAX_RECORD_KIB
        return {}

    @staticmethod
    def _check_record_kib(kib) -> None:
        low, high = engine.MAX_RECORD_KIB_RANGE
        if kib is not None and not low <= kib <= high:
            rule = (f"have value greater than or equal to {low}" if kib < low
                    else f"have value less than or equal to {high}")
            raise errors.ValidationException(engine.validation_message([engine.constraint(
                "maxRecordSizeInKiB", rule, kib)]))

    @operation("UpdateMaxRecordSize")
    def update_max_record_size(self, req):
        """Raise (or lower) the largest record a stream takes: 1,024 to 10,240 KiB."""
        kib = req.params.get("MaxRecordSizeInKiB")
        if kib is None:
            raise errors.ValidationException(engine.validation_message([engine.constraint(
                "maxRecordSizeInKiB", "not be null", None)]))
        self._check_record_kib(kib)
        stream = self._stream(req)
        self._max_record_kib[stream.arn] = kib
        return {}

    @moto_hook(f"{MODELS}:KinesisBackend.delete_stream")
    def delete_stream(self, original, backend, stream_arn, stream_name):
        stream = original(backend, stream_arn, stream_name)
        self.throughput.forget(stream.arn)
        self._max_record_kib.pop(stream.arn, None)
        return stream

    @moto_hook(f"{MODELS}:Stream.to_json_summary")
    def summary(self, original, stream):
        """moto's summary, with the open shards counted (moto forgets splits) and the record size."""
        out = original(stream)
        summary = out["StreamDescriptionSummary"]
        summary["OpenShardCount"] = sum(1 for s in stream.shards.values() if s.is_open)
        summary["MaxRecordSizeInKiB"] = self._max_record_bytes(stream) // 1024
        return out

    # -- PutRecord / PutRecords ------------------------------------------------------
    def _check_request(self, stream, entries: list[tuple[str, dict]], batch: bool) -> None:
        """The checks that refuse a whole request after the API model's: the PutRecords
        request size, the stream's record size, the hash key range."""
        limit = self._max_record_bytes(stream)
        sizes = [engine.record_size(r["Data"], r["PartitionKey"]) for _, r in entries]
        if batch and sum(sizes) > engine.MAX_REQUEST_BYTES:
            raise errors.InvalidArgumentException(
                f"Records size exceeds {engine.MAX_REQUEST_BYTES // engine.MiB} MB limit")
        too_big = [engine.too_large(f"{prefix}data", limit) for (prefix, _), size in zip(entries, sizes)
                   if size > limit]
        if too_big:
            raise errors.ValidationException(engine.validation_message(too_big))
        for _, record in entries:
            problem = engine.hash_key_out_of_range(record.get("ExplicitHashKey"))
            if problem:
                raise errors.InvalidArgumentException(problem)

    def _put(self, stream, record: dict) -> tuple[dict, int]:
        """Store one checked record if its shard has the capacity. Returns the PutRecords
        entry (``SequenceNumber``, ``ShardId``, or ``ErrorCode``, ``ErrorMessage`` when the
        shard is over its write rate) and the bytes stored."""
        pk, ehk, data = record["PartitionKey"], record.get("ExplicitHashKey"), record["Data"]
        size = engine.record_size(data, pk)
        with self._lock:
            shard = stream.get_shard_for_key(pk, ehk)
            admitted = self._shard_limits(stream, shard).admit_write(size, self.ctx.clock.monotonic(),
                                                                     self._max_record_bytes(stream))
        if not admitted:
            message = engine.write_throttled(shard.shard_id, stream.stream_name, stream.account_id)
            return {"ErrorCode": "ProvisionedThroughputExceededException", "ErrorMessage": message}, 0
        # moto's put_record routes again and appends (our hooks, under the lock), then offers the
        # record to the stream's Lambda event source mappings, outside the lock; the Lambda plane
        # turns that offer into nothing, since on AWS Lambda's poller reads the shard itself.
        sequence, shard_id = stream.put_record(pk, ehk, data)
        return {"SequenceNumber": sequence, "ShardId": shard_id}, size

    def _publish_puts(self, stream, results: list[tuple[dict, int]]) -> None:
        stored = sum(1 for entry, _ in results if "SequenceNumber" in entry)
        self._publish(stream, [("IncomingRecords", stored, "Count"),
                               ("IncomingBytes", sum(size for _, size in results), "Bytes"),
                               ("WriteProvisionedThroughputExceeded", len(results) - stored, "Count")])

    @moto_hook(f"{MODELS}:KinesisBackend.put_record")
    def put_record(self, _moto_put, backend, stream_arn, stream_name, partition_key,
                   explicit_hash_key, data):
        problems = engine.record_problems("", partition_key, explicit_hash_key, data)
        if problems:
            raise errors.ValidationException(engine.validation_message(problems))
        stream = backend.describe_stream(stream_arn, stream_name)    # moto's ResourceNotFoundException
        record = {"PartitionKey": partition_key, "ExplicitHashKey": explicit_hash_key, "Data": data}
        self._check_request(stream, [("", record)], batch=False)
        result = self._put(stream, record)
        self._publish_puts(stream, [result])
        entry = result[0]
        if "ErrorCode" in entry:
            raise errors.ProvisionedThroughputExceededException(entry["ErrorMessage"])
        return entry["SequenceNumber"], entry["ShardId"]

    @moto_hook(f"{MODELS}:KinesisBackend.put_records")
    def put_records(self, _moto_put, backend, stream_arn, stream_name, records):
        if len(records) > engine.MAX_BATCH_RECORDS:
            raise errors.ValidationException(engine.validation_message([engine.constraint(
                "records", f"have length less than or equal to {engine.MAX_BATCH_RECORDS}")]))
        entries = [(f"records.{i}.member.", r) for i, r in enumerate(records, start=1)]
        problems = [problem for prefix, r in entries for problem in engine.record_problems(
            prefix, r.get("PartitionKey"), r.get("ExplicitHashKey"), r.get("Data"))]
        if problems:
            raise errors.ValidationException(engine.validation_message(problems))
        stream = backend.describe_stream(stream_arn, stream_name)
        self._check_request(stream, entries, batch=True)
        results = [self._put(stream, r) for r in records]   # a throttled one does not stop the next
        self._publish_puts(stream, results)
        entries = [entry for entry, _ in results]
        return {"FailedRecordCount": sum(1 for e in entries if "ErrorCode" in e), "Records": entries}

    # -- shards: routing, sequence numbers, resharding -----------------------------------
    @moto_hook(f"{MODELS}:Stream.get_shard_for_key")
    def route(self, _moto_route, stream, partition_key, explicit_hash_key):
        """The *open* shard whose hash range (both ends included) holds the record's key."""
        key = engine.hash_key(partition_key, explicit_hash_key or None)
        with self._lock:
            for shard in stream.shards.values():
                if shard.is_open and shard.starting_hash <= key <= shard.ending_hash:
                    return shard
        raise errors.InvalidArgumentException(f"No open shard of stream {stream.stream_name} "
                                              f"holds hash key {key}.")

    @moto_hook(f"{MODELS}:Shard.__init__")
    def new_shard(self, original, shard, *args, **kwargs):
        """Note where the new shard's sequence numbers start; it ends when it closes."""
        original(shard, *args, **kwargs)
        shard.first_sequence = self.sequencer.last + 1
        shard.last_sequence = None

    @moto_hook(f"{MODELS}:Shard.put_record")
    def append(self, _moto_append, shard, partition_key, data, explicit_hash_key):
        """Append a record with the next sequence number, arriving at the stack's time."""
        from moto.kinesis.models import Record
        with self._lock:
            sequence = self.sequencer.next()
            record = Record(partition_key, data, sequence, explicit_hash_key)
            record.created_at = self.ctx.clock.time()
            record.created_at_datetime = self.ctx.clock.now().replace(tzinfo=None)   # moto keeps naive UTC
            shard.records[sequence] = record
        return str(sequence)

    @moto_hook(f"{MODELS}:Shard.to_json")
    def shard_json(self, original, shard):
        """DescribeStream/ListShards: the shard's real sequence number range."""
        out = original(shard)
        numbers = out["SequenceNumberRange"]
        numbers["StartingSequenceNumber"] = str(self._first_sequence(shard))
        if not shard.is_open:
            numbers["EndingSequenceNumber"] = str(self._last_sequence(shard))
        return out

    @staticmethod
    def _first_sequence(shard) -> int:
        """The first sequence number a shard can hold (set when it was made)."""
        return getattr(shard, "first_sequence", engine.SEQUENCE_BASE + 1)

    def _last_sequence(self, shard) -> int:
        """The last sequence number a shard can hold: fixed when it closes, the stack's latest until then."""
        last = getattr(shard, "last_sequence", None)
        return self.sequencer.last if last is None else last

    def _close(self, shard) -> None:
        shard.is_open = False
        # An empty shard's range still ends at or after its start.
        shard.last_sequence = max(self.sequencer.last, self._first_sequence(shard))

    @staticmethod
    def _provisioned_only(stream) -> None:
        if stream.stream_mode.get("StreamMode") == "ON_DEMAND":
            raise errors.ValidationException(f"Request is invalid. Stream {stream.stream_name} under "
                                             f"account {stream.account_id} is in On-Demand mode.")

    @staticmethod
    def _not_closed(stream, shard) -> None:
        if not shard.is_open:
            raise errors.InvalidArgumentException(
                f"Shard {shard.shard_id} in stream {stream.stream_name} under account {stream.account_id} "
                "has already been merged or split, and thus is not eligible for merging or splitting.")

    @moto_hook(f"{MODELS}:Stream.split_shard")
    def split_shard(self, _moto_split, stream, shard_to_split, new_starting_hash_key):
        """Close the shard, keep its records; two children share its hash range."""
        self._provisioned_only(stream)
        shard, new = stream.shards[shard_to_split], int(new_starting_hash_key)
        if not shard.starting_hash < new < shard.ending_hash:     # moto's check and wording
            raise errors.InvalidArgumentException(
                f"NewStartingHashKey {new} used in SplitShard() on shard {shard_to_split} in stream "
                f"{stream.stream_name} under account {stream.account_id} is not both greater than one "
                f"plus the shard's StartingHashKey {shard.starting_hash} and less than the shard's "
                f"EndingHashKey {shard.ending_hash - 1}.")
        self._not_closed(stream, shard)
        with self._lock:
            self._close(shard)
            child_id = max(s._shard_id for s in stream.shards.values()) + 1
            for number, low, high in ((child_id, shard.starting_hash, new - 1),
                                      (child_id + 1, new, shard.ending_hash)):
                child = type(shard)(number, low, high, parent=shard.shard_id)
                stream.shards[child.shard_id] = child

    @moto_hook(f"{MODELS}:Stream.merge_shards")
    def merge_shards(self, _moto_merge, stream, shard_to_merge, adjacent_shard_to_merge):
        """Close both shards, keep their records; one child covers both hash ranges.

        As on AWS, ``ShardToMerge`` is the lower range and ``AdjacentShardToMerge``
        starts right after it (moto's check of the reverse order was off by two).
        """
        self._provisioned_only(stream)
        low, high = stream.shards[shard_to_merge], stream.shards[adjacent_shard_to_merge]
        if low.ending_hash + 1 != high.starting_hash:
            raise errors.InvalidArgumentException(
                f"Shards {low.shard_id} and {high.shard_id} in stream {stream.stream_name} under account "
                f"{stream.account_id} are not an adjacent pair of shards eligible for merging")
        self._not_closed(stream, low)
        self._not_closed(stream, high)
        with self._lock:
            self._close(low)
            self._close(high)
            child = type(low)(max(s._shard_id for s in stream.shards.values()) + 1, low.starting_hash,
                              high.ending_hash, parent=low.shard_id, adjacent_parent=high.shard_id)
            stream.shards[child.shard_id] = child

    @moto_hook(f"{MODELS}:Stream.update_shard_count")
    def update_shard_count(self, original, stream, target_shard_count):
        """moto's splits and merges (ours, above), within AWS's bounds: at most double,
        at least half the open shards in one call."""
        if stream.stream_mode.get("StreamMode") != "ON_DEMAND":
            current = sum(1 for s in stream.shards.values() if s.is_open)
            bound = ("scale up over double" if target_shard_count > 2 * current
                     else "scale down below half" if target_shard_count < current / 2 else None)
            if bound:
                raise errors.LimitExceededException(
                    f"UpdateShardCount cannot {bound} your current open shard count. Current open "
                    f"shard count: {current}, Target shard count: {target_shard_count}")
        with self._lock:
            return original(stream, target_shard_count)

    # -- GetShardIterator / GetRecords -----------------------------------------------
    @operation("GetShardIterator")
    def get_shard_iterator(self, req):
        p = req.params
        kind, start = p.get("ShardIteratorType"), p.get("StartingSequenceNumber")
        if kind not in engine.ITERATOR_TYPES:
            raise errors.ValidationException(engine.validation_message([engine.constraint(
                "shardIteratorType", f"satisfy enum value set: [{', '.join(engine.ITERATOR_TYPES)}]", kind)]))
        stream = self._stream(req)
        shard = stream.shards.get(p.get("ShardId"))
        if shard is None:
            raise errors.ResourceNotFoundException(f"Shard {p.get('ShardId')} in stream {stream.stream_name} "
                                                   f"under account {stream.account_id} does not exist")
        first = self._first_sequence(shard)
        with self._lock:
            if kind in ("AT_SEQUENCE_NUMBER", "AFTER_SEQUENCE_NUMBER"):
                after = self._position(stream, shard, kind, start, first)
            elif start is not None:
                raise errors.InvalidArgumentException(self._which_position(kind, "also a"))
            elif kind == "TRIM_HORIZON":
                after = first - 1
            elif kind == "LATEST":
                after = self._last_sequence(shard)
            else:
                after = self._at_timestamp(shard, p.get("Timestamp"), first)
        iterator = engine.Iterator(stream.arn, shard.shard_id, after, round(self.ctx.clock.time() * 1000))
        return {"ShardIterator": iterator.encode()}

    @staticmethod
    def _which_position(kind: str, what: str) -> str:
        return ("Must either specify (1) AT_SEQUENCE_NUMBER or AFTER_SEQUENCE_NUMBER and "
                "StartingSequenceNumber or (2) TRIM_HORIZON or LATEST and no StartingSequenceNumber. "
                f"Request specified {kind} and {what} StartingSequenceNumber.")

    def _position(self, stream, shard, kind: str, start, first: int) -> int:
        if start is None:
            raise errors.InvalidArgumentException(self._which_position(kind, "no"))
        if not re.fullmatch(r"0|([1-9]\d{0,128})", str(start)):
            raise errors.ValidationException(engine.validation_message([engine.constraint(
                "startingSequenceNumber", r"satisfy regular expression pattern: 0|([1-9]\d{0,128})", start)]))
        number = int(start)
        if not first <= number <= self._last_sequence(shard):
            raise errors.InvalidArgumentException(
                f"StartingSequenceNumber {start} used in GetShardIterator on shard {shard.shard_id} in "
                f"stream {stream.stream_name} under account {stream.account_id} is invalid.")
        return number - 1 if kind == "AT_SEQUENCE_NUMBER" else number

    @staticmethod
    def _at_timestamp(shard, timestamp, first: int) -> int:
        if timestamp is None:
            raise errors.InvalidArgumentException("Must specify timestampInMillis parameter for iterator "
                                                  "of type AT_TIMESTAMP. Current request has no timestamp "
                                                  "parameter.")
        if isinstance(timestamp, str):
            from datetime import datetime
            timestamp = datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()
        before = [seq for seq, r in shard.records.items() if r.created_at < float(timestamp)]
        return before[-1] if before else first - 1

    @operation("GetRecords")
    def get_records(self, req):
        p = req.params
        limit = p.get("Limit", engine.MAX_GET_RECORDS)
        if not 1 <= limit <= engine.MAX_GET_RECORDS:
            raise errors.InvalidArgumentException(engine.validation_message([engine.constraint(
                "limit", f"have value less than or equal to {engine.MAX_GET_RECORDS}", limit)]))
        try:
            position = engine.Iterator.decode(p.get("ShardIterator") or "")
        except ValueError:
            raise errors.InvalidArgumentException("Invalid ShardIterator.") from None
        now = self.ctx.clock.time()
        now_ms = round(now * 1000)
        if position.expired(now_ms):
            raise errors.ExpiredIteratorException(engine.expired_message(position.created_ms, now_ms))
        backend = self._backend(position.stream_arn.split(":")[3])
        stream = _moto(backend.describe_stream, position.stream_arn, None)
        shard = stream.shards.get(position.shard_id)
        if shard is None:
            raise errors.ResourceNotFoundException(f"Shard {position.shard_id} in stream {stream.stream_name}"
                                                   f" under account {stream.account_id} does not exist")
        with self._lock:
            limits = self._shard_limits(stream, shard)
            admitted = limits.admit_read(self.ctx.clock.monotonic())
            if admitted:
                engine.trim(shard.records, now - stream.retention_period_hours * 3600)
                records = engine.take(shard.records, position.after, limit)
                after = int(records[-1].sequence_number) if records else position.after
                size = sum(engine.record_size(r.data, r.partition_key) for r in records)
                limits.charge_read(size)
                unread = engine.first_after(shard.records, after)
                at_end = not shard.is_open and unread is None     # a closed shard gets nothing more
        if not admitted:
            self._publish(stream, [("ReadProvisionedThroughputExceeded", 1, "Count")])
            raise errors.ProvisionedThroughputExceededException(
                engine.read_throttled(shard.shard_id, stream.stream_name, stream.account_id))
        # 0 means caught up (nothing unread). Records still unread that arrived at this
        # very clock reading (a frozen clock) are still "behind": at least 1 ms.
        behind = 0 if unread is None else max(1, round((now - unread.created_at) * 1000))
        age = round((now - records[-1].created_at) * 1000) if records else behind
        out = {"Records": [{"SequenceNumber": str(r.sequence_number), "ApproximateArrivalTimestamp": r.created_at,
                            "Data": r.data, "PartitionKey": r.partition_key} for r in records],
               "MillisBehindLatest": behind}
        if at_end:            # a closed shard read to its end: go on with its children
            out["ChildShards"] = [self._child(c) for c in stream.shards.values()
                                  if shard.shard_id in (c.parent, c.adjacent_parent)]
        else:
            out["NextShardIterator"] = engine.Iterator(stream.arn, shard.shard_id, after, now_ms).encode()
        self._publish(stream, [("GetRecords.Records", len(records), "Count"), ("GetRecords.Bytes", size, "Bytes"),
                               ("GetRecords.IteratorAgeMilliseconds", max(0, age), "Milliseconds"),
                               ("ReadProvisionedThroughputExceeded", 0, "Count")])
        return out

    @staticmethod
    def _child(shard) -> dict:
        return {"ShardId": shard.shard_id,
                "ParentShards": [p for p in (shard.parent, shard.adjacent_parent) if p],
                "HashKeyRange": {"StartingHashKey": str(shard.starting_hash),
                                 "EndingHashKey": str(shard.ending_hash)}}


__all__ = ["KinesisPlane"]
