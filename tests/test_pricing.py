"""The dated price table (localaws/pricing.py) and the Redshift cost functions built on it."""
from __future__ import annotations

import datetime

import pytest

from localaws.pricing import (MB, PRICES, TB, ClusterCost, price, redshift_cluster_cost,
                              redshift_spectrum_query_cost, reserved_effective_hourly)


@pytest.mark.parametrize("name", sorted(PRICES))
def test_every_price_says_where_and_when_it_was_read(name):
    entry = PRICES[name]
    assert entry.usd > 0 and entry.unit
    assert entry.source.startswith("https://")
    assert datetime.date.fromisoformat(entry.checked) <= datetime.date(2027, 1, 1)


def test_the_redshift_prices_that_could_be_read_are_there_and_no_others():
    nodes = sorted(name for name in PRICES if name.startswith("redshift.node."))
    assert nodes == ["redshift.node.dc2.large", "redshift.node.ra3.large", "redshift.node.ra3.xlplus"]
    assert price("redshift.node.dc2.large").usd == 0.25      # "you can start small at $0.25 per hour"
    # AWS prices the sizes of one family in proportion: ra3.xlplus is two ra3.large.
    assert price("redshift.node.ra3.xlplus").usd == pytest.approx(2 * price("redshift.node.ra3.large").usd)
    assert price("redshift.spectrum.per_tb_scanned").unit == "TB scanned"
    assert price("redshift.serverless.rpu_hour").unit == "RPU-hour"
    assert not any("reserved" in name for name in PRICES if name.startswith("redshift."))
    with pytest.raises(KeyError, match="redshift.node.ra3.large"):
        price("redshift.node.ra3.4xlarge")                    # not verified, so not in the table


def test_on_demand_node_hours_stop_while_paused_a_reservation_does_not():
    always_on = redshift_cluster_cost("ra3.xlplus", nodes=2, hours_running=730)
    assert isinstance(always_on, ClusterCost) and always_on.node_hours == 1460
    assert always_on.on_demand_usd == pytest.approx(1460 * 1.086)
    assert always_on.reserved_usd is None                     # no reserved rate given

    # Business hours only (10 h x 22 days), paused the rest of the month.
    rate = reserved_effective_hourly(fixed_price=0.0, duration_seconds=365 * 24 * 3600, recurring_hourly=0.75)
    paused = redshift_cluster_cost("ra3.xlplus", nodes=2, hours_running=220, hours_in_period=730,
                                   reserved_hourly=rate)
    assert paused.on_demand_usd == pytest.approx(2 * 220 * 1.086)
    assert paused.reserved_usd == pytest.approx(2 * 730 * 0.75)       # billed for every hour of the term
    assert paused.on_demand_usd < paused.reserved_usd < always_on.on_demand_usd


def test_reserved_effective_hourly_spreads_the_upfront_over_the_term():
    year = 365 * 24 * 3600
    assert reserved_effective_hourly(8760.0, year) == pytest.approx(1.0)            # all upfront
    assert reserved_effective_hourly(4380.0, year, 0.5) == pytest.approx(1.0)       # partial upfront
    assert reserved_effective_hourly(0.0, 3 * year, 0.4) == pytest.approx(0.4)      # no upfront


def test_cluster_cost_refuses_impossible_inputs():
    with pytest.raises(ValueError):
        redshift_cluster_cost("ra3.xlplus", nodes=0, hours_running=1)
    with pytest.raises(ValueError):
        redshift_cluster_cost("ra3.xlplus", nodes=2, hours_running=10, hours_in_period=5)
    with pytest.raises(KeyError):
        redshift_cluster_cost("ra3.16xlarge", nodes=2, hours_running=1)


def test_spectrum_bills_scanned_bytes_rounded_up_to_a_megabyte_with_a_10_mb_minimum():
    per_tb = price("redshift.spectrum.per_tb_scanned").usd
    assert redshift_spectrum_query_cost(1) == pytest.approx(10 * MB / TB * per_tb)
    assert redshift_spectrum_query_cost(10 * MB + 1) == pytest.approx(11 * MB / TB * per_tb)
    assert redshift_spectrum_query_cost(TB) == pytest.approx(per_tb)


