"""The checks of lab 09 (``labs/09_lake_formation``).

Most tests need no stack: the diagnoses of both steps are tested on hand-made
runs (what :func:`run_grants` and :func:`run_tags` would have measured), one
per classic mistake, each with its own message. The last tests run the checks
end to end on the session's stack, in a lake of their own (unique database,
bucket, users and tag keys): the lab's solution passes both steps; a grant on
the table's columns next to the data cells filter lets the analyst read every
non-EU row; a filter created but never granted leaves the questions without a
table; a filter that excludes only the PII still gives columns no question
needs; and a planner granted inventory by name cannot read the new table.

AWS behaviour the checks rely on:
https://docs.aws.amazon.com/lake-formation/latest/dg/data-filters-about.html (SELECT on a data cells
filter gives its columns on its rows), https://docs.aws.amazon.com/lake-formation/latest/dg/lf-tag-considerations.html
(named-resource and LF-Tag permissions add up; tags are assigned after a resource exists),
https://docs.aws.amazon.com/lake-formation/latest/dg/partiql-support.html (IN and LIKE in row filters).
"""
from __future__ import annotations

import uuid

import pytest

from localaws.grading import LabCheckFailed
from localaws.lakeformation import labchecks
from localaws.lakeformation.labchecks import Answer, GrantRun, TableRead, TagRun

ORDERS = labchecks.orders()
EU = labchecks.eu_orders()
EXPECTED = labchecks.expected_answers()
EU_COUNTS = EU["region"].value_counts().to_dict()
ALL_COUNTS = ORDERS["region"].value_counts().to_dict()
ARN = "arn:aws:iam::123456789012:user/analyst"
FILTER = {"DatabaseName": "retail", "TableName": "orders", "Name": "eu",
          "RowFilter": {"FilterExpression": "region IN ('EU-North', 'EU-South', 'EU-West')"},
          "ColumnNames": list(labchecks.NEEDED)}
ON_FILTER = {"Principal": {"DataLakePrincipalIdentifier": ARN}, "Permissions": ["SELECT"],
             "Resource": {"DataCellsFilter": {"TableCatalogId": "123456789012", "DatabaseName": "retail",
                                              "TableName": "orders", "Name": "eu"}}}
ON_TABLE = {"Principal": {"DataLakePrincipalIdentifier": ARN}, "Permissions": ["SELECT"],
            "Resource": {"Table": {"DatabaseName": "retail", "Name": "orders"}}}


def good_run(**changes) -> GrantRun:
    """A step 1 run in which the analyst got exactly what it should, then ``changes``."""
    run = GrantRun(grants=[dict(ON_FILTER)], filters=[dict(FILTER)],
                   answers={name: Answer(frame.copy()) for name, frame in EXPECTED.items()},
                   star_columns=list(labchecks.NEEDED), star_rows=len(EU), rows_by_region=dict(EU_COUNTS),
                   pii_probes={c: None for c in labchecks.PII},
                   other_tables={"customers": None, "inventory": None},
                   other_reasons={"customers": "TABLE_NOT_FOUND: x", "inventory": "TABLE_NOT_FOUND: x"},
                   catalog={"orders": list(labchecks.NEEDED)},
                   s3={"s3://lab-lake/orders/part-0.parquet": "AccessDenied"})
    for name, value in changes.items():
        setattr(run, name, value)
    return run


def diagnosis(run) -> str:
    with pytest.raises(LabCheckFailed) as failed:
        (labchecks.diagnose_grants if isinstance(run, GrantRun) else labchecks.diagnose_tags)(run)
    return str(failed.value)


# ------------------------------------------------------------------ the data
def test_the_data_is_seeded_and_half_of_it_is_in_the_eu():
    assert ORDERS.equals(labchecks.orders()) and len(ORDERS) == labchecks.ORDERS
    assert list(ORDERS.columns) == [name for name, _ in labchecks.ORDER_COLUMNS]
    assert 0.4 < len(EU) / len(ORDERS) < 0.6 and set(EU["region"]) == set(labchecks.EU_REGIONS)
    assert set(labchecks.NEEDED) <= set(ORDERS.columns) and not set(labchecks.PII) & set(labchecks.NEEDED)
    assert ORDERS["customer_email"].isin(labchecks.customers()["email"]).all()
    assert [len(f) for f in EXPECTED.values()] == [18, 5, 3]


