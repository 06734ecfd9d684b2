"""The Glue crawler engine: read S3 for real, infer tables, write them to the Data Catalog.

A crawl (``crawl()``, run by ``api.py`` in a background thread on
StartCrawler) goes through four steps, as on AWS Glue:

1. **List** every S3 target (``Path`` = the include path), dropping the keys
   its ``Exclusions`` match (``crawl_paths.py``), folder markers and empty
   objects.
2. **Classify** a sample of the files of each folder (``SampleSize`` files
   per folder, all by default): the crawler's custom classifiers first, then
   the built-in ones (``classifiers.py``). A file that cannot be read is
   logged and skipped; the crawl goes on.
3. **Group** folders into tables and partitions (``crawl_plan.py``): Hive
   ``key=value`` folders and similar sibling folders become partitions,
   unrelated ones separate tables.
4. **Write** the Data Catalog through the Glue API, table by table, as the
   crawler's ``SchemaChangePolicy`` says:

   - ``UpdateBehavior``: ``UPDATE_IN_DATABASE`` rewrites a table whose
     schema changed (new columns, changed types); ``LOG`` only logs the
     change. New partitions are added either way.
   - ``DeleteBehavior`` for a table (or partition) this crawler wrote whose
     data is gone: ``DELETE_FROM_DATABASE`` deletes it,
     ``DEPRECATE_IN_DATABASE`` marks the table with the property
     ``DEPRECATED_BY_CRAWLER`` (the time, in epoch milliseconds), ``LOG`` logs.
   - ``RecrawlPolicy`` ``CRAWL_NEW_FOLDERS_ONLY``: only folders the last
     successful crawl did not see are read; new partitions (and tables) are
     added and nothing else changes.

The tables look exactly like a Glue crawler's: ``EXTERNAL_TABLE``, the
SerDe of the format (``LazySimpleSerDe`` with ``field.delim`` for CSV,
``OpenCSVSerde`` when fields are quoted, the OpenX ``JsonSerDe``,
``ParquetHiveSerDe``, ``OrcSerde``, ``AvroSerDe``, the ``GrokSerDe`` of a grok
classifier) and the properties Glue writes (``classification``,
``compressionType``, ``typeOfData``, ``recordCount``, ``sizeKey``,
``objectCount``, ``averageRecordSize``, ``UPDATED_BY_CRAWLER``,
``skip.header.line.count``...), so Athena reads them unchanged.

The log lines (``log(line)``) are Glue's, ``LEVEL : message``, from
``BENCHMARK : Classification complete, writing results to database sales``
to the run summary (``INFO : Run Summary For TABLE:``, ``INFO : ADD: 2``).
The caller (``engine.py``) writes the first and last lines of a crawl
(``BENCHMARK : Running Start Crawl for Crawler ...``, ``... is in state
READY``), puts the crawl's id in front of every line (``[<id>] INFO :
Created table sales in database lake``) and sends them to the crawler's
stream of the log group ``/aws-glue/crawlers``.
"""
from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from botocore.exceptions import ClientError

from . import classifiers as cls
from .crawl_paths import Exclusions, include_path, list_objects
from .crawl_plan import Planner, Stats, TablePlan

STATE_VERSION = 1
PARTITION_BATCH = 100           # BatchCreatePartition / BatchDeletePartition take 100 at a time
BATCH_UPDATE = 100


@dataclass
class CrawlOutcome:
    """What a crawl did (``GetCrawlerMetrics`` and ``ListCrawls`` report it)."""
    tables_created: list[str] = field(default_factory=list)
    tables_updated: list[str] = field(default_factory=list)
    tables_deleted: list[str] = field(default_factory=list)
    partitions_created: int = 0
    partitions_updated: int = 0
    partitions_deleted: int = 0
    error: str | None = None            # a crawl-level failure: the crawl is FAILED with this message
    state: dict = field(default_factory=dict)      # what the next crawl needs (CRAWL_NEW_FOLDERS_ONLY)
    stopped: bool = False


