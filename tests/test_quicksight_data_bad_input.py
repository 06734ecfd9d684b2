"""QuickSight data-plane bad input: AWS's error shapes, and nothing half-written."""
from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from test_quicksight_data import (ACCOUNT, ARN, COLUMNS, plane, run_athena, s3_dataset, s3_source,
                                  wait_ingestion)


@pytest.fixture(scope="module")
def bucket(stack, unique):
    name = unique("qs-bad")
    stack.client("s3").create_bucket(Bucket=name)
    return name


def ids(qs):
    return {d["DataSetId"] for d in qs.list_data_sets(AwsAccountId=ACCOUNT)["DataSetSummaries"]}


def code(err) -> str:
    return err.value.response["Error"]["Code"]


def test_data_set_on_a_missing_table(stack, qs, bucket, unique):
    athena = stack.client("athena")
    wg = unique("bad-wg")
    athena.create_work_group(Name=wg, Configuration={"ResultConfiguration": {
        "OutputLocation": f"s3://{bucket}/results/"}})
    db = unique("baddb").replace("-", "_")
    run_athena(athena, f"CREATE DATABASE {db}", wg)
    source_id = unique("athena")
    qs.create_data_source(AwsAccountId=ACCOUNT, DataSourceId=source_id, Name="a", Type="ATHENA",
                          DataSourceParameters={"AthenaParameters": {"WorkGroup": wg}})
    ds_id = unique("no-table")
    with pytest.raises(ClientError) as err:
        qs.create_data_set(AwsAccountId=ACCOUNT, DataSetId=ds_id, Name="x", ImportMode="SPICE",
                           PhysicalTableMap={"t": {"RelationalTable": {
                               "DataSourceArn": f"{ARN}:datasource/{source_id}", "Schema": db,
                               "Name": "no_such_table", "InputColumns": COLUMNS}}})
    assert code(err) == "InvalidParameterValueException" and "no_such_table" in str(err.value)
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert ds_id not in ids(qs)


