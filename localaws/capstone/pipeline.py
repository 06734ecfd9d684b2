"""Build the pipeline, one stage per function, with plain boto3.

:func:`build` calls the stage functions in order; a chapter may call them one
by one instead. Every name and ARN lands in a :class:`Pipeline`, which the
other steps (``run.py``) take. :func:`destroy` deletes it all again.

Everything here is what you would write against AWS, with three exceptions,
each marked ``# local-only``: the Flink SQL tables point the Kinesis
connector at the stack's endpoint, the Flink application's code is a SQL
script given as text (on AWS: a JAR or a Studio notebook), and the fault
switches use ``stack.local``.

Sizes follow AWS's rules: Firehose with format conversion and dynamic
partitioning needs ``BufferingHints.SizeInMBs`` of at least 64 [1]; the
reports queue's visibility timeout must be at least the function's timeout
(Lambda checks it at CreateEventSourceMapping) [2]. AWS recommends six times
the function's timeout; here both are 10 s, so that a crashed reporter's
messages come back after 10 s of wall-clock time (SQS visibility runs on real time).

[1] https://docs.aws.amazon.com/firehose/latest/dev/dynamic-partitioning.html
[2] https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-configure.html
"""
from __future__ import annotations

import json
import pathlib
from dataclasses import dataclass, field

from botocore.exceptions import ClientError

from localaws.awslambda.package import zip_package

from .queries import redshift_sql

FUNCTIONS = pathlib.Path(__file__).with_name("functions")
ACCOUNT = "123456789012"

#: The curated record: the Glue table's columns, in order (also the Parquet files' and Redshift's).
COLUMNS = [("record_id", "string"), ("device_id", "string"), ("ts", "timestamp"), ("seq", "int"),
           ("temp_c", "double"), ("temp_f", "double"), ("humidity", "double"), ("battery", "double")]
REDSHIFT_TYPES = {"string": "VARCHAR(32)", "timestamp": "TIMESTAMP", "int": "INTEGER", "double": "DOUBLE PRECISION"}
RULE_SQL = "SELECT * FROM 'fleet/+/telemetry' WHERE kind = 'telemetry'"
REDSHIFT_USER, REDSHIFT_PASSWORD = "admin", "Capstone1pass"
TRUST = json.dumps({"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"Service": [
        "iot.amazonaws.com", "firehose.amazonaws.com", "lambda.amazonaws.com",
        "kinesisanalytics.amazonaws.com", "redshift.amazonaws.com"]}}]})


@dataclass
class Faults:
    """The faults a run injects, all deterministic.

    - ``transform_fail_percent``: the transform Lambda raises for that share of
      batches (by the CRC-32 of their smallest record_id): their records go to
      Firehose's ``processing-failed`` prefix;
    - ``burst``: ``(device index, count, minute)``: that device flushes ``count``
      buffered readings within one second (over a shard's 1,000 records/s: the
      IoT rule's errorAction writes the excess to the errors bucket);
    - ``crash_reporter``: at that minute, the reporter Lambda's next invocation
      is killed mid-batch (SQS redelivers its messages after the visibility timeout);
    - ``duplicate_delivery``: at that minute, Firehose's next S3 delivery is
      written twice (at-least-once delivery).
    """
    transform_fail_percent: float = 5
    burst: tuple[int, int, int] | None = (0, 1100, 2)
    crash_reporter: int | None = 1
    duplicate_delivery: int | None = 2


@dataclass
class Pipeline:
    """Every name and ARN of one capstone pipeline."""
    prefix: str
    region: str
    shards: int
    devices: int
    faults: Faults
    role_arn: str = ""
    ingest_bucket: str = ""
    reporting_bucket: str = ""
    errors_bucket: str = ""
    stream: str = ""
    stream_arn: str = ""
    metrics_stream: str = ""
    rule: str = ""
    database: str = ""
    table: str = "telemetry"
    transform_function: str = ""
    transform_arn: str = ""
    delivery_stream: str = ""
    replay_delivery_stream: str = ""
    topic_arn: str = ""
    reports_queue_url: str = ""
    reports_dlq_url: str = ""
    audit_queue_url: str = ""
    reporter_function: str = ""
    mapping_uuid: str = ""
    workgroup: str = ""
    cluster: str = ""
    flink_app: str = ""
    quicksight: dict = field(default_factory=dict)
    windows_closed: bool = False        # set by run.finish(): Flink's last windows have fired

    @property
    def names(self) -> dict:
        """The resources, as a sorted dict (for display)."""
        return {k: v for k, v in sorted(vars(self).items()) if isinstance(v, str) and v}


