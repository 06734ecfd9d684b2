"""Athena reads the tables a Glue crawler writes, unchanged, and as Athena would.

Each test writes a few small files to its own bucket, runs a real crawl
(``crawl()``, what StartCrawler runs in the background), then queries the
tables with ``run_query`` (plain boto3):

- **Grok tables** (a crawler with a GrokClassifier: SerDe
  ``com.amazonaws.glue.serde.GrokSerDe``, the pattern in ``input.format``):
  each line is matched with the pattern, columns come by name and are typed
  from the table, a line that does not match is a row of NULLs.
- **A table per file** (a folder whose files do not belong together): its
  LOCATION names the object itself, and Athena reads such a table as zero
  records (AWS documents it, with the fix: a prefix per table).
- **JSON-path tables** (a JsonClassifier with ``$[*]`` or
  ``$.records[*]``): Athena ignores ``jsonPath`` and reads one JSON record
  per line, so a one-line document gives one odd row and a pretty-printed one
  fails the query; rewriting the file as JSON lines is the fix.
"""
from __future__ import annotations

import json
import threading

import pandas as pd
import pytest

from localaws.athena import QueryFailed, run_query
from localaws.glue.crawler import crawl

POLICY = {"UpdateBehavior": "UPDATE_IN_DATABASE", "DeleteBehavior": "LOG"}
GROK = "com.amazonaws.glue.serde.GrokSerDe"
OPENX = "org.openx.data.jsonserde.JsonSerDe"

LOG_LINES = [
    "2024-03-01T10:00:00Z 10.0.0.1 GET /index.html 200 512",
    "2024-03-01T10:00:01Z 10.0.0.2 POST /api/orders 201 64",
    "2024-03-01T10:00:02Z 10.0.0.1 GET /missing 404 0",
]
PATTERN = ("%{TIMESTAMP_ISO8601:ts} %{IPV4:client} %{WORD:method} %{URIPATH:path} %{INT:status:int} "
           "%{SIZE:bytes:long}")
ACCESS = {"GrokClassifier": {"Name": "access", "Classification": "access-logs", "GrokPattern": PATTERN,
                             "CustomPatterns": "SIZE \\d+"}}


class Lake:
    """One bucket and one Glue database for a test; crawls and queries over them."""

    def __init__(self, stack, unique):
        self.glue, self.s3, self.athena = stack.client("glue"), stack.client("s3"), stack.client("athena")
        self.bucket = unique("crawled")
        self.db = self.bucket.replace("-", "_")
        self.s3.create_bucket(Bucket=self.bucket)
        self.glue.create_database(DatabaseInput={"Name": self.db})

    def put(self, key: str, body: str) -> int:
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=body.encode())
        return len(body.encode())

    def crawl(self, path: str, classifiers=()) -> None:
        crawler = {"Name": f"crawler-{self.bucket}", "DatabaseName": self.db, "SchemaChangePolicy": dict(POLICY),
                   "Targets": {"S3Targets": [{"Path": f"s3://{self.bucket}/{path}"}]}}
        out = crawl(self.glue, self.s3, crawler, list(classifiers), None, threading.Event(), lambda line: None)
        assert out.error is None, out.error

    def table(self, name: str) -> dict:
        return self.glue.get_table(DatabaseName=self.db, Name=name)["Table"]

    def update(self, name: str, serde_params: dict | None = None, location: str | None = None) -> None:
        """Change a table with UpdateTable (on AWS too: ALTER TABLE does the same)."""
        table = self.table(name)
        keep = ("Name", "Description", "Owner", "Retention", "StorageDescriptor", "PartitionKeys", "TableType",
                "Parameters")
        table_input = {k: v for k, v in table.items() if k in keep}
        sd = table_input["StorageDescriptor"]
        if serde_params is not None:
            sd["SerdeInfo"]["Parameters"] = {**sd["SerdeInfo"].get("Parameters", {}), **serde_params}
        if location is not None:
            sd["Location"] = location
        self.glue.update_table(DatabaseName=self.db, TableInput=table_input)

    def create(self, name: str, columns: list[tuple[str, str]], location: str, serde: str, params: dict) -> None:
        """A text table written with CreateTable, as a crawler or a console user writes one."""
        self.glue.create_table(DatabaseName=self.db, TableInput={
            "Name": name, "TableType": "EXTERNAL_TABLE", "Parameters": {"EXTERNAL": "TRUE"},
            "StorageDescriptor": {
                "Columns": [{"Name": n, "Type": t} for n, t in columns],
                "Location": f"s3://{self.bucket}/{location}",
                "InputFormat": "org.apache.hadoop.mapred.TextInputFormat",
                "OutputFormat": "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
                "SerdeInfo": {"SerializationLibrary": serde, "Parameters": params}}})

    def query(self, sql: str, check: bool = True):
        return run_query(self.athena, sql, database=self.db, output=f"s3://{self.bucket}/athena-results/",
                         check=check)


