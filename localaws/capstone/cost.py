"""What the pipeline would cost per day on AWS, from the volume a run measured.

A run covers a few simulated minutes; :func:`daily_cost` measures its volume
through the AWS APIs (the curated objects and the reports in S3, the stream's
records), scales it from the simulated minutes to a day and hands it to
``localaws.pricing.pipeline_daily_cost``, which holds the dated prices and
each line's rule. The answer is a DataFrame, one row per service.

Estimated rather than measured: the transform Lambda runs once per 20-second
Lambda buffer (3 per minute), the reporter once per curated object, each
reporter invocation runs 2 Athena queries scanning the day's partition (the
curated bytes, rounded up by Athena's 10 MB minimum anyway).
"""
from __future__ import annotations

import json

import pandas as pd

from .pipeline import Pipeline
from .queries import read_stream, s3_keys


def volume(stack, p: Pipeline, run_result, simulated_minutes: int) -> dict:
    """The run's volume, scaled to a day (keys as ``pipeline_daily_cost`` names them)."""
    s3 = stack.client("s3")
    scale = 24 * 60 / simulated_minutes
    stream = [r for r in read_stream(stack, p.stream) if r.get("kind") == "telemetry"]
    avg_bytes = round(sum(len(json.dumps(r, separators=(",", ":"))) for r in stream) / max(len(stream), 1))
    curated = s3_keys(stack, p.ingest_bucket, "telemetry/")
    curated_bytes = sum(s3.head_object(Bucket=p.ingest_bucket, Key=k)["ContentLength"] for k in curated)
    transform_calls = simulated_minutes * 3
    return {
        "messages_per_day": round(run_result.published * scale),
        "avg_message_bytes": avg_bytes,
        "lambda_invocations_per_day": round((transform_calls + len(curated)) * scale),
        "s3_objects_per_day": round(len(curated) * scale),
        "athena_queries_per_day": round(2 * len(curated) * scale),
        "athena_bytes_scanned_per_day": round(2 * len(curated) * curated_bytes * scale),
    }


def daily_cost(stack, p: Pipeline, run_result, *, simulated_minutes: int, lambda_avg_ms: float = 400,
               lambda_memory_mb: int = 256, redshift_node_type: str = "ra3.xlplus", redshift_nodes: int = 1,
               flink_kpus: int = 1, quicksight_authors: int = 1, quicksight_readers: int = 5) -> pd.DataFrame:
    """Dollars per day, per service and in total, for this pipeline at the run's rate."""
    from localaws import pricing
    cost = pricing.pipeline_daily_cost(
        **volume(stack, p, run_result, simulated_minutes), shards=p.shards, lambda_avg_ms=lambda_avg_ms,
        lambda_memory_mb=lambda_memory_mb, redshift_node_type=redshift_node_type, redshift_nodes=redshift_nodes,
        flink_kpus=flink_kpus, quicksight_authors=quicksight_authors, quicksight_readers=quicksight_readers)
    rows = [{"service": k, "dollars_per_day": round(v, 4)} for k, v in cost.items() if k != "total"]
    rows.append({"service": "total", "dollars_per_day": round(cost["total"], 4)})
    return pd.DataFrame(rows)


__all__ = ["daily_cost", "volume"]
