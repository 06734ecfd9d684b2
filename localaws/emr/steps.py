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
on EMR. ``s3://`` paths in the script are read and written by Spark itself,
from the executors, through Hadoop's S3A connector pointed at the local
endpoint (EMR uses EMRFS, its own S3 file system, the same way).

The driver is a process on this machine. ``--deploy-mode`` decides which
EMR node it belongs to (``placement.py``): client mode, the primary node;
cluster mode, a core or task node chosen as YARN would. Losing that node
kills the driver, and the step fails.

While the step runs, its progress is read from the driver's own REST API
(``/api/v1/applications/.../stages``); afterwards Spark's event log gives
the exact counts of tasks run, failed and retried, and which executors were
lost when (:func:`event_log_summary`).
"""
from __future__ import annotations

import gzip
import json
import logging
import subprocess
import threading
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from localaws.core import s3 as s3uri
from localaws.core.limits import FAST_JVM, heap_mb
from localaws.core.spark import release_conf, s3a_conf
from . import hdfs, instances
from .cluster import free_port

log = logging.getLogger("localaws.emr")

DRIVER_SHIM = str(Path(__file__).with_name("driver"))      # the HDFS stand-in, loaded by drivers
COMMAND_RUNNER = {"command-runner.jar", "/usr/share/aws/emr/command-runner/lib/command-runner.jar"}
# spark-submit options that take no value
FLAGS = {"--verbose", "-v", "--supervise", "--help", "-h", "--version"}
LOG_FILES = ("controller", "stdout", "stderr")


class StepError(Exception):
    """Why a step could not start; becomes its FailureDetails."""


@dataclass
class SubmitPlan:
    options: list[str]
    script_uri: str
    app_args: list[str]
    notes: list[str] = field(default_factory=list)
    deploy_mode: str = "client"


def parse_args(args: list[str]) -> SubmitPlan:
    """Split ``["spark-submit", opts..., script, app args...]``."""
    if not args or args[0] != "spark-submit":
        raise StepError("only 'spark-submit' commands run locally")
    options, notes, i, mode = [], [], 1, "client"
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
            mode = value
        else:
            options += [name, value]
    if i >= len(args):
        raise StepError("spark-submit needs an application file (a .py script)")
    return SubmitPlan(options, args[i], list(args[i + 1:]), notes, mode)


def fetch_script(download, uri: str, folder: Path) -> Path:
    """Copy the application file from S3 with ``download(uri, path)`` (or accept a local path, as EMR does)."""
    if s3uri.is_s3(uri):
        target = folder / Path(s3uri.split(uri)[1]).name
        try:
            download(uri, str(target))
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
    """What Spark's event log of the step says: tasks, failures, stages, executors.

    ``executors``: one row per executor: the worker it ran on (its web UI
    port, from the executor's log URLs), why it was removed, and how many
    tasks of the application succeeded before and after that moment (tasks
    on both sides: the executor was lost mid-job).
    """
    summary = {"tasks_succeeded": 0, "tasks_failed": 0, "failure_reasons": {},
               "stage_attempts": 0, "stages_resubmitted": 0, "executors_added": 0,
               "executors_removed": 0, "jobs": 0, "executors": []}
    seen_stages, executors, finished = set(), {}, []
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
                        finished.append(event.get("Task Info", {}).get("Finish Time", 0))
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
                    urls = event.get("Executor Info", {}).get("Log Urls", {})
                    executors[event["Executor ID"]] = {"executor": event["Executor ID"],
                                                       "worker_webui_port": _port(urls.get("stdout", "")),
                                                       "removed_ms": None, "removed_reason": None}
                elif kind == "SparkListenerExecutorRemoved":
                    summary["executors_removed"] += 1
                    row = executors.setdefault(event["Executor ID"], {"executor": event["Executor ID"],
                                                                      "worker_webui_port": None})
                    row["removed_ms"], row["removed_reason"] = event.get("Timestamp"), event.get("Removed Reason")
                elif kind == "SparkListenerJobStart":
                    summary["jobs"] += 1
    for row in executors.values():
        at = row.pop("removed_ms", None)
        row["tasks_done_before"] = sum(t < at for t in finished) if at else None
        row["tasks_done_after"] = sum(t > at for t in finished) if at else None
        summary["executors"].append(row)
    return summary


def _port(url: str) -> int | None:
    """The port of ``http://127.0.0.1:PORT/logPage/...`` (a worker's web UI)."""
    try:
        return int(url.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)[1])
    except (IndexError, ValueError):
        return None


