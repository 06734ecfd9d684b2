"""Blueprint-like ingestion (LF-2, LF-4, LF-5): SQLite, the Redshift endpoint (PostgreSQL protocol) and
DynamoDB into partitioned Parquet with Data Catalog tables, full then incremental, counted through Athena."""
from __future__ import annotations

import sqlite3
from decimal import Decimal

import psycopg
import pytest

from localaws.athena import run_query
from localaws.lakeformation.blueprints import (BlueprintError, DynamoDBSource, PostgresSource, SQLiteSource,
                                               run_database_blueprint)


class Lake:
    def __init__(self, stack, unique):
        self.s3, self.glue, self.athena = stack.client("s3"), stack.client("glue"), stack.client("athena")
        self.bucket, self.db = unique("lake"), unique("raw").replace("-", "_")
        self.s3.create_bucket(Bucket=self.bucket)
        self.glue.create_database(DatabaseInput={"Name": self.db})
        self.target = f"s3://{self.bucket}/raw/"

    def run(self, source, path, **kwargs):
        return run_database_blueprint(source, path, s3=self.s3, glue=self.glue, target_database=self.db,
                                      target_path=self.target, **kwargs)

    def query(self, sql):
        frame, _ = run_query(self.athena, sql, database=self.db, output=f"s3://{self.bucket}/athena-results/")
        return frame

    def count(self, table) -> int:
        return int(self.query(f"SELECT count(*) AS n FROM {table}").n[0])

    def keys(self, prefix="raw/"):
        listed = self.s3.list_objects_v2(Bucket=self.bucket, Prefix=prefix)
        return sorted(o["Key"] for o in listed.get("Contents", []))

    def partitions(self, table):
        parts = self.glue.get_partitions(DatabaseName=self.db, TableName=table)["Partitions"]
        return sorted(tuple(p["Values"]) for p in parts)


@pytest.fixture
def lake(stack, unique):
    return Lake(stack, unique)


@pytest.fixture
def shop(tmp_path):
    path = tmp_path / "shop.db"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, customer TEXT, amount REAL, order_date TEXT)")
    con.execute("CREATE TABLE customers (customer TEXT PRIMARY KEY, city TEXT)")
    con.executemany("INSERT INTO orders VALUES (?, ?, ?, ?)",
                    [(i, f"c{i % 4}", i * 1.5, f"2026-11-0{1 + i % 3}") for i in range(1, 31)])
    con.executemany("INSERT INTO customers VALUES (?, ?)", [(f"c{i}", f"city{i}") for i in range(4)])
    con.commit()
    yield path, con
    con.close()


def test_sqlite_full_then_incremental(lake, shop):
    path, con = shop
    with SQLiteSource(path) as source:
        first = lake.run(source, "main/%", partition_keys={"orders": ["order_date"]})
    assert {t.table for t in first.tables} == {"orders", "customers"}
    assert first["orders"].rows_read == 30 and first["customers"].rows_read == 4
    assert lake.count("orders") == 30 and lake.count("customers") == 4
    assert lake.partitions("orders") == [("2026-11-01",), ("2026-11-02",), ("2026-11-03",)]
    assert all("/order_date=" in f and f.endswith(".parquet") for f in first["orders"].files)
    assert first["orders"].bookmark["last"] == [30]

    con.executemany("INSERT INTO orders VALUES (?, ?, ?, ?)",
                    [(i, "c9", 1.0, "2026-11-04") for i in range(31, 36)])
    con.execute("UPDATE orders SET amount = 999 WHERE id = 1")        # an update: not seen incrementally
    con.execute("DELETE FROM orders WHERE id = 2")                    # a delete: never reaches the lake
    con.commit()
    with SQLiteSource(path) as source:
        second = lake.run(source, "main/%", partition_keys={"orders": ["order_date"]})
    assert second["orders"].rows_read == 5 and second["orders"].rows_scanned == 5
    assert second["orders"].partitions_added == [["2026-11-04"]]
    assert second["customers"].rows_read == 0 and second["customers"].files == []
    assert lake.count("orders") == 35
    assert lake.query("SELECT amount FROM orders WHERE id = 1").amount[0] == 1.5
    table = lake.glue.get_table(DatabaseName=lake.db, Name="orders")["Table"]
    assert '"last": [35]' in table["Parameters"]["blueprint_bookmark"]

    with SQLiteSource(path) as source:
        third = lake.run(source, "main/orders", partition_keys={"orders": ["order_date"]})
    assert third["orders"].rows_read == 0 and lake.count("orders") == 35


