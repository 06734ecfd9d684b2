"""``GlueContext``: where a Glue script reads and writes data (here, on a Spark session).

A Glue ETL script starts with::

    sc = SparkContext()
    glueContext = GlueContext(sc)
    spark = glueContext.spark_session

and then reads with ``glueContext.create_dynamic_frame.from_catalog(...)`` or
``.from_options(...)`` (or ``create_data_frame.from_catalog`` for a Spark
DataFrame; both apply Lake Formation, ``_lakeformation.py``), writes with ``glueContext.write_dynamic_frame...``,
and (in a streaming job) reads Kafka with
``glueContext.create_data_frame.from_options(connection_type="kafka", ...)``
and processes it with ``glueContext.forEachBatch(...)``.

Locally the Spark session is the job's ``spark-submit --master local[2]``
driver (``localaws/glue/jobs.py``); ``s3://`` is Hadoop's S3A connector on
the local endpoint, and the Data Catalog is read through boto3's ``glue``
client on the same endpoint. Connection types: ``s3`` (batch) and ``kafka``
(streaming); the rest (JDBC, DynamoDB, Kinesis...) raise ``ValueError``
saying so.
"""
from __future__ import annotations

import re
import threading
from datetime import datetime, timezone

from awsglue import _run, _sources
from awsglue._bookmarks import DEFAULT_BAND_MS
from awsglue.dynamicframe import DynamicFrame

__all__ = ["GlueContext"]


class UnknownTopicOrPartitionException(Exception):
    """A Kafka read names a topic the cluster does not have (Kafka's own error name)."""


class GlueLogger:
    """``glueContext.get_logger()``: application messages, sent with the driver's own log lines.

    On Glue 5.0 they land in ``/aws-glue/jobs/error`` with Spark's logs;
    locally they go to a file of the run's folder that the runner copies
    there (outside a local run, to stderr).
    """

    def _log(self, level: str, message: str) -> None:
        line = f"{datetime.now(timezone.utc):%y/%m/%d %H:%M:%S} {level} GlueLogger: {message}\n"
        here = _run.folder()
        if here is None:
            import sys
            sys.stderr.write(line)
            return
        with open(here / "glue-logger.log", "a") as out:
            out.write(line)

    def info(self, message: str) -> None:
        self._log("INFO", message)

    def warn(self, message: str) -> None:
        self._log("WARN", message)

    def error(self, message: str) -> None:
        self._log("ERROR", message)


class RunBookmark:
    """The job bookmark of this run: the committed states read, the new states recorded."""

    def __init__(self, option: str, committed: dict | None):
        self.option = option
        self.committed = committed or {}
        self.states: dict[str, dict] = {}

    def previous(self, ctx: str) -> dict | None:
        return (self.committed.get("states") or {}).get(ctx)

    def record(self, ctx: str, state: dict) -> None:
        self.states[ctx] = state

    def merged(self) -> dict:
        return {"states": {**(self.committed.get("states") or {}), **self.states}}