def _code(name: str) -> bytes:
    return zip_package({"lambda_function.py": (FUNCTIONS / f"{name}.py").read_text()})


# ------------------------------------------------------------------ the stages
def create_role(stack, p: Pipeline) -> None:
    """One IAM role the services assume (kept broad for the lab; split it per service in production)."""
    iam = stack.client("iam")
    name = f"{p.prefix}-pipeline"
    try:
        p.role_arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=TRUST)["Role"]["Arn"]
    except ClientError as e:
        if e.response["Error"]["Code"] != "EntityAlreadyExists":
            raise
        p.role_arn = iam.get_role(RoleName=name)["Role"]["Arn"]
    iam.put_role_policy(RoleName=name, PolicyName="pipeline", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Resource": "*", "Action": [
            "kinesis:*", "firehose:*", "s3:*", "glue:Get*", "lambda:InvokeFunction", "athena:*",
            "sqs:*", "logs:*"]}]}))


def create_buckets(stack, p: Pipeline) -> None:
    """Ingestion (curated Parquet + Firehose's error prefixes), reporting, and IoT errors."""
    s3 = stack.client("s3")
    p.ingest_bucket, p.reporting_bucket, p.errors_bucket = (
        f"{p.prefix}-ingest", f"{p.prefix}-reporting", f"{p.prefix}-errors")
    for bucket in (p.ingest_bucket, p.reporting_bucket, p.errors_bucket):
        s3.create_bucket(Bucket=bucket)


def create_streams(stack, p: Pipeline) -> None:
    """The ``telemetry`` stream (``shards`` shards) and Flink's output ``device-metrics`` (1 shard)."""
    kinesis = stack.client("kinesis")
    p.stream, p.metrics_stream = f"{p.prefix}-telemetry", f"{p.prefix}-device-metrics"
    kinesis.create_stream(StreamName=p.stream, ShardCount=p.shards)
    kinesis.create_stream(StreamName=p.metrics_stream, ShardCount=1)
    for name in (p.stream, p.metrics_stream):
        kinesis.get_waiter("stream_exists").wait(StreamName=name, WaiterConfig={"Delay": 0.2})
    p.stream_arn = kinesis.describe_stream_summary(StreamName=p.stream)["StreamDescriptionSummary"]["StreamARN"]


def create_topic_rule(stack, p: Pipeline) -> None:
    """IoT rule: telemetry (not self-tests) -> Kinesis, partition key the device; failures -> S3.

    ``errorAction`` receives AWS's error document (``base64OriginalPayload``,
    ``failures``...) for each message whose ``kinesis`` action failed (a throttled
    shard, say); its key template names it after the message's record_id.
    """
    p.rule = f"{p.prefix.replace('-', '_')}_telemetry"
    stack.client("iot").create_topic_rule(ruleName=p.rule, topicRulePayload={
        "sql": RULE_SQL, "awsIotSqlVersion": "2016-03-23", "ruleDisabled": False,
        "actions": [{"kinesis": {"roleArn": p.role_arn, "streamName": p.stream,
                                 "partitionKey": "${device_id}"}}],
        "errorAction": {"s3": {"roleArn": p.role_arn, "bucketName": p.errors_bucket,
                               "key": "iot-errors/${device_id}/${record_id}.json"}}})


