"""COPY and UNLOAD: Redshift's bulk paths between Amazon S3 and the warehouse.

**COPY** loads a table from S3 objects. The leader lists every object whose
key starts with the ``FROM`` prefix (a *prefix*, not a folder:
``s3://b/sales`` also matches ``sales_2024.csv``), or reads a *manifest*
(``{"entries": [{"url": "s3://...", "mandatory": true}]}``) naming the exact
objects. On Redshift each slice then reads some of the files in parallel;
here the files are read one after the other, through the stack's S3 API,
so the endpoint counts the bytes as it would bill requests on AWS.

Each line (CSV or pipe-delimited text), JSON object (``JSON 'auto'``: keys
matched to column names) or Parquet row (columns matched by position)
becomes one *record*. Every field is checked against its column's type
(``TRY_CAST`` in DuckDB, all records at once): a record that does not fit
is *rejected* and described in **STL_LOAD_ERRORS** (file, line number,
column, type, the raw line, Redshift's error code and reason). With
``MAXERROR n`` up to ``n`` rejects are tolerated and the good records are
loaded; one more and **nothing** is loaded (COPY is one transaction) and the
statement fails with Redshift's message
``Load into table 't' failed.  Check 'stl_load_errors' system table for details.``

The good records go through the same path as INSERT (``storage.insert``):
staged once with the table's own column definitions, then routed to their
slices by DISTSTYLE, so a COPY and an INSERT of the same rows leave every
slice with the same rows.

A COPY into an **empty** table with a SORTKEY leaves every slice sorted
(SVV_TABLE_INFO.unsorted 0), as Redshift does: "When data is initially
loaded into the empty table, the rows are stored on disk in sorted order"
(the guide's *Sort keys* page). Into a table that already has rows, the new
rows join the unsorted region until VACUUM.

**UNLOAD** runs a query and writes its result under an S3 prefix: by default
one file per slice (``<prefix>0000_part_00``, ``0001_part_00``...: every
slice writes its share at once), one file with ``PARALLEL OFF``
(``<prefix>000``), pipe-delimited text, CSV or Parquet, optionally split into
``col=value/`` folders by ``PARTITION BY``. It refuses to write where files
already are unless ``ALLOWOVERWRITE`` (or ``CLEANPATH``, which deletes them
first).

Options are read by the small tokenizer below (sqlglot does not know COPY's
and UNLOAD's option lists).
"""
from __future__ import annotations

import bz2
import csv
import datetime
import decimal
import gzip
import io
import json
import re
import time
from dataclasses import dataclass, field

from . import ddl, errors, storage

#: SQLSTATE of COPY's and UNLOAD's failures: Redshift reports them as internal errors (XX000).
LOAD_FAILED = errors.INTERNAL_ERROR
MAX_RAW = 1024                # STL_LOAD_ERRORS.raw_line is char(1024)


# -- a tokenizer for COPY and UNLOAD ------------------------------------------------
TOKEN = re.compile(r"""
    (?P<space>\s+|--[^\n]*)
  | (?P<string>'(?:[^'\\]|\\.|'')*')
  | (?P<ident>"(?:[^"]|"")*")
  | (?P<word>[A-Za-z_][A-Za-z0-9_$]*)
  | (?P<number>\d+(?:\.\d+)?)
  | (?P<punct>[(),.;=*])
""", re.VERBOSE | re.DOTALL)
ESCAPES = {"t": "\t", "n": "\n", "r": "\r", "\\": "\\", "'": "'"}


@dataclass
class Token:
    kind: str      # string, ident, word, number, punct
    text: str      # as written
    pos: int       # 1-based position in the statement (for syntax errors)

    @property
    def value(self) -> str:
        """A string literal's content ('' and backslash escapes resolved), an identifier's name."""
        if self.kind == "string":
            body = self.text[1:-1].replace("''", "'")
            return re.sub(r"\\(.)", lambda m: ESCAPES.get(m.group(1), "\\" + m.group(1)), body)
        if self.kind == "ident":
            return self.text[1:-1].replace('""', '"')
        return self.text.lower() if self.kind == "word" else self.text


