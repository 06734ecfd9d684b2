"""Redshift's system views, as SQL views over the warehouse's own bookkeeping.

Learners diagnose a Redshift table design with a few system views; each is
here a DuckDB view (in the schema ``main``, found by unqualified and
lower-case names: ``select * from svv_table_info``) over the catalog of
``storage.py`` and the query log below. Only the columns listed are kept,
with Redshift's names and meanings:

- ``STV_SLICES``: node, slice, localslice, type: the cluster's slices.
- ``STV_TBL_PERM``: slice, id, name, rows, sorted_rows, temp, db_id: rows per slice of each table.
- ``SVV_TABLE_INFO``: database, schema, table_id, "table", encoded, diststyle
  (``KEY(col)``, ``EVEN``, ``ALL``, ``AUTO(EVEN)``), sortkey1, sortkey_num,
  tbl_rows (one copy for ALL tables), skew_rows, unsorted, stats_off (0).
  Empty tables are left out, as on Redshift.
  ``skew_rows`` is Redshift's "ratio of the number of rows in the slice with
  the most rows to the number of rows in the slice with the fewest rows"; an
  empty slice counts here as 1 row (Redshift does not document its case), and
  ALL tables get NULL (every copy is whole). ``unsorted`` is the percent of
  rows outside the sorted region (NULL without a sort key).
- ``SVV_TABLES`` / ``SVV_COLUMNS``: what AWS's driver ``redshift_connector``
  reads for ``get_tables()`` / ``get_columns()``.
- ``STL_QUERY``: one row per statement (query, userid, database, querytxt,
  starttime, endtime, aborted, label).
- ``STL_LOAD_ERRORS``: one row per record a COPY rejected (``loading.py``):
  query, filename, line_number, colname, type, col_length, raw_line,
  raw_field_value, err_code and err_reason (Redshift's load error codes:
  1207 invalid digit, 1204 string longer than the column, 1213 NULL in a
  NOT NULL column, 1214 too few or too many fields...). Kept when the
  COPY fails: that is where you look to find out why.
- ``STL_LOAD_COMMITS``: one row per file a COPY read (lines_scanned, errors;
  status 1 when the load committed). ``SYS_LOAD_HISTORY``: one row per COPY
  (status, loaded_rows, source_file_count/bytes, error_count) and, as a
  local extra, the ``iam_role`` the statement named.
- ``STL_SCAN``: one row per slice per table scanned by a query: rows (after
  the filter), rows_pre_filter, is_rrscan ('t' when blocks were skipped by
  zone maps, Redshift's "range-restricted scan"), perm_table_name, and one
  local column, ``blocks_read`` / ``blocks_total`` (Redshift reports blocks
  in SYS_QUERY_DETAIL, also given here per table).
- ``SVL_QLOG``: STL_QUERY's readable subset, with ``source_query``: the query
  whose cached result this one returned (``cache.py``), NULL when it ran.
  ``SYS_QUERY_HISTORY`` shows the same as ``result_cache_hit`` (true/false).
- ``SVV_EXTERNAL_SCHEMAS``: the external schemas (``spectrum.py``): schemaname,
  databasename (the Glue database), esoptions (IAM_ROLE, REGION as JSON).
- ``SVL_S3QUERY``: one row per Spectrum worker per external table scanned:
  s3_scanned_rows/bytes (what the worker read from S3), s3query_returned_rows/bytes
  (what it sent back to the cluster), files; ``slice`` is the worker's number.
  ``SVL_S3QUERY_SUMMARY`` sums them per query and table (files, files_max,
  files_avg); ``SVL_S3PARTITION_SUMMARY`` gives total_partitions and
  qualified_partitions (those left after partition pruning). When the workers
  aggregated their files (``mpp.split_external``), s3query_returned_rows is
  the partial groups they sent, far fewer than s3_scanned_rows.
- ``SVL_QUERY_REPORT``: one row per step per slice of a query that ran per
  slice (``mpp.py``; a query that ran gathered has none): query, slice,
  segment (0 on the slices, 1 on the leader, whose slice is 6411), step,
  start_time, end_time, elapsed_time (microseconds, of the segment), rows
  (what the step produced on that slice), bytes, label (``scan   tbl=100100
  name=public.sales``, ``hjoin``, ``aggr``, ``sort``, ``window``, ``limit``,
  ``return``: Redshift's step names for DuckDB's operators), is_diskbased
  ('t' when DuckDB spilled to disk), workmem (here DuckDB's peak buffer
  memory of the step's query), is_rrscan, is_delayed_scan ('f'),
  rows_pre_filter, and the local column ``blocks_read`` of scan steps.
  ``SVL_QUERY_SUMMARY`` sums each step over the slices: stm, seg, step,
  maxtime, avgtime, rows, bytes, rate_row, rate_byte (per second), label,
  is_diskbased, workmem, is_rrscan, is_delayed_scan, rows_pre_filter.
"""
from __future__ import annotations

