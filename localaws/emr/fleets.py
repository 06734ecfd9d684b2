"""Instance fleets: capacity targets instead of fixed instance counts.

With **instance groups** you ask EMR for "2 m5.xlarge core nodes". With
**instance fleets** you ask for *capacity*: "4 units of core capacity, On-
Demand, from m5.xlarge (weight 1) or m5.2xlarge (weight 2)", and EMR picks
instance types and markets (On-Demand and Spot targets per fleet) by its
allocation strategy. ListInstanceFleets then reports the target and the
capacity provisioned per market.

Here each fleet's **first** instance type fills both its On-Demand and its
Spot target: ceil(target / WeightedCapacity) instances per market. Each
market becomes one instance group behind the fleet (so ListInstanceGroups
shows them too, unlike EMR); the workers are started like any group's.
"""
from __future__ import annotations

import math

from . import errors


def fleet_groups(fleets: list[dict], split: bool = False):
    """Instance groups equivalent to ``fleets`` (per fleet: an On-Demand and a Spot part).

    With ``split``, one list of groups per fleet. Raises EMR's errors for
    what EMR refuses (and for what the stand-in does not emulate).
    """
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


def make_fleets(backend, cluster, fleets: list[dict]) -> list[dict]:
    """Record the fleets' groups and instances in moto; return the fleets (id, name, spec, group ids)."""
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


def describe(run) -> list[dict]:
    """ListInstanceFleets' answer for a cluster run: targets, and capacity really RUNNING per market."""
    out = []
    for fleet in run.fleets:
        nodes = [n for n in run.nodes.values() if n.group_id in fleet["group_ids"]]
        spec = fleet["spec"]
        if run.cluster.state in ("TERMINATED", "TERMINATED_WITH_ERRORS"):
            state = "TERMINATED"
        elif nodes and all(n.state == "RUNNING" for n in nodes if n.state != "TERMINATED"):
            state = "RUNNING"
        else:
            state = "PROVISIONING"

        def running(market):
            return sum(1 for n in nodes if n.market == market and n.state == "RUNNING")
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
    return out
