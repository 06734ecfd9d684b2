"""The Python runtime inside one Lambda invocation (runs in a child process).

On AWS, a Lambda *execution environment* is a micro-VM whose runtime
process imports your handler (``Handler = "module.function"``) from
``/var/task`` and calls ``function(event, context)`` for each invocation.
This module plays that runtime for one invocation:

- reads the event (JSON) from stdin;
- imports the handler from ``LAMBDA_TASK_ROOT`` (the unzipped package);
- calls it with a ``context`` object carrying the same attributes as AWS's
  (``aws_request_id``, ``function_name``, ``get_remaining_time_in_millis()``...);
- writes the JSON result, or the error in Lambda's shape
  (``errorMessage``, ``errorType``, ``stackTrace``), to the result file.

Whatever the handler prints goes to stdout, which the parent process turns
into CloudWatch Logs lines, as AWS does.
"""
from __future__ import annotations

import importlib
import json
import os
import resource
import sys
import time
import traceback


class LambdaContext:
    """The ``context`` argument, with the attributes AWS documents."""

    def __init__(self, env):
        self.function_name = env["AWS_LAMBDA_FUNCTION_NAME"]
        self.function_version = env["AWS_LAMBDA_FUNCTION_VERSION"]
        self.invoked_function_arn = env["_LOCALAWS_FUNCTION_ARN"]
        self.memory_limit_in_mb = int(env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"])
        self.aws_request_id = env["_LOCALAWS_REQUEST_ID"]
        self.log_group_name = env["AWS_LAMBDA_LOG_GROUP_NAME"]
        self.log_stream_name = env["AWS_LAMBDA_LOG_STREAM_NAME"]
        self._deadline = time.monotonic() + float(env["_LOCALAWS_TIMEOUT"])

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def _error(kind: str, message: str, trace: list[str] | None = None) -> dict:
    return {"errorMessage": message, "errorType": kind, "requestId": "",
            "stackTrace": trace or []}


def _load_handler(spec: str):
    module_name, _, func_name = spec.rpartition(".")
    if not module_name:
        return None, _error("Runtime.MalformedHandlerName",
                            f"Bad handler '{spec}': not enough values to unpack (expected 2, got 1)")
    try:
        module = importlib.import_module(module_name.replace("/", "."))
    except Exception as exc:
        return None, _error("Runtime.ImportModuleError",
                            f"Unable to import module '{module_name}': {exc}")
    handler = getattr(module, func_name, None)
    if handler is None:
        return None, _error("Runtime.HandlerNotFound",
                            f"Handler '{func_name}' missing on module '{module_name}'")
    return handler, None


def _invoke(handler, event, context) -> tuple[dict | None, object]:
    try:
        result = handler(event, context)
    except Exception as exc:
        frames = traceback.extract_tb(exc.__traceback__)[1:]   # drop this runtime's frame
        root = os.environ["LAMBDA_TASK_ROOT"]
        trace = [line.replace(root, "/var/task") for line in traceback.format_list(frames)]
        print(f"[ERROR] {type(exc).__name__}: {exc}\nTraceback (most recent call last):\n"
              + "".join(trace), end="", flush=True)
        return _error(type(exc).__name__, str(exc), trace), None
    try:
        json.dumps(result)
    except (TypeError, ValueError) as exc:
        return _error("Runtime.MarshalError", f"Unable to marshal response: {exc}"), None
    return None, result


def _peak_memory_kb() -> int:
    """Peak resident memory of this process ("Max Memory Used" in REPORT)."""
    try:
        with open("/proc/self/status") as fh:   # VmHWM: high-water mark since exec
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def main() -> int:
    env = os.environ
    sys.path.insert(0, env["LAMBDA_TASK_ROOT"])
    event = json.loads(sys.stdin.read() or "null")
    handler, error = _load_handler(env["_HANDLER"])
    result = None
    if error is None:
        error, result = _invoke(handler, event, LambdaContext(env))
    if error is not None:
        error["requestId"] = env["_LOCALAWS_REQUEST_ID"]
        if error["errorType"].startswith("Runtime."):
            print(f"[ERROR] {error['errorType']}: {error['errorMessage']}", flush=True)
    outcome = {"error": error, "result": result, "max_rss_kb": _peak_memory_kb()}
    sys.stdout.flush()
    with open(env["_LOCALAWS_RESULT_FILE"], "w") as fh:
        json.dump(outcome, fh)
    return 0


if __name__ == "__main__":
    sys.exit(main())
