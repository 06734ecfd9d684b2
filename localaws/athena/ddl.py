"""Athena's DDL: statements that read or change the Glue Data Catalog, never data.

Athena keeps no tables of its own (see ``catalog.py``): every DDL statement
is a call to the AWS Glue API.

- ``CREATE DATABASE`` / ``DROP DATABASE``: a Glue database.
- ``CREATE EXTERNAL TABLE``: a table definition over files that are already
  in S3 (columns, ``PARTITIONED BY``, the SerDe that parses the files,
  ``LOCATION``); ``DROP TABLE`` removes the definition and leaves the files.
- ``CREATE VIEW``: a stored query (a Glue ``VIRTUAL_VIEW``), expanded into
  every query that names it.
- ``ALTER TABLE ADD/DROP PARTITION`` and ``MSCK REPAIR TABLE``: partitions
  are catalog entries too; MSCK finds ``key=value/`` folders in S3 and adds
  the missing ones.
- ``DESCRIBE``, ``SHOW DATABASES | TABLES | VIEWS | PARTITIONS | COLUMNS``,
  ``SHOW CREATE TABLE | VIEW`` and the tables of ``information_schema``:
  the catalog read back, as the query's principal may see it under Lake
  Formation: only the databases and tables it may describe, only the columns
  it may select (``visible_table``).

sqlglot parses the statement (dialect ``athena``); ``CREATE EXTERNAL TABLE``
reads the parsed properties: columns and types, ``PARTITIONED BY``, ``ROW
FORMAT DELIMITED ... TERMINATED BY``, ``ROW FORMAT SERDE '...' WITH
SERDEPROPERTIES``, ``STORED AS``, ``LOCATION`` and ``TBLPROPERTIES``.

Each statement takes ``stmt``, the running ``engine.Statement`` (its Glue
client, its S3, catalog lookups and the query runner), and returns a
:class:`~localaws.athena.results.Result`.
"""
from __future__ import annotations

import copy
import re

from sqlglot import exp

from localaws.core.s3 import folder
from . import catalog, dialect
from .catalog import (SERDES, Partition, add_partitions, decode_view, encode_view, hive_type, partition_location,
                      table_input)
from .errors import QueryFailed, DDL_FAILED, lake_access_denied
from .results import Result, athena_type
from .sources import list_files, s3_location

STORED_AS = {"PARQUET": "parquet", "ORC": "orc", "AVRO": "avro", "TEXTFILE": "textfile",
             "JSON": "json", "JSONFILE": "json"}


def column_type(kind: exp.DataType) -> str:
    """A Hive type string as Glue stores it: ``array<string>``, ``decimal(10,2)``."""
    return kind.sql(dialect="hive").lower().replace(", ", ",")


def _literal(node) -> str:
    return node.name if isinstance(node, exp.Literal) else node.sql()


