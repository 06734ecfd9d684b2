"""Lake Formation's API errors.

Codes from the Lake Formation API reference (the "Errors" section of each
operation, e.g. https://docs.aws.amazon.com/lake-formation/latest/APIReference/API_GrantPermissions.html);
statuses from the service model botocore ships (400 unless it says otherwise).
"""
from localaws.core.errors import AWSError


class InvalidInputException(AWSError):
    """The input provided was not valid (a malformed resource, a permission that does not apply)."""
    status = 400


class EntityNotFoundException(AWSError):
    """A specified entity does not exist (a database, table, filter, LF-Tag, registration)."""
    status = 400


class AlreadyExistsException(AWSError):
    """A resource to be created or added already exists (a registration, a filter, an LF-Tag)."""
    status = 400


class AccessDeniedException(AWSError):
    """The caller may not do this: not a data lake administrator, or no permission with grant option."""
    status = 403


class ResourceNumberLimitExceededException(AWSError):
    """A resource numerical limit was exceeded (e.g. more than 1000 values for one LF-Tag)."""
    status = 400


class PermissionTypeMismatchException(AWSError):
    """The engine does not support the filtering the caller's grants need (GetTemporaryGlueTableCredentials)."""
    status = 400
