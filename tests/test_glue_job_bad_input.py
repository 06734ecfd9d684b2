"""Glue job runs given bad input: AWS's error shapes, failed runs that say why, nothing half-done.

Two kinds of refusal, as on Glue: StartJobRun itself refuses what it can
check (an unknown job, a Timeout out of range, a command Glue does not have)
and records no run; what only the run can find out (its script, its
arguments, its data) fails the *run*, with the reason as ``ErrorMessage`` and
in ``/aws-glue/jobs/error``.
"""
from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from localaws.core.waiting import wait_until

CODE, DATA = "t-glue-bad-code", "t-glue-bad-data"
ACTIVE = ("STARTING", "RUNNING", "STOPPING", "WAITING")

BOOKMARKED = '''
import json, sys
from awsglue.context import GlueContext
from awsglue.job import Job
from awsglue.utils import getResolvedOptions
from pyspark.context import SparkContext
args = getResolvedOptions(sys.argv, ["JOB_NAME", "source"])
glueContext = GlueContext(SparkContext())
job = Job(glueContext)
job.init(args["JOB_NAME"], args)
frame = glueContext.create_dynamic_frame.from_options(
    connection_type="s3", connection_options={"paths": [args["source"]]}, format="json", transformation_ctx="src")
print("READ " + json.dumps(sorted(r["n"] for r in frame.toDF().collect())))
job.commit()
'''

MISSING_TABLE = '''
from awsglue.context import GlueContext
from pyspark.context import SparkContext
glueContext = GlueContext(SparkContext())
glueContext.create_dynamic_frame.from_catalog(database="t_glue_bad", table_name="nosuchtable")
'''


@pytest.fixture(scope="module")
def glue(stack):
    s3 = stack.client("s3")
    for bucket in (CODE, DATA):
        s3.create_bucket(Bucket=bucket)
    stack.client("glue").create_database(DatabaseInput={"Name": "t_glue_bad"})
    return stack.client("glue")


def create_job(stack, name: str, source: str | None, kind: str = "glueetl", **kwargs) -> str:
    if source is not None:
        stack.client("s3").put_object(Bucket=CODE, Key=f"{name}.py", Body=source.encode())
    stack.client("glue").create_job(Name=name, Role="arn:aws:iam::123456789012:role/glue",
                                    Command={"Name": kind, "ScriptLocation": f"s3://{CODE}/{name}.py"}, **kwargs)
    return name


def wait_run(glue, job: str, run_id: str, timeout: float = 300) -> dict:
    assert wait_until(lambda: glue.get_job_run(JobName=job, RunId=run_id)["JobRun"]["JobRunState"] not in ACTIVE,
                      timeout, poll=0.5)
    return glue.get_job_run(JobName=job, RunId=run_id)["JobRun"]


def error_log(stack, run_id: str) -> str:
    logs = stack.client("logs")
    try:
        events = logs.get_log_events(logGroupName="/aws-glue/jobs/error", logStreamName=run_id, startFromHead=True)
    except ClientError:
        return ""
    return "\n".join(e["message"] for e in events["events"])


def code(err) -> str:
    return err.value.response["Error"]["Code"]


@pytest.fixture(scope="module")
def spark_runs(stack, glue):
    """The Spark runs of the module, started together: a syntax error, a missing table, a bookmarked read."""
    create_job(stack, "syntax", "import sys\nprint('never'\n", GlueVersion="5.0")
    create_job(stack, "notable", MISSING_TABLE, GlueVersion="5.0")
    s3 = stack.client("s3")
    for n in (1, 2):
        s3.put_object(Bucket=DATA, Key=f"events/{n}.json", Body=json.dumps({"n": n}).encode())
    create_job(stack, "marked", BOOKMARKED, GlueVersion="5.0", DefaultArguments={
        "--source": f"s3://{DATA}/events/", "--job-bookmark-option": "job-bookmark-enable"})
    ids = {job: glue.start_job_run(JobName=job)["JobRunId"] for job in ("syntax", "notable", "marked")}
    return {job: wait_run(glue, job, run_id, 420) for job, run_id in ids.items()}


def test_a_script_with_a_syntax_error_fails_and_says_where(stack, spark_runs):
    run = spark_runs["syntax"]
    assert run["JobRunState"] == "FAILED"
    assert run["ErrorMessage"].startswith("Error Category: UNCLASSIFIED_ERROR; Failed Line Number: 2; SyntaxError: ")
    assert "SyntaxError" in error_log(stack, run["Id"])


def test_from_catalog_on_a_missing_table_fails_with_the_catalog_error(stack, spark_runs):
    run = spark_runs["notable"]
    assert run["JobRunState"] == "FAILED"
    assert "EntityNotFoundException" in run["ErrorMessage"] and "nosuchtable" in run["ErrorMessage"]
    assert "Failed Line Number: 5;" in run["ErrorMessage"]


