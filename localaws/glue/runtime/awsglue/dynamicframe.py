"""``DynamicFrame``: Glue's table of records, here a Spark DataFrame with Glue's method names.

On Glue a DynamicFrame is a distributed set of self-describing records: each
record carries its own schema, a field may hold different types in
different records (a *choice* type, resolved later with ``resolveChoice``),
and records that fail to parse are kept aside as *error records*. It is
Glue's own engine (Scala classes inside the job's JVM), convertible to and
from a Spark DataFrame with ``toDF()`` and ``DynamicFrame.fromDF(...)``.

Locally a DynamicFrame **is** a Spark DataFrame plus a name, and each method
is a DataFrame operation:

- one Spark type per column, no choice types (see ``awsglue/__init__.py``);
- no error records: a line Spark cannot parse becomes nulls (Spark's
  ``PERMISSIVE`` mode), and ``errorsCount()`` is always 0;
- casts (``apply_mapping``, ``resolveChoice``) never fail: a value that does
  not convert becomes null, as in Glue, even on Glue 6.0 where Spark SQL's
  own ``CAST`` fails (ANSI mode);
- ``filter`` runs the Python function on each record (a dict), in Spark's
  Python workers, like Glue's;
- field paths use dots for nested fields (``"address.city"``) and backticks
  around a name that itself contains a dot (``"`a.b`"``), as on Glue.
"""
from __future__ import annotations

import json
import re

__all__ = ["DynamicFrame", "DynamicFrameCollection"]

#: Glue's type names (ApplyMapping, ResolveChoice) -> Spark SQL type names.
GLUE_TYPES = {
    "string": "string", "int": "int", "integer": "int", "long": "bigint", "bigint": "bigint",
    "short": "smallint", "smallint": "smallint", "byte": "tinyint", "tinyint": "tinyint",
    "float": "float", "double": "double", "boolean": "boolean", "bool": "boolean",
    "date": "date", "timestamp": "timestamp", "binary": "binary", "decimal": "decimal(10,2)",
}


def spark_type(glue_type: str) -> str:
    """``"long"`` -> ``"bigint"``; ``"decimal(12,2)"`` and other Spark type strings pass through."""
    name = glue_type.strip().lower()
    if name in GLUE_TYPES:
        return GLUE_TYPES[name]
    if re.fullmatch(r"decimal\(\s*\d+\s*,\s*\d+\s*\)|(array|struct|map)<.*>", name):
        return name
    raise ValueError(f"unknown type {glue_type!r}; Glue's types: {', '.join(sorted(GLUE_TYPES))}")


def split_path(path: str) -> list[str]:
    """``"a.b"`` -> ``["a", "b"]``; ``"`x.y`.z"`` -> ``["x.y", "z"]``."""
    parts, current, quoted = [], "", False
    for char in path:
        if char == "`":
            quoted = not quoted
        elif char == "." and not quoted:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return parts


def column(parts: list[str]):
    """The Spark column at a split path (each part quoted, so dots in names are literal)."""
    from pyspark.sql import functions as F
    return F.col(".".join(f"`{p.replace('`', '``')}`" for p in parts))


def has_path(schema, parts: list[str]) -> bool:
    from pyspark.sql.types import StructType
    current = schema
    for part in parts:
        if not isinstance(current, StructType) or part not in current.names:
            return False
        current = current[part].dataType
    return True


def build(tree: dict):
    """Columns from a tree ``{name: column or subtree}``: subtrees become structs (nested targets)."""
    from pyspark.sql import functions as F
    return [(value if not isinstance(value, dict) else F.struct(*build(value))).alias(name)
            for name, value in tree.items()]


