"""AWS Glue DataBrew's data plane: recipe and profile jobs that really run.

moto records DataBrew's *control plane*: datasets, recipes (versions,
PublishRecipe), recipe jobs, profile jobs, rulesets. It has no StartJobRun,
DescribeJobRun, ListJobRuns or StopJobRun, and runs nothing. This plane adds
them (see ``localaws/core/plane.py`` for the marks):

- **CreateRecipe / UpdateRecipe** check the steps before moto keeps them:
  an operation that is not DataBrew's, a required parameter missing, a value
  outside an enumeration -> ``ValidationException`` (``recipes.py``).
- **CreateRecipeJob / UpdateRecipeJob / CreateProfileJob** check that the
  dataset and the recipe exist (``ResourceNotFoundException``) and that each
  output's format and compression exist (``ValidationException``).
- **StartJobRun** answers at once with a ``RunId``; the run reads the dataset
  from S3, applies the recipe's published version (or the version the job
  names) and writes every output, or profiles the data (``engine.py`` runs
  it in a thread, ``jobs.py`` does the work with ``files.py``, ``recipes.py``
  and ``profile.py``). ``ConflictException`` if the job is already
  running; ``ServiceQuotaExceededException`` past this laptop's run limit.
- **DescribeJobRun / ListJobRuns** report ``STARTING``, ``RUNNING``,
  ``SUCCEEDED``, ``FAILED`` (with ``ErrorMessage``), ``STOPPING``,
  ``STOPPED``, with ``StartedOn``, ``CompletedOn``, ``ExecutionTime`` and
  ``LogGroupName``; **StopJobRun** stops a run between two steps, before
  anything is written.

Each run writes its log lines to CloudWatch Logs, group
``/aws-glue-databrew/jobs/<job>``, one stream per run (unless the job's
``LogSubscription`` is ``DISABLE``).

Not emulated (HTTP 501 at StartJobRun): projects and interactive sessions,
Data Catalog and database inputs or outputs, Excel input, XML and Tableau
Hyper outputs, data quality rulesets (``ValidationConfigurations``), the
recipe operations this stand-in does not implement (``recipes.NOT_RUN``),
schedules. ``MaxCapacity``, ``Timeout``, ``MaxRetries`` and encryption are
recorded, not applied.
"""
from __future__ import annotations

import copy

from localaws.core import Plane, local_hook, moto_hook, not_emulated, operation
from localaws.core.cwlogs import append as append_logs
from localaws.core.waiting import wait_until
from localaws.core.wire import path_params
from . import engine, errors

# recipes, files and jobs need pandas: they are imported where they are used, so that
# importing the stack (every plane's api.py) does not import pandas (~0.4 s).

BACKEND = "moto.databrew.models:DataBrewBackend"
SERVICE = "databrew"
JOB_SAMPLE_MODES = ("FULL_DATASET", "CUSTOM_ROWS")


def _argument(args: tuple, kwargs: dict, position: int, name: str):
    """A moto method's argument, passed by position or by name."""
    return args[position] if len(args) > position else kwargs.get(name)


