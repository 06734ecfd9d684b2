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

Prints figures and ratios; never fails on speed.

Usage: ``.venv/bin/python benchmarks/redshift_warehouse.py``
"""
from __future__ import annotations

import statistics
import time
import uuid

import redshift_connector

import localaws

ROWS = 400_000
ROW_BY_ROW, BATCHED, BATCH, COPY_ROWS = 300, 20_000, 1_000, 200_000
GOAL_BLOCKS, GOAL_BATCH = 1 / 10, 20.0
RANGE = "SELECT count(*), sum(v) FROM {t} WHERE day BETWEEN '2024-03-01' AND '2024-03-03'"
JOIN = ("SELECT d.name, count(*), avg(e.v) FROM events_sorted e JOIN names d ON e.v = d.v "
        "GROUP BY d.name ORDER BY 2 DESC LIMIT 5")


def blocks_of_last_scan(cur) -> tuple[int, int]:
    cur.execute("SELECT sum(blocks_read), sum(blocks_total) FROM stl_scan "
                "WHERE query = (SELECT max(query) FROM stl_scan)")
    read, total = cur.fetchone()
    return int(read), int(total)


def rate(rows: int, seconds: float) -> float:
    return rows / seconds if seconds else float("inf")


def main() -> None:
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
        conn.close()
    finally:
        redshift.delete_cluster(ClusterIdentifier=cluster, SkipFinalClusterSnapshot=True)
        stack.stop()

    print(f"\nRedshift stand-in, one run ({ROWS:,} rows for zone maps; 2 x ra3.xlplus = 4 slices)\n")
    print(f"{'measure':44} {'figures':36} {'ratio':>8}  goal")
    for name, detail, ratio, goal in figures:
        print(f"{name:44} {detail:36} {ratio:8.3f}  {goal}")


if __name__ == "__main__":
    main()
