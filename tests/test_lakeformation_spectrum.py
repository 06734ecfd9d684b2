"""Lake Formation enforced in Redshift Spectrum: the external schema's IAM role decides.

One governed table, ``orders`` (Parquet in S3, partitioned by ``region``, with a sensitive
``card`` column), and one governed CSV table. The IAM role ``analyst`` holds a data cells filter
on ``orders``: columns ``id`` and ``amount`` (two of four), rows ``region = 'eu'`` (a filter on a
column the role cannot see). The same grant read through Athena (as that role) and through
Spectrum (an external schema whose ``IAM_ROLE`` is that role) gives the same rows and columns.

AWS behaviour followed (checked 2026): Lake Formation applies the permissions of the IAM role of
the external schema (https://docs.aws.amazon.com/redshift/latest/dg/spectrum-lake-formation.html,
https://docs.aws.amazon.com/lake-formation/latest/dg/RSPC-lf.html: row, column and cell-level
permissions; https://docs.aws.amazon.com/redshift/latest/dg/r_GRANT-usage-notes.html: the role
associated with the table's external schema).
"""
from __future__ import annotations

import io
import uuid

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from localaws.athena import run_query
from localaws.redshift.engine import Warehouse
from localaws.redshift.errors import SQLError

SUFFIX = uuid.uuid4().hex[:8]
DB, LAKE, RESULTS = f"lfs_{SUFFIX}", f"lfs-lake-{SUFFIX}", f"lfs-results-{SUFFIX}"
OUT = f"s3://{RESULTS}/out/"
CARDS = ["4111-0001", "4111-0002", "4111-0003", "4111-0004", "4111-0005", "4111-0006", "4111-0007"]
ORDERS = pd.DataFrame({
    "id": [1, 2, 3, 4, 5, 6, 7],
    "amount": [10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0],
    "card": CARDS,
    "region": ["eu", "eu", "us", "eu", "us", "us", "ap"],
})


def parquet(frame: pd.DataFrame) -> bytes:
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), sink)
    return sink.getvalue()


def everyone() -> dict:
    return {"DataLakePrincipalIdentifier": "IAM_ALLOWED_PRINCIPALS"}


@pytest.fixture(scope="module")
def lake(stack):
    s3, iam, lf = stack.client("s3"), stack.client("iam"), stack.client("lakeformation")
    account = stack.client("sts").get_caller_identity()["Account"]
    for bucket in (LAKE, RESULTS):
        s3.create_bucket(Bucket=bucket)
    for region, rows in ORDERS.groupby("region"):
        s3.put_object(Bucket=LAKE, Key=f"orders/region={region}/part-0.parquet",
                      Body=parquet(rows.drop(columns="region")))
    s3.put_object(Bucket=LAKE, Key="people/p.csv", Body=b"1,Ana,secret-a,eu\n2,Ben,secret-b,us\n")
    s3.put_object(Bucket=LAKE, Key="open/o.csv", Body=b"x,1\ny,2\n")
    trust = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":' \
            '{"Service":"redshift.amazonaws.com"},"Action":"sts:AssumeRole"}]}'
    roles = {name: iam.create_role(RoleName=f"{name}-{SUFFIX}", AssumeRolePolicyDocument=trust)["Role"]["Arn"]
             for name in ("analyst", "full", "nothing", "describer")}
    admin = stack.client("athena")
    for sql, database in (
            (f"CREATE DATABASE {DB}", "default"),
            ("CREATE EXTERNAL TABLE orders (id bigint, amount double, card string) PARTITIONED BY "
             f"(region string) STORED AS PARQUET LOCATION 's3://{LAKE}/orders/'", DB),
            ("MSCK REPAIR TABLE orders", DB),
            ("CREATE EXTERNAL TABLE people (id bigint, name string, secret string, region string) ROW FORMAT "
             f"DELIMITED FIELDS TERMINATED BY ',' LOCATION 's3://{LAKE}/people/'", DB),
            ("CREATE EXTERNAL TABLE open_table (k string, v bigint) ROW FORMAT DELIMITED FIELDS TERMINATED "
             f"BY ',' LOCATION 's3://{LAKE}/open/'", DB)):
        run_query(admin, sql, database=database, output=OUT)
    lf.register_resource(ResourceArn=f"arn:aws:s3:::{LAKE}", UseServiceLinkedRole=True)
    for name in ("orders", "people"):                     # governed; open_table stays IAM-only
        lf.revoke_permissions(Principal=everyone(), Resource={"Table": {"DatabaseName": DB, "Name": name}},
                              Permissions=["ALL"])
    cells = {"TableCatalogId": account, "DatabaseName": DB, "TableName": "orders", "Name": "eu_orders"}
    lf.create_data_cells_filter(TableData={**cells, "RowFilter": {"FilterExpression": "region = 'eu'"},
                                           "ColumnNames": ["id", "amount"]})

    def grant(role, resource, permissions=("SELECT",)):
        lf.grant_permissions(Principal={"DataLakePrincipalIdentifier": roles[role]}, Resource=resource,
                             Permissions=list(permissions))

    grant("analyst", {"DataCellsFilter": cells})
    grant("analyst", {"TableWithColumns": {"DatabaseName": DB, "Name": "people",
                                           "ColumnWildcard": {"ExcludedColumnNames": ["secret"]}}})
    grant("full", {"Table": {"DatabaseName": DB, "Name": "orders"}})
    grant("describer", {"Table": {"DatabaseName": DB, "Name": "orders"}}, ["DESCRIBE"])
    yield {"roles": roles, "lf": lf, "cells": cells, "account": account}
    lf.deregister_resource(ResourceArn=f"arn:aws:s3:::{LAKE}")


