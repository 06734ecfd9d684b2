"""Amazon MSK (``kafka``): provisioned clusters as real Apache Kafka brokers.

moto keeps the cluster records (CreateCluster, CreateClusterV2, DescribeCluster,
ListClusters, DeleteCluster, tags) but leaves every cluster CREATING, has no
GetBootstrapBrokers, ListNodes, configurations or broker-count updates, and
starts no broker (../shared/FACTS.md). This plane takes over:

- **CreateCluster / CreateClusterV2** (provisioned) check what MSK checks (2 or 3
  client subnets in different Availability Zones, a broker count that is a
  multiple of them, an existing configuration revision), let moto record the
  cluster, then start a KRaft controller and the brokers
  (``localaws/core/kafka.py``). Broker *i* goes to subnet *i mod n*, its
  ``broker.rack`` the subnet's zone id (``use1-az1``): Kafka then places each
  partition's replicas in different zones, as on MSK (MSK-3).
- **DescribeCluster(V2)** reports the brokers' real state: CREATING until all
  serve, then ACTIVE (UPDATING during UpdateBrokerCount, FAILED with the
  reason if a broker cannot start). ``currentBrokerSoftwareInfo.kafkaVersion``
  is what was asked for; what runs is Kafka 4.1.1, said in ``stateInfo`` when
  they differ, and by ``stack.local.kafka.brokers``. No ZooKeeper connect
  string: the clusters run KRaft.
- **GetBootstrapBrokers** (plaintext), **ListNodes**, **UpdateBrokerCount**,
  **ListClusterOperations** / **DescribeClusterOperation**, and
  configurations: **CreateConfiguration**, **DescribeConfiguration**,
  **DescribeConfigurationRevision**, **ListConfigurations**.
- **DeleteCluster** stops every broker process.
- **CloudWatch metrics** (``AWS/Kafka``: UnderReplicatedPartitions,
  OfflinePartitionsCount, SumOffsetLag, MaxOffsetLag) measured on the brokers
  every 2 seconds (``metrics.py``).

Teaching hooks (``stack.local.kafka``): ``kill_broker`` and ``restart_broker``
(a broker failure and its recovery), ``brokers`` (process ids, racks, ports).

Not emulated: MSK Serverless and Express brokers, TLS/IAM/SASL authentication
(plaintext listeners only), storage autoscaling, version upgrades, MSK
Connect and Replicator. Bounds: at most :data:`MAX_BROKERS` brokers per
cluster on a laptop.
"""
from __future__ import annotations

import base64
import threading
import uuid
from datetime import datetime

from localaws.core import Plane, local_hook, moto_hook, not_emulated, operation
from localaws.core.kafka import KAFKA_VERSION
from localaws.core.wire import path_params
from . import engine, errors, metrics

SERVICE = "kafka"
BACKEND = "moto.kafka.models:KafkaBackend"

#: A laptop's bound: each broker is a JVM of ~260 MiB.
MAX_BROKERS = 6


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


