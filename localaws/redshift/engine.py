"""The warehouse behind a Redshift cluster: Redshift SQL executed for real, on DuckDB.

A Redshift cluster is a *leader node* that parses and plans SQL and *compute
nodes*, each split into *slices* that hold a share of every table's rows and
work on them in parallel. :class:`Warehouse` is one cluster's database:

- :meth:`Warehouse.execute` takes one Redshift SQL statement (and ``$1``,
  ``$2``... parameters), translates it to DuckDB's dialect with sqlglot
  (``read="redshift"``), runs it, and returns a :class:`Result`: columns with
  their PostgreSQL types (what the wire protocol and the Data API report),
  rows as Python values, and the command tag (``SELECT 3``, ``INSERT 0 5``).
- A statement the database refuses raises :class:`~.errors.SQLError` with
  the SQLSTATE code PostgreSQL (and so Redshift) reports, never a DuckDB
  traceback, and Redshift's message (DuckDB's words are translated in
  ``errors.from_duckdb``; a syntax error carries PostgreSQL's position).
- Result columns are named as PostgreSQL names them: an unaliased
  ``count(*)`` is ``count``, ``sum(x)`` ``sum``, ``1 + 1`` ``?column?``
  (:func:`output_name`). ``pg_last_query_id()`` is the session's last query
  (STL_QUERY.query, -1 before any) and ``version()`` Redshift's string,
  naming this stand-in (:data:`VERSION`).
- Besides INSERT/UPDATE/DELETE, ``MERGE`` (also ``REMOVE DUPLICATES``) and
  ``ALTER TABLE`` ADD/DROP/RENAME COLUMN and RENAME TO work on distributed
  tables, slice by slice, all or nothing (:func:`merge_plan`,
  :meth:`Warehouse.alter`, ``storage.py``).

Inside, the warehouse is a small MPP database you can look into:

- every table lives in one physical table per *slice* (``storage.py``),
  placed by its DISTSTYLE / DISTKEY and kept in SORTKEY order by VACUUM;
  ``ddl.py`` reads Redshift's CREATE TABLE;
- every SELECT is profiled, so the blocks (DuckDB row groups) each slice read
  land in STL_SCAN and in :attr:`Warehouse.last_query_stats`;
- Redshift's system views (SVV_TABLE_INFO, STV_SLICES, STL_QUERY...) are
  views over that bookkeeping (``system_views.py``);
- EXPLAIN prints the join's data-movement steps (``planner.py``);
- COPY loads from S3 and UNLOAD writes to S3 (``loading.py``), through the
  S3 client the cluster's plane gives (``s3=``);
- tables of an external schema are scanned by Spectrum workers over S3
  (``spectrum.py``), their Glue entries read through ``glue=``, and a table
  Lake Formation governs is read as ``lake=`` lets the schema's IAM role;
- a repeated SELECT on unchanged tables is answered from the result cache
  (``cache.py``; SVL_QLOG.source_query);
- transactions are real (:class:`Session`): a statement commits on its own
  unless a ``BEGIN`` ... ``COMMIT`` block holds it, ``ROLLBACK`` undoes the
  block, concurrent sessions see only committed rows, and two of them
  writing the same table make the second fail with Redshift's serializable
  isolation error (ERROR 1023).

Clients reach a warehouse three ways, as on AWS: the PostgreSQL wire
protocol on the cluster's endpoint (``wire.py``; ``redshift_connector``,
psycopg), the Redshift Data API (``api.py``), and Redshift Spectrum's
external tables over S3.
"""
from __future__ import annotations

import contextvars
import json
import re
import threading
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path

from localaws.core import limits

from . import cache, ddl, errors, loading, mpp, planner, spectrum, storage, system_views
from .nodes import slices_per_node

#: DuckDB type -> (PostgreSQL type name as Redshift reports it, type OID on the wire).
PG_TYPES = {
    "BOOLEAN": ("boolean", 16),
    "SMALLINT": ("smallint", 21),
    "INTEGER": ("integer", 23),
    "BIGINT": ("bigint", 20),
    "HUGEINT": ("numeric", 1700),
    "REAL": ("real", 700),
    "FLOAT": ("real", 700),
    "DOUBLE": ("double precision", 701),
    "DECIMAL": ("numeric", 1700),
    "VARCHAR": ("character varying", 1043),
    "DATE": ("date", 1082),
    "TIME": ("time without time zone", 1083),
    "TIMESTAMP": ("timestamp without time zone", 1114),
    "TIMESTAMP WITH TIME ZONE": ("timestamp with time zone", 1184),
    "BLOB": ("character varying", 1043),
}


@dataclass
class Column:
    """One result column: its name, Redshift's type name for it, and the type's wire OID."""
    name: str
    type_name: str
    type_oid: int


@dataclass
class Result:
    """What one statement gives back.

    ``columns`` is None for statements without a result set (DDL, INSERT...);
    ``command`` is the PostgreSQL command tag; ``rowcount`` the rows returned,
    inserted, updated or deleted (-1 when not applicable).
    """
    command: str
    columns: list[Column] | None = None
    rows: list[tuple] = field(default_factory=list)
    rowcount: int = -1


def pg_type(duckdb_type) -> tuple[str, int]:
    """Redshift's name and wire OID for a DuckDB column type (``DECIMAL(10,2)`` -> numeric)."""
    text = str(duckdb_type).upper()
    return PG_TYPES.get(text) or PG_TYPES.get(text.split("(")[0], ("character varying", 1043))


# -- errors: DuckDB's exception types -> SQLSTATE ------------------------------
def sql_error(exc: Exception) -> errors.SQLError:
    """The SQLError Redshift would report for a DuckDB exception (mapped by type, then message)."""
    import duckdb

    message = str(exc).split("\n")[0]
    for prefix in ("Parser Error: ", "Catalog Error: ", "Binder Error: ", "Conversion Error: ",
                   "Invalid Input Error: ", "Out of Range Error: ", "Constraint Error: ", "Not implemented Error: "):
        message = message.removeprefix(prefix)
    code, text = errors.from_duckdb(None, message)     # DuckDB's words -> Redshift's (errors.py)
    if code is not None:
        return errors.SQLError(code, text)
    if isinstance(exc, duckdb.ParserException):
        return errors.SQLError(errors.SYNTAX_ERROR, message)
    if isinstance(exc, duckdb.CatalogException):
        if re.search(r"\bFunction\b|\bfunction\b", message):
            return errors.SQLError(errors.UNDEFINED_FUNCTION, message)
        if "already exists" in message:
            return errors.SQLError(errors.DUPLICATE_TABLE, message)
        return errors.SQLError(errors.UNDEFINED_TABLE, message)
    if isinstance(exc, duckdb.BinderException):
        code = errors.UNDEFINED_COLUMN if "column" in message.lower() else errors.DATATYPE_MISMATCH
        return errors.SQLError(code, message)
    if isinstance(exc, duckdb.ConversionException):
        return errors.SQLError(errors.INVALID_TEXT_REPRESENTATION, message)
    if isinstance(exc, duckdb.OutOfRangeException):
        return errors.SQLError(errors.NUMERIC_OUT_OF_RANGE, message)
    if isinstance(exc, duckdb.NotImplementedException):
        return errors.SQLError(errors.FEATURE_NOT_SUPPORTED, message)
    if isinstance(exc, duckdb.InterruptException):
        return errors.SQLError(errors.QUERY_CANCELED, "Query cancelled.")
    if isinstance(exc, duckdb.TransactionException) and "single attached database" in message:
        return errors.SQLError(errors.FEATURE_NOT_SUPPORTED, "this stand-in cannot mix external (Spectrum) "
                               "tables and writes to local tables in one transaction block: COMMIT between them")
    if isinstance(exc, duckdb.TransactionException) and "onflict" in message:
        # DuckDB's optimistic concurrency: "Conflict on update!", "Catalog write-write conflict...".
        return SerializationError()
    return errors.SQLError(errors.INTERNAL_ERROR, message)


