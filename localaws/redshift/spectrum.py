"""Redshift Spectrum: SQL over files in Amazon S3, described by the AWS Glue Data Catalog.

On AWS a Spectrum query has two layers. The cluster's leader sees a table
of an *external schema* (``CREATE EXTERNAL SCHEMA spectrum FROM DATA CATALOG
DATABASE 'lake' IAM_ROLE '...'``), asks the Glue Data Catalog where its files
are and how to read them, and hands the scan to the *Spectrum layer*: a fleet
of AWS-managed workers, thousands at AWS's scale, each reading some of the
files, applying the query's filter and keeping only the columns it needs
(*pushdown*). Only these partial results travel back into the cluster, where
they are joined with local tables and finished. You pay per byte the workers
read from S3, so Parquet (read column by column) and partitions (whole
folders skipped) cost less.

Here the same steps run on this machine, at a small scale:

- :func:`create_external_schema` records the mapping ``schema -> Glue database``
  in the warehouse's catalog after checking the database with Glue's
  ``GetDatabase`` (``CREATE EXTERNAL DATABASE IF NOT EXISTS`` creates it).
- :meth:`Spectrum.scan` finds the external tables a statement names, reads
  each one's Glue entry (``GetTable``: location, columns, SerDe; for
  partitioned tables ``GetPartitions``), prunes the partitions the WHERE
  clause excludes, lists the objects, and gives them out to a pool of
  :data:`WORKERS` *Spectrum workers* (threads). A worker reads its objects
  through the cluster's S3 client (so the stack meters the bytes): for
  Parquet only the footer and the byte ranges of the needed columns; for
  text and CSV the whole object. It runs the pushed-down filter with DuckDB
  and returns its partial result.
- The leader stores the partials as one temporary table (in DuckDB's
  in-memory catalog, dropped when the statement ends) and the statement runs
  with the external table replaced by it, so joins with local tables,
  ``INSERT ... SELECT`` and ``CREATE TABLE AS`` work unchanged.
- Every worker's share is a row of ``SVL_S3QUERY`` (rows and bytes scanned,
  rows and bytes returned, files); ``SVL_S3QUERY_SUMMARY`` sums them per
  query and table; ``SVL_S3PARTITION_SUMMARY`` shows partitions total vs
  qualified.

The filter is pushed down only where that cannot change the answer: WHERE
conjuncts whose columns all belong to the external table, in a SELECT
without outer joins. The statement keeps its WHERE clause as well, so a
pushed filter only removes rows early.

Aggregation is pushed down too, as the Spectrum layer does, for a SELECT
that aggregates one external table with what partial results can give
(``count``, ``sum``, ``min``, ``max``, ``avg``; ``mpp.split_external``):
each worker aggregates the rows of all its files and sends back only its
partial groups (``s3query_returned_rows`` far below ``s3_scanned_rows``);
the leader merges them (mpp.py's leader step). Any other statement gets the
filtered rows, and the cluster aggregates them.

**Lake Formation.** A Glue table that Lake Formation governs is read with the
permissions Lake Formation gives the external schema's IAM role (the role of
``CREATE EXTERNAL SCHEMA ... IAM_ROLE '<arn>'``; grants name that role), as
Redshift does with a cluster-attached role:
https://docs.aws.amazon.com/redshift/latest/dg/spectrum-lake-formation.html,
https://docs.aws.amazon.com/lake-formation/latest/dg/RSPC-lf.html and
https://docs.aws.amazon.com/redshift/latest/dg/r_GRANT-usage-notes.html (the
role associated with the table's external schema). :meth:`Spectrum.govern`
asks ``core/lake.py`` before every scan, so a grant or revoke counts from the
next query:

- no permission at all: the table does not exist for the role
  (``relation "schema.table" does not exist``, the name of a table it may not
  see is not confirmed); DESCRIBE without SELECT: Redshift's error relaying
  Glue's ``AccessDeniedException ... Insufficient Lake Formation permission(s)``;
- granted columns only: ``SELECT *`` gives them, a hidden column is a
  column that does not exist;
- row filters (data cells filters, Athena/Trino SQL) are translated to the
  workers' SQL (DuckDB) and run *in the workers*, before the pushed-down
  filter and the partial aggregation, so neither can see a hidden row; a
  column that only some of the role's filters include is NULL in the other
  rows (cell-level security).

``IAM_ROLE 'SESSION'`` (the caller's federated IAM identity decides) is not
emulated: the local cluster's users are database users, not IAM identities.
"""
from __future__ import annotations

