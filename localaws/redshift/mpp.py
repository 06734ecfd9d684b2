"""Massively parallel processing: a SELECT cut into per-slice steps that run at once, and a leader step.

On Redshift the leader node compiles a query into *segments*. The first ones
run on every slice at the same time, each over the slice's own share of the
rows, and send what they produce over the network to the leader, which
finishes the query. Aggregation is split in two: each slice aggregates its
rows (*partial* aggregates), the leader merges the partials (*final*
aggregate). Only the partials travel: for ``GROUP BY origin`` that is three
rows per slice, whatever the table's size. This module does the same over
the slice tables of ``storage.py``:

1. **Split** (:func:`split`). sqlglot's tree of the SELECT becomes two queries.

   - The *slice step* keeps the query's FROM, JOINs and WHERE, reads one
     slice's tables, and computes the GROUP BY with partial aggregates:
     ``count(*)``, ``sum(x)``, ``min(x)``, ``max(x)`` as they are, ``avg(x)``
     as ``sum(x)`` and ``count(x)``. A query without aggregation sends only the
     columns the rest of the query needs (and, for ``ORDER BY ... LIMIT n``,
     only the slice's first n rows; for ``SELECT DISTINCT``, its distinct rows).
   - The *leader step* runs the rest over the slices' rows (``__partials``):
     the final aggregate (a count is the sum of the partial counts, a sum the
     sum of the partial sums, an average sum(sums) / sum(counts)), HAVING,
     window functions, DISTINCT, ORDER BY and LIMIT. Its columns keep the
     names and types the query has when it runs gathered. Counts, min, max
     and sums of integers or DECIMALs merge exactly; sums of DOUBLEs are
     added in another order, so they may differ in the last bits (as two
     runs of one parallel DuckDB query may).

2. **Run** (:func:`run`). A pool of threads runs the slice steps, each on a
   DuckDB cursor of its own: DuckDB releases Python's GIL while it works, so
   the slices really run at once (``MAX_WORKERS`` at a time). The steps start
   their transactions together under the warehouse's write lock, so every
   slice reads the same moment of the database, as one statement would. Each
   returns an Arrow table; the leader reads them all.

3. **Record** what each step did, from DuckDB's profile of it: STL_SCAN (the
   blocks each slice read) and SVL_QUERY_REPORT / SVL_QUERY_SUMMARY (the rows
   each step produced on each slice, its time, its bytes; the leader's steps
   are on slice 6411, which AWS's STL_RETURN page names as the leader node's).

What can be split, and why:

- one distributed table (DISTSTYLE KEY, EVEN or AUTO), first in FROM, with
  WHERE filters;
- joined with DISTSTYLE ALL tables (every node keeps a whole copy, so each
  slice joins its share with its node's copy), inner or LEFT;
- joined with another KEY table on both tables' DISTKEYs (*collocated*: rows
  that match are on the same slice): EXPLAIN's DS_DIST_NONE. Every other join
  needs rows to move between slices first (DS_DIST_*, DS_BCAST_INNER), which
  Redshift does over its network and this stand-in does not do;
- ``count(DISTINCT x)`` (and ``sum(DISTINCT x)``) when ``x`` is the table's
  DISTKEY: each value lives on one slice only, so the partial counts add up;
- any aggregate at all (``median``, ``percentile_cont``, ``listagg``,
  ``count(DISTINCT y)``...) when the GROUP BY has the DISTKEY: each group is
  then whole on one slice, which computes its final value.

Everything else runs *gathered*, exactly as before this module: one DuckDB
query over the views that UNION ALL the slices. That is subqueries, WITH,
UNION, ``$1`` parameters, statements inside a transaction block (they must
see the block's own writes), RIGHT and FULL joins, aggregates that partial
results cannot give (``median`` or ``count(DISTINCT y)`` over groups spread
across slices). The answer never depends on the path; ``EXPLAIN`` says which
one a query takes, and why.

Redshift Spectrum (``spectrum.py``) splits the same way: for an aggregate
over one external table (:func:`split_external`) each Spectrum worker runs
the slice step over the rows of its S3 files, and :func:`run` runs only the
leader step over the workers' partial results.

Threads: DuckDB's ``threads`` setting belongs to the whole database (``SET
threads`` on one cursor fails: "option threads cannot be set locally"), so the
warehouse keeps its bound from ``core/limits.py`` (2). A query runs on the
thread that asked for it, helped by the database's worker threads: with one
thread per slice step, the parallelism is the slices'.
"""
from __future__ import annotations

import functools
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field

from . import errors, storage

#: Slice steps running at once; None: one thread per slice (the benchmark compares 1 with that).
MAX_WORKERS: int | None = None

#: False: every query runs gathered (for comparisons; the answers are the same).
ENABLED = True

#: The slice number system tables give the leader node's steps (AWS's STL_RETURN page:
#: "Slice 6411 is on the leader node").
LEADER_SLICE = 6411

#: How long a query waits for a writer to commit before it starts its slice steps; past that it
#: runs gathered (one statement reads one snapshot on its own) rather than wait.
SNAPSHOT_WAIT = 0.05

#: The leader step's name for the slices' rows, and the Arrow table they arrive in.
PARTIALS, ARROW = "__partials", "__slice_results"

#: ``tree.meta`` key of a statement whose external table the Spectrum workers aggregated (spectrum.py).
EXTERNAL = "spectrum_partials"

