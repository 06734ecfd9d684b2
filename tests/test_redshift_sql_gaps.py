"""Redshift SQL the warehouse now runs: MERGE and ALTER TABLE on distributed tables, result column
names as PostgreSQL gives them, pg_last_query_id() and version(), COPY into an empty sorted table.

Every check of a write also looks at the slices: each row is on the slice its
DISTKEY hashes to (the same slices as an INSERT of the same rows), the row
counts of STV_TBL_PERM add up, and SVV_TABLE_INFO.unsorted is right.
"""
from __future__ import annotations

import datetime
import re
import uuid

import psycopg
import pytest

from localaws.redshift.engine import Warehouse
from localaws.redshift.errors import SQLError
from localaws.redshift.wire import WireServer

ROLE = "arn:aws:iam::123456789012:role/RedshiftCopy"


@pytest.fixture
def wh(tmp_path):
    w = Warehouse("gaps", "dev", "awsuser", "Passw0rd1", tmp_path, number_of_nodes=2)      # 4 slices
    yield w
    w.close()


def per_slice(w, table):
    return w.execute(f"SELECT slice, rows FROM stv_tbl_perm WHERE name = '{table}' ORDER BY slice").rows


def placed_like_insert(w, table, columns, distribution):
    """The rows of ``table``, INSERTed into a new table of the same layout, land on the same slices."""
    rows = w.execute(f"SELECT * FROM {table}").rows
    twin = f"{table}_twin"
    w.execute(f"CREATE TABLE {twin} {columns} {distribution}")
    if rows:
        w.execute(f"INSERT INTO {twin} SELECT * FROM {table}")
    keyed = "DISTKEY" in distribution or "ALL" in distribution
    if keyed:
        assert per_slice(w, twin) == per_slice(w, table)
    assert sum(n for _, n in per_slice(w, table)) == len(rows) * (w.number_of_nodes if "ALL" in distribution else 1)
    w.execute(f"DROP TABLE {twin}")


# -- MERGE ---------------------------------------------------------------------------------
LAYOUTS = ["DISTKEY(id) SORTKEY(id)", "DISTSTYLE EVEN", "DISTSTYLE ALL", ""]


@pytest.mark.parametrize("layout", LAYOUTS)
def test_merge_updates_deletes_and_inserts_as_the_guide_shows(wh, layout):
    """The MERGE page's examples, on every distribution style."""
    columns = "(id INT, name CHAR(10))"
    wh.execute(f"CREATE TABLE target {columns} {layout}")
    wh.execute(f"CREATE TABLE source {columns} {layout}")
    wh.execute("INSERT INTO target VALUES (101, 'Bob'), (102, 'John'), (103, 'Susan')")
    wh.execute("INSERT INTO source VALUES (102, 'Tony'), (103, 'Alice'), (104, 'Bill')")
    merged = wh.execute("MERGE INTO target USING source ON target.id = source.id "
                        "WHEN MATCHED THEN UPDATE SET id = source.id, name = source.name "
                        "WHEN NOT MATCHED THEN INSERT VALUES (source.id, source.name)")
    assert (merged.command, merged.rowcount) == ("MERGE 3", 3)
    assert wh.execute("SELECT * FROM target ORDER BY id").rows == [
        (101, "Bob"), (102, "Tony"), (103, "Alice"), (104, "Bill")]
    placed_like_insert(wh, "target", columns, layout)

    wh.execute("INSERT INTO source VALUES (105, 'David')")
    wh.execute("MERGE INTO target USING source ON target.id = source.id WHEN MATCHED THEN DELETE "
               "WHEN NOT MATCHED THEN INSERT VALUES (source.id, source.name)")
    assert wh.execute("SELECT * FROM target ORDER BY id").rows == [(101, "Bob"), (105, "David")]
    placed_like_insert(wh, "target", columns, layout)
    assert wh.execute("SELECT tbl_rows FROM svv_table_info WHERE \"table\" = 'target'").rows == [(2,)]