import io
import os
import re
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from . import errors, mpp, storage
from .loading import Parser

#: Redshift's error when the external schema's role may see a governed table but not SELECT from
#: it: Glue's answer relayed (a public report of that text: "AccessDeniedException from glue -
#: Insufficient Lake Formation permission(s) on <table>").
LAKE_DENIED = "AccessDeniedException from glue - Insufficient Lake Formation permission(s) on {table}"

#: The Spectrum workers of one cluster (threads; AWS scales its layer to thousands of nodes).
WORKERS = 4

#: A worker's name for the rows of its files, when it aggregates them.
ROWS = "__rows"

RS = storage.CATALOG_SCHEMA

#: Hive/Glue column type -> DuckDB type (anything else is read as text).
HIVE_TYPES = {"string": "VARCHAR", "int": "INTEGER", "integer": "INTEGER", "bigint": "BIGINT",
              "smallint": "SMALLINT", "tinyint": "SMALLINT", "double": "DOUBLE", "float": "REAL",
              "boolean": "BOOLEAN", "date": "DATE", "timestamp": "TIMESTAMP", "binary": "BLOB"}

#: SerDe library -> how the workers read its files.
FORMATS = {
    "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe": "parquet",
    "org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe": "text",
    "org.apache.hadoop.hive.serde2.OpenCSVSerde": "csv",
}


def duckdb_type(hive: str) -> str:
    """DuckDB's type for a Glue column type (``decimal(10,2)`` stays, ``varchar(20)`` -> VARCHAR)."""
    hive = hive.strip().lower()
    if hive.startswith("decimal"):
        return hive.upper()
    return HIVE_TYPES.get(hive.split("(")[0], "VARCHAR")


# -- CREATE / DROP EXTERNAL SCHEMA ---------------------------------------------------
@dataclass
class ExternalSchema:
    name: str
    database: str               # the Glue database
    iam_role: str
    region: str | None


def create_external_schema(warehouse, sql: str):
    """``CREATE EXTERNAL SCHEMA [IF NOT EXISTS] s FROM DATA CATALOG DATABASE 'db' IAM_ROLE '...'
    [REGION '...'] [CREATE EXTERNAL DATABASE IF NOT EXISTS]``: the schema, checked against Glue."""
    p = Parser(sql)
    for word in ("CREATE", "EXTERNAL", "SCHEMA"):
        p.expect(word)
    if_not_exists = False
    if p.accept("IF"):
        p.expect("NOT")
        p.expect("EXISTS")
        if_not_exists = True
    name = p.name().lower()
    p.expect("FROM")
    source = p.accept("DATA", "HIVE", "POSTGRES", "MYSQL", "KINESIS", "MSK", "REDSHIFT", "KAFKA")
    if source == "DATA":
        p.expect("CATALOG")
    elif source is not None:
        raise errors.SQLError(errors.FEATURE_NOT_SUPPORTED,
                              f"CREATE EXTERNAL SCHEMA FROM {source} is not emulated: FROM DATA CATALOG only")
    database, iam_role, region, create_database = None, None, None, False
    while not p.done():
        if p.accept("DATABASE"):
            database = p.string()
        elif p.accept("IAM_ROLE"):
            iam_role = "default" if p.accept("DEFAULT") else p.string()
            if iam_role.upper() == "SESSION":
                raise errors.SQLError(errors.FEATURE_NOT_SUPPORTED,
                                      "IAM_ROLE 'SESSION' is not emulated (the local cluster's users are "
                                      "database users, not federated IAM identities): give the role's ARN")
        elif p.accept("REGION"):
            region = p.string()
        elif p.accept("CATALOG_ROLE"):
            p.string()
        elif p.accept("SCHEMA"):
            p.string()
        elif p.accept("CREATE"):
            for word in ("EXTERNAL", "DATABASE", "IF", "NOT", "EXISTS"):
                p.expect(word)
            create_database = True
        else:
            p.error()
    if database is None or iam_role is None:
        raise errors.SQLError(errors.SYNTAX_ERROR, "CREATE EXTERNAL SCHEMA FROM DATA CATALOG needs "
                              "DATABASE 'name' and IAM_ROLE")
    spectrum = warehouse.spectrum
    if name in spectrum.schemas() or warehouse.has_schema(name):
        if if_not_exists:
            return "CREATE SCHEMA"
        raise errors.SQLError("42P06", f'Schema "{name}" already exists')
    glue = spectrum.glue_client(region)
    try:
        glue.get_database(Name=database)
    except glue.exceptions.EntityNotFoundException:
        if not create_database:
            raise errors.SQLError(errors.INTERNAL_ERROR,
                                  f"External database \"{database}\" does not exist in the Data Catalog. "
                                  "Create it first, or add CREATE EXTERNAL DATABASE IF NOT EXISTS.") from None
        glue.create_database(DatabaseInput={"Name": database})
    spectrum.add(ExternalSchema(name, database, iam_role, region))
    return "CREATE SCHEMA"


