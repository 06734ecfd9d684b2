"""What a Lake Formation blueprint's workflow does, as one function: copy a database into the lake.

**On AWS.** A *blueprint* is a form in the Lake Formation console; filling it
in creates a *workflow*: AWS Glue crawlers, jobs and triggers that Lake
Formation runs as one unit, on demand or on a schedule, and that the Glue
console shows as a graph. Three blueprint types exist:

- **Database snapshot**: loads (or reloads) every table of a JDBC source
  into the lake, minus an optional exclude pattern;
- **Incremental database**: loads only rows that are new since the last run,
  per table, judged by *bookmark* columns and a bookmark sort order you
  choose; the first run loads everything and sets the bookmarks;
- **Log file**: loads AWS CloudTrail, ELB or ALB logs.

The JDBC source is a Glue *connection* (MySQL, PostgreSQL, SQL Server,
Oracle...) and a *source data path* ``<database>/<schema>/<table>`` (or
``<database>/<table>`` for products without schemas, such as MySQL and
Oracle), where ``%`` stands for any schema or table (``orcl/%``). The path
is case sensitive. The target is a Data Catalog database and an S3 location,
with a data format (Parquet or CSV). When the workflow has finished, the
user who ran it gets ``SELECT`` on the tables it created. The console builds
the workflow through internal operations (``InstantiateTemplate``...) that AWS
does not make public: there is no boto3 call that runs a Lake Formation
blueprint. (Glue's own ``CreateBlueprint`` / ``StartBlueprintRun`` are a
different feature: *your* Python layout script, published as a zip in S3,
that generates a workflow.)

Sources: https://docs.aws.amazon.com/lake-formation/latest/dg/workflows-about.html,
https://docs.aws.amazon.com/lake-formation/latest/dg/workflows-creating.html,
https://docs.aws.amazon.com/glue/latest/dg/programming-etl-connect-bookmarks.html

**Here.** :func:`run_database_blueprint` takes the blueprint's parameters and
does, synchronously, what the generated workflow's job does, through AWS
APIs only (the ``s3`` and ``glue`` boto3 clients it is given, so it runs
against AWS as well): read each matching table from the source, write its
rows as Parquet under ``<target_path>/<table_prefix><table>/``, Hive-style
partitioned when asked (``col=value/``), and create or update the Data
Catalog table and its partitions (``CreateTable``/``UpdateTable``,
``BatchCreatePartition``), so Athena queries it at once. A library
function, not a new API, because AWS has no public blueprint API to imitate.

Sources (:class:`SQLiteSource`, :class:`PostgresSource`, :class:`DynamoDBSource`):

- **SQLite** (a file): the path is ``main/<table>``; SQLite calls its one
  database ``main`` and has no schemas (like MySQL's ``<database>/<table>``);
- **PostgreSQL protocol** (a PostgreSQL server, or the stack's Redshift
  cluster endpoint): ``<database>/<schema>/<table>``, read with psycopg;
- **DynamoDB** (``Scan`` through a boto3 client): not a blueprint source on
  AWS (DynamoDB reaches the lake through a Glue job or DynamoDB's
  export to S3), included here as the NoSQL case: the path is the table
  name; items become rows, their attributes the union of columns (sets,
  lists and maps as JSON text).

**Incremental semantics** (as Glue job bookmarks for JDBC): the bookmark keys
of a table (default: its primary key) must each be strictly monotonically
increasing (``ASCENDING``) or decreasing (``DESCENDING``); gaps are fine. A run
reads only rows whose key tuple is past the stored bookmark (SQL
``WHERE``: the database skips the old rows), appends them as new Parquet files
and moves the bookmark to the last row read. Consequences, as on AWS:
**updates** of already-loaded rows are not seen, unless the bookmark key is
an "updated at" column, in which case the new version is appended next to the
old one (the lake keeps both); **deletes** never reach the lake. A DynamoDB
Scan cannot skip items: it reads the whole table and filters (``ScannedCount``
vs ``Count``), which is why DynamoDB's own export is the usual route there.
The *snapshot* blueprint instead replaces the table's files and partitions
with a fresh copy each run, so updates and deletes show.

The bookmark lives with the table it describes, in the Glue table's
``Parameters`` (``blueprint_bookmark``: keys, order, last values, run number),
readable with ``GetTable``; on AWS it is in the job's bookmark state
(``GetJobBookmark``). Deleting the table therefore starts over with a full
load, as ``ResetJobBookmark`` would.

Bad input fails before anything is written (:class:`BlueprintError`: no table
matches the path, a bookmark column the table lacks, an unknown source...);
if writing a table fails half-way (S3 or the catalog refuses), the files this
run wrote for it are deleted again and its bookmark does not move; tables
loaded before it in the same run stay loaded, with their bookmarks.
"""
from __future__ import annotations

