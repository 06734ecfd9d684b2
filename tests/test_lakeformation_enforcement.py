"""Lake Formation enforced where data is read: Athena, the Glue Data Catalog and S3 itself.

One small governed table, ``employees`` (Parquet in S3, partitioned by ``region``, a
sensitive ``ssn`` and a ``salary`` column), is registered with Lake Formation and
taken out of IAM-only mode (``IAM_ALLOWED_PRINCIPALS`` revoked). The IAM user
``analyst`` then holds one data cells filter on it (EU rows; id, name, dept,
region), ``other`` holds every column but ``ssn`` on every row, and a tag-based
grant gives ``analyst`` the tables tagged ``team=analytics``. Every attempt of
``analyst`` to read more than that gets nothing: no rows, no values, and no name
it may not see, not even in an error message. What it may read comes back
exactly as pandas computes it from the same data.

AWS behaviour followed (checked 2026):
https://docs.aws.amazon.com/athena/latest/ug/lf-athena-limitations.html (views: permissions of
the querying user on the underlying tables),
https://docs.aws.amazon.com/lake-formation/latest/dg/limitations.html (GetTable lists only the
visible columns), https://docs.aws.amazon.com/lake-formation/latest/dg/error-message-update.html
(GetTable / GetDatabase answer EntityNotFound for what the caller may not see),
https://docs.aws.amazon.com/lake-formation/latest/dg/data-filtering.html (data cells filters).
"""
from __future__ import annotations

import io
import uuid

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from botocore.exceptions import ClientError

from localaws.athena import run_query, wait_for_query

SUFFIX = uuid.uuid4().hex[:8]
DB, OTHER_DB, SCRATCH = f"lf_{SUFFIX}", f"lf_hidden_{SUFFIX}", f"lf_scratch_{SUFFIX}"
LAKE, RESULTS = f"lf-lake-{SUFFIX}", f"lf-results-{SUFFIX}"
OUT = f"s3://{RESULTS}/out/"
SECRETS = ["111-11-1111", "222-22-2222", "333-33-3333", "444-44-4444", "555-55-5555", "666-66-6666"]
EMPLOYEES = pd.DataFrame({
    "id": [1, 2, 3, 4, 5, 6],
    "name": ["Ana", "Ben", "Cleo", "Dan", "Eve", "Finn"],
    "dept": ["sales", "ops", "sales", "ops", "sales", "hr"],
    "salary": [5100.0, 6200.0, 7300.0, 8400.0, 9500.0, 10600.0],
    "ssn": SECRETS,
    "region": ["eu", "eu", "eu", "us", "us", "us"],
})
VISIBLE = ["id", "name", "dept", "region"]          # the analyst's data cells filter


def parquet(frame: pd.DataFrame) -> bytes:
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), sink)
    return sink.getvalue()


def table_resource(name: str, db: str = DB) -> dict:
    return {"Table": {"DatabaseName": db, "Name": name}}


def everyone() -> dict:
    return {"DataLakePrincipalIdentifier": "IAM_ALLOWED_PRINCIPALS"}


