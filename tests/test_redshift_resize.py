"""Redshift resize: ResizeCluster (classic and elastic), ModifyCluster's resize, DescribeResize.

A classic resize copies every row to the new node count and routes it to a
slice by its table's DISTSTYLE/DISTKEY, so the slice count changes; an
elastic resize keeps the slices and moves them whole to the new nodes. Either
way no row is lost or changed: every table's checksum is the same after.

Uses the session ``stack``; every cluster a test creates is deleted by it.
"""
from __future__ import annotations

import time

import pytest
from botocore.exceptions import ClientError

TABLES = {"sales": "DISTSTYLE KEY DISTKEY (id) SORTKEY (id)", "events": "DISTSTYLE EVEN",
          "regions": "DISTSTYLE ALL"}


@pytest.fixture
def cluster(redshift, data, unique, clusters, statements):
    """A 2-node ra3.xlplus cluster (2 x 2 slices) with a KEY, an EVEN and an ALL table; deleted afterwards."""
    sizes = {"sales": 20000, "events": 999, "regions": 12}
    with clusters.running(redshift, unique("rs-resize"), ClusterType="multi-node", NumberOfNodes=2) as name:
        for table, style in TABLES.items():
            statements.run_ok(data, name, f"CREATE TABLE {table} (id INTEGER, v VARCHAR(20)) {style}")
            statements.run_ok(data, name, f"INSERT INTO {table} SELECT i, 'v' || i "
                                          f"FROM generate_series(1, {sizes[table]}) AS g(i)")
        yield name


class Layout:
    """The ``cluster``'s rows and slices, read through the Data API."""

    def __init__(self, data, statements, cluster: str):
        self.data, self.statements, self.cluster = data, statements, cluster

    def rows(self, sql: str) -> list[list]:
        """The result's rows, each field as its plain value."""
        return [[next(iter(f.values())) for f in r] for r in self.statements.records(self.data, self.cluster, sql)]

    def checksums(self) -> dict:
        return {t: self.rows(f"SELECT count(*), sum(hash(id, v)) FROM {t}")[0] for t in TABLES}

    def per_slice(self, table: str) -> dict[int, int]:
        return dict(self.rows(f"SELECT slice, rows FROM stv_tbl_perm WHERE name = '{table}' ORDER BY slice"))

    def slices(self) -> list[list]:
        return self.rows("SELECT node, slice FROM stv_slices ORDER BY slice")


@pytest.fixture
def layout(data, statements, cluster):
    """A :class:`Layout` of ``cluster``."""
    return Layout(data, statements, cluster)


def wait(stack, name: str) -> str:
    return stack.local.redshift.wait_resize(name, timeout=120)


