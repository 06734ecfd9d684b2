"""AWS-shaped errors.

Every AWS API reports failure the same way: an HTTP status, an error *code*
(``NoSuchBucket``, ``ResourceNotFoundException``, ``InvalidRequestException``)
and a human message. boto3 turns that into ``botocore.exceptions.ClientError``
whose ``response["Error"]`` holds ``Code`` and ``Message``. That is what a
learner's ``except`` clause matches on, so that is what localaws must produce.

Each service's ``errors.py`` declares **one small class per AWS error code**,
named like the code, the way moto's ``exceptions.py`` files do::

    class InvalidRequestException(AWSError):
        status = 400

    raise InvalidRequestException("QueryExecution 1234 was not found")

Raise it anywhere inside localaws code that runs for a request (an
operation handler, a moto hook). The endpoint catches it and writes it in the
wire format of the service that was called (JSON for Athena or Lambda, XML
for S3 or EMR...), so the learner never sees a Python traceback from our
internals.
"""
from __future__ import annotations

import json
import uuid
from xml.sax.saxutils import escape


class AWSError(Exception):
    """An error as AWS reports it: ``code``, ``message`` and HTTP ``status``.

    Subclasses name the code (the class name, unless ``code`` is set) and
    its status. ``sender_fault`` is True for errors caused by the request
    (4xx, "Sender" in the XML protocols) and False for the service's own
    faults (5xx). ``extra`` adds service-specific fields to JSON error bodies
    (Lambda's ``Type``, Athena's ``AthenaErrorCode``...).
    """

    code = "InternalFailure"
    status = 400
    extra: dict = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "code" not in cls.__dict__:
            cls.code = cls.__name__

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None,
                 sender_fault: bool | None = None, extra: dict | None = None):
        self.code = code or self.code
        self.status = status or self.status
        self.message = message
        super().__init__(f"{self.code}: {message}")
        self.sender_fault = self.status < 500 if sender_fault is None else sender_fault
        self.extra = {**type(self).extra, **(extra or {})}


class NotEmulated(AWSError):
    """An operation (or a case of one) that the local stack does not run.

    HTTP 501 on purpose: botocore retries 500 (so a learner would wait through
    several retries for nothing) but never retries 501 ``NotImplemented``.
    """
    code = "NotImplemented"
    status = 501


class InternalFailure(AWSError):
    """A bug in a stand-in, reported AWS-shaped instead of as a traceback.

    Status 400 with a Receiver fault: a 500 would make botocore retry a bug.
    """


def not_emulated(service: str, operation: str | None, why: str = "") -> AWSError:
    """The error for an operation the local stack does not run."""
    what = f"{service}:{operation}" if operation else f"the {service} service"
    message = (f"{what} is not emulated by the local stack (localaws/moto)"
               f"{': ' + why if why else ''}. Run this cell against real AWS "
               "(LOCALAWS_TARGET=aws) or see the chapter's 'How this differs from AWS'.")
    return NotEmulated(message, sender_fault=False)


def render(error: AWSError, protocol: str) -> tuple[int, list[tuple[str, str]], bytes]:
    """Serialise ``error`` the way a service of ``protocol`` does on the wire.

    ``protocol`` is botocore's name: ``json``, ``rest-json``, ``query``,
    ``ec2`` or ``rest-xml``. Returns (status, headers, body).
    """
    request_id = str(uuid.uuid4())
    if protocol in ("json", "rest-json", "smithy-rpc-v2-cbor"):
        body = {"__type": error.code, "message": error.message, "Message": error.message}
        body.update(error.extra)
        ctype = "application/x-amz-json-1.1" if protocol == "json" else "application/json"
        headers = [("Content-Type", ctype), ("x-amzn-ErrorType", error.code),
                   ("x-amzn-RequestId", request_id)]
        return error.status, headers, json.dumps(body).encode()
    code, message = escape(error.code), escape(error.message)
    if protocol == "query":
        kind = "Sender" if error.sender_fault else "Receiver"
        xml = (f"<ErrorResponse><Error><Type>{kind}</Type><Code>{code}</Code>"
               f"<Message>{message}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>")
    elif protocol == "ec2":
        xml = (f"<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message>"
               f"</Error></Errors><RequestID>{request_id}</RequestID></Response>")
    else:  # rest-xml (S3, CloudFront, Route 53)
        xml = (f"<Error><Code>{code}</Code><Message>{message}</Message>"
               f"<RequestId>{request_id}</RequestId></Error>")
    headers = [("Content-Type", "text/xml"), ("x-amzn-RequestId", request_id),
               ("x-amz-request-id", request_id)]
    return error.status, headers, ('<?xml version="1.0" encoding="UTF-8"?>' + xml).encode()
