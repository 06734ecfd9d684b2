"""QuickSight's API errors: one class per error code, HTTP status from the QuickSight API reference
(https://docs.aws.amazon.com/quicksight/latest/APIReference/CommonErrors.html and each
operation's "Errors" section). QuickSight error bodies also carry ``RequestId`` (added in ``__init__``)
and, for some codes, ``ResourceType``."""
import uuid

from localaws.core.errors import AWSError


class QuickSightError(AWSError):
    """Base: adds the ``RequestId`` field QuickSight puts in every error body."""

    def __init__(self, message: str, **kwargs):
        super().__init__(message, **kwargs)
        self.extra.setdefault("RequestId", str(uuid.uuid4()))


class AccessDeniedException(QuickSightError):
    status = 401


class ConflictException(QuickSightError):
    status = 409


class InvalidNextTokenException(QuickSightError):
    status = 400


class InvalidParameterValueException(QuickSightError):
    status = 400


class LimitExceededException(QuickSightError):
    status = 409


class PreconditionNotMetException(QuickSightError):
    status = 400


class QuickSightUserNotFoundException(QuickSightError):
    status = 404


class ResourceExistsException(QuickSightError):
    status = 409


class ResourceNotFoundException(QuickSightError):
    status = 404


class ResourceUnavailableException(QuickSightError):
    status = 503


class SessionLifetimeInMinutesInvalidException(QuickSightError):
    status = 400


class UnsupportedUserEditionException(QuickSightError):
    status = 403
