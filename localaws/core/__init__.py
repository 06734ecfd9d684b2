"""Shared plumbing of the local stack: endpoint, registry, errors, processes.

``core`` imports no service package; service packages import ``core``.
"""
from .errors import AWSError, not_emulated
from .registry import Context, DataPlane, data_plane

__all__ = ["AWSError", "Context", "DataPlane", "data_plane", "not_emulated"]
