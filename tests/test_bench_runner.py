"""``make bench``'s runner: benchmarks/run_all.py and the record() of benchmarks/_results.py.

The real benchmarks take minutes each and run only under ``make bench``;
here tiny fake benchmarks in ``tmp_path`` stand in for them: one that meets
and misses goals, one that crashes after recording a figure, one that hangs
(and cleans up on SIGINT), one that ignores SIGINT and leaves a process of
its own behind. The runner must write a correct RESULTS.md for each case,
exit non-zero when a benchmark fails, and leave no process running.
"""
from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import psutil
import pytest

from localaws.core.waiting import wait_until

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "benchmarks"
RUNNER = BENCHMARKS / "run_all.py"


def load(path: Path):
    spec = importlib.util.spec_from_file_location(f"_under_test_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module                          # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


results = load(BENCHMARKS / "_results.py")

PASSES = """
import _results
print("passes: A 2.0 s, B 4.0 s")
_results.record("passes", "A / B", 2.0 / 4.0, goal="<= 1", note="2.0 s / 4.0 s")
_results.record("passes", "A alone", 2.0, unit="s")
_results.record("passes", "C / D", 3.0, goal="<= 1.5", note="3 | 1")
"""
FAILS = """
import _results
_results.record("fails", "E / F", 1234.5, goal=">= 20")
raise RuntimeError("boom in step 2")
"""
HANGS = """
import os, signal, _results
_results.record("hangs", "G / H", 0.25)
try:
    signal.pause()                     # a benchmark stuck for good
finally:                               # SIGINT: KeyboardInterrupt, so the clean-up runs
    open(os.environ["MARKER"], "w").write("cleaned up")
"""
IGNORES_SIGINT = """
import os, signal, subprocess, sys
signal.signal(signal.SIGINT, signal.SIG_IGN)
child = subprocess.Popen([sys.executable, "-c", "import signal; signal.pause()"], start_new_session=True)
open(os.environ["CHILD_PID"], "w").write(str(child.pid))
signal.pause()
"""
HELPER = """
import os
open(os.environ["MARKER"] + ".helper", "w").write("a _-prefixed file must not run")
"""


def fake_benchmarks(folder: Path, **scripts: str) -> Path:
    folder.mkdir()
    for name, source in scripts.items():
        (folder / f"{name}.py").write_text(textwrap.dedent(source))
    return folder


def run_all(folder: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    """run_all.py on ``folder``; its fakes find _results.py on PYTHONPATH (real ones sit beside it)."""
    path = os.pathsep.join(p for p in (str(BENCHMARKS), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "PYTHONPATH": path, **env}
    return subprocess.run([sys.executable, str(RUNNER), "--dir", str(folder),
                           "--output", str(folder / "RESULTS.md"), *args],
                          capture_output=True, text=True, timeout=300, env=env)


def table(markdown: str, heading: str) -> list[list[str]]:
    """The rows of the table under ``## heading``, as lists of cells (header and rule left out)."""
    section = markdown.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("|")][2:]
    return [[c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", row)[1:-1]] for row in rows]


def test_results_md_for_a_pass_and_a_failure(tmp_path):
    folder = fake_benchmarks(tmp_path / "benchmarks", passes=PASSES, fails=FAILS, _helper=HELPER)
    marker = tmp_path / "marker"
    done = run_all(folder, MARKER=str(marker))

    assert done.returncode == 1, done.stderr                 # one benchmark failed
    assert "passes: A 2.0 s, B 4.0 s" in done.stdout         # benchmarks' output reaches the terminal
    assert "boom in step 2" in done.stdout
    assert not Path(str(marker) + ".helper").exists()        # _helper.py is not a benchmark
    text = (folder / "RESULTS.md").read_text()
    assert text.startswith("# Benchmark results\n")
    assert re.search(r"Measured on \d{4}-\d\d-\d\d \(UTC\)", text)

    machine = {row[0]: row[1] for row in table(text, "Machine")}
    assert {"CPU", "Memory", "OS", "Python", "Java", "Packages"} <= machine.keys()
    assert "duckdb " in machine["Packages"] and "moto " in machine["Packages"]
    assert "Flink " in machine["JVM jars (jars.lock)"]

    # in the order the scripts ran (by name), ratios before absolute figures
    assert table(text, "Results") == [
        ["fails (failed)", "E / F", "1,234", ">= 20", "yes", ""],
        ["passes", "A / B", "0.5", "<= 1", "yes", "2.0 s / 4.0 s"],
        ["passes", "C / D", "3.00", "<= 1.5", "**no**", "3 | 1"],
        ["passes", "A alone", "2.00 s", "", "", ""],
    ]
    runs = {row[0]: row for row in table(text, "Runs")}
    assert list(runs) == ["fails", "passes"]
    assert runs["fails"][1] == "failed (exit 1): RuntimeError: boom in step 2"
    assert runs["passes"][1] == "ok"
    assert re.fullmatch(r"\d+\.\d s", runs["passes"][2])


def test_only_runs_the_named_benchmarks_and_exits_zero_when_they_pass(tmp_path):
    folder = fake_benchmarks(tmp_path / "benchmarks", passes=PASSES, fails=FAILS)
    done = run_all(folder, "--only", "passes.py")
    assert done.returncode == 0, done.stdout + done.stderr
    text = (folder / "RESULTS.md").read_text()
    assert "Only: passes (`--only`)." in text
    assert {row[0] for row in table(text, "Results")} == {"passes"}
    assert [row[:2] for row in table(text, "Runs")] == [["passes", "ok"]]


def test_an_unknown_name_is_refused_and_nothing_is_written(tmp_path):
    folder = fake_benchmarks(tmp_path / "benchmarks", passes=PASSES)
    done = run_all(folder, "--only", "nope")
    assert done.returncode == 2
    assert "no benchmark named nope; there are: passes" in done.stderr
    assert not (folder / "RESULTS.md").exists()


def test_a_benchmark_past_its_timeout_is_stopped_and_listed(tmp_path):
    folder = fake_benchmarks(tmp_path / "benchmarks", hangs=HANGS, ignores_sigint=IGNORES_SIGINT)
    marker, child_pid = tmp_path / "marker", tmp_path / "child.pid"
    done = run_all(folder, "--timeout", "6", "--grace", "2", MARKER=str(marker), CHILD_PID=str(child_pid))

    assert done.returncode == 1
    text = (folder / "RESULTS.md").read_text()
    runs = {row[0]: row[1] for row in table(text, "Runs")}
    assert runs["hangs"] == "timed out after 6 s (stopped with SIGINT)"
    assert runs["ignores_sigint"] == "timed out after 6 s (killed with SIGKILL 2 s later, and 1 process under it)"
    assert marker.read_text() == "cleaned up"                # SIGINT let its finally: run
    assert ["hangs (timed out)", "G / H", "0.25", "", "", ""] in table(text, "Results")
    assert ["ignores_sigint (timed out)", "no figures: " + runs["ignores_sigint"], "", "", "", ""] \
        in table(text, "Results")

    pid = int(child_pid.read_text())                         # the process the benchmark started is gone

    def gone():
        try:
            return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True
    assert wait_until(gone, 10, poll=0.05)


def test_record_appends_one_json_line_only_when_asked(tmp_path, monkeypatch):
    monkeypatch.delenv(results.ENV, raising=False)
    entry = results.record("b", "A / B", 3, goal=">= 2", note="6 / 2")
    assert entry == {"benchmark": "b", "measure": "A / B", "value": 3.0, "unit": "ratio", "goal": ">= 2",
                     "met": True, "note": "6 / 2"}

    out = tmp_path / "results.jsonl"
    monkeypatch.setenv(results.ENV, str(out))
    results.record("b", "A / B", 3, goal=">= 2", note="6 / 2")
    results.record("b", "latency", 41.5, goal="<= 30", unit="ms")
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert lines[0] == entry
    assert lines[1]["met"] is False and lines[1]["unit"] == "ms"

    with pytest.raises(ValueError, match="a goal is a comparison and a number"):
        results.record("b", "A / B", 1.0, goal="1.5x or less")
    assert len(out.read_text().splitlines()) == 2             # nothing written for it


@pytest.mark.parametrize("value, goal, met", [
    (1.5, "<= 1.5", True), (1.5, "< 1.5", False), (20, ">= 20", True), (19.9, "> 20", False),
    (0, "== 0", True), (0.05, "<= .1", True), (2e-3, "<= 1e-2", True), (1.0, None, None),
    (float("nan"), "<= 1", None),
])
def test_goal_met(value, goal, met):
    assert results.goal_met(value, goal) is met


def test_every_real_benchmark_records_under_its_own_name():
    """run_all finds the eight benchmarks (not _results.py, not itself); each records as its file is named."""
    runner = load(RUNNER)
    scripts = runner.discover(BENCHMARKS)
    assert [s.name for s in scripts] == sorted(s.name for s in scripts)
    assert {"_results.py", "run_all.py"}.isdisjoint(s.name for s in scripts)
    assert len(scripts) >= 8
    for script in scripts:
        names = set(re.findall(r"_results\.record\(\s*\"([^\"]+)\"", script.read_text()))
        assert names == {script.stem}, (script.name, names)
