"""How a service plugs into the stack: a ``Plane`` that declares what it takes over.

moto is a *control plane*: it parses every boto3 request, keeps the
resources (buckets, functions, work groups, clusters) and answers in AWS's
wire format, but it executes nothing. Where AWS would *do* something (run a
Lambda handler, execute SQL, run a Spark step), a service package of
localaws supplies the **data plane**: a class ``<Service>Plane`` in
``localaws/<service>/api.py`` whose methods are marked with what they take
over. There are three marks:

``@operation("StartQueryExecution")``
    The method answers that AWS operation *before* moto sees it. It gets
    the :class:`~localaws.core.wire.WireRequest` (``req.params`` holds the
    decoded request, ``req.principal`` who signed it) and returns the
    response: a dict (sent as JSON), a ``(status, headers, body)`` tuple,
    or ``None`` to let moto answer after all (e.g. after checking the
    request). Use it when moto lacks the operation or answers it wrongly.

``@moto_hook("moto.awslambda.models:LambdaFunction.invoke")``
    The method replaces that attribute of a moto class or module. It is
    called with moto's original first, then moto's own arguments
    (``self`` of the moto object included), so it can do the real work and
    still let moto keep its records and write the response. Use it when moto
    already has the operation. ``@moto_property`` does the same for a
    property (e.g. a status computed from real processes).

``@local_hook("On AWS: ...")``
    A *teaching hook*: something only the local stack can do (kill a Spot
    worker, count the S3 objects a query opened, advance the clock). It is
    reachable as ``stack.local.<plane name>.<method>`` and nowhere else; on
    the AWS target it raises :class:`LocalOnlyError` with the text given,
    which says what to do on AWS instead.

**One lazy-moto policy.** A plane's ``api.py`` never imports moto: hooks
name their target as a string, and the registry imports and patches it when
the first request for one of the plane's services arrives (importing
``moto.emr`` pulls in ``moto.ec2``, ~2 s, which a stack that never runs a
cluster should not pay). Everything is undone when the stack stops. Errors
are raised as :class:`~localaws.core.errors.AWSError` subclasses (the
service's ``errors.py``) and reach boto3 in the service's own error format.
"""
from __future__ import annotations

import importlib
import inspect
import threading
from typing import Any, Callable


# ------------------------------------------------------------------ marks
def operation(name: str, service: str | None = None):
    """Mark a method as the handler of AWS operation ``name`` (of ``service``,
    by default the plane's first service)."""
    def mark(fn):
        fn._localaws_operation = (service, name)
        return fn
    return mark


def moto_hook(target: str):
    """Mark a method as the replacement of ``"module:Class.attr"`` (or ``"module:function"``) in moto."""
    def mark(fn):
        fn._localaws_hook = (target, "method")
        return fn
    return mark


def moto_property(target: str):
    """Like :func:`moto_hook`, for a property: the method gets ``(original_getter, obj)``."""
    def mark(fn):
        fn._localaws_hook = (target, "property")
        return fn
    return mark


def local_hook(on_aws: str):
    """Mark a method as a local-only teaching hook; ``on_aws`` says what to do on AWS instead."""
    def mark(fn):
        fn._localaws_local = on_aws
        return fn
    return mark


class LocalOnlyError(RuntimeError):
    """A teaching hook of the local stack was used where there is none (real AWS)."""


