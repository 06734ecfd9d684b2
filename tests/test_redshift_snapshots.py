"""Redshift snapshots: blocks in S3, content-addressed and incremental; restores; cross-region copies.

Uses the session ``stack`` (never stopped here); every cluster and snapshot a
test creates is deleted by it.
"""
from __future__ import annotations

import threading
import time
import uuid

import boto3
import pytest
from botocore.exceptions import ClientError

from localaws.redshift import snapshots

PASSWORD = "Passw0rd1"
MB = 1024 * 1024
OTHER_REGION = "eu-west-1"
CHECKSUM = "SELECT count(*), sum(hash(id, name, amount)) FROM sales"


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def regional(stack, service: str, region: str):
    """A client of the stack signing for another region."""
    c = stack.context.principals.credentials(None)
    return boto3.client(service, endpoint_url=stack.endpoint, region_name=region, aws_access_key_id=c.access_key,
                        aws_secret_access_key=c.secret_key, aws_session_token=c.session_token)


def run(data, cluster: str, sql: str) -> dict:
    sid = data.execute_statement(ClusterIdentifier=cluster, Database="dev", DbUser="admin", Sql=sql)["Id"]
    deadline = time.monotonic() + 60
    while True:
        desc = data.describe_statement(Id=sid)
        if desc["Status"] in ("FINISHED", "FAILED", "ABORTED"):
            assert desc["Status"] == "FINISHED", desc.get("Error")
            return desc
        assert time.monotonic() < deadline, "statement did not end"
        time.sleep(0.05)


def checksum(data, cluster: str) -> list:
    sid = run(data, cluster, CHECKSUM)["Id"]
    return data.get_statement_result(Id=sid)["Records"]


def objects(s3, bucket: str) -> dict[str, int]:
    """{key: size} of the bucket (empty when it does not exist yet)."""
    try:
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        return {o["Key"]: o["Size"] for page in pages for o in page.get("Contents", [])}
    except ClientError:
        return {}


def create(redshift, name: str, **kwargs) -> str:
    redshift.create_cluster(ClusterIdentifier=name, NodeType="ra3.xlplus", MasterUsername="admin",
                            MasterUserPassword=PASSWORD, DBName="dev", **kwargs)
    return name


def drop(redshift, *names: str) -> None:
    for name in names:
        try:
            redshift.delete_cluster(ClusterIdentifier=name, SkipFinalClusterSnapshot=True)
        except ClientError:
            pass


def drop_snapshots(redshift, *names: str) -> None:
    for name in names:
        try:
            redshift.delete_cluster_snapshot(SnapshotIdentifier=name)
        except ClientError:
            pass


@pytest.fixture
def loaded(redshift, data):
    """A 2-node cluster (4 slices) with 20,000 rows in ``sales`` (DISTKEY id); deleted afterwards."""
    name = create(redshift, _unique("rs"), ClusterType="multi-node", NumberOfNodes=2)
    run(data, name, "CREATE TABLE sales (id INTEGER, name VARCHAR(20), amount DECIMAL(10,2)) "
                    "DISTSTYLE KEY DISTKEY (id) SORTKEY (id)")
    run(data, name, "INSERT INTO sales SELECT i, 'n' || i, i * 0.5 FROM generate_series(1, 20000) AS g(i)")
    yield name
    drop(redshift, name)


def snapshot(redshift, cluster: str, name: str) -> dict:
    redshift.create_cluster_snapshot(ClusterIdentifier=cluster, SnapshotIdentifier=name)
    return redshift.describe_cluster_snapshots(SnapshotIdentifier=name)["Snapshots"][0]


