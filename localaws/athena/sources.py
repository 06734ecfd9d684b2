"""Reading a catalog table's S3 files into DuckDB, for one query.

Athena never loads data: each query reads the table's files from S3 with the
reader its SerDe names. Here every read goes through a
``pyarrow.fs.S3FileSystem`` signed with the query's own access key, so the
endpoint counts exactly the bytes this query pulled from S3 (that count is
``DataScannedInBytes``):

- **Parquet and ORC** become a pyarrow dataset that DuckDB scans lazily, with
  column projection and filter pushdown: a query that needs 2 of 19 columns
  reads only those column chunks plus the file's footer, as Athena does. The
  footer is read at its real length (:class:`ExactTail`): pyarrow's readers
  would fetch a fixed guess of the file's end (64 KiB for Parquet, 16 KiB for
  ORC), which for a file of 50 KB is the whole file, and would make small
  files look 20 times dearer in bytes than they are.
- **Text** (CSV/TSV via LazySimpleSerDe or OpenCSVSerde, JSON lines, logs via
  RegexSerDe or the GrokSerDe) is read whole (compressed bytes are what is
  scanned; gzip and zstd are detected from the file extension) and parsed in
  DuckDB with the SerDe's rules: delimiters, ``\\N`` for NULL, the regex of
  ``input.regex``, the grok pattern of ``input.format`` (matched in Python,
  see :meth:`Source._grok`), JSON keys by column name, one JSON record per
  line (:meth:`Source._openx`). A value that does not parse as the column's type
  becomes NULL, as in Hive. In delimited text (LazySimpleSerDe) arrays, maps
  and structs are split by one more delimiter per level of nesting
  (``collection.delim``, default ``\\x02``, between items and struct fields;
  ``mapkey.delim``, default ``\\x03``, between a key and its value; then
  ``\\x04``, ``\\x05``...), and BINARY values are base64, as Hive writes them.
- **Avro** is decoded with fastavro (a row format: every byte is read).

A table's LOCATION is a folder: its files are what a listing of
``<LOCATION>/`` returns. A LOCATION naming one object
(``s3://bucket/data/orders.csv``, as a Glue crawler writes for each file of
a folder whose files do not belong together) therefore reads nothing, and
the query returns zero rows, as on Athena (:func:`data_files`).

Partition columns are not in the files: their values come from the
partition (catalog, MSCK REPAIR, or partition projection), and only the
partitions the WHERE clause can match are read at all.
"""
from __future__ import annotations

import functools
import io
import json

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs
from botocore.exceptions import ClientError

from localaws.core.s3 import folder, join, split
from .catalog import OPENX_JSON, Partition, Table
from .errors import QueryFailed, DATA_ERROR

SKIP_PREFIXES = ("_", ".")   # Hive/Athena ignore files like _SUCCESS and .hidden


@functools.lru_cache(maxsize=None)
def duck_type(hive_type: str) -> str:
    """The DuckDB type for a Hive column type (``array<string>`` -> ``TEXT[]``)."""
    from sqlglot import exp
    try:
        return exp.DataType.build(hive_type, dialect="hive").sql("duckdb")
    except Exception:
        raise QueryFailed("HIVE_INVALID_METADATA", f"Unknown column type '{hive_type}'") from None


def s3_location(uri: str) -> tuple[str, str]:
    """(bucket, key prefix) of a table or partition LOCATION; Athena reads only S3."""
    try:
        return split(uri)
    except ValueError:
        raise QueryFailed("HIVE_INVALID_METADATA", f"Location '{uri}' is not an s3:// URI") from None


def list_files(s3, location: str) -> list[str]:
    """``bucket/key`` of every data file under ``location``, sorted (listing is not billed)."""
    return list(data_files(s3, location))


