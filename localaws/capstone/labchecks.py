"""Checks for lab 12 (``labs/12_capstone``): the missing stage and the idempotent load.

They live here, not in the lab's check cells, so that a check cell does not
show the answer. Each raises ``localaws.grading.LabCheckFailed`` with a
message that says what was found, with the numbers measured.

**Step 0**: :func:`build_lab` builds the capstone pipeline (``pipeline.py``'s
stage functions) without the notification stage; :func:`destroy_lab` deletes it.

**Step 1 (S3 event -> SNS -> SQS -> reporter)** is checked twice:

- :func:`check_wiring` reads the configuration back through the APIs
  (GetBucketNotificationConfiguration, the topic's subscriptions and policy,
  the queue's policy, the function's event source mappings) and names the
  classic mistakes: no notification, the wrong event type, a filter that
  misses Firehose's objects (a ``.parquet`` suffix: Firehose adds no
  extension) or lets its error objects in, a queue that is not subscribed, a
  missing resource policy (AWS enforces them; the local stack does not, so
  the check does), no event source mapping;
- :func:`check_reports` runs the pipeline (:func:`run_with_faults`: a few
  simulated minutes, the reporter's process killed mid-batch, one Firehose
  delivery written twice) and counts: every curated object must have exactly
  one report, the dead-letter queue must be empty.

**Step 2 (the warehouse load)**: :func:`check_load` runs the learner's SQL
statements *twice*, as a restarted job would, then compares the
``telemetry`` table with the distinct record_ids of the Parquet files: each
record once, none missing.
"""
from __future__ import annotations

import json

import pandas as pd

from localaws.core.waiting import wait_until
from localaws.grading import LabCheckFailed, check

from .queries import redshift_rows, redshift_sql, s3_keys
from .run import parquet_rows, run

#: Where Firehose writes curated objects and where it writes its errors (pipeline.py).
CURATED_PREFIX = "telemetry/"
FIREHOSE_KEY_EXAMPLE = "telemetry/dt=2026-01-01/lab12-to-s3-1-2026-11-30-08-00-00-<uuid>"
ERROR_KEY_EXAMPLE = "firehose-errors/processing-failed/2026/11/30/lab12-to-s3-1-...-<uuid>"
CREATED = ("s3:ObjectCreated:*", "s3:ObjectCreated:Put", "s3:ObjectCreated:CompleteMultipartUpload")
NOTIFICATIONS = "https://docs.aws.amazon.com/AmazonS3/latest/userguide/notification-how-to-filtering.html"


def _ids(values, limit: int = 5) -> str:
    values = sorted(values)
    shown = ", ".join(values[:limit])
    return shown + (f" and {len(values) - limit:,} more" if len(values) > limit else "")


# ------------------------------------------------------------------ step 0: the pipeline, one stage short
def build_lab(stack, prefix: str = "lab12"):
    """The capstone pipeline without the notification stage, for the lab (and its tests).

    3 devices, one shard; faults: the reporter's process killed in minute 1, one Firehose
    delivery written twice in minute 1 (no burst, no failing transform: the lab is about the
    notification stage and the load). Built: every stage but SNS and the event source mapping,
    and no Flink or QuickSight; then the ``reports`` queue (a dead-letter queue after 3 receives)
    and the reporter function, connected to nothing.
    """
    import json as _json

    from localaws.awslambda.package import zip_package

    from . import pipeline as stages
    from .pipeline import Faults, Pipeline

    sqs, lam = stack.client("sqs"), stack.client("lambda")
    p = Pipeline(prefix=prefix, region=stack.region, shards=1, devices=3,
                 faults=Faults(transform_fail_percent=0, burst=None, crash_reporter=1, duplicate_delivery=1))
    for stage in (stages.create_role, stages.create_buckets, stages.create_streams, stages.create_topic_rule,
                  stages.create_catalog, stages.create_transform, stages.create_firehose, stages.create_athena,
                  stages.create_redshift):
        stage(stack, p)
    p.reports_dlq_url = sqs.create_queue(QueueName=f"{prefix}-reports-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=p.reports_dlq_url, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    p.reports_queue_url = sqs.create_queue(QueueName=f"{prefix}-reports", Attributes={
        "VisibilityTimeout": "10",
        "RedrivePolicy": _json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "3"})})["QueueUrl"]
    p.reporter_function = f"{prefix}-reporter"
    lam.create_function(
        FunctionName=p.reporter_function, Runtime="python3.11", Role=p.role_arn,
        Handler="lambda_function.lambda_handler", Timeout=10, MemorySize=256,
        Code={"ZipFile": zip_package({"lambda_function.py": (stages.FUNCTIONS / "reporter.py").read_text()})},
        Environment={"Variables": {"DATABASE": p.database, "TABLE": p.table, "WORKGROUP": p.workgroup,
                                   "REPORT_BUCKET": p.reporting_bucket}})
    return p


