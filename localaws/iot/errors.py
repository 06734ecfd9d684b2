"""AWS IoT's API errors (``iot`` and ``iot-data``), one class per code.

Codes and HTTP statuses from the service models boto3 ships (each operation's
error list in the AWS IoT and AWS IoT Data Plane API references):
``SqlParseException`` 400 (CreateTopicRule, ReplaceTopicRule),
``InvalidRequestException`` 400, ``UnauthorizedException`` 401 (what AWS
answers for a rule that does not exist: GetTopicRule, DeleteTopicRule,
EnableTopicRule... list no ``ResourceNotFoundException``),
``RequestEntityTooLargeException`` 413 (iot-data).
"""
from localaws.core import AWSError


class SqlParseException(AWSError):
    """The rule's SQL cannot be parsed (or uses a function the rules engine does not have)."""
    status = 400


class InvalidRequestException(AWSError):
    status = 400


class UnauthorizedException(AWSError):
    status = 401


class RequestEntityTooLargeException(AWSError):
    """A Publish payload over the 128 KB message size quota."""
    status = 413
