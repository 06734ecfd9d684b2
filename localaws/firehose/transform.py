"""Data transformation: the processors of ``ProcessingConfiguration``, in order.

- ``Decompression`` (gunzip; CloudWatch Logs subscriptions send gzip);
- ``CloudWatchLogProcessing`` with ``DataMessageExtraction``: one record per
  log event's message; a ``CONTROL_MESSAGE`` vanishes (counted as dropped).
  A record either cannot read goes to ``processing-failed`` with a local code
  (``Decompression.InvalidData``, ``CloudWatchLogProcessing.InvalidData``);
- ``Lambda``: your function transforms the records (below);
- ``AppendDelimiterToRecord``: adds ``\\n`` (or ``Delimiter``);
- ``MetadataExtraction``: dynamic partitioning keys from a JQ query (below).

**Lambda** [1][2]. Records wait in a buffer of their own, ``BufferSizeInMBs``
(0.2 to 3, default 1) or ``BufferIntervalInSeconds`` (0 to 900, default 60;
left out, a default never exceeds the destination's own hint: see
:func:`lambda_hints`), then Firehose invokes the function synchronously (through the platform's
Lambda runtime, ``lambda:Invoke``) with::

    {"invocationId": "...", "deliveryStreamArn": "...", "region": "...",
     ["sourceKinesisStreamArn": "...",]
     "records": [{"recordId": "...", "approximateArrivalTimestamp": 1700000000000,
                  "data": "<base64>" [, "kinesisRecordMetadata": {...}]}]}

and expects ``{"records": [{"recordId", "result", "data"}]}``: every recordId
it was sent, once, ``result`` ``Ok`` (``data`` is the new record, base64),
``Dropped`` (discarded on purpose) or ``ProcessingFailed``; ``metadata.partitionKeys``
feeds dynamic partitioning. A response that breaks this contract fails the
whole invocation, as does a function error: the invocation is retried
``NumberOfRetries`` times (default 3) and then every record of it goes to the
error output [3]. Error codes are those Firehose logs [4]:
``Lambda.FunctionError``, ``Lambda.JsonProcessingException`` (not JSON, no
``records``, a ``result`` outside the three, ``data`` that is not base64),
``Lambda.MissingRecordId``, ``Lambda.DuplicatedRecordId``, ``Lambda.ResourceNotFound``.
Failed records are written as ``{"attemptsMade", "arrivalTimestamp",
"errorCode", "errorMessage", "attemptEndingTimestamp", "rawData", "lambdaArn"}``
(``rawData``: the record as it was sent to the function) [3].

**MetadataExtraction** [5]: ``MetadataExtractionQuery`` is a JQ 1.6 object
such as ``{customer_id: .customer_id, device: .type.device}``; the stand-in
runs that subset only (keys as names or strings, values ``.field`` paths),
and answers anything else with HTTP 501 at CreateDeliveryStream. A record
that is not JSON, or whose key is missing, null or empty, fails dynamic
partitioning (``DynamicPartitioning.MetadataExtractionFailed``, error output
type ``partitioning-failed``: the code and type are as seen on AWS in public
code, [6]; the JSON shape of that row is the processing-failed one, minus
``lambdaArn``, which AWS's guide does not spell out).

[1] https://docs.aws.amazon.com/firehose/latest/dev/data-transformation.html
[2] https://docs.aws.amazon.com/firehose/latest/APIReference/API_ProcessorParameter.html
[3] https://docs.aws.amazon.com/firehose/latest/dev/data-transformation-failure-handling.html
[4] https://docs.aws.amazon.com/firehose/latest/dev/monitoring-with-cloudwatch-logs.html
    ("Lambda Invocation Errors")
[5] https://docs.aws.amazon.com/firehose/latest/dev/dynamic-partitioning.html
[6] aws/aws-cdk integ test ``integ.delivery-stream.dynamic-partitioning-lambda`` (expects
    ``<error prefix>/partitioning-failed/``); the MetadataExtractionFailed code in
    projects' tests against AWS (e.g. govuk-one-login event tests)
"""
from __future__ import annotations

import base64
import binascii
import gzip
import json
import re
import uuid
from dataclasses import dataclass, field

from .buffer import MiB, Record