class DynamicFrame:
    """A Spark DataFrame with the name and methods of a Glue DynamicFrame."""

    def __init__(self, df, glue_ctx, name: str = ""):
        self._df = df
        self.glue_ctx = glue_ctx
        self.name = name

    # -- to and from Spark ------------------------------------------------------
    def toDF(self, options=None):  # noqa: N802 - Glue's names throughout
        """The Spark DataFrame (on Glue, a conversion; here the frame itself)."""
        return self._df

    @staticmethod
    def fromDF(dataframe, glue_ctx, name: str = "") -> "DynamicFrame":  # noqa: N802
        return DynamicFrame(dataframe, glue_ctx, name)

    def _new(self, df, name: str | None = None) -> "DynamicFrame":
        return DynamicFrame(df, self.glue_ctx, name if name is not None else self.name)

    # -- looking at it ------------------------------------------------------------
    def count(self) -> int:
        return self._df.count()

    def schema(self):
        """The Spark ``StructType`` (Glue returns its own schema class, with the same fields)."""
        return self._df.schema

    def printSchema(self) -> None:  # noqa: N802
        print(self._df.schema.treeString(), end="")

    def show(self, num_rows: int = 20) -> None:
        """Print the first records, one JSON object per line, as Glue's ``show`` does."""
        for row in self._df.limit(num_rows).collect():
            print(json.dumps(row.asDict(recursive=True), default=str))

    def errorsCount(self) -> int:  # noqa: N802
        """Error records: none locally (Spark's PERMISSIVE parsing turns bad fields into nulls)."""
        return 0

    def stageErrorsCount(self) -> int:  # noqa: N802
        return 0

    def getNumPartitions(self) -> int:  # noqa: N802
        return self._df.rdd.getNumPartitions()

    def repartition(self, num_partitions: int) -> "DynamicFrame":
        return self._new(self._df.repartition(num_partitions))

    def coalesce(self, num_partitions: int) -> "DynamicFrame":
        return self._new(self._df.coalesce(num_partitions))

    # -- transforms ---------------------------------------------------------------
    def apply_mapping(self, mappings, case_sensitive: bool = False, transformation_ctx: str = "",
                      info: str = "", stageThreshold: int = 0, totalThreshold: int = 0) -> "DynamicFrame":  # noqa: N803
        """Keep, rename and cast fields: ``[(source, source_type, target, target_type), ...]``.

        Fields no mapping names are dropped; a source field the data lacks is
        skipped (as for a DynamicFrame record without it); a target with dots
        (``"address.city"``) builds a nested struct. A value the target type
        cannot take becomes null: DynamicFrame casts never fail, whatever
        the Spark version's ANSI mode (``try_cast`` here).
        """
        tree: dict = {}
        for mapping in mappings:
            if len(mapping) != 4:
                raise ValueError(f"a mapping is (source, source_type, target, target_type); got {mapping!r}")
            source, _source_type, target, target_type = mapping
            parts = split_path(source)
            if not has_path(self._df.schema, parts):
                continue
            node = tree
            *parents, leaf = split_path(target)
            for part in parents:
                node = node.setdefault(part, {})
            node[leaf] = column(parts).try_cast(spark_type(target_type))
        return self._new(self._df.select(*build(tree)))

    def resolveChoice(self, specs=None, choice: str = "", database: str | None = None,  # noqa: N802
                      table_name: str | None = None, transformation_ctx: str = "", info: str = "",
                      stageThreshold: int = 0, totalThreshold: int = 0, catalog_id=None) -> "DynamicFrame":  # noqa: N803
        """Resolve choice types. Locally every column has one type, so:

        - ``("col", "cast:int")`` and ``("col", "project:int")`` cast the column;
        - ``("col", "make_cols")`` / ``"make_struct"`` change nothing (there is
          no second type to split out);
        - ``("col", "match_catalog")`` (or ``choice="match_catalog"`` with
          ``database`` and ``table_name``) casts to the catalog table's type;
        - ``choice=...`` applies to the columns that would be choice types on
          Glue: none here, so only ``match_catalog`` has an effect.
        """
        df = self._df
        catalog = None
        if choice == "match_catalog" or any(action == "match_catalog" for _p, action in specs or []):
            if not (database and table_name):
                raise ValueError("match_catalog needs database and table_name")
            catalog = self.glue_ctx._catalog_types(database, table_name, catalog_id)
        actions = list(specs or [])
        if choice == "match_catalog":
            actions += [(name, "match_catalog") for name in df.columns
                        if name in catalog and (name, "match_catalog") not in actions]
        for path, action in actions:
            parts = split_path(path)
            if not has_path(df.schema, parts):
                continue
            kind, _, type_name = action.partition(":")
            if kind in ("cast", "project"):
                target = spark_type(type_name)
            elif kind == "match_catalog":
                if parts[0] not in catalog:
                    continue
                target = catalog[parts[0]]
            elif kind in ("make_cols", "make_struct"):
                continue
            else:
                raise ValueError(f"unknown resolveChoice action {action!r} "
                                 "(cast:<type>, project:<type>, make_cols, make_struct, match_catalog)")
            df = self._replace(df, parts, column(parts).try_cast(target))
        return self._new(df)

    @staticmethod
    def _replace(df, parts: list[str], value):
        """``df`` with the field at ``parts`` replaced by ``value`` (nested fields through withField)."""
        if len(parts) == 1:
            return df.withColumn(parts[0], value)
        return df.withColumn(parts[0], column(parts[:1]).withField(
            ".".join(f"`{p}`" for p in parts[1:]), value))

    def drop_fields(self, paths, transformation_ctx: str = "", info: str = "",
                    stageThreshold: int = 0, totalThreshold: int = 0) -> "DynamicFrame":  # noqa: N803
        df = self._df
        for path in paths:
            parts = split_path(path)
            if not has_path(df.schema, parts):
                continue
            if len(parts) == 1:
                df = df.drop(parts[0])
            else:
                df = df.withColumn(parts[0], column(parts[:1]).dropFields(
                    ".".join(f"`{p}`" for p in parts[1:])))
        return self._new(df)

    def select_fields(self, paths, transformation_ctx: str = "", info: str = "",
                      stageThreshold: int = 0, totalThreshold: int = 0) -> "DynamicFrame":  # noqa: N803
        """Keep only ``paths`` (nested paths keep their struct around them)."""
        tree: dict = {}
        for path in paths:
            parts = split_path(path)
            if not has_path(self._df.schema, parts):
                continue
            node = tree
            for part in parts[:-1]:
                node = node.setdefault(part, {})
            node[parts[-1]] = column(parts)
        return self._new(self._df.select(*build(tree)))

    def rename_field(self, oldName: str, newName: str, transformation_ctx: str = "", info: str = "",  # noqa: N803
                     stageThreshold: int = 0, totalThreshold: int = 0) -> "DynamicFrame":  # noqa: N803
        """Rename one field; a nested one (``"a.b"`` -> ``"a.c"``) stays in its struct."""
        old, new = split_path(oldName), split_path(newName)
        if not has_path(self._df.schema, old):
            return self._new(self._df)
        if len(old) == 1 and len(new) == 1:
            return self._new(self._df.withColumnRenamed(old[0], new[0]))
        if old[:-1] != new[:-1]:
            raise ValueError("rename_field renames within one struct: the paths must differ in the last part only")
        inner = column(old[:1]).withField(".".join(f"`{p}`" for p in new[1:]), column(old))
        return self._new(self._df.withColumn(old[0], inner.dropFields(".".join(f"`{p}`" for p in old[1:]))))

    def filter(self, f, transformation_ctx: str = "", info: str = "",
               stageThreshold: int = 0, totalThreshold: int = 0) -> "DynamicFrame":  # noqa: N803
        """The records for which ``f(record)`` is true.

        ``record`` is a dict of field -> value (nested dicts for structs), read
        as Glue's DynamicRecord is: ``rec["field"]``. ``f`` runs in Spark's
        Python workers, so it must not use the driver's objects.
        """
        schema = self._df.schema
        kept = self._df.rdd.filter(lambda row: bool(f(row.asDict(recursive=True))))
        return self._new(self._df.sparkSession.createDataFrame(kept, schema))

    def join(self, paths1, paths2, frame2: "DynamicFrame", transformation_ctx: str = "", info: str = "",
             stageThreshold: int = 0, totalThreshold: int = 0) -> "DynamicFrame":  # noqa: N803
        """Equality join on ``paths1`` = ``paths2`` (Glue keeps both sides' fields)."""
        condition = None
        left, right = self._df.alias("l"), frame2.toDF().alias("r")
        for a, b in zip(paths1, paths2):
            term = left[a] == right[b]
            condition = term if condition is None else condition & term
        return self._new(left.join(right, condition, "inner"))

    def relationalize(self, root_table_name: str, staging_path: str | None = None, options=None,
                      transformation_ctx: str = "", info: str = "", stageThreshold: int = 0,  # noqa: N803
                      totalThreshold: int = 0) -> "DynamicFrameCollection":  # noqa: N803
        """Flatten nested data into tables (see ``awsglue.transforms.Relationalize``)."""
        tables = _relationalize(self._df, root_table_name)
        return DynamicFrameCollection({name: self._new(df, name) for name, df in tables.items()}, self.glue_ctx)

    def drop_null_fields(self) -> "DynamicFrame":
        """Drop the top-level fields that are null in every record."""
        from pyspark.sql import functions as F
        df = self._df
        if not df.columns:
            return self._new(df)
        counts = df.agg(*[F.count(column([c])).alias(str(i)) for i, c in enumerate(df.columns)]).first()
        empty = [c for i, c in enumerate(df.columns) if counts[str(i)] == 0]
        return self._new(df.drop(*empty))


