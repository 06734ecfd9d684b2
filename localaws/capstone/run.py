"""Run the pipeline in simulated time, replay its errors, load the warehouse, reconcile.

**Simulated time.** :func:`run` freezes the stack's clock (``stack.local.clock``,
local-only) and, for each simulated minute, publishes each reporting slot of
every device, then advances the clock by the slot. The stages act on the
advances exactly as they would on real time: Firehose reads the shards once
per second of the clock, flushes its Lambda buffer (20 s) and its S3 buffer
(60 s). Between minutes the run *waits on observable effects* (Firehose has
read what the rule put in the stream) before moving time on. The clock runs
again when the run ends, whatever happens.

**The steps after the run** are what an operator does:

- :func:`replay_errors`: the IoT errorAction documents go back through
  ``iot-data`` Publish (their ``base64OriginalPayload``); Firehose's
  ``processing-failed`` records go, with their original data (``rawData``),
  into the Direct PUT twin of the delivery stream, after the transform's
  fault is switched off (the fix is deployed). Each document is deleted once
  replayed: a record is replayed once.
- :func:`finish`: heartbeats into every shard close Flink's last windows,
  the clock moves until Firehose and the reporter are idle.
- :func:`load_redshift`: COPY the curated Parquet into a staging table,
  keep one row per record_id, MERGE into ``telemetry`` on record_id.
- :func:`reconcile`: one row per stage, and whether it equals what was sent.
"""
from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass, field

import pandas as pd
import pyarrow.parquet as pq

from localaws.core.waiting import wait_until

from .devices import Fleet, event_time, publish
from .pipeline import COLUMNS, Pipeline
from .queries import athena_rows, read_stream, redshift_rows, redshift_sql, s3_keys

REPORTS = "reports/"
#: The heartbeats' event time, seconds after START: a week, beyond any run plus Flink's lateness.
HEARTBEAT_SECONDS = 7 * 24 * 3600


@dataclass
class RunResult:
    """What a run did: per-minute counts, per-stage counts and throughput."""
    minutes: int
    published: int = 0                  # every message sent to the broker (self-tests included)
    sent: int = 0                       # telemetry messages: what must arrive everywhere
    tests: int = 0                      # self-test messages the rule filters out
    burst: int = 0
    per_minute: list[dict] = field(default_factory=list)
    stages: dict = field(default_factory=dict)      # stage -> records during the run
    wall_seconds: float = 0.0

    @property
    def summary(self) -> pd.DataFrame:
        """One row per simulated minute (deterministic: counts only)."""
        return pd.DataFrame(self.per_minute)

    @property
    def throughput(self) -> pd.DataFrame:
        """Records per stage, per simulated second and per wall-clock second (the last
        column depends on the machine: do not compare it between runs)."""
        simulated = self.minutes * 60
        return pd.DataFrame([{"stage": stage, "records": n, "per_simulated_second": round(n / simulated, 2),
                              "per_wall_second": round(n / max(self.wall_seconds, 1e-9), 1)}
                             for stage, n in self.stages.items()])


def _firehose_read_all(stack, p: Pipeline, in_stream: int, timeout: float = 30) -> bool:
    """Wait until the delivery stream has read ``in_stream`` records from the Kinesis stream."""
    return wait_until(lambda: stack.local.firehose.stats(p.delivery_stream)["records_in"] >= in_stream,
                      timeout, poll=0.05)                                # local-only


def _settle(stack, p: Pipeline) -> None:
    """Wait until Firehose has read every record the rule put and has nothing in flight."""
    _firehose_read_all(stack, p, _rule_put(stack, p))
    stats = stack.local.firehose.stats                                   # local-only
    wait_until(lambda: all(stats(n)["in_flight"] == 0 for n in (p.delivery_stream, p.replay_delivery_stream)),
               60, poll=0.02)


def _rule_put(stack, p: Pipeline) -> int:
    return stack.local.iot.rule_stats(p.rule)["actions_succeeded"]          # local-only


# ------------------------------------------------------------------ the run
def _stage_counts(stack, p: Pipeline) -> dict:
    rule = stack.local.iot.rule_stats(p.rule)                            # local-only (AWS: CloudWatch)
    fh = stack.local.firehose.stats(p.delivery_stream)                   # local-only (AWS: CloudWatch)
    return {"matched by the IoT rule": rule["matched"], "put into the stream": rule["actions_succeeded"],
            "IoT errorAction": rule["error_actions"], "read by Firehose": fh["records_in"],
            "delivered to S3 by Firehose": fh["records_delivered"], "Firehose error output": fh["records_failed"]}


