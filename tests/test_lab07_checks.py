"""The checks of lab 07 (``labs/07_quicksight``).

Most tests need no stack: the diagnoses of both steps are tested on hand-made
runs (what :func:`run_datasets` and :func:`run_dashboard` would have measured),
one per classic mistake, each with its own message. The last tests run the
checks end to end on the session's stack: the lab's solution passes both steps
(the dashboard read in headless Chromium), rules keyed by user leave the new
manager without rows, DENY_ACCESS shows each manager the other regions, and a
data set without column-level security lets the external analyst's browser
receive unit_cost, which the dashboard check finds in the payloads.
"""
from __future__ import annotations

import copy
import io
import os

import pytest

from localaws.core import browser
from localaws.grading import LabCheckFailed
from localaws.quicksight import labchecks
from localaws.quicksight.labchecks import Chart, DashboardRun, DataSetRun, View, Viewer

TRUTH = labchecks.sales()
ROWS = TRUTH["region"].value_counts().to_dict()
REVENUE = labchecks.revenue_by_category(TRUTH)
GRANT = {"Arn": "arn:aws:quicksight:us-east-1:123456789012:dataset/sales-rules", "PermissionPolicy": "GRANT_ACCESS"}
CLS = [{"Principals": ["arn:aws:quicksight:us-east-1:123456789012:group/default/sales-managers"],
        "ColumnNames": ["unit_cost"]}]
ALL_COLUMNS = [name for name, _ in labchecks.COLUMNS] + ["revenue"]
WITHOUT_COST = [c for c in ALL_COLUMNS if c != "unit_cost"]


def view(regions, columns=ALL_COLUMNS) -> View:
    return View(columns=list(columns), regions={r: ROWS[r] for r in regions})


def good_run(**changes) -> DataSetRun:
    """A step 1 run in which every viewer got what they should, then ``changes``."""
    run = DataSetRun(rules_columns=["GroupName", "region"], created={"rules": "sales-rules", "sales": "sales"},
                     import_mode="SPICE", ingestion={"IngestionStatus": "COMPLETED",
                                                     "RowInfo": {"RowsIngested": len(TRUTH)}},
                     owner=view(labchecks.REGIONS),
                     views={"dana": view(["East"]), "omar": view(["West"]), "lena": view(["East"]),
                            "xavier": view(labchecks.REGIONS, WITHOUT_COST)},
                     owner_revenue=dict(REVENUE.itertuples(index=False, name=None)),
                     cls_rules=copy.deepcopy(CLS), rls=dict(GRANT),
                     calculated={"revenue": "{units} * {unit_price}"})
    for name, value in changes.items():
        setattr(run, name, value)
    return run


def diagnosis(run) -> str:
    with pytest.raises(LabCheckFailed) as failed:
        (labchecks.diagnose_datasets if isinstance(run, DataSetRun) else labchecks.diagnose_dashboard)(run)
    return str(failed.value)


# ------------------------------------------------------------------ the data
def test_sales_are_seeded_and_each_region_has_its_own_leader():
    assert len(TRUTH) == labchecks.ORDERS == 1_800 and TRUTH.equals(labchecks.sales())
    assert list(TRUTH.columns) == [name for name, _ in labchecks.COLUMNS]
    assert set(TRUTH["order_month"]) == set(labchecks.MONTHS)
    assert (TRUTH["unit_cost"] < TRUTH["unit_price"]).all()
    leaders = {region: max(labchecks.expected_revenue(user).items(), key=lambda kv: kv[1])[0]
               for region, user in (("East", "dana"), ("West", "omar"))}
    assert leaders == {"East": "Technology", "West": "Outdoor"}
    april = labchecks.expected_revenue("xavier", labchecks.CHECK_MONTH)
    assert max(april, key=april.get) == "Outdoor"            # spring: Outdoor overtakes Technology


