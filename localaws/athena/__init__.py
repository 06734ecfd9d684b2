"""Amazon Athena on your laptop: Trino SQL on DuckDB over the stack's S3.

``api.py`` holds ``AthenaPlane``, the query API (see ``docs/adding_a_service.md``),
and ``metadata.py`` its catalog API (ListDataCatalogs ... GetTableMetadata,
read from Glue). ``engine.py`` parses and runs a statement on a cursor of the
plane's one DuckDB database: SELECT itself (its rows streamed), DDL through
``ddl.py``, CTAS / INSERT INTO / UNLOAD through ``writer.py``; ``dialect.py``
translates Trino SQL to DuckDB's where the two would answer differently.
``catalog.py`` speaks to the Glue Data Catalog, ``sources.py`` reads table
files from S3 (``federated.py`` reads tables through Lambda connectors),
``results.py`` prints values as Athena does and writes the result file, and
``errors.py`` names failures as Athena does. Heavy engines (DuckDB, sqlglot)
load with the first query.
"""
from __future__ import annotations

import time

from .api import AthenaPlane

__all__ = ["AthenaPlane", "wait_for_query"]

FINAL_STATES = ("SUCCEEDED", "FAILED", "CANCELLED")


def wait_for_query(athena, query_id: str, timeout: float = 300) -> dict:
    """Poll GetQueryExecution until the query ends; return its ``QueryExecution``.

    What you do on AWS too (boto3 has no Athena waiter): ask again, a little
    less often each time (5 ms, 10 ms, 20 ms ... at most every second), until
    the state is SUCCEEDED, FAILED or CANCELLED. Uses only the boto3 client,
    so it works against the local stack and against AWS alike.
    """
    deadline, pause = time.monotonic() + timeout, 0.005
    while True:
        execution = athena.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]
        if execution["Status"]["State"] in FINAL_STATES or time.monotonic() > deadline:
            return execution
        time.sleep(pause)
        pause = min(pause * 2, 1.0)