# ------------------------------------------------------------------ step 1: what went wrong
def test_a_clean_run_passes_and_is_summed_up():
    run = good_run()
    labchecks.diagnose_grants(run)
    summary = labchecks.grants_summary(run)
    assert summary.loc["SELECT * FROM orders", "got"] == f"6 columns, {len(EU):,} rows (EU only)"
    assert summary.loc["SELECT card_number FROM orders", "got"] == "denied (COLUMN_NOT_FOUND)"
    assert summary.loc["Q2 top 5 products by units in the EU", "got"] == "5 rows, equal to pandas"


def test_a_failed_call_is_reported():
    message = diagnosis(good_run(error="GRANTS entry 1 (SELECT on table x) failed: EntityNotFoundException: no"))
    assert message.startswith("GRANTS entry 1 (SELECT on table x) failed: EntityNotFoundException: no.")


def test_a_grant_on_the_whole_table_is_caught_by_the_non_eu_rows_read():
    outside = {r: n for r, n in ALL_COUNTS.items() if r not in labchecks.EU_REGIONS}
    run = good_run(grants=[dict(ON_FILTER), dict(ON_TABLE)], rows_by_region=dict(ALL_COUNTS))
    message = diagnosis(run)
    assert message.startswith(f"the analyst read {sum(outside.values()):,} non-EU rows of orders "
                              f"(APAC {outside['APAC']:,}, US-East {outside['US-East']:,}")
    assert "Your grant SELECT on table orders gives every row" in message and "union" in message


def test_a_column_grant_alone_is_told_that_only_a_filter_restricts_rows():
    columns = {**ON_TABLE, "Resource": {"TableWithColumns": {"DatabaseName": "retail", "Name": "orders",
                                                             "ColumnNames": list(labchecks.NEEDED)}}}
    message = diagnosis(good_run(grants=[columns], filters=[], rows_by_region=dict(ALL_COUNTS)))
    assert "gives every row: only a data cells filter's row filter restricts rows" in message


def test_a_row_filter_that_lets_other_regions_through_is_quoted():
    loose = dict(FILTER, RowFilter={"FilterExpression": "region <> 'APAC'"})
    counts = {r: n for r, n in ALL_COUNTS.items() if r != "APAC"}
    message = diagnosis(good_run(filters=[loose], rows_by_region=counts))
    assert "Your row filter (eu: \"region <> 'APAC'\") lets these rows through" in message


def test_a_filter_without_a_row_filter_gives_every_row():
    everything = dict(FILTER, RowFilter={"AllRowsWildcard": {}})
    message = diagnosis(good_run(filters=[everything], rows_by_region=dict(ALL_COUNTS)))
    assert "Your grant SELECT on data cells filter eu gives every row" in message


def test_pii_columns_are_counted_and_blamed_on_the_grant():
    columns = list(labchecks.NEEDED) + ["card_number"]
    run = good_run(star_columns=columns, pii_values={"card_number": len(EU)}, pii_probes={"card_number": 10,
                                                                                           "customer_email": None})
    message = diagnosis(run)
    assert message.startswith(f"SELECT * as the analyst returned card_number ({len(EU):,} values)")
    assert "Your grant SELECT on data cells filter eu includes it" in message


def test_another_table_read_or_only_described_is_named():
    wildcard = {**ON_FILTER, "Resource": {"Table": {"DatabaseName": "retail", "TableWildcard": {}}}}
    message = diagnosis(good_run(grants=[dict(ON_FILTER), wildcard], other_tables={"customers": 240,
                                                                                   "inventory": None}))
    assert message.startswith("the analyst read 240 rows of customers (customer_id, name, email, phone, country)")
    assert "SELECT on every table of retail (TableWildcard)" in message
    describe = {**ON_FILTER, "Permissions": ["DESCRIBE"],
                "Resource": {"Table": {"DatabaseName": "retail", "Name": "inventory"}}}
    message = diagnosis(good_run(grants=[dict(ON_FILTER), describe],
                                 catalog={"orders": list(labchecks.NEEDED), "inventory": ["product", "unit_cost"]}))
    assert message.startswith("information_schema shows the analyst the table inventory and its columns "
                              "(product, unit_cost)")
    assert "DESCRIBE on table inventory" in message
    assert "the table customers by name" in diagnosis(good_run(catalog={"orders": list(labchecks.NEEDED),
                                                                        "customers": []}))


def test_a_raw_s3_read_is_reported_with_its_size():
    message = diagnosis(good_run(s3={"s3://lab-lake/orders/part-0.parquet": "61,204 bytes"}))
    assert message.startswith("the analyst read s3://lab-lake/orders/part-0.parquet straight from S3 (61,204 bytes)")