class SerializationError(errors.SQLError):
    """Redshift's ERROR 1023: a transaction that cannot be serialized with a concurrent one.

    What Redshift sends, as drivers show it: SQLSTATE ``XX000`` (not PostgreSQL's
    40001 serialization_failure), the message ``1023`` and the detail
    ``Serializable isolation violation on table - <table id>, transactions
    forming the cycle are: ...`` (here without the transaction ids, which this
    stand-in does not learn). ``str()`` gives both, as AWS's pages print them:
    ``1023 DETAIL: Serializable isolation violation on table - 100100``.
    """

    def __init__(self, table_id: int | None = None):
        super().__init__(SERIALIZATION_FAILURE, "1023")
        self.on_table(table_id)

    def on_table(self, table_id: int | None) -> None:
        """Name the table the violation is on (SVV_TABLE_INFO's ``table_id``)."""
        self.table_id = table_id
        self.detail = "Serializable isolation violation on table" + (f" - {table_id}" if table_id else "")
        self.args = (f"{self.message} DETAIL: {self.detail}",)


# -- translation: Redshift SQL -> DuckDB SQL ----------------------------------
#: Table properties that shape storage on Redshift and mean nothing to DuckDB.
STORAGE_PROPERTIES = ("DistStyleProperty", "DistKeyProperty", "SortKeyProperty")


QUOTED = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"")
PLACEHOLDER = re.compile(r"(\$\d+)(?=[^\s\d])")


def _spaced_placeholders(sql: str) -> str:
    """``$1,$2`` -> ``$1 ,$2`` outside quotes: sqlglot reads ``$1,$`` as the start of a
    dollar-quoted string (psycopg writes parameters without spaces)."""
    parts, last = [], 0
    for quoted in QUOTED.finditer(sql):
        parts.append(PLACEHOLDER.sub(r"\1 ", sql[last:quoted.start()]))
        parts.append(quoted.group(0))
        last = quoted.end()
    parts.append(PLACEHOLDER.sub(r"\1 ", sql[last:]))
    return "".join(parts)


def parse(sql: str):
    """sqlglot's tree of one Redshift statement; a syntax error becomes SQLSTATE 42601."""
    import sqlglot
    from sqlglot.errors import ParseError, TokenError

    try:
        statements = [s for s in sqlglot.parse(_spaced_placeholders(sql), read="redshift") if s is not None]
    except TokenError:
        raise errors.SQLError(errors.SYNTAX_ERROR, "syntax error: unterminated quoted string or "
                              "dollar-quoted body") from None
    except ParseError as exc:
        raise syntax_error(sql, exc.errors[0] if exc.errors else {}) from None
    if len(statements) != 1:
        raise errors.SQLError(errors.SYNTAX_ERROR, "expected exactly one statement")
    return statements[0]


def syntax_error(sql: str, error: dict) -> errors.SQLError:
    """PostgreSQL's syntax error for one of sqlglot's: ``syntax error at or near "x"`` with the
    1-based position of the token's first character in the statement, or, when the statement
    stopped before it was complete, ``syntax error at end of input`` just past its end."""
    highlight = error.get("highlight", "")
    lines = _spaced_placeholders(sql).split("\n")
    line, col = error.get("line") or 1, error.get("col") or 0
    position = sum(len(text) + 1 for text in lines[:line - 1]) + col - len(highlight) + 1
    if not error.get("end_context", "").strip() and error.get("description") != \
            "Invalid expression / Unexpected token":
        return errors.SQLError(errors.SYNTAX_ERROR, "syntax error at end of input", len(sql.rstrip()) + 1)
    return errors.SQLError(errors.SYNTAX_ERROR, f'syntax error at or near "{highlight}"', max(position, 1))


def to_duckdb(tree) -> str:
    """DuckDB SQL for a parsed Redshift statement, without Redshift's storage properties."""
    from sqlglot import exp

    tree = tree.copy()
    for name in STORAGE_PROPERTIES:
        for node in list(tree.find_all(getattr(exp, name))):
            node.pop()
    return tree.sql(dialect="duckdb")


def command_tag(tree, rowcount: int) -> str:
    """The PostgreSQL command tag of a statement (``SELECT 3``, ``INSERT 0 5``, ``CREATE TABLE``)."""
    from sqlglot import exp

    if isinstance(tree, exp.Insert):
        return f"INSERT 0 {rowcount}"
    if isinstance(tree, exp.Update):
        return f"UPDATE {rowcount}"
    if isinstance(tree, exp.Delete):
        return f"DELETE {rowcount}"
    if isinstance(tree, (exp.Create, exp.Drop)):
        kind = (tree.args.get("kind") or "TABLE").upper()
        return f"{'CREATE' if isinstance(tree, exp.Create) else 'DROP'} {kind}"
    if isinstance(tree, exp.Query):
        return f"SELECT {rowcount}"
    return tree.key.upper() if isinstance(tree, exp.Expression) else "OK"


def written_tables(tree) -> list[tuple[str, str]]:
    """The (schema, table) pairs a statement writes or replaces (for the result cache)."""
    from sqlglot import exp

    if isinstance(tree, exp.TruncateTable):
        targets = tree.expressions
    elif isinstance(tree, exp.Drop):
        targets = tree.args.get("tables") or [tree.this]
    elif isinstance(tree, (exp.Insert, exp.Update, exp.Delete, exp.Merge, exp.Create, exp.Alter)):
        targets = [tree.this.this if isinstance(tree.this, exp.Schema) else tree.this]
    else:
        return []
    return [((t.db or "public").lower(), t.name.lower()) for t in targets if isinstance(t, exp.Table)]


# -- result column names, leader-node functions, MERGE --------------------------------
#: PostgreSQL's names of types, as an unaliased ``CAST(1 AS INT)`` column is named (``int4``).
CAST_NAMES = {"INT": "int4", "INTEGER": "int4", "BIGINT": "int8", "SMALLINT": "int2", "DECIMAL": "numeric",
              "DOUBLE": "float8", "FLOAT": "float8", "REAL": "float4", "VARCHAR": "varchar", "NVARCHAR": "varchar",
              "CHAR": "bpchar", "NCHAR": "bpchar", "BPCHAR": "bpchar", "TEXT": "text", "BOOLEAN": "bool",
              "DATE": "date", "TIMESTAMP": "timestamp", "TIMESTAMPTZ": "timestamptz", "TIME": "time"}


def output_name(node) -> str | None:
    """The name PostgreSQL (and so Redshift) gives a result column computed by ``node``
    (None: the name DuckDB gave is right, a column or ``*``).

    A function call is named after the function (``count(*)`` -> ``count``,
    ``sum(x)`` -> ``sum``, also inside a window or a cast); a cast of a column
    keeps the column's name, of anything else takes the type's name (``int4``);
    ``CASE`` is ``case``, ``EXISTS`` is ``exists``, ``TRUE`` is ``bool``, and
    any other expression (``1``, ``a + b``...) is ``?column?``. Names are in
    lower case, as Redshift folds identifiers (``AS "Total"`` -> ``total``).
    """
    from sqlglot import exp

    while isinstance(node, exp.Paren):
        node = node.this
    if node.meta.get("output_name"):
        return node.meta["output_name"]
    if isinstance(node, exp.Alias):
        return node.alias.lower()
    if isinstance(node, exp.Column):
        return None if isinstance(node.this, exp.Star) else node.name.lower()
    if isinstance(node, (exp.Star, exp.Dot)):
        return None
    if isinstance(node, (exp.Window, exp.WithinGroup)):
        return output_name(node.this)
    if isinstance(node, (exp.Cast, exp.TryCast)):
        inner = node.this
        while isinstance(inner, exp.Paren):
            inner = inner.this
        if isinstance(inner, (exp.Column, exp.Cast, exp.TryCast, exp.Window)) or (
                isinstance(inner, exp.Func) and not isinstance(inner, exp.Case)):
            return output_name(inner)
        return CAST_NAMES.get(node.to.this.name, node.to.this.name.lower())
    if isinstance(node, exp.Case):
        return "case"
    if isinstance(node, exp.Exists):
        return "exists"
    if isinstance(node, exp.Boolean):
        return "bool"
    if isinstance(node, exp.Subquery) and isinstance(node.this, exp.Select) and len(node.this.expressions) == 1:
        inner = node.this.expressions[0]
        return output_name(inner) if isinstance(inner, (exp.Alias, exp.Column)) else "?column?"
    if isinstance(node, exp.Func):
        written = node.sql(dialect="redshift")         # how Redshift spells it: getdate(), date_trunc()...
        name = re.match(r"[A-Za-z_][A-Za-z0-9_]*", written)
        return name.group(0).lower() if name else "?column?"
    return "?column?"


