"""Redshift through boto3: clusters with a real endpoint, and the Data API running real SQL.

Uses the session ``stack`` (never stopped here); every cluster a test
creates is deleted by it (``cluster``, ``clusters`` and ``statements`` are in
tests/conftest.py).
"""
from __future__ import annotations

import socket
import threading
import time
import uuid

import pytest
from botocore.exceptions import ClientError

from localaws.redshift.api import to_positional
from localaws.redshift.errors import ValidationException


def listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return True
    except OSError:
        return False


def endpoint(redshift, name: str) -> dict:
    return redshift.describe_clusters(ClusterIdentifier=name)["Clusters"][0]["Endpoint"]


# ------------------------------------------------------------------ clusters
def test_create_cluster_has_a_real_listening_endpoint(redshift, cluster, stack):
    described = redshift.describe_clusters(ClusterIdentifier=cluster)["Clusters"][0]
    assert described["Endpoint"]["Address"] == "127.0.0.1"
    assert described["ClusterStatus"] == "available" and described["NumberOfNodes"] == 1
    assert listening(described["Endpoint"]["Port"])
    assert stack.local.redshift.slices(cluster) == 2          # ra3.xlplus: 2 slices per node


def test_multi_node_slices(redshift, stack, unique, clusters):
    name = unique("rs")
    redshift.create_cluster(ClusterIdentifier=name, NodeType="ra3.4xlarge", ClusterType="multi-node",
                            NumberOfNodes=3, MasterUsername="admin", MasterUserPassword=clusters.password)
    try:
        assert stack.local.redshift.slices(name) == 12
        assert redshift.describe_clusters(ClusterIdentifier=name)["Clusters"][0]["DBName"] == "dev"
    finally:
        redshift.delete_cluster(ClusterIdentifier=name, SkipFinalClusterSnapshot=True)


@pytest.mark.parametrize("kwargs, code, message", [
    ({"NodeType": "xx.huge"}, "InvalidParameterValue", "Invalid node type: xx.huge."),
    ({"NodeType": "ra3.xlplus", "ClusterType": "multi-node", "NumberOfNodes": 1},
     "InvalidParameterCombination", "multi-node must be greater than or equal to 2"),
    ({"NodeType": "ra3.xlplus", "ClusterType": "single-node", "NumberOfNodes": 2},
     "InvalidParameterValue", "must be not be supplied for cluster type single-node"),
    ({"NodeType": "ra3.xlplus", "ClusterType": "three-node"}, "InvalidParameterValue", "Invalid cluster type"),
])
def test_bad_cluster_shapes_are_refused_before_moto_records(redshift, unique, clusters, kwargs, code, message):
    name = unique("bad")
    with pytest.raises(ClientError) as info:
        redshift.create_cluster(ClusterIdentifier=name, MasterUsername="admin",
                                MasterUserPassword=clusters.password, **kwargs)
    assert info.value.response["Error"]["Code"] == code
    assert message in info.value.response["Error"]["Message"]
    names = [c["ClusterIdentifier"] for c in redshift.describe_clusters()["Clusters"]]
    assert name not in names
    with pytest.raises(redshift.exceptions.ClusterNotFoundFault):
        redshift.describe_clusters(ClusterIdentifier=name)


def test_delete_closes_the_port_and_ends_its_threads(redshift, unique, clusters):
    before = set(threading.enumerate())
    name = unique("rs")
    redshift.create_cluster(ClusterIdentifier=name, NodeType="dc2.large", ClusterType="single-node",
                            MasterUsername="admin", MasterUserPassword=clusters.password)
    port = endpoint(redshift, name)["Port"]
    assert listening(port)
    redshift.delete_cluster(ClusterIdentifier=name, SkipFinalClusterSnapshot=True)
    assert not listening(port)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        left = [t for t in set(threading.enumerate()) - before
                if t.is_alive() and t.name.startswith("redshift-wire")]
        if not left:
            break
        time.sleep(0.05)
    assert not left
    with pytest.raises(redshift.exceptions.ClusterNotFoundFault):
        redshift.describe_clusters(ClusterIdentifier=name)


def test_pause_refuses_connections_and_resume_keeps_the_data(redshift, data, cluster, statements):
    assert statements.run(data, cluster, "create table kept (id int)")["Status"] == "FINISHED"
    assert statements.run(data, cluster, "insert into kept values (1), (2), (3)")["ResultRows"] == 3
    port = endpoint(redshift, cluster)["Port"]

    paused = redshift.pause_cluster(ClusterIdentifier=cluster)["Cluster"]
    assert paused["ClusterStatus"] == "paused"
    assert not listening(port)
    with pytest.raises(ClientError) as info:
        data.execute_statement(ClusterIdentifier=cluster, Database="dev", DbUser="admin", Sql="select 1")
    assert info.value.response["Error"]["Code"] == "ValidationException"
    with pytest.raises(redshift.exceptions.InvalidClusterStateFault):
        redshift.pause_cluster(ClusterIdentifier=cluster)
    with pytest.raises(redshift.exceptions.InvalidClusterStateFault):
        redshift.delete_cluster(ClusterIdentifier=cluster, SkipFinalClusterSnapshot=True)

    resumed = redshift.resume_cluster(ClusterIdentifier=cluster)["Cluster"]
    assert resumed["ClusterStatus"] == "available"
    assert listening(endpoint(redshift, cluster)["Port"])
    sid = statements.submit(data, cluster, "select count(*) as n from kept")
    assert statements.wait(data, sid)["Status"] == "FINISHED"
    assert data.get_statement_result(Id=sid)["Records"] == [[{"longValue": 3}]]


