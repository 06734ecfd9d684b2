"""AWS Glue DataBrew: a recipe job cleans a messy CSV, a profile job describes it (GLUE-8).

Everything goes through boto3 against the local stack: the dataset is a CSV
in S3, the recipe uses DataBrew's own operation names, the job's outputs are
read back from S3 and compared with what the steps must give.
"""
from __future__ import annotations

import gzip
import io
import json
import re
from datetime import date

import pandas as pd
import pyarrow.parquet as pq
import pytest

from localaws.databrew import wait_for_run
from localaws.databrew.engine import JobRun, Runner

ROLE = "arn:aws:iam::123456789012:role/databrew-course"

MESSY_CSV = b"""customer_id,name,signup_date,location,spend,tier
1, ada LOVELACE ,03/15/2024,"London, UK",120.5,gold
2,alan   TURING,01/02/2024,"Manchester, UK",,silver
2,alan   TURING,01/02/2024,"Manchester, UK",,silver
3,GRACE hopper,12/09/2023,"New York, NY",300,
4,linus,07/04/2024,"Helsinki, FI",80,bronze
5,,02/29/2024,"Austin, TX",50,bronze
6,margaret hamilton,11/11/2023,"Boston, MA",210.25,gold
6,margaret hamilton,11/11/2023,"Boston, MA",210.25,gold
7,  barbara liskov,05/20/2024,"Boston, MA",15,silver
"""


def step(operation: str, conditions: list | None = None, **parameters) -> dict:
    """A recipe step; DataBrew's parameter values are all strings."""
    out = {"Action": {"Operation": operation, "Parameters": {k: str(v) for k, v in parameters.items()}}}
    if not parameters:
        del out["Action"]["Parameters"]
    if conditions:
        out["ConditionExpressions"] = conditions
    return out


CLEANING = [
    step("DELETE_DUPLICATE_ROWS"),
    step("REMOVE_MISSING", sourceColumn="name"),
    step("REMOVE_COMBINED", sourceColumn="name", removeLeadingAndTrailingWhitespace="true",
         collapseConsecutiveWhitespace="true"),
    step("CAPITAL_CASE", sourceColumn="name"),
    step("FILL_WITH_MEDIAN", sourceColumn="spend"),
    step("FILL_WITH_CUSTOM", sourceColumn="tier", value="standard", columnDataType="string"),
    step("UPPER_CASE", sourceColumn="tier"),
    step("FORMAT_DATE", sourceColumn="signup_date", targetDateFormat="yyyy-mm-dd"),
    step("SPLIT_COLUMN_SINGLE_DELIMITER", sourceColumn="location", pattern=",", limit=1, includeInSplit="false"),
    step("REMOVE_COMBINED", sourceColumn="location_2", removeLeadingAndTrailingWhitespace="true"),
    step("RENAME", sourceColumn="location_1", targetColumn="city"),
    step("RENAME", sourceColumn="location_2", targetColumn="region"),
    step("REMOVE_VALUES", [{"Condition": "LESS_THAN", "Value": "20", "TargetColumn": "spend"}], sourceColumn="spend"),
    step("CHANGE_DATA_TYPE", sourceColumn="signup_date", columnDataType="date"),
]

#: What CLEANING must give: duplicates gone, the row without a name gone, names trimmed and
#: capitalised, the missing spend filled with the median of 15, 80, 120.5, 210.25, 300, the
#: missing tier filled, dates ISO, "city, state" split in two, the spend under 20 filtered out.
EXPECTED = [
    (1, "Ada Lovelace", date(2024, 3, 15), "London", "UK", 120.5, "GOLD"),
    (2, "Alan Turing", date(2024, 1, 2), "Manchester", "UK", 120.5, "SILVER"),
    (3, "Grace Hopper", date(2023, 12, 9), "New York", "NY", 300.0, "STANDARD"),
    (4, "Linus", date(2024, 7, 4), "Helsinki", "FI", 80.0, "BRONZE"),
    (6, "Margaret Hamilton", date(2023, 11, 11), "Boston", "MA", 210.25, "GOLD"),
]
COLUMNS = ["customer_id", "name", "signup_date", "city", "region", "spend", "tier"]


@pytest.fixture(scope="module")
def s3(stack):
    return stack.client("s3")


