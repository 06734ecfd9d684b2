"""Recipe steps: one small function per DataBrew recipe operation, by DataBrew's own names.

A DataBrew *recipe* is a list of steps. Each step names one operation and its
parameters (every parameter value is a string, as in the API's
``Parameters`` map), and optionally conditions that choose the rows it acts on::

    {"Action": {"Operation": "FILL_WITH_CUSTOM",
                "Parameters": {"sourceColumn": "city", "value": "Unknown"}}}
    {"Action": {"Operation": "REMOVE_VALUES", "Parameters": {"sourceColumn": "age"}},
     "ConditionExpressions": [{"Condition": "LESS_THAN", "Value": "18", "TargetColumn": "age"}]}

The steps run in order, each on the table the previous one left: rows in,
rows out, in a stable order (a step never reorders rows). Operation and
parameter names follow the recipe step reference,
https://docs.aws.amazon.com/databrew/latest/dg/recipe-actions-reference.html:

=============================  =======================================================
cleaning                       DELETE_DUPLICATE_ROWS, REMOVE_DUPLICATES, REMOVE_MISSING,
                               FILL_WITH_CUSTOM / _AVERAGE / _MEDIAN / _MODE
text                           UPPER_CASE, LOWER_CASE, CAPITAL_CASE, SENTENCE_CASE,
                               REMOVE_COMBINED (whitespace, quotes, punctuation...),
                               and the functions UPPER, LOWER, TRIM (a new column)
structure                      SPLIT_COLUMN_SINGLE_DELIMITER, RENAME, DELETE,
                               CHANGE_DATA_TYPE
dates                          FORMAT_DATE (in place), DATE_FORMAT (a new column)
filter                         REMOVE_VALUES with ConditionExpressions
=============================  =======================================================

Each operation is registered with what it needs (:class:`Operation`:
required parameters, allowed values, whether ConditionExpressions may limit
it); ``recipes.py`` checks whole recipes against this catalogue and runs them
step by step. A step that does not fit the data raises :class:`StepError`,
and the job run ends ``FAILED`` with that message.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Callable

import pandas as pd

from .engine import RunFailed


class StepError(RunFailed):
    """A recipe step that does not fit the data (a column that does not exist, text steps on numbers)."""


# ------------------------------------------------------------------ parameters
class Params:
    """A step's ``Parameters``: strings, read as the type each operation needs."""

    def __init__(self, raw: dict | None):
        self.raw = {k: v for k, v in (raw or {}).items()}

    def __contains__(self, name: str) -> bool:
        return self.raw.get(name) not in (None, "")

    def get(self, name: str, default: str | None = None) -> str | None:
        return self.raw.get(name, default)

    def flag(self, name: str) -> bool:
        return str(self.raw.get(name, "false")).strip().lower() == "true"

    def int(self, name: str, default: int) -> int:
        return int(self.raw.get(name, default))

    def columns(self, name: str) -> list[str]:
        """A parameter holding a JSON list of column names (``sourceColumns``)."""
        value = self.raw.get(name)
        if value in (None, ""):
            return []
        names = json.loads(value) if isinstance(value, str) else value
        return [names] if isinstance(names, str) else list(names)


# ------------------------------------------------------------------ the catalogue
@dataclass(frozen=True)
class Operation:
    """How one DataBrew operation runs and what it needs.

    ``conditions``: ``"values"`` (the step may be limited to the rows its
    ConditionExpressions match), ``"required"`` (a filter: it needs them) or
    ``None`` (it changes the table's shape and takes none here).
    """
    name: str
    fn: Callable
    required: tuple[str, ...] = ()
    one_of: tuple[str, ...] = ()               # exactly one of these (sourceColumn or value)
    choices: dict = field(default_factory=dict)  # parameter -> allowed values
    conditions: str | None = "values"


OPERATIONS: dict[str, Operation] = {}


