"""A dataset's files in, a job's output files out: DataBrew's side of Amazon S3.

**In.** A dataset (``CreateDataset``) points at S3: ``Input.S3InputDefinition``
names a bucket and a key, either one object or a folder (a key ending in
``/``: every object under it, in key order, all of one format). ``Format`` is
``CSV``, ``JSON``, ``PARQUET`` or ``ORC`` (or, when absent, what the file
extension says); ``FormatOptions`` adds the CSV ``Delimiter`` and
``HeaderRow`` (without a header the columns are named ``Column_1``,
``Column_2``...) and JSON ``MultiLine`` (one document instead of one object
per line). Text files ending in ``.gz`` or ``.bz2`` are decompressed. Values
read from text get a type the way DataBrew infers one: a column whose values
are all whole numbers is ``int``, all numbers ``double``, all true/false
``boolean``, anything else ``string``; an empty field is a missing value.

**Out.** A recipe job's ``Outputs`` each name an S3 ``Location`` (a folder),
a ``Format`` (CSV, JSON lines, PARQUET/GLUEPARQUET, AVRO or ORC), a
``CompressionFormat``, ``PartitionColumns`` and ``Overwrite``. The files are
named as DataBrew names them:

- ``<job>_<ddMonyyyy>_<epoch ms>_part00000.csv`` by default: every run adds
  a new set of files next to the earlier ones;
- ``<job>_part00000.csv`` with ``Overwrite``: the folder is emptied first;
- ``<col>=<value>/`` folders (Hive style) for ``PartitionColumns``, whose
  values then leave the files, one file per partition;
- a text codec adds its extension: ``.csv.gz``, ``.json.bz2``.

Every output file is encoded in memory before the first one is written
(:func:`output_files`), so a run that fails writes nothing.
"""
from __future__ import annotations

import bz2
import gzip
import io
import json
import re
import zlib
from datetime import datetime

import pandas as pd
import pyarrow as pa
from botocore.exceptions import ClientError

from localaws.core import tables
from localaws.core.s3 import folder, join, split
from .engine import RunFailed


class NotRunnable(RunFailed):
    """A dataset or output this stand-in cannot read or write. The API refuses what it can see
    beforehand (HTTP 501, not emulated); found only while running (an ``.xlsx`` file in a
    dataset without a Format), it fails the run."""

    def __init__(self, message: str):
        super().__init__(f"Not emulated by the local stack: {message}")
        self.reason = message


INPUT_FORMATS = ("CSV", "JSON", "PARQUET", "ORC")
EXTENSIONS = {".csv": "CSV", ".tsv": "CSV", ".txt": "CSV", ".json": "JSON", ".jsonl": "JSON",
              ".parquet": "PARQUET", ".orc": "ORC", ".xlsx": "EXCEL", ".xls": "EXCEL"}

#: Output Format -> (core.tables format, file extension)
OUTPUT_FORMATS = {"CSV": ("csv", "csv"), "JSON": ("jsonl", "json"), "PARQUET": ("parquet", "parquet"),
                  "GLUEPARQUET": ("parquet", "parquet"), "AVRO": ("avro", "avro"), "ORC": ("orc", "orc")}
#: CompressionFormat for text outputs -> file extension
TEXT_CODECS = {"GZIP": "gz", "BZIP2": "bz2", "DEFLATE": "deflate", "ZSTD": "zst"}
#: CompressionFormat each columnar format can use (inside the file)
COLUMNAR_CODECS = {"parquet": ("SNAPPY", "GZIP", "ZSTD", "BROTLI", "LZ4"),
                   "orc": ("SNAPPY", "ZLIB", "ZSTD", "LZ4"), "avro": ("DEFLATE",)}
ALL_FORMATS = ("CSV", "JSON", "PARQUET", "GLUEPARQUET", "AVRO", "ORC", "XML", "TABLEAUHYPER")
ALL_CODECS = ("GZIP", "LZ4", "SNAPPY", "BZIP2", "DEFLATE", "LZO", "BROTLI", "ZSTD", "ZLIB")
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
HIVE_NULL_PARTITION = "__HIVE_DEFAULT_PARTITION__"


# ------------------------------------------------------------------ reading a dataset
def _objects(s3, bucket: str, key: str) -> list[tuple[str, bytes]]:
    """(key, bytes) of the dataset's objects: one object, or every object under a folder."""
    where = f"s3://{bucket}/{key}"
    try:
        if key == "" or key.endswith("/"):
            keys = sorted(o["Key"] for o in s3.list(join(bucket, key))
                          if not o["Key"].endswith("/") and o.get("Size", 0) > 0)
            if not keys:
                raise RunFailed(f"The dataset's S3 folder {where} holds no objects")
        else:
            keys = [key]
        return [(k, s3.read(join(bucket, k))) for k in keys]
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        raise RunFailed(f"The dataset's S3 input {where} cannot be read: {code} "
                        f"({exc.response.get('Error', {}).get('Message', '')})") from None