def column_names(tree, description) -> list[str]:
    """The result column names of a query: DuckDB's, renamed as PostgreSQL names them (output_name).

    ``*`` expands to several columns: the names before the first and after the
    last ``*`` are matched from both ends.
    """
    from sqlglot import exp

    names = [d[0] for d in description]
    select = tree
    while isinstance(select, (exp.SetOperation, exp.Subquery)):
        select = select.this                   # a UNION's columns are named by its first SELECT
    if not isinstance(select, exp.Select):
        return names
    projections = select.expressions
    stars = [i for i, p in enumerate(projections) if output_name(p) is None and (
        isinstance(p, exp.Star) or (isinstance(p, exp.Column) and isinstance(p.this, exp.Star)))]
    if not stars and len(projections) != len(names):
        return names
    head = projections[:stars[0]] if stars else projections
    tail = projections[stars[-1] + 1:] if stars else []
    if len(head) + len(tail) > len(names):
        return names
    for i, node in enumerate(head):
        names[i] = output_name(node) or names[i]
    for i, node in enumerate(tail, len(names) - len(tail)):
        names[i] = output_name(node) or names[i]
    return names


def name_derived_columns(tree):
    """``tree`` with the unaliased computed columns of its CTEs and derived tables aliased as
    PostgreSQL names them (output_name), so ``WITH c AS (SELECT count(*) FROM t) SELECT count
    FROM c`` finds its column (DuckDB would call it ``count_star()``). The outer SELECT's own
    columns are renamed afterwards (column_names), where two columns may share a name."""
    from sqlglot import exp

    if not any(True for _ in tree.find_all(exp.CTE, exp.Subquery)):
        return tree
    tree = tree.copy()
    bodies = [cte.this for cte in tree.find_all(exp.CTE)]
    bodies += [s.this for s in tree.find_all(exp.Subquery) if isinstance(s.parent, (exp.From, exp.Join))]
    for body in bodies:
        while isinstance(body, (exp.SetOperation, exp.Subquery)):
            body = body.this
        if not isinstance(body, exp.Select):
            continue
        for projection in list(body.expressions):
            if isinstance(projection, (exp.Alias, exp.Column, exp.Star)):
                continue
            name = output_name(projection)
            if name is not None:
                projection.replace(exp.alias_(projection.copy(), name, quoted=True))
    return tree


#: ``version()``: Redshift's shape (``PostgreSQL 8.0.2 on i686-pc-linux-gnu, compiled by GCC gcc ...,
#: Redshift 1.0.12103``, the VERSION page of the Database Developer Guide) with this stand-in named where
#: the build and the cluster version are: ``1.0.0`` is no Redshift release.
VERSION = ("PostgreSQL 8.0.2 on localaws, compiled by localaws (a local stand-in for Amazon Redshift, "
           "running on DuckDB {duckdb}), Redshift 1.0.0")


def leader_functions(tree, last_query_id: int):
    """``pg_last_query_id()`` and ``version()`` in ``tree`` replaced by their values (they run on the
    leader node); the tree, and whether any was found."""
    import duckdb
    from sqlglot import exp

    found = False

    def replace(node):
        nonlocal found
        if isinstance(node, exp.Anonymous) and node.name.lower() == "pg_last_query_id" and not node.expressions:
            value = exp.cast(exp.Literal.number(last_query_id), "INT")
            name = "pg_last_query_id"
        elif isinstance(node, exp.CurrentVersion):
            value = exp.Literal.string(VERSION.format(duckdb=duckdb.__version__))
            name = "version"
        else:
            return node
        found = True
        value.meta["output_name"] = name
        return value
    tree = tree.transform(replace)
    return tree, found


REMOVE_DUPLICATES = re.compile(r"\s+REMOVE\s+DUPLICATES\s*$", re.IGNORECASE)

#: Statements that run on the leader node alone (no table, or a setting): pg_last_query_id() skips them.
LEADER_ONLY = re.compile(r"^\s*(SELECT\b(?!.*\bFROM\b)|SET\b|SHOW\b|RESET\b)", re.IGNORECASE | re.DOTALL)


def merge_plan(tree, table: storage.TableInfo) -> storage.MergePlan:
    """A MERGE statement on a distributed table, checked as Redshift checks it, as storage.MergePlan."""
    from sqlglot import exp

    target, using = tree.this, tree.args.get("using")
    if isinstance(using, exp.Table):
        if ((using.db or "public").lower(), using.name.lower()) == (table.schema, table.name):
            raise errors.SQLError(errors.FEATURE_NOT_SUPPORTED,
                                  "Target table and source table of a MERGE statement cannot be the same table.")
        bare = using.copy()
        bare.set("alias", None)
        source_sql = f"SELECT * FROM {to_duckdb(bare)}"
    elif isinstance(using, exp.Subquery):
        if any(((t.db or "public").lower(), t.name.lower()) == (table.schema, table.name)
               for t in using.this.find_all(exp.Table)):
            raise errors.SQLError(errors.FEATURE_NOT_SUPPORTED,
                                  "Source view/subquery in Merge statement cannot reference target table.")
        source_sql = to_duckdb(using.this)
    else:
        raise errors.SQLError(errors.SYNTAX_ERROR, "MERGE needs a source table, view or subquery (USING ...)")
    plan = storage.MergePlan(source_sql=source_sql, source_alias=using.alias_or_name.lower(),
                             target_alias=target.alias_or_name.lower(),
                             condition=tree.args["on"].sql(dialect="duckdb"),
                             remove_duplicates=bool(tree.meta.get("remove_duplicates")))
    if plan.remove_duplicates:
        return plan
    whens = tree.args.get("whens")
    for when in whens.expressions if whens else []:
        if when.args.get("condition") is not None:
            raise errors.SQLError(errors.SYNTAX_ERROR, 'syntax error at or near "AND"')
        then = when.args.get("then")
        if when.args.get("matched"):
            if isinstance(then, exp.Update):
                sets = []
                for assignment in then.expressions:
                    column = assignment.this.name.lower()
                    plan.moves_rows = plan.moves_rows or column == table.distkey
                    sets.append(f"{storage.quote(column)} = {assignment.expression.sql(dialect='duckdb')}")
                plan.update = ", ".join(sets)
            else:
                plan.delete = True
        elif isinstance(then, exp.Insert):
            columns, values = then.this, then.args.get("expression") or None
            if values is None and isinstance(columns, exp.Tuple) and len(columns.expressions) == 1 and \
                    isinstance(columns.expressions[0], exp.Anonymous):       # INSERT VALUES (...), no columns
                columns, values = None, exp.Tuple(expressions=columns.expressions[0].expressions)
            plan.insert_columns = [c.name.lower() for c in columns.expressions] if columns is not None else None
            plan.insert_values = ", ".join(v.sql(dialect="duckdb") for v in values.expressions)
        else:
            raise errors.SQLError(errors.SYNTAX_ERROR, "WHEN NOT MATCHED allows INSERT only")
    return plan

# -- transactions ------------------------------------------------------------------
#: Transaction control -> its command tag. A :class:`Session` acts on them; ``Warehouse.execute``
#: without a session answers the tag only (its call is a session that ends with the statement).
TRANSACTION_WORDS = {"BEGIN": "BEGIN", "START": "START TRANSACTION", "COMMIT": "COMMIT", "END": "COMMIT",
                     "ROLLBACK": "ROLLBACK", "ABORT": "ROLLBACK"}

#: Statements that commit the transaction block they run in (Redshift's "Serializable isolation"
#: page: "TRUNCATE and VACUUM ... automatically commit all outstanding changes made in the
#: current transaction"; the TRUNCATE page: "TRUNCATE commits the transaction in which it is run").
SELF_COMMITTING = {"TRUNCATE", "VACUUM"}

