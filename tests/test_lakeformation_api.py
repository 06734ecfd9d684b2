"""Lake Formation's API on the local stack: shapes, grants, filters, LF-Tags, who may call.

Each test works in databases of its own (the stack is shared by the whole session) and
leaves the data lake settings as it found them. Decisions without the HTTP layer are in
``test_lake_policy.py``; bad input in ``test_lakeformation_bad_input.py``.
API reference: https://docs.aws.amazon.com/lake-formation/latest/APIReference/API_Operations.html
"""
from __future__ import annotations

import contextlib

import pytest
from botocore.exceptions import ClientError

IAM_ALLOWED = "IAM_ALLOWED_PRINCIPALS"
COLUMNS = [("id", "int"), ("region", "string"), ("email", "string"), ("total", "double")]


@pytest.fixture(scope="module")
def lf(stack):
    return stack.client("lakeformation")


@pytest.fixture(scope="module")
def make_table(stack, unique):
    """``make_table()`` -> (database, table): a new database with one table ``orders``."""
    glue = stack.client("glue")

    def make(prefix="lfapi"):
        database = unique(prefix).replace("-", "_")
        glue.create_database(DatabaseInput={"Name": database, "LocationUri": f"s3://lf-api-bucket/{database}/"})
        glue.create_table(DatabaseName=database, TableInput={
            "Name": "orders", "PartitionKeys": [{"Name": "day", "Type": "string"}],
            "StorageDescriptor": {"Columns": [{"Name": n, "Type": t} for n, t in COLUMNS],
                                  "Location": f"s3://lf-api-bucket/{database}/orders/"}})
        return database, "orders"
    return make


@pytest.fixture(scope="module")
def analyst(stack, unique):
    """An IAM user with its own access keys and its Lake Formation client."""
    iam = stack.client("iam")
    name = unique("analyst")
    arn = iam.create_user(UserName=name)["User"]["Arn"]
    return arn, stack.client("lakeformation", principal=arn)


@contextlib.contextmanager
def settings_restored(lf):
    before = lf.get_data_lake_settings()["DataLakeSettings"]
    try:
        yield before
    finally:
        lf.put_data_lake_settings(DataLakeSettings=before)


def table_resource(database, table="orders"):
    return {"Table": {"DatabaseName": database, "Name": table}}


def principal(arn):
    return {"DataLakePrincipalIdentifier": arn}


def code(excinfo) -> str:
    return excinfo.value.response["Error"]["Code"]


def test_new_account_settings_give_iam_allowed_principals_all(lf):
    settings = lf.get_data_lake_settings()["DataLakeSettings"]
    assert settings["DataLakeAdmins"] == []
    for field in ("CreateDatabaseDefaultPermissions", "CreateTableDefaultPermissions"):
        assert settings[field] == [{"Principal": principal(IAM_ALLOWED), "Permissions": ["ALL"]}]


def test_admins_only_may_change_settings(lf, analyst):
    arn, as_analyst = analyst
    with settings_restored(lf) as before:
        with pytest.raises(ClientError) as denied:
            as_analyst.put_data_lake_settings(DataLakeSettings={**before, "DataLakeAdmins": [principal(arn)]})
        assert code(denied) == "AccessDeniedException"
        lf.put_data_lake_settings(DataLakeSettings={**before, "DataLakeAdmins": [principal(arn)]})
        assert lf.get_data_lake_settings()["DataLakeSettings"]["DataLakeAdmins"] == [principal(arn)]
        as_analyst.get_data_lake_settings()                 # now an administrator: may read and write
        as_analyst.put_data_lake_settings(DataLakeSettings={**before, "DataLakeAdmins": [principal(arn)]})
    assert lf.get_data_lake_settings()["DataLakeSettings"]["DataLakeAdmins"] == before["DataLakeAdmins"]


