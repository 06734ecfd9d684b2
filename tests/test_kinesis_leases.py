"""The KCL-style consumer of ``localaws/kinesis/leases.py`` against the local stack.

Workers split a stream's shards through a DynamoDB lease table; a crashed
worker's shards are taken once its leases expire on the frozen clock, and
only the batch it processed but did not checkpoint is read twice; parents
are read before their children; a conditional write lets only one worker
own a shard. Time moves with ``frozen.advance``, never with sleeps.
"""
from __future__ import annotations

import uuid
from collections import Counter

import pytest
from botocore.config import Config

from localaws.kinesis.leases import SHARD_END, LeaseConsumer


class Crash(Exception):
    """What a worker dying in the middle of a batch looks like to run_once."""


@pytest.fixture
def strict(stack):
    """A Kinesis client that shows throttles instead of retrying them."""
    return stack.client("kinesis", config=Config(retries={"total_max_attempts": 1}))


@pytest.fixture
def make_stream(strict):
    made = []

    def make(shards: int) -> str:
        name = f"t-lease-{uuid.uuid4().hex[:8]}"
        strict.create_stream(StreamName=name, ShardCount=shards)
        made.append(name)
        return name
    yield make
    for name in made:
        strict.delete_stream(StreamName=name)


@pytest.fixture
def app(stack):
    """A fresh application name (its lease table is deleted after the test)."""
    name = f"app-{uuid.uuid4().hex[:8]}"
    yield name
    dynamodb = stack.client("dynamodb")
    if name in dynamodb.list_tables()["TableNames"]:
        dynamodb.delete_table(TableName=name)


class Log:
    """What a worker's ``process`` received: ``(worker, shard, sequence, data)`` in order.
    ``crash_on``: the batch number (1-based, counted per worker) after which the worker dies."""

    def __init__(self):
        self.seen: list[tuple[str, str, str, str]] = []
        self.batches: dict[str, list[list[dict]]] = {}
        self.crash_on: dict[str, int] = {}

    def worker(self, stack, strict, stream: str, app: str, worker_id: str, **kwargs) -> LeaseConsumer:
        def process(shard_id, records):
            self.batches.setdefault(worker_id, []).append(records)
            self.seen += [(worker_id, shard_id, r["SequenceNumber"], r["Data"].decode()) for r in records]
            if len(self.batches[worker_id]) == self.crash_on.get(worker_id):
                raise Crash(worker_id)
        return LeaseConsumer(strict, stack.client("dynamodb"), stream, app, worker_id, process,
                             clock=stack.local.clock.monotonic, **kwargs)

    def data(self) -> Counter:
        return Counter(data for _, _, _, data in self.seen)


def put(strict, stream: str, items: list[str], key=lambda item: item) -> None:
    """PutRecords in batches of 500, every record accepted (asserted)."""
    for i in range(0, len(items), 500):
        chunk = items[i:i + 500]
        answer = strict.put_records(StreamName=stream, Records=[{"Data": d.encode(), "PartitionKey": key(d)}
                                                                 for d in chunk])
        assert answer["FailedRecordCount"] == 0


def owners(consumer: LeaseConsumer) -> dict[str, str]:
    table = consumer.leases()
    return dict(zip(table["leaseKey"], table["leaseOwner"]))


# ------------------------------------------------------------------ the table
def test_the_lease_table_is_made_on_first_use_named_after_the_application(stack, strict, make_stream, app, frozen):
    stream = make_stream(2)
    worker = Log().worker(stack, strict, stream, app, "w1")
    assert worker.run_once() == {"owned": 2, "records": 0, "checkpointed": 0, "taken": 2, "lost": 0,
                                 "throttled": 0, "blocked": 0}
    table = stack.client("dynamodb").describe_table(TableName=app)["Table"]
    assert table["KeySchema"] == [{"AttributeName": "leaseKey", "KeyType": "HASH"}]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    leases = worker.leases()
    assert list(leases.columns) == ["leaseKey", "leaseOwner", "leaseCounter", "checkpoint",
                                    "ownerSwitchesSinceCheckpoint", "parentShardId"]
    assert leases.to_dict("records") == [
        {"leaseKey": f"shardId-00000000000{i}", "leaseOwner": "w1", "leaseCounter": 1,
         "checkpoint": "TRIM_HORIZON", "ownerSwitchesSinceCheckpoint": 0, "parentShardId": ""} for i in range(2)]


