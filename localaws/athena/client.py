"""Running Athena queries from Python with boto3 alone: what the chapters and labs use.

Athena's API is asynchronous. A query is three kinds of call:

1. ``StartQueryExecution`` returns an id at once;
2. ``GetQueryExecution`` is polled until the state is SUCCEEDED, FAILED or
   CANCELLED (boto3 has no waiter for Athena);
3. ``GetQueryResults`` pages through the rows (1,000 per page; the first row
   of a SELECT's first page is the header) with types in
   ``ResultSetMetadata.ColumnInfo``. Every value arrives as a string.

:func:`run_query` does the three and returns a typed pandas DataFrame plus
the query's statistics. It uses only the boto3 client it is given, so the
same call works against the local stack and against AWS. Chapter 01 writes
the loop out once by hand; everything after it uses this helper.
"""
from __future__ import annotations

import time

FINAL_STATES = ("SUCCEEDED", "FAILED", "CANCELLED")

#: Athena column types -> pandas dtypes (nullable where Athena's values may be NULL).
INTEGER_TYPES = {"tinyint", "smallint", "integer", "int", "bigint"}
FLOAT_TYPES = {"double", "float", "real"}


class QueryFailed(RuntimeError):
    """A query ended FAILED or CANCELLED; ``stats`` holds its state and reason."""

    def __init__(self, stats: dict):
        super().__init__(f"{stats['state']}: {stats['reason']}")
        self.stats = stats


def wait_for_query(athena, query_id: str, timeout: float = 300) -> dict:
    """Poll GetQueryExecution until the query ends; return its ``QueryExecution``.

    Ask again a little less often each time (5 ms, 10 ms, 20 ms ... at most
    every second), until the state is final or ``timeout`` seconds passed.
    """
    deadline, pause = time.monotonic() + timeout, 0.005
    while True:
        execution = athena.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]
        if execution["Status"]["State"] in FINAL_STATES or time.monotonic() > deadline:
            return execution
        time.sleep(pause)
        pause = min(pause * 2, 1.0)


def typed_frame(rows: list[list[str | None]], columns: list[tuple[str, str]]):
    """A DataFrame from Athena's string values, each column converted by its Athena type."""
    import pandas as pd

    frame = pd.DataFrame(rows, columns=[name for name, _ in columns])
    for name, kind in columns:
        base = kind.split("(")[0]
        if base in INTEGER_TYPES:
            frame[name] = pd.to_numeric(frame[name]).astype("Int64")
        elif base in FLOAT_TYPES:
            frame[name] = pd.to_numeric(frame[name]).astype("float64")
        elif base == "decimal":
            numbers = pd.to_numeric(frame[name])
            whole = not frame[name].str.contains(r"[.eE]", na=False).any()
            frame[name] = numbers.astype("Int64") if whole else numbers.astype("float64")
        elif base == "boolean":
            frame[name] = frame[name].map({"true": True, "false": False}).astype("boolean")
        elif base in ("date", "timestamp"):
            frame[name] = pd.to_datetime(frame[name])
    return frame


def run_query(athena, sql: str, *, database: str = "default", output: str | None = None,
              work_group: str = "primary", catalog: str | None = None,
              parameters: list[str] | None = None, check: bool = True, timeout: float = 300):
    """Run one statement; return ``(DataFrame or None, stats)``.

    ``output`` is the S3 location for results (``s3://bucket/prefix/``); None
    uses the work group's. ``stats`` holds ``query_id``, ``state``,
    ``reason``, ``statement_type``, ``bytes_scanned`` (what Athena bills),
    ``seconds`` (TotalExecutionTimeInMillis / 1000) and, for CTAS and INSERT,
    ``rows_written`` (GetQueryResults' ``UpdateCount``). A statement that does
    not succeed raises :class:`QueryFailed` (or, with ``check=False``, returns
    ``(None, stats)``). DDL results (SHOW, DESCRIBE) have no header row: their
    one column is named ``result``.
    """
    request = {"QueryString": sql, "WorkGroup": work_group,
               "QueryExecutionContext": {"Database": database, **({"Catalog": catalog} if catalog else {})}}
    if output:
        request["ResultConfiguration"] = {"OutputLocation": output}
    if parameters:
        request["ExecutionParameters"] = list(parameters)
    query_id = athena.start_query_execution(**request)["QueryExecutionId"]
    execution = wait_for_query(athena, query_id, timeout)
    status, statistics = execution["Status"], execution.get("Statistics", {})
    stats = {"query_id": query_id, "state": status["State"], "reason": status.get("StateChangeReason"),
             "statement_type": execution.get("StatementType"),
             "bytes_scanned": statistics.get("DataScannedInBytes", 0),
             "seconds": statistics.get("TotalExecutionTimeInMillis", 0) / 1000}
    if status["State"] != "SUCCEEDED":
        if check:
            raise QueryFailed(stats)
        return None, stats
    rows, columns = [], None
    for page in athena.get_paginator("get_query_results").paginate(QueryExecutionId=query_id):
        if page.get("UpdateCount"):
            stats["rows_written"] = page["UpdateCount"]
        info = page["ResultSet"]["ResultSetMetadata"]["ColumnInfo"]
        columns = columns or [(c["Name"], c["Type"]) for c in info]
        values = [[d.get("VarCharValue") for d in r["Data"]] for r in page["ResultSet"]["Rows"]]
        if not rows and stats["statement_type"] == "DML" and values and values[0] == [n for n, _ in columns]:
            values = values[1:]                          # the header row of a SELECT
        rows.extend(values)
    if stats["statement_type"] != "DML":
        return _ddl_frame(rows), stats
    return typed_frame(rows, columns or []), stats


def _ddl_frame(rows):
    import pandas as pd
    return pd.DataFrame({"result": [r[0] if r else None for r in rows]})
