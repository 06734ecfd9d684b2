"""Bad input gets AWS's error, and nothing half-written stays behind."""
import json

import botocore.exceptions
import pytest

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


def test_bad_function_zip_stores_nothing(stack, lambda_role):
    lam = stack.client("lambda")
    code, _ = error_of(lam.create_function, FunctionName="bad-zip", Runtime="python3.11",
                       Role=lambda_role, Handler="app.handler", Code={"ZipFile": b"not a zip"})
    assert code == "InvalidParameterValueException"
    assert "bad-zip" not in function_names(stack)


def test_missing_handler_setting_stores_nothing(stack, lambda_role):
    lam = stack.client("lambda")
    code, resp = error_of(lam.create_function, FunctionName="bad-nohandler", Runtime="python3.11",
                          Role=lambda_role, Code={"ZipFile": zip_package({"app.py": GOOD})})
    assert code == "InvalidParameterValueException"
    assert "Handler" in resp["Error"]["Message"]
    assert "bad-nohandler" not in function_names(stack)


def test_handler_module_missing_is_import_module_error(stack, create_function):
    lam = create_function("bad-module", GOOD, handler="nosuchfile.handler")
    resp = lam.invoke(FunctionName="bad-module", Payload=b"{}")
    assert resp["FunctionError"] == "Unhandled"
    error = json.loads(resp["Payload"].read())
    assert error["errorType"] == "Runtime.ImportModuleError"
    assert "nosuchfile" in error["errorMessage"]


def test_handler_function_missing_is_handler_not_found(stack, create_function):
    lam = create_function("bad-func", GOOD, handler="app.nosuchfunction")
    error = json.loads(lam.invoke(FunctionName="bad-func", Payload=b"{}")["Payload"].read())
    assert error["errorType"] == "Runtime.HandlerNotFound"


def test_invalid_json_payload(stack, create_function):
    lam = create_function("bad-json", GOOD)
    code, resp = error_of(lam.invoke, FunctionName="bad-json", Payload=b"{not json")
    assert code == "InvalidRequestContentException"
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_payload_over_six_megabytes(stack, create_function):
    lam = create_function("bad-big", GOOD)
    big = json.dumps({"blob": "x" * (6 * 1024 * 1024 + 10)})
    code, resp = error_of(lam.invoke, FunctionName="bad-big", Payload=big)
    assert code == "RequestTooLargeException"
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 413


def test_invoke_missing_function(stack):
    code, _ = error_of(stack.client("lambda").invoke, FunctionName="bad-missing", Payload=b"{}")
    assert code == "ResourceNotFoundException"


def test_duplicate_function_keeps_the_first(stack, create_function):
    lam = create_function("bad-dupe", GOOD)
    code, _ = error_of(create_function, "bad-dupe", "def handler(e, c):\n    return 2\n")
    assert code == "ResourceConflictException"
    assert lam.invoke(FunctionName="bad-dupe", Payload=b'{"v": 1}')["Payload"].read() == b'{"v": 1}'


def test_non_python_runtime_is_not_emulated(stack, create_function):
    lam = create_function("bad-node", GOOD, handler="index.handler", runtime="nodejs20.x")
    code, resp = error_of(lam.invoke, FunctionName="bad-node", Payload=b"{}")
    assert code == "NotImplemented"
    assert "nodejs20.x" in resp["Error"]["Message"]


def test_request_for_a_service_nobody_serves_is_one_clear_error(stack):
    """boto3 refuses unknown services client-side, but any HTTP client can send one: the
    endpoint answers 501 NotImplemented naming it, never a traceback or moto's S3 fallback."""
    import urllib.error
    import urllib.request

    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    request = AWSRequest(method="POST", url=stack.endpoint + "/", data=b"{}",
                         headers={"X-Amz-Target": "NoSuch.DoThing", "Content-Type": "application/x-amz-json-1.1"})
    SigV4Auth(Credentials("testing", "testing"), "nosuchservice", "us-east-1").add_auth(request)
    prepared = request.prepare()
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(urllib.request.Request(prepared.url, data=prepared.body, method="POST",
                                                      headers=dict(prepared.headers)), timeout=10)
    body = err.value.read().decode()
    assert err.value.code == 501
    assert "<Code>NotImplemented</Code>" in body and "nosuchservice" in body and "Traceback" not in body


def test_handler_that_exits_is_a_runtime_exit_error(stack, create_function):
    lam = create_function("bad-exit", "import os\ndef handler(e, c):\n    os._exit(3)\n")
    error = json.loads(lam.invoke(FunctionName="bad-exit", Payload=b"{}")["Payload"].read())
    assert error["errorType"] == "Runtime.ExitError"
    assert "exit status 3" in error["errorMessage"]


def test_result_that_is_not_json_is_a_marshal_error(stack, create_function):
    lam = create_function("bad-result", "def handler(e, c):\n    return {1, 2}\n")
    error = json.loads(lam.invoke(FunctionName="bad-result", Payload=b"{}")["Payload"].read())
    assert error["errorType"] == "Runtime.MarshalError"
