"""What a Kinesis data stream does behind PutRecord and GetRecords: limits, buckets, iterators.

A stream is a set of **shards**. Each shard owns a slice of the 128-bit hash
space; a record goes to the open shard whose slice holds the MD5 hash of its
partition key (or its ``ExplicitHashKey``), so every record of one key lands
in one shard, in order. A shard is also the unit of capacity, and that is
what this module enforces. The figures, as AWS documents them:

=====================================  ===================================================
record size (data + partition key)     1 MiB by default; a stream may allow up to 10 MiB
                                       (``MaxRecordSizeInKiB`` 1024-10240 on CreateStream
                                       or UpdateMaxRecordSize) [1] [2]
partition key                          1 to 256 Unicode characters [3]
``ExplicitHashKey``                    a decimal integer in [0, 2^128 - 1] [3]
PutRecords                             at most 500 records and 10 MiB per request,
                                       partition keys included (5 MiB before the large-
                                       records launch) [4] [5]
writes per shard                       1 MiB/s and 1,000 records/s [6]
reads per shard                        2 MiB/s and 5 GetRecords calls/s; one call returns
                                       at most 10,000 records and 10 MiB [6] [7]
shard iterator                         expires 5 minutes after it was handed out [8]
retention                              24 hours by default, up to 8,760 hours [6]
=====================================  ===================================================

[1] https://docs.aws.amazon.com/streams/latest/dev/large-records.html
[2] https://docs.aws.amazon.com/kinesis/latest/APIReference/API_UpdateMaxRecordSize.html
[3] https://docs.aws.amazon.com/kinesis/latest/APIReference/API_PutRecord.html
[4] https://docs.aws.amazon.com/kinesis/latest/APIReference/API_PutRecords.html
[5] AWS Big Data Blog, "Amazon Kinesis Data Streams now supports 10x larger record sizes":
    "a 2x increase in the maximum PutRecords request size from 5MiB to 10MiB"
[6] https://docs.aws.amazon.com/streams/latest/dev/service-sizes-and-limits.html
[7] https://docs.aws.amazon.com/kinesis/latest/APIReference/API_GetRecords.html
[8] https://docs.aws.amazon.com/kinesis/latest/APIReference/API_GetShardIterator.html

**Error messages** are AWS's wording as quoted in public reports of real
responses: ``Rate exceeded for shard <id> in stream <s> under account <a>.``
(PutRecord/PutRecords; github.com/zendesk/maxwell/pull/548) and ``Rate
exceeded for Shard - <a>/<s>/<id>`` (GetRecords, the wording of 2023-2025;
github.com/awslabs/amazon-kinesis-client/issues/1521);
the ExpiredIteratorException sentence (twitchscience/kinsumer#51);
``Value at 'records.1.member.data' failed to satisfy constraint: Member must
have length less than or equal to 1048576`` for a stream left at 1 MiB
(awslabs/amazon-kinesis-producer#680, December 2025); ``Invalid ShardIterator.``,
the ExplicitHashKey range and UpdateShardCount sentences from kinesalite, an
emulator whose tests ran against AWS. ``Records size exceeds 10 MB limit`` is
the old ``... 5 MB limit`` sentence with the new figure (not seen from AWS).

**Throughput as token buckets.** AWS meters each shard per second. Here each
shard has four buckets that refill continuously on the *stack's clock*
(``localaws/core/clock.py``): write records (1,000/s, holds 1,000), write
bytes (1 MiB/s, holds one maximum-size record: AWS lets a large record burst
past the sustained rate and then refills, [1]), GetRecords calls (5/s, holds
5) and read bytes (2 MiB/s, holds 2 MiB). A call that finds its bucket short
is throttled (``ProvisionedThroughputExceededException``). A GetRecords call
may overdraw the read-bytes bucket (one call can return 10 MiB), and the
shard then refuses reads until the bucket is back above zero: after a 10 MiB
read, about 4 to 5 seconds, as [7] says ("subsequent calls made within the
next 5 seconds throw"). With the clock frozen (``stack.local.clock.freeze()``)
nothing refills until ``advance``: the 6th GetRecords call, or the 1,001st
record, is throttled every time, deterministically.

ON_DEMAND streams get 4 shards (moto's choice, and AWS's starting capacity of
4 MB/s in, 8 MB/s out [6]) with the same per-shard limits; AWS would add
shards as traffic grows, this stand-in does not.
"""
from __future__ import annotations

