"""localaws' EMRFS stand-in, loaded by every step driver's Python (and nothing else).

On EMR, Spark reads and writes ``s3://bucket/key`` paths through EMRFS, the
Hadoop file system AWS ships on every cluster. This project has no Hadoop S3
connector (no hadoop-aws or AWS SDK jars exist offline), so the step's
driver gets this shim instead: localaws puts its folder first on the
driver's ``PYTHONPATH`` and sets ``LOCALAWS_EMRFS_STAGING``, and Python
imports ``sitecustomize`` at start-up. It works like S3DistCp in front of a
job:

- **read** (``spark.read.parquet("s3://b/flights/")``, ``.csv``, ``.json``,
  ``.orc``, ``.text``, ``.load``, ``sc.textFile``): the objects under the
  prefix are copied from S3 to the cluster's node-local staging disk, then
  Spark reads that copy (partition folders such as ``year=2013/`` included);
- **write** (``df.write.parquet("s3://b/out/")``, ``.save``, ...,
  ``rdd.saveAsTextFile``): Spark writes to node-local disk, then the files
  are uploaded to S3 under the same relative keys. The save mode is applied
  to the S3 prefix as Spark applies it to a folder: ``errorifexists``
  (default) refuses an existing prefix, ``ignore`` skips,
  ``overwrite`` deletes the old objects first, ``append`` adds.

Every copy is logged to the step's stderr (``localaws-emrfs: ...``) and to a
JSON-lines report with object and byte counts. The learner's script is
unchanged: the same file runs on EMR, where EMRFS streams instead of staging.

``hdfs:///path`` works too, the way EMR's HDFS does: the files of a write are
spread over the CORE nodes' DataNode folders (EMR's default replication for
fewer than 4 core nodes is 1) and a NameNode file remembers where each one
is; a read gathers them back and fails with ``BlockMissingException`` when
the node holding a file was lost.
"""
import os

if os.environ.get("LOCALAWS_EMRFS_STAGING"):
    try:
        import localaws_emrfs
        localaws_emrfs.install()
    except Exception as exc:  # never break the driver's start-up
        import sys
        print(f"localaws-emrfs: not installed: {exc!r}", file=sys.stderr)
