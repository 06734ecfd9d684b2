"""Running an EMR step for real: ``command-runner.jar`` + ``spark-submit``.

On EMR a step such as::

    {"Name": "delays", "ActionOnFailure": "CONTINUE",
     "HadoopJarStep": {"Jar": "command-runner.jar",
                       "Args": ["spark-submit", "--deploy-mode", "cluster",
                                "s3://code/delays.py", "s3://data/flights/", "s3://out/"]}}

runs ``spark-submit`` on the master node. Here it does too: the script is
fetched from S3 (EMR fetches ``s3://`` application files through EMRFS),
``spark-submit --master spark://<our master>`` runs it as a driver process
of this cluster, and its stdout/stderr go to
``<LogUri>/<cluster-id>/steps/<step-id>/{stdout,stderr,controller}.gz`` as
on EMR. The driver's Python loads the EMRFS stand-in
(``driver/sitecustomize.py``) so ``s3://`` paths in the script work.

While the step runs, its progress is read from the driver's own REST API
(``/api/v1/applications/.../stages``); afterwards Spark's event log gives
the exact counts of tasks run, failed and retried.
"""
from __future__ import annotations

import gzip
import json
import subprocess
import threading
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path


DRIVER_SHIM = str(Path(__file__).with_name("driver"))
COMMAND_RUNNER = {"command-runner.jar", "/usr/share/aws/emr/command-runner/lib/command-runner.jar"}
# spark-submit options that take no value
FAST_JVM = "-XX:+UseSerialGC -XX:TieredStopAtLevel=1"
FLAGS = {"--verbose", "-v", "--supervise", "--help", "-h", "--version"}


class StepError(Exception):
    """Why a step could not start; becomes its FailureDetails."""


@dataclass
class SubmitPlan:
    options: list[str]
    script_uri: str
    app_args: list[str]
    notes: list[str] = field(default_factory=list)


def parse_args(args: list[str]) -> SubmitPlan:
    """Split ``["spark-submit", opts..., script, app args...]``."""
    if not args or args[0] != "spark-submit":
        raise StepError("only 'spark-submit' commands run locally")
    options, notes, i = [], [], 1
    while i < len(args) and args[i].startswith("-"):
        name = args[i]
        if name in FLAGS:
            options.append(name)
            i += 1
            continue
        if "=" in name and name.startswith("--") and not name.startswith("--conf"):
            name, value = name.split("=", 1)
            i += 1
        else:
            value = args[i + 1] if i + 1 < len(args) else ""
            i += 2
        if name == "--master":
            notes.append(f"--master {value} replaced by this cluster's master")
        elif name == "--deploy-mode":
            if value == "cluster":
                notes.append("--deploy-mode cluster: the driver runs on the master node (Spark's "
                             "standalone manager runs Python drivers in client mode only)")
        else:
            options += [name, value]
    if i >= len(args):
        raise StepError("spark-submit needs an application file (a .py script)")
    return SubmitPlan(options, args[i], list(args[i + 1:]), notes)


def fetch_script(s3, uri: str, folder: Path) -> Path:
    """Copy the application file from S3 (or accept a local path, as EMR does)."""
    if uri.startswith(("s3://", "s3a://", "s3n://")):
        bucket, _, key = uri.split("://", 1)[1].partition("/")
        target = folder / Path(key).name
        try:
            s3.download_file(bucket, key, str(target))
        except Exception:
            raise StepError(f"Exception in thread \"main\" java.io.FileNotFoundException: "
                            f"No such file or directory '{uri}'") from None
        return target
    path = Path(uri)
    if not path.is_file():
        raise StepError(f"Exception in thread \"main\" java.io.FileNotFoundException: File {uri} does not exist")
    return path


def rest_json(port: int, path: str):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/{path}", timeout=1.5) as resp:
            return json.loads(resp.read())
    except (OSError, ValueError):
        return None


@dataclass
class Progress:
    """A step's Spark work, as its driver reports it."""
    tasks_total: int = 0
    tasks_done: int = 0
    tasks_running: int = 0
    tasks_pending: int = 0
    app_id: str | None = None


def poll_progress(port: int, progress: Progress) -> None:
    """Read the driver's REST API once (all stages of the application)."""
    if progress.app_id is None:
        apps = rest_json(port, "applications")
        if not apps:
            return
        progress.app_id = apps[0]["id"]
    stages = rest_json(port, f"applications/{progress.app_id}/stages")
    if stages is None:
        return
    total = done = running = pending = 0
    for stage in stages:
        if stage.get("status") == "SKIPPED":
            continue
        n, ok, act = stage["numTasks"], stage["numCompleteTasks"], stage["numActiveTasks"]
        total += n
        done += ok
        running += act
        if stage.get("status") in ("ACTIVE", "PENDING"):
            pending += max(0, n - ok - act)
    progress.tasks_total, progress.tasks_done = total, done
    progress.tasks_running, progress.tasks_pending = running, pending


