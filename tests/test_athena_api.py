"""Athena's API as clients see it: result sets, statistics, SerDes, UNLOAD, result reuse,
the catalog API, and big results that stream (bounded memory, cancellable)."""
import datetime
import io
import threading
import time

import botocore.exceptions
import psutil
import pyarrow.parquet as pq
import pytest

from localaws.athena import wait_for_query

LAKE, RESULTS = "tapi-lake", "tapi-results"
OUT = f"s3://{RESULTS}/out/"
CONNECTOR = '''
def handler(event, context):
    kind = event["@type"]
    if kind == "ListSchemasRequest":
        return {"@type": "ListSchemasResponse", "schemas": ["main"]}
    if kind == "ListTablesRequest":
        return {"@type": "ListTablesResponse", "tables": [{"schemaName": "main", "tableName": "planes"}]}
    if event["tableName"]["tableName"] != "planes":
        raise ValueError("Table 'main.%s' not found" % event["tableName"]["tableName"])
    return {"@type": "GetTableResponse", "partitionColumns": [],
            "schema": {"fields": [{"name": "tailnum", "type": "varchar"}, {"name": "seats", "type": "bigint"}]}}
'''


def execute(athena, sql, **kwargs):
    """Start ``sql`` in database tapi and wait for it; the final QueryExecution."""
    kwargs.setdefault("ResultConfiguration", {"OutputLocation": OUT})
    kwargs.setdefault("QueryExecutionContext", {"Database": "tapi"})
    qid = athena.start_query_execution(QueryString=sql, **kwargs)["QueryExecutionId"]
    return wait_for_query(athena, qid, timeout=180)


def succeeded(athena, sql, **kwargs):
    ex = execute(athena, sql, **kwargs)
    assert ex["Status"]["State"] == "SUCCEEDED", ex["Status"]
    return ex


def values(page):
    return [[d.get("VarCharValue") for d in row["Data"]] for row in page["ResultSet"]["Rows"]]


def first_page(athena, sql, **kwargs):
    """(ColumnInfo, rows of the first page, QueryExecution) of a successful query."""
    ex = succeeded(athena, sql, **kwargs)
    page = athena.get_query_results(QueryExecutionId=ex["QueryExecutionId"])
    return page["ResultSet"]["ResultSetMetadata"]["ColumnInfo"], values(page), ex


def pyathena_cursor(stack, **kwargs):
    from pyathena import connect
    return connect(s3_staging_dir=OUT, region_name=stack.region, schema_name="tapi", endpoint_url=stack.endpoint,
                   aws_access_key_id="testing", aws_secret_access_key="testing", poll_interval=0.02,
                   **kwargs).cursor()


@pytest.fixture(scope="module")
def athena(stack):
    s3 = stack.client("s3")
    for bucket in (LAKE, RESULTS):
        s3.create_bucket(Bucket=bucket)
    # Hive text with collections, maps, structs (default \x02 \x03 delimiters) and base64 BINARY
    s3.put_object(Bucket=LAKE, Key="text/default/part-0", Body=(
        "1\x01a\x02b\x02c\x01k1\x031\x02k2\x032\x015\x02five\x01aGVsbG8=\n"
        "2\x01\x01\\N\x01\\N\x01\\N\n").encode())
    s3.put_object(Bucket=LAKE, Key="text/custom/part-0", Body=b"3,x|y,k:7\n")
    s3.put_object(Bucket=LAKE, Key="text/serde/part-0", Body=b"4;p#q;m=8#n=9\n")
    s3.put_object(Bucket=LAKE, Key="names/part-0", Body=b"N101,abc,Boeing\n")
    client = stack.client("athena")
    succeeded(client, "CREATE DATABASE IF NOT EXISTS tapi", QueryExecutionContext={"Database": "default"})
    succeeded(client, "CREATE EXTERNAL TABLE tapi_text (id int, tags array<string>, counts map<string,int>, "
                      "info struct<n:int,s:string>, payload binary) LOCATION 's3://tapi-lake/text/default/'")
    succeeded(client, "CREATE EXTERNAL TABLE tapi_custom (id int, tags array<string>, counts map<string,int>) "
                      "ROW FORMAT DELIMITED FIELDS TERMINATED BY ',' COLLECTION ITEMS TERMINATED BY '|' "
                      "MAP KEYS TERMINATED BY ':' LOCATION 's3://tapi-lake/text/custom/'")
    succeeded(client, "CREATE EXTERNAL TABLE tapi_serde (id int, tags array<string>, counts map<string,int>) "
                      "ROW FORMAT SERDE 'org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe' WITH SERDEPROPERTIES "
                      "('field.delim'=';', 'collection.delim'='#', 'mapkey.delim'='=') "
                      "LOCATION 's3://tapi-lake/text/serde/'")
    succeeded(client, "CREATE EXTERNAL TABLE tapi_names (tailnum varchar(10), code char(3), maker string) "
                      "ROW FORMAT DELIMITED FIELDS TERMINATED BY ',' LOCATION 's3://tapi-lake/names/'")
    return client


