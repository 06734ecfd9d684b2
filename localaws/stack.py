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

The services are listed here, once (:data:`PLANES`): each is a package
``localaws/<service>/`` whose ``api.py`` holds its ``<Service>Plane``
(``docs/adding_a_service.md``). ``core/`` knows none of them.

Teaching hooks that only a local stack can offer (kill a Spot worker, count
the objects a query opened, advance the clock) live under ``stack.local``;
on the AWS target each of them raises an error that says what to do there.
"""
from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import threading

import boto3

from .athena.api import AthenaPlane
from .awslambda.api import LambdaPlane
from .core.clock import Clock
from .core.context import Context
from .core.plane import LocalOnlyError, Plane
from .core.server import Endpoint
from .databrew.api import DataBrewPlane
from .emr.api import EMRPlane
from .firehose.api import FirehosePlane
from .flink.api import FlinkPlane
from .glue.api import GluePlane
from .iot.api import IoTPlane
from .kafka.api import KafkaPlane
from .kinesis.api import KinesisPlane
from .lakeformation.api import LakeFormationPlane
from .opensearch.api import OpenSearchPlane
from .quicksight.api import QuickSightPlane
from .redshift.api import RedshiftPlane

#: Every service with a data plane, in the order they start (and stop in reverse).
PLANES: tuple[type[Plane], ...] = (LambdaPlane, AthenaPlane, EMRPlane, FirehosePlane, OpenSearchPlane,
                                   RedshiftPlane, KinesisPlane, IoTPlane, FlinkPlane, KafkaPlane, GluePlane,
                                   DataBrewPlane, QuickSightPlane, LakeFormationPlane)

ACCOUNT_ID = "123456789012"   # moto's default account

CLOCK_ON_AWS = ("AWS's clock cannot be advanced: wait the real time, or shorten the interval "
                "(e.g. Firehose BufferingHints IntervalInSeconds=0 delivers at once).")

_lock = threading.Lock()
_running: "Stack | None" = None


# ------------------------------------------------------------------ stack.local
class _PlaneHooks:
    """``stack.local.<plane>``: only the plane's ``@local_hook`` methods."""

    def __init__(self, plane: Plane, registry):
        self._plane, self._registry = plane, registry

    def __getattr__(self, name: str):
        if name in self._plane.local_hooks():
            self._registry.activate_plane(self._plane)
            return getattr(self._plane, name)
        raise AttributeError(f"stack.local.{self._plane.name} has no teaching hook {name!r}; "
                             f"it has: {', '.join(sorted(self._plane.local_hooks()))}")

    def __dir__(self):
        return sorted(self._plane.local_hooks())


class Local:
    """``stack.local``: teaching hooks of the local stack (not AWS APIs) and its clock."""

    def __init__(self, context: Context):
        self._context = context

    @property
    def clock(self) -> Clock:
        return self._context.clock

    def __getattr__(self, name: str):
        planes = self.__dict__["_context"].registry.planes
        if name in planes:
            return _PlaneHooks(planes[name], self._context.registry)
        raise AttributeError(f"stack.local has no {name!r}; it has: clock, {', '.join(sorted(planes))}")

    def __dir__(self):
        return ["clock", *sorted(self._context.registry.planes)]


class _AwsHooks:
    def __init__(self, plane: type[Plane]):
        self._plane = plane

    def __getattr__(self, name: str):
        hooks = self._plane.local_hooks()
        if name not in hooks:
            raise AttributeError(f"stack.local.{self._plane.name} has no teaching hook {name!r}")
        raise LocalOnlyError(f"stack.local.{self._plane.name}.{name} is a teaching hook of the local "
                             f"stack; there is no such call on AWS. {hooks[name]}")


class AwsLocal:
    """``stack.local`` on the AWS target: every hook says what to do instead."""

    @property
    def clock(self):
        raise LocalOnlyError(f"stack.local.clock is local-only. {CLOCK_ON_AWS}")

    def __getattr__(self, name: str):
        for plane in PLANES:
            if plane.name == name:
                return _AwsHooks(plane)
        raise AttributeError(f"stack.local has no {name!r}")


# ------------------------------------------------------------------ the stacks
class Stack:
    """A running local stack. Use :func:`start` rather than the constructor."""

    target = "local"

    def __init__(self, region: str = "us-east-1"):
        self.region = region
        self.account_id = ACCOUNT_ID
        self.work_dir = tempfile.mkdtemp(prefix="localaws-")
        self._endpoint = Endpoint(lambda url: Context(endpoint=url, region=self.region,
                                                      account_id=self.account_id, work_dir=self.work_dir))
        self.context: Context = self._endpoint.context
        self.endpoint = self._endpoint.url
        self.processes = self.context.processes
        self.local = Local(self.context)
        self._stopped = False

    def _start(self) -> "Stack":
        from moto.moto_api._internal.models import moto_api_backend
        moto_api_backend.reset()            # every stack starts empty
        for cls in PLANES:
            self.context.registry.add(cls(self.context))
        self._endpoint.start()
        return self

    # -- clients -------------------------------------------------------------
    def client(self, service: str, principal: str | None = None, **kwargs):
        """A boto3 client for ``service`` on this stack's endpoint.

        ``principal``: None (the administrator), an IAM user (name or ARN) or
        a role ARN created in the stack; its requests are attributed to it.
        """
        return self.context.client(service, principal, **kwargs)

    def resource(self, service: str, principal: str | None = None, **kwargs):
        """A boto3 resource (``s3``, ``dynamodb``, ``sqs``...) on this endpoint."""
        c = self.context.principals.credentials(principal)
        return boto3.resource(service, endpoint_url=self.endpoint, region_name=self.region,
                              aws_access_key_id=c.access_key, aws_secret_access_key=c.secret_key,
                              aws_session_token=c.session_token, **kwargs)

    def env(self, principal: str | None = None) -> dict[str, str]:
        """Environment variables that point any AWS SDK or the AWS CLI here
        (``AWS_ENDPOINT_URL``, the principal's keys, the region)."""
        return self.context.env(principal)

    def __getattr__(self, name: str):
        if name in {p.name for p in PLANES}:
            raise AttributeError(f"the teaching hooks of {name} are under stack.local.{name}")
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    # -- lifecycle -----------------------------------------------------------
    def stop(self) -> None:
        """Stop the endpoint, end every process we started, delete scratch files."""
        global _running
        if self._stopped:
            return
        self._stopped = True
        for plane in reversed(list(self.context.registry.planes.values())):
            plane.stop()
        self._endpoint.stop()
        self.processes.stop_all()
        self.context.registry.restore()
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
    running = True

    def __init__(self, region: str | None = None):
        self._session = boto3.session.Session(region_name=region)
        self.region = self._session.region_name
        self.account_id = None
        self.local = AwsLocal()

    def client(self, service: str, principal: str | None = None, **kwargs):
        _own_credentials_only(principal)
        return self._session.client(service, **kwargs)

    def resource(self, service: str, principal: str | None = None, **kwargs):
        _own_credentials_only(principal)
        return self._session.resource(service, **kwargs)

    def env(self, principal: str | None = None) -> dict[str, str]:
        _own_credentials_only(principal)
        return {"AWS_REGION": self.region} if self.region else {}

    def stop(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass

    def __repr__(self):
        return f"<localaws AwsStack, region {self.region}>"


def _own_credentials_only(principal: str | None) -> None:
    if principal is not None:
        raise LocalOnlyError("On AWS, sign as another principal with its own credentials: "
                             "boto3.Session(profile_name=...) or sts.assume_role(...).")


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
