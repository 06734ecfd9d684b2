"""Amazon OpenSearch Service on your laptop: a real search server behind the domain API.

Importing this package registers the OpenSearch data plane with the stack
(see ``localaws/core/registry.py``). ``api.py`` maps the control plane
(CreateDomain, DescribeDomain... recorded by moto) to running servers;
``engine.py`` starts the server (the ``osmem-server`` binary from PyPI by
default, or the cluster named by ``OPENSEARCH_URL``) and makes clients.
Nothing starts until a domain is created or ``stack.opensearch`` is used.
"""
from .api import OpenSearchPlane

__all__ = ["OpenSearchPlane"]
