"""Writing query results as table files: CTAS, INSERT INTO, UNLOAD.

``CREATE TABLE ... WITH (format = 'PARQUET', external_location = 's3://...',
partitioned_by = ARRAY['month'], write_compression = 'SNAPPY') AS SELECT``
is how Athena converts data (CSV to Parquet, say) without any other service:
the query runs, its result is written to S3 in the chosen format, one folder
per partition value (``month=1/``, Hive's layout; a NULL value goes to
``month=__HIVE_DEFAULT_PARTITION__/``), and the new table is registered in
the Glue catalog with its partitions. ``INSERT INTO`` appends files (and new
partitions) to an existing table; ``UNLOAD`` writes files and registers
nothing. Athena refuses to write into a location that already holds files,
and a statement that fails leaves nothing half-written behind. A result
without rows writes no file at all. CTAS and INSERT INTO report how many
rows they wrote as the query's ``UpdateCount``, not as a result row.

Here the query's result (an Arrow table) is split by partition values with
pyarrow's dataset writer, each part is encoded by ``core/tables.py`` (the
encoder ``localaws.data`` uses too) and PUT to S3 as
``<location><col=value/...><query id>_<n>.<ext>``.
"""
from __future__ import annotations

import re
import tempfile

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
from sqlglot import exp

from localaws.core.s3 import folder
from localaws.core.tables import encode
from .catalog import Partition, SERDES, add_partitions, hive_type, table_input
from .errors import QueryFailed, DDL_FAILED
from .results import Result
from .sources import list_files

FORMATS = {"parquet", "orc", "avro", "textfile", "json"}
DEFAULT_COMPRESSION = {"parquet": "gzip", "orc": "zlib", "avro": "null", "textfile": "gzip", "json": "gzip"}
ENCODINGS = {"parquet": "parquet", "orc": "orc", "avro": "avro", "textfile": "text", "json": "jsonl"}
NULL_PARTITION = "__HIVE_DEFAULT_PARTITION__"


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
    """How to write: format, compression, partition columns, text delimiter."""

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
        """The spec of an existing table (INSERT INTO writes files like the ones it has)."""
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
    def text(self) -> bool:
        return self.format in ("textfile", "json")

    @property
    def codec(self) -> str | None:
        """The codec files are written with. Text is compressed whole, with gzip or
        zstd; other codecs for text are not supported locally (the text stays plain)."""
        if self.text and self.compression not in ("gzip", "zstd"):
            return None
        return self.compression

    @property
    def suffix(self) -> str:
        ext = {"parquet": ".parquet", "orc": ".orc", "avro": ".avro", "textfile": "", "json": ".json"}[self.format]
        compressed = {"gzip": ".gz", "zstd": ".zst"}.get(self.codec, "") if self.text else ""
        return ext + compressed

    #: UNLOAD writes Parquet timestamps as Athena does: INT96 (Hive's type), in milliseconds.
    int96_timestamps = False

    def encode(self, table: pa.Table) -> bytes:
        if self.format == "parquet" and self.int96_timestamps:
            return int96_parquet(table, self.codec)
        return encode(table, ENCODINGS[self.format], self.codec, delimiter=self.delimiter)


def int96_parquet(table: pa.Table, codec: str | None) -> bytes:
    """Parquet with Athena's timestamps: milliseconds, stored as INT96 as Hive (and Athena's
    UNLOAD) writes them; readers such as PyAthena ask pyarrow to read them back in a unit of
    their choice (``coerce_int96_timestamp_unit``)."""
    import pyarrow.parquet as pq
    millis = [pa.field(f.name, pa.timestamp("ms", f.type.tz)) if pa.types.is_timestamp(f.type) else f
              for f in table.schema]
    sink = pa.BufferOutputStream()
    pq.write_table(table.cast(pa.schema(millis), safe=False), sink, compression=codec or "none",
                   use_deprecated_int96_timestamps=True)
    return sink.getvalue().to_pybytes()


