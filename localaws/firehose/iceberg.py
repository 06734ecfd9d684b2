"""Delivery to Apache Iceberg tables (``IcebergDestinationConfiguration``).

Firehose writes each buffered batch into an Iceberg table registered in the
Glue Data Catalog [1]: it parses every record as one JSON object, matches
its **top-level keys to the table's columns by name** ("The column names and
the data types of the source data should match with that of target tables"
[2]; nested objects go into ``struct`` or ``map`` columns), converts the
values to the Iceberg types, writes Parquet data files and commits a new
snapshot by swapping the table's ``metadata_location`` in Glue. Here the
writer is pyiceberg (``localaws/core/iceberg.py``), so any engine of the
course (Athena, a Glue job, pyiceberg itself) reads exactly what was
committed.

**Which table, which operation.** A stream with one entry in
``DestinationTableConfigurationList`` sends every record to that table [3].
Otherwise (or to update and delete) each record says where it goes, in the
``metadata.otfMetadata`` a Lambda transformation returns with it [4]::

    {"recordId": "...", "result": "Ok", "data": "<base64 JSON>",
     "metadata": {"otfMetadata": {"destinationDatabaseName": "sales",
                                  "destinationTableName": "orders",
                                  "operation": "update"}}}

``operation`` is ``insert`` (the default: "Without a specified operation,
Firehose defaults to insert, adding each incoming record as a new row, and
preserving duplicates" [5]), ``update`` or ``delete``. An update or a
delete finds its row by the table's ``UniqueKeys`` (or the table's Iceberg
``identifier-field-ids``); "update will automatically insert the row if the
row in the tables is missing" [5]. So ``UniqueKeys`` alone do not make
upserts: the records must say ``update``. The JQ routing expressions of the
console are not run here (use the Lambda).

**One flush, one commit per table.** Records are buffered per destination
table (like dynamic partitions: ``stats(name)["partitions"]``); a flush
becomes one transaction: the rows that updates replace and deletes remove
are deleted, the new rows appended, and Glue's pointer swapped once. Within
a batch the last update or delete of a key wins; inserts are appended as
they are. Firehose itself writes delete files (merge-on-read); pyiceberg
rewrites the affected data files (copy-on-write): a scan sees the same rows.

**Errors.** A record that is not a JSON object, lacks a required column,
holds a value that does not convert, or (update/delete) lacks a unique key,
is written to the S3 error output and the rest of the batch is committed.
A table that does not exist (or is not an Iceberg v2 table) is
``Iceberg.NoSuchTable``; a record with no table to go to is
``Iceberg.InvalidTableName`` (both AWS's codes [5]). Such table-level
failures, and a commit that fails, are retried for
``RetryOptions.DurationInSeconds`` (default 300, 0-7200 [5]) of the stack's
clock; then the batch goes to the error output. Nothing is half-committed:
a transaction either swaps the pointer or leaves the table as it was.
Error objects are written under the table's ``S3ErrorOutputPrefix``, else
``S3Configuration.ErrorOutputPrefix``, else ``iceberg-failed/yyyy/MM/dd/HH/``,
one JSON line per record (``errorCode``, ``errorMessage``, ``rawData``...,
as for the other destinations). ``S3BackupMode=AllData`` also writes every
record to ``S3Configuration``'s bucket.

``AppendOnly`` is kept and described; on AWS it only lifts the stream's
throughput limit (updates and deletes still run, possibly out of order), so
here it changes nothing.

Error codes other than the two above, and the ``iceberg-failed`` folder
name, are this stand-in's (public reports show ``iceberg-failed`` and
``Iceberg.MissingColumnWithinRecord``; AWS's list has only four codes).

**Values.** int/long from JSON integers; float/double/decimal from numbers
(or numeric strings); boolean from true/false; string from strings (numbers
and booleans as their JSON text); date from ``YYYY-MM-DD`` or days since
1970; time from ``HH:MM:SS[.ffffff]`` or microseconds; timestamp(tz) from
**microseconds** since 1970 ("For Timestamp data types, you must always
send in microseconds" [1]) or an ISO-8601 string; binary/fixed from Base64
(standard or URL-safe) or hex; uuid from its text; struct/map from JSON
objects, list from arrays. Keys that name no column are ignored.

Metrics [6]: ``DeliveryToIceberg.IncomingRowCount``, ``.SuccessfulRowCount``,
``.FailedRowCount``, ``.Bytes``, ``.Success`` (1 per commit) and
``.DataFreshness``.

[1] https://docs.aws.amazon.com/firehose/latest/dev/apache-iceberg-destination.html
[2] https://docs.aws.amazon.com/firehose/latest/dev/apache-iceberg-considerations.html ("Columns")
[3] https://docs.aws.amazon.com/firehose/latest/dev/apache-iceberg-format-input-record.html
[4] https://docs.aws.amazon.com/firehose/latest/dev/apache-iceberg-format-input-record-different.html
[5] https://docs.aws.amazon.com/firehose/latest/dev/apache-iceberg-stream.html
[6] https://docs.aws.amazon.com/firehose/latest/dev/apache-iceberg-metric.html
"""
from __future__ import annotations