@pytest.fixture(scope="module")
def lake(stack):
    """The governed data lake; yields a namespace of clients and principals."""
    s3, iam, lf = stack.client("s3"), stack.client("iam"), stack.client("lakeformation")
    account = stack.client("sts").get_caller_identity()["Account"]
    for bucket in (LAKE, RESULTS):
        s3.create_bucket(Bucket=bucket)
    for region, rows in EMPLOYEES.groupby("region"):
        s3.put_object(Bucket=LAKE, Key=f"employees/region={region}/part-0.parquet",
                      Body=parquet(rows.drop(columns="region")))
    small = pd.DataFrame({"dept": ["sales", "ops"], "budget": [100, 200]})
    for name in ("budgets", "projects", "audit"):
        s3.put_object(Bucket=LAKE, Key=f"{name}/part-0.parquet", Body=parquet(small))
    s3.put_object(Bucket=LAKE, Key="secrets/part-0.parquet", Body=parquet(small))
    users = {}
    for role in ("analyst", "other", "steward", "mixed"):
        name = f"{role}-{SUFFIX}"
        users[role] = iam.create_user(UserName=name)["User"]["Arn"]
    admin = stack.client("athena")

    def ddl(sql, database=DB):
        run_query(admin, sql, database=database, output=OUT)

    for db in (DB, OTHER_DB, SCRATCH):
        ddl(f"CREATE DATABASE {db}", database="default")
    ddl(f"""CREATE EXTERNAL TABLE employees (id bigint, name string, dept string, salary double, ssn string)
            PARTITIONED BY (region string) STORED AS PARQUET LOCATION 's3://{LAKE}/employees/'""")
    ddl("MSCK REPAIR TABLE employees")
    for name in ("budgets", "projects", "audit"):
        ddl(f"CREATE EXTERNAL TABLE {name} (dept string, budget bigint) STORED AS PARQUET "
            f"LOCATION 's3://{LAKE}/{name}/'")
    ddl(f"CREATE EXTERNAL TABLE secrets (dept string, budget bigint) STORED AS PARQUET "
        f"LOCATION 's3://{LAKE}/secrets/'", database=OTHER_DB)
    ddl("CREATE VIEW emp_names AS SELECT id, name, region FROM employees")
    ddl("CREATE VIEW emp_pay AS SELECT id, name, salary FROM employees")

    # Lake Formation: register the data, leave IAM-only mode, grant.
    settings = lf.get_data_lake_settings()["DataLakeSettings"]
    lf.put_data_lake_settings(DataLakeSettings={
        **settings, "DataLakeAdmins": settings.get("DataLakeAdmins", []) + [
            {"DataLakePrincipalIdentifier": users["steward"]}]})
    lf.register_resource(ResourceArn=f"arn:aws:s3:::{LAKE}", UseServiceLinkedRole=True)
    for db, names in ((DB, ["employees", "budgets", "projects", "audit", "emp_names", "emp_pay"]),
                      (OTHER_DB, ["secrets"])):
        lf.revoke_permissions(Principal=everyone(), Resource={"Database": {"Name": db}}, Permissions=["ALL"])
        for name in names:
            lf.revoke_permissions(Principal=everyone(), Resource=table_resource(name, db), Permissions=["ALL"])
    lf.create_data_cells_filter(TableData={
        "TableCatalogId": account, "DatabaseName": DB, "TableName": "employees", "Name": "eu_rows",
        "RowFilter": {"FilterExpression": "region = 'eu'"}, "ColumnNames": VISIBLE})
    cells = {"DataCellsFilter": {"TableCatalogId": account, "DatabaseName": DB, "TableName": "employees",
                                 "Name": "eu_rows"}}
    analyst = {"DataLakePrincipalIdentifier": users["analyst"]}
    lf.grant_permissions(Principal=analyst, Resource=cells, Permissions=["SELECT"])
    lf.grant_permissions(Principal={"DataLakePrincipalIdentifier": users["other"]}, Resource={
        "TableWithColumns": {"DatabaseName": DB, "Name": "employees",
                             "ColumnWildcard": {"ExcludedColumnNames": ["ssn"]}}}, Permissions=["SELECT"])
    lf.grant_permissions(Principal=analyst, Resource=table_resource("audit"), Permissions=["DESCRIBE"])
    for name, region, columns in (("eu_pay", "eu", ["id", "name", "salary"]), ("us_names", "us", ["id", "name"])):
        lf.create_data_cells_filter(TableData={
            "TableCatalogId": account, "DatabaseName": DB, "TableName": "employees", "Name": name,
            "RowFilter": {"FilterExpression": f"region = '{region}'"}, "ColumnNames": columns})
        lf.grant_permissions(Principal={"DataLakePrincipalIdentifier": users["mixed"]}, Permissions=["SELECT"],
                             Resource={"DataCellsFilter": {**cells["DataCellsFilter"], "Name": name}})
    for name in ("emp_names", "emp_pay"):
        lf.grant_permissions(Principal=analyst, Resource=table_resource(name), Permissions=["SELECT"])
    lf.create_lf_tag(TagKey=f"team{SUFFIX}", TagValues=["analytics", "finance"])
    for name, value in (("budgets", "analytics"), ("projects", "finance")):
        lf.add_lf_tags_to_resource(Resource=table_resource(name),
                                   LFTags=[{"TagKey": f"team{SUFFIX}", "TagValues": [value]}])
    lf.grant_permissions(Principal=analyst, Resource={"LFTagPolicy": {
        "ResourceType": "TABLE", "Expression": [{"TagKey": f"team{SUFFIX}", "TagValues": ["analytics"]}]}},
        Permissions=["SELECT"])

    class Lake:
        pass
    out = Lake()
    out.lf, out.s3, out.admin, out.users, out.cells = lf, s3, admin, users, cells
    out.athena = {role: stack.client("athena", principal=arn) for role, arn in users.items()}
    out.glue = {role: stack.client("glue", principal=arn) for role, arn in users.items()}
    out.s3_of = {role: stack.client("s3", principal=arn) for role, arn in users.items()}
    yield out
    lf.deregister_resource(ResourceArn=f"arn:aws:s3:::{LAKE}")
    lf.put_data_lake_settings(DataLakeSettings=settings)


