"""Small helpers shared by the tests."""
import json

from localaws.awslambda import zip_package

TRUST_POLICY = json.dumps({"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
    "Action": "sts:AssumeRole"}]})


def lambda_role(stack, name="lambda-test-role") -> str:
    """An IAM role Lambda may assume (moto checks that the role exists)."""
    iam = stack.client("iam")
    try:
        return iam.get_role(RoleName=name)["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        return iam.create_role(RoleName=name, AssumeRolePolicyDocument=TRUST_POLICY)["Role"]["Arn"]


def create_function(stack, name, source, handler="app.handler", timeout=3, **kwargs):
    lam = stack.client("lambda")
    lam.create_function(FunctionName=name, Runtime=kwargs.pop("runtime", "python3.11"),
                        Role=lambda_role(stack), Handler=handler, Timeout=timeout,
                        Code={"ZipFile": zip_package({"app.py": source})}, **kwargs)
    return lam


def log_messages(stack, function_name):
    """Every CloudWatch Logs message of a function, stream by stream."""
    logs = stack.client("logs")
    group = f"/aws/lambda/{function_name}"
    messages = []
    for stream in logs.describe_log_streams(logGroupName=group)["logStreams"]:
        events = logs.get_log_events(logGroupName=group, logStreamName=stream["logStreamName"])
        messages.extend(e["message"] for e in events["events"])
    return messages
