"""Redshift automated snapshots: taken on the stack's clock, kept for the retention period.

Redshift takes an automated snapshot about every 8 hours (or every 5 GB per
node of changes, not emulated) while AutomatedSnapshotRetentionPeriod is
above 0 (default 1 day), deletes each when its retention ends (always keeping
the latest), and deletes them all with the cluster; manual snapshots stay
until DeleteClusterSnapshot. Here the 8 hours are the stack's clock: the
tests freeze it and advance it, and the automated snapshots go through the
same content-addressed code as manual ones.

Uses the session ``stack``; each test resumes the clock and deletes what it made.
"""
from __future__ import annotations

import re

import pytest
from botocore.exceptions import ClientError

from localaws.redshift import snapshots

HOUR = 3600
MB = 1024 * 1024


def automated(redshift, cluster: str) -> list[dict]:
    """The cluster's automated snapshots, oldest first."""
    found = redshift.describe_cluster_snapshots(ClusterIdentifier=cluster, SnapshotType="automated")["Snapshots"]
    return sorted(found, key=lambda s: s["SnapshotCreateTime"])


def advance(stack, clock, seconds: float) -> None:
    """Move the clock and wait until the scheduler has acted on it (no real hours pass)."""
    clock.advance(seconds)
    assert stack.local.redshift.wait_automated_snapshots(timeout=60)


# ------------------------------------------------------------------ the schedule
def test_a_new_cluster_keeps_automated_snapshots_one_day_by_default(redshift, unique, clusters):
    name = unique("rs-auto")
    try:
        clusters.create(redshift, name)
        described = redshift.describe_clusters(ClusterIdentifier=name)["Clusters"][0]
        assert described["AutomatedSnapshotRetentionPeriod"] == 1
        (first,) = automated(redshift, name)
        assert first["SnapshotType"] == "automated" and first["Status"] == "available"
        assert re.fullmatch(rf"rs:{name}-\d{{4}}-\d\d-\d\d-\d\d-\d\d-\d\d", first["SnapshotIdentifier"])
        # Only Redshift deletes an automated snapshot.
        with pytest.raises(ClientError) as err:
            redshift.delete_cluster_snapshot(SnapshotIdentifier=first["SnapshotIdentifier"])
        assert err.value.response["Error"]["Code"] == "InvalidClusterSnapshotState"
    finally:
        clusters.drop(redshift, name)


def test_the_clock_takes_incremental_automated_snapshots_and_retention_deletes_them(
        stack, redshift, data, frozen, unique, clusters, statements, s3_objects):
    bucket = snapshots.bucket_name(stack.context.account_id, stack.region)
    name, manual = unique("rs-auto"), unique("manual")
    try:
        clusters.create(redshift, name, ClusterType="multi-node", NumberOfNodes=2)
        statements.run_ok(data, name, "CREATE TABLE sales (id INTEGER, amount DECIMAL(10,2)) DISTKEY (id)")
        statements.run_ok(data, name, "INSERT INTO sales SELECT i, i * 0.5 FROM generate_series(1, 20000) AS g(i)")
        assert len(automated(redshift, name)) == 1             # taken at creation, before the data

        advance(stack, frozen, 8 * HOUR - 1)
        assert len(automated(redshift, name)) == 1             # 1 s of clock time to go
        before = s3_objects(bucket)
        advance(stack, frozen, 1)
        full = automated(redshift, name)[-1]
        assert len(automated(redshift, name)) == 2
        # What it reports is what was really written to S3 (the 20,000 rows' blocks, the manifest).
        written = {k: v for k, v in s3_objects(bucket).items() if k not in before}
        assert abs(full["ActualIncrementalBackupSizeInMegaBytes"] * MB - sum(written.values())) < 1
        manifest = stack.local.redshift.snapshot_manifest(full["SnapshotIdentifier"])
        assert sum(s["rows"] for t in manifest["tables"] for s in t["slices"]) == 20000

        redshift.create_cluster_snapshot(ClusterIdentifier=name, SnapshotIdentifier=manual)
        statements.run_ok(data, name, "INSERT INTO sales VALUES (20001, 1.50)")
        before = s3_objects(bucket)
        advance(stack, frozen, 8 * HOUR)
        small = automated(redshift, name)[-1]
        written = {k: v for k, v in s3_objects(bucket).items() if k not in before}
        # One row changed: one new block and the manifest, not the whole table again.
        assert [k.split("/")[0] for k in sorted(written)] == ["blocks", "manifests"]
        assert abs(small["ActualIncrementalBackupSizeInMegaBytes"] * MB - sum(written.values())) < 1
        assert small["ActualIncrementalBackupSizeInMegaBytes"] < full["TotalBackupSizeInMegaBytes"] / 5

        # 24 hours after creation the first automated snapshot has reached its 1-day retention.
        first_id = automated(redshift, name)[0]["SnapshotIdentifier"]
        advance(stack, frozen, 8 * HOUR)
        ids = [s["SnapshotIdentifier"] for s in automated(redshift, name)]
        assert first_id not in ids and len(ids) == 3            # taken at 8, 16 and 24 hours
        assert f"manifests/{first_id}.json" not in s3_objects(bucket)
        # Two days on, the latest automated snapshot is still kept; the manual one stays.
        advance(stack, frozen, 48 * HOUR)
        left = automated(redshift, name)
        assert len(left) == 1 and left[0]["SnapshotIdentifier"] not in ids
        manual_listed = redshift.describe_cluster_snapshots(ClusterIdentifier=name, SnapshotType="manual")
        assert [s["SnapshotIdentifier"] for s in manual_listed["Snapshots"]] == [manual]
        print(f"\nautomated snapshots: full {full['ActualIncrementalBackupSizeInMegaBytes']:.4f} MB, after one "
              f"INSERT {small['ActualIncrementalBackupSizeInMegaBytes']:.4f} MB")
    finally:
        clusters.drop(redshift, name)
        clusters.drop_snapshots(redshift, manual)


