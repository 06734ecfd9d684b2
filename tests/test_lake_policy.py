"""The decision point every engine asks (``ctx.lake``, ``localaws/core/lake.py``), without the HTTP layer.

Grants are made through the Lake Formation API as the administrator; the answers are read
from ``stack.context.lake`` directly: which columns and rows, governed or not, direct S3 reads.
"""
from __future__ import annotations

import json

import pytest

from localaws.core import iam_policy

IAM_ALLOWED = "IAM_ALLOWED_PRINCIPALS"
COLUMNS = ["id", "dept", "salary", "email"]


@pytest.fixture(scope="module")
def lf(stack):
    return stack.client("lakeformation")


@pytest.fixture(scope="module")
def lake(stack):
    return stack.context.lake


@pytest.fixture
def governed_table(stack, lf, unique):
    """A new database with a table ``staff`` from which IAM_ALLOWED_PRINCIPALS was revoked."""
    glue = stack.client("glue")
    database = unique("lfpol").replace("-", "_")
    glue.create_database(DatabaseInput={"Name": database})
    glue.create_table(DatabaseName=database, TableInput={"Name": "staff", "StorageDescriptor": {
        "Columns": [{"Name": c, "Type": "string"} for c in COLUMNS], "Location": f"s3://lf-pol/{database}/"}})
    lf.revoke_permissions(Principal={"DataLakePrincipalIdentifier": IAM_ALLOWED},
                          Resource={"Table": {"DatabaseName": database, "Name": "staff"}}, Permissions=["ALL"])
    return database, "staff"


@pytest.fixture
def user(stack, unique):
    return stack.client("iam").create_user(UserName=unique("lfuser"))["User"]["Arn"]


def grant(lf, arn, resource, permissions=("SELECT",)):
    lf.grant_permissions(Principal={"DataLakePrincipalIdentifier": arn}, Resource=resource,
                         Permissions=list(permissions))


def columns(database, names=None, excluded=None):
    body = {"DatabaseName": database, "Name": "staff"}
    body.update({"ColumnNames": names} if names is not None else {"ColumnWildcard": {"ExcludedColumnNames": excluded}})
    return {"TableWithColumns": body}


def cells_filter(lf, stack, database, name, expression=None, names=None, excluded=None):
    data = {"TableCatalogId": stack.context.account_id, "DatabaseName": database, "TableName": "staff",
            "Name": name, "RowFilter": {"FilterExpression": expression} if expression else {"AllRowsWildcard": {}}}
    data.update({"ColumnNames": names} if names is not None else {"ColumnWildcard": {"ExcludedColumnNames": excluded or []}})
    lf.create_data_cells_filter(TableData=data)
    return {"DataCellsFilter": {"TableCatalogId": stack.context.account_id, "DatabaseName": database,
                                "TableName": "staff", "Name": name}}


def test_not_governed_by_default_and_admin_sees_everything(stack, lake, unique, user):
    glue = stack.client("glue")
    database = unique("lfopen").replace("-", "_")
    glue.create_database(DatabaseInput={"Name": database})
    glue.create_table(DatabaseName=database, TableInput={"Name": "t", "StorageDescriptor": {
        "Columns": [{"Name": "a", "Type": "int"}]}})
    assert not lake.governed(database, "t")
    access = lake.table_access(user, database, "t", ["a"])
    assert (access.select, access.describe, access.columns, access.row_filter) == (True, True, None, None)
    assert lake.database_visible(user, database)
    assert lake.is_admin(stack.context.principals.root.arn)
    assert lake.table_access(stack.context.principals.root.arn, database, "t").select


def test_governed_table_without_grant_gives_nothing(lf, lake, governed_table, user):
    database, table = governed_table
    access = lake.table_access(user, database, table, COLUMNS)
    assert (access.select, access.describe) == (False, False)
    assert lake.database_visible(user, database)         # the database itself still holds IAM_ALLOWED_PRINCIPALS
    lf.revoke_permissions(Principal={"DataLakePrincipalIdentifier": IAM_ALLOWED},
                          Resource={"Database": {"Name": database}}, Permissions=["ALL"])
    assert not lake.database_visible(user, database)


def test_column_names_and_column_wildcard(lf, lake, governed_table, user, stack, unique):
    database, table = governed_table
    grant(lf, user, columns(database, names=["salary", "id"]))
    access = lake.table_access(user, database, table, COLUMNS)
    assert (access.select, access.describe, access.columns, access.row_filter) == (True, True, ("id", "salary"), None)
    assert lake.database_visible(user, database)
    other = stack.client("iam").create_user(UserName=unique("lfuser"))["User"]["Arn"]
    grant(lf, other, columns(database, excluded=["email"]))
    assert lake.table_access(other, database, table, COLUMNS).columns == ("id", "dept", "salary")