import datetime as dt
import decimal
import fnmatch
import json
import re
import sqlite3
from dataclasses import dataclass, field

import pyarrow as pa

from localaws.core import s3 as s3uri
from localaws.core import tables

BLUEPRINTS = ("DATABASE_SNAPSHOT", "INCREMENTAL_DATABASE")
ORDERS = ("ASCENDING", "DESCENDING")
BOOKMARK_PARAMETER = "blueprint_bookmark"
PARQUET_SERDE = {
    "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
    "OutputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
    "SerdeInfo": {"SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
                  "Parameters": {"serialization.format": "1"}},
}


class BlueprintError(ValueError):
    """Bad blueprint input: the run stops before writing anything (on AWS: the workflow run fails)."""


# ---------------------------------------------------------------- sources
class Source:
    """A database the blueprint reads: lists tables, reads rows past a bookmark."""

    levels: tuple[str, ...] = ()

    def tables(self) -> list[tuple[str, ...]]:
        """Every table, as a tuple of names of ``levels`` (e.g. ``("dev", "shop", "orders")``)."""
        raise NotImplementedError

    def columns(self, table: tuple[str, ...]) -> list[str]:
        raise NotImplementedError

    def primary_key(self, table: tuple[str, ...]) -> list[str]:
        return []

    def read(self, table, keys: list[str], order: str, after: list | None) -> tuple[list[dict], int]:
        """Rows whose ``keys`` are past ``after`` (all rows when None), sorted by the keys;
        and how many rows the source had to read to find them."""
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _past(keys: list[str], order: str, quote) -> str:
    """``k1 > ? OR (k1 = ? AND k2 > ?)``...: the key tuple past the bookmark, lexicographically."""
    op = ">" if order == "ASCENDING" else "<"
    terms = []
    for i, key in enumerate(keys):
        equal = [f"{quote(k)} = ?" for k in keys[:i]]
        terms.append("(" + " AND ".join(equal + [f"{quote(key)} {op} ?"]) + ")")
    return " OR ".join(terms)


def _past_params(after: list) -> list:
    params = []
    for i in range(len(after)):
        params.extend(after[:i] + [after[i]])
    return params


class SQLiteSource(Source):
    """A SQLite database file; its tables are ``main/<table>``."""

    levels = ("database", "table")

    def __init__(self, path):
        self.path = str(path)
        self._con = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)

    def _quote(self, name: str) -> str:
        return '"' + name.replace('"', '""') + '"'

    def tables(self):
        rows = self._con.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                 "AND name NOT LIKE 'sqlite_%' ORDER BY name").fetchall()
        return [("main", name) for (name,) in rows]

    def columns(self, table):
        return [r[1] for r in self._con.execute(f"PRAGMA table_info({self._quote(table[-1])})")]

    def primary_key(self, table):
        info = sorted((r[5], r[1]) for r in self._con.execute(f"PRAGMA table_info({self._quote(table[-1])})") if r[5])
        return [name for _, name in info]

    def read(self, table, keys, order, after):
        q = self._quote
        sql = f"SELECT * FROM {q(table[-1])}"
        params: list = []
        if after is not None:
            sql += f" WHERE {_past(keys, order, q)}"
            params = _past_params(after)
        if keys:
            direction = "ASC" if order == "ASCENDING" else "DESC"
            sql += " ORDER BY " + ", ".join(f"{q(k)} {direction}" for k in keys)
        cur = self._con.execute(sql, params)
        names = [d[0] for d in cur.description]
        rows = [dict(zip(names, r)) for r in cur.fetchall()]
        return rows, len(rows)

    def close(self):
        self._con.close()


