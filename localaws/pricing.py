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
    # --- Redshift (added with automated snapshots and resize) ------------------
    # A provisioned cluster bills every compute node per hour while it exists (the leader node
    # is free), not while paused; RA3 managed storage is billed apart, per GB-month. The pricing
    # page renders its node table with scripts, so few node prices could be read offline: the
    # ones below say where each figure was read. Not found, and so left out: ra3.4xlarge,
    # ra3.16xlarge, and any reserved-node rate (see redshift_cluster_cost).
    "redshift.node.dc2.large": Price(
        0.25, "node-hour", "https://aws.amazon.com/redshift/pricing/", "2026-11-30",
        "on-demand, us-east-1: the page's own words, 'you can start small at $0.25 per hour', are the "
        "price of its smallest node, dc2.large (2 vCPU, 15 GiB); DC2 is closed to new clusters in some "
        "accounts and Regions"),
    "redshift.node.ra3.large": Price(
        0.543, "node-hour", "https://aws.amazon.com/redshift/pricing/", "2026-11-30",
        "on-demand, us-east-1, the smallest RA3 node (2 vCPU, 16 GiB); read from a transcription of the "
        "pricing page ('$0.543 per hour', found verbatim in the page on 2026-10-07 by "
        "api-evangelist/amazon-redshift, plans/amazon-redshift-plans-pricing.yml)"),
    "redshift.node.ra3.xlplus": Price(
        1.086, "node-hour", "https://aws.amazon.com/redshift/pricing/", "2026-11-30",
        "on-demand, us-east-1 (4 vCPU, 32 GiB); NOT read on an AWS page: a public third-party pricing "
        "comparison uses $1.086 ('$1.09/h each'), twice ra3.large's $0.543 as AWS prices sizes within "
        "RA3; re-check before quoting"),
    "redshift.spectrum.per_tb_scanned": Price(
        5.00, "TB scanned", "https://repost.aws/knowledge-center/redshift-spectrum-query-charges",
        "2026-11-30",
        "AWS Knowledge Center: '$5 to $6.25 per TB of data scanned ... depending on the Region', bytes "
        "rounded up to the next megabyte, 10 MB minimum per query, no charge for DDL or failed queries; "
        "$5 is the low end of that range, us-east-1's (the page's us-east-1 example was cut from the "
        "stored copy): re-check before quoting"),
    "redshift.serverless.rpu_hour": Price(
        0.375, "RPU-hour", "https://aws.amazon.com/redshift/pricing/", "2026-11-30",
        "Redshift Serverless, us-east-1 ('US East (N. Virginia)' example of the pricing page, as "
        "transcribed on 2026-10-07 by api-evangelist/amazon-redshift); billed per second of RPU capacity "
        "used while queries run, 60-second minimum, nothing while idle"),
    # --- Glue (added by the Glue chapter) -------------------------------------
    # Spark jobs (glueetl, gluestreaming) bill DPU-hours: the job's DPUs (a G.1X worker is 1 DPU,
    # G.2X 2...) x its run time, per second; Glue 2.0 and later with a 1-minute minimum per run.
    # Crawlers bill the DPUs Glue gives them (ListCrawls' DPUHour on AWS) per second, with a
    # 10-minute minimum per crawl. Cost functions: glue_job_run_cost, glue_crawl_cost below.
    "glue.spark_job.dpu_hour": Price(
        0.44, "DPU-hour", "https://aws.amazon.com/glue/pricing/", "2026-11-30",
        "Apache Spark and Spark streaming jobs, us-east-1: '$0.44 per DPU-Hour' (the page's example: a "
        "Spark job of 6 DPUs running 15 minutes costs 6 x 0.25 h x $0.44 = $0.66), billed per second; "
        "the 1-minute minimum of Glue 2.0 and later is from AWS's Glue 2.0 launch post "
        "(https://aws.amazon.com/blogs/aws/aws-glue-version-2-0-featuring-10x-faster-job-start-times-and-"
        "1-minute-minimum-billing-duration/). The page renders its tables with scripts; the figures were "
        "read from a localized copy of it and the AWS price list"),
    "glue.crawler.dpu_hour": Price(
        0.44, "DPU-hour", "https://aws.amazon.com/glue/pricing/", "2026-11-30",
        "crawlers, us-east-1: the AWS price list says '$0.44 per Data Processing Unit-Hour for AWS Glue "
        "crawler' (effective 2024-11-01); the 10-minute minimum per crawl was not found on a retrieved "
        "page: unconfirmed, re-check before quoting"),
    # --- QuickSight / Amazon Quick Sight (added by the QuickSight chapter) -------
    # QuickSight bills people, not servers: a monthly seat per author and per reader, or, for
    # readers, "reader capacity" (a pack of 30-minute sessions: anonymous embedding, occasional
    # audiences); SPICE beyond the 10 GB each author brings, per GB-month. The pricing page renders
    # its tables with scripts; the figures were read from a verbatim transcription of it (the same
    # source as redshift.node.ra3.large's). Cost function: quicksight_monthly_cost below.
    "quicksight.author.user_month": Price(
        24.0, "user-month", "https://aws.amazon.com/quick/quicksight/pricing/", "2026-11-30",
        "Author seat, Enterprise: '$24 per user/month', 10 GB of SPICE included per author; Author Pro "
        "(generative AI) $40. Transcribed verbatim from the page on 2026-10-07 by api-evangelist/amazon-quicksight "
        "(plans/amazon-quicksight-plans-pricing.yml); re-check before quoting"),
    "quicksight.reader.user_month": Price(
        3.0, "user-month", "https://aws.amazon.com/quick/quicksight/pricing/", "2026-11-30",
        "Reader seat: '$3 per user/month' (Reader Pro $20); replaced the per-session reader price with a "
        "monthly cap for new accounts in April 2024 and for existing Enterprise accounts from 2025-05-01 "
        "(AWS blog as quoted by dev.classmethod.jp/articles/quicksight-new-reader-price); same transcription"),
    "quicksight.reader_capacity.month": Price(
        250.0, "month", "https://aws.amazon.com/quick/quicksight/pricing/", "2026-11-30",
        "Reader capacity, monthly plan: '$250 per month' for 500 sessions ('A session is a 30-minute "
        "period'); annual plans from $20,000 for 50,000 sessions; same transcription"),
    "quicksight.reader_capacity.extra_session": Price(
        0.50, "session", "https://aws.amazon.com/quick/quicksight/pricing/", "2026-11-30",
        "each session beyond the 500 of the monthly reader capacity plan: '$0.50 per additional session'; "
        "same transcription"),
    "quicksight.spice.gb_month": Price(
        0.38, "GB-month", "https://aws.amazon.com/quick/quicksight/pricing/", "2026-11-30",
        "SPICE beyond the included capacity (10 GB per author), Enterprise: '$0.38' per GB/month "
        "(Standard edition: $0.25); same transcription"),
    # --- The capstone pipeline (IoT -> Kinesis -> Firehose -> S3 -> SNS -> SQS -> Lambda, Flink) ----------
    # Checked 2026-11-30. The pricing pages render their tables with scripts: the METERING RULES below
    # (5 KB, 25 KB, 64 KB units, the extra orchestration KPU) were read on retrieved pages, the
    # figures were not, unless a note says so: they are the long-standing us-east-1 list prices,
    # re-check before quoting. Free tiers are ignored everywhere (SQS and SNS: the first million
    # requests a month are free; Lambda: 1M requests and 400,000 GB-seconds a month).
    # Cost function: pipeline_daily_cost below.
    "iot.messaging.per_million": Price(
        1.00, "million messages", "https://aws.amazon.com/iot-core/pricing/", "2026-11-30",
        "first billion messages a month; messages are metered in 5 KB increments (an 8 KB PUBLISH is 2 "
        "messages: 'Metered on the size of the payload and topic in bytes', "
        "https://aws.amazon.com/iot-core/pricing/additional-details/, read); the figure: unconfirmed"),
    "iot.rules.per_million_triggered": Price(
        0.15, "million rules triggered", "https://aws.amazon.com/iot-core/pricing/", "2026-11-30",
        "rules engine: each rule a message triggers, metered per 5 KB of the message; unconfirmed figure"),
    "iot.rules.per_million_actions": Price(
        0.15, "million actions executed", "https://aws.amazon.com/iot-core/pricing/", "2026-11-30",
        "rules engine: each action a triggered rule executes (errorAction too); unconfirmed figure"),
    "kinesis.provisioned.shard_hour": Price(
        0.015, "shard-hour", "https://aws.amazon.com/kinesis/data-streams/pricing/", "2026-11-30",
        "provisioned capacity mode: each shard (1 MB/s or 1,000 records/s in) bills every hour it exists "
        "(rule read on the page's provisioned tab); figure unconfirmed"),
    "kinesis.provisioned.put_payload_units_million": Price(
        0.014, "million PUT payload units", "https://aws.amazon.com/kinesis/data-streams/pricing/",
        "2026-11-30",
        "a PUT payload unit is a 25 KB chunk of a record: 'a 5KB record contains one PUT Payload Unit, a 45KB "
        "record contains two' (read on the page); figure unconfirmed"),
    "firehose.ingest.per_gb": Price(
        0.029, "GB ingested", "https://aws.amazon.com/firehose/pricing/", "2026-11-30",
        "Direct PUT and Kinesis Data Streams sources, first 500 TB a month; each record is rounded up to the "
        "next 5 KB ('a 3 KB record is billed as 5 KB, a 12 KB record is billed as 15 KB', as quoted from the "
        "page's FAQ); figure unconfirmed"),
    "firehose.format_conversion.per_gb": Price(
        0.018, "GB converted", "https://aws.amazon.com/firehose/pricing/", "2026-11-30",
        "JSON -> Parquet/ORC conversion, per GB of input converted (5 KB record rounding); unconfirmed figure"),
    "firehose.dynamic_partitioning.per_gb": Price(
        0.020, "GB processed", "https://aws.amazon.com/firehose/pricing/", "2026-11-30",
        "dynamic partitioning, per GB delivered through it; unconfirmed figure"),
    "firehose.dynamic_partitioning.per_1000_objects": Price(
        0.005, "1,000 S3 objects delivered", "https://aws.amazon.com/firehose/pricing/", "2026-11-30",
        "dynamic partitioning, per 1,000 objects written to S3 (each partition's buffer is its own object); "
        "unconfirmed figure"),
    "s3.standard.gb_month": Price(
        0.023, "GB-month", "https://aws.amazon.com/s3/pricing/", "2026-11-30",
        "S3 Standard, first 50 TB a month; unconfirmed figure"),
    "s3.standard.put_per_1000": Price(
        0.005, "1,000 requests", "https://aws.amazon.com/s3/pricing/", "2026-11-30",
        "PUT, COPY, POST, LIST requests to S3 Standard; unconfirmed figure"),
    "s3.standard.get_per_1000": Price(
        0.0004, "1,000 requests", "https://aws.amazon.com/s3/pricing/", "2026-11-30",
        "GET, SELECT and other requests to S3 Standard; unconfirmed figure"),
    "sqs.standard.per_million_requests": Price(
        0.40, "million requests", "https://aws.amazon.com/sqs/pricing/", "2026-11-30",
        "standard queues, after the first million requests a month (free tier, ignored here); every API "
        "action is a request (a ReceiveMessage that returns nothing too) and each 64 KB chunk of a payload "
        "counts as one request; unconfirmed figure"),
    "sns.publish.per_million": Price(
        0.50, "million publishes", "https://aws.amazon.com/sns/pricing/", "2026-11-30",
        "standard topics, after the first million requests a month (ignored); each 64 KB chunk of a "
        "published message is one request; deliveries to SQS queues are free; unconfirmed figure"),
    "lambda.requests.per_million": Price(
        0.20, "million requests", "https://aws.amazon.com/lambda/pricing/", "2026-11-30",
        "every invocation, whatever its trigger (an SQS mapping's batches too); unconfirmed figure"),
    "lambda.duration.gb_second_x86": Price(
        0.0000166667, "GB-second", "https://aws.amazon.com/lambda/pricing/", "2026-11-30",
        "x86, first 6 billion GB-seconds a month; duration billed per 1 ms, rounded up, times the "
        "configured memory; unconfirmed figure"),
    "flink.kpu_hour": Price(
        0.11, "KPU-hour", "https://aws.amazon.com/managed-service-apache-flink/pricing/", "2026-11-30",
        "Managed Service for Apache Flink: 1 KPU = 1 vCPU + 4 GB; 'you are charged a single additional KPU "
        "per application, used for orchestration' and billing is per second with a ten-minute minimum "
        "(read on https://docs.aws.amazon.com/managed-flink/latest/java/how-pricing.html); figure unconfirmed"),
    "flink.running_storage.gb_month": Price(
        0.10, "GB-month", "https://aws.amazon.com/managed-service-apache-flink/pricing/", "2026-11-30",
        "running application storage: 50 GB per KPU (as quoted from the service's documentation); "
        "durable backups are extra and optional; unconfirmed figure"),
}