def crawl(glue, s3, crawler: dict, classifiers: list[dict], previous: dict | None,
          stop: threading.Event, log: Callable[[str], None]) -> CrawlOutcome:
    """Run one crawl of ``crawler`` (the ``Crawler`` of ``glue.get_crawler``).

    ``classifiers``: the crawler's custom classifiers, in its order (each the
    ``Classifier`` of ``glue.get_classifier``); ``previous``: the ``state`` of
    its last successful crawl; ``stop``: set by StopCrawler (the table in hand
    is finished, nothing more is written); ``log``: one CloudWatch line.
    """
    return Crawl(glue, s3, crawler, classifiers, previous, stop, log).run()


class Crawl:
    """One crawl: the crawler's settings read once, then :meth:`run`."""

    def __init__(self, glue, s3, crawler, classifiers, previous, stop, log):
        self.glue, self.s3, self.crawler, self.stop, self.log = glue, s3, crawler, stop, log
        self.custom = list(classifiers or [])
        self.name, self.db = crawler["Name"], crawler["DatabaseName"]
        self.out = CrawlOutcome()
        policy = crawler.get("SchemaChangePolicy") or {}
        self.update_behavior = policy.get("UpdateBehavior", "UPDATE_IN_DATABASE")
        self.delete_behavior = policy.get("DeleteBehavior", "DEPRECATE_IN_DATABASE")
        self.config = json.loads(crawler.get("Configuration") or "{}")
        grouping = self.config.get("Grouping") or {}
        self.combine = grouping.get("TableGroupingPolicy") == "CombineCompatibleSchemas"
        self.table_level = grouping.get("TableLevelConfiguration")
        output = self.config.get("CrawlerOutput") or {}
        self.merge_new_columns = (output.get("Tables") or {}).get("AddOrUpdateBehavior") == "MergeNewColumns"
        self.inherit = (output.get("Partitions") or {}).get("AddOrUpdateBehavior") == "InheritFromTable"
        recrawl = (crawler.get("RecrawlPolicy") or {}).get("RecrawlBehavior", "CRAWL_EVERYTHING")
        self.previous = previous if previous and previous.get("version") == STATE_VERSION else None
        self.incremental = recrawl == "CRAWL_NEW_FOLDERS_ONLY" and self.previous is not None
        self.prefix = (crawler.get("TablePrefix") or "").lower()
        self.state = {"version": STATE_VERSION, "targets": {}}
        self.new_folders: dict[str, set[str]] = {}      # target path -> relative folders read this time
        self.crawled_paths: list[str] = []              # include paths whose data is known (for deletes)
        self.written: set[str] = set()                  # table names written this crawl

    # ================================================================ the crawl
    def run(self) -> CrawlOutcome:
        try:
            self.glue.get_database(Name=self.db)
        except self.glue.exceptions.EntityNotFoundException:
            self.out.error = f"Database {self.db} not found."
            self.log(f"ERROR : {self.out.error} Create the database, or change the crawler's DatabaseName")
            return self.out
        plans: list[tuple[str, TablePlan]] = []
        for target in (self.crawler.get("Targets") or {}).get("S3Targets", []):
            if self.stop.is_set():
                self.out.stopped = True
                return self.out
            plans += [(target["Path"], p) for p in self.plan_target(target)]
        if self.stop.is_set():                  # stopped while classifying: nothing is written
            self.out.stopped = True
            return self.out
        self.log(f"BENCHMARK : Classification complete, writing results to database {self.db}")
        self.log_configuration()
        tables = self.catalog_tables()
        for path, plan in plans:
            if self.stop.is_set():
                self.out.stopped = True
                break
            self.write_table(path, plan, tables)
        if not self.out.stopped and not self.incremental:
            self.missing_tables(tables)
        self.log("BENCHMARK : Finished writing to Catalog")
        self.log_summary()
        self.out.state = self.state
        return self.out

    def log_configuration(self) -> None:
        policy = json.dumps({"UpdateBehavior": self.update_behavior, "DeleteBehavior": self.delete_behavior},
                            separators=(",", ":"))
        if self.config:
            self.log(f"INFO : Crawler configured with Configuration {json.dumps(self.config, indent=4)} and "
                     f"SchemaChangePolicy {json.dumps(json.loads(policy), indent=4)}. Note that values in the "
                     "Configuration override values in the SchemaChangePolicy for S3 Targets.")
        else:
            self.log(f"INFO : Crawler configured with SchemaChangePolicy {policy}.")

    def log_summary(self) -> None:
        o = self.out
        for what, counts in (("PARTITION", (o.partitions_created, o.partitions_updated, o.partitions_deleted)),
                             ("TABLE", (len(o.tables_created), len(o.tables_updated), len(o.tables_deleted)))):
            if any(counts):
                self.log(f"INFO : Run Summary For {what}:")
                for label, n in zip(("ADD", "UPDATE", "DELETE"), counts):
                    if n:
                        self.log(f"INFO : {label}: {n}")

    # ================================================================ list and classify
    def plan_target(self, target: dict) -> list[TablePlan]:
        path = target["Path"]
        bucket, prefix = include_path(path)
        exclusions = Exclusions(target.get("Exclusions"))
        try:
            listing = list_objects(self.s3, path)
        except ClientError as exc:
            code = exc.response["Error"]["Code"]
            self.log(f"ERROR : Cannot crawl {path}: {exc.response['Error'].get('Message', code)} "
                     f"(Service: Amazon S3; Error Code: {code})")
            if code == "NoSuchBucket":
                self.crawled_paths.append(path)       # the data of tables there is gone
            return []
        self.crawled_paths.append(path)
        objects = []
        for obj in listing:
            if obj.key.endswith("/") or exclusions.excluded(obj.rel):
                continue
            if obj.size == 0:
                self.log(f"WARN : Skipping empty object {obj.uri}")
                continue
            objects.append(obj)
        if not objects:
            self.log(f"WARN : No files to crawl at {path}: the include path is empty or everything "
                     "in it is excluded")
        before = ((self.previous or {}).get("targets", {}).get(path) or {}).get("folders", {})
        folders: dict[str, list] = {}
        for obj in objects:
            folders.setdefault(obj.folder, []).append(obj)
        sample_size = target.get("SampleSize")
        schemas: dict[str, cls.FileSchema | None] = {}
        seen: dict[str, dict] = {}
        read_now: set[str] = set()
        for rel, files in folders.items():
            if self.stop.is_set():
                return []
            if self.incremental and rel in before:
                stored = before[rel]
                for key, value in stored.items():
                    schemas[key] = cls.FileSchema.from_state(value) if value else None
                seen[rel] = stored
                continue
            read_now.add(rel)
            sampled = files[:sample_size] if sample_size else files
            seen[rel] = {}
            for obj in sampled:
                schema = self.classify(obj)
                schemas[obj.key] = schema
                seen[rel][obj.key] = schema.to_state() if schema else None
        self.state["targets"][path] = {"folders": seen}
        self.new_folders[path] = read_now
        planner = Planner(bucket, prefix, schemas, combine=self.combine, table_level=self.table_level)
        plans = planner.plan(objects)
        for plan in plans:
            plan.exclusions = exclusions.full(path)
        return plans

    def classify(self, obj) -> cls.FileSchema | None:
        try:
            schema = cls.classify(self.s3, obj.bucket, obj.key, obj.size, self.custom)
        except cls.Unreadable as exc:
            self.log(f"WARN : Skipping unreadable file {obj.uri}: {exc}")
            return None
        except ClientError as exc:
            self.log(f"WARN : Skipping file {obj.uri}: {exc.response['Error'].get('Message', exc)}")
            return None
        if schema is None:
            self.log(f"WARN : Skipping file {obj.uri}: no classifier recognises its format (UNKNOWN)")
        return schema

    # ================================================================ the catalog
    def catalog_tables(self) -> dict[str, dict]:
        tables = {}
        for page in self.glue.get_paginator("get_tables").paginate(DatabaseName=self.db):
            for t in page["TableList"]:
                tables[t["Name"]] = t
        return tables

    def table_name(self, plan: TablePlan, tables: dict[str, dict]) -> str:
        """The plan's name; a hash of its location is appended when another table
        (of another location) already has it, as Glue does."""
        name = plan.name(self.prefix)
        existing = tables.get(name)
        taken = name in self.written or (existing is not None and location_of(existing) != plan.location)
        if taken:
            name = f"{name}_{hashlib.md5(plan.location.encode()).hexdigest()}"
        return name

    def parameters(self, schema: cls.FileSchema, stats: Stats, exclusions: list[str]) -> dict[str, str]:
        params = {
            "CrawlerSchemaDeserializerVersion": "1.0", "CrawlerSchemaSerializerVersion": "1.0",
            "UPDATED_BY_CRAWLER": self.name, "classification": schema.classification,
            "compressionType": schema.compression, "typeOfData": "file",
            "objectCount": str(stats.objects), "sizeKey": str(stats.size),
            "recordCount": str(stats.records), "averageRecordSize": str(stats.average_record_size),
            **schema.params,
        }
        if exclusions:
            params["exclusions"] = json.dumps(exclusions, separators=(",", ":"))
        return dict(sorted(params.items()))

    def storage(self, schema: cls.FileSchema, where: str, params: dict, columns=None) -> dict:
        return {
            "Columns": [{"Name": n, "Type": t} for n, t in (columns if columns is not None else schema.columns)],
            "Location": where, "InputFormat": schema.input_format, "OutputFormat": schema.output_format,
            "Compressed": schema.compression != "none", "NumberOfBuckets": -1,
            "SerdeInfo": {"SerializationLibrary": schema.serde, "Parameters": dict(schema.serde_params)},
            "BucketColumns": [], "SortColumns": [], "Parameters": params, "StoredAsSubDirectories": False,
        }

    def table_input(self, name: str, plan: TablePlan) -> dict:
        params = self.parameters(plan.schema, plan.stats, plan.exclusions)
        return {"Name": name, "Owner": "owner", "Retention": 0, "TableType": "EXTERNAL_TABLE",
                "Parameters": params,
                "PartitionKeys": [{"Name": k, "Type": "string"} for k in plan.partition_keys],
                "StorageDescriptor": self.storage(plan.schema, plan.location, params)}

    def partition_input(self, plan: TablePlan, part, table_columns) -> dict:
        params = self.parameters(part.schema, part.stats, [])
        columns = table_columns if self.inherit else part.schema.columns
        return {"Values": list(part.values), "Parameters": params,
                "StorageDescriptor": self.storage(plan.schema, part.location, params, columns)}

    # ================================================================ writing one table
    def write_table(self, path: str, plan: TablePlan, tables: dict[str, dict]) -> None:
        name = self.table_name(plan, tables)
        self.written.add(name)
        new_input = self.table_input(name, plan)
        existing = tables.get(name)
        new_here = {rel for rel in plan.folders if rel in self.new_folders.get(path, set())}
        if existing is None:
            if self.incremental and not new_here:
                return                      # an old table someone removed: incremental crawls leave it
            self.glue.create_table(DatabaseName=self.db, TableInput=new_input)
            self.out.tables_created.append(name)
            self.log(f"INFO : Created table {name} in database {self.db}")
            columns = new_input["StorageDescriptor"]["Columns"]
            self.create_partitions(name, [self.partition_input(plan, p, to_pairs(columns)) for p in plan.partitions])
            return
        if self.incremental:
            columns = to_pairs(existing.get("StorageDescriptor", {}).get("Columns", []))
            known = {tuple(p["Values"]) for p in self.catalog_partitions(name)}
            fresh = [p for p in plan.partitions if p.rel in new_here and tuple(p.values) not in known]
            self.create_partitions(name, [self.partition_input(plan, p, columns) for p in fresh])
            return
        table_columns = self.update_table(name, plan, existing, new_input)
        self.sync_partitions(name, plan, table_columns)

    def update_table(self, name: str, plan: TablePlan, existing: dict, new_input: dict) -> list:
        """Apply UpdateBehavior to a table the crawl found again; the columns it now has."""
        old_sd = existing.get("StorageDescriptor", {})
        new_sd = new_input["StorageDescriptor"]
        if self.merge_new_columns:
            old_cols = to_pairs(old_sd.get("Columns", []))
            names = {n for n, _ in old_cols}
            merged = old_cols + [(n, t) for n, t in to_pairs(new_sd["Columns"]) if n not in names]
            new_sd["Columns"] = [{"Name": n, "Type": t} for n, t in merged]
        changes = schema_changes(existing, new_input)
        deprecated = (existing.get("Parameters") or {}).get("DEPRECATED_BY_CRAWLER")
        if deprecated:          # Glue keeps the mark once set
            new_input["Parameters"]["DEPRECATED_BY_CRAWLER"] = deprecated
        if self.update_behavior == "LOG":
            if changes:
                self.log(f"INFO : Table {name} in database {self.db} has a new schema ({'; '.join(changes)}). "
                         "UpdateBehavior is LOG: the table is not changed")
            return to_pairs(old_sd.get("Columns", []))
        stats_only = not changes and (existing.get("Parameters") != new_input["Parameters"]
                                      or old_sd.get("Parameters") != new_sd["Parameters"])
        if changes or stats_only:
            self.glue.update_table(DatabaseName=self.db, TableInput=new_input)
        if changes:
            self.out.tables_updated.append(name)
            self.log(f"INFO : Updated table {name} in database {self.db}: {'; '.join(changes)}")
        return to_pairs(new_sd["Columns"])

    def sync_partitions(self, name: str, plan: TablePlan, table_columns: list) -> None:
        old = {tuple(p["Values"]): p for p in self.catalog_partitions(name)}
        new = {tuple(p.values): p for p in plan.partitions}
        keys_changed = (self.update_behavior != "LOG" and old and new and
                        len(next(iter(old))) != len(next(iter(new))))
        create, update = [], []
        for values, part in new.items():
            wanted = self.partition_input(plan, part, table_columns)
            current = old.get(values)
            if current is None or keys_changed:
                create.append(wanted)
            elif self.update_behavior != "LOG" and partition_differs(current, wanted):
                update.append({"PartitionValueList": list(values), "PartitionInput": wanted})
        gone = [values for values in old if keys_changed or values not in new]
        if gone:
            self.forget_partitions(name, [old[v] for v in gone])
        self.create_partitions(name, create)
        for i in range(0, len(update), BATCH_UPDATE):
            self.glue.batch_update_partition(DatabaseName=self.db, TableName=name, Entries=update[i:i + BATCH_UPDATE])
            self.out.partitions_updated += len(update[i:i + BATCH_UPDATE])

    def catalog_partitions(self, name: str) -> list[dict]:
        return [p for page in self.glue.get_paginator("get_partitions").paginate(DatabaseName=self.db, TableName=name)
                for p in page["Partitions"]]

    def create_partitions(self, name: str, inputs: list[dict]) -> None:
        for i in range(0, len(inputs), PARTITION_BATCH):
            batch = inputs[i:i + PARTITION_BATCH]
            answer = self.glue.batch_create_partition(DatabaseName=self.db, TableName=name,
                                                      PartitionInputList=batch)
            failed = answer.get("Errors", [])
            for error in failed:
                self.log(f"WARN : Partition {error.get('PartitionValues')} of table {name} was not created: "
                         f"{error.get('ErrorDetail', {}).get('ErrorMessage')}")
            self.out.partitions_created += len(batch) - len(failed)

    def forget_partitions(self, name: str, partitions: list[dict]) -> None:
        """Partitions whose folder is gone, handled as DeleteBehavior says."""
        if self.delete_behavior == "DELETE_FROM_DATABASE":
            for i in range(0, len(partitions), PARTITION_BATCH):
                batch = partitions[i:i + PARTITION_BATCH]
                self.glue.batch_delete_partition(DatabaseName=self.db, TableName=name, PartitionsToDelete=[
                    {"Values": p["Values"]} for p in batch])
                self.out.partitions_deleted += len(batch)
            self.log(f"INFO : Deleted {len(partitions)} partition(s) of table {name} whose data is gone")
            return
        for p in partitions:
            self.log(f"INFO : Found partition of table {name} with partition values "
                     f"[{', '.join(p['Values'])}] with no matching schema at the partition's S3 location")

    # ================================================================ tables whose data is gone
    def missing_tables(self, tables: dict[str, dict]) -> None:
        roots = []
        for path in self.crawled_paths:
            bucket, prefix = include_path(path)
            roots.append(f"s3://{bucket}/{prefix}")
        for name, table in sorted(tables.items()):
            params = table.get("Parameters") or {}
            if name in self.written or params.get("UPDATED_BY_CRAWLER") != self.name:
                continue
            where = location_of(table)
            if not any(where.startswith(root) for root in roots):
                continue
            if self.delete_behavior == "DELETE_FROM_DATABASE":
                self.glue.delete_table(DatabaseName=self.db, Name=name)
                self.out.tables_deleted.append(name)
                self.log(f"INFO : Deleted table {name} in database {self.db}: its data at {where} is gone")
            elif self.delete_behavior == "DEPRECATE_IN_DATABASE":
                if params.get("DEPRECATED_BY_CRAWLER"):
                    continue
                marked = table_input_of(table)
                marked["Parameters"] = {**params, "DEPRECATED_BY_CRAWLER": str(int(time.time() * 1000))}
                self.glue.update_table(DatabaseName=self.db, TableInput=marked)
                self.out.tables_updated.append(name)
                self.log(f"INFO : Table {name} is marked deprecated because a matching schema was not found "
                         "at the table's location.")
            else:
                self.log(f"INFO : Table {name} in database {self.db} has no data at {where}. "
                         "DeleteBehavior is LOG: the table is not changed")


