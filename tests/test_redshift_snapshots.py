"""Redshift snapshots: blocks in S3, content-addressed and incremental; restores; cross-region copies.

Uses the session ``stack`` (never stopped here); every cluster and snapshot a
test creates is deleted by it.
"""
from __future__ import annotations

import threading
import time

import pytest
from botocore.exceptions import ClientError

from localaws.redshift import snapshots

MB = 1024 * 1024
OTHER_REGION = "eu-west-1"
CHECKSUM = "SELECT count(*), sum(hash(id, name, amount)) FROM sales"


@pytest.fixture
def loaded(redshift, data, unique, clusters, statements):
    """A 2-node cluster (4 slices) with 20,000 rows in ``sales`` (DISTKEY id); deleted afterwards."""
    with clusters.running(redshift, unique("rs"), ClusterType="multi-node", NumberOfNodes=2) as name:
        statements.run_ok(data, name, "CREATE TABLE sales (id INTEGER, name VARCHAR(20), amount DECIMAL(10,2)) "
                                      "DISTSTYLE KEY DISTKEY (id) SORTKEY (id)")
        statements.run_ok(data, name, "INSERT INTO sales SELECT i, 'n' || i, i * 0.5 "
                                      "FROM generate_series(1, 20000) AS g(i)")
        yield name


def snapshot(redshift, cluster: str, name: str) -> dict:
    redshift.create_cluster_snapshot(ClusterIdentifier=cluster, SnapshotIdentifier=name)
    return redshift.describe_cluster_snapshots(SnapshotIdentifier=name)["Snapshots"][0]


# ------------------------------------------------------------------ sizes, restore, delete
def test_incremental_snapshot_restore_and_delete(
        stack, redshift, data, loaded, unique, clusters, statements, s3_objects):
    bucket = snapshots.bucket_name(stack.context.account_id, stack.region)
    first, second = unique("snap"), unique("snap")
    restored = unique("rs-restored")
    try:
        before = s3_objects(bucket)
        at_first = statements.records(data, loaded, CHECKSUM)
        one = snapshot(redshift, loaded, first)
        after_one = s3_objects(bucket)
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

        statements.run_ok(data, loaded, "INSERT INTO sales VALUES (20001, 'new', 1.50)")
        at_second = statements.records(data, loaded, CHECKSUM)
        two = snapshot(redshift, loaded, second)
        after_two = s3_objects(bucket)
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

        statements.run_ok(data, loaded, "DELETE FROM sales WHERE id <= 100")        # after both snapshots
        assert statements.records(data, loaded, CHECKSUM) != at_second

        # Restore the first snapshot: the rows as they were then, not as they are now.
        redshift.restore_from_cluster_snapshot(ClusterIdentifier=restored, SnapshotIdentifier=first)
        described = redshift.describe_clusters(ClusterIdentifier=restored)["Clusters"][0]
        assert described["Endpoint"]["Address"] == "127.0.0.1" and described["NumberOfNodes"] == 2
        assert described["RestoreStatus"]["Status"] == "completed"
        assert statements.records(data, restored, CHECKSUM) == at_first
        info = statements.run_ok(data, restored, "SELECT count(*) FROM svv_table_info WHERE \"table\" = 'sales'")
        assert info["Status"] == "FINISHED"
        clusters.drop(redshift, restored)

        # Delete the second snapshot: its own block goes, the shared ones stay for the first.
        redshift.delete_cluster_snapshot(SnapshotIdentifier=second)
        left = s3_objects(bucket)
        assert f"manifests/{second}.json" not in left
        assert all(k not in left for k in new_two)
        assert keys <= set(left)
        redshift.delete_cluster_snapshot(SnapshotIdentifier=first)
        left = s3_objects(bucket)
        assert not keys & set(left)
    finally:
        clusters.drop(redshift, restored)
        clusters.drop_snapshots(redshift, first, second)


def test_restore_to_another_node_count_redistributes(redshift, data, loaded, unique, clusters, statements):
    name, restored = unique("snap"), unique("rs-small")
    try:
        expected = statements.records(data, loaded, CHECKSUM)
        snapshot(redshift, loaded, name)
        redshift.restore_from_cluster_snapshot(ClusterIdentifier=restored, SnapshotIdentifier=name,
                                               NodeType="ra3.xlplus", NumberOfNodes=1)
        assert statements.records(data, restored, CHECKSUM) == expected
        slices = statements.records(data, restored, "SELECT count(DISTINCT slice) FROM stv_slices")
        assert slices[0][0]["longValue"] == 2
    finally:
        clusters.drop(redshift, restored)
        clusters.drop_snapshots(redshift, name)


def test_restore_from_a_missing_snapshot(redshift, unique):
    name = unique("rs")
    with pytest.raises(ClientError) as err:
        redshift.restore_from_cluster_snapshot(ClusterIdentifier=name, SnapshotIdentifier="no-such-snapshot")
    assert err.value.response["Error"]["Code"] == "ClusterSnapshotNotFound"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    with pytest.raises(ClientError) as err:
        redshift.describe_clusters(ClusterIdentifier=name)
    assert err.value.response["Error"]["Code"] == "ClusterNotFound"      # nothing half-made