class KafkaPlane(Plane):
    """Amazon MSK: each provisioned cluster a real KRaft Kafka cluster."""

    name = "kafka"
    services = (SERVICE,)

    def __init__(self, ctx):
        super().__init__(ctx)
        self.engine = engine.KafkaEngine(ctx.work_dir, ctx.processes)
        self.metrics = metrics.Sampler(self.engine, self._cloudwatch, ctx.clock)
        self._lock = threading.RLock()
        self._cloudwatch_clients: dict[str, object] = {}

    def stop(self):
        self.metrics.stop()
        self.engine.stop()

    def _cloudwatch(self, region: str):
        if region not in self._cloudwatch_clients:
            self._cloudwatch_clients[region] = self.ctx.client("cloudwatch", region_name=region)
        return self._cloudwatch_clients[region]

    # -- helpers ------------------------------------------------------------------
    def _arn(self, kind: str, name: str, region: str) -> str:
        return f"arn:aws:kafka:{region}:{self.ctx.account_id}:{kind}/{name}/{uuid.uuid4()}"

    def _racks(self, subnets: list[str], region: str) -> list[str]:
        """Each client subnet's Availability Zone id, as MSK spreads brokers over them."""
        if not 2 <= len(subnets) <= 3:
            raise errors.BadRequestException("Specify either two or three client subnets.")
        ec2 = self.ctx.client("ec2") if region == self.ctx.region else self.ctx.client("ec2", region_name=region)
        try:
            found = ec2.describe_subnets(SubnetIds=subnets)["Subnets"]
        except ec2.exceptions.ClientError as exc:
            raise errors.BadRequestException(f"One or more subnets could not be found: "
                                              f"{exc.response['Error']['Message']}") from None
        zones = {s["SubnetId"]: s.get("AvailabilityZoneId") or s["AvailabilityZone"] for s in found}
        racks = [zones[s] for s in subnets]
        if len(set(racks)) != len(racks):
            raise errors.BadRequestException("The client subnets must be in different Availability Zones.")
        return racks

    def _settings(self, configuration_info: dict | None) -> dict[str, str]:
        if not configuration_info:
            return {}
        config = self.engine.configurations.get(configuration_info.get("arn", ""))
        revision = int(configuration_info.get("revision", 0))
        if config is None or not 1 <= revision <= len(config.revisions):
            raise errors.BadRequestException(
                f"The configuration {configuration_info.get('arn')} revision {revision} does not exist.")
        return engine.parse_server_properties(config.revisions[revision - 1].server_properties.decode())

    def _start(self, backend, arn: str, info: dict, count: int, configuration_info: dict | None,
               racks: list[str], settings: dict[str, str]) -> None:
        cluster = backend.clusters[arn]
        op = engine.Operation(self._arn("cluster-operation", cluster.cluster_name, backend.region_name),
                              arn, "CREATE")
        broker_racks = [racks[i % len(racks)] for i in range(count)]
        self.engine.create(arn, cluster.cluster_name, broker_racks, info.get("clientSubnets", []),
                           info.get("instanceType", "kafka.m5.large"), settings, op)
        self.metrics.ensure_running()

    def _check_create(self, info: dict | None, count, configuration_info, region: str):
        info = info or {}
        count = int(count or 0)
        racks = self._racks(info.get("clientSubnets") or [], region)
        if count < 1 or count % len(racks):
            raise errors.BadRequestException(
                "The number of broker nodes must be a multiple of Availability Zones in the "
                "Client Subnets parameter.")
        if count > MAX_BROKERS:
            raise not_emulated(SERVICE, "CreateCluster", f"at most {MAX_BROKERS} brokers run on a laptop")
        return racks, self._settings(configuration_info)

    # -- what moto keeps ----------------------------------------------------------
    @moto_hook(f"{BACKEND}.create_cluster")
    def create_cluster(self, original, backend, **kwargs):
        if any(c.cluster_name == kwargs.get("cluster_name") for c in backend.clusters.values()):
            raise errors.ConflictException(f"A cluster named {kwargs.get('cluster_name')} already exists.")
        racks, settings = self._check_create(kwargs.get("broker_node_group_info"),
                                             kwargs.get("number_of_broker_nodes"),
                                             kwargs.get("configuration_info"), backend.region_name)
        arn, name, state = original(backend, **kwargs)
        self._start(backend, arn, kwargs.get("broker_node_group_info") or {},
                    int(kwargs["number_of_broker_nodes"]), kwargs.get("configuration_info"), racks, settings)
        return arn, name, state

    @moto_hook(f"{BACKEND}.create_cluster_v2")
    def create_cluster_v2(self, original, backend, cluster_name, tags, provisioned, serverless):
        if serverless:
            raise not_emulated(SERVICE, "CreateClusterV2", "MSK Serverless clusters are not emulated; "
                                                           "create a provisioned cluster")
        provisioned = provisioned or {}
        if any(c.cluster_name == cluster_name for c in backend.clusters.values()):
            raise errors.ConflictException(f"A cluster named {cluster_name} already exists.")
        racks, settings = self._check_create(provisioned.get("brokerNodeGroupInfo"),
                                             provisioned.get("numberOfBrokerNodes"),
                                             provisioned.get("configurationInfo"), backend.region_name)
        out = original(backend, cluster_name, tags, provisioned, serverless)
        backend.clusters[out[0]].configuration_info = provisioned.get("configurationInfo")
        self._start(backend, out[0], provisioned.get("brokerNodeGroupInfo") or {},
                    int(provisioned["numberOfBrokerNodes"]), provisioned.get("configurationInfo"),
                    racks, settings)
        return out

    def _refresh(self, backend, arn: str):
        cluster = backend.clusters.get(arn)
        if cluster is None:
            raise errors.NotFoundException(f"The specified cluster was not found: {arn}")
        running = self.engine.clusters.get(arn)
        if running is not None:
            cluster.state = running.state
            cluster.number_of_broker_nodes = len(running.kafka.brokers)
        return cluster, running

    def _tidy(self, out: dict, cluster, running) -> dict:
        """moto's placeholders out, the real state in: no ZooKeeper (KRaft), no fake operation."""
        body = out.get("provisioned", out)
        for key in ("zookeeperConnectString", "zookeeperConnectStringTls"):
            body.pop(key, None)
        if "currentBrokerSoftwareInfo" in body and not cluster.configuration_info:
            body["currentBrokerSoftwareInfo"].pop("configurationArn", None)
            body["currentBrokerSoftwareInfo"].pop("configurationRevision", None)
        out.pop("activeOperationArn", None)
        out.pop("stateInfo", None)
        note = engine.KafkaEngine.version_note(cluster.kafka_version)
        if running is not None and running.state == "FAILED":
            out["stateInfo"] = {"code": "BROKER_START_FAILED", "message": running.reason}
        elif note:
            out["stateInfo"] = {"code": "LOCAL_KAFKA_VERSION", "message": note}
        return out

    @moto_hook(f"{BACKEND}.describe_cluster")
    def describe_cluster(self, original, backend, cluster_arn):
        cluster, running = self._refresh(backend, cluster_arn)
        return self._tidy(original(backend, cluster_arn), cluster, running)

    @moto_hook(f"{BACKEND}.describe_cluster_v2")
    def describe_cluster_v2(self, original, backend, cluster_arn):
        cluster, running = self._refresh(backend, cluster_arn)
        return self._tidy(original(backend, cluster_arn), cluster, running)

    @moto_hook(f"{BACKEND}.list_clusters")
    def list_clusters(self, original, backend, cluster_name_filter):
        for arn in list(backend.clusters):
            self._refresh(backend, arn)
        return [self._tidy(c, backend.clusters[c["clusterArn"]], self.engine.clusters.get(c["clusterArn"]))
                for c in original(backend, cluster_name_filter)]

    @moto_hook(f"{BACKEND}.delete_cluster")
    def delete_cluster(self, original, backend, cluster_arn, current_version):
        _, running = self._refresh(backend, cluster_arn)
        if running is not None:
            running.state = "DELETING"           # the metrics sampler leaves it alone from now on
        self.metrics.forget(cluster_arn)
        self.engine.delete(cluster_arn)
        arn, _ = original(backend, cluster_arn, current_version)
        return arn, "DELETING"

    # -- operations moto lacks ----------------------------------------------------
    def _backend(self, region: str):
        from moto.kafka.models import kafka_backends
        return kafka_backends[self.ctx.account_id][region]

    def _active(self, req) -> tuple[str, engine.Running]:
        arn = path_params(req).get("ClusterArn", "")
        cluster, running = self._refresh(self._backend(req.region), arn)
        if running is None or running.state not in ("ACTIVE", "UPDATING"):
            raise errors.BadRequestException(
                f"The cluster {arn} is in state {cluster.state}; this operation needs an ACTIVE cluster.")
        return arn, running

    @operation("GetBootstrapBrokers")
    def get_bootstrap_brokers(self, req):
        _, running = self._active(req)
        return {"bootstrapBrokerString": running.kafka.bootstrap_servers}

    @operation("ListNodes")
    def list_nodes(self, req):
        arn, running = self._active(req)
        nodes = []
        brokers = sorted(running.kafka.brokers.items())
        subnet_of = {node.rack: subnet for (_, node), subnet in zip(brokers, running.subnets)}
        for node_id, node in brokers:
            subnet = subnet_of.get(node.rack)
            nodes.append({
                "addedToClusterTime": _iso(running.added.get(node_id, datetime.now())),
                "instanceType": running.instance_type,
                "nodeARN": f"{arn.replace(':cluster/', ':broker/')}/{node_id}",
                "nodeType": "BROKER",
                "brokerNodeInfo": {"brokerId": float(node_id), "clientSubnet": subnet,
                                   "clientVpcIpAddress": "127.0.0.1", "endpoints": ["127.0.0.1"],
                                   "currentBrokerSoftwareInfo": {"kafkaVersion": KAFKA_VERSION}},
            })
        return {"nodeInfoList": nodes}

    @operation("UpdateBrokerCount")
    def update_broker_count(self, req):
        arn, running = self._active(req)
        cluster = self._backend(req.region).clusters[arn]
        if req.params.get("currentVersion") != cluster.current_version:
            raise errors.BadRequestException(
                f"The current version {req.params.get('currentVersion')} does not match the cluster's "
                f"version {cluster.current_version}.")
        target, now = int(req.params.get("targetNumberOfBrokerNodes", 0)), len(running.kafka.brokers)
        zones = len(set(node.rack for node in running.kafka.brokers.values()))
        if target <= now:
            raise errors.BadRequestException(
                f"The target number of broker nodes ({target}) must be greater than the current number "
                f"({now}): MSK can add brokers, not remove them this way.")
        if target % zones:
            raise errors.BadRequestException(
                "The number of broker nodes must be a multiple of Availability Zones in the "
                "Client Subnets parameter.")
        if target > MAX_BROKERS:
            raise not_emulated(SERVICE, "UpdateBrokerCount", f"at most {MAX_BROKERS} brokers run on a laptop")
        op = engine.Operation(self._arn("cluster-operation", cluster.cluster_name, req.region), arn,
                              "UPDATE_BROKER_COUNT")
        self.engine.add_brokers(arn, target, op)
        cluster.current_version = f"K{uuid.uuid4().hex[:12].upper()}"
        cluster.state = "UPDATING"
        return {"clusterArn": arn, "clusterOperationArn": op.arn}

    def _operation_json(self, op: engine.Operation) -> dict:
        out = {"clusterArn": op.cluster_arn, "operationArn": op.arn, "operationType": op.kind,
               "operationState": op.state, "creationTime": _iso(op.started)}
        if op.ended:
            out["endTime"] = _iso(op.ended)
        if op.error:
            out["errorInfo"] = {"errorCode": "BROKER_START_FAILED", "errorString": op.error}
        return out

    @operation("ListClusterOperations")
    def list_cluster_operations(self, req):
        arn = path_params(req).get("ClusterArn", "")
        self._refresh(self._backend(req.region), arn)
        ops = sorted((op for op in self.engine.operations.values() if op.cluster_arn == arn),
                     key=lambda op: op.started)
        return {"clusterOperationInfoList": [self._operation_json(op) for op in ops]}

    @operation("DescribeClusterOperation")
    def describe_cluster_operation(self, req):
        arn = path_params(req).get("ClusterOperationArn", "")
        op = self.engine.operations.get(arn)
        if op is None:
            raise errors.NotFoundException(f"The specified cluster operation was not found: {arn}")
        return {"clusterOperationInfo": self._operation_json(op)}

    # -- configurations -----------------------------------------------------------
    @operation("CreateConfiguration")
    def create_configuration(self, req):
        p = req.params
        name = p.get("name", "")
        text = base64.b64decode(p.get("serverProperties") or b"")
        engine.parse_server_properties(text.decode("utf-8", "replace"))      # refuses what MSK refuses
        if any(c.name == name for c in self.engine.configurations.values()):
            raise errors.ConflictException(f"A configuration named {name} already exists.")
        config = engine.Configuration(self._arn("configuration", name, req.region), name,
                                      p.get("kafkaVersions") or [])
        config.revisions.append(engine.Revision(1, p.get("description", ""), text))
        self.engine.configurations[config.arn] = config
        return {"arn": config.arn, "name": name, "state": "ACTIVE",
                "creationTime": _iso(config.latest.created),
                "latestRevision": self._revision_json(config.latest)}

    @staticmethod
    def _revision_json(revision: engine.Revision) -> dict:
        return {"revision": revision.revision, "description": revision.description,
                "creationTime": _iso(revision.created)}

    def _configuration(self, req) -> engine.Configuration:
        arn = path_params(req).get("Arn", "")
        config = self.engine.configurations.get(arn)
        if config is None:
            raise errors.NotFoundException(f"The specified configuration was not found: {arn}")
        return config

    def _configuration_json(self, config: engine.Configuration) -> dict:
        return {"arn": config.arn, "name": config.name, "kafkaVersions": config.kafka_versions,
                "state": "ACTIVE", "creationTime": _iso(config.revisions[0].created),
                "description": config.latest.description,
                "latestRevision": self._revision_json(config.latest)}

    @operation("DescribeConfiguration")
    def describe_configuration(self, req):
        return self._configuration_json(self._configuration(req))

    @operation("DescribeConfigurationRevision")
    def describe_configuration_revision(self, req):
        config = self._configuration(req)
        number = int(path_params(req).get("Revision", 0))
        if not 1 <= number <= len(config.revisions):
            raise errors.NotFoundException(f"Revision {number} of {config.arn} was not found.")
        revision = config.revisions[number - 1]
        return {"arn": config.arn, **self._revision_json(revision),
                "serverProperties": base64.b64encode(revision.server_properties).decode()}

    @operation("ListConfigurations")
    def list_configurations(self, req):
        return {"configurations": [self._configuration_json(c) for c in self.engine.configurations.values()]}

    # -- teaching hooks -----------------------------------------------------------
    def _running(self, cluster_arn: str) -> engine.Running:
        running = self.engine.get(cluster_arn)
        if running.state not in ("ACTIVE", "UPDATING"):
            raise ValueError(f"cluster {cluster_arn} is {running.state}: wait until it is ACTIVE")
        return running

    @local_hook("On AWS, brokers fail on their own and MSK replaces them; there is nothing to kill. "
                "Watch the cluster's CloudWatch metrics (AWS/Kafka: UnderReplicatedPartitions, "
                "OfflinePartitionsCount, ActiveControllerCount) during a broker failure or a rolling update.")
    def kill_broker(self, cluster_arn: str, broker_id: int) -> dict:
        """A broker crash: SIGKILL broker ``broker_id`` (no controlled shutdown). The
        controller fences it after 3 s without heartbeats and moves the leadership of
        its partitions to in-sync replicas on other brokers."""
        pid = self._running(cluster_arn).kafka.kill(int(broker_id))
        return {"broker": int(broker_id), "killed_pid": pid}

    @local_hook("On AWS, MSK restarts or replaces a failed broker itself; RebootBroker restarts one on request.")
    def restart_broker(self, cluster_arn: str, broker_id: int) -> dict:
        """Start a killed broker again on its own log dirs: it fetches what it missed from the
        leaders and rejoins each partition's in-sync replicas."""
        running = self._running(cluster_arn)
        running.kafka.restart(int(broker_id))
        return {"broker": int(broker_id), "pid": running.kafka.pids()[int(broker_id)]}

    @local_hook("On AWS, ListNodes and DescribeClusterV2 describe the brokers; processes are not visible.")
    def brokers(self, cluster_arn: str) -> list[dict]:
        """Each broker's id, rack (Availability Zone), address and whether its process runs."""
        running = self.engine.get(cluster_arn)
        pids = running.kafka.pids()
        return [{"broker": node_id, "rack": node.rack, "address": node.address,
                 "running": node_id in pids, "kafka_version": KAFKA_VERSION}
                for node_id, node in sorted(running.kafka.brokers.items())]
