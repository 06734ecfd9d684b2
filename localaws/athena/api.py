"""Athena's query API, executed for real.

moto keeps Athena's resources (work groups, named queries, data catalogs)
but runs no SQL: every query "succeeds" at once with no rows. This data
plane answers the query-execution operations with a real engine instead
(``@operation``, see ``localaws/core/plane.py``):

- ``StartQueryExecution`` queues the query and returns its id at once;
  the query runs in the background: ``QUEUED`` -> ``RUNNING`` ->
  ``SUCCEEDED`` | ``FAILED`` | ``CANCELLED``, as on Athena, so your code
  polls ``GetQueryExecution``. ``StopQueryExecution`` cancels it at any
  stage, while its result is still being written too.
- The work group decides the result location (and, with
  ``EnforceWorkGroupConfiguration``, overrides the request's) and may set
  ``BytesScannedCutoffPerQuery``: a query that reads more is cancelled.
- Results stream to ``<OutputLocation>/<QueryExecutionId>.csv`` (plus
  ``.csv.metadata``) as Athena writes them, and ``GetQueryResults`` pages
  through that file with ``NextToken`` (``results.py``). CTAS and INSERT
  INTO return no rows: the count is ``UpdateCount``.
- ``ResultReuseConfiguration``: the same query text, on the same catalog,
  database, work group and result location, within ``MaxAgeInMinutes``,
  reuses the previous result instead of running again
  (``ResultReuseInformation.ReusedPreviousResult``), unless a statement
  run through Athena has changed a table since.
- ``Statistics.DataScannedInBytes`` is what the endpoint counted leaving
  S3 for this query (``localaws/core/s3.py``), never a file size; the
  timings are the measured ones.
- The catalog API (``ListDataCatalogs``, ``ListDatabases``,
  ``GetTableMetadata``...) reads the Glue Data Catalog (``metadata.py``).
- Lake Formation: each execution records who started it (the ARN of the
  key that signed StartQueryExecution) and its statement runs as that
  principal: governed tables show it only its granted columns and rows
  (``engine.py``), and the catalog API reads Glue as the caller.
"""
from __future__ import annotations

import math
import re
import threading
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from localaws.core import Plane, local_hook, operation
from localaws.core.s3 import S3
from localaws.core.waiting import wait_until
from .errors import INTERNAL, SYSTEM, InvalidRequestException, QueryCancelled, QueryFailed
from .metadata import Catalogs, offset, token

ENGINE = {"SelectedEngineVersion": "AUTO", "EffectiveEngineVersion": "Athena engine version 3"}
MAX_REUSE_MINUTES = 7 * 24 * 60     # ResultReuseByAgeConfiguration.MaxAgeInMinutes
# Statements that change no table: a result of the same query stays reusable after them.
READ_ONLY = ("SELECT", "UNLOAD", "SHOW", "DESCRIBE", "EXPLAIN")


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
    reuse_config: dict | None = None     # ResultReuseConfiguration as given
    reused: "Execution | None" = None    # the execution whose result this one reuses
    state: str = "QUEUED"
    reason: str | None = None
    error: dict | None = None
    submitted: float = field(default_factory=time.time)
    marks: dict = field(default_factory=lambda: {"submitted": time.monotonic()})
    scanned: int = 0
    files_opened: int = 0
    get_requests: int = 0                # GetObject requests the endpoint served to the query
    statement_type: str = "DML"
    substatement: str = ""
    pages: object = None                 # results.ResultPages, once SUCCEEDED
    update_count: int | None = None
    manifest: str | None = None
    catalog_version: int = 0             # the plane's catalog version the query ran against
    principal: str | None = None         # the ARN of who started it (Lake Formation decides with it)
    governed: bool = False               # it read a table Lake Formation restricts for that principal
    connection: object = None
    cancel_reason: str | None = None
    future: Future | None = None

    def mark(self, moment: str) -> None:
        """Note when a stage ended (monotonic clock): queued, started, planned, executed, completed."""
        self.marks[moment] = time.monotonic()

    def cancel(self, reason: str) -> None:
        """Ask a running query to stop: its DuckDB cursor is interrupted (no other query's).

        DuckDB forgets an interrupt that arrives between two statements of a cursor, so
        the cursor is interrupted once more a moment later, when the statement that was
        about to start runs (the engine checks ``cancel_reason`` before it starts one).
        """
        self.cancel_reason = self.cancel_reason or reason
        self.interrupt()
        again = threading.Timer(0.1, self.interrupt)
        again.daemon = True
        again.start()

    def interrupt(self) -> None:
        con = self.connection
        if con is not None:
            try:
                con.interrupt()
            except Exception:      # the cursor is closed: the query has ended
                pass

    def check(self) -> None:
        """Raise if the query was cancelled (called between batches of its result)."""
        if self.cancel_reason:
            raise QueryCancelled(self.cancel_reason)

    @property
    def reuse_minutes(self) -> int | None:
        config = (self.reuse_config or {}).get("ResultReuseByAgeConfiguration") or {}
        return int(config.get("MaxAgeInMinutes", 60)) if config.get("Enabled") else None


