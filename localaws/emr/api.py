"""EMR's data plane: RunJobFlow starts a real Spark cluster, steps really run.

moto keeps EMR's records (clusters, instance groups, instances, steps) and
answers in EMR's wire format, but nothing ever runs there: clusters are
WAITING at once and steps never progress. This data plane plugs in behind
the same boto3 calls (see ``localaws/core/plane.py``):

- **RunJobFlow** checks the request as EMR does (one MASTER group, known
  instance types, valid ActionOnFailure...), takes InstanceGroups or
  InstanceFleets (a fleet's first instance type fills its On-Demand and Spot
  targets; ListInstanceFleets reports them), then starts one Spark master
  and one Spark worker per CORE/TASK instance (``cluster.py``). The cluster
  goes STARTING -> BOOTSTRAPPING -> RUNNING/WAITING as the processes really
  come up (the master answers, every worker is ALIVE in the master's JSON).
- **AddJobFlowSteps** / RunJobFlow ``Steps`` queue steps; a step runs
  ``spark-submit`` against the cluster (``steps.py``), PENDING -> RUNNING ->
  COMPLETED / FAILED / CANCELLED, and ActionOnFailure decides what happens
  next. Logs go to ``<LogUri>/<cluster-id>/steps/<step-id>/``.
- **KeepJobFlowAliveWhenNoSteps=False**: the cluster terminates after its
  last step (ALL_STEPS_COMPLETED), as a transient cluster does.
- **TerminateJobFlows** ends every process of the cluster, by PID.
- **ModifyInstanceGroups** adds or removes workers of a running cluster;
  **Put/Get/RemoveManagedScalingPolicy** (not in moto) attach a policy that
  grows and shrinks the TASK group from measured load (``scaling.py``).
- **CancelSteps** (not in moto) cancels pending or running steps.

Describe*/List* then report what really happens: moto's records are
updated from the processes, and the status fields are computed from them.

The teaching hook ``stack.local.emr.interrupt_spot`` stands in for EC2
reclaiming a Spot instance (on AWS: a two-minute interruption notice, then
the instance is gone): it SIGKILLs the node's processes.
"""
from __future__ import annotations

import collections
import json
import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from localaws.core import Plane, local_hook, moto_hook, moto_property, operation
from . import errors, instances, steps
from .cluster import Node, SparkCluster, now

log = logging.getLogger("localaws.emr")

ACTIONS = ("TERMINATE_JOB_FLOW", "TERMINATE_CLUSTER", "CANCEL_AND_WAIT", "CONTINUE")
FINISHED = ("TERMINATING", "TERMINATED", "TERMINATED_WITH_ERRORS")
MAX_WORKERS = 8          # a guard for this machine, not an EMR limit
START_TIMEOUT = 120      # seconds for the master and workers to come up


@dataclass
class StepInfo:
    """What localaws knows about a step beyond moto's record."""
    step: object          # moto's Step record
    cluster_id: str
    progress: steps.Progress = field(default_factory=steps.Progress)
    failure: dict | None = None
    summary: dict = field(default_factory=dict)
    staging: list = field(default_factory=list)
    s3_bytes_read: int = 0
    seconds: float = 0.0
    cancel: threading.Event = field(default_factory=threading.Event)
    log_uri: str | None = None


@dataclass
class ClusterRun:
    """One EMR cluster's processes and its life."""
    cluster: object       # moto's Cluster record
    backend: object       # moto's ElasticMapReduceBackend
    spark: SparkCluster
    keep_alive: bool
    nodes: dict = field(default_factory=dict)          # instance id -> Node
    queue: collections.deque = field(default_factory=collections.deque)
    cond: threading.Condition = field(default_factory=threading.Condition)
    terminate_request: tuple | None = None             # (code, message)
    reason_code: str | None = None
    history: list = field(default_factory=list)        # (datetime, state)
    events: list = field(default_factory=list)         # (seconds since start, message)
    policy: dict | None = None
    fleets: list = field(default_factory=list)          # instance fleets, when the cluster uses them
    running_step: StepInfo | None = None
    thread: threading.Thread | None = None
    scaler: threading.Thread | None = None

    @property
    def id(self) -> str:
        return self.cluster.id

    def event(self, message: str) -> None:
        self.events.append((round((now() - self.cluster.creation_datetime).total_seconds(), 1), message))


MODELS = "moto.emr.models"


