"""Classifiers: what format is this S3 object, and what is its schema?

A Glue crawler hands every sampled file to a list of *classifiers*. Each
answers with a *certainty* (1.0: "this is my format", 0.0: "not mine") and,
when it recognises the file, a classification string (``csv``, ``json``,
``parquet``...) and a schema. The crawler's own custom classifiers go first,
in the crawler's order; the first certainty of 1.0 wins. When none is sure,
the built-in classifiers follow, in Glue's order:

==================  ===================  =============================================
classifier          classification       how it decides
==================  ===================  =============================================
Apache Avro         ``avro``             the ``Obj\\x01`` header and its schema
Apache ORC          ``orc``              the ``ORC`` header, the footer's schema
Apache Parquet      ``parquet``          ``PAR1`` at both ends, the footer's schema
JSON                ``json``             the beginning of the file parses as JSON objects
Combined Apache     ``combined_apache``  every line matches the grok ``COMBINEDAPACHELOG``
Apache log          ``apache``           every line matches the grok ``COMMONAPACHELOG``
CSV                 ``csv``              a delimiter among ``,`` ``|`` tab ``;`` ``\\x01``
                                         splits at least two rows into the same number
                                         (two or more) of columns
==================  ===================  =============================================

If no classifier is certain, the most certain one above 0.0 wins; if none
returns more than 0.0 the file is ``UNKNOWN`` (and the crawler skips it).
Text files may be compressed (gzip, bzip2: detected from their first bytes);
the Snappy or zstd inside Parquet and ORC files is the format's own business.

**How much is read.** Columnar files are read at their footer only (Parquet,
ORC: ranged GETs); Avro files whole (it is a row format). Text files are
read from the start, 1 MB of (uncompressed) text at most, and at most 1,000
records of CSV are typed, as Glue does. A JSON custom classifier whose
document is larger reads on, 1 MB at a time, up to 10 MB.

**CSV headers.** The built-in CSV classifier takes the first row as the
header only when every field of it is a string (not a number or a boolean),
shorter than 150 characters (the last column may be empty everywhere: a
trailing delimiter), a valid column name, *and* at least one column of the
other rows is not a string. A file of strings only therefore gets columns
``col0``, ``col1``... and its first row is data. A custom CSV classifier can
say ``ContainsHeader`` PRESENT or ABSENT, or name the columns (``Header``).

Each classifier returns a :class:`FileSchema`: the columns with Glue types
(``crawl_schema.py``), the SerDe and formats a table of this file needs, and
the table properties Glue writes for the format.
"""
from __future__ import annotations

import bz2
import csv
import io
import json
import re
import zlib
from dataclasses import dataclass, field

from localaws.core import grok as grok_patterns

from . import crawl_schema

TEXT_INPUT = "org.apache.hadoop.mapred.TextInputFormat"
TEXT_OUTPUT = "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat"
LAZY_SIMPLE = "org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe"
OPEN_CSV = "org.apache.hadoop.hive.serde2.OpenCSVSerde"
OPENX_JSON = "org.openx.data.jsonserde.JsonSerDe"
GROK_SERDE = "com.amazonaws.glue.serde.GrokSerDe"
PARQUET = ("org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
           "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
           "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat")
ORC = ("org.apache.hadoop.hive.ql.io.orc.OrcSerde",
       "org.apache.hadoop.hive.ql.io.orc.OrcInputFormat",
       "org.apache.hadoop.hive.ql.io.orc.OrcOutputFormat")
AVRO = ("org.apache.hadoop.hive.serde2.avro.AvroSerDe",
        "org.apache.hadoop.hive.ql.io.avro.AvroContainerInputFormat",
        "org.apache.hadoop.hive.ql.io.avro.AvroContainerOutputFormat")

