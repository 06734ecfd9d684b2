"""The Glue plane's crawler API: states, classifiers, metrics, history, refusals.

The crawl itself (what tables come out) is tested in ``test_glue_crawler.py``;
here a crawler is driven only through boto3, as on AWS.
"""
from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from localaws.core.waiting import wait_until

ROLE = "arn:aws:iam::123456789012:role/glue-crawler"


def code(info) -> str:
    return info.value.response["Error"]["Code"]


@pytest.fixture(scope="module")
def glue(stack):
    return stack.client("glue")


@pytest.fixture(scope="module")
def lake(stack, glue):
    s3 = stack.client("s3")
    s3.create_bucket(Bucket="t-glue-api")
    for day in ("2024-01-01", "2024-01-02"):
        body = "id,city,amount\n" + "".join(f"{i},city-{i % 3},{i * 1.5}\n" for i in range(20))
        s3.put_object(Bucket="t-glue-api", Key=f"sales/day={day}/part-0.csv", Body=body.encode())
    glue.create_database(DatabaseInput={"Name": "t_glue_api"})
    return s3


def ready(glue, name):
    return glue.get_crawler(Name=name)["Crawler"]["State"] == "READY"


def test_a_crawl_goes_running_to_ready_and_reports_what_it_changed(glue, lake):
    glue.create_crawler(Name="sales", Role=ROLE, DatabaseName="t_glue_api",
                        Targets={"S3Targets": [{"Path": "s3://t-glue-api/sales/"}]})
    crawler = glue.get_crawler(Name="sales")["Crawler"]
    assert crawler["State"] == "READY" and "LastCrawl" not in crawler
    glue.start_crawler(Name="sales")
    assert glue.get_crawler(Name="sales")["Crawler"]["State"] in ("RUNNING", "STOPPING")
    assert wait_until(lambda: ready(glue, "sales"), 120, poll=0.2)

    last = glue.get_crawler(Name="sales")["Crawler"]["LastCrawl"]
    assert last["Status"] == "SUCCEEDED" and last["LogGroup"] == "/aws-glue/crawlers"
    crawls = glue.list_crawls(CrawlerName="sales")["Crawls"]
    assert [c["State"] for c in crawls] == ["COMPLETED"] and crawls[0]["CrawlId"] == last["MessagePrefix"]
    summary = json.loads(crawls[0]["Summary"])
    assert summary["TABLE"]["ADD"]["Count"] == 1 and summary["PARTITION"]["ADD"]["Count"] == 2
    metrics = glue.get_crawler_metrics(CrawlerNameList=["sales"])["CrawlerMetricsList"][0]
    assert metrics["TablesCreated"] == 1 and metrics["LastRuntimeSeconds"] > 0 and not metrics["StillEstimating"]
    table = glue.get_table(DatabaseName="t_glue_api", Name="sales")["Table"]
    assert [k["Name"] for k in table["PartitionKeys"]] == ["day"]


def test_start_while_running_delete_while_running_and_stop_when_ready_are_refused(glue, lake):
    glue.create_crawler(Name="busy", Role=ROLE, DatabaseName="t_glue_api",
                        Targets={"S3Targets": [{"Path": "s3://t-glue-api/sales/"}]}, TablePrefix="busy_")
    with pytest.raises(ClientError) as info:
        glue.stop_crawler(Name="busy")
    assert code(info) == "CrawlerNotRunningException"
    glue.start_crawler(Name="busy")
    if not ready(glue, "busy"):           # the crawl may already be over on a fast machine
        for call in (lambda: glue.start_crawler(Name="busy"), lambda: glue.delete_crawler(Name="busy"),
                     lambda: glue.update_crawler(Name="busy", TablePrefix="x_")):
            with pytest.raises(ClientError) as info:
                call()
            assert code(info) == "CrawlerRunningException" or ready(glue, "busy")
    assert wait_until(lambda: ready(glue, "busy"), 120, poll=0.2)
    glue.delete_crawler(Name="busy")
    with pytest.raises(ClientError) as info:
        glue.start_crawler(Name="busy")
    assert code(info) == "EntityNotFoundException"


def test_classifiers_are_kept_and_a_crawler_naming_a_missing_one_cannot_start(glue, lake):
    glue.create_classifier(CsvClassifier={"Name": "t-pipes", "Delimiter": "|", "ContainsHeader": "PRESENT"})
    glue.create_classifier(GrokClassifier={"Name": "t-grok", "Classification": "applog",
                                           "GrokPattern": "%{LOGLEVEL:level} %{GREEDYDATA:message}"})
    got = glue.get_classifier(Name="t-pipes")["Classifier"]["CsvClassifier"]
    assert got["Delimiter"] == "|" and got["Version"] == 1
    names = [next(iter(c.values()))["Name"] for c in glue.get_classifiers()["Classifiers"]]
    assert {"t-pipes", "t-grok"} <= set(names)
    glue.update_classifier(CsvClassifier={"Name": "t-pipes", "Delimiter": ";"})
    assert glue.get_classifier(Name="t-pipes")["Classifier"]["CsvClassifier"]["Version"] == 2
    for bad in ({"CsvClassifier": {"Name": "t-pipes"}},                        # exists
                {},                                                            # no kind
                {"CsvClassifier": {"Name": "two"}, "JsonClassifier": {"Name": "two", "JsonPath": "$[*]"}}):
        with pytest.raises(ClientError) as info:
            glue.create_classifier(**bad)
        assert code(info) in ("AlreadyExistsException", "InvalidInputException")
    glue.delete_classifier(Name="t-grok")
    with pytest.raises(ClientError) as info:
        glue.get_classifier(Name="t-grok")
    assert code(info) == "EntityNotFoundException"

    glue.create_crawler(Name="orphan", Role=ROLE, DatabaseName="t_glue_api", Classifiers=["t-grok"],
                        Targets={"S3Targets": [{"Path": "s3://t-glue-api/sales/"}]})
    with pytest.raises(ClientError) as info:
        glue.start_crawler(Name="orphan")
    assert code(info) == "EntityNotFoundException"
    assert glue.get_crawler(Name="orphan")["Crawler"]["State"] == "READY"


def test_update_crawler_changes_the_target_and_the_version(glue, lake):
    glue.create_crawler(Name="moving", Role=ROLE, DatabaseName="t_glue_api",
                        Targets={"S3Targets": [{"Path": "s3://t-glue-api/nowhere/"}]})
    glue.update_crawler(Name="moving", Targets={"S3Targets": [{"Path": "s3://t-glue-api/sales/"}]},
                        TablePrefix="moved_")
    crawler = glue.get_crawler(Name="moving")["Crawler"]
    assert crawler["Targets"]["S3Targets"][0]["Path"] == "s3://t-glue-api/sales/"
    assert crawler["TablePrefix"] == "moved_" and crawler["Version"] == 2
