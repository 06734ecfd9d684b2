"""Cluster snapshots: the cluster's blocks in S3, content-addressed, so a snapshot stores only what changed.

On Redshift a snapshot is a point-in-time copy of the cluster's blocks, kept
in S3 that Redshift manages. Snapshots are *incremental*: a block that an
earlier snapshot already stored is not stored again, so a second snapshot
after a small change costs only the changed blocks. DescribeClusterSnapshots
reports both sizes: ``TotalBackupSizeInMegaBytes`` (everything the snapshot
needs) and ``ActualIncrementalBackupSizeInMegaBytes`` (what this snapshot
added).

Here, in one S3 bucket per region (:func:`bucket_name`):

- ``blocks/<sha256>``: one block. Every slice table is read in row order,
  cut into chunks of :data:`CHUNK_ROWS` rows, and each chunk written as a
  small Parquet file. Its key is the SHA-256 of its bytes (*content
  addressing*): the same rows give the same bytes and so the same key, so a
  block that is already in the bucket is not uploaded again. An INSERT adds
  rows at the end of a slice: only that slice's last chunk (and new ones)
  change. A DISTSTYLE ALL table's copies on each node are one block.
- ``manifests/<snapshot>.json``: what the snapshot is: every table's catalog
  entry (columns, DISTSTYLE, DISTKEY, SORTKEY), its rows per slice and the
  keys of its blocks, and the IDENTITY sequences. A restore reads only this
  file and the blocks it names.

A snapshot is read in **one DuckDB transaction while holding the warehouse's
write lock** (:func:`read_cluster`): a write is either wholly in it or not at
all, never half.

**DeleteClusterSnapshot** removes the manifest, then deletes the blocks that
no remaining manifest names (:meth:`SnapshotStore.collect_garbage`): a
mark-and-sweep over the manifests.

**Automated snapshots** (``api.py`` takes them every 8 hours of the stack's
clock, and deletes them at the end of the retention period or with their
cluster) are stored by the same :meth:`SnapshotStore.save`: an automated
snapshot after a small change uploads only the changed blocks, like a manual
one, and both kinds share blocks.

Differences from AWS a learner can see:

- The snapshot bucket is an ordinary S3 bucket of the stack
  (``localaws-redshift-snapshots-<account>-<region>``), visible in ListBuckets;
  Redshift's own snapshot storage is not visible to you on AWS.
- Blocks are row chunks of a slice (all columns), Redshift's are 1 MB of one column.
- User views and grants are not in the snapshot; tables and their data are.
- A snapshot is taken while the request waits (Status is ``available`` when
  CreateClusterSnapshot returns); on AWS it is ``creating`` for a while.
"""
from __future__ import annotations

import hashlib
import io
import json
import time
from dataclasses import dataclass, field

from . import storage

#: Rows per snapshot block (a Parquet file of one slice's rows).
CHUNK_ROWS = 2048
MB = 1024 * 1024
MANIFEST_FORMAT = 1


def bucket_name(account_id: str, region: str) -> str:
    """The bucket holding one region's snapshots."""
    return f"localaws-redshift-snapshots-{account_id}-{region}"


# --------------------------------------------------------------------------- reading a cluster
@dataclass
class ClusterImage:
    """A consistent copy of a warehouse's tables, in memory: the catalog and every slice's rows."""
    tables: list[dict]                                       # catalog rows, plus "slices": {slice: arrow table}
    sequences: list[dict] = field(default_factory=list)


