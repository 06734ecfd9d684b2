"""Athena on Apache Iceberg tables: ACID changes, time travel, metadata tables, maintenance.

The table format is pyiceberg's, on the stack's Glue catalog; these tests
check what a learner sees through Athena's API: rows, snapshots, bytes
scanned, the Glue entry, and the errors (Athena's names, the table unchanged).
"""
import time
import uuid

import pytest

from localaws.athena import run_query
from localaws.core.iceberg import catalog

SUFFIX = uuid.uuid4().hex[:6]
LAKE, RESULTS, DB = f"ice-lake-{SUFFIX}", f"ice-results-{SUFFIX}", f"ice_{SUFFIX}"
OUT = f"s3://{RESULTS}/out/"
ORDERS = ("(1, 'ann', 10.0, TIMESTAMP '2024-01-01 10:00:00'), (2, 'bob', 20.0, TIMESTAMP '2024-01-01 11:00:00'), "
          "(3, 'cid', 30.0, TIMESTAMP '2024-01-02 09:00:00'), (4, 'dan', 40.0, TIMESTAMP '2024-01-03 10:00:00')")


@pytest.fixture(scope="module")
def athena(stack):
    s3 = stack.client("s3")
    for bucket in (LAKE, RESULTS):
        s3.create_bucket(Bucket=bucket)
    client = stack.client("athena")
    run_query(client, f"CREATE DATABASE {DB}", output=OUT)
    return client


def q(client, sql, check=True):
    return run_query(client, sql, database=DB, output=OUT, check=check)


def fails(client, sql) -> str:
    frame, stats = q(client, sql, check=False)
    assert stats["state"] == "FAILED", (sql, stats)
    return stats["reason"]


def rows(client, sql) -> list[tuple]:
    frame, _ = q(client, sql)
    return [tuple(r) for r in frame.itertuples(index=False)]


@pytest.fixture
def orders(athena, stack):
    """A fresh day-partitioned Iceberg table with four rows in two commits; dropped afterwards."""
    name = f"orders_{uuid.uuid4().hex[:6]}"
    q(athena, f"CREATE TABLE {name} (id bigint, customer string, amount double, ts timestamp) "
              f"PARTITIONED BY (day(ts)) LOCATION 's3://{LAKE}/{name}/' TBLPROPERTIES ('table_type'='ICEBERG')")
    q(athena, f"INSERT INTO {name} VALUES {ORDERS}")
    yield name
    q(athena, f"DROP TABLE IF EXISTS {name}")


def snapshots(client, name) -> list[tuple]:
    return rows(client, f'SELECT operation, snapshot_id FROM "{name}$snapshots" ORDER BY committed_at')


# --------------------------------------------------------------------------- the Glue entry
def test_create_registers_an_iceberg_table_in_glue_as_aws_does(athena, stack, orders):
    table = stack.client("glue").get_table(DatabaseName=DB, Name=orders)["Table"]
    assert table["Parameters"]["table_type"] == "ICEBERG"
    assert table["Parameters"]["metadata_location"].startswith(f"s3://{LAKE}/{orders}/metadata/")
    assert table["Parameters"]["metadata_location"].endswith(".metadata.json")
    assert [c["Name"] for c in table["StorageDescriptor"]["Columns"]] == ["id", "customer", "amount", "ts"]
    assert table.get("PartitionKeys", []) == []          # hidden partitioning: no partition columns


def test_pyiceberg_sees_what_athena_wrote_and_athena_sees_pyiceberg_commits(athena, stack, orders):
    import pyarrow as pa
    tbl = catalog(stack.context).load_table(f"{DB}.{orders}")
    assert tbl.scan().to_arrow().num_rows == 4
    assert str(tbl.spec().fields[0].transform) == "day"
    tbl.append(pa.table({"id": [5], "customer": ["eve"], "amount": [50.0],
                         "ts": pa.array([1704067200000000], pa.timestamp("us"))}))
    assert rows(athena, f"SELECT id, customer FROM {orders} WHERE id = 5") == [(5, "eve")]


