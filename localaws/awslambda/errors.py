"""Lambda's API errors (codes and messages as the Lambda API reference gives them)."""
from localaws.core.errors import AWSError


def invalid_zip() -> AWSError:
    return AWSError("InvalidParameterValueException",
                    "Could not unzip uploaded file. Please check your file, then try to upload again.",
                    extra={"Type": "User"})


def missing_handler() -> AWSError:
    return AWSError("InvalidParameterValueException",
                    "Handler is required for a function with a .zip file deployment package.",
                    extra={"Type": "User"})


def invalid_payload(detail: str) -> AWSError:
    return AWSError("InvalidRequestContentException",
                    f"Could not parse request body into json: Could not parse payload into json: {detail}",
                    extra={"Type": "User"})


def payload_too_large(size: int, limit: int) -> AWSError:
    return AWSError("RequestTooLargeException",
                    f"Request must be smaller than {limit} bytes for the InvokeFunction operation "
                    f"(got {size} bytes)", 413, extra={"Type": "User"})
