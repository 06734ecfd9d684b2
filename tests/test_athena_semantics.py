"""Athena's answers, not DuckDB's: the SQL semantics of the local Athena.

The local Athena runs Trino SQL (Athena engine version 3) on DuckDB. Where
the two engines would answer the same SQL differently, the local Athena
must give Trino's answer, or fail as clearly as Athena does:

- failures are named by the kind of error, never by what its text happens
  to contain (a column called ``interrupt_flag`` is not a cancellation);
- ``DIFFERENCES`` lists each known difference between DuckDB and Trino with
  the answer Trino gives (one test per row);
- the Glue catalog reads back as Athena shows it: three-part column names,
  ``information_schema``, ``SHOW CREATE TABLE | VIEW`` and ``SHOW COLUMNS``.
"""
import io

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from localaws.athena import wait_for_query
from localaws.athena.errors import QueryCancelled, QueryFailed, engine_error

BUCKET, RESULTS, DB = "tsem-lake", "tsem-results", "tsem"


@pytest.fixture(scope="module")
def athena(stack):
    """A database ``tsem`` with a Parquet table ``nums``, a partitioned Parquet table
    ``parts``, a CSV table ``events`` and a view ``big_nums``."""
    s3 = stack.client("s3")
    for bucket in (BUCKET, RESULTS):
        s3.create_bucket(Bucket=bucket)
    nums = pa.table({"i": pa.array([7, 8], pa.int32()),
                     "d": pa.array([10.5, 1.25], pa.float64()).cast(pa.decimal128(10, 2)),
                     "x": [2.5, 4.0], "dt": pa.array([18321, 18322], pa.int32()).cast(pa.date32()),
                     "s": ["a,b", "c"], "arr": [[1, 2], [3]]})
    buffer = io.BytesIO()
    pq.write_table(nums, buffer)
    s3.put_object(Bucket=BUCKET, Key="nums/part-0.parquet", Body=buffer.getvalue())
    s3.put_object(Bucket=BUCKET, Key="events/events.csv", Body=b"1,login\n2,logout\n")
    client = stack.client("athena")
    run(client, f"CREATE DATABASE IF NOT EXISTS {DB}", db="default")
    run(client, "CREATE EXTERNAL TABLE nums (i int, d decimal(10,2), x double, dt date, s string, "
                f"arr array<int>) STORED AS PARQUET LOCATION 's3://{BUCKET}/nums/'")
    run(client, "CREATE EXTERNAL TABLE parts (id bigint, tags map<string,int>) PARTITIONED BY (day string) "
                f"STORED AS PARQUET LOCATION 's3://{BUCKET}/parts/'")
    run(client, "CREATE EXTERNAL TABLE events (id int, action string) ROW FORMAT DELIMITED "
                f"FIELDS TERMINATED BY ',' LOCATION 's3://{BUCKET}/events/' "
                "TBLPROPERTIES ('skip.header.line.count'='0', 'classification'='csv')")
    run(client, "CREATE VIEW big_nums AS SELECT i, d FROM nums WHERE i > 7")
    return client


def execution(client, sql, db=DB):
    qid = client.start_query_execution(QueryString=sql, QueryExecutionContext={"Database": db},
                                       ResultConfiguration={"OutputLocation": f"s3://{RESULTS}/out/"})
    return wait_for_query(client, qid["QueryExecutionId"], timeout=120)


def run(client, sql, db=DB):
    """The rows of a statement that must succeed (the header row dropped for SELECTs)."""
    ex = execution(client, sql, db)
    assert ex["Status"]["State"] == "SUCCEEDED", ex["Status"]
    pages = client.get_paginator("get_query_results").paginate(QueryExecutionId=ex["QueryExecutionId"])
    rows = [[d.get("VarCharValue") for d in r["Data"]] for p in pages for r in p["ResultSet"]["Rows"]]
    return rows if ex["StatementType"] == "DDL" else rows[1:]


def failure(client, sql, db=DB):
    """The StateChangeReason and AthenaError of a statement that must fail."""
    ex = execution(client, sql, db)
    assert ex["Status"]["State"] == "FAILED", ex["Status"]
    return ex["Status"]["StateChangeReason"], ex["Status"]["AthenaError"]


