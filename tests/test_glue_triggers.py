"""Glue triggers fire: on demand, on a cron schedule (on the stack's clock), on a crawl's end."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
from botocore.exceptions import ClientError

from localaws.core.waiting import wait_until
from localaws.glue.errors import InvalidInputException
from localaws.glue.triggers import parse_cron

ROLE = "arn:aws:iam::123456789012:role/glue"


def code(info) -> str:
    return info.value.response["Error"]["Code"]


def test_cron_expressions_name_the_minutes_glue_names():
    at = datetime(2026, 11, 30, 9, 5, tzinfo=timezone.utc)          # a Monday
    assert parse_cron("cron(0 2 * * ? *)").next_after(at) == datetime(2026, 12, 1, 2, 0, tzinfo=timezone.utc)
    assert parse_cron("cron(*/15 * * * ? *)").next_after(at) == at.replace(minute=15)
    assert parse_cron("cron(0 8 ? * MON-FRI *)").next_after(at) == datetime(2026, 12, 1, 8, 0, tzinfo=timezone.utc)
    assert parse_cron("cron(30 6 ? * SUN *)").next_after(at) == datetime(2026, 12, 6, 6, 30, tzinfo=timezone.utc)
    assert parse_cron("cron(0 0 1 JAN ? *)").next_after(at) == datetime(2027, 1, 1, 0, 0, tzinfo=timezone.utc)
    for bad in ("cron(0 2 * * *)", "rate(1 day)", "cron(0 25 * * ? *)", "cron(0 2 1 * MON *)"):
        with pytest.raises(InvalidInputException):
            parse_cron(bad)


@pytest.fixture(scope="module")
def glue(stack):
    glue = stack.client("glue")
    stack.client("s3").create_bucket(Bucket="t-glue-trig")
    stack.client("s3").put_object(Bucket="t-glue-trig", Key="raw/a.csv", Body=b"id,v\n1,2\n")
    glue.create_database(DatabaseInput={"Name": "t_glue_trig"})
    for name in ("first", "second", "nightly"):
        glue.create_crawler(Name=f"trig-{name}", Role=ROLE, DatabaseName="t_glue_trig", TablePrefix=f"{name}_",
                            Targets={"S3Targets": [{"Path": "s3://t-glue-trig/raw/"}]})
    return glue


def crawls(glue, name):
    return glue.list_crawls(CrawlerName=name)["Crawls"]


def test_on_demand_and_conditional_triggers_chain_two_crawlers(stack, glue):
    glue.create_trigger(Name="t-after-first", Type="CONDITIONAL", StartOnCreation=True,
                        Predicate={"Conditions": [{"LogicalOperator": "EQUALS", "CrawlerName": "trig-first",
                                                   "CrawlState": "SUCCEEDED"}]},
                        Actions=[{"CrawlerName": "trig-second"}])
    glue.create_trigger(Name="t-go", Type="ON_DEMAND", Actions=[{"CrawlerName": "trig-first"}])
    assert glue.get_trigger(Name="t-after-first")["Trigger"]["State"] == "ACTIVATED"
    glue.start_trigger(Name="t-go")
    assert wait_until(lambda: [c["State"] for c in crawls(glue, "trig-second")] == ["COMPLETED"], 120, poll=0.3)
    assert [c["State"] for c in crawls(glue, "trig-first")] == ["COMPLETED"]
    fired = stack.local.glue.fired()
    assert [(f["Trigger"], f["CrawlerName"]) for f in fired if f["Trigger"].startswith("t-")] == \
        [("t-go", "trig-first"), ("t-after-first", "trig-second")]


def test_a_scheduled_trigger_fires_when_the_advanced_clock_passes_its_time(stack, glue):
    clock = stack.local.clock
    clock.freeze()
    try:
        glue.create_trigger(Name="t-nightly", Type="SCHEDULED", Schedule="cron(0/10 * * * ? *)",
                            Actions=[{"CrawlerName": "trig-nightly"}], StartOnCreation=True)
        assert wait_until(lambda: stack.local.glue.fired("t-nightly") == [] and
                          ("us-east-1", "t-nightly") in stack.context.registry.planes["glue"].triggers._next, 10)
        clock.advance(600)                     # passes one whole ten minutes (the clock of the test
        #                                        session moves little: other tests share it)
        assert wait_until(lambda: len(stack.local.glue.fired("t-nightly")) == 1, 20, poll=0.2)
        assert "at " in stack.local.glue.fired("t-nightly")[0]["Reason"]
        assert wait_until(lambda: glue.get_crawler(Name="trig-nightly")["Crawler"]["State"] == "READY", 60)
        glue.stop_trigger(Name="t-nightly")
        clock.advance(600)
        assert wait_until(lambda: ("us-east-1", "t-nightly") not in
                          stack.context.registry.planes["glue"].triggers._next, 10)
        assert len(stack.local.glue.fired("t-nightly")) == 1      # deactivated: no second run
    finally:
        clock.resume()


def test_bad_triggers_are_refused_and_nothing_is_kept(glue):
    bad = [
        dict(Name="t-bad-cron", Type="SCHEDULED", Schedule="cron(0 2 * * *)", Actions=[{"CrawlerName": "trig-first"}]),
        dict(Name="t-no-pred", Type="CONDITIONAL", Actions=[{"CrawlerName": "trig-first"}]),
        dict(Name="t-no-job", Type="ON_DEMAND", Actions=[{"JobName": "no-such-job"}]),
    ]
    for spec in bad:
        with pytest.raises(ClientError) as info:
            glue.create_trigger(**spec)
        assert code(info) in ("InvalidInputException", "EntityNotFoundException"), spec
        with pytest.raises(ClientError):
            glue.get_trigger(Name=spec["Name"])
    glue.create_trigger(Name="t-dup", Type="ON_DEMAND", Actions=[{"CrawlerName": "trig-first"}])
    with pytest.raises(ClientError) as info:
        glue.create_trigger(Name="t-dup", Type="ON_DEMAND", Actions=[{"CrawlerName": "trig-first"}])
    assert code(info) == "AlreadyExistsException"


SHELL_SCRIPT = b"""
import sys, boto3
boto3.client("s3").put_object(Bucket="t-glue-trig", Key="out/argv.txt", Body=" ".join(sys.argv[1:]).encode())
"""


def test_a_workflow_run_chains_a_crawl_and_a_job_and_counts_its_actions(stack, glue):
    s3 = stack.client("s3")
    s3.put_object(Bucket="t-glue-trig", Key="scripts/shell.py", Body=SHELL_SCRIPT)
    glue.create_job(Name="t-wf-shell", Role=ROLE, Command={"Name": "pythonshell", "PythonVersion": "3.9",
                                                          "ScriptLocation": "s3://t-glue-trig/scripts/shell.py"})
    glue.create_workflow(Name="t-nightly-load")
    glue.create_trigger(Name="t-wf-start", WorkflowName="t-nightly-load", Type="ON_DEMAND",
                        Actions=[{"CrawlerName": "trig-first"}])
    glue.create_trigger(Name="t-wf-then", WorkflowName="t-nightly-load", Type="CONDITIONAL", StartOnCreation=True,
                        Predicate={"Conditions": [{"LogicalOperator": "EQUALS", "CrawlerName": "trig-first",
                                                   "CrawlState": "SUCCEEDED"}]},
                        Actions=[{"JobName": "t-wf-shell"}])
    run_id = glue.start_workflow_run(Name="t-nightly-load")["RunId"]

    def run():
        return glue.get_workflow_run(Name="t-nightly-load", RunId=run_id)["Run"]
    assert wait_until(lambda: run()["Status"] == "COMPLETED", 180, poll=0.5), run()
    stats = run()["Statistics"]
    assert (stats["TotalActions"], stats["SucceededActions"], stats["FailedActions"]) == (2, 2, 0)
    argv = s3.get_object(Bucket="t-glue-trig", Key="out/argv.txt")["Body"].read().decode()
    assert f"--WORKFLOW_RUN_ID {run_id}" in argv and "--WORKFLOW_NAME t-nightly-load" in argv