class PostgresSource(Source):
    """A database spoken to over PostgreSQL's wire protocol (psycopg): ``<database>/<schema>/<table>``.

    A Redshift cluster's endpoint works too (``Endpoint.Address`` / ``Port``
    of DescribeClusters); its tables are listed from ``svv_tables``, a plain
    PostgreSQL server's from ``information_schema.tables``.
    """

    levels = ("database", "schema", "table")
    SYSTEM_SCHEMAS = ("pg_catalog", "information_schema", "pg_internal")

    def __init__(self, host: str, port: int, database: str, user: str, password: str):
        import psycopg

        self.database = database
        self._con = psycopg.connect(host=host, port=port, dbname=database, user=user, password=password,
                                    autocommit=True, connect_timeout=10)

    @staticmethod
    def _quote(name: str) -> str:
        return '"' + name.replace('"', '""') + '"'

    def _query(self, sql: str, params=()):
        cur = self._con.cursor()
        cur.execute(sql.replace("?", "%s"), params)
        names = [d.name for d in cur.description]
        return names, cur.fetchall()

    def tables(self):
        import psycopg

        try:      # Redshift: svv_tables lists user tables only
            _, rows = self._query("SELECT table_schema, table_name FROM svv_tables WHERE table_type = 'BASE TABLE'")
        except psycopg.Error:
            _, rows = self._query("SELECT table_schema, table_name FROM information_schema.tables "
                                  "WHERE table_type = 'BASE TABLE'")
        return sorted((self.database, s, t) for s, t in rows if s not in self.SYSTEM_SCHEMAS)

    def _name(self, table) -> str:
        return f"{self._quote(table[1])}.{self._quote(table[2])}"

    def columns(self, table):
        names, _ = self._query(f"SELECT * FROM {self._name(table)} LIMIT 0")
        return names

    def read(self, table, keys, order, after):
        sql = f"SELECT * FROM {self._name(table)}"
        params: list = []
        if after is not None:
            sql += f" WHERE {_past(keys, order, self._quote)}"
            params = _past_params(after)
        if keys:
            direction = "ASC" if order == "ASCENDING" else "DESC"
            sql += " ORDER BY " + ", ".join(f"{self._quote(k)} {direction}" for k in keys)
        names, rows = self._query(sql, params)
        out = [dict(zip(names, r)) for r in rows]
        return out, len(out)

    def close(self):
        self._con.close()


class DynamoDBSource(Source):
    """DynamoDB tables read with ``Scan`` (paginated) through a boto3 client: the path is ``<table>``."""

    levels = ("table",)

    def __init__(self, dynamodb):
        self.dynamodb = dynamodb

    def tables(self):
        names = []
        for page in self.dynamodb.get_paginator("list_tables").paginate():
            names.extend(page["TableNames"])
        return [(n,) for n in sorted(names)]

    def _scan(self, table, **kwargs):
        items, scanned = [], 0
        for page in self.dynamodb.get_paginator("scan").paginate(TableName=table[0], ConsistentRead=True, **kwargs):
            items.extend(page["Items"])
            scanned += page["ScannedCount"]
        return items, scanned

    def columns(self, table):
        items, _ = self._scan(table)
        keys = self.primary_key(table)
        seen = dict.fromkeys(keys)
        for item in items:
            seen.update(dict.fromkeys(sorted(item)))
        return list(seen)

    def primary_key(self, table):
        schema = self.dynamodb.describe_table(TableName=table[0])["Table"]["KeySchema"]
        return [k["AttributeName"] for k in sorted(schema, key=lambda k: k["KeyType"] != "HASH")]

    def read(self, table, keys, order, after):
        from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

        kwargs = {}
        if after is not None:      # a filter: DynamoDB still reads (and bills) every item
            op = ">" if order == "ASCENDING" else "<"
            names = {f"#k{i}": k for i, k in enumerate(keys)}
            values = {f":v{i}": TypeSerializer().serialize(_dynamo_value(v)) for i, v in enumerate(after)}
            terms = []
            for i in range(len(keys)):
                equal = [f"#k{j} = :v{j}" for j in range(i)]
                terms.append("(" + " AND ".join(equal + [f"#k{i} {op} :v{i}"]) + ")")
            kwargs = {"FilterExpression": " OR ".join(terms), "ExpressionAttributeNames": names,
                      "ExpressionAttributeValues": values}
        items, scanned = self._scan(table, **kwargs)
        des = TypeDeserializer()
        rows = [{k: _plain(des.deserialize(v)) for k, v in item.items()} for item in items]
        rows.sort(key=lambda r: tuple(r.get(k) for k in keys), reverse=(order == "DESCENDING"))
        return rows, scanned


