"""QuickSight's data plane: data sets that really hold data, SPICE, and who may see what.

moto records QuickSight's users, groups, memberships and data sources, and little else. This
plane answers, in QuickSight's rest-json shapes (``/accounts/{AwsAccountId}/...``):

Data plane (this half, ``engine.py``):

- **Data sets**: CreateDataSet, DescribeDataSet, ListDataSets, UpdateDataSet, DeleteDataSet,
  DescribeDataSetPermissions, UpdateDataSetPermissions. The physical table is checked at its
  source, calculated fields are translated to SQL, column- and row-level security are checked.
- **SPICE**: CreateIngestion, DescribeIngestion, ListIngestions, CancelIngestion (a SPICE data
  set's first ingestion starts with CreateDataSet, as on AWS).
- **Data sources** (moto keeps them): CreateDataSource checks the source (the Athena work group,
  the Redshift cluster, the S3 manifest); one that cannot be reached ends CREATION_FAILED with
  ``ErrorInfo``, as QuickSight reports it (the call itself succeeds).
- **Users and groups** (moto keeps them): RegisterUser refuses an IAM identity without
  ``IamArn``, an unknown role and a user that exists; CreateGroup a group that exists;
  CreateGroupMembership a user that does not exist. QuickSight users are not IAM principals.

Dashboards (the other half, ``dashboards.py``, a mixin so the plane stays one class):

- **Analyses**: CreateAnalysis, DescribeAnalysis, DescribeAnalysisDefinition, UpdateAnalysis,
  DeleteAnalysis, RestoreAnalysis, ListAnalyses, Describe/UpdateAnalysisPermissions.
- **Dashboards**: CreateDashboard, UpdateDashboard, UpdateDashboardPublishedVersion,
  DescribeDashboard, DescribeDashboardDefinition, ListDashboardVersions, ListDashboards,
  DeleteDashboard, Describe/UpdateDashboardPermissions.
- **Embedding**: GenerateEmbedUrlForRegisteredUser, GenerateEmbedUrlForAnonymousUser; the
  pages are served by ``web.py`` on 127.0.0.1.

Local hooks: ``stack.local.quicksight.spice_capacity(bytes=None)``, ``queries(dataset_id)``
(this file); ``open_url(dashboard_id, user)``, ``screenshot(url, ...)``,
``visual_data(url, visual_id, ...)`` (``dashboards.py``).
"""
from __future__ import annotations

import copy
import json
import uuid

from localaws.core import Plane, local_hook, moto_hook, operation
from localaws.core.wire import path_params

from . import errors, sources
from .dashboards import DashboardOperations
from .engine import QuickSightEngine

BACKEND = "moto.quicksight.models:QuickSightBackend"
ROLES = ("ADMIN", "AUTHOR", "READER", "RESTRICTED_AUTHOR", "RESTRICTED_READER",
         "ADMIN_PRO", "AUTHOR_PRO", "READER_PRO")


def _answer(body: dict, status: int = 200):
    body = {**body, "RequestId": str(uuid.uuid4()), "Status": status}
    return status, [("Content-Type", "application/json")], json.dumps(body, default=str).encode()