@pytest.fixture
def lake(stack, unique):
    return Lake(stack, unique)


def values(df) -> list[list]:
    """A result frame as lists, NULLs as None (pandas shows them as NaN, NA or None)."""
    return [[None if pd.isna(v) else v for v in row] for row in df.astype(object).itertuples(index=False)]


# ================================================================ Grok tables
def test_crawled_grok_table_reads_typed_columns_and_nulls_for_other_lines(lake):
    size = lake.put("logs/access/a.log", "\n".join(LOG_LINES) + "\n")
    lake.crawl("logs/access/", [ACCESS])
    assert lake.table("access")["StorageDescriptor"]["SerdeInfo"]["SerializationLibrary"] == GROK
    # a line the pattern does not match arrives after the crawl: Athena still reads it
    size += lake.put("logs/access/b.log", "not a log line\n")

    df, stats = lake.query("SELECT * FROM access ORDER BY ts NULLS LAST")
    assert list(df.columns) == ["ts", "client", "method", "path", "status", "bytes"]
    assert values(df) == [
        ["2024-03-01T10:00:00Z", "10.0.0.1", "GET", "/index.html", 200, 512],
        ["2024-03-01T10:00:01Z", "10.0.0.2", "POST", "/api/orders", 201, 64],
        ["2024-03-01T10:00:02Z", "10.0.0.1", "GET", "/missing", 404, 0],
        [None, None, None, None, None, None],
    ]
    assert stats["bytes_scanned"] == size                  # text is read whole, every file

    df, _ = lake.query("SELECT method, sum(bytes) AS sent, max(status) AS worst FROM access "
                       "WHERE status IS NOT NULL GROUP BY method ORDER BY method")
    assert values(df) == [["GET", 512, 404], ["POST", 64, 201]]
    assert str(df["worst"].dtype).lower().startswith("int")  # typed from the table: int, not text


def test_grok_columns_come_by_name_in_the_tables_order(lake):
    lake.put("logs/access/a.log", "\n".join(LOG_LINES) + "\n")
    # the same SerDe, its columns in another order, one the pattern does not capture,
    # and a number read as text and a text read as a number
    lake.create("reordered", [("bytes", "string"), ("status", "smallint"), ("referrer", "string"),
                              ("method", "int")], "logs/access/", GROK,
                {"input.format": PATTERN, "input.grokCustomPatterns": "SIZE \\d+"})
    df, _ = lake.query("SELECT * FROM reordered")
    assert list(df.columns) == ["bytes", "status", "referrer", "method"]
    assert values(df) == [["512", 200, None, None], ["64", 201, None, None], ["0", 404, None, None]]


