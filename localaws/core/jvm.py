"""Where the extra JVM jars are: the sets of ``jars.lock``, installed by ``make``.

On AWS, a service brings its own jars: an EMR cluster has EMRFS and the AWS
SDK on every node's classpath, a Glue job has the Glue libraries. Locally,
Spark comes from the pyspark package, and what it lacks (Hadoop's S3A
connector and the AWS SDK for Java, for ``s3://``) comes from Maven Central.
``tools/fetch_jars.py`` (run by ``make``) installs each *set* listed in
``jars.lock`` into its own folder, checking every file's sha256, so that
nothing is downloaded while a notebook runs::

    .venv/jars/s3a/hadoop-aws-3.5.0.jar
    .venv/jars/s3a/s3-2.35.4.jar
    ...

This module finds those folders again, looking in this order:

1. ``$LOCALAWS_JAR_DIR``, when it is set (the ``--dest`` given to the fetcher);
2. ``.venv/jars`` in the project (next to this package), then
   ``<sys.prefix>/jars`` (the environment Python runs in).

Standard library only, like ``java.py``.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

#: The project root: the folder holding ``localaws/`` (and ``.venv/``).
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def candidates() -> list[Path]:
    """Folders that may hold the installed sets, in the order they are tried."""
    found = []
    if os.environ.get("LOCALAWS_JAR_DIR"):
        found.append(Path(os.environ["LOCALAWS_JAR_DIR"]))
    found += [PROJECT_ROOT / ".venv" / "jars", Path(sys.prefix) / "jars"]
    return list(dict.fromkeys(found))


def jar_dir() -> Path:
    """The folder of installed sets: the first candidate that exists (else the first one)."""
    folders = candidates()
    return next((folder for folder in folders if folder.is_dir()), folders[0])


def jars(set_name: str) -> list[Path]:
    """The jars of one set (``"s3a"``), sorted by name, or an error that says what to do."""
    for folder in candidates():
        found = sorted((folder / set_name).glob("*.jar"))
        if found:
            return found
    looked = ", ".join(str(folder / set_name) for folder in candidates())
    raise RuntimeError(
        f"The JVM jars of set {set_name!r} are not installed (looked in {looked}). Run "
        f"`make` in the project folder (or `.venv/bin/python tools/fetch_jars.py --set "
        f"{set_name}`): it installs them from Maven Central, as listed in jars.lock.")
