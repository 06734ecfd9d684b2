"""OpenSearch Service's data plane: every domain gets a real search server.

moto records the *control plane* of Amazon OpenSearch Service (CreateDomain,
DescribeDomain, ListDomainNames, DeleteDomain, and the older Elasticsearch
Service names of the same operations) and invents an endpoint such as
``search.us-east-1.es.amazonaws.com`` that nothing answers. This data plane
plugs in behind ``create_domain`` and ``delete_domain`` (see
``localaws/core/plane.py``):

- **CreateDomain** starts a server for the domain (``engine.py``) and writes
  its address into the domain's ``Endpoint`` (``127.0.0.1:<port>``, host and
  port without a scheme, the way AWS reports ``search-....es.amazonaws.com``);
  a VPC domain gets it in ``Endpoints["vpc"]`` as on AWS.
- **DeleteDomain** stops that server: the domain's indices are gone, as on AWS.
- ``stack.local.opensearch.client()`` (no domain) reaches a default server,
  started on first use, for chapters that only need "an OpenSearch".

With ``OPENSEARCH_URL`` set, every domain (and the default) is that one
cluster: domains then share indices, and deleting a domain deletes nothing.

The cluster settings of a domain (instance type and count, dedicated master
nodes, zone awareness, EBS volumes) are recorded, not provisioned: they
change the price (:func:`domain_cost`), not the server.
"""
from __future__ import annotations

import os
import threading

from localaws.core import Plane, local_hook, moto_hook
from localaws.pricing import price
from . import engine, errors

HOURS_PER_MONTH = 730          # AWS's convention for monthly estimates
MAX_DOMAINS = 8                # a guard for this machine (one server process each), not an AWS quota
BACKEND = "moto.opensearch.models:OpenSearchServiceBackend"
ON_AWS_CLIENT = ("On AWS, build an opensearch-py client for the domain's Endpoint (DescribeDomain) "
                 "with SigV4 or fine-grained access control credentials.")


