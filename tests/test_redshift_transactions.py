"""Transactions as Redshift has them: autocommit, BEGIN ... COMMIT / ROLLBACK, isolation, conflicts.

The engine's :class:`Session` first (one warehouse, several sessions), then
the same behaviour through the wire protocol (psycopg, redshift_connector, a
raw socket) and through the Data API's BatchExecuteStatement.
"""
from __future__ import annotations

import time

import psycopg
import pytest

from localaws.redshift.engine import TX_FAILED, TX_IDLE, TX_OPEN, Warehouse
from localaws.redshift.errors import SQLError

USER, PASSWORD = "awsuser", "Passw0rd1"


@pytest.fixture
def warehouse(tmp_path):
    """Two nodes of two slices: every distributed table spans four slices."""
    wh = Warehouse("tx", "dev", USER, PASSWORD, tmp_path, number_of_nodes=2)
    wh.execute("CREATE TABLE sales (id INT, region VARCHAR(8), amount INT) DISTKEY(region) SORTKEY(id)")
    wh.execute("INSERT INTO sales SELECT i, 'r' || (i % 5), i * 10 FROM range(40) t(i)")
    wh.execute("CREATE TABLE events (id INT, kind VARCHAR(8)) DISTSTYLE EVEN")
    wh.execute("INSERT INTO events SELECT i, 'k' || (i % 3) FROM range(30) t(i)")
    wh.execute("CREATE TABLE regions (region VARCHAR(8), name VARCHAR(20)) DISTSTYLE ALL")
    wh.execute("INSERT INTO regions SELECT 'r' || i, 'Region ' || i FROM range(5) t(i)")
    yield wh
    wh.close()


def footprint(wh) -> dict:
    """What a write changes: each table's rows, its per-slice counts (STV_TBL_PERM) and SVV_TABLE_INFO,
    as ``wh`` (a Warehouse, or a Session inside its block) sees them."""
    tables = [r[0] for r in wh.execute("SELECT \"table\" FROM svv_table_info ORDER BY 1").rows]
    return {
        "rows": {t: sorted(wh.execute(f"SELECT * FROM {t}").rows) for t in tables},
        "slices": wh.execute("SELECT name, slice, rows, sorted_rows FROM stv_tbl_perm ORDER BY 1, 2").rows,
        "info": wh.execute('SELECT "table", diststyle, tbl_rows, skew_rows, unsorted FROM svv_table_info '
                           "ORDER BY 1").rows,
    }


def count(runner, table: str = "sales") -> int:
    return runner.execute(f"SELECT count(*) FROM {table}").rows[0][0]


# -- the engine's sessions ----------------------------------------------------------------
def test_rollback_undoes_inserts_updates_deletes_and_ddl_on_every_slice(warehouse):
    before = footprint(warehouse)
    with warehouse.session() as s:
        assert s.execute("BEGIN").command == "BEGIN" and s.state == TX_OPEN
        assert s.execute("INSERT INTO sales SELECT i, 'r9', 1 FROM range(100, 120) t(i)").rowcount == 20
        assert s.execute("UPDATE sales SET region = 'r7' WHERE id < 10").rowcount == 10   # moves rows
        assert s.execute("DELETE FROM events WHERE kind = 'k1'").rowcount == 10
        s.execute("INSERT INTO regions VALUES ('r9', 'New')")
        s.execute("CREATE TABLE scratch (x INT) DISTKEY(x)")
        s.execute("INSERT INTO scratch VALUES (1), (2), (3)")
        s.execute("DROP TABLE events")
        inside = footprint(s)                          # what the block itself sees
        assert inside != before and ("scratch", 3) in [(r[0], r[2]) for r in inside["info"]]
        assert s.execute("ROLLBACK").command == "ROLLBACK" and s.state == TX_IDLE
    assert footprint(warehouse) == before
    with pytest.raises(SQLError) as gone:
        warehouse.execute("SELECT * FROM scratch")
    assert gone.value.code == "42P01"


