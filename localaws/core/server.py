"""The one local AWS endpoint: moto's WSGI app behind a thin middleware.

Request path: boto3 -> HTTP on 127.0.0.1:<free port> -> :class:`Middleware`
-> (a plane's ``@operation`` handler, if one is declared for the operation)
-> moto's ``DomainDispatcherApplication`` (which picks the service backend).

The middleware also keeps moto's failure modes away from learners:

- an operation moto has not implemented raises ``NotImplementedError``
  inside moto (which would become an HTML 500 that botocore retries): we
  answer ``501 NotImplemented`` naming the operation, in the service's format;
- a request moto has no route for, or for a service moto does not serve at
  all, gets the same answer;
- an :class:`AWSError` raised by our own code becomes that AWS error;
- any other exception in our code becomes ``InternalFailure`` naming the
  exception, never a traceback page.

Every request is attributed to the principal of its access key
(``req.principal``), and the body bytes of every S3 ``GetObject`` answer
are counted for the key that signed it (``core/s3.py``).

One more check stands in front of S3: data in a location registered with
Lake Formation (``core/lake.py``) is meant to be read through the engines
Lake Formation governs (Athena, Glue, Redshift Spectrum), which apply its
column and row permissions. A direct read of such an object (``GetObject``,
``HeadObject``, a listing under the location) by a principal that is
neither a data lake administrator nor allowed ``s3:GetObject`` there by its
IAM policies gets S3's ``AccessDenied`` (403) and nothing of the object
(:meth:`Middleware.lake_check`). The stack's own readers (Athena's
metering keys stand for the account root) are not affected.
"""
from __future__ import annotations

import functools
import io
import json
import logging
import threading
from http import HTTPStatus
from urllib.parse import parse_qs, unquote

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication, MotoRequestHandler, create_backend_app)
from werkzeug.exceptions import HTTPException
from werkzeug.serving import make_server

from .errors import AWSError, InternalFailure, not_emulated, render
from .wire import WireRequest, identify

#: S3 operations that read objects or list their keys: checked against Lake Formation's registrations.
LAKE_READS = {"GetObject", "HeadObject", "GetObjectAttributes", "SelectObjectContent",
              "ListObjects", "ListObjectsV2", "ListObjectVersions"}


class AccessDenied(AWSError):
    """S3's answer to a request its caller may not make (REST-XML, HTTP 403)."""
    status = 403


log = logging.getLogger("localaws")
log.addHandler(logging.NullHandler())   # internals never print into a notebook cell


def _status_line(status: int) -> str:
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"{status} Status"


def _read_request(environ) -> WireRequest:
    """Read the body once and put it back, so moto can read it again."""
    if environ.get("wsgi.input_terminated"):      # Transfer-Encoding: chunked: to its last chunk
        body = environ["wsgi.input"].read()
    else:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(body)
    headers = {k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k.startswith("HTTP_")}
    if environ.get("CONTENT_TYPE"):
        headers["content-type"] = environ["CONTENT_TYPE"]
    raw = (environ.get("RAW_URI") or environ.get("REQUEST_URI") or "").partition("?")[0]
    req = WireRequest(method=environ.get("REQUEST_METHOD", "GET"),
                      path=environ.get("PATH_INFO", "/"),
                      query=parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True),
                      headers=headers, body=body, raw_path=raw or None)
    return identify(req)


def _has_route(app, environ) -> bool:
    """Does moto's app for this service have a URL rule for this request?"""
    try:
        app.url_map.bind_to_environ(environ).match()
        return True
    except HTTPException:
        return False


