"""Where a Redshift table's rows live: one physical table per slice.

On Redshift every table is cut into one share per *slice* (a slice is a part
of a compute node: its own CPU share, memory and disk). Which slice a row goes
to is the table's **distribution style**:

- ``KEY``: a hash of the DISTKEY column, modulo the number of slices, so equal
  keys always land on the same slice (joins on the key need no data movement,
  but a key with few values, or one very common value, leaves slices uneven:
  *skew*).
- ``EVEN``: round robin, slice after slice.
- ``ALL``: a full copy on every node (on the node's first slice): small
  dimension tables that every slice joins with.
- ``AUTO`` (the default): Redshift picks ALL for a small table and later
  switches to KEY or EVEN. Here AUTO simply behaves as EVEN, and
  SVV_TABLE_INFO shows it as ``AUTO(EVEN)``.

Here a slice is a DuckDB schema: slice 3's share of ``public.sales`` is the
table ``slice_3."public.sales"``. The name users see, ``public.sales``, is a
view that UNION ALLs the slices (for ALL: one copy), so every query reads
every row exactly once and results are always right.

Within a slice, rows are kept in **SORTKEY** order by VACUUM; rows inserted
since then sit at the end, in an *unsorted region*, exactly the number
SVV_TABLE_INFO's ``unsorted`` reports. Sorted rows make each block's min/max
(its *zone map*) narrow, so a range filter can skip whole blocks. A block
here is a DuckDB row group (``block_rows`` rows; Redshift's blocks are 1 MB of
one column).

The catalog (distribution, sort key, per-slice row counts) lives in the
DuckDB schema ``_rs``, so it survives a restart with the data.
"""
from __future__ import annotations

from dataclasses import dataclass

from . import errors

#: The hidden schema with the warehouse's own bookkeeping.
CATALOG_SCHEMA = "_rs"

BOOTSTRAP = f"""
CREATE SCHEMA IF NOT EXISTS {CATALOG_SCHEMA};
CREATE SCHEMA IF NOT EXISTS public;
CREATE SEQUENCE IF NOT EXISTS {CATALOG_SCHEMA}.table_ids START 100100;
CREATE TABLE IF NOT EXISTS {CATALOG_SCHEMA}.tables (
    table_id INTEGER, schema_name VARCHAR, table_name VARCHAR,
    diststyle VARCHAR, distkey VARCHAR, sortkey VARCHAR[], interleaved BOOLEAN,
    columns_sql VARCHAR, next_even BIGINT);
CREATE TABLE IF NOT EXISTS {CATALOG_SCHEMA}.slice_rows (
    table_id INTEGER, slice INTEGER, rows BIGINT, sorted_rows BIGINT);
"""


def quote(name: str) -> str:
    """A DuckDB identifier in double quotes (``public.sales`` -> ``"public.sales"``)."""
    return '"' + name.replace('"', '""') + '"'


@dataclass
class TableInfo:
    """One distributed table as the catalog knows it."""
    table_id: int
    schema: str
    name: str
    diststyle: str            # KEY, EVEN, ALL or AUTO (stored as written; AUTO acts as EVEN)
    distkey: str | None
    sortkey: list[str]
    columns_sql: str          # the DuckDB column definitions, to create slice tables again
    next_even: int = 0        # the slice the next EVEN row goes to

    @property
    def qualified(self) -> str:
        return f"{quote(self.schema)}.{quote(self.name)}"

    @property
    def physical_name(self) -> str:
        """The table's name inside each slice schema: ``"public.sales"``."""
        return quote(f"{self.schema}.{self.name}")


class Layout:
    """The cluster's slices: ``nodes`` compute nodes of ``per_node`` slices each.

    Slice numbers run across the cluster (node 0 has slices 0..per_node-1,
    node 1 the next ones...), as STV_SLICES shows them.
    """

    def __init__(self, nodes: int, per_node: int):
        self.nodes, self.per_node = nodes, per_node
        self.count = nodes * per_node

    def node_of(self, slice_: int) -> int:
        return slice_ // self.per_node

    def slices_of(self, table: TableInfo) -> list[int]:
        """The slices that hold a share of ``table``: all, or for ALL each node's first slice."""
        if table.diststyle == "ALL":
            return [node * self.per_node for node in range(self.nodes)]
        return list(range(self.count))

    def slice_table(self, table: TableInfo, slice_: int) -> str:
        return f"slice_{slice_}.{table.physical_name}"


