"""Per-slice parallel steps and the leader's merge (localaws/redshift/mpp.py).

The differential test runs each query on a 4-slice warehouse, where it goes
through the slice steps, and on one plain DuckDB with the same rows: the
answers must be identical. The other tests check that the path is really
taken (SVL_QUERY_REPORT), what falls back to the gathered path, and that a
cancel or an error in one slice step ends every step.
"""
import io
import random
import threading
import time
import uuid

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlglot

from localaws.redshift import mpp
from localaws.redshift.engine import Warehouse
from localaws.redshift.errors import SQLError

NAMES = ["ant", "bee", "cat", None, "dog"]

#: table -> (columns, Redshift DDL suffix)
TABLES = {
    "sales": ("(id INTEGER, k INTEGER, v INTEGER, name VARCHAR(8), day DATE)", "DISTKEY(k)"),
    "even_t": ("(id INTEGER, k INTEGER, v INTEGER, name VARCHAR(8), day DATE)", "DISTSTYLE EVEN"),
    "other": ("(k INTEGER, w INTEGER)", "DISTKEY(k)"),
    "dim": ("(k INTEGER, label VARCHAR(10))", "DISTSTYLE ALL"),
    "empty_t": ("(k INTEGER, v INTEGER)", "DISTKEY(k)"),
    "few": ("(k INTEGER, v INTEGER)", "DISTKEY(k)"),
}


def rows_of(table: str):
    rng = random.Random(table)
    if table in ("sales", "even_t"):
        return [(i, None if i % 17 == 0 else rng.randint(0, 40), rng.randint(0, 100), rng.choice(NAMES),
                 f"2024-0{rng.randint(1, 3)}-{rng.randint(10, 28)}") for i in range(2000)]
    if table == "other":
        return [(k, k * 10) for k in range(0, 45, 2)] + [(4, 1), (None, 5)]
    if table == "dim":
        return [(k, f"label{k % 4}") for k in range(0, 30)]
    if table == "few":
        return [(1, 10), (1, 20)]
    return []


def literal(value) -> str:
    return "NULL" if value is None else str(value) if isinstance(value, int) else f"'{value}'"


def values(rows) -> str:
    return ", ".join("(" + ", ".join(literal(v) for v in row) + ")" for row in rows)


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    wh = Warehouse("mpp", "dev", "awsuser", "Secret123", tmp_path_factory.mktemp("mpp"), number_of_nodes=2)
    for table, (columns, ddl) in TABLES.items():
        wh.execute(f"CREATE TABLE {table} {columns} {ddl}")
        if rows_of(table):
            wh.execute(f"INSERT INTO {table} VALUES {values(rows_of(table))}")
    wh.execute("SET enable_result_cache_for_session TO off")
    yield wh
    wh.close()


@pytest.fixture(scope="module")
def reference():
    db = duckdb.connect()
    for table, (columns, _) in TABLES.items():
        db.execute(f"CREATE TABLE {table} {columns}")
        if rows_of(table):
            db.execute(f"INSERT INTO {table} VALUES {values(rows_of(table))}")
    yield db
    db.close()


def report(wh, query_id=None):
    """SVL_QUERY_REPORT rows of a query (the last one by default)."""
    query_id = wh.query_id if query_id is None else query_id
    return wh.execute(f"SELECT slice, segment, step, rows, label, rows_pre_filter, blocks_read "
                      f"FROM svl_query_report WHERE query = {query_id} ORDER BY segment, slice, step").rows


