"""Re-execute notebooks in place, as nbval will re-run them, and save the outputs.

    .venv/bin/python tools/execute_notebooks.py notebooks/01_athena_basics.ipynb [more.ipynb ...]

Each notebook runs top to bottom in a fresh kernel, in its own folder, with
the environment tests/conftest.py gives nbval's kernels (fixed hash seed, UTC,
the venv's Java). What is saved is what a learner sees: consecutive prints
merged into one output, carriage returns collapsed (a progress bar keeps
only its last state), no execution timings in the metadata.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import nbformat  # noqa: E402
from nbclient import NotebookClient  # noqa: E402

import conftest  # noqa: E402  (the repository's root conftest.py)

CARRIAGE_RETURN = re.compile(r"^.*\r(?=[^\n])", re.MULTILINE)   # what nbval and Jupyter do with \r


def tidy(outputs):
    """Merge consecutive stream outputs of one name; keep a bar's last state only."""
    merged = []
    for out in outputs:
        if merged and out.output_type == "stream" and merged[-1].output_type == "stream" \
                and merged[-1].name == out.name:
            merged[-1].text += out.text
        else:
            merged.append(out)
    for out in merged:
        if out.output_type == "stream":
            out.text = CARRIAGE_RETURN.sub("", out.text)
    return merged


def execute(path: Path) -> None:
    nb = nbformat.read(str(path), as_version=4)
    client = NotebookClient(nb, timeout=900, kernel_name="python3", record_timing=False,
                            resources={"metadata": {"path": str(path.parent.resolve())}})
    client.execute()
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = tidy(cell.get("outputs", []))
    nbformat.write(nb, str(path))


if __name__ == "__main__":
    conftest._deterministic_environment()
    if not os.environ.get("JAVA_HOME"):                 # what the Makefile exports for `make test`
        os.environ["JAVA_HOME"] = subprocess.run(
            [sys.executable, str(ROOT / "tools" / "ensure_java.py"), "--print-java-home"],
            check=True, capture_output=True, text=True).stdout.strip()
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    for name in sys.argv[1:]:
        execute(Path(name))
        print("executed", name)