def test_delete_cluster_deletes_its_automated_snapshots_and_keeps_manual_ones(
        stack, redshift, data, unique, clusters, statements, s3_objects):
    bucket = snapshots.bucket_name(stack.context.account_id, stack.region)
    name, manual = unique("rs-auto"), unique("manual")
    try:
        clusters.create(redshift, name)
        statements.run_ok(data, name, "CREATE TABLE t (id INTEGER) DISTSTYLE EVEN")
        statements.run_ok(data, name, "INSERT INTO t SELECT i FROM generate_series(1, 5000) AS g(i)")
        redshift.create_cluster_snapshot(ClusterIdentifier=name, SnapshotIdentifier=manual)
        (auto,) = automated(redshift, name)
        manual_blocks = {b["key"] for t in stack.local.redshift.snapshot_manifest(manual)["tables"]
                         for s in t["slices"] for b in s["blocks"]}
        redshift.delete_cluster(ClusterIdentifier=name, SkipFinalClusterSnapshot=True)
        assert automated(redshift, name) == []
        left = s3_objects(bucket)
        assert f"manifests/{auto['SnapshotIdentifier']}.json" not in left
        listed = redshift.describe_cluster_snapshots(ClusterIdentifier=name)["Snapshots"]
        assert [(s["SnapshotIdentifier"], s["SnapshotType"]) for s in listed] == [(manual, "manual")]
        assert f"manifests/{manual}.json" in left and manual_blocks <= set(left)
    finally:
        clusters.drop(redshift, name)
        clusters.drop_snapshots(redshift, manual)


# ------------------------------------------------------------------ the retention period
def test_retention_zero_disables_and_modify_cluster_applies_at_once(stack, redshift, frozen, unique, clusters):
    other, name = unique("rs-other"), unique("rs-off")
    try:
        clusters.create(redshift, other)                          # has an automated snapshot
        # DC2: retention 0 turns automated snapshots off (RA3 clusters cannot).
        clusters.create(redshift, name, node_type="dc2.large", AutomatedSnapshotRetentionPeriod=0)
        assert redshift.describe_clusters(ClusterIdentifier=name)["Clusters"][0][
            "AutomatedSnapshotRetentionPeriod"] == 0
        advance(stack, frozen, 8 * HOUR)
        # The type filter with a cluster that has none answers none (not every snapshot there is).
        assert automated(redshift, name) == []
        assert len(automated(redshift, other)) == 2

        redshift.modify_cluster(ClusterIdentifier=name, AutomatedSnapshotRetentionPeriod=3)
        assert redshift.describe_clusters(ClusterIdentifier=name)["Clusters"][0][
            "AutomatedSnapshotRetentionPeriod"] == 3
        # Turned on 8 hours after creation with none taken: the first one is due at once.
        assert stack.local.redshift.wait_automated_snapshots(timeout=60)
        assert len(automated(redshift, name)) == 1
        for _ in range(3):
            advance(stack, frozen, 8 * HOUR)
        assert len(automated(redshift, name)) == 4               # none older than 3 days yet
        # A shorter period deletes the snapshots outside it at once (the latest is always kept).
        redshift.modify_cluster(ClusterIdentifier=name, AutomatedSnapshotRetentionPeriod=1)
        assert len(automated(redshift, name)) == 3               # 8, 16 and 24 hours old
        # 0 disables them: Redshift "deletes any existing automated snapshots for the cluster".
        redshift.modify_cluster(ClusterIdentifier=name, AutomatedSnapshotRetentionPeriod=0)
        assert automated(redshift, name) == []
        advance(stack, frozen, 8 * HOUR)
        assert automated(redshift, name) == []
        assert len(automated(redshift, other)) == 3              # the other cluster's schedule went on
    finally:
        clusters.drop(redshift, name, other)


