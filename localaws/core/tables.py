"""A table as the bytes of one file, in every format a data lake stores.

On AWS the *same* table can sit in S3 as Parquet, ORC, Avro, delimited text
or JSON lines, compressed or not. What differs is how many bytes a reader
has to fetch to answer a question, and Athena and Redshift Spectrum bill by
exactly those bytes. :func:`encode` turns a ``pyarrow.Table`` into one file
of any of these formats; ``localaws.data`` exports data sets with it and
Athena writes CTAS / INSERT INTO / UNLOAD results with it, so a format means
the same bytes whoever writes it.

``parquet``, ``orc``
    Columnar and typed, compressed per column chunk (``snappy``, ``gzip``,
    ``zstd``, ``zlib``...): a reader fetches only the columns it needs.
``avro``
    Row-oriented and typed, the schema in the file header
    (:func:`avro_schema`); blocks compressed with ``deflate`` or ``snappy``.
``csv``
    A header row, fields quoted only when they must be (RFC 4180), missing
    values empty: what spreadsheets and pandas write.
``text``
    Hive's text format (``LazySimpleSerDe``, Athena's ``TEXTFILE``): no
    header, no quoting, ``\\N`` for NULL.
``jsonl``
    One JSON object per line (the OpenX and Hive JSON SerDes read it).

Text formats show timestamps in UTC (``2013-01-01 05:00:00``; JSON lines
``2013-01-01T05:00:00Z``), with fractional seconds only where there are
any, and are compressed whole (:func:`compress`): a gzip file cannot be
split, so one big ``.csv.gz`` is read by a single worker.
"""
from __future__ import annotations

import csv
import gzip
import io
import json
import re

import pyarrow as pa
import pyarrow.compute as pc

FORMATS = ("parquet", "orc", "avro", "csv", "text", "jsonl")
NO_COMPRESSION = ("none", "null", "uncompressed")
HIVE_NULL = "\\N"


def encode(table: pa.Table, fmt: str, compression: str | None = None, *, delimiter: str = ",",
           schema: dict | None = None) -> bytes:
    """The bytes of one ``fmt`` file holding ``table``.

    ``compression``: a codec of the format (``None``, ``"none"``, ``"null"``
    or ``"uncompressed"`` for none). ``delimiter``: the field separator of
    ``csv`` and ``text``. ``schema``: the Avro schema to write with (default
    :func:`avro_schema` of ``table``), so that the files of one data set
    written piece by piece agree.
    """
    codec = None if compression is None or compression.lower() in NO_COMPRESSION else compression.lower()
    if fmt == "parquet":
        import pyarrow.parquet as pq
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink, compression=codec or "none")
        return sink.getvalue().to_pybytes()
    if fmt == "orc":
        import pyarrow.orc as orc
        sink = pa.BufferOutputStream()
        orc.write_table(table, sink, compression=codec or "uncompressed")
        return sink.getvalue().to_pybytes()
    if fmt == "avro":
        return _avro(table, schema or avro_schema(table), codec or "null")
    if fmt in ("csv", "text"):
        return compress(_delimited(table, delimiter, header=fmt == "csv").encode("utf-8"), codec)
    if fmt == "jsonl":
        return compress(_json_lines(table).encode("utf-8"), codec)
    raise ValueError(f"Unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")


def compress(data: bytes, codec: str | None) -> bytes:
    """A whole text file compressed: ``gzip`` (level 6, as the gzip command and
    Hadoop's GzipCodec; ``mtime=0`` so reruns give the same bytes) or ``zstd``."""
    if codec is None:
        return data
    if codec == "gzip":
        return gzip.compress(data, compresslevel=6, mtime=0)
    if codec == "zstd":
        sink = pa.BufferOutputStream()
        with pa.CompressedOutputStream(sink, "zstd") as stream:
            stream.write(data)
        return sink.getvalue().to_pybytes()
    raise ValueError(f"Text files are compressed with gzip or zstd, not {codec!r}")


# ------------------------------------------------------------------ text
def _timestamps_as_text(column: pa.ChunkedArray, fmt: str) -> pa.ChunkedArray:
    """Timestamps as UTC text; Arrow's ``%S`` carries the microseconds, dropped when zero."""
    utc = column.cast(pa.timestamp("us", "UTC" if column.type.tz else None), safe=False)
    text = pc.strftime(utc, format=fmt)
    return pc.replace_substring_regex(text, pattern=r"\.0{6}(Z?)$", replacement=r"\1")


