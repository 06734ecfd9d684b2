"""Checks for lab 11 (``labs/11_kafka``): what each step must achieve, and what to fix if not.

They live here, not in the lab's check cells, so that a check cell does not
show the answer. Each raises ``localaws.grading.LabCheckFailed`` with a
message for the learner. Both checks **measure**: none compares the
learner's settings with a hidden answer before it has seen what Kafka did
with them.

**Step 1 (a topic and a producer that survive a broker failure).**
:func:`run_broker_failure` creates the learner's topic, produces the
payments with the learner's producer settings and, a third of the way in,
crashes the broker that leads partition 0 (``stack.local.kafka.kill_broker``:
SIGKILL, no controlled shutdown; this check runs on the local stack only).
It keeps producing while the controller fences the broker and elects new
leaders, starts the broker again, and reads the whole topic back.
:func:`diagnose_broker_failure` then says what went wrong, measured first
(acknowledged records missing, partitions offline, writes refused,
deliveries given up, duplicates), then what only happened not to go wrong
this time (``acks=1`` that lost nothing by luck...).

**Step 2 (a consumer group that processes every record once).**
:func:`run_consumer_group` runs the learner's consumer loop twice in the
same group: consumer 1 crashes while processing a record (its ``process``
raises :class:`ConsumerCrashed`, and the check closes it as the crashed
process would be gone), consumer 2 takes over from the group's committed
offsets. :func:`diagnose_consumer_group` counts: every record processed, no
record processed twice except the work consumer 1 had not committed, and
the group's committed offsets at the end of every partition.
"""
from __future__ import annotations

import json
import logging
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from functools import partial

from localaws.core.waiting import wait_until
from localaws.grading import LabCheckFailed, check

from .client import partitions

#: The payments the producer sends (step 1) and the consumers process (step 2).
PAYMENTS = 20_000
SEED = 11

#: Seconds the killed broker stays down at most, while the producer goes on.
#: A healthy topic needs about 4: the controller fences a broker after 3 s
#: without heartbeats, then elects new leaders from the in-sync replicas.
OUTAGE_SECONDS = 15

#: Seconds to deliver what is left once the broker is back, and for a consumer.
FLUSH_SECONDS = 60
CONSUMER_SECONDS = 45

#: Consumer 2 is done when every record is processed, or when it has processed
#: nothing new for this long (the records it never gets stay missing).
IDLE_SECONDS = 10

#: Consumer 1 crashes while processing its record number CRASH_AFTER + 1.
CRASH_AFTER = 7_250

#: How many records a crash may make the group process a second time: the
#: work done since the last commit (a batch), not everything since the start.
MAX_REPEATED = 500

#: The group runs up to this many consumers at once: each needs a partition.
CONSUMERS = 3

CLIENT_BEST_PRACTICES = "https://docs.aws.amazon.com/msk/latest/developerguide/bestpractices-kafka-client.html"
READER_GROUP = "lab11-check-reader"


def quiet_logger() -> logging.Logger:
    """A logger that drops librdkafka's log lines (a killed broker makes every client complain
    on stderr, which a notebook would show). Give it as ``"logger"`` in a client's config."""
    logger = logging.getLogger("localaws.kafka.labchecks.librdkafka")
    if not logger.handlers:
        logger.addHandler(logging.NullHandler())
    logger.propagate = False
    return logger


# ------------------------------------------------------------------ the data
def payments(count: int = PAYMENTS, seed: int = SEED) -> list[dict]:
    """``count`` card payments, seeded: ``payment_id`` (``pay-000000``...), ``account``, ``amount_cents``.

    The account is the record's key: Kafka sends every payment of an account
    to the same partition, in order.
    """
    rng = random.Random(seed)
    return [{"payment_id": f"pay-{i:06d}", "account": f"acct-{rng.randrange(500):03d}",
             "amount_cents": rng.randrange(100, 50_000)} for i in range(count)]


def _number(payment_id: str) -> int:
    return int(payment_id.rsplit("-", 1)[1])


# ------------------------------------------------------------------ Kafka helpers
def bootstrap_brokers(stack, cluster_arn: str) -> str:
    return stack.client("kafka").get_bootstrap_brokers(ClusterArn=cluster_arn)["BootstrapBrokerString"]


def admin_client(bootstrap: str):
    from confluent_kafka.admin import AdminClient
    return AdminClient({"bootstrap.servers": bootstrap, "logger": quiet_logger()})


