"""How Athena reports a failed query.

A query that fails does not make ``StartQueryExecution`` fail: the call
succeeds, and the execution ends in state ``FAILED`` (or ``CANCELLED``) with
a ``StateChangeReason`` and an ``AthenaError``. Athena's messages carry the
engine's error name and position, e.g.
``TABLE_NOT_FOUND: line 1:15: Table 'awsdatacatalog.db.t' does not exist``.
``ErrorCategory`` is 1 (SYSTEM), 2 (USER) or 3 (OTHER); ``ErrorType`` comes
from Athena's error catalog (1000 user error, 1001 data error, 1003 DDL
task failed, 100 internal service error, 0 query exhausted resources...):
https://docs.aws.amazon.com/athena/latest/ug/error-reference.html

API-level problems (a missing work group, an unknown QueryExecutionId) are
ordinary ``InvalidRequestException`` errors of the call itself.
"""
import re

from localaws.core.errors import AWSError

USER, SYSTEM = 2, 1
USER_ERROR, DATA_ERROR, DDL_FAILED, INTERNAL, EXHAUSTED = 1000, 1001, 1003, 100, 0


class QueryFailed(Exception):
    """A query ends FAILED: ``name`` is the engine's error name (SYNTAX_ERROR...)."""

    def __init__(self, name: str, message: str, *, error_type: int = USER_ERROR,
                 category: int = USER, line: int | None = None, column: int | None = None):
        where = f"line {line}:{column}: " if line is not None else ""
        super().__init__(f"{name}: {where}{message}")
        self.reason = f"{name}: {where}{message}"
        self.error_type, self.category = error_type, category


class QueryCancelled(Exception):
    """A query ends CANCELLED (StopQueryExecution, or the bytes-scanned cutoff)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class InvalidRequestException(AWSError):
    """A problem with the call itself (not with the query it starts)."""
    extra = {"AthenaErrorCode": "INVALID_INPUT"}


# --------------------------------------------------------------------------
# The engine's errors as Athena names them
# --------------------------------------------------------------------------
def position_of(sql: str, word: str) -> tuple[int | None, int | None]:
    """line, column (1-based) of the first whole-word ``word`` in ``sql``: where
    Athena's messages point (``line 1:8: Column 'x' cannot be resolved``)."""
    m = re.search(rf"(?<![\w.]){re.escape(word)}(?!\w)", sql, re.IGNORECASE)
    if not m:
        return None, None
    line = sql.count("\n", 0, m.start()) + 1
    col = m.start() - (sql.rfind("\n", 0, m.start()) + 1) + 1
    return line, col


def engine_error(exc: Exception, sql: str) -> Exception:
    """Translate a DuckDB error into the failure Athena would report for ``sql``.

    A query that needs more memory than the engine may use (``core/limits.py``)
    fails as on Athena, whose workers have a fixed share of memory too:
    *Query exhausted resources at this scale factor*.
    """
    import duckdb
    text = str(exc)
    if isinstance(exc, duckdb.OutOfMemoryException):
        return QueryFailed("EXCEEDED_MEMORY_LIMIT", "Query exhausted resources at this scale factor",
                           category=SYSTEM, error_type=EXHAUSTED)
    if "INTERRUPT" in text.upper():
        return QueryCancelled("Query was cancelled")
    m = re.search(r'Referenced column "([^"]+)" not found', text) or \
        re.search(r'column "?([\w]+)"? not found', text, re.IGNORECASE)
    if m:
        line, col = position_of(sql, m.group(1))
        return QueryFailed("COLUMN_NOT_FOUND", f"Column '{m.group(1)}' cannot be resolved", line=line, column=col)
    m = re.search(r"(?:Scalar|Aggregate|Table) Function with name \"?(\w+)\"? does not exist", text)
    if m:
        line, col = position_of(sql, m.group(1))
        return QueryFailed("FUNCTION_NOT_FOUND", f"Function '{m.group(1).lower()}' not registered",
                           line=line, column=col)
    m = re.search(r"No function matches the given name and argument types '([^']+)'", text)
    if m:
        return QueryFailed("FUNCTION_NOT_FOUND", f"Unexpected parameters for function {m.group(1)}")
    if "Conversion Error" in text or "Could not convert" in text:
        return QueryFailed("INVALID_CAST_ARGUMENT", text.split("\n")[0].split(": ", 1)[-1], error_type=DATA_ERROR)
    if "Malformed JSON" in text:
        return QueryFailed("HIVE_CURSOR_ERROR", "Row is not a valid JSON Object - " + text.split("\n")[0],
                           error_type=DATA_ERROR)
    if "Binder Error" in text or "Parser Error" in text:
        return QueryFailed("SYNTAX_ERROR", text.split("\n")[0].split(": ", 1)[-1])
    if "Division by zero" in text:
        return QueryFailed("DIVISION_BY_ZERO", "Division by zero", error_type=DATA_ERROR)
    return QueryFailed("GENERIC_USER_ERROR", text.split("\n")[0])