import base64
import binascii
import json
import re
import threading
import uuid
from datetime import date, datetime, time as dtime, timedelta, timezone
from decimal import Decimal, InvalidOperation

from localaws.core import iceberg as lake
from . import errors, prefixes
from .buffer import Batch, Outcome

KIND = "Iceberg"
PARAM = "IcebergDestinationConfiguration"
FIELD = "icebergDestinationConfiguration"
ERROR_TYPE = "iceberg-failed"
TABLE_KEY = "iceberg:table"                 # the part of a destination buffer: one table each
OTF = "otf:"                                # record.keys prefix of a Lambda's otfMetadata
OPERATIONS = ("insert", "update", "delete")
DEFAULT_RETRY_SECONDS = 300
MAX_RETRY_SECONDS = 7200
BACKUP_MODES = ("FailedDataOnly", "AllData")
# Patterns of the API reference (IcebergDestinationConfiguration, CatalogConfiguration,
# DestinationTableConfiguration).
ROLE_ARN = r"arn:.*:iam::\d{12}:role/[a-zA-Z_0-9+=,.@\-_/]+"
CATALOG_ARN = r"arn:.*:glue:.*:\d{12}:catalog(?:(/[a-z0-9_-]+){1,2})?"
NAME = r"[a-zA-Z0-9\.\_]+"
NO_SUCH_TABLE = "Iceberg.NoSuchTable"
INVALID_TABLE_NAME = "Iceberg.InvalidTableName"
EPOCH = datetime(1970, 1, 1)