def external_table(tree: exp.Create, default_db: str) -> tuple[str, str, dict]:
    """(database, table name, Glue ``TableInput``) of a parsed CREATE EXTERNAL TABLE."""
    schema = tree.this
    if not isinstance(schema, exp.Schema):
        raise QueryFailed("SYNTAX_ERROR", "CREATE EXTERNAL TABLE needs a column list", error_type=DDL_FAILED)
    table = schema.this
    db, name = (table.db or default_db).lower(), table.name.lower()
    props = tree.args.get("properties")
    props = props.expressions if props is not None else []
    if _declares_iceberg(props):
        raise QueryFailed("NOT_SUPPORTED", "External keyword not supported for table type ICEBERG",
                          error_type=DDL_FAILED)
    if not any(isinstance(p, exp.ExternalProperty) for p in props):
        raise QueryFailed("NOT_SUPPORTED", "Only external tables are supported: use CREATE EXTERNAL TABLE "
                          "(or CREATE TABLE ... AS SELECT)", error_type=DDL_FAILED)
    columns = [(c.name.lower(), column_type(c.args["kind"])) for c in schema.expressions
               if isinstance(c, exp.ColumnDef)]
    keys, location, params = [], "", {}
    serde, serde_params, stored, io_formats = None, {}, None, None
    for p in props:
        if isinstance(p, exp.PartitionedByProperty):
            keys = [(c.name.lower(), column_type(c.args["kind"])) for c in p.this.expressions]
        elif isinstance(p, exp.LocationProperty):
            location = _literal(p.this)
        elif isinstance(p, exp.FileFormatProperty) and isinstance(p.this, exp.InputOutputFormat):
            # STORED AS INPUTFORMAT '...' OUTPUTFORMAT '...': kept as written
            io_formats = (_literal(p.this.args["input_format"]), _literal(p.this.args["output_format"]))
        elif isinstance(p, exp.FileFormatProperty):
            fmt = p.this.name.upper() if p.this is not None else ""
            if fmt not in STORED_AS:
                raise QueryFailed("NOT_SUPPORTED", f"STORED AS {fmt} is not supported "
                                  f"(use one of {', '.join(STORED_AS)})", error_type=DDL_FAILED)
            stored = STORED_AS[fmt]
        elif isinstance(p, exp.RowFormatSerdeProperty):
            serde = _literal(p.this)
            sp = p.args.get("serde_properties")
            if sp is not None:
                serde_params = {_literal(x.this): _literal(x.args["value"]) for x in sp.expressions}
        elif isinstance(p, exp.RowFormatDelimitedProperty):
            serde = SERDES["textfile"][0]
            names = {"fields": "field.delim", "collection_items": "collection.delim",
                     "map_keys": "mapkey.delim", "lines": "line.delim", "escaped": "escape.delim"}
            for arg, key in names.items():
                if p.args.get(arg) is not None:
                    serde_params[key] = _literal(p.args[arg])
            if "field.delim" in serde_params:
                serde_params["serialization.format"] = serde_params["field.delim"]
        elif type(p) is exp.Property:
            params[_literal(p.this)] = _literal(p.args["value"])
    if serde is None:
        serde = SERDES[stored or "textfile"][0]
    input_format = output_format = ""
    if stored and stored in SERDES:
        _, input_format, output_format = SERDES[stored]
    if io_formats:
        input_format, output_format = io_formats
    known = {c for c, _ in columns}
    clash = [k for k, _ in keys if k in known]
    if clash:
        raise QueryFailed("HIVE_INVALID_METADATA", f"Partition column {clash[0]} is also a data column",
                          error_type=DDL_FAILED)
    return db, name, table_input(name, columns, keys, location, serde, serde_params, params,
                                 input_format, output_format)


# --------------------------------------------------------------------------
# Databases, tables, views
# --------------------------------------------------------------------------
def _declares_iceberg(props) -> bool:
    """Whether the TBLPROPERTIES among ``props`` say ``'table_type'='ICEBERG'``."""
    return any(type(p) is exp.Property and p.this.name.lower() == "table_type"
               and p.args["value"].name.upper() == "ICEBERG" for p in props)


def is_iceberg_create(tree: exp.Create) -> bool:
    """``CREATE TABLE`` (no EXTERNAL) ``... TBLPROPERTIES ('table_type'='ICEBERG')``: an Iceberg table."""
    props = tree.args.get("properties")
    props = props.expressions if props is not None else []
    return not any(isinstance(p, exp.ExternalProperty) for p in props) and _declares_iceberg(props)


def create_database(stmt, tree: exp.Create) -> Result:
    name = tree.this.name.lower()
    try:
        stmt.glue.create_database(DatabaseInput={"Name": name})
    except stmt.glue.exceptions.AlreadyExistsException:
        if not tree.args.get("exists"):
            raise QueryFailed("SCHEMA_ALREADY_EXISTS", f"Database {name} already exists",
                              error_type=DDL_FAILED) from None
    return Result("DDL", substatement="CREATE_DATABASE")


def create_table(stmt, tree: exp.Create) -> Result:
    db, name, table = external_table(tree, stmt.database)
    stmt.require_database(db)
    stmt.require_on_database(db, "CREATE_TABLE")
    location = table["StorageDescriptor"]["Location"]
    if not location:
        raise QueryFailed("SYNTAX_ERROR", "External tables need a LOCATION 's3://...'", error_type=DDL_FAILED)
    bucket, _ = s3_location(location)
    if not _bucket_exists(stmt.s3, bucket):
        raise QueryFailed("HIVE_FILESYSTEM_ERROR", f"The S3 location s3://{bucket}/ does not exist "
                          "(NoSuchBucket)", error_type=DDL_FAILED)
    try:
        stmt.glue.create_table(DatabaseName=db, TableInput=table)
    except stmt.glue.exceptions.AlreadyExistsException:
        if not tree.args.get("exists"):
            raise QueryFailed("TABLE_ALREADY_EXISTS", f"Table {db}.{name} already exists",
                              error_type=DDL_FAILED) from None
    return Result("DDL", substatement="CREATE_TABLE")


