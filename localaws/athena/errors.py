"""How Athena reports a failed query.

A query that fails does not make ``StartQueryExecution`` fail: the call
succeeds, and the execution ends in state ``FAILED`` (or ``CANCELLED``) with
a ``StateChangeReason`` and an ``AthenaError``. Athena's messages carry the
engine's error name and position, e.g.
``TABLE_NOT_FOUND: line 1:15: Table 'awsdatacatalog.db.t' does not exist``.
``ErrorCategory`` is 1 (SYSTEM), 2 (USER) or 3 (OTHER); ``ErrorType`` comes
from Athena's error catalog (1000 user error, 1001 data error, 1003 DDL
task failed, 100 internal service error...):
https://docs.aws.amazon.com/athena/latest/ug/error-reference.html

API-level problems (a missing work group, an unknown QueryExecutionId) are
ordinary ``InvalidRequestException`` errors of the call itself.
"""
from localaws.core.errors import AWSError

USER, SYSTEM = 2, 1
USER_ERROR, DATA_ERROR, DDL_FAILED, INTERNAL = 1000, 1001, 1003, 100


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
