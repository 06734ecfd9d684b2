"""A Kinesis data stream as the source of a delivery stream [1].

With ``DeliveryStreamType="KinesisStreamAsSource"`` Firehose is a *consumer*
of the stream: it reads every shard and feeds what it reads into the
delivery stream's buffers; PutRecord and PutRecordBatch are refused
(``InvalidArgumentException: This operation is not permitted on
KinesisStreamAsSource delivery stream type.``, [1], wording from aws/aws-cli#7010).
As on AWS [1]:

- reading starts at ``LATEST``: records already in the stream when the
  delivery stream is created stay unread (the iterators are taken inside
  CreateDeliveryStream, and ``DeliveryStartTimestamp`` says when);
- each shard is read with ``GetRecords`` once per second (of the stack's
  clock), as the role ``KinesisStreamSourceConfiguration.RoleARN``, through
  the Kinesis API like any consumer, so it counts against the shard's 5
  reads/s (a throttled read is tried again a second later);
- resharding: a closed shard read to its end answers ``ChildShards``; a child
  is read (from ``TRIM_HORIZON``) once *all* its parents are finished, so a
  partition key's records stay in order across splits and merges;
- an iterator that expired (5 minutes of the stack's clock without a read,
  say after ``clock.advance(900)``) is renewed after the last record read
  (``AFTER_SEQUENCE_NUMBER``), or from the time of the last empty read
  (``AT_TIMESTAMP``).

Records keep their Kinesis arrival time (``approximateArrivalTimestamp``)
and metadata (``kinesisRecordMetadata``, which a Lambda transform receives).
One thread reads for every delivery stream of the stack, on the stack's
clock: frozen, it reads once per ``clock.advance(1)``.

Not emulated: KPL aggregated records are not de-aggregated; reading a
stream in another account or Region.

[1] https://docs.aws.amazon.com/firehose/latest/dev/writing-with-kinesis-streams.html
"""
from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone

POLL_SECONDS = 1.0            # GetRecords once per second for each shard [1]


@dataclass
class ShardReader:
    shard_id: str
    iterator: str | None
    after: str | None = None          # sequence number of the last record read
    quiet_since: float = 0.0          # epoch seconds of the last read that found nothing new
    parents: tuple = ()


@dataclass
class KinesisSource:
    """One delivery stream reading one Kinesis data stream."""
    name: str
    stream_arn: str
    client: object
    started: float                           # DeliveryStartTimestamp, epoch seconds
    readers: dict = field(default_factory=dict)     # shard id -> ShardReader
    finished: set = field(default_factory=set)
    waiting: dict = field(default_factory=dict)     # child shard id -> its parents
    next_poll: float = 0.0
    errors: list = field(default_factory=list)
    reads: int = 0

    def failed(self, text: str) -> None:
        """Note a failed read (kept: the last 100)."""
        self.errors.append(text)
        del self.errors[:-100]

    def describe(self) -> dict:
        return {"stream": self.stream_arn, "reading": sorted(self.readers), "finished": sorted(self.finished),
                "waiting": sorted(self.waiting), "reads": self.reads, "errors": list(self.errors[-20:])}


def open_source(name: str, stream_arn: str, client, now: float) -> KinesisSource:
    """Take ``LATEST`` iterators on every open shard (raises the Kinesis client's errors)."""
    source = KinesisSource(name, stream_arn, client, now)
    shards, token = [], None
    while True:
        page = client.list_shards(NextToken=token) if token else client.list_shards(StreamARN=stream_arn)
        shards += page["Shards"]
        token = page.get("NextToken")
        if not token:
            break
    for shard in shards:
        if "EndingSequenceNumber" in shard["SequenceNumberRange"]:
            continue                          # closed before we came: nothing new will arrive there
        iterator = client.get_shard_iterator(StreamARN=stream_arn, ShardId=shard["ShardId"],
                                             ShardIteratorType="LATEST")["ShardIterator"]
        source.readers[shard["ShardId"]] = ShardReader(shard["ShardId"], iterator, quiet_since=now)
    return source