def _bucket_exists(s3, bucket: str) -> bool:
    try:
        return s3.bucket_exists(bucket)
    except Exception:          # a name S3 refuses (botocore checks it before sending)
        return False


def create_view(stmt, tree: exp.Create) -> Result:
    """Run the view's query with no rows (only its columns and types are needed) and store it."""
    db, name = stmt.table_ref(tree.this)
    stmt.require_database(db)
    stmt.require_on_database(db, "CREATE_TABLE")
    query_sql = tree.expression.sql(dialect="athena")
    query = stmt.parse(query_sql)
    if isinstance(query, exp.Select):
        query = query.limit(0)
    names, types, _ = stmt.execute_query(query)
    view = {"Name": name, "TableType": "VIRTUAL_VIEW",
            "Parameters": {"presto_view": "true", "comment": "Presto View"},
            "ViewOriginalText": encode_view(query_sql, db, zip(names, map(athena_type, types))),
            "ViewExpandedText": "/* Presto View */",
            "StorageDescriptor": {"Columns": [{"Name": n, "Type": hive_type(t)} for n, t in zip(names, types)],
                                  "SerdeInfo": {}, "Location": ""}}
    try:
        stmt.glue.create_table(DatabaseName=db, TableInput=view)
    except stmt.glue.exceptions.AlreadyExistsException:
        if not tree.args.get("replace"):
            raise QueryFailed("TABLE_ALREADY_EXISTS", f"View '{db}.{name}' already exists") from None
        stmt.glue.update_table(DatabaseName=db, TableInput=view)
    return Result("DDL", substatement="CREATE_VIEW")


def drop(stmt, tree: exp.Drop) -> Result:
    glue = stmt.glue
    kind = (tree.args.get("kind") or "").upper()
    node = tree.this or (tree.args.get("tables") or [None])[0]
    if kind in ("DATABASE", "SCHEMA"):
        name = node.name.lower()
        if stmt.lake is not None and stmt.database_exists(name):
            stmt.require_on_database(name, "DROP")
        try:
            tables = glue.get_tables(DatabaseName=name)["TableList"]
            if tables and not tree.args.get("cascade"):
                raise QueryFailed("SCHEMA_NOT_EMPTY", f"Database {name} is not empty. "
                                  "One or more tables exist.", error_type=DDL_FAILED)
            glue.delete_database(Name=name)
        except glue.exceptions.EntityNotFoundException:
            if not tree.args.get("exists"):
                raise QueryFailed("SCHEMA_NOT_FOUND", f"Database does not exist: {name}",
                                  error_type=DDL_FAILED) from None
        return Result("DDL", substatement="DROP_DATABASE")
    db, name = stmt.table_ref(node)
    if stmt.lake is not None:       # a governed table needs DROP; one it cannot see is not there
        try:
            stmt.load_table(db, name)
        except QueryFailed:
            if tree.args.get("exists"):
                return Result("DDL", substatement="DROP_TABLE")
            raise QueryFailed("TABLE_NOT_FOUND", f"Table {db}.{name} does not exist",
                              error_type=DDL_FAILED) from None
        stmt.require(db, name, "DROP")
    try:
        glue.delete_table(DatabaseName=db, Name=name)   # external data stays in S3
    except glue.exceptions.EntityNotFoundException:
        if not tree.args.get("exists"):
            raise QueryFailed("TABLE_NOT_FOUND", f"Table {db}.{name} does not exist",
                              error_type=DDL_FAILED) from None
    return Result("DDL", substatement="DROP_TABLE")


