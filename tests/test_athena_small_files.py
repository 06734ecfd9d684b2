"""Small Parquet and ORC files are billed for what they hold, not for a reader's guess.

pyarrow opens a Parquet file by reading the last 64 KiB (ORC: 16 KiB) to find
the footer. For a file of a few KB that is the whole file and more, and a
table of 200 small files would look 20 times dearer in bytes scanned than it
is. ``sources.ExactTail`` reads the footer at its real length instead.
"""
from __future__ import annotations

import io

import pyarrow as pa
import pyarrow.orc as orc
import pyarrow.parquet as pq
import pytest

from localaws.athena import run_query
from localaws.athena.sources import ExactTail, _varints

BUCKET = "small-files"
OUT = f"s3://{BUCKET}/results/"
ROWS = pa.table({"id": pa.array(range(500), pa.int64()),
                 "name": pa.array([f"name-{i % 37}" for i in range(500)]),
                 "score": pa.array([i * 0.5 for i in range(500)])})


def _parquet(table) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="snappy")
    return buffer.getvalue()


def _orc(table) -> bytes:
    buffer = io.BytesIO()
    orc.write_table(table, buffer)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def athena(stack):
    s3 = stack.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    files = {"one/part-0.parquet": _parquet(ROWS), "one_orc/part-0.orc": _orc(ROWS)}
    for i in range(4):                                    # the same rows in 4 small files
        files[f"four/part-{i}.parquet"] = _parquet(ROWS.slice(i * 125, 125))
    for key, body in files.items():
        s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    client = stack.client("athena")
    run_query(client, "CREATE DATABASE IF NOT EXISTS small", output=OUT)
    for name, where, fmt in [("one", "one", "PARQUET"), ("four", "four", "PARQUET"), ("one_orc", "one_orc", "ORC")]:
        run_query(client, f"CREATE EXTERNAL TABLE {name} (id bigint, name string, score double) "
                          f"STORED AS {fmt} LOCATION 's3://{BUCKET}/{where}/'", database="small", output=OUT)
    return client, {key: len(body) for key, body in files.items()}


def test_a_small_parquet_file_scans_about_its_size(athena):
    client, sizes = athena
    size = sizes["one/part-0.parquet"]
    assert size < 16 * 1024                                   # a small file, far below the 64 KiB guess
    frame, stats = run_query(client, "SELECT * FROM one ORDER BY id", database="small", output=OUT)
    assert len(frame) == 500 and frame["score"].sum() == sum(i * 0.5 for i in range(500))
    # the whole file but its leading magic number: "PAR1" (4 bytes) is never read
    assert size - 64 <= stats["bytes_scanned"] <= size


def test_two_columns_of_a_small_file_scan_less_than_the_file(athena):
    client, sizes = athena
    frame, stats = run_query(client, "SELECT name, count(*) AS n FROM one GROUP BY name ORDER BY name",
                             database="small", output=OUT)
    assert frame["n"].sum() == 500
    assert 0 < stats["bytes_scanned"] < sizes["one/part-0.parquet"]


def test_many_small_files_cost_their_footers_not_64_kib_each(athena, stack):
    client, sizes = athena
    frame, stats = run_query(client, "SELECT sum(id) AS total FROM four", database="small", output=OUT)
    assert int(frame["total"][0]) == sum(range(500))
    scanned = stack.local.athena.scan_stats(stats["query_id"])
    assert scanned["files_opened"] == 4
    # per file: the footer's length, the footer, then the column chunk(s)
    assert scanned["get_requests"] >= 3 * 4
    four = sum(size for key, size in sizes.items() if key.startswith("four/"))
    assert stats["bytes_scanned"] < four < 4 * 16 * 1024


def test_a_small_orc_file_scans_about_its_size(athena):
    client, sizes = athena
    frame, stats = run_query(client, "SELECT * FROM one_orc ORDER BY id", database="small", output=OUT)
    assert len(frame) == 500 and frame["name"].tolist() == ROWS["name"].to_pylist()
    assert stats["bytes_scanned"] <= sizes["one_orc/part-0.orc"]


class _FakeS3:
    """A boto3-like reader of one object that records the ranges asked for."""

    def __init__(self, body: bytes):
        self.body, self.ranges = body, []

    def get_object(self, Bucket, Key, Range):
        start, end = (int(x) for x in Range.removeprefix("bytes=").split("-"))
        self.ranges.append((start, end + 1))
        return {"Body": io.BytesIO(self.body[start:end + 1])}


@pytest.mark.parametrize("fmt", ["parquet", "orc"])
def test_the_footer_is_read_at_its_real_length(fmt):
    body = _parquet(ROWS) if fmt == "parquet" else _orc(ROWS)
    fake = _FakeS3(body)
    tail = ExactTail(fake, "b/k", len(body), fmt, {}).tail()
    assert body.endswith(tail) and len(tail) < len(body) / 2
    assert sum(end - start for start, end in fake.ranges) == len(tail)    # not a byte more
    if fmt == "parquet":
        assert len(tail) == int.from_bytes(body[-8:-4], "little") + 8
        assert pq.read_metadata(io.BytesIO(body)).num_rows == 500


def test_protobuf_varints():
    assert _varints(bytes([0x08, 0x96, 0x01, 0x12, 0x02, 0x41, 0x42, 0x28, 0x05])) == {1: 150, 5: 5}