def run(stack, p: Pipeline, minutes: int = 20, *, start_minute: int = 0, interval: int = 30,
        seed: int = 7) -> RunResult:
    """Publish simulated minutes ``start_minute`` .. ``start_minute + minutes - 1`` of telemetry
    from ``p.devices`` devices, every ``interval`` seconds, injecting ``p.faults``; the counts.

    The fleet is seeded: minutes before ``start_minute`` are generated (not published) so a
    run continued later sends the messages an uninterrupted run would. The clock is frozen
    during the run and runs again after it, whatever happens.
    """
    fleet = Fleet(devices=p.devices, interval=interval, seed=seed)
    faults = p.faults
    for minute in range(start_minute):          # fast-forward the seeded fleet
        for slot in range(60 // interval):
            fleet.slot(minute, slot)
            if faults.burst and faults.burst[2] == minute and slot == 0:
                fleet.burst(fleet.ids[faults.burst[0]], minute, faults.burst[1])
    iot_data = stack.client("iot-data")
    clock = stack.local.clock                                            # local-only
    result = RunResult(minutes=minutes)
    before = _stage_counts(stack, p)
    began = time.monotonic()
    clock.freeze()
    try:
        for minute in range(start_minute, start_minute + minutes):
            row = {"minute": minute, "published": 0, "telemetry": 0, "self_tests": 0, "burst": 0}
            if faults.crash_reporter == minute:
                stack.local.awslambda.crash_next_invocation(p.reporter_function)      # local-only fault
            if faults.duplicate_delivery == minute:
                stack.local.firehose.duplicate_next_delivery(p.delivery_stream)       # local-only fault
            for slot in range(60 // interval):
                messages = fleet.slot(minute, slot)
                if faults.burst and faults.burst[2] == minute and slot == 0:
                    device, count, _ = faults.burst
                    burst = fleet.burst(fleet.ids[device], minute, count)
                    messages += burst
                    row["burst"] = len(burst)
                publish(iot_data, messages)
                row["published"] += len(messages)
                row["self_tests"] += sum(m["kind"] == "test" for m in messages)
                row["telemetry"] += sum(m["kind"] == "telemetry" for m in messages)
                # First, second by second, until Firehose has read the slot (a read can be throttled:
                # Flink polls the same shards), then the rest of the slot for its buffers. So each
                # Lambda batch holds exactly one slot's records, whatever the threads' timing (a read
                # and a flush due in the same advance would race), and the fault fails the same
                # batches on every run.
                spent = 0
                while spent < interval - 1:
                    clock.advance(1)
                    spent += 1
                    if _firehose_read_all(stack, p, _rule_put(stack, p), timeout=1):
                        break
                _settle(stack, p)
                clock.advance(interval - spent)
                _settle(stack, p)
            result.per_minute.append(row)
    finally:
        clock.resume()
    result.wall_seconds = time.monotonic() - began
    after = _stage_counts(stack, p)
    result.published = sum(r["published"] for r in result.per_minute)
    result.sent = sum(r["telemetry"] for r in result.per_minute)
    result.tests = sum(r["self_tests"] for r in result.per_minute)
    result.burst = sum(r["burst"] for r in result.per_minute)
    result.stages = {"published": result.published, **{k: after[k] - before[k] for k in after}}
    return result


# ------------------------------------------------------------------ replay
def replay_errors(stack, p: Pipeline, chunk: int = 500) -> dict:
    """Replay both error outputs once each; returns how many records each replayed.

    First the delivery streams are drained (the clock advanced until they hold
    nothing), so that every error of the run has been written.

    - IoT errorAction documents (``s3://<errors>/iot-errors/``): Publish the
      ``base64OriginalPayload`` to the original topic again, ``chunk`` per
      second of the clock (a shard takes 1,000 records/s).
    - Firehose ``processing-failed`` rows: switch the transform's fault off
      (``FAIL_BATCH_PERCENT=0``), then PutRecordBatch the ``rawData`` into the
      Direct PUT twin (a Kinesis-sourced delivery stream refuses PutRecord).

    Replay *before* :func:`finish`: once its heartbeats have moved Flink's
    watermark a week ahead, replayed records would be late for their windows
    and Flink's counts would miss them (refused here with a clear error).
    """
    if p.windows_closed:
        raise RuntimeError("replay_errors() after finish(): Flink's windows are closed, replayed records would "
                           "be late and not counted; replay first, then finish")
    s3, iot_data = stack.client("s3"), stack.client("iot-data")
    clock = stack.local.clock                                            # local-only
    replayed = {"iot_errors": 0, "firehose_processing_failed": 0}
    clock.freeze()
    try:
        _firehose_read_all(stack, p, _rule_put(stack, p))      # first, every error of the run is written
        _drain_firehose(stack, p)
        keys = s3_keys(stack, p.errors_bucket, "iot-errors/")
        for i in range(0, len(keys), chunk):
            for key in keys[i:i + chunk]:
                doc = json.loads(s3.get_object(Bucket=p.errors_bucket, Key=key)["Body"].read())
                iot_data.publish(topic=doc["topic"], qos=1, payload=base64.b64decode(doc["base64OriginalPayload"]))
                s3.delete_object(Bucket=p.errors_bucket, Key=key)
                replayed["iot_errors"] += 1
            clock.advance(1)
        stack.client("lambda").update_function_configuration(
            FunctionName=p.transform_function, Environment={"Variables": {"FAIL_BATCH_PERCENT": "0"}})
        firehose = stack.client("firehose")
        for key in s3_keys(stack, p.ingest_bucket, "firehose-errors/processing-failed/"):
            body = s3.get_object(Bucket=p.ingest_bucket, Key=key)["Body"].read()
            raw = [base64.b64decode(json.loads(line)["rawData"]) for line in body.splitlines() if line.strip()]
            for j in range(0, len(raw), 500):
                answer = firehose.put_record_batch(DeliveryStreamName=p.replay_delivery_stream,
                                                   Records=[{"Data": d} for d in raw[j:j + 500]])
                if answer["FailedPutCount"]:
                    raise RuntimeError(f"{answer['FailedPutCount']} records not accepted by the replay stream")
            s3.delete_object(Bucket=p.ingest_bucket, Key=key)
            replayed["firehose_processing_failed"] += len(raw)
        _firehose_read_all(stack, p, _rule_put(stack, p))
    finally:
        clock.resume()
    return replayed


# ------------------------------------------------------------------ finish: close windows, drain
def _open_shards(stack, stream: str) -> list[dict]:
    shards = stack.client("kinesis").list_shards(StreamName=stream)["Shards"]
    return [s for s in shards if "EndingSequenceNumber" not in s["SequenceNumberRange"]]


def _control_records(stack, p: Pipeline, kind: str, seconds_after_start: float, tag: str) -> list[str]:
    """One ``kind`` record (``marker`` or ``heartbeat``) into every open shard (ExplicitHashKey
    picks the shard); their record_ids. The transform drops them; Flink's windows skip them."""
    shards = _open_shards(stack, p.stream)
    ids = [f"{kind}-{tag}-{s['ShardId']}" for s in shards]
    stack.client("kinesis").put_records(StreamName=p.stream, Records=[{
        "Data": json.dumps({"record_id": rid, "device_id": "-", "kind": kind,
                            "ts": event_time(seconds_after_start), "temp_c": 0}).encode(),
        "PartitionKey": kind, "ExplicitHashKey": s["HashKeyRange"]["StartingHashKey"]}
        for rid, s in zip(ids, shards)])
    return ids


def queue_empty(stack, url: str) -> bool:
    """Whether an SQS queue holds no message, visible or in flight (GetQueueAttributes)."""
    attrs = stack.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=[
        "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    return attrs["ApproximateNumberOfMessages"] == "0" and attrs["ApproximateNumberOfMessagesNotVisible"] == "0"


def close_windows(stack, p: Pipeline, timeout: float = 180) -> bool:
    """Make Flink emit every window, without dropping a record as late.

    Flink's watermark trails the newest event time it has read by an hour, so
    the last windows stay open until a later event comes. A *heartbeat* with an
    event time a week ahead moves the watermark past them. But the job reads
    the shards one after the other: a heartbeat read from shard A before the
    rest of shard B would make B's records late. So first a *marker* goes into
    every shard, which the job copies to ``device-metrics`` as it reads it (a
    second INSERT of the application); once every marker is back, the job has
    read everything before them in every shard, and the heartbeats can go.
    """
    tag = f"{int(stack.local.clock.time() * 1000)}"                     # local-only: a fresh tag
    markers = set(_control_records(stack, p, "marker", 0, tag))
    seen = lambda: markers <= {r.get("device_id") for r in read_stream(stack, p.metrics_stream)}  # noqa: E731
    if not wait_until(seen, timeout, poll=0.5):
        return False
    _control_records(stack, p, "heartbeat", HEARTBEAT_SECONDS, tag)
    return True


def _drain_firehose(stack, p: Pipeline, rounds: int = 6) -> bool:
    """Advance the frozen clock a minute at a time until both delivery streams hold nothing."""
    clock = stack.local.clock                                            # local-only
    names = (p.delivery_stream, p.replay_delivery_stream)
    stats = stack.local.firehose.stats                                   # local-only
    quiet = lambda: all(stats(n)["in_flight"] == 0 for n in names)       # noqa: E731
    empty = lambda: quiet() and all(stats(n)["buffered"] == 0 for n in names)  # noqa: E731
    for _ in range(rounds):
        wait_until(quiet, 60, poll=0.05)
        if empty():
            return True
        clock.advance(60)                       # the Lambda buffer (20 s), then the S3 buffer (60 s)
        wait_until(empty, 2, poll=0.05)
    return empty()


def finish(stack, p: Pipeline, timeout: float = 180) -> dict:
    """Close Flink's windows, let Firehose deliver everything, and the reporter report it."""
    closed = close_windows(stack, p, timeout)
    p.windows_closed = closed
    clock = stack.local.clock                                            # local-only
    clock.freeze()
    try:
        clock.advance(1)                        # Firehose reads the markers and heartbeats
        _firehose_read_all(stack, p, _rule_put(stack, p) + 2 * len(_open_shards(stack, p.stream)))
        drained = _drain_firehose(stack, p)
    finally:
        clock.resume()
    reported = stack.local.awslambda.wait_sqs_idle(p.mapping_uuid, timeout=timeout)   # local-only
    return {"flink_windows_closed": closed, "firehose_drained": drained, "reports_done": reported}


# ------------------------------------------------------------------ Redshift
def load_redshift(stack, p: Pipeline) -> dict:
    """COPY every curated Parquet file into ``telemetry_staging``, keep one row per record_id in
    ``telemetry_batch``, MERGE it into ``telemetry`` on record_id, in one transaction. Running
    it again changes nothing (the MERGE updates the same rows)."""
    names = ", ".join(n for n, _ in _columns())
    source = ", ".join(f"s.{n}" for n, _ in _columns())
    updates = ", ".join(f"{n} = s.{n}" for n, _ in _columns() if n != "record_id")
    statements = [
        "DELETE FROM telemetry_staging",
        "DELETE FROM telemetry_batch",
        f"COPY telemetry_staging FROM 's3://{p.ingest_bucket}/telemetry/' IAM_ROLE '{p.role_arn}' FORMAT AS PARQUET",
        f"INSERT INTO telemetry_batch SELECT {names} FROM (SELECT *, ROW_NUMBER() OVER "
        f"(PARTITION BY record_id ORDER BY seq) AS copy_no FROM telemetry_staging) AS numbered WHERE copy_no = 1",
        f"MERGE INTO telemetry USING telemetry_batch s ON telemetry.record_id = s.record_id "
        f"WHEN MATCHED THEN UPDATE SET {updates} WHEN NOT MATCHED THEN INSERT ({names}) VALUES ({source})",
    ]
    redshift_sql(stack, p, statements)
    staged = int(redshift_rows(stack, p, "SELECT count(*) FROM telemetry_staging")[0][0])
    loaded = int(redshift_rows(stack, p, "SELECT count(*) FROM telemetry")[0][0])
    return {"staged_rows": staged, "telemetry_rows": loaded}


def _columns():
    return COLUMNS


# ------------------------------------------------------------------ reconcile
def flink_metrics(stack, p: Pipeline) -> pd.DataFrame:
    """The device-metrics stream, one row per (device, window): the Kinesis sink is at-least-once
    (a restarted job may write a window again), so the last copy of each key is kept."""
    rows = [r for r in read_stream(stack, p.metrics_stream) if r.get("records")]   # not the markers
    if not rows:
        return pd.DataFrame(columns=["device_id", "window_start", "records", "avg_temp_c", "max_temp_c"])
    frame = pd.DataFrame(rows).drop_duplicates(["device_id", "window_start"], keep="last")
    return frame.sort_values(["device_id", "window_start"]).reset_index(drop=True)


def parquet_rows(stack, p: Pipeline) -> pd.DataFrame:
    """Every curated row, read from the Parquet objects themselves."""
    s3 = stack.client("s3")
    frames = []
    import io
    for key in s3_keys(stack, p.ingest_bucket, "telemetry/"):
        table = pq.read_table(io.BytesIO(s3.get_object(Bucket=p.ingest_bucket, Key=key)["Body"].read()))
        frames.append(table.to_pandas().assign(object=key))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["record_id", "object"])


def reconcile(stack, p: Pipeline, sent: int, *, flink_timeout: float = 120) -> pd.DataFrame:
    """The reconciliation table: stage | records | should be | holds.

    ``sent`` is the number of telemetry messages the devices published
    (``RunResult.sent``). Error outputs are shown as they are now (0 after a
    replay); duplicates are Parquet rows beyond one per record_id.
    """
    stream = [r for r in read_stream(stack, p.stream) if r.get("kind") == "telemetry"]
    stream_ids = {r["record_id"] for r in stream}
    rule = stack.local.iot.rule_stats(p.rule)                            # local-only
    delivered = parquet_rows(stack, p)
    athena_count, athena_distinct = (int(x) for x in athena_rows(
        stack, p, f"SELECT count(*), count(DISTINCT record_id) FROM {p.table}")[0])
    redshift = int(redshift_rows(stack, p, "SELECT count(DISTINCT record_id) FROM telemetry")[0][0])
    redshift_all = int(redshift_rows(stack, p, "SELECT count(*) FROM telemetry")[0][0])
    expected_windows = len({(r["device_id"], r["ts"][:16]) for r in stream})
    wait_until(lambda: len(flink_metrics(stack, p)) >= expected_windows, flink_timeout, poll=0.5)
    metrics = flink_metrics(stack, p)
    flink_sum = int(metrics["records"].sum()) if len(metrics) else 0
    iot_errors = len(s3_keys(stack, p.errors_bucket, "iot-errors/"))
    fh_errors = len(s3_keys(stack, p.ingest_bucket, "firehose-errors/processing-failed/"))
    reports = len(s3_keys(stack, p.reporting_bucket, REPORTS))
    curated = len(s3_keys(stack, p.ingest_bucket, "telemetry/"))
    # What each count should be once nothing is lost: "= sent" for the data stages, "0" for an
    # error output (after the replay), ">= sent" where replays pass again; None: information only.
    rows = [
        ("sent (telemetry published)", sent, "= sent"),
        ("matched by the IoT rule", rule["matched"], ">= sent"),      # replayed messages match again
        ("distinct record_ids in the stream", len(stream_ids), "= sent"),
        ("records in the stream", len(stream), "= sent"),
        ("IoT error documents waiting", iot_errors, "0"),
        ("Firehose processing-failed objects waiting", fh_errors, "0"),
        ("Parquet rows delivered", len(delivered), ">= sent"),
        ("distinct record_ids delivered", delivered["record_id"].nunique() if len(delivered) else 0, "= sent"),
        ("duplicate rows delivered", len(delivered) - (delivered["record_id"].nunique() if len(delivered) else 0),
         None),
        ("Athena count(*)", athena_count, ">= sent"),
        ("Athena count(DISTINCT record_id)", athena_distinct, "= sent"),
        ("Redshift rows after MERGE", redshift_all, "= sent"),
        ("Redshift distinct record_ids", redshift, "= sent"),
        ("Flink metric count sum", flink_sum, "= sent"),
        ("curated objects", curated, None),
        ("reports written", reports, None),
    ]
    holds = {"= sent": lambda n: n == sent, ">= sent": lambda n: n >= sent, "0": lambda n: n == 0}
    frame = pd.DataFrame([{"stage": stage, "records": int(n), "should be": rule or "",
                           "holds": holds[rule](int(n)) if rule else ""} for stage, n, rule in rows])
    return frame


def pipe7_holds(table: pd.DataFrame) -> bool:
    """PIPE-7: sent = distinct in Athena = rows in Redshift = Flink's count sum."""
    value = dict(zip(table["stage"], table["records"]))
    sent = value["sent (telemetry published)"]
    return sent == value["Athena count(DISTINCT record_id)"] == value["Redshift rows after MERGE"] \
        == value["Flink metric count sum"] == value["distinct record_ids in the stream"]


__all__ = ["RunResult", "close_windows", "finish", "flink_metrics", "load_redshift", "pipe7_holds", "reconcile",
           "replay_errors", "run"]
