"""Amazon Kinesis Data Streams on your laptop: shards with AWS's limits and throughput.

``api.py`` holds ``KinesisPlane`` (see ``docs/adding_a_service.md``). moto
keeps the streams, shards and records; the plane enforces the record, batch
and per-shard throughput limits (token buckets on the stack's clock), hands
out iterators that expire and end, keeps per-key order across SplitShard and
MergeShards, and publishes the stream's CloudWatch metrics. ``engine.py``
holds the limits (with their AWS sources), the buckets and the iterators.
"""
from .api import KinesisPlane

__all__ = ["KinesisPlane"]
