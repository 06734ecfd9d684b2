"""QuickSight analyses, dashboards, permissions, versions and embed URLs (no browser).

One small data set (S3 CSV, imported into SPICE) with a column only one user may see (CLS)
and a rules data set giving each user their regions (RLS). Every value the page would show is
read from the page's own data endpoint (``stack.local.quicksight.visual_data``) and compared
with pandas over the same rows.
"""
from __future__ import annotations

import json
import urllib.error
import urllib.request
from http.cookiejar import CookieJar

import pandas as pd
import pytest
from botocore.exceptions import ClientError

from localaws.core.waiting import wait_until

ACCOUNT = "123456789012"
REGION = "us-east-1"
SALES = pd.DataFrame({
    "region": ["East", "East", "West", "West", "North", "East", "North", "West"],
    "product": ["tea", "coffee", "tea", "cake", "tea", "cake", "coffee", "coffee"],
    "amount": [10.0, 20.5, 7.25, 30.0, 12.0, 5.5, 8.0, 14.75],
    "quantity": [1, 2, 1, 3, 2, 1, 1, 2],
    "margin": [3.0, 6.0, 2.0, 9.0, 4.0, 1.5, 2.5, 4.5],
})
RULES = pd.DataFrame({"UserName": ["qs-alice", "qs-bob", "qs-bob"], "region": ["", "East", "West"]})


def user_arn(name: str) -> str:
    return f"arn:aws:quicksight:{REGION}:{ACCOUNT}:user/default/{name}"


def group_arn(name: str) -> str:
    return f"arn:aws:quicksight:{REGION}:{ACCOUNT}:group/default/{name}"


def dataset_arn(ident: str) -> str:
    return f"arn:aws:quicksight:{REGION}:{ACCOUNT}:dataset/{ident}"


VIEW = ["quicksight:DescribeDashboard", "quicksight:QueryDashboard", "quicksight:ListDashboardVersions"]


def _csv_dataset(qs, s3, bucket, name, frame, columns, extra=None):
    s3.put_object(Bucket=bucket, Key=f"{name}/data.csv", Body=frame.to_csv(index=False).encode())
    manifest = {"fileLocations": [{"URIs": [f"s3://{bucket}/{name}/data.csv"]}],
                "globalUploadSettings": {"format": "CSV", "containsHeader": "true", "delimiter": ","}}
    s3.put_object(Bucket=bucket, Key=f"{name}/manifest.json", Body=json.dumps(manifest).encode())
    source = qs.create_data_source(
        AwsAccountId=ACCOUNT, DataSourceId=f"{name}-src", Name=name, Type="S3",
        DataSourceParameters={"S3Parameters": {"ManifestFileLocation": {"Bucket": bucket,
                                                                        "Key": f"{name}/manifest.json"}}})
    qs.create_data_set(
        AwsAccountId=ACCOUNT, DataSetId=name, Name=name, ImportMode="SPICE",
        PhysicalTableMap={"t": {"S3Source": {
            "DataSourceArn": source["Arn"],
            "UploadSettings": {"Format": "CSV", "ContainsHeader": True, "Delimiter": ","},
            "InputColumns": [{"Name": n, "Type": t} for n, t in columns]}}},
        **(extra or {}))
    assert wait_until(lambda: qs.list_ingestions(AwsAccountId=ACCOUNT, DataSetId=name)["Ingestions"][0]
                      ["IngestionStatus"] in ("COMPLETED", "FAILED"), timeout=60)
    assert qs.list_ingestions(AwsAccountId=ACCOUNT, DataSetId=name)["Ingestions"][0]["IngestionStatus"] == "COMPLETED"
    return dataset_arn(name)


