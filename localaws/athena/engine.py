"""Running one Athena statement for real: SQL on DuckDB, DDL on the Glue catalog.

Athena's SQL dialect is Trino's (engine version 3). A statement goes through:

1. **parse** with sqlglot (dialect ``athena``): a syntax error fails the
   query with ``SYNTAX_ERROR: line L:C: ...``, as Athena reports it;
2. **dispatch**: DDL (CREATE DATABASE / EXTERNAL TABLE / VIEW, DROP, ALTER
   TABLE ADD/DROP PARTITION, MSCK REPAIR TABLE, SHOW, DESCRIBE) changes or
   reads the Glue Data Catalog (``ddl.py``); CTAS, INSERT INTO and UNLOAD
   run a query and write its result as files (``writer.py``); SELECT runs
   here;
3. **resolve** each table of a query in the catalog, keep only the
   partitions the WHERE clause can match (partition pruning), and let
   ``sources.py`` expose its S3 files to DuckDB (``federated.py`` for tables
   of a Lambda data catalog);
4. **translate** the query from Trino SQL to DuckDB SQL: sqlglot rewrites
   the syntax, ``dialect.py`` fixes where the two engines would answer
   differently (``5 / 2``, ``1 / 0``, decimal literals...); then run it
   on a cursor of the plane's one DuckDB database (:func:`open_database`),
   within the memory and threads ``core/limits.py`` allows. DuckDB's errors
   are reported with Athena's error names (``errors.py``); a SELECT's rows
   stream out as Arrow batches while its result is written
   (``results.py`` prints them as Athena does).

Athena's ``information_schema`` (schemata, tables, columns, views) is the
Glue catalog again, read as tables (``ddl.information_schema``).

**Lake Formation.** Each statement runs as the principal who started it.
A table Lake Formation governs (``localaws/core/lake.py``) is read the way
Athena reads it through Lake Formation: a table the principal may not see
does not exist for it (TABLE_NOT_FOUND, as for a missing one), one it may
describe but not SELECT fails the query (*Insufficient Lake Formation
permission(s)*), and otherwise the table becomes a DuckDB view of only its
granted columns and only the rows of its data cells filters
(:meth:`Statement.restrict`). A column it may not see then "cannot be
resolved", exactly as a column that does not exist; ``SELECT *``,
aggregates, joins, views, CTAS, INSERT INTO and UNLOAD all read the
restricted view, and the catalog statements (SHOW, DESCRIBE,
information_schema) list only what it may describe.
https://docs.aws.amazon.com/athena/latest/ug/security-athena-lake-formation.html
"""
from __future__ import annotations

import logging
import os
import re
import time

import sqlglot
from sqlglot import exp

from localaws.core.limits import duckdb_config
from . import catalog, ddl, dialect, federated, iceberg, writer
from .catalog import Partition, Table
from .errors import (QueryCancelled, QueryFailed, DDL_FAILED, engine_error, lake_access_denied, line_column,
                     position_of)
from .results import Result, athena_type, declared_text_types
from .sources import Source, duck_type, ident, sql_literal

logging.getLogger("sqlglot").setLevel(logging.ERROR)   # "falling back to Command" notices

BATCH_ROWS = 65536      # rows per Arrow batch a SELECT streams from DuckDB


def open_database(scratch: str | None = None):
    """The DuckDB database of one Athena plane: every query runs on a cursor of it.

    Opening a DuckDB database costs ~14 ms and closing it ~8 ms; a cursor
    costs microseconds. A cursor is a session of its own: its registered
    Arrow objects, TEMP views and macros, ``SET`` options and ``interrupt()``
    stay in it, so queries on two cursors neither see nor cancel each other.
    What the database holds is shared: the memory and threads
    ``core/limits.py`` allows (for all queries together), the spill folder
    under ``scratch``, and what ``dialect.py`` sets up once: the settings
    every cursor starts with and its Python functions (DuckDB registers a
    function once per database).
    """
    import duckdb
    config = duckdb_config("athena")
    if scratch:
        config["temp_directory"] = os.path.join(scratch, "duckdb")
    database = duckdb.connect(config=config)
    dialect.configure(database)
    dialect.register(database)
    return database