class _DynamicFrameReader:
    """``glueContext.create_dynamic_frame``: ``from_options`` and ``from_catalog``."""

    def __init__(self, glue_context: "GlueContext"):
        self._ctx = glue_context

    def from_options(self, connection_type: str, connection_options: dict | None = None, format: str | None = None,  # noqa: A002
                     format_options: dict | None = None, transformation_ctx: str = "", **kwargs) -> DynamicFrame:
        """Read files from S3: ``connection_options={"paths": [...], "recurse": True}``, ``format``.

        With a job bookmark enabled (or paused) and a ``transformation_ctx``,
        only the objects the bookmark does not cover are read.
        """
        if connection_type != "s3":
            raise ValueError(f"connection_type {connection_type!r} is not emulated locally: "
                             "create_dynamic_frame.from_options reads 's3' (use kafka through create_data_frame)")
        options = dict(connection_options or {})
        paths = options.get("paths") or ([options["path"]] if options.get("path") else [])
        if not paths:
            raise ValueError("connection_options needs 'paths': a list of s3:// paths")
        listing = _sources.list_objects(paths, bool(options.get("recurse", False)),
                                        _sources.exclusion_list(options.get("exclusions")))
        chosen = _sources.bookmarked(listing, transformation_ctx, paths, self._ctx._bookmark,
                                     int(options.get("maxBand", DEFAULT_BAND_MS)))
        # One folder read: Spark's basePath makes key=value subfolders columns, as Spark reads a folder.
        bases = {o["base"] for o in chosen}
        base = bases.pop() if len(paths) == 1 and len(bases) == 1 else None
        base = base if base and base.endswith("/") else None
        df = _sources.read_files(self._ctx.spark_session, [o["uri"] for o in chosen], (format or "").lower(),
                                 format_options, base=base)
        return DynamicFrame(df, self._ctx, transformation_ctx)

    def from_catalog(self, database: str | None = None, table_name: str | None = None, redshift_tmp_dir: str = "",
                     transformation_ctx: str = "", push_down_predicate: str = "", additional_options=None,
                     catalog_id=None, name_space: str | None = None, **kwargs) -> DynamicFrame:
        """Read a Data Catalog table (its location, format and partitions, from the catalog)."""
        database = database or name_space
        if not database or not table_name:
            raise ValueError("from_catalog needs database and table_name")
        options = dict(additional_options or {})
        band = int(options.get("maxBand", DEFAULT_BAND_MS))
        bookmark, source = self._ctx._bookmark, [f"glue://{database}/{table_name}"]

        def select(objects):
            return _sources.bookmarked(objects, transformation_ctx, source, bookmark, band)

        df = _sources.read_table(self._ctx.spark_session, database, table_name,
                                 push_down_predicate or options.get("pushDownPredicate", ""), catalog_id, select)
        return DynamicFrame(df, self._ctx, transformation_ctx or table_name)


class _DynamicFrameWriter:
    """``glueContext.write_dynamic_frame``: ``from_options`` and ``from_catalog``."""

    def __init__(self, glue_context: "GlueContext"):
        self._ctx = glue_context

    def from_options(self, frame: DynamicFrame, connection_type: str, connection_options: dict | None = None,
                     format: str | None = None, format_options: dict | None = None,  # noqa: A002
                     transformation_ctx: str = "", **kwargs) -> DynamicFrame:
        """Write to S3: ``connection_options={"path": "s3://...", "partitionKeys": [...]}``.

        New files are added under the path (``key=value/`` folders for the
        partition keys); nothing already there is replaced, as on Glue.
        """
        if connection_type != "s3":
            raise ValueError(f"connection_type {connection_type!r} is not emulated locally: "
                             "write_dynamic_frame.from_options writes 's3'")
        options = dict(connection_options or {})
        if not options.get("path"):
            raise ValueError("connection_options needs 'path': an s3:// folder")
        _sources.write(frame.toDF(), options["path"], (format or "").lower(), options.get("partitionKeys") or [],
                       format_options)
        return frame

    def from_catalog(self, frame: DynamicFrame, database: str | None = None, table_name: str | None = None,
                     redshift_tmp_dir: str = "", transformation_ctx: str = "", additional_options=None,
                     catalog_id=None, name_space: str | None = None, **kwargs) -> DynamicFrame:
        """Write to a catalog table's location, in its format (the catalog itself is not changed)."""
        database = database or name_space
        table = _sources.get_table(database, table_name, catalog_id)
        options = dict(additional_options or {})
        keys = options.get("partitionKeys") or [k["Name"] for k in table.get("PartitionKeys") or []]
        fmt = _sources.table_format(table)
        _sources.write(frame.toDF(), table["StorageDescriptor"]["Location"], fmt, keys,
                       _sources.csv_options(table) if fmt == "csv" else None)
        return frame


