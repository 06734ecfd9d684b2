"""Deliver one cut batch: transform, then write to S3 or index into OpenSearch.

The steps follow Firehose's documented pipeline:

1. **Data transformation** (``ProcessingConfiguration``), processors in order:
   ``Decompression`` (gunzip, for CloudWatch Logs subscriptions),
   ``CloudWatchLogProcessing`` with ``DataMessageExtraction`` (one record per
   log event's message; CONTROL_MESSAGEs dropped), ``Lambda`` (your function
   gets ``{"records": [{"recordId", "data" (base64)...}]}`` and returns each
   record with ``result`` Ok / Dropped / ProcessingFailed), and
   ``AppendDelimiterToRecord`` (adds ``\\n``). Records that fail processing go
   to S3 under ``ErrorOutputPrefix`` (default ``processing-failed/``).
2. **Destination**:
   - S3 / ExtendedS3: the batch's bytes concatenated into **one object**
     ``{Prefix}YYYY/MM/DD/HH/{stream}-{version}-YYYY-MM-DD-HH-MM-SS-{id}``.
     Firehose adds no newline between records: send ``b"...\\n"`` yourself
     or use the AppendDelimiterToRecord processor.
   - OpenSearch Service (``AmazonopensearchserviceDestinationConfiguration``
     or the older ``ElasticsearchDestinationConfiguration``): one ``_bulk``
     request into ``IndexName`` (+ the rotation suffix); each record must be
     one JSON document (sent with opensearch-py's ``streaming_bulk``, in
     requests of at most 10 MiB). Documents the cluster refuses are written to the S3
     backup bucket under ``AmazonOpenSearchService-failed/`` (or
     ``elasticsearch-failed/``), with the error, as Firehose does. With
     ``S3BackupMode=AllDocuments`` every record is also written to S3.
"""
from __future__ import annotations

import base64
import gzip
import json
import os
import time
import uuid
from datetime import datetime

from localaws.core import s3 as s3uri
from .buffer import Batch, Record

S3_KINDS = ("ExtendedS3", "S3")
OPENSEARCH_KINDS = {"Amazonopensearchservice": "AmazonOpenSearchService-failed/",
                    "Elasticsearch": "elasticsearch-failed/"}
MAX_BULK_BYTES = 10 * 1024 * 1024
LAMBDA_CHUNK_BYTES = 4 * 1024 * 1024      # raw bytes per invocation: base64 must fit 6 MB


def destination_kind(destination: dict) -> str | None:
    for kind in (*S3_KINDS, *OPENSEARCH_KINDS):
        if kind in destination:
            return kind
    return None


