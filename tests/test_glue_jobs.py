"""GLUE-1/2/3/4/6: Glue ETL jobs that really run (``localaws/glue/jobs.py``).

Each StartJobRun runs the job's script: ``glueetl`` jobs on ``spark-submit
--master local[2]`` with the local ``awsglue`` library, ``pythonshell`` jobs
on plain Python. The runs' states, times, errors, retries, timeouts, logs
and bookmarks are checked through the Glue and CloudWatch Logs APIs only.

A Spark run costs 10-20 s on this machine, so the module starts its first
three Spark runs together (``first_wave``) and shares them between tests.
"""
from __future__ import annotations

import io
import json
import subprocess
import sys

import psutil
import pytest
from botocore.exceptions import ClientError

from localaws.core.waiting import wait_until

CODE, DATA = "t-glue-jobs-code", "t-glue-jobs-data"
ACTIVE = ("STARTING", "RUNNING", "STOPPING", "WAITING")

ETL = '''
import json, sys
from awsglue.context import GlueContext
from awsglue.dynamicframe import DynamicFrame
from awsglue.job import Job
from awsglue.transforms import ApplyMapping, Relationalize, ResolveChoice
from awsglue.utils import getResolvedOptions
from pyspark.context import SparkContext

args = getResolvedOptions(sys.argv, ["JOB_NAME", "JOB_RUN_ID", "job-bookmark-option", "source", "nested",
                                     "target", "mode", "owner", "TempDir"])
sc = SparkContext()
glueContext = GlueContext(sc)
spark = glueContext.spark_session
job = Job(glueContext)
job.init(args["JOB_NAME"], args)
print("ARGS " + json.dumps(args, sort_keys=True))
print("JOB_ID " + json.dumps(sys.argv[sys.argv.index("--JOB_ID") + 1]))
print("CAST " + json.dumps(spark.sql("SELECT CAST('x' AS INT) AS v").first()["v"]))
glueContext.get_logger().info("read the sales")

sales = glueContext.create_dynamic_frame.from_options(
    connection_type="s3", connection_options={"paths": [args["source"]], "recurse": True},
    format="csv", format_options={"withHeader": True}, transformation_ctx="sales")
priced = ResolveChoice.apply(frame=sales, specs=[("price", "cast:double")])
mapped = ApplyMapping.apply(frame=priced, mappings=[
    ("id", "int", "sale_id", "long"), ("city", "string", "city", "string"), ("price", "double", "price", "double")])
glueContext.write_dynamic_frame.from_options(
    frame=mapped, connection_type="s3", connection_options={"path": args["target"] + "sales/", "partitionKeys": ["city"]},
    format="parquet")

people = glueContext.create_dynamic_frame.from_options(
    connection_type="s3", connection_options={"paths": [args["nested"]]}, format="json")
tables = Relationalize.apply(frame=people, staging_path=args["TempDir"], name="people")
for name in sorted(tables.keys()):
    glueContext.write_dynamic_frame.from_options(
        frame=tables.select(name), connection_type="s3",
        connection_options={"path": args["target"] + "people/" + name + "/"}, format="json")
print("TABLES " + json.dumps(sorted(tables.keys())))
job.commit()
'''

ANSI = '''
from pyspark.sql import SparkSession
spark = SparkSession.builder.getOrCreate()
print(spark.sql("SELECT CAST('x' AS INT) AS v").collect())
'''

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
events = glueContext.create_dynamic_frame.from_options(
    connection_type="s3", connection_options={"paths": [args["source"]]}, format="json", transformation_ctx="events")
