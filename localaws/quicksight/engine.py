"""QuickSight's data sets and SPICE: what a data set *is*, and where its rows come from.

A data set is a recipe, checked when it is created:

1. a **physical table** at a data source (``sources.py``): a RelationalTable, a CustomSql query
   or an S3Source, with typed ``InputColumns``;
2. a **logical table** of data-prep steps over it (``DataTransforms``): ProjectOperation,
   FilterOperation, CreateColumnsOperation (calculated fields, ``expressions.py``),
   RenameColumnOperation, CastColumnTypeOperation, TagColumnOperation;
3. security (``security.py``): column-level rules and a row-level rules data set.

The recipe becomes one SQL query over the raw source rows (DuckDB). ``ImportMode`` decides when
it runs:

- **SPICE**: an *ingestion* (a thread) reads the source once and stores the result as a table
  in one in-memory DuckDB database per stack (bounded by ``core/limits.py``). Queries read that
  table; the source is not asked again until the next ingestion (a refresh). An ingestion that
  would take the account over its SPICE capacity fails with ``ACCOUNT_CAPACITY_LIMIT_EXCEEDED``
  and the data set keeps its previous data.
- **DIRECT_QUERY**: every query reads the source again (counted: ``queries(dataset_id)``): an
  Athena query or a Redshift Data API statement selecting the physical table's columns, then the
  data prep, security and the visual's SQL run here. QuickSight itself pushes the visual's filters
  and aggregation into the source's SQL; the answer is the same, the bytes scanned are not.

**Who reads the source.** QuickSight reaches Athena with an IAM role: the data source's own
``AthenaParameters.RoleArn`` ("run as role") when it has one, else the account's QuickSight service
role ``aws-quicksight-service-role-v0`` (created in IAM on first use). Lake Formation then decides:

- with a data source role, for that role (every user of the data set sees what the role may read);
- with the service role, for the QuickSight user who owns the data set (the first principal of its
  Permissions holding ``quicksight:UpdateDataSetPermissions``, a user before a group): Lake Formation
  grants name QuickSight users and groups by their ARNs. The service role assumes one session per
  owner and tells Lake Formation whom it acts for (``ctx.lake.act_for``, ``core/lake.py``); Athena
  sees only that signed session. A data set without an owner is read as the service role itself.

This holds for both import modes: a SPICE ingestion reads as the owner at the time of the
ingestion, and a DIRECT_QUERY data set reads as the owner at every query, whoever views the
dashboard. Readers see the data the author sees; QuickSight does not ask Lake Formation per reader
unless the account uses IAM Identity Center with trusted identity propagation (DIRECT_QUERY only),
which is not emulated: restrict readers with the data set's row- and column-level security
(``security.py``). Sources: https://aws.amazon.com/blogs/big-data/enable-fine-grained-permissions-for-amazon-quicksight-authors-in-aws-lake-formation/
(grants to QuickSight users and groups, for authors),
https://aws.amazon.com/blogs/big-data/automate-replication-of-row-level-security-from-aws-lake-formation-to-amazon-quicksight/
("users will see the same data as the author, unless row-level security is enabled"; trusted identity
propagation needs IAM Identity Center and direct query),
https://docs.aws.amazon.com/quicksight/latest/user/athena.html (the service role),
https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-properties-quicksight-datasource-athenaparameters.html
(``RoleArn``).

The size a data set takes in SPICE (``ConsumedSpiceCapacityInBytes``) is QuickSight's documented
*logical size*: per row, 8 bytes for each number or date field and 8 bytes plus the UTF-8 length
for each text field (https://docs.aws.amazon.com/quicksight/latest/user/spice.html).

The interface other modules (dashboards, the chapter) use: :meth:`QuickSightEngine.dataset`,
:meth:`~QuickSightEngine.columns`, :meth:`~QuickSightEngine.query`,
:meth:`~QuickSightEngine.user`, :meth:`~QuickSightEngine.user_groups`.
"""
from __future__ import annotations

import concurrent.futures
import copy
import datetime
import decimal
import hashlib
import itertools
import json
import re
import threading
import uuid
from dataclasses import dataclass, field

from localaws.core import limits, not_emulated
from localaws.core.waiting import wait_until

from . import errors, security, sources
from .expressions import quote, to_sql

GIB = 1024 ** 3
#: SPICE capacity of a new account: 10 GB comes with each Enterprise author (one assumed here).
DEFAULT_SPICE_CAPACITY = 10 * GIB
QS_TYPES = ("STRING", "INTEGER", "DECIMAL", "DATETIME")
#: InputColumns types -> the SQL that types a raw string value.
INPUT_CASTS = {"STRING": None, "JSON": None, "INTEGER": "BIGINT", "DECIMAL": "DOUBLE",
               "DATETIME": "TIMESTAMP", "BIT": "BIGINT", "BOOLEAN": "BOOLEAN"}
