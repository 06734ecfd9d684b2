"""EXPLAIN: the plan Redshift's leader would print, with its data-movement steps.

A join on Redshift runs on every slice at once, so each slice needs the
matching rows of both tables. Where they already are (both tables distributed
on the join column, or one copied everywhere with DISTSTYLE ALL) nothing
moves; otherwise rows travel between nodes first. EXPLAIN names that step on
each join (AWS's "Evaluating the query plan"):

==================  ===========================================================
DS_DIST_NONE        nothing moves: both sides distributed on the join columns
DS_DIST_ALL_NONE    nothing moves: the inner table is DISTSTYLE ALL
DS_DIST_ALL_INNER   the inner table goes to one slice (the outer is ALL)
DS_DIST_INNER       the inner table is redistributed on the join column
DS_DIST_OUTER       the outer table is redistributed on the join column
DS_BCAST_INNER      the whole inner table is copied to every node
DS_DIST_BOTH        both tables are redistributed on the join column
==================  ===========================================================

The rule here, in this order, for ``outer JOIN inner ON outer.a = inner.b``
(the table after JOIN is the inner one, the hashed side): the inner is ALL ->
DS_DIST_ALL_NONE; the outer is ALL -> DS_DIST_ALL_INNER; both distributed on
the joined columns -> DS_DIST_NONE; only the outer -> DS_DIST_INNER; only the
inner -> DS_DIST_OUTER; neither -> DS_BCAST_INNER when the inner's rows times
the nodes are fewer than the outer's rows (copying it everywhere is cheaper),
else DS_DIST_BOTH; a join without an equality -> a nested loop with
DS_BCAST_INNER. After a join the result is distributed like the side(s) that
did not move, which decides the next join. Redshift's optimizer also weighs
statistics and may choose differently; the plan here states the rule.

EXPLAIN does not run the query. When the query runs per slice (``mpp.py``),
the plan shows its aggregation in two steps: ``XN HashAggregate`` (or ``XN
Aggregate`` without GROUP BY) *partial* on each slice, then ``XN Network``
(send to leader), then the *final* one on the leader, which also sorts. The
last line says whether the query runs that way or gathered (and why).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from . import mpp


@dataclass
class Node:
    """One line of the plan, its detail lines, and the nodes below it."""
    label: str
    details: list[str] = field(default_factory=list)
    children: list["Node"] = field(default_factory=list)

    def lines(self, indent: int = 0, arrow: bool = False) -> list[str]:
        pad = " " * indent
        out = [f"{pad}{'->  ' if arrow else ''}{self.label}"]
        inner = indent + (6 if arrow else 2)
        out += [f"{' ' * inner}{d}" for d in self.details]
        for child in self.children:
            out += child.lines(inner, arrow=True)
        return out


@dataclass
class Source:
    """A table (or subquery) in FROM, with how its rows are distributed."""
    alias: str
    label: str
    rows: int
    diststyle: str                      # KEY, EVEN, ALL, or LEADER for what the leader computes
    dist_columns: set = field(default_factory=set)   # qualified columns it is distributed on


def join_step(outer: Source, inner: Source, pairs: list[tuple[str, str]], nodes: int) -> str:
    """The data-movement step of one join (see the module docstring)."""
    if not pairs:
        return "DS_BCAST_INNER"
    if inner.diststyle == "ALL":
        return "DS_DIST_ALL_NONE"
    if outer.diststyle == "ALL":
        return "DS_DIST_ALL_INNER"
    outer_ok = any(o in outer.dist_columns for o, _ in pairs)
    inner_ok = any(o in outer.dist_columns and i in inner.dist_columns for o, i in pairs)
    if inner_ok:
        return "DS_DIST_NONE"
    if outer_ok:
        return "DS_DIST_INNER"
    if any(i in inner.dist_columns for _, i in pairs):
        return "DS_DIST_OUTER"
    return "DS_BCAST_INNER" if inner.rows * nodes < outer.rows else "DS_DIST_BOTH"


def after_join(outer: Source, inner: Source, step: str, pairs) -> Source:
    """The joined rows as a source for the next join: distributed like the side that stayed."""
    joined = Source(outer.alias, "join", max(outer.rows, inner.rows), outer.diststyle, set(outer.dist_columns))
    if step == "DS_DIST_NONE":
        joined.dist_columns |= {i for o, i in pairs if o in outer.dist_columns}
    elif step in ("DS_DIST_INNER", "DS_DIST_OUTER", "DS_DIST_BOTH"):
        joined.diststyle = "KEY"
        joined.dist_columns = {c for pair in pairs for c in pair}
    elif step == "DS_DIST_ALL_INNER":
        joined.diststyle, joined.dist_columns = inner.diststyle, set(inner.dist_columns)
    return joined


def equality_pairs(join, outer_aliases: set, inner_alias: str) -> list[tuple[str, str]]:
    """``(outer column, inner column)`` of each ``a.x = b.y`` in a join's ON (or USING)."""
    from sqlglot import exp

    pairs = []
    for name in join.args.get("using") or []:
        column = name.name.lower()
        pairs += [(f"{a}.{column}", f"{inner_alias}.{column}") for a in sorted(outer_aliases)]
    on = join.args.get("on")
    for eq in (on.find_all(exp.EQ) if on is not None else []):
        left, right = eq.this, eq.expression
        if not (isinstance(left, exp.Column) and isinstance(right, exp.Column)):
            continue
        sides = {f"{c.table.lower()}.{c.name.lower()}": c.table.lower() for c in (left, right)}
        (a, ta), (b, tb) = list(sides.items()) if len(sides) == 2 else ((None, None), (None, None))
        if ta in outer_aliases and tb == inner_alias:
            pairs.append((a, b))
        elif tb in outer_aliases and ta == inner_alias:
            pairs.append((b, a))
    return pairs


