"""Redshift's data plane: every cluster gets a real warehouse, and the Data API runs SQL on it.

moto keeps the *control plane* of Amazon Redshift (CreateCluster,
DescribeClusters, DeleteCluster, snapshots...) and answers the Redshift Data
API with three made-up rows whatever the SQL. This plane puts a real
database behind each cluster record:

- **CreateCluster** checks the request as Redshift does *before* moto records
  anything (a NodeType Redshift does not have, a multi-node cluster of one
  node), then builds the cluster's :class:`~.engine.Warehouse` and serves it
  with the PostgreSQL wire protocol (``wire.py``) on a real port: the
  cluster's ``Endpoint`` (DescribeClusters) is ``127.0.0.1`` and that port,
  so ``redshift_connector`` and psycopg connect to it as to a cluster on AWS.
- **PauseCluster** stops the server (connections are refused, the Data API
  refuses the cluster) and closes the database, keeping its file;
  **ResumeCluster** opens it again: the data is still there. As on AWS,
  you pay nothing for compute while paused and the endpoint stays the same.
- **DeleteCluster** stops the server and deletes the database. A paused
  cluster cannot be deleted (InvalidClusterState): resume it first.
- **Snapshots** (``snapshots.py``): manual ones (CreateClusterSnapshot) and
  *automated* ones, which a cluster with an ``AutomatedSnapshotRetentionPeriod``
  (1 day by default) gets every 8 hours of the stack's clock, through the same
  content-addressed code; expired automated snapshots are deleted, and so are
  all of a cluster's automated snapshots when the cluster is deleted.
- **ResizeCluster** (elastic, or ``Classic=True``) and **ModifyCluster** with
  ``NodeType`` and ``NumberOfNodes`` (classic) really move the rows to the new
  slices (``resize.py``); the cluster is ``resizing`` meanwhile and
  **DescribeResize** reports the progress. moto has neither operation: this
  plane answers them itself.
- The **Redshift Data API** (the ``redshift-data`` client) runs statements
  for real, asynchronously, as on AWS: ``ExecuteStatement`` returns an id at
  once; the statement goes ``SUBMITTED`` -> ``STARTED`` -> ``FINISHED`` |
  ``FAILED`` | ``ABORTED`` in a small pool of workers, and your code polls
  ``DescribeStatement`` and pages through ``GetStatementResult``. A SQL error
  is not an API error: the statement is ``FAILED`` and its ``Error`` holds the
  database's message. ``ListDatabases``/``ListSchemas``/``ListTables``/
  ``DescribeTable`` read the warehouse's catalog.

Differences from AWS that a learner can see are listed in
:data:`DIFFERENCES` (and repeated where they apply).
"""
from __future__ import annotations

import base64
import datetime
import decimal
import itertools
import json
import logging
import re
import shutil
import threading
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from localaws.core import Plane, local_hook, moto_hook, moto_property, not_emulated, operation
from localaws.core.waiting import wait_until
from . import errors, nodes
from .nodes import SLICES_PER_NODE
from .resize import MB, Progress

BACKEND = "moto.redshift.models:RedshiftBackend"
MAX_CLUSTERS = 4          # a guard for this machine (one DuckDB database of up to 1 GB each), not an AWS quota
MAX_ACTIVE = 50           # statements queued or running at once: a guard for this machine, not AWS's quota
PAGE_ROWS = 1000          # rows per GetStatementResult page (AWS pages by size; see DIFFERENCES)
WORKERS = 2               # Data API statements running at once, over all clusters
FIRST_PID = 1073741824    # Redshift's process ids are large numbers; ours count up from here
AUTOMATED_EVERY = 8 * 3600    # clock seconds between automated snapshots (AWS: "about every eight hours")
DAY = 24 * 3600
SLACK = 0.001                 # seconds: a snapshot due (or expiring) within a millisecond is due now

log = logging.getLogger(__name__)

DIFFERENCES = """\
- A BatchExecuteStatement with ExecutionMode AUTO_COMMIT stops at the first failure
  (the rest are ABORTED); the statements before it stay committed.
- CancelStatement interrupts every statement running on that cluster at that moment.
- GetStatementResult pages by row count (1000 rows a page), AWS by response size.
- One database per cluster (DBName); Database must name it.
- Automated snapshots come every 8 hours of the stack's clock (stack.local.clock); Redshift also
  takes one after every 5 GB per node of changed data, which is not emulated.
- While a resize moves rows, new statements wait until it commits (on AWS the cluster stays
  readable: read-only during a classic resize); an elastic resize takes no snapshot first.
"""

#: PostgreSQL type OID -> (the type name the Data API reports in ColumnMetadata, precision).
DATA_API_TYPES = {
    16: ("bool", 1), 21: ("int2", 5), 23: ("int4", 10), 20: ("int8", 19),
    700: ("float4", 8), 701: ("float8", 17), 1700: ("numeric", 38),
    1043: ("varchar", 65535), 25: ("text", 65535), 1042: ("bpchar", 4096),
    1082: ("date", 13), 1083: ("time", 15), 1114: ("timestamp", 29), 1184: ("timestamptz", 35),
}
INTEGER_OIDS, FLOAT_OIDS = {20, 21, 23}, {700, 701}
PARAMETER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


# --------------------------------------------------------------------------- clusters
class Cluster:
    """What runs behind one cluster record: its warehouse, and the wire server in front of it."""

    def __init__(self, identifier: str, database: str, user: str, password: str, work_dir: Path,
                 node_type: str, number_of_nodes: int):
        self.identifier, self.database = identifier, database
        self.user, self.password = user, password
        self.work_dir, self.node_type, self.number_of_nodes = work_dir, node_type, number_of_nodes
        self.warehouse = None
        self.server = None
        self.port: int | None = None
        self.paused = False
        self.lock = threading.RLock()
        self.slices: int | None = None          # after an elastic resize: the slice count it kept
        self.created = time.time()              # on the stack's clock (set by the plane)
        self.last_automated: float | None = None    # when the last automated snapshot was taken (clock)

    def open(self) -> None:
        """Open the warehouse (its file, if it exists, keeps the data) and serve it on the wire."""
        from .engine import Warehouse
        with self.lock:
            self.warehouse = Warehouse(self.identifier, self.database, self.user, self.password,
                                       self.work_dir, node_type=self.node_type,
                                       number_of_nodes=self.number_of_nodes, s3=getattr(self, "s3", None),
                                       glue=getattr(self, "glue", None), lake=getattr(self, "lake", None))
            if self.slices is not None and self.slices != self.warehouse.layout.count:
                from . import resize        # an elastically resized cluster: its file keeps its slices
                resize.adopt(self.warehouse, self.number_of_nodes, self.slices)
            self.server = _start_server(self.warehouse, self.port)
            if self.server is not None:
                self.port = self.server.port
            self.paused = False

    def close(self) -> None:
        """Stop the server and close the database (the file stays)."""
        with self.lock:
            server, warehouse, self.server, self.warehouse = self.server, self.warehouse, None, None
        if server is not None:
            server.stop()
        if warehouse is not None:
            try:
                warehouse.cancel()
            finally:
                warehouse.close()

    def delete(self) -> None:
        self.close()
        shutil.rmtree(self.work_dir, ignore_errors=True)


def _start_server(warehouse, port: int | None):
    """A started ``wire.WireServer`` for ``warehouse`` (on ``port`` again if it is free), or
    None while the wire protocol is not part of this checkout."""
    try:
        from .wire import WireServer
    except ImportError:
        return None
    for wanted in ([port, 0] if port else [0]):
        server = WireServer(warehouse, host="127.0.0.1", port=wanted)
        try:
            server.port = server.start()
            return server
        except OSError:            # the old port was taken meanwhile: any free one
            continue
    raise RuntimeError("could not start the cluster's wire server")


# --------------------------------------------------------------------------- statements
@dataclass
class Statement:
    """One Data API statement (or one SQL of a batch: then ``parent`` is the batch)."""
    id: str
    cluster: str
    region: str
    database: str
    db_user: str | None
    secret_arn: str | None
    sql: str
    parameters: list[dict] = field(default_factory=list)
    name: str | None = None
    with_event: bool = False
    pid: int = 0
    query_id: int = 0
    status: str = "SUBMITTED"
    error: str | None = None
    created: float = field(default_factory=time.time)
    updated: float = field(default_factory=time.time)
    started: float | None = None     # monotonic
    ended: float | None = None
    result: object = None            # engine.Result once FINISHED
    result_size: int = -1
    subs: list["Statement"] = field(default_factory=list)   # a batch's statements
    future: Future | None = None
    cancelled: bool = False
    autocommit: bool = False         # a batch with ExecutionMode AUTO_COMMIT (default: one transaction)

    @property
    def is_batch(self) -> bool:
        return bool(self.subs)

    @property
    def done(self) -> bool:
        return self.status in ("FINISHED", "FAILED", "ABORTED")

    def set(self, status: str, error: str | None = None) -> None:
        self.status, self.updated = status, time.time()
        if error is not None:
            self.error = error
        if status == "STARTED":
            self.started = time.monotonic()
        elif status in ("FINISHED", "FAILED", "ABORTED"):
            self.ended = time.monotonic()

    @property
    def duration_ns(self) -> int:
        if self.started is None or self.ended is None:
            return -1
        return int((self.ended - self.started) * 1e9)

    @property
    def has_result_set(self) -> bool:
        return self.result is not None and self.result.columns is not None

    @property
    def result_rows(self) -> int:
        if self.status != "FINISHED" or self.result is None:
            return -1
        return len(self.result.rows) if self.has_result_set else max(self.result.rowcount, 0)

    def describe(self) -> dict:
        """The fields DescribeStatement (and a batch's SubStatements) report."""
        out = {"Id": self.id, "Status": self.status, "CreatedAt": self.created, "UpdatedAt": self.updated,
               "Duration": self.duration_ns, "HasResultSet": self.has_result_set,
               "ResultRows": self.result_rows, "ResultSize": self.result_size,
               "RedshiftQueryId": self.query_id}
        if not self.is_batch:
            out["QueryString"] = self.sql
        if self.error is not None:
            out["Error"] = self.error
        return out