# ------------------------------------------------------------------ sizes, restore, delete
def test_incremental_snapshot_restore_and_delete(stack, redshift, data, loaded):
    s3 = stack.client("s3")
    bucket = snapshots.bucket_name(stack.context.account_id, stack.region)
    first, second = _unique("snap"), _unique("snap")
    restored = _unique("rs-restored")
    try:
        before = objects(s3, bucket)
        at_first = checksum(data, loaded)
        one = snapshot(redshift, loaded, first)
        after_one = objects(s3, bucket)
        new_one = {k: v for k, v in after_one.items() if k not in before}
        assert one["Status"] == "available" and one["SnapshotType"] == "manual"
        # What DescribeClusterSnapshots reports is what was really written to S3.
        assert abs(one["ActualIncrementalBackupSizeInMegaBytes"] * MB - sum(new_one.values())) < 1
        manifest = stack.local.redshift.snapshot_manifest(first)
        keys = {b["key"] for t in manifest["tables"] for s in t["slices"] for b in s["blocks"]}
        total = sum(after_one[k] for k in keys) + after_one[f"manifests/{first}.json"]
        assert abs(one["TotalBackupSizeInMegaBytes"] * MB - total) < 1
        assert sum(s["rows"] for s in manifest["tables"][0]["slices"]) == 20000
        assert len(keys) >= 8          # 4 slices of 5,000 rows, 2,048-row blocks: 3 blocks each

        run(data, loaded, "INSERT INTO sales VALUES (20001, 'new', 1.50)")
        at_second = checksum(data, loaded)
        two = snapshot(redshift, loaded, second)
        after_two = objects(s3, bucket)
        new_two = {k: v for k, v in after_two.items() if k not in after_one}
        assert abs(two["ActualIncrementalBackupSizeInMegaBytes"] * MB - sum(new_two.values())) < 1
        # One row changed one slice's last block: one new block and the manifest, nothing else.
        assert [k.split("/")[0] for k in sorted(new_two)] == ["blocks", "manifests"]
        assert two["ActualIncrementalBackupSizeInMegaBytes"] < one["TotalBackupSizeInMegaBytes"] / 5
        assert two["TotalBackupSizeInMegaBytes"] > one["TotalBackupSizeInMegaBytes"] * 0.9
        print(f"\nfirst snapshot: {sum(new_one.values())} bytes written "
              f"({one['ActualIncrementalBackupSizeInMegaBytes']:.4f} MB); second after one INSERT: "
              f"{sum(new_two.values())} bytes written ({two['ActualIncrementalBackupSizeInMegaBytes']:.4f} MB) "
              f"of {two['TotalBackupSizeInMegaBytes']:.4f} MB total; new objects {sorted(new_two.values())}")

        run(data, loaded, "DELETE FROM sales WHERE id <= 100")        # after both snapshots
        assert checksum(data, loaded) != at_second

        # Restore the first snapshot: the rows as they were then, not as they are now.
        redshift.restore_from_cluster_snapshot(ClusterIdentifier=restored, SnapshotIdentifier=first)
        described = redshift.describe_clusters(ClusterIdentifier=restored)["Clusters"][0]
        assert described["Endpoint"]["Address"] == "127.0.0.1" and described["NumberOfNodes"] == 2
        assert described["RestoreStatus"]["Status"] == "completed"
        assert checksum(data, restored) == at_first
        info = run(data, restored, "SELECT count(*) FROM svv_table_info WHERE \"table\" = 'sales'")
        assert info["Status"] == "FINISHED"
        drop(redshift, restored)

        # Delete the second snapshot: its own block goes, the shared ones stay for the first.
        redshift.delete_cluster_snapshot(SnapshotIdentifier=second)
        left = objects(s3, bucket)
        assert f"manifests/{second}.json" not in left
        assert all(k not in left for k in new_two)
        assert keys <= set(left)
        redshift.delete_cluster_snapshot(SnapshotIdentifier=first)
        left = objects(s3, bucket)
        assert not keys & set(left)
    finally:
        drop(redshift, restored)
        drop_snapshots(redshift, first, second)


def test_restore_to_another_node_count_redistributes(redshift, data, loaded):
    name, restored = _unique("snap"), _unique("rs-small")
    try:
        expected = checksum(data, loaded)
        snapshot(redshift, loaded, name)
        redshift.restore_from_cluster_snapshot(ClusterIdentifier=restored, SnapshotIdentifier=name,
                                               NodeType="ra3.xlplus", NumberOfNodes=1)
        assert checksum(data, restored) == expected
        sid = run(data, restored, "SELECT count(DISTINCT slice) FROM stv_slices")["Id"]
        assert data.get_statement_result(Id=sid)["Records"][0][0]["longValue"] == 2
    finally:
        drop(redshift, restored)
        drop_snapshots(redshift, name)


def test_restore_from_a_missing_snapshot(redshift):
    name = _unique("rs")
    with pytest.raises(ClientError) as err:
        redshift.restore_from_cluster_snapshot(ClusterIdentifier=name, SnapshotIdentifier="no-such-snapshot")
    assert err.value.response["Error"]["Code"] == "ClusterSnapshotNotFound"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    with pytest.raises(ClientError) as err:
        redshift.describe_clusters(ClusterIdentifier=name)
    assert err.value.response["Error"]["Code"] == "ClusterNotFound"      # nothing half-made


