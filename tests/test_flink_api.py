"""Managed Service for Apache Flink (``kinesisanalyticsv2``) on the local stack's real Flink.

One Flink cluster serves the whole module (it starts with the first
StartApplication). A Flink SQL application reads a local Kinesis stream with
AWS's Kinesis connector, counts records in 10-second tumbling windows of
event time and writes each window to a second Kinesis stream; the windows
read back with boto3 must equal those pandas computes. Stopping with a
snapshot (a savepoint) and starting again from it must lose no window and
repeat none.
"""
from __future__ import annotations

import json

import pandas as pd
import psutil
import pytest
from botocore.exceptions import ClientError

from localaws.core.waiting import wait_until

SOURCE, SINK = "msf-clicks", "msf-windows"
T0 = pd.Timestamp("2026-01-01 00:00:00")


def app_sql(aws: str) -> str:
    """``aws``: the Kinesis connector's options for the local endpoint (the kinesis_options fixture)."""
    return f"""
    CREATE TABLE clicks (id BIGINT, v INT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts)
    WITH ('connector' = 'kinesis', 'stream' = '{SOURCE}', {aws}, 'format' = 'json',
          'scan.stream.initpos' = 'TRIM_HORIZON', 'scan.stream.recordpublisher' = 'POLLING',
          'scan.shard.getrecords.intervalmillis' = '250');
    CREATE TABLE windows (window_start STRING, n BIGINT, total INT)
    WITH ('connector' = 'kinesis', 'stream' = '{SINK}', {aws}, 'format' = 'json',
          'sink.partitioner' = 'random', 'aws.http.protocol.version' = 'HTTP1_1');
    -- one row per 10-second window of event time
    INSERT INTO windows
    SELECT CAST(window_start AS STRING), COUNT(*), SUM(v)
    FROM TABLE(TUMBLE(TABLE clicks, DESCRIPTOR(ts), INTERVAL '10' SECOND))
    GROUP BY window_start, window_end;
    """


#: An unbounded job that needs no stream: for the bad-input tests.
DATAGEN_SQL = """
CREATE TABLE gen (id BIGINT) WITH ('connector' = 'datagen', 'rows-per-second' = '5');
CREATE TABLE sink (id BIGINT) WITH ('connector' = 'blackhole');
INSERT INTO sink SELECT id FROM gen;
"""


def create(msf, name, sql, snapshots=True):
    return msf.create_application(
        ApplicationName=name, RuntimeEnvironment="FLINK-1_19",
        ServiceExecutionRole="arn:aws:iam::123456789012:role/msf",
        ApplicationConfiguration={
            "ApplicationCodeConfiguration": {"CodeContentType": "PLAINTEXT",
                                             "CodeContent": {"TextContent": sql}},
            "ApplicationSnapshotConfiguration": {"SnapshotsEnabled": snapshots},
            "FlinkApplicationConfiguration": {"CheckpointConfiguration": {
                "ConfigurationType": "CUSTOM", "CheckpointingEnabled": True,
                "CheckpointInterval": 2000}},
        })["ApplicationDetail"]


def status(msf, name) -> str:
    return msf.describe_application(ApplicationName=name)["ApplicationDetail"]["ApplicationStatus"]


def wait_status(msf, name, wanted, timeout=90):
    assert wait_until(lambda: status(msf, name) == wanted, timeout, poll=0.5), \
        f"{name} is {status(msf, name)}, not {wanted}"


def put(kinesis, ids):
    records = [{"Data": json.dumps({"id": i, "v": i % 7,
                                    "ts": str(T0 + pd.Timedelta(seconds=i))}).encode(),
                "PartitionKey": str(i)} for i in ids]
    kinesis.put_records(StreamName=SOURCE, Records=records)


def expected_windows(ids) -> list[dict]:
    df = pd.DataFrame({"id": list(ids)})
    df["v"] = df["id"] % 7
    df["ts"] = T0 + pd.to_timedelta(df["id"], unit="s")
    grouped = df.groupby(pd.Grouper(key="ts", freq="10s")).agg(n=("id", "size"), total=("v", "sum"))
    return [{"window_start": f"{start:%Y-%m-%d %H:%M:%S}.000", "n": int(row.n), "total": int(row.total)}
            for start, row in grouped.iterrows()]


@pytest.fixture(scope="module")
def msf(stack):
    kinesis = stack.client("kinesis")
    for name in (SOURCE, SINK):
        kinesis.create_stream(StreamName=name, ShardCount=1)
    yield stack.client("kinesisanalyticsv2")
    for name in (SOURCE, SINK):
        kinesis.delete_stream(StreamName=name)