@pytest.mark.parametrize("layout", ["DISTKEY(id)", "DISTSTYLE ALL"])
def test_merge_remove_duplicates(wh, layout):
    """Simplified mode: matched target rows (and their duplicates) become the source's version."""
    wh.execute(f"CREATE TABLE target (id INT, name CHAR(10)) {layout}")
    wh.execute("CREATE TABLE source (id INT, name CHAR(10))")
    wh.execute("INSERT INTO target VALUES (30, 'Tony'), (30, 'Daisy'), (11, 'Alice'), (23, 'Bill'), (23, 'Nikki')")
    wh.execute("INSERT INTO source VALUES (23, 'David'), (22, 'Clarence')")
    wh.execute("MERGE INTO target USING source ON target.id = source.id REMOVE DUPLICATES;")
    assert sorted(wh.execute("SELECT * FROM target").rows) == [
        (11, "Alice"), (22, "Clarence"), (23, "David"), (30, "Daisy"), (30, "Tony")]
    placed_like_insert(wh, "target", "(id INT, name CHAR(10))", layout)


def test_merge_moves_rows_whose_distkey_changes_and_keeps_sorting_bookkeeping(wh):
    wh.execute("CREATE TABLE sales (id INT, region VARCHAR(8), amount INT) DISTKEY(region) SORTKEY(id)")
    wh.execute("INSERT INTO sales SELECT i, 'r' || (i % 5), i * 10 FROM range(200) t(i)")
    wh.execute("VACUUM sales")
    assert wh.execute("SELECT unsorted FROM svv_table_info").rows == [(0.0,)]
    # a subquery source with an alias and a parameter; the UPDATE changes the DISTKEY column
    result = wh.execute("MERGE INTO sales USING (SELECT i AS id, 'moved' AS region FROM range(190, 210) t(i) "
                        "WHERE i >= $1) AS s ON sales.id = s.id "
                        "WHEN MATCHED THEN UPDATE SET region = s.region, amount = sales.amount + 1 "
                        "WHEN NOT MATCHED THEN INSERT (id, region, amount) VALUES (s.id, s.region, 0)", [190])
    assert result.rowcount == 20
    assert wh.execute("SELECT count(*), sum(amount) FROM sales WHERE region = 'moved'").rows == [
        (20, sum(i * 10 + 1 for i in range(190, 200)))]
    placed_like_insert(wh, "sales", "(id INT, region VARCHAR(8), amount INT)", "DISTKEY(region)")
    info = wh.execute("SELECT tbl_rows, unsorted FROM svv_table_info").rows[0]
    assert info[0] == 210 and info[1] > 0                   # new rows joined the unsorted region


def test_merge_is_all_or_nothing(wh):
    wh.execute("CREATE TABLE target (id INT, name VARCHAR(5)) DISTKEY(id)")
    wh.execute("CREATE TABLE source (id INT, name VARCHAR(20))")
    wh.execute("INSERT INTO target VALUES (1, 'a'), (2, 'b')")
    wh.execute("INSERT INTO source VALUES (1, 'z'), (3, 'much too long')")
    before = (wh.execute("SELECT * FROM target ORDER BY id").rows, per_slice(wh, "target"))
    with pytest.raises(SQLError) as failure:     # the UPDATE runs, then the INSERT fails: both undone
        wh.execute("MERGE INTO target USING source ON target.id = source.id WHEN MATCHED THEN "
                   "UPDATE SET name = source.name WHEN NOT MATCHED THEN INSERT VALUES (source.id, source.name)")
    assert (failure.value.code, failure.value.message) == ("22001", "value too long for type character varying(5)")
    assert (wh.execute("SELECT * FROM target ORDER BY id").rows, per_slice(wh, "target")) == before
    with pytest.raises(SQLError, match="cannot reference target table"):
        wh.execute("MERGE INTO target USING (SELECT * FROM target) AS s ON target.id = s.id "
                   "WHEN MATCHED THEN DELETE")


# -- ALTER TABLE ---------------------------------------------------------------------------------
def slice_columns(w, table):
    """The columns of every slice table of ``table`` (they must all be the same)."""
    rows = w.execute(f"SELECT schema_name, column_name FROM duckdb_columns() WHERE table_name = 'public.{table}' "
                     "ORDER BY schema_name, column_index").rows
    by_slice = {}
    for schema, column in rows:
        by_slice.setdefault(schema, []).append(column.lower())
    assert len({tuple(c) for c in by_slice.values()}) == 1, by_slice
    return next(iter(by_slice.values())), len(by_slice)