class Parser:
    """Walks the tokens of one COPY or UNLOAD statement."""

    def __init__(self, sql: str):
        self.tokens, pos = [], 0
        while pos < len(sql):
            match = TOKEN.match(sql, pos)
            if match is None:
                raise errors.SQLError(errors.SYNTAX_ERROR, "syntax error: unterminated quoted string"
                                      if sql[pos] in "'\"" else f'syntax error at or near "{sql[pos]}"', pos + 1)
            if match.lastgroup != "space":
                self.tokens.append(Token(match.lastgroup, match.group(), pos + 1))
            pos = match.end()
        while self.tokens and self.tokens[-1].text == ";":
            self.tokens.pop()
        self.i = 0

    @property
    def current(self) -> Token | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def done(self) -> bool:
        return self.current is None

    def error(self):
        token = self.current
        if token is None:
            raise errors.SQLError(errors.SYNTAX_ERROR, "syntax error at end of input")
        raise errors.SQLError(errors.SYNTAX_ERROR, f'syntax error at or near "{token.text}"', token.pos)

    def word(self) -> str | None:
        token = self.current
        return token.text.upper() if token is not None and token.kind == "word" else None

    def accept(self, *words: str) -> str | None:
        """The current word if it is one of ``words`` (upper case), consumed; else None."""
        word = self.word()
        if word in words:
            self.i += 1
            return word
        return None

    def expect(self, *words: str) -> str:
        return self.accept(*words) or self.error()

    def punct(self, char: str) -> bool:
        token = self.current
        if token is not None and token.kind == "punct" and token.text == char:
            self.i += 1
            return True
        return False

    def string(self) -> str:
        token = self.current
        if token is None or token.kind != "string":
            self.error()
        self.i += 1
        return token.value

    def number(self) -> int:
        token = self.current
        if token is None or token.kind != "number":
            self.error()
        self.i += 1
        return int(float(token.text))

    def name(self) -> str:
        token = self.current
        if token is None or token.kind not in ("word", "ident"):
            self.error()
        self.i += 1
        return token.value

    def names(self) -> list[str]:
        """``(a, b, c)``."""
        if not self.punct("("):
            self.error()
        names = [self.name()]
        while self.punct(","):
            names.append(self.name())
        if not self.punct(")"):
            self.error()
        return names

    def on_off(self) -> bool:
        """An optional ON | OFF | TRUE | FALSE after a flag (the flag alone means ON)."""
        word = self.accept("ON", "OFF", "TRUE", "FALSE", "PRESET")
        return word not in ("OFF", "FALSE")


def _authorization(p: Parser, options) -> bool:
    """IAM_ROLE, CREDENTIALS, ACCESS_KEY_ID...: accepted and recorded (S3 access here is the stack's)."""
    if p.accept("IAM_ROLE"):
        options.iam_role = "default" if p.accept("DEFAULT") else p.string()
    elif p.accept("CREDENTIALS"):
        p.accept("AS")
        credentials = p.string()
        role = re.search(r"aws_iam_role=([^;]+)", credentials)
        options.iam_role = role.group(1) if role else "(access keys)"
    elif p.accept("ACCESS_KEY_ID", "SECRET_ACCESS_KEY", "SESSION_TOKEN"):
        p.accept("AS")
        p.string()
        options.iam_role = options.iam_role or "(access keys)"
    elif p.accept("REGION"):
        p.accept("AS")
        options.region = p.string()
    else:
        return False
    return True


# -- COPY ------------------------------------------------------------------------------
@dataclass
class CopyOptions:
    schema: str
    table: str
    columns: list[str] | None
    source: str
    iam_role: str | None = None
    region: str | None = None
    format: str = "TEXT"            # TEXT (pipe-delimited), CSV, JSON, PARQUET
    json_option: str = "auto"
    delimiter: str | None = None
    quote: str = '"'
    ignoreheader: int = 0
    compression: str | None = None  # GZIP, BZIP2
    maxerror: int = 0
    manifest: bool = False
    null_as: str = "\\N"
    emptyasnull: bool = False
    blanksasnull: bool = False
    fillrecord: bool = False
    truncatecolumns: bool = False
    dateformat: str = "auto"
    timeformat: str = "auto"


#: Options accepted and not acted upon (they tune Redshift's storage or are the default here).
IGNORED_COPY_OPTIONS = ("ACCEPTANYDATE", "TRIMBLANKS", "REMOVEQUOTES", "ESCAPE", "EXPLICIT_IDS", "ROUNDEC",
                        "IGNOREBLANKLINES", "ENCRYPTED")