#: DuckDB operators in a profile -> the step labels Redshift's query summary uses
#: (AWS: "Mapping the query plan to the query summary"). Other operators are not steps there.
LABELS = {
    "TABLE_SCAN": "scan", "HASH_JOIN": "hjoin", "NESTED_LOOP_JOIN": "nloop", "BLOCKWISE_NL_JOIN": "nloop",
    "CROSS_PRODUCT": "nloop", "PIECEWISE_MERGE_JOIN": "mjoin", "HASH_GROUP_BY": "aggr",
    "PERFECT_HASH_GROUP_BY": "aggr", "UNGROUPED_AGGREGATE": "aggr", "ORDER_BY": "sort", "TOP_N": "sort",
    "LIMIT": "limit", "STREAMING_LIMIT": "limit", "WINDOW": "window", "STREAMING_WINDOW": "window",
}


class Gathered(Exception):
    """The query cannot be split into slice steps; the message says why (EXPLAIN prints it)."""


# -- the parts of a plan --------------------------------------------------------------------------
@dataclass
class Source:
    """A table in FROM or JOIN: its alias in the query, and what the catalog says of it."""
    alias: str
    name: str                       # schema.table
    columns: dict[str, str]         # column -> DuckDB type, in the table's order
    ref: object                     # the query's sqlglot Table node
    info: storage.TableInfo | None = None    # None: an external (Spectrum) table

    @property
    def distkey(self) -> str | None:
        """The column rows are hashed on (DISTSTYLE KEY only)."""
        return self.info.distkey if self.info is not None and self.info.diststyle == "KEY" else None

    @property
    def copied(self) -> bool:
        """DISTSTYLE ALL: every node has the whole table."""
        return self.info is not None and self.info.diststyle == "ALL"


@dataclass
class Plan:
    """A SELECT cut in two: what every slice runs, and what the leader runs over their results."""
    sources: list[Source]
    slice_select: object            # sqlglot Select over the query's own table names
    leader_select: object           # sqlglot Select over PARTIALS
    aggregated: bool                # partial aggregates on the slices, final ones on the leader
    grouped: bool
    whole_groups: bool              # the GROUP BY has the DISTKEY: each group is on one slice
    pushed: str = ""                # what else the slices do: "top-N", "LIMIT", "DISTINCT" or ""

    def slice_sql(self, table_for) -> str:
        """The slice step in DuckDB SQL, each table replaced by ``table_for(source)`` (a sqlglot Table)."""
        from sqlglot import exp

        select = self.slice_select.copy()
        by_alias = {s.alias: s for s in self.sources}
        for ref in list(select.find_all(exp.Table)):
            source = by_alias[ref.alias_or_name.lower()]
            table = table_for(source)
            table.set("alias", ref.args.get("alias") or exp.TableAlias(this=ref.this.copy()))
            ref.replace(table)
        return select.sql(dialect="duckdb")

    def slice_sql_on(self, layout: storage.Layout, slice_: int) -> str:
        """The slice step of slice ``slice_``: its share of each table, its node's copy of ALL tables."""
        from sqlglot import exp

        def physical(source: Source):
            home = layout.slices_of(source.info)[layout.node_of(slice_)] if source.copied else slice_
            return exp.Table(this=exp.to_identifier(f"{source.info.schema}.{source.info.name}", quoted=True),
                             db=exp.to_identifier(f"slice_{home}"))
        return self.slice_sql(physical)

    def leader_sql(self, outputs: list[tuple[str, str]]) -> str:
        """The leader step in DuckDB SQL; ``outputs``: the (name, DuckDB type) of each column the
        query has when it runs gathered, which the leader's columns take."""
        from sqlglot import exp

        leader = self.leader_select.copy()
        if len(leader.expressions) != len(outputs):
            raise Gathered("the leader's columns do not line up with the query's")
        leader.set("expressions", [
            exp.alias_(exp.Cast(this=item.unalias().copy(), to=exp.DataType.build(kind, dialect="duckdb")),
                       exp.to_identifier(name, quoted=True))
            for item, (name, kind) in zip(leader.expressions, outputs)])
        return leader.sql(dialect="duckdb")


# -- split: from one query to slice step + leader step ------------------------------------------------
def only_gathered(split_function):
    """Any other error while splitting becomes Gathered: a query shape this module did not foresee
    runs gathered, where the answer is right."""
    @functools.wraps(split_function)
    def wrapper(*args):
        try:
            return split_function(*args)
        except Gathered:
            raise
        except Exception as exc:
            raise Gathered(f"not split ({type(exc).__name__})") from None
    return wrapper


@only_gathered
def split(tree, lookup) -> Plan:
    """The plan of a SELECT over distributed tables; ``lookup(schema, name)`` -> TableInfo or None.

    Raises :class:`Gathered` (with the reason) for a query that runs gathered.
    """
    from sqlglot import exp

    select = _checked(tree)
    from_ = select.args.get("from_") or select.args.get("from")
    refs = [from_.this] + [j.this for j in select.args.get("joins") or []]
    sources = []
    for ref in refs:
        if not isinstance(ref, exp.Table) or not isinstance(ref.this, exp.Identifier) or ref.args.get("catalog"):
            raise Gathered("FROM reads something other than a table (a subquery, a function)")
        info = lookup((ref.db or "public").lower(), ref.name.lower())
        if info is None:
            raise Gathered(f'"{ref.name}" is not a distributed table (a view, a system or temporary table)')
        sources.append(Source(ref.alias_or_name.lower(), f"{info.schema}.{info.name}",
                              table_columns(info.columns_sql), ref, info))
    if sources[0].copied:
        raise Gathered("the first table in FROM is DISTSTYLE ALL: one node's copy is the whole table")
    splitter = _Splitter(select, sources)
    splitter.check_joins()
    return splitter.build()


