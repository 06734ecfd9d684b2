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

BACKEND = "moto.redshift.models:RedshiftBackend"
MAX_CLUSTERS = 4          # a guard for this machine (one DuckDB database of up to 1 GB each), not an AWS quota
MAX_ACTIVE = 50           # statements queued or running at once: a guard for this machine, not AWS's quota
PAGE_ROWS = 1000          # rows per GetStatementResult page (AWS pages by size; see DIFFERENCES)
WORKERS = 2               # Data API statements running at once, over all clusters
FIRST_PID = 1073741824    # Redshift's process ids are large numbers; ours count up from here

DIFFERENCES = """\
- A BatchExecuteStatement runs its statements in order and stops at the first failure
  (the rest are ABORTED), but the statements before it are not rolled back.
- CancelStatement interrupts every statement running on that cluster at that moment.
- GetStatementResult pages by row count (1000 rows a page), AWS by response size.
- One database per cluster (DBName); Database must name it.
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

    def open(self) -> None:
        """Open the warehouse (its file, if it exists, keeps the data) and serve it on the wire."""
        from .engine import Warehouse
        with self.lock:
            self.warehouse = Warehouse(self.identifier, self.database, self.user, self.password,
                                       self.work_dir, node_type=self.node_type,
                                       number_of_nodes=self.number_of_nodes, s3=getattr(self, "s3", None),
                                       glue=getattr(self, "glue", None))
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

    @property
    def pool(self) -> ThreadPoolExecutor:
        with self.lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="redshift-data")
            return self._pool

    def stop(self):
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
        region = backend.region_name
        with self.lock:
            if (region, identifier) not in self.clusters and len(self.clusters) >= MAX_CLUSTERS:
                raise errors.ClusterQuotaExceededFault(
                    f"This local stand-in runs at most {MAX_CLUSTERS} clusters at once (one database each); "
                    "delete one first (DeleteCluster).")
        record = original(backend, **kwargs)        # ClusterAlreadyExists comes from here
        cluster = Cluster(identifier, record.db_name, record.master_username, record.master_user_password,
                          Path(self.ctx.work_dir) / "redshift" / region / identifier,
                          record.node_type, record.number_of_nodes)
        cluster.s3 = lambda: self.ctx.client("s3")          # what COPY reads and UNLOAD writes through
        # Spectrum's Data Catalog: Glue in the cluster's Region, or the one CREATE EXTERNAL SCHEMA names.
        cluster.glue = lambda named=None: self._glue_in(named or region)
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
        record = original(backend, **kwargs)       # ClusterNotFound, the final snapshot rules: moto's
        with self.lock:
            cluster = self.clusters.pop((backend.region_name, identifier), None)
        if cluster is not None:
            self._abort_running(cluster, "The cluster was deleted.")
            cluster.delete()
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
        """CreateClusterSnapshot (and DeleteCluster's final snapshot): the cluster's blocks to S3.

        moto records the snapshot (ClusterNotFound, ClusterSnapshotAlreadyExists
        come from it); then the warehouse is read in one transaction and its
        new blocks uploaded (``snapshots.py``). The sizes go on the record, and
        with EnableSnapshotCopy on, the snapshot is copied to the other region.
        """
        from . import snapshots
        region = backend.region_name
        cluster = self._cluster(region, cluster_identifier)
        if cluster is not None and cluster.paused:
            raise errors.InvalidClusterStateFault(
                f"The cluster {cluster_identifier} is paused: this local stand-in snapshots running "
                "clusters only. Resume it first (ResumeCluster).")
        record = original(backend, cluster_identifier, snapshot_identifier, region_name, tags,
                          snapshot_type=snapshot_type)
        warehouse = cluster.warehouse if cluster is not None else None
        if warehouse is None:
            # moto's automated snapshot inside CreateCluster: taken before the warehouse exists, so
            # it holds nothing (no manifest; a restore of it is an empty cluster).
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
        copy = Snapshot(backend.clusters[record.cluster_identifier], record.snapshot_identifier,
                        backend.account_id, destination, tags=None, snapshot_type=record.snapshot_type)
        copy.source_region = backend.region_name
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
        for n, sql in enumerate(sqls, 1):
            sub = Statement(id=f"{batch.id}:{n}", cluster=batch.cluster, region=batch.region,
                            database=batch.database, db_user=batch.db_user, secret_arn=batch.secret_arn,
                            sql=sql, parameters=parameters, pid=batch.pid)
            batch.subs.append(sub)
        return self._submit(req, batch)

    def _run(self, st: Statement) -> None:
        """Run a statement (or a batch's statements, in order) in a worker thread."""
        try:
            if st.cancelled:
                return self._end(st, "ABORTED")
            st.set("STARTED")
            cluster = self._cluster(st.region, st.cluster)
            if not st.is_batch:
                return self._end(st, *self._execute(cluster, st))
            status, error = "FINISHED", None
            for sub in st.subs:
                if status != "FINISHED":
                    sub.set("ABORTED")
                    continue
                sub.set("STARTED")
                status, error = self._execute(cluster, sub)
                sub.set(status, error)
            self._end(st, status, error)
        except Exception as exc:       # a bug of the stand-in: FAILED, with the cause named
            self._end(st, "FAILED", f"The local stand-in failed: {type(exc).__name__}: {exc}")

    def _execute(self, cluster: Cluster | None, st: Statement) -> tuple[str, str | None]:
        """Run one SQL: (status, error message)."""
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
            result = cluster.warehouse.execute(sql, values or None)
        except SQLError as exc:
            if exc.code == QUERY_CANCELED or st.cancelled:
                return "ABORTED", None
            return "FAILED", f"ERROR: {exc.message}"
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
