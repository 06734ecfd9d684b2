"""The warehouse behind a Redshift cluster: Redshift SQL executed for real, on DuckDB.

A Redshift cluster is a *leader node* that parses and plans SQL and *compute
nodes*, each split into *slices* that hold a share of every table's rows and
work on them in parallel. :class:`Warehouse` is one cluster's database:

- :meth:`Warehouse.execute` takes one Redshift SQL statement (and ``$1``,
  ``$2``... parameters), translates it to DuckDB's dialect with sqlglot
  (``read="redshift"``), runs it, and returns a :class:`Result`: columns with
  their PostgreSQL types (what the wire protocol and the Data API report),
  rows as Python values, and the command tag (``SELECT 3``, ``INSERT 0 5``).
- A statement the database refuses raises :class:`~.errors.SQLError` with
  the SQLSTATE code PostgreSQL (and so Redshift) reports, never a DuckDB
  traceback.

Inside, the warehouse is a small MPP database you can look into:

- every table lives in one physical table per *slice* (``storage.py``),
  placed by its DISTSTYLE / DISTKEY and kept in SORTKEY order by VACUUM;
  ``ddl.py`` reads Redshift's CREATE TABLE;
- every SELECT is profiled, so the blocks (DuckDB row groups) each slice read
  land in STL_SCAN and in :attr:`Warehouse.last_query_stats`;
- Redshift's system views (SVV_TABLE_INFO, STV_SLICES, STL_QUERY...) are
  views over that bookkeeping (``system_views.py``);
- EXPLAIN prints the join's data-movement steps (``planner.py``);
- COPY loads from S3 and UNLOAD writes to S3 (``loading.py``), through the
  S3 client the cluster's plane gives (``s3=``);
- tables of an external schema are scanned by Spectrum workers over S3
  (``spectrum.py``), their Glue entries read through ``glue=``;
- a repeated SELECT on unchanged tables is answered from the result cache
  (``cache.py``; SVL_QLOG.source_query).

Clients reach a warehouse three ways, as on AWS: the PostgreSQL wire
protocol on the cluster's endpoint (``wire.py``; ``redshift_connector``,
psycopg), the Redshift Data API (``api.py``), and Redshift Spectrum's
external tables over S3.
"""
from __future__ import annotations

import json
import re
import threading
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path

from localaws.core import limits

from . import cache, ddl, errors, loading, planner, spectrum, storage, system_views
from .nodes import slices_per_node

#: DuckDB type -> (PostgreSQL type name as Redshift reports it, type OID on the wire).
PG_TYPES = {
    "BOOLEAN": ("boolean", 16),
    "SMALLINT": ("smallint", 21),
    "INTEGER": ("integer", 23),
    "BIGINT": ("bigint", 20),
    "HUGEINT": ("numeric", 1700),
    "REAL": ("real", 700),
    "FLOAT": ("real", 700),
    "DOUBLE": ("double precision", 701),
    "DECIMAL": ("numeric", 1700),
    "VARCHAR": ("character varying", 1043),
    "DATE": ("date", 1082),
    "TIME": ("time without time zone", 1083),
    "TIMESTAMP": ("timestamp without time zone", 1114),
    "TIMESTAMP WITH TIME ZONE": ("timestamp with time zone", 1184),
    "BLOB": ("character varying", 1043),
}


@dataclass
class Column:
    """One result column: its name, Redshift's type name for it, and the type's wire OID."""
    name: str
    type_name: str
    type_oid: int


@dataclass
class Result:
    """What one statement gives back.

    ``columns`` is None for statements without a result set (DDL, INSERT...);
    ``command`` is the PostgreSQL command tag; ``rowcount`` the rows returned,
    inserted, updated or deleted (-1 when not applicable).
    """
    command: str
    columns: list[Column] | None = None
    rows: list[tuple] = field(default_factory=list)
    rowcount: int = -1


def pg_type(duckdb_type) -> tuple[str, int]:
    """Redshift's name and wire OID for a DuckDB column type (``DECIMAL(10,2)`` -> numeric)."""
    text = str(duckdb_type).upper()
    return PG_TYPES.get(text) or PG_TYPES.get(text.split("(")[0], ("character varying", 1043))