def data_files(s3, location: str) -> dict[str, int]:
    """``bucket/key`` -> size in bytes of every data file under ``location``, sorted by path.

    As in Hive, empty objects, "folder" markers and files whose name or
    folder starts with ``_`` or ``.`` (``_SUCCESS``, ``.hidden/``) are not data.
    The sizes come with the listing, so readers need not ask S3 for them again.

    ``location`` is always a folder: ``s3://b/data/orders.csv`` lists
    ``data/orders.csv/``, which holds nothing, even when ``data/orders.csv``
    is an object. Athena reads such a table (a Glue crawler writes one per
    file when a folder's files have unrelated schemas) as zero records; AWS's
    fix is a prefix per table (``s3://b/orders/orders.csv``) and the table's
    LOCATION set to that prefix:
    https://repost.aws/knowledge-center/athena-empty-results
    """
    bucket, prefix = s3_location(location)
    prefix = folder(prefix) if prefix else ""
    files = {}
    try:
        objects = s3.list(join(bucket, prefix))
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "NoSuchBucket":
            raise
        raise QueryFailed("HIVE_FILESYSTEM_ERROR",
                          f"The bucket of location {location} does not exist", error_type=DATA_ERROR) from None
    for obj in objects:
        name = obj["Key"][len(prefix):]
        if obj["Size"] == 0 or obj["Key"].endswith("/"):
            continue
        if any(part.startswith(SKIP_PREFIXES) for part in name.split("/")):
            continue
        files[f"{bucket}/{obj['Key']}"] = obj["Size"]
    return dict(sorted(files.items()))


HIVE_NULL = "\\N"
# The delimiters of LazySimpleSerDe by level of nesting (Hive's defaults): fields of a row,
# then items of an array / entries of a map / fields of a struct, then map keys, then deeper.
HIVE_SEPARATORS = [chr(c) for c in (1, 2, 3, 4, 5, 6, 7, 8, 11, *range(14, 27), 28, 29, 30, 31)]


def hive_separators(params: dict) -> list[str]:
    """The separators of a delimited table by level, with its SERDEPROPERTIES
    (``colelction.delim`` is Hive's own historical spelling, still read)."""
    levels = list(HIVE_SEPARATORS)
    levels[1] = params.get("collection.delim", params.get("colelction.delim", levels[1]))
    levels[2] = params.get("mapkey.delim", levels[2])
    return levels


def hive_text(expr: str, hive_type: str, separators: list[str], level: int = 1) -> str:
    """DuckDB SQL that reads the text ``expr`` of a LazySimpleSerDe field as ``hive_type``.

    An array's items (and a struct's fields) are split by the separator of
    their level, a map's entries too and each key from its value by the next
    one; what is inside goes one level deeper. Primitive values are cast
    (NULL when they do not parse), ``\\N`` is NULL, BINARY is base64
    (raw text when it is not), as Hive reads them.
    """
    from sqlglot import exp
    kind = exp.DataType.build(duck_type(hive_type), dialect="duckdb") if isinstance(hive_type, str) else hive_type
    t, here = exp.DataType.Type, sql_literal(separators[level])
    if kind.this in (t.ARRAY, t.MAP):
        var = f"x{level}"
        if kind.this == t.ARRAY:
            item = hive_text(var, kind.expressions[0], separators, level + 1)
        else:
            pair = f"string_split({var}, {sql_literal(separators[level + 1])})"
            item = (f"struct_pack(key := {hive_text(f'{pair}[1]', kind.expressions[0], separators, level + 2)}, "
                    f"value := {hive_text(f'{pair}[2]', kind.expressions[1], separators, level + 2)})")
        items = f"list_transform(string_split({expr}, {here}), lambda {var}: {item})"
        items = f"map_from_entries({items})" if kind.this == t.MAP else items
        return f"CASE WHEN {expr} = '' THEN {'MAP {}' if kind.this == t.MAP else '[]'} ELSE {items} END"
    if kind.this == t.STRUCT:
        parts = f"string_split({expr}, {here})"
        fields = [f"{ident(f.name.lower())} := {hive_text(f'{parts}[{i + 1}]', f.args['kind'], separators, level + 1)}"
                  for i, f in enumerate(kind.expressions)]
        return f"CASE WHEN {expr} IS NOT NULL THEN struct_pack({', '.join(fields)}) END"
    value = f"NULLIF({expr}, {sql_literal(HIVE_NULL)})"
    if kind.this in (t.BINARY, t.VARBINARY):
        return f"COALESCE(TRY(from_base64({value})), encode({value}))"
    return f"TRY_CAST({value} AS {kind.sql('duckdb')})"


