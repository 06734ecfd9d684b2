"""Firehose's data plane: records are processed, partitioned, buffered, delivered.

moto records delivery streams (CreateDeliveryStream, DescribeDeliveryStream,
ListDeliveryStreams...) but delivers synchronously, one S3 object per call,
ignoring ``BufferingHints``, and drops records for OpenSearch destinations.
This data plane plugs in behind moto (see ``localaws/core/plane.py``):

- ``CreateDeliveryStream`` (route): checks the configuration as Firehose
  does (below) and accepts ``AmazonopensearchserviceDestinationConfiguration``,
  which moto does not know; the rest is moto's;
- ``DeliveryStreamType="KinesisStreamAsSource"`` (``source.py``): the delivery
  stream reads the Kinesis stream's shards from ``LATEST``, once per second
  of the stack's clock, following splits and merges;
- ``PutRecord`` / ``PutRecordBatch`` (override): enforce the API limits (500
  records, 1,000 KiB per record, 4 MiB per call), refuse a Kinesis-sourced
  stream, hand the records to the pipeline and return RecordIds at once;
- the pipeline (``engine.py``): Lambda transformation and the other processors
  (``transform.py``), dynamic partitioning (``prefixes.py``), buffering
  (``buffer.py``), JSON -> Parquet/ORC conversion with a Glue table's schema
  (``convert.py``), delivery to S3, OpenSearch or Amazon Redshift (staged in
  S3 with a manifest, then ``COPY``, retried for ``RetryOptions``:
  ``redshift.py``), into Apache Iceberg tables of the Glue Data Catalog
  (one commit per table and flush: ``iceberg.py``), and the S3 error output;
- CloudWatch metrics (namespace ``AWS/Firehose``, dimension
  ``DeliveryStreamName``) from what the pipeline measured: IncomingRecords,
  IncomingBytes, DeliveryToS3.Records/Bytes/Success/DataFreshness,
  DeliveryToRedshift.Records/Bytes/Success [6], DeliveryToIceberg.* (``iceberg.py``),
  sent by the shared publisher
  of ``core/metrics.py``;
- CloudWatch Logs subscription filters with a Firehose destination
  (override of ``send_log_event``): the gzipped batch of log events becomes
  one record of the stream, as on AWS;
- ``DeleteDeliveryStream`` stops reading its source and delivers what is still buffered.

**Checked at CreateDeliveryStream**, with AWS's error where public reports
quote it (InvalidArgumentException unless said):

- ``BufferingHints``: 1-128 MiB (OpenSearch 1-100), 0-900 s (ValidationException) [1];
- conversion: ``CompressionFormat`` UNCOMPRESSED, ``SizeInMBs`` at least 64
  ("BufferingHints.SizeInMBs must be at least 64 when data format conversion
  is enabled."; default 128 when ``BufferingHints`` is left out) [2], one
  deserializer, one serializer, and a Glue table that exists;
- dynamic partitioning: ``SizeInMBs`` at least 64 ("... when Dynamic
  Partitioning is enabled."), no zero buffering interval [3], a ``Prefix``
  naming partition keys, an ``ErrorOutputPrefix``; ``MetadataExtraction``
  only with dynamic partitioning, its query in the subset this stand-in runs (else 501);
- the prefix rules of [4] (``prefixes.py``); the Lambda processor's
  ``BufferSizeInMBs`` (0.2-3) and ``BufferIntervalInSeconds`` (0-900) [5];
- a Kinesis source: its stream exists and ``RoleARN`` can be assumed ("Firehose
  is unable to assume role <arn>. Please check the role provided.");
- a Redshift destination [7]: ``ClusterJDBCURL`` of the form
  ``jdbc:redshift://<address>:<port>/<db>`` (AWS's pattern also wants a
  ``.redshift.`` host; a local cluster is 127.0.0.1), ``CopyCommand.DataTableName``,
  ``Username``/``Password`` unless ``SecretsManagerConfiguration`` is enabled,
  ``RetryOptions.DurationInSeconds`` 0-7200 (ValidationException) [8], an
  intermediate ``S3Configuration`` whose ``CompressionFormat`` COPY can read
  (not ZIP or Snappy [9]) and whose ``BufferingHints`` are checked as above;
- an Iceberg destination (``iceberg.check_config``): the API's patterns of
  ``RoleARN``, ``CatalogARN`` and table names (ValidationException), the tables
  named with ``UniqueKeys`` exist and hold those columns, ``RetryOptions`` 0-7200.

Quoted from AWS's answers as public reports show them: the two SizeInMBs
sentences, "ErrorOutputPrefix cannot be null or empty when Prefix contains
expressions", "S3 Prefix should contain Dynamic Partitioning namespaces when
Dynamic Partitioning is enabled", "Dynamic Partitioning Namespaces can only
be part of a prefix expression when Dynamic Partitioning is enabled.", the
MetadataExtractionProcessor sentence and the assume-role sentence. The
wording of the other refusals (compression with conversion, zero interval,
the other prefix rules, bad Lambda parameters, a missing Kinesis stream or
Glue table) is this stand-in's own.

**Where errors go.** Without ``ErrorOutputPrefix``, failed records are written
under ``<error type>/yyyy/MM/dd/HH/`` at the top of the bucket (as
``tests/test_firehose.py`` pins); the guide's rule [4] says
``<Prefix><error type>...``: an open difference.

Not enforced: per-stream throughput quotas (records/s, MiB/s), the 24-hour
retry window of S3 and ``RetryOptions`` except Redshift's (a failed S3 or
OpenSearch delivery is retried with backoff, forever), the 500 active partitions of dynamic
partitioning, KMS encryption, ``S3BackupMode`` for ExtendedS3 and Redshift (source record
backup: ``Enabled`` is refused with 501 for Redshift), ``CloudWatchLoggingOptions``
(no error log stream is written), the
Lambda processor's ``RoleArn`` (the function is invoked as the stack's
administrator; a timed-out function is reported as ``Lambda.FunctionError``),
the ``RecordDeAggregation`` processor and KPL de-aggregation, compression
formats other than GZIP (ZIP, Snappy, HADOOP_SNAPPY are written
uncompressed), ``VersionId`` of a Glue table (LATEST is always read),
ORC/Parquet writer options other than ``Compression``, a file extension for
converted files (none unless ``FileExtension`` is set: what AWS appends by
default is not documented), JQ beyond ``{key: .a.b}``, and the HTTP,
Splunk and Snowflake destinations (moto's behaviour is kept for
those). For Redshift: Redshift Serverless workgroups, the COPY's role (the
cluster reads S3 as the stack's administrator whatever ``RoleARN`` says),
SSL to the cluster (the local endpoint has none), and where exactly AWS puts
the manifests (``<Prefix>manifests/...`` and ``<Prefix>errors/manifests/...``
are this stand-in's layout; AWS documents only "a manifest file in the
errors/ folder" [10]). Metrics: only those listed above (no
DeliveryToAmazonOpenSearchService.*, ExecuteProcessing.*, ThrottledRecords,
BackupToS3.*), one data point per measurement rather than AWS's per-minute
aggregates. Streams are delivered in the stack's Region only, and
UpdateDestination is moto's: it does not re-run the checks above (it knows
only the Elasticsearch name for OpenSearch). See
``stack.local.firehose.stats(name)`` for what happened. Buffering intervals
and Kinesis reads run on the stack's clock: a notebook may
``stack.local.clock.freeze()`` and ``advance(60)`` instead of waiting.

[1] https://docs.aws.amazon.com/firehose/latest/APIReference/API_BufferingHints.html
[2] https://docs.aws.amazon.com/firehose/latest/dev/record-format-conversion.html
    ("Converting Input Record Format (API)"); the sentence from AWS as quoted in
    hashicorp/terraform-provider-aws's acceptance tests
[3] https://docs.aws.amazon.com/firehose/latest/dev/buffering.html ("Zero buffering feature is
    not available for dynamic partitioning"); the sentence as quoted in aws/aws-cdk's S3 destination
[4] https://docs.aws.amazon.com/firehose/latest/dev/s3-prefixes.html ("Semantic rules")
[5] https://docs.aws.amazon.com/firehose/latest/dev/data-transformation.html
[6] https://docs.aws.amazon.com/firehose/latest/dev/monitoring-with-cloudwatch-metrics.html
[7] https://docs.aws.amazon.com/firehose/latest/APIReference/API_RedshiftDestinationConfiguration.html
[8] https://docs.aws.amazon.com/firehose/latest/APIReference/API_RedshiftRetryOptions.html
[9] https://docs.aws.amazon.com/firehose/latest/APIReference/API_S3DestinationUpdate.html
    ("The compression formats SNAPPY or ZIP cannot be specified for Amazon Redshift destinations")
[10] https://docs.aws.amazon.com/firehose/latest/dev/retry.html ("Amazon Redshift")
"""
from __future__ import annotations