def spark_submit(plan: SubmitPlan, script: Path, *, cluster, env: dict, folder: Path,
                 executor_memory_mb: int, ui_port: int, conf: dict | None = None, on_start=None,
                 cancel: threading.Event | None = None, progress: Progress | None = None) -> int:
    """Run the driver; return its exit code (-9 when cancelled).

    Every JVM gets an explicit heap (``core/limits.py``): the driver the
    "spark-driver" bound, each executor the memory of the smallest worker
    instance. ``conf`` adds Spark settings (S3A, the release's SQL defaults).
    """
    event_dir = folder / "eventlog"
    event_dir.mkdir(parents=True, exist_ok=True)
    settings = {
        "spark.driver.host": "127.0.0.1", "spark.driver.bindAddress": "127.0.0.1",
        "spark.ui.port": str(ui_port), "spark.ui.showConsoleProgress": "false",
        "spark.driver.memory": f"{heap_mb('spark-driver')}m",
        "spark.executor.memory": f"{executor_memory_mb}m",
        "spark.eventLog.enabled": "true", "spark.eventLog.dir": event_dir.as_uri(),
        "spark.eventLog.rolling.enabled": "false", "spark.eventLog.compress": "false",
        # Small JVMs that start fast: this machine has 2 cores for the whole cluster.
        "spark.driver.extraJavaOptions": FAST_JVM, "spark.executor.extraJavaOptions": FAST_JVM,
        "spark.local.dir": str(folder / "local"),
        **(conf or {}),
    }
    cmd = [str(Path(cluster.env["SPARK_HOME"]) / "bin" / "spark-submit"), "--master", cluster.master_url,
           *[arg for key, value in settings.items() for arg in ("--conf", f"{key}={value}")],
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


def run_step(ctx, run, step, folder: Path, *, cancel: threading.Event, progress: Progress,
             place=None, on_start=None) -> tuple[int, str | None]:
    """Run one step of ``run`` (an ``engine.ClusterRun``) to its end; write its controller log.

    ``place(plan)`` is told the parsed command before the driver starts (the
    engine decides the driver's node there); ``on_start(proc)`` gets the
    driver process. Returns (exit code, error): ``error`` says why a step
    could not even start (no such script, not a spark-submit command, no
    node for the driver...), else None.
    """
    try:
        plan = parse_args(list(step.args))
        if place is not None:
            plan.notes.append(place(plan))
        script = fetch_script(lambda uri, path: ctx.s3.download(uri, path, access_key=step.id),
                              plan.script_uri, folder)
        code = spark_submit(plan, script, cluster=run.spark, env=driver_env(ctx, run, step.id, folder),
                            folder=folder, executor_memory_mb=executor_memory(run.nodes.values()),
                            conf=spark_conf(ctx, run.release, step.id), ui_port=free_port(),
                            on_start=on_start, cancel=cancel, progress=progress)
        controller = [f"INFO spark-submit {' '.join(step.args[1:])}", *[f"INFO {n}" for n in plan.notes],
                      f"INFO Process exited with code {code}"]
        error = None
    except StepError as exc:
        error, code = str(exc), 1
        (folder / "stderr").write_text(error + "\n")
        (folder / "stdout").write_text("")
        controller = [f"INFO command-runner.jar {' '.join(step.args)}", f"ERROR {error}"]
    (folder / "controller").write_text("\n".join(controller) + "\n")
    return code, error


def spark_conf(ctx, release, access_key: str) -> dict:
    """``s3://`` through S3A, signed with the step's own key (so the endpoint meters the step's
    S3 bytes), and the SQL defaults of the release's Spark line."""
    try:
        s3 = s3a_conf(ctx.endpoint, access_key, "localaws", ctx.region)
    except RuntimeError as exc:       # the S3A jars are not installed
        raise StepError(str(exc)) from None
    return {**s3, **release_conf(release.spark_version)}


def driver_env(ctx, run, step_id: str, folder: Path) -> dict:
    """The driver's environment: Spark's, the endpoint's (signed as the step), the HDFS shim's."""
    env = dict(run.spark.env)
    env.update(ctx.env())
    env["AWS_ACCESS_KEY_ID"] = step_id      # boto3 in the script signs as the step too (metered)
    env["PYTHONPATH"] = ":".join([DRIVER_SHIM] + [p for p in env.get("PYTHONPATH", "").split(":") if p])
    env.update(hdfs.driver_env(run.spark.folder, run.nodes.values(), folder / "scratch"))
    return env


def executor_memory(nodes) -> int:
    """Executors get the memory of the smallest worker instance, so any worker can host one."""
    return min([n.memory_mb for n in nodes if n.role != "MASTER"] or [instances.MIN_MEMORY_MB])


def last_error_line(stderr: str) -> str | None:
    """The Python exception (or Java one) that ended a failed driver."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    for line in reversed(lines):
        if (("Error" in line or "Exception" in line) and ":" in line and not line.startswith(("at ", "File "))
                and " INFO " not in line and " WARN " not in line):
            return line[:500]
    return None


def failure_reason(folder: Path, error: str | None) -> tuple[str, str]:
    """Why a step failed, and the log file that says so (``stdout`` or ``stderr``).

    Spark's PythonRunner merges the Python driver's stderr into the JVM's
    stdout: a PySpark traceback lands in stdout, Java errors in stderr.
    """
    if error:
        return error, "stderr"
    for name in ("stdout", "stderr"):
        found = last_error_line((folder / name).read_text(errors="replace"))
        if found:
            return found, name
    return "Unknown Error", "stderr"


def upload_logs(put, log_uri: str | None, cluster_id: str, step_id: str, folder: Path) -> str | None:
    """Copy the step's logs to ``<LogUri>/<cluster-id>/steps/<step-id>/`` with ``put(uri, body)``.

    Returns that folder's URI, or None when the cluster has no S3 LogUri.
    A failed upload is skipped: a missing log bucket must not fail the step.
    """
    if not s3uri.is_s3(log_uri):
        return None
    bucket, prefix = s3uri.split(s3uri.folder(log_uri))
    base = s3uri.join(bucket, f"{prefix}{cluster_id}/steps/{step_id}/")
    for name in LOG_FILES:
        path = folder / name
        if path.exists():
            try:
                put(f"{base}{name}.gz", gz(path.read_bytes()))
            except Exception:
                log.debug("could not upload %s", name, exc_info=True)
    return base


def gz(text: bytes) -> bytes:
    from localaws.core.tables import compress
    return compress(text, "gzip")
