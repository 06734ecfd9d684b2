"""Athena's catalog API: the catalogs, databases and tables a query can name.

Besides running SQL, Athena answers questions about what there is to query,
and client libraries ask them all the time: PyAthena's SQLAlchemy dialect
calls ``GetTableMetadata`` for ``has_table`` and ``ListDatabases`` /
``ListTableMetadata`` to reflect a schema, BI tools list the data catalogs.

- ``ListDataCatalogs`` / ``GetDataCatalog``: ``AwsDataCatalog`` (type
  ``GLUE``: the account's AWS Glue Data Catalog) is always there; the
  catalogs made with ``CreateDataCatalog`` follow (moto keeps them).
- ``ListDatabases`` / ``GetDatabase``, ``ListTableMetadata`` /
  ``GetTableMetadata``: for a ``GLUE`` catalog, read from Glue, as Athena
  does (``StorageDescriptor`` fields become ``Parameters`` such as
  ``location``, ``inputformat``, ``serde.serialization.lib`` and
  ``serde.param.field.delim``); for a ``LAMBDA`` catalog, asked of its
  connector (``ListSchemasRequest``, ``ListTablesRequest``,
  ``GetTableRequest``; see ``federated.py``).
- A database or table that does not exist is Athena's ``MetadataException``
  carrying Glue's ``EntityNotFoundException`` in its message (clients such
  as PyAthena read the code from there).

Lists come in pages: ``MaxResults`` at most 50, a ``NextToken`` while more remain.
"""
from __future__ import annotations

import base64
import re
import types
import uuid

from .errors import InvalidRequestException, MetadataException, QueryFailed

AWS_DATA_CATALOG = "AwsDataCatalog"


def not_found(what: str) -> MetadataException:
    """Glue's "entity not found", as Athena passes it on."""
    return MetadataException(f"{what} (Service: AmazonDataCatalog; Status Code: 400; Error Code: "
                             f"EntityNotFoundException; Request ID: {uuid.uuid4()}; Proxy: null)")


# ------------------------------------------------------------------ pages
def token(offset: int) -> str:
    """An opaque NextToken for the item at ``offset``."""
    return base64.urlsafe_b64encode(f"localaws:{offset}".encode()).decode()


def offset(next_token: str | None) -> int:
    if not next_token:
        return 0
    try:
        kind, _, number = base64.urlsafe_b64decode(next_token.encode()).decode().partition(":")
        if kind != "localaws":
            raise ValueError(next_token)
        return int(number)
    except Exception:
        raise InvalidRequestException("The NextToken is not valid (it must come from a previous response)") from None


def page(items: list, params: dict, key: str, largest: int = 50) -> dict:
    """``{key: one page of items}`` plus ``NextToken`` when more remain."""
    size = int(params.get("MaxResults") or largest)
    if not 1 <= size <= largest:
        raise InvalidRequestException(f"MaxResults must be between 1 and {largest}")
    start = offset(params.get("NextToken"))
    out = {key: items[start:start + size]}
    if start + size < len(items):
        out["NextToken"] = token(start + size)
    return out


# ------------------------------------------------------------------ shapes
def table_metadata(table: dict) -> dict:
    """Athena's ``TableMetadata`` of a Glue table."""
    sd = table.get("StorageDescriptor") or {}
    serde = sd.get("SerdeInfo") or {}
    params = dict(table.get("Parameters") or {})
    for name, value in (("location", sd.get("Location")), ("inputformat", sd.get("InputFormat")),
                        ("outputformat", sd.get("OutputFormat")),
                        ("serde.serialization.lib", serde.get("SerializationLibrary"))):
        if value:
            params[name] = value
    params.update({f"serde.param.{k}": v for k, v in (serde.get("Parameters") or {}).items()})
    out = {"Name": table["Name"], "TableType": table.get("TableType", "EXTERNAL_TABLE"),
           "Columns": [_column(c) for c in sd.get("Columns", [])],
           "PartitionKeys": [_column(c) for c in table.get("PartitionKeys", [])], "Parameters": params}
    for field in ("CreateTime", "LastAccessTime"):
        if table.get(field):
            out[field] = table[field].timestamp() if hasattr(table[field], "timestamp") else table[field]
    return out


def _database(database: dict) -> dict:
    """Athena's ``Database`` of a Glue database."""
    return {"Name": database["Name"], "Description": database.get("Description", ""),
            "Parameters": database.get("Parameters", {})}


def _column(column: dict) -> dict:
    return {k: column[k] for k in ("Name", "Type", "Comment") if column.get(k) is not None}