SAMPLE_BYTES = 1024 * 1024          # text read from the start of a file
JSON_MAX_BYTES = 10 * 1024 * 1024   # a JSON document is read on, 1 MB at a time, up to this
CSV_RECORDS = 1000                  # CSV records typed per file
CSV_DELIMITERS = (",", "|", "\t", ";", "\x01")
HEADER_MAX = 150                    # characters of a header field (but the last)
COLUMN_NAME = re.compile(r"[\u0020-\ud7ff\ue000-\ufffd\t]{1,255}")   # Glue's single-line string


class Unreadable(Exception):
    """The object could not be read as the format it claims (corrupt, truncated)."""


# ------------------------------------------------------------------ the result
@dataclass
class FileSchema:
    """What a classifier found in one file."""
    classification: str
    columns: list[tuple[str, str]]
    serde: str
    serde_params: dict[str, str]
    input_format: str = TEXT_INPUT
    output_format: str = TEXT_OUTPUT
    compression: str = "none"                   # the file's own compression: none, gzip, bzip2
    params: dict[str, str] = field(default_factory=dict)   # table properties of the format
    records: int | None = None                  # exact record count, when known
    sample_records: int = 0                     # records and bytes seen, for estimates
    sample_bytes: int = 0

    #: Parameters that differ from file to file without making files incompatible.
    VARYING = ("paths", "avro.schema.literal")

    def compat_key(self) -> tuple:
        """Files with equal keys may share a table (Glue's *data compatibility*:
        same format, compression and SerDe settings); their schemas may differ."""
        serde = tuple(sorted((k, v) for k, v in self.serde_params.items() if k not in self.VARYING))
        params = tuple(sorted((k, v) for k, v in self.params.items() if k not in self.VARYING))
        return (self.classification, self.compression, self.serde, self.input_format, serde, params)

    def to_state(self) -> dict:
        return {k: getattr(self, k) for k in ("classification", "serde", "serde_params", "input_format",
                                              "output_format", "compression", "params", "records",
                                              "sample_records", "sample_bytes")} | {
            "columns": [list(c) for c in self.columns]}

    @classmethod
    def from_state(cls, d: dict) -> "FileSchema":
        d = dict(d)
        d["columns"] = [tuple(c) for c in d["columns"]]
        return cls(**d)


# ------------------------------------------------------------------ reading S3 objects
class S3File(io.RawIOBase):
    """A read-only, seekable file over one S3 object: every read is a ranged GET
    (pyarrow's Parquet and ORC readers fetch only the footer this way)."""

    def __init__(self, s3, bucket: str, key: str, size: int):
        super().__init__()
        self.s3, self.bucket, self.key, self.size, self.pos = s3, bucket, key, size, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = 0) -> int:
        self.pos = max(0, {0: 0, 1: self.pos, 2: self.size}[whence] + offset)
        return self.pos

    def read(self, n: int = -1) -> bytes:
        end = self.size if n is None or n < 0 else min(self.size, self.pos + n)
        if end <= self.pos:
            return b""
        body = self.s3.get_object(Bucket=self.bucket, Key=self.key,
                                  Range=f"bytes={self.pos}-{end - 1}")["Body"].read()
        self.pos += len(body)
        return body

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)


def compression_of(head: bytes) -> str:
    """A text file's compression, from its first bytes (magic numbers)."""
    if head[:2] == b"\x1f\x8b":
        return "gzip"
    if head[:3] == b"BZh":
        return "bzip2"
    return "none"


def read_text(f: S3File, compression: str, limit: int) -> tuple[bytes, bool]:
    """Up to ``limit`` uncompressed bytes from the start; and whether that is the whole file."""
    f.seek(0)
    if compression == "none":
        data = f.read(limit + 1)
    else:
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS) if compression == "gzip" else bz2.BZ2Decompressor()
        parts, total = [], 0
        try:
            while total <= limit:
                chunk = f.read(256 * 1024)
                if not chunk:
                    if not inflater.eof:
                        raise EOFError("the compressed stream ends early (a truncated file)")
                    break
                if compression == "gzip":
                    out = inflater.decompress(chunk, limit + 1 - total)
                    while inflater.unconsumed_tail and total + len(out) <= limit:
                        out += inflater.decompress(inflater.unconsumed_tail, limit + 1 - total - len(out))
                else:
                    out = inflater.decompress(chunk, limit + 1 - total)
                parts.append(out)
                total += len(out)
                if inflater.eof:
                    break
        except (zlib.error, OSError, EOFError, ValueError) as exc:
            raise Unreadable(f"not valid {compression} data: {exc}") from None
        data = b"".join(parts)
        if not data and total == 0 and f.size:
            raise Unreadable(f"not valid {compression} data: nothing decompresses")
    whole = len(data) <= limit
    return data[:limit], whole


