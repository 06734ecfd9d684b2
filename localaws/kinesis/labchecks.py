"""Checks for lab 10 (``labs/10_streams``): what each step must achieve, and what to fix if not.

They live here, not in the lab's check cells, so that a check cell does not
show the answer. Each raises ``localaws.grading.LabCheckFailed`` with a
message for the learner.

**Step 1 (size the stream) is graded by measurement**, not against a hidden
number. :func:`replay_peak` plays the producer's peak against a stream on the
stack's frozen clock (``stack.local.clock``: this check is local-only) while
the consumers read it, and counts what Kinesis refused with
``ProvisionedThroughputExceededException``. The learner's stream must take
the peak without one refusal, and a stream with one shard fewer must not:
more shards than that carry the same traffic for a higher bill.

**Step 2 (one windowed Flink SQL query)** reads the windows the learner's
Managed Flink application wrote to a Kinesis stream (:func:`collect_windows`)
and compares them with pandas on the same readings (:func:`expected_windows`,
:func:`check_windows`).
"""
from __future__ import annotations

import json
import numbers
import time

from localaws.grading import LabCheckFailed, check, check_frame_equal
from . import engine

#: Seconds of peak traffic replayed. Reads may overdraw a shard's 2 MB read
#: bucket for a second or two before it runs dry, so one second would not
#: show a read shortage; five seconds do, for the lab's producer.
REPLAY_SECONDS = 5

#: Seconds the frozen clock is moved on before a replay, so that every bucket
#: is full again (an overdrawn read bucket needs up to 5 s: engine.py).
REFILL_SECONDS = 6

PRICING = "https://aws.amazon.com/kinesis/data-streams/pricing/"


