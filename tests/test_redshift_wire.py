"""The cluster endpoint speaks PostgreSQL's wire protocol to AWS's driver and to psycopg.

Each test starts a :class:`WireServer` on a fresh warehouse and stops it at
the end; the fixture then checks that no thread, connection or listening
port is left behind.
"""
from __future__ import annotations

import datetime as dt
import socket
import struct
import threading
import time
from decimal import Decimal

import psycopg
import pytest
import redshift_connector

from localaws.redshift.engine import Warehouse
from localaws.redshift.errors import SQLError
from localaws.redshift.wire import split_statements

USER, PASSWORD = "awsuser", "Passw0rd1"


@pytest.fixture
def server(tmp_path, wire):
    warehouse = Warehouse("wire-test", "dev", USER, PASSWORD, tmp_path)
    with wire.serving(warehouse) as server:
        yield server
    warehouse.close()
    assert server.connections == 0 and not server.threads
    assert not [t for t in threading.enumerate() if t.name.startswith("redshift-wire")]
    assert server.listener.fileno() == -1
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", server.port), timeout=2)


def has_relation(server, name: str) -> bool:
    try:
        server.warehouse.execute(f"SELECT * FROM {name} LIMIT 0")
        return True
    except SQLError:
        return False


# -- redshift_connector (AWS's driver: extended protocol, named statements, binary results)
def test_redshift_connector_round_trip(server, wire):
    started = time.perf_counter()
    conn = wire.rs_connect(server)
    assert time.perf_counter() - started < 2
    cur = conn.cursor()
    cur.execute("CREATE TABLE sales (id INT, name VARCHAR(20), price DECIMAL(10,2), score FLOAT, "
                "paid BOOLEAN, sold DATE, at TIMESTAMP)")
    cur.execute("INSERT INTO sales VALUES (%s, %s, %s, %s, %s, %s, %s)",
                (1, "O'Hare", Decimal("12.50"), 2.5, True, dt.date(2024, 1, 31), dt.datetime(2024, 1, 31, 8, 15, 1)))
    assert cur.rowcount == 1
    cur.execute("INSERT INTO sales VALUES (%s, %s, %s, %s, %s, %s, %s)", (2, None, None, None, None, None, None))
    cur.executemany("INSERT INTO sales (id, name) VALUES (%s, %s)", [(3, "c"), (4, "d"), (5, "e")])
    conn.commit()

    cur.execute("SELECT * FROM sales WHERE id <= %s ORDER BY id", (2,))
    assert cur.fetchall() == ([1, "O'Hare", Decimal("12.50"), 2.5, True, dt.date(2024, 1, 31),
                               dt.datetime(2024, 1, 31, 8, 15, 1)], [2, None, None, None, None, None, None])
    assert [(d[0], d[1]) for d in cur.description] == [
        ("id", 23), ("name", 1043), ("price", 1700), ("score", 701), ("paid", 16), ("sold", 1082), ("at", 1114)]
    cur.execute("SELECT count(*) AS n FROM sales WHERE name = %s OR paid = %s", ("c", True))
    assert cur.fetchone()[0] == 2

    cur.execute("SELECT id, name FROM sales ORDER BY id")
    frame = cur.fetch_dataframe()
    assert list(frame.columns) == ["id", "name"] and list(frame["id"]) == [1, 2, 3, 4, 5]
    conn.close()


def test_redshift_connector_catalog_methods(server, wire):
    if not has_relation(server, "svv_tables"):
        pytest.skip("the warehouse has no svv_tables yet (get_tables() queries it)")
    conn = wire.rs_connect(server)
    conn.cursor().execute("CREATE TABLE flights (id INT, carrier VARCHAR(2))")
    conn.commit()
    cur = conn.cursor()
    assert "flights" in [row[2] for row in cur.get_tables(table_name_pattern="flights")]
    if has_relation(server, "svv_columns"):
        assert [row[3] for row in cur.get_columns(tablename_pattern="flights")] == ["id", "carrier"]
    conn.close()


