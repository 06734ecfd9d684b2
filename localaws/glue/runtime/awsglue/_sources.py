"""Reading and writing S3 data and Data Catalog tables for ``GlueContext`` (Spark underneath).

The driver lists S3 itself (boto3, on the endpoint the job's environment
names) and hands Spark the exact files to read, for two reasons: a job
bookmark decides file by file what a run reads (``_bookmarks.py``), and Glue's
``recurse`` option decides whether subfolders count. Spark then reads them
through Hadoop's S3A connector (``s3://`` is mapped onto it, as EMRFS serves
it on Glue). Hidden files (``_SUCCESS``, ``_spark_metadata/``, names
starting with ``.``) are skipped, as Spark and Glue skip them.

Formats: ``csv``, ``json``, ``parquet`` and ``orc`` (``glueparquet`` is
written as Parquet). Differences from Glue's readers:

- CSV: Glue's reader types each value as it reads it (``12`` a number,
  ``x`` a string, both in one column a *choice*); Spark's ``inferSchema``
  picks one type per column (``string`` when values disagree). Without
  ``withHeader`` the columns are ``col0``, ``col1``... as on Glue.
- Catalog tables are read with the table's columns and types (CSV, JSON) or
  the files' own schema (Parquet, ORC), plus the partition columns, whose
  values come from the catalog's partitions, as on Glue.
"""
from __future__ import annotations

import fnmatch
import json
import time

from . import _bookmarks

FORMATS = {"csv", "json", "parquet", "orc", "glueparquet"}


def s3_client():
    import boto3
    return boto3.client("s3")


def glue_client():
    import boto3
    return boto3.client("glue")


def split(uri: str) -> tuple[str, str]:
    scheme, _, rest = uri.partition("://")
    if scheme not in ("s3", "s3a", "s3n") or not rest:
        raise ValueError(f"{uri!r} is not an s3:// path")
    bucket, _, key = rest.partition("/")
    return bucket, key


def hidden(relative: str) -> bool:
    """Whether a key (relative to the path read) is a file Spark and Glue skip."""
    return any(part.startswith(("_", ".")) for part in relative.split("/") if part)


def list_objects(paths: list[str], recurse: bool, exclusions=(), s3=None) -> list[dict]:
    """Every data object under ``paths``: ``{"uri", "base", "mtime_ms", "size"}`` dicts.

    A path naming one object is that object. ``recurse`` False keeps only the
    objects directly under a folder path (Glue's default); ``exclusions`` are
    Glue's glob patterns (``"**.json"``), matched against the key. ``s3``: the
    client to list with (default: the job's own credentials).
    """
    s3 = s3 or s3_client()
    found = []
    for path in paths:
        bucket, key = split(path)
        prefix = key if key.endswith("/") or not key else key + "/"
        exact = []
        if key and not key.endswith("/"):
            try:
                head = s3.head_object(Bucket=bucket, Key=key)
                exact = [{"Key": key, "LastModified": head["LastModified"], "Size": head["ContentLength"]}]
            except s3.exceptions.ClientError:
                exact = []
        if exact:
            objects, base = exact, path
        else:
            pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
            objects = [o for page in pages for o in page.get("Contents", [])]
            base = f"s3://{bucket}/{prefix}"
        for obj in objects:
            relative = obj["Key"][len(prefix):] if not exact else obj["Key"].rsplit("/", 1)[-1]
            if obj["Key"].endswith("/") or hidden(relative):
                continue
            if not recurse and "/" in relative:
                continue
            if any(fnmatch.fnmatch(obj["Key"], pattern) for pattern in exclusions):
                continue
            found.append({"uri": f"s3://{bucket}/{obj['Key']}", "base": base, "size": obj["Size"],
                          "mtime_ms": int(obj["LastModified"].timestamp() * 1000)})
    return sorted(found, key=lambda o: o["uri"])


def exclusion_list(value) -> list[str]:
    """Glue gives ``exclusions`` as a JSON list in a string (``'["**.txt"]'``) or as a list."""
    if not value:
        return []
    return json.loads(value) if isinstance(value, str) else list(value)


