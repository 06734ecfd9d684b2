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
- ``DESCRIBE``, ``SHOW DATABASES | TABLES | VIEWS | PARTITIONS | COLUMNS``:
  the catalog read back.

sqlglot parses the statement (dialect ``athena``); ``CREATE EXTERNAL TABLE``
reads the parsed properties: columns and types, ``PARTITIONED BY``, ``ROW
FORMAT DELIMITED ... TERMINATED BY``, ``ROW FORMAT SERDE '...' WITH
SERDEPROPERTIES``, ``STORED AS``, ``LOCATION`` and ``TBLPROPERTIES``.

Each statement takes ``stmt``, the running ``engine.Statement`` (its Glue
client, its S3, catalog lookups and the query runner), and returns a
:class:`~localaws.athena.results.Result`.
"""
from __future__ import annotations

import re

from sqlglot import exp

from localaws.core.s3 import folder
from .catalog import (SERDES, Partition, add_partitions, encode_view, hive_type, partition_location,
                      table_input)
from .errors import QueryFailed, DDL_FAILED
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
def describe(stmt, db: str, name: str) -> Result:
    table = stmt.load_table(db, name)
    rows = [[f"{c:<20}\t{t:<20}\t"] for c, t in table.columns + table.partition_keys]
    if table.partition_keys:
        rows += [[""], ["# Partition Information"], [f"{'# col_name':<20}\t{'data_type':<20}\t"], [""]]
        rows += [[f"{c:<20}\t{t:<20}\t"] for c, t in table.partition_keys]
    return Result("DDL", [("col_name", "varchar")], rows, substatement="DESCRIBE_TABLE")


def show(stmt, rest: str) -> Result:
    """SHOW DATABASES | TABLES [IN db] ['pattern'] | VIEWS | PARTITIONS t | COLUMNS IN t."""
    glue = stmt.glue
    words = rest.split()
    what = words[0].upper() if words else ""
    if what in ("DATABASES", "SCHEMAS"):
        names = sorted(d["Name"] for page in glue.get_paginator("get_databases").paginate()
                       for d in page["DatabaseList"])
        return Result("DDL", [("database_name", "varchar")], [[n] for n in names], substatement="SHOW_DATABASES")
    if what in ("TABLES", "VIEWS"):
        db = words[2].lower() if len(words) > 2 and words[1].upper() in ("IN", "FROM") else stmt.database
        stmt.require_database(db)
        pattern = re.search(r"'([^']*)'", rest)
        tables = [t for page in glue.get_paginator("get_tables").paginate(DatabaseName=db)
                  for t in page["TableList"]]
        if what == "VIEWS":
            tables = [t for t in tables if t.get("TableType") == "VIRTUAL_VIEW"]
        names = sorted(t["Name"] for t in tables)
        if pattern:
            regex = re.compile("^" + pattern.group(1).replace("*", ".*") + "$", re.I)
            names = [n for n in names if regex.match(n)]
        return Result("DDL", [("tab_name", "varchar")], [[n] for n in names], substatement="SHOW_TABLES")
    if what == "PARTITIONS" and len(words) > 1:
        table = stmt.load_table(*stmt.table_ref(exp.to_table(words[1])))
        lines = sorted("/".join(f"{k}={p.values[k]}" for k, _ in table.partition_keys) for p in table.partitions)
        return Result("DDL", [("partition", "varchar")], [[x] for x in lines], substatement="SHOW_PARTITIONS")
    if what == "COLUMNS" and len(words) > 2:
        table = stmt.load_table(*stmt.table_ref(exp.to_table(words[2])))
        return Result("DDL", [("field", "varchar")], [[c] for c, _ in table.columns + table.partition_keys],
                      substatement="SHOW_COLUMNS")
    raise QueryFailed("NOT_SUPPORTED", f"SHOW {rest} is not supported locally")
