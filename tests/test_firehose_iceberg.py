"""Firehose -> Apache Iceberg tables of the Glue Data Catalog (IcebergDestinationConfiguration).

Records in = rows out (pyiceberg scans the committed table), one commit per flush,
updates and deletes by UniqueKeys when a Lambda's otfMetadata says so (and plain
inserts otherwise, as AWS documents), bad records and missing tables in the S3 error
output, and CreateDeliveryStream's refusals. Streams flush at once
(IntervalInSeconds=0) or on the frozen stack clock: no test waits for an interval.
"""
import base64
import json

import pytest

from localaws.core import iceberg as lake
from localaws.core.waiting import wait_until

BUCKET = "t-fh-iceberg"
DB = "fh_lake"


@pytest.fixture(scope="module")
def fh(stack, lambda_role):
    stack.client("s3").create_bucket(Bucket=BUCKET)
    stack.client("glue").create_database(DatabaseInput={"Name": DB})
    client = stack.client("firehose")
    client.role = lambda_role
    client.catalog_arn = f"arn:aws:glue:{stack.region}:{stack.context.account_id}:catalog"
    return client


@pytest.fixture(scope="module")
def catalog(stack, fh):
    return lake.catalog(stack.context)


def make_table(catalog, name, identifier=False):
    from pyiceberg.schema import Schema
    from pyiceberg.types import DecimalType, ListType, LongType, NestedField, StringType, TimestamptzType
    schema = Schema(NestedField(1, "id", LongType(), required=identifier),
                    NestedField(2, "name", StringType(), required=False),
                    NestedField(3, "amount", DecimalType(10, 2), required=False),
                    NestedField(4, "ts", TimestamptzType(), required=False),
                    NestedField(5, "tags", ListType(6, StringType(), element_required=False), required=False),
                    identifier_field_ids=[1] if identifier else [])
    return catalog.create_table(f"{DB}.{name}", schema=schema, location=f"s3://{BUCKET}/tables/{name}")


def make_stream(fh, name, tables, interval=0, retry=None, processing=None, error_prefix=None):
    config = {"RoleARN": fh.role, "CatalogConfiguration": {"CatalogARN": fh.catalog_arn},
              "DestinationTableConfigurationList": tables,
              "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": interval},
              "S3Configuration": {"RoleARN": fh.role, "BucketARN": f"arn:aws:s3:::{BUCKET}",
                                  **({"ErrorOutputPrefix": error_prefix} if error_prefix else {})}}
    if retry is not None:
        config["RetryOptions"] = {"DurationInSeconds": retry}
    if processing:
        config["ProcessingConfiguration"] = processing
    fh.create_delivery_stream(DeliveryStreamName=name, IcebergDestinationConfiguration=config)


def put(fh, name, docs):
    data = [d if isinstance(d, bytes) else json.dumps(d).encode() for d in docs]
    return fh.put_record_batch(DeliveryStreamName=name, Records=[{"Data": d} for d in data])


def rows(catalog, table):
    return sorted(catalog.load_table(f"{DB}.{table}").scan().to_arrow().to_pylist(), key=lambda r: r["id"])


def commits(catalog, table):
    """Commits since CREATE: each one writes metadata file number N (00000 is the creation)."""
    location = catalog.load_table(f"{DB}.{table}").metadata_location
    return int(location.rsplit("/", 1)[1].split("-", 1)[0])


def errors_under(stack, prefix):
    s3 = stack.client("s3")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])]
    return [json.loads(line) for k in keys
            for line in s3.get_object(Bucket=BUCKET, Key=k)["Body"].read().splitlines()]


