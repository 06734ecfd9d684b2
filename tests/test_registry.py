"""The plane registry: operation routes and moto hooks, installed lazily and undone at stop."""
import subprocess
import sys

import botocore.exceptions
import pytest

from localaws.core import AWSError


def test_a_route_answers_before_moto(stack):
    registry = stack.context.registry
    seen = []

    def put_policy(request):
        seen.append((request.service, request.operation, request.params["ClusterId"]))
        return {}

    previous = registry.route("emr", "PutManagedScalingPolicy", put_policy)
    try:
        stack.client("emr").put_managed_scaling_policy(ClusterId="j-ROUTED", ManagedScalingPolicy={
            "ComputeLimits": {"UnitType": "Instances", "MinimumCapacityUnits": 1,
                              "MaximumCapacityUnits": 4}})
    finally:
        registry.route("emr", "PutManagedScalingPolicy", previous)
    assert seen == [("emr", "PutManagedScalingPolicy", "j-ROUTED")]


@pytest.mark.parametrize("service, call", [
    ("athena", lambda c: c.get_work_group(WorkGroup="primary")),                # json
    ("lambda", lambda c: c.get_function(FunctionName="x")),                     # rest-json
    ("redshift", lambda c: c.describe_clusters()),                               # query
    ("s3", lambda c: c.list_buckets()),                                          # rest-xml
])
def test_aws_error_from_a_route_reaches_boto3_in_each_protocol(stack, service, call):
    registry = stack.context.registry
    client = stack.client(service)
    operation = {"athena": "GetWorkGroup", "lambda": "GetFunction",
                 "redshift": "DescribeClusters", "s3": "ListBuckets"}[service]

    def refuse(request):
        raise AWSError(f"slow down on {request.operation}", code="ThrottlingException")

    previous = registry.route(service, operation, refuse)
    try:
        with pytest.raises(botocore.exceptions.ClientError) as info:
            call(client)
    finally:
        registry.route(service, operation, previous)
    assert info.value.response["Error"]["Code"] == "ThrottlingException"
    assert info.value.response["Error"]["Message"] == f"slow down on {operation}"


HOOKS = """
import sys, localaws
s = localaws.start()
print("moto.awslambda" in sys.modules, "moto.emr" in sys.modules)   # nothing imported yet
from moto.awslambda.models import LambdaFunction
moto_invoke = LambdaFunction.__dict__["invoke"]
before = LambdaFunction.__dict__["invoke"] is moto_invoke
s.client("lambda").list_functions()                                  # first Lambda request
installed = LambdaFunction.__dict__["invoke"] is not moto_invoke
s.stop()
print(before, installed, LambdaFunction.__dict__["invoke"] is moto_invoke)
"""


def test_moto_hooks_are_installed_on_first_use_and_restored_at_stop():
    out = subprocess.run([sys.executable, "-c", HOOKS], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "False", "True", "True", "True"]