class _DataFrameReader:
    """``glueContext.create_data_frame``: Data Catalog tables, and streaming sources (Kafka)."""

    def __init__(self, glue_context: "GlueContext"):
        self._ctx = glue_context

    def from_catalog(self, database: str | None = None, table_name: str | None = None, transformation_ctx: str = "",
                     push_down_predicate: str = "", additional_options=None, catalog_id=None,
                     name_space: str | None = None, **kwargs):
        """A Data Catalog table as a Spark DataFrame (the method Glue documents for Lake
        Formation-governed tables; the same read as ``create_dynamic_frame.from_catalog``)."""
        database = database or name_space
        if not database or not table_name:
            raise ValueError("from_catalog needs database and table_name")
        options = dict(additional_options or {})
        return _sources.read_table(self._ctx.spark_session, database, table_name,
                                   push_down_predicate or options.get("pushDownPredicate", ""), catalog_id)

    def from_options(self, connection_type: str, connection_options: dict | None = None, format: str | None = None,  # noqa: A002
                     format_options: dict | None = None, transformation_ctx: str = "", **kwargs):
        """A streaming DataFrame of a Kafka topic (Amazon MSK, or self-managed Kafka).

        ``connection_options``: ``bootstrap.servers``, ``topicName``,
        ``startingOffsets`` (``earliest`` or ``latest``, Glue's default),
        ``classification`` (``json``) and ``inferSchema`` (``"true"``: the
        schema is inferred from the records already in the topic) or
        ``schema`` (a DDL string such as ``"`id` BIGINT, `name` STRING"``).
        The frame's columns are the JSON fields. A topic the cluster does not
        have fails the read at once (Spark alone would wait for it).
        """
        if connection_type != "kafka":
            raise ValueError(f"connection_type {connection_type!r} is not emulated locally: "
                             "create_data_frame.from_options reads 'kafka'")
        options = {k: str(v) for k, v in (connection_options or {}).items()}
        servers = options.pop("bootstrap.servers", None) or options.pop("kafka.bootstrap.servers", None)
        topic = options.pop("topicName", None)
        if not servers or not topic:
            raise ValueError("connection_options needs 'bootstrap.servers' and 'topicName'")
        self._ctx._check_topic(servers, topic)
        classification = options.pop("classification", "json").lower()
        infer = options.pop("inferSchema", "false").lower() == "true"
        schema = options.pop("schema", None)
        starting = options.pop("startingOffsets", "latest")
        spark = self._ctx.spark_session
        if classification != "json":
            raise ValueError(f"classification {classification!r} is not emulated locally (json is)")
        if schema is None:
            if not infer:
                raise ValueError("give 'schema' (a DDL string) or 'inferSchema': 'true'")
            schema = self._ctx._infer_kafka_schema(servers, topic)
        reader = (spark.readStream.format("kafka").option("kafka.bootstrap.servers", servers)
                  .option("subscribe", topic).option("startingOffsets", starting))
        for key, value in options.items():
            if key.startswith("kafka.") or key in ("maxOffsetsPerTrigger", "failOnDataLoss", "minPartitions"):
                reader = reader.option(key, value)
        from pyspark.sql import functions as F
        records = reader.load()
        return records.select(F.from_json(F.col("value").cast("string"), schema).alias("__r")).select("__r.*")


UNITS = {"ms": 0.001, "millisecond": 0.001, "milliseconds": 0.001, "s": 1, "sec": 1, "second": 1,
         "seconds": 1, "m": 60, "min": 60, "minute": 60, "minutes": 60}


