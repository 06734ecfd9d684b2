"""An Athena data source connector for a SQLite database, run as a Lambda function.

Where AWS's JDBC connectors open a network connection to a database
(MySQL, PostgreSQL, Redshift...), this one reaches a real SQLite database
file stored in S3: each invocation downloads it (``DATABASE_URI``, an
``s3://bucket/key`` environment variable) into ``/tmp`` and opens it with
Python's ``sqlite3``. The schema is ``main``; column types come from the
declared SQLite types.

ReadRecords runs one SELECT with only the requested columns and the
pushed-down constraints as a parameterised WHERE clause, so the database
does the filtering, and prints that SQL to the function's log.
"""
import os
import sqlite3
import tempfile

import boto3


def log(message):
    print(f"[connector] {message}")


def athena_type(declared):
    """SQLite's type affinity rules, mapped to Athena types."""
    d = (declared or "").upper()
    if "INT" in d:
        return "bigint"
    if any(word in d for word in ("REAL", "FLOA", "DOUB", "NUMERIC", "DECIMAL")):
        return "double"
    if "BOOL" in d:
        return "boolean"
    if "TIMESTAMP" in d or "DATETIME" in d:
        return "timestamp"
    if d == "DATE":
        return "date"
    return "varchar"


def quote(name):
    return '"' + name.replace('"', '""') + '"'


def open_database():
    bucket, _, key = os.environ["DATABASE_URI"][5:].partition("/")
    handle, path = tempfile.mkstemp(suffix=".sqlite")
    os.close(handle)
    boto3.client("s3").download_file(bucket, key, path)
    return sqlite3.connect(path), path


def lambda_handler(event, context):
    kind = event.get("@type")
    if kind == "PingRequest":
        return {"@type": "PingResponse", "catalogName": event.get("catalogName"), "sourceType": "sqlite"}
    con, path = open_database()
    try:
        if kind == "ListSchemasRequest":
            return {"@type": "ListSchemasResponse", "schemas": ["main"]}
        if kind == "ListTablesRequest":
            rows = con.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'view') "
                               "ORDER BY name").fetchall()
            return {"@type": "ListTablesResponse",
                    "tables": [{"schemaName": "main", "tableName": r[0]} for r in rows]}
        name = event["tableName"]
        if name["schemaName"] != "main":
            raise ValueError(f"Schema '{name['schemaName']}' not found: this database has 'main'")
        fields = [(row[1].lower(), athena_type(row[2]))
                  for row in con.execute(f"PRAGMA table_info({quote(name['tableName'])})")]
        if not fields:
            raise ValueError(f"Table 'main.{name['tableName']}' not found in the database")
        if kind == "GetTableRequest":
            log(f"GetTable main.{name['tableName']}: {len(fields)} columns")
            return {"@type": "GetTableResponse", "catalogName": event.get("catalogName"),
                    "tableName": name, "partitionColumns": [],
                    "schema": {"fields": [{"name": n, "type": t} for n, t in fields]}}
        if kind == "ReadRecordsRequest":
            return read_records(event, con, name["tableName"], dict(fields))
        raise ValueError(f"Unknown request type {kind!r}")
    finally:
        con.close()
        os.unlink(path)


def read_records(event, con, table, types):
    columns = [c for c in event["columns"] if c in types]
    summary = (event.get("constraints") or {}).get("summary") or {}
    where, params = [], []
    for col, conds in sorted(summary.items()):
        for c in conds:
            if col in types and c["op"] in ("=", "<", "<=", ">", ">="):
                where.append(f"{quote(col)} {c['op']} ?")
                params.append(c["value"])
    sql = f"SELECT {', '.join(map(quote, columns))} FROM {quote(table)}"
    if where:
        sql += " WHERE " + " AND ".join(where)
    rows = con.execute(sql, params).fetchall()
    log(f"ReadRecords main.{table}: {sql} {params} -> {len(rows)} rows")
    return {"@type": "ReadRecordsResponse", "catalogName": event.get("catalogName"),
            "records": {"rowCount": len(rows),
                        "columns": {c: [r[i] for r in rows] for i, c in enumerate(columns)}}}
