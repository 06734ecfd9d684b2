"""What a statement returns, and its values as Athena prints them.

Athena's results are text: ``GetQueryResults`` returns every value as a
string (``VarCharValue``, absent for NULL) and the result file in S3 is a
CSV, while ``ResultSetMetadata`` names each column's type. So the engine's
typed values are rendered here the way Athena (a Java program) renders
them: doubles as Java prints them (``1.5E7``), timestamps with
milliseconds, arrays as ``[a, b]``, maps and rows as ``{k=v}``.
"""
from __future__ import annotations

import datetime
import decimal
from dataclasses import dataclass, field


@dataclass
class Result:
    """What a statement produced."""
    statement_type: str                       # DDL | DML | UTILITY
    columns: list[tuple[str, str]] = field(default_factory=list)   # (name, Athena type)
    rows: list[list[str | None]] = field(default_factory=list)
    written: list[str] = field(default_factory=list)               # s3:// URIs (CTAS, INSERT, UNLOAD)
    substatement: str = ""


_ATHENA_TYPES = [("VARCHAR", "varchar"), ("BIGINT", "bigint"), ("HUGEINT", "bigint"),
                 ("INTEGER", "integer"), ("SMALLINT", "smallint"), ("TINYINT", "tinyint"),
                 ("DOUBLE", "double"), ("FLOAT", "real"), ("BOOLEAN", "boolean"),
                 ("DATE", "date"), ("TIMESTAMP WITH TIME ZONE", "timestamp with time zone"),
                 ("TIMESTAMP", "timestamp"), ("DECIMAL", "decimal"), ("BLOB", "varbinary"),
                 ("INTERVAL", "interval day to second"), ("UUID", "varchar"), ("JSON", "json")]


def athena_type(duck: str) -> str:
    """The Athena (Trino) name of a DuckDB result type: ``INTEGER`` -> ``integer``, ``VARCHAR[]`` -> ``array``."""
    duck = duck.upper()
    if duck.endswith("[]"):
        return "array"
    if duck.startswith("STRUCT"):
        return "row"
    if duck.startswith("MAP"):
        return "map"
    for prefix, name in _ATHENA_TYPES:
        if duck.startswith(prefix):
            return name
    return duck.lower()


def java_double(value: float) -> str:
    """Doubles as Athena (Java) prints them: 12.0, 1.5E7, 1.0E-4."""
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0 or 1e-3 <= abs(value) < 1e7:
        text = repr(float(value))
        return text if "e" not in text else f"{value:.10f}".rstrip("0")
    mantissa, exponent = f"{value:.16E}".split("E")
    mantissa = repr(float(mantissa))
    return f"{mantissa}E{int(exponent)}"


def render(value) -> str | None:
    """One value as Athena's result set shows it (a string, or None for NULL)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return java_double(value)
    if isinstance(value, datetime.datetime):
        text = value.strftime("%Y-%m-%d %H:%M:%S.") + f"{value.microsecond // 1000:03d}"
        return text + (" UTC" if value.tzinfo is not None else "")
    if isinstance(value, (datetime.date, decimal.Decimal, int)):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join("null" if v is None else render(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={'null' if v is None else render(v)}" for k, v in value.items()) + "}"
    if isinstance(value, bytes):
        return value.hex(" ")
    return str(value)
