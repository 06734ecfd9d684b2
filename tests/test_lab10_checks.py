"""The checks of lab 10 (``labs/10_streams``), without Flink.

Step 1's check measures: it replays the producer's peak on the stack's frozen
clock against the learner's stream and against one with a shard fewer. Here
it must pass the fewest shards that carry the peak (4 for the lab's
producer), refuse too few (the read side forgotten, or the bytes), refuse too
many (they cost more), and say why in each case. Step 2's comparison with
pandas is tested on hand-made results: the right windows in any order pass,
and each classic mistake gets its own message.
"""
from __future__ import annotations

import uuid
from datetime import timedelta

import pandas as pd
import pytest

from localaws.data import iot_telemetry_records
from localaws.grading import LabCheckFailed
from localaws.kinesis import labchecks

PRODUCER = {"records_per_second": 800, "average_record_bytes": 2000, "peak_factor": 1.5}
CONSUMERS = {"count": 3, "polls_per_second": 1}


@pytest.fixture
def make_stream(stack):
    """``make_stream(shards, mode="PROVISIONED")`` -> a new stream's name, deleted after the test."""
    kinesis, made = stack.client("kinesis"), []

    def make(shards, mode="PROVISIONED"):
        name = f"lab10-{uuid.uuid4().hex[:8]}"
        kwargs = {"ShardCount": shards} if mode == "PROVISIONED" else {}
        kinesis.create_stream(StreamName=name, StreamModeDetails={"StreamMode": mode}, **kwargs)
        made.append(name)
        return name
    yield make
    for name in made:
        kinesis.delete_stream(StreamName=name)


def streams(stack) -> list[str]:
    return stack.client("kinesis").list_streams()["StreamNames"]


# ------------------------------------------------------------------ step 1: size the stream
def test_the_fewest_shards_that_carry_the_peak_pass(stack, make_stream):
    name = make_stream(4)
    table = labchecks.check_stream_sizing(stack, name, 4, PRODUCER, CONSUMERS)
    assert list(table.columns) == ["4 shards (yours)", "3 shards"]
    assert table["4 shards (yours)"].to_dict() == {"records put": 6000, "writes throttled": 0,
                                                  "GetRecords calls": 60, "reads throttled": 0}
    assert table.loc["reads throttled", "3 shards"] > 0          # the read side decides: 3 consumers
    assert f"{name}-minus-one" not in streams(stack)              # the scratch stream is gone
    assert not stack.local.clock.frozen                           # the clock runs again, as it was


@pytest.mark.parametrize("shards, refused, load", [
    (3, "refused 0 of 6,000 records and 6 of 45 GetRecords calls",          # write side only: 3 shards
     "sends 2.29 MB/s out to the 3 consumers (limit 2, shared)"),
    (2, "refused 760 of 6,000 records",                                    # records only: 2 shards
     "1.14 MB/s in (limit 1)"),
], ids=["reads-forgotten", "bytes-forgotten"])
def test_too_few_shards_are_caught_by_the_replay(stack, make_stream, shards, refused, load):
    with pytest.raises(LabCheckFailed) as failed:
        labchecks.check_stream_sizing(stack, make_stream(shards), shards, PRODUCER, CONSUMERS)
    message = str(failed.value)
    assert refused in message and load in message and "Expected no refusal" in message
    assert "ProvisionedThroughputExceededException" in message
    assert not stack.local.clock.frozen


@pytest.mark.parametrize("shards", [5, 6], ids=["one-too-many", "two-too-many"])
def test_more_shards_than_needed_are_caught_because_they_cost_more(stack, make_stream, shards):
    name = make_stream(shards)
    with pytest.raises(LabCheckFailed) as failed:
        labchecks.check_stream_sizing(stack, name, shards, PRODUCER, CONSUMERS)
    message = str(failed.value)
    assert f"{shards - 1} shards carry the same peak without one refusal too" in message
    assert f"so {shards} is more than needed" in message
    assert "shard-hour" in message and labchecks.PRICING in message
    assert f"{name}-minus-one" not in streams(stack)


def test_the_stream_must_exist_be_provisioned_and_have_shards_shards(stack, make_stream):
    with pytest.raises(LabCheckFailed, match="there is no stream 'lab10-nope'"):
        labchecks.check_stream_sizing(stack, "lab10-nope", 4, PRODUCER, CONSUMERS)
    with pytest.raises(LabCheckFailed, match="is an ON_DEMAND stream"):
        labchecks.check_stream_sizing(stack, make_stream(None, mode="ON_DEMAND"), 4, PRODUCER, CONSUMERS)
    name = make_stream(4)
    with pytest.raises(LabCheckFailed, match="has 4 open shards but SHARDS = 3"):
        labchecks.check_stream_sizing(stack, name, 3, PRODUCER, CONSUMERS)
    with pytest.raises(LabCheckFailed, match="whole number of shards"):
        labchecks.check_stream_sizing(stack, name, 3.6, PRODUCER, CONSUMERS)


