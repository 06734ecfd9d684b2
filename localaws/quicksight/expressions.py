"""QuickSight's calculated-field language, translated to SQL (DuckDB's dialect).

A data set's ``CreateColumnsOperation`` and ``FilterOperation`` hold expressions such as::

    ifelse({amount} > 100, 'big', 'small')
    truncDate('MM', {order_date})
    concat(toUpper({region}), '-', toString({year}))

Fields are written ``{Field name}`` (or bare, when the name has no spaces), strings in single
or double quotes. This module parses such an expression (a small recursive-descent parser)
and writes the equivalent SQL, checking every field against the columns the data set has at
that point. Only row-level functions are translated (the subset in :data:`FUNCTIONS`); any
other function is refused with ``InvalidParameterValueException`` naming it, as QuickSight
refuses an expression it cannot parse. Aggregations (``sum``, ``avg``...) belong in visuals,
not in data-set calculated fields, and are refused here too.
"""
from __future__ import annotations

import re

from .errors import InvalidParameterValueException

#: QuickSight's date-part codes -> SQL date parts (truncDate, dateDiff, extract, addDateTime).
DATE_PARTS = {"YYYY": "year", "Q": "quarter", "MM": "month", "WK": "week", "DD": "day",
              "HH": "hour", "MI": "minute", "SS": "second", "MS": "millisecond"}

_TOKEN = re.compile(r"""\s*(?:
    (?P<field>\{[^}]*\})
  | (?P<number>\d+(?:\.\d+)?)
  | (?P<string>'(?:[^']|'')*'|"(?:[^"]|"")*")
  | (?P<op><>|!=|<=|>=|[-+*/^(),=<>])
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
)""", re.VERBOSE)


def _sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def quote(name: str) -> str:
    """A SQL identifier: ``"name"``."""
    return '"' + name.replace('"', '""') + '"'