CAST_TYPES = {"STRING": "VARCHAR", "INTEGER": "BIGINT", "DECIMAL": "DOUBLE", "DATETIME": "TIMESTAMP"}
FINAL = ("COMPLETED", "FAILED", "CANCELLED")
#: The IAM role QuickSight uses to reach AWS services (Athena, S3) for the account.
SERVICE_ROLE, SERVICE_ROLE_PATH = "aws-quicksight-service-role-v0", "/service-role/"
#: The action that makes a data set principal an owner (co-owners hold every data set action).
OWNER_ACTION = "quicksight:UpdateDataSetPermissions"


def owner(permissions: list[dict]) -> str | None:
    """The data set's owner for Lake Formation: the first principal of ``permissions`` holding
    :data:`OWNER_ACTION`, a user before a group; None when nobody owns it."""
    owners = [p.get("Principal", "") for p in permissions or [] if OWNER_ACTION in p.get("Actions", [])]
    users = [o for o in owners if ":user/" in o]
    return (users or owners or [None])[0]


def qs_type(duck_type: str) -> str:
    """QuickSight's field type for a DuckDB column type."""
    t = duck_type.upper()
    if t.startswith(("TIMESTAMP", "DATE")):
        return "DATETIME"
    if t.startswith(("DECIMAL", "DOUBLE", "FLOAT", "REAL")):
        return "DECIMAL"
    if t in ("BIGINT", "INTEGER", "SMALLINT", "TINYINT", "HUGEINT", "UBIGINT", "UINTEGER", "BOOLEAN"):
        return "INTEGER"
    return "STRING"


def _principal_name(arn_or_name: str) -> tuple[str, str]:
    """(namespace, name) of a user or group ARN (``...:user/<namespace>/<name>``; an IAM role's
    user name holds a slash: ``<role>/<session>``), or ("default", name) for a bare name."""
    if not arn_or_name.startswith("arn:"):
        return "default", arn_or_name
    resource = arn_or_name.split(":", 5)[-1]           # user/<namespace>/<name>
    _, namespace, name = (resource.split("/", 2) + ["", ""])[:3]
    return namespace or "default", name


def _python(value):
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, datetime.date) and not isinstance(value, datetime.datetime):
        return datetime.datetime(value.year, value.month, value.day)
    return value


@dataclass
class DataSet:
    """One data set: the request it was made from, and what we derived (columns, SQL, SPICE)."""
    id: str
    arn: str
    name: str
    import_mode: str
    request: dict                       # PhysicalTableMap, LogicalTableMap, security... as given
    source: dict                        # the data source of its physical table
    physical: dict                      # that physical table
    input_names: list[str]
    transform_sql: str                  # SQL over a relation "raw" of the input columns as strings
    columns: list[tuple[str, str]]      # output columns (name, QuickSight type)
    created: float
    updated: float
    permissions: list[dict] = field(default_factory=list)
    spice_table: str | None = None
    consumed: int = 0
    rules_dataset: str | None = None    # the RLS rules data set's id


@dataclass
class Ingestion:
    id: str
    arn: str
    dataset_id: str
    created: float
    request_type: str
    request_source: str = "MANUAL"
    status: str = "INITIALIZED"
    error: dict | None = None
    rows_ingested: int = 0
    rows_dropped: int = 0
    total_rows: int = 0
    size: int = 0
    seconds: int | None = None
    cancel: bool = False
    future: concurrent.futures.Future | None = None

    def describe(self) -> dict:
        out = {"Arn": self.arn, "IngestionId": self.id, "IngestionStatus": self.status,
               "CreatedTime": self.created, "RequestSource": self.request_source,
               "RequestType": self.request_type}
        if self.error:
            out["ErrorInfo"] = dict(self.error)
        if self.status == "COMPLETED":
            out["RowInfo"] = {"RowsIngested": self.rows_ingested, "RowsDropped": self.rows_dropped,
                              "TotalRowsInDataset": self.total_rows}
            out["IngestionSizeInBytes"] = self.size
        if self.seconds is not None:
            out["IngestionTimeInSeconds"] = self.seconds
        return out


