"""Amazon Data Firehose on your laptop: records are processed, buffered, then delivered.

``api.py`` holds ``FirehosePlane`` (see ``docs/adding_a_service.md``). moto keeps the
delivery streams but writes one S3 object per API call and ignores buffering;
here ``api.py`` takes over CreateDeliveryStream's checks, PutRecord/PutRecordBatch
(and CloudWatch Logs subscriptions), and:

- ``source.py`` reads a Kinesis data stream (``KinesisStreamAsSource``);
- ``transform.py`` runs the processors, Lambda transformation included;
- ``buffer.py`` holds the buffers (Lambda, destination per dynamic partition,
  error output) and the flusher thread that cuts them when the hints say so;
- ``engine.py`` partitions, delivers to Amazon S3 or an OpenSearch Service
  index, and writes failures to the S3 error output;
- ``redshift.py`` delivers to Amazon Redshift: an S3 object and its manifest,
  then a COPY on the cluster's endpoint, retried for ``RetryOptions``;
- ``iceberg.py`` delivers into Apache Iceberg tables of the Glue Data Catalog
  (one pyiceberg commit per table and flush; updates and deletes by UniqueKeys);
- ``convert.py`` turns JSON into Parquet or ORC with a Glue table's schema;
- ``prefixes.py`` evaluates ``!{...}`` expressions in S3 prefixes.
"""
from .api import FirehosePlane

__all__ = ["FirehosePlane"]