class EMRPlane(Plane):
    """Real Spark standalone clusters behind moto's EMR records."""

    name = "emr"
    services = ("emr",)

    def __init__(self, ctx):
        super().__init__(ctx)
        self.root = Path(ctx.work_dir) / "emr"
        self.runs: dict[str, ClusterRun] = {}
        self.nodes: dict[str, Node] = {}
        self.step_infos: dict[str, StepInfo] = {}
        self.lock = threading.RLock()

    def stop(self):
        for run in list(self.runs.values()):
            self._request_termination(run, "USER_REQUEST", "Terminated by user request")
        for run in list(self.runs.values()):
            if run.thread is not None:
                run.thread.join(timeout=30)
            run.spark.stop()

    # ================================================================ RunJobFlow
    @operation("RunJobFlow")
    def check_run_job_flow(self, req):
        """Refuse what EMR refuses, before moto records anything. Returns None (moto answers)."""
        params = req.params or {}
        inst = params.get("Instances") or {}
        if inst.get("InstanceFleets") and inst.get("InstanceGroups"):
            raise errors.ValidationException("Specify either InstanceGroups or InstanceFleets, not both.")
        groups = inst.get("InstanceGroups") or fleet_groups(inst.get("InstanceFleets") or [])
        if not groups:
            if inst.get("MasterInstanceType"):
                groups = [{"InstanceRole": "MASTER", "InstanceType": inst["MasterInstanceType"], "InstanceCount": 1}]
            else:
                raise errors.ValidationException("Instance group configuration is required: specify Instances.InstanceGroups "
                                        "with a MASTER group (this stand-in does not accept InstanceCount alone).")
        roles = [g.get("InstanceRole") for g in groups]
        if roles.count("MASTER") != 1:
            raise errors.ValidationException("Exactly one MASTER instance group must be specified."
                                    if roles.count("MASTER") == 0 else
                                    "Only one MASTER instance group can be specified.")
        if roles.count("CORE") > 1:
            raise errors.ValidationException("Only one CORE instance group can be specified.")
        workers = 0
        for g in groups:
            self._check_group(g)
            if g["InstanceRole"] == "MASTER" and g.get("InstanceCount", 1) not in (1, 3):
                raise errors.ValidationException("The MASTER instance group must have 1 instance (or 3 for high availability).")
            if g["InstanceRole"] == "MASTER" and g.get("InstanceCount", 1) == 3:
                raise errors.not_emulated("emr", "RunJobFlow", "multi-master (3 MASTER instances)")
            if g["InstanceRole"] == "TASK" and "CORE" not in roles:
                raise errors.ValidationException("A TASK instance group requires a CORE instance group.")
            if g["InstanceRole"] != "MASTER":
                workers += g.get("InstanceCount", 0)
        if workers > MAX_WORKERS:
            raise errors.ValidationException(f"This local stand-in runs at most {MAX_WORKERS} CORE+TASK instances "
                                    f"(one Spark worker process each) on this machine; {workers} were requested.")
        for step in params.get("Steps") or []:
            self._check_step(step)
        if params.get("ManagedScalingPolicy"):
            self._check_policy(params["ManagedScalingPolicy"], groups)
        return None

    @staticmethod
    def _check_group(g: dict) -> None:
        role = g.get("InstanceRole")
        if role not in ("MASTER", "CORE", "TASK"):
            raise errors.ValidationException(f"Invalid InstanceRole: {role!r}; valid roles are MASTER, CORE and TASK.")
        if instances.lookup(g.get("InstanceType", "")) is None:
            raise errors.ValidationException(f"The instance type '{g.get('InstanceType')}' is not supported by Amazon EMR.")
        if g.get("Market", "ON_DEMAND") not in ("ON_DEMAND", "SPOT"):
            raise errors.ValidationException(f"Invalid Market: {g.get('Market')!r}; use ON_DEMAND or SPOT.")
        count = g.get("InstanceCount")
        if count is None or int(count) < 0:
            raise errors.ValidationException(f"InstanceCount must be 0 or more for the {role} instance group; got {count}.")
        if g.get("BidPrice") is not None:
            try:
                if float(g["BidPrice"]) <= 0:
                    raise ValueError
            except ValueError:
                raise errors.ValidationException(f"The bid price is invalid: {g['BidPrice']!r}.") from None

    @staticmethod
    def _check_step(step: dict) -> None:
        action = step.get("ActionOnFailure", "TERMINATE_CLUSTER")
        if action not in ACTIONS:
            raise errors.ValidationException(f"1 validation error detected: Value '{action}' at 'steps.1.member.actionOnFailure' "
                                    f"failed to satisfy constraint: Member must satisfy enum value set: {list(ACTIONS)}")
        jar = (step.get("HadoopJarStep") or {}).get("Jar", "")
        args = (step.get("HadoopJarStep") or {}).get("Args") or []
        if jar not in steps.COMMAND_RUNNER:
            raise errors.unsupported_step(f"custom JAR {jar!r}: only command-runner.jar steps run locally")
        if not args or args[0] != "spark-submit":
            raise errors.unsupported_step(f"command-runner.jar {args[:1]}: only 'spark-submit' runs locally")

    @moto_hook("moto.emr.responses:ElasticMapReduceResponse.run_job_flow")
    def run_job_flow(self, original, response):
        result = original(response)
        cluster_id = result.result["JobFlowId"]
        backend = response.backend
        cluster = backend.clusters[cluster_id]
        raw = json.loads(response.body or b"{}") if response.body else {}
        fleets = self._make_fleets(backend, cluster, (raw.get("Instances") or {}).get("InstanceFleets") or [])
        keep_alive = bool((raw.get("Instances") or {}).get("KeepJobFlowAliveWhenNoSteps", False))
        run = ClusterRun(cluster=cluster, backend=backend, keep_alive=keep_alive,
                         spark=SparkCluster(cluster_id, self.root / cluster_id, self.ctx.processes, self._java()))
        cluster.end_datetime = None
        cluster.ready_datetime = None
        run.fleets = fleets
        if raw.get("ManagedScalingPolicy"):
            run.policy = raw["ManagedScalingPolicy"]
        for step in cluster.steps:
            self._queue_step(run, step)
        for group in cluster.instance_groups:
            group.state = "PROVISIONING"
        self._set_state(run, "STARTING")
        with self.lock:
            self.runs[cluster_id] = run
        self._make_nodes(run)
        run.thread = threading.Thread(target=self._lifecycle, args=(run,), daemon=True,
                                      name=f"emr-{cluster_id}")
        run.thread.start()
        return result

    @staticmethod
    def _make_fleets(backend, cluster, fleets: list[dict]) -> list[dict]:
        """Instance fleets: one instance group per fleet and market, of the fleet's first type.

        EMR fills a fleet's On-Demand and Spot target capacities from its list of
        instance types; here the first type listed fills both, and each market
        becomes a group (which ListInstanceGroups therefore shows, unlike EMR).
        """
        from moto.emr.utils import random_id
        made = []
        for spec, pieces in zip(fleets, fleet_groups(fleets, split=True)):
            fleet = {"Id": f"if-{random_id()}", "Name": spec.get("Name", spec["InstanceFleetType"].lower()),
                     "InstanceFleetType": spec["InstanceFleetType"], "spec": spec, "group_ids": []}
            for piece in pieces:
                group = backend.add_instance_groups(cluster.id, [{
                    "instance_count": piece["InstanceCount"], "instance_role": piece["InstanceRole"],
                    "instance_type": piece["InstanceType"], "market": piece["Market"],
                    "name": f"{fleet['Name']} ({piece['Market']})", "bid_price": piece.get("BidPrice")}])[0]
                before = {i.id for i in cluster.ec2_instances}
                backend.run_instances(cluster.id, {"instance_count": piece["InstanceCount"],
                                                   "instance_type": piece["InstanceType"]}, group)
                for inst in cluster.ec2_instances:
                    if inst.id not in before:
                        inst.instance_fleet_id = fleet["Id"]
                fleet["group_ids"].append(group.id)
            made.append(fleet)
        return made

    @operation("ListInstanceFleets")
    def list_instance_fleets(self, req):
        run = self._run_or_error((req.params or {}).get("ClusterId", ""))
        if not run.fleets:
            return {"InstanceFleets": []}
        out = []
        for fleet in run.fleets:
            nodes = [n for n in run.nodes.values() if n.group_id in fleet["group_ids"]]
            spec = fleet["spec"]
            state = "TERMINATED" if run.cluster.state in ("TERMINATED", "TERMINATED_WITH_ERRORS") else \
                ("RUNNING" if nodes and all(n.state == "RUNNING" for n in nodes if n.state != "TERMINATED")
                 else "PROVISIONING")
            running = lambda market: sum(1 for n in nodes if n.market == market and n.state == "RUNNING")
            out.append({"Id": fleet["Id"], "Name": fleet["Name"], "InstanceFleetType": fleet["InstanceFleetType"],
                        "Status": {"State": state, "StateChangeReason": {},
                                   "Timeline": {"CreationDateTime": run.cluster.creation_datetime.timestamp()}},
                        "TargetOnDemandCapacity": spec.get("TargetOnDemandCapacity", 0),
                        "TargetSpotCapacity": spec.get("TargetSpotCapacity", 0),
                        "ProvisionedOnDemandCapacity": running("ON_DEMAND"),
                        "ProvisionedSpotCapacity": running("SPOT"),
                        "InstanceTypeSpecifications": [
                            {"InstanceType": c["InstanceType"], "WeightedCapacity": c.get("WeightedCapacity", 1)}
                            for c in spec.get("InstanceTypeConfigs", [])]})
        return {"InstanceFleets": out}

    @staticmethod
    def _java() -> str:
        from localaws.core.java import require_java_home
        return require_java_home()

    def _make_nodes(self, run: ClusterRun) -> None:
        """One Node per moto Instance record, labelled with its group and market."""
        for inst in run.cluster.ec2_instances:
            if inst.id not in self.nodes:
                self._node_for(run, inst)

    def _node_for(self, run: ClusterRun, inst) -> Node:
        group = inst.instance_group
        itype = instances.lookup(group.instance_type)
        node = Node(instance_id=inst.id, group_id=group.id, role=group.role, market=group.market or "ON_DEMAND",
                    instance_type=group.instance_type, cores=itype.worker_cores, memory_mb=itype.worker_memory_mb,
                    folder=run.spark.folder / "nodes" / inst.id)
        run.nodes[inst.id] = node
        self.nodes[inst.id] = node
        return node

    # ================================================================ lifecycle
    def _set_state(self, run: ClusterRun, state: str, code: str | None = None, message: str | None = None) -> None:
        cluster = run.cluster
        if cluster.state != state or not run.history:
            run.history.append((now(), state))
        cluster.state = state
        if code is not None:
            run.reason_code = code
        if message is not None:
            cluster.last_state_change_reason = message

    def _lifecycle(self, run: ClusterRun) -> None:
        final = ("TERMINATED", "ALL_STEPS_COMPLETED", "Steps completed")
        try:
            self._start_processes(run)
            while True:
                with run.cond:
                    while not run.queue and run.terminate_request is None:
                        if not run.keep_alive:
                            break
                        run.cond.wait(timeout=1.0)
                    if run.terminate_request is not None:
                        final = ("TERMINATED", *run.terminate_request)
                        break
                    if not run.queue:      # transient cluster, no more steps
                        break
                    info = run.queue.popleft()
                outcome = self._run_step(run, info)
                if outcome is not None:
                    final = outcome
                    break
                with run.cond:
                    if not run.queue and run.terminate_request is None:
                        self._set_state(run, "WAITING", None, "Cluster ready after last step completed."
                                        if run.keep_alive else None)
        except _Terminated:
            final = ("TERMINATED", *run.terminate_request)
        except _StartFailed as exc:
            final = ("TERMINATED_WITH_ERRORS", "INTERNAL_ERROR", str(exc))
        except Exception as exc:  # a bug in the stand-in: end the cluster, say why
            log.warning("EMR lifecycle failed", exc_info=True)
            final = ("TERMINATED_WITH_ERRORS", "INTERNAL_ERROR", f"{type(exc).__name__}: {exc}")
        self._shutdown(run, *final)

    def _start_processes(self, run: ClusterRun) -> None:
        spark = run.spark
        master = next(n for n in run.nodes.values() if n.role == "MASTER")
        spark.start_master(master)
        run.event("master node: Spark master starting")
        if not spark.wait(lambda: master.state == "RUNNING" or run.terminate_request is not None, START_TIMEOUT):
            raise _StartFailed("The master node failed to start: Spark master did not answer.")
        self._check_terminate(run)
        self._set_state(run, "BOOTSTRAPPING")
        self._group(run, "MASTER").state = "RUNNING"
        for group in run.cluster.instance_groups:
            if group.role != "MASTER":
                group.state = "BOOTSTRAPPING"
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
            self._set_state(run, "RUNNING" if run.queue else "WAITING", None,
                            None if run.queue else "Cluster ready to run steps.")
        if run.policy:
            self._start_scaler(run)

    @staticmethod
    def _check_terminate(run: ClusterRun) -> None:
        if run.terminate_request is not None:
            raise _Terminated()

    def _group(self, run: ClusterRun, role: str):
        return next((g for g in run.cluster.instance_groups if g.role == role), None)

    def _request_termination(self, run: ClusterRun, code: str, message: str) -> None:
        with run.cond:
            if run.terminate_request is None and run.cluster.state not in ("TERMINATED", "TERMINATED_WITH_ERRORS"):
                run.terminate_request = (code, message)
                self._set_state(run, "TERMINATING", code, message)
                if run.running_step is not None:
                    run.running_step.cancel.set()
            run.cond.notify_all()

    def _shutdown(self, run: ClusterRun, state: str, code: str, message: str) -> None:
        with run.cond:
            if run.cluster.state not in FINISHED:
                self._set_state(run, "TERMINATING", code, message)
            pending = list(run.queue)
            run.queue.clear()
            run.terminate_request = run.terminate_request or (code, message)
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
        self._set_state(run, state, code, message)

    # ================================================================ steps
    def _queue_step(self, run: ClusterRun, step) -> StepInfo:
        step.state = "PENDING"
        step.start_date_time = None
        info = StepInfo(step=step, cluster_id=run.id)
        self.step_infos[step.id] = info
        run.queue.append(info)
        return info

    @moto_hook(f"{MODELS}:ElasticMapReduceBackend.add_job_flow_steps")
    def add_job_flow_steps(self, original, backend, job_flow_id, new_steps):
        run = self.runs.get(job_flow_id)
        if job_flow_id not in backend.clusters:
            raise errors.no_cluster(job_flow_id)
        cluster = backend.clusters[job_flow_id]
        if cluster.state in FINISHED:
            raise errors.cluster_finished(job_flow_id, cluster.state)
        for step in new_steps:
            self._check_step(_camel(step))
        state = cluster.state
        added = original(backend, job_flow_id, new_steps)
        cluster.state = state       # moto says RUNNING at once; the lifecycle decides
        if run is not None:
            with run.cond:
                for step in added:
                    self._queue_step(run, step)
                if run.cluster.state == "WAITING":
                    self._set_state(run, "RUNNING")
                run.cond.notify_all()
        return added

    def _driver_env(self, run: ClusterRun, info: StepInfo, folder: Path) -> dict:
        env = dict(run.spark.env)
        env.update(self.ctx.env())
        env["AWS_ACCESS_KEY_ID"] = info.step.id      # the step's own key: its S3 reads are metered
        paths = [steps.DRIVER_SHIM] + [p for p in env.get("PYTHONPATH", "").split(":") if p]
        env["PYTHONPATH"] = ":".join(paths)
        core = [n for n in run.nodes.values() if n.role == "CORE" and n.state == "RUNNING"]
        env.update({
            "LOCALAWS_EMRFS_STAGING": str(folder / "staging"),
            "LOCALAWS_EMRFS_REPORT": str(folder / "emrfs.jsonl"),
            "LOCALAWS_HDFS_NAMENODE": str(run.spark.folder / "namenode.json"),
            "LOCALAWS_HDFS_DATANODES": json.dumps({n.instance_id: str(n.folder / "hdfs") for n in core}),
            "LOCALAWS_HDFS_REPLICATION": str(hdfs_replication(len([n for n in run.nodes.values()
                                                                    if n.role == "CORE"])))})
        return env

    def _run_step(self, run: ClusterRun, info: StepInfo):
        """Run one step; return a final cluster outcome if ActionOnFailure ends the cluster."""
        step = info.step
        with run.cond:
            if run.terminate_request is not None:
                run.queue.appendleft(info)
                return ("TERMINATED", *run.terminate_request)
            step.state, step.start_date_time = "RUNNING", now()
            run.running_step = info
            self._set_state(run, "RUNNING")
        folder = run.spark.folder / "master" / "steps" / step.id
        folder.mkdir(parents=True, exist_ok=True)
        error = None
        started = time.monotonic()
        with self.ctx.s3.meter.track(step.id) as usage:
            try:
                s3 = self.ctx.client("s3", access_key=step.id)   # the step's reads are metered
                plan = steps.parse_args(list(step.args))
                script = steps.fetch_script(s3, plan.script_uri, folder)
                memory = min([n.memory_mb for n in run.nodes.values() if n.role != "MASTER"] or [512])
                code = steps.spark_submit(plan, script, cluster=run.spark, env=self._driver_env(run, info, folder),
                                          folder=folder, executor_memory_mb=memory,
                                          ui_port=_free(), cancel=info.cancel, progress=info.progress)
                controller = [f"INFO spark-submit {' '.join(step.args[1:])}", *[f"INFO {n}" for n in plan.notes],
                              f"INFO Process exited with code {code}"]
            except steps.StepError as exc:
                error, code = str(exc), 1
                (folder / "stderr").write_text(error + "\n")
                (folder / "stdout").write_text("")
                controller = [f"INFO command-runner.jar {' '.join(step.args)}", f"ERROR {error}"]
        info.seconds = time.monotonic() - started
        info.s3_bytes_read = usage.bytes_read
        info.summary = steps.event_log_summary(folder / "eventlog")
        info.staging = _read_jsonl(folder / "emrfs.jsonl")
        (folder / "controller").write_text("\n".join(controller) + "\n")
        self._upload_logs(run, info, folder)
        run.running_step = None
        if info.cancel.is_set():
            self._finish_step(info, "CANCELLED", None)
            return None
        if code == 0:
            self._finish_step(info, "COMPLETED", None)
            return None
        # Spark's PythonRunner merges the Python driver's stderr into the JVM's
        # stdout: a PySpark traceback lands in stdout, Java errors in stderr.
        reason, where = error, "stderr"
        for name in ("stdout", "stderr"):
            found = reason is None and steps.last_error_line((folder / name).read_text(errors="replace"))
            if found:
                reason, where = found, name
        self._finish_step(info, "FAILED", {"Reason": reason or "Unknown Error",
                                           "Message": f"Step failed: spark-submit exited with code {code}.",
                                           "LogFile": info.log_uri and f"{info.log_uri}{where}.gz"})
        action = step.action_on_failure or "TERMINATE_CLUSTER"
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

    def _finish_step(self, info: StepInfo, state: str, failure: dict | None) -> None:
        info.failure = failure
        step = info.step
        step.state = state
        step.end_date_time = now()
        if state == "CANCELLED":
            step.last_state_change_reason = "Cancelled by user" if info.cancel.is_set() else "Job terminated"

    def _upload_logs(self, run: ClusterRun, info: StepInfo, folder: Path) -> None:
        uri = run.cluster.log_uri
        if not uri or not uri.startswith(("s3://", "s3n://", "s3a://")):
            return
        bucket, _, prefix = uri.split("://", 1)[1].partition("/")
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        base = f"{prefix}{run.id}/steps/{info.step.id}/"
        info.log_uri = f"s3://{bucket}/{base}"
        s3 = self.ctx.client("s3")
        for name in ("controller", "stdout", "stderr"):
            path = folder / name
            if path.exists():
                try:
                    s3.put_object(Bucket=bucket, Key=f"{base}{name}.gz", Body=steps.gz(path.read_bytes()))
                except Exception:     # a missing log bucket must not fail the step (EMR logs it)
                    log.debug("could not upload %s", name, exc_info=True)

    @operation("CancelSteps")
    def cancel_steps(self, req):
        params = req.params or {}
        cluster_id = params.get("ClusterId", "")
        run = self.runs.get(cluster_id)
        if run is None:
            raise errors.no_cluster(cluster_id)
        answers = []
        for step_id in params.get("StepIds") or []:
            info = self.step_infos.get(step_id)
            if info is None or info.cluster_id != cluster_id:
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
        return {"CancelStepsInfoList": answers}

    # ================================================================ termination
    @moto_hook(f"{MODELS}:ElasticMapReduceBackend.terminate_job_flows")
    def terminate_job_flows(self, original, backend, ids):
        for job_flow_id in ids or []:
            if job_flow_id not in backend.clusters:
                raise errors.no_cluster(job_flow_id)
        protected = [i for i in ids if backend.clusters[i].termination_protected]
        if protected:
            raise errors.ValidationException("Could not shut down one or more job flows since they are termination protected.")
        done = []
        for job_flow_id in ids:
            run = self.runs.get(job_flow_id)
            if run is None:
                done += original(backend, [job_flow_id])
                continue
            self._request_termination(run, "USER_REQUEST", "Terminated by user request")
            done.append(run.cluster)
        return done

    # ================================================================ resizing
    @moto_hook(f"{MODELS}:ElasticMapReduceBackend.modify_instance_groups")
    def modify_instance_groups(self, original, backend, groups):
        for spec in groups or []:
            group_id = spec.get("instance_group_id") or spec.get("InstanceGroupId")
            group = backend.instance_groups.get(group_id)
            if group is None:
                raise errors.InvalidRequestException(f"Instance group id '{group_id}' is not valid.")
            count = spec.get("instance_count", spec.get("InstanceCount"))
            if count is None:
                continue
            count = int(count)
            if count < 0:
                raise errors.ValidationException(f"An instance group's instance count must be 0 or more; got {count}.")
            if group.role == "MASTER":
                raise errors.ValidationException("The MASTER instance group cannot be resized.")
            run = self.runs.get(group.cluster_id)
            if run is not None and run.cluster.state in FINISHED:
                raise errors.cluster_finished(run.id, run.cluster.state)
            if run is not None:
                others = sum(len(self._live(run, g)) for g in run.cluster.instance_groups
                             if g.role != "MASTER" and g.id != group.id)
                if others + count > MAX_WORKERS:
                    raise errors.ValidationException(f"This local stand-in runs at most {MAX_WORKERS} CORE+TASK instances.")
                if group.role == "CORE" and count < len(self._live(run, group)):
                    raise errors.ValidationException("Shrinking the CORE instance group is not supported by this stand-in "
                                            "(its nodes hold the cluster's HDFS data); resize a TASK group instead.")
        original(backend, groups)
        for spec in groups or []:
            group = backend.instance_groups[spec.get("instance_group_id") or spec.get("InstanceGroupId")]
            run = self.runs.get(group.cluster_id)
            if run is not None and (spec.get("instance_count") is not None):
                self.resize(run, group, int(spec["instance_count"]), "ModifyInstanceGroups")

    def _live(self, run: ClusterRun, group) -> list[Node]:
        return [n for n in run.nodes.values() if n.group_id == group.id and n.state != "TERMINATED"]

    def resize(self, run: ClusterRun, group, count: int, why: str) -> None:
        """Start or end workers until ``group`` has ``count`` live instances."""
        group.set_instance_count(count)
        live = self._live(run, group)
        if count == len(live):
            return
        group.state = "RESIZING"
        run.event(f"{why}: {group.role} group {len(live)} -> {count} instance(s)")
        if count > len(live):
            before = {i.id for i in run.cluster.ec2_instances}
            run.backend.run_instances(run.id, {"instance_count": count - len(live),
                                               "instance_type": group.instance_type}, group)
            added = [self._node_for(run, i) for i in run.cluster.ec2_instances if i.id not in before]
            for node in added:
                run.spark.start_worker(node)
            threading.Thread(target=self._await_resize, args=(run, group, added), daemon=True).start()
        else:
            status = run.spark.worker_status()
            # Idle workers first (no cores in use), newest first: EMR also prefers idle nodes.
            order = sorted(live, key=lambda n: (status.get(n.port, {}).get("coresused", 0), -n.created.timestamp()))
            for node in order[: len(live) - count]:
                run.spark.decommission(node, f"Instance terminated by {why} (resize).")
            group.state = "RUNNING"

    def _await_resize(self, run: ClusterRun, group, added: list[Node]) -> None:
        run.spark.wait(lambda: all(n.state != "BOOTSTRAPPING" for n in added) or run.terminate_request is not None,
                       START_TIMEOUT)
        if group.state == "RESIZING":
            group.state = "RUNNING"
        run.event(f"{group.role} group: {len([n for n in added if n.state == 'RUNNING'])} new worker(s) ALIVE")

    # ================================================================ managed scaling
    def _check_policy(self, policy: dict, groups: list | None = None) -> dict:
        limits = (policy or {}).get("ComputeLimits")
        if not limits:
            raise errors.ValidationException("ManagedScalingPolicy.ComputeLimits is required.")
        unit = limits.get("UnitType")
        if unit not in ("Instances", "VCPU", "InstanceFleetUnits"):
            raise errors.ValidationException(f"Invalid UnitType {unit!r}: use Instances, VCPU or InstanceFleetUnits.")
        if unit == "InstanceFleetUnits":
            raise errors.ValidationException("InstanceFleetUnits applies to instance fleets; this cluster uses instance groups.")
        lo, hi = limits.get("MinimumCapacityUnits"), limits.get("MaximumCapacityUnits")
        if lo is None or hi is None or int(lo) < 1 or int(hi) < int(lo):
            raise errors.ValidationException("MinimumCapacityUnits must be at least 1 and at most MaximumCapacityUnits.")
        for name in ("MaximumOnDemandCapacityUnits", "MaximumCoreCapacityUnits"):
            if limits.get(name) is not None and int(limits[name]) > int(hi):
                raise errors.ValidationException(f"{name} must not exceed MaximumCapacityUnits.")
        return policy

    @operation("PutManagedScalingPolicy")
    def put_managed_scaling_policy(self, req):
        params = req.params or {}
        run = self._run_or_error(params.get("ClusterId", ""))
        policy = self._check_policy(params.get("ManagedScalingPolicy"))
        run.policy = policy
        run.event(f"managed scaling policy attached: {policy['ComputeLimits']}")
        if run.cluster.state in ("RUNNING", "WAITING"):
            self._start_scaler(run)
        return {}

    @operation("GetManagedScalingPolicy")
    def get_managed_scaling_policy(self, req):
        run = self._run_or_error((req.params or {}).get("ClusterId", ""))
        return {"ManagedScalingPolicy": run.policy} if run.policy else {}

    @operation("RemoveManagedScalingPolicy")
    def remove_managed_scaling_policy(self, req):
        run = self._run_or_error((req.params or {}).get("ClusterId", ""))
        run.policy = None
        return {}

    def _run_or_error(self, cluster_id: str) -> ClusterRun:
        run = self.runs.get(cluster_id)
        if run is None:
            raise errors.no_cluster(cluster_id)
        return run

    def _start_scaler(self, run: ClusterRun) -> None:
        from .scaling import scaler_loop
        if run.scaler is None or not run.scaler.is_alive():
            run.scaler = threading.Thread(target=scaler_loop, args=(self, run), daemon=True,
                                          name=f"emr-scaler-{run.id}")
            run.scaler.start()

    # ================================================================ status fields
    @moto_property(f"{MODELS}:Cluster.status")
    def cluster_status(self, _moto_status, cluster):
        run = self.runs.get(cluster.id)
        return {"State": cluster.state,
                "StateChangeReason": {k: v for k, v in (("Code", run.reason_code if run else None),
                                                        ("Message", getattr(cluster, "last_state_change_reason", None)))
                                      if v},
                "Timeline": {"CreationDateTime": cluster.creation_datetime, "ReadyDateTime": cluster.ready_datetime,
                             "EndDateTime": cluster.end_datetime}}

    @moto_property(f"{MODELS}:Step.status")
    def step_status(self, _moto_status, step):
        info = self.step_infos.get(step.id)
        status = {"State": step.state,
                  "StateChangeReason": ({"Message": step.last_state_change_reason}
                                        if getattr(step, "last_state_change_reason", None) else {}),
                  "Timeline": {"CreationDateTime": step.creation_date_time, "StartDateTime": step.start_date_time,
                               "EndDateTime": step.end_date_time}}
        if info is not None and info.failure:
            status["FailureDetails"] = {k: v for k, v in info.failure.items() if v}
        return status

    @moto_property(f"{MODELS}:Instance.status")
    def instance_status(self, moto_status, inst):
        node = self.nodes.get(inst.id)
        if node is None:
            return moto_status(inst)
        reason = {k: v for k, v in (("Code", node.reason_code), ("Message", node.reason)) if v}
        return {"State": node.state, "StateChangeReason": reason,
                "Timeline": {"CreationDateTime": node.created, "ReadyDateTime": node.ready,
                             "EndDateTime": node.ended}}

    @moto_property(f"{MODELS}:InstanceGroup.status")
    def group_status(self, _moto_status, group):
        run = self.runs.get(group.cluster_id)
        reason = {}
        if run is not None and group.state == "TERMINATED":
            reason = {"Code": "CLUSTER_TERMINATED", "Message": "The instance group was terminated with the cluster."}
        return {"State": group.state, "StateChangeReason": reason,
                "Timeline": {"CreationDateTime": group.creation_date_time,
                             "ReadyDateTime": run.cluster.ready_datetime if run else group.ready_date_time,
                             "EndDateTime": group.end_date_time}}

    @moto_property(f"{MODELS}:InstanceGroup.running_instance_count")
    def group_running(self, _moto_count, group):
        nodes = [n for n in self.nodes.values() if n.group_id == group.id]
        if not nodes:
            return group.num_instances
        return sum(1 for n in nodes if n.state == "RUNNING")

    @moto_property(f"{MODELS}:InstanceGroup.instance_running_count")
    def group_running_count(self, moto_count, group):
        return self.group_running(moto_count, group)

    # ================================================================ teaching hooks
    @local_hook("On AWS, DescribeCluster and ListInstances describe the cluster; its processes are not visible.")
    def run(self, cluster_id: str) -> ClusterRun:
        """The local run of ``cluster_id`` (processes, nodes, history)."""
        return self._run_or_error(cluster_id)

    @local_hook("On AWS, use AWS Fault Injection Service (action aws:ec2:send-spot-instance-interruptions) on the task group's instances.")
    def interrupt_spot(self, cluster_id: str, instance_group_id: str, instance_id: str | None = None) -> str:
        """Reclaim one Spot instance of ``instance_group_id``, as EC2 does: SIGKILL.

        A teaching hook, not an AWS API. On AWS, EC2 gives a Spot instance a
        two-minute interruption notice and then takes it back; its processes
        and its disks are gone. Here the node's worker JVM and its executors
        are killed with SIGKILL, and a CORE node's disk folder (its HDFS
        DataNode data) is deleted. Returns the instance id.
        """
        run = self._run_or_error(cluster_id)
        group = next((g for g in run.cluster.instance_groups if g.id == instance_group_id), None)
        if group is not None and (group.market or "ON_DEMAND") != "SPOT":
            raise ValueError(f"instance group {instance_group_id} is {group.market}: only Spot instances are interrupted")
        return self._lose(run, instance_group_id, instance_id, "spot interruption",
                          "Instance was interrupted: EC2 reclaimed the Spot capacity (spot interruption).")

    @local_hook("On AWS, use AWS Fault Injection Service (e.g. aws:ec2:terminate-instances) on one of the cluster's instances.")
    def fail_instance(self, cluster_id: str, instance_group_id: str, instance_id: str | None = None) -> str:
        """An instance of any market fails (hardware fault, failed health check): SIGKILL, disk lost.

        A teaching hook, not an AWS API: on-demand instances fail too, rarely.
        """
        run = self._run_or_error(cluster_id)
        return self._lose(run, instance_group_id, instance_id, "instance failure",
                          "Instance failed: it stopped responding (hardware failure).")

    def _lose(self, run: ClusterRun, instance_group_id: str, instance_id: str | None, what: str, message: str) -> str:
        group = next((g for g in run.cluster.instance_groups if g.id == instance_group_id), None)
        if group is None:
            raise ValueError(f"no instance group {instance_group_id} in {run.id}")
        if group.role == "MASTER":
            raise ValueError("losing the master node ends the cluster; this hook takes CORE or TASK groups")
        live = sorted((n for n in self._live(run, group) if n.state == "RUNNING"), key=lambda n: n.created)
        if instance_id is not None:
            live = [n for n in live if n.instance_id == instance_id]
        if not live:
            raise ValueError(f"instance group {instance_group_id} has no running instance to lose")
        node = live[-1]
        run.spark.kill(node, "INSTANCE_FAILURE", message)
        import shutil
        shutil.rmtree(node.folder / "hdfs", ignore_errors=True)   # the instance's disk goes with it
        run.event(f"{what}: {group.role} instance {node.instance_id} killed (SIGKILL)")
        return node.instance_id

    @local_hook("On AWS, run 'hdfs fsck / -files -blocks -locations' on the master node (an EMR step or SSH).")
    def hdfs_blocks(self, cluster_id: str) -> dict[str, list[str]]:
        """The NameNode's view: each HDFS file and the CORE instances holding it."""
        path = self._run_or_error(cluster_id).spark.folder / "namenode.json"
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            return {}

    @local_hook("On AWS, read the step's logs under LogUri and Spark's history server (the Spark UI of the cluster).")
    def step_details(self, step_id: str) -> dict:
        """Measured facts about a step: tasks (from Spark's event log), S3 staging, bytes read."""
        info = self.step_infos[step_id]
        p = info.progress
        return {"state": info.step.state, "tasks": dict(info.summary), "staging": list(info.staging),
                "s3_bytes_read": info.s3_bytes_read, "seconds": info.seconds,
                "progress": {"total": p.tasks_total, "done": p.tasks_done, "running": p.tasks_running,
                             "pending": p.tasks_pending}}

    @local_hook("On AWS, watch the running application in the Spark UI (or its REST API on the master node).")
    def wait_for_tasks(self, step_id: str, done: int = 1, timeout: float = 300) -> bool:
        """Block until the step's driver reports ``done`` finished tasks (for interrupting mid-job)."""
        info = self.step_infos[step_id]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if info.progress.tasks_done >= done:
                return True
            if info.step.state not in ("PENDING", "RUNNING"):
                return False
            time.sleep(0.1)
        return False

    @local_hook("On AWS, the billed instance-hours are in AWS Cost Explorer (and ListInstances' timelines).")
    def usage(self, cluster_id: str) -> list[dict]:
        """Per instance: role, market, type and the seconds it ran (requested -> ended)."""
        run = self._run_or_error(cluster_id)
        groups = {g.id: g for g in run.cluster.instance_groups}
        return [{"instance_id": n.instance_id, "group_id": n.group_id, "role": n.role, "market": n.market,
                 "instance_type": n.instance_type, "bid_price": groups[n.group_id].bid_price,
                 "seconds": n.seconds(), "state": n.state}
                for n in sorted(run.nodes.values(), key=lambda n: ("MASTER", "CORE", "TASK").index(n.role))]

    @local_hook("On AWS, DescribeCluster's Status.Timeline and EMR's CloudWatch events give the state changes.")
    def history(self, cluster_id: str) -> list[tuple[datetime, str]]:
        return list(self._run_or_error(cluster_id).history)

    @local_hook("On AWS, the cluster's events are EventBridge 'EMR Cluster State Change' events and its logs.")
    def events(self, cluster_id: str) -> list[tuple[float, str]]:
        return list(self._run_or_error(cluster_id).events)

    @local_hook("On AWS, terminate the cluster (TerminateJobFlows) to stop its instances.")
    def pids(self, cluster_id: str | None = None) -> list[int]:
        """PIDs of the live JVMs of one cluster (or all), for checking clean-up."""
        runs = [self.runs[cluster_id]] if cluster_id else list(self.runs.values())
        return [pid for run in runs for pid in run.spark.pids()]

    @local_hook("On AWS, the master node's web UIs are reached through an SSH tunnel or EMR's persistent UIs.")
    def ports(self, cluster_id: str) -> list[int]:
        run = self._run_or_error(cluster_id)
        nodes = [n for n in run.nodes.values() if n.port]
        return [p for n in nodes for p in (n.port, n.webui_port) if p]



