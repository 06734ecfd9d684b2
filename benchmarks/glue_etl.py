"""Glue stand-in: crawl time, job run time, what a bookmark saves, what Parquet saves Athena.

Prints figures and ratios on this machine (never pass/fail):

1. **crawl**: a crawler over ``--days`` daily folders of ``--files`` headed CSV
   files each (``dt=YYYY-MM-DD/``): seconds from StartCrawler to READY, files
   per second, and a recrawl with ``CRAWL_NEW_FOLDERS_ONLY`` after one more day
   arrives, side by side with a full recrawl of the same data;
2. **job**: a Glue 5.0 ``glueetl`` job (CSV -> Parquet partitioned by ``dt``,
   bookmarks enabled) run once over everything, then again after one more day
   arrives: seconds from StartJobRun to SUCCEEDED for both, and the second run's
   rows over the first's (the bookmark's saving), with the fixed cost of a run
   (Spark's start) estimated from an empty run;
3. **Athena**: bytes scanned by the same aggregate over the CSV table and over
   the job's Parquet output (GLUE-3), and their ratio.

Usage: ``.venv/bin/python benchmarks/glue_etl.py [--days 6] [--files 5] [--rows 2000]``

The machine is shared: timings include whatever else runs; the load average
is printed before and after. Everything runs in one local stack, stopped at
the end (with every thread and process it started).
"""
from __future__ import annotations

import argparse
import os
import random
import time

import _results
import localaws
from localaws.athena import run_query
from localaws.core.waiting import wait_until

BUCKET = "bench-glue"
ROLE = "arn:aws:iam::123456789012:role/glue"
SCRIPT = """
import sys
from awsglue.context import GlueContext
from awsglue.job import Job
from awsglue.utils import getResolvedOptions
from pyspark.context import SparkContext

args = getResolvedOptions(sys.argv, ["JOB_NAME", "output"])
glue_context = GlueContext(SparkContext.getOrCreate())
job = Job(glue_context)
job.init(args["JOB_NAME"], args)
sales = glue_context.create_dynamic_frame.from_catalog(database="bench", table_name="raw",
                                                        transformation_ctx="raw")
print("rows read", sales.count())
glue_context.write_dynamic_frame.from_options(frame=sales, connection_type="s3", format="parquet",
                                              connection_options={"path": args["output"], "partitionKeys": ["dt"]})
job.commit()
"""


def day_csv(rng: random.Random, rows: int) -> bytes:
    lines = ["sale_id,store,product,amount"]
    lines += [f"{rng.randrange(10**9)},store-{rng.randrange(40)},p-{rng.randrange(500)},{rng.uniform(1, 500):.2f}"
              for _ in range(rows)]
    return ("\n".join(lines) + "\n").encode()


