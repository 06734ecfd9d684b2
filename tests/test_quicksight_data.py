"""QuickSight's data plane through boto3: data sources, data sets, SPICE, users/groups, CLS and RLS."""
from __future__ import annotations

import datetime
import json

import pytest
from botocore.exceptions import ClientError

from localaws.core.waiting import wait_until

ACCOUNT = "123456789012"
ARN = f"arn:aws:quicksight:us-east-1:{ACCOUNT}"
SALES_CSV = ("region,product,amount,order_date\n"
             "east,apple,10,2024-01-15\nwest,apple,20,2024-01-20\neast,pear,5,2024-02-03\n"
             "west,pear,7,2024-02-10\nnorth,plum,3,2024-03-01\n")
COLUMNS = [{"Name": "region", "Type": "STRING"}, {"Name": "product", "Type": "STRING"},
           {"Name": "amount", "Type": "INTEGER"}, {"Name": "order_date", "Type": "DATETIME"}]


@pytest.fixture(scope="module")
def bucket(stack, unique):
    name = unique("qs-data")
    stack.client("s3").create_bucket(Bucket=name)
    return name


def wait_ingestion(qs, dataset_id, ingestion_id):
    state = {}

    def ended():
        state.update(qs.describe_ingestion(AwsAccountId=ACCOUNT, DataSetId=dataset_id,
                                           IngestionId=ingestion_id)["Ingestion"])
        return state["IngestionStatus"] in ("COMPLETED", "FAILED", "CANCELLED")
    assert wait_until(ended, 120, poll=0.05)
    return state


def s3_source(stack, qs, bucket, unique, key="sales/part1.csv", body=SALES_CSV):
    s3 = stack.client("s3")
    s3.put_object(Bucket=bucket, Key=key, Body=body.encode())
    manifest = {"fileLocations": [{"URIPrefixes": [f"s3://{bucket}/{key.rsplit('/', 1)[0]}/"]}],
                "globalUploadSettings": {"format": "CSV", "delimiter": ",", "containsHeader": "true"}}
    s3.put_object(Bucket=bucket, Key=f"manifests/{key}.json", Body=json.dumps(manifest).encode())
    source_id = unique("s3src")
    qs.create_data_source(AwsAccountId=ACCOUNT, DataSourceId=source_id, Name="sales files", Type="S3",
                          DataSourceParameters={"S3Parameters": {"ManifestFileLocation": {
                              "Bucket": bucket, "Key": f"manifests/{key}.json"}}})
    return f"{ARN}:datasource/{source_id}"


def s3_dataset(qs, dataset_id, source_arn, mode="SPICE", transforms=None, **kwargs):
    logical = {"Alias": "sales", "Source": {"PhysicalTableId": "files"}}
    if transforms:
        logical["DataTransforms"] = transforms
    return qs.create_data_set(
        AwsAccountId=ACCOUNT, DataSetId=dataset_id, Name=dataset_id, ImportMode=mode,
        PhysicalTableMap={"files": {"S3Source": {"DataSourceArn": source_arn, "InputColumns": COLUMNS,
                                                 "UploadSettings": {"Format": "CSV", "ContainsHeader": True}}}},
        LogicalTableMap={"sales": logical}, **kwargs)


@pytest.fixture(scope="module")
def people(qs, unique):
    """Two readers and a group holding the second one."""
    alice, bob, group = unique("alice"), unique("bob"), unique("east-team")
    for user in (alice, bob):
        qs.register_user(AwsAccountId=ACCOUNT, Namespace="default", IdentityType="QUICKSIGHT",
                         UserName=user, Email=f"{user}@example.com", UserRole="READER")
    qs.create_group(AwsAccountId=ACCOUNT, Namespace="default", GroupName=group)
    qs.create_group_membership(AwsAccountId=ACCOUNT, Namespace="default", GroupName=group, MemberName=bob)
    return {"alice": f"{ARN}:user/default/{alice}", "bob": f"{ARN}:user/default/{bob}",
            "group": f"{ARN}:group/default/{group}", "alice_name": alice, "bob_name": bob, "group_name": group}


def plane(stack):
    return stack.context.registry.planes["quicksight"]