def read_cluster(warehouse) -> ClusterImage:
    """Every distributed table of ``warehouse``: catalog rows and each slice's rows (pyarrow tables).

    Taken under ``warehouse.lock`` (the lock every write holds for its whole
    transaction) and inside one DuckDB transaction: the image is one moment
    of the cluster, with each earlier write wholly in it and none in part.
    """
    catalog = storage.CATALOG_SCHEMA
    with warehouse.lock:
        cursor = warehouse.cursor()
        try:
            cursor.begin()
            rows = cursor.execute(
                f"SELECT table_id, schema_name, table_name, diststyle, distkey, sortkey, interleaved, "
                f"columns_sql, next_even FROM {catalog}.tables ORDER BY table_id").fetchall()
            counts = cursor.execute(f"SELECT table_id, slice, rows, sorted_rows FROM {catalog}.slice_rows"
                                    ).fetchall()
            per_slice = {(t, s): (r, sr) for t, s, r, sr in counts}
            tables = []
            for table_id, schema, name, diststyle, distkey, sortkey, interleaved, columns_sql, next_even in rows:
                info = storage.TableInfo(table_id, schema, name, diststyle, distkey, list(sortkey or []),
                                         columns_sql, next_even)
                slices = {}
                for slice_ in warehouse.layout.slices_of(info):
                    data = cursor.sql(f"SELECT * FROM {warehouse.layout.slice_table(info, slice_)}"
                                      ).to_arrow_table()
                    slices[slice_] = (data, *per_slice.get((table_id, slice_), (data.num_rows, data.num_rows)))
                tables.append({"schema": schema, "name": name, "diststyle": diststyle, "distkey": distkey,
                               "sortkey": list(sortkey or []), "interleaved": bool(interleaved),
                               "columns_sql": columns_sql, "next_even": int(next_even or 0), "slices": slices})
            sequences = [
                {"schema": s, "name": n, "increment": int(inc),
                 "next": int(start) if last is None else int(last) + int(inc)}
                for s, n, start, inc, last in cursor.execute(
                    "SELECT schema_name, sequence_name, start_value, increment_by, last_value "
                    "FROM duckdb_sequences() WHERE database_name = current_database() "
                    f"AND schema_name <> '{catalog}'").fetchall()]
            cursor.rollback()             # nothing was written: the transaction only fixed the moment
        finally:
            cursor.close()
    return ClusterImage(tables, sequences)


def blocks_of(data) -> list[tuple[str, bytes, int]]:
    """A slice's rows as blocks: ``(sha256 hex, Parquet bytes, rows)`` per chunk of CHUNK_ROWS rows.

    The same rows always give the same bytes (no timestamps in the file), so
    an unchanged chunk gets the key it had in the last snapshot.
    """
    import pyarrow.parquet as pq

    out = []
    for start in range(0, data.num_rows, CHUNK_ROWS):
        chunk = data.slice(start, CHUNK_ROWS)
        buffer = io.BytesIO()
        pq.write_table(chunk, buffer, compression="zstd")
        body = buffer.getvalue()
        out.append((hashlib.sha256(body).hexdigest(), body, chunk.num_rows))
    return out


# --------------------------------------------------------------------------- the bucket
@dataclass
class Written:
    """What one snapshot stored: its sizes as DescribeClusterSnapshots reports them."""
    total_bytes: int          # every block the manifest names, once, plus the manifest
    written_bytes: int        # the blocks this snapshot uploaded (not already there), plus the manifest
    blocks: int
    blocks_written: int
    seconds: float

    def apply(self, record) -> None:
        """Put the sizes on moto's Snapshot record (its response renders these attributes)."""
        record.total_backup_size_in_mega_bytes = self.total_bytes / MB
        record.actual_incremental_backup_size_in_mega_bytes = self.written_bytes / MB
        record.backup_progress_in_mega_bytes = self.total_bytes / MB
        record.current_backup_rate_in_mega_bytes_per_second = (
            round(self.written_bytes / MB / self.seconds, 3) if self.seconds > 0 else 0.0)
        record.elapsed_time_in_seconds = int(round(self.seconds))
        record.estimated_seconds_to_completion = 0


