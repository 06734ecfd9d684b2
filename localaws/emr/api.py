"""EMR's API, answered by real Spark clusters: the ``EMRPlane``.

moto keeps EMR's records (clusters, instance groups, instances, steps) and
answers in EMR's wire format, but nothing ever runs there: clusters are
WAITING at once and steps never progress. This plane plugs in behind the
same boto3 calls (see ``localaws/core/plane.py``) and hands the work to the
engine (``engine.py``):

- **RunJobFlow** is checked as EMR checks it (``checks.py``: one MASTER
  group, known instance types and release label, valid ActionOnFailure...)
  before moto records anything; then a real Spark master and one Spark
  worker per CORE/TASK instance start (``cluster.py``), and the cluster goes
  STARTING -> BOOTSTRAPPING -> RUNNING/WAITING as they really come up.
  Instance fleets become groups (``fleets.py``).
- **AddJobFlowSteps** (or RunJobFlow ``Steps``) queue steps; each runs
  ``spark-submit`` against the cluster (``steps.py``), ``s3://`` through
  S3A, and ActionOnFailure decides what happens after a failure.
- **TerminateJobFlows** ends every process of the cluster, by PID;
  ``KeepJobFlowAliveWhenNoSteps=False`` ends it after its last step.
- **ModifyInstanceGroups** adds or removes workers of a running cluster;
  **Put/Get/RemoveManagedScalingPolicy** (not in moto) let ``scaling.py``
  grow and shrink it from measured load. **CancelSteps** (not in moto)
  cancels pending or running steps.

Describe*/List* then report what really happens: the status fields of
moto's records are computed from the processes (the ``@moto_property``
hooks below). Teaching hooks (``stack.local.emr.*``) stand in for what only
AWS can do to a cluster, such as EC2 reclaiming a Spot instance.
"""
from __future__ import annotations

import json
from datetime import datetime

from localaws.core import Plane, local_hook, moto_hook, moto_property, operation
from localaws.core.waiting import wait_until
from . import checks, errors, fleets, hdfs, releases
from .engine import ClusterRun, Engine

MODELS = "moto.emr.models"
ROLE_ORDER = ("MASTER", "CORE", "TASK")


