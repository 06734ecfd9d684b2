"""AWS Glue DataBrew, bad input: AWS's error codes and statuses, and runs that fail writing nothing.

Two kinds of failure, as on AWS: a request that is wrong is refused with an
error (``ValidationException`` 400, ``ResourceNotFoundException`` 404,
``ConflictException`` 409, ``ServiceQuotaExceededException`` 402); a run that
meets data it cannot handle was already started, so it ends ``FAILED`` with an
``ErrorMessage``, and its output location stays empty.
"""
from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from localaws.databrew import wait_for_run
from localaws.databrew.engine import MAX_ACTIVE_RUNS

ROLE = "arn:aws:iam::123456789012:role/databrew-course"
CSV = b"id,name,amount\n1,ann,10\n2,bob,\n3,cy,30\n"


def step(operation: str, conditions: list | None = None, **parameters) -> dict:
    out = {"Action": {"Operation": operation, "Parameters": {k: str(v) for k, v in parameters.items()}}}
    if conditions:
        out["ConditionExpressions"] = conditions
    return out


def error_of(call) -> tuple[str, int, str]:
    with pytest.raises(ClientError) as caught:
        call()
    response = caught.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Message"]


@pytest.fixture(scope="module")
def s3(stack):
    return stack.client("s3")


@pytest.fixture(scope="module")
def bucket(s3, unique):
    name = unique("databrew-bad")
    s3.create_bucket(Bucket=name)
    s3.put_object(Bucket=name, Key="in/data.csv", Body=CSV)
    return name


@pytest.fixture(scope="module")
def dataset(brew, bucket, unique):
    name = unique("small")
    brew.create_dataset(Name=name, Format="CSV",
                        Input={"S3InputDefinition": {"Bucket": bucket, "Key": "in/data.csv"}})
    return name


@pytest.fixture
def recipe_job(brew, bucket, dataset, unique):
    """``recipe_job(steps, **output)``: a published recipe and a recipe job writing CSV under a
    fresh prefix; returns (job name, output prefix)."""
    def make(steps, dataset_name=None, **output):
        recipe, job = unique("recipe"), unique("job")
        brew.create_recipe(Name=recipe, Steps=steps)
        brew.publish_recipe(Name=recipe)
        location = {"Bucket": output.pop("Bucket", bucket), "Key": f"{job}/"}
        brew.create_recipe_job(Name=job, DatasetName=dataset_name or dataset, RecipeReference={"Name": recipe},
                               RoleArn=ROLE, Outputs=[{"Location": location, "Format": "CSV", **output}])
        return job, f"{job}/"
    return make


def objects(s3, bucket: str, prefix: str) -> list[str]:
    return [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])]


def failed_run(brew, job: str) -> dict:
    run = wait_for_run(brew, job, brew.start_job_run(Name=job)["RunId"], timeout=120, poll=0.05)
    assert run["State"] == "FAILED", run
    return run