# -- result sets as Athena returns them ------------------------------------------
TYPED = ("SELECT CAST(1.1 AS REAL) AS r, CAST('abc' AS VARCHAR(10)) AS v, CAST(1.25 AS DECIMAL(10,2)) AS d, "
         "TIME '12:34:56.789' AS t, TIMESTAMP '2020-01-01 01:02:03.456' AS ts, "
         "MAP(ARRAY[1, 2], ARRAY['one', 'two']) AS m, ROW('Bob', 38) AS anon, "
         "CAST(ROW(1, 'x') AS ROW(a INTEGER, b VARCHAR)) AS named, ARRAY[1.5E0, NULL] AS arr")


def test_column_info_and_values_are_athenas(athena):
    info, rows, _ = first_page(athena, TYPED)
    described = {c["Name"]: (c["Type"], c["Precision"], c["Scale"]) for c in info}
    assert described == {"r": ("float", 17, 0), "v": ("varchar", 10, 0), "d": ("decimal", 10, 2),
                         "t": ("time", 3, 0), "ts": ("timestamp", 3, 0), "m": ("map", 0, 0),
                         "anon": ("row", 0, 0), "named": ("row", 0, 0), "arr": ("array", 0, 0)}
    assert rows[1] == ["1.1", "abc", "1.25", "12:34:56.789", "2020-01-01 01:02:03.456", "{1=one, 2=two}",
                       "{field0=Bob, field1=38}", "{a=1, b=x}", "[1.5, null]"]
    assert all(c["Nullable"] == "UNKNOWN" and c["CatalogName"] == "hive" for c in info)


def test_declared_lengths_of_catalog_columns_are_reported(athena, stack):
    info, rows, _ = first_page(athena, "SELECT * FROM tapi_names")
    assert [(c["Name"], c["Type"], c["Precision"]) for c in info] == [
        ("tailnum", "varchar", 10), ("code", "char", 3), ("maker", "varchar", 2147483647)]
    assert rows[1] == ["N101", "abc", "Boeing"]
    cursor = pyathena_cursor(stack)
    cursor.execute("SELECT n.tailnum, upper(n.maker) AS maker FROM tapi_names n")
    assert cursor.description == [("tailnum", "varchar", None, None, 10, 0, "UNKNOWN"),
                                  ("maker", "varchar", None, None, 2147483647, 0, "UNKNOWN")]


def test_pyathena_converts_every_rendered_type(athena, stack):
    cursor = pyathena_cursor(stack)
    cursor.execute(TYPED)
    assert [d[1:] for d in cursor.description][:4] == [("float", None, None, 17, 0, "UNKNOWN"),
                                                       ("varchar", None, None, 10, 0, "UNKNOWN"),
                                                       ("decimal", None, None, 10, 2, "UNKNOWN"),
                                                       ("time", None, None, 3, 0, "UNKNOWN")]
    row = cursor.fetchone()
    assert row[:5] == (1.1, "abc", __import__("decimal").Decimal("1.25"), datetime.time(12, 34, 56, 789000),
                       datetime.datetime(2020, 1, 1, 1, 2, 3, 456000))
    assert row[5] == {"1": "one", "2": "two"} and row[7] == {"a": "1", "b": "x"}


