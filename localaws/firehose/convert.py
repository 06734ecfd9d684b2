"""Record format conversion: JSON records in, one Parquet (or ORC) file out [1].

``DataFormatConversionConfiguration`` names three things:

- a **deserializer** that reads the JSON: ``OpenXJsonSerDe`` (lenient: numbers
  written as strings are read, nested JSON into a string column is kept as
  its text, keys are matched case-insensitively unless ``CaseInsensitive``
  is false, ``ColumnToJsonKeyMappings`` renames) or ``HiveJsonSerDe`` (strict:
  ``{"a": "123"}`` into an int column is an error; ``TimestampFormats`` in
  Joda syntax, or ``millis``) [2];
- a **schema**: the columns of an AWS Glue table, read through the Glue API
  (``GetTable``) at each delivery, as Firehose reads ``VersionId`` LATEST;
- a **serializer**: ``ParquetSerDe`` (``Compression`` SNAPPY, GZIP or
  UNCOMPRESSED; default SNAPPY) or ``OrcSerDe`` (SNAPPY, ZLIB or NONE) [3].

A record may hold several JSON documents one after another (``{"a":1}{"a":2}``
is two rows; a JSON *array* is not valid input) [2]. A JSON field the table
does not have is ignored, a column the JSON lacks is null. A record that is
not JSON, or whose values do not fit the column types, is not written: it
goes to the error output, type ``format-conversion-failed``, as the row
``{"attemptsMade", "arrivalTimestamp", "lastErrorCode", "lastErrorMessage",
"attemptEndingTimestamp", "rawData", "sequenceNumber", "subSequenceNumber",
"dataCatalogTable": {...}}`` [4] (the guide's current page spells the two
error fields ``ErrorCode``/``ErrorMessage``; its earlier version, and
deliveries observed by other emulators' authors, ``lastErrorCode``), with
``DataFormatConversion.ParseError`` (not JSON) or
``DataFormatConversion.MalformedData`` (does not fit).

Timestamps (OpenX) may be ``yyyy-MM-dd'T'HH:mm:ss[.S]'Z'``, ``yyyy-[M]M-[d]d
HH:mm:ss[.S]``, epoch seconds, epoch milliseconds or floating epoch seconds
[2]; an integer of 10^11 or more is read as milliseconds.

[1] https://docs.aws.amazon.com/firehose/latest/dev/record-format-conversion.html
[2] same page, "Choosing the JSON Deserializer"
[3] https://docs.aws.amazon.com/firehose/latest/APIReference/API_ParquetSerDe.html, API_OrcSerDe.html
[4] https://docs.aws.amazon.com/firehose/latest/dev/record-format-conversion-error-handling.html
"""
from __future__ import annotations

import json
import re
from datetime import date, datetime, timezone
from decimal import Decimal, InvalidOperation

import pyarrow as pa

from .prefixes import to_strptime

INT_RANGES = {"tinyint": 8, "smallint": 16, "int": 32, "integer": 32, "bigint": 64}
ARROW_INTS = {"tinyint": pa.int8(), "smallint": pa.int16(), "int": pa.int32(), "integer": pa.int32(),
              "bigint": pa.int64()}
SIMPLE = {"string": pa.string(), "double": pa.float64(), "float": pa.float32(), "boolean": pa.bool_(),
          "timestamp": pa.timestamp("us"), "date": pa.date32(), "binary": pa.binary(), **ARROW_INTS}
_SPACE = re.compile(r"\s*")


class Malformed(ValueError):
    """A value that does not fit its column."""


# ------------------------------------------------------------------ Hive types
def parse_type(text: str):
    """A Hive type string (``array<struct<a:int,b:string>>``) as a small tree:
    ``"int"``, ``("decimal", p, s)``, ``("array", t)``, ``("map", k, v)``, ``("struct", [(name, t)])``."""
    tree, rest = _parse(text.strip().lower())
    if rest.strip():
        raise ValueError(f"unexpected {rest!r} in type {text!r}")
    return tree


