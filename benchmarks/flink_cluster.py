"""Flink stand-in: what the real Flink session cluster of set ``flink`` (1.19.1 now; 2.2.0 when first measured) costs here.

Measures, with the jars of set ``flink`` and ``localaws/core/flink.py``
(figures in ``docs/flink_measurements.md``):

1. **install size**: the ``flink`` set of ``jars.lock``;
2. **cold start**, ``RUNS`` times: JobManager REST ``/overview`` answering,
   TaskManager registered, SQL Gateway answering, and ``stop()``;
3. **first SQL results**: ``SELECT 1 + 1``; a bounded windowed query (60
   datagen rows, six 10-second tumbling windows) to its last row; the first
   window row of an unbounded one (the operation is then closed, which cancels
   its job);
4. **checkpoints and recovery**: an ``INSERT INTO`` a filesystem sink of
   10-second windows over an unbounded datagen stream, checkpointing every 5 s
   to a local folder; the TaskManager is killed with SIGKILL and started
   again: seconds until the JobManager notices, until the new TaskManager
   registers, until the job runs again restored from its last checkpoint;
   then the committed windows are checked for gaps and duplicates;
5. **peak RSS** of each JVM, sampled every 0.2 s through the whole run.

Budgets (printed as ratios): the set adds at most 400 MB to the install; the
JobManager and TaskManager together peak at most 2 GiB of RSS.

Usage: ``.venv/bin/python benchmarks/flink_cluster.py [--runs 3] [--backend hashmap|rocksdb]``

The machine is shared: timings include whatever else runs; the load average
is printed before and after.
"""
from __future__ import annotations

import argparse
import csv
import importlib.util
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

import _results
from localaws.core.flink import FLINK_VERSION, FlinkCluster, FlinkError

ROOT = Path(__file__).resolve().parents[1]
T = time.monotonic
INSTALL_BUDGET = 400e6          # bytes Flink may add to the install
RSS_BUDGET_MIB = 2048           # peak RSS of JobManager + TaskManager


class PeakRss:
    """Samples the RSS of a cluster's processes every 0.2 s; keeps the peak per kind and in all."""

    def __init__(self, cluster: FlinkCluster):
        self.cluster, self.peak, self.total = cluster, {}, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            total = 0
            for kind, pid in self.cluster.pids().items():
                try:
                    rss = psutil.Process(pid).memory_info().rss
                except psutil.Error:
                    continue
                self.peak[kind] = max(self.peak.get(kind, 0), rss)
                total += rss
            self.total = max(self.total, total)
            self._stop.wait(0.2)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def wait(predicate, timeout=180.0):
    deadline = T() + timeout
    while T() < deadline:
        try:
            if predicate():
                return True
        except (FlinkError, OSError, KeyError):
            pass
        time.sleep(0.2)
    raise TimeoutError("condition not met")