def destroy_lab(stack, p) -> None:
    """Delete the lab's pipeline, the learner's mappings and every topic named after the prefix."""
    from .pipeline import destroy
    lam, sns = stack.client("lambda"), stack.client("sns")
    for mapping in lam.list_event_source_mappings(FunctionName=p.reporter_function)["EventSourceMappings"]:
        lam.delete_event_source_mapping(UUID=mapping["UUID"])
    for topic in sns.list_topics()["Topics"]:
        if topic["TopicArn"].split(":")[-1].startswith(p.prefix):
            sns.delete_topic(TopicArn=topic["TopicArn"])
    destroy(stack, p)


# ------------------------------------------------------------------ step 1: the wiring
def _rule_matches(rules: list[dict], key: str) -> bool:
    """Does an object ``key`` pass S3's prefix/suffix filter ``rules``?"""
    for rule in rules:
        name, value = rule["Name"].lower(), rule["Value"]
        if name == "prefix" and not key.startswith(value):
            return False
        if name == "suffix" and not key.endswith(value):
            return False
    return True


def _events_cover_firehose(events: list[str]) -> bool:
    return "s3:ObjectCreated:*" in events or {"s3:ObjectCreated:Put",
                                              "s3:ObjectCreated:CompleteMultipartUpload"} <= set(events)


def _policy_allows(policy: str | None, service: str, action: str) -> bool:
    if not policy:
        return False
    for statement in json.loads(policy).get("Statement", []):
        principal = statement.get("Principal", {})
        services = principal.get("Service", []) if isinstance(principal, dict) else []
        services = [services] if isinstance(services, str) else services
        actions = statement.get("Action", [])
        actions = [actions] if isinstance(actions, str) else actions
        if statement.get("Effect") == "Allow" and service in services and \
                any(a in (action, action.split(":")[0] + ":*", "*") for a in actions):
            return True
    return False


