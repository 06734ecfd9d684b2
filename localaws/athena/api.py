"""Athena's query API, executed for real.

moto keeps Athena's resources (work groups, named queries, data catalogs)
but runs no SQL: every query "succeeds" at once with no rows. This data
plane answers the query-execution operations with a real engine instead
(``@operation``, see ``localaws/core/plane.py``):

- ``StartQueryExecution`` queues the query and returns its id at once;
  the query runs in the background: ``QUEUED`` -> ``RUNNING`` ->
  ``SUCCEEDED`` | ``FAILED`` | ``CANCELLED``, as on Athena, so your code
  polls ``GetQueryExecution``.
- The work group decides the result location (and, with
  ``EnforceWorkGroupConfiguration``, overrides the request's) and may set
  ``BytesScannedCutoffPerQuery``: a query that reads more is cancelled.
- Results go to ``<OutputLocation>/<QueryExecutionId>.csv`` (plus
  ``.csv.metadata``), as Athena writes them, and ``GetQueryResults`` pages
  through them with ``NextToken``.
- ``Statistics.DataScannedInBytes`` is what the endpoint counted leaving
  S3 for this query (``localaws/core/s3.py``), never a file size.
"""
from __future__ import annotations

import base64
import csv
import io
import threading
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from localaws.core import Plane, local_hook, operation
from localaws.core.waiting import wait_until
from .errors import INTERNAL, SYSTEM, InvalidRequestException, QueryCancelled, QueryFailed

PRECISION = {"varchar": 2147483647, "bigint": 19, "integer": 10, "smallint": 5, "tinyint": 3,
             "double": 17, "real": 7, "boolean": 0, "date": 0, "timestamp": 3}
ENGINE = {"SelectedEngineVersion": "AUTO", "EffectiveEngineVersion": "Athena engine version 3"}


@dataclass
class Execution:
    id: str
    query: str
    database: str
    catalog: str
    work_group: str
    output_location: str
    parameters: list[str]
    cutoff: int | None
    state: str = "QUEUED"
    reason: str | None = None
    error: dict | None = None
    submitted: float = field(default_factory=time.time)
    started: float | None = None
    completed: float | None = None
    scanned: int = 0
    files_opened: int = 0
    statement_type: str = "DML"
    substatement: str = ""
    result: object = None
    manifest: str | None = None
    connection: object = None
    cancel_reason: str | None = None
    future: Future | None = None

    def cancel(self, reason: str) -> None:
        """Ask a running query to stop (its DuckDB connection is interrupted)."""
        self.cancel_reason = self.cancel_reason or reason
        con = self.connection
        if con is not None:
            try:
                con.interrupt()
            except Exception:
                pass