# --------------------------------------------------------------------------
# Failures are named by the type of the engine's error, not by its text
# --------------------------------------------------------------------------
@pytest.mark.parametrize("sql, reason, error_type", [
    ("SELECT interrupt_flag FROM nums",
     "COLUMN_NOT_FOUND: line 1:8: Column 'interrupt_flag' cannot be resolved", 1006),
    ("SELECT n.interrupted FROM nums n", "COLUMN_NOT_FOUND: line 1:8: Column 'n.interrupted' cannot be resolved", 1006),
    ("SELECT CAST('interrupt' AS int)", "INVALID_CAST_ARGUMENT: ", 1001),
    ("SELECT interrupt_handler(s) FROM nums", "FUNCTION_NOT_FOUND: line 1:8: Function 'interrupt_handler' not "
                                               "registered", 1303),
    ("SELECT 2147483647 + 1", "NUMERIC_VALUE_OUT_OF_RANGE: ", 1001),
    ("SELECT 1 / 0", "DIVISION_BY_ZERO: Division by zero", 1001),
])
def test_failures_are_named_by_kind_not_by_text(athena, sql, reason, error_type):
    got, error = failure(athena, sql)
    assert got.startswith(reason)
    assert (error["ErrorCategory"], error["ErrorType"]) == (2, error_type)


def test_unterminated_string_is_a_syntax_error_with_its_position(athena):
    got, error = failure(athena, "SELECT 1 AS a,\n       'abc")
    assert got == "SYNTAX_ERROR: line 2:8: token recognition error at: ''abc'"
    assert error["ErrorType"] == 1006


@pytest.mark.parametrize("exc, expected", [
    (duckdb.InterruptException("INTERRUPT Error: Interrupted!"), "CANCELLED"),
    (duckdb.BinderException("Binder Error: column interrupt_flag ..."), "SYNTAX_ERROR"),
    (duckdb.ConversionException("Conversion Error: Could not convert string 'interrupt' to INT32"),
     "INVALID_CAST_ARGUMENT"),
    (duckdb.ParserException("Parser Error: syntax error at or near \"interrupt\""), "SYNTAX_ERROR"),
    (duckdb.OutOfRangeException("Out of Range Error: Overflow in addition of INT32"), "NUMERIC_VALUE_OUT_OF_RANGE"),
    (duckdb.InvalidInputException("Invalid Input Error: [athena:DIVISION_BY_ZERO] Division by zero"),
     "DIVISION_BY_ZERO"),
    (duckdb.OutOfMemoryException("Out of Memory Error: failed to allocate"), "EXCEEDED_MEMORY_LIMIT"),
])
def test_duckdb_exception_types_map_to_athena_names(exc, expected):
    mapped = engine_error(exc, "SELECT 1")
    if expected == "CANCELLED":
        assert isinstance(mapped, QueryCancelled)
    else:
        assert isinstance(mapped, QueryFailed) and mapped.name == expected, mapped


# --------------------------------------------------------------------------
# Where DuckDB and Trino differ: Trino's answer (Athena engine version 3)
# --------------------------------------------------------------------------
def fails(reason):
    return ("FAILED", reason)


BAD = "INVALID_FUNCTION_ARGUMENT:"
PAST, NEGATIVE = "Array subscript must be less than or equal to array length:", "Array subscript is negative:"
MISSING = "Key not present in map:"


