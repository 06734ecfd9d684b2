"""The checks of lab 08 (``labs/08_glue``).

The data generator and the diagnoses of step 2 are tested on hand-made runs
(what :func:`run_job_twice` would have seen: curated rows, objects read,
the bookmark), one per classic mistake, without Spark. Step 1's crawls cost
a fraction of a second, so its mistakes run for real on the session's stack.
The last tests run step 2 end to end on Spark: the lab's solution passes,
and a script without ``transformation_ctx`` reads everything again on its
second run.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from localaws.glue import labchecks
from localaws.glue.labchecks import DAYS, NEW_DAY, CrawlRun, JobCheck, JobRun
from localaws.grading import LabCheckFailed

OUTPUT = "s3://lake/curated/readings/"
FIRST, ALL = labchecks.landing_zone(DAYS), labchecks.landing_zone(DAYS + (NEW_DAY,))


# ------------------------------------------------------------------ the data
def test_the_landing_zone_is_seeded_and_messy():
    assert labchecks.landing_zone() == FIRST
    assert sorted(k for k in FIRST if k.startswith("vendor=b/day=2025-03-01/")) == [
        "vendor=b/day=2025-03-01/manifest.json", "vendor=b/day=2025-03-01/readings-0.json",
        "vendor=b/day=2025-03-01/readings-1.json"]
    first_line = FIRST["vendor=a/day=2025-03-01/readings-0.csv"].splitlines()[:2]
    assert first_line[0] == '"sensor_id";"reading_time";"temperature";"site"'
    assert first_line[1].startswith('"A-01";"2025-03-01 00:00:00";"') and '"Hall 1; Line A"' in first_line[1]
    raw = labchecks.raw_readings(FIRST)
    problems = raw["problem"].value_counts().to_dict()
    assert problems["bad temperature"] >= 5 and problems["sent twice"] >= 5
    assert set(raw[raw["problem"] == "bad temperature"]["raw"]) >= {"ERR", "null", "9999.9"}
    late = raw[raw["reading_time"].dt.strftime("%Y-%m-%d") != raw["folder_day"]]
    assert len(late) == labchecks.LATE_READINGS * (len(DAYS) - 1)


def test_expected_readings_are_good_once_in_celsius_by_reading_day():
    expected = labchecks.expected_readings(FIRST)
    assert list(expected.columns) == labchecks.CURATED_COLUMNS + ["day"]
    assert 2_000 < len(expected) < 3_000
    assert not expected.duplicated(["sensor_id", "reading_time"]).any()
    assert expected["temperature_c"].between(*labchecks.VALID_CELSIUS).all()
    assert (expected["day"] == expected["reading_time"].dt.strftime("%Y-%m-%d")).all()
    assert sorted(expected["day"].unique()) == list(DAYS)        # late readings belong to the day before
    everything = labchecks.expected_readings(ALL)
    assert len(everything) - len(expected) == (everything["day"] == NEW_DAY).sum() + labchecks.LATE_READINGS


# ------------------------------------------------------------------ step 1: the crawl, for real
LAKE = "t-lab08-lake"
SEMI = {"CsvClassifier": {"Name": "t08-semi", "Delimiter": ";", "QuoteSymbol": '"', "ContainsHeader": "PRESENT"}}


def crawler(name, classifiers=("t08-semi",), exclusions=("**/manifest.json",), path="landing/"):
    target = {"Path": f"s3://{LAKE}/{path}"}
    if exclusions:
        target["Exclusions"] = list(exclusions)
    return {"Name": name, "Role": "arn:aws:iam::123456789012:role/glue", "DatabaseName": "t08_sensors",
            "Targets": {"S3Targets": [target]}, "Classifiers": list(classifiers)}


@pytest.fixture(scope="module")
def lake(stack):
    s3 = stack.client("s3")
    s3.create_bucket(Bucket=LAKE)
    labchecks.upload(s3, LAKE, FIRST)
    stack.client("glue").create_database(DatabaseInput={"Name": "t08_sensors"})
    return stack


def crawl_failure(stack, classifiers, spec) -> str:
    with pytest.raises(LabCheckFailed) as failed:
        labchecks.check_crawl(stack, classifiers, spec)
    return str(failed.value)


def test_the_solution_crawl_makes_two_partitioned_tables(lake):
    summary = labchecks.check_crawl(lake, [SEMI], crawler("t08-good"))
    assert summary.to_dict("index") == {
        "vendor_a": {"format": "csv", "columns": "sensor_id, reading_time, temperature, site",
                     "partitioned by": "day", "partitions": 3, "records": 1296},
        "vendor_b": {"format": "json", "columns": "sensor, ts, temp_f", "partitioned by": "day", "partitions": 3,
                     "records": 1309}}
    again = labchecks.check_crawl(lake, [SEMI], crawler("t08-good"))       # runs again from scratch
    assert again.equals(summary)


def test_without_a_classifier_vendor_a_has_no_header(lake):
    message = crawl_failure(lake, [], crawler("t08-none", classifiers=()))
    assert message.startswith("vendor_a has the columns ['col0', 'col1', 'col2', 'col3'] instead of")
    assert "recordCount, 1,302, counts the 6 header lines" in message
    assert "every vendor A value is a string" in message and "ContainsHeader 'PRESENT'" in message


def test_a_classifier_the_crawler_does_not_list_is_named(lake):
    message = crawl_failure(lake, [SEMI], crawler("t08-unlisted", classifiers=()))
    assert "You created 't08-semi', but the crawler's Classifiers do not name" in message


@pytest.mark.parametrize("spec, expected", [
    ({"Delimiter": ";", "QuoteSymbol": "'", "ContainsHeader": "PRESENT"}, "quotes with \"'\""),
    ({"Delimiter": ";", "QuoteSymbol": '"'}, "has ContainsHeader 'UNKNOWN'"),
], ids=["quote", "header-unknown"])
def test_a_classifier_that_does_not_match_says_why(lake, spec, expected):
    classifier = {"CsvClassifier": {"Name": "t08-wrong", **spec}}
    message = crawl_failure(lake, [classifier], crawler("t08-wrong", classifiers=("t08-wrong",)))
    assert message.startswith("vendor_a has the columns ['col0'") and expected in message


def test_a_comma_classifier_claims_the_json_files(lake):
    comma = {"CsvClassifier": {"Name": "t08-comma", "Delimiter": ",", "ContainsHeader": "PRESENT"}}
    message = crawl_failure(lake, [comma], crawler("t08-comma", classifiers=("t08-comma",)))
    assert message.startswith("vendor B's JSON files were classified as CSV (6 table(s)")
    assert "your CSV classifier 't08-comma' splits each JSON line at its commas" in message


def test_manifests_split_vendor_b_into_a_table_per_file(lake):
    message = crawl_failure(lake, [SEMI], crawler("t08-manifest", exclusions=()))
    assert message.startswith("the crawl made 9 table(s) of single files")
    assert "manifest.json (3 found)" in message and "['**/manifest.json']" in message


def test_a_day_folder_as_include_path_is_not_partitioned(lake):
    spec = crawler("t08-day", path="landing/vendor=a/day=2025-03-01/")
    message = crawl_failure(lake, [SEMI], spec)
    assert message.startswith("the crawl made tables of single days (day_2025_03_01): the day= folders were not "
                              "recognised as partitions")


def test_hand_made_catalogs_missing_a_partition_or_failed():
    table = {"location": "s3://l/landing/vendor=a/", "classification": "csv", "header_skipped": True,
             "columns": labchecks.EXPECTED_TABLES["vendor_a"]["columns"], "partition_keys": ["day"],
             "partitions": [(d,) for d in DAYS], "records": 1, "serde": {}}
    b = dict(table, location="s3://l/landing/vendor=b/", classification="json",
             columns=labchecks.EXPECTED_TABLES["vendor_b"]["columns"], partitions=[(d,) for d in DAYS[:2]])
    run = CrawlRun("db", "SUCCEEDED", tables={"vendor_a": table, "vendor_b": b})
    with pytest.raises(LabCheckFailed, match=r"vendor_b has the partitions \[\('2025-03-01',\), \('2025-03-02',\)\]"):
        labchecks.diagnose_crawl(run)
    with pytest.raises(LabCheckFailed, match="the crawl ended FAILED: Access denied"):
        labchecks.diagnose_crawl(CrawlRun("db", "FAILED", "Access denied"))
    with pytest.raises(LabCheckFailed, match="the crawl wrote no table"):
        labchecks.diagnose_crawl(CrawlRun("db", "SUCCEEDED"))


# ------------------------------------------------------------------ step 2: hand-made runs
def curated(files, **changes) -> pd.DataFrame:
    """The curated table of ``files`` as read back from S3 (``file`` keys under day= folders)."""
    frame = labchecks.expected_readings(files)
    frame["temperature_c"] = frame["temperature_c"].round(2)
    frame["file"] = "curated/readings/day=" + frame["day"] + "/part-0.snappy.parquet"
    for name, value in changes.items():
        frame[name] = value
    return frame


def job_check(option="job-bookmark-enable", bookmark=None, first=None, second=None, opened=None,
              state="SUCCEEDED") -> JobCheck:
    landing_first = sorted("landing/" + k for k in FIRST)
    landing_new = sorted("landing/" + k for k in ALL if k not in FIRST)
    new_data = {k for k in landing_new if not k.endswith("manifest.json")}
    result = JobCheck("curate", option, OUTPUT, landing_first=landing_first, landing_new=landing_new,
                      bookmark_after_first={"states": {"vendor_a": {}, "vendor_b": {}}} if bookmark is None else bookmark)
    result.first = JobRun("jr_1", state, "" if state == "SUCCEEDED" else "NameError: name 'F' is not defined",
                          metered=True, opened=set(landing_first))
    result.rows_first = curated(FIRST) if first is None else first
    result.second = JobRun("jr_2", "SUCCEEDED", metered=True, opened=new_data if opened is None else opened)
    result.rows_second = curated(ALL) if second is None else second
    return result


def job_failure(result: JobCheck) -> str:
    with pytest.raises(LabCheckFailed) as failed:
        labchecks.diagnose_job(result, FIRST, ALL)
    return str(failed.value)


def test_a_good_pair_of_runs_passes_and_is_summed_up():
    result = job_check()
    labchecks.diagnose_job(result, FIRST, ALL)
    summary = labchecks.job_summary(result)
    assert summary.loc["run 1", "objects read"] == 12 and summary.loc["run 2", "objects read"] == 4
    assert summary.loc["run 2", "rows in the table"] == len(labchecks.expected_readings(ALL))
    assert summary.loc["run 2", "rows added"] == (summary.loc["run 2", "rows in the table"]
                                                 - summary.loc["run 1", "rows in the table"])


def test_a_failed_run_shows_its_error():
    message = job_failure(job_check(state="FAILED"))
    assert message.startswith("the first run of the job ended FAILED: NameError: name 'F' is not defined")
    assert "/aws-glue/jobs/error, stream jr_1" in message


def everything_twice(**kwargs) -> JobCheck:
    twice = pd.concat([curated(FIRST), curated(ALL)], ignore_index=True)
    every = {"landing/" + k for k in ALL if not k.endswith("manifest.json")}
    return job_check(second=twice, opened=every, **kwargs)


@pytest.mark.parametrize("kwargs, expected", [
    ({"option": "job-bookmark-disable"}, "job-bookmark-disable (Glue's default when the argument is missing)"),
    ({"option": "job-bookmark-pause"}, "job-bookmark-pause: a run reads what is new since the last committed"),
    ({"bookmark": None, "option": "job-bookmark-enable"}, None),
    ({"bookmark": {}, "option": "job-bookmark-enable"}, "source(s) none"),
], ids=["disabled", "paused", "good-bookmark-but-reread", "no-ctx"])
def test_a_second_run_that_reads_everything_again_says_why(kwargs, expected):
    result = everything_twice(**kwargs)
    message = job_failure(result)
    assert message.startswith("The second run read 12 of the 12 objects the first run had already processed, and "
                              "2,584 readings are now in the table twice.")
    if expected:
        assert expected in message
    else:
        assert "vendor A and B's objects were read again" in message and "transformation_ctx" in message


def test_no_commit_is_named_when_there_is_no_bookmark_entry():
    result = everything_twice()
    result.bookmark_after_first = None
    assert "The first run committed no bookmark (GetJobBookmark finds no entry)" in job_failure(result)
    assert "job.commit()" in job_failure(result)


def test_one_source_without_transformation_ctx_is_named():
    old_a = {"landing/" + k for k in FIRST if k.startswith("vendor=a")}
    new = {"landing/" + k for k in ALL if k not in FIRST and not k.endswith("manifest.json")}
    a_rows = curated(FIRST)[lambda f: f["vendor"] == "a"]
    result = job_check(bookmark={"states": {"vendor_b": {}}}, opened=old_a | new,
                       second=pd.concat([curated(ALL), a_rows], ignore_index=True))
    message = job_failure(result)
    assert message.startswith("The second run read 6 of the 12 objects")
    assert "for the source(s) ['vendor_b'], but vendor A's objects were read again" in message


def test_bad_rows_kept_are_shown_with_their_raw_value():
    raw = labchecks.raw_readings(FIRST)
    bad = raw[raw["raw"] == "9999.9"].iloc[[0]].assign(day=lambda f: f["reading_time"].dt.strftime("%Y-%m-%d"))
    bad["file"] = "curated/readings/day=" + bad["day"] + "/part-0.parquet"
    rows = pd.concat([curated(FIRST), bad[labchecks.CURATED_COLUMNS + ["day", "file"]]], ignore_index=True)
    message = job_failure(job_check(first=rows))
    assert message.startswith("After the first run, the table holds 1 reading that should have been dropped as bad")
    assert "(raw value '9999.9')" in message


def test_fahrenheit_not_converted_is_recognised():
    rows = curated(FIRST)
    b = rows["vendor"] == "b"
    rows.loc[b, "temperature_c"] = rows.loc[b, "temperature_c"] * 9 / 5 + 32
    message = job_failure(job_check(first=rows))
    assert "temperature_c is wrong for 1," in message and "(temp_f - 32) * 5 / 9" in message


def test_decimal_comma_readings_lost_are_recognised():
    rows = curated(FIRST)
    rows = rows[rows["vendor"] == "b"]
    message = job_failure(job_check(first=rows))
    assert "readings of the landing zone are missing from the table (vendor a: 1," in message
    assert "decimal comma" in message


def test_duplicates_sent_twice_are_named():
    rows = curated(FIRST)
    rows = pd.concat([rows, rows[rows["vendor"] == "b"].head(3)], ignore_index=True)
    message = job_failure(job_check(first=rows))
    assert message.startswith("After the first run, 3 readings are in the table more than once")
    assert "dropDuplicates(['sensor_id', 'reading_time'])" in message


def test_epoch_seconds_mistaken_for_milliseconds_is_recognised():
    rows = curated(FIRST)
    b = rows["vendor"] == "b"
    rows.loc[b, "reading_time"] = rows.loc[b, "reading_time"] + pd.Timedelta(days=1000)
    message = job_failure(job_check(first=rows))
    assert "at times the landing zone does not have" in message and "epoch milliseconds" in message


def test_partitions_by_folder_day_or_none_are_caught():
    rows = curated(FIRST)
    raw = labchecks.raw_readings(FIRST)
    late = set(map(tuple, raw[raw["reading_time"].dt.strftime("%Y-%m-%d") != raw["folder_day"]]
                   [["sensor_id", "reading_time"]].itertuples(index=False)))
    is_late = [(s, t) in late for s, t in zip(rows["sensor_id"], rows["reading_time"])]
    rows.loc[is_late, "day"] = (rows.loc[is_late, "reading_time"] + pd.Timedelta(days=1)).dt.strftime("%Y-%m-%d")
    message = job_failure(job_check(first=rows))
    assert message.startswith(f"After the first run, {sum(is_late)} readings are in the wrong day= partition")
    assert "not the folder a reading arrived in" in message
    flat = curated(FIRST, file="curated/readings/part-0.snappy.parquet")
    assert "not partitioned (no day= folders)" in job_failure(job_check(first=flat))
    by_vendor = curated(FIRST)
    by_vendor["file"] = "curated/readings/vendor=" + by_vendor["vendor"] + "/part-0.parquet"
    assert "partitioned by ['vendor']" in job_failure(job_check(first=by_vendor))


def test_new_objects_not_read_are_caught():
    result = job_check(opened={"landing/vendor=a/day=2025-03-04/readings-0.csv"})
    assert job_failure(result).startswith("the second run read 1 of the 4 new objects of day 2025-03-04")


# ------------------------------------------------------------------ step 2 end to end, on Spark
SOLUTION = Path(__file__).resolve().parents[1] / "labs" / "08_glue" / "08_glue.ipynb"
ROLE = "arn:aws:iam::123456789012:role/glue"


def solution_script() -> str:
    """The job script of the lab's solution notebook (the cell that defines JOB_SCRIPT)."""
    import nbformat
    nb = nbformat.read(str(SOLUTION), as_version=4)
    namespace: dict = {}
    for cell in nb.cells:
        if cell.cell_type == "code" and "JOB_SCRIPT = " in cell.source:
            given = {"print": lambda *args, **kwargs: None, "LAKE": LAKE, "ROLE": ROLE, "DATABASE": "t08_sensors",
                     "OUTPUT": f"s3://{LAKE}/curated/readings/"}
            exec(cell.source, given, namespace)
            return namespace["JOB_SCRIPT"]
    raise AssertionError("no JOB_SCRIPT cell in the solution")


