"""Bad input, gathered in one place: each mistake, the error shape Redshift answers it with, and
proof that nothing was lost or half-written.

On the wire (``redshift_connector`` and psycopg against the cluster endpoint,
``wire.py``) an error is an ErrorResponse: severity, SQLSTATE, message and,
for a syntax error, the 1-based position PostgreSQL reports. Through the Data
API a SQL error is not an API error: the statement is ``FAILED`` and
DescribeStatement's ``Error`` is ``ERROR: <the message>``; a request the API
refuses is a boto3 ClientError (ValidationException,
ResourceNotFoundException, ActiveStatementsExceededException). The control
plane refuses with its faults (InvalidParameterValue, ClusterSnapshotNotFound).

Where the message comes from (what this stand-in reproduces):

- PostgreSQL's texts, which Redshift keeps: ``relation "x" does not exist``,
  ``column "x" does not exist``, ``syntax error at or near "x"`` /
  ``at end of input``, ``invalid input syntax for integer: "x"``,
  ``division by zero``, ``value too long for type character varying(n)``
  (22001), ``integer out of range``;
- Redshift's own: ``Cannot insert a NULL value into column x`` (XX000: client
  libraries handle it as an internal error), MERGE's ``Found multiple matches
  to update the same tuple.`` (the MERGE page), ``cannot drop distkey column``
  / ``cannot drop sortkey column`` (the ALTER TABLE page forbids it; the texts
  are those Redshift users report), COPY's ``Load into table 'x' failed.
  Check 'stl_load_errors' system table for details.``;
- SQLSTATEs Redshift does not document are PostgreSQL's nearest: 21000 for
  MERGE's duplicates, 42P16 for the refused ALTER.

Other files test some of these too (test_redshift_wire, test_redshift_copy,
test_redshift_api, test_redshift_snapshots); this file is the list.
"""
from __future__ import annotations

import threading
import uuid

import psycopg
import pytest
import redshift_connector
from botocore.exceptions import ClientError

from localaws.redshift import api as redshift_api
from localaws.redshift.engine import Warehouse

USER, PASSWORD = "awsuser", "Passw0rd1"
ROLE = "arn:aws:iam::123456789012:role/RedshiftCopy"
TABLE = "CREATE TABLE bad_t (id INT NOT NULL, name VARCHAR(5), code CHAR(2)) DISTKEY(id) SORTKEY(code)"
ROWS = "INSERT INTO bad_t VALUES (1, 'ann', 'aa'), (2, 'bob', 'bb'), (3, 'cy', 'cc')"


# -- fixtures: a warehouse on the wire (with the stack's S3 for COPY), a cluster for the APIs --------
@pytest.fixture(scope="module")
def bucket(stack, unique):
    name = unique("rs-bad")
    stack.client("s3").create_bucket(Bucket=name)
    return name


@pytest.fixture(scope="module")
def server(stack, tmp_path_factory, wire):
    warehouse = Warehouse("bad-input", "dev", USER, PASSWORD, tmp_path_factory.mktemp("rs"), number_of_nodes=2,
                          s3=lambda: stack.client("s3"))
    warehouse.execute(TABLE)
    warehouse.execute(ROWS)
    warehouse.execute("CREATE TABLE merge_src (id INT, name VARCHAR(5), code CHAR(2))")
    warehouse.execute("INSERT INTO merge_src VALUES (2, 'x', 'xx'), (2, 'y', 'yy'), (9, 'z', 'zz')")
    with wire.serving(warehouse) as server:
        yield server
    warehouse.close()


def state(server, table="bad_t"):
    """What a failed statement must leave as it was: the rows, and each slice's row count."""
    w = server.warehouse
    return (w.execute(f"SELECT * FROM {table} ORDER BY 1").rows,
            w.execute(f"SELECT slice, rows FROM stv_tbl_perm WHERE name = '{table}' ORDER BY slice").rows,
            w.execute(f"SELECT column_name FROM svv_columns WHERE table_name = '{table}' ORDER BY 1").rows)


@pytest.fixture
def rs_error(server, wire):
    """``rs_error(sql)``: the ErrorResponse fields redshift_connector got for ``sql`` (S, C, M, P...)."""
    def error(sql) -> dict:
        conn = wire.rs_connect(server, autocommit=True)
        try:
            with pytest.raises(redshift_connector.ProgrammingError) as failure:
                conn.cursor().execute(sql)
            return failure.value.args[0]
        finally:
            conn.close()
    return error


