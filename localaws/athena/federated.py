"""Federated query: tables read by connectors that run as Lambda functions.

On AWS, ``CreateDataCatalog(Type="LAMBDA", Parameters={"function": arn})``
registers a *data source connector*: a Lambda function that Athena calls to
learn a table's schema and to read its rows from a source that is not S3
(DynamoDB, a relational database, CloudWatch Logs...). A query then names the
table with three parts, ``catalog.database.table``, and may join it with S3
tables as if it lived in the data lake.

Here Athena invokes the connector through the **Lambda API** (``Invoke``):
the handler really runs in the stack's Lambda runtime, with its logs in
CloudWatch Logs. The requests follow the names of the Athena Query
Federation SDK, in a small JSON form (the SDK speaks Java objects with
Apache Arrow blocks; see the chapter's "How this differs from AWS"):

``{"@type": "GetTableRequest", "catalogName", "queryId", "tableName": {"schemaName", "tableName"}}``
    -> ``{"@type": "GetTableResponse", "schema": {"fields": [{"name", "type"}]}, ...}``;
    ``type`` is an Athena type (``varchar``, ``bigint``, ``double``,
    ``boolean``, ``date``, ``timestamp``, ``decimal(p,s)``).

``{"@type": "ReadRecordsRequest", ..., "columns": [names], "constraints": {"summary": {col: [{"op", "value"}]}}}``
    -> ``{"@type": "ReadRecordsResponse", "records": {"rowCount": n, "columns": {name: [values]}}}``.
    ``columns`` is the projection (only what the query uses) and
    ``constraints`` the simple predicates of the WHERE clause (``=``, ``<``,
    ``<=``, ``>``, ``>=`` between a column and a literal) that the connector
    may apply at the source (*predicate pushdown*). Athena still applies the
    whole WHERE clause afterwards, so a connector that ignores them is slower,
    never wrong. Values travel as JSON; dates and timestamps as ISO text.

A connector that raises makes the query FAIL with Athena's
``GENERIC_USER_ERROR: Encountered an exception[...] from your
LambdaFunction[...]`` reason. The connectors of this course live in
``localaws/athena/connectors/``; :func:`connector_source` gives their code
to zip into a deployment package.
"""
from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
from sqlglot import exp

from .errors import QueryFailed, position_of
from .sources import duck_type, ident

CONNECTORS = Path(__file__).with_name("connectors")
OPS = {exp.EQ: "=", exp.GT: ">", exp.GTE: ">=", exp.LT: "<", exp.LTE: "<="}
FLIPPED = {"=": "=", ">": "<", ">=": "<=", "<": ">", "<=": ">="}
TEXT = ("varchar", "char", "string")
NUMERIC = ("bigint", "integer", "int", "smallint", "tinyint", "double", "real", "float", "decimal")


def connector_source(name: str) -> str:
    """The handler source of a shipped connector (``"dynamodb"`` or ``"sqlite"``)."""
    path = CONNECTORS / f"{name}_connector.py"
    if not path.exists():
        known = sorted(p.stem.removesuffix("_connector") for p in CONNECTORS.glob("*_connector.py"))
        raise ValueError(f"No connector {name!r}; shipped connectors: {', '.join(known)}")
    return path.read_text()


def _catalog(statement, name: str, node) -> tuple[str, str]:
    """(catalog name as stored, connector function ARN) of a LAMBDA data catalog."""
    athena = statement.client("athena")
    for candidate in dict.fromkeys([name, name.lower()]):
        try:
            found = athena.get_data_catalog(Name=candidate).get("DataCatalog")
        except athena.exceptions.ClientError:
            found = None
        if found:
            break
    else:
        line, col = _position(statement, node)
        raise QueryFailed("CATALOG_NOT_FOUND", f"Catalog '{name}' does not exist", line=line, column=col)
    params = found.get("Parameters") or {}
    if found.get("Type") != "LAMBDA":
        raise QueryFailed("NOT_SUPPORTED", f"Catalog '{name}' has type {found.get('Type')}: "
                          "only LAMBDA catalogs (and AwsDataCatalog) are queryable locally")
    function = params.get("function") or params.get("record-function") or params.get("metadata-function")
    if not function:
        raise QueryFailed("GENERIC_USER_ERROR", f"Catalog '{name}' names no Lambda function "
                          "(Parameters: function=<arn>)")
    return found["Name"], function


def _position(statement, node):
    return position_of(statement.sql, node.catalog) if node is not None else (None, None)