@pytest.fixture(scope="module")
def world(stack, qs, unique):
    """Users, a group, the sales data set (CLS on margin, RLS by region) and its rules."""
    s3 = stack.client("s3")
    bucket = unique("qs-dash")
    s3.create_bucket(Bucket=bucket)
    suffix = bucket.rsplit("-", 1)[-1]
    for name in ("qs-alice", "qs-bob", "qs-carol"):
        try:
            qs.register_user(AwsAccountId=ACCOUNT, Namespace="default", IdentityType="QUICKSIGHT",
                             UserName=name, Email=f"{name}@example.com", UserRole="READER")
        except qs.exceptions.ResourceExistsException:
            pass
    group = f"viewers-{suffix}"
    qs.create_group(AwsAccountId=ACCOUNT, Namespace="default", GroupName=group)
    qs.create_group_membership(AwsAccountId=ACCOUNT, Namespace="default", GroupName=group, MemberName="qs-bob")
    rules = _csv_dataset(qs, s3, bucket, f"rules-{suffix}", RULES, [("UserName", "STRING"), ("region", "STRING")])
    sales = _csv_dataset(
        qs, s3, bucket, f"sales-{suffix}", SALES,
        [("region", "STRING"), ("product", "STRING"), ("amount", "DECIMAL"), ("quantity", "INTEGER"),
         ("margin", "DECIMAL")],
        {"ColumnLevelPermissionRules": [{"Principals": [user_arn("qs-alice")], "ColumnNames": ["margin"]}],
         "RowLevelPermissionDataSet": {"Arn": rules, "PermissionPolicy": "GRANT_ACCESS", "Status": "ENABLED"}})
    return {"sales": sales, "group": group, "suffix": suffix}


def sales_definition(sales_arn: str, *, margin: bool = True) -> dict:
    """Two sheets: a bar chart of amount by region with a region filter bound to a parameter
    dropdown, a KPI, a pie; a table with the CLS column on the second sheet."""
    col = lambda name: {"DataSetIdentifier": "sales", "ColumnName": name}  # noqa: E731
    values = [{"NumericalMeasureField": {"FieldId": "amount_sum", "Column": col("amount"),
                                         "AggregationFunction": {"SimpleNumericalAggregation": "SUM"}}}]
    table_values = [{"NumericalMeasureField": {"FieldId": "quantity_sum", "Column": col("quantity"),
                                               "AggregationFunction": {"SimpleNumericalAggregation": "SUM"}}}]
    if margin:
        table_values.append({"NumericalMeasureField": {"FieldId": "margin_avg", "Column": col("margin"),
                             "AggregationFunction": {"SimpleNumericalAggregation": "AVERAGE"}}})
    return {
        "DataSetIdentifierDeclarations": [{"Identifier": "sales", "DataSetArn": sales_arn}],
        "ParameterDeclarations": [{"StringParameterDeclaration": {
            "ParameterValueType": "MULTI_VALUED", "Name": "Region", "DefaultValues": {"StaticValues": []}}}],
        "FilterGroups": [{
            "FilterGroupId": "fg-region", "CrossDataset": "SINGLE_DATASET", "Status": "ENABLED",
            "Filters": [{"CategoryFilter": {"FilterId": "region-filter", "Column": col("region"),
                         "Configuration": {"CustomFilterConfiguration": {
                             "MatchOperator": "EQUALS", "ParameterName": "Region",
                             "NullOption": "NON_NULLS_ONLY"}}}}],
            "ScopeConfiguration": {"SelectedSheets": {"SheetVisualScopingConfigurations": [
                {"SheetId": "overview", "Scope": "SELECTED_VISUALS", "VisualIds": ["by-region", "total"]}]}}}],
        "Sheets": [
            {"SheetId": "overview", "Name": "Overview",
             "ParameterControls": [{"Dropdown": {
                 "ParameterControlId": "region-control", "Title": "Region", "SourceParameterName": "Region",
                 "Type": "MULTI_SELECT", "SelectableValues": {"LinkToDataSetColumn": col("region")}}}],
             "Visuals": [
                 {"BarChartVisual": {"VisualId": "by-region",
                                     "Title": {"FormatText": {"PlainText": "Amount by region"}},
                                     "ChartConfiguration": {
                                         "FieldWells": {"BarChartAggregatedFieldWells": {
                                             "Category": [{"CategoricalDimensionField": {
                                                 "FieldId": "region", "Column": col("region")}}],
                                             "Values": values}},
                                         "SortConfiguration": {"CategorySort": [
                                             {"FieldSort": {"FieldId": "region", "Direction": "ASC"}}]}}}},
                 {"KPIVisual": {"VisualId": "total", "ChartConfiguration": {"FieldWells": {"Values": values}}}},
                 {"PieChartVisual": {"VisualId": "by-product", "ChartConfiguration": {
                     "FieldWells": {"PieChartAggregatedFieldWells": {
                         "Category": [{"CategoricalDimensionField": {"FieldId": "product",
                                                                     "Column": col("product")}}],
                         "Values": [{"CategoricalMeasureField": {"FieldId": "orders", "Column": col("product"),
                                                                 "AggregationFunction": "COUNT"}}]}}}}},
             ]},
            {"SheetId": "detail", "Name": "Detail", "Visuals": [
                {"TableVisual": {"VisualId": "table", "ChartConfiguration": {"FieldWells": {
                    "TableAggregatedFieldWells": {
                        "GroupBy": [{"CategoricalDimensionField": {"FieldId": "product", "Column": col("product")}}],
                        "Values": table_values}}}}},
                {"LineChartVisual": {"VisualId": "margin-line", "ChartConfiguration": {"FieldWells": {
                    "LineChartAggregatedFieldWells": {
                        "Category": [{"CategoricalDimensionField": {"FieldId": "region", "Column": col("region")}}],
                        "Values": [{"NumericalMeasureField": {
                            "FieldId": "margin_max", "Column": col("margin" if margin else "amount"),
                            "AggregationFunction": {"SimpleNumericalAggregation": "MAX"}}}]}}}}},
            ]},
        ],
    }