# -- errors: DuckDB's exception types -> SQLSTATE ------------------------------
def sql_error(exc: Exception) -> errors.SQLError:
    """The SQLError Redshift would report for a DuckDB exception (mapped by type, then message)."""
    import duckdb

    message = str(exc).split("\n")[0]
    for prefix in ("Parser Error: ", "Catalog Error: ", "Binder Error: ", "Conversion Error: ",
                   "Invalid Input Error: ", "Out of Range Error: ", "Constraint Error: ", "Not implemented Error: "):
        message = message.removeprefix(prefix)
    if isinstance(exc, duckdb.ParserException):
        return errors.SQLError(errors.SYNTAX_ERROR, message)
    if isinstance(exc, duckdb.CatalogException):
        if re.search(r"\bFunction\b|\bfunction\b", message):
            return errors.SQLError(errors.UNDEFINED_FUNCTION, message)
        if "already exists" in message:
            return errors.SQLError(errors.DUPLICATE_TABLE, message)
        return errors.SQLError(errors.UNDEFINED_TABLE, message)
    if isinstance(exc, duckdb.BinderException):
        code = errors.UNDEFINED_COLUMN if "column" in message.lower() else errors.DATATYPE_MISMATCH
        return errors.SQLError(code, message)
    if isinstance(exc, duckdb.ConversionException):
        return errors.SQLError(errors.INVALID_TEXT_REPRESENTATION, message)
    if isinstance(exc, duckdb.OutOfRangeException):
        return errors.SQLError(errors.NUMERIC_OUT_OF_RANGE, message)
    if isinstance(exc, duckdb.NotImplementedException):
        return errors.SQLError(errors.FEATURE_NOT_SUPPORTED, message)
    if isinstance(exc, duckdb.InterruptException):
        return errors.SQLError(errors.QUERY_CANCELED, "Query cancelled.")
    return errors.SQLError(errors.INTERNAL_ERROR, message)


# -- translation: Redshift SQL -> DuckDB SQL ----------------------------------
#: Table properties that shape storage on Redshift and mean nothing to DuckDB.
STORAGE_PROPERTIES = ("DistStyleProperty", "DistKeyProperty", "SortKeyProperty")


QUOTED = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"")
PLACEHOLDER = re.compile(r"(\$\d+)(?=[^\s\d])")


def _spaced_placeholders(sql: str) -> str:
    """``$1,$2`` -> ``$1 ,$2`` outside quotes: sqlglot reads ``$1,$`` as the start of a
    dollar-quoted string (psycopg writes parameters without spaces)."""
    parts, last = [], 0
    for quoted in QUOTED.finditer(sql):
        parts.append(PLACEHOLDER.sub(r"\1 ", sql[last:quoted.start()]))
        parts.append(quoted.group(0))
        last = quoted.end()
    parts.append(PLACEHOLDER.sub(r"\1 ", sql[last:]))
    return "".join(parts)


def parse(sql: str):
    """sqlglot's tree of one Redshift statement; a syntax error becomes SQLSTATE 42601."""
    import sqlglot
    from sqlglot.errors import ParseError, TokenError

    try:
        statements = [s for s in sqlglot.parse(_spaced_placeholders(sql), read="redshift") if s is not None]
    except TokenError:
        raise errors.SQLError(errors.SYNTAX_ERROR, "syntax error: unterminated quoted string or "
                              "dollar-quoted body") from None
    except ParseError as exc:
        first = exc.errors[0] if exc.errors else {}
        raise errors.SQLError(errors.SYNTAX_ERROR, f'syntax error at or near "{first.get("highlight", "")}"',
                              first.get("col")) from None
    if len(statements) != 1:
        raise errors.SQLError(errors.SYNTAX_ERROR, "expected exactly one statement")
    return statements[0]


def to_duckdb(tree) -> str:
    """DuckDB SQL for a parsed Redshift statement, without Redshift's storage properties."""
    from sqlglot import exp

    tree = tree.copy()
    for name in STORAGE_PROPERTIES:
        for node in list(tree.find_all(getattr(exp, name))):
            node.pop()
    return tree.sql(dialect="duckdb")


