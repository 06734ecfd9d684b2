"""Redshift Spectrum over Glue tables in S3 (spectrum.py) and the result cache (cache.py).

The lake is built as Athena's tables are: Parquet and CSV objects in the
stack's S3, described by Glue tables created with boto3.
"""
from __future__ import annotations

import io
import uuid

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from localaws.redshift.engine import Warehouse
from localaws.redshift.errors import SQLError

ROLE = "arn:aws:iam::123456789012:role/Spectrum"
PARQUET = ("org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
           "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
           "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat")
TEXT = ("org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe", "org.apache.hadoop.mapred.TextInputFormat",
        "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat")
COLUMNS = [("id", "bigint"), ("carrier", "string"), ("delay", "double"), ("note", "string")]


def table_input(name, location, columns, serde, partition_keys=(), serde_params=None, params=None):
    library, input_format, output_format = serde
    return {"Name": name, "TableType": "EXTERNAL_TABLE", "Parameters": {"EXTERNAL": "TRUE", **(params or {})},
            "PartitionKeys": [{"Name": n, "Type": t} for n, t in partition_keys],
            "StorageDescriptor": {"Columns": [{"Name": n, "Type": t} for n, t in columns], "Location": location,
                                  "InputFormat": input_format, "OutputFormat": output_format,
                                  "SerdeInfo": {"SerializationLibrary": library,
                                                "Parameters": serde_params or {}}}}


def parquet_bytes(rows) -> bytes:
    buffer = io.BytesIO()
    table = pa.table({"id": [r[0] for r in rows], "carrier": [r[1] for r in rows],
                      "delay": [r[2] for r in rows], "note": [r[3] for r in rows]})
    pq.write_table(table, buffer)
    return buffer.getvalue()


def flight_rows(month: int, n: int = 500):
    return [(month * 10_000 + i, ["AA", "UA", "DL"][i % 3], float(i % 50), "x" * 40) for i in range(n)]


@pytest.fixture(scope="module")
def lake(stack):
    """A Glue database with: flights (Parquet, partitioned by month, 2 files each), flat (Parquet,
    4 files), carriers_csv (CSV text)."""
    s3, glue = stack.client("s3"), stack.client("glue")
    bucket, db = f"lake-{uuid.uuid4().hex[:8]}", f"lake_{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    glue.create_database(DatabaseInput={"Name": db})
    glue.create_table(DatabaseName=db, TableInput=table_input(
        "flights", f"s3://{bucket}/flights/", COLUMNS, PARQUET, partition_keys=[("month", "int")]))
    for month in (1, 2, 3):
        rows = flight_rows(month)
        for half in (0, 1):
            s3.put_object(Bucket=bucket, Key=f"flights/month={month}/part-{half}.parquet",
                          Body=parquet_bytes(rows[half::2]))
        glue.create_partition(DatabaseName=db, TableName="flights", PartitionInput={
            "Values": [str(month)], "StorageDescriptor": {
                "Columns": [{"Name": n, "Type": t} for n, t in COLUMNS],
                "Location": f"s3://{bucket}/flights/month={month}/", "InputFormat": PARQUET[1],
                "OutputFormat": PARQUET[2], "SerdeInfo": {"SerializationLibrary": PARQUET[0]}}})
    glue.create_table(DatabaseName=db, TableInput=table_input("flat", f"s3://{bucket}/flat", COLUMNS, PARQUET))
    for i in range(4):
        s3.put_object(Bucket=bucket, Key=f"flat/{i}.parquet", Body=parquet_bytes(flight_rows(i, 100)))
    s3.put_object(Bucket=bucket, Key="flat/_SUCCESS", Body=b"")
    glue.create_table(DatabaseName=db, TableInput=table_input(
        "carriers_csv", f"s3://{bucket}/carriers/", [("code", "string"), ("name", "string")], TEXT,
        serde_params={"field.delim": ","}, params={"skip.header.line.count": "1"}))
    s3.put_object(Bucket=bucket, Key="carriers/c.csv",
                  Body=b"code,name\nAA,American\nUA,United\nDL,Delta\n")
    return {"bucket": bucket, "db": db}


@pytest.fixture
def warehouse(stack, tmp_path, lake):
    w = Warehouse("spectrum", "dev", "admin", "pw", tmp_path, number_of_nodes=2,
                  s3=lambda: stack.client("s3"), glue=lambda region=None: stack.client("glue"))
    w.execute(f"CREATE EXTERNAL SCHEMA spectrum FROM DATA CATALOG DATABASE '{lake['db']}' IAM_ROLE '{ROLE}'")
    yield w
    w.close()


def summary(w, table):
    return w.execute(f"SELECT s3_scanned_rows, s3_scanned_bytes, s3query_returned_rows, files "
                     f"FROM svl_s3query_summary WHERE external_table_name = '{table}' "
                     f"ORDER BY query DESC LIMIT 1").rows[0]