def to_positional(sql: str, parameters: list[dict]) -> tuple[str, list[str]]:
    """Rewrite the Data API's ``:name`` placeholders as the engine's ``$1, $2...``.

    Quoted strings, quoted identifiers, comments and ``::`` casts are left
    alone. Every placeholder needs a parameter and every parameter a
    placeholder (ValidationException otherwise); values stay strings, which
    Redshift casts to the type the statement needs.
    """
    values = {p["name"]: p["value"] for p in parameters}
    order: list[str] = []
    out, i, n = [], 0, len(sql)
    while i < n:
        c = sql[i]
        if c in ("'", '"'):
            end = i + 1
            while end < n and not (sql[end] == c and not (end + 1 < n and sql[end + 1] == c)):
                end += 2 if sql[end] == c else 1
            out.append(sql[i:end + 1])
            i = end + 1
        elif sql.startswith("--", i):
            end = sql.find("\n", i)
            end = n if end < 0 else end
            out.append(sql[i:end])
            i = end
        elif sql.startswith("/*", i):
            end = sql.find("*/", i + 2)
            end = n if end < 0 else end + 2
            out.append(sql[i:end])
            i = end
        elif sql.startswith("::", i):
            out.append("::")
            i += 2
        elif c == ":" and (m := PARAMETER.match(sql, i + 1)):
            name = m.group(0)
            if name not in values:
                raise errors.ValidationException(f"The parameter {name} is not provided in the parameter list.")
            if name not in order:
                order.append(name)
            out.append(f"${order.index(name) + 1}")
            i = m.end()
        else:
            out.append(c)
            i += 1
    unused = [name for name in values if name not in order]
    if unused:
        raise errors.ValidationException(f"The parameter {unused[0]} is not used in the SQL statement.")
    return "".join(out), [values[name] for name in order]


def field_of(value, oid: int) -> dict:
    """One value as a Data API ``Field``: longValue, doubleValue, booleanValue, stringValue or isNull."""
    if value is None:
        return {"isNull": True}
    if isinstance(value, bool):
        return {"booleanValue": value}
    if oid in INTEGER_OIDS and isinstance(value, int):
        return {"longValue": value}
    if oid in FLOAT_OIDS and isinstance(value, (int, float)):
        return {"doubleValue": float(value)}
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"blobValue": base64.b64encode(bytes(value)).decode()}
    if isinstance(value, datetime.datetime):
        return {"stringValue": value.isoformat(sep=" ")}
    if isinstance(value, (datetime.date, datetime.time, decimal.Decimal)):
        return {"stringValue": str(value)}        # numeric: a string, as Redshift sends it, never rounded
    return {"stringValue": str(value)}


def column_metadata(name: str, oid: int, table: str = "", schema: str = "", nullable: int = 1,
                    length: int = 0, scale: int = 0, precision: int | None = None,
                    default: str | None = None) -> dict:
    type_name, type_precision = DATA_API_TYPES.get(oid, ("varchar", 65535))
    meta = {"name": name, "label": name, "typeName": type_name, "nullable": nullable,
            "isCaseSensitive": oid in (1043, 25, 1042), "isCurrency": False,
            "isSigned": oid in INTEGER_OIDS | FLOAT_OIDS | {1700},
            "precision": precision if precision is not None else type_precision,
            "scale": scale, "length": length, "schemaName": schema, "tableName": table}
    if default is not None:
        meta["columnDefault"] = default
    return meta


def _page(items: list, params: dict, default_size: int) -> tuple[list, str | None]:
    """A page of ``items`` for ``NextToken``/``MaxResults`` (tokens are offsets, opaque to the caller)."""
    start = 0
    if params.get("NextToken"):
        try:
            start = int(base64.urlsafe_b64decode(params["NextToken"].encode()).decode())
        except ValueError:
            raise errors.ValidationException("The NextToken is not valid.") from None
    size = int(params.get("MaxResults") or default_size)
    end = start + size
    token = base64.urlsafe_b64encode(str(end).encode()).decode() if end < len(items) else None
    return items[start:end], token


def _like(pattern: str | None) -> re.Pattern:
    """A SQL LIKE pattern (``%``, ``_``) as a regex; None matches everything."""
    if not pattern:
        return re.compile(".*", re.S)
    return re.compile("".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern) + r"\Z",
                      re.S)


# --------------------------------------------------------------------------- resizes and retention
@dataclass
class ResizeJob:
    """One resize of a cluster; DescribeResize reports the cluster's last one."""
    node_type: str
    nodes: int
    classic: bool
    status: str = "IN_PROGRESS"              # then SUCCEEDED or FAILED
    message: str | None = None
    progress: Progress = field(default_factory=Progress)
    started: float = field(default_factory=time.monotonic)
    ended: float | None = None
    thread: threading.Thread | None = None

    def describe(self) -> dict:
        """DescribeResize's fields (API reference, DescribeResize); sizes are the rows moved, in MB."""
        p = self.progress
        seconds = (self.ended if self.ended is not None else time.monotonic()) - self.started
        moved = p.bytes_moved / MB
        out = {"TargetNodeType": self.node_type, "TargetNumberOfNodes": self.nodes,
               "TargetClusterType": "multi-node" if self.nodes > 1 else "single-node",
               "Status": self.status, "ResizeType": "ClassicResize" if self.classic else "ElasticResize",
               "ImportTablesCompleted": list(p.completed), "ImportTablesInProgress": list(p.in_progress),
               "ImportTablesNotStarted": list(p.not_started), "ProgressInMegaBytes": int(moved),
               "ElapsedTimeInSeconds": int(seconds),
               "AvgResizeRateInMegaBytesPerSecond": round(moved / seconds, 3) if seconds > 0 else 0.0}
        if self.status == "SUCCEEDED":
            out.update(TotalResizeDataInMegaBytes=int(moved), EstimatedTimeToCompletionInSeconds=0,
                       DataTransferProgressPercent=100.0)
        if self.message:
            out["Message"] = self.message
        return out


def _check_retention(node_type: str | None, days) -> int:
    """AutomatedSnapshotRetentionPeriod, checked as the API reference states it: 0 to 35 days
    (default 1); 0 disables automated snapshots, which RA3 (and RG) clusters cannot do ("You can't
    disable automated snapshots for RG or RA3 node types"). The error codes are this stand-in's
    choice: the reference does not give them."""
    if days is None:
        return 1
    days = int(days)
    if not 0 <= days <= 35:
        raise errors.InvalidParameterValue("AutomatedSnapshotRetentionPeriod must be a value from 0 to 35.")
    if days == 0 and (node_type or "").startswith(("ra3.", "rg.")):
        raise errors.InvalidParameterCombination(
            "You can't disable automated snapshots for RA3 node types. Set the automated retention "
            "period from 1-35 days.")
    return days


def _query_answer(operation: str, result: dict):
    """A Query-protocol (XML) answer to a Redshift operation moto lacks, written by moto's own
    serializer from botocore's model of the operation (as moto writes the ones it has)."""
    from moto.core.serialize import XFormedAttributePicker, get_serializer_class
    from moto.core.utils import get_service_model

    model = get_service_model("redshift").operation_model(operation)
    serializer = get_serializer_class("redshift", "query")(operation_model=model,
                                                          value_picker=XFormedAttributePicker())
    answer = serializer.serialize(result)
    return answer["status_code"], answer["headers"], answer["body"]