def source(table_expr, lookup) -> Source:
    """A FROM item: a catalog table (via ``lookup(schema, name)``) or something the leader computes."""
    from sqlglot import exp

    alias = (table_expr.alias_or_name or "subquery").lower()
    if isinstance(table_expr, exp.Table):
        info, rows = lookup(table_expr.db.lower() or "public", table_expr.name.lower())
        if info is not None:
            style = "EVEN" if info.diststyle == "AUTO" else info.diststyle
            columns = {f"{alias}.{info.distkey}"} if info.diststyle == "KEY" else set()
            return Source(alias, f"XN Seq Scan on {table_expr.name.lower()}"
                          + (f" {alias}" if alias != table_expr.name.lower() else ""), rows, style, columns)
        return Source(alias, f"XN Seq Scan on {table_expr.name.lower()} (leader: not a distributed table)",
                      0, "EVEN")
    return Source(alias, f"XN Subquery Scan {alias}", 0, "EVEN")


def explain(select, lookup, nodes: int) -> list[str]:
    """The plan lines of a SELECT; ``lookup(schema, name)`` -> (TableInfo or None, rows)."""
    from sqlglot import exp

    if not isinstance(select, exp.Select):
        return ["XN Result (leader: set operation or VALUES, gathered on the leader)"]
    from_ = select.args.get("from_") or select.args.get("from")
    if from_ is None:
        return ["XN Result (leader only: no table is read)"]
    outer = source(from_.this, lookup)
    tree = Node(f"{outer.label}  (rows={outer.rows})", scan_filter(select, outer.alias))
    aliases = {outer.alias}
    for join in select.args.get("joins") or []:
        inner = source(join.this, lookup)
        pairs = equality_pairs(join, aliases, inner.alias)
        step = join_step(outer, inner, pairs, nodes)
        scan = Node(f"{inner.label}  (rows={inner.rows})", scan_filter(select, inner.alias))
        if pairs:
            condition = " AND ".join(f'("outer".{o.split(".")[1]} = "inner".{i.split(".")[1]})' for o, i in pairs)
            tree = Node(f"XN Hash Join {step}", [f"Hash Cond: {condition}"], [tree, Node("XN Hash", [], [scan])])
        else:
            tree = Node(f"XN Nested Loop {step}", [], [tree, scan])
        outer = after_join(outer, inner, step, pairs)
        aliases.add(inner.alias)
    try:
        split = mpp.split(select, lambda schema, name: lookup(schema, name)[0])
        how = "each slice runs its step at once, the leader merges their results (mpp.py)"
    except mpp.Gathered as reason:
        split, how = None, f"runs gathered, as one DuckDB query over all slices (mpp.py: {reason})"
    keys = ", ".join(o.this.sql(dialect="redshift") for o in select.args["order"].expressions) \
        if select.args.get("order") else None
    if split is not None and split.aggregated:
        tree = aggregate_steps(tree, split)
        if keys:                         # the leader sorts what it merged
            tree = Node("XN Sort", [f"Sort Key: {keys}"], [tree])
    else:
        if select.args.get("group") or any(select.find_all(exp.AggFunc)):
            tree = Node("XN HashAggregate", [], [tree])
        if keys:
            tree = Node("XN Merge", [f"Merge Key: {keys}"],
                        [Node("XN Network", ["Send to leader"], [Node("XN Sort", [f"Sort Key: {keys}"], [tree])])])
        else:
            tree = Node("XN Network", ["Send to leader"], [tree])
    return tree.lines() + ["----- localaws: join steps follow the DISTSTYLE/DISTKEY rule of planner.py -----",
                           f"----- localaws: {how} -----"]


def aggregate_steps(tree: Node, split) -> Node:
    """The aggregation of a query that runs per slice (mpp.py): partial on the slices, final on the leader.

    ``XN HashAggregate`` groups (GROUP BY), ``XN Aggregate`` makes one row. When
    the GROUP BY has the DISTKEY every group is whole on one slice, so the
    slices' aggregates are already final and the leader only gathers them.
    """
    name = "XN HashAggregate" if split.grouped else "XN Aggregate"
    if split.whole_groups:
        slices = Node(name, ["Final on each slice: the GROUP BY has the DISTKEY, each group is on one slice"],
                      [tree])
        return Node("XN Network", ["Send to leader"], [slices])
    partial = Node(name, ["Partial: each slice aggregates its own rows"], [tree])
    return Node(name, ["Final: the leader merges the slices' partial aggregates"],
                [Node("XN Network", ["Send to leader"], [partial])])


def scan_filter(select, alias: str) -> list[str]:
    """``Filter: ...`` for the WHERE conditions that name only ``alias``'s columns."""
    from sqlglot import exp

    where = select.args.get("where")
    if where is None:
        return []
    parts = list(where.this.flatten()) if isinstance(where.this, exp.And) else [where.this]
    mine = [p for p in parts if {c.table.lower() or alias for c in p.find_all(exp.Column)} == {alias}]
    return [f"Filter: ({' AND '.join(p.sql(dialect='redshift') for p in mine)})"] if mine else []
