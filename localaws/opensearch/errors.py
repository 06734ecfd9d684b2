"""OpenSearch Service's API errors (codes and statuses from the OpenSearch Service API reference)."""
from localaws.core.errors import AWSError


class LimitExceededException(AWSError):
    """More resources than allowed: on AWS, domains per account and Region; here, per laptop."""
    status = 409
