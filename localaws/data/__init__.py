"""Data for the course: a real data set and AWS-shaped generated logs.

Real data
    :func:`nycflights13` -- the NYC flights of 2013 (CC0), five related tables.
    :func:`export_table` -- write a table as CSV/TSV/JSON lines/Parquet/ORC/
    Avro, compressed or not, in one file or many.
    :func:`upload_directory` -- copy a folder tree into S3 with any boto3 client.

Generated logs (deterministic: same seed, same bytes; dates from 2026-10-01)
    VPC Flow Logs      :func:`vpc_flow_log_lines`, :func:`write_vpc_flow_logs`
    ALB access logs    :func:`alb_access_log_lines`, :func:`write_alb_access_logs`
    CloudTrail         :func:`cloudtrail_records`, :func:`write_cloudtrail_logs`
    IoT telemetry      :func:`iot_telemetry_records`, :func:`iot_telemetry_lines`,
                       :func:`write_iot_telemetry`
    Customers          :func:`customer_records` with labelled near-duplicates and
                       :func:`true_pairs` (record matching, FindMatches-style)

Text logs come as lines, JSON events as records (dicts); each ``write_*``
puts gzip files into a directory using the S3 key layout and file names the
AWS service itself uses, ready for :func:`upload_directory`. Write generated
data under ``data/generated/`` (git-ignored) or a temporary folder.
"""
from .alb_logs import FAILING_TARGET, alb_access_log_lines, write_alb_access_logs
from .cloudtrail import DELETE_BUCKET_CALLS, cloudtrail_records, write_cloudtrail_logs
from .customers import customer_records, true_pairs
from .iot import (IOT_ANOMALIES, IOT_DEVICES, iot_telemetry_lines, iot_telemetry_records,
                  write_iot_telemetry)
from .logs import BASE_TIME, DEFAULT_ACCOUNT_ID, DEFAULT_REGION
from .nycflights import FORMATS, export_table, nycflights13, upload_directory
from .vpc_flow_logs import (BACKUP_DESTINATION, PORT_SCANNERS, VPC_FLOW_LOG_FIELDS,
                            vpc_flow_log_lines, write_vpc_flow_logs)

__all__ = [
    "BACKUP_DESTINATION", "BASE_TIME", "DEFAULT_ACCOUNT_ID", "DEFAULT_REGION",
    "DELETE_BUCKET_CALLS", "FAILING_TARGET", "FORMATS", "IOT_ANOMALIES", "IOT_DEVICES",
    "PORT_SCANNERS", "VPC_FLOW_LOG_FIELDS",
    "alb_access_log_lines", "cloudtrail_records", "customer_records", "export_table", "iot_telemetry_lines",
    "iot_telemetry_records", "nycflights13", "true_pairs", "upload_directory", "vpc_flow_log_lines",
    "write_alb_access_logs", "write_cloudtrail_logs", "write_iot_telemetry",
    "write_vpc_flow_logs",
]
