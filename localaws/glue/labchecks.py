"""Checks for lab 08 (``labs/08_glue``): what each step must achieve, and what to fix if not.

They live here, not in the lab's check cells, so that a check cell does not
show the answer. Each raises ``localaws.grading.LabCheckFailed`` with a
message for the learner. Both checks **measure** first: they run the
learner's crawler or job on the stack, read what it produced, and only then
explain the difference from what the step asks for.

**The data.** :func:`landing_zone` makes a seeded, messy landing zone of
sensor readings from two vendors, under ``landing/vendor=<a|b>/day=<day>/``:

- vendor A: CSV with a header, ``;`` between fields, every field quoted
  (the site names contain ``;``), temperatures in degrees Celsius with a
  decimal comma (``"21,4"``), times as ``2025-03-01 08:20:00`` (UTC);
- vendor B: JSON lines ``{"sensor": ..., "ts": <epoch ms>, "temp_f": ...}``,
  degrees Fahrenheit; each day's folder also holds a ``manifest.json`` (a
  different document: which files the vendor sent), a file that ends a
  day's delivery may carry late readings of the day before, and a few lines
  are sent twice;
- bad rows in both: ``ERR`` instead of a temperature, ``null``, ``9999.9``.

:func:`expected_readings` curates the same files with pandas: the table the
job must produce.

**Step 1 (classifier + crawler).** :func:`run_crawl` creates the learner's
classifiers and crawler, runs the crawl and reads the Data Catalog;
:func:`diagnose_crawl` compares the tables with :data:`EXPECTED_TABLES` and
explains each classic mistake (a header not recognised, a classifier that
claims the JSON files too, a manifest that splits the folders into a table
per file, partitions not recognised).

**Step 2 (a bookmarked curation job).** :func:`run_job_twice` creates the
learner's job, runs it, adds a new day to the landing zone, crawls again
and runs the job a second time. It measures which landing objects each run
opened (``stack.local.glue.objects_read``: the stack's S3 meter, keyed by the run id) and reads the
curated Parquet after each run; :func:`diagnose_job` compares the rows with
:func:`expected_readings` and explains bookmarks that did not work (option
disabled, no ``transformation_ctx``, no ``job.commit()``), bad rows kept,
units not converted, duplicates, a wrong partition column.
"""
from __future__ import annotations

import csv
import io
import json
import random
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from localaws.core.waiting import wait_until
from localaws.grading import LabCheckFailed, check

#: The landing zone's days before the job first runs, and the day that arrives later.
DAYS = ("2025-03-01", "2025-03-02", "2025-03-03")
NEW_DAY = "2025-03-04"
SEED = 8
LANDING = "landing/"

#: Readings every 20 minutes, 3 sensors per file, 2 files per vendor and day.
INTERVAL_MINUTES = 20
SENSORS_PER_FILE = 3
FILES_PER_VENDOR = 2

#: Late readings: the last file of vendor B's day carries this many readings of the day before.
LATE_READINGS = 4

#: The sensors' range: a temperature outside it is a faulty reading, dropped.
VALID_CELSIUS = (-40.0, 85.0)

#: Temperatures match when they differ by less than this (the job may round to 2 decimals).
TOLERANCE = 0.006

SITES = ("Hall 1; Line A", "Hall 1; Line B", "Hall 2; Line A", "Hall 2; Line C", "Hall 3; Dock", "Hall 3; Line A")

#: What the crawl must produce: table -> columns (name, type), partition keys, classification.
EXPECTED_TABLES = {
    "vendor_a": {"columns": [("sensor_id", "string"), ("reading_time", "string"), ("temperature", "string"),
                             ("site", "string")], "partition_keys": ["day"], "classification": "csv"},
    "vendor_b": {"columns": [("sensor", "string"), ("ts", "bigint"), ("temp_f", "double")],
                 "partition_keys": ["day"], "classification": "json"},
}

#: The curated table's columns (``day`` is the partition, in the folder names).
CURATED_COLUMNS = ["sensor_id", "vendor", "reading_time", "temperature_c"]

SECONDS_PER_RUN = 420
CRAWL_SECONDS = 120
BOOKMARKS = "https://docs.aws.amazon.com/glue/latest/dg/monitor-continuations.html"