def test_columns_no_question_reads_are_an_over_grant():
    message = diagnosis(good_run(star_columns=["order_id", "customer_id", *labchecks.NEEDED]))
    assert message.startswith("the analyst can read order_id, customer_id, which none of the three questions reads")
    assert "pseudonymous personal data" in message


def test_extra_permissions_location_and_grant_option_are_over_grants():
    assert "ALTER, DROP on orders" in diagnosis(good_run(permissions={"orders": ["ALTER", "DROP"]}))
    assert "CREATE_TABLE on database retail" in diagnosis(good_run(database_permissions=["CREATE_TABLE"]))
    assert "DATA_LOCATION_ACCESS" in diagnosis(good_run(location_access=True))
    message = diagnosis(good_run(grant_option=["SELECT on data cells filter eu"]))
    assert "with the grant option" in message
    assert "data lake administrator" in diagnosis(good_run(admin=True))


def test_a_missing_column_names_the_question_and_the_column():
    reason = ("COLUMN_NOT_FOUND: line 1:8: Column 'channel' cannot be resolved or requester is not authorized "
              "to access requested resources")
    answers = {name: Answer(frame.copy()) for name, frame in EXPECTED.items()}
    answers["Q3 average basket per channel in the EU"] = Answer(None, reason)
    message = diagnosis(good_run(answers=answers))
    assert message.startswith("Q3 average basket per channel in the EU failed: the analyst does not get the "
                              "column channel (COLUMN_NOT_FOUND)")


def test_an_ungranted_filter_leaves_the_questions_without_a_table():
    reason = "SCHEMA_NOT_FOUND: line 1:60: Schema 'retail' does not exist"
    run = good_run(answers={name: Answer(None, reason) for name in EXPECTED}, star_columns=None, star_rows=0,
                   rows_by_region={}, catalog={})
    message = diagnosis(run)
    assert message.startswith("Q1 revenue per EU region and month failed: the analyst cannot see the table orders")
    assert "creating a data cells filter grants nothing" in message


def test_a_row_filter_that_drops_an_eu_region_is_measured():
    eu = EU[EU["region"] != "EU-South"]
    counts = eu["region"].value_counts().to_dict()
    answers = {name: Answer(frame.copy()) for name, frame in EXPECTED.items()}
    q1 = EXPECTED["Q1 revenue per EU region and month"]
    answers["Q1 revenue per EU region and month"] = Answer(q1[q1["region"] != "EU-South"].reset_index(drop=True))
    message = diagnosis(good_run(answers=answers, rows_by_region=counts, star_rows=len(eu)))
    assert message.startswith("Q1 revenue per EU region and month differs from pandas (12 rows, pandas 18): the "
                              f"analyst gets no rows of EU-South {EU_COUNTS['EU-South']:,}")


# ------------------------------------------------------------------ step 2: what went wrong
PLANNER = "arn:aws:iam::123456789012:user/planner"
TAG_GRANT = {"Principal": {"DataLakePrincipalIdentifier": PLANNER}, "Permissions": ["SELECT"],
             "Resource": {"LFTagPolicy": {"ResourceType": "TABLE", "Expression": [
                 {"TagKey": "domain", "TagValues": ["supply"]}, {"TagKey": "sensitivity", "TagValues": ["public"]}]}}}
PUBLIC_INVENTORY = ["product", "warehouse", "on_hand", "reorder_level"]
PUBLIC_SHIPMENTS = ["shipment_id", "product", "warehouse", "units", "shipped_on"]


def good_tags(**changes) -> TagRun:
    run = TagRun(grants=[dict(TAG_GRANT)],
                 planner={"inventory": TableRead(PUBLIC_INVENTORY, 30), "orders": TableRead(None, 0, "TABLE_NOT_FOUND"),
                          "customers": TableRead(None, 0, "TABLE_NOT_FOUND"),
                          "shipments": TableRead(PUBLIC_SHIPMENTS, 60)},
                 analyst={"inventory": TableRead(None, 0, "TABLE_NOT_FOUND"),
                          "shipments": TableRead(None, 0, "TABLE_NOT_FOUND")},
                 tags={"orders": {"domain": "sales"}, "inventory": {"domain": "supply", "sensitivity": "public"},
                       "inventory.unit_cost": {"domain": "supply", "sensitivity": "confidential"}},
                 shipment_tags={"shipments": {"domain": "supply", "sensitivity": "public"}})
    for name, value in changes.items():
        setattr(run, name, value)
    return run


def test_a_clean_tag_run_passes_and_is_summed_up():
    run = good_tags()
    labchecks.diagnose_tags(run)
    summary = labchecks.tags_summary(run)
    assert summary.loc[("planner", "shipments"), "rows"] == 60
    assert summary.loc[("analyst", "inventory"), "columns read"] == "denied"


