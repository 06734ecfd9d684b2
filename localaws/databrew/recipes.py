"""A recipe as a whole: checked when it is saved, run step by step when a job runs it.

A recipe is checked twice, as on AWS:

- its **shape** when it is saved (:func:`validate_steps`, called by CreateRecipe
  and UpdateRecipe): every operation is DataBrew's, required parameters are
  there, enumerated values are allowed, ConditionExpressions are well formed;
  otherwise ``ValidationException`` and nothing is recorded;
- its **fit to the data** when a job runs it (:func:`apply_recipe`): a column
  that does not exist, a text step on a number column... raise ``StepError``
  naming the step, and the run ends ``FAILED`` with nothing written.

**ConditionExpressions** limit a step to the rows where every condition holds
(they are ANDed): ``{"Condition": "LESS_THAN", "Value": "18", "TargetColumn":
"age"}``. ``REMOVE_VALUES`` deletes those rows (DataBrew's filter step); a
step that changes values changes them only there. ``IS`` / ``IS_NOT`` take
one value or a JSON list of values.

Operations DataBrew has but this stand-in does not run are listed in
:data:`NOT_RUN`: a recipe may hold them, a job that uses one is refused.
"""
from __future__ import annotations

import json
import re
from typing import Callable

import pandas as pd

from . import errors
from .transforms import (OPERATIONS, Params, StepError, as_text, is_date_format, is_number, missing,
                         step_columns, to_numbers)

#: Recipe operations and functions of DataBrew's reference that this stand-in does not run:
#: a recipe may hold them (CreateRecipe accepts it), but a job that uses one is refused
#: at StartJobRun as not emulated. Any other name is not a DataBrew operation at all.
NOT_RUN = frozenset("""
SORT MOVE_AFTER MOVE_BEFORE MOVE_TO_END MOVE_TO_INDEX MOVE_TO_START DUPLICATE JSON_TO_STRUCTS
TO_BOOLEAN_COLUMN TO_DOUBLE_COLUMN TO_NUMBER_COLUMN TO_STRING_COLUMN
ADD_DOUBLE_QUOTES ADD_PREFIX ADD_SINGLE_QUOTES ADD_SUFFIX EXTRACT_BETWEEN_DELIMITERS
EXTRACT_BETWEEN_POSITIONS EXTRACT_PATTERN EXTRACT_VALUES FORMAT_PHONE_NUMBER PAD_TEXT
REPLACE_BETWEEN_DELIMITERS REPLACE_BETWEEN_POSITIONS REPLACE_TEXT REPLACE_PATTERN
FILL_WITH_EMPTY FILL_WITH_NULL FILL_WITH_LAST_VALID FILL_WITH_MOST_FREQUENT FILL_WITH_SUM
REMOVE_INVALID REPLACE_WITH_AVERAGE REPLACE_WITH_CUSTOM REPLACE_WITH_EMPTY REPLACE_WITH_LAST_VALID
REPLACE_WITH_MEDIAN REPLACE_WITH_MODE REPLACE_WITH_MOST_FREQUENT REPLACE_WITH_NULL REPLACE_WITH_SUM
FLAG_DUPLICATE_ROWS FLAG_DUPLICATES_IN_COLUMN REMOVE_OUTLIERS FLAG_OUTLIERS REPLACE_OUTLIERS
RESCALE_OUTLIERS_WITH_Z_SCORE MERGE SPLIT_COLUMN_BETWEEN_DELIMITER SPLIT_COLUMN_BETWEEN_POSITIONS
SPLIT_COLUMN_FROM_END SPLIT_COLUMN_FROM_START SPLIT_COLUMN_MULTIPLE_DELIMITER SPLIT_COLUMN_WITH_INTERVALS
BOOLEAN_OPERATION CASE_OPERATION FLAG_COLUMN_FROM_NULL FLAG_COLUMN_FROM_PATTERN GROUP_BY JOIN UNION
PIVOT UNPIVOT TRANSPOSE NEST_TO_ARRAY NEST_TO_MAP NEST_TO_STRUCT UNNEST_ARRAY UNNEST_MAP UNNEST_STRUCT
ONE_HOT_ENCODING CATEGORICAL_MAPPING TOKENIZATION SCALE BINARIZATION BUCKETIZATION SKEWNESS
MASK_CUSTOM MASK_DATE MASK_DELIMITER MASK_RANGE CRYPTOGRAPHIC_HASH ENCRYPT DECRYPT SHUFFLE_ROWS
REPLACE_WITH_RANDOM_BETWEEN REPLACE_WITH_RANDOM_DATE_BETWEEN
DATE_ADD DATE_DIFF DAY MONTH YEAR HOUR MINUTE SECOND NOW TODAY WEEKDAY WEEK_NUMBER UNIX_TIME
UNIX_TIME_FORMAT CONVERT_TIMEZONE DATE DATE_TIME TIME MONTH_NAME QUARTER
CHAR ENDS_WITH EXACT FIND LEFT LEN MID PROPER REMOVE_SYMBOLS REPEAT REPLACE RIGHT SEARCH
STARTS_WITH SUBSTITUTE UNICODE
ABSOLUTE ADD CEILING DEGREES DIVIDE EXPONENT FLOOR IS_EVEN IS_ODD LN LOG MOD MULTIPLY NEGATE PI
POWER RADIANS RANDOM RANDOM_BETWEEN ROUND SIGN SQUARE_ROOT SUBTRACT
ANY AVERAGE COUNT COUNT_DISTINCT KTH_LARGEST KTH_LARGEST_UNIQUE KTH_SMALLEST KTH_SMALLEST_UNIQUE
MAX MEDIAN MIN MODE STANDARD_DEVIATION SUM VARIANCE COALESCE IF FILL NEXT PREV
ROLLING_AVERAGE ROLLING_MAX ROLLING_MIN ROLLING_SUM ROLLING_STANDARD_DEVIATION
""".split())


