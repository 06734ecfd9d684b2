"""What EMR refuses, checked before anything is recorded or started.

EMR validates a request as a whole before it creates anything: a RunJobFlow
with two MASTER groups, an unknown instance type or release label, or a
step with an invalid ``ActionOnFailure`` gets a ``ValidationException`` and
no cluster exists afterwards (ListClusters does not show it, nothing is
billed). The stand-in does the same: the plane's ``@operation("RunJobFlow")``
calls :func:`run_job_flow` before moto records the cluster.

A few limits are this machine's, not EMR's (at most :data:`MAX_WORKERS`
CORE+TASK instances, a Java for Spark); their messages say so.
"""
from __future__ import annotations

from . import errors, instances, placement, releases, steps
from .fleets import fleet_groups

ACTIONS = ("TERMINATE_JOB_FLOW", "TERMINATE_CLUSTER", "CANCEL_AND_WAIT", "CONTINUE")
ROLES = ("MASTER", "CORE", "TASK")
FINISHED = ("TERMINATING", "TERMINATED", "TERMINATED_WITH_ERRORS")   # no more changes to the cluster
MAX_WORKERS = 8          # a guard for this machine, not an EMR limit


def run_job_flow(params: dict) -> releases.Release:
    """Refuse what EMR refuses (and what this machine cannot run); return the cluster's release."""
    release = releases.check(params.get("ReleaseLabel"))
    groups = requested_groups(params.get("Instances") or {})
    roles = [g.get("InstanceRole") for g in groups]
    if roles.count("MASTER") != 1:
        raise errors.ValidationException("Exactly one MASTER instance group must be specified."
                                         if roles.count("MASTER") == 0 else
                                         "Only one MASTER instance group can be specified.")
    if roles.count("CORE") > 1:
        raise errors.ValidationException("Only one CORE instance group can be specified.")
    for g in groups:
        instance_group(g)
        if g["InstanceRole"] == "TASK" and "CORE" not in roles:
            raise errors.ValidationException("A TASK instance group requires a CORE instance group.")
    workers = sum(g.get("InstanceCount", 0) for g in groups if g["InstanceRole"] != "MASTER")
    if workers > MAX_WORKERS:
        raise errors.ValidationException(
            f"This local stand-in runs at most {MAX_WORKERS} CORE+TASK instances (one Spark worker "
            f"process each) on this machine; {workers} were requested.")
    for s in params.get("Steps") or []:
        step(s)
    if params.get("ManagedScalingPolicy"):
        scaling_policy(params["ManagedScalingPolicy"])
    placement.am_label(params.get("Configurations"))      # yarn-site node labels this stand-in honours
    java_home()
    return release


def requested_groups(inst: dict) -> list[dict]:
    """The instance groups a RunJobFlow ``Instances`` asks for (fleets become groups)."""
    if inst.get("InstanceFleets") and inst.get("InstanceGroups"):
        raise errors.ValidationException("Specify either InstanceGroups or InstanceFleets, not both.")
    groups = inst.get("InstanceGroups") or fleet_groups(inst.get("InstanceFleets") or [])
    if groups:
        return groups
    if inst.get("MasterInstanceType"):
        return [{"InstanceRole": "MASTER", "InstanceType": inst["MasterInstanceType"], "InstanceCount": 1}]
    raise errors.ValidationException("Instance group configuration is required: specify Instances.InstanceGroups "
                                     "with a MASTER group (this stand-in does not accept InstanceCount alone).")


