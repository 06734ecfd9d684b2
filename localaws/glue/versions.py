"""Glue versions: which Spark (and Python) a job's ``GlueVersion`` stands for.

A job's ``GlueVersion`` pins the runtime its runs get (AWS Glue versions,
https://docs.aws.amazon.com/glue/latest/dg/release-notes.html, checked
2026-11):

==========  ============  ==========  =============================
GlueVersion  Spark         Python      note
==========  ============  ==========  =============================
6.0         4.1.1         3.13        CreateJob's default
5.1         3.5.6         3.11
5.0         3.5.4         3.11
4.0         3.3.0         3.10
3.0         3.1.1         3.7
==========  ============  ==========  =============================

Locally every run uses the Spark 4 that pyspark installs; for a version
whose Spark is older, ``core/spark.release_conf`` restores the defaults
that change answers (ANSI SQL mode off before Spark 4, so
``CAST('x' AS INT)`` is NULL on Glue 4.0 and 5.x and an error on 6.0).
Glue 2.0 and older have reached end of life: Glue no longer starts their
runs, nor does the local stack.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GlueVersion:
    version: str
    spark: str
    python: str
    default_timeout_minutes: int      # Timeout when the job sets none


VERSIONS = {v.version: v for v in (
    GlueVersion("6.0", "4.1.1", "3.13", 480),
    GlueVersion("5.1", "3.5.6", "3.11", 480),
    GlueVersion("5.0", "3.5.4", "3.11", 480),
    GlueVersion("4.0", "3.3.0", "3.10", 2880),
    GlueVersion("3.0", "3.1.1", "3.7", 2880),
)}

#: "Jobs that are created without specifying a Glue version default to Glue 6.0" (CreateJob).
DEFAULT = "6.0"

#: Python shell jobs run plain Python (Glue 1.0: 3.6, Glue 3.0: 3.9); locally, this Python.
PYTHONSHELL_VERSIONS = ("1.0", "3.0")
PYTHONSHELL_DEFAULT = "3.0"
PYTHONSHELL_TIMEOUT_MINUTES = 2880


class UnsupportedVersion(ValueError):
    """A GlueVersion that no longer runs (or never existed)."""


def resolve(version: str | None) -> str:
    """The version a Spark job runs: its own, else the default; ``auto`` (automatic upgrades)
    is the latest."""
    return DEFAULT if version in (None, "", "auto") else version


def spark_job(version: str | None) -> GlueVersion:
    """The runtime of a Spark job (``glueetl``, ``gluestreaming``) of ``version``."""
    found = VERSIONS.get(resolve(version))
    if found is None:
        raise UnsupportedVersion(f"Given GlueVersion [{version}] is not valid.")
    return found