def test_a_database_tag_that_reaches_the_sales_tables_is_explained():
    run = good_tags(tags={"orders": {"domain": "supply", "sensitivity": "public"}})
    run.planner["orders"] = TableRead(PUBLIC_INVENTORY, 1800)
    message = diagnosis(run)
    assert message.startswith("the planner read 1,800 rows of orders")
    assert "orders is tagged domain=supply, sensitivity=public" in message and "inherited" in message


def test_confidential_columns_the_expression_matches_are_named_with_their_tags():
    run = good_tags(tags={"inventory.unit_cost": {"domain": "supply", "sensitivity": "public"}})
    run.planner["inventory"] = TableRead(PUBLIC_INVENTORY + ["unit_cost"], 30)
    message = diagnosis(run)
    assert message.startswith("the planner read unit_cost of inventory (30 rows): confidential")
    assert "unit_cost: domain=supply, sensitivity=public" in message


def test_a_named_table_grant_does_not_cover_the_new_table():
    named = {**TAG_GRANT, "Resource": {"TableWithColumns": {"DatabaseName": "retail", "Name": "inventory",
                                                            "ColumnNames": PUBLIC_INVENTORY}}}
    run = good_tags(grants=[named])
    run.planner["shipments"] = TableRead(None, 0, "TABLE_NOT_FOUND: x")
    message = diagnosis(run)
    assert message.startswith("the planner cannot read shipments, a new table tagged exactly like inventory")
    assert "your grants name resources (SELECT on columns of inventory" in message and "LFTagPolicy" in message


def test_inventory_unreadable_and_the_analyst_reaching_supply_tables():
    run = good_tags()
    run.planner["inventory"] = TableRead(None, 0, "TABLE_NOT_FOUND: x")
    assert diagnosis(run).startswith("the planner cannot read inventory (TABLE_NOT_FOUND: x)")
    run = good_tags()
    run.analyst["shipments"] = TableRead(PUBLIC_SHIPMENTS, 60)
    assert diagnosis(run).startswith("the analyst read 60 rows of shipments")


def test_the_answer_is_graded_lightly():
    with pytest.raises(LabCheckFailed, match="write at least 50"):
        labchecks.check_answer("Because S3.")
    with pytest.raises(LabCheckFailed, match="LF-Tag expression matches"):
        labchecks.check_answer("Athena reads S3 for the analyst. " * 12)
    labchecks.check_answer("Athena is the engine that reads S3 with Lake Formation; a tag expression covers "
                           "every new table. " * 5)


# ------------------------------------------------------------------ end to end, on the session's stack
SUFFIX = uuid.uuid4().hex[:6]
LAKE = labchecks.Lake(database=f"retail_{SUFFIX}", bucket=f"lab-lake-{SUFFIX}", results=f"lab-results-{SUFFIX}",
                      analyst=f"analyst-{SUFFIX}", planner=f"planner-{SUFFIX}")
DOMAIN, LEVEL = f"domain{SUFFIX}", f"sensitivity{SUFFIX}"


@pytest.fixture(scope="module")
def lake(stack):
    labchecks.build_lake(stack, LAKE)
    yield stack
    lf = stack.client("lakeformation")
    for user in (LAKE.analyst, LAKE.planner):
        labchecks.revoke_everything(stack, labchecks.user_arn(stack, user))
    for key in (DOMAIN, LEVEL):
        try:
            lf.delete_lf_tag(TagKey=key)
        except lf.exceptions.EntityNotFoundException:
            pass
    lf.deregister_resource(ResourceArn=f"arn:aws:s3:::{LAKE.bucket}")


def solution(stack, columns=labchecks.NEEDED):
    analyst = labchecks.user_arn(stack, LAKE.analyst)
    filters = [{**FILTER, "DatabaseName": LAKE.database, "ColumnNames": list(columns)}]
    grants = [{"Principal": {"DataLakePrincipalIdentifier": analyst}, "Permissions": ["SELECT"],
               "Resource": {"DataCellsFilter": {"TableCatalogId": stack.account_id, "DatabaseName": LAKE.database,
                                                "TableName": "orders", "Name": "eu"}}}]
    return grants, filters