# --------------------------------------------------------------------------- changes and snapshots
def test_update_delete_merge_each_commit_one_snapshot(athena, orders):
    q(athena, f"UPDATE {orders} SET amount = amount * 2 WHERE id = 2")
    q(athena, f"DELETE FROM {orders} WHERE customer = 'cid'")
    q(athena, f"MERGE INTO {orders} o USING (VALUES (1, 11.0), (9, 90.0)) AS f(id, amount) ON o.id = f.id "
              "WHEN MATCHED THEN UPDATE SET amount = f.amount "
              "WHEN NOT MATCHED THEN INSERT (id, customer, amount, ts) VALUES (f.id, 'new', f.amount, "
              "TIMESTAMP '2024-01-05 00:00:00')")
    assert rows(athena, f"SELECT id, amount FROM {orders} ORDER BY id") == [
        (1, 11.0), (2, 40.0), (4, 40.0), (9, 90.0)]
    assert [op for op, _ in snapshots(athena, orders)] == ["append", "overwrite", "delete", "overwrite"]


def test_update_count_is_the_rows_changed(athena, orders):
    _, stats = q(athena, f"UPDATE {orders} SET amount = 0 WHERE ts < TIMESTAMP '2024-01-02 00:00:00'")
    assert stats["rows_written"] == 2


def test_a_change_rewrites_only_the_files_its_condition_can_match(athena, orders):
    files = rows(athena, f'SELECT file_path FROM "{orders}$files" ORDER BY file_path')
    q(athena, f"DELETE FROM {orders} WHERE ts = TIMESTAMP '2024-01-03 10:00:00'")
    after = rows(athena, f'SELECT file_path FROM "{orders}$files" ORDER BY file_path')
    assert len(files) == 3 and len(after) == 2 and set(after) < set(files)   # one day's file dropped


def test_time_travel_by_version_and_by_timestamp(athena, orders):
    (_, first), = snapshots(athena, orders)
    (committed,), = rows(athena, f'SELECT CAST(committed_at AS varchar) FROM "{orders}$snapshots"')
    q(athena, f"DELETE FROM {orders} WHERE id = 1")
    assert rows(athena, f"SELECT count(*) FROM {orders}") == [(3,)]
    assert rows(athena, f"SELECT count(*) FROM {orders} FOR VERSION AS OF {first}") == [(4,)]
    assert rows(athena, f"SELECT count(*) FROM {orders} FOR TIMESTAMP AS OF "
                        f"CAST('{committed}' AS timestamp with time zone)") == [(4,)]


def test_metadata_tables(athena, orders):
    assert rows(athena, f'SELECT count(*) FROM "{orders}$history"') == [(1,)]
    assert rows(athena, f'SELECT sum(record_count), count(*) FROM "{orders}$files"') == [(4, 3)]
    parts = rows(athena, f'SELECT record_count, file_count FROM "{orders}$partitions" ORDER BY record_count')
    assert parts == [(1, 1), (1, 1), (2, 1)]
    assert rows(athena, f'SELECT name FROM "{orders}$refs"') == [("main",)]
    assert rows(athena, f'SELECT count(*) > 0 FROM "{orders}$manifests"') == [(True,)]


# --------------------------------------------------------------------------- reading: pruning is honest
def test_hidden_partitioning_prunes_files_and_bytes_scanned(athena, orders):
    _, whole = q(athena, f"SELECT * FROM {orders}")
    _, one_day = q(athena, f"SELECT * FROM {orders} WHERE ts >= TIMESTAMP '2024-01-03 00:00:00'")
    assert 0 < one_day["bytes_scanned"] < whole["bytes_scanned"] / 2


def test_metadata_is_not_counted_as_data_scanned(athena, orders):
    _, stats = q(athena, f'SELECT count(*) FROM "{orders}$snapshots"')
    assert stats["bytes_scanned"] == 0


# --------------------------------------------------------------------------- schema evolution
def test_schema_evolution_changes_metadata_only(athena, orders):
    files = rows(athena, f'SELECT file_path FROM "{orders}$files" ORDER BY file_path')
    q(athena, f"ALTER TABLE {orders} ADD COLUMNS (channel string)")
    q(athena, f"ALTER TABLE {orders} CHANGE COLUMN customer buyer string")
    q(athena, f"ALTER TABLE {orders} DROP COLUMN amount")
    frame, _ = q(athena, f"SELECT * FROM {orders} ORDER BY id")
    assert list(frame.columns) == ["id", "buyer", "ts", "channel"]
    assert frame["buyer"].tolist() == ["ann", "bob", "cid", "dan"] and frame["channel"].isna().all()
    assert rows(athena, f'SELECT file_path FROM "{orders}$files" ORDER BY file_path') == files


