"""The Glue crawler engine on bad input: nothing crashes, what cannot be read is logged and skipped.

A crawl fails as a whole only when it cannot write anywhere (the crawler's
database does not exist); an empty include path, a missing bucket, a corrupt
or empty file, files that do not belong together are logged, and the rest of
the crawl goes on.
"""
from __future__ import annotations

import gzip
import os
import threading

import pyarrow as pa
import pytest

from localaws.core.tables import encode
from localaws.glue import classifiers
from localaws.glue.crawler import crawl
from test_glue_crawler import Lake, columns


@pytest.fixture
def lake(stack, unique):
    return Lake(stack, unique)


def warnings(lake) -> list[str]:
    return [line for line in lake.lines if line.startswith(("WARN", "ERROR"))]


def test_empty_include_path_creates_no_table(lake):
    out = lake.crawl(lake.crawler("nothing-here/"))
    assert out.error is None and out.tables_created == [] and lake.tables() == []
    assert warnings(lake) == [f"WARN : No files to crawl at s3://{lake.bucket}/nothing-here/: the include path "
                              "is empty or everything in it is excluded"]
    assert lake.lines[-1] == "BENCHMARK : Finished writing to Catalog"


def test_corrupt_files_are_logged_and_skipped(lake):
    lake.put("c/orders/good.csv", "id,total\n1,2.5\n2,3.5\n")
    lake.put("c/orders/broken.parquet", b"PAR1" + os.urandom(64) + b"PAR1")
    lake.put("c/orders/cut.csv.gz", gzip.compress(b"id,total\n" + b"3,4.5\n" * 100)[:20])
    out = lake.crawl(lake.crawler("c/orders/"))
    assert out.error is None and out.tables_created == ["orders"]
    table = lake.table("orders")
    assert columns(table) == [("id", "bigint"), ("total", "double")]
    assert table["Parameters"]["objectCount"] == "1"
    skipped = warnings(lake)
    assert len(skipped) == 2
    assert skipped[0].startswith(f"WARN : Skipping unreadable file s3://{lake.bucket}/c/orders/broken.parquet: "
                                 "Parquet footer unreadable")
    assert skipped[1].startswith(f"WARN : Skipping unreadable file s3://{lake.bucket}/c/orders/cut.csv.gz: "
                                 "not valid gzip data")


def test_unrecognised_files_are_skipped(lake):
    lake.put("u/t/blob.bin", bytes(range(256)) * 4)
    lake.put("u/t/notes.txt", "just one line of prose\n")
    lake.put("u/t/broken.json", '{"a": 1}\n{"a": \n')
    out = lake.crawl(lake.crawler("u/t/"))
    assert out.tables_created == [] and lake.tables() == []
    assert [line.split(":")[0] for line in warnings(lake)] == ["WARN "] * 3
    assert any("blob.bin: not UTF-8 text" in line for line in warnings(lake))
    assert any("notes.txt: no classifier recognises its format (UNKNOWN)" in line for line in warnings(lake))


def test_conflicting_files_in_one_folder_get_a_table_each(lake):
    lake.put("m/t/a.csv", "id,price\n1,2.5\n2,3.5\n")
    lake.put("m/t/b.json", '{"user": "x", "ok": true}\n')
    out = lake.crawl(lake.crawler("m/t/"))
    assert sorted(out.tables_created) == ["a_csv", "b_json"]
    assert lake.table("a_csv")["StorageDescriptor"]["Location"] == f"s3://{lake.bucket}/m/t/a.csv"
    assert lake.table("b_json")["Parameters"]["classification"] == "json"


def test_unrelated_schemas_of_one_format_in_one_folder(lake):
    lake.put("s/t/x.csv", "id,price\n1,2.5\n2,3.5\n")
    lake.put("s/t/y.csv", "name,city,visits\nana,paris,3\nbo,lima,4\n")
    lake.crawl(lake.crawler("s/t/"))
    assert lake.tables() == ["x_csv", "y_csv"]


def test_missing_bucket_is_logged_and_the_other_targets_crawled(lake):
    lake.put("ok/t/a.csv", "id,price\n1,2.5\n2,3.5\n")
    crawler = lake.crawler("ok/t/")
    crawler["Targets"]["S3Targets"].insert(0, {"Path": f"s3://{lake.bucket}-missing/data/"})
    out = lake.crawl(crawler)
    assert out.error is None and out.tables_created == ["t"]
    assert warnings(lake) == [f"ERROR : Cannot crawl s3://{lake.bucket}-missing/data/: The specified bucket does "
                              "not exist (Service: Amazon S3; Error Code: NoSuchBucket)"]


