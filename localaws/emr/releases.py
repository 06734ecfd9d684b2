"""EMR release labels: which software a cluster runs.

On AWS you do not install Spark on an EMR cluster: you pick a **release
label** (``ReleaseLabel="emr-7.13.0"`` in RunJobFlow) and EMR installs the
versions of Spark, Hadoop, Hive... that AWS tested together for that
release. The label therefore decides the Spark version your steps run on,
and EMR refuses a label it does not know.

This module is the list of release labels the stand-in accepts, each with
its Spark version, from AWS's "Spark release history" table (link and date
below). Locally every step runs on the pyspark package installed here
(Spark 4.x); the release's Spark version decides the settings that differ
between Spark lines (``core.spark.release_conf``: Spark 3.x steps run with
ANSI SQL mode off, as on EMR 6.x and 7.x).

``emr-spark-8.0.0`` is the first release of the Spark 4 line ("AWS runtime
for Apache Spark"), on EMR on EC2 too. EMR 5.x releases (Spark 2) are real
but not emulated.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from . import errors

#: Where the list comes from, and when it was checked.
SOURCE = "https://docs.aws.amazon.com/emr/latest/ReleaseGuide/Spark-release-history.html"
SOURCE_SPARK_8 = "https://docs.aws.amazon.com/emr/latest/ReleaseGuide/emr-spark800-release.html"
CHECKED = "2026-11-29"

#: Release label -> Apache Spark version it ships (AWS adds an ``-amzn-N`` build suffix).
SPARK_VERSIONS = {
    "emr-spark-8.0.0": "4.0.2",                  # released 2026-05-21
    "emr-7.13.0": "3.5.6", "emr-7.12.0": "3.5.6", "emr-7.11.0": "3.5.6",
    "emr-7.10.0": "3.5.5", "emr-7.9.0": "3.5.5", "emr-7.8.0": "3.5.4",
    "emr-7.7.0": "3.5.3", "emr-7.6.0": "3.5.3", "emr-7.5.0": "3.5.2", "emr-7.4.0": "3.5.2",
    "emr-7.3.0": "3.5.1", "emr-7.2.0": "3.5.1", "emr-7.1.0": "3.5.0", "emr-7.0.0": "3.5.0",
    "emr-6.15.0": "3.4.1", "emr-6.14.0": "3.4.1", "emr-6.13.0": "3.4.1", "emr-6.12.0": "3.4.0",
    "emr-6.11.1": "3.3.2", "emr-6.11.0": "3.3.2", "emr-6.10.1": "3.3.1", "emr-6.10.0": "3.3.1",
    "emr-6.9.1": "3.3.0", "emr-6.9.0": "3.3.0", "emr-6.8.1": "3.3.0", "emr-6.8.0": "3.3.0",
    "emr-6.7.0": "3.2.1", "emr-6.6.0": "3.2.0", "emr-6.5.0": "3.1.2", "emr-6.4.0": "3.1.2",
    "emr-6.3.0": "3.1.1", "emr-6.2.0": "3.0.1",
}

#: The release a cluster gets when RunJobFlow names none (the newest 7.x).
DEFAULT = "emr-7.13.0"


@dataclass(frozen=True)
class Release:
    label: str
    spark_version: str

    @property
    def spark_major(self) -> int:
        return int(self.spark_version.split(".", 1)[0])


def lookup(label: str | None) -> Release | None:
    """The release called ``label`` (None: the default release), or None if EMR has no such label."""
    label = label or DEFAULT
    spark = SPARK_VERSIONS.get(label)
    return Release(label, spark) if spark else None


def check(label: str | None) -> Release:
    """:func:`lookup`, or the error EMR answers for a label it does not offer."""
    release = lookup(label)
    if release is not None:
        return release
    if re.fullmatch(r"emr-[45]\.\d+\.\d+", label or ""):
        raise errors.not_emulated("emr", "RunJobFlow", f"release {label} (EMR 4.x/5.x, Spark 2): "
                                  f"use an EMR 6.x or 7.x release such as {DEFAULT}")
    raise errors.ValidationException(
        f"The specified release label '{label}' is not valid: it is not an Amazon EMR release. "
        f"Use a release label such as {DEFAULT} (latest 7.x) or emr-spark-8.0.0 (Spark 4); "
        "the Amazon EMR Release Guide lists them all.")