class DataBrewPlane(Plane):
    """AWS Glue DataBrew: recipe jobs and profile jobs run over S3 data with pandas."""

    name = "databrew"
    services = (SERVICE,)

    def __init__(self, ctx):
        super().__init__(ctx)
        self.runner = engine.Runner(ctx.clock, on_end=self._write_logs)
        self._job_samples: dict[tuple[str, str], dict | None] = {}   # moto drops a profile job's JobSample

    def stop(self):
        self.runner.stop()

    # -- helpers ----------------------------------------------------------------------
    def _backend(self, region: str):
        from moto.databrew.models import databrew_backends
        return databrew_backends[self.ctx.account_id][region]

    @staticmethod
    def _job(backend, name: str):
        job = backend.jobs.get(name)
        if job is None:
            raise errors.ResourceNotFoundException(f"Job {name} wasn't found.")
        return job

    @staticmethod
    def _check_dataset(backend, name: str | None) -> None:
        if name is not None and name not in backend.datasets:
            raise errors.ResourceNotFoundException(f"Dataset {name} wasn't found.")

    @staticmethod
    def _recipe_version(backend, reference: dict):
        """The recipe version a job runs: the one it names, else the latest published one."""
        name = reference.get("Name")
        version = reference.get("RecipeVersion") or "LATEST_PUBLISHED"
        recipe, found = backend.recipes.get(name), None
        if recipe is not None:
            if version == "LATEST_PUBLISHED":
                found = recipe.latest_published
            elif version == "LATEST_WORKING":
                found = recipe.latest_working
            else:
                try:
                    found = recipe.versions.get(float(version))
                except ValueError:
                    found = None
        if found is None:
            raise errors.ResourceNotFoundException(
                f"The recipe {name} for version {version} wasn't found."
                + (" Publish the recipe (PublishRecipe) first." if recipe is not None and
                   version == "LATEST_PUBLISHED" else ""))
        return found

    @staticmethod
    def _check_outputs(outputs, operation_name: str) -> None:
        from . import files
        for output in outputs or []:
            try:
                files.check_output(output)
            except ValueError as exc:
                raise errors.ValidationException(str(exc)) from None
            except files.NotRunnable as exc:
                raise not_emulated(SERVICE, operation_name, exc.reason) from None

    # -- recipes: checked when saved ----------------------------------------------------
    @moto_hook(f"{BACKEND}.create_recipe")
    def create_recipe(self, original, backend, *args, **kwargs):
        from . import recipes
        recipes.validate_steps(_argument(args, kwargs, 2, "recipe_steps") or [])
        return original(backend, *args, **kwargs)

    @moto_hook(f"{BACKEND}.update_recipe")
    def update_recipe(self, original, backend, *args, **kwargs):
        from . import recipes
        steps = _argument(args, kwargs, 2, "recipe_steps")
        if steps is not None:
            recipes.validate_steps(steps)
        return original(backend, *args, **kwargs)

    # -- jobs: checked when created -----------------------------------------------------
    @moto_hook(f"{BACKEND}.create_recipe_job")
    def create_recipe_job(self, original, backend, **kwargs):
        self._check_dataset(backend, kwargs.get("dataset_name"))
        reference = kwargs.get("recipe_reference") or {}
        if reference.get("Name") and reference["Name"] not in backend.recipes:
            raise errors.ResourceNotFoundException(f"Recipe {reference['Name']} wasn't found.")
        if not (kwargs.get("outputs") or kwargs.get("data_catalog_outputs") or kwargs.get("database_outputs")):
            raise errors.ValidationException("A recipe job needs Outputs, DataCatalogOutputs or DatabaseOutputs")
        self._check_outputs(kwargs.get("outputs"), "CreateRecipeJob")
        return original(backend, **kwargs)

    @moto_hook(f"{BACKEND}.update_recipe_job")
    def update_recipe_job(self, original, backend, **kwargs):
        self._check_outputs(kwargs.get("outputs"), "UpdateRecipeJob")
        return original(backend, **kwargs)

    def _check_job_sample(self, sample: dict | None) -> None:
        if sample and sample.get("Mode") and sample["Mode"] not in JOB_SAMPLE_MODES:
            raise errors.ValidationException(f"JobSample Mode must be one of {', '.join(JOB_SAMPLE_MODES)}")

    @moto_hook(f"{BACKEND}.create_profile_job")
    def create_profile_job(self, original, backend, **kwargs):
        self._check_dataset(backend, kwargs.get("dataset_name"))
        self._check_job_sample(kwargs.get("job_sample"))
        job = original(backend, **kwargs)
        self._job_samples[(backend.region_name, kwargs["name"])] = kwargs.get("job_sample")
        return job

    @moto_hook(f"{BACKEND}.update_profile_job")
    def update_profile_job(self, original, backend, **kwargs):
        self._check_job_sample(kwargs.get("job_sample"))
        job = original(backend, **kwargs)
        self._job_samples[(backend.region_name, kwargs["name"])] = kwargs.get("job_sample")
        return job

    # -- runs ---------------------------------------------------------------------------
    def _prepare(self, req, backend, job) -> tuple[engine.JobRun, engine.Task]:
        """The run StartJobRun is about to start, and its task, from the job as it is now."""
        from . import files, jobs, recipes
        if not job.dataset_name:
            raise not_emulated(SERVICE, "StartJobRun", "jobs of a project (ProjectName) are not run locally; "
                                                       "give the job a DatasetName and a RecipeReference")
        dataset = backend.datasets.get(job.dataset_name)
        if dataset is None:
            raise errors.ResourceNotFoundException(f"Dataset {job.dataset_name} wasn't found.")
        source = copy.deepcopy({"Name": dataset.name, "Format": dataset.format,
                                "FormatOptions": dataset.format_options, "Input": dataset.input})
        if not (source["Input"] or {}).get("S3InputDefinition"):
            raise not_emulated(SERVICE, "StartJobRun", "only datasets in Amazon S3 (Input.S3InputDefinition) "
                                                       "are read locally")
        if source["Format"] and source["Format"] not in files.INPUT_FORMATS:
            raise not_emulated(SERVICE, "StartJobRun", f"datasets in format {source['Format']} are not read "
                                                       f"locally ({', '.join(files.INPUT_FORMATS)} are)")
        principal = req.principal
        run = engine.JobRun(run_id=engine.new_run_id(), region=req.region, job_name=job.name,
                            job_type=job.job_type, dataset_name=job.dataset_name,
                            started_by=principal.arn if principal else "", started_on=self.ctx.clock.now(),
                            log_subscription=job.log_subscription or "ENABLE")
        s3, clock = self.ctx.s3, self.ctx.clock
        if job.job_type == "RECIPE":
            if job.data_catalog_outputs or job.database_outputs:
                raise not_emulated(SERVICE, "StartJobRun", "DataCatalogOutputs and DatabaseOutputs are not "
                                                           "written locally; use Outputs (S3)")
            version = self._recipe_version(backend, job.recipe_reference or {})
            skipped = recipes.unsupported(version.steps)
            if skipped:
                raise not_emulated(SERVICE, "StartJobRun", f"the recipe uses {', '.join(skipped)}, which this "
                                                           "stand-in does not run")
            run.outputs = copy.deepcopy(job.outputs or [])
            run.recipe_reference = {"Name": version.name, "RecipeVersion": str(version.version)}
            return run, jobs.recipe_task(s3, clock, source, copy.deepcopy(version.steps), run.outputs)
        if job.validation_configurations:
            raise not_emulated(SERVICE, "StartJobRun", "data quality rulesets (ValidationConfigurations) are "
                                                       "not evaluated locally")
        run.profile_configuration = copy.deepcopy(job.configuration)
        run.job_sample = copy.deepcopy(self._job_samples.get((req.region, job.name)))
        return run, jobs.profile_task(s3, clock, source, dict(job.output_location or {}),
                                        run.profile_configuration, run.job_sample)

    @operation("StartJobRun")
    def start_job_run(self, req):
        backend = self._backend(req.region)
        job = self._job(backend, path_params(req).get("Name", ""))
        run, task = self._prepare(req, backend, job)
        self.runner.start(run, task)
        return {"RunId": run.run_id}

    def _run(self, req) -> engine.JobRun:
        params = path_params(req)
        name, run_id = params.get("Name", ""), params.get("RunId", "")
        self._job(self._backend(req.region), name)
        run = self.runner.find(req.region, name, run_id)
        if run is None:
            raise errors.ResourceNotFoundException(f"Job run {run_id} of job {name} wasn't found.")
        return run

    @operation("DescribeJobRun")
    def describe_job_run(self, req):
        return self._run(req).describe()

    @operation("ListJobRuns")
    def list_job_runs(self, req):
        name = path_params(req).get("Name", "")
        self._job(self._backend(req.region), name)
        runs = self.runner.runs(req.region, name)
        try:
            start = int((req.query.get("nextToken") or ["0"])[0])
            size = int((req.query.get("maxResults") or ["100"])[0])
        except ValueError:
            raise errors.ValidationException("nextToken and maxResults must be numbers") from None
        if not 1 <= size <= 100:
            raise errors.ValidationException("maxResults must be between 1 and 100")
        page = runs[start:start + size]
        answer = {"JobRuns": [r.describe() for r in page]}
        if start + size < len(runs):
            answer["NextToken"] = str(start + size)
        return answer

    @operation("StopJobRun")
    def stop_job_run(self, req):
        run = self._run(req)
        if not self.runner.request_stop(run):
            raise errors.ValidationException(f"Job run {run.run_id} has already ended ({run.state}); "
                                             "only a STARTING or RUNNING run can be stopped")
        return {"RunId": run.run_id}

    def _write_logs(self, run: engine.JobRun) -> None:
        if run.log_group_name:
            logs = self.ctx.client("logs", region_name=run.region)
            append_logs(logs, run.log_group_name, run.run_id, run.log_lines,
                        int(self.ctx.clock.time() * 1000))

    # -- teaching hooks -----------------------------------------------------------------
    @local_hook("On AWS, a new job run spends a minute or more in STARTING while DataBrew provisions "
                "its nodes: call StopJobRun then, or poll DescribeJobRun to watch the states.")
    def hold_runs(self) -> None:
        """Keep new runs in STARTING until :meth:`release_runs` (to show StopJobRun on them)."""
        self.runner.hold()

    @local_hook("On AWS, runs start on their own: there is nothing to release.")
    def release_runs(self) -> None:
        self.runner.release()

    @local_hook("On AWS, poll DescribeJobRun and note each State it reports; CloudWatch Logs "
                "(the run's LogGroupName) has the run's messages.")
    def run_states(self, job_name: str, run_id: str, region: str | None = None) -> list[str]:
        """Every state the run has been in, in order (``["STARTING", "RUNNING", "SUCCEEDED"]``)."""
        run = self.runner.find(region or self.ctx.region, job_name, run_id)
        if run is None:
            raise KeyError(f"no run {run_id} of job {job_name}")
        return list(run.history)

    @local_hook("On AWS, list the job's output location (s3.list_objects_v2) to see what a run wrote.")
    def written_files(self, job_name: str, run_id: str, region: str | None = None) -> list[str]:
        """The s3:// URIs of the files the run wrote (empty unless it SUCCEEDED)."""
        run = self.runner.find(region or self.ctx.region, job_name, run_id)
        if run is None:
            raise KeyError(f"no run {run_id} of job {job_name}")
        return list(run.written)


# -- a helper that works on AWS too -----------------------------------------------------
def wait_for_run(databrew, job_name: str, run_id: str, timeout: float = 300, poll: float = 0.2) -> dict:
    """Poll DescribeJobRun until the run has ended; its description (``TimeoutError`` if it has not).

    Plain boto3, so it works against AWS as well (use ``poll=10`` there: runs take minutes).
    """
    last: dict = {}

    def ended() -> bool:
        last.update(databrew.describe_job_run(Name=job_name, RunId=run_id))
        return last["State"] in engine.ENDED

    if not wait_until(ended, timeout, poll=poll):
        raise TimeoutError(f"job run {run_id} of {job_name} is still {last.get('State')} after {timeout} s")
    return last
