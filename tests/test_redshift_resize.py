"""Redshift resize: ResizeCluster (classic and elastic), ModifyCluster's resize, DescribeResize.

A classic resize copies every row to the new node count and routes it to a
slice by its table's DISTSTYLE/DISTKEY, so the slice count changes; an
elastic resize keeps the slices and moves them whole to the new nodes. Either
way no row is lost or changed: every table's checksum is the same after.

Uses the session ``stack``; every cluster a test creates is deleted by it.
"""
from __future__ import annotations

import time
import uuid

import pytest
from botocore.exceptions import ClientError

PASSWORD = "Passw0rd1"
TABLES = {"sales": "DISTSTYLE KEY DISTKEY (id) SORTKEY (id)", "events": "DISTSTYLE EVEN",
          "regions": "DISTSTYLE ALL"}


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def submit(data, cluster: str, sql: str) -> str:
    return data.execute_statement(ClusterIdentifier=cluster, Database="dev", DbUser="admin", Sql=sql)["Id"]


def finish(data, sid: str) -> dict:
    deadline = time.monotonic() + 60
    while True:
        desc = data.describe_statement(Id=sid)
        if desc["Status"] in ("FINISHED", "FAILED", "ABORTED"):
            assert desc["Status"] == "FINISHED", desc.get("Error")
            return desc
        assert time.monotonic() < deadline, "statement did not end"
        time.sleep(0.05)


def rows(data, cluster: str, sql: str) -> list[list]:
    sid = finish(data, submit(data, cluster, sql))["Id"]
    return [[next(iter(f.values())) for f in r] for r in data.get_statement_result(Id=sid)["Records"]]


def checksums(data, cluster: str) -> dict:
    return {t: rows(data, cluster, f"SELECT count(*), sum(hash(id, v)) FROM {t}")[0] for t in TABLES}


def per_slice(data, cluster: str, table: str) -> dict[int, int]:
    return dict(rows(data, cluster, f"SELECT slice, rows FROM stv_tbl_perm WHERE name = '{table}' ORDER BY slice"))


def slices(data, cluster: str) -> list[list]:
    return rows(data, cluster, "SELECT node, slice FROM stv_slices ORDER BY slice")


def drop(redshift, *names: str) -> None:
    for name in names:
        try:
            redshift.delete_cluster(ClusterIdentifier=name, SkipFinalClusterSnapshot=True)
        except ClientError:
            pass


@pytest.fixture
def cluster(redshift, data):
    """A 2-node ra3.xlplus cluster (2 x 2 slices) with a KEY, an EVEN and an ALL table; deleted afterwards."""
    name = _unique("rs-resize")
    redshift.create_cluster(ClusterIdentifier=name, NodeType="ra3.xlplus", ClusterType="multi-node",
                            NumberOfNodes=2, MasterUsername="admin", MasterUserPassword=PASSWORD, DBName="dev")
    sizes = {"sales": 20000, "events": 999, "regions": 12}
    for table, style in TABLES.items():
        finish(data, submit(data, name, f"CREATE TABLE {table} (id INTEGER, v VARCHAR(20)) {style}"))
        finish(data, submit(data, name, f"INSERT INTO {table} SELECT i, 'v' || i "
                                        f"FROM generate_series(1, {sizes[table]}) AS g(i)"))
    yield name
    drop(redshift, name)


def wait(stack, name: str) -> str:
    return stack.local.redshift.wait_resize(name, timeout=120)