# -- Spectrum ---------------------------------------------------------------------------
def test_external_scan_and_aggregate(warehouse):
    rows = warehouse.execute("SELECT carrier, count(*), sum(delay) FROM spectrum.flat "
                             "GROUP BY carrier ORDER BY carrier").rows
    expected = {}
    for i in range(4):
        for _, carrier, delay, _ in flight_rows(i, 100):
            n, total = expected.get(carrier, (0, 0.0))
            expected[carrier] = (n + 1, total + delay)
    assert rows == [(c, *expected[c]) for c in sorted(expected)]
    scanned_rows, scanned_bytes, returned, files = summary(warehouse, "spectrum.flat")
    assert (scanned_rows, files) == (400, 4)                        # _SUCCESS is skipped
    assert returned == 4 * 3          # aggregation pushed down: each worker sent its 3 carriers' partial groups
    assert scanned_bytes > 0
    workers = warehouse.execute("SELECT count(*), sum(files) FROM svl_s3query "
                                "WHERE external_table_name = 'spectrum.flat'").rows[0]
    assert workers == (4, 4)                                       # one file per worker


def test_projection_reads_fewer_bytes_from_parquet(warehouse):
    warehouse.execute("SELECT * FROM spectrum.flat")
    everything = summary(warehouse, "spectrum.flat")[1]
    warehouse.execute("SELECT sum(id) FROM spectrum.flat")
    one_column = summary(warehouse, "spectrum.flat")[1]
    assert 0 < one_column < everything


def test_filter_pushdown_and_partition_pruning(warehouse):
    rows = warehouse.execute("SELECT count(*) FROM spectrum.flights WHERE month = 2 AND carrier = 'UA'").rows
    assert rows == [(sum(1 for r in flight_rows(2) if r[1] == "UA"),)]
    scanned_rows, scanned_bytes, returned, files = summary(warehouse, "spectrum.flights")
    assert (scanned_rows, files) == (500, 2)                       # one month of three: 2 of 6 files
    assert returned == 2                                           # a partial count from each of 2 workers
    ids = warehouse.execute("SELECT id FROM spectrum.flights WHERE month = 2 AND carrier = 'UA'").rows
    assert summary(warehouse, "spectrum.flights")[2] == len(ids) == rows[0][0]   # the filter ran in the workers
    assert warehouse.execute("SELECT total_partitions, qualified_partitions FROM svl_s3partition_summary "
                             "ORDER BY query DESC LIMIT 1").rows == [(3, 1)]
    assert warehouse.execute("SELECT month, count(*) FROM spectrum.flights GROUP BY month ORDER BY 1").rows \
        == [(1, 500), (2, 500), (3, 500)]


def test_join_with_local_table_and_csv(warehouse):
    warehouse.execute("CREATE TABLE goals (carrier VARCHAR(2), target DOUBLE) DISTSTYLE ALL")
    warehouse.execute("INSERT INTO goals VALUES ('AA', 10), ('UA', 20)")
    rows = warehouse.execute(
        "SELECT c.name, g.target, count(*) FROM spectrum.flights f JOIN goals g ON f.carrier = g.carrier "
        "JOIN spectrum.carriers_csv c ON c.code = f.carrier WHERE f.delay < g.target AND f.month = 1 "
        "GROUP BY 1, 2 ORDER BY 1").rows
    expect = lambda code, target: sum(1 for r in flight_rows(1) if r[1] == code and r[2] < target)  # noqa: E731
    assert rows == [("American", 10.0, expect("AA", 10)), ("United", 20.0, expect("UA", 20))]
    # A local table loaded from the lake: INSERT ... SELECT and CREATE TABLE AS.
    warehouse.execute("CREATE TABLE local_flat AS SELECT id, carrier FROM spectrum.flat WHERE carrier = 'DL'")
    assert warehouse.execute("SELECT count(*) FROM local_flat").rows[0][0] == \
        sum(1 for i in range(4) for r in flight_rows(i, 100) if r[1] == "DL")
    assert not warehouse.execute("SELECT * FROM duckdb_tables() WHERE database_name = 'memory'").rows


def test_external_schema_errors_and_views(warehouse, lake):
    with pytest.raises(SQLError, match="does not exist in the Data Catalog"):
        warehouse.execute(f"CREATE EXTERNAL SCHEMA nope FROM DATA CATALOG DATABASE 'missing_{lake['db']}' "
                          f"IAM_ROLE '{ROLE}'")
    with pytest.raises(SQLError) as missing:
        warehouse.execute("SELECT * FROM spectrum.no_such_table")
    assert missing.value.code == "42P01"
    with pytest.raises(SQLError, match="already exists"):
        warehouse.execute(f"CREATE EXTERNAL SCHEMA spectrum FROM DATA CATALOG DATABASE '{lake['db']}' "
                          f"IAM_ROLE '{ROLE}'")
    warehouse.execute(f"CREATE EXTERNAL SCHEMA IF NOT EXISTS spectrum FROM DATA CATALOG DATABASE "
                      f"'{lake['db']}' IAM_ROLE '{ROLE}'")
    assert warehouse.execute("SELECT schemaname, databasename FROM svv_external_schemas").rows == \
        [("spectrum", lake["db"])]
    warehouse.execute("DROP SCHEMA spectrum")
    with pytest.raises(SQLError):
        warehouse.execute("SELECT * FROM spectrum.flat")