def _topic_exists(admin, topic: str) -> bool:
    return topic in admin.list_topics(timeout=10).topics


def _delete_topic(admin, topic: str) -> None:
    """Delete ``topic`` if it exists, and wait until the brokers no longer list it."""
    if not _topic_exists(admin, topic):
        return
    try:
        admin.delete_topics([topic])[topic].result()
    except Exception:        # already being deleted
        pass
    wait_until(lambda: not _topic_exists(admin, topic), 60, poll=0.2)


def _topic_config(admin, topic: str, timeout: float = 30) -> dict[str, str]:
    """The topic's effective settings. DescribeConfigs goes to any broker, and a broker
    learns a new topic a moment after the controller created it: until then it answers
    UNKNOWN_TOPIC_OR_PART, so ask again (within ``timeout``) rather than fail."""
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.admin import ConfigResource, ResourceType
    resource = ConfigResource(ResourceType.TOPIC, topic)
    entries: dict = {}

    def described() -> bool:
        try:
            entries.update(admin.describe_configs([resource])[resource].result())
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.UNKNOWN_TOPIC_OR_PART:
                raise
            return False
        return True
    check(wait_until(described, timeout, poll=0.2), f"the brokers do not know topic {topic!r} "
                                                     f"{timeout:.0f} s after it was created.")
    return {name: entry.value for name, entry in entries.items()}


def end_offsets(bootstrap: str, topic: str, ids: list[int]) -> dict[int, int]:
    """partition -> its end offset (the offset the next record will get)."""
    from confluent_kafka import Consumer, TopicPartition
    reader = Consumer({"bootstrap.servers": bootstrap, "group.id": READER_GROUP, "logger": quiet_logger()})
    try:
        return {p: reader.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in ids}
    finally:
        reader.close()


def read_topic(bootstrap: str, topic: str, ids: list[int], timeout: float = 60) -> list[tuple[int, int, bytes]]:
    """Every record of ``topic``: (partition, offset, value), read from the start of each partition."""
    from confluent_kafka import Consumer, TopicPartition
    reader = Consumer({"bootstrap.servers": bootstrap, "group.id": READER_GROUP, "enable.auto.commit": False,
                       "logger": quiet_logger()})
    records = []
    try:
        bounds = {p: reader.get_watermark_offsets(TopicPartition(topic, p), timeout=10) for p in ids}
        total = sum(high - low for low, high in bounds.values())
        reader.assign([TopicPartition(topic, p, low) for p, (low, _) in bounds.items()])
        deadline = time.monotonic() + timeout
        while len(records) < total and time.monotonic() < deadline:
            records += [(m.partition(), m.offset(), m.value()) for m in reader.consume(1000, 0.5) if not m.error()]
    finally:
        reader.close()
    return records


def committed_offsets(admin, group: str) -> dict[int, int]:
    """partition -> the group's committed offset (partitions without one are left out)."""
    from confluent_kafka import ConsumerGroupTopicPartitions
    found = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)])[group].result()
    return {tp.partition: tp.offset for tp in found.topic_partitions if tp.offset >= 0}


# ------------------------------------------------------------------ step 1: a broker failure
TOPIC_KEYS = {"num_partitions", "replication_factor", "config"}


def producer_settings(config: dict) -> dict:
    """What the producer will do, from its config and librdkafka's defaults (aliases resolved):
    ``acks`` (-1 = all), ``idempotence``, ``timeout_ms`` (delivery.timeout.ms), ``retries``."""
    def pick(*names, default):
        for name in names:
            if name in config:
                return config[name]
        return default

    acks = str(pick("acks", "request.required.acks", default="all")).strip().lower()
    idempotence = str(pick("enable.idempotence", default=False)).strip().lower() in ("true", "1")
    return {"acks": -1 if acks in ("all", "-1") else int(acks), "idempotence": idempotence,
            "timeout_ms": int(pick("delivery.timeout.ms", "message.timeout.ms", default=300_000)),
            "retries": int(pick("retries", "message.send.max.retries", default=2_147_483_647))}


def _acks(settings: dict) -> str:
    return "all" if settings["acks"] == -1 else str(settings["acks"])


@dataclass
class FailureRun:
    """What :func:`run_broker_failure` saw."""
    sent: int
    partitions: int
    replication_factor: int
    min_insync_replicas: int
    unclean_election: bool = False
    victim: int = -1
    acked: set = field(default_factory=set)                 # payment numbers acknowledged
    failed: dict = field(default_factory=dict)              # payment number -> error name
    pending_after_outage: int = 0                           # neither acknowledged nor failed when the outage ended
    offline: list = field(default_factory=list)             # partitions without a leader during the outage
    isr_during_outage: dict = field(default_factory=dict)   # partition -> in-sync replicas during the outage
    in_topic: Counter = field(default_factory=Counter)      # payment number -> copies in the topic


