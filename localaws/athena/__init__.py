"""Amazon Athena on your laptop: Trino SQL on DuckDB over the stack's S3.

Importing this package registers the Athena data plane (``api.py``).
``engine.py`` runs statements, ``sources.py`` reads table files,
``catalog.py``/``ddl.py`` talk to the Glue Data Catalog, ``writer.py`` writes
CTAS/INSERT/UNLOAD output. Heavy engines (DuckDB, sqlglot) load on first use.
"""
from .api import AthenaQueries

__all__ = ["AthenaQueries"]