class Sources:
    """The reader thread of a stack: polls each source's shards once per second of the clock.

    ``deliver(name, records)`` hands what was read to the delivery stream.
    """

    def __init__(self, clock, deliver, record_type):
        self._clock = clock
        self._deliver = deliver
        self._record = record_type
        self._cv = threading.Condition()
        self._sources: dict[str, KinesisSource] = {}
        self._thread: threading.Thread | None = None
        self._stopping = False

    def add(self, source: KinesisSource) -> None:
        with self._cv:
            if self._thread is None:
                self._clock.watch(self._cv)
                self._thread = threading.Thread(target=self._run, name="firehose-kinesis-source", daemon=True)
                self._thread.start()
            source.next_poll = self._clock.monotonic()
            self._sources[source.name] = source
            self._cv.notify_all()

    def remove(self, name: str) -> None:
        with self._cv:
            self._sources.pop(name, None)

    def describe(self, name: str) -> dict | None:
        with self._cv:
            source = self._sources.get(name)
            return source.describe() if source else None

    def stop(self) -> None:
        with self._cv:
            self._stopping = True
            self._cv.notify_all()
        if self._thread is not None:
            self._clock.unwatch(self._cv)
            self._thread.join(timeout=10)

    # -- the thread ----------------------------------------------------------------
    def _run(self) -> None:
        with self._cv:
            while not self._stopping:
                now = self._clock.monotonic()
                due = [s for s in self._sources.values() if s.next_poll <= now]
                if due:
                    for source in due:
                        source.next_poll = now + POLL_SECONDS
                    self._cv.release()
                    try:
                        for source in due:
                            self._poll(source)
                    finally:
                        self._cv.acquire()
                    continue
                upcoming = min((s.next_poll for s in self._sources.values()), default=None)
                self._clock.wait(self._cv, None if upcoming is None else upcoming - now)

    def _poll(self, source: KinesisSource) -> None:
        records = []
        for reader in list(source.readers.values()):
            if self._stopping:
                return
            try:
                records += self._read(source, reader)
            except Exception as exc:               # the stream is gone, the role cannot read...
                source.failed(f"{reader.shard_id}: {type(exc).__name__}: {exc}")
        if records:
            try:
                self._deliver(source.name, records)
            except Exception as exc:               # the delivery stream was deleted meanwhile
                source.failed(f"delivery: {type(exc).__name__}: {exc}")

    def _read(self, source: KinesisSource, reader: ShardReader) -> list:
        client = source.client
        try:
            page = client.get_records(ShardIterator=reader.iterator, Limit=10_000)
        except client.exceptions.ProvisionedThroughputExceededException:
            return []                                  # over the shard's 5 reads/s: next second
        except client.exceptions.ExpiredIteratorException:
            reader.iterator = self._renew(source, reader)
            return []
        source.reads += 1
        now = self._clock.time()
        out = []
        for r in page["Records"]:
            arrival = r["ApproximateArrivalTimestamp"]
            arrival_ms = int((arrival.timestamp() if isinstance(arrival, datetime) else float(arrival)) * 1000)
            rid = uuid.uuid4().hex + uuid.uuid4().hex
            out.append(self._record(rid, bytes(r["Data"]), arrival_ms, self._clock.monotonic(), kinesis={
                "shardId": reader.shard_id, "partitionKey": r["PartitionKey"],
                "approximateArrivalTimestamp": arrival_ms, "sequenceNumber": r["SequenceNumber"],
                "subsequenceNumber": 0}))
            reader.after = r["SequenceNumber"]
        if not out:
            reader.quiet_since = now
        reader.iterator = page.get("NextShardIterator")
        if reader.iterator is None:                    # a closed shard, read to its end
            self._finish(source, reader, page.get("ChildShards") or [])
        return out

    def _renew(self, source: KinesisSource, reader: ShardReader) -> str:
        args = {"StreamARN": source.stream_arn, "ShardId": reader.shard_id}
        if reader.after:
            args.update(ShardIteratorType="AFTER_SEQUENCE_NUMBER", StartingSequenceNumber=reader.after)
        else:
            args.update(ShardIteratorType="AT_TIMESTAMP",
                        Timestamp=datetime.fromtimestamp(reader.quiet_since, timezone.utc))
        return source.client.get_shard_iterator(**args)["ShardIterator"]

    def _finish(self, source: KinesisSource, reader: ShardReader, children: list[dict]) -> None:
        """Parents before children: a child starts when every parent is finished."""
        source.readers.pop(reader.shard_id, None)
        source.finished.add(reader.shard_id)
        for child in children:
            source.waiting.setdefault(child["ShardId"], tuple(child["ParentShards"]))
        for child_id, parents in list(source.waiting.items()):
            if child_id in source.readers or child_id in source.finished:
                source.waiting.pop(child_id)
            elif all(p in source.finished for p in parents):
                iterator = source.client.get_shard_iterator(
                    StreamARN=source.stream_arn, ShardId=child_id,
                    ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
                source.readers[child_id] = ShardReader(child_id, iterator, quiet_since=self._clock.time(),
                                                       parents=parents)
                source.waiting.pop(child_id)
