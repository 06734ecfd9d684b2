"""Checks for lab 06 (``labs/06_emr``): what each step must achieve, and what to fix if not.

They live here, not in the lab's check cells, so that a check cell does not
show the answer. Each raises ``localaws.grading.LabCheckFailed`` with a
message for the learner.
"""
from __future__ import annotations

import math

from localaws.grading import check, check_equal, check_frame_equal
from . import cost

RUNNER = "command-runner.jar"


def check_sizing(groups: list[dict], hourly_cost, budget: float, min_workers: int = 3) -> None:
    """Step 1: MASTER + CORE on-demand + TASK on Spot, enough workers, a correct ``hourly_cost``, within budget."""
    roles = {g.get("InstanceRole"): g for g in groups}
    check(len(groups) == 3 and set(roles) == {"MASTER", "CORE", "TASK"},
          "expected exactly one MASTER, one CORE and one TASK group.")
    check(roles["CORE"].get("Market", "ON_DEMAND") == "ON_DEMAND", "CORE nodes store HDFS data: keep them ON_DEMAND.")
    check(roles["TASK"].get("Market") == "SPOT", "the TASK group should use Market='SPOT' (cheap, interruptible).")
    check(roles["TASK"].get("BidPrice") is not None, "a Spot group needs a BidPrice (your maximum price per hour).")
    check(roles["CORE"]["InstanceCount"] + roles["TASK"]["InstanceCount"] >= min_workers,
          f"the job needs at least {min_workers} worker cores: {min_workers} or more CORE+TASK instances.")
    expected = sum(cost.node_rate(g["InstanceType"], g.get("Market", "ON_DEMAND")) * g["InstanceCount"]
                   for g in groups)
    got = hourly_cost(groups)
    check(isinstance(got, (int, float)) and math.isclose(got, expected, rel_tol=1e-9),
          f"hourly_cost gives {got!r} for your groups. Each group costs its node rate (EC2 + EMR, at the "
          "group's Market, ON_DEMAND when absent) times its InstanceCount; add the groups up.")
    check(got <= budget, f"${got:.3f}/h is over the ${budget}/h budget: fewer or cheaper (Spot) nodes.")


def check_step_spec(step: dict, script: str, args: list[str], name: str) -> None:
    """Step 2: a command-runner.jar step running spark-submit on the script, CONTINUE on failure."""
    check(isinstance(step, dict), "ORIGIN_STEP should be one step: a dict with Name, ActionOnFailure, HadoopJarStep.")
    check_equal(step.get("Name"), name, "the step's Name")
    check_equal(step.get("ActionOnFailure"), "CONTINUE", "ActionOnFailure",
                "CONTINUE keeps the cluster when the step fails.")
    jar = step.get("HadoopJarStep") or {}
    check_equal(jar.get("Jar"), RUNNER, "HadoopJarStep.Jar")
    check_equal(list(jar.get("Args") or []), ["spark-submit", script, *args], "HadoopJarStep.Args",
                "spark-submit, then the script's S3 URI, then its two arguments (input, output).")


def check_spot_survival(emr, local_emr, cluster_id: str, step_id: str, result, expected) -> None:
    """Step 3: the step COMPLETED, a Spot TASK node was lost *while it ran*, and the answer is right.

    "While it ran" is measured, not assumed: the engine recorded the loss with
    the step RUNNING, and Spark's event log shows the executor on that node
    removed with tasks finished both before and after (mid-job).
    """
    check_equal(emr.describe_step(ClusterId=cluster_id, StepId=step_id)["Step"]["Status"]["State"],
                "COMPLETED", "the step's state")
    details = local_emr.step_details(step_id)
    spot_losses = [x for x in details["node_losses"] if x["role"] == "TASK" and x["market"] == "SPOT"]
    check(spot_losses, "no Spot TASK node was lost while this step ran: call interrupt_spot after "
                       "wait_for_tasks(step_id, done=1), before waiting for the step to end.")
    check(all(x["step_state"] == "RUNNING" for x in spot_losses),
          "the node was lost before the step started running: wait for its first task first.")
    lost = {x["instance_id"] for x in spot_losses}
    removed = [e for e in details["executors"] if e["instance_id"] in lost and e["removed_reason"]]
    check(removed and all(e["tasks_done_before"] > 0 and e["tasks_done_after"] > 0 for e in removed),
          "Spark did not lose an executor mid-job (tasks finished both before and after the loss): "
          "interrupt the node while the step is still running.")
    check_frame_equal(result.astype(expected.dtypes.to_dict()), expected,
                      "the mean departure delay per origin", sort_by=["origin"])


def check_bill(emr, cluster_id: str, usage: list[dict], total_usd: float, at_most: float) -> None:
    """Step 4: the cluster is TERMINATED and ``total_usd`` bills each instance per second, 60 s minimum."""
    check_equal(emr.describe_cluster(ClusterId=cluster_id)["Cluster"]["Status"]["State"], "TERMINATED",
                "the cluster's state", "Terminate it (terminate_job_flows) and wait for TERMINATED.")
    expected = cost.cluster_cost(usage)
    check(math.isclose(total_usd, expected, rel_tol=1e-9),
          f"total_usd={cost.usd(total_usd)}, expected about {cost.usd(expected)}: bill every instance at least "
          "60 s, else its seconds rounded up, at its own market's rate (Spot nodes at the Spot rate).")
    check(total_usd < at_most, f"{cost.usd(total_usd)} is more than {cost.usd(at_most)}: did the cluster run "
                               "much longer than the job?")