DROP_SCHEMA = re.compile(r"DROP\s+SCHEMA\s+(IF\s+EXISTS\s+)?\"?(\w+)\"?(\s+DROP\s+EXTERNAL\s+DATABASE)?"
                         r"(\s+(CASCADE|RESTRICT))?\s*$", re.IGNORECASE)


def drop_external_schema(warehouse, sql: str) -> bool:
    """``DROP SCHEMA name`` of an external schema: forget it (the Glue database stays unless
    ``DROP EXTERNAL DATABASE``). False when ``name`` is not an external schema."""
    match = DROP_SCHEMA.match(sql)
    if not match or match.group(2).lower() not in warehouse.spectrum.schemas():
        return False
    schema = warehouse.spectrum.remove(match.group(2).lower())
    if match.group(3):
        warehouse.spectrum.glue_client(schema.region).delete_database(Name=schema.database)
    return True


# -- reading one external table ----------------------------------------------------
@dataclass
class Guard:
    """What Lake Formation lets the external schema's role read of a governed table.

    ``columns``: every column of the table (name -> DuckDB type), hidden ones included, since a
    row filter may read them; ``data_columns``: the data columns in file order (a CSV row is
    positional); ``condition``: the row filter as DuckDB SQL (None: every row); ``cells``: a
    visible column -> the DuckDB condition under which its value is shown (NULL elsewhere).
    """
    columns: dict[str, str]
    data_columns: list[tuple[str, str]]
    condition: str | None = None
    cells: dict[str, str] = field(default_factory=dict)
    partitioned: bool = False

    def inputs(self) -> list[str]:
        """The columns the filter and the cell conditions read."""
        from sqlglot import exp, parse_one

        used: set[str] = set()
        for text in [self.condition, *self.cells.values()]:
            if text:
                used |= {c.name.lower() for c in parse_one(text, read="duckdb").find_all(exp.Column)}
        return [c for c in self.columns if c in used]


def duckdb_condition(text: str | None) -> str | None:
    """A Lake Formation row filter (Athena/Trino SQL, ``core/lake.py``) as the workers' SQL;
    None when it keeps every row; ``FALSE`` when it cannot be read (nothing is shown)."""
    import sqlglot

    text = (text or "").strip()
    if not text or text.upper() == "TRUE":
        return None
    try:
        tree = sqlglot.parse_one(text, read="trino")
    except sqlglot.errors.ParseError:
        return "FALSE"
    for column in tree.find_all(sqlglot.exp.Column):      # the workers' columns are lower case
        column.set("this", sqlglot.exp.to_identifier(column.name.lower(), quoted=True))
        column.set("table", None)
    return tree.sql(dialect="duckdb")


@dataclass
class ExternalTable:
    """What the workers need from a Glue table entry."""
    schema: str
    name: str
    columns: list[tuple[str, str]]            # (name, DuckDB type), data columns
    partition_keys: list[tuple[str, str]]
    format: str                                # parquet, text, csv
    location: str
    delimiter: str = ","
    skip_header: int = 0
    partitions: list[tuple[dict, str]] = field(default_factory=list)    # (values, location)
    guard: Guard | None = None                 # Lake Formation's restriction (None: the whole table)

    @property
    def all_columns(self) -> list[tuple[str, str]]:
        return self.columns + self.partition_keys

    @property
    def partitioned(self) -> bool:
        """Partitioned in Glue (its keys may be hidden from the reader by Lake Formation)."""
        return bool(self.partition_keys) or (self.guard is not None and self.guard.partitioned)


@dataclass
class Task:
    """One object for one worker: where it is, its size, and its partition values."""
    bucket: str
    key: str
    size: int
    partition: dict


