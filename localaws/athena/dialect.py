"""Trino SQL (Athena engine version 3) translated to DuckDB SQL, answers included.

sqlglot does most of the translation: ``tree.sql(dialect="duckdb")`` renames
functions and rewrites syntax. What it cannot know is where the two engines
give *different answers* to the same SQL. Trino truncates ``5 / 2`` to 2,
DuckDB says 2.5; Trino fails on ``1 / 0``, DuckDB returns infinity;
``regexp_extract`` without a match is NULL in Trino and '' in DuckDB...
Each such difference gets a small fix here, so the query answers as on
Athena (or fails as clearly as Athena does). The table of differences, with
Trino's answer for each, is in ``tests/test_athena_semantics.py``.

Some fixes depend on types: ``a / b`` divides integers, decimals or doubles
differently. So the translation carries a small type checker, :class:`Types`,
that works out the Trino type of an expression from its literals, casts,
the columns of the query's tables and a few functions. Where it cannot
tell, the translation keeps DuckDB's behaviour.

The fixes call SQL macros (``MACROS``), created as TEMP macros on the query's
own cursor (so they end with it), and one Python function (``FUNCTIONS``),
registered once per DuckDB database since DuckDB refuses a second function of
the same name from another cursor; plus one DuckDB setting, the default of
every cursor: ``integer_division``, so that ``/`` between two integers
truncates as in Trino whatever the checker knows.
"""
from __future__ import annotations

import functools
import json
import re

from sqlglot import exp

from .errors import QueryFailed, position_of, raise_sql

T = exp.DataType.Type
SETTINGS = {"integer_division": True}

# Digits of each integer type once seen as a decimal (Trino: INTEGER is DECIMAL(10,0)).
INTEGERS = {T.TINYINT: 3, T.SMALLINT: 5, T.INT: 10, T.BIGINT: 19, T.INT128: 38, T.UBIGINT: 20,
            T.UINT: 10, T.USMALLINT: 5, T.UTINYINT: 3}
FLOATS = {T.DOUBLE, T.FLOAT}
TIMESTAMPS = {T.TIMESTAMP, T.TIMESTAMPNTZ, T.TIMESTAMP_S, T.TIMESTAMP_MS, T.TIMESTAMP_NS, T.DATETIME}


def dtype(text: str, dialect: str = "duckdb") -> exp.DataType | None:
    """The sqlglot type of a type's text (a copy of its own: trees take their nodes)."""
    parsed = _parsed_type(text, dialect)
    return parsed.copy() if parsed is not None else None


@functools.lru_cache(maxsize=1024)
def _parsed_type(text: str, dialect: str) -> exp.DataType | None:
    try:
        return exp.DataType.build(text, dialect=dialect)
    except Exception:
        return None


def trino_name(t: exp.DataType) -> str:
    """A type as Trino prints it: ``decimal(10,2)``, ``array(varchar)``, ``timestamp(3)``."""
    if t.this in INTEGERS and t.this not in (T.TINYINT, T.SMALLINT, T.INT):
        return "bigint"
    if t.this in TIMESTAMPS and t.expressions:
        return f"timestamp({t.expressions[0].name})"
    text = t.sql("trino").lower()
    text = re.sub(r"decimal\((\d+), (\d+)\)", r"decimal(\1,\2)", text)
    return re.sub(r"\btimestamp\b(?!\()", "timestamp(3)", text)


def decimal_parts(t: exp.DataType | None) -> tuple[int, int] | None:
    """(precision, scale) of a decimal or integer type (INTEGER is (10, 0)), else None."""
    if t is None:
        return None
    if t.this in INTEGERS:
        return INTEGERS[t.this], 0
    if t.this == T.DECIMAL and len(t.expressions) == 2:
        return int(t.expressions[0].name), int(t.expressions[1].name)
    return None


def decimal(p: int, s: int) -> exp.DataType:
    return exp.DataType.build(f"DECIMAL({min(p, 38)}, {s})")


def literal_decimal(text: str) -> exp.DataType:
    """The type Trino gives a decimal literal: its digits without leading zeros.

    ``0.33`` is DECIMAL(2,2), ``DECIMAL '0.00000000001'`` DECIMAL(11,11): decimal
    literals are exact in Trino (its ``parse_decimal_literals_as_double`` is off),
    where DuckDB would read ``DECIMAL 'x'`` as DECIMAL(18,3) and lose digits.
    """
    integral, _, fraction = text.strip().lstrip("+-").partition(".")
    scale = len(fraction)
    return decimal(max(len(integral.lstrip("0")) + scale, 1), scale)