#: Redshift's SQLSTATE for ERROR 1023, a serializable isolation violation: XX000, as drivers report
#: it (aws/aws-sdk-pandas#665 shows redshift_connector's fields C XX000, M 1023, D "Serializable
#: isolation violation on table - 119371, ..."; estuary/connectors#5218: "ERROR: 1023 (SQLSTATE
#: XX000)"). PostgreSQL would say 40001 (serialization_failure).
SERIALIZATION_FAILURE = errors.INTERNAL_ERROR
IN_FAILED_TRANSACTION = "25P02"

#: A session's transaction state (what ReadyForQuery reports as 'I', 'T', 'E').
TX_IDLE, TX_OPEN, TX_FAILED = "idle", "in transaction", "failed transaction"

#: The session whose statement this thread runs now (set by :meth:`Session.execute`): the
#: warehouse's code asks ``self.cursor()`` and gets that session's cursor, so every read and
#: write of the statement happens inside the session's transaction.
_current: contextvars.ContextVar["Session | None"] = contextvars.ContextVar("redshift_session", default=None)


def current_session() -> "Session | None":
    """The :class:`Session` running a statement in this thread, if any."""
    return _current.get()


def first_word(sql: str) -> str:
    """A statement's first keyword, upper case, past leading comments and parentheses."""
    text = re.sub(r"^(\s|\(|--[^\n]*(\n|$)|/\*.*?\*/)*", "", sql, flags=re.DOTALL)
    word = re.match(r"[A-Za-z_]+", text)
    return word.group(0).upper() if word else ""


# -- the warehouse --------------------------------------------------------------

#: Rows per block (a DuckDB row group). Redshift's blocks are 1 MB of one column; this smaller
#: size lets course-sized tables (a few 100k rows) span many blocks, so zone maps can show.
BLOCK_ROWS = 8192


@dataclass
class ScanStat:
    """What one slice read of one table for the last query: the blocks of STL_SCAN."""
    slice: int
    table: str                 # schema.table
    rows_pre_filter: int       # rows in the blocks read
    rows: int                  # rows that passed the filter
    blocks_read: int
    blocks_total: int