# ------------------------------------------------------------------ the Data API
def test_round_trip_with_typed_records_and_parameters(data, cluster, statements):
    assert statements.run(data, cluster, "create table flights (id int, carrier varchar(8), delay float8, "
                                         "fare decimal(8,2), cancelled boolean, day date)")["Status"] == "FINISHED"
    insert = statements.run(data, cluster, "insert into flights values (1, 'AA', 12.5, 199.99, false, '2024-03-01'), "
                                           "(2, 'UA', null, 89.50, true, '2024-03-02'), "
                                           "(3, 'AA', 3.0, null, false, null)")
    assert insert["Status"] == "FINISHED" and insert["HasResultSet"] is False and insert["ResultRows"] == 3

    sid = statements.submit(
        data, cluster, "select id, carrier, delay, fare, cancelled, day from flights "
                       "where carrier = :carrier and id >= :low order by id",
        StatementName="by-carrier", Parameters=[{"name": "carrier", "value": "AA"}, {"name": "low", "value": "1"}])
    desc = statements.wait(data, sid)
    assert desc["Status"] == "FINISHED", desc.get("Error")
    assert desc["HasResultSet"] is True and desc["ResultRows"] == 2 and desc["Duration"] > 0
    assert desc["QueryParameters"] == [{"name": "carrier", "value": "AA"}, {"name": "low", "value": "1"}]
    assert desc["RedshiftPid"] > 0 and desc["ResultSize"] > 0
    result = data.get_statement_result(Id=sid)
    assert result["TotalNumRows"] == 2
    assert [c["name"] for c in result["ColumnMetadata"]] == ["id", "carrier", "delay", "fare", "cancelled", "day"]
    assert [c["typeName"] for c in result["ColumnMetadata"]] == ["int4", "varchar", "float8", "numeric",
                                                                 "bool", "date"]
    assert result["Records"][0] == [{"longValue": 1}, {"stringValue": "AA"}, {"doubleValue": 12.5},
                                    {"stringValue": "199.99"}, {"booleanValue": False},
                                    {"stringValue": "2024-03-01"}]
    assert result["Records"][1][3] == {"isNull": True} and result["Records"][1][5] == {"isNull": True}

    listed = data.list_statements(StatementName="by-carrier")["Statements"]
    assert [s["Id"] for s in listed] == [sid] and listed[0]["QueryString"].startswith("select id")


def test_parameters_are_checked_and_placeholders_outside_strings_only():
    sql, values = to_positional("select ':x', a::int from t where a = :x and b = :y -- :z",
                                [{"name": "x", "value": "1"}, {"name": "y", "value": "2"}])
    assert sql == "select ':x', a::int from t where a = $1 and b = $2 -- :z" and values == ["1", "2"]
    with pytest.raises(ValidationException):
        to_positional("select :missing", [])
    with pytest.raises(ValidationException):
        to_positional("select 1", [{"name": "unused", "value": "1"}])


def test_pagination(data, cluster, statements):
    sid = statements.submit(data, cluster, "select n from generate_series(1, 2500) as g(n) order by n")
    assert statements.wait(data, sid)["Status"] == "FINISHED"
    values, token, pages = [], None, 0
    while True:
        page = data.get_statement_result(Id=sid, **({"NextToken": token} if token else {}))
        assert page["TotalNumRows"] == 2500
        values += [r[0]["longValue"] for r in page["Records"]]
        pages += 1
        token = page.get("NextToken")
        if not token:
            break
    assert values == list(range(1, 2501)) and pages == 3
    paginated = data.get_paginator("get_statement_result").paginate(Id=sid)
    assert sum(len(p["Records"]) for p in paginated) == 2500


def test_a_failing_statement_reports_the_database_message(data, cluster, statements):
    desc = statements.run(data, cluster, "select * from no_such_table")
    assert desc["Status"] == "FAILED"
    assert "no_such_table" in desc["Error"]
    with pytest.raises(ClientError) as info:
        data.get_statement_result(Id=desc["Id"])
    assert info.value.response["Error"]["Code"] == "ValidationException"
    wrong_db = statements.run(data, cluster, "select 1", database="other")
    assert wrong_db["Error"] == 'FATAL: database "other" does not exist'