class _Parser:
    def __init__(self, text: str, columns: list[str], where: str):
        self.text, self.columns, self.where = text, columns, where
        self.tokens = self._tokenize(text)
        self.pos = 0

    # -- tokens ------------------------------------------------------------------
    def _tokenize(self, text):
        tokens, pos = [], 0
        while pos < len(text):
            if text[pos:].strip() == "":
                break
            m = _TOKEN.match(text, pos)
            if not m or m.end() == pos:
                raise self.error(f"unexpected character {text[pos:].strip()[:1]!r} at position {pos}")
            kind = m.lastgroup
            tokens.append((kind, m.group(kind)))
            pos = m.end()
        return tokens

    def error(self, why: str) -> InvalidParameterValueException:
        return InvalidParameterValueException(f"The expression of {self.where} is not valid: {why}. "
                                              f"Expression: {self.text}")

    def peek(self):
        return self.tokens[self.pos] if self.pos < len(self.tokens) else (None, None)

    def take(self, value: str | None = None):
        kind, text = self.peek()
        if kind is None or (value is not None and text.upper() != value.upper()):
            raise self.error(f"expected {value or 'more input'}, found {text or 'the end'}")
        self.pos += 1
        return kind, text

    def accept(self, value: str) -> bool:
        kind, text = self.peek()
        if text is not None and text.upper() == value.upper() and kind in ("op", "name"):
            self.pos += 1
            return True
        return False

    # -- grammar: or > and > not > comparison > additive > multiplicative > unary > power > atom
    def parse(self) -> str:
        sql = self.or_()
        if self.pos != len(self.tokens):
            raise self.error(f"unexpected {self.peek()[1]!r}")
        return sql

    def or_(self):
        left = self.and_()
        while self.accept("OR"):
            left = f"({left} OR {self.and_()})"
        return left

    def and_(self):
        left = self.not_()
        while self.accept("AND"):
            left = f"({left} AND {self.not_()})"
        return left

    def not_(self):
        if self.accept("NOT"):
            return f"(NOT {self.not_()})"
        return self.comparison()

    def comparison(self):
        left = self.additive()
        kind, op = self.peek()
        if kind == "op" and op in ("=", "<>", "!=", "<", ">", "<=", ">="):
            self.pos += 1
            return f"({left} {'<>' if op == '!=' else op} {self.additive()})"
        return left

    def additive(self):
        left = self.multiplicative()
        while self.peek()[1] in ("+", "-"):
            op = self.take()[1]
            left = f"({left} {op} {self.multiplicative()})"
        return left

    def multiplicative(self):
        left = self.unary()
        while self.peek()[1] in ("*", "/"):
            op = self.take()[1]
            right = self.unary()
            # QuickSight's "/" is a decimal division (5/2 = 2.5); SQL's integer "/" may not be
            left = f"({left} * 1.0 / {right})" if op == "/" else f"({left} * {right})"
        return left

    def unary(self):
        if self.accept("-"):
            return f"(-{self.unary()})"
        return self.power()

    def power(self):
        base = self.atom()
        if self.accept("^"):
            return f"power({base}, {self.unary()})"
        return base

    def atom(self):
        kind, text = self.take()
        if kind == "number":
            return text
        if kind == "string":
            return _sql_string(text[1:-1].replace(text[0] * 2, text[0]))
        if kind == "field":
            return self.field(text[1:-1])
        if kind == "op" and text == "(":
            inner = self.or_()
            self.take(")")
            return f"({inner})"
        if kind == "name":
            if self.peek()[1] == "(":
                return self.call(text)
            if text.upper() in ("NULL",):
                return "NULL"
            return self.field(text)
        raise self.error(f"unexpected {text!r}")

    def field(self, name: str) -> str:
        if name not in self.columns:
            raise InvalidParameterValueException(
                f"The expression of {self.where} refers to the field {name!r}, which is not in the "
                f"data set at this step. Fields: {', '.join(self.columns)}")
        return quote(name)

    def call(self, name: str) -> str:
        self.take("(")
        args: list[str] = []
        raw: list[tuple] = []           # first token of each argument (date-part literals)
        if self.peek()[1] != ")":
            while True:
                raw.append(self.peek())
                args.append(self.or_())
                if not self.accept(","):
                    break
        self.take(")")
        fn = FUNCTIONS.get(name.lower())
        if fn is None:
            raise InvalidParameterValueException(
                f"The function {name!r} in {self.where} is not supported by this local QuickSight "
                f"(calculated fields support: {', '.join(sorted(FUNCTION_NAMES))}).")
        return fn(self, name, args, raw)


# ------------------------------------------------------------------ functions
def _arity(p, name, args, low, high=None):
    high = low if high is None else high
    if not low <= len(args) <= high:
        raise p.error(f"{name} takes {low}{'' if high == low else f' to {high}'} arguments, got {len(args)}")


def _part(p, name, raw_token) -> str:
    kind, text = raw_token
    code = text[1:-1] if kind == "string" else None
    if code not in DATE_PARTS:
        raise p.error(f"{name} needs a date part among {', '.join(DATE_PARTS)}")
    return DATE_PARTS[code]


def _simple(sql_name, low, high=None):
    def fn(p, name, args, raw):
        _arity(p, name, args, low, high)
        return f"{sql_name}({', '.join(args)})"
    return fn


def _ifelse(p, name, args, raw):
    if len(args) < 3 or len(args) % 2 == 0:
        raise p.error("ifelse takes condition, value pairs and an else value (an odd count, at least 3)")
    pairs = " ".join(f"WHEN {c} THEN {v}" for c, v in zip(args[:-1:2], args[1:-1:2]))
    return f"(CASE {pairs} ELSE {args[-1]} END)"


def _trunc_date(p, name, args, raw):
    _arity(p, name, args, 2)
    return f"date_trunc('{_part(p, name, raw[0])}', {args[1]})"


def _extract(p, name, args, raw):
    _arity(p, name, args, 2)
    return f"CAST(date_part('{_part(p, name, raw[0])}', {args[1]}) AS BIGINT)"


