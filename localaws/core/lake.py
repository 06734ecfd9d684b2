"""Lake Formation's decision point: who may see which databases, tables, columns and rows.

On AWS, Lake Formation keeps permissions on Data Catalog resources and every
integrated engine (Athena, Glue, Redshift Spectrum, EMR) asks it, per query,
what the caller may read. Locally the same happens: the stack's
:class:`~localaws.core.context.Context` holds one :class:`LakePolicy`
(``ctx.lake``) with Lake Formation's whole state (data lake settings,
registered locations, grants, LF-Tags and their assignments, data cells
filters, hybrid-mode opt-ins), the Lake Formation API
(``localaws/lakeformation/``) reads and writes it, and every engine asks it::

    access = ctx.lake.table_access(principal_arn, "sales", "orders", ["id", "region", "total"])
    access.select, access.columns, access.row_filter      # True, ("id", "region"), "(region = 'EU')"

Catalog facts (which tables exist, their columns) come from the Glue catalog
through ``ctx.client("glue")``; they are looked up per decision and never
cached between calls, so a revoke takes effect on the next query.

**The default is IAM only.** A new account's data lake settings give the
group ``IAM_ALLOWED_PRINCIPALS`` ``ALL`` on every new database and table
(``CreateDatabaseDefaultPermissions`` / ``CreateTableDefaultPermissions``).
While a table has that grant Lake Formation does not restrict it and IAM
alone decides (locally: everything is allowed). Rather than recording a
grant when each table is created, the rule is evaluated lazily:

- a database or table *holds* the ``IAM_ALLOWED_PRINCIPALS`` grant unless it
  was revoked from it (RevokePermissions), or it was created while the
  default permissions did not contain it;
- "created while": PutDataLakeSettings, when it changes the defaults,
  first records the current answer for every database and table that exists,
  so only those created afterwards take the new default. A database's own
  ``CreateTableDefaultPermissions`` (Glue CreateDatabase, "Use only IAM
  access control for new tables in this database") wins over the account
  setting for its tables;
- a table is **governed** when it does not hold the grant (on itself, or
  through a ``TableWildcard`` grant on its database); then only Lake
  Formation grants decide. Dropping and re-creating a table of the same name
  keeps the earlier answer (AWS deletes the permissions with the table).

**Hybrid access mode**: a principal opted in (CreateLakeFormationOptIn) on a
table or its database is held to Lake Formation grants there even while
``IAM_ALLOWED_PRINCIPALS`` still holds; everyone else uses IAM.

**Administrators**: the account root (the stack's administrator, the
``testing`` key) and the data lake administrators (``DataLakeAdmins``) see
everything here. (On AWS a data lake administrator has implicit DESCRIBE on
everything and may grant itself anything, but reads data only after granting
itself SELECT; locally both are simply allowed.)

**What a grant gives** (principal = the ARN, the role of an assumed-role
session, the groups of a QuickSight user; see :meth:`LakePolicy.principal_arns`):

- ``SELECT`` (or ``ALL``) on a table or on ``TableWildcard``: every column, every row;
- ``SELECT`` on ``TableWithColumns``: the named columns (``ColumnNames``), or
  all but the excluded ones (``ColumnWildcard{ExcludedColumnNames}``), every row;
- ``SELECT`` on a data cells filter: its columns on its rows;
- ``SELECT`` on an LF-Tag policy (``ResourceType`` TABLE): every column whose
  tags match the expression; a column's tags are inherited database -> table
  -> column, a key assigned lower down overriding the value inherited;
- several grants on one table combine as a union of cells: a column is
  visible in a row when some grant covers both. ``columns`` is the union of
  the columns, ``row_filter`` the OR of the row filters (``None`` as soon as
  one grant covers all rows), and ``cells`` narrows the columns that only
  some of the filters include (a row outside them shows NULL there);
- any permission other than ``DATA_LOCATION_ACCESS`` on a table lets the
  principal see (DESCRIBE) it; any permission on a database or on something
  in it makes the database visible.

Sources: https://docs.aws.amazon.com/lake-formation/latest/dg/lf-permissions-reference.html,
https://docs.aws.amazon.com/lake-formation/latest/dg/data-filtering.html,
https://docs.aws.amazon.com/lake-formation/latest/dg/change-settings.html,
https://docs.aws.amazon.com/lake-formation/latest/dg/hybrid-access-mode.html,
https://docs.aws.amazon.com/lake-formation/latest/dg/TBAC-overview.html.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Iterable

from . import iam_policy
from .iceberg import is_current_column

IAM_ALLOWED_PRINCIPALS = "IAM_ALLOWED_PRINCIPALS"
PERMISSIONS = ("ALL", "SELECT", "ALTER", "DROP", "DELETE", "INSERT", "DESCRIBE", "CREATE_DATABASE",
               "CREATE_TABLE", "DATA_LOCATION_ACCESS", "CREATE_LF_TAG", "ASSOCIATE", "GRANT_WITH_LF_TAG_EXPRESSION",
               "CREATE_LF_TAG_EXPRESSION", "CREATE_CATALOG", "SUPER_USER")
SERVICE_LINKED_ROLE = "role/aws-service-role/lakeformation.amazonaws.com/AWSServiceRoleForLakeFormationDataAccess"


def _default_permissions() -> list[dict]:
    return [{"Principal": {"DataLakePrincipalIdentifier": IAM_ALLOWED_PRINCIPALS}, "Permissions": ["ALL"]}]


def default_settings() -> dict:
    """A new account's data lake settings (GetDataLakeSettings before any PutDataLakeSettings)."""
    return {"DataLakeAdmins": [], "ReadOnlyAdmins": [],
            "CreateDatabaseDefaultPermissions": _default_permissions(),
            "CreateTableDefaultPermissions": _default_permissions(),
            "Parameters": {"CROSS_ACCOUNT_VERSION": "1"},
            "TrustedResourceOwners": [], "AllowExternalDataFiltering": False,
            "AllowFullTableExternalDataAccess": False, "ExternalDataFilteringAllowList": [],
            "AuthorizedSessionTagValueList": []}