def query(lake, sql, role="analyst", database=DB, **kwargs):
    """(DataFrame, stats) of ``sql`` run by ``role``; a failure comes back as (None, stats)."""
    return run_query(lake.athena[role], sql, database=database, output=OUT, check=False, **kwargs)


def failed(lake, sql, role="analyst", database=DB) -> str:
    """The reason ``sql`` failed for ``role``; asserts it leaked no secret value."""
    frame, stats = query(lake, sql, role, database)
    assert stats["state"] == "FAILED" and frame is None, stats
    reason = stats["reason"]
    assert not any(secret in reason for secret in SECRETS)
    return reason


def eu_expected(columns=VISIBLE) -> pd.DataFrame:
    return EMPLOYEES[EMPLOYEES.region == "eu"][columns].reset_index(drop=True)


def lines(frame) -> list[str]:
    return [r.strip() for r in frame["result"] if r and r.strip()]


# ---------------------------------------------------------------- what the analyst may read
def test_select_star_returns_the_filters_columns_and_rows_exactly(lake):
    frame, _ = query(lake, "SELECT * FROM employees ORDER BY id")
    assert list(frame.columns) == VISIBLE
    pd.testing.assert_frame_equal(frame.astype(object), eu_expected().astype(object), check_dtype=False)


def test_aggregates_and_group_by_see_only_the_filtered_rows(lake):
    frame, _ = query(lake, "SELECT region, dept, count(*) AS n FROM employees GROUP BY region, dept "
                           "ORDER BY region, dept")
    expected = (eu_expected().groupby(["region", "dept"]).size().reset_index(name="n"))
    assert frame.values.tolist() == expected.values.tolist()
    frame, _ = query(lake, "SELECT count(*) AS n FROM employees")
    assert frame["n"].tolist() == [3]


def test_rows_outside_the_filter_are_not_there_even_when_asked_for(lake):
    frame, _ = query(lake, "SELECT * FROM employees WHERE region = 'us'")
    assert len(frame) == 0
    frame, _ = query(lake, "SELECT count(*) AS n FROM employees WHERE id > 3")
    assert frame["n"].tolist() == [0]


def test_another_principal_sees_its_own_grant_not_the_analysts(lake):
    frame, _ = query(lake, "SELECT * FROM employees ORDER BY id", role="other")
    columns = ["id", "name", "dept", "salary", "region"]
    assert list(frame.columns) == columns
    assert frame["salary"].tolist() == EMPLOYEES["salary"].tolist()      # every row, salary included
    assert "salary" in failed(lake, "SELECT salary FROM employees")       # the analyst: not its grant


