"""Fixtures shared by the unit tests (the ``stack`` fixture is in the root conftest.py).

Test helpers live here, once, as fixtures: a test asks for ``create_function``
or ``log_messages`` by naming it as an argument, as pytest does for ``stack``.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import socket
import struct
import time
import uuid

import boto3
import pytest
from botocore.exceptions import ClientError

from localaws.awslambda import zip_package
from localaws.core.waiting import wait_until

TRUST_POLICY = json.dumps({"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
    "Action": "sts:AssumeRole"}]})


@pytest.fixture(scope="session")
def lambda_role(stack) -> str:
    """The ARN of an IAM role Lambda (and Firehose) may assume (moto checks that the role exists)."""
    iam = stack.client("iam")
    try:
        return iam.get_role(RoleName="lambda-test-role")["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        return iam.create_role(RoleName="lambda-test-role",
                               AssumeRolePolicyDocument=TRUST_POLICY)["Role"]["Arn"]


@pytest.fixture(scope="session")
def create_function(stack, lambda_role):
    """``create_function(name, source, handler="app.handler", timeout=3, runtime=..., **kwargs)``:
    a Python function whose one file ``app.py`` is ``source``; returns the Lambda client."""
    def create(name, source, handler="app.handler", timeout=3, **kwargs):
        lam = stack.client("lambda")
        lam.create_function(FunctionName=name, Runtime=kwargs.pop("runtime", "python3.11"),
                            Role=lambda_role, Handler=handler, Timeout=timeout,
                            Code={"ZipFile": zip_package({"app.py": source})}, **kwargs)
        return lam
    return create


@pytest.fixture(scope="session")
def log_messages(stack):
    """``log_messages(function_name)``: every CloudWatch Logs message of a function, stream by stream."""
    def messages(function_name):
        logs = stack.client("logs")
        group = f"/aws/lambda/{function_name}"
        found = []
        for stream in logs.describe_log_streams(logGroupName=group)["logStreams"]:
            events = logs.get_log_events(logGroupName=group, logStreamName=stream["logStreamName"])
            found.extend(e["message"] for e in events["events"])
        return found
    return messages


@pytest.fixture
def redshift(stack):
    """A boto3 Redshift client of the session's stack."""
    return stack.client("redshift")


@pytest.fixture
def data(stack):
    """A boto3 Redshift Data API client of the session's stack."""
    return stack.client("redshift-data")


@pytest.fixture(scope="session")
def unique():
    """``unique(prefix)``: ``prefix-`` and 8 random hex digits (a cluster, snapshot or bucket name)."""
    return lambda prefix: f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="session")
def regional_client(stack):
    """``regional_client(service, region)``: a boto3 client of the stack signing for another region."""
    def client(service: str, region: str):
        c = stack.context.principals.credentials(None)
        return boto3.client(service, endpoint_url=stack.endpoint, region_name=region,
                            aws_access_key_id=c.access_key, aws_secret_access_key=c.secret_key,
                            aws_session_token=c.session_token)
    return client


@pytest.fixture(scope="session")
def kinesis_options(stack) -> str:
    """The WITH options a Flink SQL table needs for AWS's Kinesis connector to reach the local
    endpoint with the stack's keys (on AWS: only 'aws.region'; the application's role signs)."""
    return (f"'aws.region' = 'us-east-1', 'aws.endpoint' = '{stack.endpoint}', "
            "'aws.credentials.provider' = 'BASIC', 'aws.credentials.basic.accesskeyid' = 'testing', "
            "'aws.credentials.basic.secretkey' = 'testing'")


@pytest.fixture(scope="session")
def msk(stack):
    """The stack's Amazon MSK client (``kafka``)."""
    return stack.client("kafka")


@pytest.fixture(scope="session")
def zone_subnets(stack):
    """``zone_subnets(zones)``: a new VPC with one subnet in each Availability Zone given (an MSK
    cluster needs two or three, in different zones); each call gets its own CIDR."""
    ec2, made = stack.client("ec2"), []

    def make(zones) -> list[str]:
        made.append(len(made))
        block = f"10.{100 + made[-1]}"
        vpc = ec2.create_vpc(CidrBlock=f"{block}.0.0/16")["Vpc"]["VpcId"]
        return [ec2.create_subnet(VpcId=vpc, CidrBlock=f"{block}.{i}.0/24", AvailabilityZone=zone)
                ["Subnet"]["SubnetId"] for i, zone in enumerate(zones)]
    return make