def _create_topic(admin, topic: str, topic_config: dict) -> None:
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import NewTopic

    check(isinstance(topic_config, dict) and set(topic_config) <= TOPIC_KEYS and "num_partitions" in topic_config,
          f"TOPIC_CONFIG should be a dict of NewTopic's arguments: num_partitions, replication_factor and "
          f"config (a dict of topic settings); got {topic_config!r}.")
    args = dict(topic_config)
    args["config"] = {str(k): str(v).lower() if isinstance(v, bool) else str(v)
                      for k, v in (topic_config.get("config") or {}).items()}
    _delete_topic(admin, topic)

    def create() -> bool:
        try:
            admin.create_topics([NewTopic(topic, **args)])[topic].result()
            return True
        except KafkaException as exc:
            error = exc.args[0]
            if error.name() == "TOPIC_ALREADY_EXISTS":       # the old one is still being deleted
                return False
            raise LabCheckFailed(f"Kafka refused to create the topic {topic!r} from TOPIC_CONFIG: "
                                 f"{error.name()}: {error.str()}") from None
    check(wait_until(create, 60, poll=0.5), f"the topic {topic!r} could not be created again within 60 s.")
    wanted = int(args["num_partitions"])
    check(settled_partitions(admin, topic, wanted),
          f"the topic {topic!r} was created but its {wanted} partitions did not all get a leader in 60 s.")


def settled_partitions(admin, topic: str, wanted: int, timeout: float = 60) -> list:
    """The topic's ``wanted`` partitions, each with a leader, once the broker asked knows them
    (each request may go to another broker, which learns new topics a moment later); [] if not
    within ``timeout``."""
    found = []

    def settled() -> bool:
        found[:] = partitions(admin, topic)
        return len(found) == wanted and all(p.leader >= 0 for p in found)
    return found if wait_until(settled, timeout, poll=0.2) else []


def run_broker_failure(stack, cluster_arn: str, topic: str, topic_config: dict, producer_config: dict,
                       records: list[dict]) -> FailureRun:
    """Create ``topic`` from ``topic_config``, produce ``records`` with ``producer_config`` and crash
    a broker a third of the way in; start it again, read the topic back, and report.

    In order: the first half of the records is queued; once a third is
    delivered, the broker that leads partition 0 is killed and the second
    half is queued; the broker stays down until every record is delivered
    or :data:`OUTAGE_SECONDS` have passed (the partitions' leaders and
    in-sync replicas are noted then); it is started again and the producer
    gets :data:`FLUSH_SECONDS` to deliver the rest; once every replica is
    back in sync, the whole topic is read.
    """
    from confluent_kafka import KafkaException, Producer

    check(isinstance(producer_config, dict), f"PRODUCER_CONFIG should be a dict of producer settings, "
                                             f"got {producer_config!r}.")
    boot = bootstrap_brokers(stack, cluster_arn)
    admin = admin_client(boot)
    _create_topic(admin, topic, topic_config)
    found = settled_partitions(admin, topic, int(topic_config["num_partitions"]))
    settings = _topic_config(admin, topic)
    run = FailureRun(sent=len(records), partitions=len(found), replication_factor=len(found[0].replicas),
                     min_insync_replicas=int(settings.get("min.insync.replicas", 1)),
                     unclean_election=settings.get("unclean.leader.election.enable") == "true",
                     victim=found[0].leader)
    try:
        producer = Producer({**producer_config, "bootstrap.servers": boot, "logger": quiet_logger()})
    except (KafkaException, TypeError, ValueError) as exc:
        raise LabCheckFailed(f"the Kafka client refused PRODUCER_CONFIG: {exc}") from None

    def delivered(number, err, msg):
        if err is None:
            run.acked.add(number)
        else:
            run.failed[number] = err.name()

    def done() -> int:
        return len(run.acked) + len(run.failed)

    def send(batch):
        for number, record in batch:
            value = json.dumps(record).encode()
            while True:
                try:
                    producer.produce(topic, key=record["account"].encode(), value=value,
                                     on_delivery=partial(delivered, number))
                    break
                except BufferError:                         # the client's queue is full: let it drain
                    producer.poll(0.05)
            producer.poll(0)

    numbered = [(_number(r["payment_id"]), r) for r in records]
    half, third = len(numbered) // 2, len(numbered) // 3
    killed = False
    try:
        send(numbered[:half])
        if not wait_until(lambda: (producer.poll(0.1), done() >= third)[1], FLUSH_SECONDS, poll=0):
            raise LabCheckFailed(f"with every broker up, the producer delivered {done():,} of the first "
                                 f"{third:,} records in {FLUSH_SECONDS} s: look at PRODUCER_CONFIG.")
        stack.local.kafka.kill_broker(cluster_arn, run.victim)
        killed = True
        send(numbered[half:])
        wait_until(lambda: (producer.poll(0.1), done() >= run.sent)[1], OUTAGE_SECONDS, poll=0)
        run.pending_after_outage = run.sent - done()
        during = partitions(admin, topic)
        run.offline = [p.id for p in during if p.leader < 0]
        run.isr_during_outage = {p.id: sorted(p.isrs) for p in during}
        stack.local.kafka.restart_broker(cluster_arn, run.victim)
        killed = False
        producer.flush(FLUSH_SECONDS)
        wait_until(lambda: (now := partitions(admin, topic)) and all(len(p.isrs) == len(p.replicas) for p in now),
                   FLUSH_SECONDS, poll=0.2)
    finally:
        if killed:
            stack.local.kafka.restart_broker(cluster_arn, run.victim)
        producer.purge()
        producer.flush(0)
    for _, _, value in read_topic(boot, topic, [p.id for p in found]):
        run.in_topic[_number(json.loads(value)["payment_id"])] += 1
    return run