DIFFERENCES = [
    # (difference, SQL, Trino's answer: the first value of the first row, or fails(reason prefix))
    ("integer division truncates (DuckDB: 2.5)", "SELECT 5 / 2", "2"),
    ("integer division truncates toward zero", "SELECT -5 / 2", "-2"),
    ("integer columns divide as integers", "SELECT i / 2 FROM nums WHERE i = 7", "3"),
    ("integer division by zero fails (DuckDB: infinity)", "SELECT 1 / 0", fails("DIVISION_BY_ZERO: Division by zero")),
    ("modulus by zero fails", "SELECT 5 % 0", fails("DIVISION_BY_ZERO: Division by zero")),
    ("decimal division keeps the larger scale (DuckDB: 0.333... double)", "SELECT 1.0 / 3", "0.3"),
    ("decimal division rounds half up, exactly", "SELECT 5.35 / 2", "2.68"),
    ("decimal columns divide as decimals", "SELECT d / 4 FROM nums WHERE i = 7", "2.63"),
    ("decimal division by zero fails", "SELECT 1.5 / 0", fails("DIVISION_BY_ZERO: Division by zero")),
    ("double division by zero is Infinity", "SELECT 1e0 / 0", "Infinity"),
    ("a DECIMAL literal keeps its digits (DuckDB: DECIMAL(18,3), 0.000)",
     "SELECT CAST(DECIMAL '0.00000000001' AS varchar)", "0.00000000001"),
    ("a bare decimal literal is DECIMAL, of its own digits", "SELECT typeof(0.33)", "decimal(2,2)"),
    ("decimal literals add exactly", "SELECT 0.1 + 0.2 = 0.3", "true"),
    ("round keeps a decimal's scale", "SELECT round(DECIMAL '1.2345', 2)", "1.2300"),
    ("typeof names Trino's types", "SELECT typeof(ARRAY[1, 2])", "array(integer)"),
    ("|| with NULL is NULL", "SELECT 'a' || NULL", None),
    ("concat with NULL is NULL", "SELECT concat('a', NULL, 'b')", None),
    ("regexp_extract without a match is NULL (DuckDB: '')", "SELECT regexp_extract('abc', 'x')", None),
    ("regexp_extract of a group without a match is NULL", "SELECT regexp_extract('abc', 'z(b)', 1)", None),
    ("regexp_replace names groups $1 (DuckDB: \\1)", "SELECT regexp_replace('abc', '(b)', '$1$1')", "abbc"),
    ("split_part past the last part is NULL (DuckDB: '')", "SELECT split_part('a,b,c', ',', 4)", None),
    ("split_part index 0 fails", "SELECT split_part('a,b,c', ',', 0)",
     fails("INVALID_FUNCTION_ARGUMENT: Index must be greater than zero")),
    ("substr from position 0 is empty (DuckDB: the whole string)", "SELECT substr('abc', 0)", ""),
    ("CAST(varchar AS JSON) is a JSON string (DuckDB parses it)", "SELECT json_format(CAST('abc' AS JSON))", '"abc"'),
    ("CAST(array AS JSON)", "SELECT json_format(CAST(ARRAY[1, 2] AS JSON))", "[1,2]"),
    ("json_parse sorts object keys", "SELECT json_format(json_parse('{\"b\": 1, \"a\": [1, 2.50]}'))",
     '{"a":[1,2.5],"b":1}'),
    ("json_parse of invalid JSON fails", "SELECT json_parse('abc')",
     fails("INVALID_FUNCTION_ARGUMENT: Cannot convert value to JSON: 'abc'")),
    ("json_extract_scalar of an object is NULL (DuckDB: its text)",
     "SELECT json_extract_scalar('{\"a\": {\"b\": 1}}', '$.a')", None),
    ("CAST(JSON AS varchar) is the value, unquoted", "SELECT CAST(json_parse('\"abc\"') AS varchar)", "abc"),
    ("CAST to timestamp is timestamp(3), rounded", "SELECT CAST('2020-01-02 03:04:05.1235' AS timestamp)",
     "2020-01-02 03:04:05.124"),
    ("AT TIME ZONE reads a timestamp in UTC, the session zone",
     "SELECT hour(TIMESTAMP '2020-01-01 00:00:00' AT TIME ZONE 'America/New_York')", "19"),
    ("a timestamp with a zone is that instant",
     "SELECT to_unixtime(TIMESTAMP '2020-01-01 00:00:00 America/New_York')", "1.5778548E9"),
    ("date_diff counts whole units (DuckDB: boundaries)",
     "SELECT date_diff('hour', TIMESTAMP '2020-01-01 00:59:00', TIMESTAMP '2020-01-01 01:01:00')", "0"),
    ("date_diff in days", "SELECT date_diff('day', DATE '2020-01-01', DATE '2020-03-01')", "60"),
    ("date_add to a DATE is a DATE (DuckDB: a timestamp)", "SELECT date_add('month', 1, DATE '2020-01-31')",
     "2020-02-29"),
    ("date_add to a date column is a date", "SELECT date_add('day', 1, dt) FROM nums WHERE i = 7", "2020-03-01"),
    ("date_trunc of a DATE is a DATE", "SELECT date_trunc('month', DATE '2020-05-17')", "2020-05-01"),
    ("array subscripts start at 1", "SELECT ARRAY[1, 2, 3][2]", "2"),
    ("an array subscript out of range fails (DuckDB: NULL)", "SELECT ARRAY[1, 2][5]", fails(f"{BAD} {PAST} 5 > 2")),
    ("array subscript 0 fails", "SELECT ARRAY[1, 2][0]", fails(f"{BAD} SQL array indices start at 1")),
    ("a negative subscript fails (DuckDB: from the end)", "SELECT ARRAY[1, 2][-1]", fails(f"{BAD} {NEGATIVE} -1")),
    ("an array column's subscript too far fails", "SELECT arr[3] FROM nums WHERE i = 7", fails(f"{BAD} {PAST} 3 > 2")),
    ("element_at out of range is NULL", "SELECT element_at(ARRAY[1, 2], 5)", None),
    ("element_at counts negative indexes from the end", "SELECT element_at(ARRAY[1, 2], -1)", "2"),
    ("element_at 0 fails", "SELECT element_at(ARRAY[1, 2], 0)", fails(f"{BAD} SQL array indices start at 1")),
    ("a missing map key fails (DuckDB: NULL)", "SELECT MAP(ARRAY['a'], ARRAY[1])['b']", fails(f"{BAD} {MISSING} b")),
    ("element_at of a missing map key is NULL", "SELECT element_at(MAP(ARRAY['a'], ARRAY[1]), 'b')", None),
    ("approx_percentile", "SELECT approx_percentile(x, 0.5) FROM (VALUES 1, 2, 3, 4, 5) AS t(x)", "3"),
    ("approx_percentile with weights fails clearly (DuckDB ignored them)",
     "SELECT approx_percentile(x, 2, 0.5) FROM (VALUES 1, 2, 3) AS t(x)", fails("NOT_SUPPORTED: ")),
    ("url_extract_host", "SELECT url_extract_host('https://example.com:8080/a?b=1')", "example.com"),
    ("url_extract_host of a URL without a host is NULL", "SELECT url_extract_host('/just/a/path')", None),
    ("url_extract_parameter", "SELECT url_extract_parameter('https://example.com/a?b=1&c=2', 'c')", "2"),
    ("url_extract_port", "SELECT url_extract_port('https://example.com:8080/a')", "8080"),
    ("try() of a failing expression is NULL", "SELECT try(1 / 0)", None),
]


