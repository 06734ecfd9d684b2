"""EMR stand-in: a real Spark standalone cluster behind boto3's EMR calls.

One long-running cluster (1 master, 1 core, 2 Spot task nodes) serves the
module; a second, transient one checks ActionOnFailure and auto-termination;
a subprocess checks that stopping a stack leaves no JVM and no port behind.
Tests that share the long-running cluster read its state before acting on
it, so each holds whatever ran before it.
"""
from __future__ import annotations

import gzip
import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from localaws.emr import wait_for_cluster, wait_for_step

ROOT = Path(__file__).resolve().parents[1]

# Real work per task (a hash chain), so that a node can be lost mid-job.
HASH_JOB = textwrap.dedent("""
    import hashlib, sys
    from pyspark.sql import SparkSession

    def chain(i):
        h = str(i).encode()
        for _ in range(60_000):
            h = hashlib.sha256(h).digest()
        return (i % 4, int.from_bytes(h[:4], "big"))

    spark = SparkSession.builder.appName("hash-chains").getOrCreate()
    rdd = spark.sparkContext.parallelize(range(64), 64).map(chain)
    df = spark.createDataFrame(rdd, ["k", "v"]).groupBy("k").sum("v").orderBy("k")
    df.write.mode("overwrite").json(sys.argv[1])
    spark.stop()
""")


def groups(core=1, task=2, task_market="SPOT", itype="m5.xlarge"):
    out = [{"Name": "master", "InstanceRole": "MASTER", "InstanceType": itype, "InstanceCount": 1},
           {"Name": "core", "InstanceRole": "CORE", "InstanceType": itype, "InstanceCount": core}]
    if task:
        out.append({"Name": "task", "InstanceRole": "TASK", "InstanceType": itype, "InstanceCount": task,
                    "Market": task_market, "BidPrice": "0.10"})
    return out


def spark_step(name, script_uri, *args, action="CONTINUE"):
    return {"Name": name, "ActionOnFailure": action,
            "HadoopJarStep": {"Jar": "command-runner.jar", "Args": ["spark-submit", script_uri, *args]}}


def code(err: ClientError) -> str:
    return err.response["Error"]["Code"]


@pytest.fixture(scope="module")
def emr(stack):
    return stack.client("emr")


@pytest.fixture(scope="module")
def s3(stack):
    client = stack.client("s3")
    for bucket in ("emrtest-code", "emrtest-out", "emrtest-logs"):
        client.create_bucket(Bucket=bucket)
    client.put_object(Bucket="emrtest-code", Key="hash.py", Body=HASH_JOB.encode())
    client.put_object(Bucket="emrtest-code", Key="raises.py",
                      Body=b"raise ValueError('the script failed on purpose')\n")
    return client


@pytest.fixture(scope="module")
def cluster(emr, s3, stack):
    cid = emr.run_job_flow(Name="emr-tests", ReleaseLabel="emr-7.13.0", LogUri="s3://emrtest-logs/logs/",
                           Instances={"InstanceGroups": groups(), "KeepJobFlowAliveWhenNoSteps": True},
                           JobFlowRole="EMR_EC2_DefaultRole", ServiceRole="EMR_DefaultRole")["JobFlowId"]
    assert emr.describe_cluster(ClusterId=cid)["Cluster"]["Status"]["State"] in ("STARTING", "BOOTSTRAPPING")
    assert wait_for_cluster(emr, cid, progress=False) == "WAITING"
    yield cid
    if emr.describe_cluster(ClusterId=cid)["Cluster"]["Status"]["State"] not in ("TERMINATED",):
        emr.terminate_job_flows(JobFlowIds=[cid])


def read_json_parts(s3, bucket, prefix):
    rows = []
    for obj in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", []):
        if obj["Key"].endswith(".json"):
            body = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read().decode()
            rows += [json.loads(line) for line in body.splitlines() if line]
    return sorted(rows, key=lambda r: r["k"])


def group_id(emr, cid, role):
    return next(g["Id"] for g in emr.list_instance_groups(ClusterId=cid)["InstanceGroups"]
                if g["InstanceGroupType"] == role)