def test_two_data_cells_filters_combine_cell_by_cell(lake):
    # eu_pay: EU rows with salary; us_names: US rows without it. A cell shows when one filter covers it.
    frame, _ = query(lake, "SELECT * FROM employees ORDER BY id", role="mixed")
    assert list(frame.columns) == ["id", "name", "salary"]
    assert frame["id"].tolist() == EMPLOYEES["id"].tolist()
    expected = [s if r == "eu" else None for s, r in zip(EMPLOYEES["salary"], EMPLOYEES["region"])]
    assert [None if pd.isna(v) else v for v in frame["salary"]] == expected


def test_the_data_lake_administrator_sees_everything(lake):
    frame, _ = query(lake, "SELECT ssn FROM employees ORDER BY id", role="steward")
    assert frame["ssn"].tolist() == SECRETS


def test_a_join_uses_only_visible_rows(lake):
    frame, _ = query(lake, "SELECT e.name, b.budget FROM employees e JOIN budgets b ON e.dept = b.dept "
                           "ORDER BY e.name")
    expected = eu_expected().merge(pd.DataFrame({"dept": ["sales", "ops"], "budget": [100, 200]}), on="dept")
    assert frame.values.tolist() == expected.sort_values("name")[["name", "budget"]].values.tolist()


def test_partition_pruning_still_works_under_a_row_filter(lake):
    _, allowed = query(lake, "SELECT count(*) FROM employees")
    _, admin = run_query(lake.admin, "SELECT count(*) FROM employees", database=DB, output=OUT)
    assert 0 < allowed["bytes_scanned"] < admin["bytes_scanned"]      # the 'us' files are never read


# ---------------------------------------------------------------- what it may not read
def test_a_hidden_column_fails_as_a_column_that_does_not_exist(lake):
    hidden = failed(lake, "SELECT ssn FROM employees")
    missing = failed(lake, "SELECT nosuch FROM employees")
    assert hidden == missing.replace("nosuch", "ssn")
    assert hidden.startswith("COLUMN_NOT_FOUND: line 1:8: Column 'ssn' cannot be resolved")


def test_an_aggregate_over_a_hidden_column_fails(lake):
    assert failed(lake, "SELECT avg(salary) FROM employees").startswith("COLUMN_NOT_FOUND")
    assert failed(lake, "SELECT count(*) FROM employees WHERE ssn LIKE '1%'").startswith("COLUMN_NOT_FOUND")


def test_a_table_it_may_not_see_is_as_missing_as_a_table_that_does_not_exist(lake):
    hidden = failed(lake, "SELECT * FROM projects")        # tagged team=finance: the grant does not match
    missing = failed(lake, "SELECT * FROM nosuchtab")
    assert hidden == missing.replace("nosuchtab", "projects")
    assert hidden.startswith("TABLE_NOT_FOUND")


def test_a_table_it_may_only_describe_fails_with_lake_formations_message(lake):
    assert failed(lake, "SELECT * FROM audit") == ("Insufficient permissions to execute the query. "
                                                   "Insufficient Lake Formation permission(s) on audit")


def test_a_database_it_may_not_see_does_not_exist(lake):
    hidden = failed(lake, f"SELECT * FROM {OTHER_DB}.secrets")
    missing = failed(lake, "SELECT * FROM lf_nosuchdb.secrets")
    assert hidden == missing.replace("lf_nosuchdb", OTHER_DB)
    assert hidden.startswith("SCHEMA_NOT_FOUND")


def test_tag_based_grants_cover_matching_tables_only(lake):
    frame, _ = query(lake, "SELECT dept, budget FROM budgets ORDER BY dept")
    assert frame.values.tolist() == [["ops", 200], ["sales", 100]]
    assert failed(lake, "SELECT * FROM projects").startswith("TABLE_NOT_FOUND")