import base64
import inspect
import json
import uuid
from datetime import datetime, timezone

from localaws.core import AWSError, Plane, local_hook, moto_hook, not_emulated, operation
from localaws.core.metrics import MetricsPublisher
from . import errors, iceberg, prefixes, redshift, transform
from .buffer import Buffers, Record
from .convert import Converter
from .engine import OPENSEARCH_KINDS, S3_KINDS, Deliverer, destination_kind, enabled
from .source import Sources, open_source

MAX_BATCH_RECORDS = 500
MAX_RECORD_BYTES = 1_024_000
MAX_REQUEST_BYTES = 4 * 1024 * 1024
MIN_LARGE_BUFFER_MB = 64
SIZE_LIMITS = {"S3": 128, "ExtendedS3": 128, "Amazonopensearchservice": 100, "Elasticsearch": 100,
               "Redshift": 128, "Iceberg": 128}
SUPPORTED_PROCESSORS = {"Lambda", "Decompression", "CloudWatchLogProcessing", "AppendDelimiterToRecord",
                        "MetadataExtraction"}
DESTINATION_PARAMS = {
    "S3DestinationConfiguration": "S3", "ExtendedS3DestinationConfiguration": "ExtendedS3",
    "AmazonopensearchserviceDestinationConfiguration": "Amazonopensearchservice",
    "ElasticsearchDestinationConfiguration": "Elasticsearch",
    "RedshiftDestinationConfiguration": "Redshift",
    "IcebergDestinationConfiguration": "Iceberg",
}
KINESIS_SOURCE = "KinesisStreamAsSource"
NOT_PERMITTED = "This operation is not permitted on KinesisStreamAsSource delivery stream type."


