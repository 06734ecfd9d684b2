"""The capstone pipeline (``localaws/capstone/``) under every fault at once, on a small volume.

One pipeline for the module: 4 devices x 5 simulated minutes (a report every
30 s) plus a burst of 1,100 buffered readings from one device within one
second. Injected, deterministically: the transform Lambda fails half of its
batches (by record_id hash), the burst overflows a shard (IoT's errorAction
keeps the excess in S3), the reporter's process is killed mid-batch, one
Firehose delivery is written twice; and between minute 2 and 3 the Flink
TaskManager is killed (the job restarts from its checkpoint).

After the replay of both error outputs, PIPE-7 must hold: records sent =
distinct record_ids in the stream = distinct in Athena = rows in Redshift
after MERGE = the sum of Flink's per-device, per-minute counts.
"""
from __future__ import annotations

import importlib

import psutil
import pytest

from localaws.capstone import Faults, build, destroy, finish, load_redshift, pipe7_holds, reconcile, \
    replay_errors, run

R = importlib.import_module("localaws.capstone.run")

DEVICES, FIRST, SECOND = 4, 3, 2
FAULTS = Faults(transform_fail_percent=50, burst=(0, 1100, 1), crash_reporter=1, duplicate_delivery=2)


def value(table, stage):
    return int(table.loc[table["stage"] == stage, "records"].iloc[0])


@pytest.fixture(scope="module")
def world(stack, unique):
    before = set(stack.processes.pids())
    p = build(stack, prefix=unique("cap"), shards=2, devices=DEVICES, faults=FAULTS)
    state = {"pipeline": p, "before_pids": before, "destroyed": False}
    try:
        first = run(stack, p, minutes=FIRST)
        assert stack.local.flink.wait_for_checkpoint(p.flink_app, timeout=120)   # the windows so far are safe
        state["crash"] = stack.local.flink.kill_taskmanager()
        second = run(stack, p, minutes=SECOND, start_minute=FIRST)
        state["runs"] = (first, second)
        state["sent"] = first.sent + second.sent
        state["iot_errors_before"] = R.s3_keys(stack, p.errors_bucket, "iot-errors/")
        state["failed_before"] = R.s3_keys(stack, p.ingest_bucket, "firehose-errors/processing-failed/")
        state["replayed"] = replay_errors(stack, p)
        state["finish"] = finish(stack, p)
        state["load"] = load_redshift(stack, p)
        state["load_again"] = load_redshift(stack, p)
        state["table"] = reconcile(stack, p, state["sent"])
        state["pids"] = set(stack.processes.pids())
        yield state
    finally:
        if not state["destroyed"]:
            destroy(stack, p)


def test_the_runs_are_deterministic_counts(world):
    first, second = world["runs"]
    assert [r["minute"] for r in first.per_minute + second.per_minute] == list(range(FIRST + SECOND))
    assert first.burst == 1100 and second.burst == 0
    assert first.tests + second.tests > 0                              # self-tests the rule filters out
    assert world["sent"] == sum(r.published - r.tests for r in (first, second))
    stages = first.stages
    assert stages["matched by the IoT rule"] == first.sent
    assert stages["put into the stream"] + stages["IoT errorAction"] == first.sent
    assert list(first.throughput["stage"])[:2] == ["published", "matched by the IoT rule"]


def test_error_outputs_filled_then_replayed_once(world):
    assert world["iot_errors_before"], "the burst should overflow the shard"
    assert world["failed_before"], "the transform fault should fail some batches"
    assert world["replayed"]["iot_errors"] == len(world["iot_errors_before"])
    assert world["replayed"]["firehose_processing_failed"] > 0
    table = world["table"]
    assert value(table, "IoT error documents waiting") == 0
    assert value(table, "Firehose processing-failed objects waiting") == 0


def test_pipe7_reconciles(world):
    table, sent = world["table"], world["sent"]
    assert world["finish"] == {"flink_windows_closed": True, "firehose_drained": True, "reports_done": True}
    assert pipe7_holds(table), table.to_string()
    for stage in ("distinct record_ids in the stream", "records in the stream", "distinct record_ids delivered",
                  "Athena count(DISTINCT record_id)", "Redshift rows after MERGE", "Flink metric count sum"):
        assert value(table, stage) == sent, (stage, table.to_string())


def test_duplicate_delivery_seen_in_athena_and_removed_by_merge(world):
    table = world["table"]
    duplicates = value(table, "duplicate rows delivered")
    assert duplicates > 0
    assert value(table, "Athena count(*)") == world["sent"] + duplicates
    assert world["load"]["staged_rows"] == world["sent"] + duplicates
    assert world["load"]["telemetry_rows"] == world["load_again"]["telemetry_rows"] == world["sent"]


def test_reporter_crash_redelivered_and_reports_idempotent(stack, world):
    p = world["pipeline"]
    stats = stack.local.awslambda.sqs_stats(p.mapping_uuid)
    assert stats["failed_invocations"] >= 1                         # the killed invocation
    assert R.queue_empty(stack, p.reports_dlq_url)                 # ...whose messages were redelivered
    curated = R.s3_keys(stack, p.ingest_bucket, "telemetry/")
    reports = R.s3_keys(stack, p.reporting_bucket, R.REPORTS)
    assert reports == sorted(f"{R.REPORTS}{key}.json" for key in curated)   # one per object, none twice
    assert R.s3_keys(stack, p.reporting_bucket, "athena-results/")


def test_flink_recovered_from_the_killed_taskmanager(stack, world):
    p = world["pipeline"]
    crash = world["crash"]
    assert len(crash["killed"]) == 1 and crash["killed"] != crash["replacement"]
    assert stack.local.flink.checkpoints(p.flink_app)["restored_from"] == "checkpoint"
    metrics = R.flink_metrics(stack, p)
    assert sorted(metrics["device_id"].unique()) == [f"d{i:02d}" for i in range(DEVICES)]
    assert int(metrics["records"].sum()) == world["sent"]


def test_no_process_left_after_destroy(stack, world):
    p = world["pipeline"]
    started = world["pids"] - world["before_pids"]
    destroy(stack, p)
    world["destroyed"] = True
    stack.context.registry.planes["flink"].stop()      # the shared Flink cluster; the next user starts it again
    alive = [pid for pid in started if psutil.pid_exists(pid)
             and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]
    assert alive == []
    assert p.flink_app not in stack.client("kinesisanalyticsv2").list_applications()["ApplicationSummaries"]
