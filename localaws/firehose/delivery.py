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
     one JSON document. Documents the cluster refuses are written to the S3
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
from datetime import datetime, timezone

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
                    latency_s=time.monotonic() - min(r.arrival_mono for r in batch.records),
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
            body, suffix = gzip.compress(body), ".gz"
        now = datetime.now(timezone.utc)
        prefix = s3_conf.get("Prefix", "") if prefix is None else prefix
        key = (f"{prefix}{now:%Y/%m/%d/%H}/{stream.delivery_stream_name}-{stream.version_id}-"
               f"{now:%Y-%m-%d-%H-%M-%S}-{uuid.uuid4()}{suffix}")
        bucket = s3_conf["BucketARN"].split(":")[-1]
        self.ctx.client("s3").put_object(Bucket=bucket, Key=key, Body=body)
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

    @staticmethod
    def _failure_row(r: Record, code: str, message: str, attempts: int = 1, **extra) -> dict:
        return {"attemptsMade": attempts, "arrivalTimestamp": r.arrival_ms, "errorCode": code,
                "errorMessage": message, "attemptEndingTimestamp": int(time.time() * 1000),
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
        """Bulk-index ``records``; refused documents go to the S3 backup prefix."""
        if config.get("S3BackupMode") == "AllDocuments" and records:
            self._write_s3(stream, s3_conf, [r.data for r in records])
        if not records:
            return 0, 0
        import requests
        url, auth = self._opensearch_url(config)
        index = self.index_name(config, datetime.now(timezone.utc))
        info["index"] = index
        with_ids = (config.get("DocumentIdOptions") or {}).get("DefaultDocumentIdFormat",
                                                               "FIREHOSE_DEFAULT") == "FIREHOSE_DEFAULT"
        delivered, failures = 0, []
        for part in _chunks(records, MAX_BULK_BYTES):
            lines = []
            for r in part:
                action = {"_index": index, **({"_id": r.record_id} if with_ids else {})}
                lines.append(json.dumps({"index": action}).encode())
                lines.append(r.data.rstrip(b"\n").replace(b"\n", b" "))
            body = b"\n".join(lines) + b"\n"
            resp = requests.post(f"{url}/_bulk", data=body, auth=auth, verify=False, timeout=60,
                                 headers={"Content-Type": "application/x-ndjson"})
            if resp.status_code >= 500 or resp.status_code == 429:
                raise ConnectionError(f"OpenSearch answered {resp.status_code} to _bulk")
            if resp.status_code >= 400:               # the whole request was refused
                for r in part:
                    failures.append(self._failure_row(r, str(resp.status_code), resp.text[:1000],
                                                      esDocumentId=r.record_id, esIndexName=index))
                continue
            for r, item in zip(part, resp.json()["items"]):
                result = next(iter(item.values()))
                if "error" in result:
                    failures.append(self._failure_row(
                        r, str(result.get("status", 400)), json.dumps(result["error"]),
                        subsequenceNumber=0, esDocumentId=result.get("_id", ""),
                        esIndexName=index, esTypeName=""))
                else:
                    delivered += 1
        if failures:
            self._write_errors(stream, s3_conf, s3_conf.get("Prefix", "") + OPENSEARCH_KINDS[kind],
                               failures)
        return delivered, len(failures)


def _chunks(records: list[Record], limit: int):
    part, size = [], 0
    for r in records:
        if part and size + len(r.data) > limit:
            yield part
            part, size = [], 0
        part.append(r)
        size += len(r.data)
    if part:
        yield part