def command_tag(tree, rowcount: int) -> str:
    """The PostgreSQL command tag of a statement (``SELECT 3``, ``INSERT 0 5``, ``CREATE TABLE``)."""
    from sqlglot import exp

    if isinstance(tree, exp.Insert):
        return f"INSERT 0 {rowcount}"
    if isinstance(tree, exp.Update):
        return f"UPDATE {rowcount}"
    if isinstance(tree, exp.Delete):
        return f"DELETE {rowcount}"
    if isinstance(tree, (exp.Create, exp.Drop)):
        kind = (tree.args.get("kind") or "TABLE").upper()
        return f"{'CREATE' if isinstance(tree, exp.Create) else 'DROP'} {kind}"
    if isinstance(tree, exp.Query):
        return f"SELECT {rowcount}"
    return tree.key.upper() if isinstance(tree, exp.Expression) else "OK"


def written_tables(tree) -> list[tuple[str, str]]:
    """The (schema, table) pairs a statement writes or replaces (for the result cache)."""
    from sqlglot import exp

    if isinstance(tree, exp.TruncateTable):
        targets = tree.expressions
    elif isinstance(tree, exp.Drop):
        targets = tree.args.get("tables") or [tree.this]
    elif isinstance(tree, (exp.Insert, exp.Update, exp.Delete, exp.Merge, exp.Create, exp.Alter)):
        targets = [tree.this.this if isinstance(tree.this, exp.Schema) else tree.this]
    else:
        return []
    return [((t.db or "public").lower(), t.name.lower()) for t in targets if isinstance(t, exp.Table)]


# -- the warehouse --------------------------------------------------------------
#: Transaction control: each statement here commits on its own (the wire server tracks BEGIN/COMMIT for clients).
TRANSACTION_WORDS = {"BEGIN": "BEGIN", "START": "START TRANSACTION", "COMMIT": "COMMIT", "END": "COMMIT",
                     "ROLLBACK": "ROLLBACK", "ABORT": "ROLLBACK"}

#: Rows per block (a DuckDB row group). Redshift's blocks are 1 MB of one column; this smaller
#: size lets course-sized tables (a few 100k rows) span many blocks, so zone maps can show.
BLOCK_ROWS = 8192


@dataclass
class ScanStat:
    """What one slice read of one table for the last query: the blocks of STL_SCAN."""
    slice: int
    table: str                 # schema.table
    rows_pre_filter: int       # rows in the blocks read
    rows: int                  # rows that passed the filter
    blocks_read: int
    blocks_total: int