def test_final_snapshot_of_a_deleted_cluster_restores(redshift, data):
    source, final, restored = _unique("rs"), _unique("final"), _unique("rs-back")
    try:
        create(redshift, source)
        run(data, source, "CREATE TABLE t (id BIGINT IDENTITY(1, 1), v VARCHAR(10)) DISTSTYLE ALL")
        run(data, source, "INSERT INTO t (v) VALUES ('a'), ('b')")
        redshift.delete_cluster(ClusterIdentifier=source, SkipFinalClusterSnapshot=False,
                                FinalClusterSnapshotIdentifier=final)
        redshift.restore_from_cluster_snapshot(ClusterIdentifier=restored, SnapshotIdentifier=final)
        run(data, restored, "INSERT INTO t (v) VALUES ('c')")     # the IDENTITY goes on where it was
        sid = run(data, restored, "SELECT id, v FROM t ORDER BY id")["Id"]
        rows = [[f.get("longValue", f.get("stringValue")) for f in r]
                for r in data.get_statement_result(Id=sid)["Records"]]
        assert rows == [[1, "a"], [2, "b"], [3, "c"]]
    finally:
        drop(redshift, source, restored)
        drop_snapshots(redshift, final)


# ------------------------------------------------------------------ cross-region copy
def test_snapshot_copy_to_another_region_and_restore_there(stack, redshift, data, loaded):
    name, restored = _unique("snap"), _unique("rs-dr")
    far = regional(stack, "redshift", OTHER_REGION)
    far_data = regional(stack, "redshift-data", OTHER_REGION)
    with pytest.raises(ClientError) as err:
        redshift.enable_snapshot_copy(ClusterIdentifier=loaded, DestinationRegion="mars-north-1")
    assert err.value.response["Error"]["Code"] == "UnknownSnapshotCopyRegionFault"
    redshift.enable_snapshot_copy(ClusterIdentifier=loaded, DestinationRegion=OTHER_REGION)
    try:
        expected = checksum(data, loaded)
        snapshot(redshift, loaded, name)
        run(data, loaded, "INSERT INTO sales VALUES (0, 'later', 0)")

        # The destination region's bucket holds the manifest and every block it names.
        s3 = stack.client("s3")
        bucket = snapshots.bucket_name(stack.context.account_id, OTHER_REGION)
        assert s3.get_bucket_location(Bucket=bucket)["LocationConstraint"] == OTHER_REGION
        manifest = stack.local.redshift.snapshot_manifest(name, region=OTHER_REGION)
        there = objects(s3, bucket)
        assert {b["key"] for t in manifest["tables"] for s in t["slices"] for b in s["blocks"]} <= set(there)

        copy = far.describe_cluster_snapshots(SnapshotIdentifier=name)["Snapshots"][0]
        assert copy["SourceRegion"] == stack.region and copy["Status"] == "available"
        far.restore_from_cluster_snapshot(ClusterIdentifier=restored, SnapshotIdentifier=name)
        assert checksum(far_data, restored) == expected
        with pytest.raises(ClientError):          # the restored cluster is in the other region only
            redshift.describe_clusters(ClusterIdentifier=restored)
    finally:
        drop(far, restored)
        drop_snapshots(far, name)
        drop_snapshots(redshift, name)
        redshift.disable_snapshot_copy(ClusterIdentifier=loaded)


# ------------------------------------------------------------------ consistency
def test_snapshot_while_inserts_run_is_consistent(redshift, data, loaded):
    """Each INSERT adds 500 rows in one statement: a snapshot holds whole INSERTs only."""
    name, restored = _unique("snap"), _unique("rs-cons")
    run(data, loaded, "CREATE TABLE ticks (n INTEGER, batch INTEGER) DISTSTYLE EVEN")
    stop = threading.Event()
    batches = []

    def writer():
        b = 0
        while not stop.is_set() and b < 200:
            run(data, loaded, f"INSERT INTO ticks SELECT i, {b} FROM generate_series(1, 500) AS g(i)")
            batches.append(b)
            b += 1
    thread = threading.Thread(target=writer)
    thread.start()
    try:
        while len(batches) < 3:
            time.sleep(0.05)
        snapshot(redshift, loaded, name)
        stop.set()
        thread.join(timeout=120)
        redshift.restore_from_cluster_snapshot(ClusterIdentifier=restored, SnapshotIdentifier=name)
        sid = run(data, restored, "SELECT count(*), count(DISTINCT batch), min(batch), max(batch) FROM ticks")["Id"]
        count, distinct, low, high = [f["longValue"] for f in data.get_statement_result(Id=sid)["Records"][0]]
        assert count == 500 * distinct and low == 0 and high == distinct - 1 and distinct >= 3
        sid = run(data, restored, "SELECT count(*) FROM (SELECT batch FROM ticks GROUP BY batch "
                                  "HAVING count(*) <> 500) x")["Id"]
        assert data.get_statement_result(Id=sid)["Records"][0][0]["longValue"] == 0
    finally:
        stop.set()
        thread.join(timeout=120)
        drop(redshift, restored)
        drop_snapshots(redshift, name)
