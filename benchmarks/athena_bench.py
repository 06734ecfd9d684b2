"""Athena stand-in benchmarks, measured side by side in one run.

1. End-to-end overhead: the same query over the full flights table (Parquet
   in the local S3) through the Athena API (StartQueryExecution, polling,
   GetQueryResults) vs DuckDB querying the same object directly through
   pyarrow's S3 filesystem. Goal: <= 1.3x.
2. Bytes: a 2-column query over Parquet vs the same over CSV (goal <= 1/10),
   and one month of 12 partitions vs all months (goal <= 1/10).
Prints ratios; never fails on speed.
"""
import pathlib
import statistics
import tempfile
import time

import duckdb
import pyarrow.dataset as ds

import localaws
from localaws.core.limits import duckdb_config
from localaws.data import export_table, nycflights13, upload_directory

QUERY = "SELECT carrier, count(*) AS n, avg(dep_delay) AS d FROM {t} GROUP BY carrier ORDER BY carrier"
# A heavier query over the same table: the fixed per-query cost weighs less.
HEAVY = ("SELECT a.carrier, count(*) AS pairs FROM {t} a JOIN {t} b ON a.tailnum = b.tailnum "
         "AND a.year = b.year AND a.month = b.month AND a.day = b.day GROUP BY a.carrier ORDER BY a.carrier")
COLS = ("year int, month int, day int, dep_time int, sched_dep_time int, dep_delay double, arr_time int, "
        "sched_arr_time int, arr_delay double, carrier string, flight int, tailnum string, origin string, "
        "dest string, air_time double, distance double, hour int, minute int, time_hour timestamp")


def athena_query(athena, sql):
    qid = athena.start_query_execution(QueryString=sql, QueryExecutionContext={"Database": "bench"},
                                       ResultConfiguration={"OutputLocation": "s3://bench-results/"})["QueryExecutionId"]
    while True:
        ex = athena.get_query_execution(QueryExecutionId=qid)["QueryExecution"]
        if ex["Status"]["State"] not in ("QUEUED", "RUNNING"):
            break
        time.sleep(0.01)
    assert ex["Status"]["State"] == "SUCCEEDED", ex["Status"]
    athena.get_query_results(QueryExecutionId=qid)
    return ex["Statistics"]["DataScannedInBytes"]


def main():
    stack = localaws.start()
    s3, athena = stack.client("s3"), stack.client("athena")
    s3.create_bucket(Bucket="bench-lake")
    s3.create_bucket(Bucket="bench-results")
    flights = nycflights13("flights")
    with tempfile.TemporaryDirectory() as tmp:
        root = pathlib.Path(tmp)
        export_table(flights, root / "parquet", "parquet", name="flights")
        export_table(flights, root / "csv", "csv", name="flights")
        for month in range(1, 13):
            export_table(flights[flights.month == month].drop(columns="month"),
                         root / "part" / f"month={month}", "parquet", name="flights")
        upload_directory(s3, "bench-lake", "", root)
    athena_query(athena, "CREATE DATABASE bench")
    athena_query(athena, f"CREATE EXTERNAL TABLE fp ({COLS}) STORED AS PARQUET LOCATION 's3://bench-lake/parquet/'")
    athena_query(athena, f"CREATE EXTERNAL TABLE fc ({COLS}) ROW FORMAT DELIMITED FIELDS TERMINATED BY ',' "
                         "LOCATION 's3://bench-lake/csv/' TBLPROPERTIES ('skip.header.line.count'='1')")
    part_cols = COLS.replace("month int, ", "")
    athena_query(athena, f"CREATE EXTERNAL TABLE fpart ({part_cols}) PARTITIONED BY (month int) STORED AS PARQUET "
                         "LOCATION 's3://bench-lake/part/'")
    athena_query(athena, "MSCK REPAIR TABLE fpart")

    fs = stack.context.s3.filesystem("bench")
    direct = ds.dataset("bench-lake/parquet/flights.parquet", filesystem=fs, format="parquet")
    con = duckdb.connect(config=duckdb_config("athena"))     # the same bounds as the stand-in
    con.register("direct", direct)

    for label, sql in (("aggregate", QUERY), ("self-join", HEAVY)):
        local, plain = [], []
        for _ in range(5):
            t = time.perf_counter()
            athena_query(athena, sql.format(t="fp"))
            local.append(time.perf_counter() - t)
            t = time.perf_counter()
            con.sql(sql.format(t="direct")).fetchall()
            plain.append(time.perf_counter() - t)
        ratio = statistics.median(local) / statistics.median(plain)
        print(f"end to end, {label}: Athena API {statistics.median(local):.3f} s vs DuckDB direct "
              f"{statistics.median(plain):.3f} s (median of 5) -> {ratio:.2f}x (goal <= 1.3x)")

    pq = athena_query(athena, "SELECT carrier, avg(dep_delay) FROM fp GROUP BY carrier")
    csv = athena_query(athena, "SELECT carrier, avg(dep_delay) FROM fc GROUP BY carrier")
    print(f"2 columns: Parquet {pq:,} B vs CSV {csv:,} B -> {pq / csv:.4f} (goal <= 0.1)")
    one = athena_query(athena, "SELECT count(*), avg(dep_delay) FROM fpart WHERE month = 6")
    every = athena_query(athena, "SELECT count(*), avg(dep_delay) FROM fpart")
    print(f"partitions: 1 month {one:,} B vs 12 months {every:,} B -> {one / every:.4f} (goal <= 0.1)")
    stack.stop()


if __name__ == "__main__":
    main()
