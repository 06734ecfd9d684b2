"""What a statement returns, its values as Athena prints them, and the result file.

Athena's results are text: ``GetQueryResults`` returns every value as a
string (``VarCharValue``, absent for NULL) and the result file in S3 is a
CSV, while ``ResultSetMetadata`` names each column's type. So the engine's
typed values are rendered here the way Athena (a Java program) renders
them: doubles as Java prints them (``1.5E7``), timestamps and times with
milliseconds, arrays as ``[a, b]``, maps and rows as ``{k=v}`` (a row
without field names as ``{field0=a, field1=b}``), varbinary as hex bytes.

A SELECT can return more rows than fit in memory, so its rows are never
held: they arrive as Arrow record batches from the engine, are rendered a
column at a time (Arrow's own casts where they print what Java prints) and
streamed to ``<id>.csv`` in S3 (:class:`ResultWriter`, over a multipart
:class:`Upload`). ``GetQueryResults`` then reads its pages back from that
file (:class:`ResultPages`): only the first page stays in memory.
"""
from __future__ import annotations

import datetime
import decimal
import io
import re
from array import array
from dataclasses import dataclass, field
from typing import Callable, Iterable

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from localaws.core.s3 import split

#: Rows of one GetQueryResults page at most; the result file is indexed every PAGE rows.
PAGE = 1000


@dataclass
class Result:
    """What a statement produced.

    Small results made in Python (DDL, SHOW, DESCRIBE) carry their ``rows``
    as text; a SELECT carries ``batches`` (Arrow record batches streamed by
    the engine) and ``close``, which releases the engine once they are read.
    """
    statement_type: str                       # DDL | DML | UTILITY
    columns: list[tuple[str, str]] = field(default_factory=list)   # (name, Athena type)
    rows: list[list[str | None]] = field(default_factory=list)
    written: list[str] = field(default_factory=list)               # s3:// URIs (CTAS, INSERT, UNLOAD)
    substatement: str = ""
    batches: Iterable[pa.RecordBatch] | None = None
    close: Callable[[], None] = lambda: None
    update_count: int | None = None           # rows written by CTAS / INSERT INTO


# --------------------------------------------------------------------------
# Types
# --------------------------------------------------------------------------
_ATHENA_TYPES = [("VARCHAR", "varchar"), ("BIGINT", "bigint"), ("HUGEINT", "bigint"), ("UBIGINT", "bigint"),
                 ("INTEGER", "integer"), ("UINTEGER", "bigint"), ("SMALLINT", "smallint"),
                 ("USMALLINT", "integer"), ("TINYINT", "tinyint"), ("UTINYINT", "smallint"),
                 ("DOUBLE", "double"), ("FLOAT", "real"), ("BOOLEAN", "boolean"), ("DATE", "date"),
                 ("TIMESTAMP WITH TIME ZONE", "timestamp with time zone"), ("TIMESTAMP", "timestamp"),
                 ("TIME WITH TIME ZONE", "time with time zone"), ("TIME", "time"), ("BLOB", "varbinary"),
                 ("INTERVAL", "interval day to second"), ("UUID", "varchar"), ("JSON", "json"),
                 ("NULL", "unknown")]


def athena_type(duck: str) -> str:
    """The Athena (Trino) type of a DuckDB result type: ``INTEGER`` -> ``integer``,
    ``DECIMAL(10,2)`` -> ``decimal(10,2)``, ``VARCHAR[]`` -> ``array``, ``STRUCT(...)`` -> ``row``."""
    duck = duck.upper().strip('"')
    if duck.endswith("]"):
        return "array"
    if duck.startswith(("STRUCT", "TUPLE")):
        return "row"
    if duck.startswith("MAP"):
        return "map"
    if duck.startswith("DECIMAL"):
        return duck.lower().replace(" ", "")
    for prefix, name in _ATHENA_TYPES:
        if duck.startswith(prefix):
            return name
    return duck.lower()


# Precision that Athena reports for each type in ColumnInfo (what PyAthena's
# cursor.description shows against Athena engine 3).
PRECISION = {"varchar": 2147483647, "char": 1, "bigint": 19, "integer": 10, "smallint": 5, "tinyint": 3,
             "double": 17, "real": 17, "decimal": 38, "varbinary": 1073741824, "timestamp": 3,
             "timestamp with time zone": 3, "time": 3, "time with time zone": 3}
REPORTED = {"real": "float"}     # Athena reports REAL as Hive's "float"