def test_type_promotion_is_allowed(athena, orders):
    name = f"promo_{uuid.uuid4().hex[:6]}"
    q(athena, f"CREATE TABLE {name} (n int) LOCATION 's3://{LAKE}/{name}/' TBLPROPERTIES ('table_type'='ICEBERG')")
    q(athena, f"INSERT INTO {name} VALUES (1)")
    q(athena, f"ALTER TABLE {name} CHANGE COLUMN n n bigint")
    frame, stats = q(athena, f"SELECT n FROM {name}")
    assert frame["n"].tolist() == [1]
    q(athena, f"DROP TABLE {name}")


# --------------------------------------------------------------------------- CTAS, OPTIMIZE, VACUUM, DROP
def test_ctas_to_iceberg_with_partitioning(athena, stack):
    name = f"ctas_{uuid.uuid4().hex[:6]}"
    _, stats = q(athena, f"CREATE TABLE {name} WITH (table_type = 'ICEBERG', location = 's3://{LAKE}/{name}/', "
                         "is_external = false, partitioning = ARRAY['bucket(id, 4)']) AS "
                         "SELECT * FROM (VALUES (1, 'a'), (2, 'b'), (3, 'c')) AS v(id, v)")
    assert stats["rows_written"] == 3
    assert rows(athena, f"SELECT v FROM {name} ORDER BY id") == [("a",), ("b",), ("c",)]
    tbl = catalog(stack.context).load_table(f"{DB}.{name}")
    assert str(tbl.spec().fields[0].transform) == "bucket[4]"
    q(athena, f"DROP TABLE {name}")


def test_optimize_compacts_small_files_and_keeps_the_rows(athena, orders):
    for i in range(4):
        q(athena, f"INSERT INTO {orders} VALUES ({10 + i}, 'x', 1.0, TIMESTAMP '2024-01-01 12:00:00')")
    before = rows(athena, f"SELECT * FROM {orders} ORDER BY id")
    (files_before,), = rows(athena, f'SELECT count(*) FROM "{orders}$files"')
    q(athena, f"OPTIMIZE {orders} REWRITE DATA USING BIN_PACK")
    (files_after,), = rows(athena, f'SELECT count(*) FROM "{orders}$files"')
    assert (files_before, files_after) == (7, 3)          # one file per day
    assert rows(athena, f"SELECT * FROM {orders} ORDER BY id") == before


def test_vacuum_expires_old_snapshots_and_deletes_their_files(athena, stack, orders):
    s3 = stack.client("s3")
    q(athena, f"DELETE FROM {orders} WHERE customer = 'cid'")
    (_, first), _ = snapshots(athena, orders)
    keys = lambda: {o["Key"] for o in s3.list_objects_v2(Bucket=LAKE, Prefix=f"{orders}/data/")["Contents"]}
    data_before = keys()
    # The stack clock may already be ahead of real time (other tests advance it): retention counts from it.
    age = int(stack.context.clock.time() - time.time()) + 3600
    q(athena, f"ALTER TABLE {orders} SET TBLPROPERTIES ('vacuum_max_snapshot_age_seconds'='{age}')")
    q(athena, f"VACUUM {orders}")           # nothing is older than the retention yet
    assert len(snapshots(athena, orders)) == 2
    stack.local.clock.advance(3601)
    q(athena, f"VACUUM {orders}")
    assert len(snapshots(athena, orders)) == 1
    assert len(keys()) == len(data_before) - 1            # the file that held cid's row is gone
    assert fails(athena, f"SELECT * FROM {orders} FOR VERSION AS OF {first}") == \
        f"INVALID_ARGUMENT: Iceberg snapshot ID does not exists: {first}"


def test_drop_table_deletes_the_data_too(athena, stack):
    name = f"gone_{uuid.uuid4().hex[:6]}"
    q(athena, f"CREATE TABLE {name} (n int) LOCATION 's3://{LAKE}/{name}/' TBLPROPERTIES ('table_type'='ICEBERG')")
    q(athena, f"INSERT INTO {name} VALUES (1)")
    q(athena, f"DROP TABLE {name}")
    assert stack.client("s3").list_objects_v2(Bucket=LAKE, Prefix=f"{name}/").get("KeyCount") == 0


# --------------------------------------------------------------------------- bad input: Athena's errors, nothing changed
def test_update_on_a_hive_table_is_refused(athena):
    q(athena, f"CREATE EXTERNAL TABLE hive_t (n int) STORED AS PARQUET LOCATION 's3://{LAKE}/hive_t/'")
    for sql in ("UPDATE hive_t SET n = 1", "DELETE FROM hive_t WHERE n = 1",
                "MERGE INTO hive_t h USING (VALUES (1)) AS s(n) ON h.n = s.n WHEN MATCHED THEN DELETE"):
        assert fails(athena, sql) == ("NOT_SUPPORTED: Modifying Hive table rows is only supported for "
                                      "transactional tables")