def _records(count: int) -> str:
    return f"{count:,} record{'' if count == 1 else 's'}"


def _list(items) -> str:
    items = sorted(items)
    return ", ".join(str(i) for i in items[:8]) + (", ..." if len(items) > 8 else "")


def _errors(run: FailureRun, numbers) -> str:
    """The delivery errors of the payments ``numbers``, most frequent first: ``_MSG_TIMED_OUT x 12, ...``."""
    return ", ".join(f"{name} x {count:,}" for name, count in Counter(run.failed[n] for n in numbers).most_common())


def diagnose_broker_failure(run: FailureRun, producer_config: dict) -> None:
    """Raise :class:`LabCheckFailed` with what went wrong in ``run``, measured faults first, then
    the guarantees the settings do not give although this run was lucky; return if all is well."""
    producer = producer_settings(producer_config)
    everything = set(range(run.sent))
    missing = everything - set(run.in_topic)
    lost_acked = missing & run.acked
    gave_up = missing & set(run.failed)
    duplicated = {n: c for n, c in run.in_topic.items() if c > 1}
    victim = f"broker {run.victim}"

    if lost_acked:
        if producer["acks"] == 0:
            raise LabCheckFailed(
                f"{_records(len(lost_acked))} the producer counted as delivered are not in the topic. With acks=0 "
                f"the producer does not wait for any answer: what it sent to {victim} as it crashed was lost, "
                "and nobody knew. Set acks=all: the leader then answers only once the in-sync replicas have "
                "the record.")
        if producer["acks"] != -1:
            raise LabCheckFailed(
                f"{_records(len(lost_acked))} the brokers had acknowledged are not in the topic. With "
                f"acks={_acks(producer)} the leader acknowledges a record as soon as it is in its own log, "
                f"before any follower has copied it. When {victim} crashed, a follower that did not have them "
                f"became leader, and {victim} dropped them from its log when it came back. Set acks=all: the "
                "leader then answers only once the in-sync replicas have the record.")
        raise LabCheckFailed(
            f"{_records(len(lost_acked))} acknowledged with acks=all are not in the topic"
            + (": the topic allows unclean leader election (unclean.leader.election.enable=true), so a "
               "replica that was not in sync became leader. Leave it false."
               if run.unclean_election else f", although acks=all should have kept them on "
                                            f"min.insync.replicas={run.min_insync_replicas} brokers."))
    unsent = f" ({_records(len(gave_up))} of them never delivered: {_errors(run, gave_up)})" if gave_up else ""
    if run.offline:
        raise LabCheckFailed(
            f"while {victim} was down, partition(s) {_list(run.offline)} had no leader (offline): with "
            f"replication_factor={run.replication_factor} "
            + ("each partition is on one broker only, and theirs was on" if run.replication_factor == 1 else
               "no in-sync replica of theirs was left besides")
            + f" {victim}. {_records(run.pending_after_outage)} waited until it came back ({OUTAGE_SECONDS} s "
              f"here; on AWS, until MSK has repaired or restarted it){unsent}. Keep a replica in each Availability Zone: "
              "replication_factor=3 on a 3-AZ cluster.")
    short = {p: isr for p, isr in run.isr_during_outage.items() if len(isr) < run.min_insync_replicas}
    if short and (run.pending_after_outage or gave_up):
        sizes = sorted({len(isr) for isr in short.values()})
        raise LabCheckFailed(
            f"while {victim} was down the leaders refused writes: partition(s) {_list(short)} had "
            f"{' or '.join(map(str, sizes))} in-sync replica(s), fewer than min.insync.replicas="
            f"{run.min_insync_replicas}, so every acks=all write to them failed with NOT_ENOUGH_REPLICAS and "
            f"{_records(run.pending_after_outage)} waited until it came back ({OUTAGE_SECONDS} s here){unsent}. "
            f"With replication_factor={run.replication_factor}, a partition keeps "
            f"{run.replication_factor - 1} in-sync replica(s) while one broker is down: min.insync.replicas "
            f"must be at most {run.replication_factor - 1} for writes to go on, and at least 2 to keep two "
            "copies (requirement 2)"
            + (": so the topic needs three replicas." if run.replication_factor < 3 else "."))
    if gave_up:
        errors = Counter(run.failed[n] for n in gave_up)
        written = len(set(run.failed) & set(run.in_topic))
        also = (f" ({_records(written)} reported as failed are in the topic after all: a failed delivery "
                "report does not mean 'not written', so resending them by hand would duplicate them)"
                if written else "")
        if "_MSG_TIMED_OUT" in errors:
            cause = (f"delivery.timeout.ms={producer['timeout_ms']:,} ms gave up before the failover was over: "
                     "the controller needs 3 s to notice a dead broker, then elects new leaders. Give it at "
                     f"least 60 s (AWS's advice: {CLIENT_BEST_PRACTICES}), or leave the default.")
        elif set(errors) == {"_PURGE_QUEUE"}:
            cause = (f"They were still waiting {FLUSH_SECONDS} s after the broker came back: the brokers could "
                     "not take them (is the machine very busy?). Run the check again.")
        else:
            cause = (f"retries={producer['retries']} let the producer give up on the first error of the failover. "
                     f"Leave retries at its default (unlimited within delivery.timeout.ms; "
                     f"{CLIENT_BEST_PRACTICES}).")
        raise LabCheckFailed(f"the producer gave up on {_records(len(gave_up))} ({_errors(run, gave_up)}), "
                             f"which are not in the topic{also}. {cause}")
    if missing:
        raise LabCheckFailed(f"{_records(len(missing))} are not in the topic (e.g. payment "
                             f"pay-{min(missing):06d}), though the producer neither had them acknowledged "
                             "nor reported them failed. Was the topic deleted or written to by something else?")
    if duplicated:
        copies = sum(duplicated.values()) - len(duplicated)
        raise LabCheckFailed(
            f"{_records(len(duplicated))} are in the topic more than once ({copies:,} extra copies, e.g. "
            f"payment pay-{min(duplicated):06d}). When {victim} crashed, it had written some batches without "
            "the producer getting the acknowledgement; the producer sent them again to the new leader. "
            + ("Set enable.idempotence=true: the producer then numbers its batches and the broker drops a "
               "batch it already has." if not producer["idempotence"] else
               "enable.idempotence=true should have prevented that: is the producer restarted between sends?"))

    # Nothing went wrong this time; what would go wrong another time?
    if producer["acks"] != -1:
        raise LabCheckFailed(
            f"no record was lost this time, but only by luck: with acks={_acks(producer)} the leader "
            "acknowledges a record before its followers have it, and a crash at the wrong moment loses "
            "what it acknowledged last. Set acks=all.")
    if run.min_insync_replicas < 2:
        raise LabCheckFailed(
            f"no record was lost, but min.insync.replicas={run.min_insync_replicas} lets acks=all succeed with "
            "a single copy: while a broker is down (or a follower lags), the leader alone acknowledges, and its "
            "crash would lose those records. Requirement (2): every acknowledged record on at least two "
            "brokers. Set min.insync.replicas=2 in the topic's config.")
    if run.unclean_election:
        raise LabCheckFailed("no record was lost this time, but unclean.leader.election.enable=true lets a replica "
                             "that is not in sync become leader, dropping what it missed. Leave it false.")
    if not producer["idempotence"]:
        raise LabCheckFailed(
            "no record was written twice this time, but only by luck: without enable.idempotence=true, a batch "
            "the broker wrote but whose acknowledgement was lost is written again when the producer retries. "
            "Set enable.idempotence=true.")
    check(run.partitions >= CONSUMERS,
          f"the topic has {run.partitions} partition(s): requirement (3) is that up to {CONSUMERS} consumers of "
          "one group can each read a share, and a partition is read by one consumer of a group at a time. "
          f"Give it at least {CONSUMERS} (num_partitions).")