def test_sqlite_snapshot_replaces_the_copy(lake, shop):
    path, con = shop
    with SQLiteSource(path) as source:
        first = lake.run(source, "main/%", blueprint="DATABASE_SNAPSHOT", exclude_patterns=("main/customers",),
                         table_prefix="snap_")
    assert [t.table for t in first.tables] == ["snap_orders"] and lake.count("snap_orders") == 30
    con.execute("DELETE FROM orders WHERE id > 20")
    con.execute("UPDATE orders SET amount = 999 WHERE id = 1")
    con.commit()
    with SQLiteSource(path) as source:
        second = lake.run(source, "main/orders", blueprint="DATABASE_SNAPSHOT", table_prefix="snap_")
    assert lake.count("snap_orders") == 20
    assert lake.query("SELECT amount FROM snap_orders WHERE id = 1").amount[0] == 999
    assert lake.keys("raw/snap_orders/") == [f.split(f"{lake.bucket}/")[1] for f in second["snap_orders"].files]


def test_redshift_endpoint_over_postgresql_protocol(lake, redshift, cluster, clusters):
    endpoint = redshift.describe_clusters(ClusterIdentifier=cluster)["Clusters"][0]["Endpoint"]
    conn = psycopg.connect(host=endpoint["Address"], port=endpoint["Port"], dbname="dev", user=clusters.user,
                           password=clusters.password, autocommit=True)
    cur = conn.cursor()
    cur.execute("CREATE SCHEMA shop")
    cur.execute("CREATE TABLE shop.sales (id INT, amount DECIMAL(10,2), sold_at TIMESTAMP, region VARCHAR(10))")
    cur.execute("INSERT INTO shop.sales VALUES " + ", ".join(
        f"({i}, {i}.25, '2026-11-0{1 + i % 2} 10:00:00', '{['eu', 'us'][i % 2]}')" for i in range(1, 21)))

    def load():
        with PostgresSource(endpoint["Address"], endpoint["Port"], "dev", clusters.user, clusters.password) as src:
            return lake.run(src, "dev/shop/%", bookmark_keys={"sales": ["id"]}, partition_keys={"sales": ["region"]})

    try:
        first = load()
        assert [t.source for t in first.tables] == ["dev/shop/sales"] and first["sales"].rows_read == 20
        assert lake.partitions("sales") == [("eu",), ("us",)]
        cur.execute("INSERT INTO shop.sales VALUES (21, 1.00, '2026-11-05 09:00:00', 'ap'), "
                    "(22, 2.00, '2026-11-05 09:30:00', 'eu')")
        second = load()
        assert second["sales"].rows_read == 2 and second["sales"].partitions_added == [["ap"]]
        cur.execute("SELECT count(*), sum(amount) FROM shop.sales")
        n, total = cur.fetchone()
        lake_total = lake.query("SELECT count(*) AS n, sum(amount) AS total FROM sales")
        assert int(lake_total.n[0]) == n == 22
        assert Decimal(str(lake_total.total[0])) == total
        types = {c["Name"]: c["Type"] for c in
                 lake.glue.get_table(DatabaseName=lake.db, Name="sales")["Table"]["StorageDescriptor"]["Columns"]}
        assert types == {"id": "bigint", "amount": "decimal(38,2)", "sold_at": "timestamp"}
    finally:
        conn.close()


