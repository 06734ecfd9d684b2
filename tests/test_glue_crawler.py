"""The Glue crawler engine: real S3 files in, Glue tables and partitions out, Athena reads them.

Each test writes a few small files to its own bucket, calls ``crawl()`` (the
function StartCrawler runs in the background) with the stack's clients, and
checks the Data Catalog as ``glue.get_table`` shows it, the log lines, and,
for three tables, what Athena answers.
"""
from __future__ import annotations

import datetime
import decimal
import gzip
import json
import threading

import pyarrow as pa
import pytest

from localaws.athena import run_query
from localaws.core.tables import encode
from localaws.core import grok as grok_patterns
from localaws.glue.crawler import crawl

EVERYTHING = {"UpdateBehavior": "UPDATE_IN_DATABASE", "DeleteBehavior": "DEPRECATE_IN_DATABASE"}


class Lake:
    """One bucket and one database for a test, and a crawler over them."""

    def __init__(self, stack, unique):
        self.glue, self.s3, self.athena = stack.client("glue"), stack.client("s3"), stack.client("athena")
        self.bucket = unique("crawl")
        self.db = self.bucket.replace("-", "_")
        self.s3.create_bucket(Bucket=self.bucket)
        self.glue.create_database(DatabaseInput={"Name": self.db})
        self.lines: list[str] = []

    def put(self, key: str, body: bytes | str) -> None:
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=body.encode() if isinstance(body, str) else body)

    def delete(self, key: str) -> None:
        self.s3.delete_object(Bucket=self.bucket, Key=key)

    def crawler(self, path: str = "", **fields) -> dict:
        target = {"Path": f"s3://{self.bucket}/{path}"}
        target.update(fields.pop("target", {}))
        return {"Name": fields.pop("Name", "crawler-" + self.bucket), "DatabaseName": self.db,
                "Targets": {"S3Targets": [target]}, "SchemaChangePolicy": dict(EVERYTHING), **fields}

    def crawl(self, crawler: dict, classifiers=(), previous=None, stop=None):
        self.lines.clear()
        return crawl(self.glue, self.s3, crawler, list(classifiers), previous, stop or threading.Event(),
                     self.lines.append)

    def table(self, name: str) -> dict:
        return self.glue.get_table(DatabaseName=self.db, Name=name)["Table"]

    def tables(self) -> list[str]:
        return sorted(t["Name"] for t in self.glue.get_tables(DatabaseName=self.db)["TableList"])

    def partitions(self, name: str) -> list[dict]:
        found = self.glue.get_partitions(DatabaseName=self.db, TableName=name)["Partitions"]
        return sorted(found, key=lambda p: p["Values"])

    def query(self, sql: str):
        return run_query(self.athena, sql, database=self.db, output=f"s3://{self.bucket}/athena-results/")


@pytest.fixture
def lake(stack, unique):
    return Lake(stack, unique)


def columns(table: dict) -> list[tuple[str, str]]:
    return [(c["Name"], c["Type"]) for c in table["StorageDescriptor"]["Columns"]]


def serde(table: dict) -> tuple[str, dict]:
    info = table["StorageDescriptor"]["SerdeInfo"]
    return info["SerializationLibrary"], info.get("Parameters", {})


# ================================================================ CSV
def test_headed_csv_gets_types_and_skip_header(lake):
    lake.put("data/sales/part-1.csv", "id,product,price,in_stock\n1,apple,1.5,true\n2,pear,2.25,false\n"
                                      "3,plum,0.5,true\n")
    out = lake.crawl(lake.crawler("data/sales/"))
    assert out.error is None and out.tables_created == ["sales"]
    table = lake.table("sales")
    assert columns(table) == [("id", "bigint"), ("product", "string"), ("price", "double"),
                              ("in_stock", "boolean")]
    assert serde(table) == ("org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe", {"field.delim": ","})
    assert table["TableType"] == "EXTERNAL_TABLE"
    assert table["StorageDescriptor"]["Location"] == f"s3://{lake.bucket}/data/sales/"
    assert table["StorageDescriptor"]["InputFormat"] == "org.apache.hadoop.mapred.TextInputFormat"
    params = table["Parameters"]
    assert {k: params[k] for k in ("classification", "compressionType", "typeOfData", "skip.header.line.count",
                                   "delimiter", "areColumnsQuoted", "columnsOrdered", "recordCount",
                                   "objectCount", "UPDATED_BY_CRAWLER", "CrawlerSchemaSerializerVersion")} == {
        "classification": "csv", "compressionType": "none", "typeOfData": "file", "skip.header.line.count": "1",
        "delimiter": ",", "areColumnsQuoted": "false", "columnsOrdered": "true", "recordCount": "3",
        "objectCount": "1", "UPDATED_BY_CRAWLER": "crawler-" + lake.bucket, "CrawlerSchemaSerializerVersion": "1.0"}
    assert int(params["sizeKey"]) == lake.s3.head_object(Bucket=lake.bucket, Key="data/sales/part-1.csv")[
        "ContentLength"]


