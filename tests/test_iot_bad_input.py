"""AWS IoT bad input: AWS's error codes and statuses, and nothing half-written.

CreateTopicRule / ReplaceTopicRule: ``SqlParseException`` (bad SQL, unknown
function, bad topic filter), ``InvalidRequestException`` (missing action
parameters, bad rule name, unknown SQL version), ``ResourceAlreadyExistsException``
(409); a rule that does not exist: ``UnauthorizedException`` (401). iot-data
Publish: ``RequestEntityTooLargeException`` (413) over 128 KB,
``InvalidRequestException`` (400) for a topic over 7 slashes or 256 bytes.
"""
from __future__ import annotations

import json
import uuid

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

ROLE = "arn:aws:iam::123456789012:role/iot-rules"


@pytest.fixture(scope="module")
def iot(stack):
    return stack.client("iot")


@pytest.fixture(scope="module")
def raw_iot(stack):
    """A client that sends what botocore would refuse (a missing required member) to the server."""
    return stack.client("iot", config=Config(parameter_validation=False))


@pytest.fixture(scope="module")
def data(stack):
    return stack.client("iot-data")


@pytest.fixture(scope="module")
def target(stack):
    """A rule on 'bad/#' that records to a stream: publishes refused must not reach it."""
    iot, kinesis = stack.client("iot"), stack.client("kinesis")
    stream = "iot-bad-" + uuid.uuid4().hex[:8]
    kinesis.create_stream(StreamName=stream, ShardCount=1)
    name = "bad_" + uuid.uuid4().hex[:8]
    iot.create_topic_rule(ruleName=name, topicRulePayload={
        "sql": "SELECT * FROM 'bad/#'", "actions": [{"kinesis": {"streamName": stream, "roleArn": ROLE}}]})
    yield name
    iot.delete_topic_rule(ruleName=name)
    kinesis.delete_stream(StreamName=stream)


def rule_names(iot):
    return {r["ruleName"] for r in iot.list_topic_rules()["rules"]}


def refused(call, code, status):
    with pytest.raises(ClientError) as info:
        call()
    assert info.value.response["Error"]["Code"] == code
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
    return info.value.response["Error"]["Message"]


def payload(sql="SELECT * FROM 'a/b'", **extra):
    return {"sql": sql, "actions": [{"kinesis": {"streamName": "s", "roleArn": ROLE}}], **extra}


@pytest.mark.parametrize("sql", [
    "SELECT FROM 'a/b'",                        # no projection
    "SELECT * FROM a/b",                        # the topic filter is not quoted
    "SELECT x FROM 'a/b' WHERE",                # WHERE without a condition
    "SELECT x + FROM 'a/b'",                    # a broken expression
    "SELECT nosuchfunction(x) FROM 'a/b'",      # a function AWS IoT SQL does not have
    "SELECT * FROM 'a/#/b'",                    # '#' not last
    "SELECT * FROM 'a/b+/c'",                   # '+' not a whole level
    "SELECT * FROM 'a/b/c/d/e/f/g/h/i'",        # more than 7 slashes
])
def test_bad_sql_is_sql_parse_exception_and_nothing_is_created(iot, sql):
    name = "r_" + uuid.uuid4().hex[:8]
    refused(lambda: iot.create_topic_rule(ruleName=name, topicRulePayload=payload(sql)),
            "SqlParseException", 400)
    assert name not in rule_names(iot)


def test_missing_action_parameters_are_invalid_request(raw_iot, iot):
    name = "r_" + uuid.uuid4().hex[:8]
    for action in ({"kinesis": {"roleArn": ROLE}},                           # no streamName
                   {"s3": {"bucketName": "b", "roleArn": ROLE}},             # no key
                   {"sqs": {"queueUrl": "https://q"}}):                      # no roleArn
        message = refused(lambda: raw_iot.create_topic_rule(
            ruleName=name, topicRulePayload={"sql": "SELECT * FROM 'a'", "actions": [action]}),
            "InvalidRequestException", 400)
        assert "missing required parameter" in message
    refused(lambda: raw_iot.create_topic_rule(ruleName=name, topicRulePayload={
        "sql": "SELECT * FROM 'a'", "actions": [], "errorAction": {"s3": {"roleArn": ROLE}}}),
        "InvalidRequestException", 400)
    assert name not in rule_names(iot)


def test_bad_rule_name_and_sql_version_are_invalid_request(iot):
    refused(lambda: iot.create_topic_rule(ruleName="has-dash", topicRulePayload=payload()),
            "InvalidRequestException", 400)
    name = "r_" + uuid.uuid4().hex[:8]
    refused(lambda: iot.create_topic_rule(ruleName=name, topicRulePayload=payload(awsIotSqlVersion="2099-01-01")),
            "InvalidRequestException", 400)
    assert not {"has-dash", name} & rule_names(iot)


def test_duplicate_rule_name_keeps_the_first_rule(iot):
    name = "r_" + uuid.uuid4().hex[:8]
    iot.create_topic_rule(ruleName=name, topicRulePayload=payload("SELECT a FROM 'first'"))
    try:
        refused(lambda: iot.create_topic_rule(ruleName=name, topicRulePayload=payload("SELECT b FROM 'second'")),
                "ResourceAlreadyExistsException", 409)
        assert iot.get_topic_rule(ruleName=name)["rule"]["sql"] == "SELECT a FROM 'first'"
    finally:
        iot.delete_topic_rule(ruleName=name)


def test_refused_replace_keeps_the_old_rule(iot):
    name = "r_" + uuid.uuid4().hex[:8]
    iot.create_topic_rule(ruleName=name, topicRulePayload=payload("SELECT a FROM 'old'"))
    try:
        refused(lambda: iot.replace_topic_rule(ruleName=name, topicRulePayload=payload("SELECT bogus(a) FROM 'x'")),
                "SqlParseException", 400)
        assert iot.get_topic_rule(ruleName=name)["rule"]["sql"] == "SELECT a FROM 'old'"
    finally:
        iot.delete_topic_rule(ruleName=name)


def test_a_rule_that_does_not_exist_is_unauthorized(iot):
    for call in (iot.get_topic_rule, iot.delete_topic_rule, iot.enable_topic_rule, iot.disable_topic_rule):
        refused(lambda: call(ruleName="no_such_rule"), "UnauthorizedException", 401)
    refused(lambda: iot.replace_topic_rule(ruleName="no_such_rule", topicRulePayload=payload()),
            "UnauthorizedException", 401)
    assert "no_such_rule" not in rule_names(iot)


def test_publish_limits(stack, data, target):
    before = stack.local.iot.rule_stats(target)
    refused(lambda: data.publish(topic="bad/big", payload=b"x" * (128 * 1024 + 1)),
            "RequestEntityTooLargeException", 413)
    refused(lambda: data.publish(topic="bad/" + "/".join("l" * 8), payload=b"{}"),      # 8 slashes
            "InvalidRequestException", 400)
    refused(lambda: data.publish(topic="bad/" + "t" * 253, payload=b"{}"),              # 257 bytes
            "InvalidRequestException", 400)
    refused(lambda: data.publish(topic="bad/+", payload=b"{}"), "InvalidRequestException", 400)
    assert stack.local.iot.rule_stats(target) == before          # no rule saw a refused message
    data.publish(topic="bad/ok", payload=json.dumps({"x": "y" * (128 * 1024 - 20)}).encode())   # at the limit
    assert stack.local.iot.rule_stats(target)["matched"] == before["matched"] + 1