@pytest.fixture(scope="module")
def bucket(s3, unique):
    name = unique("databrew")
    s3.create_bucket(Bucket=name)
    s3.put_object(Bucket=name, Key="raw/customers.csv", Body=MESSY_CSV)
    return name


@pytest.fixture(scope="module")
def dataset(brew, bucket, unique):
    name = unique("customers")
    brew.create_dataset(Name=name, Format="CSV", FormatOptions={"Csv": {"Delimiter": ",", "HeaderRow": True}},
                        Input={"S3InputDefinition": {"Bucket": bucket, "Key": "raw/customers.csv"}})
    return name


@pytest.fixture(scope="module")
def recipe(brew, unique):
    name = unique("clean-customers")
    brew.create_recipe(Name=name, Steps=CLEANING, Description="clean the customer list")
    brew.publish_recipe(Name=name, Description="first cut")
    return name


def keys(s3, bucket: str, prefix: str) -> list[str]:
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", []))


def run_job(brew, job: str) -> dict:
    run_id = brew.start_job_run(Name=job)["RunId"]
    return wait_for_run(brew, job, run_id, timeout=120, poll=0.05)


def test_a_recipe_job_cleans_the_csv_into_parquet(brew, s3, bucket, dataset, recipe, unique, stack):
    job = unique("clean-job")
    outputs = [{"Location": {"Bucket": bucket, "Key": f"{job}/parquet/"}, "Format": "PARQUET",
                "CompressionFormat": "SNAPPY"}]
    brew.create_recipe_job(Name=job, DatasetName=dataset, RecipeReference={"Name": recipe}, RoleArn=ROLE,
                           Outputs=outputs)
    run = run_job(brew, job)
    assert run["State"] == "SUCCEEDED", run.get("ErrorMessage")

    written = keys(s3, bucket, f"{job}/parquet/")
    assert len(written) == 1
    assert re.fullmatch(rf"{job}/parquet/{job}_\d{{2}}[A-Z][a-z]{{2}}\d{{4}}_\d{{13}}_part00000\.parquet", written[0])
    table = pq.read_table(io.BytesIO(s3.get_object(Bucket=bucket, Key=written[0])["Body"].read()))
    assert table.column_names == COLUMNS
    assert str(table.schema.field("signup_date").type) == "date32[day]"
    assert str(table.schema.field("customer_id").type) == "int64"
    assert str(table.schema.field("spend").type) == "double"
    assert [tuple(r.values()) for r in table.to_pylist()] == EXPECTED
    assert stack.local.databrew.written_files(job, run["RunId"]) == [f"s3://{bucket}/{written[0]}"]


def test_the_run_reports_what_describe_job_run_says(brew, bucket, dataset, recipe, unique, stack):
    job = unique("described")
    outputs = [{"Location": {"Bucket": bucket, "Key": f"{job}/"}, "Format": "CSV"}]
    brew.create_recipe_job(Name=job, DatasetName=dataset, RecipeReference={"Name": recipe}, RoleArn=ROLE,
                           Outputs=outputs)
    run = run_job(brew, job)
    assert run["State"] == "SUCCEEDED"
    assert run["JobName"] == job and run["DatasetName"] == dataset
    assert run["RecipeReference"] == {"Name": recipe, "RecipeVersion": "1.0"}
    assert run["Outputs"] == outputs
    assert run["StartedOn"] <= run["CompletedOn"] and run["ExecutionTime"] >= 0
    assert run["LogGroupName"] == f"/aws-glue-databrew/jobs/{job}"
    assert run["StartedBy"].startswith("arn:aws:iam::")
    assert "ErrorMessage" not in run
    assert stack.local.databrew.run_states(job, run["RunId"]) == ["STARTING", "RUNNING", "SUCCEEDED"]

    events = stack.client("logs").get_log_events(logGroupName=run["LogGroupName"], logStreamName=run["RunId"])
    messages = [e["message"] for e in events["events"]]
    assert any("Step 1 DELETE_DUPLICATE_ROWS: 9 -> 7 rows" in m for m in messages)
    assert messages[-1].endswith("SUCCEEDED")


