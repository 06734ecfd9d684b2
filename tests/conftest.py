"""Fixtures shared by the unit tests (the ``stack`` fixture is in the root conftest.py).

Test helpers live here, once, as fixtures: a test asks for ``create_function``
or ``log_messages`` by naming it as an argument, as pytest does for ``stack``.
"""
import json

import pytest

from localaws.awslambda import zip_package

TRUST_POLICY = json.dumps({"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
    "Action": "sts:AssumeRole"}]})


@pytest.fixture(scope="session")
def lambda_role(stack) -> str:
    """The ARN of an IAM role Lambda (and Firehose) may assume (moto checks that the role exists)."""
    iam = stack.client("iam")
    try:
        return iam.get_role(RoleName="lambda-test-role")["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        return iam.create_role(RoleName="lambda-test-role",
                               AssumeRolePolicyDocument=TRUST_POLICY)["Role"]["Arn"]


@pytest.fixture(scope="session")
def create_function(stack, lambda_role):
    """``create_function(name, source, handler="app.handler", timeout=3, runtime=..., **kwargs)``:
    a Python function whose one file ``app.py`` is ``source``; returns the Lambda client."""
    def create(name, source, handler="app.handler", timeout=3, **kwargs):
        lam = stack.client("lambda")
        lam.create_function(FunctionName=name, Runtime=kwargs.pop("runtime", "python3.11"),
                            Role=lambda_role, Handler=handler, Timeout=timeout,
                            Code={"ZipFile": zip_package({"app.py": source})}, **kwargs)
        return lam
    return create


@pytest.fixture(scope="session")
def log_messages(stack):
    """``log_messages(function_name)``: every CloudWatch Logs message of a function, stream by stream."""
    def messages(function_name):
        logs = stack.client("logs")
        group = f"/aws/lambda/{function_name}"
        found = []
        for stream in logs.describe_log_streams(logGroupName=group)["logStreams"]:
            events = logs.get_log_events(logGroupName=group, logStreamName=stream["logStreamName"])
            found.extend(e["message"] for e in events["events"])
        return found
    return messages


@pytest.fixture
def redshift(stack):
    """A boto3 Redshift client of the session's stack."""
    return stack.client("redshift")


@pytest.fixture
def data(stack):
    """A boto3 Redshift Data API client of the session's stack."""
    return stack.client("redshift-data")