# ------------------------------------------------------------------ step 1: what went wrong
def test_a_clean_run_passes_and_is_summed_up():
    run = good_run()
    labchecks.diagnose_datasets(run)
    summary = labchecks.datasets_summary(run)
    assert summary.loc["dana", "East"] == ROWS["East"] and summary.loc["dana", "West"] == 0
    assert summary.loc["xavier", "unit_cost"] == "hidden" and summary.loc["dana", "unit_cost"] == "yes"


def test_a_failed_call_is_reported_with_aws_words():
    message = diagnosis(good_run(error="CreateDataSet (sales data set): InvalidParameterValueException: bad"))
    assert message.startswith("CreateDataSet (sales data set): InvalidParameterValueException: bad.")
    failed = diagnosis(good_run(error="the SPICE ingestion of the sales data set ended FAILED: x"))
    assert "PhysicalTableMap" in failed


def test_direct_query_is_caught_by_the_queries_it_ran():
    message = diagnosis(good_run(import_mode="DIRECT_QUERY", source_queries=11))
    assert message.startswith("the sales data set is DIRECT_QUERY (ImportMode)")
    assert "(11 in all)" in message and "ImportMode='SPICE'" in message


def test_a_missing_or_wrong_revenue_is_measured_against_pandas():
    message = diagnosis(good_run(owner=view(labchecks.REGIONS, WITHOUT_COST[:-1] + ["unit_cost"])))
    assert message.startswith("the data set has no column revenue")
    wrong = {c: v / 4 for c, v in REVENUE.itertuples(index=False, name=None)}
    message = diagnosis(good_run(owner_revenue=wrong, calculated={"revenue": "{unit_price}"}))
    first = REVENUE.iloc[0]
    assert message.startswith(f"revenue is wrong for 5 of 5 categories, e.g. {first['category']}: "
                              f"${first['revenue'] / 4:,.2f} in the data set, ${first['revenue']:,.2f}")
    assert "'{unit_price}'" in message


@pytest.mark.parametrize("rules, expected", [
    ([], "The data set has no ColumnLevelPermissionRules for unit_cost"),
    ([{"Principals": ["arn:aws:quicksight:us-east-1:123456789012:group/default/analysts-external"],
       "ColumnNames": ["unit_cost"]}], "Your rule for unit_cost lists group analysts-external"),
], ids=["no-rule", "principals-swapped"])
def test_unit_cost_reaching_the_outsider_names_the_cause(rules, expected):
    run = good_run(cls_rules=rules)
    run.views["xavier"] = view(labchecks.REGIONS)
    message = diagnosis(run)
    assert message.startswith("xavier (analysts-external) gets unit_cost: the data set sends them its 1,800 "
                              "purchase prices.")
    assert expected in message and labchecks.CLS_GUIDE in message


def test_a_calculated_field_that_gives_unit_cost_away_is_a_leak():
    message = diagnosis(good_run(leaks={"margin": 1_800}))
    assert message.startswith("xavier cannot see unit_cost, but gets 'margin', which gives it away in 1,800 of "
                              "1,800 rows")


def test_cls_naming_users_leaves_the_new_manager_without_unit_cost():
    users = [{"Principals": ["arn:aws:quicksight:us-east-1:123456789012:user/default/dana",
                             "arn:aws:quicksight:us-east-1:123456789012:user/default/omar"],
              "ColumnNames": ["unit_cost"]}]
    run = good_run(cls_rules=users)
    run.views["lena"] = view(["East"], WITHOUT_COST)
    message = diagnosis(run)
    assert message.startswith("lena (sales-managers) does not get unit_cost: the rule for it lists user dana, "
                              "user omar")
    assert "a rule naming users has to be edited for every new manager" in message