MB = 1024 ** 2
TB = 1024 ** 4


def price(name: str) -> Price:
    """The :class:`Price` called ``name`` (KeyError names the known ones)."""
    try:
        return PRICES[name]
    except KeyError:
        raise KeyError(f"no price {name!r}; known: {', '.join(sorted(PRICES))}") from None


def _scanned_cost(bytes_scanned: int, price_name: str) -> float:
    """Dollars for one query billed per TB scanned: bytes rounded up to the next megabyte, 10 MB at least."""
    billed_mb = max(10, math.ceil(bytes_scanned / MB))
    return billed_mb * MB / TB * price(price_name).usd


def athena_query_cost(bytes_scanned: int) -> float:
    """Dollars Athena charges for one SQL query that scanned ``bytes_scanned``.

    Bytes are rounded up to the next megabyte and a query is billed for at
    least 10 MB, so a tiny query costs the same as a 10 MB one.
    """
    return _scanned_cost(bytes_scanned, "athena.sql.per_tb_scanned")


def redshift_spectrum_query_cost(bytes_scanned: int) -> float:
    """Dollars Redshift Spectrum charges for one query that scanned ``bytes_scanned`` in S3.

    The same rounding as Athena: up to the next megabyte, at least 10 MB a
    query (SVL_S3QUERY_SUMMARY.s3_scanned_bytes is the number to pass).
    """
    return _scanned_cost(bytes_scanned, "redshift.spectrum.per_tb_scanned")