@pytest.fixture
def pg_error(server, wire):
    """``pg_error(sql)``: the diagnostic psycopg got for ``sql``."""
    def error(sql) -> psycopg.errors.Diagnostic:
        with wire.pg_connect(server, autocommit=True) as conn:
            with pytest.raises(psycopg.Error) as failure:
                conn.execute(sql)
            return failure.value.diag
    return error


# -- SQL errors on the wire: SQLSTATE, message, position, and nothing changed -----------------------
SQL_CASES = {
    "syntax error at the end": ("SELECT * FROM bad_t WHERE", "42601", "syntax error at end of input", 26),
    "syntax error at a token": ("SELECT * FROM bad_t WHERE id = = 1", "42601", 'syntax error at or near "="', 32),
    "missing table": ("SELECT * FROM no_such_table", "42P01", 'relation "no_such_table" does not exist', None),
    "missing column": ("SELECT nope FROM bad_t", "42703", 'column "nope" does not exist', None),
    "type mismatch on INSERT": ("INSERT INTO bad_t VALUES ('x', 'a', 'b')", "22P02",
                                'invalid input syntax for integer: "x"', None),
    "integer out of range": ("INSERT INTO bad_t VALUES (99999999999, 'a', 'b')", "22003", "integer out of range",
                             None),
    "division by zero": ("SELECT id / 0 FROM bad_t", "22012", "division by zero", None),
    "oversize VARCHAR (one bad row of two)": ("INSERT INTO bad_t VALUES (10, 'ok', 'zz'), (11, 'toolong', 'zz')",
                                              "22001", "value too long for type character varying(5)", None),
    "oversize CHAR on UPDATE": ("UPDATE bad_t SET code = 'abc' WHERE id = 1", "22001",
                                "value too long for type character(2)", None),
    "NOT NULL violation": ("INSERT INTO bad_t (name, code) VALUES ('n', 'cc')", "XX000",
                           "Cannot insert a NULL value into column id", None),
    "table exists": (TABLE, "42P07", 'relation "bad_t" already exists', None),
    "MERGE: a target row matches two source rows": (
        "MERGE INTO bad_t USING merge_src s ON bad_t.id = s.id WHEN MATCHED THEN UPDATE SET name = s.name "
        "WHEN NOT MATCHED THEN INSERT VALUES (s.id, s.name, s.code)", "21000",
        "Found multiple matches to update the same tuple.", None),
    "ALTER TABLE drops the DISTKEY": ("ALTER TABLE bad_t DROP COLUMN id", "42P16", 'cannot drop distkey column "id"',
                                      None),
    "ALTER TABLE drops the SORTKEY": ("ALTER TABLE bad_t DROP COLUMN code", "42P16",
                                      'cannot drop sortkey column "code"', None),
}


@pytest.mark.parametrize("case", list(SQL_CASES))
def test_sql_error_on_the_wire(server, rs_error, pg_error, case):
    sql, code, message, position = SQL_CASES[case]
    before = state(server)
    fields = rs_error(sql)                                               # AWS's driver
    assert (fields["S"], fields["C"], fields["M"]) == ("ERROR", code, message)
    assert (int(fields["P"]) if "P" in fields else None) == position
    diag = pg_error(sql)                                                 # psycopg
    assert (diag.severity, diag.sqlstate, diag.message_primary) == ("ERROR", code, message)
    assert (int(diag.statement_position) if diag.statement_position else None) == position
    assert state(server) == before                                      # nothing lost, nothing half-written


def test_a_failed_statement_fails_its_transaction_block(server, wire):
    """Inside BEGIN ... the block is aborted: its earlier work is undone (ROLLBACK), statements are refused."""
    before = state(server)
    conn = wire.rs_connect(server)
    cur = conn.cursor()
    cur.execute("INSERT INTO bad_t VALUES (50, 'new', 'nn')")
    with pytest.raises(redshift_connector.ProgrammingError) as failure:
        cur.execute("INSERT INTO bad_t VALUES (51, 'far too long', 'nn')")
    assert failure.value.args[0]["C"] == "22001"
    with pytest.raises(redshift_connector.ProgrammingError) as refused:
        cur.execute("SELECT 1")
    assert refused.value.args[0]["C"] == "25P02"
    conn.rollback()
    conn.close()
    assert state(server) == before


# -- COPY -------------------------------------------------------------------------------------------
BAD_CSV = b"1,ann,aa\nx2,bob,bb\n3,much-too-long,cc\n4,dee\n5,eve,ee\n"


