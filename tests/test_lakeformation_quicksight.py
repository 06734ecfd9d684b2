"""Lake Formation enforced in QuickSight over Athena: the data set's owner decides, not the reader.

One governed table, ``orders`` (Parquet, partitioned by ``region``, a sensitive ``card`` column).
A data cells filter (``id`` and ``amount``, rows ``region = 'eu'``) is granted to a QuickSight
*group* holding the author ``ana``, and to an IAM role for the Athena comparison. QuickSight signs
its Athena queries with its service role ``aws-quicksight-service-role-v0``, one session per data
set owner, and Lake Formation evaluates that owner (its user ARN and its groups).

AWS behaviour followed (checked 2026): Lake Formation grants to QuickSight users and groups by ARN
apply to authors (https://aws.amazon.com/blogs/big-data/enable-fine-grained-permissions-for-amazon-quicksight-authors-in-aws-lake-formation/);
readers "see the same data as the author, unless row-level security is enabled" and per-reader
enforcement needs IAM Identity Center with trusted identity propagation, for direct query only
(https://aws.amazon.com/blogs/big-data/automate-replication-of-row-level-security-from-aws-lake-formation-to-amazon-quicksight/),
which this stack does not emulate; a data source ``RoleArn`` makes Athena run as that role
(https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-properties-quicksight-datasource-athenaparameters.html).
"""
from __future__ import annotations

import io
import uuid

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from botocore.exceptions import ClientError

from localaws.athena import run_query
from localaws.core.waiting import wait_until

SUFFIX = uuid.uuid4().hex[:8]
ACCOUNT = "123456789012"
QS = f"arn:aws:quicksight:us-east-1:{ACCOUNT}"
DB, LAKE, RESULTS = f"lfq_{SUFFIX}", f"lfq-lake-{SUFFIX}", f"lfq-results-{SUFFIX}"
OUT = f"s3://{RESULTS}/out/"
CARDS = ["4111-0001", "4111-0002", "4111-0003", "4111-0004", "4111-0005", "4111-0006", "4111-0007"]
ORDERS = pd.DataFrame({"id": [1, 2, 3, 4, 5, 6, 7], "amount": [10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0],
                       "card": CARDS, "region": ["eu", "eu", "us", "eu", "us", "us", "ap"]})
EU = [(1, 10.0), (2, 20.0), (4, 40.0)]
OWNER_ACTIONS = ["quicksight:CancelIngestion", "quicksight:CreateIngestion", "quicksight:DeleteDataSet",
                 "quicksight:DescribeDataSet", "quicksight:DescribeDataSetPermissions",
                 "quicksight:DescribeIngestion", "quicksight:ListIngestions", "quicksight:PassDataSet",
                 "quicksight:UpdateDataSet", "quicksight:UpdateDataSetPermissions"]
READER_ACTIONS = ["quicksight:DescribeDataSet", "quicksight:DescribeDataSetPermissions",
                  "quicksight:DescribeIngestion", "quicksight:ListIngestions", "quicksight:PassDataSet"]


def parquet(frame: pd.DataFrame) -> bytes:
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), sink)
    return sink.getvalue()


def user(name: str) -> str:
    return f"{QS}:user/default/{name}"