# ------------------------------------------------------------------ conditions
def _compare(op: Callable):
    def test(series: pd.Series, value: str) -> pd.Series:
        return (op(to_numbers(series), float(value))).fillna(False).astype(bool)
    return test


def _values(value: str) -> list[str]:
    """A condition's Value: one value, or a JSON list of values."""
    try:
        parsed = json.loads(value)
    except (TypeError, ValueError):
        return [value]
    return [str(v) for v in parsed] if isinstance(parsed, list) else [value]


def _is(series: pd.Series, value: str) -> pd.Series:
    wanted = _values(value)
    if is_number(series):
        numbers = [float(v) for v in wanted if _numeric(v)]
        return series.astype("Float64").isin(numbers).fillna(False).astype(bool)
    return series.map(lambda v: not pd.isna(v) and as_text(v) in wanted).astype(bool)


def _text_test(test: Callable[[str, str], bool]):
    def run(series: pd.Series, value: str) -> pd.Series:
        return series.map(lambda v: not pd.isna(v) and test(as_text(v), value)).astype(bool)
    return run


def _numeric(value: str) -> bool:
    try:
        float(value)
        return True
    except (TypeError, ValueError):
        return False


#: ConditionExpression conditions: (test, whether it needs a Value, whether the Value is a number).
CONDITIONS: dict[str, tuple[Callable, bool, bool]] = {
    "IS_MISSING": (lambda s, v: missing(s), False, False),
    "IS_NOT_MISSING": (lambda s, v: ~missing(s), False, False),
    "IS": (_is, True, False),
    "IS_NOT": (lambda s, v: ~_is(s, v), True, False),
    "CONTAINS": (_text_test(lambda t, v: v in t), True, False),
    "NOT_CONTAINS": (_text_test(lambda t, v: v not in t), True, False),
    "STARTS_WITH": (_text_test(str.startswith), True, False),
    "ENDS_WITH": (_text_test(str.endswith), True, False),
    "LESS_THAN": (_compare(lambda a, b: a < b), True, True),
    "LESS_THAN_EQUAL": (_compare(lambda a, b: a <= b), True, True),
    "GREATER_THAN": (_compare(lambda a, b: a > b), True, True),
    "GREATER_THAN_EQUAL": (_compare(lambda a, b: a >= b), True, True),
}


def matching_rows(df: pd.DataFrame, conditions: list[dict]) -> pd.Series:
    """The rows every condition holds for (DataBrew ANDs a step's ConditionExpressions)."""
    rows = pd.Series(True, index=df.index)
    for cond in conditions:
        column = cond.get("TargetColumn")
        if column not in df.columns:
            raise StepError(f"ConditionExpression {cond.get('Condition')} names column {column!r}, "
                            f"which does not exist; columns: {', '.join(map(str, df.columns))}")
        test = CONDITIONS[cond["Condition"]][0]
        rows &= test(df[column], cond.get("Value"))
    return rows


