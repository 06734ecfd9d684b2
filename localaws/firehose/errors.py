"""Firehose's API errors, one class per error code the Firehose API reports."""
from localaws.core import AWSError


class ValidationException(AWSError):
    pass


class InvalidArgumentException(AWSError):
    pass


class ResourceNotFoundException(AWSError):
    pass