#: Queries aimed at the split: NULL group keys, avg, HAVING, ORDER BY + LIMIT, joins with an ALL
#: table and collocated KEY tables, empty tables and slices, windows over merged groups.
QUERIES = [
    "SELECT k, count(*), sum(v), avg(v), min(name), max(day) FROM sales GROUP BY k ORDER BY k NULLS FIRST",
    "SELECT name, count(*), avg(v), count(k) FROM sales GROUP BY name ORDER BY 1 NULLS FIRST",
    "SELECT v % 3 AS r, count(DISTINCT k), count(*) FROM sales GROUP BY r HAVING count(*) > 10 ORDER BY r",
    "SELECT avg(v), sum(v), count(*), min(day) FROM even_t WHERE v > 50",
    "SELECT name, sum(v) FROM even_t GROUP BY name HAVING sum(v) > 1000 ORDER BY sum(v) DESC, name LIMIT 3",
    "SELECT s.id, s.v FROM sales s WHERE s.v > 10 ORDER BY s.v DESC, s.id LIMIT 7 OFFSET 2",
    "SELECT d.label, count(*), avg(s.v) FROM sales s JOIN dim d ON s.k = d.k GROUP BY d.label ORDER BY 1",
    "SELECT d.label, count(*) FROM even_t e LEFT JOIN dim d ON e.v = d.k GROUP BY 1 ORDER BY 1 NULLS FIRST",
    "SELECT s.k, count(*), sum(o.w) FROM sales s JOIN other o ON s.k = o.k GROUP BY s.k ORDER BY 1",
    "SELECT count(*), sum(o.w), count(o.k) FROM sales s LEFT JOIN other o ON s.k = o.k WHERE s.v < 40",
    "SELECT count(*), sum(v), min(v), avg(v) FROM empty_t",
    "SELECT k, count(*), sum(v) FROM few GROUP BY k ORDER BY 1",
    "SELECT name, rank() OVER (ORDER BY sum(v) DESC) FROM even_t GROUP BY name ORDER BY 2, 1 NULLS FIRST",
    "SELECT DISTINCT name FROM even_t ORDER BY name NULLS FIRST",
    "SELECT median(v), count(DISTINCT name), listagg(name, ',') WITHIN GROUP (ORDER BY name) "
    "FROM sales GROUP BY k ORDER BY k NULLS FIRST",
    "SELECT * FROM sales WHERE v = 7 ORDER BY id",
    "SELECT id, v FROM sales ORDER BY row_number() OVER (ORDER BY v DESC, id), id LIMIT 5",
    "SELECT avg(DISTINCT k), count(DISTINCT k), sum(DISTINCT k) FROM sales WHERE name IS NOT NULL",
]


@pytest.mark.parametrize("query", QUERIES)
def test_same_results_as_one_duckdb(warehouse, reference, query):
    """Each query runs per slice (SVL_QUERY_REPORT has its steps) and answers as one DuckDB does."""
    result = warehouse.execute(query)
    assert {r[0] for r in report(warehouse)} == set(range(warehouse.slices)) | {mpp.LEADER_SLICE}
    want = reference.execute(sqlglot.transpile(query, read="redshift", write="duckdb")[0]).fetchall()
    if "ORDER BY" in query:
        assert result.rows == want
    else:
        assert sorted(result.rows, key=repr) == sorted(want, key=repr)
    mpp.ENABLED = False
    try:
        gathered = warehouse.execute(query)
    finally:
        mpp.ENABLED = True
    assert report(warehouse) == []                           # that one ran gathered
    assert result.columns == gathered.columns               # the same names and types either way


