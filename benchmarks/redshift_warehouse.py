"""Redshift stand-in: zone maps, load paths and the result cache, measured side by side in one run.

On one local cluster (2 x ra3.xlplus, 4 slices), reached with AWS's driver
``redshift_connector`` on the cluster's endpoint:

1. **Blocks read with vs without a sort key** on a 3-day range filter over
   400 000 rows spread over a year: the same rows in a table with
   ``SORTKEY(day)`` (after VACUUM) and in one without, blocks read summed over
   the slices from STL_SCAN. Goal: <= 1/10.
2. **Rows/s of a batched multi-row INSERT vs row-by-row INSERTs** (one
   statement per row, as ``executemany`` sends them). Goal: >= 20x.
3. **Rows/s of COPY from S3 (CSV) vs the batched INSERT**.
4. **A repeated join + aggregate with the result cache on vs off**
   (``SET enable_result_cache_for_session``).
5. **Per-slice parallel scan+aggregate vs one slice at a time** (``mpp.py``):
   the same filter + GROUP BY (a CPU-bound one: md5, sqrt, ln per row) over
   2,000,000 rows on a 4-slice warehouse, its slice steps run by 4 threads at
   once vs by 1 (``mpp.MAX_WORKERS``), and gathered (one DuckDB query over the
   slices' views). DuckDB's ``threads`` is global to the database; at the
   warehouse's bound (2) one slice step already uses both cores, so the
   figure is also given with ``threads=1``, where all the parallelism comes
   from the slices. On a 2-core machine expect at most 2x.
6. **The repeated join + aggregate on Redshift (cache off) vs on Athena**, over
   the same rows (UNLOADed to S3 as Parquet, external tables in Athena):
   the loaded warehouse answers from its own storage, Athena reads S3 and
   goes through its asynchronous API on every run.

Prints figures and ratios; never fails on speed.

Usage: ``.venv/bin/python benchmarks/redshift_warehouse.py`` (``parallel``: section 5 only)
"""
from __future__ import annotations

import statistics
import sys
import tempfile
import time
import uuid

import redshift_connector

import _results
import localaws
from localaws.athena.client import run_query
from localaws.redshift import mpp
from localaws.redshift.engine import Warehouse

ROWS = 400_000
ROW_BY_ROW, BATCHED, BATCH, COPY_ROWS = 300, 20_000, 1_000, 200_000
GOAL_BLOCKS, GOAL_BATCH = 1 / 10, 20.0
RANGE = "SELECT count(*), sum(v) FROM {t} WHERE day BETWEEN '2024-03-01' AND '2024-03-03'"
JOIN = ("SELECT d.name, count(*), avg(e.v) FROM events_sorted e JOIN names d ON e.v = d.v "
        "GROUP BY d.name ORDER BY 2 DESC, 1 LIMIT 5")
PARALLEL_ROWS = 2_000_000
AGGREGATE = ("SELECT v % 97 AS g, count(*), sum(length(md5(s || k))), avg(sqrt(x) * ln(v + 2)), max(x) "
             "FROM facts WHERE s LIKE '%1%' GROUP BY 1")


def blocks_of_last_scan(cur) -> tuple[int, int]:
    cur.execute("SELECT sum(blocks_read), sum(blocks_total) FROM stl_scan "
                "WHERE query = (SELECT max(query) FROM stl_scan)")
    read, total = cur.fetchone()
    return int(read), int(total)


def rate(rows: int, seconds: float) -> float:
    return rows / seconds if seconds else float("inf")


def median_seconds(run, times: int = 5) -> float:
    spans = []
    for _ in range(times):
        started = time.perf_counter()
        run()
        spans.append(time.perf_counter() - started)
    return statistics.median(spans)


def rounded(rows) -> list[tuple]:
    return sorted(tuple(round(v, 6) if isinstance(v, float) else v for v in row) for row in rows)


