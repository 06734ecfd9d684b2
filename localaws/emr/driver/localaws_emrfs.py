"""The EMRFS stand-in's machinery (see sitecustomize.py for what and why)."""
from __future__ import annotations

import fnmatch
import functools
import inspect
import itertools
import json
import os
import shutil
import sys
import threading
from pathlib import Path

STAGING = Path(os.environ.get("LOCALAWS_EMRFS_STAGING", "."))
REPORT = os.environ.get("LOCALAWS_EMRFS_REPORT")
S3_SCHEMES = ("s3://", "s3a://", "s3n://")
_counter = itertools.count(1)
_lock = threading.Lock()
_read_cache: dict[str, str] = {}


def _s3():
    import boto3
    return boto3.client("s3")


def _log(op: str, uri: str, objects: int, nbytes: int, local: str) -> None:
    verb = "copied from" if op == "read" else "uploaded to"
    print(f"localaws-emrfs: {op}: {objects} object(s), {nbytes:,} bytes {verb} {uri}",
          file=sys.stderr, flush=True)
    if REPORT:
        with _lock, open(REPORT, "a") as f:
            f.write(json.dumps({"op": op, "uri": uri, "objects": objects, "bytes": nbytes}) + "\n")


def split_uri(uri: str) -> tuple[str, str]:
    rest = uri.split("://", 1)[1]
    bucket, _, key = rest.partition("/")
    return bucket, key


def _list(bucket: str, prefix: str) -> list[dict]:
    pages = _s3().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return [o for page in pages for o in page.get("Contents", [])]


def _objects_under(bucket: str, key: str) -> list[dict]:
    """The object ``key`` itself, or every object in the 'folder' ``key/``."""
    key = key.rstrip("/")
    found = [o for o in _list(bucket, key) if o["Key"] == key or o["Key"].startswith(key + "/")
             or key == ""]
    return found


# -- reads ------------------------------------------------------------------------
def stage_in(uri: str) -> str:
    """Copy what ``uri`` names from S3 to node-local disk; return the local path."""
    if uri in _read_cache:
        return _read_cache[uri]
    bucket, key = split_uri(uri)
    glob_at = min([i for i, ch in enumerate(key) if ch in "*?["] or [len(key)])
    folder = STAGING / "in" / str(next(_counter)) / bucket
    if glob_at < len(key):   # s3://b/logs/2026-*/x.csv: list the fixed part, match the rest
        objects = [o for o in _list(bucket, key[:glob_at])
                   if fnmatch.fnmatchcase(o["Key"], key) or
                   any(fnmatch.fnmatchcase(o["Key"], key.rstrip("/") + "/" + "*" * n)
                       for n in (1,))]
        prefix_local = str(folder / key)
    else:
        objects = _objects_under(bucket, key)
        prefix_local = str(folder / key.rstrip("/")) if key.strip("/") else str(folder)
    if not objects:
        raise FileNotFoundError(f"[PATH_NOT_FOUND] Path does not exist: {uri}")
    s3, total = _s3(), 0
    for obj in objects:
        target = folder / obj["Key"]
        target.parent.mkdir(parents=True, exist_ok=True)
        s3.download_file(bucket, obj["Key"], str(target))
        total += obj["Size"]
    _log("read", uri, len(objects), total, prefix_local)
    _read_cache[uri] = prefix_local
    return prefix_local


# -- writes ------------------------------------------------------------------------
def _exists(uri: str) -> bool:
    bucket, key = split_uri(uri)
    return bool(_objects_under(bucket, key))


def stage_out(local: str, uri: str, mode: str) -> None:
    """Upload the files Spark wrote under ``local`` to ``uri`` (a 'folder' in S3)."""
    bucket, key = split_uri(uri)
    key = key.rstrip("/")
    s3 = _s3()
    if mode == "overwrite":
        old = _objects_under(bucket, key)
        for i in range(0, len(old), 1000):
            s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": o["Key"]} for o in old[i:i + 1000]]})
    count = total = 0
    root = Path(local)
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    for path in files:
        if path.name.endswith(".crc"):
            continue      # Hadoop's local checksum files; EMRFS writes none to S3
        rel = path.name if path == root else path.relative_to(root).as_posix()
        s3.upload_file(str(path), bucket, f"{key}/{rel}" if key else rel)
        count += 1
        total += path.stat().st_size
    _log("write", uri, count, total, local)


def _fresh(kind: str) -> str:
    path = STAGING / kind / str(next(_counter))
    path.parent.mkdir(parents=True, exist_ok=True)
    return str(path)


# -- hdfs:/// on the CORE nodes' disks ----------------------------------------------
HDFS_NAMENODE = os.environ.get("LOCALAWS_HDFS_NAMENODE")


def _datanodes() -> dict[str, str]:
    return json.loads(os.environ.get("LOCALAWS_HDFS_DATANODES", "{}"))


def _namenode() -> dict:
    try:
        return json.loads(Path(HDFS_NAMENODE).read_text())
    except (OSError, ValueError, TypeError):
        return {}


def hdfs_path(uri: str) -> str:
    return "/" + uri.split("://", 1)[1].lstrip("/") if "://" in uri else uri


def hdfs_in(uri: str) -> str:
    """Gather the files of ``hdfs:///path`` from the DataNodes that hold them."""
    path = hdfs_path(uri).rstrip("/")
    entries = {f: nodes for f, nodes in _namenode().items() if f == path or f.startswith(path + "/")}
    if not entries:
        raise FileNotFoundError(f"[PATH_NOT_FOUND] Path does not exist: {uri}")
    datanodes = _datanodes()
    out = Path(_fresh("hdfs-in"))
    for name, nodes in sorted(entries.items()):
        replica = next((Path(datanodes[n]) / name.lstrip("/") for n in nodes
                        if n in datanodes and (Path(datanodes[n]) / name.lstrip("/")).exists()), None)
        if replica is None:
            raise IOError(f"org.apache.hadoop.hdfs.BlockMissingException: Could not obtain block "
                          f"of file={name}: no live DataNode holds it (replicas were on {', '.join(nodes)})")
        target = out / name.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(replica, target)
    return str(out / path.lstrip("/"))


