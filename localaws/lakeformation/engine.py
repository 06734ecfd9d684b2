"""Checks and views for the Lake Formation API; the state itself is not here.

Lake Formation's state (settings, registrations, grants, LF-Tags, data cells
filters, opt-ins) and its decisions live in ``localaws/core/lake.py``
(``ctx.lake``), because every engine (Athena, Glue, S3, Spectrum) asks them
per query and services do not import each other. This module is what the
API needs on top: validating a request's ``Resource``, ``Principal`` and
``Permissions`` against the catalog the way Lake Formation does (raising the
errors of ``errors.py`` before anything is written), and turning the state
into response shapes (ListPermissions entries, LF-Tag lists).
"""
from __future__ import annotations

import re

import sqlglot

from localaws.core.lake import IAM_ALLOWED_PRINCIPALS, PERMISSIONS, LakePolicy, resource_key

from . import errors

RESOURCE_KINDS = ("Catalog", "Database", "Table", "TableWithColumns", "DataLocation", "DataCellsFilter",
                  "LFTag", "LFTagPolicy")
TABLE_PERMISSIONS = {"ALL", "SELECT", "ALTER", "DROP", "DELETE", "INSERT", "DESCRIBE"}
DATABASE_PERMISSIONS = {"ALL", "ALTER", "CREATE_TABLE", "DESCRIBE", "DROP"}
#: Which permissions apply to which resource (Lake Formation permissions reference:
#: https://docs.aws.amazon.com/lake-formation/latest/dg/lf-permissions-reference.html).
APPLICABLE = {
    "catalog": {"ALL", "CREATE_DATABASE", "CREATE_LF_TAG", "CREATE_CATALOG", "DESCRIBE", "ALTER", "DROP",
                "SUPER_USER", "CREATE_LF_TAG_EXPRESSION"},
    "database": DATABASE_PERMISSIONS,
    "table": TABLE_PERMISSIONS,
    "columns": {"SELECT"},
    "data_location": {"DATA_LOCATION_ACCESS"},
    "cells_filter": {"SELECT", "DESCRIBE", "DROP"},
    "lf_tag": {"DESCRIBE", "ASSOCIATE", "ALTER", "DROP", "GRANT_WITH_LF_TAG_EXPRESSION"},
    "lf_tag_policy:DATABASE": DATABASE_PERMISSIONS,
    "lf_tag_policy:TABLE": TABLE_PERMISSIONS,
}
PRINCIPAL = re.compile(r"^(IAM_ALLOWED_PRINCIPALS|\d{12}|arn:aws:iam::\d{12}:(user|role|saml-provider)/.+"
                       r"|arn:aws:quicksight:[a-z0-9-]+:\d{12}:(user|group)/.+"
                       r"|arn:aws:organizations::\d{12}:(organization|ou)/.+)$")
S3_ARN = re.compile(r"^arn:aws:s3:::[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9](/.*)?$")
MAX_TAG_VALUES = 1000
MAX_TAG_VALUES_PER_CALL = 50
DENIED = "Resource does not exist or requester is not authorized to access requested permissions."


def principal(value: dict | None) -> str:
    """The ``DataLakePrincipalIdentifier`` of a request's ``Principal``, checked."""
    identifier = (value or {}).get("DataLakePrincipalIdentifier")
    if not identifier or not PRINCIPAL.match(identifier):
        raise errors.InvalidInputException(f"Invalid principal: {identifier!r}. Expected IAM_ALLOWED_PRINCIPALS, "
                                           "an IAM user or role ARN, a SAML or QuickSight user or group ARN, "
                                           "an account id or an organization ARN.")
    return identifier


def only_one(resource: dict | None, kinds=RESOURCE_KINDS) -> str:
    given = [k for k in kinds if k in (resource or {})]
    extra = [k for k in (resource or {}) if k not in kinds]
    if extra:
        raise errors.InvalidInputException(f"Resource type {extra[0]} is not supported here.")
    if len(given) != 1:
        raise errors.InvalidInputException("Exactly one resource must be specified: "
                                           f"one of {', '.join(kinds)}.")
    return given[0]


def _catalog_id(lake: LakePolicy, value: str | None) -> None:
    if value not in (None, lake.ctx.account_id):
        raise errors.InvalidInputException(f"Catalog {value} is not this account's catalog ({lake.ctx.account_id}); "
                                           "cross-account grants are not emulated by the local stack.")