@pytest.fixture(scope="module")
def lake(stack, qs):
    s3, iam, lf = stack.client("s3"), stack.client("iam"), stack.client("lakeformation")
    athena = stack.client("athena")
    for bucket in (LAKE, RESULTS):
        s3.create_bucket(Bucket=bucket)
    for region, rows in ORDERS.groupby("region"):
        s3.put_object(Bucket=LAKE, Key=f"orders/region={region}/part-0.parquet",
                      Body=parquet(rows.drop(columns="region")))
    for sql, database in ((f"CREATE DATABASE {DB}", "default"),
                          ("CREATE EXTERNAL TABLE orders (id bigint, amount double, card string) PARTITIONED BY "
                           f"(region string) STORED AS PARQUET LOCATION 's3://{LAKE}/orders/'", DB),
                          ("MSCK REPAIR TABLE orders", DB)):
        run_query(athena, sql, database=database, output=OUT)
    wg = f"lfq-{SUFFIX}"
    athena.create_work_group(Name=wg, Configuration={"ResultConfiguration": {"OutputLocation": OUT}})
    names = {k: f"{k}-{SUFFIX}" for k in ("ana", "ben", "rita")}
    for key, name in names.items():
        qs.register_user(AwsAccountId=ACCOUNT, Namespace="default", IdentityType="QUICKSIGHT", UserName=name,
                         Email=f"{name}@example.com", UserRole="READER" if key == "rita" else "AUTHOR")
    group = f"eu-analysts-{SUFFIX}"
    qs.create_group(AwsAccountId=ACCOUNT, Namespace="default", GroupName=group)
    qs.create_group_membership(AwsAccountId=ACCOUNT, Namespace="default", GroupName=group, MemberName=names["ana"])
    trust = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":' \
            '{"Service":"quicksight.amazonaws.com"},"Action":"sts:AssumeRole"}]}'
    roles = {k: iam.create_role(RoleName=f"{k}-{SUFFIX}", AssumeRolePolicyDocument=trust)["Role"]["Arn"]
             for k in ("analyst", "full")}
    lf.register_resource(ResourceArn=f"arn:aws:s3:::{LAKE}", UseServiceLinkedRole=True)
    lf.revoke_permissions(Principal={"DataLakePrincipalIdentifier": "IAM_ALLOWED_PRINCIPALS"},
                          Resource={"Table": {"DatabaseName": DB, "Name": "orders"}}, Permissions=["ALL"])
    cells = {"TableCatalogId": ACCOUNT, "DatabaseName": DB, "TableName": "orders", "Name": "eu_orders"}
    lf.create_data_cells_filter(TableData={**cells, "RowFilter": {"FilterExpression": "region = 'eu'"},
                                           "ColumnNames": ["id", "amount"]})
    for principal in (f"{QS}:group/default/{group}", roles["analyst"]):
        lf.grant_permissions(Principal={"DataLakePrincipalIdentifier": principal},
                             Resource={"DataCellsFilter": cells}, Permissions=["SELECT"])
    lf.grant_permissions(Principal={"DataLakePrincipalIdentifier": roles["full"]},
                         Resource={"Table": {"DatabaseName": DB, "Name": "orders"}}, Permissions=["SELECT"])
    sources = {}
    for key, params in (("service", {"WorkGroup": wg}), ("full", {"WorkGroup": wg, "RoleArn": roles["full"]})):
        source_id = f"lfq-{key}-{SUFFIX}"
        qs.create_data_source(AwsAccountId=ACCOUNT, DataSourceId=source_id, Name=source_id, Type="ATHENA",
                              DataSourceParameters={"AthenaParameters": params})
        sources[key] = f"{QS}:datasource/{source_id}"
    yield {"lf": lf, "cells": cells, "group": f"{QS}:group/default/{group}", "roles": roles,
           "users": {k: user(v) for k, v in names.items()}, "sources": sources}
    lf.deregister_resource(ResourceArn=f"arn:aws:s3:::{LAKE}")


def engine(stack):
    return stack.context.registry.planes["quicksight"].engine


def dataset(qs, lake, name, mode, owner="ana", columns=("id", "amount"), source="service", readers=("rita",)):
    permissions = [{"Principal": lake["users"][owner], "Actions": OWNER_ACTIONS}] if owner else []
    permissions += [{"Principal": lake["users"][r], "Actions": READER_ACTIONS} for r in readers]
    types = {"id": "INTEGER", "amount": "DECIMAL", "card": "STRING", "region": "STRING"}
    return qs.create_data_set(
        AwsAccountId=ACCOUNT, DataSetId=name, Name=name, ImportMode=mode, Permissions=permissions,
        PhysicalTableMap={"t": {"RelationalTable": {
            "DataSourceArn": lake["sources"][source], "Catalog": "AwsDataCatalog", "Schema": DB, "Name": "orders",
            "InputColumns": [{"Name": c, "Type": types[c]} for c in columns]}}})


def rows(stack, name, viewer=None):
    names, found = engine(stack).query(name, "SELECT * FROM dataset ORDER BY id", viewer)
    return names, [tuple(r) for r in found]


def ingestion(qs, name, ingestion_id):
    state = {}

    def ended():
        state.update(qs.describe_ingestion(AwsAccountId=ACCOUNT, DataSetId=name,
                                           IngestionId=ingestion_id)["Ingestion"])
        return state["IngestionStatus"] in ("COMPLETED", "FAILED", "CANCELLED")
    assert wait_until(ended, 120, poll=0.05)
    return state


