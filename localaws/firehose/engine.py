"""The pipeline of a delivery stream: process, partition, buffer, convert, deliver.

Records arrive (PutRecordBatch, or read from a Kinesis stream by ``source.py``)
and go through Firehose's documented steps:

1. **Data transformation** (``transform.py``): the processors of
   ``ProcessingConfiguration``. With a ``Lambda`` processor the records first
   wait in the Lambda buffer; otherwise they are processed as they arrive.
2. **Dynamic partitioning** (``DynamicPartitioningConfiguration``, S3 only):
   each record's keys (from the ``MetadataExtraction`` query and/or the
   Lambda's ``metadata.partitionKeys``) pick its partition; each partition
   has its own buffer and becomes its own objects under the evaluated
   ``Prefix`` (``customer_id=!{partitionKeyFromQuery:customer_id}/`` ->
   ``customer_id=42/``) [1]. A record missing a key the prefix names goes to
   the error output (``partitioning-failed``).
3. **Destination buffering** (``buffer.py``): ``BufferingHints`` per buffer.
4. **Delivery**:
   - S3 / ExtendedS3: the batch's bytes concatenated into **one object**
     ``<evaluated prefix><stream>-<version>-<yyyy-MM-dd-HH-mm-ss>-<uuid>``
     (``prefixes.py``; timestamps are the oldest record's arrival [2]).
     Firehose adds no newline between records: send ``b"...\\n"`` yourself
     or use the AppendDelimiterToRecord processor. With
     ``DataFormatConversionConfiguration`` the batch becomes **one Parquet
     (or ORC) file** instead (``convert.py``), typed by the Glue table, and
     records that do not fit go to ``format-conversion-failed``.
   - Amazon Redshift (``RedshiftDestinationConfiguration``, ``redshift.py``):
     the batch is staged as one object in the intermediate bucket with a
     manifest, then a ``COPY ... MANIFEST`` loads it into the cluster's
     table, retried for ``RetryOptions.DurationInSeconds`` before the
     manifest goes to ``errors/``.
   - OpenSearch Service (``AmazonopensearchserviceDestinationConfiguration``
     or the older ``ElasticsearchDestinationConfiguration``): one ``_bulk``
     request into ``IndexName`` (+ the rotation suffix); each record must be
     one JSON document (sent with opensearch-py's ``streaming_bulk``, in
     requests of at most 10 MiB). Documents the cluster refuses are written to the S3
     backup bucket under ``AmazonOpenSearchService-failed/`` (or
     ``elasticsearch-failed/``), with the error, as Firehose does. With
     ``S3BackupMode=AllDocuments`` every record is also written to S3.
5. **Metrics**: what the pipeline measured goes to CloudWatch (namespace
   ``AWS/Firehose``, dimension ``DeliveryStreamName``): IncomingRecords and
   IncomingBytes (or DataReadFromKinesisStream.* for a Kinesis source),
   DeliveryToS3.Records/Bytes/Success/DataFreshness, DeliveryToRedshift.Records/
   Bytes/Success [3]. ``Success`` is 1 per successful S3 put or COPY and 0 per
   failed one (its Average is AWS's success ratio).
6. **Error output**: rows for records that failed processing, partitioning
   or conversion are buffered like the destination's data (one buffer per
   failure type) and written as JSON lines under the evaluated
   ``ErrorOutputPrefix`` (``!{firehose:error-output-type}`` -> ``processing-failed``).

[1] https://docs.aws.amazon.com/firehose/latest/dev/dynamic-partitioning.html
[2] https://docs.aws.amazon.com/firehose/latest/dev/s3-prefixes.html
[3] https://docs.aws.amazon.com/firehose/latest/dev/monitoring-with-cloudwatch-metrics.html
"""
from __future__ import annotations

import base64
import json
import os
import time
import uuid
from datetime import datetime, timezone

from localaws.core import s3 as s3uri
from . import iceberg, prefixes, transform
from .buffer import Batch, Buffers, Key, MiB, Outcome, Record
from .convert import Converter, Malformed
from .redshift import COPY_STAGE, RedshiftLoader

S3_KINDS = ("ExtendedS3", "S3")
OPENSEARCH_KINDS = {"Amazonopensearchservice": "AmazonOpenSearchService-failed/",
                    "Elasticsearch": "elasticsearch-failed/"}