class FirehosePlane(Plane):
    """Buffered, really delivered Firehose streams."""

    name = "firehose"
    services = ("firehose",)

    def __init__(self, ctx):
        super().__init__(ctx)
        self._cloudwatch: dict[str, object] = {}
        self.metrics = MetricsPublisher(self._cloudwatch_client, "AWS/Firehose", "DeliveryStreamName")
        self.buffers = Buffers(ctx.clock)
        self.deliverer = Deliverer(ctx, self._stream, self.buffers, self._publish)
        self.buffers.deliver = self.deliverer
        self.sources = Sources(ctx.clock, self.deliverer.accept, Record)

    def stop(self):
        self.sources.stop()
        self.buffers.stop()
        self.metrics.stop()

    def _cloudwatch_client(self, region: str):
        if region not in self._cloudwatch:
            self._cloudwatch[region] = self.ctx.client("cloudwatch", region_name=region)
        return self._cloudwatch[region]

    def _publish(self, stream, metrics: list[tuple[str, float, str]]) -> None:
        """Queue ``[(name, value, unit)]`` for ``stream``'s CloudWatch metrics, at the stack's time."""
        region = stream.delivery_stream_arn.split(":")[3]
        self.metrics.publish(region, stream.delivery_stream_name, metrics, self.ctx.clock.now())

    def _backend(self, region: str | None = None):
        from moto.firehose.models import firehose_backends
        return firehose_backends[self.ctx.account_id][region or self.ctx.region]

    def _stream(self, name: str):
        return self._backend().delivery_streams[name]

    # -- CreateDeliveryStream --------------------------------------------------
    @operation("CreateDeliveryStream")
    def create_delivery_stream(self, req):
        params = req.params
        given = [(p, kind) for p, kind in DESTINATION_PARAMS.items() if params.get(p)]
        for param, kind in given:
            self._check_config(param, kind, params[param])
        if "AmazonopensearchserviceDestinationConfiguration" not in params:
            return None                            # moto stores it as it is
        if len([p for p in params if p.endswith("DestinationConfiguration")]) != 1:
            raise errors.InvalidArgumentException("Exactly one destination configuration is supported "
                                                  "for a Firehose")
        from moto.core.exceptions import JsonRESTError
        backend = self._backend(req.region)
        try:     # moto knows this destination only by its older name, Elasticsearch
            arn = backend.create_delivery_stream(
                region=req.region, delivery_stream_name=params["DeliveryStreamName"],
                delivery_stream_type=params.get("DeliveryStreamType"),
                kinesis_stream_source_configuration=params.get("KinesisStreamSourceConfiguration"),
                delivery_stream_encryption_configuration_input=params.get(
                    "DeliveryStreamEncryptionConfigurationInput"),
                s3_destination_configuration=None, extended_s3_destination_configuration=None,
                redshift_destination_configuration=None,
                elasticsearch_destination_configuration=params["AmazonopensearchserviceDestinationConfiguration"],
                splunk_destination_configuration=None, http_endpoint_destination_configuration=None,
                snowflake_destination_configuration=None, iceberg_destination_configuration=None,
                tags=params.get("Tags"))
        except JsonRESTError as exc:
            raise AWSError(exc.message, code=exc.error_type, status=exc.code) from None
        stream = backend.delivery_streams[params["DeliveryStreamName"]]
        destination = stream.destinations[0]
        destination["Amazonopensearchservice"] = destination.pop("Elasticsearch")
        return {"DeliveryStreamARN": arn}

    def _check_config(self, param: str, kind: str, config: dict) -> None:
        if kind == "Iceberg":
            iceberg.check_config(config, self.deliverer.iceberg.catalog, self.ctx.account_id, self.ctx.region)
            if any(k == "MetadataExtraction" for k, _ in transform.processors(config)):
                raise not_emulated("firehose", "CreateDeliveryStream", "JQ routing (MetadataExtraction) for "
                                   "Iceberg tables is not run locally: return otfMetadata from a Lambda")
        if kind == "Redshift":
            self._check_redshift(config)
            param, config = f"{param}.s3Configuration", {**config.get("S3Configuration", {}),
                                                          "ProcessingConfiguration":
                                                              config.get("ProcessingConfiguration")}
        hints = config.get("BufferingHints") or {}
        limit = SIZE_LIMITS[kind]
        field = param[0].lower() + param[1:]
        size, interval = hints.get("SizeInMBs"), hints.get("IntervalInSeconds")
        if size is not None and not 1 <= int(size) <= limit:
            raise errors.ValidationException(
                f"1 validation error detected: Value '{size}' at '{field}.bufferingHints.sizeInMBs' "
                f"failed to satisfy constraint: Member must have value less than or equal to {limit}")
        if interval is not None and not 0 <= int(interval) <= 900:
            raise errors.ValidationException(
                f"1 validation error detected: Value '{interval}' at "
                f"'{field}.bufferingHints.intervalInSeconds' failed to satisfy constraint: "
                "Member must have value less than or equal to 900")
        if kind in OPENSEARCH_KINDS and not (config.get("DomainARN") or config.get("ClusterEndpoint")):
            raise errors.InvalidArgumentException("Either DomainARN or ClusterEndpoint must be specified")
        dynamic = kind == "ExtendedS3" and enabled(config, "DynamicPartitioningConfiguration")
        if kind == "ExtendedS3":
            self._check_conversion(config)
            self._check_partitioning(config)
        self._check_processors(config, dynamic)
        if kind in S3_KINDS:
            try:
                prefixes.check(config.get("Prefix"), config.get("ErrorOutputPrefix"), dynamic)
            except prefixes.Unsupported as exc:
                raise not_emulated("firehose", "CreateDeliveryStream", f"{exc} is not formatted locally") from None
            except prefixes.PrefixError as exc:
                raise errors.InvalidArgumentException(str(exc)) from None

    @staticmethod
    def _check_redshift(config: dict) -> None:
        """RedshiftDestinationConfiguration: what Firehose needs to stage and COPY."""
        try:
            redshift.parse_jdbc_url(config.get("ClusterJDBCURL", ""))
        except ValueError as exc:
            raise errors.InvalidArgumentException(str(exc)) from None
        if not (config.get("CopyCommand") or {}).get("DataTableName"):
            raise errors.InvalidArgumentException("CopyCommand.DataTableName is required.")
        secret = config.get("SecretsManagerConfiguration") or {}
        if secret.get("Enabled"):
            if not secret.get("SecretARN"):
                raise errors.InvalidArgumentException("SecretsManagerConfiguration.SecretARN is required when "
                                                      "SecretsManagerConfiguration is enabled.")
        elif not config.get("Username") or not config.get("Password"):
            raise errors.InvalidArgumentException(
                "Username and Password are required unless SecretsManagerConfiguration is enabled.")
        duration = (config.get("RetryOptions") or {}).get("DurationInSeconds")
        if duration is not None and not 0 <= int(duration) <= 7200:
            raise errors.ValidationException(
                f"1 validation error detected: Value '{duration}' at "
                "'redshiftDestinationConfiguration.retryOptions.durationInSeconds' failed to satisfy "
                "constraint: Member must have value less than or equal to 7200")
        s3_conf = config.get("S3Configuration") or {}
        if not s3_conf.get("BucketARN"):
            raise errors.InvalidArgumentException("S3Configuration.BucketARN is required.")
        if s3_conf.get("CompressionFormat") in ("ZIP", "Snappy", "HADOOP_SNAPPY"):
            raise errors.InvalidArgumentException(
                f"CompressionFormat {s3_conf['CompressionFormat']} is not supported for Amazon Redshift "
                "destinations: the COPY command cannot read it (use UNCOMPRESSED or GZIP).")
        if config.get("S3BackupMode") == "Enabled":
            raise not_emulated("firehose", "CreateDeliveryStream",
                               "S3BackupMode Enabled (a backup of the source records) for Redshift")

    @staticmethod
    def _check_processors(config: dict, dynamic: bool) -> None:
        for kind, params in transform.processors(config):
            if kind not in SUPPORTED_PROCESSORS:
                raise not_emulated("firehose", "CreateDeliveryStream", f"the {kind} processor is not run locally")
            if kind == "Lambda":
                problem = transform.check_lambda({**transform.LAMBDA_DEFAULTS, **params})
                if problem:
                    raise errors.InvalidArgumentException(problem)
            if kind == "MetadataExtraction":
                if not dynamic:
                    raise errors.InvalidArgumentException(
                        "class com.amazonaws.services.firehose.internal.model.MetadataExtractionProcessor can "
                        "only be present when Dynamic Partitioning is enabled.")
                if params.get("JsonParsingEngine", "JQ-1.6") != "JQ-1.6":
                    raise errors.InvalidArgumentException(
                        f"JsonParsingEngine must be JQ-1.6 (got {params.get('JsonParsingEngine')}).")
                try:
                    transform.parse_query(params.get("MetadataExtractionQuery") or "")
                except ValueError:
                    raise not_emulated("firehose", "CreateDeliveryStream",
                                       f"the MetadataExtractionQuery {params.get('MetadataExtractionQuery')!r}: "
                                       "only {key: .field.path, ...} is run locally") from None

    def _check_conversion(self, config: dict) -> None:
        if not enabled(config, "DataFormatConversionConfiguration"):
            return
        dfc = config["DataFormatConversionConfiguration"]
        size = (config.get("BufferingHints") or {}).get("SizeInMBs")
        if config.get("CompressionFormat", "UNCOMPRESSED") != "UNCOMPRESSED":
            raise errors.InvalidArgumentException(
                "CompressionFormat must be UNCOMPRESSED when data format conversion is enabled; "
                "the serializer compresses (ParquetSerDe/OrcSerDe Compression).")
        if size is not None and int(size) < MIN_LARGE_BUFFER_MB:
            raise errors.InvalidArgumentException(
                "BufferingHints.SizeInMBs must be at least 64 when data format conversion is enabled.")
        deserializer = (dfc.get("InputFormatConfiguration") or {}).get("Deserializer") or {}
        serializer = (dfc.get("OutputFormatConfiguration") or {}).get("Serializer") or {}
        schema = dfc.get("SchemaConfiguration") or {}
        for what, section, names in (("InputFormatConfiguration.Deserializer", deserializer,
                                      ("OpenXJsonSerDe", "HiveJsonSerDe")),
                                     ("OutputFormatConfiguration.Serializer", serializer,
                                      ("ParquetSerDe", "OrcSerDe"))):
            if sum(1 for n in names if n in section) != 1:
                raise errors.InvalidArgumentException(
                    f"DataFormatConversionConfiguration.{what} must specify exactly one of {' or '.join(names)}.")
        for member in ("DatabaseName", "TableName", "RoleARN"):
            if not schema.get(member):
                raise errors.InvalidArgumentException(
                    f"DataFormatConversionConfiguration.SchemaConfiguration.{member} is required.")
        try:
            Converter.check_formats(deserializer)
        except ValueError as exc:
            raise not_emulated("firehose", "CreateDeliveryStream", f"TimestampFormats: {exc}") from None
        try:
            table = self.deliverer.glue_table(schema)
        except Exception as exc:                                  # EntityNotFoundException...
            code = getattr(exc, "response", {}).get("Error", {}).get("Code", type(exc).__name__)
            raise errors.InvalidArgumentException(
                f"Firehose could not read the AWS Glue table {schema.get('DatabaseName')}.{schema.get('TableName')}"
                f" ({code}: {exc})") from None
        try:
            Converter(table["StorageDescriptor"]["Columns"], deserializer)
        except (ValueError, KeyError) as exc:
            raise not_emulated("firehose", "CreateDeliveryStream", f"the Glue table's schema: {exc}") from None

    @staticmethod
    def _check_partitioning(config: dict) -> None:
        if not enabled(config, "DynamicPartitioningConfiguration"):
            return
        hints = config.get("BufferingHints") or {}
        if hints.get("SizeInMBs") is not None and int(hints["SizeInMBs"]) < MIN_LARGE_BUFFER_MB:
            raise errors.InvalidArgumentException(
                "BufferingHints.SizeInMBs must be at least 64 when Dynamic Partitioning is enabled.")
        if hints.get("IntervalInSeconds") is not None and int(hints["IntervalInSeconds"]) == 0:
            raise errors.InvalidArgumentException(
                "BufferingHints.IntervalInSeconds cannot be 0 when Dynamic Partitioning is enabled: zero "
                "buffering is not available for dynamic partitioning.")

    # -- Kinesis data stream as source -------------------------------------------
    @moto_hook("moto.firehose.models:FirehoseBackend.create_delivery_stream")
    def create_stream(self, original, backend, *args, **kwargs):
        """moto's CreateDeliveryStream; a Kinesis source is opened first (LATEST) and read from then on."""
        call = inspect.signature(original).bind(backend, *args, **kwargs).arguments
        source = None
        if call.get("delivery_stream_type") == KINESIS_SOURCE:
            source = self._open_source(call["delivery_stream_name"], call.get("kinesis_stream_source_configuration"))
        arn = original(backend, *args, **kwargs)
        if source is not None:
            stream = backend.delivery_streams[call["delivery_stream_name"]]
            stream.source["DeliveryStartTimestamp"] = datetime.fromtimestamp(source.started, timezone.utc)
            self.sources.add(source)
        return arn

    def _open_source(self, name: str, config: dict | None):
        from botocore.config import Config
        from botocore.exceptions import ClientError
        config = config or {}
        arn, role = config.get("KinesisStreamARN"), config.get("RoleARN")
        if not arn or not role:
            raise errors.InvalidArgumentException("KinesisStreamSourceConfiguration with KinesisStreamARN and "
                                                  "RoleARN is required for the KinesisStreamAsSource type.")
        parts = arn.split(":")
        if len(parts) < 6 or parts[2] != "kinesis" or not parts[5].startswith("stream/"):
            raise errors.InvalidArgumentException(f"Invalid KinesisStreamARN {arn}.")
        try:
            client = self.ctx.client("kinesis", role, region_name=parts[3],
                                     config=Config(retries={"total_max_attempts": 1}))
        except Exception:
            raise errors.InvalidArgumentException(
                f"Firehose is unable to assume role {role}. Please check the role provided.") from None
        try:
            return open_source(name, arn, client, self.ctx.clock.time())
        except ClientError as exc:
            raise errors.InvalidArgumentException(
                f"Firehose cannot read the Kinesis stream {arn}: {exc.response['Error'].get('Message')}") from None

    # -- PutRecord / PutRecordBatch --------------------------------------------
    @moto_hook("moto.firehose.models:FirehoseBackend.put_record_batch")
    def put_record_batch(self, moto_put_batch, backend, name: str, records: list[dict]) -> dict:
        stream = backend.delivery_streams.get(name)
        if stream is None:
            raise errors.ResourceNotFoundException(f"Firehose {name} under account {backend.account_id} not found.")
        if stream.delivery_stream_type == KINESIS_SOURCE:
            raise errors.InvalidArgumentException(NOT_PERMITTED)
        if destination_kind(stream.destinations[0]) is None:     # HTTP, Redshift, Splunk...: moto's behaviour
            return moto_put_batch(backend, name, records)
        if len(records) > MAX_BATCH_RECORDS:
            raise errors.ValidationException(
                f"1 validation error detected: Value '{len(records)}' at 'records' failed to satisfy "
                f"constraint: Member must have length less than or equal to {MAX_BATCH_RECORDS}")
        payloads = []
        for i, record in enumerate(records):
            data = record.get("Data", b"")
            if isinstance(data, str):
                data = base64.b64decode(data)
            if len(data) > MAX_RECORD_BYTES:
                raise errors.ValidationException(
                    f"1 validation error detected: Value at 'records.{i + 1}.member.data' failed to "
                    f"satisfy constraint: Member must have length less than or equal to "
                    f"{MAX_RECORD_BYTES} (got {len(data)} bytes)")
            payloads.append(bytes(data))
        total = sum(len(p) for p in payloads)
        if total > MAX_REQUEST_BYTES:
            raise errors.InvalidArgumentException(
                f"Records size exceeds 4 MiB limit ({total} bytes in this request)")
        now_ms, now = int(self.ctx.clock.time() * 1000), self.ctx.clock.monotonic()
        batch = [Record(uuid.uuid4().hex + uuid.uuid4().hex, data, now_ms, now) for data in payloads]
        self.deliverer.accept(name, batch)
        return {"FailedPutCount": 0, "Encrypted": False,
                "RequestResponses": [{"RecordId": r.record_id} for r in batch]}

    # -- CloudWatch Logs subscription filter -> Firehose ----------------------
    @moto_hook("moto.firehose.models:FirehoseBackend.send_log_event")
    def send_log_event(self, _moto_send, backend, stream_arn, filter_name, log_group, log_stream, events):
        """What CloudWatch Logs sends: one gzipped JSON document per PutLogEvents batch."""
        import gzip
        data = {"messageType": "DATA_MESSAGE", "owner": backend.account_id, "logGroup": log_group,
                "logStream": log_stream, "subscriptionFilters": [filter_name], "logEvents": events}
        payload = gzip.compress(json.dumps(data, separators=(",", ":")).encode())
        backend.put_record_batch(stream_arn.split("/")[-1], [{"Data": payload}])   # through our hook

    # -- DeleteDeliveryStream --------------------------------------------------
    @moto_hook("moto.firehose.models:FirehoseBackend.delete_delivery_stream")
    def delete_delivery_stream(self, original, backend, name):
        self.sources.remove(name)
        if name in backend.delivery_streams:
            self.buffers.flush(name)
        result = original(backend, name)
        self.buffers.forget(name)
        return result

    # -- teaching hooks ----------------------------------------------------------
    @local_hook("On AWS, read the stream's CloudWatch metrics (IncomingRecords, DeliveryToS3.Records, "
                "ExecuteProcessing.Success, SucceedProcessing.Records, PartitionCount, "
                "DeliveryToAmazonOpenSearchService.Records, DeliveryToRedshift.Records), and for "
                "Redshift the errors/ manifests in the intermediate bucket.")
    def stats(self, name: str) -> dict:
        """What happened to ``name``'s records. Once nothing is buffered or in flight,
        ``records_in == records_delivered + records_dropped + records_failed`` (failed:
        written to the error output): every record is counted once."""
        s = self.buffers.stats(name)
        return {"records_in": s.records_in, "bytes_in": s.bytes_in,
                "records_delivered": s.records_delivered, "records_failed": s.records_failed,
                "records_dropped": s.records_dropped, "buffered": self.buffers.buffered(name),
                "in_flight": s.in_flight, "partitions": self.buffers.partitions(name),
                "deliveries": list(s.deliveries), "transforms": list(s.transforms), "copies": list(s.copies),
                "error_outputs": list(s.error_outputs), "errors": list(s.errors),
                "source": self.sources.describe(name),
                "duplicate_deliveries": self.deliverer.duplicates.get(name, 0)}

    @local_hook("On AWS you cannot make Firehose duplicate a delivery; it happens on its own, rarely "
                "(a delivery that timed out but landed, then retried). Rehearse it by copying one "
                "delivered object to a second key (s3 CopyObject) and check your loads deduplicate.")
    def duplicate_next_delivery(self, delivery_stream_name: str) -> None:
        """Write the stream's next S3 (ExtendedS3) delivery twice: two objects, same records.

        Firehose's guide ("Understand data delivery", section *Duplicated records*,
        https://docs.aws.amazon.com/firehose/latest/dev/basic-deliver.html) says: Firehose
        "uses at-least-once semantics for data delivery. In some circumstances, such as when
        data delivery times out, delivery retries by Firehose might introduce duplicates if the
        original data-delivery request eventually goes through. This applies to all destination
        types". This hook makes that happen once, deterministically: the next destination
        batch is written under its object name and again under a second name (same prefix,
        same timestamp, another random suffix, as a retry is named). ``stats(name)`` counts it
        in ``duplicate_deliveries`` (and the delivery's ``duplicate_key``); ``records_delivered``
        counts each record once. Error-output objects are not duplicated.
        """
        stream = self._backend().delivery_streams.get(delivery_stream_name)
        if stream is None:
            raise errors.ResourceNotFoundException(
                f"Firehose {delivery_stream_name} under account {self.ctx.account_id} not found.")
        if destination_kind(stream.destinations[0]) not in S3_KINDS:
            raise errors.InvalidArgumentException(
                "duplicate_next_delivery works for S3 and ExtendedS3 destinations only.")
        self.deliverer.duplicate_next.add(delivery_stream_name)

    @local_hook("On AWS, poll the destination (ListObjectsV2, or a count of the index) "
                "until the records arrive, about IntervalInSeconds after the last put.")
    def wait_idle(self, name: str | None = None, timeout: float = 60) -> bool:
        """Block until ``name`` (or every stream) has delivered all it buffered.

        Nothing is flushed early: the size and interval triggers do the work,
        so this returns about ``IntervalInSeconds`` after the last put.
        """
        return self.buffers.wait_idle(name, timeout)


__all__ = ["FirehosePlane", "S3_KINDS"]
