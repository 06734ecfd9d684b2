"""Firehose -> Amazon Redshift (curriculum RS-21): each buffered batch is staged in the
intermediate bucket with a manifest, then COPY loads it into a real local cluster;
a failing COPY is retried for RetryOptions.DurationInSeconds, then its manifest goes
to errors/ and nothing is lost; the stream's CloudWatch metrics add up.

One cluster for the module; the stack's clock is frozen, so buffering intervals and
retry windows pass with ``advance`` instead of sleeps.
"""
import gzip
import json
from datetime import timedelta

import pytest

from localaws.core.waiting import wait_until

BUCKET = "t-firehose-redshift"


@pytest.fixture(scope="module")
def rs(stack, clusters, unique, lambda_role):
    """The module's cluster: its identifier, JDBC URL, and clients."""
    redshift = stack.client("redshift")
    stack.client("s3").create_bucket(Bucket=BUCKET)
    name = clusters.create(redshift, unique("fh-rs"), ClusterType="single-node")
    endpoint = redshift.describe_clusters(ClusterIdentifier=name)["Clusters"][0]["Endpoint"]

    class RS:
        identifier = name
        url = f"jdbc:redshift://{endpoint['Address']}:{endpoint['Port']}/dev"
        data = stack.client("redshift-data")
        client = redshift
        firehose = stack.client("firehose")
        role = lambda_role
    try:
        yield RS
    finally:
        clusters.drop(redshift, name)


def make_stream(rs, name, table, copy_options, interval=60, retry=None, compression="UNCOMPRESSED",
                columns=None):
    config = {
        "RoleARN": rs.role, "ClusterJDBCURL": rs.url,
        "CopyCommand": {"DataTableName": table, "CopyOptions": copy_options,
                        **({"DataTableColumns": columns} if columns else {})},
        "Username": "admin", "Password": "Passw0rd1",
        "S3Configuration": {"RoleARN": rs.role, "BucketARN": f"arn:aws:s3:::{BUCKET}", "Prefix": f"{name}/",
                            "CompressionFormat": compression,
                            "BufferingHints": {"SizeInMBs": 5, "IntervalInSeconds": interval}},
    }
    if retry is not None:
        config["RetryOptions"] = {"DurationInSeconds": retry}
    rs.firehose.create_delivery_stream(DeliveryStreamName=name, RedshiftDestinationConfiguration=config)


def sql(rs, statements, text):
    """A query's records (GetStatementResult)."""
    return statements.records(rs.data, rs.identifier, text)


def ddl(rs, statements, text):
    statements.run_ok(rs.data, rs.identifier, text)


def count(rs, statements, table):
    return sql(rs, statements, f"select count(*) from {table}")[0][0]["longValue"]


def keys(stack, prefix):
    listing = stack.client("s3").list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])
    return sorted(o["Key"] for o in listing)


def read(stack, key):
    return stack.client("s3").get_object(Bucket=BUCKET, Key=key)["Body"].read()


def stats(stack, name):
    return stack.local.firehose.stats(name)


def metric(stack, name, metric_name, statistic="Sum"):
    """The stream's metric around the stack's clock (Sum, Maximum or SampleCount), or None."""
    cw = stack.client("cloudwatch")
    now = stack.local.clock.now()
    points = cw.get_metric_statistics(
        Namespace="AWS/Firehose", MetricName=metric_name,
        Dimensions=[{"Name": "DeliveryStreamName", "Value": name}],
        StartTime=now - timedelta(hours=1), EndTime=now + timedelta(minutes=10), Period=60,
        Statistics=[statistic])["Datapoints"]
    values = [p[statistic] for p in points]
    return (max(values) if statistic == "Maximum" else sum(values)) if values else None


def eventually(stack, name, metric_name, expected, statistic="Sum"):
    """Metrics reach CloudWatch milliseconds after the measurement (on AWS, about a minute)."""
    wait_until(lambda: metric(stack, name, metric_name, statistic) == expected, timeout=10, poll=0.05)
    return metric(stack, name, metric_name, statistic)


