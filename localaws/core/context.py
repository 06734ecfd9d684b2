"""What a plane gets from the running stack: one :class:`Context`.

- ``endpoint``, ``region``, ``account_id``: the local AWS endpoint;
- ``client(service, principal=None)``: a boto3 client of that endpoint,
  signed as the administrator or as an IAM user or role (services talk to
  each other through AWS APIs, as on AWS); ``env(principal=None)``: the same
  as environment variables, for child processes (Lambda handlers, Spark
  drivers);
- ``s3``: reads, writes, listings and the byte meter (``core/s3.py``);
- ``principals``: who signed a request (``core/principals.py``);
- ``lake``: Lake Formation's state and decisions, asked by every engine (``core/lake.py``);
- ``clock``: the time stand-ins reason with (``core/clock.py``);
- ``processes``: starts child processes and ends them by PID (``core/processes.py``);
- ``work_dir``: a private scratch folder, deleted when the stack stops.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from .clock import Clock
from .lake import LakePolicy
from .plane import Registry
from .principals import ADMIN_KEY, ADMIN_SECRET, Principals
from .processes import ProcessTracker
from .s3 import S3


def _session():
    """One boto3 session: clients made from it share loaded service models (fast)."""
    import boto3
    return boto3.session.Session()


@dataclass
class Context:
    endpoint: str
    region: str
    account_id: str
    work_dir: str
    processes: ProcessTracker = field(default_factory=ProcessTracker)
    clock: Clock = field(default_factory=Clock)
    registry: Registry = field(default_factory=Registry)
    s3: S3 = field(init=False)
    principals: Principals = field(init=False)
    lake: LakePolicy = field(init=False)
    _clients: dict = field(default_factory=dict, init=False, repr=False)
    _lock: Any = field(default_factory=threading.Lock, init=False, repr=False)
    _boto: Any = field(default=None, init=False, repr=False)

    def __post_init__(self):
        self.principals = Principals(self.account_id, self.client)
        self.s3 = S3(self.endpoint, self.region, lambda key: self.client("s3", access_key=key))
        self.lake = LakePolicy(self)

    # -- clients -------------------------------------------------------------
    def client(self, service: str, principal: str | None = None, *, access_key: str | None = None,
               **kwargs):
        """A boto3 client for ``service`` on the local endpoint.

        ``principal``: None (the administrator), an IAM user (name or ARN)
        or a role ARN; requests are then attributed to it. ``access_key``:
        sign with this key instead (any string; used to meter a reader's S3
        bytes). Clients of a principal, without extra ``kwargs``, are made once and reused.
        """
        from botocore.config import Config
        if access_key is not None:
            creds = (access_key, "localaws", None)
        else:
            c = self.principals.credentials(principal)
            creds = (c.access_key, c.secret_key, c.session_token)
        cacheable = not kwargs and access_key is None     # metering keys are per query: not kept
        key = (service, creds)
        if cacheable:
            with self._lock:
                if key in self._clients:
                    return self._clients[key]
        # A local call may start an engine first (the Flink cluster on the first StartApplication):
        # on a loaded laptop that can outlast botocore's 60 s read timeout, and a retried
        # StartApplication then finds its own application STARTING (ResourceInUseException).
        kwargs.setdefault("config", Config(retries={"max_attempts": 2, "mode": "standard"}, read_timeout=300))
        kwargs.setdefault("region_name", self.region)       # another Region: region_name="eu-west-1"
        with self._lock:       # a boto3 session is not safe to make clients from two threads at once
            if self._boto is None:
                self._boto = _session()
            client = self._boto.client(service, endpoint_url=self.endpoint,
                                       aws_access_key_id=creds[0], aws_secret_access_key=creds[1],
                                       aws_session_token=creds[2], **kwargs)
            if cacheable:
                client = self._clients.setdefault(key, client)
        return client

    def env(self, principal: str | None = None) -> dict[str, str]:
        """Environment variables that point any AWS SDK or the AWS CLI at the endpoint.

        ``AWS_ENDPOINT_URL`` is honoured by boto3/botocore (and so by the AWS
        CLI, awswrangler and PyAthena); the credentials are the principal's.
        """
        c = self.principals.credentials(principal)
        env = {"AWS_ENDPOINT_URL": self.endpoint, "AWS_ACCESS_KEY_ID": c.access_key,
               "AWS_SECRET_ACCESS_KEY": c.secret_key, "AWS_DEFAULT_REGION": self.region,
               "AWS_REGION": self.region}
        if c.session_token:
            env["AWS_SESSION_TOKEN"] = c.session_token
        return env


__all__ = ["ADMIN_KEY", "ADMIN_SECRET", "Context"]