def decode(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        # a multi-byte character cut at the end of the sample is fine; binary data is not
        if exc.start >= len(data) - 3:
            return data[:exc.start].decode("utf-8")
        raise Unreadable(f"not UTF-8 text (byte {exc.start})") from None


@dataclass
class Sample:
    """The start of a text file, decompressed, as lines."""
    text: str
    whole: bool                     # the sample is the whole file
    compression: str
    size: int                       # the object's size in bytes (compressed)

    @property
    def lines(self) -> list[str]:
        lines = self.text.split("\n")
        if not self.whole and len(lines) > 1:
            lines = lines[:-1]        # the last line may be cut in the middle
        return [line[:-1] if line.endswith("\r") else line for line in lines]

    @property
    def records(self) -> list[str]:
        return [line for line in self.lines if line.strip()]


# ------------------------------------------------------------------ classify one object
def classify(s3, bucket: str, key: str, size: int, custom: list[dict]) -> FileSchema | None:
    """The schema of one object, or None when no classifier recognises it (``UNKNOWN``).

    Raises :class:`Unreadable` for a file that claims a format but cannot be read.
    """
    f = S3File(s3, bucket, key, size)
    head = f.read(4)
    tail = b""
    if size >= 8:
        f.seek(size - 4)
        tail = f.read(4)
    if head[:4] == b"Obj\x01":
        return avro_schema(f)
    if head[:3] == b"ORC":
        return orc_schema(f)
    if head[:4] == b"PAR1":
        if tail != b"PAR1":
            raise Unreadable("Parquet file without its footer (PAR1 missing at the end)")
        return parquet_schema(f)
    compression = compression_of(head)
    data, whole = read_text(f, compression, SAMPLE_BYTES)
    sample = Sample(decode(data), whole, compression, size)
    best, certainty = None, 0.0
    for entry in custom:
        found, sure = custom_classifier(entry, sample, f)
        if sure >= 1.0:
            return found
        if found is not None and sure > certainty:
            best, certainty = found, sure
    for builtin in (json_lines, apache_logs, builtin_csv):
        found = builtin(sample)
        if found is not None:
            return found
    return best if certainty > 0 else None


def with_counts(schema: FileSchema, sample: Sample, records: int) -> FileSchema:
    """Record counts: exact when the sample is the whole file, else an estimate later."""
    schema.compression = sample.compression
    schema.sample_records = records
    schema.sample_bytes = len(sample.text.encode("utf-8"))
    schema.records = records if sample.whole else None
    return schema


# ------------------------------------------------------------------ columnar formats
def _footer_schema(kind: str, label: str, read, spec) -> FileSchema:
    """A columnar file's schema and row count from its footer: ``read()`` -> (Arrow schema, rows)."""
    try:
        arrow, rows = read()
    except Exception as exc:
        raise Unreadable(f"{label} footer unreadable: {exc}") from None
    serde, inp, out = spec
    return FileSchema(kind, [(fld.name.lower(), crawl_schema.arrow_type(fld.type)) for fld in arrow],
                      serde, {"serialization.format": "1"}, inp, out, records=rows)


def parquet_schema(f: S3File) -> FileSchema:
    import pyarrow.parquet as pq

    def read():
        meta = pq.ParquetFile(f)
        return meta.schema_arrow, meta.metadata.num_rows
    return _footer_schema("parquet", "Parquet", read, PARQUET)


def orc_schema(f: S3File) -> FileSchema:
    import pyarrow.orc as orc

    def read():
        reader = orc.ORCFile(f)
        return reader.schema, reader.nrows
    return _footer_schema("orc", "ORC", read, ORC)


def avro_schema(f: S3File) -> FileSchema:
    import fastavro
    f.seek(0)
    try:
        reader = fastavro.reader(io.BytesIO(f.read()))
        literal = reader.metadata.get("avro.schema")
        schema = json.loads(literal)
        rows = sum(1 for _ in reader)
    except Exception as exc:
        raise Unreadable(f"Avro data unreadable: {exc}") from None
    if not isinstance(schema, dict) or schema.get("type") != "record":
        raise Unreadable("the Avro schema is not a record")
    columns = [(fld["name"].lower(), crawl_schema.avro_type(fld["type"])) for fld in schema["fields"]]
    literal = json.dumps(schema, separators=(",", ":"))
    serde, inp, out = AVRO
    return FileSchema("avro", columns, serde, {"avro.schema.literal": literal, "serialization.format": "1"},
                      inp, out, params={"avro.schema.literal": literal}, records=rows)


# ------------------------------------------------------------------ JSON
def json_values(text: str) -> list:
    """Every JSON value in ``text``, one after another (JSON lines, or pretty-printed
    documents back to back); raises ValueError at the first thing that is not JSON."""
    decoder, values, pos, n = json.JSONDecoder(), [], 0, len(text)
    while True:
        while pos < n and text[pos].isspace():
            pos += 1
        if pos >= n:
            return values
        value, pos = decoder.raw_decode(text, pos)
        values.append(value)


def json_table(columns, records_path: str | None = None) -> FileSchema:
    params = {"paths": ",".join(name for name, _ in columns)}
    table = {"jsonPath": records_path} if records_path else {}
    return FileSchema("json", columns, OPENX_JSON, params, params=table)


def json_lines(sample: Sample) -> FileSchema | None:
    """Built-in JSON: the sample is JSON objects (one a line, or documents back to back)."""
    text = sample.text if sample.whole else "\n".join(sample.lines)
    try:
        values = json_values(text)
    except ValueError:
        return None
    if not values or not all(isinstance(v, dict) for v in values):
        return None
    columns = crawl_schema.record_schema(values)
    if not columns:
        return None
    return with_counts(json_table(columns), sample, len(values))


_JSON_STEP = re.compile(r"\.\*|\.([^.\[\]]+)|\[\*\]|\[(\d+)\]|\['([^']*)'\]|\[\"([^\"]*)\"\]")


def json_path_records(document, path: str) -> list:
    """The values a JSON path selects: ``$``, ``$.a.b``, ``$['a']``, ``$[*]``, ``$.a[*].b``, ``$[0]``."""
    if not path.startswith("$") or _JSON_STEP.sub("", path[1:]):
        raise ValueError(f"unsupported JSON path {path!r}")
    current = [document]
    for m in _JSON_STEP.finditer(path[1:]):
        name = m.group(1) or m.group(3) or m.group(4)
        nxt = []
        for value in current:
            if m.group(0) in ("[*]", ".*"):
                if isinstance(value, list):
                    nxt.extend(value)
                elif isinstance(value, dict):
                    nxt.extend(value.values())
            elif m.group(2) is not None:
                if isinstance(value, list) and int(m.group(2)) < len(value):
                    nxt.append(value[int(m.group(2))])
            elif isinstance(value, dict) and name in value:
                nxt.append(value[name])
        current = nxt
    return current


def custom_json(spec: dict, sample: Sample, f: S3File) -> tuple[FileSchema | None, float]:
    """A JsonClassifier: the records are what ``JsonPath`` selects in each document."""
    path = spec.get("JsonPath", "$")
    text, whole = sample.text, sample.whole
    limit = SAMPLE_BYTES
    while True:
        try:
            documents = json_values(text)
            break
        except ValueError:
            if whole or limit >= JSON_MAX_BYTES:
                return None, 0.0
            limit += SAMPLE_BYTES
            data, whole = read_text(f, sample.compression, limit)
            text = decode(data)
    records = []
    try:
        for document in documents:
            records.extend(json_path_records(document, path))
    except ValueError:
        return None, 0.0
    if not records:
        return None, 0.0
    if all(isinstance(r, dict) for r in records):
        columns = crawl_schema.record_schema(records)
    else:
        kind = None
        for r in records:
            kind = crawl_schema.merge_types(kind, crawl_schema.json_type(r))
        columns = [("record", kind or "string")]
    if not columns:
        return None, 0.0
    found = json_table(columns, path)
    found = with_counts(found, Sample(text, whole, sample.compression, sample.size), len(records))
    return found, 1.0


# ------------------------------------------------------------------ grok
def grok_table(grok: grok_patterns.Grok, classification: str, custom: str | None) -> FileSchema:
    params = {"input.format": grok.pattern}
    if custom:
        params["input.grokCustomPatterns"] = custom
    return FileSchema(classification, list(grok.fields), GROK_SERDE, params)


def grok_match(grok: grok_patterns.Grok, sample: Sample) -> float:
    """The share of the sample's lines the pattern matches."""
    lines = sample.records
    if not lines:
        return 0.0
    return sum(1 for line in lines if grok.regex.search(line)) / len(lines)


def custom_grok(spec: dict, sample: Sample) -> tuple[FileSchema | None, float]:
    """A GrokClassifier: certain when every line of the sample matches ``GrokPattern``."""
    try:
        grok = grok_patterns.compile(spec["GrokPattern"], spec.get("CustomPatterns"))
    except grok_patterns.GrokError:
        return None, 0.0
    share = grok_match(grok, sample)
    if not share or not grok.fields:
        return None, 0.0
    found = with_counts(grok_table(grok, spec.get("Classification", "grok"), spec.get("CustomPatterns")),
                        sample, len(sample.records))
    return found, 1.0 if share == 1.0 else share * 0.99


_APACHE = {name: grok_patterns.compile(f"^%{{{pattern}}}$") for name, pattern in
           (("combined_apache", "COMBINEDAPACHELOG"), ("apache", "COMMONAPACHELOG"))}


def apache_logs(sample: Sample) -> FileSchema | None:
    """Built-in web log classifiers (Combined Apache log, Apache log)."""
    for classification, grok in _APACHE.items():
        if sample.records and grok_match(grok, sample) == 1.0:
            return with_counts(grok_table(grok, classification, None), sample, len(sample.records))
    return None


# ------------------------------------------------------------------ CSV
def split_rows(lines: list[str], delimiter: str, quote: str | None) -> list[list[str]]:
    reader = csv.reader(lines, delimiter=delimiter, quotechar=quote or "\x00",
                        quoting=csv.QUOTE_MINIMAL if quote else csv.QUOTE_NONE, strict=False)
    return [row for row in reader]


def is_quoted(lines: list[str], delimiter: str, quote: str) -> bool:
    """Whether any field of the sample starts with the quote character."""
    pattern = re.compile(f"(?:^|{re.escape(delimiter)}){re.escape(quote)}")
    return any(pattern.search(line) for line in lines)


def column_types(rows: list[list[str]], width: int, trim: bool) -> list[str]:
    types: list[str | None] = [None] * width
    for row in rows:
        for i, value in enumerate(row[:width]):
            types[i] = crawl_schema.merge_types(types[i], crawl_schema.text_type(value.strip() if trim else value))
    return [t or "string" for t in types]


def looks_like_header(header: list[str], data: list[list[str]], width: int) -> bool:
    """Glue's built-in heuristics for a header row (see the module docstring)."""
    for i, name in enumerate(header[:width]):
        last = i == width - 1
        if name == "" and last:
            continue
        if crawl_schema.text_type(name.strip()) != "string":
            return False
        if not last and len(name) >= HEADER_MAX:
            return False
        if not COLUMN_NAME.fullmatch(name):
            return False
    return any(t != "string" for t in column_types(data, width, trim=True))


def header_names(header: list[str], width: int) -> list[str]:
    names, seen = [], set()
    for i in range(width):
        name = header[i].strip().lower() if i < len(header) else ""
        name = name or f"col{i}"
        while name in seen:
            name = f"{name}_{i}"
        seen.add(name)
        names.append(name)
    return names


def csv_table(sample: Sample, delimiter: str, quote: str, *, contains_header: str = "UNKNOWN",
              header: list[str] | None = None, trim: bool = True, single_column: bool = False,
              serde: str | None = None, strict_rows: bool = True) -> FileSchema | None:
    """A CSV schema of the sample with this delimiter, or None when the rows do not split evenly."""
    lines = sample.records
    quoted = bool(quote) and is_quoted(lines, delimiter, quote)
    rows = split_rows(lines, delimiter, quote if quoted else None)
    rows = rows[:CSV_RECORDS + 1]
    if len(rows) < (1 if single_column else 2):
        return None
    width = len(rows[0])
    if any(len(r) != width for r in rows):
        return None
    if width < 2 and not single_column:
        return None
    # a trailing delimiter on every line: the last column is empty throughout
    if width > 2 and all(r[-1] == "" for r in rows):
        width -= 1
        rows = [r[:width] for r in rows]
    if contains_header == "PRESENT":
        has_header = True
    elif contains_header == "ABSENT":
        has_header = False
    else:
        has_header = len(rows) >= 2 and looks_like_header(rows[0], rows[1:], width)
    data = rows[1:] if has_header else rows
    if header:
        names = [h.strip().lower() for h in header][:width]
        names += [f"col{i}" for i in range(len(names), width)]
    elif has_header:
        names = header_names(rows[0], width)
    else:
        names = [f"col{i}" for i in range(width)]
    types = column_types(data, width, trim)
    use_open_csv = (serde == "OpenCSVSerDe") or (serde in (None, "None") and quoted)
    if use_open_csv:
        lib, serde_params = OPEN_CSV, {"separatorChar": delimiter, "quoteChar": quote or '"'}
    else:
        lib, serde_params = LAZY_SIMPLE, {"field.delim": delimiter}
    params = {"delimiter": delimiter, "areColumnsQuoted": "true" if quoted else "false",
              "columnsOrdered": "true"}
    if has_header:
        params["skip.header.line.count"] = "1"
    found = FileSchema("csv", list(zip(names, types)), lib, serde_params, params=params)
    return with_counts(found, sample, len(lines) - (1 if has_header else 0))


def builtin_csv(sample: Sample) -> FileSchema | None:
    """Built-in CSV: the first delimiter of Glue's list that splits the rows evenly."""
    for delimiter in CSV_DELIMITERS:
        if not any(delimiter in line for line in sample.records[:5]):
            continue
        found = csv_table(sample, delimiter, '"')
        if found is not None:
            return found
    return None


def custom_csv(spec: dict, sample: Sample) -> tuple[FileSchema | None, float]:
    """A CsvClassifier: its delimiter, quote, header rule and SerDe."""
    found = csv_table(sample, spec.get("Delimiter") or ",", spec.get("QuoteSymbol") or '"',
                      contains_header=spec.get("ContainsHeader", "UNKNOWN"), header=spec.get("Header"),
                      trim=not spec.get("DisableValueTrimming", True),
                      single_column=bool(spec.get("AllowSingleColumn")), serde=spec.get("Serde"))
    return (found, 1.0) if found is not None else (None, 0.0)


def custom_classifier(entry: dict, sample: Sample, f: S3File) -> tuple[FileSchema | None, float]:
    """Run one of the crawler's custom classifiers (a ``glue.get_classifier`` ``Classifier``)."""
    if "CsvClassifier" in entry:
        return custom_csv(entry["CsvClassifier"], sample)
    if "JsonClassifier" in entry:
        return custom_json(entry["JsonClassifier"], sample, f)
    if "GrokClassifier" in entry:
        return custom_grok(entry["GrokClassifier"], sample)
    return None, 0.0          # XML classifiers: not emulated; Glue would try the next one