def test_bad_requests(data, cluster, statements):
    with pytest.raises(data.exceptions.ValidationException, match="endpoint doesn't exist"):
        data.execute_statement(ClusterIdentifier="no-such-cluster", Database="dev", DbUser="admin", Sql="select 1")
    with pytest.raises(data.exceptions.ResourceNotFoundException) as info:
        data.describe_statement(Id=str(uuid.uuid4()))
    assert "ResourceId" in info.value.response
    with pytest.raises(data.exceptions.ValidationException):
        data.execute_statement(ClusterIdentifier=cluster, Database="dev", DbUser="admin",
                               Sql="select :a", Parameters=[{"name": "b", "value": "1"}])
    sid = statements.run(data, cluster, "select 1")["Id"]
    with pytest.raises(data.exceptions.ValidationException, match="already in FINISHED state"):
        data.cancel_statement(Id=sid)


def test_cancel_a_running_statement(data, cluster, statements):
    sid = statements.start_slow(data, cluster)
    assert data.cancel_statement(Id=sid)["Status"] is True          # the request is accepted...
    desc = statements.wait(data, sid, timeout=120)               # ...and the statement ends
    assert desc["Status"] == "ABORTED"
    # the cluster still answers
    assert statements.run(data, cluster, "select 1")["Status"] == "FINISHED"


def test_batch_runs_in_order_and_stops_at_the_first_failure(data, cluster, statements):
    sid = data.batch_execute_statement(ClusterIdentifier=cluster, Database="dev", DbUser="admin", Sqls=[
        "create table batch_t (id int)", "insert into batch_t values (1), (2)", "select id from batch_t order by id",
    ])["Id"]
    desc = statements.wait(data, sid)
    assert desc["Status"] == "FINISHED" and "QueryString" not in desc
    subs = desc["SubStatements"]
    assert [s["Id"] for s in subs] == [f"{sid}:1", f"{sid}:2", f"{sid}:3"]
    assert [s["Status"] for s in subs] == ["FINISHED"] * 3 and subs[2]["HasResultSet"] is True
    assert data.get_statement_result(Id=f"{sid}:3")["Records"] == [[{"longValue": 1}], [{"longValue": 2}]]

    bad = data.batch_execute_statement(ClusterIdentifier=cluster, Database="dev", DbUser="admin", Sqls=[
        "insert into batch_t values (3)", "select * from nowhere", "insert into batch_t values (4)"])["Id"]
    desc = statements.wait(data, bad)
    assert desc["Status"] == "FAILED" and "nowhere" in desc["Error"]
    assert [s["Status"] for s in desc["SubStatements"]] == ["FINISHED", "FAILED", "ABORTED"]
    listed = data.list_statements(ClusterIdentifier=cluster)["Statements"]
    assert any(s["Id"] == bad and s["IsBatchStatement"] and len(s["QueryStrings"]) == 3 for s in listed)


def test_catalog_operations(data, cluster, statements):
    assert statements.run(data, cluster, "create table airports (code varchar(3) not null, name varchar(80), "
                                         "alt int)")["Status"] == "FINISHED"
    assert statements.run(data, cluster, "create view high as select code from airports where alt > 1000")[
        "Status"] == "FINISHED"
    ids = {"ClusterIdentifier": cluster, "Database": "dev", "DbUser": "admin"}
    assert data.list_databases(**ids)["Databases"] == ["dev"]
    assert "public" in data.list_schemas(**ids)["Schemas"]
    tables = data.list_tables(**ids, SchemaPattern="public", TablePattern="%")["Tables"]
    assert {"schema": "public", "name": "airports", "type": "TABLE"} in tables
    assert {"schema": "public", "name": "high", "type": "VIEW"} in tables
    assert [t["name"] for t in data.list_tables(**ids, TablePattern="air%")["Tables"]] == ["airports"]
    described = data.describe_table(**ids, Schema="public", Table="airports")
    assert described["TableName"] == "airports"
    columns = {c["name"]: c for c in described["ColumnList"]}
    assert list(columns) == ["code", "name", "alt"]
    assert columns["code"]["typeName"] == "varchar" and columns["code"]["schemaName"] == "public"
    assert columns["alt"]["typeName"] == "int4" and columns["alt"]["nullable"] == 1


def test_redshift_connector_round_trip(redshift, cluster, clusters):
    pytest.importorskip("redshift_connector")
    con = clusters.connect(redshift, cluster)
    try:
        cur = con.cursor()
        cur.execute("create table wire_t (id int, name varchar(10))")
        cur.execute("insert into wire_t values (1, 'one'), (2, 'two')")
        con.commit()
        cur.execute("select id, name from wire_t order by id")
        assert [tuple(r) for r in cur.fetchall()] == [(1, "one"), (2, "two")]
    finally:
        con.close()