def test_records_in_are_rows_out_and_a_bad_record_goes_to_the_error_prefix(stack, fh, catalog):
    make_table(catalog, "orders")
    make_stream(fh, "t-ice-orders", [{"DestinationDatabaseName": DB, "DestinationTableName": "orders",
                                      "UniqueKeys": ["id"], "S3ErrorOutputPrefix": "ice-errors/orders/"}])
    docs = [{"id": 1, "name": "a", "amount": 1.5, "ts": 1_700_000_000_000_000, "tags": ["x"]},
            {"id": 2, "name": "b", "amount": "2.25", "ts": "2024-01-02T03:04:05Z", "extra": True},
            {"id": 3, "amount": "not a number"},                         # cannot be a decimal(10,2)
            b"not json",
            {"id": 1, "name": "again"}]                  # no operation: an insert, the duplicate is kept
    put(fh, "t-ice-orders", docs)
    assert stack.local.firehose.wait_idle("t-ice-orders", timeout=20)

    got = rows(catalog, "orders")
    assert [(r["id"], r["name"]) for r in got] == [(1, "a"), (1, "again"), (2, "b")]
    assert str(got[0]["amount"]) == "1.50" and got[0]["tags"] == ["x"]
    assert got[2]["ts"].isoformat() == "2024-01-02T03:04:05+00:00"
    assert commits(catalog, "orders") == 1                            # one flush, one commit
    failed = errors_under(stack, "ice-errors/orders/")
    assert sorted(e["errorCode"] for e in failed) == ["Iceberg.InvalidJson", "Iceberg.InvalidValue"]
    assert {base64.b64decode(e["rawData"]) for e in failed} == {json.dumps(docs[2]).encode(), b"not json"}
    s = stack.local.firehose.stats("t-ice-orders")
    assert (s["records_in"], s["records_delivered"], s["records_failed"]) == (5, 3, 2)

    desc = fh.describe_delivery_stream(DeliveryStreamName="t-ice-orders")["DeliveryStreamDescription"]
    ice = desc["Destinations"][0]["IcebergDestinationDescription"]
    assert ice["CatalogConfiguration"]["CatalogARN"] == fh.catalog_arn
    assert ice["DestinationTableConfigurationList"][0]["UniqueKeys"] == ["id"]
    assert ice["S3DestinationDescription"]["BucketARN"] == f"arn:aws:s3:::{BUCKET}"

    cw = stack.client("cloudwatch")
    now = stack.local.clock.now()

    def metric(name):
        points = cw.get_metric_statistics(
            Namespace="AWS/Firehose", MetricName=name, Period=60, Statistics=["Sum"],
            Dimensions=[{"Name": "DeliveryStreamName", "Value": "t-ice-orders"}],
            StartTime=now.replace(year=now.year - 1), EndTime=now.replace(year=now.year + 1))["Datapoints"]
        return sum(p["Sum"] for p in points)
    wait_until(lambda: metric("DeliveryToIceberg.Success") == 1, timeout=10, poll=0.05)
    assert metric("DeliveryToIceberg.SuccessfulRowCount") == 3
    assert metric("DeliveryToIceberg.FailedRowCount") == 2


ROUTER = '''
import base64, json

def handler(event, context):
    out = []
    for r in event["records"]:
        doc = json.loads(base64.b64decode(r["data"]))
        op = doc.pop("op", "insert")
        out.append({"recordId": r["recordId"], "result": "Ok",
                    "data": base64.b64encode(json.dumps(doc).encode()).decode(),
                    "metadata": {"otfMetadata": {"destinationDatabaseName": "fh_lake",
                                                 "destinationTableName": doc.pop("table", "customers"),
                                                 "operation": op}}})
    return {"records": out}
'''


def test_updates_and_deletes_by_unique_keys_from_a_lambdas_otf_metadata(stack, fh, catalog, create_function):
    make_table(catalog, "customers")
    arn = create_function("t-ice-router", ROUTER, timeout=10).get_function(
        FunctionName="t-ice-router")["Configuration"]["FunctionArn"]
    processing = {"Enabled": True, "Processors": [{"Type": "Lambda", "Parameters": [
        {"ParameterName": "LambdaArn", "ParameterValue": arn},
        {"ParameterName": "BufferIntervalInSeconds", "ParameterValue": "0"}]}]}
    make_stream(fh, "t-ice-customers", [{"DestinationDatabaseName": DB, "DestinationTableName": "customers",
                                         "UniqueKeys": ["id"]}], processing=processing)
    put(fh, "t-ice-customers", [{"id": 1, "name": "ann"}, {"id": 2, "name": "bob"}])
    assert stack.local.firehose.wait_idle("t-ice-customers", timeout=30)
    put(fh, "t-ice-customers", [{"id": 1, "name": "ann v2", "op": "update"},
                                {"id": 2, "op": "delete"},
                                {"id": 3, "name": "cy", "op": "update"},           # missing: inserted
                                {"name": "no key", "op": "update"}])              # no id: error output
    assert stack.local.firehose.wait_idle("t-ice-customers", timeout=30)

    assert [(r["id"], r["name"]) for r in rows(catalog, "customers")] == [(1, "ann v2"), (3, "cy")]
    assert commits(catalog, "customers") == 2             # two flushes, two commits (the 2nd: 2 snapshots)
    failed = errors_under(stack, "iceberg-failed/")
    assert [e["errorCode"] for e in failed
            if b"no key" in base64.b64decode(e["rawData"])] == ["Iceberg.MissingUniqueKeys"]