def parse_copy(sql: str) -> CopyOptions:
    p = Parser(sql)
    p.expect("COPY")
    first = p.name()
    schema, table = ("public", first) if not p.punct(".") else (first, p.name())
    columns = p.names() if p.current is not None and p.current.text == "(" else None
    p.expect("FROM")
    source = p.string()
    if not source.startswith("s3://"):
        raise errors.SQLError(errors.FEATURE_NOT_SUPPORTED,
                              "This local Redshift runs COPY from Amazon S3 only (s3://bucket/prefix)")
    o = CopyOptions(schema.lower(), table.lower(), [c.lower() for c in columns] if columns else None, source)
    while not p.done():
        if _authorization(p, o):
            continue
        if p.accept("FORMAT"):
            p.accept("AS")
            _copy_format(p, o) or p.error()
        elif _copy_format(p, o):
            pass
        elif p.accept("DELIMITER"):
            p.accept("AS")
            o.delimiter = p.string()
        elif p.accept("QUOTE"):
            p.accept("AS")
            o.quote = p.string()
        elif p.accept("IGNOREHEADER"):
            p.accept("AS")
            o.ignoreheader = p.number()
        elif word := p.accept("GZIP", "BZIP2", "ZSTD", "LZOP"):
            o.compression = word
        elif p.accept("MAXERROR"):
            p.accept("AS")
            o.maxerror = p.number()
        elif p.accept("MANIFEST"):
            o.manifest = True
        elif word := p.accept("DATEFORMAT", "TIMEFORMAT"):
            p.accept("AS")
            setattr(o, word.lower(), p.string())
        elif p.accept("NULL"):
            p.accept("AS")
            o.null_as = p.string()
        elif word := p.accept("EMPTYASNULL", "BLANKSASNULL", "FILLRECORD", "TRUNCATECOLUMNS"):
            setattr(o, word.lower(), True)
        elif p.accept("COMPUPDATE", "STATUPDATE"):
            p.on_off()
        elif p.accept("ACCEPTINVCHARS"):
            p.accept("AS")
            if p.current is not None and p.current.kind == "string":
                p.string()
        elif p.accept(*IGNORED_COPY_OPTIONS):
            pass
        else:
            p.error()
    if o.compression in ("ZSTD", "LZOP"):
        raise errors.SQLError(errors.FEATURE_NOT_SUPPORTED, f"COPY ... {o.compression} is not emulated: "
                              "use GZIP or BZIP2")
    return o


def _copy_format(p: Parser, o: CopyOptions) -> bool:
    """CSV [QUOTE [AS] 'q'] | JSON [AS] 'auto' | PARQUET, after FORMAT [AS] or alone."""
    word = p.accept("CSV", "JSON", "PARQUET", "ORC", "AVRO")
    if word is None:
        return False
    if word in ("ORC", "AVRO"):
        raise errors.SQLError(errors.FEATURE_NOT_SUPPORTED, f"COPY ... FORMAT {word} is not emulated: "
                              "use CSV, JSON 'auto' or PARQUET")
    o.format = word
    if word == "JSON":
        p.accept("AS")
        if p.current is not None and p.current.kind == "string":
            o.json_option = p.string().lower()
        if o.json_option not in ("auto", "auto ignorecase"):
            raise errors.SQLError(errors.FEATURE_NOT_SUPPORTED,
                                  "COPY ... JSON with a JSONPaths file is not emulated: use JSON 'auto'")
    return True


@dataclass
class Record:
    """One line, JSON object or Parquet row of a load file."""
    filename: str
    line_number: int
    raw_line: str
    fields: list | None          # one string (or None) per target column; None: the record is rejected
    error: tuple | None = None   # (code, reason) of a rejected record


@dataclass
class TargetColumn:
    name: str
    duckdb_type: str     # INTEGER, VARCHAR, DECIMAL(10,2)...
    length: int          # VARCHAR(n)'s n, else -1... as STL_LOAD_ERRORS.col_length
    not_null: bool

    @property
    def is_char(self) -> bool:
        return self.duckdb_type == "VARCHAR"

    @property
    def type_name(self) -> str:
        """The name STL_LOAD_ERRORS.type shows (``int4``, ``varchar``, ``numeric``...)."""
        base = self.duckdb_type.split("(")[0]
        return SHORT_TYPES.get(base, base.lower())


SHORT_TYPES = {"INTEGER": "int4", "BIGINT": "int8", "SMALLINT": "int2", "VARCHAR": "varchar", "DOUBLE": "float8",
               "REAL": "float4", "FLOAT": "float4", "DECIMAL": "numeric", "BOOLEAN": "bool", "DATE": "date",
               "TIMESTAMP": "timestamp", "TIMESTAMP WITH TIME ZONE": "timestamptz", "HUGEINT": "numeric"}