# ------------------------------------------------------------------ users and groups
def test_users_groups_and_memberships(qs, people, unique):
    user = qs.describe_user(AwsAccountId=ACCOUNT, Namespace="default", UserName=people["bob_name"])["User"]
    assert user["Role"] == "READER" and user["IdentityType"] == "QUICKSIGHT"
    groups = qs.list_user_groups(AwsAccountId=ACCOUNT, Namespace="default", UserName=people["bob_name"])
    assert [g["GroupName"] for g in groups["GroupList"]] == [people["group_name"]]
    members = qs.list_group_memberships(AwsAccountId=ACCOUNT, Namespace="default", GroupName=people["group_name"])
    assert [m["MemberName"] for m in members["GroupMemberList"]] == [people["bob_name"]]
    names = [u["UserName"] for u in qs.list_users(AwsAccountId=ACCOUNT, Namespace="default")["UserList"]]
    assert {people["alice_name"], people["bob_name"]} <= set(names)
    # an IAM identity: the user name comes from the IAM ARN
    iam_user = unique("analyst")
    answer = qs.register_user(AwsAccountId=ACCOUNT, Namespace="default", IdentityType="IAM", UserRole="AUTHOR",
                              IamArn=f"arn:aws:iam::{ACCOUNT}:user/{iam_user}", Email="a@example.com")
    assert answer["User"]["UserName"] == iam_user and "UserInvitationUrl" not in answer
    assert qs.describe_user(AwsAccountId=ACCOUNT, Namespace="default", UserName=iam_user)["User"]["Role"] == "AUTHOR"
    # an assumed role: <role>/<SessionName>
    role = unique("bi-role")
    answer = qs.register_user(AwsAccountId=ACCOUNT, Namespace="default", IdentityType="IAM", UserRole="READER",
                              IamArn=f"arn:aws:iam::{ACCOUNT}:role/{role}", SessionName="dana",
                              Email="d@example.com")
    assert answer["User"]["UserName"] == f"{role}/dana"
    qs.delete_user(AwsAccountId=ACCOUNT, Namespace="default", UserName=iam_user)
    with pytest.raises(ClientError) as err:
        qs.describe_user(AwsAccountId=ACCOUNT, Namespace="default", UserName=iam_user)
    assert err.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_account_settings_say_enterprise(qs):
    settings = qs.describe_account_settings(AwsAccountId=ACCOUNT)["AccountSettings"]
    assert settings["Edition"] == "ENTERPRISE"


def test_membership_checks_where_moto_is_lenient(qs, people):
    with pytest.raises(ClientError) as err:
        qs.create_group_membership(AwsAccountId=ACCOUNT, Namespace="default", GroupName=people["group_name"],
                                   MemberName="nobody-here")
    assert err.value.response["Error"]["Code"] == "ResourceNotFoundException"
    with pytest.raises(ClientError) as err:
        qs.register_user(AwsAccountId=ACCOUNT, Namespace="default", IdentityType="IAM", UserRole="READER",
                         Email="x@example.com")
    assert err.value.response["Error"]["Code"] == "InvalidParameterValueException"
    with pytest.raises(ClientError) as err:
        qs.register_user(AwsAccountId=ACCOUNT, Namespace="default", IdentityType="QUICKSIGHT",
                         UserName=people["alice_name"], Email="x@example.com", UserRole="READER")
    assert err.value.response["Error"]["Code"] == "ResourceExistsException"