# --------------------------------------------------------------------------
# Partitions
# --------------------------------------------------------------------------
def alter(stmt, tree: exp.Alter) -> Result:
    """ALTER TABLE ... ADD [IF NOT EXISTS] PARTITION (...) [LOCATION '...'] | DROP PARTITION (...)."""
    db, name = stmt.table_ref(tree.this)
    table = stmt.load_table(db, name)
    stmt.require(db, name, "ALTER")
    keys = [c for c, _ in table.partition_keys]
    for action in tree.args.get("actions", []):
        if isinstance(action, exp.AddPartition):
            values = _partition_values(action.this, keys)
            loc = action.args.get("location")
            location = loc.this.this if isinstance(loc, exp.LocationProperty) else (
                loc.name if loc is not None else partition_location(table, values))
            if any(p.values == values for p in table.partitions):
                if not action.args.get("exists"):
                    raise QueryFailed("ALREADY_EXISTS", "Partition already exists", error_type=DDL_FAILED)
                continue
            add_partitions(stmt.glue, db, name, [Partition(values, location)])
        elif isinstance(action, exp.DropPartition):
            for part in action.expressions:
                values = _partition_values(part, keys)
                stmt.glue.batch_delete_partition(DatabaseName=db, TableName=name, PartitionsToDelete=[
                    {"Values": [values[k] for k in keys]}])
        else:
            raise QueryFailed("NOT_SUPPORTED", f"ALTER TABLE {type(action).__name__} is not supported locally",
                              error_type=DDL_FAILED)
    return Result("DDL", substatement="ALTER_TABLE")


def _partition_values(node, keys) -> dict[str, str]:
    """``(month = 1, day = '02')`` -> ``{"month": "1", "day": "02"}``, every key required."""
    pairs = {}
    for eq in node.find_all(exp.EQ):
        pairs[eq.this.name.lower()] = eq.expression.name if isinstance(eq.expression, exp.Literal) \
            else eq.expression.sql()
    missing = [k for k in keys if k not in pairs]
    if missing:
        raise QueryFailed("SYNTAX_ERROR", f"Partition spec misses column(s) {', '.join(missing)}",
                          error_type=DDL_FAILED)
    return {k: pairs[k] for k in keys}


def msck(stmt, db: str, name: str) -> Result:
    """MSCK REPAIR TABLE: find ``key=value/`` folders under the table's LOCATION
    and add the partitions the catalog does not have yet."""
    table = stmt.load_table(db, name)
    stmt.require(db, name, "ALTER")
    keys = [c for c, _ in table.partition_keys]
    base = folder(table.location)
    prefix = s3_location(base)[1]
    known = {tuple(p.values[k] for k in keys) for p in table.partitions}
    found = {}
    for path in list_files(stmt.s3, base):
        parts = path.split("/", 1)[1][len(prefix):].split("/")[:len(keys)]
        pairs = [p.split("=", 1) for p in parts if "=" in p]
        if len(pairs) == len(keys) and [k.lower() for k, _ in pairs] == keys:
            found[tuple(v for _, v in pairs)] = base + "/".join(parts) + "/"
    new = [Partition(dict(zip(keys, v)), loc) for v, loc in sorted(found.items()) if v not in known]
    if new:
        add_partitions(stmt.glue, db, name, new)
    lines = ["Partitions not in metastore:\t" + "\t".join(
        f"{name}:" + "/".join(f"{k}={v}" for k, v in p.values.items()) for p in new)] if new else []
    lines += [f"Repair: Added partition to metastore {name}:" +
              "/".join(f"{k}={v}" for k, v in p.values.items()) for p in new]
    return Result("DDL", [("result", "varchar")], [[line] for line in lines], substatement="MSCK_REPAIR_TABLE")


# --------------------------------------------------------------------------
# Reading the catalog back
# --------------------------------------------------------------------------
def visible_table(stmt, db: str, raw: dict) -> dict:
    """The Glue table ``raw`` as the statement's principal may see it under Lake Formation:
    only the columns it may select, and without the ``spark.sql.sources.schema*``
    properties (which spell out every column) unless it may select them all, as
    Glue's GetTable answers it:
    https://docs.aws.amazon.com/lake-formation/latest/dg/limitations.html"""
    if stmt.lake is None:
        return raw
    table = catalog.glue_table(raw)
    access = stmt.table_access(db, table.name.lower(), table)
    if access is None or access.columns is None:
        return raw
    shown = {c.lower() for c in access.columns}
    raw = copy.deepcopy(raw)
    sd = raw.setdefault("StorageDescriptor", {})
    sd["Columns"] = [c for c in sd.get("Columns", []) if c["Name"].lower() in shown]
    raw["PartitionKeys"] = [c for c in raw.get("PartitionKeys", []) if c["Name"].lower() in shown]
    raw["Parameters"] = {k: v for k, v in (raw.get("Parameters") or {}).items()
                         if not k.startswith("spark.sql.sources.schema")}
    return raw


