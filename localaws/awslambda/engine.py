"""Run one Lambda invocation for real: unzip, spawn, time out, collect logs.

On AWS each invocation runs your handler in an isolated execution
environment with the memory and timeout you configured, and everything the
handler prints lands in the log group ``/aws/lambda/<function name>``,
framed by ``START``, ``END`` and ``REPORT`` lines. Here an "execution
environment" is a fresh Python child process (``bootstrap.py``) in the
function's unzipped code folder; the timeout is enforced by killing that
process, exactly when AWS would stop yours.
"""
from __future__ import annotations

import io
import json
import math
import os
import pathlib
import subprocess
import sys
import threading
import time
import uuid
import zipfile
from dataclasses import dataclass, field

# Run as a plain script in isolated mode (-I): the handler sees its own
# package folder and the installed libraries, not localaws' modules.
BOOTSTRAP = str(pathlib.Path(__file__).with_name("bootstrap.py"))


@dataclass
class Invocation:
    """The outcome of one invocation."""
    request_id: str
    payload: bytes                  # the handler's JSON result, or the error document
    function_error: str | None      # "Unhandled" when the handler failed, as on AWS
    log_lines: list[str] = field(default_factory=list)
    duration_ms: float = 0.0

    @property
    def log_tail(self) -> str:
        """The last 4 KB of the log, what ``LogType="Tail"`` returns."""
        return "\n".join(self.log_lines)[-4096:]


class CodeCache:
    """Unzipped deployment packages, one folder per code hash."""

    def __init__(self, root: str):
        self.root = pathlib.Path(root)
        self._lock = threading.Lock()

    def folder(self, name: str, code_sha: str, zip_bytes: bytes) -> pathlib.Path:
        target = self.root / name / code_sha.replace("/", "_").replace("+", "-")
        with self._lock:
            if not target.exists():
                partial = target.with_suffix(".partial")
                partial.mkdir(parents=True, exist_ok=True)
                zipfile.ZipFile(io.BytesIO(zip_bytes)).extractall(partial)
                partial.rename(target)
        return target


def log_stream_name(version: str) -> str:
    day = time.strftime("%Y/%m/%d", time.gmtime())
    return f"{day}/[{version}]{uuid.uuid4().hex}"


def run(fn, event: bytes, code_dir: pathlib.Path, *, endpoint_env: dict, processes,
        stream: str) -> Invocation:
    """Invoke ``fn`` (moto's LambdaFunction record) with the JSON ``event``."""
    request_id = str(uuid.uuid4())
    result_file = code_dir.parent / f"result-{request_id}.json"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        **endpoint_env,
        **(fn.environment_vars or {}),
        "LAMBDA_TASK_ROOT": str(code_dir), "_HANDLER": fn.handler or "",
        "AWS_LAMBDA_FUNCTION_NAME": fn.function_name,
        "AWS_LAMBDA_FUNCTION_VERSION": fn.version,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(fn.memory_size),
        "AWS_LAMBDA_LOG_GROUP_NAME": fn.logs_group_name,
        "AWS_LAMBDA_LOG_STREAM_NAME": stream,
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{fn.run_time}",
        "_LOCALAWS_FUNCTION_ARN": fn.function_arn,
        "_LOCALAWS_REQUEST_ID": request_id,
        "_LOCALAWS_TIMEOUT": str(fn.timeout),
        "_LOCALAWS_RESULT_FILE": str(result_file),
    }
    started = time.monotonic()
    proc = processes.popen([sys.executable, "-I", "-u", "-B", BOOTSTRAP],
                           cwd=code_dir, env=env, stdin=subprocess.PIPE,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    timed_out = False
    try:
        out, _ = proc.communicate(event, timeout=float(fn.timeout))
    except subprocess.TimeoutExpired:
        timed_out = True
        processes.kill(proc)
        out = proc.stdout.read() if proc.stdout else b""
    finally:
        processes.forget(proc)
    duration = (time.monotonic() - started) * 1000
    printed = out.decode("utf-8", "replace").splitlines()
    outcome = _read_outcome(result_file)
    if timed_out:
        error = {"errorType": "Sandbox.Timedout",
                 "errorMessage": f"RequestId: {request_id} Error: Task timed out after {float(fn.timeout):.2f} seconds"}
        printed.append(f"{request_id} Task timed out after {float(fn.timeout):.2f} seconds")
    elif outcome is None:
        error = {"errorType": "Runtime.ExitError",
                 "errorMessage": f"RequestId: {request_id} Error: Runtime exited with error: exit status {proc.returncode}"}
    else:
        error = outcome["error"]
    max_mb = math.ceil((outcome or {}).get("max_rss_kb", 0) / 1024)
    status = "\tStatus: timeout" if timed_out else ""
    lines = [f"START RequestId: {request_id} Version: {fn.version}", *printed,
             f"END RequestId: {request_id}",
             f"REPORT RequestId: {request_id}\tDuration: {duration:.2f} ms\t"
             f"Billed Duration: {math.ceil(duration)} ms\tMemory Size: {fn.memory_size} MB\t"
             f"Max Memory Used: {max_mb} MB{status}"]
    if error is not None:
        return Invocation(request_id, json.dumps(error).encode(), "Unhandled", lines, duration)
    return Invocation(request_id, json.dumps(outcome["result"]).encode(), None, lines, duration)


def _read_outcome(path: pathlib.Path) -> dict | None:
    try:
        with open(path) as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return None
    finally:
        path.unlink(missing_ok=True)
