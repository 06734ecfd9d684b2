"""The real work behind EMR's API: a cluster's life, its steps, resizing and termination.

An EMR cluster goes through these states (DescribeCluster's ``Status.State``):

``STARTING``
    EC2 instances are being provisioned; here: the Spark master starts.
``BOOTSTRAPPING``
    the master is up, bootstrap actions and applications are being set up
    on the other nodes; here: one Spark worker per CORE/TASK instance starts.
``RUNNING`` / ``WAITING``
    every instance is up; RUNNING while a step runs. Only a long-running
    cluster (``KeepJobFlowAliveWhenNoSteps=True``) goes WAITING when no step
    is left; a *transient* cluster goes from RUNNING straight to TERMINATING
    after its last step (``ALL_STEPS_COMPLETED``).
``TERMINATING`` -> ``TERMINATED`` (or ``TERMINATED_WITH_ERRORS``)
    the instances are shut down; ``StateChangeReason.Code`` says why
    (``USER_REQUEST``, ``ALL_STEPS_COMPLETED``, ``STEP_FAILURE``, and
    ``INSTANCE_FAILURE`` when the primary node is lost: with one primary
    node, the cluster cannot outlive it).

Steps run **one at a time, in order**: PENDING -> RUNNING -> COMPLETED,
FAILED or CANCELLED. A failed step's ``ActionOnFailure`` decides what comes
next: ``CONTINUE`` (next step), ``CANCEL_AND_WAIT`` (cancel the pending
steps, keep the cluster), ``TERMINATE_CLUSTER`` (cancel them and end the
cluster, TERMINATED_WITH_ERRORS).

One thread per cluster (:meth:`Engine._lifecycle`) starts its processes,
runs its steps from a queue and shuts it down; the API only queues work and
requests termination, and waits for nothing. State lives in moto's records
(so Describe*/List* report it) and in a :class:`ClusterRun` for what moto
does not know (processes, the step queue, events).
"""
from __future__ import annotations

import collections
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import checks, errors, fleets, hdfs, instances, placement, scaling, steps
from .checks import FINISHED
from .cluster import START_TIMEOUT, Node, SparkCluster, now
from .releases import Release

log = logging.getLogger("localaws.emr")

ENDED = ("TERMINATED", "TERMINATED_WITH_ERRORS")


@dataclass
class StepInfo:
    """What localaws knows about a step beyond moto's record."""
    step: object          # moto's Step record
    cluster_id: str
    progress: steps.Progress = field(default_factory=steps.Progress)
    failure: dict | None = None
    summary: dict = field(default_factory=dict)      # tasks, from Spark's event log
    s3_bytes_read: int = 0                           # GetObject bytes signed with the step's key
    s3_objects_read: list = field(default_factory=list)
    seconds: float = 0.0
    cancel: threading.Event = field(default_factory=threading.Event)
    log_uri: str | None = None
    driver: dict | None = None                       # deploy mode and the node the driver runs on
    driver_node: Node | None = None
    driver_proc: object = None                       # the driver process (spark-submit)
    driver_lost: str | None = None                   # why the driver was killed with its node


@dataclass
class ClusterRun:
    """One EMR cluster's processes and its life."""
    cluster: object       # moto's Cluster record
    backend: object       # moto's ElasticMapReduceBackend
    spark: SparkCluster
    release: Release
    keep_alive: bool
    nodes: dict = field(default_factory=dict)          # instance id -> Node
    queue: collections.deque = field(default_factory=collections.deque)
    cond: threading.Condition = field(default_factory=threading.Condition)
    terminate_request: tuple | None = None             # (final state, code, message)
    am_label: str | None = None                        # YARN node label for ApplicationMasters (placement.py)
    losses: list = field(default_factory=list)         # instances lost, and what was running then
    reason_code: str | None = None
    history: list = field(default_factory=list)        # (datetime, state)
    events: list = field(default_factory=list)         # (seconds since start, message)
    policy: dict | None = None
    fleets: list = field(default_factory=list)         # instance fleets, when the cluster uses them
    running_step: StepInfo | None = None
    thread: threading.Thread | None = None
    scaler: threading.Thread | None = None

    @property
    def id(self) -> str:
        return self.cluster.id

    def event(self, message: str) -> None:
        self.events.append((round((now() - self.cluster.creation_datetime).total_seconds(), 1), message))

    def group(self, role: str):
        """The cluster's first instance group of ``role``, or None."""
        return next((g for g in self.cluster.instance_groups if g.role == role), None)

    def live(self, group) -> list[Node]:
        """The group's instances that have not ended."""
        return [n for n in self.nodes.values() if n.group_id == group.id and n.state != "TERMINATED"]

    def add_node(self, record) -> Node:
        """The Node behind one of moto's Instance records, sized by its group's instance type."""
        group = record.instance_group
        itype = instances.lookup(group.instance_type)
        node = Node(instance_id=record.id, group_id=group.id, role=group.role, market=group.market or "ON_DEMAND",
                    instance_type=group.instance_type, cores=itype.worker_cores, memory_mb=itype.worker_memory_mb,
                    folder=self.spark.folder / "nodes" / record.id)
        self.nodes[record.id] = node
        return node