def test_missing_database_fails_the_crawl_and_writes_nothing(lake):
    lake.put("d/t/a.csv", "id,price\n1,2.5\n2,3.5\n")
    crawler = lake.crawler("d/t/")
    crawler["DatabaseName"] = lake.db + "_nope"
    out = lake.crawl(crawler)
    assert out.error == f"Database {lake.db}_nope not found."
    assert out.tables_created == [] and out.state == {}
    assert lake.lines[-1].startswith(f"ERROR : Database {lake.db}_nope not found.")
    assert lake.tables() == []


def test_zero_byte_files_are_skipped(lake):
    lake.put("z/t/empty.csv", b"")
    lake.put("z/t/a.csv", "id,price\n1,2.5\n2,3.5\n")
    lake.put("z/t/folder-marker/", b"")
    lake.crawl(lake.crawler("z/t/"))
    assert lake.tables() == ["t"]
    assert lake.table("t")["Parameters"]["objectCount"] == "1"
    assert warnings(lake) == [f"WARN : Skipping empty object s3://{lake.bucket}/z/t/empty.csv"]


def test_everything_excluded(lake):
    lake.put("e/t/a.csv", "id,price\n1,2.5\n2,3.5\n")
    out = lake.crawl(lake.crawler("e/", target={"Exclusions": ["**"]}))
    assert out.tables_created == [] and "WARN : No files" in warnings(lake)[0]


def test_bad_custom_classifiers_fall_back_to_the_built_in_ones(lake):
    lake.put("b/t/a.csv", "id,price\n1,2.5\n2,3.5\n")
    custom = [{"GrokClassifier": {"Name": "g", "Classification": "x", "GrokPattern": "%{NOPE:x}"}},
              {"JsonClassifier": {"Name": "j", "JsonPath": "$.records[*]"}},
              {"XMLClassifier": {"Name": "x", "Classification": "xml", "RowTag": "row"}}]
    lake.crawl(lake.crawler("b/t/"), custom)
    assert lake.table("t")["Parameters"]["classification"] == "csv"


def test_dropped_bucket_deprecates_its_tables(lake, stack, unique):
    other = unique("gone")
    lake.s3.create_bucket(Bucket=other)
    lake.s3.put_object(Bucket=other, Key="t/a.csv", Body=b"id,price\n1,2.5\n2,3.5\n")
    crawler = lake.crawler("x/")
    crawler["Targets"]["S3Targets"] = [{"Path": f"s3://{other}/t/"}]
    lake.crawl(crawler)
    lake.s3.delete_object(Bucket=other, Key="t/a.csv")
    lake.s3.delete_bucket(Bucket=other)
    out = lake.crawl(crawler)
    assert out.error is None and out.tables_updated == ["t"]
    assert "DEPRECATED_BY_CRAWLER" in lake.table("t")["Parameters"]


def test_parquet_footer_is_all_that_is_read(lake):
    big = pa.table({"id": pa.array(range(50_000), pa.int64()), "s": [f"value-{i}" for i in range(50_000)]})
    body = encode(big, "parquet")
    lake.put("f/t/big.parquet", body)
    got = []

    class Counting:
        def __init__(self, client):
            self.client = client

        def get_object(self, **kwargs):
            answer = self.client.get_object(**kwargs)
            data = answer["Body"].read()
            got.append(len(data))
            answer["Body"] = FakeBody(data)
            return answer

        def __getattr__(self, name):
            return getattr(self.client, name)

    crawl(lake.glue, Counting(lake.s3), lake.crawler("f/t/"), [], None, threading.Event(), lake.lines.append)
    assert lake.table("t")["Parameters"]["recordCount"] == "50000"
    assert sum(got) < len(body) / 10


class FakeBody:
    def __init__(self, data):
        self.data = data

    def read(self, *args):
        return self.data


def test_not_utf8_text_is_unreadable():
    with pytest.raises(classifiers.Unreadable):
        classifiers.decode(b"\xff\xfe\x00abc" * 10)