def test_table_select_is_every_column(lf, lake, governed_table, user):
    database, table = governed_table
    grant(lf, user, {"Table": {"DatabaseName": database, "Name": table}})
    access = lake.table_access(user, database, table)           # columns looked up in the catalog
    assert (access.select, access.columns, access.row_filter) == (True, None, None)


def test_filters_combine_as_a_union_of_cells(lf, lake, stack, governed_table, user):
    database, table = governed_table
    grant(lf, user, cells_filter(lf, stack, database, "hr", "dept = 'HR'", names=["id", "dept", "salary"]))
    grant(lf, user, cells_filter(lf, stack, database, "it", "dept = 'IT'", names=["id", "dept"]))
    access = lake.table_access(user, database, table, COLUMNS)
    assert access.columns == ("id", "dept", "salary")
    assert access.row_filter == "(dept = 'HR') OR (dept = 'IT')"
    assert access.cells == {"salary": "(dept = 'HR')"}           # salary shows only in HR rows
    # one grant with every row makes it every row
    grant(lf, user, cells_filter(lf, stack, database, "ids", names=["id"]))
    access = lake.table_access(user, database, table, COLUMNS)
    assert access.row_filter is None
    assert access.cells == {"dept": "(dept = 'HR') OR (dept = 'IT')", "salary": "(dept = 'HR')"}


def test_revoke_takes_effect_on_the_next_decision(lf, lake, governed_table, user):
    database, table = governed_table
    resource = {"Table": {"DatabaseName": database, "Name": table}}
    grant(lf, user, resource)
    assert lake.table_access(user, database, table, COLUMNS).select
    lf.revoke_permissions(Principal={"DataLakePrincipalIdentifier": user}, Resource=resource, Permissions=["SELECT"])
    assert not lake.table_access(user, database, table, COLUMNS).select


def test_describe_only(lf, lake, governed_table, user):
    database, table = governed_table
    grant(lf, user, {"Table": {"DatabaseName": database, "Name": table}}, ["DESCRIBE"])
    access = lake.table_access(user, database, table, COLUMNS)
    assert (access.select, access.describe) == (False, True)


