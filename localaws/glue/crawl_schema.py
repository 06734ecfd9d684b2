"""Column types as a Glue crawler writes them, inferred from values and merged across files.

A crawler reads a sample of every file and writes one schema per table: a
list of ``(name, type)`` in Hive's type language, which is what the Data
Catalog, Athena and Spark all read. This module holds the three steps:

- **inference** from text values (CSV: ``bigint``, ``double``, ``boolean``,
  else ``string``; Glue's built-in CSV classifier recognises no dates or
  timestamps) and from decoded JSON values (``int`` or ``bigint``, ``double``,
  ``boolean``, ``string``, ``array<...>``, ``struct<...>``);
- **translation** of the types a columnar file declares (Parquet and ORC
  through Arrow, Avro through its schema) into Glue's names (``int32`` ->
  ``int``, ``timestamp[ms]`` -> ``timestamp``, a record -> ``struct<...>``);
- **merging** the schemas of the files of one table: columns in order of
  first appearance, and a type wide enough for every file (``int`` and
  ``bigint`` -> ``bigint``; a number and a ``double`` -> ``double``; two
  structs -> the struct of both fields; anything else that disagrees ->
  ``string``).

Types are plain strings (``"struct<a:int,b:array<string>>"``), compared and
merged through a small parsed form, :class:`Kind`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

INT_RANGE = (-2**31, 2**31 - 1)
BIGINT_RANGE = (-2**63, 2**63 - 1)

_INT_TEXT = re.compile(r"[+-]?\d+")
_DOUBLE_TEXT = re.compile(r"[+-]?(\d+\.\d*|\.\d+|\d+)([eE][+-]?\d+)?|[+-]?(NaN|Infinity)")
_BOOL_TEXT = {"true", "false"}

#: Numeric types, narrowest first: merging two of them gives the later one.
NUMERIC = ("tinyint", "smallint", "int", "bigint", "float", "double")


# ------------------------------------------------------------------ a parsed type
@dataclass
class Kind:
    """A Hive type: ``name`` (``int``, ``array``, ``struct``, ``map``, ``decimal(10,2)``...)
    and, for complex types, ``items`` (array/map: element types) or ``fields`` (struct)."""
    name: str
    items: list["Kind"] = field(default_factory=list)
    fields: list[tuple[str, "Kind"]] = field(default_factory=list)

    def __str__(self) -> str:
        if self.name == "array":
            return f"array<{self.items[0]}>"
        if self.name == "map":
            return f"map<{self.items[0]},{self.items[1]}>"
        if self.name == "struct":
            return "struct<" + ",".join(f"{n}:{k}" for n, k in self.fields) + ">"
        return self.name


def parse(text: str) -> Kind:
    """``"struct<a:int,b:array<string>>"`` -> a :class:`Kind` (the inverse of ``str``)."""
    kind, rest = _parse(text.replace(" ", ""))
    if rest:
        raise ValueError(f"unexpected {rest!r} after the type in {text!r}")
    return kind


def _parse(text: str) -> tuple[Kind, str]:
    m = re.match(r"[a-z_0-9]+(\(\d+(,\d+)?\))?", text)
    if not m:
        raise ValueError(f"not a Hive type: {text!r}")
    name, rest = m.group(0), text[m.end():]
    if name in ("array", "map", "struct"):
        if not rest.startswith("<"):
            raise ValueError(f"{name} needs <...> in {text!r}")
        rest = rest[1:]
        kind = Kind(name)
        while True:
            if name == "struct":
                fname, _, rest = rest.partition(":")
                sub, rest = _parse(rest)
                kind.fields.append((fname, sub))
            else:
                sub, rest = _parse(rest)
                kind.items.append(sub)
            if rest.startswith(","):
                rest = rest[1:]
                continue
            if rest.startswith(">"):
                return kind, rest[1:]
            raise ValueError(f"unterminated {name} in {text!r}")
    return Kind(name), rest


# ------------------------------------------------------------------ inference
def text_type(value: str) -> str | None:
    """The type Glue's CSV classifier gives one field (None for an empty field,
    which says nothing about its column)."""
    if value == "":
        return None
    if _INT_TEXT.fullmatch(value):
        number = int(value)
        return "bigint" if BIGINT_RANGE[0] <= number <= BIGINT_RANGE[1] else "string"
    if _DOUBLE_TEXT.fullmatch(value):
        return "double"
    if value.lower() in _BOOL_TEXT:
        return "boolean"
    return "string"


def json_type(value) -> str | None:
    """The type of one decoded JSON value (None for null: it says nothing)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        if INT_RANGE[0] <= value <= INT_RANGE[1]:
            return "int"
        return "bigint" if BIGINT_RANGE[0] <= value <= BIGINT_RANGE[1] else "string"
    if isinstance(value, float):
        return "double"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        item = None
        for v in value:
            item = merge_types(item, json_type(v))
        return f"array<{item or 'string'}>"
    if isinstance(value, dict):
        fields = record_schema([value])
        if not fields:
            return "string"      # {} has no fields a struct could name
        return "struct<" + ",".join(f"{n}:{t}" for n, t in fields) + ">"
    return "string"


def record_schema(records) -> list[tuple[str, str]]:
    """The merged schema of JSON objects: keys in lower case (Hive's column
    names are case-insensitive), in order of first appearance."""
    types: dict[str, str | None] = {}
    for record in records:
        for key, value in record.items():
            name = str(key).lower()
            types[name] = merge_types(types.get(name), json_type(value))
    return [(n, t or "string") for n, t in types.items()]


