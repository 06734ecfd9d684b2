"""A KCL-style consumer: shard leases and checkpoints in a DynamoDB table.

Many workers read one stream together, none reading a shard another worker
reads, and a worker that dies hands its shards to the others where it
stopped. The Kinesis Client Library (KCL) does this with a **lease table**
in DynamoDB [1]; :class:`LeaseConsumer` is a small consumer that does what
KCL does, in plain boto3 (it takes a Kinesis and a DynamoDB client, so the
same code runs against AWS). It is not KCL: AWS's Python package,
``amazon-kclpy``, runs the Java KCL behind its MultiLangDaemon (a JVM and
the KCL jars, which this course does not install), so this module shows the
model in a page of Python instead.

**The lease table.** One table per application, named after it (KCL's
default [1]), on-demand capacity (KCL's default ``billingMode`` [2]), one
item per shard, with KCL's attribute names [1] [3]:

=================================  =====================================================
``leaseKey``                       the shard id: the table's hash key
``leaseOwner``                     the worker holding the lease (absent: nobody does)
``leaseCounter``                   a version number, raised by every write: how workers
                                   see that a lease is alive, or was taken from them
``checkpoint``                     where processing stands: the sequence number of the
                                   last record processed, ``TRIM_HORIZON`` (nothing yet)
                                   or ``SHARD_END`` (a closed shard, read to its end)
``checkpointSubSequenceNumber``    for KPL-aggregated records (always 0 here)
``ownerSwitchesSinceCheckpoint``   how often the lease changed hands since a checkpoint
``parentShardId``                  the shard's parents (a string set; KCL's Java field
                                   is ``parentShardIds``): a child is read only once
                                   every parent's checkpoint is ``SHARD_END``
=================================  =====================================================

**One round** (:meth:`LeaseConsumer.run_once`), what KCL's scheduler does on its timers:

1. *Shard sync*: ListShards; a shard without a lease gets one (``checkpoint``
   ``TRIM_HORIZON``, no owner), written only if absent
   (``attribute_not_exists(leaseKey)``), so two workers syncing at once make one.
2. *Renew*: for each lease it holds, the worker raises ``leaseCounter`` on
   condition that the counter is still the one it wrote and ``leaseOwner``
   still names it. A failed condition means another worker took the lease:
   the shard is dropped at once, before reading a record of it.
3. *Take*: a worker aims at its share, ``ceil(unfinished leases / live
   workers)``. It takes leases nobody owns and **expired** ones: a lease whose
   ``leaseCounter`` has not moved for ``lease_seconds`` of *this worker's*
   clock (KCL's ``failoverTimeMillis``, 10 s by default [2]): no clocks are
   compared across machines, only the counter. Short of its share with
   nothing free, it **steals** one lease from the busiest worker (KCL 2.x's
   ``maxLeasesToStealAtOneTime``, 1 by default [2] [3]); the victim learns
   it at its next renewal. Every take is a conditional write on the counter seen, so of two
   workers racing for a lease exactly one wins; the other gets
   ``ConditionalCheckFailedException`` and leaves it.
4. *Process*: each held shard is read from its checkpoint (GetShardIterator
   ``AFTER_SEQUENCE_NUMBER``, or ``TRIM_HORIZON``) with GetRecords until
   caught up (a batch shorter than ``batch_limit`` with ``MillisBehindLatest``
   0); each batch goes to ``process(shard_id, records)`` and **then** the
   checkpoint is written (again conditional on owner and counter). A crash
   between the two replays that batch: delivery is *at least once*, and the
   only duplicates are the records processed since the last checkpoint. A
   throttled read (``ProvisionedThroughputExceededException``) ends the
   shard's reading for this round; the next round goes on from the checkpoint.
5. *Shard end*: a closed shard read to its end (no ``NextShardIterator``) gets
   the checkpoint ``SHARD_END`` and its lease is given up; its children
   (``ChildShards``) get leases, and are read once all their parents are
   finished, so a partition key's records keep their order across splits and
   merges.

A worker must run rounds more often than ``lease_seconds``, or the others
will take its shards. :meth:`LeaseConsumer.shutdown` gives the leases up at
once (``leaseOwner`` removed), as KCL's graceful shutdown does. Time comes
from ``clock`` (``time.monotonic`` by default); a notebook passes the stack's
clock (``stack.local.clock.monotonic``) to expire leases without waiting.

**How it differs from KCL.** This is KCL 2.x's model: each worker balances
by lease count. KCL 3.x keeps the lease table and its conditional writes, but
balances by the workers' CPU use, with two more tables (worker metrics,
coordinator state) and a global secondary index on ``leaseOwner`` so that a
worker queries its leases instead of scanning [1] [2] [4]. Also not here:
KPL de-aggregation (sub-sequence numbers), enhanced fan-out, graceful handoff of a lease between two live
workers, deleting finished leases (KCL's ``cleanupLeasesUponShardCompletion``:
here a ``SHARD_END`` lease stays, to show), ``LATEST`` or ``AT_TIMESTAMP`` as
the initial position, and CloudWatch metrics. One thread does it all, in
rounds the caller drives, where KCL runs renewer, taker and shard consumers
on their own threads and timers.

[1] https://docs.aws.amazon.com/streams/latest/dev/kcl-dynamoDB.html
[2] https://docs.aws.amazon.com/streams/latest/dev/kcl-configuration.html
[3] KCL's source (github.com/awslabs/amazon-kinesis-client): ``DynamoDBLeaseSerializer`` for the
    attribute names, ``LeaseManagementConfig`` for the default of ``maxLeasesToStealAtOneTime``
[4] KCL 3.0 release notes (github.com/awslabs/amazon-kinesis-client-nodejs, v3.0.0)
"""
from __future__ import annotations