LAMBDA_DEFAULTS = {"BufferSizeInMBs": 1.0, "BufferIntervalInSeconds": 60, "NumberOfRetries": 3}
LAMBDA_SIZE_RANGE = (0.2, 3.0)
LAMBDA_INTERVAL_RANGE = (0, 900)
MAX_INVOKE_BYTES = 6 * 1000 * 1000 - 64 * 1024     # Lambda's synchronous payload limit, with room
RESULTS = ("Ok", "Dropped", "ProcessingFailed")
JQ_PATH = r"\.[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*"
JQ_ENTRY = re.compile(rf'\s*(?:([A-Za-z_][A-Za-z0-9_]*)|"([^"\\]*)")\s*:\s*({JQ_PATH})\s*')


class ContractError(Exception):
    """The function's answer breaks the contract: fails the whole invocation."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


# ------------------------------------------------------------------ configuration
def processors(config: dict) -> list[tuple[str, dict]]:
    """``[(Type, {ParameterName: ParameterValue})]`` of an enabled ProcessingConfiguration."""
    processing = config.get("ProcessingConfiguration") or {}
    if not processing.get("Enabled"):
        return []
    return [(p["Type"], {x["ParameterName"]: x["ParameterValue"] for x in p.get("Parameters") or []})
            for p in processing.get("Processors") or []]


def lambda_params(config: dict) -> dict | None:
    """The Lambda processor's parameters with AWS's defaults, or None."""
    for kind, params in processors(config):
        if kind == "Lambda":
            return {**LAMBDA_DEFAULTS, **params}
    return None


def lambda_hints(config: dict, dest_size: int, dest_interval: float) -> tuple[int, float]:
    """The Lambda buffer's (size in bytes, interval in seconds).

    Given, ``BufferSizeInMBs`` and ``BufferIntervalInSeconds`` hold. Left out,
    the defaults (1 MB, 60 s) are capped by the destination's own hints: the
    guide's earlier wording, "buffers incoming data up to 3 MB or the buffering
    size you specified for the delivery stream, whichever is smaller" ([1] as
    kept in github.com/awsdocs/amazon-kinesis-data-firehose-developer-guide),
    read for the interval too (so a 1-second destination is not held 60 s).
    This reading is the stand-in's, not AWS's word.
    """
    given = next(params for kind, params in processors(config) if kind == "Lambda")
    size = float(given["BufferSizeInMBs"]) * MiB if "BufferSizeInMBs" in given else \
        min(LAMBDA_DEFAULTS["BufferSizeInMBs"] * MiB, dest_size)
    interval = float(given["BufferIntervalInSeconds"]) if "BufferIntervalInSeconds" in given else \
        min(LAMBDA_DEFAULTS["BufferIntervalInSeconds"], dest_interval)
    return int(size), interval


def parse_query(query: str) -> dict[str, list[str]]:
    """``{key: [path, parts]}`` of a ``MetadataExtractionQuery``; ValueError if outside the subset."""
    text = query.strip()
    if not (text.startswith("{") and text.endswith("}")):
        raise ValueError(query)
    keys = {}
    for entry in filter(str.strip, text[1:-1].split(",")):
        match = JQ_ENTRY.fullmatch(entry)
        if not match:
            raise ValueError(entry)
        keys[match.group(1) or match.group(2)] = match.group(3)[1:].split(".")
    if not keys:
        raise ValueError(query)
    return keys


def check_lambda(params: dict) -> str | None:
    """What is wrong with a Lambda processor's parameters, or None."""
    if not params.get("LambdaArn"):
        return "LambdaArn is required for the Lambda processor."
    try:
        size, interval = float(params["BufferSizeInMBs"]), float(params["BufferIntervalInSeconds"])
        retries = int(params["NumberOfRetries"])
    except ValueError as exc:
        return f"Invalid Lambda processor parameter: {exc}"
    low, high = LAMBDA_SIZE_RANGE
    if not low <= size <= high:
        return f"BufferSizeInMBs for the Lambda processor must be between {low} and {high} (got {size:g})."
    low, high = LAMBDA_INTERVAL_RANGE
    if not low <= interval <= high:
        return (f"BufferIntervalInSeconds for the Lambda processor must be between {low} and {high} "
                f"(got {interval:g}).")
    if retries < 0:
        return f"NumberOfRetries must not be negative (got {retries})."
    return None