def read_files(spark, uris: list[str], fmt: str, options: dict | None = None, schema=None, base: str | None = None,
               hadoop: dict | None = None):
    """A DataFrame of ``uris`` in format ``fmt`` (Glue's format options translated to Spark's);
    ``hadoop``: Hadoop settings for this read only (Lake Formation's vended keys)."""
    from pyspark.sql.types import StructType
    if fmt not in FORMATS:
        raise ValueError(f"format {fmt!r} is not supported locally; use one of {sorted(FORMATS - {'glueparquet'})}")
    if not uris:
        return spark.createDataFrame([], schema or StructType([]))
    options = dict(options or {})
    reader = spark.read
    for key, value in (hadoop or {}).items():
        reader = reader.option(key, value)
    if base:
        reader = reader.option("basePath", base)      # key=value folders become columns, as Spark reads them
    if fmt == "csv":
        reader = reader.option("header", str(bool(options.get("withHeader", False))).lower())
        reader = reader.option("sep", options.get("separator", ","))
        reader = reader.option("quote", options.get("quoteChar", '"'))
        if options.get("escaper"):
            reader = reader.option("escape", options["escaper"])
        reader = reader.option("multiLine", str(bool(options.get("multiLine", False))).lower())
        reader = reader.schema(schema) if schema is not None else reader.option("inferSchema", "true")
        df = reader.csv(uris)
        if schema is None and not options.get("withHeader", False):
            df = df.toDF(*[f"col{i}" for i in range(len(df.columns))])
        return df
    if fmt == "json":
        reader = reader.option("multiLine", str(bool(options.get("multiLine", options.get("multiline", False)))).lower())
        if schema is not None:
            reader = reader.schema(schema)
        df = reader.json(uris)
        if options.get("jsonPath"):
            path = options["jsonPath"].lstrip("$").lstrip(".")
            if path.endswith("[*]"):
                from pyspark.sql import functions as F
                df = df.select(F.explode(F.col(path[:-3])).alias("__row")).select("__row.*")
            elif path:
                df = df.select(f"{path}.*")
        return df
    return reader.parquet(*uris) if fmt in ("parquet", "glueparquet") else reader.orc(*uris)


def write(df, path: str, fmt: str, partition_keys=(), options: dict | None = None) -> None:
    """Append ``df`` under ``path`` (Glue's writers add files; they never replace a folder)."""
    if fmt not in FORMATS:
        raise ValueError(f"format {fmt!r} is not supported locally; use one of {sorted(FORMATS - {'glueparquet'})}")
    if not df.columns:
        return                      # an empty frame (nothing new under a bookmark): nothing to write
    options = dict(options or {})
    writer = df.write.mode("append")
    if partition_keys:
        writer = writer.partitionBy(*partition_keys)
    if options.get("compression"):
        writer = writer.option("compression", options["compression"])
    if fmt == "csv":
        writer = writer.option("header", str(bool(options.get("writeHeader", True))).lower())
        writer = writer.option("sep", options.get("separator", ","))
        writer.csv(path)
    elif fmt == "json":
        writer.json(path)
    elif fmt == "orc":
        writer.orc(path)
    else:
        writer.parquet(path)


# ------------------------------------------------------------------ the Data Catalog
SERDE_FORMATS = (("parquet", "parquet"), ("orc", "orc"), ("json", "json"), ("opencsv", "csv"),
                 ("lazysimple", "csv"))


def table_format(table: dict) -> str:
    """The data format of a catalog table: its ``classification``, else its SerDe's."""
    params = {k.lower(): v for k, v in (table.get("Parameters") or {}).items()}
    classification = (params.get("classification") or "").lower()
    if classification in FORMATS:
        return classification
    sd = table.get("StorageDescriptor") or {}
    serde = ((sd.get("SerdeInfo") or {}).get("SerializationLibrary") or "").lower()
    for needle, fmt in SERDE_FORMATS:
        if needle in serde or needle in (sd.get("InputFormat") or "").lower():
            return fmt
    raise ValueError(f"table {table.get('Name')!r}: cannot tell its format (classification "
                     f"{classification or 'missing'}, SerDe {serde or 'missing'})")


def hive_type(name: str) -> str:
    """A catalog column type as Spark reads it (``varchar(10)`` and ``char(3)`` are strings)."""
    import re
    return re.sub(r"\b(var)?char\(\d+\)", "string", name.strip().lower())


def catalog_types(database: str, table_name: str, catalog_id=None) -> dict[str, str]:
    table = get_table(database, table_name, catalog_id)
    sd = table.get("StorageDescriptor") or {}
    return {c["Name"]: hive_type(c["Type"]) for c in (sd.get("Columns") or []) + (table.get("PartitionKeys") or [])}


def get_table(database: str, table_name: str, catalog_id=None) -> dict:
    kwargs = {"CatalogId": catalog_id} if catalog_id else {}
    return glue_client().get_table(DatabaseName=database, Name=table_name, **kwargs)["Table"]