def hdfs_out(local: str, uri: str, mode: str) -> None:
    """Spread the written files over the CORE nodes' DataNode folders."""
    path = hdfs_path(uri).rstrip("/")
    datanodes = sorted(_datanodes())
    if not datanodes:
        raise IOError("HDFS has no live DataNodes: this cluster has no CORE node to store data on")
    replication = int(os.environ.get("LOCALAWS_HDFS_REPLICATION", "1"))
    names = _namenode()
    if mode == "overwrite":
        names = {f: n for f, n in names.items() if not (f == path or f.startswith(path + "/"))}
    root = Path(local)
    files = sorted(p for p in root.rglob("*") if p.is_file() and not p.name.endswith(".crc"))
    total = 0
    for i, src in enumerate(files):
        name = f"{path}/{src.relative_to(root).as_posix()}"
        holders = [datanodes[(i + r) % len(datanodes)] for r in range(min(replication, len(datanodes)))]
        for node in holders:
            target = Path(_datanodes()[node]) / name.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, target)
        names[name] = holders
        total += src.stat().st_size
    Path(HDFS_NAMENODE).write_text(json.dumps(names, indent=1, sort_keys=True))
    print(f"localaws-hdfs: write: {len(files)} file(s), {total:,} bytes to {uri} "
          f"on {len(datanodes)} DataNode(s), replication {replication}", file=sys.stderr, flush=True)


# -- patching Spark's readers and writers -----------------------------------------
def _is_s3(p) -> bool:
    return isinstance(p, str) and p.startswith(S3_SCHEMES)


def _is_hdfs(p) -> bool:
    return isinstance(p, str) and p.startswith("hdfs://")


def _map_in(p):
    if isinstance(p, (list, tuple)):
        return type(p)(_map_in(x) for x in p)
    if _is_s3(p):
        return stage_in(p)
    if _is_hdfs(p):
        return hdfs_in(p)
    return p


def _wrap_reader(original, path_params):
    sig = inspect.signature(original)

    @functools.wraps(original)
    def read(*args, **kwargs):
        bound = sig.bind(*args, **kwargs)
        for name in path_params:
            if name in bound.arguments:
                bound.arguments[name] = _map_in(bound.arguments[name])
        return original(*bound.args, **bound.kwargs)
    return read


def _wrap_writer(original, set_mode):
    sig = inspect.signature(original)

    @functools.wraps(original)
    def write(self, *args, **kwargs):
        bound = sig.bind(self, *args, **kwargs)
        target = bound.arguments.get("path")
        if not (_is_s3(target) or _is_hdfs(target)):
            return original(*bound.args, **bound.kwargs)
        mode = (bound.arguments.get("mode") or getattr(self, "_localaws_mode", None) or "errorifexists").lower()
        mode = {"error": "errorifexists", "default": "errorifexists"}.get(mode, mode)
        exists = (_exists(target) if _is_s3(target)
                  else any(f == hdfs_path(target).rstrip("/") or f.startswith(hdfs_path(target).rstrip("/") + "/")
                           for f in _namenode()))
        if exists and mode == "errorifexists":
            raise RuntimeError(f"[PATH_ALREADY_EXISTS] Path {target} already exists. "
                               "Set mode as \"overwrite\" to overwrite the existing path.")
        if exists and mode == "ignore":
            return None
        local = _fresh("out")
        bound.arguments["path"] = local
        if "mode" in bound.arguments:
            bound.arguments["mode"] = None
        set_mode(self, "overwrite")
        result = original(*bound.args, **bound.kwargs)
        (stage_out if _is_s3(target) else hdfs_out)(local, target, mode)
        return result
    return write


def install() -> None:
    from pyspark import RDD, SparkContext
    from pyspark.sql.readwriter import DataFrameReader, DataFrameWriter

    for name, params in {"load": ("path",), "parquet": ("paths",), "csv": ("path",), "json": ("path",),
                         "orc": ("path",), "text": ("paths",)}.items():
        setattr(DataFrameReader, name, _wrap_reader(getattr(DataFrameReader, name), params))
    SparkContext.textFile = _wrap_reader(SparkContext.textFile, ("name",))

    original_mode = DataFrameWriter.mode

    def mode(self, saveMode):
        self._localaws_mode = saveMode
        return original_mode(self, saveMode)
    DataFrameWriter.mode = functools.wraps(original_mode)(mode)

    def java_mode(writer, value):
        original_mode(writer, value)
    for name in ("save", "parquet", "csv", "json", "orc", "text"):
        setattr(DataFrameWriter, name, _wrap_writer(getattr(DataFrameWriter, name), java_mode))

    original_save_text = RDD.saveAsTextFile

    @functools.wraps(original_save_text)
    def save_as_text_file(self, path, compressionCodecClass=None):
        if not (_is_s3(path) or _is_hdfs(path)):
            return original_save_text(self, path, compressionCodecClass)
        if _is_s3(path) and _exists(path):
            raise RuntimeError(f"Output directory {path} already exists")
        local = _fresh("out")
        result = original_save_text(self, local, compressionCodecClass)
        (stage_out if _is_s3(path) else hdfs_out)(local, path, "errorifexists")
        return result
    RDD.saveAsTextFile = save_as_text_file
