"""AWS Glue: crawlers that read S3 for real, ETL jobs that run on Spark, triggers.

moto keeps the Data Catalog (databases, tables, partitions) well, and this
package leaves it to moto; Athena, Redshift Spectrum and Firehose read it
through the Glue API. What moto cannot do is *run* anything: its crawlers
crawl nothing and its job runs succeed without running. ``api.py`` (the
plane) takes those over: ``crawler.py`` reads the crawler's S3 targets and
writes tables and partitions, ``jobs.py`` runs a job's PySpark script on
Spark, with the ``awsglue`` library it imports (``runtime/awsglue/``).
"""
from .api import GluePlane

__all__ = ["GluePlane"]