def target_columns(cursor, table: storage.TableInfo, columns: list[str] | None) -> list[TargetColumn]:
    """The loaded columns with their types, VARCHAR lengths and NOT NULL (from the catalog's definitions)."""
    described = cursor.execute(f"DESCRIBE {table.qualified}").fetchall()
    definitions = {}
    for definition in ddl.split_definitions(table.columns_sql):
        match = re.match(r'\s*("(?:[^"]|"")*"|\S+)\s+(.*)', definition, re.DOTALL)
        if match:
            name = match.group(1).strip('"').replace('""', '"')
            length = re.search(r"(?:TEXT|VARCHAR|CHAR\w*|BPCHAR)\s*\(\s*(\d+)\s*\)", match.group(2), re.I)
            definitions[name] = (int(length.group(1)) if length else -1,
                                 bool(re.search(r"\bNOT\s+NULL\b|\bPRIMARY\s+KEY\b", match.group(2), re.I)))
    by_name = {name: TargetColumn(name, str(kind).upper(), *definitions.get(name, (-1, False)))
               for name, kind, *_ in described}
    wanted = columns or list(by_name)
    missing = [c for c in wanted if c not in by_name]
    if missing:
        raise errors.SQLError(errors.UNDEFINED_COLUMN,
                              f'column "{missing[0]}" of relation "{table.name}" does not exist')
    return [by_name[c] for c in wanted]


# -- reading the files -------------------------------------------------------------------
def _s3_error_code(exc) -> str:
    return getattr(exc, "response", {}).get("Error", {}).get("Code", "") if hasattr(exc, "response") else ""


def list_files(s3, o: CopyOptions) -> list[str]:
    """The s3:// URIs to load: every object under the prefix, or the manifest's entries."""
    from botocore.exceptions import ClientError

    bucket, key = o.source[len("s3://"):].partition("/")[::2]
    if o.manifest:
        try:
            manifest = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
            entries = manifest["entries"]
        except ClientError as exc:
            raise errors.SQLError(LOAD_FAILED, "Problem reading manifest file - S3ServiceException:The specified "
                                  f"key does not exist.,Status 404,Error {_s3_error_code(exc) or 'NoSuchKey'}") from None
        except (ValueError, KeyError, TypeError):
            raise errors.SQLError(LOAD_FAILED, f"Manifest file is not in correct json format: {o.source}") from None
        uris = []
        for entry in entries:
            url = entry.get("url", "")
            entry_bucket, entry_key = url[len("s3://"):].partition("/")[::2]
            try:
                s3.head_object(Bucket=entry_bucket, Key=entry_key)
                uris.append(url)
            except ClientError:
                if entry.get("mandatory", False):
                    raise errors.SQLError(LOAD_FAILED, "S3ServiceException:The specified key does not exist.,"
                                          f"Status 404,Error NoSuchKey (mandatory manifest entry {url})") from None
        if not uris:
            raise errors.SQLError(LOAD_FAILED, f"The manifest file {o.source} lists no file that exists")
        return uris
    keys = []
    try:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key):
            keys += [obj["Key"] for obj in page.get("Contents", []) if not obj["Key"].endswith("/")]
    except ClientError as exc:
        if _s3_error_code(exc) == "NoSuchBucket":
            raise errors.SQLError(LOAD_FAILED, "S3ServiceException:The specified bucket does not exist,"
                                  "Status 404,Error NoSuchBucket") from None
        raise
    if not keys:
        raise errors.SQLError(LOAD_FAILED, f"The specified S3 prefix '{key}' does not exist")
    return [f"s3://{bucket}/{k}" for k in sorted(keys)]


def read_file(s3, uri: str, compression: str | None) -> bytes:
    bucket, key = uri[len("s3://"):].partition("/")[::2]
    data = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    try:
        if compression == "GZIP":
            return gzip.decompress(data)
        if compression == "BZIP2":
            return bz2.decompress(data)
    except (OSError, ValueError) as exc:
        raise errors.SQLError(LOAD_FAILED, f"{compression} decompression of {uri} failed: {exc}") from None
    return data


def delimited_records(uri: str, text: str, o: CopyOptions, width: int):
    """CSV (quoted fields may span lines) or pipe-delimited text: one Record per line."""
    lines = text.split("\n")
    delimiter = o.delimiter or ("," if o.format == "CSV" else "|")
    if o.format == "CSV":
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quotechar=o.quote)
        rows = ((reader.line_num, fields) for fields in reader)
    else:
        rows = ((n, line.rstrip("\r").split(delimiter)) for n, line in enumerate(lines, 1)
                if n < len(lines) or line)
    previous = 0
    for line_number, fields in rows:
        raw = "\n".join(lines[previous:line_number]).rstrip("\r")[:MAX_RAW]
        previous = line_number
        if line_number <= o.ignoreheader or fields in ([], [""]):
            continue
        if o.format == "TEXT":
            fields = [None if f == o.null_as else f for f in fields]
        if len(fields) < width and o.fillrecord:
            fields += [None] * (width - len(fields))
        if len(fields) > width:
            yield Record(uri, line_number, raw, None, (1214, "Extra column(s) found"))
        elif len(fields) < width:
            yield Record(uri, line_number, raw, None, (1214, "Delimiter not found"))
        else:
            yield Record(uri, line_number, raw, fields)


