"""S3 answers with the status codes S3 documents, on every path a reader takes.

Readers such as pyarrow or fsspec ask ``HEAD`` before they read, and decide
from the status alone (HEAD answers have no body): 404 means "no such
object", 304 and 412 answer conditional requests, 206 and 416 ranges. A
wrong status (a 501 for a missing key, say) breaks them in ways a learner
cannot debug. Sources: the S3 API reference pages of HeadObject, GetObject,
PutObject (conditional writes), DeleteObject, and "Error responses".
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import botocore.exceptions
import pytest

BUCKET = "status-paths"
KEY = "data/ten-bytes.txt"
BODY = b"0123456789"


@pytest.fixture(scope="module")
def s3(stack):
    s3 = stack.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=BODY)
    return s3


def status_and_code(call, **kwargs):
    try:
        response = call(**kwargs)
    except botocore.exceptions.ClientError as err:
        return err.response["ResponseMetadata"]["HTTPStatusCode"], err.response["Error"]["Code"]
    return response["ResponseMetadata"]["HTTPStatusCode"], None


@pytest.mark.parametrize("case, expected", [
    ("head missing key", (404, "404")),
    ("head missing bucket", (404, "404")),
    ("head bucket missing", (404, "404")),
    ("get missing key", (404, "NoSuchKey")),
    ("get missing bucket", (404, "NoSuchBucket")),
    ("put missing bucket", (404, "NoSuchBucket")),
    ("delete missing key", (204, None)),
    ("delete missing bucket", (404, "NoSuchBucket")),
    ("list missing bucket", (404, "NoSuchBucket")),
    ("copy missing source", (404, "NoSuchKey")),
    ("delete bucket not empty", (409, "BucketNotEmpty")),
])
def test_missing_things(s3, case, expected):
    calls = {
        "head missing key": (s3.head_object, {"Bucket": BUCKET, "Key": "nope"}),
        "head missing bucket": (s3.head_object, {"Bucket": "no-such-bucket-x", "Key": "k"}),
        "head bucket missing": (s3.head_bucket, {"Bucket": "no-such-bucket-x"}),
        "get missing key": (s3.get_object, {"Bucket": BUCKET, "Key": "nope"}),
        "get missing bucket": (s3.get_object, {"Bucket": "no-such-bucket-x", "Key": "k"}),
        "put missing bucket": (s3.put_object, {"Bucket": "no-such-bucket-x", "Key": "k", "Body": b"x"}),
        "delete missing key": (s3.delete_object, {"Bucket": BUCKET, "Key": "nope"}),
        "delete missing bucket": (s3.delete_object, {"Bucket": "no-such-bucket-x", "Key": "k"}),
        "list missing bucket": (s3.list_objects_v2, {"Bucket": "no-such-bucket-x"}),
        "copy missing source": (s3.copy_object, {"Bucket": BUCKET, "Key": "copy",
                                                 "CopySource": {"Bucket": BUCKET, "Key": "nope"}}),
        "delete bucket not empty": (s3.delete_bucket, {"Bucket": BUCKET}),
    }
    call, kwargs = calls[case]
    assert status_and_code(call, **kwargs) == expected


def test_head_and_get_of_an_existing_object(s3):
    head = s3.head_object(Bucket=BUCKET, Key=KEY)
    assert head["ResponseMetadata"]["HTTPStatusCode"] == 200 and head["ContentLength"] == 10
    assert s3.get_object(Bucket=BUCKET, Key=KEY)["Body"].read() == BODY


@pytest.mark.parametrize("range_header, status, body, content_range", [
    ("bytes=0-3", 206, b"0123", "bytes 0-3/10"),
    ("bytes=7-", 206, b"789", "bytes 7-9/10"),
    ("bytes=-2", 206, b"89", "bytes 8-9/10"),
    ("bytes=5-100", 206, b"56789", "bytes 5-9/10"),       # an end past the object is cut
])
def test_ranges(s3, range_header, status, body, content_range):
    got = s3.get_object(Bucket=BUCKET, Key=KEY, Range=range_header)
    assert got["ResponseMetadata"]["HTTPStatusCode"] == status
    assert got["ContentRange"] == content_range
    assert got["Body"].read() == body


def test_a_range_past_the_end_is_416(s3):
    assert status_and_code(s3.get_object, Bucket=BUCKET, Key=KEY, Range="bytes=10-20") == (416, "InvalidRange")


def test_conditional_reads(s3):
    etag = s3.head_object(Bucket=BUCKET, Key=KEY)["ETag"]
    past = datetime.now(timezone.utc) - timedelta(days=1)
    future = datetime.now(timezone.utc) + timedelta(days=1)
    assert status_and_code(s3.get_object, Bucket=BUCKET, Key=KEY, IfMatch=etag) == (200, None)
    assert status_and_code(s3.get_object, Bucket=BUCKET, Key=KEY, IfMatch='"0000"') == (412, "PreconditionFailed")
    assert status_and_code(s3.get_object, Bucket=BUCKET, Key=KEY, IfNoneMatch=etag) == (304, "304")
    assert status_and_code(s3.head_object, Bucket=BUCKET, Key=KEY, IfNoneMatch=etag) == (304, "304")
    assert status_and_code(s3.head_object, Bucket=BUCKET, Key=KEY, IfMatch='"0000"') == (412, "412")
    assert status_and_code(s3.get_object, Bucket=BUCKET, Key=KEY, IfModifiedSince=future) == (304, "304")
    assert status_and_code(s3.get_object, Bucket=BUCKET, Key=KEY, IfModifiedSince=past) == (200, None)
    assert status_and_code(s3.get_object, Bucket=BUCKET, Key=KEY,
                           IfUnmodifiedSince=past) == (412, "PreconditionFailed")


def test_conditional_write_refuses_to_overwrite(s3):
    """PutObject with If-None-Match: * (S3 conditional writes, August 2024)."""
    assert status_and_code(s3.put_object, Bucket=BUCKET, Key="once.txt", Body=b"first",
                           IfNoneMatch="*") == (200, None)
    assert status_and_code(s3.put_object, Bucket=BUCKET, Key="once.txt", Body=b"second",
                           IfNoneMatch="*") == (412, "PreconditionFailed")
    assert s3.get_object(Bucket=BUCKET, Key="once.txt")["Body"].read() == b"first"   # nothing lost


def test_pyarrow_reader_sees_missing_and_present_objects(stack, s3):
    """pyarrow HEADs first: a missing key must be FileNotFoundError, a present one readable."""
    fs = stack.context.s3.filesystem("status-reader")
    info = fs.get_file_info([f"{BUCKET}/{KEY}", f"{BUCKET}/nope"])
    assert [i.type.name for i in info] == ["File", "NotFound"]
    with pytest.raises(FileNotFoundError):
        fs.open_input_file(f"{BUCKET}/nope")
    with fs.open_input_file(f"{BUCKET}/{KEY}") as f:
        assert f.read() == BODY


def test_expect_100_continue_gets_one_interim_answer(stack, s3):
    """A client that sends ``Expect: 100-continue`` (the AWS SDK for Java's uploads) waits for
    one "100 Continue", sends the body, then reads the final status; a second 100 breaks it."""
    import socket

    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    body = b"continued"
    request = AWSRequest(method="PUT", url=f"{stack.endpoint}/{BUCKET}/expect.txt", data=body,
                         headers={"Expect": "100-continue", "Content-Length": str(len(body))})
    S3SigV4Auth(Credentials("testing", "testing"), "s3", "us-east-1").add_auth(request)
    host, port = stack.endpoint.split("//")[1].split(":")
    head = "".join(f"{k}: {v}\r\n" for k, v in request.headers.items())
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(f"PUT /{BUCKET}/expect.txt HTTP/1.1\r\nHost: {host}:{port}\r\n{head}\r\n".encode())
        interim = sock.recv(1024)
        assert interim.startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        assert interim.count(b"100 Continue") == 1
        sock.sendall(body)
        final = b""
        while b"\r\n\r\n" not in final:
            final += sock.recv(4096)
    assert final.split(b"\r\n", 1)[0] == b"HTTP/1.1 200 OK", final[:200]
    assert s3.get_object(Bucket=BUCKET, Key="expect.txt")["Body"].read() == body


def test_a_chunked_upload_stores_its_whole_body(stack, s3):
    """``Transfer-Encoding: chunked`` (no Content-Length): the object holds every chunk."""
    import socket

    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    request = AWSRequest(method="PUT", url=f"{stack.endpoint}/{BUCKET}/chunked.txt",
                         headers={"Transfer-Encoding": "chunked", "X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"})
    S3SigV4Auth(Credentials("testing", "testing"), "s3", "us-east-1").add_auth(request)
    host, port = stack.endpoint.split("//")[1].split(":")
    head = "".join(f"{k}: {v}\r\n" for k, v in request.headers.items())
    chunks = [b"first part, ", b"second part"]
    body = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(f"PUT /{BUCKET}/chunked.txt HTTP/1.1\r\nHost: {host}:{port}\r\n{head}\r\n".encode() + body)
        answer = b""
        while b"\r\n\r\n" not in answer:
            answer += sock.recv(4096)
    assert answer.split(b"\r\n", 1)[0] == b"HTTP/1.1 200 OK", answer[:200]
    assert s3.get_object(Bucket=BUCKET, Key="chunked.txt")["Body"].read() == b"".join(chunks)