def _parse(text: str):
    name = re.match(r"[a-z_]+", text)
    if not name:
        raise ValueError(f"not a type: {text!r}")
    kind, rest = name.group(0), text[name.end():]
    if kind in ("varchar", "char", "decimal") and rest.startswith("("):
        close = rest.index(")")
        args = [int(a) for a in rest[1:close].split(",")]
        rest = rest[close + 1:]
        if kind == "decimal":
            return ("decimal", args[0], args[1] if len(args) > 1 else 0), rest
        return "string", rest
    if kind == "decimal":
        return ("decimal", 10, 0), rest               # Hive's default precision
    if kind in ("varchar", "char"):
        return "string", rest
    if kind in SIMPLE:
        return kind, rest
    if kind not in ("array", "map", "struct") or not rest.startswith("<"):
        raise ValueError(f"type {kind!r} is not supported")
    rest = rest[1:]
    if kind == "array":
        inner, rest = _parse(rest)
        tree = ("array", inner)
    elif kind == "map":
        key, rest = _parse(rest)
        value, rest = _parse(rest.lstrip()[1:].lstrip())        # skip ","
        tree = ("map", key, value)
    else:
        fields = []
        while True:
            field = re.match(r"\s*([a-z_][a-z0-9_]*)\s*:\s*", rest)
            if not field:
                raise ValueError(f"bad struct field in {text!r}")
            inner, rest = _parse(rest[field.end():])
            fields.append((field.group(1), inner))
            rest = rest.lstrip()
            if rest.startswith(","):
                rest = rest[1:].lstrip()
                continue
            break
        tree = ("struct", fields)
    rest = rest.lstrip()
    if not rest.startswith(">"):
        raise ValueError(f"missing '>' in {text!r}")
    return tree, rest[1:]


def arrow_type(tree) -> pa.DataType:
    if isinstance(tree, str):
        return SIMPLE[tree]
    if tree[0] == "decimal":
        return pa.decimal128(tree[1], tree[2])
    if tree[0] == "array":
        return pa.list_(arrow_type(tree[1]))
    if tree[0] == "map":
        return pa.map_(arrow_type(tree[1]), arrow_type(tree[2]))
    return pa.struct([(name, arrow_type(t)) for name, t in tree[1]])


