"""The capstone: a big-data ingestion pipeline, end to end, wired with boto3.

::

    devices --MQTT publish--> IoT Core rule (WHERE kind = 'telemetry'; errorAction -> S3)
      --> Kinesis Data Streams (partition key: the device)
            |--> Managed Service for Apache Flink: 1-minute windows per device --> device-metrics stream
            '--> Firehose (transform Lambda, JSON -> Parquet, dt= partitions, error prefix)
                   --> S3 ingestion bucket --> S3 event --> SNS --> SQS reports (+DLQ), audit
                         --> reporter Lambda --> Athena summary --> S3 reporting bucket
                   --> Redshift (COPY Parquet into staging, MERGE on record_id)
                   --> QuickSight data sets (Athena, Redshift) and a dashboard

This package is *client code*, as a learner writes it: every stage is
created with boto3 through ``stack.client(...)``, so the same code runs on
AWS, except the steps marked ``# local-only`` (freezing the clock, the
fault switches and wait hooks under ``stack.local``, the Flink connector's
endpoint).

- ``devices.py``: the simulated fleet (seeded telemetry, Publish);
- ``functions/``: the Lambda sources (Firehose transform, reporter);
- ``pipeline.py``: :func:`build` (one function per stage), :class:`Faults`,
  :class:`Pipeline`, :func:`destroy`;
- ``run.py``: :func:`run` (simulated minutes), :func:`replay_errors`,
  :func:`finish`, :func:`load_redshift`, :func:`reconcile`;
- ``cost.py``: what the run's volume would cost per day on AWS.
"""
from .cost import daily_cost
from .pipeline import Faults, Pipeline, build, destroy
from .run import RunResult, finish, load_redshift, pipe7_holds, reconcile, replay_errors, run

__all__ = ["Faults", "Pipeline", "RunResult", "build", "daily_cost", "destroy", "finish", "load_redshift",
           "pipe7_holds", "reconcile", "replay_errors", "run"]
