"""AWS Lake Formation on your laptop: one set of grants, enforced by every engine that reads.

``api.py`` (``LakeFormationPlane``) answers the Lake Formation API (settings,
registered locations, grants and revokes, data cells filters, LF-Tags,
hybrid-mode opt-ins); ``engine.py`` validates requests against the Glue
catalog and shapes answers. The state and the decisions ("which tables,
columns and rows may this principal read?") live in ``localaws/core/lake.py``
as ``ctx.lake``, because Athena, Glue and S3 ask them on every read.

Building the lake: ``blueprints.py`` runs what a Lake Formation database
blueprint's workflow does (snapshot or incremental ingestion of SQLite,
PostgreSQL-protocol and DynamoDB tables into partitioned Parquet with catalog
tables); ``findmatches.py`` deduplicates near-duplicate records as Glue's
FindMatches ML transform does, with splink on DuckDB.
"""
from .api import LakeFormationPlane

__all__ = ["LakeFormationPlane"]