class Deliverer:
    """Delivers batches of one stack; ``lookup(name)`` returns moto's DeliveryStream."""

    def __init__(self, ctx, lookup):
        self.ctx = ctx
        self.lookup = lookup

    # -- entry point -----------------------------------------------------------
    def __call__(self, batch: Batch) -> dict:
        stream = self.lookup(batch.stream)
        destination = stream.destinations[0]
        kind = destination_kind(destination)
        config = destination[kind]
        s3_conf = self._s3_config(kind, destination)
        started = time.monotonic()
        ok, failed = self._process(stream, config, s3_conf, batch.records)
        dropped = len(batch.records) - len(ok) - failed
        info = {"reason": batch.reason, "records": len(batch.records),
                "bytes": sum(len(r.data) for r in batch.records)}
        if kind in S3_KINDS:
            if ok:
                info["key"] = self._write_s3(stream, config, [r.data for r in ok])
            delivered = len(ok)
        else:
            delivered, doc_failures = self._index(stream, kind, config, s3_conf, ok, info)
            failed += doc_failures
        info.update(delivered=delivered, failed=failed, dropped=dropped,
                    latency_s=self.ctx.clock.monotonic() - min(r.arrival_mono for r in batch.records),
                    delivery_s=time.monotonic() - started)
        return info

    @staticmethod
    def _s3_config(kind: str, destination: dict) -> dict:
        if kind in S3_KINDS:
            return destination[kind]
        conf = destination[kind]
        return conf.get("S3DestinationDescription") or conf.get("S3Configuration") or {}

    # -- S3 --------------------------------------------------------------------
    def _write_s3(self, stream, s3_conf: dict, chunks: list[bytes], prefix: str | None = None) -> str:
        body = b"".join(chunks)
        suffix = ""
        if s3_conf.get("CompressionFormat") == "GZIP":
            from localaws.core.tables import compress
            body, suffix = compress(body, "gzip"), ".gz"
        now = self.ctx.clock.now()
        prefix = s3_conf.get("Prefix", "") if prefix is None else prefix
        key = (f"{prefix}{now:%Y/%m/%d/%H}/{stream.delivery_stream_name}-{stream.version_id}-"
               f"{now:%Y-%m-%d-%H-%M-%S}-{uuid.uuid4()}{suffix}")
        bucket = s3_conf["BucketARN"].split(":")[-1]
        self.ctx.s3.write(s3uri.join(bucket, key), body)
        return key

    def _write_errors(self, stream, s3_conf: dict, prefix: str, rows: list[dict]) -> None:
        lines = [json.dumps(row).encode() + b"\n" for row in rows]
        self._write_s3(stream, {**s3_conf, "CompressionFormat": "UNCOMPRESSED"}, lines, prefix)

    # -- transformation --------------------------------------------------------
    def _process(self, stream, config: dict, s3_conf: dict, records: list[Record]):
        """Run the processors; returns (records to deliver, number failed)."""
        processing = config.get("ProcessingConfiguration") or {}
        if not processing.get("Enabled"):
            return records, 0
        failed_rows = []
        for proc in processing.get("Processors", []):
            params = {p["ParameterName"]: p["ParameterValue"] for p in proc.get("Parameters", [])}
            kind = proc["Type"]
            if kind == "Decompression":
                records = [Record(r.record_id, gzip.decompress(r.data), r.arrival_ms, r.arrival_mono)
                           for r in records]
            elif kind == "CloudWatchLogProcessing":
                if params.get("DataMessageExtraction", "false").lower() == "true":
                    records = self._extract_messages(records)
            elif kind == "AppendDelimiterToRecord":
                delimiter = params.get("Delimiter", "\\n").encode().decode("unicode_escape").encode()
                records = [Record(r.record_id, r.data + delimiter, r.arrival_ms, r.arrival_mono)
                           for r in records]
            elif kind == "Lambda":
                records, failures = self._lambda(stream, params, records)
                failed_rows.extend(failures)
        if failed_rows:
            prefix = s3_conf.get("ErrorOutputPrefix") or "processing-failed/"
            self._write_errors(stream, s3_conf, prefix, failed_rows)
        return records, len(failed_rows)

    @staticmethod
    def _extract_messages(records: list[Record]) -> list[Record]:
        out = []
        for r in records:
            payload = json.loads(r.data)
            if payload.get("messageType") != "DATA_MESSAGE":
                continue                          # CONTROL_MESSAGE: dropped, as Firehose does
            for event in payload.get("logEvents", []):
                out.append(Record(f"{r.record_id}.{event.get('id', len(out))}",
                                  event["message"].encode(), r.arrival_ms, r.arrival_mono))
        return out

    def _lambda(self, stream, params: dict, records: list[Record]):
        """Invoke the transform function on chunks of the batch."""
        arn = params["LambdaArn"]
        retries = int(params.get("NumberOfRetries", 3))
        out, failures = [], []
        chunk: list[Record] = []
        size = 0
        chunks = []
        for r in records:
            if chunk and size + len(r.data) > LAMBDA_CHUNK_BYTES:
                chunks.append(chunk)
                chunk, size = [], 0
            chunk.append(r)
            size += len(r.data)
        if chunk:
            chunks.append(chunk)
        lam = self.ctx.client("lambda")
        for part in chunks:
            event = {"invocationId": str(uuid.uuid4()), "deliveryStreamArn": stream.delivery_stream_arn,
                     "region": self.ctx.region,
                     "records": [{"recordId": r.record_id, "approximateArrivalTimestamp": r.arrival_ms,
                                  "data": base64.b64encode(r.data).decode()} for r in part]}
            error = None
            for _attempt in range(retries + 1):
                resp = lam.invoke(FunctionName=arn, Payload=json.dumps(event).encode())
                body = resp["Payload"].read()
                if resp.get("FunctionError"):
                    error = ("Lambda.FunctionError", body.decode("utf-8", "replace")[:1000])
                    continue
                try:
                    results = {x["recordId"]: x for x in json.loads(body)["records"]}
                except (ValueError, KeyError, TypeError) as exc:
                    error = ("Lambda.InvalidResponse", f"The Lambda response is not valid: {exc}")
                    continue
                missing = [r.record_id for r in part if r.record_id not in results]
                if missing:
                    error = ("Lambda.MissingRecordId", f"record ids missing from the response: {missing[:3]}")
                    continue
                error = None
                break
            if error is not None:
                failures.extend(self._failure_row(r, *error, attempts=retries + 1, lambda_arn=arn)
                                for r in part)
                continue
            for r in part:
                res = results[r.record_id]
                if res.get("result") == "Ok":
                    out.append(Record(r.record_id, base64.b64decode(res.get("data", "")),
                                      r.arrival_ms, r.arrival_mono))
                elif res.get("result") == "ProcessingFailed":
                    failures.append(self._failure_row(r, "Lambda.ProcessingFailed",
                                                      "The record was marked ProcessingFailed by the function",
                                                      attempts=1, lambda_arn=arn))
                # "Dropped": intentionally discarded, counted as dropped
        return out, failures

    def _failure_row(self, r: Record, code: str, message: str, attempts: int = 1, **extra) -> dict:
        return {"attemptsMade": attempts, "arrivalTimestamp": r.arrival_ms, "errorCode": code,
                "errorMessage": message, "attemptEndingTimestamp": int(self.ctx.clock.time() * 1000),
                "rawData": base64.b64encode(r.data).decode(), **extra}

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

    def _index(self, stream, kind: str, config: dict, s3_conf: dict, records: list[Record], info: dict):
        """Bulk-index ``records``; refused documents go to the S3 backup prefix.

        A cluster that is down or overloaded (connection refused, 5xx, 429)
        raises, and the buffer retries the whole batch later, as Firehose does.
        """
        if config.get("S3BackupMode") == "AllDocuments" and records:
            self._write_s3(stream, s3_conf, [r.data for r in records])
        if not records:
            return 0, 0
        from opensearchpy import OpenSearch, TransportError
        from opensearchpy.helpers import streaming_bulk
        url, auth = self._opensearch_url(config)
        index = self.index_name(config, self.ctx.clock.now())
        info["index"] = index
        with_ids = (config.get("DocumentIdOptions") or {}).get("DefaultDocumentIdFormat",
                                                               "FIREHOSE_DEFAULT") == "FIREHOSE_DEFAULT"
        client = OpenSearch(hosts=[url], http_auth=auth, verify_certs=False, ssl_show_warn=False,
                            timeout=60)
        actions = ({"_index": index, **({"_id": r.record_id} if with_ids else {}),
                    "_source": r.data.rstrip(b"\n").replace(b"\n", b" ").decode("utf-8", "replace")}
                   for r in records)
        delivered, failures, seen = 0, [], 0
        try:
            for ok, item in streaming_bulk(client, actions, max_chunk_bytes=MAX_BULK_BYTES,
                                           raise_on_error=False, yield_ok=True):
                r, result = records[seen], next(iter(item.values()))
                seen += 1
                if ok:
                    delivered += 1
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
            self._write_errors(stream, s3_conf, s3_conf.get("Prefix", "") + OPENSEARCH_KINDS[kind],
                               failures)
        return delivered, len(failures)