class DynamicFrameCollection:
    """Named DynamicFrames, as ``Relationalize`` returns them."""

    def __init__(self, dynamic_frames: dict, glue_ctx):
        self._frames = dict(dynamic_frames)
        self.glue_ctx = glue_ctx

    def keys(self):
        return self._frames.keys()

    def values(self):
        return self._frames.values()

    def select(self, key: str, transformation_ctx: str = "") -> DynamicFrame:
        if key not in self._frames:
            raise KeyError(f"no frame {key!r} in the collection; it has {sorted(self._frames)}")
        return self._frames[key]

    def __getitem__(self, key: str) -> DynamicFrame:
        return self.select(key)

    def __len__(self) -> int:
        return len(self._frames)

    def __iter__(self):
        return iter(self._frames)

    def map(self, callable, transformation_ctx: str = "") -> "DynamicFrameCollection":  # noqa: A002 - Glue's name
        return DynamicFrameCollection({k: callable(v, transformation_ctx) for k, v in self._frames.items()},
                                      self.glue_ctx)


# ------------------------------------------------------------------ Relationalize
def _flatten_structs(df):
    """Replace every struct column by its fields, named ``parent.child``, until none is left."""
    from pyspark.sql.types import StructType
    while any(isinstance(f.dataType, StructType) for f in df.schema.fields):
        columns = []
        for f in df.schema.fields:
            if isinstance(f.dataType, StructType):
                columns += [column([f.name, sub.name]).alias(f"{f.name}.{sub.name}") for sub in f.dataType.fields]
            else:
                columns.append(column([f.name]))
        df = df.select(*columns)
    return df