def test_ctas_and_insert_return_counts_not_rows(athena, stack):
    ex = succeeded(athena, "CREATE TABLE tapi_ctas WITH (format = 'PARQUET', "
                           "external_location = 's3://tapi-lake/ctas/') AS SELECT * FROM tapi_names")
    result = athena.get_query_results(QueryExecutionId=ex["QueryExecutionId"])
    assert result["ResultSet"]["Rows"] == [] and result["UpdateCount"] == 1
    assert [(c["Name"], c["Type"]) for c in result["ResultSet"]["ResultSetMetadata"]["ColumnInfo"]] == [
        ("rows", "bigint")]
    key = ex["ResultConfiguration"]["OutputLocation"].split("/", 3)[3]
    assert stack.client("s3").get_object(Bucket=RESULTS, Key=key)["Body"].read() == b""
    inserted = succeeded(athena, "INSERT INTO tapi_ctas SELECT * FROM tapi_names UNION ALL SELECT * FROM tapi_names")
    result = athena.get_query_results(QueryExecutionId=inserted["QueryExecutionId"])
    assert result["ResultSet"]["Rows"] == [] and result["UpdateCount"] == 2
    cursor = pyathena_cursor(stack)
    cursor.execute("CREATE TABLE tapi_ctas2 WITH (format = 'PARQUET', external_location = 's3://tapi-lake/ctas2/') "
                   "AS SELECT maker FROM tapi_names")
    assert cursor.description == [("rows", "bigint", None, None, 19, 0, "UNKNOWN")]
    assert cursor.rowcount == 1 and cursor.fetchone() is None


def test_timings_are_measured_never_rounded_away(athena):
    ex = succeeded(athena, "SELECT count(*) FROM tapi_names")
    stats = ex["Statistics"]
    timings = {k: v for k, v in stats.items() if k.endswith("TimeInMillis")}
    assert set(timings) == {"TotalExecutionTimeInMillis", "ServicePreProcessingTimeInMillis",
                            "QueryQueueTimeInMillis", "QueryPlanningTimeInMillis",
                            "EngineExecutionTimeInMillis", "ServiceProcessingTimeInMillis"}
    assert all(v >= 1 for v in timings.values()), timings         # time passed in every stage
    assert timings["EngineExecutionTimeInMillis"] >= timings["QueryPlanningTimeInMillis"]
    assert timings["TotalExecutionTimeInMillis"] >= timings["EngineExecutionTimeInMillis"]


def test_pages_after_the_first_are_read_back_from_the_result_file(athena):
    sql = ("SELECT x, CASE WHEN x = 2000 THEN 'a\"b' || chr(10) || 'c' WHEN x = 2001 THEN '' END AS s "
           "FROM UNNEST(sequence(1, 2500)) AS t(x) ORDER BY x")
    qid = succeeded(athena, sql)["QueryExecutionId"]
    for size in (1000, 700):
        rows, token = [], None
        while True:
            page = athena.get_query_results(QueryExecutionId=qid, MaxResults=size,
                                            **({"NextToken": token} if token else {}))
            rows += values(page)
            token = page.get("NextToken")
            if not token:
                break
        assert rows[0] == ["x", "s"] and len(rows) == 2501
        assert [int(r[0]) for r in rows[1:]] == list(range(1, 2501))
        assert rows[2000] == ["2000", 'a"b\nc'] and rows[2001] == ["2001", ""] and rows[2002] == ["2002", None]


# -- Hive text: collections, maps, structs, binary ----------------------------------
def test_lazy_simple_serde_reads_collections_maps_structs_and_binary(athena):
    _, rows, _ = first_page(athena, "SELECT * FROM tapi_text ORDER BY id")
    assert rows[1:] == [["1", "[a, b, c]", "{k1=1, k2=2}", "{n=5, s=five}", "68 65 6c 6c 6f"],
                        ["2", "[]", None, None, None]]
    _, rows, _ = first_page(athena, "SELECT cardinality(tags), counts['k2'], info.s FROM tapi_text WHERE id = 1")
    assert rows[1] == ["3", "2", "five"]
    _, rows, _ = first_page(athena, "SELECT id, tags, counts['k'] FROM tapi_custom")
    assert rows[1] == ["3", "[x, y]", "7"]
    _, rows, _ = first_page(athena, "SELECT id, tags, counts FROM tapi_serde")
    assert rows[1] == ["4", "[p, q]", "{m=8, n=9}"]