def job_spec(name: str) -> dict:
    return {"Name": name, "Role": ROLE, "GlueVersion": "5.0", "WorkerType": "G.1X", "NumberOfWorkers": 2,
            "Command": {"Name": "glueetl", "ScriptLocation": f"s3://{LAKE}/scripts/{name}.py"},
            "DefaultArguments": {"--job-bookmark-option": "job-bookmark-enable", "--database": "t08_sensors",
                                 "--output": f"s3://{LAKE}/curated/{name}/"}}


@pytest.fixture(scope="module")
def crawled(lake):
    labchecks.check_crawl(lake, [SEMI], crawler("t08-job"))
    return "t08-job"


def test_the_solution_reads_only_the_new_day_on_its_second_run(lake, crawled):
    summary = labchecks.check_job(lake, job_spec("t08-solution"), solution_script(), crawled, LAKE,
                                  f"s3://{LAKE}/curated/t08-solution/")
    assert summary.loc["run 1"].to_dict() == {"landing objects": 12, "objects read": 12, "rows added": 2584,
                                              "rows in the table": 2584, "days in the table": 3}
    assert summary.loc["run 2", "objects read"] == 4
    assert summary.loc["run 2", "rows in the table"] == len(labchecks.expected_readings(ALL))
    entry = lake.client("glue").get_job_bookmark(JobName="t08-solution")["JobBookmarkEntry"]
    assert entry["Run"] == 2


def test_without_transformation_ctx_the_second_run_reads_everything_again(lake, crawled):
    script = solution_script().replace(', transformation_ctx="vendor_a"', "").replace(
        ', transformation_ctx="vendor_b"', "")
    assert "transformation_ctx" not in script
    with pytest.raises(LabCheckFailed) as failed:
        labchecks.check_job(lake, job_spec("t08-no-ctx"), script, crawled, LAKE, f"s3://{LAKE}/curated/t08-no-ctx/")
    message = str(failed.value)
    assert message.startswith("The second run read 12 of the 12 objects the first run had already processed, and "
                              "2,584 readings are now in the table twice.")
    assert "committed a bookmark for the source(s) none" in message
