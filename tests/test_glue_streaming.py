"""GLUE-10: a Glue streaming job (``gluestreaming``) reads an MSK topic and writes Parquet to S3.

The script is a Glue streaming script as Glue Studio writes them:
``create_data_frame.from_options(connection_type="kafka", ...)`` and
``forEachBatch`` with a ``checkpointLocation``. The run goes on until
BatchStopJobRun; a new run resumes from the checkpoint, so every record is
written once: none lost, none twice. A topic the cluster lacks fails the run
with a clear ErrorMessage.
"""
from __future__ import annotations

import io
import json

import psutil
import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from localaws.core.waiting import wait_until
from localaws.kafka.client import partitions

CODE, LAKE = "t-glue-stream-code", "t-glue-stream-lake"
ACTIVE = ("STARTING", "RUNNING", "STOPPING", "WAITING")

STREAMING = '''
import sys
from awsglue.context import GlueContext
from awsglue.dynamicframe import DynamicFrame
from awsglue.job import Job
from awsglue.utils import getResolvedOptions
from pyspark.context import SparkContext

args = getResolvedOptions(sys.argv, ["JOB_NAME", "bootstrap", "topic", "target", "checkpoint"])
glueContext = GlueContext(SparkContext())
job = Job(glueContext)
job.init(args["JOB_NAME"], args)
clicks = glueContext.create_data_frame.from_options(connection_type="kafka", connection_options={
    "bootstrap.servers": args["bootstrap"], "topicName": args["topic"], "startingOffsets": "earliest",
    "classification": "json", "inferSchema": "true"})


def process_batch(data_frame, batch_id):
    count = data_frame.count()
    print(f"batch {batch_id}: {count} records", flush=True)
    if count > 0:
        glueContext.write_dynamic_frame.from_options(
            frame=DynamicFrame.fromDF(data_frame, glueContext, "clicks"), connection_type="s3",
            connection_options={"path": args["target"], "partitionKeys": ["page"]}, format="parquet")


glueContext.forEachBatch(frame=clicks, batch_function=process_batch,
                         options={"windowSize": "2 seconds", "checkpointLocation": args["checkpoint"]})
job.commit()
'''


def clicks(first: int, last: int) -> list[dict]:
    return [{"click": n, "page": f"p{n % 3}", "ms": n * 7} for n in range(first, last)]


def produce(bootstrap: str, records: list[dict]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    for record in records:
        producer.produce("clicks", key=str(record["click"]), value=json.dumps(record).encode())
    assert producer.flush(30) == 0


@pytest.fixture(scope="module")
def bootstrap(msk, two_broker_cluster):
    arn, boot = two_broker_cluster("glue-streaming")
    admin = AdminClient({"bootstrap.servers": boot})
    admin.create_topics([NewTopic("clicks", 2, 2)])["clicks"].result()
    assert wait_until(lambda: len(partitions(admin, "clicks")) == 2, 30, poll=0.2)
    yield boot
    msk.delete_cluster(ClusterArn=arn)


@pytest.fixture(scope="module")
def glue(stack, bootstrap):
    s3 = stack.client("s3")
    for bucket in (CODE, LAKE):
        s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=CODE, Key="clicks.py", Body=STREAMING.encode())
    glue = stack.client("glue")
    for name, topic in (("clicks-to-lake", "clicks"), ("no-topic", "no-such-topic")):
        glue.create_job(Name=name, Role="arn:aws:iam::123456789012:role/glue", GlueVersion="5.0",
                        Command={"Name": "gluestreaming", "ScriptLocation": f"s3://{CODE}/clicks.py"},
                        DefaultArguments={"--bootstrap": bootstrap, "--topic": topic,
                                          "--target": f"s3://{LAKE}/{name}/clicks/",
                                          "--checkpoint": f"s3://{LAKE}/{name}/checkpoint/"})
    return glue


