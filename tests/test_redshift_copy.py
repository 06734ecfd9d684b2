"""COPY from S3 and UNLOAD to S3 (localaws/redshift/loading.py), on a Warehouse and through a cluster."""
import gzip
import io
import json
import uuid

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from localaws.redshift.engine import Warehouse
from localaws.redshift.errors import SQLError

ROLE = "arn:aws:iam::123456789012:role/RedshiftCopy"
ROWS = [(1, "ann", "2024-01-01"), (2, "bob", "2024-01-02"), (3, "cy", "2024-01-03"), (4, "dee", "2024-01-04")]
DDL = "CREATE TABLE people (id INTEGER NOT NULL, name VARCHAR(5), joined DATE) DISTKEY(id)"


@pytest.fixture(scope="module")
def bucket(stack, unique):
    name = unique("rs-copy")
    stack.client("s3").create_bucket(Bucket=name)
    return name


@pytest.fixture
def warehouse(stack, tmp_path):
    w = Warehouse("copytest", "dev", "admin", "pw", tmp_path, number_of_nodes=2, s3=lambda: stack.client("s3"))
    w.execute(DDL)
    yield w
    w.close()


def put(stack, bucket, key, body: bytes):
    stack.client("s3").put_object(Bucket=bucket, Key=key, Body=body)


def prefix():
    return f"p{uuid.uuid4().hex[:8]}/"


def people(w):
    return [(i, n, str(d)) for i, n, d in w.execute("SELECT * FROM people ORDER BY id").rows]


def test_csv_with_header_and_gzip_over_several_files(stack, bucket, warehouse):
    p = prefix()
    put(stack, bucket, f"{p}part1.csv.gz", gzip.compress(b"id,name,joined\n1,ann,2024-01-01\n2,bob,2024-01-02\n"))
    put(stack, bucket, f"{p}part2.csv.gz", gzip.compress(b"id,name,joined\n3,cy,2024-01-03\n4,dee,2024-01-04\n"))
    result = warehouse.execute(f"COPY people FROM 's3://{bucket}/{p}part' IAM_ROLE '{ROLE}' "
                               "FORMAT AS CSV IGNOREHEADER 1 GZIP REGION 'us-east-1' DATEFORMAT 'auto'")
    assert (result.command, result.rowcount) == ("COPY", 4)
    assert people(warehouse) == [(i, n, d) for i, n, d in ROWS]
    history = warehouse.execute("SELECT status, loaded_rows, source_file_count, iam_role FROM sys_load_history").rows
    assert history == [("completed", 4, 2, ROLE)]


def test_pipe_delimited_text_and_csv_quoting(stack, bucket, warehouse):
    p = prefix()
    put(stack, bucket, f"{p}a.txt", b"1|ann|2024-01-01\n2|\\N|2024-01-02\n")
    put(stack, bucket, f"{p}b.csv", b'3,"c,y",2024-01-03\n')
    warehouse.execute(f"COPY people FROM 's3://{bucket}/{p}a.txt' IAM_ROLE '{ROLE}'")
    warehouse.execute(f"COPY people (id, name, joined) FROM 's3://{bucket}/{p}b.csv' CREDENTIALS "
                      f"'aws_iam_role={ROLE}' CSV")
    assert people(warehouse) == [(1, "ann", "2024-01-01"), (2, None, "2024-01-02"), (3, "c,y", "2024-01-03")]


def test_json_auto(stack, bucket, warehouse):
    p = prefix()
    body = '{"id": 1, "name": "ann", "joined": "2024-01-01"}\n{"joined": "2024-01-02",\n "id": 2}\n'
    put(stack, bucket, f"{p}people.json", body.encode())
    assert warehouse.execute(f"COPY people FROM 's3://{bucket}/{p}' IAM_ROLE '{ROLE}' "
                             "FORMAT AS JSON 'auto'").rowcount == 2
    assert people(warehouse) == [(1, "ann", "2024-01-01"), (2, None, "2024-01-02")]