class _QueryS3(S3):
    """The stack's S3 as queries read it: a worker's key gets its boto3 client and its
    pyarrow filesystem once, and every query the worker runs reuses them."""

    def __init__(self, ctx):
        super().__init__(ctx.endpoint, ctx.region, self._client, meter=ctx.s3.meter)
        self._ctx, self._lock, self._made = ctx, threading.Lock(), {}

    def _once(self, kind: str, access_key: str, make):
        with self._lock:
            if (kind, access_key) not in self._made:
                self._made[(kind, access_key)] = make()
            return self._made[(kind, access_key)]

    def _client(self, access_key: str | None):
        if access_key is None:
            return self._ctx.s3.client()
        return self._once("client", access_key, lambda: self._ctx.client("s3", access_key=access_key))

    def filesystem(self, access_key: str):
        return self._once("filesystem", access_key, lambda: S3.filesystem(self, access_key))


def _catalog_api(name: str):
    """The ``@operation`` answering ``name`` with the same-named method of :class:`metadata.Catalogs`."""
    method = re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()      # ListDatabases -> list_databases

    @operation(name)
    def answer(self, req):
        return getattr(self._catalogs(req), method)(req.params)
    answer.__name__ = method
    return answer


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
        self.writes = ThreadPoolExecutor(max_workers=2, thread_name_prefix="athena-write")
        self.catalog_version = 0       # +1 whenever a statement run here changed a table
        self._duckdb = None            # the DuckDB database every query runs a cursor of (first query opens it)
        # Queries read S3 with their worker's own key (metered per key).
        self._keys: dict[int, str] = {}
        self.s3 = _QueryS3(ctx)

    def stop(self):
        for ex in list(self.executions.values()):
            if ex.state in ("QUEUED", "RUNNING"):
                ex.cancel("The local stack stopped")
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.writes.shutdown(wait=True)
        if self._duckdb is not None:
            self._duckdb.close()

    def duckdb(self):
        """The plane's DuckDB database (``engine.open_database``), opened by the first query:
        DuckDB and sqlglot load then, not in a stack that runs no query."""
        with self.lock:
            if self._duckdb is None:
                from .engine import open_database
                self._duckdb = open_database(self.ctx.work_dir)
            return self._duckdb

    def _reader_key(self) -> str:
        """The access key of this worker thread: one query at a time reads with it."""
        with self.lock:
            return self._keys.setdefault(threading.get_ident(), f"ATHENAQ{len(self._keys):04d}")

    def _backend(self, region: str | None = None):
        """moto's records of Athena (work groups, data catalogs) in ``region``."""
        from moto.athena.models import athena_backends
        return athena_backends[self.ctx.account_id][region or self.ctx.region]

    # -- teaching hooks -------------------------------------------------------
    @local_hook("On AWS, Statistics.DataScannedInBytes (GetQueryExecution) is the billed figure; "
                "the number of S3 objects opened and of GET requests is not reported.")
    def scan_stats(self, query_execution_id: str) -> dict:
        """What a query read: bytes (as billed), S3 objects opened, and GET requests sent."""
        ex = self._get(query_execution_id)
        return {"bytes_scanned": ex.scanned, "files_opened": ex.files_opened,
                "get_requests": ex.get_requests}

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
        token_ = p.get("ClientRequestToken")
        if token_ and token_ in self.tokens:
            return {"QueryExecutionId": self.tokens[token_]}
        started = time.monotonic()
        work_group = p.get("WorkGroup") or "primary"
        config = self._work_group_config(work_group, req.region)
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
                       cutoff=config.get("BytesScannedCutoffPerQuery"),
                       reuse_config=p.get("ResultReuseConfiguration"),
                       principal=req.principal.arn if req.principal is not None else None)
        ex.marks["submitted"] = started
        minutes = ex.reuse_minutes
        if minutes is not None and not 0 <= minutes <= MAX_REUSE_MINUTES:
            raise InvalidRequestException(f"MaxAgeInMinutes must be between 0 and {MAX_REUSE_MINUTES}")
        ex.statement_type = _statement_type(ex.query)
        previous = self._reusable(ex)
        with self.lock:
            self.executions[ex.id] = ex
            if token_:
                self.tokens[token_] = ex.id
        ex.mark("queued")
        if previous is not None:
            self._reuse(ex, previous)
        else:
            ex.future = self.pool.submit(self._run, ex)
        return {"QueryExecutionId": ex.id}

    def _work_group_config(self, name: str, region: str | None) -> dict:
        wg = self._backend(region).get_work_group(name)
        if not wg:
            raise InvalidRequestException(f"WorkGroup {name} is not found.")
        if wg.get("State") == "DISABLED":
            raise InvalidRequestException(f"WorkGroup {name} is disabled.")
        return wg.get("Configuration") or {}

    # -- result reuse ------------------------------------------------------------
    def _reusable(self, ex: Execution) -> Execution | None:
        """The latest result ``ex`` may reuse: a SELECT with the same text (and parameters), catalog,
        database, work group and result location, younger than MaxAgeInMinutes, and no table
        changed through Athena since it ran. Locally a result is reused only by the principal
        whose query produced it, and never when Lake Formation restricted what that query read:
        a kept result must not outlive a revoked grant."""
        minutes = ex.reuse_minutes
        if minutes is None:
            return None
        now = time.monotonic()
        same = [e.reused or e for e in list(self.executions.values())
                if e.state == "SUCCEEDED" and e.substatement == "SELECT" and e.query == ex.query
                and e.parameters == ex.parameters and e.catalog.lower() == ex.catalog.lower()
                and e.database == ex.database and e.work_group == ex.work_group
                and e.output_location == ex.output_location and e.principal == ex.principal
                and not e.governed]
        fresh = [e for e in same if e.catalog_version == self.catalog_version
                 and now - e.marks["completed"] <= minutes * 60]
        return max(fresh, key=lambda e: e.marks["completed"], default=None)

    def _reuse(self, ex: Execution, previous: Execution) -> None:
        ex.reused, ex.pages, ex.catalog_version = previous, previous.pages, previous.catalog_version
        ex.statement_type, ex.substatement = previous.statement_type, previous.substatement
        for moment in ("started", "planned", "executed"):
            ex.mark(moment)
        self._finish(ex, "SUCCEEDED")

    # -- running -----------------------------------------------------------------
    def _run(self, ex: Execution) -> None:
        if ex.cancel_reason:
            return self._finish(ex, "CANCELLED", ex.cancel_reason)
        ex.state, ex.catalog_version = "RUNNING", self.catalog_version
        ex.mark("started")
        key = self._reader_key()
        try:
            if not (_reads_only(ex.query) and ex.output_location.startswith("s3://")):
                # (a query's result file proves the bucket when it is written)
                self._check_output_bucket(ex.output_location)
            sql = _bind(ex.query, ex.parameters)
            limit_reason = (f"Query cancelled: the query scanned more than the work group's "
                            f"limit of {ex.cutoff} bytes per query (BytesScannedCutoffPerQuery)")
            with self.ctx.s3.meter.track(key, limit=ex.cutoff,
                                         on_exceed=lambda: ex.cancel(limit_reason)) as usage:
                try:
                    self._execute(ex, sql, key)
                finally:
                    ex.connection, ex.scanned, ex.get_requests = None, usage.bytes_read, usage.requests
            ex.check()
            self._finish(ex, "SUCCEEDED")
        except QueryCancelled as exc:
            self._finish(ex, "CANCELLED", ex.cancel_reason or exc.reason)
        except Exception as exc:
            if ex.cancel_reason:      # stopped: whatever the interrupted engine raised on its way out
                return self._finish(ex, "CANCELLED", ex.cancel_reason)
            if isinstance(exc, QueryFailed):
                return self._finish(ex, "FAILED", exc.reason, {
                    "ErrorCategory": exc.category, "ErrorType": exc.error_type, "Retryable": False,
                    "ErrorMessage": exc.reason})
            # a bug in the stand-in: FAILED, SYSTEM, with the cause named
            reason = f"INTERNAL_ERROR: the local engine failed: {type(exc).__name__}: {exc}"
            self._finish(ex, "FAILED", reason, {"ErrorCategory": SYSTEM, "ErrorType": INTERNAL,
                                                "Retryable": False, "ErrorMessage": reason})

    def _execute(self, ex: Execution, sql: str, key: str) -> None:
        """Run the statement and write its result while the engine produces it."""
        from .engine import Statement
        statement = Statement(sql, ex.database, duckdb=self.duckdb(), client=self.ctx.client, s3=self.s3,
                              access_key=key, query_id=ex.id, output_location=ex.output_location,
                              scratch=self.ctx.work_dir, on_connection=lambda con: setattr(ex, "connection", con),
                              cancelled=lambda: ex.cancel_reason, principal=ex.principal,
                              lake=getattr(self.ctx, "lake", None), now=self.ctx.clock.time)
        try:
            result = statement.run()
            ex.marks["planned"] = statement.planned or time.monotonic()
            try:
                ex.statement_type, ex.substatement = result.statement_type, result.substatement
                ex.update_count = result.update_count
                self._write_results(ex, result)
            finally:
                result.close()
        finally:
            ex.files_opened, ex.governed = statement.files_opened, statement.governed

    def _check_output_bucket(self, location: str) -> None:
        """Athena checks the result bucket before a statement changes anything."""
        bucket = location[5:].split("/", 1)[0] if location.startswith("s3://") else ""
        try:
            exists = bool(bucket) and self.ctx.s3.bucket_exists(bucket)
        except Exception:          # a name S3 refuses (botocore checks it before sending)
            exists = False
        if not exists:
            raise _no_bucket(bucket)

    def _finish(self, ex: Execution, state: str, reason: str | None = None, error: dict | None = None):
        ex.reason, ex.error = reason, error
        ex.mark("completed")
        if state == "SUCCEEDED" and not ex.reused and not ex.substatement.startswith(READ_ONLY):
            with self.lock:
                self.catalog_version += 1
        ex.state = state

    def _write_results(self, ex: Execution, result) -> None:
        """``<id>.csv`` (or ``.txt`` for DDL) + ``.metadata``, and the manifest of written files.

        A SELECT's rows stream into the CSV batch by batch (cancellable between
        batches); CTAS, INSERT INTO and UNLOAD leave an empty CSV (their counts
        are statistics); DDL output is text, one line per row.
        """
        from .results import ResultPages, ResultWriter, Upload, rows_batch
        s3, out = self.ctx.s3, ex.output_location
        if ex.statement_type == "DDL":
            ex.mark("executed")
            s3.write(f"{out}{ex.id}.txt", "".join((row[0] or "") + "\n" for row in result.rows).encode())
            ex.pages = ResultPages.of_rows(result.columns, result.rows, header=False)
        else:
            # The small .metadata file goes up while the query runs and its rows stream to the CSV.
            metadata = f"{out}{ex.id}.csv.metadata"
            written = self.writes.submit(s3.write, metadata, "\n".join(f"{c}\t{t}" for c, t in result.columns).encode())
            upload = Upload(s3.client(), f"{out}{ex.id}.csv")
            try:
                if result.update_count is not None or result.substatement == "UNLOAD":
                    ex.mark("executed")
                    upload.close()
                    ex.pages = ResultPages(result.columns, header=False)
                else:
                    writer = ResultWriter(upload, result.columns, ex.check)
                    for batch in result.batches or [rows_batch(result.columns, result.rows)]:
                        writer.write(batch)
                    ex.check()
                    ex.mark("executed")
                    ex.pages = writer.close()
                written.result()
            except BaseException as exc:
                upload.abort()
                if not written.exception():
                    s3.delete([metadata])
                if _missing_bucket(exc):
                    raise _no_bucket(upload.bucket) from None
                raise
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
        source = ex.reused or ex
        status = {"State": ex.state, "SubmissionDateTime": ex.submitted}
        if ex.reason:
            status["StateChangeReason"] = ex.reason
        if "completed" in ex.marks:
            status["CompletionDateTime"] = ex.submitted + ex.marks["completed"] - ex.marks["submitted"]
        if ex.error:
            status["AthenaError"] = ex.error
        stats = {**_timings(ex.marks), "DataScannedInBytes": ex.scanned,
                 "ResultReuseInformation": {"ReusedPreviousResult": ex.reused is not None}}
        if source.manifest:
            stats["DataManifestLocation"] = source.manifest
        suffix = ".txt" if ex.statement_type == "DDL" else ".csv"
        out = {"QueryExecutionId": ex.id, "Query": ex.query, "StatementType": ex.statement_type,
               "ResultConfiguration": {"OutputLocation": source.output_location + source.id + suffix},
               "QueryExecutionContext": {"Database": ex.database, "Catalog": ex.catalog},
               "Status": status, "Statistics": stats, "WorkGroup": ex.work_group, "EngineVersion": ENGINE}
        if ex.reuse_config:
            out["ResultReuseConfiguration"] = ex.reuse_config
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
        start = offset(req.params.get("NextToken"))
        size = int(req.params.get("MaxResults") or 50)
        out = {"QueryExecutionIds": ids[start:start + size]}
        if start + size < len(ids):
            out["NextToken"] = token(start + size)
        return out

    @operation("StopQueryExecution")
    def stop_query_execution(self, req):
        ex = self._get(req.params.get("QueryExecutionId"))
        if ex.state in ("QUEUED", "RUNNING"):
            ex.cancel("Query was cancelled by user")
        return {}

    @operation("GetQueryResults")
    def get_query_results(self, req):
        from .results import column_info
        ex = self._get(req.params.get("QueryExecutionId"))
        if ex.state in ("QUEUED", "RUNNING"):
            raise InvalidRequestException(f"Query has not yet finished. Current state: {ex.state}")
        if ex.state != "SUCCEEDED":
            raise InvalidRequestException(f"Query did not finish successfully. Final query state: {ex.state}"
                                  + (f"\n{ex.reason}" if ex.reason else ""))
        size = int(req.params.get("MaxResults") or 1000)
        if not 1 <= size <= 1000:
            raise InvalidRequestException("MaxResults must be between 1 and 1000")
        start, pages = offset(req.params.get("NextToken")), ex.pages
        rows = pages.rows(start, start + size, self.ctx.s3)
        out = {"ResultSet": {"Rows": [{"Data": [{} if v is None else {"VarCharValue": v} for v in row]}
                                      for row in rows],
                             "ResultSetMetadata": {"ColumnInfo": [column_info(c, t) for c, t in pages.columns]}},
               "UpdateCount": (ex.reused or ex).update_count or 0}
        if start + size < pages.total:
            out["NextToken"] = token(start + size)
        return out

    @operation("GetQueryRuntimeStatistics")
    def get_query_runtime_statistics(self, req):
        ex = self._get(req.params.get("QueryExecutionId"))
        d = self._describe(ex)["Statistics"]
        return {"QueryRuntimeStatistics": {
            "Timeline": {k: d[k] for k in ("QueryQueueTimeInMillis", "QueryPlanningTimeInMillis",
                                           "EngineExecutionTimeInMillis", "ServiceProcessingTimeInMillis",
                                           "TotalExecutionTimeInMillis")},
            "Rows": {"InputBytes": ex.scanned, "OutputRows": ex.pages.count if ex.pages is not None else 0}}}

    # -- the catalog API: metadata.py answers from Glue (or a LAMBDA catalog's connector)
    def _catalogs(self, req) -> Catalogs:
        """The catalog API reads Glue as the caller (signed with its own key), so that Lake
        Formation shows it only the databases, tables and columns it may describe."""
        lake, principal = getattr(self.ctx, "lake", None), req.principal
        if lake is not None and principal is not None and not lake.is_admin(principal.arn) and req.access_key:
            glue = self.ctx.client("glue", access_key=req.access_key)
        else:
            glue = self.ctx.client("glue")
        return Catalogs(glue, list(self._backend(req.region).data_catalogs.values()),
                        self.ctx.account_id, self.ctx.client)

    list_data_catalogs = _catalog_api("ListDataCatalogs")
    get_data_catalog = _catalog_api("GetDataCatalog")
    list_databases = _catalog_api("ListDatabases")
    get_database = _catalog_api("GetDatabase")
    list_table_metadata = _catalog_api("ListTableMetadata")
    get_table_metadata = _catalog_api("GetTableMetadata")