def test_redshift_connector_errors_carry_sqlstate(server, wire):
    conn = wire.rs_connect(server)
    cur = conn.cursor()
    with pytest.raises(redshift_connector.ProgrammingError) as missing:
        cur.execute("SELECT * FROM no_such_table")
    assert missing.value.args[0]["C"] == "42P01" and missing.value.args[0]["S"] == "ERROR"
    # The driver opened a transaction (autocommit is off); after an error Redshift
    # refuses statements until ROLLBACK.
    with pytest.raises(redshift_connector.ProgrammingError) as aborted:
        cur.execute("SELECT 1")
    assert aborted.value.args[0]["C"] == "25P02"
    conn.rollback()
    with pytest.raises(redshift_connector.ProgrammingError) as syntax:
        cur.execute("SELECT 1 FROM")
    assert syntax.value.args[0]["C"] == "42601" and int(syntax.value.args[0]["P"]) >= 1
    conn.rollback()
    cur.execute("SELECT 1")
    assert cur.fetchall() == ([1],)
    conn.close()


def test_wrong_password_and_unknown_database_are_refused_as_redshift_does(server, wire):
    with pytest.raises(redshift_connector.InterfaceError) as refused:
        wire.rs_connect(server, password="wrong")
    fields = refused.value.args[0]
    assert (fields["S"], fields["C"]) == ("FATAL", "28000")
    assert fields["M"] == f'password authentication failed for user "{USER}"'
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        wire.pg_connect(server, password="wrong")
    with pytest.raises(redshift_connector.ProgrammingError) as unknown:
        wire.rs_connect(server, database="nodb")
    assert unknown.value.args[0]["C"] == "3D000"
    assert unknown.value.args[0]["M"] == 'database "nodb" does not exist'


# -- psycopg 3 (extended protocol with unnamed statements; simple protocol without params)
def test_psycopg_parameters_types_and_transactions(server, wire):
    with wire.pg_connect(server) as conn:
        assert conn.info.parameter_status("server_version") == "8.0.2"
        conn.execute("CREATE TABLE airports (code VARCHAR(3), elev INT, lat DECIMAL(8,4), big BOOLEAN, opened DATE)")
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
        conn.execute("INSERT INTO airports VALUES (%s, %s, %s, %s, %s)",
                     ("JFK", 13, Decimal("40.6413"), True, dt.date(1948, 7, 1)))
        conn.execute("INSERT INTO airports VALUES (%s, %s, %s, %s, %s)", ("LGA", None, None, False, None))
        conn.commit()
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        rows = conn.execute("SELECT * FROM airports WHERE elev = %s OR code = %s ORDER BY code", (13, "LGA")).fetchall()
        assert rows == [("JFK", 13, Decimal("40.6413"), True, dt.date(1948, 7, 1)), ("LGA", None, None, False, None)]
        for _ in range(7):      # psycopg prepares a query it has run 5 times: Parse named + Describe
            assert conn.execute("SELECT code FROM airports WHERE elev = %s", (13,)).fetchall() == [("JFK",)]
        conn.rollback()

    with wire.pg_connect(server, autocommit=True) as conn:
        cur = conn.execute("SELECT 1 AS a; SELECT 'x;y' AS b; INSERT INTO airports (code) VALUES ('EWR')")
        assert cur.fetchall() == [(1,)]
        assert cur.nextset() and cur.fetchall() == [("x;y",)]
        assert cur.nextset() and cur.rowcount == 1
        with pytest.raises(psycopg.errors.UndefinedTable):
            conn.execute("SELECT * FROM missing")
        with conn.transaction():
            conn.execute("INSERT INTO airports (code) VALUES (%s)", ("SFO",))
        assert conn.execute("SELECT count(*) FROM airports").fetchone() == (4,)


def test_psycopg_cancel_interrupts_a_long_query(server, wire):
    with wire.pg_connect(server, autocommit=True) as conn:
        conn.execute("CREATE TABLE n (x INT)")
        conn.execute("INSERT INTO n SELECT * FROM generate_series(1, 2000)")
        # cancel_safe(), not cancel(): psycopg's blocking cancel() keeps Python's GIL while it
        # waits for the server, which deadlocks when the server runs in the same process.
        timer = threading.Timer(0.5, conn.cancel_safe)
        timer.start()
        started = time.perf_counter()
        with pytest.raises(psycopg.errors.QueryCanceled):      # SQLSTATE 57014
            conn.execute("SELECT count(*) FROM n a, n b, n c WHERE (a.x * 7 + b.x * 3 + c.x) % 1000 = 7")
        timer.join()
        assert time.perf_counter() - started < 10
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_stop_closes_open_connections(server, wire):
    conn = wire.pg_connect(server, autocommit=True)
    assert server.connections == 1
    server.stop()
    server.stop()                                               # idempotent
    with pytest.raises(psycopg.OperationalError):
        conn.execute("SELECT 1")
    conn.close()


