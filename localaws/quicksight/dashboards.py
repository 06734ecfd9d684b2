"""QuickSight analyses, dashboards and embed URLs: the half of the plane a viewer sees.

An **analysis** is an author's workspace: a ``Definition`` (sheets, visuals, filters,
parameters) over data sets. A **dashboard** is its read-only, published copy: QuickSight's
API publishes by reading ``DescribeAnalysisDefinition`` and passing that ``Definition`` to
``CreateDashboard``. Each ``UpdateDashboard`` adds a *version*; viewers see the *published*
one (``UpdateDashboardPublishedVersion`` chooses it). Who may open an analysis or a
dashboard is a list of ``Permissions`` (a user, group or namespace ARN and its actions).

Both are checked when they are created (:mod:`.definition`): a definition that does not hang
together is rejected with ``InvalidParameterValueException`` and nothing is recorded; a
definition over a missing data set or column is recorded with ``Status CREATION_FAILED``
and its ``Errors`` (``DATA_SET_NOT_FOUND``, ``COLUMN_REPLACEMENT_MISSING``...), as QuickSight
does, and draws nothing.

**Embedding.** ``GenerateEmbedUrlForRegisteredUser`` / ``ForAnonymousUser`` return a URL
holding a one-time code, valid for 5 minutes; opening it starts a session that lasts
``SessionLifetimeInMinutes`` (15 to 600, default 600), both on the stack clock. The page
(:mod:`.web`) fetches each visual's rows from a local endpoint that queries the data set *as
the session's user*: row-level security filters the rows and a column the user may not see
is never queried (the visual shows QuickSight's "restricted" message instead).

The stand-in keeps its own records of analyses and dashboards (moto's partial dashboard
records are not used), in memory, for the life of the stack.
"""
from __future__ import annotations

import copy
import html
import json
import re
import secrets
import threading
import urllib.error
import urllib.parse
import urllib.request
import uuid
from http.cookiejar import CookieJar

from localaws.core import local_hook, not_emulated, operation
from localaws.core.wire import path_params
from . import definition as defn
from . import errors, web

EMBED_CODE_SECONDS = 5 * 60                  # an embed URL's code: 5 minutes, one use
SESSION_MINUTES = (15, 600)                  # SessionLifetimeInMinutes bounds; default 600 (10 h)
RECOVERY_DAYS = (7, 30)                      # DeleteAnalysis RecoveryWindowInDays; default 30
DAY = 86400
ANALYSIS_ACTIONS = frozenset(f"quicksight:{a}" for a in (
    "RestoreAnalysis", "UpdateAnalysisPermissions", "DeleteAnalysis", "QueryAnalysis",
    "DescribeAnalysisPermissions", "DescribeAnalysis", "UpdateAnalysis"))
DASHBOARD_ACTIONS = frozenset(f"quicksight:{a}" for a in (
    "DescribeDashboard", "ListDashboardVersions", "QueryDashboard", "UpdateDashboardPermissions",
    "UpdateDashboard", "DeleteDashboard", "DescribeDashboardPermissions",
    "UpdateDashboardPublishedVersion", "UpdateDashboardLinks"))
VIEW_ACTIONS = ("quicksight:DescribeDashboard", "quicksight:QueryDashboard")
INVALID_PRINCIPALS = "One or more principals in resource permissions list are not valid QuickSight users"
ON_AWS_OPEN = ("On AWS, call GenerateEmbedUrlForRegisteredUser for the user and open the EmbedUrl, "
               "or sign in to the QuickSight console as that user.")


QuickSightUserNotFoundException = errors.QuickSightUserNotFoundException
SessionLifetimeInMinutesInvalidException = errors.SessionLifetimeInMinutesInvalidException
InvalidNextTokenException = errors.InvalidNextTokenException


_STATE_LOCK = threading.Lock()