# ------------------------------------------------------------------ recipes, checked when saved
@pytest.mark.parametrize("steps, says", [
    ([step("FROBNICATE", sourceColumn="name")], "FROBNICATE is not a DataBrew recipe operation"),
    ([step("UPPER_CASE")], "UPPER_CASE needs the parameter sourceColumn"),
    ([step("RENAME", sourceColumn="name")], "RENAME needs the parameter targetColumn"),
    ([step("FILL_WITH_MODE", sourceColumn="amount", modeType="BIGGEST")], "modeType must be one of"),
    ([step("CHANGE_DATA_TYPE", sourceColumn="amount", columnDataType="money")], "columnDataType must be one of"),
    ([step("SPLIT_COLUMN_SINGLE_DELIMITER", sourceColumn="name", pattern=",", limit=21)], "limit must be"),
    ([step("UPPER", sourceColumn="name", value="x", targetColumn="y")], "exactly one of sourceColumn, value"),
    ([step("REMOVE_VALUES", sourceColumn="amount")], "needs ConditionExpressions"),
    ([step("REMOVE_VALUES", [{"Condition": "IS_ODD", "TargetColumn": "amount"}], sourceColumn="amount")],
     "unknown Condition 'IS_ODD'"),
    ([step("REMOVE_VALUES", [{"Condition": "LESS_THAN", "TargetColumn": "amount"}], sourceColumn="amount")],
     "LESS_THAN needs a Value"),
    ([step("DELETE_DUPLICATE_ROWS", [{"Condition": "IS_MISSING", "TargetColumn": "amount"}])],
     "takes no ConditionExpressions"),
])
def test_create_recipe_refuses_a_bad_step(brew, unique, steps, says):
    name = unique("bad-recipe")
    code, status, message = error_of(lambda: brew.create_recipe(Name=name, Steps=[step("LOWER_CASE",
                                                                                   sourceColumn="name"), *steps]))
    assert (code, status) == ("ValidationException", 400)
    assert says in message and message.startswith("Recipe step 2")
    with pytest.raises(brew.exceptions.ResourceNotFoundException):       # nothing was recorded
        brew.describe_recipe(Name=name, RecipeVersion="LATEST_WORKING")


def test_update_recipe_refuses_a_bad_step_and_keeps_the_old_ones(brew, unique):
    name = unique("kept")
    good = [step("UPPER_CASE", sourceColumn="name")]
    brew.create_recipe(Name=name, Steps=good)
    code, status, _ = error_of(lambda: brew.update_recipe(Name=name, Steps=[step("NOT_AN_OPERATION")]))
    assert (code, status) == ("ValidationException", 400)
    assert brew.describe_recipe(Name=name, RecipeVersion="LATEST_WORKING")["Steps"] == good


# ------------------------------------------------------------------ runs that fail, writing nothing
def test_a_column_that_does_not_exist_fails_the_run(brew, s3, bucket, recipe_job):
    job, prefix = recipe_job([step("UPPER_CASE", sourceColumn="name"),
                              step("FILL_WITH_AVERAGE", sourceColumn="amount"),
                              step("LOWER_CASE", sourceColumn="surname")])
    run = failed_run(brew, job)
    assert run["ErrorMessage"].startswith("Recipe step 3 (LOWER_CASE): column 'surname' does not exist")
    assert "id, name, amount" in run["ErrorMessage"]
    assert "CompletedOn" in run
    assert objects(s3, bucket, prefix) == []


def test_a_condition_on_a_missing_column_fails_the_run(brew, s3, bucket, recipe_job):
    job, prefix = recipe_job([step("REMOVE_VALUES", [{"Condition": "IS_MISSING", "TargetColumn": "price"}],
                                   sourceColumn="amount")])
    assert "names column 'price', which does not exist" in failed_run(brew, job)["ErrorMessage"]
    assert objects(s3, bucket, prefix) == []


def test_a_text_step_on_a_number_column_fails_the_run(brew, s3, bucket, recipe_job):
    job, prefix = recipe_job([step("CAPITAL_CASE", sourceColumn="amount")])
    assert failed_run(brew, job)["ErrorMessage"] == \
        "Recipe step 1 (CAPITAL_CASE): CAPITAL_CASE works on string columns; column 'amount' is int"
    assert objects(s3, bucket, prefix) == []


def test_a_dataset_whose_s3_object_is_missing_fails_the_run(brew, s3, bucket, unique, recipe_job):
    gone = unique("gone")
    brew.create_dataset(Name=gone, Format="CSV",
                        Input={"S3InputDefinition": {"Bucket": bucket, "Key": "in/not-there.csv"}})
    job, prefix = recipe_job([step("UPPER_CASE", sourceColumn="name")], dataset_name=gone)
    message = failed_run(brew, job)["ErrorMessage"]
    assert message.startswith(f"The dataset's S3 input s3://{bucket}/in/not-there.csv cannot be read: NoSuchKey")
    assert objects(s3, bucket, prefix) == []


