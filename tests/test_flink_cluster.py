"""A real Flink 1.19 session cluster from the locked ``flink`` jar set (``localaws/core/flink.py``).

- ``jars.lock``: the ``flink`` set runs on a classpath of its own, so the
  lock tool keeps the jars pyspark also ships (it drops them from ``s3a``);
- one cluster, three JVMs (JobManager, TaskManager, SQL Gateway), each
  listening on 127.0.0.1 only; a windowed Flink SQL query over a bounded,
  deterministic ``datagen`` source, sent to the SQL Gateway's REST API,
  gives exactly the windows computed here in Python;
- after ``stop()``, none of the three PIDs is alive.
"""
from __future__ import annotations

import importlib.util
import sys
import textwrap
from pathlib import Path

import psutil
import pytest

from localaws.core import jvm
from localaws.core.flink import FLINK_VERSION, MEMORY_MB, FlinkCluster
from localaws.core.waiting import wait_until

ROOT = Path(__file__).resolve().parents[1]


def _load_fetcher():
    spec = importlib.util.spec_from_file_location("fetch_jars", ROOT / "tools" / "fetch_jars.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


fetch_jars = _load_fetcher()


# --------------------------------------------------------------------- the lock

def test_classpath_own_row_is_parsed():
    sets = fetch_jars.parse_lock(textwrap.dedent("""\
        [spark-side]
        root\torg.example:lib:1.0
        [flink-like]
        root\torg.example:engine:2.0
        classpath\town\truns in JVMs of its own
    """))
    assert sets["spark-side"].own_classpath is None
    assert sets["flink-like"].own_classpath == "runs in JVMs of its own"
    with pytest.raises(ValueError, match="line 2"):
        fetch_jars.parse_lock("[x]\nclasspath\tshared\n")


def test_flink_set_is_whole_and_matches_the_version():
    flink = fetch_jars.read_lock(ROOT / "jars.lock")["flink"]
    coords = {jar.coords for jar in flink.jars}
    assert flink.own_classpath is not None
    for artifact in ("flink-runtime", "flink-sql-gateway", "flink-table-planner-loader",
                     "flink-table-runtime", "flink-connector-datagen", "flink-statebackend-rocksdb"):
        assert f"org.apache.flink:{artifact}:{FLINK_VERSION}" in coords
    # jars pyspark also ships stay in (the s3a set would have dropped them)
    assert "org.slf4j:slf4j-api:1.7.36" in coords
    # one copy of the net.jpountz LZ4 classes
    assert len([c for c in coords if c.split(":")[1] == "lz4-java"]) == 1
    # AWS's own Kinesis connector (SQL 'connector' = 'kinesis'), one self-contained jar
    assert "org.apache.flink:flink-connector-kinesis:4.3.0-1.19" in coords
    assert len({jar.file for jar in flink.jars}) == len(flink.jars)
    assert flink.size < 400e6, "the brief's budget: Flink adds at most 400 MB"
    assert {path.name for path in jvm.jars("flink")} == {jar.file for jar in flink.jars}


# --------------------------------------------------------------------- a real cluster

#: 60 rows, one per event-second (id 0..59), v = id % 7: six 10-second windows.
SOURCE = """
CREATE TABLE clicks (
    id BIGINT,
    v AS CAST(id % 7 AS INT),
    ts AS TO_TIMESTAMP_LTZ(id * 1000, 3),
    WATERMARK FOR ts AS ts
) WITH ('connector' = 'datagen', 'fields.id.kind' = 'sequence',
        'fields.id.start' = '0', 'fields.id.end' = '59')
"""

WINDOWS = """
SELECT CAST(window_start AS STRING) AS window_start, COUNT(*) AS n, SUM(v) AS total,
       MIN(id) AS first_id, MAX(id) AS last_id
FROM TABLE(TUMBLE(TABLE clicks, DESCRIPTOR(ts), INTERVAL '10' SECOND))
GROUP BY window_start, window_end
"""


def expected_windows() -> list[list]:
    rows = []
    for start in range(0, 60, 10):
        ids = range(start, start + 10)
        rows.append([f"1970-01-01 00:00:{start:02d}.000", 10, sum(i % 7 for i in ids),
                     start, start + 9])
    return rows


def _listening(pid: int) -> list[str]:
    return [conn.laddr.ip for conn in psutil.Process(pid).net_connections(kind="inet")
            if conn.status == psutil.CONN_LISTEN]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    work = tmp_path_factory.mktemp("flink")
    flink = FlinkCluster(work, settings={"table.local-time-zone": "UTC"})
    flink.start()
    try:
        yield flink
    finally:
        flink.stop()


def test_jobmanager_rest_answers_with_one_taskmanager(cluster):
    overview = cluster.rest("/overview")
    assert overview["flink-version"] == FLINK_VERSION
    # /overview is a cached summary: on a busy machine it may not count the TaskManager yet
    # although /taskmanagers (what start() waits for) already lists it
    assert wait_until(lambda: (cluster.rest("/overview")["taskmanagers"], cluster.rest("/overview")["slots-total"])
                      == (1, cluster.slots), 30, poll=0.5), cluster.rest("/overview")


def test_windowed_sql_through_the_gateway(cluster):
    gateway = cluster.start_gateway()
    with gateway.session({"execution.runtime-mode": "streaming",
                          "table.local-time-zone": "UTC"}) as sql:
        sql.execute(SOURCE)
        result = sql.execute(WINDOWS, timeout=180)
    assert result.columns == ["window_start", "n", "total", "first_id", "last_id"]
    assert sorted(result.rows) == expected_windows()
    assert set(result.kinds) == {"INSERT"}          # a window aggregate only appends
    job = cluster.rest(f"/jobs/{result.job_id}")
    assert job["state"] == "FINISHED"


def test_every_port_is_on_loopback_and_heaps_are_bounded(cluster):
    pids = cluster.pids()
    assert set(pids) == {"jobmanager", "taskmanager", "sql-gateway"}
    for kind, pid in pids.items():
        addresses = _listening(pid)
        assert addresses, kind
        assert set(addresses) <= {"127.0.0.1", "::ffff:127.0.0.1"}, (kind, addresses)
        command = psutil.Process(pid).cmdline()
        heap = [arg for arg in command if arg.startswith("-Xmx")]
        assert len(heap) == 1, (kind, heap)
    tm = MEMORY_MB["taskmanager"]
    assert f"-Xmx{tm['framework_heap'] + tm['task_heap']}m" in psutil.Process(
        pids["taskmanager"]).cmdline()


def test_stop_leaves_no_process(tmp_path_factory, cluster):
    pids = list(cluster.pids().values())
    cluster.stop()
    assert cluster.pids() == {}
    alive = [pid for pid in pids if psutil.pid_exists(pid)
             and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]
    assert alive == []


def test_a_port_taken_before_flink_binds_it_is_replaced(tmp_path_factory):
    """free_port() only says a port was free a moment ago: another process may take it first.
    The JobManager and the SQL Gateway then start again on new ports."""
    import socket
    from localaws.core.flink import free_port
    taken = [socket.socket(), socket.socket()]
    for sock in taken:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
    rest, gateway_port = (sock.getsockname()[1] for sock in taken)
    flink = FlinkCluster(tmp_path_factory.mktemp("flink-ports"))
    flink.rpc_port, flink.rest_port, flink.gateway_port = free_port(), rest, gateway_port
    try:
        flink.start()
        assert flink.rest_port != rest and flink.rest("/overview")["flink-version"] == FLINK_VERSION
        gateway = flink.start_gateway()
        assert flink.gateway_port != gateway_port and gateway.url.endswith(f":{flink.gateway_port}")
    finally:
        flink.stop()
        for sock in taken:
            sock.close()