def test_csv_output_has_a_header_and_the_same_rows(brew, s3, bucket, dataset, recipe, unique):
    job = unique("csv-out")
    brew.create_recipe_job(Name=job, DatasetName=dataset, RecipeReference={"Name": recipe}, RoleArn=ROLE,
                           Outputs=[{"Location": {"Bucket": bucket, "Key": f"{job}/"}, "Format": "CSV",
                                     "FormatOptions": {"Csv": {"Delimiter": "|"}}}])
    assert run_job(brew, job)["State"] == "SUCCEEDED"
    [key] = keys(s3, bucket, f"{job}/")
    lines = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode().splitlines()
    assert lines[0] == "|".join(COLUMNS)
    assert lines[1] == "1|Ada Lovelace|2024-03-15|London|UK|120.5|GOLD"
    assert len(lines) == 1 + len(EXPECTED)


def test_json_output_gzip_and_partitioned_csv_with_overwrite(brew, s3, bucket, dataset, recipe, unique):
    job = unique("json-out")
    outputs = [{"Location": {"Bucket": bucket, "Key": f"{job}/json/"}, "Format": "JSON", "CompressionFormat": "GZIP"},
               {"Location": {"Bucket": bucket, "Key": f"{job}/by-tier/"}, "Format": "CSV",
                "PartitionColumns": ["tier"], "Overwrite": True}]
    brew.create_recipe_job(Name=job, DatasetName=dataset, RecipeReference={"Name": recipe}, RoleArn=ROLE,
                           Outputs=outputs)
    for _ in range(2):
        assert run_job(brew, job)["State"] == "SUCCEEDED"

    json_files = keys(s3, bucket, f"{job}/json/")
    assert len(json_files) == 2                     # without Overwrite every run adds its own files
    assert all(k.endswith("_part00000.json.gz") for k in json_files)
    body = gzip.decompress(s3.get_object(Bucket=bucket, Key=json_files[-1])["Body"].read()).decode()
    records = [json.loads(line) for line in body.splitlines()]
    assert records == [dict(zip(COLUMNS, (*row[:2], row[2].isoformat(), *row[3:]))) for row in EXPECTED]

    # with Overwrite, the second run replaced the first: one file per tier, named without a timestamp
    assert keys(s3, bucket, f"{job}/by-tier/") == [f"{job}/by-tier/tier={t}/{job}_part00000.csv"
                                                     for t in ("BRONZE", "GOLD", "SILVER", "STANDARD")]
    gold = s3.get_object(Bucket=bucket, Key=f"{job}/by-tier/tier=GOLD/{job}_part00000.csv")["Body"].read()
    assert pd.read_csv(io.BytesIO(gold))["customer_id"].tolist() == [1, 6]
    assert "tier" not in pd.read_csv(io.BytesIO(gold)).columns


def test_a_job_runs_the_published_version_not_the_working_one(brew, s3, bucket, dataset, unique):
    recipe = unique("versions")
    brew.create_recipe(Name=recipe, Steps=[step("UPPER_CASE", sourceColumn="tier")])
    brew.publish_recipe(Name=recipe)                                           # 1.0: upper case
    brew.update_recipe(Name=recipe, Steps=[step("LOWER_CASE", sourceColumn="tier")])   # working copy only
    latest, pinned = unique("latest"), unique("pinned")
    for job in (latest, pinned):
        brew.create_recipe_job(Name=job, DatasetName=dataset, RoleArn=ROLE,
                               RecipeReference={"Name": recipe, "RecipeVersion": "LATEST_PUBLISHED"
                                                if job == latest else "1.0"},
                               Outputs=[{"Location": {"Bucket": bucket, "Key": f"{job}/"}, "Format": "CSV"}])
    brew.publish_recipe(Name=recipe)                                           # 2.0: lower case
    for job, tiers in ((latest, "silver"), (pinned, "SILVER")):
        run = run_job(brew, job)
        [key] = keys(s3, bucket, f"{job}/")
        frame = pd.read_csv(io.BytesIO(s3.get_object(Bucket=bucket, Key=key)["Body"].read()))
        assert frame["tier"].iloc[1] == tiers
        assert run["RecipeReference"]["RecipeVersion"] == ("2.0" if job == latest else "1.0")