class AthenaPlane(Plane):
    """Queries on DuckDB over the stack's S3, tables in its Glue catalog."""

    name = "athena"
    services = ("athena",)

    def __init__(self, ctx):
        super().__init__(ctx)
        self.executions: dict[str, Execution] = {}
        self.tokens: dict[str, str] = {}
        self.lock = threading.Lock()
        self.pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="athena-query")

    def stop(self):
        for ex in list(self.executions.values()):
            if ex.state in ("QUEUED", "RUNNING"):
                ex.cancel("The local stack stopped")
        self.pool.shutdown(wait=True, cancel_futures=True)

    # -- teaching hooks -------------------------------------------------------
    @local_hook("On AWS, Statistics.DataScannedInBytes (GetQueryExecution) is the billed figure; "
                "the number of S3 objects opened is not reported.")
    def scan_stats(self, query_execution_id: str) -> dict:
        """What a query read: bytes (as billed) and the number of S3 objects opened."""
        ex = self._get(query_execution_id)
        return {"bytes_scanned": ex.scanned, "files_opened": ex.files_opened}

    @local_hook("On AWS, poll GetQueryExecution until Status.State is SUCCEEDED, FAILED or CANCELLED.")
    def wait(self, query_execution_id: str, timeout: float = 300) -> str:
        """Block until the query ends; returns its final state."""
        ex = self._get(query_execution_id)
        if ex.future is not None:
            wait_until(future=ex.future, timeout=timeout)
        return ex.state

    # -- StartQueryExecution -------------------------------------------------
    @operation("StartQueryExecution")
    def start_query_execution(self, req):
        p = req.params
        token = p.get("ClientRequestToken")
        if token and token in self.tokens:
            return {"QueryExecutionId": self.tokens[token]}
        work_group = p.get("WorkGroup") or "primary"
        config = self._work_group_config(work_group)
        location = (p.get("ResultConfiguration") or {}).get("OutputLocation")
        wg_location = (config.get("ResultConfiguration") or {}).get("OutputLocation")
        if config.get("EnforceWorkGroupConfiguration") or not location:
            location = wg_location or location
        if not location:
            raise InvalidRequestException("No output location provided. An output location is required either "
                                  "through the Workgroup result configuration setting or as an API input.")
        context = p.get("QueryExecutionContext") or {}
        ex = Execution(id=str(uuid.uuid4()), query=p["QueryString"], database=context.get("Database", "default"),
                       catalog=context.get("Catalog", "AwsDataCatalog"), work_group=work_group,
                       output_location=location if location.endswith("/") else location + "/",
                       parameters=list(p.get("ExecutionParameters") or []),
                       cutoff=config.get("BytesScannedCutoffPerQuery"))
        ex.statement_type = _statement_type(ex.query)
        with self.lock:
            self.executions[ex.id] = ex
            if token:
                self.tokens[token] = ex.id
        ex.future = self.pool.submit(self._run, ex)
        return {"QueryExecutionId": ex.id}

    def _work_group_config(self, name: str) -> dict:
        athena = self.ctx.client("athena")
        try:
            wg = athena.get_work_group(WorkGroup=name).get("WorkGroup")
        except athena.exceptions.InvalidRequestException:
            wg = None
        if not wg:
            raise InvalidRequestException(f"WorkGroup {name} is not found.")
        if wg.get("State") == "DISABLED":
            raise InvalidRequestException(f"WorkGroup {name} is disabled.")
        return wg.get("Configuration") or {}

    # -- running -----------------------------------------------------------------
    def _run(self, ex: Execution) -> None:
        from .engine import Statement
        if ex.cancel_reason:
            return self._finish(ex, "CANCELLED", ex.cancel_reason)
        ex.state, ex.started = "RUNNING", time.time()
        key = f"ATHENAQ{ex.id.replace('-', '')[:16].upper()}"   # the query's own key: its S3 reads are metered
        try:
            self._check_output_bucket(ex.output_location)
            sql = _bind(ex.query, ex.parameters)
            limit_reason = (f"Query cancelled: the query scanned more than the work group's "
                            f"limit of {ex.cutoff} bytes per query (BytesScannedCutoffPerQuery)")
            with self.ctx.s3.meter.track(key, limit=ex.cutoff,
                                         on_exceed=lambda: ex.cancel(limit_reason)) as usage:
                statement = Statement(sql, ex.database, client=self.ctx.client, s3=self.ctx.s3, access_key=key,
                                      query_id=ex.id, output_location=ex.output_location,
                                      scratch=self.ctx.work_dir,
                                      on_connection=lambda con: setattr(ex, "connection", con),
                                      cancelled=lambda: ex.cancel_reason)
                try:
                    result = statement.run()
                finally:
                    ex.connection = None
                    ex.scanned, ex.files_opened = usage.bytes_read, statement.files_opened
            if ex.cancel_reason:
                raise QueryCancelled(ex.cancel_reason)
            ex.result, ex.statement_type, ex.substatement = result, result.statement_type, result.substatement
            self._write_results(ex)
            self._finish(ex, "SUCCEEDED")
        except QueryCancelled as exc:
            self._finish(ex, "CANCELLED", ex.cancel_reason or exc.reason)
        except QueryFailed as exc:
            if ex.cancel_reason:
                return self._finish(ex, "CANCELLED", ex.cancel_reason)
            self._finish(ex, "FAILED", exc.reason, {"ErrorCategory": exc.category, "ErrorType": exc.error_type,
                                                    "Retryable": False, "ErrorMessage": exc.reason})
        except Exception as exc:   # a bug in the stand-in: FAILED, SYSTEM, with the cause named
            reason = f"INTERNAL_ERROR: the local engine failed: {type(exc).__name__}: {exc}"
            self._finish(ex, "FAILED", reason, {"ErrorCategory": SYSTEM, "ErrorType": INTERNAL,
                                                "Retryable": False, "ErrorMessage": reason})

    def _check_output_bucket(self, location: str) -> None:
        bucket = location[5:].split("/", 1)[0] if location.startswith("s3://") else ""
        try:
            exists = bool(bucket) and self.ctx.s3.bucket_exists(bucket)
        except Exception:          # a name S3 refuses (botocore checks it before sending)
            exists = False
        if not exists:
            raise QueryFailed("HIVE_FILESYSTEM_ERROR", f"Unable to verify/create output bucket {bucket}")

    def _finish(self, ex: Execution, state: str, reason: str | None = None, error: dict | None = None):
        ex.reason, ex.error, ex.completed = reason, error, time.time()
        ex.started = ex.started or ex.completed
        ex.state = state

    def _write_results(self, ex: Execution) -> None:
        """``<id>.csv`` (or ``.txt`` for DDL) + ``.metadata``, and the manifest of written files."""
        result, s3, out = ex.result, self.ctx.s3, ex.output_location
        if ex.statement_type == "DDL":
            body = "".join((row[0] or "") + "\n" for row in result.rows)
            s3.write(f"{out}{ex.id}.txt", body.encode())
        else:
            buf = io.StringIO()
            writer = csv.writer(buf, quoting=csv.QUOTE_ALL, lineterminator="\n")
            if result.columns:
                writer.writerow([c for c, _ in result.columns])
            for row in result.rows:
                buf.write(",".join("" if v is None else '"' + v.replace('"', '""') + '"' for v in row) + "\n")
            s3.write(f"{out}{ex.id}.csv", buf.getvalue().encode())
            meta = "\n".join(f"{c}\t{t}" for c, t in result.columns)
            s3.write(f"{out}{ex.id}.csv.metadata", meta.encode())
        if result.written or result.substatement in ("CREATE_TABLE_AS_SELECT", "INSERT", "UNLOAD"):
            body = "".join(u + "\n" for u in result.written)
            ex.manifest = s3.write(f"{out}{ex.id}-manifest.csv", body.encode())

    # -- reading state -------------------------------------------------------
    def _get(self, query_id) -> Execution:
        ex = self.executions.get(query_id or "")
        if ex is None:
            raise InvalidRequestException(f"QueryExecution {query_id} was not found")
        return ex

    def _describe(self, ex: Execution) -> dict:
        status = {"State": ex.state, "SubmissionDateTime": ex.submitted}
        if ex.reason:
            status["StateChangeReason"] = ex.reason
        if ex.completed:
            status["CompletionDateTime"] = ex.completed
        if ex.error:
            status["AthenaError"] = ex.error
        end = ex.completed or time.time()
        engine_ms = int(((ex.completed or end) - (ex.started or end)) * 1000)
        queue_ms = int(((ex.started or end) - ex.submitted) * 1000)
        stats = {"EngineExecutionTimeInMillis": engine_ms, "DataScannedInBytes": ex.scanned,
                 "TotalExecutionTimeInMillis": int((end - ex.submitted) * 1000),
                 "QueryQueueTimeInMillis": queue_ms, "ServicePreProcessingTimeInMillis": 0,
                 "QueryPlanningTimeInMillis": 0, "ServiceProcessingTimeInMillis": 0,
                 "ResultReuseInformation": {"ReusedPreviousResult": False}}
        if ex.manifest:
            stats["DataManifestLocation"] = ex.manifest
        suffix = ".txt" if ex.statement_type == "DDL" else ".csv"
        out = {"QueryExecutionId": ex.id, "Query": ex.query, "StatementType": ex.statement_type,
               "ResultConfiguration": {"OutputLocation": ex.output_location + ex.id + suffix},
               "QueryExecutionContext": {"Database": ex.database, "Catalog": ex.catalog},
               "Status": status, "Statistics": stats, "WorkGroup": ex.work_group, "EngineVersion": ENGINE}
        if ex.parameters:
            out["ExecutionParameters"] = ex.parameters
        if ex.substatement:
            out["SubstatementType"] = ex.substatement
        return out

    @operation("GetQueryExecution")
    def get_query_execution(self, req):
        return {"QueryExecution": self._describe(self._get(req.params.get("QueryExecutionId")))}

    @operation("BatchGetQueryExecution")
    def batch_get_query_execution(self, req):
        found, missing = [], []
        for qid in req.params.get("QueryExecutionIds", []):
            if qid in self.executions:
                found.append(self._describe(self.executions[qid]))
            else:
                missing.append({"QueryExecutionId": qid, "ErrorCode": "INVALID_INPUT",
                                "ErrorMessage": f"QueryExecution {qid} was not found"})
        return {"QueryExecutions": found, "UnprocessedQueryExecutionIds": missing}

    @operation("ListQueryExecutions")
    def list_query_executions(self, req):
        wg = req.params.get("WorkGroup") or "primary"
        ids = [e.id for e in sorted(self.executions.values(), key=lambda e: e.submitted, reverse=True)
               if e.work_group == wg]
        start = _offset(req.params.get("NextToken"))
        size = int(req.params.get("MaxResults") or 50)
        out = {"QueryExecutionIds": ids[start:start + size]}
        if start + size < len(ids):
            out["NextToken"] = _token(start + size)
        return out

    @operation("StopQueryExecution")
    def stop_query_execution(self, req):
        ex = self._get(req.params.get("QueryExecutionId"))
        if ex.state in ("QUEUED", "RUNNING"):
            ex.cancel("Query was cancelled by user")
        return {}

    @operation("GetQueryResults")
    def get_query_results(self, req):
        ex = self._get(req.params.get("QueryExecutionId"))
        if ex.state in ("QUEUED", "RUNNING"):
            raise InvalidRequestException(f"Query has not yet finished. Current state: {ex.state}")
        if ex.state != "SUCCEEDED":
            raise InvalidRequestException(f"Query did not finish successfully. Final query state: {ex.state}"
                                  + (f"\n{ex.reason}" if ex.reason else ""))
        result = ex.result
        rows = []
        header = ex.statement_type != "DDL" and result.columns
        if header:
            rows.append([c for c, _ in result.columns])
        rows.extend(result.rows)
        size = int(req.params.get("MaxResults") or 1000)
        if not 1 <= size <= 1000:
            raise InvalidRequestException("MaxResults must be between 1 and 1000")
        start = _offset(req.params.get("NextToken"))
        page = rows[start:start + size]
        out = {"ResultSet": {"Rows": [{"Data": [{} if v is None else {"VarCharValue": v} for v in row]}
                                      for row in page],
                             "ResultSetMetadata": {"ColumnInfo": [_column_info(c, t) for c, t in result.columns]}},
               "UpdateCount": int(result.rows[0][0]) if result.substatement in (
                   "CREATE_TABLE_AS_SELECT", "INSERT") and result.rows else 0}
        if start + size < len(rows):
            out["NextToken"] = _token(start + size)
        return out

    @operation("GetQueryRuntimeStatistics")
    def get_query_runtime_statistics(self, req):
        ex = self._get(req.params.get("QueryExecutionId"))
        d = self._describe(ex)["Statistics"]
        rows = len(ex.result.rows) if ex.result is not None else 0
        return {"QueryRuntimeStatistics": {
            "Timeline": {k: d[k] for k in ("QueryQueueTimeInMillis", "QueryPlanningTimeInMillis",
                                           "EngineExecutionTimeInMillis", "ServiceProcessingTimeInMillis",
                                           "TotalExecutionTimeInMillis")},
            "Rows": {"InputBytes": ex.scanned, "OutputRows": rows}}}