def _relationalize(df, table: str, root: str | None = None) -> dict:
    """``{table: flat frame, <root>_<array column>: child frame, ...}``, Glue's Relationalize layout.

    Structs become dotted columns (``address.city``). Each array column
    becomes a child table named ``<root>_<column>`` with columns ``id`` (the
    key stored in the parent's column in its place), ``index`` (the
    element's position, from 0) and ``<column>.val`` (the element; a struct
    element's fields become ``<column>.val.<field>``). Arrays inside
    elements repeat the pattern one level down: the column
    ``orders.val.notes`` of ``root_orders`` becomes ``root_orders.val.notes``.
    """
    from pyspark.sql import functions as F
    from pyspark.sql.types import ArrayType, LongType, StructField, StructType
    flat = _flatten_structs(df)
    arrays = [f.name for f in flat.schema.fields if isinstance(f.dataType, ArrayType)]
    if not arrays:
        return {table: flat}
    # One key per row (1, 2, 3...), materialized once so that the parent and its children agree.
    schema = StructType(flat.schema.fields + [StructField("__key", LongType(), False)])
    numbered = flat.rdd.zipWithIndex().map(lambda pair: (*pair[0], pair[1] + 1))
    keyed = flat.sparkSession.createDataFrame(numbered, schema).localCheckpoint(eager=True)
    tables: dict = {}
    parent = keyed
    for name in arrays:
        child = keyed.where(column([name]).isNotNull()).select(
            F.col("__key").alias("id"), F.posexplode(column([name])).alias("index", f"{name}.val"))
        parent = parent.withColumn(name, F.when(column([name]).isNotNull(), F.col("__key")))
        tables.update(_relationalize(child, f"{root or table}_{name}", root or table))
    return {table: parent.drop("__key"), **tables}
