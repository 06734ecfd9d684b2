"""Spark plumbing shared by the stand-ins that run Spark (EMR, and later Glue).

Three things every Spark-based stand-in needs, kept here once:

- :func:`spark_home`: where Spark is (the pyspark package);
- :func:`s3a_conf`: the settings that let Spark read and write ``s3://``
  on the local endpoint, through Hadoop's S3A connector;
- :func:`release_conf`: the settings that make Spark 4 answer like the older
  Spark an AWS release ships (EMR 7 and Glue 5 run Spark 3.5);
- :func:`jar_sets_for`: Maven packages a job asks for (``--packages``,
  ``spark.jars.packages``) mapped to the jar sets ``make`` installed;
- :func:`notebook_session`: a SparkSession inside the learner's own Python
  process, as an EMR Studio notebook or a Glue interactive session gives one;
- :func:`submit_command`, :func:`submit_env`, :func:`local_conf`: a
  ``spark-submit`` child process of the stack (a Glue job run's driver).

How Spark reaches S3
--------------------
Spark never talks to S3 itself. It opens every path through Hadoop's
``FileSystem`` API, and Hadoop picks the implementation by the URI scheme:
``fs.<scheme>.impl`` names the class that serves ``<scheme>://``.

- On **EMR** (and in **Glue** jobs) ``s3://`` is served by **EMRFS**,
  Amazon's own connector, installed on every node; ``s3n://`` is mapped to
  EMRFS too, for old scripts.
- **S3A** (``s3a://``, class ``org.apache.hadoop.fs.s3a.S3AFileSystem``) is
  Apache Hadoop's open-source connector: the ``hadoop-aws`` jar, built on the
  AWS SDK for Java v2. It speaks the same S3 REST API, so it works against
  any S3-compatible endpoint when told where it is.

EMRFS is not open source, so locally every S3 scheme (``s3``, ``s3n``,
``s3a``) is mapped onto S3A, pointed at the local endpoint. A learner's
script keeps its ``s3://bucket/key`` paths, exactly as on EMR. The S3A jars
are not in pyspark: ``make`` installs them (set ``s3a`` of ``jars.lock``,
see ``localaws/core/jvm.py``), and :func:`s3a_conf` puts them on the driver's
and the executors' classpath, as EMR's ``spark-defaults.conf`` does for EMRFS.

Two differences a learner can see: Spark's output commit renames files
(copy + delete on S3) and logs "Using standard FileOutputCommitter ... slow
and potentially unsafe", where EMR uses its EMRFS S3-optimized committer; and
EMRFS extras (consistent view, CSE encryption) do not exist.
"""
from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import sys
import tempfile
from pathlib import Path

from . import jvm, s3


def spark_home() -> str:
    """The pyspark package folder: it holds ``bin/spark-submit``, ``bin/spark-class``
    and ``jars/`` (the whole of Spark, as pip installs it)."""
    spec = importlib.util.find_spec("pyspark")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("pyspark is not installed; run `make` in the project folder")
    return list(spec.submodule_search_locations)[0]


#: Maven packages a Spark job may ask for (``group:artifact_scala:version``), by the artifact's
#: name without its Scala suffix, and the jar set of ``jars.lock`` that holds them. Nothing is
#: downloaded at run time: a package is usable when ``make`` installed its set. The locked
#: version may differ from the one asked for (the set says which runs).
PACKAGES = {
    "spark-sql-kafka-0-10": "spark-kafka",     # Structured Streaming's Kafka source and sink
}


def jar_sets_for(packages) -> list[str]:
    """The jar sets that provide ``packages`` (Maven coordinates, or bare artifact names).

    ``"org.apache.spark:spark-sql-kafka-0-10_2.12:3.5.1"`` -> ``["spark-kafka"]``.
    A package the course does not install raises ``ValueError`` saying which it has.
    """
    sets = []
    for coords in packages:
        parts = coords.split(":")
        artifact = parts[1] if len(parts) > 1 else parts[0]
        name = re.sub(r"_2\.1[0-9]$", "", artifact)       # the Scala suffix: _2.12, _2.13
        if name not in PACKAGES:
            raise ValueError(f"package {coords!r} is not installed locally (nothing is downloaded while the "
                             f"course runs); installed: {', '.join(sorted(PACKAGES))}")
        if PACKAGES[name] not in sets:
            sets.append(PACKAGES[name])
    return sets


