"""EMR's API errors, with the codes and messages the EMR API reference uses.

EMR answers a malformed request with ``ValidationException`` and a request
that names something that does not exist, or cannot be done in the
resource's current state, with ``InvalidRequestException``.
"""
from localaws.core.errors import AWSError, not_emulated


def validation(message: str) -> AWSError:
    return AWSError("ValidationException", message)


def invalid_request(message: str) -> AWSError:
    return AWSError("InvalidRequestException", message)


def no_cluster(cluster_id: str) -> AWSError:
    return invalid_request(f"Cluster id '{cluster_id}' is not valid.")


def cluster_finished(cluster_id: str, state: str) -> AWSError:
    return validation("A job flow that is shutting down, terminated, or finished may not be modified. "
                      f"(cluster {cluster_id} is {state})")


def unsupported_step(detail: str) -> AWSError:
    return not_emulated("emr", "AddJobFlowSteps", detail)
