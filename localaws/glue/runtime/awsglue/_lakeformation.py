"""Reading a Data Catalog table the way Glue does when Lake Formation governs it.

On AWS a Glue 5.0 job with ``--enable-lakeformation-fine-grained-access true``
runs two Spark drivers: the *user driver* runs the script but can reach
neither S3 nor the Data Catalog; the *system driver*, under a privileged
identity, reads each governed table for it: it asks the Data Catalog what the
job's role may see (Glue ``GetUnfilteredTableMetadata``: the authorized
columns, the row filter, the cell filters, whether the location is
registered), gets S3 credentials from Lake Formation
(``GetTemporaryGlueTableCredentials``, IAM action ``lakeformation:GetDataAccess``),
reads the files with them and hands the user driver only the permitted rows
and columns. A plain ``spark.read.parquet("s3://registered/...")`` gets no
such credentials: it signs as the job's role, and S3 answers Access Denied
unless the role's own IAM policies allow the read. Without the parameter
(Glue 4.0's ``GlueContext`` and Glue 5.0's full-table access) the job may read
a governed table only when the role may read all of it: the engine advertises
column permissions only, and a table the role sees only part of fails the read.

Locally one driver process plays both parts (``plan`` and ``read options``
below are the system driver's work); the same two documented API calls are
made, signed as the run's role session, and the filters are applied by
Spark. The split is not a security boundary here: the script runs in the
process that holds the vended keys.

Sources: https://docs.aws.amazon.com/glue/latest/dg/security-lf-enable.html,
https://docs.aws.amazon.com/glue/latest/dg/security-lf-enable-considerations.html,
https://docs.aws.amazon.com/lake-formation/latest/dg/api-overview.html,
https://docs.aws.amazon.com/emr/latest/EMR-on-EKS-DevelopmentGuide/security_iam_fgac-lf-works.html
"""
from __future__ import annotations

from dataclasses import dataclass, field

from awsglue import _run

FINE_GRAINED = ["COLUMN_PERMISSION", "CELL_FILTER_PERMISSION"]      # Glue 5.0 FGAC
TABLE_LEVEL = ["COLUMN_PERMISSION"]         # without FGAC: the whole table or nothing (checked below)


class AccessDeniedException(Exception):
    """The job's role may not read the table (the run fails with this)."""


@dataclass
class ReadPlan:
    """How to read one catalog table for the job's role."""
    table: dict                                  # the whole table (every column: to parse the files)
    columns: list[str] | None = None             # the columns to return (None: all)
    row_filter: str | None = None                # rows to keep (Spark SQL; None: all)
    cells: dict[str, str] = field(default_factory=dict)   # column -> rows where its value shows
    credentials: dict | None = None              # vended S3 keys, or None: the role's own

    def s3_client(self):
        import boto3
        if self.credentials is None:
            return boto3.client("s3")
        c = self.credentials
        return boto3.client("s3", aws_access_key_id=c["AccessKeyId"], aws_secret_access_key=c["SecretAccessKey"],
                            aws_session_token=c.get("SessionToken"))

    def read_options(self) -> dict[str, str]:
        """Hadoop settings for this read only: Spark adds a reader's options to the Hadoop
        configuration of that scan, so the vended keys sign exactly these files (the
        filesystem cache is bypassed, or an instance made with the role's keys would serve)."""
        if self.credentials is None:
            return {}
        c = self.credentials
        options = {"fs.s3a.aws.credentials.provider": "org.apache.hadoop.fs.s3a.TemporaryAWSCredentialsProvider",
                   "fs.s3a.access.key": c["AccessKeyId"], "fs.s3a.secret.key": c["SecretAccessKey"],
                   "fs.s3a.session.token": c.get("SessionToken") or ""}
        for scheme in ("s3", "s3a", "s3n"):
            options[f"fs.{scheme}.impl.disable.cache"] = "true"
        return options

    def restrict(self, df):
        """Keep the permitted rows, blank the cells outside their filter, keep the permitted columns."""
        from pyspark.sql import functions as F
        if self.row_filter:
            df = df.where(F.expr(self.row_filter))
        names = self.columns if self.columns is not None else df.columns
        picked = []
        for name in names:
            column = F.col(f"`{name}`")
            if name in self.cells:
                column = F.when(F.expr(self.cells[name]), column)
            picked.append(column.alias(name))
        return df.select(*picked) if (self.columns is not None or self.cells) else df


def plan(database: str, table_name: str, catalog_id=None) -> ReadPlan | None:
    """Ask Glue and Lake Formation how the run's role may read ``database.table_name``.

    None outside a local job run (a notebook importing ``awsglue``): the table is read
    with the caller's own credentials, as before.
    """
    info = _run.info()
    if not info:
        return None
    import boto3
    fine_grained = bool(info.get("lakeformation_fine_grained_access"))
    supported = FINE_GRAINED if fine_grained else TABLE_LEVEL
    glue = boto3.client("glue")
    meta = glue.get_unfiltered_table_metadata(CatalogId=catalog_id or info.get("account_id") or "",
                                              DatabaseName=database, Name=table_name,
                                              SupportedPermissionTypes=supported)
    table = meta["Table"]
    every = [c["Name"] for c in (table.get("StorageDescriptor") or {}).get("Columns", [])
             + table.get("PartitionKeys", [])]
    authorized = meta.get("AuthorizedColumns") or []
    if not authorized:
        raise AccessDeniedException(f"Insufficient Lake Formation permission(s) on {table_name}")
    partial = set(authorized) != set(every)
    if partial and not fine_grained:
        raise AccessDeniedException(
            f"Insufficient Lake Formation permission(s) on {table_name}: the job's role may read only some of "
            "its columns, and without --enable-lakeformation-fine-grained-access (Glue 5.0+) a job reads "
            "whole tables only")
    row_filter = meta.get("RowFilter")
    row_filter = None if not row_filter or row_filter.strip().upper() == "TRUE" else row_filter
    cells = {f["ColumnName"]: f["RowFilterExpression"] for f in meta.get("CellFilters") or []
             if f.get("RowFilterExpression") and f["RowFilterExpression"] != (row_filter or "TRUE")
             and f["RowFilterExpression"].strip().upper() != "TRUE"}
    credentials = None
    if meta.get("IsRegisteredWithLakeFormation"):
        lf = boto3.client("lakeformation")
        credentials = lf.get_temporary_glue_table_credentials(
            TableArn=meta["ResourceArn"], Permissions=["SELECT"], SupportedPermissionTypes=supported,
            DurationSeconds=3600)
    ordered = [c for c in every if c in set(authorized)]
    return ReadPlan(table, ordered if partial else None, row_filter, cells, credentials)
