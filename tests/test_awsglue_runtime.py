"""The local ``awsglue`` library (``localaws/glue/runtime/awsglue``), used in this process.

A Glue job's script imports ``awsglue``; the job runner puts the library on
the driver's path. Here the same library runs in the test's own process, on
one Spark session (``core/spark.notebook_session``) whose ``s3://`` is the
stack's S3, and whose boto3 reaches the stack's Glue Data Catalog: each
transform is checked against the rows it must give, without starting a job
per case (``test_glue_jobs.py`` runs whole jobs).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

import localaws.glue

RUNTIME = Path(localaws.glue.__file__).parent / "runtime"
sys.path.insert(0, str(RUNTIME))

from awsglue import _bookmarks  # noqa: E402 - the runtime folder is on the path just above
from awsglue.utils import GlueArgumentError, getResolvedOptions  # noqa: E402

BUCKET = "t-awsglue-runtime"


# ------------------------------------------------------------------ no Spark needed
def test_get_resolved_options_reads_glue_arguments():
    argv = ["job.py", "--JOB_ID", "j_1", "--JOB_RUN_ID", "jr_1", "--job-bookmark-option", "job-bookmark-enable",
            "--JOB_NAME", "daily", "--source", "s3://b/in/", "--limit=10", "--flag"]
    args = getResolvedOptions(argv, ["JOB_NAME", "source", "limit", "flag", "job-bookmark-option"])
    assert args == {"JOB_NAME": "daily", "source": "s3://b/in/", "limit": "10", "flag": "",
                    "job-bookmark-option": "job-bookmark-enable"}
    with pytest.raises(GlueArgumentError, match="--target, --other"):
        getResolvedOptions(argv, ["JOB_NAME", "target", "other"])
    with pytest.raises(GlueArgumentError, match="invalid choice: 'sometimes'"):
        getResolvedOptions(["j.py", "--job-bookmark-option", "sometimes"], ["job-bookmark-option"])


def obj(uri, mtime_ms):
    return {"uri": uri, "mtime_ms": mtime_ms}


def test_a_bookmark_takes_new_objects_by_modification_time_and_by_name_within_the_band():
    band = 1000
    first = [obj("s3://b/a", 10_000), obj("s3://b/b", 19_500)]
    assert _bookmarks.select(first, None, band) == first               # no bookmark: everything
    state = _bookmarks.state(first, 20_000, ["s3://b/"], band)
    assert state == {"high_ms": 20_000, "paths": ["s3://b/"], "in_band": ["s3://b/b"]}
    later = [*first, obj("s3://b/c", 19_800),        # written just before the listing, missed by it
             obj("s3://b/d", 25_000)]                # written after it
    assert [o["uri"] for o in _bookmarks.select(later, state, band)] == ["s3://b/c", "s3://b/d"]
    rewritten = [obj("s3://b/a", 26_000), obj("s3://b/b", 19_500)]
    assert [o["uri"] for o in _bookmarks.select(rewritten, state, band)] == ["s3://b/a"]
    # An object the bookmark remembers but that was deleted just drops out of the next state.
    after_delete = _bookmarks.state([obj("s3://b/d", 25_000)], 25_500, ["s3://b/"], band)
    assert after_delete["in_band"] == ["s3://b/d"]


# ------------------------------------------------------------------ on Spark
@pytest.fixture(scope="module")
def glue_context(stack):
    """A GlueContext on an in-process Spark session; boto3 in this process points at the stack."""
    from localaws.core.spark import notebook_session, stop_notebook_session
    patch = pytest.MonkeyPatch()
    patch.setenv("AWS_ENDPOINT_URL", stack.endpoint)
    s3 = stack.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    spark = notebook_session(stack.endpoint, "awsglue-runtime-tests", log_dir=stack.context.work_dir)
    from awsglue.context import GlueContext
    try:
        yield GlueContext(spark.sparkContext)
    finally:
        stop_notebook_session(spark)
        patch.undo()


def put(stack, key: str, body: str) -> str:
    stack.client("s3").put_object(Bucket=BUCKET, Key=key, Body=body.encode())
    return f"s3://{BUCKET}/{key}"


def rows(frame, order: str):
    df = frame.toDF()
    return [r.asDict(recursive=True) for r in df.orderBy(f"`{order}`").collect()]


def test_csv_from_s3_apply_mapping_and_resolve_choice(stack, glue_context):
    from awsglue.transforms import ApplyMapping, ResolveChoice
    put(stack, "sales/part-1.csv", "id,city,price,note\n1,paris,1.5,a\n2,rome,n/a,b\n")
    put(stack, "sales/part-2.csv", "id,city,price,note\n3,paris,3,c\n")
    put(stack, "sales/_SUCCESS", "")                                  # hidden: skipped, as by Glue
    put(stack, "sales/old/part-0.csv", "id,city,price,note\n9,oslo,9,z\n")   # a subfolder: needs recurse
    sales = glue_context.create_dynamic_frame.from_options(
        connection_type="s3", connection_options={"paths": [f"s3://{BUCKET}/sales/"]}, format="csv",
        format_options={"withHeader": True})
    assert sales.count() == 3
    assert dict(sales.toDF().dtypes)["price"] == "string"            # "n/a": one type, string (no choice type)
    everything = glue_context.create_dynamic_frame.from_options(
        connection_type="s3", connection_options={"paths": [f"s3://{BUCKET}/sales/"], "recurse": True},
        format="csv", format_options={"withHeader": True})
    assert everything.count() == 4

    priced = ResolveChoice.apply(frame=sales, specs=[("price", "cast:double"), ("city", "make_cols")])
    assert [r["price"] for r in rows(priced, "id")] == [1.5, None, 3.0]     # a value that does not convert: null
    mapped = ApplyMapping.apply(frame=priced, mappings=[
        ("id", "int", "sale.id", "long"), ("city", "string", "sale.city", "string"),
        ("price", "double", "amount", "decimal(10,2)"), ("missing", "string", "gone", "string")])
    df = mapped.toDF()
    assert df.columns == ["sale", "amount"]                          # unmapped and missing fields are dropped
    assert df.schema.simpleString() == "struct<sale:struct<id:bigint,city:string>,amount:decimal(10,2)>"

    plain = glue_context.create_dynamic_frame.from_options(
        connection_type="s3", connection_options={"paths": [f"s3://{BUCKET}/sales/part-2.csv"]}, format="csv")
    assert plain.toDF().columns == ["col0", "col1", "col2", "col3"]  # no header: Glue's column names


NESTED = [
    {"id": 1, "name": "ana", "address": {"city": "lyon", "zip": "69001"}, "tags": ["new", "vip"],
     "orders": [{"sku": "a", "qty": 2, "notes": ["gift"]}, {"sku": "b", "qty": 1, "notes": []}], "legacy": None},
    {"id": 2, "name": "bo", "address": {"city": "nice", "zip": "06000"}, "tags": [], "orders": None, "legacy": None},
]


def test_relationalize_flattens_nested_json_into_linked_tables(stack, glue_context):
    from awsglue.transforms import Relationalize
    put(stack, "people/people.json", "\n".join(json.dumps(r) for r in NESTED))
    people = glue_context.create_dynamic_frame.from_options(
        connection_type="s3", connection_options={"paths": [f"s3://{BUCKET}/people/"]}, format="json")
    tables = Relationalize.apply(frame=people, staging_path=f"s3://{BUCKET}/tmp/", name="root")
    assert sorted(tables.keys()) == ["root", "root_orders", "root_orders.val.notes", "root_tags"]
    root = rows(tables.select("root"), "id")
    assert [(r["id"], r["address.city"], r["address.zip"]) for r in root] == [(1, "lyon", "69001"), (2, "nice", "06000")]
    assert root[1]["orders"] is None                                 # a null array links to nothing
    tags = {(r["id"], r["index"], r["tags.val"]) for r in rows(tables.select("root_tags"), "index")}
    assert tags == {(root[0]["tags"], 0, "new"), (root[0]["tags"], 1, "vip")}
    orders = rows(tables.select("root_orders"), "index")
    assert [(r["id"], r["orders.val.sku"], r["orders.val.qty"]) for r in orders] == [
        (root[0]["orders"], "a", 2), (root[0]["orders"], "b", 1)]
    notes = rows(tables["root_orders.val.notes"], "index")
    assert [(r["id"], r["orders.val.notes.val"]) for r in notes] == [(orders[0]["orders.val.notes"], "gift")]


def test_field_transforms(stack, glue_context):
    from awsglue.dynamicframe import DynamicFrame
    from awsglue.transforms import DropFields, DropNullFields, Filter, RenameField, SelectFields
    df = glue_context.spark_session.read.json(
        glue_context.spark_session.sparkContext.parallelize([json.dumps(r) for r in NESTED]))
    people = DynamicFrame.fromDF(df, glue_context, "people")
    assert "legacy" not in DropNullFields.apply(frame=people).toDF().columns
    assert [r["id"] for r in rows(Filter.apply(frame=people, f=lambda rec: rec["address"]["city"] == "nice"), "id")] == [2]
    picked = SelectFields.apply(frame=people, paths=["id", "address.city"]).toDF()
    assert picked.schema.simpleString() == "struct<id:bigint,address:struct<city:string>>"
    dropped = DropFields.apply(frame=people, paths=["tags", "address.zip"]).toDF()
    assert "tags" not in dropped.columns and dropped.schema["address"].dataType.names == ["city"]
    renamed = RenameField.apply(frame=people, old_name="address.city", new_name="address.town").toDF()
    assert renamed.schema["address"].dataType.names == ["zip", "town"]
    assert RenameField.apply(frame=people, old_name="name", new_name="first_name").toDF().columns.count("first_name") == 1


def test_from_catalog_reads_only_the_partitions_the_predicate_keeps(stack, glue_context):
    from awsglue.transforms import ResolveChoice
    glue = stack.client("glue")
    glue.create_database(DatabaseInput={"Name": "t_awsglue_rt"})
    location = f"s3://{BUCKET}/trips/"
    sd = {"Columns": [{"Name": "trip", "Type": "int"}, {"Name": "km", "Type": "string"}],
          "InputFormat": "org.apache.hadoop.mapred.TextInputFormat",
          "SerdeInfo": {"SerializationLibrary": "org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe",
                        "Parameters": {"field.delim": ","}}}
    glue.create_table(DatabaseName="t_awsglue_rt", TableInput={
        "Name": "trips", "PartitionKeys": [{"Name": "year", "Type": "int"}],
        "Parameters": {"classification": "csv", "skip.header.line.count": "1"},
        "StorageDescriptor": {**sd, "Location": location}})
    for year, body in ((2023, "trip,km\n1,10\n"), (2024, "trip,km\n2,20\n3,x\n"), (2025, "trip,km\n4,40\n")):
        put(stack, f"trips/year={year}/part.csv", body)
        glue.create_partition(DatabaseName="t_awsglue_rt", TableName="trips", PartitionInput={
            "Values": [str(year)], "StorageDescriptor": {**sd, "Location": f"{location}year={year}/"}})
    trips = glue_context.create_dynamic_frame.from_catalog(
        database="t_awsglue_rt", table_name="trips", push_down_predicate="year >= 2024")
    assert [(r["trip"], r["km"], r["year"]) for r in rows(trips, "trip")] == [(2, "20", 2024), (3, "x", 2024), (4, "40", 2025)]
    assert dict(trips.toDF().dtypes) == {"trip": "int", "km": "string", "year": "int"}
    typed = ResolveChoice.apply(frame=trips, specs=[("km", "cast:int")])
    assert [r["km"] for r in rows(typed, "trip")] == [20, None, 40]


def test_bookmarked_reads_take_only_objects_not_yet_committed(stack, glue_context):
    from awsglue.context import RunBookmark
    put(stack, "events/1.json", '{"n": 1}\n')
    read = {"connection_type": "s3", "connection_options": {"paths": [f"s3://{BUCKET}/events/"]},
            "format": "json", "transformation_ctx": "events"}
    glue_context._bookmark = first = RunBookmark("job-bookmark-enable", None)
    try:
        assert [r["n"] for r in rows(glue_context.create_dynamic_frame.from_options(**read), "n")] == [1]
        put(stack, "events/2.json", '{"n": 2}\n')
        glue_context._bookmark = RunBookmark("job-bookmark-enable", first.merged())
        assert [r["n"] for r in rows(glue_context.create_dynamic_frame.from_options(**read), "n")] == [2]
        untracked = dict(read, transformation_ctx="")            # no transformation_ctx: not bookmarked
        assert glue_context.create_dynamic_frame.from_options(**untracked).count() == 2
    finally:
        glue_context._bookmark = None


def test_written_frames_land_in_partition_folders(stack, glue_context, s3_objects):
    from awsglue.dynamicframe import DynamicFrame
    df = glue_context.spark_session.createDataFrame([(1, "eu"), (2, "us"), (3, "eu")], "id INT, region STRING")
    glue_context.write_dynamic_frame.from_options(
        frame=DynamicFrame.fromDF(df, glue_context, "out"), connection_type="s3",
        connection_options={"path": f"s3://{BUCKET}/written/", "partitionKeys": ["region"]}, format="parquet")
    keys = [k for k in s3_objects(BUCKET) if k.startswith("written/") and k.endswith(".parquet")]
    assert keys and {k.split("/")[1] for k in keys} == {"region=eu", "region=us"}
    back = glue_context.create_dynamic_frame.from_options(
        connection_type="s3", connection_options={"paths": [f"s3://{BUCKET}/written/"], "recurse": True},
        format="parquet")
    assert sorted((r["id"], r["region"]) for r in rows(back, "id")) == [(1, "eu"), (2, "us"), (3, "eu")]