def create_catalog(stack, p: Pipeline) -> None:
    """Glue database and the partitioned Parquet table: Firehose's conversion schema and Athena's table."""
    glue = stack.client("glue")
    p.database = f"{p.prefix.replace('-', '_')}_db"
    glue.create_database(DatabaseInput={"Name": p.database})
    glue.create_table(DatabaseName=p.database, TableInput={
        "Name": p.table, "TableType": "EXTERNAL_TABLE",
        "Parameters": {"classification": "parquet", "EXTERNAL": "TRUE"},
        "PartitionKeys": [{"Name": "dt", "Type": "string"}],
        "StorageDescriptor": {
            "Columns": [{"Name": n, "Type": t} for n, t in COLUMNS],
            "Location": f"s3://{p.ingest_bucket}/telemetry/",
            "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
            "OutputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
            "SerdeInfo": {"SerializationLibrary":
                          "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"}}})


def create_transform(stack, p: Pipeline) -> None:
    """The Firehose transformation Lambda (``functions/transform.py``)."""
    lam = stack.client("lambda")
    p.transform_function = f"{p.prefix}-transform"
    p.transform_arn = lam.create_function(
        FunctionName=p.transform_function, Runtime="python3.11", Role=p.role_arn,
        Handler="lambda_function.lambda_handler", Timeout=30, MemorySize=256,
        Code={"ZipFile": _code("transform")},
        Environment={"Variables": {"FAIL_BATCH_PERCENT": str(p.faults.transform_fail_percent or 0)}},
    )["FunctionArn"]


def s3_destination(p: Pipeline) -> dict:
    """The ExtendedS3DestinationConfiguration of both delivery streams: the transform Lambda (its
    own 20 s buffer, one retry), Parquet with the Glue table's schema, ``dt=`` partitions from the
    Lambda's partition keys, the error prefix, and S3 buffering of 64 MiB (conversion's minimum) or 60 s."""
    return {
        "RoleARN": p.role_arn, "BucketARN": f"arn:aws:s3:::{p.ingest_bucket}",
        "Prefix": "telemetry/dt=!{partitionKeyFromLambda:dt}/",
        "ErrorOutputPrefix": "firehose-errors/!{firehose:error-output-type}/!{timestamp:yyyy/MM/dd}/",
        "BufferingHints": {"SizeInMBs": 64, "IntervalInSeconds": 60},
        "CompressionFormat": "UNCOMPRESSED",
        "DynamicPartitioningConfiguration": {"Enabled": True},
        "ProcessingConfiguration": {"Enabled": True, "Processors": [{"Type": "Lambda", "Parameters": [
            {"ParameterName": "LambdaArn", "ParameterValue": p.transform_arn},
            {"ParameterName": "BufferIntervalInSeconds", "ParameterValue": "20"},
            {"ParameterName": "NumberOfRetries", "ParameterValue": "1"}]}]},
        "DataFormatConversionConfiguration": {
            "Enabled": True,
            "SchemaConfiguration": {"DatabaseName": p.database, "TableName": p.table, "RoleARN": p.role_arn,
                                    "Region": p.region},
            "InputFormatConfiguration": {"Deserializer": {"OpenXJsonSerDe": {}}},
            "OutputFormatConfiguration": {"Serializer": {"ParquetSerDe": {"Compression": "SNAPPY"}}}},
    }


def create_firehose(stack, p: Pipeline) -> None:
    """Firehose reading the stream -> transform -> Parquet -> ``telemetry/dt=.../``; plus a
    Direct PUT twin with the same destination, used only to replay the error prefix."""
    firehose = stack.client("firehose")
    p.delivery_stream, p.replay_delivery_stream = f"{p.prefix}-to-s3", f"{p.prefix}-replay"
    firehose.create_delivery_stream(
        DeliveryStreamName=p.delivery_stream, DeliveryStreamType="KinesisStreamAsSource",
        KinesisStreamSourceConfiguration={"KinesisStreamARN": p.stream_arn, "RoleARN": p.role_arn},
        ExtendedS3DestinationConfiguration=s3_destination(p))
    firehose.create_delivery_stream(DeliveryStreamName=p.replay_delivery_stream, DeliveryStreamType="DirectPut",
                                    ExtendedS3DestinationConfiguration=s3_destination(p))