def operation(name: str, required: tuple[str, ...] = ("sourceColumn",), **kwargs):
    """Register the function below as DataBrew operation ``name``."""
    def mark(fn):
        OPERATIONS[name] = Operation(name, fn, required, **kwargs)
        return fn
    return mark


# ------------------------------------------------------------------ helpers on columns
def missing(series: pd.Series) -> pd.Series:
    """Which values are missing: no value at all, or an empty string (as DataBrew counts them)."""
    empty = series.isna()
    if is_text(series):
        empty = empty | (series.astype("string") == "").fillna(False)
    return empty.astype(bool)


def is_text(series: pd.Series) -> bool:
    return pd.api.types.is_string_dtype(series) or series.dtype == object and \
        all(isinstance(v, str) for v in series.dropna().head(50))


def is_number(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def type_name(series: pd.Series) -> str:
    """DataBrew's name for a column's type (what a profile reports)."""
    if pd.api.types.is_bool_dtype(series):
        return "boolean"
    if pd.api.types.is_integer_dtype(series):
        return "int"
    if pd.api.types.is_float_dtype(series):
        return "double"
    if pd.api.types.is_datetime64_any_dtype(series):
        return "timestamp"
    sample = series.dropna().head(50)
    if len(sample) and all(isinstance(v, date) and not isinstance(v, datetime) for v in sample):
        return "date"
    if len(sample) and all(isinstance(v, Decimal) for v in sample):
        return "decimal"
    return "string"


def _need_text(op: str, df: pd.DataFrame, column: str) -> pd.Series:
    series = df[column]
    if not is_text(series) and series.notna().any():
        raise StepError(f"{op} works on string columns; column {column!r} is {type_name(series)}")
    return series.astype("string")


def _need_number(op: str, df: pd.DataFrame, column: str) -> pd.Series:
    series = df[column]
    if not is_number(series):
        raise StepError(f"{op} needs a numeric column; column {column!r} is {type_name(series)}")
    return series


def _insert_after(df: pd.DataFrame, anchor: str | None, name: str, values) -> pd.DataFrame:
    """``df`` with a new column ``name`` right after ``anchor`` (at the end without one)."""
    if name in df.columns:
        raise StepError(f"Column {name!r} already exists")
    out = df.copy()
    position = out.columns.get_loc(anchor) + 1 if anchor is not None else len(out.columns)
    out.insert(position, name, values)
    return out


def _fill(df: pd.DataFrame, column: str, value) -> pd.DataFrame:
    """Put ``value`` where ``column`` is missing; an integer column becomes double for a fraction."""
    out = df.copy()
    series = out[column]
    if pd.api.types.is_integer_dtype(series) and isinstance(value, float) and not value.is_integer():
        series = series.astype("Float64")
    elif pd.api.types.is_integer_dtype(series) and isinstance(value, float):
        value = int(value)
    out[column] = series.mask(missing(series), value)
    return out


# ------------------------------------------------------------------ cleaning
@operation("DELETE_DUPLICATE_ROWS", required=(), conditions=None)
def delete_duplicate_rows(df, p):
    """Delete every row that is an exact copy of an earlier row; the first one stays."""
    return df.drop_duplicates(keep="first")


@operation("REMOVE_DUPLICATES", conditions=None)
def remove_duplicates(df, p):
    """Delete a row when its ``sourceColumn`` value already appeared in an earlier row."""
    return df.drop_duplicates(subset=[p.get("sourceColumn")], keep="first")


@operation("REMOVE_MISSING", conditions=None)
def remove_missing(df, p):
    """Keep only the rows where ``sourceColumn`` has a value."""
    return df[~missing(df[p.get("sourceColumn")])]


@operation("REMOVE_VALUES", conditions="required")
def remove_values(df, p, rows):
    """Delete the rows its ConditionExpressions match (DataBrew's filter step)."""
    return df[~rows]


@operation("FILL_WITH_CUSTOM", required=("sourceColumn", "value"),
           choices={"columnDataType": ("date", "number", "boolean", "unsupported", "string", "timestamp")})
def fill_with_custom(df, p):
    """Fill missing values of ``sourceColumn`` with ``value`` (read as a number in a number column)."""
    column, value = p.get("sourceColumn"), p.get("value")
    if is_number(df[column]):
        try:
            value = float(value)
        except ValueError:
            raise StepError(f"FILL_WITH_CUSTOM: {value!r} is not a number, and column {column!r} "
                            f"is {type_name(df[column])}") from None
    return _fill(df, column, value)


@operation("FILL_WITH_AVERAGE")
def fill_with_average(df, p):
    """Fill missing values with the mean of the column's values."""
    series = _need_number("FILL_WITH_AVERAGE", df, p.get("sourceColumn"))
    return _fill(df, p.get("sourceColumn"), float(series.mean()))


@operation("FILL_WITH_MEDIAN")
def fill_with_median(df, p):
    """Fill missing values with the median of the column's values."""
    series = _need_number("FILL_WITH_MEDIAN", df, p.get("sourceColumn"))
    return _fill(df, p.get("sourceColumn"), float(series.median()))


@operation("FILL_WITH_MODE", choices={"modeType": ("MINIMUM", "MAXIMUM", "AVERAGE", "NONE")})
def fill_with_mode(df, p):
    """Fill missing values with the most frequent value; ``modeType`` breaks ties:
    MINIMUM (the default here) or MAXIMUM of the tied values, their AVERAGE, or NONE
    (the tied value that appears first)."""
    column = p.get("sourceColumn")
    values = df[column][~missing(df[column])]
    if values.empty:
        return df
    counts = values.value_counts(sort=False)
    tied = [v for v in values.drop_duplicates() if counts[v] == counts.max()]   # in order of appearance
    mode_type = p.get("modeType") or "MINIMUM"
    if mode_type == "AVERAGE":
        if not is_number(df[column]):
            raise StepError(f"FILL_WITH_MODE modeType AVERAGE needs a numeric column; {column!r} "
                            f"is {type_name(df[column])}")
        value = sum(float(v) for v in tied) / len(tied)
    else:
        value = {"MINIMUM": min(tied), "MAXIMUM": max(tied), "NONE": tied[0]}[mode_type]
    return _fill(df, column, float(value) if is_number(df[column]) else value)


# ------------------------------------------------------------------ text
def _case(name: str, change: Callable[[str], str], doc: str):
    @operation(name)
    def fn(df, p):
        column = p.get("sourceColumn")
        out = df.copy()
        out[column] = _need_text(name, df, column).map(change, na_action="ignore").astype("string")
        return out
    fn.__doc__ = doc
    return fn


def _capital(text: str) -> str:
    return re.sub(r"\S+", lambda m: m[0][:1].upper() + m[0][1:].lower(), text)


def _sentence(text: str) -> str:
    lowered = text.lower()
    return re.sub(r"(^\s*|[.!?]\s+)(\w)", lambda m: m[1] + m[2].upper(), lowered)


upper_case = _case("UPPER_CASE", str.upper, "THE QUICK BROWN FOX.")
lower_case = _case("LOWER_CASE", str.lower, "the quick brown fox.")
capital_case = _case("CAPITAL_CASE", _capital, "The Quick Brown Fox: each word's first letter, the rest lower.")
sentence_case = _case("SENTENCE_CASE", _sentence, "The quick brown fox. Jumped over: each sentence's first letter.")

PUNCTUATION = ".!,?"
QUOTES = "'\""
SPECIAL = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"


@operation("REMOVE_COMBINED")
def remove_combined(df, p):
    """Remove characters from ``sourceColumn`` as its true/false flags say (whitespace at the
    ends or everywhere, quotes, punctuation, letters, digits, special or custom characters)."""
    column = p.get("sourceColumn")

    def clean(text: str) -> str:
        if p.flag("removeCustomValue") and p.get("customValue"):
            text = text.replace(p.get("customValue"), "")
        if p.flag("removeCustomCharacters") and p.get("customCharacters"):
            text = "".join(c for c in text if c not in p.get("customCharacters"))
        for flag, chars in (("removeAllPunctuation", PUNCTUATION), ("removeAllQuotes", QUOTES),
                            ("removeSpecialCharacters", SPECIAL)):
            if p.flag(flag):
                text = "".join(c for c in text if c not in chars)
        if p.flag("removeLetters"):
            text = re.sub(r"[A-Za-z]", "", text)
        if p.flag("removeNumbers"):
            text = re.sub(r"[0-9]", "", text)
        if p.flag("removeAllWhitespace"):
            text = re.sub(r"\s", "", text)
        if p.flag("collapseConsecutiveWhitespace"):
            text = re.sub(r"\s{2,}", " ", text)
        if p.flag("removeLeadingAndTrailingPunctuation"):
            text = text.strip(PUNCTUATION)
        if p.flag("removeLeadingAndTrailingQuotes"):
            text = text.strip(QUOTES)
        if p.flag("removeLeadingAndTrailingWhitespace"):
            text = text.strip()
        return text

    out = df.copy()
    out[column] = _need_text("REMOVE_COMBINED", df, column).map(clean, na_action="ignore").astype("string")
    return out


def _function(name: str, change: Callable[[str], str], doc: str):
    """A DataBrew text *function*: a new ``targetColumn`` from ``sourceColumn`` (or a constant ``value``)."""
    @operation(name, required=("targetColumn",), one_of=("sourceColumn", "value"))
    def fn(df, p):
        if "sourceColumn" in p:
            source = p.get("sourceColumn")
            values = _need_text(name, df, source).map(change, na_action="ignore").astype("string")
        else:
            source, values = None, pd.Series([change(p.get("value"))] * len(df), index=df.index, dtype="string")
        return _insert_after(df, source, p.get("targetColumn"), values)
    fn.__doc__ = doc
    return fn


upper = _function("UPPER", str.upper, "targetColumn = the text in upper case.")
lower = _function("LOWER", str.lower, "targetColumn = the text in lower case.")
trim = _function("TRIM", str.strip, "targetColumn = the text without leading and trailing white space.")


# ------------------------------------------------------------------ structure
@operation("SPLIT_COLUMN_SINGLE_DELIMITER", required=("sourceColumn", "pattern"), conditions=None)
def split_column_single_delimiter(df, p):
    """Split ``sourceColumn`` at ``pattern`` at most ``limit`` times (1 to 20, default 1) into the
    new columns ``<sourceColumn>_1``, ``_2``...; the source column is removed. With
    ``includeInSplit`` true each piece keeps the delimiter that ended it."""
    column, pattern, limit = p.get("sourceColumn"), p.get("pattern"), p.int("limit", 1)
    keep = p.flag("includeInSplit")
    texts = _need_text("SPLIT_COLUMN_SINGLE_DELIMITER", df, column)

    def pieces(text):
        if text is pd.NA:
            return []
        parts = text.split(pattern, limit)
        return [part + pattern for part in parts[:-1]] + parts[-1:] if keep else parts

    split = [pieces(t) for t in texts]
    width = max([len(parts) for parts in split] + [1])
    out = df.copy()
    position = out.columns.get_loc(column)
    out = out.drop(columns=[column])
    for k in range(width):
        name = f"{column}_{k + 1}"
        if name in out.columns:
            raise StepError(f"SPLIT_COLUMN_SINGLE_DELIMITER would create column {name!r}, which exists")
        values = pd.Series([parts[k] if k < len(parts) else pd.NA for parts in split],
                           index=df.index, dtype="string")
        out.insert(position + k, name, values)
    return out


@operation("RENAME", required=("sourceColumn", "targetColumn"), conditions=None)
def rename(df, p):
    """Give ``sourceColumn`` the name ``targetColumn`` (same place, same data)."""
    if p.get("targetColumn") in df.columns:
        raise StepError(f"RENAME: column {p.get('targetColumn')!r} already exists")
    return df.rename(columns={p.get("sourceColumn"): p.get("targetColumn")})


@operation("DELETE", required=(), one_of=("sourceColumn", "sourceColumns"), conditions=None)
def delete(df, p):
    """Delete ``sourceColumn`` (or every column of the JSON list ``sourceColumns``)."""
    return df.drop(columns=step_columns("DELETE", p))


INTEGER_TYPES = {"byte": ("Int8", 2 ** 7), "short": ("Int16", 2 ** 15), "int": ("Int32", 2 ** 31),
                 "long": ("Int64", 2 ** 63)}
DATA_TYPES = (*INTEGER_TYPES, "float", "double", "decimal", "string", "boolean", "timestamp", "date")


@operation("CHANGE_DATA_TYPE", required=("sourceColumn", "columnDataType"), conditions=None,
           choices={"columnDataType": DATA_TYPES})
def change_data_type(df, p):
    """Change ``sourceColumn`` to ``columnDataType``; a value that does not convert becomes
    missing (NULL), e.g. "ABC" as an int."""
    out = df.copy()
    out[p.get("sourceColumn")] = convert(df[p.get("sourceColumn")], p.get("columnDataType"))
    return out


def convert(series: pd.Series, kind: str) -> pd.Series:
    """``series`` as DataBrew type ``kind`` (see CHANGE_DATA_TYPE)."""
    if kind in INTEGER_TYPES:
        dtype, bound = INTEGER_TYPES[kind]
        numbers = to_numbers(series).apply(lambda v: math.trunc(v) if pd.notna(v) else v)
        numbers = numbers.where((numbers >= -bound) & (numbers < bound))
        return numbers.astype("Float64").astype(dtype)
    if kind in ("float", "double"):
        return to_numbers(series).astype("Float32" if kind == "float" else "Float64")
    if kind == "decimal":
        return pd.Series([_decimal(v) for v in series], index=series.index, dtype=object)
    if kind == "string":
        return pd.Series([None if pd.isna(v) else as_text(v) for v in series], index=series.index, dtype="string")
    if kind == "boolean":
        words = {"true": True, "yes": True, "false": False, "no": False}
        return pd.Series([None if pd.isna(v) else words.get(as_text(v).strip().lower()) for v in series],
                         index=series.index, dtype="boolean")
    moments = parse_dates(series)
    if kind == "timestamp":
        return moments
    return pd.Series([None if pd.isna(m) else m.date() for m in moments], index=series.index, dtype=object)


def to_numbers(series: pd.Series) -> pd.Series:
    if is_number(series):
        return series.astype("Float64")
    return pd.to_numeric(series.astype("string").str.strip(), errors="coerce").astype("Float64")


def _decimal(value):
    if pd.isna(value):
        return None
    try:
        number = Decimal(as_text(value).strip())
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def as_text(value) -> str:
    """A value as text, the way DataBrew shows it (true/false, ISO dates, 30 not 30.0 for ints)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (datetime, pd.Timestamp)):
        return value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


# ------------------------------------------------------------------ dates
#: Input formats a date string is read in, tried in this order; a column is read with the
#: first format that fits every value (US month-first when a date is ambiguous).
DATE_INPUTS = ("%Y-%m-%d", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%SZ", "%Y/%m/%d",
               "%m/%d/%Y", "%m-%d-%Y", "%m/%d/%y", "%d %B %Y", "%d %b %Y", "%B %d, %Y", "%b %d, %Y",
               "%B %d %Y", "%b %d %Y", "%d.%m.%Y", "%Y%m%d")
DATE_TOKENS = {"yyyy": "%Y", "yy": "%y", "month": "%B", "mm": "%m", "dd": "%d", "HH": "%H", "MM": "%M",
               "SS": "%S"}
_TOKEN = re.compile("|".join(sorted(DATE_TOKENS, key=len, reverse=True)))


def strftime_pattern(databrew_format: str) -> str:
    """DataBrew's date format (``mm/dd/yyyy``, ``dd month yyyy``, ``yyyy-mm-dd HH:MM:SS``) for strftime:
    ``mm`` is the month and ``MM`` the minutes; anything else is copied as it is."""
    out, at = [], 0
    for m in _TOKEN.finditer(databrew_format):
        out.append(databrew_format[at:m.start()].replace("%", "%%"))
        out.append(DATE_TOKENS[m[0]])
        at = m.end()
    out.append(databrew_format[at:].replace("%", "%%"))
    return "".join(out)


def is_date_format(text: str) -> bool:
    """Whether ``text`` holds at least one of DataBrew's date tokens."""
    return bool(_TOKEN.search(text))


def parse_dates(series: pd.Series) -> pd.Series:
    """Dates and times in ``series`` (text, dates or timestamps); NaT where a value is not a date."""
    if pd.api.types.is_datetime64_any_dtype(series):
        return series
    values = [None if pd.isna(v) else v for v in series]
    texts = [v for v in values if isinstance(v, str) and v.strip()]

    def read(text: str, fmt: str):
        try:
            return datetime.strptime(text.strip(), fmt)
        except ValueError:
            return None

    column_format = next((f for f in DATE_INPUTS if all(read(t, f) for t in texts)), None) if texts else None
    parsed = []
    for v in values:
        if isinstance(v, datetime):
            parsed.append(v)
        elif isinstance(v, date):
            parsed.append(datetime(v.year, v.month, v.day))
        elif isinstance(v, str) and v.strip():
            formats = [column_format] if column_format else DATE_INPUTS
            parsed.append(next((d for d in (read(v, f) for f in formats) if d), None))
        else:
            parsed.append(None)
    return pd.Series(pd.to_datetime(parsed), index=series.index)


def _formatted(series: pd.Series, databrew_format: str) -> pd.Series:
    pattern = strftime_pattern(databrew_format)
    return pd.Series([None if pd.isna(m) else m.strftime(pattern) for m in parse_dates(series)],
                     index=series.index, dtype="string")


@operation("FORMAT_DATE", required=("sourceColumn", "targetDateFormat"))
def format_date(df, p):
    """Rewrite the dates of ``sourceColumn`` in ``targetDateFormat`` (``mm/dd/yyyy``,
    ``mm-dd-yyyy``, ``dd month yyyy``, ``month yyyy``, ``dd month``); a value that is not
    a date becomes missing."""
    out = df.copy()
    out[p.get("sourceColumn")] = _formatted(df[p.get("sourceColumn")], p.get("targetDateFormat"))
    return out


@operation("DATE_FORMAT", required=("targetColumn",), one_of=("sourceColumn", "value"))
def date_format(df, p):
    """A new ``targetColumn``: the date in ``sourceColumn`` (or ``value``) written in
    ``dateTimeFormat`` (default ``yyyy-mm-dd HH:MM:SS``)."""
    fmt = p.get("dateTimeFormat") or "yyyy-mm-dd HH:MM:SS"
    if "sourceColumn" in p:
        return _insert_after(df, p.get("sourceColumn"), p.get("targetColumn"),
                             _formatted(df[p.get("sourceColumn")], fmt))
    constant = pd.Series([p.get("value")] * len(df), index=df.index, dtype="string")
    return _insert_after(df, None, p.get("targetColumn"), _formatted(constant, fmt))


# ------------------------------------------------------------------ naming columns
def step_columns(op: str, p: Params) -> list[str]:
    """The existing columns a step names (``sourceColumn`` / ``sourceColumns``)."""
    names = p.columns("sourceColumns") if "sourceColumns" in p else []
    if "sourceColumn" in p:
        names = [p.get("sourceColumn"), *names]
    return names
