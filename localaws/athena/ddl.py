"""``CREATE EXTERNAL TABLE`` in Hive DDL -> a Glue ``TableInput``.

sqlglot parses the statement (dialect ``athena``); this module only reads
the parsed properties: columns and types, ``PARTITIONED BY``, ``ROW FORMAT
DELIMITED ... TERMINATED BY``, ``ROW FORMAT SERDE '...' WITH SERDEPROPERTIES``,
``STORED AS``, ``LOCATION`` and ``TBLPROPERTIES``.
"""
from __future__ import annotations

from sqlglot import exp

from .catalog import SERDES, table_input
from .errors import QueryFailed, DDL_FAILED

STORED_AS = {"PARQUET": "parquet", "ORC": "orc", "AVRO": "avro", "TEXTFILE": "textfile",
             "JSON": "json", "JSONFILE": "json"}


def column_type(kind: exp.DataType) -> str:
    """A Hive type string as Glue stores it: ``array<string>``, ``decimal(10,2)``."""
    return kind.sql(dialect="hive").lower().replace(", ", ",")


def _literal(node) -> str:
    return node.name if isinstance(node, exp.Literal) else node.sql()


def external_table(tree: exp.Create, default_db: str) -> tuple[str, str, dict]:
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