# ------------------------------------------------------------------ the capstone pipeline's daily cost
def test_pipeline_daily_cost_line_by_line():
    from localaws.pricing import pipeline_daily_cost
    p = lambda name: price(name).usd  # noqa: E731
    cost = pipeline_daily_cost(
        messages_per_day=1_000_000, avg_message_bytes=6_000, shards=2,
        lambda_invocations_per_day=1_000, lambda_avg_ms=200.4, lambda_memory_mb=512,
        s3_objects_per_day=1_440, athena_bytes_scanned_per_day=3 * MB, athena_queries_per_day=3,
        redshift_node_type="ra3.large", redshift_nodes=2, flink_kpus=1,
        quicksight_authors=1, quicksight_readers=3, s3_stored_gb=30.0, s3_get_requests_per_day=2_000)
    # 6,000 bytes: 2 IoT messages of 5 KB, 1 Kinesis PUT unit of 25 KB, 10 KB billed by Firehose
    assert cost["iot"] == pytest.approx(2 * (p("iot.messaging.per_million") + p("iot.rules.per_million_triggered")
                                             + p("iot.rules.per_million_actions")))
    assert cost["kinesis"] == pytest.approx(2 * 24 * p("kinesis.provisioned.shard_hour")
                                            + 1 * p("kinesis.provisioned.put_payload_units_million"))
    gb = 1_000_000 * 10 * 1024 / 1024 ** 3
    assert cost["firehose"] == pytest.approx(
        gb * (p("firehose.ingest.per_gb") + p("firehose.format_conversion.per_gb")
              + p("firehose.dynamic_partitioning.per_gb")) + 1.44 * p("firehose.dynamic_partitioning.per_1000_objects"))
    assert cost["s3"] == pytest.approx(30 * p("s3.standard.gb_month") / 30 + 1.44 * p("s3.standard.put_per_1000")
                                       + 2 * p("s3.standard.get_per_1000"))
    assert cost["sns"] == pytest.approx(1_440 / 1e6 * p("sns.publish.per_million"))
    assert cost["sqs"] == pytest.approx(3 * 2 * 1_440 / 1e6 * p("sqs.standard.per_million_requests"))
    assert cost["lambda"] == pytest.approx(1_000 / 1e6 * p("lambda.requests.per_million")
                                           + 1_000 * 0.201 * 0.5 * p("lambda.duration.gb_second_x86"))
    assert cost["athena"] == pytest.approx(3 * 10 * MB / TB * p("athena.sql.per_tb_scanned"))   # 10 MB minimum
    assert cost["redshift"] == pytest.approx(2 * 24 * 0.543)
    assert cost["flink"] == pytest.approx(2 * 24 * p("flink.kpu_hour") + 50 * p("flink.running_storage.gb_month") / 30)
    assert cost["quicksight"] == pytest.approx((24 + 3 * 3) / 30)
    assert cost["total"] == pytest.approx(sum(v for k, v in cost.items() if k != "total"))


def test_pipeline_daily_cost_options_and_refusals():
    from localaws.pricing import pipeline_daily_cost
    base = dict(messages_per_day=10, avg_message_bytes=100, shards=1, lambda_invocations_per_day=0,
                lambda_avg_ms=0, lambda_memory_mb=128, s3_objects_per_day=0, athena_bytes_scanned_per_day=0,
                athena_queries_per_day=0, redshift_node_type="dc2.large", redshift_nodes=1, flink_kpus=0,
                quicksight_authors=0, quicksight_readers=0)
    plain = pipeline_daily_cost(**base, format_conversion=False, dynamic_partitioning=False)
    assert plain["firehose"] == pytest.approx(10 * 5 * 1024 / 1024 ** 3 * price("firehose.ingest.per_gb").usd)
    assert plain["athena"] == plain["flink"] == plain["lambda"] == 0
    with pytest.raises(ValueError):
        pipeline_daily_cost(**{**base, "shards": -1})
    with pytest.raises(KeyError):
        pipeline_daily_cost(**{**base, "redshift_node_type": "ra3.16xlarge"})