# -- UNLOAD --------------------------------------------------------------------------
def test_unload_of_an_empty_result_writes_no_file(athena, stack):
    ex = succeeded(athena, "UNLOAD (SELECT * FROM tapi_names WHERE maker = 'nobody') "
                           "TO 's3://tapi-lake/unload/empty/' WITH (format = 'PARQUET')")
    s3 = stack.client("s3")
    assert s3.list_objects_v2(Bucket=LAKE, Prefix="unload/empty/").get("KeyCount") == 0
    manifest = ex["Statistics"]["DataManifestLocation"].split("/", 3)[3]
    assert s3.get_object(Bucket=RESULTS, Key=manifest)["Body"].read() == b""


def test_unload_writes_timestamps_as_athena_does(athena, stack):
    succeeded(athena, "UNLOAD (SELECT TIMESTAMP '2020-01-01 01:02:03.456789' AS ts) "
                      "TO 's3://tapi-lake/unload/ts/' WITH (format = 'PARQUET')")
    s3 = stack.client("s3")
    key = s3.list_objects_v2(Bucket=LAKE, Prefix="unload/ts/")["Contents"][0]["Key"]
    data = io.BytesIO(s3.get_object(Bucket=LAKE, Key=key)["Body"].read())
    assert pq.ParquetFile(data).schema.column(0).physical_type == "INT96"        # as Hive writes them
    table = pq.read_table(data, coerce_int96_timestamp_unit="us")
    assert table.column("ts").to_pylist() == [datetime.datetime(2020, 1, 1, 1, 2, 3, 456000)]   # milliseconds


# -- result reuse ----------------------------------------------------------------------
REUSE = {"ResultReuseByAgeConfiguration": {"Enabled": True, "MaxAgeInMinutes": 5}}


def test_result_reuse_returns_the_previous_result(athena):
    sql = "SELECT maker, count(*) AS n FROM tapi_names GROUP BY maker"
    first = succeeded(athena, sql, ResultReuseConfiguration=REUSE)
    again = succeeded(athena, sql, ResultReuseConfiguration=REUSE)
    assert first["Statistics"]["ResultReuseInformation"] == {"ReusedPreviousResult": False}
    assert again["Statistics"]["ResultReuseInformation"] == {"ReusedPreviousResult": True}
    assert again["Statistics"]["DataScannedInBytes"] == 0 < first["Statistics"]["DataScannedInBytes"]
    assert again["ResultReuseConfiguration"] == REUSE
    assert again["ResultConfiguration"]["OutputLocation"] == first["ResultConfiguration"]["OutputLocation"]
    results = [values(athena.get_query_results(QueryExecutionId=e["QueryExecutionId"])) for e in (first, again)]
    assert results[0] == results[1]
    not_reused = [succeeded(athena, sql),                                       # reuse not asked for
                  succeeded(athena, sql + " ", ResultReuseConfiguration=REUSE),   # another query text
                  succeeded(athena, sql, ResultReuseConfiguration=REUSE,         # another result location
                            ResultConfiguration={"OutputLocation": f"s3://{RESULTS}/elsewhere/"})]
    assert not any(e["Statistics"]["ResultReuseInformation"]["ReusedPreviousResult"] for e in not_reused)


def test_result_reuse_stops_after_a_table_changes(athena):
    sql = "SELECT count(*) FROM tapi_names"
    succeeded(athena, sql, ResultReuseConfiguration=REUSE)
    succeeded(athena, "CREATE EXTERNAL TABLE tapi_changed (a int) LOCATION 's3://tapi-lake/changed/'")
    after = succeeded(athena, sql, ResultReuseConfiguration=REUSE)
    assert after["Statistics"]["ResultReuseInformation"]["ReusedPreviousResult"] is False
    zero_age = {"ResultReuseByAgeConfiguration": {"Enabled": True, "MaxAgeInMinutes": 0}}
    assert not execute(athena, sql, ResultReuseConfiguration=zero_age)["Statistics"][
        "ResultReuseInformation"]["ReusedPreviousResult"]
    with pytest.raises(botocore.exceptions.ClientError, match="MaxAgeInMinutes"):
        execute(athena, sql, ResultReuseConfiguration={
            "ResultReuseByAgeConfiguration": {"Enabled": True, "MaxAgeInMinutes": 20000}})