def reserved_effective_hourly(fixed_price: float, duration_seconds: int, recurring_hourly: float = 0.0) -> float:
    """The effective hourly rate of a reserved-node offering, as DescribeReservedNodeOfferings gives it.

    An offering has an upfront ``FixedPrice``, a ``Duration`` in seconds (1 or
    3 years) and ``RecurringCharges`` per hour (0 when All Upfront): its
    effective rate is the upfront spread over every hour of the term, plus the
    hourly charge. No Upfront: only the hourly charge, billed all the same.
    """
    return fixed_price / (duration_seconds / 3600) + recurring_hourly


@dataclass(frozen=True)
class ClusterCost:
    """What a provisioned Redshift cluster costs over a period, on demand and (optionally) reserved."""
    node_type: str
    nodes: int
    hours_running: float        # hours the cluster was available (not paused)
    hours_in_period: float      # hours of the period (a reservation bills each of them)
    on_demand_usd: float
    reserved_usd: float | None  # None: no reserved rate was given

    @property
    def node_hours(self) -> float:
        """The node-hours billed on demand: nodes x hours running."""
        return self.nodes * self.hours_running


def redshift_cluster_cost(node_type: str, nodes: int, hours_running: float,
                          hours_in_period: float | None = None,
                          reserved_hourly: float | None = None) -> ClusterCost:
    """The compute bill of a provisioned cluster: nodes x hours x the node's price.

    On demand, only the hours the cluster ran count: a paused cluster's hours
    do not (its managed storage, billed apart, does). A reserved node is paid
    for *every* hour of its term, running or paused, at ``reserved_hourly``
    (the effective hourly rate of the offering you bought, for instance
    :func:`reserved_effective_hourly` of a DescribeReservedNodeOfferings
    entry): no reserved rate is in :data:`PRICES` because none could be read
    from an AWS page. ``hours_in_period`` defaults to ``hours_running``.
    """
    if nodes < 1 or hours_running < 0:
        raise ValueError("a cluster has at least 1 node and runs a non-negative number of hours")
    period = hours_running if hours_in_period is None else hours_in_period
    if period < hours_running:
        raise ValueError("hours_in_period cannot be shorter than hours_running")
    on_demand = nodes * hours_running * price(f"redshift.node.{node_type}").usd
    reserved = None if reserved_hourly is None else nodes * period * reserved_hourly
    return ClusterCost(node_type, nodes, hours_running, period, on_demand, reserved)


