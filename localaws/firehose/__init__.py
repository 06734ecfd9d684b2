"""Amazon Data Firehose on your laptop: records are buffered, then delivered.

``api.py`` holds ``FirehosePlane`` (see ``docs/adding_a_service.md``). moto keeps the delivery streams but
writes one S3 object per API call and ignores buffering; here ``api.py``
takes over PutRecord/PutRecordBatch (and CloudWatch Logs subscriptions),
``buffer.py`` holds each stream's buffer and the flusher thread that cuts it
when ``BufferingHints`` say so, and ``engine.py`` processes and delivers a
cut batch to Amazon S3 or an OpenSearch Service index.
"""
from .api import FirehosePlane

__all__ = ["FirehosePlane"]
