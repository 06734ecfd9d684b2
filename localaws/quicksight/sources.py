"""Reading a data set's physical table from its data source, through AWS APIs as QuickSight does.

QuickSight never stores a copy of a source's data except in SPICE. To fill SPICE (an ingestion)
or to answer a DIRECT_QUERY visual, it sends SQL to the source:

- **ATHENA** (``AthenaParameters.WorkGroup``): StartQueryExecution in that work group, wait for
  GetQueryExecution to end, page through GetQueryResults (the stack's own Athena API), signed
  as the identity QuickSight uses for the data set (``athena=``; Lake Formation decides with it,
  see ``engine.py``);
- **REDSHIFT** (``RedshiftParameters.ClusterId`` + ``Database``): the Redshift Data API
  (ExecuteStatement, DescribeStatement, GetStatementResult) as the data source's user
  (``Credentials.CredentialPair.Username``). QuickSight itself opens a JDBC connection; the
  Data API is the same SQL over an AWS API;
- **S3** (``S3Parameters.ManifestFileLocation``): the manifest names the files (``URIs``) or
  folders (``URIPrefixes``) and their format (``globalUploadSettings``: CSV/TSV/CLF/ELF/JSON,
  ``containsHeader``, ``delimiter``); every file is read from S3 each time.

Every reader returns ``(column names, rows)`` with values as strings (or None): the engine types
them with the data set's ``InputColumns`` (``engine.py``), so all three sources are typed alike,
and a value that does not parse as its column's type drops the row, as a SPICE ingestion does
(``RowsDropped``).
"""
from __future__ import annotations

import csv
import io
import json

from localaws.core.waiting import wait_until

from . import errors
from .expressions import quote


class SourceError(Exception):
    """The source refused or failed; ``kind`` is QuickSight's ingestion error type."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind, self.message = kind, message


# ------------------------------------------------------------------ data source checks
def check_data_source(ctx, kind: str, params: dict) -> dict | None:
    """What CreateDataSource finds wrong, as the data source's ``ErrorInfo`` ({Type, Message}),
    or None when the source is reachable. QuickSight reports this in the data source's status
    (CREATION_FAILED), not as a failed call."""
    params = params or {}
    try:
        if kind == "ATHENA":
            wg = (params.get("AthenaParameters") or {}).get("WorkGroup") or "primary"
            athena = ctx.client("athena")
            try:
                found = "WorkGroup" in athena.get_work_group(WorkGroup=wg)   # moto answers {} for a missing one
            except athena.exceptions.InvalidRequestException:
                found = False
            if not found:
                return {"Type": "UNKNOWN", "Message": f"WorkGroup {wg} is not found."}
        elif kind == "REDSHIFT":
            cluster = (params.get("RedshiftParameters") or {}).get("ClusterId")
            if cluster:
                redshift = ctx.client("redshift")
                try:
                    redshift.describe_clusters(ClusterIdentifier=cluster)
                except redshift.exceptions.ClusterNotFoundFault:
                    return {"Type": "UNKNOWN_HOST", "Message": f"Cluster {cluster} not found."}
        elif kind == "S3":
            read_manifest(ctx, params)
        else:
            return None
    except SourceError as exc:
        return {"Type": "COPY_SOURCE_NOT_FOUND" if exc.kind == "S3_FILE_INACCESSIBLE" else "UNKNOWN",
                "Message": exc.message}
    return None


# ------------------------------------------------------------------ S3 manifests
def read_manifest(ctx, params: dict) -> dict:
    """The data source's manifest, parsed and checked (raises SourceError S3_MANIFEST_ERROR)."""
    loc = (params.get("S3Parameters") or {}).get("ManifestFileLocation") or {}
    uri = f"s3://{loc.get('Bucket', '')}/{loc.get('Key', '')}"
    try:
        body = ctx.s3.read(uri)
    except Exception as exc:
        raise SourceError("S3_FILE_INACCESSIBLE", f"The manifest file {uri} can't be read: "
                          f"{getattr(exc, 'response', {}).get('Error', {}).get('Code', exc)}") from None
    try:
        manifest = json.loads(body)
    except ValueError:
        raise SourceError("S3_MANIFEST_ERROR", f"The manifest file {uri} is not valid JSON.") from None
    locations = manifest.get("fileLocations") if isinstance(manifest, dict) else None
    if not locations or not isinstance(locations, list):
        raise SourceError("S3_MANIFEST_ERROR", f"The manifest file {uri} has no fileLocations.")
    settings = manifest.get("globalUploadSettings") or {}
    fmt = settings.get("format", "CSV")
    if fmt not in ("CSV", "TSV", "JSON"):
        raise SourceError("S3_MANIFEST_ERROR", f"The manifest format {fmt!r} is not supported here "
                          "(CSV, TSV, JSON; QuickSight also reads CLF, ELF and XLSX).")
    return manifest