# ------------------------------------------------------------------ the converter
class Converter:
    """JSON records -> an Arrow table of the Glue table's columns."""

    def __init__(self, columns: list[dict], deserializer: dict):
        self.columns = [(c["Name"].lower(), parse_type(c["Type"])) for c in columns]
        self.schema = pa.schema([(name, arrow_type(tree)) for name, tree in self.columns])
        self.hive = "HiveJsonSerDe" in deserializer
        options = deserializer.get("OpenXJsonSerDe") or deserializer.get("HiveJsonSerDe") or {}
        self.case_insensitive = options.get("CaseInsensitive", True) if not self.hive else True
        self.dots = bool(options.get("ConvertDotsInJsonKeysToUnderscores"))
        self.mapping = {k.lower(): v for k, v in (options.get("ColumnToJsonKeyMappings") or {}).items()}
        self.formats = list(options.get("TimestampFormats") or []) if self.hive else []

    @staticmethod
    def check_formats(deserializer: dict) -> None:
        """Raise ValueError for a HiveJsonSerDe TimestampFormats pattern not run locally."""
        for fmt in (deserializer.get("HiveJsonSerDe") or {}).get("TimestampFormats") or []:
            if fmt != "millis":
                to_strptime(fmt)

    def rows(self, data: bytes) -> list[dict]:
        """The table rows in one record; ValueError (not JSON) or :class:`Malformed`."""
        text, docs, i = data.decode("utf-8"), [], 0
        decoder = json.JSONDecoder()
        while True:
            i = _SPACE.match(text, i).end()
            if i == len(text):
                break
            doc, i = decoder.raw_decode(text, i)
            if not isinstance(doc, dict):
                raise ValueError(f"expected a JSON object, got {type(doc).__name__}")
            docs.append(doc)
        if not docs:
            raise ValueError("the record holds no JSON document")
        return [self._row(doc) for doc in docs]

    def table(self, rows: list[dict]) -> pa.Table:
        return pa.Table.from_pylist(rows, schema=self.schema)

    def _row(self, doc: dict) -> dict:
        fields = {}
        for key, value in doc.items():
            if self.dots:
                key = key.replace(".", "_")
            fields[key.lower() if self.case_insensitive else key] = value
        row = {}
        for name, tree in self.columns:
            key = self.mapping.get(name, name)
            key = key.lower() if self.case_insensitive else key
            try:
                row[name] = self._value(fields.get(key), tree)
            except Malformed as exc:
                raise Malformed(f"column '{name}': {exc}") from None
        return row

    def _value(self, value, tree):
        if value is None:
            return None
        kind = tree if isinstance(tree, str) else tree[0]
        if kind == "string":
            if isinstance(value, str):
                return value
            if self.hive and isinstance(value, (dict, list)):
                raise Malformed("the Hive JSON SerDe does not read nested JSON into a string")
            return json.dumps(value) if isinstance(value, (dict, list, bool)) else str(value)
        if kind in INT_RANGES:
            number = self._number(value, int)
            bits = INT_RANGES[kind]
            if not -2 ** (bits - 1) <= number < 2 ** (bits - 1):
                raise Malformed(f"{value!r} is out of range for {kind}")
            return number
        if kind in ("double", "float"):
            return self._number(value, float)
        if kind == "boolean":
            if isinstance(value, bool):
                return value
            if not self.hive and isinstance(value, str) and value.lower() in ("true", "false"):
                return value.lower() == "true"
            raise Malformed(f"{value!r} is not a boolean")
        if kind == "decimal":
            return self._decimal(value, tree[1], tree[2])
        if kind == "timestamp":
            return self._timestamp(value)
        if kind == "date":
            try:
                return date.fromisoformat(str(value))
            except ValueError:
                raise Malformed(f"{value!r} is not a date (yyyy-MM-dd)") from None
        if kind == "binary":
            return value.encode() if isinstance(value, str) else json.dumps(value).encode()
        if kind == "array":
            if not isinstance(value, list):
                raise Malformed(f"{json.dumps(value)[:80]} is not an array")
            return [self._value(v, tree[1]) for v in value]
        if kind == "map":
            if not isinstance(value, dict):
                raise Malformed(f"{json.dumps(value)[:80]} is not an object")
            return [(self._value(k, tree[1]), self._value(v, tree[2])) for k, v in value.items()]
        if not isinstance(value, dict):                       # struct
            raise Malformed(f"{json.dumps(value)[:80]} is not an object")
        lower = {k.lower(): v for k, v in value.items()}
        return {name: self._value(lower.get(name), t) for name, t in tree[1]}

    def _number(self, value, cast):
        if isinstance(value, bool) or isinstance(value, (dict, list)):
            raise Malformed(f"{json.dumps(value)[:80]} is not a number")
        if isinstance(value, str):
            if self.hive:
                raise Malformed(f"{value!r} is a string; the Hive JSON SerDe does not read numbers from strings")
            try:
                value = float(value) if cast is float else int(value.strip())
            except ValueError:
                raise Malformed(f"{value!r} is not a number") from None
        if cast is int:
            if isinstance(value, float) and not value.is_integer():
                raise Malformed(f"{value!r} is not an integer")
            return int(value)
        return float(value)

    @staticmethod
    def _decimal(value, precision: int, scale: int) -> Decimal:
        if isinstance(value, (bool, dict, list)):
            raise Malformed(f"{json.dumps(value)[:80]} is not a decimal")
        try:
            number = Decimal(str(value)).quantize(Decimal(1).scaleb(-scale))
        except (InvalidOperation, ValueError):
            raise Malformed(f"{value!r} is not a decimal({precision},{scale})") from None
        if len(number.as_tuple().digits) > precision:
            raise Malformed(f"{value!r} does not fit decimal({precision},{scale})")
        return number

    def _timestamp(self, value) -> datetime:
        if isinstance(value, bool) or isinstance(value, (dict, list)):
            raise Malformed(f"{json.dumps(value)[:80]} is not a timestamp")
        if self.hive:
            return self._hive_timestamp(value)
        if isinstance(value, (int, float)):
            seconds = value / 1000 if isinstance(value, int) and abs(value) >= 10 ** 11 else value
            return datetime.fromtimestamp(seconds, timezone.utc).replace(tzinfo=None)
        text = str(value).strip()
        if re.fullmatch(r"-?\d+(\.\d+)?", text):
            return self._timestamp(float(text) if "." in text else int(text))
        match = re.fullmatch(r"(\d{4})-(\d{1,2})-(\d{1,2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z?)", text)
        if not match:
            raise Malformed(f"{value!r} is not a timestamp the OpenX JSON SerDe reads")
        y, mo, d, h, mi, s, frac, _ = match.groups()
        return datetime(int(y), int(mo), int(d), int(h), int(mi), int(s), int((frac or "0").ljust(6, "0")[:6]))

    def _hive_timestamp(self, value) -> datetime:
        for fmt in self.formats:
            try:
                if fmt == "millis":
                    return datetime.fromtimestamp(int(value) / 1000, timezone.utc).replace(tzinfo=None)
                return datetime.strptime(str(value), to_strptime(fmt))
            except (ValueError, TypeError):
                continue
        if not self.formats:           # java.sql.Timestamp.valueOf: yyyy-[m]m-[d]d hh:mm:ss[.f...]
            match = re.fullmatch(r"(\d{4})-(\d{1,2})-(\d{1,2}) (\d{1,2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?",
                                 str(value).strip())
            if match:
                y, mo, d, h, mi, s, frac = match.groups()
                return datetime(int(y), int(mo), int(d), int(h), int(mi), int(s),
                                int((frac or "0").ljust(6, "0")[:6]))
        raise Malformed(f"{value!r} matches none of the timestamp formats")
