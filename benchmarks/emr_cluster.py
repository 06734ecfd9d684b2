"""EMR stand-in: cluster start, step overhead and memory of a 5-node cluster.

Prints three figures as ratios to their goals (never part of pass/fail):

1. **RunJobFlow -> WAITING** for 1 master + 2 core + 2 task m5.xlarge nodes
   (goal <= 25 s on a 2-core machine);
2. **step overhead**: AddJobFlowSteps -> COMPLETED of a small PySpark script
   (script and data in S3, read and written by the executors through S3A,
   logs uploaded) divided by the wall time of plain ``spark-submit`` of the
   same script with local files against the same cluster's master, with the
   same JVM bounds the stand-in gives steps (goal <= 1.5x);
3. **peak RSS** of the cluster's processes, sampled every 0.2 s during the
   step: per kind (Spark master, workers, executor JVMs, the Python workers
   of executors, the step's driver JVM and its Python) the largest single
   process, and the whole cluster. These are the figures of the table in
   ``localaws/core/limits.py``.

Usage: ``.venv/bin/python benchmarks/emr_cluster.py``
"""
from __future__ import annotations

import io
import subprocess
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

import pandas as pd
import psutil

import _results
import localaws
from localaws.core.limits import FAST_JVM, heap_mb

SCRIPT = """
import sys
from pyspark.sql import SparkSession, functions as F
spark = SparkSession.builder.appName("bench").getOrCreate()
df = spark.read.parquet(sys.argv[1])
df.groupBy("k").agg(F.sum("v").alias("s")).orderBy("k").write.mode("overwrite").parquet(sys.argv[2])
spark.stop()
"""
GOAL_START_S, GOAL_OVERHEAD = 25.0, 1.5


def kind_of(proc: psutil.Process, daemons: dict[int, str]) -> str:
    """What a process of the cluster is: a daemon we started, an executor, a Python worker, the driver."""
    if proc.pid in daemons:
        return daemons[proc.pid]
    cmd = " ".join(proc.cmdline())
    if "CoarseGrainedExecutorBackend" in cmd:
        return "executor JVM"
    if "SparkSubmit" in cmd:
        return "driver JVM"
    if "pyspark.daemon" in cmd or "pyspark/daemon" in cmd or "pyspark.worker" in cmd:
        return "executor Python workers"
    return "driver Python" if "python" in proc.name().lower() else "other"


def sample(stack, run, peaks: dict[str, int], totals: list[int]) -> None:
    """One reading: RSS of every process of the cluster and of the step's driver, by kind."""
    daemons = {n.pid: ("Spark master" if n.role == "MASTER" else "Spark worker")
               for n in run.nodes.values() if n.pid}
    total = 0
    for pid in stack.processes.pids():
        try:
            root = psutil.Process(pid)
            for proc in [root, *root.children(recursive=True)]:
                rss = proc.memory_info().rss
                kind = kind_of(proc, daemons)
                peaks[kind] = max(peaks[kind], rss)
                total += rss
        except psutil.Error:
            pass
    totals[0] = max(totals[0], total)