def test_copy_with_bad_rows_beyond_maxerror_loads_nothing(stack, server, bucket, rs_error):
    stack.client("s3").put_object(Bucket=bucket, Key="bad/rows.csv", Body=BAD_CSV)
    before = state(server)
    fields = rs_error(f"COPY bad_t FROM 's3://{bucket}/bad/' IAM_ROLE '{ROLE}' CSV MAXERROR 2")
    assert (fields["C"], fields["M"]) == ("XX000", "Load into table 'bad_t' failed.  "
                                                   "Check 'stl_load_errors' system table for details.")
    assert state(server) == before                                         # all or nothing
    errors = server.warehouse.execute("SELECT line_number, err_code FROM stl_load_errors WHERE query = "
                                      "(SELECT max(query) FROM stl_load_errors) ORDER BY line_number").rows
    assert errors == [(2, 1207), (3, 1204), (4, 1214)]


def test_copy_from_a_missing_prefix_or_key(stack, server, bucket, rs_error):
    before = state(server)
    fields = rs_error(f"COPY bad_t FROM 's3://{bucket}/nothing/here' IAM_ROLE '{ROLE}' CSV")
    assert (fields["C"], fields["M"]) == ("XX000", "The specified S3 prefix 'nothing/here' does not exist")
    manifest = f'{{"entries": [{{"url": "s3://{bucket}/gone.csv", "mandatory": true}}]}}'
    stack.client("s3").put_object(Bucket=bucket, Key="m/load.manifest", Body=manifest.encode())
    fields = rs_error(f"COPY bad_t FROM 's3://{bucket}/m/load.manifest' IAM_ROLE '{ROLE}' CSV MANIFEST")
    assert fields["C"] == "XX000" and "The specified key does not exist" in fields["M"]
    assert state(server) == before


# -- the connection itself ----------------------------------------------------------------------------
def test_wrong_password(server, wire):
    with pytest.raises(redshift_connector.InterfaceError) as refused:
        wire.rs_connect(server, password="wrong")
    fields = refused.value.args[0]
    assert (fields["S"], fields["C"], fields["M"]) == (
        "FATAL", "28000", f'password authentication failed for user "{USER}"')
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        wire.pg_connect(server, password="wrong")


def test_unknown_database(server, wire):
    with pytest.raises(redshift_connector.ProgrammingError) as refused:
        wire.rs_connect(server, database="nodb")
    assert (refused.value.args[0]["C"], refused.value.args[0]["M"]) == ("3D000", 'database "nodb" does not exist')


def test_cancelled_statement_writes_nothing(server, wire):
    server.warehouse.execute("CREATE TABLE IF NOT EXISTS numbers (x INT)")
    server.warehouse.execute("INSERT INTO numbers SELECT * FROM generate_series(1, 2000)")
    server.warehouse.execute("CREATE TABLE IF NOT EXISTS landed (x INT)")
    before = state(server, "landed")
    with wire.pg_connect(server, autocommit=True) as conn:
        timer = threading.Timer(0.5, conn.cancel_safe)        # cancel_safe: see test_redshift_wire
        timer.start()
        with pytest.raises(psycopg.errors.QueryCanceled) as cancelled:
            conn.execute("INSERT INTO landed SELECT a.x FROM numbers a, numbers b, numbers c "
                         "WHERE (a.x * 7 + b.x * 3 + c.x) % 1000 = 7")
        timer.join()
        assert cancelled.value.diag.sqlstate == "57014"
        assert conn.execute("SELECT count(*) FROM landed").fetchone() == (0,)       # the session goes on
    assert state(server, "landed") == before


# -- the control plane and the Data API -----------------------------------------------------------
@pytest.fixture(scope="module")
def cluster(stack, unique, clusters, statements):
    """A single-node cluster with ``bad_t`` and a ``merge_src`` that matches one of its rows twice."""
    redshift, data = stack.client("redshift"), stack.client("redshift-data")
    with clusters.running(redshift, unique("bad"), ClusterType="single-node") as name:
        for sql in (TABLE, ROWS, "CREATE TABLE merge_src (id INT, name VARCHAR(5), code CHAR(2))",
                    "INSERT INTO merge_src VALUES (2, 'x', 'xx'), (2, 'y', 'yy')"):
            statements.run_ok(data, name, sql)
        yield name


def test_unknown_node_type(redshift, unique):
    name = unique("bad")
    with pytest.raises(ClientError) as refused:
        redshift.create_cluster(ClusterIdentifier=name, NodeType="xx.huge", MasterUsername="admin",
                                MasterUserPassword=PASSWORD)
    error = refused.value.response["Error"]
    assert (error["Code"], error["Message"]) == ("InvalidParameterValue", "Invalid node type: xx.huge.")
    with pytest.raises(redshift.exceptions.ClusterNotFoundFault):          # nothing half-made
        redshift.describe_clusters(ClusterIdentifier=name)


