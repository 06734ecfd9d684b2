"""HDFS on the core nodes: why losing a CORE node can lose data.

On EMR, HDFS runs on the cluster itself: a **NameNode** on the master node
knows every file and which nodes hold its blocks, and a **DataNode** on
each *core* node stores them on that instance's disks. Task nodes run no
DataNode. EMR's default replication factor (``dfs.replication``) is 1 for
fewer than 4 core nodes, 2 for fewer than 10, else 3: on a small cluster
each block lives on exactly one core node, and when that instance is lost
so is the block. S3 (through EMRFS) is where data that must outlive the
cluster belongs.

Locally, ``hdfs:///path`` reads and writes in a step go through the driver
shim (``driver/localaws_hdfs.py``): a write spreads the files over the
running core nodes' folders and records the holders in a NameNode file; a
read gathers them back and fails with ``BlockMissingException`` when no
live node holds a file. This module gives the shim its settings and lets
the teaching hooks read the NameNode's view.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path


def replication(core_nodes: int) -> int:
    """EMR's default dfs.replication: 1 for fewer than 4 core nodes, 2 for fewer than 10, else 3."""
    return 1 if core_nodes < 4 else 2 if core_nodes < 10 else 3


def namenode_file(cluster_folder: Path) -> Path:
    return Path(cluster_folder) / "namenode.json"


def driver_env(cluster_folder: Path, nodes, scratch: Path) -> dict[str, str]:
    """Environment for a step driver's HDFS shim: NameNode file, live DataNodes, replication."""
    core = [n for n in nodes if n.role == "CORE"]
    live = {n.instance_id: str(datanode(n)) for n in core if n.state == "RUNNING"}
    return {"LOCALAWS_HDFS_NAMENODE": str(namenode_file(cluster_folder)),
            "LOCALAWS_HDFS_DATANODES": json.dumps(live),
            "LOCALAWS_HDFS_REPLICATION": str(replication(len(core))),
            "LOCALAWS_HDFS_SCRATCH": str(scratch)}


def datanode(node) -> Path:
    """The folder that plays the instance's disk for its DataNode."""
    return node.folder / "hdfs"


def lose_disk(node) -> None:
    """The instance's disks go with it: its DataNode blocks are gone."""
    shutil.rmtree(datanode(node), ignore_errors=True)


def blocks(cluster_folder: Path) -> dict[str, list[str]]:
    """The NameNode's view: each HDFS file and the core instances holding it."""
    try:
        return json.loads(namenode_file(cluster_folder).read_text())
    except (OSError, ValueError):
        return {}