class DashboardOperations:
    """Analyses, dashboards, their permissions and versions, embed URLs and the page server.

    A mixin of ``QuickSightPlane`` (``api.py``): it uses ``self.ctx`` and ``self.engine``
    (data sets: ``columns``, ``query``, ``user``, ``user_groups``).
    """

    # -- state (created on first use: the plane's __init__ stays cheap) -----------------
    @property
    def _dash(self) -> dict:
        state = self.__dict__.get("_dash_state")
        if state is None:
            with _STATE_LOCK:
                state = self.__dict__.setdefault("_dash_state", {
                    "lock": threading.RLock(), "analyses": {}, "dashboards": {}, "codes": {},
                    "sessions": {}, "server": None, "openers": {}})
        return state

    def stop_dashboards(self) -> None:
        """Stop the page server (the stack is stopping)."""
        state = self.__dict__.get("_dash_state")
        if state is None:
            return
        with state["lock"]:
            server, state["server"] = state["server"], None
            state["sessions"].clear()
            state["codes"].clear()
        if server is not None:
            server.stop()

    def _server(self) -> web.DashboardServer:
        with self._dash["lock"]:
            if self._dash["server"] is None:
                self._dash["server"] = web.DashboardServer(self)
            return self._dash["server"]

    # -- small helpers -------------------------------------------------------------------
    def _now(self) -> float:
        return self.ctx.clock.time()

    def _arn(self, kind: str, ident: str) -> str:
        return f"arn:aws:quicksight:{self.ctx.region}:{self.ctx.account_id}:{kind}/{ident}"

    @staticmethod
    def _reply(body: dict, status: int = 200):
        body = {**body, "RequestId": str(uuid.uuid4())}
        return status, [("Content-Type", "application/json")], json.dumps(body, default=str)

    @staticmethod
    def _query(req, name: str) -> str | None:
        values = req.query.get(name)
        return values[0] if values else None

    def _check_account(self, req) -> dict:
        params = path_params(req)
        if params.get("AwsAccountId") not in (None, self.ctx.account_id):
            raise errors.AccessDeniedException(
                f"The AWS account {params.get('AwsAccountId')} is not the account of these credentials "
                f"({self.ctx.account_id}).")
        return params

    def _check_principals(self, permissions, allowed: frozenset) -> list[dict]:
        """Permissions as given, after checking each principal exists and each action applies."""
        checked = []
        for perm in permissions or []:
            principal, actions = perm.get("Principal") or "", list(perm.get("Actions") or [])
            if not self._principal_exists(principal):
                raise errors.InvalidParameterValueException(f"{INVALID_PRINCIPALS}: {principal}")
            bad = sorted(set(actions) - allowed)
            if bad or not actions:
                raise errors.InvalidParameterValueException(
                    f"Actions {bad or actions} are not valid for this resource; valid actions are "
                    f"{', '.join(sorted(allowed))}")
            checked.append({"Principal": principal, "Actions": actions})
        return checked

    def _principal_exists(self, principal: str) -> bool:
        prefix = f"arn:aws:quicksight:{self.ctx.region}:{self.ctx.account_id}:"
        if principal.startswith(prefix + "user/"):
            return self.engine.user(principal) is not None
        if principal.startswith(prefix + "group/"):
            return self.engine.group(principal) is not None
        if principal.startswith(prefix + "namespace/"):
            return principal.endswith("/default")
        return principal == f"arn:aws:iam::{self.ctx.account_id}:root"

    @staticmethod
    def _apply_permissions(current: list[dict], grant: list[dict], revoke: list[dict]) -> list[dict]:
        by_principal = {p["Principal"]: list(p["Actions"]) for p in current}
        for p in grant:
            actions = by_principal.setdefault(p["Principal"], [])
            actions += [a for a in p["Actions"] if a not in actions]
        for p in revoke:
            if p["Principal"] in by_principal:
                by_principal[p["Principal"]] = [a for a in by_principal[p["Principal"]] if a not in p["Actions"]]
        return [{"Principal": k, "Actions": sorted(v)} for k, v in sorted(by_principal.items()) if v]

    def _viewer_principals(self, user_arn: str) -> set[str]:
        groups = self.engine.user_groups(user_arn) or []
        return {user_arn, *(self._arn("group/default", g) for g in groups),
                self._arn("namespace", "default")}

    def _build(self, definition: dict) -> tuple[defn.Model, list[dict]]:
        """Parse and check a Definition: (model, QuickSight Errors). Raises for a broken one."""
        try:
            model = defn.parse(definition)
        except defn.DefinitionError as exc:
            raise errors.InvalidParameterValueException(f"Invalid Definition: {exc}") from None
        columns = {}
        for ident in model.datasets:
            try:
                columns[ident] = self.engine.columns(model.dataset_id(ident), None)
            except errors.ResourceNotFoundException:
                columns[ident] = None
        return model, defn.check_columns(model, columns)

    @staticmethod
    def _sheets(model: defn.Model) -> list[dict]:
        return [{"SheetId": s.sheet_id, "Name": s.name} for s in model.sheets]

    @staticmethod
    def _source(params: dict, operation_name: str) -> dict:
        if params.get("SourceEntity"):
            raise not_emulated("quicksight", operation_name,
                               "SourceEntity (templates) is not run locally; pass a Definition "
                               "(for an analysis: its DescribeAnalysisDefinition)")
        if not params.get("Definition"):
            raise errors.InvalidParameterValueException("Either Definition or SourceEntity is required.")
        return params["Definition"]

    # ==================================================================== analyses
    def _analysis(self, analysis_id: str, *, deleted_ok: bool = True) -> dict:
        with self._dash["lock"]:
            record = self._dash["analyses"].get(analysis_id)
            if record and record["DeletionTime"] and self._now() >= record["DeletionTime"]:
                del self._dash["analyses"][analysis_id]          # the recovery window is over
                record = None
        if record is None:
            raise errors.ResourceNotFoundException(f"Analysis {analysis_id} is not found.",
                                                   extra={"ResourceType": "ANALYSIS"})
        if record["DeletionTime"] and not deleted_ok:
            raise errors.ConflictException(f"Analysis {analysis_id} is scheduled for deletion; "
                                           "restore it first (RestoreAnalysis).")
        return record

    @operation("CreateAnalysis")
    def create_analysis(self, req):
        params = {**req.params, **self._check_account(req)}
        analysis_id = params["AnalysisId"]
        definition = self._source(params, "CreateAnalysis")
        model, errs = self._build(definition)
        permissions = self._check_principals(params.get("Permissions"), ANALYSIS_ACTIONS)
        now = self._now()
        record = {"AnalysisId": analysis_id, "Arn": self._arn("analysis", analysis_id),
                  "Name": params.get("Name") or analysis_id, "Definition": copy.deepcopy(definition),
                  "Status": "CREATION_FAILED" if errs else "CREATION_SUCCESSFUL", "Errors": errs,
                  "DataSetArns": sorted(set(model.datasets.values())), "Sheets": self._sheets(model),
                  "ThemeArn": params.get("ThemeArn"), "CreatedTime": now, "LastUpdatedTime": now,
                  "Permissions": self._apply_permissions([], permissions, []), "DeletionTime": None}
        with self._dash["lock"]:
            existing = self._dash["analyses"].get(analysis_id)
            if existing is not None:
                raise errors.ResourceExistsException(f"Analysis {analysis_id} already exists.",
                                                     extra={"ResourceType": "ANALYSIS"})
            self._dash["analyses"][analysis_id] = record
        return self._reply({"Arn": record["Arn"], "AnalysisId": analysis_id,
                            "CreationStatus": "CREATION_IN_PROGRESS"}, 202)

    def _analysis_view(self, r: dict) -> dict:
        view = {k: r[k] for k in ("AnalysisId", "Arn", "Name", "Status", "DataSetArns", "Sheets",
                                  "CreatedTime", "LastUpdatedTime")}
        if r["DeletionTime"]:
            view["Status"] = "DELETED"
        if r["Errors"]:
            view["Errors"] = r["Errors"]
        if r["ThemeArn"]:
            view["ThemeArn"] = r["ThemeArn"]
        return view

    @operation("DescribeAnalysis")
    def describe_analysis(self, req):
        params = self._check_account(req)
        return self._reply({"Analysis": self._analysis_view(self._analysis(params["AnalysisId"]))})

    @operation("DescribeAnalysisDefinition")
    def describe_analysis_definition(self, req):
        params = self._check_account(req)
        r = self._analysis(params["AnalysisId"])
        body = {"AnalysisId": r["AnalysisId"], "Name": r["Name"], "Definition": r["Definition"],
                "ResourceStatus": "DELETED" if r["DeletionTime"] else r["Status"], "Errors": r["Errors"]}
        if r["ThemeArn"]:
            body["ThemeArn"] = r["ThemeArn"]
        return self._reply(body)

    @operation("UpdateAnalysis")
    def update_analysis(self, req):
        params = {**req.params, **self._check_account(req)}
        record = self._analysis(params["AnalysisId"], deleted_ok=False)
        definition = self._source(params, "UpdateAnalysis")
        model, errs = self._build(definition)
        with self._dash["lock"]:
            record.update({"Name": params.get("Name") or record["Name"],
                           "Definition": copy.deepcopy(definition), "Errors": errs,
                           "Status": "UPDATE_FAILED" if errs else "UPDATE_SUCCESSFUL",
                           "DataSetArns": sorted(set(model.datasets.values())),
                           "Sheets": self._sheets(model), "LastUpdatedTime": self._now(),
                           "ThemeArn": params.get("ThemeArn") or record["ThemeArn"]})
        return self._reply({"Arn": record["Arn"], "AnalysisId": record["AnalysisId"],
                            "UpdateStatus": "UPDATE_IN_PROGRESS"}, 202)

    @operation("DeleteAnalysis")
    def delete_analysis(self, req):
        params = self._check_account(req)
        force = (self._query(req, "force-delete-without-recovery") or "").lower() == "true"
        window = self._query(req, "recovery-window-in-days")
        if force and window is not None:
            raise errors.InvalidParameterValueException(
                "RecoveryWindowInDays and ForceDeleteWithoutRecovery cannot be used together.")
        days = int(window) if window is not None else RECOVERY_DAYS[1]
        if not RECOVERY_DAYS[0] <= days <= RECOVERY_DAYS[1]:
            raise errors.InvalidParameterValueException(
                f"RecoveryWindowInDays must be between {RECOVERY_DAYS[0]} and {RECOVERY_DAYS[1]}.")
        record = self._analysis(params["AnalysisId"])
        with self._dash["lock"]:
            if force:
                self._dash["analyses"].pop(record["AnalysisId"], None)
                deletion = self._now()
            else:
                record["DeletionTime"] = deletion = self._now() + days * DAY
        return self._reply({"Arn": record["Arn"], "AnalysisId": record["AnalysisId"],
                            "DeletionTime": deletion})

    @operation("RestoreAnalysis")
    def restore_analysis(self, req):
        params = self._check_account(req)
        record = self._analysis(params["AnalysisId"])
        with self._dash["lock"]:
            record["DeletionTime"] = None
        return self._reply({"Arn": record["Arn"], "AnalysisId": record["AnalysisId"]})

    @operation("ListAnalyses")
    def list_analyses(self, req):
        self._check_account(req)
        with self._dash["lock"]:
            ids = sorted(self._dash["analyses"])
        summaries = []
        for analysis_id in ids:
            try:
                r = self._analysis(analysis_id)
            except errors.ResourceNotFoundException:
                continue
            summaries.append({k: v for k, v in self._analysis_view(r).items()
                              if k in ("Arn", "AnalysisId", "Name", "Status", "CreatedTime", "LastUpdatedTime")})
        return self._reply(self._paginate(req, summaries, "AnalysisSummaryList"))

    def _paginate(self, req, items: list, key: str) -> dict:
        size = int(self._query(req, "max-results") or 100)
        token = self._query(req, "next-token")
        try:
            start = int(token) if token else 0
        except ValueError:
            raise InvalidNextTokenException(f"The NextToken {token} is not valid.") from None
        body = {key: items[start:start + size]}
        if start + size < len(items):
            body["NextToken"] = str(start + size)
        return body

    @operation("DescribeAnalysisPermissions")
    def describe_analysis_permissions(self, req):
        params = self._check_account(req)
        r = self._analysis(params["AnalysisId"])
        return self._reply({"AnalysisId": r["AnalysisId"], "AnalysisArn": r["Arn"],
                            "Permissions": r["Permissions"]})

    @operation("UpdateAnalysisPermissions")
    def update_analysis_permissions(self, req):
        params = {**req.params, **self._check_account(req)}
        r = self._analysis(params["AnalysisId"])
        grant = self._check_principals(params.get("GrantPermissions"), ANALYSIS_ACTIONS)
        revoke = self._check_principals(params.get("RevokePermissions"), ANALYSIS_ACTIONS)
        with self._dash["lock"]:
            r["Permissions"] = self._apply_permissions(r["Permissions"], grant, revoke)
        return self._reply({"AnalysisId": r["AnalysisId"], "AnalysisArn": r["Arn"],
                            "Permissions": r["Permissions"]})

    # ==================================================================== dashboards
    def _dashboard(self, dashboard_id: str) -> dict:
        with self._dash["lock"]:
            record = self._dash["dashboards"].get(dashboard_id)
        if record is None:
            raise errors.ResourceNotFoundException(f"Dashboard {dashboard_id} is not found.",
                                                   extra={"ResourceType": "DASHBOARD"})
        return record

    def _version(self, record: dict, number: str | int | None) -> dict:
        number = record["Published"] if number is None else int(number)
        if number is None:
            number = record["Versions"][-1]["VersionNumber"]
        for v in record["Versions"]:
            if v["VersionNumber"] == number:
                return v
        raise errors.ResourceNotFoundException(
            f"Version {number} of dashboard {record['DashboardId']} is not found.",
            extra={"ResourceType": "DASHBOARD"})

    def _new_version(self, record: dict, params: dict, definition: dict) -> dict:
        model, errs = self._build(definition)
        number = (record["Versions"][-1]["VersionNumber"] + 1) if record["Versions"] else 1
        return {"VersionNumber": number, "Arn": f"{record['Arn']}/version/{number}",
                "Status": "CREATION_FAILED" if errs else "CREATION_SUCCESSFUL", "Errors": errs,
                "CreatedTime": self._now(), "Definition": copy.deepcopy(definition),
                "DataSetArns": sorted(set(model.datasets.values())), "Sheets": self._sheets(model),
                "Description": params.get("VersionDescription"), "ThemeArn": params.get("ThemeArn"),
                "DashboardPublishOptions": params.get("DashboardPublishOptions")}

    @operation("CreateDashboard")
    def create_dashboard(self, req):
        params = {**req.params, **self._check_account(req)}
        dashboard_id = params["DashboardId"]
        definition = self._source(params, "CreateDashboard")
        permissions = self._check_principals(params.get("Permissions"), DASHBOARD_ACTIONS)
        now = self._now()
        record = {"DashboardId": dashboard_id, "Arn": self._arn("dashboard", dashboard_id),
                  "Name": params.get("Name") or dashboard_id, "Versions": [], "Published": None,
                  "CreatedTime": now, "LastUpdatedTime": now, "LastPublishedTime": None,
                  "Permissions": self._apply_permissions([], permissions, [])}
        version = self._new_version(record, params, definition)
        record["Versions"].append(version)
        if version["Status"] == "CREATION_SUCCESSFUL":
            record["Published"], record["LastPublishedTime"] = 1, now
        with self._dash["lock"]:
            if dashboard_id in self._dash["dashboards"]:
                raise errors.ResourceExistsException(f"Dashboard {dashboard_id} already exists.",
                                                     extra={"ResourceType": "DASHBOARD"})
            self._dash["dashboards"][dashboard_id] = record
        return self._reply({"Arn": record["Arn"], "VersionArn": version["Arn"],
                            "DashboardId": dashboard_id, "CreationStatus": "CREATION_IN_PROGRESS"}, 202)

    @operation("UpdateDashboard")
    def update_dashboard(self, req):
        params = {**req.params, **self._check_account(req)}
        record = self._dashboard(params["DashboardId"])
        definition = self._source(params, "UpdateDashboard")
        with self._dash["lock"]:
            version = self._new_version(record, params, definition)
            record["Versions"].append(version)
            record["Name"] = params.get("Name") or record["Name"]
            record["LastUpdatedTime"] = self._now()
        return self._reply({"Arn": record["Arn"], "VersionArn": version["Arn"],
                            "DashboardId": record["DashboardId"], "CreationStatus": "CREATION_IN_PROGRESS"}, 202)

    @operation("UpdateDashboardPublishedVersion")
    def update_dashboard_published_version(self, req):
        params = self._check_account(req)
        record = self._dashboard(params["DashboardId"])
        version = self._version(record, params["VersionNumber"])
        if version["Status"] != "CREATION_SUCCESSFUL":
            raise errors.InvalidParameterValueException(
                f"Version {version['VersionNumber']} of dashboard {record['DashboardId']} is "
                f"{version['Status']} and cannot be published.")
        with self._dash["lock"]:
            record["Published"], record["LastPublishedTime"] = version["VersionNumber"], self._now()
        return self._reply({"DashboardId": record["DashboardId"], "DashboardArn": record["Arn"]})

    @staticmethod
    def _version_view(v: dict) -> dict:
        view = {k: v[k] for k in ("CreatedTime", "VersionNumber", "Status", "Arn", "DataSetArns", "Sheets")}
        for k in ("Errors", "Description", "ThemeArn"):
            if v.get(k):
                view[k] = v[k]
        return view

    @operation("DescribeDashboard")
    def describe_dashboard(self, req):
        params = self._check_account(req)
        record = self._dashboard(params["DashboardId"])
        version = self._version(record, self._query(req, "version-number"))
        body = {k: record[k] for k in ("DashboardId", "Arn", "Name", "CreatedTime", "LastUpdatedTime")}
        body["Version"] = self._version_view(version)
        if record["LastPublishedTime"]:
            body["LastPublishedTime"] = record["LastPublishedTime"]
        return self._reply({"Dashboard": body})

    @operation("DescribeDashboardDefinition")
    def describe_dashboard_definition(self, req):
        params = self._check_account(req)
        record = self._dashboard(params["DashboardId"])
        version = self._version(record, self._query(req, "version-number"))
        body = {"DashboardId": record["DashboardId"], "Name": record["Name"], "Errors": version["Errors"],
                "ResourceStatus": version["Status"], "Definition": version["Definition"]}
        if version["DashboardPublishOptions"]:
            body["DashboardPublishOptions"] = version["DashboardPublishOptions"]
        if version["ThemeArn"]:
            body["ThemeArn"] = version["ThemeArn"]
        return self._reply(body)

    @operation("ListDashboardVersions")
    def list_dashboard_versions(self, req):
        params = self._check_account(req)
        record = self._dashboard(params["DashboardId"])
        summaries = [{k: v[k] for k in ("Arn", "CreatedTime", "VersionNumber", "Status")}
                     | ({"Description": v["Description"]} if v["Description"] else {})
                     for v in record["Versions"]]
        return self._reply(self._paginate(req, summaries, "DashboardVersionSummaryList"))

    @operation("ListDashboards")
    def list_dashboards(self, req):
        self._check_account(req)
        with self._dash["lock"]:
            records = [self._dash["dashboards"][k] for k in sorted(self._dash["dashboards"])]
        summaries = []
        for r in records:
            s = {k: r[k] for k in ("Arn", "DashboardId", "Name", "CreatedTime", "LastUpdatedTime")}
            if r["Published"] is not None:
                s["PublishedVersionNumber"], s["LastPublishedTime"] = r["Published"], r["LastPublishedTime"]
            summaries.append(s)
        return self._reply(self._paginate(req, summaries, "DashboardSummaryList"))

    @operation("DeleteDashboard")
    def delete_dashboard(self, req):
        params = self._check_account(req)
        record = self._dashboard(params["DashboardId"])
        number = self._query(req, "version-number")
        with self._dash["lock"]:
            if number is None:
                self._dash["dashboards"].pop(record["DashboardId"], None)
            else:
                version = self._version(record, number)
                if version["VersionNumber"] == record["Published"]:
                    raise errors.ConflictException(
                        f"Version {number} is the published version of dashboard {record['DashboardId']}; "
                        "publish another version first (UpdateDashboardPublishedVersion).")
                record["Versions"].remove(version)
        return self._reply({"Arn": record["Arn"], "DashboardId": record["DashboardId"]})

    @operation("DescribeDashboardPermissions")
    def describe_dashboard_permissions(self, req):
        params = self._check_account(req)
        r = self._dashboard(params["DashboardId"])
        return self._reply({"DashboardId": r["DashboardId"], "DashboardArn": r["Arn"],
                            "Permissions": r["Permissions"]})

    @operation("UpdateDashboardPermissions")
    def update_dashboard_permissions(self, req):
        params = {**req.params, **self._check_account(req)}
        r = self._dashboard(params["DashboardId"])
        if params.get("GrantLinkPermissions") or params.get("RevokeLinkPermissions"):
            raise not_emulated("quicksight", "UpdateDashboardPermissions",
                               "link permissions (sharing with a whole namespace by link) are not run locally")
        grant = self._check_principals(params.get("GrantPermissions"), DASHBOARD_ACTIONS)
        revoke = self._check_principals(params.get("RevokePermissions"), DASHBOARD_ACTIONS)
        with self._dash["lock"]:
            r["Permissions"] = self._apply_permissions(r["Permissions"], grant, revoke)
        return self._reply({"DashboardId": r["DashboardId"], "DashboardArn": r["Arn"],
                            "Permissions": r["Permissions"]})

    def can_view(self, dashboard_id: str, user_arn: str) -> bool:
        """Whether ``user_arn`` (directly, through a group, or the namespace) may view the dashboard."""
        record = self._dashboard(dashboard_id)
        principals = self._viewer_principals(user_arn)
        return any(p["Principal"] in principals and any(a in p["Actions"] for a in VIEW_ACTIONS)
                   for p in record["Permissions"])

    # ==================================================================== embed URLs
    def _lifetime(self, params: dict) -> int:
        minutes = params.get("SessionLifetimeInMinutes", SESSION_MINUTES[1])
        if not SESSION_MINUTES[0] <= int(minutes) <= SESSION_MINUTES[1]:
            raise SessionLifetimeInMinutesInvalidException(
                f"The SessionLifetimeInMinutes must be between {SESSION_MINUTES[0]} and "
                f"{SESSION_MINUTES[1]} minutes.")
        return int(minutes)

    def _mint(self, dashboard_id: str, user_arn: str, minutes: int, dashboards: set[str],
              anonymous: bool = False) -> str:
        code = secrets.token_urlsafe(24)
        with self._dash["lock"]:
            self._dash["codes"][code] = {"user": user_arn, "dashboards": set(dashboards), "minutes": minutes,
                                         "issued": self._now(), "anonymous": anonymous}
        return f"{self._server().url}/embed/{code}/dashboards/{urllib.parse.quote(dashboard_id)}"

    @operation("GenerateEmbedUrlForRegisteredUser")
    def generate_embed_url_for_registered_user(self, req):
        params = {**req.params, **self._check_account(req)}
        experience = params.get("ExperienceConfiguration") or {}
        if "Dashboard" not in experience:
            raise not_emulated("quicksight", "GenerateEmbedUrlForRegisteredUser",
                               f"only ExperienceConfiguration.Dashboard is run locally, not {sorted(experience)}")
        user_arn = params.get("UserArn") or ""
        if self.engine.user(user_arn) is None:
            raise QuickSightUserNotFoundException(f"The user {user_arn} is not found.")
        dashboard_id = experience["Dashboard"].get("InitialDashboardId") or ""
        self._dashboard(dashboard_id)
        minutes = self._lifetime(params)
        # QuickSight checks the dashboard's permissions when the page opens, not here: a user
        # without access gets a URL whose page says so (see web_request).
        return self._reply({"EmbedUrl": self._mint(dashboard_id, user_arn, minutes, {dashboard_id})})

    @operation("GenerateEmbedUrlForAnonymousUser")
    def generate_embed_url_for_anonymous_user(self, req):
        params = {**req.params, **self._check_account(req)}
        experience = params.get("ExperienceConfiguration") or {}
        if "Dashboard" not in experience:
            raise not_emulated("quicksight", "GenerateEmbedUrlForAnonymousUser",
                               f"only ExperienceConfiguration.Dashboard is run locally, not {sorted(experience)}")
        namespace = params.get("Namespace") or "default"
        if namespace != "default":
            raise errors.ResourceNotFoundException(f"Namespace {namespace} is not found.",
                                                   extra={"ResourceType": "NAMESPACE"})
        if params.get("SessionTags"):
            raise not_emulated("quicksight", "GenerateEmbedUrlForAnonymousUser",
                               "SessionTags (tag-based row-level security) are not run locally")
        dashboard_id = experience["Dashboard"].get("InitialDashboardId") or ""
        allowed = set()
        for arn in params.get("AuthorizedResourceArns") or []:
            allowed.add(self._dashboard(arn.rsplit("/", 1)[-1])["DashboardId"])
        self._dashboard(dashboard_id)
        if dashboard_id not in allowed:
            raise errors.InvalidParameterValueException(
                f"InitialDashboardId {dashboard_id} must be one of the AuthorizedResourceArns.")
        minutes = self._lifetime(params)
        anonymous = self._arn("user/default", f"anonymous-{uuid.uuid4().hex[:12]}")
        url = self._mint(dashboard_id, anonymous, minutes, allowed, anonymous=True)
        return self._reply({"EmbedUrl": url, "AnonymousUserArn": anonymous})

    # ==================================================================== the page
    def web_request(self, path: str, query: dict, cookies: dict):
        """Answer one GET of the dashboard server (see ``web.py`` for the routes)."""
        parts = [urllib.parse.unquote(p) for p in path.strip("/").split("/")]
        if parts == ["static", "vega.js"]:
            return 200, [("Content-Type", "text/javascript; charset=utf-8")], web.vega_bundle()
        if len(parts) == 4 and parts[0] == "embed" and parts[2] == "dashboards":
            return self._redeem(parts[1], parts[3])
        session = self._session(cookies.get(web.SESSION_COOKIE))
        if len(parts) == 2 and parts[0] == "dashboards":
            if session is None:
                return web.message_page(401, "Session expired",
                                        "Your session has expired or this link is not valid. "
                                        "Ask the application for a new embed URL.")
            return self._page(session, parts[1])
        if len(parts) == 5 and parts[:2] == ["api", "dashboards"] and parts[3] == "visuals":
            if session is None:
                return web.json_response(401, {"message": "The session has expired."})
            return self._visual(session, parts[2], parts[4], query)
        return web.message_page(404, "Not found", "There is no page here.")

    def _redeem(self, code: str, dashboard_id: str):
        with self._dash["lock"]:
            grant = self._dash["codes"].pop(code, None)       # one use: gone once tried
        if grant is None or self._now() >= grant["issued"] + EMBED_CODE_SECONDS:
            return web.message_page(401, "Link expired",
                                    "This embed URL has expired or was already used: an embed URL works "
                                    "once, within 5 minutes of being generated.")
        sid = secrets.token_urlsafe(24)
        with self._dash["lock"]:
            self._dash["sessions"][sid] = {**grant, "expires": self._now() + grant["minutes"] * 60}
        return web.redirect(f"/dashboards/{urllib.parse.quote(dashboard_id)}", sid, grant["minutes"] * 60)

    def _session(self, sid: str | None) -> dict | None:
        with self._dash["lock"]:
            session = self._dash["sessions"].get(sid or "")
            if session is not None and self._now() >= session["expires"]:
                del self._dash["sessions"][sid]
                session = None
        return session

    def _allowed(self, session: dict, dashboard_id: str) -> bool:
        if dashboard_id not in session["dashboards"] and not session.get("console"):
            return False
        if session["anonymous"]:
            return True
        return self.can_view(dashboard_id, session["user"])

    def _published(self, dashboard_id: str) -> tuple[dict, defn.Model] | None:
        record = self._dashboard(dashboard_id)
        if record["Published"] is None:
            return None
        version = self._version(record, record["Published"])
        return record, defn.parse(version["Definition"])

    def _page(self, session: dict, dashboard_id: str):
        try:
            if not self._allowed(session, dashboard_id):
                return web.message_page(403, "Not authorized", "You don't have access to this dashboard. "
                                        "Ask its owner to share it with you.")
            published = self._published(dashboard_id)
        except errors.ResourceNotFoundException:
            return web.message_page(404, "Not found", "This dashboard doesn't exist.")
        if published is None:
            return web.message_page(409, "Not available", "This dashboard has no published version.")
        record, model = published
        sheets = [{"id": s.sheet_id, "name": s.name,
                   "visuals": [{"id": v, "type": model.visuals[v].type, "title": model.visuals[v].title}
                               for v in s.visual_ids],
                   "controls": self._controls(model, s, session["user"])} for s in model.sheets]
        page = web.render_page(dashboard_id, record["Name"], sheets)
        return 200, [("Content-Type", "text/html; charset=utf-8")], page

    def _controls(self, model: defn.Model, sheet: defn.Sheet, viewer: str) -> list[dict]:
        """The sheet's dropdowns, with the values they offer (from the data when not listed)."""
        controls = []
        filters = {f.filter_id: f for f in model.filters}
        for c in sheet.controls:
            if c.kind == "parameter":
                selected = [str(v) for v in model.parameters[c.source].defaults]
                link = c.link
            else:
                flt = filters[c.source]
                selected = [str(v) for v in flt.values]
                link = c.link or (flt.dataset, flt.column)
            options = [str(v) for v in c.values]
            if not options and link:
                ds = model.dataset_id(link[0])
                if link[1] not in dict(self.engine.columns(ds, viewer)):
                    continue                        # a column the viewer may not see: no control
                _, rows = self.engine.query(ds, f"SELECT DISTINCT {defn.quote(link[1])} AS v FROM dataset "
                                                f"WHERE {defn.quote(link[1])} IS NOT NULL ORDER BY 1 LIMIT 1000", viewer)
                options = [str(defn.json_value(r[0])) for r in rows]
            controls.append({"id": c.control_id, "kind": c.kind, "source": c.source, "title": c.title,
                             "multi": c.multi, "options": options, "selected": selected})
        return controls

    def _visual(self, session: dict, dashboard_id: str, visual_id: str, query: dict):
        try:
            if not self._allowed(session, dashboard_id):
                return web.json_response(403, {"message": "You don't have access to this dashboard."})
            published = self._published(dashboard_id)
        except errors.ResourceNotFoundException:
            return web.json_response(404, {"message": f"Dashboard {dashboard_id} is not found."})
        if published is None or visual_id not in published[1].visuals:
            return web.json_response(404, {"message": f"Visual {visual_id} is not found."})
        model, viewer = published[1], session["user"]
        try:
            return web.json_response(200, self.visual_payload(model, visual_id, viewer, query))
        except errors.AccessDeniedException as exc:
            return web.json_response(200, {"visualId": visual_id, "restricted": True, "message": exc.message})
        except (ValueError, errors.InvalidParameterValueException) as exc:
            return web.json_response(400, {"message": f"Invalid control value: {exc}"})

    def visual_payload(self, model: defn.Model, visual_id: str, viewer: str | None, selections: dict) -> dict:
        """What the page receives for one visual: its fields, rows and Vega-Lite spec.

        Runs the visual's SQL with ``engine.query(..., viewer)``; a field over a column the
        viewer may not see is never queried: the visual is replaced by QuickSight's restricted
        message, or (a table's Values) its cells read "Not Authorized".
        """
        visual = model.visuals[visual_id]
        ds = model.dataset_id(visual.dataset)
        visible = dict(self.engine.columns(ds, viewer))
        hidden = [f for f in visual.fields if f.column not in visible]
        blocking = [f for f in hidden if not (visual.type == "table" and f.role in ("measure", "value"))]
        shown = [f for f in visual.fields if f not in hidden]
        if blocking or not [f for f in shown if f.role in ("measure", "value")]:
            return {"visualId": visual_id, "type": visual.type, "restricted": True,
                    "message": defn.RESTRICTED_MESSAGE}
        allowed = defn.Visual(**{**visual.__dict__,
                                 "measures": [f for f in visual.measures if f not in hidden],
                                 "values": [f for f in visual.values if f not in hidden],
                                 "sort": [s for s in visual.sort if s[0] in {f.field_id for f in shown}]})
        sql = defn.visual_sql(model, allowed, visible, selections)
        names, rows = self.engine.query(ds, sql, viewer)
        records = []
        for row in rows:
            record = {name: defn.json_value(value) for name, value in zip(names, row)}
            record.update({f.field_id: defn.NOT_AUTHORIZED for f in hidden})
            records.append(record)
        fields = [{"id": f.field_id, "label": defn.label(f), "role": f.role} for f in visual.fields]
        return {"visualId": visual_id, "type": visual.type, "title": visual.title, "fields": fields,
                "rows": records, "spec": defn.vega_lite_spec(allowed, records)}

    # ==================================================================== local hooks
    @local_hook(ON_AWS_OPEN)
    def open_url(self, dashboard_id: str, user: str, minutes: int = 60) -> str:
        """A one-time URL that opens the dashboard as ``user`` (a user name or ARN), like an embed URL."""
        found = self.engine.user(user)
        if found is None:
            raise QuickSightUserNotFoundException(f"The user {user} is not found.")
        arn = found.get("Arn") or user
        self._dashboard(dashboard_id)
        return self._mint(dashboard_id, arn, minutes, {dashboard_id})

    @local_hook("On AWS, open the EmbedUrl in a browser (or an iframe of your page) and take the "
                "screenshot there; QuickSight also exports dashboards as PDF from the console.")
    def screenshot(self, url: str, width: int = 1100, height: int = 700) -> bytes:
        """A PNG of the page at ``url`` (an embed URL: it is used up), once every visual is drawn.

        The browser runs on a thread of its own (``core.browser.with_browser``), so this works in
        a Jupyter kernel too.
        """
        from localaws.core.browser import new_page, with_browser

        def shoot(browser) -> bytes:
            page = new_page(browser, width, height)
            page.goto(url)
            page.wait_for_selector("body[data-rendered='true']", timeout=60_000)
            return page.screenshot(full_page=False)

        return with_browser(shoot, timeout=120)

    @local_hook("On AWS, the embedded page's data requests are internal to QuickSight; read the "
                "numbers from the data set with Athena (or the analysis's table visual) instead.")
    def visual_data(self, url: str, visual_id: str, selections: dict | None = None):
        """The rows the page at ``url`` receives for ``visual_id``, as a DataFrame (no browser).

        The first call redeems the embed URL (as the browser would) and keeps that session for
        later calls with the same ``url``. ``selections``: control values, e.g.
        ``{"p.Region": ["East"]}`` or ``{"f.region-filter": ["West"]}``.
        """
        import pandas as pd
        with self._dash["lock"]:
            opener = self._dash["openers"].get(url)
        if opener is None:
            opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))
            try:
                with opener.open(url) as page:        # redeem the code: the cookie lands in the jar
                    page.read()
            except urllib.error.HTTPError as exc:     # the page refused: say why, as it does
                if exc.code != 403:
                    text = exc.read().decode("utf-8", "replace")
                    found = re.search(r"<p class='qs-message'>(.*?)</p>", text)
                    raise PermissionError(html.unescape(found.group(1)) if found else str(exc)) from None
            with self._dash["lock"]:
                self._dash["openers"][url] = opener
        parts = urllib.parse.urlsplit(url)
        dashboard_id = urllib.parse.unquote(parts.path.rstrip("/").rsplit("/", 1)[-1])
        query = urllib.parse.urlencode([(k, v) for k, vs in (selections or {}).items() for v in (vs or [""])])
        data_url = (f"{parts.scheme}://{parts.netloc}/api/dashboards/{urllib.parse.quote(dashboard_id)}"
                    f"/visuals/{urllib.parse.quote(visual_id)}?{query}")
        try:
            with opener.open(data_url) as response:
                payload = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            raise PermissionError(json.loads(exc.read()).get("message", str(exc))) from None
        if payload.get("restricted"):
            raise PermissionError(payload["message"])
        columns = [f["id"] for f in payload["fields"]]
        return pd.DataFrame([[r.get(c) for c in columns] for r in payload["rows"]], columns=columns)
