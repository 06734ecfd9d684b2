"""What a benchmark measured, as one JSON line per figure, for ``benchmarks/run_all.py``.

Each benchmark prints its figures for a person to read. It also calls
:func:`record` where it computes a ratio (A / B, both measured side by side
in the same run, so both saw the same machine), and for a few absolute
figures. ``record`` appends one JSON line to the file named by the
environment variable ``LOCALAWS_BENCH_RESULTS``, and does nothing when the
variable is not set: run by hand, a benchmark behaves as it always did.

A goal is written as a comparison with a number, the way the scripts state
it: ``"<= 1.5"``, ``">= 20"``, ``"< 1"``, ``"== 0"``. Its number is in the
figure's unit (a ratio, or ``ms``, ``s``...). The line says whether the goal
was met; a missed goal is a figure to look at, never a failure: speed on a
shared laptop is not pass/fail.

Standard library only, so any script can import it.
"""
from __future__ import annotations

import json
import math
import operator
import os
import re

ENV = "LOCALAWS_BENCH_RESULTS"
RATIO = "ratio"

_COMPARISONS = {"<=": operator.le, "<": operator.lt, ">=": operator.ge, ">": operator.gt, "==": operator.eq}
_GOAL = re.compile(r"\s*(<=|>=|==|<|>)\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*")


def parse_goal(goal: str) -> tuple[str, float]:
    """``"<= 1.5"`` -> ``("<=", 1.5)``; anything else is a ValueError (a typo in a benchmark)."""
    found = _GOAL.fullmatch(goal)
    if not found:
        raise ValueError(f"a goal is a comparison and a number, e.g. '<= 1.5' or '>= 20'; got {goal!r}")
    return found.group(1), float(found.group(2))


def goal_met(value: float, goal: str | None) -> bool | None:
    """Whether ``value`` meets ``goal``; None when there is no goal or the value is not a number."""
    if goal is None:
        return None
    sign, number = parse_goal(goal)
    if math.isnan(value):
        return None
    return _COMPARISONS[sign](value, number)


def record(benchmark: str, measure: str, value: float, goal: str | None = None,
           unit: str = RATIO, note: str = "") -> dict:
    """Append one figure to ``$LOCALAWS_BENCH_RESULTS`` (if set) and return it as a dict.

    - ``benchmark``: the script's name without ``.py`` (``"athena_bench"``);
    - ``measure``: what was measured, A / B for a ratio (``"aggregate: Athena API / DuckDB direct"``);
    - ``value``: the ratio, or the absolute figure in ``unit``;
    - ``goal``: the script's stated goal, e.g. ``"<= 1.5"`` (None when it states none);
    - ``unit``: ``"ratio"`` (the default), else the unit of an absolute figure (``"s"``, ``"ms"``, ``"MiB"``);
    - ``note``: the figures behind a ratio, or what to compare it with (``"0.121 s / 0.088 s"``).
    """
    value = float(value)
    if goal is not None:
        parse_goal(goal)                    # a malformed goal fails here, before anything is written
    entry = {"benchmark": benchmark, "measure": measure, "value": value, "unit": unit,
             "goal": goal, "met": goal_met(value, goal), "note": note}
    path = os.environ.get(ENV)
    if path:
        with open(path, "a", encoding="utf-8") as out:
            out.write(json.dumps(entry) + "\n")
    return entry
