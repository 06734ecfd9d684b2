"""Managed Service for Apache Flink's API errors (``kinesisanalyticsv2``), one class per code.

Every one is HTTP 400, the JSON 1.1 protocol's default: the API reference
(https://docs.aws.amazon.com/managed-flink/latest/apiv2/CommonErrors.html and
each operation's Errors section) gives them no other status.
"""
from localaws.core import AWSError


class ResourceNotFoundException(AWSError):
    pass


class ResourceInUseException(AWSError):
    pass


class InvalidArgumentException(AWSError):
    pass


class InvalidRequestException(AWSError):
    pass


class InvalidApplicationConfigurationException(AWSError):
    pass


class ConcurrentModificationException(AWSError):
    pass


class UnsupportedOperationException(AWSError):
    pass