class RecordError(Exception):
    """One record cannot be delivered: ``code`` and message go to the error output."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


# -- CreateDeliveryStream ------------------------------------------------------------
def _invalid(value, path: str, constraint: str) -> errors.ValidationException:
    shown = "null" if value is None else f"'{value}'"
    return errors.ValidationException(f"1 validation error detected: Value {shown} at '{FIELD}.{path}' "
                                      f"failed to satisfy constraint: {constraint}")


def _pattern(value, path: str, pattern: str) -> None:
    if value is None:
        raise _invalid(None, path, "Member must not be null")
    if not isinstance(value, str) or not re.fullmatch(pattern, value):
        raise _invalid(value, path, f"Member must satisfy regular expression pattern: {pattern}")


def table_configs(config: dict) -> dict[tuple[str, str], dict]:
    """``DestinationTableConfigurationList`` by ``(database, table)``, lower-cased as Glue stores names."""
    return {(t["DestinationDatabaseName"].lower(), t["DestinationTableName"].lower()): t
            for t in config.get("DestinationTableConfigurationList") or []}


def check_config(config: dict, catalog, account: str, region: str) -> None:
    """Firehose's checks of an ``IcebergDestinationConfiguration`` (raise the API's error).

    ``catalog()`` returns the stack's pyiceberg catalog: with ``UniqueKeys``, "Firehose
    validates at stream creation whether the table and unique keys exist" (AWS's
    prerequisites page), so those tables must exist first; without, they need not.
    """
    from localaws.core import not_emulated
    _pattern(config.get("RoleARN"), "roleARN", ROLE_ARN)
    catalog_conf = config.get("CatalogConfiguration")
    if catalog_conf is None:
        raise _invalid(None, "catalogConfiguration", "Member must not be null")
    arn = catalog_conf.get("CatalogARN")
    if arn is not None:
        _pattern(arn, "catalogConfiguration.catalogARN", CATALOG_ARN)
        parts = arn.split(":")
        if parts[5] != "catalog" or parts[3] != region or parts[4] != account:
            raise not_emulated("firehose", "CreateDeliveryStream",
                               f"CatalogARN {arn}: only this account's Glue Data Catalog in {region} "
                               f"(arn:aws:glue:{region}:{account}:catalog) is served locally")
    s3_conf = config.get("S3Configuration")
    if s3_conf is None:
        raise _invalid(None, "s3Configuration", "Member must not be null")
    if not s3_conf.get("BucketARN"):
        raise _invalid(None, "s3Configuration.bucketARN", "Member must not be null")
    mode = config.get("S3BackupMode")
    if mode is not None and mode not in BACKUP_MODES:
        raise _invalid(mode, "s3BackupMode", f"Member must satisfy enum value set: [{', '.join(BACKUP_MODES)}]")
    duration = (config.get("RetryOptions") or {}).get("DurationInSeconds")
    if duration is not None and not 0 <= int(duration) <= MAX_RETRY_SECONDS:
        raise _invalid(duration, "retryOptions.durationInSeconds",
                       f"Member must have value {'less' if int(duration) > 0 else 'greater'} than or equal to "
                       f"{MAX_RETRY_SECONDS if int(duration) > 0 else 0}")
    for section in ("SchemaEvolutionConfiguration", "TableCreationConfiguration"):
        if (config.get(section) or {}).get("Enabled"):
            raise not_emulated("firehose", "CreateDeliveryStream", f"{section} (automatic schema evolution "
                               "and table creation) is not run locally: create the table first")
    seen = set()
    for i, entry in enumerate(config.get("DestinationTableConfigurationList") or [], start=1):
        path = f"destinationTableConfigurationList.{i}.member"
        _pattern(entry.get("DestinationDatabaseName"), f"{path}.destinationDatabaseName", NAME)
        _pattern(entry.get("DestinationTableName"), f"{path}.destinationTableName", NAME)
        name = (entry["DestinationDatabaseName"].lower(), entry["DestinationTableName"].lower())
        if name in seen:
            raise errors.InvalidArgumentException(
                f"DestinationTableConfigurationList has more than one entry for {name[0]}.{name[1]}: "
                "configure each table once.")
        seen.add(name)
        keys = entry.get("UniqueKeys")
        if keys:
            if any(not isinstance(k, str) or not re.fullmatch(r"^\S+$", k) for k in keys):
                raise _invalid(keys, f"{path}.uniqueKeys", r"Member must satisfy regular expression pattern: ^\S+$")
            problem = _missing_table(catalog, *name)
            if problem:
                raise errors.InvalidArgumentException(
                    f"Firehose could not validate the UniqueKeys of {name[0]}.{name[1]}: {problem}")
            columns = {f.name for f in catalog().load_table(name).schema().fields}
            absent = [k for k in keys if k not in columns]
            if absent:
                raise errors.InvalidArgumentException(
                    f"UniqueKeys {absent} are not columns of the table {name[0]}.{name[1]} "
                    f"(its columns: {sorted(columns)}).")


def _missing_table(catalog, database: str, table: str) -> str | None:
    """Why ``database.table`` cannot be written (None: it is an Iceberg v2 table)."""
    from pyiceberg.exceptions import NoSuchIcebergTableError, NoSuchNamespaceError, NoSuchTableError
    try:
        loaded = catalog().load_table((database, table))
    except NoSuchNamespaceError:
        return f"the database {database} does not exist"
    except NoSuchIcebergTableError:
        return f"{database}.{table} is not an Iceberg table"
    except NoSuchTableError:
        return f"the table {database}.{table} does not exist"
    if loaded.metadata.format_version < 2:
        return f"{database}.{table} is an Iceberg v{loaded.metadata.format_version} table (Firehose writes v2)"
    return None


# -- routing (as records are processed) ------------------------------------------------
def route(config: dict, record) -> tuple[str, str, str]:
    """``(database, table, operation)`` for ``record`` (its otfMetadata, else the one configured
    table); RecordError when it has none or names an unknown operation."""
    meta = {k[len(OTF):]: v for k, v in record.keys.items() if k.startswith(OTF)}
    database, table = meta.get("destinationDatabaseName"), meta.get("destinationTableName")
    if not database or not table:
        configured = config.get("DestinationTableConfigurationList") or []
        if len(configured) != 1:
            raise RecordError(INVALID_TABLE_NAME, "No destination table for the record: configure exactly one "
                              "table in DestinationTableConfigurationList, or return metadata.otfMetadata "
                              "(destinationDatabaseName, destinationTableName) from the Lambda function.")
        database = database or configured[0]["DestinationDatabaseName"]
        table = table or configured[0]["DestinationTableName"]
    operation = (meta.get("operation") or "insert").lower()
    if operation not in OPERATIONS:
        raise RecordError("Iceberg.InvalidOperation",
                          f"otfMetadata.operation {meta.get('operation')!r} is not one of insert, update, delete.")
    return database.lower(), table.lower(), operation


def otf_keys(otf: dict) -> dict[str, str]:
    """A Lambda's ``metadata.otfMetadata`` as record keys."""
    return {OTF + k: str(v) for k, v in (otf or {}).items()
            if k in ("destinationDatabaseName", "destinationTableName", "operation") and v}