@dataclass
class Share:
    """What one worker read and returned (a row of SVL_S3QUERY)."""
    worker: int
    start: float = 0.0
    end: float = 0.0
    files: int = 0
    scanned_rows: int = 0
    scanned_bytes: int = 0
    returned_rows: int = 0
    returned_bytes: int = 0
    parts: list = field(default_factory=list)      # Arrow tables


class RangeReader(io.RawIOBase):
    """An S3 object as a seekable file: every read is a ranged GET, and the bytes are counted.

    pyarrow's Parquet reader seeks to the footer, then to the column chunks it
    needs: so only those bytes leave S3, as for a Spectrum worker.
    """

    def __init__(self, s3, bucket: str, key: str, size: int):
        self.s3, self.bucket, self.key, self.size = s3, bucket, key, size
        self.position, self.fetched = 0, 0

    def readable(self):
        return True

    def seekable(self):
        return True

    def tell(self):
        return self.position

    def seek(self, offset, whence=io.SEEK_SET):
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: self.size}[whence]
        self.position = max(0, base + offset)
        return self.position

    def read(self, n=-1):
        end = self.size if n is None or n < 0 else min(self.size, self.position + n)
        if end <= self.position:
            return b""
        body = self.s3.get_object(Bucket=self.bucket, Key=self.key,
                                  Range=f"bytes={self.position}-{end - 1}")["Body"].read()
        self.position += len(body)
        self.fetched += len(body)
        return body

    def readinto(self, buffer):
        data = self.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)