class SnapshotStore:
    """One region's snapshot bucket: ``blocks/<sha256>`` and ``manifests/<snapshot>.json``.

    ``s3`` is the stack's ``ctx.s3``; ``s3_client_in_region`` a boto3 S3
    client of the bucket's region (a bucket is created in its region).
    """

    def __init__(self, s3, account_id: str, region: str, s3_client_in_region):
        self.s3, self.region = s3, region
        self.bucket = bucket_name(account_id, region)
        self._regional = s3_client_in_region
        self._ready = False

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def manifest_key(self, snapshot_id: str) -> str:
        return f"manifests/{snapshot_id}.json"

    def ensure_bucket(self) -> None:
        if self._ready or self.s3.bucket_exists(self.bucket):
            self._ready = True
            return
        client = self._regional()
        kwargs = {} if self.region == "us-east-1" else {
            "CreateBucketConfiguration": {"LocationConstraint": self.region}}
        try:
            client.create_bucket(Bucket=self.bucket, **kwargs)
        except client.exceptions.BucketAlreadyOwnedByYou:
            pass
        self._ready = True

    def existing_blocks(self) -> dict[str, int]:
        """``{block key: bytes}`` of every block already in the bucket."""
        return {o["Key"]: o["Size"] for o in self.s3.list(self.uri("blocks/"))}

    # -- writing -----------------------------------------------------------------
    def save(self, image: ClusterImage, snapshot_id: str, about: dict) -> Written:
        """Store ``image`` as snapshot ``snapshot_id``: new blocks, then the manifest (last, so a
        manifest only ever names blocks that are there)."""
        started = time.monotonic()
        self.ensure_bucket()
        existing = self.existing_blocks()
        uploaded: dict[str, int] = {}
        referenced: dict[str, int] = {}
        tables = []
        for table in image.tables:
            slices = []
            for slice_, (data, rows, sorted_rows) in sorted(table["slices"].items()):
                blocks = []
                for digest, body, nrows in blocks_of(data):
                    key = f"blocks/{digest}"
                    if key not in existing and key not in uploaded:
                        self.s3.write(self.uri(key), body)
                        uploaded[key] = len(body)
                    referenced[key] = len(body)
                    blocks.append({"key": key, "rows": nrows, "bytes": len(body)})
                slices.append({"slice": slice_, "rows": int(rows), "sorted_rows": int(sorted_rows),
                               "blocks": blocks})
            tables.append({k: v for k, v in table.items() if k != "slices"} | {"slices": slices})
        manifest = {"format": MANIFEST_FORMAT, "snapshot": snapshot_id, "tables": tables,
                    "sequences": image.sequences, **about}
        body = json.dumps(manifest, separators=(",", ":"), sort_keys=True).encode()
        self.s3.write(self.uri(self.manifest_key(snapshot_id)), body, ContentType="application/json")
        return Written(total_bytes=sum(referenced.values()) + len(body),
                       written_bytes=sum(uploaded.values()) + len(body),
                       blocks=len(referenced), blocks_written=len(uploaded),
                       seconds=time.monotonic() - started)

    def copy_to(self, other: "SnapshotStore", snapshot_id: str) -> Written:
        """Copy a snapshot (the blocks ``other`` lacks, then the manifest) to another region's bucket."""
        started = time.monotonic()
        manifest = self.manifest(snapshot_id)
        other.ensure_bucket()
        existing = other.existing_blocks()
        referenced, uploaded = {}, {}
        for table in manifest["tables"]:
            for slice_ in table["slices"]:
                for block in slice_["blocks"]:
                    key = block["key"]
                    referenced[key] = block["bytes"]
                    if key not in existing and key not in uploaded:
                        other.s3.write(other.uri(key), self.s3.read(self.uri(key)))
                        uploaded[key] = block["bytes"]
        body = self.s3.read(self.uri(self.manifest_key(snapshot_id)))
        other.s3.write(other.uri(other.manifest_key(snapshot_id)), body, ContentType="application/json")
        return Written(total_bytes=sum(referenced.values()) + len(body),
                       written_bytes=sum(uploaded.values()) + len(body), blocks=len(referenced),
                       blocks_written=len(uploaded), seconds=time.monotonic() - started)

    # -- reading -----------------------------------------------------------------
    def manifest(self, snapshot_id: str) -> dict | None:
        """The snapshot's manifest, or None when it has none (a snapshot taken before the cluster held data)."""
        if not self.s3.bucket_exists(self.bucket):
            return None
        try:
            return json.loads(self.s3.read(self.uri(self.manifest_key(snapshot_id))))
        except Exception as exc:
            if "NoSuchKey" in type(exc).__name__ or "NoSuchKey" in str(exc) or "404" in str(exc):
                return None
            raise

    def block(self, key: str):
        """One block's rows, as a pyarrow table."""
        import pyarrow.parquet as pq
        return pq.read_table(io.BytesIO(self.s3.read(self.uri(key))))

    # -- deleting ----------------------------------------------------------------
    def delete(self, *snapshot_ids: str) -> int:
        """Remove the snapshots' manifests, then the blocks nobody needs any more; the blocks deleted.

        Several at once (the automated snapshots of a deleted cluster) cost one sweep."""
        if not snapshot_ids or not self.s3.bucket_exists(self.bucket):
            return 0
        self.s3.delete([self.uri(self.manifest_key(snapshot_id)) for snapshot_id in snapshot_ids])
        return self.collect_garbage()

    def collect_garbage(self) -> int:
        """Mark every block a remaining manifest names; sweep (delete) the others. The count deleted."""
        marked = set()
        for obj in self.s3.list(self.uri("manifests/")):
            manifest = json.loads(self.s3.read(self.uri(obj["Key"])))
            for table in manifest["tables"]:
                for slice_ in table["slices"]:
                    marked.update(block["key"] for block in slice_["blocks"])
        unreferenced = [key for key in self.existing_blocks() if key not in marked]
        self.s3.delete([self.uri(key) for key in unreferenced])
        return len(unreferenced)