class _StartFailed(Exception):
    pass


class _Terminated(Exception):
    pass


class Engine:
    """Every local EMR cluster of one stack."""

    def __init__(self, ctx):
        self.ctx = ctx
        self.root = Path(ctx.work_dir) / "emr"
        self.runs: dict[str, ClusterRun] = {}
        self.step_infos: dict[str, StepInfo] = {}
        self.lock = threading.RLock()

    def stop(self) -> None:
        for run in list(self.runs.values()):
            self.request_termination(run, "USER_REQUEST", "Terminated by user request")
        for run in list(self.runs.values()):
            if run.thread is not None:
                run.thread.join(timeout=30)
            run.spark.stop()

    def run_or_error(self, cluster_id: str) -> ClusterRun:
        run = self.runs.get(cluster_id)
        if run is None:
            raise errors.no_cluster(cluster_id)
        return run

    def node(self, cluster_id: str, instance_id: str) -> Node | None:
        """The process behind an instance record, if one of our clusters runs it."""
        run = self.runs.get(cluster_id)
        return run.nodes.get(instance_id) if run else None

    # ================================================================ a cluster's life
    def start(self, backend, cluster, request: dict, release: Release) -> ClusterRun:
        """Take over a cluster moto just recorded: nodes, queued steps, and its lifecycle thread."""
        inst = request.get("Instances") or {}
        run = ClusterRun(cluster=cluster, backend=backend, release=release,
                         keep_alive=bool(inst.get("KeepJobFlowAliveWhenNoSteps", False)),
                         spark=SparkCluster(cluster.id, self.root / cluster.id, self.ctx.processes,
                                            checks.java_home()))
        cluster.end_datetime = None
        cluster.ready_datetime = None
        run.fleets = fleets.make_fleets(backend, cluster, inst.get("InstanceFleets") or [])
        run.am_label = placement.am_label(request.get("Configurations"))
        run.policy = request.get("ManagedScalingPolicy") or None
        for step in cluster.steps:
            self.queue_step(run, step)
        for group in cluster.instance_groups:
            group.state = "PROVISIONING"
        self.set_state(run, "STARTING")
        with self.lock:
            self.runs[cluster.id] = run
        for record in cluster.ec2_instances:
            run.add_node(record)
        run.thread = threading.Thread(target=self._lifecycle, args=(run,), daemon=True, name=f"emr-{cluster.id}")
        run.thread.start()
        return run

    def set_state(self, run: ClusterRun, state: str, code: str | None = None, message: str | None = None) -> None:
        cluster = run.cluster
        if cluster.state != state or not run.history:
            run.history.append((now(), state))
        cluster.state = state
        if code is not None:
            run.reason_code = code
        if message is not None:
            cluster.last_state_change_reason = message

    def _lifecycle(self, run: ClusterRun) -> None:
        """The cluster's thread: start, run queued steps one by one, end."""
        final = ("TERMINATED", "ALL_STEPS_COMPLETED", "Steps completed")
        try:
            self._start_processes(run)
            while True:
                with run.cond:
                    while not run.queue and run.terminate_request is None and run.keep_alive:
                        run.cond.wait(timeout=1.0)
                    if run.terminate_request is not None:
                        final = run.terminate_request
                        break
                    if not run.queue:      # transient cluster, no more steps: RUNNING -> TERMINATING
                        break
                    info = run.queue.popleft()
                outcome = self._run_step(run, info)
                if outcome is not None:
                    final = run.terminate_request or outcome
                    break
                with run.cond:
                    if not run.queue and run.terminate_request is None and run.keep_alive:
                        self.set_state(run, "WAITING", None, "Cluster ready after last step completed.")
        except _Terminated:
            final = run.terminate_request
        except _StartFailed as exc:
            final = ("TERMINATED_WITH_ERRORS", "INTERNAL_ERROR", str(exc))
        except Exception as exc:  # a bug in the stand-in: end the cluster, say why
            log.warning("EMR lifecycle failed", exc_info=True)
            final = ("TERMINATED_WITH_ERRORS", "INTERNAL_ERROR", f"{type(exc).__name__}: {exc}")
        self._shutdown(run, *final)

    def _start_processes(self, run: ClusterRun) -> None:
        """STARTING: the master; BOOTSTRAPPING: the workers; then RUNNING or WAITING."""
        spark = run.spark
        master = next(n for n in run.nodes.values() if n.role == "MASTER")
        spark.start_master(master)
        run.event("master node: Spark master starting")
        if not spark.wait(lambda: master.state == "RUNNING" or run.terminate_request is not None, START_TIMEOUT):
            raise _StartFailed("The master node failed to start: Spark master did not answer.")
        self._check_terminate(run)
        self.set_state(run, "BOOTSTRAPPING")
        for group in run.cluster.instance_groups:
            group.state = "RUNNING" if group.role == "MASTER" else "BOOTSTRAPPING"
        workers = [n for n in run.nodes.values() if n.role != "MASTER"]
        for node in workers:
            spark.start_worker(node)
        if not spark.wait(lambda: all(n.state != "BOOTSTRAPPING" for n in workers)
                          or run.terminate_request is not None, START_TIMEOUT):
            raise _StartFailed("Some instances failed to start: their Spark workers did not register.")
        self._check_terminate(run)
        for group in run.cluster.instance_groups:
            group.state = "RUNNING"
        run.cluster.ready_datetime = now()
        run.event(f"cluster ready: {len(workers)} worker(s) ALIVE in the Spark master")
        with run.cond:
            if run.queue or run.keep_alive:      # a transient cluster without steps ends at once
                self.set_state(run, "RUNNING" if run.queue else "WAITING", None,
                               None if run.queue else "Cluster ready to run steps.")
        if run.policy:
            self.start_scaler(run)

    @staticmethod
    def _check_terminate(run: ClusterRun) -> None:
        if run.terminate_request is not None:
            raise _Terminated()

    def request_termination(self, run: ClusterRun, code: str, message: str, state: str = "TERMINATED") -> None:
        """TERMINATING at once; the lifecycle thread ends the processes and sets ``state``."""
        with run.cond:
            if run.terminate_request is None and run.cluster.state not in ENDED:
                run.terminate_request = (state, code, message)
                self.set_state(run, "TERMINATING", code, message)
                if run.running_step is not None:
                    run.running_step.cancel.set()
            run.cond.notify_all()

    def terminate(self, backend, ids: list[str], moto_terminate) -> list:
        """TerminateJobFlows: refuse unknown or protected clusters, then end each one."""
        for job_flow_id in ids:
            if job_flow_id not in backend.clusters:
                raise errors.no_cluster(job_flow_id)
        if any(backend.clusters[i].termination_protected for i in ids):
            raise errors.ValidationException(
                "Could not shut down one or more job flows since they are termination protected.")
        done = []
        for job_flow_id in ids:
            run = self.runs.get(job_flow_id)
            if run is None:
                done += moto_terminate(backend, [job_flow_id])
            else:
                self.request_termination(run, "USER_REQUEST", "Terminated by user request")
                done.append(run.cluster)
        return done

    def _shutdown(self, run: ClusterRun, state: str, code: str, message: str) -> None:
        with run.cond:
            if run.cluster.state not in FINISHED:
                self.set_state(run, "TERMINATING", code, message)
            pending = list(run.queue)
            run.queue.clear()
            run.terminate_request = run.terminate_request or (state, code, message)
            if run.running_step is not None:
                pending.append(run.running_step)
                run.running_step.cancel.set()
                run.running_step = None
        for info in pending:
            self._finish_step(info, "CANCELLED", None)
        run.spark.stop(message)
        for group in run.cluster.instance_groups:
            group.state = "TERMINATED"
            group.end_date_time = now()
        run.cluster.end_datetime = now()
        run.event(f"cluster {state.lower()}: {message}")
        self.set_state(run, state, code, message)

    # ================================================================ steps
    def queue_step(self, run: ClusterRun, step) -> StepInfo:
        step.state = "PENDING"
        step.start_date_time = None
        info = StepInfo(step=step, cluster_id=run.id)
        self.step_infos[step.id] = info
        run.queue.append(info)
        return info

    def add_steps(self, run: ClusterRun, added: list) -> None:
        """Steps AddJobFlowSteps recorded: queued behind the others; a WAITING cluster gets to work."""
        with run.cond:
            for step in added:
                self.queue_step(run, step)
            if run.cluster.state == "WAITING":
                self.set_state(run, "RUNNING")
            run.cond.notify_all()

    def _run_step(self, run: ClusterRun, info: StepInfo):
        """Run one step; return a final cluster outcome if ActionOnFailure ends the cluster."""
        step = info.step
        with run.cond:
            if run.terminate_request is not None:
                run.queue.appendleft(info)
                return run.terminate_request
            step.state, step.start_date_time = "RUNNING", now()
            run.running_step = info
            self.set_state(run, "RUNNING")
        folder = run.spark.folder / "master" / "steps" / step.id
        folder.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        def place(plan) -> str:
            """Decide the driver's node (placement.py); say so in the controller log."""
            node = placement.driver_node(run, plan.deploy_mode)
            if node is None:
                raise steps.StepError(f"No running node matches the ApplicationMaster node label "
                                      f"{run.am_label!r}: the driver cannot start.")
            info.driver_node = node
            info.driver = {"deploy_mode": plan.deploy_mode, "instance_id": node.instance_id,
                           "role": node.role, "market": node.market}
            return f"--deploy-mode {plan.deploy_mode}: driver on the {node.role} node {node.instance_id} ({node.market})"

        def on_start(proc) -> None:
            info.driver_proc = proc

        with self.ctx.s3.meter.track(step.id) as usage:      # the step signs S3 requests with its id
            code, error = steps.run_step(self.ctx, run, step, folder, cancel=info.cancel, progress=info.progress,
                                         place=place, on_start=on_start)
        info.seconds = time.monotonic() - started
        info.s3_bytes_read = usage.bytes_read
        info.s3_objects_read = sorted(f"s3://{bucket}/{key}" for bucket, key in usage.objects)
        info.summary = steps.event_log_summary(folder / "eventlog")
        info.log_uri = steps.upload_logs(self.ctx.s3.write, run.cluster.log_uri, run.id, step.id, folder)
        run.running_step = None
        if info.cancel.is_set() and not info.driver_lost:
            self._finish_step(info, "CANCELLED", None)
            return None
        if code == 0:
            self._finish_step(info, "COMPLETED", None)
            return None
        reason, where = steps.failure_reason(folder, error)
        if info.driver_lost:               # the node the driver ran on is gone
            reason, where = info.driver_lost, "controller"
        self._finish_step(info, "FAILED", {"Reason": reason,
                                           "Message": f"Step failed: spark-submit exited with code {code}.",
                                           "LogFile": info.log_uri and f"{info.log_uri}{where}.gz"})
        return self._after_failure(run, step.action_on_failure or "TERMINATE_CLUSTER")

    def _after_failure(self, run: ClusterRun, action: str):
        """ActionOnFailure of a failed step: None to go on, or the cluster's final outcome."""
        if action == "CONTINUE":
            return None
        with run.cond:
            pending = list(run.queue)
            run.queue.clear()
        for other in pending:
            self._finish_step(other, "CANCELLED", None)
        if action == "CANCEL_AND_WAIT":
            return None if run.keep_alive else ("TERMINATED", "ALL_STEPS_COMPLETED", "Steps completed")
        return ("TERMINATED_WITH_ERRORS", "STEP_FAILURE", "Shut down as step failed")

    @staticmethod
    def _finish_step(info: StepInfo, state: str, failure: dict | None) -> None:
        info.failure = failure
        step = info.step
        step.state = state
        step.end_date_time = now()
        if state == "CANCELLED":
            step.last_state_change_reason = "Cancelled by user" if info.cancel.is_set() else "Job terminated"

    def cancel_steps(self, run: ClusterRun, step_ids: list[str]) -> list[dict]:
        """CancelSteps: a pending step is cancelled at once, a running one has its driver killed."""
        answers = []
        for step_id in step_ids:
            info = self.step_infos.get(step_id)
            if info is None or info.cluster_id != run.id:
                answers.append({"StepId": step_id, "Status": "FAILED", "Reason": f"Step id '{step_id}' is not valid."})
                continue
            with run.cond:
                if info in run.queue:
                    run.queue.remove(info)
                    info.cancel.set()
                    self._finish_step(info, "CANCELLED", None)
                elif info.step.state == "RUNNING":
                    info.step.state = "CANCEL_PENDING"
                    info.cancel.set()
                else:
                    answers.append({"StepId": step_id, "Status": "FAILED",
                                    "Reason": f"Step is in state {info.step.state} and cannot be cancelled."})
                    continue
            answers.append({"StepId": step_id, "Status": "SUBMITTED", "Reason": ""})
        return answers

    # ================================================================ losing and resizing nodes
    def lose(self, run: ClusterRun, group_id: str, instance_id: str | None, what: str, message: str) -> str:
        """An instance is gone (Spot reclaimed, hardware failed): SIGKILL its processes, lose its disk.

        What else goes with it: a step whose driver ran on that node (its
        ApplicationMaster, in cluster mode) fails; losing the primary node
        ends the whole cluster, TERMINATED_WITH_ERRORS. Each loss is recorded
        in ``run.losses`` with the step that was running and its progress.
        """
        group = next((g for g in run.cluster.instance_groups if g.id == group_id), None)
        if group is None:
            raise ValueError(f"no instance group {group_id} in {run.id}")
        live = sorted((n for n in run.live(group) if n.state == "RUNNING"), key=lambda n: n.created)
        if instance_id is not None:
            live = [n for n in live if n.instance_id == instance_id]
        if not live:
            raise ValueError(f"instance group {group_id} has no running instance to lose")
        node = live[-1]
        info = run.running_step
        run.losses.append({"instance_id": node.instance_id, "role": node.role, "market": node.market,
                           "step_id": info.step.id if info else None,
                           "step_state": info.step.state if info else None,
                           "tasks_done": info.progress.tasks_done if info else None,
                           "driver_on_node": bool(info and info.driver_node is node)})
        run.spark.kill(node, "INSTANCE_FAILURE", message)
        hdfs.lose_disk(node)
        run.event(f"{what}: {group.role} instance {node.instance_id} killed (SIGKILL)")
        if info is not None and (info.driver_node is node or node.role == "MASTER"):
            info.driver_lost = (f"The {node.role} node {node.instance_id} ({node.market}) running the step's "
                                f"driver was lost ({what}): the application failed.")
            if info.driver_proc is not None:
                run.spark.processes.kill(info.driver_proc)
        if node.role == "MASTER":
            self.request_termination(run, "INSTANCE_FAILURE", f"The master node was lost ({what}).",
                                     state="TERMINATED_WITH_ERRORS")
        return node.instance_id

    @staticmethod
    def resize(run: ClusterRun, group, count: int, why: str) -> None:
        """Start or end workers until ``group`` has ``count`` live instances (``scaling.py``)."""
        scaling.resize(run, group, count, why)

    def start_scaler(self, run: ClusterRun) -> None:
        """Managed scaling: one thread per cluster that has a policy (``scaling.py``)."""
        if run.scaler is None or not run.scaler.is_alive():
            run.scaler = threading.Thread(target=scaling.scaler_loop, args=(run,), daemon=True,
                                          name=f"emr-scaler-{run.id}")
            run.scaler.start()