class Warehouse:
    """One cluster's database, stored in ``work_dir`` (a DuckDB file), bounded by core.limits.

    ``execute`` is safe to call from several threads (one cursor per call;
    writes take a lock, one at a time); ``cancel`` interrupts what runs.
    The cluster has ``number_of_nodes`` x ``slices_per_node(node_type)``
    slices (STV_SLICES); ``block_rows`` is the rows per block.
    """

    def __init__(self, cluster_identifier: str, database: str, master_username: str,
                 master_password: str, work_dir: str | Path, node_type: str = "ra3.xlplus",
                 number_of_nodes: int = 1, block_rows: int = BLOCK_ROWS, s3=None, glue=None):
        import duckdb

        #: A callable returning a boto3 S3 client: what COPY reads and UNLOAD writes through
        #: (``loading.py``); the cluster's plane passes the stack's. None: no COPY/UNLOAD.
        self.s3 = s3
        #: ``glue(region=None)`` -> a boto3 Glue client: the Data Catalog of external schemas (Spectrum).
        self.spectrum = spectrum.Spectrum(self, glue)
        self.cache = cache.ResultCache()
        self.cluster_identifier, self.database = cluster_identifier, database
        self.master_username, self.master_password = master_username, master_password
        self.node_type, self.number_of_nodes = node_type, number_of_nodes
        self.layout = storage.Layout(number_of_nodes, slices_per_node(node_type))
        self.storage = storage.Storage(self.layout)
        self.path = Path(work_dir) / f"{cluster_identifier}.duckdb"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.connection = duckdb.connect(config=limits.duckdb_config("redshift"))
        # The cluster's file is attached under the database's name, so current_database() is it.
        self.connection.execute(f"ATTACH '{self.path}' AS {storage.quote(database)} (ROW_GROUP_SIZE {block_rows})")
        self.connection.execute(f"CREATE SCHEMA IF NOT EXISTS {storage.quote(database)}.public")
        self.lock = threading.Lock()
        self.open_cursors = weakref.WeakSet()   # what cancel() interrupts
        self.last_query_stats: list[ScanStat] = []
        with self.cursor() as cursor:
            self.storage.bootstrap(cursor)
            system_views.install(cursor, self.layout, PG_TYPES)
            self.query_id = cursor.execute(f"SELECT coalesce(max(query), 0) FROM {storage.CATALOG_SCHEMA}.stl_query"
                                           ).fetchone()[0]

    def cursor(self):
        """A DuckDB cursor in the cluster's database, schema ``public`` (system views from ``main``)."""
        cursor = self.connection.cursor()
        self.open_cursors.add(cursor)
        name = storage.quote(self.database)
        cursor.execute(f"USE {name}.public")
        cursor.execute(f"SET search_path = '{self.database}.public,{self.database}.main'")
        return cursor

    def authenticate(self, user: str, password: str) -> bool:
        """Does ``user``/``password`` log in? (The master user; database users come later.)"""
        return user == self.master_username and password == self.master_password

    @property
    def slices(self) -> int:
        """The number of slices of the cluster."""
        return self.layout.count

    # -- one statement ---------------------------------------------------------
    def execute(self, sql: str, params: list | tuple | None = None) -> Result:
        """Run one Redshift statement with ``$1``... parameters; a Result, or SQLError.

        Every statement is logged in STL_QUERY (``aborted`` = 1 when cancelled).
        """
        with self.lock:
            self.query_id += 1
            query_id = self.query_id
        start, aborted = time.time(), 0
        try:
            return self._execute(sql.strip().rstrip(";").strip(), list(params) if params else None, query_id)
        except errors.SQLError as exc:
            aborted = int(exc.code == errors.QUERY_CANCELED)
            raise
        finally:
            self._log(query_id, sql, start, aborted)

    def _execute(self, sql: str, params: list | None, query_id: int) -> Result:
        from sqlglot import exp

        word = sql.split(None, 1)[0].upper() if sql else ""
        if word in TRANSACTION_WORDS:
            return Result(command=TRANSACTION_WORDS[word])
        if word == "VACUUM":
            return self.vacuum(sql)
        if word == "ANALYZE":
            return Result(command="ANALYZE")          # statistics: DuckDB keeps its own
        if word == "EXPLAIN":
            return self.explain(sql[len("EXPLAIN"):].strip())
        if word == "COPY":                                    # from S3 (loading.py)
            target = loading.parse_copy(sql)
            try:
                return Result(command="COPY", rowcount=loading.copy(self, sql, query_id))
            finally:
                self.cache.written([(target.schema.lower(), target.table.lower())])
        if word == "SET" and re.match(r"SET\s+enable_result_cache_for_session\b", sql, re.IGNORECASE):
            self.cache.enabled = not re.search(r"\b(off|false)\s*$", sql, re.IGNORECASE)
            return Result(command="SET")
        if re.match(r"CREATE\s+EXTERNAL\s+SCHEMA\b", sql, re.IGNORECASE):      # Spectrum (spectrum.py)
            return Result(command=spectrum.create_external_schema(self, sql))
        if re.match(r"CREATE\s+EXTERNAL\s+TABLE\b", sql, re.IGNORECASE):
            raise errors.SQLError(errors.FEATURE_NOT_SUPPORTED, "CREATE EXTERNAL TABLE is not emulated: create "
                                  "the table in the Glue Data Catalog (Athena's CREATE EXTERNAL TABLE, Glue's "
                                  "CreateTable or a crawler) and query it through the external schema")
        if word == "DROP" and spectrum.drop_external_schema(self, sql):
            return Result(command="DROP SCHEMA")
        if word == "UNLOAD":                                  # to S3
            return Result(command="UNLOAD", rowcount=loading.unload(self, sql, self.arrow))
        spec = ddl.TableSpec()
        if word == "CREATE":
            if re.search(r"\(\s*LIKE\s", sql, re.IGNORECASE):
                raise errors.SQLError(errors.FEATURE_NOT_SUPPORTED, "CREATE TABLE ... (LIKE ...) is not emulated")
            sql, spec = ddl.strip_attributes(sql)
        tree = parse(sql)
        if isinstance(tree, exp.Query) and not tree.args.get("into"):
            return self.query(sql, tree, params, query_id)
        try:
            if self.spectrum.references(tree):       # INSERT/CREATE ... AS SELECT over external tables
                with self.spectrum.scan(tree, query_id) as scanned:
                    return self._dispatch(scanned, spec, params, query_id)
            return self._dispatch(tree, spec, params, query_id)
        finally:
            self.cache.written(written_tables(tree))

    def _dispatch(self, tree, spec: ddl.TableSpec, params: list | None, query_id: int) -> Result:
        from sqlglot import exp

        if isinstance(tree, exp.Create) and (tree.args.get("kind") or "").upper() == "TABLE" \
                and not tree.args.get("temporary") and not self._has_property(tree, exp.TemporaryProperty):
            return self.create_table(tree, ddl.read_properties(tree, spec), params)
        if isinstance(tree, (exp.Insert, exp.Update, exp.Delete, exp.TruncateTable, exp.Drop, exp.Alter)):
            result = self.write(tree, params)
            if result is not None:
                return result
        return self.run(tree, params, query_id)

    def query(self, sql: str, tree, params: list | None, query_id: int) -> Result:
        """A SELECT: from the result cache when its text, parameters and tables are unchanged;
        over external tables after the Spectrum workers scanned them."""
        if self.spectrum.references(tree):            # external tables: never cached (as on Redshift)
            with self.spectrum.scan(tree, query_id) as scanned:
                return self.run(scanned, params, query_id)
        tables = self._cacheable_tables(sql, tree) if self.cache.enabled else None
        if tables is None:
            return self.run(tree, params, query_id)
        key = self.cache.key(sql, params)
        hit = self.cache.get(key)
        if hit is not None:
            self.last_query_stats = []                # nothing was read: no blocks, no STL_SCAN rows
            with self.cursor() as cursor:
                cursor.execute(f"INSERT INTO {storage.CATALOG_SCHEMA}.result_cache_hits VALUES (?, ?)",
                               [query_id, hit.query_id])
            return Result(hit.result.command, hit.result.columns, list(hit.result.rows), hit.result.rowcount)
        versions = self.cache.snapshot(tables)
        result = self.run(tree, params, query_id)
        self.cache.put(key, query_id, versions, result)
        return result

    def _cacheable_tables(self, sql: str, tree) -> list[tuple[str, str]] | None:
        """The distributed tables a query reads, or None when its result must not be cached."""
        from sqlglot import exp

        if not self.cache.cacheable_text(sql):
            return None
        ctes = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
        names = {((t.db or "public").lower(), t.name.lower()) for t in tree.find_all(exp.Table)
                 if t.db or t.name.lower() not in ctes}
        if not names:
            return None
        with self.cursor() as cursor:
            if not all(self.storage.lookup(cursor, *name) for name in names):
                return None                           # views, temporary tables: not tracked here
        return sorted(names)

    def has_schema(self, name: str) -> bool:
        """Does the database have a (local) schema ``name``?"""
        with self.cursor() as cursor:
            return bool(cursor.execute("SELECT 1 FROM duckdb_schemas() WHERE database_name = ? AND schema_name = ?",
                                       [self.database, name]).fetchall())

    def arrow(self, sql: str):
        """The rows of one Redshift query as an Arrow table (what UNLOAD writes)."""
        import duckdb

        with self.cursor() as cursor:
            try:
                return cursor.sql(to_duckdb(parse(sql))).to_arrow_table()
            except duckdb.Error as exc:
                raise sql_error(exc) from None

    @staticmethod
    def _has_property(tree, kind) -> bool:
        return any(True for _ in tree.find_all(kind))

    def run(self, tree, params: list | None, query_id: int) -> Result:
        """A statement DuckDB runs as it is (SELECT over the views, CREATE VIEW, SET...).

        A query is profiled: the blocks each slice read go to STL_SCAN.
        """
        import duckdb
        from sqlglot import exp

        translated = to_duckdb(tree)
        is_query = isinstance(tree, exp.Query)
        cursor = self.cursor()
        try:
            if is_query:
                cursor.execute("PRAGMA enable_profiling = 'no_output'")
            cursor.execute(translated, params)
            description = cursor.description
            rows = cursor.fetchall() if description is not None else []
            if is_query:
                self._record_scans(cursor, query_id)
        except duckdb.Error as exc:
            raise sql_error(exc) from None
        finally:
            cursor.close()
        if description is None:
            return Result(command=command_tag(tree, 0), rowcount=0)
        if isinstance(tree, (exp.Insert, exp.Update, exp.Delete)):
            count = int(rows[0][0]) if rows else 0
            return Result(command=command_tag(tree, count), rowcount=count)
        if not is_query and [d[0] for d in description] == ["Count"]:
            return Result(command=command_tag(tree, 0), rowcount=0)
        columns = [Column(d[0], *pg_type(d[1])) for d in description]
        return Result(command=command_tag(tree, len(rows)), columns=columns, rows=rows, rowcount=len(rows))

    # -- writes to distributed tables -----------------------------------------------
    def transaction(self, work):
        """Run ``work(cursor)`` in one DuckDB transaction, one writer at a time; DuckDB errors -> SQLError."""
        import duckdb

        with self.lock:
            cursor = self.cursor()
            try:
                cursor.begin()
                result = work(cursor)
                cursor.commit()
                return result
            except BaseException as exc:
                try:
                    cursor.rollback()
                except duckdb.Error:
                    pass
                if isinstance(exc, duckdb.Error):
                    raise sql_error(exc) from None
                raise
            finally:
                cursor.close()

    def lookup(self, cursor, table) -> storage.TableInfo | None:
        """The catalog entry of a sqlglot Table (unqualified names are in ``public``)."""
        return self.storage.lookup(cursor, (table.db or "public").lower(), table.name.lower())

    def create_table(self, tree, spec: ddl.TableSpec, params) -> Result:
        from sqlglot import exp

        target = tree.this.this if isinstance(tree.this, exp.Schema) else tree.this
        schema, name = (target.db or "public").lower(), target.name.lower()
        query = tree.expression

        def work(cursor):
            if query is not None:      # CREATE TABLE ... AS SELECT: the columns come from the query
                source = to_duckdb(query)
                described = cursor.execute(f"DESCRIBE {source}", params).fetchall()
                definitions = [f"{storage.quote(c[0].lower())} {c[1]}" for c in described]
                names = [c[0].lower() for c in described]
                sequences = []
            else:
                definitions, names, sequences = ddl.column_definitions(tree, schema, name)
            for column in filter(None, [spec.distkey, *spec.sortkey]):
                if column not in names:
                    raise errors.SQLError(errors.UNDEFINED_COLUMN,
                                          f'column "{column}" named in DISTKEY or SORTKEY does not exist')
            if tree.args.get("exists") and self.storage.lookup(cursor, schema, name):
                return Result(command="CREATE TABLE")
            for sequence in sequences:
                cursor.execute(sequence)
            table = self.storage.create(cursor, schema, name, ", ".join(definitions), spec.diststyle,
                                        spec.distkey, spec.sortkey, spec.interleaved)
            if query is not None:
                count = self.storage.insert(cursor, table, None, source, params)
                return Result(command=f"SELECT {count}", rowcount=count)
            return Result(command="CREATE TABLE")
        return self.transaction(work)

    def write(self, tree, params) -> Result | None:
        """INSERT, UPDATE, DELETE, TRUNCATE, DROP, ALTER of distributed tables (None: not one of ours)."""
        from sqlglot import exp

        if isinstance(tree, exp.Drop):
            if (tree.args.get("kind") or "").upper() != "TABLE":
                return None
            return self.transaction(lambda cursor: self.drop(cursor, tree))
        if isinstance(tree, exp.TruncateTable):
            return self.truncate(tree)
        target = tree.this.this if isinstance(tree.this, exp.Schema) else tree.this
        if not isinstance(target, exp.Table):
            return None
        with self.cursor() as cursor:
            table = self.lookup(cursor, target)
        if table is None:
            return None
        if isinstance(tree, exp.Alter):
            raise errors.SQLError(errors.FEATURE_NOT_SUPPORTED,
                                  "ALTER TABLE is not emulated for distributed tables: create a new table")
        if isinstance(tree, exp.Insert):
            columns = [c.name.lower() for c in tree.this.expressions] if isinstance(tree.this, exp.Schema) else None
            source = tree.expression.copy()
            if tree.args.get("with") is not None and isinstance(source, exp.Query):
                source.set("with", tree.args["with"].copy())   # WITH x AS (...) INSERT INTO t SELECT ... FROM x
            count = self.transaction(
                lambda cursor: self.storage.insert(cursor, table, columns, to_duckdb(source), params))
            return Result(command=command_tag(tree, count), rowcount=count)
        count = self.transaction(lambda cursor: self.modify(cursor, tree, table, params))
        return Result(command=command_tag(tree, count), rowcount=count)

    def truncate(self, tree) -> Result | None:
        """TRUNCATE of distributed tables: every slice emptied (None: DuckDB's own tables)."""
        with self.cursor() as cursor:
            tables = [self.lookup(cursor, target) for target in tree.expressions]
        if not all(tables):
            return None

        def work(cursor):
            for table in tables:
                self.storage.truncate(cursor, table)
        self.transaction(work)
        return Result(command="TRUNCATE TABLE")

    def modify(self, cursor, tree, table: storage.TableInfo, params) -> int:
        """UPDATE or DELETE: the same statement on every slice's table (for ALL: every copy)."""
        from sqlglot import exp

        counts = []
        alias = tree.this.alias_or_name
        for slice_ in self.layout.slices_of(table):
            statement = tree.copy()
            physical = exp.Table(this=exp.to_identifier(f"{table.schema}.{table.name}", quoted=True),
                                 db=exp.to_identifier(f"slice_{slice_}"),
                                 alias=exp.TableAlias(this=exp.to_identifier(alias)))
            statement.set("this", physical)
            counts.append(int(cursor.execute(statement.sql(dialect="duckdb"), params).fetchone()[0]))
        moved_key = isinstance(tree, exp.Update) and table.diststyle == "KEY" and any(
            isinstance(eq, exp.EQ) and eq.this.name.lower() == table.distkey for eq in tree.expressions)
        if moved_key:
            self.storage.redistribute(cursor, table)
        self.storage.count_rows(cursor, table, sorted_rule="shrink")
        return counts[0] if table.diststyle == "ALL" else sum(counts)

    def drop(self, cursor, tree) -> Result:
        from sqlglot import exp

        tables = tree.args.get("tables") or [tree.this]
        for target in tables:
            table = self.lookup(cursor, target)
            if table is not None:
                self.storage.drop(cursor, table)
                continue
            single = tree.copy()
            single.set("tables", [target.copy()]) if tree.args.get("tables") else single.set("this", target.copy())
            try:                                  # a table DuckDB holds itself (a temp table...)
                cursor.execute(single.sql(dialect="duckdb"))
            except Exception as exc:
                if not isinstance(exc, errors.SQLError) and "does not exist" in str(exc):
                    raise errors.SQLError(errors.UNDEFINED_TABLE,
                                          f'Table "{target.name.lower()}" does not exist') from None
                raise
        return Result(command="DROP TABLE")

    def vacuum(self, sql: str) -> Result:
        """VACUUM [FULL | SORT ONLY | DELETE ONLY | REINDEX] [table] [TO n PERCENT]: re-sort slices."""
        words = re.findall(r"[\w.\"]+", sql)[1:]
        options = {"FULL", "SORT", "ONLY", "DELETE", "REINDEX", "RECLUSTER", "BOOST", "TO", "PERCENT"}
        names = [w for w in words if w.upper() not in options and not w.isdigit()]

        def work(cursor):
            if names:
                schema, _, name = names[0].replace('"', "").lower().rpartition(".")
                table = self.storage.lookup(cursor, schema or "public", name)
                if table is None:
                    raise errors.SQLError(errors.UNDEFINED_TABLE, f'relation "{name}" does not exist')
                targets = [table]
            else:
                targets = self.storage.tables(cursor)
            for table in targets:
                self.storage.vacuum(cursor, table)
                vacuumed.append((table.schema, table.name))
        vacuumed = []
        try:
            self.transaction(work)
        finally:      # the blocks were rewritten: cached results of these tables are dropped
            self.cache.written(vacuumed)
        return Result(command="VACUUM")

    # -- EXPLAIN and the statistics of queries -----------------------------------
    def explain(self, sql: str) -> Result:
        """EXPLAIN <query>: the plan as rows of text (column ``QUERY PLAN``), without running it."""
        tree = parse(sql)
        with self.cursor() as cursor:
            try:   # bind the query once, so a missing table or column fails as it would when run
                cursor.execute(f"EXPLAIN {to_duckdb(tree)}")
            except Exception as exc:
                import duckdb
                if isinstance(exc, duckdb.Error):
                    raise sql_error(exc) from None
                raise

            def lookup(schema, name):
                table = self.storage.lookup(cursor, schema, name)
                if table is None:
                    return None, 0
                rows = cursor.execute(f"SELECT coalesce(sum(rows), 0) FROM {storage.CATALOG_SCHEMA}.slice_rows "
                                      f"WHERE table_id = ?", [table.table_id]).fetchone()[0]
                return table, int(rows) // (self.number_of_nodes if table.diststyle == "ALL" else 1)
            lines = planner.explain(tree, lookup, self.number_of_nodes)
        return Result(command="EXPLAIN", columns=[Column("QUERY PLAN", "character varying", 1043)],
                      rows=[(line,) for line in lines], rowcount=len(lines))

    def _record_scans(self, cursor, query_id: int) -> None:
        """Read DuckDB's profile of the query just run: blocks (row groups) read per slice table."""
        profile = json.loads(cursor.get_profiling_information(format="json"))
        stats = []

        def walk(operator):
            table = (operator.get("extra_info") or {}).get("Table", "")
            parts = table.replace('"', "").split(".", 2)     # database.slice_N.schema.table
            if operator.get("operator_type", operator.get("type")) == "TABLE_SCAN" and len(parts) == 3 \
                    and parts[1].startswith("slice_"):
                stats.append(ScanStat(int(parts[1][len("slice_"):]), parts[2],
                                      int(operator.get("rows_scanned", 0)), int(operator.get("operator_cardinality",
                                      operator.get("intermediate_rows", 0))),
                                      int(operator.get("row_groups_scanned", 0)),
                                      int(operator.get("total_row_groups_to_scan", 0))))
            for child in operator.get("children", []):
                walk(child)
        for operator in profile.get("operator", []) if isinstance(profile.get("operator"), list) else [profile]:
            walk(operator)
        self.last_query_stats = stats
        if stats:
            ids = {s.table: self.storage.lookup(cursor, *s.table.split(".", 1)) for s in stats}
            cursor.executemany(
                f"INSERT INTO {storage.CATALOG_SCHEMA}.stl_scan VALUES (100, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(query_id, s.slice, ids[s.table].table_id if ids[s.table] else None, s.table, s.rows,
                  s.rows_pre_filter, s.blocks_read, s.blocks_total) for s in stats])

    def _log(self, query_id: int, sql: str, start: float, aborted: int) -> None:
        """One STL_QUERY row per statement (a failure to log never fails the statement)."""
        import duckdb

        try:
            with self.cursor() as cursor:
                cursor.execute(f"INSERT INTO {storage.CATALOG_SCHEMA}.stl_query VALUES "
                               f"(100, ?, 'default', ?, ?, to_timestamp(?)::TIMESTAMP, now()::TIMESTAMP, ?)",
                               [query_id, self.database, sql[:4000], start, aborted])
        except duckdb.Error:
            pass

    def cancel(self) -> None:
        """Interrupt every statement running now (they fail with SQLSTATE 57014)."""
        import duckdb

        for cursor in list(self.open_cursors):   # each cursor is its own DuckDB connection
            try:
                cursor.interrupt()
            except duckdb.Error:
                pass

    def close(self) -> None:
        self.spectrum.close()
        self.connection.close()