def describe(stmt, db: str, name: str) -> Result:
    table = stmt.load_table(db, name)
    columns, keys = stmt.visible_columns(db, table)
    rows = [[f"{c:<20}\t{t:<20}\t"] for c, t in columns + keys]
    if keys:
        rows += [[""], ["# Partition Information"], [f"{'# col_name':<20}\t{'data_type':<20}\t"], [""]]
        rows += [[f"{c:<20}\t{t:<20}\t"] for c, t in keys]
    return Result("DDL", [("col_name", "varchar")], rows, substatement="DESCRIBE_TABLE")


def show(stmt, rest: str) -> Result:
    """SHOW DATABASES | TABLES [IN db] ['pattern'] | VIEWS | PARTITIONS t | COLUMNS IN t
    | CREATE TABLE t | CREATE VIEW v."""
    glue = stmt.glue
    words = rest.split()
    what = words[0].upper() if words else ""
    if what in ("DATABASES", "SCHEMAS"):
        names = sorted(d["Name"] for page in glue.get_paginator("get_databases").paginate()
                       for d in page["DatabaseList"])
        if stmt.lake is not None:
            names = [n for n in names if stmt.lake.database_visible(stmt.principal, n)]
        return Result("DDL", [("database_name", "varchar")], [[n] for n in names], substatement="SHOW_DATABASES")
    if what in ("TABLES", "VIEWS"):
        db = words[2].lower() if len(words) > 2 and words[1].upper() in ("IN", "FROM") else stmt.database
        stmt.require_database(db)
        pattern = re.search(r"'([^']*)'", rest)
        tables = [t for page in glue.get_paginator("get_tables").paginate(DatabaseName=db)
                  for t in page["TableList"]]
        if what == "VIEWS":
            tables = [t for t in tables if t.get("TableType") == "VIRTUAL_VIEW"]
        tables = [t for t in tables if stmt.may_describe(db, t)]
        names = sorted(t["Name"] for t in tables)
        if pattern:
            regex = re.compile("^" + pattern.group(1).replace("*", ".*") + "$", re.I)
            names = [n for n in names if regex.match(n)]
        return Result("DDL", [("tab_name", "varchar")], [[n] for n in names], substatement="SHOW_TABLES")
    if what == "PARTITIONS" and len(words) > 1:
        ref = stmt.table_ref(exp.to_table(words[1]))
        table = stmt.load_table(*ref)
        if stmt.table_access(*ref, table) is not None:
            return governed_partitions(stmt, *ref, table)
        lines = sorted("/".join(f"{k}={p.values[k]}" for k, _ in table.partition_keys) for p in table.partitions)
        return Result("DDL", [("partition", "varchar")], [[x] for x in lines], substatement="SHOW_PARTITIONS")
    if what == "COLUMNS" and len(words) > 2:
        return show_columns(stmt, words[2:])
    if what == "CREATE" and len(words) > 2 and words[1].upper() in ("TABLE", "VIEW"):
        db, name = stmt.table_ref(exp.to_table(words[2].replace("`", "")))
        if words[1].upper() == "VIEW":
            return show_create_view(stmt, db, name)
        return show_create_table(stmt, db, name)
    raise QueryFailed("NOT_SUPPORTED", f"SHOW {rest} is not supported locally")


def governed_partitions(stmt, db: str, name: str, table) -> Result:
    """SHOW PARTITIONS of a table Lake Formation restricts for the caller: the values of its
    visible partition columns in the rows it may read (nothing of the rows it may not)."""
    access = stmt.table_access(db, name, table)
    if not access.select:
        raise lake_access_denied(name)
    keys = [k for k, _ in stmt.visible_columns(db, table)[1]]
    if not keys:
        return Result("DDL", [("partition", "varchar")], [], substatement="SHOW_PARTITIONS")
    listed = ", ".join(f'"{k}"' for k in keys)
    _, _, rows = stmt.execute_query(stmt.parse(f'SELECT DISTINCT {listed} FROM "{db}"."{name}"'))
    values = zip(*(rows.column(i).to_pylist() for i in range(len(keys))))
    lines = sorted("/".join(f"{k}={v}" for k, v in zip(keys, row)) for row in values)
    return Result("DDL", [("partition", "varchar")], [[x] for x in lines], substatement="SHOW_PARTITIONS")