from .storage import CATALOG_SCHEMA as RS

LOGS = f"""
CREATE TABLE IF NOT EXISTS {RS}.stl_query (
    userid INTEGER, query INTEGER, label VARCHAR, database VARCHAR, querytxt VARCHAR,
    starttime TIMESTAMP, endtime TIMESTAMP, aborted INTEGER);
CREATE TABLE IF NOT EXISTS {RS}.stl_scan (
    userid INTEGER, query INTEGER, slice INTEGER, tbl INTEGER, perm_table_name VARCHAR,
    rows BIGINT, rows_pre_filter BIGINT, blocks_read BIGINT, blocks_total BIGINT);
CREATE TABLE IF NOT EXISTS {RS}.stl_load_errors (
    userid INTEGER, slice INTEGER, tbl INTEGER, starttime TIMESTAMP, session INTEGER, query INTEGER,
    filename VARCHAR, line_number BIGINT, colname VARCHAR, type VARCHAR, col_length INTEGER,
    position INTEGER, raw_line VARCHAR, raw_field_value VARCHAR, err_code INTEGER, err_reason VARCHAR);
CREATE TABLE IF NOT EXISTS {RS}.stl_load_commits (
    userid INTEGER, query INTEGER, slice INTEGER, filename VARCHAR, lines_scanned BIGINT, errors INTEGER,
    curtime TIMESTAMP, status INTEGER);
CREATE TABLE IF NOT EXISTS {RS}.sys_load_history (
    user_id INTEGER, query_id INTEGER, status VARCHAR, database_name VARCHAR, table_name VARCHAR,
    start_time TIMESTAMP, end_time TIMESTAMP, data_source VARCHAR, file_format VARCHAR, loaded_rows BIGINT,
    source_file_count INTEGER, source_file_bytes BIGINT, error_count INTEGER, iam_role VARCHAR);
CREATE TABLE IF NOT EXISTS {RS}.result_cache_hits (query INTEGER, source_query INTEGER);
CREATE TABLE IF NOT EXISTS {RS}.external_schemas (
    schema_name VARCHAR, glue_database VARCHAR, iam_role VARCHAR, region VARCHAR);
CREATE TABLE IF NOT EXISTS {RS}.svl_s3query (
    userid INTEGER, query INTEGER, segment INTEGER, step INTEGER, node INTEGER, slice INTEGER,
    starttime TIMESTAMP, endtime TIMESTAMP, elapsed BIGINT, external_table_name VARCHAR, file_format VARCHAR,
    is_partitioned VARCHAR, s3_scanned_rows BIGINT, s3_scanned_bytes BIGINT, s3query_returned_rows BIGINT,
    s3query_returned_bytes BIGINT, files INTEGER, total_partitions INTEGER, qualified_partitions INTEGER);
CREATE TABLE IF NOT EXISTS {RS}.svl_query_report (
    userid INTEGER, query INTEGER, slice INTEGER, segment INTEGER, step INTEGER, start_time TIMESTAMP,
    end_time TIMESTAMP, elapsed_time BIGINT, rows BIGINT, bytes BIGINT, label VARCHAR, is_diskbased VARCHAR,
    workmem BIGINT, is_rrscan VARCHAR, is_delayed_scan VARCHAR, rows_pre_filter BIGINT, blocks_read BIGINT);
CREATE OR REPLACE TABLE {RS}.slices (node INTEGER, slice INTEGER, localslice INTEGER);
CREATE OR REPLACE TABLE {RS}.pg_types (duckdb_type VARCHAR, type_name VARCHAR);
"""

#: Schemas of the warehouse's internals, hidden from SVV_TABLES and SVV_COLUMNS.
INTERNAL = f"('main', '{RS}', 'information_schema', 'pg_catalog') "

