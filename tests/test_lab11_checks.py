"""The checks of lab 11 (``labs/11_kafka``).

Most tests need no broker: the diagnoses of both steps are tested on
hand-made runs (what :func:`run_broker_failure` and :func:`run_consumer_group`
would have seen), one per classic mistake, each with its own message. The
last tests run the checks end to end on one 3-broker MSK cluster of the
local stack: the lab's solution passes both steps, ``acks=1`` loses
acknowledged records when the check crashes a broker, and a consumer that
commits automatically loses the batch it was processing when it crashes.
"""
from __future__ import annotations

from collections import Counter

import pytest
from confluent_kafka import KafkaException

from localaws.core.waiting import wait_until
from localaws.grading import LabCheckFailed
from localaws.kafka import labchecks
from localaws.kafka.labchecks import FailureRun, GroupRun

GOOD_TOPIC = {"num_partitions": 6, "replication_factor": 3, "config": {"min.insync.replicas": "2"}}
GOOD_PRODUCER = {"acks": "all", "enable.idempotence": True, "delivery.timeout.ms": 120_000}
GOOD_CONSUMER = {"group.id": "ledger", "auto.offset.reset": "earliest", "enable.auto.commit": False}


def failure(sent=600, partitions=6, rf=3, min_isr=2, **changes) -> FailureRun:
    """A run in which every record was acknowledged and is in the topic once, then ``changes``."""
    run = FailureRun(sent=sent, partitions=partitions, replication_factor=rf, min_insync_replicas=min_isr, victim=2,
                     acked=set(range(sent)), in_topic=Counter(range(sent)),
                     isr_during_outage={p: [1, 3][:rf - 1] for p in range(partitions)})
    for name, value in changes.items():
        setattr(run, name, value)
    return run


def diagnosis(run, producer=GOOD_PRODUCER) -> str:
    with pytest.raises(LabCheckFailed) as failed:
        labchecks.diagnose_broker_failure(run, producer)
    return str(failed.value)


# ------------------------------------------------------------------ the data and the settings
def test_payments_are_seeded_numbered_and_keyed_by_account():
    payments = labchecks.payments()
    assert len(payments) == labchecks.PAYMENTS == 20_000
    assert payments == labchecks.payments()
    assert payments[0]["payment_id"] == "pay-000000" and payments[-1]["payment_id"] == "pay-019999"
    assert {p["account"][:5] for p in payments} == {"acct-"}
    assert 400 < len({p["account"] for p in payments}) <= 500


def test_producer_settings_resolve_aliases_and_librdkafka_defaults():
    assert labchecks.producer_settings({}) == {"acks": -1, "idempotence": False, "timeout_ms": 300_000,
                                               "retries": 2_147_483_647}
    assert labchecks.producer_settings({"request.required.acks": "1", "message.timeout.ms": 5000})["acks"] == 1
    assert labchecks.producer_settings({"acks": -1, "enable.idempotence": "true"})["idempotence"]
    assert labchecks.producer_settings({"acks": 0, "retries": 0, "delivery.timeout.ms": 1500}) == {
        "acks": 0, "idempotence": False, "timeout_ms": 1500, "retries": 0}


# ------------------------------------------------------------------ step 1: what went wrong
def test_a_clean_run_with_safe_settings_passes_and_is_summed_up():
    run = failure()
    labchecks.diagnose_broker_failure(run, GOOD_PRODUCER)
    assert labchecks.failure_summary(run)["count"].to_dict() == {
        "records sent": 600, "acknowledged": 600, "delivery failed": 0, "in the topic once": 600,
        "in the topic more than once": 0, "missing from the topic": 0, "partitions offline during the failure": 0}


def test_acknowledged_records_lost_blame_acks():
    lost = set(range(100, 130))
    message = diagnosis(failure(in_topic=Counter(set(range(600)) - lost)), {"acks": 1})
    assert message.startswith("30 records the brokers had acknowledged are not in the topic. With acks=1")
    assert "broker 2 dropped them" in message and "Set acks=all" in message
    message = diagnosis(failure(in_topic=Counter(set(range(600)) - lost)), {"acks": "0"})
    assert message.startswith("30 records the producer counted as delivered are not in the topic. With acks=0")
    unclean = failure(in_topic=Counter(set(range(600)) - lost), unclean_election=True)
    assert "unclean.leader.election.enable=true" in diagnosis(unclean)


