"""MSK-10: the other consumers of an MSK topic, run for real.

- a Managed Service for Apache Flink application (Flink SQL, Flink's Kafka
  connector) reading one topic and writing another;
- a Spark Structured Streaming query (Spark's Kafka connector from the locked
  ``spark-kafka`` jar set) writing Parquet to ``s3://`` through S3A, resuming
  from its checkpoint: only new records the second time.

One 2-broker cluster (two zones) serves the module.
"""
from __future__ import annotations

import io
import json

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from localaws.core.spark import jar_sets_for
from localaws.core.waiting import wait_until
from localaws.kafka.client import partitions

ORDERS = [{"order": n, "customer": f"c{n % 7}", "amount": float(n % 50) * 5} for n in range(400)]


@pytest.fixture(scope="module")
def bootstrap(msk, two_broker_cluster):
    arn, boot = two_broker_cluster("consumers")
    admin = AdminClient({"bootstrap.servers": boot})
    for topic in ("orders", "big-orders"):
        admin.create_topics([NewTopic(topic, 2, 2)])[topic].result()
        assert wait_until(lambda: len(partitions(admin, topic)) == 2, 30, poll=0.2)
    produce(boot, ORDERS)
    yield boot
    msk.delete_cluster(ClusterArn=arn)


def produce(boot, orders):
    producer = Producer({"bootstrap.servers": boot, "acks": "all"})
    for o in orders:
        producer.produce("orders", key=o["customer"], value=json.dumps(o).encode())
    assert producer.flush(30) == 0


FLINK_SQL = """
CREATE TABLE orders (`order` BIGINT, customer STRING, amount DOUBLE)
WITH ('connector' = 'kafka', 'topic' = 'orders', 'properties.bootstrap.servers' = '{boot}',
      'properties.group.id' = 'flink-big-orders', 'scan.startup.mode' = 'earliest-offset', 'format' = 'json');
CREATE TABLE big_orders (`order` BIGINT, customer STRING, amount DOUBLE)
WITH ('connector' = 'kafka', 'topic' = 'big-orders', 'properties.bootstrap.servers' = '{boot}',
      'format' = 'json');
INSERT INTO big_orders SELECT `order`, customer, amount FROM orders WHERE amount >= 200;
"""


def test_a_managed_flink_application_reads_an_msk_topic_and_writes_another(stack, bootstrap):
    msf = stack.client("kinesisanalyticsv2")
    msf.create_application(
        ApplicationName="big-orders", RuntimeEnvironment="FLINK-1_19",
        ServiceExecutionRole="arn:aws:iam::123456789012:role/msf",
        ApplicationConfiguration={"ApplicationCodeConfiguration": {
            "CodeContentType": "PLAINTEXT", "CodeContent": {"TextContent": FLINK_SQL.format(boot=bootstrap)}}})
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "check", "auto.offset.reset": "earliest"})
    try:
        msf.start_application(ApplicationName="big-orders")
        expected = sorted(o["order"] for o in ORDERS if o["amount"] >= 200)
        consumer.subscribe(["big-orders"])
        got = []
        assert wait_until(lambda: got.extend(json.loads(m.value())["order"] for m in consumer.consume(100, 0.5)
                                             if m.error() is None) or len(got) >= len(expected), 180, poll=0)
        assert sorted(got) == expected
    finally:
        consumer.close()
        msf.stop_application(ApplicationName="big-orders", Force=True)
        wait_until(lambda: msf.describe_application(ApplicationName="big-orders")
                   ["ApplicationDetail"]["ApplicationStatus"] == "READY", 60, poll=0.5)
        msf.delete_application(ApplicationName="big-orders", CreateTimestamp=msf.describe_application(
            ApplicationName="big-orders")["ApplicationDetail"]["CreateTimestamp"])


def test_spark_packages_map_to_installed_jar_sets():
    assert jar_sets_for(["org.apache.spark:spark-sql-kafka-0-10_2.12:3.5.1"]) == ["spark-kafka"]
    assert jar_sets_for(["spark-sql-kafka-0-10_2.13"]) == ["spark-kafka"]
    with pytest.raises(ValueError, match="not installed locally"):
        jar_sets_for(["io.delta:delta-spark_2.12:3.2.0"])


def test_spark_structured_streaming_writes_an_msk_topic_to_s3_as_parquet_and_resumes(stack, bootstrap):
    import pyarrow.parquet as pq
    from pyspark.sql import functions as F

    s3 = stack.client("s3")
    s3.create_bucket(Bucket="t-msk-lake")
    spark = stack.local.emr.spark_session("msk-to-s3", packages=["org.apache.spark:spark-sql-kafka-0-10_2.12:3.5.1"])
    try:
        def run_once():
            records = (spark.readStream.format("kafka").option("kafka.bootstrap.servers", bootstrap)
                       .option("subscribe", "orders").option("startingOffsets", "earliest").load())
            orders = records.select("partition", "offset", F.from_json(
                F.col("value").cast("string"), "`order` BIGINT, customer STRING, amount DOUBLE").alias("o"))
            query = (orders.select("partition", "offset", "o.*").writeStream.format("parquet")
                     .option("path", "s3://t-msk-lake/orders/")
                     .option("checkpointLocation", "s3://t-msk-lake/checkpoints/orders/")
                     .trigger(availableNow=True).start())
            query.awaitTermination()
            return sum(p["numInputRows"] for p in query.recentProgress)

        assert run_once() == len(ORDERS)
        more = [{"order": n, "customer": f"c{n % 7}", "amount": 1.0} for n in range(400, 450)]
        produce(bootstrap, more)
        assert run_once() == len(more)            # the checkpoint's offsets: only the new records
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket="t-msk-lake", Prefix="orders/")["Contents"]]
        parquet = [k for k in keys if k.endswith(".parquet")]
        assert parquet and any(k.startswith("orders/_spark_metadata/") for k in keys)
        ids = []
        for key in parquet:
            body = s3.get_object(Bucket="t-msk-lake", Key=key)["Body"].read()
            ids += pq.read_table(io.BytesIO(body)).column("order").to_pylist()
        assert sorted(ids) == list(range(450))    # every record once, none twice
    finally:
        stack.local.emr.close_spark_session()
    from pyspark import SparkContext
    assert SparkContext._gateway is None          # the session's JVM is gone