def test_crawl_logs_glue_lines(lake):
    lake.put("data/sales/a.csv", "id,price\n1,2.5\n2,3.5\n")
    lake.crawl(lake.crawler("data/sales/", Name="nightly"))
    assert lake.lines == [          # engine.py adds the first and last lines, and the crawl id
        f"BENCHMARK : Classification complete, writing results to database {lake.db}",
        'INFO : Crawler configured with SchemaChangePolicy '
        '{"UpdateBehavior":"UPDATE_IN_DATABASE","DeleteBehavior":"DEPRECATE_IN_DATABASE"}.',
        f"INFO : Created table sales in database {lake.db}",
        "BENCHMARK : Finished writing to Catalog",
        "INFO : Run Summary For TABLE:",
        "INFO : ADD: 1",
    ]


def test_headerless_csv_gets_col_names(lake):
    lake.put("raw/readings/r.csv", "1,sensor-a,20.5\n2,sensor-b,21.0\n3,sensor-c,19.75\n")
    # only strings: the first row is not "sufficiently different" from the others, so it is data
    lake.put("raw/cities/c.csv", "name,country\nparis,france\nlima,peru\n")
    lake.crawl(lake.crawler("raw/"))
    readings = lake.table("readings")
    assert columns(readings) == [("col0", "bigint"), ("col1", "string"), ("col2", "double")]
    assert "skip.header.line.count" not in readings["Parameters"]
    cities = lake.table("cities")
    assert columns(cities) == [("col0", "string"), ("col1", "string")]
    assert cities["Parameters"]["recordCount"] == "3"


def test_quoted_csv_uses_open_csv_serde_and_athena_reads_it(lake):
    lake.put("q/people/p.csv", 'id,name,city\n1,"Doe, Jane",Paris\n2,"Roe, Richard",Lima\n')
    lake.crawl(lake.crawler("q/people/"))
    table = lake.table("people")
    assert serde(table) == ("org.apache.hadoop.hive.serde2.OpenCSVSerde", {"separatorChar": ",", "quoteChar": '"'})
    assert table["Parameters"]["areColumnsQuoted"] == "true"
    assert columns(table) == [("id", "bigint"), ("name", "string"), ("city", "string")]
    df, _ = lake.query("SELECT name FROM people ORDER BY id")
    assert list(df["name"]) == ["Doe, Jane", "Roe, Richard"]


def test_gzip_csv_is_read_and_marked(lake):
    body = gzip.compress(b"id,amount\n1,10.5\n2,20.25\n3,5.0\n")
    lake.put("z/orders/o.csv.gz", body)
    lake.crawl(lake.crawler("z/orders/"))
    table = lake.table("orders")
    assert table["Parameters"]["compressionType"] == "gzip"
    assert table["StorageDescriptor"]["Compressed"] is True
    assert columns(table) == [("id", "bigint"), ("amount", "double")]
    df, _ = lake.query("SELECT sum(amount) AS total FROM orders")
    assert df["total"][0] == pytest.approx(35.75)


def test_csv_with_other_delimiters(lake):
    lake.put("d/pipes/a.txt", "id|score\n1|0.5\n2|0.75\n")
    lake.put("d/tabs/a.tsv", "id\tscore\n1\t0.5\n2\t0.75\n")
    lake.crawl(lake.crawler("d/"))
    assert serde(lake.table("pipes"))[1] == {"field.delim": "|"}
    assert serde(lake.table("tabs"))[1] == {"field.delim": "\t"}
    assert columns(lake.table("tabs")) == [("id", "bigint"), ("score", "double")]


# ================================================================ JSON
def test_json_lines_with_nested_fields(lake):
    rows = [{"id": 1, "user": {"name": "ana", "age": 31}, "tags": ["a", "b"], "score": 1.5, "ok": True},
            {"id": 2, "user": {"name": "bo", "age": 40, "vip": True}, "tags": [], "score": 2, "big": 2**40}]
    lake.put("j/events/e.json", "\n".join(json.dumps(r) for r in rows) + "\n")
    lake.crawl(lake.crawler("j/events/"))
    table = lake.table("events")
    assert columns(table) == [("id", "int"), ("user", "struct<name:string,age:int,vip:boolean>"),
                              ("tags", "array<string>"), ("score", "double"), ("ok", "boolean"),
                              ("big", "bigint")]
    assert serde(table) == ("org.openx.data.jsonserde.JsonSerDe", {"paths": "id,user,tags,score,ok,big"})
    assert table["Parameters"]["classification"] == "json"
    df, _ = lake.query("SELECT id, user.name AS name, user.age AS age FROM events ORDER BY id")
    assert list(df["name"]) == ["ana", "bo"] and list(df["age"]) == [31, 40]