# ------------------------------------------------------------------ the cluster

def test_cluster_reports_real_nodes(emr, cluster, stack):
    instances = emr.list_instances(ClusterId=cluster)["Instances"]
    assert len(instances) == 4 and all(i["Status"]["State"] == "RUNNING" for i in instances)
    markets = sorted(i["Market"] for i in instances)
    assert markets == ["ON_DEMAND", "ON_DEMAND", "SPOT", "SPOT"]
    states = [s for _, s in stack.local.emr.history(cluster)]
    assert states[:3] == ["STARTING", "BOOTSTRAPPING", "WAITING"]
    pids = stack.local.emr.pids(cluster)
    assert len(pids) == 4 and all(Path(f"/proc/{pid}").exists() for pid in pids)
    status = stack.local.emr.run(cluster).spark.master_json()
    assert sum(w["state"] == "ALIVE" for w in status["workers"]) == 3


def test_step_answer_survives_losing_a_spot_task_node(emr, s3, cluster, stack):
    """The kill-a-worker test: the same answer with a TASK node SIGKILLed mid-job."""
    first = emr.add_job_flow_steps(JobFlowId=cluster, Steps=[
        spark_step("clean", "s3://emrtest-code/hash.py", "s3://emrtest-out/clean/")])["StepIds"][0]
    assert wait_for_step(emr, cluster, first, progress=False) == "COMPLETED"
    clean = read_json_parts(s3, "emrtest-out", "clean/")
    assert [r["k"] for r in clean] == [0, 1, 2, 3]

    second = emr.add_job_flow_steps(JobFlowId=cluster, Steps=[
        spark_step("interrupted", "s3://emrtest-code/hash.py", "s3://emrtest-out/interrupted/")])["StepIds"][0]
    assert stack.local.emr.wait_for_tasks(second, done=2)
    task_group = group_id(emr, cluster, "TASK")
    victim = stack.local.emr.interrupt_spot(cluster, task_group)
    assert wait_for_step(emr, cluster, second, progress=False) == "COMPLETED"
    assert read_json_parts(s3, "emrtest-out", "interrupted/") == clean

    lost = next(i for i in emr.list_instances(ClusterId=cluster)["Instances"] if i["Id"] == victim)
    assert lost["Status"]["State"] == "TERMINATED"
    assert lost["Status"]["StateChangeReason"]["Code"] == "INSTANCE_FAILURE"
    details = stack.local.emr.step_details(second)
    assert details["tasks"]["executors_removed"] >= 1          # Spark saw the executor go
    removed = [e for e in details["executors"] if e["removed_reason"]]
    assert [(e["instance_id"], e["role"], e["market"]) for e in removed] == [(victim, "TASK", "SPOT")]
    assert removed[0]["tasks_done_before"] >= 2 and removed[0]["tasks_done_after"] > 0     # lost mid-job
    assert details["node_losses"] == [{"instance_id": victim, "role": "TASK", "market": "SPOT", "step_id": second,
                                       "step_state": "RUNNING", "tasks_done": details["node_losses"][0]["tasks_done"],
                                       "driver_on_node": False}]
    assert details["driver"]["deploy_mode"] == "client" and details["driver"]["role"] == "MASTER"
    group = next(g for g in emr.list_instance_groups(ClusterId=cluster)["InstanceGroups"] if g["Id"] == task_group)
    assert group["RequestedInstanceCount"] == 2 and group["RunningInstanceCount"] == 1


def test_step_logs_and_failure_details(emr, s3, cluster):
    step = emr.add_job_flow_steps(JobFlowId=cluster, Steps=[
        spark_step("raises", "s3://emrtest-code/raises.py")])["StepIds"][0]
    assert wait_for_step(emr, cluster, step, progress=False) == "FAILED"
    status = emr.describe_step(ClusterId=cluster, StepId=step)["Step"]["Status"]
    assert "ValueError: the script failed on purpose" in status["FailureDetails"]["Reason"]
    log_key = status["FailureDetails"]["LogFile"].split("emrtest-logs/", 1)[1]
    text = gzip.decompress(s3.get_object(Bucket="emrtest-logs", Key=log_key)["Body"].read()).decode()
    assert "ValueError: the script failed on purpose" in text
    keys = {o["Key"].rsplit("/", 1)[1] for o in
            s3.list_objects_v2(Bucket="emrtest-logs", Prefix=f"logs/{cluster}/steps/{step}/")["Contents"]}
    assert keys == {"controller.gz", "stderr.gz", "stdout.gz"}
    # ActionOnFailure=CONTINUE: the cluster goes on waiting
    assert emr.describe_cluster(ClusterId=cluster)["Cluster"]["Status"]["State"] == "WAITING"


