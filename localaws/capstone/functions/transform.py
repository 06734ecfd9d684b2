"""Firehose transformation Lambda: decode, validate, enrich, partition.

Firehose invokes this function with a batch of records read from the Kinesis
stream ({"records": [{"recordId", "data" (base64), ...}]}) and expects every
recordId back once, with a result [1]:

- ``Ok``: ``data`` is the new record (base64); ``metadata.partitionKeys``
  feeds dynamic partitioning (the delivery stream's prefix
  ``telemetry/dt=!{partitionKeyFromLambda:dt}/``);
- ``Dropped``: discarded on purpose (the end-of-run markers and heartbeats);
- ``ProcessingFailed``: this record is bad; Firehose writes it to the
  ``processing-failed`` error prefix with its original data.

Enrichment: ``temp_f`` from ``temp_c``; ``dt`` (the event date) from ``ts``.

Fault injection: the environment variable ``FAIL_BATCH_PERCENT`` makes the
function *raise* for a batch whose smallest record_id's CRC-32 falls under that
percentage (the smallest, not the first: the order in which Firehose read the
shards must not matter) (deterministic, so Firehose's retries of that batch fail too and
its records end in the error prefix, as a bug in a deployed transform would
do). Set it back to 0 (UpdateFunctionConfiguration: the fix is deployed)
before replaying the error prefix.

[1] https://docs.aws.amazon.com/firehose/latest/dev/data-transformation.html
"""
import base64
import json
import os
import zlib

REQUIRED = ("record_id", "device_id", "ts", "temp_c")


def failing(record_id: str) -> bool:
    """Whether the fault injection fails a batch whose smallest record_id is ``record_id``."""
    percent = float(os.environ.get("FAIL_BATCH_PERCENT", "0") or 0)
    return zlib.crc32(record_id.encode()) % 100 < percent


def transform(doc: dict) -> dict:
    """The curated record: the columns of the Glue table, in its order."""
    temp_c = float(doc["temp_c"])
    return {"record_id": doc["record_id"], "device_id": doc["device_id"], "ts": doc["ts"],
            "seq": int(doc.get("seq", 0)), "temp_c": temp_c, "temp_f": round(temp_c * 9 / 5 + 32, 2),
            "humidity": doc.get("humidity"), "battery": doc.get("battery")}


def lambda_handler(event, context):
    decoded = []
    for record in event["records"]:
        try:
            decoded.append(json.loads(base64.b64decode(record["data"])))
        except ValueError:
            decoded.append(None)
    ids = [d["record_id"] for d in decoded if isinstance(d, dict) and "record_id" in d]
    if ids and failing(min(ids)):
        raise RuntimeError(f"injected fault: the batch holding {min(ids)} fails (FAIL_BATCH_PERCENT)")
    out = []
    for record, doc in zip(event["records"], decoded):
        if isinstance(doc, dict) and doc.get("kind") in ("heartbeat", "marker"):
            out.append({"recordId": record["recordId"], "result": "Dropped", "data": record["data"]})
            continue
        if not isinstance(doc, dict) or any(doc.get(k) in (None, "") for k in REQUIRED):
            out.append({"recordId": record["recordId"], "result": "ProcessingFailed", "data": record["data"]})
            continue
        curated = transform(doc)
        data = base64.b64encode(json.dumps(curated).encode() + b"\n").decode()
        out.append({"recordId": record["recordId"], "result": "Ok", "data": data,
                    "metadata": {"partitionKeys": {"dt": doc["ts"][:10]}}})
    print(json.dumps({"records": len(out), "ok": sum(r["result"] == "Ok" for r in out)}))
    return {"records": out}
