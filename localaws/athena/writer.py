"""Writing query results as table files: CTAS, INSERT INTO, UNLOAD.

``CREATE TABLE ... WITH (format = 'PARQUET', external_location = 's3://...',
partitioned_by = ARRAY['month'], write_compression = 'SNAPPY') AS SELECT``
is how Athena converts data (CSV to Parquet, say) without any other service:
the query runs, its result is written to S3 in the chosen format, one folder
per partition value (``month=1/``), and the new table is registered in the
Glue catalog with its partitions. Athena refuses to write into a location
that already holds files.
"""
from __future__ import annotations

import io
import json

import pyarrow as pa
import pyarrow.compute as pc
from sqlglot import exp

from .catalog import Partition, SERDES
from .errors import QueryFailed, DDL_FAILED
from .sources import list_files, split_s3

FORMATS = {"parquet", "orc", "avro", "textfile", "json"}
DEFAULT_COMPRESSION = {"parquet": "gzip", "orc": "zlib", "avro": "null", "textfile": "gzip", "json": "gzip"}


def with_properties(tree: exp.Create) -> dict:
    """The ``WITH (...)`` properties of a CTAS, as plain Python values."""
    props = {}
    container = tree.args.get("properties")
    for p in (container.expressions if container is not None else []):
        if type(p) is exp.Property:
            key = p.this.name if isinstance(p.this, (exp.Literal, exp.Var, exp.Identifier)) else p.this.sql()
            value = p.args["value"]
            if isinstance(value, exp.Array):
                props[key.lower()] = [v.name for v in value.expressions]
            else:
                props[key.lower()] = value.name
        elif isinstance(p, exp.PartitionedByProperty):
            inner = p.this
            items = inner.expressions if hasattr(inner, "expressions") else [inner]
            props["partitioned_by"] = [i.name for i in items]
        elif isinstance(p, exp.LocationProperty):
            props["external_location"] = p.this.name
        elif isinstance(p, exp.FileFormatProperty):
            props["format"] = p.this.name
    return props


class OutputSpec:
    def __init__(self, fmt: str, compression: str, partitioned_by: list[str], delimiter: str = ","):
        if fmt not in FORMATS:
            raise QueryFailed("INVALID_TABLE_PROPERTY", f"Unsupported format '{fmt}' "
                              f"(use one of {', '.join(sorted(FORMATS))})", error_type=DDL_FAILED)
        self.format, self.compression = fmt, compression.lower()
        self.partitioned_by, self.delimiter = [c.lower() for c in partitioned_by], delimiter

    @classmethod
    def from_properties(cls, props: dict, default_format: str = "parquet") -> "OutputSpec":
        fmt = props.get("format", default_format).lower()
        comp = (props.get("write_compression") or props.get("parquet_compression")
                or props.get("orc_compression") or props.get("compression")
                or DEFAULT_COMPRESSION.get(fmt, "none"))
        return cls(fmt, comp, props.get("partitioned_by", []), props.get("field_delimiter", ","))

    @classmethod
    def for_table(cls, table) -> "OutputSpec":
        reader = table.reader
        fmt = {"parquet": "parquet", "orc": "orc", "avro": "avro", "json": "json"}.get(reader, "textfile")
        comp = table.params.get("write.compression", table.params.get("parquet.compression", "none"))
        delim = table.serde_params.get("field.delim", ",")
        return cls(fmt, comp, [c for c, _ in table.partition_keys], delim)

    def serde(self) -> tuple[str, dict]:
        lib = SERDES[self.format][0]
        return lib, ({"field.delim": self.delimiter, "serialization.format": self.delimiter}
                     if self.format == "textfile" else {})

    def table_params(self) -> dict:
        params = {"classification": self.format if self.format != "textfile" else "csv"}
        if self.compression not in ("none", "null"):
            params["write.compression"] = self.compression
        return params

    @property
    def suffix(self) -> str:
        ext = {"parquet": ".parquet", "orc": ".orc", "avro": ".avro", "textfile": "", "json": ".json"}[self.format]
        if self.format in ("textfile", "json") and self.compression == "gzip":
            ext += ".gz"
        if self.format in ("textfile", "json") and self.compression == "zstd":
            ext += ".zst"
        return ext


def hive_type(duck: str) -> str:
    """A DuckDB result type as a Hive/Glue column type."""
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