@pytest.mark.parametrize("node_type, days, code", [
    ("ra3.xlplus", 36, "InvalidParameterValue"),
    ("ra3.xlplus", -1, "InvalidParameterValue"),
    ("ra3.xlplus", 0, "InvalidParameterCombination"),      # "You can't disable automated snapshots for RA3"
])
def test_bad_retention_periods_are_refused_before_anything_is_made(
        redshift, unique, clusters, node_type, days, code):
    name = unique("rs-bad")
    with pytest.raises(ClientError) as err:
        clusters.create(redshift, name, node_type=node_type, AutomatedSnapshotRetentionPeriod=days)
    assert err.value.response["Error"]["Code"] == code
    with pytest.raises(ClientError) as err:
        redshift.describe_clusters(ClusterIdentifier=name)
    assert err.value.response["Error"]["Code"] == "ClusterNotFound"


def test_modify_cluster_refuses_a_bad_retention_and_changes_nothing(redshift, unique, clusters):
    name = unique("rs-mod")
    try:
        clusters.create(redshift, name, AutomatedSnapshotRetentionPeriod=5)
        for days, code in ((40, "InvalidParameterValue"), (0, "InvalidParameterCombination")):
            with pytest.raises(ClientError) as err:
                redshift.modify_cluster(ClusterIdentifier=name, AutomatedSnapshotRetentionPeriod=days)
            assert err.value.response["Error"]["Code"] == code
        described = redshift.describe_clusters(ClusterIdentifier=name)["Clusters"][0]
        assert described["AutomatedSnapshotRetentionPeriod"] == 5
        assert len(automated(redshift, name)) == 1
    finally:
        clusters.drop(redshift, name)


def test_describe_cluster_snapshots_filters_by_type_cluster_and_identifier(redshift, unique, clusters):
    name, manual = unique("rs-filter"), unique("manual")
    try:
        clusters.create(redshift, name)
        redshift.create_cluster_snapshot(ClusterIdentifier=name, SnapshotIdentifier=manual)
        mine = redshift.describe_cluster_snapshots(ClusterIdentifier=name)["Snapshots"]
        assert sorted(s["SnapshotType"] for s in mine) == ["automated", "manual"]
        only = redshift.describe_cluster_snapshots(ClusterIdentifier=name, SnapshotType="manual")["Snapshots"]
        assert [s["SnapshotIdentifier"] for s in only] == [manual]
        with pytest.raises(ClientError) as err:      # it exists, but is not automated
            redshift.describe_cluster_snapshots(SnapshotIdentifier=manual, SnapshotType="automated")
        assert err.value.response["Error"]["Code"] == "ClusterSnapshotNotFound"
        none = redshift.describe_cluster_snapshots(ClusterIdentifier=unique("no-such"))["Snapshots"]
        assert none == []
    finally:
        clusters.drop(redshift, name)
        clusters.drop_snapshots(redshift, manual)


def test_a_cluster_restores_from_its_automated_snapshot(
        stack, redshift, data, frozen, unique, clusters, statements):
    name, restored = unique("rs-auto"), unique("rs-back")
    try:
        clusters.create(redshift, name, AutomatedSnapshotRetentionPeriod=4)
        statements.run_ok(data, name, "CREATE TABLE t (id INTEGER, v VARCHAR(10)) DISTSTYLE EVEN")
        statements.run_ok(data, name, "INSERT INTO t SELECT i, 'v' || i FROM generate_series(1, 3000) AS g(i)")
        advance(stack, frozen, 8 * HOUR)
        latest = automated(redshift, name)[-1]["SnapshotIdentifier"]
        statements.run_ok(data, name, "DELETE FROM t WHERE id > 1000")        # after the snapshot
        redshift.restore_from_cluster_snapshot(ClusterIdentifier=restored, SnapshotIdentifier=latest)
        assert statements.records(data, restored, "SELECT count(*) FROM t")[0][0]["longValue"] == 3000
        # It keeps the source cluster's retention period ("the value selected for the cluster from
        # which the snapshot was taken"), and has automated snapshots of its own, of the restored data.
        assert redshift.describe_clusters(ClusterIdentifier=restored)["Clusters"][0][
            "AutomatedSnapshotRetentionPeriod"] == 4
        (own,) = automated(redshift, restored)
        manifest = stack.local.redshift.snapshot_manifest(own["SnapshotIdentifier"])
        assert sum(s["rows"] for t in manifest["tables"] for s in t["slices"]) == 3000
    finally:
        clusters.drop(redshift, restored, name)
