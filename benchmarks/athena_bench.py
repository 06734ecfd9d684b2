"""Athena stand-in benchmarks, measured side by side in one run.

1. Round trip: the median time of ``SELECT 1`` from StartQueryExecution to
   SUCCEEDED to the first GetQueryResults page, with boto3 against the
   endpoint, polling GetQueryExecution every 5 ms. Goal: <= 30 ms.
2. End-to-end overhead: the same query over the full flights table (Parquet
   in the local S3) through the Athena API (StartQueryExecution, polling,
   GetQueryResults) vs DuckDB querying the same object directly through
   pyarrow's S3 filesystem. Goal: <= 1.5x for the aggregate. Where the
   Athena API's time goes is printed from its own statistics (planning:
   Glue GetTable, S3 listing, Parquet footer, SQL translation; engine;
   result file) and the rest (API calls, polling). The direct dataset is
   opened once, so pyarrow keeps its footer; a second figure opens it for
   each run, as every Athena query must.
3. Bytes: a 2-column query over Parquet vs the same over CSV (goal <= 1/10),
   and one month of 12 partitions vs all months (goal <= 1/10).
4. Memory: the peak resident memory of this process (the stack runs in it)
   while a 20-million-row result streams to S3, against the CSV's size.
Prints figures and ratios; never fails on speed.
"""
import pathlib
import statistics
import tempfile
import threading
import time

import duckdb
import psutil
import pyarrow.dataset as ds

import _results
import localaws
from localaws.core.limits import duckdb_config
from localaws.data import export_table, nycflights13, upload_directory

QUERY = "SELECT carrier, count(*) AS n, avg(dep_delay) AS d FROM {t} GROUP BY carrier ORDER BY carrier"
# A heavier query over the same table: the fixed per-query cost weighs less.
HEAVY = ("SELECT a.carrier, count(*) AS pairs FROM {t} a JOIN {t} b ON a.tailnum = b.tailnum "
         "AND a.year = b.year AND a.month = b.month AND a.day = b.day GROUP BY a.carrier ORDER BY a.carrier")
BIG = ("SELECT a.x, b.y FROM UNNEST(sequence(1, 5000)) AS a(x) CROSS JOIN UNNEST(sequence(1, 4000)) AS b(y)")
COLS = ("year int, month int, day int, dep_time int, sched_dep_time int, dep_delay double, arr_time int, "
        "sched_arr_time int, arr_delay double, carrier string, flight int, tailnum string, origin string, "
        "dest string, air_time double, distance double, hour int, minute int, time_hour timestamp")


def athena_query(athena, sql, pause=0.005):
    """Run ``sql``, polling every ``pause`` s, and read the first page; returns the execution."""
    qid = athena.start_query_execution(QueryString=sql, QueryExecutionContext={"Database": "bench"},
                                       ResultConfiguration={"OutputLocation": "s3://bench-results/"})["QueryExecutionId"]
    while True:
        ex = athena.get_query_execution(QueryExecutionId=qid)["QueryExecution"]
        if ex["Status"]["State"] not in ("QUEUED", "RUNNING"):
            break
        time.sleep(pause)
    assert ex["Status"]["State"] == "SUCCEEDED", ex["Status"]
    athena.get_query_results(QueryExecutionId=qid)
    return ex


def median_seconds(run, times: int) -> float:
    spans = []
    for _ in range(times):
        start = time.perf_counter()
        run()
        spans.append(time.perf_counter() - start)
    return statistics.median(spans)


def breakdown(spans, stats) -> str:
    """Where an Athena query's time went (medians, ms), from its Statistics and the client's clock."""
    ms = lambda key: statistics.median(st[key] for st in stats)      # noqa: E731
    engine = statistics.median(st["EngineExecutionTimeInMillis"] - st["QueryPlanningTimeInMillis"] for st in stats)
    rest = statistics.median(s * 1000 - st["TotalExecutionTimeInMillis"] for s, st in zip(spans, stats))
    return (f"of which: planning {ms('QueryPlanningTimeInMillis'):.0f} ms, engine {engine:.0f} ms, result file "
            f"{ms('ServiceProcessingTimeInMillis'):.0f} ms, queue {ms('QueryQueueTimeInMillis'):.0f} ms, "
            f"API calls and polling {rest:.0f} ms")


def fresh_direct(con, fs, sql):
    """DuckDB direct (on a cursor of ``con``), the dataset opened anew: its size and footer read again."""
    cursor = con.cursor()
    cursor.register("fresh", ds.dataset("bench-lake/parquet/flights.parquet", filesystem=fs, format="parquet"))
    cursor.sql(sql.format(t="fresh")).fetchall()
    cursor.close()


