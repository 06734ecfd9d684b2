"""Tables in the Glue Data Catalog, as Athena's Hive DDL describes them.

Athena keeps no tables of its own: ``CREATE EXTERNAL TABLE`` writes a table
definition into the **AWS Glue Data Catalog** (columns, types, the S3
``LOCATION``, the SerDe that parses the files, partitions), and a query reads
that definition back to know where the files are and how to read them. So a
table created here is visible with ``glue.get_table``, and a table created
through the Glue API (or a Glue crawler) is queryable from Athena.

This module translates between Hive DDL and Glue's ``TableInput``, reads
tables back and registers partitions, always through the Glue API of the
local stack.
"""
from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from localaws.core.iceberg import is_current_column
from localaws.core.s3 import folder
from .errors import QueryFailed, DDL_FAILED

# SerDe library -> (input format, output format), as Hive/Athena write them.
SERDES = {
    "parquet": ("org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
                "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
                "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"),
    "orc": ("org.apache.hadoop.hive.ql.io.orc.OrcSerde",
            "org.apache.hadoop.hive.ql.io.orc.OrcInputFormat",
            "org.apache.hadoop.hive.ql.io.orc.OrcOutputFormat"),
    "avro": ("org.apache.hadoop.hive.serde2.avro.AvroSerDe",
             "org.apache.hadoop.hive.ql.io.avro.AvroContainerInputFormat",
             "org.apache.hadoop.hive.ql.io.avro.AvroContainerOutputFormat"),
    "textfile": ("org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe",
                 "org.apache.hadoop.mapred.TextInputFormat",
                 "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat"),
    "json": ("org.openx.data.jsonserde.JsonSerDe",
             "org.apache.hadoop.mapred.TextInputFormat",
             "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat"),
}

OPENX_JSON = "org.openx.data.jsonserde.JsonSerDe"

# How localaws reads each SerDe (see sources.py). The Grok SerDe is AWS's own
# (``com.amazonaws.glue.serde.GrokSerDe``): Glue crawlers with a grok
# classifier write it, and Athena reads it, with the pattern in ``input.format``.
READERS = {
    "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe": "parquet",
    "org.apache.hadoop.hive.ql.io.orc.OrcSerde": "orc",
    "org.apache.hadoop.hive.serde2.avro.AvroSerDe": "avro",
    "org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe": "delimited",
    "org.apache.hadoop.hive.serde2.OpenCSVSerde": "opencsv",
    OPENX_JSON: "json",
    "org.apache.hive.hcatalog.data.JsonSerDe": "json",
    "org.apache.hadoop.hive.serde2.RegexSerDe": "regex",
    "com.amazon.emr.hive.serde.CloudTrailSerde": "cloudtrail",
    "com.amazonaws.glue.serde.GrokSerDe": "grok",
}


@dataclass
class Partition:
    values: dict[str, str]          # partition column -> value (as text, as Hive keeps it)
    location: str                    # s3://bucket/prefix/


@dataclass
class Table:
    """What a query needs to know about a catalog table."""
    name: str
    columns: list[tuple[str, str]]            # (name, hive type), data columns
    partition_keys: list[tuple[str, str]]
    location: str
    serde: str
    serde_params: dict[str, str]
    params: dict[str, str]                     # TBLPROPERTIES
    view_sql: str | None = None                # a view's query (Glue table type VIRTUAL_VIEW)
    partitions: list[Partition] = field(default_factory=list)

    @property
    def reader(self) -> str:
        try:
            return READERS[self.serde]
        except KeyError:
            raise QueryFailed("HIVE_UNSUPPORTED_FORMAT",
                              f"Unable to create input format for SerDe '{self.serde}' "
                              f"(localaws reads: {', '.join(sorted(set(READERS.values())))})") from None


def glue_table(raw: dict) -> Table:
    """A :class:`Table` from ``glue.get_table()["Table"]``."""
    sd = raw.get("StorageDescriptor", {})
    serde = sd.get("SerdeInfo", {})
    view_sql = None
    if raw.get("TableType") == "VIRTUAL_VIEW":
        view_sql = decode_view(raw.get("ViewOriginalText", ""))
    return Table(
        name=raw["Name"],
        columns=[(c["Name"].lower(), c["Type"].lower()) for c in sd.get("Columns", [])
                 if is_current_column(c)],      # not an Iceberg table's renamed or dropped ones
        partition_keys=[(c["Name"].lower(), c["Type"].lower()) for c in raw.get("PartitionKeys", [])],
        location=sd.get("Location", ""), serde=serde.get("SerializationLibrary", ""),
        serde_params=dict(serde.get("Parameters", {})), params=dict(raw.get("Parameters", {})),
        view_sql=view_sql)


def table_input(name: str, columns, partition_keys, location: str, serde: str,
                serde_params: dict, params: dict, input_format: str = "", output_format: str = "") -> dict:
    """Glue's ``TableInput`` for an external table."""
    if not input_format:
        for lib, inp, out in SERDES.values():
            if lib == serde:
                input_format, output_format = inp, out
        input_format = input_format or "org.apache.hadoop.mapred.TextInputFormat"
        output_format = output_format or "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat"
    return {
        "Name": name, "TableType": "EXTERNAL_TABLE",
        "Parameters": {"EXTERNAL": "TRUE", **params},
        "PartitionKeys": [{"Name": n, "Type": t} for n, t in partition_keys],
        "StorageDescriptor": {
            "Columns": [{"Name": n, "Type": t} for n, t in columns],
            "Location": location, "InputFormat": input_format, "OutputFormat": output_format,
            "SerdeInfo": {"SerializationLibrary": serde, "Parameters": serde_params},
        },
    }