def test_custom_json_classifier_reads_records_of_an_array(lake):
    doc = {"records": [{"id": 1, "v": "x"}, {"id": 2, "v": "y", "w": 1.5}]}
    lake.put("arr/docs/d.json", json.dumps(doc, indent=2))
    lake.put("arr2/items/i.json", json.dumps([{"k": "a"}, {"k": "b"}]))
    custom = [{"JsonClassifier": {"Name": "records", "JsonPath": "$.records[*]"}}]
    lake.crawl(lake.crawler("arr/docs/"), custom)
    table = lake.table("docs")
    assert columns(table) == [("id", "int"), ("v", "string"), ("w", "double")]
    assert table["Parameters"]["recordCount"] == "2"
    lake.crawl(lake.crawler("arr2/items/"), [{"JsonClassifier": {"Name": "array", "JsonPath": "$[*]"}}])
    assert columns(lake.table("items")) == [("k", "string")]


# ================================================================ columnar and Avro
TYPED = pa.table({
    "i32": pa.array([1, 2], pa.int32()), "i64": pa.array([3, 4], pa.int64()),
    "f64": pa.array([0.5, 1.5], pa.float64()), "s": ["a", "b"], "b": [True, False],
    "ts": pa.array([datetime.datetime(2024, 1, 1, 12), datetime.datetime(2024, 1, 2)], pa.timestamp("ms")),
    "d": pa.array([datetime.date(2024, 1, 1), datetime.date(2024, 1, 2)], pa.date32()),
    "dec": pa.array([decimal.Decimal("1.25"), decimal.Decimal("2.50")], pa.decimal128(10, 2)),
    "arr": pa.array([[1, 2], []], pa.list_(pa.int64())),
    "st": pa.array([{"x": 1, "y": "u"}, {"x": 2, "y": "v"}], pa.struct([("x", pa.int32()), ("y", pa.string())])),
})
TYPED_GLUE = [("i32", "int"), ("i64", "bigint"), ("f64", "double"), ("s", "string"), ("b", "boolean"),
              ("ts", "timestamp"), ("d", "date"), ("dec", "decimal(10,2)"), ("arr", "array<bigint>"),
              ("st", "struct<x:int,y:string>")]


def test_parquet_schema_is_inferred_from_the_footer(lake):
    lake.put("p/typed/f.snappy.parquet", encode(TYPED, "parquet", "snappy"))
    lake.crawl(lake.crawler("p/typed/"))
    table = lake.table("typed")
    assert columns(table) == TYPED_GLUE
    assert serde(table) == ("org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
                            {"serialization.format": "1"})
    sd = table["StorageDescriptor"]
    assert sd["InputFormat"] == "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
    assert table["Parameters"]["classification"] == "parquet"
    assert table["Parameters"]["compressionType"] == "none"       # snappy is inside the format
    assert table["Parameters"]["recordCount"] == "2"


def test_orc_schema(lake):
    lake.put("o/typed/f.orc", encode(TYPED.drop_columns(["ts"]), "orc", "zstd"))
    lake.crawl(lake.crawler("o/typed/"))
    table = lake.table("typed")
    assert columns(table) == [c for c in TYPED_GLUE if c[0] != "ts"]
    assert serde(table)[0] == "org.apache.hadoop.hive.ql.io.orc.OrcSerde"
    assert table["StorageDescriptor"]["InputFormat"] == "org.apache.hadoop.hive.ql.io.orc.OrcInputFormat"
    df, _ = lake.query("SELECT i64, st.y AS y FROM typed ORDER BY i64")
    assert list(df["y"]) == ["u", "v"]


def test_avro_schema_and_literal(lake):
    data = pa.table({"id": pa.array([1, 2, 3], pa.int64()), "name": ["a", "b", None], "w": [0.5, 1.0, 2.0]})
    lake.put("a/things/t.avro", encode(data, "avro", "deflate"))
    lake.crawl(lake.crawler("a/things/"))
    table = lake.table("things")
    assert columns(table) == [("id", "bigint"), ("name", "string"), ("w", "double")]
    lib, params = serde(table)
    assert lib == "org.apache.hadoop.hive.serde2.avro.AvroSerDe"
    literal = json.loads(params["avro.schema.literal"])
    assert [f["name"] for f in literal["fields"]] == ["id", "name", "w"]
    assert table["Parameters"]["avro.schema.literal"] == params["avro.schema.literal"]
    assert table["Parameters"]["recordCount"] == "3"
    df, _ = lake.query("SELECT count(*) AS n, sum(w) AS w FROM things")
    assert (df["n"][0], df["w"][0]) == (3, 3.5)