# --------------------------------------------------------------------------
# The type checker
# --------------------------------------------------------------------------
class Types:
    """The Trino type of each expression of a query, as far as we can tell.

    ``columns`` maps each table alias of the query to its columns and their
    DuckDB types. A bare column is found in the one table that has it; a name
    that the query itself defines (``AS x``, a CTE's columns, a lambda's
    parameter) is left unknown rather than guessed.
    """

    def __init__(self, tree: exp.Expression, columns: dict[str, dict[str, exp.DataType | None]]):
        self.columns = columns
        self.derived = defined_names(tree)
        self.known: dict[int, exp.DataType | None] = {}
        for node in reversed(list(tree.walk())):    # children first
            self.known[id(node)] = self.compute(node)

    def of(self, node: exp.Expression) -> exp.DataType | None:
        return self.known.get(id(node))

    def same(self, new: exp.Expression, old: exp.Expression) -> exp.Expression:
        """``new`` replaces ``old`` and has its type."""
        self.known[id(new)] = self.of(old)
        return new

    def compute(self, node: exp.Expression) -> exp.DataType | None:
        if isinstance(node, (exp.Paren, exp.Neg)):
            return self.of(node.this)
        if isinstance(node, exp.Literal):
            if node.is_string:
                return exp.DataType.build(f"VARCHAR({len(node.this)})")
            if node.is_int:
                return exp.DataType.build("INT" if abs(int(node.this)) < 2**31 else "BIGINT")
            return exp.DataType.build("DOUBLE") if "e" in node.this.lower() else literal_decimal(node.this)
        if isinstance(node, exp.Cast):
            if node.to.this == T.DECIMAL and not node.to.expressions:
                return literal_decimal(node.name) if decimal_literal(node) else decimal(38, 0)
            return node.to
        if isinstance(node, exp.Column):
            return self.column(node)
        if isinstance(node, (exp.Add, exp.Sub, exp.Mul, exp.Div, exp.Mod)):
            return arithmetic(node, self.of(node.this), self.of(node.expression))
        if isinstance(node, (exp.Count, exp.CountIf, exp.ApproxDistinct)):
            return exp.DataType.build("BIGINT")
        if isinstance(node, exp.Sum):
            inner = self.of(node.this)
            parts = decimal_parts(inner)
            if inner is not None and inner.this in INTEGERS:
                return exp.DataType.build("BIGINT")
            return decimal(38, parts[1]) if parts else inner
        if isinstance(node, (exp.Min, exp.Max, exp.Abs)):
            return self.of(node.this)
        if isinstance(node, exp.Round):
            inner, parts = self.of(node.this), decimal_parts(self.of(node.this))
            if inner is not None and inner.this == T.DECIMAL and node.args.get("decimals") is not None:
                return decimal(parts[0] + 1, parts[1])
            return inner if inner is not None and inner.this != T.DECIMAL else None
        if isinstance(node, exp.Array):
            inner = next((self.of(e) for e in node.expressions if self.of(e) is not None), None)
            return exp.DataType.build(f"ARRAY<{inner.sql()}>") if inner else exp.DataType.build("ARRAY")
        if isinstance(node, (exp.Map, exp.VarMap)):
            return exp.DataType.build("MAP")
        if isinstance(node, (exp.Split, exp.RegexpSplit)):
            return exp.DataType.build("ARRAY<VARCHAR>")
        if isinstance(node, (exp.ParseJSON, exp.JSONExtract)):
            return exp.DataType.build("JSON")
        if isinstance(node, exp.CurrentDate):
            return exp.DataType.build("DATE")
        if isinstance(node, exp.CurrentTimestamp):
            return exp.DataType.build("TIMESTAMPTZ")
        return None

    def column(self, node: exp.Column) -> exp.DataType | None:
        name, qualifier = node.name.lower(), node.table.lower()
        if node.args.get("db") is not None:
            return None                          # alias.column.field: a row's field
        if qualifier:
            tables = [self.columns[qualifier]] if qualifier in self.columns else []
        elif name in self.derived:
            return None
        else:
            tables = list(self.columns.values())
        found = {t[name].sql() for t in tables if name in t and t[name] is not None}
        return dtype(found.pop()) if len(found) == 1 else None

    def missing(self, node: exp.Column) -> bool:
        """True when ``node`` names a column no table (nor the query) has."""
        name, qualifier = node.name.lower(), node.table.lower()
        if node.args.get("db") is not None or isinstance(node.this, exp.Star):
            return False
        if qualifier:
            return qualifier in self.columns and name not in self.columns[qualifier]
        return name not in self.derived and not any(name in t for t in self.columns.values())