#: Glue's minimum billed duration of one Spark job run (Glue 2.0 and later) and of one crawl, in seconds.
GLUE_JOB_MINIMUM_SECONDS = 60
GLUE_CRAWL_MINIMUM_SECONDS = 600


def glue_dpu_hours(seconds: float, dpus: float, minimum_seconds: int = GLUE_JOB_MINIMUM_SECONDS) -> float:
    """DPU-hours Glue bills for ``dpus`` used ``seconds``: per second, rounded up, ``minimum_seconds`` at least."""
    if seconds < 0 or dpus <= 0:
        raise ValueError("a run lasts a non-negative time on a positive number of DPUs")
    billed = max(minimum_seconds, math.ceil(seconds))
    return dpus * billed / 3600


def glue_job_run_cost(execution_seconds: float, dpus: float) -> float:
    """Dollars for one Spark job run (Glue 2.0+): JobRun ``ExecutionTime`` x DPUs, 1-minute minimum.

    ``dpus`` is the run's capacity: ``MaxCapacity`` in GetJobRun (``NumberOfWorkers`` x the DPUs of
    ``WorkerType``: G.1X 1, G.2X 2, G.4X 4, G.8X 8).
    """
    return glue_dpu_hours(execution_seconds, dpus) * price("glue.spark_job.dpu_hour").usd


