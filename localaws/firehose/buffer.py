"""Per-stream buffers and the flusher thread: Firehose's buffering, for real.

Firehose does not deliver each record as it arrives. It appends records to
a buffer per delivery stream and delivers the buffer as one batch (one S3
object, one OpenSearch ``_bulk`` request) when the first of two
``BufferingHints`` is met:

- **size**: the buffer holds ``SizeInMBs`` MiB (default 5), or
- **interval**: ``IntervalInSeconds`` (default 300) have passed since the
  first record of the buffer arrived. 0 means "deliver at once".

Here the size trigger fires in the request that fills the buffer, and a
background thread wakes up when the oldest buffer's interval ends, on the
stack's clock (``core/clock.py``: a frozen clock moves only when a notebook
advances it, and the same code then delivers at once). A cut batch is delivered on a small worker pool, one batch
at a time per stream so that objects and documents arrive in order.
"""
from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from localaws.core.waiting import wait_until

MiB = 1024 * 1024


@dataclass
class Record:
    record_id: str
    data: bytes
    arrival_ms: int            # approximateArrivalTimestamp, epoch milliseconds
    arrival_mono: float        # the clock's monotonic reading at arrival, for the interval trigger


@dataclass
class Batch:
    """One cut of a buffer: what a single delivery receives."""
    stream: str
    records: list[Record]
    reason: str                # "size", "interval" or "close"
    cut_mono: float


@dataclass
class StreamStats:
    """Counts that must add up: in = delivered + failed + dropped + buffered + in flight."""
    records_in: int = 0
    bytes_in: int = 0
    records_delivered: int = 0
    records_failed: int = 0        # written to the S3 error/backup prefix instead
    records_dropped: int = 0       # a Lambda transform returned "Dropped"
    in_flight: int = 0
    deliveries: list = field(default_factory=list)   # one dict per delivered batch
    errors: list = field(default_factory=list)       # delivery attempts that failed (retried)


class StreamBuffer:
    def __init__(self, name: str, size_mib: int, interval_s: int):
        self.name = name
        self.size_limit = size_mib * MiB
        self.interval_s = interval_s
        self.records: list[Record] = []
        self.size = 0
        self.stats = StreamStats()
        self.deliver_lock = threading.Lock()     # one delivery at a time per stream
        self.not_before = 0.0                    # after a failed delivery: retry time
        self.backoff = 1.0

    def deadline(self) -> float | None:
        if not self.records:
            return None
        return max(self.records[0].arrival_mono + self.interval_s, self.not_before)


class Buffers:
    """Every stream's buffer, the flusher thread and the delivery pool."""

    def __init__(self, deliver, clock):
        self._deliver = deliver                 # callable(Batch) -> dict of counts and facts
        self._clock = clock
        self._cv = threading.Condition()
        clock.watch(self._cv)
        self._buffers: dict[str, StreamBuffer] = {}
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="firehose-delivery")
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="firehose-flusher", daemon=True)
        self._thread.start()

    # -- producer side ---------------------------------------------------------
    def put(self, name: str, size_mib: int, interval_s: int, payloads: list[bytes]) -> list[str]:
        """Append records to ``name``'s buffer; returns their RecordIds."""
        now_ms, now = int(self._clock.time() * 1000), self._clock.monotonic()
        ids, cuts = [], []
        with self._cv:
            buf = self._buffers.get(name)
            if buf is None:
                buf = self._buffers[name] = StreamBuffer(name, size_mib, interval_s)
            buf.size_limit, buf.interval_s = size_mib * MiB, interval_s   # UpdateDestination
            for data in payloads:
                rid = uuid.uuid4().hex + uuid.uuid4().hex
                buf.records.append(Record(rid, data, now_ms, now))
                buf.size += len(data)
                buf.stats.records_in += 1
                buf.stats.bytes_in += len(data)
                ids.append(rid)
                if buf.size >= buf.size_limit and now >= buf.not_before:
                    cuts.append(self._cut(buf, "size"))
            if buf.records and buf.interval_s == 0 and now >= buf.not_before:
                cuts.append(self._cut(buf, "interval"))
            self._cv.notify_all()
        for batch in cuts:
            self._submit(batch)
        return ids

    def _cut(self, buf: StreamBuffer, reason: str) -> Batch:
        """Take the buffer's records (caller holds ``_cv``)."""
        batch = Batch(buf.name, buf.records, reason, self._clock.monotonic())
        buf.stats.in_flight += len(batch.records)
        buf.records, buf.size = [], 0
        return batch

    def _submit(self, batch: Batch) -> None:
        self._pool.submit(self._deliver_batch, batch)

    def _deliver_batch(self, batch: Batch) -> None:
        buf = self._buffers[batch.stream]
        with buf.deliver_lock:
            try:
                outcome = self._deliver(batch)
            except Exception as exc:            # destination unavailable: keep the records
                with self._cv:
                    buf.stats.errors.append(f"{type(exc).__name__}: {exc}")
                    buf.stats.in_flight -= len(batch.records)
                    buf.records[:0] = batch.records       # back to the front, retried later
                    buf.size += sum(len(r.data) for r in batch.records)
                    buf.not_before = self._clock.monotonic() + buf.backoff
                    buf.backoff = min(buf.backoff * 2, 30.0)
                    self._cv.notify_all()
                return
        with self._cv:
            buf.backoff = 1.0
            buf.stats.in_flight -= len(batch.records)
            buf.stats.records_delivered += outcome["delivered"]
            buf.stats.records_failed += outcome["failed"]
            buf.stats.records_dropped += outcome["dropped"]
            buf.stats.deliveries.append(outcome)
            self._cv.notify_all()

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
                    if deadline <= now:
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
            buf = self._buffers.get(name)
            return buf.stats if buf else StreamStats()

    def buffered(self, name: str) -> int:
        with self._cv:
            buf = self._buffers.get(name)
            return len(buf.records) if buf else 0

    def wait_idle(self, name: str | None = None, timeout: float = 60) -> bool:
        """Wait until buffers are empty and no delivery is running (the interval
        trigger does the work; nothing is flushed early). False on timeout."""
        def idle():
            bufs = [self._buffers[name]] if name in self._buffers else (
                [] if name else list(self._buffers.values()))
            return all(not b.records and b.stats.in_flight == 0 for b in bufs)
        return wait_until(idle, timeout, condition=self._cv)

    def flush(self, name: str) -> None:
        """Deliver ``name``'s buffer now and wait for it (used before DeleteDeliveryStream)."""
        with self._cv:
            buf = self._buffers.get(name)
            batch = self._cut(buf, "close") if buf and buf.records else None
        if batch:
            self._deliver_batch(batch)

    def forget(self, name: str) -> None:
        with self._cv:
            self._buffers.pop(name, None)

    def stop(self) -> None:
        self._clock.unwatch(self._cv)
        with self._cv:
            self._stopping = True
            self._cv.notify_all()
        self._thread.join(timeout=5)
        self._pool.shutdown(wait=False, cancel_futures=True)