RELEASE_JOB = textwrap.dedent("""
    import sys
    from pyspark.sql import SparkSession
    spark = SparkSession.builder.appName("release-defaults").getOrCreate()
    rows = spark.read.option("header", True).csv(sys.argv[1])
    # Spark 3.5 (EMR 7.x) answers NULL for an invalid cast; Spark 4 with ANSI mode on would fail.
    rows.selectExpr("k", "CAST(v AS INT) AS v").write.mode("overwrite").json(sys.argv[2])
    spark.stop()
""")


def test_step_reads_and_writes_s3_through_s3a_with_its_release_defaults(emr, s3, cluster, stack):
    """s3:// is read by Spark itself (metered under the step's key), and EMR 7's Spark 3.5 SQL defaults hold."""
    csv = b"k,v\n0,1\n1,x\n"
    s3.put_object(Bucket="emrtest-code", Key="release.py", Body=RELEASE_JOB.encode())
    s3.put_object(Bucket="emrtest-out", Key="in/values.csv", Body=csv)
    step = emr.add_job_flow_steps(JobFlowId=cluster, Steps=[spark_step(
        "release defaults", "s3://emrtest-code/release.py", "s3://emrtest-out/in/", "s3://emrtest-out/release/")]
    )["StepIds"][0]
    assert wait_for_step(emr, cluster, step, progress=False) == "COMPLETED"
    assert read_json_parts(s3, "emrtest-out", "release/") == [{"k": "0", "v": 1}, {"k": "1"}]   # v NULL
    details = stack.local.emr.step_details(step)
    assert details["s3_objects_read"] == ["s3://emrtest-code/release.py", "s3://emrtest-out/in/values.csv"]
    assert details["s3_bytes_read"] >= len(RELEASE_JOB.encode()) + len(csv)


def test_missing_script_fails_the_step(emr, cluster):
    step = emr.add_job_flow_steps(JobFlowId=cluster, Steps=[
        spark_step("missing", "s3://emrtest-code/no-such-script.py")])["StepIds"][0]
    assert wait_for_step(emr, cluster, step, progress=False) == "FAILED"
    reason = emr.describe_step(ClusterId=cluster, StepId=step)["Step"]["Status"]["FailureDetails"]["Reason"]
    assert "FileNotFoundException" in reason and "no-such-script.py" in reason


def driver_pids(stack, step_id: str) -> set[int]:
    """The step's driver processes: spark-submit runs in the step's own folder, named by its id."""
    found = set()
    for pid in stack.processes.pids():
        try:
            if step_id in os.readlink(f"/proc/{pid}/cwd"):
                found.add(pid)
        except OSError:
            pass
    return found