def failure_summary(run: FailureRun) -> "pd.DataFrame":
    """The run in numbers, one row each."""
    import pandas as pd

    counts = Counter(run.in_topic.values())
    rows = {"records sent": run.sent, "acknowledged": len(run.acked), "delivery failed": len(run.failed),
            "in the topic once": counts.get(1, 0),
            "in the topic more than once": sum(v for c, v in counts.items() if c > 1),
            "missing from the topic": run.sent - len(run.in_topic),
            "partitions offline during the failure": len(run.offline)}
    return pd.DataFrame({"count": rows})


def check_broker_failure(stack, cluster_arn: str, topic: str, topic_config: dict, producer_config: dict,
                         records: list[dict]) -> "pd.DataFrame":
    """Step 1: create the topic, produce ``records`` through a broker crash, count (local stack only)."""
    run = run_broker_failure(stack, cluster_arn, topic, topic_config, producer_config, records)
    diagnose_broker_failure(run, producer_config)
    return failure_summary(run)


# ------------------------------------------------------------------ step 2: a consumer group
class ConsumerCrashed(BaseException):
    """Raised by ``process`` to crash a consumer in the middle of its work.

    A ``BaseException``, like ``KeyboardInterrupt``, so that an ``except
    Exception`` in a consumer loop does not swallow the crash.
    """