def is_complex(hive_type: str) -> bool:
    return hive_type.startswith(("array<", "struct<", "map<"))


def json_shape(hive_type: str):
    """The json_transform structure for a Hive type: {"a": ...}, [...], "INTEGER"."""
    from sqlglot import exp
    return _shape(exp.DataType.build(hive_type, dialect="hive"))


def _shape(dtype):
    from sqlglot import exp
    kind = dtype.this
    if kind == exp.DataType.Type.STRUCT:
        return {f.name.lower(): _shape(f.args["kind"]) for f in dtype.expressions}
    if kind == exp.DataType.Type.ARRAY:
        return [_shape(dtype.expressions[0])]
    if kind == exp.DataType.Type.MAP:
        return dtype.sql("duckdb")
    return dtype.sql("duckdb")


def match_keys(value, shape):
    """``value`` with its object keys matched case-insensitively to ``shape``.

    Hive's JSON SerDes (and the CloudTrail SerDe) find a column's value by
    its name in any case; only the keys the table declares are matched
    (the content of a string column stays as written, e.g. requestParameters).
    """
    if isinstance(shape, dict) and isinstance(value, dict):
        by_lower = {str(k).lower(): v for k, v in value.items()}
        return {name: match_keys(by_lower.get(name), sub) for name, sub in shape.items()}
    if isinstance(shape, list) and isinstance(value, list):
        return [match_keys(v, shape[0]) for v in value]
    return value


def needs_lowercase(lines: list[str], sample: int = 50) -> bool:
    """True when keys with capitals appear in the first lines."""
    def has_upper(value) -> bool:
        if isinstance(value, dict):
            return any(k != k.lower() or has_upper(v) for k, v in value.items())
        if isinstance(value, list):
            return any(has_upper(v) for v in value)
        return False
    for line in lines[:sample]:
        try:
            if has_upper(json.loads(line)):
                return True
        except ValueError:
            continue
    return False


@functools.lru_cache(maxsize=32)
def compile_grok(pattern: str, custom: str | None):
    """A ``GrokSerDe`` table's pattern as one Python regex (compiled once per pattern)."""
    from localaws.core import grok
    try:
        return grok.compile(pattern, custom)
    except grok.GrokError as exc:
        raise QueryFailed("HIVE_INVALID_METADATA", f"GrokSerDe 'input.format': {exc}") from None


def decompress(path: str, data: bytes) -> bytes:
    """Text files compressed as Athena expects them, detected by extension."""
    if path.endswith(".gz"):
        import gzip
        return gzip.decompress(data)
    if path.endswith((".zst", ".zstd")):
        return pa.input_stream(pa.BufferReader(data), compression="zstd").read()
    if path.endswith(".bz2"):
        import bz2
        return bz2.decompress(data)
    return data


def sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# -- Parquet / ORC footers read at their real length --------------------------
#: How much of a file's end pyarrow reads first to find the footer (Arrow's
#: ``footer_read_size`` for Parquet, the ORC library's ``DIRECTORY_SIZE_GUESS``).
TAIL_GUESS = {"parquet": 64 * 1024, "orc": 16 * 1024}


def _varints(data: bytes) -> dict[int, int]:
    """The varint fields (field number -> value) of a protobuf message; others skipped."""
    fields, i = {}, 0

    def varint():
        nonlocal i
        value = shift = 0
        while True:
            byte = data[i]
            i += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                return value
    while i < len(data):
        key = varint()
        number, wire = key >> 3, key & 7
        if wire == 0:
            fields[number] = varint()
        elif wire == 2:
            length = varint()          # (read first: ``i += varint()`` would add to the old i)
            i += length
        elif wire == 1:
            i += 8
        elif wire == 5:
            i += 4
        else:
            break
    return fields