def test_table_wildcard_and_role_sessions(lf, lake, governed_table, stack, unique):
    database, table = governed_table
    role = stack.client("iam").create_role(RoleName=unique("lfrole"), AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    grant(lf, role, {"Table": {"DatabaseName": database, "TableWildcard": {}}})
    session = stack.client("sts").assume_role(RoleArn=role, RoleSessionName="analyst")["AssumedRoleUser"]["Arn"]
    assert role in lake.principal_arns(session)
    assert lake.table_access(session, database, table, COLUMNS).select


def test_tag_values_override_down_the_hierarchy(lf, lake, governed_table, user, unique):
    database, table = governed_table
    key = unique("level")
    lf.create_lf_tag(TagKey=key, TagValues=["open", "secret"])
    try:
        lf.add_lf_tags_to_resource(Resource={"Database": {"Name": database}},
                                   LFTags=[{"TagKey": key, "TagValues": ["open"]}])
        lf.add_lf_tags_to_resource(Resource=columns(database, names=["salary"]),
                                   LFTags=[{"TagKey": key, "TagValues": ["secret"]}])
        assert lake.tags_of(database, table, "salary") == {key: "secret"}
        assert lake.tags_of(database, table, "id") == {key: "open"}
        grant(lf, user, {"LFTagPolicy": {"ResourceType": "TABLE", "Expression": [{"TagKey": key, "TagValues": ["secret"]}]}})
        access = lake.table_access(user, database, table, COLUMNS)
        assert (access.select, access.columns) == (True, ("salary",))      # the table is "open": only the column
        lf.add_lf_tags_to_resource(Resource={"Table": {"DatabaseName": database, "Name": table}},
                                   LFTags=[{"TagKey": key, "TagValues": ["secret"]}])
        assert lake.table_access(user, database, table, COLUMNS).columns is None     # the table now matches
        grant(lf, user, {"LFTagPolicy": {"ResourceType": "DATABASE",
                                         "Expression": [{"TagKey": key, "TagValues": ["open"]}]}}, ["DESCRIBE"])
        assert "DESCRIBE" in lake.database_permissions(user, database)
    finally:
        lf.delete_lf_tag(TagKey=key)


def test_empty_default_settings_govern_only_new_tables(lf, lake, stack, unique):
    glue = stack.client("glue")
    database = unique("lfdef").replace("-", "_")
    glue.create_database(DatabaseInput={"Name": database})
    glue.create_table(DatabaseName=database, TableInput={"Name": "before", "StorageDescriptor": {"Columns": []}})
    before = lf.get_data_lake_settings()["DataLakeSettings"]
    lf.put_data_lake_settings(DataLakeSettings={**before, "CreateDatabaseDefaultPermissions": [],
                                                "CreateTableDefaultPermissions": []})
    try:
        glue.create_table(DatabaseName=database, TableInput={"Name": "after", "StorageDescriptor": {"Columns": []}})
        assert (lake.governed(database, "before"), lake.governed(database, "after")) == (False, True)
    finally:
        lf.put_data_lake_settings(DataLakeSettings=before)
    assert (lake.governed(database, "before"), lake.governed(database, "after")) == (False, True)
    glue.create_table(DatabaseName=database, TableInput={"Name": "later", "StorageDescriptor": {"Columns": []}})
    assert not lake.governed(database, "later")


def test_database_default_for_new_tables(lake, stack, unique):
    glue = stack.client("glue")
    database = unique("lfdbdef").replace("-", "_")
    glue.create_database(DatabaseInput={"Name": database, "CreateTableDefaultPermissions": []})
    glue.create_table(DatabaseName=database, TableInput={"Name": "t", "StorageDescriptor": {"Columns": []}})
    assert lake.governed(database, "t")


def test_data_lake_admin_sees_governed_tables(lf, lake, governed_table, user):
    database, table = governed_table
    before = lf.get_data_lake_settings()["DataLakeSettings"]
    lf.put_data_lake_settings(DataLakeSettings={**before, "DataLakeAdmins": [{"DataLakePrincipalIdentifier": user}]})
    try:
        assert lake.table_access(user, database, table, COLUMNS).select
    finally:
        lf.put_data_lake_settings(DataLakeSettings=before)
    assert not lake.table_access(user, database, table, COLUMNS).select


def test_location_access_needs_an_iam_allow(lf, lake, stack, unique):
    iam = stack.client("iam")
    bucket = unique("lf-loc")
    role = iam.create_role(RoleName=unique("lfreg"), AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    lf.register_resource(ResourceArn=f"arn:aws:s3:::{bucket}/lake", RoleArn=role)
    try:
        obj = f"s3://{bucket}/lake/sales/part-0.parquet"
        name = unique("lfreader")
        reader = iam.create_user(UserName=name)["User"]["Arn"]
        assert lake.location_access(reader, f"s3://{bucket}/elsewhere/x")          # not registered
        assert not lake.location_access(reader, obj)                               # no IAM allow
        assert lake.location_access(role, obj) and lake.location_access(None, obj)  # the role, the admin
        iam.put_user_policy(UserName=name, PolicyName="read", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "s3:Get*", "Resource": f"arn:aws:s3:::{bucket}/lake/*"}]}))
        assert lake.location_access(reader, obj)
        group = unique("lfgroup")
        iam.create_group(GroupName=group)
        iam.add_user_to_group(GroupName=group, UserName=name)
        deny = iam.create_policy(PolicyName=unique("deny"), PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Deny", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/lake/sales/*"}]}))
        iam.attach_group_policy(GroupName=group, PolicyArn=deny["Policy"]["Arn"])
        assert not lake.location_access(reader, obj)                               # explicit deny wins
        assert lake.location_access(reader, f"s3://{bucket}/lake/other/part-0.parquet")
    finally:
        lf.deregister_resource(ResourceArn=f"arn:aws:s3:::{bucket}/lake")


def test_iam_policy_wildcards():
    doc = {"Statement": [{"Effect": "Allow", "Action": ["s3:Get?bject"], "Resource": "arn:aws:s3:::b/*"},
                         {"Effect": "Deny", "NotAction": "s3:*", "Resource": "*"}]}
    assert iam_policy.evaluate([doc], "s3:GetObject", "arn:aws:s3:::b/k") == "Allow"
    assert iam_policy.evaluate([doc], "S3:GETOBJECT", "arn:aws:s3:::b/k") == "Allow"   # actions: any case
    assert iam_policy.evaluate([doc], "s3:GetObject", "arn:aws:s3:::B/k") == "ImplicitDeny"
    assert iam_policy.evaluate([doc], "glue:GetTable", "arn:aws:glue:x") == "Deny"


def test_quicksight_group_members_match_group_grants(lf, lake, governed_table, stack, unique):
    database, table = governed_table
    qs = stack.client("quicksight")
    account = stack.context.account_id
    group = unique("lfqs")
    group_arn = qs.create_group(AwsAccountId=account, Namespace="default", GroupName=group)["Group"]["Arn"]
    user = qs.register_user(AwsAccountId=account, Namespace="default", IdentityType="QUICKSIGHT",
                            UserName=unique("qsuser"), Email="a@example.com", UserRole="READER")["User"]
    qs.create_group_membership(AwsAccountId=account, Namespace="default", GroupName=group, MemberName=user["UserName"])
    grant(lf, group_arn, {"Table": {"DatabaseName": database, "Name": table}})
    assert group_arn in lake.principal_arns(user["Arn"])
    assert lake.table_access(user["Arn"], database, table, COLUMNS).select
