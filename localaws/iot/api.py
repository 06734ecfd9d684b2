"""AWS IoT Core's data plane: topic rules that run, for real, on every published message.

moto records the *control plane* of AWS IoT (boto3 client ``iot``):
CreateTopicRule, GetTopicRule, ListTopicRules, ReplaceTopicRule,
DeleteTopicRule, EnableTopicRule, DisableTopicRule (and things,
certificates, policies). Its ``iot-data`` Publish only keeps the payload.
This plane plugs in behind both (see ``localaws/core/plane.py``):

- **CreateTopicRule / ReplaceTopicRule** parse the rule's SQL first
  (``sql.py``): bad SQL, a bad topic filter or an unknown function is
  ``SqlParseException``; an unknown ``awsIotSqlVersion``, an action without
  its required parameters (``roleArn``, ``streamName``...), more than 10
  actions or a bad substitution template is ``InvalidRequestException``.
  Nothing is recorded when the rule is refused (a refused Replace keeps the
  old rule).
- **GetTopicRule, DeleteTopicRule, EnableTopicRule, DisableTopicRule,
  ReplaceTopicRule** of a rule that does not exist answer
  ``UnauthorizedException`` (401), as AWS does (moto says ResourceNotFound).
- **Publish** (boto3 client ``iot-data``; ``topic``, ``qos``, ``payload``)
  checks AWS IoT's message broker quotas (payload at most 128 KB:
  ``RequestEntityTooLargeException`` 413; topic at most 256 bytes and 7
  slashes, no wildcards: ``InvalidRequestException``), then runs the rules
  engine (``engine.py``) *before* it answers (200, empty body): the
  actions (``actions.py``: kinesis, firehose, lambda, sqs, s3, republish)
  have run when the call returns.

``stack.local.iot.rule_stats(rule)`` counts what the engine did per rule;
the same counts reach CloudWatch as AWS IoT's ``AWS/IoT`` metrics
(TopicMatch, Success, Failure).
"""
from __future__ import annotations

from localaws.core import Plane, local_hook, moto_hook

from . import actions, engine, errors, sql

IOT = "moto.iot.models:IoTBackend"
IOT_DATA = "moto.iotdata.models:IoTDataPlaneBackend"

MAX_PAYLOAD_BYTES = 128 * 1024     # message broker quota: a PUBLISH payload is at most 128 KB
MAX_TOPIC_BYTES = 256              # ...its topic at most 256 bytes of UTF-8
MAX_TOPIC_SLASHES = 7              # ...and at most 7 forward slashes


class IoTPlane(Plane):
    """Topic rules evaluated on every iot-data Publish, with their actions run against the stack."""

    name = "iot"
    services = ("iot", "iot-data")

    def __init__(self, ctx):
        super().__init__(ctx)
        self.engine = engine.RulesEngine(ctx)

    def stop(self):
        self.engine.stop()

    # -- control plane: rules ----------------------------------------------------------
    def _check_rule(self, sql_text, actions_list, error_action, sql_version) -> None:
        if sql_version is not None and sql_version not in sql.SQL_VERSIONS:
            raise errors.InvalidRequestException(
                f"awsIotSqlVersion {sql_version!r} is not one of {', '.join(sql.SQL_VERSIONS)}.")
        self.engine.statement(sql_text)                # SqlParseException if it does not parse
        actions_list = actions_list or []
        if len(actions_list) > actions.MAX_ACTIONS:
            raise errors.InvalidRequestException(f"A rule has at most {actions.MAX_ACTIONS} actions.")
        for action in actions_list:
            actions.check(action)
        if error_action:
            actions.check(error_action, "errorAction")

    @staticmethod
    def _must_exist(backend, rule_name: str) -> None:
        if rule_name not in backend.rules:
            raise errors.UnauthorizedException(f"Rule {rule_name} does not exist")

    @moto_hook(f"{IOT}.create_topic_rule")
    def create_topic_rule(self, original, backend, rule_name, sql, **kwargs):
        self._check_rule(sql, kwargs.get("actions"), kwargs.get("error_action"),
                         kwargs.get("aws_iot_sql_version"))
        return original(backend, rule_name, sql, **kwargs)

    @moto_hook(f"{IOT}.replace_topic_rule")
    def replace_topic_rule(self, original, backend, rule_name, **kwargs):
        self._must_exist(backend, rule_name)
        self._check_rule(kwargs.get("sql"), kwargs.get("actions"), kwargs.get("error_action"),
                         kwargs.get("aws_iot_sql_version"))
        return original(backend, rule_name, **kwargs)

    @moto_hook(f"{IOT}.get_topic_rule")
    def get_topic_rule(self, original, backend, rule_name):
        self._must_exist(backend, rule_name)
        return original(backend, rule_name)

    @moto_hook(f"{IOT}.delete_topic_rule")
    def delete_topic_rule(self, original, backend, rule_name):
        self._must_exist(backend, rule_name)
        return original(backend, rule_name)

    @moto_hook(f"{IOT}.enable_topic_rule")
    def enable_topic_rule(self, original, backend, rule_name):
        self._must_exist(backend, rule_name)
        return original(backend, rule_name)

    @moto_hook(f"{IOT}.disable_topic_rule")
    def disable_topic_rule(self, original, backend, rule_name):
        self._must_exist(backend, rule_name)
        return original(backend, rule_name)

    # -- data plane: Publish ----------------------------------------------------------------
    @moto_hook(f"{IOT_DATA}.publish")
    def publish(self, original, backend, topic, payload):
        payload = payload or b""
        if isinstance(payload, str):
            payload = payload.encode()
        if len(payload) > MAX_PAYLOAD_BYTES:
            raise errors.RequestEntityTooLargeException(
                f"The payload is {len(payload)} bytes; a message is at most {MAX_PAYLOAD_BYTES} bytes (128 KB).")
        if not topic or len(topic.encode()) > MAX_TOPIC_BYTES:
            raise errors.InvalidRequestException(
                f"A topic is 1 to {MAX_TOPIC_BYTES} bytes of UTF-8.")
        if topic.count("/") > MAX_TOPIC_SLASHES:
            raise errors.InvalidRequestException(
                f"Topic '{topic}' has {topic.count('/')} forward slashes; at most {MAX_TOPIC_SLASHES}.")
        if "+" in topic or "#" in topic:
            raise errors.InvalidRequestException("A topic to publish to has no wildcards (+, #).")
        original(backend, topic, payload)
        self.engine.dispatch(backend.iot_backend, topic, payload)

    # -- teaching hooks ------------------------------------------------------------------
    @local_hook("On AWS, read the rule's CloudWatch metrics in namespace AWS/IoT: TopicMatch "
                "(dimension RuleName), Success and Failure (RuleName, ActionType).")
    def rule_stats(self, rule_name: str) -> dict:
        """``{"matched", "actions_succeeded", "actions_failed", "error_actions"}`` of a rule so far."""
        return self.engine.stats(rule_name)

    @local_hook("On AWS, CloudWatch shows AWS/IoT metrics a minute or so after the messages.")
    def flush_metrics(self, timeout: float = 10) -> bool:
        """Wait until the AWS/IoT data points measured so far reached CloudWatch."""
        return self.engine.metrics.flush(timeout)