# ------------------------------------------------------------------ step 1: size the stream
def peak_second(producer: dict) -> list[dict]:
    """One second of ``producer`` at its peak, as PutRecords entries.

    ``records_per_second * peak_factor`` records of ``average_record_bytes``
    each (partition key included, as Kinesis counts them). Each record's
    ``ExplicitHashKey`` is spread evenly over the 128-bit hash space, which
    is what many distinct partition keys do on average: every shard of an
    evenly split stream gets the same share, give or take one record.
    """
    count = round(producer["records_per_second"] * producer["peak_factor"])
    size = producer["average_record_bytes"]
    records = []
    for i in range(count):
        key = f"device-{i:05d}"
        records.append({"Data": b"#" * (size - len(key)), "PartitionKey": key,
                        "ExplicitHashKey": str((2 * i + 1) * engine.HASH_SPACE // (2 * count))})
    return records


def _batches(records: list[dict]):
    """PutRecords requests: at most 500 records and 10 MiB each."""
    batch, size = [], 0
    for record in records:
        record_size = len(record["Data"]) + len(record["PartitionKey"])
        if batch and (len(batch) == engine.MAX_BATCH_RECORDS or size + record_size > engine.MAX_REQUEST_BYTES):
            yield batch
            batch, size = [], 0
        batch.append(record)
        size += record_size
    if batch:
        yield batch


def _open_shards(kinesis, stream: str) -> list[str]:
    shards = kinesis.list_shards(StreamName=stream)["Shards"]
    return [s["ShardId"] for s in shards if "EndingSequenceNumber" not in s["SequenceNumberRange"]]


def replay_peak(stack, stream: str, producer: dict, consumers: dict, seconds: int = REPLAY_SECONDS) -> dict:
    """Play ``seconds`` of the producer's peak against ``stream`` and count the refusals.

    On the stack's frozen clock, each second: the producer puts
    :func:`peak_second` with PutRecords, then each of ``consumers["count"]``
    standard consumers calls GetRecords ``consumers["polls_per_second"]``
    times on every open shard, from where it stopped (they start at LATEST,
    so earlier records do not count); then the clock moves one second.
    The client does not retry, so every ``ProvisionedThroughputExceededException``
    is seen. The clock is left as it was found (running or frozen).
    """
    from botocore.config import Config

    kinesis = stack.client("kinesis", config=Config(retries={"total_max_attempts": 1}))
    clock = stack.local.clock
    was_frozen = clock.frozen
    clock.freeze()
    found = {"records put": 0, "writes throttled": 0, "GetRecords calls": 0, "reads throttled": 0}
    try:
        clock.advance(REFILL_SECONDS)
        shards = _open_shards(kinesis, stream)
        iterators = {(c, shard): kinesis.get_shard_iterator(StreamName=stream, ShardId=shard,
                                                            ShardIteratorType="LATEST")["ShardIterator"]
                     for c in range(consumers["count"]) for shard in shards}
        records = peak_second(producer)
        for _ in range(seconds):
            for batch in _batches(records):
                answer = kinesis.put_records(StreamName=stream, Records=batch)
                found["records put"] += len(batch)
                found["writes throttled"] += answer["FailedRecordCount"]
            for _ in range(consumers["polls_per_second"]):
                for where, iterator in iterators.items():
                    found["GetRecords calls"] += 1
                    try:
                        iterators[where] = kinesis.get_records(ShardIterator=iterator)["NextShardIterator"]
                    except kinesis.exceptions.ProvisionedThroughputExceededException:
                        found["reads throttled"] += 1
            clock.advance(1)
    finally:
        if not was_frozen:
            clock.resume()
    return found


def per_shard_load(producer: dict, consumers: dict, shards: int) -> str:
    """What each of ``shards`` shards carries at the peak, next to its limits, in words."""
    records = producer["records_per_second"] * producer["peak_factor"] / shards
    write = records * producer["average_record_bytes"] / engine.MiB
    read = write * consumers["count"]
    return (f"each shard takes {records:,.0f} records/s (limit 1,000) and {write:.2f} MB/s in (limit 1), "
            f"and sends {read:.2f} MB/s out to the {consumers['count']} consumers (limit 2, shared)")


def check_stream_sizing(stack, stream: str, shards: int, producer: dict, consumers: dict):
    """Step 1: a PROVISIONED ``stream`` with ``shards`` shards, the fewest that carry the peak.

    Replays the peak on the learner's stream (no refusal allowed), then on a
    scratch stream with one shard fewer (made and deleted here), which must
    be refused something. Returns both replays as a table, one column each.
    """
    import pandas as pd

    kinesis = stack.client("kinesis")
    try:
        summary = kinesis.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]
    except kinesis.exceptions.ResourceNotFoundException:
        raise LabCheckFailed(f"there is no stream {stream!r}: create it with kinesis.create_stream("
                             "StreamName=STREAM, ShardCount=SHARDS, StreamModeDetails={'StreamMode': "
                             "'PROVISIONED'}).") from None
    mode = summary.get("StreamModeDetails", {}).get("StreamMode", "PROVISIONED")
    check(mode == "PROVISIONED",
          f"{stream} is an {mode} stream: Kinesis sizes those by itself and bills them per GB. This step sizes a "
          "PROVISIONED stream: StreamModeDetails={'StreamMode': 'PROVISIONED'} and a ShardCount.")
    check(isinstance(shards, numbers.Integral) and not isinstance(shards, bool) and shards >= 1,
          f"SHARDS should be a whole number of shards (1 or more), got {shards!r}: round up with math.ceil.")
    open_shards = summary["OpenShardCount"]
    check(open_shards == shards, f"{stream} has {open_shards} open shards but SHARDS = {shards}: create the stream "
                                 "with ShardCount=SHARDS (run the cell again: it deletes the old stream first).")

    rows = {f"{shards} shards (yours)": replay_peak(stack, stream, producer, consumers)}
    mine = rows[f"{shards} shards (yours)"]
    refused = mine["writes throttled"] + mine["reads throttled"]
    check(refused == 0,
          f"at the peak ({len(peak_second(producer)):,} records/s), your {shards} shards refused "
          f"{mine['writes throttled']:,} of {mine['records put']:,} records and {mine['reads throttled']} of "
          f"{mine['GetRecords calls']} GetRecords calls (ProvisionedThroughputExceededException) in "
          f"{REPLAY_SECONDS} s: {per_shard_load(producer, consumers, shards)}. Expected no refusal. Did you use "
          "the peak rate, and count the read side (every consumer reads every record)?")

    if shards > 1:
        fewer = f"{stream}-minus-one"
        kinesis.create_stream(StreamName=fewer, ShardCount=shards - 1)
        try:
            rows[f"{shards - 1} shards"] = replay_peak(stack, fewer, producer, consumers)
        finally:
            kinesis.delete_stream(StreamName=fewer)
        less = rows[f"{shards - 1} shards"]
        check(less["writes throttled"] + less["reads throttled"] > 0,
              f"{shards - 1} shards carry the same peak without one refusal too "
              f"({per_shard_load(producer, consumers, shards - 1)}), so {shards} is more than needed. A provisioned "
              f"stream bills every shard by the shard-hour ({PRICING}): {shards} shards cost "
              f"{shards / (shards - 1):.2f} times {shards - 1}. Take the largest of the three needs (write records, "
              "write bytes, read bytes), each rounded up, and nothing on top: the peak factor is the margin.")
    return pd.DataFrame(rows)


# ------------------------------------------------------------------ step 2: one windowed Flink SQL query
COLUMNS = ["device_id", "window_start", "window_end", "avg_temperature", "readings"]


def expected_windows(readings: list[dict], watermark_delay_seconds: float) -> "pd.DataFrame":
    """Per device and 1-minute tumbling window of *event time*, the average temperature and the
    count of readings, as pandas computes them: only the windows a Flink job has closed.

    Event time is each reading's ``timestamp`` (when the device measured),
    whatever order the readings arrived in. A window ``[start, end)`` is
    emitted once the watermark (the largest timestamp seen, minus
    ``watermark_delay_seconds``) reaches its last millisecond; the last
    minute stays open until later readings arrive. ``AVG`` skips null
    temperatures (readings in ERROR); ``COUNT(*)`` counts every reading.
    """
    import pandas as pd

    df = pd.DataFrame(readings)
    ts = pd.to_datetime(df["timestamp"], utc=True).dt.tz_localize(None)
    df = df.assign(window_start=ts.dt.floor("1min"), window_end=ts.dt.floor("1min") + pd.Timedelta(minutes=1))
    watermark = ts.max() - pd.Timedelta(seconds=watermark_delay_seconds)
    closed = df[df["window_end"] - pd.Timedelta(milliseconds=1) <= watermark]
    out = (closed.groupby(["device_id", "window_start", "window_end"])
           .agg(avg_temperature=("temperature", "mean"), readings=("device_id", "size")).reset_index())
    return out[COLUMNS].sort_values(["device_id", "window_start"]).reset_index(drop=True)


def sink_rows(kinesis, stream: str) -> list[dict]:
    """Every JSON record on ``stream`` so far, oldest first, one shard after the other."""
    rows = []
    for shard in _open_shards(kinesis, stream):
        iterator = kinesis.get_shard_iterator(StreamName=stream, ShardId=shard,
                                              ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        while iterator:
            page = kinesis.get_records(ShardIterator=iterator)
            rows += [json.loads(r["Data"]) for r in page["Records"]]
            if not page["Records"] or page.get("MillisBehindLatest", 0) == 0:
                break
            iterator = page.get("NextShardIterator")
    return rows


def collect_windows(kinesis, stream: str, expected_rows: int, msf=None, application: str | None = None,
                    timeout: float = 90) -> "pd.DataFrame":
    """The windows the application wrote to ``stream``, as a DataFrame: read (every second)
    until ``expected_rows`` rows are there or ``timeout`` seconds have passed.

    With ``msf`` and ``application``, stop waiting (and say so) if the
    application is no longer running: its job failed or was stopped.
    """
    import pandas as pd

    deadline = time.monotonic() + timeout
    rows = sink_rows(kinesis, stream)
    while len(rows) < expected_rows and time.monotonic() < deadline:
        if msf is not None:
            status = msf.describe_application(ApplicationName=application)["ApplicationDetail"]["ApplicationStatus"]
            check(status in ("STARTING", "RUNNING"),
                  f"the application {application} is {status}, not RUNNING: its Flink job ended after "
                  f"writing {len(rows)} windows. Start it again (the cell above) and look at its SQL.")
        time.sleep(1)
        rows = sink_rows(kinesis, stream)
    check(rows, f"no window reached {stream} within {timeout:.0f} s. With event time, a window is written when "
                "the watermark passes its end; with processing time (arrival_time), only when the wall clock "
                "does, up to a minute later. Window on event_time.")
    frame = pd.DataFrame(rows)
    for column in ("window_start", "window_end"):
        if column in frame:
            frame[column] = pd.to_datetime(frame[column])
    return frame


def _when(stamp) -> str:
    return f"{stamp:%Y-%m-%d %H:%M:%S}"


def _windows(count: int) -> str:
    return f"{count} window{'' if count == 1 else 's'}"


def check_windows(result, expected) -> None:
    """Step 2: the windows Flink wrote (``result``) are pandas' (``expected``), with a message
    that names the likely mistake: processing time, window size, a missing window, an aggregate."""
    import pandas as pd

    check(list(result.columns) == COLUMNS,
          f"the windows have columns {list(result.columns)}, expected {COLUMNS}: the SELECT gives the "
          "sink's columns in its order.")
    first, last = expected["window_start"].min(), expected["window_end"].max()
    outside = result[(result["window_end"] <= first) | (result["window_start"] >= last + pd.Timedelta(minutes=1))]
    if not outside.empty:
        raise LabCheckFailed(
            f"a window starts at {_when(outside['window_start'].min())}, but the readings' windows run from "
            f"{_when(first)} to {_when(last)}: these windows follow the wall clock, i.e. processing time "
            "(arrival_time). Window on event_time, the time the device measured.")
    lengths = sorted({(end - start).total_seconds()
                      for start, end in zip(result["window_start"], result["window_end"])})
    check(lengths == [60.0], f"the windows last {', '.join(f'{s:g}' for s in lengths)} s; asked: 1-minute "
                             "tumbling windows (INTERVAL '1' MINUTE).")
    keys = ["device_id", "window_start"]
    found = set(result[keys].itertuples(index=False, name=None))
    wanted = set(expected[keys].itertuples(index=False, name=None))
    missing, extra = sorted(wanted - found), sorted(found - wanted)
    if missing:
        device, start = missing[0]
        raise LabCheckFailed(f"{len(missing)} of {len(wanted)} windows are missing, e.g. {device} from "
                             f"{_when(start)}: one row per device_id and window (GROUP BY device_id, "
                             "window_start, window_end).")
    if extra:
        device, start = extra[0]
        raise LabCheckFailed(f"{_windows(len(extra))} not expected, e.g. {device} from {_when(start)}: "
                             f"expected {len(wanted)}, one per device and closed minute.")
    merged = result.merge(expected, on=keys, suffixes=("", "_expected"))
    counts = merged[merged["readings"] != merged["readings_expected"]]
    if not counts.empty:
        row = counts.iloc[0]
        raise LabCheckFailed(
            f"readings differ in {_windows(len(counts))}, e.g. {row['device_id']} from {_when(row['window_start'])}: "
            f"{row['readings']} instead of {row['readings_expected']}. Count every reading of the window with "
            "COUNT(*) (COUNT(temperature) skips the ERROR readings, whose temperature is null).")
    check_frame_equal(result.astype(expected.dtypes.to_dict()), expected,
                      "the average temperature per device and minute (AVG(temperature))",
                      sort_by=["device_id", "window_start"])