# ---------------------------------------------------------------- the owner's grant, as in Athena
def test_direct_query_reads_what_the_owners_group_is_granted_as_athena_does(stack, qs, lake):
    dataset(qs, lake, f"dq-{SUFFIX}", "DIRECT_QUERY")
    names, found = rows(stack, f"dq-{SUFFIX}", lake["users"]["ana"])
    athena, _ = run_query(stack.client("athena", principal=lake["roles"]["analyst"]),
                          "SELECT * FROM orders ORDER BY id", database=DB, output=OUT)
    assert list(athena.columns) == ["id", "amount"]
    assert names == ["id", "amount"] and found == EU == [(int(i), float(a)) for i, a in athena.values.tolist()]
    role = stack.client("iam").get_role(RoleName="aws-quicksight-service-role-v0")["Role"]
    assert role["Path"] == "/service-role/"


def test_a_hidden_column_makes_the_data_set_unreadable(qs, lake):
    with pytest.raises(ClientError) as err:
        dataset(qs, lake, f"card-{SUFFIX}", "DIRECT_QUERY", columns=("id", "card"))
    assert err.value.response["Error"]["Code"] == "InvalidParameterValueException"
    assert not any(card in str(err.value) for card in CARDS)


def test_spice_is_filled_with_what_the_owner_may_read(stack, qs, lake):
    created = dataset(qs, lake, f"spice-{SUFFIX}", "SPICE")
    state = ingestion(qs, f"spice-{SUFFIX}", created["IngestionId"])
    assert state["IngestionStatus"] == "COMPLETED" and state["RowInfo"]["RowsIngested"] == 3
    assert rows(stack, f"spice-{SUFFIX}", lake["users"]["rita"]) == (["id", "amount"], EU)


# ---------------------------------------------------------------- readers, and who gets nothing
def test_readers_see_the_owners_data_lake_formation_is_not_asked_per_reader(stack, qs, lake):
    """On AWS without IAM Identity Center, QuickSight does not pass the reader to Lake Formation:
    ``rita`` holds no grant and still sees the owner's rows; use QuickSight's RLS/CLS for readers."""
    dataset(qs, lake, f"readers-{SUFFIX}", "DIRECT_QUERY")
    assert rows(stack, f"readers-{SUFFIX}", lake["users"]["rita"]) == (["id", "amount"], EU)


def test_an_owner_without_a_grant_gets_nothing(stack, qs, lake):
    with pytest.raises(ClientError) as err:          # Athena: a table it may not see does not exist
        dataset(qs, lake, f"ben-{SUFFIX}", "DIRECT_QUERY", owner="ben")
    assert err.value.response["Error"]["Code"] == "InvalidParameterValueException"
    assert "does not exist" in str(err.value)
    # no owner at all: the service role itself is evaluated, and holds nothing
    with pytest.raises(ClientError):
        dataset(qs, lake, f"nobody-{SUFFIX}", "DIRECT_QUERY", owner=None)


def test_a_data_source_role_decides_for_everyone(stack, qs, lake):
    dataset(qs, lake, f"role-{SUFFIX}", "DIRECT_QUERY", owner="ben", source="full",
            columns=("id", "amount", "card"))
    names, found = rows(stack, f"role-{SUFFIX}", lake["users"]["rita"])
    assert names == ["id", "amount", "card"] and len(found) == 7


def test_a_revoke_counts_from_the_next_query_and_the_next_ingestion(stack, qs, lake):
    lf, group = lake["lf"], {"DataLakePrincipalIdentifier": lake["group"]}
    resource = {"DataCellsFilter": lake["cells"]}
    direct, spice = f"rv-dq-{SUFFIX}", f"rv-spice-{SUFFIX}"
    dataset(qs, lake, direct, "DIRECT_QUERY")
    ingestion(qs, spice, dataset(qs, lake, spice, "SPICE")["IngestionId"])
    lf.revoke_permissions(Principal=group, Resource=resource, Permissions=["SELECT"])
    try:
        with pytest.raises(Exception) as err:
            rows(stack, direct, lake["users"]["rita"])
        assert "does not exist" in str(err.value)
        assert rows(stack, spice)[1] == EU                   # SPICE keeps its copy until the next ingestion
        refresh = qs.create_ingestion(AwsAccountId=ACCOUNT, DataSetId=spice, IngestionId=f"r-{SUFFIX}")
        state = ingestion(qs, spice, refresh["IngestionId"])
        assert state["IngestionStatus"] == "FAILED", state
        assert state["ErrorInfo"]["Type"] == "SQL_TABLE_NOT_FOUND", state
        assert rows(stack, spice)[1] == EU                   # a failed refresh keeps the previous data
    finally:
        lf.grant_permissions(Principal=group, Resource=resource, Permissions=["SELECT"])
    assert rows(stack, direct)[1] == EU