def event_log_summary(folder: Path) -> dict:
    """Count tasks, failures and executor losses in Spark's event log of the step."""
    summary = {"tasks_succeeded": 0, "tasks_failed": 0, "failure_reasons": {},
               "stage_attempts": 0, "stages_resubmitted": 0, "executors_added": 0,
               "executors_removed": 0, "jobs": 0}
    seen_stages = set()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt") as f:
            for line in f:
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                kind = event.get("Event")
                if kind == "SparkListenerTaskEnd":
                    reason = event.get("Task End Reason", {}).get("Reason", "Success")
                    if reason == "Success":
                        summary["tasks_succeeded"] += 1
                    else:
                        summary["tasks_failed"] += 1
                        summary["failure_reasons"][reason] = summary["failure_reasons"].get(reason, 0) + 1
                elif kind == "SparkListenerStageSubmitted":
                    info = event["Stage Info"]
                    summary["stage_attempts"] += 1
                    key = info["Stage ID"]
                    if key in seen_stages or info.get("Stage Attempt ID", 0) > 0:
                        summary["stages_resubmitted"] += 1
                    seen_stages.add(key)
                elif kind == "SparkListenerExecutorAdded":
                    summary["executors_added"] += 1
                elif kind == "SparkListenerExecutorRemoved":
                    summary["executors_removed"] += 1
                elif kind == "SparkListenerJobStart":
                    summary["jobs"] += 1
    return summary


def spark_submit(plan: SubmitPlan, script: Path, *, cluster, env: dict, folder: Path,
                 executor_memory_mb: int, ui_port: int, on_start=None,
                 cancel: threading.Event | None = None, progress: Progress | None = None) -> int:
    """Run the driver; return its exit code (-9 when cancelled)."""
    event_dir = folder / "eventlog"
    event_dir.mkdir(parents=True, exist_ok=True)
    cmd = [str(Path(cluster.env["SPARK_HOME"]) / "bin" / "spark-submit"),
           "--master", cluster.master_url,
           "--conf", "spark.driver.host=127.0.0.1", "--conf", "spark.driver.bindAddress=127.0.0.1",
           "--conf", f"spark.ui.port={ui_port}", "--conf", "spark.ui.showConsoleProgress=false",
           "--conf", f"spark.executor.memory={executor_memory_mb}m",
           "--conf", "spark.driver.memory=512m",
           "--conf", "spark.eventLog.enabled=true", "--conf", f"spark.eventLog.dir={event_dir.as_uri()}",
           "--conf", "spark.eventLog.rolling.enabled=false", "--conf", "spark.eventLog.compress=false",
           # Small JVMs that start fast: this machine has 2 cores for the whole cluster.
           "--conf", f"spark.driver.extraJavaOptions={FAST_JVM}",
           "--conf", f"spark.executor.extraJavaOptions={FAST_JVM}",
           "--conf", f"spark.local.dir={folder / 'local'}",
           *plan.options, str(script), *plan.app_args]
    with open(folder / "stdout", "wb") as out, open(folder / "stderr", "wb") as err:
        proc = cluster.processes.popen(cmd, env=env, cwd=str(folder), stdout=out, stderr=err,
                                       stdin=subprocess.DEVNULL)
        if on_start:
            on_start(proc)
        try:
            while proc.poll() is None:
                if cancel is not None and cancel.is_set():
                    cluster.processes.kill(proc)
                    return -9
                if progress is not None:
                    poll_progress(ui_port, progress)
                try:
                    proc.wait(timeout=0.5)
                except subprocess.TimeoutExpired:
                    pass
        finally:
            cluster.processes.forget(proc)
    return proc.returncode


def last_error_line(stderr: str) -> str | None:
    """The Python exception (or Java one) that ended a failed driver."""
    lines = [l.strip() for l in stderr.splitlines() if l.strip()]
    for line in reversed(lines):
        if (("Error" in line or "Exception" in line) and ":" in line and not line.startswith(("at ", "File "))
                and " INFO " not in line and " WARN " not in line):
            return line[:500]
    return None


def gz(text: bytes) -> bytes:
    return gzip.compress(text, mtime=0)
