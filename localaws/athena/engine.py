"""Running one Athena statement for real: SQL on DuckDB, DDL on the Glue catalog.

Athena's SQL dialect is Trino's (engine version 3). A statement goes through:

1. **parse** with sqlglot (dialect ``athena``): a syntax error fails the
   query with ``SYNTAX_ERROR: line L:C: ...``, as Athena reports it;
2. **dispatch**: DDL (CREATE DATABASE / EXTERNAL TABLE / VIEW, DROP, ALTER
   TABLE ADD/DROP PARTITION, MSCK REPAIR TABLE, SHOW, DESCRIBE) changes or
   reads the Glue Data Catalog; queries (SELECT, CTAS, INSERT INTO, UNLOAD)
   run on DuckDB;
3. **resolve** each table of a query in the catalog, keep only the
   partitions the WHERE clause can match (partition pruning), and let
   ``sources.py`` expose its S3 files to DuckDB;
4. **translate** the query from Trino SQL to DuckDB SQL with sqlglot and run
   it; DuckDB's errors are reported with Athena's error names
   (COLUMN_NOT_FOUND, FUNCTION_NOT_FOUND, TABLE_NOT_FOUND...).
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field

import sqlglot
from sqlglot import exp

from . import catalog, writer
from .catalog import Partition, Table
from .errors import DATA_ERROR, DDL_FAILED, QueryCancelled, QueryFailed
from .sources import Source, duck_type, ident, list_files, split_s3, sql_literal

logging.getLogger("sqlglot").setLevel(logging.ERROR)   # "falling back to Command" notices


@dataclass
class Result:
    """What a statement produced."""
    statement_type: str                       # DDL | DML | UTILITY
    columns: list[tuple[str, str]] = field(default_factory=list)   # (name, Athena type)
    rows: list[list[str | None]] = field(default_factory=list)
    files_opened: int = 0
    written: list[str] = field(default_factory=list)               # s3:// URIs (CTAS, INSERT, UNLOAD)
    substatement: str = ""


# --------------------------------------------------------------------------
# Values and types as Athena prints them
# --------------------------------------------------------------------------
_ATHENA_TYPES = [("VARCHAR", "varchar"), ("BIGINT", "bigint"), ("HUGEINT", "bigint"),
                 ("INTEGER", "integer"), ("SMALLINT", "smallint"), ("TINYINT", "tinyint"),
                 ("DOUBLE", "double"), ("FLOAT", "real"), ("BOOLEAN", "boolean"),
                 ("DATE", "date"), ("TIMESTAMP WITH TIME ZONE", "timestamp with time zone"),
                 ("TIMESTAMP", "timestamp"), ("DECIMAL", "decimal"), ("BLOB", "varbinary"),
                 ("INTERVAL", "interval day to second"), ("UUID", "varchar"), ("JSON", "json")]


def athena_type(duck: str) -> str:
    duck = duck.upper()
    if duck.endswith("[]"):
        return "array"
    if duck.startswith("STRUCT"):
        return "row"
    if duck.startswith("MAP"):
        return "map"
    for prefix, name in _ATHENA_TYPES:
        if duck.startswith(prefix):
            return name
    return duck.lower()


def java_double(value: float) -> str:
    """Doubles as Athena (Java) prints them: 12.0, 1.5E7, 1.0E-4."""
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0 or 1e-3 <= abs(value) < 1e7:
        text = repr(float(value))
        return text if "e" not in text else f"{value:.10f}".rstrip("0")
    mantissa, exponent = f"{value:.16E}".split("E")
    mantissa = repr(float(mantissa))
    return f"{mantissa}E{int(exponent)}"


def render(value) -> str | None:
    """One value as Athena's result set shows it (a string, or None for NULL)."""
    import datetime
    import decimal
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return java_double(value)
    if isinstance(value, datetime.datetime):
        text = value.strftime("%Y-%m-%d %H:%M:%S.") + f"{value.microsecond // 1000:03d}"
        return text + (" UTC" if value.tzinfo is not None else "")
    if isinstance(value, (datetime.date, decimal.Decimal, int)):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join("null" if v is None else render(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={'null' if v is None else render(v)}" for k, v in value.items()) + "}"
    if isinstance(value, bytes):
        return value.hex(" ")
    return str(value)


# --------------------------------------------------------------------------
# Errors: sqlglot and DuckDB messages -> Athena's
# --------------------------------------------------------------------------
def position_of(sql: str, word: str) -> tuple[int | None, int | None]:
    """line, column (1-based) of the first whole-word ``word`` in ``sql``."""
    m = re.search(rf"(?<![\w.]){re.escape(word)}(?!\w)", sql, re.IGNORECASE)
    if not m:
        return None, None
    line = sql.count("\n", 0, m.start()) + 1
    col = m.start() - (sql.rfind("\n", 0, m.start()) + 1) + 1
    return line, col


def engine_error(exc: Exception, sql: str) -> Exception:
    """Translate a DuckDB error into the failure Athena would report."""
    text = str(exc)
    if "INTERRUPT" in text.upper():
        return QueryCancelled("Query was cancelled")
    m = re.search(r'Referenced column "([^"]+)" not found', text) or \
        re.search(r'column "?([\w]+)"? not found', text, re.IGNORECASE)
    if m:
        line, col = position_of(sql, m.group(1))
        return QueryFailed("COLUMN_NOT_FOUND", f"Column '{m.group(1)}' cannot be resolved", line=line, column=col)
    m = re.search(r"(?:Scalar|Aggregate|Table) Function with name \"?(\w+)\"? does not exist", text)
    if m:
        line, col = position_of(sql, m.group(1))
        return QueryFailed("FUNCTION_NOT_FOUND", f"Function '{m.group(1).lower()}' not registered",
                           line=line, column=col)
    m = re.search(r"No function matches the given name and argument types '([^']+)'", text)
    if m:
        return QueryFailed("FUNCTION_NOT_FOUND", f"Unexpected parameters for function {m.group(1)}")
    if "Conversion Error" in text or "Could not convert" in text:
        return QueryFailed("INVALID_CAST_ARGUMENT", text.split("\n")[0].split(": ", 1)[-1], error_type=DATA_ERROR)
    if "Malformed JSON" in text:
        return QueryFailed("HIVE_CURSOR_ERROR", "Row is not a valid JSON Object - " + text.split("\n")[0],
                           error_type=DATA_ERROR)
    if "Binder Error" in text or "Parser Error" in text:
        return QueryFailed("SYNTAX_ERROR", text.split("\n")[0].split(": ", 1)[-1])
    if "Division by zero" in text:
        return QueryFailed("DIVISION_BY_ZERO", "Division by zero", error_type=DATA_ERROR)
    return QueryFailed("GENERIC_USER_ERROR", text.split("\n")[0])


# --------------------------------------------------------------------------
# The engine
# --------------------------------------------------------------------------
TRINO_MACROS = {
    "url_extract_host": "regexp_extract(u, '^[a-zA-Z][a-zA-Z0-9+.-]*://([^/:?#]+)', 1)",
    "url_extract_path": "regexp_extract(u, '^[a-zA-Z][a-zA-Z0-9+.-]*://[^/?#]*([^?#]*)', 1)",
    "url_extract_protocol": "regexp_extract(u, '^([a-zA-Z][a-zA-Z0-9+.-]*)://', 1)",
}
class Statement:
    """One query execution's work. ``client(service)`` makes clients of the stack,
    ``fs`` is the query's metered S3 filesystem."""

    def __init__(self, sql: str, database: str, *, client, s3, fs, query_id: str,
                 output_location: str, on_connection=None, cancelled=None, reader_s3=None):
        self.sql, self.database = sql, database or "default"
        self.client = client
        self.glue, self.s3, self.fs = client("glue"), s3, fs
        self.query_id, self.output_location = query_id, output_location
        self.on_connection = on_connection or (lambda con: None)
        self.cancelled = cancelled or (lambda: None)
        self.reader_s3 = reader_s3 or s3
        self.files_opened = 0

    def check(self) -> None:
        """Stop between files when the query was cancelled (user or cutoff)."""
        reason = self.cancelled()
        if reason:
            raise QueryCancelled(reason)

    # -- entry point ---------------------------------------------------------
    def run(self) -> Result:
        tree = self.parse(self.sql)
        if isinstance(tree, exp.Create):
            kind = (tree.args.get("kind") or "").upper()
            if kind in ("DATABASE", "SCHEMA"):
                return self.create_database(tree)
            if kind == "VIEW":
                return self.create_view(tree)
            if tree.expression is not None:
                return self.ctas(tree)
            return self.create_table(tree)
        if isinstance(tree, exp.Drop):
            return self.drop(tree)
        if isinstance(tree, exp.Alter):
            return self.alter(tree)
        if isinstance(tree, exp.Describe):
            return self.describe(self.table_ref(tree.this))
        if isinstance(tree, exp.Insert):
            return self.insert(tree)
        if isinstance(tree, exp.Command):
            return self.command(tree)
        if isinstance(tree, exp.Query):
            return self.select(tree)
        raise QueryFailed("NOT_SUPPORTED", f"Statement {type(tree).__name__.upper()} is not supported locally")

    @staticmethod
    def parse(sql: str) -> exp.Expression:
        text = sql.strip().rstrip(";")
        if not text:
            raise QueryFailed("SYNTAX_ERROR", "mismatched input '<EOF>'. Expecting: a statement", line=1, column=1)
        try:
            trees = sqlglot.parse(text, read="athena")
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
        try:
            raw = self.glue.get_table(DatabaseName=db, Name=name)["Table"]
        except self.glue.exceptions.EntityNotFoundException:
            line, col = position_of(self.sql, node_sql or name)
            if not self.database_exists(db):
                raise QueryFailed("SCHEMA_NOT_FOUND", f"Schema '{db}' does not exist", line=line, column=col) from None
            raise QueryFailed("TABLE_NOT_FOUND", f"Table 'awsdatacatalog.{db}.{name}' does not exist",
                              line=line, column=col) from None
        table = catalog.glue_table(raw, db)
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
        return table

    def database_exists(self, db: str) -> bool:
        try:
            self.glue.get_database(Name=db)
            return True
        except self.glue.exceptions.EntityNotFoundException:
            return False

    def require_database(self, db: str) -> None:
        if not self.database_exists(db):
            raise QueryFailed("SCHEMA_NOT_FOUND", f"Schema '{db}' does not exist", error_type=DDL_FAILED)

    # -- queries -------------------------------------------------------------
    def connect(self):
        import duckdb
        con = duckdb.connect(config={"autoinstall_known_extensions": False,
                                     "autoload_known_extensions": False, "threads": 2})
        # Trino functions sqlglot leaves as they are and DuckDB lacks (made only when used).
        for name, body in TRINO_MACROS.items():
            if name in self.sql.lower():
                con.execute(f"CREATE MACRO {name}(u) AS {body}")
        self.on_connection(con)
        return con

    def expand(self, tree: exp.Expression, con, depth: int = 0) -> exp.Expression:
        """Replace each catalog table (and view) of ``tree`` by a DuckDB view over its files."""
        if depth > 10:
            raise QueryFailed("VIEW_IS_RECURSIVE", "View is recursive")
        cte_names = {c.alias_or_name.lower() for c in tree.find_all(exp.CTE)}
        for node in list(tree.find_all(exp.Table)):
            if not node.name or (not node.db and node.name.lower() in cte_names):
                continue
            if isinstance(node.parent, (exp.Create, exp.Insert)) and node.parent.this is node:
                continue
            db, name = self.table_ref(node)
            alias = node.alias or name
            if node.catalog and node.catalog.lower() != "awsdatacatalog":
                # A federated catalog (CreateDataCatalog Type=LAMBDA): a connector reads it.
                from . import federated
                source = federated.source(self, node.catalog, db, name, node=node)
                view = f"__f{abs(hash((node.catalog, db, name, id(node)))) % 10**8}"
                source.register(con, view)
                node.replace(exp.Table(this=exp.to_identifier(view),
                                       alias=exp.TableAlias(this=exp.to_identifier(alias))))
                continue
            table = self.load_table(db, name, node_sql=node.name)
            if table.view_sql is not None:
                sub = self.expand(self.parse(table.view_sql), con, depth + 1)
                node.replace(exp.Subquery(this=sub, alias=exp.TableAlias(this=exp.to_identifier(alias))))
                continue
            partitions = self.prune(table, node, con) if table.partition_keys else None
            source = Source(table, partitions, self.fs, self.s3, check=self.check,
                            reader_s3=self.reader_s3)
            self.files_opened += source.files_opened
            view = f"__t{abs(hash((db, name, id(node)))) % 10**8}"
            source.register(con, view)
            node.replace(exp.Table(this=exp.to_identifier(view),
                                   alias=exp.TableAlias(this=exp.to_identifier(alias))))
        return tree

    def prune(self, table: Table, node: exp.Table, con) -> list[Partition]:
        """Keep the partitions that the WHERE conditions on partition columns can match.

        This is what makes partitioning pay on Athena: a query filtering on
        ``month = 1`` never lists nor reads the other months' files.
        """
        partitions = table.partitions
        select = node.find_ancestor(exp.Select)
        where = select.args.get("where") if select is not None else None
        if not partitions or where is None:
            return partitions
        keys = {c for c, _ in table.partition_keys}
        alias = (node.alias or table.name).lower()
        conjuncts = list(where.this.flatten()) if isinstance(where.this, exp.And) else [where.this]
        usable = []
        for cond in conjuncts:
            columns = list(cond.find_all(exp.Column))
            if columns and all(c.name.lower() in keys and (not c.table or c.table.lower() == alias)
                               for c in columns) and not cond.find(exp.Subquery):
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

    def execute_query(self, tree: exp.Expression):
        """Run a query tree; returns (DuckDB column names, types, arrow table)."""
        con = self.connect()
        try:
            tree = self.expand(tree, con)
            sql = tree.sql(dialect="duckdb")
            try:
                rel = con.sql(sql)
                names, types = list(rel.columns), [str(t) for t in rel.types]
                table = rel.to_arrow_table()
            except QueryCancelled:
                raise
            except Exception as exc:
                raise engine_error(exc, self.sql) from None
            return names, types, table
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
        names, types, table = self.execute_query(self.name_columns(tree))
        columns = [table.column(i).to_pylist() for i in range(table.num_columns)]
        rows = [[render(v) for v in r] for r in zip(*columns)]
        return Result("DML", list(zip(names, [athena_type(t) for t in types])), rows,
                      files_opened=self.files_opened, substatement="SELECT")

    # -- CTAS, INSERT INTO, UNLOAD -----------------------------------------------
    def ctas(self, tree: exp.Create) -> Result:
        db, name = self.table_ref(tree.this if isinstance(tree.this, exp.Table) else tree.this.this)
        self.require_database(db)
        exists = tree.args.get("exists")
        try:
            self.glue.get_table(DatabaseName=db, Name=name)
            if exists:
                return Result("DDL", substatement="CREATE_TABLE_AS_SELECT")
            raise QueryFailed("TABLE_ALREADY_EXISTS", f"Table 'awsdatacatalog.{db}.{name}' already exists",
                              error_type=DDL_FAILED)
        except self.glue.exceptions.EntityNotFoundException:
            pass
        props = writer.with_properties(tree)
        location = props.get("external_location") or f"{self.output_location.rstrip('/')}/tables/{self.query_id}/"
        location = location if location.endswith("/") else location + "/"
        writer.require_empty(self.s3, location, f"{db}.{name}")
        names, types, table = self.execute_query(self.name_columns(tree.expression))
        spec = writer.OutputSpec.from_properties(props)
        written, partitions = writer.write(self.s3, table, names, location, spec, self.query_id)
        try:
            columns = [(n, writer.hive_type(t)) for n, t in zip(names, types) if n not in spec.partitioned_by]
            keys = [(n, writer.hive_type(types[names.index(n)])) for n in spec.partitioned_by]
            serde, params = spec.serde()
            self.glue.create_table(DatabaseName=db, TableInput=catalog.table_input(
                name, columns, keys, location, serde, params, spec.table_params()))
            if partitions:
                self.add_partitions(db, name, partitions)
        except Exception:
            writer.delete(self.s3, written)        # no half-made table: remove the files
            try:
                self.glue.delete_table(DatabaseName=db, Name=name)
            except Exception:
                pass
            raise
        return Result("DML", [("rows", "bigint")], [[str(table.num_rows)]], written=written,
                      files_opened=self.files_opened, substatement="CREATE_TABLE_AS_SELECT")

    def insert(self, tree: exp.Insert) -> Result:
        target = tree.this if isinstance(tree.this, exp.Table) else tree.this.this
        db, name = self.table_ref(target)
        table = self.load_table(db, name)
        names, types, result = self.execute_query(tree.expression)
        expected = len(table.columns) + len(table.partition_keys)
        if len(names) != expected:
            raise QueryFailed("TYPE_MISMATCH", f"Insert query has {len(names)} columns, target table "
                              f"'awsdatacatalog.{db}.{name}' has {expected}")
        result = result.rename_columns([c for c, _ in table.columns] + [c for c, _ in table.partition_keys])
        spec = writer.OutputSpec.for_table(table)
        existing = {tuple(p.values[c] for c, _ in table.partition_keys) for p in table.partitions}
        written, partitions = writer.write(self.s3, result, result.column_names, table.location, spec,
                                           self.query_id)
        new = [p for p in partitions if tuple(p.values[c] for c, _ in table.partition_keys) not in existing]
        if new:
            self.add_partitions(db, name, new)
        return Result("DML", [("rows", "bigint")], [[str(result.num_rows)]], written=written,
                      files_opened=self.files_opened, substatement="INSERT")

    def unload(self, text: str) -> Result:
        m = re.match(r"(?is)^UNLOAD\s*\((.*)\)\s*TO\s*'([^']+)'\s*(?:WITH\s*\((.*)\))?\s*$", text)
        if not m:
            raise QueryFailed("SYNTAX_ERROR", "UNLOAD needs: UNLOAD (SELECT ...) TO 's3://...' WITH (format = ...)")
        query, location, props_text = m.groups()
        props = writer.with_properties(self.parse(f"CREATE TABLE x WITH ({props_text}) AS SELECT 1")) if props_text else {}
        location = location if location.endswith("/") else location + "/"
        writer.require_empty(self.s3, location, location)
        names, types, table = self.execute_query(self.parse(query))
        spec = writer.OutputSpec.from_properties(props, default_format="textfile")
        written, _ = writer.write(self.s3, table, names, location, spec, self.query_id)
        return Result("DML", written=written, files_opened=self.files_opened, substatement="UNLOAD")

    def add_partitions(self, db: str, name: str, partitions: list[Partition]) -> None:
        table = self.glue.get_table(DatabaseName=db, Name=name)["Table"]
        sd = table["StorageDescriptor"]
        keys = [k["Name"] for k in table.get("PartitionKeys", [])]
        inputs = [{"Values": [p.values[k] for k in keys],
                   "StorageDescriptor": {**sd, "Location": p.location}} for p in partitions]
        for i in range(0, len(inputs), 100):
            self.glue.batch_create_partition(DatabaseName=db, TableName=name,
                                             PartitionInputList=inputs[i:i + 100])

    # -- DDL -------------------------------------------------------------------
    def create_database(self, tree: exp.Create) -> Result:
        name = tree.this.name.lower()
        try:
            self.glue.create_database(DatabaseInput={"Name": name})
        except self.glue.exceptions.AlreadyExistsException:
            if not tree.args.get("exists"):
                raise QueryFailed("SCHEMA_ALREADY_EXISTS", f"Database {name} already exists",
                                  error_type=DDL_FAILED) from None
        return Result("DDL", substatement="CREATE_DATABASE")

    def create_table(self, tree: exp.Create) -> Result:
        from . import ddl
        db, name, table_input = ddl.external_table(tree, self.database)
        self.require_database(db)
        if not table_input["StorageDescriptor"]["Location"]:
            raise QueryFailed("SYNTAX_ERROR", "External tables need a LOCATION 's3://...'", error_type=DDL_FAILED)
        bucket, _ = split_s3(table_input["StorageDescriptor"]["Location"])
        try:
            self.s3.head_bucket(Bucket=bucket)
        except Exception:
            raise QueryFailed("HIVE_FILESYSTEM_ERROR", f"The S3 location s3://{bucket}/ does not exist "
                              "(NoSuchBucket)", error_type=DDL_FAILED) from None
        try:
            self.glue.create_table(DatabaseName=db, TableInput=table_input)
        except self.glue.exceptions.AlreadyExistsException:
            if not tree.args.get("exists"):
                raise QueryFailed("TABLE_ALREADY_EXISTS", f"Table {db}.{name} already exists",
                                  error_type=DDL_FAILED) from None
        return Result("DDL", substatement="CREATE_TABLE")

    def create_view(self, tree: exp.Create) -> Result:
        db, name = self.table_ref(tree.this)
        self.require_database(db)
        query_sql = tree.expression.sql(dialect="athena")
        query = self.parse(query_sql)
        if isinstance(query, exp.Select):
            query = query.limit(0)      # only the columns and their types are needed
        names, types, _ = self.execute_query(query)
        view = {"Name": name, "TableType": "VIRTUAL_VIEW",
                "Parameters": {"presto_view": "true", "comment": "Presto View"},
                "ViewOriginalText": catalog.encode_view(query_sql, db, zip(names, map(athena_type, types))),
                "ViewExpandedText": "/* Presto View */",
                "StorageDescriptor": {"Columns": [{"Name": n, "Type": writer.hive_type(t)}
                                                  for n, t in zip(names, types)],
                                      "SerdeInfo": {}, "Location": ""}}
        try:
            self.glue.create_table(DatabaseName=db, TableInput=view)
        except self.glue.exceptions.AlreadyExistsException:
            if not tree.args.get("replace"):
                raise QueryFailed("TABLE_ALREADY_EXISTS", f"View '{db}.{name}' already exists") from None
            self.glue.update_table(DatabaseName=db, TableInput=view)
        return Result("DDL", substatement="CREATE_VIEW")

    def drop(self, tree: exp.Drop) -> Result:
        kind = (tree.args.get("kind") or "").upper()
        node = tree.this or (tree.args.get("tables") or [None])[0]
        if kind in ("DATABASE", "SCHEMA"):
            name = node.name.lower()
            try:
                tables = self.glue.get_tables(DatabaseName=name)["TableList"]
                if tables and not tree.args.get("cascade"):
                    raise QueryFailed("SCHEMA_NOT_EMPTY", f"Database {name} is not empty. "
                                      "One or more tables exist.", error_type=DDL_FAILED)
                self.glue.delete_database(Name=name)
            except self.glue.exceptions.EntityNotFoundException:
                if not tree.args.get("exists"):
                    raise QueryFailed("SCHEMA_NOT_FOUND", f"Database does not exist: {name}",
                                      error_type=DDL_FAILED) from None
            return Result("DDL", substatement="DROP_DATABASE")
        db, name = self.table_ref(node)
        try:
            self.glue.delete_table(DatabaseName=db, Name=name)   # external data stays in S3
        except self.glue.exceptions.EntityNotFoundException:
            if not tree.args.get("exists"):
                raise QueryFailed("TABLE_NOT_FOUND", f"Table {db}.{name} does not exist",
                                  error_type=DDL_FAILED) from None
        return Result("DDL", substatement="DROP_TABLE")

    def alter(self, tree: exp.Alter) -> Result:
        db, name = self.table_ref(tree.this)
        table = self.load_table(db, name)
        keys = [c for c, _ in table.partition_keys]
        for action in tree.args.get("actions", []):
            if isinstance(action, exp.AddPartition):
                values = self._partition_values(action.this, keys)
                loc = action.args.get("location")
                location = loc.this.this if isinstance(loc, exp.LocationProperty) else (
                    loc.name if loc is not None else catalog.partition_location(table, values))
                if any(p.values == values for p in table.partitions):
                    if not action.args.get("exists"):
                        raise QueryFailed("ALREADY_EXISTS", "Partition already exists", error_type=DDL_FAILED)
                    continue
                self.add_partitions(db, name, [Partition(values, location)])
            elif isinstance(action, exp.DropPartition):
                for part in action.expressions:
                    values = self._partition_values(part, keys)
                    self.glue.batch_delete_partition(DatabaseName=db, TableName=name, PartitionsToDelete=[
                        {"Values": [values[k] for k in keys]}])
            else:
                raise QueryFailed("NOT_SUPPORTED", f"ALTER TABLE {type(action).__name__} is not supported locally",
                                  error_type=DDL_FAILED)
        return Result("DDL", substatement="ALTER_TABLE")

    @staticmethod
    def _partition_values(node, keys) -> dict[str, str]:
        pairs = {}
        for eq in node.find_all(exp.EQ):
            pairs[eq.this.name.lower()] = eq.expression.name if isinstance(eq.expression, exp.Literal) \
                else eq.expression.sql()
        missing = [k for k in keys if k not in pairs]
        if missing:
            raise QueryFailed("SYNTAX_ERROR", f"Partition spec misses column(s) {', '.join(missing)}",
                              error_type=DDL_FAILED)
        return {k: pairs[k] for k in keys}

    def describe(self, ref) -> Result:
        table = self.load_table(*ref)
        rows = [[f"{c:<20}\t{t:<20}\t"] for c, t in table.columns + table.partition_keys]
        if table.partition_keys:
            rows += [[""], ["# Partition Information"], [f"{'# col_name':<20}\t{'data_type':<20}\t"], [""]]
            rows += [[f"{c:<20}\t{t:<20}\t"] for c, t in table.partition_keys]
        return Result("DDL", [("col_name", "varchar")], rows, substatement="DESCRIBE_TABLE")

    def command(self, tree: exp.Command) -> Result:
        head = tree.this.upper()
        rest = tree.expression.name if tree.expression is not None else ""
        if head == "UNLOAD":
            return self.unload(self.sql.strip().rstrip(";"))
        if head.startswith("MSCK"):
            m = re.match(r"(?i)TABLE\s+([\w.`\"]+)", rest.strip())
            if not m:
                raise QueryFailed("SYNTAX_ERROR", "MSCK REPAIR TABLE needs a table name")
            return self.msck(*self.table_ref(exp.to_table(m.group(1).replace("`", ""))))
        if head == "SHOW":
            return self.show(rest.strip())
        raise QueryFailed("NOT_SUPPORTED", f"{head} is not supported locally")

    def msck(self, db: str, name: str) -> Result:
        """Find ``key=value/`` folders under the table's LOCATION and add the missing partitions."""
        table = self.load_table(db, name)
        keys = [c for c, _ in table.partition_keys]
        base = table.location if table.location.endswith("/") else table.location + "/"
        known = {tuple(p.values[k] for k in keys) for p in table.partitions}
        found = {}
        for path in list_files(self.s3, base):
            rel = path.split("/", 1)[1][len(split_s3(base)[1]):]
            parts = rel.split("/")[:len(keys)]
            pairs = [p.split("=", 1) for p in parts if "=" in p]
            if len(pairs) == len(keys) and [k.lower() for k, _ in pairs] == keys:
                values = tuple(v for _, v in pairs)
                found[values] = base + "/".join(parts) + "/"
        new = [Partition(dict(zip(keys, v)), loc) for v, loc in sorted(found.items()) if v not in known]
        if new:
            self.add_partitions(db, name, new)
        lines = ["Partitions not in metastore:\t" + "\t".join(
            f"{name}:" + "/".join(f"{k}={v}" for k, v in p.values.items()) for p in new)] if new else []
        lines += [f"Repair: Added partition to metastore {name}:" +
                  "/".join(f"{k}={v}" for k, v in p.values.items()) for p in new]
        return Result("DDL", [("result", "varchar")], [[line] for line in lines], substatement="MSCK_REPAIR_TABLE")

    def show(self, rest: str) -> Result:
        words = rest.split()
        what = words[0].upper() if words else ""
        if what in ("DATABASES", "SCHEMAS"):
            names = sorted(d["Name"] for page in self.glue.get_paginator("get_databases").paginate()
                           for d in page["DatabaseList"])
            return Result("DDL", [("database_name", "varchar")], [[n] for n in names], substatement="SHOW_DATABASES")
        if what in ("TABLES", "VIEWS"):
            db = words[2].lower() if len(words) > 2 and words[1].upper() in ("IN", "FROM") else self.database
            self.require_database(db)
            pattern = re.search(r"'([^']*)'", rest)
            tables = [t for page in self.glue.get_paginator("get_tables").paginate(DatabaseName=db)
                      for t in page["TableList"]]
            if what == "VIEWS":
                tables = [t for t in tables if t.get("TableType") == "VIRTUAL_VIEW"]
            names = sorted(t["Name"] for t in tables)
            if pattern:
                regex = re.compile("^" + pattern.group(1).replace("*", ".*") + "$", re.I)
                names = [n for n in names if regex.match(n)]
            return Result("DDL", [("tab_name", "varchar")], [[n] for n in names], substatement="SHOW_TABLES")
        if what == "PARTITIONS" and len(words) > 1:
            table = self.load_table(*self.table_ref(exp.to_table(words[1])))
            lines = sorted("/".join(f"{k}={p.values[k]}" for k, _ in table.partition_keys) for p in table.partitions)
            return Result("DDL", [("partition", "varchar")], [[x] for x in lines], substatement="SHOW_PARTITIONS")
        if what == "COLUMNS" and len(words) > 2:
            table = self.load_table(*self.table_ref(exp.to_table(words[2])))
            return Result("DDL", [("field", "varchar")], [[c] for c, _ in table.columns + table.partition_keys],
                          substatement="SHOW_COLUMNS")
        raise QueryFailed("NOT_SUPPORTED", f"SHOW {rest} is not supported locally")