def test_a_replay_leaves_a_frozen_clock_frozen(stack, make_stream):
    clock = stack.local.clock
    clock.freeze()
    try:
        found = labchecks.replay_peak(stack, make_stream(4), PRODUCER, CONSUMERS, seconds=1)
        assert clock.frozen
    finally:
        clock.resume()
    assert found == {"records put": 1200, "writes throttled": 0, "GetRecords calls": 12, "reads throttled": 0}


def test_the_peak_second_is_spread_evenly_and_sized_as_asked():
    records = labchecks.peak_second(PRODUCER)
    assert len(records) == 1200
    assert {len(r["Data"]) + len(r["PartitionKey"]) for r in records} == {2000}
    quarter = 2 ** 128 // 4
    per_shard = pd.Series([int(r["ExplicitHashKey"]) // quarter for r in records]).value_counts()
    assert per_shard.to_dict() == {0: 300, 1: 300, 2: 300, 3: 300}


# ------------------------------------------------------------------ step 2: the windows
@pytest.fixture(scope="module")
def expected():
    readings = iot_telemetry_records(20 * 28, seed=10, interval=timedelta(seconds=15))
    return labchecks.expected_windows(readings, watermark_delay_seconds=30)


def test_only_windows_the_watermark_closed_are_expected(expected):
    assert len(expected) == 120                                       # 20 devices x minutes 00:00-00:05
    assert expected["window_start"].max() == pd.Timestamp("2026-10-01 00:05:00")
    assert set(expected["readings"]) == {4}                           # COUNT(*): the ERROR reading too
    error = expected[(expected["device_id"] == "sensor-017") & (expected["window_start"] == "2026-10-01 00:04:00")]
    readings = iot_telemetry_records(20 * 28, seed=10, interval=timedelta(seconds=15))
    measured = [r["temperature"] for r in readings if r["device_id"] == "sensor-017"
                and "00:04:00" <= r["timestamp"][11:19] < "00:05:00"]
    assert None in measured                                           # AVG skips the null temperature
    assert error["avg_temperature"].item() == pytest.approx(sum(t for t in measured if t is not None) / 3)
    assert list(expected.columns) == labchecks.COLUMNS


def test_the_right_windows_pass_in_any_order(expected):
    labchecks.check_windows(expected.sample(frac=1, random_state=3), expected)


def test_each_classic_mistake_gets_its_own_message(expected):
    wall_clock = expected.assign(window_start=expected["window_start"] + pd.Timedelta(days=400),
                                 window_end=expected["window_end"] + pd.Timedelta(days=400))
    with pytest.raises(LabCheckFailed, match="processing time"):
        labchecks.check_windows(wall_clock, expected)

    short = expected.assign(window_end=expected["window_start"] + pd.Timedelta(seconds=10))
    with pytest.raises(LabCheckFailed, match="the windows last 10 s; asked: 1-minute"):
        labchecks.check_windows(short, expected)

    with pytest.raises(LabCheckFailed, match="10 of 120 windows are missing"):
        labchecks.check_windows(expected.iloc[10:], expected)

    with pytest.raises(LabCheckFailed, match="1 window not expected, e.g. sensor-020 from 2026-10-01 00:06:00"):
        extra = expected.iloc[[-1]].assign(window_start=pd.Timestamp("2026-10-01 00:06:00"),
                                           window_end=pd.Timestamp("2026-10-01 00:07:00"))
        labchecks.check_windows(pd.concat([expected, extra]), expected)

    error_reading = (expected["device_id"] == "sensor-017") & (expected["window_start"] == "2026-10-01 00:04:00")
    count_temperature = expected.assign(readings=expected["readings"] - error_reading)    # COUNT(temperature)
    with pytest.raises(LabCheckFailed, match=r"readings differ in 1 window, e.g. sensor-017 from 2026-10-01 "
                                             r"00:04:00: 3 instead of 4\..*COUNT\(\*\)"):
        labchecks.check_windows(count_temperature, expected)

    warmer = expected.assign(avg_temperature=expected["avg_temperature"] + 0.5)
    with pytest.raises(LabCheckFailed, match=r"AVG\(temperature\).*differs from the expected table"):
        labchecks.check_windows(warmer, expected)

    with pytest.raises(LabCheckFailed, match="expected \\['device_id'"):
        labchecks.check_windows(expected.rename(columns={"readings": "n"}), expected)
