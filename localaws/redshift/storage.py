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

ALTER TABLE rebuilds every slice table with the new column definitions, rows
kept in their order (:meth:`Storage.rebuild`), or renames them all
(:meth:`Storage.rename`); MERGE runs its steps on every slice in one
transaction (:meth:`Storage.merge`, :class:`MergePlan`).
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass

from localaws.core import limits

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
    """The cluster's slices: ``count`` slices on ``nodes`` compute nodes.

    A new cluster has ``per_node`` slices on every node (the node type's
    default, ``nodes.py``), so ``count = nodes * per_node``. Slice numbers run
    across the cluster (node 0 has the first slices, node 1 the next ones...),
    as STV_SLICES shows them.

    A resize changes the layout (``resize.py``): a *classic* resize gives the
    new node count the node type's default slices; an *elastic* resize keeps
    ``count`` and spreads those slices over the new nodes, so a node may hold
    more or fewer than ``per_node``. Slice ``s`` is then on node
    ``s * nodes // count``: runs of consecutive slices, as even as they can be.
    """

    def __init__(self, nodes: int, per_node: int, count: int | None = None):
        self.nodes, self.per_node = nodes, per_node
        self.count = nodes * per_node if count is None else count
        if not 1 <= self.nodes <= self.count:
            raise ValueError(f"{self.count} slices cannot be spread over {self.nodes} nodes")

    def node_of(self, slice_: int) -> int:
        return slice_ * self.nodes // self.count

    def first_slice(self, node: int) -> int:
        """The lowest-numbered slice of ``node`` (where a DISTSTYLE ALL table keeps that node's copy)."""
        return -(-node * self.count // self.nodes)

    def slices_of(self, table: TableInfo) -> list[int]:
        """The slices that hold a share of ``table``: all, or for ALL each node's first slice."""
        if table.diststyle == "ALL":
            return [self.first_slice(node) for node in range(self.nodes)]
        return list(range(self.count))

    def slice_table(self, table: TableInfo, slice_: int) -> str:
        return f"slice_{slice_}.{table.physical_name}"

    def reshape(self, other: "Layout") -> None:
        """Become ``other``, in place: the warehouse, its Storage and its readers share this object."""
        self.nodes, self.per_node, self.count = other.nodes, other.per_node, other.count

    def __eq__(self, other) -> bool:
        return isinstance(other, Layout) and (self.nodes, self.count) == (other.nodes, other.count)

    def __repr__(self) -> str:
        return f"Layout(nodes={self.nodes}, count={self.count})"


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
        cursor.execute(f"INSERT INTO {CATALOG_SCHEMA}.tables VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0)",
                       [table_id, schema, name, diststyle, distkey, sortkey, interleaved, columns_sql])
        self.place(cursor, table)
        return table

    def place(self, cursor, table: TableInfo) -> None:
        """The physical side of a catalogued table on this layout: its (empty) slice tables, the
        view users query, and a zero row count per slice (CREATE TABLE; a resize re-places tables)."""
        for slice_ in self.layout.slices_of(table):
            cursor.execute(f"CREATE TABLE {self.layout.slice_table(table, slice_)} ({table.columns_sql})")
        self.create_view(cursor, table)
        cursor.execute(f"INSERT INTO {CATALOG_SCHEMA}.slice_rows SELECT ?, s, 0, 0 FROM unnest(?) t(s)",
                       [table.table_id, self.layout.slices_of(table)])

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

    @staticmethod
    @contextlib.contextmanager
    def one_thread(cursor):
        """Write with one DuckDB thread. With two, rows reach the slices' row groups (the
        blocks of STL_SCAN and zone maps) in an order that depends on thread timing, so a
        table's block count and block contents could differ from run to run."""
        import duckdb
        cursor.execute("SET threads = 1")
        try:
            yield
        finally:
            try:
                cursor.execute(f"SET threads = {limits.duckdb_config('redshift')['threads']}")
            except duckdb.Error:
                pass        # a failed statement aborted the transaction: the next write restores it

    def insert(self, cursor, table: TableInfo, columns: list[str] | None, source_sql: str,
               params: list | None) -> int:
        with self.one_thread(cursor):
            return self._insert(cursor, table, columns, source_sql, params)

    def _insert(self, cursor, table: TableInfo, columns: list[str] | None, source_sql: str,
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
            self.rewrite_slices(cursor, table, table.columns_sql, "*", "ORDER BY " + order)
        self.count_rows(cursor, table, sorted_rule="all")

    def rewrite_slices(self, cursor, table: TableInfo, columns_sql: str, select_sql: str, order_by: str = "",
                       columns: list[str] | None = None) -> None:
        """Make every slice table anew with ``columns_sql``, filled with ``SELECT select_sql`` of its old
        rows (in ``order_by`` order; into ``columns`` when given, the rest get their DEFAULT)."""
        into = f" ({', '.join(quote(c) for c in columns)})" if columns else ""
        with self.one_thread(cursor):
            for slice_ in self.layout.slices_of(table):
                name = self.layout.slice_table(table, slice_)
                cursor.execute(f"CREATE OR REPLACE TEMP TABLE __rewrite AS SELECT {select_sql} FROM {name} {order_by}")
                cursor.execute(f"DROP TABLE {name}")
                cursor.execute(f"CREATE TABLE {name} ({columns_sql})")
                cursor.execute(f"INSERT INTO {name}{into} SELECT * FROM __rewrite")
            cursor.execute("DROP TABLE IF EXISTS __rewrite")

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

    # -- ALTER TABLE and MERGE (engine.py reads the statements; these do the slices' part) --------
    def name_taken(self, cursor, schema: str, name: str) -> bool:
        """Is ``schema.name`` a distributed table, a view or a DuckDB table already?"""
        return bool(self.lookup(cursor, schema, name) or cursor.execute(
            "SELECT 1 FROM duckdb_views() WHERE database_name = current_database() AND schema_name = ? "
            "AND view_name = ? UNION ALL SELECT 1 FROM duckdb_tables() WHERE database_name = current_database() "
            "AND schema_name = ? AND table_name = ?", [schema, name, schema, name]).fetchone())

    def rebuild(self, cursor, table: TableInfo, columns_sql: str, select_sql: str, columns: list[str],
                distkey: str | None = None, sortkey: list[str] | None = None) -> TableInfo:
        """ALTER TABLE ADD / DROP / RENAME COLUMN: every slice table made anew with ``columns_sql``.

        Each slice keeps its rows, in their order (so the sorted region stays
        sorted): ``select_sql`` picks them from the old slice table, into the
        new table's ``columns`` (a column left out gets its DEFAULT, and NOT
        NULL and the VARCHAR length checks apply). The view and the catalog
        (definitions, DISTKEY, SORTKEY) follow.
        """
        self.rewrite_slices(cursor, table, columns_sql, select_sql, columns=columns)
        table.columns_sql = columns_sql
        table.distkey = table.distkey if distkey is None else distkey
        table.sortkey = table.sortkey if sortkey is None else sortkey
        cursor.execute(f"UPDATE {CATALOG_SCHEMA}.tables SET columns_sql = ?, distkey = ?, sortkey = ? "
                       f"WHERE table_id = ?", [columns_sql, table.distkey, table.sortkey, table.table_id])
        self.create_view(cursor, table)
        return table

    def rename(self, cursor, table: TableInfo, new_name: str) -> TableInfo:
        """ALTER TABLE ... RENAME TO: every slice table, the view and the catalog row take the new name."""
        if self.name_taken(cursor, table.schema, new_name):
            raise errors.SQLError(errors.DUPLICATE_TABLE, f'relation "{new_name}" already exists')
        cursor.execute(f"DROP VIEW {table.qualified}")
        renamed = TableInfo(table.table_id, table.schema, new_name, table.diststyle, table.distkey,
                            table.sortkey, table.columns_sql, table.next_even)
        for slice_ in self.layout.slices_of(table):
            cursor.execute(f"ALTER TABLE {self.layout.slice_table(table, slice_)} RENAME TO {renamed.physical_name}")
        self.create_view(cursor, renamed)
        cursor.execute(f"UPDATE {CATALOG_SCHEMA}.tables SET table_name = ? WHERE table_id = ?",
                       [new_name, table.table_id])
        return renamed

    def merge(self, cursor, table: TableInfo, plan: "MergePlan", params: list | None) -> int:
        """MERGE into a distributed table, in the caller's transaction; the rows updated, deleted
        and inserted (see :class:`MergePlan` for the steps)."""
        def run(sql: str):
            return cursor.execute(sql, params if params and "$" in sql else None)

        target = quote(plan.target_alias)
        source = f"__merge_source AS {quote(plan.source_alias)}"
        slices = self.layout.slices_of(table)
        counted = slices[:1] if table.diststyle == "ALL" else slices      # ALL: every copy changes alike
        run(f"CREATE OR REPLACE TEMP TABLE __merge_source AS {plan.source_sql}")
        if plan.remove_duplicates:
            width = len(cursor.execute("SELECT * FROM __merge_source LIMIT 0").description)
            if width != len(cursor.execute(f"SELECT * FROM {table.qualified} LIMIT 0").description):
                raise errors.SQLError(errors.DATATYPE_MISMATCH, "MERGE ... REMOVE DUPLICATES needs a source table "
                                      "with the same number of columns as the target table, in the same order")
        elif plan.update is not None or plan.delete:
            for slice_ in counted:      # a target row may match one source row at most
                if run(f"SELECT 1 FROM {self.layout.slice_table(table, slice_)} AS {target} JOIN {source} "
                       f"ON {plan.condition} GROUP BY {target}.rowid HAVING count(*) > 1 LIMIT 1").fetchall():
                    raise errors.SQLError(errors.CARDINALITY_VIOLATION, errors.MERGE_DUPLICATES)
        if plan.remove_duplicates:     # every source row goes in: new ones, and the new version of matched ones
            run("CREATE OR REPLACE TEMP TABLE __merge_new AS SELECT * FROM __merge_source")
        elif plan.insert_values is not None:   # chosen before anything changes: matched is matched once
            run(f"CREATE OR REPLACE TEMP TABLE __merge_new AS SELECT {plan.insert_values} FROM {source} "
                f"WHERE NOT EXISTS (SELECT 1 FROM {table.qualified} AS {target} WHERE {plan.condition})")
        changed = 0
        for slice_ in slices:
            name = f"{self.layout.slice_table(table, slice_)} AS {target}"
            if plan.update is not None:
                n = run(f"UPDATE {name} SET {plan.update} FROM {source} WHERE {plan.condition}").fetchone()[0]
            elif plan.delete or plan.remove_duplicates:
                n = run(f"DELETE FROM {name} USING {source} WHERE {plan.condition}").fetchone()[0]
            else:
                n = 0
            changed += int(n) if slice_ in counted and not plan.remove_duplicates else 0
        if plan.moves_rows and table.diststyle == "KEY":
            self.redistribute(cursor, table)
        self.count_rows(cursor, table, sorted_rule="shrink")
        inserted = 0
        if plan.remove_duplicates or plan.insert_values is not None:
            table = self.lookup(cursor, table.schema, table.name) or table      # next_even may have moved
            inserted = self.insert(cursor, table, None if plan.remove_duplicates else plan.insert_columns,
                                   "SELECT * FROM __merge_new", None)
            cursor.execute("DROP TABLE __merge_new")
        cursor.execute("DROP TABLE __merge_source")
        return changed + inserted


@dataclass
class MergePlan:
    """A MERGE statement's parts, as DuckDB SQL (engine.py builds it from the parsed statement).

    :meth:`Storage.merge` runs them in this order, in one transaction:

    1. the source rows (``source_sql``: a table, a view or a subquery) are
       staged once, as ``source_alias``;
    2. a target row that matches more than one source row fails the statement
       (Redshift: ``Found multiple matches to update the same tuple.``);
    3. the source rows no target row matches are set aside for INSERT *before*
       anything changes, so a row updated out of the match is not inserted too;
    4. on every slice, matched target rows are updated (``update``: ``a = s.a,
       ...``) or deleted (``delete``); an update of the DISTKEY moves the rows
       to their new slices;
    5. the set-aside rows are inserted like INSERT's (routed by DISTSTYLE,
       defaults, NOT NULL, length checks), and the row counts kept right.

    ``remove_duplicates`` (``MERGE ... REMOVE DUPLICATES``, Redshift's
    simplified mode): every target row that matches a source row is deleted
    and every source row inserted, so a matched row is replaced by its source
    version and duplicates among the matched rows disappear.
    """
    source_sql: str
    source_alias: str
    target_alias: str
    condition: str
    update: str | None = None
    delete: bool = False
    insert_columns: list[str] | None = None
    insert_values: str | None = None
    remove_duplicates: bool = False
    moves_rows: bool = False
