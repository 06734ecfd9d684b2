"""A local ``awsglue``: the library a Glue ETL script imports, as a thin layer over Spark DataFrames.

On AWS Glue, ``import awsglue`` finds the Python half of *aws-glue-libs*,
which calls Glue's own Scala classes (``com.amazonaws.services.glue.*``)
inside the job's JVM. That Python half is on PyPI as
``AWSGlueDataplanePython`` (5.1.0, checked 2026-11-30), but the Scala classes
it calls are not published (not on Maven Central) and its licence (the Amazon
Software License) limits its use to AWS services, so the local stack cannot
run it. This package is an
independent, much smaller stand-in, written for the course: the same
names and call shapes a course job uses, implemented on plain Spark
DataFrames. The local Glue job runner (``localaws/glue/jobs.py``) puts the
folder holding this package on the driver's ``PYTHONPATH``.

What is here:

- ``awsglue.utils.getResolvedOptions``: the job's arguments (works in Python
  shell jobs too: it needs no Spark);
- ``awsglue.context.GlueContext``: ``create_dynamic_frame`` (``from_catalog``,
  ``from_options`` on S3), ``write_dynamic_frame`` (``from_options``,
  ``from_catalog``), ``create_data_frame.from_options`` for Kafka and
  ``forEachBatch`` for streaming jobs;
- ``awsglue.dynamicframe.DynamicFrame`` and ``DynamicFrameCollection``;
- ``awsglue.transforms``: ``ApplyMapping``, ``ResolveChoice``,
  ``DropNullFields``, ``Relationalize``, ``Filter``, ``SelectFields``,
  ``DropFields``, ``RenameField``, ``SelectFromCollection``;
- ``awsglue.job.Job``: ``init`` and ``commit`` (job bookmarks).

The big difference from real DynamicFrames: **there are no choice types**.
Glue's readers keep a column that holds both ``12`` and ``"n/a"`` as a
*choice* (``int`` or ``string``) until ``resolveChoice`` decides; here every
column has one Spark type, chosen when the data is read (Spark's schema
inference picks ``string`` for such a column), and ``resolveChoice``'s
``cast:`` turns it into the type asked for (values that do not convert
become null, as Glue's cast does). Each module says what else differs.
"""
