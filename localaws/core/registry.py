"""The service registry: how localaws plugs real execution in behind moto.

moto is a *control plane*: it parses every boto3 request, keeps the
resources (buckets, functions, work groups, clusters) and answers in AWS's
wire format, but it executes nothing. Where AWS would *do* something (run a
Lambda handler, execute SQL, run a Spark step), localaws supplies a **data
plane** and plugs it in here. There are exactly two ways to plug in:

1. **Override a moto method** (``ctx.override``): replace a method of a moto
   model or backend class, e.g. ``LambdaFunction._invoke_lambda``. moto still
   parses the request and writes the response; our code does the real work
   in between. Use this when moto already has the operation.

2. **Route an operation** (``ctx.route``): a handler that sees the request
   before moto, identified by service and operation name
   (``("emr", "PutManagedScalingPolicy")``). It returns a response, or
   ``None`` to let moto answer. Use this when moto lacks the operation or
   answers it wrongly.

Both are undone when the stack stops (moto's classes are restored), and both
raise :class:`~localaws.core.errors.AWSError` for failures, which reach boto3
in the service's own error format.

A service package registers its data plane with the decorator::

    @data_plane("lambda")
    class LambdaRuntime(DataPlane):
        def install(self, ctx):
            ctx.override(LambdaFunction, "_invoke_lambda", self.run)

The stack installs every registered data plane when it starts.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from .errors import AWSError
from .metering import S3Meter

# service name -> DataPlane subclass, in registration order
_PLANES: dict[str, type["DataPlane"]] = {}


def data_plane(service: str):
    """Class decorator: register ``cls`` as the data plane of ``service``."""
    def register(cls):
        cls.service = service
        _PLANES[service] = cls
        return cls
    return register


def registered() -> dict[str, type["DataPlane"]]:
    """The registered data planes (service name -> class)."""
    return dict(_PLANES)


class DataPlane:
    """Base class of a service's real-execution engine.

    ``install`` is called once when the stack starts, ``stop`` once when it
    stops (end processes, threads, temp files). Keep state on ``self``.
    """
    service = "?"

    def install(self, ctx: "Context") -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def stop(self) -> None:
        pass


@dataclass
class Context:
    """What a data plane gets from the running stack.

    ``endpoint``/``region``/``account_id`` describe the local AWS endpoint;
    ``client(name)`` makes a boto3 client for it (services talk to each other
    through AWS APIs, as on AWS); ``work_dir`` is a private scratch folder,
    deleted at stop; ``processes`` starts and tracks child processes;
    ``s3_meter`` counts the bytes S3 sends to each access key (core/metering.py).
    """
    endpoint: str
    region: str
    account_id: str
    work_dir: str
    client: Callable[..., Any]
    processes: Any
    s3_meter: S3Meter = field(default_factory=S3Meter)
    _patches: list = field(default_factory=list)
    _routes: dict = field(default_factory=dict)

    def override(self, owner: type, name: str, replacement: Callable) -> Callable:
        """Replace ``owner.name`` (a moto class attribute) with ``replacement``.

        Returns the original, which the replacement may call to fall back on
        moto's behaviour. Restored by :meth:`restore`.
        """
        original = owner.__dict__[name]
        self._patches.append((owner, name, original))
        setattr(owner, name, replacement)
        return original

    def route(self, service: str, operation: str, handler: Callable) -> None:
        """Send requests for ``service:operation`` to ``handler(request)`` first.

        ``request`` is a :class:`~localaws.core.wire.WireRequest`. The handler
        returns ``(status, headers, body)`` (or a dict, sent as JSON with
        status 200), or ``None`` to let moto answer.
        """
        self._routes[(service, operation)] = handler

    def routed(self, service: str | None, operation: str | None):
        return self._routes.get((service, operation))

    def restore(self) -> None:
        """Undo every override, newest first."""
        while self._patches:
            owner, name, original = self._patches.pop()
            setattr(owner, name, original)
        self._routes.clear()


__all__ = ["AWSError", "Context", "DataPlane", "data_plane", "registered"]