# ------------------------------------------------------------------ S3 source, SPICE vs DIRECT_QUERY
def test_s3_spice_data_set_ingests_source_rows(stack, qs, bucket, unique):
    source = s3_source(stack, qs, bucket, unique, key="spice/part1.csv")
    assert qs.describe_data_source(AwsAccountId=ACCOUNT, DataSourceId=source.rsplit("/", 1)[1])[
        "DataSource"]["Status"] == "CREATION_SUCCESSFUL"
    ds_id = unique("sales-spice")
    created = s3_dataset(qs, ds_id, source)
    assert created["Status"] == 201 and created["IngestionId"]
    ingestion = wait_ingestion(qs, ds_id, created["IngestionId"])
    assert ingestion["IngestionStatus"] == "COMPLETED", ingestion
    assert ingestion["RowInfo"] == {"RowsIngested": 5, "RowsDropped": 0, "TotalRowsInDataset": 5}
    assert ingestion["RequestType"] == "INITIAL_INGESTION" and ingestion["RequestSource"] == "MANUAL"
    described = qs.describe_data_set(AwsAccountId=ACCOUNT, DataSetId=ds_id)["DataSet"]
    assert [(c["Name"], c["Type"]) for c in described["OutputColumns"]] == [
        ("region", "STRING"), ("product", "STRING"), ("amount", "INTEGER"), ("order_date", "DATETIME")]
    # logical size: per row 4 x 8 bytes + the UTF-8 bytes of region and product
    text = sum(len(r.split(",")[0]) + len(r.split(",")[1]) for r in SALES_CSV.splitlines()[1:])
    assert described["ConsumedSpiceCapacityInBytes"] == 5 * 32 + text == ingestion["IngestionSizeInBytes"]
    assert ds_id in [d["DataSetId"] for d in qs.list_data_sets(AwsAccountId=ACCOUNT)["DataSetSummaries"]]

    engine = plane(stack).engine
    names, rows = engine.query(ds_id, 'SELECT "region", SUM("amount") AS total FROM dataset '
                                      'GROUP BY "region" ORDER BY "region"')
    assert names == ["region", "total"] and rows == [("east", 15), ("north", 3), ("west", 27)]
    _, rows = engine.query(ds_id, 'SELECT MIN("order_date") FROM dataset')
    assert rows == [(datetime.datetime(2024, 1, 15),)]
    reads = stack.local.quicksight.queries(ds_id)
    engine.query(ds_id, "SELECT COUNT(*) FROM dataset")
    assert stack.local.quicksight.queries(ds_id) == reads          # SPICE: the source is not read again

    # refresh: new rows at the source appear only after a new ingestion
    stack.client("s3").put_object(Bucket=bucket, Key="spice/part2.csv",
                                  Body=b"region,product,amount,order_date\nsouth,fig,100,2024-04-01\n")
    assert engine.query(ds_id, "SELECT COUNT(*) FROM dataset")[1] == [(5,)]
    qs.create_ingestion(AwsAccountId=ACCOUNT, DataSetId=ds_id, IngestionId="refresh-1")
    refreshed = wait_ingestion(qs, ds_id, "refresh-1")
    assert refreshed["RowInfo"]["RowsIngested"] == 6 and refreshed["RequestType"] == "FULL_REFRESH"
    assert engine.query(ds_id, "SELECT COUNT(*) FROM dataset")[1] == [(6,)]
    listed = qs.list_ingestions(AwsAccountId=ACCOUNT, DataSetId=ds_id)["Ingestions"]
    assert {i["IngestionId"] for i in listed} == {created["IngestionId"], "refresh-1"}


def test_direct_query_reads_the_source_every_time(stack, qs, bucket, unique):
    source = s3_source(stack, qs, bucket, unique, key="direct/part1.csv")
    ds_id = unique("sales-direct")
    created = s3_dataset(qs, ds_id, source, mode="DIRECT_QUERY")
    assert "IngestionId" not in created
    engine = plane(stack).engine
    before = stack.local.quicksight.queries(ds_id)
    assert engine.query(ds_id, "SELECT COUNT(*) FROM dataset")[1] == [(5,)]
    assert engine.query(ds_id, 'SELECT SUM("amount") FROM dataset')[1] == [(45,)]
    assert stack.local.quicksight.queries(ds_id) == before + 2
    stack.client("s3").put_object(Bucket=bucket, Key="direct/part2.csv",
                                  Body=b"region,product,amount,order_date\nsouth,fig,100,2024-04-01\n")
    assert engine.query(ds_id, "SELECT COUNT(*) FROM dataset")[1] == [(6,)]     # at once, no ingestion
    assert qs.describe_data_set(AwsAccountId=ACCOUNT, DataSetId=ds_id)["DataSet"]["ConsumedSpiceCapacityInBytes"] == 0