def test_views_run_with_the_querying_principals_permissions(lake):
    frame, _ = query(lake, "SELECT * FROM emp_names ORDER BY id")
    assert frame.values.tolist() == eu_expected(["id", "name", "region"]).values.tolist()
    reason = failed(lake, "SELECT * FROM emp_pay")          # the view reads salary: hidden from the analyst
    assert reason.startswith("COLUMN_NOT_FOUND") and "5100" not in reason


def test_ctas_writes_only_what_the_analyst_may_read(lake):
    frame, stats = query(lake, f"CREATE TABLE {SCRATCH}.copy WITH (format = 'PARQUET', "
                               f"external_location = 's3://{RESULTS}/copy/') AS SELECT * FROM {DB}.employees")
    assert stats["state"] == "SUCCEEDED", stats
    copy, _ = run_query(lake.admin, "SELECT * FROM copy ORDER BY id", database=SCRATCH, output=OUT)
    assert list(copy.columns) == VISIBLE and copy["id"].tolist() == [1, 2, 3]
    written = b"".join(lake.s3.get_object(Bucket=RESULTS, Key=o["Key"])["Body"].read()
                       for o in lake.s3.list_objects_v2(Bucket=RESULTS, Prefix="copy/")["Contents"])
    assert not any(s.encode() in written for s in SECRETS)


def test_unload_writes_only_what_the_analyst_may_read(lake):
    _, stats = query(lake, f"UNLOAD (SELECT * FROM employees) TO 's3://{RESULTS}/unload/' "
                           "WITH (format = 'PARQUET')")
    assert stats["state"] == "SUCCEEDED", stats
    keys = [o["Key"] for o in lake.s3.list_objects_v2(Bucket=RESULTS, Prefix="unload/")["Contents"]]
    table = pa.concat_tables([pq.read_table(io.BytesIO(lake.s3.get_object(Bucket=RESULTS, Key=k)["Body"].read()))
                              for k in keys])
    assert table.column_names == VISIBLE and sorted(table["id"].to_pylist()) == [1, 2, 3]


def test_insert_into_a_governed_table_needs_insert(lake):
    reason = failed(lake, "INSERT INTO employees SELECT * FROM employees")
    assert "Insufficient Lake Formation permission(s) on employees" in reason


def test_duckdb_table_functions_cannot_read_around_the_catalog(lake):
    for sql in (f"SELECT * FROM read_parquet('s3://{LAKE}/employees/region=us/part-0.parquet')",
                "SELECT * FROM duckdb_views()", "SELECT * FROM query('SELECT 1')"):
        assert failed(lake, sql).startswith("FUNCTION_NOT_FOUND")


def test_a_reused_result_never_crosses_principals(lake):
    reuse = {"ResultReuseByAgeConfiguration": {"Enabled": True, "MaxAgeInMinutes": 60}}
    sql = "SELECT * FROM employees ORDER BY id"
    qid = lake.admin.start_query_execution(QueryString=sql, QueryExecutionContext={"Database": DB},
                                           ResultConfiguration={"OutputLocation": OUT},
                                           ResultReuseConfiguration=reuse)["QueryExecutionId"]
    assert wait_for_query(lake.admin, qid)["Status"]["State"] == "SUCCEEDED"
    analyst = lake.athena["analyst"]
    qid = analyst.start_query_execution(QueryString=sql, QueryExecutionContext={"Database": DB},
                                        ResultConfiguration={"OutputLocation": OUT},
                                        ResultReuseConfiguration=reuse)["QueryExecutionId"]
    stats = {"query_id": qid}
    wait_for_query(analyst, qid)
    rows = analyst.get_query_results(QueryExecutionId=qid)["ResultSet"]["Rows"]
    frame = pd.DataFrame([[d.get("VarCharValue") for d in r["Data"]] for r in rows[1:]],
                         columns=[d["VarCharValue"] for d in rows[0]["Data"]]).astype({"id": int})
    execution = lake.athena["analyst"].get_query_execution(QueryExecutionId=stats["query_id"])
    assert not execution["QueryExecution"]["Statistics"]["ResultReuseInformation"]["ReusedPreviousResult"]
    assert frame["id"].tolist() == [1, 2, 3] and list(frame.columns) == VISIBLE