def _holds_iam_allowed(defaults: list[dict] | None) -> bool:
    return any(p.get("Principal", {}).get("DataLakePrincipalIdentifier") == IAM_ALLOWED_PRINCIPALS
               and "ALL" in p.get("Permissions", []) for p in defaults or [])


@dataclass(frozen=True)
class TableAccess:
    """What one principal may do with one table.

    ``columns``: the visible columns in table order (``None`` = all);
    ``row_filter``: one SQL boolean expression over the table's columns, the
    OR of the principal's row filters (``None`` = all rows); ``cells``: for a
    visible column that only some row filters include, the condition under
    which its value is shown (other rows show NULL), e.g. ``{"salary": "(dept = 'HR')"}``.
    """
    select: bool
    describe: bool
    columns: tuple[str, ...] | None
    row_filter: str | None
    reason: str
    cells: dict[str, str] = field(default_factory=dict)
    permissions: frozenset[str] = frozenset()        # table-level permissions held (ALL expanded)


@dataclass
class Grant:
    """One principal's permissions on one resource (``key`` identifies the resource)."""
    principal: str
    key: tuple
    resource: dict                 # the Resource as ListPermissions answers it
    permissions: set[str]
    grantable: set[str]
    columns: frozenset[str] | None = None      # TableWithColumns: ColumnNames (None: wildcard)
    excluded: frozenset[str] = frozenset()     # TableWithColumns: ColumnWildcard exclusions


