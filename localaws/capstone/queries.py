"""Small boto3 helpers the steps share: Data API statements, Athena queries, S3 listings,
reading a whole Kinesis stream. Each waits by polling the API, as any client does on AWS."""
from __future__ import annotations

import json

from localaws.core.waiting import wait_until


def redshift_sql(stack, p, statements: list[str], timeout: float = 120) -> dict:
    """Run ``statements`` as one Data API batch (one transaction); DescribeStatement at the end."""
    data = stack.client("redshift-data")
    sid = data.batch_execute_statement(ClusterIdentifier=p.cluster, Database="dev", DbUser="admin",
                                       Sqls=statements)["Id"]
    state = {}

    def ended():
        state.update(data.describe_statement(Id=sid))
        return state["Status"] in ("FINISHED", "FAILED", "ABORTED")
    if not wait_until(ended, timeout, poll=0.1):
        raise TimeoutError(f"Redshift statements did not end in {timeout} s")
    if state["Status"] != "FINISHED":
        raise RuntimeError(f"Redshift: {state.get('Error')}")
    return state


def redshift_rows(stack, p, sql: str) -> list[list]:
    data = stack.client("redshift-data")
    sid = data.execute_statement(ClusterIdentifier=p.cluster, Database="dev", DbUser="admin", Sql=sql)["Id"]
    wait_until(lambda: data.describe_statement(Id=sid)["Status"] in ("FINISHED", "FAILED", "ABORTED"), 60, poll=0.1)
    desc = data.describe_statement(Id=sid)
    if desc["Status"] != "FINISHED":
        raise RuntimeError(f"Redshift: {desc.get('Error')}")
    return [[next(iter(v.values())) for v in r] for r in data.get_statement_result(Id=sid)["Records"]]


def athena_rows(stack, p, sql: str) -> list[list[str]]:
    athena = stack.client("athena")
    qid = athena.start_query_execution(QueryString=sql, WorkGroup=p.workgroup,
                                       QueryExecutionContext={"Database": p.database})["QueryExecutionId"]
    status = {}

    def ended():
        status.update(athena.get_query_execution(QueryExecutionId=qid)["QueryExecution"]["Status"])
        return status["State"] in ("SUCCEEDED", "FAILED", "CANCELLED")
    wait_until(ended, 60, poll=0.1)
    if status["State"] != "SUCCEEDED":
        raise RuntimeError(f"Athena: {status.get('StateChangeReason')}")
    rows = athena.get_query_results(QueryExecutionId=qid)["ResultSet"]["Rows"]
    return [[c.get("VarCharValue") for c in r["Data"]] for r in rows[1:]]


def s3_keys(stack, bucket: str, prefix: str) -> list[str]:
    s3 = stack.client("s3")
    keys = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys += [o["Key"] for o in page.get("Contents", [])]
    return sorted(keys)


def read_stream(stack, stream: str) -> list[dict]:
    """Every record of every shard of ``stream``, from TRIM_HORIZON to the tip, decoded from JSON.

    A shard serves 5 GetRecords calls a second to *all* its readers, and Flink and Firehose
    read it too: a throttled call (ProvisionedThroughputExceededException) is retried with
    backoff, as the SDK's standard retry mode does."""
    from botocore.config import Config
    kinesis = stack.client("kinesis", config=Config(retries={"mode": "standard", "max_attempts": 10}))
    out = []
    for shard in kinesis.list_shards(StreamName=stream)["Shards"]:
        iterator = kinesis.get_shard_iterator(StreamName=stream, ShardId=shard["ShardId"],
                                              ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        while iterator:
            page = kinesis.get_records(ShardIterator=iterator, Limit=10000)
            out += [json.loads(r["Data"]) for r in page["Records"]]
            if not page["Records"]:          # at the tip (a local stream answers at once)
                break
            iterator = page.get("NextShardIterator")
    return out


__all__ = ["athena_rows", "read_stream", "redshift_rows", "redshift_sql", "s3_keys"]