@pytest.fixture(scope="session")
def two_broker_cluster(msk, zone_subnets):
    """``two_broker_cluster(name)`` -> (cluster ARN, bootstrap string): an ACTIVE MSK cluster of two
    brokers in two zones, the smallest MSK allows (delete it with ``msk.delete_cluster``)."""
    def make(name: str) -> tuple[str, str]:
        arn = msk.create_cluster(
            ClusterName=name, KafkaVersion="4.1.x.kraft", NumberOfBrokerNodes=2,
            BrokerNodeGroupInfo={"InstanceType": "kafka.m7g.large",
                                 "ClientSubnets": zone_subnets(("us-east-1a", "us-east-1b"))})["ClusterArn"]
        assert wait_until(lambda: msk.describe_cluster(ClusterArn=arn)["ClusterInfo"]["State"] == "ACTIVE",
                          120, poll=0.5)
        return arn, msk.get_bootstrap_brokers(ClusterArn=arn)["BootstrapBrokerString"]
    return make


@pytest.fixture(scope="session")
def brew(stack):
    """The stack's AWS Glue DataBrew client (``databrew``)."""
    return stack.client("databrew")


@pytest.fixture(scope="session")
def qs(stack):
    """The stack's QuickSight client (``quicksight``)."""
    return stack.client("quicksight")


