"""Apache Iceberg tables in Athena: ACID changes, snapshots, time travel, compaction.

A Hive-style table (chapters 01-02) is a folder: Athena reads whatever files
are under its ``LOCATION``, and changing one row means rewriting files by
hand. An **Iceberg** table is a folder *plus a log*: every change writes new
data files and a new ``metadata.json`` that lists exactly which files make up
the table now (a **snapshot**), and the Glue catalog's ``metadata_location``
points at the current one. That log is what makes these statements possible
(https://docs.aws.amazon.com/athena/latest/ug/querying-iceberg.html):

- ``CREATE TABLE ... TBLPROPERTIES ('table_type'='ICEBERG')`` (no EXTERNAL)
  with hidden partitioning (``PARTITIONED BY (day(ts), bucket(16, id))``),
  and CTAS ``WITH (table_type = 'ICEBERG', ...)``;
- ``INSERT INTO``, ``UPDATE``, ``DELETE``, ``MERGE INTO``: each one commit,
  one new snapshot, all or nothing;
- time travel: ``FOR VERSION AS OF <snapshot id>``,
  ``FOR TIMESTAMP AS OF <timestamp>``; the metadata tables ``"t$snapshots"``,
  ``"t$history"``, ``"t$files"``, ``"t$partitions"``, ``"t$manifests"``, ``"t$refs"``;
- schema evolution: ``ALTER TABLE ADD COLUMNS / DROP COLUMN / CHANGE COLUMN``
  change metadata only, no data file is rewritten;
- ``OPTIMIZE t REWRITE DATA USING BIN_PACK [WHERE ...]`` compacts small files
  (one snapshot), ``VACUUM t`` expires old snapshots and deletes the
  files nothing references any more.

How the stand-in does it: the table format is **pyiceberg**'s, on the
stack's Glue catalog (``localaws/core/iceberg.py``); DuckDB computes. A
query plans its files with pyiceberg (partition values and column statistics
in the manifests prune whole files: that is Iceberg's partition pruning),
reads them signed with the query's key (so ``DataScannedInBytes`` counts the
data files read; metadata reads are not counted) and hands the rows to
DuckDB as a view. A change (UPDATE, DELETE, MERGE) loads only the rows its
condition can touch (every row of the data files the condition can match),
runs the statement on DuckDB against them, and commits one snapshot with
pyiceberg: those files out, their rows as changed in (copy-on-write).
Athena writes merge-on-read instead (small position-delete files that name
the deleted rows, folded in later by ``OPTIMIZE``); readers see the same
rows either way.

Commits are optimistic, as Iceberg defines: a writer that finds the table
changed under it retries when the two changes cannot conflict (two appends)
and fails otherwise, with ``ICEBERG_COMMIT_ERROR``; the table stays as the
winner left it.
"""
from __future__ import annotations

import re
from datetime import datetime, timezone

import pyarrow as pa
import sqlglot
from sqlglot import exp

from localaws.core import iceberg as core_iceberg
from localaws.core.s3 import split
from .ddl import column_type
from .errors import DDL_FAILED, PERMISSION, QueryFailed
from .results import Result
from .sources import duck_type, ident

#: The metadata tables a query may read as ``"table$name"`` (Trino's Iceberg connector).
METADATA_TABLES = ("snapshots", "history", "files", "partitions", "manifests", "refs")

#: Athena's defaults for the VACUUM table properties.
#: https://docs.aws.amazon.com/athena/latest/ug/querying-iceberg-creating-tables.html
VACUUM_MAX_SNAPSHOT_AGE_SECONDS = 432000        # 5 days
VACUUM_MIN_SNAPSHOTS_TO_KEEP = 1

#: Table properties Athena accepts on Iceberg tables (others fail, as on Athena).
ATHENA_PROPERTIES = {"table_type", "format", "write_compression", "write_target_data_file_size_bytes",
                     "optimize_rewrite_min_data_file_size_bytes", "optimize_rewrite_max_data_file_size_bytes",
                     "optimize_rewrite_data_file_threshold", "optimize_rewrite_delete_file_threshold",
                     "vacuum_min_snapshots_to_keep", "vacuum_max_snapshot_age_seconds",
                     "vacuum_max_metadata_files_to_keep", "comment"}

_TRANSFORMS = {exp.Year: "year", exp.Month: "month", exp.Day: "day"}


# --------------------------------------------------------------------------
# Opening tables
# --------------------------------------------------------------------------
def is_iceberg(table) -> bool:
    """Whether a catalog :class:`~localaws.athena.catalog.Table` is an Iceberg table."""
    return table.params.get("table_type", "").upper() == core_iceberg.TABLE_TYPE


def _catalog(stmt):
    """pyiceberg's Glue catalog as this statement sees it: commits through the statement's
    Glue client (its principal), metadata read with a key the byte meter does not count."""
    return core_iceberg.catalog_on(stmt.s3.endpoint, stmt.s3.region, stmt.glue, "athena-iceberg-metadata")


def _data_io(stmt):
    """The FileIO that reads data files, signed with the query's key: these bytes are scanned."""
    from pyiceberg.io import load_file_io
    return load_file_io(core_iceberg.properties(stmt.s3.endpoint, stmt.s3.region, stmt.access_key))


def load(stmt, db: str, name: str):
    """The pyiceberg table ``db.name`` (current metadata)."""
    from pyiceberg.exceptions import NoSuchTableError
    try:
        return _catalog(stmt).load_table((db, name))
    except NoSuchTableError:
        raise QueryFailed("TABLE_NOT_FOUND", f"Table 'awsdatacatalog.{db}.{name}' does not exist") from None


def commit_failed(db: str, name: str, exc: Exception) -> QueryFailed:
    """Another writer committed first and the two changes conflict (Iceberg's validation)."""
    return QueryFailed("ICEBERG_COMMIT_ERROR", f"Failed to commit Iceberg update to table: {db}.{name}: "
                       f"{exc}")


