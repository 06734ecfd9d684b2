"""Amazon EMR on your laptop: a real Spark standalone cluster per RunJobFlow.

- ``api.py``: ``EMRPlane``, the boto3-facing operations and teaching hooks
  (see ``docs/adding_a_service.md``);
- ``engine.py``: a cluster's life, its steps, resizing and termination;
- ``checks.py``: what EMR refuses; ``releases.py``: release labels and their Spark;
- ``cluster.py``: the master and worker processes; ``steps.py``: spark-submit;
- ``fleets.py``: instance fleets; ``scaling.py``: managed scaling;
- ``placement.py``: which node a step's driver runs on (deploy mode, YARN node labels);
- ``labchecks.py``: the checks of lab 06;
- ``hdfs.py`` and ``driver/``: HDFS on the core nodes, loaded by step drivers;
- ``instances.py``: instance types; ``cost.py``: what a cluster costs;
- ``errors.py``: EMR's error codes.

pyspark itself is never imported here, only started as separate processes
when a cluster starts. The helpers below use only boto3, so they work
against AWS too.
"""
from __future__ import annotations

import sys
import time

from .api import EMRPlane

__all__ = ["EMRPlane", "wait_for_cluster", "wait_for_step"]

#: tqdm's default bar ends in ``[00:42<00:00, 24.99s/it]``: elapsed time and
#: rate, different on every run. Ours shows the bar and the count only.
BAR_FORMAT = "{desc}: {n}/{total} |{bar:20}|"


def wait_for_cluster(emr, cluster_id: str, timeout: float = 300, progress: bool = True) -> str:
    """Poll DescribeCluster/ListInstances until the cluster is WAITING or RUNNING.

    Shows a progress bar of instances RUNNING (on AWS a cluster takes
    minutes, here seconds). Returns the final state; a terminated cluster
    ends the wait too. The bar shows counts, never durations, so a saved
    notebook keeps the same text run after run.
    """
    from tqdm import tqdm
    groups = emr.list_instance_groups(ClusterId=cluster_id)["InstanceGroups"]
    total = sum(g["RequestedInstanceCount"] for g in groups)
    bar = tqdm(total=total, desc="instances RUNNING", disable=not progress, ascii=True,
               bar_format=BAR_FORMAT)
    deadline = time.monotonic() + timeout
    state, settle = None, None
    try:
        while time.monotonic() < deadline:
            state = emr.describe_cluster(ClusterId=cluster_id)["Cluster"]["Status"]["State"]
            running = sum(1 for i in emr.list_instances(ClusterId=cluster_id)["Instances"]
                          if i["Status"]["State"] == "RUNNING")
            bar.update(min(running, total) - bar.n)
            if state in ("TERMINATING", "TERMINATED", "TERMINATED_WITH_ERRORS"):
                break
            if state in ("WAITING", "RUNNING"):
                # ready; give the instance list a few seconds to show every node RUNNING too
                settle = settle or time.monotonic() + 10
                if running >= total or time.monotonic() > settle:
                    break
            time.sleep(0.5)
    finally:
        _close(bar)
    return state


def _close(bar) -> None:
    """Close the bar and flush its last line now, so that it lands in the bar's own output box
    (in Jupyter, stderr is flushed later than a print that follows; an empty box would remain)."""
    bar.close()
    sys.stderr.flush()


def wait_for_step(emr, cluster_id: str, step_id: str, timeout: float = 600, progress: bool = True,
                  poll: float = 0.5) -> str:
    """Poll DescribeStep until the step ends; a bar shows PENDING -> RUNNING -> done."""
    from tqdm import tqdm
    order = {"PENDING": 0, "CANCEL_PENDING": 1, "RUNNING": 1}
    bar = tqdm(total=2, desc="step PENDING -> RUNNING -> done", disable=not progress, ascii=True,
               bar_format=BAR_FORMAT)
    deadline = time.monotonic() + timeout
    state = None
    try:
        while time.monotonic() < deadline:
            state = emr.describe_step(ClusterId=cluster_id, StepId=step_id)["Step"]["Status"]["State"]
            bar.update(order.get(state, 2) - bar.n)
            if state in ("COMPLETED", "FAILED", "CANCELLED", "INTERRUPTED"):
                break
            time.sleep(poll)
    finally:
        _close(bar)
    return state