@pytest.mark.parametrize("layout", ["DISTKEY(id) SORTKEY(day)", "DISTSTYLE ALL"])
def test_alter_table_changes_every_slice_the_view_and_the_catalog(wh, layout):
    wh.execute(f"CREATE TABLE events (id INT, day DATE, note VARCHAR(4)) {layout}")
    wh.execute("INSERT INTO events SELECT i, DATE '2024-01-01' + CAST(i AS INT), 'n' || i FROM range(40) t(i)")
    counts = per_slice(wh, "events")
    wh.execute("ALTER TABLE events ADD COLUMN price DECIMAL(8,2) DEFAULT 9.5")
    wh.execute("ALTER TABLE events ADD tag VARCHAR(3) ENCODE zstd")
    assert slice_columns(wh, "events")[0] == ["id", "day", "note", "price", "tag"]
    assert wh.execute("SELECT count(*), sum(price), count(tag) FROM events").rows == [(40, 380, 0)]
    wh.execute("ALTER TABLE events RENAME COLUMN id TO event_id")
    wh.execute("ALTER TABLE events RENAME COLUMN day TO event_day")
    wh.execute("ALTER TABLE events DROP COLUMN note")
    wh.execute("ALTER TABLE events RENAME TO happenings")
    columns, slices = slice_columns(wh, "happenings")
    assert columns == ["event_id", "event_day", "price", "tag"] and slices == len(counts)
    assert wh.execute("SELECT column_name FROM svv_columns WHERE table_name = 'happenings' "
                      "ORDER BY ordinal_position").rows == [("event_id",), ("event_day",), ("price",), ("tag",)]
    assert per_slice(wh, "happenings") == counts                      # no row moved or was lost
    info = wh.execute('SELECT "table", diststyle, sortkey1, tbl_rows FROM svv_table_info').rows
    if "DISTKEY" in layout:
        assert info == [("happenings", "KEY(event_id)", "event_day", 40)]
    # the renamed key still places new rows, and the new column's length is checked
    wh.execute("INSERT INTO happenings (event_id, event_day, tag) VALUES (100, '2024-06-01', 'abc')")
    with pytest.raises(SQLError) as long_tag:
        wh.execute("INSERT INTO happenings (event_id, event_day, tag) VALUES (101, '2024-06-01', 'abcd')")
    assert long_tag.value.code == "22001"
    placed_like_insert(wh, "happenings", "(event_id INT, event_day DATE, price DECIMAL(8,2), tag VARCHAR(3))",
                       layout.replace("(id)", "(event_id)").replace("(day)", "(event_day)"))
    with pytest.raises(SQLError) as gone:
        wh.execute("SELECT * FROM events")
    assert gone.value.code == "42P01"


def test_alter_table_refusals_change_nothing(wh):
    wh.execute("CREATE TABLE t (id INT, day DATE, v INT) DISTKEY(id) SORTKEY(day)")
    wh.execute("CREATE TABLE other (x INT)")
    wh.execute("INSERT INTO t VALUES (1, '2024-01-01', 1)")
    cases = {
        "ALTER TABLE t DROP COLUMN id": ("42P16", 'cannot drop distkey column "id"'),
        "ALTER TABLE t DROP COLUMN day": ("42P16", 'cannot drop sortkey column "day"'),
        "ALTER TABLE t DROP COLUMN nope": ("42703", 'column "nope" of relation "t" does not exist'),
        "ALTER TABLE t ADD COLUMN v INT": ("42701", 'column "v" of relation "t" already exists'),
        "ALTER TABLE t RENAME COLUMN v TO day": ("42701", 'column "day" of relation "t" already exists'),
        "ALTER TABLE t RENAME TO other": ("42P07", 'relation "other" already exists'),
        "ALTER TABLE t ADD COLUMN n INT NOT NULL": ("XX000", "Cannot insert a NULL value into column n"),
    }
    for sql, (code, message) in cases.items():
        with pytest.raises(SQLError) as refused:
            wh.execute(sql)
        assert (refused.value.code, refused.value.message) == (code, message), sql
    assert slice_columns(wh, "t")[0] == ["id", "day", "v"]
    assert wh.execute("SELECT * FROM t").rows == [(1, datetime.date(2024, 1, 1), 1)]


