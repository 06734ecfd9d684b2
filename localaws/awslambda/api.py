"""Lambda's data plane: Invoke really runs the handler.

moto keeps the functions (CreateFunction, GetFunction, ListFunctions,
event source mappings, S3 notification configurations) but can only run
code inside Docker, which this course does without. This data plane plugs
in behind moto (see ``localaws/core/plane.py``):

- ``CreateFunction`` / ``UpdateFunctionCode``: the .zip is checked first, so
  a broken package is refused with Lambda's error and nothing is stored;
- ``Invoke``: ``RequestResponse`` runs the handler and returns its result,
  or its error with ``FunctionError: Unhandled``; ``Event`` queues the
  invocation and returns 202 at once; ``DryRun`` only checks;
- S3 event notifications invoke the function asynchronously, once per event,
  as S3 does;
- SQS event source mappings are polled as AWS polls them (``sqs.py``): one
  poller per mapping long-polls the queue through the SQS API, invokes the
  function with batches, deletes them on success, leaves them to come back
  after the queue's visibility timeout on failure (and to the queue's
  dead-letter queue after ``maxReceiveCount`` receives), with partial batch
  responses. moto's own delivery (the function run inside SendMessage) is
  switched off: the mapping is detached from moto's queue record;
- Kinesis event source mappings are polled as AWS polls them (``streams.py``):
  one poller per mapping reads every shard through the Kinesis API, once a
  second of the stack's clock, and invokes the function with batches, with
  AWS's retries, bisection, partial batch responses and on-failure records.
  moto's own delivery (the function run inside PutRecord, once per record) is
  switched off (``send_kinesis_message`` below).

Every invocation writes START/END/REPORT and the handler's output to the
CloudWatch Logs group ``/aws/lambda/<name>``.

Teaching hooks (``stack.local.awslambda``): ``wait_idle`` (asynchronous
invocations), ``wait_sqs_idle`` (SQS mappings drained), ``stream_stats`` and
``sqs_stats`` (what a poller did), ``crash_next_invocation`` (the next
invocation's process is killed, as an instance failure would end it).
"""
from __future__ import annotations

import base64
import binascii
import io
import json
import os
import subprocess
import threading
import zipfile
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote_plus, unquote_plus

from localaws.core import Plane, cwlogs, local_hook, moto_hook, not_emulated
from localaws.core.waiting import wait_until
from . import engine, errors, sqs, streams

MAX_PAYLOAD = 6 * 1024 * 1024   # 6 MB synchronous request/response payload
MODELS = "moto.awslambda.models"