def s3a_conf(endpoint_url: str, access_key: str, secret_key: str,
             region: str = "us-east-1", jar_sets=()) -> dict[str, str]:
    """Spark settings for ``s3://``, ``s3n://`` and ``s3a://`` on ``endpoint_url``.

    Pass them as ``--conf key=value`` to ``spark-submit``, or to
    ``SparkSession.builder.config(key, value)`` *before* the session's JVM
    starts (the classpath cannot change afterwards). Every ``spark.hadoop.X``
    setting becomes Hadoop setting ``X`` in the driver and in every executor.

    ``access_key`` is whatever the job should sign as: the local endpoint
    accepts any key, and counts the bytes each key reads (its S3 byte meter),
    so giving a job its own key gives it its own "bytes read" figure.
    ``jar_sets`` (from :func:`jar_sets_for`) join the S3A jars on the classpath.
    """
    classpath = os.pathsep.join(str(path) for name in ("s3a", *jar_sets) for path in jvm.jars(name))
    conf = {
        # The S3A jars on the JVM classpath of the driver and of every executor
        # (EMR lists EMRFS's jars the same way in spark-defaults.conf).
        "spark.driver.extraClassPath": classpath,
        "spark.executor.extraClassPath": classpath,
    }
    hadoop = s3.hadoop_s3a_settings(endpoint_url, access_key, secret_key, region)
    conf.update({f"spark.hadoop.{key}": value for key, value in hadoop.items()})
    return conf


def _version_tuple(version: str) -> tuple[int, ...]:
    """``"3.5.6"`` -> (3, 5, 6); EMR's ``"3.5.2-amzn-1"`` -> (3, 5, 2)."""
    numbers = re.match(r"\d+(?:\.\d+)*", version.strip())
    if not numbers:
        raise ValueError(f"not a Spark version: {version!r} (expected e.g. '3.5.6')")
    return tuple(int(part) for part in numbers.group(0).split("."))


def release_conf(spark_version: str) -> dict[str, str]:
    """Settings that make the local Spark 4 answer like Spark ``spark_version``.

    AWS releases pin a Spark version (EMR 7.x and Glue 5.0 run Spark 3.5),
    while the course runs the Spark 4 that pyspark installs. Where Spark 4
    changed a default that changes *answers*, this restores the old one:

    - ``spark.sql.ansi.enabled=false`` for Spark < 4. Spark 4.0 turned ANSI
      SQL mode on by default (SPARK-44444; Spark SQL migration guide,
      "Upgrading from Spark SQL 3.5 to 4.0"). With it on, an invalid cast or
      an overflow raises an error (``CAST('x' AS INT)`` fails with
      CAST_INVALID_INPUT); on Spark 3.5, and so on EMR 7 and Glue 5, it
      returns NULL.

    Only what was checked against the migration guide is listed; an empty
    dict means "nothing to change" (Spark 4 and later).
    """
    conf: dict[str, str] = {}
    if _version_tuple(spark_version) < (4,):
        conf["spark.sql.ansi.enabled"] = "false"
    return conf


@contextlib.contextmanager
def _child_output_to(log_path: Path):
    """Processes started inside this block write their stdout and stderr to ``log_path``.

    pyspark starts the driver's JVM with this process's file descriptors 1 and
    2; in Jupyter those are captured into the running cell's output, so the
    JVM's start-up banner, warnings and progress bars would land in the
    notebook. The JVM inherits the descriptors while they point at the log
    file, and keeps writing there for its whole life; this process gets its own
    back at the end of the block.
    """
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    saved = [os.dup(1), os.dup(2)]
    with open(log_path, "ab") as log:
        try:
            os.dup2(log.fileno(), 1)
            os.dup2(log.fileno(), 2)
            yield
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)