def test_a_missing_table_sends_the_batch_to_the_error_output_after_the_retry_window(stack, fh, catalog,
                                                                                   frozen):
    make_stream(fh, "t-ice-missing", [{"DestinationDatabaseName": DB, "DestinationTableName": "not_yet"}],
                interval=60, retry=60, error_prefix="ice-missing/")
    put(fh, "t-ice-missing", [{"id": 1}, {"id": 2}])
    frozen.advance(60)                                    # the buffer's interval: the first attempt fails
    wait_until(lambda: stack.local.firehose.stats("t-ice-missing")["errors"], timeout=10, poll=0.05)
    assert "Iceberg.NoSuchTable" in stack.local.firehose.stats("t-ice-missing")["errors"][0]
    assert errors_under(stack, "ice-missing/") == []      # within RetryOptions: kept and retried
    frozen.advance(61)                                    # the window is over
    assert stack.local.firehose.wait_idle("t-ice-missing", timeout=20)
    failed = errors_under(stack, "ice-missing/")
    assert [e["errorCode"] for e in failed] == ["Iceberg.NoSuchTable"] * 2
    assert stack.local.firehose.stats("t-ice-missing")["records_failed"] == 2
    assert not catalog.table_exists(f"{DB}.not_yet")      # nothing half-written


def test_a_record_with_no_table_to_go_to_is_invalid_table_name(stack, fh, catalog):
    make_stream(fh, "t-ice-two", [{"DestinationDatabaseName": DB, "DestinationTableName": "a"},
                                  {"DestinationDatabaseName": DB, "DestinationTableName": "b"}],
                error_prefix="ice-two/")
    put(fh, "t-ice-two", [{"id": 1}])
    assert stack.local.firehose.wait_idle("t-ice-two", timeout=20)
    assert [e["errorCode"] for e in errors_under(stack, "ice-two/")] == ["Iceberg.InvalidTableName"]


@pytest.mark.parametrize("change, code, words", [
    ({"RoleARN": "not-a-role"}, "ValidationException", "icebergDestinationConfiguration.roleARN"),
    ({"CatalogConfiguration": {"CatalogARN": "arn:aws:glue:us-east-1:12:catalog"}}, "ValidationException",
     "catalogConfiguration.catalogARN"),
    ({"RetryOptions": {"DurationInSeconds": 7201}}, "ValidationException", "less than or equal to 7200"),
    ({"DestinationTableConfigurationList": [{"DestinationDatabaseName": DB, "DestinationTableName": "bad-name"}]},
     "ValidationException", "destinationTableName"),
    ({"DestinationTableConfigurationList": [{"DestinationDatabaseName": DB, "DestinationTableName": "absent",
                                             "UniqueKeys": ["id"]}]},
     "InvalidArgumentException", "does not exist"),
    ({"DestinationTableConfigurationList": [{"DestinationDatabaseName": DB, "DestinationTableName": "orders",
                                             "UniqueKeys": ["nope"]}]},
     "InvalidArgumentException", "not columns"),
])
def test_bad_configurations_are_refused_and_nothing_is_created(stack, fh, catalog, change, code, words):
    if not catalog.table_exists(f"{DB}.orders"):
        make_table(catalog, "orders")
    config = {"RoleARN": fh.role, "CatalogConfiguration": {"CatalogARN": fh.catalog_arn},
              "S3Configuration": {"RoleARN": fh.role, "BucketARN": f"arn:aws:s3:::{BUCKET}"}, **change}
    with pytest.raises(fh.exceptions.ClientError) as info:
        fh.create_delivery_stream(DeliveryStreamName="t-ice-bad", IcebergDestinationConfiguration=config)
    assert info.value.response["Error"]["Code"] == code
    assert words in info.value.response["Error"]["Message"]
    assert "t-ice-bad" not in fh.list_delivery_streams()["DeliveryStreamNames"]