# ------------------------------------------------------------------ the base class
class Plane:
    """Base class of a service's data plane.

    Subclasses set ``name`` (the package name, and the attribute under
    ``stack.local``) and ``services`` (the boto3 client names it serves,
    first one the default of ``@operation``). ``__init__`` must stay cheap:
    start engines on first use. ``stop`` ends processes and threads.
    """

    name = "?"
    services: tuple[str, ...] = ()

    def __init__(self, ctx: Any):
        self.ctx = ctx

    def stop(self) -> None:
        pass

    # -- what the marks declared ---------------------------------------------
    @classmethod
    def _marked(cls, attr: str):
        for name, member in inspect.getmembers(cls, predicate=callable):
            value = getattr(member, attr, None)
            if value is not None:
                yield name, value

    @classmethod
    def operations(cls) -> dict[tuple[str, str], str]:
        """``{(service, operation): method name}``."""
        return {(service or cls.services[0], op): name
                for name, (service, op) in cls._marked("_localaws_operation")}

    @classmethod
    def hooks(cls) -> list[tuple[str, str, str]]:
        """``[(moto target, kind, method name)]``."""
        return [(target, kind, name) for name, (target, kind) in cls._marked("_localaws_hook")]

    @classmethod
    def local_hooks(cls) -> dict[str, str]:
        """``{method name: what to do on AWS}``."""
        return dict(cls._marked("_localaws_local"))


# ------------------------------------------------------------------ the registry
def _resolve(target: str) -> tuple[Any, str]:
    """``"moto.x.models:Backend.method"`` -> (the class or module that owns it, "method")."""
    module_name, _, path = target.partition(":")
    owner: Any = importlib.import_module(module_name)
    *parents, name = path.split(".")
    for part in parents:
        owner = getattr(owner, part)
    return owner, name


class Registry:
    """The planes of one stack: their routes, and their moto patches (installed lazily)."""

    def __init__(self):
        self._lock = threading.RLock()
        self._routes: dict[tuple[str, str], Callable] = {}
        self._by_service: dict[str, Plane] = {}
        self._activated: set[str] = set()          # plane names whose hooks are installed
        self._patches: list[tuple[Any, str, Any]] = []
        self.planes: dict[str, Plane] = {}

    def add(self, plane: Plane) -> None:
        self.planes[plane.name] = plane
        for service in plane.services:
            self._by_service[service] = plane
        for (service, op), method in plane.operations().items():
            self._routes[(service, op)] = getattr(plane, method)

    # -- routes ----------------------------------------------------------------
    def handler(self, service: str | None, operation: str | None) -> Callable | None:
        return self._routes.get((service, operation))

    def route(self, service: str, operation: str, handler: Callable | None) -> Callable | None:
        """Set (or with None, remove) the handler of ``service:operation``; returns the previous one.

        For tests and experiments; planes declare theirs with ``@operation``.
        """
        with self._lock:
            previous = self._routes.pop((service, operation), None)
            if handler is not None:
                self._routes[(service, operation)] = handler
        return previous

    # -- moto hooks, installed on first use -----------------------------------
    def activate(self, service: str | None) -> None:
        """Install the moto hooks of the plane serving ``service`` (once)."""
        plane = self._by_service.get(service or "")
        if plane is not None and plane.name not in self._activated:
            self.activate_plane(plane)

    def activate_plane(self, plane: Plane) -> None:
        with self._lock:
            if plane.name in self._activated:
                return
            for target, kind, method in plane.hooks():
                self._patch(target, kind, getattr(plane, method))
            self._activated.add(plane.name)

    def _patch(self, target: str, kind: str, method: Callable) -> None:
        owner, name = _resolve(target)
        # On a class, the attribute as defined, even when a base class defines it (moto's
        # FakeCrawl inherits its ``status`` property from ManagedState).
        original = inspect.getattr_static(owner, name) if isinstance(owner, type) else getattr(owner, name)
        inherited = isinstance(owner, type) and name not in owner.__dict__
        if kind == "property":
            replacement: Any = property(lambda obj: method(original.fget, obj))
        else:
            def replacement(*args, **kwargs):
                return method(original, *args, **kwargs)
        self._patches.append((owner, name, None if inherited else original))
        setattr(owner, name, replacement)

    def restore(self) -> None:
        """Undo every moto patch, newest first, and forget the routes."""
        with self._lock:
            while self._patches:
                owner, name, original = self._patches.pop()
                if original is None:          # it was inherited: the base class's applies again
                    delattr(owner, name)
                else:
                    setattr(owner, name, original)
            self._activated.clear()
            self._routes.clear()