def test_a_missing_output_bucket_or_partition_column_fails_the_run(brew, s3, bucket, unique, recipe_job):
    job, _ = recipe_job([step("UPPER_CASE", sourceColumn="name")], Bucket=unique("no-such-bucket"))
    assert "output bucket" in failed_run(brew, job)["ErrorMessage"]
    job, prefix = recipe_job([step("UPPER_CASE", sourceColumn="name")], PartitionColumns=["region"])
    assert failed_run(brew, job)["ErrorMessage"].startswith("Output partition column 'region' does not exist")
    assert objects(s3, bucket, prefix) == []


def test_a_profile_of_a_missing_object_fails(brew, s3, bucket, unique):
    gone, job = unique("gone"), unique("profile")
    brew.create_dataset(Name=gone, Input={"S3InputDefinition": {"Bucket": bucket, "Key": "in/none/"}})
    brew.create_profile_job(Name=job, DatasetName=gone, RoleArn=ROLE, OutputLocation={"Bucket": bucket, "Key": job})
    assert "holds no objects" in failed_run(brew, job)["ErrorMessage"]
    assert objects(s3, bucket, job) == []


# ------------------------------------------------------------------ requests AWS refuses
def test_unknown_jobs_and_runs(brew, recipe_job):
    assert error_of(lambda: brew.start_job_run(Name="no-such-job"))[:2] == ("ResourceNotFoundException", 404)
    assert error_of(lambda: brew.list_job_runs(Name="no-such-job"))[:2] == ("ResourceNotFoundException", 404)
    job, _ = recipe_job([step("UPPER_CASE", sourceColumn="name")])
    code, status, message = error_of(lambda: brew.describe_job_run(Name=job, RunId="db_nope"))
    assert (code, status) == ("ResourceNotFoundException", 404) and "db_nope" in message
    assert error_of(lambda: brew.stop_job_run(Name=job, RunId="db_nope"))[:2] == ("ResourceNotFoundException", 404)


def test_stopping_a_run_that_ended(brew, recipe_job):
    job, _ = recipe_job([step("UPPER_CASE", sourceColumn="name")])
    run = wait_for_run(brew, job, brew.start_job_run(Name=job)["RunId"], timeout=120, poll=0.05)
    assert run["State"] == "SUCCEEDED"
    code, status, message = error_of(lambda: brew.stop_job_run(Name=job, RunId=run["RunId"]))
    assert (code, status) == ("ValidationException", 400) and "already ended (SUCCEEDED)" in message


def test_a_recipe_that_was_never_published(brew, bucket, dataset, unique):
    recipe, job = unique("draft"), unique("job")
    brew.create_recipe(Name=recipe, Steps=[step("UPPER_CASE", sourceColumn="name")])
    brew.create_recipe_job(Name=job, DatasetName=dataset, RecipeReference={"Name": recipe}, RoleArn=ROLE,
                           Outputs=[{"Location": {"Bucket": bucket, "Key": job}}])
    code, status, message = error_of(lambda: brew.start_job_run(Name=job))
    assert (code, status) == ("ResourceNotFoundException", 404) and "LATEST_PUBLISHED" in message
    assert brew.list_job_runs(Name=job)["JobRuns"] == []


