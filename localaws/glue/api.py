"""AWS Glue's data plane: crawlers that crawl, jobs that run.

moto keeps every Glue record (the Data Catalog, crawlers, classifiers, jobs,
job runs, triggers, workflows) and answers in Glue's JSON. This plane takes
over where Glue *does* something (see ``localaws/core/plane.py`` for the
marks):

- **Crawlers** (``crawler.py``): StartCrawler reads the crawler's S3 targets
  in a background thread (RUNNING -> STOPPING -> READY, as on Glue), infers
  tables and partitions and writes them to the Data Catalog through the Glue
  API; GetCrawlerMetrics and ListCrawls report what changed.
- **Jobs** (``jobs.py``): StartJobRun runs the job's script for real: ``glueetl``
  on Spark (``spark-submit``, one local driver JVM), ``gluestreaming`` on Spark
  Structured Streaming (with Spark's Kafka connector), ``pythonshell`` on Python,
  with the ``awsglue`` library (``runtime/awsglue/``); states, CloudWatch logs,
  retries, timeouts, MaxConcurrentRuns, BatchStopJobRun, and job bookmarks
  (``bookmarks.py``: GetJobBookmark, ResetJobBookmark).
- **Triggers and workflows** (``triggers.py``): ON_DEMAND, SCHEDULED (cron on
  the stack's clock) and CONDITIONAL triggers start jobs and crawlers;
  StartWorkflowRun runs a workflow's triggers as one run, with Statistics.
- **Classifiers** (moto has none): Create/Get/Update/DeleteClassifier.
- **Lake Formation on the Data Catalog** (``catalog_reads``): for a caller
  Lake Formation restricts (``localaws/core/lake.py``), GetDatabase(s),
  GetTable(s), GetTableVersions, GetPartition(s), BatchGetPartition and
  SearchTables answer only what it may describe: other databases and
  tables are not found (EntityNotFoundException, as for a missing one), and
  a table lists only the columns it may select. The administrator and
  tables Lake Formation does not govern get moto's answers unchanged.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone

from localaws.core import Plane, local_hook, moto_hook, moto_property, operation
from . import engine, errors, jobs, triggers

BACKEND = "moto.glue.models:GlueBackend"
MODELS = "moto.glue.models"
CLASSIFIER_KINDS = ("GrokClassifier", "XMLClassifier", "JsonClassifier", "CsvClassifier")


class GluePlane(Plane):
    name = "glue"
    services = ("glue",)

    def __init__(self, ctx):
        super().__init__(ctx)
        self.engine = engine.Engine(ctx)        # crawls
        self.classifiers: dict[str, dict[str, dict]] = {}     # Region -> name -> {"CsvClassifier": {...}}
        self.triggers = triggers.Triggers(ctx, self._backends, self._crawls_of)
        self.jobs = jobs.JobRuns(ctx)           # job runs

    def stop(self):
        self.triggers.stop()
        self.jobs.stop()
        self.engine.stop()

    # ================================================================ crawlers
    def _backend(self, region: str):
        from moto.glue.models import glue_backends
        return glue_backends[self.ctx.account_id][region]

    @moto_hook(f"{BACKEND}.start_crawler")
    def start_crawler(self, original, backend, name):
        """StartCrawler: the crawl really runs (``engine.Engine.start``), in the background."""
        crawler = backend.get_crawler(name)             # EntityNotFoundException from moto
        region = backend.region_name
        latest = self.engine.latest(region, name)
        if latest is not None and latest.crawler_state != "READY":
            raise errors.CrawlerRunningException(f"Crawler with name {name} has already started")
        missing = [c for c in crawler.classifiers or [] if c not in self.classifiers.get(region, {})]
        if missing:
            raise errors.EntityNotFoundException(f"Classifier {missing[0]} not found")
        classifiers = [self.classifiers[region][c] for c in crawler.classifiers or []]
        original(backend, name)                         # moto records a FakeCrawl...
        crawl = self.engine.start(region, crawler.as_dict(), classifiers)
        crawler.crawls[-1].crawl_id = crawl.crawl_id    # ...which is this crawl
        crawler.crawls[-1].message_prefix = crawl.crawl_id
        crawler.crawls[-1].start_time = crawl.started

    @moto_hook(f"{BACKEND}.stop_crawler")
    def stop_crawler(self, original, backend, name):
        backend.get_crawler(name)
        latest = self.engine.latest(backend.region_name, name)
        if latest is None or latest.crawler_state == "READY":
            raise errors.CrawlerNotRunningException(f"Crawler with name {name} isn't running")
        if latest.state == "STOPPING":
            raise errors.CrawlerStoppingException(f"Crawler with name {name} is stopping")
        self.engine.request_stop(latest)

    def _not_running(self, backend, name: str) -> None:
        latest = self.engine.latest(backend.region_name, name)
        if latest is not None and latest.crawler_state != "READY":
            raise errors.CrawlerRunningException(f"Crawler with name {name} is running")

    @moto_hook(f"{BACKEND}.delete_crawler")
    def delete_crawler(self, original, backend, name):
        """DeleteCrawler refuses a running crawler, as Glue does."""
        self._not_running(backend, name)
        return original(backend, name)

    @operation("UpdateCrawler")
    def update_crawler(self, req):
        """UpdateCrawler (moto has none): the fields given replace the crawler's; refused while it runs."""
        backend = self._backend(req.region)
        name = req.params.get("Name", "")
        if name not in backend.crawlers:
            raise errors.EntityNotFoundException(f"Crawler entry with name {name} does not exist")
        crawler = backend.crawlers[name]
        self._not_running(backend, name)
        fields = {"Role": "role", "DatabaseName": "database_name", "Description": "description",
                  "Targets": "targets", "Classifiers": "classifiers", "TablePrefix": "table_prefix",
                  "SchemaChangePolicy": "schema_change_policy", "RecrawlPolicy": "recrawl_policy",
                  "LineageConfiguration": "lineage_configuration", "Configuration": "configuration",
                  "CrawlerSecurityConfiguration": "crawler_security_configuration", "Schedule": "schedule"}
        for field, attr in fields.items():
            if field in req.params:
                setattr(crawler, attr, req.params[field])
        crawler.version += 1
        crawler.last_updated = datetime.now(timezone.utc)
        return {}

    @moto_property(f"{MODELS}:FakeCrawl.status")
    def crawl_status(self, original, fake):
        """A crawl's state is the real crawl's (RUNNING, STOPPING, COMPLETED, STOPPED, FAILED)."""
        crawl = self.engine.by_id.get(fake.crawl_id)
        return crawl.state if crawl is not None else original(fake)

    @moto_hook(f"{MODELS}:FakeCrawl.as_dict")
    def crawl_json(self, original, fake):
        """ListCrawls' CrawlerHistory: the real end time, error and summary of what changed."""
        data = original(fake)
        data.pop("DPUHour", None)          # moto's constant; the DPUs a crawl uses are not modelled
        crawl = self.engine.by_id.get(fake.crawl_id)
        if crawl is not None:
            data["State"] = "RUNNING" if crawl.state == "STOPPING" else crawl.state
            if crawl.ended is not None:
                data["EndTime"] = crawl.ended
                data["Summary"] = crawl.summary()
            if crawl.error:
                data["ErrorMessage"] = crawl.error
        return data

    @moto_hook(f"{MODELS}:FakeCrawler.as_dict")
    def crawler_json(self, original, crawler):
        """GetCrawler(s): State, LastCrawl and CrawlElapsedTime from the real crawls."""
        data = original(crawler)
        latest = self.engine.latest(crawler.backend.region_name, crawler.name)
        if latest is None:
            return data
        data["State"] = latest.crawler_state
        data["CrawlElapsedTime"] = latest.elapsed_ms() if latest.crawler_state != "READY" else 0
        finished = next((c for c in reversed(self.engine.crawls[(crawler.backend.region_name, crawler.name)])
                         if c.seconds is not None), None)
        if finished is None:
            data.pop("LastCrawl", None)
        else:
            data["LastCrawl"] = {"Status": finished.last_status, "LogGroup": engine.LOG_GROUP,
                                 "LogStream": crawler.name, "MessagePrefix": finished.crawl_id,
                                 "StartTime": finished.started}
            if finished.error:
                data["LastCrawl"]["ErrorMessage"] = finished.error
        return data

    @operation("GetCrawlerMetrics")
    def get_crawler_metrics(self, req):
        backend = self._backend(req.region)
        names = req.params.get("CrawlerNameList") or sorted(backend.crawlers)
        return {"CrawlerMetricsList": [self.engine.metrics(req.region, n) for n in names if n in backend.crawlers]}

    # -- classifiers (moto has none) -------------------------------------------
    @operation("CreateClassifier")
    def create_classifier(self, req):
        kinds = [k for k in CLASSIFIER_KINDS if req.params.get(k)]
        if len(kinds) != 1:
            raise errors.InvalidInputException("Exactly one of GrokClassifier, XMLClassifier, JsonClassifier "
                                               "or CsvClassifier must be given")
        spec = dict(req.params[kinds[0]])
        name = spec.get("Name", "")
        if kinds[0] == "GrokClassifier" and not (spec.get("GrokPattern") and spec.get("Classification")):
            raise errors.InvalidInputException("A GrokClassifier needs a GrokPattern and a Classification")
        if kinds[0] == "JsonClassifier" and not spec.get("JsonPath"):
            raise errors.InvalidInputException("A JsonClassifier needs a JsonPath")
        known = self.classifiers.setdefault(req.region, {})
        if name in known:
            raise errors.AlreadyExistsException(f"Classifier {name} already exists.")
        now = datetime.now(timezone.utc).timestamp()
        known[name] = {kinds[0]: {**spec, "CreationTime": now, "LastUpdated": now, "Version": 1}}
        return {}

    def _classifier(self, req) -> dict:
        name = req.params.get("Name", "")
        found = self.classifiers.get(req.region, {}).get(name)
        if found is None:
            raise errors.EntityNotFoundException(f"Classifier {name} not found")
        return found

    @operation("GetClassifier")
    def get_classifier(self, req):
        return {"Classifier": self._classifier(req)}

    @operation("GetClassifiers")
    def get_classifiers(self, req):
        return {"Classifiers": [c for _, c in sorted(self.classifiers.get(req.region, {}).items())]}

    @operation("UpdateClassifier")
    def update_classifier(self, req):
        kinds = [k for k in CLASSIFIER_KINDS if req.params.get(k)]
        if len(kinds) != 1:
            raise errors.InvalidInputException("Exactly one classifier kind must be given")
        spec = req.params[kinds[0]]
        req.params["Name"] = spec.get("Name", "")
        current = self._classifier(req)
        if kinds[0] not in current:
            raise errors.InvalidInputException(f"Classifier {spec.get('Name')} is not a {kinds[0]}")
        entry = current[kinds[0]]
        entry.update(spec)
        entry["LastUpdated"] = datetime.now(timezone.utc).timestamp()
        entry["Version"] += 1
        return {}

    @operation("DeleteClassifier")
    def delete_classifier(self, req):
        self._classifier(req)
        del self.classifiers[req.region][req.params["Name"]]
        return {}

    # ================================================================ jobs
    @moto_hook(f"{BACKEND}.start_job_run")
    def start_job_run(self, original, backend, name, arguments, allocated_capacity, max_capacity, timeout,
                      worker_type, security_configuration, number_of_workers, notification_property,
                      previous_run_id):
        """StartJobRun: moto records the run, then it really runs (``jobs.JobRuns``): the job's
        script on Spark (``glueetl``, ``gluestreaming``) or on Python (``pythonshell``).

        Glue runs a Spark job on the workers it provisions; locally the run is one
        ``spark-submit --master local[2]`` driver JVM (heap: ``core/limits.py`` ``spark-driver``)
        whose two task threads stand in for them."""
        job = backend.get_job(name)                     # EntityNotFoundException from moto
        spec = jobs.JobSpec.from_moto(job)
        overrides = jobs.Overrides(dict(arguments or {}), timeout, worker_type, number_of_workers, max_capacity,
                                   allocated_capacity, security_configuration, notification_property)
        with self.jobs.lock:                            # the MaxConcurrentRuns check and the start, together
            self.jobs.check_start(spec, overrides)
            run_id = original(backend, name, arguments, allocated_capacity, max_capacity, timeout, worker_type,
                              security_configuration, number_of_workers, notification_property, previous_run_id)
            previous = self.jobs.runs.get(previous_run_id or "")
            self.jobs.start(spec, run_id, overrides, attempt=previous.attempt + 1 if previous else 0,
                            previous_run_id=previous_run_id)
        return run_id

    @moto_property(f"{MODELS}:FakeJobRun.status")
    def job_run_status(self, original, fake):
        """A run's state is the real run's (moto's would be SUCCEEDED at once)."""
        run = self.jobs.runs.get(fake.job_run_id)
        return run.state if run is not None else original(fake)

    @moto_hook(f"{MODELS}:FakeJobRun.as_dict")
    def job_run_json(self, original, fake):
        """GetJobRun(s): the real run's times, state, error, attempt and capacity (``jobs.Run.as_dict``)."""
        run = self.jobs.runs.get(fake.job_run_id)
        return run.as_dict(self.ctx.clock) if run is not None else original(fake)

    @moto_hook(f"{BACKEND}.delete_job")
    def delete_job(self, original, backend, name):
        """DeleteJob deletes the job's bookmark too."""
        self.jobs.bookmarks.forget(name)
        return original(backend, name)

    @operation("BatchStopJobRun")
    def batch_stop_job_run(self, req):
        """BatchStopJobRun (moto has none): each active run goes STOPPING, then STOPPED once its
        driver has ended; ids that are not active runs of the job come back in ``Errors``."""
        params = req.params or {}
        ids = params.get("JobRunIds") or []
        if not params.get("JobName") or not 1 <= len(ids) <= 25:
            raise errors.InvalidInputException("BatchStopJobRun needs a JobName and 1 to 25 JobRunIds")
        return self.jobs.stop_runs(params["JobName"], list(ids))

    @operation("GetJobBookmark")
    def get_job_bookmark(self, req):
        params = req.params or {}
        self._job_exists(req.region, params.get("JobName", ""))
        return {"JobBookmarkEntry": self.jobs.bookmarks.get(params["JobName"], params.get("RunId"))}

    @operation("ResetJobBookmark")
    def reset_job_bookmark(self, req):
        """ResetJobBookmark: the next bookmarked run reads everything again (or, with ``RunId``,
        what came after that run)."""
        params = req.params or {}
        self._job_exists(req.region, params.get("JobName", ""))
        return {"JobBookmarkEntry": self.jobs.bookmarks.reset(params["JobName"], params.get("RunId"))}

    def _job_exists(self, region: str, name: str) -> None:
        if name not in self._backend(region).jobs:
            raise errors.EntityNotFoundException(f"Job {name} not found.")

    @local_hook("On AWS, a job run's driver and workers are Glue's; its Spark UI and logs describe them.")
    def job_run_pids(self, run_id: str | None = None) -> list[int]:
        """PIDs of the live driver processes of one run (or of all runs), for checking clean-up."""
        return self.jobs.pids(run_id)

    # ================================================================ triggers and workflows
    def _backends(self) -> list:
        """moto's Glue backends of the Regions in use."""
        from moto.glue.models import glue_backends
        return list(glue_backends[self.ctx.account_id].values())

    def _crawls_of(self, region: str) -> dict:
        return {name: crawls for (r, name), crawls in list(self.engine.crawls.items()) if r == region}

    @moto_hook("moto.glue.utils:Predicate.__init__")
    def predicate_init(self, original, predicate, inputs):
        """A predicate may omit ``Logical`` when it has one condition (moto refused it): AND."""
        original(predicate, {"Logical": "AND", **(inputs or {})})

    @moto_hook(f"{BACKEND}.create_trigger")
    def create_trigger(self, original, backend, name, workflow_name, trigger_type, schedule, predicate,
                       actions, *args, **kwargs):
        """CreateTrigger, with Glue's checks: a SCHEDULED trigger needs a valid cron expression, a
        CONDITIONAL one a predicate, every action an existing job or crawler."""
        if name in backend.triggers:
            raise errors.AlreadyExistsException(f"Trigger with name {name} already exists")
        if trigger_type == "SCHEDULED":
            triggers.parse_cron(schedule)
        if trigger_type == "CONDITIONAL" and not (predicate and predicate.as_dict().get("Conditions")):
            raise errors.InvalidInputException("A CONDITIONAL trigger needs a Predicate with Conditions")
        for action in actions:
            spec = action.as_dict()
            if spec.get("JobName") and spec["JobName"] not in backend.jobs:
                raise errors.EntityNotFoundException(f"Job {spec['JobName']} not found")
            if spec.get("CrawlerName") and spec["CrawlerName"] not in backend.crawlers:
                raise errors.EntityNotFoundException(f"Crawler {spec['CrawlerName']} not found")
        original(backend, name, workflow_name, trigger_type, schedule, predicate, actions, *args, **kwargs)
        if backend.triggers[name].state == "ACTIVATED":
            self.triggers.ensure_running()

    @moto_hook(f"{BACKEND}.start_trigger")
    def start_trigger(self, original, backend, name):
        """StartTrigger: an ON_DEMAND trigger runs its actions now; the others are ACTIVATED and fire
        on their schedule or predicate from then on."""
        trigger = backend.get_trigger(name)
        if trigger.trigger_type == "ON_DEMAND":
            self.triggers.fire(backend.region_name, trigger, "StartTrigger")
            return
        original(backend, name)
        self.triggers.ensure_running()

    @moto_hook(f"{BACKEND}.start_workflow_run")
    def start_workflow_run(self, original, backend, workflow_name, properties):
        """StartWorkflowRun: the workflow's start trigger fires; its conditional triggers follow."""
        run_id = original(backend, workflow_name, properties)
        self.triggers.start_workflow_run(backend, workflow_name, run_id)
        return run_id

    @moto_hook(f"{MODELS}:FakeWorkflowRun.as_dict")
    def workflow_run_json(self, original, fake):
        """GetWorkflowRun(s): the real status, end time and Statistics of the run's actions."""
        data = original(fake)
        run = self.triggers.workflow_runs.get(fake.run_id)
        if run is not None:
            data["Status"] = run.status
            if run.completed_on is not None:
                data["CompletedOn"] = run.completed_on
            backend = self._backend(run.region)
            data["Statistics"] = self.triggers.statistics(backend, fake.run_id)
        return data

    @local_hook("On AWS, enable the job's metrics (--enable-metrics) and read glue.ALL.s3.filesystem.read_bytes "
                "in CloudWatch; which objects a run read is not reported.")
    def objects_read(self, run_id: str) -> dict:
        """What a job run's process read from S3: bytes, GET requests and the (bucket, key) objects."""
        run = self.jobs.runs.get(run_id)
        if run is None:
            raise KeyError(f"no job run {run_id}")
        usage = run.usage
        return {"bytes": usage.bytes_read if usage else 0, "requests": usage.requests if usage else 0,
                "objects": sorted(usage.objects) if usage else []}

    # ================================================================ Lake Formation: catalog reads
    # Lake Formation filters what the Data Catalog API returns to a principal it governs:
    # https://docs.aws.amazon.com/lake-formation/latest/dg/limitations.html (GetTable lists only
    # the columns the caller may access) and, since Lake Formation replaced its access-denied
    # answers by "not found" ones, a table or database the caller may not see is
    # EntityNotFoundException: https://docs.aws.amazon.com/lake-formation/latest/dg/error-message-update.html
    def _restricted(self, req) -> str | None:
        """The caller's ARN when Lake Formation may restrict what it sees; None for the administrator."""
        lake = getattr(self.ctx, "lake", None)
        principal = req.principal
        if lake is None or principal is None or lake.is_admin(principal.arn):
            return None
        return principal.arn

    def _moto_table(self, req, db: str, name: str):
        """moto's table, or None when it does not exist (moto then answers with its own error)."""
        try:
            return self._backend(req.region).get_table(db, name)
        except Exception:       # noqa: BLE001 - moto's DatabaseNotFound / TableNotFound
            return None

    def _seen(self, arn: str, db: str, table: dict) -> dict | None:
        """``table`` (a Table as GetTable returns it) as ``arn`` may see it, or None if it may not."""
        columns = [c["Name"] for c in (table.get("StorageDescriptor") or {}).get("Columns", [])]
        columns += [c["Name"] for c in table.get("PartitionKeys", [])]
        access = self.ctx.lake.table_access(arn, db, table["Name"], columns)
        if not (access.describe or access.select):
            return None
        if access.columns is None:
            return table
        shown = set(access.columns)
        out = dict(table)
        sd = dict(out.get("StorageDescriptor") or {})
        if "Columns" in sd:
            sd["Columns"] = [c for c in sd["Columns"] if c["Name"] in shown]
            out["StorageDescriptor"] = sd
        out["PartitionKeys"] = [c for c in out.get("PartitionKeys", []) if c["Name"] in shown]
        # Spark's table properties spell out every column: dropped unless all are visible.
        out["Parameters"] = {k: v for k, v in (out.get("Parameters") or {}).items()
                             if not k.startswith("spark.sql.sources.schema")}
        return out

    def _not_visible(self, arn: str, db: str, name: str | None = None):
        if name is None or not self.ctx.lake.database_visible(arn, db):
            return errors.EntityNotFoundException(f"Database {db} not found.")
        return errors.EntityNotFoundException(f"Table {name} not found.")

    @staticmethod
    def _answer(body: dict) -> tuple:
        """A Glue JSON answer; timestamps as epoch seconds, as Glue's wire format has them."""
        def encode(value):
            if isinstance(value, datetime):
                return value.timestamp()
            raise TypeError(type(value).__name__)
        return 200, [("Content-Type", "application/x-amz-json-1.1")], json.dumps(body, default=encode)

    @operation("GetDatabase")
    def get_database(self, req):
        arn, db = self._restricted(req), req.params.get("Name", "")
        if arn is not None and db in self._backend(req.region).databases \
                and not self.ctx.lake.database_visible(arn, db):
            raise self._not_visible(arn, db)
        return None

    @operation("GetDatabases")
    def get_databases(self, req):
        arn = self._restricted(req)
        if arn is None:
            return None
        found = [d.as_dict() for d in self._backend(req.region).get_databases()
                 if self.ctx.lake.database_visible(arn, d.name)]
        return self._answer({"DatabaseList": found})

    @operation("GetTable")
    def get_table(self, req):
        arn = self._restricted(req)
        db, name = req.params.get("DatabaseName", ""), req.params.get("Name", "")
        fake = self._moto_table(req, db, name) if arn is not None else None
        if fake is None:
            return None
        whole = fake.as_dict()
        seen = self._seen(arn, db, whole)
        if seen is None:
            raise self._not_visible(arn, db, name)
        return None if seen is whole else self._answer({"Table": seen})

    @operation("GetTables")
    def get_tables(self, req):
        arn = self._restricted(req)
        db = req.params.get("DatabaseName", "")
        if arn is None or db not in self._backend(req.region).databases:
            return None
        if not self.ctx.lake.database_visible(arn, db):
            raise self._not_visible(arn, db)
        tables = [t.as_dict() for t in self._backend(req.region).get_tables(db, req.params.get("Expression"))]
        seen = [self._seen(arn, db, t) for t in tables]
        if all(a is b for a, b in zip(seen, tables)):
            return None                    # nothing governed here: moto's answer as it is
        return self._answer({"TableList": [t for t in seen if t is not None]})

    @operation("GetTableVersions")
    def get_table_versions(self, req):
        arn = self._restricted(req)
        db, name = req.params.get("DatabaseName", ""), req.params.get("TableName", "")
        fake = self._moto_table(req, db, name) if arn is not None else None
        if fake is None:
            return None
        versions = []
        for version in fake.versions:
            seen = self._seen(arn, db, fake.as_dict(version))
            if seen is None:
                raise self._not_visible(arn, db, name)
            versions.append({"Table": seen, "VersionId": version})
        return self._answer({"TableVersions": versions})

    def _partition_columns(self, arn: str, db: str, fake, partitions: list[dict]) -> list[dict]:
        """Partitions of a table the caller may see, each listing only its visible columns."""
        table = self._seen(arn, db, fake.as_dict())
        if table is None:
            raise self._not_visible(arn, db, fake.name)
        shown = {c["Name"] for c in (table.get("StorageDescriptor") or {}).get("Columns", [])}
        out = []
        for p in partitions:
            p = dict(p)
            sd = dict(p.get("StorageDescriptor") or {})
            if "Columns" in sd:
                sd["Columns"] = [c for c in sd["Columns"] if c["Name"] in shown]
                p["StorageDescriptor"] = sd
            out.append(p)
        return out

    @operation("GetPartitions")
    def get_partitions(self, req):
        arn = self._restricted(req)
        db, name = req.params.get("DatabaseName", ""), req.params.get("TableName", "")
        fake = self._moto_table(req, db, name) if arn is not None else None
        if fake is None or not self.ctx.lake.governed(db, name):
            return None
        parts = self._backend(req.region).get_partitions(db, name, req.params.get("Expression"))
        return self._answer({"Partitions": self._partition_columns(arn, db, fake, [p.as_dict() for p in parts])})

    @operation("GetPartition")
    def get_partition(self, req):
        arn = self._restricted(req)
        db, name = req.params.get("DatabaseName", ""), req.params.get("TableName", "")
        fake = self._moto_table(req, db, name) if arn is not None else None
        if fake is not None and self.ctx.lake.governed(db, name):
            self._partition_columns(arn, db, fake, [])      # not found when it may not see the table
        return None

    @operation("BatchGetPartition")
    def batch_get_partition(self, req):
        return self.get_partition(req)

    @operation("GetUnfilteredTableMetadata")
    def get_unfiltered_table_metadata(self, req):
        """What a trusted engine needs to read a table for the caller: the whole table
        (every column, to parse the files), the columns the caller may read, the row
        filter and per-column cell filters it must apply, and whether Lake Formation
        vends credentials for its location (then GetTemporaryGlueTableCredentials).

        No SELECT: ``AuthorizedColumns`` is empty (DESCRIBE only; the engine fails
        the query) or, with no permission at all, AccessDeniedException. Filtering
        the engine does not advertise in ``SupportedPermissionTypes`` but the
        grants need: PermissionTypeMismatchException. Callers: on AWS only engines
        Lake Formation trusts (AWS's own, or third parties enabled by the data lake
        settings' ``AllowExternalDataFiltering`` and a session tag). Locally: the
        administrators, the role sessions of running Glue jobs (standing in for
        Glue's system driver), and anyone once ``AllowExternalDataFiltering`` is
        true (the session tag is not checked).
        https://docs.aws.amazon.com/lake-formation/latest/dg/api-overview.html,
        https://docs.aws.amazon.com/glue/latest/webapi/API_GetUnfilteredTableMetadata.html
        """
        p = req.params
        db, name = p.get("DatabaseName") or "", p.get("Name") or ""
        types = list(p.get("SupportedPermissionTypes") or [])
        allowed_types = ("COLUMN_PERMISSION", "CELL_FILTER_PERMISSION", "NESTED_PERMISSION", "NESTED_CELL_PERMISSION")
        if not db or not name or not types or any(t not in allowed_types for t in types):
            raise errors.InvalidInputException("DatabaseName, Name and SupportedPermissionTypes (one or more of "
                                               f"{', '.join(allowed_types)}) are required.")
        arn = self._restricted(req)
        lake = getattr(self.ctx, "lake", None)
        if arn is not None and not (self.jobs.run_of_key(req.access_key)
                                    or lake.settings.get("AllowExternalDataFiltering")):
            raise errors.AccessDeniedException(f"{arn} is not a trusted engine: Lake Formation answers "
                                               "GetUnfilteredTableMetadata only to integrated query engines.")
        fake = self._moto_table(req, db, name)
        if fake is None:
            raise errors.EntityNotFoundException(f"Table {name} not found.")
        table = fake.as_dict()
        columns = [c["Name"] for c in (table.get("StorageDescriptor") or {}).get("Columns", [])
                   + table.get("PartitionKeys", [])]
        access = lake.table_access(arn, db, name, columns) if lake is not None else None
        if access is not None and not (access.describe or access.select):
            raise errors.AccessDeniedException(f"Insufficient Lake Formation permission(s) on {name}")
        filtered_rows = access is not None and bool(access.row_filter or access.cells)
        if access is not None and ((access.columns is not None and "COLUMN_PERMISSION" not in types)
                                   or (filtered_rows and "CELL_FILTER_PERMISSION" not in types)):
            raise errors.PermissionTypeMismatchException(
                "The engine does not support filtering data based on the enforced permissions.")
        authorized = [] if access is not None and not access.select else (
            list(access.columns) if access is not None and access.columns is not None else columns)
        location = (table.get("StorageDescriptor") or {}).get("Location") or ""
        registered = bool(lake is not None and location and lake.registered(location) is not None)
        answer = {"Table": table, "AuthorizedColumns": authorized, "IsRegisteredWithLakeFormation": registered,
                  "ResourceArn": f"arn:aws:glue:{req.region}:{self.ctx.account_id}:table/{db}/{name}",
                  "IsProtected": bool(lake is not None and lake.governed(db, name)),
                  "Permissions": sorted(access.permissions) if access is not None else ["ALL"],
                  "IsMultiDialectView": False, "IsMaterializedView": False}
        if filtered_rows and "CELL_FILTER_PERMISSION" in types and authorized:
            row_filter = access.row_filter or "TRUE"
            answer["RowFilter"] = row_filter
            answer["CellFilters"] = [{"ColumnName": c, "RowFilterExpression": access.cells.get(c, row_filter)}
                                     for c in authorized]
        return self._answer(answer)

    @operation("SearchTables")
    def search_tables(self, req):
        """SearchTables (moto has none): the tables whose name, description or column names
        contain ``SearchText`` (case-insensitive), filtered by ``Filters`` on ``DatabaseName``,
        ``TableType`` or ``Name`` (comparator ``EQUALS``, the default); only tables the caller
        may describe, with only their visible columns. ``MaxResults`` and ``NextToken`` page."""
        p = req.params
        arn = self._restricted(req)
        text = (p.get("SearchText") or "").lower()
        filters = p.get("Filters") or []
        for f in filters:
            if f.get("Comparator", "EQUALS") != "EQUALS" or f.get("Key") not in ("DatabaseName", "TableType", "Name"):
                raise errors.InvalidInputException("Only EQUALS filters on DatabaseName, TableType or Name "
                                                   "are supported locally")
        found = []
        for db_name, database in sorted(self._backend(req.region).databases.items()):
            if arn is not None and not self.ctx.lake.database_visible(arn, db_name):
                continue
            for name, fake in sorted(database.tables.items()):
                table = fake.as_dict()
                if arn is not None:
                    table = self._seen(arn, db_name, table)
                    if table is None:
                        continue
                fields = {"DatabaseName": db_name, "Name": name, "TableType": table.get("TableType", "")}
                if any(fields[f["Key"]] != f.get("Value") for f in filters):
                    continue
                words = [name, table.get("Description", "")] + [
                    c["Name"] for c in (table.get("StorageDescriptor") or {}).get("Columns", [])
                    + table.get("PartitionKeys", [])]
                if text and not any(text in (w or "").lower() for w in words):
                    continue
                found.append(table)
        start = int(p.get("NextToken") or 0) if str(p.get("NextToken") or "0").isdigit() else 0
        size = int(p.get("MaxResults") or 1000)
        out = {"TableList": found[start:start + size]}
        if start + size < len(found):
            out["NextToken"] = str(start + size)
        return self._answer(out)

    @local_hook("On AWS, look at the runs the trigger started (GetJobRuns, ListCrawls) or at its "
                "CloudTrail StartJobRun events.")
    def fired(self, trigger_name: str | None = None) -> list[dict]:
        """What each trigger started, when (stack clock) and what the start answered."""
        return [f for f in self.triggers.fired if trigger_name in (None, f["Trigger"])]
