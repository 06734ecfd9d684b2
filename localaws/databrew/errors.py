"""AWS Glue DataBrew's API errors.

Codes and HTTP statuses from the DataBrew API reference (the "Errors" section
of each operation, e.g. https://docs.aws.amazon.com/databrew/latest/dg/API_StartJobRun.html).
A job *run* that fails is not an API error: StartJobRun has already answered
with a RunId, and the run ends in state ``FAILED`` with an ``ErrorMessage``
(see ``engine.RunFailed``).
"""
from localaws.core.errors import AWSError


class ValidationException(AWSError):
    """The input parameters for this request failed validation (a recipe step with an unknown
    operation or a missing parameter, an output format that does not exist...)."""
    status = 400


class ResourceNotFoundException(AWSError):
    """One or more resources can't be found (a job, a run, a dataset, a recipe version)."""
    status = 404


class ConflictException(AWSError):
    """Updating or deleting a resource can cause an inconsistent state (a job that is already running)."""
    status = 409


class ServiceQuotaExceededException(AWSError):
    """A service quota is exceeded (here: too many job runs at once for this laptop)."""
    status = 402