# ------------------------------------------------------------------ the data
def _vendor_a(day: str, part: int, rng: random.Random) -> str:
    start = datetime.fromisoformat(day)
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", quoting=csv.QUOTE_ALL, lineterminator="\n")
    writer.writerow(["sensor_id", "reading_time", "temperature", "site"])
    for s in range(SENSORS_PER_FILE):
        number = part * SENSORS_PER_FILE + s
        base = rng.uniform(18, 24)
        for i in range(24 * 60 // INTERVAL_MINUTES):
            when = start + timedelta(minutes=INTERVAL_MINUTES * i)
            value = f"{base + rng.gauss(0, 0.8):.1f}".replace(".", ",")
            if rng.random() < 0.005:
                value = "ERR"                                   # a sensor fault
            writer.writerow([f"A-{number + 1:02d}", f"{when:%Y-%m-%d %H:%M:%S}", value, SITES[number]])
    return out.getvalue()


def _vendor_b(day: str, part: int, rng: random.Random, late: bool) -> str:
    start = datetime.fromisoformat(day).replace(tzinfo=timezone.utc)
    lines = []
    for s in range(SENSORS_PER_FILE):
        number = part * SENSORS_PER_FILE + s
        base = rng.uniform(62, 75)
        times = [start + timedelta(minutes=INTERVAL_MINUTES * i + 7) for i in range(24 * 60 // INTERVAL_MINUTES)]
        if late and s == 0:                    # readings of the day before, delivered late
            times = [start - timedelta(minutes=INTERVAL_MINUTES * k + 3) for k in range(LATE_READINGS, 0, -1)] + times
        for when in times:
            value = round(base + rng.gauss(0, 1.5), 2)
            roll = rng.random()
            if roll < 0.004:
                value = None                                    # no value
            elif roll < 0.008:
                value = 9999.9                                  # the sensor's error code
            line = json.dumps({"sensor": f"B-{number + 1:02d}", "ts": int(when.timestamp() * 1000), "temp_f": value})
            lines.append(line)
            if rng.random() < 0.01:
                lines.append(line)                              # sent twice
    return "\n".join(lines) + "\n"


def landing_zone(days=DAYS, seed: int = SEED) -> dict[str, str]:
    """The landing zone's objects for ``days``: key (under ``landing/``) -> text. Seeded per day."""
    files = {}
    for day in days:
        rng = random.Random(f"{seed}-{day}")
        for part in range(FILES_PER_VENDOR):
            files[f"vendor=a/day={day}/readings-{part}.csv"] = _vendor_a(day, part, rng)
        names = []
        for part in range(FILES_PER_VENDOR):
            late = day != DAYS[0] and part == FILES_PER_VENDOR - 1
            names.append(f"readings-{part}.json")
            files[f"vendor=b/day={day}/{names[-1]}"] = _vendor_b(day, part, rng, late)
        records = sum(len(files[f"vendor=b/day={day}/{n}"].splitlines()) for n in names)
        files[f"vendor=b/day={day}/manifest.json"] = json.dumps({"vendor": "b", "day": day, "files": names,
                                                                  "records": records}) + "\n"
    return files


def upload(s3, bucket: str, files: dict[str, str], prefix: str = LANDING) -> list[str]:
    """Write ``files`` under ``prefix``; return the keys written."""
    keys = []
    for key, text in sorted(files.items()):
        s3.put_object(Bucket=bucket, Key=prefix + key, Body=text.encode())
        keys.append(prefix + key)
    return keys


def raw_readings(files: dict[str, str]) -> "pd.DataFrame":
    """Every reading line of the landing files, converted, with ``problem`` saying why a row is bad
    (``""`` for a good one) and ``folder_day`` the day folder it arrived in."""
    import pandas as pd

    rows = []
    for key, text in sorted(files.items()):
        vendor, folder_day = re.match(r"vendor=(\w)/day=([\d-]+)/", key).groups()
        if key.endswith("manifest.json"):
            continue
        if vendor == "a":
            for rec in csv.DictReader(io.StringIO(text), delimiter=";"):
                try:
                    celsius = float(rec["temperature"].replace(",", "."))
                except ValueError:
                    celsius = None
                rows.append({"sensor_id": rec["sensor_id"], "vendor": "a", "key": key, "folder_day": folder_day,
                             "reading_time": pd.Timestamp(rec["reading_time"]), "temperature_c": celsius,
                             "raw": rec["temperature"]})
        else:
            for line in text.splitlines():
                rec = json.loads(line)
                fahrenheit = rec["temp_f"]
                rows.append({"sensor_id": rec["sensor"], "vendor": "b", "key": key, "folder_day": folder_day,
                             "reading_time": pd.Timestamp(rec["ts"], unit="ms"),
                             "temperature_c": None if fahrenheit is None else (fahrenheit - 32) * 5 / 9,
                             "raw": "null" if fahrenheit is None else str(fahrenheit)})
    frame = pd.DataFrame(rows)
    low, high = VALID_CELSIUS
    bad_value = frame["temperature_c"].isna() | ~frame["temperature_c"].between(low, high)
    frame["problem"] = ""
    frame.loc[bad_value, "problem"] = "bad temperature"
    repeated = frame.duplicated(["sensor_id", "reading_time"]) & ~bad_value
    frame.loc[repeated, "problem"] = "sent twice"
    return frame


def expected_readings(files: dict[str, str]) -> "pd.DataFrame":
    """The curated table of ``files``: good readings once each, in degrees Celsius, with their ``day``
    (the date of ``reading_time``, UTC), sorted by sensor and time."""
    raw = raw_readings(files)
    good = raw[raw["problem"] == ""].copy()
    good["day"] = good["reading_time"].dt.strftime("%Y-%m-%d")
    return (good[CURATED_COLUMNS + ["day"]].sort_values(["sensor_id", "reading_time"])
            .reset_index(drop=True))


# ------------------------------------------------------------------ helpers
def _error_code(exc: Exception) -> str:
    return getattr(exc, "response", {}).get("Error", {}).get("Code", type(exc).__name__)


def _client_error(exc: Exception) -> str:
    error = getattr(exc, "response", {}).get("Error", {})
    return f"{error.get('Code', type(exc).__name__)}: {error.get('Message', exc)}"


def _list(s3, bucket: str, prefix: str) -> list[dict]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return [o for page in pages for o in page.get("Contents", [])]


def _delete_prefix(s3, bucket: str, prefix: str) -> None:
    for obj in _list(s3, bucket, prefix):
        s3.delete_object(Bucket=bucket, Key=obj["Key"])


def _bucket_of(uri: str) -> tuple[str, str]:
    match = re.match(r"s3a?://([^/]+)/?(.*)", uri or "")
    if not match:
        raise LabCheckFailed(f"{uri!r} is not an s3:// path.")
    return match.group(1), match.group(2)


def _readings(n: int) -> str:
    return f"{n:,} reading" + ("" if n == 1 else "s")


# ------------------------------------------------------------------ step 1: classifiers and crawler
@dataclass
class CrawlRun:
    """What :func:`run_crawl` saw: the crawl's outcome and the tables of the database."""
    database: str
    status: str
    error: str = ""
    classifiers: list = field(default_factory=list)      # the crawler's Classifiers (names)
    custom: dict = field(default_factory=dict)           # name -> the CsvClassifier / JsonClassifier... spec
    tables: dict = field(default_factory=dict)           # name -> summary (see _table_summary)


def _table_summary(glue, database: str, table: dict) -> dict:
    sd = table.get("StorageDescriptor") or {}
    pages = glue.get_paginator("get_partitions").paginate(DatabaseName=database, TableName=table["Name"])
    partitions = [p for page in pages for p in page.get("Partitions", [])]
    params = table.get("Parameters") or {}
    return {"location": sd.get("Location", ""), "classification": params.get("classification", ""),
            "columns": [(c["Name"], c["Type"]) for c in sd.get("Columns") or []],
            "partition_keys": [k["Name"] for k in table.get("PartitionKeys") or []],
            "partitions": sorted(tuple(p["Values"]) for p in partitions),
            "records": int(params.get("recordCount", 0) or 0),
            "header_skipped": params.get("skip.header.line.count") == "1",
            "serde": dict(((sd.get("SerdeInfo") or {}).get("Parameters") or {}))}


def _classifier_name(spec: dict) -> str:
    check(isinstance(spec, dict) and len(spec) == 1 and next(iter(spec)) in
          ("CsvClassifier", "JsonClassifier", "GrokClassifier", "XMLClassifier"),
          f"each entry of CLASSIFIERS should be the arguments of glue.create_classifier, e.g. "
          f"{{'CsvClassifier': {{'Name': ..., 'Delimiter': ...}}}}; got {spec!r}.")
    body = next(iter(spec.values()))
    check(isinstance(body, dict) and body.get("Name"), f"a classifier needs a 'Name': {spec!r}.")
    return body["Name"]


def _delete_tables(glue, database: str) -> None:
    pages = glue.get_paginator("get_tables").paginate(DatabaseName=database)
    for name in [t["Name"] for page in pages for t in page.get("TableList", [])]:
        glue.delete_table(DatabaseName=database, Name=name)


def crawl_once(glue, name: str, timeout: float = CRAWL_SECONDS) -> tuple[str, str]:
    """Start crawler ``name`` and wait until it is READY again: (LastCrawl Status, ErrorMessage)."""
    before = (glue.get_crawler(Name=name)["Crawler"].get("LastCrawl") or {}).get("StartTime")
    glue.start_crawler(Name=name)

    def finished() -> bool:
        crawler = glue.get_crawler(Name=name)["Crawler"]
        last = crawler.get("LastCrawl") or {}
        return crawler["State"] == "READY" and last.get("StartTime") not in (None, before)
    check(wait_until(finished, timeout, poll=0.3), f"the crawler {name!r} was still running after {timeout:.0f} s.")
    last = glue.get_crawler(Name=name)["Crawler"]["LastCrawl"]
    return last.get("Status", ""), last.get("ErrorMessage", "")


def run_crawl(stack, classifiers: list, crawler: dict) -> CrawlRun:
    """Create ``classifiers`` (replacing ones of the same names) and ``crawler`` (replacing it), empty its
    database, run one crawl, and read every table of the database."""
    from botocore.exceptions import ClientError

    check(isinstance(classifiers, (list, tuple)), f"CLASSIFIERS should be a list of create_classifier arguments, "
                                                  f"got {classifiers!r}.")
    check(isinstance(crawler, dict) and crawler.get("Name") and crawler.get("DatabaseName"),
          f"CRAWLER should be the arguments of glue.create_crawler, with 'Name', 'Role', 'DatabaseName', "
          f"'Targets'...; got {crawler!r}.")
    glue = stack.client("glue")
    names = [_classifier_name(spec) for spec in classifiers]
    try:
        glue.delete_crawler(Name=crawler["Name"])
    except ClientError as exc:
        if _error_code(exc) != "EntityNotFoundException":
            raise
    for spec, name in zip(classifiers, names):
        try:
            glue.delete_classifier(Name=name)
        except ClientError as exc:
            if _error_code(exc) != "EntityNotFoundException":
                raise
        try:
            glue.create_classifier(**spec)
        except ClientError as exc:
            raise LabCheckFailed(f"Glue refused the classifier {name!r}: {_client_error(exc)}") from None
    database = crawler["DatabaseName"]
    try:
        glue.get_database(Name=database)
    except ClientError:
        raise LabCheckFailed(f"there is no database {database!r}: the crawler writes its tables into an existing "
                             "database (create it with glue.create_database, as the cell above does).") from None
    _delete_tables(glue, database)
    try:
        glue.create_crawler(**crawler)
    except (ClientError, TypeError) as exc:
        message = _client_error(exc) if isinstance(exc, ClientError) else str(exc)
        raise LabCheckFailed(f"Glue refused CRAWLER: {message}") from None
    status, error = crawl_once(glue, crawler["Name"])
    run = CrawlRun(database, status, error, list(crawler.get("Classifiers") or []))
    for name in run.classifiers:
        found = glue.get_classifier(Name=name)["Classifier"]
        run.custom[name] = found
    pages = glue.get_paginator("get_tables").paginate(DatabaseName=database)
    for table in sorted((t for page in pages for t in page.get("TableList", [])), key=lambda t: t["Name"]):
        run.tables[table["Name"]] = _table_summary(glue, database, table)
    return run


def _csv_specs(run: CrawlRun) -> dict[str, dict]:
    return {name: spec["CsvClassifier"] for name, spec in run.custom.items() if "CsvClassifier" in spec}


def _why_no_header(run: CrawlRun, created: list[str]) -> str:
    """Why vendor A's header was not taken as the column names, from the crawler's classifiers."""
    builtin = ("The built-in CSV classifier takes the first row as a header only when at least one column below "
               "it is not a string, and every vendor A value is a string: ids, times, and temperatures with a "
               "decimal comma (\"21,4\"). ")
    fix = ("Create a CsvClassifier with Delimiter ';', QuoteSymbol '\"' and ContainsHeader 'PRESENT', and list its "
           "name in the crawler's Classifiers.")
    specs = _csv_specs(run)
    if not specs:
        if created:
            return (builtin + f"You created {', '.join(map(repr, created))}, but the crawler's Classifiers do not "
                    "name a CSV classifier, so the crawl never used it: add the name to CRAWLER['Classifiers'].")
        return builtin + fix
    problems = []
    for name, spec in specs.items():
        delimiter, quote = spec.get("Delimiter", ","), spec.get("QuoteSymbol", '"')
        if delimiter != ";":
            problems.append(f"{name!r} splits at {delimiter!r}: vendor A's header and rows do not split into the "
                            "same number of columns with it, so it did not match and the built-in classifier decided")
        elif quote != '"':
            problems.append(f"{name!r} quotes with {quote!r}: the site names contain ';' inside '\"...\"', so "
                            "without the right QuoteSymbol the rows split unevenly and it did not match")
        elif spec.get("ContainsHeader") != "PRESENT":
            problems.append(f"{name!r} has ContainsHeader {spec.get('ContainsHeader', 'UNKNOWN')!r}: it then "
                            "guesses with the same rule as the built-in classifier")
    return builtin + "Your classifier did not change that: " + "; ".join(problems) + ". " + fix


def diagnose_crawl(run: CrawlRun, created: list[str] | None = None, days=DAYS) -> None:
    """Raise :class:`LabCheckFailed` saying what is wrong with the crawled catalog; return if it holds
    :data:`EXPECTED_TABLES`, with one partition per day."""
    created = list(created or [])
    check(run.status == "SUCCEEDED", f"the crawl ended {run.status or 'without a status'}: {run.error}")
    tables = run.tables
    check(tables, f"the crawl wrote no table into {run.database!r}: do the crawler's S3Targets point at the "
                  "landing zone (s3://<bucket>/landing/)?")
    csv_on_json = sorted(n for n, t in tables.items() if "vendor=b" in t["location"] and t["classification"] == "csv")
    if csv_on_json:
        t = tables[csv_on_json[0]]
        claimers = [n for n, s in _csv_specs(run).items() if s.get("Delimiter", ",") == ","] or list(_csv_specs(run))
        raise LabCheckFailed(
            f"vendor B's JSON files were classified as CSV ({len(csv_on_json)} table(s), e.g. {csv_on_json[0]!r} with "
            f"columns {[c for c, _ in t['columns']][:3]}...). Custom classifiers run before the built-in ones and the "
            f"first that is certain wins: your CSV classifier {', '.join(map(repr, claimers))} splits each JSON line "
            "at its commas and claims the file. Give it vendor A's delimiter, ';', which JSON lines do not split on.")
    per_file = sorted(n for n, t in tables.items() if re.search(r"\.\w+$", t["location"]))
    if per_file:
        manifests = [n for n in per_file if tables[n]["location"].endswith("manifest.json")]
        example = tables[per_file[0]]["location"]
        raise LabCheckFailed(
            f"the crawl made {len(per_file)} table(s) of single files (e.g. {per_file[0]!r} at {example}) instead of "
            "one table per vendor. "
            + (f"Each vendor B day folder holds a manifest.json ({len(manifests)} found) whose columns are not the "
               "readings' columns; files of one folder that do not share a schema become a table each. Leave the "
               "manifests out of the crawl: Exclusions in the S3 target, e.g. ['**/manifest.json']."
               if manifests else "Files of one folder that do not share a schema become a table each."))
    expected = set(EXPECTED_TABLES)
    if set(tables) != expected:
        days_as_tables = sorted(n for n in tables if re.search(r"day_?\d{4}", n))
        if days_as_tables:
            raise LabCheckFailed(
                f"the crawl made tables of single days ({', '.join(days_as_tables[:3])}"
                + ("..." if len(days_as_tables) > 3 else "") + "): the day= folders were "
                "not recognised as partitions because the include path is a day folder (or a target per day). Point "
                "the crawler at the landing zone, s3://<bucket>/landing/, so that each vendor folder becomes a table "
                "and its day= folders its partitions.")
        raise LabCheckFailed(f"expected the tables {sorted(expected)}, one per vendor, found {sorted(tables)}. "
                             "The crawler's S3 target should be the landing zone, s3://<bucket>/landing/.")
    a = tables["vendor_a"]
    if [c for c, _ in a["columns"]] != [c for c, _ in EXPECTED_TABLES["vendor_a"]["columns"]]:
        names = [c for c, _ in a["columns"]]
        header_rows = len(days) * FILES_PER_VENDOR
        counted = (f"; its recordCount, {a['records']:,}, counts the {header_rows} header lines as readings"
                   if not a["header_skipped"] else "")
        raise LabCheckFailed(
            f"vendor_a has the columns {names} instead of {[c for c, _ in EXPECTED_TABLES['vendor_a']['columns']]}"
            f"{counted}. " + _why_no_header(run, created))
    for name, want in EXPECTED_TABLES.items():
        got = tables[name]
        check(got["classification"] == want["classification"],
              f"{name} is classified {got['classification']!r}, expected {want['classification']!r}.")
        check(got["columns"] == want["columns"], f"{name} has the columns {got['columns']}, expected {want['columns']}.")
        check(got["partition_keys"] == want["partition_keys"],
              f"{name} has the partition keys {got['partition_keys']}, expected ['day'] (the day= folders).")
        want_parts = sorted((d,) for d in days)
        check(got["partitions"] == want_parts, f"{name} has the partitions {got['partitions']}, expected one per "
                                               f"day: {want_parts}.")


def crawl_summary(run: CrawlRun) -> "pd.DataFrame":
    """One row per table: its format, columns, partition key, partitions and records."""
    import pandas as pd
    rows = [{"table": name, "format": t["classification"], "columns": ", ".join(c for c, _ in t["columns"]),
             "partitioned by": ", ".join(t["partition_keys"]), "partitions": len(t["partitions"]),
             "records": t["records"]} for name, t in run.tables.items()]
    return pd.DataFrame(rows).set_index("table")


def check_crawl(stack, classifiers: list, crawler: dict, days=DAYS) -> "pd.DataFrame":
    """Step 1: create the classifiers and the crawler, crawl, and check the Data Catalog."""
    run = run_crawl(stack, classifiers, crawler)
    diagnose_crawl(run, [_classifier_name(spec) for spec in classifiers], days)
    return crawl_summary(run)


# ------------------------------------------------------------------ step 2: the job, twice
@dataclass
class JobRun:
    """One run of the learner's job, as the check saw it."""
    run_id: str
    state: str
    error: str = ""
    opened: set = field(default_factory=set)            # landing keys the run read (GetObject)
    written: list = field(default_factory=list)         # curated keys the run added
    metered: bool = False                               # whether ``opened`` was measured


@dataclass
class JobCheck:
    """What :func:`run_job_twice` saw."""
    job: str
    bookmark_option: str
    output: str
    first: JobRun | None = None
    second: JobRun | None = None
    bookmark_after_first: dict | None = None            # the JobBookmark state (None: no entry)
    landing_first: list = field(default_factory=list)   # landing keys before the new day
    landing_new: list = field(default_factory=list)     # the new day's keys
    rows_first: "pd.DataFrame | None" = None            # the curated table after run 1
    rows_second: "pd.DataFrame | None" = None           # ... after run 2
    keys_first: list = field(default_factory=list)      # curated keys after run 1
    keys_second: list = field(default_factory=list)


def read_curated(s3, bucket: str, prefix: str, keys: list[str] | None = None) -> "pd.DataFrame":
    """The Parquet files under ``prefix`` (or just ``keys``) as one frame, with ``file`` and, from
    ``key=value/`` folders in the key, those columns."""
    import pandas as pd
    import pyarrow.parquet as pq

    frames = []
    for key in keys if keys is not None else [o["Key"] for o in _list(s3, bucket, prefix)]:
        name = key.rsplit("/", 1)[-1]
        if not name.endswith(".parquet") or name.startswith(("_", ".")):
            continue
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        frame = pq.read_table(io.BytesIO(body)).to_pandas()
        for folder in key[len(prefix):].split("/")[:-1]:
            if "=" in folder:
                column, value = folder.split("=", 1)
                frame[column] = value
        frame["file"] = key
        frames.append(frame)
    if not frames:
        return pd.DataFrame(columns=CURATED_COLUMNS + ["day", "file"])
    return pd.concat(frames, ignore_index=True)


def _start_and_wait(stack, glue, job: str) -> JobRun:
    """Start a run of ``job``; meter the landing objects it opens (local stack); wait for its end."""
    from localaws.core.plane import LocalOnlyError
    run_id = glue.start_job_run(JobName=job)["JobRunId"]

    def ended() -> bool:
        return glue.get_job_run(JobName=job, RunId=run_id)["JobRun"]["JobRunState"] in (
            "SUCCEEDED", "FAILED", "TIMEOUT", "STOPPED", "ERROR")
    finished = wait_until(ended, SECONDS_PER_RUN, poll=0.5)
    found = glue.get_job_run(JobName=job, RunId=run_id)["JobRun"]
    if not finished:
        glue.batch_stop_job_run(JobName=job, JobRunIds=[run_id])
        raise LabCheckFailed(f"the job run was still {found['JobRunState']} after {SECONDS_PER_RUN} s; it was stopped.")
    try:
        read = stack.local.glue.objects_read(run_id)       # local stack: the objects the run opened
    except LocalOnlyError:
        read = None                                         # on AWS: only the output rows are checked
    run = JobRun(run_id, found["JobRunState"], found.get("ErrorMessage", ""), metered=read is not None)
    if read is not None:
        run.opened = {key for _bucket, key in read["objects"]}
    return run


def _bookmark_state(glue, job: str) -> dict | None:
    from botocore.exceptions import ClientError
    try:
        entry = glue.get_job_bookmark(JobName=job)["JobBookmarkEntry"]
    except ClientError as exc:
        if _error_code(exc) == "EntityNotFoundException":
            return None
        raise
    return json.loads(entry.get("JobBookmark") or "{}")


def _bookmark_option(job: dict) -> str:
    return str((job.get("DefaultArguments") or {}).get("--job-bookmark-option", "job-bookmark-disable"))


def run_job_twice(stack, job: dict, script: str, crawler_name: str, bucket: str, output: str) -> JobCheck:
    """Run the learner's job on the landing zone of :data:`DAYS`, add :data:`NEW_DAY`, crawl, run it again.

    Before the first run the landing zone is put back to :data:`DAYS` (an
    earlier check's new day is deleted, the catalog crawled again), the
    output folder is emptied and the job is created afresh from ``job`` with
    ``script`` at its ScriptLocation (deleting a job deletes its bookmark).
    After each run the curated Parquet under ``output`` is read back; the
    second run starts only if the first one succeeded.
    """
    from botocore.exceptions import ClientError

    check(isinstance(job, dict) and job.get("Name") and (job.get("Command") or {}).get("ScriptLocation"),
          f"JOB should be the arguments of glue.create_job, with 'Name', 'Role' and 'Command' "
          f"({{'Name': 'glueetl', 'ScriptLocation': 's3://...'}}); got {job!r}.")
    check(isinstance(script, str) and "GlueContext" in script, "JOB_SCRIPT should be the text of a Glue PySpark "
                                                              "script (it creates a GlueContext).")
    s3, glue = stack.client("s3"), stack.client("glue")
    out_bucket, out_prefix = _bucket_of(output)
    out_prefix = out_prefix if out_prefix.endswith("/") else out_prefix + "/"
    name = job["Name"]
    result = JobCheck(name, _bookmark_option(job), f"s3://{out_bucket}/{out_prefix}")

    # The landing zone as it was before the new day, crawled; an empty output; a new job.
    _delete_prefix(s3, bucket, f"{LANDING}vendor=a/day={NEW_DAY}/")
    _delete_prefix(s3, bucket, f"{LANDING}vendor=b/day={NEW_DAY}/")
    status, error = crawl_once(glue, crawler_name)
    check(status == "SUCCEEDED", f"the crawler {crawler_name!r} failed: {error}")
    _delete_prefix(s3, out_bucket, out_prefix)
    script_bucket, script_key = _bucket_of(job["Command"]["ScriptLocation"])
    s3.put_object(Bucket=script_bucket, Key=script_key, Body=script.encode())
    try:
        glue.delete_job(JobName=name)
        glue.create_job(**job)
    except (ClientError, TypeError) as exc:
        message = _client_error(exc) if isinstance(exc, ClientError) else str(exc)
        raise LabCheckFailed(f"Glue refused JOB: {message}") from None
    result.landing_first = sorted(o["Key"] for o in _list(s3, bucket, LANDING))

    result.first = _start_and_wait(stack, glue, name)
    result.keys_first = sorted(o["Key"] for o in _list(s3, out_bucket, out_prefix))
    result.first.written = list(result.keys_first)
    result.rows_first = read_curated(s3, out_bucket, out_prefix)
    result.bookmark_after_first = _bookmark_state(glue, name)
    if result.first.state != "SUCCEEDED":
        return result

    result.landing_new = upload(s3, bucket, landing_zone([NEW_DAY]))
    status, error = crawl_once(glue, crawler_name)
    check(status == "SUCCEEDED", f"the crawler {crawler_name!r} failed on the new day: {error}")
    result.second = _start_and_wait(stack, glue, name)
    result.keys_second = sorted(o["Key"] for o in _list(s3, out_bucket, out_prefix))
    result.second.written = sorted(set(result.keys_second) - set(result.keys_first))
    result.rows_second = read_curated(s3, out_bucket, out_prefix)
    return result


def _failed(run: JobRun, which: str) -> str:
    return (f"the {which} run of the job ended {run.state}: {run.error or 'no error message'}. Its traceback is in "
            f"CloudWatch Logs, log group /aws-glue/jobs/error, stream {run.run_id}.")


def compare_rows(rows: "pd.DataFrame", files: dict[str, str], output: str, when: str) -> None:
    """Raise :class:`LabCheckFailed` unless ``rows`` (the curated table read back) is the curation of
    ``files``: the right columns, partitioned by ``day``, every good reading once, in Celsius."""
    import pandas as pd

    expected = expected_readings(files)
    raw = raw_readings(files)
    check(len(rows), f"{when}, there is no Parquet file under {output}: write the curated readings there with "
                     "format 'parquet' (glueContext.write_dynamic_frame.from_options).")
    prefix = _bucket_of(output)[1]
    partitioned = sorted({m for f in rows["file"] for m in re.findall(r"(\w+)=", f[len(prefix):])})
    if partitioned != ["day"]:
        raise LabCheckFailed(
            f"{when}, the files under {output} are "
            + (f"partitioned by {partitioned}" if partitioned else "not partitioned (no day= folders)")
            + ": the curated table is partitioned by day, the date of each reading (UTC), so that a query of one "
              "day reads one folder: connection_options={'path': ..., 'partitionKeys': ['day']}.")
    missing_columns = [c for c in CURATED_COLUMNS if c not in rows.columns]
    check(not missing_columns, f"{when}, the curated files lack the column(s) {missing_columns}; they have "
                               f"{[c for c in rows.columns if c not in ('file',)]}. Expected {CURATED_COLUMNS} "
                               "and the partition column day.")
    got = rows[CURATED_COLUMNS + ["day"]].copy()
    times = pd.to_datetime(got["reading_time"])
    got["reading_time"] = times.dt.tz_convert(None) if times.dt.tz is not None else times
    got["temperature_c"] = pd.to_numeric(got["temperature_c"], errors="coerce")
    key = ["sensor_id", "reading_time"]
    dup = got[got.duplicated(key, keep=False)]
    want_keys = set(map(tuple, expected[key].itertuples(index=False)))
    got_keys = Counter(map(tuple, got[key].itertuples(index=False)))
    raw_values = dict(zip(map(tuple, raw[key].itertuples(index=False)), raw["raw"]))
    extra = [k for k in got_keys if k not in want_keys]
    missing = sorted(want_keys - set(got_keys))
    if extra:
        bad = [k for k in extra if k in raw_values]
        if bad:
            raise LabCheckFailed(
                f"{when}, the table holds {_readings(len(extra))} that should have been dropped as bad, e.g. "
                f"{bad[0][0]} at {bad[0][1]} (raw value {raw_values[bad[0]]!r}). Drop readings without a temperature "
                f"(vendor A's 'ERR', vendor B's null) and outside the sensors' range, {VALID_CELSIUS[0]:g} to "
                f"{VALID_CELSIUS[1]:g} °C (vendor B's 9999.9 is its error code).")
        sensors = sorted({k[0] for k in extra})
        hint = ("vendor B's ts is in epoch milliseconds: divide by 1000 before casting to a timestamp"
                if any(s.startswith("B") for s in sensors) else
                "vendor A's reading_time is 'yyyy-MM-dd HH:mm:ss' in UTC")
        raise LabCheckFailed(f"{when}, the table holds {_readings(len(extra))} at times the landing zone does not "
                             f"have, e.g. {extra[0][0]} at {extra[0][1]} ({', '.join(sensors[:4])}): {hint}.")
    if missing:
        per_vendor = Counter(k[0][0] for k in missing)
        detail = ", ".join(f"vendor {v.lower()}: {n:,}" for v, n in sorted(per_vendor.items()))
        hint = ""
        a_rows = got[got["sensor_id"].astype(str).str.startswith("A")]
        if per_vendor.get("A") and (a_rows.empty or a_rows["temperature_c"].isna().all()):
            hint = (" Vendor A writes temperatures with a decimal comma ('21,4'): cast('double') of such a string "
                    "is null. Replace the comma with a point first.")
        raise LabCheckFailed(f"{when}, {_readings(len(missing))} of the landing zone are missing from the table "
                             f"({detail}), e.g. {missing[0][0]} at {missing[0][1]}.{hint}")
    if len(dup):
        first = dup.sort_values(key).iloc[0]
        sent_twice = raw[raw["problem"] == "sent twice"]
        raise LabCheckFailed(
            f"{when}, {_readings(got.duplicated(key).sum())} are in the table more than once, e.g. "
            f"{first['sensor_id']} at {first['reading_time']}. "
            + (f"Vendor B sent {len(sent_twice):,} lines twice: keep one row per sensor and reading_time "
               "(dropDuplicates(['sensor_id', 'reading_time'])).")
            if got.duplicated(key).sum() <= len(sent_twice) else
            "Keep one row per sensor and reading_time.")
    merged = expected.merge(got, on=key, suffixes=("", "_got"))
    off = merged[(merged["temperature_c"] - merged["temperature_c_got"]).abs() >= TOLERANCE]
    if len(off):
        row = off.iloc[0]
        f_like = off[off["vendor"] == "b"]
        hint = ""
        if len(f_like) and ((f_like["temperature_c_got"] - (f_like["temperature_c"] * 9 / 5 + 32)).abs() < 0.01).all():
            hint = " Vendor B reports degrees Fahrenheit (temp_f): convert with (temp_f - 32) * 5 / 9."
        raise LabCheckFailed(f"{when}, temperature_c is wrong for {_readings(len(off))}, e.g. {row['sensor_id']} at "
                             f"{row['reading_time']}: {row['temperature_c_got']} instead of "
                             f"{row['temperature_c']:.2f}.{hint}")
    wrong_vendor = merged[merged["vendor"] != merged["vendor_got"]]
    check(wrong_vendor.empty, f"{when}, vendor is wrong for {_readings(len(wrong_vendor))}: 'a' for vendor A's "
                              "sensors (A-..), 'b' for vendor B's.")
    wrong_day = merged[merged["day"] != merged["day_got"]]
    if len(wrong_day):
        row = wrong_day.iloc[0]
        late = raw[(raw["vendor"] == "b") & (raw["reading_time"].dt.strftime("%Y-%m-%d") != raw["folder_day"])]
        raise LabCheckFailed(
            f"{when}, {_readings(len(wrong_day))} are in the wrong day= partition, e.g. {row['sensor_id']} at "
            f"{row['reading_time']} in day={row['day_got']}. The partition is the date of reading_time (UTC), "
            f"not the folder a reading arrived in: vendor B delivers some readings late ({len(late)} in the "
            "landing zone arrived in the next day's folder).")


def diagnose_job(result: JobCheck, files_first: dict[str, str], files_all: dict[str, str]) -> None:
    """Raise :class:`LabCheckFailed` with what went wrong; return if both runs curated the landing zone
    exactly and the second one read only the new day's objects."""
    output = result.output
    check(result.first is not None and result.first.state == "SUCCEEDED", _failed(result.first, "first")
          if result.first else "the job did not run.")
    compare_rows(result.rows_first, files_first, output, "After the first run")
    check(result.second is not None and result.second.state == "SUCCEEDED",
          _failed(result.second, "second") if result.second else "the second run did not start.")
    new = set(result.landing_new)
    old_read = sorted(k for k in result.second.opened if k.startswith(LANDING) and k not in new
                      and not k.endswith("manifest.json"))
    old_objects = [k for k in result.landing_first if not k.endswith("manifest.json")]
    rows = result.rows_second
    key = ["sensor_id", "reading_time"]
    repeated = int(rows.duplicated(key).sum()) if len(rows) else 0
    if old_read or repeated > 0:
        state = result.bookmark_after_first
        measured = (f"The second run read {len(old_read)} of the {len(old_objects)} objects the first run had "
                    f"already processed" if result.second.metered else "The second run read the old objects again")
        measured += f", and {_readings(repeated)} are now in the table twice. " if repeated else ". "
        option = result.bookmark_option
        if option == "job-bookmark-disable":
            why = ("The job runs with --job-bookmark-option job-bookmark-disable (Glue's default when the argument "
                   "is missing): every run reads everything. Set DefaultArguments "
                   "{'--job-bookmark-option': 'job-bookmark-enable'}.")
        elif option == "job-bookmark-pause":
            why = ("The job runs with job-bookmark-pause: a run reads what is new since the last committed bookmark "
                   "but does not move it, so the next run reads the same objects again. Use job-bookmark-enable.")
        elif option != "job-bookmark-enable":
            why = (f"--job-bookmark-option is {option!r}; Glue knows job-bookmark-enable, -disable and -pause. "
                   "Use job-bookmark-enable.")
        elif state is None:
            why = ("The first run committed no bookmark (GetJobBookmark finds no entry): the script must call "
                   "job.init(args['JOB_NAME'], args) at the start and job.commit() at the end; Glue saves the "
                   "bookmark only at job.commit().")
        else:
            tracked = sorted((state.get("states") or {}))
            vendors = sorted({re.match(rf"{LANDING}vendor=(\w)/", k).group(1) for k in old_read}) if old_read else []
            why = (f"The first run committed a bookmark for the source(s) {tracked or 'none'}"
                   + (f", but vendor {' and '.join(v.upper() for v in vendors)}'s objects were read again" if vendors else "")
                   + ": a read is bookmarked only when it has a transformation_ctx, a name that stays the same from "
                     "run to run. Give each create_dynamic_frame call its own transformation_ctx.")
        raise LabCheckFailed(measured + why + f" ({BOOKMARKS})")
    if result.second.metered:
        new_read = sorted(k for k in result.second.opened if k in new and not k.endswith("manifest.json"))
        new_data = [k for k in new if not k.endswith("manifest.json")]
        check(len(new_read) == len(new_data),
              f"the second run read {len(new_read)} of the {len(new_data)} new objects of day {NEW_DAY}: the "
              "crawler added the new partitions; read the catalog tables (or the landing folders) in full and let "
              "the bookmark choose.")
    compare_rows(rows, files_all, output, "After the second run")


def job_summary(result: JobCheck) -> "pd.DataFrame":
    """Per run: landing objects in S3, objects it read, readings in the table afterwards, rows it added."""
    import pandas as pd

    def data(keys):
        return [k for k in keys if not k.endswith("manifest.json")]
    rows = {}
    for label, run, landing, table, before in (
            ("run 1", result.first, result.landing_first, result.rows_first, 0),
            ("run 2", result.second, result.landing_first + result.landing_new, result.rows_second,
             len(result.rows_first) if result.rows_first is not None else 0)):
        if run is None:
            continue
        opened = data(k for k in run.opened if k.startswith(LANDING))
        rows[label] = {"landing objects": len(data(landing)),
                       "objects read": len(opened) if run.metered else None,
                       "rows added": len(table) - before, "rows in the table": len(table),
                       "days in the table": table["day"].nunique()}
    return pd.DataFrame(rows).T


def check_job(stack, job: dict, script: str, crawler_name: str, bucket: str, output: str) -> "pd.DataFrame":
    """Step 2: run the job, add a day, crawl, run it again; check the table and the bookmark."""
    result = run_job_twice(stack, job, script, crawler_name, bucket, output)
    files_first, files_all = landing_zone(DAYS), landing_zone(DAYS + (NEW_DAY,))
    diagnose_job(result, files_first, files_all)
    return job_summary(result)