def hive_type(duck: str) -> str:
    """A DuckDB result type as a Hive/Glue column type (``VARCHAR`` -> ``string``)."""
    duck = duck.upper()
    simple = {"VARCHAR": "string", "BIGINT": "bigint", "INTEGER": "int", "SMALLINT": "smallint",
              "TINYINT": "tinyint", "DOUBLE": "double", "FLOAT": "float", "BOOLEAN": "boolean",
              "DATE": "date", "TIMESTAMP": "timestamp", "TIMESTAMP WITH TIME ZONE": "timestamp",
              "BLOB": "binary", "HUGEINT": "decimal(38,0)", "UBIGINT": "bigint", "UINTEGER": "bigint"}
    if duck in simple:
        return simple[duck]
    if duck.startswith("DECIMAL"):
        return duck.lower().replace(" ", "")
    if duck.endswith("[]"):
        return f"array<{hive_type(duck[:-2])}>"
    return "string"


# -- views -------------------------------------------------------------------
# Athena stores a view in Glue as a VIRTUAL_VIEW whose ViewOriginalText is
# "/* Presto View: <base64 of a JSON document with originalSql...> */".
def encode_view(sql: str, database: str, columns) -> str:
    import base64
    import json
    doc = {"originalSql": sql, "catalog": "awsdatacatalog", "schema": database,
           "columns": [{"name": n, "type": t} for n, t in columns]}
    return f"/* Presto View: {base64.b64encode(json.dumps(doc).encode()).decode()} */"


def decode_view(text: str) -> str:
    import base64
    import json
    m = re.search(r"Presto View: (\S+) \*/", text)
    if not m:
        return text
    return json.loads(base64.b64decode(m.group(1)))["originalSql"]


# -- partitions ----------------------------------------------------------------
def add_partitions(glue, db: str, name: str, partitions: list[Partition]) -> None:
    """Register partitions (BatchCreatePartition, 100 per call, as Glue allows);
    each gets the table's storage descriptor with its own location."""
    table = glue.get_table(DatabaseName=db, Name=name)["Table"]
    sd = table["StorageDescriptor"]
    keys = [k["Name"] for k in table.get("PartitionKeys", [])]
    inputs = [{"Values": [p.values[k] for k in keys],
               "StorageDescriptor": {**sd, "Location": p.location}} for p in partitions]
    for i in range(0, len(inputs), 100):
        glue.batch_create_partition(DatabaseName=db, TableName=name, PartitionInputList=inputs[i:i + 100])


def partition_location(table: Table, values: dict[str, str]) -> str:
    """Where a partition lives by default: ``<LOCATION>col=value/...``."""
    return folder(table.location) + "".join(f"{k}={values[k]}/" for k, _ in table.partition_keys)


def projected_partitions(table: Table) -> list[Partition] | None:
    """Partitions computed from TBLPROPERTIES when partition projection is on.

    With ``projection.enabled = true`` Athena does not look partitions up in
    the catalog: it computes the possible values of each partition column
    from ``projection.<col>.type`` (integer, enum, date, injected) and their
    ``range``/``values``/``format``/``interval``, and the location from
    ``storage.location.template``.
    """
    p = table.params
    if p.get("projection.enabled", "").lower() != "true":
        return None
    per_column = []
    for col, _ in table.partition_keys:
        kind = p.get(f"projection.{col}.type", "").lower()
        if kind == "enum":
            values = [v.strip() for v in p[f"projection.{col}.values"].split(",")]
        elif kind == "integer":
            lo, hi = (int(x) for x in p[f"projection.{col}.range"].split(","))
            step = int(p.get(f"projection.{col}.interval", "1"))
            digits = int(p.get(f"projection.{col}.digits", "0"))
            values = [str(v).zfill(digits) for v in range(lo, hi + 1, step)]
        elif kind == "date":
            values = _date_values(p, col)
        else:
            raise QueryFailed("HIVE_INVALID_METADATA",
                              f"Partition projection type '{kind}' of column {col} is not supported "
                              "locally (integer, enum and date are)", error_type=DDL_FAILED)
        per_column.append(values)
    template = p.get("storage.location.template")
    partitions = []
    for combo in itertools.product(*per_column):
        values = dict(zip([c for c, _ in table.partition_keys], combo))
        if template:
            loc = template
            for k, v in values.items():
                loc = loc.replace("${" + k + "}", v)
        else:
            loc = partition_location(table, values)
        partitions.append(Partition(values, folder(loc)))
    return partitions


_JAVA_TO_STRFTIME = [("yyyy", "%Y"), ("MM", "%m"), ("dd", "%d"), ("HH", "%H"), ("mm", "%M"), ("ss", "%S")]


def _date_values(p: dict, col: str) -> list[str]:
    fmt = p[f"projection.{col}.format"]
    py = fmt
    for java, c in _JAVA_TO_STRFTIME:
        py = py.replace(java, c)
    lo, hi = (x.strip() for x in p[f"projection.{col}.range"].split(","))
    start = datetime.strptime(lo, py)
    end = datetime.utcnow() if hi.upper() == "NOW" else datetime.strptime(hi, py)
    unit = p.get(f"projection.{col}.interval.unit", "DAYS").upper()
    step = int(p.get(f"projection.{col}.interval", "1"))
    out, current = [], start
    while current <= end:
        out.append(current.strftime(py))
        if unit.startswith("DAY"):
            current += timedelta(days=step)
        elif unit.startswith("HOUR"):
            current += timedelta(hours=step)
        elif unit.startswith("MONTH"):
            month = current.month - 1 + step
            current = current.replace(year=current.year + month // 12, month=month % 12 + 1)
        elif unit.startswith("YEAR"):
            current = current.replace(year=current.year + step)
        else:
            raise QueryFailed("HIVE_INVALID_METADATA", f"interval unit {unit} not supported locally")
    return out