def test_calculated_fields_and_data_prep(stack, qs, bucket, unique):
    source = s3_source(stack, qs, bucket, unique, key="prep/part1.csv")
    ds_id = unique("sales-prep")
    transforms = [
        {"CreateColumnsOperation": {"Columns": [
            {"ColumnName": "size", "ColumnId": "c1", "Expression": "ifelse({amount} >= 10, 'big', 'small')"},
            {"ColumnName": "label", "ColumnId": "c2", "Expression": "concat(toUpper(region), '-', toLower(product))"},
            {"ColumnName": "month", "ColumnId": "c3", "Expression": "truncDate('MM', order_date)"},
            {"ColumnName": "half", "ColumnId": "c4", "Expression": "round(amount / 2, 1)"},
            {"ColumnName": "days", "ColumnId": "c5", "Expression": "dateDiff(order_date, parseDate('2024-03-01'), 'DD')"},
            {"ColumnName": "initial", "ColumnId": "c6", "Expression": "substring(product, 1, 2)"},
        ]}},
        {"FilterOperation": {"ConditionExpression": "region <> 'north'"}},
        {"RenameColumnOperation": {"ColumnName": "amount", "NewColumnName": "Amount"}},
        {"CastColumnTypeOperation": {"ColumnName": "Amount", "NewColumnType": "DECIMAL"}},
        {"TagColumnOperation": {"ColumnName": "region", "Tags": [{"ColumnGeographicRole": "STATE"}]}},
        {"ProjectOperation": {"ProjectedColumns": ["region", "Amount", "size", "label", "month", "half",
                                                   "days", "initial"]}},
    ]
    created = s3_dataset(qs, ds_id, source, transforms=transforms)
    assert wait_ingestion(qs, ds_id, created["IngestionId"])["RowInfo"]["RowsIngested"] == 4
    engine = plane(stack).engine
    assert engine.columns(ds_id) == [("region", "STRING"), ("Amount", "DECIMAL"), ("size", "STRING"),
                                     ("label", "STRING"), ("month", "DATETIME"), ("half", "DECIMAL"),
                                     ("days", "INTEGER"), ("initial", "STRING")]
    _, rows = engine.query(ds_id, 'SELECT * FROM dataset ORDER BY "label", "Amount"')
    assert rows[0] == ("east", 10.0, "big", "EAST-apple", datetime.datetime(2024, 1, 1), 5.0, 46, "ap")
    assert [r[2] for r in rows] == ["big", "small", "big", "small"]


# ------------------------------------------------------------------ CLS and RLS
def test_column_level_security(stack, qs, bucket, unique, people):
    source = s3_source(stack, qs, bucket, unique, key="cls/part1.csv")
    ds_id = unique("sales-cls")
    created = s3_dataset(qs, ds_id, source, ColumnLevelPermissionRules=[
        {"Principals": [people["group"]], "ColumnNames": ["amount"]}])
    wait_ingestion(qs, ds_id, created["IngestionId"])
    engine = plane(stack).engine
    assert "amount" not in [n for n, _ in engine.columns(ds_id, viewer=people["alice"])]
    assert "amount" in [n for n, _ in engine.columns(ds_id, viewer=people["bob"])]       # via the group
    names, _ = engine.query(ds_id, "SELECT * FROM dataset", viewer=people["alice"])
    assert names == ["region", "product", "order_date"]
    with pytest.raises(Exception) as err:
        engine.query(ds_id, 'SELECT SUM("amount") FROM dataset', viewer=people["alice"])
    assert getattr(err.value, "code", "") == "AccessDeniedException" and "amount" in str(err.value)
    assert engine.query(ds_id, 'SELECT SUM("amount") FROM dataset', viewer=people["bob"])[1] == [(45,)]
    summary = [d for d in qs.list_data_sets(AwsAccountId=ACCOUNT)["DataSetSummaries"] if d["DataSetId"] == ds_id]
    assert summary[0]["ColumnLevelPermissionRulesApplied"] is True


def test_row_level_security_by_user_and_group(stack, qs, bucket, unique, people):
    source = s3_source(stack, qs, bucket, unique, key="rls/part1.csv")
    rules_source = s3_source(stack, qs, bucket, unique, key="rules/rules.csv",
                             body=f"UserName,GroupName,region,product\n"
                                  f"{people['alice_name']},,east,\n"
                                  f",{people['group_name']},\"west,north\",apple\n")
    rules_id = unique("rules")
    rules = qs.create_data_set(
        AwsAccountId=ACCOUNT, DataSetId=rules_id, Name="rules", ImportMode="SPICE",
        PhysicalTableMap={"r": {"S3Source": {"DataSourceArn": rules_source, "InputColumns": [
            {"Name": n, "Type": "STRING"} for n in ("UserName", "GroupName", "region", "product")]}}})
    wait_ingestion(qs, rules_id, rules["IngestionId"])
    ds_id = unique("sales-rls")
    created = s3_dataset(qs, ds_id, source, RowLevelPermissionDataSet={
        "Arn": rules["Arn"], "PermissionPolicy": "GRANT_ACCESS", "FormatVersion": "VERSION_1"})
    wait_ingestion(qs, ds_id, created["IngestionId"])
    engine = plane(stack).engine
    sql = 'SELECT "region", "product" FROM dataset ORDER BY "region", "product"'
    assert engine.query(ds_id, sql, viewer=people["alice"])[1] == [("east", "apple"), ("east", "pear")]
    assert engine.query(ds_id, sql, viewer=people["bob"])[1] == [("west", "apple")]     # via the group
    assert len(engine.query(ds_id, sql)[1]) == 5                                        # the owner's view
    assert engine.user_groups(people["bob"]) == [people["group_name"]]
    assert engine.user(people["alice"])["UserName"] == people["alice_name"]


