"""How Athena reports a failed query.

A query that fails does not make ``StartQueryExecution`` fail: the call
succeeds, and the execution ends in state ``FAILED`` (or ``CANCELLED``) with
a ``StateChangeReason`` and an ``AthenaError``. Athena's messages carry the
engine's error name and position, e.g.
``TABLE_NOT_FOUND: line 1:15: Table 'awsdatacatalog.db.t' does not exist``.
``ErrorCategory`` is 1 (SYSTEM), 2 (USER) or 3 (OTHER); ``ErrorType`` comes
from Athena's error catalog (1000 user error, 1001 data error, 1003 DDL
task failed, 1006 syntax error, 100 internal service error, 0 query
exhausted resources...):
https://docs.aws.amazon.com/athena/latest/ug/error-reference.html

API-level problems (a missing work group, an unknown QueryExecutionId) are
ordinary ``InvalidRequestException`` errors of the call itself; a failed
lookup of the catalog API (``GetTableMetadata``...) is a ``MetadataException``.
"""
import re

from localaws.core.errors import AWSError

USER, SYSTEM = 2, 1
USER_ERROR, DATA_ERROR, DDL_FAILED, SYNTAX, INTERNAL, EXHAUSTED = 1000, 1001, 1003, 1006, 100, 0
PERMISSION = 1500          # "Permission error" in the error catalog
ENGINE_INTERNAL, NOT_SUPPORTED, BAD_ARGUMENT = 200, 1200, 1106
TABLE_MISSING, ENTITY_MISSING, FUNCTION_MISSING = 1110, 1301, 1303

# The ErrorType Athena gives each engine error name, when the caller does not
# say. A real COLUMN_NOT_FOUND comes back with 1006; the others follow the
# descriptions of the error catalog (1110 "Provided table or view does not
# exist", 1303 "Provided function ... not found", 1106 "Invalid function
# argument provided", 1200 "Query not supported"...).
ERROR_TYPES = {
    "SYNTAX_ERROR": SYNTAX, "COLUMN_NOT_FOUND": SYNTAX, "TYPE_MISMATCH": SYNTAX,
    "TABLE_NOT_FOUND": TABLE_MISSING, "SCHEMA_NOT_FOUND": ENTITY_MISSING, "CATALOG_NOT_FOUND": ENTITY_MISSING,
    "FUNCTION_NOT_FOUND": FUNCTION_MISSING, "INVALID_FUNCTION_ARGUMENT": BAD_ARGUMENT,
    "DIVISION_BY_ZERO": DATA_ERROR, "INVALID_CAST_ARGUMENT": DATA_ERROR, "NUMERIC_VALUE_OUT_OF_RANGE": DATA_ERROR,
    "NOT_SUPPORTED": NOT_SUPPORTED, "GENERIC_INTERNAL_ERROR": ENGINE_INTERNAL, "HIVE_CURSOR_ERROR": DATA_ERROR,
}


class QueryFailed(Exception):
    """A query ends FAILED: ``name`` is the engine's error name (SYNTAX_ERROR...).

    ``error_type`` defaults to the one Athena gives that name (``ERROR_TYPES``).
    """

    def __init__(self, name: str, message: str, *, error_type: int | None = None,
                 category: int = USER, line: int | None = None, column: int | None = None):
        where = f"line {line}:{column}: " if line is not None else ""
        super().__init__(f"{name}: {where}{message}")
        self.name = name
        self.reason = f"{name}: {where}{message}"
        self.error_type = ERROR_TYPES.get(name, USER_ERROR) if error_type is None else error_type
        self.category = category


def lake_access_denied(table: str) -> QueryFailed:
    """A query that reads a table Lake Formation lets the caller see but not SELECT from.

    Athena's service reports it without an engine error name, e.g. *Insufficient
    permissions to execute the query. Insufficient Lake Formation permission(s) on
    orders* (the table's own name, which the caller could already describe):
    https://docs.aws.amazon.com/athena/latest/ug/lf-athena-limitations.html
    """
    failure = QueryFailed("PERMISSION_DENIED", "", error_type=PERMISSION)
    failure.reason = ("Insufficient permissions to execute the query. "
                      f"Insufficient Lake Formation permission(s) on {table}")
    failure.args = (failure.reason,)
    return failure


