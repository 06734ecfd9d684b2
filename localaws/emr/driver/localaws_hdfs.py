"""The HDFS stand-in's machinery (see sitecustomize.py for what and why).

Settings come from the environment (``localaws/emr/hdfs.py`` sets them):
``LOCALAWS_HDFS_NAMENODE`` (the NameNode file: HDFS path -> holders),
``LOCALAWS_HDFS_DATANODES`` (live core instance id -> its DataNode folder),
``LOCALAWS_HDFS_REPLICATION`` and ``LOCALAWS_HDFS_SCRATCH`` (local disk
where Spark reads and writes before files are gathered or spread).
"""
from __future__ import annotations

import functools
import inspect
import itertools
import json
import os
import shutil
import sys
from pathlib import Path

SCRATCH = Path(os.environ.get("LOCALAWS_HDFS_SCRATCH", "."))
NAMENODE = os.environ.get("LOCALAWS_HDFS_NAMENODE")
_counter = itertools.count(1)


def _datanodes() -> dict[str, str]:
    return json.loads(os.environ.get("LOCALAWS_HDFS_DATANODES", "{}"))


def _namenode() -> dict:
    try:
        return json.loads(Path(NAMENODE).read_text())
    except (OSError, ValueError, TypeError):
        return {}


def _fresh(kind: str) -> str:
    path = SCRATCH / kind / str(next(_counter))
    path.parent.mkdir(parents=True, exist_ok=True)
    return str(path)


def is_hdfs(p) -> bool:
    return isinstance(p, str) and p.startswith("hdfs://")


def hdfs_path(uri: str) -> str:
    """``hdfs:///a/b`` -> ``/a/b``, without a trailing slash."""
    return ("/" + uri.split("://", 1)[1].lstrip("/")).rstrip("/")


def _under(path: str, names) -> list[str]:
    return [f for f in names if f == path or f.startswith(path + "/")]


def exists(uri: str) -> bool:
    return bool(_under(hdfs_path(uri), _namenode()))


def gather(uri: str) -> str:
    """Copy the files of ``hdfs:///path`` from the DataNodes that hold them; return the local path."""
    path = hdfs_path(uri)
    names = _namenode()
    entries = {f: names[f] for f in _under(path, names)}
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


def spread(local: str, uri: str, mode: str) -> None:
    """Spread the files Spark wrote under ``local`` over the core nodes' DataNode folders."""
    path = hdfs_path(uri)
    datanodes = _datanodes()
    holders_by_order = sorted(datanodes)
    if not holders_by_order:
        raise IOError("HDFS has no live DataNodes: this cluster has no CORE node to store data on")
    replication = int(os.environ.get("LOCALAWS_HDFS_REPLICATION", "1"))
    names = _namenode()
    if mode == "overwrite":
        names = {f: n for f, n in names.items() if f not in _under(path, names)}
    root = Path(local)
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    files = [f for f in files if not f.name.endswith(".crc")]     # Hadoop's local checksum files
    total = 0
    for i, src in enumerate(files):
        name = f"{path}/{src.name if src == root else src.relative_to(root).as_posix()}"
        holders = [holders_by_order[(i + r) % len(holders_by_order)]
                   for r in range(min(replication, len(holders_by_order)))]
        for node in holders:
            target = Path(datanodes[node]) / name.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, target)
        names[name] = holders
        total += src.stat().st_size
    Path(NAMENODE).write_text(json.dumps(names, indent=1, sort_keys=True))
    print(f"localaws-hdfs: write: {len(files)} file(s), {total:,} bytes to {uri} "
          f"on {len(holders_by_order)} DataNode(s), replication {replication}", file=sys.stderr, flush=True)


# -- patching Spark's readers and writers -----------------------------------------
def _map_in(p):
    if isinstance(p, (list, tuple)):
        return type(p)(_map_in(x) for x in p)
    return gather(p) if is_hdfs(p) else p


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


def _save_mode(writer, given) -> str:
    mode = (given or getattr(writer, "_localaws_mode", None) or "errorifexists").lower()
    return {"error": "errorifexists", "default": "errorifexists"}.get(mode, mode)


def _wrap_writer(original, set_mode):
    sig = inspect.signature(original)

    @functools.wraps(original)
    def write(self, *args, **kwargs):
        bound = sig.bind(self, *args, **kwargs)
        target = bound.arguments.get("path")
        if not is_hdfs(target):
            return original(*bound.args, **bound.kwargs)
        mode = _save_mode(self, bound.arguments.get("mode"))
        if exists(target) and mode == "errorifexists":
            raise RuntimeError(f"[PATH_ALREADY_EXISTS] Path {target} already exists. "
                               "Set mode as \"overwrite\" to overwrite the existing path.")
        if exists(target) and mode == "ignore":
            return None
        local = _fresh("out")
        bound.arguments["path"] = local
        if "mode" in bound.arguments:
            bound.arguments["mode"] = None
        set_mode(self, "overwrite")
        result = original(*bound.args, **bound.kwargs)
        spread(local, target, mode)
        return result
    return write


def install() -> None:
    """Route Spark's ``hdfs://`` reads and writes through :func:`gather` and :func:`spread`."""
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

    for name in ("save", "parquet", "csv", "json", "orc", "text"):
        setattr(DataFrameWriter, name, _wrap_writer(getattr(DataFrameWriter, name), original_mode))

    original_save_text = RDD.saveAsTextFile

    @functools.wraps(original_save_text)
    def save_as_text_file(self, path, compressionCodecClass=None):
        if not is_hdfs(path):
            return original_save_text(self, path, compressionCodecClass)
        if exists(path):
            raise RuntimeError(f"Output directory {path} already exists")
        local = _fresh("out")
        result = original_save_text(self, local, compressionCodecClass)
        spread(local, path, "errorifexists")
        return result
    RDD.saveAsTextFile = save_as_text_file