def show_columns(stmt, words: list[str]) -> Result:
    """SHOW COLUMNS {FROM|IN} [db.]table [{FROM|IN} db]: the column names (partition
    columns last), padded to 20 characters as Hive prints them."""
    ref = exp.to_table(words[0].replace("`", ""))
    if len(words) > 2 and words[1].upper() in ("FROM", "IN"):
        ref.set("db", exp.to_identifier(words[2].replace("`", "")))
    db, name = stmt.table_ref(ref)
    columns, keys = stmt.visible_columns(db, stmt.load_table(db, name))
    return Result("DDL", [("field", "varchar")], [[f"{c:<20}"] for c, _ in columns + keys],
                  substatement="SHOW_COLUMNS")


def glue_table(stmt, db: str, name: str) -> dict:
    """The Glue table ``db.name`` as GetTable returns it (TABLE_NOT_FOUND as Athena says it)."""
    stmt.load_table(db, name)          # fails as a query would: schema or table not found
    return visible_table(stmt, db, stmt.glue.get_table(DatabaseName=db, Name=name)["Table"])


def show_create_table(stmt, db: str, name: str) -> Result:
    """SHOW CREATE TABLE: the DDL of a table as Athena (Hive) prints it back, one
    row per line: backquoted columns, ``ROW FORMAT DELIMITED`` when the SerDe
    has delimiters (else ``ROW FORMAT SERDE`` and its properties), the
    input/output formats, ``LOCATION`` and the sorted ``TBLPROPERTIES``."""
    raw = glue_table(stmt, db, name)
    if raw.get("TableType") == "VIRTUAL_VIEW":
        raise QueryFailed("NOT_SUPPORTED", f"Relation 'awsdatacatalog.{db}.{name}' is a view, not a table")
    sd = raw.get("StorageDescriptor", {})
    serde = sd.get("SerdeInfo", {})

    def columns(cols):
        return ", \n".join(f"  `{c['Name']}` {c['Type']}" + (f" COMMENT '{c['Comment']}'" if c.get("Comment") else "")
                           for c in cols)

    text = f"CREATE EXTERNAL TABLE `{name}`(\n{columns(sd.get('Columns', []))})\n"
    if raw.get("PartitionKeys"):
        text += f"PARTITIONED BY ( \n{columns(raw['PartitionKeys'])})\n"
    text += row_format(serde.get("SerializationLibrary", ""), dict(serde.get("Parameters") or {}))
    text += (f"STORED AS INPUTFORMAT \n  '{sd.get('InputFormat', '')}' \n"
             f"OUTPUTFORMAT \n  '{sd.get('OutputFormat', '')}'\n"
             f"LOCATION\n  '{sd.get('Location', '')}'\n")
    params = sorted((k, v) for k, v in (raw.get("Parameters") or {}).items() if k not in ("EXTERNAL", "comment"))
    text += "TBLPROPERTIES (\n" + ", \n".join(f"  '{k}'='{java_escape(v)}'" for k, v in params) + ")"
    return Result("DDL", [("createtab_stmt", "varchar")], [[line] for line in text.split("\n")],
                  substatement="SHOW_CREATE_TABLE")


DELIMITERS = [("field.delim", "FIELDS TERMINATED BY"), ("collection.delim", "COLLECTION ITEMS TERMINATED BY"),
              ("mapkey.delim", "MAP KEYS TERMINATED BY"), ("line.delim", "LINES TERMINATED BY"),
              ("serialization.null.format", "NULL DEFINED AS")]


def row_format(library: str, params: dict) -> str:
    """Hive's ROW FORMAT clause: DELIMITED when the SerDe has delimiters, else SERDE;
    other SerDe properties (but ``serialization.format``) as SERDEPROPERTIES."""
    delimiters = [(clause, params.pop(key)) for key, clause in DELIMITERS if key in params]
    params.pop("serialization.format", None)
    if delimiters:
        text = "ROW FORMAT DELIMITED \n" + "".join(f"  {c} '{java_escape(v)}' \n" for c, v in delimiters)
    else:
        text = f"ROW FORMAT SERDE \n  '{library}' \n"
    if params:
        text += ("WITH SERDEPROPERTIES ( \n" + ", \n".join(f"  '{k}'='{java_escape(v)}'" for k, v in params.items())
                 + ") \n")
    return text


