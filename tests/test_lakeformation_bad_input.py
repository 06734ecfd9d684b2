"""Bad input to the Lake Formation API: AWS's error codes, and nothing half-written.

Each case is checked against Lake Formation's whole state (``ctx.lake``) before and after:
a rejected request changes nothing. Error codes from the API reference
(https://docs.aws.amazon.com/lake-formation/latest/APIReference/CommonErrors.html and each
operation's Errors section); the "No permissions revoked" text as Lake Formation writes it.
"""
from __future__ import annotations

import copy

import pytest
from botocore.exceptions import ClientError


@pytest.fixture(scope="module")
def lf(stack):
    return stack.client("lakeformation")


@pytest.fixture(scope="module")
def table(stack, unique):
    glue = stack.client("glue")
    database = unique("lfbad").replace("-", "_")
    glue.create_database(DatabaseInput={"Name": database})
    glue.create_table(DatabaseName=database, TableInput={"Name": "t", "StorageDescriptor": {
        "Columns": [{"Name": "a", "Type": "int"}, {"Name": "b", "Type": "string"}]}})
    return database, "t"


@pytest.fixture(scope="module")
def user(stack, unique):
    return stack.client("iam").create_user(UserName=unique("lfbad"))["User"]["Arn"]


def state(stack):
    lake = stack.context.lake
    with lake.lock:
        return copy.deepcopy((lake.settings, lake.registrations, {k: vars(g) for k, g in lake.grants.items()},
                              lake.lf_tags, lake.tag_assignments, lake.cells_filters, lake.opt_ins,
                              lake._iam_allowed))


def rejected(stack, call, error_code, **kwargs):
    before = state(stack)
    with pytest.raises(ClientError) as excinfo:
        call(**kwargs)
    assert excinfo.value.response["Error"]["Code"] == error_code, excinfo.value.response["Error"]
    assert state(stack) == before, "a rejected request changed Lake Formation's state"
    return excinfo.value.response["Error"]["Message"]


def who(arn):
    return {"DataLakePrincipalIdentifier": arn}


def test_grant_with_two_resources(lf, stack, table, user):
    database, name = table
    rejected(stack, lf.grant_permissions, "InvalidInputException", Principal=who(user), Permissions=["SELECT"],
             Resource={"Table": {"DatabaseName": database, "Name": name}, "Database": {"Name": database}})


def test_grant_on_a_missing_database_or_table(lf, stack, table, user):
    database, _ = table
    rejected(stack, lf.grant_permissions, "EntityNotFoundException", Principal=who(user), Permissions=["DESCRIBE"],
             Resource={"Database": {"Name": database + "_missing"}})
    rejected(stack, lf.grant_permissions, "EntityNotFoundException", Principal=who(user), Permissions=["SELECT"],
             Resource={"Table": {"DatabaseName": database, "Name": "missing"}})


def test_grant_on_a_missing_column(lf, stack, table, user):
    database, name = table
    message = rejected(stack, lf.grant_permissions, "InvalidInputException", Principal=who(user),
                       Permissions=["SELECT"], Resource={"TableWithColumns": {
                           "DatabaseName": database, "Name": name, "ColumnNames": ["a", "nope"]}})
    assert "nope" in message


def test_permission_that_does_not_apply_to_the_resource(lf, stack, table, user):
    database, _ = table
    rejected(stack, lf.grant_permissions, "InvalidInputException", Principal=who(user), Permissions=["SELECT"],
             Resource={"Database": {"Name": database}})


def test_grant_option_outside_the_permissions(lf, stack, table, user):
    database, name = table
    rejected(stack, lf.grant_permissions, "InvalidInputException", Principal=who(user), Permissions=["SELECT"],
             PermissionsWithGrantOption=["ALTER"], Resource={"Table": {"DatabaseName": database, "Name": name}})


def test_malformed_principal(lf, stack, table):
    database, name = table
    rejected(stack, lf.grant_permissions, "InvalidInputException", Principal=who("bob"), Permissions=["SELECT"],
             Resource={"Table": {"DatabaseName": database, "Name": name}})


def test_revoke_what_was_never_granted(lf, stack, table, user):
    database, name = table
    message = rejected(stack, lf.revoke_permissions, "InvalidInputException", Principal=who(user),
                       Permissions=["SELECT"], Resource={"Table": {"DatabaseName": database, "Name": name}})
    assert message.startswith("No permissions revoked")


def test_data_location_that_is_not_registered(lf, stack, user):
    rejected(stack, lf.grant_permissions, "InvalidInputException", Principal=who(user),
             Permissions=["DATA_LOCATION_ACCESS"], Resource={"DataLocation": {"ResourceArn": "arn:aws:s3:::nobody/x"}})