# -- result column names -------------------------------------------------------------------
def test_unaliased_columns_are_named_as_postgresql_names_them(wh):
    wh.execute("CREATE TABLE f (id INT, carrier VARCHAR(2), delay INT) DISTKEY(carrier)")
    wh.execute("INSERT INTO f VALUES (1, 'AA', 5), (2, 'UA', NULL)")
    cases = {
        "SELECT count(*), sum(delay), avg(delay), max(id), min(id) FROM f": ["count", "sum", "avg", "max", "min"],
        "SELECT id + 1, 1, 'x', TRUE FROM f": ["?column?", "?column?", "?column?", "bool"],
        "SELECT NULL, 1 + 1": ["?column?", "?column?"],
        "SELECT count(*)::INT, id::VARCHAR, 1::INT, CAST('2024-01-01' AS DATE) FROM f GROUP BY id":
            ["count", "id", "int4", "date"],
        "SELECT CASE WHEN id > 1 THEN 1 END, nvl(delay, 0), upper(carrier), row_number() OVER () FROM f":
            ["case", "coalesce", "upper", "row_number"],
        'SELECT count(*) AS Flights, id AS "ID", carrier FROM f GROUP BY 2, 3': ["flights", "id", "carrier"],
        "SELECT *, count(*) OVER () FROM f": ["id", "carrier", "delay", "count"],
        "SELECT f.*, id * 2 FROM f": ["id", "carrier", "delay", "?column?"],
        "SELECT max(id) FROM f UNION ALL SELECT min(id) AS low FROM f": ["max"],
        "WITH c AS (SELECT carrier, count(*) FROM f GROUP BY 1) SELECT * FROM c": ["carrier", "count"],
        "SELECT (SELECT max(id) AS top FROM f), EXISTS (SELECT 1 FROM f)": ["top", "exists"],
    }
    for sql, names in cases.items():
        assert [c.name for c in wh.execute(sql).columns] == names, sql
        assert [c.name for c in wh.execute(sql).columns] == names, sql      # also from the result cache


# -- leader-node functions ------------------------------------------------------------------
def test_pg_last_query_id_and_version(wh):
    wh.execute("CREATE TABLE t (a INT)")
    with wh.session() as session:
        assert session.execute("SELECT pg_last_query_id()").rows == [(-1,)]      # nothing ran yet
        session.execute("INSERT INTO t VALUES (1), (2)")
        inserted = wh.execute("SELECT max(query) FROM stl_query WHERE querytxt LIKE 'INSERT INTO t%'").rows[0][0]
        result = session.execute("SELECT pg_last_query_id()")
        assert result.rows == [(inserted,)] and result.columns[0].name == "pg_last_query_id"
        assert session.execute("SELECT 1").rows == [(1,)]                       # leader node only: no change
        assert session.execute("SELECT query, querytxt FROM stl_query WHERE query = pg_last_query_id()").rows == [
            (inserted, "INSERT INTO t VALUES (1), (2)")]
        counted = session.execute("SELECT count(*) FROM t WHERE a < pg_last_query_id()")
        assert counted.rows == [(2,)]
    with wh.session() as other:                                                  # another session: its own
        assert other.execute("SELECT pg_last_query_id()").rows == [(-1,)]
    version = wh.execute("SELECT version()")
    assert version.columns[0].name == "version"
    text = version.rows[0][0]
    assert re.fullmatch(r"PostgreSQL 8\.0\.2 on \S+, compiled by .+, Redshift 1\.0\.\d+", text), text
    assert "localaws" in text and "DuckDB" in text                            # honest about what runs