def _dynamo_value(v):
    if isinstance(v, float):
        return decimal.Decimal(str(v))
    return v


def _plain(value):
    """A DynamoDB value as a Parquet-friendly one: integral numbers int, others float; sets, lists
    and maps JSON text."""
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, (set, list, dict)):
        def default(o):
            if isinstance(o, decimal.Decimal):
                return _plain(o)
            if isinstance(o, set):
                return sorted(o, key=str)
            if isinstance(o, bytes):
                return o.hex()
            return str(o)
        return json.dumps(sorted(value, key=str) if isinstance(value, set) else value, default=default,
                          sort_keys=True)
    if hasattr(value, "value") and isinstance(getattr(value, "value"), bytes):     # Binary
        return value.value
    return value


# ---------------------------------------------------------------- results
@dataclass
class TableLoad:
    """One table of a run: what was read, written and registered, and the bookmark after it."""
    source: str                     # "dev/shop/orders"
    table: str                      # the Data Catalog table
    location: str
    rows_read: int                  # rows the source returned (past the bookmark)
    rows_scanned: int               # rows the source had to read (DynamoDB: the whole table)
    rows_written: int
    files: list[str] = field(default_factory=list)
    partitions_added: list[list[str]] = field(default_factory=list)
    bookmark: dict | None = None


@dataclass
class BlueprintRun:
    blueprint: str
    database: str
    tables: list[TableLoad]

    def __getitem__(self, table: str) -> TableLoad:
        for t in self.tables:
            if t.table == table:
                return t
        raise KeyError(table)


# ---------------------------------------------------------------- the run
def _matches(path: str, table: tuple[str, ...], levels) -> bool:
    parts = path.split("/")
    if len(parts) != len(levels):
        want = "/".join(f"<{level}>" for level in levels)
        raise BlueprintError(f"source data path {path!r} must have the form {want} for this source")
    return all(fnmatch.fnmatchcase(name, part.replace("%", "*")) for name, part in zip(table, parts))


def _glue_type(kind: pa.DataType) -> str:
    if pa.types.is_boolean(kind):
        return "boolean"
    if pa.types.is_integer(kind):
        return "bigint"
    if pa.types.is_floating(kind):
        return "double"
    if pa.types.is_decimal(kind):
        return f"decimal({kind.precision},{kind.scale})"
    if pa.types.is_timestamp(kind):
        return "timestamp"
    if pa.types.is_date(kind):
        return "date"
    if pa.types.is_binary(kind):
        return "binary"
    return "string"


def _arrow(rows: list[dict], columns: list[str], schema: pa.Schema | None) -> pa.Table:
    data = {c: [r.get(c) for r in rows] for c in columns}
    arrays = {}
    for c in columns:
        values = data[c]
        if schema is not None and c.lower() in schema.names:
            arrays[c] = pa.array(values, type=schema.field(c.lower()).type)
        elif any(isinstance(v, decimal.Decimal) for v in values):
            scale = max((-v.as_tuple().exponent for v in values if isinstance(v, decimal.Decimal)), default=0)
            arrays[c] = pa.array(values, type=pa.decimal128(38, max(scale, 0)))
        elif values and all(v is None for v in values):
            arrays[c] = pa.array(values, type=pa.string())
        elif any(isinstance(v, float) for v in values) and all(isinstance(v, (int, float)) or v is None
                                                                for v in values):
            arrays[c] = pa.array([None if v is None else float(v) for v in values], type=pa.float64())
        else:
            arrays[c] = pa.array(values)
    return pa.table(arrays)


