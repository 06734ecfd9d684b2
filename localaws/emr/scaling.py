"""Resizing a running cluster: by hand (ModifyInstanceGroups) and by EMR managed scaling.

**Resizing.** ``ModifyInstanceGroups`` sets a group's instance count on a
running cluster. Growing provisions new instances (here: new Spark workers,
the group RESIZING until they register with the master); shrinking removes
instances, idle ones first (here: the workers with no core in use, newest
first, ended gracefully with SIGTERM). Task groups resize freely; a core
group holds HDFS data, so shrinking it is refused here.

**Managed scaling.** On AWS, a managed scaling policy gives EMR a floor and
a ceiling (``ComputeLimits``: minimum and maximum capacity in instances or
vCPUs) and EMR resizes the cluster from YARN's metrics: containers pending
-> add nodes; nodes idle -> remove them. Here the same decision uses what
Spark reports, once a second:

- **pending work**: tasks of the running step's active stages not yet
  running, from the driver's REST API (``/api/v1/applications/.../stages``);
- **free capacity**: ``coresfree`` of each ALIVE worker, from the master's
  ``/json/``.

Tasks pending and no free core for 2 readings in a row -> add one TASK
instance (up to the maximum). No step running or queued and a worker with
no core in use, for 3 readings -> remove one idle TASK instance (down to
the minimum). One change at a time, and none while a new worker is still
registering. Only the TASK group is resized (a cluster without one grows
its CORE group).
"""
from __future__ import annotations

import threading
import time

from . import instances
from .cluster import START_TIMEOUT

POLL_SECONDS = 1.0
GROW_AFTER, SHRINK_AFTER = 2, 3


def resize(run, group, count: int, why: str) -> None:
    """Start or end workers until ``group`` of ``run`` (an ``engine.ClusterRun``) has ``count`` live instances."""
    group.set_instance_count(count)
    live = run.live(group)
    if count == len(live):
        return
    group.state = "RESIZING"
    run.event(f"{why}: {group.role} group {len(live)} -> {count} instance(s)")
    if count > len(live):
        before = {i.id for i in run.cluster.ec2_instances}
        run.backend.run_instances(run.id, {"instance_count": count - len(live),
                                           "instance_type": group.instance_type}, group)
        added = [run.add_node(i) for i in run.cluster.ec2_instances if i.id not in before]
        for node in added:
            run.spark.start_worker(node)
        threading.Thread(target=_await_workers, args=(run, group, added), daemon=True).start()
    else:
        status = run.spark.worker_status()
        # Idle workers first (no cores in use), newest first: EMR also prefers idle nodes.
        order = sorted(live, key=lambda n: (status.get(n.port, {}).get("coresused", 0), -n.created.timestamp()))
        for node in order[: len(live) - count]:
            run.spark.decommission(node, f"Instance terminated by {why} (resize).")
        group.state = "RUNNING"


def _await_workers(run, group, added) -> None:
    run.spark.wait(lambda: all(n.state != "BOOTSTRAPPING" for n in added) or run.terminate_request is not None,
                   START_TIMEOUT)
    if group.state == "RESIZING":
        group.state = "RUNNING"
    run.event(f"{group.role} group: {len([n for n in added if n.state == 'RUNNING'])} new worker(s) ALIVE")


def _units(node_type, unit: str) -> int:
    return instances.lookup(node_type).vcpu if unit == "VCPU" else 1


def scaler_loop(run) -> None:
    """Watch one cluster once a second while it has a policy; grow or shrink it."""
    busy = idle = 0
    while run.policy and run.terminate_request is None and run.cluster.state not in ("TERMINATED", "TERMINATED_WITH_ERRORS"):
        time.sleep(POLL_SECONDS)
        limits = (run.policy or {}).get("ComputeLimits") or {}
        if not limits:
            break
        unit = limits.get("UnitType", "Instances")
        status = run.spark.worker_status()
        task = run.group("TASK") or run.group("CORE")
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
        idle_nodes = [n for n in run.live(task) if status.get(n.port, {}).get("coresused", 0) == 0]
        idle = idle + 1 if (step is None and not run.queue and idle_nodes) else 0
        step_units = _units(task.instance_type, unit)
        if busy >= GROW_AFTER and capacity + step_units <= int(limits["MaximumCapacityUnits"]):
            resize(run, task, len(run.live(task)) + 1, f"managed scaling (pending tasks {pending}, free cores 0)")
            busy = 0
        elif idle >= SHRINK_AFTER and task.role == "TASK" and capacity - step_units >= int(limits["MinimumCapacityUnits"]):
            resize(run, task, len(run.live(task)) - 1, "managed scaling (idle: no step running or pending)")
            idle = 0