def test_csv_batches_are_staged_then_copied_into_the_table(stack, rs, statements, frozen):
    ddl(rs, statements, "create table fh_clicks (id int, page varchar(32))")
    make_stream(rs, "t-rs-csv", "fh_clicks", "CSV", columns="id,page")
    rows = [{"Data": f"{i},/page/{i % 3}\n".encode()} for i in range(25)]
    rs.firehose.put_record_batch(DeliveryStreamName="t-rs-csv", Records=rows)
    assert stats(stack, "t-rs-csv")["buffered"] == 25 and keys(stack, "t-rs-csv/") == []

    frozen.advance(60)                                     # the buffer's interval
    assert stack.local.firehose.wait_idle("t-rs-csv", timeout=30)
    assert count(rs, statements, "fh_clicks") == 25
    assert sql(rs, statements, "select page from fh_clicks where id = 4")[0][0]["stringValue"] == "/page/1"

    s = stats(stack, "t-rs-csv")
    assert (s["records_in"], s["records_delivered"], s["records_failed"]) == (25, 25, 0)
    (copy,) = s["copies"]
    assert copy["attempts"] == 1 and copy["table"] == "fh_clicks"
    staged = [k for k in keys(stack, "t-rs-csv/") if "/manifests/" not in k]
    (manifest,) = keys(stack, "t-rs-csv/manifests/")
    assert manifest == copy["manifest"] and len(staged) == 1
    assert json.loads(read(stack, manifest)) == {
        "entries": [{"url": f"s3://{BUCKET}/{staged[0]}", "mandatory": True}]}
    assert read(stack, staged[0]) == b"".join(r["Data"] for r in rows)


def test_gzipped_json_is_loaded_with_json_auto(stack, rs, statements, frozen):
    ddl(rs, statements, "create table fh_orders (order_id int, customer varchar(16), amount decimal(8,2))")
    make_stream(rs, "t-rs-json", "fh_orders", "JSON 'auto' GZIP", compression="GZIP")
    orders = [{"order_id": i, "customer": f"c{i % 4}", "amount": i * 1.5} for i in range(40)]
    rs.firehose.put_record_batch(DeliveryStreamName="t-rs-json",
                                 Records=[{"Data": json.dumps(o).encode() + b"\n"} for o in orders])
    frozen.advance(60)
    assert stack.local.firehose.wait_idle("t-rs-json", timeout=30)
    assert count(rs, statements, "fh_orders") == 40
    total = sql(rs, statements, "select sum(amount) from fh_orders where customer = 'c1'")[0][0]
    assert float(total["stringValue"]) == sum(o["amount"] for o in orders if o["customer"] == "c1")
    (staged,) = [k for k in keys(stack, "t-rs-json/") if "/manifests/" not in k]
    assert staged.endswith(".gz") and gzip.decompress(read(stack, staged)).count(b"\n") == 40


def test_a_missing_table_is_retried_then_the_manifest_goes_to_errors(stack, rs, statements, frozen):
    make_stream(rs, "t-rs-missing", "fh_nowhere", "CSV", retry=60)
    rs.firehose.put_record_batch(DeliveryStreamName="t-rs-missing",
                                 Records=[{"Data": f"{i},x\n".encode()} for i in range(5)])
    frozen.advance(60)                                     # flush: staged, first COPY fails
    assert wait_until(lambda: len(stats(stack, "t-rs-missing")["errors"]) == 1, timeout=30, poll=0.05)
    frozen.advance(30)                                     # within the 60 s window: tried again
    assert wait_until(lambda: len(stats(stack, "t-rs-missing")["errors"]) == 2, timeout=30, poll=0.05)
    assert "fh_nowhere" in stats(stack, "t-rs-missing")["errors"][-1]
    assert keys(stack, "t-rs-missing/errors/") == []       # not given up yet
    assert stats(stack, "t-rs-missing")["records_failed"] == 0

    frozen.advance(31)                                     # the window is over
    assert stack.local.firehose.wait_idle("t-rs-missing", timeout=30)
    s = stats(stack, "t-rs-missing")
    assert (s["records_in"], s["records_delivered"], s["records_failed"]) == (5, 0, 5)
    (copy,) = s["copies"]
    (error_manifest,) = keys(stack, "t-rs-missing/errors/manifests/")
    assert error_manifest == copy["error_manifest"] and copy["attempts"] == 2
    (entry,) = json.loads(read(stack, error_manifest))["entries"]
    staged = entry["url"].split(f"s3://{BUCKET}/", 1)[1]  # nothing lost: the staged object is still there
    assert read(stack, staged).count(b"\n") == 5
    assert eventually(stack, "t-rs-missing", "DeliveryToRedshift.Success", 2, "SampleCount") == 2
    assert metric(stack, "t-rs-missing", "DeliveryToRedshift.Success") == 0
    assert metric(stack, "t-rs-missing", "DeliveryToRedshift.Records") is None