def notebook_session(endpoint_url: str, access_key: str, region: str = "us-east-1", *,
                     app_name: str = "notebook", packages=(), spark_version: str | None = None,
                     log_dir: str | Path | None = None):
    """A SparkSession in this Python process: ``local[2]``, ``s3://`` on the endpoint, ``packages``.

    What an EMR Studio notebook attached to a cluster (or a Glue interactive
    session) hands a learner: a ``spark`` object to run DataFrame code with.
    Here the driver and its executor threads are one JVM, a child of this
    process, with a bounded heap (:data:`limits.JVM_HEAP_MB` ``spark-notebook``),
    two task threads (the 2-core machine), no web UI (no port), and few shuffle
    partitions (small data), listening on 127.0.0.1 only. ``packages`` are
    Maven coordinates, as ``spark.jars.packages`` takes them, served from the
    installed jar sets. The JVM's own output (log4j, progress bars) goes to
    ``<log_dir>/spark-<app_name>.log``, not to the notebook. Stop it with
    :func:`stop_notebook_session`, which also ends the JVM.
    """
    from pyspark.sql import SparkSession

    from .limits import heap_mb

    conf = s3a_conf(endpoint_url, access_key, "localaws", region, jar_sets=jar_sets_for(packages))
    conf.update({"spark.master": "local[2]", **local_conf(driver_heap_mb=heap_mb("spark-notebook")),
                 **(release_conf(spark_version) if spark_version else {})})
    builder = SparkSession.builder.appName(app_name)
    for key, value in conf.items():
        builder = builder.config(key, value)
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")       # no "resolves to a loopback address" guess
    log_dir = Path(log_dir or tempfile.gettempdir())
    with _child_output_to(log_dir / f"spark-{app_name}.log"):
        spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def stop_notebook_session(spark) -> None:
    """Stop ``spark`` and end its JVM (``SparkSession.stop`` alone leaves the JVM running until
    Python exits); a later :func:`notebook_session` starts a fresh JVM."""
    from pyspark import SparkContext

    spark.stop()
    gateway = SparkContext._gateway
    if gateway is None:
        return
    gateway.shutdown()
    proc = getattr(gateway, "proc", None)
    if proc is not None:
        proc.terminate()
        try:
            proc.wait(10)
        except Exception:       # noqa: BLE001 - a JVM that ignores SIGTERM is killed
            proc.kill()
            proc.wait(10)
    SparkContext._gateway = None
    SparkContext._jvm = None


# ------------------------------------------------------------------ spark-submit, shared by the stand-ins
def submit_env(java_home: str, python: str | None = None, local_dir: str | Path | None = None) -> dict[str, str]:
    """The environment of a ``spark-submit`` child: this process's, plus where Spark, Java and
    Python are, with every address bound to 127.0.0.1.

    Variables that would send Spark elsewhere (a developer's ``SPARK_CONF_DIR``, a
    ``PYSPARK_DRIVER_PYTHON`` such as Jupyter, an ``AWS_ENDPOINT_URL``) are removed; callers
    add the endpoint's own variables (``ctx.env()``) afterwards. ``local_dir`` is where
    Spark keeps its scratch files (``SPARK_LOCAL_DIRS``: setting ``spark.local.dir``
    instead makes Spark warn that the variable overrides it).
    """
    env = dict(os.environ)
    for name in ("PYSPARK_DRIVER_PYTHON", "SPARK_CONF_DIR", "SPARK_MASTER_HOST", "AWS_ENDPOINT_URL"):
        env.pop(name, None)
    env.update({"SPARK_HOME": spark_home(), "JAVA_HOME": java_home, "SPARK_LOCAL_IP": "127.0.0.1",
                "SPARK_LOCAL_HOSTNAME": "127.0.0.1", "PYSPARK_PYTHON": python or sys.executable})
    if local_dir is not None:
        env["SPARK_LOCAL_DIRS"] = str(local_dir)
    env["PATH"] = os.pathsep.join([str(Path(java_home) / "bin"), env.get("PATH", "")])
    return env


def local_conf(*, driver_heap_mb: int, jvm_options: str = "") -> dict[str, str]:
    """Settings of a ``local[N]`` application: one JVM that is driver and executor at once.

    The JVM's heap is ``driver_heap_mb`` (``spark.driver.memory``: in local mode the
    executor threads share the driver's heap), nothing listens beyond 127.0.0.1, no web UI
    opens a port, shuffles use few partitions (course data is small) and timestamps are UTC.
    """
    return {
        "spark.driver.memory": f"{driver_heap_mb}m",
        "spark.driver.host": "127.0.0.1", "spark.driver.bindAddress": "127.0.0.1",
        "spark.ui.enabled": "false", "spark.ui.showConsoleProgress": "false",
        "spark.sql.shuffle.partitions": "4",
        "spark.sql.session.timeZone": "UTC",
        **({"spark.driver.extraJavaOptions": jvm_options} if jvm_options else {}),
    }


def submit_command(master: str, conf: dict[str, str], app: str | Path, app_args=(), options=()) -> list[str]:
    """``spark-submit --master <master> --conf k=v ... [options] <app> [app args]``, as a list.

    ``app`` is the application file (a ``.py`` driver); ``options`` are further
    spark-submit options (``--name``, ``--py-files``...) passed as given.
    """
    return [str(Path(spark_home()) / "bin" / "spark-submit"), "--master", master,
            *[arg for key, value in conf.items() for arg in ("--conf", f"{key}={value}")],
            *options, str(app), *app_args]