@only_gathered
def split_external(tree, ref, columns: dict[str, str]) -> Plan:
    """The plan of an aggregate over one external table ``ref`` (spectrum.py): the Spectrum workers
    run the slice step over their files' rows, the cluster the leader step. Raises Gathered."""
    select = _checked(tree)
    if select.args.get("joins"):
        raise Gathered("a join: the workers aggregate one table")
    source = Source(ref.alias_or_name.lower(), ref.name.lower(), columns, select.find(type(ref)))
    plan = _Splitter(select, [source]).build()
    if not plan.aggregated:
        raise Gathered("no aggregate to push down")
    return plan


def plan(tree, lookup) -> Plan | None:
    """:func:`split`, or None when the query runs gathered."""
    try:
        return split(tree, lookup)
    except Gathered:
        return None


#: The clauses a SELECT may have here; any other (WITH, INTO, LATERAL, a named WINDOW...) -> gathered.
CLAUSES = {"expressions", "from_", "from", "joins", "where", "group", "having", "qualify", "order", "limit",
           "offset", "distinct", "kind"}


def _checked(tree):
    """A copy of ``tree`` if it is a SELECT this module can split at all (else Gathered)."""
    from sqlglot import exp

    if not isinstance(tree, exp.Select):
        raise Gathered("a set operation (UNION, INTERSECT, EXCEPT) or VALUES")
    extra = [key for key, value in tree.args.items() if value and key not in CLAUSES]
    if extra:
        raise Gathered(f"a {extra[0].rstrip('_').upper()} clause")
    if tree.args.get("kind") or not (tree.args.get("from_") or tree.args.get("from")):
        raise Gathered("no table is read")
    distinct = tree.args.get("distinct")
    if distinct is not None and distinct.args.get("on"):
        raise Gathered("DISTINCT ON")
    for node in tree.walk():
        if node is not tree and isinstance(node, (exp.Select, exp.Subquery, exp.SetOperation)):
            raise Gathered("a subquery")
        if isinstance(node, (exp.Placeholder, exp.Parameter)):
            raise Gathered("$n parameters")
        if isinstance(node, exp.Filter):
            raise Gathered("an aggregate with FILTER")
        if isinstance(node, (exp.Lateral, exp.Unnest)):
            raise Gathered("LATERAL or UNNEST")
    return tree.copy()


@functools.lru_cache(maxsize=512)
def table_columns(columns_sql: str) -> dict[str, str]:
    """Column name -> DuckDB type of a table's definitions (``storage.TableInfo.columns_sql``)."""
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import SqlglotError

    try:
        tree = sqlglot.parse_one(f"CREATE TABLE t ({columns_sql})", read="duckdb")
    except SqlglotError:
        raise Gathered("the table's column definitions could not be read") from None
    return {c.name.lower(): c.args["kind"].sql(dialect="duckdb").upper()
            for c in tree.this.expressions if isinstance(c, exp.ColumnDef)}


INTEGER_TYPES = {"TINYINT", "SMALLINT", "INT", "INTEGER", "INT2", "INT4", "INT8", "BIGINT", "HUGEINT"}
TEXT_TYPES = {"VARCHAR", "TEXT", "CHAR", "BPCHAR", "STRING"}


def hash_family(kind: str) -> str:
    """Types whose equal values get equal ``hash()`` in DuckDB, so land on the same slice
    (``storage.slice_expression``): all integers, all strings, otherwise the exact type."""
    base = kind.split("(")[0].strip()
    return "INTEGER" if base in INTEGER_TYPES else "VARCHAR" if base in TEXT_TYPES else kind.replace(" ", "")


@functools.lru_cache(maxsize=1)
def duckdb_aggregates() -> frozenset[str]:
    """Names of DuckDB's aggregate functions (for functions sqlglot does not know by name)."""
    import duckdb

    from localaws.core import limits

    with duckdb.connect(config=limits.duckdb_config("redshift")) as db:
        return frozenset(r[0] for r in db.execute(
            "SELECT DISTINCT function_name FROM duckdb_functions() WHERE function_type = 'aggregate'").fetchall())


def is_window_function(node) -> bool:
    """The function of an OVER (...) clause: it runs over rows, not groups."""
    from sqlglot import exp

    return isinstance(node.parent, exp.Window) and node.arg_key == "this"


def is_group_aggregate(node) -> bool:
    """An aggregate of the GROUP BY (not a window function, not the inside of WITHIN GROUP)."""
    from sqlglot import exp

    if is_window_function(node) or isinstance(node.parent, exp.WithinGroup):
        return False
    if isinstance(node, exp.Anonymous):
        return node.name.lower() in duckdb_aggregates()
    return isinstance(node, (exp.AggFunc, exp.WithinGroup))