def test_each_slice_step_scans_its_own_rows(warehouse):
    """A full scan: each slice step reads exactly its slice's rows, and the leader merges."""
    total = warehouse.execute("SELECT count(v), sum(v) FROM sales").rows[0]
    query_id = warehouse.query_id
    assert sum(s.rows for s in warehouse.last_query_stats) == 2000
    steps = report(warehouse)
    per_slice = dict(warehouse.execute("SELECT slice, rows FROM stv_tbl_perm WHERE name = 'sales'").rows)
    scans = {s: (rows, pre) for s, seg, step, rows, label, pre, blocks in steps if label.startswith("scan   tbl")
             and label.endswith("name=public.sales")}
    assert scans == {s: (n, n) for s, n in per_slice.items()}
    assert sum(r for r, _ in scans.values()) == 2000 == total[0]
    returns = [r for r in steps if r[4] == "return"]
    assert [r[0] for r in returns] == [*range(warehouse.slices), mpp.LEADER_SLICE]
    assert all(r[3] == 1 for r in returns)          # one partial row per slice, one answer row
    assert any(r[4] == "aggr" and r[0] == mpp.LEADER_SLICE for r in steps)
    stl = warehouse.execute(f"SELECT slice, rows, blocks_read FROM stl_scan WHERE query = {query_id} "
                            "ORDER BY slice").rows
    assert [(s, n) for s, n, _ in stl] == sorted(per_slice.items())
    summary = warehouse.execute(f"SELECT seg, rows, rows_pre_filter FROM svl_query_summary "
                                f"WHERE query = {query_id} AND label LIKE '%name=public.sales'").rows
    assert summary == [(0, 2000, 2000)]


def test_the_slices_run_in_parallel_threads(warehouse, monkeypatch):
    """One thread per slice step, each on a DuckDB cursor of its own; MAX_WORKERS=1 answers the same."""
    seen = set()
    real = mpp._run_step

    def spy(step, query):
        seen.add(threading.current_thread().name)
        real(step, query)
    monkeypatch.setattr(mpp, "_run_step", spy)
    query = "SELECT name, count(*), avg(v) FROM even_t GROUP BY name ORDER BY 1"
    answer = warehouse.execute(query).rows
    assert len(seen) >= 2 and all(n.startswith("redshift-q") for n in seen)
    monkeypatch.setattr(mpp, "MAX_WORKERS", 1)
    seen.clear()
    assert warehouse.execute(query).rows == answer
    assert len(seen) == 1


FALLBACKS = {
    "SELECT count(*) FROM sales WHERE k IN (SELECT k FROM other)": "a subquery",
    "WITH t AS (SELECT k FROM sales) SELECT count(*) FROM t": "a WITH clause",
    "SELECT k FROM sales UNION SELECT k FROM other": "a set operation",
    "SELECT count(*) FROM sales s JOIN even_t e ON s.id = e.id": "needs rows moved between slices",
    "SELECT count(*) FROM sales s JOIN other o ON s.v = o.k": "needs rows moved between slices",
    "SELECT count(*) FROM sales s RIGHT JOIN dim d ON s.k = d.k": "RIGHT",
    "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY v) FROM sales": "cannot be merged",
    "SELECT count(DISTINCT name) FROM sales": "DISTINCT values of a column other than the DISTKEY",
    "SELECT count(*) FROM dim": "DISTSTYLE ALL",
    "SELECT count(*) FROM stl_query": "not a distributed table",
}


@pytest.mark.parametrize("query", sorted(FALLBACKS))
def test_what_runs_gathered(warehouse, reference, query):
    """Queries the slices cannot answer alone run gathered, with the right answer; EXPLAIN says why."""
    with warehouse.cursor() as cursor:
        with pytest.raises(mpp.Gathered, match=FALLBACKS[query]):
            mpp.split(sqlglot.parse_one(query, read="redshift"),
                      lambda schema, name: warehouse.storage.lookup(cursor, schema, name))
    rows = warehouse.execute(query).rows
    assert report(warehouse) == []
    if "stl_query" not in query:
        want = reference.execute(sqlglot.transpile(query, read="redshift", write="duckdb")[0]).fetchall()
        assert sorted(rows, key=repr) == sorted(want, key=repr)
    plan = [r[0] for r in warehouse.execute("EXPLAIN " + query).rows]
    assert plan[-1].startswith("----- localaws: runs gathered") or "set operation" in plan[0]