def test_over_the_wire_too(wh):
    server = WireServer(wh)
    server.start()
    try:
        with psycopg.connect(host="127.0.0.1", port=server.port, dbname="dev", user="awsuser",
                             password="Passw0rd1", sslmode="disable", autocommit=True) as conn:
            conn.execute("CREATE TABLE w (a INT)")
            conn.execute("INSERT INTO w VALUES (1)")
            cur = conn.execute("SELECT count(*), pg_last_query_id() FROM w")
            assert [d.name for d in cur.description] == ["count", "pg_last_query_id"]
            count, last = cur.fetchone()
            assert count == 1 and conn.execute(
                "SELECT querytxt FROM stl_query WHERE query = %s", (last,)).fetchone() == ("INSERT INTO w VALUES (1)",)
            assert conn.execute("SELECT version()").fetchone()[0].startswith("PostgreSQL 8.0.2 on ")
    finally:
        server.stop()


# -- COPY into an empty table with a sort key ------------------------------------------------
def test_copy_into_an_empty_sorted_table_lands_sorted(stack, tmp_path):
    s3 = stack.client("s3")
    bucket = f"rs-gaps-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    rows = [(i * 7919 % 1000, f"2024-01-{1 + i * 13 % 28:02d}") for i in range(1000)]
    s3.put_object(Bucket=bucket, Key="first/part.csv", Body="".join(f"{i},{d}\n" for i, d in rows).encode())
    s3.put_object(Bucket=bucket, Key="more/part.csv", Body="".join(f"{i},{d}\n" for i, d in rows[:100]).encode())
    w = Warehouse("copysort", "dev", "a", "p", tmp_path, number_of_nodes=2, s3=lambda: stack.client("s3"))
    try:
        w.execute("CREATE TABLE ev (id INT, day DATE) DISTKEY(id) SORTKEY(day)")
        w.execute("CREATE TABLE plain (id INT, day DATE) DISTKEY(id)")
        for table in ("ev", "plain"):
            w.execute(f"COPY {table} FROM 's3://{bucket}/first/' IAM_ROLE '{ROLE}' CSV")
        assert w.execute('SELECT "table", unsorted FROM svv_table_info ORDER BY 1').rows == [
            ("ev", 0.0), ("plain", None)]
        for slice_ in range(w.slices):                   # each slice's rows are stored in sort key order
            days = [r[0] for r in w.execute(f'SELECT day FROM slice_{slice_}."public.ev"').rows]
            assert days == sorted(days)
        assert per_slice(w, "ev") == per_slice(w, "plain")                 # placed as without sorting
        w.execute(f"COPY ev FROM 's3://{bucket}/more/' IAM_ROLE '{ROLE}' CSV")       # not empty now
        assert w.execute("SELECT tbl_rows, unsorted FROM svv_table_info WHERE \"table\" = 'ev'").rows == [
            (1100, round(100 * 100 / 1100, 2))]
    finally:
        w.close()


def test_alter_and_merge_in_a_transaction_block_roll_back(wh):
    wh.execute("CREATE TABLE t (id INT, v VARCHAR(3)) DISTKEY(id)")
    wh.execute("CREATE TABLE s (id INT, v VARCHAR(3))")
    wh.execute("INSERT INTO t VALUES (1, 'a'), (2, 'b')")
    wh.execute("INSERT INTO s VALUES (2, 'x'), (3, 'y')")
    before = (wh.execute("SELECT * FROM t ORDER BY id").rows, per_slice(wh, "t"), slice_columns(wh, "t"))
    with wh.session() as session:
        session.execute("BEGIN")
        session.execute("ALTER TABLE t ADD COLUMN z INT DEFAULT 7")
        session.execute("MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN UPDATE SET v = s.v "
                        "WHEN NOT MATCHED THEN INSERT (id, v) VALUES (s.id, s.v)")
        assert session.execute("SELECT * FROM t ORDER BY id").rows == [(1, "a", 7), (2, "x", 7), (3, "y", 7)]
        assert wh.execute("SELECT * FROM t ORDER BY id").rows == before[0]       # others see nothing yet
        session.execute("ROLLBACK")
    assert (wh.execute("SELECT * FROM t ORDER BY id").rows, per_slice(wh, "t"), slice_columns(wh, "t")) == before
