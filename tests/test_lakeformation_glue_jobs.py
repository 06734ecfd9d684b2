"""Lake Formation enforced in Glue ETL jobs that read through the Data Catalog.

A governed table ``employees`` (Parquet, partitioned by ``region``; ``salary`` and
``ssn`` sensitive) lives in a location registered with Lake Formation under a
role of its own. Three job roles:

- ``reader`` holds SELECT on one data cells filter (EU rows; id, name, dept, region)
  and an IAM policy with ``lakeformation:GetDataAccess``, nothing on S3;
- ``describer`` holds only DESCRIBE on the table (and GetDataAccess);
- the same ``reader`` role on a Glue 4.0 job (no fine-grained access).

What AWS documents, and these tests check:

- Glue 5.0 with ``--enable-lakeformation-fine-grained-access true``: reads through
  the catalog return exactly the permitted rows and columns; the S3 data comes
  through credentials Lake Formation vends (``GetTemporaryGlueTableCredentials``),
  while a direct ``spark.read.parquet`` of the registered location, signed as the
  role, is denied (https://docs.aws.amazon.com/glue/latest/dg/security-lf-enable.html);
- a role with DESCRIBE but no SELECT gets an empty list of authorized columns and
  the read fails (https://docs.aws.amazon.com/lake-formation/latest/dg/api-overview.html);
- an engine that does not support the filtering the grants need gets
  PermissionTypeMismatchException "to avoid data leakage" (same page); a Glue job
  without fine-grained access is such an engine.

Three Spark runs, started together.
"""
from __future__ import annotations

import io
import json
import uuid

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from botocore.exceptions import ClientError

from localaws.core.waiting import wait_until

SUFFIX = uuid.uuid4().hex[:8]
DB, LAKE, CODE = f"lfglue_{SUFFIX}", f"lf-glue-lake-{SUFFIX}", f"lf-glue-code-{SUFFIX}"
ACTIVE = ("STARTING", "RUNNING", "STOPPING", "WAITING")
EMPLOYEES = pd.DataFrame({
    "id": [1, 2, 3, 4, 5, 6],
    "name": ["Ana", "Ben", "Cleo", "Dan", "Eve", "Finn"],
    "dept": ["sales", "ops", "sales", "ops", "sales", "hr"],
    "salary": [5100.0, 6200.0, 7300.0, 8400.0, 9500.0, 10600.0],
    "ssn": ["111-11-1111", "222-22-2222", "333-33-3333", "444-44-4444", "555-55-5555", "666-66-6666"],
    "region": ["eu", "eu", "eu", "us", "us", "us"],
})
VISIBLE = ["id", "name", "dept", "region"]
SECRETS = [str(v) for v in EMPLOYEES["ssn"]] + ["5100.0", "6200.0", "7300.0"]

READ = '''
import json, sys
import boto3
from awsglue.context import GlueContext
from pyspark.context import SparkContext

glue_context = GlueContext(SparkContext())
spark = glue_context.spark_session
frame = glue_context.create_dynamic_frame.from_catalog(database="%(db)s", table_name="employees").toDF()
print("COLUMNS " + json.dumps(frame.columns))
print("ROWS " + json.dumps(sorted([r.asDict() for r in frame.collect()], key=lambda r: r["id"])))
df = glue_context.create_data_frame.from_catalog(database="%(db)s", table_name="employees")
print("DF " + json.dumps([df.columns, df.count()]))
try:
    spark.read.parquet("s3://%(lake)s/employees/").count()
    print("DIRECT read")
except Exception as exc:
    java = getattr(exc, "java_exception", None)
    print("DIRECT denied " + (java.toString() if java is not None else str(exc)).splitlines()[0][:300])
try:
    boto3.client("s3").list_objects_v2(Bucket="%(lake)s", Prefix="employees/")
    print("BOTO read")
except Exception as exc:
    print("BOTO denied " + str(exc)[:300])
'''


