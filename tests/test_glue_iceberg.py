"""Glue jobs on Apache Iceberg tables: a Python shell job commits, Athena reads the commit.

The course's Spark (pyspark 4.3) has no Iceberg runtime on Maven Central yet
(Iceberg's Spark catalogs are refused by Spark 4.2+ until Iceberg ships a
4.2/4.3 module), so a Glue *Spark* job with ``--datalake-formats iceberg``
cannot run here. A Glue **Python shell** job with pyiceberg can, and it is
how a small Glue job writes Iceberg on AWS too: the job's script names no
endpoint of its own; boto3 takes the stack's from ``AWS_ENDPOINT_URL``, as
every job process of the stack does (the script passes the endpoint to
pyarrow's S3 only when ``AWS_ENDPOINT_URL`` is set: on AWS it is not).
"""
from __future__ import annotations

import uuid

import pytest

from localaws.athena import run_query
from localaws.core.waiting import wait_until

SUFFIX = uuid.uuid4().hex[:6]
LAKE, DB = f"t-glue-ice-{SUFFIX}", f"glue_ice_{SUFFIX}"
OUT = f"s3://{LAKE}/athena-results/"
ACTIVE = ("STARTING", "RUNNING", "STOPPING", "WAITING")

APPEND = '''
import os
import sys
import pyarrow as pa
from awsglue.utils import getResolvedOptions
from pyiceberg.catalog import load_catalog

args = getResolvedOptions(sys.argv, ["table"])
# The Data Catalog of the job's account. Locally AWS_ENDPOINT_URL names the stack, whose S3
# pyarrow must reach path-style; on AWS it is unset and pyiceberg uses AWS's endpoints.
endpoint = os.environ.get("AWS_ENDPOINT_URL")
local = {"s3.endpoint": endpoint, "s3.force-virtual-addressing": "false"} if endpoint else {}
table = load_catalog("glue", type="glue", **local).load_table(args["table"])
table.append(pa.table({"id": pa.array([10, 11], pa.int64()), "item": ["from-glue", "from-glue"]}))
table.delete("id = 1")
print("snapshots:", len(table.snapshots()))
'''


@pytest.fixture(scope="module")
def lake(stack):
    stack.client("s3").create_bucket(Bucket=LAKE)
    athena = stack.client("athena")
    run_query(athena, f"CREATE DATABASE {DB}", output=OUT)
    run_query(athena, f"CREATE TABLE {DB}.items (id bigint, item string) LOCATION 's3://{LAKE}/items/' "
                      "TBLPROPERTIES ('table_type'='ICEBERG')", output=OUT)
    run_query(athena, f"INSERT INTO {DB}.items VALUES (1, 'a'), (2, 'b')", output=OUT)
    stack.client("s3").put_object(Bucket=LAKE, Key="code/append.py", Body=APPEND.encode())
    return athena


def run_job(stack, name: str, arguments: dict) -> dict:
    glue = stack.client("glue")
    glue.create_job(Name=name, Role="arn:aws:iam::123456789012:role/glue",
                    Command={"Name": "pythonshell", "ScriptLocation": f"s3://{LAKE}/code/append.py",
                             "PythonVersion": "3.9"})
    run_id = glue.start_job_run(JobName=name, Arguments=arguments)["JobRunId"]
    assert wait_until(lambda: glue.get_job_run(JobName=name, RunId=run_id)["JobRun"]["JobRunState"] not in ACTIVE,
                      180, poll=0.5)
    return glue.get_job_run(JobName=name, RunId=run_id)["JobRun"]


def test_a_python_shell_job_commits_and_athena_reads_the_commit(stack, lake):
    before = stack.client("glue").get_table(DatabaseName=DB, Name="items")["Table"]["Parameters"]
    run = run_job(stack, f"ice-append-{SUFFIX}", {"--table": f"{DB}.items"})
    assert run["JobRunState"] == "SUCCEEDED", run.get("ErrorMessage")
    after = stack.client("glue").get_table(DatabaseName=DB, Name="items")["Table"]["Parameters"]
    assert after["table_type"] == "ICEBERG" and after["metadata_location"] != before["metadata_location"]
    frame, _ = run_query(lake, f"SELECT id, item FROM {DB}.items ORDER BY id", output=OUT)
    assert frame.values.tolist() == [[2, "b"], [10, "from-glue"], [11, "from-glue"]]
    ops, _ = run_query(lake, f'SELECT operation FROM {DB}."items$snapshots" ORDER BY committed_at', output=OUT)
    # Athena's INSERT, the job's append, the job's delete (it rewrote the file holding ids 1 and 2).
    assert ops["operation"].tolist() == ["append", "append", "overwrite"]


def test_a_job_on_a_missing_table_fails_with_the_error_in_glue(stack, lake):
    run = run_job(stack, f"ice-missing-{SUFFIX}", {"--table": f"{DB}.nothing"})
    assert run["JobRunState"] == "FAILED"
    assert "NoSuchTableError" in run["ErrorMessage"]