# -- JSON -> Iceberg values ----------------------------------------------------------------
def _converter(kind):
    """A function JSON value -> Python value of the Iceberg type (ValueError when it does not fit)."""
    from pyiceberg import types as t
    if isinstance(kind, t.BooleanType):
        def boolean(v):
            if isinstance(v, bool):
                return v
            if isinstance(v, str) and v.lower() in ("true", "false"):
                return v.lower() == "true"
            raise ValueError(f"{v!r} is not a boolean")
        return boolean
    if isinstance(kind, (t.IntegerType, t.LongType)):
        bits = 32 if isinstance(kind, t.IntegerType) else 64

        def integer(v):
            if isinstance(v, bool) or not isinstance(v, (int, str)):
                if isinstance(v, float) and v.is_integer():
                    v = int(v)
                else:
                    raise ValueError(f"{v!r} is not an integer")
            n = int(v)
            if not -(1 << (bits - 1)) <= n < (1 << (bits - 1)):
                raise ValueError(f"{n} is out of range for {kind}")
            return n
        return integer
    if isinstance(kind, (t.FloatType, t.DoubleType)):
        def number(v):
            if isinstance(v, bool) or not isinstance(v, (int, float, str)):
                raise ValueError(f"{v!r} is not a number")
            return float(v)
        return number
    if isinstance(kind, t.DecimalType):
        def decimal(v):
            if isinstance(v, bool) or not isinstance(v, (int, float, str)):
                raise ValueError(f"{v!r} is not a decimal")
            try:
                d = Decimal(str(v)).quantize(Decimal(1).scaleb(-kind.scale))
            except InvalidOperation:
                raise ValueError(f"{v!r} is not a {kind}") from None
            if len(d.as_tuple().digits) > kind.precision:
                raise ValueError(f"{v!r} does not fit {kind}")
            return d
        return decimal
    if isinstance(kind, t.StringType):
        def string(v):
            if isinstance(v, str):
                return v
            if isinstance(v, (bool, int, float)):
                return json.dumps(v)
            raise ValueError(f"a JSON {type(v).__name__} is not a string")
        return string
    if isinstance(kind, t.DateType):
        def day(v):
            if isinstance(v, int) and not isinstance(v, bool):
                return date(1970, 1, 1) + timedelta(days=v)
            if isinstance(v, str):
                return date.fromisoformat(v)
            raise ValueError(f"{v!r} is not a date")
        return day
    if isinstance(kind, t.TimeType):
        def time_of_day(v):
            if isinstance(v, int) and not isinstance(v, bool):
                return (datetime.min + timedelta(microseconds=v)).time()
            if isinstance(v, str):
                return dtime.fromisoformat(v)
            raise ValueError(f"{v!r} is not a time")
        return time_of_day
    if isinstance(kind, (t.TimestampType, t.TimestamptzType)):
        aware = isinstance(kind, t.TimestamptzType)

        def timestamp(v):
            if isinstance(v, int) and not isinstance(v, bool):       # microseconds since 1970
                value = EPOCH + timedelta(microseconds=v)
            elif isinstance(v, str):
                value = datetime.fromisoformat(v)
                if value.tzinfo is not None:
                    value = value.astimezone(timezone.utc).replace(tzinfo=None)
            else:
                raise ValueError(f"{v!r} is not a timestamp (send microseconds since 1970)")
            return value.replace(tzinfo=timezone.utc) if aware else value
        return timestamp
    if isinstance(kind, (t.BinaryType, t.FixedType)):
        def binary(v):
            if not isinstance(v, str):
                raise ValueError(f"{v!r} is not Base64 or hex text")
            try:
                raw = base64.b64decode(v + "=" * (-len(v) % 4), altchars=b"-_" if ("-" in v or "_" in v) else None,
                                       validate=True)
            except (binascii.Error, ValueError):
                try:
                    raw = bytes.fromhex(v)
                except ValueError:
                    raise ValueError(f"{v[:40]!r} is not Base64 or hex") from None
            if isinstance(kind, t.FixedType) and len(raw) != len(kind):
                raise ValueError(f"{len(raw)} bytes do not fit {kind}")
            return raw
        return binary
    if isinstance(kind, t.UUIDType):
        def uuid_value(v):
            if not isinstance(v, str):
                raise ValueError(f"{v!r} is not a UUID")
            return uuid.UUID(v).bytes
        return uuid_value
    if isinstance(kind, t.StructType):
        fields = [(f.name, f.required, _converter(f.field_type)) for f in kind.fields]

        def struct(v):
            if not isinstance(v, dict):
                raise ValueError("a struct column needs a JSON object")
            return _row(fields, v)
        return struct
    if isinstance(kind, t.ListType):
        element = _converter(kind.element_type)

        def array(v):
            if not isinstance(v, list):
                raise ValueError("a list column needs a JSON array")
            return [None if x is None else element(x) for x in v]
        return array
    if isinstance(kind, t.MapType):
        key, value = _converter(kind.key_type), _converter(kind.value_type)

        def mapping(v):
            if not isinstance(v, dict):
                raise ValueError("a map column needs a JSON object")
            return [(key(k), None if x is None else value(x)) for k, x in v.items()]
        return mapping
    raise ValueError(f"the Iceberg type {kind} is not converted locally")