class Statement:
    """One query execution's work.

    ``database`` is the Athena database of unqualified table names;
    ``duckdb`` the plane's DuckDB database (:func:`open_database`), of which
    the query runs on cursors of its own. ``client(service)`` makes boto3
    clients of the stack (Glue for the catalog; Athena and Lambda for
    federated catalogs); ``s3`` is the stack's S3 (``core/s3.py``):
    listings, writes, deletes. The query's own reads are signed with
    ``access_key``, so the endpoint meters exactly what this query scanned.
    ``scratch`` is a folder for temporary files. ``on_connection(cursor)``
    hears of each cursor opened (to interrupt it), ``cancelled()`` says why
    the query must stop, if it must.

    ``principal`` is the ARN of who started the query and ``lake`` the stack's
    Lake Formation policy (``core/lake.py``; None: nothing is governed).

    Afterwards ``planned`` is when planning ended (tables found, partitions
    pruned, files listed) and ``tables`` the catalog tables it loaded.
    (One statement, one ``Statement``: its table lookups are kept for it.)
    """

    def __init__(self, sql: str, database: str, *, duckdb, client, s3, access_key: str, query_id: str,
                 output_location: str, scratch: str | None = None, on_connection=None, cancelled=None,
                 principal: str | None = None, lake=None, now=None):
        self.sql, self.database, self.duckdb = sql, database or "default", duckdb
        self.access_key = access_key
        self.now = now or time.time      # wall-clock seconds (the stack's clock: VACUUM's retention)
        self.local_tables: dict[str, str] = {}   # alias -> a DuckDB table the statement made (not in the catalog)
        self.client, self.glue, self.s3 = client, client("glue"), s3
        self.fs, self.reader = s3.filesystem(access_key), s3.client(access_key)
        self.query_id, self.output_location, self.scratch = query_id, output_location, scratch
        self.on_connection = on_connection or (lambda con: None)
        self.cancelled = cancelled or (lambda: None)
        self.files_opened = 0
        self.views: dict[str, list[str]] = {}   # alias in the query -> the DuckDB views it names
        self.planned: float | None = None
        self.tables: dict[tuple[str, str], Table] = {}     # (db, name) -> the table, as loaded
        self.principal = principal
        self.lake = lake if lake is not None and principal is not None and not lake.is_admin(principal) else None
        self.access: dict[tuple[str, str], object] = {}   # (db, name) -> its TableAccess, when governed
        self.governed = False          # did the statement read a table Lake Formation restricts?

    def check(self) -> None:
        """Stop when the query was cancelled (user or cutoff): between files, and
        before DuckDB starts running it (an interrupt before that would be lost)."""
        reason = self.cancelled()
        if reason:
            raise QueryCancelled(reason)

    # -- entry point ---------------------------------------------------------
    def run(self) -> Result:
        tree = self.parse(self.sql)
        if isinstance(tree, exp.Create):
            kind = (tree.args.get("kind") or "").upper()
            if kind in ("DATABASE", "SCHEMA"):
                return ddl.create_database(self, tree)
            if kind == "VIEW":
                return ddl.create_view(self, tree)
            if tree.expression is not None:
                props = writer.with_properties(tree)
                if iceberg.wants_iceberg(props):
                    return iceberg.ctas(self, tree, props)
                return writer.ctas(self, tree)
            if ddl.is_iceberg_create(tree):
                return iceberg.create_table(self, tree)
            return ddl.create_table(self, tree)
        if isinstance(tree, exp.Drop):
            if iceberg.drops_iceberg_table(self, tree):
                return Result("DDL", substatement="DROP_TABLE")
            return ddl.drop(self, tree)
        if isinstance(tree, exp.Alter):
            db, name = self.table_ref(tree.this)
            if iceberg.is_iceberg(self.load_table(db, name, node_sql=tree.this.name)):
                return iceberg.alter(self, tree, db, name)
            return ddl.alter(self, tree)
        if isinstance(tree, exp.Describe):
            return ddl.describe(self, *self.table_ref(tree.this))
        if isinstance(tree, exp.Insert):
            target = tree.this if isinstance(tree.this, exp.Table) else tree.this.this
            if iceberg.is_iceberg(self.load_table(*self.table_ref(target), node_sql=target.name)):
                return iceberg.insert(self, tree)
            return writer.insert(self, tree)
        if isinstance(tree, (exp.Update, exp.Delete)):
            return iceberg.update_or_delete(self, tree)
        if isinstance(tree, exp.Merge):
            return iceberg.merge(self, tree)
        if isinstance(tree, exp.Command):
            return self.command(tree)
        if isinstance(tree, exp.Query):
            return self.select(tree)
        raise QueryFailed("NOT_SUPPORTED", f"Statement {type(tree).__name__.upper()} is not supported locally")

    def command(self, tree: exp.Command) -> Result:
        """Statements sqlglot leaves unparsed: UNLOAD, MSCK REPAIR TABLE, SHOW."""
        head = tree.this.upper()
        rest = tree.expression.name if tree.expression is not None else ""
        if head == "UNLOAD":
            return writer.unload(self, self.sql.strip().rstrip(";"))
        if head == "OPTIMIZE":
            return iceberg.optimize(self, rest)
        if head == "VACUUM":
            return iceberg.vacuum(self, rest)
        if head.startswith("MSCK"):
            m = re.match(r"(?i)TABLE\s+([\w.`\"]+)", rest.strip())
            if not m:
                raise QueryFailed("SYNTAX_ERROR", "MSCK REPAIR TABLE needs a table name")
            return ddl.msck(self, *self.table_ref(exp.to_table(m.group(1).replace("`", ""))))
        if head == "SHOW":
            return ddl.show(self, rest.strip())
        raise QueryFailed("NOT_SUPPORTED", f"{head} is not supported locally")

    @staticmethod
    def parse(sql: str) -> exp.Expression:
        text = sql.strip().rstrip(";")
        if not text:
            raise QueryFailed("SYNTAX_ERROR", "mismatched input '<EOF>'. Expecting: a statement", line=1, column=1)
        try:
            trees = sqlglot.parse(text, read="athena")
        except sqlglot.errors.TokenError:
            line, col, token = unterminated(text)
            raise QueryFailed("SYNTAX_ERROR", f"token recognition error at: '{token}'",
                              line=line, column=col) from None
        except sqlglot.errors.ParseError as err:
            e = err.errors[0] if err.errors else {}
            near = e.get("highlight") or ""
            raise QueryFailed("SYNTAX_ERROR", f"{e.get('description', 'syntax error')} near '{near}'",
                              line=e.get("line"), column=e.get("col")) from None
        trees = [t for t in trees if t is not None]
        if len(trees) != 1:
            raise QueryFailed("SYNTAX_ERROR", "Only one sql statement is allowed. Got: " + str(len(trees)))
        return trees[0]

    # -- catalog access ------------------------------------------------------
    def table_ref(self, node: exp.Table) -> tuple[str, str]:
        db = (node.db or self.database).lower()
        return db, node.name.lower()

    def load_table(self, db: str, name: str, *, node_sql: str | None = None) -> Table:
        """The catalog table ``db.name`` with its partitions, looked up once per statement
        (as Athena's engine caches the metastore within a query: a self-join asks once)."""
        if (db, name) in self.tables:
            return self.tables[(db, name)]
        try:
            raw = self.glue.get_table(DatabaseName=db, Name=name)["Table"]
        except self.glue.exceptions.EntityNotFoundException:
            line, col = position_of(self.sql, node_sql or name)
            if not self.database_exists(db):
                raise QueryFailed("SCHEMA_NOT_FOUND", f"Schema '{db}' does not exist", line=line, column=col) from None
            raise QueryFailed("TABLE_NOT_FOUND", f"Table 'awsdatacatalog.{db}.{name}' does not exist",
                              line=line, column=col) from None
        table = catalog.glue_table(raw)
        access = self.table_access(db, name, table)
        if access is not None and not (access.describe or access.select):
            # What the caller may not see does not exist for it (nothing says it does).
            line, col = position_of(self.sql, node_sql or name)
            if not self.database_exists(db):
                raise QueryFailed("SCHEMA_NOT_FOUND", f"Schema '{db}' does not exist", line=line, column=col)
            raise QueryFailed("TABLE_NOT_FOUND", f"Table 'awsdatacatalog.{db}.{name}' does not exist",
                              line=line, column=col)
        if table.partition_keys:
            projected = catalog.projected_partitions(table)
            if projected is not None:
                table.partitions = projected
            else:
                table.partitions = [
                    Partition(dict(zip([c for c, _ in table.partition_keys], p["Values"])),
                              p["StorageDescriptor"]["Location"])
                    for page in self.glue.get_paginator("get_partitions").paginate(DatabaseName=db, TableName=name)
                    for p in page["Partitions"]]
        self.tables[(db, name)] = table
        return table

    def database_exists(self, db: str) -> bool:
        """Whether the database exists for this query's principal (Lake Formation may hide it)."""
        try:
            self.glue.get_database(Name=db)
        except self.glue.exceptions.EntityNotFoundException:
            return False
        return self.lake is None or self.lake.database_visible(self.principal, db)

    # -- Lake Formation --------------------------------------------------------
    def table_access(self, db: str, name: str, table: Table | None = None):
        """What Lake Formation lets this query's principal do with ``db.name``: its
        ``TableAccess`` (``core/lake.py``), or None when nothing restricts it (no
        governed table, or the administrator). Asked once per table and statement."""
        if self.lake is None:
            return None
        access = self.lake_access(db, name, table)
        everything = (access.select and access.describe and access.columns is None
                      and not row_filter_of(access) and not getattr(access, "cells", None))
        return None if everything else access

    def lake_access(self, db: str, name: str, table: Table | None = None):
        """Lake Formation's ``TableAccess`` for this query's principal (``self.lake`` is set)."""
        if (db, name) not in self.access:
            table = table or self.tables.get((db, name))
            columns = [c for c, _ in table.columns + table.partition_keys] if table is not None else []
            self.access[(db, name)] = self.lake.table_access(self.principal, db, name, columns)
        return self.access[(db, name)]

    def require(self, db: str, name: str, permission: str) -> None:
        """A statement that changes a table (INSERT, ALTER, DROP) needs that Lake Formation
        permission on it when it is governed; a table the principal cannot see is not found."""
        if self.lake is None:
            return
        table = self.load_table(db, name)
        held = getattr(self.lake_access(db, name, table), "permissions", None)
        if held is not None and permission not in held:
            raise lake_access_denied(name)

    def require_on_database(self, db: str, permission: str) -> None:
        """CREATE TABLE / VIEW / CTAS (``CREATE_TABLE``) and DROP DATABASE (``DROP``) in a
        database Lake Formation governs need that permission on the database."""
        if self.lake is not None and permission not in self.lake.database_permissions(self.principal, db):
            raise lake_access_denied(db)

    def visible_columns(self, db: str, table: Table) -> tuple[list, list]:
        """(data columns, partition keys) of ``table`` that this query's principal may see."""
        access = self.table_access(db, table.name.lower(), table)
        if access is None or access.columns is None:
            return table.columns, table.partition_keys
        shown = {c.lower() for c in access.columns}
        return ([c for c in table.columns if c[0] in shown], [k for k in table.partition_keys if k[0] in shown])

    def may_describe(self, db: str, raw: dict) -> bool:
        """Whether this query's principal may see the Glue table ``raw`` of ``db`` (SHOW TABLES...)."""
        if self.lake is None:
            return True
        table = catalog.glue_table(raw)
        access = self.table_access(db, table.name.lower(), table)
        return access is None or access.describe or access.select

    def restrict(self, con, db: str, table: Table, view: str, access) -> str:
        """A DuckDB view over ``view`` (the whole table) with only what ``access`` grants:
        the rows its row filter keeps (a filter may use any column of the table, visible
        or not), then the visible columns in table order; a column that only some of the
        principal's data cells filters include shows NULL in the rows of the others
        (``access.cells``). Filters are Athena SQL, translated like any query.
        Returns the new view's name."""
        data, keys = self.visible_columns(db, table)
        visible = [c for c, _ in data + keys]
        if not visible:
            raise lake_access_denied(table.name)
        condition = row_filter_of(access)
        cells = {c.lower(): condition_of(f) for c, f in (getattr(access, "cells", None) or {}).items()}
        quoted = {v: '"' + v.replace('"', '""') + '"' for v in visible}
        items = [f"CASE WHEN ({cells[v]}) THEN {quoted[v]} END AS {quoted[v]}" if cells.get(v) else quoted[v]
                 for v in visible]
        query = f"SELECT {', '.join(items)} FROM {ident(view)} AS __lf"
        try:
            tree = sqlglot.parse_one(query + (f" WHERE {condition}" if condition else ""), read="athena")
            tree = dialect.rewrite(tree, {"__lf": self.view_columns_of(con, view)}, "")
        except (QueryFailed, sqlglot.errors.ParseError):
            # A filter that no longer fits the table (a column dropped since): show nothing.
            tree = sqlglot.parse_one(f"SELECT {', '.join(quoted.values())} FROM {ident(view)} AS __lf "
                                     "WHERE FALSE", read="athena")
        dialect.define(con, tree)
        restricted = f"{view}__lf"
        con.execute(f"CREATE TEMP VIEW {ident(restricted)} AS {tree.sql(dialect='duckdb')}")
        self.governed = True
        return restricted

    @staticmethod
    def view_columns_of(con, view: str) -> dict:
        rel = con.sql(f"SELECT * FROM {ident(view)}")
        return {n.lower(): dialect.dtype(str(t)) for n, t in zip(rel.columns, rel.types)}

    def refuse_table_functions(self, tree: exp.Expression) -> None:
        """Under Lake Formation a query reads tables through the catalog only: DuckDB's own
        table functions (``query()``, ``read_parquet()``, ``duckdb_views()``), which Athena
        does not have, could read around the restricted views."""
        for node in tree.find_all(exp.Table):
            if not node.name and isinstance(node.this, exp.Func):
                name = node.this.sql_name() if not isinstance(node.this, exp.Anonymous) else node.this.name
                line, col = position_of(self.sql, name) if name else (None, None)
                raise QueryFailed("FUNCTION_NOT_FOUND", f"Table function '{name.lower()}' not registered",
                                  line=line, column=col)

    def require_database(self, db: str) -> None:
        if not self.database_exists(db):
            raise QueryFailed("SCHEMA_NOT_FOUND", f"Schema '{db}' does not exist", error_type=DDL_FAILED)

    # -- queries -------------------------------------------------------------
    def connect(self):
        """A cursor of the plane's DuckDB database for this query (a session of its own)."""
        con = self.duckdb.cursor()
        self.on_connection(con)
        return con

    def expand(self, tree: exp.Expression, con, depth: int = 0) -> exp.Expression:
        """Make ``tree`` runnable on DuckDB: each catalog table (and view) becomes a
        DuckDB view over its files, then ``dialect.py`` fixes what DuckDB would
        answer differently from Trino (its macros created on ``con``)."""
        if depth > 10:
            raise QueryFailed("VIEW_IS_RECURSIVE", "View is recursive")
        if depth == 0:    # alias -> views; a statement's own DuckDB tables (DML targets) count as views
            self.views = {alias: [table] for alias, table in self.local_tables.items()}
        if self.lake is not None:
            self.refuse_table_functions(tree)
        cte_names = {c.alias_or_name.lower() for c in tree.find_all(exp.CTE)}
        for node in list(tree.find_all(exp.Table)):
            if not node.name or (not node.db and node.name.lower() in cte_names | set(self.local_tables.values())):
                continue
            if isinstance(node.parent, (exp.Create, exp.Insert)) and node.parent.this is node:
                continue
            db, name = self.table_ref(node)
            alias = node.alias or name
            if not node.alias:
                unqualify_columns(tree, db, name)
            if node.catalog and node.catalog.lower() != "awsdatacatalog":
                # A federated catalog (CreateDataCatalog Type=LAMBDA): a connector reads it.
                source = federated.source(self, node.catalog, db, name, node=node)
                view = f"__f{abs(hash((node.catalog, db, name, id(node)))) % 10**8}"
                source.register(con, view)
                self.use_view(node, view, alias)
                continue
            if db == "information_schema":
                view = f"__i{abs(hash((name, id(node)))) % 10**8}"
                con.register(view, ddl.information_schema(self, name, wanted_schemas(tree)))
                self.use_view(node, view, alias)
                continue
            name, metadata = iceberg.split_metadata_name(name)
            table = self.load_table(db, name, node_sql=node.name)
            access = self.table_access(db, name, table)
            if access is not None and not access.select:
                raise lake_access_denied(name)
            if iceberg.is_iceberg(table):
                # Iceberg: pyiceberg plans the files (pruned by its metadata), DuckDB reads the rows.
                view = f"__t{abs(hash((db, name, id(node)))) % 10**8}"
                if metadata:
                    iceberg.refuse_restricted_metadata(access, metadata, name)
                    iceberg.register_metadata(self, con, db, name, metadata, view)
                else:
                    iceberg.register(self, con, node, db, name, view, governed=access is not None)
                if access is not None and not metadata:
                    view = self.restrict(con, db, table, view, access)
                node.set("version", None)
                self.use_view(node, view, alias)
                continue
            if metadata or node.args.get("version") is not None:
                raise QueryFailed("NOT_SUPPORTED", "This connector does not support versioned tables"
                                  if not metadata else f"Table '{db}.{node.name}' does not exist: "
                                  "metadata tables ($snapshots...) exist for Iceberg tables only")
            if table.view_sql is not None:
                # Athena runs a view with the permissions of whoever queries it: its tables are
                # checked (and restricted) for this principal as if the query named them.
                sub = self.expand(self.parse(table.view_sql), con, depth + 1)
                node.replace(exp.Subquery(this=sub, alias=exp.TableAlias(this=exp.to_identifier(alias))))
                continue
            partitions = self.prune(table, node, con, access) if table.partition_keys else None
            source = Source(table, partitions, s3=self.s3, fs=self.fs, reader=self.reader, check=self.check)
            self.files_opened += source.files_opened
            view = f"__t{abs(hash((db, name, id(node)))) % 10**8}"
            source.register(con, view)
            if access is not None:
                view = self.restrict(con, db, table, view, access)
            self.use_view(node, view, alias)
        if depth == 0:
            tree = dialect.rewrite(tree, self.view_columns(con), self.sql)
            dialect.define(con, tree)
            self.planned = self.planned or time.monotonic()
        return tree

    def use_view(self, node: exp.Table, view: str, alias: str) -> None:
        """Put the DuckDB ``view`` where the query named a table, under the same alias."""
        node.replace(exp.Table(this=exp.to_identifier(view), alias=exp.TableAlias(this=exp.to_identifier(alias))))
        self.views.setdefault(alias.lower(), []).append(view)

    def view_columns(self, con) -> dict[str, dict]:
        """alias -> column -> type, for the type checker of ``dialect.py`` (None where
        two tables of the query share an alias and disagree on a column's type)."""
        columns = {}
        for alias, views in self.views.items():
            merged = columns.setdefault(alias, {})
            for view in views:
                rel = con.sql(f"SELECT * FROM {ident(view)}")
                for name, kind in zip(rel.columns, rel.types):
                    kind = dialect.dtype(str(kind))
                    same = name.lower() not in merged or merged[name.lower()] == kind
                    merged[name.lower()] = kind if same else None
        return columns

    def prune(self, table: Table, node: exp.Table, con, access=None) -> list[Partition]:
        """Keep the partitions that the WHERE conditions on partition columns can match.

        This is what makes partitioning pay on Athena: a query filtering on
        ``month = 1`` never lists nor reads the other months' files. Under Lake
        Formation only the visible partition columns count, and the conditions
        of the principal's row filter on partition columns prune too.
        """
        partitions = table.partitions
        select = node.find_ancestor(exp.Select)
        where = select.args.get("where") if select is not None else None
        condition = row_filter_of(access) if access is not None else None
        if not partitions or (where is None and not condition):
            return partitions
        keys = {c for c, _ in table.partition_keys}
        if access is not None and access.columns is not None:
            keys &= {c.lower() for c in access.columns}
        alias = (node.alias or table.name).lower()
        conjuncts = []
        if where is not None:
            conjuncts += list(where.this.flatten()) if isinstance(where.this, exp.And) else [where.this]
        usable = []
        for cond in conjuncts:
            columns = list(cond.find_all(exp.Column))
            if columns and all(c.name.lower() in keys and (not c.table or c.table.lower() == alias)
                               for c in columns) and not cond.find(exp.Subquery):
                usable.append(cond.copy())
        if condition:
            every_key = {c for c, _ in table.partition_keys}
            try:
                parsed = sqlglot.parse_one(condition, read="athena")
            except sqlglot.errors.ParseError:
                parsed = None
            for cond in (list(parsed.flatten()) if isinstance(parsed, exp.And) else [parsed] if parsed else []):
                columns = list(cond.find_all(exp.Column))
                if columns and all(c.name.lower() in every_key for c in columns) and not cond.find(exp.Subquery):
                    usable.append(cond.copy())
        if not usable:
            return partitions
        for cond in usable:
            for c in cond.find_all(exp.Column):
                c.set("table", None)
        values = ", ".join("(" + ", ".join([str(i)] + [sql_literal(p.values[c]) for c, _ in table.partition_keys]) + ")"
                           for i, p in enumerate(partitions))
        cols = ", ".join([ident("__i")] + [ident(c) for c, _ in table.partition_keys])
        typed = ", ".join([ident("__i")] + [f"TRY_CAST({ident(c)} AS {duck_type(t)}) AS {ident(c)}"
                                            for c, t in table.partition_keys])
        condition = " AND ".join(c.sql(dialect="duckdb") for c in usable)
        try:
            keep = con.execute(f"SELECT __i FROM (SELECT {typed} FROM (VALUES {values}) AS p({cols})) "
                               f"WHERE {condition}").fetchall()
        except Exception:
            return partitions   # a condition DuckDB cannot evaluate alone: read them all
        return [partitions[int(i)] for (i,) in keep]

    def relation(self, tree: exp.Expression):
        """Bind a query tree on a new cursor: (cursor, DuckDB relation), nothing run yet.

        The caller reads the relation and closes the cursor; on failure it is closed here.
        """
        con = self.connect()
        try:
            return con, con.sql(self.expand(tree, con).sql(dialect="duckdb"))
        except (QueryFailed, QueryCancelled):
            con.close()
            raise
        except Exception as exc:
            con.close()
            raise engine_error(exc, self.sql) from None

    def execute_query(self, tree: exp.Expression):
        """Run a query tree to its end; returns (DuckDB column names, types, arrow table).
        For the statements that need the whole result at once (CTAS, INSERT, UNLOAD, views)."""
        con, rel = self.relation(tree)
        try:
            self.check()
            return list(rel.columns), [str(t) for t in rel.types], rel.to_arrow_table()
        except (QueryFailed, QueryCancelled):
            raise
        except Exception as exc:
            raise engine_error(exc, self.sql) from None
        finally:
            con.close()

    @staticmethod
    def name_columns(tree: exp.Expression) -> exp.Expression:
        """Athena names an unnamed result column ``_col0``, ``_col1``... by position."""
        first = tree
        while isinstance(first, exp.SetOperation):
            first = first.this
        if isinstance(first, exp.Select):
            for i, e in enumerate(first.expressions):
                if not isinstance(e, (exp.Alias, exp.Column, exp.Star)) and not e.find(exp.Star) is e:
                    e.replace(exp.alias_(e.copy(), f"_col{i}"))
        return tree

    def select(self, tree: exp.Expression) -> Result:
        """A SELECT whose rows come as Arrow batches straight from DuckDB: the query runs
        as they are read, its cursor open (and interruptible) until ``close()``."""
        tree = self.name_columns(tree)
        aliases = {n.alias_or_name.lower(): self.table_ref(n) for n in tree.find_all(exp.Table) if n.name}
        con, rel = self.relation(tree)
        try:
            declared = declared_text_types(tree, {a: self.tables[ref] for a, ref in aliases.items()
                                                  if ref in self.tables})
            types = [athena_type(str(t)) for t in rel.types]
        except BaseException:
            con.close()
            raise
        columns = [(n, declared.get(n.lower(), t) if t == "varchar" else t) for n, t in zip(rel.columns, types)]

        def batches():
            self.check()
            try:
                yield from rel.to_arrow_reader(BATCH_ROWS)
            except Exception as exc:
                raise engine_error(exc, self.sql) from None

        return Result("DML", columns, batches=batches(), close=con.close, substatement="SELECT")


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------
def row_filter_of(access) -> str | None:
    """The row filter of a ``TableAccess`` as SQL, None when it keeps every row."""
    return condition_of(getattr(access, "row_filter", None))