def _schema_of(table: dict | None) -> pa.Schema | None:
    """The Arrow types of an existing catalog table's columns (so a later run writes the same types)."""
    if table is None:
        return None
    mapping = {"boolean": pa.bool_(), "bigint": pa.int64(), "double": pa.float64(), "timestamp": pa.timestamp("us"),
               "date": pa.date32(), "binary": pa.binary(), "string": pa.string()}
    fields = []
    for col in table["StorageDescriptor"]["Columns"] + table.get("PartitionKeys", []):
        t = col["Type"]
        if t.startswith("decimal("):
            p, s = t[8:-1].split(",")
            kind = pa.decimal128(int(p), int(s))
        else:
            kind = mapping.get(t, pa.string())
        fields.append(pa.field(col["Name"], kind))
    return pa.schema(fields)


def _text(value) -> str:
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return str(value)


def _json_value(value):
    if isinstance(value, (dt.date, dt.datetime)):
        return {"$date": value.isoformat()}
    if isinstance(value, decimal.Decimal):
        return {"$decimal": str(value)}
    return value


def _from_json(value):
    if isinstance(value, dict) and "$date" in value:
        text = value["$date"]
        return dt.datetime.fromisoformat(text) if "T" in text or " " in text else dt.date.fromisoformat(text)
    if isinstance(value, dict) and "$decimal" in value:
        return decimal.Decimal(value["$decimal"])
    return value


def _catalog_name(name: str) -> str:
    """A Data Catalog table name Athena accepts unquoted: lower case, anything but letters, digits and
    ``_`` replaced by ``_`` (``orders-2026`` -> ``orders_2026``)."""
    return re.sub(r"[^a-z0-9_]", "_", name.lower())


def _get_table(glue, database: str, name: str) -> dict | None:
    try:
        return glue.get_table(DatabaseName=database, Name=name)["Table"]
    except glue.exceptions.EntityNotFoundException:
        return None


