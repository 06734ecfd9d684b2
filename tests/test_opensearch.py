"""OpenSearch Service: domains map to real servers; bad input gets OpenSearch's
error shape and loses no accepted document; servers end with the stack."""
import json
import os
import subprocess
import sys

import pytest
from opensearchpy import exceptions as osx

from localaws.opensearch import domain_cost

INDEX = "t-products"
MAPPING = {"settings": {"number_of_shards": 1},
           "mappings": {"dynamic": "strict", "properties": {
               "name": {"type": "text", "fields": {"raw": {"type": "keyword"}}},
               "price": {"type": "float"}, "stock": {"type": "integer"},
               "added": {"type": "date"}, "tags": {"type": "keyword"}}}}
GOOD = [{"name": f"widget {i}", "price": i + 0.5, "stock": i, "added": "2026-10-01",
         "tags": ["a" if i % 2 else "b"]} for i in range(20)]


@pytest.fixture(scope="module")
def domain(stack):
    es = stack.client("opensearch")
    status = es.create_domain(
        DomainName="t-search", EngineVersion="OpenSearch_2.19",
        ClusterConfig={"InstanceType": "r6g.large.search", "InstanceCount": 2,
                       "ZoneAwarenessEnabled": True, "ZoneAwarenessConfig": {"AvailabilityZoneCount": 2}},
        EBSOptions={"EBSEnabled": True, "VolumeType": "gp3", "VolumeSize": 20})["DomainStatus"]
    yield status
    for d in es.list_domain_names()["DomainNames"]:     # leave no server running
        if d["DomainName"].startswith("t-"):
            es.delete_domain(DomainName=d["DomainName"])


@pytest.fixture(scope="module")
def client(stack, domain):
    c = stack.local.opensearch.client("t-search")
    c.indices.create(index=INDEX, body=MAPPING)
    for i, doc in enumerate(GOOD):
        c.index(index=INDEX, id=str(i), body=doc)
    c.indices.refresh(index=INDEX)
    return c


def count(c):
    c.indices.refresh(index=INDEX)
    return c.count(index=INDEX)["count"]


# -- control plane -------------------------------------------------------------
def test_domain_endpoint_is_the_running_server(stack, domain):
    described = stack.client("opensearch").describe_domain(DomainName="t-search")["DomainStatus"]
    assert described["Endpoint"] == domain["Endpoint"]
    assert described["Endpoint"].startswith("127.0.0.1:")
    c = stack.local.opensearch.client("t-search")
    assert c.info()["version"]["distribution"] == "opensearch"
    names = stack.client("opensearch").list_domain_names()["DomainNames"]
    assert {"DomainName": "t-search", "EngineType": "OpenSearch"} in names


def test_elasticsearch_api_sees_the_same_domain(stack, domain):
    status = stack.client("es").describe_elasticsearch_domain(DomainName="t-search")["DomainStatus"]
    assert status["Endpoint"] == domain["Endpoint"]


def test_each_domain_has_its_own_indices(stack, client):
    es = stack.client("opensearch")
    es.create_domain(DomainName="t-other")
    try:
        other = stack.local.opensearch.client("t-other")
        assert not other.indices.exists(index=INDEX)
    finally:
        es.delete_domain(DomainName="t-other")


def test_domain_cost_uses_the_price_table(stack, domain):
    from localaws.pricing import price
    cost = domain_cost(domain, hours=10)
    node = price("opensearch.instance.r6g.large.search").usd
    gb = price("opensearch.ebs.gp3").usd
    assert cost["usd"] == pytest.approx(2 * 10 * node + 40 * gb * 10 / 730)


def test_invalid_domain_name_is_a_validation_error(stack):
    with pytest.raises(stack.client("opensearch").exceptions.ClientError) as err:
        stack.client("opensearch").create_domain(DomainName="Bad_Name")
    assert err.value.response["Error"]["Code"] == "ValidationException"


# -- bad input: OpenSearch's error shape, nothing accepted is lost ---------------
def error_type(exc):
    info = exc.info if isinstance(exc.info, dict) else {}
    err = info.get("error", {})
    return exc.status_code, (err.get("type") if isinstance(err, dict) else err)


BAD_INDEX_BODIES = [
    ("unknown field type", {"mappings": {"properties": {"x": {"type": "nosuchtype"}}}},
     "mapper_parsing_exception"),
    ("field config not an object", {"mappings": {"properties": {"x": "text"}}},
     "illegal_argument_exception"),
    ("undefined analyzer", {"mappings": {"properties": {"x": {"type": "text", "analyzer": "nope"}}}},
     "mapper_parsing_exception"),
]