# ------------------------------------------------------------------ declared types
def arrow_type(kind) -> str:
    """A Glue type for an Arrow type (what Parquet and ORC files declare)."""
    import pyarrow as pa
    t = pa.types
    if t.is_boolean(kind):
        return "boolean"
    if t.is_int8(kind) or t.is_uint8(kind):
        return "tinyint"
    if t.is_int16(kind) or t.is_uint16(kind):
        return "smallint"
    if t.is_int32(kind):
        return "int"
    if t.is_uint32(kind) or t.is_int64(kind) or t.is_uint64(kind):
        return "bigint"
    if t.is_float16(kind) or t.is_float32(kind):
        return "float"
    if t.is_float64(kind):
        return "double"
    if t.is_decimal(kind):
        return f"decimal({kind.precision},{kind.scale})"
    if t.is_string(kind) or t.is_large_string(kind):
        return "string"
    if t.is_binary(kind) or t.is_large_binary(kind) or t.is_fixed_size_binary(kind):
        return "binary"
    if t.is_timestamp(kind):
        return "timestamp"
    if t.is_date(kind):
        return "date"
    if t.is_list(kind) or t.is_large_list(kind) or t.is_fixed_size_list(kind):
        return f"array<{arrow_type(kind.value_type)}>"
    if t.is_map(kind):
        return f"map<{arrow_type(kind.key_type)},{arrow_type(kind.item_type)}>"
    if t.is_struct(kind):
        return "struct<" + ",".join(f"{kind.field(i).name.lower()}:{arrow_type(kind.field(i).type)}"
                                    for i in range(kind.num_fields)) + ">"
    if t.is_dictionary(kind):
        return arrow_type(kind.value_type)
    return "string"


_AVRO_PRIMITIVE = {"boolean": "boolean", "int": "int", "long": "bigint", "float": "float",
                   "double": "double", "string": "string", "bytes": "binary", "fixed": "binary",
                   "enum": "string", "null": "string"}


def avro_type(schema) -> str:
    """A Glue type for an Avro schema node (a parsed ``.avsc`` fragment)."""
    if isinstance(schema, list):                         # a union: ["null", X] is a nullable X
        branches = [s for s in schema if s != "null"]
        return avro_type(branches[0]) if len(branches) == 1 else "string"
    if isinstance(schema, str):
        return _AVRO_PRIMITIVE.get(schema, "string")
    logical = schema.get("logicalType")
    if logical == "date":
        return "date"
    if logical in ("timestamp-millis", "timestamp-micros", "local-timestamp-millis", "local-timestamp-micros"):
        return "timestamp"
    if logical == "decimal":
        return f"decimal({schema.get('precision', 38)},{schema.get('scale', 0)})"
    kind = schema.get("type")
    if kind == "record":
        return "struct<" + ",".join(f"{f['name'].lower()}:{avro_type(f['type'])}" for f in schema["fields"]) + ">"
    if kind == "array":
        return f"array<{avro_type(schema['items'])}>"
    if kind == "map":
        return f"map<string,{avro_type(schema['values'])}>"
    if isinstance(kind, (dict, list)):
        return avro_type(kind)
    return _AVRO_PRIMITIVE.get(kind, "string")


# ------------------------------------------------------------------ merging
def merge_types(a: str | None, b: str | None) -> str | None:
    """The narrowest type both ``a`` and ``b`` fit in (None: no value seen yet)."""
    if a is None or a == b:
        return b
    if b is None:
        return a
    return str(_merge(parse(a), parse(b)))


def _merge(a: Kind, b: Kind) -> Kind:
    if str(a) == str(b):
        return a
    if a.name in NUMERIC and b.name in NUMERIC:
        return Kind(max(a.name, b.name, key=NUMERIC.index))
    if a.name == b.name == "array":
        return Kind("array", [_merge(a.items[0], b.items[0])])
    if a.name == b.name == "map":
        return Kind("map", [_merge(a.items[0], b.items[0]), _merge(a.items[1], b.items[1])])
    if a.name == b.name == "struct":
        merged = dict(a.fields)
        for name, kind in b.fields:
            merged[name] = _merge(merged[name], kind) if name in merged else kind
        return Kind("struct", fields=list(merged.items()))
    return Kind("string")


def merge_schemas(schemas) -> list[tuple[str, str]]:
    """Columns of several files: in order of first appearance, types merged."""
    types: dict[str, str] = {}
    for schema in schemas:
        for name, kind in schema:
            types[name] = merge_types(types.get(name), kind)
    return list(types.items())


def similar(a, b, threshold: float = 0.7) -> bool:
    """Whether two schemas describe the same data set, by their columns.

    A column counts as shared when both schemas have it with agreeing types
    (equal, or both numbers: a type may widen from file to file). One schema
    that only adds columns to the other is the same data set a little later
    (schema evolution); otherwise the shared columns must be at least
    ``threshold`` of all the columns either has.
    """
    cols_a, cols_b = {n: _family(t) for n, t in a}, {n: _family(t) for n, t in b}
    if not cols_a or not cols_b:
        return cols_a == cols_b
    shared = {n for n in cols_a.keys() & cols_b.keys() if cols_a[n] == cols_b[n]}
    if shared == cols_a.keys() or shared == cols_b.keys():
        return True
    return len(shared) / len(cols_a.keys() | cols_b.keys()) >= threshold


def _family(kind: str) -> str:
    return "number" if kind in NUMERIC or kind.startswith("decimal") else kind