def _column_info(name: str, typ: str) -> dict:
    return {"CatalogName": "hive", "SchemaName": "", "TableName": "", "Name": name, "Label": name,
            "Type": typ, "Precision": PRECISION.get(typ, 0), "Scale": 0, "Nullable": "UNKNOWN",
            "CaseSensitive": typ == "varchar"}


def _token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"localaws:{offset}".encode()).decode()


def _offset(token: str | None) -> int:
    if not token:
        return 0
    try:
        kind, _, number = base64.urlsafe_b64decode(token.encode()).decode().partition(":")
        if kind != "localaws":
            raise ValueError(token)
        return int(number)
    except Exception:
        raise InvalidRequestException("The NextToken is not valid (it must come from a previous response)") from None


def _statement_type(sql: str) -> str:
    first = sql.strip().split(None, 1)[0].upper() if sql.strip() else ""
    if first in ("CREATE", "DROP", "ALTER", "SHOW", "DESCRIBE", "MSCK"):
        rest = sql.upper()
        return "DML" if first == "CREATE" and " AS " in rest and " TABLE " in rest and "SELECT" in rest else "DDL"
    if first in ("EXPLAIN",):
        return "UTILITY"
    return "DML"


def _bind(sql: str, parameters: list[str]) -> str:
    """Put ExecutionParameters in place of the ``?`` placeholders, in order."""
    if not parameters:
        return sql
    import sqlglot
    from sqlglot import exp
    try:
        tree = sqlglot.parse_one(sql, read="athena")
    except sqlglot.errors.ParseError:
        return sql
    holes = list(tree.find_all(exp.Placeholder))
    if len(holes) != len(parameters):
        raise QueryFailed("INVALID_PARAMETER_USAGE", f"Incorrect number of parameters: expected "
                          f"{len(holes)} but found {len(parameters)}")
    for hole, value in zip(holes, parameters):
        hole.replace(sqlglot.parse_one(value, read="athena"))
    return tree.sql(dialect="athena")
