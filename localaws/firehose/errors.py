"""Firehose's API errors, as the Firehose API reports them."""
from localaws.core import AWSError


def validation(message: str) -> AWSError:
    return AWSError("ValidationException", message, 400)


def invalid_argument(message: str) -> AWSError:
    return AWSError("InvalidArgumentException", message, 400)


def not_found(name: str, account: str) -> AWSError:
    return AWSError("ResourceNotFoundException",
                    f"Firehose {name} under account {account} not found.", 400)


def too_many_records(count: int) -> AWSError:
    return validation(f"1 validation error detected: Value '{count}' at 'records' failed to "
                      "satisfy constraint: Member must have length less than or equal to 500")


def record_too_large(index: int, size: int) -> AWSError:
    return validation(f"1 validation error detected: Value at 'records.{index + 1}.member.data' "
                      f"failed to satisfy constraint: Member must have length less than or equal "
                      f"to 1024000 (got {size} bytes)")


def request_too_large(size: int) -> AWSError:
    return invalid_argument(f"Records size exceeds 4 MiB limit ({size} bytes in this request)")