def peak_rss_mb(run) -> float:
    """The growth of this process's resident memory at its highest while ``run()`` runs."""
    process, done = psutil.Process(), threading.Event()
    start = peak = process.memory_info().rss

    def sample():
        nonlocal peak
        while not done.wait(0.02):
            peak = max(peak, process.memory_info().rss)
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        run()
    finally:
        done.set()
        sampler.join()
    return (peak - start) / 2**20


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

    for _ in range(5):
        athena_query(athena, "SELECT 1")
    one = median_seconds(lambda: athena_query(athena, "SELECT 1"), 40)
    print(f"round trip, SELECT 1 (start -> SUCCEEDED -> first page, polling every 5 ms): "
          f"{one * 1000:.1f} ms (median of 40; goal <= 30 ms)")
    _results.record("athena_bench", "round trip, SELECT 1 (median of 40)", one * 1000, goal="<= 30", unit="ms")

    fs = stack.context.s3.filesystem("bench")
    direct = ds.dataset("bench-lake/parquet/flights.parquet", filesystem=fs, format="parquet")
    con = duckdb.connect(config=duckdb_config("athena"))     # the same bounds as the stand-in
    con.register("direct", direct)
    for label, sql, goal in (("aggregate", QUERY, " (goal <= 1.5x)"), ("self-join", HEAVY, "")):
        athena_query(athena, sql.format(t="fp"))
        local, plain, stats = [], [], []
        for _ in range(7):      # alternating, so both see the same machine
            start = time.perf_counter()
            stats.append(athena_query(athena, sql.format(t="fp"))["Statistics"])
            local.append(time.perf_counter() - start)
            plain.append(median_seconds(lambda: con.sql(sql.format(t="direct")).fetchall(), 1))
        ratio = statistics.median(local) / statistics.median(plain)
        print(f"end to end, {label}: Athena API {statistics.median(local):.3f} s vs DuckDB direct "
              f"{statistics.median(plain):.3f} s (median of 7) -> {ratio:.2f}x{goal}")
        print("  " + breakdown(local, stats))
        _results.record("athena_bench", f"end to end, {label}: Athena API / DuckDB direct", ratio,
                        goal="<= 1.5" if goal else None,
                        note=f"{statistics.median(local):.3f} s / {statistics.median(plain):.3f} s (median of 7)")
    fresh = median_seconds(lambda: fresh_direct(con, fs, QUERY), 7)
    print(f"aggregate, DuckDB direct opening the file for each run (its size and footer read again, as every "
          f"Athena query reads them): {fresh:.3f} s (median of 7)")

    pq = athena_query(athena, "SELECT carrier, avg(dep_delay) FROM fp GROUP BY carrier")
    csv = athena_query(athena, "SELECT carrier, avg(dep_delay) FROM fc GROUP BY carrier")
    pq, csv = (e["Statistics"]["DataScannedInBytes"] for e in (pq, csv))
    print(f"2 columns: Parquet {pq:,} B vs CSV {csv:,} B -> {pq / csv:.4f} (goal <= 0.1)")
    _results.record("athena_bench", "bytes scanned, 2 columns: Parquet / CSV", pq / csv, goal="<= 0.1",
                    note=f"{pq:,} B / {csv:,} B")
    one_month = athena_query(athena, "SELECT count(*), avg(dep_delay) FROM fpart WHERE month = 6")
    every = athena_query(athena, "SELECT count(*), avg(dep_delay) FROM fpart")
    one_month, every = (e["Statistics"]["DataScannedInBytes"] for e in (one_month, every))
    print(f"partitions: 1 month {one_month:,} B vs 12 months {every:,} B -> {one_month / every:.4f} (goal <= 0.1)")
    _results.record("athena_bench", "bytes scanned, partitions: 1 month / 12 months", one_month / every,
                    goal="<= 0.1", note=f"{one_month:,} B / {every:,} B")

    done = {}
    growth = peak_rss_mb(lambda: done.setdefault("ex", athena_query(athena, BIG, pause=0.1)))
    key = done["ex"]["ResultConfiguration"]["OutputLocation"].split("/", 3)[3]
    size = s3.head_object(Bucket="bench-results", Key=key)["ContentLength"] / 2**20
    print(f"memory: a 20,000,000-row result ({size:,.0f} MB of CSV) grew the stack's process by "
          f"{growth:,.0f} MB at its peak")
    _results.record("athena_bench", "memory: peak growth of the stack's process / size of the result",
                    growth / size, note=f"{growth:,.0f} MB / {size:,.0f} MB of CSV (20,000,000 rows)")
    stack.stop()


if __name__ == "__main__":
    main()