def test_time_travel_before_the_first_snapshot(athena, orders):
    reason = fails(athena, f"SELECT * FROM {orders} FOR TIMESTAMP AS OF TIMESTAMP '2001-01-01 00:00:00 UTC'")
    assert reason.startswith(f"INVALID_ARGUMENT: No version history table {DB}.{orders} at or before 2001-01-01")


def test_time_travel_to_an_unknown_snapshot(athena, orders):
    assert "Iceberg snapshot ID does not exists: 42" in fails(athena, f"SELECT * FROM {orders} FOR VERSION AS OF 42")


def test_a_conflicting_concurrent_commit_fails_and_changes_nothing(athena, stack, orders):
    stale = catalog(stack.context).load_table(f"{DB}.{orders}")     # writer A read the table...
    q(athena, f"DELETE FROM {orders} WHERE id = 2")                   # ...writer B committed first
    before = rows(athena, f"SELECT * FROM {orders} ORDER BY id")
    history = snapshots(athena, orders)
    from pyiceberg.exceptions import CommitFailedException, ValidationException
    with pytest.raises((ValidationException, CommitFailedException)):
        stale.delete("id = 2")              # writer A's change was planned on files that are gone
    assert rows(athena, f"SELECT * FROM {orders} ORDER BY id") == before
    assert snapshots(athena, orders) == history


def test_athena_reports_a_lost_commit_as_iceberg_commit_error(athena, stack, orders, monkeypatch):
    from pyiceberg.exceptions import CommitFailedException
    from pyiceberg.table import Table
    history = snapshots(athena, orders)

    def lose(self, *args, **kwargs):
        raise CommitFailedException("Requirement failed: branch main has changed")
    monkeypatch.setattr(Table, "_do_commit", lose)
    reason = fails(athena, f"DELETE FROM {orders} WHERE id = 1")
    monkeypatch.undo()
    assert reason.startswith(f"ICEBERG_COMMIT_ERROR: Failed to commit Iceberg update to table: {DB}.{orders}")
    assert snapshots(athena, orders) == history


def test_a_schema_change_that_breaks_a_type_is_refused(athena, orders):
    assert fails(athena, f"ALTER TABLE {orders} CHANGE COLUMN amount amount int") == \
        "NOT_SUPPORTED: Cannot change column type: amount: double -> int"
    assert rows(athena, f"SELECT amount FROM {orders} WHERE id = 1") == [(10.0,)]


def test_insert_with_wrong_types_is_refused_and_writes_nothing(athena, orders):
    history = snapshots(athena, orders)
    assert fails(athena, f"INSERT INTO {orders} VALUES ('x', 'y', 1.0, TIMESTAMP '2024-01-01 00:00:00')") == \
        ("TYPE_MISMATCH: Insert query has mismatched column types: Table: [bigint, varchar, double, "
         "timestamp(6)], Query: [varchar, varchar, decimal(2,1), timestamp(6)]")
    assert snapshots(athena, orders) == history


def test_merge_with_two_source_rows_for_one_target_row_is_refused(athena, orders):
    reason = fails(athena, f"MERGE INTO {orders} o USING (VALUES (1, 5.0), (1, 6.0)) AS s(id, amount) "
                           "ON o.id = s.id WHEN MATCHED THEN UPDATE SET amount = s.amount")
    assert reason == "MERGE_TARGET_ROW_MULTIPLE_MATCHES: One MERGE target table row matched more than one source row"
    assert rows(athena, f"SELECT amount FROM {orders} WHERE id = 1") == [(10.0,)]


def test_vacuum_retention_must_be_positive(athena, orders):
    reason = fails(athena, f"ALTER TABLE {orders} SET TBLPROPERTIES ('vacuum_max_snapshot_age_seconds'='0')")
    assert reason.startswith("INVALID_TABLE_PROPERTY: Table property vacuum_max_snapshot_age_seconds must be")


def test_iceberg_ddl_in_a_missing_database(athena):
    reason = fails(athena, f"CREATE TABLE nowhere_{SUFFIX}.t (n int) LOCATION 's3://{LAKE}/x/' "
                           "TBLPROPERTIES ('table_type'='ICEBERG')")
    assert reason.startswith(f"SCHEMA_NOT_FOUND: Schema 'nowhere_{SUFFIX}' does not exist")