MAX_BULK_BYTES = 10 * 1024 * 1024
DEFAULT_HINTS = {"SizeInMBs": 5, "IntervalInSeconds": 300}
LARGE_DEFAULT_HINTS = {"SizeInMBs": 128, "IntervalInSeconds": 300}   # conversion / dynamic partitioning
FUNCTION_ERROR = "The Lambda function was successfully invoked but it returned an error result."


REDSHIFT = "Redshift"
ICEBERG = iceberg.KIND


def destination_kind(destination: dict) -> str | None:
    for kind in (*S3_KINDS, *OPENSEARCH_KINDS, REDSHIFT, ICEBERG):
        if kind in destination:
            return kind
    return None


def enabled(config: dict, name: str) -> bool:
    """Is ``DataFormatConversionConfiguration`` / ``DynamicPartitioningConfiguration`` on?
    (An omitted ``Enabled`` counts as on for conversion, as AWS models it.)"""
    section = config.get(name)
    if not section:
        return False
    return bool(section.get("Enabled", name == "DataFormatConversionConfiguration"))


class Deliverer:
    """The pipeline of one stack's delivery streams; ``lookup(name)`` returns moto's DeliveryStream."""

    def __init__(self, ctx, lookup, buffers: Buffers, publish=None):
        self.ctx = ctx
        self.lookup = lookup
        self.buffers = buffers
        self.publish = publish or (lambda stream, metrics: None)   # (stream, [(name, value, unit)])
        self.transformer = transform.Transformer(self._invoke, ctx.region)
        self.redshift = RedshiftLoader(ctx, self._put_object, self._object_key, self.publish)
        self.iceberg = iceberg.IcebergWriter(ctx, self, self.publish)
        self._otf: dict[str, dict] = {}            # recordId -> a Lambda's otfMetadata, during one run
        self._glue: dict[str, object] = {}
        self.duplicate_next: set[str] = set()      # streams whose next S3 delivery is written twice
        self.duplicates: dict[str, int] = {}       # stream -> deliveries written twice so far

    # -- configuration -----------------------------------------------------------
    def destination(self, stream) -> tuple[str, dict]:
        destination = stream.destinations[0]
        kind = destination_kind(destination)
        return kind, destination[kind]

    @staticmethod
    def hints(config: dict) -> tuple[int, float]:
        """The destination buffers' (size in bytes, interval in seconds)."""
        if "ClusterJDBCURL" in config:        # Redshift: the hints of the intermediate S3 location
            config = config.get("S3DestinationDescription") or config.get("S3Configuration") or {}
        large = enabled(config, "DataFormatConversionConfiguration") or \
            enabled(config, "DynamicPartitioningConfiguration")
        hints = {**(LARGE_DEFAULT_HINTS if large else DEFAULT_HINTS), **(config.get("BufferingHints") or {})}
        return int(hints["SizeInMBs"]) * MiB, float(hints["IntervalInSeconds"])

    @staticmethod
    def _s3_config(kind: str, config: dict) -> dict:
        if kind in S3_KINDS:
            return config
        return config.get("S3DestinationDescription") or config.get("S3Configuration") or {}

    def _zone(self, config: dict):
        name = config.get("CustomTimeZone")
        if name:
            try:
                from zoneinfo import ZoneInfo
                return ZoneInfo(name)
            except (ImportError, KeyError, ValueError):
                pass
        return timezone.utc

    # -- records in ----------------------------------------------------------------
    def accept(self, name: str, records: list[Record]) -> None:
        """Records entering the delivery stream (PutRecordBatch or a Kinesis read)."""
        stream = self.lookup(name)
        kind, config = self.destination(stream)
        if transform.lambda_params(config):
            size, interval = transform.lambda_hints(config, *self.hints(config))
            self.buffers.put(Key(name, "transform"), size, interval, records)
        else:
            outcome = self._process(stream, kind, config, records)     # may raise: then nothing is counted
            self.buffers.route(name, records, outcome)
        if stream.delivery_stream_type == "KinesisStreamAsSource":
            names = ("DataReadFromKinesisStream.Records", "DataReadFromKinesisStream.Bytes")
        else:
            names = ("IncomingRecords", "IncomingBytes")
        self.publish(stream, [(names[0], len(records), "Count"),
                              (names[1], sum(len(r.data) for r in records), "Bytes")])

    def __call__(self, batch: Batch) -> Outcome:
        """Deliver one cut batch (on the pool); raising keeps the records for a retry."""
        stream = self.lookup(batch.stream)
        kind, config = self.destination(stream)
        if batch.key.stage == "transform":
            started = time.monotonic()
            outcome = self._process(stream, kind, config, batch.records)
            outcome.info.update(reason=batch.reason, records=len(batch.records), seconds=time.monotonic() - started)
            return outcome
        if batch.key.stage == "error":
            key = self._write_errors(stream, kind, config, batch.key.part, batch.records)
            return Outcome(failed=list(batch.records),
                           info={"type": batch.key.part, "records": len(batch.records), "key": key})
        if batch.key.stage == COPY_STAGE:
            return self.redshift.load(stream, config, self._s3_config(kind, config), batch)
        return self._deliver(stream, kind, config, batch)

    # -- processing and partitioning ------------------------------------------------
    def _process(self, stream, kind: str, config: dict, records: list[Record]) -> Outcome:
        source = stream.source.get("KinesisStreamARN") if stream.delivery_stream_type == \
            "KinesisStreamAsSource" and stream.source else None
        try:
            result = self.transformer.run(stream, config, records, source)
            for r in result.records:             # Iceberg routing: the Lambda's metadata.otfMetadata
                r.keys.update(iceberg.otf_keys(self._otf.pop(r.record_id, None)))
        finally:
            for r in records:
                self._otf.pop(r.record_id, None)
        outcome = Outcome(dropped=result.dropped, splits=result.splits)
        failures = list(result.failures)
        size, interval = self.hints(config)
        parts: dict[tuple, list[Record]] = {}
        if kind == ICEBERG:                      # one destination buffer per table
            for r in result.records:
                try:
                    database, table, operation = iceberg.route(config, r)
                except iceberg.RecordError as exc:
                    failures.append((iceberg.ERROR_TYPE, r, exc.code, str(exc), {}))
                    continue
                r.keys[iceberg.OTF + "operation"] = operation
                parts.setdefault(((iceberg.TABLE_KEY, f"{database}.{table}"),), []).append(r)
            result.records = []
        needed = prefixes.partition_keys(config.get("Prefix")) \
            if kind == "ExtendedS3" and enabled(config, "DynamicPartitioningConfiguration") else []
        for r in result.records:
            missing = [f"{ns}:{key}" for ns, key in needed if f"{ns}:{key}" not in r.keys]
            if missing:
                failures.append(("partitioning-failed", r, "DynamicPartitioning.MetadataExtractionFailed",
                                 f"partitionKeys values must not be null or empty: no value for {missing[0]}", {}))
                continue
            part = tuple(sorted((k, r.keys[k]) for k in {f"{ns}:{key}" for ns, key in needed}))
            parts.setdefault(part, []).append(r)
        for part, members in parts.items():
            outcome.forward.append((Key(stream.delivery_stream_name, "dest", part), size, interval, members))
        by_type: dict[str, list[Record]] = {}
        for error_type, r, code, message, extra in failures:
            by_type.setdefault(error_type, []).append(self._failure_row(r, code, message, **extra))
        for error_type, rows in by_type.items():
            outcome.forward.append((Key(stream.delivery_stream_name, "error", error_type), size, interval, rows))
        if result.invocations:
            outcome.info["invocations"] = result.invocations
        return outcome

    def _failure_row(self, r: Record, code: str, message: str, attemptsMade: int = 1, **extra) -> Record:
        """The error output's JSON line for ``r``, as a record of the error buffer."""
        row = {"attemptsMade": attemptsMade, "arrivalTimestamp": r.arrival_ms, "errorCode": code,
               "errorMessage": message, "attemptEndingTimestamp": int(self.ctx.clock.time() * 1000),
               "rawData": base64.b64encode(r.data).decode(), **extra}
        return r.derive(json.dumps(row).encode() + b"\n")

    def _invoke(self, arn: str, payload: bytes) -> tuple[str | None, bytes]:
        """lambda:Invoke, RequestResponse: ``(error or None, response body)``."""
        lam = self.ctx.client("lambda")
        try:
            resp = lam.invoke(FunctionName=arn, Payload=payload)
        except lam.exceptions.ResourceNotFoundException:
            return ("Lambda.ResourceNotFound The specified Lambda function does not exist. "
                    "Use a different function that does exist."), b""
        body = resp["Payload"].read()
        if not resp.get("FunctionError"):
            self._keep_otf(body)
        if resp.get("FunctionError"):
            try:
                detail = json.loads(body)
                detail = f"{detail.get('errorType')}: {detail.get('errorMessage')}"
            except (ValueError, AttributeError):
                detail = body.decode("utf-8", "replace")[:500]
            return f"Lambda.FunctionError {FUNCTION_ERROR} ({detail})", body
        return None, body

    def _keep_otf(self, body: bytes) -> None:
        """Note each returned record's ``metadata.otfMetadata`` (Iceberg routing) by recordId;
        ``_process`` attaches it to the transformed record (the transformer checks the rest)."""
        try:
            items = json.loads(body).get("records") or []
        except (ValueError, AttributeError):
            return
        for item in items:
            if isinstance(item, dict) and isinstance(item.get("recordId"), str):
                otf = (item.get("metadata") or {}).get("otfMetadata") if isinstance(item.get("metadata"), dict) \
                    else None
                if isinstance(otf, dict):
                    self._otf[item["recordId"]] = otf

    # -- S3 --------------------------------------------------------------------------
    def _object_key(self, stream, config: dict, prefix: str, when: datetime, ext: str = "") -> str:
        return (f"{prefix}{stream.delivery_stream_name}-{stream.version_id}-"
                f"{when:%Y-%m-%d-%H-%M-%S}-{uuid.uuid4()}{ext}")

    def _oldest(self, config: dict, records: list[Record]) -> datetime:
        return datetime.fromtimestamp(min(r.arrival_ms for r in records) / 1000, self._zone(config))

    def _put_object(self, s3_conf: dict, key: str, body: bytes) -> None:
        bucket = s3_conf["BucketARN"].split(":")[-1]
        self.ctx.s3.write(s3uri.join(bucket, key), body)

    def _write_errors(self, stream, kind: str, config: dict, error_type: str, rows: list[Record]) -> str:
        s3_conf = self._s3_config(kind, config)
        when = self._oldest(config, rows)
        key = self._object_key(stream, config, prefixes.error_prefix(s3_conf.get("ErrorOutputPrefix"),
                                                                     error_type, when), when)
        self._put_object(s3_conf, key, b"".join(r.data for r in rows))
        return key

    def _deliver(self, stream, kind: str, config: dict, batch: Batch) -> Outcome:
        started = time.monotonic()
        records = batch.records
        outcome = Outcome(info={"reason": batch.reason, "records": len(records),
                                "bytes": sum(len(r.data) for r in records)})
        if batch.key.part:
            outcome.info["partition"] = {k.split(":", 1)[1]: v for k, v in batch.key.part}
        try:
            if kind in S3_KINDS:
                self._write_s3(stream, config, batch, outcome)
            elif kind == REDSHIFT:
                self.redshift.stage(stream, self._s3_config(kind, config), batch, self._oldest(config, records),
                                    outcome)
            elif kind == ICEBERG:
                self.iceberg.deliver(stream, config, batch, outcome)
            else:
                self._index(stream, kind, config, self._s3_config(kind, config), records, outcome)
        except Exception:
            if kind in S3_KINDS or kind == REDSHIFT:
                self.publish(stream, [("DeliveryToS3.Success", 0, "Count")])
            raise
        if kind in S3_KINDS or kind == REDSHIFT:
            staged = records if kind == REDSHIFT else outcome.delivered     # Redshift: staged for the COPY
            self.publish(stream, [
                ("DeliveryToS3.Records", len(staged), "Count"),
                ("DeliveryToS3.Bytes", sum(len(r.data) for r in staged), "Bytes"),
                ("DeliveryToS3.Success", 1, "Count"),
                ("DeliveryToS3.DataFreshness", self.ctx.clock.monotonic() - min(r.arrival_mono for r in records),
                 "Seconds")])
        outcome.info.update(delivered=len(outcome.delivered), failed=len(outcome.failed), dropped=0,
                            latency_s=self.ctx.clock.monotonic() - min(r.arrival_mono for r in records),
                            delivery_s=time.monotonic() - started)
        return outcome

    def _write_s3(self, stream, config: dict, batch: Batch, outcome: Outcome) -> None:
        records = batch.records
        when = self._oldest(config, records)
        keys = dict(batch.key.part)
        if enabled(config, "DataFormatConversionConfiguration"):
            body, ok, failed = self._convert(config, records)
            if failed:
                outcome.info["error_key"] = self._write_errors(stream, "ExtendedS3", config,
                                                               "format-conversion-failed", failed)
                outcome.failed.extend(failed)
            ext = config.get("FileExtension") or ""
        else:
            ok = records
            body, ext = b"".join(r.data for r in records), ""
            if config.get("CompressionFormat") == "GZIP":
                from localaws.core.tables import compress
                body, ext = compress(body, "gzip"), ".gz"
            ext = config.get("FileExtension") or ext
        if ok:
            key = self._object_key(stream, config, prefixes.object_prefix(config.get("Prefix"), when, keys),
                                   when, ext)
            self._put_object(config, key, body)
            outcome.info["key"] = key
            outcome.delivered.extend(ok)
            name = stream.delivery_stream_name
            if name in self.duplicate_next:      # at-least-once: a retry whose first attempt also landed
                self.duplicate_next.discard(name)
                again = self._object_key(stream, config, prefixes.object_prefix(config.get("Prefix"), when, keys),
                                         when, ext)
                self._put_object(config, again, body)
                outcome.info["duplicate_key"] = again
                self.duplicates[name] = self.duplicates.get(name, 0) + 1

    # -- record format conversion ---------------------------------------------------
    def _convert(self, config: dict, records: list[Record]):
        """``(file bytes, records written, error rows)``; a missing Glue table raises (retried)."""
        from localaws.core.tables import encode
        dfc = config["DataFormatConversionConfiguration"]
        schema = dfc.get("SchemaConfiguration") or {}
        table = self.glue_table(schema)
        converter = Converter(table["StorageDescriptor"]["Columns"],
                              (dfc.get("InputFormatConfiguration") or {}).get("Deserializer") or {})
        rows, ok, failed = [], [], []
        for r in records:
            try:
                rows += converter.rows(r.data)
                ok.append(r)
            except Malformed as exc:
                failed.append(self._conversion_row(r, schema, "DataFormatConversion.MalformedData", str(exc)))
            except (ValueError, UnicodeDecodeError) as exc:
                failed.append(self._conversion_row(r, schema, "DataFormatConversion.ParseError",
                                                   f"Encountered malformed JSON: {exc}"))
        serializer = (dfc.get("OutputFormatConfiguration") or {}).get("Serializer") or {}
        if "OrcSerDe" in serializer:
            fmt, codec = "orc", (serializer["OrcSerDe"] or {}).get("Compression", "SNAPPY")
        else:
            fmt, codec = "parquet", (serializer.get("ParquetSerDe") or {}).get("Compression", "SNAPPY")
        body = encode(converter.table(rows), fmt, codec.lower()) if rows else b""
        return body, ok, failed

    def glue_table(self, schema: dict) -> dict:
        region = schema.get("Region") or self.ctx.region
        if region not in self._glue:
            self._glue[region] = self.ctx.client("glue", region_name=region)
        glue = self._glue[region]
        args = {"DatabaseName": schema.get("DatabaseName"), "Name": schema.get("TableName")}
        if schema.get("CatalogId"):
            args["CatalogId"] = schema["CatalogId"]
        return glue.get_table(**args)["Table"]

    def _conversion_row(self, r: Record, schema: dict, code: str, message: str) -> Record:
        row = {"attemptsMade": 1, "arrivalTimestamp": r.arrival_ms, "lastErrorCode": code,
               "lastErrorMessage": message, "attemptEndingTimestamp": int(self.ctx.clock.time() * 1000),
               "rawData": base64.b64encode(r.data).decode(),
               "sequenceNumber": (r.kinesis or {}).get("sequenceNumber"),
               "subSequenceNumber": (r.kinesis or {}).get("subsequenceNumber"),
               "dataCatalogTable": {"catalogId": schema.get("CatalogId"), "databaseName": schema.get("DatabaseName"),
                                    "tableName": schema.get("TableName"), "region": schema.get("Region"),
                                    "versionId": schema.get("VersionId", "LATEST"), "catalogArn": None}}
        return r.derive(json.dumps(row).encode() + b"\n")

    # -- OpenSearch ------------------------------------------------------------
    def _opensearch_url(self, config: dict) -> tuple[str, tuple | None]:
        auth = None
        if os.environ.get("OPENSEARCH_USER"):
            auth = (os.environ["OPENSEARCH_USER"], os.environ.get("OPENSEARCH_PASSWORD", ""))
        if config.get("ClusterEndpoint"):
            return config["ClusterEndpoint"].rstrip("/"), auth
        if os.environ.get("OPENSEARCH_URL"):          # every domain is that cluster
            return os.environ["OPENSEARCH_URL"].rstrip("/"), auth
        name = config["DomainARN"].split("/")[-1]
        status = self.ctx.client("opensearch").describe_domain(DomainName=name)["DomainStatus"]
        host = status.get("Endpoint") or (status.get("Endpoints") or {}).get("vpc")
        return f"http://{host}", auth

    @staticmethod
    def index_name(config: dict, now: datetime) -> str:
        rotation = config.get("IndexRotationPeriod", "NoRotation")
        suffix = {"NoRotation": "", "OneHour": f"-{now:%Y-%m-%d-%H}", "OneDay": f"-{now:%Y-%m-%d}",
                  "OneWeek": f"-{now:%Y}-w{now:%V}", "OneMonth": f"-{now:%Y-%m}"}[rotation]
        return config["IndexName"] + suffix

    def _index(self, stream, kind: str, config: dict, s3_conf: dict, records: list[Record],
               outcome: Outcome) -> None:
        """Bulk-index ``records``; refused documents go to the S3 backup prefix.

        A cluster that is down or overloaded (connection refused, 5xx, 429)
        raises, and the buffer retries the whole batch later, as Firehose does.
        """
        when = self._oldest(config, records)
        if config.get("S3BackupMode") == "AllDocuments":
            key = self._object_key(stream, s3_conf, prefixes.object_prefix(s3_conf.get("Prefix"), when), when)
            self._put_object(s3_conf, key, b"".join(r.data for r in records))
        from opensearchpy import OpenSearch, TransportError
        from opensearchpy.helpers import streaming_bulk
        url, auth = self._opensearch_url(config)
        index = self.index_name(config, self.ctx.clock.now())
        outcome.info["index"] = index
        with_ids = (config.get("DocumentIdOptions") or {}).get("DefaultDocumentIdFormat",
                                                               "FIREHOSE_DEFAULT") == "FIREHOSE_DEFAULT"
        client = OpenSearch(hosts=[url], http_auth=auth, verify_certs=False, ssl_show_warn=False,
                            timeout=60)
        actions = ({"_index": index, **({"_id": r.record_id} if with_ids else {}),
                    "_source": r.data.rstrip(b"\n").replace(b"\n", b" ").decode("utf-8", "replace")}
                   for r in records)
        delivered, failures, seen = [], [], 0
        try:
            for ok, item in streaming_bulk(client, actions, max_chunk_bytes=MAX_BULK_BYTES,
                                           raise_on_error=False, yield_ok=True):
                r, result = records[seen], next(iter(item.values()))
                seen += 1
                if ok:
                    delivered.append(r)
                else:
                    failures.append(self._failure_row(
                        r, str(result.get("status", 400)), json.dumps(result.get("error")),
                        subsequenceNumber=0, esDocumentId=result.get("_id", ""),
                        esIndexName=index, esTypeName=""))
        except TransportError as exc:
            status = exc.status_code if isinstance(exc.status_code, int) else 0
            if status == 0 or status >= 500 or status == 429:
                raise ConnectionError(f"OpenSearch answered {exc.status_code} to _bulk") from None
            for r in records[seen:]:                   # the whole request was refused
                failures.append(self._failure_row(r, str(status), str(exc.info)[:1000],
                                                  esDocumentId=r.record_id, esIndexName=index))
        if failures:
            prefix = s3_conf.get("Prefix", "") + OPENSEARCH_KINDS[kind] + prefixes.format_time(
                prefixes.DEFAULT_TIME, when)
            self._put_object(s3_conf, self._object_key(stream, s3_conf, prefix, when),
                             b"".join(r.data for r in failures))
        outcome.delivered.extend(delivered)
        outcome.failed.extend(failures)
