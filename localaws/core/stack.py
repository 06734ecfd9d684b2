"""The local AWS stack: one endpoint, every service, real data planes.

    >>> import localaws
    >>> stack = localaws.start()          # 127.0.0.1, a free port, ~1 s
    >>> s3 = stack.client("s3")           # a plain boto3 client for that endpoint
    >>> stack.stop()

``start()`` returns the running stack if there is one in this process (so a
notebook can call it in every chapter). The stack stops at interpreter exit
at the latest. With ``LOCALAWS_TARGET=aws`` in the environment, ``start()``
returns an :class:`AwsStack` whose clients talk to your real AWS account
instead: the same notebook code then runs (and costs money) on AWS.
"""
from __future__ import annotations

import atexit
import importlib
import os
import shutil
import tempfile
import threading

import boto3
from botocore.config import Config

from .processes import ProcessTracker
from .registry import Context, registered
from .server import Endpoint

ACCOUNT_ID = "123456789012"   # moto's default account
ACCESS_KEY = "testing"        # any key works locally; these are not secrets
SECRET_KEY = "testing"

# Packages of localaws that are not services.
NOT_SERVICES = {"core", "data"}


def service_packages() -> list[str]:
    """Every service package (``localaws/<name>/``): importing one registers
    its data plane (see core/registry.py). Found by listing the folder, so a
    new service needs no edit here; its ``__init__`` must stay light (import
    heavy engines such as Spark lazily, when first used)."""
    import pkgutil

    import localaws
    return [f"localaws.{m.name}" for m in pkgutil.iter_modules(localaws.__path__)
            if m.ispkg and m.name not in NOT_SERVICES]

_lock = threading.Lock()
_running: "Stack | None" = None


class Stack:
    """A running local stack. Use :func:`start` rather than the constructor."""

    target = "local"

    def __init__(self, region: str = "us-east-1"):
        self.region = region
        self.account_id = ACCOUNT_ID
        self.work_dir = tempfile.mkdtemp(prefix="localaws-")
        self.processes = ProcessTracker()
        self._planes = {}
        self._endpoint = Endpoint(self._make_context)
        self.endpoint = self._endpoint.url
        self._stopped = False

    def _make_context(self, url: str) -> Context:
        return Context(endpoint=url, region=self.region, account_id=self.account_id,
                       work_dir=self.work_dir, client=self.client, processes=self.processes)

    def _start(self) -> "Stack":
        from moto.moto_api._internal.models import moto_api_backend
        moto_api_backend.reset()            # every stack starts empty
        for module in service_packages():
            importlib.import_module(module)
        for name, cls in registered().items():
            plane = cls()
            plane.install(self._endpoint.context)
            self._planes[name] = plane
        self._endpoint.start()
        return self

    # -- clients -------------------------------------------------------------
    def client(self, service: str, **kwargs):
        """A boto3 client for ``service`` on this stack's endpoint."""
        kwargs.setdefault("config", Config(retries={"max_attempts": 2, "mode": "standard"}))
        return boto3.client(service, endpoint_url=self.endpoint, region_name=self.region,
                            aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
                            **kwargs)

    def resource(self, service: str, **kwargs):
        """A boto3 resource (``s3``, ``dynamodb``, ``sqs``...) on this endpoint."""
        return boto3.resource(service, endpoint_url=self.endpoint, region_name=self.region,
                              aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
                              **kwargs)

    def env(self) -> dict[str, str]:
        """Environment variables that point any AWS SDK or the AWS CLI here.

        ``AWS_ENDPOINT_URL`` is honoured by boto3/botocore (and so by the AWS
        CLI, awswrangler and PyAthena); the credentials are dummies that the
        local endpoint accepts.
        """
        return {"AWS_ENDPOINT_URL": self.endpoint, "AWS_ACCESS_KEY_ID": ACCESS_KEY,
                "AWS_SECRET_ACCESS_KEY": SECRET_KEY, "AWS_DEFAULT_REGION": self.region,
                "AWS_REGION": self.region}

    def service(self, name: str):
        """The data plane of ``name`` (e.g. ``stack.service("lambda")``)."""
        return self._planes[name]

    def __getattr__(self, name: str):
        """``stack.emr``, ``stack.athena``...: a service's data plane, for its
        teaching hooks (``stack.service("lambda")`` for the keyword)."""
        planes = self.__dict__.get("_planes", {})
        if name in planes:
            return planes[name]
        raise AttributeError(f"{type(self).__name__!s} has no attribute or service {name!r}")

    # -- lifecycle -----------------------------------------------------------
    def stop(self) -> None:
        """Stop the endpoint, end every process we started, delete scratch files."""
        global _running
        if self._stopped:
            return
        self._stopped = True
        for plane in reversed(list(self._planes.values())):
            plane.stop()
        self._endpoint.stop()
        self.processes.stop_all()
        self._endpoint.context.restore()
        shutil.rmtree(self.work_dir, ignore_errors=True)
        with _lock:
            if _running is self:
                _running = None

    @property
    def running(self) -> bool:
        return not self._stopped

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def __repr__(self):
        state = "running" if self.running else "stopped"
        return f"<localaws Stack {state}, region {self.region}>"


class AwsStack:
    """The same interface, talking to real AWS (``LOCALAWS_TARGET=aws``).

    Credentials and region come from your usual AWS configuration. Nothing
    is started or stopped; every call is billed as on AWS.
    """

    target = "aws"
    endpoint = None

    def __init__(self, region: str | None = None):
        self._session = boto3.session.Session(region_name=region)
        self.region = self._session.region_name
        self.account_id = None

    def client(self, service: str, **kwargs):
        return self._session.client(service, **kwargs)

    def resource(self, service: str, **kwargs):
        return self._session.resource(service, **kwargs)

    def env(self) -> dict[str, str]:
        return {"AWS_REGION": self.region} if self.region else {}

    def service(self, name: str):
        raise KeyError(f"{name}: there are no local data planes when targeting AWS")

    running = True

    def stop(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass

    def __repr__(self):
        return f"<localaws AwsStack, region {self.region}>"


def start(region: str | None = None) -> Stack | AwsStack:
    """Start the local stack (or return the running one).

    ``region`` defaults to ``us-east-1`` locally. Set ``LOCALAWS_TARGET=aws``
    to get real AWS clients instead; the region then defaults to your AWS
    configuration (``AWS_REGION``, ``AWS_DEFAULT_REGION``, ``~/.aws/config``).
    """
    global _running
    if os.environ.get("LOCALAWS_TARGET", "local").lower() == "aws":
        return AwsStack(region or os.environ.get("AWS_REGION"))
    with _lock:
        if _running is not None and _running.running:
            return _running
        _running = Stack(region or "us-east-1")._start()
        return _running


def _stop_at_exit():
    if _running is not None:
        _running.stop()


atexit.register(_stop_at_exit)