# ------------------------------------------------------------------ the API
class Catalogs:
    """The catalog API of one request.

    ``glue`` is a Glue client of the stack; ``created`` the catalogs made
    with CreateDataCatalog (moto's records: ``name``, ``type``,
    ``description``, ``parameters``); ``client(service)`` makes clients for
    a LAMBDA catalog's connector.
    """

    def __init__(self, glue, created, account_id: str, client):
        self.glue, self.account_id, self.client = glue, account_id, client
        self.created = {c.name: c for c in created}

    # -- data catalogs ---------------------------------------------------------
    def data_catalog(self, name: str) -> dict:
        if name.lower() == AWS_DATA_CATALOG.lower():
            return {"Name": AWS_DATA_CATALOG, "Description": "AWS Glue Data Catalog", "Type": "GLUE",
                    "Parameters": {"catalog-id": self.account_id}}
        found = self.created.get(name)
        if found is None:
            raise InvalidRequestException(f"Catalog {name} was not found")
        return {"Name": found.name, "Description": found.description or "", "Type": found.type,
                "Parameters": dict(found.parameters or {})}

    def get_data_catalog(self, params: dict) -> dict:
        return {"DataCatalog": self.data_catalog(params["Name"])}

    def list_data_catalogs(self, params: dict) -> dict:
        names = [AWS_DATA_CATALOG] + sorted(self.created)
        summaries = [{"CatalogName": n, "Type": self.data_catalog(n)["Type"]} for n in names]
        return page(summaries, params, "DataCatalogsSummary")

    # -- databases and tables ----------------------------------------------------
    def list_databases(self, params: dict) -> dict:
        connector = self._connector(params["CatalogName"])
        if connector is not None:
            names = connector.call({"@type": "ListSchemasRequest"}, "listing schemas")["schemas"]
            databases = [{"Name": n} for n in sorted(names)]
        else:
            databases = [_database(d) for p in self.glue.get_paginator("get_databases").paginate()
                         for d in p["DatabaseList"]]
        if params.get("AttributesToGet") == ["DATABASE_NAME"]:
            databases = [{"Name": d["Name"]} for d in databases]
        return page(databases, params, "DatabaseList")

    def get_database(self, params: dict) -> dict:
        name = params["DatabaseName"].lower()
        connector = self._connector(params["CatalogName"])
        if connector is None:
            try:
                found = self.glue.get_database(Name=name)["Database"]
            except self.glue.exceptions.EntityNotFoundException:
                raise not_found(f"Database {name} not found.") from None
            return {"Database": _database(found)}
        schemas = connector.call({"@type": "ListSchemasRequest"}, "listing schemas")["schemas"]
        if name not in [s.lower() for s in schemas]:
            raise not_found(f"Database {name} not found.")
        return {"Database": {"Name": name}}

    def list_table_metadata(self, params: dict) -> dict:
        db, expression = params["DatabaseName"].lower(), params.get("Expression")
        connector = self._connector(params["CatalogName"])
        if connector is not None:
            listed = connector.call({"@type": "ListTablesRequest", "schemaName": db}, "listing tables")
            names = sorted(t["tableName"] for t in listed["tables"])
        else:
            try:
                tables = {t["Name"]: t for p in self.glue.get_paginator("get_tables").paginate(DatabaseName=db)
                          for t in p["TableList"]}
            except self.glue.exceptions.EntityNotFoundException:
                raise not_found(f"Database {db} not found.") from None
            names = sorted(tables)
        if expression:
            try:
                pattern = re.compile(expression, re.IGNORECASE)
            except re.error as err:
                raise InvalidRequestException(f"Expression {expression!r} is not a valid regex: {err}") from None
            names = [n for n in names if pattern.fullmatch(n)]
        wanted = params.get("AttributesToGet")   # TABLE_NAME, TABLE_TYPE: only those

        def describe(name: str) -> dict:
            if wanted and "TABLE_TYPE" not in wanted:
                return {"Name": name}
            full = self._federated_table(connector, db, name) if connector is not None else table_metadata(tables[name])
            return {k: full[k] for k in ("Name", "TableType")} if wanted else full
        selected = page(names, params, "TableMetadataList")
        selected["TableMetadataList"] = [describe(n) for n in selected["TableMetadataList"]]
        return selected

    def get_table_metadata(self, params: dict) -> dict:
        db, name = params["DatabaseName"].lower(), params["TableName"].lower()
        connector = self._connector(params["CatalogName"])
        if connector is not None:
            return {"TableMetadata": self._federated_table(connector, db, name)}
        self.get_database({"CatalogName": params["CatalogName"], "DatabaseName": db})
        try:
            return {"TableMetadata": table_metadata(self.glue.get_table(DatabaseName=db, Name=name)["Table"])}
        except self.glue.exceptions.EntityNotFoundException:
            raise not_found("Entity Not Found") from None

    # -- LAMBDA catalogs: their connector answers ---------------------------------
    def _connector(self, catalog: str):
        """None for a GLUE catalog (this account's Glue); the connector of a LAMBDA one."""
        found = self.data_catalog(catalog)
        if found["Type"] == "GLUE":
            return None
        function = found["Parameters"].get("function") or found["Parameters"].get("metadata-function")
        if found["Type"] != "LAMBDA" or not function:
            raise MetadataException(f"Catalog {catalog} of type {found['Type']} is not readable locally "
                                    "(GLUE and LAMBDA catalogs are)")
        from .federated import Connector
        asking = types.SimpleNamespace(client=self.client, query_id=str(uuid.uuid4()))
        return _Answers(Connector(asking, found["Name"], function))

    @staticmethod
    def _federated_table(connector, db: str, name: str) -> dict:
        reply = connector.call({"@type": "GetTableRequest",
                                "tableName": {"schemaName": db, "tableName": name}}, "retrieving meta-data")
        partitions = set(reply.get("partitionColumns") or [])
        fields = [{"Name": f["name"].lower(), "Type": f["type"].lower()} for f in reply["schema"]["fields"]]
        return {"Name": name, "TableType": "EXTERNAL_TABLE", "Parameters": {},
                "Columns": [f for f in fields if f["Name"] not in partitions],
                "PartitionKeys": [f for f in fields if f["Name"] in partitions]}


class _Answers:
    """A connector whose failures are MetadataExceptions (in a query they fail the query)."""

    def __init__(self, connector):
        self.connector = connector

    def call(self, request: dict, context: str) -> dict:
        try:
            return self.connector.call(request, context)
        except QueryFailed as failure:
            raise MetadataException(failure.reason) from None