def column_info(name: str, athena: str) -> dict:
    """One ``ColumnInfo`` of ``ResultSetMetadata``, as Athena describes a column.

    The type's parameters become ``Precision`` and ``Scale``:
    ``decimal(10,2)`` -> ``decimal`` 10, 2; ``varchar(10)`` -> ``varchar`` 10.
    """
    m = re.fullmatch(r"([a-z ]+?)\s*(?:\((\d+)(?:,\s*(\d+))?\))?", athena)
    base, p, s = (m.group(1), m.group(2), m.group(3)) if m else (athena, None, None)
    return {"CatalogName": "hive", "SchemaName": "", "TableName": "", "Name": name, "Label": name,
            "Type": REPORTED.get(base, base), "Precision": int(p) if p else PRECISION.get(base, 0),
            "Scale": int(s) if s else 0, "Nullable": "UNKNOWN", "CaseSensitive": base in ("varchar", "char")}


def declared_text_types(query, tables: dict) -> dict[str, str]:
    """``varchar(n)`` / ``char(n)`` of a query's text columns, by output name.

    DuckDB keeps no length with its VARCHAR, so where Athena would report
    one it is found in the query: a ``CAST(x AS VARCHAR(10))`` in the select
    list, or a column (or ``*``) of a catalog table declared ``varchar(10)``.
    ``query`` is the parsed query, ``tables`` its catalog tables by alias
    (``catalog.Table``).
    """
    from sqlglot import exp
    select = query
    while isinstance(select, exp.SetOperation):
        select = select.this
    if not isinstance(select, exp.Select):
        return {}
    bounded = re.compile(r"(?:var)?char\(\d+\)")

    def of(qualifier: str) -> list:
        if not qualifier:
            return list(tables.values())
        return [tables[qualifier.lower()]] if qualifier.lower() in tables else []

    def declared(qualifier: str, column: str) -> str | None:
        kinds = {t for table in of(qualifier) for c, t in table.columns + table.partition_keys if c == column.lower()}
        return kinds.pop() if len(kinds) == 1 and bounded.fullmatch(next(iter(kinds))) else None

    out = {}
    for item in select.expressions:
        inner, name = (item.this if isinstance(item, exp.Alias) else item), item.alias_or_name.lower()
        star = isinstance(inner, exp.Star) or isinstance(inner, exp.Column) and isinstance(inner.this, exp.Star)
        if star:
            for table in of(inner.table if isinstance(inner, exp.Column) else ""):
                out.update({c: t for c, t in table.columns + table.partition_keys if bounded.fullmatch(t)})
        elif isinstance(inner, exp.Cast) and bounded.fullmatch(inner.to.sql("trino").lower().replace(" ", "")):
            out[name] = inner.to.sql("trino").lower().replace(" ", "")
        elif isinstance(inner, exp.Column) and declared(inner.table, inner.name):
            out[name] = declared(inner.table, inner.name)
    return out


# --------------------------------------------------------------------------
# Values as text
# --------------------------------------------------------------------------
def java_number(shortest: str) -> str:
    """A float as Java prints it (``Double.toString``), from its shortest repr:
    ``12.0``, ``1.5E7``, ``1.0E-4`` (scientific below 10^-3 and from 10^7 on)."""
    if shortest in ("nan", "inf", "-inf"):
        return {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}[shortest]
    value = decimal.Decimal(shortest)
    sign = "-" if value.is_signed() else ""
    value = abs(value)
    if value == 0:
        return sign + "0.0"
    if decimal.Decimal("0.001") <= value < decimal.Decimal(10_000_000):
        text = format(value.normalize(), "f")
        return sign + (text if "." in text else text + ".0")
    _, digits, exponent = value.normalize().as_tuple()
    mantissa = f"{digits[0]}." + ("".join(map(str, digits[1:])) or "0")
    return f"{sign}{mantissa}E{len(digits) - 1 + exponent}"


def java_double(value: float) -> str:
    """Doubles as Athena (Java) prints them: 12.0, 1.5E7, 1.0E-4."""
    return java_number(repr(float(value)))


def java_real(value: float) -> str:
    """REALs (32-bit floats) as Java prints them: the shortest text that is the same
    float (1.1, not 1.100000023841858)."""
    import numpy
    return java_number(str(numpy.float32(value)))


def _timestamp(value: datetime.datetime) -> str:
    text = value.strftime("%Y-%m-%d %H:%M:%S.") + f"{value.microsecond // 1000:03d}"
    return text + (" UTC" if value.tzinfo is not None else "")


def _row_names(kind: pa.StructType) -> list[str]:
    """A row's field names. An anonymous ROW (``ROW('Bob', 38)``) reaches Arrow with
    made-up names (``element1``... or ``_0``...); Athena prints them ``field0``..."""
    names = [kind.field(i).name for i in range(kind.num_fields)]
    made_up = ([f"element{i + 1}" for i in range(len(names))], [f"_{i}" for i in range(len(names))])
    if names in made_up or not any(names):
        return [f"field{i}" for i in range(len(names))]
    return names