def test_parquet(stack, bucket, warehouse):
    import datetime
    p = prefix()
    table = pa.table({"id": [1, 2], "name": ["ann", "bob"],
                      "joined": [datetime.date(2024, 1, 1), datetime.date(2024, 1, 2)]})
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    put(stack, bucket, f"{p}people.parquet", buffer.getvalue())
    assert warehouse.execute(f"COPY people FROM 's3://{bucket}/{p}' IAM_ROLE '{ROLE}' FORMAT AS PARQUET"
                             ).rowcount == 2
    assert people(warehouse) == [(1, "ann", "2024-01-01"), (2, "bob", "2024-01-02")]


def test_manifest_loads_exactly_its_entries(stack, bucket, warehouse):
    p = prefix()
    put(stack, bucket, f"{p}data/a.csv", b"1,ann,2024-01-01\n")
    put(stack, bucket, f"{p}data/b.csv", b"2,bob,2024-01-02\n")
    put(stack, bucket, f"{p}data/c.csv", b"3,cy,2024-01-03\n")            # not in the manifest
    manifest = {"entries": [{"url": f"s3://{bucket}/{p}data/a.csv", "mandatory": True},
                            {"url": f"s3://{bucket}/{p}data/b.csv", "mandatory": True},
                            {"url": f"s3://{bucket}/{p}data/gone.csv", "mandatory": False}]}
    put(stack, bucket, f"{p}load.manifest", json.dumps(manifest).encode())
    warehouse.execute(f"COPY people FROM 's3://{bucket}/{p}load.manifest' IAM_ROLE '{ROLE}' CSV MANIFEST")
    assert [r[0] for r in people(warehouse)] == [1, 2]
    manifest["entries"][2]["mandatory"] = True
    put(stack, bucket, f"{p}load.manifest", json.dumps(manifest).encode())
    with pytest.raises(SQLError, match="The specified key does not exist"):
        warehouse.execute(f"COPY people FROM 's3://{bucket}/{p}load.manifest' IAM_ROLE '{ROLE}' CSV MANIFEST")


BAD = (b"id,name,joined\n"
       b"1,ann,2024-01-01\n"
       b"x2,bob,2024-01-02\n"          # line 3: not an integer
       b"3,much-too-long,2024-01-03\n"  # line 4: longer than VARCHAR(5)
       b"4,dee\n"                       # line 5: a field missing
       b"5,eve,2024-01-05\n")


def test_bad_rows_within_maxerror_load_the_good_rows(stack, bucket, warehouse):
    p = prefix()
    put(stack, bucket, f"{p}bad.csv", BAD)
    result = warehouse.execute(f"COPY people FROM 's3://{bucket}/{p}bad.csv' IAM_ROLE '{ROLE}' "
                               "CSV IGNOREHEADER 1 MAXERROR 3")
    assert result.rowcount == 2
    assert [r[0] for r in people(warehouse)] == [1, 5]
    errors = warehouse.execute("SELECT filename, line_number, colname, type, raw_line, err_code, err_reason "
                               "FROM stl_load_errors ORDER BY line_number").rows
    assert errors == [
        (f"s3://{bucket}/{p}bad.csv", 3, "id", "int4", "x2,bob,2024-01-02", 1207,
         "Invalid digit, Value 'x', Pos 0, Type: Integer"),
        (f"s3://{bucket}/{p}bad.csv", 4, "name", "varchar", "3,much-too-long,2024-01-03", 1204,
         "String length exceeds DDL length"),
        (f"s3://{bucket}/{p}bad.csv", 5, "", "", "4,dee", 1214, "Delimiter not found"),
    ]