def test_spice_ingestion_over_capacity_fails_and_keeps_the_previous_data(stack, qs, bucket, unique):
    source = s3_source(stack, qs, bucket, unique, key="cap/part1.csv")
    ds_id = unique("cap")
    created = s3_dataset(qs, ds_id, source)
    first = wait_ingestion(qs, ds_id, created["IngestionId"])
    engine = plane(stack).engine
    capacity = stack.local.quicksight.spice_capacity()
    try:
        # room for what SPICE holds now, not for a data set twice this size
        stack.local.quicksight.spice_capacity(engine.spice_used() + first["IngestionSizeInBytes"] // 2)
        stack.client("s3").put_object(Bucket=bucket, Key="cap/part2.csv",
                                      Body=("region,product,amount,order_date\n" +
                                            "south,fig,1,2024-04-01\n" * 20).encode())
        qs.create_ingestion(AwsAccountId=ACCOUNT, DataSetId=ds_id, IngestionId="too-big")
        failed = wait_ingestion(qs, ds_id, "too-big")
    finally:
        stack.local.quicksight.spice_capacity(capacity)
    assert failed["IngestionStatus"] == "FAILED"
    assert failed["ErrorInfo"]["Type"] == "ACCOUNT_CAPACITY_LIMIT_EXCEEDED"
    described = qs.describe_data_set(AwsAccountId=ACCOUNT, DataSetId=ds_id)["DataSet"]
    assert described["ConsumedSpiceCapacityInBytes"] == first["IngestionSizeInBytes"]
    assert engine.query(ds_id, "SELECT COUNT(*) FROM dataset")[1] == [(5,)]         # the previous data


def test_permissions_for_an_unknown_user(stack, qs, bucket, unique):
    source = s3_source(stack, qs, bucket, unique, key="perm/part1.csv")
    ds_id = unique("perm")
    s3_dataset(qs, ds_id, source, mode="DIRECT_QUERY")
    ghost = f"{ARN}:user/default/{unique('ghost')}"
    with pytest.raises(ClientError) as err:
        qs.update_data_set_permissions(AwsAccountId=ACCOUNT, DataSetId=ds_id, GrantPermissions=[
            {"Principal": ghost, "Actions": ["quicksight:DescribeDataSet"]}])
    assert code(err) == "InvalidParameterValueException" and ghost in str(err.value)
    assert qs.describe_data_set_permissions(AwsAccountId=ACCOUNT, DataSetId=ds_id)["Permissions"] == []
    other = unique("perm-new")
    with pytest.raises(ClientError) as err:         # at creation too: no data set is made
        s3_dataset(qs, other, source, mode="DIRECT_QUERY",
                   Permissions=[{"Principal": ghost, "Actions": ["quicksight:DescribeDataSet"]}])
    assert code(err) == "InvalidParameterValueException" and other not in ids(qs)


def test_rls_rules_referencing_a_missing_column(stack, qs, bucket, unique):
    rules_source = s3_source(stack, qs, bucket, unique, key="rules/r.csv",
                             body="UserName,country\nsomeone,fr\n")
    rules_id = unique("rules")
    rules = qs.create_data_set(
        AwsAccountId=ACCOUNT, DataSetId=rules_id, Name="rules", ImportMode="DIRECT_QUERY",
        PhysicalTableMap={"r": {"S3Source": {"DataSourceArn": rules_source, "InputColumns": [
            {"Name": "UserName", "Type": "STRING"}, {"Name": "country", "Type": "STRING"}]}}})
    source = s3_source(stack, qs, bucket, unique, key="rlsdata/part1.csv")
    ds_id = unique("rls-bad")
    with pytest.raises(ClientError) as err:
        s3_dataset(qs, ds_id, source, RowLevelPermissionDataSet={
            "Arn": rules["Arn"], "PermissionPolicy": "GRANT_ACCESS"})
    assert code(err) == "InvalidParameterValueException" and "country" in str(err.value)
    assert ds_id not in ids(qs)
    assert plane(stack).engine.spice_used() == plane(stack).engine.spice_used(exclude=ds_id)


def test_unsupported_calculated_field_function(stack, qs, bucket, unique):
    source = s3_source(stack, qs, bucket, unique, key="calc/part1.csv")
    ds_id = unique("calc")
    with pytest.raises(ClientError) as err:
        s3_dataset(qs, ds_id, source, transforms=[{"CreateColumnsOperation": {"Columns": [
            {"ColumnName": "p50", "ColumnId": "c1", "Expression": "percentileDisc({amount}, 50)"}]}}])
    assert code(err) == "InvalidParameterValueException" and "percentileDisc" in str(err.value)
    assert ds_id not in ids(qs)
    with pytest.raises(ClientError) as err:     # a field that does not exist
        s3_dataset(qs, ds_id, source, transforms=[{"CreateColumnsOperation": {"Columns": [
            {"ColumnName": "x", "ColumnId": "c1", "Expression": "{price} * 2"}]}}])
    assert code(err) == "InvalidParameterValueException" and "price" in str(err.value)
    assert ds_id not in ids(qs)


def test_data_source_on_a_missing_work_group(stack, qs, unique):
    source_id = unique("nowg")
    created = qs.create_data_source(AwsAccountId=ACCOUNT, DataSourceId=source_id, Name="a", Type="ATHENA",
                                    DataSourceParameters={"AthenaParameters": {"WorkGroup": "no-such-wg"}})
    assert created["CreationStatus"] == "CREATION_FAILED"
    source = qs.describe_data_source(AwsAccountId=ACCOUNT, DataSourceId=source_id)["DataSource"]
    assert source["Status"] == "CREATION_FAILED" and "no-such-wg" in source["ErrorInfo"]["Message"]
    ds_id = unique("on-failed")
    with pytest.raises(ClientError) as err:        # and no data set can use it
        qs.create_data_set(AwsAccountId=ACCOUNT, DataSetId=ds_id, Name="x", ImportMode="DIRECT_QUERY",
                           PhysicalTableMap={"t": {"RelationalTable": {
                               "DataSourceArn": f"{ARN}:datasource/{source_id}", "Schema": "default",
                               "Name": "t", "InputColumns": COLUMNS}}})
    assert code(err) == "InvalidParameterValueException" and ds_id not in ids(qs)


def test_s3_source_with_a_missing_manifest(stack, qs, bucket, unique):
    source_id = unique("nomanifest")
    qs.create_data_source(AwsAccountId=ACCOUNT, DataSourceId=source_id, Name="f", Type="S3",
                          DataSourceParameters={"S3Parameters": {"ManifestFileLocation": {
                              "Bucket": bucket, "Key": "missing/manifest.json"}}})
    source = qs.describe_data_source(AwsAccountId=ACCOUNT, DataSourceId=source_id)["DataSource"]
    assert source["Status"] == "CREATION_FAILED" and source["ErrorInfo"]["Type"] == "COPY_SOURCE_NOT_FOUND"


def test_duplicate_and_missing_data_sets(stack, qs, bucket, unique):
    source = s3_source(stack, qs, bucket, unique, key="dup/part1.csv")
    ds_id = unique("dup")
    s3_dataset(qs, ds_id, source, mode="DIRECT_QUERY")
    with pytest.raises(ClientError) as err:
        s3_dataset(qs, ds_id, source, mode="DIRECT_QUERY")
    assert code(err) == "ResourceExistsException"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 409
    for call in (lambda: qs.describe_data_set(AwsAccountId=ACCOUNT, DataSetId="nope"),
                 lambda: qs.describe_ingestion(AwsAccountId=ACCOUNT, DataSetId=ds_id, IngestionId="nope"),
                 lambda: qs.delete_data_set(AwsAccountId=ACCOUNT, DataSetId="nope")):
        with pytest.raises(ClientError) as err:
            call()
        assert code(err) == "ResourceNotFoundException"
    # a DIRECT_QUERY data set has nothing to ingest
    qs.create_ingestion(AwsAccountId=ACCOUNT, DataSetId=ds_id, IngestionId="i1")
    failed = wait_ingestion(qs, ds_id, "i1")
    assert failed["IngestionStatus"] == "FAILED" and failed["ErrorInfo"]["Type"] == "DATA_SET_NOT_SPICE"