def slice_parallelism() -> list[tuple]:
    """Section 5: the same query with its slice steps 4 at a time vs 1 at a time (and gathered)."""
    figures = []
    with tempfile.TemporaryDirectory() as work:
        wh = Warehouse("parallel", "dev", "admin", "Passw0rd1", work, node_type="ra3.xlplus", number_of_nodes=2)
        try:
            wh.execute("CREATE TABLE facts (k BIGINT, v INT, x DOUBLE PRECISION, s VARCHAR(20)) DISTSTYLE EVEN")
            wh.execute(f"INSERT INTO facts SELECT i, i % 1000, (i * 7919 % 10007) / 7.0, 'item-' || (i % 5003) "
                       f"FROM generate_series(1, {PARALLEL_ROWS}) AS g(i)")
            wh.execute("SET enable_result_cache_for_session TO off")
            answer = rounded(wh.execute(AGGREGATE).rows)
            threads = wh.connection.execute("SELECT current_setting('threads')").fetchone()[0]
            for setting in (threads, 1):
                wh.connection.execute(f"SET threads = {setting}")
                spans = {}
                for label, workers, enabled in (("4 at once", None, True), ("1 at a time", 1, True),
                                                ("gathered", None, False)):
                    mpp.MAX_WORKERS, mpp.ENABLED = workers, enabled
                    spans[label] = median_seconds(lambda: wh.execute(AGGREGATE)) * 1000
                    assert rounded(wh.execute(AGGREGATE).rows) == answer    # sums of doubles: order varies
                mpp.MAX_WORKERS, mpp.ENABLED = None, True
                figures.append((f"slice steps 1 at a time / 4 at once (threads={setting})",
                                f"{spans['1 at a time']:.0f} / {spans['4 at once']:.0f} ms "
                                f"(gathered {spans['gathered']:.0f})",
                                spans["1 at a time"] / spans["4 at once"], "(<= 2 on 2 cores)"))
            wh.connection.execute(f"SET threads = {threads}")
        finally:
            mpp.MAX_WORKERS, mpp.ENABLED = None, True
            wh.close()
    return figures


def redshift_vs_athena(stack, cur, bucket: str) -> tuple:
    """Section 6: one join + aggregate, repeated, on the cluster (cache off) and on Athena.

    The cluster UNLOADs both tables to S3 as Parquet, Athena gets external
    tables over those files: the same rows, the same SQL, each engine's median
    of 5 runs (Athena's includes its start/poll/fetch round trips, as a
    client sees them).
    """
    athena = stack.client("athena")
    role = "IAM_ROLE 'arn:aws:iam::123456789012:role/bench'"
    for table in ("events_sorted", "names"):
        cur.execute(f"UNLOAD ('SELECT * FROM {table}') TO 's3://{bucket}/lake/{table}/' {role} FORMAT PARQUET")
    output = f"s3://{bucket}/athena-results/"
    run_query(athena, "CREATE DATABASE IF NOT EXISTS bench", output=output)
    for table, columns in (("events_sorted", "id BIGINT, day DATE, v INT"), ("names", "v INT, name STRING")):
        run_query(athena, f"CREATE EXTERNAL TABLE bench.{table} ({columns}) STORED AS PARQUET "
                          f"LOCATION 's3://{bucket}/lake/{table}/'", output=output)

    def on_redshift():
        cur.execute(JOIN)
        return cur.fetchall()

    def on_athena():
        frame, _ = run_query(athena, JOIN, database="bench", output=output)
        return frame

    mine, theirs = on_redshift(), list(on_athena().itertuples(index=False, name=None))
    assert rounded(mine) == rounded(theirs), (mine, theirs)
    redshift_s, athena_s = median_seconds(on_redshift), median_seconds(on_athena)
    return ("repeated join+aggregate: Redshift / Athena", f"{redshift_s * 1000:.1f} / {athena_s * 1000:.1f} ms",
            redshift_s / athena_s, "(< 1)")


def report(figures: list[tuple], title: str) -> None:
    print(f"\n{title}\n")
    print(f"{'measure':50} {'figures':36} {'ratio':>8}  goal")
    for name, detail, ratio, goal in figures:
        print(f"{name:50} {detail:36} {ratio:8.3f}  {goal}")
        # a goal in parentheses is what to expect, not a goal this benchmark states
        expected = goal.startswith("(")
        _results.record("redshift_warehouse", name, ratio, goal=None if expected else goal,
                        note=f"{detail}; expected {goal.strip('()')}" if expected else detail)


