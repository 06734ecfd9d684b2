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


class SQLError(Exception):
    """A statement the warehouse refused: SQLSTATE ``code``, ``message``, 1-based ``position`` or None."""

    def __init__(self, code: str, message: str, position: int | None = None):
        super().__init__(message)
        self.code, self.message, self.position = code, message, position


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