def test_register_describe_list_deregister(lf, stack, unique):
    bucket = unique("lf-reg")
    role = stack.client("iam").create_role(RoleName=unique("lfrole"), AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    arn = f"arn:aws:s3:::{bucket}/data"
    lf.register_resource(ResourceArn=arn, RoleArn=role, HybridAccessEnabled=True)
    try:
        info = lf.describe_resource(ResourceArn=arn)["ResourceInfo"]
        assert (info["ResourceArn"], info["RoleArn"], info["HybridAccessEnabled"]) == (arn, role, True)
        assert "LastModified" in info
        with pytest.raises(ClientError) as again:
            lf.register_resource(ResourceArn=arn, RoleArn=role)
        assert code(again) == "AlreadyExistsException"
        listed = lf.list_resources(FilterConditionList=[
            {"Field": "RESOURCE_ARN", "ComparisonOperator": "EQ", "StringValueList": [arn]}])["ResourceInfoList"]
        assert [r["ResourceArn"] for r in listed] == [arn]
        assert stack.context.lake.registered(f"s3://{bucket}/data/part-0.parquet")["RoleArn"] == role
        assert stack.context.lake.registered(f"s3://{bucket}/database/x") is None
    finally:
        lf.deregister_resource(ResourceArn=arn)
    with pytest.raises(ClientError) as gone:
        lf.describe_resource(ResourceArn=arn)
    assert code(gone) == "EntityNotFoundException"


def test_service_linked_role_registration(lf, unique):
    arn = f"arn:aws:s3:::{unique('lf-slr')}"
    lf.register_resource(ResourceArn=arn, UseServiceLinkedRole=True)
    try:
        role = lf.describe_resource(ResourceArn=arn)["ResourceInfo"]["RoleArn"]
        assert role.endswith("role/aws-service-role/lakeformation.amazonaws.com/AWSServiceRoleForLakeFormationDataAccess")
    finally:
        lf.deregister_resource(ResourceArn=arn)


def test_default_grant_is_listed_and_revoking_it_governs_the_table(lf, stack, make_table):
    database, table = make_table()
    listed = lf.list_permissions(Resource=table_resource(database))["PrincipalResourcePermissions"]
    assert [(e["Principal"]["DataLakePrincipalIdentifier"], e["Permissions"]) for e in listed] == [(IAM_ALLOWED, ["ALL"])]
    assert not stack.context.lake.governed(database, table)
    lf.revoke_permissions(Principal=principal(IAM_ALLOWED), Resource=table_resource(database), Permissions=["ALL"])
    assert stack.context.lake.governed(database, table)
    assert lf.list_permissions(Resource=table_resource(database))["PrincipalResourcePermissions"] == []
    with pytest.raises(ClientError) as twice:
        lf.revoke_permissions(Principal=principal(IAM_ALLOWED), Resource=table_resource(database), Permissions=["ALL"])
    assert code(twice) == "InvalidInputException"
    assert "No permissions revoked" in twice.value.response["Error"]["Message"]
    lf.grant_permissions(Principal=principal(IAM_ALLOWED), Resource=table_resource(database), Permissions=["ALL"])
    assert not stack.context.lake.governed(database, table)


def test_grant_list_revoke_columns(lf, stack, make_table, analyst):
    database, table = make_table()
    arn, _ = analyst
    columns = {"TableWithColumns": {"DatabaseName": database, "Name": table, "ColumnNames": ["id", "region"]}}
    lf.grant_permissions(Principal=principal(arn), Resource=columns, Permissions=["SELECT"])
    lf.grant_permissions(Principal=principal(arn), Resource={"TableWithColumns": {
        "DatabaseName": database, "Name": table, "ColumnNames": ["total"]}}, Permissions=["SELECT"])
    mine = lf.list_permissions(Principal=principal(arn), Resource=table_resource(database))
    [entry] = mine["PrincipalResourcePermissions"]
    assert entry["Resource"]["TableWithColumns"]["ColumnNames"] == ["id", "region", "total"]
    assert entry["Permissions"] == ["SELECT"] and entry["PermissionsWithGrantOption"] == []
    lf.revoke_permissions(Principal=principal(arn), Resource={"TableWithColumns": {
        "DatabaseName": database, "Name": table, "ColumnNames": ["region"]}}, Permissions=["SELECT"])
    [entry] = lf.list_permissions(Principal=principal(arn), Resource=table_resource(database))[
        "PrincipalResourcePermissions"]
    assert entry["Resource"]["TableWithColumns"]["ColumnNames"] == ["id", "total"]
    by_type, token = [], None          # every page: other tests' grants come first in a full run
    while True:
        page = lf.list_permissions(ResourceType="TABLE", **({"NextToken": token} if token else {}))
        by_type += page["PrincipalResourcePermissions"]
        token = page.get("NextToken")
        if not token:
            break
    assert any(e["Principal"]["DataLakePrincipalIdentifier"] == arn for e in by_type)


def test_batch_grant_records_good_entries_and_reports_failures(lf, make_table, analyst):
    database, table = make_table()
    arn, _ = analyst
    answer = lf.batch_grant_permissions(Entries=[
        {"Id": "good", "Principal": principal(arn), "Resource": table_resource(database), "Permissions": ["SELECT"]},
        {"Id": "no-table", "Principal": principal(arn), "Resource": table_resource(database, "missing"),
         "Permissions": ["SELECT"]},
        {"Id": "wrong-permission", "Principal": principal(arn), "Resource": {"Database": {"Name": database}},
         "Permissions": ["SELECT"]},
    ])
    failures = {f["RequestEntry"]["Id"]: f["Error"]["ErrorCode"] for f in answer["Failures"]}
    assert failures == {"no-table": "EntityNotFoundException", "wrong-permission": "InvalidInputException"}
    [entry] = lf.list_permissions(Principal=principal(arn), Resource=table_resource(database))[
        "PrincipalResourcePermissions"]
    assert entry["Permissions"] == ["SELECT"]
    revoked = lf.batch_revoke_permissions(Entries=[
        {"Id": "1", "Principal": principal(arn), "Resource": table_resource(database), "Permissions": ["SELECT"]},
        {"Id": "2", "Principal": principal(arn), "Resource": table_resource(database), "Permissions": ["SELECT"]}])
    assert [f["RequestEntry"]["Id"] for f in revoked["Failures"]] == ["2"]      # the first one revoked it


def test_grantor_needs_the_grant_option(lf, stack, make_table, analyst, unique):
    database, table = make_table()
    arn, as_analyst = analyst
    other = stack.client("iam").create_user(UserName=unique("colleague"))["User"]["Arn"]
    grant = dict(Principal=principal(other), Resource=table_resource(database), Permissions=["SELECT"])
    with pytest.raises(ClientError) as denied:
        as_analyst.grant_permissions(**grant)
    assert code(denied) == "AccessDeniedException"
    with pytest.raises(ClientError) as hidden:       # a missing table answers the same: nothing leaks
        as_analyst.grant_permissions(**{**grant, "Resource": table_resource(database, "secret_missing")})
    assert code(hidden) == "AccessDeniedException"
    assert hidden.value.response["Error"]["Message"] == denied.value.response["Error"]["Message"]
    lf.grant_permissions(Principal=principal(arn), Resource=table_resource(database), Permissions=["SELECT"],
                         PermissionsWithGrantOption=["SELECT"])
    as_analyst.grant_permissions(**grant)
    assert stack.context.lake.grants[(other, ("table", database, table))].permissions == {"SELECT"}
    with pytest.raises(ClientError) as more:
        as_analyst.grant_permissions(**{**grant, "Permissions": ["ALTER"]})
    assert code(more) == "AccessDeniedException"
    with pytest.raises(ClientError) as register:
        as_analyst.register_resource(ResourceArn="arn:aws:s3:::somebucket", UseServiceLinkedRole=True)
    assert code(register) == "AccessDeniedException"


def test_data_cells_filter_crud_and_grant(lf, stack, make_table, analyst):
    database, table = make_table()
    arn, _ = analyst
    account = stack.context.account_id
    data = {"TableCatalogId": account, "DatabaseName": database, "TableName": table, "Name": "eu_only",
            "RowFilter": {"FilterExpression": "region = 'EU'"}, "ColumnWildcard": {"ExcludedColumnNames": ["email"]}}
    lf.create_data_cells_filter(TableData=data)
    got = lf.get_data_cells_filter(TableCatalogId=account, DatabaseName=database, TableName=table,
                                   Name="eu_only")["DataCellsFilter"]
    assert got["RowFilter"] == {"FilterExpression": "region = 'EU'"} and got["VersionId"] == "1"
    assert got["ColumnWildcard"] == {"ExcludedColumnNames": ["email"]}
    lf.update_data_cells_filter(TableData={**data, "ColumnWildcard": {"ExcludedColumnNames": ["email", "total"]}})
    listed = lf.list_data_cells_filter(Table={"DatabaseName": database, "Name": table})["DataCellsFilters"]
    assert [(f["Name"], f["VersionId"]) for f in listed] == [("eu_only", "2")]
    lf.revoke_permissions(Principal=principal(IAM_ALLOWED), Resource=table_resource(database), Permissions=["ALL"])
    lf.grant_permissions(Principal=principal(arn), Permissions=["SELECT"], Resource={"DataCellsFilter": {
        "TableCatalogId": account, "DatabaseName": database, "TableName": table, "Name": "eu_only"}})
    access = stack.context.lake.table_access(arn, database, table)
    assert (access.select, access.columns, access.row_filter) == (True, ("id", "region", "day"), "(region = 'EU')")
    lf.delete_data_cells_filter(TableCatalogId=account, DatabaseName=database, TableName=table, Name="eu_only")
    assert not stack.context.lake.table_access(arn, database, table).select        # its grant went with it
    with pytest.raises(ClientError) as gone:
        lf.get_data_cells_filter(TableCatalogId=account, DatabaseName=database, TableName=table, Name="eu_only")
    assert code(gone) == "EntityNotFoundException"


def test_lf_tags_inherit_and_tag_based_grants(lf, stack, make_table, analyst, unique):
    database, table = make_table()
    arn, _ = analyst
    key = unique("sensitivity")
    lf.create_lf_tag(TagKey=key, TagValues=["public", "pii"])
    try:
        assert lf.get_lf_tag(TagKey=key)["TagValues"] == ["public", "pii"]
        lf.update_lf_tag(TagKey=key, TagValuesToAdd=["internal"])
        assert key in [t["TagKey"] for t in lf.list_lf_tags()["LFTags"]]
        answer = lf.add_lf_tags_to_resource(Resource={"Database": {"Name": database}},
                                            LFTags=[{"TagKey": key, "TagValues": ["public"]}])
        assert answer["Failures"] == []
        lf.add_lf_tags_to_resource(Resource={"TableWithColumns": {"DatabaseName": database, "Name": table,
                                                                  "ColumnNames": ["email"]}},
                                   LFTags=[{"TagKey": key, "TagValues": ["pii"]}])
        bad = lf.add_lf_tags_to_resource(Resource=table_resource(database),
                                         LFTags=[{"TagKey": key, "TagValues": ["nope"]}])["Failures"]
        assert [f["Error"]["ErrorCode"] for f in bad] == ["InvalidInputException"]
        tags = lf.get_resource_lf_tags(Resource=table_resource(database))
        assert tags["LFTagOnDatabase"][0]["TagValues"] == ["public"]
        assert tags["LFTagsOnTable"][0]["TagValues"] == ["public"]                 # inherited
        by_column = {c["Name"]: c["LFTags"][0]["TagValues"] for c in tags["LFTagsOnColumns"]}
        assert by_column["email"] == ["pii"] and by_column["id"] == ["public"]     # overridden on email
        assigned = lf.get_resource_lf_tags(Resource=table_resource(database), ShowAssignedLFTags=True)
        assert assigned["LFTagsOnTable"] == []
        found = lf.search_tables_by_lf_tags(Expression=[{"TagKey": key, "TagValues": ["pii"]}])["TableList"]
        assert [(t["Table"]["DatabaseName"], [c["Name"] for c in t["LFTagsOnColumns"]]) for t in found] == \
            [(database, ["email"])]
        dbs = lf.search_databases_by_lf_tags(Expression=[{"TagKey": key, "TagValues": ["public"]}])["DatabaseList"]
        assert [d["Database"]["Name"] for d in dbs] == [database]

        lf.revoke_permissions(Principal=principal(IAM_ALLOWED), Resource=table_resource(database),
                              Permissions=["ALL"])
        lf.grant_permissions(Principal=principal(arn), Permissions=["SELECT"], Resource={"LFTagPolicy": {
            "ResourceType": "TABLE", "Expression": [{"TagKey": key, "TagValues": ["public"]}]}})
        access = stack.context.lake.table_access(arn, database, table)
        assert access.select and access.columns == ("id", "region", "total", "day")   # not the pii column
        lf.remove_lf_tags_from_resource(Resource={"TableWithColumns": {"DatabaseName": database, "Name": table,
                                                                       "ColumnNames": ["email"]}},
                                        LFTags=[{"TagKey": key, "TagValues": ["pii"]}])
        assert stack.context.lake.table_access(arn, database, table).columns is None     # all columns now
    finally:
        lf.delete_lf_tag(TagKey=key)
    assert not stack.context.lake.table_access(arn, database, table).select           # the tag grant went too


def test_effective_permissions_for_path(lf, make_table, analyst):
    database, table = make_table()
    arn, _ = analyst
    lf.grant_permissions(Principal=principal(arn), Resource=table_resource(database), Permissions=["DESCRIBE"])
    found = lf.get_effective_permissions_for_path(ResourceArn=f"arn:aws:s3:::lf-api-bucket/{database}")["Permissions"]
    pairs = {(e["Principal"]["DataLakePrincipalIdentifier"], next(iter(e["Resource"]))) for e in found}
    assert {(arn, "Table"), (IAM_ALLOWED, "Table"), (IAM_ALLOWED, "Database")} <= pairs


def test_hybrid_access_opt_in(lf, stack, make_table, analyst):
    database, table = make_table()
    arn, as_analyst = analyst
    lake = stack.context.lake
    assert lake.table_access(arn, database, table).select            # IAM decides: not governed
    lf.create_lake_formation_opt_in(Principal=principal(arn), Resource=table_resource(database))
    listed = lf.list_lake_formation_opt_ins(Principal=principal(arn))["LakeFormationOptInsInfoList"]
    assert [o["Resource"]["Table"]["Name"] for o in listed] == [table]
    assert not lake.table_access(arn, database, table).select        # held to LF grants: none yet
    lf.grant_permissions(Principal=principal(arn), Resource=table_resource(database), Permissions=["SELECT"])
    assert lake.table_access(arn, database, table).select
    with pytest.raises(ClientError) as denied:
        as_analyst.delete_lake_formation_opt_in(Principal=principal(arn), Resource=table_resource(database))
    assert code(denied) == "AccessDeniedException"
    lf.delete_lake_formation_opt_in(Principal=principal(arn), Resource=table_resource(database))
    assert lf.list_lake_formation_opt_ins(Principal=principal(arn))["LakeFormationOptInsInfoList"] == []
