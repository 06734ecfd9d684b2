"""Bad input gets AWS's error, and nothing half-written stays behind."""
import json

import botocore.exceptions
import pytest

from helpers import create_function, lambda_role
from localaws.awslambda import zip_package

GOOD = "def handler(event, context):\n    return event\n"


def error_of(call, *args, **kwargs):
    with pytest.raises(botocore.exceptions.ClientError) as info:
        call(*args, **kwargs)
    return info.value.response["Error"]["Code"], info.value.response


def function_names(stack):
    return [f["FunctionName"] for f in stack.client("lambda").list_functions()["Functions"]]


def test_put_object_into_missing_bucket(stack):
    s3 = stack.client("s3")
    code, _ = error_of(s3.put_object, Bucket="bad-no-such-bucket", Key="k", Body=b"x")
    assert code == "NoSuchBucket"
    assert "bad-no-such-bucket" not in [b["Name"] for b in s3.list_buckets()["Buckets"]]


def test_get_missing_key(stack):
    s3 = stack.client("s3")
    s3.create_bucket(Bucket="bad-keys")
    code, resp = error_of(s3.get_object, Bucket="bad-keys", Key="missing.csv")
    assert code == "NoSuchKey" and resp["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_delete_non_empty_bucket_keeps_its_objects(stack):
    s3 = stack.client("s3")
    s3.create_bucket(Bucket="bad-full")
    s3.put_object(Bucket="bad-full", Key="a.csv", Body=b"1")
    code, _ = error_of(s3.delete_bucket, Bucket="bad-full")
    assert code == "BucketNotEmpty"
    assert s3.get_object(Bucket="bad-full", Key="a.csv")["Body"].read() == b"1"


def test_bad_function_zip_stores_nothing(stack):
    lam = stack.client("lambda")
    code, _ = error_of(lam.create_function, FunctionName="bad-zip", Runtime="python3.11",
                       Role=lambda_role(stack), Handler="app.handler", Code={"ZipFile": b"not a zip"})
    assert code == "InvalidParameterValueException"
    assert "bad-zip" not in function_names(stack)


def test_missing_handler_setting_stores_nothing(stack):
    lam = stack.client("lambda")
    code, resp = error_of(lam.create_function, FunctionName="bad-nohandler", Runtime="python3.11",
                          Role=lambda_role(stack), Code={"ZipFile": zip_package({"app.py": GOOD})})
    assert code == "InvalidParameterValueException"
    assert "Handler" in resp["Error"]["Message"]
    assert "bad-nohandler" not in function_names(stack)


def test_handler_module_missing_is_import_module_error(stack):
    lam = create_function(stack, "bad-module", GOOD, handler="nosuchfile.handler")
    resp = lam.invoke(FunctionName="bad-module", Payload=b"{}")
    assert resp["FunctionError"] == "Unhandled"
    error = json.loads(resp["Payload"].read())
    assert error["errorType"] == "Runtime.ImportModuleError"
    assert "nosuchfile" in error["errorMessage"]


def test_handler_function_missing_is_handler_not_found(stack):
    lam = create_function(stack, "bad-func", GOOD, handler="app.nosuchfunction")
    error = json.loads(lam.invoke(FunctionName="bad-func", Payload=b"{}")["Payload"].read())
    assert error["errorType"] == "Runtime.HandlerNotFound"


def test_invalid_json_payload(stack):
    lam = create_function(stack, "bad-json", GOOD)
    code, resp = error_of(lam.invoke, FunctionName="bad-json", Payload=b"{not json")
    assert code == "InvalidRequestContentException"
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_payload_over_six_megabytes(stack):
    lam = create_function(stack, "bad-big", GOOD)
    big = json.dumps({"blob": "x" * (6 * 1024 * 1024 + 10)})
    code, resp = error_of(lam.invoke, FunctionName="bad-big", Payload=big)
    assert code == "RequestTooLargeException"
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 413


def test_invoke_missing_function(stack):
    code, _ = error_of(stack.client("lambda").invoke, FunctionName="bad-missing", Payload=b"{}")
    assert code == "ResourceNotFoundException"


def test_duplicate_function_keeps_the_first(stack):
    lam = create_function(stack, "bad-dupe", GOOD)
    code, _ = error_of(create_function, stack, "bad-dupe", "def handler(e, c):\n    return 2\n")
    assert code == "ResourceConflictException"
    assert lam.invoke(FunctionName="bad-dupe", Payload=b'{"v": 1}')["Payload"].read() == b'{"v": 1}'


def test_non_python_runtime_is_not_emulated(stack):
    lam = create_function(stack, "bad-node", GOOD, handler="index.handler", runtime="nodejs20.x")
    code, resp = error_of(lam.invoke, FunctionName="bad-node", Payload=b"{}")
    assert code == "NotImplemented"
    assert "nodejs20.x" in resp["Error"]["Message"]


def test_unknown_service_name(stack):
    with pytest.raises(botocore.exceptions.UnknownServiceError):
        stack.client("no-such-service")


def test_handler_that_exits_is_a_runtime_exit_error(stack):
    lam = create_function(stack, "bad-exit", "import os\ndef handler(e, c):\n    os._exit(3)\n")
    error = json.loads(lam.invoke(FunctionName="bad-exit", Payload=b"{}")["Payload"].read())
    assert error["errorType"] == "Runtime.ExitError"
    assert "exit status 3" in error["errorMessage"]


def test_result_that_is_not_json_is_a_marshal_error(stack):
    lam = create_function(stack, "bad-result", "def handler(e, c):\n    return {1, 2}\n")
    error = json.loads(lam.invoke(FunctionName="bad-result", Payload=b"{}")["Payload"].read())
    assert error["errorType"] == "Runtime.MarshalError"