def parquet(frame: pd.DataFrame) -> bytes:
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), sink)
    return sink.getvalue()


def column(name: str, kind: str) -> dict:
    return {"Name": name, "Type": kind}


@pytest.fixture(scope="module")
def lake(stack):
    s3, iam, lf, glue = (stack.client(s) for s in ("s3", "iam", "lakeformation", "glue"))
    account = stack.client("sts").get_caller_identity()["Account"]
    for bucket in (LAKE, CODE):
        s3.create_bucket(Bucket=bucket)
    for region, rows in EMPLOYEES.groupby("region"):
        s3.put_object(Bucket=LAKE, Key=f"employees/region={region}/part-0.parquet",
                      Body=parquet(rows.drop(columns="region")))
    trust = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                                 "Principal": {"Service": "glue.amazonaws.com"}}]})
    roles = {}
    for name in ("reader", "describer", "register", "noaccess"):
        roles[name] = iam.create_role(RoleName=f"lfglue-{name}-{SUFFIX}", AssumeRolePolicyDocument=trust)["Role"]["Arn"]
    data_access = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["lakeformation:GetDataAccess", "glue:Get*"], "Resource": "*"}]})
    for name in ("reader", "describer"):
        iam.put_role_policy(RoleName=f"lfglue-{name}-{SUFFIX}", PolicyName="lf", PolicyDocument=data_access)

    glue.create_database(DatabaseInput={"Name": DB})
    sd = {"Columns": [column("id", "bigint"), column("name", "string"), column("dept", "string"),
                      column("salary", "double"), column("ssn", "string")],
          "Location": f"s3://{LAKE}/employees/",
          "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
          "SerdeInfo": {"SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"}}
    glue.create_table(DatabaseName=DB, TableInput={
        "Name": "employees", "StorageDescriptor": sd, "PartitionKeys": [column("region", "string")],
        "TableType": "EXTERNAL_TABLE", "Parameters": {"classification": "parquet"}})
    glue.batch_create_partition(DatabaseName=DB, TableName="employees", PartitionInputList=[
        {"Values": [r], "StorageDescriptor": {**sd, "Location": f"s3://{LAKE}/employees/region={r}/"}}
        for r in ("eu", "us")])

    lf.register_resource(ResourceArn=f"arn:aws:s3:::{LAKE}", RoleArn=roles["register"])
    everyone = {"DataLakePrincipalIdentifier": "IAM_ALLOWED_PRINCIPALS"}
    lf.revoke_permissions(Principal=everyone, Resource={"Database": {"Name": DB}}, Permissions=["ALL"])
    table = {"Table": {"DatabaseName": DB, "Name": "employees"}}
    lf.revoke_permissions(Principal=everyone, Resource=table, Permissions=["ALL"])
    lf.create_data_cells_filter(TableData={
        "TableCatalogId": account, "DatabaseName": DB, "TableName": "employees", "Name": "eu_rows",
        "RowFilter": {"FilterExpression": "region = 'eu'"}, "ColumnNames": VISIBLE})
    lf.grant_permissions(Principal={"DataLakePrincipalIdentifier": roles["reader"]}, Permissions=["SELECT"],
                         Resource={"DataCellsFilter": {"TableCatalogId": account, "DatabaseName": DB,
                                                       "TableName": "employees", "Name": "eu_rows"}})
    lf.grant_permissions(Principal={"DataLakePrincipalIdentifier": roles["describer"]}, Permissions=["DESCRIBE"],
                         Resource=table)

    class Lake:
        pass
    out = Lake()
    out.roles, out.account = roles, account
    out.table_arn = f"arn:aws:glue:{stack.region}:{account}:table/{DB}/employees"
    out.lf_as = {name: stack.client("lakeformation", principal=arn) for name, arn in roles.items()}
    yield out
    lf.deregister_resource(ResourceArn=f"arn:aws:s3:::{LAKE}")