# ================================================================ partitions and tables
def parquet_rows(*ids):
    return encode(pa.table({"id": pa.array(ids, pa.int64()), "amount": [float(i) * 10 for i in ids]}), "parquet")


def test_hive_partitions_year_month(lake):
    for year, month, ids in (("2024", "01", [1, 2]), ("2024", "02", [3]), ("2025", "01", [4, 5, 6])):
        lake.put(f"lake/sales/year={year}/month={month}/part-0.parquet", parquet_rows(*ids))
    out = lake.crawl(lake.crawler("lake/sales/"))
    assert out.tables_created == ["sales"] and out.partitions_created == 3
    table = lake.table("sales")
    assert table["PartitionKeys"] == [{"Name": "year", "Type": "string"}, {"Name": "month", "Type": "string"}]
    assert columns(table) == [("id", "bigint"), ("amount", "double")]
    assert table["Parameters"]["recordCount"] == "6" and table["Parameters"]["objectCount"] == "3"
    parts = lake.partitions("sales")
    assert [p["Values"] for p in parts] == [["2024", "01"], ["2024", "02"], ["2025", "01"]]
    assert [p["StorageDescriptor"]["Location"] for p in parts] == [
        f"s3://{lake.bucket}/lake/sales/year=2024/month=01/", f"s3://{lake.bucket}/lake/sales/year=2024/month=02/",
        f"s3://{lake.bucket}/lake/sales/year=2025/month=01/"]
    assert parts[2]["Parameters"]["recordCount"] == "3"
    assert "INFO : Run Summary For PARTITION:" in lake.lines and "INFO : ADD: 3" in lake.lines


def test_unnamed_partition_folders(lake):
    for day in ("01", "02"):
        lake.put(f"logs/2024/03/{day}/events.json", '{"level": "INFO", "n": 1}\n')
    lake.crawl(lake.crawler("logs/"))
    table = lake.table("logs")
    assert [k["Name"] for k in table["PartitionKeys"]] == ["partition_0", "partition_1", "partition_2"]
    assert [p["Values"] for p in lake.partitions("logs")] == [["2024", "03", "01"], ["2024", "03", "02"]]


def test_folders_with_different_schemas_are_two_tables(lake):
    lake.put("mixed/customers/c.csv", "customer_id,name\n1,ana\n2,bo\n")
    lake.put("mixed/orders/o.csv", "order_id,total,paid\n10,9.5,true\n11,3.0,false\n")
    out = lake.crawl(lake.crawler("mixed/"))
    assert sorted(out.tables_created) == ["customers", "orders"]
    assert lake.table("customers")["PartitionKeys"] == []


def test_similar_folders_become_partitions_of_the_include_path(lake):
    # the documented example: table1/ and table2/ with similar schemas under one include path
    for folder, part in (("table1", "p1"), ("table1", "p2"), ("table2", "p4")):
        lake.put(f"folder1/{folder}/{part}/file.csv", "id,v\n1,2.5\n2,3.5\n")
    lake.crawl(lake.crawler("folder1/"))
    assert lake.tables() == ["folder1"]
    table = lake.table("folder1")
    assert [k["Name"] for k in table["PartitionKeys"]] == ["partition_0", "partition_1"]
    assert [p["Values"] for p in lake.partitions("folder1")] == [["table1", "p1"], ["table1", "p2"], ["table2", "p4"]]


def test_combine_compatible_schemas_makes_one_table(lake):
    # the documented example: {"A": 1, "B": 2} and {"C": 3, "D": 4} in year=2017/ and year=2018/
    for root in ("t1", "t2"):
        lake.put(f"{root}/year=2017/data1.json", '{"A": 1, "B": 2}\n')
        lake.put(f"{root}/year=2018/data2.json", '{"C": 3, "D": 4}\n')
    lake.crawl(lake.crawler("t1/"))
    assert lake.tables() == ["year_2017", "year_2018"]            # not similar: a table each
    config = json.dumps({"Version": 1.0, "Grouping": {"TableGroupingPolicy": "CombineCompatibleSchemas"}})
    lake.crawl(lake.crawler("t2/", Name="combining", Configuration=config))
    table = lake.table("t2")
    assert columns(table) == [("a", "int"), ("b", "int"), ("c", "int"), ("d", "int")]
    assert table["PartitionKeys"] == [{"Name": "year", "Type": "string"}]
    assert any(line.startswith("INFO : Crawler configured with Configuration {") for line in lake.lines)