def _date_diff(p, name, args, raw):
    _arity(p, name, args, 2, 3)
    part = _part(p, name, raw[2]) if len(args) == 3 else "day"
    return f"date_diff('{part}', {args[0]}, {args[1]})"


def _add_date_time(p, name, args, raw):
    _arity(p, name, args, 3)
    return f"({args[2]} + to_{_part(p, name, raw[1])}s(CAST({args[0]} AS BIGINT)))"


def _cast(sql_type):
    def fn(p, name, args, raw):
        _arity(p, name, args, 1)
        return f"TRY_CAST({args[0]} AS {sql_type})"
    return fn


def _is(negate):
    def fn(p, name, args, raw):
        _arity(p, name, args, 1)
        return f"({args[0]} IS {'NOT ' if negate else ''}NULL)"
    return fn


def _now(p, name, args, raw):
    _arity(p, name, args, 0)
    return "CAST(current_timestamp AS TIMESTAMP)"


def _decimal_to_int(p, name, args, raw):
    _arity(p, name, args, 1)
    return f"CAST(trunc({args[0]}) AS BIGINT)"


def _substring(p, name, args, raw):
    _arity(p, name, args, 3)
    return f"substring({args[0]}, {args[1]}, {args[2]})"


def _locate(p, name, args, raw):
    _arity(p, name, args, 2, 3)
    if len(args) == 2:
        return f"strpos({args[0]}, {args[1]})"
    return (f"(CASE WHEN strpos(substring({args[0]}, {args[2]}), {args[1]}) = 0 THEN 0 "
            f"ELSE strpos(substring({args[0]}, {args[2]}), {args[1]}) + {args[2]} - 1 END)")


FUNCTIONS = {
    "ifelse": _ifelse,
    "coalesce": _simple("coalesce", 1, 99),
    "isnull": _is(False), "isnotnull": _is(True),
    "concat": _simple("concat", 1, 99),
    "toupper": _simple("upper", 1), "tolower": _simple("lower", 1),
    "substring": _substring, "left": _simple("left", 2), "right": _simple("right", 2),
    "strlen": _simple("length", 1), "trim": _simple("trim", 1),
    "ltrim": _simple("ltrim", 1), "rtrim": _simple("rtrim", 1),
    "replace": _simple("replace", 3), "locate": _locate,
    "round": _simple("round", 1, 2), "ceil": _simple("ceil", 1), "floor": _simple("floor", 1),
    "abs": _simple("abs", 1), "sqrt": _simple("sqrt", 1), "exp": _simple("exp", 1),
    "ln": _simple("ln", 1), "log": _simple("log10", 1), "mod": _simple("mod", 2),
    "truncdate": _trunc_date, "extract": _extract, "datediff": _date_diff,
    "adddatetime": _add_date_time, "now": _now,
    "tostring": _cast("VARCHAR"), "parseint": _cast("BIGINT"), "parsedecimal": _cast("DOUBLE"),
    "parsedate": _cast("TIMESTAMP"), "inttodecimal": _cast("DOUBLE"),
    "decimaltoint": _decimal_to_int,
}

#: The QuickSight spellings of the supported functions (for error messages).
FUNCTION_NAMES = ("ifelse", "coalesce", "isNull", "isNotNull", "concat", "toUpper", "toLower",
                  "substring", "left", "right", "strlen", "trim", "ltrim", "rtrim", "replace",
                  "locate", "round", "ceil", "floor", "abs", "sqrt", "exp", "ln", "log", "mod",
                  "truncDate", "extract", "dateDiff", "addDateTime", "now", "toString", "parseInt",
                  "parseDecimal", "parseDate", "intToDecimal", "decimalToInt")


def to_sql(expression: str, columns: list[str], where: str = "a calculated field") -> str:
    """The SQL of a QuickSight ``expression`` over ``columns``; ``where`` names it in errors."""
    if not expression or not expression.strip():
        raise InvalidParameterValueException(f"The expression of {where} is empty.")
    return _Parser(expression, columns, where).parse()
