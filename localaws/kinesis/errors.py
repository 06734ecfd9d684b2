"""Kinesis Data Streams' API errors, one class per error code the API reports.

Every one is HTTP 400, as in the API reference
(https://docs.aws.amazon.com/kinesis/latest/APIReference/CommonErrors.html and
each operation's Errors section). botocore retries
``ProvisionedThroughputExceededException`` by itself (up to 4 times, with
backoff), as it does against AWS: to *see* a throttle, use a client with
``Config(retries={"total_max_attempts": 1})``.
"""
from localaws.core import AWSError


class ResourceNotFoundException(AWSError):
    pass


class ResourceInUseException(AWSError):
    pass


class InvalidArgumentException(AWSError):
    pass


class ValidationException(AWSError):
    pass


class LimitExceededException(AWSError):
    pass


class ProvisionedThroughputExceededException(AWSError):
    pass


class ExpiredIteratorException(AWSError):
    pass