def test_table_level_configuration_puts_tables_at_that_level(lake):
    for table in ("t1", "t2"):
        for year in ("2023", "2024"):
            lake.put(f"lvl/db1/{table}/year={year}/f.parquet", parquet_rows(1, 2))
    lake.crawl(lake.crawler("lvl/", Name="default-" + lake.bucket))
    assert lake.tables() == ["lvl"]                      # similar all the way up: one table
    lake.glue.delete_table(DatabaseName=lake.db, Name="lvl")
    config = json.dumps({"Version": 1.0, "Grouping": {"TableLevelConfiguration": 4}})   # bucket/lvl/db1/t1
    lake.crawl(lake.crawler("lvl/", Configuration=config))
    assert lake.tables() == ["t1", "t2"]
    assert lake.table("t1")["PartitionKeys"] == [{"Name": "year", "Type": "string"}]


def test_crawler_output_options(lake):
    lake.put("o/users/year=2024/a.json", '{"id": 1, "name": "ana"}\n')
    config = json.dumps({"Version": 1.0, "CrawlerOutput": {
        "Tables": {"AddOrUpdateBehavior": "MergeNewColumns"},
        "Partitions": {"AddOrUpdateBehavior": "InheritFromTable"}}})
    crawler = lake.crawler("o/users/", Configuration=config)
    lake.crawl(crawler)
    lake.put("o/users/year=2025/b.json", '{"id": 1099511627776, "name": "bo", "email": "b@x"}\n')
    out = lake.crawl(crawler)
    assert out.tables_updated == ["users"]
    # new columns only: id keeps its type (int), though the new file needs a bigint
    assert columns(lake.table("users")) == [("id", "int"), ("name", "string"), ("email", "string")]
    for part in lake.partitions("users"):          # every partition takes the table's columns
        assert [c["Name"] for c in part["StorageDescriptor"]["Columns"]] == ["id", "name", "email"]


def test_table_prefix_and_names(lake):
    lake.put("src/My-Data.v2/x.csv", "id,v\n1,0.5\n2,1.5\n")
    lake.crawl(lake.crawler("src/My-Data.v2/", TablePrefix="raw_"))
    assert lake.tables() == ["raw_my_data_v2"]


def test_exclusions(lake):
    lake.put("ex/departments/finance.json", '{"a": 1}\n')
    lake.put("ex/employees/hr.json", '{"name": "x", "age": 3}\n')
    lake.put("ex/employees/john.csv", "id,name\n1,john\n")
    lake.put("ex/employees/jane.csv", "id,name\n2,jane\n")
    lake.put("ex/managers/m.parquet", parquet_rows(1))
    crawler = lake.crawler("ex/", target={"Exclusions": ["departments/**", "**.csv"]})
    lake.crawl(crawler)
    assert lake.tables() == ["employees", "managers"]
    table = lake.table("employees")
    assert table["Parameters"]["classification"] == "json" and table["Parameters"]["objectCount"] == "1"
    assert json.loads(table["Parameters"]["exclusions"]) == [f"s3://{lake.bucket}/ex/departments/**",
                                                             f"s3://{lake.bucket}/ex/**.csv"]


def test_sample_size_reads_that_many_files_per_folder(lake):
    for i in range(4):
        lake.put(f"s/items/part-{i}.csv", "id,name\n" + "".join(f"{n},item{n}\n" for n in range(10)))
    reads = []
    counting = CountingS3(lake.s3, reads)
    crawl(lake.glue, counting, lake.crawler("s/items/", target={"SampleSize": 1}), [], None, threading.Event(),
          lake.lines.append)
    assert {key for key in reads} == {"s/items/part-0.csv"}
    table = lake.table("items")
    assert table["Parameters"]["objectCount"] == "4" and table["Parameters"]["recordCount"] == "40"


class CountingS3:
    """An S3 client that records the keys it reads."""

    def __init__(self, client, reads):
        self.client, self.reads = client, reads

    def get_object(self, **kwargs):
        self.reads.append(kwargs["Key"])
        return self.client.get_object(**kwargs)

    def __getattr__(self, name):
        return getattr(self.client, name)