def test_rls_mistakes_each_get_their_explanation():
    everything = good_run(rls=None)
    everything.views["dana"] = view(labchecks.REGIONS)
    message = diagnosis(everything)
    assert message.startswith(f"dana (manager of East) gets 1,800 rows (Central {ROWS['Central']}, East "
                              f"{ROWS['East']}, West {ROWS['West']}), not the {ROWS['East']} rows of East")
    assert "no RowLevelPermissionDataSet" in message

    deny = good_run(rls={**GRANT, "PermissionPolicy": "DENY_ACCESS"})
    deny.views["dana"] = view(["Central", "West"])
    assert "PermissionPolicy is DENY_ACCESS, so a rule *hides* the rows it matches" in diagnosis(deny)

    wrong_column = good_run(rules_columns=["GroupName", "category"])
    wrong_column.views["dana"] = View(columns=ALL_COLUMNS, regions={"Central": 69, "East": 162, "West": 95})
    message = diagnosis(wrong_column)
    assert "gets 326 rows (Central 69, East 162, West 95)" in message
    assert "your rules filter on category, not on region" in message

    by_user = good_run(rules_columns=["UserName", "region"])
    by_user.views["lena"] = View(columns=ALL_COLUMNS)
    message = diagnosis(by_user)
    assert message.startswith(f"lena (manager of East) gets 0 rows (no rows), not the {ROWS['East']} rows of East")
    assert "your rules name users (UserName), so she has no rule" in message and "Key the rules by GroupName" in message

    no_rule = good_run()
    no_rule.views["xavier"] = View(columns=WITHOUT_COST)
    message = diagnosis(no_rule)
    assert message.startswith("xavier (the external analyst) gets 0 rows (no rows), not the 1,800 rows")
    assert "A rule whose region is None (NULL) grants every region" in message


# ------------------------------------------------------------------ step 2: reading the definition
def test_the_chart_and_the_month_control_are_found_in_a_definition():
    definition = solution_dashboard("arn:aws:quicksight:us-east-1:123456789012:dataset/sales",
                                    "arn:x/sales-managers", "arn:x/analysts-external")["Definition"]
    chart = labchecks.find_chart(definition)
    assert chart == Chart("revenue-by-category", ("category", "category"), ("revenue", "revenue", "SUM"), ["region"])
    assert labchecks.find_month_control(definition) == ("month-control", "month-filter", "order_month")
    assert labchecks.find_chart({"Sheets": [{"Visuals": []}]}) is None
    assert labchecks.find_month_control({"Sheets": [{}]}) is None


def test_payloads_leak_only_authorized_unit_cost_values():
    shown = '{"fields": [{"id": "c", "label": "unit_cost (Average)"}], "rows": [{"c": 1.5}, {"c": 2.5}]}'
    masked = '{"fields": [{"id": "c", "label": "unit_cost"}], "rows": [{"c": "Not Authorized"}]}'
    restricted = '{"restricted": true, "message": "restricted field \'unit_cost\'"}'
    assert labchecks._leaked([shown, masked, restricted, "not json"]) == 2


# ------------------------------------------------------------------ step 2: what went wrong
CHART = Chart("revenue-by-category", ("category", "category"), ("revenue", "revenue", "SUM"), ["region"])
VIEWERS = {"dana": "dana", "xavier": "xavier", "omar": "omar", "lena": "lena"}


def seen(name, month=True, **changes) -> Viewer:
    v = Viewer(how="browser" if name in labchecks.IN_BROWSER else "data endpoint",
               drawn=labchecks.expected_revenue(name),
               drawn_month=labchecks.expected_revenue(name, labchecks.CHECK_MONTH) if month else None)
    for key, value in changes.items():
        setattr(v, key, value)
    return v


def good_dashboard(**changes) -> DashboardRun:
    run = DashboardRun(status="CREATION_SUCCESSFUL", chart=CHART,
                       control=("month-control", "month-filter", "order_month"),
                       permissions=[{"Principal": "arn:aws:quicksight:us-east-1:123456789012:group/default/"
                                                  f"{g}", "Actions": list(labchecks.VIEWER_ACTIONS)}
                                    for g in ("sales-managers", "analysts-external")],
                       viewers={name: seen(name) for name in VIEWERS})
    for key, value in changes.items():
        setattr(run, key, value)
    return run