class Spectrum:
    """The external schemas of one warehouse and its pool of Spectrum workers."""

    def __init__(self, warehouse, glue=None, lake=None):
        #: A callable ``glue(region=None)`` returning a boto3 Glue client (the plane gives it);
        #: ``lake``: the stack's Lake Formation policy (``core/lake.py``; None: nothing is governed).
        self.warehouse, self.glue, self.lake = warehouse, glue, lake
        self.pool = ThreadPoolExecutor(WORKERS, thread_name_prefix="spectrum-worker")
        self.lock = threading.Lock()
        self.counter = 0
        self._schemas: dict[str, ExternalSchema] | None = None

    # -- the catalog of external schemas (in the warehouse's own catalog, so it survives a restart)
    def schemas(self) -> dict[str, ExternalSchema]:
        if self._schemas is None:
            with self.warehouse.cursor() as cursor:
                rows = cursor.execute(f"SELECT schema_name, glue_database, iam_role, region "
                                      f"FROM {RS}.external_schemas").fetchall()
            self._schemas = {r[0]: ExternalSchema(*r) for r in rows}
        return self._schemas

    def add(self, schema: ExternalSchema) -> None:
        with self.warehouse.cursor() as cursor:
            cursor.execute(f"INSERT INTO {RS}.external_schemas VALUES (?, ?, ?, ?)",
                           [schema.name, schema.database, schema.iam_role, schema.region])
        self._schemas = None

    def remove(self, name: str) -> ExternalSchema:
        schema = self.schemas()[name]
        with self.warehouse.cursor() as cursor:
            cursor.execute(f"DELETE FROM {RS}.external_schemas WHERE schema_name = ?", [name])
        self._schemas = None
        return schema

    def glue_client(self, region: str | None = None):
        if self.glue is None:
            raise errors.SQLError(errors.FEATURE_NOT_SUPPORTED, "This warehouse has no Glue Data Catalog "
                                  "connection (create it with Warehouse(..., glue=...))")
        return self.glue(region)

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)

    # -- a statement naming external tables ---------------------------------------------
    def references(self, tree) -> bool:
        """Does the statement name a table of an external schema?"""
        from sqlglot import exp

        schemas = self.schemas()
        return bool(schemas) and any(t.db.lower() in schemas for t in tree.find_all(exp.Table))

    def scan(self, tree, query_id: int) -> "Scan":
        """Scan every external table of ``tree`` with the workers; a :class:`Scan` whose ``tree``
        names the temporary tables instead (use it as a context manager: it drops them)."""
        from sqlglot import exp

        tree = tree.copy()
        schemas = self.schemas()
        made = []
        try:
            refs = [t for t in tree.find_all(exp.Table) if t.db.lower() in schemas]
            for ref in refs:
                with self.lock:
                    self.counter += 1
                    name = f"spectrum_q{query_id}_{self.counter}"
                table = self.govern(schemas[ref.db.lower()], self.describe(schemas[ref.db.lower()],
                                                                          ref.name.lower()))
                alias = ref.alias or ref.name
                pushed = self.aggregation(tree, ref, table) if len(refs) == 1 else None
                partials = self.materialize(name, table, ref, tree, query_id, pushed)
                made.append(name)
                ref.replace(exp.Table(this=exp.to_identifier(name), db=exp.to_identifier("main"),
                                      catalog=exp.to_identifier("memory"),
                                      alias=exp.TableAlias(this=exp.to_identifier(alias))))
                if partials is not None:    # the table stays empty: mpp.py merges the workers' partials
                    made.append(partials)
                    tree.meta[mpp.EXTERNAL] = (pushed, f"memory.main.{storage.quote(partials)}")
        except BaseException:
            Scan(self.warehouse, tree, made).drop()
            raise
        return Scan(self.warehouse, tree, made)

    def describe(self, schema: ExternalSchema, name: str) -> ExternalTable:
        """The Glue entry of ``schema.name`` (GetTable, and GetPartitions for partitioned tables)."""
        glue = self.glue_client(schema.region)
        try:
            raw = glue.get_table(DatabaseName=schema.database, Name=name)["Table"]
        except glue.exceptions.EntityNotFoundException:
            raise errors.SQLError(errors.UNDEFINED_TABLE,
                                  f'relation "{schema.name}.{name}" does not exist') from None
        sd = raw.get("StorageDescriptor", {})
        serde = sd.get("SerdeInfo", {})
        library = serde.get("SerializationLibrary", "")
        input_format = sd.get("InputFormat", "")
        fmt = FORMATS.get(library) or ("parquet" if "parquet" in input_format.lower() else None)
        if fmt is None:
            raise errors.SQLError(errors.FEATURE_NOT_SUPPORTED,
                                  f"Spectrum here reads Parquet, CSV and text tables, not SerDe '{library}'")
        params = serde.get("Parameters", {})
        delimiter = params.get("field.delim") or params.get("separatorChar") or \
            params.get("serialization.format") or ("," if fmt == "csv" else "\x01")
        if delimiter.isdigit():            # serialization.format '1' means Hive's default, \x01
            delimiter = "\x01"
        table = ExternalTable(
            schema.name, name, [(c["Name"].lower(), duckdb_type(c["Type"])) for c in sd.get("Columns", [])],
            [(c["Name"].lower(), duckdb_type(c["Type"])) for c in raw.get("PartitionKeys", [])],
            fmt, sd.get("Location", ""), delimiter,
            int(raw.get("Parameters", {}).get("skip.header.line.count", 0) or 0))
        if table.partition_keys:
            keys = [k for k, _ in table.partition_keys]
            for page in glue.get_paginator("get_partitions").paginate(DatabaseName=schema.database,
                                                                         TableName=name):
                for part in page["Partitions"]:
                    table.partitions.append((dict(zip(keys, part["Values"])),
                                             part.get("StorageDescriptor", {}).get("Location", "")))
        return table

    def govern(self, schema: ExternalSchema, table: ExternalTable) -> ExternalTable:
        """``table`` as Lake Formation lets the schema's IAM role read it: unchanged when the
        table is not governed (or the role is an administrator), else only the visible columns,
        with a :class:`Guard` the workers apply. Asked at every scan, never cached."""
        if self.lake is None:
            return table
        glue_database, name = schema.database, table.name
        every = [c for c, _ in table.all_columns]
        role = schema.iam_role if schema.iam_role.startswith("arn:") else None
        if role is None:
            if not self.lake.governed(glue_database, name):
                return table
            raise errors.SQLError(errors.INTERNAL_ERROR, LAKE_DENIED.format(table=name) +
                                  f" (the external schema's role '{schema.iam_role}' is not an ARN: "
                                  "Lake Formation evaluates a named role)")
        access = self.lake.table_access(role, glue_database, name, every)
        if not access.select:
            if not access.describe:
                raise errors.SQLError(errors.UNDEFINED_TABLE, f'relation "{schema.name}.{name}" does not exist')
            raise errors.SQLError(errors.INTERNAL_ERROR, LAKE_DENIED.format(table=name))
        cells = {c.lower(): duckdb_condition(f) or "TRUE" for c, f in (access.cells or {}).items()}
        condition = duckdb_condition(access.row_filter)
        if access.columns is None and condition is None and not cells:
            return table
        shown = set(every if access.columns is None else (c.lower() for c in access.columns))
        guard = Guard(dict(table.all_columns), list(table.columns), condition, cells, bool(table.partition_keys))
        return ExternalTable(table.schema, table.name, [c for c in table.columns if c[0] in shown],
                             [k for k in table.partition_keys if k[0] in shown], table.format, table.location,
                             table.delimiter, table.skip_header, table.partitions, guard)

    # -- pushdown --------------------------------------------------------------------------
    @staticmethod
    def aggregation(tree, ref, table: ExternalTable):
        """mpp's plan for the workers to aggregate their files (a SELECT aggregating this one table
        with partial aggregates), or None: they send the filtered rows."""
        if not mpp.ENABLED:
            return None
        try:
            return mpp.split_external(tree, ref, dict(table.all_columns))
        except mpp.Gathered:
            return None

    @staticmethod
    def needed_columns(table: ExternalTable, ref, tree) -> list[str]:
        """The columns of ``table`` the statement can use (all of them for ``*``)."""
        from sqlglot import exp

        alias = (ref.alias or ref.name).lower()
        names = {c for c, _ in table.all_columns}
        if any(isinstance(s, exp.Star) and not isinstance(s.parent, exp.Count) for s in tree.find_all(exp.Star)):
            return [c for c, _ in table.all_columns]
        used = set()
        for column in tree.find_all(exp.Column):
            if isinstance(column.this, exp.Star) and column.table.lower() == alias:
                return [c for c, _ in table.all_columns]
            if column.name.lower() in names and column.table.lower() in ("", alias):
                used.add(column.name.lower())
        return [c for c, _ in table.all_columns if c in used]

    @staticmethod
    def pushed_filters(table: ExternalTable, ref) -> list:
        """WHERE conjuncts that only read ``table``'s columns, in a SELECT without outer joins."""
        from sqlglot import exp

        select = ref.find_ancestor(exp.Select)
        if select is None or select.args.get("where") is None:
            return []
        joins = select.args.get("joins") or []
        if any((j.side or "").upper() in ("LEFT", "RIGHT", "FULL") for j in joins):
            return []
        sources = [select.args.get("from_") or select.args.get("from")] + joins
        single = len(sources) == 1 and isinstance(sources[0].this, exp.Table)
        alias = (ref.alias or ref.name).lower()
        names = {c for c, _ in table.all_columns}
        pushed = []
        for conjunct in select.args["where"].this.flatten() if isinstance(select.args["where"].this, exp.And) \
                else [select.args["where"].this]:
            if any(conjunct.find_all(exp.Subquery, exp.Select, exp.AggFunc, exp.Placeholder, exp.Parameter)):
                continue
            columns = list(conjunct.find_all(exp.Column))
            if columns and all(c.name.lower() in names and (c.table.lower() == alias or (not c.table and single))
                               for c in columns):
                bare = conjunct.copy()
                for c in bare.find_all(exp.Column):
                    c.set("table", None)
                pushed.append(bare)
        return pushed

    def prune(self, table: ExternalTable, filters: list) -> list[tuple[dict, str]]:
        """The partitions whose values pass the filters that read only partition keys."""
        from sqlglot import exp

        keys = {k for k, _ in table.partition_keys}
        on_keys = [f for f in filters if {c.name.lower() for c in f.find_all(exp.Column)} <= keys]
        if not on_keys or not table.partitions:
            return table.partitions
        types = dict(table.partition_keys)
        rows = " UNION ALL ".join(
            f"SELECT {i} AS __i, " + ", ".join(f"TRY_CAST(? AS {types[k]}) AS {storage.quote(k)}" for k in types)
            for i in range(len(table.partitions)))
        values = [values.get(k) for values, _ in table.partitions for k in types]
        where = " AND ".join(f"({f.sql(dialect='duckdb')})" for f in on_keys)
        with self.warehouse.cursor() as cursor:
            keep = {r[0] for r in cursor.execute(f"SELECT __i FROM ({rows}) WHERE {where}", values).fetchall()}
        return [p for i, p in enumerate(table.partitions) if i in keep]

    # -- the workers -----------------------------------------------------------------------
    def tasks(self, table: ExternalTable, partitions) -> list[Task]:
        """Every object to read: under the table's location, or under each qualified partition's."""
        s3 = self.warehouse.s3()
        places = [(table.location, {})] if not table.partitioned else \
            [(location, values) for values, location in partitions]
        tasks = []
        for location, values in places:
            bucket, _, prefix = location[len("s3://"):].partition("/")
            if prefix and not prefix.endswith("/"):
                prefix += "/"
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
                for obj in page.get("Contents", []):
                    base = obj["Key"].rsplit("/", 1)[-1]
                    if obj["Size"] > 0 and base and not base.startswith(("_", ".")):  # _SUCCESS, .crc
                        tasks.append(Task(bucket, obj["Key"], obj["Size"], values))
        return tasks

    def materialize(self, name: str, table: ExternalTable, ref, tree, query_id: int, pushed=None) -> str | None:
        """Scan ``table`` with the workers into the temporary table ``memory.main.<name>``.

        With ``pushed`` (an mpp.Plan) the workers aggregate: ``<name>`` stays
        empty (the statement's columns), and their partial results go to the
        table whose name is returned.
        """
        import duckdb
        from sqlglot import exp

        columns = self.needed_columns(table, ref, tree) or [table.all_columns[0][0]]
        types = dict(table.all_columns)
        filters = self.pushed_filters(table, ref)
        partitions = self.prune(table, filters)
        target = f"memory.main.{storage.quote(name)}"
        with self.warehouse.cursor() as cursor:
            cursor.execute(f"CREATE TABLE {target} (" +
                           ", ".join(f"{storage.quote(c)} {types[c]}" for c in columns) + ")")
        select = tree if isinstance(tree, exp.Select) else tree.find(exp.Select)
        limit = select.args.get("limit") if select is not None else None
        if limit is not None and limit.expression.sql() == "0":      # a describe (LIMIT 0): read nothing
            return None
        partials, into, partial_sql = None, target, None
        if pushed is not None:          # the partials' columns: the slice step's, over the empty table
            local = exp.Table(this=exp.to_identifier(name), db=exp.to_identifier("main"),
                              catalog=exp.to_identifier("memory"))
            with self.warehouse.cursor() as cursor:
                try:
                    described = cursor.execute(f"DESCRIBE {pushed.slice_sql(lambda s: local.copy())}").fetchall()
                except duckdb.Error:
                    described = None          # not a query the workers can run: they send rows
                if described:
                    partials = f"{name}_partials"
                    into = f"memory.main.{storage.quote(partials)}"
                    cursor.execute(f"CREATE TABLE {into} (" +
                                   ", ".join(f"{storage.quote(c[0])} {c[1]}" for c in described) + ")")
                    partial_sql = pushed.slice_sql(lambda s: exp.Table(this=exp.to_identifier(ROWS)))
        tasks = self.tasks(table, partitions)
        where = " AND ".join(f"({f.sql(dialect='duckdb')})" for f in filters) or "TRUE"
        shares = [Share(worker=i) for i in range(min(WORKERS, len(tasks)))]
        for i, task in enumerate(sorted(tasks, key=lambda t: -t.size)):     # biggest first, round robin
            shares[i % len(shares)].parts.append(task)
        futures = [self.pool.submit(self.work, share, table, columns, where, partial_sql) for share in shares]
        for future in futures:
            future.result()
        with self.warehouse.cursor() as cursor:
            for share in shares:
                for part in share.parts:
                    cursor.register("__partial", part)
                    cursor.execute(f"INSERT INTO {into} SELECT * FROM __partial")
                    cursor.unregister("__partial")
            cursor.executemany(
                f"INSERT INTO {RS}.svl_s3query VALUES (100, ?, 0, 0, ?, ?, to_timestamp(?)::TIMESTAMP, "
                f"to_timestamp(?)::TIMESTAMP, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(query_id, self.warehouse.layout.node_of(s.worker % self.warehouse.slices), s.worker,
                  s.start, s.end, int((s.end - s.start) * 1e6), f"{table.schema}.{table.name}", table.format,
                  "t" if table.partitioned else "f", s.scanned_rows, s.scanned_bytes, s.returned_rows,
                  s.returned_bytes, s.files, len(table.partitions), len(partitions)) for s in shares])
        return partials

    def work(self, share: Share, table: ExternalTable, columns: list[str], where: str,
             partial_sql: str | None = None) -> None:
        """One Spectrum worker: read its objects, filter and project each one, keep the partials;
        with ``partial_sql`` (mpp's slice step over ROWS), aggregate all of them and keep that."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        tasks, share.parts, share.start = share.parts, [], time.time()
        s3 = self.warehouse.s3()
        types = dict(table.all_columns)
        guard, read = table.guard, columns
        if guard is not None:       # Lake Formation: the filter may read columns the role cannot see
            types = dict(guard.columns)
            read = columns + [c for c in guard.inputs() if c not in columns]
        cursor = self.warehouse.connection.cursor()       # shares the warehouse's DuckDB memory bound
        try:
            for task in tasks:
                if table.format == "parquet":
                    reader = RangeReader(s3, task.bucket, task.key, task.size)
                    parquet = pq.ParquetFile(reader)
                    present = {n.lower(): n for n in parquet.schema_arrow.names}
                    wanted = [present[c] for c in read if c in present]
                    data = parquet.read(columns=wanted)
                    share.scanned_bytes += reader.fetched
                    source = [f"{storage.quote(present[c])}" if c in present else "NULL" for c in read]
                else:
                    body = s3.get_object(Bucket=task.bucket, Key=task.key)["Body"].read()
                    share.scanned_bytes += len(body)
                    data = self.read_text(cursor, table, task.key, body)
                    source = [storage.quote(c) if c in types and c not in task.partition else "NULL"
                              for c in read]
                share.scanned_rows += data.num_rows
                share.files += 1
                projected = ", ".join(
                    (f"CAST(? AS {types[c]})" if c in task.partition else f"CAST({s} AS {types[c]})")
                    + f" AS {storage.quote(c)}" for c, s in zip(read, source))
                values = [task.partition[c] for c in read if c in task.partition]
                if data.num_columns == 0:        # only partition columns: the row count is in the footer
                    data = pa.table({"__row": pa.nulls(data.num_rows)})
                rows = f"SELECT {projected} FROM __file"
                if guard is not None:            # the role's rows, and its cells, before anything else
                    shown = ", ".join((f"CASE WHEN ({guard.cells[c]}) THEN {storage.quote(c)} END"
                                       if c in guard.cells else storage.quote(c)) + f" AS {storage.quote(c)}"
                                      for c in columns)
                    rows = f"SELECT {shown} FROM ({rows}) AS __lf WHERE {guard.condition or 'TRUE'}"
                cursor.register("__file", data)
                part = cursor.sql(f"SELECT * FROM ({rows}) WHERE {where}",
                                  params=values).to_arrow_table()
                cursor.unregister("__file")
                share.returned_rows += part.num_rows
                share.returned_bytes += part.nbytes
                share.parts.append(part)
            if partial_sql is not None and share.parts:     # only the partial groups go back
                cursor.register(ROWS, pa.concat_tables(share.parts))
                partial = cursor.sql(partial_sql).to_arrow_table()
                cursor.unregister(ROWS)
                share.parts, share.returned_rows, share.returned_bytes = [partial], partial.num_rows, partial.nbytes
        finally:
            cursor.close()
            share.end = time.time()

    def read_text(self, cursor, table: ExternalTable, key: str, body: bytes):
        """A CSV or delimited text object as an Arrow table of the table's data columns."""
        suffix = ".gz" if key.endswith(".gz") else ""
        handle, path = tempfile.mkstemp(suffix=".csv" + suffix, dir=self.warehouse.path.parent)
        try:
            with os.fdopen(handle, "wb") as f:
                f.write(body)
            data_columns = table.guard.data_columns if table.guard is not None else table.columns
            spec = "{" + ", ".join(f"'{c}': 'VARCHAR'" for c, _ in data_columns) + "}"
            delim = table.delimiter.replace("'", "''")
            return cursor.sql(
                f"SELECT * FROM read_csv(?, delim = '{delim}', header = false, skip = {table.skip_header}, "
                f"columns = {spec}, nullstr = '\\N', null_padding = true)", params=[path]).to_arrow_table()
        finally:
            os.unlink(path)


class Scan:
    """The statement rewritten over the temporary tables of its external scans."""

    def __init__(self, warehouse, tree, names: list[str]):
        self.warehouse, self.tree, self.names = warehouse, tree, names

    def __enter__(self):
        return self.tree

    def __exit__(self, *exc):
        self.drop()

    def drop(self) -> None:
        with self.warehouse.cursor() as cursor:
            for name in self.names:
                cursor.execute(f"DROP TABLE IF EXISTS memory.main.{storage.quote(name)}")