@pytest.mark.parametrize("sql, expected", [row[1:] for row in DIFFERENCES], ids=[row[0] for row in DIFFERENCES])
def test_trino_answers_where_duckdb_differs(athena, sql, expected):
    if isinstance(expected, tuple):
        reason, _ = failure(athena, sql)
        assert reason.startswith(expected[1]), reason
    else:
        assert run(athena, sql)[0][0] == expected


@pytest.mark.parametrize("sql, expected", [
    ("SELECT x FROM (VALUES 1, 2) AS t(x) ORDER BY x", [["1"], ["2"]]),
    ("WITH c AS (SELECT i * 2 AS twice FROM nums) SELECT max(twice) FROM c", [["16"]]),
    ("SELECT transform(arr, v -> v * 10) FROM nums WHERE i = 7", [["[10, 20]"]]),
    ("SELECT n FROM nums CROSS JOIN UNNEST(arr) AS u(n) WHERE i = 7 ORDER BY n", [["1"], ["2"]]),
    ("SELECT t.i FROM nums t WHERE t.i IN (SELECT t.i FROM big_nums t)", [["8"]]),
    ("SELECT i AS k FROM nums ORDER BY k DESC", [["8"], ["7"]]),
    ("SELECT r.b FROM (SELECT CAST(ROW(1, 'x') AS ROW(a integer, b varchar)) AS r)", [["x"]]),
])
def test_names_a_query_defines_are_not_missing_columns(athena, sql, expected):
    """Columns are checked before DuckDB runs (COLUMN_NOT_FOUND); what the query
    itself names (aliases, CTE and UNNEST columns, lambda parameters, row fields)
    must not be mistaken for a missing column."""
    assert run(athena, sql) == expected


def test_chapter_percentages_keep_their_answers(athena):
    """Chapter 01's 5xx percentage (decimal arithmetic in Trino) prints as before."""
    rows = run(athena, "SELECT round(100.0 * 267 / 874, 1), round(100.0 * 2 / 923, 1)")
    assert rows == [["30.5", "0.2"]]