def seconds(text: str) -> float:
    """``"10 seconds"``, ``"1 minute"``, ``"500 ms"`` -> seconds (Glue's ``windowSize``)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*", str(text).lower())
    if not match or (match.group(2) or "seconds") not in UNITS:
        raise ValueError(f"windowSize {text!r}: expected e.g. '10 seconds'")
    return float(match.group(1)) * UNITS[match.group(2) or "seconds"]


class GlueContext:
    """A Spark session plus Glue's readers and writers."""

    def __init__(self, sparkContext, **options):  # noqa: N803 - Glue's name
        from pyspark.sql import SparkSession
        self._sc = getattr(sparkContext, "sparkContext", sparkContext)
        self.spark_session = SparkSession.builder.getOrCreate()
        self.create_dynamic_frame = _DynamicFrameReader(self)
        self.write_dynamic_frame = _DynamicFrameWriter(self)
        self.create_data_frame = _DataFrameReader(self)
        self._bookmark: RunBookmark | None = None       # set by Job.init when bookmarks are on

    # Glue also spells the readers and writers as methods.
    def create_dynamic_frame_from_options(self, *args, **kwargs) -> DynamicFrame:
        return self.create_dynamic_frame.from_options(*args, **kwargs)

    def create_dynamic_frame_from_catalog(self, *args, **kwargs) -> DynamicFrame:
        return self.create_dynamic_frame.from_catalog(*args, **kwargs)

    def write_dynamic_frame_from_options(self, *args, **kwargs) -> DynamicFrame:
        return self.write_dynamic_frame.from_options(*args, **kwargs)

    def write_dynamic_frame_from_catalog(self, *args, **kwargs) -> DynamicFrame:
        return self.write_dynamic_frame.from_catalog(*args, **kwargs)

    def create_data_frame_from_options(self, *args, **kwargs):
        return self.create_data_frame.from_options(*args, **kwargs)

    def create_data_frame_from_catalog(self, *args, **kwargs):
        return self.create_data_frame.from_catalog(*args, **kwargs)

    def get_logger(self) -> GlueLogger:
        return GlueLogger()

    # -- streaming ------------------------------------------------------------------
    def forEachBatch(self, frame, batch_function, options: dict | None = None) -> None:  # noqa: N802
        """Run ``batch_function(data_frame, batch_id)`` on each micro-batch of ``frame``, until stopped.

        ``options``: ``windowSize`` (how often a batch starts, default
        ``"100 seconds"``), ``checkpointLocation`` (where Spark keeps the
        offsets it has processed: a run started later resumes there, so
        nothing is read twice or lost) and ``batchMaxRetries`` (default 3).

        Locally each window is one ``availableNow`` run of the streaming
        query: it processes what the topic holds, then the driver waits for
        the next window. BatchStopJobRun takes effect between windows, so a
        stopped run never leaves a batch half-written (Glue stops the query
        where it is).
        """
        options = dict(options or {})
        if not options.get("checkpointLocation"):
            raise ValueError("forEachBatch needs options['checkpointLocation'] (an s3:// folder)")
        window = seconds(options.get("windowSize", "100 seconds"))
        retries = int(options.get("batchMaxRetries", 3))

        def each(df, batch_id):
            for attempt in range(retries + 1):
                try:
                    return batch_function(df, batch_id)
                except Exception:
                    if attempt == retries:
                        raise

        pause = threading.Event()
        while True:
            query = (frame.writeStream.foreachBatch(each).option("checkpointLocation", options["checkpointLocation"])
                     .trigger(availableNow=True).start())
            query.awaitTermination()
            waited = 0.0
            while waited < window and not _run.stop_requested():
                pause.wait(0.2)          # the window: idle until the next batch (or a stop)
                waited += 0.2
            if _run.stop_requested():
                return

    # -- helpers --------------------------------------------------------------------
    def _catalog_types(self, database: str, table_name: str, catalog_id=None) -> dict[str, str]:
        return _sources.catalog_types(database, table_name, catalog_id)

    def _check_topic(self, servers: str, topic: str) -> None:
        """Fail if the Kafka cluster has no such topic (Kafka's AdminClient, in the driver's JVM)."""
        jvm = self._sc._jvm
        props = jvm.java.util.Properties()
        props.put("bootstrap.servers", servers)
        props.put("request.timeout.ms", "15000")
        props.put("default.api.timeout.ms", "30000")
        admin = jvm.org.apache.kafka.clients.admin.AdminClient.create(props)
        try:
            names = set(admin.listTopics().names().get(60, jvm.java.util.concurrent.TimeUnit.SECONDS))
        finally:
            admin.close()
        if topic not in names:
            raise UnknownTopicOrPartitionException(
                f"Topic '{topic}' does not exist on the Kafka cluster {servers} "
                f"(its topics: {', '.join(sorted(n for n in names if not n.startswith('__'))) or 'none'})")

    def _infer_kafka_schema(self, servers: str, topic: str):
        """The schema of the JSON records the topic holds now (Glue's ``inferSchema``)."""
        from pyspark.sql import functions as F
        spark = self.spark_session
        sample = (spark.read.format("kafka").option("kafka.bootstrap.servers", servers).option("subscribe", topic)
                  .option("startingOffsets", "earliest").option("endingOffsets", "latest").load()
                  .select(F.col("value").cast("string").alias("json")))
        schema = spark.read.json(sample.rdd.map(lambda row: row.json)).schema
        if not schema.fields or schema.fieldNames() == ["_corrupt_record"]:
            raise ValueError(f"topic {topic!r} holds no JSON records to infer a schema from; "
                             "give connection_options['schema'] instead")
        return schema