def check_database(catalog, name: str) -> dict:
    database = catalog.database(name)
    if database is None:
        raise errors.EntityNotFoundException(f"Database {name} not found.")
    return database


def check_table(catalog, database: str, name: str) -> dict:
    check_database(catalog, database)
    table = catalog.table(database, name)
    if table is None:
        raise errors.EntityNotFoundException(f"Table {name} not found.")
    return table


def check_columns(catalog, database: str, table: str, names) -> None:
    known = set(catalog.columns(database, table))
    missing = [c for c in names if c not in known]
    if missing:
        raise errors.InvalidInputException(f"Column(s) {', '.join(missing)} not found in table {database}.{table}.")


def check_resource(lake: LakePolicy, resource: dict, catalog=None) -> tuple:
    """Validate a ``Resource`` against the catalog and the state; returns its key (``core/lake.resource_key``)."""
    catalog = catalog or lake.catalog()
    kind = only_one(resource)
    body = resource[kind] if isinstance(resource[kind], dict) else {}
    _catalog_id(lake, body.get("CatalogId") or body.get("TableCatalogId") or body.get("Id"))
    if kind == "Database":
        if not body.get("Name"):
            raise errors.InvalidInputException("Database name is required.")
        check_database(catalog, body["Name"])
    elif kind == "Table":
        if not body.get("DatabaseName"):
            raise errors.InvalidInputException("Table's DatabaseName is required.")
        if ("Name" in body) == ("TableWildcard" in body):
            raise errors.InvalidInputException("Exactly one of Table Name or TableWildcard must be specified.")
        if "Name" in body:
            check_table(catalog, body["DatabaseName"], body["Name"])
        else:
            check_database(catalog, body["DatabaseName"])
    elif kind == "TableWithColumns":
        if not body.get("DatabaseName") or not body.get("Name"):
            raise errors.InvalidInputException("TableWithColumns needs DatabaseName and Name.")
        if ("ColumnNames" in body) == ("ColumnWildcard" in body):
            raise errors.InvalidInputException("Exactly one of ColumnNames or ColumnWildcard must be specified.")
        check_table(catalog, body["DatabaseName"], body["Name"])
        if "ColumnNames" in body:
            if not body["ColumnNames"]:
                raise errors.InvalidInputException("ColumnNames must not be empty.")
            check_columns(catalog, body["DatabaseName"], body["Name"], body["ColumnNames"])
        else:
            check_columns(catalog, body["DatabaseName"], body["Name"],
                          body["ColumnWildcard"].get("ExcludedColumnNames", []))
    elif kind == "DataLocation":
        arn = body.get("ResourceArn", "")
        if not S3_ARN.match(arn):
            raise errors.InvalidInputException(f"Invalid S3 location ARN: {arn!r}.")
        if lake.registered(arn) is None:
            raise errors.InvalidInputException(f"Location {arn} is not registered with Lake Formation.")
    elif kind == "DataCellsFilter":
        key = (body.get("DatabaseName"), body.get("TableName"), body.get("Name"))
        if not all(key):
            raise errors.InvalidInputException("DataCellsFilter needs DatabaseName, TableName and Name.")
        if key not in lake.cells_filters:
            raise errors.EntityNotFoundException(f"Data cells filter {key[2]} not found on {key[0]}.{key[1]}.")
    elif kind == "LFTag":
        tag_values(lake, body.get("TagKey"), body.get("TagValues"))
    elif kind == "LFTagPolicy":
        if body.get("ResourceType") not in ("DATABASE", "TABLE"):
            raise errors.InvalidInputException("LFTagPolicy ResourceType must be DATABASE or TABLE.")
        if not body.get("Expression"):
            raise errors.InvalidInputException("LFTagPolicy needs a non-empty Expression "
                                               "(named expressions are not emulated).")
        for term in body["Expression"]:
            tag_values(lake, term.get("TagKey"), term.get("TagValues"))
    return resource_key(resource)


def tag_values(lake: LakePolicy, key: str | None, values) -> None:
    """An LF-Tag key and values that must exist."""
    if not key:
        raise errors.InvalidInputException("TagKey is required.")
    if not values:
        raise errors.InvalidInputException(f"TagValues of {key} must not be empty.")
    known = lake.lf_tags.get(key)
    if known is None:
        raise errors.EntityNotFoundException(f"Tag key {key} does not exist.")
    unknown = [v for v in values if v != "*" and v not in known]
    if unknown:
        raise errors.InvalidInputException(f"Tag value(s) {', '.join(unknown)} do not exist for tag key {key}.")