class ExactTail:
    """One Parquet or ORC object as pyarrow's readers see it, with its footer read exactly.

    The readers open a file by reading a fixed guess of its end (64 KiB for
    Parquet) and keep only the footer from it. Here that first read is
    answered with the real footer, fetched at its real length (Parquet: the
    last 8 bytes give the footer's length, then exactly that many bytes; ORC:
    the last byte gives the postscript's length, the postscript the
    footer's), and zeros in front of it, which the readers discard. Every
    other read (column chunks, stripes) is a ranged GET of exactly the bytes
    asked for. All reads are signed with the query's key, so the endpoint
    meters them.
    """

    def __init__(self, reader, path: str, size: int, fmt: str, tails: dict):
        self.reader, self.path, self.size, self.fmt = reader, path, size, fmt
        self.bucket, _, self.key = path.partition("/")
        self.tails, self.pos, self.closed = tails, 0, False   # tails: path -> bytes, shared per table

    def get(self, start: int, end: int) -> bytes:
        """Bytes ``[start, end)`` of the object, in one ranged GET."""
        if end <= start:
            return b""
        got = self.reader.get_object(Bucket=self.bucket, Key=self.key, Range=f"bytes={start}-{end - 1}")
        return got["Body"].read()

    def tail(self) -> bytes:
        """The footer and what follows it, read once per table of a query."""
        if self.path not in self.tails:
            size = self.size
            if self.fmt == "parquet" and size >= 12:
                last = self.get(size - 8, size)
                length = int.from_bytes(last[:4], "little") + 8
                tail = (self.get(size - length, size - 8) + last) if length <= size else last
            elif self.fmt == "orc" and size >= 4:
                last = self.get(size - 1, size)
                ps_len = last[0]
                postscript = self.get(size - 1 - ps_len, size - 1)
                footer_len = _varints(postscript).get(1, 0)
                start = max(0, size - 1 - ps_len - footer_len)
                tail = self.get(start, size - 1 - ps_len) + postscript + last
            else:
                tail = self.get(0, size)
            self.tails[self.path] = tail
        return self.tails[self.path]

    def read_at(self, offset: int, nbytes: int) -> bytes:
        end = min(self.size, offset + nbytes)
        if offset >= end:
            return b""
        guess = min(self.size, TAIL_GUESS[self.fmt])
        if end == self.size:
            tail = self.tail()
            tail_start = self.size - len(tail)
            if offset == self.size - guess and offset < tail_start:
                # the reader's opening guess: the footer, behind zeros it does not look at
                return bytes(tail_start - offset) + tail
            if offset >= tail_start:
                return tail[offset - tail_start:]
            return self.get(offset, tail_start) + tail
        return self.get(offset, end)

    # the file-like object pa.PythonFile wraps
    def read(self, nbytes: int = -1) -> bytes:
        nbytes = self.size - self.pos if nbytes is None or nbytes < 0 else nbytes
        data = self.read_at(self.pos, nbytes)
        self.pos += len(data)
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        self.pos = {0: 0, 1: self.pos, 2: self.size}[whence] + offset
        return self.pos

    def tell(self) -> int:
        return self.pos

    def close(self) -> None:
        self.closed = True

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def writable(self) -> bool:
        return False


class ExactTailFileSystem(pafs.FileSystemHandler):
    """A read-only pyarrow filesystem over one table's files (``bucket/key`` -> size)
    that opens each as an :class:`ExactTail`. Wrap it in ``pyarrow.fs.PyFileSystem``."""

    def __init__(self, reader, sizes: dict[str, int], fmt: str):
        self.reader, self.sizes, self.fmt = reader, sizes, fmt
        self.tails: dict[str, bytes] = {}

    def open_input_file(self, path):
        return pa.PythonFile(ExactTail(self.reader, path, self.sizes[path], self.fmt, self.tails), mode="r")

    def open_input_stream(self, path):
        return self.open_input_file(path)

    def get_type_name(self):
        return "localaws-s3-exact-tail"

    def normalize_path(self, path):
        return path

    def equals(self, other):
        return self is other

    def get_file_info(self, paths):
        return [pafs.FileInfo(p, pafs.FileType.File, size=self.sizes[p]) if p in self.sizes
                else pafs.FileInfo(p, pafs.FileType.NotFound) for p in paths]

    def get_file_info_selector(self, selector):
        base = selector.base_dir.rstrip("/") + "/"
        return [pafs.FileInfo(p, pafs.FileType.File, size=n) for p, n in self.sizes.items() if p.startswith(base)]

    def _read_only(self, *args):
        raise OSError("the table's files are read-only here")

    create_dir = delete_dir = delete_dir_contents = delete_root_dir_contents = _read_only
    delete_file = move = copy_file = open_output_stream = open_append_stream = _read_only


