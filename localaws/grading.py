"""Checks for the labs: small functions that tell a learner what to fix.

A lab (``labs/NN_name/``) asks you to write a few cells. After each one, a
*check cell* calls a function from this module with what you produced::

    from localaws import grading

    grading.check_bucket_has_objects(s3, "warmup-raw", prefix="airlines/", min_count=1)
    grading.passed("upload")

When the work is right, the check returns quietly and ``passed`` prints
``✓ upload``. When it is not, the check raises :class:`LabCheckFailed`, whose
message says what was expected, what was found and what to try next. The
checks are ordinary Python: you can call them yourself, read them, and reuse
them in your own notebooks.

``LabCheckFailed`` is an ``AssertionError``, so test runners (pytest, nbval)
treat a failed check like a failed ``assert``.
"""
from __future__ import annotations

from typing import Any, Iterable


class LabCheckFailed(AssertionError):
    """A lab check found something to fix. The message says what."""


def check(condition: Any, message: str) -> None:
    """Fail with ``message`` unless ``condition`` is true.

    The general-purpose check: write the message for the learner, saying what
    should hold and how to get there, e.g.
    ``check(len(keys) == 3, "expected 3 objects under airlines/; did the upload loop run?")``.
    """
    if not condition:
        raise LabCheckFailed(message)


def check_equal(actual: Any, expected: Any, what: str, hint: str = "") -> None:
    """Fail unless ``actual == expected``; ``what`` names the value in the message.

    >>> check_equal(2 + 2, 4, "the sum")
    >>> check_equal(5, 4, "the number of airlines")
    Traceback (most recent call last):
    ...
    localaws.grading.LabCheckFailed: the number of airlines: expected 4, got 5.
    """
    if actual != expected:
        message = f"{what}: expected {expected!r}, got {actual!r}."
        raise LabCheckFailed(f"{message} {hint}".strip())


def check_type(value: Any, expected_type: type | tuple[type, ...], what: str) -> None:
    """Fail unless ``value`` is an instance of ``expected_type``.

    Catches the classic slip of returning a string where a number, or a list
    where a DataFrame, was asked for.
    """
    if not isinstance(value, expected_type):
        names = (expected_type.__name__ if isinstance(expected_type, type)
                 else " or ".join(t.__name__ for t in expected_type))
        raise LabCheckFailed(f"{what}: expected a {names}, got a {type(value).__name__} ({value!r:.80}).")


def _error_code(exc: Exception) -> str | None:
    """The AWS error code of a botocore ``ClientError`` (``NoSuchBucket``...)."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return response.get("Error", {}).get("Code")
    return None


def list_keys(s3_client, bucket: str, prefix: str = "") -> list[str]:
    """All object keys in ``bucket`` under ``prefix``, in S3's (lexicographic) order.

    S3 returns at most 1,000 keys per ``ListObjectsV2`` call; the paginator
    follows ``ContinuationToken`` until the listing is complete. "Folders" do
    not exist in S3: a prefix is just the start of a key.
    """
    keys = []
    for page in s3_client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys.extend(obj["Key"] for obj in page.get("Contents", []))
    return keys


def check_bucket_exists(s3_client, bucket: str) -> None:
    """Fail unless ``bucket`` exists (``HeadBucket`` answers for it)."""
    try:
        s3_client.head_bucket(Bucket=bucket)
    except Exception as exc:  # botocore ClientError: 404 / 403
        code = _error_code(exc)
        if code is None:
            raise
        raise LabCheckFailed(
            f"bucket {bucket!r} does not exist (S3 answered {code}). "
            f"Create it with s3.create_bucket(Bucket={bucket!r})."
        ) from None


def check_bucket_has_objects(s3_client, bucket: str, prefix: str = "", min_count: int = 1) -> list[str]:
    """Fail unless ``bucket`` holds at least ``min_count`` objects under ``prefix``.

    Returns the keys found, so the next check can look at them.
    """
    check_bucket_exists(s3_client, bucket)
    keys = list_keys(s3_client, bucket, prefix)
    where = f"s3://{bucket}/{prefix}"
    if len(keys) < min_count:
        found = ", ".join(keys[:5]) or "nothing"
        raise LabCheckFailed(
            f"expected at least {min_count} object(s) under {where}, found {len(keys)} ({found}). "
            "Check the Bucket and Key you passed to put_object: the key must start with "
            f"{prefix!r}."
        )
    return keys


def check_columns(frame, columns: Iterable[str], what: str = "the DataFrame") -> None:
    """Fail unless ``frame`` has every column in ``columns``."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise LabCheckFailed(f"{what} lacks column(s) {missing}; it has {list(frame.columns)}.")


