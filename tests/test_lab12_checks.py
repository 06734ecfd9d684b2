"""The checks of lab 12 (``labs/12_capstone``): the notification stage and the idempotent load.

One lab pipeline per module (``labchecks.build_lab``). The wiring check must
pass the lab's solution and name each classic mistake (no notification, the
wrong event type, a filter that misses Firehose's objects or lets its errors
in, SQS instead of SNS, no subscription, a missing policy, no event source
mapping). Then one real run with faults (the reporter crashes, one delivery
is written twice): the reports check passes, and the load check passes the
solution's COPY + dedupe + MERGE and fails, with measured numbers, a plain
INSERT, a MERGE without dedupe and a COPY from the wrong prefix.
"""
from __future__ import annotations

import json

import pytest

from localaws.capstone import labchecks
from localaws.capstone import pipeline as stages
from localaws.capstone.queries import redshift_sql
from localaws.grading import LabCheckFailed

COLUMNS = ", ".join(name for name, _ in stages.COLUMNS)


@pytest.fixture(scope="module")
def lab(stack):
    p = labchecks.build_lab(stack, prefix="lab12t")
    yield p
    labchecks.destroy_lab(stack, p)


def unwire(stack, p) -> None:
    """Back to the lab's starting point: no notification, no subscription, no mapping, no policies."""
    s3, sns, sqs, lam = (stack.client(n) for n in ("s3", "sns", "sqs", "lambda"))
    s3.put_bucket_notification_configuration(Bucket=p.ingest_bucket, NotificationConfiguration={})
    for mapping in lam.list_event_source_mappings(FunctionName=p.reporter_function)["EventSourceMappings"]:
        lam.delete_event_source_mapping(UUID=mapping["UUID"])
    for topic in sns.list_topics()["Topics"]:
        if topic["TopicArn"].split(":")[-1].startswith(p.prefix):
            sns.delete_topic(TopicArn=topic["TopicArn"])
    sqs.set_queue_attributes(QueueUrl=p.reports_queue_url, Attributes={"Policy": ""})


def wire(stack, p, *, events=("s3:ObjectCreated:*",), rules=({"Name": "prefix", "Value": "telemetry/"},),
         via="topic", subscribe=True, topic_policy=True, queue_policy=True, mapping=True) -> None:
    """The lab's solution, with one thing changed when asked."""
    unwire(stack, p)
    s3, sns, sqs, lam = (stack.client(n) for n in ("s3", "sns", "sqs", "lambda"))
    topic_arn = sns.create_topic(Name=f"{p.prefix}-new-objects")["TopicArn"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=p.reports_queue_url, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    if topic_policy:
        sns.set_topic_attributes(TopicArn=topic_arn, AttributeName="Policy", AttributeValue=json.dumps({
            "Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Principal": {"Service": "s3.amazonaws.com"}, "Action": "sns:Publish",
                "Resource": topic_arn}]}))
    if queue_policy:
        sqs.set_queue_attributes(QueueUrl=p.reports_queue_url, Attributes={"Policy": json.dumps({
            "Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Principal": {"Service": "sns.amazonaws.com"}, "Action": "sqs:SendMessage",
                "Resource": queue_arn, "Condition": {"ArnEquals": {"aws:SourceArn": topic_arn}}}]})})
    if subscribe:
        sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)
    entry = {"Events": list(events)}
    if rules:
        entry["Filter"] = {"Key": {"FilterRules": list(rules)}}
    config = ({"TopicConfigurations": [{"TopicArn": topic_arn, **entry}]} if via == "topic"
              else {"QueueConfigurations": [{"QueueArn": queue_arn, **entry}]})
    s3.put_bucket_notification_configuration(Bucket=p.ingest_bucket, NotificationConfiguration=config)
    if mapping:
        lam.create_event_source_mapping(EventSourceArn=queue_arn, FunctionName=p.reporter_function, BatchSize=10)


# ------------------------------------------------------------------ step 1: read back
def test_the_solution_wiring_passes(stack, lab):
    wire(stack, lab)
    found = labchecks.check_wiring(stack, lab)
    assert list(found.index) == ["bucket -> topic", "topic -> queue", "policies", "queue -> function"]
    assert "lab12t-reporter, BatchSize 10" in found.loc["queue -> function", "found"]


@pytest.mark.parametrize("mistake, message", [
    ({"via": None}, "has no event notification"),
    ({"via": "queue"}, "notifies an SQS queue directly, not an SNS topic"),
    ({"events": ["s3:ObjectRemoved:*"]}, "none of them is an object creation"),
    ({"events": ["s3:ObjectCreated:Put"]}, "multipart uploads"),
    ({"rules": [{"Name": "suffix", "Value": ".parquet"}]}, "does not match Firehose's objects"),
    ({"rules": []}, "also matches Firehose's error objects"),
    ({"subscribe": False}, "is not subscribed to the topic"),
    ({"topic_policy": False}, "does not let s3.amazonaws.com sns:Publish"),
    ({"queue_policy": False}, "does not let sns.amazonaws.com sqs:SendMessage"),
    ({"mapping": False}, "no event source mapping reads"),
], ids=["no-notification", "direct-queue", "wrong-event", "put-only", "parquet-suffix", "no-filter",
        "not-subscribed", "no-topic-policy", "no-queue-policy", "no-mapping"])