def test_final_snapshot_of_a_deleted_cluster_restores(redshift, data, unique, clusters, statements):
    source, final, restored = unique("rs"), unique("final"), unique("rs-back")
    try:
        clusters.create(redshift, source)
        statements.run_ok(data, source, "CREATE TABLE t (id BIGINT IDENTITY(1, 1), v VARCHAR(10)) DISTSTYLE ALL")
        statements.run_ok(data, source, "INSERT INTO t (v) VALUES ('a'), ('b')")
        redshift.delete_cluster(ClusterIdentifier=source, SkipFinalClusterSnapshot=False,
                                FinalClusterSnapshotIdentifier=final)
        redshift.restore_from_cluster_snapshot(ClusterIdentifier=restored, SnapshotIdentifier=final)
        statements.run_ok(data, restored, "INSERT INTO t (v) VALUES ('c')")   # the IDENTITY goes on where it was
        rows = [[f.get("longValue", f.get("stringValue")) for f in r]
                for r in statements.records(data, restored, "SELECT id, v FROM t ORDER BY id")]
        assert rows == [[1, "a"], [2, "b"], [3, "c"]]
    finally:
        clusters.drop(redshift, source, restored)
        clusters.drop_snapshots(redshift, final)


# ------------------------------------------------------------------ cross-region copy
def test_snapshot_copy_to_another_region_and_restore_there(
        stack, redshift, data, loaded, unique, clusters, statements, s3_objects, regional_client):
    name, restored = unique("snap"), unique("rs-dr")
    far = regional_client("redshift", OTHER_REGION)
    far_data = regional_client("redshift-data", OTHER_REGION)
    with pytest.raises(ClientError) as err:
        redshift.enable_snapshot_copy(ClusterIdentifier=loaded, DestinationRegion="mars-north-1")
    assert err.value.response["Error"]["Code"] == "UnknownSnapshotCopyRegionFault"
    redshift.enable_snapshot_copy(ClusterIdentifier=loaded, DestinationRegion=OTHER_REGION)
    try:
        expected = statements.records(data, loaded, CHECKSUM)
        snapshot(redshift, loaded, name)
        statements.run_ok(data, loaded, "INSERT INTO sales VALUES (0, 'later', 0)")

        # The destination region's bucket holds the manifest and every block it names.
        s3 = stack.client("s3")
        bucket = snapshots.bucket_name(stack.context.account_id, OTHER_REGION)
        assert s3.get_bucket_location(Bucket=bucket)["LocationConstraint"] == OTHER_REGION
        manifest = stack.local.redshift.snapshot_manifest(name, region=OTHER_REGION)
        there = s3_objects(bucket)
        assert {b["key"] for t in manifest["tables"] for s in t["slices"] for b in s["blocks"]} <= set(there)

        copy = far.describe_cluster_snapshots(SnapshotIdentifier=name)["Snapshots"][0]
        assert copy["SourceRegion"] == stack.region and copy["Status"] == "available"
        far.restore_from_cluster_snapshot(ClusterIdentifier=restored, SnapshotIdentifier=name)
        assert statements.records(far_data, restored, CHECKSUM) == expected
        with pytest.raises(ClientError):          # the restored cluster is in the other region only
            redshift.describe_clusters(ClusterIdentifier=restored)
    finally:
        clusters.drop(far, restored)
        clusters.drop_snapshots(far, name)
        clusters.drop_snapshots(redshift, name)
        redshift.disable_snapshot_copy(ClusterIdentifier=loaded)


# ------------------------------------------------------------------ consistency
def test_snapshot_while_inserts_run_is_consistent(redshift, data, loaded, unique, clusters, statements):
    """Each INSERT adds 500 rows in one statement: a snapshot holds whole INSERTs only."""
    name, restored = unique("snap"), unique("rs-cons")
    statements.run_ok(data, loaded, "CREATE TABLE ticks (n INTEGER, batch INTEGER) DISTSTYLE EVEN")
    stop = threading.Event()
    batches = []

    def writer():
        b = 0
        while not stop.is_set() and b < 200:
            statements.run_ok(data, loaded, f"INSERT INTO ticks SELECT i, {b} FROM generate_series(1, 500) "
                                            "AS g(i)")
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
        row = statements.records(data, restored, "SELECT count(*), count(DISTINCT batch), min(batch), "
                                                 "max(batch) FROM ticks")[0]
        count, distinct, low, high = [f["longValue"] for f in row]
        assert count == 500 * distinct and low == 0 and high == distinct - 1 and distinct >= 3
        uneven = statements.records(data, restored, "SELECT count(*) FROM (SELECT batch FROM ticks GROUP BY batch "
                                                    "HAVING count(*) <> 500) x")
        assert uneven[0][0]["longValue"] == 0
    finally:
        stop.set()
        thread.join(timeout=120)
        clusters.drop(redshift, restored)
        clusters.drop_snapshots(redshift, name)