def test_batch_limits(lf, stack, table, user):
    database, name = table
    entry = {"Principal": who(user), "Resource": {"Table": {"DatabaseName": database, "Name": name}},
             "Permissions": ["SELECT"]}
    rejected(stack, lf.batch_grant_permissions, "InvalidInputException",
             Entries=[{**entry, "Id": str(i)} for i in range(21)])
    rejected(stack, lf.batch_grant_permissions, "InvalidInputException",
             Entries=[{**entry, "Id": "same"}, {**entry, "Id": "same"}])


def test_list_permissions_principal_without_resource(lf, stack, user):
    message = rejected(stack, lf.list_permissions, "InvalidInputException", Principal=who(user))
    assert message == "Resource is mandatory if Principal is set in the input."


def test_bad_data_cells_filters(lf, stack, table):
    database, name = table
    base = {"TableCatalogId": stack.context.account_id, "DatabaseName": database, "TableName": name,
            "Name": "f", "RowFilter": {"AllRowsWildcard": {}}, "ColumnNames": ["a"]}
    rejected(stack, lf.create_data_cells_filter, "InvalidInputException",
             TableData={**base, "RowFilter": {"FilterExpression": "a = = 1"}})
    rejected(stack, lf.create_data_cells_filter, "InvalidInputException",
             TableData={**base, "RowFilter": {"FilterExpression": "missing_column > 1"}})
    rejected(stack, lf.create_data_cells_filter, "InvalidInputException",   # no functions in PartiQL filters
             TableData={**base, "RowFilter": {"FilterExpression": "lower(b) = 'x'"}})
    rejected(stack, lf.create_data_cells_filter, "InvalidInputException",   # columns compare with constants
             TableData={**base, "RowFilter": {"FilterExpression": "a = b"}})
    rejected(stack, lf.create_data_cells_filter, "InvalidInputException",
             TableData={**base, "ColumnWildcard": {}})
    rejected(stack, lf.create_data_cells_filter, "EntityNotFoundException", TableData={**base, "TableName": "nope"})
    lf.create_data_cells_filter(TableData=base)
    rejected(stack, lf.create_data_cells_filter, "AlreadyExistsException", TableData=base)
    rejected(stack, lf.update_data_cells_filter, "EntityNotFoundException", TableData={**base, "Name": "other"})
    rejected(stack, lf.get_data_cells_filter, "EntityNotFoundException", TableCatalogId=stack.context.account_id,
             DatabaseName=database, TableName=name, Name="other")


def test_bad_lf_tags(lf, stack, table, unique):
    database, name = table
    key = unique("tagbad")
    rejected(stack, lf.get_lf_tag, "EntityNotFoundException", TagKey=key)
    rejected(stack, lf.create_lf_tag, "InvalidInputException", TagKey=key,      # 50 values per call
             TagValues=[str(i) for i in range(51)])
    lf.create_lf_tag(TagKey=key, TagValues=["x"])
    try:
        rejected(stack, lf.update_lf_tag, "InvalidInputException", TagKey=key, TagValuesToDelete=["x"])   # the last
        for start in range(1, 1000, 50):                                          # 1000 values per LF-Tag
            lf.update_lf_tag(TagKey=key, TagValuesToAdd=[str(i) for i in range(start, min(start + 50, 1000))])
        rejected(stack, lf.update_lf_tag, "ResourceNumberLimitExceededException", TagKey=key,
                 TagValuesToAdd=["one-too-many"])
        rejected(stack, lf.create_lf_tag, "AlreadyExistsException", TagKey=key, TagValues=["y"])
        rejected(stack, lf.add_lf_tags_to_resource, "EntityNotFoundException",
                 Resource={"Table": {"DatabaseName": database, "Name": "nope"}},
                 LFTags=[{"TagKey": key, "TagValues": ["x"]}])
        rejected(stack, lf.grant_permissions, "InvalidInputException",
                 Principal=who("IAM_ALLOWED_PRINCIPALS"), Permissions=["SELECT"],
                 Resource={"LFTagPolicy": {"ResourceType": "TABLE", "Expression": [{"TagKey": key, "TagValues": ["z"]}]}})
    finally:
        lf.delete_lf_tag(TagKey=key)


def test_bad_registrations(lf, stack):
    rejected(stack, lf.register_resource, "InvalidInputException", ResourceArn="s3://bucket/path",
             UseServiceLinkedRole=True)
    rejected(stack, lf.register_resource, "InvalidInputException", ResourceArn="arn:aws:s3:::bucket-x")
    rejected(stack, lf.deregister_resource, "EntityNotFoundException", ResourceArn="arn:aws:s3:::never-registered")


def test_settings_with_a_group_as_administrator(lf, stack):
    settings = lf.get_data_lake_settings()["DataLakeSettings"]
    rejected(stack, lf.put_data_lake_settings, "InvalidInputException",
             DataLakeSettings={**settings, "DataLakeAdmins": [who("IAM_ALLOWED_PRINCIPALS")]})