def test_deliveries_given_up_blame_the_timeout_or_the_retries():
    gave_up = {n: "_MSG_TIMED_OUT" for n in range(200, 300)}
    written = Counter(set(range(600)) - set(range(250, 300)))       # half of the failed ones were written
    message = diagnosis(failure(acked=set(range(600)) - set(gave_up), failed=gave_up, in_topic=written),
                        {**GOOD_PRODUCER, "delivery.timeout.ms": 1500})
    assert message.startswith("the producer gave up on 50 records (_MSG_TIMED_OUT x 50)")
    assert "50 records reported as failed are in the topic after all" in message
    assert "delivery.timeout.ms=1,500 ms" in message and labchecks.CLIENT_BEST_PRACTICES in message
    refused = {n: "NOT_LEADER_OR_FOLLOWER" for n in range(10)}
    message = diagnosis(failure(acked=set(range(10, 600)), failed=refused, in_topic=Counter(range(10, 600))),
                        {**GOOD_PRODUCER, "retries": 0})
    assert "retries=0 let the producer give up" in message


def test_offline_partitions_blame_the_replication_factor():
    run = failure(rf=1, min_isr=1, offline=[0, 3], pending_after_outage=2_000,
                  isr_during_outage={0: [], 1: [1], 2: [3], 3: [], 4: [1], 5: [3]})
    message = diagnosis(run)
    assert "partition(s) 0, 3 had no leader (offline)" in message
    assert "replication_factor=1 each partition is on one broker only" in message
    assert "2,000 records waited until it came back" in message and "replication_factor=3" in message


def test_writes_refused_below_min_insync_replicas_blame_min_insync_replicas():
    run = failure(min_isr=3, pending_after_outage=9_000, isr_during_outage={p: [1, 3] for p in range(6)})
    message = diagnosis(run)
    assert "partition(s) 0, 1, 2, 3, 4, 5 had 2 in-sync replica(s), fewer than min.insync.replicas=3" in message
    assert "NOT_ENOUGH_REPLICAS" in message and "9,000 records waited" in message
    assert "must be at most 2 for writes to go on" in message
    still = failure(min_isr=3, isr_during_outage={p: [1, 3] for p in range(6)}, acked=set(range(550)),
                    failed={n: "_PURGE_QUEUE" for n in range(550, 600)}, in_topic=Counter(range(550)))
    assert "50 records of them never delivered: _PURGE_QUEUE x 50" in diagnosis(still)


def test_duplicates_blame_idempotence():
    twice = Counter(range(600)) + Counter(range(40, 52))
    message = diagnosis(failure(in_topic=twice), {"acks": "all"})
    assert message.startswith("12 records are in the topic more than once (12 extra copies, e.g. payment pay-000040)")
    assert "Set enable.idempotence=true" in message


@pytest.mark.parametrize("producer, run, expected", [
    ({"acks": 1}, failure(), "no record was lost this time, but only by luck: with acks=1"),
    (GOOD_PRODUCER, failure(min_isr=1), "min.insync.replicas=1 lets acks=all succeed with a single copy"),
    (GOOD_PRODUCER, failure(rf=2, min_isr=1), "Requirement (2)"),
    (GOOD_PRODUCER, failure(unclean_election=True), "unclean.leader.election.enable=true lets a replica"),
    ({"acks": "all"}, failure(), "no record was written twice this time, but only by luck"),
    (GOOD_PRODUCER, failure(partitions=2), "the topic has 2 partition(s): requirement (3)"),
], ids=["acks-1", "min-isr-1", "rf-2", "unclean", "no-idempotence", "two-partitions"])
def test_settings_that_were_only_lucky_are_refused(producer, run, expected):
    assert expected in diagnosis(run, producer)