@dataclass
class GroupRun:
    """What :func:`run_consumer_group` saw."""
    group: str
    auto_commit: bool
    offset_reset: str
    ends: dict                                            # partition -> end offset
    processed: list = field(default_factory=list)        # (consumer: 1 or 2, partition, offset), in order
    first: str = ""                                       # consumer 1: "crashed", "returned" or "timed out"
    second: str = ""                                      # consumer 2: "done", "returned" or "timed out"
    committed_at_crash: dict = field(default_factory=dict)
    committed_at_end: dict = field(default_factory=dict)


def _consumer_settings(config: dict) -> tuple[bool, str]:
    auto = str(config.get("enable.auto.commit", True)).strip().lower() in ("true", "1")
    reset = str(config.get("auto.offset.reset", "latest")).strip().lower()
    aliases = {"smallest": "earliest", "beginning": "earliest", "largest": "latest", "end": "latest"}
    return auto, aliases.get(reset, reset)


COORDINATOR_BUSY = {"NOT_COORDINATOR", "COORDINATOR_LOAD_IN_PROGRESS", "COORDINATOR_NOT_AVAILABLE"}


def _reset_group(admin, group: str) -> None:
    """Forget the group's committed offsets from an earlier run (delete the group if it exists)."""
    from confluent_kafka import KafkaException
    if group not in {g.group_id for g in admin.list_consumer_groups().result().valid}:
        return

    def delete() -> bool:
        try:
            admin.delete_consumer_groups([group])[group].result()
            return True
        except KafkaException as exc:
            error = exc.args[0]
            if error.name() == "NON_EMPTY_GROUP":
                raise LabCheckFailed(f"the group {group!r} still has a member (a consumer from an earlier run "
                                     "that was never closed): restart the kernel, or close it, and run the cell "
                                     "again.") from None
            if error.name() == "GROUP_ID_NOT_FOUND":
                return True
            if error.retriable() or error.name() in COORDINATOR_BUSY:     # the coordinator moves or loads
                return False
            raise
    check(wait_until(delete, 30, poll=0.5), f"the group {group!r} of an earlier run could not be deleted in 30 s.")


