"""Memory and CPU bounds for every engine the stack starts: one policy.

The course must fit a 2-core, 24 GB laptop while several engines run at
once (Spark daemons and executors, DuckDB for Athena, later Kafka, Flink,
OpenSearch and a warehouse). Left alone, each JVM sizes its heap at a quarter
of the machine's RAM and each DuckDB database takes 80 % of it and every
core: three of them would already claim more memory than there is. So every
process kind gets an explicit bound here, and engines ask this module
instead of choosing their own:

- :func:`jvm_heap` -> ``-Xms``/``-Xmx`` options for a JVM of a given kind;
- :func:`duckdb_config` -> ``memory_limit`` and ``threads`` for a DuckDB
  database of a given kind. A DuckDB bound holds for the whole database:
  Athena opens one per stack and runs each query on a cursor of it, so its
  queries (two at a time) share the 1 GB and the 2 threads.

Measured peak resident memory of each kind on this project's reference
machine (2 cores, 24 GB, Java 17, pyspark 4.3, duckdb 2.0), 2026-11-29,
with the bound that holds it (``benchmarks/emr_cluster.py`` for Spark):

==============================  =================  ==========================================
process                         bound              measured peak RSS
==============================  =================  ==========================================
Spark master (EMR master node)  256 MiB heap       218 MiB
Spark worker (EMR core/task)    256 MiB heap       213 MiB
Spark executor                  512 MiB heap (the  345 MiB
                                instance type's,
                                512 MiB-2 GiB)
Spark driver (one EMR step)     512 MiB heap       491 MiB (JVM) + 159 MiB (its Python)
a 5-node EMR cluster in a step  the above          2.6 GiB in all
DuckDB, Athena's one database   1 GB, 2 threads,   per query: +25-60 MB for a self-join
(every query a cursor of it)    for all its        over Parquet, +150-280 MB for a full CSV
                                queries together   scan or CTAS (the notebook's process:
                                                   ~1.0 GB in all)
Lambda handler (Python child)   none (MemorySize   51 MB (imports boto3, one call)
                                is reported)
osmem-server (OpenSearch)       GOMEMLIMIT 1 GiB   1.1 GB holding chapter 05's 336,776-flight
                                                   index (2.0 GB without the limit)
Flink JobManager (Managed       heap 256 MiB       244 MiB on 1.19.1: SQL, checkpoints and
Service for Apache Flink)       (FLINK_MEMORY_MB)  a TaskManager restart (260-275 on 2.2.0)
Flink TaskManager               heap 96+192 MiB    289 MiB (283-312 on 2.2.0; 516 with 35 MB
                                                   of state)
Flink SQL Gateway               heap 384 MiB       257 MiB (258-311 on 2.2.0)
Kafka broker (an MSK broker     heap 256 MiB       262 MiB (Kafka 4.1.1, 10,000 records of
node)                           (KAFKA_MEMORY_MB)  100 B with acks=all on a 3-broker cluster)
Kafka KRaft controller          heap 128 MiB       133 MiB
==============================  =================  ==========================================

(Flink figures: ``docs/flink_measurements.md``, measured on Flink 2.2.0 and
re-measured on 1.19.1, the version the stack runs.)

Spark's launcher refuses ``-Xmx`` in ``SPARK_DAEMON_JAVA_OPTS`` and
``extraJavaOptions``: Spark heaps are set through ``SPARK_DAEMON_MEMORY``
and ``spark.driver.memory`` / ``spark.executor.memory`` (from
:data:`JVM_HEAP_MB`); :func:`jvm_heap` is for JVMs started directly.

A bound that is too small fails loudly (``java.lang.OutOfMemoryError``,
DuckDB's ``OutOfMemoryException``, which Athena reports as
``EXCEEDED_MEMORY_LIMIT``), never by swapping the laptop to a halt.
"""
from __future__ import annotations

