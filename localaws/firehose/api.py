"""Firehose's data plane: PutRecord/PutRecordBatch buffer, a flusher delivers.

moto records delivery streams (CreateDeliveryStream, DescribeDeliveryStream,
ListDeliveryStreams...) but delivers synchronously, one S3 object per call,
ignoring ``BufferingHints``, and drops records for OpenSearch destinations.
This data plane plugs in behind moto (see ``localaws/core/plane.py``):

- ``CreateDeliveryStream`` (route): checks ``BufferingHints`` against
  Firehose's limits and accepts ``AmazonopensearchserviceDestinationConfiguration``,
  which moto does not know; the rest is moto's;
- ``PutRecord`` / ``PutRecordBatch`` (override): enforce the API limits (500
  records, 1,000 KiB per record, 4 MiB per call), append to the stream's
  buffer and return RecordIds at once; ``buffer.py`` delivers later;
- CloudWatch Logs subscription filters with a Firehose destination
  (override of ``send_log_event``): the gzipped batch of log events becomes
  one record of the stream, as on AWS;
- ``DeleteDeliveryStream`` delivers what is still buffered first.

Not enforced: per-stream throughput quotas (records/s, MiB/s), the 24-hour
retry window, KMS encryption, data format conversion (Parquet/ORC), dynamic
partitioning, ``!{...}`` prefix expressions, Kinesis-stream sources and the
HTTP, Redshift, Splunk, Snowflake and Iceberg destinations (moto's behaviour
is kept for those). Streams are delivered in the stack's Region only, and
UpdateDestination to or from an OpenSearch Service destination is moto's
(it knows only the Elasticsearch name). See ``stack.local.firehose.stats(name)``
for what happened. Buffering intervals run on the stack's clock: a notebook
may ``stack.local.clock.freeze()`` and ``advance(60)`` instead of waiting.
"""
from __future__ import annotations

import base64
import json

from localaws.core import AWSError, Plane, local_hook, moto_hook, not_emulated, operation
from . import errors
from .buffer import Buffers
from .engine import OPENSEARCH_KINDS, S3_KINDS, Deliverer, destination_kind

MAX_BATCH_RECORDS = 500
MAX_RECORD_BYTES = 1_024_000
MAX_REQUEST_BYTES = 4 * 1024 * 1024
DEFAULT_HINTS = {"SizeInMBs": 5, "IntervalInSeconds": 300}
SIZE_LIMITS = {"S3": 128, "ExtendedS3": 128, "Amazonopensearchservice": 100, "Elasticsearch": 100}
SUPPORTED_PROCESSORS = {"Lambda", "Decompression", "CloudWatchLogProcessing", "AppendDelimiterToRecord"}
DESTINATION_PARAMS = {
    "S3DestinationConfiguration": "S3", "ExtendedS3DestinationConfiguration": "ExtendedS3",
    "AmazonopensearchserviceDestinationConfiguration": "Amazonopensearchservice",
    "ElasticsearchDestinationConfiguration": "Elasticsearch",
}


class FirehosePlane(Plane):
    """Buffered, really delivered Firehose streams."""

    name = "firehose"
    services = ("firehose",)

    def __init__(self, ctx):
        super().__init__(ctx)
        self.deliverer = Deliverer(ctx, self._stream)
        self.buffers = Buffers(self.deliverer, ctx.clock)

    def stop(self):
        self.buffers.stop()

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

    @staticmethod
    def _check_config(param: str, kind: str, config: dict) -> None:
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
        processing = config.get("ProcessingConfiguration") or {}
        if processing.get("Enabled"):
            for proc in processing.get("Processors", []):
                if proc.get("Type") not in SUPPORTED_PROCESSORS:
                    raise not_emulated("firehose", "CreateDeliveryStream",
                                       f"the {proc.get('Type')} processor is not run locally")

    # -- PutRecord / PutRecordBatch --------------------------------------------
    @moto_hook("moto.firehose.models:FirehoseBackend.put_record_batch")
    def put_record_batch(self, moto_put_batch, backend, name: str, records: list[dict]) -> dict:
        stream = backend.delivery_streams.get(name)
        if stream is None:
            raise errors.ResourceNotFoundException(f"Firehose {name} under account {backend.account_id} not found.")
        destination = stream.destinations[0]
        kind = destination_kind(destination)
        if kind is None:                            # HTTP, Redshift, Splunk...: moto's behaviour
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
        hints = {**DEFAULT_HINTS, **(destination[kind].get("BufferingHints") or {})}
        ids = self.buffers.put(name, int(hints["SizeInMBs"]), int(hints["IntervalInSeconds"]), payloads)
        return {"FailedPutCount": 0, "Encrypted": False,
                "RequestResponses": [{"RecordId": rid} for rid in ids]}

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
        if name in backend.delivery_streams:
            self.buffers.flush(name)
        result = original(backend, name)
        self.buffers.forget(name)
        return result

    # -- teaching hooks ----------------------------------------------------------
    @local_hook("On AWS, read the stream's CloudWatch metrics (IncomingRecords, "
                "DeliveryToS3.Records, DeliveryToAmazonOpenSearchService.Records).")
    def stats(self, name: str) -> dict:
        """Counts for ``name``: in, delivered, failed, dropped, buffered, in flight, deliveries."""
        s = self.buffers.stats(name)
        return {"records_in": s.records_in, "bytes_in": s.bytes_in,
                "records_delivered": s.records_delivered, "records_failed": s.records_failed,
                "records_dropped": s.records_dropped, "buffered": self.buffers.buffered(name),
                "in_flight": s.in_flight, "deliveries": list(s.deliveries), "errors": list(s.errors)}

    @local_hook("On AWS, poll the destination (ListObjectsV2, or a count of the index) "
                "until the records arrive, about IntervalInSeconds after the last put.")
    def wait_idle(self, name: str | None = None, timeout: float = 60) -> bool:
        """Block until ``name`` (or every stream) has delivered all it buffered.

        Nothing is flushed early: the size and interval triggers do the work,
        so this returns about ``IntervalInSeconds`` after the last put.
        """
        return self.buffers.wait_idle(name, timeout)


__all__ = ["FirehosePlane", "S3_KINDS"]
