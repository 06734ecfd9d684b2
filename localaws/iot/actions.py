"""A topic rule's actions: each one is a call to another service of the stack, as on AWS.

The rules engine calls the target service with the rule action's IAM role
(``roleArn``): here through a boto3 client of the stack signed as that role
(``ctx.client(service, principal=roleArn)``), so the request is attributed
to it. The parameters are AWS's (https://docs.aws.amazon.com/iot/latest/developerguide/iot-rule-actions.html):

==========  =============================================  ==========================
action      parameters                                      call
==========  =============================================  ==========================
kinesis     streamName, partitionKey (template), roleArn   Kinesis ``PutRecord``
firehose    deliveryStreamName, separator, batchMode       Firehose ``PutRecord`` /
                                                            ``PutRecordBatch``
lambda      functionArn                                    Lambda ``Invoke`` (Event)
sqs         queueUrl, useBase64, roleArn                   SQS ``SendMessage``
s3          bucketName, key (template), roleArn            S3 ``PutObject``
republish   topic (template), qos, roleArn                 the rules engine again
==========  =============================================  ==========================

A failed call raises :class:`ActionFailed` with the resource and AWS-style
message that go into the error action's ``failures`` list. Each action is
tried once: botocore's retries are off for these clients, so a throttled
``PutRecord`` fails at once and the error action gets the message.
"""
from __future__ import annotations

import base64
import json
import threading
import uuid

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from . import errors, sql

#: action name in the API -> (the required parameters, the name in an error message, CloudWatch ActionType)
ACTIONS = {
    "kinesis": (("roleArn", "streamName"), "KinesisAction", "Kinesis"),
    "firehose": (("roleArn", "deliveryStreamName"), "FirehoseAction", "Firehose"),
    "lambda": (("functionArn",), "LambdaAction", "Lambda"),
    "sqs": (("roleArn", "queueUrl"), "SqsAction", "SQS"),
    "s3": (("roleArn", "bucketName", "key"), "S3Action", "S3"),
    "republish": (("roleArn", "topic"), "RepublishAction", "Republish"),
}
TEMPLATED = {"kinesis": ("partitionKey",), "s3": ("key",), "republish": ("topic",)}
SEPARATORS = ("\n", "\t", "\r\n", ",")
MAX_ACTIONS = 10
NO_RETRIES = Config(retries={"max_attempts": 1, "mode": "standard"})


class ActionFailed(Exception):
    def __init__(self, resource: str, message: str):
        super().__init__(message)
        self.resource, self.message = resource, message


def check(action: dict, where: str = "actions") -> tuple[str, dict]:
    """Refuse an action this engine cannot run, before anything is recorded -> (kind, params)."""
    if not isinstance(action, dict) or len(action) != 1:
        raise errors.InvalidRequestException(f"Each entry of {where} must name exactly one action.")
    (kind, params), = action.items()
    if kind not in ACTIONS:
        from localaws.core import not_emulated
        raise not_emulated("iot", "CreateTopicRule",
                           f"the {kind!r} rule action is not run by this stand-in; it runs "
                           f"{', '.join(sorted(ACTIONS))}")
    params = params or {}
    missing = [name for name in ACTIONS[kind][0] if not params.get(name)]
    if missing:
        raise errors.InvalidRequestException(
            f"{kind} action in {where}: missing required parameter(s) {', '.join(missing)}.")
    if kind == "firehose" and params.get("separator") not in (None, *SEPARATORS):
        raise errors.InvalidRequestException(
            "firehose action: separator must be one of '\\n', '\\t', '\\r\\n', ','.")
    for name in TEMPLATED.get(kind, ()):
        if name in params:
            sql.parse_template(params[name])       # a bad template is refused now
    return kind, params


class Runner:
    """Runs actions for the rules engine, with boto3 clients of the stack signed as each action's role."""

    def __init__(self, ctx, evaluator: sql.Evaluator, republish):
        self.ctx = ctx
        self.evaluator = evaluator
        self._broker = republish               # (topic, payload bytes, depth, message) -> None
        self._clients: dict = {}
        self._lock = threading.Lock()

    def client(self, service: str, role: str | None):
        key = (service, role)
        with self._lock:
            if key not in self._clients:
                self._clients[key] = self.ctx.client(service, role, config=NO_RETRIES)
            return self._clients[key]

    def run(self, action: dict, result, message: sql.Message, depth: int) -> None:
        """Run one action with the rule's ``result`` (dict or raw bytes); raise ActionFailed."""
        (kind, params), = action.items()
        resource = {"kinesis": "streamName", "firehose": "deliveryStreamName", "lambda": "functionArn",
                    "sqs": "queueUrl", "s3": "bucketName", "republish": "topic"}[kind]
        target = params.get(resource, "")
        data = result if isinstance(result, bytes) else json.dumps(result, separators=(",", ":")).encode()
        try:
            getattr(self, "_" + kind)(params, data, result, message, depth)
        except ClientError as exc:
            err = exc.response.get("Error", {})
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            raise ActionFailed(target, f"Failed to run the {kind} action. The error received was "
                                       f"{err.get('Message', '')} (Service: {exc.operation_name}; "
                                       f"Status Code: {status}; Error Code: {err.get('Code')}). "
                                       f"Message arrived on: {message.topic}, Action: {kind}, "
                                       f"{resource}: {target}") from None
        except (BotoCoreError, ValueError) as exc:
            raise ActionFailed(target, f"Failed to run the {kind} action: {exc}. Message arrived on: "
                                       f"{message.topic}, Action: {kind}, {resource}: {target}") from None

    def _template(self, text: str, message: sql.Message) -> str:
        return self.evaluator.render(sql.parse_template(text), message)

    # -- one method per action ------------------------------------------------------
    def _kinesis(self, params, data, result, message, depth):
        key = params.get("partitionKey")
        key = self._template(key, message) if key else None
        self.client("kinesis", params["roleArn"]).put_record(
            StreamName=params["streamName"], Data=data, PartitionKey=key or str(uuid.uuid4()))

    def _firehose(self, params, data, result, message, depth):
        separator = (params.get("separator") or "").encode()
        client = self.client("firehose", params["roleArn"])
        name = params["deliveryStreamName"]
        if params.get("batchMode"):
            if not (isinstance(result, bytes) and isinstance(message.data, list)):
                raise ValueError("batchMode needs a JSON array: SELECT * over a payload that is one")
            items = message.data
            records = [{"Data": json.dumps(item, separators=(",", ":")).encode() + separator} for item in items]
            answer = client.put_record_batch(DeliveryStreamName=name, Records=records)
            if answer.get("FailedPutCount"):
                raise ValueError(f"{answer['FailedPutCount']} of {len(records)} records were not put")
        else:
            client.put_record(DeliveryStreamName=name, Record={"Data": data + separator})

    def _lambda(self, params, data, result, message, depth):
        answer = self.client("lambda", None).invoke(FunctionName=params["functionArn"],
                                                    InvocationType="Event", Payload=data)
        if answer.get("FunctionError"):
            raise ValueError(answer["FunctionError"])

    def _sqs(self, params, data, result, message, depth):
        body = base64.b64encode(data).decode() if params.get("useBase64") else data.decode("utf-8", "replace")
        self.client("sqs", params["roleArn"]).send_message(QueueUrl=params["queueUrl"], MessageBody=body)

    def _s3(self, params, data, result, message, depth):
        self.client("s3", params["roleArn"]).put_object(
            Bucket=params["bucketName"], Key=self._template(params["key"], message), Body=data)

    def _republish(self, params, data, result, message, depth):
        self._broker(self._template(params["topic"], message), data, depth + 1, message)
