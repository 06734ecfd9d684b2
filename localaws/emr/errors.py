"""EMR's API errors, one class per error code the EMR API reference uses.

EMR answers a malformed request with ``ValidationException`` and a request
that names something that does not exist, or cannot be done in the
resource's current state, with ``InvalidRequestException``. The functions
below build the messages that several operations share.
"""
from localaws.core.errors import AWSError, NotEmulated, not_emulated


class ValidationException(AWSError):
    pass


class InvalidRequestException(AWSError):
    pass


def no_cluster(cluster_id: str) -> InvalidRequestException:
    return InvalidRequestException(f"Cluster id '{cluster_id}' is not valid.")


def cluster_finished(cluster_id: str, state: str) -> ValidationException:
    return ValidationException("A job flow that is shutting down, terminated, or finished may not be "
                               f"modified. (cluster {cluster_id} is {state})")


def unsupported_step(detail: str) -> AWSError:
    return not_emulated("emr", "AddJobFlowSteps", detail)


def no_java(detail: str) -> AWSError:
    """No cluster can start on this machine: Spark needs a Java (a local limit, not EMR's)."""
    return NotEmulated(f"emr:RunJobFlow cannot start a local cluster on this machine: {detail}",
                       sender_fault=False)