class Source:
    """One table of one query: an object DuckDB can scan plus the SQL that types it.

    ``s3`` is the stack's S3 (``core/s3.py``), used to list the files;
    ``fs`` (a pyarrow filesystem) and ``reader`` (a boto3 S3 client) read
    them, both signed with the query's own key so that the endpoint meters
    them; ``check()`` raises when the query was cancelled.
    """

    def __init__(self, table: Table, partitions: list[Partition] | None, *, s3, fs, reader,
                 check=lambda: None):
        self.table, self.fs, self.reader, self.check = table, fs, reader, check
        places = [(p.location, p) for p in partitions] if table.partition_keys else [(table.location, None)]
        self.files, self.sizes = [], {}          # [(bucket/key, its partition)], bucket/key -> bytes
        for location, partition in places:
            found = data_files(s3, location)
            self.files += [(f, partition) for f in found]
            self.sizes.update(found)

    CHUNK = 8 * 1024 * 1024

    def read_object(self, path: str) -> bytes:
        """A whole object, in 8 MiB ranged GETs signed with the query's key (so it is
        metered), checking between chunks whether the query was cancelled."""
        bucket, _, key = path.partition("/")
        first = self.reader.get_object(Bucket=bucket, Key=key, Range=f"bytes=0-{self.CHUNK - 1}")
        parts = [first["Body"].read()]
        total = int(first["ContentRange"].rsplit("/", 1)[1]) if first.get("ContentRange") else len(parts[0])
        while sum(map(len, parts)) < total:
            self.check()
            start = sum(map(len, parts))
            got = self.reader.get_object(Bucket=bucket, Key=key,
                                         Range=f"bytes={start}-{start + self.CHUNK - 1}")
            parts.append(got["Body"].read())
        return b"".join(parts)

    @property
    def files_opened(self) -> int:
        return len(self.files)

    def register(self, con, name: str) -> None:
        """Create the view ``name`` in DuckDB with the table's columns and types."""
        reader = self.table.reader
        raw = f"{name}__raw"
        if reader in ("parquet", "orc"):
            obj, select = self._columnar(reader)
        elif reader == "avro":
            obj, select = self._avro()
        else:
            obj, select = self._text(reader, con)
        con.register(raw, obj)
        source = ident(raw)
        if reader in ("json", "cloudtrail"):   # parse each line once, then pick the fields
            source = f"(SELECT *, {self._json_struct()} AS __j FROM {ident(raw)})"
        con.execute(f"CREATE TEMP VIEW {ident(name)} AS SELECT {select} FROM {source}")

    # -- partition columns -----------------------------------------------------
    def _partition_select(self) -> list[str]:
        return [f"TRY_CAST({ident(c)} AS {duck_type(t)}) AS {ident(c)}"
                for c, t in self.table.partition_keys]

    def _partition_arrays(self, counts: list[int]) -> dict[str, pa.Array]:
        out = {}
        for col, _ in self.table.partition_keys:
            values = []
            for (_, part), n in zip(self.files, counts):
                values.extend([part.values[col]] * n)
            out[col] = pa.array(values, pa.string())
        return out

    def _empty(self) -> pa.Table:
        names = [c for c, _ in self.table.columns] + [c for c, _ in self.table.partition_keys]
        return pa.table({n: pa.array([], pa.string()) for n in names})

    # -- Parquet / ORC: lazy, with projection and pushdown ------------------
    def _columnar(self, reader: str):
        fmt = ds.ParquetFileFormat() if reader == "parquet" else ds.OrcFileFormat()
        data_cols = self.table.columns
        if not self.files:
            return self._empty(), ", ".join(
                [f"CAST(NULL AS {duck_type(t)}) AS {ident(c)}" for c, t in data_cols] + self._partition_select())
        partitions = [ds.scalar(True) if p is None else
                      functools.reduce(lambda a, b: a & b,
                                       [ds.field(c) == p.values[c] for c, _ in self.table.partition_keys])
                      for _, p in self.files]
        # Footers read at their real length, column chunks as asked (ExactTail); the sizes
        # come from the listing, so no HEAD asks for them.
        fs = pafs.PyFileSystem(ExactTailFileSystem(self.reader, self.sizes, reader))
        fragments = [fmt.make_fragment(path, filesystem=fs, partition_expression=expr,
                                       file_size=self.sizes[path])
                     for (path, _), expr in zip(self.files, partitions)]
        try:
            # The first file's footer gives the physical schema; the fragment keeps it,
            # so the scan does not read that footer a second time.
            if reader == "parquet":
                fragments[0].ensure_complete_metadata()
            physical = fragments[0].physical_schema
        except Exception as exc:
            raise QueryFailed("HIVE_CANNOT_OPEN_SPLIT", f"Error opening Hive split s3://{self.files[0][0]}: "
                              f"{type(exc).__name__}: {exc}", error_type=DATA_ERROR) from None
        by_lower = {f.name.lower(): f for f in physical}
        fields = [by_lower[c] for c, _ in data_cols if c in by_lower]
        fields += [pa.field(c, pa.string()) for c, _ in self.table.partition_keys]
        dataset = ds.FileSystemDataset(fragments, schema=pa.schema(fields), format=fmt, filesystem=fs)
        select = []
        for col, typ in data_cols:
            if col in by_lower:
                select.append(f"TRY_CAST({ident(by_lower[col].name)} AS {duck_type(typ)}) AS {ident(col)}")
            else:
                select.append(f"CAST(NULL AS {duck_type(typ)}) AS {ident(col)}")
        return dataset, ", ".join(select + self._partition_select())

    # -- Avro ---------------------------------------------------------------
    def _avro(self):
        import fastavro
        names = [c for c, _ in self.table.columns]
        parts, counts = [], []
        for path, _ in self.files:
            self.check()
            records = list(fastavro.reader(io.BytesIO(self.read_object(path))))
            counts.append(len(records))
            if records:
                t = pa.Table.from_pylist(records)
                lower = {n.lower(): n for n in t.column_names}
                parts.append(pa.table({c: t.column(lower[c]) if c in lower else pa.nulls(t.num_rows)
                                       for c in names}))
        if not parts:
            obj = self._empty()
        else:
            obj = pa.concat_tables(parts, promote_options="permissive")
            for col, arr in self._partition_arrays(counts).items():
                obj = obj.append_column(col, arr)
        select = [f"TRY_CAST({ident(c)} AS {duck_type(t)}) AS {ident(c)}" for c, t in self.table.columns]
        return obj, ", ".join(select + self._partition_select())

    # -- text: delimited, OpenCSV, JSON, regex ---------------------------------
    def _lines(self) -> tuple[list[str], list[int]]:
        skip = int(self.table.params.get("skip.header.line.count", "0"))
        lines, counts = [], []
        for path, _ in self.files:
            self.check()
            text = decompress(path, self.read_object(path)).decode("utf-8", "replace")
            if self.table.reader == "cloudtrail":
                # One JSON document per file; each element of "Records" is a row.
                records = json.loads(text).get("Records", []) if text.strip() else []
                shape = self.shape()
                lines.extend(json.dumps(match_keys(r, shape)) for r in records)
                counts.append(len(records))
                continue
            rows = text.split("\n")
            if rows and rows[-1] == "":
                rows.pop()
            rows = [r[:-1] if r.endswith("\r") else r for r in rows[skip:]]
            lines.extend(rows)
            counts.append(len(rows))
        return lines, counts

    def _text(self, reader: str, con):
        lines, counts = self._lines()
        if reader == "json" and self.table.serde == OPENX_JSON:
            lines = self._openx(lines, con)
        if reader == "json" and needs_lowercase(lines):
            # The OpenX JsonSerDe matches keys case-insensitively; Glue keeps
            # column names in lower case, so lower-case the keys once here.
            shape = self.shape()
            lines = [json.dumps(match_keys(json.loads(line), shape)) if line.strip() else line
                     for line in lines]
        arrays = {"__line": pa.array(lines, pa.string())}
        arrays.update(self._partition_arrays(counts))
        obj = pa.table(arrays)
        params = self.table.serde_params
        cols = self.table.columns
        if reader == "delimited":
            delim = params.get("field.delim", params.get("serialization.format", "\x01"))
            if delim == "1":
                delim = "\x01"
            parts = f"string_split(__line, {sql_literal(delim)})"
            levels = hive_separators(params)
            select = [f"{hive_text(f'NULLIF({parts}[{i + 1}], {sql_literal(HIVE_NULL)})', t, levels)} AS {ident(c)}"
                      for i, (c, t) in enumerate(cols)]
        elif reader == "opencsv":
            sep = params.get("separatorChar", ",")
            quote = params.get("quoteChar", '"')
            obj = self._opencsv(lines, counts, sep, quote)
            select = [f"TRY_CAST({ident(c)} AS {duck_type(t)}) AS {ident(c)}" for c, t in cols]
        elif reader in ("json", "cloudtrail"):
            select = [f"__j.{ident(c)} AS {ident(c)}" if is_complex(t) else
                      f"TRY_CAST(__j.{ident(c)} AS {duck_type(t)}) AS {ident(c)}" for c, t in cols]
        elif reader == "grok":
            obj = self._grok(lines, counts)
            select = [f"TRY_CAST({ident(c)} AS {duck_type(t)}) AS {ident(c)}" for c, t in cols]
        else:  # regex
            regex = params.get("input.regex")
            if not regex:
                raise QueryFailed("HIVE_INVALID_METADATA", "RegexSerDe needs the SERDEPROPERTIES 'input.regex'")
            names = "[" + ", ".join(sql_literal(f"g{i}") for i in range(len(cols))) + "]"
            match = f"regexp_full_match(__line, {sql_literal(regex)})"
            groups = f"regexp_extract(__line, {sql_literal(regex)}, {names})"
            select = [f"CASE WHEN {match} THEN TRY_CAST({groups}.g{i} AS {duck_type(t)}) END AS {ident(c)}"
                      for i, (c, t) in enumerate(cols)]
        return obj, ", ".join(select + self._partition_select())

    def _openx(self, lines: list[str], con) -> list[str]:
        """The lines of an OpenX JSON table as that SerDe reads them, each made a
        JSON object for ``json_transform`` (or ``null``: a row of NULLs).

        The SerDe reads one line at a time, whatever the table's ``jsonPath``
        (the property a crawler's JsonClassifier writes; Athena does not read it):

        - a line whose first non-blank character is neither ``{`` nor ``[``
          (a blank line, a line inside a pretty-printed document) is a row of
          NULLs;
        - a line that starts like JSON but does not parse (``{`` alone, the
          first line of a pretty-printed document) fails the query with
          ``HIVE_CURSOR_ERROR: Row is not a valid JSON Object``, or is a row of
          NULLs when the table says ``'ignore.malformed.json'='true'``; text
          after a complete object is ignored;
        - a line holding an array fills the columns by position (element 0
          goes to the first column), an empty array is a row of NULLs.

        So a file holding one JSON document (an array of records, or an
        object around one) gives one odd row when it is on one line, and fails
        when it is pretty-printed: Athena reads records only one per line.
        Validity is checked by DuckDB (``json_valid``) over all lines at once;
        Python parses only arrays and the lines DuckDB refused.
        """
        names = [c for c, _ in self.table.columns]
        ignore = self.table.serde_params.get("ignore.malformed.json", "").lower() == "true"
        decoder = json.JSONDecoder()

        def malformed(text: str, why: str) -> str:
            if ignore:
                return "null"
            raise QueryFailed("HIVE_CURSOR_ERROR", f"Row is not a valid JSON Object - JSONException: {why}: "
                              f"{text[:200]}", error_type=DATA_ERROR)

        def parsed(text: str) -> str:
            try:
                value, _ = decoder.raw_decode(text)      # what follows the document is ignored
            except ValueError as exc:
                return malformed(text, str(exc))
            if isinstance(value, list):
                value = dict(zip(names, value)) if value else None
            return json.dumps(value)

        out = []
        for line in lines:
            text = line.strip()
            if not text.startswith(("{", "[")):
                out.append("null")
            elif text.startswith("["):
                out.append(parsed(text))
            else:
                out.append(line)
        if out:
            check, name = pa.table({"i": pa.array(range(len(out)), pa.int64()),
                                    "line": pa.array(out, pa.string())}), f"__openx_{id(self)}"
            con.register(name, check)
            try:
                bad = [i for (i,) in con.execute(
                    f"SELECT i FROM {ident(name)} WHERE NOT json_valid(line) ORDER BY i").fetchall()]
            finally:
                con.unregister(name)
            for i in bad:
                out[i] = parsed(out[i].strip())
        return out

    def _grok(self, lines: list[str], counts: list[int]) -> pa.Table:
        """The columns of a ``GrokSerDe`` table, as text, one row per line.

        The SerDe property ``input.format`` is the grok pattern and
        ``input.grokCustomPatterns`` its own patterns (``localaws/core/grok.py``
        translates both into one Python regex: DuckDB's regex engine lacks the
        atomic groups and lookbehinds grok's standard patterns use). Each
        column takes the capture of the same name (a field ``%{INT:status}``,
        or a pattern written without one, ``%{SYSLOGBASE}`` -> ``syslogbase``),
        so the table's column order is what counts, not the pattern's; a
        column the pattern does not capture is NULL, and a line the pattern
        does not match is a row of NULLs.
        """
        pattern = self.table.serde_params.get("input.format")
        if not pattern:
            raise QueryFailed("HIVE_INVALID_METADATA", "GrokSerDe needs the SERDEPROPERTIES 'input.format'")
        compiled = compile_grok(pattern, self.table.serde_params.get("input.grokCustomPatterns"))
        names = [c for c, _ in self.table.columns]
        values: dict[str, list] = {n: [] for n in names}
        for line in lines:
            found = compiled.captures(line) or {}
            for n in names:
                values[n].append(found.get(n))
        table = pa.table({n: pa.array(v, pa.string()) for n, v in values.items()})
        for col, arr in self._partition_arrays(counts).items():
            table = table.append_column(col, arr)
        return table

    def _json_struct(self) -> str:
        """One json_transform per line: complex columns typed all the way down
        (an object read as a string column comes back as its JSON text, as with
        Hive's JSON SerDes); simple columns as text, typed afterwards."""
        return f"json_transform(__line, {sql_literal(json.dumps(self.shape()))})"

    def shape(self) -> dict:
        return {c: json_shape(t) if is_complex(t) else "VARCHAR" for c, t in self.table.columns}

    def _opencsv(self, lines, counts, sep, quote) -> pa.Table:
        import pyarrow.csv as pacsv
        names = [c for c, _ in self.table.columns]
        data = ("\n".join(lines) + "\n").encode()
        if not lines:
            table = pa.table({n: pa.array([], pa.string()) for n in names})
        else:
            table = pacsv.read_csv(io.BytesIO(data),
                                   read_options=pacsv.ReadOptions(column_names=names),
                                   parse_options=pacsv.ParseOptions(delimiter=sep, quote_char=quote,
                                                                    invalid_row_handler=lambda r: "skip"),
                                   convert_options=pacsv.ConvertOptions(
                                       column_types={n: pa.string() for n in names}))
        for col, arr in self._partition_arrays(counts).items():
            table = table.append_column(col, arr)
        return table