#: Heap of each JVM kind, in MiB. Executors are sized per EMR instance type
#: (``localaws/emr/instances.py``) and pass their own figure.
JVM_HEAP_MB = {
    "spark-daemon": 256,       # standalone Master and Worker: they only coordinate
    "spark-driver": 512,       # one per EMR step or Glue job
    "spark-executor": 512,     # default; EMR passes the instance type's memory
    "spark-notebook": 768,     # driver + executor threads in one JVM (core/spark.notebook_session)
}

#: Options every short-lived JVM of the course starts with: serial GC (no
#: GC threads competing for 2 cores) and C1 only (faster start, enough for
#: jobs of seconds).
FAST_JVM = "-XX:+UseSerialGC -XX:TieredStopAtLevel=1"

#: Memory of each Flink process, in MiB (``localaws/core/flink.py`` turns it into JVM flags
#: and Flink's own ``config.yaml`` figures, which must agree). ``heap`` is -Xmx; ``direct`` is
#: -XX:MaxDirectMemorySize (Flink's off-heap and network buffers); ``metaspace`` is
#: -XX:MaxMetaspaceSize. The TaskManager splits its heap into framework heap and task heap,
#: and also has managed memory (off-heap, for RocksDB and batch operators), counted in its
#: process size but not in a JVM flag.
KAFKA_MEMORY_MB = {
    "broker": {"heap": 256, "direct": 64, "metaspace": 128},
    "controller": {"heap": 128, "direct": 32, "metaspace": 96},
    "tool": {"heap": 128, "direct": 32, "metaspace": 96},       # kafka-storage format
}

FLINK_MEMORY_MB = {
    "jobmanager": {"heap": 256, "direct": 128, "metaspace": 192},
    "taskmanager": {"framework_heap": 96, "task_heap": 192, "framework_off_heap": 64,
                    "network": 64, "managed": 128, "metaspace": 192},
    "sql-gateway": {"heap": 384, "direct": 64, "metaspace": 256},
}

#: Go programs' soft memory limit (``GOMEMLIMIT``): the Go runtime collects
#: harder as the heap nears it. A soft limit: live data above it still fits.
GO_MEMORY_LIMIT = {
    "osmem-server": "1GiB",
}

#: DuckDB databases by kind; the bound is shared by every cursor (query) of the database.
DUCKDB = {
    "athena": {"memory_limit": "1GB", "threads": 2},     # one database per stack, all queries
    "redshift": {"memory_limit": "1GB", "threads": 2},   # one database per cluster (not yet measured)
    # QuickSight's SPICE: one in-memory database per stack, every data set a table (course data
    # sets are KBs to a few MB; not yet measured)
    "quicksight-spice": {"memory_limit": "512MB", "threads": 2},
    # Lake Formation's FindMatches stand-in (splink): one thread, so that floating-point sums run in
    # the same order every time and the scores repeat exactly; the whole Python process peaked at
    # 265 MB training and scoring 773 customer records
    "findmatches": {"memory_limit": "512MB", "threads": 1},
    # IoT Core's rules engine: one in-process database per stack evaluates every rule's SQL over
    # one-row tables (one message each)
    "iot": {"memory_limit": "256MB", "threads": 1},
}


def jvm_heap(kind: str, heap_mb: int | None = None) -> str:
    """``-Xms<n>m -Xmx<n>m`` for a JVM of ``kind`` (or of ``heap_mb`` MiB)."""
    mb = heap_mb or JVM_HEAP_MB[kind]
    return f"-Xms{mb}m -Xmx{mb}m"


def heap_mb(kind: str) -> int:
    return JVM_HEAP_MB[kind]


def go_env(kind: str) -> dict[str, str]:
    """Environment variables that bound a Go program of ``kind``."""
    return {"GOMEMLIMIT": GO_MEMORY_LIMIT[kind]}


def duckdb_config(kind: str) -> dict:
    """``duckdb.connect(config=...)`` settings: memory and threads bounded (for the database:
    its cursors share them), nothing downloaded."""
    return {**DUCKDB[kind], "autoinstall_known_extensions": False, "autoload_known_extensions": False}