def lake(stack) -> list[int]:
    """The ``click`` of every record in the lake's Parquet files (each file read once)."""
    import pyarrow.parquet as pq
    s3 = stack.client("s3")
    found = []
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=LAKE, Prefix="clicks-to-lake/clicks/")
    for obj in (o for page in pages for o in page.get("Contents", [])):
        if obj["Key"].endswith(".parquet") and "/_" not in obj["Key"]:
            body = s3.get_object(Bucket=LAKE, Key=obj["Key"])["Body"].read()
            found += pq.read_table(io.BytesIO(body)).column("click").to_pylist()
    return found


def alive(processes) -> list:
    found = []
    for proc in processes:
        try:
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc.pid)
        except psutil.NoSuchProcess:
            pass
    return found


def state(glue, job: str, run_id: str) -> str:
    return glue.get_job_run(JobName=job, RunId=run_id)["JobRun"]["JobRunState"]


def stop(glue, job: str, run_id: str) -> dict:
    assert glue.batch_stop_job_run(JobName=job, JobRunIds=[run_id])["Errors"] == []
    assert wait_until(lambda: state(glue, job, run_id) not in ACTIVE, 120, poll=0.5)
    return glue.get_job_run(JobName=job, RunId=run_id)["JobRun"]


def test_a_streaming_job_writes_the_topic_to_s3_until_stopped_and_resumes_from_its_checkpoint(stack, glue, bootstrap):
    produce(bootstrap, clicks(0, 60))
    missing = glue.start_job_run(JobName="no-topic")["JobRunId"]          # for the next test, meanwhile
    run_id = glue.start_job_run(JobName="clicks-to-lake")["JobRunId"]
    assert wait_until(lambda: len(lake(stack)) >= 60 or state(glue, "clicks-to-lake", run_id) not in ACTIVE, 300, poll=1)
    assert state(glue, "clicks-to-lake", run_id) == "RUNNING"
    produce(bootstrap, clicks(60, 100))                                   # while it runs
    assert wait_until(lambda: len(lake(stack)) >= 100, 120, poll=1)
    pids = stack.local.glue.job_run_pids(run_id)
    processes = [psutil.Process(p) for p in pids]
    processes += [c for p in list(processes) for c in p.children(recursive=True)]
    run = stop(glue, "clicks-to-lake", run_id)
    assert run["JobRunState"] == "STOPPED" and "ErrorMessage" not in run
    assert alive(processes) == []                                         # the driver JVM and its Python
    keys = [o["Key"] for o in stack.client("s3").list_objects_v2(Bucket=LAKE, Prefix="clicks-to-lake/clicks/")["Contents"]]
    assert {k.split("/")[2] for k in keys if k.endswith(".parquet")} == {"page=p0", "page=p1", "page=p2"}

    produce(bootstrap, clicks(100, 130))                                  # while no run reads the topic
    again = glue.start_job_run(JobName="clicks-to-lake")["JobRunId"]
    assert wait_until(lambda: len(lake(stack)) >= 130 or state(glue, "clicks-to-lake", again) not in ACTIVE, 300, poll=1)
    assert stop(glue, "clicks-to-lake", again)["JobRunState"] == "STOPPED"
    assert sorted(lake(stack)) == list(range(130))                        # every record once: none lost, none twice
    output = stack.client("logs").get_log_events(logGroupName="/aws-glue/jobs/output", logStreamName=again)["events"]
    assert sum(int(e["message"].split(": ")[1].split()[0]) for e in output if e["message"].startswith("batch ")) == 30
    assert missing                                                        # checked by the next test


def test_a_streaming_job_on_a_topic_that_does_not_exist_fails_clearly(glue):
    missing = glue.get_job_runs(JobName="no-topic")["JobRuns"][0]
    assert wait_until(lambda: state(glue, "no-topic", missing["Id"]) not in ACTIVE, 120, poll=0.5)
    run = glue.get_job_run(JobName="no-topic", RunId=missing["Id"])["JobRun"]
    assert run["JobRunState"] == "FAILED"
    assert "UnknownTopicOrPartitionException: Topic 'no-such-topic' does not exist" in run["ErrorMessage"]
    assert "clicks" in run["ErrorMessage"]                                # it names the topics there are