def test_windowed_sql_app_survives_stop_with_snapshot_and_restore(stack, msf, stream_json, kinesis_options):
    kinesis = stack.client("kinesis")
    detail = create(msf, "clickstream", app_sql(kinesis_options))
    assert detail["ApplicationStatus"] == "READY"
    assert detail["RuntimeEnvironment"] == "FLINK-1_19"

    put(kinesis, range(0, 35))                     # event seconds 0..34: windows 0, 10, 20 can close
    msf.start_application(ApplicationName="clickstream")
    assert status(msf, "clickstream") in ("STARTING", "RUNNING")
    wait_status(msf, "clickstream", "RUNNING")
    assert wait_until(lambda: len(stream_json(SINK)) >= 3, 90, poll=0.5), stream_json(SINK)

    # Stop with a snapshot: the window [30, 40) is open, in the savepoint.
    msf.stop_application(ApplicationName="clickstream", Force=False)
    wait_status(msf, "clickstream", "READY")
    snapshots = msf.list_application_snapshots(ApplicationName="clickstream")["SnapshotSummaries"]
    assert [s["SnapshotStatus"] for s in snapshots] == ["READY"]
    assert stream_json(SINK) == expected_windows(range(0, 30))

    # While it is stopped, more data arrives; then a late-enough record closes window 60.
    put(kinesis, range(35, 70))
    put(kinesis, [200])
    msf.start_application(ApplicationName="clickstream", RunConfiguration={
        "ApplicationRestoreConfiguration": {"ApplicationRestoreType": "RESTORE_FROM_LATEST_SNAPSHOT"}})
    wait_status(msf, "clickstream", "RUNNING")
    assert wait_until(lambda: len(stream_json(SINK)) >= 7, 90, poll=0.5), stream_json(SINK)
    rows = stream_json(SINK)
    assert rows == expected_windows(range(0, 70)), "a window lost or repeated across the restore"

    # A snapshot of the running application, listed, described, deleted.
    msf.create_application_snapshot(ApplicationName="clickstream", SnapshotName="manual-1")
    names = [s["SnapshotName"] for s in
             msf.list_application_snapshots(ApplicationName="clickstream")["SnapshotSummaries"]]
    assert len(names) == 2 and names[-1] == "manual-1"
    snap = msf.describe_application_snapshot(ApplicationName="clickstream",
                                             SnapshotName="manual-1")["SnapshotDetails"]
    assert snap["SnapshotStatus"] == "READY" and snap["RuntimeEnvironment"] == "FLINK-1_19"
    msf.delete_application_snapshot(ApplicationName="clickstream", SnapshotName="manual-1",
                                    SnapshotCreationTimestamp=snap["SnapshotCreationTimestamp"])
    assert len(msf.list_application_snapshots(ApplicationName="clickstream")["SnapshotSummaries"]) == 1

    # Deleting a running application halts its job, as on AWS.
    plane = stack.context.registry.planes["flink"]
    job = plane._runs[("us-east-1", "clickstream")].job_id
    created = msf.describe_application(ApplicationName="clickstream")["ApplicationDetail"]["CreateTimestamp"]
    msf.delete_application(ApplicationName="clickstream", CreateTimestamp=created)
    assert wait_until(lambda: plane.engine.cluster.job_state(job) == "CANCELED", 30, poll=0.5)
    with pytest.raises(ClientError) as err:
        msf.describe_application(ApplicationName="clickstream")
    assert err.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_sql_error_reaches_the_caller_with_flinks_message(msf):
    create(msf, "broken", "CREATE TABLE t (id BIGINT) WITH ('connector' = 'datagen');\n"
                          "INSERT INTO t SELEC id FROM t;")
    with pytest.raises(ClientError) as err:
        msf.start_application(ApplicationName="broken")
    error = err.value.response["Error"]
    assert error["Code"] == "InvalidApplicationConfigurationException"
    assert "SQL parse failed" in error["Message"], error["Message"]
    assert status(msf, "broken") == "READY"