print("READ " + json.dumps(sorted(r["n"] for r in events.toDF().collect())))
job.commit()
'''

WAIT_SPARK = '''
import threading
from pyspark.context import SparkContext
sc = SparkContext()
print("ready", flush=True)
threading.Event().wait()        # until the run is stopped
'''

SALES = "id,city,price\n1,paris,1.5\n2,rome,n/a\n3,paris,3\n4,oslo,4.25\n"
PEOPLE = [{"id": 1, "name": "ana", "address": {"city": "lyon"}, "phones": ["1", "2"]},
          {"id": 2, "name": "bo", "address": {"city": "nice"}, "phones": ["3"]}]


# ------------------------------------------------------------------ helpers
@pytest.fixture(scope="module")
def glue(stack):
    s3 = stack.client("s3")
    for bucket in (CODE, DATA):
        s3.create_bucket(Bucket=bucket)
    return stack.client("glue")


def create_job(stack, name: str, source: str, kind: str = "glueetl", **kwargs) -> str:
    stack.client("s3").put_object(Bucket=CODE, Key=f"{name}.py", Body=source.encode())
    stack.client("glue").create_job(Name=name, Role="arn:aws:iam::123456789012:role/glue",
                                    Command={"Name": kind, "ScriptLocation": f"s3://{CODE}/{name}.py"}, **kwargs)
    return name


def wait_run(glue, job: str, run_id: str, timeout: float = 300, states: list | None = None) -> dict:
    """GetJobRun until the run has ended (asserting it does in ``timeout`` s); every state seen goes in ``states``."""
    seen = states if states is not None else []

    def ended():
        run = glue.get_job_run(JobName=job, RunId=run_id)["JobRun"]
        if not seen or seen[-1] != run["JobRunState"]:
            seen.append(run["JobRunState"])
        return run["JobRunState"] not in ACTIVE
    assert wait_until(ended, timeout, poll=0.5), f"{job} run still {seen[-1]} after {timeout} s"
    return glue.get_job_run(JobName=job, RunId=run_id)["JobRun"]


def log_lines(stack, group: str, stream: str) -> list[str]:
    logs = stack.client("logs")
    try:
        return [e["message"] for e in logs.get_log_events(logGroupName=group, logStreamName=stream,
                                                          startFromHead=True)["events"]]
    except ClientError:
        return []


def printed(stack, run_id: str, prefix: str):
    """The JSON a script printed after ``prefix`` (its /aws-glue/jobs/output stream)."""
    for line in log_lines(stack, "/aws-glue/jobs/output", run_id):
        if line.startswith(prefix + " "):
            return json.loads(line[len(prefix) + 1:])
    raise AssertionError(f"no {prefix!r} line in the output log of {run_id}")


def alive(processes) -> list:
    """The processes (psutil.Process or PIDs) still running (zombies count as ended)."""
    found = []
    for proc in processes:
        try:
            proc = proc if isinstance(proc, psutil.Process) else psutil.Process(proc)
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc.pid)
        except psutil.NoSuchProcess:
            pass
    return found


def parquet_rows(stack, prefix: str) -> list[tuple[str, dict]]:
    import pyarrow.parquet as pq
    s3 = stack.client("s3")
    found = []
    for obj in s3.list_objects_v2(Bucket=DATA, Prefix=prefix).get("Contents", []):
        if obj["Key"].endswith(".parquet"):
            table = pq.read_table(io.BytesIO(s3.get_object(Bucket=DATA, Key=obj["Key"])["Body"].read()))
            found += [(obj["Key"], row) for row in table.to_pylist()]
    return found


# ------------------------------------------------------------------ the first wave of Spark runs
@pytest.fixture(scope="module")
def first_wave(stack, glue):
    """Three Spark runs at once: the ETL job (Glue 4.0), an ANSI check on Glue 6.0, a bookmarked read."""
    s3 = stack.client("s3")
    s3.put_object(Bucket=DATA, Key="in/sales/2024/sales.csv", Body=SALES.encode())
    s3.put_object(Bucket=DATA, Key="in/people/people.json", Body="\n".join(map(json.dumps, PEOPLE)).encode())
    for n in (1, 2):
        s3.put_object(Bucket=DATA, Key=f"events/{n}.json", Body=json.dumps({"n": n}).encode())
    create_job(stack, "etl", ETL, GlueVersion="4.0", WorkerType="G.1X", NumberOfWorkers=2, DefaultArguments={
        "--source": f"s3://{DATA}/in/sales/", "--nested": f"s3://{DATA}/in/people/", "--target": f"s3://{DATA}/out/",
        "--TempDir": f"s3://{DATA}/tmp/", "--mode": "default"}, NonOverridableArguments={"--owner": "team-a"})
    create_job(stack, "ansi6", ANSI, GlueVersion="6.0")
    create_job(stack, "bookmarked", BOOKMARKED, GlueVersion="5.0", DefaultArguments={
        "--source": f"s3://{DATA}/events/", "--job-bookmark-option": "job-bookmark-enable"})
    run_args = {"--mode": "run", "--owner": "someone-else"}
    ids = {"etl": glue.start_job_run(JobName="etl", Arguments=run_args)["JobRunId"],
           "ansi6": glue.start_job_run(JobName="ansi6")["JobRunId"],
           "bookmarked": glue.start_job_run(JobName="bookmarked")["JobRunId"]}
    states = {job: [] for job in ids}
    runs = {job: wait_run(glue, job, run_id, 420, states[job]) for job, run_id in ids.items()}
    return {"runs": runs, "states": states, "run_args": run_args}


def test_a_csv_to_parquet_job_runs_on_spark_and_writes_partition_folders(stack, first_wave):
    run = first_wave["runs"]["etl"]
    assert run["JobRunState"] == "SUCCEEDED", run.get("ErrorMessage")
    assert "RUNNING" in first_wave["states"]["etl"]
    rows = parquet_rows(stack, "out/sales/")
    assert {key.split("/")[2] for key, _ in rows} == {"city=oslo", "city=paris", "city=rome"}
    got = sorted((row["sale_id"], key.split("/")[2][5:], row["price"]) for key, row in rows)
    assert got == [(1, "paris", 1.5), (2, "rome", None), (3, "paris", 3.0), (4, "oslo", 4.25)]   # "n/a": null


def test_relationalize_writes_the_root_and_child_tables(stack, first_wave):
    run = first_wave["runs"]["etl"]
    assert printed(stack, run["Id"], "TABLES") == ["people", "people_phones"]
    s3 = stack.client("s3")

    def records(table):
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=DATA, Prefix=f"out/people/{table}/").get("Contents", [])
                if o["Key"].endswith(".json")]
        return [json.loads(line) for k in keys
                for line in s3.get_object(Bucket=DATA, Key=k)["Body"].read().decode().splitlines() if line]
    root = {r["id"]: r for r in records("people")}
    assert {r["address.city"] for r in root.values()} == {"lyon", "nice"}
    phones = sorted((r["id"], r["index"], r["phones.val"]) for r in records("people_phones"))
    assert phones == [(root[1]["phones"], 0, "1"), (root[1]["phones"], 1, "2"), (root[2]["phones"], 0, "3")]


def test_the_script_gets_glue_arguments_run_arguments_win_non_overridable_ones_win_over_both(stack, first_wave):
    run = first_wave["runs"]["etl"]
    args = printed(stack, run["Id"], "ARGS")
    assert args["JOB_NAME"] == "etl" and args["JOB_RUN_ID"] == run["Id"]
    assert args["mode"] == "run" and args["owner"] == "team-a"
    assert args["job-bookmark-option"] == "job-bookmark-disable"        # Glue's default
    assert args["TempDir"] == f"s3://{DATA}/tmp/"
    assert printed(stack, run["Id"], "JOB_ID").startswith("j_")
    assert run["Arguments"] == first_wave["run_args"]                   # the run's own arguments


def test_get_job_run_reports_the_real_run(first_wave):
    run = first_wave["runs"]["etl"]
    assert run["Attempt"] == 0 and "PreviousRunId" not in run
    assert run["GlueVersion"] == "4.0" and run["Timeout"] == 2880        # Glue 4.0's default timeout
    assert (run["WorkerType"], run["NumberOfWorkers"], run["MaxCapacity"]) == ("G.1X", 2, 2.0)
    assert run["LogGroupName"] == "/aws-glue/jobs"
    assert run["CompletedOn"] > run["StartedOn"]
    wall = (run["CompletedOn"] - run["StartedOn"]).total_seconds()
    assert run["ExecutionTime"] >= 1 and abs(run["ExecutionTime"] - wall) <= 1
    assert first_wave["runs"]["bookmarked"]["Timeout"] == 480            # Glue 5.0 and later


def test_glue_4_casts_like_spark_3_and_glue_6_like_spark_4(stack, first_wave):
    assert printed(stack, first_wave["runs"]["etl"]["Id"], "CAST") is None      # ANSI off: NULL
    ansi = first_wave["runs"]["ansi6"]
    assert ansi["JobRunState"] == "FAILED" and ansi["GlueVersion"] == "6.0"
    assert ansi["ErrorMessage"].startswith("Error Category: UNCLASSIFIED_ERROR; Failed Line Number: 4; ")
    assert "CAST_INVALID_INPUT" in ansi["ErrorMessage"]


def test_driver_output_and_logs_go_to_cloudwatch(stack, first_wave):
    run_id = first_wave["runs"]["etl"]["Id"]
    output = log_lines(stack, "/aws-glue/jobs/output", run_id)
    assert any(line.startswith("ARGS ") for line in output)
    errors = log_lines(stack, "/aws-glue/jobs/error", run_id)
    assert any("GlueLogger: read the sales" in line for line in errors)       # the script's GlueLogger
    assert any(" WARN " in line for line in errors)                           # Spark's own log lines
    failed = first_wave["runs"]["ansi6"]["Id"]
    assert any("CAST_INVALID_INPUT" in line for line in log_lines(stack, "/aws-glue/jobs/error", failed))


def test_job_bookmarks_read_new_objects_pause_and_reset(stack, glue, first_wave):
    first = first_wave["runs"]["bookmarked"]
    assert first["JobRunState"] == "SUCCEEDED", first.get("ErrorMessage")
    assert printed(stack, first["Id"], "READ") == [1, 2]
    entry = glue.get_job_bookmark(JobName="bookmarked")["JobBookmarkEntry"]
    assert (entry["Version"], entry["Run"], entry["RunId"]) == (1, 1, first["Id"])

    stack.client("s3").put_object(Bucket=DATA, Key="events/3.json", Body=b'{"n": 3}')
    paused = glue.start_job_run(JobName="bookmarked", Arguments={"--job-bookmark-option": "job-bookmark-pause"})
    run = wait_run(glue, "bookmarked", paused["JobRunId"])
    assert run["JobRunState"] == "SUCCEEDED" and printed(stack, run["Id"], "READ") == [3]   # only the new object
    assert glue.get_job_bookmark(JobName="bookmarked")["JobBookmarkEntry"] == entry         # pause: not moved

    reset = glue.reset_job_bookmark(JobName="bookmarked")["JobBookmarkEntry"]
    assert json.loads(reset["JobBookmark"]) == {} and reset["Version"] == 2
    again = wait_run(glue, "bookmarked", glue.start_job_run(JobName="bookmarked")["JobRunId"])
    assert printed(stack, again["Id"], "READ") == [1, 2, 3]                                 # everything again
    entry = glue.get_job_bookmark(JobName="bookmarked")["JobBookmarkEntry"]
    assert (entry["Version"], entry["Run"], entry["RunId"], entry["PreviousRunId"]) == (3, 2, again["Id"], first["Id"])


def test_max_concurrent_runs_and_batch_stop_job_run_end_the_spark_driver(stack, glue):
    create_job(stack, "waits", WAIT_SPARK, GlueVersion="5.0")
    run_id = glue.start_job_run(JobName="waits")["JobRunId"]
    assert wait_until(lambda: "ready" in log_lines(stack, "/aws-glue/jobs/output", run_id), 240, poll=0.5)
    with pytest.raises(ClientError) as err:
        glue.start_job_run(JobName="waits")                      # MaxConcurrentRuns defaults to 1
    assert err.value.response["Error"]["Code"] == "ConcurrentRunsExceededException"
    assert [r["Id"] for r in glue.get_job_runs(JobName="waits")["JobRuns"]] == [run_id]    # none recorded
    driver = stack.local.glue.job_run_pids(run_id)
    processes = [psutil.Process(pid) for pid in driver]
    processes += [child for p in list(processes) for child in p.children(recursive=True)]
    assert len(processes) >= 2                                   # the driver JVM and its Python
    stopped = glue.batch_stop_job_run(JobName="waits", JobRunIds=[run_id, "jr_nope"])
    assert stopped["SuccessfulSubmissions"] == [{"JobName": "waits", "JobRunId": run_id}]
    assert [e["JobRunId"] for e in stopped["Errors"]] == ["jr_nope"]
    run = wait_run(glue, "waits", run_id, 60)
    assert run["JobRunState"] == "STOPPED"
    assert alive(processes) == []
    again = glue.batch_stop_job_run(JobName="waits", JobRunIds=[run_id])
    assert again["Errors"][0]["ErrorDetail"]["ErrorCode"] == "InvalidInputException"     # already ended


# ------------------------------------------------------------------ Python shell jobs
PYSHELL = '''
import sys, boto3
from awsglue.utils import getResolvedOptions
args = getResolvedOptions(sys.argv, ["JOB_NAME", "bucket"])
s3 = boto3.client("s3")                   # the stack's endpoint, from the run's environment
s3.put_object(Bucket=args["bucket"], Key="from-pythonshell.txt", Body=args["JOB_NAME"].encode())
print("wrote", args["bucket"])
'''


def test_a_python_shell_job_runs_plain_python_with_boto3_on_the_stack(stack, glue, s3_objects):
    create_job(stack, "pyshell", PYSHELL, kind="pythonshell", DefaultArguments={"--bucket": DATA})
    run = wait_run(glue, "pyshell", glue.start_job_run(JobName="pyshell")["JobRunId"], 60)
    assert run["JobRunState"] == "SUCCEEDED", run.get("ErrorMessage")
    assert run["MaxCapacity"] == 0.0625 and "WorkerType" not in run
    assert "from-pythonshell.txt" in s3_objects(DATA)
    assert log_lines(stack, "/aws-glue/jobs/output", run["Id"]) == [f"wrote {DATA}"]


def test_a_failed_run_is_retried_as_new_runs_up_to_max_retries(stack, glue):
    create_job(stack, "flaky", "raise RuntimeError('source not ready')\n", kind="pythonshell", MaxRetries=2)
    first = glue.start_job_run(JobName="flaky")["JobRunId"]
    ids = [first, f"{first}_attempt_1", f"{first}_attempt_2"]

    def all_failed():
        runs = {r["Id"]: r for r in glue.get_job_runs(JobName="flaky")["JobRuns"]}
        return set(runs) == set(ids) and all(r["JobRunState"] == "FAILED" for r in runs.values())
    assert wait_until(all_failed, 120, poll=0.5)
    runs = {r["Id"]: r for r in glue.get_job_runs(JobName="flaky")["JobRuns"]}
    assert [runs[i]["Attempt"] for i in ids] == [0, 1, 2]
    assert [runs[i].get("PreviousRunId") for i in ids] == [None, ids[0], ids[1]]
    assert all(r["ErrorMessage"].endswith("RuntimeError: source not ready") for r in runs.values())


def test_a_run_past_its_timeout_is_ended_with_state_timeout(stack, glue, frozen):
    create_job(stack, "slow", "import threading\nprint('working', flush=True)\nthreading.Event().wait()\n",
               kind="pythonshell", MaxRetries=1)
    run_id = glue.start_job_run(JobName="slow", Timeout=1)["JobRunId"]
    assert wait_until(lambda: "working" in log_lines(stack, "/aws-glue/jobs/output", run_id), 60, poll=0.2)
    pids = stack.local.glue.job_run_pids(run_id)
    frozen.advance(61)                                        # one minute and a second, on the stack's clock
    run = wait_run(glue, "slow", run_id, 30)
    assert run["JobRunState"] == "TIMEOUT" and run["Timeout"] == 1
    assert run["ExecutionTime"] >= 60 and "timed out" in run["ErrorMessage"]
    assert alive(pids) == []
    assert [r["Id"] for r in glue.get_job_runs(JobName="slow")["JobRuns"]] == [run_id]    # no retry


# ------------------------------------------------------------------ clean-up
STACK_STOP_SCRIPT = '''
import json, psutil, localaws
from localaws.core.waiting import wait_until
stack = localaws.start()
s3, glue, logs = stack.client("s3"), stack.client("glue"), stack.client("logs")
s3.create_bucket(Bucket="code")
s3.put_object(Bucket="code", Key="wait.py", Body=%r)
glue.create_job(Name="w", Role="r", GlueVersion="5.0", Command={"Name": "glueetl", "ScriptLocation": "s3://code/wait.py"})
run_id = glue.start_job_run(JobName="w")["JobRunId"]
def ready():
    try:
        events = logs.get_log_events(logGroupName="/aws-glue/jobs/output", logStreamName=run_id)["events"]
    except Exception:
        return False
    return any(e["message"] == "ready" for e in events)
assert wait_until(ready, 240, poll=0.5)
pids = stack.local.glue.job_run_pids(run_id)
pids += [c.pid for p in list(pids) for c in psutil.Process(p).children(recursive=True)]
stack.stop()
print(json.dumps(pids))
''' % WAIT_SPARK


def test_no_spark_process_is_left_after_the_stack_stops():
    """A stack of its own, in a subprocess (the session's stack must keep running)."""
    done = subprocess.run([sys.executable, "-c", STACK_STOP_SCRIPT], capture_output=True, text=True, timeout=360)
    assert done.returncode == 0, done.stderr[-3000:]
    pids = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(pids) >= 2                                     # the driver JVM and its Python
    assert alive(pids) == []
