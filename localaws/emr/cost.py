"""What an EMR cluster costs: per instance, per second, with a 1-minute minimum.

Every EMR node is billed twice, from the time it is requested until it
ends: the **EC2 instance** (on-demand price, the Spot price in effect, or
the effective hourly rate of a Reserved Instance) and the **EMR price** of
its instance type. Both are per second with a one-minute minimum per
instance. Prices: ``localaws/pricing.py`` (dated, with sources).

Reserved capacity is not a market: a cluster asks for ON_DEMAND
instances, and a **Reserved Instance** (or a Savings Plan), bought for 1 or
3 years, is a *billing discount* applied to matching On-Demand EC2 usage.
Only the EC2 part is discounted; the EMR price stays. You pay the
reservation for every hour of its term whether a cluster uses it or not:
that suits a long-running cluster's master and core nodes, not a transient
cluster that lives an hour a day.
"""
from __future__ import annotations

import math

from localaws.pricing import price

HOURS_PER_DAY = 24


def ec2_rate(instance_type: str, market: str = "ON_DEMAND", reserved: bool = False) -> float:
    """Dollars per hour for the EC2 part of one node."""
    if reserved:
        return price(f"emr.ec2.reserved_1y.{instance_type}").usd
    if market == "SPOT":
        return price(f"emr.ec2.spot.{instance_type}").usd
    return price(f"emr.ec2.on_demand.{instance_type}").usd


def node_rate(instance_type: str, market: str = "ON_DEMAND", reserved: bool = False) -> float:
    """Dollars per hour for one node: EC2 + the EMR price."""
    return ec2_rate(instance_type, market, reserved) + price(f"emr.emr.{instance_type}").usd


def usd(amount: float) -> str:
    """Money as money: cents for dollars, two significant digits below a cent.

    >>> usd(12.4), usd(0.01440), usd(0.0000477)
    ('$12.40', '$0.014', '$0.000048')
    """
    if amount >= 1 or amount == 0:
        return f"${amount:,.2f}"
    digits = max(2, 1 - math.floor(math.log10(abs(amount))))
    return f"${amount:.{digits}f}"


def billed_seconds(seconds: float) -> int:
    """Per-second billing, rounded up, with a 60-second minimum."""
    return max(60, math.ceil(seconds))


def node_cost(instance_type: str, seconds: float, market: str = "ON_DEMAND") -> float:
    """Dollars for one on-demand or Spot node that ran ``seconds``."""
    return node_rate(instance_type, market) * billed_seconds(seconds) / 3600


def cluster_cost(usage: list[dict]) -> float:
    """Dollars for a cluster from its per-instance usage (``stack.local.emr.usage(cluster_id)``)."""
    return sum(node_cost(u["instance_type"], u["seconds"], u["market"]) for u in usage)


def long_running_daily(groups: list[dict], busy_hours: float, reserved: bool = True) -> float:
    """A cluster that never stops: master/core all day, task nodes only while busy.

    ``groups``: dicts with ``role``, ``instance_type``, ``count``, ``market``.
    Master and core nodes run 24 h a day, at the reserved EC2 rate
    (``reserved=True``) or the on-demand one, plus the EMR price (never
    discounted); task nodes run ``busy_hours`` (added and removed by scaling).
    """
    total = 0.0
    for g in groups:
        if g["role"] in ("MASTER", "CORE"):
            total += g["count"] * node_rate(g["instance_type"], reserved=reserved) * HOURS_PER_DAY
        else:
            total += g["count"] * node_rate(g["instance_type"], g.get("market", "ON_DEMAND")) * busy_hours
    return total


def transient_daily(groups: list[dict], jobs_per_day: int, hours_per_job: float) -> float:
    """A cluster started per job and terminated after it (KeepJobFlowAliveWhenNoSteps=False)."""
    per_job = sum(g["count"] * node_rate(g["instance_type"], g.get("market", "ON_DEMAND"))
                  * billed_seconds(hours_per_job * 3600) / 3600 for g in groups)
    return jobs_per_day * per_job