def test_a_paused_cluster_resumed_within_the_retry_window_gets_the_rows(stack, rs, statements, frozen):
    ddl(rs, statements, "create table fh_paused (id int)")
    make_stream(rs, "t-rs-paused", "fh_paused", "CSV", retry=300)
    rs.client.pause_cluster(ClusterIdentifier=rs.identifier)
    try:
        rs.firehose.put_record_batch(DeliveryStreamName="t-rs-paused",
                                     Records=[{"Data": f"{i}\n".encode()} for i in range(7)])
        frozen.advance(60)
        assert wait_until(lambda: stats(stack, "t-rs-paused")["errors"], timeout=30, poll=0.05)
    finally:
        rs.client.resume_cluster(ClusterIdentifier=rs.identifier)
    frozen.advance(30)                                     # the next attempt finds the cluster back
    assert stack.local.firehose.wait_idle("t-rs-paused", timeout=30)
    assert count(rs, statements, "fh_paused") == 7
    s = stats(stack, "t-rs-paused")
    assert (s["records_delivered"], s["records_failed"]) == (7, 0) and s["copies"][0]["attempts"] >= 2
    assert keys(stack, "t-rs-paused/errors/") == []


def test_metrics_report_incoming_staged_and_copied_records(stack, rs, statements, frozen):
    ddl(rs, statements, "create table fh_metrics (id int)")
    make_stream(rs, "t-rs-metrics", "fh_metrics", "CSV", interval=120)
    rs.firehose.put_record_batch(DeliveryStreamName="t-rs-metrics",
                                 Records=[{"Data": f"{i}\n".encode()} for i in range(10)])
    rs.firehose.put_record(DeliveryStreamName="t-rs-metrics", Record={"Data": b"10\n"})
    frozen.advance(120)
    assert stack.local.firehose.wait_idle("t-rs-metrics", timeout=30)
    assert count(rs, statements, "fh_metrics") == 11
    assert eventually(stack, "t-rs-metrics", "IncomingRecords", 11) == 11
    assert eventually(stack, "t-rs-metrics", "IncomingBytes", 10 * 2 + 3) == 23
    assert eventually(stack, "t-rs-metrics", "DeliveryToS3.Records", 11) == 11
    assert eventually(stack, "t-rs-metrics", "DeliveryToS3.Success", 1) == 1
    assert eventually(stack, "t-rs-metrics", "DeliveryToRedshift.Records", 11) == 11
    assert eventually(stack, "t-rs-metrics", "DeliveryToRedshift.Success", 1) == 1
    assert eventually(stack, "t-rs-metrics", "DeliveryToS3.DataFreshness", 120, "Maximum") == 120
    assert metric(stack, "t-no-such-stream", "IncomingRecords") is None


def test_bad_redshift_configurations_are_refused(rs):
    good = {"RoleARN": rs.role, "ClusterJDBCURL": rs.url, "CopyCommand": {"DataTableName": "t"},
            "Username": "admin", "Password": "Passw0rd1",
            "S3Configuration": {"RoleARN": rs.role, "BucketARN": f"arn:aws:s3:::{BUCKET}"}}
    for change, code in (({"ClusterJDBCURL": "redshift://nowhere"}, "InvalidArgumentException"),
                         ({"RetryOptions": {"DurationInSeconds": 7201}}, "ValidationException"),
                         ({"S3Configuration": {**good["S3Configuration"], "CompressionFormat": "ZIP"}},
                          "InvalidArgumentException"),
                         ({"Password": None}, "InvalidArgumentException")):     # and no secret either
        with pytest.raises(rs.firehose.exceptions.ClientError) as info:
            rs.firehose.create_delivery_stream(DeliveryStreamName="t-rs-bad",
                                               RedshiftDestinationConfiguration={
                                                   k: v for k, v in {**good, **change}.items() if v is not None})
        assert info.value.response["Error"]["Code"] == code, change
    assert "t-rs-bad" not in rs.firehose.list_delivery_streams()["DeliveryStreamNames"]