@pytest.mark.parametrize("what,body,expected", BAD_INDEX_BODIES, ids=[b[0] for b in BAD_INDEX_BODIES])
def test_malformed_mapping_is_refused_and_creates_nothing(client, what, body, expected):
    with pytest.raises(osx.RequestError) as err:
        client.indices.create(index="t-bad", body=body)
    assert error_type(err.value) == (400, expected)
    assert not client.indices.exists(index="t-bad")


def test_invalid_index_name(client):
    with pytest.raises(osx.RequestError) as err:
        client.indices.create(index="Upper_Case")
    assert error_type(err.value) == (400, "invalid_index_name_exception")


def test_existing_index_is_not_overwritten(client):
    with pytest.raises(osx.RequestError) as err:
        client.indices.create(index=INDEX)
    assert error_type(err.value) == (400, "resource_already_exists_exception")
    assert count(client) >= len(GOOD)


@pytest.mark.parametrize("doc,expected", [
    ({"name": "x", "stock": "many"}, "mapper_parsing_exception"),
    ({"name": "x", "added": "not a date"}, "mapper_parsing_exception"),
    ({"name": "x", "colour": "red"}, "strict_dynamic_mapping_exception"),
], ids=["integer gets text", "date gets text", "field outside a strict mapping"])
def test_wrong_document_is_refused_alone(client, doc, expected):
    before = count(client)
    with pytest.raises(osx.RequestError) as err:
        client.index(index=INDEX, id="bad", body=doc)
    assert error_type(err.value) == (400, expected)
    assert count(client) == before
    assert client.get(index=INDEX, id="3")["_source"] == GOOD[3]


def test_bulk_with_failing_items_indexes_the_others(client):
    before = count(client)
    actions = []
    for i in range(10):
        actions.append({"index": {"_index": INDEX, "_id": f"bulk-{i}"}})
        actions.append({"name": f"bulk {i}", "stock": i if i % 3 else "not a number"})
    resp = client.bulk(body=actions)
    assert resp["errors"] is True
    failed = [item["index"] for item in resp["items"] if "error" in item["index"]]
    assert sorted(f["_id"] for f in failed) == ["bulk-0", "bulk-3", "bulk-6", "bulk-9"]
    assert all(f["status"] == 400 and f["error"]["type"] == "mapper_parsing_exception" for f in failed)
    assert count(client) == before + 6


def test_bulk_with_a_malformed_line_reports_that_item(client):
    before = count(client)
    body = ('{"index":{"_index":"%s","_id":"ok-1"}}\n{"name":"fine"}\n'
            '{"index":{"_index":"%s","_id":"broken"}}\n{not json\n' % (INDEX, INDEX))
    resp = client.bulk(body=body)
    items = {next(iter(i.values()))["_id"]: next(iter(i.values())) for i in resp["items"]}
    assert "error" not in items["ok-1"]
    assert any("error" in v for k, v in items.items() if k != "ok-1")
    assert count(client) == before + 1


def test_query_on_missing_index(client):
    with pytest.raises(osx.NotFoundError) as err:
        client.search(index="t-missing", body={"query": {"match_all": {}}})
    assert error_type(err.value) == (404, "index_not_found_exception")


@pytest.mark.parametrize("body,expected", [
    ({"query": {"matchh": {"name": "x"}}}, "parsing_exception"),
    ({"query": {"range": {"stock": {"gte": "lots"}}}}, "search_phase_execution_exception"),
    ({"size": 20000, "query": {"match_all": {}}}, "search_phase_execution_exception"),
    ({"aggs": {"by_name": {"terms": {"field": "name"}}}}, "search_phase_execution_exception"),
], ids=["unknown query", "bad range value", "result window too large", "terms on a text field"])
def test_invalid_query_dsl(client, body, expected):
    with pytest.raises(osx.RequestError) as err:
        client.search(index=INDEX, body=body)
    assert error_type(err.value) == (400, expected)


def test_mapping_type_cannot_change(client):
    with pytest.raises(osx.RequestError) as err:
        client.indices.put_mapping(index=INDEX, body={"properties": {"stock": {"type": "keyword"}}})
    assert error_type(err.value) == (400, "illegal_argument_exception")
    assert client.indices.get_mapping(index=INDEX)[INDEX]["mappings"]["properties"]["stock"]["type"] == "integer"


def test_oversized_request_is_refused_whole(client):
    before = count(client)
    big = json.dumps({"name": "x" * (101 * 1024 * 1024)})
    with pytest.raises(osx.TransportError) as err:
        client.transport.perform_request("POST", f"/{INDEX}/_doc", body=big)
    assert err.value.status_code == 413
    assert count(client) == before