def java_escape(text: str) -> str:
    """A value as Java's StringEscapeUtils.escapeJava writes it (``\\t``, ``\\u0001``)."""
    named = {"\t": "\\t", "\n": "\\n", "\r": "\\r", "\b": "\\b", "\f": "\\f", "\\": "\\\\", '"': '\\"'}
    return "".join(named.get(ch) or (f"\\u{ord(ch):04x}" if ord(ch) < 32 else ch) for ch in text)


def show_create_view(stmt, db: str, name: str) -> Result:
    """SHOW CREATE VIEW: the view's query, as Trino prints it back."""
    raw = glue_table(stmt, db, name)
    if raw.get("TableType") != "VIRTUAL_VIEW":
        raise QueryFailed("NOT_SUPPORTED", f"Relation 'awsdatacatalog.{db}.{name}' is a table, not a view")
    query = stmt.parse(decode_view(raw.get("ViewOriginalText", ""))).sql(dialect="trino", pretty=True)
    text = f"CREATE VIEW awsdatacatalog.{db}.{name} AS\n{query}"
    return Result("DDL", [("Create View", "varchar")], [[line] for line in text.split("\n")],
                  substatement="SHOW_CREATE_VIEW")


# --------------------------------------------------------------------------
# information_schema: the catalog as tables a query can read
# --------------------------------------------------------------------------
INFORMATION_SCHEMA = {
    "schemata": ["catalog_name", "schema_name"],
    "tables": ["table_catalog", "table_schema", "table_name", "table_type"],
    "columns": ["table_catalog", "table_schema", "table_name", "column_name", "ordinal_position",
                "column_default", "is_nullable", "data_type", "comment", "extra_info"],
    "views": ["table_catalog", "table_schema", "table_name", "view_definition"],
}


def information_schema(stmt, name: str, schemas: set[str] | None = None):
    """The rows of ``information_schema.<name>`` (an Arrow table), read from Glue.

    Athena answers these from the Glue Data Catalog too, database by database:
    a query that names its ``table_schema`` lists one database only (here
    ``schemas``, else all). ``data_type`` is the Trino type, as Athena shows
    it (``varchar`` for Hive's string, ``array(varchar)``, ``timestamp(3)``).
    """
    import pyarrow as pa
    if name not in INFORMATION_SCHEMA:
        raise QueryFailed("TABLE_NOT_FOUND", f"Table 'awsdatacatalog.information_schema.{name}' does not exist")
    glue = stmt.glue
    databases = sorted(d["Name"] for page in glue.get_paginator("get_databases").paginate()
                       for d in page["DatabaseList"])
    if stmt.lake is not None:       # Lake Formation: what the principal may see, nothing else
        databases = [db for db in databases if stmt.lake.database_visible(stmt.principal, db)]
    rows = []
    if name == "schemata":
        rows = [["awsdatacatalog", db] for db in sorted(databases + ["information_schema"])]
    for db in databases if name != "schemata" else []:
        if schemas is not None and db not in schemas:
            continue
        for page in glue.get_paginator("get_tables").paginate(DatabaseName=db):
            for t in sorted(page["TableList"], key=lambda t: t["Name"]):
                if stmt.may_describe(db, t):
                    rows += information_rows(name, db, visible_table(stmt, db, t))
    columns = INFORMATION_SCHEMA[name]
    types = {"ordinal_position": pa.int64()}
    return pa.table({c: pa.array([r[i] for r in rows], types.get(c, pa.string())) for i, c in enumerate(columns)})


def information_rows(name: str, db: str, table: dict) -> list[list]:
    """The rows one Glue table gives ``information_schema.<name>``."""
    view = table.get("TableType") == "VIRTUAL_VIEW"
    if name == "tables":
        return [["awsdatacatalog", db, table["Name"], "VIEW" if view else "BASE TABLE"]]
    if name == "views":
        return [["awsdatacatalog", db, table["Name"], decode_view(table.get("ViewOriginalText", ""))]] if view else []
    data = table.get("StorageDescriptor", {}).get("Columns", [])
    keys = table.get("PartitionKeys", [])
    return [["awsdatacatalog", db, table["Name"], c["Name"], i, None, "YES", trino_type(c["Type"]),
             c.get("Comment"), "partition key" if c in keys else None]
            for i, c in enumerate(data + keys, start=1)]


def trino_type(hive: str) -> str:
    """A Glue (Hive) column type as Athena shows it: ``string`` -> ``varchar``."""
    kind = dialect.dtype(hive, dialect="hive")
    return dialect.trino_name(kind) if kind is not None else hive
