"""Amazon OpenSearch Service on your laptop: a real search server behind the domain API.

``api.py`` (``OpenSearchPlane``, see ``docs/adding_a_service.md``) maps the control plane
(CreateDomain, DescribeDomain... recorded by moto) to running servers;
``engine.py`` starts the server (the ``osmem-server`` binary from PyPI by
default, or the cluster named by ``OPENSEARCH_URL``) and makes clients.
Nothing starts until a domain is created or ``stack.local.opensearch`` is used.
"""
from .api import OpenSearchPlane, domain_cost

__all__ = ["OpenSearchPlane", "domain_cost"]