def main() -> None:
    if sys.argv[1:] == ["parallel"]:
        report(slice_parallelism(), f"Redshift stand-in, section 5 ({PARALLEL_ROWS:,} rows, 4 slices)")
        return
    stack = localaws.start()
    redshift, s3 = stack.client("redshift"), stack.client("s3")
    cluster = f"bench-{uuid.uuid4().hex[:6]}"
    redshift.create_cluster(ClusterIdentifier=cluster, NodeType="ra3.xlplus", ClusterType="multi-node",
                            NumberOfNodes=2, MasterUsername="admin", MasterUserPassword="Passw0rd1", DBName="dev")
    try:
        endpoint = redshift.describe_clusters(ClusterIdentifier=cluster)["Clusters"][0]["Endpoint"]
        conn = redshift_connector.connect(host=endpoint["Address"], port=endpoint["Port"], database="dev",
                                          user="admin", password="Passw0rd1", ssl=False)
        conn.autocommit = True
        cur = conn.cursor()
        figures = []

        # 1. zone maps: blocks read with and without a sort key
        cur.execute("SET enable_result_cache_for_session TO off")
        for name, keys in (("events_sorted", "SORTKEY(day)"), ("events_plain", "")):
            cur.execute(f"CREATE TABLE {name} (id BIGINT, day DATE, v INT) DISTSTYLE EVEN {keys}")
            cur.execute(f"INSERT INTO {name} SELECT i, DATE '2024-01-01' + CAST(i * 7919 % 365 AS INT), i % 100 "
                        f"FROM generate_series(1, {ROWS}) AS g(i)")            # days in scattered order
        cur.execute("VACUUM events_sorted")
        cur.execute(RANGE.format(t="events_sorted"))
        sorted_answer = cur.fetchone()
        sorted_read, sorted_total = blocks_of_last_scan(cur)
        cur.execute(RANGE.format(t="events_plain"))
        assert cur.fetchone() == sorted_answer
        plain_read, plain_total = blocks_of_last_scan(cur)
        figures.append(("blocks read, 3-day range: SORTKEY / none", f"{sorted_read} / {plain_read} blocks "
                        f"(of {sorted_total})", sorted_read / plain_read, f"<= {GOAL_BLOCKS:.2f}"))

        # 2. row-by-row vs batched multi-row INSERT
        cur.execute("CREATE TABLE loads (id INT, name VARCHAR(20), v DOUBLE PRECISION) DISTKEY(id)")
        started = time.perf_counter()
        for i in range(ROW_BY_ROW):
            cur.execute(f"INSERT INTO loads VALUES ({i}, 'row {i}', {i * 0.5})")
        single = rate(ROW_BY_ROW, time.perf_counter() - started)
        started = time.perf_counter()
        for first in range(0, BATCHED, BATCH):
            values = ", ".join(f"({i}, 'row {i}', {i * 0.5})" for i in range(first, first + BATCH))
            cur.execute(f"INSERT INTO loads VALUES {values}")
        batched = rate(BATCHED, time.perf_counter() - started)
        figures.append(("rows/s: multi-row INSERT / row-by-row", f"{batched:,.0f} / {single:,.0f} rows/s",
                        batched / single, f">= {GOAL_BATCH:.0f}"))

        # 3. COPY from S3 vs batched INSERT
        bucket = f"bench-{uuid.uuid4().hex[:6]}"
        s3.create_bucket(Bucket=bucket)
        body = "\n".join(f"{i},row {i},{i * 0.5}" for i in range(COPY_ROWS)).encode()
        s3.put_object(Bucket=bucket, Key="loads/part-0.csv", Body=body)
        started = time.perf_counter()
        cur.execute(f"COPY loads FROM 's3://{bucket}/loads/' IAM_ROLE 'arn:aws:iam::123456789012:role/bench' CSV")
        copied = rate(COPY_ROWS, time.perf_counter() - started)
        figures.append(("rows/s: COPY (CSV, S3) / multi-row INSERT", f"{copied:,.0f} / {batched:,.0f} rows/s",
                        copied / batched, "(> 1)"))

        # 4. the result cache on a repeated join + aggregate
        cur.execute("CREATE TABLE names (v INT, name VARCHAR(10)) DISTSTYLE ALL")
        cur.execute("INSERT INTO names VALUES " + ", ".join(f"({v}, 'n{v % 7}')" for v in range(100)))

        def median_ms(times: int = 7) -> float:
            spans = []
            for _ in range(times):
                started = time.perf_counter()
                cur.execute(JOIN)
                cur.fetchall()
                spans.append(time.perf_counter() - started)
            return statistics.median(spans) * 1000
        off = median_ms()
        cur.execute("SET enable_result_cache_for_session TO on")
        on = median_ms()
        cur.execute("SELECT count(*) FROM svl_qlog WHERE source_query IS NOT NULL")
        hits = cur.fetchone()[0]
        figures.append(("repeated join+aggregate: cache on / off", f"{on:.1f} / {off:.1f} ms ({hits} hits)",
                        on / off, "(< 1)"))

        # 6. the same join + aggregate on Athena, over the same rows UNLOADed to S3 as Parquet
        cur.execute("SET enable_result_cache_for_session TO off")
        figures.append(redshift_vs_athena(stack, cur, bucket))
        conn.close()
    finally:
        redshift.delete_cluster(ClusterIdentifier=cluster, SkipFinalClusterSnapshot=True)
        stack.stop()

    # 5. per-slice parallel scan + aggregate (mpp.py), on a warehouse of its own
    figures += slice_parallelism()
    report(figures, f"Redshift stand-in, one run ({ROWS:,} rows for zone maps, {PARALLEL_ROWS:,} for the "
                    f"slices; 2 x ra3.xlplus = 4 slices)")


if __name__ == "__main__":
    main()