def upload_day(s3, rng, day: int, files: int, rows: int) -> None:
    for part in range(files):
        s3.put_object(Bucket=BUCKET, Key=f"raw/dt=2024-05-{day:02d}/part-{part}.csv", Body=day_csv(rng, rows // files))


def crawl(glue, name: str) -> float:
    start = time.monotonic()
    glue.start_crawler(Name=name)
    wait_until(lambda: glue.get_crawler(Name=name)["Crawler"]["State"] == "READY", 600, poll=0.1)
    return time.monotonic() - start


def run_job(glue, name: str, **arguments) -> tuple[float, dict]:
    start = time.monotonic()
    run_id = glue.start_job_run(JobName=name, Arguments=arguments)["JobRunId"]

    def done():
        return glue.get_job_run(JobName=name, RunId=run_id)["JobRun"]["JobRunState"] in (
            "SUCCEEDED", "FAILED", "TIMEOUT", "STOPPED")
    wait_until(done, 900, poll=0.2)
    return time.monotonic() - start, glue.get_job_run(JobName=name, RunId=run_id)["JobRun"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=6)
    parser.add_argument("--files", type=int, default=5)
    parser.add_argument("--rows", type=int, default=2000, help="rows per day")
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.1f}")
    rng = random.Random(14)
    stack = localaws.start()
    try:
        s3, glue, athena = stack.client("s3"), stack.client("glue"), stack.client("athena")
        s3.create_bucket(Bucket=BUCKET)
        for day in range(1, args.days + 1):
            upload_day(s3, rng, day, args.files, args.rows)
        glue.create_database(DatabaseInput={"Name": "bench"})
        for name, policy in (("new-only", "CRAWL_NEW_FOLDERS_ONLY"), ("everything", "CRAWL_EVERYTHING")):
            glue.create_crawler(Name=name, Role=ROLE, DatabaseName="bench", TablePrefix="" if name == "new-only" else "all_",
                                Targets={"S3Targets": [{"Path": f"s3://{BUCKET}/raw/"}]},
                                RecrawlPolicy={"RecrawlBehavior": policy},
                                SchemaChangePolicy={"UpdateBehavior": "LOG", "DeleteBehavior": "LOG"}
                                if policy == "CRAWL_NEW_FOLDERS_ONLY" else {})
        files = args.days * args.files
        first = crawl(glue, "new-only")
        crawl(glue, "everything")
        upload_day(s3, rng, args.days + 1, args.files, args.rows)
        new_only, everything = crawl(glue, "new-only"), crawl(glue, "everything")
        print("\n1. crawl")
        print(f"   first crawl of {files} files in {args.days} folders: {first:.2f} s ({files / first:.0f} files/s)")
        print(f"   recrawl after one more day: new folders only {new_only:.2f} s, everything {everything:.2f} s, "
              f"ratio {new_only / everything:.2f}")
        _results.record("glue_etl", "recrawl after one more day: new folders only / everything",
                        new_only / everything, note=f"{new_only:.2f} s / {everything:.2f} s")
        _results.record("glue_etl", f"first crawl of {files} files", files / first, unit="files/s")

        s3.put_object(Bucket=BUCKET, Key="scripts/to_parquet.py", Body=SCRIPT.encode())
        glue.create_job(Name="to-parquet", Role=ROLE, GlueVersion="5.0", WorkerType="G.1X", NumberOfWorkers=2,
                        Command={"Name": "glueetl", "ScriptLocation": f"s3://{BUCKET}/scripts/to_parquet.py"},
                        DefaultArguments={"--job-bookmark-option": "job-bookmark-enable",
                                          "--output": f"s3://{BUCKET}/curated/"})
        everything_s, _ = run_job(glue, "to-parquet")
        upload_day(s3, rng, args.days + 2, args.files, args.rows)
        glue.start_crawler(Name="new-only")
        wait_until(lambda: glue.get_crawler(Name="new-only")["Crawler"]["State"] == "READY", 600, poll=0.1)
        one_day_s, _ = run_job(glue, "to-parquet")
        empty_s, _ = run_job(glue, "to-parquet")           # nothing new: the fixed cost of a run
        print("\n2. job (Glue 5.0, CSV -> Parquet by dt, bookmarks on)")
        print(f"   first run, {args.days + 1} days: {everything_s:.1f} s; second run, 1 new day: {one_day_s:.1f} s; "
              f"a run with nothing new: {empty_s:.1f} s")
        print(f"   second run / first run: {one_day_s / everything_s:.2f} (rows 1/{args.days + 2} of the data; "
              f"the rest is the fixed cost of starting Spark)")
        _results.record("glue_etl", "bookmarked job run: 1 new day / all days", one_day_s / everything_s,
                        note=f"{one_day_s:.1f} s / {everything_s:.1f} s; rows 1/{args.days + 2} of the data")
        _results.record("glue_etl", "job run with nothing new (the fixed cost of a run)", empty_s, unit="s")

        output = f"s3://{BUCKET}/athena/"
        run_query(athena, "CREATE EXTERNAL TABLE bench.curated (sale_id bigint, store string, product string, "
                  f"amount double) PARTITIONED BY (dt string) STORED AS PARQUET LOCATION 's3://{BUCKET}/curated/'",
                  database="bench", output=output)
        run_query(athena, "MSCK REPAIR TABLE bench.curated", database="bench", output=output)
        sql = "SELECT store, sum(amount) FROM {} GROUP BY store ORDER BY store"
        csv_frame, csv_stats = run_query(athena, sql.format("bench.raw"), database="bench", output=output)
        pq_frame, pq_stats = run_query(athena, sql.format("bench.curated"), database="bench", output=output)
        assert len(csv_frame) == len(pq_frame)
        print("\n3. Athena, same aggregate (store, sum(amount))")
        print(f"   CSV {csv_stats['bytes_scanned']:,} bytes, Parquet {pq_stats['bytes_scanned']:,} bytes: "
              f"ratio {pq_stats['bytes_scanned'] / csv_stats['bytes_scanned']:.3f}")
        _results.record("glue_etl", "Athena bytes scanned, same aggregate: Parquet (job output) / CSV",
                        pq_stats["bytes_scanned"] / csv_stats["bytes_scanned"],
                        note=f"{pq_stats['bytes_scanned']:,} B / {csv_stats['bytes_scanned']:,} B")
    finally:
        stack.stop()
    print(f"\nload average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
