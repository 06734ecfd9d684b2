"""Amazon Redshift on a real warehouse: clusters, SQL over the PostgreSQL wire, the Data API.

moto keeps the cluster and snapshot records; this package runs a database
behind each cluster (``engine.py``, DuckDB), serves it on the cluster's
endpoint with the PostgreSQL wire protocol (``wire.py``) for AWS's driver
``redshift_connector`` and for psycopg, and executes the Redshift Data API
(``api.py``) against it:

- ``engine.py``: :class:`~.engine.Warehouse`: one statement at a time, Redshift
  SQL (sqlglot) on DuckDB, with ``ddl.py`` (CREATE TABLE's DISTSTYLE, DISTKEY,
  SORTKEY), ``storage.py`` (every table's rows split over the slices, the
  unsorted region, VACUUM), ``planner.py`` (EXPLAIN's data movement steps)
  and ``system_views.py`` (SVV_TABLE_INFO, STV_SLICES, SVV_TABLES...);
- ``mpp.py``: a SELECT cut into per-slice steps that run at once on threads
  (scans, filters, partial aggregates) and a leader step that merges them;
  SVL_QUERY_REPORT shows what each step did on each slice;
- ``loading.py``: COPY from S3 (CSV, text, JSON 'auto', Parquet, manifests;
  bad rows into STL_LOAD_ERRORS, all-or-nothing beyond MAXERROR) and UNLOAD;
- ``snapshots.py``: snapshots as content-addressed blocks in S3 (a second
  snapshot uploads only changed blocks), restore, cross-region copy; the
  automated ones come every 8 hours of the stack's clock (``api.py``);
- ``resize.py``: classic and elastic resize, the rows moved to the new slices;
- ``spectrum.py``: external schemas over the Glue Data Catalog, scanned from S3
  by a pool of workers with filters, columns and aggregates pushed down;
- ``cache.py``: the result cache (same text, unchanged tables -> no work);
- ``wire.py``: the PostgreSQL wire protocol on the cluster's endpoint;
- ``api.py``: :class:`RedshiftPlane`: CreateCluster checks NodeType and the
  node count, starts the warehouse and its server (DescribeClusters shows a
  real ``Endpoint``); Pause/Resume/DeleteCluster stop and start them; the
  Data API (``redshift-data``) runs statements asynchronously;
- ``nodes.py``: slices per node of each node type (a dated table, with its source);
- ``errors.py``: SQL errors (SQLSTATE) and the API's error codes.

"""
from .api import RedshiftPlane
from .nodes import SLICES_PER_NODE, slices_per_node

__all__ = ["RedshiftPlane", "SLICES_PER_NODE", "slices_per_node"]