def _text(value):
    """A JSON or Parquet value as the text COPY converts (NULL stays None)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, (datetime.date, datetime.time, int, float, decimal.Decimal)):
        return str(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return json.dumps(value, default=str)


def json_records(uri: str, text: str, o: CopyOptions, columns: list[TargetColumn]):
    """JSON 'auto': one object after another (not in an array); keys matched to column names."""
    decoder, pos = json.JSONDecoder(), 0
    ignorecase = o.json_option == "auto ignorecase"
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos >= len(text):
            return
        start = pos
        try:
            value, pos = decoder.raw_decode(text, pos)
        except ValueError:
            line = text.count("\n", 0, start) + 1
            yield Record(uri, line, text[start:start + MAX_RAW].split("\n")[0], None,
                         (1216, "Invalid JSON object or array"))
            return       # the rest of the file cannot be framed
        line, raw = text.count("\n", 0, pos) + 1, text[start:pos][:MAX_RAW]
        if not isinstance(value, dict):
            yield Record(uri, line, raw, None, (1216, "Invalid JSONPath format: Member is not an object."))
            continue
        if ignorecase:
            value = {k.lower(): v for k, v in value.items()}
        yield Record(uri, line, raw, [_text(value.get(c.name)) for c in columns])


def parquet_records(uri: str, data: bytes, columns: list[TargetColumn]):
    """Parquet: the file's columns matched to the table's by position; one Record per row."""
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(io.BytesIO(data))
    except Exception as exc:       # pyarrow raises several kinds for a file that is not Parquet
        raise errors.SQLError(LOAD_FAILED, f"File '{uri}' is not a valid Parquet file: {exc}") from None
    if table.num_columns != len(columns):
        raise errors.SQLError(LOAD_FAILED, f"File '{uri}' has an incompatible Parquet schema: "
                              f"{table.num_columns} columns, the table has {len(columns)}")
    for n, row in enumerate(table.to_pylist(), 1):
        values = [_text(v) for v in row.values()]
        yield Record(uri, n, ",".join("" if v is None else v for v in values)[:MAX_RAW], values)


# -- checking the fields against the column types --------------------------------------
def _integer_reason(value: str, type_name: str) -> tuple[int, str]:
    label = {"int2": "Short", "int8": "Long"}.get(type_name, "Integer")
    for pos, char in enumerate(value):
        if not (char.isdigit() or (pos == 0 and char in "+-")):
            return 1207, f"Invalid digit, Value '{char}', Pos {pos}, Type: {label}"
    return 1222, f"Overflow, Value '{value}', Type: {label}"


def _reason(column: TargetColumn, value: str) -> tuple[int, str]:
    """Redshift's error code and reason for a value its column's type refuses."""
    kind = column.type_name
    if kind in ("int2", "int4", "int8"):
        return _integer_reason(value.strip(), kind)
    return {
        "date": (1205, "Invalid Date Format - length must be 10 or more" if len(value) < 10
                 else "Invalid Date Format"),
        "timestamp": (1206, "Invalid timestamp format or value [YYYY-MM-DD HH24:MI:SS]"),
        "float8": (1208, f"Invalid digit, Value '{value[:20]}', Type: Double"),
        "float4": (1208, f"Invalid digit, Value '{value[:20]}', Type: Float"),
        "numeric": (1209, f"Invalid digit, Value '{value[:20]}', Type: Decimal"),
        "bool": (1210, f"Invalid boolean value '{value[:20]}'"),
    }.get(kind, (1216, f"Invalid value '{value[:20]}' for type {kind}"))


def _normalize(record: Record, columns: list[TargetColumn], o: CopyOptions) -> None:
    """Empty fields: NULL for non-character columns (always, as on Redshift), and for
    character columns with EMPTYASNULL / BLANKSASNULL; TRUNCATECOLUMNS cuts long strings."""
    fields = record.fields
    for i, column in enumerate(columns):
        value = fields[i]
        if value is None:
            continue
        if not column.is_char:
            if value.strip() == "":
                fields[i] = None
        elif (o.emptyasnull and value == "") or (o.blanksasnull and value.strip() == ""):
            fields[i] = None
        elif o.truncatecolumns and column.length > 0:
            fields[i] = value[:column.length]


def check(cursor, records: list[Record], columns: list[TargetColumn]):
    """Stage the well-formed records as text and find, for each, the first field its column refuses.

    Returns the staged Arrow table (``__seq`` and ``c0``, ``c1``...) and
    ``{seq: (column, value, code, reason)}`` for the refused records.
    """
    import pyarrow as pa

    good = [(seq, r) for seq, r in enumerate(records) if r.fields is not None]
    staged = pa.table({"__seq": pa.array([seq for seq, _ in good], pa.int64()),
                       **{f"c{i}": pa.array([r.fields[i] for _, r in good], pa.string())
                          for i in range(len(columns))}})
    cursor.register("__copy_text", staged)
    refused = {}
    try:
        for i, column in enumerate(columns):
            field_ = f"c{i}"
            tests = []
            if column.not_null:
                tests.append(f"{field_} IS NULL")
            if column.is_char and column.length > 0:      # VARCHAR(n) counts bytes, as on Redshift
                tests.append(f"strlen({field_}) > {column.length}")
            elif not column.is_char:
                tests.append(f"({field_} IS NOT NULL AND TRY_CAST({field_} AS {column.duckdb_type}) IS NULL)")
            if not tests:
                continue
            for seq, value in cursor.execute(f"SELECT __seq, {field_} FROM __copy_text WHERE "
                                             + " OR ".join(tests)).fetchall():
                if seq in refused:
                    continue      # an earlier column already refused this record
                if value is None:
                    code, reason = 1213, "Missing data for not-null field"
                elif column.is_char:
                    code, reason = 1204, "String length exceeds DDL length"
                else:
                    code, reason = _reason(column, value)
                refused[seq] = (column, value, code, reason)
    finally:
        cursor.unregister("__copy_text")
    return staged, refused


# -- COPY itself -------------------------------------------------------------------------
def copy(warehouse, sql: str, query_id: int) -> int:
    """Run one COPY statement on ``warehouse`` (an ``engine.Warehouse``); the number of rows loaded."""
    o = parse_copy(sql)
    if warehouse.s3 is None:
        raise errors.SQLError(errors.FEATURE_NOT_SUPPORTED,
                              "This warehouse has no S3 connection (create it with Warehouse(..., s3=...))")
    started = time.time()
    with warehouse.cursor() as cursor:
        table = warehouse.storage.lookup(cursor, o.schema, o.table)
        if table is None:
            raise errors.SQLError(errors.UNDEFINED_TABLE, f'relation "{o.table}" does not exist')
        columns = target_columns(cursor, table, o.columns)
    s3 = warehouse.s3()
    uris = list_files(s3, o)
    records, files, size = [], [], 0
    for uri in uris:
        data = read_file(s3, uri, o.compression)
        size += len(data)
        before = len(records)
        if o.format == "PARQUET":
            records += parquet_records(uri, data, columns)
        else:
            text = data.decode("utf-8", "replace")
            records += (json_records(uri, text, o, columns) if o.format == "JSON"
                        else delimited_records(uri, text, o, len(columns)))
        files.append((uri, len(records) - before))
    for record in records:
        if record.fields is not None:
            _normalize(record, columns, o)

    def work(cursor):
        staged, refused = check(cursor, records, columns)
        rejected = [r for r in records if r.fields is None]
        bad = len(rejected) + len(refused)
        if bad > o.maxerror:
            return None, refused
        empty = bool(table.sortkey) and not cursor.execute(f"SELECT 1 FROM {table.qualified} LIMIT 1").fetchall()
        cursor.register("__copy_text", staged)
        try:
            casts = ", ".join(f"CAST(c{i} AS {c.duckdb_type}) AS {storage.quote(c.name)}"
                              for i, c in enumerate(columns))
            keep = f"WHERE __seq NOT IN ({', '.join(map(str, refused))})" if refused else ""
            count = warehouse.storage.insert(cursor, table, [c.name for c in columns],
                                             f"SELECT {casts} FROM __copy_text {keep} ORDER BY __seq", None)
        finally:
            cursor.unregister("__copy_text")
        if empty and count:      # the first load of a table with a SORTKEY lands sorted (module docstring)
            warehouse.storage.vacuum(cursor, table)
        return count, refused

    count, refused = warehouse.transaction(work)
    _log_load(warehouse, query_id, table, o, records, refused, files, size, started, count)
    if count is None:
        raise errors.SQLError(LOAD_FAILED, f"Load into table '{o.table}' failed.  "
                                           "Check 'stl_load_errors' system table for details.")
    return count


def _log_load(warehouse, query_id, table, o, records, refused, files, size, started, count) -> None:
    """STL_LOAD_ERRORS (one row per rejected record), STL_LOAD_COMMITS (per file), SYS_LOAD_HISTORY.

    Written in their own transaction: a failed COPY loads nothing but its errors stay visible.
    """
    rs = storage.CATALOG_SCHEMA
    now = datetime.datetime.now()
    rows = []
    for seq, record in enumerate(records):
        if record.fields is None:
            rows.append((record, "", "", -1, "", *record.error))
        elif seq in refused:
            column, value, code, reason = refused[seq]
            rows.append((record, column.name, column.type_name, column.length, value or "", code, reason))
    errors_per_file = {}
    for record, *_ in rows:
        errors_per_file[record.filename] = errors_per_file.get(record.filename, 0) + 1

    def work(cursor):
        if rows:
            cursor.executemany(
                f"INSERT INTO {rs}.stl_load_errors VALUES (100, 0, ?, ?, 0, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?)",
                [(table.table_id, now, query_id, r.filename, r.line_number, name, kind, length, r.raw_line,
                  str(value)[:1024], code, reason) for r, name, kind, length, value, code, reason in rows])
        cursor.executemany(f"INSERT INTO {rs}.stl_load_commits VALUES (100, ?, ?, ?, ?, ?, ?, ?)",
                           [(query_id, i % warehouse.slices, uri, n, errors_per_file.get(uri, 0), now,
                             int(count is not None)) for i, (uri, n) in enumerate(files)])
        cursor.execute(f"INSERT INTO {rs}.sys_load_history VALUES (100, ?, ?, ?, ?, to_timestamp(?)::TIMESTAMP, "
                       f"?, ?, ?, ?, ?, ?, ?, ?)",
                       [query_id, "completed" if count is not None else "failed", warehouse.database,
                        f"{table.schema}.{table.name}", started, now, o.source, o.format.lower(), count or 0,
                        len(files), size, len(rows), o.iam_role])
    warehouse.transaction(work, own=True)   # kept even when the COPY's block rolls back


# -- UNLOAD --------------------------------------------------------------------------------
@dataclass
class UnloadOptions:
    query: str
    target: str
    iam_role: str | None = None
    region: str | None = None
    format: str = "TEXT"            # TEXT (pipe-delimited), CSV, PARQUET
    delimiter: str | None = None
    header: bool = False
    addquotes: bool = False
    null_as: str = ""
    partition_by: list[str] = field(default_factory=list)
    include: bool = False
    parallel: bool = True
    allowoverwrite: bool = False
    cleanpath: bool = False
    manifest: bool = False
    gzip: bool = False
    extension: str | None = None


def parse_unload(sql: str) -> UnloadOptions:
    p = Parser(sql)
    p.expect("UNLOAD")
    if not p.punct("("):
        p.error()
    query = p.string()
    if not p.punct(")"):
        p.error()
    p.expect("TO")
    target = p.string()
    if not target.startswith("s3://"):
        raise errors.SQLError(errors.FEATURE_NOT_SUPPORTED, "UNLOAD writes to Amazon S3 only (s3://bucket/prefix)")
    o = UnloadOptions(query, target)
    while not p.done():
        if _authorization(p, o):
            continue
        if p.accept("FORMAT"):
            p.accept("AS")
            o.format = p.expect("CSV", "PARQUET", "JSON")
        elif word := p.accept("CSV", "PARQUET", "JSON"):
            o.format = word
        elif p.accept("HEADER"):
            o.header = True
        elif p.accept("DELIMITER"):
            p.accept("AS")
            o.delimiter = p.string()
        elif p.accept("ADDQUOTES"):
            o.addquotes = True
        elif p.accept("NULL"):
            p.accept("AS")
            o.null_as = p.string()
        elif p.accept("PARTITION"):
            p.expect("BY")
            o.partition_by = [n.lower() for n in p.names()]
            o.include = bool(p.accept("INCLUDE"))
        elif p.accept("PARALLEL"):
            o.parallel = p.on_off()
        elif p.accept("ALLOWOVERWRITE"):
            o.allowoverwrite = True
        elif p.accept("CLEANPATH"):
            o.cleanpath = True
        elif p.accept("MANIFEST"):
            o.manifest = True
            p.accept("VERBOSE")
        elif p.accept("GZIP"):
            o.gzip = True
        elif p.accept("EXTENSION"):
            p.accept("AS")
            o.extension = p.string().lstrip(".")
        elif p.accept("MAXFILESIZE", "ROWGROUPSIZE"):
            p.accept("AS")
            p.number()
            p.accept("MB", "GB")
        elif p.accept("ENCRYPTED", "ESCAPE"):
            pass
        else:
            p.error()
    if o.format == "JSON":
        raise errors.SQLError(errors.FEATURE_NOT_SUPPORTED, "UNLOAD ... FORMAT JSON is not emulated: "
                              "use CSV or PARQUET")
    if o.allowoverwrite and o.cleanpath:
        raise errors.SQLError(errors.SYNTAX_ERROR, "ALLOWOVERWRITE and CLEANPATH cannot be used together")
    return o


def _cell(value, null_as: str) -> str:
    if value is None:
        return null_as
    if isinstance(value, bool):
        return "t" if value else "f"       # Redshift writes booleans as t / f
    return _text(value)


def _delimited(rows: list[tuple], names: list[str], o: UnloadOptions) -> bytes:
    out = io.StringIO(newline="")
    delimiter = o.delimiter or ("," if o.format == "CSV" else "|")
    if o.format == "CSV" or o.addquotes:
        writer = csv.writer(out, delimiter=delimiter, lineterminator="\n",
                            quoting=csv.QUOTE_ALL if o.addquotes else csv.QUOTE_MINIMAL)
        if o.header:
            writer.writerow(names)
        writer.writerows([_cell(v, o.null_as) for v in row] for row in rows)
    else:
        if o.header:
            out.write(delimiter.join(names) + "\n")
        for row in rows:
            out.write(delimiter.join(_cell(v, o.null_as) for v in row) + "\n")
    return out.getvalue().encode()


def unload(warehouse, sql: str, query) -> int:
    """Run one UNLOAD statement; the number of rows written. ``query(sql)``: the rows as an Arrow table."""
    import pyarrow.parquet as pq

    o = parse_unload(sql)
    if warehouse.s3 is None:
        raise errors.SQLError(errors.FEATURE_NOT_SUPPORTED,
                              "This warehouse has no S3 connection (create it with Warehouse(..., s3=...))")
    result = query(o.query)
    missing = [c for c in o.partition_by if c not in result.column_names]
    if missing:
        raise errors.SQLError(errors.UNDEFINED_COLUMN, f'column "{missing[0]}" does not exist')

    s3 = warehouse.s3()
    bucket, prefix = o.target[len("s3://"):].partition("/")[::2]
    if o.partition_by and prefix and not prefix.endswith("/"):
        prefix += "/"
    existing = [obj["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
                for obj in page.get("Contents", [])]
    if existing and o.cleanpath:
        for key in existing:
            s3.delete_object(Bucket=bucket, Key=key)
    elif existing and not o.allowoverwrite:
        raise errors.SQLError(LOAD_FAILED, "Specified unload destination on S3 is not empty. Consider using a "
                              "different bucket / prefix, manually removing the target files in S3, or using "
                              "the ALLOWOVERWRITE option.")

    # Which rows each file gets: every slice writes its share (PARALLEL ON), or one writer (OFF).
    groups = {(): result}
    if o.partition_by:
        import pyarrow as pa
        keys = [tuple(k[c] for c in o.partition_by) for k in result.select(o.partition_by).to_pylist()]
        groups = {}
        for values in dict.fromkeys(keys):
            part = result.filter(pa.array([k == values for k in keys]))
            groups[values] = part if o.include else part.drop_columns(o.partition_by)
    written = []
    for values, part in groups.items():
        folder = "".join(f"{c}={'__HIVE_DEFAULT_PARTITION__' if v is None else _text(v)}/"
                         for c, v in zip(o.partition_by, values))
        if o.parallel:      # each slice writes its share: a contiguous run of ceil(rows / slices) rows
            size = -(-part.num_rows // warehouse.slices)
            shares = [(f"{s:04d}_part_00", part.slice(s * size, size)) for s in range(warehouse.slices)]
            shares = [(name, share) for name, share in shares if share.num_rows] or shares[:1]
        else:
            shares = [("000", part)]
        for name, share in shares:
            if o.format == "PARQUET":
                buffer = io.BytesIO()
                pq.write_table(share, buffer, compression="snappy")
                body, suffix = buffer.getvalue(), ".parquet"
            else:
                body, suffix = _delimited([tuple(r.values()) for r in share.to_pylist()], share.column_names, o), ""
                if o.gzip:
                    body, suffix = gzip.compress(body), ".gz"
            if o.extension:
                suffix = ("." + o.extension) + (".gz" if o.gzip and o.format != "PARQUET" else "")
            key = f"{prefix}{folder}{name}{suffix}"
            s3.put_object(Bucket=bucket, Key=key, Body=body)
            written.append((f"s3://{bucket}/{key}", share.num_rows, len(body)))
    if o.manifest:
        manifest = {"entries": [{"url": url} for url, _, _ in written]}
        s3.put_object(Bucket=bucket, Key=f"{prefix}manifest", Body=json.dumps(manifest, indent=2).encode())
    return result.num_rows