def test_a_clean_dashboard_passes_and_is_summed_up():
    run = good_dashboard()
    labchecks.diagnose_dashboard(run)
    summary = labchecks.dashboard_summary(run)
    assert list(summary.index) == ["dana", "xavier", "omar", "lena"]
    assert summary.loc["dana", "top category"].startswith("Technology (")
    assert summary.loc["xavier", f"top in {labchecks.CHECK_MONTH}"].startswith("Outdoor (")
    assert summary["unit_cost values received"].tolist() == [0, 0, 0, 0]


def test_creation_problems_are_reported():
    assert diagnosis(good_dashboard(error="CreateDashboard: InvalidParameterValueException: x")).startswith(
        "CreateDashboard: InvalidParameterValueException: x. Nothing was created")
    failed = good_dashboard(status="CREATION_FAILED", version_errors=[{"Type": "COLUMN_REPLACEMENT_MISSING",
                                                                      "Message": "Required column 'revenu'"}])
    assert "CREATION_FAILED (COLUMN_REPLACEMENT_MISSING: Required column 'revenu')" in diagnosis(failed)
    assert "no BarChartVisual" in diagnosis(good_dashboard(chart=None))


def test_permissions_naming_users_shut_the_new_manager_out():
    run = good_dashboard(permissions=[{"Principal": f"arn:aws:quicksight:us-east-1:123456789012:user/default/{u}",
                                       "Actions": list(labchecks.VIEWER_ACTIONS)} for u in ("dana", "omar", "xavier")])
    run.viewers["lena"] = Viewer(how="data endpoint", opened="You don't have access to this dashboard.")
    message = diagnosis(run)
    assert message.startswith("lena (sales-managers, sales-east) could not open the dashboard (the page said: "
                              "You don't have access to this dashboard). Its Permissions grant user dana, "
                              "user omar, user xavier.")
    assert "permissions that name users must be edited for each new manager" in message


def test_unit_cost_in_the_outsiders_payloads_fails():
    run = good_dashboard()
    run.viewers["xavier"].payloads = ['{"fields": [{"id": "c", "label": "unit_cost"}], "rows": [{"c": 3.0}]}']
    assert diagnosis(run).startswith("xavier received 1 value(s) of unit_cost in the browser")


@pytest.mark.parametrize("chart, expected", [
    (Chart("v", ("category", "category"), ("revenue", "revenue", "AVERAGE")), "It aggregates with AVERAGE, not SUM."),
    (Chart("v", ("category", "category"), ("revenue", "unit_price", "SUM")), "Its Values field is 'unit_price'"),
    (Chart("v", ("category", "product"), ("revenue", "revenue", "SUM")), "Its Category field is 'product'"),
], ids=["average", "unit-price", "product"])
def test_a_chart_that_does_not_answer_is_measured_against_pandas(chart, expected):
    run = good_dashboard(chart=chart)
    east = labchecks.expected_revenue("dana")
    run.viewers["dana"] = seen("dana", drawn={c: v / 100 for c, v in east.items()})
    message = diagnosis(run)
    first = sorted(east)[0]
    assert message.startswith(f"the chart dana saw (browser) differs from pandas for 5 categories: {first}: "
                              f"${east[first] / 100:,.2f}, pandas ${east[first]:,.2f} (revenue of East).")
    assert expected in message


def test_the_month_control_must_exist_and_change_the_chart():
    assert "no filter control on order_month" in diagnosis(good_dashboard(control=None))
    assert "filters 'region', not order_month" in diagnosis(
        good_dashboard(control=("c", "f", "region")))
    run = good_dashboard()
    run.viewers["dana"] = seen("dana", drawn_month=labchecks.expected_revenue("dana"))
    message = diagnosis(run)
    assert message.startswith(f"after choosing {labchecks.CHECK_MONTH} in the control 'month-control', dana's chart")
    assert "The chart did not change at all" in message


def test_viewers_with_owner_actions_are_refused_once_everything_else_is_right():
    run = good_dashboard()
    run.permissions[0]["Actions"] += ["quicksight:DeleteDashboard"]
    message = diagnosis(run)
    assert message.startswith("the Permissions give group sales-managers owner actions (quicksight:DeleteDashboard)")


