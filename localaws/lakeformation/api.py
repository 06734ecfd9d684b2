"""AWS Lake Formation's API on the local stack: settings, locations, grants, filters, LF-Tags.

moto's lakeformation backend is not used: the state lives in ``ctx.lake``
(``localaws/core/lake.py``), which every engine (Athena, Glue, S3) asks when
it reads, so a grant or revoke made here changes what the next query returns.
This plane answers, in Lake Formation's rest-json shapes:

- **Settings**: GetDataLakeSettings, PutDataLakeSettings (DataLakeAdmins,
  CreateDatabaseDefaultPermissions, CreateTableDefaultPermissions; a new
  account's defaults give ``IAM_ALLOWED_PRINCIPALS`` ALL).
- **Locations**: RegisterResource (RoleArn or UseServiceLinkedRole, HybridAccessEnabled),
  UpdateResource, DeregisterResource, DescribeResource, ListResources (FilterConditionList).
- **Permissions**: GrantPermissions, RevokePermissions, BatchGrantPermissions,
  BatchRevokePermissions (a Failures entry per bad entry, the good ones recorded),
  ListPermissions (Principal, Resource, ResourceType filters), GetEffectivePermissionsForPath.
- **Data cells filters**: Create/Get/Update/Delete/ListDataCellsFilter.
- **LF-Tags**: CreateLFTag, GetLFTag, UpdateLFTag, DeleteLFTag, ListLFTags,
  AddLFTagsToResource, RemoveLFTagsFromResource, GetResourceLFTags,
  SearchTablesByLFTags, SearchDatabasesByLFTags.
- **Hybrid access mode**: CreateLakeFormationOptIn, DeleteLakeFormationOptIn,
  ListLakeFormationOptIns.
- **Credential vending**: GetTemporaryGlueTableCredentials (keys of the
  registration role's session, for an engine reading a table's S3 data).

Who may call: the account root (the stack's administrator) and the data lake
administrators may do everything; a principal may grant or revoke only what it
holds with the grant option (otherwise ``AccessDeniedException``, without
saying whether the resource exists); settings, registrations, LF-Tag
definitions and opt-ins are administrator-only. Every request is checked in
full before anything is written.

Shapes and error codes: https://docs.aws.amazon.com/lake-formation/latest/APIReference/API_Operations.html
"""
from __future__ import annotations

import copy

from localaws.core import AWSError, Plane, iam_policy, operation
from localaws.core.lake import IAM_ALLOWED_PRINCIPALS, SERVICE_LINKED_ROLE, Grant, default_settings, s3_arn

from . import engine, errors

MAX_BATCH = 20
PERMISSION_TYPES = ("COLUMN_PERMISSION", "CELL_FILTER_PERMISSION", "NESTED_PERMISSION", "NESTED_CELL_PERMISSION")


def _page(items: list, params: dict, key: str, default_max: int = 100) -> dict:
    """Slice ``items`` by NextToken/MaxResults (the token is an offset)."""
    try:
        start = int(params.get("NextToken") or 0)
    except ValueError:
        raise errors.InvalidInputException("Invalid NextToken.") from None
    size = params.get("MaxResults") or default_max
    if not isinstance(size, int) or size < 1:
        raise errors.InvalidInputException("MaxResults must be a positive integer.")
    answer = {key: items[start:start + size]}
    if start + size < len(items):
        answer["NextToken"] = str(start + size)
    return answer