def test_parameters_and_transaction_blocks_run_gathered(warehouse):
    """``$1`` parameters run gathered; so does a block, which must see its own uncommitted rows."""
    assert warehouse.execute("SELECT count(*) FROM sales WHERE v > $1", [50]).rows == \
        [(sum(1 for r in rows_of("sales") if r[2] > 50),)]
    assert report(warehouse) == []
    with warehouse.session() as session:
        session.execute("BEGIN")
        session.execute("INSERT INTO few VALUES (7, 70)")
        assert session.execute("SELECT count(*), sum(v) FROM few").rows == [(3, 100)]       # its own row
        assert warehouse.execute("SELECT count(*), sum(v) FROM few").rows == [(2, 30)]      # others: not yet
        assert report(warehouse) != []                                                        # (per slice)
        session.execute("ROLLBACK")


def test_explain_shows_partial_and_final_aggregates(warehouse):
    plan = "\n".join(r[0] for r in warehouse.execute(
        "EXPLAIN SELECT name, count(*) FROM even_t GROUP BY name ORDER BY 1").rows)
    assert plan.index("Final: the leader merges") < plan.index("Send to leader") < plan.index("Partial: each slice")
    assert plan.startswith("XN Sort") and plan.endswith("the leader merges their results (mpp.py) -----")
    scalar = "\n".join(r[0] for r in warehouse.execute("EXPLAIN SELECT count(*) FROM sales").rows)
    assert scalar.startswith("XN Aggregate") and "XN HashAggregate" not in scalar
    whole = "\n".join(r[0] for r in warehouse.execute("EXPLAIN SELECT k, median(v) FROM sales GROUP BY k").rows)
    assert "Final on each slice: the GROUP BY has the DISTKEY" in whole and "Partial" not in whole


@pytest.fixture(scope="module")
def slow(warehouse):
    """A join every slice step needs seconds for: no equality, so a nested loop over 50k x 50k rows."""
    warehouse.execute("CREATE TABLE big (id INTEGER, v INTEGER) DISTSTYLE EVEN")
    warehouse.execute("INSERT INTO big SELECT i, i % 1000 FROM range(200000) t(i)")
    warehouse.execute("CREATE TABLE wide (x INTEGER) DISTSTYLE ALL")
    warehouse.execute("INSERT INTO wide SELECT i FROM range(50000) t(i)")
    return "SELECT count(*) FROM big b JOIN wide w ON (b.v + w.x) % 7 = 3"


def slice_threads():
    return [t for t in threading.enumerate() if t.name.startswith("redshift-q")]


def test_cancel_stops_every_slice_step(warehouse, slow):
    canceller = threading.Timer(0.5, warehouse.cancel)
    canceller.start()
    started = time.monotonic()
    with pytest.raises(SQLError) as cancelled:
        warehouse.execute(slow)
    canceller.join()
    assert cancelled.value.code == "57014"
    assert time.monotonic() - started < 10
    assert slice_threads() == []
    assert warehouse.execute(f"SELECT aborted FROM stl_query WHERE query = {warehouse.query_id}").rows == [(1,)]
    assert warehouse.execute("SELECT count(*) FROM few").rows == [(2,)]     # the warehouse goes on


def test_an_error_in_a_slice_step_is_the_gathered_error(warehouse, slow):
    """A slice step that fails fails the query with the same SQLError, and the other steps stop."""
    query = "SELECT sum(CAST('x' || (v - v) AS INTEGER)) FROM sales"      # 'x0' on every slice
    with pytest.raises(SQLError) as split:
        warehouse.execute(query)
    assert slice_threads() == []
    mpp.ENABLED = False
    try:
        with pytest.raises(SQLError) as gathered:
            warehouse.execute(query)
    finally:
        mpp.ENABLED = True
    assert (split.value.code, str(split.value)) == (gathered.value.code, str(gathered.value)) \
        and split.value.code == "22P02"
    # One slice fails at once while the others are deep in a long join: they are stopped, not waited for.
    started = time.monotonic()
    with pytest.raises(SQLError) as failed:
        warehouse.execute("SELECT count(*) FROM big b JOIN wide w ON (b.v + w.x) % 7 = 3 "
                          "WHERE CASE WHEN b.id = 5 THEN CAST('x' || b.id AS INTEGER) ELSE 1 END = 1")
    assert failed.value.code == "22P02" and time.monotonic() - started < 10
    assert slice_threads() == []