# ------------------------------------------------------------------ step 3
def test_the_written_answer_is_graded_lightly():
    with pytest.raises(LabCheckFailed, match="ANSWER must be a string"):
        labchecks.check_answer(None)
    with pytest.raises(LabCheckFailed, match="your answer has 3 words; write at least 60"):
        labchecks.check_answer("SPICE is fast")
    with pytest.raises(LabCheckFailed, match="SPICE is imported once"):
        labchecks.check_answer("The data set enforces it for every browser request. " * 12)
    labchecks.check_answer("On the data set, the browser never receives it; SPICE copies once, while direct "
                           "query asks Athena each time. " * 4)


# ------------------------------------------------------------------ end to end, on the stack
def solution_rules_dataset(source_arn: str) -> dict:
    return {"DataSetId": "sales-rules", "Name": "rules", "ImportMode": "SPICE",
            "PhysicalTableMap": {"rules": {"RelationalTable": {
                "DataSourceArn": source_arn, "Schema": "lab", "Name": "sales_rules",
                "InputColumns": [{"Name": "GroupName", "Type": "STRING"}, {"Name": "region", "Type": "STRING"}]}}}}


def solution_sales_dataset(stack, source_arn: str) -> dict:
    types = {"string": "STRING", "date": "DATETIME", "int": "INTEGER", "double": "DECIMAL"}
    return {"DataSetId": "sales", "Name": "Sales", "ImportMode": "SPICE",
            "PhysicalTableMap": {"orders": {"RelationalTable": {
                "DataSourceArn": source_arn, "Schema": "lab", "Name": "sales",
                "InputColumns": [{"Name": n, "Type": types[t]} for n, t in labchecks.COLUMNS]}}},
            "LogicalTableMap": {"orders": {"Alias": "orders", "Source": {"PhysicalTableId": "orders"},
                                           "DataTransforms": [{"CreateColumnsOperation": {"Columns": [
                                               {"ColumnName": "revenue", "ColumnId": "revenue",
                                                "Expression": "{units} * {unit_price}"}]}}]}},
            "ColumnLevelPermissionRules": [{"Principals": [labchecks.group_arn(stack, "sales-managers")],
                                            "ColumnNames": ["unit_cost"]}],
            "RowLevelPermissionDataSet": {"Arn": f"arn:aws:quicksight:{stack.region}:{stack.account_id}:"
                                                 "dataset/sales-rules", "PermissionPolicy": "GRANT_ACCESS"}}


RULES = [{"GroupName": "sales-east", "region": "East"}, {"GroupName": "sales-west", "region": "West"},
         {"GroupName": "sales-central", "region": "Central"}, {"GroupName": "analysts-external", "region": None}]


def solution_dashboard(dataset_arn: str, managers: str, outsiders: str) -> dict:
    def col(name):
        return {"DataSetIdentifier": "sales", "ColumnName": name}
    viewer = list(labchecks.VIEWER_ACTIONS)
    return {
        "DashboardId": "revenue-by-category", "Name": "Revenue by category",
        "Definition": {
            "DataSetIdentifierDeclarations": [{"Identifier": "sales", "DataSetArn": dataset_arn}],
            "Sheets": [{"SheetId": "overview", "Name": "Overview",
                        "Visuals": [{"BarChartVisual": {"VisualId": "revenue-by-category", "ChartConfiguration": {
                            "FieldWells": {"BarChartAggregatedFieldWells": {
                                "Category": [{"CategoricalDimensionField": {"FieldId": "category",
                                                                            "Column": col("category")}}],
                                "Values": [{"NumericalMeasureField": {
                                    "FieldId": "revenue", "Column": col("revenue"),
                                    "AggregationFunction": {"SimpleNumericalAggregation": "SUM"}}}],
                                "Colors": [{"CategoricalDimensionField": {"FieldId": "region",
                                                                          "Column": col("region")}}]}}}}}],
                        "FilterControls": [{"Dropdown": {"FilterControlId": "month-control", "Title": "Month",
                                                         "SourceFilterId": "month-filter",
                                                         "Type": "SINGLE_SELECT"}}]}],
            "FilterGroups": [{"FilterGroupId": "month", "CrossDataset": "SINGLE_DATASET",
                              "ScopeConfiguration": {"SelectedSheets": {"SheetVisualScopingConfigurations": [
                                  {"SheetId": "overview", "Scope": "ALL_VISUALS"}]}},
                              "Filters": [{"CategoryFilter": {
                                  "FilterId": "month-filter", "Column": col("order_month"),
                                  "Configuration": {"FilterListConfiguration": {"MatchOperator": "EQUALS"}}}}]}]},
        "Permissions": [{"Principal": managers, "Actions": viewer}, {"Principal": outsiders, "Actions": viewer}]}


