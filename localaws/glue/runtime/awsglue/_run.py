"""What the local job runner tells the script's process, and what it hands back (local only).

On Glue the driver talks to Glue's services (the bookmark service, the job
run's controller) over the network. Locally the runner
(``localaws/glue/jobs.py``) and the driver share a folder, named by the
environment variable ``LOCALAWS_GLUE_RUN_DIR``:

- ``run.json`` (written by the runner): the job's name, the run's id and
  attempt, the ``--job-bookmark-option`` and the job bookmark committed by
  the last successful run (``null`` when there is none);
- ``bookmark.json`` (written here, by ``Job.commit``): the bookmark this run
  commits; the runner stores it only if the run ends SUCCEEDED;
- ``stop`` (created by the runner): BatchStopJobRun was called; a streaming
  loop ends between two windows;
- ``error.json`` and ``traceback.txt`` (written by ``_launcher.py``): why
  the script failed.

Outside a local run (a notebook importing ``awsglue``) there is no folder:
bookmarks are off and nothing is written.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

ENV = "LOCALAWS_GLUE_RUN_DIR"


def folder() -> Path | None:
    value = os.environ.get(ENV)
    return Path(value) if value else None


def info() -> dict:
    """``run.json``, or an empty dict outside a local run."""
    here = folder()
    if here is None or not (here / "run.json").exists():
        return {}
    return json.loads((here / "run.json").read_text())


def stop_requested() -> bool:
    here = folder()
    return here is not None and (here / "stop").exists()


def save_bookmark(bookmark: dict) -> None:
    """Hand the run's bookmark back to the runner (atomically: write, then rename)."""
    here = folder()
    if here is None:
        return
    part = here / "bookmark.json.part"
    part.write_text(json.dumps(bookmark, sort_keys=True))
    part.replace(here / "bookmark.json")
