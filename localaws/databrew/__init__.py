"""AWS Glue DataBrew on your laptop: recipe jobs that clean data, profile jobs that describe it.

``api.py`` (``DataBrewPlane``, see ``docs/adding_a_service.md``) adds the job
runs moto lacks (StartJobRun, DescribeJobRun, ListJobRuns, StopJobRun) and
checks recipes and jobs when they are saved; ``engine.py`` runs each job run in a
background thread, with AWS's run states; ``jobs.py`` is the work of a recipe job
and of a profile job; ``transforms.py`` holds one small function per recipe
operation (by DataBrew's names: ``DELETE_DUPLICATE_ROWS``,
``FILL_WITH_MEDIAN``, ``SPLIT_COLUMN_SINGLE_DELIMITER``...) and ``recipes.py``
checks a recipe when it is saved and runs it step by step; ``files.py``
reads datasets from S3 and writes outputs with DataBrew's key layout;
``profile.py`` computes a profile job's statistics. The data is in memory
(pandas): datasets of a course, not of a data lake.

:func:`wait_for_run` is plain boto3 and works on AWS too.
"""
from .api import DataBrewPlane, wait_for_run

__all__ = ["DataBrewPlane", "wait_for_run"]