# -- the protocol itself, byte by byte --------------------------------------------------
def kinds(messages) -> bytes:
    return b"".join(kind for kind, _ in messages)


def test_extended_protocol_max_rows_errors_and_empty_queries(server, wire, monkeypatch):
    client = wire.raw_client(server, ssl_request=True)
    client.send(b"Q", b"CREATE TABLE t (x INT); INSERT INTO t VALUES (1), (2), (3)\0")
    assert kinds(client.until_ready()) == b"CCZ"
    # Describe of an INSERT says NoData and does not run it.
    client.send(b"P", b"ins\0INSERT INTO t VALUES ($1)\0" + struct.pack("!hi", 1, 0))
    client.send(b"D", b"Sins\0")
    client.send(b"S")
    assert kinds(client.until_ready()) == b"1tnZ"
    assert server.warehouse.execute("SELECT count(*) FROM t").rows == [(3,)]
    # Execute with a row limit: PortalSuspended, then the rest.
    client.send(b"P", b"\0SELECT x FROM t ORDER BY x\0\0\0")
    client.send(b"B", b"\0\0" + struct.pack("!hhh", 0, 0, 0))
    client.send(b"D", b"P\0")
    client.send(b"E", b"\0" + struct.pack("!i", 2))
    client.send(b"E", b"\0" + struct.pack("!i", 2))
    client.send(b"S")
    assert kinds(client.until_ready()) == b"12TDDsDCZ"
    # An error skips the rest until Sync; the connection stays usable.
    client.send(b"P", b"\0SELECT * FROM nope\0\0\0")
    client.send(b"D", b"S\0")
    client.send(b"B", b"\0\0" + struct.pack("!hhh", 0, 0, 0))
    client.send(b"E", b"\0\0\0\0\0")
    client.send(b"S")
    answer = client.until_ready()
    assert kinds(answer) == b"1tEZ" and b"C42P01\0" in answer[2][1]
    client.send(b"Q", b" -- nothing here\n;\0")
    assert kinds(client.until_ready()) == b"IZ"
    # An unexpected failure inside is XX000, never a traceback, and the session goes on.
    monkeypatch.setattr(server.warehouse, "execute", lambda sql, params=None: 1 / 0)
    client.send(b"Q", b"SELECT 1\0")
    answer = client.until_ready()
    assert kinds(answer) == b"EZ" and b"CXX000\0" in answer[0][1] and b"Traceback" not in answer[0][1]
    monkeypatch.undo()
    client.send(b"Q", b"SELECT 1 AS one\0")
    assert kinds(client.until_ready()) == b"TDCZ"
    client.close()


def test_statements_split_outside_quotes_and_comments():
    text = "SELECT 'a;b'; -- c;\nSELECT $$x;y$$ ; /* ; */ ;"
    assert split_statements(text) == ["SELECT 'a;b'", " -- c;\nSELECT $$x;y$$ "]
    assert split_statements("  -- only a comment\n") == []


def test_pg_last_query_id_names_the_clients_query_not_the_drivers_describe(server, wire):
    """redshift_connector describes every statement first (a probe query): pg_last_query_id() skips it."""
    conn = wire.rs_connect(server, autocommit=True)
    cur = conn.cursor()
    cur.execute("CREATE TABLE ids (v INT)")
    cur.execute("INSERT INTO ids VALUES (1), (2)")
    cur.execute("SELECT sum(v) FROM ids")
    assert cur.fetchone()[0] == 3
    cur.execute("SELECT pg_last_query_id()")
    last = cur.fetchone()[0]
    cur.execute("SELECT querytxt FROM stl_query WHERE query = %s", (last,))
    assert cur.fetchone()[0].strip() == "SELECT sum(v) FROM ids"
    conn.close()
