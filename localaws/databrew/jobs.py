"""The work of a job run: what a recipe job and a profile job do, as tasks for ``engine.Runner``.

- :func:`recipe_task`: read the dataset, apply the recipe's steps one by one
  (a stop request is honoured before each step), encode every output in
  memory, then write them all (``files.publish``), so a run that fails or is
  stopped writes nothing;
- :func:`profile_task`: read the dataset, compute the profile
  (``profile.py``), write one JSON document to the job's output location.

This is the module that needs pandas; ``api.py`` imports it on the first
StartJobRun, so a stack that never runs DataBrew does not pay for pandas.
"""
from __future__ import annotations

import json
from typing import Callable

from localaws.core.s3 import folder, join
from . import files, recipes
from .engine import JobRun, RunFailed, Task
from .profile import profile


def _output_bucket_exists(s3, bucket: str) -> None:
    if not s3.bucket_exists(bucket):
        raise RunFailed(f"The job's output bucket {bucket} does not exist")


def recipe_task(s3, clock, dataset: dict, steps: list[dict], outputs: list[dict]) -> Task:
    """Read ``dataset``, apply ``steps``, write ``outputs``: a recipe job's run."""
    def task(run: JobRun, checkpoint: Callable[[], None]) -> None:
        for output in outputs:
            _output_bucket_exists(s3, output["Location"]["Bucket"])
        df = files.read_dataset(s3, dataset)
        run.log_lines.append(f"Read {len(df)} rows and {len(df.columns)} columns of dataset {dataset['Name']}")
        df = recipes.apply_recipe(df, steps, before_step=lambda number, name: checkpoint(),
                                     log=run.log_lines.append)
        when = clock.now()
        produced = [f for output in outputs for f in files.output_files(df, output, run.job_name, when)]
        checkpoint()            # the last moment a stop request is honoured: next, files are written
        overwrite = [join(o["Location"]["Bucket"], folder(o["Location"].get("Key") or ""))
                     for o in outputs if o.get("Overwrite")]
        files.publish(s3, produced, overwrite)
        run.written = [uri for uri, _ in produced]
        run.log_lines.append(f"Wrote {len(df)} rows to {len(produced)} file(s): {', '.join(run.written)}")
    return task


def profile_task(s3, clock, dataset: dict, location: dict, configuration: dict | None,
                 job_sample: dict | None) -> Task:
    """Read ``dataset`` and write its profile (``profile.py``) to ``location``: a profile job's run."""
    def task(run: JobRun, checkpoint: Callable[[], None]) -> None:
        _output_bucket_exists(s3, location["Bucket"])
        df = files.read_dataset(s3, dataset)
        checkpoint()
        document = profile(df, dataset_name=dataset["Name"], job_name=run.job_name, run_id=run.run_id,
                           profiled_at=clock.now(), configuration=configuration, job_sample=job_sample)
        key = folder(location.get("Key") or "") if location.get("Key") else ""
        uri = join(location["Bucket"], f"{key}{dataset['Name']}_{run.run_id}.json")
        checkpoint()
        files.publish(s3, [(uri, json.dumps(document, indent=2).encode())], [])
        run.written = [uri]
        run.log_lines.append(f"Profiled {document['sampleSize']} rows, {document['columnsCount']} columns: {uri}")
    return task