def require_empty(s3, location: str, what: str) -> None:
    if list_files(s3, location):
        raise QueryFailed("HIVE_PATH_ALREADY_EXISTS", f"Target directory for table '{what}' already exists: "
                          f"{location}. You may need to manually clean the data at location "
                          f"'{location}' before retrying.", error_type=DDL_FAILED)


# --------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------
def partition(table: pa.Table, keys: list[str], scratch: str | None = None) -> list[tuple[dict, pa.Table]]:
    """Split ``table`` by the values of ``keys`` the way Hive lays partitions out.

    Returns one ``({key: value}, rows)`` per combination of values (None for
    NULL), sorted by the values as text, with the rows in their original
    order and without the key columns. Partition values are text in Hive
    (folder names, catalog entries), so the key columns are made text first.
    pyarrow's dataset writer does the split, into Arrow files under
    ``scratch`` (a big partition may come back as several files, in order).
    """
    if not keys:
        return [({}, table)]
    for key in keys:
        text = pa.array([None if v is None else str(v) for v in table[key].to_pylist()], pa.string())
        table = table.set_column(table.column_names.index(key), key, text)
    # The rows of a partition together (a stable sort keeps their order): the writer then
    # finishes one partition before it starts the next, one file each, however many there are.
    table = table.take(pc.sort_indices(table, sort_keys=[(k, "ascending") for k in keys]))
    layout = ds.partitioning(pa.schema([(k, pa.string()) for k in keys]), flavor="hive")
    pieces: dict[tuple, list[tuple[int, pa.Table]]] = {}
    with tempfile.TemporaryDirectory(dir=scratch) as tmp:
        ds.write_dataset(table, tmp, format="ipc", partitioning=layout, preserve_order=True,
                         basename_template="part-{i}.arrow",
                         max_partitions=max(1, table.num_rows))     # no limit of its own
        for fragment in ds.dataset(tmp, format="ipc", partitioning=layout).get_fragments():
            values = ds.get_partition_keys(fragment.partition_expression)
            number = int(re.search(r"part-(\d+)\.arrow$", fragment.path).group(1))
            pieces.setdefault(tuple(values.get(k) for k in keys), []).append((number, fragment.to_table()))
    parts = []
    for values in sorted(pieces, key=lambda values: [str(v) for v in values]):
        files = sorted(pieces[values], key=lambda piece: piece[0])
        parts.append((dict(zip(keys, values)), pa.concat_tables([rows for _, rows in files])))
    return parts


def write(s3, table: pa.Table, names: list[str], location: str, spec: OutputSpec, query_id: str,
          scratch: str | None = None) -> tuple[list[str], list[Partition]]:
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
    base = folder(location)
    written, partitions = [], []
    if table.num_rows == 0:
        return written, partitions
    try:
        for i, (values, rows) in enumerate(partition(table, spec.partitioned_by, scratch)):
            path = "".join(f"{k}={NULL_PARTITION if v is None else v}/" for k, v in values.items())
            written.append(s3.write(f"{base}{path}{query_id}_{i:05d}{spec.suffix}", spec.encode(rows)))
            if values:
                partitions.append(Partition({k: str(v) for k, v in values.items()}, base + path))
    except Exception as exc:
        s3.delete(written)              # nothing half-written stays behind
        if isinstance(exc, QueryFailed):
            raise
        raise QueryFailed("HIVE_WRITER_DATA_ERROR", f"{type(exc).__name__}: {exc}", error_type=DDL_FAILED) from None
    return written, partitions