# ================================================================ custom classifiers
def test_custom_csv_classifier_with_pipes_and_header(lake):
    # all strings: the built-in classifier would not take the first row as a header
    lake.put("c/pets/p.psv", "name|kind|owner\nrex|dog|ana\ntom|cat|bo\n")
    custom = [{"CsvClassifier": {"Name": "pipes", "Delimiter": "|", "QuoteSymbol": '"',
                                 "ContainsHeader": "PRESENT", "DisableValueTrimming": False,
                                 "AllowSingleColumn": False}}]
    lake.crawl(lake.crawler("c/pets/"), custom)
    table = lake.table("pets")
    assert columns(table) == [("name", "string"), ("kind", "string"), ("owner", "string")]
    assert serde(table)[1] == {"field.delim": "|"}
    assert table["Parameters"]["skip.header.line.count"] == "1"
    df, _ = lake.query("SELECT name FROM pets WHERE kind = 'cat'")
    assert list(df["name"]) == ["tom"]


def test_custom_csv_classifier_names_the_columns(lake):
    lake.put("h/m/m.csv", "1;2.5\n2;3.5\n")
    custom = [{"CsvClassifier": {"Name": "semi", "Delimiter": ";", "ContainsHeader": "ABSENT",
                                 "Header": ["id", "value"]}}]
    lake.crawl(lake.crawler("h/m/"), custom)
    assert columns(lake.table("m")) == [("id", "bigint"), ("value", "double")]


LOG_LINES = [
    "2024-03-01T10:00:00Z 10.0.0.1 GET /index.html 200 512",
    "2024-03-01T10:00:01Z 10.0.0.2 POST /api/orders 201 64",
    "2024-03-01T10:00:02Z 10.0.0.1 GET /missing 404 0",
]


def test_grok_classifier_makes_a_grok_serde_table(lake):
    lake.put("g/access/a.log", "\n".join(LOG_LINES) + "\n")
    pattern = ("%{TIMESTAMP_ISO8601:ts} %{IPV4:client} %{WORD:method} %{URIPATH:path} %{INT:status:int} "
               "%{SIZE:bytes:long}")
    custom = [{"GrokClassifier": {"Name": "access", "Classification": "access-logs", "GrokPattern": pattern,
                                  "CustomPatterns": "SIZE \\d+"}}]
    out = lake.crawl(lake.crawler("g/access/"), custom)
    assert out.tables_created == ["access"]
    table = lake.table("access")
    assert columns(table) == [("ts", "string"), ("client", "string"), ("method", "string"), ("path", "string"),
                              ("status", "int"), ("bytes", "bigint")]
    assert serde(table) == ("com.amazonaws.glue.serde.GrokSerDe",
                            {"input.format": pattern, "input.grokCustomPatterns": "SIZE \\d+"})
    assert table["Parameters"]["classification"] == "access-logs"
    assert table["StorageDescriptor"]["InputFormat"] == "org.apache.hadoop.mapred.TextInputFormat"
    assert table["Parameters"]["recordCount"] == "3"


def test_grok_translator():
    grok = grok_patterns.compile("%{TIMESTAMP_ISO8601:ts} %{IPV4:client} %{WORD:method} %{URIPATH:path} "
                              "%{INT:status:int} %{NUMBER:bytes:long}")
    assert grok.parse(LOG_LINES[1]) == {"ts": "2024-03-01T10:00:01Z", "client": "10.0.0.2", "method": "POST",
                                        "path": "/api/orders", "status": "201", "bytes": "64"}
    assert grok.parse("not a log line") is None
    apache = grok_patterns.compile("%{COMBINEDAPACHELOG}")
    fields = apache.parse('127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /a.gif HTTP/1.0" 200 2326 '
                          '"http://example.com/" "Mozilla/4.08"')
    assert (fields["clientip"], fields["verb"], fields["response"], fields["agent"]) == (
        "127.0.0.1", "GET", "200", '"Mozilla/4.08"')
    assert grok_patterns.compile("%{QUOTEDSTRING:q} %{LOGLEVEL:l} %{HTTPDATE:d}").parse(
        '"a \\" b" WARN 10/Oct/2000:13:55:36 -0700') == {"q": '"a \\" b"', "l": "WARN",
                                                        "d": "10/Oct/2000:13:55:36 -0700"}
    with pytest.raises(grok_patterns.GrokError):
        grok_patterns.compile("%{NO_SUCH_PATTERN:x}")


def test_builtin_apache_log_classifier(lake):
    line = '10.1.1.1 - - [10/Oct/2000:13:55:36 -0700] "GET /a HTTP/1.1" 200 12 "-" "curl/8"'
    lake.put("w/web/access.log", line + "\n" + line.replace("/a", "/b") + "\n")
    lake.crawl(lake.crawler("w/web/"))
    table = lake.table("web")
    assert table["Parameters"]["classification"] == "combined_apache"
    assert serde(table)[0] == "com.amazonaws.glue.serde.GrokSerDe"
    assert [n for n, _ in columns(table)][:3] == ["clientip", "ident", "auth"]


