"""EMR managed scaling, decided from measurements of the running Spark work.

On AWS, a managed scaling policy gives EMR a floor and a ceiling
(``ComputeLimits``: minimum and maximum capacity in instances or vCPUs) and
EMR resizes the cluster from YARN's metrics: containers pending -> add
nodes; nodes idle -> remove them. Here the same decision uses what Spark
reports, once a second:

- **pending work**: tasks of the running step's active stages not yet
  running, from the driver's REST API (``/api/v1/applications/.../stages``);
- **free capacity**: ``coresfree`` of each ALIVE worker, from the master's
  ``/json/``.

Tasks pending and no free core for 2 readings in a row -> add one TASK
instance (up to the maximum). No step running and
no step running or queued and a worker with no core in use, for 3 readings -> remove one idle TASK
instance (down to the minimum). One change at a time, and none while a new
worker is still registering. Only the TASK group is resized (a cluster
without one grows its CORE group).
"""
from __future__ import annotations

import time

POLL_SECONDS = 1.0
GROW_AFTER, SHRINK_AFTER = 2, 3


def _units(node_type, unit: str) -> int:
    from . import instances
    return instances.lookup(node_type).vcpu if unit == "VCPU" else 1


def scaler_loop(plane, run) -> None:
    busy = idle = 0
    while run.policy and run.terminate_request is None and run.cluster.state not in ("TERMINATED", "TERMINATED_WITH_ERRORS"):
        time.sleep(POLL_SECONDS)
        limits = (run.policy or {}).get("ComputeLimits") or {}
        if not limits:
            break
        unit = limits.get("UnitType", "Instances")
        status = run.spark.worker_status()
        task = plane._group(run, "TASK") or plane._group(run, "CORE")
        if task is None or task.state == "RESIZING":
            continue
        workers = [n for n in run.nodes.values() if n.role != "MASTER" and n.state != "TERMINATED"]
        if any(n.state != "RUNNING" for n in workers):
            continue
        capacity = sum(_units(n.instance_type, unit) for n in workers)
        free_cores = sum(status.get(n.port, {}).get("coresfree", 0) for n in workers)
        step = run.running_step
        pending = step.progress.tasks_pending if step else 0
        busy = busy + 1 if (step and pending > 0 and free_cores == 0) else 0
        idle_nodes = [n for n in plane._live(run, task) if status.get(n.port, {}).get("coresused", 0) == 0]
        idle = idle + 1 if (step is None and not run.queue and idle_nodes) else 0
        step_units = _units(task.instance_type, unit)
        if busy >= GROW_AFTER and capacity + step_units <= int(limits["MaximumCapacityUnits"]):
            plane.resize(run, task, len(plane._live(run, task)) + 1,
                         f"managed scaling (pending tasks {pending}, free cores 0)")
            busy = 0
        elif idle >= SHRINK_AFTER and task.role == "TASK" and capacity - step_units >= int(limits["MinimumCapacityUnits"]):
            plane.resize(run, task, len(plane._live(run, task)) - 1,
                         "managed scaling (idle: no step running or pending)")
            idle = 0
