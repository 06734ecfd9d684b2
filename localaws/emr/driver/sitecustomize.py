"""localaws' HDFS stand-in, loaded by every EMR step driver's Python (and nothing else).

On EMR, ``hdfs:///path`` is the cluster's own HDFS: a NameNode on the master
node, DataNodes on the core nodes' disks. This project runs no Hadoop
daemons, so a step's driver gets this shim instead: localaws puts its folder
first on the driver's ``PYTHONPATH`` and sets ``LOCALAWS_HDFS_NAMENODE``,
and Python imports ``sitecustomize`` at start-up.

- **write** (``df.write.parquet("hdfs:///staging/x/")``, ``.save``, ...,
  ``rdd.saveAsTextFile``): Spark writes to scratch disk, then the files are
  spread over the running CORE nodes' DataNode folders with EMR's default
  replication, and a NameNode file remembers which node holds each one;
- **read** (``spark.read.parquet("hdfs:///staging/x/")``, ``.csv``, ...,
  ``sc.textFile``): the files are gathered back from the nodes holding them;
  a file whose only holder was lost fails the read with
  ``BlockMissingException``, as HDFS does.

``s3://`` paths are not touched: Spark reads and writes them itself, through
Hadoop's S3A connector pointed at the local endpoint (``core/spark.py``).
The learner's script is unchanged: the same file runs on EMR.
"""
import os

if os.environ.get("LOCALAWS_HDFS_NAMENODE"):
    try:
        import localaws_hdfs
        localaws_hdfs.install()
    except Exception as exc:  # never break the driver's start-up
        import sys
        print(f"localaws-hdfs: not installed: {exc!r}", file=sys.stderr)