class QuickSightEngine:
    """Data sets, their SPICE copies and ingestions, for one stack (account 123456789012)."""

    def __init__(self, ctx, credentials: dict | None = None):
        self.ctx = ctx
        self.credentials = credentials if credentials is not None else {}   # data source id -> Credentials
        self._lock = threading.RLock()
        self._datasets: dict[str, DataSet] = {}
        self._ingestions: dict[str, dict[str, Ingestion]] = {}
        self._queries: dict[str, int] = {}
        self._capacity = DEFAULT_SPICE_CAPACITY
        self._db = None
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._names = itertools.count(1)
        self._dataset_locks: dict[str, threading.Lock] = {}
        self._athena: dict[str, object] = {}      # QuickSight identity -> Athena client of its session

    # -- the identity that reads an Athena source ----------------------------------------
    def service_role(self) -> str:
        """The ARN of the account's QuickSight service role, created in IAM on first use."""
        iam = self.ctx.client("iam")
        with self._lock:
            try:
                return iam.get_role(RoleName=SERVICE_ROLE)["Role"]["Arn"]
            except iam.exceptions.NoSuchEntityException:
                trust = {"Version": "2012-10-17", "Statement": [{
                    "Effect": "Allow", "Principal": {"Service": "quicksight.amazonaws.com"},
                    "Action": "sts:AssumeRole"}]}
                return iam.create_role(RoleName=SERVICE_ROLE, Path=SERVICE_ROLE_PATH,
                                       AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]

    def athena_for(self, source: dict, identity: str | None):
        """The Athena client that reads ``source`` for a data set owned by ``identity`` (a
        QuickSight user or group ARN, or None); None for a source that is not Athena."""
        if source.get("Type") != "ATHENA":
            return None
        role = ((source.get("DataSourceParameters") or {}).get("AthenaParameters") or {}).get("RoleArn")
        if role:                            # "run as role": Lake Formation decides for that role
            return self.ctx.client("athena", principal=role)
        if identity is None:
            return self.ctx.client("athena", principal=self.service_role())
        with self._lock:
            made = self._athena.get(identity)
        if made is not None:
            return made
        # One session of the service role per identity; Lake Formation is told whom it acts for.
        name = re.sub(r"[^\w+=,.@-]", "-", identity.rsplit(":", 1)[-1].split("/", 1)[-1])[:48]
        session = f"{name}-{hashlib.sha1(identity.encode()).hexdigest()[:8]}"
        answer = self.ctx.client("sts").assume_role(RoleArn=self.service_role(), RoleSessionName=session)
        lake = getattr(self.ctx, "lake", None)
        if lake is not None:
            lake.act_for(answer["AssumedRoleUser"]["Arn"], identity)
        client = self.ctx.client("athena", access_key=answer["Credentials"]["AccessKeyId"])
        with self._lock:
            return self._athena.setdefault(identity, client)

    # -- plumbing -----------------------------------------------------------------
    def _cursor(self):
        import duckdb
        with self._lock:
            if self._db is None:
                self._db = duckdb.connect(":memory:", config=limits.duckdb_config("quicksight-spice"))
            return self._db.cursor()

    def _executor(self):
        with self._lock:
            if self._pool is None:
                self._pool = concurrent.futures.ThreadPoolExecutor(2, thread_name_prefix="quicksight-spice")
            return self._pool

    def stop(self) -> None:
        with self._lock:
            for per in self._ingestions.values():
                for ing in per.values():
                    ing.cancel = True
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def _backend(self):
        from moto.quicksight.models import quicksight_backends
        return quicksight_backends[self.ctx.account_id][self.ctx.region]

    def arn(self, kind: str, name: str) -> str:
        return f"arn:aws:quicksight:{self.ctx.region}:{self.ctx.account_id}:{kind}/{name}"

    # -- users and groups (moto keeps them) ----------------------------------------
    def user(self, user_arn_or_name: str) -> dict | None:
        """The QuickSight user (DescribeUser's fields) by ARN or name, or None."""
        namespace, name = _principal_name(user_arn_or_name)
        user = self._backend().users.get(f"{self.ctx.account_id}:{namespace}:{name}")
        return user.to_json() if user else None

    def group(self, group_arn_or_name: str) -> dict | None:
        namespace, name = _principal_name(group_arn_or_name)
        group = self._backend().groups.get(f"{self.ctx.account_id}:{namespace}:{name}")
        return group.to_json() if group else None

    def user_groups(self, user_arn: str) -> list[str]:
        """Names of the groups ``user_arn`` (or a user name) belongs to."""
        name = _principal_name(user_arn)[1]
        return sorted(g.group_name for g in self._backend().groups.values() if g.get_member(name))

    def check_principals(self, principals: list[str]) -> None:
        """Every principal must be an existing QuickSight user or group ARN."""
        bad = [p for p in principals
               if not ((":user/" in p and self.user(p)) or (":group/" in p and self.group(p)))]
        if bad:
            raise errors.InvalidParameterValueException(f"Invalid principals given: {bad}")

    # -- data sources ------------------------------------------------------------------
    def data_source(self, arn: str) -> dict:
        source_id = arn.rsplit("/", 1)[-1]
        record = self._backend().data_sources.get(source_id)
        if record is None or not arn.startswith("arn:") or ":datasource/" not in arn:
            raise errors.InvalidParameterValueException(f"The data source {arn} does not exist.")
        out = record.to_json()
        if out.get("Status", "").endswith("FAILED"):
            raise errors.InvalidParameterValueException(
                f"The data source {source_id} is in status {out['Status']}: "
                f"{(getattr(record, 'error_info', None) or {}).get('Message', '')}")
        out["Credentials"] = self.credentials.get(source_id)
        return out

    # -- data sets: building the recipe -------------------------------------------
    def dataset(self, dataset_id: str) -> DataSet:
        with self._lock:
            ds = self._datasets.get(dataset_id)
        if ds is None:
            raise errors.ResourceNotFoundException(f"Data set {dataset_id} not found.",
                                                   extra={"ResourceType": "DATA_SET"})
        return ds

    def datasets(self) -> list[DataSet]:
        with self._lock:
            return sorted(self._datasets.values(), key=lambda d: d.created)

    def _build(self, dataset_id: str, p: dict, created: float | None = None,
               identity: str | None = None) -> DataSet:
        """Check a CreateDataSet/UpdateDataSet request and derive everything; writes nothing.
        ``identity``: the data set's owner, who reads the source (``athena_for``)."""
        mode = p.get("ImportMode")
        if mode not in ("SPICE", "DIRECT_QUERY"):
            raise errors.InvalidParameterValueException("ImportMode must be SPICE or DIRECT_QUERY.")
        physical_map = p.get("PhysicalTableMap") or {}
        if not physical_map:
            raise errors.InvalidParameterValueException("PhysicalTableMap needs at least one table.")
        logical_map = p.get("LogicalTableMap") or {}
        if not logical_map:
            if len(physical_map) != 1:
                raise errors.InvalidParameterValueException(
                    "With several physical tables, a LogicalTableMap must say how they combine.")
            logical = {"Alias": next(iter(physical_map)), "Source": {"PhysicalTableId": next(iter(physical_map))}}
        elif len(logical_map) == 1:
            logical = next(iter(logical_map.values()))
        else:
            raise not_emulated("quicksight", "CreateDataSet",
                               "joins of logical tables (JoinInstruction) are not run locally; "
                               "join in a CustomSql physical table instead")
        src = logical.get("Source") or {}
        if "PhysicalTableId" not in src:
            raise not_emulated("quicksight", "CreateDataSet",
                               "a logical table over another data set (Source.DataSetArn) or a join")
        if src["PhysicalTableId"] not in physical_map:
            raise errors.InvalidParameterValueException(
                f"The logical table's Source.PhysicalTableId {src['PhysicalTableId']} is not in the PhysicalTableMap.")
        table = physical_map[src["PhysicalTableId"]]
        kind = next((k for k in ("RelationalTable", "CustomSql", "S3Source") if k in table), None)
        if kind is None:
            raise errors.InvalidParameterValueException("A physical table needs RelationalTable, CustomSql or S3Source.")
        spec = table[kind]
        inputs = spec.get("InputColumns") or spec.get("Columns") or []
        if not inputs:
            raise errors.InvalidParameterValueException(f"The {kind} needs its input columns.")
        for col in inputs:
            if col.get("Type") not in INPUT_CASTS:
                raise errors.InvalidParameterValueException(
                    f"Column {col.get('Name')!r} has type {col.get('Type')!r}; valid: {', '.join(INPUT_CASTS)}.")
        names = [c["Name"] for c in inputs]
        if len(set(names)) != len(names):
            raise errors.InvalidParameterValueException("Duplicate input column names.")
        source = self.data_source(spec.get("DataSourceArn", ""))
        if kind == "S3Source" and source["Type"] != "S3" or kind != "S3Source" and source["Type"] == "S3":
            raise errors.InvalidParameterValueException(
                f"A {kind} cannot read a data source of type {source['Type']}.")
        # Does the table (and every input column) exist at the source? QuickSight checks this.
        try:
            sources.read(self.ctx, source, table, names, probe=True, athena=self.athena_for(source, identity))
        except sources.SourceError as exc:
            raise errors.InvalidParameterValueException(
                f"The physical table {src['PhysicalTableId']} can't be read at its data source: {exc.message}") from None

        sql, current = self._transforms(names, inputs, logical.get("DataTransforms") or [])
        columns = self._describe(sql, names)
        out_names = [n for n, _ in columns]

        # security
        for rule in p.get("ColumnLevelPermissionRules") or []:
            missing = [c for c in rule.get("ColumnNames", []) if c not in out_names]
            if missing:
                raise errors.InvalidParameterValueException(
                    f"ColumnLevelPermissionRules name the column {missing[0]!r}, which is not in the data set.")
            if not rule.get("Principals"):
                raise errors.InvalidParameterValueException("Each column-level rule needs at least one principal.")
            self.check_principals(rule["Principals"])
        rules_id = None
        rls = p.get("RowLevelPermissionDataSet")
        if rls:
            rules_arn = rls.get("Arn", "")
            rules_id = rules_arn.rsplit("/", 1)[-1]
            with self._lock:
                rules_ds = self._datasets.get(rules_id)
            if rules_ds is None or rules_ds.arn != rules_arn:
                raise errors.InvalidParameterValueException(
                    f"The row-level permission data set {rules_arn} does not exist.")
            if rls.get("PermissionPolicy") not in ("GRANT_ACCESS", "DENY_ACCESS"):
                raise errors.InvalidParameterValueException("PermissionPolicy must be GRANT_ACCESS or DENY_ACCESS.")
            security.check_rules_columns([n for n, _ in rules_ds.columns], out_names, rules_ds.name)
        if p.get("RowLevelPermissionTagConfiguration"):
            raise not_emulated("quicksight", "CreateDataSet", "RowLevelPermissionTagConfiguration (tag-based RLS)")

        now = self.ctx.clock.time()
        request = {k: copy.deepcopy(v) for k, v in p.items()
                   if k not in ("AwsAccountId", "DataSetId", "Permissions", "Tags")}
        return DataSet(id=dataset_id, arn=self.arn("dataset", dataset_id), name=p.get("Name") or dataset_id,
                       import_mode=mode, request=request, source=source, physical=table, input_names=names,
                       transform_sql=sql, columns=columns, created=created or now, updated=now,
                       rules_dataset=rules_id)

    def _transforms(self, names: list[str], inputs: list[dict], steps: list[dict]) -> tuple[str, list[str]]:
        """The SQL of the data-prep steps over ``raw`` (the input columns, as strings)."""
        typed, ok = [], []
        for col in inputs:
            cast = INPUT_CASTS[col["Type"]]
            q = quote(col["Name"])
            if cast is None:
                typed.append(q)
                continue
            expr = f"TRY_CAST({q} AS {cast})"
            typed.append(f"CAST({expr} AS BIGINT) AS {q}" if col["Type"] == "BOOLEAN" else f"{expr} AS {q}")
            ok.append(f"NOT ({q} IS NOT NULL AND {expr} IS NULL)")      # a value that does not parse: dropped
        sql = f"SELECT {', '.join(typed)} FROM raw" + (f" WHERE {' AND '.join(ok)}" if ok else "")
        current = list(names)
        for n, step in enumerate(steps, 1):
            if len(step) != 1:
                raise errors.InvalidParameterValueException(f"DataTransforms step {n} must hold one operation.")
            op, body = next(iter(step.items()))
            where = f"DataTransforms step {n} ({op})"
            if op == "ProjectOperation":
                keep = body.get("ProjectedColumns") or []
                self._known(keep, current, where)
                sql, current = f"SELECT {', '.join(map(quote, keep))} FROM ({sql}) t", list(keep)
            elif op == "FilterOperation":
                cond = to_sql(body.get("ConditionExpression", ""), current, f"the filter of {where}")
                sql = f"SELECT * FROM ({sql}) t WHERE {cond}"
            elif op == "CreateColumnsOperation":
                added = []
                for col in body.get("Columns") or []:
                    name = col.get("ColumnName", "")
                    if not name or name in current or name in [a for a, _ in added]:
                        raise errors.InvalidParameterValueException(
                            f"{where}: the calculated field name {name!r} is empty or already used.")
                    added.append((name, to_sql(col.get("Expression", ""), current, f"the calculated field {name!r}")))
                sql = f"SELECT *, {', '.join(f'{e} AS {quote(a)}' for a, e in added)} FROM ({sql}) t"
                current += [a for a, _ in added]
            elif op == "RenameColumnOperation":
                old, new = body.get("ColumnName"), body.get("NewColumnName")
                self._known([old], current, where)
                if not new or new in current:
                    raise errors.InvalidParameterValueException(f"{where}: the new name {new!r} is empty or already used.")
                sql = f"SELECT * RENAME ({quote(old)} AS {quote(new)}) FROM ({sql}) t"
                current = [new if c == old else c for c in current]
            elif op == "CastColumnTypeOperation":
                col, to = body.get("ColumnName"), body.get("NewColumnType")
                self._known([col], current, where)
                if to not in CAST_TYPES:
                    raise errors.InvalidParameterValueException(f"{where}: NewColumnType must be one of {', '.join(CAST_TYPES)}.")
                expr = (f"TRY_STRPTIME({quote(col)}, '{_strptime_format(body['Format'])}')"
                        if to == "DATETIME" and body.get("Format") else f"TRY_CAST({quote(col)} AS {CAST_TYPES[to]})")
                sql = f"SELECT * REPLACE ({expr} AS {quote(col)}) FROM ({sql}) t"
            elif op in ("TagColumnOperation", "UntagColumnOperation"):
                self._known([body.get("ColumnName")], current, where)      # recorded in the request only
            else:
                raise not_emulated("quicksight", "CreateDataSet", f"the data-prep operation {op}")
        return sql, current

    @staticmethod
    def _known(columns, current, where):
        for c in columns:
            if c not in current:
                raise errors.InvalidParameterValueException(
                    f"{where} names the column {c!r}, which is not in the data set at that step "
                    f"(columns: {', '.join(current)}).")

    def _describe(self, sql: str, names: list[str]) -> list[tuple[str, str]]:
        """The output columns of ``sql`` with QuickSight types (run over an empty ``raw``)."""
        import duckdb
        cur = self._cursor()
        try:
            cols = ", ".join(f"CAST(NULL AS VARCHAR) AS {quote(n)}" for n in names)
            cur.execute(f"CREATE TEMP VIEW raw AS SELECT {cols} WHERE FALSE")
            described = cur.execute(f"DESCRIBE {sql}").fetchall()
        except duckdb.Error as exc:
            raise errors.InvalidParameterValueException(f"The data set's transforms are not valid: {exc}") from None
        finally:
            cur.close()
        return [(row[0], qs_type(row[1])) for row in described]

    # -- data sets: operations ----------------------------------------------------------
    def create_dataset(self, dataset_id: str, p: dict) -> tuple[DataSet, Ingestion | None]:
        with self._lock:
            if dataset_id in self._datasets:
                raise errors.ResourceExistsException(f"Data set {dataset_id} already exists.",
                                                     extra={"ResourceType": "DATA_SET"})
        permissions = p.get("Permissions") or []
        self.check_principals([perm.get("Principal", "") for perm in permissions])
        ds = self._build(dataset_id, p, identity=owner(permissions))
        ds.permissions = copy.deepcopy(permissions)
        with self._lock:
            if dataset_id in self._datasets:
                raise errors.ResourceExistsException(f"Data set {dataset_id} already exists.",
                                                     extra={"ResourceType": "DATA_SET"})
            self._datasets[dataset_id] = ds
            self._ingestions[dataset_id] = {}
            self._queries.setdefault(dataset_id, 0)
        ing = self.start_ingestion(dataset_id, str(uuid.uuid4()), "INITIAL_INGESTION") if ds.import_mode == "SPICE" else None
        return ds, ing

    def update_dataset(self, dataset_id: str, p: dict) -> tuple[DataSet, Ingestion | None]:
        old = self.dataset(dataset_id)
        ds = self._build(dataset_id, p, created=old.created, identity=owner(old.permissions))
        ds.permissions = old.permissions
        with self._lock:
            ds.spice_table, ds.consumed = (old.spice_table, old.consumed) if ds.import_mode == "SPICE" else (None, 0)
            self._datasets[dataset_id] = ds
        if old.spice_table and ds.import_mode != "SPICE":
            self._drop(old.spice_table)
        ing = self.start_ingestion(dataset_id, str(uuid.uuid4()), "EDIT") if ds.import_mode == "SPICE" else None
        return ds, ing

    def delete_dataset(self, dataset_id: str) -> DataSet:
        ds = self.dataset(dataset_id)
        with self._lock:
            self._datasets.pop(dataset_id, None)
            for ing in self._ingestions.get(dataset_id, {}).values():
                ing.cancel = True
        if ds.spice_table:
            self._drop(ds.spice_table)
        return ds

    def update_permissions(self, dataset_id: str, grant: list[dict], revoke: list[dict]) -> DataSet:
        ds = self.dataset(dataset_id)
        self.check_principals([g.get("Principal", "") for g in grant + revoke])
        perms = {p["Principal"]: set(p.get("Actions", [])) for p in ds.permissions}
        for g in grant:
            perms.setdefault(g["Principal"], set()).update(g.get("Actions", []))
        for r in revoke:
            if r["Principal"] in perms:
                perms[r["Principal"]] -= set(r.get("Actions", []))
        with self._lock:
            ds.permissions = [{"Principal": k, "Actions": sorted(v)} for k, v in perms.items() if v]
        return ds

    # -- SPICE ----------------------------------------------------------------------------
    def spice_used(self, exclude: str | None = None) -> int:
        with self._lock:
            return sum(d.consumed for d in self._datasets.values() if d.id != exclude)

    def spice_capacity(self, capacity: int | None = None) -> int:
        with self._lock:
            if capacity is not None:
                if capacity < 0:
                    raise ValueError("capacity must be >= 0 bytes")
                self._capacity = int(capacity)
            return self._capacity

    def queries(self, dataset_id: str) -> int:
        with self._lock:
            return self._queries.get(dataset_id, 0)

    def _count(self, dataset_id: str) -> None:
        with self._lock:
            self._queries[dataset_id] = self._queries.get(dataset_id, 0) + 1

    def _drop(self, table: str) -> None:
        cur = self._cursor()
        try:
            cur.execute(f"DROP TABLE IF EXISTS {quote(table)}")
        finally:
            cur.close()

    def start_ingestion(self, dataset_id: str, ingestion_id: str, request_type: str = "FULL_REFRESH") -> Ingestion:
        ds = self.dataset(dataset_id)
        with self._lock:
            per = self._ingestions.setdefault(dataset_id, {})
            if ingestion_id in per:
                raise errors.ResourceExistsException(f"Ingestion {ingestion_id} already exists.",
                                                     extra={"ResourceType": "INGESTION"})
            ing = Ingestion(id=ingestion_id, arn=f"{ds.arn}/ingestion/{ingestion_id}", dataset_id=dataset_id,
                            created=self.ctx.clock.time(), request_type=request_type)
            per[ingestion_id] = ing
        if ds.import_mode != "SPICE":
            ing.status, ing.error = "FAILED", {"Type": "DATA_SET_NOT_SPICE",
                                               "Message": "The data set uses DIRECT_QUERY: there is nothing to ingest."}
            return ing
        ing.future = self._executor().submit(self._ingest, ing)
        with self._lock:
            if ing.status == "INITIALIZED":
                ing.status = "QUEUED"
        return ing

    def ingestion(self, dataset_id: str, ingestion_id: str) -> Ingestion:
        self.dataset(dataset_id)
        with self._lock:
            ing = self._ingestions.get(dataset_id, {}).get(ingestion_id)
        if ing is None:
            raise errors.ResourceNotFoundException(f"Ingestion {ingestion_id} not found.",
                                                   extra={"ResourceType": "INGESTION"})
        return ing

    def ingestions(self, dataset_id: str) -> list[Ingestion]:
        self.dataset(dataset_id)
        with self._lock:
            return sorted(self._ingestions.get(dataset_id, {}).values(), key=lambda i: i.created, reverse=True)

    def cancel_ingestion(self, dataset_id: str, ingestion_id: str) -> Ingestion:
        ing = self.ingestion(dataset_id, ingestion_id)
        with self._lock:
            if ing.status in FINAL:
                raise errors.ConflictException(f"Ingestion {ingestion_id} already ended ({ing.status}).")
            ing.cancel = True
            if ing.future is not None and ing.future.cancel():
                self._end(ing, "CANCELLED", "INGESTION_CANCELED", "Ingestion was canceled.")
        return ing

    def _end(self, ing: Ingestion, status: str, kind: str | None = None, message: str = "") -> None:
        ing.status = status
        if kind:
            ing.error = {"Type": kind, "Message": message}

    def _ingest(self, ing: Ingestion) -> None:
        """One ingestion, in a worker thread: read the source, build the new SPICE table, swap."""
        lock = self._dataset_locks.setdefault(ing.dataset_id, threading.Lock())
        with lock:                      # one ingestion of a data set at a time; the others stay QUEUED
            started = self.ctx.clock.monotonic()
            with self._lock:
                if ing.cancel:
                    self._end(ing, "CANCELLED", "INGESTION_CANCELED", "Ingestion was canceled.")
                    return
                ing.status = "RUNNING"
                ds = self._datasets.get(ing.dataset_id)
            table = None
            try:
                if ds is None:
                    raise sources.SourceError("DATA_SET_DELETED", "The data set was deleted.")
                raw = self._read_source(ds)
                table = f"spice_{next(self._names)}"
                cur = self._cursor()
                try:
                    cur.register("raw", raw)
                    cur.execute(f"CREATE TABLE {quote(table)} AS {ds.transform_sql}")
                    kept = cur.execute(f"SELECT count(*) FROM {quote(table)}").fetchone()[0]
                    size = self._logical_size(cur, table, ds.columns)
                finally:
                    cur.close()
                with self._lock:
                    current = self._datasets.get(ing.dataset_id)
                    if ing.cancel:
                        raise sources.SourceError("INGESTION_CANCELED", "Ingestion was canceled.")
                    if current is not ds:
                        raise sources.SourceError("DATA_SET_DELETED" if current is None else "INGESTION_SUPERSEDED",
                                                  "The data set changed while this ingestion ran.")
                    used = self.spice_used(exclude=ds.id)
                    if used + size > self._capacity:
                        raise sources.SourceError(
                            "ACCOUNT_CAPACITY_LIMIT_EXCEEDED",
                            f"Insufficient SPICE capacity: the data set needs {size} bytes, {self._capacity - used} "
                            f"of the account's {self._capacity} bytes are free.")
                    old, ds.spice_table, ds.consumed = ds.spice_table, table, size
                    table = None
                    ing.rows_ingested, ing.total_rows = kept, kept
                    ing.rows_dropped, ing.size = raw.num_rows - kept, size
                    ing.seconds = int(self.ctx.clock.monotonic() - started)
                    ing.status = "COMPLETED"
                if old:
                    self._drop(old)
            except sources.SourceError as exc:
                with self._lock:
                    ing.seconds = int(self.ctx.clock.monotonic() - started)
                    status = "CANCELLED" if exc.kind == "INGESTION_CANCELED" else "FAILED"
                    self._end(ing, status, exc.kind, exc.message)
            except Exception as exc:   # a bug or an engine error: the ingestion fails, the stack goes on
                with self._lock:
                    self._end(ing, "FAILED", "INTERNAL_SERVICE_ERROR", f"{type(exc).__name__}: {exc}")
            finally:
                if table:
                    self._drop(table)

    @staticmethod
    def _logical_size(cur, table: str, columns: list[tuple[str, str]]) -> int:
        """QuickSight's logical size: 8 bytes per number/date field, 8 + UTF-8 bytes per text field."""
        fixed = 8 * len(columns)
        text = [f"coalesce(strlen({quote(n)}), 0)" for n, t in columns if t == "STRING"]
        extra = f"sum({' + '.join(text)})" if text else "0"
        rows, more = cur.execute(f"SELECT count(*), coalesce({extra}, 0) FROM {quote(table)}").fetchone()
        return int(rows * fixed + more)

    def _read_source(self, ds: DataSet):
        """The physical table's rows, read at the source now (counted), as an Arrow table of strings."""
        import pyarrow as pa
        self._count(ds.id)
        names, rows = sources.read(self.ctx, ds.source, ds.physical, ds.input_names,
                                   athena=self.athena_for(ds.source, owner(ds.permissions)))
        if len(names) != len(ds.input_names):
            raise sources.SourceError("SQL_SCHEMA_MISMATCH_ERROR",
                                      f"The source returned {len(names)} columns, the data set expects "
                                      f"{len(ds.input_names)}.")
        cols = list(zip(*rows)) if rows else [[] for _ in ds.input_names]
        return pa.table({n: pa.array([None if v is None else str(v) for v in c], pa.string())
                         for n, c in zip(ds.input_names, cols)})

    # -- the interface for dashboards -------------------------------------------------------
    def columns(self, dataset_id: str, viewer: str | None = None) -> list[tuple[str, str]]:
        """The output columns ``viewer`` may see (all for ``viewer=None``), with QuickSight types."""
        ds = self.dataset(dataset_id)
        groups = [self.arn("group", f"default/{g}") for g in self.user_groups(viewer)] if viewer else []
        return security.visible(ds.columns, ds.request.get("ColumnLevelPermissionRules"), viewer, groups)

    def _rls(self, ds: DataSet, viewer: str | None) -> str:
        rls = ds.request.get("RowLevelPermissionDataSet")
        if viewer is None or not rls or rls.get("Status", "ENABLED") != "ENABLED":
            return "TRUE"
        user = self.user(viewer)
        if user is None:
            return "FALSE"
        names, rows = self.query(ds.rules_dataset, "SELECT * FROM dataset")
        groups = self.user_groups(viewer)
        return security.rls_predicate(names, rows, rls.get("PermissionPolicy", "GRANT_ACCESS"),
                                      user["UserName"], user["Arn"], groups,
                                      [self.arn("group", f"default/{g}") for g in groups])

    def _spice_table(self, ds: DataSet) -> str:
        """The data set's SPICE table; waits for a first ingestion still under way."""
        if ds.spice_table is None:
            with self._lock:
                pending = [i.future for i in self._ingestions.get(ds.id, {}).values()
                           if i.future is not None and i.status not in FINAL]
            for future in pending:
                wait_until(future=future, timeout=300)
        if ds.spice_table is None:
            raise errors.PreconditionNotMetException(
                f"Data set {ds.id} has no data in SPICE: its ingestion did not complete "
                f"({', '.join(i.status for i in self._ingestions.get(ds.id, {}).values()) or 'none'}).")
        return ds.spice_table

    def query(self, dataset_id: str, sql: str, viewer: str | None = None) -> tuple[list[str], list[tuple]]:
        """Run ``sql`` against the relation ``dataset`` as ``viewer`` sees it (CLS, RLS applied)."""
        import duckdb
        ds = self.dataset(dataset_id)
        visible = [n for n, _ in self.columns(dataset_id, viewer)]
        security.check_references(sql, [n for n, _ in ds.columns if n not in visible], viewer)
        predicate = self._rls(ds, viewer)
        cur = self._cursor()
        try:
            if ds.import_mode == "SPICE":
                data = quote(self._spice_table(ds))
            else:
                try:
                    cur.register("raw", self._read_source(ds))
                except sources.SourceError as exc:      # the source refused (Lake Formation, say)
                    raise errors.InvalidParameterValueException(
                        f"The query on data set {dataset_id} failed at its source: {exc.message}") from None
                data = f"({ds.transform_sql})"
            select = ", ".join(quote(n) for n in visible) or "NULL AS no_visible_column"
            view = f"dataset AS (SELECT {select} FROM {data} AS d WHERE {predicate})"
            body = sql.strip().rstrip(";")
            full = (re.sub(r"^\s*WITH\s", f"WITH {view}, ", body, count=1, flags=re.IGNORECASE)
                    if re.match(r"^\s*WITH\s", body, re.IGNORECASE) else f"WITH {view} {body}")
            result = cur.execute(full)
            names = [d[0] for d in result.description]
            rows = [tuple(_python(v) for v in row) for row in result.fetchall()]
        except duckdb.Error as exc:
            raise errors.InvalidParameterValueException(f"The query on data set {dataset_id} failed: {exc}") from None
        finally:
            cur.close()
        return names, rows


def _strptime_format(fmt: str) -> str:
    """QuickSight's (Joda-style) date format -> strptime's, for the common letters."""
    out = fmt
    for joda, c in (("yyyy", "%Y"), ("MM", "%m"), ("dd", "%d"), ("HH", "%H"), ("mm", "%M"), ("ss", "%S")):
        out = out.replace(joda, c)
    return out.replace("'", "")