@pytest.fixture(scope="module")
def warehouse(stack, tmp_path_factory, lake):
    w = Warehouse("lfspectrum", "dev", "admin", "pw", tmp_path_factory.mktemp("lfs"), number_of_nodes=2,
                  s3=lambda: stack.client("s3"), glue=lambda region=None: stack.client("glue"),
                  lake=stack.context.lake)
    for name, role in lake["roles"].items():
        w.execute(f"CREATE EXTERNAL SCHEMA {name} FROM DATA CATALOG DATABASE '{DB}' IAM_ROLE '{role}'")
    yield w
    w.close()


def athena_as(stack, role_arn, sql) -> pd.DataFrame:
    frame, _ = run_query(stack.client("athena", principal=role_arn), sql, database=DB, output=OUT)
    return frame


def frame_of(result) -> pd.DataFrame:
    return pd.DataFrame(result.rows, columns=[c.name for c in result.columns])


def failure(warehouse, sql) -> SQLError:
    with pytest.raises(SQLError) as err:
        warehouse.execute(sql)
    assert not any(card in str(err.value) for card in CARDS)
    return err.value


# ---------------------------------------------------------------- the same grant as in Athena
def test_select_star_gives_the_granted_columns_and_rows_as_athena_does(stack, lake, warehouse):
    spectrum = frame_of(warehouse.execute("SELECT * FROM analyst.orders ORDER BY id"))
    athena = athena_as(stack, lake["roles"]["analyst"], "SELECT * FROM orders ORDER BY id")
    expected = ORDERS[ORDERS.region == "eu"][["id", "amount"]].reset_index(drop=True)
    assert list(spectrum.columns) == list(athena.columns) == ["id", "amount"]
    assert spectrum.values.tolist() == athena.astype({"id": int, "amount": float}).values.tolist() \
        == expected.values.tolist()


def test_pushed_down_aggregation_and_filters_see_only_the_granted_rows(lake, warehouse):
    count, total = warehouse.execute("SELECT count(*), sum(amount) FROM analyst.orders").rows[0]
    assert (count, total) == (3, 70.0)
    returned = warehouse.execute("SELECT sum(s3query_returned_rows) FROM svl_s3query WHERE external_table_name"
                                 " = 'analyst.orders' AND query = (SELECT max(query) FROM svl_s3query)").rows[0][0]
    assert returned <= 3                    # the workers aggregated the filtered rows (partials only)
    assert warehouse.execute("SELECT id FROM analyst.orders WHERE amount > 15 ORDER BY id").rows == [(2,), (4,)]
    grouped = warehouse.execute("SELECT count(*) FROM analyst.orders GROUP BY id > 1 ORDER BY 1").rows
    assert sum(n for (n,) in grouped) == 3


def test_hidden_columns_are_missing_ones(warehouse):
    for sql in ("SELECT card FROM analyst.orders", "SELECT id FROM analyst.orders WHERE region = 'us'",
                "SELECT o.region FROM analyst.orders o"):
        error = failure(warehouse, sql)
        assert error.code == "42703" and "does not exist" in str(error), (error.code, str(error))


def test_csv_table_with_an_excluded_middle_column(warehouse):
    rows = warehouse.execute("SELECT * FROM analyst.people ORDER BY id")
    assert [c.name for c in rows.columns] == ["id", "name", "region"]
    assert rows.rows == [(1, "Ana", "eu"), (2, "Ben", "us")]


# ---------------------------------------------------------------- who gets nothing
def test_a_role_without_permissions_gets_nothing(warehouse):
    error = failure(warehouse, "SELECT * FROM nothing.orders")
    assert 'relation "nothing.orders" does not exist' in str(error)
    error = failure(warehouse, "SELECT count(*) FROM describer.orders")
    assert "Insufficient Lake Formation permission(s) on orders" in str(error)


def test_the_schemas_role_decides_not_the_database_user(lake, warehouse):
    full = warehouse.execute("SELECT * FROM full.orders ORDER BY id")
    assert [c.name for c in full.columns] == ["id", "amount", "card", "region"] and len(full.rows) == 7
    assert len(warehouse.execute("SELECT * FROM analyst.orders").rows) == 3      # same user, other role
    # a table Lake Formation does not govern: every role reads it all
    for schema in ("analyst", "nothing"):
        assert warehouse.execute(f"SELECT * FROM {schema}.open_table ORDER BY k").rows == [("x", 1), ("y", 2)]


def test_a_revoke_counts_from_the_next_query(lake, warehouse):
    lf, role = lake["lf"], lake["roles"]["analyst"]
    resource = {"DataCellsFilter": lake["cells"]}
    lf.revoke_permissions(Principal={"DataLakePrincipalIdentifier": role}, Resource=resource,
                          Permissions=["SELECT"])
    try:
        failure(warehouse, "SELECT * FROM analyst.orders")
    finally:
        lf.grant_permissions(Principal={"DataLakePrincipalIdentifier": role}, Resource=resource,
                             Permissions=["SELECT"])
    assert len(warehouse.execute("SELECT * FROM analyst.orders").rows) == 3


def test_session_identity_is_refused_with_a_reason(warehouse):
    error = failure(warehouse, f"CREATE EXTERNAL SCHEMA sess FROM DATA CATALOG DATABASE '{DB}' IAM_ROLE 'SESSION'")
    assert "SESSION" in str(error) and error.code == "0A000"