class _StartFailed(Exception):
    pass


class _Terminated(Exception):
    pass


def fleet_groups(fleets: list[dict], split: bool = False):
    """Instance groups equivalent to ``fleets`` (per fleet: an On-Demand and a Spot part).

    Each fleet's target capacity is filled with its first instance type:
    ceil(target / WeightedCapacity) instances per market. Raises EMR's
    ValidationException for what EMR refuses.
    """
    import math
    out = []
    for fleet in fleets:
        role = fleet.get("InstanceFleetType")
        configs = fleet.get("InstanceTypeConfigs") or []
        if not configs:
            raise errors.ValidationException(f"The {role} instance fleet needs at least one InstanceTypeConfig.")
        first = configs[0]
        weight = int(first.get("WeightedCapacity", 1) or 1)
        pieces = []
        for market, target in (("ON_DEMAND", fleet.get("TargetOnDemandCapacity", 0)),
                               ("SPOT", fleet.get("TargetSpotCapacity", 0))):
            if target and int(target) > 0:
                piece = {"InstanceRole": role, "InstanceType": first.get("InstanceType"), "Market": market,
                         "InstanceCount": math.ceil(int(target) / weight)}
                if market == "SPOT" and first.get("BidPrice"):
                    piece["BidPrice"] = first["BidPrice"]
                pieces.append(piece)
        if role == "CORE" and len(pieces) > 1:
            raise errors.not_emulated("emr", "RunJobFlow", "a CORE instance fleet with both On-Demand and Spot "
                                      "target capacity (use one market for the CORE fleet)")
        if role == "MASTER" and sum(p["InstanceCount"] for p in pieces) != 1:
            raise errors.ValidationException("The MASTER instance fleet must have a target capacity of exactly 1.")
        out.append(pieces)
    return out if split else [p for pieces in out for p in pieces]


def hdfs_replication(core_nodes: int) -> int:
    """EMR's default dfs.replication: 1 for fewer than 4 core nodes, 2 for fewer than 10, else 3."""
    return 1 if core_nodes < 4 else 2 if core_nodes < 10 else 3


def _free() -> int:
    from .cluster import free_port
    return free_port()


def _read_jsonl(path: Path) -> list:
    try:
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    except OSError:
        return []


def _camel(step) -> dict:
    """moto hands steps over with snake_case keys; checks use EMR's names."""
    def get(d, *names, default=None):
        for n in names:
            if hasattr(d, "get") and d.get(n) is not None:
                return d.get(n)
        return default
    jar_step = get(step, "hadoop_jar_step", "HadoopJarStep", default={}) or {}
    return {"ActionOnFailure": get(step, "action_on_failure", "ActionOnFailure", default="TERMINATE_CLUSTER"),
            "HadoopJarStep": {"Jar": get(jar_step, "jar", "Jar", default=""),
                              "Args": list(get(jar_step, "args", "Args", default=[]) or [])}}