def require_empty(s3, location: str, what: str) -> None:
    if list_files(s3, location):
        raise QueryFailed("HIVE_PATH_ALREADY_EXISTS", f"Target directory for table '{what}' already exists: "
                          f"{location}. You may need to manually clean the data at location "
                          f"'{location}' before retrying.", error_type=DDL_FAILED)


def delete(s3, uris: list[str]) -> None:
    for uri in uris:
        bucket, key = split_s3(uri)
        s3.delete_object(Bucket=bucket, Key=key)


def _encode(table: pa.Table, spec: OutputSpec) -> bytes:
    buf = io.BytesIO()
    comp = None if spec.compression in ("none", "null", "uncompressed") else spec.compression
    if spec.format == "parquet":
        import pyarrow.parquet as pq
        pq.write_table(table, buf, compression=comp or "none")
    elif spec.format == "orc":
        import pyarrow.orc as orc
        orc.write_table(table, buf, compression=(comp or "uncompressed").upper())
    elif spec.format == "avro":
        import fastavro
        from localaws.data.nycflights import _avro_schema
        df = table.to_pandas()
        fastavro.writer(buf, fastavro.parse_schema(_avro_schema(df, "record")),
                        [{k: (None if v != v else v) if isinstance(v, float) else v for k, v in r.items()}
                         for r in table.to_pylist()],
                        codec=comp or "null")
    else:
        if spec.format == "json":
            text = "".join(json.dumps(r, default=str) + "\n" for r in table.to_pylist())
        else:
            rows = table.to_pylist()
            text = "".join(spec.delimiter.join("\\N" if v is None else str(v) for v in r.values()) + "\n"
                           for r in rows)
        data = text.encode()
        if comp == "gzip":
            import gzip
            data = gzip.compress(data, mtime=0)
        elif comp == "zstd":
            data = pa.compress(data, "zstd", asbytes=True)   # one zstd frame: a valid .zst file
        buf.write(data)
    return buf.getvalue()


def write(s3, table: pa.Table, names: list[str], location: str, spec: OutputSpec,
          query_id: str) -> tuple[list[str], list[Partition]]:
    """Write ``table`` under ``location``; returns (written URIs, partitions)."""
    table = table.rename_columns([n.lower() for n in names])
    missing = [c for c in spec.partitioned_by if c not in table.column_names]
    if missing:
        raise QueryFailed("INVALID_TABLE_PROPERTY", f"Partition column {missing[0]} is not in the query's "
                          "columns", error_type=DDL_FAILED)
    if spec.partitioned_by and table.column_names[-len(spec.partitioned_by):] != spec.partitioned_by:
        raise QueryFailed("HIVE_COLUMN_ORDER_MISMATCH", "Partition keys must be the last columns in the table "
                          "and in the same order as the table properties: " + str(spec.partitioned_by),
                          error_type=DDL_FAILED)
    base = location if location.endswith("/") else location + "/"
    groups = [((), table)]
    if spec.partitioned_by:
        keys = table.select(spec.partitioned_by)
        distinct = keys.group_by(spec.partitioned_by).aggregate([]).to_pylist()
        groups = []
        for combo in sorted(distinct, key=lambda d: tuple(str(d[k]) for k in spec.partitioned_by)):
            mask = None
            for k in spec.partitioned_by:
                cond = pc.is_null(table[k]) if combo[k] is None else pc.equal(table[k], combo[k])
                mask = cond if mask is None else pc.and_(mask, cond)
            part = table.filter(mask).drop_columns(spec.partitioned_by)
            groups.append((tuple((k, combo[k]) for k in spec.partitioned_by), part))
    written, partitions = [], []
    bucket, prefix = split_s3(base)
    try:
        for i, (combo, part) in enumerate(groups):
            folder = "".join(f"{k}={'__HIVE_DEFAULT_PARTITION__' if v is None else v}/" for k, v in combo)
            key = f"{prefix}{folder}{query_id}_{i:05d}{spec.suffix}"
            s3.put_object(Bucket=bucket, Key=key, Body=_encode(part, spec))
            written.append(f"s3://{bucket}/{key}")
            if combo:
                partitions.append(Partition({k: str(v) for k, v in combo}, f"{base}{folder}"))
    except Exception as exc:
        delete(s3, written)              # nothing half-written stays behind
        if isinstance(exc, QueryFailed):
            raise
        raise QueryFailed("HIVE_WRITER_DATA_ERROR", f"{type(exc).__name__}: {exc}", error_type=DDL_FAILED) from None
    return written, partitions
