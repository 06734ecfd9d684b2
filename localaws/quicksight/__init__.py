"""Amazon QuickSight (Amazon Quick Sight) on the local stack.

moto keeps QuickSight's users, groups, memberships and data sources; this package adds what
QuickSight *does*: data sets over Athena, Redshift and S3 sources with data-prep steps and
calculated fields (``engine.py``, ``expressions.py``, ``sources.py``), SPICE as an in-memory
DuckDB database filled by ingestions, column- and row-level security (``security.py``), and
analyses and dashboards served as real web pages (``dashboards.py``, ``definition.py``,
``web.py``). The plane is :class:`QuickSightPlane` (``api.py``).
"""
from .api import QuickSightPlane

__all__ = ["QuickSightPlane"]