def resource_key(resource: dict) -> tuple:
    """The identity of a (validated) Lake Formation ``Resource``, as grants are keyed:
    ``("catalog",)``, ``("database", db)``, ``("table", db, name or "*")``,
    ``("columns", db, table)``, ``("data_location", arn)``, ``("cells_filter", db, table, name)``,
    ``("lf_tag", key)``, ``("lf_tag_policy", type, ((key, (values...)), ...))``."""
    if "Catalog" in resource:
        return ("catalog",)
    if "Database" in resource:
        return ("database", resource["Database"]["Name"])
    if "Table" in resource:
        t = resource["Table"]
        return ("table", t["DatabaseName"], "*" if "TableWildcard" in t else t["Name"])
    if "TableWithColumns" in resource:
        t = resource["TableWithColumns"]
        return ("columns", t["DatabaseName"], t["Name"])
    if "DataLocation" in resource:
        return ("data_location", resource["DataLocation"]["ResourceArn"])
    if "DataCellsFilter" in resource:
        f = resource["DataCellsFilter"]
        return ("cells_filter", f["DatabaseName"], f["TableName"], f["Name"])
    if "LFTag" in resource:
        return ("lf_tag", resource["LFTag"]["TagKey"])
    if "LFTagPolicy" in resource:
        p = resource["LFTagPolicy"]
        expression = tuple(sorted((e["TagKey"], tuple(sorted(e["TagValues"]))) for e in p["Expression"]))
        return ("lf_tag_policy", p["ResourceType"], expression)
    raise ValueError(f"unknown resource {sorted(resource)}")


def s3_arn(uri: str) -> str:
    """``s3://bucket/key`` -> ``arn:aws:s3:::bucket/key`` (an ARN is returned unchanged)."""
    if uri.startswith("s3://") or uri.startswith("s3a://"):
        return "arn:aws:s3:::" + uri.split("://", 1)[1]
    return uri


class _Catalog:
    """Glue catalog lookups for one decision; nothing survives the call."""

    def __init__(self, ctx):
        self._ctx = ctx
        self._glue = None
        self._databases: dict[str, Any] = {}
        self._tables: dict[tuple[str, str], Any] = {}
        self._lists: dict[str, list[dict]] = {}

    @property
    def glue(self):
        if self._glue is None:
            self._glue = self._ctx.client("glue")
        return self._glue

    def database(self, name: str) -> dict | None:
        if name not in self._databases:
            try:
                self._databases[name] = self.glue.get_database(Name=name)["Database"]
            except self.glue.exceptions.EntityNotFoundException:
                self._databases[name] = None
        return self._databases[name]

    def table(self, database: str, name: str) -> dict | None:
        key = (database, name)
        if key not in self._tables:
            try:
                self._tables[key] = self.glue.get_table(DatabaseName=database, Name=name)["Table"]
            except self.glue.exceptions.EntityNotFoundException:
                self._tables[key] = None
        return self._tables[key]

    def tables(self, database: str) -> list[dict]:
        if database not in self._lists:
            found: list[dict] = []
            try:
                for page in self.glue.get_paginator("get_tables").paginate(DatabaseName=database):
                    found += page["TableList"]
            except self.glue.exceptions.EntityNotFoundException:
                pass
            self._lists[database] = found
            for table in found:
                self._tables.setdefault((database, table["Name"]), table)
        return self._lists[database]

    def databases(self) -> list[str]:
        names: list[str] = []
        for page in self.glue.get_paginator("get_databases").paginate():
            names += [d["Name"] for d in page["DatabaseList"]]
        return names

    def columns(self, database: str, name: str) -> list[str]:
        table = self.table(database, name)
        if table is None:
            return []
        return [c["Name"] for c in (table.get("StorageDescriptor", {}).get("Columns", [])
                                    + table.get("PartitionKeys", [])) if is_current_column(c)]


