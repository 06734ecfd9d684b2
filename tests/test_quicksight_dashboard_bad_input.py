"""Bad input to QuickSight analyses, dashboards and embed URLs: QuickSight's error shapes,
and nothing written (no analysis, dashboard, version, permission or session left behind)."""
from __future__ import annotations

import copy
import urllib.error
import urllib.request
from http.cookiejar import CookieJar

import pytest
from botocore.exceptions import ClientError

from test_quicksight_dashboards import (ACCOUNT, REGION, VIEW, dashboard, embed, sales_definition,  # noqa: F401
                                        user_arn, world)


def browser():
    """A URL opener that keeps cookies, as a browser does."""
    return urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))


def code_of(err) -> str:
    return err.value.response["Error"]["Code"]


def analysis_ids(qs):
    return {a["AnalysisId"] for a in qs.list_analyses(AwsAccountId=ACCOUNT)["AnalysisSummaryList"]}


def dashboard_ids(qs):
    return {d["DashboardId"] for d in qs.list_dashboards(AwsAccountId=ACCOUNT)["DashboardSummaryList"]}


def test_dashboard_from_a_missing_analysis(qs, world):
    """Publishing reads DescribeAnalysisDefinition first: a missing analysis stops it there."""
    with pytest.raises(ClientError) as err:
        qs.describe_analysis_definition(AwsAccountId=ACCOUNT, AnalysisId=f"missing-{world['suffix']}")
    assert code_of(err) == "ResourceNotFoundException"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert f"missing-{world['suffix']}" not in dashboard_ids(qs)


def test_dashboard_over_a_missing_data_set_fails_as_quicksight_records_it(qs, world):
    """QuickSight creates the version and reports CREATION_FAILED with DATA_SET_NOT_FOUND:
    nothing is published and the page has no data to serve."""
    did = f"db-nods-{world['suffix']}"
    missing = f"arn:aws:quicksight:{REGION}:{ACCOUNT}:dataset/no-such-{world['suffix']}"
    qs.create_dashboard(AwsAccountId=ACCOUNT, DashboardId=did, Name="x", Definition=sales_definition(missing),
                        Permissions=[{"Principal": user_arn("qs-alice"), "Actions": VIEW}])
    version = qs.describe_dashboard(AwsAccountId=ACCOUNT, DashboardId=did)["Dashboard"]["Version"]
    assert version["Status"] == "CREATION_FAILED"
    assert [e["Type"] for e in version["Errors"]] == ["DATA_SET_NOT_FOUND"]
    summary = [d for d in qs.list_dashboards(AwsAccountId=ACCOUNT)["DashboardSummaryList"] if d["DashboardId"] == did]
    assert "PublishedVersionNumber" not in summary[0]
    with pytest.raises(ClientError) as err:
        qs.update_dashboard_published_version(AwsAccountId=ACCOUNT, DashboardId=did, VersionNumber=1)
    assert code_of(err) == "InvalidParameterValueException"
    qs.delete_dashboard(AwsAccountId=ACCOUNT, DashboardId=did)


def test_field_not_in_the_data_set(qs, world):
    """A column the data set lacks: CREATION_FAILED, COLUMN_REPLACEMENT_MISSING naming it."""
    aid = f"an-badcol-{world['suffix']}"
    definition = sales_definition(world["sales"])
    bar = definition["Sheets"][0]["Visuals"][0]["BarChartVisual"]
    bar["ChartConfiguration"]["FieldWells"]["BarChartAggregatedFieldWells"]["Category"][0][
        "CategoricalDimensionField"]["Column"]["ColumnName"] = "no_such_column"
    qs.create_analysis(AwsAccountId=ACCOUNT, AnalysisId=aid, Name="bad", Definition=definition)
    described = qs.describe_analysis(AwsAccountId=ACCOUNT, AnalysisId=aid)["Analysis"]
    assert described["Status"] == "CREATION_FAILED"
    assert described["Errors"][0]["Type"] == "COLUMN_REPLACEMENT_MISSING"
    assert "'no_such_column'" in described["Errors"][0]["Message"]
    qs.delete_analysis(AwsAccountId=ACCOUNT, AnalysisId=aid, ForceDeleteWithoutRecovery=True)