def condition_of(text: str | None) -> str | None:
    """A Lake Formation filter expression, None when it keeps every row (empty or ``TRUE``)."""
    condition = (text or "").strip()
    return None if not condition or condition.upper() == "TRUE" else condition


def unqualify_columns(tree: exp.Expression, db: str, name: str) -> None:
    """``db.table.column`` (and ``catalog.db.table.column``) become ``table.column``,
    as DuckDB sees the table under its plain name."""
    for column in tree.find_all(exp.Column):
        if column.db and column.db.lower() == db and column.table.lower() == name:
            column.set("db", None)
            column.set("catalog", None)


def wanted_schemas(tree: exp.Expression) -> set[str] | None:
    """The databases an information_schema query asks for (``table_schema = 'x'``,
    ``IN (...)``), so that only those are listed; None for all of them."""
    wanted = set()
    for cond in tree.find_all(exp.EQ, exp.In):
        column = cond.this if isinstance(cond.this, exp.Column) else cond.expression
        if not isinstance(column, exp.Column) or column.name.lower() not in ("table_schema", "schema_name"):
            continue
        if cond.find_ancestor(exp.Or, exp.Not) is not None:
            return None      # the condition does not restrict: list every database
        values = cond.expressions if isinstance(cond, exp.In) else [cond.expression, cond.this]
        wanted |= {v.name.lower() for v in values if isinstance(v, exp.Literal) and v.is_string}
    return wanted or None


def unterminated(sql: str) -> tuple[int, int, str]:
    """line, column and text of the quoted string or identifier that ``sql`` never
    closes (what Trino's lexer reports as a token recognition error)."""
    i, n = 0, len(sql)
    while i < n:
        if sql.startswith("--", i):
            end = sql.find("\n", i)
            i = n if end < 0 else end + 1
        elif sql.startswith("/*", i):
            end = sql.find("*/", i + 2)
            if end < 0:
                return (*line_column(sql, i), sql[i:])
            i = end + 2
        elif sql[i] in "'\"`":
            quote, j = sql[i], i + 1
            while j < n and not (sql[j] == quote and not sql.startswith(quote * 2, j)):
                j += 2 if sql.startswith(quote * 2, j) else 1
            if j >= n:
                return (*line_column(sql, i), sql[i:])
            i = j + 1
        else:
            i += 1
    return 1, 1, sql