def test_commit_publishes_the_block_at_once_and_other_sessions_never_see_it_before(warehouse):
    a, b = warehouse.session(), warehouse.session()
    a.execute("BEGIN")
    a.execute("INSERT INTO sales VALUES (100, 'r1', 5), (101, 'r2', 5)")
    a.execute("CREATE TABLE fresh (x INT)")
    assert count(a) == 42 and count(b) == 40 and count(warehouse) == 40
    assert warehouse.execute("SELECT tbl_rows FROM svv_table_info WHERE \"table\" = 'sales'").rows == [(40,)]
    with pytest.raises(SQLError):
        b.execute("SELECT * FROM fresh")
    # A block's snapshot is taken at its first statement: b keeps reading the database of that moment.
    b.execute("BEGIN")
    assert count(b) == 40
    assert a.execute("COMMIT").command == "COMMIT"
    assert count(b) == 40
    b.execute("END")
    assert count(b) == 42 and count(warehouse) == 42 and count(b, "fresh") == 0
    a.close(), b.close()


def test_an_error_fails_the_block_until_rollback(warehouse):
    s = warehouse.session()
    s.execute("BEGIN")
    s.execute("INSERT INTO sales VALUES (100, 'r1', 5)")
    with pytest.raises(SQLError) as missing:
        s.execute("SELECT * FROM nowhere")
    assert missing.value.code == "42P01" and s.state == TX_FAILED
    for statement in ("SELECT 1", "INSERT INTO sales VALUES (101, 'r1', 5)", "BEGIN"):
        with pytest.raises(SQLError) as refused:
            s.execute(statement)
        assert refused.value.code == "25P02"
        assert refused.value.message == ("current transaction is aborted, commands ignored until end of "
                                         "transaction block")
    assert count(warehouse) == 40                    # the failed block's work is already gone
    assert s.execute("COMMIT").command == "ROLLBACK"   # COMMIT of a failed block rolls back, and says so
    assert s.state == TX_IDLE and count(s) == 40
    s.execute("INSERT INTO sales VALUES (102, 'r1', 5)")   # autocommit again
    assert count(warehouse) == 41
    s.close()


def test_concurrent_writers_of_a_table_conflict_and_the_first_one_wins(warehouse):
    a, b = warehouse.session(), warehouse.session()
    a.execute("BEGIN")
    a.execute("UPDATE sales SET amount = -1 WHERE id = 1")
    b.execute("BEGIN")
    with pytest.raises(SQLError) as lost:
        b.execute("UPDATE sales SET amount = -2 WHERE id = 1")
    # Redshift's ERROR 1023: SQLSTATE XX000, message "1023", the table's id in the detail.
    sales_id = warehouse.execute("SELECT table_id FROM svv_table_info WHERE \"table\" = 'sales'").rows[0][0]
    assert (lost.value.code, lost.value.message) == ("XX000", "1023")
    assert lost.value.detail == f"Serializable isolation violation on table - {sales_id}"
    assert str(lost.value) == f"1023 DETAIL: Serializable isolation violation on table - {sales_id}"
    assert b.state == TX_FAILED
    b.execute("ROLLBACK")
    # Another table is not in the way: a block writing it goes through.
    b.execute("BEGIN")
    b.execute("INSERT INTO events VALUES (99, 'k9')")
    # An autocommit writer of a's table loses too, at once (nobody waits for a lock here).
    with pytest.raises(SQLError) as autocommit:
        warehouse.execute("INSERT INTO sales VALUES (200, 'r1', 1)")
    assert autocommit.value.message == "1023" and autocommit.value.table_id == sales_id
    assert a.execute("COMMIT").command == "COMMIT" and b.execute("COMMIT").command == "COMMIT"
    assert warehouse.execute("SELECT amount FROM sales WHERE id = 1").rows == [(-1,)]     # the winner's
    assert count(warehouse) == 40 and count(warehouse, "events") == 31
    a.close(), b.close()