class Connector:
    """Calls one connector function with the federation protocol, through Lambda's Invoke."""

    def __init__(self, statement, catalog: str, function: str):
        self.statement, self.catalog, self.function = statement, catalog, function
        self.lam = statement.client("lambda")

    def call(self, request: dict, context: str) -> dict:
        request = {**request, "catalogName": self.catalog, "queryId": self.statement.query_id}
        try:
            reply = self.lam.invoke(FunctionName=self.function, Payload=json.dumps(request).encode())
        except self.lam.exceptions.ClientError as exc:
            self._fail("AmazonServiceException", exc.response["Error"].get("Message", str(exc)), context)
        body = reply["Payload"].read()
        if reply.get("FunctionError"):
            error = json.loads(body or b"{}")
            self._fail(error.get("errorType", "Exception"), error.get("errorMessage", ""), context)
        return json.loads(body)

    def _fail(self, kind: str, message: str, context: str):
        raise QueryFailed("GENERIC_USER_ERROR", f"Encountered an exception[{kind}] from your "
                          f"LambdaFunction[{self.function}] executed in context[{context}] "
                          f"with message[{message}]")


class FederatedSource:
    """One federated table of one query: schema from the connector, then its rows."""

    def __init__(self, connector: Connector, database: str, table: str, node=None):
        self.connector, self.database, self.table, self.node = connector, database, table, node
        self.table_name = {"schemaName": database, "tableName": table}
        reply = connector.call({"@type": "GetTableRequest", "tableName": self.table_name},
                               "retrieving meta-data")
        self.fields = [(f["name"].lower(), f["type"].lower()) for f in reply["schema"]["fields"]]
        self.columns, self.constraints = self.pushdown()
        self.rows = 0

    # -- what the query needs: projection and simple predicates --------------
    def pushdown(self) -> tuple[list[str], dict]:
        names = [n for n, _ in self.fields]
        select = self.node.parent_select if self.node is not None else None
        if select is None:
            return names, {}
        alias = (self.node.alias or self.node.name).lower()
        alone = not select.args.get("joins")
        if any(isinstance(s, exp.Star) or (isinstance(s, exp.Column) and isinstance(s.this, exp.Star)
                                            and s.table.lower() in ("", alias))
               for s in select.expressions):
            columns = names
        else:
            used = {c.name.lower() for c in select.find_all(exp.Column)
                    if c.table.lower() in ("", alias)}
            columns = [n for n in names if n in used] or names[:1]
        types = dict(self.fields)
        summary: dict[str, list] = {}
        where = select.args.get("where")
        for cond in (where.this.flatten() if where is not None and isinstance(where.this, exp.And)
                     else [where.this] if where is not None else []):
            op = OPS.get(type(cond))
            if op is None:
                continue
            left, right = cond.this, cond.expression
            if isinstance(left, exp.Literal) and isinstance(right, exp.Column):
                left, right, op = right, left, FLIPPED[op]
            if not (isinstance(left, exp.Column) and isinstance(right, exp.Literal)):
                continue
            col = left.name.lower()
            if col not in types or not (left.table.lower() == alias or (not left.table and alone)):
                continue
            textual = types[col].startswith(TEXT)
            if not (textual if right.is_string else types[col].startswith(NUMERIC)):
                continue   # a cast would be needed (dates, booleans...): leave it to Athena
            value = right.this if right.is_string else (int(right.this) if right.is_int else float(right.this))
            summary.setdefault(col, []).append({"op": op, "value": value})
        return columns, {"summary": summary}

    # -- rows into DuckDB ----------------------------------------------------
    def register(self, con, name: str) -> None:
        """Read the records and create the view ``name`` with the table's typed columns
        (TEMP: it lives on the query's cursor only)."""
        self.connector.statement.check()
        reply = self.connector.call({"@type": "ReadRecordsRequest", "tableName": self.table_name,
                                     "schema": {"fields": [{"name": n, "type": t} for n, t in self.fields]},
                                     "columns": self.columns, "constraints": self.constraints},
                                    "reading records")
        records = reply.get("records") or {}
        data = records.get("columns") or {}
        self.rows = int(records.get("rowCount", 0))
        arrays = {}
        for col in self.columns:
            values = data.get(col, [None] * self.rows)
            try:
                arrays[col] = pa.array(values)
            except (pa.ArrowInvalid, pa.ArrowTypeError):
                arrays[col] = pa.array([None if v is None else str(v) for v in values], pa.string())
        raw = f"{name}__raw"
        con.register(raw, pa.table(arrays) if arrays else pa.table({"__none": pa.nulls(self.rows)}))
        select = [f"CAST({ident(c)} AS {duck_type(t)}) AS {ident(c)}" if c in arrays
                  else f"CAST(NULL AS {duck_type(t)}) AS {ident(c)}" for c, t in self.fields]
        con.execute(f"CREATE TEMP VIEW {ident(name)} AS SELECT {', '.join(select)} FROM {ident(raw)}")


def source(statement, catalog: str, database: str, table: str, node=None) -> FederatedSource:
    """The federated table ``catalog.database.table`` of ``statement``'s query."""
    name, function = _catalog(statement, catalog, node)
    return FederatedSource(Connector(statement, name, function), database, table, node)