def test_data_set_permissions_and_update_and_delete(stack, qs, bucket, unique, people):
    source = s3_source(stack, qs, bucket, unique, key="perm/part1.csv")
    ds_id = unique("sales-perm")
    s3_dataset(qs, ds_id, source, mode="DIRECT_QUERY",
               Permissions=[{"Principal": people["alice"], "Actions": ["quicksight:DescribeDataSet"]}])
    qs.update_data_set_permissions(AwsAccountId=ACCOUNT, DataSetId=ds_id, GrantPermissions=[
        {"Principal": people["group"], "Actions": ["quicksight:DescribeDataSet", "quicksight:QueryDataSet"]}])
    perms = qs.describe_data_set_permissions(AwsAccountId=ACCOUNT, DataSetId=ds_id)["Permissions"]
    assert {p["Principal"] for p in perms} == {people["alice"], people["group"]}
    qs.update_data_set_permissions(AwsAccountId=ACCOUNT, DataSetId=ds_id, RevokePermissions=[
        {"Principal": people["alice"], "Actions": ["quicksight:DescribeDataSet"]}])
    perms = qs.describe_data_set_permissions(AwsAccountId=ACCOUNT, DataSetId=ds_id)["Permissions"]
    assert [p["Principal"] for p in perms] == [people["group"]]
    # update to SPICE with a projection: an EDIT ingestion fills SPICE
    updated = qs.update_data_set(
        AwsAccountId=ACCOUNT, DataSetId=ds_id, Name="renamed", ImportMode="SPICE",
        PhysicalTableMap={"files": {"S3Source": {"DataSourceArn": source, "InputColumns": COLUMNS}}},
        LogicalTableMap={"sales": {"Alias": "sales", "Source": {"PhysicalTableId": "files"},
                                   "DataTransforms": [{"ProjectOperation": {"ProjectedColumns": ["region"]}}]}})
    assert wait_ingestion(qs, ds_id, updated["IngestionId"])["RequestType"] == "EDIT"
    described = qs.describe_data_set(AwsAccountId=ACCOUNT, DataSetId=ds_id)["DataSet"]
    assert described["Name"] == "renamed" and [c["Name"] for c in described["OutputColumns"]] == ["region"]
    assert described["ConsumedSpiceCapacityInBytes"] > 0
    qs.delete_data_set(AwsAccountId=ACCOUNT, DataSetId=ds_id)
    with pytest.raises(ClientError) as err:
        qs.describe_data_set(AwsAccountId=ACCOUNT, DataSetId=ds_id)
    assert err.value.response["Error"]["Code"] == "ResourceNotFoundException"


# ------------------------------------------------------------------ Athena and Redshift sources
def run_athena(athena, sql, work_group):
    qid = athena.start_query_execution(QueryString=sql, WorkGroup=work_group)["QueryExecutionId"]
    assert wait_until(lambda: athena.get_query_execution(QueryExecutionId=qid)["QueryExecution"]["Status"][
        "State"] in ("SUCCEEDED", "FAILED", "CANCELLED"), 60, poll=0.05)
    status = athena.get_query_execution(QueryExecutionId=qid)["QueryExecution"]["Status"]
    assert status["State"] == "SUCCEEDED", status