def test_create_recipe_job_checks_what_it_names(brew, bucket, dataset, unique):
    recipe = unique("r")
    brew.create_recipe(Name=recipe, Steps=[step("UPPER_CASE", sourceColumn="name")])
    location = {"Bucket": bucket, "Key": "x/"}

    def create(**kwargs):
        args = dict(Name=unique("job"), DatasetName=dataset, RecipeReference={"Name": recipe}, RoleArn=ROLE,
                    Outputs=[{"Location": location}])
        args.update(kwargs)
        return lambda: brew.create_recipe_job(**args)

    assert error_of(create(DatasetName="no-such-dataset"))[:2] == ("ResourceNotFoundException", 404)
    assert error_of(create(RecipeReference={"Name": "no-such-recipe"}))[:2] == ("ResourceNotFoundException", 404)
    assert error_of(create(Outputs=[{"Location": location, "Format": "XLSX"}]))[:2] == ("ValidationException", 400)
    assert error_of(create(Outputs=[{"Location": location, "CompressionFormat": "RAR"}]))[:2] == \
        ("ValidationException", 400)
    assert error_of(create(Outputs=[{"Location": location, "Format": "CSV",
                                     "FormatOptions": {"Csv": {"Delimiter": "||"}}}]))[:2] == \
        ("ValidationException", 400)
    assert error_of(create(Outputs=[{"Location": location, "Format": "XML"}]))[:2] == ("NotImplemented", 501)
    taken = unique("taken")
    create(Name=taken)()
    assert error_of(create(Name=taken))[:2] == ("ConflictException", 409)


def test_an_operation_this_stand_in_does_not_run_is_refused_at_start(brew, recipe_job):
    job, _ = recipe_job([step("SORT", expressions='[{"sourceColumn":"name","ordering":"ASCENDING"}]')])
    code, status, message = error_of(lambda: brew.start_job_run(Name=job))
    assert (code, status) == ("NotImplemented", 501) and "SORT" in message
    assert brew.list_job_runs(Name=job)["JobRuns"] == []


def test_too_many_runs_at_once(brew, stack, recipe_job):
    hooks = stack.local.databrew
    jobs = [recipe_job([step("UPPER_CASE", sourceColumn="name")])[0] for _ in range(MAX_ACTIVE_RUNS + 1)]
    started = []
    hooks.hold_runs()
    try:
        for job in jobs[:MAX_ACTIVE_RUNS]:
            started.append((job, brew.start_job_run(Name=job)["RunId"]))
        code, status, message = error_of(lambda: brew.start_job_run(Name=jobs[-1]))
        assert (code, status) == ("ServiceQuotaExceededException", 402)
        assert brew.list_job_runs(Name=jobs[-1])["JobRuns"] == []
        for job, run_id in started:
            brew.stop_job_run(Name=job, RunId=run_id)
    finally:
        hooks.release_runs()
    assert {wait_for_run(brew, job, run_id, timeout=60, poll=0.05)["State"] for job, run_id in started} == \
        {"STOPPED"}


def test_inputs_and_checks_this_stand_in_does_not_run(brew, bucket, dataset, unique, recipe_job):
    excel = unique("excel")
    brew.create_dataset(Name=excel, Format="EXCEL", Input={"S3InputDefinition": {"Bucket": bucket, "Key": "in/x.xlsx"}})
    job, _ = recipe_job([step("UPPER_CASE", sourceColumn="name")], dataset_name=excel)
    code, status, message = error_of(lambda: brew.start_job_run(Name=job))
    assert (code, status) == ("NotImplemented", 501) and "EXCEL" in message

    checked = unique("rules")
    brew.create_profile_job(Name=checked, DatasetName=dataset, RoleArn=ROLE, OutputLocation={"Bucket": bucket},
                            ValidationConfigurations=[{"RulesetArn": "arn:aws:databrew:us-east-1:123456789012:"
                                                                     "ruleset/checks"}])
    assert error_of(lambda: brew.start_job_run(Name=checked))[:2] == ("NotImplemented", 501)

    code, status, message = error_of(lambda: brew.create_profile_job(
        Name=unique("sampled"), DatasetName=dataset, RoleArn=ROLE, OutputLocation={"Bucket": bucket},
        JobSample={"Mode": "SOME_ROWS", "Size": 5}))
    assert (code, status) == ("ValidationException", 400) and "JobSample Mode" in message