# ------------------------------------------------------------------ step 2: what went wrong
ENDS = {0: 400, 1: 300, 2: 300}            # 1,000 records in three partitions


def group(first_upto=None, committed=None, second_from=None, end=None, **changes) -> GroupRun:
    """Consumer 1 processes each partition up to ``first_upto`` (exclusive) and crashes; the group
    has ``committed`` then; consumer 2 processes from ``second_from`` to the end; the group ends
    at ``end``. By default: a good run, consumer 1 crashed mid-batch (60 records uncommitted)."""
    first_upto = first_upto if first_upto is not None else {0: 400, 1: 60, 2: 0}
    committed = committed if committed is not None else {0: 400, 1: 0}
    second_from = second_from if second_from is not None else {p: committed.get(p, 0) for p in ENDS}
    processed = [(1, p, o) for p, upto in first_upto.items() for o in range(upto)]
    processed += [(2, p, o) for p, start in second_from.items() for o in range(start, ENDS[p])]
    run = GroupRun("ledger", auto_commit=False, offset_reset="earliest", ends=dict(ENDS), processed=processed,
                   first="crashed", second="done", committed_at_crash=committed,
                   committed_at_end=dict(ENDS) if end is None else end)
    for name, value in changes.items():
        setattr(run, name, value)
    return run


def group_diagnosis(run, **kwargs) -> str:
    with pytest.raises(LabCheckFailed) as failed:
        labchecks.diagnose_consumer_group(run, **kwargs)
    return str(failed.value)


def test_a_crash_that_repeats_only_uncommitted_work_passes_and_is_summed_up():
    run = group()
    labchecks.diagnose_consumer_group(run)
    summary = labchecks.group_summary(run)
    assert summary.to_dict("index") == {p: {"records": end, "committed offset": end, "processed": end}
                                        for p, end in ENDS.items()}
    assert summary.index.name == "partition"


def test_offsets_committed_before_processing_lose_records():
    run = group(first_upto={0: 400, 1: 60}, committed={0: 400, 1: 100}, auto_commit=True)
    message = group_diagnosis(run)
    assert message.startswith("40 records were never processed (e.g. partition 1 offset 60)")
    assert "partition 1: 100" in message and "enable.auto.commit is true (the default)" in message
    manual = group(first_upto={0: 400, 1: 60}, committed={0: 400, 1: 100})
    assert "committed a batch before processing all of it" in group_diagnosis(manual)


def test_a_new_group_at_latest_processes_nothing():
    run = group(first_upto={}, committed={}, second_from={}, first="timed out", offset_reset="latest")
    assert "'latest' means only records written from now on" in group_diagnosis(run)
    assert "Does your loop call process(record)" in group_diagnosis(group(first_upto={}, first="timed out"))


def test_a_loop_that_returns_before_running_is_false_is_caught():
    message = group_diagnosis(group(first_upto={0: 120}, first="returned"))
    assert message.startswith("consumer 1 stopped after 120 records, before its crash")
    assert "returned while running() was still True" in message
    assert "commit once per batch" in group_diagnosis(group(first_upto={0: 120}, first="timed out"))


def test_no_commit_before_the_crash_repeats_too_much():
    run = group(first_upto={0: 400, 1: 60}, committed={})
    message = group_diagnosis(run, max_repeated=100)
    assert message.startswith("consumer 2 processed again 460 records consumer 1 had processed but not committed")
    assert "it had committed nothing" in message and "at most 100 records" in message
    labchecks.diagnose_consumer_group(run, max_repeated=500)        # within the bound


def test_offsets_behind_the_end_are_caught():
    message = group_diagnosis(group(end={0: 400, 1: 240, 2: 300}))
    assert "partition 1: 240 of 300" in message and "Commit after processing the last batch" in message
    assert "partition 2: nothing committed of 300" in group_diagnosis(group(end={0: 400, 1: 300}))


def test_records_processed_twice_by_one_consumer_are_caught():
    run = group()
    run.processed.append((2, 2, 5))
    assert "the same consumer processed 1 record twice (e.g. partition 2 offset 5)" in group_diagnosis(run)
    replayed = group(second_from={0: 300, 1: 0, 2: 0})      # consumer 2 went back behind the commit
    assert "records whose offsets consumer 1 had committed" in group_diagnosis(replayed)