import base64
import bisect
import hashlib
import re
import threading
import time
from dataclasses import dataclass

from localaws.core.clock import reached

MiB = 1024 * 1024

DEFAULT_MAX_RECORD_KIB = 1024          # every stream, unless created or updated otherwise [1]
MAX_RECORD_KIB_RANGE = (1024, 10240)   # MaxRecordSizeInKiB [2]
MAX_PARTITION_KEY_CHARS = 256          # [3]
MAX_BATCH_RECORDS = 500                # [4]
MAX_REQUEST_BYTES = 10 * MiB           # [4] [5]
WRITE_BYTES_PER_SECOND = 1 * MiB       # per shard [6]
WRITE_RECORDS_PER_SECOND = 1000        # per shard [6]
READ_BYTES_PER_SECOND = 2 * MiB        # per shard [6]
READS_PER_SECOND = 5                   # GetRecords calls per shard [6] [7]
MAX_GET_RECORDS = 10_000               # records per GetRecords call [7]
MAX_GET_BYTES = 10 * MiB               # bytes per GetRecords call [7]
ITERATOR_LIFETIME_SECONDS = 300        # [8]
HASH_SPACE = 2 ** 128                  # MD5 is 128 bits [3]
HASH_KEY_PATTERN = r"0|([1-9]\d{0,38})"     # the API model's pattern for ExplicitHashKey
ITERATOR_TYPES = ("AT_SEQUENCE_NUMBER", "AFTER_SEQUENCE_NUMBER", "TRIM_HORIZON", "LATEST", "AT_TIMESTAMP")

#: Sequence numbers look like AWS's: 56 decimal digits starting with 49.
SEQUENCE_BASE = 49 * 10 ** 54


# ------------------------------------------------------------------ records and keys
def hash_key(partition_key: str, explicit_hash_key: str | None) -> int:
    """The 128-bit key that picks a record's shard: ``ExplicitHashKey`` if given,
    else the MD5 of the partition key's UTF-8 bytes, read as an unsigned integer."""
    if explicit_hash_key:
        return int(explicit_hash_key)
    return int(hashlib.md5(partition_key.encode("utf-8")).hexdigest(), 16)


def blob_size(b64: str) -> int:
    """Bytes of data a base64 string holds, without decoding it."""
    b64 = b64.strip()
    return len(b64) * 3 // 4 - b64[-2:].count("=") if b64 else 0


def record_size(data_b64: str, partition_key: str) -> int:
    """What counts against the record size limit and the shard's write bytes: data + key [3]."""
    return blob_size(data_b64) + len(partition_key.encode("utf-8"))


# ------------------------------------------------------------------ request validation
def constraint(where: str, rule: str, value=...) -> str:
    """One violation, worded as the Kinesis API words them. ``value``: the
    offending value, None (shown as null), or left out (data blobs are not shown)."""
    head = "Value at" if value is ... else "Value null at" if value is None else f"Value '{value}' at"
    return f"{head} '{where}' failed to satisfy constraint: Member must {rule}"


def validation_message(problems: list[str]) -> str:
    """``"2 validation errors detected: a; b"``; like AWS, at most 10 are listed."""
    n = len(problems)
    return f"{n} validation error{'s' if n > 1 else ''} detected: " + "; ".join(problems[:10])