@pytest.fixture(scope="session")
def stream_json(stack):
    """``stream_json(name)``: every record of a one-shard Kinesis stream, from
    TRIM_HORIZON to the tip, decoded from JSON (what a Flink job wrote, say)."""
    kinesis = stack.client("kinesis")

    def read(stream: str) -> list[dict]:
        shard = kinesis.list_shards(StreamName=stream)["Shards"][0]["ShardId"]
        iterator = kinesis.get_shard_iterator(StreamName=stream, ShardId=shard,
                                              ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        rows = []
        while iterator:
            page = kinesis.get_records(ShardIterator=iterator)
            rows += [json.loads(r["Data"]) for r in page["Records"]]
            if not page["Records"]:
                break
            iterator = page["NextShardIterator"]
        return rows
    return read


@pytest.fixture
def frozen(stack):
    """The stack's clock, frozen for the test and running again after it."""
    clock = stack.local.clock
    clock.freeze()
    try:
        yield clock
    finally:
        clock.resume()


@pytest.fixture(scope="session")
def s3_objects(stack):
    """``s3_objects(bucket)``: ``{key: size}`` of every object in the bucket (``{}`` if there is no such bucket)."""
    s3 = stack.client("s3")

    def objects(bucket: str) -> dict[str, int]:
        try:
            pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
            return {o["Key"]: o["Size"] for page in pages for o in page.get("Contents", [])}
        except ClientError:
            return {}
    return objects


# -- Redshift ------------------------------------------------------------------------------
class Statements:
    """Data API statements as ``admin`` on database ``dev``; ``data`` is a redshift-data client.

    ``wait`` and ``run`` accept any end and wait 30 s by default; ``wait_ok``, ``run_ok`` and
    ``records`` assert FINISHED and wait 60 s.
    """

    ENDED = ("FINISHED", "FAILED", "ABORTED")

    def submit(self, data, cluster: str, sql: str, database: str = "dev", **kwargs) -> str:
        """ExecuteStatement; the statement's id."""
        return data.execute_statement(ClusterIdentifier=cluster, Database=database, DbUser="admin", Sql=sql,
                                      **kwargs)["Id"]

    def wait(self, data, statement_id: str, timeout: float = 30) -> dict:
        """DescribeStatement once the statement has ended, whatever its end (asserts it ends in time)."""
        deadline = time.monotonic() + timeout
        while (desc := data.describe_statement(Id=statement_id))["Status"] not in self.ENDED:
            assert time.monotonic() < deadline, f"statement did not end in {timeout} s: {desc}"
            time.sleep(0.05)
        return desc

    def wait_ok(self, data, statement_id: str, timeout: float = 60) -> dict:
        """:meth:`wait`, asserting the statement FINISHED (its Error otherwise)."""
        desc = self.wait(data, statement_id, timeout)
        assert desc["Status"] == "FINISHED", desc.get("Error")
        return desc

    def run(self, data, cluster: str, sql: str, timeout: float = 30, **kwargs) -> dict:
        """:meth:`submit` and :meth:`wait`: FINISHED, FAILED or ABORTED."""
        return self.wait(data, self.submit(data, cluster, sql, **kwargs), timeout)

    def run_ok(self, data, cluster: str, sql: str, timeout: float = 60) -> dict:
        """:meth:`submit` and :meth:`wait_ok`."""
        return self.wait_ok(data, self.submit(data, cluster, sql), timeout)

    def start_slow(self, data, cluster: str) -> str:
        """Submit a statement that runs for minutes (a 200,000 x 200,000 cross join); its id once
        it is STARTED (or after 10 s), to cancel."""
        sid = self.submit(data, cluster, "SELECT sum(x * y % 7) FROM generate_series(1, 200000) AS a(x), "
                                         "generate_series(1, 200000) AS b(y)")
        deadline = time.monotonic() + 10
        while data.describe_statement(Id=sid)["Status"] != "STARTED" and time.monotonic() < deadline:
            time.sleep(0.02)
        return sid

    def records(self, data, cluster: str, sql: str, timeout: float = 60) -> list:
        """:meth:`run_ok`, then GetStatementResult's ``Records``."""
        return data.get_statement_result(Id=self.run_ok(data, cluster, sql, timeout)["Id"])["Records"]


class Clusters:
    """Redshift clusters made (master user ``admin``, database ``dev``) and deleted; ``redshift`` is a client."""

    user, password = "admin", "Passw0rd1"

    def create(self, redshift, name: str, node_type: str = "ra3.xlplus", **kwargs) -> str:
        """CreateCluster; returns ``name``."""
        redshift.create_cluster(ClusterIdentifier=name, NodeType=node_type, MasterUsername=self.user,
                                MasterUserPassword=self.password, DBName="dev", **kwargs)
        return name

    def drop(self, redshift, *names: str) -> None:
        """Delete each cluster (resumed first if paused), without a final snapshot; missing ones are skipped."""
        for name in names:
            try:
                status = redshift.describe_clusters(ClusterIdentifier=name)["Clusters"][0]["ClusterStatus"]
                if status == "paused":
                    redshift.resume_cluster(ClusterIdentifier=name)
                redshift.delete_cluster(ClusterIdentifier=name, SkipFinalClusterSnapshot=True)
            except ClientError:
                pass

    def drop_snapshots(self, redshift, *names: str) -> None:
        """Delete each manual snapshot; missing ones are skipped."""
        for name in names:
            try:
                redshift.delete_cluster_snapshot(SnapshotIdentifier=name)
            except ClientError:
                pass

    def connect(self, redshift, name: str, autocommit: bool | None = None):
        """A redshift_connector connection to the cluster's endpoint, as its master user, database ``dev``."""
        import redshift_connector

        endpoint = redshift.describe_clusters(ClusterIdentifier=name)["Clusters"][0]["Endpoint"]
        conn = redshift_connector.connect(host=endpoint["Address"], port=endpoint["Port"], database="dev",
                                          user=self.user, password=self.password, ssl=False)
        if autocommit is not None:
            conn.autocommit = autocommit
        return conn

    @contextlib.contextmanager
    def running(self, redshift, name: str, **kwargs):
        """``with clusters.running(redshift, name, **create_kwargs) as name:`` deleted at the end."""
        self.create(redshift, name, **kwargs)
        try:
            yield name
        finally:
            self.drop(redshift, name)


@pytest.fixture(scope="session")
def statements():
    """Data API statements: ``statements.run(data, cluster, sql)`` and the rest of :class:`Statements`."""
    return Statements()


@pytest.fixture(scope="session")
def clusters():
    """Clusters: ``clusters.create(redshift, name)``, ``.drop``, ``.drop_snapshots``, ``.running``."""
    return Clusters()


@pytest.fixture
def cluster(redshift, clusters, unique):
    """A running single-node ra3.xlplus cluster's identifier; deleted afterwards."""
    with clusters.running(redshift, unique("rs"), ClusterType="single-node") as name:
        yield name


class RawClient:
    """Just enough of a PostgreSQL client to send chosen messages and read the answers."""

    def __init__(self, port: int, user: str, password: str, database: str, ssl_request: bool = False):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        if ssl_request:
            self.sock.sendall(struct.pack("!ii", 8, 80877103))            # SSLRequest: answered N
            assert self.sock.recv(1) == b"N"
        body = struct.pack("!i", 196608) + f"user\0{user}\0database\0{database}\0\0".encode()
        self.sock.sendall(struct.pack("!i", len(body) + 4) + body)
        kind, auth = self.read()
        assert kind == b"R" and struct.unpack("!i", auth[:4])[0] == 5    # AuthenticationMD5Password
        inner = hashlib.md5((password + user).encode()).hexdigest().encode()
        self.send(b"p", b"md5" + hashlib.md5(inner + auth[4:]).hexdigest().encode() + b"\0")
        self.until_ready()

    def send(self, kind: bytes, body: bytes = b"") -> None:
        self.sock.sendall(kind + struct.pack("!i", len(body) + 4) + body)

    def read(self) -> tuple[bytes, bytes]:
        head = self.recv(5)
        return head[:1], self.recv(struct.unpack("!i", head[1:])[0] - 4)

    def recv(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            assert chunk, "server closed the connection"
            data += chunk
        return data

    def until_ready(self) -> list[tuple[bytes, bytes]]:
        messages = []
        while not messages or messages[-1][0] != b"Z":
            messages.append(self.read())
        return messages

    def query(self, sql: str) -> tuple[bytes, list]:
        """A simple Query: (the transaction status after it, every answer message)."""
        self.send(b"Q", sql.encode() + b"\0")
        messages = self.until_ready()
        return messages[-1][1], messages

    def close(self) -> None:
        self.send(b"X")
        self.sock.close()


class Wire:
    """Clients of a :class:`~localaws.redshift.wire.WireServer`, as its warehouse's master user."""

    @contextlib.contextmanager
    def serving(self, warehouse):
        """``with wire.serving(warehouse) as server:`` a started WireServer, stopped at the end."""
        from localaws.redshift.wire import WireServer

        server = WireServer(warehouse)
        server.start()
        try:
            yield server
        finally:
            server.stop()

    def rs_connect(self, server, autocommit: bool | None = None, **kwargs):
        """A redshift_connector connection (AWS's driver; ``autocommit`` set only if given);
        ``kwargs`` override the defaults."""
        import redshift_connector

        w = server.warehouse
        options = dict(host="127.0.0.1", port=server.port, database=w.database, user=w.master_username,
                       password=w.master_password, ssl=False)
        conn = redshift_connector.connect(**{**options, **kwargs})
        if autocommit is not None:
            conn.autocommit = autocommit
        return conn

    def pg_connect(self, server, **kwargs):
        """A psycopg 3 connection (autocommit off unless given); ``kwargs`` override the defaults."""
        import psycopg

        w = server.warehouse
        options = dict(host="127.0.0.1", port=server.port, dbname=w.database, user=w.master_username,
                       password=w.master_password, sslmode="disable")
        return psycopg.connect(**{**options, **kwargs})

    def raw_client(self, server, ssl_request: bool = False) -> RawClient:
        """A :class:`RawClient`, logged in; ``ssl_request``: ask for SSL first (and be refused)."""
        w = server.warehouse
        return RawClient(server.port, w.master_username, w.master_password, w.database, ssl_request)


@pytest.fixture(scope="session")
def wire():
    """PostgreSQL-wire helpers: ``wire.serving(warehouse)``, ``.rs_connect``, ``.pg_connect``, ``.raw_client``."""
    return Wire()
