"""The Athena chapters keep their template and their claim tags.

nbval re-executes the notebooks (``make test``); this file checks the parts
nbval cannot see: every curriculum id a chapter promises is tagged on a cell,
the template's sections are there (DESIGN.md), and cells whose output is not
compared assert their claim instead.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]

CHAPTERS = {
    "notebooks/01_athena_basics.ipynb": ["ATH-1", "ATH-2", "ATH-3", "ATH-4", "ATH-5", "ATH-6",
                                         "ATH-7", "ATH-8", "ATH-15"],
    "notebooks/02_athena_performance.ipynb": ["ATH-9", "ATH-10", "ATH-11", "ATH-12", "ATH-13"],
}
SECTIONS = ["```mermaid", "## How this differs from AWS", "## Exam cheat-sheet", "## Clean up",
            "labs/01_athena/01_athena.ipynb"]


def _load(path: str):
    return nbformat.read(str(ROOT / path), as_version=4)


@pytest.mark.parametrize("path", sorted(CHAPTERS))
def test_every_promised_id_is_tagged(path):
    nb = _load(path)
    tags = {t for cell in nb.cells for t in cell.metadata.get("tags", [])}
    missing = [i for i in CHAPTERS[path] if f"claim-{i}" not in tags]
    assert not missing, f"{path}: no cell tagged for {missing}"


@pytest.mark.parametrize("path", sorted(CHAPTERS))
def test_template_sections(path):
    text = "\n".join(cell.source for cell in _load(path).cells if cell.cell_type == "markdown")
    assert [s for s in SECTIONS if s not in text] == []


def test_changed_since_2023_box_cites_aws():
    text = "\n".join(c.source for c in _load("notebooks/01_athena_basics.ipynb").cells)
    assert "Changed since 2023" in text
    assert "https://docs.aws.amazon.com/athena/latest/ug/engine-versions-reference-0003.html" in text
    assert "10 MB" in text and "pricing" in text


# A cell *shows a time* when it reads a clock, a measured duration, or calls a function of the
# notebook that does (best_time, timed...), outside the functions it defines, and displays something.
CLOCK = r"perf_counter\(|time\.time\(|\[\"seconds\"\]"
DURATION_TEXT = re.compile(r"\b\d+(?:\.\d+)?\s*(?:s|ms|sec|seconds)\b")
# How many cells show a time in each chapter: chapter 01 shows none, so it must print no duration.
TIMED_CELLS = {"notebooks/01_athena_basics.ipynb": 0, "notebooks/02_athena_performance.ipynb": 2,
               "notebooks/03_athena_federated.ipynb": 1}


def _functions(source: str):
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    return [node for node in tree.body if isinstance(node, ast.FunctionDef)]


def _outside_functions(source: str) -> str:
    """The cell's code without the bodies of the functions it defines (calls are what time)."""
    lines = source.splitlines()
    for node in _functions(source):
        lines[node.lineno - 1:node.end_lineno] = [""] * (node.end_lineno - node.lineno + 1)
    return "\n".join(lines)


def _timer(cells) -> re.Pattern:
    """Reading a clock, or calling one of the notebook's functions that read one."""
    names = [node.name for c in cells if c.cell_type == "code" for node in _functions(c.source)
             if re.search(CLOCK, ast.get_source_segment(c.source, node) or "")]
    return re.compile("|".join([CLOCK] + [rf"\b{n}\(" for n in names]))


def _timed(cell, timer: re.Pattern) -> bool:
    return (cell.cell_type == "code" and bool(cell.get("outputs"))
            and bool(timer.search(_outside_functions(cell.source))))


def _printed(cell) -> str:
    return "".join(o.get("text", "") + str(o.get("data", {}).get("text/plain", ""))
                   for o in cell.get("outputs", []))


@pytest.mark.parametrize("path", sorted(TIMED_CELLS))
def test_timings_only_in_ignored_cells(path):
    """Each cell that shows a time ignores its output and asserts its claim; no compared cell
    prints a duration (chapter 01 times nothing, so it prints none)."""
    cells = _load(path).cells
    timer = _timer(cells)
    timed = [c for c in cells if _timed(c, timer)]
    assert len(timed) == TIMED_CELLS[path]
    for cell in timed:
        assert cell.source.startswith("# NBVAL_IGNORE_OUTPUT\n") and "assert" in cell.source, cell.source[:80]
    shown = [c.source[:60] for c in cells if c.cell_type == "code" and not _timed(c, timer)
             and DURATION_TEXT.search(_printed(c))]
    assert not shown, f"durations printed by cells that are compared: {shown}"


def test_the_timing_rule_fires():
    shown = nbformat.v4.new_output("stream", text="took 1.5 s\n")
    define = nbformat.v4.new_code_cell("def best(sql):\n    return time.perf_counter()")
    call = nbformat.v4.new_code_cell("print(best('SELECT 1'))", outputs=[shown])
    timer = _timer([define, call])
    assert _timed(call, timer) and not _timed(define, timer)
    assert not _timed(nbformat.v4.new_code_cell("print(run('x'))", outputs=[shown]), timer)
    assert DURATION_TEXT.search(_printed(call))


def test_lab_has_readme_and_budget_check():
    nb = _load("labs/01_athena/01_athena.ipynb")
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert "CREATE TABLE flights_curated" in code and "partitioned_by" in code
    assert "BUDGET" in code and "grading.check(spent <= BUDGET" in code
    assert (ROOT / "labs/01_athena/README.md").is_file()