def _python_values(column: pa.ChunkedArray) -> list:
    """The column's values as Python objects (None for NULL); through numpy when it can (10x faster)."""
    numeric = pa.types.is_integer(column.type) or pa.types.is_floating(column.type) or pa.types.is_boolean(column.type)
    if numeric and column.null_count == 0:
        return column.to_numpy().tolist()
    return column.to_pylist()


def _text_columns(table: pa.Table, timestamp_format: str, null: str) -> list[list[str]]:
    """Each column as the list of its values written as text, ``null`` for NULL."""
    columns = []
    for column in table.columns:
        kind = column.type
        if pa.types.is_timestamp(kind):
            text = _timestamps_as_text(column, timestamp_format)
        elif pa.types.is_integer(kind) or pa.types.is_string(kind) or pa.types.is_date(kind):
            text = column.cast(pa.string())       # the same text as Python's str(), much faster
        else:                                     # floats (2.0, 1e+20), booleans (True)...
            columns.append([null if v is None else str(v) for v in _python_values(column)])
            continue
        columns.append(text.fill_null(null).to_pylist())
    return columns


def _delimited(table: pa.Table, delimiter: str, header: bool) -> str:
    if not header:    # Hive text: fields as they are, \N for NULL
        rows = zip(*_text_columns(table, "%Y-%m-%d %H:%M:%S", HIVE_NULL))
        return "".join(delimiter.join(row) + "\n" for row in rows)
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(table.column_names)
    writer.writerows(zip(*_text_columns(table, "%Y-%m-%d %H:%M:%S", "")))
    return out.getvalue()


def _json_lines(table: pa.Table) -> str:
    names = table.column_names
    columns = [_timestamps_as_text(c, "%Y-%m-%dT%H:%M:%SZ").to_pylist() if pa.types.is_timestamp(c.type)
               else _python_values(c) for c in table.columns]
    line = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str).encode
    return "".join(line(dict(zip(names, row))) + "\n" for row in zip(*columns))


# ------------------------------------------------------------------ Avro
def _avro_type(kind: pa.DataType):
    if pa.types.is_boolean(kind):
        return "boolean"
    if pa.types.is_integer(kind):
        return "long"
    if pa.types.is_floating(kind):
        return "double"
    if pa.types.is_timestamp(kind):
        return {"type": "long", "logicalType": "timestamp-micros"}
    if pa.types.is_date(kind):
        return {"type": "int", "logicalType": "date"}
    if pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
        return "bytes"
    return "string"      # text, and anything else written as its text


def avro_schema(table: pa.Table, name: str = "record") -> dict:
    """The Avro record schema of ``table``, from its Arrow schema.

    A column that holds missing values becomes the union ``["null", type]``
    (default ``null``); one without stays a plain type, which costs no
    union index per value.
    """
    fields = []
    for field, column in zip(table.schema, table.columns):
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", field.name):
            raise ValueError(f"Avro field names must match [A-Za-z_][A-Za-z0-9_]*; rename column {field.name!r}")
        entry = {"name": field.name, "type": _avro_type(field.type)}
        if column.null_count:
            entry["type"] = ["null", entry["type"]]
            entry["default"] = None
        fields.append(entry)
    return {"type": "record", "name": name, "fields": fields}


def _avro(table: pa.Table, schema: dict, codec: str) -> bytes:
    import fastavro
    columns = []
    for column in table.columns:
        if pa.types.is_timestamp(column.type):     # as Avro stores them: microseconds since 1970 (UTC)
            column = column.cast(pa.timestamp("us", column.type.tz), safe=False).cast(pa.int64())
        elif pa.types.is_date(column.type):        # days since 1970
            column = column.cast(pa.date32()).cast(pa.int32())
        values = _python_values(column)
        if _avro_type(column.type) == "string" and not pa.types.is_string(column.type):
            values = [None if v is None else str(v) for v in values]    # decimals, lists... as text
        columns.append(values)
    names = [field["name"] for field in schema["fields"]]
    out = io.BytesIO()
    fastavro.writer(out, fastavro.parse_schema(schema), (dict(zip(names, row)) for row in zip(*columns)),
                    codec=codec)
    return out.getvalue()