@pytest.fixture(scope="module")
def lab(stack):
    """Step 0 of the lab on the session's stack: the orders in S3 and Athena, the data source, the people."""
    s3, athena, qs = stack.client("s3"), stack.client("athena"), stack.client("quicksight")
    account = stack.account_id
    for bucket in (labchecks.BUCKET, "lab-sales-athena-results"):
        s3.create_bucket(Bucket=bucket)
    parquet = io.BytesIO()
    TRUTH.to_parquet(parquet, index=False)
    s3.put_object(Bucket=labchecks.BUCKET, Key="sales/sales.parquet", Body=parquet.getvalue())
    athena.create_work_group(Name=labchecks.WORKGROUP, Configuration={
        "ResultConfiguration": {"OutputLocation": labchecks.RESULTS}})
    labchecks.run_athena(stack, "CREATE DATABASE IF NOT EXISTS lab", database="default")
    columns = ", ".join(f"{n} {t}" for n, t in labchecks.COLUMNS)
    labchecks.run_athena(stack, f"CREATE EXTERNAL TABLE sales ({columns}) STORED AS PARQUET "
                                f"LOCATION 's3://{labchecks.BUCKET}/sales/'")
    source = qs.create_data_source(AwsAccountId=account, DataSourceId="lab07-athena", Name="lab 07", Type="ATHENA",
                                   DataSourceParameters={"AthenaParameters": {"WorkGroup": labchecks.WORKGROUP}})
    for name, email in labchecks.USERS.items():
        qs.register_user(AwsAccountId=account, Namespace="default", IdentityType="QUICKSIGHT", UserRole="READER",
                         UserName=name, Email=email)
    for group, members in labchecks.GROUPS.items():
        qs.create_group(AwsAccountId=account, Namespace="default", GroupName=group)
        for member in members:
            qs.create_group_membership(AwsAccountId=account, Namespace="default", GroupName=group,
                                       MemberName=member)
    return {"source": source["Arn"],
            "rules": solution_rules_dataset(source["Arn"]),
            "sales": solution_sales_dataset(stack, source["Arn"]),
            "dashboard": solution_dashboard(f"arn:aws:quicksight:{stack.region}:{account}:dataset/sales",
                                            labchecks.group_arn(stack, "sales-managers"),
                                            labchecks.group_arn(stack, "analysts-external"))}


def needs_a_browser():
    reason = browser.missing_reason()
    if reason and os.environ.get("CI") != "true":
        pytest.skip(reason)


def test_the_solution_passes_both_steps_in_a_browser(stack, lab):
    needs_a_browser()
    views = labchecks.check_datasets(stack, RULES, lab["rules"], lab["sales"])
    assert views.loc["dana", "East"] == ROWS["East"] and views.loc["xavier", "unit_cost"] == "hidden"
    seen_ = labchecks.check_dashboard(stack, lab["dashboard"])
    assert seen_["read by"].to_dict() == {"dana": "browser", "xavier": "browser", "omar": "data endpoint",
                                          "lena": "data endpoint"}
    assert seen_.loc["omar", "top category"].startswith("Outdoor (")
    again = labchecks.check_dashboard(stack, lab["dashboard"], use_browser=False)   # runs again; no browser
    assert set(again["read by"]) == {"data endpoint"}
    users = stack.client("quicksight").list_users(AwsAccountId=stack.account_id, Namespace="default")["UserList"]
    assert "lena" not in {u["UserName"] for u in users}          # the check hired her, then let her go