def glue_crawl_cost(seconds: float, dpus: float) -> float:
    """Dollars for one crawl of ``dpus`` DPUs lasting ``seconds``: per second, 10-minute minimum."""
    return glue_dpu_hours(seconds, dpus, GLUE_CRAWL_MINIMUM_SECONDS) * price("glue.crawler.dpu_hour").usd


#: SPICE capacity that comes with each author seat, and the sessions in the monthly reader capacity plan.
QUICKSIGHT_SPICE_GB_PER_AUTHOR = 10
QUICKSIGHT_CAPACITY_SESSIONS = 500


def quicksight_monthly_cost(authors: int, readers: int = 0, spice_gb: float = 0.0,
                            reader_sessions: int = 0) -> dict[str, float]:
    """One month of QuickSight (Enterprise), in dollars, by line of the bill.

    ``readers`` are named reader seats; ``reader_sessions`` are 30-minute sessions bought as reader
    capacity (the monthly plan: its fee covers 500 sessions, each further one is billed; none if 0).
    ``spice_gb`` is the SPICE the account holds: the part beyond 10 GB per author is billed.
    """
    if min(authors, readers, reader_sessions) < 0 or spice_gb < 0:
        raise ValueError("users, sessions and gigabytes cannot be negative")
    capacity = 0.0
    if reader_sessions:
        extra = max(0, reader_sessions - QUICKSIGHT_CAPACITY_SESSIONS)
        capacity = (price("quicksight.reader_capacity.month").usd
                    + extra * price("quicksight.reader_capacity.extra_session").usd)
    billed_gb = max(0.0, spice_gb - QUICKSIGHT_SPICE_GB_PER_AUTHOR * authors)
    lines = {"authors": authors * price("quicksight.author.user_month").usd,
             "readers": readers * price("quicksight.reader.user_month").usd,
             "reader capacity": capacity,
             "SPICE": billed_gb * price("quicksight.spice.gb_month").usd}
    lines["total"] = sum(lines.values())
    return lines