def test_the_profile_job_matches_pandas(brew, s3, bucket, dataset, unique):
    job = unique("profile")
    brew.create_profile_job(Name=job, DatasetName=dataset, RoleArn=ROLE, JobSample={"Mode": "FULL_DATASET"},
                            OutputLocation={"Bucket": bucket, "Key": f"{job}/"})
    run = run_job(brew, job)
    assert run["State"] == "SUCCEEDED", run.get("ErrorMessage")
    assert run["JobSample"] == {"Mode": "FULL_DATASET"}
    [key] = keys(s3, bucket, f"{job}/")
    assert key == f"{job}/{dataset}_{run['RunId']}.json"
    report = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())

    raw = pd.read_csv(io.BytesIO(MESSY_CSV))
    assert report["sampleSize"] == len(raw) == 9
    assert report["duplicateRowsCount"] == int(raw.duplicated().sum()) == 2
    assert [c["name"] for c in report["columns"]] == list(raw.columns)
    by_name = {c["name"]: c for c in report["columns"]}
    for column in raw.columns:
        stats, values = by_name[column], raw[column]
        assert stats["missingValuesCount"] == int(values.isna().sum()), column
        assert stats["valuesCount"] == int(values.count()), column
        assert stats["distinctValuesCount"] == int(values.nunique()), column
    spend = raw["spend"]
    assert by_name["spend"]["type"] == "double"
    for stat, expected in (("min", spend.min()), ("max", spend.max()), ("mean", spend.mean()),
                           ("median", spend.median()), ("standardDeviation", spend.std())):
        assert by_name["spend"][stat] == pytest.approx(expected), stat
    assert by_name["customer_id"]["type"] == "int" and by_name["customer_id"]["max"] == 7
    counts = raw["tier"].value_counts()
    top = by_name["tier"]["mostCommonValues"]
    assert [(t["value"], t["count"]) for t in top] == sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    assert by_name["tier"]["type"] == "string" and "mean" not in by_name["tier"]


def test_a_profile_job_samples_rows_and_columns(brew, s3, bucket, dataset, unique):
    job = unique("profile-sample")
    brew.create_profile_job(Name=job, DatasetName=dataset, RoleArn=ROLE,
                            JobSample={"Mode": "CUSTOM_ROWS", "Size": 4},
                            Configuration={"ProfileColumns": [{"Name": "spend"}, {"Regex": "sign.*"}]},
                            OutputLocation={"Bucket": bucket, "Key": f"{job}/"})
    assert run_job(brew, job)["State"] == "SUCCEEDED"
    [key] = keys(s3, bucket, f"{job}/")
    report = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    assert report["sampleSize"] == 4
    assert [c["name"] for c in report["columns"]] == ["signup_date", "spend"]
    assert report["duplicateRowsCount"] == 1                 # rows 2 and 3 of the file
    assert report["columns"][1]["mean"] == pytest.approx((120.5 + 300) / 2)


def test_list_job_runs_and_stop_job_run(brew, s3, bucket, dataset, recipe, unique, stack):
    job = unique("stoppable")
    brew.create_recipe_job(Name=job, DatasetName=dataset, RecipeReference={"Name": recipe}, RoleArn=ROLE,
                           Outputs=[{"Location": {"Bucket": bucket, "Key": f"{job}/"}, "Format": "CSV"}])
    first = run_job(brew, job)["RunId"]
    hooks = stack.local.databrew
    hooks.hold_runs()                  # the next run waits in STARTING, as while AWS provisions nodes
    try:
        second = brew.start_job_run(Name=job)["RunId"]
        assert brew.describe_job_run(Name=job, RunId=second)["State"] == "STARTING"
        with pytest.raises(brew.exceptions.ConflictException):
            brew.start_job_run(Name=job)
        assert brew.stop_job_run(Name=job, RunId=second)["RunId"] == second
    finally:
        hooks.release_runs()
    stopped = wait_for_run(brew, job, second, timeout=60, poll=0.05)
    assert stopped["State"] == "STOPPED" and "ErrorMessage" not in stopped
    assert hooks.run_states(job, second) == ["STARTING", "STOPPING", "STOPPED"]
    assert len(keys(s3, bucket, f"{job}/")) == 1                 # only the first run wrote anything

    runs = brew.list_job_runs(Name=job)["JobRuns"]
    assert [(r["RunId"], r["State"]) for r in runs] == [(second, "STOPPED"), (first, "SUCCEEDED")]
    page = brew.list_job_runs(Name=job, MaxResults=1)
    assert [r["RunId"] for r in page["JobRuns"]] == [second]
    assert [r["RunId"] for r in brew.list_job_runs(Name=job, MaxResults=1, NextToken=page["NextToken"])
            ["JobRuns"]] == [first]
    paginated = [r["RunId"] for p in brew.get_paginator("list_job_runs").paginate(Name=job, PaginationConfig={
        "PageSize": 1}) for r in p["JobRuns"]]
    assert paginated == [second, first]