class _Splitter:
    """Cuts one SELECT over ``sources`` into the slice step and the leader step."""

    def __init__(self, select, sources: list[Source]):
        self.select, self.sources = select, sources
        self.by_alias = {s.alias: s for s in sources}
        if len(self.by_alias) != len(sources):
            raise Gathered("two tables with the same alias")

    # -- which table a column belongs to --------------------------------------------------
    def owner(self, column) -> Source | None:
        """The source of a column reference, or None when it is not clear (ambiguous, unknown)."""
        name = column.name.lower()
        if column.args.get("db") or column.args.get("catalog"):
            return None
        if column.table:
            source = self.by_alias.get(column.table.lower())
            return source if source is not None and name in source.columns else None
        holders = [s for s in self.sources if name in s.columns]
        return holders[0] if len(holders) == 1 else None

    def is_input_column(self, name: str) -> bool:
        return any(name.lower() in s.columns for s in self.sources)

    def canonical(self, node) -> str:
        """Text that is equal for equal expressions (``carrier``, ``f.carrier`` and ``F.Carrier`` alike)."""
        from sqlglot import exp

        copy = node.copy()
        for column in list(copy.find_all(exp.Column)):
            source = self.owner(column)
            if source is not None:
                column.set("table", exp.to_identifier(source.alias))
        for ident in copy.find_all(exp.Identifier):
            if not ident.quoted:
                ident.set("this", ident.this.lower())
        return copy.sql(dialect="duckdb")

    def is_distkey(self, node) -> bool:
        """Is ``node`` the DISTKEY column of the first table (the one every slice step is anchored on)?"""
        from sqlglot import exp

        first = self.sources[0]
        return isinstance(node, exp.Column) and first.distkey is not None and self.owner(node) is first \
            and node.name.lower() == first.distkey

    # -- joins -------------------------------------------------------------------------------
    def check_joins(self) -> None:
        """Every join must keep each slice's rows to itself: ALL tables, or collocated KEY tables."""
        from sqlglot import exp

        where = self.select.args.get("where")
        where_parts = conjuncts(where.this) if where is not None else []
        anchored = {self.sources[0].alias}          # tables whose rows sit on the first table's slices
        for index, join in enumerate(self.select.args.get("joins") or [], start=1):
            source = self.sources[index]
            side, kind = (join.side or "").upper(), (join.kind or "").upper()
            if join.args.get("method") or side not in ("", "LEFT") or kind not in ("", "INNER", "OUTER", "CROSS"):
                raise Gathered(f"a {' '.join(filter(None, [join.args.get('method'), side, kind]))} JOIN: rows would "
                               "repeat or go missing per slice")
            if source.copied:
                continue
            inner = side == "" and kind in ("", "INNER", "CROSS")
            on = join.args.get("on")
            parts = (conjuncts(on) if on is not None else []) + (where_parts if inner else [])
            if not self.collocated(source, index, anchored, parts, join.args.get("using") or []):
                raise Gathered(f'joining "{source.alias}" needs rows moved between slices (not on both DISTKEYs)')
            anchored.add(source.alias)
        for part in where_parts:
            if any(isinstance(n, exp.Window) or is_group_aggregate(n) for n in part.walk()):
                raise Gathered("an aggregate or window function in WHERE")

    def collocated(self, source: Source, index: int, anchored: set, parts: list, using: list) -> bool:
        """Does an equality join ``source``'s DISTKEY with the DISTKEY of an anchored table?"""
        from sqlglot import exp

        if source.distkey is None:
            return False

        def same_slices(left: Source | None, left_column: str) -> bool:
            return left is not None and left.alias in anchored and left.distkey == left_column \
                and hash_family(left.columns[left_column]) == hash_family(source.columns[source.distkey])
        for ident in using:
            name = ident.name.lower()
            lefts = [s for s in self.sources[:index] if name in s.columns]
            if name == source.distkey and len(lefts) == 1 and same_slices(lefts[0], name):
                return True
        for part in parts:
            if not (isinstance(part, exp.EQ) and isinstance(part.this, exp.Column)
                    and isinstance(part.expression, exp.Column)):
                continue
            for mine, other in ((part.this, part.expression), (part.expression, part.this)):
                if self.owner(mine) is source and mine.name.lower() == source.distkey \
                        and same_slices(self.owner(other), other.name.lower()):
                    return True
        return False

    # -- the two steps ---------------------------------------------------------------------------
    def build(self) -> Plan:
        from sqlglot import exp

        select = self.select
        items = self.expand_stars(select.expressions)
        parts = [*items, select.args.get("having"), select.args.get("qualify"), select.args.get("order")]
        aggregates = [n for p in parts if p is not None for n in p.walk() if is_group_aggregate(n)]
        group = select.args.get("group")
        if group is not None and any(v for k, v in group.args.items() if k != "expressions"):
            raise Gathered("GROUP BY ROLLUP, CUBE, GROUPING SETS or ALL")
        if group is not None or aggregates:
            return self.aggregate(items, aggregates)
        if select.args.get("having"):
            raise Gathered("HAVING without aggregates")
        return self.rows(items)

    def expand_stars(self, items: list) -> list:
        """``*`` and ``t.*`` as the columns they stand for, in the table's order."""
        from sqlglot import exp

        out = []
        for item in items:
            if isinstance(item, exp.Star):
                if any(item.args.get(k) for k in item.args):
                    raise Gathered("SELECT * EXCLUDE / REPLACE")
                if len(self.sources) > 1:
                    raise Gathered("SELECT * over a join")
                source = self.sources[0]
            elif isinstance(item, exp.Column) and isinstance(item.this, exp.Star):
                source = self.by_alias.get(item.table.lower())
                if source is None:
                    raise Gathered(f"{item.sql()}: no such table in FROM")
            else:
                out.append(item)
                continue
            alias = source.ref.args.get("alias")
            table = alias.this.copy() if alias is not None else source.ref.this.copy()
            out += [exp.Column(this=exp.to_identifier(c, quoted=True), table=table.copy()) for c in source.columns]
        return out

    def outputs(self, items: list) -> dict:
        """Output name -> expression: explicit aliases, and the names of plain column items."""
        from sqlglot import exp

        names = {}
        for item in items:
            if isinstance(item, exp.Alias) and item.alias:
                names[item.alias.lower()] = item.this
            elif isinstance(item, exp.Column):
                names.setdefault(item.name.lower(), item)
        return names

    def order_reference(self, ordered, items: list):
        """What an ORDER BY item names when it is an output column: a position or an output name."""
        from sqlglot import exp

        this = ordered.this
        if isinstance(this, exp.Literal) and this.is_int:
            position = int(this.name)
            if not 1 <= position <= len(items):
                raise Gathered("ORDER BY position out of range")
            return items[position - 1].unalias()
        if isinstance(this, exp.Column) and not this.table and this.name.lower() in self.outputs(items):
            return self.outputs(items)[this.name.lower()]
        return None

    def group_keys(self, items: list) -> list:
        """The GROUP BY expressions, with positions and output aliases replaced by what they name."""
        from sqlglot import exp

        group = self.select.args.get("group")
        aliases = {i.alias.lower(): i.this for i in items if isinstance(i, exp.Alias) and i.alias}
        keys = []
        for key in group.expressions if group is not None else []:
            if isinstance(key, exp.Literal) and key.is_int:
                position = int(key.name)
                if not 1 <= position <= len(items):
                    raise Gathered("GROUP BY position out of range")
                key = items[position - 1].unalias()
            elif isinstance(key, exp.Column) and not key.table and key.name.lower() in aliases \
                    and not self.is_input_column(key.name):        # an input column comes first
                key = aliases[key.name.lower()]
            if key.find(exp.Column) is None:
                raise Gathered("GROUP BY a constant")
            if any(isinstance(n, exp.Window) or is_group_aggregate(n) for n in key.walk()):
                raise Gathered("an aggregate or window function in GROUP BY")
            keys.append(key.copy())
        return keys

    def aggregate(self, items: list, aggregates: list) -> Plan:
        """Partial aggregates per slice, their merge on the leader."""
        import sqlglot
        from sqlglot import exp

        select = self.select
        keys = self.group_keys(items)
        whole = any(self.is_distkey(k) for k in keys)
        partials: list[tuple[str, object]] = []
        merges: dict[str, str] = {}

        def partial(expression) -> str:
            name = f"__a{len(partials)}"
            partials.append((name, expression))
            return name
        for aggregate in aggregates:
            text = self.canonical(aggregate)
            if text not in merges:
                merges[text] = self.merge(aggregate, whole, partial)
        key_names = {self.canonical(k): f"__g{i}" for i, k in enumerate(keys)}
        key_types = {type(k) for k in keys}

        def to_leader(node):
            if type(node) in key_types:
                name = key_names.get(self.canonical(node))
                if name is not None:
                    return exp.column(name)
            if is_group_aggregate(node):
                return sqlglot.parse_one(merges[self.canonical(node)], read="duckdb")
            return node

        slice_select = self.bare(select)
        slice_select.set("expressions", [exp.alias_(k.copy(), f"__g{i}") for i, k in enumerate(keys)]
                         + [exp.alias_(e.copy(), n) for n, e in partials])
        if keys:
            slice_select.set("group", exp.Group(expressions=[k.copy() for k in keys]))
        leader = self.leader(items, to_leader)
        if keys:
            leader.set("group", exp.Group(expressions=[exp.column(f"__g{i}") for i in range(len(keys))]))
        self.check_leftovers(leader, "must appear in the GROUP BY or be used in an aggregate")
        return Plan(self.sources, slice_select, leader, aggregated=True, grouped=bool(keys), whole_groups=whole)

    def merge(self, aggregate, whole: bool, partial) -> str:
        """The leader's merge of one aggregate (DuckDB SQL), adding its partials with ``partial()``."""
        from sqlglot import exp

        if whole:                       # the group is whole on one slice: its value is final there
            return f"any_value({partial(aggregate.copy())})"
        if isinstance(aggregate, exp.Count):
            self.check_distinct(aggregate.this)
            return f"CAST(coalesce(sum({partial(aggregate.copy())}), 0) AS BIGINT)"
        if isinstance(aggregate, exp.Sum):
            self.check_distinct(aggregate.this)
            return f"sum({partial(aggregate.copy())})"
        if isinstance(aggregate, (exp.Min, exp.Max)) and not isinstance(aggregate.this, exp.Distinct) \
                and not aggregate.expressions:
            return f"{aggregate.key}({partial(aggregate.copy())})"
        if isinstance(aggregate, exp.Avg):
            self.check_distinct(aggregate.this)
            total = partial(exp.Sum(this=aggregate.this.copy()))
            count = partial(exp.Count(this=aggregate.this.copy()))
            return f"sum({total}) / nullif(sum({count}), 0)"
        raise Gathered(f"{aggregate.sql(dialect='redshift')} cannot be merged from per-slice partial results")

    def check_distinct(self, argument) -> None:
        from sqlglot import exp

        if isinstance(argument, exp.Distinct) and not (len(argument.expressions) == 1
                                                      and self.is_distkey(argument.expressions[0])):
            raise Gathered("an aggregate of DISTINCT values of a column other than the DISTKEY (a value may "
                           "be on several slices)")

    def rows(self, items: list) -> Plan:
        """No aggregation: the slices send the columns the rest needs; the leader does the rest."""
        from sqlglot import exp

        select = self.select
        columns: dict[str, tuple[str, object]] = {}

        def to_leader(node):
            if isinstance(node, exp.Column):
                text = self.canonical(node)
                if text not in columns:
                    columns[text] = (f"__c{len(columns)}", node.copy())
                return exp.column(columns[text][0])
            return node
        leader = self.leader(items, to_leader)
        slice_select = self.bare(select)
        slice_select.set("expressions", [exp.alias_(node.copy(), name) for name, node in columns.values()]
                         or [exp.alias_(exp.Null(), "__row")])
        windows = any(isinstance(n, exp.Window) for p in [*items, select.args.get("order")] if p is not None
                      for n in p.walk())
        limit = self.literal(select.args.get("limit"))
        offset = self.literal(select.args.get("offset")) or 0
        pushed = ""
        if windows or select.args.get("qualify"):
            pass                             # windows need every row on the leader
        elif select.args.get("distinct") is not None:
            slice_select.set("distinct", exp.Distinct())
            pushed = "DISTINCT"
        elif limit is not None:               # each slice's first n rows hold the query's first n
            order = select.args.get("order")
            if order is not None:
                ordered = []
                for o in order.expressions:
                    copy = o.copy()
                    named = self.order_reference(o, items)
                    copy.set("this", (named if named is not None else o.this).copy())
                    ordered.append(copy)
                slice_select.set("order", exp.Order(expressions=ordered))
            slice_select.set("limit", exp.Limit(expression=exp.Literal.number(limit + offset)))
            pushed = "top-N" if order is not None else "LIMIT"
        return Plan(self.sources, slice_select, leader, aggregated=False, grouped=False, whole_groups=False,
                    pushed=pushed)

    # -- helpers -------------------------------------------------------------------------------
    @staticmethod
    def literal(clause) -> int | None:
        """The number of ``LIMIT n`` / ``OFFSET n``, None when absent or not a literal."""
        from sqlglot import exp

        if clause is None or clause.args.get("limit_options"):      # LIMIT n PERCENT, WITH TIES
            return None
        value = clause.args.get("expression")
        return int(value.name) if isinstance(value, exp.Literal) and value.is_int else None

    @staticmethod
    def bare(select):
        """The query's FROM, JOINs and WHERE only: the start of a slice step."""
        copy = select.copy()
        for key in ("group", "having", "qualify", "order", "limit", "offset", "distinct"):
            copy.set(key, None)
        return copy

    def leader(self, items: list, to_leader):
        """The leader step: the query over PARTIALS, its expressions rewritten by ``to_leader``."""
        from sqlglot import exp

        leader = self.select.copy()
        for key in ("joins", "where", "group"):
            leader.set(key, None)
        leader.from_(PARTIALS, copy=False)
        leader.set("expressions", [i.copy().transform(to_leader) for i in items])
        for key in ("having", "qualify"):
            if leader.args.get(key) is not None:
                leader.set(key, leader.args[key].transform(to_leader))
        order = leader.args.get("order")
        if order is not None:
            for o in order.expressions:
                if self.order_reference(o, items) is None:     # an output name or position stays as it is
                    o.set("this", o.this.transform(to_leader))
        return leader

    def check_leftovers(self, leader, problem: str) -> None:
        """A column of the tables left in the leader step (not a key, not aggregated) -> gathered."""
        from sqlglot import exp

        order = leader.args.get("order")
        names = {o.this for o in order.expressions if isinstance(o.this, exp.Column)} if order else set()
        for column in leader.find_all(exp.Column):
            if not column.name.startswith(("__g", "__a")) and not any(column is n for n in names):
                raise Gathered(f'column "{column.name}" {problem}')


