"""Amazon Athena on your laptop: Trino SQL on DuckDB over the stack's S3.

``api.py`` holds ``AthenaPlane``, the query API (see ``docs/adding_a_service.md``),
and ``metadata.py`` its catalog API (ListDataCatalogs ... GetTableMetadata,
read from Glue). ``engine.py`` parses and runs a statement on a cursor of the
plane's one DuckDB database: SELECT itself (its rows streamed), DDL through
``ddl.py``, CTAS / INSERT INTO / UNLOAD through ``writer.py``; ``dialect.py``
translates Trino SQL to DuckDB's where the two would answer differently.
``catalog.py`` speaks to the Glue Data Catalog, ``sources.py`` reads table
files from S3 (``federated.py`` reads tables through Lambda connectors),
``results.py`` prints values as Athena does and writes the result file, and
``errors.py`` names failures as Athena does. Heavy engines (DuckDB, sqlglot)
load with the first query. ``client.py`` is for the learner's side: running a
query with boto3 alone (:func:`run_query`), on the local stack or on AWS.
"""
from __future__ import annotations

from .api import AthenaPlane
from .client import QueryFailed, run_query, typed_frame, wait_for_query

__all__ = ["AthenaPlane", "QueryFailed", "run_query", "typed_frame", "wait_for_query"]