def test_each_wiring_mistake_gets_its_message(stack, lab, mistake, message):
    if mistake.get("via", "topic") is None:
        unwire(stack, lab)
    else:
        wire(stack, lab, **mistake)
    with pytest.raises(LabCheckFailed, match=message):
        labchecks.check_wiring(stack, lab)


def test_compare_reports_counts_what_is_missing():
    curated = ["telemetry/dt=2026-01-01/a", "telemetry/dt=2026-01-01/b"]
    labchecks.compare_reports(curated, [f"reports/{k}.json" for k in curated], 0)
    with pytest.raises(LabCheckFailed, match=r"2 of 2 curated objects have no report \(none has one"):
        labchecks.compare_reports(curated, [], 0)
    with pytest.raises(LabCheckFailed, match=r"1 of 2 curated objects have no report, e.g. telemetry/dt=2026-01-01/b"):
        labchecks.compare_reports(curated, ["reports/telemetry/dt=2026-01-01/a.json"], 0)
    with pytest.raises(LabCheckFailed, match="2 message\\(s\\) reached the dead-letter queue"):
        labchecks.compare_reports(curated, [f"reports/{k}.json" for k in curated], 2)


# ------------------------------------------------------------------ the run, then step 2
@pytest.fixture(scope="module")
def ran(stack, lab):
    wire(stack, lab)
    return labchecks.run_with_faults(stack, lab)


def test_the_solution_is_reported_once_per_object_despite_the_crash(stack, lab, ran):
    assert ran["sent"] > 0
    measured = labchecks.check_reports(stack, lab)
    assert measured["measured"].to_dict() == {"reports per curated object": 1.0,
                                              "curated objects without a report": 0, "dead-lettered messages": 0}
    assert stack.local.firehose.stats(lab.delivery_stream)["duplicate_deliveries"] == 1


SOLUTION = [
    "DELETE FROM telemetry_staging",
    "DELETE FROM telemetry_batch",
    "COPY telemetry_staging FROM 's3://{bucket}/telemetry/' IAM_ROLE '{role}' FORMAT AS PARQUET",
    f"INSERT INTO telemetry_batch SELECT {COLUMNS} FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY record_id "
    "ORDER BY seq) AS copy_no FROM telemetry_staging) AS numbered WHERE copy_no = 1",
    "MERGE INTO telemetry USING telemetry_batch s ON telemetry.record_id = s.record_id "
    "WHEN MATCHED THEN UPDATE SET " + ", ".join(f"{c} = s.{c}" for c, _ in stages.COLUMNS if c != "record_id")
    + f" WHEN NOT MATCHED THEN INSERT ({COLUMNS}) VALUES (" + ", ".join(f"s.{c}" for c, _ in stages.COLUMNS) + ")",
]


def statements(lab, template):
    return [s.format(bucket=lab.ingest_bucket, role=lab.role_arn) for s in template]


@pytest.fixture
def empty_table(stack, lab, ran):
    redshift_sql(stack, lab, ["DELETE FROM telemetry"])
    yield


def test_the_solution_load_is_idempotent(stack, lab, ran, empty_table):
    runs = labchecks.check_load(stack, lab, statements(lab, SOLUTION))
    assert runs["rows"].tolist() == runs["record_ids"].tolist() == [ran["sent"]] * 2


def test_a_plain_insert_loads_duplicates_and_again_on_a_rerun(stack, lab, ran, empty_table):
    insert = SOLUTION[:3] + ["INSERT INTO telemetry SELECT * FROM telemetry_staging"]
    with pytest.raises(LabCheckFailed) as failed:
        labchecks.check_load(stack, lab, statements(lab, insert))
    message = str(failed.value)
    assert f"rows for {ran['sent']:,} record_ids after two runs" in message
    assert "an INSERT is not idempotent" in message and "delivered" in message and "rows twice" in message


def test_a_merge_without_dedupe_fails_on_the_duplicate_delivery(stack, lab, ran, empty_table):
    merge_only = SOLUTION[:3] + [SOLUTION[4].replace("telemetry_batch s", "telemetry_staging s")]
    with pytest.raises(LabCheckFailed, match="keep one row per record_id"):
        labchecks.check_load(stack, lab, statements(lab, merge_only))


def test_a_load_without_copy_or_from_a_wrong_prefix_is_caught(stack, lab, ran, empty_table):
    no_copy = SOLUTION[:2] + SOLUTION[3:]
    with pytest.raises(LabCheckFailed, match=rf"{ran['sent']:,} of {ran['sent']:,} delivered records are not in"):
        labchecks.check_load(stack, lab, statements(lab, no_copy))
    wrong = [s.replace("/telemetry/'", "/curated/'") for s in SOLUTION]
    with pytest.raises(LabCheckFailed, match=r"the first run of your statements failed: .*S3 prefix 'curated/' "
                                             r"does not exist"):
        labchecks.check_load(stack, lab, statements(lab, wrong))
    with pytest.raises(LabCheckFailed, match="must be a list of SQL strings"):
        labchecks.check_load(stack, lab, "MERGE ...")
