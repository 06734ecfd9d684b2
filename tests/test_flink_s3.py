"""Flink reads and writes ``s3://`` paths on the stack's S3, as a job on AWS does.

A Managed Service for Apache Flink application's SQL names a CSV table in S3
(a reference table, KDA-2) and readings in S3; the local Flink cluster
reads both through Hadoop's S3A connector (``core/flink.py``,
``s3_settings``) and writes the join to a Kinesis stream. The rows read back
with boto3 must be the rows of the files, joined.
"""
from __future__ import annotations

from localaws.core import flink as core_flink
from localaws.core.waiting import wait_until

BUCKET, SINK = "flink-s3-test", "flink-s3-labelled"


def app_sql(aws: str) -> str:
    """``aws``: the Kinesis connector's options for the local endpoint (the kinesis_options fixture)."""
    return f"""
CREATE TABLE rooms (sensor STRING, room STRING)
WITH ('connector' = 'filesystem', 'path' = 's3://{BUCKET}/reference/', 'format' = 'csv');
CREATE TABLE readings (sensor STRING, temperature INT)
WITH ('connector' = 'filesystem', 'path' = 's3a://{BUCKET}/readings/', 'format' = 'csv');
CREATE TABLE labelled (sensor STRING, room STRING, temperature INT)
WITH ('connector' = 'kinesis', 'stream' = '{SINK}', {aws}, 'format' = 'json', 'sink.partitioner' = 'random', 'aws.http.protocol.version' = 'HTTP1_1');
INSERT INTO labelled
SELECT r.sensor, m.room, r.temperature FROM readings AS r JOIN rooms AS m ON r.sensor = m.sensor;
"""


def test_s3_settings_map_every_s3_scheme_onto_s3a_at_the_endpoint():
    settings = core_flink.s3_settings("http://127.0.0.1:4566")
    assert settings["fs.allowed-fallback-filesystems"] == "s3;s3a;s3n"
    assert settings["flink.hadoop.fs.s3a.endpoint"] == "http://127.0.0.1:4566"
    for scheme in ("s3", "s3a", "s3n"):
        assert settings[f"flink.hadoop.fs.{scheme}.impl"] == "org.apache.hadoop.fs.s3a.S3AFileSystem"


def test_a_flink_sql_app_joins_a_reference_table_read_from_s3(stack, stream_json, kinesis_options):
    s3, msf, kinesis = (stack.client(name) for name in ("s3", "kinesisanalyticsv2", "kinesis"))
    kinesis.create_stream(StreamName=SINK, ShardCount=1)
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="reference/rooms.csv", Body=b"s1,kitchen\ns2,garage\n")
    s3.put_object(Bucket=BUCKET, Key="readings/part-0.csv", Body=b"s1,21\ns2,9\ns1,22\ns3,30\n")
    msf.create_application(
        ApplicationName="s3-join", RuntimeEnvironment="FLINK-1_19",
        ServiceExecutionRole="arn:aws:iam::123456789012:role/msf",
        ApplicationConfiguration={"ApplicationCodeConfiguration": {
            "CodeContentType": "PLAINTEXT", "CodeContent": {"TextContent": app_sql(kinesis_options)}}})
    try:
        msf.start_application(ApplicationName="s3-join")

        expected = [("s1", "kitchen", 21), ("s1", "kitchen", 22), ("s2", "garage", 9)]
        def rows():
            return sorted(tuple(r.values()) for r in stream_json(SINK))

        assert wait_until(lambda: rows() == expected, 120, poll=0.5), rows()
    finally:
        if msf.describe_application(ApplicationName="s3-join")["ApplicationDetail"]["ApplicationStatus"] \
                in ("RUNNING", "STARTING"):
            msf.stop_application(ApplicationName="s3-join", Force=True)
        wait_until(lambda: msf.describe_application(ApplicationName="s3-join")["ApplicationDetail"]
                   ["ApplicationStatus"] == "READY", 60, poll=0.5)
        msf.delete_application(ApplicationName="s3-join", CreateTimestamp=msf.describe_application(
            ApplicationName="s3-join")["ApplicationDetail"]["CreateTimestamp"])
        kinesis.delete_stream(StreamName=SINK)
        stack.context.registry.planes["flink"].stop()     # no Flink JVM outlives this module
