"""AWS Glue's API errors: one class per error code of the Glue API reference.

Glue answers in JSON (``__type`` = the code) with HTTP 400 for every client
error below; only ``InternalServiceException`` is a 500.
"""
from localaws.core.errors import AWSError


class EntityNotFoundException(AWSError):
    """A crawler, job, run, trigger, database or table that does not exist."""


class InvalidInputException(AWSError):
    """A parameter the operation cannot accept (a bad target, an unknown argument value)."""


class AlreadyExistsException(AWSError):
    """A resource with that name exists."""


class CrawlerRunningException(AWSError):
    """StartCrawler (or UpdateCrawler) on a crawler that is RUNNING or STOPPING."""


class CrawlerNotRunningException(AWSError):
    """StopCrawler on a crawler that is READY."""


class CrawlerStoppingException(AWSError):
    """StopCrawler on a crawler that is already STOPPING."""


class ConcurrentRunsExceededException(AWSError):
    """StartJobRun while the job already runs MaxConcurrentRuns runs."""


class IllegalWorkflowStateException(AWSError):
    """A workflow operation its current state does not allow."""


class OperationTimeoutException(AWSError):
    """The operation timed out."""


class AccessDeniedException(AWSError):
    """Lake Formation refused: the caller is not a trusted engine, or holds no permission on the table."""


class PermissionTypeMismatchException(AWSError):
    """The engine asked for less filtering than the caller's Lake Formation grants need
    (e.g. no CELL_FILTER_PERMISSION in SupportedPermissionTypes for a data cells filter)."""