def _format(dataset: dict, key: str) -> str:
    if dataset.get("Format"):
        return dataset["Format"]
    stem = re.sub(r"\.(gz|bz2)$", "", key.lower())
    return next((fmt for ext, fmt in EXTENSIONS.items() if stem.endswith(ext)), "CSV")


def _decompressed(key: str, data: bytes) -> bytes:
    if key.endswith(".gz"):
        return gzip.decompress(data)
    if key.endswith(".bz2"):
        return bz2.decompress(data)
    return data


INT = re.compile(r"[+-]?\d+")
NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def infer_types(df: pd.DataFrame) -> pd.DataFrame:
    """Text columns typed as DataBrew infers them: int, double, boolean or string."""
    out = {}
    for column in df.columns:
        text = df[column].astype("string")
        values = text.dropna()
        if values.empty:
            out[column] = text
        elif values.map(lambda v: bool(INT.fullmatch(v)) and abs(int(v)) < 2 ** 63).all():
            out[column] = pd.to_numeric(text).astype("Int64")
        elif values.map(lambda v: bool(NUMBER.fullmatch(v))).all():
            out[column] = pd.to_numeric(text).astype("Float64")
        elif values.str.lower().isin(["true", "false"]).all():
            out[column] = text.str.lower().map({"true": True, "false": False}).astype("boolean")
        else:
            out[column] = text
    return pd.DataFrame(out, columns=df.columns)


def _python_typed(records: list[dict]) -> pd.DataFrame:
    """JSON records as a frame: numbers, booleans and strings with nullable types; the rest as is."""
    df = pd.DataFrame.from_records(records)
    for column in df.columns:
        values = [v for v in df[column] if v is not None and not (isinstance(v, float) and pd.isna(v))]
        if values and all(isinstance(v, bool) for v in values):
            df[column] = df[column].astype("boolean")
        elif values and all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            df[column] = df[column].astype("Int64")
        elif values and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            df[column] = df[column].astype("Float64")
        elif all(isinstance(v, str) for v in values):
            df[column] = df[column].astype("string")
    return df


ARROW_TO_PANDAS = {pa.int8(): pd.Int8Dtype(), pa.int16(): pd.Int16Dtype(), pa.int32(): pd.Int32Dtype(),
                   pa.int64(): pd.Int64Dtype(), pa.float32(): pd.Float32Dtype(), pa.float64(): pd.Float64Dtype(),
                   pa.bool_(): pd.BooleanDtype(), pa.string(): pd.StringDtype(), pa.large_string(): pd.StringDtype()}


def _read_one(fmt: str, key: str, data: bytes, options: dict) -> pd.DataFrame:
    if fmt == "CSV":
        csv = options.get("Csv") or {}
        header = csv.get("HeaderRow", True)
        frame = pd.read_csv(io.BytesIO(_decompressed(key, data)), sep=csv.get("Delimiter", ","),
                            header=0 if header else None, dtype=str, keep_default_na=False, na_values=[""])
        if not header:
            frame.columns = [f"Column_{i + 1}" for i in range(len(frame.columns))]
        return frame
    if fmt == "JSON":
        text = _decompressed(key, data).decode("utf-8")
        if (options.get("Json") or {}).get("MultiLine"):
            document = json.loads(text)
            records = document if isinstance(document, list) else [document]
        else:
            records = [json.loads(line) for line in text.splitlines() if line.strip()]
        return _python_typed(records)
    if fmt == "PARQUET":
        import pyarrow.parquet as pq
        table = pq.read_table(io.BytesIO(data))
    else:
        import pyarrow.orc as orc
        table = orc.read_table(io.BytesIO(data))
    return table.to_pandas(types_mapper=ARROW_TO_PANDAS.get)


def read_dataset(s3, dataset: dict) -> pd.DataFrame:
    """The rows of a dataset (a ``DescribeDataset``-shaped dict), read from S3 through ``s3``."""
    location = (dataset.get("Input") or {}).get("S3InputDefinition")
    if not location:
        raise NotRunnable("only datasets with an Input.S3InputDefinition are read locally "
                          "(not Data Catalog or database inputs)")
    bucket, key = location.get("Bucket", ""), location.get("Key", "") or ""
    objects = _objects(s3, bucket, key)
    fmt = _format(dataset, objects[0][0])
    if fmt not in INPUT_FORMATS:
        raise NotRunnable(f"datasets in format {fmt} are not read locally (CSV, JSON, PARQUET, ORC are)")
    try:
        frames = [_read_one(fmt, k, data, dataset.get("FormatOptions") or {}) for k, data in objects]
    except (ValueError, UnicodeDecodeError, pa.ArrowException) as exc:
        raise RunFailed(f"The dataset's S3 input s3://{bucket}/{key} is not valid {fmt}: {exc}") from None
    df = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    return infer_types(df) if fmt == "CSV" else df.reset_index(drop=True)