def partitions(database: str, table_name: str, catalog_id=None) -> list[dict]:
    glue = glue_client()
    kwargs = {"CatalogId": catalog_id} if catalog_id else {}
    pages = glue.get_paginator("get_partitions").paginate(DatabaseName=database, TableName=table_name, **kwargs)
    return [p for page in pages for p in page.get("Partitions", [])]


def csv_options(table: dict) -> dict:
    sd = table.get("StorageDescriptor") or {}
    serde = (sd.get("SerdeInfo") or {}).get("Parameters") or {}
    params = {k.lower(): v for k, v in (table.get("Parameters") or {}).items()}
    return {"withHeader": str(params.get("skip.header.line.count", "0")) == "1",
            "separator": serde.get("field.delim") or serde.get("separatorChar") or ",",
            "quoteChar": serde.get("quoteChar") or '"'}


def read_table(spark, database: str, table_name: str, push_down_predicate: str = "", catalog_id=None,
               select=None):
    """A catalog table as a DataFrame.

    ``push_down_predicate`` (Spark SQL over the partition columns) is applied
    to the catalog's partitions *before* any file is listed, as on Glue: only
    the partitions it keeps are read. ``select(objects)`` may narrow the list
    of files (a job bookmark); it is called once, with every file listed.

    In a job run, Lake Formation decides first (``_lakeformation.plan``): the
    role's columns, rows and cells only, the files of a registered location
    listed and read with the keys Lake Formation vends.
    """
    from pyspark.sql import functions as F
    from pyspark.sql.types import StructType
    from awsglue import _lakeformation
    access = _lakeformation.plan(database, table_name, catalog_id)
    table = access.table if access is not None else get_table(database, table_name, catalog_id)
    s3 = access.s3_client() if access is not None else None
    hadoop = access.read_options() if access is not None else None
    fmt = table_format(table)
    sd = table.get("StorageDescriptor") or {}
    columns = [(c["Name"], hive_type(c["Type"])) for c in sd.get("Columns") or []]
    keys = [(c["Name"], hive_type(c["Type"])) for c in table.get("PartitionKeys") or []]
    schema = ", ".join(f"`{n}` {t}" for n, t in columns) if fmt in ("csv", "json") and columns else None
    options = csv_options(table) if fmt == "csv" else {}
    if keys:
        parts = partitions(database, table_name, catalog_id)
        if push_down_predicate and parts:
            rows = [[str(v) for v in p["Values"]] + [i] for i, p in enumerate(parts)]
            values = spark.createDataFrame(rows, [n for n, _t in keys] + ["__i"])
            values = values.select(*[F.col(n).try_cast(t).alias(n) for n, t in keys], "__i")
            kept = {row["__i"] for row in values.where(push_down_predicate).select("__i").collect()}
            parts = [p for i, p in enumerate(parts) if i in kept]
        groups = [(p["Values"], list_objects([p["StorageDescriptor"]["Location"]], recurse=True, s3=s3))
                  for p in parts]
    else:
        groups = [([], list_objects([sd["Location"]], recurse=True, s3=s3))]
    listing = [o for _values, found in groups for o in found]
    chosen = {o["uri"] for o in (select(listing) if select else listing)}
    frames = []
    for values, found in groups:
        uris = [o["uri"] for o in found if o["uri"] in chosen]
        if not uris:
            continue
        df = read_files(spark, uris, fmt, options, schema, hadoop=hadoop)
        for (name, type_name), value in zip(keys, values):
            df = df.withColumn(name, F.lit(value).try_cast(type_name))
        frames.append(df)
    if not frames:
        ddl = ", ".join(f"`{n}` {t}" for n, t in columns + keys)
        result = spark.createDataFrame([], ddl or StructType([]))
    else:
        result = frames[0]
        for df in frames[1:]:
            result = result.unionByName(df, allowMissingColumns=True)
    return access.restrict(result) if access is not None else result


def bookmarked(listing: list[dict], ctx: str, paths: list[str], bookmark, band_ms: int) -> list[dict]:
    """The objects of ``listing`` a read under ``transformation_ctx`` ``ctx`` takes, recording the
    source's new state in ``bookmark`` (``GlueContext``'s run bookmark), if it tracks this read."""
    if bookmark is None or not ctx:
        return listing
    previous = bookmark.previous(ctx)
    if previous and previous.get("paths") != list(paths):
        previous = None                          # a changed source starts afresh, as on Glue
    chosen = _bookmarks.select(listing, previous, band_ms)
    bookmark.record(ctx, _bookmarks.state(listing, int(time.time() * 1000), paths, band_ms))
    return chosen
