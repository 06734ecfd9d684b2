"""Buffers and the flusher thread: Firehose's buffering, for real.

Firehose does not deliver each record as it arrives. It appends records to
a buffer and delivers the buffer as one batch (one S3 object, one OpenSearch
``_bulk`` request, one Lambda invocation) when the first of two hints is met:

- **size**: the buffer holds ``SizeInMBs`` MiB (default 5), or
- **interval**: ``IntervalInSeconds`` (default 300) have passed since the
  first record of the buffer arrived. 0 means "deliver at once".

A delivery stream may have several buffers, each a :class:`Key`
``(stream, stage, part)``:

- ``transform``: records waiting for the Lambda function, with the Lambda's
  own hints (``BufferSizeInMBs``, ``BufferIntervalInSeconds``);
- ``dest``: records waiting for the destination, one buffer per dynamic
  partition (``part`` = the partition keys) [1];
- ``error``: rows for the S3 error output, one buffer per kind of failure
  (``part`` = ``processing-failed``...), with the destination's hints;
- ``copy`` (Redshift): the records of one staged S3 object, waiting for the
  COPY of its manifest (``part`` = the manifest's key), interval 0: cut at
  once, and again after each failed attempt's backoff.

The size trigger fires in the request that fills the buffer; a background
thread wakes up when the oldest buffer's interval ends, on the stack's clock
(``core/clock.py``: a frozen clock moves only when a notebook advances it,
and the same code then delivers at once). A cut batch is delivered on a
small worker pool, one batch at a time per buffer so that objects arrive in
order; what a delivery passes on (transformed records) goes into the next
buffers in the same step.

**Counts add up.** Every record put is, in the end, delivered, dropped (a
Lambda said ``Dropped``) or written to the error output, once:
``records_in = delivered + dropped + failed + (still buffered or in flight)``.
A record CloudWatch Logs processing splits into log events is counted once,
by the worst fate of its pieces (failed, else delivered, else dropped).

[1] https://docs.aws.amazon.com/firehose/latest/dev/dynamic-partitioning.html ("Data buffering")
"""
from __future__ import annotations

import dataclasses
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, NamedTuple

from localaws.core.clock import reached
from localaws.core.waiting import wait_until

MiB = 1024 * 1024
FATES = ("dropped", "delivered", "failed")      # from best to worst


class Key(NamedTuple):
    stream: str
    stage: str           # "transform", "dest", "copy" or "error"
    part: tuple | str = ()


@dataclass
class Record:
    record_id: str
    data: bytes
    arrival_ms: int            # approximateArrivalTimestamp, epoch milliseconds
    arrival_mono: float        # the clock's monotonic reading at arrival (latency)
    origin: str = ""           # the RecordId it was put with (pieces of a split record share it)
    keys: dict = field(default_factory=dict)   # dynamic partitioning keys
    kinesis: dict | None = None                # kinesisRecordMetadata, when read from a Kinesis stream
    queued_mono: float = 0.0   # when it entered its current buffer (the interval trigger)

    def __post_init__(self):
        self.origin = self.origin or self.record_id

    def derive(self, data: bytes, record_id: str | None = None) -> "Record":
        """The same record with other bytes (a processor's output)."""
        return dataclasses.replace(self, data=data, record_id=record_id or self.record_id,
                                   keys=dict(self.keys))


@dataclass
class Batch:
    """One cut of a buffer: what a single delivery receives."""
    key: Key
    records: list[Record]
    reason: str                # "size", "interval" or "close"
    cut_mono: float

    @property
    def stream(self) -> str:
        return self.key.stream


@dataclass
class Outcome:
    """What a delivery (or processing as records arrive) did with records: each one
    is named once, as delivered, failed, dropped, or forwarded to other buffers."""
    delivered: list = field(default_factory=list)
    failed: list = field(default_factory=list)        # written to the error output
    dropped: list = field(default_factory=list)
    forward: list = field(default_factory=list)       # [(Key, size_bytes, interval_s, [Record])]
    splits: dict = field(default_factory=dict)        # origin -> pieces it became
    info: dict = field(default_factory=dict)


