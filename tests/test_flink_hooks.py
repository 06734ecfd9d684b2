"""The teaching hooks of Managed Service for Apache Flink (``stack.local.flink``).

One Flink cluster serves the module (it starts with the first
StartApplication and is stopped at the end). A Flink SQL application counts
a Kinesis stream's records in 10-second tumbling windows of event time and
writes each window to a second stream. ``wait_for_checkpoint`` makes sure
the windows written so far are covered by a checkpoint; ``kill_taskmanager``
then crashes the worker that holds the open window in memory and starts a
replacement. The job must restart from that checkpoint: the windows read
back afterwards equal those pandas computes, none lost and none repeated, and
``checkpoints`` says the job was restored from a checkpoint.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone

import pandas as pd
import pytest

from localaws.core.waiting import wait_until
from localaws.flink import errors

SOURCE, SINK, APP = "hooks-clicks", "hooks-windows", "hooks-counts"
T0 = pd.Timestamp("2026-01-01 00:00:00")


def app_sql(aws: str) -> str:
    """``aws``: the Kinesis connector's options for the local endpoint (the kinesis_options fixture)."""
    return f"""
    CREATE TABLE clicks (id BIGINT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts)
    WITH ('connector' = 'kinesis', 'stream' = '{SOURCE}', {aws}, 'format' = 'json',
          'scan.stream.initpos' = 'TRIM_HORIZON', 'scan.stream.recordpublisher' = 'POLLING',
          'scan.shard.getrecords.intervalmillis' = '250');
    CREATE TABLE windows (window_start STRING, n BIGINT)
    WITH ('connector' = 'kinesis', 'stream' = '{SINK}', {aws}, 'format' = 'json',
          'sink.partitioner' = 'random', 'aws.http.protocol.version' = 'HTTP1_1');
    INSERT INTO windows
    SELECT CAST(window_start AS STRING), COUNT(*)
    FROM TABLE(TUMBLE(TABLE clicks, DESCRIPTOR(ts), INTERVAL '10' SECOND))
    GROUP BY window_start, window_end;
    """


def put(kinesis, ids):
    kinesis.put_records(StreamName=SOURCE, Records=[
        {"Data": json.dumps({"id": i, "ts": str(T0 + pd.Timedelta(seconds=i))}).encode(),
         "PartitionKey": str(i)} for i in ids])


def sink_rows(stream_json) -> list[dict]:
    return sorted(stream_json(SINK), key=lambda r: r["window_start"])


def expected_windows(ids) -> list[dict]:
    ts = pd.Series([T0 + pd.Timedelta(seconds=i) for i in ids])
    counts = ts.dt.floor("10s").value_counts().sort_index()
    return [{"window_start": f"{start:%Y-%m-%d %H:%M:%S}.000", "n": int(n)} for start, n in counts.items()]


def status(msf) -> str:
    return msf.describe_application(ApplicationName=APP)["ApplicationDetail"]["ApplicationStatus"]


@pytest.fixture(scope="module")
def msf(stack, kinesis_options):
    kinesis = stack.client("kinesis")
    for name in (SOURCE, SINK):
        kinesis.create_stream(StreamName=name, ShardCount=1)
    client = stack.client("kinesisanalyticsv2")
    client.create_application(
        ApplicationName=APP, RuntimeEnvironment="FLINK-1_19",
        ServiceExecutionRole="arn:aws:iam::123456789012:role/msf",
        ApplicationConfiguration={
            "ApplicationCodeConfiguration": {"CodeContentType": "PLAINTEXT",
                                             "CodeContent": {"TextContent": app_sql(kinesis_options)}},
            "FlinkApplicationConfiguration": {"CheckpointConfiguration": {
                "ConfigurationType": "CUSTOM", "CheckpointingEnabled": True, "CheckpointInterval": 1000}}})
    yield client
    created = client.describe_application(ApplicationName=APP)["ApplicationDetail"]["CreateTimestamp"]
    client.delete_application(ApplicationName=APP, CreateTimestamp=created)
    for name in (SOURCE, SINK):
        kinesis.delete_stream(StreamName=name)
    stack.context.registry.planes["flink"].stop()      # the JVMs go; the next user starts them again


def test_checkpoint_hooks_want_a_running_application(stack, msf):
    with pytest.raises(ValueError, match="has no running job"):
        stack.local.flink.checkpoints(APP)              # created, not started
    with pytest.raises(ValueError, match="has no running job"):
        stack.local.flink.wait_for_checkpoint(APP, timeout=1)
    with pytest.raises(errors.ResourceNotFoundException):
        stack.local.flink.checkpoints("no-such-app")
    if stack.context.registry.planes["flink"].engine.cluster is None:
        with pytest.raises(ValueError, match="no TaskManager is running"):
            stack.local.flink.kill_taskmanager()


def test_killed_taskmanager_job_recovers_from_its_checkpoint(stack, msf, stream_json):
    kinesis = stack.client("kinesis")
    put(kinesis, range(0, 35))                  # windows 0, 10, 20 can close; 30 stays open
    msf.start_application(ApplicationName=APP)
    assert wait_until(lambda: status(msf) == "RUNNING", 120, poll=0.5), status(msf)
    assert wait_until(lambda: len(sink_rows(stream_json)) >= 3, 90, poll=0.5), sink_rows(stream_json)
    assert sink_rows(stream_json) == expected_windows(range(0, 30))

    called = datetime.now(timezone.utc)
    before = stack.local.flink.wait_for_checkpoint(APP)
    assert before["latest"]["triggered"] > called       # a checkpoint after the windows were written
    assert before["completed"] >= 1 and before["latest"]["state_bytes"] > 0
    assert before["restored_from"] is None and before["failures"] == 0

    crash = stack.local.flink.kill_taskmanager()         # the open window [30, 40) was only in memory
    assert len(crash["killed"]) == 1 and len(crash["replacement"]) == 1
    assert crash["killed"] != crash["replacement"]

    put(kinesis, range(35, 70))
    put(kinesis, [200])                                 # a later event closes window 60
    assert wait_until(lambda: len(sink_rows(stream_json)) >= 7, 120, poll=0.5), sink_rows(stream_json)
    assert sink_rows(stream_json) == expected_windows(range(0, 70)), "a window lost or repeated"

    after = stack.local.flink.checkpoints(APP)
    assert after["restored_from"] == "checkpoint" and after["failures"] >= 1
    assert status(msf) == "RUNNING"                     # a restart is not a stop, on AWS either
    msf.stop_application(ApplicationName=APP, Force=True)
    assert wait_until(lambda: status(msf) == "READY", 60, poll=0.5)