def run_database_blueprint(source: Source, source_path: str, *, s3, glue, target_database: str,
                           target_path: str, blueprint: str = "INCREMENTAL_DATABASE",
                           bookmark_keys: dict[str, list[str]] | None = None,
                           bookmark_order: str = "ASCENDING", exclude_patterns: tuple[str, ...] = (),
                           partition_keys: dict[str, list[str]] | None = None, table_prefix: str = "",
                           data_format: str = "parquet") -> BlueprintRun:
    """Run a database blueprint's workflow once: copy the tables ``source_path`` matches into the lake.

    ``source``: a :class:`SQLiteSource`, :class:`PostgresSource` or
    :class:`DynamoDBSource` (the blueprint's *database connection*);
    ``source_path``: the *source data path*, ``%`` for any schema or table;
    ``target_database`` / ``target_path``: the Data Catalog database (it must
    exist) and the S3 location (``s3://bucket/prefix/``) the tables go to;
    ``blueprint``: ``"INCREMENTAL_DATABASE"`` (append rows past the bookmark)
    or ``"DATABASE_SNAPSHOT"`` (replace the table with a fresh copy);
    ``bookmark_keys``: per source table name, its bookmark columns (default:
    the primary key); ``bookmark_order``: ``"ASCENDING"`` or ``"DESCENDING"``;
    ``exclude_patterns``: snapshot only, paths (``%`` wildcards) to leave out;
    ``partition_keys``: per source table name, the columns to partition the
    files by (a local extension: on AWS you would edit the generated job);
    ``table_prefix``: put before each catalog table's name;
    ``data_format``: ``"parquet"`` only here (the blueprint also offers CSV).

    Returns a :class:`BlueprintRun` with, per table, the rows read and
    written, the files, the partitions added and the new bookmark.
    """
    bookmark_keys = {k: list(v) for k, v in (bookmark_keys or {}).items()}
    partition_keys = {k: list(v) for k, v in (partition_keys or {}).items()}
    if not isinstance(source, Source):
        raise BlueprintError(f"unknown source {source!r}: use SQLiteSource, PostgresSource or DynamoDBSource")
    if blueprint not in BLUEPRINTS:
        raise BlueprintError(f"blueprint must be one of {', '.join(BLUEPRINTS)}, not {blueprint!r}")
    if bookmark_order not in ORDERS:
        raise BlueprintError(f"bookmark_order must be ASCENDING or DESCENDING, not {bookmark_order!r}")
    if data_format.lower() != "parquet":
        raise BlueprintError(f"data format {data_format!r} is not supported here: use parquet")
    if blueprint == "INCREMENTAL_DATABASE" and exclude_patterns:
        raise BlueprintError("exclude patterns belong to the DATABASE_SNAPSHOT blueprint; the incremental "
                             "blueprint names its tables in the source data path")
    if not s3uri.is_s3(target_path):
        raise BlueprintError(f"target path must be an s3:// URI, not {target_path!r}")
    bucket, prefix = s3uri.split(s3uri.folder(target_path))
    try:
        s3.head_bucket(Bucket=bucket)
    except Exception as e:     # botocore ClientError: 404 / 403
        raise BlueprintError(f"target bucket {bucket} cannot be written: {e}") from None
    try:
        glue.get_database(Name=target_database)
    except glue.exceptions.EntityNotFoundException:
        raise BlueprintError(f"target database {target_database} does not exist in the Data Catalog") from None

    # -- plan every table first: nothing is written until all of it checks out
    chosen = [t for t in source.tables() if _matches(source_path, t, source.levels)]
    chosen = [t for t in chosen if not any(_matches(p, t, source.levels) for p in exclude_patterns)]
    if not chosen:
        raise BlueprintError(f"no table matches the source data path {source_path!r} (it is case sensitive)")
    for named in list(bookmark_keys) + list(partition_keys):
        if named not in {t[-1] for t in chosen}:
            raise BlueprintError(f"bookmark or partition keys name table {named!r}, which {source_path!r} "
                                 "does not include")
    plans = []
    for table in chosen:
        name = table[-1]
        columns = source.columns(table)
        keys = bookmark_keys.get(name) or source.primary_key(table)
        if blueprint == "INCREMENTAL_DATABASE" and not keys:
            raise BlueprintError(f"table {'/'.join(table)} has no primary key: give its bookmark_keys")
        missing = [k for k in keys + partition_keys.get(name, []) if k not in columns]
        if missing:
            raise BlueprintError(f"table {'/'.join(table)} has no column {missing[0]!r} "
                                 f"(its columns: {', '.join(columns)})")
        if set(partition_keys.get(name, [])) >= set(columns):
            raise BlueprintError(f"table {'/'.join(table)}: partition keys cannot be every column")
        catalog_name = _catalog_name(table_prefix + name)
        existing = _get_table(glue, target_database, catalog_name)
        state = json.loads(existing.get("Parameters", {}).get(BOOKMARK_PARAMETER, "null")) if existing else None
        if state and blueprint == "INCREMENTAL_DATABASE" and (state["keys"] != keys or state["order"] != bookmark_order):
            raise BlueprintError(f"table {catalog_name} was loaded with bookmark keys {state['keys']} "
                                 f"{state['order']}; delete the table to start over with other keys")
        if existing and existing.get("PartitionKeys") is not None:
            had = [p["Name"] for p in existing.get("PartitionKeys", [])]
            if had != [k.lower() for k in partition_keys.get(name, [])]:
                raise BlueprintError(f"table {catalog_name} is partitioned by {had}; delete it to change that")
        plans.append((table, columns, keys, catalog_name, existing, state))

    run = BlueprintRun(blueprint, target_database, [])
    for table, columns, keys, catalog_name, existing, state in plans:
        run.tables.append(_load(source, table, columns, keys, catalog_name, existing, state, s3=s3, glue=glue,
                                database=target_database, bucket=bucket, prefix=prefix, blueprint=blueprint,
                                order=bookmark_order, parts=partition_keys.get(table[-1], [])))
    return run


