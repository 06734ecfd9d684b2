"""Run every benchmark, one after another, and write their ratios to ``benchmarks/RESULTS.md``.

``make bench`` runs this. Each ``benchmarks/*.py`` (not ``_``-prefixed, not
this file) runs as a subprocess of its own, with the course's environment
(the venv first on PATH, the Java Spark uses, ``PYTHONHASHSEED=0``,
``TZ=UTC``), in the order of their names. Its output goes to the terminal as
it comes. Meanwhile it calls ``_results.record(...)`` for each ratio it
computes; those JSON lines go to a file of its own, named by
``LOCALAWS_BENCH_RESULTS``.

When all have run, RESULTS.md gets: the date (UTC), the machine (CPU, memory,
OS, Python, Java, key package versions, Flink and Kafka from ``jars.lock``),
one table of every figure (benchmark, measure, value, goal, met?, the figures
behind a ratio), and each benchmark's exit status and wall time.

Speed is never pass/fail: a missed goal is a row to look at. A benchmark
that *crashes* or runs past ``--timeout`` is listed as such; the file is
still written, and this script then exits with status 1. A benchmark past
its timeout gets SIGINT (Python raises KeyboardInterrupt, so its ``finally:``
blocks and the stack's clean-up run), and if it has not ended ``--grace``
seconds (60) later, it and every process under it get SIGKILL, each by its PID.

Usage::

    .venv/bin/python benchmarks/run_all.py                   # all of them (what make bench does)
    .venv/bin/python benchmarks/run_all.py --only cold_start # a subset: --only NAME, repeatable
    make bench BENCH_ARGS="--only cold_start --output /tmp/RESULTS.md"

Other options: ``--timeout`` seconds per benchmark (1200), ``--grace``,
``--output`` (``benchmarks/RESULTS.md``), ``--dir`` (the folder to run).
Each benchmark runs with its default sizes; run one by hand to change them.
"""
from __future__ import annotations

import argparse
import collections
import datetime
import importlib.metadata
import json
import math
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent          # benchmarks/, where _results.py lives
ROOT = HERE.parent
RESULTS_ENV = "LOCALAWS_BENCH_RESULTS"          # the variable _results.record() writes to
DEFAULT_TIMEOUT_S = 20 * 60
DEFAULT_GRACE_S = 60                            # from SIGINT to SIGKILL
PACKAGES = ("duckdb", "pyspark", "moto", "boto3", "pyarrow", "confluent-kafka")


@dataclass
class Run:
    """One benchmark's run: how it ended, how long it took, what it recorded."""
    name: str
    status: str = "not run"                     # "ok", "failed (exit 1)", "timed out after 1200 s", ...
    ok: bool = False
    seconds: float = 0.0
    load_before: float | None = None
    records: list[dict] = field(default_factory=list)
    last_line: str = ""                         # the last line it printed (its error, when it failed)


# -- which benchmarks, in what environment ------------------------------------------------------
def discover(folder: Path) -> list[Path]:
    """The benchmark scripts of ``folder``: ``*.py``, not ``_``-prefixed, not this runner."""
    return sorted(p for p in folder.glob("*.py") if not p.name.startswith("_") and p.name != Path(__file__).name)