# ------------------------------------------------------------------ classic
def test_classic_resize_routes_every_row_to_the_new_slices(stack, redshift, data, cluster, layout, statements):
    before = layout.checksums()
    assert layout.slices() == [[0, 0], [0, 1], [1, 2], [1, 3]]
    answer = redshift.resize_cluster(ClusterIdentifier=cluster, NodeType="ra3.xlplus", NumberOfNodes=3,
                                     Classic=True)["Cluster"]
    assert answer["ClusterStatus"] == "resizing"
    assert wait(stack, cluster) == "SUCCEEDED"

    resize = redshift.describe_resize(ClusterIdentifier=cluster)
    assert (resize["Status"], resize["ResizeType"], resize["TargetNodeType"], resize["TargetNumberOfNodes"],
            resize["TargetClusterType"]) == ("SUCCEEDED", "ClassicResize", "ra3.xlplus", 3, "multi-node")
    assert sorted(resize["ImportTablesCompleted"]) == ["public.events", "public.regions", "public.sales"]
    assert resize["ImportTablesInProgress"] == resize["ImportTablesNotStarted"] == []
    described = redshift.describe_clusters(ClusterIdentifier=cluster)["Clusters"][0]
    assert (described["ClusterStatus"], described["NumberOfNodes"]) == ("available", 3)

    # 3 nodes x the node type's 2 slices; every row is where its DISTSTYLE sends it on 6 slices.
    assert layout.slices() == [[n, s] for s in range(6) for n in [s // 2]]
    assert layout.checksums() == before
    expected = dict(layout.rows("SELECT CAST(hash(id) % 6 AS INTEGER), count(*) FROM sales GROUP BY 1"))
    assert layout.per_slice("sales") == expected
    assert sorted(layout.per_slice("events").values()) == [166, 166, 166, 167, 167, 167]
    assert layout.per_slice("regions") == {0: 12, 2: 12, 4: 12}   # one copy per node
    # The cluster takes writes again, routed on the new layout.
    statements.run_ok(data, cluster, "INSERT INTO sales VALUES (20001, 'new')")
    assert sum(layout.per_slice("sales").values()) == 20001


def test_statements_wait_for_a_resize_and_land_on_the_new_layout(
        stack, redshift, data, cluster, layout, statements):
    """On AWS a classic resize leaves the cluster read-only; here the rows move under the
    warehouse's lock, so a write (any new statement) waits for the resize to commit."""
    plane = stack.context.registry.planes["redshift"]
    warehouse = plane._cluster(stack.region, cluster).warehouse
    before = layout.checksums()
    warehouse.lock.acquire()            # a long resize: it cannot start moving rows yet
    try:
        redshift.resize_cluster(ClusterIdentifier=cluster, NodeType="ra3.xlplus", NumberOfNodes=3, Classic=True)
        progress = redshift.describe_resize(ClusterIdentifier=cluster)
        assert progress["Status"] == "IN_PROGRESS" and progress["ImportTablesCompleted"] == []
        assert redshift.describe_clusters(ClusterIdentifier=cluster)["Clusters"][0]["ClusterStatus"] == "resizing"
        for call in (lambda: redshift.resize_cluster(ClusterIdentifier=cluster, NumberOfNodes=4),
                     lambda: redshift.delete_cluster(ClusterIdentifier=cluster, SkipFinalClusterSnapshot=True),
                     lambda: redshift.pause_cluster(ClusterIdentifier=cluster)):
            with pytest.raises(ClientError) as err:
                call()
            assert err.value.response["Error"]["Code"] == "InvalidClusterState"
        write = statements.submit(data, cluster, "INSERT INTO events VALUES (0, 'during')")
        time.sleep(0.5)
        assert data.describe_statement(Id=write)["Status"] == "STARTED"        # the write waits
    finally:
        warehouse.lock.release()
    assert wait(stack, cluster) == "SUCCEEDED"
    statements.wait_ok(data, write)
    after = layout.checksums()
    assert after["events"][0] == before["events"][0] + 1 and after["sales"] == before["sales"]
    assert sum(layout.per_slice("events").values()) == 1000 and len(layout.per_slice("events")) == 6


def test_modify_cluster_with_node_type_and_count_is_a_classic_resize(stack, redshift, cluster, layout):
    before = layout.checksums()
    # NumberOfNodes alone is refused, as AWS refuses it; nothing changes.
    with pytest.raises(ClientError) as err:
        redshift.modify_cluster(ClusterIdentifier=cluster, NumberOfNodes=3)
    assert err.value.response["Error"]["Code"] == "InvalidParameterCombination"
    with pytest.raises(ClientError) as err:     # the size it has already
        redshift.modify_cluster(ClusterIdentifier=cluster, NodeType="ra3.xlplus", NumberOfNodes=2)
    assert err.value.response["Error"]["Code"] == "InvalidParameterCombination"
    described = redshift.describe_clusters(ClusterIdentifier=cluster)["Clusters"][0]
    assert (described["ClusterStatus"], described["NumberOfNodes"]) == ("available", 2)
    with pytest.raises(ClientError) as err:
        redshift.describe_resize(ClusterIdentifier=cluster)
    assert err.value.response["Error"]["Code"] == "ResizeNotFound"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404

    # Another node type: ra3.4xlarge has 4 slices per node.
    answer = redshift.modify_cluster(ClusterIdentifier=cluster, NodeType="ra3.4xlarge", NumberOfNodes=2)
    assert answer["Cluster"]["ClusterStatus"] == "resizing"
    assert wait(stack, cluster) == "SUCCEEDED"
    assert redshift.describe_resize(ClusterIdentifier=cluster)["ResizeType"] == "ClassicResize"
    described = redshift.describe_clusters(ClusterIdentifier=cluster)["Clusters"][0]
    assert (described["NodeType"], described["NumberOfNodes"]) == ("ra3.4xlarge", 2)
    assert len(layout.slices()) == 8 and layout.checksums() == before
    # To a single node: the node count goes with ClusterType single-node.
    redshift.modify_cluster(ClusterIdentifier=cluster, NodeType="ra3.xlplus", ClusterType="single-node")
    assert wait(stack, cluster) == "SUCCEEDED"
    assert layout.slices() == [[0, 0], [0, 1]] and layout.checksums() == before
    assert layout.per_slice("regions") == {0: 12}


# ------------------------------------------------------------------ elastic
def test_elastic_resize_keeps_the_slices_and_moves_them_to_the_new_nodes(
        stack, redshift, data, cluster, layout, statements):
    before, sales = layout.checksums(), layout.per_slice("sales")
    answer = redshift.resize_cluster(ClusterIdentifier=cluster, NumberOfNodes=4)["Cluster"]   # elastic
    assert answer["ClusterStatus"] == "resizing"
    assert wait(stack, cluster) == "SUCCEEDED"
    resize = redshift.describe_resize(ClusterIdentifier=cluster)
    assert (resize["ResizeType"], resize["TargetNumberOfNodes"]) == ("ElasticResize", 4)
    assert resize["ImportTablesCompleted"] == ["public.regions"]        # only ALL tables get new copies
    assert redshift.describe_clusters(ClusterIdentifier=cluster)["Clusters"][0]["NumberOfNodes"] == 4
    # The same 4 slices, one per node now; no row changed slice.
    assert layout.slices() == [[0, 0], [1, 1], [2, 2], [3, 3]]
    assert layout.per_slice("sales") == sales
    assert layout.per_slice("regions") == {0: 12, 1: 12, 2: 12, 3: 12}
    assert layout.checksums() == before

    # Paused and resumed, the cluster opens with the slices it has (not the node type's default).
    redshift.pause_cluster(ClusterIdentifier=cluster)
    redshift.resume_cluster(ClusterIdentifier=cluster)
    assert layout.slices() == [[0, 0], [1, 1], [2, 2], [3, 3]]
    assert layout.checksums() == before
    statements.run_ok(data, cluster, "INSERT INTO regions VALUES (13, 'v13')")
    assert layout.per_slice("regions") == {0: 13, 1: 13, 2: 13, 3: 13}


@pytest.mark.parametrize("kwargs, code", [
    ({"NumberOfNodes": 5}, "UnsupportedOperation"),            # 4 slices cannot cover 5 nodes
    ({"NumberOfNodes": 1}, "UnsupportedOperation"),            # elastic resize: not to a single node
    ({"NumberOfNodes": 3, "Classic": True}, "InvalidParameterCombination"),  # classic needs NodeType
    ({"NumberOfNodes": 3, "NodeType": "ra3.huge"}, "InvalidParameterValue"),
    ({"NumberOfNodes": 1, "ClusterType": "multi-node", "NodeType": "ra3.xlplus", "Classic": True},
     "InvalidParameterCombination"),
])
def test_bad_resizes_are_refused_and_change_nothing(redshift, cluster, layout, kwargs, code):
    with pytest.raises(ClientError) as err:
        redshift.resize_cluster(ClusterIdentifier=cluster, **kwargs)
    assert err.value.response["Error"]["Code"] == code
    described = redshift.describe_clusters(ClusterIdentifier=cluster)["Clusters"][0]
    assert (described["ClusterStatus"], described["NumberOfNodes"]) == ("available", 2)
    assert len(layout.slices()) == 4


def test_resize_and_describe_resize_of_a_missing_cluster(redshift):
    for call in (lambda: redshift.resize_cluster(ClusterIdentifier="no-such-cluster", NumberOfNodes=2),
                 lambda: redshift.describe_resize(ClusterIdentifier="no-such-cluster")):
        with pytest.raises(ClientError) as err:
            call()
        assert err.value.response["Error"]["Code"] == "ClusterNotFound"
        assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