# ------------------------------------------------------------------ classic
def test_classic_resize_routes_every_row_to_the_new_slices(stack, redshift, data, cluster):
    before = checksums(data, cluster)
    assert slices(data, cluster) == [[0, 0], [0, 1], [1, 2], [1, 3]]
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
    assert slices(data, cluster) == [[n, s] for s in range(6) for n in [s // 2]]
    assert checksums(data, cluster) == before
    expected = dict(rows(data, cluster, "SELECT CAST(hash(id) % 6 AS INTEGER), count(*) FROM sales GROUP BY 1"))
    assert per_slice(data, cluster, "sales") == expected
    assert sorted(per_slice(data, cluster, "events").values()) == [166, 166, 166, 167, 167, 167]
    assert per_slice(data, cluster, "regions") == {0: 12, 2: 12, 4: 12}   # one copy per node
    # The cluster takes writes again, routed on the new layout.
    finish(data, submit(data, cluster, "INSERT INTO sales VALUES (20001, 'new')"))
    assert sum(per_slice(data, cluster, "sales").values()) == 20001


def test_statements_wait_for_a_resize_and_land_on_the_new_layout(stack, redshift, data, cluster):
    """On AWS a classic resize leaves the cluster read-only; here the rows move under the
    warehouse's lock, so a write (any new statement) waits for the resize to commit."""
    plane = stack.context.registry.planes["redshift"]
    warehouse = plane._cluster(stack.region, cluster).warehouse
    before = checksums(data, cluster)
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
        write = submit(data, cluster, "INSERT INTO events VALUES (0, 'during')")
        time.sleep(0.5)
        assert data.describe_statement(Id=write)["Status"] == "STARTED"        # the write waits
    finally:
        warehouse.lock.release()
    assert wait(stack, cluster) == "SUCCEEDED"
    finish(data, write)
    after = checksums(data, cluster)
    assert after["events"][0] == before["events"][0] + 1 and after["sales"] == before["sales"]
    assert sum(per_slice(data, cluster, "events").values()) == 1000 and len(per_slice(data, cluster, "events")) == 6


def test_modify_cluster_with_node_type_and_count_is_a_classic_resize(stack, redshift, data, cluster):
    before = checksums(data, cluster)
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
    assert len(slices(data, cluster)) == 8 and checksums(data, cluster) == before
    # To a single node: the node count goes with ClusterType single-node.
    redshift.modify_cluster(ClusterIdentifier=cluster, NodeType="ra3.xlplus", ClusterType="single-node")
    assert wait(stack, cluster) == "SUCCEEDED"
    assert slices(data, cluster) == [[0, 0], [0, 1]] and checksums(data, cluster) == before
    assert per_slice(data, cluster, "regions") == {0: 12}


# ------------------------------------------------------------------ elastic
def test_elastic_resize_keeps_the_slices_and_moves_them_to_the_new_nodes(stack, redshift, data, cluster):
    before, sales = checksums(data, cluster), per_slice(data, cluster, "sales")
    answer = redshift.resize_cluster(ClusterIdentifier=cluster, NumberOfNodes=4)["Cluster"]   # elastic
    assert answer["ClusterStatus"] == "resizing"
    assert wait(stack, cluster) == "SUCCEEDED"
    resize = redshift.describe_resize(ClusterIdentifier=cluster)
    assert (resize["ResizeType"], resize["TargetNumberOfNodes"]) == ("ElasticResize", 4)
    assert resize["ImportTablesCompleted"] == ["public.regions"]        # only ALL tables get new copies
    assert redshift.describe_clusters(ClusterIdentifier=cluster)["Clusters"][0]["NumberOfNodes"] == 4
    # The same 4 slices, one per node now; no row changed slice.
    assert slices(data, cluster) == [[0, 0], [1, 1], [2, 2], [3, 3]]
    assert per_slice(data, cluster, "sales") == sales
    assert per_slice(data, cluster, "regions") == {0: 12, 1: 12, 2: 12, 3: 12}
    assert checksums(data, cluster) == before

    # Paused and resumed, the cluster opens with the slices it has (not the node type's default).
    redshift.pause_cluster(ClusterIdentifier=cluster)
    redshift.resume_cluster(ClusterIdentifier=cluster)
    assert slices(data, cluster) == [[0, 0], [1, 1], [2, 2], [3, 3]]
    assert checksums(data, cluster) == before
    finish(data, submit(data, cluster, "INSERT INTO regions VALUES (13, 'v13')"))
    assert per_slice(data, cluster, "regions") == {0: 13, 1: 13, 2: 13, 3: 13}


@pytest.mark.parametrize("kwargs, code", [
    ({"NumberOfNodes": 5}, "UnsupportedOperation"),            # 4 slices cannot cover 5 nodes
    ({"NumberOfNodes": 1}, "UnsupportedOperation"),            # elastic resize: not to a single node
    ({"NumberOfNodes": 3, "Classic": True}, "InvalidParameterCombination"),  # classic needs NodeType
    ({"NumberOfNodes": 3, "NodeType": "ra3.huge"}, "InvalidParameterValue"),
    ({"NumberOfNodes": 1, "ClusterType": "multi-node", "NodeType": "ra3.xlplus", "Classic": True},
     "InvalidParameterCombination"),
])
def test_bad_resizes_are_refused_and_change_nothing(redshift, data, cluster, kwargs, code):
    with pytest.raises(ClientError) as err:
        redshift.resize_cluster(ClusterIdentifier=cluster, **kwargs)
    assert err.value.response["Error"]["Code"] == code
    described = redshift.describe_clusters(ClusterIdentifier=cluster)["Clusters"][0]
    assert (described["ClusterStatus"], described["NumberOfNodes"]) == ("available", 2)
    assert len(slices(data, cluster)) == 4


def test_resize_and_describe_resize_of_a_missing_cluster(redshift):
    for call in (lambda: redshift.resize_cluster(ClusterIdentifier="no-such-cluster", NumberOfNodes=2),
                 lambda: redshift.describe_resize(ClusterIdentifier="no-such-cluster")):
        with pytest.raises(ClientError) as err:
            call()
        assert err.value.response["Error"]["Code"] == "ClusterNotFound"
        assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