def instance_group(g: dict) -> None:
    """One instance group: its role, type, market, count and Spot bid price."""
    role = g.get("InstanceRole")
    if role not in ROLES:
        raise errors.ValidationException(f"Invalid InstanceRole: {role!r}; valid roles are MASTER, CORE and TASK.")
    if instances.lookup(g.get("InstanceType", "")) is None:
        raise errors.ValidationException(f"The instance type '{g.get('InstanceType')}' is not supported by Amazon EMR.")
    if g.get("Market", "ON_DEMAND") not in ("ON_DEMAND", "SPOT"):
        raise errors.ValidationException(f"Invalid Market: {g.get('Market')!r}; use ON_DEMAND or SPOT.")
    count = g.get("InstanceCount")
    if count is None or int(count) < 0:
        raise errors.ValidationException(f"InstanceCount must be 0 or more for the {role} instance group; got {count}.")
    if role == "MASTER" and count not in (1, 3):
        raise errors.ValidationException("The MASTER instance group must have 1 instance (or 3 for high availability).")
    if role == "MASTER" and count == 3:
        raise errors.not_emulated("emr", "RunJobFlow", "high availability (3 primary nodes: the cluster survives "
                                  "the loss of one)")
    if g.get("BidPrice") is not None:
        try:
            if float(g["BidPrice"]) <= 0:
                raise ValueError
        except ValueError:
            raise errors.ValidationException(f"The bid price is invalid: {g['BidPrice']!r}.") from None


def step(s: dict) -> None:
    """One step in EMR's spelling: a valid ActionOnFailure, and a step that runs locally."""
    action = s.get("ActionOnFailure", "TERMINATE_CLUSTER")
    if action not in ACTIONS:
        raise errors.ValidationException(
            f"1 validation error detected: Value '{action}' at 'steps.1.member.actionOnFailure' "
            f"failed to satisfy constraint: Member must satisfy enum value set: {list(ACTIONS)}")
    jar = (s.get("HadoopJarStep") or {}).get("Jar", "")
    args = (s.get("HadoopJarStep") or {}).get("Args") or []
    if jar not in steps.COMMAND_RUNNER:
        raise errors.unsupported_step(f"custom JAR {jar!r}: only command-runner.jar steps run locally")
    if not args or args[0] != "spark-submit":
        raise errors.unsupported_step(f"command-runner.jar {args[:1]}: only 'spark-submit' runs locally")


def step_from_moto(record) -> dict:
    """moto hands steps over with snake_case keys; :func:`step` reads EMR's names."""
    def get(d, *names, default=None):
        for n in names:
            if hasattr(d, "get") and d.get(n) is not None:
                return d.get(n)
        return default
    jar_step = get(record, "hadoop_jar_step", "HadoopJarStep", default={}) or {}
    return {"ActionOnFailure": get(record, "action_on_failure", "ActionOnFailure", default="TERMINATE_CLUSTER"),
            "HadoopJarStep": {"Jar": get(jar_step, "jar", "Jar", default=""),
                              "Args": list(get(jar_step, "args", "Args", default=[]) or [])}}


def scaling_policy(policy: dict) -> dict:
    """A managed scaling policy's ComputeLimits, as PutManagedScalingPolicy checks them."""
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


def resize(group, count: int, run=None) -> None:
    """ModifyInstanceGroups asking ``group`` for ``count`` instances.

    ``run``: the ``engine.ClusterRun`` when the stand-in runs the group's
    cluster; its live instances then bound what this machine can add.
    """
    if count < 0:
        raise errors.ValidationException(f"An instance group's instance count must be 0 or more; got {count}.")
    if group.role == "MASTER":
        raise errors.ValidationException("The MASTER instance group cannot be resized.")
    if run is None:
        return
    if run.cluster.state in FINISHED:
        raise errors.cluster_finished(run.id, run.cluster.state)
    elsewhere = sum(len(run.live(g)) for g in run.cluster.instance_groups if g.role != "MASTER" and g.id != group.id)
    if elsewhere + count > MAX_WORKERS:
        raise errors.ValidationException(f"This local stand-in runs at most {MAX_WORKERS} CORE+TASK instances.")
    if group.role == "CORE" and count < len(run.live(group)):
        raise errors.ValidationException("Shrinking the CORE instance group is not supported by this stand-in "
                                         "(its nodes hold the cluster's HDFS data); resize a TASK group instead.")


def java_home() -> str:
    """The Java that Spark runs on; without one no cluster can start here (an error, not a phantom cluster)."""
    from localaws.core.java import require_java_home
    try:
        return require_java_home()
    except RuntimeError as exc:
        raise errors.no_java(str(exc)) from None
