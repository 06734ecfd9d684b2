"""The rules engine: every published message against every enabled topic rule.

On AWS, the message broker hands each message to the rules engine, which
evaluates every rule whose ``FROM`` topic filter matches the topic and runs
the actions of those whose ``WHERE`` holds, with the result of the rule's
``SELECT``. Here :meth:`RulesEngine.dispatch` does that **synchronously**,
inside the ``Publish`` request, so a notebook cell that publishes finds the
records in the stream when the call returns (on AWS they arrive a few
milliseconds later).

Errors (https://docs.aws.amazon.com/iot/latest/developerguide/rule-error-handling.html):
when one or more actions of a rule fail for a message, the rule's
``errorAction`` runs once for that message, with this document as its payload::

    {"ruleName": ..., "topic": ..., "cloudwatchTraceId": ..., "clientId": ...,
     "base64OriginalPayload": ..., "failures": [{"failedAction": "KinesisAction",
     "failedResource": "<stream>", "errorMessage": "..."}]}

Each action is tried once: the Kinesis action page documents no retry, so a
throttled ``PutRecord`` (more than 1,000 records or 1 MiB per second into
one shard) goes straight to the error action.

Counts per rule (:meth:`stats`) mirror the CloudWatch metrics AWS IoT
publishes in namespace ``AWS/IoT``: ``TopicMatch`` (dimension RuleName),
``Success`` and ``Failure`` (RuleName, ActionType), which this engine also
publishes to the stack's CloudWatch, stamped with the stack's clock.
"""
from __future__ import annotations

import base64
import threading
import uuid
from collections import defaultdict

from localaws.core.metrics import MetricsPublisher

from . import actions, sql

MAX_REPUBLISH_DEPTH = 8      # a guard against a rule that republishes to its own topic (not an AWS number)


class RulesEngine:
    """Evaluates rules (kept by moto's IoT backend) against messages and runs their actions."""

    def __init__(self, ctx):
        self.ctx = ctx
        self.evaluator = sql.Evaluator()
        self.runner = actions.Runner(ctx, self.evaluator, self._republish)
        self.metrics = MetricsPublisher(self._cloudwatch, "AWS/IoT", "RuleName")
        self._statements: dict[str, sql.Statement] = {}     # SQL text -> parsed statement
        self._stats: dict[str, dict] = defaultdict(lambda: {"matched": 0, "actions_succeeded": 0,
                                                            "actions_failed": 0, "error_actions": 0})
        self._lock = threading.Lock()

    def stop(self) -> None:
        self.metrics.stop()
        self.evaluator.close()

    def _cloudwatch(self, region: str):
        return self.runner.client("cloudwatch", None) if region == self.ctx.region else \
            self.ctx.client("cloudwatch", region_name=region)

    def statement(self, text: str) -> sql.Statement:
        with self._lock:
            if text not in self._statements:
                self._statements[text] = sql.Statement(text)
            return self._statements[text]

    def stats(self, rule_name: str) -> dict:
        with self._lock:
            return dict(self._stats[rule_name])

    def _count(self, rule: str, key: str, n: int = 1) -> None:
        with self._lock:
            self._stats[rule][key] += n

    # -- messages --------------------------------------------------------------------
    def dispatch(self, iot_backend, topic: str, payload: bytes, depth: int = 0) -> None:
        """Run every enabled rule of ``iot_backend`` (moto's, one account and Region) on a message."""
        message = sql.Message(topic, payload, round(self.ctx.clock.time() * 1000), iot_backend.account_id)
        message.iot_backend = iot_backend          # where a republish action publishes
        for rule in list(iot_backend.rules.values()):
            if rule.rule_disabled:
                continue
            statement = self.statement(rule.sql)
            if not sql.topic_matches(statement.topic_filter, topic):
                continue
            result = self.evaluator.evaluate(statement, message)
            if result is None:
                continue
            self._count(rule.rule_name, "matched")
            self._publish(iot_backend.region_name, rule.rule_name, [("TopicMatch", 1, "Count")])
            self._run_rule(iot_backend, rule, result, message, depth)

    def _run_rule(self, iot_backend, rule, result, message: sql.Message, depth: int) -> None:
        failures = []
        for action in rule.actions:
            kind = next(iter(action))
            action_type = actions.ACTIONS[kind][2]
            try:
                self.runner.run(action, result, message, depth)
            except actions.ActionFailed as failed:
                self._count(rule.rule_name, "actions_failed")
                self._publish(iot_backend.region_name, rule.rule_name, [("Failure", 1, "Count")], action_type)
                failures.append({"failedAction": actions.ACTIONS[kind][1],
                                 "failedResource": failed.resource, "errorMessage": failed.message})
            else:
                self._count(rule.rule_name, "actions_succeeded")
                self._publish(iot_backend.region_name, rule.rule_name, [("Success", 1, "Count")], action_type)
        if failures and rule.error_action:
            document = {"ruleName": rule.rule_name, "topic": message.topic,
                        "cloudwatchTraceId": str(uuid.uuid4()), "clientId": message.client_id,
                        "base64OriginalPayload": base64.b64encode(message.payload).decode(),
                        "failures": failures}
            self._count(rule.rule_name, "error_actions")
            try:
                self.runner.run(rule.error_action, document, message, depth)
            except actions.ActionFailed:
                pass           # on AWS a failed error action is only logged (AWS IoT logs)

    def _republish(self, topic: str, payload: bytes, depth: int, message: sql.Message) -> None:
        if depth > MAX_REPUBLISH_DEPTH:
            raise ValueError(f"republish loop: more than {MAX_REPUBLISH_DEPTH} republishes in a row")
        self.dispatch(message.iot_backend, topic, payload, depth)

    def _publish(self, region: str, rule: str, metrics, action_type: str | None = None) -> None:
        self.metrics.publish(region, rule, metrics, self.ctx.clock.now(),
                             {"ActionType": action_type} if action_type else None)