def test_dynamodb_scan_full_then_incremental(lake, stack, unique):
    dynamodb = stack.client("dynamodb")
    name = unique("orders")
    dynamodb.create_table(TableName=name, KeySchema=[{"AttributeName": "order_id", "KeyType": "HASH"}],
                          AttributeDefinitions=[{"AttributeName": "order_id", "AttributeType": "N"}],
                          BillingMode="PAY_PER_REQUEST")

    def put(i):
        dynamodb.put_item(TableName=name, Item={
            "order_id": {"N": str(i)}, "status": {"S": ["new", "paid"][i % 2]}, "total": {"N": f"{i}.5"},
            "tags": {"SS": ["a", f"t{i}"]}, "address": {"M": {"city": {"S": "x"}}}})

    for i in range(1, 21):
        put(i)
    table = name.replace("-", "_")
    first = lake.run(DynamoDBSource(dynamodb), name, partition_keys={name: ["status"]})
    assert first[table].rows_read == 20 and lake.count(table) == 20
    assert lake.partitions(table) == [("new",), ("paid",)]
    for i in range(21, 26):
        put(i)
    second = lake.run(DynamoDBSource(dynamodb), name, partition_keys={name: ["status"]})
    assert second[table].rows_read == 5
    assert second[table].rows_scanned == 25        # a Scan reads every item; the filter drops the old ones
    assert lake.count(table) == 25
    row = lake.query(f"SELECT total, tags, address FROM {table} WHERE order_id = 21")
    assert row.total[0] == 21.5 and row.tags[0] == '["a", "t21"]' and row.address[0] == '{"city": "x"}'
    dynamodb.delete_table(TableName=name)


# -- bad input: a clear error, and nothing written
@pytest.mark.parametrize("path, kwargs, message", [
    ("main/nope", {}, "no table matches"),
    ("Main/%", {}, "case sensitive"),
    ("main/shop/orders", {}, "form <database>/<table>"),
    ("main/orders", {"bookmark_keys": {"orders": ["updated_at"]}}, "no column 'updated_at'"),
    ("main/orders", {"partition_keys": {"orders": ["day"]}}, "no column 'day'"),
    ("main/orders", {"bookmark_keys": {"other": ["id"]}}, "does not include"),
    ("main/orders", {"blueprint": "LOG_FILE"}, "blueprint must be one of"),
    ("main/orders", {"bookmark_order": "up"}, "ASCENDING or DESCENDING"),
    ("main/orders", {"data_format": "orc"}, "use parquet"),
    ("main/orders", {"exclude_patterns": ("main/customers",)}, "DATABASE_SNAPSHOT"),
])
def test_bad_input_fails_before_writing(lake, shop, path, kwargs, message):
    with SQLiteSource(shop[0]) as source, pytest.raises(BlueprintError, match=message):
        lake.run(source, path, **kwargs)
    assert lake.keys() == [] and lake.glue.get_tables(DatabaseName=lake.db)["TableList"] == []


def test_table_without_primary_key_needs_bookmark_keys(lake, tmp_path):
    path = tmp_path / "events.db"
    with sqlite3.connect(path) as con:
        con.execute("CREATE TABLE events (seq INTEGER, what TEXT)")
        con.execute("INSERT INTO events VALUES (1, 'a')")
    with SQLiteSource(path) as source:
        with pytest.raises(BlueprintError, match="no primary key: give its bookmark_keys"):
            lake.run(source, "main/events")
        assert lake.run(source, "main/events", bookmark_keys={"events": ["seq"]})["events"].rows_read == 1


def test_unknown_source_missing_database_and_bucket(lake, shop, stack):
    with pytest.raises(BlueprintError, match="unknown source"):
        run_database_blueprint("sqlite:///shop.db", "main/%", s3=lake.s3, glue=lake.glue,
                               target_database=lake.db, target_path=lake.target)
    with SQLiteSource(shop[0]) as source:
        with pytest.raises(BlueprintError, match="does not exist in the Data Catalog"):
            run_database_blueprint(source, "main/%", s3=lake.s3, glue=lake.glue, target_database="no_such_db",
                                   target_path=lake.target)
        with pytest.raises(BlueprintError, match="cannot be written"):
            run_database_blueprint(source, "main/%", s3=lake.s3, glue=lake.glue, target_database=lake.db,
                                   target_path=f"s3://{lake.bucket}-missing/raw/")
    assert lake.keys() == []


def test_a_failed_catalog_write_removes_the_files_it_wrote(lake, shop):
    class FailingGlue:
        """The stack's Glue client, except that registering partitions fails."""
        def __init__(self, glue):
            self._glue = glue

        def __getattr__(self, name):
            return getattr(self._glue, name)

        def batch_create_partition(self, **kwargs):
            raise RuntimeError("the catalog is unavailable")

    with SQLiteSource(shop[0]) as source, pytest.raises(RuntimeError, match="unavailable"):
        run_database_blueprint(source, "main/orders", s3=lake.s3, glue=FailingGlue(lake.glue),
                               target_database=lake.db, target_path=lake.target,
                               partition_keys={"orders": ["order_date"]})
    assert lake.keys() == []