#: Metering units of the pipeline's services (see the notes of their prices).
IOT_MESSAGE_BYTES = 5 * 1024           # IoT Core messages and rules: 5 KB increments
KINESIS_PUT_UNIT_BYTES = 25 * 1024     # Kinesis Data Streams PUT payload unit
FIREHOSE_RECORD_BYTES = 5 * 1024       # Firehose ingestion: each record rounded up to 5 KB
GB = 1024 ** 3
FLINK_STORAGE_GB_PER_KPU = 50
DAYS_PER_MONTH = 30


def pipeline_daily_cost(*, messages_per_day: int, avg_message_bytes: int, shards: int,
                        lambda_invocations_per_day: int, lambda_avg_ms: float, lambda_memory_mb: int,
                        s3_objects_per_day: int, athena_bytes_scanned_per_day: int, athena_queries_per_day: int,
                        redshift_node_type: str, redshift_nodes: int, flink_kpus: int,
                        quicksight_authors: int, quicksight_readers: int,
                        rule_actions_per_message: int = 1, format_conversion: bool = True,
                        dynamic_partitioning: bool = True, s3_stored_gb: float = 0.0,
                        s3_get_requests_per_day: int = 0, sns_publishes_per_day: int | None = None,
                        sqs_queues: int = 2, sqs_requests_per_day: int | None = None) -> dict[str, float]:
    """Dollars per day of the capstone pipeline, by service, and their ``'total'`` (us-east-1, on demand).

    Each line's rule (``n`` = messages_per_day, ``b`` = avg_message_bytes; monthly prices / 30;
    free tiers ignored):

    - ``iot``: messaging ``n x ceil(b / 5 KB)`` messages per million, plus the rules engine:
      ``n x ceil(b / 5 KB)`` rules triggered (one rule per message) and that many times
      ``rule_actions_per_message`` actions, each per million;
    - ``kinesis``: ``shards x 24`` shard-hours, plus ``n x ceil(b / 25 KB)`` PUT payload units per million;
    - ``firehose``: ingestion of ``n x ceil(b / 5 KB) x 5 KB`` bytes per GB; the same GB again for
      format conversion and for dynamic partitioning (when on), plus ``s3_objects_per_day / 1,000``
      objects delivered for dynamic partitioning;
    - ``s3``: ``s3_stored_gb`` GB-months / 30, ``s3_objects_per_day`` PUTs and
      ``s3_get_requests_per_day`` GETs, per 1,000;
    - ``sns``: ``sns_publishes_per_day`` (default: one per S3 object, the event notification) per
      million; the deliveries to SQS are free;
    - ``sqs``: ``sqs_requests_per_day`` (default: each notification reaches ``sqs_queues`` queues,
      each message costs a SendMessage, a ReceiveMessage and a DeleteMessage: ``3 x queues x
      publishes``) per million;
    - ``lambda``: invocations per million, plus ``invocations x ceil(avg ms) / 1,000 x memory MB /
      1,024`` GB-seconds (x86);
    - ``athena``: ``athena_queries_per_day`` queries of ``athena_bytes_scanned_per_day / queries``
      bytes each, each rounded up to the MB with a 10 MB minimum (:func:`athena_query_cost`);
    - ``redshift``: ``redshift_nodes x 24`` node-hours of ``redshift_node_type``;
    - ``flink``: ``(flink_kpus + 1) x 24`` KPU-hours (the extra KPU orchestrates), plus
      ``flink_kpus x 50 GB`` of running storage, GB-months / 30;
    - ``quicksight``: author and reader seats, per user-month / 30.
    """
    counts = (messages_per_day, avg_message_bytes, shards, lambda_invocations_per_day, lambda_memory_mb,
              s3_objects_per_day, athena_bytes_scanned_per_day, athena_queries_per_day, redshift_nodes,
              flink_kpus, quicksight_authors, quicksight_readers, rule_actions_per_message, sqs_queues)
    if min(counts) < 0 or lambda_avg_ms < 0 or s3_stored_gb < 0 or s3_get_requests_per_day < 0:
        raise ValueError("quantities cannot be negative")
    usd = lambda name: price(name).usd  # noqa: E731
    n, b = messages_per_day, avg_message_bytes
    iot_units = n * max(1, math.ceil(b / IOT_MESSAGE_BYTES))
    iot = (iot_units / 1e6 * usd("iot.messaging.per_million")
           + iot_units / 1e6 * usd("iot.rules.per_million_triggered")
           + iot_units * rule_actions_per_message / 1e6 * usd("iot.rules.per_million_actions"))
    kinesis = (shards * 24 * usd("kinesis.provisioned.shard_hour")
               + n * max(1, math.ceil(b / KINESIS_PUT_UNIT_BYTES)) / 1e6
               * usd("kinesis.provisioned.put_payload_units_million"))
    firehose_gb = n * max(1, math.ceil(b / FIREHOSE_RECORD_BYTES)) * FIREHOSE_RECORD_BYTES / GB
    firehose = firehose_gb * usd("firehose.ingest.per_gb")
    if format_conversion:
        firehose += firehose_gb * usd("firehose.format_conversion.per_gb")
    if dynamic_partitioning:
        firehose += (firehose_gb * usd("firehose.dynamic_partitioning.per_gb")
                     + s3_objects_per_day / 1000 * usd("firehose.dynamic_partitioning.per_1000_objects"))
    s3 = (s3_stored_gb * usd("s3.standard.gb_month") / DAYS_PER_MONTH
          + s3_objects_per_day / 1000 * usd("s3.standard.put_per_1000")
          + s3_get_requests_per_day / 1000 * usd("s3.standard.get_per_1000"))
    publishes = s3_objects_per_day if sns_publishes_per_day is None else sns_publishes_per_day
    requests = 3 * sqs_queues * publishes if sqs_requests_per_day is None else sqs_requests_per_day
    gb_seconds = lambda_invocations_per_day * math.ceil(lambda_avg_ms) / 1000 * lambda_memory_mb / 1024
    athena = 0.0
    if athena_queries_per_day:
        athena = athena_queries_per_day * athena_query_cost(
            math.ceil(athena_bytes_scanned_per_day / athena_queries_per_day))
    lines = {
        "iot": iot,
        "kinesis": kinesis,
        "firehose": firehose,
        "s3": s3,
        "sns": publishes / 1e6 * usd("sns.publish.per_million"),
        "sqs": requests / 1e6 * usd("sqs.standard.per_million_requests"),
        "lambda": (lambda_invocations_per_day / 1e6 * usd("lambda.requests.per_million")
                   + gb_seconds * usd("lambda.duration.gb_second_x86")),
        "athena": athena,
        "redshift": redshift_nodes * 24 * usd(f"redshift.node.{redshift_node_type}"),
        "flink": ((flink_kpus + 1) * 24 * usd("flink.kpu_hour") if flink_kpus else 0.0)
                 + flink_kpus * FLINK_STORAGE_GB_PER_KPU * usd("flink.running_storage.gb_month") / DAYS_PER_MONTH,
        "quicksight": (quicksight_authors * usd("quicksight.author.user_month")
                       + quicksight_readers * usd("quicksight.reader.user_month")) / DAYS_PER_MONTH,
    }
    lines["total"] = sum(lines.values())
    return lines
