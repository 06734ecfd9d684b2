"""Resizing a cluster: its rows moved to a new set of slices, for real.

Redshift resizes a cluster in one of two ways (Amazon Redshift Management
Guide, "Resizing clusters in Amazon Redshift", read in the copy published as
``awsdocs/amazon-redshift-management-guide``
``doc_source/managing-cluster-operations.md``; AWS Knowledge Center, "How
does elastic resize work in Amazon Redshift?",
https://repost.aws/knowledge-center/redshift-elastic-resize; both read on
2026-11-30):

- **Classic resize** (``ResizeCluster(Classic=True)``, and ``ModifyCluster``
  with ``NodeType`` and ``NumberOfNodes``): Redshift provisions the target
  cluster and copies every row to it, "mapping them to a slice based on
  distribution settings". The new cluster has the node type's default slices
  per node, so the slice count changes and every row of a KEY or EVEN table
  may land on another slice. **While it runs the source cluster is
  read-only**: queries that read run, queries that write cannot. It takes
  hours to days on AWS.
- **Elastic resize** (the default of ``ResizeCluster``): Redshift "aims to
  maintain the same number of data slices"; it moves whole slices to the
  new nodes (*slice mapping*), so no row changes slice. Minutes on AWS. It
  does not work to or from a single-node cluster.

Neither sorts tables ("Amazon Redshift doesn't sort tables during a resize
operation"): run VACUUM afterwards if you need sorted blocks.

Here :func:`resize` does the same to a warehouse, in place, in **one DuckDB
transaction holding the warehouse's lock** (``Warehouse.transaction``): a
failure leaves the cluster exactly as it was. While the rows move, writes
wait, and so does every *new* statement (each takes that lock for a moment to
number itself): the cluster is briefly unavailable here, where AWS keeps it
read-only (classic) or holds queries for a few minutes (elastic). Statements
already running finish against the old slices. An open transaction block of
another session whose tables moved fails when it next writes or commits; on
AWS the resize restarts the cluster and "all uncommitted transactions
(including COPY) are rolled back".

- classic: every table is read (one copy for ALL), its old slice tables are
  dropped, new ones created on the new layout (``Storage.place``), and the
  rows routed again by DISTSTYLE/DISTKEY with the same code a restore to
  another node count uses (:func:`.snapshots.redistribute`). Checksums of
  every table are unchanged; its rows per slice are not.
- elastic: KEY, EVEN and AUTO tables keep their slices (a slice moves whole
  to its node: nothing to copy on one machine); ALL tables get one copy per
  new node, on each node's first slice.

STV_SLICES shows the new layout afterwards. Differences from AWS: the
redistributed rows count as unsorted (SVV_TABLE_INFO.unsorted) until VACUUM;
classic resize keeps the system tables here (on AWS it copies user tables
only); elastic resize takes no snapshot first (on AWS it does).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from . import snapshots, storage
from .nodes import slices_per_node

MB = 1024 * 1024


@dataclass
class Progress:
    """What DescribeResize reports while the rows move (tables as ``schema.table``)."""
    not_started: list[str] = field(default_factory=list)
    in_progress: list[str] = field(default_factory=list)
    completed: list[str] = field(default_factory=list)
    bytes_moved: int = 0          # Arrow (in-memory) bytes of the rows moved so far
    rows_moved: int = 0


def target_layout(current: storage.Layout, node_type: str, nodes: int, classic: bool) -> storage.Layout:
    """The layout after a resize: classic gives the node type's default slices per node; elastic
    keeps the slice count (ValueError when there are more nodes than slices)."""
    per_node = slices_per_node(node_type)
    if classic:
        return storage.Layout(nodes, per_node)
    return storage.Layout(nodes, max(1, current.count // nodes), current.count)


def resize(warehouse, node_type: str, nodes: int, classic: bool, progress: Progress | None = None) -> Progress:
    """Give ``warehouse`` ``nodes`` nodes of ``node_type``, moving rows as a classic or elastic resize does.

    Runs as one transaction under the write lock (see the module docstring);
    ``progress`` is updated table by table, for DescribeResize.
    """
    progress = progress if progress is not None else Progress()
    layout = warehouse.layout
    new = target_layout(layout, node_type, nodes, classic)
    before = storage.Layout(layout.nodes, layout.per_node, layout.count)
    was = warehouse.node_type, warehouse.number_of_nodes

    def work(cursor):
        relayout(cursor, warehouse, new, classic, progress)
        layout.reshape(new)            # still under the lock: no writer sees old tables with the new layout
        warehouse.node_type, warehouse.number_of_nodes = node_type, nodes

    try:
        warehouse.transaction(work)
    except BaseException:
        layout.reshape(before)         # the transaction rolled back: so does the layout
        warehouse.node_type, warehouse.number_of_nodes = was
        raise
    return progress


def adopt(warehouse, nodes: int, count: int) -> None:
    """After the warehouse of an elastically resized cluster is opened again (ResumeCluster):
    take the slice layout its file already has (``count`` slices over ``nodes`` nodes).

    The warehouse opens with the node type's default layout; the tables on
    disk already sit on ``count`` slices, so nothing moves: the layout, the
    slice schemas and STV_SLICES are set to match.
    """
    new = storage.Layout(nodes, max(1, count // nodes), count)
    if new == warehouse.layout:
        return

    def work(cursor):
        relayout(cursor, warehouse, new, classic=False, progress=Progress())
        warehouse.layout.reshape(new)
    warehouse.transaction(work)


def relayout(cursor, warehouse, new: storage.Layout, classic: bool, progress: Progress) -> None:
    """Move every table of ``warehouse`` onto ``new`` (inside the caller's transaction)."""
    old_count = warehouse.layout.count
    for slice_ in range(new.count):
        cursor.execute(f"CREATE SCHEMA IF NOT EXISTS slice_{slice_}")
    target = storage.Storage(new)
    tables = warehouse.storage.tables(cursor)
    placed = {table.table_id: sorted(s for (s,) in cursor.execute(
        f"SELECT slice FROM {storage.CATALOG_SCHEMA}.slice_rows WHERE table_id = ?", [table.table_id]).fetchall())
        for table in tables}
    moving = [t for t in tables if classic or placed[t.table_id] != new.slices_of(t)]
    progress.not_started = [f"{t.schema}.{t.name}" for t in moving]
    for table in moving:
        name = f"{table.schema}.{table.name}"
        progress.not_started.remove(name)
        progress.in_progress = [name]
        rows = cursor.sql(f"SELECT * FROM {table.qualified}").to_arrow_table()   # ALL: one copy
        for slice_ in placed[table.table_id]:
            cursor.execute(f"DROP TABLE IF EXISTS {warehouse.layout.slice_table(table, slice_)}")
        cursor.execute(f"DELETE FROM {storage.CATALOG_SCHEMA}.slice_rows WHERE table_id = ?", [table.table_id])
        cursor.execute(f"UPDATE {storage.CATALOG_SCHEMA}.tables SET next_even = 0 WHERE table_id = ?",
                       [table.table_id])
        table.next_even = 0
        target.place(cursor, table)
        progress.rows_moved += snapshots.redistribute(cursor, target, table, [rows])
        progress.bytes_moved += rows.nbytes
        progress.in_progress = []
        progress.completed.append(name)
    for slice_ in range(new.count, old_count):          # a classic resize to fewer slices
        left = cursor.execute("SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database() "
                              "AND schema_name = ?", [f"slice_{slice_}"]).fetchone()[0]
        if not left:
            cursor.execute(f"DROP SCHEMA IF EXISTS slice_{slice_}")
    write_slices(cursor, new)


def write_slices(cursor, layout: storage.Layout) -> None:
    """STV_SLICES' rows for ``layout``: node, slice, and the slice's number within its node."""
    cursor.execute(f"DELETE FROM {storage.CATALOG_SCHEMA}.slices")
    cursor.executemany(f"INSERT INTO {storage.CATALOG_SCHEMA}.slices VALUES (?, ?, ?)",
                       [(layout.node_of(s), s, s - layout.first_slice(layout.node_of(s)))
                        for s in range(layout.count)])