# ================================================================ helpers
def location_of(table: dict) -> str:
    return (table.get("StorageDescriptor") or {}).get("Location", "")


def to_pairs(columns: list[dict]) -> list[tuple[str, str]]:
    return [(c["Name"], c["Type"]) for c in columns]


TABLE_INPUT_FIELDS = ("Name", "Description", "Owner", "Retention", "StorageDescriptor", "PartitionKeys",
                      "TableType", "Parameters", "ViewOriginalText", "ViewExpandedText", "TargetTable")


def table_input_of(table: dict) -> dict:
    """A ``TableInput`` that rewrites ``table`` as it is (GetTable's answer has more fields)."""
    return {k: table[k] for k in TABLE_INPUT_FIELDS if k in table}


def schema_changes(existing: dict, new_input: dict) -> list[str]:
    """What differs between a catalog table and the crawl's view of it (empty: nothing)."""
    old_sd, new_sd = existing.get("StorageDescriptor") or {}, new_input["StorageDescriptor"]
    changes = []
    old_cols, new_cols = dict(to_pairs(old_sd.get("Columns", []))), dict(to_pairs(new_sd["Columns"]))
    added = [n for n in new_cols if n not in old_cols]
    removed = [n for n in old_cols if n not in new_cols]
    retyped = [f"{n} {old_cols[n]} -> {new_cols[n]}" for n in new_cols if n in old_cols and old_cols[n] != new_cols[n]]
    if added:
        changes.append("new columns " + ", ".join(added))
    if removed:
        changes.append("columns no longer found " + ", ".join(removed))
    if retyped:
        changes.append("column types changed " + ", ".join(retyped))
    old_keys = [k["Name"] for k in existing.get("PartitionKeys", [])]
    new_keys = [k["Name"] for k in new_input["PartitionKeys"]]
    if old_keys != new_keys:
        changes.append(f"partition keys {old_keys} -> {new_keys}")
    old_serde, new_serde = old_sd.get("SerdeInfo") or {}, new_sd["SerdeInfo"]
    if (old_serde.get("SerializationLibrary") != new_serde["SerializationLibrary"]
            or old_sd.get("InputFormat") != new_sd["InputFormat"]):
        changes.append(f"format {old_serde.get('SerializationLibrary')} -> {new_serde['SerializationLibrary']}")
    elif {k: v for k, v in (old_serde.get("Parameters") or {}).items() if k != "paths"} != \
            {k: v for k, v in new_serde["Parameters"].items() if k != "paths"}:
        changes.append("SerDe parameters changed")
    return changes


def partition_differs(current: dict, wanted: dict) -> bool:
    sd = current.get("StorageDescriptor") or {}
    return (to_pairs(sd.get("Columns", [])) != to_pairs(wanted["StorageDescriptor"]["Columns"])
            or sd.get("Location") != wanted["StorageDescriptor"]["Location"]
            or (current.get("Parameters") or {}) != wanted["Parameters"])