def applicable(key: tuple, resource: dict) -> set[str]:
    kind = key[0]
    if kind == "lf_tag_policy":
        return APPLICABLE[f"lf_tag_policy:{key[1]}"]
    if kind == "columns" and "ColumnWildcard" in resource["TableWithColumns"] \
            and not resource["TableWithColumns"]["ColumnWildcard"].get("ExcludedColumnNames"):
        return TABLE_PERMISSIONS
    return APPLICABLE[kind]


def check_permissions(key: tuple, resource: dict, permissions, grantable) -> tuple[set[str], set[str]]:
    permissions, grantable = list(permissions or []), list(grantable or [])
    if not permissions:
        raise errors.InvalidInputException("Permissions must not be empty.")
    unknown = [p for p in permissions + grantable if p not in PERMISSIONS]
    if unknown:
        raise errors.InvalidInputException(f"Unknown permission(s): {', '.join(unknown)}.")
    allowed = applicable(key, resource)
    wrong = [p for p in permissions + grantable if p not in allowed]
    if wrong:
        raise errors.InvalidInputException(f"Permissions modification is invalid: {', '.join(sorted(set(wrong)))} "
                                           f"cannot be granted on this resource (allowed: "
                                           f"{', '.join(sorted(allowed))}).")
    if not set(grantable) <= set(permissions) and "ALL" not in permissions:
        raise errors.InvalidInputException("PermissionsWithGrantOption must be a subset of Permissions.")
    return set(permissions), set(grantable)


def check_filter_expression(expression: str, columns: list[str]) -> None:
    """A row filter: a SQL boolean expression over the table's columns, within Lake Formation's
    PartiQL subset (no functions, columns compared with constants only, under 2048 characters:
    https://docs.aws.amazon.com/lake-formation/latest/dg/partiql-support.html)."""
    def bad(why: str):
        return errors.InvalidInputException(f"Invalid row filter expression {expression!r}: {why}")

    if len(expression) >= 2048:
        raise bad("it must be shorter than 2048 characters.")
    try:
        parsed = sqlglot.parse_one(expression, read="trino")
    except sqlglot.errors.ParseError as exc:
        raise bad(str(exc).splitlines()[0]) from None
    known = {c.lower() for c in columns}
    for column in parsed.find_all(sqlglot.exp.Column):
        if column.name.lower() not in known:
            raise bad(f"column {column.name} is not in the table.")
    for node in parsed.walk():
        if isinstance(node, sqlglot.exp.Func):
            raise bad("functions are not allowed.")
        if isinstance(node, sqlglot.exp.Binary) and not isinstance(node, sqlglot.exp.Connector) \
                and isinstance(node.left, sqlglot.exp.Column) and isinstance(node.right, sqlglot.exp.Column):
            raise bad("a column can be compared with constants only, not with another column.")


def permission_entry(lake: LakePolicy, principal_id: str, resource: dict, permissions, grantable) -> dict:
    return {"Principal": {"DataLakePrincipalIdentifier": principal_id}, "Resource": resource,
            "Permissions": sorted(permissions), "PermissionsWithGrantOption": sorted(grantable)}


def implicit_entries(lake: LakePolicy, databases: list[str] | None = None, kinds=("database", "table")):
    """The ``IAM_ALLOWED_PRINCIPALS`` ALL grants that hold by default (see ``core/lake.py``)."""
    catalog = lake.catalog()
    account = lake.ctx.account_id
    found = []
    for database in databases if databases is not None else catalog.databases():
        if catalog.database(database) is None:
            continue
        if "database" in kinds and lake.iam_allowed(database, None, catalog):
            found.append(permission_entry(lake, IAM_ALLOWED_PRINCIPALS,
                                          {"Database": {"CatalogId": account, "Name": database}}, ["ALL"], []))
        if "table" in kinds:
            for table in catalog.tables(database):
                if lake.iam_allowed(database, table["Name"], catalog):
                    found.append(permission_entry(
                        lake, IAM_ALLOWED_PRINCIPALS,
                        {"Table": {"CatalogId": account, "DatabaseName": database, "Name": table["Name"]}},
                        ["ALL"], []))
    return found


def tag_pairs(lake: LakePolicy, tags: dict[str, str]) -> list[dict]:
    return [{"CatalogId": lake.ctx.account_id, "TagKey": k, "TagValues": [v]} for k, v in sorted(tags.items())]