class LambdaPlane(Plane):
    """Real execution of Python Lambda handlers in child processes."""

    name = "awslambda"
    services = ("lambda",)

    def __init__(self, ctx):
        super().__init__(ctx)
        self.cache = engine.CodeCache(os.path.join(ctx.work_dir, "lambda"))
        self.pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="lambda-event")
        self._pending = 0
        self._idle = threading.Condition()
        self._pollers: dict[str, streams.KinesisPoller | sqs.SqsPoller] = {}   # mapping UUID -> its poller
        self._deleting: set[str] = set()
        self._deleted: dict[str, streams.KinesisPoller | sqs.SqsPoller] = {}   # stopped, for their stats
        self._crash: dict[str, float] = {}        # function name -> seconds after start to kill it
        self._crash_lock = threading.Lock()

    def stop(self):
        for uuid, poller in list(self._pollers.items()):
            poller.stop()
            self._deleted[uuid] = poller
        self._pollers.clear()
        self.pool.shutdown(wait=False, cancel_futures=True)

    # -- CreateFunction / UpdateFunctionCode --------------------------------
    @moto_hook(f"{MODELS}:LambdaBackend.create_function")
    def create_function(self, moto_create, backend, spec):
        return moto_create(backend, self.checked(spec))

    @moto_hook(f"{MODELS}:LambdaBackend.update_function_code")
    def update_function_code(self, moto_update, backend, name, qualifier, body):
        return moto_update(backend, name, qualifier, self.checked(body, update=True))

    @staticmethod
    def checked(spec: dict, update: bool = False) -> dict:
        """Refuse a package Lambda would refuse, before moto stores anything."""
        code = spec if update else spec.get("Code", {})
        if code.get("ZipFile") is not None:
            try:
                raw = base64.b64decode(code["ZipFile"], validate=True)
                zipfile.ZipFile(io.BytesIO(raw)).testzip()
            except (binascii.Error, zipfile.BadZipFile, ValueError):
                raise errors.InvalidParameterValueException(
                    "Could not unzip uploaded file. Please check your file, then try to upload again.") from None
        if not update and spec.get("PackageType", "Zip") == "Zip" and not spec.get("Handler"):
            raise errors.InvalidParameterValueException(
                "Handler is required for a function with a .zip file deployment package.")
        return spec

    # -- Invoke --------------------------------------------------------------
    @moto_hook(f"{MODELS}:LambdaFunction.invoke")
    def invoke(self, _moto_invoke, fn, body, headers, response_headers):
        """moto's ``LambdaFunction.invoke``, with real execution."""
        raw = body.encode() if isinstance(body, str) else (body or b"")
        if len(raw) > MAX_PAYLOAD:
            raise errors.RequestTooLargeException(
                f"Request must be smaller than {MAX_PAYLOAD} bytes for the InvokeFunction operation "
                f"(got {len(raw)} bytes)")
        try:
            json.loads(raw or b"{}")
        except ValueError as exc:
            raise errors.InvalidRequestContentException(
                f"Could not parse request body into json: Could not parse payload into json: {exc}") from None
        self._check_runnable(fn)
        kind = (headers.get("X-Amz-Invocation-Type") or "RequestResponse") if headers else "RequestResponse"
        if kind == "DryRun":
            return b""
        if kind == "Event":
            self.submit(fn, raw or b"{}")
            return b""
        result = self.run(fn, raw or b"{}")
        if result.function_error:
            response_headers["x-amz-function-error"] = result.function_error
        response_headers["x-amz-log-result"] = base64.b64encode(result.log_tail.encode()).decode()
        response_headers["x-amz-executed-version"] = fn.version
        return result.payload

    @staticmethod
    def _check_runnable(fn):
        if getattr(fn, "package_type", "Zip") == "Image":
            raise not_emulated("lambda", "Invoke", "container image functions need Docker")
        if not (fn.run_time or "").startswith("python3"):
            raise not_emulated("lambda", "Invoke",
                               f"runtime {fn.run_time}: only python3.x handlers run locally")

    def run(self, fn, event: bytes) -> engine.Invocation:
        """Run one invocation now and write its CloudWatch Logs."""
        folder = self.cache.folder(fn.function_name, fn.code_sha_256, fn.code_bytes)
        stream = engine.log_stream_name(fn.version)
        with self._crash_lock:
            crash_after = self._crash.pop(fn.function_name, None)
        processes = self.ctx.processes if crash_after is None else _Crashing(self.ctx.processes, crash_after)
        result = engine.run(fn, event, folder, endpoint_env=self.ctx.env(),
                            processes=processes, stream=stream)
        self._write_logs(fn.logs_group_name, stream, result.log_lines)
        return result

    def _write_logs(self, group: str, stream: str, lines: list[str]) -> None:
        cwlogs.append(self.ctx.client("logs"), group, stream, lines)

    # -- asynchronous invocations (Event, S3 notifications) ------------------
    def submit(self, fn, event: bytes) -> None:
        with self._idle:
            self._pending += 1
        self.pool.submit(self._run_async, fn, event)

    def _run_async(self, fn, event):
        try:
            self.run(fn, event)
        finally:
            with self._idle:
                self._pending -= 1
                self._idle.notify_all()

    @local_hook("On AWS, poll the function's effect instead (the S3 object or log line it writes).")
    def wait_idle(self, timeout: float = 60) -> bool:
        """Block until every queued asynchronous invocation has finished.

        A teaching convenience: on AWS you would poll the function's effect
        (an S3 object, a log line). Returns False if ``timeout`` passed first.
        """
        return wait_until(lambda: self._pending == 0, timeout, condition=self._idle)

    @moto_hook("moto.s3.notifications:_invoke_awslambda")
    def s3_event(self, _moto_notify, account_id, event_body, fn_arn, region):
        """S3 -> Lambda notification: one asynchronous invocation per event."""
        from moto.awslambda.utils import get_backend
        try:
            fn = get_backend(account_id, region).get_function(fn_arn)
        except Exception:
            return   # like S3, a notification to a deleted function is dropped
        for record in event_body.get("Records", []):
            # S3 URL-encodes keys in events ("red flower.jpg" -> "red+flower.jpg")
            # but keeps "/"; moto also encodes "/", so we undo that one.
            obj = record["s3"]["object"]
            obj["key"] = quote_plus(unquote_plus(obj["key"]), safe="/")
        self.submit(fn, json.dumps(event_body).encode())

    # -- SQS event source mappings (the poller is sqs.py) ----------------------
    @staticmethod
    def _moto_queue(account_id: str, queue_arn: str):
        """moto's record of the queue ``queue_arn`` (in-process: we are inside a moto call)."""
        from moto.sqs.models import sqs_backends
        region = queue_arn.split(":")[3]
        for queue in sqs_backends[account_id][region].queues.values():
            if queue.queue_arn == queue_arn:
                return queue
        return None

    def _check_sqs(self, backend, spec: dict, mapping=None) -> None:
        arn = spec.get("EventSourceArn") or mapping.event_source_arn
        queue = self._moto_queue(backend.account_id, arn)
        if queue is None:
            return                                    # moto answers ResourceNotFoundException
        name = spec.get("FunctionName") or (mapping.function_arn if mapping else None)
        try:
            timeout = int(backend.get_function(name).timeout) if name else None
        except Exception:
            timeout = None                            # moto answers for a missing function
        sqs.check(spec, fifo=bool(queue.fifo_queue), visibility_timeout=int(queue.visibility_timeout),
                  function_timeout=timeout, current=mapping)

    def _start_sqs_poller(self, backend, mapping) -> None:
        queue = self._moto_queue(backend.account_id, mapping.event_source_arn)
        if queue is not None:      # moto would invoke inside SendMessage: on AWS only the poller delivers
            queue.lambda_event_source_mappings.pop(mapping.function_arn, None)
        region = mapping.event_source_arn.split(":")[3]
        client = self.ctx.client("sqs", region_name=region)
        poller = sqs.SqsPoller(mapping, sqs=client, invoke=self._invoker(backend))
        self._pollers[mapping.uuid] = poller
        poller.start()

    @local_hook("On AWS, poll the queue's ApproximateNumberOfMessages and "
                "ApproximateNumberOfMessagesNotVisible (GetQueueAttributes) until both are 0, "
                "or watch the function's effect.")
    def wait_sqs_idle(self, uuid: str | None = None, timeout: float = 60) -> bool:
        """Block until the queue of mapping ``uuid`` (or of every SQS mapping) is empty, nothing
        in flight or delayed, and no invocation runs. False if ``timeout`` passed first (a poison
        message without a dead-letter queue keeps coming back: never idle)."""
        pollers = [p for u, p in list(self._pollers.items())
                   if isinstance(p, sqs.SqsPoller) and (uuid is None or u == uuid)]
        if uuid is not None and not pollers:
            raise KeyError(f"no running SQS event source mapping {uuid}")

        def idle() -> bool:
            for poller in pollers:
                if poller.busy or poller.queue_url is None:
                    return False
                attrs = poller.sqs.get_queue_attributes(QueueUrl=poller.queue_url, AttributeNames=[
                    "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
                    "ApproximateNumberOfMessagesDelayed"])["Attributes"]
                if any(int(v) for v in attrs.values()) or poller.busy:
                    return False
            return True
        return wait_until(idle, timeout, poll=0.1)

    @local_hook("On AWS, read the function's CloudWatch metrics (Invocations, Errors) and the queue's "
                "(NumberOfMessagesReceived, NumberOfMessagesDeleted, ApproximateAgeOfOldestMessage).")
    def sqs_stats(self, uuid: str) -> dict:
        """What the SQS poller of mapping ``uuid`` did: receives, invocations (failed ones too),
        messages received and deleted (their IDs, in order), the last batches, its State."""
        poller = self._pollers.get(uuid) or self._deleted.get(uuid)
        if not isinstance(poller, sqs.SqsPoller):
            raise KeyError(f"no SQS event source mapping {uuid}")
        return poller.snapshot()

    @local_hook("On AWS you cannot kill a function's execution environment; to rehearse a consumer "
                "crash, make the handler fail (raise, or os._exit(1)) for one invocation.")
    def crash_next_invocation(self, function_name: str, after_seconds: float = 0.0) -> None:
        """Kill the process of ``function_name``'s next invocation, as an instance failure would.

        The execution environment (its process group) gets SIGKILL ``after_seconds`` after it
        started (0: at once, so the handler does nothing: deterministic), or never if it finished
        first. The invocation then fails with ``Runtime.ExitError``, like any crash: an SQS
        mapping leaves the batch in the queue, and it comes back after the visibility timeout.
        """
        if after_seconds < 0:
            raise ValueError("after_seconds cannot be negative")
        with self._crash_lock:
            self._crash[function_name] = float(after_seconds)

    # -- Kinesis event source mappings (the poller is streams.py) -------------------------
    @staticmethod
    def _is_kinesis(arn) -> bool:
        return isinstance(arn, str) and arn.split(":")[2:3] == ["kinesis"]

    @moto_hook(f"{MODELS}:LambdaBackend.create_event_source_mapping")
    def create_event_source_mapping(self, moto_create, backend, spec):
        """moto records the mapping; for a Kinesis stream or an SQS queue, a poller starts reading it."""
        if sqs.is_sqs(spec.get("EventSourceArn")):
            self._check_sqs(backend, spec)
            mapping = moto_create(backend, spec)
            self._start_sqs_poller(backend, mapping)
            return mapping
        if not self._is_kinesis(spec.get("EventSourceArn")):
            return moto_create(backend, spec)
        streams.check(spec)
        mapping = moto_create(backend, spec)
        fn = backend.get_function(mapping.function_arn)
        region = mapping.event_source_arn.split(":")[3]
        from botocore.config import Config
        kinesis = self.ctx.client("kinesis", region_name=region,
                                  config=Config(retries={"total_max_attempts": 1}))
        poller = streams.KinesisPoller(mapping, kinesis=kinesis, clock=self.ctx.clock,
                                       invoke=self._invoker(backend), send_failure=self._send_failure,
                                       role=fn.role)
        self._pollers[mapping.uuid] = poller
        poller.start()
        return mapping

    @moto_hook(f"{MODELS}:LambdaBackend.update_event_source_mapping")
    def update_event_source_mapping(self, moto_update, backend, uuid, spec):
        poller = self._pollers.get(uuid)
        if isinstance(poller, sqs.SqsPoller):
            self._check_sqs(backend, spec, poller.mapping)
        elif poller is not None:
            streams.check(spec, create=False)
        mapping = moto_update(backend, uuid, spec)
        if poller is not None and mapping is not None:
            if "Enabled" in spec:
                poller.set_enabled(bool(spec["Enabled"]))
            if isinstance(poller, streams.KinesisPoller):
                poller.wake()             # the new settings hold from the next poll
        return mapping

    @moto_hook(f"{MODELS}:LambdaBackend.delete_event_source_mapping")
    def delete_event_source_mapping(self, moto_delete, backend, uuid):
        """The poller stops (after the invocation in flight, if any); the answer says ``Deleting``."""
        mapping = moto_delete(backend, uuid)
        poller = self._pollers.pop(uuid, None)
        if poller is not None:
            self._deleting.add(uuid)
            poller.stop()
            self._deleted[uuid] = poller
        return mapping

    @moto_hook(f"{MODELS}:EventSourceMapping.get_configuration")
    def mapping_configuration(self, moto_configuration, mapping):
        """moto's answer, with the poller's State and the defaults AWS shows for Kinesis."""
        out = moto_configuration(mapping)
        if sqs.is_sqs(mapping.event_source_arn):
            poller = self._pollers.get(mapping.uuid)
            if poller is not None:
                out["State"] = poller.state
            elif mapping.uuid in self._deleting:
                out["State"] = "Deleting"
            out["MaximumBatchingWindowInSeconds"] = mapping.max_batch_window or 0
            for key in ("StartingPosition", "LastProcessingResult", "BisectBatchOnFunctionError",
                        "MaximumRecordAgeInSeconds", "MaximumRetryAttempts", "ParallelizationFactor"):
                out.pop(key, None)                  # stream settings: absent for a queue
            return out
        if not self._is_kinesis(mapping.event_source_arn):
            return out
        poller = self._pollers.get(mapping.uuid)
        if poller is not None:
            out["State"] = poller.state
            out["LastProcessingResult"] = poller.last_result
        elif mapping.uuid in self._deleting:
            out["State"] = "Deleting"
        out["StateTransitionReason"] = "User action"
        for key, default in (("MaximumBatchingWindowInSeconds", 0), ("ParallelizationFactor", 1),
                             ("MaximumRecordAgeInSeconds", -1), ("MaximumRetryAttempts", -1),
                             ("BisectBatchOnFunctionError", False), ("DestinationConfig", {"OnFailure": {}})):
            out.setdefault(key, default)
        return out

    @moto_hook(f"{MODELS}:LambdaBackend.send_kinesis_message")
    def send_kinesis_message(self, _moto_send, backend, *args, **kwargs):
        """Off: moto would run the function inside PutRecord, once per record. On AWS nothing
        happens at PutRecord; the mapping's poller (``streams.py``) reads the shard and sends batches."""
        return None

    def _invoker(self, backend):
        """``invoke(function_arn, event) -> (function_error, payload, request_id)`` for a poller."""
        def invoke(function_arn: str, event: bytes):
            fn = backend.get_function(function_arn)
            self._check_runnable(fn)
            result = self.run(fn, event)
            return result.function_error, result.payload, result.request_id
        return invoke

    def _send_failure(self, destination: str, document: dict) -> None:
        """Deliver an on-failure record to an SQS queue or SNS topic, through their APIs."""
        service, region, account, name = destination.split(":")[2:6]
        body = json.dumps(document)
        client = self.ctx.client(service) if region == self.ctx.region else \
            self.ctx.client(service, region_name=region)
        if service == "sqs":
            url = client.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]
            client.send_message(QueueUrl=url, MessageBody=body)
        else:
            client.publish(TopicArn=destination, Message=body)

    @local_hook("On AWS, read the mapping's LastProcessingResult (GetEventSourceMapping) and the "
                "function's CloudWatch metrics (Invocations, Errors, IteratorAge) instead.")
    def stream_stats(self, uuid: str) -> dict:
        """What the Kinesis poller of mapping ``uuid`` did: polls, invocations, records processed
        (and their sequence numbers, in order), failed invocations, bisections, records discarded,
        on-failure records sent, the last batches, its State, and whether it is waiting for the clock."""
        poller = self._pollers.get(uuid) or self._deleted.get(uuid)
        if not isinstance(poller, streams.KinesisPoller):
            raise KeyError(f"no running Kinesis event source mapping {uuid}")
        return poller.snapshot()


class _Crashing:
    """The stack's process tracker for one invocation that is to die (``crash_next_invocation``)."""

    def __init__(self, processes, after_seconds: float):
        self._processes = processes
        self._after = after_seconds

    def popen(self, args, **kwargs):
        proc = self._processes.popen(args, **kwargs)
        if self._after <= 0:
            self._processes.kill(proc)                   # SIGKILL to its process group, at once
        else:
            def kill_if_running():
                try:
                    proc.wait(timeout=self._after)       # ended by itself first: nothing to do
                except subprocess.TimeoutExpired:
                    self._processes.kill(proc)
            threading.Thread(target=kill_if_running, daemon=True, name="lambda-crash").start()
        return proc

    def __getattr__(self, name):
        return getattr(self._processes, name)