# ------------------------------------------------------------------ checking and running
def validate_steps(steps) -> None:
    """Check a recipe's steps as CreateRecipe / UpdateRecipe do; ``ValidationException`` if one is wrong."""
    if not isinstance(steps, list):
        raise errors.ValidationException("Steps must be a list of recipe steps")
    for number, step in enumerate(steps, 1):
        where = f"Recipe step {number}"
        action = (step or {}).get("Action") or {}
        name = action.get("Operation")
        if not name or not re.fullmatch(r"[A-Z_]+", name):
            raise errors.ValidationException(f"{where}: Operation must match ^[A-Z_]+$, got {name!r}")
        conditions = step.get("ConditionExpressions") or []
        for cond in conditions:
            kind = cond.get("Condition")
            if kind not in CONDITIONS:
                raise errors.ValidationException(
                    f"{where}: unknown Condition {kind!r}; conditions: {', '.join(CONDITIONS)}")
            if not cond.get("TargetColumn"):
                raise errors.ValidationException(f"{where}: condition {kind} needs a TargetColumn")
            _, needs_value, numeric = CONDITIONS[kind]
            if needs_value and cond.get("Value") in (None, ""):
                raise errors.ValidationException(f"{where}: condition {kind} needs a Value")
            if numeric and not _numeric(cond.get("Value")):
                raise errors.ValidationException(f"{where}: condition {kind} needs a number, "
                                                 f"got {cond.get('Value')!r}")
        if name in NOT_RUN:
            continue
        op = OPERATIONS.get(name)
        if op is None:
            raise errors.ValidationException(f"{where}: {name} is not a DataBrew recipe operation")
        params = Params(action.get("Parameters"))
        for required in op.required:
            if required not in params:
                raise errors.ValidationException(f"{where}: {name} needs the parameter {required}")
        if op.one_of and sum(p in params for p in op.one_of) != 1:
            raise errors.ValidationException(f"{where}: {name} needs exactly one of {', '.join(op.one_of)}")
        for param, allowed in op.choices.items():
            if param in params and params.get(param) not in allowed:
                raise errors.ValidationException(f"{where}: {name} parameter {param} must be one of "
                                                 f"{', '.join(allowed)}, got {params.get(param)!r}")
        if op.conditions is None and conditions:
            raise errors.ValidationException(f"{where}: {name} takes no ConditionExpressions here")
        if op.conditions == "required" and not conditions:
            raise errors.ValidationException(f"{where}: {name} needs ConditionExpressions (the rows to remove)")
        _validate_special(where, name, params)


def _validate_special(where: str, name: str, p: Params) -> None:
    """Parameter values only some operations have."""
    if name == "SPLIT_COLUMN_SINGLE_DELIMITER":
        try:
            limit = p.int("limit", 1)
        except ValueError:
            limit = 0
        if not 1 <= limit <= 20:
            raise errors.ValidationException(f"{where}: limit must be a number from 1 to 20")
    if name in ("FORMAT_DATE", "DATE_FORMAT"):
        fmt = p.get("targetDateFormat") or p.get("dateTimeFormat") or "yyyy"
        if not is_date_format(fmt):
            raise errors.ValidationException(f"{where}: {fmt!r} is not a date format (use yyyy, mm, dd, "
                                             "month, HH, MM, SS)")
    if name == "DELETE" and "sourceColumns" in p:
        try:
            p.columns("sourceColumns")
        except ValueError:
            raise errors.ValidationException(f"{where}: sourceColumns must be a JSON list of column names") \
                from None


def unsupported(steps) -> list[str]:
    """The operations of ``steps`` that are DataBrew's but not run by this stand-in."""
    return sorted({(s.get("Action") or {}).get("Operation") for s in steps} & NOT_RUN)


def apply_step(df: pd.DataFrame, step: dict, number: int) -> pd.DataFrame:
    """Run one step; :class:`StepError` (naming the step) if it does not fit the data."""
    action = step.get("Action") or {}
    name = action.get("Operation")
    op = OPERATIONS[name]
    p = Params(action.get("Parameters"))
    try:
        absent = [c for c in step_columns(name, p) if c not in df.columns]
        if absent:
            raise StepError(f"column {absent[0]!r} does not exist; columns: {', '.join(map(str, df.columns))}")
        conditions = step.get("ConditionExpressions") or []
        if op.conditions == "required":
            result = op.fn(df, p, matching_rows(df, conditions))
        elif conditions:
            rows = matching_rows(df, conditions)
            result = op.fn(df, p)
            for column in result.columns:      # the step's changes only where its conditions hold
                before = df[column] if column in df.columns else pd.Series(pd.NA, index=df.index)
                result[column] = result[column].where(rows, before)
        else:
            result = op.fn(df, p)
    except StepError as exc:
        raise StepError(f"Recipe step {number} ({name}): {exc}") from None
    return result.reset_index(drop=True)


def apply_recipe(df: pd.DataFrame, steps: list[dict], before_step: Callable[[int, str], None] | None = None,
                 log: Callable[[str], None] | None = None) -> pd.DataFrame:
    """Run every step of a recipe in order; ``before_step(number, operation)`` is called first
    (a stop request raises there) and ``log`` gets one line per step."""
    for number, step in enumerate(steps, 1):
        name = (step.get("Action") or {}).get("Operation")
        if before_step is not None:
            before_step(number, name)
        rows_before = len(df)
        df = apply_step(df, step, number)
        if log is not None:
            log(f"Step {number} {name}: {rows_before} -> {len(df)} rows, {len(df.columns)} columns")
    return df