def _committing(db: str, name: str):
    """The pyiceberg errors of a lost commit race, which Athena reports as ``ICEBERG_COMMIT_ERROR``."""
    from pyiceberg.exceptions import CommitFailedException, ValidationException
    return (CommitFailedException, ValidationException)


# --------------------------------------------------------------------------
# Reading: a table (at a version) or a metadata table, as a DuckDB view
# --------------------------------------------------------------------------
def snapshot_for(stmt, tbl, node: exp.Table, db: str, name: str) -> int | None:
    """The snapshot a ``FOR VERSION AS OF`` / ``FOR TIMESTAMP AS OF`` clause names (None: current)."""
    version = node.args.get("version")
    if version is None:
        return None
    kind = version.name.upper()
    value = version.expression
    if kind == "VERSION":
        try:
            snapshot_id = int(value.name)
        except (TypeError, ValueError):
            raise QueryFailed("NOT_SUPPORTED", "Unsupported type for table version: "
                              f"{value.sql(dialect='athena')}") from None
        if tbl.snapshot_by_id(snapshot_id) is None:
            raise QueryFailed("INVALID_ARGUMENT", f"Iceberg snapshot ID does not exists: {snapshot_id}")
        return snapshot_id
    con = stmt.connect()
    try:
        moment = con.execute(f"SELECT epoch_ms({exp.cast(value.copy(), 'TIMESTAMPTZ').sql(dialect='duckdb')})"
                             ).fetchone()[0]
    except Exception:
        raise QueryFailed("TYPE_MISMATCH", "Type of the timestamp in FOR TIMESTAMP AS OF must be "
                          "timestamp(3) with time zone") from None
    finally:
        con.close()
    snap = tbl.snapshot_as_of_timestamp(int(moment))
    if snap is None:
        when = datetime.fromtimestamp(moment / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
        raise QueryFailed("INVALID_ARGUMENT", f"No version history table {db}.{name} at or before {when} UTC")
    return snap.snapshot_id


def needed_columns(node: exp.Table, schema) -> list[str]:
    """The columns of this table the query names (all of them for ``SELECT *``): Parquet is
    columnar, so Athena reads, and bills, only those columns' bytes."""
    names = [f.name for f in schema.fields]
    alias = (node.alias or node.name).lower()
    root = node.root()
    for star in root.find_all(exp.Star):
        owner = star.parent
        if isinstance(owner, exp.Count):
            continue
        if not isinstance(owner, exp.Column) or not owner.table or owner.table.lower() == alias:
            return ["*"]
    used = {c.name.lower() for c in root.find_all(exp.Column) if not c.table or c.table.lower() == alias}
    wanted = [n for n in names if n.lower() in used]
    return wanted or names[:1]          # count(*) still needs the rows: the first column's


def register(stmt, con, node: exp.Table, db: str, name: str, view: str, governed: bool = False) -> None:
    """Make the Iceberg table ``db.name`` (at the version ``node`` names) the DuckDB view ``view``.

    pyiceberg plans the files with the query's WHERE conditions on this table
    (files whose partition or column bounds cannot match are skipped), then
    reads the planned data files (and their delete files) signed with the query's
    key, only the columns the query names (every column when Lake Formation
    governs the table: its restricted view picks them).
    """
    from pyiceberg.expressions import AlwaysTrue
    tbl = load(stmt, db, name)
    snapshot_id = snapshot_for(stmt, tbl, node, db, name)
    row_filter = pruning_filter(node, tbl) or AlwaysTrue()
    scan = tbl.scan(row_filter=row_filter, snapshot_id=snapshot_id)
    if not governed:
        scan = scan.select(*needed_columns(node, scan.projection()))
    tasks = list(scan.plan_files()) if (snapshot_id is not None or tbl.current_snapshot()) else []
    stmt.files_opened += len(tasks)
    _expose(con, _read_files(stmt, tbl, tasks, scan.projection(), row_filter), view)


def register_metadata(stmt, con, db: str, name: str, which: str, view: str) -> None:
    """``"t$snapshots"`` and its kin: pyiceberg's ``inspect`` tables, named as Athena names them."""
    tbl = load(stmt, db, name)
    inspect = tbl.inspect
    if which == "partitions":       # Athena's columns (an unpartitioned table has no "partition")
        rows = inspect.partitions()
        kept = [c for c in ("partition", "record_count", "file_count") if c in rows.column_names]
        rows = rows.select(kept + ["total_data_file_size_in_bytes"]).rename_columns(kept + ["total_size"])
    else:
        rows = getattr(inspect, which)()
    _expose(con, rows, view)


def _expose(con, rows: pa.Table, view: str) -> None:
    """Arrow rows as the DuckDB view ``view``."""
    raw = f"{view}__raw"
    con.register(raw, rows)
    con.execute(f"CREATE TEMP VIEW {ident(view)} AS SELECT * FROM {ident(raw)}")


#: The metadata tables Athena refuses to a principal with row or cell filters or without every column.
RESTRICTED_METADATA = ("partitions", "files", "manifests", "snapshots")


def refuse_restricted_metadata(access, which: str, name: str) -> None:
    """"querying the $partitions, $files, $manifests, and $snapshots Iceberg metadata tables will fail
    with an AccessDeniedException error" when Lake Formation filters rows or cells of the table or
    hides columns from the caller (https://docs.aws.amazon.com/athena/latest/ug/querying-iceberg.html)."""
    if access is None or which not in RESTRICTED_METADATA:
        return
    if access.columns is not None or access.row_filter or access.cells:
        failure = QueryFailed("PERMISSION_DENIED", "", error_type=PERMISSION)
        failure.reason = (f"AccessDeniedException: Insufficient Lake Formation permission(s) to read the "
                          f"${which} metadata table of {name}: the caller may not see every column and row")
        failure.args = (failure.reason,)
        raise failure


def split_metadata_name(name: str) -> tuple[str, str | None]:
    """``"orders$snapshots"`` -> ("orders", "snapshots"); a plain name -> (name, None)."""
    base, sep, which = name.partition("$")
    if not sep:
        return name, None
    if which not in METADATA_TABLES:
        raise QueryFailed("TABLE_NOT_FOUND", f"Table '{name}' does not exist")
    return base, which


# --------------------------------------------------------------------------
# WHERE conditions as Iceberg expressions (for file pruning and row replacement)
# --------------------------------------------------------------------------
def pruning_filter(node: exp.Table, tbl):
    """The conjuncts of the query's WHERE that name only this table's columns, as one
    pyiceberg expression (None: nothing usable)."""
    select = node.find_ancestor(exp.Select)
    where = select.args.get("where") if select is not None else None
    if where is None:
        return None
    alias = (node.alias or node.name).lower()
    return condition_filter(where.this, tbl, alias)


def condition_filter(condition: exp.Expression, tbl, alias: str | None = None, *, exact: bool = False):
    """pyiceberg's expression for the conjuncts of ``condition`` it can express (None: none).

    With ``exact``, the whole condition must be expressible (else None): a DELETE or UPDATE
    then replaces exactly the rows it names."""
    from pyiceberg.expressions import And
    names = {f.name.lower() for f in tbl.schema().fields}
    parts = list(condition.flatten()) if isinstance(condition, exp.And) else [condition]
    usable = []
    for part in parts:
        got = _to_iceberg(part, names, alias)
        if got is None and exact:
            return None
        if got is not None:
            usable.append(got)
    if not usable:
        return None
    result = usable[0]
    for more in usable[1:]:
        result = And(result, more)
    return result


def _literal(node):
    """A Python value for a SQL literal (numbers, strings, DATE/TIMESTAMP '...'), or raise ValueError."""
    if isinstance(node, exp.Paren):
        return _literal(node.this)
    if isinstance(node, exp.Neg):
        return -_literal(node.this)
    if isinstance(node, exp.Boolean):
        return node.this
    if isinstance(node, exp.Literal):
        if node.is_string:
            return node.this
        text = node.this
        return float(text) if any(ch in text for ch in ".eE") else int(text)
    if isinstance(node, exp.Cast) and isinstance(node.this, exp.Literal) and node.this.is_string:
        kind = node.to.this
        if kind == exp.DataType.Type.DATE:
            return node.this.this
        if kind in (exp.DataType.Type.TIMESTAMP, exp.DataType.Type.TIMESTAMPTZ):
            return node.this.this.replace(" ", "T").removesuffix("TUTC").removesuffix("Z")
    raise ValueError(node.sql())


def _to_iceberg(node, names: set[str], alias: str | None):
    """One condition as a pyiceberg expression, or None when it is not a simple column test."""
    from pyiceberg import expressions as ie

    def column(c):
        if isinstance(c, exp.Column) and c.name.lower() in names and (
                not c.table or alias is None or c.table.lower() == alias):
            return c.name.lower()
        return None

    try:
        if isinstance(node, exp.Paren):
            return _to_iceberg(node.this, names, alias)
        if isinstance(node, (exp.And, exp.Or)):
            left, right = _to_iceberg(node.this, names, alias), _to_iceberg(node.expression, names, alias)
            if left is None or right is None:
                return None
            return (ie.And if isinstance(node, exp.And) else ie.Or)(left, right)
        if isinstance(node, exp.Not):
            inner = _to_iceberg(node.this, names, alias)
            return ie.Not(inner) if inner is not None else None
        ops = {exp.EQ: (ie.EqualTo, ie.EqualTo), exp.NEQ: (ie.NotEqualTo, ie.NotEqualTo),
               exp.GT: (ie.GreaterThan, ie.LessThan), exp.GTE: (ie.GreaterThanOrEqual, ie.LessThanOrEqual),
               exp.LT: (ie.LessThan, ie.GreaterThan), exp.LTE: (ie.LessThanOrEqual, ie.GreaterThanOrEqual)}
        if type(node) in ops:
            straight, flipped = ops[type(node)]
            if column(node.this):
                return straight(column(node.this), _literal(node.expression))
            if column(node.expression):
                return flipped(column(node.expression), _literal(node.this))
            return None
        if isinstance(node, exp.In) and column(node.this) and not node.args.get("query"):
            return ie.In(column(node.this), {_literal(v) for v in node.expressions})
        if isinstance(node, exp.Between) and column(node.this):
            c = column(node.this)
            return ie.And(ie.GreaterThanOrEqual(c, _literal(node.args["low"])),
                          ie.LessThanOrEqual(c, _literal(node.args["high"])))
        if isinstance(node, exp.Is) and column(node.this) and isinstance(node.expression, exp.Null):
            return ie.IsNull(column(node.this))
    except ValueError:
        return None
    return None


# --------------------------------------------------------------------------
# Creating tables
# --------------------------------------------------------------------------
def wants_iceberg(props: dict) -> bool:
    return str(props.get("table_type", "")).upper() == core_iceberg.TABLE_TYPE


def _arrow_schema(stmt, columns: list[tuple[str, str]]) -> pa.Schema:
    """Arrow types for Hive-style column types, as DuckDB maps them (complex types included)."""
    con = stmt.connect()
    try:
        select = ", ".join(f"CAST(NULL AS {duck_type(t)}) AS {ident(c)}" for c, t in columns)
        return con.sql(f"SELECT {select} LIMIT 0").to_arrow_table().schema
    except Exception:
        raise QueryFailed("NOT_SUPPORTED", "Unsupported column type in: "
                          + ", ".join(f"{c} {t}" for c, t in columns), error_type=DDL_FAILED) from None
    finally:
        con.close()


def _plain_schema(schema: pa.Schema) -> pa.Schema:
    """Iceberg has one string type: large/view strings become ``string``."""
    fields = []
    for f in schema:
        kind = f.type
        if pa.types.is_large_string(kind) or pa.types.is_string_view(kind):
            kind = pa.string()
        fields.append(pa.field(f.name.lower(), kind, nullable=True))
    return pa.schema(fields)


def _transform(node, names: set[str]):
    """(source column, transform) of one PARTITIONED BY item."""
    from pyiceberg.transforms import (BucketTransform, DayTransform, HourTransform, IdentityTransform,
                                      MonthTransform, TruncateTransform, YearTransform)

    def col(n):
        target = n.this if isinstance(n, exp.TsOrDsToDate) else n
        name = target.name.lower() if isinstance(target, (exp.Column, exp.Identifier)) else None
        if name not in names:
            raise QueryFailed("COLUMN_NOT_FOUND", f"Partition column '{target.sql()}' not found",
                              error_type=DDL_FAILED)
        return name

    if isinstance(node, (exp.Identifier, exp.Column)):
        return col(node), IdentityTransform()
    for kind, transform in ((exp.Year, YearTransform), (exp.Month, MonthTransform), (exp.Day, DayTransform)):
        if isinstance(node, kind):
            return col(node.this), transform()
    if isinstance(node, exp.Anonymous) and node.name.lower() == "hour" and len(node.expressions) == 1:
        return col(node.expressions[0]), HourTransform()
    if isinstance(node, exp.Anonymous) and node.name.lower() in ("bucket", "truncate") and len(node.expressions) == 2:
        # CTAS's partitioning = ARRAY['bucket(id, 16)'] names the column first; CREATE TABLE's
        # PARTITIONED BY (bucket(16, id)) names the number first. Either order is read.
        column = next((e for e in node.expressions if isinstance(e, (exp.Column, exp.Identifier))), None)
        number = next((e for e in node.expressions if isinstance(e, exp.Literal)), None)
        if column is not None and number is not None:
            kind = BucketTransform if node.name.lower() == "bucket" else TruncateTransform
            return col(column), kind(int(number.name))
    if isinstance(node, exp.Hour):
        return col(node.this), HourTransform()
    if isinstance(node, exp.PartitionedByBucket):
        return col(node.this), BucketTransform(int(node.expression.name))
    if isinstance(node, exp.PartitionByTruncate):
        return col(node.this), TruncateTransform(int(node.expression.name))
    raise QueryFailed("NOT_SUPPORTED", f"Unsupported partition transform: {node.sql(dialect='athena')}",
                      error_type=DDL_FAILED)


def _check_properties(props: dict) -> dict[str, str]:
    unknown = sorted(k for k in props if k not in ATHENA_PROPERTIES and k not in ("location", "is_external", "external_location",
                                                                                     "partitioning"))
    if unknown:
        raise QueryFailed("INVALID_TABLE_PROPERTY", f"Unsupported table property key: {unknown[0]}",
                          error_type=DDL_FAILED)
    if str(props.get("format", "parquet")).lower() != "parquet":
        raise QueryFailed("NOT_SUPPORTED", "Only PARQUET is supported by the local Iceberg writer "
                          f"(got format '{props['format']}')", error_type=DDL_FAILED)
    for key in ("vacuum_max_snapshot_age_seconds", "vacuum_min_snapshots_to_keep"):
        if key in props:
            try:
                if int(props[key]) < 1:
                    raise ValueError
            except ValueError:
                raise QueryFailed("INVALID_TABLE_PROPERTY", f"Table property {key} must be a positive "
                                  f"integer, got '{props[key]}'", error_type=DDL_FAILED) from None
    return {k: str(v) for k, v in props.items() if k not in ("location", "is_external", "partitioning",
                                                              "table_type")}


def create(stmt, db: str, name: str, schema: pa.Schema, partition_items: list, location: str,
           props: dict, rows: pa.Table | None = None) -> None:
    """Create the Iceberg table (its first metadata.json and the Glue entry), with ``rows``
    as its first snapshot when given (CTAS). Nothing is left behind when it fails."""
    from pyiceberg.exceptions import CommitFailedException, TableAlreadyExistsError
    if not location:
        raise QueryFailed("NOT_SUPPORTED", "Iceberg tables need a location: LOCATION 's3://...' "
                          "(CTAS: location = 's3://...')", error_type=DDL_FAILED)
    bucket, _ = split(location)
    if not stmt.s3.bucket_exists(bucket):
        raise QueryFailed("HIVE_FILESYSTEM_ERROR", f"The S3 location s3://{bucket}/ does not exist "
                          "(NoSuchBucket)", error_type=DDL_FAILED)
    properties = _check_properties(props)
    schema = _plain_schema(schema)
    names = set(schema.names)
    transforms = [_transform(item, names) for item in partition_items]
    catalog = _catalog(stmt)
    if catalog.table_exists((db, name)):       # checked before any metadata file is written
        raise QueryFailed("TABLE_ALREADY_EXISTS", f"Table 'awsdatacatalog.{db}.{name}' already exists",
                          error_type=DDL_FAILED)
    try:
        tx = catalog.create_table_transaction((db, name), schema=schema, location=location.rstrip("/"),
                                              properties=properties)
    except TableAlreadyExistsError:
        raise QueryFailed("TABLE_ALREADY_EXISTS", f"Table 'awsdatacatalog.{db}.{name}' already exists",
                          error_type=DDL_FAILED) from None
    if transforms:
        with tx.update_spec() as spec:
            for column, transform in transforms:
                spec.add_field(column, transform)
    if rows is not None and rows.num_rows:
        tx.append(rows.cast(schema))
    try:
        tx.commit_transaction()
    except CommitFailedException:       # created by someone else since the check above
        raise QueryFailed("TABLE_ALREADY_EXISTS", f"Table 'awsdatacatalog.{db}.{name}' already exists",
                          error_type=DDL_FAILED) from None


def create_table(stmt, tree: exp.Create) -> Result:
    """``CREATE TABLE db.t (cols) PARTITIONED BY (transforms) LOCATION '...' TBLPROPERTIES
    ('table_type'='ICEBERG')``."""
    schema_node = tree.this
    table = schema_node.this
    db, name = (table.db or stmt.database).lower(), table.name.lower()
    stmt.require_database(db)
    stmt.require_on_database(db, "CREATE_TABLE")
    columns = [(c.name.lower(), column_type(c.args["kind"])) for c in schema_node.expressions
               if isinstance(c, exp.ColumnDef)]
    props, location, items = {}, "", []
    for p in tree.args["properties"].expressions:
        if isinstance(p, exp.PartitionedByProperty):
            items = list(p.this.expressions) if hasattr(p.this, "expressions") else [p.this]
        elif isinstance(p, exp.LocationProperty):
            location = p.this.name
        elif type(p) is exp.Property:
            props[p.this.name.lower()] = p.args["value"].name
    create(stmt, db, name, _arrow_schema(stmt, columns), items, location, props)
    return Result("DDL", substatement="CREATE_TABLE")


def ctas(stmt, tree: exp.Create, props: dict) -> Result:
    """CTAS ``WITH (table_type='ICEBERG', location='s3://...', partitioning=ARRAY['day(ts)'])``."""
    db, name = stmt.table_ref(tree.this if isinstance(tree.this, exp.Table) else tree.this.this)
    stmt.require_database(db)
    stmt.require_on_database(db, "CREATE_TABLE")
    if str(props.get("is_external", "false")).lower() == "true":
        raise QueryFailed("NOT_SUPPORTED", "Iceberg CTAS needs is_external = false", error_type=DDL_FAILED)
    try:
        stmt.glue.get_table(DatabaseName=db, Name=name)
        if tree.args.get("exists"):
            return Result("DDL", substatement="CREATE_TABLE_AS_SELECT")
        raise QueryFailed("TABLE_ALREADY_EXISTS", f"Table 'awsdatacatalog.{db}.{name}' already exists",
                          error_type=DDL_FAILED)
    except stmt.glue.exceptions.EntityNotFoundException:
        pass
    names, _, rows = stmt.execute_query(stmt.name_columns(tree.expression))
    items = [sqlglot.parse_one(text, read="athena") for text in props.get("partitioning") or []]
    location = props.get("location") or props.pop("external_location", "")
    create(stmt, db, name, rows.schema, items, location, props, rows=rows)
    return Result("DML", [("rows", "bigint")], substatement="CREATE_TABLE_AS_SELECT", update_count=rows.num_rows)


# --------------------------------------------------------------------------
# Changing rows: INSERT, UPDATE, DELETE, MERGE
# --------------------------------------------------------------------------
def trino_type(kind: pa.DataType) -> str:
    """An Arrow type as Athena (Trino) names it in messages."""
    names = {pa.int8(): "tinyint", pa.int16(): "smallint", pa.int32(): "integer", pa.int64(): "bigint",
             pa.float32(): "real", pa.float64(): "double", pa.bool_(): "boolean", pa.date32(): "date",
             pa.string(): "varchar", pa.large_string(): "varchar", pa.binary(): "varbinary"}
    if kind in names:
        return names[kind]
    if pa.types.is_timestamp(kind):
        return "timestamp(6)" + (" with time zone" if kind.tz else "")
    if pa.types.is_decimal(kind):
        return f"decimal({kind.precision},{kind.scale})"
    return str(kind)


def _conform(rows: pa.Table, tbl, names: list[str] | None, db: str, name: str) -> pa.Table:
    """Rows of a query, as the table's columns and types (by position or by the named columns)."""
    schema = tbl.schema().as_arrow()
    target = list(names or schema.names)
    if rows.num_columns != len(target):
        raise QueryFailed("TYPE_MISMATCH", f"Insert query has {rows.num_columns} columns, target table "
                          f"'awsdatacatalog.{db}.{name}' has {len(target)}")
    arrays = []
    for field in schema:
        if field.name in target:
            column = rows.column(target.index(field.name))
            try:
                arrays.append(column.cast(field.type))
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                table_types = [trino_type(schema.field(n).type) for n in target]
                raise QueryFailed("TYPE_MISMATCH", "Insert query has mismatched column types: Table: ["
                                  f"{', '.join(table_types)}], Query: ["
                                  f"{', '.join(trino_type(c.type) for c in rows.columns)}]") from None
        else:
            arrays.append(pa.nulls(rows.num_rows, field.type))
    return pa.Table.from_arrays(arrays, schema=schema)


def target_of(stmt, node: exp.Table, verb: str):
    """(db, name, pyiceberg table) of the table a DML statement changes; a Hive table is refused."""
    db, name = stmt.table_ref(node)
    table = stmt.load_table(db, name, node_sql=node.name)
    if not is_iceberg(table):
        raise QueryFailed("NOT_SUPPORTED", "Modifying Hive table rows is only supported for transactional "
                          "tables" if verb != "INSERT" else "INSERT into Hive table is not supported here")
    stmt.require(db, name, verb if verb in ("INSERT", "DELETE") else "INSERT")
    if verb in ("UPDATE", "MERGE"):
        stmt.require(db, name, "DELETE")
    return db, name, load(stmt, db, name)


def insert(stmt, tree: exp.Insert) -> Result:
    """INSERT INTO an Iceberg table: one append snapshot."""
    target = tree.this if isinstance(tree.this, exp.Table) else tree.this.this
    names = [c.name.lower() for c in tree.this.expressions] if isinstance(tree.this, exp.Schema) else None
    db, name, tbl = target_of(stmt, target, "INSERT")
    _, _, rows = stmt.execute_query(tree.expression)
    rows = _conform(rows, tbl, names, db, name)
    try:
        if rows.num_rows:
            tbl.append(rows)
    except _committing(db, name) as exc:
        raise commit_failed(db, name, exc) from None
    return Result("DML", [("rows", "bigint")], substatement="INSERT", update_count=rows.num_rows)


LOCAL_TARGET = "__iceberg_target"


def _files_matching(stmt, tbl, row_filter) -> list:
    """The scan tasks (data files) whose partition and column bounds ``row_filter`` can match."""
    if tbl.current_snapshot() is None:
        return []
    tasks = list(tbl.scan(row_filter=row_filter).plan_files())
    stmt.files_opened += len(tasks)
    return tasks


def _read_files(stmt, tbl, tasks, schema=None, row_filter=None) -> pa.Table:
    """The rows of the given data files (after their delete files) that ``row_filter`` keeps
    (default: every row), as ``schema`` (default: the table's), read with the query's key."""
    from pyiceberg.expressions import AlwaysTrue
    from pyiceberg.io.pyarrow import ArrowScan
    schema = schema or tbl.schema()
    stmt.check()
    if not tasks:
        return schema.as_arrow().empty_table()
    return ArrowScan(tbl.metadata, _data_io(stmt), schema, row_filter or AlwaysTrue()).to_table(tasks)


def _run_on_rows(stmt, tree: exp.Expression, target: exp.Table, rows: pa.Table) -> tuple[int, pa.Table]:
    """Run the DML ``tree`` on DuckDB with ``rows`` (a temporary table) in place of
    ``target``; returns (rows the statement changed, the rows afterwards)."""
    con = stmt.connect()
    try:
        con.register("__iceberg_rows", rows)
        con.execute(f"CREATE TEMP TABLE {LOCAL_TARGET} AS SELECT * FROM __iceberg_rows")
        con.unregister("__iceberg_rows")
        alias = (target.alias or target.name).lower()
        target.set("this", exp.to_identifier(LOCAL_TARGET))
        target.set("db", None)
        target.set("catalog", None)
        if not target.alias:       # columns qualified with the table's name still find it
            target.set("alias", exp.TableAlias(this=exp.to_identifier(alias)))
        stmt.local_tables[alias] = LOCAL_TARGET
        tree = stmt.expand(tree, con)
        stmt.check()
        if isinstance(tree, exp.Merge):
            _refuse_multiple_matches(con, tree)
        changed = con.execute(tree.sql(dialect="duckdb")).fetchone()[0]
        after = con.sql(f"SELECT * FROM {LOCAL_TARGET}").to_arrow_table()
        return int(changed or 0), after
    except QueryFailed:
        raise
    except Exception as exc:
        from .errors import engine_error
        raise engine_error(exc, stmt.sql) from None
    finally:
        con.close()


def _refuse_multiple_matches(con, merge: exp.Merge) -> None:
    """Trino refuses a MERGE where one target row matches two source rows (DuckDB would apply one)."""
    target = merge.this
    alias = target.alias or target.name
    using = merge.args["using"]
    on = merge.args["on"]
    probe = (f"SELECT 1 FROM {target.sql(dialect='duckdb')} JOIN {using.sql(dialect='duckdb')} "
             f"ON {on.sql(dialect='duckdb')} GROUP BY {ident(alias)}.rowid HAVING count(*) > 1 LIMIT 1")
    if con.execute(probe).fetchone():
        raise QueryFailed("MERGE_TARGET_ROW_MULTIPLE_MATCHES",
                          "One MERGE target table row matched more than one source row")


def rewrite_files(stmt, db: str, name: str, tbl, tasks, rows: pa.Table, operation: str) -> None:
    """One commit, one snapshot: the data files of ``tasks`` leave the table and ``rows``
    arrive as new files (copy-on-write). Fails with ICEBERG_COMMIT_ERROR, changing nothing,
    when another writer removed or rewrote one of those files in the meantime."""
    from pyiceberg.io.pyarrow import _dataframe_to_data_files
    from pyiceberg.table.snapshots import Operation
    from pyiceberg.table.update.snapshot import _OverwriteFiles
    rows = _conform(rows, tbl, rows.column_names, db, name)
    try:
        with tbl.transaction() as tx:
            producer = _OverwriteFiles(operation=Operation(operation), transaction=tx, io=tbl.io)
            for task in tasks:
                producer.delete_data_file(task.file)
            if rows.num_rows:
                for data_file in _dataframe_to_data_files(tx.table_metadata, rows, tbl.io):
                    producer.append_data_file(data_file)
            producer.commit()
    except _committing(db, name) as exc:
        raise commit_failed(db, name, exc) from None


def update_or_delete(stmt, tree: exp.Update | exp.Delete) -> Result:
    """UPDATE t SET ... WHERE c / DELETE FROM t WHERE c on an Iceberg table.

    Only the files ``c`` can match are read and rewritten (when ``c`` is a test of
    the table's own columns); a condition Iceberg cannot express (a subquery, a
    function) makes the change read and rewrite the whole table.
    """
    from pyiceberg.expressions import AlwaysTrue
    verb = "UPDATE" if isinstance(tree, exp.Update) else "DELETE"
    target = tree.this
    db, name, tbl = target_of(stmt, target, verb)
    where = tree.args.get("where")
    alias = (target.alias or target.name).lower()
    row_filter = (condition_filter(where.this, tbl, alias, exact=True) if where is not None else None) or AlwaysTrue()
    tasks = _files_matching(stmt, tbl, row_filter)
    changed, after = _run_on_rows(stmt, tree, target, _read_files(stmt, tbl, tasks))
    if changed:
        rewrite_files(stmt, db, name, tbl, tasks, after, "delete" if verb == "DELETE" else "overwrite")
    return Result("DML", [("rows", "bigint")], substatement=verb, update_count=changed)


def merge(stmt, tree: exp.Merge) -> Result:
    """MERGE INTO t USING s ON t.k = s.k WHEN MATCHED ... WHEN NOT MATCHED ...

    The source runs first; the ON condition's equalities on the target's columns
    give the keys the statement can touch (``k IN (source keys)``), so only the
    files holding those keys are read and rewritten."""
    from pyiceberg.expressions import AlwaysTrue, In
    target = tree.this
    db, name, tbl = target_of(stmt, target, "MERGE")
    alias = (target.alias or target.name).lower()
    row_filter = AlwaysTrue()
    names = {f.name.lower() for f in tbl.schema().fields}
    on = tree.args["on"]
    for eq in (list(on.flatten()) if isinstance(on, exp.And) else [on]):
        if not isinstance(eq, exp.EQ):
            continue
        sides = [eq.this, eq.expression]
        mine = [s for s in sides if isinstance(s, exp.Column) and s.table.lower() == alias
                and s.name.lower() in names]
        other = [s for s in sides if s not in mine]
        if len(mine) == 1 and len(other) == 1 and not other[0].find(exp.Column, bfs=False) is None:
            using = tree.args["using"].copy()
            probe = exp.select(exp.alias_(other[0].copy(), "k")).distinct().from_(using)
            _, _, keys = stmt.execute_query(probe)
            values = {v for v in keys.column(0).to_pylist() if v is not None}
            if len(values) <= 10000:
                row_filter = In(mine[0].name.lower(), values) if values else row_filter
            break
    tasks = _files_matching(stmt, tbl, row_filter)
    changed, after = _run_on_rows(stmt, tree, target, _read_files(stmt, tbl, tasks))
    if changed:
        rewrite_files(stmt, db, name, tbl, tasks, after, "overwrite")
    return Result("DML", [("rows", "bigint")], substatement="MERGE", update_count=changed)


# --------------------------------------------------------------------------
# Schema evolution and properties
# --------------------------------------------------------------------------
def alter(stmt, tree: exp.Alter, db: str, name: str) -> Result:
    """ALTER TABLE ADD COLUMNS / DROP COLUMN / CHANGE COLUMN / RENAME COLUMN / SET TBLPROPERTIES:
    metadata only (a new schema id, a new metadata.json; no data file is rewritten)."""
    from pyiceberg.exceptions import ValidationError
    tbl = load(stmt, db, name)
    stmt.require(db, name, "ALTER")
    try:
        for action in tree.args.get("actions", []):
            if isinstance(action, exp.Schema):         # ADD COLUMNS (c type, ...)
                cols = [(c.name.lower(), column_type(c.args["kind"])) for c in action.expressions]
                schema = _plain_schema(_arrow_schema(stmt, cols))
                with tbl.update_schema() as update:
                    for field in schema:
                        update.add_column(field.name, _iceberg_type(field.type))
            elif isinstance(action, exp.Drop) and (action.args.get("kind") or "").upper() == "COLUMN":
                with tbl.update_schema() as update:
                    for col in action.args.get("tables") or [action.this]:
                        update.delete_column(col.name.lower())
            elif isinstance(action, exp.AlterColumn):   # CHANGE [COLUMN] old new type
                old = action.this.name.lower()
                new = (action.args.get("rename_to") or action.this).name.lower()
                dtype = action.args.get("dtype")
                with tbl.update_schema() as update:
                    if dtype is not None:
                        kind = _plain_schema(_arrow_schema(stmt, [(old, column_type(dtype))])).field(0).type
                        update.update_column(old, field_type=_iceberg_type(kind))
                    if new != old:
                        update.rename_column(old, new)
            elif isinstance(action, exp.RenameColumn):
                with tbl.update_schema() as update:
                    update.rename_column(action.this.name.lower(), action.args["to"].name.lower())
            elif isinstance(action, exp.AlterSet):
                props = {}
                for container in action.expressions:
                    for p in container.expressions:
                        props[p.this.name.lower()] = p.args["value"].name
                tbl.transaction().set_properties(_check_properties(props)).commit_transaction()
            else:
                raise QueryFailed("NOT_SUPPORTED", f"ALTER TABLE {type(action).__name__} is not supported for "
                                  "Iceberg tables", error_type=DDL_FAILED)
    except (ValidationError, ValueError) as exc:
        raise QueryFailed("NOT_SUPPORTED", str(exc), error_type=DDL_FAILED) from None
    except _committing(db, name) as exc:
        raise commit_failed(db, name, exc) from None
    return Result("DDL", substatement="ALTER_TABLE")


def _iceberg_type(kind: pa.DataType):
    """The Iceberg type of an Arrow type (pyiceberg's own conversion, field ids assigned later)."""
    from pyiceberg.io.pyarrow import pyarrow_to_schema
    from pyiceberg.table.name_mapping import MappedField, NameMapping
    schema = pyarrow_to_schema(pa.schema([pa.field("x", kind)]),
                               name_mapping=NameMapping([MappedField(field_id=1, names=["x"])]))
    return schema.find_field("x").field_type


# --------------------------------------------------------------------------
# Maintenance: OPTIMIZE and VACUUM
# --------------------------------------------------------------------------
def optimize(stmt, text: str) -> Result:
    """``OPTIMIZE t REWRITE DATA USING BIN_PACK [WHERE cond]``: in each partition the
    condition selects, files are read and written again as few files, committed as one
    snapshot (the rows do not change, only how they are stored). Athena labels that snapshot
    ``replace``; pyiceberg 0.12 cannot write that operation, so here it is an ``overwrite``
    whose summary shows the same files removed and added."""
    from pyiceberg.expressions import AlwaysTrue
    m = re.match(r"(?is)^\s*([\w.\"`]+)\s+REWRITE\s+DATA\s+USING\s+BIN_PACK(?:\s+WHERE\s+(.+))?\s*$", text)
    if not m:
        raise QueryFailed("SYNTAX_ERROR", "OPTIMIZE needs: OPTIMIZE [db.]table REWRITE DATA USING BIN_PACK "
                          "[WHERE predicate]")
    db, name = stmt.table_ref(exp.to_table(m.group(1).replace("`", "").replace('"', "")))
    table = stmt.load_table(db, name)
    if not is_iceberg(table):
        raise QueryFailed("NOT_SUPPORTED", "OPTIMIZE is supported for Iceberg tables only")
    stmt.require(db, name, "INSERT")
    stmt.require(db, name, "DELETE")
    tbl = load(stmt, db, name)
    row_filter = AlwaysTrue()
    if m.group(2):
        condition = stmt.parse(f"SELECT 1 WHERE {m.group(2)}").args["where"].this
        row_filter = condition_filter(condition, tbl, exact=True)
        if row_filter is None:
            raise QueryFailed("INVALID_ARGUMENT", "OPTIMIZE's WHERE may only test the table's columns "
                              f"against constants: {m.group(2)}")
    if tbl.current_snapshot() is None:
        return Result("DDL", substatement="OPTIMIZE")
    tasks = list(tbl.scan(row_filter=row_filter).plan_files())
    groups: dict = {}
    for task in tasks:
        groups.setdefault((task.file.spec_id, task.file.partition), []).append(task)
    chosen = [t for group in groups.values() if len(group) > 1 or any(t.delete_files for t in group)
              for t in group]
    if not chosen:
        return Result("DDL", substatement="OPTIMIZE")
    rewrite_files(stmt, db, name, tbl, chosen, _read_files(stmt, tbl, chosen), "overwrite")
    return Result("DDL", substatement="OPTIMIZE")


def vacuum(stmt, text: str) -> Result:
    """``VACUUM t``: expire the snapshots older than ``vacuum_max_snapshot_age_seconds``
    (keeping at least ``vacuum_min_snapshots_to_keep``, and always the current one),
    then delete every file under the table's location that no remaining snapshot uses:
    rows deleted earlier are then gone from S3 too, and time travel cannot reach them."""
    m = re.match(r"(?is)^\s*([\w.\"`]+)\s*$", text)
    if not m:
        raise QueryFailed("SYNTAX_ERROR", "VACUUM needs: VACUUM [db.]table")
    db, name = stmt.table_ref(exp.to_table(m.group(1).replace("`", "").replace('"', "")))
    table = stmt.load_table(db, name)
    if not is_iceberg(table):
        raise QueryFailed("NOT_SUPPORTED", "VACUUM is supported for Iceberg tables only")
    stmt.require(db, name, "DELETE")
    tbl = load(stmt, db, name)
    props = tbl.properties
    max_age = int(props.get("vacuum_max_snapshot_age_seconds", VACUUM_MAX_SNAPSHOT_AGE_SECONDS))
    keep = int(props.get("vacuum_min_snapshots_to_keep", VACUUM_MIN_SNAPSHOTS_TO_KEEP))
    cutoff_ms = (stmt.now() - max_age) * 1000
    snapshots = sorted(tbl.snapshots(), key=lambda s: s.timestamp_ms)
    current = tbl.current_snapshot()
    protected = {s.snapshot_id for s in snapshots[-keep:]} | ({current.snapshot_id} if current else set())
    expired = [s.snapshot_id for s in snapshots if s.timestamp_ms < cutoff_ms and s.snapshot_id not in protected]
    try:
        if expired:
            tbl.maintenance.expire_snapshots().by_ids(expired).commit()
    except _committing(db, name) as exc:
        raise commit_failed(db, name, exc) from None
    tbl = load(stmt, db, name)
    used = set()
    for snap in tbl.snapshots():
        used.add(snap.manifest_list)
        for manifest in snap.manifests(tbl.io):
            used.add(manifest.manifest_path)
            for entry in manifest.fetch_manifest_entry(tbl.io, discard_deleted=True):
                used.add(entry.data_file.file_path)
    used.add(tbl.metadata_location)
    used.update(log.metadata_file for log in tbl.metadata.metadata_log)
    location = tbl.location().rstrip("/") + "/"
    unused = [uri for uri in _objects_under(stmt, location) if uri not in used and not uri.endswith("/")]
    if unused:
        stmt.s3.delete(unused)
    return Result("DDL", substatement="VACUUM")


def drops_iceberg_table(stmt, tree: exp.Drop) -> bool:
    """DROP TABLE on an Iceberg table removes it from the catalog **and deletes its data**
    (Athena treats Iceberg tables as managed tables). False for anything else."""
    node = tree.this or (tree.args.get("tables") or [None])[0]
    if (tree.args.get("kind") or "").upper() != "TABLE" or node is None:
        return False
    db, name = stmt.table_ref(node)
    try:
        raw = stmt.glue.get_table(DatabaseName=db, Name=name)["Table"]
    except stmt.glue.exceptions.EntityNotFoundException:
        return False
    if not core_iceberg.is_iceberg(raw):
        return False
    if stmt.lake is not None:
        stmt.load_table(db, name)
        stmt.require(db, name, "DROP")
    tbl = load(stmt, db, name)
    location = tbl.location().rstrip("/") + "/"
    _catalog(stmt).drop_table((db, name))
    files = _objects_under(stmt, location)
    if files:
        stmt.s3.delete(files)
    return True


def _objects_under(stmt, location: str) -> list[str]:
    """The s3:// URIs of every object under the prefix ``location``."""
    bucket, _ = split(location)
    return [f"s3://{bucket}/{o['Key']}" for o in stmt.s3.list(location)]
