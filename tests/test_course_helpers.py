"""The helpers the chapters share: ``run_query`` (boto3 alone) and the exam quiz."""
import pandas as pd
import pytest

from localaws.athena import QueryFailed, run_query
from localaws.grading import LabCheckFailed, Question, check_quiz, show_quiz

BUCKET = "helpers-lake"
OUT = "s3://helpers-results/out/"


@pytest.fixture(scope="module")
def athena(stack):
    s3 = stack.client("s3")
    for bucket in (BUCKET, "helpers-results"):
        s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=BUCKET, Key="t/part.csv", Body=b"1,a,2.5,true\n2,b,,false\n3,c,4.0,\n")
    client = stack.client("athena")
    run_query(client, "CREATE DATABASE IF NOT EXISTS helpers", output=OUT)
    run_query(client, f"""CREATE EXTERNAL TABLE helpers.t (id int, name string, price double, ok boolean)
        ROW FORMAT DELIMITED FIELDS TERMINATED BY ',' LOCATION 's3://{BUCKET}/t/'""", output=OUT)
    return client


def test_select_gives_a_typed_frame_and_statistics(athena):
    frame, stats = run_query(athena, "SELECT id, name, price, ok FROM t ORDER BY id",
                             database="helpers", output=OUT)
    assert list(frame["id"]) == [1, 2, 3] and str(frame["id"].dtype) == "Int64"
    assert list(frame["name"]) == ["a", "b", "c"]
    assert frame["price"].dtype == "float64" and pd.isna(frame["price"][1])
    assert list(frame["ok"].astype(object)) == [True, False, pd.NA]
    assert stats["state"] == "SUCCEEDED" and stats["statement_type"] == "DML"
    assert stats["bytes_scanned"] > 0 and stats["query_id"]


def test_ctas_reports_rows_written_and_ddl_one_column(athena):
    _, stats = run_query(athena, f"""CREATE TABLE helpers.t2 WITH (format='PARQUET',
        external_location='s3://{BUCKET}/t2/') AS SELECT * FROM t""", database="helpers", output=OUT)
    assert stats["rows_written"] == 3
    tables, _ = run_query(athena, "SHOW TABLES IN helpers", output=OUT)
    assert list(tables.columns) == ["result"] and {"t", "t2"} <= set(tables["result"])


def test_failure_raises_with_athena_reason_or_returns_stats(athena):
    with pytest.raises(QueryFailed) as failed:
        run_query(athena, "SELECT * FROM no_such_table", database="helpers", output=OUT)
    assert failed.value.stats["state"] == "FAILED"
    assert "no_such_table" in failed.value.stats["reason"]
    frame, stats = run_query(athena, "SELECT nope FROM t", database="helpers", output=OUT, check=False)
    assert frame is None and stats["state"] == "FAILED"


def test_parameters_are_passed(athena):
    frame, _ = run_query(athena, "SELECT name FROM t WHERE id = ?", database="helpers", output=OUT,
                         parameters=["2"])
    assert list(frame["name"]) == ["b"]


QUIZ = [Question("Which engine does Athena engine version 3 follow?",
                 {"A": "Trino", "B": "Hive"}, "A",
                 {"A": "Engine v3 follows Trino.", "B": "Hive is the DDL dialect, not the engine."})]


def test_quiz_explains_every_choice_and_raises_on_a_wrong_answer(capsys):
    show_quiz(QUIZ)
    assert "Q1. Which engine" in capsys.readouterr().out
    check_quiz(QUIZ, ["a"])
    out = capsys.readouterr().out
    assert "✓ Q1: A) Engine v3 follows Trino." in out and "not B: Hive is the DDL dialect" in out
    with pytest.raises(LabCheckFailed, match="Q1 \\(you: B, answer: A\\)"):
        check_quiz(QUIZ, ["B"])
    with pytest.raises(LabCheckFailed, match="expected 1 answers"):
        check_quiz(QUIZ, [])
    with pytest.raises(ValueError, match="every choice needs a why"):
        Question("q", {"A": "x", "B": "y"}, "A", {"A": "because"})