def run_consumer_group(stack, cluster_arn: str, topic: str, consumer_config: dict, run_consumer,
                       crash_after: int = CRASH_AFTER) -> GroupRun:
    """Run ``run_consumer(consumer, process, running)`` for two consumers of one group, one after the other.

    Consumer 1 crashes: its ``process`` raises :class:`ConsumerCrashed` when
    given its record number ``crash_after + 1``; the check then closes it (a
    crashed process commits nothing more, but the client's own automatic
    commit, if enabled, runs on close as it could have run at any moment).
    Consumer 2 joins the same group and starts from its committed offsets;
    its ``running()`` turns False once every record of the topic has been
    processed by one of the two. Each consumer gets at most
    :data:`CONSUMER_SECONDS`.
    """
    from confluent_kafka import Consumer, KafkaException

    check(isinstance(consumer_config, dict) and consumer_config.get("group.id"),
          f"CONSUMER_CONFIG should be a dict of consumer settings with a 'group.id' (the consumer group), "
          f"got {consumer_config!r}.")
    check(callable(run_consumer), "run_consumer should be a function run_consumer(consumer, process, running).")
    boot = bootstrap_brokers(stack, cluster_arn)
    admin = admin_client(boot)
    found = partitions(admin, topic)
    check(found, f"there is no topic {topic!r}: run step 1 first.")
    auto, reset = _consumer_settings(consumer_config)
    run = GroupRun(str(consumer_config["group.id"]), auto, reset, end_offsets(boot, topic, [p.id for p in found]))
    total = sum(run.ends.values())
    check(total > 0, f"the topic {topic!r} is empty: run step 1 first.")
    _reset_group(admin, run.group)
    covered: set = set()

    def consumer() -> "Consumer":
        try:
            made = Consumer({**consumer_config, "bootstrap.servers": boot, "logger": quiet_logger()})
        except (KafkaException, TypeError, ValueError) as exc:
            raise LabCheckFailed(f"the Kafka client refused CONSUMER_CONFIG: {exc}") from None
        made.subscribe([topic])
        return made

    def take(number, record):
        if record.error() is not None:
            raise LabCheckFailed(f"process() was given an error event ({record.error()}), not a record: skip "
                                 "what consume()/poll() returns with record.error() set (or raise it).")
        run.processed.append((number, record.partition(), record.offset()))
        covered.add((record.partition(), record.offset()))

    def close(c):
        try:
            c.close()
        except RuntimeError:            # the learner's loop closed it already
            pass

    for number in (1, 2):
        deadline = time.monotonic() + CONSUMER_SECONDS
        if number == 1:
            counted = [0]

            def process(record, counted=counted):
                if counted[0] >= crash_after:
                    raise ConsumerCrashed(f"consumer 1 crashed while processing partition {record.partition()} "
                                          f"offset {record.offset()}")
                take(1, record)
                counted[0] += 1

            def running():
                return time.monotonic() < deadline
        else:
            last = [time.monotonic()]

            def process(record, last=last):
                take(2, record)
                last[0] = time.monotonic()

            def running(last=last):
                now = time.monotonic()
                idle = run.processed and run.processed[-1][0] == 2 and now - last[0] > IDLE_SECONDS
                return len(covered) < total and now < deadline and not idle
        member = consumer()
        try:
            run_consumer(member, process, running)
            outcome = "returned" if time.monotonic() < deadline else "timed out"
            if number == 2 and len(covered) >= total:
                outcome = "done"
        except ConsumerCrashed:
            outcome = "crashed"
        finally:
            close(member)
        if number == 1:
            run.first = outcome
            run.committed_at_crash = committed_offsets(admin, run.group)
        else:
            run.second = outcome
            run.committed_at_end = committed_offsets(admin, run.group)
    return run


