"""Redshift's errors: SQL errors as the database reports them, and the API's error codes.

Two kinds, as on AWS:

- :class:`SQLError`: the database refused a statement. Over the PostgreSQL
  wire it is an ErrorResponse with a severity, a SQLSTATE code (``42P01``
  undefined table, ``42601`` syntax error...) and a message; the Data API
  puts the same message in DescribeStatement's ``Error`` with Status FAILED.
- API errors (:class:`~localaws.core.errors.AWSError` subclasses): the
  control plane refused a request (a cluster that does not exist, a paused
  cluster), with the code and HTTP status of the API reference.
"""
from __future__ import annotations

from localaws.core.errors import AWSError

#: SQLSTATE codes used by the warehouse (PostgreSQL's, which Redshift reports).
SYNTAX_ERROR = "42601"
UNDEFINED_TABLE = "42P01"
UNDEFINED_COLUMN = "42703"
UNDEFINED_FUNCTION = "42883"
DUPLICATE_TABLE = "42P07"
DATATYPE_MISMATCH = "42804"
INVALID_TEXT_REPRESENTATION = "22P02"
DIVISION_BY_ZERO = "22012"
NUMERIC_OUT_OF_RANGE = "22003"
FEATURE_NOT_SUPPORTED = "0A000"
INVALID_PASSWORD = "28P01"
QUERY_CANCELED = "57014"
INTERNAL_ERROR = "XX000"
STRING_DATA_RIGHT_TRUNCATION = "22001"     # value too long for type character varying(n)
NOT_NULL_VIOLATION = "23502"
CARDINALITY_VIOLATION = "21000"
DUPLICATE_COLUMN = "42701"
AMBIGUOUS_COLUMN = "42702"
INVALID_TABLE_DEFINITION = "42P16"

#: Redshift's MERGE when a target row matches several source rows (the MERGE page's usage notes
#: show the message; the SQLSTATE is not documented: PostgreSQL's MERGE says 21000 here).
MERGE_DUPLICATES = "Found multiple matches to update the same tuple."


class SQLError(Exception):
    """A statement the warehouse refused: SQLSTATE ``code``, ``message``, 1-based ``position`` or None."""

    def __init__(self, code: str, message: str, position: int | None = None):
        super().__init__(message)
        self.code, self.message, self.position = code, message, position


# -- DuckDB's words -> Redshift's ----------------------------------------------------------
#: DuckDB's names of types in conversion errors -> the words of PostgreSQL 8.0's message
#: (``invalid input syntax for integer: "x"``), which Redshift still prints.
INPUT_SYNTAX = {"INT16": "integer", "INT32": "integer", "INT64": "type bigint", "INT128": "type numeric",
                "UINT8": "integer", "BOOL": "type boolean", "DOUBLE": "type double precision",
                "FLOAT": "type real", "DATE": "type date", "TIMESTAMP": "type timestamp",
                "TIME": "type time", "DECIMAL": "type numeric"}
OUT_OF_RANGE = {"INT16": "smallint", "INT32": "integer", "INT64": "bigint"}