# ------------------------------------------------------------------ running them
@dataclass
class Result:
    records: list[Record] = field(default_factory=list)
    failures: list[tuple[str, Record, str, str, dict]] = field(default_factory=list)
    #            (error output type, record, errorCode, errorMessage, extra fields of the row)
    dropped: list[Record] = field(default_factory=list)
    splits: dict[str, int] = field(default_factory=dict)
    invocations: int = 0


class Transformer:
    """Runs a stream's processors on a batch; ``invoke(arn, payload) -> (error, body)`` calls Lambda."""

    def __init__(self, invoke, region: str):
        self.invoke = invoke
        self.region = region

    def run(self, stream, config: dict, records: list[Record], source_arn: str | None = None) -> Result:
        result = Result()
        for kind, params in processors(config):
            if kind == "Decompression":
                records = self._decompress(records, result)
            elif kind == "CloudWatchLogProcessing":
                if params.get("DataMessageExtraction", "false").lower() == "true":
                    records = self._extract_messages(records, result)
            elif kind == "AppendDelimiterToRecord":
                delimiter = params.get("Delimiter", "\\n").encode().decode("unicode_escape").encode()
                records = [r.derive(r.data + delimiter) for r in records]
            elif kind == "Lambda":
                records = self._lambda(stream, {**LAMBDA_DEFAULTS, **params}, records, result, source_arn)
            elif kind == "MetadataExtraction":
                records = self._extract_keys(parse_query(params["MetadataExtractionQuery"]), records, result)
        result.records = records
        return result

    # -- the simple processors -------------------------------------------------
    @staticmethod
    def _decompress(records: list[Record], result: Result) -> list[Record]:
        out = []
        for r in records:
            try:
                out.append(r.derive(gzip.decompress(r.data)))
            except (OSError, EOFError) as exc:
                result.failures.append(("processing-failed", r, "Decompression.InvalidData",
                                        f"The record could not be decompressed: {exc}", {}))
        return out

    @staticmethod
    def _extract_messages(records: list[Record], result: Result) -> list[Record]:
        out = []
        for r in records:
            try:
                payload = json.loads(r.data)
                events = payload.get("logEvents", []) if payload.get("messageType") == "DATA_MESSAGE" else []
            except (ValueError, AttributeError):
                result.failures.append(("processing-failed", r, "CloudWatchLogProcessing.InvalidData",
                                        "The record is not a CloudWatch Logs subscription message.", {}))
                continue
            # a CONTROL_MESSAGE becomes no record (dropped), a DATA_MESSAGE one per log event
            result.splits[r.origin] = result.splits.get(r.origin, 1) - 1 + len(events)
            out.extend(r.derive(e["message"].encode(), f"{r.record_id}.{e.get('id', i)}")
                       for i, e in enumerate(events))
        return out

    @staticmethod
    def _extract_keys(query: dict[str, list[str]], records: list[Record], result: Result) -> list[Record]:
        out = []
        for r in records:
            try:
                doc = json.loads(r.data)
                keys = {}
                for key, path in query.items():
                    value = doc
                    for part in path:
                        value = value.get(part) if isinstance(value, dict) else None
                    if value is None or value == "":
                        raise KeyError(f"partitionKeys values must not be null or empty (key '{key}')")
                    keys[key] = value if isinstance(value, str) else json.dumps(value)
            except (ValueError, KeyError) as exc:
                message = exc.args[0] if isinstance(exc, KeyError) else f"The record is not valid JSON: {exc}"
                result.failures.append(("partitioning-failed", r, "DynamicPartitioning.MetadataExtractionFailed",
                                        message, {}))
                continue
            r.keys.update({f"partitionKeyFromQuery:{k}": v for k, v in keys.items()})
            out.append(r)
        return out

    # -- Lambda ------------------------------------------------------------------
    def _lambda(self, stream, params: dict, records: list[Record], result: Result,
                source_arn: str | None) -> list[Record]:
        arn, attempts = params["LambdaArn"], int(params["NumberOfRetries"]) + 1
        out = []
        for part in self._chunks(records):
            event = {"invocationId": str(uuid.uuid4()), "deliveryStreamArn": stream.delivery_stream_arn,
                     "region": self.region, "records": [self._event_record(r) for r in part]}
            if source_arn:
                event["sourceKinesisStreamArn"] = source_arn
            answer, error = None, None
            for _ in range(attempts):
                result.invocations += 1
                try:
                    answer = self._answer(part, *self.invoke(arn, json.dumps(event).encode()))
                    break
                except ContractError as exc:
                    error = exc
            if answer is None:
                result.failures.extend(("processing-failed", r, error.code, str(error),
                                        {"attemptsMade": attempts, "lambdaArn": arn}) for r in part)
                continue
            for r in part:
                item = answer[r.record_id]
                if item["result"] == "Ok":
                    new = r.derive(base64.b64decode(item.get("data") or ""))
                    keys = (item.get("metadata") or {}).get("partitionKeys") or {}
                    new.keys.update({f"partitionKeyFromLambda:{k}": str(v) for k, v in keys.items()
                                     if v is not None})
                    out.append(new)
                elif item["result"] == "Dropped":
                    result.dropped.append(r)
                else:
                    result.failures.append(("processing-failed", r, "Lambda.ProcessingFailed",
                                            "The record was marked ProcessingFailed by the Lambda function.",
                                            {"attemptsMade": 1, "lambdaArn": arn}))
        return out

    @staticmethod
    def _event_record(r: Record) -> dict:
        item = {"recordId": r.record_id, "approximateArrivalTimestamp": r.arrival_ms,
                "data": base64.b64encode(r.data).decode()}
        if r.kinesis:
            item["kinesisRecordMetadata"] = r.kinesis
        return item

    @staticmethod
    def _chunks(records: list[Record]) -> list[list[Record]]:
        """Split a batch so that each event fits Lambda's 6 MB synchronous payload."""
        chunks, chunk, size = [], [], 200
        for r in records:
            need = 4 * ((len(r.data) + 2) // 3) + len(r.record_id) + 250
            if chunk and size + need > MAX_INVOKE_BYTES:
                chunks.append(chunk)
                chunk, size = [], 200
            chunk.append(r)
            size += need
        return chunks + [chunk] if chunk else chunks

    @staticmethod
    def _answer(part: list[Record], function_error: str | None, body: bytes) -> dict[str, dict]:
        """The response items by recordId, or ContractError."""
        if function_error is not None:
            raise ContractError(*function_error.split(" ", 1)) if function_error.startswith("Lambda.") \
                else ContractError("Lambda.FunctionError", function_error)
        try:
            items = json.loads(body)["records"]
            if not isinstance(items, list):
                raise TypeError("'records' is not a list")
        except (ValueError, KeyError, TypeError) as exc:
            raise ContractError("Lambda.JsonProcessingException",
                                "There was an error parsing returned records from the Lambda function. Ensure "
                                f"that the returned records follow the status model required by Firehose. ({exc})"
                                ) from None
        answer, sent = {}, {r.record_id for r in part}
        for item in items:
            rid = item.get("recordId") if isinstance(item, dict) else None
            problem = None
            if not isinstance(rid, str) or rid not in sent:
                problem = f"unknown recordId {rid!r}"
            elif item.get("result") not in RESULTS:
                problem = f"result {item.get('result')!r} of record {rid} is not one of {', '.join(RESULTS)}"
            elif item["result"] == "Ok":
                try:
                    base64.b64decode(item.get("data") or "", validate=True)
                except (binascii.Error, ValueError, TypeError):
                    problem = f"the data of record {rid} is not base64"
            if problem:
                raise ContractError("Lambda.JsonProcessingException",
                                    "There was an error parsing returned records from the Lambda function. "
                                    f"Ensure that the returned records follow the status model required by "
                                    f"Firehose. ({problem})")
            if rid in answer:
                raise ContractError("Lambda.DuplicatedRecordId",
                                    "Multiple records were returned with the same record ID. Ensure that the "
                                    f"Lambda function returns unique record IDs for each record. ({rid})")
            answer[rid] = item
        missing = sent - answer.keys()
        if missing:
            raise ContractError("Lambda.MissingRecordId",
                                "One or more record IDs were not returned. Ensure that the Lambda function "
                                f"returns all received record IDs. ({len(missing)} missing)")
        return answer