def test_pyathena_result_reuse(athena, stack):
    cursor = pyathena_cursor(stack, result_reuse_enable=True, result_reuse_minutes=5)
    cursor.execute("SELECT code FROM tapi_names")
    assert not cursor.reused_previous_result
    cursor.execute("SELECT code FROM tapi_names")
    assert cursor.reused_previous_result and cursor.result_reuse_minutes == 5
    assert cursor.fetchall() == [("abc",)]


# -- the catalog API ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def lambda_catalog(athena, create_function):
    arn = create_function("tapi-connector", CONNECTOR, handler="app.handler")\
        .get_function(FunctionName="tapi-connector")["Configuration"]["FunctionArn"]
    athena.create_data_catalog(Name="tapi_fed", Type="LAMBDA", Parameters={"function": arn})
    return "tapi_fed"


def test_data_catalogs_include_aws_data_catalog(athena, lambda_catalog, stack):
    athena.create_data_catalog(Name="tapi_fed_copy", Type="LAMBDA",
                               Parameters=athena.get_data_catalog(Name=lambda_catalog)["DataCatalog"]["Parameters"])
    summaries = athena.list_data_catalogs()["DataCatalogsSummary"]
    assert summaries[0] == {"CatalogName": "AwsDataCatalog", "Type": "GLUE"}
    assert {"CatalogName": lambda_catalog, "Type": "LAMBDA"} in summaries
    first = athena.list_data_catalogs(MaxResults=2)
    assert len(first["DataCatalogsSummary"]) == 2 and "NextToken" in first
    glue = athena.get_data_catalog(Name="AwsDataCatalog")["DataCatalog"]
    assert glue["Type"] == "GLUE" and glue["Parameters"] == {"catalog-id": stack.context.account_id}
    assert athena.get_data_catalog(Name=lambda_catalog)["DataCatalog"]["Type"] == "LAMBDA"
    with pytest.raises(athena.exceptions.InvalidRequestException):
        athena.get_data_catalog(Name="tapi_no_such_catalog")


def test_databases_and_tables_come_from_glue(athena, stack):
    names, token = [], None
    while True:
        page = athena.list_databases(CatalogName="AwsDataCatalog", MaxResults=1,
                                     **({"NextToken": token} if token else {}))
        names += [d["Name"] for d in page["DatabaseList"]]
        token = page.get("NextToken")
        if not token:
            break
    glue_names = [d["Name"] for d in stack.client("glue").get_databases()["DatabaseList"]]
    assert sorted(names) == sorted(glue_names) and "tapi" in names
    assert athena.get_database(CatalogName="AwsDataCatalog", DatabaseName="tapi")["Database"]["Name"] == "tapi"
    tables = athena.list_table_metadata(CatalogName="AwsDataCatalog", DatabaseName="tapi",
                                        Expression="tapi_(text|custom)")["TableMetadataList"]
    assert [t["Name"] for t in tables] == ["tapi_custom", "tapi_text"]
    meta = athena.get_table_metadata(CatalogName="AwsDataCatalog", DatabaseName="tapi",
                                     TableName="tapi_custom")["TableMetadata"]
    assert meta["TableType"] == "EXTERNAL_TABLE"
    assert meta["Columns"] == [{"Name": "id", "Type": "int"}, {"Name": "tags", "Type": "array<string>"},
                               {"Name": "counts", "Type": "map<string,int>"}]
    params = meta["Parameters"]
    assert params["location"] == "s3://tapi-lake/text/custom/"
    assert params["serde.serialization.lib"] == "org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe"
    assert params["serde.param.collection.delim"] == "|" and params["inputformat"].endswith("TextInputFormat")


def test_missing_databases_and_tables_are_metadata_exceptions(athena):
    for call in (lambda: athena.get_database(CatalogName="AwsDataCatalog", DatabaseName="tapi_nope"),
                 lambda: athena.get_table_metadata(CatalogName="AwsDataCatalog", DatabaseName="tapi",
                                                   TableName="nope"),
                 lambda: athena.list_table_metadata(CatalogName="AwsDataCatalog", DatabaseName="tapi_nope")):
        with pytest.raises(athena.exceptions.MetadataException) as err:
            call()
        assert "Error Code: EntityNotFoundException" in err.value.response["Error"]["Message"]