def conjuncts(condition) -> list:
    """``a AND b AND c`` -> [a, b, c]."""
    from sqlglot import exp

    return list(condition.flatten()) if isinstance(condition, exp.And) else [condition]


# -- run: the slice steps at once, then the leader ------------------------------------------------------
@dataclass
class Step:
    """One slice's step: its SQL, its cursor, and what it produced."""
    slice: int
    sql: str
    cursor: object = None
    start: float = 0.0
    end: float = 0.0
    result: object = None            # pyarrow.Table
    columns: list = field(default_factory=list)     # (name, DuckDB type) of the result
    profile: dict = field(default_factory=dict)
    error: BaseException | None = None


@dataclass
class Scan:
    """What one slice read of one table (the engine's ScanStat, for ``last_query_stats``)."""
    slice: int
    table: str
    rows_pre_filter: int
    rows: int
    blocks_read: int
    blocks_total: int


class _NotStarted(Exception):
    """A slice step the query stopped before it began."""


class _Query:
    """The running slice steps of one query, as :meth:`Warehouse.cancel` reaches them.

    It sits in ``warehouse.open_cursors`` beside the cursors: ``cancel()`` calls
    its ``interrupt()``, which remembers the cancel (an interrupt sent to a
    cursor before its step began would be lost) and interrupts every step.
    """

    def __init__(self, steps: list[Step]):
        self.steps = steps
        self.cancelled = threading.Event()      # Warehouse.cancel() asked
        self.stopping = threading.Event()       # cancelled, or a step failed: the others stop too

    def interrupt(self) -> None:
        self.cancelled.set()
        self.stop()

    def stop(self) -> None:
        import duckdb

        self.stopping.set()
        for step in self.steps:
            if step.cursor is not None and step.end == 0.0:
                try:
                    step.cursor.interrupt()
                except duckdb.Error:
                    pass


