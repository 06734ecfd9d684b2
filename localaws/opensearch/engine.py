"""The search engine behind a domain: an embedded server or a real cluster.

On AWS, a *domain* is a cluster of EC2 instances running OpenSearch that
AWS provisions, patches and monitors for you; you reach it at an HTTPS
endpoint and talk to it with the OpenSearch REST API (index, _bulk,
_search...). Locally, the REST API is served by one of:

- :class:`EmbeddedServer` (default): ``osmem-server``, an in-memory
  OpenSearch-compatible server shipped as a binary in the ``osmem-server``
  PyPI package. It speaks the OpenSearch 3.x REST API (mappings, analyzers,
  bulk, Query DSL, aggregations, highlighting) over real HTTP on 127.0.0.1.
  Its relevance scores are not Lucene's BM25 numbers, and it has no SQL/PPL
  plugin.
- :class:`ExternalCluster`: the cluster at ``OPENSEARCH_URL`` (for example
  the real OpenSearch of ``docker-compose.yml``), with ``OPENSEARCH_USER`` /
  ``OPENSEARCH_PASSWORD`` for basic auth.
"""
from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from urllib.parse import urlparse

from localaws.core.limits import go_env
from localaws.core.waiting import wait_until


def _osmem_binary() -> str:
    from osmem_server import resolve_binary
    return resolve_binary()


class Engine:
    """What every engine offers: a URL, credentials, a client factory."""

    url: str = ""
    auth: tuple[str, str] | None = None
    kind = "?"
    cold_start_s: float = 0.0

    @property
    def endpoint(self) -> str:
        """The endpoint as the OpenSearch Service API reports it: host[:port], no scheme."""
        return urlparse(self.url).netloc

    def client(self, **kwargs):
        """An ``opensearch-py`` client for this engine."""
        from opensearchpy import OpenSearch
        kwargs.setdefault("timeout", 30)
        if self.auth:
            kwargs.setdefault("http_auth", self.auth)
        if self.url.startswith("https"):
            # The docker compose cluster uses the OpenSearch demo certificates,
            # which no CA signed; on AWS the endpoint has a real certificate.
            kwargs.setdefault("verify_certs", os.environ.get("OPENSEARCH_VERIFY_CERTS", "0") == "1")
            kwargs.setdefault("ssl_show_warn", False)
        return OpenSearch(hosts=[self.url], **kwargs)

    def stop(self) -> None:
        pass


class EmbeddedServer(Engine):
    """``osmem-server`` in a child process on 127.0.0.1 and a free port.

    Started through the stack's :class:`~localaws.core.processes.ProcessTracker`,
    so stopping the stack ends it by PID. It also exits by itself when its
    stdin closes or when this Python process disappears (``--parent-pid``),
    so a crashed notebook leaves no server behind.
    """

    kind = "embedded"

    def __init__(self, processes, log_path: str, startup_timeout: float = 30.0):
        self._processes = processes
        started = time.monotonic()
        self._log = open(log_path, "ab")
        self.proc = processes.popen(
            [_osmem_binary(), "--addr", "127.0.0.1:0", "--no-ja", "--parent-pid", str(os.getpid())],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log,
            env={**os.environ, **go_env("osmem-server")})     # a bounded heap (core/limits.py)
        ready: dict = {}

        def read_ready_line():
            for line in self.proc.stdout:          # one JSON line: {"url": ..., "version": ...}
                try:
                    msg = json.loads(line)
                except ValueError:
                    continue
                if isinstance(msg, dict) and "url" in msg:
                    ready.update(msg)
                    break
            for _ in self.proc.stdout:             # keep draining, so the pipe never fills
                pass

        threading.Thread(target=read_ready_line, name="osmem-stdout", daemon=True).start()
        wait_until(lambda: bool(ready) or self.proc.poll() is not None, startup_timeout, poll=0.005)
        self.url = ready.get("url", "")
        self.version = ready.get("version", "")
        if not ready or not wait_until(self._healthy, startup_timeout, poll=0.01):
            processes.kill(self.proc)
            raise RuntimeError("osmem-server did not start; see " + log_path)
        self.pid = self.proc.pid
        self.cold_start_s = time.monotonic() - started

    def _healthy(self) -> bool:
        import urllib.request
        try:
            with urllib.request.urlopen(self.url + "/_cluster/health", timeout=2) as resp:
                return resp.status == 200
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()          # osmem exits when stdin closes
                self.proc.wait(timeout=3)
            except (OSError, subprocess.TimeoutExpired):
                pass
        if self.proc.poll() is None:
            self._processes.kill(self.proc)
        self._processes.forget(self.proc)
        self._log.close()


class ExternalCluster(Engine):
    """A cluster someone else runs: ``OPENSEARCH_URL`` (+ user/password)."""

    kind = "external"

    def __init__(self, url: str, user: str | None = None, password: str | None = None):
        self.url = url.rstrip("/")
        self.auth = (user, password) if user else None
        started = time.monotonic()
        info = self.client().info()
        self.version = info.get("version", {}).get("number", "")
        self.cold_start_s = time.monotonic() - started


def from_environment() -> ExternalCluster | None:
    """The cluster named by ``OPENSEARCH_URL``, or None for the embedded server."""
    url = os.environ.get("OPENSEARCH_URL")
    if not url:
        return None
    return ExternalCluster(url, os.environ.get("OPENSEARCH_USER"), os.environ.get("OPENSEARCH_PASSWORD"))