def test_grok_table_of_the_athena_guide_with_ddl(lake):
    # The Grok SerDe example of the Athena guide: Postfix mail logs, a custom pattern,
    # and %{SYSLOGBASE} written without a field filling the column syslogbase.
    lines = ["Feb  9 07:15:00 m4eastmail postfix/smtpd[19305]: B88C4120838: connect from unknown[192.168.55.4]",
             "Feb  9 07:15:03 m4eastmail postfix/cleanup[22835]: BDC22A77854: message-id=<3122@m4eastmail>"]
    lake.put("groksample/mail.log", "\n".join(lines) + "\n")
    lake.query(f"""CREATE EXTERNAL TABLE mygroktable (syslogbase string, queue_id string, syslog_message string)
        ROW FORMAT SERDE 'com.amazonaws.glue.serde.GrokSerDe'
        WITH SERDEPROPERTIES (
          'input.grokCustomPatterns' = 'POSTFIX_QUEUEID [0-9A-F]{{7,12}}\\nUNUSED [a-z]+',
          'input.format' = '%{{SYSLOGBASE}} %{{POSTFIX_QUEUEID:queue_id}}: %{{GREEDYDATA:syslog_message}}')
        STORED AS INPUTFORMAT 'org.apache.hadoop.mapred.TextInputFormat'
        OUTPUTFORMAT 'org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat'
        LOCATION 's3://{lake.bucket}/groksample/'""")
    df, _ = lake.query("SELECT * FROM mygroktable ORDER BY queue_id")
    assert values(df) == [
        ["Feb  9 07:15:00 m4eastmail postfix/smtpd[19305]:", "B88C4120838", "connect from unknown[192.168.55.4]"],
        ["Feb  9 07:15:03 m4eastmail postfix/cleanup[22835]:", "BDC22A77854", "message-id=<3122@m4eastmail>"],
    ]


def test_partitioned_grok_table_reads_only_the_partition_asked_for(lake):
    lake.put("weblogs/dt=2024-03-01/a.log", "\n".join(LOG_LINES[:2]) + "\n")
    day2 = lake.put("weblogs/dt=2024-03-02/a.log", LOG_LINES[2] + "\n")
    lake.crawl("weblogs/", [ACCESS])
    assert [k["Name"] for k in lake.table("weblogs")["PartitionKeys"]] == ["dt"]
    df, stats = lake.query("SELECT dt, path, status FROM weblogs WHERE dt = '2024-03-02'")
    assert values(df) == [["2024-03-02", "/missing", 404]]
    assert stats["bytes_scanned"] == day2


def test_grok_table_with_a_bad_pattern_fails_the_query(lake):
    lake.put("logs/x/a.log", "x 1\n")
    lake.create("unknown_pattern", [("a", "string")], "logs/x/", GROK, {"input.format": "%{NO_SUCH_PATTERN:a}"})
    lake.create("no_pattern", [("a", "string")], "logs/x/", GROK, {})
    for name in ("unknown_pattern", "no_pattern"):
        with pytest.raises(QueryFailed) as failed:
            lake.query(f"SELECT * FROM {name}")
        assert failed.value.stats["state"] == "FAILED"
        assert failed.value.stats["reason"].startswith("HIVE_INVALID_METADATA: ")
    assert "NO_SUCH_PATTERN" in lake.query("SELECT * FROM unknown_pattern", check=False)[1]["reason"]