def test_bad_rows_beyond_maxerror_load_nothing(stack, bucket, warehouse):
    p = prefix()
    put(stack, bucket, f"{p}bad.csv", BAD)
    warehouse.execute("INSERT INTO people VALUES (9, 'old', '2020-01-01')")
    with pytest.raises(SQLError) as failure:
        warehouse.execute(f"COPY people FROM 's3://{bucket}/{p}bad.csv' IAM_ROLE '{ROLE}' "
                          "CSV IGNOREHEADER 1 MAXERROR 2")
    assert failure.value.code == "XX000"
    assert failure.value.message == ("Load into table 'people' failed.  "
                                     "Check 'stl_load_errors' system table for details.")
    assert people(warehouse) == [(9, "old", "2020-01-01")]            # all or nothing
    assert warehouse.execute("SELECT count(*) FROM stl_load_errors").rows == [(3,)]
    query = warehouse.execute("SELECT query FROM stl_load_errors LIMIT 1").rows[0][0]
    text = warehouse.execute(f"SELECT querytxt FROM stl_query WHERE query = {query}").rows[0][0]
    assert text.startswith("COPY people")


def test_missing_prefix(stack, bucket, warehouse):
    with pytest.raises(SQLError) as failure:
        warehouse.execute(f"COPY people FROM 's3://{bucket}/nothing/here' IAM_ROLE '{ROLE}' CSV")
    assert failure.value.code == "XX000"
    assert failure.value.message == "The specified S3 prefix 'nothing/here' does not exist"


def test_bad_syntax_and_missing_table(warehouse):
    with pytest.raises(SQLError) as failure:
        warehouse.execute("COPY people FROM 's3://b/k' IAM_ROLE 'r' CSV BOGUS")
    assert failure.value.code == "42601" and '"BOGUS"' in failure.value.message
    with pytest.raises(SQLError) as failure:
        warehouse.execute("COPY nosuch FROM 's3://b/k' IAM_ROLE 'r' CSV")
    assert failure.value.code == "42P01"


def test_copy_distributes_rows_like_insert(stack, bucket, tmp_path):
    """The same rows by COPY into one table and by INSERT into another: the same rows per slice."""
    w = Warehouse("dist", "dev", "admin", "pw", tmp_path, number_of_nodes=2, s3=lambda: stack.client("s3"))
    try:
        rows = [(i, f"n{i % 7}") for i in range(200)]
        for style in ("DISTKEY(id)", "DISTSTYLE EVEN"):
            w.execute(f"CREATE TABLE by_copy (id INTEGER, name VARCHAR(10)) {style}")
            w.execute(f"CREATE TABLE by_insert (id INTEGER, name VARCHAR(10)) {style}")
            p = prefix()
            put(stack, bucket, f"{p}rows.csv", "".join(f"{i},{n}\n" for i, n in rows).encode())
            w.execute(f"COPY by_copy FROM 's3://{bucket}/{p}' IAM_ROLE '{ROLE}' CSV")
            w.execute("INSERT INTO by_insert VALUES " + ", ".join(f"({i}, '{n}')" for i, n in rows))
            per_slice = {name: w.execute(f"SELECT slice, rows FROM stv_tbl_perm WHERE name = '{name}' "
                                         "ORDER BY slice").rows for name in ("by_copy", "by_insert")}
            assert per_slice["by_copy"] == per_slice["by_insert"]
            assert len([n for _, n in per_slice["by_copy"] if n]) > 1       # spread over several slices
            assert w.execute("SELECT tbl_rows FROM svv_table_info WHERE \"table\" = 'by_copy'").rows == [(200,)]
            w.execute("DROP TABLE by_copy")
            w.execute("DROP TABLE by_insert")
    finally:
        w.close()


def keys(stack, bucket, p):
    listing = stack.client("s3").list_objects_v2(Bucket=bucket, Prefix=p)
    return sorted(o["Key"][len(p):] for o in listing.get("Contents", []))


def load_people(w):
    for row in ROWS:
        w.execute("INSERT INTO people VALUES ($1, $2, $3)", list(row))