@pytest.fixture(scope="module")
def dashboard(qs, world):
    """An analysis, published as a dashboard the group and alice may view (not carol)."""
    sid = world["suffix"]
    analysis_id, dashboard_id = f"an-{sid}", f"db-{sid}"
    qs.create_analysis(AwsAccountId=ACCOUNT, AnalysisId=analysis_id, Name="Sales analysis",
                       Definition=sales_definition(world["sales"]),
                       Permissions=[{"Principal": user_arn("qs-alice"),
                                     "Actions": ["quicksight:DescribeAnalysis", "quicksight:QueryAnalysis"]}])
    published = qs.describe_analysis_definition(AwsAccountId=ACCOUNT, AnalysisId=analysis_id)["Definition"]
    qs.create_dashboard(AwsAccountId=ACCOUNT, DashboardId=dashboard_id, Name="Sales", Definition=published,
                        Permissions=[{"Principal": user_arn("qs-alice"), "Actions": VIEW},
                                     {"Principal": group_arn(world["group"]), "Actions": VIEW}])
    return {"analysis": analysis_id, "id": dashboard_id}


def embed(qs, dashboard_id, user, minutes=60):
    return qs.generate_embed_url_for_registered_user(
        AwsAccountId=ACCOUNT, UserArn=user_arn(user), SessionLifetimeInMinutes=minutes,
        ExperienceConfiguration={"Dashboard": {"InitialDashboardId": dashboard_id}})["EmbedUrl"]


def expected_by_region(frame: pd.DataFrame) -> dict:
    return frame.groupby("region")["amount"].sum().round(6).to_dict()