def java_home() -> tuple[str | None, str]:
    """(JAVA_HOME, "") from ``tools/ensure_java.py --print-java-home``, or (None, why not)."""
    try:
        found = subprocess.run([sys.executable, str(ROOT / "tools" / "ensure_java.py"), "--print-java-home"],
                               capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, str(exc)
    if found.returncode != 0 or not found.stdout.strip():
        return None, (found.stderr.strip().splitlines() or ["no output"])[-1]
    return found.stdout.strip().splitlines()[-1], ""


def course_env(home: str | None) -> dict[str, str]:
    """The environment of ``make``'s RUN_ENV (the same again when ``make bench`` runs this), unbuffered.

    A benchmark imports ``_results`` from its own folder: Python puts a
    script's folder first on ``sys.path``."""
    env = dict(os.environ)
    if home:
        env["JAVA_HOME"] = home
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["PYTHONHASHSEED"], env["TZ"] = "0", "UTC"
    env["PYTHONUNBUFFERED"] = "1"               # their prints reach the terminal as they happen
    return env


# -- the machine --------------------------------------------------------------------------------
def _first_line(command: list[str], stderr: bool = False) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    text = done.stderr if stderr else done.stdout
    return (text.strip().splitlines() or [""])[0]


def cpu() -> str:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Hardware", "Model") and value.strip():
                model = value.strip()
                break
    except OSError:
        pass
    model = model or platform.processor() or platform.machine()
    return f"{model}, {os.cpu_count()} logical CPUs"


def memory() -> str:
    try:
        import psutil
        total = psutil.virtual_memory().total
    except ImportError:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return f"{total / 2**30:.1f} GiB"


def operating_system() -> str:
    try:
        name = platform.freedesktop_os_release()["PRETTY_NAME"]
    except (OSError, KeyError, AttributeError):
        name = f"macOS {platform.mac_ver()[0]}" if sys.platform == "darwin" else platform.system()
    return f"{name}, {platform.system()} {platform.release()} {platform.machine()}"


def jar_versions(lock: Path) -> str:
    """Flink and Kafka as ``jars.lock`` pins them (its ``root`` rows), where it has them."""
    try:
        text = lock.read_text(encoding="utf-8")
    except OSError:
        return ""
    found = {}
    for group, artifact, version in re.findall(r"^root\t([^:\t]+):([^:\t]+):(\S+)", text, re.M):
        if group == "org.apache.flink" and artifact == "flink-runtime":
            found.setdefault("Flink", version)
        elif group == "org.apache.kafka" and artifact.startswith("kafka_"):
            found.setdefault("Kafka", version)
    return ", ".join(f"{name} {version}" for name, version in found.items())


def machine(home: str | None, why_no_java: str) -> list[tuple[str, str]]:
    """(what, description) rows for the Machine table."""
    if home:
        java = f"{_first_line([str(Path(home, 'bin', 'java')), '-version'], stderr=True)} ({home})"
    else:
        java = f"not found: {why_no_java}"
    versions = []
    for name in PACKAGES:
        try:
            versions.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            versions.append(f"{name} not installed")
    rows = [("CPU", cpu()), ("Memory", memory()), ("OS", operating_system()),
            ("Python", f"{platform.python_version()} ({platform.python_implementation()})"),
            ("Java", java), ("Packages", ", ".join(versions))]
    jars = jar_versions(ROOT / "jars.lock")
    if jars:
        rows.append(("JVM jars (jars.lock)", jars))
    return rows


# -- running one benchmark ----------------------------------------------------------------------
def _end(proc: subprocess.Popen, grace: float, interrupt: bool = True) -> str:
    """Stop a benchmark: SIGINT (unless Ctrl-C already sent it one), then, if it has not
    ended ``grace`` seconds later, SIGKILL for it and every process under it, each by its PID."""
    try:
        if interrupt:
            os.kill(proc.pid, signal.SIGINT)
        proc.wait(timeout=grace)
        return "stopped with SIGINT"
    except subprocess.TimeoutExpired:
        pass
    except ProcessLookupError:
        proc.wait()
        return "ended"
    under = []
    try:
        import psutil
        under = psutil.Process(proc.pid).children(recursive=True)     # before the parent goes
    except ImportError:
        pass
    except psutil.Error:                                               # it ended meanwhile
        pass
    for child in under:
        try:
            os.kill(child.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    proc.kill()
    proc.wait()
    return f"killed with SIGKILL {grace:.0f} s later, and {len(under)} process{'es' * (len(under) != 1)} under it"


def _read_records(path: Path) -> list[dict]:
    records = []
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue                            # a line cut short by a kill: skip it
            if isinstance(entry, dict) and {"benchmark", "measure", "value"} <= entry.keys():
                records.append(entry)
    return records


def run_one(script: Path, env: dict[str, str], timeout: float, grace: float, scratch: Path) -> Run:
    """Run ``script``; its output goes to the terminal, its records to a file of its own."""
    run = Run(script.stem)
    results = scratch / f"{script.stem}.jsonl"
    tail: collections.deque[str] = collections.deque(maxlen=20)
    run.load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    print(f"== {script.relative_to(ROOT) if script.is_relative_to(ROOT) else script}", flush=True)
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, str(script)], cwd=ROOT, env={**env, RESULTS_ENV: str(results)},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace")

    def relay():
        for line in proc.stdout:
            sys.stdout.write(line)
            sys.stdout.flush()
            if line.strip():
                tail.append(line.strip())
    reader = threading.Thread(target=relay, daemon=True)
    reader.start()
    try:
        code = proc.wait(timeout=timeout)
        if code == 0:
            run.status, run.ok = "ok", True
        elif code < 0:
            run.status = f"failed (ended by {signal.Signals(-code).name})"
        else:
            run.status = f"failed (exit {code})"
    except subprocess.TimeoutExpired:
        run.last_line = tail[-1] if tail else ""           # where it was, not the traceback of SIGINT
        run.status = f"timed out after {timeout:.0f} s ({_end(proc, grace)})"
    except KeyboardInterrupt:                   # Ctrl-C reached the benchmark too: let it clean up
        _end(proc, grace, interrupt=False)
        raise
    finally:
        run.seconds = time.monotonic() - started
        reader.join(timeout=10)
    run.records = _read_records(results)
    if "timed out" not in run.status:
        run.last_line = tail[-1] if tail else ""
    print(f"-- {run.name}: {run.status}, {duration(run.seconds)}, {len(run.records)} figures recorded\n", flush=True)
    return run


# -- RESULTS.md ---------------------------------------------------------------------------------
def duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s"


def number(value: float) -> str:
    """Three significant digits, thousands separated: 0.0123, 0.85, 1.50, 49.2, 1,234."""
    if not math.isfinite(value):
        return str(value)
    size = abs(value)
    if size >= 100:
        return f"{value:,.0f}"
    if size >= 10:
        return f"{value:.1f}"
    if size >= 1:
        return f"{value:.2f}"
    return "0" if value == 0 else f"{value:.3g}"


def cell(text: object) -> str:
    """Text safe inside a Markdown table cell."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def render(runs: list[Run], rows: list[tuple[str, str]], only: list[str] | None, commit: str) -> str:
    today = datetime.datetime.now(datetime.timezone.utc).date().isoformat()
    at = f", at commit {commit}" if commit else ""
    lines = ["# Benchmark results", "",
             f"Measured on {today} (UTC) by `benchmarks/run_all.py` (`make bench`){at}."
             + (f" Only: {', '.join(only)} (`--only`)." if only else ""), "",
             "Each benchmark measures A and B side by side in one run, on the same machine, and reports",
             "A / B: ratios carry over between machines far better than seconds do. A value with a unit",
             "is an absolute figure, true of this machine only. The goals are the benchmarks' own; a",
             "missed goal is a figure to look at, never a failure.", "",
             "## Machine", "", "| | |", "|---|---|"]
    lines += [f"| {cell(what)} | {cell(text)} |" for what, text in rows]
    lines += ["", "## Results", "",
              "| benchmark | measure | value | goal | met? | figures |", "|---|---|---:|---|---|---|"]
    for run in runs:
        name = run.name if run.ok else f"{run.name} ({'timed out' if 'timed out' in run.status else 'failed'})"
        if not run.records:
            lines.append(f"| {cell(name)} | no figures: {cell(run.status)} | | | | |")
        # ratios first, then the absolute figures, each in the order the benchmark recorded them
        for entry in sorted(run.records, key=lambda e: e.get("unit", "ratio") != "ratio"):
            unit = entry.get("unit", "ratio")
            value = number(float(entry["value"])) + ("" if unit == "ratio" else f" {unit}")
            met = {True: "yes", False: "**no**", None: ""}[entry.get("met")]
            lines.append(f"| {cell(name)} | {cell(entry['measure'])} | {cell(value)} | "
                         f"{cell(entry.get('goal') or '')} | {met} | {cell(entry.get('note', ''))} |")
    lines += ["", "## Runs", "", "| benchmark | status | wall time | load average before |", "|---|---|---:|---:|"]
    for run in runs:
        status = run.status
        if not run.ok and run.last_line:        # what it said last: its error, usually
            status += f": {run.last_line[:200]}"
        load = "" if run.load_before is None else f"{run.load_before:.1f}"
        lines.append(f"| {cell(run.name)} | {cell(status)} | {duration(run.seconds)} | {load} |")
    lines += ["", f"All together: {duration(sum(run.seconds for run in runs))}."]
    return "\n".join(lines) + "\n"


def git_commit() -> str:
    return _first_line(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])


# -- main ---------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", action="append", metavar="NAME",
                        help="run this benchmark only (its file name, with or without .py); repeatable")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S,
                        help=f"seconds each benchmark may run (default {DEFAULT_TIMEOUT_S})")
    parser.add_argument("--grace", type=float, default=DEFAULT_GRACE_S,
                        help=f"seconds from SIGINT to SIGKILL for one past its timeout (default {DEFAULT_GRACE_S})")
    parser.add_argument("--output", type=Path, default=HERE / "RESULTS.md", help="where to write (RESULTS.md)")
    parser.add_argument("--dir", type=Path, default=HERE, help="the folder of the benchmarks (benchmarks/)")
    args = parser.parse_args(argv)

    scripts = discover(args.dir)
    if args.only:
        wanted = {name.removesuffix(".py") for name in args.only}
        unknown = wanted - {s.stem for s in scripts}
        if unknown:
            parser.error(f"no benchmark named {', '.join(sorted(unknown))}; "
                         f"there are: {', '.join(s.stem for s in scripts)}")
        scripts = [s for s in scripts if s.stem in wanted]
    if not scripts:
        print(f"No benchmarks in {args.dir}.")
        return 0

    home, why_no_java = java_home()
    env = course_env(home)
    rows = machine(home, why_no_java)
    runs = []
    with tempfile.TemporaryDirectory(prefix="bench-results-") as scratch:
        for script in scripts:
            try:
                runs.append(run_one(script, env, args.timeout, args.grace, Path(scratch)))
            except KeyboardInterrupt:
                print(f"\nInterrupted: {args.output} left as it was.", file=sys.stderr)
                return 130
    only = [s.stem for s in scripts] if args.only else None
    args.output.write_text(render(runs, rows, only, git_commit()), encoding="utf-8")
    failed = [run.name for run in runs if not run.ok]
    figures = sum(len(run.records) for run in runs)
    print(f"Wrote {args.output}: {figures} figures from {len(runs)} benchmark{'s' * (len(runs) != 1)}"
          + (f"; failed: {', '.join(failed)}" if failed else "."))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