# ------------------------------------------------------------------ end to end, on a real cluster
@pytest.fixture(scope="module")
def cluster(stack):
    ec2, msk = stack.client("ec2"), stack.client("kafka")
    vpc = ec2.create_vpc(CidrBlock="10.12.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.12.{i}.0/24", AvailabilityZone=f"us-east-1{zone}")
               ["Subnet"]["SubnetId"] for i, zone in enumerate("abc")]
    arn = msk.create_cluster(ClusterName="lab11-checks", KafkaVersion="4.1.x.kraft", NumberOfBrokerNodes=3,
                             BrokerNodeGroupInfo={"InstanceType": "kafka.m7g.large",
                                                  "ClientSubnets": subnets})["ClusterArn"]
    try:
        assert wait_until(lambda: msk.describe_cluster(ClusterArn=arn)["ClusterInfo"]["State"] == "ACTIVE",
                          180, poll=0.5)
        yield arn
    finally:
        msk.delete_cluster(ClusterArn=arn)
        assert not msk.list_clusters(ClusterNameFilter="lab11-checks")["ClusterInfoList"]


@pytest.fixture(scope="module")
def produced(stack, cluster):
    """The lab's solution of step 1, checked: the topic 'payments' holds each payment once."""
    return labchecks.check_broker_failure(stack, cluster, "payments", GOOD_TOPIC, GOOD_PRODUCER,
                                          labchecks.payments())


def solution_loop(consumer, process, running):
    while running():
        records = consumer.consume(num_messages=100, timeout=0.5)
        for record in records:
            if record.error():
                raise KafkaException(record.error())
            process(record)
        if records:
            consumer.commit(asynchronous=False)


def auto_commit_loop(consumer, process, running):
    while running():
        for record in consumer.consume(num_messages=100, timeout=0.5):
            process(record)


def test_the_solution_survives_a_broker_crash_and_a_consumer_crash(stack, cluster, produced):
    assert produced["count"].to_dict() == {
        "records sent": 20_000, "acknowledged": 20_000, "delivery failed": 0, "in the topic once": 20_000,
        "in the topic more than once": 0, "missing from the topic": 0, "partitions offline during the failure": 0}
    summary = labchecks.check_consumer_group(stack, cluster, "payments", GOOD_CONSUMER, solution_loop)
    assert summary["records"].sum() == 20_000
    assert (summary["committed offset"] == summary["records"]).all()
    assert (summary["processed"] == summary["records"]).all()
    again = labchecks.check_consumer_group(stack, cluster, "payments", GOOD_CONSUMER, solution_loop)
    assert again.equals(summary)                          # the group of the first run was reset
    assert all(b["running"] for b in stack.local.kafka.brokers(cluster))


def test_auto_commit_loses_the_batch_in_progress_when_a_consumer_crashes(stack, cluster, produced):
    with pytest.raises(LabCheckFailed, match=r"records were never processed .*enable\.auto\.commit is true"):
        labchecks.check_consumer_group(stack, cluster, "payments", {"group.id": "ledger-auto",
                                                                    "auto.offset.reset": "earliest"},
                                       auto_commit_loop)


def test_acks_1_loses_acknowledged_records_when_the_leader_crashes(stack, cluster, produced):
    with pytest.raises(LabCheckFailed) as failed:
        labchecks.check_broker_failure(stack, cluster, "payments-acks-1", GOOD_TOPIC, {"acks": 1},
                                       labchecks.payments())
    message = str(failed.value)
    # Measured in every run so far (hundreds to thousands of records); were the crash ever to hit
    # a moment with nothing unreplicated, the check still refuses acks=1, as luck.
    assert ("records the brokers had acknowledged are not in the topic. With acks=1" in message
            or "only by luck: with acks=1" in message), message
    assert "Set acks=all" in message
    assert all(b["running"] for b in stack.local.kafka.brokers(cluster))   # the crashed broker is back