def test_a_run_stopped_while_running_ends_between_steps():
    """The engine alone: a stop request is honoured at the next step, and the threads end on stop()."""
    import threading
    from datetime import datetime, timezone

    from localaws.core.clock import Clock

    runner, entered, go = Runner(Clock()), threading.Event(), threading.Event()
    run = JobRun(run_id="db_test", region="us-east-1", job_name="job", job_type="RECIPE", dataset_name="d",
                 started_by="me", started_on=datetime.now(timezone.utc))

    def task(r, checkpoint):
        entered.set()
        go.wait(30)
        checkpoint()                                 # the next step: the stop request is seen here
        raise AssertionError("the run should have stopped")

    runner.start(run, task)
    assert entered.wait(30) and run.state == "RUNNING"
    assert runner.request_stop(run) and run.state == "STOPPING"
    go.set()
    assert runner.wait(run, 30)
    assert run.history == ["STARTING", "RUNNING", "STOPPING", "STOPPED"]
    runner.stop()
    assert runner.live_threads() == []


# ------------------------------------------------------------------ the operations one by one (no stack)
def frame(**columns) -> pd.DataFrame:
    return pd.DataFrame({name: pd.Series(values, dtype=dtype) for name, (dtype, values) in columns.items()})


PEOPLE = dict(name=("string", ["ann lee", "BOB", None, "ann lee"]), n=("Int64", [3, None, 3, 5]),
              when=("string", ["03/04/2024", "12/31/2023", None, "bad"]))


@pytest.mark.parametrize("operation, parameters, conditions, column, expected", [
    ("SENTENCE_CASE", {"sourceColumn": "name"}, None, "name", ["Ann lee", "Bob", None, "Ann lee"]),
    ("LOWER_CASE", {"sourceColumn": "name"}, None, "name", ["ann lee", "bob", None, "ann lee"]),
    ("UPPER_CASE", {"sourceColumn": "name"}, [{"Condition": "GREATER_THAN", "Value": "4", "TargetColumn": "n"}],
     "name", ["ann lee", "BOB", None, "ANN LEE"]),                       # only where the condition holds
    ("TRIM", {"value": "  x ", "targetColumn": "t"}, None, "t", ["x", "x", "x", "x"]),
    ("UPPER", {"sourceColumn": "name", "targetColumn": "shout"}, None, "shout", ["ANN LEE", "BOB", None, "ANN LEE"]),
    ("FILL_WITH_MODE", {"sourceColumn": "n", "modeType": "MAXIMUM"}, None, "n", [3, 3, 3, 5]),
    ("FILL_WITH_AVERAGE", {"sourceColumn": "n"}, None, "n", [3.0, 11 / 3, 3.0, 5.0]),
    ("FILL_WITH_CUSTOM", {"sourceColumn": "name", "value": "nobody"}, None, "name",
     ["ann lee", "BOB", "nobody", "ann lee"]),
    ("FORMAT_DATE", {"sourceColumn": "when", "targetDateFormat": "dd month yyyy"}, None, "when",
     ["04 March 2024", "31 December 2023", None, None]),
    ("DATE_FORMAT", {"sourceColumn": "when", "dateTimeFormat": "yyyy/mm/dd", "targetColumn": "iso"}, None, "iso",
     ["2024/03/04", "2023/12/31", None, None]),
    ("CHANGE_DATA_TYPE", {"sourceColumn": "when", "columnDataType": "date"}, None, "when",
     [date(2024, 3, 4), date(2023, 12, 31), None, None]),
    ("CHANGE_DATA_TYPE", {"sourceColumn": "n", "columnDataType": "string"}, None, "n", ["3", None, "3", "5"]),
])
def test_each_operation(operation, parameters, conditions, column, expected):
    from localaws.databrew import recipes
    step_ = {"Action": {"Operation": operation, "Parameters": parameters}}
    if conditions:
        step_["ConditionExpressions"] = conditions
    recipes.validate_steps([step_])
    got = [None if pd.isna(v) else v for v in recipes.apply_step(frame(**PEOPLE), step_, 1)[column]]
    assert got == (pytest.approx(expected) if operation == "FILL_WITH_AVERAGE" else expected)