# ---------------------------------------------------------------- the catalog as the analyst sees it
def test_information_schema_lists_only_visible_tables_and_columns(lake):
    frame, _ = query(lake, f"SELECT table_name, column_name FROM information_schema.columns "
                           f"WHERE table_schema = '{DB}' ORDER BY table_name, ordinal_position")
    by_table = frame.groupby("table_name")["column_name"].apply(list).to_dict()
    assert by_table["employees"] == VISIBLE
    assert "projects" not in by_table
    frame, _ = query(lake, "SELECT schema_name FROM information_schema.schemata")
    assert OTHER_DB not in frame["schema_name"].tolist() and DB in frame["schema_name"].tolist()


def test_describe_show_columns_and_show_create_table_hide_hidden_columns(lake):
    for sql in ("DESCRIBE employees", "SHOW COLUMNS IN employees", "SHOW CREATE TABLE employees"):
        frame, stats = query(lake, sql)
        assert stats["state"] == "SUCCEEDED", stats
        text = "\n".join(frame["result"].fillna(""))
        assert "ssn" not in text and "salary" not in text and "name" in text


def test_show_tables_databases_and_partitions_show_only_what_it_may_describe(lake):
    frame, _ = query(lake, "SHOW TABLES")
    assert sorted(lines(frame)) == ["audit", "budgets", "emp_names", "emp_pay", "employees"]
    frame, _ = query(lake, "SHOW DATABASES")
    assert DB in lines(frame) and OTHER_DB not in lines(frame)
    frame, _ = query(lake, "SHOW PARTITIONS employees")
    assert lines(frame) == ["region=eu"]


def test_athenas_catalog_api_answers_as_the_caller(lake):
    athena = lake.athena["analyst"]
    columns = athena.get_table_metadata(CatalogName="AwsDataCatalog", DatabaseName=DB,
                                        TableName="employees")["TableMetadata"]
    assert [c["Name"] for c in columns["Columns"] + columns["PartitionKeys"]] == VISIBLE
    listed = athena.list_table_metadata(CatalogName="AwsDataCatalog", DatabaseName=DB)["TableMetadataList"]
    assert "projects" not in [t["Name"] for t in listed] and "employees" in [t["Name"] for t in listed]
    with pytest.raises(ClientError) as hidden:
        athena.get_table_metadata(CatalogName="AwsDataCatalog", DatabaseName=DB, TableName="projects")
    assert hidden.value.response["Error"]["Code"] == "MetadataException"


def test_glue_get_table_lists_only_the_visible_columns(lake):
    table = lake.glue["analyst"].get_table(DatabaseName=DB, Name="employees")["Table"]
    names = [c["Name"] for c in table["StorageDescriptor"]["Columns"] + table["PartitionKeys"]]
    assert names == VISIBLE
    table = lake.glue["other"].get_table(DatabaseName=DB, Name="employees")["Table"]
    assert [c["Name"] for c in table["StorageDescriptor"]["Columns"]] == ["id", "name", "dept", "salary"]
    full = lake.glue["steward"].get_table(DatabaseName=DB, Name="employees")["Table"]
    assert "ssn" in [c["Name"] for c in full["StorageDescriptor"]["Columns"]]