def diagnose_consumer_group(run: GroupRun, max_repeated: int = MAX_REPEATED) -> None:
    """Raise :class:`LabCheckFailed` with what went wrong in ``run``; return if every record was
    processed, repeats are only consumer 1's uncommitted work (at most ``max_repeated``), and the
    group's committed offsets are the partitions' end offsets."""
    first = [(p, o) for who, p, o in run.processed if who == 1]
    second = [(p, o) for who, p, o in run.processed if who == 2]
    if run.first != "crashed":
        if not first:
            raise LabCheckFailed(
                f"consumer 1 processed no record in {CONSUMER_SECONDS} s. "
                + (f"A new group starts where auto.offset.reset says: '{run.offset_reset}' means only records "
                   "written from now on, and the payments are already there. Set 'auto.offset.reset': 'earliest'."
                   if run.offset_reset != "earliest" else
                   "Does your loop call process(record) for every record consume() or poll() returns?"))
        raise LabCheckFailed(
            f"consumer 1 stopped after {_records(len(first))}, before its crash: your function "
            + ("returned while running() was still True: keep polling until running() is False (an empty poll "
               "means no record yet, not the end)." if run.first == "returned" else
               f"was still running after {CONSUMER_SECONDS} s: process the records faster (commit once per "
               "batch, not once per record)."))
    ends = run.ends
    everything = {(p, o) for p, end in ends.items() for o in range(end)}
    done = set(first) | set(second)
    missing = everything - done
    at_crash = run.committed_at_crash
    if missing:
        skipped = sorted(po for po in missing if po[1] < at_crash.get(po[0], 0))
        if skipped:
            p, o = skipped[0]
            how = ("enable.auto.commit is true (the default): the client commits the offsets of what poll() or "
                   "consume() returned, processed or not, in the background and when the consumer closes"
                   if run.auto_commit else
                   "the loop committed a batch before processing all of it")
            raise LabCheckFailed(
                f"{_records(len(missing))} were never processed (e.g. partition {p} offset {o}): consumer 1 crashed "
                f"before processing them, but the group's committed offset was already past them (partition {p}: "
                f"{at_crash[p]:,}), so consumer 2 started after them. {how}. Set 'enable.auto.commit': False and "
                "commit after processing: consumer.commit(asynchronous=False) once the batch is done.")
        if run.second == "timed out":
            raise LabCheckFailed(f"consumer 2 had not processed everything after {CONSUMER_SECONDS} s "
                                 f"({_records(len(missing))} left): does your loop keep polling while running() "
                                 "is True? Commit once per batch, not once per record: each synchronous commit is "
                                 "a round trip to the group coordinator.")
        p, o = min(missing)
        raise LabCheckFailed(
            f"{_records(len(missing))} were never processed (e.g. partition {p} offset {o}). "
            + (f"Consumer 1 committed nothing for partition {p}, and consumer 2 started at auto.offset.reset="
               f"'{run.offset_reset}', the end. Set 'auto.offset.reset': 'earliest'."
               if p not in at_crash and run.offset_reset != "earliest" else
               "Consumer 2 did not get them: does your function return only when running() is False?"))
    twice_by_one = sorted(entry for entry, count in Counter(run.processed).items() if count > 1)
    if twice_by_one:
        _, p, o = twice_by_one[0]
        raise LabCheckFailed(f"the same consumer processed {_records(len(twice_by_one))} twice (e.g. partition {p} "
                             f"offset {o}): process each record consume() or poll() returns once.")
    repeated = set(first) & set(second)
    uncommitted = {(p, o) for p, o in first if o >= at_crash.get(p, 0)}
    check(repeated <= uncommitted,
          "consumer 2 processed again records whose offsets consumer 1 had committed: it should start at the "
          "committed offsets (no seek() in the loop).")
    if len(repeated) > max_repeated:
        last = (f"its commits covered {sum(at_crash.values()):,} records" if at_crash else "it had committed nothing")
        raise LabCheckFailed(
            f"consumer 2 processed again {_records(len(repeated))} consumer 1 had processed but not committed "
            f"(consumer 1 crashed after {_records(len(first))}; {last}). A crash may repeat the batch in progress, "
            f"at most {max_repeated:,} records: commit after each batch you process.")
    behind = {p: (run.committed_at_end.get(p), end) for p, end in ends.items() if run.committed_at_end.get(p) != end}
    if behind:
        p, (have, end) = sorted(behind.items())[0]
        raise LabCheckFailed(
            f"every record was processed, but the group's committed offsets are not at the end of the topic "
            f"(partition {p}: {'nothing committed' if have is None else f'{have:,}'} of {end:,}): a consumer "
            "starting now would process them again. Commit after processing the last batch, before checking "
            "running() again.")


def group_summary(run: GroupRun) -> "pd.DataFrame":
    """Per partition: its records, the group's committed offset, and how many distinct records were processed."""
    import pandas as pd

    done = Counter(p for p, _ in {(p, o) for _, p, o in run.processed})
    frame = pd.DataFrame({"records": run.ends, "committed offset": run.committed_at_end, "processed": done})
    frame.index.name = "partition"
    return frame.sort_index().fillna(0).astype(int)


def check_consumer_group(stack, cluster_arn: str, topic: str, consumer_config: dict, run_consumer) -> "pd.DataFrame":
    """Step 2: two consumers of one group, the first crashing; every record processed, commits at the end."""
    run = run_consumer_group(stack, cluster_arn, topic, consumer_config, run_consumer)
    diagnose_consumer_group(run)
    return group_summary(run)