# ------------------------------------------------------------------ analyses
def test_analysis_lifecycle(qs, world, dashboard):
    described = qs.describe_analysis(AwsAccountId=ACCOUNT, AnalysisId=dashboard["analysis"])["Analysis"]
    assert described["Status"] == "CREATION_SUCCESSFUL"
    assert described["DataSetArns"] == [world["sales"]]
    assert [s["SheetId"] for s in described["Sheets"]] == ["overview", "detail"]
    listed = {a["AnalysisId"] for a in qs.list_analyses(AwsAccountId=ACCOUNT)["AnalysisSummaryList"]}
    assert dashboard["analysis"] in listed
    perms = qs.describe_analysis_permissions(AwsAccountId=ACCOUNT, AnalysisId=dashboard["analysis"])
    assert perms["Permissions"] == [{"Principal": user_arn("qs-alice"),
                                     "Actions": ["quicksight:DescribeAnalysis", "quicksight:QueryAnalysis"]}]
    updated = qs.update_analysis_permissions(
        AwsAccountId=ACCOUNT, AnalysisId=dashboard["analysis"],
        GrantPermissions=[{"Principal": group_arn(world["group"]), "Actions": ["quicksight:DescribeAnalysis"]}],
        RevokePermissions=[{"Principal": user_arn("qs-alice"), "Actions": ["quicksight:QueryAnalysis"]}])
    assert {p["Principal"]: p["Actions"] for p in updated["Permissions"]} == {
        group_arn(world["group"]): ["quicksight:DescribeAnalysis"],
        user_arn("qs-alice"): ["quicksight:DescribeAnalysis"]}


def test_update_and_delete_analysis_with_recovery_window(stack, qs, world):
    analysis_id = f"an-del-{world['suffix']}"
    qs.create_analysis(AwsAccountId=ACCOUNT, AnalysisId=analysis_id, Name="to delete",
                       Definition=sales_definition(world["sales"]))
    answer = qs.update_analysis(AwsAccountId=ACCOUNT, AnalysisId=analysis_id, Name="renamed",
                                Definition=sales_definition(world["sales"], margin=False))
    assert answer["UpdateStatus"] == "UPDATE_IN_PROGRESS"
    described = qs.describe_analysis(AwsAccountId=ACCOUNT, AnalysisId=analysis_id)["Analysis"]
    assert (described["Name"], described["Status"]) == ("renamed", "UPDATE_SUCCESSFUL")
    deleted = qs.delete_analysis(AwsAccountId=ACCOUNT, AnalysisId=analysis_id, RecoveryWindowInDays=7)
    window = deleted["DeletionTime"] - stack.local.clock.now()
    assert 6.9 < window.total_seconds() / 86400 <= 7
    assert qs.describe_analysis(AwsAccountId=ACCOUNT, AnalysisId=analysis_id)["Analysis"]["Status"] == "DELETED"
    qs.restore_analysis(AwsAccountId=ACCOUNT, AnalysisId=analysis_id)
    assert qs.describe_analysis(AwsAccountId=ACCOUNT, AnalysisId=analysis_id)["Analysis"]["Status"] == "UPDATE_SUCCESSFUL"
    qs.delete_analysis(AwsAccountId=ACCOUNT, AnalysisId=analysis_id, ForceDeleteWithoutRecovery=True)
    with pytest.raises(qs.exceptions.ResourceNotFoundException):
        qs.describe_analysis(AwsAccountId=ACCOUNT, AnalysisId=analysis_id)


def test_template_source_is_not_emulated(qs, world):
    with pytest.raises(ClientError) as err:
        qs.create_analysis(AwsAccountId=ACCOUNT, AnalysisId=f"an-tpl-{world['suffix']}", Name="t",
                           SourceEntity={"SourceTemplate": {
                               "Arn": f"arn:aws:quicksight:{REGION}:{ACCOUNT}:template/x",
                               "DataSetReferences": [{"DataSetPlaceholder": "p", "DataSetArn": world["sales"]}]}})
    assert err.value.response["Error"]["Code"] == "NotImplemented"


