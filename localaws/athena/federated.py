"""Federated query: tables read by connectors that run as Lambda functions.

(To be written: see issue 3, ATH-14.) ``source(statement, catalog, db, table)``
returns an object with ``register(con, view_name)`` and ``files_opened``.
"""
from .errors import QueryFailed


def source(statement, catalog: str, database: str, table: str):
    raise QueryFailed("CATALOG_NOT_FOUND", f"Catalog '{catalog}' does not exist")