def start(stack, lake, name: str, role: str, version: str, fine_grained: bool) -> str:
    stack.client("s3").put_object(Bucket=CODE, Key=f"{name}.py", Body=(READ % {"db": DB, "lake": LAKE}).encode())
    arguments = {"--enable-lakeformation-fine-grained-access": "true"} if fine_grained else {}
    glue = stack.client("glue")
    glue.create_job(Name=name, Role=lake.roles[role], GlueVersion=version, DefaultArguments=arguments,
                    Command={"Name": "glueetl", "ScriptLocation": f"s3://{CODE}/{name}.py"},
                    WorkerType="G.1X", NumberOfWorkers=4)
    return glue.start_job_run(JobName=name)["JobRunId"]


@pytest.fixture(scope="module")
def runs(stack, lake):
    """The three Spark runs, started together; each ended run with its output and error logs."""
    glue, logs = stack.client("glue"), stack.client("logs")
    started = {"fgac": start(stack, lake, f"lf-fgac-{SUFFIX}", "reader", "5.0", True),
               "describe": start(stack, lake, f"lf-desc-{SUFFIX}", "describer", "5.0", True),
               "table_level": start(stack, lake, f"lf-g4-{SUFFIX}", "reader", "4.0", False)}
    names = {"fgac": f"lf-fgac-{SUFFIX}", "describe": f"lf-desc-{SUFFIX}", "table_level": f"lf-g4-{SUFFIX}"}

    def ended():
        return all(glue.get_job_run(JobName=names[k], RunId=r)["JobRun"]["JobRunState"] not in ACTIVE
                   for k, r in started.items())
    assert wait_until(ended, 300, poll=1.0), "the Lake Formation job runs did not end in 300 s"

    def lines(group: str, stream: str) -> list[str]:
        try:
            return [e["message"] for e in logs.get_log_events(logGroupName=group, logStreamName=stream,
                                                              startFromHead=True)["events"]]
        except ClientError:
            return []
    out = {}
    for key, run_id in started.items():
        run = glue.get_job_run(JobName=names[key], RunId=run_id)["JobRun"]
        out[key] = {"run": run, "output": lines("/aws-glue/jobs/output", run_id),
                    "error": lines("/aws-glue/jobs/error", run_id), "id": run_id}
    return out


def printed(result: dict, tag: str):
    found = [line[len(tag) + 1:] for line in result["output"] if line.startswith(tag + " ")]
    assert found, f"no {tag} line in the output log: {result['output'][-20:]} / {result['error'][-20:]}"
    return found[0]


# ---------------------------------------------------------------- fine-grained access (Glue 5.0)
def test_from_catalog_returns_exactly_the_filters_rows_and_columns(runs):
    result = runs["fgac"]
    assert result["run"]["JobRunState"] == "SUCCEEDED", result["run"].get("ErrorMessage")
    assert json.loads(printed(result, "COLUMNS")) == VISIBLE
    expected = EMPLOYEES[EMPLOYEES.region == "eu"][VISIBLE].to_dict("records")
    assert json.loads(printed(result, "ROWS")) == [{k: (int(v) if k == "id" else v) for k, v in r.items()}
                                                   for r in expected]
    assert json.loads(printed(result, "DF")) == [VISIBLE, 3]        # create_data_frame.from_catalog: the same
    everything = "\n".join(result["output"] + result["error"])
    assert not any(secret in everything for secret in SECRETS)


def test_a_direct_read_of_the_registered_location_is_denied_to_the_role(runs):
    result = runs["fgac"]
    direct = printed(result, "DIRECT")
    assert direct.startswith("denied") and ("403" in direct or "AccessDenied" in direct), direct
    assert printed(result, "BOTO").startswith("denied")