# ------------------------------------------------------------------ sharing the shards
def test_two_workers_split_the_shards_and_each_record_is_processed_once(stack, strict, make_stream, app, frozen):
    stream = make_stream(4)
    log = Log()
    a, b = (log.worker(stack, strict, stream, app, w) for w in ("A", "B"))
    put(strict, stream, [f"early-{i}" for i in range(100)])
    assert a.run_once()["owned"] == 4                  # alone: every shard is A's
    put(strict, stream, [f"late-{i}" for i in range(100)])
    rounds = []
    for _ in range(3):
        frozen.advance(1)
        rounds.append((b.run_once(), a.run_once()))
    # B steals one lease a round from A (the busiest worker) until both hold their share, 2;
    # A learns of each theft when its renewal's condition fails
    assert [(rb["taken"], ra["lost"]) for rb, ra in rounds] == [(1, 1), (1, 1), (0, 0)]
    assert sorted(Counter(owners(a).values()).items()) == [("A", 2), ("B", 2)]
    assert b.totals["stolen"] == 2 and a.totals["lost"] == 2
    put(strict, stream, [f"after-{i}" for i in range(100)])
    frozen.advance(1)
    b.run_once(), a.run_once()
    seen = log.data()
    assert len(seen) == 300 and set(seen.values()) == {1}      # every record once: no duplicate
    by_worker = {w: {shard for who, shard, _, data in log.seen if who == w and data.startswith("after")}
                 for w in "AB"}
    assert by_worker["A"].isdisjoint(by_worker["B"]) and len(by_worker["A"] | by_worker["B"]) == 4
    assert all(c.isdigit() for c in a.leases()["checkpoint"])      # every shard checkpointed at a record


def test_a_crashed_workers_shards_are_taken_after_expiry_and_only_its_last_batch_is_replayed(
        stack, strict, make_stream, app, frozen):
    stream = make_stream(2)
    log = Log()
    a, b = (log.worker(stack, strict, stream, app, w, batch_limit=10) for w in ("A", "B"))
    a.run_once()
    frozen.advance(1)
    b.run_once()                                        # steals one shard
    frozen.advance(1)
    a.run_once()                                        # loses it: one shard each
    mine = {w: sorted(s for s, o in owners(a).items() if o == w) for w in "AB"}
    assert len(mine["A"]) == len(mine["B"]) == 1

    put(strict, stream, [f"r{i:03d}" for i in range(120)])
    log.crash_on["A"] = 2                               # A dies after processing its 2nd batch
    frozen.advance(1)
    with pytest.raises(Crash):
        a.run_once()
    crashed = log.batches["A"][-1]
    assert len(crashed) == 10
    checkpoint = a.leases().set_index("leaseKey").loc[mine["A"][0], "checkpoint"]
    assert checkpoint == log.batches["A"][0][-1]["SequenceNumber"]    # batch 1 checkpointed, batch 2 not
    del a                                               # A never comes back

    frozen.advance(1)
    assert b.run_once()["owned"] == 1                   # A's lease has not expired yet
    frozen.advance(9)
    assert b.run_once()["owned"] == 1                   # 9 s since B saw A's counter move: not yet
    frozen.advance(1)
    resumed = b.run_once()                              # 10 s: expired, B takes it from the checkpoint
    assert resumed["owned"] == 2 and resumed["taken"] == 1
    assert set(owners(b).values()) == {"B"}
    frozen.advance(1)
    b.run_once()                                        # 5 reads a second: the rest of the 60 records

    seen = log.data()
    assert set(seen) == {f"r{i:03d}" for i in range(120)}             # nothing lost
    replayed = {data for data, n in seen.items() if n > 1}
    assert replayed == {r["Data"].decode() for r in crashed}          # duplicates: exactly the crashed batch
    assert max(seen.values()) == 2 and sum(seen.values()) == 120 + len(crashed)


# ------------------------------------------------------------------ conditional writes
def test_of_two_workers_racing_for_a_lease_exactly_one_wins(stack, strict, make_stream, app, frozen):
    stream = make_stream(3)
    log = Log()
    a, b = (log.worker(stack, strict, stream, app, w) for w in ("A", "B"))
    a.run_once()
    a.shutdown()                                        # graceful: every lease free at once
    assert set(owners(a).values()) == {None}
    view = b.leases().to_dict("records")                # both workers read the same free leases...
    won = [(a.take(dict(lease)), b.take(dict(lease))) for lease in view]   # ...and both try to take them
    assert won == [(True, False)] * 3                   # the second write's condition (the counter) fails
    assert set(owners(a).values()) == {"A"} and b.totals["conflicts"] == 3 and not b.held