@pytest.mark.parametrize("breakage, words", [
    ("undeclared", "DataSetIdentifier 'other'"),
    ("visual_type", "ScatterPlotVisual"),
    ("sort", "FieldId 'nope'"),
])
def test_inconsistent_definition_is_rejected_and_nothing_is_written(qs, world, breakage, words):
    aid = f"an-{breakage}-{world['suffix']}"
    definition = copy.deepcopy(sales_definition(world["sales"]))
    visuals = definition["Sheets"][0]["Visuals"]
    if breakage == "undeclared":
        visuals[0]["BarChartVisual"]["ChartConfiguration"]["FieldWells"]["BarChartAggregatedFieldWells"][
            "Category"][0]["CategoricalDimensionField"]["Column"]["DataSetIdentifier"] = "other"
    elif breakage == "visual_type":
        visuals.append({"ScatterPlotVisual": {"VisualId": "scatter"}})
    else:
        visuals[0]["BarChartVisual"]["ChartConfiguration"]["SortConfiguration"]["CategorySort"][0][
            "FieldSort"]["FieldId"] = "nope"
    with pytest.raises(ClientError) as err:
        qs.create_analysis(AwsAccountId=ACCOUNT, AnalysisId=aid, Name="bad", Definition=definition)
    assert code_of(err) == "InvalidParameterValueException"
    assert words in err.value.response["Error"]["Message"]
    assert aid not in analysis_ids(qs)


def test_permissions_for_an_unknown_user(qs, dashboard):
    before = qs.describe_dashboard_permissions(AwsAccountId=ACCOUNT, DashboardId=dashboard["id"])["Permissions"]
    with pytest.raises(ClientError) as err:
        qs.update_dashboard_permissions(
            AwsAccountId=ACCOUNT, DashboardId=dashboard["id"],
            GrantPermissions=[{"Principal": user_arn("qs-alice"), "Actions": ["quicksight:UpdateDashboard"]},
                              {"Principal": user_arn("nobody-here"), "Actions": VIEW}])
    assert code_of(err) == "InvalidParameterValueException"
    assert "not valid QuickSight users" in err.value.response["Error"]["Message"]
    after = qs.describe_dashboard_permissions(AwsAccountId=ACCOUNT, DashboardId=dashboard["id"])["Permissions"]
    assert after == before                               # the valid half was not applied either


def test_embed_url_for_an_unknown_user_or_bad_lifetime(qs, dashboard):
    with pytest.raises(ClientError) as err:
        embed(qs, dashboard["id"], "nobody-here")
    assert code_of(err) == "QuickSightUserNotFoundException"
    with pytest.raises(ClientError) as err:
        embed(qs, dashboard["id"], "qs-alice", minutes=601)
    assert code_of(err) == "SessionLifetimeInMinutesInvalidException"
    with pytest.raises(ClientError) as err:
        embed(qs, "no-such-dashboard", "qs-alice")
    assert code_of(err) == "ResourceNotFoundException"


def test_embed_url_for_a_user_without_access(qs, dashboard):
    """The call succeeds; the page (and every data request) says the user has no access."""
    url = embed(qs, dashboard["id"], "qs-carol")
    with pytest.raises(urllib.error.HTTPError) as err:
        browser().open(url)
    assert err.value.code == 403
    assert b"Not authorized" in err.value.read()


def test_replayed_embed_url_opens_nothing(qs, dashboard):
    url = embed(qs, dashboard["id"], "qs-alice")
    assert b"data-visual-id" in browser().open(url).read()
    with pytest.raises(urllib.error.HTTPError) as err:
        browser().open(url)
    assert err.value.code == 401
    assert "Set-Cookie" not in err.value.headers        # no session was made