class LakeFormationPlane(Plane):
    """Lake Formation's API over ``ctx.lake``."""

    name = "lakeformation"
    services = ("lakeformation",)

    @property
    def lake(self):
        return self.ctx.lake

    # -- callers -------------------------------------------------------------------
    @staticmethod
    def _caller(req) -> str:
        who = req.principal
        return who.arn if who is not None else None

    def _require_admin(self, req, what: str) -> str:
        caller = self._caller(req)
        if not self.lake.is_admin(caller):
            raise errors.AccessDeniedException(f"User: {caller} is not authorized to perform: {what}: "
                                               "only a data lake administrator may.")
        return caller

    def _holds(self, caller: str, key: tuple, permissions: set[str], grant_option: bool) -> bool:
        """Does ``caller`` hold every one of ``permissions`` on ``key`` (with the grant option)?"""
        if self.lake.is_admin(caller):
            return True
        covering = [key]
        if key[0] == "table":
            covering.append(("table", key[1], "*"))
        if key[0] == "columns":
            covering += [("table", key[1], key[2]), ("table", key[1], "*")]
        held: set[str] = set()
        for arn in self.lake.principal_arns(caller):
            for k in covering:
                grant = self.lake.grants.get((arn, k))
                if grant is not None:
                    held |= grant.grantable if grant_option else grant.permissions
        return "ALL" in held or permissions <= held

    # -- settings ------------------------------------------------------------------
    @operation("GetDataLakeSettings")
    def get_data_lake_settings(self, req):
        engine._catalog_id(self.lake, req.params.get("CatalogId"))
        with self.lake.lock:
            return {"DataLakeSettings": copy.deepcopy(self.lake.settings)}

    @operation("PutDataLakeSettings")
    def put_data_lake_settings(self, req):
        engine._catalog_id(self.lake, req.params.get("CatalogId"))
        self._require_admin(req, "lakeformation:PutDataLakeSettings")
        given = req.params.get("DataLakeSettings")
        if not isinstance(given, dict):
            raise errors.InvalidInputException("DataLakeSettings is required.")
        for field in ("DataLakeAdmins", "ReadOnlyAdmins"):
            for admin in given.get(field, []):
                identifier = engine.principal(admin)
                if not identifier.startswith("arn:aws:iam::") or ":saml-provider/" in identifier:
                    raise errors.InvalidInputException(f"Invalid {field} principal {identifier}: "
                                                       "an administrator must be an IAM user or role.")
        for field in ("CreateDatabaseDefaultPermissions", "CreateTableDefaultPermissions"):
            for entry in given.get(field, []):
                engine.principal(entry.get("Principal"))
                unknown = [p for p in entry.get("Permissions", []) if p not in engine.PERMISSIONS]
                if unknown:
                    raise errors.InvalidInputException(f"Unknown permission(s) in {field}: {', '.join(unknown)}.")
        settings = default_settings()
        for field in settings:
            if field in ("CreateDatabaseDefaultPermissions", "CreateTableDefaultPermissions"):
                settings[field] = copy.deepcopy(given.get(field, []))     # omitted = none, as on AWS
            elif field in given:
                settings[field] = copy.deepcopy(given[field])
        self.lake.put_settings(settings)
        return {}

    # -- registered locations ------------------------------------------------------
    def _resource_arn(self, params) -> str:
        arn = params.get("ResourceArn") or ""
        if not engine.S3_ARN.match(arn):
            raise errors.InvalidInputException(f"Invalid ResourceArn {arn!r}: expected arn:aws:s3:::bucket[/prefix].")
        return arn.rstrip("/") if arn.count("/") else arn

    @operation("RegisterResource")
    def register_resource(self, req):
        p = req.params
        arn = self._resource_arn(p)
        self._require_admin(req, "lakeformation:RegisterResource")
        role = p.get("RoleArn")
        if p.get("UseServiceLinkedRole"):
            if role:
                raise errors.InvalidInputException("Specify RoleArn or UseServiceLinkedRole, not both.")
            role = f"arn:aws:iam::{self.ctx.account_id}:{SERVICE_LINKED_ROLE}"
        elif not role:
            raise errors.InvalidInputException("RoleArn is required unless UseServiceLinkedRole is true.")
        elif not role.startswith(f"arn:aws:iam::{self.ctx.account_id}:role/"):
            raise errors.InvalidInputException(f"Invalid RoleArn {role!r}.")
        with self.lake.lock:
            if arn in self.lake.registrations:
                raise errors.AlreadyExistsException("Resource is already registered")
            self.lake.registrations[arn] = {
                "ResourceArn": arn, "RoleArn": role, "LastModified": self.ctx.clock.time(),
                "WithFederation": bool(p.get("WithFederation", False)),
                "HybridAccessEnabled": bool(p.get("HybridAccessEnabled", False)),
                "WithPrivilegedAccess": bool(p.get("WithPrivilegedAccess", False))}
        return {}

    @operation("UpdateResource")
    def update_resource(self, req):
        p = req.params
        arn = self._resource_arn(p)
        self._require_admin(req, "lakeformation:UpdateResource")
        if not p.get("RoleArn"):
            raise errors.InvalidInputException("RoleArn is required.")
        with self.lake.lock:
            record = self.lake.registrations.get(arn)
            if record is None:
                raise errors.EntityNotFoundException("Entity not found")
            record.update(RoleArn=p["RoleArn"], LastModified=self.ctx.clock.time())
            for flag in ("WithFederation", "HybridAccessEnabled"):
                if flag in p:
                    record[flag] = bool(p[flag])
        return {}

    @operation("DeregisterResource")
    def deregister_resource(self, req):
        arn = self._resource_arn(req.params)
        self._require_admin(req, "lakeformation:DeregisterResource")
        with self.lake.lock:
            if self.lake.registrations.pop(arn, None) is None:
                raise errors.EntityNotFoundException("Entity not found")
        return {}

    @operation("DescribeResource")
    def describe_resource(self, req):
        arn = self._resource_arn(req.params)
        with self.lake.lock:
            record = self.lake.registrations.get(arn)
            if record is None:
                raise errors.EntityNotFoundException("Entity not found")
            return {"ResourceInfo": dict(record)}

    @operation("ListResources")
    def list_resources(self, req):
        fields = {"RESOURCE_ARN": "ResourceArn", "ROLE_ARN": "RoleArn"}
        tests = {"EQ": lambda v, xs: v in xs, "NE": lambda v, xs: v not in xs, "IN": lambda v, xs: v in xs,
                 "CONTAINS": lambda v, xs: any(x in v for x in xs),
                 "NOT_CONTAINS": lambda v, xs: not any(x in v for x in xs),
                 "BEGINS_WITH": lambda v, xs: any(v.startswith(x) for x in xs)}
        conditions = req.params.get("FilterConditionList") or []
        for c in conditions:
            if c.get("Field") not in fields or c.get("ComparisonOperator") not in tests:
                raise errors.InvalidInputException(f"Unsupported filter condition {c!r}: Field RESOURCE_ARN or "
                                                   "ROLE_ARN with EQ, NE, IN, CONTAINS, NOT_CONTAINS or BEGINS_WITH.")
        with self.lake.lock:
            records = [dict(r) for _, r in sorted(self.lake.registrations.items())]
        chosen = [r for r in records
                  if all(tests[c["ComparisonOperator"]](r.get(fields[c["Field"]]) or "", c.get("StringValueList", []))
                         for c in conditions)]
        return _page(chosen, req.params, "ResourceInfoList")

    # -- grants ----------------------------------------------------------------------
    def _apply(self, caller: str, entry: dict, grant: bool) -> None:
        """Check one grant/revoke completely, then record it (nothing is written on error)."""
        who = engine.principal(entry.get("Principal"))
        resource = entry.get("Resource")
        engine.only_one(resource)
        if "Condition" in entry and entry["Condition"]:
            raise errors.InvalidInputException("Conditions on grants are not emulated by the local stack.")
        # Authorisation first, so a non-grantor learns nothing about what exists.
        requested = set(entry.get("Permissions") or []) | set(entry.get("PermissionsWithGrantOption") or [])
        try:
            key_guess = engine.resource_key(resource)
        except (KeyError, TypeError, ValueError):
            raise errors.InvalidInputException("Resource is malformed.") from None
        if not self._holds(caller, key_guess, requested, grant_option=True):
            raise errors.AccessDeniedException(engine.DENIED, status=400)
        key = engine.check_resource(self.lake, resource)
        permissions, grantable = engine.check_permissions(key, resource, entry.get("Permissions"),
                                                          entry.get("PermissionsWithGrantOption"))
        if who == IAM_ALLOWED_PRINCIPALS and key[0] in ("database", "table"):
            self._iam_allowed(key, permissions, grant)
            return
        with self.lake.lock:
            if grant:
                self._add(who, key, resource, permissions, grantable)
            else:
                self._remove(who, key, resource, permissions, grantable)

    def _iam_allowed(self, key: tuple, permissions: set[str], grant: bool) -> None:
        if key[0] == "database":
            held = self.lake.iam_allowed(key[1])
        elif key[2] == "*":
            held = self.lake.iam_allowed_wildcard(key[1])
        else:
            held = self.lake.iam_allowed(key[1], key[2])
        if grant:
            if "ALL" not in permissions:
                raise errors.InvalidInputException("IAM_ALLOWED_PRINCIPALS can only be granted ALL "
                                                   "(Super) on databases and tables.")
            self.lake.set_iam_allowed(key, True)
        else:
            if not held or "ALL" not in permissions:
                raise errors.InvalidInputException("No permissions revoked. Grantee has no permissions and no "
                                                   "grantable permissions on resource.")
            self.lake.set_iam_allowed(key, False)

    def _add(self, who, key, resource, permissions, grantable) -> None:
        stored = copy.deepcopy(resource)
        body = next(iter(stored.values()))
        if isinstance(body, dict):
            body.setdefault("CatalogId" if "DataCellsFilter" not in stored else "TableCatalogId", self.ctx.account_id)
        if "Catalog" in stored:
            stored["Catalog"] = {}
        existing = self.lake.grants.get((who, key))
        columns, excluded = None, frozenset()
        if key[0] == "columns":
            t = resource["TableWithColumns"]
            if "ColumnNames" in t:
                columns = frozenset(t["ColumnNames"])
                if existing is not None and existing.columns is not None:
                    columns |= existing.columns
                elif existing is not None:          # wildcard already: names add nothing
                    columns, excluded = None, existing.excluded - frozenset(t["ColumnNames"])
            else:
                excluded = frozenset(t["ColumnWildcard"].get("ExcludedColumnNames", []))
            stored["TableWithColumns"] = {k: v for k, v in stored["TableWithColumns"].items()
                                          if k not in ("ColumnNames", "ColumnWildcard")}
            if columns is not None:
                stored["TableWithColumns"]["ColumnNames"] = sorted(columns)
            else:
                stored["TableWithColumns"]["ColumnWildcard"] = (
                    {"ExcludedColumnNames": sorted(excluded)} if excluded else {})
        if existing is None:
            self.lake.grants[(who, key)] = Grant(who, key, stored, set(permissions), set(grantable),
                                                 columns, excluded)
        else:
            existing.permissions |= permissions
            existing.grantable |= grantable
            existing.resource, existing.columns, existing.excluded = stored, columns, excluded

    def _remove(self, who, key, resource, permissions, grantable) -> None:
        existing = self.lake.grants.get((who, key))
        nothing = errors.InvalidInputException("No permissions revoked. Grantee has no permissions and no "
                                               "grantable permissions on resource.")
        if existing is None:
            raise nothing
        if key[0] == "columns" and "ColumnNames" in resource["TableWithColumns"] and existing.columns is not None:
            names = frozenset(resource["TableWithColumns"]["ColumnNames"])
            if not names & existing.columns:
                raise nothing
            left = existing.columns - names
            if left:
                existing.columns = left
                existing.resource["TableWithColumns"]["ColumnNames"] = sorted(left)
                return
            del self.lake.grants[(who, key)]
            return
        removing = set(existing.permissions) if "ALL" in permissions else permissions
        if not (removing & existing.permissions) and not (grantable & existing.grantable):
            raise nothing
        existing.permissions -= removing
        existing.grantable -= removing | grantable
        if not existing.permissions:
            del self.lake.grants[(who, key)]

    @operation("GrantPermissions")
    def grant_permissions(self, req):
        engine._catalog_id(self.lake, req.params.get("CatalogId"))
        self._apply(self._caller(req), req.params, grant=True)
        return {}

    @operation("RevokePermissions")
    def revoke_permissions(self, req):
        engine._catalog_id(self.lake, req.params.get("CatalogId"))
        self._apply(self._caller(req), req.params, grant=False)
        return {}

    def _batch(self, req, grant: bool) -> dict:
        engine._catalog_id(self.lake, req.params.get("CatalogId"))
        entries = req.params.get("Entries") or []
        if not entries or len(entries) > MAX_BATCH:
            raise errors.InvalidInputException(f"Entries must hold 1 to {MAX_BATCH} entries.")
        ids = [e.get("Id") for e in entries]
        if len(set(ids)) != len(ids):
            raise errors.InvalidInputException("Entry Ids must be unique within a batch.")
        caller = self._caller(req)
        failures = []
        for entry in entries:
            try:
                self._apply(caller, entry, grant)
            except AWSError as exc:
                failures.append({"RequestEntry": entry,
                                 "Error": {"ErrorCode": exc.code, "ErrorMessage": exc.message}})
        return {"Failures": failures}

    @operation("BatchGrantPermissions")
    def batch_grant_permissions(self, req):
        return self._batch(req, grant=True)

    @operation("BatchRevokePermissions")
    def batch_revoke_permissions(self, req):
        return self._batch(req, grant=False)

    # -- listing -----------------------------------------------------------------------
    RESOURCE_TYPES = {"CATALOG": ("catalog",), "DATABASE": ("database",), "TABLE": ("table", "columns"),
                      "DATA_LOCATION": ("data_location",), "LF_TAG": ("lf_tag",),
                      "LF_TAG_POLICY": ("lf_tag_policy",), "LF_TAG_POLICY_DATABASE": ("lf_tag_policy",),
                      "LF_TAG_POLICY_TABLE": ("lf_tag_policy",), "LF_NAMED_TAG_EXPRESSION": ()}

    def _entries(self, caller: str) -> list[tuple[tuple, dict]]:
        """Every explicit grant the caller may see, as (key, ListPermissions entry)."""
        admin = self.lake.is_admin(caller)
        mine = self.lake.principal_arns(caller) if not admin else set()
        with self.lake.lock:
            grants = [g for g in self.lake.grants.values() if admin or g.principal in mine]
            return [(g.key, engine.permission_entry(self.lake, g.principal, copy.deepcopy(g.resource),
                                                    g.permissions, g.grantable)) for g in grants]

    @operation("ListPermissions")
    def list_permissions(self, req):
        p = req.params
        engine._catalog_id(self.lake, p.get("CatalogId"))
        caller = self._caller(req)
        if p.get("Principal") and not p.get("Resource"):
            raise errors.InvalidInputException("Resource is mandatory if Principal is set in the input.")
        resource_type = p.get("ResourceType")
        if resource_type is not None and resource_type not in self.RESOURCE_TYPES:
            raise errors.InvalidInputException(f"Invalid ResourceType {resource_type}.")
        who = engine.principal(p["Principal"]) if p.get("Principal") else None
        entries = self._entries(caller)
        implicit_scope = None
        if p.get("Resource"):
            key = engine.check_resource(self.lake, p["Resource"])
            wanted = {key}
            if key[0] == "table" and key[2] != "*":
                wanted |= {("columns", key[1], key[2]), ("table", key[1], "*")}
                if p.get("IncludeRelated") == "TRUE":
                    wanted |= {k for k, _ in entries if k[0] == "cells_filter" and k[1:3] == key[1:]}
            entries = [(k, e) for k, e in entries if k in wanted]
            if key[0] in ("database", "table"):
                implicit_scope = (key[1], "database" if key[0] == "database" else "table",
                                  None if key[0] == "database" or key[2] == "*" else key[2])
        elif resource_type is not None:
            kinds = self.RESOURCE_TYPES[resource_type]
            entries = [(k, e) for k, e in entries if k[0] in kinds
                       and (resource_type not in ("LF_TAG_POLICY_DATABASE", "LF_TAG_POLICY_TABLE")
                            or k[1] == resource_type.rsplit("_", 1)[1])]
            if resource_type in ("DATABASE", "TABLE"):
                implicit_scope = (None, resource_type.lower(), None)
        else:
            implicit_scope = (None, "both", None)
        found = [e for _, e in entries]
        if implicit_scope is not None and self.lake.is_admin(caller):
            database, kind, table = implicit_scope
            kinds = ("database", "table") if kind == "both" else (kind,)
            implicit = engine.implicit_entries(self.lake, [database] if database else None, kinds)
            if table is not None:
                implicit = [e for e in implicit if e["Resource"].get("Table", {}).get("Name") == table]
            found = implicit + found
        if who is not None:
            found = [e for e in found if e["Principal"]["DataLakePrincipalIdentifier"] == who]
        return _page(found, p, "PrincipalResourcePermissions")

    @operation("GetEffectivePermissionsForPath")
    def get_effective_permissions_for_path(self, req):
        p = req.params
        engine._catalog_id(self.lake, p.get("CatalogId"))
        arn = p.get("ResourceArn") or ""
        if not engine.S3_ARN.match(arn):
            raise errors.InvalidInputException(f"Invalid ResourceArn {arn!r}.")
        prefix = arn.rstrip("/")

        def under(location: str | None) -> bool:
            target = s3_arn(location or "").rstrip("/")
            return bool(location) and (target == prefix or target.startswith(prefix + "/"))

        catalog = self.lake.catalog()
        keys: set[tuple] = set()
        for database in catalog.databases():
            if under((catalog.database(database) or {}).get("LocationUri")):
                keys.add(("database", database))
            for table in catalog.tables(database):
                if under(table.get("StorageDescriptor", {}).get("Location")):
                    keys |= {("table", database, table["Name"]), ("columns", database, table["Name"])}
        caller = self._caller(req)
        found = [e for k, e in self._entries(caller)
                 if k in keys or (k[0] == "data_location" and (under(k[1]) or prefix.startswith(k[1].rstrip("/"))))]
        if self.lake.is_admin(caller):
            for key in sorted(k for k in keys if k[0] in ("database", "table")):
                if key[0] == "database" and self.lake.iam_allowed(key[1], None, catalog):
                    found += engine.implicit_entries(self.lake, [key[1]], ("database",))
                elif key[0] == "table" and self.lake.iam_allowed(key[1], key[2], catalog):
                    found += [e for e in engine.implicit_entries(self.lake, [key[1]], ("table",))
                              if e["Resource"]["Table"]["Name"] == key[2]]
        return _page(found, p, "Permissions")

    # -- data cells filters --------------------------------------------------------------
    def _filter_data(self, req, creating: bool) -> tuple[tuple, dict]:
        data = req.params.get("TableData")
        if not isinstance(data, dict):
            raise errors.InvalidInputException("TableData is required.")
        for field in ("TableCatalogId", "DatabaseName", "TableName", "Name"):
            if not data.get(field):
                raise errors.InvalidInputException(f"TableData.{field} is required.")
        engine._catalog_id(self.lake, data["TableCatalogId"])
        key = (data["DatabaseName"], data["TableName"], data["Name"])
        caller = self._caller(req)
        if not self._holds(caller, ("table", key[0], key[1]), {"SELECT"}, grant_option=True):
            raise errors.AccessDeniedException(engine.DENIED)
        catalog = self.lake.catalog()
        engine.check_table(catalog, key[0], key[1])
        if ("ColumnNames" in data) == ("ColumnWildcard" in data):
            raise errors.InvalidInputException("Exactly one of ColumnNames or ColumnWildcard must be specified.")
        columns = catalog.columns(key[0], key[1])
        if "ColumnNames" in data:
            if not data["ColumnNames"]:
                raise errors.InvalidInputException("ColumnNames must not be empty.")
            engine.check_columns(catalog, key[0], key[1], data["ColumnNames"])
        else:
            engine.check_columns(catalog, key[0], key[1], data["ColumnWildcard"].get("ExcludedColumnNames", []))
        row = data.get("RowFilter")
        if not isinstance(row, dict) or ("FilterExpression" in row) == ("AllRowsWildcard" in row):
            raise errors.InvalidInputException("RowFilter needs exactly one of FilterExpression or AllRowsWildcard.")
        if "FilterExpression" in row:
            if not row["FilterExpression"].strip():
                raise errors.InvalidInputException("FilterExpression must not be empty.")
            engine.check_filter_expression(row["FilterExpression"], columns)
        exists = key in self.lake.cells_filters
        if creating and exists:
            raise errors.AlreadyExistsException(f"Data cells filter {key[2]} already exists on {key[0]}.{key[1]}.")
        if not creating and not exists:
            raise errors.EntityNotFoundException(f"Data cells filter {key[2]} not found on {key[0]}.{key[1]}.")
        record = {k: copy.deepcopy(data[k]) for k in ("TableCatalogId", "DatabaseName", "TableName", "Name",
                                                        "RowFilter", "ColumnNames", "ColumnWildcard") if k in data}
        return key, record

    @operation("CreateDataCellsFilter")
    def create_data_cells_filter(self, req):
        key, record = self._filter_data(req, creating=True)
        with self.lake.lock:
            self.lake.cells_filters[key] = {**record, "VersionId": "1"}
        return {}

    @operation("UpdateDataCellsFilter")
    def update_data_cells_filter(self, req):
        key, record = self._filter_data(req, creating=False)
        with self.lake.lock:
            version = int(self.lake.cells_filters[key].get("VersionId", "1")) + 1
            self.lake.cells_filters[key] = {**record, "VersionId": str(version)}
        return {}

    def _filter_key(self, params) -> tuple:
        key = (params.get("DatabaseName"), params.get("TableName"), params.get("Name"))
        if not all(key):
            raise errors.InvalidInputException("DatabaseName, TableName and Name are required.")
        engine._catalog_id(self.lake, params.get("TableCatalogId"))
        if key not in self.lake.cells_filters:
            raise errors.EntityNotFoundException(f"Data cells filter {key[2]} not found on {key[0]}.{key[1]}.")
        return key

    @operation("GetDataCellsFilter")
    def get_data_cells_filter(self, req):
        key = self._filter_key(req.params)
        with self.lake.lock:
            return {"DataCellsFilter": copy.deepcopy(self.lake.cells_filters[key])}

    @operation("DeleteDataCellsFilter")
    def delete_data_cells_filter(self, req):
        key = self._filter_key(req.params)
        if not self._holds(self._caller(req), ("cells_filter", *key), {"DROP"}, grant_option=False):
            raise errors.AccessDeniedException(engine.DENIED)
        with self.lake.lock:
            del self.lake.cells_filters[key]
            for grant_key in [k for k in self.lake.grants if k[1] == ("cells_filter", *key)]:
                del self.lake.grants[grant_key]
        return {}

    @operation("ListDataCellsFilter")
    def list_data_cells_filter(self, req):
        table = req.params.get("Table")
        with self.lake.lock:
            found = [copy.deepcopy(f) for k, f in sorted(self.lake.cells_filters.items())
                     if table is None or (k[0] == table.get("DatabaseName")
                                          and ("TableWildcard" in table or k[1] == table.get("Name")))]
        if table is not None and not table.get("DatabaseName"):
            raise errors.InvalidInputException("Table.DatabaseName is required.")
        return _page(found, req.params, "DataCellsFilters")

    # -- LF-Tags -----------------------------------------------------------------------
    def _tag_key(self, params) -> str:
        engine._catalog_id(self.lake, params.get("CatalogId"))
        key = params.get("TagKey")
        if not key:
            raise errors.InvalidInputException("TagKey is required.")
        return key

    def _may_create_tags(self, req) -> None:
        caller = self._caller(req)
        if not self._holds(caller, ("catalog",), {"CREATE_LF_TAG"}, grant_option=False):
            raise errors.AccessDeniedException(f"User: {caller} is not authorized to create LF-Tags: "
                                               "a data lake administrator or CREATE_LF_TAG on the catalog is needed.")

    @staticmethod
    def _per_call(values) -> None:
        if len(values or []) > engine.MAX_TAG_VALUES_PER_CALL:
            raise errors.InvalidInputException(f"At most {engine.MAX_TAG_VALUES_PER_CALL} tag values per call; "
                                               "add more with UpdateLFTag.")

    @staticmethod
    def _check_values(values) -> list[str]:
        if not values:
            raise errors.InvalidInputException("TagValues must not be empty.")
        if len(values) > engine.MAX_TAG_VALUES:
            raise errors.ResourceNumberLimitExceededException(
                f"An LF-Tag can have at most {engine.MAX_TAG_VALUES} values.")
        if any(not isinstance(v, str) or not v for v in values):
            raise errors.InvalidInputException("Tag values must be non-empty strings.")
        return list(dict.fromkeys(values))

    @operation("CreateLFTag")
    def create_lf_tag(self, req):
        key = self._tag_key(req.params)
        self._may_create_tags(req)
        self._per_call(req.params.get("TagValues"))
        values = self._check_values(req.params.get("TagValues"))
        with self.lake.lock:
            if key in self.lake.lf_tags:
                raise errors.AlreadyExistsException(f"Tag key {key} already exists.")
            self.lake.lf_tags[key] = values
        return {}

    @operation("GetLFTag")
    def get_lf_tag(self, req):
        key = self._tag_key(req.params)
        with self.lake.lock:
            if key not in self.lake.lf_tags:
                raise errors.EntityNotFoundException(f"Tag key {key} does not exist.")
            return {"CatalogId": self.ctx.account_id, "TagKey": key, "TagValues": list(self.lake.lf_tags[key])}

    @operation("UpdateLFTag")
    def update_lf_tag(self, req):
        key = self._tag_key(req.params)
        self._may_create_tags(req)
        add = req.params.get("TagValuesToAdd") or []
        remove = req.params.get("TagValuesToDelete") or []
        if not add and not remove:
            raise errors.InvalidInputException("TagValuesToAdd or TagValuesToDelete is required.")
        self._per_call(add)
        self._per_call(remove)
        with self.lake.lock:
            if key not in self.lake.lf_tags:
                raise errors.EntityNotFoundException(f"Tag key {key} does not exist.")
            current = self.lake.lf_tags[key]
            missing = [v for v in remove if v not in current]
            if missing:
                raise errors.InvalidInputException(f"Tag value(s) {', '.join(missing)} do not exist for {key}.")
            values = [v for v in current if v not in remove] + [v for v in add if v not in current]
            values = self._check_values(values)
            self.lake.lf_tags[key] = values
        return {}

    @operation("DeleteLFTag")
    def delete_lf_tag(self, req):
        key = self._tag_key(req.params)
        self._may_create_tags(req)
        with self.lake.lock:
            if self.lake.lf_tags.pop(key, None) is None:
                raise errors.EntityNotFoundException(f"Tag key {key} does not exist.")
            for tags in self.lake.tag_assignments.values():
                tags.pop(key, None)
            for grant_key in [k for k in self.lake.grants
                              if k[1] == ("lf_tag", key)
                              or (k[1][0] == "lf_tag_policy" and any(t == key for t, _ in k[1][2]))]:
                del self.lake.grants[grant_key]
        return {}

    @operation("ListLFTags")
    def list_lf_tags(self, req):
        engine._catalog_id(self.lake, req.params.get("CatalogId"))
        share = req.params.get("ResourceShareType", "ALL")
        if share not in ("ALL", "FOREIGN"):
            raise errors.InvalidInputException("ResourceShareType must be ALL or FOREIGN.")
        with self.lake.lock:
            tags = [] if share == "FOREIGN" else [
                {"CatalogId": self.ctx.account_id, "TagKey": k, "TagValues": list(v)}
                for k, v in sorted(self.lake.lf_tags.items())]
        return _page(tags, req.params, "LFTags")

    def _tag_target(self, resource) -> list[tuple]:
        """The assignment keys of a Database / Table / TableWithColumns resource (checked)."""
        kind = engine.only_one(resource, ("Database", "Table", "TableWithColumns"))
        engine.check_resource(self.lake, resource)
        body = resource[kind]
        if kind == "Database":
            return [("database", body["Name"])]
        if kind == "Table":
            if "TableWildcard" in body:
                raise errors.InvalidInputException("LF-Tags are assigned to one table at a time, not TableWildcard.")
            return [("table", body["DatabaseName"], body["Name"])]
        if "ColumnWildcard" in body:
            raise errors.InvalidInputException("LF-Tags are assigned to named columns (ColumnNames).")
        return [("column", body["DatabaseName"], body["Name"], c) for c in body["ColumnNames"]]

    def _tag_change(self, req, adding: bool) -> dict:
        engine._catalog_id(self.lake, req.params.get("CatalogId"))
        pairs = req.params.get("LFTags") or []
        if not pairs:
            raise errors.InvalidInputException("LFTags must not be empty.")
        targets = self._tag_target(req.params.get("Resource"))
        caller = self._caller(req)
        failures, changes = [], []
        for pair in pairs:
            key, values = pair.get("TagKey"), pair.get("TagValues") or []
            problem = None
            if key not in self.lake.lf_tags:
                problem = ("EntityNotFoundException", f"Tag key {key} does not exist.")
            elif len(values) != 1:
                problem = ("InvalidInputException", "A resource takes exactly one value of an LF-Tag.")
            elif values[0] not in self.lake.lf_tags[key]:
                problem = ("InvalidInputException", f"Tag value {values[0]} does not exist for tag key {key}.")
            elif not self._holds(caller, ("lf_tag", key), {"ASSOCIATE"}, grant_option=False):
                problem = ("AccessDeniedException", f"Insufficient Lake Formation permission(s): ASSOCIATE on {key}.")
            elif not adding and not any(self.lake.tag_assignments.get(t, {}).get(key) == values[0]
                                        for t in targets):
                problem = ("InvalidInputException", f"Tag {key}={values[0]} is not assigned to the resource.")
            if problem:
                failures.append({"LFTag": pair, "Error": {"ErrorCode": problem[0], "ErrorMessage": problem[1]}})
            else:
                changes.append((key, values[0]))
        with self.lake.lock:
            for key, value in changes:
                for target in targets:
                    tags = self.lake.tag_assignments.setdefault(target, {})
                    if adding:
                        tags[key] = value
                    elif tags.get(key) == value:
                        del tags[key]
        return {"Failures": failures}

    @operation("AddLFTagsToResource")
    def add_lf_tags_to_resource(self, req):
        return self._tag_change(req, adding=True)

    @operation("RemoveLFTagsFromResource")
    def remove_lf_tags_from_resource(self, req):
        return self._tag_change(req, adding=False)

    def _tags(self, database: str, table: str | None = None, column: str | None = None, assigned=False):
        if assigned:
            key = (("database", database) if table is None else ("table", database, table) if column is None
                   else ("column", database, table, column))
            return engine.tag_pairs(self.lake, self.lake.tag_assignments.get(key, {}))
        if column is not None:
            return engine.tag_pairs(self.lake, self.lake.tags_of(database, table, column))
        return engine.tag_pairs(self.lake, self.lake.tags_of(database, table))

    def _tagged_table(self, database: str, table: str, columns: list[str], assigned: bool = False) -> dict:
        return {"Table": {"CatalogId": self.ctx.account_id, "DatabaseName": database, "Name": table},
                "LFTagOnDatabase": self._tags(database, assigned=assigned),
                "LFTagsOnTable": self._tags(database, table, assigned=assigned),
                "LFTagsOnColumns": [{"Name": c, "LFTags": self._tags(database, table, c, assigned)}
                                    for c in columns]}

    @operation("GetResourceLFTags")
    def get_resource_lf_tags(self, req):
        engine._catalog_id(self.lake, req.params.get("CatalogId"))
        resource = req.params.get("Resource")
        kind = engine.only_one(resource, ("Database", "Table", "TableWithColumns"))
        engine.check_resource(self.lake, resource)
        assigned = bool(req.params.get("ShowAssignedLFTags"))
        body = resource[kind]
        if kind == "Database":
            return {"LFTagOnDatabase": self._tags(body["Name"], assigned=assigned)}
        if kind == "Table" and "TableWildcard" in body:
            raise errors.InvalidInputException("GetResourceLFTags takes one table, not TableWildcard.")
        columns = body.get("ColumnNames") or self.lake.catalog().columns(body["DatabaseName"], body["Name"])
        answer = self._tagged_table(body["DatabaseName"], body["Name"], columns, assigned)
        answer.pop("Table")
        return answer

    def _expression(self, params) -> tuple:
        engine._catalog_id(self.lake, params.get("CatalogId"))
        expression = params.get("Expression") or []
        if not expression:
            raise errors.InvalidInputException("Expression must not be empty.")
        for term in expression:
            engine.tag_values(self.lake, term.get("TagKey"), term.get("TagValues"))
        return tuple((t["TagKey"], tuple(t["TagValues"])) for t in expression)

    @operation("SearchTablesByLFTags")
    def search_tables_by_lf_tags(self, req):
        expression = self._expression(req.params)
        caller = self._caller(req)
        catalog = self.lake.catalog()
        found = []
        for database in catalog.databases():
            for table in catalog.tables(database):
                name = table["Name"]
                columns = catalog.columns(database, name)
                table_match = self.lake.expression_matches(expression, self.lake.tags_of(database, name))
                matching = [c for c in columns
                            if self.lake.expression_matches(expression, self.lake.tags_of(database, name, c))]
                if not (table_match or matching):
                    continue
                if not self.lake.table_access(caller, database, name, columns).describe:
                    continue
                found.append(self._tagged_table(database, name, matching if not table_match else columns))
        return _page(found, req.params, "TableList")

    @operation("SearchDatabasesByLFTags")
    def search_databases_by_lf_tags(self, req):
        expression = self._expression(req.params)
        caller = self._caller(req)
        found = []
        for database in self.lake.catalog().databases():
            if self.lake.expression_matches(expression, self.lake.tags_of(database)) \
                    and self.lake.database_visible(caller, database):
                found.append({"Database": {"CatalogId": self.ctx.account_id, "Name": database},
                              "LFTags": self._tags(database)})
        return _page(found, req.params, "DatabaseList")

    # -- hybrid access mode -------------------------------------------------------------
    def _opt_in(self, req) -> tuple[str, tuple, dict]:
        who = engine.principal(req.params.get("Principal"))
        resource = req.params.get("Resource")
        engine.only_one(resource, ("Database", "Table"))
        self._require_admin(req, "lakeformation:CreateLakeFormationOptIn")
        key = engine.check_resource(self.lake, resource)
        return who, key, resource

    @operation("CreateLakeFormationOptIn")
    def create_lake_formation_opt_in(self, req):
        who, key, resource = self._opt_in(req)
        with self.lake.lock:
            self.lake.opt_ins[(who, key)] = {"Resource": copy.deepcopy(resource),
                                              "Principal": {"DataLakePrincipalIdentifier": who},
                                              "LastModified": self.ctx.clock.time(),
                                              "LastUpdatedBy": self._caller(req)}
        return {}

    @operation("DeleteLakeFormationOptIn")
    def delete_lake_formation_opt_in(self, req):
        who, key, _ = self._opt_in(req)
        with self.lake.lock:
            if self.lake.opt_ins.pop((who, key), None) is None:
                raise errors.EntityNotFoundException("Opt-in not found for this principal and resource.")
        return {}

    @operation("ListLakeFormationOptIns")
    def list_lake_formation_opt_ins(self, req):
        who = engine.principal(req.params["Principal"]) if req.params.get("Principal") else None
        key = engine.check_resource(self.lake, req.params["Resource"]) if req.params.get("Resource") else None
        with self.lake.lock:
            found = [copy.deepcopy(r) for (p, k), r in self.lake.opt_ins.items()
                     if (who is None or p == who) and (key is None or k == key)]
        return _page(found, req.params, "LakeFormationOptInsInfoList")

    # -- credential vending ----------------------------------------------------------
    @operation("GetTemporaryGlueTableCredentials")
    def get_temporary_glue_table_credentials(self, req):
        """Credentials to read one table's data in S3, for an engine acting for the caller.

        Lake Formation assumes the role its registration names for the table's
        location (the ``RoleArn`` of RegisterResource, or its service-linked
        role) and returns that session's keys, so the S3 read of a registered
        location goes through even though the caller's own IAM policies do not
        allow it. Checks, in AWS's order: the caller's IAM policies allow
        ``lakeformation:GetDataAccess``; the table exists and the caller may see
        it; the caller holds every one of ``Permissions`` (default ``SELECT``) on
        it; the engine supports the filtering the caller's grants need
        (``SupportedPermissionTypes``: ``COLUMN_PERMISSION`` when only some
        columns are granted, ``CELL_FILTER_PERMISSION`` when rows or cells are
        filtered; otherwise ``PermissionTypeMismatchException``, "to avoid data
        leakage"). The filters themselves are not in the answer: the engine gets
        them from Glue's GetUnfilteredTableMetadata and applies them.

        Local differences: the keys are not scoped down to the table's prefix
        (the local S3 endpoint lets the registration role's session read the
        whole registered location) and ``Expiration`` is not enforced. A Glue job
        run that asks has the S3 reads signed with the vended keys counted as its
        own (``glue.objects_read``).

        https://docs.aws.amazon.com/lake-formation/latest/APIReference/API_GetTemporaryGlueTableCredentials.html,
        https://docs.aws.amazon.com/lake-formation/latest/dg/api-overview.html
        """
        p = req.params
        caller = self._caller(req)
        table_arn = p.get("TableArn") or ""
        parts = table_arn.split(":", 5)
        if len(parts) != 6 or parts[:3] != ["arn", "aws", "glue"] or not parts[5].startswith("table/") \
                or parts[5].count("/") != 2:
            raise errors.InvalidInputException(f"Invalid TableArn {table_arn!r}: expected "
                                               "arn:aws:glue:<region>:<account>:table/<database>/<table>.")
        database, name = parts[5].split("/")[1:]
        wanted = list(p.get("Permissions") or ["SELECT"])
        unknown = [w for w in wanted if w not in engine.PERMISSIONS]
        types = list(p.get("SupportedPermissionTypes") or [])
        bad_types = [t for t in types if t not in PERMISSION_TYPES]
        duration = p.get("DurationSeconds", 3600)
        if unknown or bad_types:
            raise errors.InvalidInputException(f"Unknown value(s): {', '.join(unknown + bad_types)}.")
        if not isinstance(duration, int) or not 900 <= duration <= 43200:
            raise errors.InvalidInputException("DurationSeconds must be between 900 and 43200.")
        if not self.lake.is_admin(caller) and not iam_policy.allowed(
                self.ctx.client("iam"), caller, "lakeformation:GetDataAccess", "*"):
            raise errors.AccessDeniedException(
                f"User: {caller} is not authorized to perform: lakeformation:GetDataAccess because no "
                "identity-based policy allows the lakeformation:GetDataAccess action")
        glue = self.ctx.client("glue")
        try:
            table = glue.get_table(DatabaseName=database, Name=name)["Table"]
        except glue.exceptions.EntityNotFoundException:
            raise errors.EntityNotFoundException(f"Table {name} not found.") from None
        access = self.lake.table_access(caller, database, name)
        if not (access.describe or access.select):
            raise errors.EntityNotFoundException(f"Table {name} not found.")
        held = set(access.permissions) | ({"SELECT"} if access.select else set())
        if not self.lake.expand_permissions(set(wanted)) - {"ALL"} <= held:
            raise errors.AccessDeniedException(f"Insufficient Lake Formation permission(s) on {name}")
        if (access.columns is not None and "COLUMN_PERMISSION" not in types) or \
                ((access.row_filter or access.cells) and "CELL_FILTER_PERMISSION" not in types):
            raise errors.PermissionTypeMismatchException(
                "The engine does not support filtering data based on the enforced permissions.")
        location = (table.get("StorageDescriptor") or {}).get("Location") or ""
        record = self.lake.registered(location) if location else None
        if record is None:
            raise errors.InvalidInputException(f"The location of table {name} ({location or 'none'}) is not "
                                               "registered with Lake Formation: there is nothing to vend; "
                                               "read it with your own credentials.")
        credentials = self._vend(record["RoleArn"], duration)
        glue_plane = self.ctx.registry.planes.get("glue")
        if glue_plane is not None and hasattr(glue_plane, "jobs"):
            glue_plane.jobs.credentials_vended(req.access_key, credentials["AccessKeyId"])
        return {**credentials, "VendedS3Path": [location]}

    def _vend(self, role_arn: str, duration: int) -> dict:
        """A session of the registration's role (created first if it is Lake Formation's
        service-linked role, as RegisterResource does on AWS)."""
        if role_arn.endswith(SERVICE_LINKED_ROLE):
            iam = self.ctx.client("iam")
            try:
                iam.get_role(RoleName=SERVICE_LINKED_ROLE.rsplit("/", 1)[1])
            except iam.exceptions.NoSuchEntityException:
                iam.create_role(RoleName=SERVICE_LINKED_ROLE.rsplit("/", 1)[1],
                                Path="/" + SERVICE_LINKED_ROLE.split("/", 1)[1].rsplit("/", 1)[0] + "/",
                                AssumeRolePolicyDocument='{"Version": "2012-10-17", "Statement": [{"Effect": '
                                '"Allow", "Principal": {"Service": "lakeformation.amazonaws.com"}, '
                                '"Action": "sts:AssumeRole"}]}')
        creds = self.ctx.client("sts").assume_role(RoleArn=role_arn, RoleSessionName="AWSLF-DataAccess",
                                                   DurationSeconds=min(duration, 43200))["Credentials"]
        return {"AccessKeyId": creds["AccessKeyId"], "SecretAccessKey": creds["SecretAccessKey"],
                "SessionToken": creds["SessionToken"], "Expiration": creds["Expiration"].timestamp()}