def defined_names(tree: exp.Expression) -> set[str]:
    """Column names the query itself defines: aliases, the columns of CTEs and
    subqueries (``t(x, y)``, UNNEST ... AS t(x)) and lambda parameters."""
    names = {a.alias.lower() for a in tree.find_all(exp.Alias)}
    for alias in tree.find_all(exp.TableAlias):
        names |= {c.name.lower() for c in alias.columns}
    for lam in tree.find_all(exp.Lambda):
        names |= {p.name.lower() for p in lam.expressions}
    return names


def decimal_literal(node: exp.Cast) -> bool:
    """``DECIMAL '1.5'`` (sqlglot reads it as a cast of a string to DECIMAL)."""
    return isinstance(node.this, exp.Literal) and node.this.is_string and \
        re.fullmatch(r"\s*[+-]?(\d+\.?\d*|\.\d+)\s*", node.this.this) is not None


def arithmetic(node: exp.Expression, left, right) -> exp.DataType | None:
    """Trino's result type of ``left <op> right`` (its decimal rules, integers widen)."""
    if left is None or right is None:
        return None
    if left.this in INTEGERS and right.this in INTEGERS:
        return left if INTEGERS[left.this] >= INTEGERS[right.this] else right
    if left.this in FLOATS or right.this in FLOATS:
        return exp.DataType.build("DOUBLE")
    a, b = decimal_parts(left), decimal_parts(right)
    if a is None or b is None:
        return None
    (p1, s1), (p2, s2) = a, b
    if isinstance(node, exp.Mul):
        return decimal(p1 + p2, s1 + s2)
    s = max(s1, s2)
    if isinstance(node, exp.Div):
        return decimal(p1 + s2 + max(0, s2 - s1), s)
    if isinstance(node, exp.Mod):
        return decimal(min(p2 - s2, p1 - s1) + s, s)
    return decimal(max(p1 - s1, p2 - s2) + s + 1, s)


# --------------------------------------------------------------------------
# SQL macros the fixes call (created on the connection only when used).
# Each one that can fail has a twin ``try_<name>`` that returns NULL instead,
# used inside Trino's try(...): DuckDB's TRY() refuses error(), which is volatile.
# --------------------------------------------------------------------------
def _macros(fail) -> dict[str, tuple[str, str]]:
    """name -> (parameters, body); ``fail(error_name, message_sql)`` is the SQL that
    fails the query, or NULL for the ``try_`` twins."""
    zero = fail("DIVISION_BY_ZERO", "'Division by zero'")

    def bad(message_sql: str) -> str:
        return fail("INVALID_FUNCTION_ARGUMENT", message_sql)

    start = bad("'SQL array indices start at 1'")
    return {
        "trino_divide": ("a, b", f"CASE WHEN b = 0 AND a IS NOT NULL THEN {zero} ELSE a / b END"),
        "trino_modulus": ("a, b", f"CASE WHEN b = 0 AND a IS NOT NULL THEN {zero} ELSE a % b END"),
        # a / b rounded half up at a fixed scale, in exact integers: a_unit and
        # b_unit turn a and b into their unscaled digits, shift moves the point.
        "trino_decimal_divide": ("a, b, a_unit, b_unit, shift",
                                 f"CASE WHEN b = 0 AND a IS NOT NULL THEN {zero} ELSE trino_round_divide("
                                 "CAST(a * a_unit AS HUGEINT) * shift, CAST(b * b_unit AS HUGEINT)) END"),
        "trino_subscript": ("a, i", f"CASE WHEN i = 0 THEN {start} "
                                    f"WHEN i < 0 THEN {bad(NEGATIVE)} "
                                    f"WHEN i > len(a) THEN {bad(OUT_OF_RANGE)} ELSE a[i] END"),
        "trino_element_at": ("a, i", f"CASE WHEN i = 0 THEN {start} ELSE a[i] END"),
        "trino_map_subscript": ("m, k", "CASE WHEN m IS NULL OR k IS NULL THEN NULL WHEN NOT map_contains(m, k) "
                                        f"THEN {bad(MISSING_KEY)} ELSE m[k] END"),
        "trino_split_part": ("s, d, i", f"CASE WHEN i <= 0 THEN {bad(NOT_POSITIVE)} "
                                        "WHEN i > len(string_split(s, d)) THEN NULL ELSE split_part(s, d, i) END"),
    }