#: (pattern on DuckDB's message, SQLSTATE, Redshift's message) - the first that matches wins.
DUCKDB_MESSAGES = [
    (r"value too long for type (character(?: varying)?\(\d+\))", STRING_DATA_RIGHT_TRUNCATION,
     lambda m: f"value too long for type {m.group(1)}"),
    (r"NOT NULL constraint failed: (?:\S*\.)?(\S+)", INTERNAL_ERROR,
     lambda m: f"Cannot insert a NULL value into column {m.group(1).strip(chr(34))}"),
    (r"^Division by zero", DIVISION_BY_ZERO, lambda m: "division by zero"),
    (r"^Could not convert string ['\"](.*)['\"] to (\w+)", INVALID_TEXT_REPRESENTATION,
     lambda m: f'invalid input syntax for {INPUT_SYNTAX.get(m.group(2), "type " + m.group(2).lower())}: '
               f'"{m.group(1)}"'),
    (r"^invalid (date|timestamp|time) field format: \"(.*?)\"", INVALID_TEXT_REPRESENTATION,
     lambda m: f'invalid input syntax for type {m.group(1)}: "{m.group(2)}"'),
    (r"^Type \w+ with value \S+ can't be cast because the value is out of range for the destination "
     r"type (INT16|INT32|INT64)", NUMERIC_OUT_OF_RANGE, lambda m: f"{OUT_OF_RANGE[m.group(1)]} out of range"),
    (r'^Referenced column "([^"]+)" not found', UNDEFINED_COLUMN, lambda m: f'column "{m.group(1)}" does not exist'),
    (r'^Table "([^"]+)" does not have a column named "([^"]+)"', UNDEFINED_COLUMN,
     lambda m: f"column {m.group(1)}.{m.group(2)} does not exist"),
    (r'^Referenced table "([^"]+)" not found', UNDEFINED_TABLE,
     lambda m: f'missing FROM-clause entry for table "{m.group(1)}"'),
    (r"^Table with name (\S+?) does not exist", UNDEFINED_TABLE,
     lambda m: f'relation "{m.group(1).split(".")[-1]}" does not exist'),
    (r'^Ambiguous reference to column name "([^"]+)"', AMBIGUOUS_COLUMN,
     lambda m: f'column reference "{m.group(1)}" is ambiguous'),
]


def from_duckdb(code: str, message: str) -> tuple[str, str]:
    """The SQLSTATE and message Redshift reports for what DuckDB said (``code`` is the
    SQLSTATE chosen from DuckDB's exception type; kept when no rule below knows the message)."""
    import re

    for pattern, redshift_code, text in DUCKDB_MESSAGES:
        match = re.search(pattern, message)
        if match:
            return redshift_code, text(match)
    return code, message


# -- the Redshift API (query protocol): codes and statuses from botocore's model --------
# The class is named after botocore's shape; ``code`` is what goes on the wire
# (``ClusterNotFoundFault`` travels as ``ClusterNotFound``), which is what
# ``ClientError.response["Error"]["Code"]`` shows and what boto3's
# ``client.exceptions.ClusterNotFoundFault`` matches.
class ClusterNotFoundFault(AWSError):
    code = "ClusterNotFound"
    status = 404


class InvalidClusterStateFault(AWSError):
    code = "InvalidClusterState"
    status = 400


class ClusterQuotaExceededFault(AWSError):
    code = "ClusterQuotaExceeded"
    status = 400


class InvalidParameterValue(AWSError):
    """A value Redshift refuses (an unknown NodeType, a NumberOfNodes with single-node)."""
    status = 400


class InvalidParameterCombination(AWSError):
    """Values that do not go together (multi-node with fewer than 2 nodes)."""
    status = 400


# -- the Redshift Data API (JSON protocol; botocore gives no status: 400) -----------------
class ResourceNotFoundException(AWSError):
    """Data API: no statement with that id. AWS adds the ``ResourceId`` it looked for."""
    status = 400

    def __init__(self, message: str, resource_id: str):
        super().__init__(message, extra={"ResourceId": resource_id})


class ValidationException(AWSError):
    """Data API: a request the API refuses before running anything (a cluster that does not exist...)."""
    status = 400


class ActiveStatementsExceededException(AWSError):
    status = 400


# -- snapshots (snapshots.py): codes and statuses from botocore's model ---------------------
class ClusterSnapshotNotFoundFault(AWSError):
    code = "ClusterSnapshotNotFound"
    status = 404


class InvalidClusterSnapshotStateFault(AWSError):
    code = "InvalidClusterSnapshotState"
    status = 400


class UnknownSnapshotCopyRegionFault(AWSError):
    """EnableSnapshotCopy to a region Redshift does not have (or the cluster's own region)."""
    status = 404


# -- resizes (resize.py): codes and statuses from botocore's model --------------------------
class ResizeNotFoundFault(AWSError):
    """DescribeResize of a cluster that was never resized."""
    code = "ResizeNotFound"
    status = 404


class UnsupportedOperationFault(AWSError):
    """An elastic resize to or from a single-node cluster (classic resize does that)."""
    code = "UnsupportedOperation"
    status = 400
