"""Apache Iceberg tables in the stack's Glue Data Catalog, through pyiceberg.

An Iceberg table is files plus a pointer. Its data files (Parquet) and its
metadata (a ``metadata.json`` per commit, manifest lists, manifests) live in
S3 under the table's location; the **catalog** holds only which
``metadata.json`` is current. AWS's catalog for Iceberg is the Glue Data
Catalog: a table whose ``Parameters`` say ``table_type=ICEBERG`` and
``metadata_location=s3://.../metadata/00003-....metadata.json``. A commit
writes new metadata files and then swaps that pointer in Glue with
``UpdateTable``, which succeeds only if nobody else swapped it first
(optimistic concurrency: Glue's ``VersionId``, and Iceberg's own checks of
what changed in between). Athena, Glue jobs (Spark), Firehose and
Lake Formation all meet Iceberg there.

This module gives the stand-ins one way to open that catalog: pyiceberg's
``GlueCatalog`` (https://py.iceberg.apache.org/configuration/#glue-catalog)
pointed at the local endpoint, reading and writing S3 through the same
endpoint, signed with a given access key so the endpoint's byte meter counts
what a reader took (Athena's bytes scanned). The table format itself
(snapshots, manifests, deletes, schema evolution) is pyiceberg's: no
table-format code lives in this course.

    >>> cat = catalog(ctx)                     # the stack's administrator
    >>> table = cat.load_table("sales.orders") # pyiceberg.table.Table
    >>> table.scan(row_filter="day = '2024-01-01'").to_arrow()
"""
from __future__ import annotations

import logging

#: Glue table parameters by which AWS services recognise an Iceberg table.
TABLE_TYPE = "ICEBERG"

# pyiceberg logs each retried commit at WARNING; its exception says what failed.
logging.getLogger("pyiceberg").setLevel(logging.ERROR)


def is_iceberg(glue_table: dict) -> bool:
    """Whether ``glue.get_table()["Table"]`` is an Iceberg table (``table_type`` is case-insensitive)."""
    return (glue_table.get("Parameters") or {}).get("table_type", "").upper() == TABLE_TYPE


def is_current_column(column: dict) -> bool:
    """False for a column an Iceberg table's schema no longer has: Glue keeps the renamed and
    dropped columns of an Iceberg table in ``Columns``, with ``iceberg.field.current=false``."""
    return (column.get("Parameters") or {}).get("iceberg.field.current", "true") != "false"


def properties(endpoint: str, region: str, access_key: str, secret_key: str = "localaws") -> dict[str, str]:
    """pyiceberg catalog properties for the local endpoint: Glue and S3 both there, path-style
    S3 addressing (the endpoint is one host), requests signed with ``access_key``."""
    return {
        "glue.endpoint": endpoint, "glue.region": region,
        "glue.access-key-id": access_key, "glue.secret-access-key": secret_key,
        "s3.endpoint": endpoint, "s3.region": region,
        "s3.access-key-id": access_key, "s3.secret-access-key": secret_key,
        "s3.force-virtual-addressing": "false",
        "py-io-impl": "pyiceberg.io.pyarrow.PyArrowFileIO",
    }


def catalog(ctx, access_key: str | None = None, *, glue=None):
    """pyiceberg's ``GlueCatalog`` on the stack: ``glue`` is the boto3 Glue client to commit with
    (it decides whose Lake Formation permissions apply; default: the administrator's), and
    ``access_key`` signs the S3 reads and writes (default: the administrator's key)."""
    key = access_key or ctx.env()["AWS_ACCESS_KEY_ID"]
    return catalog_on(ctx.endpoint, ctx.region, glue or ctx.client("glue"), key)


def catalog_on(endpoint: str, region: str, glue, access_key: str):
    """pyiceberg's ``GlueCatalog`` committing through the boto3 client ``glue`` and reading S3
    signed with ``access_key`` (for a stand-in that has no :class:`Context`, only clients)."""
    from pyiceberg.catalog.glue import GlueCatalog
    return GlueCatalog("awsdatacatalog", client=glue, **properties(endpoint, region, access_key))