def _run_step(step: Step, query: _Query) -> None:
    """One slice step, on its own thread: the rows as Arrow, and DuckDB's profile of the work."""
    if query.stopping.is_set():
        step.error = _NotStarted()
        return
    step.start = time.time()
    try:
        relation = step.cursor.sql(step.sql)
        step.columns = [(name, str(kind)) for name, kind in zip(relation.columns, relation.types)]
        step.result = relation.to_arrow_table()
        step.profile = json.loads(step.cursor.get_profiling_information(format="json"))
    except Exception as exc:      # DuckDB's error, raised again on the leader's thread (see run)
        step.error = exc
        query.stop()              # the other slices' rows are not needed any more
    finally:
        step.end = time.time()


def run(warehouse, tree, cursor, query_id: int, slices: bool = True):
    """Run a SELECT per slice in parallel and merge on the leader; None when it runs gathered.

    ``cursor`` is the statement's cursor, profiling on: the leader step runs
    on it. ``slices`` False: the query may not read the slices on cursors of
    its own (it has ``$n`` parameters, or runs in a transaction block), so it
    runs gathered. Returns ``(description, rows)`` as a DuckDB cursor gives
    them. DuckDB errors are raised as they are (the engine turns them into
    SQLErrors, as for a gathered query); a cancel raises SQLSTATE 57014.
    """
    import duckdb

    if EXTERNAL in tree.meta:         # the Spectrum workers aggregated: only the leader step is left
        return _merge_external(warehouse, tree, cursor)
    if not (ENABLED and slices):
        return None
    planned = plan(tree, lambda schema, name: warehouse.storage.lookup(cursor, schema, name))
    if planned is None:
        return None
    # The query as it runs gathered gives the columns' names and types; binding it also raises
    # the errors a wrong query (a missing column...) raises gathered, before any slice starts.
    outputs = [(r[0], r[1]) for r in cursor.execute(f"DESCRIBE {tree.sql(dialect='duckdb')}").fetchall()]
    layout = (warehouse.layout.nodes, warehouse.layout.count)
    try:
        leader_sql = planned.leader_sql(outputs)
        steps = [Step(s, planned.slice_sql_on(warehouse.layout, s)) for s in range(warehouse.layout.count)]
    except Exception:                 # a type sqlglot cannot write, a plan that does not fit: gathered
        return None
    query = _Query(steps)
    warehouse.open_cursors.add(query)     # from now on Warehouse.cancel() reaches every step
    try:
        if not _begin(warehouse, steps, layout):
            return None
        workers = min(MAX_WORKERS or len(steps), len(steps))
        with ThreadPoolExecutor(workers, thread_name_prefix=f"redshift-q{query_id}-slice") as pool:
            futures = [pool.submit(_run_step, step, query) for step in steps]
            while wait(futures, timeout=0.05).not_done:
                if query.stopping.is_set():
                    query.stop()          # again: an interrupt sent before a step began is lost
    finally:
        warehouse.open_cursors.discard(query)
        for step in steps:
            if step.cursor is not None:
                step.cursor.close()
    if query.cancelled.is_set():
        raise errors.SQLError(errors.QUERY_CANCELED, "Query cancelled.")
    failures = [s.error for s in steps if s.error is not None]
    real = [e for e in failures if not isinstance(e, (duckdb.InterruptException, _NotStarted))]
    if real:
        if isinstance(real[0], (duckdb.ParserException, duckdb.BinderException, duckdb.CatalogException)):
            return None                   # the rewritten SQL was refused: run the query gathered
        raise real[0]
    if failures:
        raise errors.SQLError(errors.QUERY_CANCELED, "Query cancelled.")
    leader = _leader(cursor, steps, leader_sql)
    if leader is None:
        return None
    description, rows, profile, start, end = leader
    _record(warehouse, cursor, query_id, planned, steps, (profile, start, end, len(rows)))
    return description, rows


