"""Amazon Managed Service for Apache Flink on your laptop: Flink SQL applications on a real Flink.

``api.py`` holds ``FlinkPlane`` (see ``docs/adding_a_service.md``). moto
keeps each application's record (name, ARN, configuration, tags); the plane
runs it: StartApplication submits the application's Flink SQL to a real
Flink 1.19 session cluster (``localaws/core/flink.py``, one per stack,
started on first use), the status comes from the real job, snapshots are
Flink savepoints. ``engine.py`` holds the applications' run state and the
cluster.
"""
from .api import FlinkPlane

__all__ = ["FlinkPlane"]