def test_no_accepted_document_was_lost(client):
    """A mix of accepted and refused writes on a fresh index: exactly the accepted ones stay."""
    index = "t-ledger"
    client.indices.create(index=index, body=MAPPING)
    accepted = set()
    for i in range(5):
        client.index(index=index, id=str(i), body=GOOD[i])
        accepted.add(str(i))
    with pytest.raises(osx.RequestError):
        client.index(index=index, id="bad", body={"name": "x", "stock": "many"})
    actions = []
    for i in range(6):
        actions += [{"index": {"_index": index, "_id": f"bulk-{i}"}},
                    {"name": f"bulk {i}", "stock": i if i % 3 else "not a number"}]
    resp = client.bulk(body=actions)
    accepted |= {item["index"]["_id"] for item in resp["items"] if "error" not in item["index"]}
    with pytest.raises(osx.TransportError):
        client.transport.perform_request("POST", f"/{index}/_doc",
                                         body=json.dumps({"name": "x" * (101 * 1024 * 1024)}))
    client.indices.refresh(index=index)
    hits = client.search(index=index, body={"size": 1000, "query": {"match_all": {}}})["hits"]["hits"]
    assert {h["_id"] for h in hits} == accepted == {"0", "1", "2", "3", "4", "bulk-1", "bulk-2",
                                                   "bulk-4", "bulk-5"}


# -- lifecycle -----------------------------------------------------------------
LIFECYCLE = r'''
import os, localaws
s = localaws.start()
s.client("opensearch").create_domain(DomainName="life")
s.local.opensearch.client().info()
pids = s.local.opensearch.running_pids()
assert len(pids) == 2, pids
s.stop()
gone = []
for pid in pids:
    try:
        state = open(f"/proc/{pid}/stat").read().split(") ")[1].split()[0]
        gone.append(state == "Z")
    except FileNotFoundError:
        gone.append(True)
print(all(gone), s.processes.pids())
'''


def test_servers_stop_with_the_stack():
    out = subprocess.run([sys.executable, "-c", LIFECYCLE], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "OPENSEARCH_URL": ""})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "True []"


ORPHAN = r'''
import localaws, sys
s = localaws.start()
s.local.opensearch.client().info()
print(s.local.opensearch.running_pids()[0], flush=True)
sys.stdin.read()
'''


def test_server_exits_when_its_python_is_killed():
    """A crashed notebook kernel leaves no server behind (--parent-pid, stdin watch)."""
    import time
    proc = subprocess.Popen([sys.executable, "-c", ORPHAN], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env={**os.environ, "OPENSEARCH_URL": ""})
    server = int(proc.stdout.readline())
    proc.kill()
    proc.wait()
    deadline = time.monotonic() + 10
    while os.path.exists(f"/proc/{server}") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not os.path.exists(f"/proc/{server}")


def test_domains_beyond_the_local_limit_are_refused_and_recorded_nowhere(stack, monkeypatch):
    from localaws.opensearch import api
    es = stack.client("opensearch")
    before = {d["DomainName"] for d in es.list_domain_names()["DomainNames"]}
    monkeypatch.setattr(api, "MAX_DOMAINS", len([d for d in before]))
    with pytest.raises(es.exceptions.LimitExceededException) as err:
        es.create_domain(DomainName="t-one-too-many")
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 409
    assert {d["DomainName"] for d in es.list_domain_names()["DomainNames"]} == before


def test_deleted_domain_server_is_listed_as_stopped(stack, monkeypatch):
    """DeleteDomain ends the domain's server, and running_pids() tells the truth about it,
    even when that server failed to stop (it is no longer mapped to a domain, but it runs)."""
    plane = stack.local.opensearch
    if plane.kind() == "external":
        pytest.skip("an external cluster is not ours to stop")
    es = stack.client("opensearch")

    es.create_domain(DomainName="t-gone")
    [server] = [s for s in plane.servers() if s["domain"] == "t-gone"]
    assert server["running"] and server["pid"] in plane.running_pids()
    status = es.delete_domain(DomainName="t-gone")["DomainStatus"]
    assert status["Deleted"] is True
    assert [s for s in plane.servers() if s["domain"] == "t-gone"] == [{**server, "running": False}]
    assert server["pid"] not in plane.running_pids()

    from localaws.opensearch import engine
    real_stop, survivors = engine.EmbeddedServer.stop, []
    monkeypatch.setattr(engine.EmbeddedServer, "stop", lambda self: survivors.append(self))   # a server that survives
    es.create_domain(DomainName="t-stuck")
    es.delete_domain(DomainName="t-stuck")
    [stuck] = [s for s in plane.servers() if s["domain"] == "t-stuck"]
    assert stuck["running"] and stuck["pid"] in plane.running_pids()
    monkeypatch.undo()
    for server_left in survivors:
        real_stop(server_left)
    assert stuck["pid"] not in plane.running_pids()