def render(value, kind: pa.DataType | None = None) -> str | None:
    """One value as Athena's result set shows it (a string, or None for NULL).

    ``kind`` is the value's Arrow type when known (it tells a REAL from a
    DOUBLE, a MAP from a list of pairs); otherwise the Python type decides.
    Inside arrays, maps and rows a NULL prints as ``null`` and text as is.
    """
    if value is None:
        return None
    nested = lambda v, k=None: "null" if v is None else render(v, k)   # noqa: E731
    if kind is not None and pa.types.is_map(kind):
        return "{" + ", ".join(f"{nested(k, kind.key_type)}={nested(v, kind.item_type)}"
                               for k, v in value) + "}"
    if kind is not None and pa.types.is_interval(kind):      # day to second: 3 04:05:06.789
        seconds, nanos = divmod(value.nanoseconds, 10**9)
        clock = datetime.time(seconds // 3600 % 24, seconds // 60 % 60, seconds % 60, nanos // 1000)
        return f"{value.days + seconds // 86400} {render(clock)}"
    if kind is not None and pa.types.is_struct(kind):
        names = _row_names(kind)
        return "{" + ", ".join(f"{n}={nested(value.get(kind.field(i).name), kind.field(i).type)}"
                               for i, n in enumerate(names)) + "}"
    if isinstance(value, (list, tuple)):
        inner = kind.value_type if kind is not None and pa.types.is_list(kind) else None
        return "[" + ", ".join(nested(v, inner) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={nested(v)}" for k, v in value.items()) + "}"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return java_real(value) if kind is not None and pa.types.is_float32(kind) else java_double(value)
    if isinstance(value, datetime.datetime):
        return _timestamp(value)
    if isinstance(value, datetime.time):
        return value.strftime("%H:%M:%S.") + f"{value.microsecond // 1000:03d}"
    if isinstance(value, decimal.Decimal):
        return format(value, "f")
    if isinstance(value, bytes):
        return value.hex(" ")
    return str(value)


def text(column: pa.Array) -> pa.Array:
    """A result column as Athena prints it: a string array, NULL where the value is NULL.

    Integers, decimals, dates, booleans and text print the same in Arrow
    and in Java, so Arrow casts them (fast); timestamps are formatted by
    Arrow with milliseconds; everything else goes value by value through
    :func:`render`.
    """
    kind = column.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_integer(kind) \
            or pa.types.is_decimal(kind) or pa.types.is_date(kind) or pa.types.is_boolean(kind):
        return column.cast(pa.string())
    if pa.types.is_timestamp(kind):
        millis = column.cast(pa.timestamp("ms", "UTC" if kind.tz else None), safe=False)
        printed = pc.strftime(millis, format="%Y-%m-%d %H:%M:%S")
        return pc.binary_join_element_wise(printed, " UTC", "") if kind.tz else printed
    return pa.array([render(v, kind) for v in column.to_pylist()], pa.string())


# --------------------------------------------------------------------------
# The result file
# --------------------------------------------------------------------------
class Upload:
    """One S3 object written as its bytes arrive, in parts of 8 MiB (a multipart upload),
    so that memory holds one part at most. An object that fits in one part is sent with
    a single PutObject on :meth:`close`; :meth:`abort` leaves nothing behind."""

    PART = 8 * 1024 * 1024

    def __init__(self, client, uri: str):
        self.client, (self.bucket, self.key) = client, split(uri)
        self.buffer, self.parts, self.upload_id = bytearray(), [], None

    def write(self, data: bytes) -> None:
        self.buffer += data
        if len(self.buffer) >= self.PART:
            self._send_part()

    def _send_part(self) -> None:
        if self.upload_id is None:
            self.upload_id = self.client.create_multipart_upload(Bucket=self.bucket, Key=self.key)["UploadId"]
        number = len(self.parts) + 1
        etag = self.client.upload_part(Bucket=self.bucket, Key=self.key, UploadId=self.upload_id,
                                       PartNumber=number, Body=self.buffer)["ETag"]
        self.parts.append({"PartNumber": number, "ETag": etag})
        self.buffer = bytearray()

    def close(self) -> None:
        if self.upload_id is None:
            self.client.put_object(Bucket=self.bucket, Key=self.key, Body=bytes(self.buffer))
            return
        if self.buffer:
            self._send_part()
        self.client.complete_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=self.upload_id,
                                              MultipartUpload={"Parts": self.parts})

    def abort(self) -> None:
        if self.upload_id is not None:
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=self.upload_id)
        self.buffer = bytearray()