class EMRPlane(Plane):
    """Real Spark standalone clusters behind moto's EMR records."""

    name = "emr"
    services = ("emr",)

    def __init__(self, ctx):
        super().__init__(ctx)
        self.engine = Engine(ctx)
        self._session = None          # stack.local.emr.spark_session's SparkSession

    def stop(self):
        self.close_spark_session()
        self.engine.stop()

    # ================================================================ clusters
    @operation("RunJobFlow")
    def check_run_job_flow(self, req):
        """Refuse what EMR refuses (and a cluster this machine cannot start), before moto
        records anything. Returns None: moto answers, then :meth:`run_job_flow` starts it."""
        checks.run_job_flow(req.params or {})
        return None

    @moto_hook("moto.emr.responses:ElasticMapReduceResponse.run_job_flow")
    def run_job_flow(self, original, response):
        result = original(response)
        request = json.loads(response.body) if response.body else {}
        cluster = response.backend.clusters[result.result["JobFlowId"]]
        self.engine.start(response.backend, cluster, request, releases.check(request.get("ReleaseLabel")))
        return result

    @operation("ListInstanceFleets")
    def list_instance_fleets(self, req):
        run = self.engine.run_or_error((req.params or {}).get("ClusterId", ""))
        return {"InstanceFleets": fleets.describe(run)}

    @moto_hook(f"{MODELS}:ElasticMapReduceBackend.terminate_job_flows")
    def terminate_job_flows(self, original, backend, ids):
        return self.engine.terminate(backend, list(ids or []), original)

    @moto_hook(f"{MODELS}:ElasticMapReduceBackend.modify_instance_groups")
    def modify_instance_groups(self, original, backend, groups):
        changes = []
        for spec in groups or []:
            group_id = spec.get("instance_group_id") or spec.get("InstanceGroupId")
            group = backend.instance_groups.get(group_id)
            if group is None:
                raise errors.InvalidRequestException(f"Instance group id '{group_id}' is not valid.")
            count = spec.get("instance_count", spec.get("InstanceCount"))
            if count is not None:
                checks.resize(group, int(count), self.engine.runs.get(group.cluster_id))
                changes.append((group, int(count)))
        original(backend, groups)
        for group, count in changes:
            run = self.engine.runs.get(group.cluster_id)
            if run is not None:
                self.engine.resize(run, group, count, "ModifyInstanceGroups")

    # ================================================================ steps
    @moto_hook(f"{MODELS}:ElasticMapReduceBackend.add_job_flow_steps")
    def add_job_flow_steps(self, original, backend, job_flow_id, new_steps):
        if job_flow_id not in backend.clusters:
            raise errors.no_cluster(job_flow_id)
        cluster = backend.clusters[job_flow_id]
        if cluster.state in checks.FINISHED:
            raise errors.cluster_finished(job_flow_id, cluster.state)
        for step in new_steps:
            checks.step(checks.step_from_moto(step))
        state = cluster.state
        added = original(backend, job_flow_id, new_steps)
        cluster.state = state       # moto says RUNNING at once; the lifecycle decides
        run = self.engine.runs.get(job_flow_id)
        if run is not None:
            self.engine.add_steps(run, added)
        return added

    @operation("CancelSteps")
    def cancel_steps(self, req):
        params = req.params or {}
        run = self.engine.run_or_error(params.get("ClusterId", ""))
        return {"CancelStepsInfoList": self.engine.cancel_steps(run, params.get("StepIds") or [])}

    # ================================================================ managed scaling
    @operation("PutManagedScalingPolicy")
    def put_managed_scaling_policy(self, req):
        params = req.params or {}
        run = self.engine.run_or_error(params.get("ClusterId", ""))
        run.policy = checks.scaling_policy(params.get("ManagedScalingPolicy"))
        run.event(f"managed scaling policy attached: {run.policy['ComputeLimits']}")
        if run.cluster.state in ("RUNNING", "WAITING"):
            self.engine.start_scaler(run)
        return {}

    @operation("GetManagedScalingPolicy")
    def get_managed_scaling_policy(self, req):
        run = self.engine.run_or_error((req.params or {}).get("ClusterId", ""))
        return {"ManagedScalingPolicy": run.policy} if run.policy else {}

    @operation("RemoveManagedScalingPolicy")
    def remove_managed_scaling_policy(self, req):
        self.engine.run_or_error((req.params or {}).get("ClusterId", "")).policy = None
        return {}

    # ================================================================ status fields, from the processes
    @moto_property(f"{MODELS}:Cluster.status")
    def cluster_status(self, _moto_status, cluster):
        run = self.engine.runs.get(cluster.id)
        reason = {"Code": run.reason_code if run else None,
                  "Message": getattr(cluster, "last_state_change_reason", None)}
        return {"State": cluster.state, "StateChangeReason": {k: v for k, v in reason.items() if v},
                "Timeline": {"CreationDateTime": cluster.creation_datetime, "ReadyDateTime": cluster.ready_datetime,
                             "EndDateTime": cluster.end_datetime}}

    @moto_property(f"{MODELS}:Step.status")
    def step_status(self, _moto_status, step):
        info = self.engine.step_infos.get(step.id)
        reason = getattr(step, "last_state_change_reason", None)
        status = {"State": step.state, "StateChangeReason": {"Message": reason} if reason else {},
                  "Timeline": {"CreationDateTime": step.creation_date_time, "StartDateTime": step.start_date_time,
                               "EndDateTime": step.end_date_time}}
        if info is not None and info.failure:
            status["FailureDetails"] = {k: v for k, v in info.failure.items() if v}
        return status

    @moto_property(f"{MODELS}:Instance.status")
    def instance_status(self, moto_status, inst):
        node = self.engine.node(inst.instance_group.cluster_id, inst.id)
        if node is None:                 # a record no process stands behind: moto's own answer
            return moto_status(inst)
        reason = {k: v for k, v in (("Code", node.reason_code), ("Message", node.reason)) if v}
        return {"State": node.state, "StateChangeReason": reason,
                "Timeline": {"CreationDateTime": node.created, "ReadyDateTime": node.ready,
                             "EndDateTime": node.ended}}

    @moto_property(f"{MODELS}:InstanceGroup.status")
    def group_status(self, _moto_status, group):
        run = self.engine.runs.get(group.cluster_id)
        reason = {}
        if run is not None and group.state == "TERMINATED":
            reason = {"Code": "CLUSTER_TERMINATED", "Message": "The instance group was terminated with the cluster."}
        return {"State": group.state, "StateChangeReason": reason,
                "Timeline": {"CreationDateTime": group.creation_date_time,
                             "ReadyDateTime": run.cluster.ready_datetime if run else group.ready_date_time,
                             "EndDateTime": group.end_date_time}}

    @moto_property(f"{MODELS}:InstanceGroup.running_instance_count")
    def group_running(self, _moto_count, group):
        run = self.engine.runs.get(group.cluster_id)
        nodes = [n for n in run.nodes.values() if n.group_id == group.id] if run else []
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
        return self.engine.run_or_error(cluster_id)

    @local_hook("On AWS, use AWS Fault Injection Service (action aws:ec2:send-spot-instance-interruptions) "
                "on the task group's instances.")
    def interrupt_spot(self, cluster_id: str, instance_group_id: str, instance_id: str | None = None) -> str:
        """Reclaim one Spot instance of ``instance_group_id``, as EC2 does: SIGKILL.

        On AWS, EC2 gives a Spot instance a two-minute interruption notice and
        then takes it back; its processes and its disks are gone. Here the
        node's worker JVM and its executors are killed with SIGKILL, and a
        CORE node's disk folder (its HDFS DataNode data) is deleted. Returns
        the instance id.
        """
        run = self.engine.run_or_error(cluster_id)
        group = next((g for g in run.cluster.instance_groups if g.id == instance_group_id), None)
        if group is not None and (group.market or "ON_DEMAND") != "SPOT":
            raise ValueError(f"instance group {instance_group_id} is {group.market}: only Spot instances are interrupted")
        return self.engine.lose(run, instance_group_id, instance_id, "spot interruption",
                                "Instance was interrupted: EC2 reclaimed the Spot capacity (spot interruption).")

    @local_hook("On AWS, use AWS Fault Injection Service (e.g. aws:ec2:terminate-instances) "
                "on one of the cluster's instances.")
    def fail_instance(self, cluster_id: str, instance_group_id: str, instance_id: str | None = None) -> str:
        """An instance of any market fails (hardware fault, failed health check): SIGKILL, disk lost.

        Any role: a CORE node takes its HDFS blocks with it; the MASTER (primary)
        node takes the whole cluster (TERMINATED_WITH_ERRORS, INSTANCE_FAILURE).
        """
        return self.engine.lose(self.engine.run_or_error(cluster_id), instance_group_id, instance_id,
                                "instance failure", "Instance failed: it stopped responding (hardware failure).")

    @local_hook("On AWS, run 'hdfs fsck / -files -blocks -locations' on the master node (an EMR step or SSH).")
    def hdfs_blocks(self, cluster_id: str) -> dict[str, list[str]]:
        """The NameNode's view: each HDFS file and the CORE instances holding it."""
        return hdfs.blocks(self.engine.run_or_error(cluster_id).spark.folder)

    @local_hook("On AWS, read the step's logs under LogUri and Spark's history server (the Spark UI of the cluster).")
    def step_details(self, step_id: str) -> dict:
        """Measured facts about a step: tasks (Spark's event log), what it read from S3, progress.

        - ``tasks``: counts from Spark's event log (succeeded, failed and why,
          stages resubmitted, executors added and removed);
        - ``executors``: one row per Spark executor: the EMR instance whose
          worker ran it, why Spark removed it, and the application's tasks
          that succeeded before and after the removal;
        - ``driver``: the deploy mode and the node the driver ran on;
        - ``node_losses``: instances lost while this step ran, with the
          step's state and finished tasks at that moment (the engine's record);
        - ``s3_bytes_read`` and ``s3_objects_read``: every GetObject signed with
          the step's own key (its script, and what S3A read for the driver and
          the executors), as the endpoint counted them.
        """
        info = self.engine.step_infos[step_id]
        run = self.engine.runs[info.cluster_id]
        by_port = {n.webui_port: n for n in run.nodes.values() if n.webui_port}
        tasks = dict(info.summary)
        executors = []
        for row in tasks.pop("executors", []):
            node = by_port.get(row["worker_webui_port"])
            executors.append({"executor": row["executor"], "instance_id": node and node.instance_id,
                              "role": node and node.role, "market": node and node.market,
                              "removed_reason": row["removed_reason"], "tasks_done_before": row["tasks_done_before"],
                              "tasks_done_after": row["tasks_done_after"]})
        p = info.progress
        return {"state": info.step.state, "tasks": tasks, "executors": executors, "driver": info.driver,
                "node_losses": [dict(x) for x in run.losses if x["step_id"] == step_id],
                "s3_bytes_read": info.s3_bytes_read,
                "s3_objects_read": list(info.s3_objects_read), "seconds": info.seconds,
                "progress": {"total": p.tasks_total, "done": p.tasks_done, "running": p.tasks_running,
                             "pending": p.tasks_pending}}

    @local_hook("On AWS, watch the running application in the Spark UI (or its REST API on the master node).")
    def wait_for_tasks(self, step_id: str, done: int = 1, timeout: float = 300) -> bool:
        """Block until the step's driver reports ``done`` finished tasks (for interrupting mid-job)."""
        info = self.engine.step_infos[step_id]
        wait_until(lambda: info.progress.tasks_done >= done or info.step.state not in ("PENDING", "RUNNING"),
                   timeout)
        return info.progress.tasks_done >= done

    @local_hook("On AWS, the billed instance-hours are in AWS Cost Explorer (and ListInstances' timelines).")
    def usage(self, cluster_id: str) -> list[dict]:
        """Per instance: role, market, type and the seconds it ran (requested -> ended)."""
        run = self.engine.run_or_error(cluster_id)
        groups = {g.id: g for g in run.cluster.instance_groups}
        return [{"instance_id": n.instance_id, "group_id": n.group_id, "role": n.role, "market": n.market,
                 "instance_type": n.instance_type, "bid_price": groups[n.group_id].bid_price,
                 "seconds": n.seconds(), "state": n.state}
                for n in sorted(run.nodes.values(), key=lambda n: ROLE_ORDER.index(n.role))]

    @local_hook("On AWS, DescribeCluster's Status.Timeline and EMR's CloudWatch events give the state changes.")
    def history(self, cluster_id: str) -> list[tuple[datetime, str]]:
        return list(self.engine.run_or_error(cluster_id).history)

    @local_hook("On AWS, the cluster's events are EventBridge 'EMR Cluster State Change' events and its logs.")
    def events(self, cluster_id: str) -> list[tuple[float, str]]:
        return list(self.engine.run_or_error(cluster_id).events)

    @local_hook("On AWS, terminate the cluster (TerminateJobFlows) to stop its instances.")
    def pids(self, cluster_id: str | None = None) -> list[int]:
        """PIDs of the live JVMs of one cluster (or all), for checking clean-up."""
        runs = [self.engine.runs[cluster_id]] if cluster_id else list(self.engine.runs.values())
        return [pid for run in runs for pid in run.spark.pids()]

    @local_hook("On AWS, attach an EMR Studio notebook to a cluster (or open a Glue interactive session): "
                "it gives you `spark`; add packages with %%configure {\"conf\": {\"spark.jars.packages\": ...}}.")
    def spark_session(self, app_name: str = "notebook", packages=(), release_label: str | None = None):
        """A SparkSession in this notebook's own process (``core/spark.notebook_session``).

        ``s3://`` reads and writes the stack's S3, signed as ``app_name`` (so
        its S3 bytes are metered under that key). ``packages`` are Maven
        coordinates as ``spark.jars.packages`` takes them (e.g. Spark's Kafka
        connector); ``release_label`` (``emr-7.5.0``) makes Spark 4 answer as
        that release's Spark. One session at a time; the stack stops it.
        """
        from localaws.core.spark import notebook_session
        release = releases.check(release_label) if release_label else None
        self.close_spark_session()
        self._session = notebook_session(self.ctx.endpoint, app_name, self.ctx.region, app_name=app_name,
                                         packages=packages, spark_version=release.spark_version if release else None,
                                         log_dir=self.ctx.work_dir)
        return self._session

    @local_hook("On AWS, stop the notebook's kernel (or the Glue interactive session).")
    def close_spark_session(self) -> None:
        """Stop the session :meth:`spark_session` gave, and its JVM."""
        from localaws.core.spark import stop_notebook_session
        session, self._session = self._session, None
        if session is not None:
            stop_notebook_session(session)

    @local_hook("On AWS, the master node's web UIs are reached through an SSH tunnel or EMR's persistent UIs.")
    def ports(self, cluster_id: str) -> list[int]:
        run = self.engine.run_or_error(cluster_id)
        return [p for n in run.nodes.values() if n.port for p in (n.port, n.webui_port) if p]
