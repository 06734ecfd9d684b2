"""A profile job's statistics: what each column holds, before you decide how to clean it.

DataBrew's profile job reads a sample of the dataset (``JobSample``: by default
the first 20,000 rows, ``CUSTOM_ROWS``; ``FULL_DATASET`` for all of them) and
writes one JSON document to the job's ``OutputLocation``. This stand-in writes
a readable subset of that document, with the same kind of names:

.. code-block:: text

    {"datasetName": "...", "jobName": "...", "runId": "...", "profiledAt": "2026-...Z",
     "sampleSize": 12,              # rows profiled
     "columnsCount": 6,
     "duplicateRowsCount": 2,       # rows that repeat an earlier row exactly
     "columns": [
       {"name": "age", "type": "int",
        "valuesCount": 11,          # values present (not missing)
        "missingValuesCount": 1, "missingValuesPercentage": 8.33,
        "distinctValuesCount": 9,   # different values present
        "uniqueValuesCount": 7,     # values that occur exactly once
        "mostCommonValues": [{"value": 34, "count": 2}, ...],     # up to 5, most frequent first
        "min": 19, "max": 71, "mean": 41.2, "median": 39.0,       # numbers only
        "standardDeviation": 14.1, "sum": 453},
       {"name": "city", "type": "string", ..., "minLength": 4, "maxLength": 13}]}

Missing means no value or an empty string. ``mean``, ``median`` and
``standardDeviation`` (the sample one, n - 1) are pandas' figures for the
values present. Ties among the most common values are broken by the value's
text, so the list is the same on every run.
"""
from __future__ import annotations

import math
import re
from datetime import date, datetime
from decimal import Decimal

import pandas as pd

from .transforms import missing, type_name, is_number, is_text

TOP_VALUES = 5
DEFAULT_SAMPLE_ROWS = 20_000      # JobSample's default: CUSTOM_ROWS, 20,000


def sample(df: pd.DataFrame, job_sample: dict | None) -> pd.DataFrame:
    """The rows a profile job reads: the first ``Size`` rows (CUSTOM_ROWS, the default) or all."""
    job_sample = job_sample or {}
    if job_sample.get("Mode") == "FULL_DATASET":
        return df
    return df.head(int(job_sample.get("Size") or DEFAULT_SAMPLE_ROWS))


def selected_columns(df: pd.DataFrame, configuration: dict | None) -> list[str]:
    """``Configuration.ProfileColumns`` (names or regular expressions); every column without it."""
    selectors = (configuration or {}).get("ProfileColumns") or []
    if not selectors:
        return list(df.columns)
    chosen = []
    for column in df.columns:
        for sel in selectors:
            if sel.get("Name") == column or (sel.get("Regex") and re.fullmatch(sel["Regex"], str(column))):
                chosen.append(column)
                break
    return chosen


def _plain(value):
    """A value as JSON holds it."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    if hasattr(value, "item"):               # numpy scalars
        value = value.item()
    if isinstance(value, (datetime, pd.Timestamp)):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return value


def column_profile(series: pd.Series, name: str) -> dict:
    """The statistics of one column (see the module docstring)."""
    absent = missing(series)
    present = series[~absent]
    counts = present.value_counts(sort=False)
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], str(kv[0])))[:TOP_VALUES]
    n = len(series)
    entry = {
        "name": name,
        "type": type_name(series),
        "valuesCount": int(len(present)),
        "missingValuesCount": int(absent.sum()),
        "missingValuesPercentage": round(100.0 * int(absent.sum()) / n, 2) if n else 0.0,
        "distinctValuesCount": int(len(counts)),
        "uniqueValuesCount": int((counts == 1).sum()),
        "mostCommonValues": [{"value": _plain(v), "count": int(c)} for v, c in ranked],
    }
    if is_number(series) and len(present):
        numbers = present.astype("float64")
        entry.update({
            "min": _plain(present.min()), "max": _plain(present.max()),
            "mean": float(numbers.mean()), "median": float(numbers.median()),
            "standardDeviation": _plain(float(numbers.std())) if len(numbers) > 1 else None,
            "sum": _plain(present.sum()),
        })
    elif is_text(series) and len(present):
        lengths = present.astype("string").str.len()
        entry.update({"minLength": int(lengths.min()), "maxLength": int(lengths.max())})
    return entry


def profile(df: pd.DataFrame, *, dataset_name: str, job_name: str, run_id: str, profiled_at: datetime,
            configuration: dict | None = None, job_sample: dict | None = None) -> dict:
    """The profile document of ``df`` (already read from the dataset)."""
    rows = sample(df, job_sample)
    columns = selected_columns(rows, configuration)
    return {
        "datasetName": dataset_name,
        "jobName": job_name,
        "runId": run_id,
        "profiledAt": profiled_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "sampleSize": int(len(rows)),
        "columnsCount": len(columns),
        "duplicateRowsCount": int(rows.duplicated(keep="first").sum()),
        "columns": [column_profile(rows[c], str(c)) for c in columns],
    }