def install_size() -> int:
    spec = importlib.util.spec_from_file_location("fetch_jars", ROOT / "tools" / "fetch_jars.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module.read_lock(ROOT / "jars.lock")["flink"].size


def cold_start(work: Path) -> dict:
    cluster = FlinkCluster(work)
    cluster.write_config()
    t0 = T()
    cluster.start_process("jobmanager")
    wait(lambda: cluster.rest("/overview"))
    jm = T() - t0
    t1 = T()
    cluster.start_taskmanager()
    tm = T() - t1
    t2 = T()
    cluster.start_gateway()
    gw = T() - t2
    t3 = T()
    cluster.stop()
    return {"jobmanager_rest": jm, "taskmanager_registered": tm, "gateway": gw,
            "stop": T() - t3, "left": cluster.pids()}


SOURCE = """CREATE TABLE clicks (id BIGINT, v AS CAST(id % 7 AS INT),
    ts AS TO_TIMESTAMP_LTZ(id * {ms}, 3), WATERMARK FOR ts AS ts - INTERVAL '1' SECOND
) WITH ('connector' = 'datagen', 'fields.id.kind' = 'sequence', 'fields.id.start' = '0',
        'fields.id.end' = '{end}'{rate})"""
WINDOWS = """SELECT window_start, window_end, COUNT(*) AS n, MIN(id) AS first_id,
    MAX(id) AS last_id, SUM(v) AS total
FROM TABLE(TUMBLE(TABLE {table}, DESCRIPTOR(ts), INTERVAL '10' SECOND))
GROUP BY window_start, window_end"""


def sql_and_recovery(work: Path, backend: str) -> dict:
    out = work / "out"
    cluster = FlinkCluster(work, settings={"state.backend.type": backend})
    figures: dict = {}
    with PeakRss(cluster) as rss:
        try:
            cluster.start()
            gateway = cluster.start_gateway()
            sql = gateway.session({"execution.runtime-mode": "streaming"})
            t = T()
            assert sql.query("SELECT 1 + 1") == [[2]]
            figures["select_1_plus_1"] = T() - t
            sql.execute(SOURCE.format(ms=1000, end=59, rate="").replace("clicks", "bounded"))
            t = T()
            rows = sql.query(WINDOWS.format(table="bounded"))
            figures["bounded_windows"] = T() - t
            assert len(rows) == 6 and all(row[2] == 10 for row in rows), rows
            # 100 ms of event time per row, 50 rows/s: one 10 s window every 2 s of wall time.
            sql.execute(SOURCE.format(ms=100, end=20000, rate=", 'rows-per-second' = '50'"))
            t = T()
            first = sql.execute(WINDOWS.format(table="clicks"), max_rows=1)
            figures["unbounded_first_window"] = T() - t
            figures["first_window_row"] = first.rows[0]
            sql.execute(f"""CREATE TABLE window_counts (window_start TIMESTAMP(3),
                window_end TIMESTAMP(3), n BIGINT, first_id BIGINT, last_id BIGINT, total INT)
                WITH ('connector' = 'filesystem', 'path' = '{out.as_uri()}', 'format' = 'csv')""")
            job = sql.execute("INSERT INTO window_counts " + WINDOWS.format(table="clicks")).job_id

            def checkpoints():
                return cluster.rest(f"/jobs/{job}/checkpoints")
            t = T()
            wait(lambda: checkpoints()["counts"]["completed"] >= 3)
            figures["three_checkpoints"] = T() - t
            latest = checkpoints()["latest"]["completed"]
            figures["checkpoint"] = {k: latest[k] for k in ("id", "state_size", "end_to_end_duration")}
            killed = T()
            cluster.kill_taskmanager()
            # Noticed: the job failed over. RESTARTING may last less than one poll (Flink 1.19
            # restarts at once and waits for slots while RUNNING), so the job's exception history
            # is the sign that stays.
            wait(lambda: cluster.rest(f"/jobs/{job}")["state"] in ("RESTARTING", "FAILING")
                 or cluster.rest(f"/jobs/{job}/exceptions").get("exceptionHistory", {}).get("entries"))
            figures["kill_to_noticed"] = T() - killed
            t = T()
            cluster.start_taskmanager()
            figures["taskmanager_restart"] = T() - t
            wait(lambda: checkpoints()["latest"].get("restored")
                 and cluster.rest(f"/jobs/{job}")["state"] == "RUNNING")
            figures["kill_to_running_restored"] = T() - killed
            figures["restored_from"] = checkpoints()["latest"]["restored"]["external_path"]
            done = checkpoints()["counts"]["completed"]
            wait(lambda: checkpoints()["counts"]["completed"] >= done + 2)
            cluster.rest(f"/jobs/{job}", method="PATCH")           # cancel
            wait(lambda: cluster.rest(f"/jobs/{job}")["state"] == "CANCELED", 60)
            committed = []
            for path in sorted(out.glob("*")):
                if not path.name.startswith("."):                  # in-progress files are hidden
                    committed += list(csv.reader(path.open()))
            windows = sorted((int(r[3]), int(r[4]), int(r[2])) for r in committed)
            figures["committed_windows"] = len(windows)
            figures["duplicates"] = len(windows) - len(set(windows))
            figures["gaps"] = sum(1 for a, b in zip(windows, windows[1:]) if b[0] != a[1] + 1)
            figures["incomplete_windows"] = sum(1 for w in windows if w[2] != 100)
            figures["checkpoint_dir_bytes"] = sum(
                p.stat().st_size for p in cluster.checkpoint_dir.rglob("*") if p.is_file())
            sql.close()
        finally:
            cluster.stop()
    figures["peak_rss_mib"] = {k: round(v / 2**20) for k, v in rss.peak.items()}
    figures["peak_rss_total_mib"] = round(rss.total / 2**20)
    figures["left"] = cluster.pids()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--backend", default="hashmap", choices=["hashmap", "rocksdb"])
    args = parser.parse_args()
    print(f"Flink {FLINK_VERSION}; {os.cpu_count()} cores; load average {os.getloadavg()}")
    size = install_size()
    print(f"install: set flink of jars.lock = {size / 1e6:.1f} MB "
          f"({size / INSTALL_BUDGET:.2f}x the budget of {INSTALL_BUDGET / 1e6:.0f} MB)")
    _results.record("flink_cluster", f"install: set flink / budget ({INSTALL_BUDGET / 1e6:.0f} MB)",
                    size / INSTALL_BUDGET, goal="<= 1", note=f"{size / 1e6:.1f} MB")
    ready = []
    with tempfile.TemporaryDirectory(prefix="flink-bench-") as tmp:
        for run in range(args.runs):
            figures = cold_start(Path(tmp, f"start-{run}"))
            print(f"cold start {run + 1}: " + ", ".join(
                f"{k} {v:.1f} s" if isinstance(v, float) else f"{k} {v}" for k, v in figures.items()))
            ready.append(figures["jobmanager_rest"] + figures["taskmanager_registered"])
        figures = sql_and_recovery(Path(tmp, "sql"), args.backend)
        print(f"SQL and recovery ({args.backend} state backend):")
        for key, value in figures.items():
            print(f"  {key}: {value:.1f} s" if isinstance(value, float) else f"  {key}: {value}")
        cluster_peak = sum(figures["peak_rss_mib"].get(k, 0) for k in ("jobmanager", "taskmanager"))
        print(f"peak RSS, JobManager + TaskManager: {cluster_peak} MiB "
              f"({cluster_peak / RSS_BUDGET_MIB:.2f}x the budget of {RSS_BUDGET_MIB} MiB); "
              f"with the SQL Gateway: {figures['peak_rss_total_mib']} MiB")
        _results.record("flink_cluster", f"peak RSS, JobManager + TaskManager / budget ({RSS_BUDGET_MIB} MiB)",
                        cluster_peak / RSS_BUDGET_MIB, goal="<= 1",
                        note=f"{cluster_peak} MiB; {figures['peak_rss_total_mib']} MiB with the SQL Gateway")
        if ready:
            _results.record("flink_cluster", f"cold start: JobManager + TaskManager ready (median of {len(ready)})",
                            statistics.median(ready), unit="s")
        _results.record("flink_cluster", "TaskManager killed -> job RUNNING, restored from its checkpoint",
                        figures["kill_to_running_restored"], unit="s",
                        note=f"{figures['duplicates']} duplicate and {figures['gaps']} missing windows "
                             f"of {figures['committed_windows']} committed")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