def _manifest_files(ctx, manifest: dict) -> list[str]:
    files = []
    for entry in manifest["fileLocations"]:
        for uri in entry.get("URIs", []):
            files.append(uri)
        for prefix in entry.get("URIPrefixes", []):
            try:
                files += [f"s3://{prefix.split('/')[2]}/{o['Key']}" for o in ctx.s3.list(prefix)
                          if not o["Key"].endswith("/")]
            except Exception:
                raise SourceError("S3_FILE_INACCESSIBLE", f"The prefix {prefix} can't be listed.") from None
    return [f.replace("https://", "s3://") for f in files]


def _read_s3(ctx, source_params: dict, names: list[str]) -> tuple[list[str], list[tuple]]:
    manifest = read_manifest(ctx, source_params)
    settings = manifest.get("globalUploadSettings") or {}
    fmt = settings.get("format", "CSV")
    header = str(settings.get("containsHeader", "true")).lower() == "true"
    delimiter = settings.get("delimiter") or ("\t" if fmt == "TSV" else ",")
    quote_char = settings.get("textqualifier", '"').replace("'", "'")
    rows: list[tuple] = []
    for uri in _manifest_files(ctx, manifest):
        try:
            text = ctx.s3.read(uri).decode("utf-8-sig")
        except Exception:
            raise SourceError("S3_FILE_INACCESSIBLE", f"The file {uri} can't be read.") from None
        if fmt == "JSON":
            records = [json.loads(line) for line in text.splitlines() if line.strip()]
            rows += [tuple(None if r.get(n) is None else str(r.get(n)) for n in names) for r in records]
            continue
        reader = list(csv.reader(io.StringIO(text), delimiter=delimiter, quotechar=quote_char or '"'))
        if header and reader:
            head, reader = reader[0], reader[1:]
            missing = [n for n in names if n not in head]
            if missing:
                raise SourceError("SQL_SCHEMA_MISMATCH_ERROR",
                                  f"The file {uri} has no column {missing[0]!r} (columns: {', '.join(head)}).")
            index = [head.index(n) for n in names]
        else:
            index = list(range(len(names)))
        for rec in reader:
            rows.append(tuple((rec[i] if i < len(rec) and rec[i] != "" else None) for i in index))
    return names, rows


# ------------------------------------------------------------------ SQL sources
def _athena(ctx, source_params: dict, sql: str, catalog: str | None, schema: str | None, athena=None):
    wg = (source_params.get("AthenaParameters") or {}).get("WorkGroup") or "primary"
    athena = athena or ctx.client("athena")
    context = {"Database": schema or "default"}
    if catalog:
        context["Catalog"] = catalog
    try:
        qid = athena.start_query_execution(QueryString=sql, WorkGroup=wg,
                                           QueryExecutionContext=context)["QueryExecutionId"]
    except athena.exceptions.ClientError as exc:
        raise SourceError("DATA_SOURCE_CONNECTION_FAILED", exc.response["Error"]["Message"]) from None
    state = {}

    def ended():
        state.update(athena.get_query_execution(QueryExecutionId=qid)["QueryExecution"]["Status"])
        return state["State"] in ("SUCCEEDED", "FAILED", "CANCELLED")

    if not wait_until(ended, 300, poll=0.05):
        raise SourceError("QUERY_TIMEOUT", f"Athena query {qid} did not end in 300 s.")
    if state["State"] != "SUCCEEDED":
        reason = state.get("StateChangeReason", "")
        kind = "SQL_TABLE_NOT_FOUND" if "not found" in reason.lower() or "does not exist" in reason.lower() \
            else "SQL_EXCEPTION"
        raise SourceError(kind, f"Athena query failed: {reason}")
    names, rows, first = None, [], True
    for page in athena.get_paginator("get_query_results").paginate(QueryExecutionId=qid):
        info = page["ResultSet"]["ResultSetMetadata"]["ColumnInfo"]
        names = names or [c["Name"] for c in info]
        values = [tuple(d.get("VarCharValue") for d in r["Data"]) for r in page["ResultSet"]["Rows"]]
        if first and values and list(values[0]) == names:
            values = values[1:]             # the header row of a SELECT
        first = False
        rows += values
    return names or [], rows