@dataclass
class StreamStats:
    records_in: int = 0
    bytes_in: int = 0
    records_delivered: int = 0
    records_failed: int = 0        # written to the S3 error output instead
    records_dropped: int = 0       # a Lambda transform returned "Dropped"
    in_flight: int = 0
    deliveries: list = field(default_factory=list)     # one dict per destination batch
    copies: list = field(default_factory=list)         # one dict per Redshift COPY that ended
    transforms: list = field(default_factory=list)     # one dict per Lambda batch
    error_outputs: list = field(default_factory=list)  # one dict per error object written
    errors: list = field(default_factory=list)         # attempts that failed (retried)
    pieces: dict = field(default_factory=dict)         # origin -> [pieces still open, worst fate]

    def split(self, origin: str, pieces: int) -> None:
        """A record became ``pieces`` records (0: it vanished, which counts as dropped)."""
        if pieces == 1:
            return
        entry = self.pieces.setdefault(origin, [1, None])
        entry[0] += pieces - 1
        if entry[0] == 0:
            self._count(self.pieces.pop(origin)[1] or "dropped")

    def settle(self, record: Record, fate: str) -> None:
        entry = self.pieces.get(record.origin)
        if entry is None:
            self._count(fate)
            return
        entry[0] -= 1
        entry[1] = max(entry[1] or fate, fate, key=FATES.index)
        if entry[0] == 0:
            self._count(self.pieces.pop(record.origin)[1])

    def _count(self, fate: str) -> None:
        if fate == "delivered":
            self.records_delivered += 1
        elif fate == "failed":
            self.records_failed += 1
        else:
            self.records_dropped += 1


class Buffer:
    def __init__(self, key: Key, size_bytes: int, interval_s: float):
        self.key = key
        self.size_limit = size_bytes
        self.interval_s = interval_s
        self.records: list[Record] = []
        self.size = 0
        self.deliver_lock = threading.Lock()     # one delivery at a time per buffer
        self.not_before = 0.0                    # after a failed delivery: retry time
        self.backoff = 1.0

    def deadline(self) -> float | None:
        if not self.records:
            return None
        return max(self.records[0].queued_mono + self.interval_s, self.not_before)