def test_create_external_database_if_not_exists(stack, warehouse):
    name = f"made_{uuid.uuid4().hex[:8]}"
    warehouse.execute(f"CREATE EXTERNAL SCHEMA made FROM DATA CATALOG DATABASE '{name}' IAM_ROLE '{ROLE}' "
                      "REGION 'us-east-1' CREATE EXTERNAL DATABASE IF NOT EXISTS")
    assert stack.client("glue").get_database(Name=name)["Database"]["Name"] == name
    warehouse.execute("DROP SCHEMA made DROP EXTERNAL DATABASE")
    with pytest.raises(stack.client("glue").exceptions.EntityNotFoundException):
        stack.client("glue").get_database(Name=name)


# -- the result cache ----------------------------------------------------------------------
def test_result_cache_hit_and_invalidation(warehouse):
    w = warehouse
    w.execute("CREATE TABLE t (id INT, v INT) DISTKEY(id)")
    w.execute("INSERT INTO t VALUES (1, 10), (2, 20)")
    query = "SELECT sum(v) FROM t"
    assert w.execute(query).rows == [(30,)]
    first = w.query_id
    assert w.execute(query).rows == [(30,)]
    hit = w.query_id
    assert w.last_query_stats == []                                # nothing read on a hit
    rows = dict(w.execute(f"SELECT query, source_query FROM svl_qlog WHERE query IN ({first}, {hit})").rows)
    assert rows == {first: None, hit: first}
    assert w.execute(f"SELECT result_cache_hit FROM sys_query_history WHERE query_id = {hit}").rows == [(True,)]
    w.execute("UPDATE t SET v = 11 WHERE id = 1")                  # a write to t invalidates
    assert w.execute(query).rows == [(31,)]
    w.execute("CREATE TABLE other (x INT)")
    w.execute("INSERT INTO other VALUES (1)")                      # a write elsewhere does not
    assert w.execute(query).rows == [(31,)]
    assert w.execute(f"SELECT source_query FROM svl_qlog WHERE query = {w.query_id}").rows[0][0] is not None
    w.execute("SET enable_result_cache_for_session TO off")
    w.execute(query)
    assert w.execute(f"SELECT source_query FROM svl_qlog WHERE query = {w.query_id}").rows == [(None,)]
    w.execute("SET enable_result_cache_for_session TO on")


def test_result_cache_skips_volatile_and_external(warehouse):
    w = warehouse
    w.execute("CREATE TABLE t2 (id INT)")
    w.execute("INSERT INTO t2 VALUES (1)")
    for query in ("SELECT count(*), getdate() FROM t2", "SELECT count(*) FROM spectrum.flat"):
        w.execute(query)
        w.execute(query)
        assert w.execute(f"SELECT source_query FROM svl_qlog WHERE query = {w.query_id}").rows == [(None,)]
    w.execute("SELECT count(*) FROM t2 WHERE id = $1", [1])
    w.execute("SELECT count(*) FROM t2 WHERE id = $1", [2])        # other parameters: another entry
    assert w.execute(f"SELECT source_query FROM svl_qlog WHERE query = {w.query_id}").rows == [(None,)]


# -- through a cluster: redshift_connector and the Data API -----------------------------------
def test_spectrum_on_a_cluster(stack, lake, redshift, data, clusters, statements, unique):
    with clusters.running(redshift, unique("spectrum"), ClusterType="single-node") as cluster:
        conn = clusters.connect(redshift, cluster, autocommit=True)
        cur = conn.cursor()
        cur.execute(f"CREATE EXTERNAL SCHEMA lake FROM DATA CATALOG DATABASE '{lake['db']}' IAM_ROLE '{ROLE}'")
        cur.execute("SELECT count(*) FROM lake.flights WHERE month IN (1, 3)")
        assert cur.fetchall()[0][0] == 1000
        cur.execute("SELECT s3_scanned_bytes, files FROM svl_s3query_summary ORDER BY query DESC LIMIT 1")
        scanned, files = cur.fetchall()[0]
        assert scanned > 0 and files == 4
        conn.close()
        records = statements.records(data, cluster, "SELECT carrier, count(*) FROM lake.flat GROUP BY 1 ORDER BY 1",
                                     timeout=30)
        assert [r[0]["stringValue"] for r in records] == ["AA", "DL", "UA"]
