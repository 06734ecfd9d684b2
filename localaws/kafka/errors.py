"""Amazon MSK's API errors (``kafka``), one class per code, with the statuses of the MSK API
reference (https://docs.aws.amazon.com/msk/1.0/apireference/ each operation's Errors)."""
from localaws.core import AWSError


class BadRequestException(AWSError):
    status = 400


class NotFoundException(AWSError):
    status = 404


class ConflictException(AWSError):
    status = 409