class Middleware:
    """WSGI middleware: plane operations, error translation, then moto."""

    def __init__(self, context):
        self.context = context
        self.moto = DomainDispatcherApplication(create_backend_app)
        # moto finds a request's service by listing its own package folder (a stat() of each
        # of ~180 entries) on every request; the answer for a host never changes.
        self.moto.get_backend_for_host = functools.lru_cache(maxsize=1024)(self.moto.get_backend_for_host)

    def __call__(self, environ, start_response):
        req = _read_request(environ)
        req.principals = self.context.principals
        if req.protocol in ("json", "rest-json") and req.body and req.method in ("POST", "PUT"):
            try:
                req.params = json.loads(req.body)
            except ValueError:
                req.params = {}
        registry = self.context.registry
        try:
            if req.service == "s3" and req.operation in LAKE_READS:
                self.lake_check(req)
            registry.activate(req.service)
            handler = registry.handler(req.service, req.operation)
            if handler is not None:
                answer = handler(req)
                if answer is not None:
                    return self._send(start_response, answer)
            if environ.get("PATH_INFO", "").startswith("/moto-api"):
                return self.moto(environ, start_response)
            try:
                app = self.moto.get_application(environ)
            except Exception:   # moto has no backend for this service at all
                raise not_emulated(req.service or "?", None) from None
            if req.service and req.service != "s3" and app.service == "s3":
                # moto falls back to S3 for services it does not know
                raise not_emulated(req.service, None)
            if not _has_route(app, environ):
                # The operation exists in AWS but not in the emulator
                raise not_emulated(req.service or "?", req.operation)
            return self._call_moto(app, environ, start_response, req)
        except AWSError as err:
            return self._send(start_response, render(err, req.protocol))
        except NotImplementedError as exc:
            return self._send(start_response, render(
                not_emulated(req.service or "?", req.operation, str(exc)), req.protocol))
        except Exception as exc:  # a bug in the stand-in: say so, AWS-shaped
            log.debug("localaws internal error in %s:%s", req.service, req.operation, exc_info=True)
            err = InternalFailure(f"The local stand-in failed on {req.service}:{req.operation}: "
                                  f"{type(exc).__name__}: {exc}", sender_fault=False)
            return self._send(start_response, render(err, req.protocol))

    def lake_check(self, req: WireRequest) -> None:
        """Refuse a direct S3 read inside a location registered with Lake Formation when
        ``ctx.lake.location_access`` says the caller may not read it there."""
        lake = getattr(self.context, "lake", None)
        if lake is None:
            return
        bucket, _, key = req.path.lstrip("/").partition("/")
        if not bucket:
            return
        if req.operation.startswith("List"):
            key = (req.query.get("prefix") or [""])[0]
        uri = f"s3://{bucket}/{unquote(key)}" if key else f"s3://{bucket}"
        if lake.registered(uri) is None:
            return
        principal = req.principal
        if not lake.location_access(principal.arn if principal is not None else None, uri):
            raise AccessDenied("Access Denied")

    def _call_moto(self, app, environ, start_response, req):
        captured = {}

        def capture(status, headers, exc_info=None):
            captured["status"], captured["headers"] = status, headers
            return lambda data: None

        chunks = list(app(environ, capture))
        status = int(captured["status"].split()[0])
        if req.service == "s3" and req.operation == "GetObject" and status in (200, 206):
            bucket, _, key = req.path.lstrip("/").partition("/")
            self.context.s3.meter.record(req.access_key, bucket, unquote(key),
                                         sum(len(c) for c in chunks))
        start_response(captured["status"], captured["headers"])
        return chunks

    @staticmethod
    def _send(start_response, answer):
        if isinstance(answer, dict):
            answer = (200, [("Content-Type", "application/x-amz-json-1.1")], json.dumps(answer).encode())
        status, headers, body = answer
        if isinstance(body, str):
            body = body.encode()
        headers = list(headers.items()) if isinstance(headers, dict) else list(headers)
        headers.append(("Content-Length", str(len(body))))
        start_response(_status_line(status), headers)
        return [body]


class _QuietHandler(MotoRequestHandler):
    """moto's request handler without one log line per request on stderr."""

    def log_request(self, *args, **kwargs):
        pass

    def handle_expect_100(self):
        """Say nothing here: werkzeug answers ``Expect: 100-continue`` itself.

        Python's ``http.server`` would send its own "100 Continue" first, and a
        client (the AWS SDK for Java's async uploads) would take the second one
        for the final answer to its PutObject.
        """
        return True


class Endpoint:
    """A threaded HTTP server on 127.0.0.1 and a free port, serving the middleware."""

    def __init__(self, context_factory, host: str = "127.0.0.1", port: int = 0):
        self._server = make_server(host, port, None, threaded=True,
                                   request_handler=_QuietHandler)
        self.host, self.port = self._server.server_address[:2]
        self.url = f"http://{self.host}:{self.port}"
        self.context = context_factory(self.url)
        self._server.app = Middleware(self.context)
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        name="localaws-endpoint", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