VIEWS = {
    "stv_slices": f"SELECT node, slice, localslice, 'D' AS type FROM {RS}.slices",
    "stv_tbl_perm": f"""
        SELECT r.slice, r.table_id AS id, t.table_name AS name, r.rows, r.sorted_rows,
               0 AS temp, 1 AS db_id
        FROM {RS}.slice_rows r JOIN {RS}.tables t USING (table_id)""",
    "svv_table_info": f"""
        WITH per_table AS (
            SELECT table_id, sum(rows) AS rows, sum(sorted_rows) AS sorted_rows,
                   max(rows) AS max_rows, min(rows) AS min_rows, count(*) AS copies
            FROM {RS}.slice_rows GROUP BY table_id)
        SELECT current_database() AS database, t.schema_name AS schema, t.table_id, t.table_name AS "table",
               'N' AS encoded,
               CASE t.diststyle WHEN 'KEY' THEN 'KEY(' || t.distkey || ')'
                                WHEN 'AUTO' THEN 'AUTO(EVEN)' ELSE t.diststyle END AS diststyle,
               t.sortkey[1] AS sortkey1, len(t.sortkey) AS sortkey_num,
               CASE WHEN t.diststyle = 'ALL' THEN p.max_rows ELSE p.rows END AS tbl_rows,
               CASE WHEN t.diststyle = 'ALL' THEN NULL
                    ELSE round(p.max_rows / greatest(p.min_rows, 1), 2) END AS skew_rows,
               CASE WHEN len(t.sortkey) = 0 THEN NULL
                    ELSE round(100.0 * (p.rows - p.sorted_rows) / p.rows, 2) END AS unsorted,
               0.0 AS stats_off
        FROM {RS}.tables t JOIN per_table p USING (table_id)
        WHERE p.rows > 0""",
    "svv_tables": f"""
        SELECT current_database() AS table_catalog, schema_name AS table_schema, table_name,
               'BASE TABLE' AS table_type, NULL::VARCHAR AS remarks
        FROM {RS}.tables
        UNION ALL
        SELECT database_name, schema_name, view_name, 'VIEW', NULL
        FROM duckdb_views() v
        WHERE database_name = current_database() AND NOT internal
          AND schema_name NOT IN {INTERNAL} AND schema_name NOT LIKE 'slice\\_%' ESCAPE '\\'
          AND NOT EXISTS (SELECT 1 FROM {RS}.tables t
                          WHERE t.schema_name = v.schema_name AND t.table_name = v.view_name)
        UNION ALL
        SELECT database_name, schema_name, table_name, 'BASE TABLE', NULL
        FROM duckdb_tables()
        WHERE database_name = current_database() AND NOT internal
          AND schema_name NOT IN {INTERNAL} AND schema_name NOT LIKE 'slice\\_%' ESCAPE '\\'""",
    "svv_columns": f"""
        SELECT c.database_name AS table_catalog, c.schema_name AS table_schema, c.table_name,
               c.column_name, c.column_index AS ordinal_position, c.column_default,
               CASE WHEN c.is_nullable THEN 'YES' ELSE 'NO' END AS is_nullable,
               coalesce(p.type_name, 'character varying') AS data_type,
               c.character_maximum_length, c.numeric_precision, c.numeric_scale,
               NULL::VARCHAR AS domain_name, NULL::VARCHAR AS remarks
        FROM duckdb_columns() c
        LEFT JOIN {RS}.pg_types p ON p.duckdb_type = split_part(c.data_type, '(', 1)
        WHERE c.database_name = current_database() AND NOT c.internal
          AND c.schema_name NOT IN {INTERNAL} AND c.schema_name NOT LIKE 'slice\\_%' ESCAPE '\\'""",
    "stl_query": f"SELECT * FROM {RS}.stl_query",
    "stl_scan": f"""
        SELECT userid, query, slice, 0 AS segment, 0 AS step, 2 AS type, tbl, perm_table_name,
               rows, rows_pre_filter,
               CASE WHEN blocks_read < blocks_total THEN 't' ELSE 'f' END AS is_rrscan,
               blocks_read, blocks_total
        FROM {RS}.stl_scan""",
    "stl_load_errors": f"SELECT * FROM {RS}.stl_load_errors",
    "stl_load_commits": f"""
        SELECT userid, query, slice, filename AS name, filename, lines_scanned, errors, curtime, status
        FROM {RS}.stl_load_commits""",
    "sys_load_history": f"""
        SELECT *, epoch_us(end_time) - epoch_us(start_time) AS duration FROM {RS}.sys_load_history""",
    "sys_query_detail": f"""
        SELECT userid AS user_id, query AS query_id, 'scan' AS step_name, tbl AS table_id,
               perm_table_name AS table_name, sum(rows_pre_filter) AS input_rows,
               sum(rows) AS output_rows, sum(blocks_read) AS blocks_read
        FROM {RS}.stl_scan GROUP BY ALL""",
    "svl_qlog": f"""
        SELECT q.userid, q.query, NULL::BIGINT AS xid, NULL::INTEGER AS pid, q.starttime, q.endtime,
               epoch_us(q.endtime) - epoch_us(q.starttime) AS elapsed, q.aborted, q.label,
               left(q.querytxt, 60) AS substring, h.source_query
        FROM {RS}.stl_query q LEFT JOIN {RS}.result_cache_hits h USING (query)""",
    "sys_query_history": f"""
        SELECT q.userid AS user_id, q.query AS query_id, q.database AS database_name, q.label AS query_label,
               q.starttime AS start_time, q.endtime AS end_time,
               epoch_us(q.endtime) - epoch_us(q.starttime) AS elapsed_time,
               h.source_query IS NOT NULL AS result_cache_hit, q.querytxt AS query_text
        FROM {RS}.stl_query q LEFT JOIN {RS}.result_cache_hits h USING (query)""",
    "svv_external_schemas": f"""
        SELECT 100000 + row_number() OVER () AS esoid, 1 AS eskind, schema_name AS schemaname, 100 AS esowner,
               glue_database AS databasename,
               CASE WHEN region IS NULL THEN json_object('IAM_ROLE', iam_role)
                    ELSE json_object('IAM_ROLE', iam_role, 'REGION', region) END::VARCHAR AS esoptions
        FROM {RS}.external_schemas""",
    "svl_s3query": f"""
        SELECT userid, query, segment, step, node, slice, starttime, endtime, elapsed, external_table_name,
               is_partitioned, 'f' AS is_rrscan, s3_scanned_rows, s3_scanned_bytes, s3query_returned_rows,
               s3query_returned_bytes, files
        FROM {RS}.svl_s3query""",
    "svl_s3query_summary": f"""
        SELECT userid, query, segment, step, min(starttime) AS starttime, max(endtime) AS endtime,
               epoch_us(max(endtime)) - epoch_us(min(starttime)) AS elapsed, 0 AS aborted,
               external_table_name, any_value(file_format) AS file_format, any_value(is_partitioned)
               AS is_partitioned, 'f' AS is_rrscan, 'f' AS is_nested,
               sum(s3_scanned_rows) AS s3_scanned_rows, sum(s3_scanned_bytes) AS s3_scanned_bytes,
               sum(s3query_returned_rows) AS s3query_returned_rows,
               sum(s3query_returned_bytes) AS s3query_returned_bytes, sum(files)::INTEGER AS files,
               max(files) AS files_max, round(avg(files))::INTEGER AS files_avg
        FROM {RS}.svl_s3query GROUP BY userid, query, segment, step, external_table_name""",
    "svl_query_report": f"SELECT * FROM {RS}.svl_query_report",
    "svl_query_summary": f"""
        SELECT userid, query, segment AS stm, segment AS seg, step, max(elapsed_time) AS maxtime,
               round(avg(elapsed_time))::BIGINT AS avgtime, sum(rows) AS rows, sum(bytes) AS bytes,
               CASE WHEN max(elapsed_time) > 0 THEN sum(rows) * 1e6 / max(elapsed_time) END AS rate_row,
               CASE WHEN max(elapsed_time) > 0 THEN sum(bytes) * 1e6 / max(elapsed_time) END AS rate_byte,
               label, max(is_diskbased) AS is_diskbased, max(workmem) AS workmem, max(is_rrscan) AS is_rrscan,
               max(is_delayed_scan) AS is_delayed_scan, sum(rows_pre_filter) AS rows_pre_filter
        FROM {RS}.svl_query_report GROUP BY userid, query, segment, step, label""",
    "svl_s3partition_summary": f"""
        SELECT query, segment, min(starttime) AS min_starttime, max(endtime) AS max_endtime,
               max(total_partitions) AS total_partitions, max(qualified_partitions) AS qualified_partitions
        FROM {RS}.svl_s3query WHERE is_partitioned = 't' GROUP BY query, segment""",
}


def install(cursor, layout, pg_types: dict) -> None:
    """Create the log tables and the views; ``pg_types``: DuckDB type -> (Redshift name, OID)."""
    cursor.execute(LOGS)
    cursor.execute(f"INSERT INTO {RS}.slices SELECT s // ?, s, s % ? FROM range(?) t(s)",
                   [layout.per_node, layout.per_node, layout.count])
    cursor.executemany(f"INSERT INTO {RS}.pg_types VALUES (?, ?)",
                       [(duckdb_type, type_name) for duckdb_type, (type_name, _) in pg_types.items()])
    for name, sql in VIEWS.items():
        cursor.execute(f"CREATE OR REPLACE VIEW main.{name} AS {sql}")