# The messages (SQL string expressions) of Trino's INVALID_FUNCTION_ARGUMENT failures.
NEGATIVE = "'Array subscript is negative: ' || i"
NOT_POSITIVE = "'Index must be greater than zero'"
OUT_OF_RANGE = "'Array subscript must be less than or equal to array length: ' || i || ' > ' || len(a)"
MISSING_KEY = "'Key not present in map: ' || CAST(k AS VARCHAR)"

MACROS = {
    **_macros(raise_sql),
    **{f"try_{name}": body for name, body in _macros(lambda name, message: "NULL").items()},
    "trino_round_divide": ("n, d", "(2 * abs(n) + abs(d)) // (2 * abs(d)) * sign(n) * sign(d)"),
    "trino_double_divide": ("a, b", "CASE WHEN b = 0 AND a IS NOT NULL THEN CAST(CASE WHEN a > 0 THEN 'Infinity' "
                                    "WHEN a < 0 THEN '-Infinity' ELSE 'NaN' END AS DOUBLE) ELSE a / b END"),
    # Trino's URL functions; NULL when the URL has no such part.
    "url_extract_protocol": ("u", "nullif(regexp_extract(u, '^([a-zA-Z][a-zA-Z0-9+.-]*):', 1), '')"),
    "url_extract_host": ("u", "nullif(regexp_extract(u, '^[a-zA-Z][a-zA-Z0-9+.-]*://([^/:?#]*)', 1), '')"),
    "url_extract_port": ("u", "TRY_CAST(nullif(regexp_extract(u, '^[a-zA-Z][a-zA-Z0-9+.-]*://[^/:?#]*:([0-9]+)', 1), "
                              "'') AS BIGINT)"),
    "url_extract_path": ("u", "CASE WHEN regexp_matches(u, '^[a-zA-Z][a-zA-Z0-9+.-]*:') THEN "
                              "regexp_extract(u, '^[a-zA-Z][a-zA-Z0-9+.-]*:(//[^/?#]*)?([^?#]*)', 2) END"),
    "url_extract_query": ("u", "nullif(regexp_extract(u, '^[^?#]*\\?([^#]*)', 1), '')"),
    "url_extract_fragment": ("u", "nullif(regexp_extract(u, '^[^#]*#(.*)$', 1), '')"),
    "url_extract_parameter": ("u, p", "CASE WHEN regexp_matches(regexp_extract(u, '^[^?#]*\\?([^#]*)', 1), "
                                      "'(^|&)' || p || '=') THEN regexp_extract(regexp_extract(u, '^[^?#]*\\?([^#]*)', "
                                      "1), '(^|&)' || p || '=([^&]*)', 2) END"),
}