def test_unload_csv_round_trip(stack, bucket, warehouse):
    load_people(warehouse)
    p = prefix()
    result = warehouse.execute(f"UNLOAD ('SELECT * FROM people WHERE name <> \\'zz\\'') TO 's3://{bucket}/{p}people_' "
                               f"IAM_ROLE '{ROLE}' FORMAT AS CSV HEADER")
    assert (result.command, result.rowcount) == ("UNLOAD", 4)
    files = keys(stack, bucket, p)
    assert files and all(f.startswith("people_") and f.endswith("_part_00") for f in files)
    assert len(files) == min(4, warehouse.slices)                     # one file per slice that had rows
    warehouse.execute("CREATE TABLE copy_back (id INTEGER NOT NULL, name VARCHAR(5), joined DATE)")
    warehouse.execute(f"COPY copy_back FROM 's3://{bucket}/{p}people_' IAM_ROLE '{ROLE}' CSV IGNOREHEADER 1")
    assert warehouse.execute("SELECT * FROM copy_back ORDER BY id").rows == \
        warehouse.execute("SELECT * FROM people ORDER BY id").rows


def test_unload_parquet_round_trip_parallel_off(stack, bucket, warehouse):
    load_people(warehouse)
    p = prefix()
    warehouse.execute(f"UNLOAD ('SELECT * FROM people') TO 's3://{bucket}/{p}' IAM_ROLE '{ROLE}' "
                      "FORMAT PARQUET PARALLEL OFF")
    assert keys(stack, bucket, p) == ["000.parquet"]
    warehouse.execute("CREATE TABLE copy_back (id INTEGER NOT NULL, name VARCHAR(5), joined DATE)")
    warehouse.execute(f"COPY copy_back FROM 's3://{bucket}/{p}' IAM_ROLE '{ROLE}' FORMAT AS PARQUET")
    assert warehouse.execute("SELECT * FROM copy_back ORDER BY id").rows == \
        warehouse.execute("SELECT * FROM people ORDER BY id").rows


def test_unload_partition_by_and_manifest(stack, bucket, warehouse):
    load_people(warehouse)
    p = prefix()
    warehouse.execute(f"UNLOAD ('SELECT id, name, id % 2 AS odd FROM people') TO 's3://{bucket}/{p}' "
                      f"IAM_ROLE '{ROLE}' PARQUET PARTITION BY (odd) MANIFEST")
    files = keys(stack, bucket, p)
    assert "manifest" in files
    assert {f.split("/")[0] for f in files if f != "manifest"} == {"odd=0", "odd=1"}
    manifest = json.loads(stack.client("s3").get_object(Bucket=bucket, Key=f"{p}manifest")["Body"].read())
    assert len(manifest["entries"]) == len(files) - 1


def test_unload_refuses_to_overwrite(stack, bucket, warehouse):
    load_people(warehouse)
    p = prefix()
    unload = f"UNLOAD ('SELECT * FROM people') TO 's3://{bucket}/{p}' IAM_ROLE '{ROLE}' CSV"
    warehouse.execute(unload)
    with pytest.raises(SQLError, match="Specified unload destination on S3 is not empty") as failure:
        warehouse.execute(unload)
    assert failure.value.code == "XX000"
    before = keys(stack, bucket, p)
    warehouse.execute(unload + " ALLOWOVERWRITE")
    assert keys(stack, bucket, p) == before


def test_copy_and_unload_through_a_cluster(stack, bucket, data, cluster, statements):
    """The cluster's plane gives its warehouse the stack's S3: COPY and UNLOAD over the Data API."""
    p = prefix()
    put(stack, bucket, f"{p}people.csv", b"1,ann,2024-01-01\n2,bob,2024-01-02\n")
    statements.run_ok(data, cluster, DDL, timeout=30)
    statements.run_ok(data, cluster, f"COPY people FROM 's3://{bucket}/{p}people.csv' IAM_ROLE '{ROLE}' CSV",
                      timeout=30)
    statements.run_ok(data, cluster, f"UNLOAD ('SELECT * FROM people') TO 's3://{bucket}/{p}out/' "
                                     f"IAM_ROLE '{ROLE}' CSV", timeout=30)
    assert keys(stack, bucket, f"{p}out/")
    missing = statements.run(data, cluster, f"COPY people FROM 's3://{bucket}/{p}missing' IAM_ROLE '{ROLE}' CSV")
    assert missing["Status"] == "FAILED"
    assert "The specified S3 prefix" in missing["Error"]