class QuickSightPlane(DashboardOperations, Plane):
    """Data sets, SPICE and security (this file) plus dashboards (``DashboardOperations``)."""

    name = "quicksight"
    services = ("quicksight",)

    def __init__(self, ctx):
        super().__init__(ctx)
        self.credentials: dict[str, dict] = {}      # data source id -> Credentials (moto drops them)
        self.engine = QuickSightEngine(ctx, self.credentials)

    def stop(self):
        self.stop_dashboards()
        self.engine.stop()

    # -- local hooks -------------------------------------------------------------------
    @local_hook("On AWS, see and buy SPICE capacity on the console's 'Manage SPICE capacity' page "
                "(UpdateSPICECapacityConfiguration only chooses whether capacity is purchased automatically).")
    def spice_capacity(self, bytes: int | None = None) -> int:
        """This account's SPICE capacity in bytes (set it with ``bytes``); default 10 GiB."""
        return self.engine.spice_capacity(bytes)

    @local_hook("On AWS, count the queries at the source instead: Athena's ListQueryExecutions in the "
                "data source's work group, or Redshift's SYS_QUERY_HISTORY.")
    def queries(self, dataset_id: str) -> int:
        """How many times the data set has read its source (ingestions + direct queries)."""
        return self.engine.queries(dataset_id)

    # -- users, groups, data sources: checks in front of moto -----------------------------
    @operation("RegisterUser")
    def register_user(self, req):
        """Checks, then the record (moto keeps it). An IAM identity's user name is derived from
        its IAM identity, as QuickSight does: an IAM user's name, or ``<role>/<SessionName>``."""
        p, where = req.params, path_params(req)
        if p.get("UserRole") not in ROLES:
            raise errors.InvalidParameterValueException(f"UserRole must be one of {', '.join(ROLES)}.")
        identity = p.get("IdentityType")
        if identity not in ("IAM", "QUICKSIGHT"):
            raise errors.InvalidParameterValueException("IdentityType must be IAM or QUICKSIGHT "
                                                        "(IAM_IDENTITY_CENTER is not emulated).")
        name = p.get("UserName")
        if identity == "IAM":
            iam_arn = p.get("IamArn") or ""
            kind, _, iam_name = iam_arn.partition(":")[2].rpartition(":")[2].partition("/")
            if kind not in ("user", "role") or not iam_name:
                raise errors.InvalidParameterValueException(
                    "IamArn must be the ARN of an IAM user or role for the IAM identity type.")
            iam_name = iam_name.rsplit("/", 1)[-1]          # drop an IAM path
            if kind == "role" and not p.get("SessionName"):
                raise errors.InvalidParameterValueException("SessionName is required to register an IAM role.")
            name = name or (iam_name if kind == "user" else f"{iam_name}/{p['SessionName']}")
        if not name:
            raise errors.InvalidParameterValueException("UserName is required for the QUICKSIGHT identity type.")
        if not p.get("Email"):
            raise errors.InvalidParameterValueException("Email is required.")
        namespace = where.get("Namespace", "default")
        if self.engine.user(f"arn:aws:quicksight:::user/{namespace}/{name}"):
            raise errors.ResourceExistsException(f"User {name} already exists.", extra={"ResourceType": "USER"})
        user = self.engine._backend().register_user(
            identity_type=identity, email=p["Email"], user_role=p["UserRole"],
            aws_account_id=where.get("AwsAccountId", self.ctx.account_id), namespace=namespace,
            user_name=name, tags=p.get("Tags"))
        body = {"User": user.to_json()}
        if identity == "QUICKSIGHT":        # only QuickSight-managed users get an invitation link
            body["UserInvitationUrl"] = f"https://quicksight.aws.amazon.com/sn/accept-invite?user={name}"
        return _answer(body)

    @moto_hook(f"{BACKEND}.describe_account_settings")
    def describe_account_settings(self, original, backend, *args, **kwargs):
        """moto answers STANDARD; new accounts today are Enterprise (CreateAccountSubscription takes
        ENTERPRISE or ENTERPRISE_AND_Q only), and this stand-in behaves as Enterprise (groups, CLS, RLS)."""
        settings = original(backend, *args, **kwargs)
        settings.edition = "ENTERPRISE"
        return settings

    @operation("CreateGroup")
    def create_group(self, req):
        where = path_params(req)
        name = req.params.get("GroupName", "")
        if self.engine.group(f"arn:aws:quicksight:::group/{where.get('Namespace', 'default')}/{name}"):
            raise errors.ResourceExistsException(f"Group {name} already exists.", extra={"ResourceType": "GROUP"})
        return None

    @operation("CreateGroupMembership")
    def create_group_membership(self, req):
        where = path_params(req)
        ns = where.get("Namespace", "default")
        if not self.engine.group(f"arn:aws:quicksight:::group/{ns}/{where.get('GroupName')}"):
            raise errors.ResourceNotFoundException(f"Group {where.get('GroupName')} not found.",
                                                   extra={"ResourceType": "GROUP"})
        if not self.engine.user(f"arn:aws:quicksight:::user/{ns}/{where.get('MemberName')}"):
            raise errors.ResourceNotFoundException(f"User {where.get('MemberName')} not found.",
                                                   extra={"ResourceType": "USER"})
        return None

    @operation("CreateDataSource")
    def create_data_source(self, req):
        p = req.params
        if p.get("Type") not in ("ATHENA", "REDSHIFT", "S3"):
            return None             # recorded by moto, not queryable here (engine says so)
        if "Credentials" in p:
            self.credentials[path_params(req).get("DataSourceId") or p.get("DataSourceId")] = copy.deepcopy(
                p["Credentials"])
        return None

    @moto_hook(f"{BACKEND}.create_data_source")
    def _create_data_source(self, original, backend, *args, **kwargs):
        source = original(backend, *args, **kwargs)
        problem = sources.check_data_source(self.ctx, source.data_source_type, source.data_source_parameters)
        if problem:
            source.status, source.error_info = "CREATION_FAILED", problem
        return source

    @moto_hook(f"{BACKEND}.update_data_source")
    def _update_data_source(self, original, backend, *args, **kwargs):
        source = original(backend, *args, **kwargs)
        problem = sources.check_data_source(self.ctx, source.data_source_type, source.data_source_parameters)
        source.status, source.error_info = ("UPDATE_FAILED", problem) if problem else ("UPDATE_SUCCESSFUL", None)
        return source

    @moto_hook("moto.quicksight.data_models:QuickSightDataSource.to_json")
    def _data_source_json(self, original, source):
        out = original(source)
        if getattr(source, "error_info", None):
            out["ErrorInfo"] = source.error_info
        return {k: v for k, v in out.items() if v is not None}

    # -- data sets ----------------------------------------------------------------------
    def _describe(self, ds) -> dict:
        out = {"Arn": ds.arn, "DataSetId": ds.id, "Name": ds.name, "CreatedTime": ds.created,
               "LastUpdatedTime": ds.updated, "ImportMode": ds.import_mode,
               "OutputColumns": [{"Name": n, "Type": t} for n, t in ds.columns],
               "ConsumedSpiceCapacityInBytes": ds.consumed}
        for key in ("PhysicalTableMap", "LogicalTableMap", "ColumnGroups", "FieldFolders",
                    "RowLevelPermissionDataSet", "ColumnLevelPermissionRules", "DataSetUsageConfiguration",
                    "DatasetParameters"):
            if ds.request.get(key) is not None:
                out[key] = ds.request[key]
        return out

    def _summary(self, ds) -> dict:
        return {"Arn": ds.arn, "DataSetId": ds.id, "Name": ds.name, "CreatedTime": ds.created,
                "LastUpdatedTime": ds.updated, "ImportMode": ds.import_mode,
                **({"RowLevelPermissionDataSet": ds.request["RowLevelPermissionDataSet"]}
                   if ds.request.get("RowLevelPermissionDataSet") else {}),
                "RowLevelPermissionTagConfigurationApplied": False,
                "ColumnLevelPermissionRulesApplied": bool(ds.request.get("ColumnLevelPermissionRules"))}

    @operation("CreateDataSet")
    def create_data_set(self, req):
        p = req.params
        dataset_id = p.get("DataSetId") or ""
        if not dataset_id or not p.get("Name"):
            raise errors.InvalidParameterValueException("DataSetId and Name are required.")
        ds, ing = self.engine.create_dataset(dataset_id, p)
        body = {"Arn": ds.arn, "DataSetId": ds.id}
        if ing is not None:
            body.update(IngestionArn=ing.arn, IngestionId=ing.id)
        return _answer(body, 201)

    @operation("DescribeDataSet")
    def describe_data_set(self, req):
        return _answer({"DataSet": self._describe(self.engine.dataset(path_params(req)["DataSetId"]))})

    @operation("ListDataSets")
    def list_data_sets(self, req):
        items = [self._summary(d) for d in self.engine.datasets()]
        page, token = _page(items, req)
        return _answer({"DataSetSummaries": page, **({"NextToken": token} if token else {})})

    @operation("UpdateDataSet")
    def update_data_set(self, req):
        ds, ing = self.engine.update_dataset(path_params(req)["DataSetId"], req.params)
        body = {"Arn": ds.arn, "DataSetId": ds.id}
        if ing is not None:
            body.update(IngestionArn=ing.arn, IngestionId=ing.id)
        return _answer(body)

    @operation("DeleteDataSet")
    def delete_data_set(self, req):
        ds = self.engine.delete_dataset(path_params(req)["DataSetId"])
        return _answer({"Arn": ds.arn, "DataSetId": ds.id})

    @operation("DescribeDataSetPermissions")
    def describe_data_set_permissions(self, req):
        ds = self.engine.dataset(path_params(req)["DataSetId"])
        return _answer({"DataSetArn": ds.arn, "DataSetId": ds.id, "Permissions": ds.permissions})

    @operation("UpdateDataSetPermissions")
    def update_data_set_permissions(self, req):
        ds = self.engine.update_permissions(path_params(req)["DataSetId"],
                                            req.params.get("GrantPermissions") or [],
                                            req.params.get("RevokePermissions") or [])
        return _answer({"DataSetArn": ds.arn, "DataSetId": ds.id})

    # -- ingestions -----------------------------------------------------------------------
    @operation("CreateIngestion")
    def create_ingestion(self, req):
        where = path_params(req)
        kind = req.params.get("IngestionType") or "FULL_REFRESH"
        if kind not in ("FULL_REFRESH", "INCREMENTAL_REFRESH"):
            raise errors.InvalidParameterValueException("IngestionType must be FULL_REFRESH or INCREMENTAL_REFRESH.")
        ing = self.engine.start_ingestion(where["DataSetId"], where["IngestionId"], kind)
        return _answer({"Arn": ing.arn, "IngestionId": ing.id, "IngestionStatus": "INITIALIZED"}, 201)

    @operation("DescribeIngestion")
    def describe_ingestion(self, req):
        where = path_params(req)
        return _answer({"Ingestion": self.engine.ingestion(where["DataSetId"], where["IngestionId"]).describe()})

    @operation("ListIngestions")
    def list_ingestions(self, req):
        items = [i.describe() for i in self.engine.ingestions(path_params(req)["DataSetId"])]
        page, token = _page(items, req)
        return _answer({"Ingestions": page, **({"NextToken": token} if token else {})})

    @operation("CancelIngestion")
    def cancel_ingestion(self, req):
        where = path_params(req)
        ing = self.engine.cancel_ingestion(where["DataSetId"], where["IngestionId"])
        return _answer({"Arn": ing.arn, "IngestionId": ing.id})


def _page(items: list, req) -> tuple[list, str | None]:
    """One page of ``items`` (``max-results``, ``next-token`` query parameters)."""
    start = int((req.query.get("next-token") or ["0"])[0] or 0)
    size = int((req.query.get("max-results") or ["100"])[0] or 100)
    end = start + size
    return items[start:end], (str(end) if end < len(items) else None)