def _redshift_value(field: dict):
    if field.get("isNull"):
        return None
    for key in ("stringValue", "longValue", "doubleValue"):
        if key in field:
            return str(field[key])
    if "booleanValue" in field:
        return "true" if field["booleanValue"] else "false"
    return None


def _redshift(ctx, source_params: dict, credentials: dict, sql: str):
    rp = source_params.get("RedshiftParameters") or {}
    user = ((credentials or {}).get("CredentialPair") or {}).get("Username") or "admin"
    data = ctx.client("redshift-data")
    kwargs = {"Database": rp.get("Database") or "dev", "DbUser": user, "Sql": sql}
    if rp.get("ClusterId"):
        kwargs["ClusterIdentifier"] = rp["ClusterId"]
    elif rp.get("WorkgroupName"):
        kwargs["WorkgroupName"] = rp["WorkgroupName"]
    else:
        raise errors.InvalidParameterValueException(
            "This local QuickSight reaches Redshift through the Data API: give RedshiftParameters.ClusterId "
            "(a Host/Port data source cannot be queried here).")
    try:
        sid = data.execute_statement(**kwargs)["Id"]
    except data.exceptions.ClientError as exc:
        raise SourceError("DATA_SOURCE_CONNECTION_FAILED", exc.response["Error"]["Message"]) from None
    state = {}

    def ended():
        state.update(data.describe_statement(Id=sid))
        return state["Status"] in ("FINISHED", "FAILED", "ABORTED")

    if not wait_until(ended, 300, poll=0.05):
        raise SourceError("QUERY_TIMEOUT", f"Redshift statement {sid} did not end in 300 s.")
    if state["Status"] != "FINISHED":
        message = state.get("Error", "")
        kind = "SQL_TABLE_NOT_FOUND" if "does not exist" in message else "SQL_EXCEPTION"
        raise SourceError(kind, f"Redshift statement failed: {message}")
    names, rows = None, []
    for page in data.get_paginator("get_statement_result").paginate(Id=sid):
        names = names or [c["name"] for c in page["ColumnMetadata"]]
        rows += [tuple(_redshift_value(f) for f in rec) for rec in page["Records"]]
    return names or [], rows


# ------------------------------------------------------------------ one entry point
def physical_sql(table: dict, names: list[str]) -> tuple[str, str | None, str | None]:
    """(SQL, catalog, schema) that reads a RelationalTable's or CustomSql's columns at the source."""
    cols = ", ".join(quote(n) for n in names)
    if "RelationalTable" in table:
        rt = table["RelationalTable"]
        schema = rt.get("Schema")
        relation = (f"{quote(schema)}." if schema else "") + quote(rt["Name"])
        return f"SELECT {cols} FROM {relation}", rt.get("Catalog"), schema
    sql = table["CustomSql"]["SqlQuery"].strip().rstrip(";")
    return f"SELECT {cols} FROM ({sql}) AS custom_sql", None, None


def read(ctx, source: dict, table: dict, names: list[str], *, probe: bool = False, athena=None):
    """The physical table's rows at the source: ``(names, rows of strings)``.

    ``source`` is the data source (DescribeDataSource's fields plus ``Credentials``); ``probe``
    reads no rows, only checks that the table and columns exist (CreateDataSet does that);
    ``athena``: the Athena client to query with (default: the stack's administrator).
    """
    kind, params = source["Type"], source.get("DataSourceParameters") or {}
    if kind == "S3":
        got_names, rows = _read_s3(ctx, params, names)
        return got_names, ([] if probe else rows)
    sql, catalog, schema = physical_sql(table, names)
    if probe:
        sql += " LIMIT 0"
    if kind == "ATHENA":
        return _athena(ctx, params, sql, catalog if catalog != "AwsDataCatalog" else None, schema, athena)
    if kind == "REDSHIFT":
        return _redshift(ctx, params, source.get("Credentials"), sql)
    raise errors.InvalidParameterValueException(
        f"Data sources of type {kind} are not emulated by the local QuickSight (ATHENA, REDSHIFT and S3 are).")