# ------------------------------------------------------------------ writing outputs
def check_output(output: dict) -> None:
    """Raise ``ValueError`` (not DataBrew's) or :class:`NotRunnable` (not run here) for an output."""
    fmt = output.get("Format") or "CSV"
    codec = output.get("CompressionFormat")
    if fmt not in ALL_FORMATS:
        raise ValueError(f"Format must be one of {', '.join(ALL_FORMATS)}, got {fmt!r}")
    if codec is not None and codec not in ALL_CODECS:
        raise ValueError(f"CompressionFormat must be one of {', '.join(ALL_CODECS)}, got {codec!r}")
    if fmt not in OUTPUT_FORMATS:
        raise NotRunnable(f"output format {fmt} is not written locally "
                          f"({', '.join(OUTPUT_FORMATS)} are)")
    kind = OUTPUT_FORMATS[fmt][0]
    allowed = tuple(TEXT_CODECS) if kind in ("csv", "jsonl") else COLUMNAR_CODECS[kind]
    if codec is not None and codec not in allowed:
        raise NotRunnable(f"{fmt} output compressed with {codec} is not written locally "
                          f"({', '.join(allowed)} are)")
    delimiter = ((output.get("FormatOptions") or {}).get("Csv") or {}).get("Delimiter", ",")
    if len(delimiter) != 1:
        raise ValueError(f"FormatOptions.Csv.Delimiter must be a single character, got {delimiter!r}")


def _hive_escape(value: str) -> str:
    return "".join(f"%{ord(c):02X}" if c in '"#%\'*/:=?\\{[]^' or ord(c) < 32 else c for c in value)


def _encode(df: pd.DataFrame, output: dict) -> bytes:
    kind, _ = OUTPUT_FORMATS[output.get("Format") or "CSV"]
    codec = output.get("CompressionFormat")
    table = pa.Table.from_pandas(df, preserve_index=False)
    if kind in ("csv", "jsonl"):
        delimiter = ((output.get("FormatOptions") or {}).get("Csv") or {}).get("Delimiter", ",")
        data = tables.encode(table, kind, None, delimiter=delimiter)
        if codec in ("GZIP", "ZSTD"):
            return tables.compress(data, codec.lower())
        if codec == "BZIP2":
            return bz2.compress(data)
        if codec == "DEFLATE":
            return zlib.compress(data)
        return data
    default = "SNAPPY" if kind == "parquet" else None
    return tables.encode(table, kind, (codec or default or "none").lower())


def output_files(df: pd.DataFrame, output: dict, job_name: str, when: datetime) -> list[tuple[str, bytes]]:
    """``[(s3 uri, bytes)]`` of one output of a run that ended at ``when`` (see the module docstring)."""
    location = output["Location"]
    bucket, key = location["Bucket"], location.get("Key") or ""
    prefix = folder(key) if key else ""
    kind, ext = OUTPUT_FORMATS[output.get("Format") or "CSV"]
    codec = output.get("CompressionFormat")
    if kind in ("csv", "jsonl") and codec in TEXT_CODECS:
        ext += "." + TEXT_CODECS[codec]
    stem = job_name if output.get("Overwrite") else \
        f"{job_name}_{when.day:02d}{MONTHS[when.month - 1]}{when.year}_{int(when.timestamp() * 1000)}"
    name = f"{stem}_part00000.{ext}"
    partitions = output.get("PartitionColumns") or []
    absent = [c for c in partitions if c not in df.columns]
    if absent:
        raise RunFailed(f"Output partition column {absent[0]!r} does not exist; "
                        f"columns: {', '.join(map(str, df.columns))}")
    if not partitions:
        return [(join(bucket, prefix + name), _encode(df, output))]
    texts = [[HIVE_NULL_PARTITION if pd.isna(v) else str(v) for v in df[c]] for c in partitions]
    keys = list(zip(*texts))
    files = []
    for value in sorted(set(keys)):
        rows = pd.Series([k == value for k in keys], index=df.index)
        path = "/".join(f"{c}={_hive_escape(v)}" for c, v in zip(partitions, value))
        part = df[rows].drop(columns=partitions).reset_index(drop=True)
        files.append((join(bucket, f"{prefix}{path}/{name}"), _encode(part, output)))
    return files


def publish(s3, files: list[tuple[str, bytes]], empty_first: list[str]) -> None:
    """Write ``files`` after emptying the folders ``empty_first`` (outputs with Overwrite).

    If a write fails, the files of this run already written are deleted again, so a
    failed run leaves no partial output behind.
    """
    try:
        for prefix in empty_first:
            bucket, _ = split(prefix)
            old = [join(bucket, o["Key"]) for o in s3.list(prefix)]
            if old:
                s3.delete(old)
        written = []
        try:
            for uri, body in files:
                s3.write(uri, body)
                written.append(uri)
        except ClientError:
            if written:
                s3.delete(written)
            raise
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise RunFailed(f"Writing the job's output failed: {error.get('Code')} ({error.get('Message')})") from None