def tag_solution(stack, named=False):
    def tag(key, value):
        return {"TagKey": key, "TagValues": [value]}

    def table(name):
        return {"Table": {"DatabaseName": LAKE.database, "Name": name}}
    tags = {DOMAIN: ["sales", "customers", "supply"], LEVEL: ["public", "confidential"]}
    assignments = [
        {"Resource": table("orders"), "LFTags": [tag(DOMAIN, "sales"), tag(LEVEL, "public")]},
        {"Resource": table("customers"), "LFTags": [tag(DOMAIN, "customers"), tag(LEVEL, "confidential")]},
        {"Resource": table("inventory"), "LFTags": [tag(DOMAIN, "supply"), tag(LEVEL, "public")]},
        {"Resource": {"TableWithColumns": {"DatabaseName": LAKE.database, "Name": "inventory",
                                           "ColumnNames": list(labchecks.CONFIDENTIAL)}},
         "LFTags": [tag(LEVEL, "confidential")]}]
    planner = {"DataLakePrincipalIdentifier": labchecks.user_arn(stack, LAKE.planner)}
    resource = ({"TableWithColumns": {"DatabaseName": LAKE.database, "Name": "inventory",
                                      "ColumnWildcard": {"ExcludedColumnNames": list(labchecks.CONFIDENTIAL)}}}
                if named else
                {"LFTagPolicy": {"ResourceType": "TABLE", "Expression": [
                    {"TagKey": DOMAIN, "TagValues": ["supply"]}, {"TagKey": LEVEL, "TagValues": ["public"]}]}})
    return tags, assignments, [{"Principal": planner, "Resource": resource, "Permissions": ["SELECT"]}]


def test_the_solution_passes_both_steps(lake):
    summary = labchecks.check_grants(lake, *solution(lake), lake=LAKE)
    assert summary.loc["SELECT * FROM orders", "got"] == f"6 columns, {len(EU):,} rows (EU only)"
    assert summary.loc["SELECT * FROM customers", "got"] == "denied (TABLE_NOT_FOUND)"
    assert summary.loc[f"GetObject s3://{LAKE.bucket}/orders/part-0.parquet", "got"] == "AccessDenied"
    reads = labchecks.check_tags(lake, *tag_solution(lake), lake=LAKE)
    assert reads.loc[("planner", "shipments"), "rows"] == labchecks.SHIPMENTS
    assert "unit_cost" not in reads.loc[("planner", "shipments"), "columns read"]


def test_a_column_grant_beside_the_filter_leaks_every_row(lake):
    grants, filters = solution(lake)
    grants.append({**grants[0], "Resource": {"TableWithColumns": {
        "DatabaseName": LAKE.database, "Name": "orders", "ColumnNames": list(labchecks.NEEDED)}}})
    run = labchecks.run_grants(lake, grants, filters, LAKE)
    outside = len(ORDERS) - len(EU)
    assert run.star_rows == len(ORDERS)
    message = diagnosis(run)
    assert message.startswith(f"the analyst read {outside:,} non-EU rows of orders")
    assert "Your grant SELECT on columns of orders (order_month, region" in message


def test_describe_on_every_table_shows_their_names(lake):
    grants, filters = solution(lake)
    grants.append({**grants[0], "Permissions": ["DESCRIBE"],
                   "Resource": {"Table": {"DatabaseName": LAKE.database, "TableWildcard": {}}}})
    run = labchecks.run_grants(lake, grants, filters, LAKE)
    assert run.other_tables == {"customers": None, "inventory": None}         # no rows...
    assert {"customers", "inventory", "orders"} <= set(run.catalog)            # ...but their names
    assert diagnosis(run).startswith("information_schema shows the analyst the table customers by name")


def test_a_filter_never_granted_leaves_the_questions_without_a_table(lake):
    _, filters = solution(lake)
    run = labchecks.run_grants(lake, [], filters, LAKE)
    assert all(a.frame is None for a in run.answers.values())
    assert "creating a data cells filter grants nothing" in diagnosis(run)


def test_excluding_only_the_pii_still_gives_columns_no_question_reads(lake):
    grants, filters = solution(lake)
    filters[0].pop("ColumnNames")
    filters[0]["ColumnWildcard"] = {"ExcludedColumnNames": list(labchecks.PII)}
    message = diagnosis(labchecks.run_grants(lake, grants, filters, LAKE))
    assert message.startswith("the analyst can read order_id, order_date, customer_id, which none")


def test_a_planner_granted_inventory_by_name_cannot_read_the_new_table(lake):
    run = labchecks.run_tags(lake, *tag_solution(lake, named=True), lake=LAKE)
    assert run.planner["inventory"].columns == PUBLIC_INVENTORY
    assert run.planner["shipments"].columns is None
    assert diagnosis(run).startswith("the planner cannot read shipments, a new table tagged exactly like inventory")

