"""The data-plane registry: routes and overrides, and their undoing at stop."""
import subprocess
import sys

import botocore.exceptions
import pytest

from localaws.core import AWSError


def restore(ctx, service, operation, previous):
    """Put back the data plane's own route (if any) after a test's temporary one."""
    if previous is None:
        ctx._routes.pop((service, operation), None)
    else:
        ctx.route(service, operation, previous)


def test_a_route_answers_before_moto(stack):
    ctx = stack._endpoint.context
    seen = []

    def put_policy(request):
        seen.append((request.service, request.operation, request.params["ClusterId"]))
        return {}

    previous = ctx.routed("emr", "PutManagedScalingPolicy")
    ctx.route("emr", "PutManagedScalingPolicy", put_policy)
    try:
        stack.client("emr").put_managed_scaling_policy(ClusterId="j-ROUTED", ManagedScalingPolicy={
            "ComputeLimits": {"UnitType": "Instances", "MinimumCapacityUnits": 1,
                              "MaximumCapacityUnits": 4}})
    finally:
        restore(ctx, "emr", "PutManagedScalingPolicy", previous)
    assert seen == [("emr", "PutManagedScalingPolicy", "j-ROUTED")]


@pytest.mark.parametrize("service, call", [
    ("athena", lambda c: c.get_work_group(WorkGroup="primary")),                # json
    ("lambda", lambda c: c.get_function(FunctionName="x")),                     # rest-json
    ("redshift", lambda c: c.describe_clusters()),                               # query
    ("s3", lambda c: c.list_buckets()),                                          # rest-xml
])
def test_aws_error_from_a_route_reaches_boto3_in_each_protocol(stack, service, call):
    ctx = stack._endpoint.context
    client = stack.client(service)
    operation = {"athena": "GetWorkGroup", "lambda": "GetFunction",
                 "redshift": "DescribeClusters", "s3": "ListBuckets"}[service]

    def refuse(request):
        raise AWSError("ThrottlingException", f"slow down on {request.operation}", 400)

    previous = ctx.routed(service, operation)
    ctx.route(service, operation, refuse)
    try:
        with pytest.raises(botocore.exceptions.ClientError) as info:
            call(client)
    finally:
        restore(ctx, service, operation, previous)
    assert info.value.response["Error"]["Code"] == "ThrottlingException"
    assert info.value.response["Error"]["Message"] == f"slow down on {operation}"


OVERRIDES = """
import localaws
from moto.awslambda.models import LambdaFunction
moto_invoke = LambdaFunction.__dict__["invoke"]
s = localaws.start()
installed = LambdaFunction.__dict__["invoke"] is not moto_invoke
s.stop()
print(installed, LambdaFunction.__dict__["invoke"] is moto_invoke)
"""


def test_overrides_are_installed_at_start_and_restored_at_stop():
    out = subprocess.run([sys.executable, "-c", OVERRIDES], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "True"]