# --------------------------------------------------------------------------
# The catalog read back as Athena shows it
# --------------------------------------------------------------------------
def test_three_part_column_names(athena):
    assert run(athena, "SELECT tsem.nums.i FROM tsem.nums WHERE tsem.nums.i = 7") == [["7"]]
    assert run(athena, "SELECT awsdatacatalog.tsem.nums.s FROM awsdatacatalog.tsem.nums ORDER BY 1") == [
        ["a,b"], ["c"]]


def test_information_schema_tables_and_schemata(athena):
    tables = run(athena, "SELECT table_name, table_type FROM information_schema.tables "
                         "WHERE table_schema = 'tsem' ORDER BY table_name", db="default")
    assert tables == [["big_nums", "VIEW"], ["events", "BASE TABLE"], ["nums", "BASE TABLE"],
                      ["parts", "BASE TABLE"]]
    schemas = run(athena, "SELECT schema_name FROM information_schema.schemata WHERE schema_name LIKE 'tsem%'")
    assert schemas == [["tsem"]]


def test_information_schema_columns_show_trino_types(athena):
    rows = run(athena, "SELECT column_name, ordinal_position, data_type, is_nullable, extra_info "
                       "FROM information_schema.columns WHERE table_schema = 'tsem' AND table_name IN "
                       "('nums', 'parts') ORDER BY table_name, ordinal_position")
    assert rows == [["i", "1", "integer", "YES", None], ["d", "2", "decimal(10,2)", "YES", None],
                    ["x", "3", "double", "YES", None], ["dt", "4", "date", "YES", None],
                    ["s", "5", "varchar", "YES", None], ["arr", "6", "array(integer)", "YES", None],
                    ["id", "1", "bigint", "YES", None], ["tags", "2", "map(varchar, integer)", "YES", None],
                    ["day", "3", "varchar", "YES", "partition key"]]


def test_information_schema_views(athena):
    rows = run(athena, "SELECT table_name, view_definition FROM information_schema.views "
                       "WHERE table_schema = 'tsem'")
    assert rows == [["big_nums", "SELECT i, d FROM nums WHERE i > 7"]]


def test_show_create_table_prints_hive_ddl(athena):
    assert [r[0] for r in run(athena, "SHOW CREATE TABLE events")] == [
        "CREATE EXTERNAL TABLE `events`(",
        "  `id` int, ",
        "  `action` string)",
        "ROW FORMAT DELIMITED ",
        "  FIELDS TERMINATED BY ',' ",
        "STORED AS INPUTFORMAT ",
        "  'org.apache.hadoop.mapred.TextInputFormat' ",
        "OUTPUTFORMAT ",
        "  'org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat'",
        "LOCATION",
        f"  's3://{BUCKET}/events/'",
        "TBLPROPERTIES (",
        "  'classification'='csv', ",
        "  'skip.header.line.count'='0')"]
    assert [r[0] for r in run(athena, "SHOW CREATE TABLE tsem.parts")] == [
        "CREATE EXTERNAL TABLE `parts`(",
        "  `id` bigint, ",
        "  `tags` map<string,int>)",
        "PARTITIONED BY ( ",
        "  `day` string)",
        "ROW FORMAT SERDE ",
        "  'org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe' ",
        "STORED AS INPUTFORMAT ",
        "  'org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat' ",
        "OUTPUTFORMAT ",
        "  'org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat'",
        "LOCATION",
        f"  's3://{BUCKET}/parts/'",
        "TBLPROPERTIES (",
        ")"]


def test_show_create_view_and_its_errors(athena):
    assert [r[0] for r in run(athena, "SHOW CREATE VIEW big_nums")] == [
        "CREATE VIEW awsdatacatalog.tsem.big_nums AS", "SELECT", "  i,", "  d", "FROM nums", "WHERE", "  i > 7"]
    reason, _ = failure(athena, "SHOW CREATE VIEW nums")
    assert reason == "NOT_SUPPORTED: Relation 'awsdatacatalog.tsem.nums' is a table, not a view"
    reason, _ = failure(athena, "SHOW CREATE TABLE big_nums")
    assert reason == "NOT_SUPPORTED: Relation 'awsdatacatalog.tsem.big_nums' is a view, not a table"


def test_show_columns_prints_padded_names(athena):
    expected = [["id                  "], ["tags                "], ["day                 "]]
    assert run(athena, "SHOW COLUMNS IN parts") == expected
    assert run(athena, "SHOW COLUMNS FROM parts FROM tsem", db="default") == expected
    assert run(athena, "SHOW COLUMNS IN tsem.parts", db="default") == expected