class OpenSearchPlane(Plane):
    """Search servers for OpenSearch Service domains, started on demand."""

    name = "opensearch"
    services = ("opensearch",)     # the older "es" client signs as OpenSearch too

    def __init__(self, ctx):
        super().__init__(ctx)
        self._lock = threading.RLock()
        self._engines: dict[str | None, engine.Engine] = {}   # domain name (None: default)
        # every embedded server ever started, with its domain: a deleted domain's
        # server leaves _engines but stays here, so running_pids() still sees it
        # if it failed to stop
        self._started: list[tuple[str | None, engine.EmbeddedServer]] = []
        self._external = None

    def stop(self):
        with self._lock:
            engines, self._engines = list(self._engines.values()), {}
        for eng in engines:
            eng.stop()

    # -- control plane hooks ---------------------------------------------------
    @moto_hook(f"{BACKEND}.create_domain")
    def create_domain(self, original, backend, *args, **kwargs):
        with self._lock:
            running = len([d for d in self._engines if d is not None])
        if running >= MAX_DOMAINS and not os.environ.get("OPENSEARCH_URL"):
            raise errors.LimitExceededException(
                f"This local stand-in runs at most {MAX_DOMAINS} domains at once (one search server "
                "process each); delete one first (DeleteDomain).")
        domain = original(backend, *args, **kwargs)
        eng = self.engine(domain.domain_name)
        if domain.endpoint is not None:
            domain.endpoint = eng.endpoint
        else:                                   # VPC domain: AWS reports Endpoints["vpc"]
            domain.endpoints = {"vpc": eng.endpoint}
        return domain

    @moto_hook(f"{BACKEND}.delete_domain")
    def delete_domain(self, original, backend, domain_name):
        domain = original(backend, domain_name)
        with self._lock:
            eng = self._engines.pop(domain_name, None)
        if eng is not None and eng is not self._external:
            eng.stop()
        return domain

    # -- engines ---------------------------------------------------------------
    def engine(self, domain: str | None = None) -> engine.Engine:
        """The engine serving ``domain`` (None: the default), started if needed."""
        with self._lock:
            if domain in self._engines:
                return self._engines[domain]
            if self._external is None and os.environ.get("OPENSEARCH_URL"):
                self._external = engine.from_environment()
            if self._external is not None:
                eng = self._external
            else:
                log = os.path.join(self.ctx.work_dir, f"opensearch-{domain or 'default'}.log")
                eng = engine.EmbeddedServer(self.ctx.processes, log)
                self._started.append((domain, eng))
            self._engines[domain] = eng
            return eng

    @local_hook("On AWS, the domain's Endpoint (DescribeDomain) is its URL: https://<Endpoint>.")
    def url_for(self, domain: str | None = None) -> str:
        """URL of a domain's server (None: the default one), e.g. for a Lambda function's environment."""
        return self.engine(domain).url

    @local_hook(ON_AWS_CLIENT)
    def client(self, domain: str | None = None, **kwargs):
        """An ``opensearch-py`` client for ``domain`` (None: the default server)."""
        return self.engine(domain).client(**kwargs)

    @local_hook("On AWS, the engine is OpenSearch itself: see the domain's EngineVersion.")
    def kind(self) -> str:
        """``embedded`` (osmem-server) or ``external`` (``OPENSEARCH_URL``)."""
        return "external" if (self._external or os.environ.get("OPENSEARCH_URL")) else "embedded"

    @local_hook("On AWS, domains run on instances you never see: delete the domain to stop paying.")
    def running_pids(self) -> list[int]:
        """PIDs of the embedded servers now running (for tests and clean-up cells).

        Counts every server this stack started, including one whose domain was
        deleted but whose process did not end: the question is "what is still
        running", not "what is still mapped to a domain".
        """
        return sorted(s["pid"] for s in self.servers() if s["running"])

    @local_hook("On AWS, DescribeDomain is all you see: Processing while the domain is deleted, "
                "then ResourceNotFoundException; the instances are never yours to list.")
    def servers(self) -> list[dict]:
        """Every embedded server this stack started: ``[{"domain", "pid", "running"}]``.

        ``domain`` is None for the default server; a server stays in the list
        after its domain is deleted, with ``running`` False once it has exited.
        Empty with ``OPENSEARCH_URL`` (the external cluster is not ours to stop).
        """
        with self._lock:
            started = list(self._started)
        return [{"domain": domain, "pid": eng.pid, "running": eng.proc.poll() is None}
                for domain, eng in started]



# -- cost ------------------------------------------------------------------
def domain_cost(domain_status: dict, hours: float = HOURS_PER_MONTH) -> dict:
    """What ``domain_status`` (DescribeDomain's ``DomainStatus``) costs for ``hours``.

    OpenSearch Service bills each node per instance-hour (data nodes,
    dedicated master nodes, UltraWarm nodes) plus the EBS storage attached
    to every data node per GB-month. Prices come from the dated table in
    ``localaws/pricing.py``; an instance type missing there raises KeyError.
    """
    cluster = domain_status.get("ClusterConfig", {})
    lines = []
    data_type = cluster.get("InstanceType", "r6g.large.search")
    data_count = int(cluster.get("InstanceCount", 1))
    lines.append(("data nodes", data_count, data_type,
                  data_count * hours * price(f"opensearch.instance.{data_type}").usd))
    if cluster.get("DedicatedMasterEnabled"):
        master_type = cluster.get("DedicatedMasterType", data_type)
        master_count = int(cluster.get("DedicatedMasterCount", 3))
        lines.append(("dedicated master nodes", master_count, master_type,
                      master_count * hours * price(f"opensearch.instance.{master_type}").usd))
    ebs = domain_status.get("EBSOptions", {})
    if ebs.get("EBSEnabled"):
        gb = int(ebs.get("VolumeSize", 10)) * data_count
        volume = ebs.get("VolumeType", "gp3")
        lines.append(("EBS storage", gb, f"GB {volume}",
                      gb * hours / HOURS_PER_MONTH * price(f"opensearch.ebs.{volume}").usd))
    total = sum(line[3] for line in lines)
    return {"hours": hours, "lines": lines, "usd": total}