# --------------------------------------------------------------------------- restoring
def restore(warehouse, manifest: dict, store: SnapshotStore) -> int:
    """Load a manifest's tables and blocks into an empty ``warehouse``; the rows loaded.

    With the same slice count as the snapshot's cluster, each block goes back
    to its slice (and the unsorted region is what it was). With another
    count (a restore to another NodeType or NumberOfNodes), the rows are
    distributed again by each table's DISTSTYLE, as Redshift does.
    """
    same_layout = manifest.get("slices") == warehouse.layout.count \
        and manifest.get("number_of_nodes") == warehouse.number_of_nodes
    catalog = storage.CATALOG_SCHEMA
    loaded = 0

    def work(cursor):
        nonlocal loaded
        for seq in manifest.get("sequences", []):
            cursor.execute(f"CREATE SCHEMA IF NOT EXISTS {storage.quote(seq['schema'])}")
            cursor.execute(f"CREATE SEQUENCE IF NOT EXISTS {storage.quote(seq['schema'])}.{storage.quote(seq['name'])} "
                           f"START {int(seq['next'])} INCREMENT {int(seq['increment'])}")
        for t in manifest["tables"]:
            cursor.execute(f"CREATE SCHEMA IF NOT EXISTS {storage.quote(t['schema'])}")
            table = warehouse.storage.create(cursor, t["schema"], t["name"], t["columns_sql"], t["diststyle"],
                                             t["distkey"], t["sortkey"], t["interleaved"])
            if same_layout:
                for slice_ in t["slices"]:
                    target = warehouse.layout.slice_table(table, slice_["slice"])
                    for block in slice_["blocks"]:
                        cursor.register("__block", store.block(block["key"]))
                        cursor.execute(f"INSERT INTO {target} SELECT * FROM __block")
                        cursor.unregister("__block")
                        loaded += block["rows"]
                    cursor.execute(f"UPDATE {catalog}.slice_rows SET rows = ?, sorted_rows = ? "
                                   f"WHERE table_id = ? AND slice = ?",
                                   [slice_["rows"], slice_["sorted_rows"], table.table_id, slice_["slice"]])
                cursor.execute(f"UPDATE {catalog}.tables SET next_even = ? WHERE table_id = ?",
                               [t["next_even"], table.table_id])
            else:
                # ALL tables: one node's copy is the whole table.
                slices = t["slices"][:1] if t["diststyle"] == "ALL" else t["slices"]
                loaded += redistribute(cursor, warehouse.storage, table,
                                       [store.block(b["key"]) for s in slices for b in s["blocks"]])
    warehouse.transaction(work)
    return loaded


def redistribute(cursor, storage_: storage.Storage, table: storage.TableInfo, parts: list) -> int:
    """Route a table's rows (``parts``: pyarrow tables) to its slices on ``storage_``'s layout; the rows.

    Each row goes where its DISTSTYLE sends it on *that* layout: KEY by the
    hash of the DISTKEY modulo the slice count, EVEN round robin, ALL a copy
    on every node. This is how a restore to another node count, and a
    classic resize (``resize.py``), spread rows over a new number of slices.
    """
    import pyarrow as pa

    parts = [part for part in parts if part.num_rows]
    if not parts:
        return 0
    cursor.register("__rows", pa.concat_tables(parts))
    try:
        return storage_.insert(cursor, table, None, "SELECT * FROM __rows", None)
    finally:
        cursor.unregister("__rows")