def test_rules_keyed_by_user_leave_the_new_manager_without_rows(stack, lab):
    rules = [{"UserName": "dana", "region": "East"}, {"UserName": "omar", "region": "West"},
             {"UserName": "xavier", "region": None}]
    by_user = copy.deepcopy(lab["rules"])
    by_user["PhysicalTableMap"]["rules"]["RelationalTable"]["InputColumns"][0]["Name"] = "UserName"
    with pytest.raises(LabCheckFailed, match=r"lena \(manager of East\) gets 0 rows \(no rows\), not the "
                                             rf"{ROWS['East']} rows of East: lena joined"):
        labchecks.check_datasets(stack, rules, by_user, lab["sales"])


def test_deny_access_shows_each_manager_the_other_regions(stack, lab):
    deny = copy.deepcopy(lab["sales"])
    deny["RowLevelPermissionDataSet"]["PermissionPolicy"] = "DENY_ACCESS"
    with pytest.raises(LabCheckFailed, match=rf"dana \(manager of East\) gets {ROWS['Central'] + ROWS['West']:,} "
                                             rf"rows \(Central {ROWS['Central']}, West {ROWS['West']}\)"):
        labchecks.check_datasets(stack, RULES, lab["rules"], deny)


def test_without_cls_the_outsiders_browser_receives_unit_cost(stack, lab):
    """Step 1 would refuse this data set; step 2's payload check catches it on its own too."""
    needs_a_browser()
    no_cls = copy.deepcopy(lab["sales"])
    del no_cls["ColumnLevelPermissionRules"]
    run = labchecks.run_datasets(stack, RULES, lab["rules"], no_cls)
    assert "unit_cost" in run.views["xavier"].columns
    costs = copy.deepcopy(lab["dashboard"])
    costs["Definition"]["Sheets"][0]["Visuals"].append({"TableVisual": {"VisualId": "costs", "ChartConfiguration": {
        "FieldWells": {"TableAggregatedFieldWells": {
            "GroupBy": [{"CategoricalDimensionField": {"FieldId": "p", "Column": {
                "DataSetIdentifier": "sales", "ColumnName": "product"}}}],
            "Values": [{"NumericalMeasureField": {"FieldId": "cost", "Column": {
                "DataSetIdentifier": "sales", "ColumnName": "unit_cost"},
                "AggregationFunction": {"SimpleNumericalAggregation": "AVERAGE"}}}]}}}}})
    with pytest.raises(LabCheckFailed, match=r"xavier received \d+ value\(s\) of unit_cost in the browser"):
        labchecks.check_dashboard(stack, costs)
    labchecks.check_datasets(stack, RULES, lab["rules"], lab["sales"])     # with CLS: the table is restricted
    seen_ = labchecks.check_dashboard(stack, costs)
    received = seen_["unit_cost values received"]
    assert received["xavier"] == 0 and received["dana"] > 0


def test_a_margin_field_gives_unit_cost_away_although_the_column_is_hidden(stack, lab):
    margin = copy.deepcopy(lab["sales"])
    margin["LogicalTableMap"]["orders"]["DataTransforms"][0]["CreateColumnsOperation"]["Columns"].append(
        {"ColumnName": "margin", "ColumnId": "margin", "Expression": "({unit_price} - {unit_cost}) * {units}"})
    with pytest.raises(LabCheckFailed, match="xavier cannot see unit_cost, but gets 'margin', which gives it away "
                                             "in 1,800 of 1,800 rows"):
        labchecks.check_datasets(stack, RULES, lab["rules"], margin)