def test_a_worker_that_stalled_loses_its_lease_and_cannot_checkpoint(stack, strict, make_stream, app, frozen):
    stream = make_stream(1)
    log = Log()
    a, b = (log.worker(stack, strict, stream, app, w) for w in ("A", "B"))
    a.run_once()
    b.run_once()                                        # B sees A's counter: nothing to take
    frozen.advance(10)                                  # A stalls (a long GC pause) past the lease time
    assert b.run_once()["taken"] == 1
    put(strict, stream, ["x"])
    frozen.advance(1)
    woke = a.run_once()                                 # A's renewal is refused: it reads nothing
    assert woke["lost"] == 1 and woke["owned"] == 0 and woke["records"] == 0
    assert "A" not in log.batches and owners(a) == {"shardId-000000000000": "B"}
    assert b.leases()["ownerSwitchesSinceCheckpoint"].tolist() == [1]    # A -> B, no checkpoint since
    b.run_once()
    assert [w for w, *_ in log.seen] == ["B"] and b.leases()["ownerSwitchesSinceCheckpoint"].tolist() == [0]


# ------------------------------------------------------------------ throttling and resharding
def test_a_throttled_read_ends_the_round_and_the_next_round_goes_on(stack, strict, make_stream, app, frozen):
    stream = make_stream(1)
    put(strict, stream, [f"r{i}" for i in range(50)])
    log = Log()
    worker = log.worker(stack, strict, stream, app, "w", batch_limit=5)
    first = worker.run_once()                           # 5 GetRecords a second: 25 records, then refused
    assert (first["records"], first["checkpointed"], first["throttled"]) == (25, 25, 1)
    frozen.advance(1)
    second = worker.run_once()
    assert (second["records"], second["throttled"]) == (25, 1)     # the 6th call (caught up?) was refused
    frozen.advance(1)
    assert worker.run_once()["records"] == 0
    assert list(log.data()) == [f"r{i}" for i in range(50)] and set(log.data().values()) == {1}


def test_children_are_read_after_their_parents_so_each_key_keeps_its_order(stack, strict, make_stream, app, frozen):
    stream = make_stream(1)
    keys = [f"device-{k}" for k in range(4)]
    sent = []

    def send(phase, n):
        items = [f"{key}:{phase}{i}" for i in range(n) for key in keys]
        put(strict, stream, items, key=lambda item: item.split(":")[0])
        sent.extend(items)
    send("a", 5)                                        # 20 records in the first shard
    strict.split_shard(StreamName=stream, ShardToSplit="shardId-000000000000", NewStartingHashKey=str(2 ** 127))
    send("b", 3)                                        # into the two children
    strict.merge_shards(StreamName=stream, ShardToMerge="shardId-000000000001",
                        AdjacentShardToMerge="shardId-000000000002")
    send("c", 3)                                        # into their merged child
    log = Log()
    worker = log.worker(stack, strict, stream, app, "w", batch_limit=3)
    first = worker.run_once()
    assert first["owned"] == 4 and first["records"] == 15 and first["throttled"] == 1
    assert first["blocked"] == 3                        # the parent is not finished: no child is read
    rounds = [first]
    for _ in range(4):
        frozen.advance(1)
        rounds.append(worker.run_once())
    got = {key: [d for d in log.data() if d.startswith(key + ":")] for key in keys}
    assert got == {key: [d for d in sent if d.startswith(key + ":")] for key in keys}
    assert set(log.data().values()) == {1}
    table = worker.leases().set_index("leaseKey")
    assert table["checkpoint"].tolist()[:3] == [SHARD_END] * 3
    assert table["leaseOwner"].tolist()[:3] == [None] * 3           # finished leases are let go
    assert table["parentShardId"].tolist() == ["", "shardId-000000000000", "shardId-000000000000",
                                               "shardId-000000000001, shardId-000000000002"]
    order = [shard for _, shard, _, _ in log.seen]
    assert max(order.index(p) for p in ("shardId-000000000001", "shardId-000000000002")) < \
        order.index("shardId-000000000003") and order[0] == "shardId-000000000000"