# ================================================================ recrawls
def test_update_in_database_adds_a_column_on_recrawl(lake):
    lake.put("u/users/a.json", '{"id": 1, "name": "ana"}\n')
    crawler = lake.crawler("u/users/")
    lake.crawl(crawler)
    lake.put("u/users/b.json", '{"id": 2, "name": "bo", "email": "bo@example.com"}\n')
    out = lake.crawl(crawler)
    assert out.tables_updated == ["users"] and out.tables_created == []
    assert columns(lake.table("users")) == [("id", "int"), ("name", "string"), ("email", "string")]
    assert "INFO : UPDATE: 1" in lake.lines
    again = lake.crawl(crawler)
    assert (again.tables_created, again.tables_updated) == ([], [])


def test_log_update_behavior_leaves_the_table(lake):
    lake.put("l/users/a.json", '{"id": 1, "name": "ana"}\n')
    crawler = lake.crawler("l/users/", SchemaChangePolicy={"UpdateBehavior": "LOG", "DeleteBehavior": "LOG"})
    lake.crawl(crawler)
    lake.put("l/users/b.json", '{"id": 2, "name": "bo", "email": "x"}\n')
    out = lake.crawl(crawler)
    assert out.tables_updated == []
    assert columns(lake.table("users")) == [("id", "int"), ("name", "string")]
    assert any("has a new schema (new columns email)" in line and "LOG" in line for line in lake.lines)


def test_recrawl_adds_new_partitions(lake):
    lake.put("r/sales/year=2024/p.parquet", parquet_rows(1, 2))
    crawler = lake.crawler("r/sales/")
    lake.crawl(crawler)
    lake.put("r/sales/year=2025/p.parquet", parquet_rows(3))
    out = lake.crawl(crawler)
    assert out.partitions_created == 1 and out.tables_created == []
    assert [p["Values"] for p in lake.partitions("sales")] == [["2024"], ["2025"]]
    assert lake.table("sales")["Parameters"]["recordCount"] == "3"


def test_deprecate_in_database_when_the_folder_is_gone(lake):
    lake.put("g/keep/k.csv", "id,v\n1,0.5\n2,1.5\n")
    lake.put("g/other/o.parquet", parquet_rows(1))
    lake.put("g/gone/g.json", '{"a": 1}\n')
    crawler = lake.crawler("g/")
    lake.crawl(crawler)
    lake.delete("g/gone/g.json")
    out = lake.crawl(crawler)
    assert out.tables_updated == ["gone"] and out.tables_deleted == []
    marked = lake.table("gone")["Parameters"]["DEPRECATED_BY_CRAWLER"]
    assert marked.isdigit() and len(marked) == 13                    # epoch milliseconds
    assert "DEPRECATED_BY_CRAWLER" not in lake.table("keep")["Parameters"]
    assert ("INFO : Table gone is marked deprecated because a matching schema was not found at the "
            "table's location.") in lake.lines


def test_delete_from_database_when_the_folder_is_gone(lake):
    lake.put("d/keep/k.csv", "id,v\n1,0.5\n2,1.5\n")
    lake.put("d/gone/g.json", '{"a": 1}\n')
    for year in ("2023", "2024"):
        lake.put(f"d/keep2/year={year}/p.parquet", parquet_rows(1))
    crawler = lake.crawler("d/", SchemaChangePolicy={"UpdateBehavior": "UPDATE_IN_DATABASE",
                                                     "DeleteBehavior": "DELETE_FROM_DATABASE"})
    lake.crawl(crawler)
    assert lake.tables() == ["gone", "keep", "keep2"]
    lake.delete("d/gone/g.json")
    lake.delete("d/keep2/year=2023/p.parquet")
    out = lake.crawl(crawler)
    assert out.tables_deleted == ["gone"] and out.partitions_deleted == 1
    assert lake.tables() == ["keep", "keep2"]
    assert [p["Values"] for p in lake.partitions("keep2")] == [["2024"]]


def test_crawl_new_folders_only_reads_only_the_new_folder(lake):
    lake.put("n/sales/year=2024/p.parquet", parquet_rows(1, 2))
    crawler = lake.crawler("n/sales/", RecrawlPolicy={"RecrawlBehavior": "CRAWL_NEW_FOLDERS_ONLY"},
                           SchemaChangePolicy={"UpdateBehavior": "LOG", "DeleteBehavior": "LOG"})
    first = lake.crawl(crawler)
    assert first.tables_created == ["sales"]
    # an old folder changes (a new column) and a new one appears
    lake.put("n/sales/year=2024/q.parquet", encode(pa.table({"id": [9], "amount": [1.0], "extra": ["x"]}),
                                                   "parquet"))
    lake.put("n/sales/year=2025/p.parquet", parquet_rows(3))
    reads = []
    second = crawl(lake.glue, CountingS3(lake.s3, reads), crawler, [], first.state, threading.Event(),
                   lake.lines.append)
    assert {key.rpartition("/")[0] for key in reads} == {"n/sales/year=2025"}
    assert second.partitions_created == 1 and second.tables_updated == [] and second.tables_created == []
    assert [p["Values"] for p in lake.partitions("sales")] == [["2024"], ["2025"]]
    assert columns(lake.table("sales")) == [("id", "bigint"), ("amount", "double")]