def test_truncate_and_vacuum_commit_the_block_they_run_in(warehouse):
    """Redshift: "TRUNCATE commits the transaction in which it is run" (and VACUUM too)."""
    s = warehouse.session()
    s.execute("BEGIN")
    s.execute("INSERT INTO events VALUES (100, 'k0')")
    s.execute("TRUNCATE events")
    assert s.state == TX_OPEN                         # a new block goes on
    s.execute("INSERT INTO events VALUES (101, 'k0')")
    s.execute("ROLLBACK")                             # undoes only what came after the TRUNCATE
    assert count(warehouse, "events") == 0
    s.execute("BEGIN")
    s.execute("DELETE FROM sales WHERE id < 5")
    s.execute("VACUUM sales")
    s.execute("ROLLBACK")
    assert count(warehouse) == 35
    s.close()


def test_result_cache_sees_only_committed_work(warehouse):
    query = "SELECT count(*) FROM sales WHERE amount >= 0"

    def source_of_last():
        return warehouse.execute(f"SELECT source_query FROM svl_qlog WHERE query = {warehouse.query_id}"
                                 ).rows[0][0]
    assert warehouse.execute(query).rows == [(40,)]
    assert warehouse.execute(query).rows == [(40,)] and source_of_last() is not None    # a cache hit
    s = warehouse.session()
    s.execute("BEGIN")
    s.execute("INSERT INTO sales VALUES (100, 'r1', 5)")
    assert s.execute(query).rows == [(41,)]           # the block's own rows, not the cached result
    assert warehouse.execute(query).rows == [(40,)]   # others: the committed rows (cached)
    s.execute("ROLLBACK")
    assert warehouse.execute(query).rows == [(40,)] and source_of_last() is not None    # nothing changed
    s.execute("BEGIN")
    s.execute("INSERT INTO sales VALUES (100, 'r1', 5)")
    s.execute("COMMIT")
    assert warehouse.execute(query).rows == [(41,)] and source_of_last() is None        # outdated at COMMIT
    s.close()


def test_statements_a_rollback_undid_stay_in_stl_query(warehouse):
    with warehouse.session() as s:
        s.execute("BEGIN")
        s.execute("INSERT INTO sales VALUES (100, 'r1', 5)")
        s.execute("ROLLBACK")
    texts = [r[0] for r in warehouse.execute("SELECT querytxt FROM stl_query").rows]
    assert "INSERT INTO sales VALUES (100, 'r1', 5)" in texts


def test_closing_a_session_rolls_its_block_back(warehouse):
    s = warehouse.session()
    s.execute("BEGIN")
    s.execute("DELETE FROM sales")
    s.close()
    assert count(warehouse) == 40
    assert warehouse.execute("INSERT INTO sales VALUES (100, 'r1', 5)").rowcount == 1   # no conflict left


# -- the wire protocol ----------------------------------------------------------------------
@pytest.fixture
def server(warehouse, wire):
    with wire.serving(warehouse) as server:
        yield server


def test_psycopg_commit_rollback_and_failed_transactions(server, wire):
    other = wire.pg_connect(server, autocommit=True)
    with wire.pg_connect(server) as conn:             # autocommit off: psycopg sends BEGIN
        conn.execute("INSERT INTO sales VALUES (100, 'r1', 5)")
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
        assert other.execute("SELECT count(*) FROM sales").fetchone() == (40,)
        conn.rollback()
        assert conn.execute("SELECT count(*) FROM sales").fetchone() == (40,)
        conn.execute("INSERT INTO sales VALUES (100, 'r1', 5)")
        conn.commit()
        assert other.execute("SELECT count(*) FROM sales").fetchone() == (41,)
        with pytest.raises(psycopg.errors.UndefinedTable):
            conn.execute("SELECT * FROM nowhere")
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.INERROR
        with pytest.raises(psycopg.errors.InFailedSqlTransaction):
            conn.execute("SELECT 1")
        conn.rollback()
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    first, second = wire.pg_connect(server), wire.pg_connect(server)
    first.execute("DELETE FROM sales WHERE id = 1")
    with pytest.raises(psycopg.errors.InternalError_) as lost:    # XX000, as Redshift answers
        second.execute("DELETE FROM sales WHERE id = 2")
    assert lost.value.diag.message_primary == "1023"
    assert lost.value.diag.message_detail.startswith("Serializable isolation violation on table - ")
    second.rollback()
    first.commit()
    assert other.execute("SELECT count(*) FROM sales").fetchone() == (40,)   # 41 - the first one's delete
    for conn in (first, second, other):
        conn.close()