def test_start_twice_unknown_app_and_bad_restore(msf):
    create(msf, "gen", DATAGEN_SQL, snapshots=False)
    with pytest.raises(ClientError) as err:
        msf.create_application(ApplicationName="gen", RuntimeEnvironment="FLINK-1_19",
                               ServiceExecutionRole="arn:aws:iam::123456789012:role/msf")
    assert err.value.response["Error"]["Code"] == "ResourceInUseException"

    with pytest.raises(ClientError) as err:
        msf.start_application(ApplicationName="gen", RunConfiguration={
            "ApplicationRestoreConfiguration": {"ApplicationRestoreType": "RESTORE_FROM_CUSTOM_SNAPSHOT",
                                                "SnapshotName": "nope"}})
    assert err.value.response["Error"]["Code"] == "ResourceNotFoundException"

    msf.start_application(ApplicationName="gen")
    with pytest.raises(ClientError) as err:
        msf.start_application(ApplicationName="gen")
    assert err.value.response["Error"]["Code"] == "ResourceInUseException"
    wait_status(msf, "gen", "RUNNING")
    with pytest.raises(ClientError) as err:          # snapshots are disabled for this one
        msf.create_application_snapshot(ApplicationName="gen", SnapshotName="s1")
    assert err.value.response["Error"]["Code"] == "InvalidRequestException"
    msf.stop_application(ApplicationName="gen", Force=True)
    wait_status(msf, "gen", "READY")
    assert msf.list_application_snapshots(ApplicationName="gen")["SnapshotSummaries"] == []

    for call, kwargs in [(msf.describe_application, {}), (msf.start_application, {}),
                         (msf.stop_application, {}), (msf.list_application_snapshots, {})]:
        with pytest.raises(ClientError) as err:
            call(ApplicationName="no-such-app", **kwargs)
        assert err.value.response["Error"]["Code"] in ("ResourceNotFoundException",), call
    with pytest.raises(ClientError) as err:          # not running: nothing to stop
        msf.stop_application(ApplicationName="gen")
    assert err.value.response["Error"]["Code"] == "ResourceInUseException"


def test_update_application_new_sql_and_version_checks(msf):
    detail = msf.describe_application(ApplicationName="gen")["ApplicationDetail"]
    version = detail["ApplicationVersionId"]
    with pytest.raises(ClientError) as err:
        msf.update_application(ApplicationName="gen", CurrentApplicationVersionId=version + 5,
                               ApplicationConfigurationUpdate={})
    assert err.value.response["Error"]["Code"] == "ConcurrentModificationException"

    msf.start_application(ApplicationName="gen")
    wait_status(msf, "gen", "RUNNING")
    new_sql = DATAGEN_SQL.replace("SELECT id FROM gen", "SELECT id * 2 FROM gen")
    updated = msf.update_application(
        ApplicationName="gen", CurrentApplicationVersionId=version,
        ApplicationConfigurationUpdate={"ApplicationCodeConfigurationUpdate": {
            "CodeContentUpdate": {"TextContentUpdate": new_sql}}})["ApplicationDetail"]
    assert updated["ApplicationVersionId"] == version + 1
    code = updated["ApplicationConfigurationDescription"]["ApplicationCodeConfigurationDescription"]
    assert code["CodeContentDescription"]["TextContent"] == new_sql
    wait_status(msf, "gen", "RUNNING")                 # restarted with the new SQL
    msf.stop_application(ApplicationName="gen", Force=True)
    wait_status(msf, "gen", "READY")


def test_stopping_the_plane_leaves_no_flink_process(stack, msf):
    plane = stack.context.registry.planes["flink"]
    pids = list(plane.engine.pids().values())
    assert len(pids) == 3                               # JobManager, TaskManager, SQL Gateway
    assert set(pids) <= set(stack.processes.pids())     # tracked: the stack ends them by PID
    plane.stop()                                        # what stack.stop() calls
    alive = [pid for pid in pids if psutil.pid_exists(pid)
             and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]
    assert alive == [] and plane.engine.pids() == {}


STACK_STOP_SCRIPT = """
import json, localaws
from localaws.core.waiting import wait_until
stack = localaws.start()
msf = stack.client("kinesisanalyticsv2")
msf.create_application(ApplicationName="gen", RuntimeEnvironment="FLINK-1_19",
    ServiceExecutionRole="arn:aws:iam::123456789012:role/msf",
    ApplicationConfiguration={"ApplicationCodeConfiguration": {"CodeContentType": "PLAINTEXT",
                              "CodeContent": {"TextContent": %r}}})
msf.start_application(ApplicationName="gen")
running = lambda: msf.describe_application(ApplicationName="gen")["ApplicationDetail"][
    "ApplicationStatus"] == "RUNNING"
assert wait_until(running, 120, poll=0.5)
pids = list(stack.context.registry.planes["flink"].engine.pids().values())
stack.stop()
print(json.dumps(pids))
""" % DATAGEN_SQL


def test_stack_stop_ends_the_flink_cluster():
    """A stack of its own, in a subprocess (the session's stack must keep running)."""
    import subprocess
    import sys
    done = subprocess.run([sys.executable, "-c", STACK_STOP_SCRIPT], capture_output=True,
                          text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    pids = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(pids) == 3
    alive = [pid for pid in pids if psutil.pid_exists(pid)
             and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]
    assert alive == []
