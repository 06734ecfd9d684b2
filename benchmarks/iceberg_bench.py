"""Apache Iceberg on the local Athena: file pruning and compaction, measured side by side.

The flights table (336,776 rows) is loaded three ways in one run: a Hive-style
table partitioned by a ``month`` column (chapter 02's layout), an Iceberg table
with hidden partitioning ``month(time_hour)`` made by CTAS, and an Iceberg table
filled by one INSERT per day for two months (the small-files problem a
streaming writer such as Firehose makes), then compacted with OPTIMIZE.

1. Pruning: bytes scanned by one month's query over all months, on the
   Iceberg table (pruned by the partition values in its manifests; goal <=
   0.12: one file of twelve, plus the ``time_hour`` column it filters on) and
   on the Hive table (pruned by its partition folders, the filter column is
   the folder name: goal <= 0.1), and Iceberg / Hive for the month.
2. Compaction: data files and data bytes before and after ``OPTIMIZE ...
   REWRITE DATA USING BIN_PACK`` (goal: one file per partition; the UTC
   months of two local months' flights are three partitions), and the
   median time of an aggregate over the table before and after (after / before).
Prints figures and ratios; never fails on speed.
"""
import pathlib
import statistics
import tempfile
import time

import _results
import localaws
from localaws.data import export_table, nycflights13, upload_directory

COLS = ("year int, month int, day int, dep_time int, sched_dep_time int, dep_delay double, arr_time int, "
        "sched_arr_time int, arr_delay double, carrier string, flight int, tailnum string, origin string, "
        "dest string, air_time double, distance double, hour int, minute int, time_hour timestamp")
AGGREGATE = "SELECT carrier, count(*) AS n, avg(dep_delay) AS d FROM {t} GROUP BY carrier ORDER BY carrier"
MARCH = "SELECT count(*) AS n, avg(arr_delay) AS d FROM {t} WHERE {w}"


def query(athena, sql):
    """Run ``sql`` in the ``ice`` database; returns the execution (asserting it succeeded)."""
    qid = athena.start_query_execution(QueryString=sql, QueryExecutionContext={"Database": "ice"},
                                       ResultConfiguration={"OutputLocation": "s3://ice-results/"})["QueryExecutionId"]
    while True:
        ex = athena.get_query_execution(QueryExecutionId=qid)["QueryExecution"]
        if ex["Status"]["State"] not in ("QUEUED", "RUNNING"):
            break
        time.sleep(0.005)
    assert ex["Status"]["State"] == "SUCCEEDED", ex["Status"]
    return ex


def rows(athena, sql):
    qid = query(athena, sql)["QueryExecutionId"]
    data = athena.get_query_results(QueryExecutionId=qid)["ResultSet"]["Rows"][1:]
    return [[c.get("VarCharValue") for c in r["Data"]] for r in data]


def scanned(athena, sql) -> int:
    return query(athena, sql)["Statistics"]["DataScannedInBytes"]


def median_seconds(athena, sql, times=7) -> float:
    spans = []
    for _ in range(times):
        start = time.perf_counter()
        query(athena, sql)
        spans.append(time.perf_counter() - start)
    return statistics.median(spans)