def test_glue_hides_tables_and_databases_as_if_they_did_not_exist(lake):
    glue = lake.glue["analyst"]
    errors = []
    for call in (lambda: glue.get_table(DatabaseName=DB, Name="projects"),
                 lambda: glue.get_table(DatabaseName=DB, Name="nosuchtab"),
                 lambda: glue.get_database(Name=OTHER_DB),
                 lambda: glue.get_tables(DatabaseName=OTHER_DB)):
        with pytest.raises(ClientError) as err:
            call()
        errors.append(err.value.response["Error"])
    assert {e["Code"] for e in errors} == {"EntityNotFoundException"}
    assert errors[0]["Message"] == errors[1]["Message"].replace("nosuchtab", "projects")
    listed = [t["Name"] for t in glue.get_tables(DatabaseName=DB)["TableList"]]
    assert sorted(listed) == ["audit", "budgets", "emp_names", "emp_pay", "employees"]
    assert OTHER_DB not in [d["Name"] for d in glue.get_databases()["DatabaseList"]]
    for table in glue.get_tables(DatabaseName=DB)["TableList"]:
        assert "ssn" not in [c["Name"] for c in table["StorageDescriptor"].get("Columns", [])]


def test_glue_search_tables_finds_only_visible_tables_and_columns(lake):
    glue = lake.glue["analyst"]
    assert glue.search_tables(SearchText="ssn")["TableList"] == []
    assert glue.search_tables(SearchText="projects")["TableList"] == []
    found = glue.search_tables(SearchText="budget", Filters=[{"Key": "DatabaseName", "Value": DB}])
    assert [t["Name"] for t in found["TableList"]] == ["budgets"]
    admin = lake.glue["steward"].search_tables(SearchText="ssn")["TableList"]   # other tests' tables too
    assert [t["Name"] for t in admin if t["DatabaseName"] == DB] == ["employees"]


def test_glue_get_partitions_needs_the_table(lake):
    with pytest.raises(ClientError) as err:
        lake.glue["analyst"].get_partitions(DatabaseName=OTHER_DB, TableName="secrets")
    assert err.value.response["Error"]["Code"] == "EntityNotFoundException"
    parts = lake.glue["analyst"].get_partitions(DatabaseName=DB, TableName="employees")["Partitions"]
    for part in parts:
        assert "ssn" not in [c["Name"] for c in part["StorageDescriptor"].get("Columns", [])]


# ---------------------------------------------------------------- S3 underneath
def test_direct_s3_reads_of_a_registered_location_are_denied(lake):
    key = "employees/region=us/part-0.parquet"
    for call in (lambda s3: s3.get_object(Bucket=LAKE, Key=key),
                 lambda s3: s3.list_objects_v2(Bucket=LAKE, Prefix="employees/")):
        with pytest.raises(ClientError) as err:
            call(lake.s3_of["analyst"])
        assert err.value.response["Error"]["Code"] == "AccessDenied"
        assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert lake.s3_of["steward"].get_object(Bucket=LAKE, Key=key)["Body"].read()[:4] == b"PAR1"
    lake.s3_of["analyst"].get_object(Bucket=RESULTS, Key=lake.s3.list_objects_v2(
        Bucket=RESULTS, Prefix="out/")["Contents"][0]["Key"])      # an unregistered bucket: IAM alone


# ---------------------------------------------------------------- grants change, answers change
def test_a_revoked_grant_takes_effect_on_the_next_query(lake):
    analyst = {"DataLakePrincipalIdentifier": lake.users["analyst"]}
    assert query(lake, "SELECT count(*) AS n FROM employees")[0]["n"].tolist() == [3]
    lake.lf.revoke_permissions(Principal=analyst, Resource=lake.cells, Permissions=["SELECT"])
    try:
        assert failed(lake, "SELECT count(*) AS n FROM employees").startswith("TABLE_NOT_FOUND")
        with pytest.raises(ClientError):
            lake.glue["analyst"].get_table(DatabaseName=DB, Name="employees")
    finally:
        lake.lf.grant_permissions(Principal=analyst, Resource=lake.cells, Permissions=["SELECT"])
    assert query(lake, "SELECT count(*) AS n FROM employees")[0]["n"].tolist() == [3]