def test_redshift_connector_commit_and_rollback(server, wire):
    conn = wire.rs_connect(server)                    # autocommit is False by default
    assert conn.autocommit is False
    cur = conn.cursor()
    cur.execute("INSERT INTO sales VALUES (100, 'r1', 5)")
    assert server.warehouse.execute("SELECT count(*) FROM sales").rows == [(40,)]
    conn.rollback()
    cur.execute("SELECT count(*) FROM sales")
    assert cur.fetchone()[0] == 40
    cur.execute("INSERT INTO sales VALUES (100, 'r1', 5)")
    conn.commit()
    assert server.warehouse.execute("SELECT count(*) FROM sales").rows == [(41,)]
    conn.close()


def test_ready_for_query_reports_the_transaction_status(server, wire):
    client = wire.raw_client(server)
    assert client.query("SELECT 1")[0] == b"I"
    assert client.query("BEGIN")[0] == b"T"
    assert client.query("INSERT INTO sales VALUES (100, 'r1', 5)")[0] == b"T"
    status, answer = client.query("SELECT * FROM nowhere")
    assert status == b"E" and b"C42P01\0" in answer[0][1]
    status, answer = client.query("SELECT 1")
    assert status == b"E" and b"C25P02\0" in answer[0][1]
    status, answer = client.query("COMMIT")
    assert status == b"I" and answer[0] == (b"C", b"ROLLBACK\0")
    # Several statements in one Query: one implicit transaction, all or nothing.
    status, answer = client.query("INSERT INTO sales VALUES (101, 'r1', 5); SELECT * FROM nowhere")
    assert status == b"I" and [k for k, _ in answer] == [b"C", b"E", b"Z"]
    assert count(server.warehouse) == 40
    client.sock.close()


def test_a_dropped_connection_rolls_its_block_back(server, wire):
    client = wire.raw_client(server)
    client.query("BEGIN")
    client.query("DELETE FROM sales")
    client.sock.close()                               # no Terminate: the client just went away
    deadline = time.monotonic() + 10
    while server.connections and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.connections == 0
    assert count(server.warehouse) == 40
    server.warehouse.execute("DELETE FROM sales WHERE id = 0")    # nothing of the block is left in the way


# -- the Data API (``cluster``: tests/conftest.py) ---------------------------------------------
def test_data_api_batch_is_one_transaction(data, cluster, statements):
    ids = {"ClusterIdentifier": cluster, "Database": "dev", "DbUser": "admin"}

    def batch(sqls, **kwargs):
        return statements.wait(data, data.batch_execute_statement(**ids, Sqls=sqls, **kwargs)["Id"])

    def rows():
        return statements.records(data, cluster, "select count(*) from t", timeout=30)[0][0]["longValue"]

    assert batch(["create table t (id int)", "insert into t values (1), (2)"])["Status"] == "FINISHED"
    failed = batch(["insert into t values (3)", "delete from t where id = 1", "select * from nowhere",
                    "insert into t values (4)"])
    assert failed["Status"] == "FAILED" and "nowhere" in failed["Error"]
    assert [s["Status"] for s in failed["SubStatements"]] == ["FINISHED", "FINISHED", "FAILED", "ABORTED"]
    assert rows() == 2                                # all work rolled back
    kept = batch(["insert into t values (3)", "select * from nowhere"], ExecutionMode="AUTO_COMMIT")
    assert kept["Status"] == "FAILED" and rows() == 3     # AUTO_COMMIT: each statement committed on its own