def check_frame_equal(actual, expected, what: str = "the result", *,
                      sort_by: list[str] | None = None, check_dtype: bool = False,
                      rtol: float = 1e-9) -> None:
    """Fail unless two pandas DataFrames hold the same table.

    Compares, in this order, so that the first difference found is the most
    useful one to report: the type, the column names, the number of rows, then
    the values (with ``pandas.testing.assert_frame_equal``). ``sort_by`` sorts
    both frames first, for results whose row order is not part of the answer
    (SQL without ORDER BY, for instance); the index is ignored. Numbers are
    compared with a relative tolerance ``rtol``; dtypes only if
    ``check_dtype`` (an int64 column read back from CSV equals the original).
    """
    import pandas as pd

    check_type(actual, pd.DataFrame, what)
    if list(actual.columns) != list(expected.columns):
        raise LabCheckFailed(f"{what}: expected columns {list(expected.columns)}, got {list(actual.columns)}.")
    if len(actual) != len(expected):
        raise LabCheckFailed(f"{what}: expected {len(expected)} rows, got {len(actual)}.")
    if sort_by:
        actual = actual.sort_values(sort_by)
        expected = expected.sort_values(sort_by)
    try:
        pd.testing.assert_frame_equal(actual.reset_index(drop=True), expected.reset_index(drop=True),
                                      check_dtype=check_dtype, rtol=rtol)
    except AssertionError as exc:
        raise LabCheckFailed(f"{what} differs from the expected table:\n{exc}") from None


def check_written_answer(answer: Any, ideas: dict[str, tuple[str, ...]], min_words: int) -> None:
    """A lab's written answer, graded lightly: a string of at least ``min_words`` words that
    touches each idea of ``ideas`` (idea -> words that show it, any one of them is enough)."""
    check(isinstance(answer, str), f"ANSWER must be a string (your text in quotes), got {type(answer).__name__}.")
    words = len(answer.split())
    check(words >= min_words, f"your answer has {words} words; write at least {min_words}: both questions, "
                              "with the reasons.")
    text = answer.lower()
    missing = [idea for idea, signs in ideas.items() if not any(sign in text for sign in signs)]
    check(not missing, "your answer does not say (in any words the check recognises): " + "; ".join(missing) + ".")


def passed(name: str) -> None:
    """Print ``✓ <name>``: the step's checks all passed."""
    print(f"✓ {name}")


# ---------------------------------------------------------------- exam-style questions
class Question:
    """One exam-style multiple-choice question, with why each choice is right or wrong.

    ``choices`` maps a letter to a choice (``{"A": "...", "B": "..."}``),
    ``answer`` is the right letter, and ``why`` explains every choice: the
    right one's reason, and for each wrong one what makes it wrong (the
    distractors of certification exams are wrong for a reason worth knowing).
    """

    def __init__(self, text: str, choices: dict[str, str], answer: str, why: dict[str, str]):
        missing = sorted(set(choices) - set(why))
        if answer not in choices or missing:
            raise ValueError(f"answer {answer!r} must be a choice, and every choice needs a why "
                             f"(missing: {missing})")
        self.text, self.choices, self.answer, self.why = text, dict(choices), answer, dict(why)


def show_quiz(questions: list[Question]) -> None:
    """Print the questions and their choices, numbered Q1, Q2..."""
    for number, q in enumerate(questions, 1):
        print(f"Q{number}. {q.text}")
        for letter, choice in q.choices.items():
            print(f"   {letter}) {choice}")


def check_quiz(questions: list[Question], answers: list[str]) -> None:
    """Check ``answers`` (one letter per question, in order) and explain every choice.

    Prints, per question, whether the answer is right, why the right choice
    is right and why each other choice is wrong; raises :class:`LabCheckFailed`
    naming the questions answered wrongly.
    """
    if len(answers) != len(questions):
        raise LabCheckFailed(f"expected {len(questions)} answers (one letter per question), got {len(answers)}.")
    wrong = []
    for number, (q, given) in enumerate(zip(questions, answers), 1):
        given = str(given).strip().upper()
        mark = "✓" if given == q.answer else "✗"
        if given != q.answer:
            wrong.append(f"Q{number} (you: {given}, answer: {q.answer})")
        print(f"{mark} Q{number}: {q.answer}) {q.why[q.answer]}")
        for letter in q.choices:
            if letter != q.answer:
                print(f"     not {letter}: {q.why[letter]}")
    if wrong:
        raise LabCheckFailed("wrong answers: " + ", ".join(wrong) + ". Read the reasons above.")