def test_a_bookmark_over_a_deleted_object_reads_what_is_new(stack, glue, spark_runs):
    first = spark_runs["marked"]
    assert first["JobRunState"] == "SUCCEEDED", first.get("ErrorMessage")
    s3 = stack.client("s3")
    s3.delete_object(Bucket=DATA, Key="events/1.json")              # remembered by the bookmark, now gone
    s3.put_object(Bucket=DATA, Key="events/3.json", Body=b'{"n": 3}')
    run = wait_run(glue, "marked", glue.start_job_run(JobName="marked")["JobRunId"])
    assert run["JobRunState"] == "SUCCEEDED", run.get("ErrorMessage")
    lines = stack.client("logs").get_log_events(logGroupName="/aws-glue/jobs/output", logStreamName=run["Id"])
    assert [e["message"] for e in lines["events"]] == ["READ [3]"]
    state = json.loads(glue.get_job_bookmark(JobName="marked")["JobBookmarkEntry"]["JobBookmark"])
    assert state["states"]["src"]["in_band"] == [f"s3://{DATA}/events/2.json", f"s3://{DATA}/events/3.json"]


def test_a_script_that_raises_fails_with_its_exception(stack, glue):
    create_job(stack, "raises", "import os\nsettings = {}\nregion = settings['region']\n", kind="pythonshell")
    run = wait_run(glue, "raises", glue.start_job_run(JobName="raises")["JobRunId"], 60)
    assert run["JobRunState"] == "FAILED"
    assert run["ErrorMessage"] == "Error Category: UNCLASSIFIED_ERROR; Failed Line Number: 3; KeyError: 'region'"
    log = error_log(stack, run["Id"])
    assert log.startswith("Traceback (most recent call last):") and "KeyError: 'region'" in log


def test_a_missing_script_object_fails_the_run_before_anything_starts(stack, glue):
    create_job(stack, "noscript", None)                              # nothing uploaded
    run_id = glue.start_job_run(JobName="noscript")["JobRunId"]
    run = wait_run(glue, "noscript", run_id, 60)
    assert run["JobRunState"] == "FAILED" and run["ExecutionTime"] == 0
    assert run["ErrorMessage"] == (f"Error downloading script s3://{CODE}/noscript.py: fatal error: An error occurred "
                                   "(404) when calling the HeadObject operation: Not Found")
    assert "noscript.py" in error_log(stack, run_id)
    assert stack.local.glue.job_run_pids(run_id) == []


def test_an_invalid_bookmark_option_fails_the_run_with_glues_executor_error(stack, glue):
    create_job(stack, "badoption", "print('never')\n", kind="pythonshell")
    run_id = glue.start_job_run(JobName="badoption", Arguments={"--job-bookmark-option": "wrong"})["JobRunId"]
    run = wait_run(glue, "badoption", run_id, 60)
    assert run["JobRunState"] == "FAILED"
    assert "Job bookmark option wrong is not valid" in run["ErrorMessage"]
    assert "Error Code: InvalidInputException" in run["ErrorMessage"]
    assert stack.client("logs").describe_log_streams(logGroupName="/aws-glue/jobs/output",
                                                     logStreamNamePrefix=run_id)["logStreams"] == []   # never ran


def test_a_glue_version_that_no_longer_runs_fails_the_run(stack, glue):
    create_job(stack, "oldglue", "print('never')\n", GlueVersion="2.0")
    run = wait_run(glue, "oldglue", glue.start_job_run(JobName="oldglue")["JobRunId"], 60)
    assert run["JobRunState"] == "FAILED"
    assert run["ErrorMessage"].startswith("Given GlueVersion [2.0] is not valid. (Service: AWSGlueJobExecutor;")


def test_start_job_run_refuses_what_it_can_check_and_records_no_run(stack, glue):
    with pytest.raises(ClientError) as err:
        glue.start_job_run(JobName="t-glue-no-such-job")
    assert code(err) == "EntityNotFoundException"
    create_job(stack, "checked", "print('x')\n", kind="pythonshell")
    with pytest.raises(ClientError) as err:
        glue.start_job_run(JobName="checked", Timeout=10081)         # more than 7 days
    assert code(err) == "InvalidInputException"
    create_job(stack, "weird", "print('x')\n", kind="sparkish")
    with pytest.raises(ClientError) as err:
        glue.start_job_run(JobName="weird")
    assert code(err) == "InvalidInputException"
    create_job(stack, "ray", "print('x')\n", kind="glueray", GlueVersion="4.0")
    with pytest.raises(ClientError) as err:
        glue.start_job_run(JobName="ray")
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 501
    for job in ("checked", "weird", "ray"):
        assert glue.get_job_runs(JobName=job)["JobRuns"] == []


def test_bookmark_and_stop_operations_on_unknown_things(stack, glue):
    with pytest.raises(ClientError) as err:
        glue.get_job_bookmark(JobName="t-glue-no-such-job")
    assert code(err) == "EntityNotFoundException"
    create_job(stack, "unmarked", "print('x')\n", kind="pythonshell")
    with pytest.raises(ClientError) as err:
        glue.get_job_bookmark(JobName="unmarked")                   # never committed one
    assert code(err) == "EntityNotFoundException"
    with pytest.raises(ClientError) as err:
        glue.reset_job_bookmark(JobName="unmarked", RunId="jr_unknown")
    assert code(err) == "EntityNotFoundException"
    stopped = glue.batch_stop_job_run(JobName="t-glue-no-such-job", JobRunIds=["jr_a"])
    assert stopped["SuccessfulSubmissions"] == []
    assert stopped["Errors"][0]["ErrorDetail"]["ErrorCode"] == "EntityNotFoundException"