def record_problems(prefix: str, partition_key, explicit_hash_key, data_b64) -> list[str]:
    """The API model's constraints on one record; ``prefix`` is ``""`` (PutRecord)
    or ``"records.3.member."`` (the 3rd record of PutRecords)."""
    problems = []
    if partition_key is None:
        problems.append(constraint(f"{prefix}partitionKey", "not be null", None))
    elif len(partition_key) < 1:
        problems.append(constraint(f"{prefix}partitionKey", "have length greater than or equal to 1", ""))
    elif len(partition_key) > MAX_PARTITION_KEY_CHARS:
        problems.append(constraint(f"{prefix}partitionKey",
                                   f"have length less than or equal to {MAX_PARTITION_KEY_CHARS}", partition_key))
    if explicit_hash_key is not None and not re.fullmatch(HASH_KEY_PATTERN, explicit_hash_key):
        problems.append(constraint(f"{prefix}explicitHashKey",
                                   f"satisfy regular expression pattern: {HASH_KEY_PATTERN}", explicit_hash_key))
    if data_b64 is None:
        problems.append(constraint(f"{prefix}data", "not be null", None))
    elif blob_size(data_b64) > MAX_RECORD_KIB_RANGE[1] * 1024:
        problems.append(too_large(f"{prefix}data", MAX_RECORD_KIB_RANGE[1] * 1024))
    return problems


def too_large(where: str, limit: int) -> str:
    """A record over its stream's maximum record size (the blob itself is not shown)."""
    return constraint(where, f"have length less than or equal to {limit}")


def hash_key_out_of_range(explicit_hash_key: str | None) -> str | None:
    """The InvalidArgumentException message for a hash key past 2^128 - 1, or None."""
    if explicit_hash_key and int(explicit_hash_key) >= HASH_SPACE:
        return ("Invalid ExplicitHashKey. ExplicitHashKey must be in the range: [0, 2^128-1]. "
                f"Specified value was {explicit_hash_key}")
    return None


# ------------------------------------------------------------------ throughput
class TokenBucket:
    """Tokens drip in at ``rate`` per second, up to ``capacity``; a call spends them.

    ``now`` is a reading of the stack's monotonic clock: a frozen clock adds
    no tokens, so what is refused stays refused until the clock moves.
    """

    def __init__(self, rate: float, capacity: float, now: float):
        self.rate, self.capacity = rate, capacity
        self.tokens, self._stamp = capacity, now

    def level(self, now: float) -> float:
        self.tokens = min(self.capacity, self.tokens + max(0.0, now - self._stamp) * self.rate)
        self._stamp = max(self._stamp, now)
        return self.tokens

    def has(self, amount: float, now: float) -> bool:
        """Whether ``amount`` tokens are there at ``now`` (to the clock's
        resolution: 0.2 s of clock can come out as 0.19999999995 s)."""
        return reached(self.level(now), amount)

    def spend(self, amount: float) -> None:
        self.tokens -= amount


class ShardThroughput:
    """The four buckets of one shard (see the module docstring)."""

    def __init__(self, now: float, write_burst: int):
        self.write_records = TokenBucket(WRITE_RECORDS_PER_SECOND, WRITE_RECORDS_PER_SECOND, now)
        self.write_bytes = TokenBucket(WRITE_BYTES_PER_SECOND, write_burst, now)
        self.reads = TokenBucket(READS_PER_SECOND, READS_PER_SECOND, now)
        self.read_bytes = TokenBucket(READ_BYTES_PER_SECOND, READ_BYTES_PER_SECOND, now)

    def admit_write(self, size: int, now: float, write_burst: int) -> bool:
        """Spend one record and ``size`` bytes if both buckets have them; else spend nothing."""
        self.write_bytes.capacity = max(WRITE_BYTES_PER_SECOND, write_burst)
        if self.write_records.has(1, now) and self.write_bytes.has(size, now):
            self.write_records.spend(1)
            self.write_bytes.spend(size)
            return True
        return False

    def admit_read(self, now: float) -> bool:
        """Spend one GetRecords call if there is one and the read bytes are not overdrawn."""
        if self.reads.has(1, now) and reached(self.read_bytes.level(now), 0):
            self.reads.spend(1)
            return True
        return False

    def charge_read(self, size: int) -> None:
        """Bytes a GetRecords call returned: may take the bucket below zero."""
        self.read_bytes.spend(size)


class Throughput:
    """Every shard's buckets, made on first use (full) and forgotten with their stream."""

    def __init__(self):
        self._shards: dict[tuple[str, str], ShardThroughput] = {}

    def shard(self, stream_arn: str, shard_id: str, now: float, write_burst: int) -> ShardThroughput:
        key = (stream_arn, shard_id)
        if key not in self._shards:
            self._shards[key] = ShardThroughput(now, max(WRITE_BYTES_PER_SECOND, write_burst))
        return self._shards[key]

    def forget(self, stream_arn: str) -> None:
        for key in [k for k in self._shards if k[0] == stream_arn]:
            del self._shards[key]