import math
import time
from typing import Callable

TRIM_HORIZON = "TRIM_HORIZON"
SHARD_END = "SHARD_END"
RENEW = "SET leaseCounter = leaseCounter + :one"        # every write raises the counter
RELEASE = RENEW + " REMOVE leaseOwner"


def _plain(item: dict) -> dict:
    """A DynamoDB item (``{"leaseCounter": {"N": "3"}, ...}``) as plain Python values."""
    out = {}
    for name, value in item.items():
        (kind, raw), = value.items()
        out[name] = int(raw) if kind == "N" else set(raw) if kind == "SS" else raw
    return out


class LeaseConsumer:
    """One worker of a KCL-style application reading ``stream_name`` (see the module docstring).

    ``process(shard_id, records)`` gets each batch as GetRecords returns it
    (``SequenceNumber``, ``Data``, ``PartitionKey``, ``ApproximateArrivalTimestamp``);
    raising from it is a crash: nothing more is checkpointed, and the batch is
    read again by whoever holds the lease next. To see throttling rather than
    have botocore retry it, give a Kinesis client made with
    ``Config(retries={"total_max_attempts": 1})``.

    ``held`` maps each shard this worker believes it holds to the ``leaseCounter``
    it last wrote; ``totals`` adds the rounds' counts up, with ``stolen`` (takes from
    a live worker) and ``conflicts`` (conditional writes refused).
    """

    def __init__(self, kinesis, dynamodb, stream_name: str, application_name: str, worker_id: str,
                 process: Callable[[str, list], None], *, lease_seconds: float = 10.0,
                 clock: Callable[[], float] = time.monotonic, batch_limit: int = 1000):
        self.kinesis, self.dynamodb = kinesis, dynamodb
        self.stream_name, self.table, self.worker_id = stream_name, application_name, worker_id
        self.process, self.lease_seconds, self.clock, self.batch_limit = process, lease_seconds, clock, batch_limit
        self.held: dict[str, int] = {}        # leaseKey -> the leaseCounter this worker last wrote
        self._seen: dict[str, tuple[int, float]] = {}   # leaseKey -> (leaseCounter, when it was first seen)
        self._table_ready = False
        self.totals = {"records": 0, "checkpointed": 0, "taken": 0, "stolen": 0, "lost": 0,
                       "conflicts": 0, "throttled": 0}

    # -- the round ------------------------------------------------------------------
    def run_once(self) -> dict:
        """One round: table, shard sync, renew, take, read and checkpoint. Returns its counts:
        ``owned`` (leases held after taking), ``records`` (given to ``process``),
        ``checkpointed`` (records covered by checkpoints written), and ``taken``,
        ``lost``, ``throttled`` (GetRecords calls refused), ``blocked`` (held shards
        waiting for a parent)."""
        self._ensure_table()
        self._sync_shards()
        leases = self._scan()
        round_ = {"owned": 0, "records": 0, "checkpointed": 0, "taken": 0, "lost": 0, "throttled": 0,
                  "blocked": 0}
        round_["lost"] = self._renew(leases)
        round_["taken"] = self._take_share(leases)
        round_["owned"] = len(self.held)
        for shard_id in sorted(self.held):
            self._read_shard(shard_id, leases, round_)
        for key in ("records", "checkpointed", "lost", "throttled"):
            self.totals[key] += round_[key]
        return round_

    def shutdown(self) -> None:
        """Give up every lease held (``leaseOwner`` removed), so others take them at once."""
        for shard_id in sorted(self.held):
            self._write(shard_id, RELEASE)
        self.held.clear()

    def leases(self):
        """The lease table as a DataFrame, one row per shard, sorted by ``leaseKey``."""
        import pandas as pd
        columns = ["leaseKey", "leaseOwner", "leaseCounter", "checkpoint", "ownerSwitchesSinceCheckpoint",
                   "parentShardId"]
        rows = sorted(self._scan().values(), key=lambda lease: lease["leaseKey"])
        frame = pd.DataFrame([{c: lease.get(c) for c in columns} for lease in rows], columns=columns)
        frame["parentShardId"] = [", ".join(sorted(p)) if p else "" for p in frame["parentShardId"]]
        return frame

    # -- the table ------------------------------------------------------------------
    def _ensure_table(self) -> None:
        """Create the lease table on first use (on demand, hash key ``leaseKey``), as KCL does."""
        if self._table_ready:
            return
        try:
            self.dynamodb.create_table(
                TableName=self.table, BillingMode="PAY_PER_REQUEST",
                AttributeDefinitions=[{"AttributeName": "leaseKey", "AttributeType": "S"}],
                KeySchema=[{"AttributeName": "leaseKey", "KeyType": "HASH"}])
        except self.dynamodb.exceptions.ResourceInUseException:
            pass                                   # another worker made it first
        self.dynamodb.get_waiter("table_exists").wait(TableName=self.table)
        self._table_ready = True

    def _scan(self) -> dict[str, dict]:
        """Every lease, by shard id (a consistent read), noting when each counter was first seen."""
        leases, start = {}, None
        while True:
            page = self.dynamodb.scan(TableName=self.table, ConsistentRead=True,
                                      **({"ExclusiveStartKey": start} if start else {}))
            for item in page["Items"]:
                lease = _plain(item)
                leases[lease["leaseKey"]] = lease
            start = page.get("LastEvaluatedKey")
            if not start:
                break
        now = self.clock()
        for key, lease in leases.items():
            if self._seen.get(key, (None,))[0] != lease["leaseCounter"]:
                self._seen[key] = (lease["leaseCounter"], now)
        return leases

    def _expired(self, lease: dict) -> bool:
        """Owned, but its counter has not moved for ``lease_seconds`` of this worker's clock."""
        _, since = self._seen[lease["leaseKey"]]
        return "leaseOwner" in lease and self.clock() - since >= self.lease_seconds

    def _new_lease(self, shard_id: str, parents: list[str]) -> None:
        item = {"leaseKey": {"S": shard_id}, "leaseCounter": {"N": "0"}, "checkpoint": {"S": TRIM_HORIZON},
                "checkpointSubSequenceNumber": {"N": "0"}, "ownerSwitchesSinceCheckpoint": {"N": "0"}}
        if parents:
            item["parentShardId"] = {"SS": sorted(parents)}
        try:
            self.dynamodb.put_item(TableName=self.table, Item=item,
                                   ConditionExpression="attribute_not_exists(leaseKey)")
        except self.dynamodb.exceptions.ConditionalCheckFailedException:
            pass                                   # it exists: made by us before, or by another worker

    def _sync_shards(self) -> None:
        """A lease for every shard ListShards reports (KCL's shard sync)."""
        known = set(self._seen)
        shards, token = [], None
        while True:
            page = (self.kinesis.list_shards(NextToken=token) if token
                    else self.kinesis.list_shards(StreamName=self.stream_name))
            shards += page["Shards"]
            token = page.get("NextToken")
            if not token:
                break
        for shard in shards:
            if shard["ShardId"] not in known:
                parents = [shard[k] for k in ("ParentShardId", "AdjacentParentShardId") if shard.get(k)]
                self._new_lease(shard["ShardId"], parents)

    def _write(self, shard_id: str, update: str, values: dict | None = None) -> int | None:
        """A conditional update of a lease this worker holds: it applies only if ``leaseOwner``
        is this worker and ``leaseCounter`` the one it last wrote. Returns the new counter, or
        None if another worker took the lease meanwhile (it is then dropped)."""
        try:
            answer = self.dynamodb.update_item(
                TableName=self.table, Key={"leaseKey": {"S": shard_id}}, UpdateExpression=update,
                ConditionExpression="leaseOwner = :me AND leaseCounter = :held",
                ExpressionAttributeValues={":me": {"S": self.worker_id}, ":held": {"N": str(self.held[shard_id])},
                                           ":one": {"N": "1"}, **(values or {})},
                ReturnValues="UPDATED_NEW")
        except self.dynamodb.exceptions.ConditionalCheckFailedException:
            self.held.pop(shard_id, None)
            self.totals["conflicts"] += 1
            return None
        new = int(answer["Attributes"]["leaseCounter"]["N"])
        self.held[shard_id] = new
        self._seen[shard_id] = (new, self.clock())
        return new

    # -- renew and take -------------------------------------------------------------
    def _renew(self, leases: dict) -> int:
        """Raise the counter of every lease held; returns how many were found taken."""
        lost = 0
        for shard_id in sorted(self.held):
            counter = self._write(shard_id, RENEW)
            if counter is None:
                lost += 1
            else:
                leases[shard_id]["leaseCounter"] = counter
        return lost

    def take(self, lease: dict) -> bool:
        """Take ``lease`` (as read from the table) if it is still as read: a conditional
        write on its ``leaseCounter``. False if another worker wrote it first."""
        shard_id, owner = lease["leaseKey"], lease.get("leaseOwner")
        update = RENEW + ", leaseOwner = :me"
        if owner and owner != self.worker_id:
            update += " ADD ownerSwitchesSinceCheckpoint :one"
        condition = "leaseCounter = :seen AND " + (
            "leaseOwner = :owner" if owner else "attribute_not_exists(leaseOwner)")
        values = {":me": {"S": self.worker_id}, ":one": {"N": "1"}, ":seen": {"N": str(lease["leaseCounter"])}}
        if owner:
            values[":owner"] = {"S": owner}
        try:
            answer = self.dynamodb.update_item(
                TableName=self.table, Key={"leaseKey": {"S": shard_id}}, UpdateExpression=update,
                ConditionExpression=condition, ExpressionAttributeValues=values, ReturnValues="ALL_NEW")
        except self.dynamodb.exceptions.ConditionalCheckFailedException:
            self.totals["conflicts"] += 1
            return False
        new = _plain(answer["Attributes"])
        lease.update(new)
        self.held[shard_id] = new["leaseCounter"]
        self._seen[shard_id] = (new["leaseCounter"], self.clock())
        self.totals["taken"] += 1
        return True

    def _take_share(self, leases: dict) -> int:
        """Take free and expired leases up to this worker's share; else steal one."""
        unfinished = [lease for lease in leases.values() if lease["checkpoint"] != SHARD_END]
        alive: dict[str, list] = {}
        for lease in unfinished:
            if "leaseOwner" in lease and not self._expired(lease):
                alive.setdefault(lease["leaseOwner"], []).append(lease)
        workers = set(alive) | {self.worker_id}
        target = math.ceil(len(unfinished) / len(workers))
        needed = target - len(self.held)
        if needed <= 0:
            return 0
        free = sorted((lease for lease in unfinished if lease["leaseKey"] not in self.held and
                       ("leaseOwner" not in lease or self._expired(lease))), key=lambda lease: lease["leaseKey"])
        taken = sum(self.take(lease) for lease in free[:needed])
        if free:
            return taken
        busiest = max((w for w in alive if w != self.worker_id), key=lambda w: (len(alive[w]), w), default=None)
        if busiest is not None and len(alive[busiest]) > target:
            victim = max(alive[busiest], key=lambda lease: lease["leaseKey"])
            if self.take(victim):
                self.totals["stolen"] += 1
                return 1
        return 0

    # -- read, process, checkpoint ----------------------------------------------------
    def _parents_done(self, lease: dict, leases: dict) -> bool:
        """Every parent finished (or unknown to the table: trimmed, or before our time)."""
        return all(leases.get(p, {}).get("checkpoint", SHARD_END) == SHARD_END
                   for p in lease.get("parentShardId", ()))

    def _read_shard(self, shard_id: str, leases: dict, round_: dict) -> None:
        lease = leases[shard_id]
        if lease["checkpoint"] == SHARD_END:
            return
        if not self._parents_done(lease, leases):
            round_["blocked"] += 1
            return
        position = ({"ShardIteratorType": TRIM_HORIZON} if lease["checkpoint"] == TRIM_HORIZON else
                    {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "StartingSequenceNumber": lease["checkpoint"]})
        iterator = self.kinesis.get_shard_iterator(StreamName=self.stream_name, ShardId=shard_id,
                                                   **position)["ShardIterator"]
        while iterator is not None and shard_id in self.held:
            try:
                page = self.kinesis.get_records(ShardIterator=iterator, Limit=self.batch_limit)
            except self.kinesis.exceptions.ProvisionedThroughputExceededException:
                round_["throttled"] += 1      # the shard's 5 reads/s are spent: next round
                return
            records, iterator = page["Records"], page.get("NextShardIterator")
            if records:
                self.process(shard_id, records)          # a crash here: the batch is read again
                round_["records"] += len(records)
                if self._checkpoint(shard_id, records[-1]["SequenceNumber"], lease) is None:
                    round_["lost"] += 1                  # taken meanwhile: the new owner replays
                    return
                round_["checkpointed"] += len(records)
            if iterator is None:
                self._finish(shard_id, page.get("ChildShards") or [], lease, leases)
            elif len(records) < self.batch_limit and page.get("MillisBehindLatest") == 0:
                return                                   # caught up: a short batch at the tip

    def _checkpoint(self, shard_id: str, checkpoint: str, lease: dict) -> int | None:
        """Write ``checkpoint`` (a sequence number or SHARD_END); None if the lease was taken."""
        counter = self._write(shard_id, RENEW + ", checkpoint = :cp, ownerSwitchesSinceCheckpoint = :zero",
                              {":cp": {"S": checkpoint}, ":zero": {"N": "0"}})
        if counter is not None:
            lease["checkpoint"] = checkpoint
        return counter

    def _finish(self, shard_id: str, children: list[dict], lease: dict, leases: dict) -> None:
        """A closed shard read to its end: checkpoint SHARD_END, leases for the children, let go."""
        if self._checkpoint(shard_id, SHARD_END, lease) is None:
            return
        for child in children:
            self._new_lease(child["ShardId"], child["ParentShards"])
        if self._write(shard_id, RELEASE) is not None:
            self.held.pop(shard_id, None)