def _row(fields, obj: dict) -> dict:
    row = {}
    for name, required, convert in fields:
        v = obj.get(name)
        if v is None:
            if required:
                raise RecordError("Iceberg.MissingColumnWithinRecord", f"The record has no value for the "
                                  f"required column {name}.")
            row[name] = None
            continue
        try:
            row[name] = convert(v)
        except RecordError:
            raise
        except (ValueError, TypeError, OverflowError) as exc:
            raise RecordError("Iceberg.InvalidValue", f"Column {name}: {exc}") from None
    return row


class Rows:
    """The JSON -> row converter of one table schema."""

    def __init__(self, schema):
        self.schema = schema
        self.arrow = schema.as_arrow()
        self.fields = [(f.name, f.required, _converter(f.field_type)) for f in schema.fields]

    def convert(self, data: bytes) -> dict:
        try:
            obj = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise RecordError("Iceberg.InvalidJson", f"The record is not JSON: {exc}") from None
        if not isinstance(obj, dict):
            raise RecordError("Iceberg.InvalidJson", "The record is not a JSON object.")
        return _row(self.fields, obj)


# -- delivery --------------------------------------------------------------------------------
class IcebergWriter:
    """Commits batches into Iceberg tables; ``deliverer`` is engine.Deliverer (S3 writes, error rows)."""

    def __init__(self, ctx, deliverer, publish):
        self.ctx = ctx
        self.deliverer = deliverer
        self.publish = publish
        self._catalog = None
        self._lock = threading.Lock()
        self._failing: dict[tuple[str, str], float] = {}     # (stream, table) -> first failed attempt

    def catalog(self):
        with self._lock:
            if self._catalog is None:
                self._catalog = lake.catalog(self.ctx)
            return self._catalog

    def deliver(self, stream, config: dict, batch: Batch, outcome: Outcome) -> None:
        """Commit ``batch`` (one table's records) in one transaction; failures to the error output."""
        from pyiceberg.exceptions import NoSuchIcebergTableError, NoSuchNamespaceError, NoSuchTableError
        records = batch.records
        name = dict(batch.key.part)[TABLE_KEY]
        database, table_name = name.split(".", 1)
        entry = table_configs(config).get((database, table_name)) or {}
        s3_conf = config.get("S3DestinationDescription") or config.get("S3Configuration") or {}
        outcome.info["table"] = name
        if config.get("S3BackupMode") == "AllData":
            self._backup(stream, config, s3_conf, records)
        self.publish(stream, [("DeliveryToIceberg.IncomingRowCount", len(records), "Count")])
        try:
            problem = _missing_table(self.catalog, database, table_name)
            if problem:
                raise RecordError(NO_SUCH_TABLE, f"Firehose is writing to a table that doesn't exist, or the "
                                  f"table is not in V2 format: {problem}.")
            table = self.catalog().load_table((database, table_name))
            rows = Rows(table.schema())
            keys = list(entry.get("UniqueKeys") or []) or sorted(table.schema().identifier_field_names())
            inserts, finals, failed = [], {}, []
            for r in records:
                operation = r.keys.get(OTF + "operation", "insert").lower()
                try:
                    row = rows.convert(r.data)
                    if operation == "insert":
                        inserts.append((r, row))
                        continue
                    if not keys:
                        raise RecordError("Iceberg.MissingUniqueKeys", f"An {operation} needs UniqueKeys for "
                                          f"{name} (or identifier-field-ids in the table).")
                    key = tuple(row.get(k) for k in keys)
                    if any(v is None for v in key):
                        raise RecordError("Iceberg.MissingUniqueKeys",
                                          f"The {operation} record has no value for the unique keys {keys}.")
                    finals.pop(key, None)                          # the last operation of a key wins
                    finals[key] = (r, row if operation == "update" else None)
                except RecordError as exc:
                    failed.append((r, exc))
            good = [r for r, _ in inserts] + [r for r, _ in finals.values()]
            if good:
                snapshot = self._commit(table, rows, keys, [row for _, row in inserts],
                                        list(finals), [row for _, row in finals.values() if row is not None])
                outcome.info["snapshot_id"] = snapshot
        except RecordError as exc:                          # the whole table: retried, then error output
            self._retry_or_fail(stream, config, s3_conf, entry, name, records, exc, outcome)
            return
        except (NoSuchTableError, NoSuchNamespaceError, NoSuchIcebergTableError) as exc:   # dropped meanwhile
            self._retry_or_fail(stream, config, s3_conf, entry, name, records,
                                RecordError(NO_SUCH_TABLE, str(exc)), outcome)
            return
        except Exception as exc:                            # a commit conflict, S3 down...
            self._retry_or_fail(stream, config, s3_conf, entry, name, records,
                                RecordError("Iceberg.CommitFailed", f"{type(exc).__name__}: {exc}"), outcome)
            return
        self._failing.pop((stream.delivery_stream_name, name), None)
        outcome.delivered.extend(good)
        if failed:
            outcome.info["error_key"] = self._write_errors(stream, config, s3_conf, entry, failed)
            outcome.failed.extend(r for r, _ in failed)
        metrics = [("DeliveryToIceberg.SuccessfulRowCount", len(good), "Count"),
                   ("DeliveryToIceberg.FailedRowCount", len(failed), "Count"),
                   ("DeliveryToIceberg.Bytes", sum(len(r.data) for r in good), "Bytes"),
                   ("DeliveryToIceberg.DataFreshness",
                    self.ctx.clock.monotonic() - min(r.arrival_mono for r in records), "Seconds")]
        if good:
            metrics.append(("DeliveryToIceberg.Success", 1, "Count"))
        self.publish(stream, metrics)

    @staticmethod
    def _commit(table, rows: Rows, keys: list[str], inserts: list[dict], touched: list[tuple],
                updates: list[dict]) -> int:
        """One transaction: delete the rows of ``touched`` keys, append inserts and updated rows."""
        import pyarrow as pa
        from pyiceberg.expressions import And, EqualTo, In, Or
        with table.transaction() as txn:
            if touched:
                if len(keys) == 1:
                    condition = In(keys[0], [k[0] for k in touched])
                else:
                    conditions = [And(*[EqualTo(c, v) for c, v in zip(keys, k)]) for k in touched]
                    condition = conditions[0] if len(conditions) == 1 else Or(*conditions)
                txn.delete(condition)
            new = inserts + updates
            if new:
                txn.append(pa.Table.from_pylist(new, schema=rows.arrow))
        snapshot = table.current_snapshot()
        return snapshot.snapshot_id if snapshot else 0

    def _retry_or_fail(self, stream, config, s3_conf, entry, name, records, exc: RecordError,
                       outcome: Outcome) -> None:
        """Within ``RetryOptions.DurationInSeconds`` raise (the buffer retries with backoff);
        after it, every record goes to the error output."""
        key = (stream.delivery_stream_name, name)
        now = self.ctx.clock.monotonic()
        first = self._failing.setdefault(key, now)
        window = int((config.get("RetryOptions") or {}).get("DurationInSeconds", DEFAULT_RETRY_SECONDS))
        if now - first < window:
            raise ConnectionError(f"{exc.code}: {exc} (retried until {window} s have passed)")
        self._failing.pop(key, None)
        outcome.info["error_key"] = self._write_errors(stream, config, s3_conf, entry,
                                                       [(r, exc) for r in records])
        outcome.info["error"] = exc.code
        outcome.failed.extend(records)
        self.publish(stream, [("DeliveryToIceberg.FailedRowCount", len(records), "Count")])

    def _write_errors(self, stream, config, s3_conf, entry, failed) -> str:
        d = self.deliverer
        when = d._oldest(config, [r for r, _ in failed])
        prefix = prefixes.error_prefix(entry.get("S3ErrorOutputPrefix") or s3_conf.get("ErrorOutputPrefix"),
                                       ERROR_TYPE, when)
        key = d._object_key(stream, config, prefix, when)
        body = b"".join(d._failure_row(r, exc.code, str(exc)).data for r, exc in failed)
        d._put_object(s3_conf, key, body)
        return key

    def _backup(self, stream, config, s3_conf, records) -> None:
        d = self.deliverer
        when = d._oldest(config, records)
        key = d._object_key(stream, s3_conf, prefixes.object_prefix(s3_conf.get("Prefix"), when), when)
        d._put_object(s3_conf, key, b"".join(r.data for r in records))
