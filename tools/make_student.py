#!/usr/bin/env python3
"""Generate the student version of each lab from its solution notebook.

A lab is one source notebook, ``labs/NN_name/NN_name.ipynb``, that contains
the solution. Solutions are marked:

- in code cells, the lines between ``### BEGIN SOLUTION`` and
  ``### END SOLUTION`` (markers included) become one line,
  ``raise NotImplementedError("Your code here")``, indented like the
  ``BEGIN`` marker;
- in markdown cells, everything between ``<!-- BEGIN SOLUTION -->`` and
  ``<!-- END SOLUTION -->`` (markers included) is removed.

Outputs and execution counts are cleared, so the learner starts clean. The
result goes to ``labs/NN_name/student/NN_name.ipynb`` (git-ignored).

Usage::

    python tools/make_student.py                 # every lab
    python tools/make_student.py labs/00_warmup  # one lab (folder or notebook)
    python tools/make_student.py --check         # exit 1 if a student copy is missing or stale
    python tools/make_student.py --out DIR ...   # write DIR/NN_name.ipynb instead

The output depends only on the source: running it twice changes nothing.
"""
from __future__ import annotations

import argparse
import copy
import re
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
LABS = ROOT / "labs"

CODE_BEGIN = "### BEGIN SOLUTION"
CODE_END = "### END SOLUTION"
CODE_STUB = 'raise NotImplementedError("Your code here")'
MARKDOWN_SOLUTION = re.compile(r"<!-- BEGIN SOLUTION -->.*?<!-- END SOLUTION -->\n?", re.DOTALL)
MARKDOWN_MARKER = re.compile(r"<!-- (BEGIN|END) SOLUTION -->")

# Cell metadata written by the tools that executed the solution; a student
# copy has not been executed.
RUN_METADATA = ("execution", "collapsed", "scrolled")


class MarkerError(ValueError):
    """Solution markers that do not pair up."""


def strip_code(source: str, where: str = "cell") -> tuple[str, int]:
    """Replace each solution block in ``source``; return (new source, blocks replaced)."""
    out: list[str] = []
    inside = False
    blocks = 0
    for number, line in enumerate(source.split("\n"), start=1):
        marker = line.strip()
        if marker == CODE_BEGIN:
            if inside:
                raise MarkerError(f"{where}, line {number}: BEGIN SOLUTION inside another solution")
            inside = True
            blocks += 1
            indent = line[: len(line) - len(line.lstrip())]
            out.append(indent + CODE_STUB)
        elif marker == CODE_END:
            if not inside:
                raise MarkerError(f"{where}, line {number}: END SOLUTION without BEGIN SOLUTION")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise MarkerError(f"{where}: BEGIN SOLUTION is never closed by END SOLUTION")
    return "\n".join(out), blocks


def strip_markdown(source: str, where: str = "cell") -> tuple[str, int]:
    """Remove each marked solution from a markdown ``source``; return (new source, blocks)."""
    stripped, blocks = MARKDOWN_SOLUTION.subn("", source)
    if MARKDOWN_MARKER.search(stripped):
        raise MarkerError(f"{where}: unpaired <!-- BEGIN/END SOLUTION --> marker")
    return stripped, blocks


def student_notebook(nb: nbformat.NotebookNode, name: str = "notebook") -> tuple[nbformat.NotebookNode, int]:
    """The student version of a solution notebook, and how many solutions it hid."""
    student = copy.deepcopy(nb)
    blocks = 0
    for index, cell in enumerate(student.cells):
        where = f"{name} cell {index}"
        if cell.cell_type == "code":
            cell.source, n = strip_code(cell.source, where)
            cell.outputs = []
            cell.execution_count = None
        elif cell.cell_type == "markdown":
            cell.source, n = strip_markdown(cell.source, where)
        else:
            n = 0
        for key in RUN_METADATA:
            cell.metadata.pop(key, None)
        blocks += n
    student.metadata.pop("widgets", None)
    return student, blocks


def lab_sources(args: list[str]) -> list[Path]:
    """Solution notebooks named by ``args`` (folders or notebooks), else every lab."""
    if not args:
        return sorted(p for p in LABS.glob("*/*.ipynb") if p.stem == p.parent.name)
    sources = []
    for arg in args:
        path = Path(arg).resolve()
        sources.append(path / f"{path.name}.ipynb" if path.is_dir() else path)
    return sources


def student_path(source: Path, out_dir: Path | None = None) -> Path:
    return (out_dir or source.parent / "student") / source.name


def render(source: Path) -> str:
    """The student notebook for ``source``, as the exact text to write."""
    nb = nbformat.read(str(source), as_version=4)
    student, blocks = student_notebook(nb, source.name)
    if blocks == 0:
        raise MarkerError(f"{source.name}: no solution markers; a lab needs at least one")
    return nbformat.writes(student) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("labs", nargs="*", help="lab folders or solution notebooks (default: all)")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if a student copy is missing or out of date")
    parser.add_argument("--out", type=Path, help="write the student notebooks into this folder")
    options = parser.parse_args(argv)

    stale = []
    for source in lab_sources(options.labs):
        target = student_path(source, options.out)
        text = render(source)
        current = target.read_text(encoding="utf-8") if target.exists() else None
        if options.check:
            if current != text:
                stale.append(target)
        elif current != text:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
            print(f"wrote {target.relative_to(ROOT) if target.is_relative_to(ROOT) else target}")
    for target in stale:
        print(f"stale or missing: {target}; run python tools/make_student.py", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