# ================================================================ a table per file
def test_a_table_per_file_reads_zero_records_as_on_athena(lake):
    # Unrelated files in one folder: the crawler makes a table per file, located at the file.
    lake.put("mixed/orders.csv", "order_id,total\n1,2.5\n2,3.5\n")
    lake.put("mixed/clicks.json", '{"page": "/a", "ms": 120}\n')
    lake.crawl("mixed/")
    assert lake.table("orders_csv")["StorageDescriptor"]["Location"] == f"s3://{lake.bucket}/mixed/orders.csv"
    # Athena reads a LOCATION as a folder (mixed/orders.csv/): zero records, nothing scanned.
    for name in ("orders_csv", "clicks_json"):
        df, stats = lake.query(f"SELECT count(*) AS n FROM {name}")
        assert values(df) == [[0]] and stats["bytes_scanned"] == 0
    # AWS's fix: a prefix per table, and the table's LOCATION set to it.
    lake.s3.copy_object(Bucket=lake.bucket, Key="orders/orders.csv",
                        CopySource={"Bucket": lake.bucket, "Key": "mixed/orders.csv"})
    lake.update("orders_csv", location=f"s3://{lake.bucket}/orders/")
    df, _ = lake.query("SELECT order_id, total FROM orders_csv ORDER BY order_id")
    assert values(df) == [[1, 2.5], [2, 3.5]]


# ================================================================ JSON-path tables
def test_json_path_array_on_one_line_is_one_row_as_athena_reads_it(lake):
    lake.put("arr/items/i.json", json.dumps([{"k": "a"}, {"k": "b"}]))
    lake.crawl("arr/items/", [{"JsonClassifier": {"Name": "array", "JsonPath": "$[*]"}}])
    table = lake.table("items")
    assert table["Parameters"]["jsonPath"] == "$[*]"
    assert table["StorageDescriptor"]["SerdeInfo"]["SerializationLibrary"] == OPENX
    # The OpenX SerDe reads one line, an array: its elements fill the columns by position,
    # so the one column k holds the first record, as JSON text. The jsonPath is not read.
    df, _ = lake.query("SELECT * FROM items")
    assert values(df) == [['{"k":"a"}']]


def test_json_path_pretty_printed_document_fails_until_rewritten_as_json_lines(lake):
    doc = {"records": [{"id": 1, "v": "x"}, {"id": 2, "v": "y", "w": 1.5}]}
    pretty = json.dumps(doc, indent=2)
    lake.put("docs/records/d.json", pretty)
    lake.crawl("docs/records/", [{"JsonClassifier": {"Name": "records", "JsonPath": "$.records[*]"}}])
    table = lake.table("records")
    assert [(c["Name"], c["Type"]) for c in table["StorageDescriptor"]["Columns"]] == [
        ("id", "int"), ("v", "string"), ("w", "double")]
    assert table["Parameters"]["jsonPath"] == "$.records[*]"

    # Line 1 is "{": not a JSON object on its own, as the Athena guide warns of pretty-printed JSON.
    _, stats = lake.query("SELECT * FROM records", check=False)
    assert stats["state"] == "FAILED"
    assert stats["reason"].startswith("HIVE_CURSOR_ERROR: Row is not a valid JSON Object")

    # 'ignore.malformed.json' makes every line a row of NULLs: still no records.
    lake.update("records", serde_params={"ignore.malformed.json": "true"})
    df, _ = lake.query("SELECT count(*) AS n, count(id) AS ids FROM records")
    assert values(df) == [[len(pretty.splitlines()), 0]]

    # The fix: one record per line (JSON lines); the same table reads them.
    lake.put("docs/records/d.json", "\n".join(json.dumps(r) for r in doc["records"]) + "\n")
    df, _ = lake.query("SELECT id, v, w FROM records ORDER BY id")
    assert values(df) == [[1, "x", None], [2, "y", 1.5]]


def test_openx_lines_blank_lines_and_arrays(lake):
    lake.put("j/t/a.json", '{"id": 1, "name": "ana"}\n\n[2, "bo"]\n[]\n  {"ID": 3, "Name": "cy"} trailing\n')
    lake.create("people", [("id", "int"), ("name", "string")], "j/t/", OPENX, {})
    df, _ = lake.query("SELECT id, name FROM people ORDER BY id NULLS LAST")
    # a blank line and an empty array are rows of NULLs; an array fills columns by position;
    # keys match in any case; what follows a complete object is ignored
    assert values(df) == [[1, "ana"], [2, "bo"], [3, "cy"], [None, None], [None, None]]