# ------------------------------------------------------------------ dashboards and versions
def test_dashboard_versions_and_permissions(qs, world, dashboard):
    did = dashboard["id"]
    first = qs.describe_dashboard(AwsAccountId=ACCOUNT, DashboardId=did)["Dashboard"]
    assert first["Version"]["VersionNumber"] == 1 and first["Version"]["Status"] == "CREATION_SUCCESSFUL"
    definition = qs.describe_dashboard_definition(AwsAccountId=ACCOUNT, DashboardId=did)["Definition"]
    definition["Sheets"][0]["Name"] = "Overview v2"
    qs.update_dashboard(AwsAccountId=ACCOUNT, DashboardId=did, Name="Sales", Definition=definition,
                        VersionDescription="renamed sheet")
    versions = qs.list_dashboard_versions(AwsAccountId=ACCOUNT, DashboardId=did)["DashboardVersionSummaryList"]
    assert [v["VersionNumber"] for v in versions] == [1, 2]
    # a new version is not published until UpdateDashboardPublishedVersion
    assert qs.describe_dashboard(AwsAccountId=ACCOUNT, DashboardId=did)["Dashboard"]["Version"]["VersionNumber"] == 1
    qs.update_dashboard_published_version(AwsAccountId=ACCOUNT, DashboardId=did, VersionNumber=2)
    now = qs.describe_dashboard(AwsAccountId=ACCOUNT, DashboardId=did)["Dashboard"]
    assert now["Version"]["VersionNumber"] == 2 and now["Version"]["Sheets"][0]["Name"] == "Overview v2"
    summary = [d for d in qs.list_dashboards(AwsAccountId=ACCOUNT)["DashboardSummaryList"] if d["DashboardId"] == did]
    assert summary[0]["PublishedVersionNumber"] == 2
    qs.update_dashboard_published_version(AwsAccountId=ACCOUNT, DashboardId=did, VersionNumber=1)
    perms = qs.describe_dashboard_permissions(AwsAccountId=ACCOUNT, DashboardId=did)["Permissions"]
    assert {p["Principal"] for p in perms} == {user_arn("qs-alice"), group_arn(world["group"])}


# ------------------------------------------------------------------ the data endpoint
def test_embed_url_values_match_pandas(stack, qs, dashboard):
    url = embed(qs, dashboard["id"], "qs-alice")
    assert url.startswith("http://127.0.0.1:") and "/embed/" in url
    bars = stack.local.quicksight.visual_data(url, "by-region")
    assert dict(zip(bars["region"], bars["amount_sum"].round(6))) == expected_by_region(SALES)
    assert list(bars["region"]) == sorted(SALES["region"].unique())
    total = stack.local.quicksight.visual_data(url, "total")
    assert total["amount_sum"].iloc[0] == pytest.approx(SALES["amount"].sum())
    pie = stack.local.quicksight.visual_data(url, "by-product")
    assert dict(zip(pie["product"], pie["orders"])) == SALES.groupby("product").size().to_dict()
    table = stack.local.quicksight.visual_data(url, "table")
    expected = SALES.groupby("product").agg(q=("quantity", "sum"), m=("margin", "mean"))
    assert dict(zip(table["product"], table["margin_avg"].round(6))) == expected["m"].round(6).to_dict()
    # a parameter control narrows the bar chart and the KPI (its filter's scope), not the pie
    east = stack.local.quicksight.visual_data(url, "by-region", {"p.Region": ["East", "North"]})
    assert dict(zip(east["region"], east["amount_sum"].round(6))) == expected_by_region(
        SALES[SALES.region.isin(["East", "North"])])
    kpi = stack.local.quicksight.visual_data(url, "total", {"p.Region": ["West"]})
    assert kpi["amount_sum"].iloc[0] == pytest.approx(SALES[SALES.region == "West"]["amount"].sum())
    pie_again = stack.local.quicksight.visual_data(url, "by-product", {"p.Region": ["West"]})
    assert pie_again["orders"].sum() == len(SALES)