def write_throttled(shard_id: str, stream: str, account: str) -> str:
    """The message of a throttled PutRecord (and of a failed PutRecords entry)."""
    return f"Rate exceeded for shard {shard_id} in stream {stream} under account {account}."


def read_throttled(shard_id: str, stream: str, account: str) -> str:
    """The message of a throttled GetRecords call."""
    return f"Rate exceeded for Shard - {account}/{stream}/{shard_id}"


# ------------------------------------------------------------------ sequence numbers
class Sequencer:
    """One counter for the whole stack: sequence numbers only grow, so a child
    shard's records always come after its parent's, and no two records share one."""

    def __init__(self):
        self._lock = threading.Lock()
        self.last = SEQUENCE_BASE

    def next(self) -> int:
        with self._lock:
            self.last += 1
            return self.last


# ------------------------------------------------------------------ reading a shard
def trim(records: dict, oldest: float) -> None:
    """Drop, from the front of a shard's ``{sequence: record}`` (oldest first), what
    arrived before ``oldest`` (epoch seconds, stack clock): its retention period is over."""
    while records:
        sequence, record = next(iter(records.items()))
        if record.created_at >= oldest:
            return
        del records[sequence]


def _unread(records: dict, after: int) -> list[int]:
    """The sequence numbers after ``after``, found by bisection (the keys are sorted)."""
    numbers = list(records)
    return numbers[bisect.bisect_right(numbers, after):]


def take(records: dict, after: int, limit: int) -> list:
    """The records after sequence number ``after``, oldest first: at most ``limit``
    records and 10 MiB (but always the first one, however large)."""
    found, size = [], 0
    for sequence in _unread(records, after)[:limit]:
        record = records[sequence]
        size += record_size(record.data, record.partition_key)
        if found and size > MAX_GET_BYTES:
            break
        found.append(record)
    return found


def first_after(records: dict, after: int):
    """The first record after sequence number ``after``, or None."""
    unread = _unread(records, after)
    return records[unread[0]] if unread else None


# ------------------------------------------------------------------ shard iterators
@dataclass(frozen=True)
class Iterator:
    """Where a reader stands in a shard: after sequence number ``after``.
    ``created_ms`` (stack clock) starts its 5-minute life."""
    stream_arn: str
    shard_id: str
    after: int
    created_ms: int

    def encode(self) -> str:
        """An opaque string, as AWS's iterators are (base64 here, not encrypted)."""
        raw = f"kds1|{self.stream_arn}|{self.shard_id}|{self.after}|{self.created_ms}"
        return base64.b64encode(raw.encode()).decode()

    @classmethod
    def decode(cls, text: str) -> "Iterator":
        """Raises ValueError for anything that is not one of ours."""
        try:
            version, arn, shard_id, after, created = base64.b64decode(text, validate=True).decode().split("|")
            if version != "kds1" or not re.fullmatch(r"arn:[\w-]+:kinesis:[\w-]+:\d{12}:stream/[\w.-]+", arn) \
                    or not shard_id.startswith("shardId-"):
                raise ValueError(text)
            return cls(arn, shard_id, int(after), int(created))
        except (ValueError, UnicodeDecodeError) as exc:
            raise ValueError(f"not a shard iterator: {text[:40]!r}") from exc

    def expired(self, now_ms: int) -> bool:
        return now_ms - self.created_ms > ITERATOR_LIFETIME_SECONDS * 1000


def aws_date(epoch_ms: int) -> str:
    """``Thu Jul 02 12:57:57 UTC 2015``, the date format of ExpiredIteratorException's message."""
    return time.strftime("%a %b %d %H:%M:%S UTC %Y", time.gmtime(epoch_ms / 1000))


def expired_message(created_ms: int, now_ms: int) -> str:
    return (f"Iterator expired. The iterator was created at time {aws_date(created_ms)} while right now "
            f"it is {aws_date(now_ms)} which is further in the future than the tolerated delay of "
            f"{ITERATOR_LIFETIME_SECONDS * 1000} milliseconds.")