def check_wiring(stack, p) -> pd.DataFrame:
    """Step 1, read back: bucket notification -> SNS topic -> the ``reports`` queue -> the reporter.

    Returns what was found, one row per link, when everything is in place.
    """
    s3, sns, sqs, lam = (stack.client(n) for n in ("s3", "sns", "sqs", "lambda"))
    config = s3.get_bucket_notification_configuration(Bucket=p.ingest_bucket)
    topics = config.get("TopicConfigurations", [])
    queues, functions = config.get("QueueConfigurations", []), config.get("LambdaFunctionConfigurations", [])
    if not topics:
        direct = "an SQS queue" if queues else "a Lambda function" if functions else None
        raise LabCheckFailed(
            f"the bucket {p.ingest_bucket} notifies {direct} directly, not an SNS topic: the stage fans out "
            "through SNS so that other queues (audit, say) can subscribe without touching the bucket. Use "
            "TopicConfigurations." if direct else
            f"the bucket {p.ingest_bucket} has no event notification: Firehose's new objects announce nothing, "
            "so the reporter never hears of them. put_bucket_notification_configuration with a "
            "TopicConfigurations entry.")
    found = []
    for entry in topics:
        events = entry.get("Events", [])
        rules = entry.get("Filter", {}).get("Key", {}).get("FilterRules", [])
        if not any(e.startswith("s3:ObjectCreated") for e in events):
            raise LabCheckFailed(f"the notification to {entry['TopicArn'].split(':')[-1]} is for {events}: none of "
                                 "them is an object creation. Firehose creates objects: s3:ObjectCreated:*.")
        if not _events_cover_firehose(events):
            raise LabCheckFailed(
                f"the notification is for {events} only. Firehose writes with PutObject or, for buffers under "
                "60 s, with multipart uploads (s3:ObjectCreated:CompleteMultipartUpload): use "
                "s3:ObjectCreated:* so that a change of buffering does not silently stop the reports.")
        if not _rule_matches(rules, FIREHOSE_KEY_EXAMPLE.replace("<uuid>", "0f1e")):
            raise LabCheckFailed(
                f"the notification's filter {rules} does not match Firehose's objects, whose keys look like "
                f"{FIREHOSE_KEY_EXAMPLE}: no extension (Firehose adds none unless FileExtension is set), under "
                f"{CURATED_PREFIX}. Filter on the prefix {CURATED_PREFIX} only. See {NOTIFICATIONS}")
        if _rule_matches(rules, ERROR_KEY_EXAMPLE):
            raise LabCheckFailed(
                f"the notification's filter {rules or '(none)'} also matches Firehose's error objects "
                f"({ERROR_KEY_EXAMPLE}): the reporter would be called for them, fail, and send them to the "
                f"dead-letter queue. Filter on the prefix {CURATED_PREFIX}.")
        found.append({"link": "bucket -> topic", "found": f"{events} {rules} -> {entry['TopicArn'].split(':')[-1]}"})
    queue_arn = sqs.get_queue_attributes(QueueUrl=p.reports_queue_url, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    topic_arn = next((t["TopicArn"] for t in topics
                      if any(s["Endpoint"] == queue_arn
                             for s in sns.list_subscriptions_by_topic(TopicArn=t["TopicArn"])["Subscriptions"])),
                     None)
    if topic_arn is None:
        raise LabCheckFailed(f"the queue {queue_arn.split(':')[-1]} is not subscribed to the topic the bucket "
                             "notifies: sns.subscribe(TopicArn=..., Protocol='sqs', Endpoint=<the queue's ARN>).")
    found.append({"link": "topic -> queue", "found": f"sqs:{queue_arn.split(':')[-1]}"})
    topic_policy = sns.get_topic_attributes(TopicArn=topic_arn)["Attributes"].get("Policy")
    check(_policy_allows(topic_policy, "s3.amazonaws.com", "sns:Publish"),
          f"the topic {topic_arn.split(':')[-1]}'s policy does not let s3.amazonaws.com sns:Publish. On AWS "
          "PutBucketNotificationConfiguration then fails (\"Unable to validate the following destination "
          "configurations\"); the local stack does not enforce policies, so this check does. Set the topic's "
          "Policy attribute (condition aws:SourceArn = the bucket's ARN).")
    queue_policy = sqs.get_queue_attributes(QueueUrl=p.reports_queue_url, AttributeNames=["Policy"]).get(
        "Attributes", {}).get("Policy")
    check(_policy_allows(queue_policy, "sns.amazonaws.com", "sqs:SendMessage"),
          f"the queue {queue_arn.split(':')[-1]}'s policy does not let sns.amazonaws.com sqs:SendMessage: on AWS "
          "the topic could not deliver and every event would be lost. Set the queue's Policy attribute "
          "(condition aws:SourceArn = the topic's ARN).")
    found.append({"link": "policies", "found": "topic: s3 may publish; queue: sns may send"})
    mappings = [m for m in lam.list_event_source_mappings(FunctionName=p.reporter_function)["EventSourceMappings"]
                if m["EventSourceArn"] == queue_arn]
    check(mappings, f"no event source mapping reads {queue_arn.split(':')[-1]} for {p.reporter_function}: "
                    "lambda.create_event_source_mapping(EventSourceArn=<the queue's ARN>, FunctionName=...).")
    check(len(mappings) == 1, f"{len(mappings)} event source mappings read the queue for the same function: one "
                              "is enough (each message goes to one of them anyway).")
    check(mappings[0]["State"] in ("Enabled", "Creating", "Enabling"),
          f"the event source mapping is {mappings[0]['State']}: enable it (Enabled=True).")
    found.append({"link": "queue -> function", "found": f"{p.reporter_function}, BatchSize "
                                                         f"{mappings[0]['BatchSize']}, {mappings[0]['State']}"})
    return pd.DataFrame(found).set_index("link")


def run_with_faults(stack, p, minutes: int = 3) -> dict:
    """Run the pipeline ``minutes`` simulated minutes with ``p.faults`` (the reporter crashes, a
    delivery is duplicated), then let Firehose deliver what it holds and the reporter drain its
    queue. Returns the counts. Local-only: the frozen clock and the fault hooks."""
    queue_arn = stack.client("sqs").get_queue_attributes(QueueUrl=p.reports_queue_url, AttributeNames=[
        "QueueArn"])["Attributes"]["QueueArn"]
    mappings = [m for m in stack.client("lambda").list_event_source_mappings(
        FunctionName=p.reporter_function)["EventSourceMappings"] if m["EventSourceArn"] == queue_arn]
    check(mappings, f"no event source mapping reads the reports queue for {p.reporter_function}: nothing to run.")
    p.mapping_uuid = mappings[0]["UUID"]
    result = run(stack, p, minutes=minutes, interval=30)
    stats, clock = stack.local.firehose.stats, stack.local.clock
    def idle():
        now = stats(p.delivery_stream)
        return now["in_flight"] == 0 and now["buffered"] == 0
    clock.freeze()
    try:
        for _ in range(6):              # a minute at a time: the Lambda buffer (20 s), the S3 buffer (60 s)
            clock.advance(60)
            if wait_until(idle, 10, poll=0.05):
                break
    finally:
        clock.resume()
    reported = stack.local.awslambda.wait_sqs_idle(p.mapping_uuid, timeout=120)
    return {"sent": result.sent, "firehose_drained": idle(), "reports_done": reported}


def compare_reports(curated: list[str], reports: list[str], dead_letters: int) -> None:
    """Every curated object has one report (``reports/<key>.json``), and nothing is dead-lettered."""
    check(curated, "Firehose delivered no curated object: nothing to report. Run the build cell again.")
    expected = {f"reports/{key}.json" for key in curated}
    missing = expected - set(reports)
    if missing:
        raise LabCheckFailed(
            f"{len(missing)} of {len(curated)} curated objects have no report"
            f"{' (none has one: the reporter never ran)' if len(missing) == len(curated) else ''}, e.g. "
            f"{sorted(missing)[0][len('reports/'):-len('.json')]}. Follow one event: bucket notification -> "
            "topic -> queue (is it subscribed? are messages waiting in it?) -> event source mapping.")
    check(not dead_letters, f"{dead_letters} message(s) reached the dead-letter queue: the reporter failed on "
                            "them 3 times. Look at its logs; an event for an object outside telemetry/ is the "
                            "usual cause (filter the notification on the prefix).")


def check_reports(stack, p) -> pd.DataFrame:
    """Step 1, measured: after :func:`run_with_faults`, one report per curated object, an empty DLQ."""
    sqs = stack.client("sqs")
    curated = s3_keys(stack, p.ingest_bucket, CURATED_PREFIX)
    reports = s3_keys(stack, p.reporting_bucket, "reports/")
    dead = int(sqs.get_queue_attributes(QueueUrl=p.reports_dlq_url, AttributeNames=[
        "ApproximateNumberOfMessages"])["Attributes"]["ApproximateNumberOfMessages"])
    compare_reports(curated, reports, dead)
    # how many objects Firehose cuts the records into depends on timing: the ratios do not
    return pd.Series({"reports per curated object": len(reports) / len(curated),
                      "curated objects without a report": 0, "dead-lettered messages": dead},
                     name="measured").to_frame()


# ------------------------------------------------------------------ step 2: the load
def table_counts(stack, p) -> dict:
    rows = redshift_rows(stack, p, "SELECT count(*), count(DISTINCT record_id) FROM telemetry")[0]
    return {"rows": int(rows[0]), "record_ids": int(rows[1])}


def check_load(stack, p, statements: list[str]) -> pd.DataFrame:
    """Step 2: run ``statements`` twice (a job restarted after a failure runs again), then compare
    ``telemetry`` with the distinct record_ids of the Parquet files Firehose delivered."""
    check(isinstance(statements, (list, tuple)) and statements and all(isinstance(s, str) for s in statements),
          "LOAD_STATEMENTS must be a list of SQL strings, run in order in one transaction.")
    delivered = parquet_rows(stack, p)
    wanted = set(delivered["record_id"])
    duplicated = len(delivered) - len(wanted)
    runs = []
    for attempt in ("first run", "second run"):
        try:
            redshift_sql(stack, p, list(statements))
        except RuntimeError as exc:
            raise LabCheckFailed(
                f"the {attempt} of your statements failed: {exc}. "
                + ("The staging table holds some record_ids twice (Firehose delivered "
                   f"{duplicated:,} rows twice): keep one row per record_id before the MERGE."
                   if "multiple matches" in str(exc) else "")) from None
        runs.append({"run": attempt, **table_counts(stack, p)})
    table = pd.DataFrame(runs).set_index("run")
    found = {r[0] for r in redshift_rows(stack, p, "SELECT record_id FROM telemetry")}
    missing = wanted - found
    check(not missing, f"{len(missing):,} of {len(wanted):,} delivered records are not in telemetry, e.g. "
                       f"{_ids(missing)}: COPY every object under s3://{p.ingest_bucket}/{CURATED_PREFIX}.")
    extra = found - wanted
    check(not extra, f"telemetry holds {len(extra):,} record_ids Firehose never delivered, e.g. {_ids(extra)}.")
    last = runs[-1]
    if last["rows"] != last["record_ids"]:
        twice = redshift_rows(stack, p, "SELECT record_id FROM telemetry GROUP BY record_id HAVING count(*) > 1 "
                                        "ORDER BY record_id")
        first = runs[0]
        raise LabCheckFailed(
            f"{len(twice):,} records are in telemetry more than once: {last['rows']:,} rows for "
            f"{last['record_ids']:,} record_ids after two runs ({first['rows']:,} after the first), e.g. "
            f"record_ids {_ids(r[0] for r in twice)}. "
            + ("A second run added rows: an INSERT is not idempotent; MERGE INTO telemetry ... ON "
               "record_id updates the rows it has. " if last["rows"] > first["rows"] else "")
            + (f"Firehose delivered {duplicated:,} rows twice (at-least-once): keep one row per record_id "
               "(ROW_NUMBER() OVER (PARTITION BY record_id ...) = 1) before the MERGE."
               if first["rows"] > first["record_ids"] else ""))
    return table


__all__ = ["build_lab", "check_load", "check_reports", "check_wiring", "compare_reports", "destroy_lab",
           "run_with_faults", "table_counts"]