class Warehouse:
    """One cluster's database, stored in ``work_dir`` (a DuckDB file), bounded by core.limits.

    ``execute`` is safe to call from several threads (one cursor per call;
    writes take a lock, one at a time), and commits each statement on its
    own; ``session()`` gives a :class:`Session`, a client's own connection
    with transaction blocks (BEGIN ... COMMIT); ``cancel`` interrupts what runs.
    The cluster has ``number_of_nodes`` x ``slices_per_node(node_type)``
    slices (STV_SLICES); ``block_rows`` is the rows per block.
    """

    def __init__(self, cluster_identifier: str, database: str, master_username: str,
                 master_password: str, work_dir: str | Path, node_type: str = "ra3.xlplus",
                 number_of_nodes: int = 1, block_rows: int = BLOCK_ROWS, s3=None, glue=None, lake=None):
        import duckdb

        #: A callable returning a boto3 S3 client: what COPY reads and UNLOAD writes through
        #: (``loading.py``); the cluster's plane passes the stack's. None: no COPY/UNLOAD.
        self.s3 = s3
        #: ``glue(region=None)`` -> a boto3 Glue client: the Data Catalog of external schemas (Spectrum).
        #: ``lake``: Lake Formation's decision point (``core/lake.py``), asked for governed tables.
        self.spectrum = spectrum.Spectrum(self, glue, lake)
        self.cache = cache.ResultCache()
        self.cluster_identifier, self.database = cluster_identifier, database
        self.master_username, self.master_password = master_username, master_password
        self.node_type, self.number_of_nodes = node_type, number_of_nodes
        self.layout = storage.Layout(number_of_nodes, slices_per_node(node_type))
        self.storage = storage.Storage(self.layout)
        self.path = Path(work_dir) / f"{cluster_identifier}.duckdb"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.connection = duckdb.connect(config=limits.duckdb_config("redshift"))
        # The cluster's file is attached under the database's name, so current_database() is it.
        self.connection.execute(f"ATTACH '{self.path}' AS {storage.quote(database)} (ROW_GROUP_SIZE {block_rows})")
        self.connection.execute(f"CREATE SCHEMA IF NOT EXISTS {storage.quote(database)}.public")
        self.lock = threading.Lock()
        self.open_cursors = weakref.WeakSet()   # what cancel() interrupts
        self.last_query_stats: list[ScanStat] = []
        with self.cursor() as cursor:
            self.storage.bootstrap(cursor)
            system_views.install(cursor, self.layout, PG_TYPES)
            self.query_id = cursor.execute(f"SELECT coalesce(max(query), 0) FROM {storage.CATALOG_SCHEMA}.stl_query"
                                           ).fetchone()[0]

    def cursor(self):
        """A DuckDB cursor in the cluster's database, schema ``public`` (system views from ``main``).

        While a :class:`Session` runs a statement in this thread, its own cursor
        (closing it leaves it open): what the statement reads and writes is then
        inside the session's transaction. Otherwise a new cursor, which commits
        each DuckDB statement on its own (a new connection to the same database).
        """
        session = _current.get()
        if session is not None:
            return _Borrowed(session.cursor)
        return self.connect()

    def connect(self):
        """A new DuckDB cursor of its own (its own transactions), set up as :meth:`cursor` says."""
        cursor = self.connection.cursor()
        self.open_cursors.add(cursor)
        name = storage.quote(self.database)
        cursor.execute(f"USE {name}.public")
        cursor.execute(f"SET search_path = '{self.database}.public,{self.database}.main'")
        cursor.execute("SET ieee_floating_point_ops = false")    # x / 0 fails (division by zero), as on Redshift
        return cursor

    def session(self) -> "Session":
        """A new client session: its own connection, autocommit until ``BEGIN`` (see :class:`Session`)."""
        return Session(self)

    def authenticate(self, user: str, password: str) -> bool:
        """Does ``user``/``password`` log in? (The master user; database users come later.)"""
        return user == self.master_username and password == self.master_password

    @property
    def slices(self) -> int:
        """The number of slices of the cluster."""
        return self.layout.count

    # -- one statement ---------------------------------------------------------
    def execute(self, sql: str, params: list | tuple | None = None) -> Result:
        """Run one Redshift statement with ``$1``... parameters; a Result, or SQLError.

        Called directly, the statement commits on its own (autocommit; BEGIN,
        COMMIT and ROLLBACK only answer their tag: use a :class:`Session` for
        transaction blocks). Called by a session, it runs in the session's
        transaction. Every statement is logged in STL_QUERY (``aborted`` = 1
        when cancelled).
        """
        with self.lock:
            self.query_id += 1
            query_id = self.query_id
        start, aborted = time.time(), 0
        try:
            return self._execute(sql.strip().rstrip(";").strip(), list(params) if params else None, query_id)
        except errors.SQLError as exc:
            aborted = int(exc.code == errors.QUERY_CANCELED)
            if isinstance(exc, SerializationError) and exc.table_id is None:
                exc.on_table(self.table_id(self._targets(sql)))
            raise
        finally:
            self._log(query_id, sql, start, aborted)

    def _execute(self, sql: str, params: list | None, query_id: int) -> Result:
        from sqlglot import exp

        word = sql.split(None, 1)[0].upper() if sql else ""
        session = current_session()           # pg_last_query_id(): the session's last query run on the slices
        last_query_id = getattr(session, "last_query_id", -1)
        if session is not None and word not in TRANSACTION_WORDS and not LEADER_ONLY.match(sql):
            session.last_query_id = query_id
        if word in TRANSACTION_WORDS:
            return Result(command=TRANSACTION_WORDS[word])
        if word == "VACUUM":
            return self.vacuum(sql)
        if word == "ANALYZE":
            return Result(command="ANALYZE")          # statistics: DuckDB keeps its own
        if word == "EXPLAIN":
            return self.explain(sql[len("EXPLAIN"):].strip())
        if word == "COPY":                                    # from S3 (loading.py)
            target = loading.parse_copy(sql)
            try:
                return Result(command="COPY", rowcount=loading.copy(self, sql, query_id))
            finally:
                self.written([(target.schema.lower(), target.table.lower())])
        if word == "SET" and re.match(r"SET\s+enable_result_cache_for_session\b", sql, re.IGNORECASE):
            self.cache.enabled = not re.search(r"\b(off|false)\s*$", sql, re.IGNORECASE)
            return Result(command="SET")
        if re.match(r"CREATE\s+EXTERNAL\s+SCHEMA\b", sql, re.IGNORECASE):      # Spectrum (spectrum.py)
            return Result(command=spectrum.create_external_schema(self, sql))
        if re.match(r"CREATE\s+EXTERNAL\s+TABLE\b", sql, re.IGNORECASE):
            raise errors.SQLError(errors.FEATURE_NOT_SUPPORTED, "CREATE EXTERNAL TABLE is not emulated: create "
                                  "the table in the Glue Data Catalog (Athena's CREATE EXTERNAL TABLE, Glue's "
                                  "CreateTable or a crawler) and query it through the external schema")
        if word == "DROP" and spectrum.drop_external_schema(self, sql):
            return Result(command="DROP SCHEMA")
        if word == "UNLOAD":                                  # to S3
            return Result(command="UNLOAD", rowcount=loading.unload(self, sql, self.arrow))
        spec = ddl.TableSpec()
        if word == "CREATE":
            if re.search(r"\(\s*LIKE\s", sql, re.IGNORECASE):
                raise errors.SQLError(errors.FEATURE_NOT_SUPPORTED, "CREATE TABLE ... (LIKE ...) is not emulated")
            sql, spec = ddl.strip_attributes(sql)
        remove_duplicates = word == "MERGE" and REMOVE_DUPLICATES.search(sql)
        if remove_duplicates:       # sqlglot knows no REMOVE DUPLICATES: parsed as a MERGE with a WHEN
            sql = REMOVE_DUPLICATES.sub(" WHEN MATCHED THEN DELETE", sql)
        tree = parse(sql)
        if re.search(r"pg_last_query_id|version", sql, re.IGNORECASE):
            tree, found = leader_functions(tree, last_query_id)
            if found:        # the value is part of the text the result cache keys on
                sql = f"{sql}\n-- pg_last_query_id() = {last_query_id}"
        if remove_duplicates:
            tree.meta["remove_duplicates"] = True
        if isinstance(tree, exp.Query) and not tree.args.get("into"):
            return self.query(sql, tree, params, query_id)
        try:
            if self.spectrum.references(tree):       # INSERT/CREATE ... AS SELECT over external tables
                with self.spectrum.scan(tree, query_id) as scanned:
                    return self._dispatch(scanned, spec, params, query_id)
            return self._dispatch(tree, spec, params, query_id)
        finally:
            self.written(written_tables(tree))

    def _dispatch(self, tree, spec: ddl.TableSpec, params: list | None, query_id: int) -> Result:
        from sqlglot import exp

        if isinstance(tree, exp.Create) and (tree.args.get("kind") or "").upper() == "TABLE" \
                and not tree.args.get("temporary") and not self._has_property(tree, exp.TemporaryProperty):
            return self.create_table(tree, ddl.read_properties(tree, spec), params)
        if isinstance(tree, (exp.Insert, exp.Update, exp.Delete, exp.TruncateTable, exp.Drop, exp.Alter,
                             exp.Merge)):
            result = self.write(tree, params)
            if result is not None:
                return result
        return self.run(tree, params, query_id)

    def query(self, sql: str, tree, params: list | None, query_id: int) -> Result:
        """A SELECT: from the result cache when its text, parameters and tables are unchanged;
        over external tables after the Spectrum workers scanned them."""
        if self.spectrum.references(tree):            # external tables: never cached (as on Redshift)
            with self.spectrum.scan(tree, query_id) as scanned:
                return self.run(scanned, params, query_id)
        tables = self._cacheable_tables(sql, tree) if self.cache.enabled else None
        if tables is None:
            return self.run(tree, params, query_id)
        key = self.cache.key(sql, params)
        hit = self.cache.get(key)
        if hit is not None:
            self.last_query_stats = []                # nothing was read: no blocks, no STL_SCAN rows
            with self.cursor() as cursor:
                cursor.execute(f"INSERT INTO {storage.CATALOG_SCHEMA}.result_cache_hits VALUES (?, ?)",
                               [query_id, hit.query_id])
            return Result(hit.result.command, hit.result.columns, list(hit.result.rows), hit.result.rowcount)
        versions = self.cache.snapshot(tables)
        result = self.run(tree, params, query_id)
        self.cache.put(key, query_id, versions, result)
        return result

    def _cacheable_tables(self, sql: str, tree) -> list[tuple[str, str]] | None:
        """The distributed tables a query reads, or None when its result must not be cached.

        Inside a transaction block: None. The block reads its own snapshot, with its
        own uncommitted writes: a cached result may not be what it sees, and what it
        sees may not be what other sessions see.
        """
        from sqlglot import exp

        session = _current.get()
        if not self.cache.cacheable_text(sql) or (session is not None and session.state != TX_IDLE):
            return None
        ctes = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
        names = {((t.db or "public").lower(), t.name.lower()) for t in tree.find_all(exp.Table)
                 if t.db or t.name.lower() not in ctes}
        if not names:
            return None
        with self.cursor() as cursor:
            if not all(self.storage.lookup(cursor, *name) for name in names):
                return None                           # views, temporary tables: not tracked here
        return sorted(names)

    def has_schema(self, name: str) -> bool:
        """Does the database have a (local) schema ``name``?"""
        with self.cursor() as cursor:
            return bool(cursor.execute("SELECT 1 FROM duckdb_schemas() WHERE database_name = ? AND schema_name = ?",
                                       [self.database, name]).fetchall())

    def arrow(self, sql: str):
        """The rows of one Redshift query as an Arrow table (what UNLOAD writes)."""
        import duckdb

        with self.cursor() as cursor:
            try:
                return cursor.sql(to_duckdb(parse(sql))).to_arrow_table()
            except duckdb.Error as exc:
                raise sql_error(exc) from None

    @staticmethod
    def _has_property(tree, kind) -> bool:
        return any(True for _ in tree.find_all(kind))

    def run(self, tree, params: list | None, query_id: int) -> Result:
        """A statement DuckDB runs as it is (SELECT over the views, CREATE VIEW, SET...).

        A query is profiled: the blocks each slice read go to STL_SCAN.
        """
        import duckdb
        from sqlglot import exp

        is_query = isinstance(tree, exp.Query)
        named = name_derived_columns(tree) if is_query else tree       # CTEs' count(*) is "count"...
        translated = to_duckdb(named)
        cursor = self.cursor()
        try:
            if is_query:
                cursor.execute("PRAGMA enable_profiling = 'no_output'")
            # A SELECT mpp.py can split runs per slice in parallel and is merged on the leader; not with
            # parameters, nor in a transaction block (only its own cursor sees its writes). None: gathered.
            session = _current.get()
            distributed = mpp.run(self, named, cursor, query_id, slices=not params and (
                session is None or session.state == TX_IDLE)) if is_query else None
            if distributed is not None:
                description, rows = distributed
            else:
                cursor.execute(translated, params)
                description = cursor.description
                rows = cursor.fetchall() if description is not None else []
                if is_query:
                    self._record_scans(cursor, query_id)
        except duckdb.Error as exc:
            raise sql_error(exc) from None
        finally:
            cursor.close()
        if description is None:
            return Result(command=command_tag(tree, 0), rowcount=0)
        if isinstance(tree, (exp.Insert, exp.Update, exp.Delete)):
            count = int(rows[0][0]) if rows else 0
            return Result(command=command_tag(tree, count), rowcount=count)
        if not is_query and [d[0] for d in description] == ["Count"]:
            return Result(command=command_tag(tree, 0), rowcount=0)
        names = column_names(tree, description) if is_query else [d[0] for d in description]
        columns = [Column(name, *pg_type(d[1])) for name, d in zip(names, description)]
        return Result(command=command_tag(tree, len(rows)), columns=columns, rows=rows, rowcount=len(rows))

    # -- writes to distributed tables -----------------------------------------------
    def transaction(self, work, own: bool = False):
        """Run ``work(cursor)``, the steps of one write, all or nothing; DuckDB errors -> SQLError.

        Outside a transaction block (autocommit): in a DuckDB transaction of its
        own, committed at the end, one such writer at a time (``self.lock``).
        Inside a session's block: on the session's cursor, in the block's
        transaction; nothing is committed here (the block's COMMIT does). The
        lock is held for this statement only: a session left open between
        statements must not stop everyone else. Two transactions writing the
        same rows are not made to wait: DuckDB lets each go on optimistically
        and refuses the second writer (a conflict: Redshift's ERROR 1023, SerializationError).

        ``own=True``: in a transaction of its own even inside a block, committed at
        once, for the system tables a ROLLBACK must not undo (STL_LOAD_ERRORS...).
        """
        import duckdb

        session = _current.get()
        if session is not None and session.state == TX_OPEN and not own:
            with self.lock:
                try:
                    return work(session.cursor)
                except duckdb.Error as exc:
                    raise sql_error(exc) from None
        with self.lock:
            cursor = self.connect() if own else self.cursor()
            try:
                cursor.begin()
                result = work(cursor)
                cursor.commit()
                return result
            except BaseException as exc:
                try:
                    cursor.rollback()
                except duckdb.Error:
                    pass
                if isinstance(exc, duckdb.Error):
                    raise sql_error(exc) from None
                raise
            finally:
                cursor.close()

    def lookup(self, cursor, table) -> storage.TableInfo | None:
        """The catalog entry of a sqlglot Table (unqualified names are in ``public``)."""
        return self.storage.lookup(cursor, (table.db or "public").lower(), table.name.lower())

    def create_table(self, tree, spec: ddl.TableSpec, params) -> Result:
        from sqlglot import exp

        target = tree.this.this if isinstance(tree.this, exp.Schema) else tree.this
        schema, name = (target.db or "public").lower(), target.name.lower()
        query = tree.expression

        def work(cursor):
            if query is not None:      # CREATE TABLE ... AS SELECT: the columns come from the query
                source = to_duckdb(query)
                described = cursor.execute(f"DESCRIBE {source}", params).fetchall()
                definitions = [f"{storage.quote(c[0].lower())} {c[1]}" for c in described]
                names = [c[0].lower() for c in described]
                sequences = []
            else:
                definitions, names, sequences = ddl.column_definitions(tree, schema, name)
            for column in filter(None, [spec.distkey, *spec.sortkey]):
                if column not in names:
                    raise errors.SQLError(errors.UNDEFINED_COLUMN,
                                          f'column "{column}" named in DISTKEY or SORTKEY does not exist')
            if tree.args.get("exists") and self.storage.lookup(cursor, schema, name):
                return Result(command="CREATE TABLE")
            for sequence in sequences:
                cursor.execute(sequence)
            table = self.storage.create(cursor, schema, name, ", ".join(definitions), spec.diststyle,
                                        spec.distkey, spec.sortkey, spec.interleaved)
            if query is not None:
                count = self.storage.insert(cursor, table, None, source, params)
                return Result(command=f"SELECT {count}", rowcount=count)
            return Result(command="CREATE TABLE")
        return self.transaction(work)

    def write(self, tree, params) -> Result | None:
        """INSERT, UPDATE, DELETE, TRUNCATE, DROP, ALTER of distributed tables (None: not one of ours)."""
        from sqlglot import exp

        if isinstance(tree, exp.Drop):
            if (tree.args.get("kind") or "").upper() != "TABLE":
                return None
            return self.transaction(lambda cursor: self.drop(cursor, tree))
        if isinstance(tree, exp.TruncateTable):
            return self.truncate(tree)
        target = tree.this.this if isinstance(tree.this, exp.Schema) else tree.this
        if not isinstance(target, exp.Table):
            return None
        with self.cursor() as cursor:
            table = self.lookup(cursor, target)
        if table is None:
            if tree.meta.get("remove_duplicates"):
                raise errors.SQLError(errors.FEATURE_NOT_SUPPORTED, "MERGE ... REMOVE DUPLICATES is emulated "
                                      "for tables created with CREATE TABLE only (not temporary tables)")
            return None
        if isinstance(tree, exp.Alter):
            return self.alter(tree, table)
        if isinstance(tree, exp.Merge):
            plan = merge_plan(tree, table)
            count = self.transaction(lambda cursor: self.storage.merge(cursor, table, plan, params))
            return Result(command=f"MERGE {count}", rowcount=count)
        if isinstance(tree, exp.Insert):
            columns = [c.name.lower() for c in tree.this.expressions] if isinstance(tree.this, exp.Schema) else None
            source = tree.expression.copy()
            if tree.args.get("with") is not None and isinstance(source, exp.Query):
                source.set("with", tree.args["with"].copy())   # WITH x AS (...) INSERT INTO t SELECT ... FROM x
            count = self.transaction(
                lambda cursor: self.storage.insert(cursor, table, columns, to_duckdb(source), params))
            return Result(command=command_tag(tree, count), rowcount=count)
        count = self.transaction(lambda cursor: self.modify(cursor, tree, table, params))
        return Result(command=command_tag(tree, count), rowcount=count)

    def alter(self, tree, table: storage.TableInfo) -> Result:
        """ALTER TABLE of a distributed table: ADD [COLUMN], DROP [COLUMN], RENAME COLUMN, RENAME TO.

        Every slice table, the view and the catalog change together, in one
        transaction (``storage.rebuild`` / ``storage.rename``). Refused as
        Redshift refuses them: a DISTKEY or SORTKEY column cannot be dropped
        (``cannot drop distkey column "c"``, ``cannot drop sortkey column "c"``:
        the ALTER TABLE page says so, the messages are Redshift's as its users
        report them), nor the last column; ADD COLUMN adds one column and no
        IDENTITY. A renamed DISTKEY or SORTKEY column stays the key. Other
        actions (ALTER COLUMN TYPE, ALTER DISTKEY/SORTKEY...) are not emulated.
        """
        from sqlglot import exp

        actions = tree.args.get("actions") or []
        if len(actions) != 1:
            raise errors.SQLError(errors.FEATURE_NOT_SUPPORTED, "ALTER TABLE of a distributed table takes one "
                                  "action here: ADD COLUMN, DROP COLUMN, RENAME COLUMN or RENAME TO")
        action = actions[0]
        definitions = ddl.split_definitions(table.columns_sql)
        names = [ddl.definition_name(d).lower() for d in definitions]

        def listed(columns):
            return ", ".join(storage.quote(c) for c in columns)

        if isinstance(action, exp.ColumnDef):
            name = action.name.lower()
            if name in names:
                raise errors.SQLError(errors.DUPLICATE_COLUMN,
                                      f'column "{name}" of relation "{table.name}" already exists')
            definition = ddl.column_definition(action, table.schema, table.name, identity=False)[0]
            self.transaction(lambda cursor: self.storage.rebuild(
                cursor, table, ", ".join([*definitions, definition]), listed(names), names))
        elif isinstance(action, exp.Drop) and (action.args.get("kind") or "").upper() == "COLUMN":
            dropped = [c.name.lower() for c in (action.args.get("tables") or [action.this])]
            name = dropped[0]
            if len(dropped) != 1 or name not in names:
                if action.args.get("exists") and len(dropped) == 1:
                    return Result(command="ALTER TABLE")
                raise errors.SQLError(errors.UNDEFINED_COLUMN,
                                      f'column "{name}" of relation "{table.name}" does not exist')
            for key, column in (("distkey", table.distkey), *(("sortkey", k) for k in table.sortkey)):
                if name == column:
                    raise errors.SQLError(errors.INVALID_TABLE_DEFINITION, f'cannot drop {key} column "{name}"')
            if len(names) == 1:
                raise errors.SQLError(errors.INVALID_TABLE_DEFINITION,
                                      f'cannot drop column "{name}": a table must have at least one column')
            kept = [n for n in names if n != name]
            self.transaction(lambda cursor: self.storage.rebuild(
                cursor, table, ", ".join(d for d, n in zip(definitions, names) if n != name), listed(kept), kept))
        elif isinstance(action, exp.RenameColumn):
            old, new = action.this.name.lower(), action.args["to"].name.lower()
            if old not in names:
                raise errors.SQLError(errors.UNDEFINED_COLUMN, f'column "{old}" does not exist')
            if new in names:
                raise errors.SQLError(errors.DUPLICATE_COLUMN,
                                      f'column "{new}" of relation "{table.name}" already exists')
            renamed = [new if n == old else n for n in names]
            changed = [ddl.rename_definition(d, old, new) if n == old else d for d, n in zip(definitions, names)]
            self.transaction(lambda cursor: self.storage.rebuild(
                cursor, table, ", ".join(changed), listed(names), renamed,
                distkey=new if table.distkey == old else None,
                sortkey=[new if k == old else k for k in table.sortkey]))
        elif isinstance(action, exp.AlterRename):
            new = action.this.name.lower()
            if new.startswith("#"):
                raise errors.SQLError(errors.INVALID_TABLE_DEFINITION,
                                      f'cannot rename a permanent table to "{new}": names beginning with # are '
                                      "for temporary tables")
            self.transaction(lambda cursor: self.storage.rename(cursor, table, new))
            self.written([(table.schema, new)])
        else:
            raise errors.SQLError(errors.FEATURE_NOT_SUPPORTED, f"{tree.sql(dialect='redshift')}: not emulated for "
                                  "distributed tables (ADD COLUMN, DROP COLUMN, RENAME COLUMN and RENAME TO are)")
        return Result(command="ALTER TABLE")

    def truncate(self, tree) -> Result | None:
        """TRUNCATE of distributed tables: every slice emptied (None: DuckDB's own tables)."""
        with self.cursor() as cursor:
            tables = [self.lookup(cursor, target) for target in tree.expressions]
        if not all(tables):
            return None

        def work(cursor):
            for table in tables:
                self.storage.truncate(cursor, table)
        self.transaction(work)
        return Result(command="TRUNCATE TABLE")

    def modify(self, cursor, tree, table: storage.TableInfo, params) -> int:
        """UPDATE or DELETE: the same statement on every slice's table (for ALL: every copy)."""
        from sqlglot import exp

        counts = []
        alias = tree.this.alias_or_name
        for slice_ in self.layout.slices_of(table):
            statement = tree.copy()
            physical = exp.Table(this=exp.to_identifier(f"{table.schema}.{table.name}", quoted=True),
                                 db=exp.to_identifier(f"slice_{slice_}"),
                                 alias=exp.TableAlias(this=exp.to_identifier(alias)))
            statement.set("this", physical)
            counts.append(int(cursor.execute(statement.sql(dialect="duckdb"), params).fetchone()[0]))
        moved_key = isinstance(tree, exp.Update) and table.diststyle == "KEY" and any(
            isinstance(eq, exp.EQ) and eq.this.name.lower() == table.distkey for eq in tree.expressions)
        if moved_key:
            self.storage.redistribute(cursor, table)
        self.storage.count_rows(cursor, table, sorted_rule="shrink")
        return counts[0] if table.diststyle == "ALL" else sum(counts)

    def drop(self, cursor, tree) -> Result:
        from sqlglot import exp

        tables = tree.args.get("tables") or [tree.this]
        for target in tables:
            table = self.lookup(cursor, target)
            if table is not None:
                self.storage.drop(cursor, table)
                continue
            single = tree.copy()
            single.set("tables", [target.copy()]) if tree.args.get("tables") else single.set("this", target.copy())
            try:                                  # a table DuckDB holds itself (a temp table...)
                cursor.execute(single.sql(dialect="duckdb"))
            except Exception as exc:
                if not isinstance(exc, errors.SQLError) and "does not exist" in str(exc):
                    raise errors.SQLError(errors.UNDEFINED_TABLE,
                                          f'Table "{target.name.lower()}" does not exist') from None
                raise
        return Result(command="DROP TABLE")

    def vacuum(self, sql: str) -> Result:
        """VACUUM [FULL | SORT ONLY | DELETE ONLY | REINDEX] [table] [TO n PERCENT]: re-sort slices."""
        words = re.findall(r"[\w.\"]+", sql)[1:]
        options = {"FULL", "SORT", "ONLY", "DELETE", "REINDEX", "RECLUSTER", "BOOST", "TO", "PERCENT"}
        names = [w for w in words if w.upper() not in options and not w.isdigit()]

        def work(cursor):
            if names:
                schema, _, name = names[0].replace('"', "").lower().rpartition(".")
                table = self.storage.lookup(cursor, schema or "public", name)
                if table is None:
                    raise errors.SQLError(errors.UNDEFINED_TABLE, f'relation "{name}" does not exist')
                targets = [table]
            else:
                targets = self.storage.tables(cursor)
            for table in targets:
                self.storage.vacuum(cursor, table)
                vacuumed.append((table.schema, table.name))
        vacuumed = []
        try:
            self.transaction(work)
        finally:      # the blocks were rewritten: cached results of these tables are dropped
            self.written(vacuumed)
        return Result(command="VACUUM")

    # -- EXPLAIN and the statistics of queries -----------------------------------
    def explain(self, sql: str) -> Result:
        """EXPLAIN <query>: the plan as rows of text (column ``QUERY PLAN``), without running it."""
        tree = parse(sql)
        with self.cursor() as cursor:
            try:   # bind the query once, so a missing table or column fails as it would when run
                cursor.execute(f"EXPLAIN {to_duckdb(tree)}")
            except Exception as exc:
                import duckdb
                if isinstance(exc, duckdb.Error):
                    raise sql_error(exc) from None
                raise

            def lookup(schema, name):
                table = self.storage.lookup(cursor, schema, name)
                if table is None:
                    return None, 0
                rows = cursor.execute(f"SELECT coalesce(sum(rows), 0) FROM {storage.CATALOG_SCHEMA}.slice_rows "
                                      f"WHERE table_id = ?", [table.table_id]).fetchone()[0]
                return table, int(rows) // (self.number_of_nodes if table.diststyle == "ALL" else 1)
            lines = planner.explain(tree, lookup, self.number_of_nodes)
        return Result(command="EXPLAIN", columns=[Column("QUERY PLAN", "character varying", 1043)],
                      rows=[(line,) for line in lines], rowcount=len(lines))

    def _record_scans(self, cursor, query_id: int) -> None:
        """Read DuckDB's profile of the query just run: blocks (row groups) read per slice table."""
        profile = json.loads(cursor.get_profiling_information(format="json"))
        stats = []

        def walk(operator):
            table = (operator.get("extra_info") or {}).get("Table", "")
            parts = table.replace('"', "").split(".", 2)     # database.slice_N.schema.table
            if operator.get("operator_type", operator.get("type")) == "TABLE_SCAN" and len(parts) == 3 \
                    and parts[1].startswith("slice_"):
                stats.append(ScanStat(int(parts[1][len("slice_"):]), parts[2],
                                      int(operator.get("rows_scanned", 0)), int(operator.get("operator_cardinality",
                                      operator.get("intermediate_rows", 0))),
                                      int(operator.get("row_groups_scanned", 0)),
                                      int(operator.get("total_row_groups_to_scan", 0))))
            for child in operator.get("children", []):
                walk(child)
        for operator in profile.get("operator", []) if isinstance(profile.get("operator"), list) else [profile]:
            walk(operator)
        self.last_query_stats = stats
        if stats:
            ids = {s.table: self.storage.lookup(cursor, *s.table.split(".", 1)) for s in stats}
            cursor.executemany(
                f"INSERT INTO {storage.CATALOG_SCHEMA}.stl_scan VALUES (100, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(query_id, s.slice, ids[s.table].table_id if ids[s.table] else None, s.table, s.rows,
                  s.rows_pre_filter, s.blocks_read, s.blocks_total) for s in stats])

    def _log(self, query_id: int, sql: str, start: float, aborted: int) -> None:
        """One STL_QUERY row per statement (a failure to log never fails the statement).

        Written on a cursor of its own, outside any transaction block: as on Redshift,
        the system tables keep what ran, even when a ROLLBACK undoes it.
        """
        import duckdb

        try:
            with self.connect() as cursor:
                cursor.execute(f"INSERT INTO {storage.CATALOG_SCHEMA}.stl_query VALUES "
                               f"(100, ?, 'default', ?, ?, to_timestamp(?)::TIMESTAMP, now()::TIMESTAMP, ?)",
                               [query_id, self.database, sql[:4000], start, aborted])
        except duckdb.Error:
            pass

    def _targets(self, sql: str) -> list[tuple[str, str]]:
        """The tables a statement writes, as far as its text tells ([] when it does not parse)."""
        try:
            if first_word(sql) == "COPY":
                target = loading.parse_copy(sql)
                return [(target.schema.lower(), target.table.lower())]
            return written_tables(parse(sql.strip().rstrip(";")))
        except errors.SQLError:
            return []

    def table_id(self, tables) -> int | None:
        """The catalog id of the first of ``tables`` ((schema, name) pairs) that exists (committed)."""
        with self.connect() as cursor:
            for schema, name in sorted(tables):
                table = self.storage.lookup(cursor, schema, name)
                if table is not None:
                    return table.table_id
        return None

    def written(self, tables) -> None:
        """A statement wrote ``tables``: outdate the cached results that read them (cache.py).

        Inside a transaction block this waits for the block's COMMIT: until then
        no other session sees the change, and a ROLLBACK means it never happened.
        """
        session = _current.get()
        if session is not None and session.state == TX_OPEN:
            session.pending.update(tables)
        else:
            self.cache.written(tables)

    def cancel(self) -> None:
        """Interrupt every statement running now (they fail with SQLSTATE 57014)."""
        import duckdb

        for cursor in list(self.open_cursors):   # each cursor is its own DuckDB connection
            try:
                cursor.interrupt()
            except duckdb.Error:
                pass

    def close(self) -> None:
        self.spectrum.close()
        self.connection.close()