def main():
    stack = localaws.start()
    s3, athena = stack.client("s3"), stack.client("athena")
    for bucket in ("ice-lake", "ice-results"):
        s3.create_bucket(Bucket=bucket)
    flights = nycflights13("flights")
    with tempfile.TemporaryDirectory() as tmp:
        root = pathlib.Path(tmp)
        export_table(flights, root / "flat", "parquet", name="flights")
        for month in range(1, 13):
            export_table(flights[flights.month == month].drop(columns="month"),
                         root / "hive" / f"month={month}", "parquet", name="flights")
        upload_directory(s3, "ice-lake", "", root)
    query(athena, "CREATE DATABASE ice")
    query(athena, f"CREATE EXTERNAL TABLE flat ({COLS}) STORED AS PARQUET LOCATION 's3://ice-lake/flat/'")
    query(athena, f"CREATE EXTERNAL TABLE hive ({COLS.replace('month int, ', '')}) PARTITIONED BY (month int) "
                  "STORED AS PARQUET LOCATION 's3://ice-lake/hive/'")
    query(athena, "MSCK REPAIR TABLE hive")
    start = time.perf_counter()
    query(athena, "CREATE TABLE iceberg WITH (table_type = 'ICEBERG', location = 's3://ice-lake/iceberg/', "
                  "is_external = false, partitioning = ARRAY['month(time_hour)']) AS SELECT * FROM flat")
    print(f"CTAS of {len(flights):,} rows into an Iceberg table partitioned by month(time_hour): "
          f"{time.perf_counter() - start:.1f} s")

    # 1. pruning
    month = "time_hour >= TIMESTAMP '2013-03-01 00:00:00' AND time_hour < TIMESTAMP '2013-04-01 00:00:00'"
    ice_all, ice_one = scanned(athena, MARCH.format(t="iceberg", w="true")), \
        scanned(athena, MARCH.format(t="iceberg", w=month))
    hive_all, hive_one = scanned(athena, MARCH.format(t="hive", w="true")), \
        scanned(athena, MARCH.format(t="hive", w="month = 3"))
    assert rows(athena, MARCH.format(t="iceberg", w=month)) == rows(athena, MARCH.format(t="flat", w=month))
    print(f"one month / all months, bytes scanned: Iceberg {ice_one:,} / {ice_all:,} = {ice_one / ice_all:.3f} "
          f"(goal <= 0.12); Hive-style {hive_one:,} / {hive_all:,} = {hive_one / hive_all:.3f} (goal <= 0.1)")
    _results.record("iceberg_bench", "bytes scanned, one month / all months (Iceberg hidden partitioning)",
                    ice_one / ice_all, goal="<= 0.12", note=f"{ice_one:,} B / {ice_all:,} B")
    _results.record("iceberg_bench", "bytes scanned, one month / all months (Hive-style partitions)",
                    hive_one / hive_all, goal="<= 0.1", note=f"{hive_one:,} B / {hive_all:,} B")
    _results.record("iceberg_bench", "bytes scanned for one month, Iceberg / Hive-style", ice_one / hive_one,
                    note="the same rows; the files differ in how they were written")

    # 2. small files, then OPTIMIZE
    query(athena, "CREATE TABLE daily WITH (table_type = 'ICEBERG', location = 's3://ice-lake/daily/', "
                  "is_external = false, partitioning = ARRAY['month(time_hour)']) AS "
                  "SELECT * FROM flat WHERE month = 1 AND day = 1")
    for m, days in ((1, 31), (2, 28)):
        for d in range(1, days + 1):
            if (m, d) != (1, 1):
                query(athena, f"INSERT INTO daily SELECT * FROM flat WHERE month = {m} AND day = {d}")
    files = lambda: [int(x) for x in rows(athena, 'SELECT count(*), sum(file_size_in_bytes) FROM "daily$files"')[0]]
    (n_before, bytes_before), before = files(), median_seconds(athena, AGGREGATE.format(t="daily"))
    (partitions,), = rows(athena, 'SELECT count(*) FROM "daily$partitions"')
    answer = rows(athena, AGGREGATE.format(t="daily"))
    start = time.perf_counter()
    query(athena, "OPTIMIZE daily REWRITE DATA USING BIN_PACK")
    took = time.perf_counter() - start
    (n_after, bytes_after), after = files(), median_seconds(athena, AGGREGATE.format(t="daily"))
    assert rows(athena, AGGREGATE.format(t="daily")) == answer
    print(f"59 daily INSERTs, then OPTIMIZE ({took:.1f} s): data files {n_before} -> {n_after} "
          f"(goal: {partitions}, one per partition), data bytes {bytes_before:,} -> {bytes_after:,} "
          f"({bytes_after / bytes_before:.2f}x); aggregate {before * 1000:.0f} ms -> {after * 1000:.0f} ms "
          f"({after / before:.2f}x)")
    _results.record("iceberg_bench", "data files per partition after OPTIMIZE (59 daily inserts)",
                    n_after / int(partitions), goal="<= 1", unit="files",
                    note=f"{n_before} files before, {n_after} after, {partitions} partitions")
    _results.record("iceberg_bench", "data bytes after / before OPTIMIZE", bytes_after / bytes_before,
                    note=f"{bytes_after:,} B / {bytes_before:,} B")
    _results.record("iceberg_bench", "aggregate time after / before OPTIMIZE", after / before,
                    note=f"{after * 1000:.0f} ms / {before * 1000:.0f} ms (medians of 7)")
    stack.stop()


if __name__ == "__main__":
    main()