def _reads_only(sql: str) -> bool:
    """A query (SELECT, WITH, VALUES): it changes nothing before its result is written."""
    words = sql.lstrip(" \t\n(").split(None, 1)
    return bool(words) and words[0].upper() in ("SELECT", "WITH", "VALUES")


def _no_bucket(bucket: str) -> QueryFailed:
    return QueryFailed("HIVE_FILESYSTEM_ERROR", f"Unable to verify/create output bucket {bucket}")


def _missing_bucket(exc: BaseException) -> bool:
    """Whether writing failed because the result bucket does not exist (or S3 refuses its name)."""
    from botocore.exceptions import ClientError, ParamValidationError
    return isinstance(exc, ParamValidationError) or (
        isinstance(exc, ClientError) and exc.response["Error"]["Code"] == "NoSuchBucket")


def _millis(seconds: float) -> int:
    """A duration in whole milliseconds, as Athena reports it; a span that took any time counts at least 1."""
    return math.ceil(round(seconds * 1000, 6)) if seconds > 0 else 0


def _timings(marks: dict) -> dict:
    """The timing statistics of an execution from the moments its stages ended.

    Submitted -> queued is Athena's pre-processing, queued -> started the time in
    the queue, started -> planned the planning (parsing, catalog lookups, file
    listings), started -> executed the engine (planning included; a SELECT's
    rows are written as they come), executed -> completed the result's
    finishing (files closed). A stage still under way counts until now.
    """
    now = time.monotonic()
    at = lambda moment, default: marks.get(moment, default)   # noqa: E731
    completed = at("completed", now)
    queued = at("queued", completed)
    started = at("started", completed)
    executed = at("executed", completed)
    return {"TotalExecutionTimeInMillis": _millis(completed - marks["submitted"]),
            "ServicePreProcessingTimeInMillis": _millis(queued - marks["submitted"]),
            "QueryQueueTimeInMillis": _millis(started - queued),
            "QueryPlanningTimeInMillis": _millis(at("planned", executed) - started),
            "EngineExecutionTimeInMillis": _millis(executed - started),
            "ServiceProcessingTimeInMillis": _millis(completed - executed)}


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