class QueryCancelled(Exception):
    """A query ends CANCELLED (StopQueryExecution, or the bytes-scanned cutoff)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class InvalidRequestException(AWSError):
    """A problem with the call itself (not with the query it starts)."""
    extra = {"AthenaErrorCode": "INVALID_INPUT"}


class MetadataException(AWSError):
    """A catalog, database or table lookup of the catalog API failed (Glue's or a
    connector's error inside its message; ``metadata.py``)."""


# --------------------------------------------------------------------------
# The engine's errors as Athena names them
# --------------------------------------------------------------------------
def position_of(sql: str, word: str) -> tuple[int | None, int | None]:
    """line, column (1-based) of the first whole-word ``word`` in ``sql``: where
    Athena's messages point (``line 1:8: Column 'x' cannot be resolved``)."""
    m = re.search(rf"(?<![\w.]){re.escape(word)}(?!\w)", sql, re.IGNORECASE)
    if not m:
        return None, None
    return line_column(sql, m.start())


def line_column(sql: str, offset: int) -> tuple[int, int]:
    """The 1-based line and column of character ``offset`` of ``sql``."""
    return sql.count("\n", 0, offset) + 1, offset - (sql.rfind("\n", 0, offset) + 1) + 1


# Errors that the translated SQL raises itself (``dialect.py``: 1 / 0, an array
# index out of range...) go through DuckDB's error() function, which always
# raises InvalidInputException. The Athena name travels in front of the message.
RAISED = re.compile(r"\[athena:([A-Z_]+)\] ([^\n]*)")


def raise_sql(name: str, message_sql: str) -> str:
    """DuckDB SQL that fails the query with Athena's error ``name``; ``message_sql``
    is a SQL string expression (``"'Division by zero'"``)."""
    return f"error('[athena:{name}] ' || {message_sql})"


def engine_error(exc: Exception, sql: str) -> Exception:
    """Translate a DuckDB error into the failure Athena would report for ``sql``.

    The kind of failure comes from the *type* of DuckDB's exception, never
    from its text (a column named ``interrupt_flag`` must not read as a
    cancellation): a parser error is Athena's SYNTAX_ERROR, a failed
    conversion INVALID_CAST_ARGUMENT, an interrupt a cancelled query... The
    text only supplies details for the reason, such as a function's name.

    A query that needs more memory than the engine may use (``core/limits.py``)
    fails as on Athena, whose workers have a fixed share of memory too:
    *Query exhausted resources at this scale factor*.
    """
    import duckdb
    first_line = str(exc).split("\n")[0].split(": ", 1)[-1]
    if isinstance(exc, duckdb.InterruptException):
        return QueryCancelled("Query was cancelled")
    if isinstance(exc, duckdb.OutOfMemoryException):
        return QueryFailed("EXCEEDED_MEMORY_LIMIT", "Query exhausted resources at this scale factor",
                           category=SYSTEM, error_type=EXHAUSTED)
    if isinstance(exc, duckdb.InvalidInputException):
        raised = RAISED.search(str(exc))
        if raised:   # our own SQL failed on purpose, with Athena's name
            return QueryFailed(raised.group(1), raised.group(2))
        return QueryFailed("INVALID_FUNCTION_ARGUMENT", first_line)
    if isinstance(exc, duckdb.CatalogException):
        # Tables come from the Glue catalog before DuckDB sees the query, so what
        # DuckDB's own catalog lacks is a function (or a type).
        m = re.search(r'with name "?(\w+)"? does not exist', str(exc))
        name = m.group(1) if m else None
        line, col = position_of(sql, name) if name else (None, None)
        message = f"Function '{name.lower()}' not registered" if name else first_line
        return QueryFailed("FUNCTION_NOT_FOUND", message, line=line, column=col)
    for kind, name in ENGINE_ERRORS:
        if isinstance(exc, getattr(duckdb, kind)):
            return QueryFailed(name, first_line)
    if isinstance(exc, duckdb.Error):
        return QueryFailed("GENERIC_INTERNAL_ERROR", first_line, category=SYSTEM)
    return QueryFailed("GENERIC_INTERNAL_ERROR", f"{type(exc).__name__}: {exc}", category=SYSTEM)


# DuckDB exception type -> Athena error name (the first that matches wins).
ENGINE_ERRORS = [
    ("ParserException", "SYNTAX_ERROR"),
    ("SyntaxException", "SYNTAX_ERROR"),
    # Columns are checked before DuckDB runs (dialect.py: COLUMN_NOT_FOUND), so what
    # its binder still refuses is a query that makes no sense for its types:
    # wrong argument types, a column neither grouped nor aggregated...
    ("BinderException", "SYNTAX_ERROR"),
    ("TypeMismatchException", "TYPE_MISMATCH"),
    ("ConversionException", "INVALID_CAST_ARGUMENT"),
    ("OutOfRangeException", "NUMERIC_VALUE_OUT_OF_RANGE"),
    ("NotImplementedException", "NOT_SUPPORTED"),
    ("IOException", "HIVE_CURSOR_ERROR"),
]