def _merge_external(warehouse, tree, cursor):
    """The leader step of a Spectrum aggregate (spectrum.py): the workers' partial aggregates, merged.

    The statement reads an empty table with the external table's columns (so
    it describes the query's columns and names); ``tree.meta[EXTERNAL]`` holds
    the plan and the table of the workers' partial results.
    """
    planned, partials = tree.meta[EXTERNAL]
    outputs = [(r[0], r[1]) for r in cursor.execute(f"DESCRIBE {tree.sql(dialect='duckdb')}").fetchall()]
    cursor.execute(f"WITH {PARTIALS} AS (SELECT * FROM {partials}) {planned.leader_sql(outputs)}")
    description, rows = cursor.description, cursor.fetchall()
    warehouse.last_query_stats = []          # no slice was read
    return description, rows


def _begin(warehouse, steps: list[Step], layout: tuple[int, int]) -> bool:
    """Give every step a cursor whose transaction starts at one moment, with no write half-done.

    Every write commits holding ``warehouse.lock``; holding it here while each
    cursor starts its transaction (its first read fixes its snapshot), all the
    slices see the same committed rows. False (the query runs gathered): a
    writer kept the lock longer than SNAPSHOT_WAIT, or a resize changed the
    slices (``layout``: the nodes and slices the steps were written for).
    """
    if not warehouse.lock.acquire(timeout=SNAPSHOT_WAIT):
        return False
    try:
        if (warehouse.layout.nodes, warehouse.layout.count) != layout:
            return False
        for step in steps:
            step.cursor = warehouse.connect()
            step.cursor.execute("PRAGMA enable_profiling = 'no_output'")
            step.cursor.begin()
            step.cursor.execute(f"SELECT 1 FROM {storage.CATALOG_SCHEMA}.tables LIMIT 0").fetchall()
    finally:
        warehouse.lock.release()
    return True