# --------------------------------------------------------------------------- the plane
class RedshiftPlane(Plane):
    """Warehouses behind Redshift clusters, the wire protocol on their endpoints, the Data API on them."""

    name = "redshift"
    services = ("redshift", "redshift-data")

    def __init__(self, ctx):
        super().__init__(ctx)
        self.lock = threading.RLock()
        self.clusters: dict[tuple[str, str], Cluster] = {}       # (region, identifier)
        self.statements: dict[str, Statement] = {}
        self.tokens: dict[str, str] = {}                         # ClientToken -> statement id
        self._pool: ThreadPoolExecutor | None = None             # started by the first statement
        self._pids = itertools.count(FIRST_PID)
        self._query_ids = itertools.count(1000)
        self._snapshot_lock = threading.Lock()                   # one snapshot write or delete at a time
        self._stores: dict = {}                                  # region -> snapshots.SnapshotStore
        self._restores: dict[tuple[str, str], dict] = {}         # (region, cluster) -> RestoreStatus
        self._resizes: dict[tuple[str, str], ResizeJob] = {}     # (region, cluster) -> its last resize
        # The automated-snapshot scheduler: one thread waiting on the stack's clock (Clock.watch/wait).
        self._tick = threading.Condition()
        self._scheduler: threading.Thread | None = None
        self._stopping = False
        self._sweep_requested = False
        self._swept = float("-inf")              # the clock time the scheduler last caught up to
        self._epoch = ctx.clock.time() - ctx.clock.monotonic()    # see _clock_time

    @property
    def pool(self) -> ThreadPoolExecutor:
        with self.lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="redshift-data")
            return self._pool

    def stop(self):
        self._stop_scheduler()
        for job in list(self._resizes.values()):          # a resize ends (commits or rolls back) first
            if job.thread is not None:
                job.thread.join(timeout=120)
        with self.lock:
            statements = [s for s in self.statements.values() if not s.done]
            clusters, self.clusters = list(self.clusters.values()), {}
            pool, self._pool = self._pool, None
        for st in statements:
            st.cancelled = True
        for cluster in clusters:
            cluster.close()
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        for cluster in clusters:
            cluster.delete()

    # -- control plane hooks ------------------------------------------------------
    @moto_hook(f"{BACKEND}.create_cluster")
    def create_cluster(self, original, backend, **kwargs):
        identifier = kwargs["cluster_identifier"]
        kwargs["number_of_nodes"] = _check_cluster_shape(kwargs.get("node_type"), kwargs.get("cluster_type"),
                                                         kwargs.get("number_of_nodes"))
        retention = _check_retention(kwargs.get("node_type"), kwargs.get("automated_snapshot_retention_period"))
        region = backend.region_name
        with self.lock:
            if (region, identifier) not in self.clusters and len(self.clusters) >= MAX_CLUSTERS:
                raise errors.ClusterQuotaExceededFault(
                    f"This local stand-in runs at most {MAX_CLUSTERS} clusters at once (one database each); "
                    "delete one first (DeleteCluster).")
        record = original(backend, **kwargs)        # ClusterAlreadyExists comes from here
        record.automated_snapshot_retention_period = retention      # moto turns 0 into 1
        record.create_time = self._now()
        cluster = Cluster(identifier, record.db_name, record.master_username, record.master_user_password,
                          Path(self.ctx.work_dir) / "redshift" / region / identifier,
                          record.node_type, record.number_of_nodes)
        cluster.created = self._clock_time()
        cluster.s3 = lambda: self.ctx.client("s3")          # what COPY reads and UNLOAD writes through
        # Spectrum's Data Catalog: Glue in the cluster's Region, or the one CREATE EXTERNAL SCHEMA names.
        cluster.glue = lambda named=None: self._glue_in(named or region)
        # Lake Formation: what the external schema's IAM role may read of a governed table (spectrum.py).
        cluster.lake = getattr(self.ctx, "lake", None)
        try:
            cluster.open()
        except BaseException:
            backend.clusters.pop(identifier, None)          # nothing half-made
            backend.delete_automated_snapshots(identifier)
            cluster.delete()
            raise
        with self.lock:
            self.clusters[(region, identifier)] = cluster
        if cluster.port is not None:
            record.port = cluster.port
        if not kwargs.get("restored_from_snapshot"):     # a restore takes its first one once loaded
            self._first_automated(backend, cluster)
        return record

    @moto_property("moto.redshift.models:Cluster.address")
    def address(self, original, record):
        """A cluster this plane runs is reached on this machine."""
        return "127.0.0.1" if (record.region, record.cluster_identifier) in self.clusters else original(record)

    @moto_hook(f"{BACKEND}.pause_cluster")
    def pause_cluster(self, original, backend, cluster_id):
        record = backend.clusters.get(cluster_id)
        if record is not None and record.status != "available":
            raise errors.InvalidClusterStateFault(
                f"You can't pause cluster {cluster_id} because it is in the {record.status} state.")
        record = original(backend, cluster_id)
        cluster = self._cluster(backend.region_name, cluster_id)
        if cluster is not None:
            self._abort_running(cluster, "The cluster was paused.")
            cluster.close()
            cluster.paused = True
        return record

    @moto_hook(f"{BACKEND}.resume_cluster")
    def resume_cluster(self, original, backend, cluster_id):
        record = backend.clusters.get(cluster_id)
        if record is not None and record.status != "paused":
            raise errors.InvalidClusterStateFault(
                f"You can't resume cluster {cluster_id} because it is in the {record.status} state.")
        cluster = self._cluster(backend.region_name, cluster_id)
        if cluster is not None:
            cluster.open()                         # same file: the data is kept
        record = original(backend, cluster_id)
        self._poke()                               # an automated snapshot may have fallen due meanwhile
        if cluster is not None and cluster.port is not None:
            record.port = cluster.port
        return record

    @moto_hook(f"{BACKEND}.delete_cluster")
    def delete_cluster(self, original, backend, **kwargs):
        identifier = kwargs["cluster_identifier"]
        record = backend.clusters.get(identifier)
        if record is not None and record.status == "paused":
            raise errors.InvalidClusterStateFault(
                f"You can't delete cluster {identifier} because it is paused. Resume it first (ResumeCluster).")
        if record is not None and record.status == "resizing":
            raise errors.InvalidClusterStateFault(
                f"You can't delete cluster {identifier} while it is resizing: wait until it is available.")
        record = original(backend, **kwargs)       # ClusterNotFound, the final snapshot rules: moto's
        with self.lock:
            cluster = self.clusters.pop((backend.region_name, identifier), None)
        if cluster is not None:
            self._abort_running(cluster, "The cluster was deleted.")
            cluster.delete()
        self._resizes.pop((backend.region_name, identifier), None)
        return record

    def _cluster(self, region: str, identifier: str) -> Cluster | None:
        with self.lock:
            return self.clusters.get((region, identifier))

    def _abort_running(self, cluster: Cluster, reason: str) -> None:
        with self.lock:
            active = [s for s in self.statements.values()
                      if s.cluster == cluster.identifier and not s.done]
        for st in active:
            st.cancelled = True
            st.error = st.error or reason
        if active and cluster.warehouse is not None:
            cluster.warehouse.cancel()
        for st in active:
            if st.future is not None:
                wait_until(future=st.future, timeout=30)

    # -- snapshots (snapshots.py) ---------------------------------------------------------
    # moto keeps the snapshot records; these hooks store and load the data behind them.
    def _snapshot_store(self, region: str):
        """The region's snapshot bucket (``snapshots.SnapshotStore``), made on first use."""
        from . import snapshots
        with self.lock:
            if region not in self._stores:
                self._stores[region] = snapshots.SnapshotStore(self.ctx.s3, self.ctx.account_id, region,
                                                               lambda: self._s3_in(region))
            return self._stores[region]

    def _s3_in(self, region: str):
        """An S3 client signing for ``region``: S3 creates a bucket in the region its request names."""
        if region == self.ctx.region:
            return self.ctx.client("s3")
        import boto3
        c = self.ctx.principals.credentials(None)
        return boto3.session.Session().client(
            "s3", endpoint_url=self.ctx.endpoint, region_name=region, aws_access_key_id=c.access_key,
            aws_secret_access_key=c.secret_key, aws_session_token=c.session_token)

    def _glue_in(self, region: str):
        """A Glue client of ``region`` (the stack's shared client for its own Region)."""
        if region == self.ctx.region:
            return self.ctx.client("glue")
        return self.ctx.client("glue", region_name=region)

    @moto_hook(f"{BACKEND}.create_cluster_snapshot")
    def create_cluster_snapshot(self, original, backend, cluster_identifier, snapshot_identifier, region_name,
                                tags, snapshot_type="manual"):
        """CreateClusterSnapshot, DeleteCluster's final snapshot and the automated ones: blocks to S3.

        moto records the snapshot (ClusterNotFound, ClusterSnapshotAlreadyExists
        come from it), stamped with the stack's clock; then the warehouse is
        read in one transaction and its new blocks uploaded (``snapshots.py``).
        The sizes go on the record, and with EnableSnapshotCopy on, the
        snapshot is copied to the other region. Automated snapshots
        (``_take_automated``) come through here too: the same blocks, so the
        same honest incremental sizes.
        """
        from . import snapshots
        region = backend.region_name
        cluster = self._cluster(region, cluster_identifier)
        if snapshot_type == "automated" and cluster is None:
            # moto's own automated snapshot inside CreateCluster, before the warehouse exists:
            # not recorded; this plane takes the cluster's first one once it runs (_first_automated).
            return None
        if cluster is not None and cluster.paused:
            raise errors.InvalidClusterStateFault(
                f"The cluster {cluster_identifier} is paused: this local stand-in snapshots running "
                "clusters only. Resume it first (ResumeCluster).")
        record = original(backend, cluster_identifier, snapshot_identifier, region_name, tags,
                          snapshot_type=snapshot_type)
        record.create_time = self._now()
        # A restore keeps the source cluster's retention period unless it names one (API reference).
        record.automated_retention_days = backend.clusters[cluster_identifier].automated_snapshot_retention_period
        warehouse = cluster.warehouse if cluster is not None else None
        if warehouse is None:
            # A cluster moto has and this plane does not run: it holds nothing (no manifest;
            # a restore of it is an empty cluster).
            snapshots.Written(0, 0, 0, 0, 0.0).apply(record)
            return record
        record.status = "creating"
        store = self._snapshot_store(region)
        about = {"cluster": cluster_identifier, "region": region, "database": warehouse.database,
                 "node_type": warehouse.node_type, "number_of_nodes": warehouse.number_of_nodes,
                 "slices": warehouse.layout.count, "created": time.time()}
        try:
            with self._snapshot_lock:
                store.save(snapshots.read_cluster(warehouse), snapshot_identifier, about).apply(record)
                copy = getattr(backend.clusters.get(cluster_identifier), "cluster_snapshot_copy_status", None)
                if copy:
                    self._copy_snapshot(backend, record, copy["DestinationRegion"])
        except BaseException:
            backend.snapshots.pop(snapshot_identifier, None)       # nothing half-made
            try:
                with self._snapshot_lock:
                    store.delete(snapshot_identifier)
            except Exception:
                pass
            raise
        record.status = "available"
        return record

    def _copy_snapshot(self, backend, record, destination: str) -> None:
        """EnableSnapshotCopy's work: blocks and manifest to the destination region's bucket, and a
        snapshot record there (same identifier, ``SourceRegion`` set) that a restore in that region finds."""
        from moto.redshift.models import Snapshot, redshift_backends
        written = self._snapshot_store(backend.region_name).copy_to(self._snapshot_store(destination),
                                                                    record.snapshot_identifier)
        source = backend.clusters[record.cluster_identifier]
        copy = Snapshot(source, record.snapshot_identifier,
                        backend.account_id, destination, tags=None, snapshot_type=record.snapshot_type)
        copy.source_region = backend.region_name
        copy.create_time = record.create_time
        copy.automated_retention_days = getattr(record, "automated_retention_days", None)
        # An automated snapshot's copy is kept for the copy's own RetentionPeriod (7 days by default).
        copy.copy_retention_days = int((source.cluster_snapshot_copy_status or {}).get("RetentionPeriod") or 7)
        written.apply(copy)
        redshift_backends[backend.account_id][destination].snapshots[record.snapshot_identifier] = copy

    @moto_hook(f"{BACKEND}.restore_from_cluster_snapshot")
    def restore_from_cluster_snapshot(self, original, backend, **kwargs):
        """RestoreFromClusterSnapshot: a new cluster (CreateCluster's path: warehouse and endpoint),
        then the manifest's tables loaded from their blocks. A failed load leaves no cluster."""
        from . import snapshots
        snapshot_id, region = kwargs.get("snapshot_identifier"), backend.region_name
        snapshot = backend.snapshots.get(snapshot_id)
        if snapshot is None:
            raise errors.ClusterSnapshotNotFoundFault(f"Snapshot {snapshot_id} not found.")
        if snapshot.status != "available":
            raise errors.InvalidClusterSnapshotStateFault(
                f"Snapshot {snapshot_id} is {snapshot.status}; a restore needs an available snapshot.")
        # The snapshot's size, or the one asked for, in the shape CreateCluster accepts.
        count = int(kwargs.get("number_of_nodes") or snapshot.number_of_nodes or 1)
        if kwargs.get("automated_snapshot_retention_period") is None:      # the source cluster's period
            inherited = getattr(snapshot, "automated_retention_days", None)
            node_type = kwargs.get("node_type") or snapshot.node_type
            kwargs["automated_snapshot_retention_period"] = (
                1 if inherited == 0 and node_type.startswith(("ra3.", "rg.")) else inherited)
        kwargs["cluster_type"] = "multi-node" if count > 1 else "single-node"
        kwargs["number_of_nodes"] = count if count > 1 else None
        store = self._snapshot_store(region)
        manifest = store.manifest(snapshot_id)
        started = time.monotonic()
        record = original(backend, **kwargs)        # -> create_cluster above: ClusterAlreadyExists, shapes...
        identifier = record.cluster_identifier
        cluster = self._cluster(region, identifier)
        if manifest is not None and cluster is not None and cluster.warehouse is not None:
            try:
                snapshots.restore(cluster.warehouse, manifest, store)
            except BaseException:
                with self.lock:
                    self.clusters.pop((region, identifier), None)
                backend.clusters.pop(identifier, None)
                backend.delete_automated_snapshots(identifier)
                cluster.delete()
                raise
        size = float(getattr(snapshot, "total_backup_size_in_mega_bytes", 0.0) or 0.0)
        seconds = time.monotonic() - started
        self._restores[(region, identifier)] = {
            "Status": "completed", "SnapshotSizeInMegaBytes": int(round(size)), "ProgressInMegaBytes": int(round(size)),
            "CurrentRestoreRateInMegaBytesPerSecond": round(size / seconds, 3) if seconds > 0 else 0.0,
            "ElapsedTimeInSeconds": int(round(seconds)), "EstimatedTimeToCompletionInSeconds": 0}
        if cluster is not None:
            self._first_automated(backend, cluster)       # of the restored data, not of an empty cluster
        return record

    @moto_property("moto.redshift.models:Cluster.restore_status")
    def restore_status(self, original, record):
        """DescribeClusters' RestoreStatus: the restore's real size and time (moto reports 123s)."""
        status = self._restores.get((record.region, record.cluster_identifier))
        return status if status is not None and record.restored_from_snapshot else original(record)

    @moto_hook(f"{BACKEND}.delete_cluster_snapshot")
    def delete_cluster_snapshot(self, original, backend, snapshot_identifier):
        """DeleteClusterSnapshot: moto drops the record; the manifest goes, and the blocks no other
        snapshot names."""
        record = original(backend, snapshot_identifier)     # ClusterSnapshotNotFound, automated: moto's
        with self._snapshot_lock:
            self._snapshot_store(backend.region_name).delete(snapshot_identifier)
        return record

    @moto_hook(f"{BACKEND}.enable_snapshot_copy")
    def enable_snapshot_copy(self, original, backend, **kwargs):
        """EnableSnapshotCopy: DestinationRegion must be another region Redshift has."""
        import boto3
        identifier, destination = kwargs.get("cluster_identifier"), kwargs.get("destination_region")
        if identifier not in backend.clusters:
            raise errors.ClusterNotFoundFault(f"Cluster {identifier} not found.")
        if destination == backend.region_name or \
                destination not in boto3.session.Session().get_available_regions("redshift"):
            raise errors.UnknownSnapshotCopyRegionFault(f"Invalid region {destination}")
        return original(backend, **kwargs)

    @local_hook("On AWS, a snapshot's blocks are Redshift's, not yours to see: DescribeClusterSnapshots "
                "reports TotalBackupSizeInMegaBytes and ActualIncrementalBackupSizeInMegaBytes.")
    def snapshot_manifest(self, snapshot_identifier: str, region: str | None = None) -> dict | None:
        """The manifest of a snapshot (tables, rows per slice, block keys and sizes), or None.

        Its ``bucket`` is where the blocks are (``blocks/<sha256>``)."""
        store = self._snapshot_store(region or self.ctx.region)
        manifest = store.manifest(snapshot_identifier)
        return None if manifest is None else {**manifest, "bucket": store.bucket}

    @moto_hook(f"{BACKEND}.describe_cluster_snapshots")
    def describe_cluster_snapshots(self, original, backend, cluster_identifier=None, snapshot_identifier=None,
                                   snapshot_type=None):
        """DescribeClusterSnapshots with ClusterIdentifier, SnapshotIdentifier and SnapshotType as filters.

        moto answers *every* snapshot when the cluster named has none of the
        type asked for (and ignores SnapshotIdentifier when ClusterIdentifier is
        given); Redshift answers the snapshots that match, possibly none.
        """
        found = list(backend.snapshots.values())
        if snapshot_identifier:
            found = [s for s in found if s.snapshot_identifier == snapshot_identifier]
        if cluster_identifier:
            found = [s for s in found if s.cluster_identifier == cluster_identifier]
        if snapshot_type:
            found = [s for s in found if s.snapshot_type == snapshot_type]
        if snapshot_identifier and not found:
            raise errors.ClusterSnapshotNotFoundFault(f"Snapshot {snapshot_identifier} not found.")
        return found

    @moto_hook(f"{BACKEND}.delete_automated_snapshots")
    def delete_automated_snapshots(self, original, backend, cluster_identifier):
        """DeleteCluster deletes the cluster's automated snapshots (manual ones stay): the records
        (moto), then their manifests and the blocks no other snapshot needs."""
        ids = [s.snapshot_identifier for s in list(backend.snapshots.values())
               if s.cluster_identifier == cluster_identifier and s.snapshot_type == "automated"]
        original(backend, cluster_identifier)
        self._drop_snapshots(backend, ids)

    def _drop_snapshots(self, backend, ids: list[str]) -> None:
        """Remove snapshot records and their data (automated snapshots, which DeleteClusterSnapshot refuses)."""
        for snapshot_id in ids:
            backend.snapshots.pop(snapshot_id, None)
        if ids:
            with self._snapshot_lock:
                self._snapshot_store(backend.region_name).delete(*ids)

    def _clock_time(self) -> float:
        """Seconds since the epoch on the stack's clock, read from its monotonic side.

        ``Clock.time()`` adds two real clocks read an instant apart, so even a
        frozen clock's reading wobbles by microseconds; schedules compared
        against it would miss their moment. The monotonic reading of a frozen
        clock does not move, so times here are one fixed offset plus it.
        """
        return self._epoch + self.ctx.clock.monotonic()

    def _now(self) -> datetime.datetime:
        """The stack's clock as moto stamps records: a naive UTC datetime."""
        return datetime.datetime.fromtimestamp(self._clock_time(), datetime.timezone.utc).replace(tzinfo=None)

    # -- automated snapshots, on the stack's clock ------------------------------------------
    # Redshift takes an automated snapshot "about every eight hours or following every 5 GB per
    # node of data changes, whichever comes first" and deletes each at the end of the cluster's
    # AutomatedSnapshotRetentionPeriod, except the latest, which it keeps until automated
    # snapshots are disabled or the cluster deleted (Management Guide, "Automated snapshots").
    # Here the 8-hour rule runs on the stack's clock: freeze it and advance(8 * 3600), and the
    # scheduler thread (woken by Clock.watch) takes the snapshot at once, through
    # create_cluster_snapshot like a manual one. The 5 GB rule is not emulated.
    def _first_automated(self, backend, cluster: Cluster) -> None:
        """A new (or newly restored) cluster's first automated snapshot, then the schedule from there.

        Taken as soon as the cluster runs (a restored one: once its data is
        loaded), as moto does and as the chapter shows; AWS's guide says only
        that automated snapshots "are enabled by default when you create a
        cluster", not when the first one comes.
        """
        record = backend.clusters.get(cluster.identifier)
        if record is not None and record.automated_snapshot_retention_period > 0:
            self._take_automated(backend, cluster)
        self._start_scheduler()

    def _take_automated(self, backend, cluster: Cluster) -> None:
        """One automated snapshot, named as Redshift names them: ``rs:<cluster>-<yyyy-mm-dd-hh-mm-ss>``."""
        now = datetime.datetime.fromtimestamp(self._clock_time(), datetime.timezone.utc)
        cluster.last_automated = now.timestamp()
        snapshot_id = f"rs:{cluster.identifier}-{now:%Y-%m-%d-%H-%M-%S}"
        if snapshot_id in backend.snapshots:
            return
        try:
            backend.create_cluster_snapshot(cluster.identifier, snapshot_id, backend.region_name, None,
                                            snapshot_type="automated")
        except Exception:      # paused or deleted meanwhile: skipped, the next one is due 8 hours on
            log.debug("automated snapshot %s not taken", snapshot_id, exc_info=True)

    def _start_scheduler(self) -> None:
        with self.lock:
            if self._scheduler is not None or self._stopping:
                return
            self.ctx.clock.watch(self._tick)
            self._scheduler = threading.Thread(target=self._schedule, name="redshift-automated-snapshots",
                                               daemon=True)
            self._scheduler.start()

    def _stop_scheduler(self) -> None:
        with self._tick:
            self._stopping = True
            self._tick.notify_all()
        if self._scheduler is not None:
            self._scheduler.join(timeout=60)
        self.ctx.clock.unwatch(self._tick)

    def _poke(self) -> None:
        """Have the scheduler look again now (a cluster resumed, a retention period changed...)."""
        with self._tick:
            self._sweep_requested = True
            self._tick.notify_all()

    def _schedule(self) -> None:
        """The scheduler thread: sweep, then wait on the stack's clock until the next thing falls due."""
        clock = self.ctx.clock
        with self._tick:
            while not self._stopping:
                self._sweep_requested = False
                now = self._clock_time()
                self._tick.release()
                try:
                    next_at = self._sweep(now)
                except Exception:       # a bug of the stand-in must not end the schedule
                    log.warning("automated snapshot sweep failed", exc_info=True)
                    next_at = now + 60
                finally:
                    self._tick.acquire()
                self._swept = max(self._swept, now)
                self._tick.notify_all()
                if self._stopping or self._sweep_requested:
                    continue
                if next_at is not None and next_at <= self._clock_time() + SLACK:
                    continue
                clock.wait(self._tick, None if next_at is None else next_at - self._clock_time())

    def _sweep(self, now: float) -> float | None:
        """Take the automated snapshots due at ``now``, delete the expired ones; when to look next."""
        from moto.redshift.models import redshift_backends
        backends = redshift_backends[self.ctx.account_id]
        with self.lock:
            clusters = list(self.clusters.items())
        next_at = None
        for (region, identifier), cluster in clusters:
            record = backends[region].clusters.get(identifier)
            if record is None or record.automated_snapshot_retention_period <= 0:
                continue
            due = (cluster.last_automated if cluster.last_automated is not None else cluster.created) \
                + AUTOMATED_EVERY
            if due <= now + SLACK:
                if record.status != "available" or cluster.paused:
                    continue               # no snapshots of a paused or resizing cluster; resume pokes
                self._take_automated(backends[region], cluster)
                due = cluster.last_automated + AUTOMATED_EVERY
            next_at = due if next_at is None else min(next_at, due)
        regions = {region for (region, _), _cluster in clusters} | set(self._stores)
        for region in sorted(regions):
            expiry = self._expire(backends[region], now)
            if expiry is not None:
                next_at = expiry if next_at is None else min(next_at, expiry)
        return next_at

    def _expire(self, backend, now: float) -> float | None:
        """Delete the automated snapshots of ``backend`` past their retention; the next expiry, if any.

        A cluster's own: its AutomatedSnapshotRetentionPeriod, the latest one
        always kept (0 days: none kept). Copies from another region: the
        copy's RetentionPeriod, from when the snapshot was taken.
        """
        groups: dict[tuple[str, bool], list] = {}
        days_of: dict[tuple[str, bool], int] = {}
        for snap in list(backend.snapshots.values()):
            if snap.snapshot_type != "automated":
                continue
            copied = bool(getattr(snap, "source_region", None))
            if copied:
                days = getattr(snap, "copy_retention_days", 7)
            else:
                record = backend.clusters.get(snap.cluster_identifier)
                if record is None:
                    continue
                days = record.automated_snapshot_retention_period
            key = (snap.cluster_identifier, copied)
            groups.setdefault(key, []).append(snap)
            days_of[key] = days
        expired, next_at = [], None
        for key, snaps in groups.items():
            snaps.sort(key=lambda s: s.create_time)
            days = days_of[key]
            keep_latest = not key[1] and days > 0
            for snap in snaps[:-1] if keep_latest else snaps:
                ends = snap.create_time.replace(tzinfo=datetime.timezone.utc).timestamp() + days * DAY
                if ends <= now + SLACK:
                    expired.append(snap.snapshot_identifier)
                else:
                    next_at = ends if next_at is None else min(next_at, ends)
        self._drop_snapshots(backend, expired)
        return next_at

    @local_hook("On AWS, automated snapshots come on Redshift's own schedule: poll "
                "DescribeClusterSnapshots(SnapshotType='automated'), and wait the real hours.")
    def wait_automated_snapshots(self, timeout: float = 60) -> bool:
        """Wait until the automated-snapshot scheduler has caught up with the stack's clock.

        After ``stack.local.clock.advance(8 * 3600)`` the snapshots that fell
        due (and the deletions of expired ones) are done when this returns
        True. False if ``timeout`` real seconds passed first.
        """
        self._start_scheduler()
        target = self._clock_time()
        self._poke()
        return wait_until(lambda: self._swept >= target, timeout, condition=self._tick)

    # -- ModifyCluster, ResizeCluster, DescribeResize (resize.py) ------------------------------
    @moto_hook(f"{BACKEND}.modify_cluster")
    def modify_cluster(self, original, backend, **kwargs):
        """ModifyCluster: AutomatedSnapshotRetentionPeriod applies at once; NodeType with
        NumberOfNodes is a classic resize (``resize.py``), which moto would only write on the record.

        Every check comes before anything changes. As the API reference says,
        "when resizing a cluster, you must specify both the number of nodes and
        the node type even if one of the parameters does not change": one
        without the other is refused ("No modifications were requested", the
        answer seen in hashicorp/terraform issue #6274).
        """
        identifier = kwargs.get("cluster_identifier")
        record = backend.clusters.get(identifier)
        if record is None:
            return original(backend, **kwargs)           # ClusterNotFound: moto's
        if kwargs.get("new_cluster_identifier"):
            raise not_emulated("redshift", "ModifyCluster", "renaming a cluster (NewClusterIdentifier) is not "
                               "run locally: restore a snapshot under the new name instead")
        retention = kwargs.get("automated_snapshot_retention_period")
        node_type, nodes, cluster_type = (kwargs.pop(k, None) for k in ("node_type", "number_of_nodes",
                                                                         "cluster_type"))
        job = None
        if node_type is not None or nodes is not None or cluster_type is not None:
            if node_type is None or (nodes is None and cluster_type != "single-node"):
                raise errors.InvalidParameterCombination("No modifications were requested")
            job = self._resize_job(backend, record, node_type, nodes, cluster_type, classic=True)
        if retention is not None:
            kwargs["automated_snapshot_retention_period"] = _check_retention(
                job.node_type if job else record.node_type, retention)
        record = original(backend, **kwargs)
        if retention is not None:
            self._expire(backend, self._clock_time())   # a shorter period deletes at once; 0 deletes all
            self._start_scheduler()
            self._poke()
        if job is not None:
            self._start_resize(backend, record, job)
        return record

    @operation("ResizeCluster")
    def resize_cluster(self, req):
        """ResizeCluster (moto lacks it): elastic by default, classic with ``Classic=True``.

        The answer is the cluster, ``resizing``; the rows move in a thread
        (``resize.py``) and DescribeResize follows them. A classic resize
        without NodeType is refused as AWS refuses it ("No modifications were
        requested", aws/aws-sdk-go issue #2657).
        """
        p = req.params
        backend = self._backend(req.region)
        identifier = p.get("ClusterIdentifier")
        record = backend.clusters.get(identifier)
        if record is None:
            raise errors.ClusterNotFoundFault(f"Cluster {identifier} not found.")
        classic = str(p.get("Classic", "false")).lower() == "true"
        if classic and not p.get("NodeType"):
            raise errors.InvalidParameterCombination("No modifications were requested")
        job = self._resize_job(backend, record, p.get("NodeType") or record.node_type, p.get("NumberOfNodes"),
                               p.get("ClusterType"), classic)
        self._start_resize(backend, record, job)
        return _query_answer("ResizeCluster", {"Cluster": record})

    @operation("DescribeResize")
    def describe_resize(self, req):
        """DescribeResize (moto lacks it): the cluster's last resize, "SUCCEEDED until the next resize"."""
        backend = self._backend(req.region)
        identifier = req.params.get("ClusterIdentifier")
        if identifier not in backend.clusters:
            raise errors.ClusterNotFoundFault(f"Cluster {identifier} not found.")
        job = self._resizes.get((req.region, identifier))
        if job is None:
            raise errors.ResizeNotFoundFault(f"Resize for cluster {identifier} not found.")
        return _query_answer("DescribeResize", job.describe())

    def _backend(self, region: str):
        from moto.redshift.models import redshift_backends
        return redshift_backends[self.ctx.account_id][region]

    def _resize_job(self, backend, record, node_type: str, nodes, cluster_type, classic: bool) -> "ResizeJob":
        """Check a resize request as Redshift does; the job to run (nothing has changed yet)."""
        identifier = record.cluster_identifier
        cluster = self._cluster(backend.region_name, identifier)
        if record.status != "available" or cluster is None or cluster.warehouse is None:
            raise errors.InvalidClusterStateFault(
                f"The cluster {identifier} is {record.status}: only an available cluster can be resized.")
        if node_type not in SLICES_PER_NODE:
            raise errors.InvalidParameterValue(f"Invalid node type: {node_type}.")
        if cluster_type not in (None, "single-node", "multi-node"):
            raise errors.InvalidParameterValue(
                "Invalid cluster type. Cluster type can be one of multi-node or single-node")
        if cluster_type == "single-node":
            nodes = 1                  # "AWS will always silently override this value" (moto, checked on AWS)
        nodes = int(nodes) if nodes is not None else record.number_of_nodes
        if not 1 <= nodes <= 128:
            raise errors.InvalidParameterValue("Number of nodes must be between 1 and 128.")
        if cluster_type == "multi-node" and nodes < 2:
            raise errors.InvalidParameterCombination(
                "Number of nodes for cluster type multi-node must be greater than or equal to 2")
        if nodes == record.number_of_nodes and node_type == record.node_type:
            raise errors.InvalidParameterCombination("No modifications were requested")
        if not classic:
            if nodes == 1 or record.number_of_nodes == 1:
                raise errors.UnsupportedOperationFault(
                    "Elastic resize is not available to or from a single-node cluster: use classic resize "
                    "(Classic=True).")
            if nodes > cluster.warehouse.layout.count:
                raise errors.UnsupportedOperationFault(
                    f"An elastic resize keeps the cluster's {cluster.warehouse.layout.count} slices and moves "
                    f"them to the new nodes: {nodes} nodes would leave a node without a slice. Use classic "
                    "resize (Classic=True).")
        return ResizeJob(node_type=node_type, nodes=nodes, classic=classic)

    def _start_resize(self, backend, record, job: "ResizeJob") -> None:
        """Mark the cluster ``resizing`` and move its rows in a thread of its own."""
        region, identifier = backend.region_name, record.cluster_identifier
        cluster = self._cluster(region, identifier)
        record.status = "resizing"
        self._resizes[(region, identifier)] = job
        job.thread = threading.Thread(target=self._run_resize, args=(record, cluster, job),
                                      name=f"redshift-resize-{identifier}", daemon=True)
        job.thread.start()

    def _run_resize(self, record, cluster: Cluster, job: "ResizeJob") -> None:
        from . import resize
        try:
            resize.resize(cluster.warehouse, job.node_type, job.nodes, job.classic, job.progress)
            cluster.node_type, cluster.number_of_nodes = job.node_type, job.nodes
            cluster.slices = cluster.warehouse.layout.count
            record.node_type, record.number_of_nodes = job.node_type, job.nodes
            job.status = "SUCCEEDED"
        except Exception as exc:
            job.status = "FAILED"
            job.message = f"The resize failed and was rolled back: {type(exc).__name__}: {exc}"
            log.warning("resize of %s failed", record.cluster_identifier, exc_info=True)
        finally:
            job.ended = time.monotonic()
            record.status = "available"
            self._poke()

    @local_hook("On AWS, poll DescribeResize until Status is SUCCEEDED or FAILED (or wait with "
                "redshift.get_waiter('cluster_available')).")
    def wait_resize(self, cluster_identifier: str, timeout: float = 120, region: str | None = None) -> str:
        """Block until the cluster's resize ends; its Status (SUCCEEDED, FAILED, or IN_PROGRESS on timeout)."""
        job = self._resizes.get((region or self.ctx.region, cluster_identifier))
        if job is None:
            raise KeyError(f"no resize of {cluster_identifier}")
        if job.thread is not None:
            job.thread.join(timeout)
        return job.status

    # -- teaching hooks ---------------------------------------------------------------
    @local_hook("On AWS, poll DescribeStatement until Status is FINISHED, FAILED or ABORTED.")
    def wait(self, statement_id: str, timeout: float = 60) -> str:
        """Block until a Data API statement ends; returns its final status."""
        st = self._statement(statement_id)
        if st.future is not None:
            wait_until(future=st.future, timeout=timeout)
        return st.status

    @local_hook("On AWS, a cluster's nodes and slices are not yours to see: query STV_SLICES "
                "(SELECT node, slice FROM stv_slices) on the cluster.")
    def slices(self, cluster_identifier: str, region: str | None = None) -> int:
        """How many slices the cluster has: nodes x the node type's slices per node (``nodes.py``)."""
        cluster = self._cluster(region or self.ctx.region, cluster_identifier)
        if cluster is None:
            raise KeyError(cluster_identifier)
        return cluster.number_of_nodes * nodes.slices_per_node(cluster.node_type)

    # -- the Data API: running statements ----------------------------------------------
    def _target(self, req) -> Cluster:
        """The cluster a Data API request names, refused as the Data API refuses it."""
        p = req.params
        if p.get("WorkgroupName"):
            raise not_emulated("redshift-data", req.operation, "Redshift Serverless work groups are not run locally; "
                               "use a provisioned cluster (ClusterIdentifier)")
        if p.get("SessionId") or p.get("SessionKeepAliveSeconds"):
            raise not_emulated("redshift-data", req.operation, "Data API sessions are not run locally")
        if not p.get("ClusterIdentifier"):
            raise errors.ValidationException("Either ClusterIdentifier or WorkgroupName must be specified.")
        cluster = self._cluster(req.region, p["ClusterIdentifier"])
        if cluster is None:
            raise errors.ValidationException("Redshift endpoint doesn't exist in this region.")
        if cluster.paused or cluster.warehouse is None:
            raise errors.ValidationException(
                f"Cluster {cluster.identifier} is paused and does not accept connections. "
                "Resume it first (ResumeCluster).")
        return cluster

    def _secret_user(self, arn: str, req) -> str | None:
        """The ``username`` of a Secrets Manager secret (as the Data API reads it to log in)."""
        try:
            value = self.ctx.client("secretsmanager").get_secret_value(SecretId=arn)["SecretString"]
            return json.loads(value).get("username")
        except Exception:
            raise errors.ValidationException(f"Could not read the secret {arn}: it must exist and hold "
                                             "a JSON object with username and password.") from None

    def _new(self, req, sql: str, parameters: list[dict], cluster: Cluster) -> Statement:
        p = req.params
        if not p.get("Database"):
            raise errors.ValidationException("Database must be specified when connecting to a cluster.")
        db_user = p.get("DbUser")
        if p.get("SecretArn"):
            db_user = self._secret_user(p["SecretArn"], req)
        return Statement(id=str(uuid.uuid4()), cluster=cluster.identifier, region=req.region,
                         database=p.get("Database") or "", db_user=db_user, secret_arn=p.get("SecretArn"),
                         sql=sql, parameters=parameters, name=p.get("StatementName"),
                         with_event=bool(p.get("WithEvent")), pid=next(self._pids))

    def _submit(self, req, st: Statement) -> dict:
        token = req.params.get("ClientToken")
        with self.lock:
            if token and token in self.tokens:
                return self._submitted(self.statements[self.tokens[token]])
            active = sum(1 for s in self.statements.values() if not s.done)
            if active >= MAX_ACTIVE:
                raise errors.ActiveStatementsExceededException(
                    f"This local stand-in queues at most {MAX_ACTIVE} statements at once; wait for some to end.")
            self.statements[st.id] = st
            if token:
                self.tokens[token] = st.id
        st.future = self.pool.submit(self._run, st)
        return self._submitted(st)

    @staticmethod
    def _submitted(st: Statement) -> dict:
        out = {"Id": st.id, "CreatedAt": st.created, "ClusterIdentifier": st.cluster, "Database": st.database}
        if st.db_user:
            out["DbUser"] = st.db_user
        if st.secret_arn:
            out["SecretArn"] = st.secret_arn
        return out

    @operation("ExecuteStatement", service="redshift-data")
    def execute_statement(self, req):
        p = req.params
        cluster = self._target(req)
        parameters = list(p.get("Parameters") or [])
        to_positional(p["Sql"], parameters)           # refuse bad parameters now, not when it runs
        return self._submit(req, self._new(req, p["Sql"], parameters, cluster))

    @operation("BatchExecuteStatement", service="redshift-data")
    def batch_execute_statement(self, req):
        p = req.params
        cluster = self._target(req)
        sqls = list(p.get("Sqls") or [])
        if not 1 <= len(sqls) <= 40:
            raise errors.ValidationException("Sqls must contain between 1 and 40 SQL statements.")
        parameters = list(p.get("Parameters") or [])
        batch = self._new(req, "", parameters, cluster)
        batch.autocommit = p.get("ExecutionMode") == "AUTO_COMMIT"
        for n, sql in enumerate(sqls, 1):
            sub = Statement(id=f"{batch.id}:{n}", cluster=batch.cluster, region=batch.region,
                            database=batch.database, db_user=batch.db_user, secret_arn=batch.secret_arn,
                            sql=sql, parameters=parameters, pid=batch.pid)
            batch.subs.append(sub)
        return self._submit(req, batch)

    def _run(self, st: Statement) -> None:
        """Run a statement (or a batch's statements, in order) in a worker thread.

        ExecuteStatement autocommits: its statement commits when it ends. A batch
        is one transaction, as the API reference says of ``Sqls``: "By default,
        the SQL statements are run as a single transaction. If any SQL statement
        fails, all work is rolled back." Its statements run in order in one
        warehouse session between BEGIN and COMMIT; the first failure rolls
        everything back and the statements after it are ABORTED. With
        ``ExecutionMode`` AUTO_COMMIT "each SQL statement is committed
        individually": a failure keeps the work of the statements before it.
        """
        try:
            if st.cancelled:
                return self._end(st, "ABORTED")
            st.set("STARTED")
            cluster = self._cluster(st.region, st.cluster)
            if not st.is_batch:
                return self._end(st, *self._execute(cluster, st))
            self._end(st, *self._run_batch(cluster, st))
        except Exception as exc:       # a bug of the stand-in: FAILED, with the cause named
            self._end(st, "FAILED", f"The local stand-in failed: {type(exc).__name__}: {exc}")

    def _run_batch(self, cluster: Cluster | None, st: Statement) -> tuple[str, str | None]:
        """A batch's statements in one session (one transaction unless AUTO_COMMIT): (status, error)."""
        from .errors import SQLError
        if cluster is None or cluster.warehouse is None:
            session = None                 # _execute answers ABORTED for each
        else:
            session = cluster.warehouse.session()
        status, error = "FINISHED", None
        try:
            if session is not None and not st.autocommit:
                session.execute("BEGIN")
            for sub in st.subs:
                if status != "FINISHED":
                    sub.set("ABORTED")
                    continue
                sub.set("STARTED")
                status, error = self._execute(cluster, sub, session)
                sub.set(status, error)
            if session is not None and not st.autocommit:
                try:          # all ran: COMMIT; else ROLLBACK (the failure already undid the work)
                    session.execute("COMMIT" if status == "FINISHED" else "ROLLBACK")
                except SQLError as exc:      # a conflict found at COMMIT (ERROR 1023): rolled back
                    status, error = "FAILED", self._error_text(exc)
        finally:
            if session is not None:
                session.close()
        return status, error

    def _execute(self, cluster: Cluster | None, st: Statement, session=None) -> tuple[str, str | None]:
        """Run one SQL (in ``session``, an engine.Session, if given): (status, error message)."""
        from .errors import QUERY_CANCELED, SQLError
        if st.cancelled:
            return "ABORTED", None
        if cluster is None or cluster.warehouse is None:
            return "ABORTED", st.error or "The cluster is not available."
        if st.database != cluster.database:
            return "FAILED", f'FATAL: database "{st.database}" does not exist'
        st.query_id = next(self._query_ids)
        try:
            sql, values = to_positional(st.sql, st.parameters)
            result = (session or cluster.warehouse).execute(sql, values or None)
        except SQLError as exc:
            if exc.code == QUERY_CANCELED or st.cancelled:
                return "ABORTED", None
            return "FAILED", self._error_text(exc)
        except errors.ValidationException as exc:
            return "FAILED", f"ERROR: {exc.message}"
        except Exception:
            if st.cancelled:    # an interrupt may surface outside the statement (e.g. query history)
                return "ABORTED", None
            raise
        st.result = result
        if result.columns is not None:
            st.result_size = len(json.dumps([[str(v) for v in row] for row in result.rows]))
        else:
            st.result_size = 0
        return "FINISHED", None

    @staticmethod
    def _error_text(exc) -> str:
        """DescribeStatement's ``Error`` for a SQLError: ``ERROR: message``, and its DETAIL if any
        (``ERROR: 1023 DETAIL: Serializable isolation violation on table - 100100``)."""
        detail = getattr(exc, "detail", None)
        return f"ERROR: {exc.message}" + (f" DETAIL: {detail}" if detail else "")

    def _end(self, st: Statement, status: str, error: str | None = None) -> None:
        st.set(status, error)
        if st.with_event:
            self._event(st)

    def _event(self, st: Statement) -> None:
        """The EventBridge event the Data API sends when a WithEvent statement ends."""
        detail = {"principal": st.db_user or "", "statementName": st.name or "", "statementId": st.id,
                  "redshiftQueryId": st.query_id, "state": st.status, "rows": st.result_rows,
                  "expireAt": int(st.updated) + 24 * 3600}
        try:
            self.ctx.client("events").put_events(Entries=[{
                "Source": "aws.redshift-data", "DetailType": "Redshift Data Statement Status Change",
                "Resources": [f"arn:aws:redshift:{st.region}:{self.ctx.account_id}:cluster:{st.cluster}"],
                "Detail": json.dumps(detail)}])
        except Exception:
            pass           # the statement's outcome does not depend on its event

    # -- the Data API: statements' state and results -----------------------------------
    def _statement(self, statement_id: str) -> Statement:
        base, _, n = statement_id.partition(":")
        with self.lock:
            st = self.statements.get(base)
        if st is not None and n:
            st = st.subs[int(n) - 1] if n.isdigit() and 0 < int(n) <= len(st.subs) else None
        if st is None:
            raise errors.ResourceNotFoundException("Query does not exist.", statement_id)
        return st

    @operation("DescribeStatement", service="redshift-data")
    def describe_statement(self, req):
        st = self._statement(req.params["Id"])
        out = st.describe()
        out.update({"ClusterIdentifier": st.cluster, "Database": st.database, "RedshiftPid": st.pid,
                    "ResultFormat": "JSON"})
        if st.db_user:
            out["DbUser"] = st.db_user
        if st.secret_arn:
            out["SecretArn"] = st.secret_arn
        if st.parameters:
            out["QueryParameters"] = st.parameters
        if st.is_batch:
            out["SubStatements"] = [sub.describe() for sub in st.subs]
            out["HasResultSet"] = any(sub.has_result_set for sub in st.subs)
            out["ResultRows"] = sum(max(sub.result_rows, 0) for sub in st.subs) if st.done else -1
        return out

    @operation("GetStatementResult", service="redshift-data")
    def get_statement_result(self, req):
        st = self._result_of(req.params["Id"])
        columns = st.result.columns
        rows, token = _page(st.result.rows, req.params, PAGE_ROWS)
        out = {"Records": [[field_of(v, c.type_oid) for v, c in zip(row, columns)] for row in rows],
               "ColumnMetadata": [column_metadata(c.name, c.type_oid) for c in columns],
               "TotalNumRows": len(st.result.rows)}
        if token:
            out["NextToken"] = token
        return out

    @operation("GetStatementResultV2", service="redshift-data")
    def get_statement_result_v2(self, req):
        import csv
        import io
        st = self._result_of(req.params["Id"])
        rows, token = _page(st.result.rows, req.params, PAGE_ROWS)
        text = io.StringIO()
        csv.writer(text, lineterminator="\n").writerows([["" if v is None else v for v in row] for row in rows])
        out = {"Records": [{"CSVRecords": text.getvalue()}], "ResultFormat": "CSV",
               "ColumnMetadata": [column_metadata(c.name, c.type_oid) for c in st.result.columns],
               "TotalNumRows": len(st.result.rows)}
        if token:
            out["NextToken"] = token
        return out

    def _result_of(self, statement_id: str) -> Statement:
        st = self._statement(statement_id)
        if st.is_batch:
            raise errors.ValidationException(
                "This is a batch statement: fetch each statement's result with its own Id (<Id>:1, <Id>:2...).")
        if st.status != "FINISHED":
            raise errors.ValidationException(
                f"Query {statement_id} is in the {st.status} state; its result can be fetched once it is FINISHED.")
        if not st.has_result_set:
            raise errors.ResourceNotFoundException(
                "Query does not have result. Please check query status with DescribeStatement.", statement_id)
        return st

    @operation("ListStatements", service="redshift-data")
    def list_statements(self, req):
        p = req.params
        status = p.get("Status") or "ALL"
        with self.lock:
            found = sorted(self.statements.values(), key=lambda s: s.created, reverse=True)
        found = [s for s in found
                 if (status == "ALL" or s.status == status)
                 and (not p.get("StatementName") or (s.name or "").startswith(p["StatementName"]))
                 and (not p.get("ClusterIdentifier") or s.cluster == p["ClusterIdentifier"])
                 and (not p.get("Database") or s.database == p["Database"])]
        page, token = _page(found, p, 100)
        out = {"Statements": []}
        for s in page:
            item = {"Id": s.id, "Status": s.status, "CreatedAt": s.created, "UpdatedAt": s.updated,
                    "IsBatchStatement": s.is_batch, "ResultFormat": "JSON"}
            if s.is_batch:
                item["QueryStrings"] = [sub.sql for sub in s.subs]
            else:
                item["QueryString"] = s.sql
            if s.name:
                item["StatementName"] = s.name
            if s.secret_arn:
                item["SecretArn"] = s.secret_arn
            if s.parameters:
                item["QueryParameters"] = s.parameters
            out["Statements"].append(item)
        if token:
            out["NextToken"] = token
        return out

    @operation("CancelStatement", service="redshift-data")
    def cancel_statement(self, req):
        st = self._statement(req.params["Id"])
        if st.done:
            raise errors.ValidationException(f"Could not cancel a query that is already in {st.status} state.")
        st.cancelled = True
        cluster = self._cluster(st.region, st.cluster)

        def interrupt_until_ended():
            # An interrupt that arrives just before the engine starts the query is lost:
            # interrupt again until the statement has ended (the worker checks ``cancelled``
            # before it runs). As on AWS, the call returns at once; the statement turns ABORTED.
            deadline = time.monotonic() + 120
            while st.future is not None and not st.future.done() and time.monotonic() < deadline:
                if st.status == "STARTED" and cluster is not None and cluster.warehouse is not None:
                    cluster.warehouse.cancel()
                wait_until(future=st.future, timeout=0.2)

        threading.Thread(target=interrupt_until_ended, name=f"cancel-{st.id}", daemon=True).start()
        return {"Status": True}

    @operation("ListSessions", service="redshift-data")
    def list_sessions(self, req):
        raise not_emulated("redshift-data", "ListSessions", "Data API sessions are not run locally")

    # -- the Data API: the catalog -------------------------------------------------------
    def _catalog(self, req, sql: str, params: list | None = None) -> list[tuple]:
        """Rows of a catalog query on the named cluster, run at once (AWS answers these synchronously)."""
        from .errors import SQLError
        cluster = self._target(req)
        database = req.params.get("ConnectedDatabase") or req.params.get("Database")
        if database and database != cluster.database:
            raise errors.ValidationException(f'database "{database}" does not exist')
        if not database:
            raise errors.ValidationException("Database must be specified when connecting to a cluster.")
        try:
            return cluster.warehouse.execute(sql, params).rows
        except SQLError as exc:
            raise errors.ValidationException(exc.message) from None

    @operation("ListDatabases", service="redshift-data")
    def list_databases(self, req):
        cluster = self._target(req)
        page, token = _page([cluster.database], req.params, 1000)
        return {"Databases": page, **({"NextToken": token} if token else {})}

    @operation("ListSchemas", service="redshift-data")
    def list_schemas(self, req):
        rows = self._catalog(req, "SELECT DISTINCT table_schema FROM svv_tables WHERE table_catalog = $1",
                             [self._target(req).database])
        pattern = _like(req.params.get("SchemaPattern"))
        schemas = sorted({r[0] for r in rows} | {"public", "information_schema", "pg_catalog"})
        page, token = _page([s for s in schemas if pattern.match(s)], req.params, 1000)
        return {"Schemas": page, **({"NextToken": token} if token else {})}

    @operation("ListTables", service="redshift-data")
    def list_tables(self, req):
        rows = self._catalog(req, "SELECT table_schema, table_name, table_type FROM svv_tables "
                                  "WHERE table_catalog = $1 ORDER BY 1, 2", [self._target(req).database])
        schema_pattern = _like(req.params.get("SchemaPattern"))
        table_pattern = _like(req.params.get("TablePattern"))
        tables = [{"schema": s, "name": t, "type": "VIEW" if kind == "VIEW" else "TABLE"}
                  for s, t, kind in rows if schema_pattern.match(s) and table_pattern.match(t)]
        page, token = _page(tables, req.params, 1000)
        return {"Tables": page, **({"NextToken": token} if token else {})}

    @operation("DescribeTable", service="redshift-data")
    def describe_table(self, req):
        p = req.params
        rows = self._catalog(req, "SELECT table_schema, table_name, column_name, data_type, is_nullable, "
                                  "character_maximum_length, numeric_precision, numeric_scale, column_default "
                                  "FROM svv_columns WHERE table_catalog = $1 "
                                  "ORDER BY table_schema, table_name, ordinal_position",
                             [self._target(req).database])
        schema_pattern, table_pattern = _like(p.get("Schema")), _like(p.get("Table"))
        columns = []
        for schema, table, column, dtype, nullable, length, precision, scale, default in rows:
            if not (schema_pattern.match(schema) and table_pattern.match(table)):
                continue
            columns.append(column_metadata(column, _oid(dtype), table=table, schema=schema,
                                           nullable=1 if nullable == "YES" else 0, length=length or 0,
                                           scale=scale or 0, precision=precision, default=default))
        page, token = _page(columns, p, 1000)
        out = {"ColumnList": page}
        if p.get("Table"):
            out["TableName"] = p["Table"]
        if token:
            out["NextToken"] = token
        return out