class Storage:
    """The catalog and the per-slice tables, worked through a DuckDB cursor."""

    def __init__(self, layout: Layout):
        self.layout = layout

    def bootstrap(self, cursor) -> None:
        cursor.execute(BOOTSTRAP)
        for slice_ in range(self.layout.count):
            cursor.execute(f"CREATE SCHEMA IF NOT EXISTS slice_{slice_}")

    # -- the catalog ----------------------------------------------------------
    def lookup(self, cursor, schema: str, name: str) -> TableInfo | None:
        row = cursor.execute(
            f"SELECT table_id, schema_name, table_name, diststyle, distkey, sortkey, columns_sql, next_even "
            f"FROM {CATALOG_SCHEMA}.tables WHERE schema_name = ? AND table_name = ?", [schema, name]).fetchone()
        return TableInfo(*row[:5], list(row[5] or []), row[6], row[7]) if row else None

    def tables(self, cursor) -> list[TableInfo]:
        rows = cursor.execute(
            f"SELECT table_id, schema_name, table_name, diststyle, distkey, sortkey, columns_sql, next_even "
            f"FROM {CATALOG_SCHEMA}.tables ORDER BY table_id").fetchall()
        return [TableInfo(*r[:5], list(r[5] or []), r[6], r[7]) for r in rows]

    # -- DDL --------------------------------------------------------------------
    def create(self, cursor, schema: str, name: str, columns_sql: str, diststyle: str,
               distkey: str | None, sortkey: list[str], interleaved: bool = False) -> TableInfo:
        """One table per slice, the view users query, and the catalog rows."""
        if self.lookup(cursor, schema, name) or cursor.execute(
                "SELECT 1 FROM duckdb_views() WHERE database_name = current_database() AND schema_name = ? "
                "AND view_name = ? UNION ALL SELECT 1 FROM duckdb_tables() WHERE database_name = current_database() "
                "AND schema_name = ? AND table_name = ?", [schema, name, schema, name]).fetchone():
            raise errors.SQLError(errors.DUPLICATE_TABLE, f'relation "{name}" already exists')
        table_id = cursor.execute(f"SELECT nextval('{CATALOG_SCHEMA}.table_ids')").fetchone()[0]
        table = TableInfo(table_id, schema, name, diststyle, distkey, sortkey, columns_sql)
        for slice_ in self.layout.slices_of(table):
            cursor.execute(f"CREATE TABLE {self.layout.slice_table(table, slice_)} ({columns_sql})")
        self.create_view(cursor, table)
        cursor.execute(f"INSERT INTO {CATALOG_SCHEMA}.tables VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0)",
                       [table_id, schema, name, diststyle, distkey, sortkey, interleaved, columns_sql])
        cursor.execute(f"INSERT INTO {CATALOG_SCHEMA}.slice_rows SELECT ?, s, 0, 0 FROM unnest(?) t(s)",
                       [table_id, self.layout.slices_of(table)])
        return table

    def create_view(self, cursor, table: TableInfo) -> None:
        """The name users query: every slice's rows (for ALL, the first node's copy)."""
        slices = self.layout.slices_of(table)[:1] if table.diststyle == "ALL" else self.layout.slices_of(table)
        union = "\nUNION ALL ".join(f"SELECT * FROM {self.layout.slice_table(table, s)}" for s in slices)
        cursor.execute(f"CREATE OR REPLACE VIEW {table.qualified} AS {union}")

    def drop(self, cursor, table: TableInfo) -> None:
        cursor.execute(f"DROP VIEW IF EXISTS {table.qualified}")
        for slice_ in self.layout.slices_of(table):
            cursor.execute(f"DROP TABLE IF EXISTS {self.layout.slice_table(table, slice_)}")
        cursor.execute(f"DELETE FROM {CATALOG_SCHEMA}.tables WHERE table_id = ?", [table.table_id])
        cursor.execute(f"DELETE FROM {CATALOG_SCHEMA}.slice_rows WHERE table_id = ?", [table.table_id])

    # -- writes ------------------------------------------------------------------
    def slice_expression(self, table: TableInfo) -> str:
        """SQL giving each staged row its slice (see the module docstring)."""
        n = self.layout.count
        if table.diststyle == "KEY":
            # DuckDB's hash(): equal values (also 1 and 1::BIGINT) get equal hashes; NULLs share one slice.
            return f"CAST(hash({quote(table.distkey)}) % {n} AS INTEGER)"
        return f"CAST((row_number() OVER () - 1 + {table.next_even}) % {n} AS INTEGER)"

    def insert(self, cursor, table: TableInfo, columns: list[str] | None, source_sql: str,
               params: list | None) -> int:
        """Route the rows of ``source_sql`` (a SELECT or VALUES) to their slices; the row count.

        The rows are first staged in a temporary table with the table's own
        column definitions (so defaults, IDENTITY sequences, NOT NULL and type
        casts apply once), then each slice receives its share.
        """
        target = f" ({', '.join(quote(c) for c in columns)})" if columns else ""
        cursor.execute(f"CREATE OR REPLACE TEMP TABLE __stage ({table.columns_sql})")
        cursor.execute(f"INSERT INTO __stage{target} {source_sql}", params or None)
        count = cursor.execute("SELECT count(*) FROM __stage").fetchone()[0]
        if table.diststyle == "ALL":
            for slice_ in self.layout.slices_of(table):
                cursor.execute(f"INSERT INTO {self.layout.slice_table(table, slice_)} SELECT * FROM __stage")
        else:
            cursor.execute(f"CREATE OR REPLACE TEMP TABLE __routed AS "
                           f"SELECT *, {self.slice_expression(table)} AS __slice FROM __stage")
            for slice_ in range(self.layout.count):
                cursor.execute(f"INSERT INTO {self.layout.slice_table(table, slice_)} "
                               f"SELECT * EXCLUDE (__slice) FROM __routed WHERE __slice = ?", [slice_])
            cursor.execute("DROP TABLE __routed")
            if table.diststyle != "KEY":
                cursor.execute(f"UPDATE {CATALOG_SCHEMA}.tables SET next_even = ? WHERE table_id = ?",
                               [(table.next_even + count) % self.layout.count, table.table_id])
        cursor.execute("DROP TABLE __stage")
        self.count_rows(cursor, table, sorted_rule="keep")
        return count

    def redistribute(self, cursor, table: TableInfo) -> None:
        """After an UPDATE of the DISTKEY column: move rows whose key now hashes to another slice."""
        cursor.execute(f"CREATE OR REPLACE TEMP TABLE __moved ({table.columns_sql})")
        expression = self.slice_expression(table)
        for slice_ in range(self.layout.count):
            name = self.layout.slice_table(table, slice_)
            cursor.execute(f"INSERT INTO __moved SELECT * FROM {name} WHERE {expression} <> {slice_}")
            cursor.execute(f"DELETE FROM {name} WHERE {expression} <> {slice_}")
        moved = cursor.execute("SELECT count(*) FROM __moved").fetchone()[0]
        if moved:
            self.insert(cursor, table, None, "SELECT * FROM __moved", None)
        cursor.execute("DROP TABLE __moved")

    def truncate(self, cursor, table: TableInfo) -> None:
        for slice_ in self.layout.slices_of(table):
            cursor.execute(f"DELETE FROM {self.layout.slice_table(table, slice_)}")
        self.count_rows(cursor, table, sorted_rule="all")

    def vacuum(self, cursor, table: TableInfo) -> None:
        """Rewrite each slice in sort-key order: its whole content becomes the sorted region.

        Each slice table is created anew (not DELETE + INSERT), so no block of
        old, deleted rows is left behind for scans to visit.
        """
        if table.sortkey:
            order = ", ".join(quote(c) for c in table.sortkey)
            for slice_ in self.layout.slices_of(table):
                name = self.layout.slice_table(table, slice_)
                cursor.execute(f"CREATE OR REPLACE TEMP TABLE __sorted AS SELECT * FROM {name} ORDER BY {order}")
                cursor.execute(f"DROP TABLE {name}")
                cursor.execute(f"CREATE TABLE {name} ({table.columns_sql})")
                cursor.execute(f"INSERT INTO {name} SELECT * FROM __sorted")
            cursor.execute("DROP TABLE IF EXISTS __sorted")
        self.count_rows(cursor, table, sorted_rule="all")

    def count_rows(self, cursor, table: TableInfo, sorted_rule: str) -> None:
        """Refresh the per-slice row counts (STV_TBL_PERM) after a write.

        ``sorted_rule``: ``keep`` (an INSERT: new rows are unsorted), ``all``
        (VACUUM, TRUNCATE: everything left is sorted), ``shrink`` (DELETE,
        UPDATE: the sorted count can only fall, an approximation: Redshift
        counts deleted rows until VACUUM).
        """
        slices = self.layout.slices_of(table)
        counts = cursor.execute(" UNION ALL ".join(
            f"SELECT {s} AS slice, count(*) AS n FROM {self.layout.slice_table(table, s)}" for s in slices)).fetchall()
        sorted_sql = {"keep": "sorted_rows", "all": "?", "shrink": "least(sorted_rows, ?)"}[sorted_rule]
        for slice_, rows in counts:
            params = [rows] + ([rows] if sorted_rule != "keep" else []) + [table.table_id, slice_]
            cursor.execute(f"UPDATE {CATALOG_SCHEMA}.slice_rows SET rows = ?, sorted_rows = {sorted_sql} "
                           f"WHERE table_id = ? AND slice = ?", params)
        if not table.sortkey:   # no sort key: nothing is "unsorted"
            cursor.execute(f"UPDATE {CATALOG_SCHEMA}.slice_rows SET sorted_rows = rows WHERE table_id = ?",
                           [table.table_id])