def test_a_lambda_catalog_is_listed_by_its_connector(athena, lambda_catalog):
    assert athena.list_databases(CatalogName=lambda_catalog)["DatabaseList"] == [{"Name": "main"}]
    tables = athena.list_table_metadata(CatalogName=lambda_catalog, DatabaseName="main")["TableMetadataList"]
    assert [(t["Name"], [c["Name"] for c in t["Columns"]]) for t in tables] == [("planes", ["tailnum", "seats"])]
    with pytest.raises(athena.exceptions.MetadataException, match="not found"):
        athena.get_table_metadata(CatalogName=lambda_catalog, DatabaseName="main", TableName="nope")


def test_pyathena_reflection(athena, stack):
    from pyathena.error import OperationalError
    cursor = pyathena_cursor(stack)
    assert "tapi" in [d.name for d in cursor.list_databases("AwsDataCatalog")]
    meta = cursor.get_table_metadata("tapi_names")
    assert [c.name for c in meta.columns] == ["tailnum", "code", "maker"] and meta.location == "s3://tapi-lake/names/"
    assert "tapi_names" in [t.name for t in cursor.list_table_metadata()]
    with pytest.raises(OperationalError, match="EntityNotFoundException"):
        cursor.get_table_metadata("tapi_no_such_table")


# -- big results: bounded memory, cancellable at any stage ----------------------------------
class PeakRSS:
    """The highest resident memory of this process (the stack runs in it), sampled every 20 ms."""

    def __init__(self):
        self.process, self.done = psutil.Process(), threading.Event()
        self.start = self.peak = self.process.memory_info().rss
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()

    def _sample(self):
        while not self.done.wait(0.02):
            self.peak = max(self.peak, self.process.memory_info().rss)

    def growth_mb(self) -> float:
        self.done.set()
        self.thread.join()
        return (self.peak - self.start) / 2**20


def test_a_large_result_streams_to_s3_in_bounded_memory(athena, stack):
    """3 million rows: rendered as Python rows they took 860 MB; streamed, the process grows
    by about 200 MB, mostly the emulated S3's own copies of the 24 MB file as it is uploaded."""
    rss = PeakRSS()
    ex = succeeded(athena, "SELECT a.x % 10 AS x, b.y % 10 AS y FROM UNNEST(sequence(1, 3000)) AS a(x) "
                           "CROSS JOIN UNNEST(sequence(1, 1000)) AS b(y)")
    growth = rss.growth_mb()
    key = ex["ResultConfiguration"]["OutputLocation"].split("/", 3)[3]
    size = stack.client("s3").head_object(Bucket=RESULTS, Key=key)["ContentLength"]
    assert size == len('"x","y"\n') + 3_000_000 * len('"1","2"\n')
    assert growth < 450, f"the process grew by {growth:.0f} MB"
    assert stack.client("athena").get_query_runtime_statistics(QueryExecutionId=ex["QueryExecutionId"])[
        "QueryRuntimeStatistics"]["Rows"]["OutputRows"] == 3_000_000


def test_stop_cancels_while_the_result_is_being_written(athena, stack):
    s3 = stack.client("s3")
    rss = PeakRSS()
    qid = athena.start_query_execution(
        QueryString="SELECT a.x, b.y FROM UNNEST(sequence(1, 6000)) AS a(x) "
                    "CROSS JOIN UNNEST(sequence(1, 6000)) AS b(y)",
        QueryExecutionContext={"Database": "tapi"}, ResultConfiguration={"OutputLocation": OUT})["QueryExecutionId"]

    def writing():     # the CSV is being uploaded in parts: rows are rendered and written now
        return any(u["Key"] == f"out/{qid}.csv" for u in s3.list_multipart_uploads(Bucket=RESULTS).get("Uploads", []))
    deadline = time.monotonic() + 120
    while not writing():
        assert time.monotonic() < deadline, "the result never started streaming to S3"
        time.sleep(0.05)
    athena.stop_query_execution(QueryExecutionId=qid)
    ex = wait_for_query(athena, qid, timeout=120)
    assert ex["Status"]["State"] == "CANCELLED"
    assert ex["Status"]["StateChangeReason"] == "Query was cancelled by user"
    assert not writing()                                                  # the upload was aborted
    assert s3.list_objects_v2(Bucket=RESULTS, Prefix=f"out/{qid}.csv").get("KeyCount") == 0
    assert rss.growth_mb() < 450