def test_the_data_came_through_vended_credentials_and_counts_as_the_runs_reads(stack, runs):
    objects = stack.local.glue.objects_read(runs["fgac"]["id"])["objects"]
    read = {key for _bucket, key in objects}
    assert {"employees/region=eu/part-0.parquet"} <= read


def test_a_role_without_select_fails_the_run_with_lake_formations_error(runs):
    result = runs["describe"]
    assert result["run"]["JobRunState"] == "FAILED"
    message = result["run"]["ErrorMessage"]
    assert "Insufficient Lake Formation permission(s) on employees" in message, message
    assert any("Insufficient Lake Formation permission(s) on employees" in line for line in result["error"])


def test_a_job_without_fine_grained_access_cannot_read_a_filtered_table(runs):
    result = runs["table_level"]
    assert result["run"]["JobRunState"] == "FAILED"
    assert "PermissionTypeMismatchException" in result["run"]["ErrorMessage"], result["run"]["ErrorMessage"]


# ---------------------------------------------------------------- the API underneath
def test_vended_credentials_read_the_location_the_roles_own_keys_cannot(stack, lake):
    creds = lake.lf_as["reader"].get_temporary_glue_table_credentials(
        TableArn=lake.table_arn, Permissions=["SELECT"],
        SupportedPermissionTypes=["COLUMN_PERMISSION", "CELL_FILTER_PERMISSION"])
    assert creds["VendedS3Path"] == [f"s3://{LAKE}/employees/"] and creds["SessionToken"]
    vended = stack.client("s3", access_key=creds["AccessKeyId"])
    assert vended.list_objects_v2(Bucket=LAKE, Prefix="employees/")["KeyCount"] == 2
    with pytest.raises(ClientError) as denied:
        stack.client("s3", principal=lake.roles["reader"]).list_objects_v2(Bucket=LAKE, Prefix="employees/")
    assert denied.value.response["Error"]["Code"] == "AccessDenied"


def test_vending_checks_iam_grants_and_the_engines_filtering(lake):
    def error(role, **kwargs):
        params = {"TableArn": lake.table_arn, "Permissions": ["SELECT"],
                  "SupportedPermissionTypes": ["COLUMN_PERMISSION", "CELL_FILTER_PERMISSION"], **kwargs}
        with pytest.raises(ClientError) as failed:
            lake.lf_as[role].get_temporary_glue_table_credentials(**params)
        return failed.value.response["Error"]
    assert error("reader", SupportedPermissionTypes=["COLUMN_PERMISSION"])["Code"] == \
        "PermissionTypeMismatchException"
    denied = error("describer")
    assert denied["Code"] == "AccessDeniedException"
    assert denied["Message"] == "Insufficient Lake Formation permission(s) on employees"
    assert "lakeformation:GetDataAccess" in error("noaccess")["Message"]       # no IAM allow
    assert error("reader", TableArn="arn:aws:glue:x")["Code"] == "InvalidInputException"
    assert error("reader", DurationSeconds=50000)["Code"] == "InvalidInputException"


def test_unfiltered_metadata_is_for_trusted_engines_only(stack, lake):
    glue = stack.client("glue", principal=lake.roles["reader"])
    with pytest.raises(ClientError) as denied:
        glue.get_unfiltered_table_metadata(CatalogId=lake.account, DatabaseName=DB, Name="employees",
                                           SupportedPermissionTypes=["COLUMN_PERMISSION"])
    assert denied.value.response["Error"]["Code"] == "AccessDeniedException"
    meta = stack.client("glue").get_unfiltered_table_metadata(           # the administrator: the whole table
        CatalogId=lake.account, DatabaseName=DB, Name="employees",
        SupportedPermissionTypes=["COLUMN_PERMISSION", "CELL_FILTER_PERMISSION"])
    assert meta["AuthorizedColumns"] == ["id", "name", "dept", "salary", "ssn", "region"]
    assert meta["IsRegisteredWithLakeFormation"] is True and meta["IsProtected"] is True
