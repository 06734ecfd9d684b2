"""Dated AWS prices, each with its source, for the cost cells of the chapters.

AWS changes prices and they differ by Region. Every number here is the
us-east-1 (N. Virginia) on-demand price unless said otherwise, with the page
it was read from and the date it was checked. The chapters print costs
computed from these and from *measured* quantities (bytes scanned, seconds a
cluster ran); they never print a hard-coded result.

To update a price: change ``usd``, ``source`` and ``checked`` together.
"""
from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Price:
    usd: float          # price in US dollars per ``unit``
    unit: str           # e.g. "TB scanned", "instance-hour"
    source: str         # URL of the page the price was read from
    checked: str        # ISO date the price was checked
    note: str = ""


# The OpenSearch Service pricing page renders its table with scripts.
_OS_NOTE = ("on-demand, us-east-1; the page renders its table with scripts and was not retrieved "
            "offline: re-check before quoting")

PRICES: dict[str, Price] = {
    # --- Athena ---------------------------------------------------------------
    "athena.sql.per_tb_scanned": Price(
        5.00, "TB scanned", "https://aws.amazon.com/athena/pricing/", "2026-11-25",
        "SQL queries: billed per byte scanned, rounded up to the nearest MB, "
        "with a 10 MB minimum per query; DDL and failed queries are not billed"),
    # --- EMR (added by the EMR chapter) --------------------------------------
    # An EMR node costs the EC2 instance (on-demand, reserved or spot) PLUS the
    # EMR price of its instance type; both per second, 1-minute minimum.
    # us-east-1, Linux. Cost functions: localaws/emr/cost.py.
    "emr.ec2.on_demand.m5.xlarge": Price(
        0.192, "instance-hour", "https://aws.amazon.com/ec2/pricing/on-demand/", "2026-11-25",
        "4 vCPU, 16 GiB; unchanged since m5's launch (2017); the page renders its table with scripts and was "
        "not retrieved offline; a third-party guide (multicloudhosting.com, 2026) quotes the same $0.192"),
    "emr.ec2.on_demand.m5.2xlarge": Price(
        0.384, "instance-hour", "https://aws.amazon.com/ec2/pricing/on-demand/", "2026-11-25",
        "8 vCPU, 32 GiB; twice m5.xlarge, as AWS prices sizes within a family; page not retrieved offline"),
    "emr.emr.m5.xlarge": Price(
        0.048, "instance-hour", "https://aws.amazon.com/emr/pricing/", "2026-11-25",
        "the EMR price on top of EC2 (EMR on EC2); page not retrieved offline: unconfirmed, re-check before quoting"),
    "emr.emr.m5.2xlarge": Price(
        0.096, "instance-hour", "https://aws.amazon.com/emr/pricing/", "2026-11-25",
        "the EMR price on top of EC2 (EMR on EC2); page not retrieved offline: unconfirmed, re-check before quoting"),
    "emr.ec2.reserved_1y.m5.xlarge": Price(
        0.121, "instance-hour", "https://aws.amazon.com/ec2/pricing/reserved-instances/pricing/", "2026-11-25",
        "effective hourly rate of a 1-year Standard Reserved Instance, No Upfront, billed for every hour of "
        "the term whether used or not; unconfirmed: a third-party guide (multicloudhosting.com) cites about "
        "$0.115 (~40 % off on-demand). The EMR price is not discounted by a reservation"),
    "emr.ec2.reserved_1y.m5.2xlarge": Price(
        0.242, "instance-hour", "https://aws.amazon.com/ec2/pricing/reserved-instances/pricing/", "2026-11-25",
        "1-year Standard RI, No Upfront, effective hourly rate; unconfirmed (twice m5.xlarge's)"),
    "emr.ec2.spot.m5.xlarge": Price(
        0.070, "instance-hour", "https://aws.amazon.com/ec2/spot/pricing/", "2026-11-25",
        "a representative Spot price: Spot prices change with supply and demand, by Availability Zone; "
        "unconfirmed (a third-party guide cites $0.04-0.06, AWS says up to 90 % off on-demand). "
        "You pay the Spot price in effect, never more than your BidPrice (max price)"),
    "emr.ec2.spot.m5.2xlarge": Price(
        0.140, "instance-hour", "https://aws.amazon.com/ec2/spot/pricing/", "2026-11-25",
        "representative Spot price, unconfirmed (twice m5.xlarge's)"),
    # --- OpenSearch (added by the OpenSearch chapter) ------------------------
    # Managed clusters: each node is billed per instance-hour, EBS per GB-month.
    "opensearch.instance.t3.small.search": Price(
        0.036, "instance-hour", "https://aws.amazon.com/opensearch-service/pricing/", "2026-11-25",
        _OS_NOTE),
    "opensearch.instance.m6g.large.search": Price(
        0.128, "instance-hour", "https://aws.amazon.com/opensearch-service/pricing/", "2026-11-25",
        _OS_NOTE),
    "opensearch.instance.r6g.large.search": Price(
        0.167, "instance-hour", "https://aws.amazon.com/opensearch-service/pricing/", "2026-11-25",
        _OS_NOTE),
    "opensearch.instance.r6g.xlarge.search": Price(
        0.335, "instance-hour", "https://aws.amazon.com/opensearch-service/pricing/", "2026-11-25",
        _OS_NOTE),
    "opensearch.ebs.gp3": Price(
        0.122, "GB-month", "https://aws.amazon.com/opensearch-service/pricing/", "2026-11-25",
        "gp3 EBS storage attached to each data node (3,000 IOPS and 125 MiB/s included); "
        + _OS_NOTE),
    "opensearch.ebs.gp2": Price(
        0.135, "GB-month", "https://aws.amazon.com/opensearch-service/pricing/", "2026-11-25",
        "previous-generation gp2 EBS storage; " + _OS_NOTE),
}

MB = 1024 ** 2
TB = 1024 ** 4


def price(name: str) -> Price:
    """The :class:`Price` called ``name`` (KeyError names the known ones)."""
    try:
        return PRICES[name]
    except KeyError:
        raise KeyError(f"no price {name!r}; known: {', '.join(sorted(PRICES))}") from None


def athena_query_cost(bytes_scanned: int) -> float:
    """Dollars Athena charges for one SQL query that scanned ``bytes_scanned``.

    Bytes are rounded up to the next megabyte and a query is billed for at
    least 10 MB, so a tiny query costs the same as a 10 MB one.
    """
    billed_mb = max(10, math.ceil(bytes_scanned / MB))
    return billed_mb * MB / TB * price("athena.sql.per_tb_scanned").usd