class Buffers:
    """Every buffer of the stack, the flusher thread and the delivery pool.

    ``deliver(batch) -> Outcome`` does the work; it may raise to have the batch
    retried later (the destination is down), with a backoff of 1 s doubling to 30 s.
    """

    def __init__(self, clock, deliver: Callable[[Batch], Outcome] | None = None):
        self.deliver = deliver
        self._clock = clock
        self._cv = threading.Condition()
        clock.watch(self._cv)
        self._buffers: dict[Key, Buffer] = {}
        self._stats: dict[str, StreamStats] = {}
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="firehose-delivery")
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="firehose-flusher", daemon=True)
        self._thread.start()

    # -- producer side ---------------------------------------------------------
    def _received(self, name: str, records: list[Record]) -> None:
        """Count records that entered the delivery stream (caller holds ``_cv``)."""
        stats = self._stats.setdefault(name, StreamStats())
        stats.records_in += len(records)
        stats.bytes_in += sum(len(r.data) for r in records)

    def route(self, name: str, arrived: list[Record], outcome: Outcome) -> None:
        """Records that just ``arrived`` and what processing them decided, in one step."""
        with self._cv:
            self._received(name, arrived)
            cuts = self._apply(name, outcome)
            self._cv.notify_all()
        for batch in cuts:
            self._submit(batch)

    def put(self, key: Key, size_bytes: int, interval_s: float, records: list[Record]) -> None:
        """Records that just arrived, into ``key``'s buffer (made on first use)."""
        with self._cv:
            self._received(key.stream, records)
            cuts = self._append(key, size_bytes, interval_s, records)
            self._cv.notify_all()
        for batch in cuts:
            self._submit(batch)

    def _append(self, key: Key, size_bytes: int, interval_s: float, records: list[Record]) -> list[Batch]:
        """(caller holds ``_cv``)"""
        now = self._clock.monotonic()
        buf = self._buffers.get(key)
        if buf is None:
            buf = self._buffers[key] = Buffer(key, size_bytes, interval_s)
        buf.size_limit, buf.interval_s = size_bytes, interval_s      # UpdateDestination
        self._stats.setdefault(key.stream, StreamStats())
        cuts = []
        for record in records:
            record.queued_mono = now
            buf.records.append(record)
            buf.size += len(record.data)
            if buf.size >= buf.size_limit and now >= buf.not_before:
                cuts.append(self._cut(buf, "size"))
        if buf.records and buf.interval_s == 0 and now >= buf.not_before:
            cuts.append(self._cut(buf, "interval"))
        return cuts

    def _apply(self, name: str, outcome: Outcome) -> list[Batch]:
        """Settle and forward what ``outcome`` says (caller holds ``_cv``)."""
        stats = self._stats.setdefault(name, StreamStats())
        for origin, pieces in outcome.splits.items():
            stats.split(origin, pieces)
        for fate in ("delivered", "failed", "dropped"):
            for record in getattr(outcome, fate):
                stats.settle(record, fate)
        cuts = []
        for key, size_bytes, interval_s, records in outcome.forward:
            cuts.extend(self._append(key, size_bytes, interval_s, records))
        return cuts

    def _cut(self, buf: Buffer, reason: str) -> Batch:
        """Take the buffer's records (caller holds ``_cv``)."""
        batch = Batch(buf.key, buf.records, reason, self._clock.monotonic())
        self._stats[buf.key.stream].in_flight += len(batch.records)
        buf.records, buf.size = [], 0
        return batch

    def _submit(self, batch: Batch) -> None:
        self._pool.submit(self._deliver_batch, batch)

    def _deliver_batch(self, batch: Batch) -> bool:
        buf = self._buffers.get(batch.key) or Buffer(batch.key, MiB, 0)    # deleted meanwhile
        stats = self._stats.setdefault(batch.stream, StreamStats())
        with buf.deliver_lock:
            try:
                outcome = self.deliver(batch)
            except Exception as exc:            # destination unavailable: keep the records
                with self._cv:
                    stats.errors.append(f"{type(exc).__name__}: {exc}")
                    stats.in_flight -= len(batch.records)
                    buf.records[:0] = batch.records       # back to the front, retried later
                    buf.size += sum(len(r.data) for r in batch.records)
                    buf.not_before = self._clock.monotonic() + buf.backoff
                    buf.backoff = min(buf.backoff * 2, 30.0)
                    self._cv.notify_all()
                return False
        with self._cv:
            buf.backoff = 1.0
            stats.in_flight -= len(batch.records)
            cuts = self._apply(batch.stream, outcome)
            log = {"dest": stats.deliveries, "transform": stats.transforms, "copy": stats.copies,
                   "error": stats.error_outputs}[batch.key.stage]
            if outcome.info:
                log.append(outcome.info)
            self._cv.notify_all()
        for cut in cuts:
            self._submit(cut)
        return True

    # -- flusher thread --------------------------------------------------------
    def _run(self) -> None:
        with self._cv:
            while not self._stopping:
                now = self._clock.monotonic()
                due, next_deadline = [], None
                for buf in self._buffers.values():
                    deadline = buf.deadline()
                    if deadline is None:
                        continue
                    if reached(now, deadline):
                        due.append(buf)
                    elif next_deadline is None or deadline < next_deadline:
                        next_deadline = deadline
                batches = [self._cut(buf, "interval") for buf in due]
                if batches:
                    self._cv.release()
                    try:
                        for batch in batches:
                            self._submit(batch)
                    finally:
                        self._cv.acquire()
                    continue
                self._clock.wait(self._cv, None if next_deadline is None else next_deadline - now)

    # -- teaching hooks / lifecycle -------------------------------------------
    def stats(self, name: str) -> StreamStats:
        with self._cv:
            return self._stats.get(name) or StreamStats()

    def buffered(self, name: str) -> int:
        with self._cv:
            return sum(len(b.records) for k, b in self._buffers.items() if k.stream == name)

    def partitions(self, name: str) -> int:
        """Destination buffers holding records: AWS's "active partitions"."""
        with self._cv:
            return sum(1 for k, b in self._buffers.items()
                       if k.stream == name and k.stage == "dest" and b.records)

    def wait_idle(self, name: str | None = None, timeout: float = 60) -> bool:
        """Wait until buffers are empty and no delivery is running (the interval
        trigger does the work; nothing is flushed early). False on timeout."""
        def idle():
            names = [name] if name else list(self._stats)
            return all(not b.records for k, b in self._buffers.items() if k.stream in names) and \
                all(self._stats[n].in_flight == 0 for n in names if n in self._stats)
        return wait_until(idle, timeout, condition=self._cv)

    def flush(self, name: str) -> None:
        """Deliver everything ``name`` holds now, stage after stage, and wait for it
        (before DeleteDeliveryStream). A destination that is down keeps its records."""
        order = {"transform": 0, "dest": 1, "copy": 2, "error": 3}
        for _ in range(4):                   # transform -> dest and error buffers -> copy -> written
            with self._cv:
                bufs = sorted((b for k, b in self._buffers.items() if k.stream == name and b.records),
                              key=lambda b: order[b.key.stage])
                batches = [self._cut(b, "close") for b in bufs]
            if not batches:
                return
            if not all([self._deliver_batch(batch) for batch in batches]):
                return

    def forget(self, name: str) -> None:
        with self._cv:
            for key in [k for k in self._buffers if k.stream == name]:
                del self._buffers[key]
            self._stats.pop(name, None)

    def stop(self) -> None:
        self._clock.unwatch(self._cv)
        with self._cv:
            self._stopping = True
            self._cv.notify_all()
        self._thread.join(timeout=5)
        self._pool.shutdown(wait=False, cancel_futures=True)