def main() -> None:
    stack = localaws.start()
    s3, emr = stack.client("s3"), stack.client("emr")
    s3.create_bucket(Bucket="bench")
    data = pd.DataFrame({"k": [i % 10 for i in range(200_000)], "v": range(200_000)})
    buf = io.BytesIO()
    data.to_parquet(buf)
    s3.put_object(Bucket="bench", Key="in/data.parquet", Body=buf.getvalue())
    s3.put_object(Bucket="bench", Key="job.py", Body=SCRIPT.encode())

    groups = [{"InstanceRole": "MASTER", "InstanceType": "m5.xlarge", "InstanceCount": 1},
              {"InstanceRole": "CORE", "InstanceType": "m5.xlarge", "InstanceCount": 2},
              {"InstanceRole": "TASK", "InstanceType": "m5.xlarge", "InstanceCount": 2, "Market": "SPOT"}]
    t0 = time.perf_counter()
    cid = emr.run_job_flow(Name="bench", ReleaseLabel="emr-7.13.0", JobFlowRole="r", ServiceRole="r",
                           Instances={"InstanceGroups": groups, "KeepJobFlowAliveWhenNoSteps": True},
                           LogUri="s3://bench/logs/")["JobFlowId"]
    while emr.describe_cluster(ClusterId=cid)["Cluster"]["Status"]["State"] != "WAITING":
        time.sleep(0.1)
    start_s = time.perf_counter() - t0

    run = stack.local.emr.run(cid)
    peaks: dict[str, int] = defaultdict(int)
    totals, stop = [0], threading.Event()

    def sampler():
        while not stop.is_set():
            sample(stack, run, peaks, totals)
            time.sleep(0.2)
    thread = threading.Thread(target=sampler, daemon=True)
    thread.start()
    t1 = time.perf_counter()
    step = emr.add_job_flow_steps(JobFlowId=cid, Steps=[{"Name": "bench", "ActionOnFailure": "CONTINUE",
        "HadoopJarStep": {"Jar": "command-runner.jar",
                          "Args": ["spark-submit", "s3://bench/job.py", "s3://bench/in/", "s3://bench/out/"]}}]
    )["StepIds"][0]
    while emr.describe_step(ClusterId=cid, StepId=step)["Step"]["Status"]["State"] in ("PENDING", "RUNNING"):
        time.sleep(0.1)
    step_s = time.perf_counter() - t1
    stop.set()
    thread.join()
    state = emr.describe_step(ClusterId=cid, StepId=step)["Step"]["Status"]["State"]

    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp, "job.py")
        script.write_text(SCRIPT)
        data.to_parquet(Path(tmp, "data.parquet"))
        cmd = [str(Path(run.spark.env["SPARK_HOME"]) / "bin" / "spark-submit"), "--master", run.spark.master_url,
               "--conf", "spark.driver.host=127.0.0.1", "--conf", "spark.executor.memory=512m",
               "--conf", f"spark.driver.memory={heap_mb('spark-driver')}m",
               # the same small-JVM options the stand-in gives every step (core/limits.py)
               "--conf", f"spark.driver.extraJavaOptions={FAST_JVM}",
               "--conf", f"spark.executor.extraJavaOptions={FAST_JVM}", str(script), str(Path(tmp, "data.parquet")), str(Path(tmp, "out"))]
        t2 = time.perf_counter()
        plain = subprocess.run(cmd, env=run.spark.env, capture_output=True)
        plain_s = time.perf_counter() - t2

    emr.terminate_job_flows(JobFlowIds=[cid])
    stack.stop()
    print(f"RunJobFlow -> WAITING (1 master + 2 core + 2 task): {start_s:.1f} s "
          f"= {start_s / GOAL_START_S:.2f} x the {GOAL_START_S:.0f} s goal")
    print(f"EMR step ({state}): {step_s:.1f} s | plain spark-submit (exit {plain.returncode}): {plain_s:.1f} s "
          f"| overhead {step_s / plain_s:.2f} x (goal <= {GOAL_OVERHEAD} x)")
    print("peak RSS of one process, by kind:")
    for kind, rss in sorted(peaks.items()):
        print(f"  {kind:24s} {rss / 2**20:6.0f} MiB")
    print(f"peak RSS of the 5-node cluster during the step (all of the above): {totals[0] / 2**30:.2f} GiB")
    _results.record("emr_cluster", f"RunJobFlow -> WAITING (5 nodes) / goal ({GOAL_START_S:.0f} s)",
                    start_s / GOAL_START_S, goal="<= 1", note=f"{start_s:.1f} s")
    _results.record("emr_cluster", "step overhead: EMR step / plain spark-submit", step_s / plain_s,
                    goal=f"<= {GOAL_OVERHEAD}",
                    note=f"{step_s:.1f} s ({state}) / {plain_s:.1f} s (exit {plain.returncode})")
    _results.record("emr_cluster", "peak RSS of the 5-node cluster during the step", totals[0] / 2**30,
                    unit="GiB")


if __name__ == "__main__":
    main()