def test_external_iceberg_table_and_missing_location_are_refused(athena):
    assert fails(athena, f"CREATE EXTERNAL TABLE ext (n int) LOCATION 's3://{LAKE}/ext/' "
                         "TBLPROPERTIES ('table_type'='ICEBERG')") == \
        "NOT_SUPPORTED: External keyword not supported for table type ICEBERG"
    assert "need a location" in fails(athena, "CREATE TABLE noloc (n int) TBLPROPERTIES ('table_type'='ICEBERG')")
    assert "INVALID_TABLE_PROPERTY" in fails(athena, f"CREATE TABLE badprop (n int) LOCATION 's3://{LAKE}/bp/' "
                                                     "TBLPROPERTIES ('table_type'='ICEBERG', 'colour'='red')")


def test_create_over_an_existing_table_is_refused(athena, stack, orders):
    reason = fails(athena, f"CREATE TABLE {orders} (n int) LOCATION 's3://{LAKE}/other_{orders}/' "
                           "TBLPROPERTIES ('table_type'='ICEBERG')")
    assert reason.startswith("TABLE_ALREADY_EXISTS")
    assert rows(athena, f"SELECT count(*) FROM {orders}") == [(4,)]
    assert stack.client("s3").list_objects_v2(Bucket=LAKE, Prefix=f"other_{orders}/")["KeyCount"] == 0


def test_metadata_tables_of_a_hive_table_do_not_exist(athena):
    q(athena, f"CREATE EXTERNAL TABLE IF NOT EXISTS hive_t (n int) STORED AS PARQUET LOCATION 's3://{LAKE}/hive_t/'")
    assert "does not exist" in fails(athena, 'SELECT * FROM "hive_t$snapshots"')
    assert "versioned tables" in fails(athena, "SELECT * FROM hive_t FOR VERSION AS OF 1")


# --------------------------------------------------------------------------- Lake Formation
def test_lake_formation_column_grants_apply_to_iceberg_tables(athena, stack, orders):
    """A principal granted every column but ``amount`` of an Iceberg table reads the others only,
    and may not change rows without INSERT/DELETE."""
    lf, iam = stack.client("lakeformation"), stack.client("iam")
    analyst = iam.create_user(UserName=f"ice-analyst-{SUFFIX}")["User"]["Arn"]
    everyone = {"DataLakePrincipalIdentifier": "IAM_ALLOWED_PRINCIPALS"}
    table = {"Table": {"DatabaseName": DB, "Name": orders}}
    lf.register_resource(ResourceArn=f"arn:aws:s3:::{LAKE}", UseServiceLinkedRole=True)
    try:
        lf.revoke_permissions(Principal=everyone, Resource={"Database": {"Name": DB}}, Permissions=["ALL"])
        lf.revoke_permissions(Principal=everyone, Resource=table, Permissions=["ALL"])
        lf.grant_permissions(Principal={"DataLakePrincipalIdentifier": analyst}, Permissions=["SELECT"],
                             Resource={"TableWithColumns": {"DatabaseName": DB, "Name": orders, "ColumnWildcard": {
                                 "ExcludedColumnNames": ["amount"]}}})
        client = stack.client("athena", principal=analyst)
        frame, _ = run_query(client, f"SELECT * FROM {orders} ORDER BY id", database=DB, output=OUT)
        assert list(frame.columns) == ["id", "customer", "ts"]
        _, stats = run_query(client, f"SELECT amount FROM {orders}", database=DB, output=OUT, check=False)
        assert stats["reason"].startswith("COLUMN_NOT_FOUND")
        _, stats = run_query(client, f'SELECT * FROM "{orders}$files"', database=DB, output=OUT, check=False)
        assert stats["reason"].startswith("AccessDeniedException: Insufficient Lake Formation permission(s)")
        _, stats = run_query(client, f"DELETE FROM {orders} WHERE id = 1", database=DB, output=OUT, check=False)
        assert stats["state"] == "FAILED" and "Lake Formation" in stats["reason"]
        assert rows(athena, f"SELECT count(*) FROM {orders}") == [(4,)]
    finally:
        lf.grant_permissions(Principal=everyone, Resource={"Database": {"Name": DB}}, Permissions=["ALL"])
        lf.grant_permissions(Principal=everyone, Resource=table, Permissions=["ALL"])
        lf.deregister_resource(ResourceArn=f"arn:aws:s3:::{LAKE}")