# --------------------------------------------------------------------------
# The statements. ``stmt`` is the running engine.Statement (its Glue client,
# its S3, catalog lookups and the query runner).
# --------------------------------------------------------------------------
def ctas(stmt, tree: exp.Create) -> Result:
    """CREATE TABLE ... AS SELECT: write the result, then register the table and its partitions."""
    db, name = stmt.table_ref(tree.this if isinstance(tree.this, exp.Table) else tree.this.this)
    stmt.require_database(db)
    stmt.require_on_database(db, "CREATE_TABLE")
    glue = stmt.glue
    try:
        glue.get_table(DatabaseName=db, Name=name)
        if tree.args.get("exists"):
            return Result("DDL", substatement="CREATE_TABLE_AS_SELECT")
        raise QueryFailed("TABLE_ALREADY_EXISTS", f"Table 'awsdatacatalog.{db}.{name}' already exists",
                          error_type=DDL_FAILED)
    except glue.exceptions.EntityNotFoundException:
        pass
    props = with_properties(tree)
    location = folder(props.get("external_location") or
                      f"{stmt.output_location.rstrip('/')}/tables/{stmt.query_id}/")
    require_empty(stmt.s3, location, f"{db}.{name}")
    names, types, table = stmt.execute_query(stmt.name_columns(tree.expression))
    spec = OutputSpec.from_properties(props)
    written, partitions = write(stmt.s3, table, names, location, spec, stmt.query_id, stmt.scratch)
    try:
        columns = [(n, hive_type(t)) for n, t in zip(names, types) if n not in spec.partitioned_by]
        keys = [(n, hive_type(types[names.index(n)])) for n in spec.partitioned_by]
        serde, params = spec.serde()
        glue.create_table(DatabaseName=db, TableInput=table_input(
            name, columns, keys, location, serde, params, spec.table_params()))
        if partitions:
            add_partitions(glue, db, name, partitions)
    except Exception:
        stmt.s3.delete(written)        # no half-made table: remove the files
        try:
            glue.delete_table(DatabaseName=db, Name=name)
        except Exception:
            pass
        raise
    return Result("DML", [("rows", "bigint")], written=written, substatement="CREATE_TABLE_AS_SELECT",
                  update_count=table.num_rows)


def insert(stmt, tree: exp.Insert) -> Result:
    """INSERT INTO: files like the table's own, new partitions registered."""
    target = tree.this if isinstance(tree.this, exp.Table) else tree.this.this
    db, name = stmt.table_ref(target)
    table = stmt.load_table(db, name)
    stmt.require(db, name, "INSERT")
    names, _, result = stmt.execute_query(tree.expression)
    expected = len(table.columns) + len(table.partition_keys)
    if len(names) != expected:
        raise QueryFailed("TYPE_MISMATCH", f"Insert query has {len(names)} columns, target table "
                          f"'awsdatacatalog.{db}.{name}' has {expected}")
    keys = [c for c, _ in table.partition_keys]
    result = result.rename_columns([c for c, _ in table.columns] + keys)
    existing = {tuple(p.values[c] for c in keys) for p in table.partitions}
    written, partitions = write(stmt.s3, result, result.column_names, table.location,
                                OutputSpec.for_table(table), stmt.query_id, stmt.scratch)
    new = [p for p in partitions if tuple(p.values[c] for c in keys) not in existing]
    if new:
        add_partitions(stmt.glue, db, name, new)
    return Result("DML", [("rows", "bigint")], written=written, substatement="INSERT",
                  update_count=result.num_rows)


def unload(stmt, text: str) -> Result:
    """UNLOAD (SELECT ...) TO 's3://...' WITH (...): files only, no table."""
    m = re.match(r"(?is)^UNLOAD\s*\((.*)\)\s*TO\s*'([^']+)'\s*(?:WITH\s*\((.*)\))?\s*$", text)
    if not m:
        raise QueryFailed("SYNTAX_ERROR", "UNLOAD needs: UNLOAD (SELECT ...) TO 's3://...' WITH (format = ...)")
    query, location, props_text = m.groups()
    props = with_properties(stmt.parse(f"CREATE TABLE x WITH ({props_text}) AS SELECT 1")) if props_text else {}
    location = folder(location)
    require_empty(stmt.s3, location, location)
    names, _, table = stmt.execute_query(stmt.parse(query))
    spec = OutputSpec.from_properties(props, default_format="textfile")
    spec.int96_timestamps = True
    written, _ = write(stmt.s3, table, names, location, spec, stmt.query_id, stmt.scratch)
    return Result("DML", written=written, substatement="UNLOAD")