def test_cancel_steps_kills_the_running_driver_and_the_pending_step(emr, cluster, stack):
    running, pending = emr.add_job_flow_steps(JobFlowId=cluster, Steps=[
        spark_step("to cancel", "s3://emrtest-code/hash.py", "s3://emrtest-out/cancelled/"),
        spark_step("never starts", "s3://emrtest-code/hash.py", "s3://emrtest-out/never-started/")])["StepIds"]
    deadline = time.monotonic() + 120
    while not (drivers := driver_pids(stack, running)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert drivers, "the running step's driver never started"
    assert emr.describe_step(ClusterId=cluster, StepId=running)["Step"]["Status"]["State"] == "RUNNING"
    answer = emr.cancel_steps(ClusterId=cluster, StepIds=[running, pending])["CancelStepsInfoList"]
    assert [a["Status"] for a in answer] == ["SUBMITTED", "SUBMITTED"]
    assert wait_for_step(emr, cluster, running, progress=False) == "CANCELLED"
    assert emr.describe_step(ClusterId=cluster, StepId=pending)["Step"]["Status"]["State"] == "CANCELLED"
    assert all(not Path(f"/proc/{pid}").exists() or _zombie(pid) for pid in drivers)
    assert emr.describe_cluster(ClusterId=cluster)["Cluster"]["Status"]["State"] == "WAITING"


def test_resize_task_group_adds_and_removes_workers(emr, cluster, stack):
    task = group_id(emr, cluster, "TASK")
    run = stack.local.emr.run(cluster)

    def task_nodes_running():
        return [n for n in run.nodes.values() if n.role == "TASK" and n.state == "RUNNING"]
    start = len(task_nodes_running())          # whatever earlier tests left running
    before = set(stack.local.emr.pids(cluster))
    emr.modify_instance_groups(ClusterId=cluster, InstanceGroups=[{"InstanceGroupId": task,
                                                                   "InstanceCount": start + 2}])
    assert run.spark.wait(lambda: len(task_nodes_running()) == start + 2, 120)
    added = set(stack.local.emr.pids(cluster)) - before
    assert len(added) == 2      # two new worker JVMs
    emr.modify_instance_groups(ClusterId=cluster, InstanceGroups=[{"InstanceGroupId": task, "InstanceCount": 1}])
    running = [i for i in emr.list_instances(ClusterId=cluster, InstanceGroupId=task)["Instances"]
               if i["Status"]["State"] == "RUNNING"]
    assert len(running) == 1
    assert all(not Path(f"/proc/{pid}").exists() or _zombie(pid) for pid in before | added
               if pid not in stack.local.emr.pids(cluster))


def test_list_instances_answers_for_a_record_without_a_process(emr, cluster, stack):
    """An instance record no local process stands behind gets moto's own status, not an error."""
    run = stack.local.emr.run(cluster)
    group = next(g for g in run.cluster.instance_groups if g.role == "TASK")
    before = {i.id for i in run.cluster.ec2_instances}
    run.backend.run_instances(cluster, {"instance_count": 1, "instance_type": group.instance_type}, group)
    record = next(i for i in run.cluster.ec2_instances if i.id not in before)
    try:
        listed = {i["Id"]: i for i in emr.list_instances(ClusterId=cluster)["Instances"]}
        assert listed[record.id]["Status"]["State"] == group.state       # moto's answer: its group's state
        assert all(listed[n.instance_id]["Status"]["State"] == n.state for n in run.nodes.values())
    finally:
        run.cluster.ec2_instances.remove(record)


def test_cluster_mode_driver_on_a_spot_node_fails_the_step(emr, cluster, stack):
    """EMR 6.x/7.x: node labels off, so a cluster-mode driver (the YARN AM) may sit on a Spot task node."""
    task = group_id(emr, cluster, "TASK")
    step = emr.add_job_flow_steps(JobFlowId=cluster, Steps=[{
        "Name": "cluster mode", "ActionOnFailure": "CONTINUE",
        "HadoopJarStep": {"Jar": "command-runner.jar", "Args": ["spark-submit", "--deploy-mode", "cluster",
                                                                "s3://emrtest-code/hash.py", "s3://emrtest-out/am/"]}}]
    )["StepIds"][0]
    assert stack.local.emr.wait_for_tasks(step, done=1)
    driver = stack.local.emr.step_details(step)["driver"]
    assert (driver["deploy_mode"], driver["role"], driver["market"]) == ("cluster", "TASK", "SPOT")
    stack.local.emr.interrupt_spot(cluster, task, driver["instance_id"])
    assert wait_for_step(emr, cluster, step, progress=False) == "FAILED"
    failure = emr.describe_step(ClusterId=cluster, StepId=step)["Step"]["Status"]["FailureDetails"]
    assert driver["instance_id"] in failure["Reason"] and "driver was lost" in failure["Reason"]
    assert stack.local.emr.step_details(step)["node_losses"][0]["driver_on_node"] is True
    assert emr.describe_cluster(ClusterId=cluster)["Cluster"]["Status"]["State"] == "WAITING"   # CONTINUE


def test_node_label_expression_from_yarn_site():
    from localaws.emr import placement
    yarn = [{"Classification": "yarn-site", "Properties": {
        "yarn.node-labels.enabled": "true", "yarn.node-labels.am.default-node-label-expression": "ON_DEMAND"}}]
    assert placement.am_label(None) is None                                   # EMR 6.x/7.x default: off
    assert placement.am_label(yarn) == "ON_DEMAND"
    assert placement.am_label([{**yarn[0], "Properties": {"yarn.node-labels.enabled": "false"}}]) is None
    with pytest.raises(Exception, match="not"):
        placement.am_label([{"Classification": "yarn-site", "Properties": {
            "yarn.node-labels.enabled": "true", "yarn.node-labels.am.default-node-label-expression": "GPU"}}])


def test_money_is_formatted_as_money():
    from localaws.emr import cost
    assert [cost.usd(x) for x in (12.4, 0.0144, 0.0000477, 0)] == ["$12.40", "$0.014", "$0.000048", "$0.00"]


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except OSError:
        return True


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_terminate_ends_every_process_and_port(emr, cluster, stack):
    pids = stack.local.emr.pids(cluster)
    ports = stack.local.emr.ports(cluster)
    assert pids and any(_port_open(p) for p in ports)
    emr.terminate_job_flows(JobFlowIds=[cluster])
    emr.get_waiter("cluster_terminated").wait(ClusterId=cluster, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    status = emr.describe_cluster(ClusterId=cluster)["Cluster"]["Status"]
    assert status["StateChangeReason"]["Code"] == "USER_REQUEST"
    assert all(not Path(f"/proc/{pid}").exists() or _zombie(pid) for pid in pids)
    assert not any(_port_open(p) for p in ports)
    assert all(i["Status"]["State"] == "TERMINATED" for i in emr.list_instances(ClusterId=cluster)["Instances"])
    with pytest.raises(ClientError) as err:          # AddJobFlowSteps on a terminated cluster
        emr.add_job_flow_steps(JobFlowId=cluster, Steps=[spark_step("late", "s3://emrtest-code/hash.py")])
    assert code(err.value) == "ValidationException"


def test_transient_cluster_terminates_with_errors_on_step_failure(emr, s3, stack):
    cid = emr.run_job_flow(
        Name="transient", ReleaseLabel="emr-7.13.0",
        Instances={"InstanceGroups": groups(core=1, task=0), "KeepJobFlowAliveWhenNoSteps": False},
        Steps=[spark_step("fails", "s3://emrtest-code/raises.py", action="TERMINATE_CLUSTER"),
               spark_step("never runs", "s3://emrtest-code/hash.py", "s3://emrtest-out/never/")],
        JobFlowRole="EMR_EC2_DefaultRole", ServiceRole="EMR_DefaultRole")["JobFlowId"]
    deadline = time.monotonic() + 180
    while emr.describe_cluster(ClusterId=cid)["Cluster"]["Status"]["State"] != "TERMINATED_WITH_ERRORS":
        assert time.monotonic() < deadline
        time.sleep(0.5)
    status = emr.describe_cluster(ClusterId=cid)["Cluster"]["Status"]
    assert status["StateChangeReason"]["Code"] == "STEP_FAILURE"
    states = {s["Name"]: s["Status"]["State"] for s in emr.list_steps(ClusterId=cid)["Steps"]}
    assert states == {"fails": "FAILED", "never runs": "CANCELLED"}
    assert stack.local.emr.pids(cid) == []


def test_transient_cluster_goes_from_running_to_terminating_with_its_driver_on_demand(emr, s3, stack):
    """No WAITING after the last step of a transient cluster; ON_DEMAND node labels keep the AM off Spot."""
    cid = emr.run_job_flow(
        Name="transient-ok", ReleaseLabel="emr-7.13.0",
        Instances={"InstanceGroups": groups(core=1, task=1), "KeepJobFlowAliveWhenNoSteps": False},
        Configurations=[{"Classification": "yarn-site", "Properties": {
            "yarn.node-labels.enabled": "true", "yarn.node-labels.am.default-node-label-expression": "ON_DEMAND"}}],
        Steps=[{"Name": "ok", "ActionOnFailure": "TERMINATE_CLUSTER",
                "HadoopJarStep": {"Jar": "command-runner.jar", "Args": [
                    "spark-submit", "--deploy-mode", "cluster", "s3://emrtest-code/hash.py", "s3://emrtest-out/t/"]}}],
        JobFlowRole="EMR_EC2_DefaultRole", ServiceRole="EMR_DefaultRole")["JobFlowId"]
    emr.get_waiter("cluster_terminated").wait(ClusterId=cid, WaiterConfig={"Delay": 1, "MaxAttempts": 300})
    assert [s for _, s in stack.local.emr.history(cid)] == ["STARTING", "BOOTSTRAPPING", "RUNNING",
                                                           "TERMINATING", "TERMINATED"]
    assert emr.describe_cluster(ClusterId=cid)["Cluster"]["Status"]["StateChangeReason"]["Code"] == "ALL_STEPS_COMPLETED"
    step = emr.list_steps(ClusterId=cid)["Steps"][0]
    assert step["Status"]["State"] == "COMPLETED"
    driver = stack.local.emr.step_details(step["Id"])["driver"]
    assert (driver["role"], driver["market"]) == ("CORE", "ON_DEMAND")      # not the Spot task node


def test_losing_the_primary_node_ends_the_cluster(emr, stack):
    cid = emr.run_job_flow(Name="single-node", ReleaseLabel="emr-7.13.0",
                           Instances={"InstanceGroups": groups(core=0, task=0)[:1], "KeepJobFlowAliveWhenNoSteps": True},
                           JobFlowRole="EMR_EC2_DefaultRole", ServiceRole="EMR_DefaultRole")["JobFlowId"]
    assert wait_for_cluster(emr, cid, progress=False) == "WAITING"
    stack.local.emr.fail_instance(cid, group_id(emr, cid, "MASTER"))
    deadline = time.monotonic() + 60
    while (status := emr.describe_cluster(ClusterId=cid)["Cluster"]["Status"])["State"] != "TERMINATED_WITH_ERRORS":
        assert time.monotonic() < deadline, status
        time.sleep(0.2)
    assert status["StateChangeReason"]["Code"] == "INSTANCE_FAILURE"
    assert stack.local.emr.pids(cid) == []
    [primary] = emr.list_instances(ClusterId=cid)["Instances"]
    assert primary["Status"]["StateChangeReason"]["Code"] == "INSTANCE_FAILURE"


def test_stack_stop_leaves_no_jvm_and_no_port(tmp_path):
    """A separate process starts a stack and a cluster, stops the stack, reports what it started."""
    probe = textwrap.dedent("""
        import json, localaws
        from localaws.emr import wait_for_cluster
        stack = localaws.start()
        emr = stack.client("emr")
        cid = emr.run_job_flow(Name="stop-test", Instances={"KeepJobFlowAliveWhenNoSteps": True,
            "InstanceGroups": [{"InstanceRole": "MASTER", "InstanceType": "m5.xlarge", "InstanceCount": 1},
                               {"InstanceRole": "CORE", "InstanceType": "m5.xlarge", "InstanceCount": 1}]},
            JobFlowRole="r", ServiceRole="r")["JobFlowId"]
        state = wait_for_cluster(emr, cid, progress=False)
        pids, ports = stack.local.emr.pids(cid), stack.local.emr.ports(cid)
        stack.stop()
        print(json.dumps({"state": state, "pids": pids, "ports": ports}))
    """)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=240)
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["state"] == "WAITING" and len(report["pids"]) == 2
    assert all(not Path(f"/proc/{pid}").exists() or _zombie(pid) for pid in report["pids"])
    assert not any(_port_open(p) for p in report["ports"])


# ------------------------------------------------------------------ bad inputs

def run_job_flow(emr, **overrides):
    request = {"Name": "bad", "ReleaseLabel": "emr-7.13.0", "JobFlowRole": "r", "ServiceRole": "r",
               "Instances": {"InstanceGroups": groups(), "KeepJobFlowAliveWhenNoSteps": True}}
    request.update(overrides)
    return emr.run_job_flow(**request)


BAD_RUN_JOB_FLOW = {
    "no MASTER group": ({"Instances": {"InstanceGroups": groups()[1:]}}, "ValidationException", "MASTER"),
    "two MASTER groups": ({"Instances": {"InstanceGroups": groups()[:1] * 2 + groups()[1:]}},
                          "ValidationException", "MASTER"),
    "unknown instance type": ({"Instances": {"InstanceGroups": groups(itype="m5.huge")}},
                              "ValidationException", "m5.huge"),
    "negative instance count": ({"Instances": {"InstanceGroups": groups(core=-1)}}, "ValidationException", "-1"),
    "TASK group without CORE": ({"Instances": {"InstanceGroups": [groups()[0], groups()[2]]}},
                                "ValidationException", "CORE"),
    "bad bid price": ({"Instances": {"InstanceGroups": groups()[:2] + [{**groups()[2], "BidPrice": "-1"}]}},
                      "ValidationException", "bid price"),
    "invalid ActionOnFailure": ({"Steps": [spark_step("x", "s3://b/x.py", action="EXPLODE")]},
                                "ValidationException", "EXPLODE"),
    "custom JAR step": ({"Steps": [{"Name": "jar", "HadoopJarStep": {"Jar": "s3://b/app.jar"}}]},
                        "NotImplemented", "command-runner.jar"),
    "more nodes than this machine runs": ({"Instances": {"InstanceGroups": groups(core=6, task=6)}},
                                          "ValidationException", "at most"),
    "managed scaling min above max": ({"ManagedScalingPolicy": {"ComputeLimits": {
        "UnitType": "Instances", "MinimumCapacityUnits": 5, "MaximumCapacityUnits": 2}}},
        "ValidationException", "MinimumCapacityUnits"),
    "unknown release label": ({"ReleaseLabel": "emr-99.0.0"}, "ValidationException", "emr-99.0.0"),
    "EMR 5.x release": ({"ReleaseLabel": "emr-5.36.2"}, "NotImplemented", "emr-5.36.2"),
}


@pytest.mark.parametrize("case", list(BAD_RUN_JOB_FLOW), ids=list(BAD_RUN_JOB_FLOW))
def test_run_job_flow_refuses(emr, stack, case):
    overrides, expected, words = BAD_RUN_JOB_FLOW[case]
    before = len(emr.list_clusters()["Clusters"])
    with pytest.raises(ClientError) as err:
        run_job_flow(emr, **overrides)
    assert code(err.value) == expected and words in err.value.response["Error"]["Message"]
    assert len(emr.list_clusters()["Clusters"]) == before      # nothing recorded, nothing started


def test_run_job_flow_without_java_records_no_cluster(emr, stack, monkeypatch):
    """No Java for Spark on this machine: an error that says so, and no phantom cluster left behind."""
    import localaws.core.java
    monkeypatch.setattr(localaws.core.java, "java_home", lambda: None)
    before = len(emr.list_clusters()["Clusters"])
    with pytest.raises(ClientError) as err:
        run_job_flow(emr)
    assert code(err.value) == "NotImplemented" and "Java" in err.value.response["Error"]["Message"]
    assert len(emr.list_clusters()["Clusters"]) == before


def test_operations_on_unknown_or_bad_targets(emr, stack):
    with pytest.raises(ClientError) as err:
        emr.add_job_flow_steps(JobFlowId="j-NOSUCHCLUSTER", Steps=[spark_step("x", "s3://b/x.py")])
    assert code(err.value) == "InvalidRequestException"
    with pytest.raises(ClientError) as err:
        emr.modify_instance_groups(InstanceGroups=[{"InstanceGroupId": "ig-NOSUCH", "InstanceCount": 1}])
    assert code(err.value) == "InvalidRequestException"
    with pytest.raises(ClientError) as err:
        emr.put_managed_scaling_policy(ClusterId="j-NOSUCHCLUSTER", ManagedScalingPolicy={"ComputeLimits": {
            "UnitType": "Instances", "MinimumCapacityUnits": 1, "MaximumCapacityUnits": 2}})
    assert code(err.value) == "InvalidRequestException"


def test_resize_below_zero_and_bad_step_on_a_live_cluster(emr, stack):
    cid = run_job_flow(emr, Instances={"InstanceGroups": groups(core=1, task=1),
                                       "KeepJobFlowAliveWhenNoSteps": True})["JobFlowId"]
    try:
        task = group_id(emr, cid, "TASK")
        with pytest.raises(ClientError) as err:
            emr.modify_instance_groups(InstanceGroups=[{"InstanceGroupId": task, "InstanceCount": -1}])
        assert code(err.value) == "ValidationException"
        with pytest.raises(ClientError) as err:
            emr.modify_instance_groups(InstanceGroups=[{"InstanceGroupId": group_id(emr, cid, "MASTER"),
                                                        "InstanceCount": 2}])
        assert code(err.value) == "ValidationException"
        with pytest.raises(ClientError) as err:
            emr.add_job_flow_steps(JobFlowId=cid, Steps=[spark_step("x", "s3://b/x.py", action="SOMETIMES")])
        assert code(err.value) == "ValidationException"
        assert emr.list_steps(ClusterId=cid)["Steps"] == []
        emr.put_managed_scaling_policy(ClusterId=cid, ManagedScalingPolicy={"ComputeLimits": {
            "UnitType": "Instances", "MinimumCapacityUnits": 2, "MaximumCapacityUnits": 3}})
        got = emr.get_managed_scaling_policy(ClusterId=cid)["ManagedScalingPolicy"]["ComputeLimits"]
        assert got["MaximumCapacityUnits"] == 3
        emr.remove_managed_scaling_policy(ClusterId=cid)
        assert "ManagedScalingPolicy" not in emr.get_managed_scaling_policy(ClusterId=cid)
        with pytest.raises(ValueError, match="ON_DEMAND"):      # the teaching hook refuses on-demand groups
            stack.local.emr.interrupt_spot(cid, group_id(emr, cid, "CORE"))
    finally:
        emr.terminate_job_flows(JobFlowIds=[cid])


def test_instance_fleets_start_workers_per_market(emr, stack):
    fleet = lambda role, od, spot: {"Name": role.lower(), "InstanceFleetType": role,
                                    "TargetOnDemandCapacity": od, "TargetSpotCapacity": spot,
                                    "InstanceTypeConfigs": [{"InstanceType": "m5.xlarge", "WeightedCapacity": 1},
                                                            {"InstanceType": "m5.2xlarge", "WeightedCapacity": 2}]}
    cid = emr.run_job_flow(Name="fleets", ReleaseLabel="emr-7.13.0", JobFlowRole="r", ServiceRole="r",
                           Instances={"KeepJobFlowAliveWhenNoSteps": True, "InstanceFleets": [
                               fleet("MASTER", 1, 0), fleet("CORE", 1, 0), fleet("TASK", 0, 1)]})["JobFlowId"]
    try:
        assert wait_for_cluster(emr, cid, progress=False) == "WAITING"
        fleets = {f["InstanceFleetType"]: f for f in emr.list_instance_fleets(ClusterId=cid)["InstanceFleets"]}
        assert fleets["TASK"]["ProvisionedSpotCapacity"] == 1 and fleets["CORE"]["ProvisionedOnDemandCapacity"] == 1
        assert all(f["Status"]["State"] == "RUNNING" for f in fleets.values())
        instances = emr.list_instances(ClusterId=cid)["Instances"]
        assert sorted(i["Market"] for i in instances) == ["ON_DEMAND", "ON_DEMAND", "SPOT"]
        assert {i["InstanceFleetId"] for i in instances} == {f["Id"] for f in fleets.values()}
        assert len(stack.local.emr.pids(cid)) == 3
        with pytest.raises(ClientError) as err:
            run_job_flow(emr, Instances={"InstanceFleets": [fleet("MASTER", 2, 0), fleet("CORE", 1, 0)]})
        assert code(err.value) == "ValidationException"
    finally:
        emr.terminate_job_flows(JobFlowIds=[cid])