def test_cls_and_rls_per_user(stack, qs, dashboard):
    bob = embed(qs, dashboard["id"], "qs-bob")       # a member of the group; RLS: East and West
    bars = stack.local.quicksight.visual_data(bob, "by-region")
    assert dict(zip(bars["region"], bars["amount_sum"].round(6))) == expected_by_region(
        SALES[SALES.region.isin(["East", "West"])])
    # the table: margin is hidden from bob: its cells say "Not Authorized", its values never sent
    table = stack.local.quicksight.visual_data(bob, "table")
    assert set(table["margin_avg"]) == {"Not Authorized"}
    # a chart over the hidden column is not drawn at all
    with pytest.raises(PermissionError, match="don't have access"):
        stack.local.quicksight.visual_data(bob, "margin-line")
    # the raw JSON the browser would receive: no margin value anywhere in it
    session = _session(embed(qs, dashboard["id"], "qs-bob"))
    raw = _raw_json(session, dashboard["id"], "margin-line")
    assert "rows" not in raw and raw["restricted"] is True
    raw_table = json.dumps(_raw_json(session, dashboard["id"], "table"))
    assert "margin_avg" in raw_table
    for value in SALES.groupby("product")["margin"].mean():
        assert json.dumps(round(value, 6)) not in raw_table


def _session(url):
    """(opener holding the session cookie, base URL): what a browser has after opening ``url``."""
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))
    with opener.open(url) as page:
        assert b"data-visual-id" in page.read()
    return opener, url.split("/embed/")[0]


def _raw_json(session, dashboard_id, visual_id, query=""):
    opener, base = session
    with opener.open(f"{base}/api/dashboards/{dashboard_id}/visuals/{visual_id}?{query}") as r:
        return json.loads(r.read())


def test_embed_url_works_once_and_session_expires(stack, qs, dashboard):
    clock = stack.local.clock
    url = embed(qs, dashboard["id"], "qs-alice", minutes=15)
    base = url.split("/embed/")[0]
    assert stack.local.quicksight.visual_data(url, "total")["amount_sum"].iloc[0] == pytest.approx(SALES.amount.sum())
    with pytest.raises(urllib.error.HTTPError) as replay:          # the code was used
        urllib.request.urlopen(url)
    assert replay.value.code == 401
    late = embed(qs, dashboard["id"], "qs-alice", minutes=15)
    clock.advance(6 * 60)                                          # codes live 5 minutes
    with pytest.raises(urllib.error.HTTPError) as expired:
        urllib.request.urlopen(late)
    assert expired.value.code == 401
    clock.advance(10 * 60)                                         # 16 minutes: the session is over
    with pytest.raises(PermissionError, match="expired"):
        stack.local.quicksight.visual_data(url, "total")
    with pytest.raises(urllib.error.HTTPError):
        urllib.request.urlopen(f"{base}/api/dashboards/{dashboard['id']}/visuals/total")


def test_user_without_access_gets_a_page_that_says_so(stack, qs, dashboard):
    url = embed(qs, dashboard["id"], "qs-carol")
    with pytest.raises(PermissionError, match="don't have access"):
        stack.local.quicksight.visual_data(url, "total")


def test_anonymous_embedding(stack, qs, dashboard):
    dash_arn = f"arn:aws:quicksight:{REGION}:{ACCOUNT}:dashboard/{dashboard['id']}"
    answer = qs.generate_embed_url_for_anonymous_user(
        AwsAccountId=ACCOUNT, Namespace="default", AuthorizedResourceArns=[dash_arn],
        ExperienceConfiguration={"Dashboard": {"InitialDashboardId": dashboard["id"]}},
        SessionLifetimeInMinutes=15)
    assert answer["AnonymousUserArn"].startswith(f"arn:aws:quicksight:{REGION}:{ACCOUNT}:")
    # an anonymous viewer is in no row-level rule: RLS shows no rows; CLS hides margin
    assert stack.local.quicksight.visual_data(answer["EmbedUrl"], "by-region").empty
