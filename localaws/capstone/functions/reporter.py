"""Reporter Lambda: a new curated object in S3 -> an Athena summary in the reporting bucket.

Trigger: an SQS event source mapping on the ``reports`` queue. The queue is
subscribed to the SNS topic the ingestion bucket notifies, so each SQS
message's body is an SNS envelope whose ``Message`` is the S3 event [1][2]::

    SQS record body -> {"Type": "Notification", "Message": "<S3 event JSON>", ...}
    S3 event        -> {"Records": [{"s3": {"bucket": {"name"}, "object": {"key"}}}]}

For each new object ``telemetry/dt=<day>/<name>``:

1. make its partition known to Athena:
   ``ALTER TABLE telemetry ADD IF NOT EXISTS PARTITION (dt='<day>')``;
2. summarise the partition per device (count, average and maximum
   temperature) with Athena; Athena writes its result CSV under the work
   group's output location (``s3://<reporting>/athena-results/``);
3. write the summary as ``reports/<source key>.json`` in the reporting
   bucket. The key derives from the source object's key: a redelivered
   message (SQS is at-least-once; a crashed invocation's messages come back
   after the visibility timeout) overwrites the same object, never adds one.

Environment: ``DATABASE``, ``TABLE``, ``WORKGROUP``, ``REPORT_BUCKET``.
The Athena calls poll GetQueryExecution, as any Athena client does.

[1] https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html
[2] https://docs.aws.amazon.com/sns/latest/dg/sns-message-and-json-formats.html
"""
import json
import os
import time
import urllib.parse

import boto3

athena = boto3.client("athena")
s3 = boto3.client("s3")


def query(sql: str) -> list[list[str]]:
    """Run ``sql`` in the work group; the result rows (header first) as strings."""
    qid = athena.start_query_execution(QueryString=sql, WorkGroup=os.environ["WORKGROUP"],
                                       QueryExecutionContext={"Database": os.environ["DATABASE"]}
                                       )["QueryExecutionId"]
    while True:
        state = athena.get_query_execution(QueryExecutionId=qid)["QueryExecution"]["Status"]
        if state["State"] in ("SUCCEEDED", "FAILED", "CANCELLED"):
            break
        time.sleep(0.1)
    if state["State"] != "SUCCEEDED":
        raise RuntimeError(f"Athena query {state['State']}: {state.get('StateChangeReason')}")
    rows = athena.get_query_results(QueryExecutionId=qid)["ResultSet"]["Rows"]
    return [[c.get("VarCharValue") for c in r["Data"]] for r in rows]


def objects(event):
    """(bucket, key) of every S3 object announced in the SQS batch."""
    for record in event["Records"]:
        envelope = json.loads(record["body"])
        s3_event = json.loads(envelope["Message"]) if "Message" in envelope else envelope
        for r in s3_event.get("Records", []):
            yield r["s3"]["bucket"]["name"], urllib.parse.unquote_plus(r["s3"]["object"]["key"])


def report(bucket: str, key: str) -> str:
    table = os.environ["TABLE"]
    day = key.split("dt=", 1)[1].split("/", 1)[0]
    query(f"ALTER TABLE {table} ADD IF NOT EXISTS PARTITION (dt='{day}') "
          f"LOCATION 's3://{bucket}/telemetry/dt={day}/'")
    rows = query(f"SELECT device_id, count(*) AS records, round(avg(temp_c), 2) AS avg_temp_c, "
                 f"max(temp_c) AS max_temp_c FROM {table} WHERE dt = '{day}' "
                 f"GROUP BY device_id ORDER BY device_id")
    header, body = rows[0], rows[1:]
    summary = {"source": f"s3://{bucket}/{key}", "partition": f"dt={day}",
               "devices": [dict(zip(header, r)) for r in body]}
    target = f"reports/{key}.json"
    s3.put_object(Bucket=os.environ["REPORT_BUCKET"], Key=target,
                  Body=json.dumps(summary, indent=1).encode(), ContentType="application/json")
    return target


def lambda_handler(event, context):
    written = [report(bucket, key) for bucket, key in objects(event)]
    print(json.dumps({"reports": written}))
    return {"reports": written}
