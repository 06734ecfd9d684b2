"""Which AWS service and operation is this HTTP request?

boto3 encodes the operation in one of three places, depending on the
service's *protocol* (botocore names them):

- ``json`` (Athena, Glue, EMR, Kinesis, DynamoDB...): header
  ``X-Amz-Target: AmazonAthena.StartQueryExecution``;
- ``query`` / ``ec2`` (SQS, SNS, Redshift, IAM...): form field ``Action=...``;
- ``rest-json`` / ``rest-xml`` (Lambda, S3, OpenSearch, Kafka...): the HTTP
  method and URL path, matched against the operation's ``requestUri``
  template (``POST /2015-03-31/functions/{FunctionName}/invocations``).

The service itself comes from the SigV4 ``Authorization`` header, whose
credential scope names it: ``Credential=KEY/20261001/us-east-1/lambda/aws4_request``.

We read the same botocore service models boto3 uses, so the answer is the
operation name a learner sees in the boto3 docs.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from urllib.parse import parse_qs, unquote

import botocore.session

# Signing names that differ from botocore's service name (credential scope -> service).
SIGNING_ALIASES = {
    "elasticmapreduce": "emr", "monitoring": "cloudwatch", "email": "ses",
    "states": "stepfunctions", "es": "opensearch", "aoss": "opensearchserverless",
    "execute-api": "apigateway", "mobiletargeting": "pinpoint",
    "iotdata": "iot-data",
}

#: Services that share a signing name, told apart by their X-Amz-Target prefix
#: (Managed Service for Apache Flink's v2 API signs as ``kinesisanalytics``, like v1).
TARGET_ALIASES = {"KinesisAnalytics_20180523": "kinesisanalyticsv2"}


@dataclass
class WireRequest:
    """What the middleware knows about one request."""
    method: str
    path: str                       # URL-decoded (PATH_INFO)
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    service: str | None = None      # botocore service name, e.g. "athena"
    operation: str | None = None    # e.g. "StartQueryExecution"
    protocol: str = "rest-xml"
    region: str = "us-east-1"
    access_key: str | None = None
    params: dict = field(default_factory=dict)  # decoded JSON body or form fields
    principals: object = None                   # the stack's Principals (set by the middleware)
    raw_path: str | None = None                 # as sent: an ARN label keeps its %2F

    @property
    def route_path(self) -> str:
        """The path REST routes are matched on: as sent, so that a label holding a "/"
        (an MSK cluster ARN, ``cluster/name/uuid``) stays one label."""
        return self.raw_path or self.path

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name.lower(), default)

    @property
    def principal(self):
        """Who signed this request: an IAM user, a role session, or the account root
        (looked up on first use; see ``core/principals.py``)."""
        return self.principals.of_key(self.access_key) if self.principals else None


@functools.lru_cache(maxsize=None)
def _session():
    return botocore.session.get_session()


@functools.lru_cache(maxsize=None)
def service_model(name: str):
    """botocore's model of ``name`` or None if botocore does not know it."""
    try:
        return _session().get_service_model(name)
    except Exception:
        return None


@functools.lru_cache(maxsize=None)
def _rest_routes(service: str):
    """(method, compiled path regex, required query keys, literal length, op name).

    Each ``{label}`` of the path becomes a named group ``p0``, ``p1``...;
    :func:`_uri_members` says which request member each one is."""
    model = service_model(service)
    routes = []
    for op_name in model.operation_names:
        http = model.operation_model(op_name).http
        uri = http.get("requestUri", "/")
        path, _, query = uri.partition("?")
        pattern = ""
        for n, part in enumerate(re.split(r"(\{[^}]+\})", path)):
            if part.startswith("{"):
                pattern += f"(?P<p{n}>.+)" if part.endswith("+}") else f"(?P<p{n}>[^/]+)"
            else:
                pattern += re.escape(part)
        required = [q.split("=")[0] for q in query.split("&") if q]
        literal = len(re.sub(r"\{[^}]+\}", "", path)) + 10 * len(required)
        routes.append((http.get("method", "POST"), re.compile(f"^{pattern}/?$"),
                       required, literal, op_name))
    return routes


@functools.lru_cache(maxsize=None)
def _uri_members(service: str, op_name: str) -> dict[str, str]:
    """group name (``p1``) -> request member (``ClusterArn``) for the path labels of an operation."""
    operation = service_model(service).operation_model(op_name)
    path = operation.http.get("requestUri", "/").partition("?")[0]
    by_label = {}
    if operation.input_shape is not None:
        by_label = {member.serialization.get("name", name): name
                    for name, member in operation.input_shape.members.items()
                    if member.serialization.get("location") == "uri"}
    return {f"p{n}": by_label.get(part.strip("{}+"), part.strip("{}+"))
            for n, part in enumerate(re.split(r"(\{[^}]+\})", path)) if part.startswith("{")}


def path_params(req: "WireRequest") -> dict[str, str]:
    """A REST request's path labels by member name: ``{"ClusterArn": "arn:aws:kafka:..."}``."""
    for method, regex, required, literal, op_name in _rest_routes(req.service):
        match = regex.match(req.route_path) if op_name == req.operation and method == req.method else None
        if match:
            members = _uri_members(req.service, op_name)
            return {members[group]: unquote(value) for group, value in match.groupdict().items()}
    return {}


def _signing_service(headers: dict[str, str]) -> tuple[str | None, str | None, str | None]:
    """(service, region, access key id) from a SigV4 Authorization header."""
    auth = headers.get("authorization", "")
    m = re.search(r"Credential=([^/]+)/\d{8}/([^/]+)/([^/]+)/aws4_request", auth)
    if not m:
        return None, None, None
    key, region, signing = m.groups()
    return SIGNING_ALIASES.get(signing, signing), region, key


def identify(req: WireRequest) -> WireRequest:
    """Fill ``service``, ``operation``, ``protocol``, ``region`` of ``req``."""
    service, region, key = _signing_service(req.headers)
    req.region, req.access_key = region or req.region, key
    target = req.header("x-amz-target")
    if target and target.split(".", 1)[0] in TARGET_ALIASES:
        service = TARGET_ALIASES[target.split(".", 1)[0]]
    model = service_model(service) if service else None
    if model is None:
        req.service = service
        return req
    req.service, req.protocol = service, model.protocol
    if target and "." in target:
        req.operation = target.rsplit(".", 1)[1]
    elif model.protocol in ("query", "ec2"):
        form = parse_qs(req.body.decode("utf-8", "replace")) if req.body else {}
        action = (form.get("Action") or req.query.get("Action") or [None])[0]
        req.operation = action
        req.params = {k: v[0] for k, v in form.items()}
    else:
        best = None
        for method, regex, required, literal, op_name in _rest_routes(service):
            if method == req.method and regex.match(req.route_path) and all(q in req.query for q in required):
                if best is None or literal > best[0]:
                    best = (literal, op_name)
        req.operation = best[1] if best else None
    return req