def _load(source, table, columns, keys, catalog_name, existing, state, *, s3, glue, database, bucket, prefix,
          blueprint, order, parts) -> TableLoad:
    incremental = blueprint == "INCREMENTAL_DATABASE"
    after = [_from_json(v) for v in state["last"]] if (incremental and state and state.get("last")) else None
    number = (state or {}).get("run", 0) + 1
    rows, scanned = source.read(table, keys, order, after)
    location = s3uri.join(bucket, f"{prefix}{catalog_name}/")
    load = TableLoad("/".join(table), catalog_name, location, len(rows), scanned, 0)
    schema = _schema_of(existing) if incremental else None
    data = _arrow(rows, columns, schema)
    lowered = data.rename_columns([c.lower() for c in data.column_names])
    part_cols = [p.lower() for p in parts]

    # group rows by partition values; one file per partition per run
    groups: dict[tuple, list[int]] = {}
    if part_cols:
        values = list(zip(*[lowered.column(p).to_pylist() for p in part_cols])) if len(lowered) else []
        for i, v in enumerate(values):
            groups.setdefault(tuple(_text(x) for x in v), []).append(i)
    elif len(lowered):
        groups[()] = list(range(len(lowered)))
    body = lowered.drop_columns(part_cols) if part_cols else lowered

    old_keys = []
    if not incremental:
        listed = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{prefix}{catalog_name}/")
        old_keys = [o["Key"] for page in listed for o in page.get("Contents", [])]
    written: list[str] = []
    try:
        for values, indices in sorted(groups.items()):
            folder = "".join(f"{c}={v}/" for c, v in zip(part_cols, values))
            key = f"{prefix}{catalog_name}/{folder}run-{number:05d}-part-00000.parquet"
            s3.put_object(Bucket=bucket, Key=key, Body=tables.encode(body.take(indices), "parquet", "snappy"))
            written.append(key)
        load.files = [s3uri.join(bucket, k) for k in written]
        load.rows_written = len(body)

        columns_in = [{"Name": f.name, "Type": _glue_type(f.type)} for f in body.schema]
        partitions_in = [{"Name": c, "Type": _glue_type(lowered.schema.field(c).type)} for c in part_cols]
        if existing is not None and incremental:       # keep the table's columns; add new ones at the end
            had = {c["Name"] for c in existing["StorageDescriptor"]["Columns"]}
            columns_in = existing["StorageDescriptor"]["Columns"] + [c for c in columns_in if c["Name"] not in had]
            partitions_in = existing.get("PartitionKeys", [])
        last = state.get("last") if state else None
        if incremental and rows:
            last = [_json_value(rows[-1][k]) for k in keys]
        bookmark = {"keys": keys, "order": order, "last": last, "run": number, "blueprint": blueprint}
        table_input = {
            "Name": catalog_name, "TableType": "EXTERNAL_TABLE",
            "Parameters": {"classification": "parquet", BOOKMARK_PARAMETER: json.dumps(bookmark),
                           "source": "/".join(table)},
            "PartitionKeys": partitions_in,
            "StorageDescriptor": {"Columns": columns_in, "Location": location, **PARQUET_SERDE},
        }
        if existing is None:
            glue.create_table(DatabaseName=database, TableInput=table_input)
        else:
            glue.update_table(DatabaseName=database, TableInput=table_input)

        if part_cols:
            known = set()
            if existing is not None:
                for page in glue.get_paginator("get_partitions").paginate(DatabaseName=database, TableName=catalog_name):
                    known.update(tuple(p["Values"]) for p in page["Partitions"])
            new = [list(v) for v in sorted(groups) if v not in known]
            if not incremental:       # a snapshot: partitions that no longer have rows go
                gone = [list(v) for v in known if v not in groups]
                for i in range(0, len(gone), 25):
                    glue.batch_delete_partition(DatabaseName=database, TableName=catalog_name,
                                                PartitionsToDelete=[{"Values": v} for v in gone[i:i + 25]])
            inputs = [{"Values": v, "StorageDescriptor": {
                "Columns": columns_in, **PARQUET_SERDE,
                "Location": location + "".join(f"{c}={x}/" for c, x in zip(part_cols, v))}} for v in new]
            for i in range(0, len(inputs), 100):
                glue.batch_create_partition(DatabaseName=database, TableName=catalog_name,
                                            PartitionInputList=inputs[i:i + 100])
            load.partitions_added = new
        load.bookmark = bookmark
    except Exception:
        for key in written:
            s3.delete_object(Bucket=bucket, Key=key)
        raise
    for key in old_keys:         # a snapshot's previous copy, once the new one is registered
        s3.delete_object(Bucket=bucket, Key=key)
    return load