def create_notifications(stack, p: Pipeline) -> None:
    """New curated object -> SNS topic -> SQS ``reports`` (DLQ after 3 receives) and ``audit``."""
    sns, sqs, s3 = stack.client("sns"), stack.client("sqs"), stack.client("s3")
    p.topic_arn = sns.create_topic(Name=f"{p.prefix}-new-objects")["TopicArn"]
    sns.set_topic_attributes(TopicArn=p.topic_arn, AttributeName="Policy", AttributeValue=json.dumps({
        "Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"Service": "s3.amazonaws.com"}, "Action": "sns:Publish",
            "Resource": p.topic_arn, "Condition": {"ArnLike": {"aws:SourceArn": f"arn:aws:s3:::{p.ingest_bucket}"}}}]}))
    p.reports_dlq_url = sqs.create_queue(QueueName=f"{p.prefix}-reports-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=p.reports_dlq_url, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    p.reports_queue_url = sqs.create_queue(QueueName=f"{p.prefix}-reports", Attributes={
        "VisibilityTimeout": "10",
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "3"})})["QueueUrl"]
    p.audit_queue_url = sqs.create_queue(QueueName=f"{p.prefix}-audit")["QueueUrl"]
    for url in (p.reports_queue_url, p.audit_queue_url):
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps({
            "Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Principal": {"Service": "sns.amazonaws.com"}, "Action": "sqs:SendMessage",
                "Resource": arn, "Condition": {"ArnEquals": {"aws:SourceArn": p.topic_arn}}}]})})
        sns.subscribe(TopicArn=p.topic_arn, Protocol="sqs", Endpoint=arn)
    s3.put_bucket_notification_configuration(Bucket=p.ingest_bucket, NotificationConfiguration={
        "TopicConfigurations": [{"Id": "new-curated-object", "TopicArn": p.topic_arn,
                                 "Events": ["s3:ObjectCreated:*"],
                                 "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "telemetry/"}]}}}]})


def create_athena(stack, p: Pipeline) -> None:
    """An Athena work group whose results go to ``s3://<reporting>/athena-results/``."""
    p.workgroup = f"{p.prefix}-wg"
    stack.client("athena").create_work_group(Name=p.workgroup, Configuration={
        "ResultConfiguration": {"OutputLocation": f"s3://{p.reporting_bucket}/athena-results/"},
        "EnforceWorkGroupConfiguration": True})


def create_reporter(stack, p: Pipeline) -> None:
    """The reporter Lambda and its SQS event source mapping on ``reports``."""
    lam, sqs = stack.client("lambda"), stack.client("sqs")
    p.reporter_function = f"{p.prefix}-reporter"
    lam.create_function(
        FunctionName=p.reporter_function, Runtime="python3.11", Role=p.role_arn,
        Handler="lambda_function.lambda_handler", Timeout=10, MemorySize=256, Code={"ZipFile": _code("reporter")},
        Environment={"Variables": {"DATABASE": p.database, "TABLE": p.table, "WORKGROUP": p.workgroup,
                                   "REPORT_BUCKET": p.reporting_bucket}})
    queue_arn = sqs.get_queue_attributes(QueueUrl=p.reports_queue_url, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    p.mapping_uuid = lam.create_event_source_mapping(
        EventSourceArn=queue_arn, FunctionName=p.reporter_function, BatchSize=10,
        MaximumBatchingWindowInSeconds=1)["UUID"]


def create_redshift(stack, p: Pipeline) -> None:
    """A single-node cluster; ``telemetry`` (one row per record_id, kept so by MERGE) and two staging tables."""
    redshift = stack.client("redshift")
    p.cluster = f"{p.prefix}-dw"
    redshift.create_cluster(ClusterIdentifier=p.cluster, NodeType="ra3.xlplus", ClusterType="single-node",
                            MasterUsername=REDSHIFT_USER, MasterUserPassword=REDSHIFT_PASSWORD, DBName="dev",
                            IamRoles=[p.role_arn])
    redshift.get_waiter("cluster_available").wait(ClusterIdentifier=p.cluster, WaiterConfig={"Delay": 1})
    columns = ", ".join(f"{n} {REDSHIFT_TYPES[t]}" for n, t in COLUMNS)
    redshift_sql(stack, p, [f"CREATE TABLE telemetry ({columns}, PRIMARY KEY (record_id))",
                            f"CREATE TABLE telemetry_staging ({columns})",
                            f"CREATE TABLE telemetry_batch ({columns})"])


def flink_sql(stack, p: Pipeline, lateness_minutes: int = 60) -> str:
    """Flink SQL: 1-minute tumbling windows of event time per device, from the stream to ``device-metrics``.

    The watermark trails the newest event time by ``lateness_minutes``: a record up
    to that late (a device's offline buffer, a replayed error) still lands in its
    window; a window is emitted once the watermark passes its end. The second
    INSERT copies ``marker`` records straight through: when a marker comes out,
    the job has read its shard up to it (``run.close_windows``).
    """
    if stack.target == "local":        # local-only: the connector talks to the stack's endpoint
        keys = stack.context.principals.credentials(None)
        aws = (f"'aws.region' = '{p.region}', 'aws.endpoint' = '{stack.endpoint}', "
               f"'aws.credentials.provider' = 'BASIC', 'aws.credentials.basic.accesskeyid' = '{keys.access_key}', "
               f"'aws.credentials.basic.secretkey' = '{keys.secret_key}'")
    else:
        aws = f"'aws.region' = '{p.region}'"
    return f"""
    CREATE TABLE telemetry (
        record_id STRING, device_id STRING, kind STRING, ts TIMESTAMP(3), temp_c DOUBLE,
        WATERMARK FOR ts AS ts - INTERVAL '{lateness_minutes}' MINUTE)
    WITH ('connector' = 'kinesis', 'stream' = '{p.stream}', {aws}, 'format' = 'json',
          'json.ignore-parse-errors' = 'true',
          'scan.stream.initpos' = 'TRIM_HORIZON', 'scan.stream.recordpublisher' = 'POLLING',
          'scan.shard.getrecords.intervalmillis' = '250');
    CREATE TABLE device_metrics (device_id STRING, window_start STRING, records BIGINT,
                                 avg_temp_c DOUBLE, max_temp_c DOUBLE)
    WITH ('connector' = 'kinesis', 'stream' = '{p.metrics_stream}', {aws}, 'format' = 'json',
          'sink.partitioner' = 'random', 'aws.http.protocol.version' = 'HTTP1_1');
    INSERT INTO device_metrics
    SELECT device_id, CAST(window_start AS STRING), COUNT(*), AVG(temp_c), MAX(temp_c)
    FROM TABLE(TUMBLE(TABLE telemetry, DESCRIPTOR(ts), INTERVAL '1' MINUTE))
    WHERE kind = 'telemetry'
    GROUP BY device_id, window_start, window_end;
    INSERT INTO device_metrics
    SELECT record_id, CAST(ts AS STRING), CAST(0 AS BIGINT), CAST(NULL AS DOUBLE), CAST(NULL AS DOUBLE)
    FROM telemetry WHERE kind = 'marker';
    """


def create_flink(stack, p: Pipeline, start: bool = True) -> None:
    """The Managed Service for Apache Flink application (checkpoints every 2 s), started."""
    msf = stack.client("kinesisanalyticsv2")
    p.flink_app = f"{p.prefix}-metrics"
    msf.create_application(
        ApplicationName=p.flink_app, RuntimeEnvironment="FLINK-1_19", ServiceExecutionRole=p.role_arn,
        ApplicationConfiguration={
            "ApplicationCodeConfiguration": {"CodeContentType": "PLAINTEXT",       # local-only: SQL as text
                                             "CodeContent": {"TextContent": flink_sql(stack, p)}},
            "ApplicationSnapshotConfiguration": {"SnapshotsEnabled": True},
            "FlinkApplicationConfiguration": {"CheckpointConfiguration": {
                "ConfigurationType": "CUSTOM", "CheckpointingEnabled": True, "CheckpointInterval": 2000}}})
    if start:
        msf.start_application(ApplicationName=p.flink_app)


def create_quicksight(stack, p: Pipeline) -> None:
    """Data sources and data sets over Athena (the curated table) and Redshift (``telemetry``), and a
    dashboard: average temperature per device (Athena) and the number of loaded records (Redshift)."""
    qs = stack.client("quicksight")
    arn = f"arn:aws:quicksight:{p.region}:{ACCOUNT}"
    ids = {k: f"{p.prefix}-{k}" for k in ("athena-src", "redshift-src", "athena-ds", "redshift-ds", "dashboard")}
    qs.create_data_source(AwsAccountId=ACCOUNT, DataSourceId=ids["athena-src"], Name="capstone athena",
                          Type="ATHENA", DataSourceParameters={"AthenaParameters": {"WorkGroup": p.workgroup}})
    qs.create_data_source(AwsAccountId=ACCOUNT, DataSourceId=ids["redshift-src"], Name="capstone redshift",
                          Type="REDSHIFT",
                          DataSourceParameters={"RedshiftParameters": {"ClusterId": p.cluster, "Database": "dev"}},
                          Credentials={"CredentialPair": {"Username": REDSHIFT_USER, "Password": REDSHIFT_PASSWORD}})
    qs_types = {"string": "STRING", "timestamp": "DATETIME", "int": "INTEGER", "double": "DECIMAL"}
    columns = [{"Name": n, "Type": qs_types[t]} for n, t in COLUMNS]
    qs.create_data_set(AwsAccountId=ACCOUNT, DataSetId=ids["athena-ds"], Name="telemetry (Athena)",
                       ImportMode="DIRECT_QUERY", PhysicalTableMap={"t": {"RelationalTable": {
                           "DataSourceArn": f"{arn}:datasource/{ids['athena-src']}", "Catalog": "AwsDataCatalog",
                           "Schema": p.database, "Name": p.table, "InputColumns": columns}}})
    qs.create_data_set(AwsAccountId=ACCOUNT, DataSetId=ids["redshift-ds"], Name="telemetry (Redshift)",
                       ImportMode="DIRECT_QUERY", PhysicalTableMap={"t": {"RelationalTable": {
                           "DataSourceArn": f"{arn}:datasource/{ids['redshift-src']}", "Schema": "public",
                           "Name": "telemetry", "InputColumns": columns}}})
    col = lambda ds, name: {"DataSetIdentifier": ds, "ColumnName": name}  # noqa: E731
    definition = {
        "DataSetIdentifierDeclarations": [
            {"Identifier": "lake", "DataSetArn": f"{arn}:dataset/{ids['athena-ds']}"},
            {"Identifier": "warehouse", "DataSetArn": f"{arn}:dataset/{ids['redshift-ds']}"}],
        "Sheets": [{"SheetId": "fleet", "Name": "Fleet", "Visuals": [
            {"BarChartVisual": {"VisualId": "temp-by-device",
                                "Title": {"FormatText": {"PlainText": "Average temperature by device"}},
                                "ChartConfiguration": {"FieldWells": {"BarChartAggregatedFieldWells": {
                                    "Category": [{"CategoricalDimensionField": {
                                        "FieldId": "device", "Column": col("lake", "device_id")}}],
                                    "Values": [{"NumericalMeasureField": {
                                        "FieldId": "avg_temp", "Column": col("lake", "temp_c"),
                                        "AggregationFunction": {"SimpleNumericalAggregation": "AVERAGE"}}}]}},
                                    "SortConfiguration": {"CategorySort": [
                                        {"FieldSort": {"FieldId": "device", "Direction": "ASC"}}]}}}},
            {"KPIVisual": {"VisualId": "records-loaded",
                           "Title": {"FormatText": {"PlainText": "Records in the warehouse"}},
                           "ChartConfiguration": {"FieldWells": {"Values": [{"CategoricalMeasureField": {
                               "FieldId": "records", "Column": col("warehouse", "record_id"),
                               "AggregationFunction": "DISTINCT_COUNT"}}]}}}}]}]}
    qs.create_dashboard(AwsAccountId=ACCOUNT, DashboardId=ids["dashboard"], Name="Capstone fleet",
                        Definition=definition)
    p.quicksight = ids


STAGES = (create_role, create_buckets, create_streams, create_topic_rule, create_catalog, create_transform,
          create_firehose, create_notifications, create_athena, create_reporter, create_flink, create_redshift,
          create_quicksight)


def build(stack, *, prefix: str = "capstone", shards: int = 2, devices: int = 10,
          faults: Faults | None = None) -> Pipeline:
    """Create every stage, in order (the Flink application starts in the background)."""
    p = Pipeline(prefix=prefix, region=stack.region, shards=shards, devices=devices,
                 faults=faults if faults is not None else Faults())
    for stage in STAGES:
        stage(stack, p)
    return p


# ------------------------------------------------------------------ clean up
def _quietly(call, *args, **kwargs):
    try:
        call(*args, **kwargs)
    except ClientError:
        pass


def destroy(stack, p: Pipeline) -> None:
    """Delete every resource of ``p`` (missing ones are skipped): the Flink application and the
    Redshift cluster first, which end their processes."""
    from localaws.core.waiting import wait_until
    msf = stack.client("kinesisanalyticsv2")
    if p.flink_app:
        try:
            created = msf.describe_application(ApplicationName=p.flink_app)["ApplicationDetail"]["CreateTimestamp"]
            msf.delete_application(ApplicationName=p.flink_app, CreateTimestamp=created)
        except ClientError:
            pass
    if p.cluster:
        _quietly(stack.client("redshift").delete_cluster, ClusterIdentifier=p.cluster, SkipFinalClusterSnapshot=True)
    qs = stack.client("quicksight")
    for key, call in (("dashboard", qs.delete_dashboard), ("athena-ds", qs.delete_data_set),
                      ("redshift-ds", qs.delete_data_set), ("athena-src", qs.delete_data_source),
                      ("redshift-src", qs.delete_data_source)):
        if key in p.quicksight:
            arg = {"dashboard": "DashboardId", "athena-ds": "DataSetId", "redshift-ds": "DataSetId"}.get(
                key, "DataSourceId")
            _quietly(call, AwsAccountId=ACCOUNT, **{arg: p.quicksight[key]})
    lam = stack.client("lambda")
    if p.mapping_uuid:
        _quietly(lam.delete_event_source_mapping, UUID=p.mapping_uuid)
    firehose = stack.client("firehose")
    for name in (p.delivery_stream, p.replay_delivery_stream):
        if name:
            _quietly(firehose.delete_delivery_stream, DeliveryStreamName=name)
    for name in (p.reporter_function, p.transform_function):
        if name:
            _quietly(lam.delete_function, FunctionName=name)
    if p.rule:
        _quietly(stack.client("iot").delete_topic_rule, ruleName=p.rule)
    sqs = stack.client("sqs")
    for url in (p.reports_queue_url, p.reports_dlq_url, p.audit_queue_url):
        if url:
            _quietly(sqs.delete_queue, QueueUrl=url)
    if p.topic_arn:
        _quietly(stack.client("sns").delete_topic, TopicArn=p.topic_arn)
    if p.workgroup:
        _quietly(stack.client("athena").delete_work_group, WorkGroup=p.workgroup, RecursiveDeleteOption=True)
    kinesis = stack.client("kinesis")
    for name in (p.stream, p.metrics_stream):
        if name:
            _quietly(kinesis.delete_stream, StreamName=name, EnforceConsumerDeletion=True)
    if p.database:
        _quietly(stack.client("glue").delete_database, Name=p.database)
    s3 = stack.client("s3")
    for bucket in (p.ingest_bucket, p.reporting_bucket, p.errors_bucket):
        if not bucket:
            continue
        try:
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
                keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
                if keys:
                    s3.delete_objects(Bucket=bucket, Delete={"Objects": keys})
            s3.delete_bucket(Bucket=bucket)
        except ClientError:
            pass
    if p.role_arn:
        iam = stack.client("iam")
        name = p.role_arn.rsplit("/", 1)[1]
        _quietly(iam.delete_role_policy, RoleName=name, PolicyName="pipeline")
        _quietly(iam.delete_role, RoleName=name)
    if p.cluster:
        redshift = stack.client("redshift")
        wait_until(lambda: not _exists(redshift, p.cluster), 60, poll=0.2)


def _exists(redshift, cluster: str) -> bool:
    try:
        redshift.describe_clusters(ClusterIdentifier=cluster)
        return True
    except ClientError:
        return False


__all__ = ["COLUMNS", "Faults", "Pipeline", "STAGES", "build", "destroy", "flink_sql"]