def test_restore_from_a_missing_snapshot(redshift, unique):
    name = unique("bad")
    with pytest.raises(ClientError) as refused:
        redshift.restore_from_cluster_snapshot(ClusterIdentifier=name, SnapshotIdentifier="no-such-snapshot")
    assert refused.value.response["Error"]["Code"] == "ClusterSnapshotNotFound"
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    with pytest.raises(redshift.exceptions.ClusterNotFoundFault):
        redshift.describe_clusters(ClusterIdentifier=name)


DATA_API_FAILURES = {
    "SELECT * FROM no_such_table": 'ERROR: relation "no_such_table" does not exist',
    "SELECT id / 0 FROM bad_t": "ERROR: division by zero",
    "INSERT INTO bad_t VALUES (7, 'toolong', 'zz')": "ERROR: value too long for type character varying(5)",
    "INSERT INTO bad_t (name) VALUES ('n')": "ERROR: Cannot insert a NULL value into column id",
    "MERGE INTO bad_t USING merge_src s ON bad_t.id = s.id WHEN MATCHED THEN DELETE":
        "ERROR: Found multiple matches to update the same tuple.",
    "ALTER TABLE bad_t DROP COLUMN id": 'ERROR: cannot drop distkey column "id"',
    "SELECT 1 FROM": "ERROR: syntax error at end of input",
}


def test_data_api_sql_errors_fail_the_statement(data, cluster, statements):
    before = statements.records(data, cluster, "SELECT * FROM bad_t ORDER BY id")
    for sql, error in DATA_API_FAILURES.items():
        desc = statements.run(data, cluster, sql, timeout=60)
        assert (desc["Status"], desc["Error"]) == ("FAILED", error), sql
        with pytest.raises(data.exceptions.ValidationException):        # no result of a failed statement
            data.get_statement_result(Id=desc["Id"])
    assert statements.records(data, cluster, "SELECT * FROM bad_t ORDER BY id") == before
    wrong = statements.run(data, cluster, "SELECT 1", timeout=60, database="other")
    assert (wrong["Status"], wrong["Error"]) == ("FAILED", 'FATAL: database "other" does not exist')


def test_data_api_refuses_requests(data, cluster, monkeypatch):
    with pytest.raises(data.exceptions.ValidationException, match="endpoint doesn't exist"):
        data.execute_statement(ClusterIdentifier="no-such-cluster", Database="dev", DbUser="admin", Sql="SELECT 1")
    missing = str(uuid.uuid4())
    with pytest.raises(data.exceptions.ResourceNotFoundException) as unknown:
        data.describe_statement(Id=missing)
    assert unknown.value.response["ResourceId"] == missing
    with pytest.raises(data.exceptions.ValidationException):             # a parameter the SQL does not use
        data.execute_statement(ClusterIdentifier=cluster, Database="dev", DbUser="admin", Sql="SELECT :a",
                               Parameters=[{"name": "b", "value": "1"}])
    monkeypatch.setattr(redshift_api, "MAX_ACTIVE", 0)                   # the queue is full
    with pytest.raises(data.exceptions.ActiveStatementsExceededException):
        data.execute_statement(ClusterIdentifier=cluster, Database="dev", DbUser="admin", Sql="SELECT 1")


def test_data_api_cancelled_statement_is_aborted(data, cluster, statements):
    sid = statements.start_slow(data, cluster)
    assert data.cancel_statement(Id=sid)["Status"] is True
    assert statements.wait(data, sid, timeout=120)["Status"] == "ABORTED"
    with pytest.raises(data.exceptions.ValidationException, match="already in ABORTED state"):
        data.cancel_statement(Id=sid)


def test_data_api_on_a_paused_cluster(redshift, data, cluster, statements):
    before = statements.records(data, cluster, "SELECT * FROM bad_t ORDER BY id")
    redshift.pause_cluster(ClusterIdentifier=cluster)
    try:
        with pytest.raises(data.exceptions.ValidationException) as refused:
            data.execute_statement(ClusterIdentifier=cluster, Database="dev", DbUser="admin", Sql="SELECT 1")
        assert "paused" in refused.value.response["Error"]["Message"]
    finally:
        redshift.resume_cluster(ClusterIdentifier=cluster)
    assert statements.records(data, cluster, "SELECT * FROM bad_t ORDER BY id") == before   # kept while paused