def json_canonical(text: str) -> str:
    """json_parse as Trino does it: parsed and written back compactly, object
    keys sorted (``{"b":1,"a":2}`` -> ``{"a":2,"b":1}``)."""
    try:
        return json.dumps(json.loads(text), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    except ValueError:
        raise ValueError(f"[athena:INVALID_FUNCTION_ARGUMENT] Cannot convert value to JSON: '{text}'") from None


#: Python functions the fixes call: name -> (function, parameter types, return type).
FUNCTIONS = {"trino_json_parse": (json_canonical, ["VARCHAR"], "VARCHAR")}


def register(database) -> None:
    """Register the Python functions on a DuckDB database (once: every cursor sees them).
    Called before any cursor is opened."""
    for name, (function, parameters, returns) in FUNCTIONS.items():
        database.create_function(name, function, parameters, returns)


def configure(database) -> None:
    """DuckDB settings that make its answers Trino's: set once on the database, as the
    default of every cursor opened afterwards."""
    for name, value in SETTINGS.items():
        database.execute(f"SET GLOBAL {name} = {str(value).lower()}")


def define(con, tree: exp.Expression) -> None:
    """Create the macros that the rewritten ``tree`` calls, on its cursor only."""
    called = {f.name.lower() for f in tree.find_all(exp.Anonymous)}
    if called & {"trino_decimal_divide", "try_trino_decimal_divide"}:
        called.add("trino_round_divide")
    for name in sorted(called & MACROS.keys(), key=lambda n: n != "trino_round_divide"):
        params, body = MACROS[name]
        con.execute(f"CREATE OR REPLACE TEMP MACRO {name}({params}) AS ({body})")


# --------------------------------------------------------------------------
# The fixes: each takes a node (its children already fixed) and returns the
# node to put in its place, or None to keep it.
# --------------------------------------------------------------------------
def call(name: str, *args: exp.Expression, inside_try: bool = False) -> exp.Expression:
    return exp.Anonymous(this=("try_" if inside_try else "") + name, expressions=list(args))


def fix_division(node: exp.Div, types: Types, in_try: bool):
    """``/``: integers truncate (DuckDB's integer_division), decimals keep Trino's
    scale, exactly rounded (``1.0 / 3`` is 0.3), doubles divide as IEEE floats;
    a division by zero fails with DIVISION_BY_ZERO, except between doubles."""
    left, right = types.of(node.this), types.of(node.expression)
    a, b = decimal_parts(left), decimal_parts(right)
    if left is not None and right is not None and (left.this in FLOATS or right.this in FLOATS):
        return call("trino_double_divide", node.this, node.expression)
    if a and b and T.DECIMAL in (left.this, right.this):
        result = types.of(node)
        _, s = decimal_parts(result)
        units = [exp.Literal.number(10 ** x) for x in (a[1], b[1], s - a[1] + b[1])]
        ulp = exp.Cast(this=exp.Literal.string(f"0.{'0' * (s - 1)}1" if s else "1"), to=decimal(max(s, 1), s))
        quotient = exp.Cast(this=call("trino_decimal_divide", node.this, node.expression, *units, inside_try=in_try),
                            to=decimal(38, 0))
        return exp.Cast(this=exp.Mul(this=quotient, expression=ulp), to=result)
    return call("trino_divide", node.this, node.expression, inside_try=in_try)


def fix_modulus(node: exp.Mod, types: Types, in_try: bool):
    left, right = types.of(node.this), types.of(node.expression)
    if left is not None and right is not None and FLOATS & {left.this, right.this}:
        return None        # x % 0.0 is NaN in both engines
    return call("trino_modulus", node.this, node.expression, inside_try=in_try)


def fix_subscript(node: exp.Bracket, types: Types, in_try: bool):
    """``a[i]`` fails out of range in Trino (NULL in DuckDB); ``element_at`` is the
    NULL-returning form, but index 0 fails there too. ``m[k]`` fails for a
    missing key."""
    container = types.of(node.this)
    if container is None or len(node.expressions) != 1:
        return None
    index = node.expressions[0]
    if not node.args.get("safe") and index.is_int:
        index = exp.Literal.number(int(index.to_py()) + 1)    # sqlglot keeps a[5] as 0-based 4
    if container.this == T.MAP:
        return None if node.args.get("safe") else call("trino_map_subscript", node.this, index, inside_try=in_try)
    if container.this != T.ARRAY:
        return None
    name = "trino_element_at" if node.args.get("safe") else "trino_subscript"
    return call(name, node.this, index, inside_try=in_try)


def fix_regexp_extract(node: exp.RegexpExtract, types: Types, in_try: bool):
    """No match: Trino returns NULL, DuckDB ''."""
    matches = exp.Anonymous(this="regexp_matches", expressions=[node.this.copy(), node.expression.copy()])
    return exp.Case(ifs=[exp.If(this=matches, true=node.copy())])


def fix_regexp_replace(node: exp.RegexpReplace, types: Types, in_try: bool):
    """Trino's replacement names groups ``$1``, RE2's (DuckDB's) ``\\1``."""
    replacement = node.args.get("replacement")
    if not isinstance(replacement, exp.Literal) or "$" not in replacement.this and "\\" not in replacement.this:
        return None
    out, text, i = [], replacement.this, 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            out.append("\\\\" if text[i + 1] == "\\" else text[i + 1])
            i += 2
        elif ch == "$" and i + 1 < len(text) and text[i + 1].isdigit():
            out.append("\\" + text[i + 1])
            i += 2
        else:
            out.append(ch)
            i += 1
    node.set("replacement", exp.Literal.string("".join(out)))
    return None


def fix_split_part(node: exp.SplitPart, types: Types, in_try: bool):
    """Past the last part Trino returns NULL (DuckDB ''); index 0 fails."""
    return call("trino_split_part", node.this, node.args["delimiter"], node.args["part_index"], inside_try=in_try)


def fix_substring(node: exp.Substring, types: Types, in_try: bool):
    """``substr(s, 0)`` is '' in Trino (positions start at 1), all of s in DuckDB."""
    start = node.args.get("start")
    if start is None or (start.is_int and int(start.to_py()) != 0):
        return None
    empty = exp.Substring(this=node.this.copy(), start=exp.Literal.number(1), length=exp.Literal.number(0))
    return exp.Case(ifs=[exp.If(this=exp.EQ(this=start.copy(), expression=exp.Literal.number(0)), true=empty)],
                    default=node.copy())


def fix_json_scalar(node: exp.JSONExtractScalar, types: Types, in_try: bool):
    """json_extract_scalar of an object or array is NULL in Trino (DuckDB gives its text)."""
    kind = exp.Anonymous(this="json_type", expressions=[node.this.copy(), node.expression.copy()])
    composite = exp.In(this=kind, expressions=[exp.Literal.string("OBJECT"), exp.Literal.string("ARRAY")])
    return exp.Case(ifs=[exp.If(this=composite, true=exp.Null())], default=node.copy())


def fix_json_parse(node: exp.ParseJSON, types: Types, in_try: bool):
    """json_parse (and JSON '...') canonicalises: compact, object keys sorted."""
    return exp.Cast(this=call("trino_json_parse", node.this), to=exp.DataType.build("JSON"))


def fix_cast(node: exp.Cast, types: Types, in_try: bool):
    """Casts whose meaning differs: to JSON (a varchar becomes a JSON *string*),
    from JSON to varchar (the value, unquoted), to DECIMAL without a precision
    (decimal(38,0), or the literal's own digits), to TIMESTAMP (milliseconds,
    rounded: timestamp(3))."""
    to = node.to
    source = types.of(node.this)
    if to.this == T.JSON:
        return exp.Cast(this=exp.Anonymous(this="to_json", expressions=[node.this]), to=to)
    if source is not None and source.this == T.JSON and to.this in (T.VARCHAR, T.TEXT):
        return exp.Anonymous(this="json_extract_string", expressions=[node.this, exp.Literal.string("$")])
    parts = decimal_parts(source) if source is not None and source.this == T.DECIMAL else None
    if parts and parts[0] == parts[1] and to.this in (T.VARCHAR, T.TEXT):
        # DuckDB writes a DECIMAL(2,2) as '.33'; Trino (like any wider decimal) as '0.33'
        node.set("this", exp.Cast(this=node.this, to=decimal(parts[0] + 1, parts[1])))
        return None
    if to.this == T.DECIMAL and not to.expressions:
        node.set("to", types.of(node))
        return None
    if to.this in (T.TIMESTAMP, T.TIMESTAMPNTZ) and not to.expressions:
        milliseconds = type(node)(this=node.this, to=exp.DataType.build("TIMESTAMP_MS", dialect="duckdb"))
        return exp.Cast(this=milliseconds, to=to)
    return None


def fix_literal(node: exp.Literal, types: Types, in_try: bool):
    """A bare decimal literal gets Trino's exact type (``0.33`` is DECIMAL(2,2))."""
    if node.is_string or node.is_int or "e" in node.this.lower():
        return None
    return exp.Cast(this=node.copy(), to=types.of(node))


def fix_date_diff(node: exp.DateDiff, types: Types, in_try: bool):
    """Trino counts whole units elapsed (00:59 to 01:01 is 0 hours); DuckDB's
    date_diff counts boundaries crossed (1). DuckDB's date_sub counts like Trino."""
    unit = exp.Literal.string((node.unit.name if node.unit else "day").lower())
    return exp.Anonymous(this="date_sub", expressions=[unit, node.expression, node.this])


def keep_date(node: exp.Expression, types: Types, in_try: bool):
    """date_add and date_trunc of a DATE return a DATE in Trino (a TIMESTAMP in DuckDB)."""
    source = types.of(node.this)
    if source is None or source.this != T.DATE:
        return None
    return exp.Cast(this=node.copy(), to=exp.DataType.build("DATE"))


def fix_at_time_zone(node: exp.AtTimeZone, types: Types, in_try: bool):
    """``ts AT TIME ZONE z``: Trino reads a plain timestamp in the session's zone
    (UTC on Athena) and shows that instant in z; DuckDB would read it *in* z.
    The result here is z's wall-clock time (Trino also prints the zone's name)."""
    source = types.of(node.this)
    if source is None or source.this not in TIMESTAMPS | {T.DATE}:
        return None
    utc = exp.Anonymous(this="timezone", expressions=[exp.Literal.string("UTC"), node.this])
    return exp.Anonymous(this="timezone", expressions=[node.args["zone"], utc])


def fix_round(node: exp.Round, types: Types, in_try: bool):
    """round(x, d) of a DECIMAL(p, s) keeps the scale s in Trino (``round(1.2345, 2)``
    is 1.2300, a DECIMAL(p + 1, s)); DuckDB drops the digits."""
    result = types.of(node)
    if result is None or result.this != T.DECIMAL:
        return None
    return exp.Cast(this=node.copy(), to=result)


def fix_typeof(node: exp.Typeof, types: Types, in_try: bool):
    """typeof(x) names Trino's type (``decimal(2,2)``, ``varchar(3)``, ``array(integer)``)."""
    known = types.of(node.this)
    if known is not None:
        return exp.Literal.string(trino_name(known))
    return exp.Lower(this=node.copy())


def fix_approx_percentile(node: exp.ApproxQuantile, types: Types, in_try: bool):
    if node.args.get("weight") is not None or node.args.get("accuracy") is not None:
        raise QueryFailed("NOT_SUPPORTED", "approx_percentile with weights (or an accuracy) is not supported "
                          "locally: DuckDB's approx_quantile takes no weights")
    return None


FIXES = [
    (exp.Literal, fix_literal),
    (exp.Div, fix_division),
    (exp.Mod, fix_modulus),
    (exp.Bracket, fix_subscript),
    (exp.RegexpExtract, fix_regexp_extract),
    (exp.RegexpReplace, fix_regexp_replace),
    (exp.SplitPart, fix_split_part),
    (exp.Substring, fix_substring),
    (exp.JSONExtractScalar, fix_json_scalar),
    (exp.ParseJSON, fix_json_parse),
    (exp.Cast, fix_cast),
    (exp.DateDiff, fix_date_diff),
    (exp.DateAdd, keep_date),
    (exp.TimestampTrunc, keep_date),
    (exp.DateTrunc, keep_date),
    (exp.Round, fix_round),
    (exp.AtTimeZone, fix_at_time_zone),
    (exp.Typeof, fix_typeof),
    (exp.ApproxQuantile, fix_approx_percentile),
]


def rewrite(tree: exp.Expression, columns: dict[str, dict[str, exp.DataType | None]],
            sql: str = "") -> exp.Expression:
    """Apply the fixes to the Trino ``tree`` (its tables already DuckDB views, whose
    columns are ``columns``: alias -> column -> type), so that
    ``tree.sql(dialect="duckdb")`` answers as Athena. Fails like Athena for a
    column no table has (COLUMN_NOT_FOUND, pointing into the query text ``sql``)."""
    types = Types(tree, columns)
    for node in tree.find_all(exp.Column):
        if types.missing(node):
            shown = f"{node.table}.{node.name}" if node.table else node.name
            line, col = position_of(sql, shown)
            raise QueryFailed("COLUMN_NOT_FOUND", f"Column '{shown}' cannot be resolved or requester is not "
                              "authorized to access requested resources", line=line, column=col)
    for node in reversed(list(tree.walk())):      # children before their parents
        fix = next((f for kind, f in FIXES if isinstance(node, kind)), None)
        new = fix(node, types, node.find_ancestor(exp.Try) is not None) if fix else None
        if new is not None and new is not node:
            replaced = types.same(new, node)
            if node is tree:
                return replaced
            node.replace(replaced)
    return tree
