"""GLUE-5: tables a crawler discovers feed Athena *and* Redshift Spectrum, unchanged.

A crawler run through boto3 catalogs a headed CSV table partitioned by ``dt=``
and a Parquet table partitioned by ``year=/month=``; a Redshift warehouse
reads both through an external schema on the crawler's database, as Redshift
Spectrum reads the Glue Data Catalog.
"""
from __future__ import annotations

import io

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from localaws.core.waiting import wait_until
from localaws.redshift.engine import Warehouse

ROLE = "arn:aws:iam::123456789012:role/glue-crawler"


@pytest.fixture(scope="module")
def crawled(stack):
    s3, glue = stack.client("s3"), stack.client("glue")
    s3.create_bucket(Bucket="t-glue-spectrum")
    for day in ("2024-03-01", "2024-03-02"):
        rows = "".join(f"{i},store-{i % 4},{i * 2.5}\n" for i in range(30))
        s3.put_object(Bucket="t-glue-spectrum", Key=f"lake/sales/dt={day}/part-0.csv",
                      Body=f"sale_id,store,amount\n{rows}".encode())
    for month in (1, 2, 3):
        buffer = io.BytesIO()
        pq.write_table(pa.table({"reading": list(range(month * 100, month * 100 + 10)),
                                 "sensor": [f"s{i % 2}" for i in range(10)]}), buffer)
        s3.put_object(Bucket="t-glue-spectrum", Key=f"lake/readings/year=2024/month={month:02d}/r.parquet",
                      Body=buffer.getvalue())
    glue.create_database(DatabaseInput={"Name": "t_glue_spectrum"})
    glue.create_crawler(Name="t-spectrum", Role=ROLE, DatabaseName="t_glue_spectrum",
                        Targets={"S3Targets": [{"Path": "s3://t-glue-spectrum/lake/sales/"},
                                               {"Path": "s3://t-glue-spectrum/lake/readings/"}]})
    glue.start_crawler(Name="t-spectrum")
    assert wait_until(lambda: glue.get_crawler(Name="t-spectrum")["Crawler"]["State"] == "READY", 120, poll=0.2)
    assert glue.get_crawler(Name="t-spectrum")["Crawler"]["LastCrawl"]["Status"] == "SUCCEEDED"
    return "t_glue_spectrum"


@pytest.fixture
def warehouse(stack, tmp_path, crawled):
    w = Warehouse("glue-spectrum", "dev", "admin", "pw", tmp_path, number_of_nodes=2,
                  s3=lambda: stack.client("s3"), glue=lambda region=None: stack.client("glue"))
    w.execute(f"CREATE EXTERNAL SCHEMA lake FROM DATA CATALOG DATABASE '{crawled}' IAM_ROLE '{ROLE}'")
    yield w
    w.close()


def test_the_crawler_found_both_tables_with_their_partition_keys(stack, crawled):
    glue = stack.client("glue")
    tables = {t["Name"]: t for t in glue.get_tables(DatabaseName=crawled)["TableList"]}
    assert sorted(tables) == ["readings", "sales"]
    assert [k["Name"] for k in tables["sales"]["PartitionKeys"]] == ["dt"]
    assert [k["Name"] for k in tables["readings"]["PartitionKeys"]] == ["year", "month"]
    assert len(glue.get_partitions(DatabaseName=crawled, TableName="readings")["Partitions"]) == 3


def test_spectrum_reads_the_crawled_csv_and_parquet_tables(warehouse):
    sales = warehouse.execute("SELECT dt, count(*), sum(amount) FROM lake.sales GROUP BY dt ORDER BY dt").rows
    assert [(str(r[0]), r[1], float(r[2])) for r in sales] == [("2024-03-01", 30, 1087.5), ("2024-03-02", 30, 1087.5)]
    readings = warehouse.execute("SELECT month, count(*), min(reading) FROM lake.readings "
                                 "WHERE year = '2024' GROUP BY month ORDER BY month").rows
    assert [(str(r[0]), r[1], r[2]) for r in readings] == [("01", 10, 100), ("02", 10, 200), ("03", 10, 300)]


def test_spectrum_prunes_the_crawled_partitions(warehouse):
    warehouse.execute("SELECT count(*) FROM lake.readings WHERE month = '02'")
    files = warehouse.execute("SELECT files FROM svl_s3query_summary WHERE external_table_name = 'lake.readings' "
                              "ORDER BY query DESC LIMIT 1").rows[0][0]
    assert files == 1