def _leader(cursor, steps: list[Step], leader_sql: str):
    """The leader step over every slice's rows: (description, rows, profile, start, end), or None."""
    import duckdb
    import pyarrow as pa

    # Arrow carries some types as others (HUGEINT as DECIMAL(38,0), UUID as text): cast them back.
    columns = ", ".join(f"CAST({storage.quote(n)} AS {kind}) AS {storage.quote(n)}" for n, kind in steps[0].columns)
    start = time.time()
    try:
        slices = pa.concat_tables([s.result for s in steps])
    except pa.ArrowInvalid:           # the slices' Arrow types differ: leave it to the gathered path
        return None
    cursor.register(ARROW, slices)
    try:
        cursor.execute(f"WITH {PARTIALS} AS (SELECT {columns} FROM {ARROW}) {leader_sql}")
        description, rows = cursor.description, cursor.fetchall()
        profile = json.loads(cursor.get_profiling_information(format="json"))
    except (duckdb.ParserException, duckdb.BinderException, duckdb.CatalogException):
        return None
    finally:
        cursor.unregister(ARROW)
    return description, rows, profile, start, time.time()


# -- what the steps did: STL_SCAN, SVL_QUERY_REPORT -------------------------------------------------
def operators(profile: dict) -> list[dict]:
    """DuckDB's profiled operators, children before their parent: the order the steps ran in."""
    ordered = []

    def walk(operator):
        for child in operator.get("children", []):
            walk(child)
        ordered.append(operator)
    roots = profile.get("operator") if isinstance(profile.get("operator"), list) else [profile]
    for root in roots:
        walk(root)
    return ordered


def slice_table_of(operator) -> str | None:
    """``schema.table`` of a scan of a slice table (``dev.slice_3."public.sales"``), else None."""
    table = (operator.get("extra_info") or {}).get("Table", "")
    parts = table.replace('"', "").split(".", 2)
    return parts[2] if len(parts) == 3 and parts[1].startswith("slice_") else None


def _record(warehouse, cursor, query_id: int, planned: Plan, steps: list[Step], leader) -> None:
    """STL_SCAN rows and ``last_query_stats`` (blocks per slice and table), and SVL_QUERY_REPORT
    rows: one per step per slice, then the leader's steps on slice LEADER_SLICE."""
    ids = {s.name: s.info.table_id for s in planned.sources}
    scans, report = [], []

    def steps_of(slice_, profile, start, end, returned, returned_bytes, segment):
        system = profile.get("system") or {}
        spilled = "t" if system.get("total_bytes_spilled", 0) else "f"
        number = 0
        for op in operators(profile):
            label = LABELS.get(op.get("operator_type", op.get("type")))
            if label is None:
                continue
            rows = int(op.get("operator_cardinality", op.get("intermediate_rows", 0)))
            table, rows_pre, blocks, rrscan = slice_table_of(op), None, None, "f"
            if label == "scan":
                rows_pre = int(op.get("rows_scanned", rows))
                if table is not None:
                    blocks, total = int(op.get("row_groups_scanned", 0)), int(op.get("total_row_groups_to_scan", 0))
                    rrscan = "t" if blocks < total else "f"
                    scans.append(Scan(slice_, table, rows_pre, rows, blocks, total))
                    label = f"scan   tbl={ids.get(table, 0)} name={table}"
                else:
                    label = "scan   tbl=0 name=Internal Worktable"      # the rows the slices returned
            memory = int(system.get("peak_buffer_memory", 0)) if label in ("aggr", "hjoin", "sort", "window") else 0
            report.append((query_id, slice_, segment, number, start, end, int((end - start) * 1e6), rows,
                           int(op.get("intermediate_size_bytes", 0) or 0), label,
                           spilled if memory else "f", memory, rrscan, rows_pre, blocks))
            number += 1
        report.append((query_id, slice_, segment, number, start, end, int((end - start) * 1e6), returned,
                       returned_bytes, "return", "f", 0, "f", None, None))
    for step in steps:
        steps_of(step.slice, step.profile, step.start, step.end, step.result.num_rows, step.result.nbytes, 0)
    profile, start, end, rows = leader
    steps_of(LEADER_SLICE, profile, start, end, rows, 0, 1)
    warehouse.last_query_stats = scans
    rs = storage.CATALOG_SCHEMA
    cursor.begin()                    # one commit for both tables (each costs milliseconds on a file)
    try:
        _insert(cursor, f"{rs}.stl_scan", "(100, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(query_id, s.slice, ids.get(s.table), s.table, s.rows, s.rows_pre_filter, s.blocks_read,
                  s.blocks_total) for s in scans])
        _insert(cursor, f"{rs}.svl_query_report", "(100, ?, ?, ?, ?, to_timestamp(?)::TIMESTAMP, "
                "to_timestamp(?)::TIMESTAMP, ?, ?, ?, ?, ?, ?, ?, 'f', ?, ?)", report)
        cursor.commit()
    except BaseException:
        cursor.rollback()
        raise


def _insert(cursor, table: str, row: str, rows: list[tuple]) -> None:
    """All ``rows`` in one INSERT statement."""
    if rows:
        cursor.execute(f"INSERT INTO {table} VALUES " + ", ".join([row] * len(rows)),
                       [value for r in rows for value in r])