# -- Spectrum: the workers aggregate their files ----------------------------------------------
def test_spectrum_workers_aggregate_their_files(stack, tmp_path):
    s3, glue = stack.client("s3"), stack.client("glue")
    bucket, db = f"agg-{uuid.uuid4().hex[:8]}", f"agg_{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    glue.create_database(DatabaseInput={"Name": db})
    glue.create_table(DatabaseName=db, TableInput={
        "Name": "trips", "TableType": "EXTERNAL_TABLE", "StorageDescriptor": {
            "Columns": [{"Name": "zone", "Type": "string"}, {"Name": "fare", "Type": "double"},
                        {"Name": "n", "Type": "int"}],
            "Location": f"s3://{bucket}/trips/",
            "SerdeInfo": {"SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"}}})
    rows = [(["A", "B", None][i // 7 % 3], float(i % 17), i) for i in range(3000)]    # every file: all zones
    for part in range(6):
        buffer = io.BytesIO()
        chunk = rows[part::6]
        pq.write_table(pa.table({"zone": [r[0] for r in chunk], "fare": [r[1] for r in chunk],
                                 "n": pa.array([r[2] for r in chunk], pa.int32())}), buffer)
        s3.put_object(Bucket=bucket, Key=f"trips/{part}.parquet", Body=buffer.getvalue())
    wh = Warehouse("lake", "dev", "admin", "pw", tmp_path, s3=lambda: stack.client("s3"),
                   glue=lambda region=None: stack.client("glue"))
    try:
        wh.execute(f"CREATE EXTERNAL SCHEMA lake FROM DATA CATALOG DATABASE '{db}' IAM_ROLE 'arn:aws:iam::1:role/x'")
        result = wh.execute("SELECT zone, count(*), sum(n), avg(fare), max(n) FROM lake.trips "
                            "WHERE n >= 30 GROUP BY zone ORDER BY zone NULLS FIRST")
        reference = duckdb.connect()
        reference.execute("CREATE TABLE trips (zone VARCHAR, fare DOUBLE, n INTEGER)")
        reference.executemany("INSERT INTO trips VALUES (?, ?, ?)", rows)
        want = reference.execute("SELECT zone, count(*), sum(n), avg(fare), max(n) FROM trips WHERE n >= 30 "
                                 "GROUP BY zone ORDER BY zone NULLS FIRST").fetchall()
        assert [r[:3] + (round(r[3], 9), r[4]) for r in result.rows] == \
            [r[:3] + (round(r[3], 9), r[4]) for r in want]
        assert [c.name for c in result.columns] == ["zone", "count", "sum", "avg", "max"]
        scanned, returned, files = wh.execute(
            "SELECT s3_scanned_rows, s3query_returned_rows, files FROM svl_s3query_summary "
            "ORDER BY query DESC LIMIT 1").rows[0]
        assert (scanned, files) == (3000, 6) and returned == 4 * 3        # 4 workers x 3 zones
        assert wh.execute("SELECT count(*) FROM lake.trips WHERE zone = 'Z'").rows == [(0,)]   # no group at all
        assert wh.execute("SELECT s3query_returned_rows FROM svl_s3query_summary ORDER BY query DESC LIMIT 1"
                          ).rows == [(4,)]                                # one partial count per worker
        plain = wh.execute("SELECT zone, n FROM lake.trips WHERE n < 10").rows     # no aggregate: rows return
        assert len(plain) == 10 and wh.execute(
            "SELECT s3query_returned_rows FROM svl_s3query_summary ORDER BY query DESC LIMIT 1").rows == [(10,)]
        assert not wh.execute("SELECT * FROM duckdb_tables() WHERE database_name = 'memory'").rows
    finally:
        wh.close()