class LakePolicy:
    """Lake Formation's state and decisions for one stack (``ctx.lake``)."""

    def __init__(self, ctx):
        self.ctx = ctx
        self.lock = threading.RLock()
        self.settings: dict = default_settings()
        self.registrations: dict[str, dict] = {}          # ResourceArn -> RegisterResource record
        self.grants: dict[tuple[str, tuple], Grant] = {}  # (principal, resource key) -> Grant
        self.lf_tags: dict[str, list[str]] = {}           # TagKey -> TagValues
        self.tag_assignments: dict[tuple, dict[str, str]] = {}  # ("database", db) | ("table", db, t)
        #                                                   | ("column", db, t, c) -> {TagKey: value}
        self.cells_filters: dict[tuple[str, str, str], dict] = {}  # (db, table, name) -> DataCellsFilter
        self.opt_ins: dict[tuple[str, tuple], dict] = {}  # (principal, resource key) -> opt-in record
        self._iam_allowed: dict[tuple, bool] = {}         # ("database", db) | ("table", db, t|"*") -> held?
        self._acting: dict[str, str] = {}                 # a service's role-session ARN -> whom it acts for

    def catalog(self) -> _Catalog:
        """A fresh per-call view of the Glue catalog (as the administrator)."""
        return _Catalog(self.ctx)

    # ------------------------------------------------------------------ principals
    def act_for(self, session_arn: str, identity_arn: str) -> None:
        """Let a service's role session stand for another identity in Lake Formation's decisions.

        An integrated service that queries for one of its own users signs with its service
        role, and Lake Formation evaluates that user instead: QuickSight's service role runs
        Athena queries for a QuickSight user (``localaws/quicksight/engine.py``). The service
        assumes its role with one session per identity and records it here; every decision
        about ``session_arn`` (:meth:`principal_arns`) is then made for ``identity_arn``.
        """
        with self.lock:
            self._acting[session_arn] = identity_arn

    def principal_arns(self, arn: str) -> set[str]:
        """The identifiers a grant may name to cover ``arn``: the ARN itself, the role of an
        assumed-role session, and the groups of a QuickSight user. A session recorded with
        :meth:`act_for` is the identity it acts for (its user and groups, not its role)."""
        with self.lock:
            acting = self._acting.get(arn)
        if acting is not None:
            return self.principal_arns(acting)
        found = {arn}
        if ":assumed-role/" in arn:
            account = arn.split(":")[4]
            role = arn.split(":assumed-role/", 1)[1].split("/")[0]
            found.add(f"arn:aws:iam::{account}:role/{role}")
            try:
                found.add(self.ctx.client("iam").get_role(RoleName=role)["Role"]["Arn"])  # with its path
            except Exception:       # noqa: BLE001 - a deleted role: its session still matches by name
                pass
        if arn.startswith("arn:aws:quicksight:") and ":user/" in arn:
            account = arn.split(":")[4]
            namespace, _, user = arn.split(":user/", 1)[1].partition("/")
            try:
                qs = self.ctx.client("quicksight")
                groups = qs.list_user_groups(UserName=user, AwsAccountId=account, Namespace=namespace)
                found.update(g["Arn"] for g in groups.get("GroupList", []))
            except Exception:       # noqa: BLE001 - not a QuickSight user (any more): the ARN alone
                pass
        return found

    def is_admin(self, principal_arn: str | None) -> bool:
        """The account root (the stack's administrator) or a data lake administrator."""
        if principal_arn is None or principal_arn == self.ctx.principals.root.arn:
            return True
        with self.lock:
            admins = {a["DataLakePrincipalIdentifier"] for a in self.settings.get("DataLakeAdmins", [])}
        if principal_arn in admins:
            return True
        return bool(admins & self.principal_arns(principal_arn)) if ":assumed-role/" in principal_arn else False

    # ------------------------------------------------------------------ IAM_ALLOWED_PRINCIPALS
    def _default_holds(self, key: tuple, catalog: _Catalog) -> bool:
        """What a database/table not yet recorded holds: the default in force now."""
        if key[0] == "database":
            return _holds_iam_allowed(self.settings.get("CreateDatabaseDefaultPermissions"))
        database = catalog.database(key[1]) or {}
        if isinstance(database.get("CreateTableDefaultPermissions"), list):    # set on the database itself
            return _holds_iam_allowed(database["CreateTableDefaultPermissions"])
        return _holds_iam_allowed(self.settings.get("CreateTableDefaultPermissions"))

    def iam_allowed(self, database: str, table: str | None = None, catalog: _Catalog | None = None) -> bool:
        """Does ``IAM_ALLOWED_PRINCIPALS`` hold ALL on the database (``table`` None) or on the table?"""
        catalog = catalog or self.catalog()
        with self.lock:
            if table is None:
                key = ("database", database)
                return self._iam_allowed[key] if key in self._iam_allowed else self._default_holds(key, catalog)
            key = ("table", database, table)
            if key in self._iam_allowed:
                return self._iam_allowed[key]
            if self._iam_allowed.get(("table", database, "*")):
                return True
            return self._default_holds(key, catalog)

    def iam_allowed_wildcard(self, database: str) -> bool:
        """Was ``IAM_ALLOWED_PRINCIPALS`` granted ALL on the database's ``TableWildcard``?"""
        with self.lock:
            return bool(self._iam_allowed.get(("table", database, "*")))

    def set_iam_allowed(self, key: tuple, held: bool) -> None:
        """Record a grant (True) or revoke (False) of ALL to ``IAM_ALLOWED_PRINCIPALS`` on ``key``."""
        with self.lock:
            self._iam_allowed[key] = held

    def put_settings(self, settings: dict) -> None:
        """Replace the data lake settings; databases and tables that exist keep the
        ``IAM_ALLOWED_PRINCIPALS`` answer they had under the previous defaults."""
        catalog = self.catalog()
        with self.lock:
            old_db = _holds_iam_allowed(self.settings.get("CreateDatabaseDefaultPermissions"))
            old_table = _holds_iam_allowed(self.settings.get("CreateTableDefaultPermissions"))
            new_db = _holds_iam_allowed(settings.get("CreateDatabaseDefaultPermissions"))
            new_table = _holds_iam_allowed(settings.get("CreateTableDefaultPermissions"))
            if (old_db, old_table) != (new_db, new_table):
                for database in catalog.databases():
                    self._iam_allowed.setdefault(("database", database), self._default_holds(("database", database), catalog))
                    for table in catalog.tables(database):
                        key = ("table", database, table["Name"])
                        if key not in self._iam_allowed and not self._iam_allowed.get(("table", database, "*")):
                            self._iam_allowed[key] = self._default_holds(key, catalog)
            self.settings = settings

    def governed(self, database: str, table: str, catalog: _Catalog | None = None) -> bool:
        """True when Lake Formation grants decide access to the table (``IAM_ALLOWED_PRINCIPALS`` revoked)."""
        return not self.iam_allowed(database, table, catalog)

    def opted_in(self, principal_arn: str, database: str, table: str | None = None) -> bool:
        """Hybrid access mode: is the principal opted in to Lake Formation permissions here?"""
        arns = self.principal_arns(principal_arn)
        keys = {("database", database)}
        if table is not None:
            keys |= {("table", database, table), ("table", database, "*")}
        with self.lock:
            return any((arn, key) in self.opt_ins for arn in arns for key in keys)

    # ------------------------------------------------------------------ tags
    def tags_of(self, database: str, table: str | None = None, column: str | None = None) -> dict[str, str]:
        """The LF-Tags in force on a database, table or column (inherited, overridden lower down)."""
        with self.lock:
            tags = dict(self.tag_assignments.get(("database", database), {}))
            if table is not None:
                tags.update(self.tag_assignments.get(("table", database, table), {}))
                if column is not None:
                    tags.update(self.tag_assignments.get(("column", database, table, column), {}))
        return tags

    @staticmethod
    def expression_matches(expression: Iterable, tags: dict[str, str]) -> bool:
        """An LF-Tag expression ``((key, (values...)), ...)``: every key's value among its values."""
        return all(tags.get(k) in values or ("*" in values and k in tags) for k, values in expression)

    # ------------------------------------------------------------------ grants held
    def _held(self, arns: set[str]) -> list[Grant]:
        with self.lock:
            return [g for (p, _), g in self.grants.items() if p in arns]

    @staticmethod
    def expand_permissions(permissions: set[str]) -> set[str]:
        if "ALL" in permissions:
            return set(permissions) | {"SELECT", "ALTER", "DROP", "DELETE", "INSERT", "DESCRIBE"}
        return set(permissions)

    def table_access(self, principal_arn: str | None, database: str, table: str,
                     columns: list[str] | tuple[str, ...] | None = None) -> TableAccess:
        """What ``principal_arn`` may read of ``database.table`` (``columns``: the table's columns in
        order; looked up in the catalog when not given)."""
        full = dict(select=True, describe=True, columns=None, row_filter=None)
        if self.is_admin(principal_arn):
            return TableAccess(**full, reason="administrator", permissions=frozenset(self.expand_permissions({"ALL"})))
        catalog = self.catalog()
        if not self.governed(database, table, catalog) and not self.opted_in(principal_arn, database, table):
            return TableAccess(**full, reason="not governed: IAM_ALLOWED_PRINCIPALS holds on the table",
                               permissions=frozenset(self.expand_permissions({"ALL"})))
        names = list(columns) if columns else catalog.columns(database, table)
        pieces: list[tuple[frozenset[str], str | None]] = []      # (columns, row filter or None = all)
        permissions: set[str] = set()
        reasons: list[str] = []
        everything = frozenset(names)
        for grant in self._held(self.principal_arns(principal_arn)):
            kind = grant.key[0]
            perms = self.expand_permissions(grant.permissions)
            if kind == "table" and grant.key[1] == database and grant.key[2] in (table, "*"):
                permissions |= perms
                if "SELECT" in perms:
                    pieces.append((everything, None))
                    reasons.append("SELECT on the table")
            elif kind == "columns" and grant.key[1:] == (database, table):
                permissions |= perms - {"SELECT"}
                if "SELECT" in perms:
                    chosen = grant.columns if grant.columns is not None else everything - grant.excluded
                    pieces.append((frozenset(chosen) & everything, None))
                    reasons.append("SELECT on columns")
                    permissions.add("DESCRIBE")
            elif kind == "cells_filter" and grant.key[1:3] == (database, table):
                spec = self.cells_filters.get(grant.key[1:])
                if spec is None or "SELECT" not in perms:
                    continue
                if "ColumnNames" in spec:
                    chosen = frozenset(spec["ColumnNames"])
                else:
                    chosen = everything - frozenset(spec.get("ColumnWildcard", {}).get("ExcludedColumnNames", []))
                expression = spec.get("RowFilter", {}).get("FilterExpression")
                pieces.append((chosen & everything, expression or None))
                permissions.add("DESCRIBE")
                reasons.append(f"data cells filter {grant.key[3]}")
            elif kind == "lf_tag_policy" and grant.key[1] == "TABLE":
                expression = grant.key[2]
                table_match = self.expression_matches(expression, self.tags_of(database, table))
                matching = frozenset(c for c in names
                                     if self.expression_matches(expression, self.tags_of(database, table, c)))
                if table_match:
                    permissions |= perms - {"SELECT"}
                if (table_match or matching) and perms - {"SELECT"}:
                    permissions.add("DESCRIBE")
                if "SELECT" in perms and matching:
                    pieces.append((matching, None))
                    permissions.add("DESCRIBE")
                    reasons.append("LF-Tag policy")
        permissions.discard("DATA_LOCATION_ACCESS")
        if pieces:
            permissions.add("SELECT")
        describe = bool(permissions)
        if not pieces:
            return TableAccess(False, describe, (), "FALSE", "governed table: no SELECT granted",
                               permissions=frozenset(permissions))
        visible = frozenset().union(*(cols for cols, _ in pieces))
        ordered = tuple(c for c in names if c in visible)

        def either(filters: list[str | None]) -> str | None:
            if not filters or any(f is None for f in filters):
                return None
            unique = list(dict.fromkeys(filters))
            return " OR ".join(f"({f})" for f in unique)

        row_filter = either([f for _, f in pieces])
        cells = {}
        for column in ordered:
            condition = either([f for cols, f in pieces if column in cols])
            if condition != row_filter:
                cells[column] = condition if condition is not None else "TRUE"
        if row_filter is None:
            cells = {c: v for c, v in cells.items() if v != "TRUE"}
        return TableAccess(True, True, None if ordered == tuple(names) else ordered, row_filter,
                           "; ".join(dict.fromkeys(reasons)), cells, frozenset(permissions))

    def database_permissions(self, principal_arn: str | None, database: str) -> set[str]:
        """Permissions held on the database itself (grants and DATABASE LF-Tag policies)."""
        if self.is_admin(principal_arn):
            return self.expand_permissions({"ALL"}) | {"CREATE_TABLE"}
        if self.iam_allowed(database) and not self.opted_in(principal_arn, database):
            return self.expand_permissions({"ALL"}) | {"CREATE_TABLE"}
        found: set[str] = set()
        db_tags = self.tags_of(database)
        for grant in self._held(self.principal_arns(principal_arn)):
            if grant.key == ("database", database):
                found |= self.expand_permissions(grant.permissions)
            elif grant.key[0] == "lf_tag_policy" and grant.key[1] == "DATABASE" \
                    and self.expression_matches(grant.key[2], db_tags):
                found |= self.expand_permissions(grant.permissions)
        return found

    def database_visible(self, principal_arn: str | None, database: str) -> bool:
        """May the principal see the database: any permission on it or on something in it."""
        if self.is_admin(principal_arn) or self.database_permissions(principal_arn, database):
            return True
        arns = self.principal_arns(principal_arn)
        for grant in self._held(arns):
            kind = grant.key[0]
            if kind in ("table", "columns", "cells_filter") and grant.key[1] == database:
                return True
        catalog = self.catalog()
        tag_policies = [g for g in self._held(arns) if g.key[0] == "lf_tag_policy" and g.key[1] == "TABLE"]
        for table in catalog.tables(database):
            name = table["Name"]
            if not self.governed(database, name, catalog) and not self.opted_in(principal_arn, database, name):
                return True
            for grant in tag_policies:
                if self.expression_matches(grant.key[2], self.tags_of(database, name)):
                    return True
        return False

    # ------------------------------------------------------------------ locations
    def registered(self, s3_uri: str) -> dict | None:
        """The RegisterResource record whose location covers ``s3_uri`` (the longest), or None."""
        arn = s3_arn(s3_uri)
        best = None
        with self.lock:
            for resource_arn, record in self.registrations.items():
                prefix = resource_arn.rstrip("/")
                if arn == prefix or arn.startswith(prefix + "/"):
                    if best is None or len(prefix) > len(best["ResourceArn"].rstrip("/")):
                        best = record
        return dict(best) if best else None

    def location_access(self, principal_arn: str | None, s3_uri: str) -> bool:
        """May the principal read ``s3_uri`` directly from S3?

        Unregistered locations: yes (Lake Formation is not involved). Registered ones: the
        administrators and the registration's role (or Lake Formation's service-linked role)
        yes; anyone else only when its IAM policies allow ``s3:GetObject`` on the object
        (``DATA_LOCATION_ACCESS`` is for creating tables there, it reads nothing).
        """
        record = self.registered(s3_uri)
        if record is None or self.is_admin(principal_arn):
            return True
        arns = self.principal_arns(principal_arn)
        role = record.get("RoleArn") or ""
        if role in arns or any(a.endswith(SERVICE_LINKED_ROLE) for a in arns):
            return True
        return iam_policy.allowed(self.ctx.client("iam"), principal_arn, "s3:GetObject", s3_arn(s3_uri))

    def data_location_access(self, principal_arn: str | None, s3_uri: str) -> bool:
        """``DATA_LOCATION_ACCESS`` on a registered location covering ``s3_uri`` (to create tables there)."""
        record = self.registered(s3_uri)
        if record is None or self.is_admin(principal_arn):
            return True
        arns = self.principal_arns(principal_arn)
        for grant in self._held(arns):
            if grant.key[0] == "data_location" and "DATA_LOCATION_ACCESS" in self.expand_permissions(grant.permissions):
                prefix = grant.key[1].rstrip("/")
                target = s3_arn(s3_uri)
                if target == prefix or target.startswith(prefix + "/"):
                    return True
        return False


__all__ = ["IAM_ALLOWED_PRINCIPALS", "PERMISSIONS", "Grant", "LakePolicy", "TableAccess", "default_settings",
           "resource_key", "s3_arn"]