def _oid(type_name: str) -> int:
    """The wire OID of a type as SVV_COLUMNS names it (``character varying``, ``integer``...)."""
    from .engine import PG_TYPES, pg_type
    by_name = {name: oid for name, oid in PG_TYPES.values()}
    return by_name.get(type_name.split("(")[0].strip().lower()) or pg_type(type_name)[1]


def _check_cluster_shape(node_type: str | None, cluster_type: str | None, number_of_nodes) -> int:
    """The number of compute nodes of a CreateCluster request, or Redshift's refusal.

    - NodeType must be one Redshift has (``nodes.SLICES_PER_NODE``): else
      ``InvalidParameterValue`` "Invalid node type: x." (AWS's message, seen in
      aws-samples/amazon-bedrock-agents-healthcare-lifesciences issue #122);
    - ``single-node`` takes no NumberOfNodes: ``InvalidParameterValue`` "Number
      of nodes must be not be supplied for cluster type single-node." (AWS's
      message, sic; aws/aws-cdk issue #9856);
    - ``multi-node`` needs at least 2 nodes: ``InvalidParameterCombination``;
    - without ClusterType, 1 node (or none given) is a single-node cluster.
    """
    if node_type not in nodes.SLICES_PER_NODE:
        raise errors.InvalidParameterValue(f"Invalid node type: {node_type}.")
    if cluster_type not in (None, "single-node", "multi-node"):
        raise errors.InvalidParameterValue(
            "Invalid cluster type. Cluster type can be one of multi-node or single-node")
    if number_of_nodes is not None and not 1 <= int(number_of_nodes) <= 128:
        raise errors.InvalidParameterValue("Number of nodes must be between 1 and 128.")
    if cluster_type == "single-node":
        if number_of_nodes is not None:
            raise errors.InvalidParameterValue(
                "Number of nodes must be not be supplied for cluster type single-node.")
        return 1
    if cluster_type == "multi-node" and (number_of_nodes is None or int(number_of_nodes) < 2):
        raise errors.InvalidParameterCombination(
            "Number of nodes for cluster type multi-node must be greater than or equal to 2")
    return int(number_of_nodes or 1)