# -- sessions: transactions as Redshift has them ------------------------------------------
class _Borrowed:
    """A session's cursor lent to the warehouse's code for one statement: closing it (a
    ``with`` block, ``cursor.close()``) leaves it open for the session's next statement."""

    def __init__(self, cursor):
        self._cursor = cursor

    def __getattr__(self, name):
        return getattr(self._cursor, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def close(self) -> None:
        pass


class Session:
    """One client's conversation with the warehouse: its own connection, and its transactions.

    ``warehouse.session()`` makes one; ``execute(sql, params)`` runs a statement
    in it; ``close()`` ends it (an open block is rolled back). The wire server
    gives each client connection one; a Data API batch runs in one. Used by one
    thread at a time. What it does is what Redshift (and PostgreSQL) do:

    - **Autocommit.** Outside a transaction block each statement is a
      transaction of its own, committed when it ends.
    - **Blocks.** ``BEGIN`` (or ``START TRANSACTION``) opens a block; the
      statements after it run in one transaction; ``COMMIT`` (or ``END``) makes
      all of its work visible at once, ``ROLLBACK`` (or ``ABORT``) undoes all
      of it: rows, tables created or dropped, the per-slice row counts of
      SVV_TABLE_INFO. As on Redshift, the block's snapshot of the database is
      taken at its first statement, not at BEGIN (DuckDB starts it lazily too).
    - **Isolation.** Other sessions see none of a block's work before its
      COMMIT; the block sees its own. This is DuckDB's MVCC: every transaction
      reads the row versions committed before it started, plus its own.
    - **An error fails the block.** Its work is rolled back at once, and every
      statement until ``ROLLBACK`` is refused with SQLSTATE 25P02 ("current
      transaction is aborted, commands ignored until end of transaction
      block"); a ``COMMIT`` then rolls back and answers ``ROLLBACK``.
    - **Conflicts.** Redshift makes a second writer of a table wait for the
      first one's write lock, and aborts a transaction that cannot be
      serialized with ``ERROR: 1023 DETAIL: Serializable isolation violation
      on table`` (SerializationError); the advice is to retry it. Here nobody
      waits: DuckDB lets transactions run optimistically and refuses, at once,
      the second of two that change the same rows; the first one's work is
      intact. Every write of a table updates its row counts in the catalog,
      so two open blocks writing the same table always collide (a table-level
      conflict, like Redshift's lock), while blocks writing different tables
      do not.
    - ``TRUNCATE`` and ``VACUUM`` commit the block they run in ("TRUNCATE
      commits the transaction in which it is run"); the session then stays in
      a new, empty block.

    The result cache (cache.py) is not used inside a block, and a block's
    writes outdate cached results at its COMMIT, not before. STL_QUERY keeps
    every statement that ran, also those a ROLLBACK undid.
    """

    def __init__(self, warehouse: Warehouse):
        self.warehouse = warehouse
        self.cursor = warehouse.connect()       # this session's own DuckDB connection
        self.state = TX_IDLE
        self.pending: set[tuple[str, str]] = set()   # tables the open block wrote (cache versions at COMMIT)
        self.closed = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def execute(self, sql: str, params: list | tuple | None = None) -> Result:
        """Run one statement in this session: transaction control here, the rest on the warehouse."""
        if self.closed:
            raise errors.SQLError(errors.INTERNAL_ERROR, "the session is closed")
        word = first_word(sql)
        if word in TRANSACTION_WORDS:
            return self.control(TRANSACTION_WORDS[word])
        if self.state == TX_FAILED:
            raise errors.SQLError(IN_FAILED_TRANSACTION, "current transaction is aborted, "
                                  "commands ignored until end of transaction block")
        token = _current.set(self)
        try:
            result = self.warehouse.execute(sql, params)
        except BaseException:
            self.fail()
            raise
        finally:
            _current.reset(token)
        if word in SELF_COMMITTING and self.state == TX_OPEN:
            self.commit()
            self.begin()
        return result

    def control(self, tag: str) -> Result:
        """BEGIN / COMMIT / ROLLBACK (``tag`` as TRANSACTION_WORDS names them)."""
        if tag in ("BEGIN", "START TRANSACTION"):
            if self.state == TX_FAILED:
                raise errors.SQLError(IN_FAILED_TRANSACTION, "current transaction is aborted, "
                                      "commands ignored until end of transaction block")
            if self.state == TX_IDLE:           # inside a block already: PostgreSQL warns and goes on
                self.begin()
            return Result(command=tag)
        if tag == "COMMIT" and self.state != TX_FAILED:
            if self.state == TX_OPEN:           # outside a block: nothing to commit (PostgreSQL warns)
                self.commit()
            return Result(command="COMMIT")
        self.rollback()                         # ROLLBACK, or COMMIT of a failed block
        return Result(command="ROLLBACK")

    def begin(self) -> None:
        """Open a block: a DuckDB transaction, whose snapshot its first statement takes."""
        self.cursor.begin()
        self.state, self.pending = TX_OPEN, set()

    def commit(self) -> None:
        """Commit the open block; a conflict found now rolls it back (ERROR 1023)."""
        import duckdb

        tables, self.pending = self.pending, set()
        try:
            with self.warehouse.lock:
                self.cursor.commit()
        except duckdb.Error as exc:
            self.rollback()
            error = sql_error(exc)
            if isinstance(error, SerializationError):
                error.on_table(self.warehouse.table_id(tables))
            raise error from None
        self.state = TX_IDLE
        self.warehouse.cache.written(tables)    # after the commit, never before (see cache.py)

    def rollback(self) -> None:
        """Undo the open block, if any; the session is idle (autocommit) again."""
        import duckdb

        if self.state == TX_OPEN:
            try:
                self.cursor.rollback()
            except duckdb.Error:                # DuckDB ended it already (a failed commit)
                pass
        self.state, self.pending = TX_IDLE, set()

    def fail(self) -> None:
        """A statement failed: an open block is rolled back now (so others no longer collide
        with its writes) and refuses statements until ROLLBACK. Outside a block: nothing."""
        if self.state == TX_OPEN:
            self.rollback()
            self.state = TX_FAILED

    def close(self) -> None:
        """End the session: an open block is rolled back, as when a client disconnects."""
        if self.closed:
            return
        self.closed = True
        try:
            self.rollback()
            self.cursor.close()
        except Exception:                       # the warehouse may be closed already
            pass
        self.warehouse.open_cursors.discard(self.cursor)