def test_athena_data_source_spice_and_direct(stack, qs, bucket, unique):
    s3, athena = stack.client("s3"), stack.client("athena")
    s3.put_object(Bucket=bucket, Key="athena/sales/data.csv", Body=SALES_CSV.split("\n", 1)[1].encode())
    wg = unique("qs-wg")
    athena.create_work_group(Name=wg, Configuration={"ResultConfiguration": {
        "OutputLocation": f"s3://{bucket}/athena-results/"}})
    db = unique("qsdb").replace("-", "_")
    run_athena(athena, f"CREATE DATABASE {db}", wg)
    run_athena(athena, f"CREATE EXTERNAL TABLE {db}.sales (region string, product string, amount int, "
                       f"order_date date) ROW FORMAT DELIMITED FIELDS TERMINATED BY ',' "
                       f"LOCATION 's3://{bucket}/athena/sales/'", wg)
    source_id = unique("athena-src")
    qs.create_data_source(AwsAccountId=ACCOUNT, DataSourceId=source_id, Name="athena", Type="ATHENA",
                          DataSourceParameters={"AthenaParameters": {"WorkGroup": wg}})
    assert qs.describe_data_source(AwsAccountId=ACCOUNT, DataSourceId=source_id)["DataSource"][
        "Status"] == "CREATION_SUCCESSFUL"
    table = {"RelationalTable": {"DataSourceArn": f"{ARN}:datasource/{source_id}", "Catalog": "AwsDataCatalog",
                                 "Schema": db, "Name": "sales", "InputColumns": COLUMNS}}
    engine = plane(stack).engine
    for mode in ("SPICE", "DIRECT_QUERY"):
        ds_id = unique(f"athena-{mode.lower()}")
        created = qs.create_data_set(AwsAccountId=ACCOUNT, DataSetId=ds_id, Name=ds_id, ImportMode=mode,
                                     PhysicalTableMap={"t": table})
        if mode == "SPICE":
            assert wait_ingestion(qs, ds_id, created["IngestionId"])["RowInfo"]["RowsIngested"] == 5
        before = stack.local.quicksight.queries(ds_id)
        assert engine.query(ds_id, 'SELECT "region", SUM("amount") FROM dataset GROUP BY "region" '
                                   'ORDER BY "region"')[1] == [("east", 15), ("north", 3), ("west", 27)]
        assert stack.local.quicksight.queries(ds_id) == before + (mode == "DIRECT_QUERY")
    custom = unique("athena-sql")
    qs.create_data_set(AwsAccountId=ACCOUNT, DataSetId=custom, Name=custom, ImportMode="DIRECT_QUERY",
                       PhysicalTableMap={"q": {"CustomSql": {
                           "DataSourceArn": f"{ARN}:datasource/{source_id}", "Name": "big",
                           "SqlQuery": f"SELECT region, amount FROM {db}.sales WHERE amount > 6",
                           "Columns": [{"Name": "region", "Type": "STRING"}, {"Name": "amount", "Type": "INTEGER"}]}}})
    assert engine.query(custom, "SELECT COUNT(*) FROM dataset")[1] == [(3,)]


def test_redshift_data_source(stack, qs, unique, redshift, data, clusters, statements):
    with clusters.running(redshift, unique("qs-rs"), ClusterType="single-node") as cluster:
        statements.run_ok(data, cluster, "CREATE TABLE public.orders (region varchar(10), amount int)")
        statements.run_ok(data, cluster, "INSERT INTO public.orders VALUES ('east', 4), ('west', 6), ('east', 1)")
        source_id = unique("rs-src")
        qs.create_data_source(AwsAccountId=ACCOUNT, DataSourceId=source_id, Name="warehouse", Type="REDSHIFT",
                              DataSourceParameters={"RedshiftParameters": {"ClusterId": cluster, "Database": "dev"}},
                              Credentials={"CredentialPair": {"Username": clusters.user, "Password": clusters.password}})
        assert qs.describe_data_source(AwsAccountId=ACCOUNT, DataSourceId=source_id)["DataSource"][
            "Status"] == "CREATION_SUCCESSFUL"
        ds_id = unique("orders")
        created = qs.create_data_set(
            AwsAccountId=ACCOUNT, DataSetId=ds_id, Name="orders", ImportMode="SPICE",
            PhysicalTableMap={"t": {"RelationalTable": {
                "DataSourceArn": f"{ARN}:datasource/{source_id}", "Schema": "public", "Name": "orders",
                "InputColumns": [{"Name": "region", "Type": "STRING"}, {"Name": "amount", "Type": "INTEGER"}]}}})
        assert wait_ingestion(qs, ds_id, created["IngestionId"])["RowInfo"]["RowsIngested"] == 3
        engine = plane(stack).engine
        assert engine.query(ds_id, 'SELECT "region", SUM("amount") FROM dataset GROUP BY 1 ORDER BY 1')[1] == [
            ("east", 5), ("west", 6)]