@pytest.mark.parametrize("operation, parameters, columns, rows", [
    ("REMOVE_DUPLICATES", {"sourceColumn": "name"}, ["name", "n", "when"], 3),
    ("REMOVE_MISSING", {"sourceColumn": "n"}, ["name", "n", "when"], 3),
    ("DELETE", {"sourceColumns": '["n", "when"]'}, ["name"], 4),
    ("RENAME", {"sourceColumn": "n", "targetColumn": "count"}, ["name", "count", "when"], 4),
    ("SPLIT_COLUMN_SINGLE_DELIMITER", {"sourceColumn": "name", "pattern": " ", "includeInSplit": "true"},
     ["name_1", "name_2", "n", "when"], 4),
])
def test_operations_that_change_the_shape(operation, parameters, columns, rows):
    from localaws.databrew import recipes
    out = recipes.apply_step(frame(**PEOPLE), {"Action": {"Operation": operation, "Parameters": parameters}}, 1)
    assert list(out.columns) == columns and len(out) == rows
    if operation == "SPLIT_COLUMN_SINGLE_DELIMITER":
        assert out["name_1"].tolist()[:2] == ["ann ", "BOB"] and pd.isna(out["name_2"][1])


def test_datasets_in_json_lines_folders_parquet_and_headerless_csv(brew, s3, bucket, unique):
    import pyarrow as pa
    prefix = unique("inputs")
    s3.put_object(Bucket=bucket, Key=f"{prefix}/json/a.json", Body=b'{"id": 1, "city": "Oslo"}\n')
    s3.put_object(Bucket=bucket, Key=f"{prefix}/json/b.json", Body=b'{"id": 2, "city": "Rome"}\n')
    sink = io.BytesIO()
    pq.write_table(pa.table({"id": [3, 4], "city": ["Lima", "Pune"]}), sink)
    s3.put_object(Bucket=bucket, Key=f"{prefix}/p.parquet", Body=sink.getvalue())
    s3.put_object(Bucket=bucket, Key=f"{prefix}/h.csv", Body=b"5;Nice\n6;Kyiv\n")
    cases = {"JSON": ({"Key": f"{prefix}/json/"}, {}, "city"),            # a folder of two files
             "PARQUET": ({"Key": f"{prefix}/p.parquet"}, {}, "city"),
             "CSV": ({"Key": f"{prefix}/h.csv"}, {"Csv": {"Delimiter": ";", "HeaderRow": False}}, "Column_2")}
    seen = {}
    for fmt, (location, options, column) in cases.items():
        name, recipe, job = unique(fmt.lower()), unique("upper"), unique("job")
        brew.create_dataset(Name=name, Format=fmt, FormatOptions=options,
                            Input={"S3InputDefinition": {"Bucket": bucket, **location}})
        brew.create_recipe(Name=recipe, Steps=[step("UPPER_CASE", sourceColumn=column)])
        brew.publish_recipe(Name=recipe)
        brew.create_recipe_job(Name=job, DatasetName=name, RecipeReference={"Name": recipe}, RoleArn=ROLE,
                               Outputs=[{"Location": {"Bucket": bucket, "Key": f"{prefix}/out/{job}/"},
                                         "Format": "JSON"}])
        run = run_job(brew, job)
        assert run["State"] == "SUCCEEDED", run.get("ErrorMessage")
        [key] = keys(s3, bucket, f"{prefix}/out/{job}/")
        seen[fmt] = [json.loads(line) for line in s3.get_object(Bucket=bucket, Key=key)["Body"].read().splitlines()]
    assert seen["JSON"] == [{"id": 1, "city": "OSLO"}, {"id": 2, "city": "ROME"}]
    assert seen["PARQUET"] == [{"id": 3, "city": "LIMA"}, {"id": 4, "city": "PUNE"}]
    assert seen["CSV"] == [{"Column_1": 5, "Column_2": "NICE"}, {"Column_1": 6, "Column_2": "KYIV"}]
