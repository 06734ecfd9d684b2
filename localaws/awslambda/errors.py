"""Lambda's API errors (codes and statuses as the Lambda API reference gives them).

Lambda adds ``"Type": "User"`` to the JSON body of errors the caller caused.
"""
from localaws.core.errors import AWSError


class InvalidParameterValueException(AWSError):
    extra = {"Type": "User"}


class InvalidRequestContentException(AWSError):
    extra = {"Type": "User"}


class RequestTooLargeException(AWSError):
    status = 413
    extra = {"Type": "User"}


class ValidationException(AWSError):
    """A parameter outside the range of the API model."""


class ResourceNotFoundException(AWSError):
    status = 404
    extra = {"Type": "User"}