def rows_batch(columns: list[tuple[str, str]], rows: list[list[str | None]]) -> pa.RecordBatch:
    """Rows already rendered as text (made in Python) as one record batch."""
    return pa.record_batch([pa.array([row[i] for row in rows], pa.string()) for i in range(len(columns))],
                           names=[name for name, _ in columns])


_CSV = pacsv.WriteOptions(include_header=False, quoting_style="all_valid")


def csv_lines(columns: list[pa.Array]) -> bytes:
    """Rows as Athena's result CSV writes them: every value quoted, NULL as nothing."""
    out = io.BytesIO()
    pacsv.write_csv(pa.Table.from_arrays(columns, names=[f"c{i}" for i in range(len(columns))]), out, _CSV)
    return out.getvalue()


@dataclass
class ResultPages:
    """Where ``GetQueryResults`` finds a result's rows.

    ``head`` holds the first :data:`PAGE` data rows (most results are no
    bigger); ``offsets[i]`` is the byte offset of data row ``i * PAGE`` in
    the CSV at ``uri`` (plus the file's size last), so any page is one
    ranged GET of at most two indexed blocks. ``header``: whether the rows
    start with the column names (a SELECT's do; DDL output and CTAS do not).
    """
    columns: list[tuple[str, str]]
    header: bool = True
    head: list[list[str | None]] = field(default_factory=list)
    count: int = 0
    uri: str = ""
    offsets: array = field(default_factory=lambda: array("q"))

    @classmethod
    def of_rows(cls, columns, rows, header: bool) -> "ResultPages":
        """Pages of a small result made in Python (DDL, SHOW...): all in memory."""
        return cls(columns, header, rows, len(rows))

    @property
    def total(self) -> int:
        """The number of rows GetQueryResults returns in all, the header row included."""
        return self.count + (1 if self.header else 0)

    def rows(self, start: int, stop: int, s3) -> list[list[str | None]]:
        """Rows ``start`` to ``stop`` (exclusive) of what GetQueryResults returns; ``s3`` reads the file."""
        names = [[name for name, _ in self.columns]] if self.header else []
        if self.header:
            start, stop = start - 1, stop - 1
        out = names if start < 0 else []
        start, stop = max(start, 0), min(stop, self.count)
        if stop <= len(self.head):
            return out + self.head[start:stop]
        first, last = start // PAGE, min(-(-stop // PAGE), len(self.offsets) - 1)
        data = s3.read(self.uri, self.offsets[first], self.offsets[last] - 1)
        return out + parse_csv(data, len(self.columns))[start - first * PAGE:stop - first * PAGE]


def parse_csv(data: bytes, width: int) -> list[list[str | None]]:
    """Rows of Athena's result CSV back as text: an unquoted empty field is NULL, ``""`` an empty string."""
    names = [f"c{i}" for i in range(width)]
    table = pacsv.read_csv(io.BytesIO(data), read_options=pacsv.ReadOptions(column_names=names),
                           parse_options=pacsv.ParseOptions(newlines_in_values=True, ignore_empty_lines=False),
                           convert_options=pacsv.ConvertOptions(
                               column_types={n: pa.string() for n in names}, strings_can_be_null=True,
                               quoted_strings_can_be_null=False, null_values=[""]))
    return [list(row) for row in zip(*(c.to_pylist() for c in table.columns))]


class ResultWriter:
    """Streams a result set to its CSV: the header row, then each record batch rendered
    (:func:`text`) and written :data:`PAGE` rows at a time, so the file is indexed for
    :class:`ResultPages` as it is written. ``check()`` raises when the query was cancelled."""

    def __init__(self, upload: Upload, columns: list[tuple[str, str]], check: Callable[[], None]):
        self.upload, self.check, self.size = upload, check, 0
        self.pages = ResultPages(columns, uri=f"s3://{upload.bucket}/{upload.key}")
        self._write(csv_lines([pa.array([name], pa.string()) for name, _ in columns]))

    def _write(self, data: bytes) -> None:
        self.upload.write(data)
        self.size += len(data)

    def write(self, batch: pa.RecordBatch) -> None:
        self.check()
        columns, pages, done = [text(c) for c in batch.columns], self.pages, 0
        while done < batch.num_rows:
            take = min(batch.num_rows - done, PAGE - pages.count % PAGE)
            part = [c.slice(done, take) for c in columns]
            if pages.count % PAGE == 0:
                pages.offsets.append(self.size)
            if pages.count < PAGE:
                pages.head.extend(list(row) for row in zip(*(c.to_pylist() for c in part)))
            self._write(csv_lines(part))
            pages.count += take
            done += take

    def close(self) -> ResultPages:
        self.pages.offsets.append(self.size)
        self.upload.close()
        return self.pages