def test_stop_before_writing_writes_nothing(lake):
    lake.put("st/a/a.csv", "id,v\n1,0.5\n2,1.5\n")
    stop = threading.Event()
    stop.set()
    out = lake.crawl(lake.crawler("st/"), stop=stop)
    assert out.stopped and out.tables_created == [] and lake.tables() == []


def test_stop_finishes_the_table_in_hand(lake):
    lake.put("sp/a/a.csv", "id,v\n1,0.5\n2,1.5\n")
    lake.put("sp/b/b.json", '{"x": "y"}\n')
    stop = threading.Event()

    def log(line):
        lake.lines.append(line)
        if line.startswith("INFO : Created table"):
            stop.set()                          # StopCrawler arrives while the first table is written
    out = crawl(lake.glue, lake.s3, lake.crawler("sp/"), [], None, stop, log)
    assert out.stopped and out.tables_created == ["a"] and lake.tables() == ["a"]


def test_crawl_takes_the_records_of_get_crawler_and_get_classifier(lake):
    lake.put("api/trips/year=2024/t.psv", "city|km\nparis|12.5\nlima|3.25\n")
    lake.put("api/trips/year=2024/t.tmp", "scratch")
    classifier = "pipes-" + lake.bucket
    lake.glue.create_classifier(CsvClassifier={"Name": classifier, "Delimiter": "|", "ContainsHeader": "PRESENT"})
    name = "api-" + lake.bucket
    lake.glue.create_crawler(Name=name, Role="arn:aws:iam::123456789012:role/glue", DatabaseName=lake.db,
                             Targets={"S3Targets": [{"Path": f"s3://{lake.bucket}/api/trips/",
                                                     "Exclusions": ["**.tmp"]}]},
                             TablePrefix="raw_", Classifiers=[classifier],
                             SchemaChangePolicy=EVERYTHING)
    record = lake.glue.get_crawler(Name=name)["Crawler"]
    custom = [lake.glue.get_classifier(Name=c)["Classifier"] for c in record.get("Classifiers", [classifier])]
    out = lake.crawl(record, custom)
    assert out.tables_created == ["raw_trips"] and out.partitions_created == 1
    table = lake.table("raw_trips")
    assert columns(table) == [("city", "string"), ("km", "double")]
    assert table["Parameters"]["UPDATED_BY_CRAWLER"] == name


# ================================================================ through Athena
def test_athena_reads_crawled_csv_json_and_partitioned_parquet(lake):
    lake.put("ath/csv_orders/o.csv", "order_id,customer,total\n1,ana,10.5\n2,bo,4.25\n3,ana,1.0\n")
    lake.put("ath/json_clicks/c.json", '{"page": "/a", "ms": 120}\n{"page": "/b", "ms": 80}\n')
    for year, month, ids in (("2024", "01", [1, 2]), ("2024", "02", [3]), ("2025", "01", [4, 5, 6])):
        lake.put(f"ath/pq_sales/year={year}/month={month}/part-0.parquet", parquet_rows(*ids))
    lake.crawl(lake.crawler("ath/"))
    assert lake.tables() == ["csv_orders", "json_clicks", "pq_sales"]

    df, _ = lake.query("SELECT customer, sum(total) AS spent FROM csv_orders GROUP BY customer ORDER BY customer")
    assert list(df["customer"]) == ["ana", "bo"] and list(df["spent"]) == [11.5, 4.25]
    df, _ = lake.query("SELECT page FROM json_clicks WHERE ms > 100")
    assert list(df["page"]) == ["/a"]

    everything, all_stats = lake.query("SELECT year, month, id, amount FROM pq_sales ORDER BY id")
    assert list(everything["id"]) == [1, 2, 3, 4, 5, 6]
    assert list(everything["year"]) == ["2024", "2024", "2024", "2025", "2025", "2025"]
    pruned, pruned_stats = lake.query("SELECT id, amount FROM pq_sales WHERE year = '2024' AND month = '02'")
    assert list(pruned["id"]) == [3] and list(pruned["amount"]) == [30.0]
    assert 0 < pruned_stats["bytes_scanned"] < all_stats["bytes_scanned"]
