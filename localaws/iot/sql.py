"""IoT SQL, evaluated by a real SQL engine: each message becomes a one-row table in DuckDB.

A topic rule's SQL (``awsIotSqlVersion`` ``2016-03-23``) looks like::

    SELECT device_id, reading.temp * 1.8 + 32 AS temp_f, topic(2) AS device
    FROM 'fleet/+/telemetry' WHERE reading.temp > 30

How it runs here, one message at a time:

1. ``FROM '<topic filter>'`` is taken off (it is not SQL: a quoted MQTT
   filter with ``+`` one level and ``#`` all the rest) and matched against
   the message's topic in Python (:func:`topic_matches`).
2. The rest is parsed with ``sqlglot`` once, when the rule is created. Only
   a small documented subset is accepted (:data:`FUNCTIONS`); a function AWS
   does not have is refused with ``SqlParseException``, one AWS has but this
   stand-in lacks with 501 NotImplemented.
3. The message's JSON payload becomes a one-row Arrow table
   (``pyarrow.Table.from_pylist``): nested objects become STRUCT columns, so
   ``reading.temp`` is DuckDB's struct field access. The payload's values are
   *data* in that table, never pasted into SQL text.
4. The message functions are prepared-statement parameters: ``topic()``
   (``$topic``), ``topic(n)`` (the n-th level, 1-based), ``timestamp()``
   (milliseconds of the stack's clock), ``clientid()`` (``n/a`` for an HTTP
   publish), ``newuuid()``, ``accountid()``.
5. An attribute missing from the payload is *Undefined*: it becomes SQL NULL,
   so a WHERE on it is not true (the rule does not match, nothing crashes),
   and a projected value that comes out Undefined is left out of the result,
   as AWS does.

``SELECT *`` returns the payload itself (``SELECT *, topic() AS t`` adds to
it). A payload that is not JSON passes through ``SELECT *`` as its raw bytes;
its attributes are all Undefined.

Differences from AWS: the subset of functions; arithmetic follows DuckDB
(``5 / 2`` is 2.5; AWS gives Int / Int = Int); no arrays indexing, nested
``SELECT`` or ``SET`` clauses.
"""
from __future__ import annotations

import json
import re
import threading
import uuid
from dataclasses import dataclass, field
from decimal import Decimal

import pyarrow as pa
import sqlglot
from sqlglot import exp

from localaws.core import limits, not_emulated
from . import errors

#: The SQL versions AWS IoT accepts in ``awsIotSqlVersion``.
SQL_VERSIONS = ("2015-10-08", "2016-03-23", "beta")


#: The functions this stand-in evaluates (IoT SQL name: what it does).
FUNCTIONS = {
    "topic": "topic() the message's topic; topic(n) its n-th level, 1-based",
    "timestamp": "milliseconds since the epoch, on the stack's clock",
    "clientid": "the MQTT client id (n/a for a message published over HTTP)",
    "newuuid": "a random UUID, new for each evaluation",
    "accountid": "the account that owns the rule",
    "upper": "", "lower": "", "abs": "", "round": "", "floor": "", "ceil": "", "sqrt": "",
    "power": "", "mod": "", "length": "", "concat": "", "cast": "CAST(x AS Int|Decimal|String|Bool)",
}

#: Every other function name of the AWS IoT SQL reference (iot-sql-functions.html):
#: valid on AWS, not evaluated here (501 rather than SqlParseException).
AWS_ONLY_FUNCTIONS = {
    "acos", "asin", "atan", "atan2", "aws_lambda", "bitand", "bitor", "bitxor", "bitnot", "chr",
    "cos", "cosh", "decode", "encode", "endswith", "exp", "get", "get_dynamodb",
    "get_mqtt_property", "get_or_default", "get_registry_data", "get_secret", "get_thing_shadow",
    "get_user_properties", "indexof", "isnull", "isundefined", "ln", "log", "lpad", "ltrim",
    "machinelearning_predict", "md2", "md5", "sha1", "sha224", "sha256", "sha384", "sha512",
    "nanvl", "numbytes", "parse_time", "principal", "rand", "regexp_matches", "regexp_replace",
    "regexp_substr", "remainder", "replace", "rpad", "rtrim", "sign", "sin", "sinh", "sourceip",
    "substring", "sql_version", "startswith", "tan", "tanh", "time_to_epoch", "traceid",
    "transform", "trim", "trunc", "vpcid",
}

# sqlglot's node types for the functions and operators of the subset
_TYPED = {exp.Upper: "upper", exp.Lower: "lower", exp.Abs: "abs", exp.Round: "round",
          exp.Floor: "floor", exp.Ceil: "ceil", exp.Sqrt: "sqrt", exp.Pow: "power",
          exp.Mod: "mod", exp.Length: "length", exp.Concat: "concat", exp.Cast: "cast",
          exp.Timestamp: "timestamp"}
_ALLOWED = (exp.Column, exp.Identifier, exp.Literal, exp.Alias, exp.Paren, exp.Neg, exp.Not,
            exp.And, exp.Or, exp.Add, exp.Sub, exp.Mul, exp.Div, exp.EQ, exp.NEQ, exp.GT,
            exp.GTE, exp.LT, exp.LTE, exp.Is, exp.Null, exp.Boolean, exp.Case, exp.If,
            exp.DataType, exp.Star, exp.Dot, exp.In, exp.Tuple, exp.DPipe, exp.Placeholder,
            *_TYPED)
_MESSAGE_FUNCTIONS = {"topic", "clientid", "newuuid", "accountid"}

_STATEMENT = re.compile(r"^\s*SELECT\s+(?P<select>.+?)\s+FROM\s+'(?P<topic>[^']*)'"
                        r"(?:\s+WHERE\s+(?P<where>.+?))?\s*;?\s*$", re.I | re.S)
TABLE = "__iot_message"
UNDEFINED = object()   # a value that does not exist (AWS's Undefined), as opposed to JSON null


# ------------------------------------------------------------------ topics
def check_topic_filter(topic_filter: str) -> None:
    """Refuse a filter MQTT does not allow: ``#`` only as the whole last level,
    ``+`` only as a whole level, at most 7 slashes."""
    levels = topic_filter.split("/")
    if not topic_filter:
        raise errors.SqlParseException("The topic filter in FROM is empty.")
    if topic_filter.count("/") > 7:
        raise errors.SqlParseException(f"Topic filter '{topic_filter}' has more than 7 forward slashes.")
    for n, level in enumerate(levels):
        if "#" in level and (level != "#" or n != len(levels) - 1):
            raise errors.SqlParseException(
                f"Invalid topic filter '{topic_filter}': '#' must be a whole level, the last one.")
        if "+" in level and level != "+":
            raise errors.SqlParseException(
                f"Invalid topic filter '{topic_filter}': '+' must be a whole level.")


def topic_matches(topic_filter: str, topic: str) -> bool:
    """MQTT matching: ``fleet/+/telemetry`` matches ``fleet/d1/telemetry``; ``fleet/#`` matches
    ``fleet`` and everything under it."""
    want, have = topic_filter.split("/"), topic.split("/")
    for n, level in enumerate(want):
        if level == "#":
            return True
        if n >= len(have) or (level != "+" and level != have[n]):
            return False
    return len(want) == len(have)


# ------------------------------------------------------------------ one message
@dataclass
class Message:
    """What a rule sees of a published message."""
    topic: str
    payload: bytes
    timestamp_ms: int
    account_id: str
    client_id: str = "n/a"          # an HTTP publish (iot-data Publish) has no MQTT client id
    data: object = field(default=UNDEFINED, init=False)   # the parsed JSON, or UNDEFINED

    def __post_init__(self):
        try:
            self.data = json.loads(self.payload) if self.payload else UNDEFINED
        except (ValueError, UnicodeDecodeError):
            self.data = UNDEFINED

    def lookup(self, path: tuple[str, ...]):
        """The value at ``path`` in the payload, or UNDEFINED."""
        value = self.data
        for key in path:
            if not isinstance(value, dict) or key not in value:
                return UNDEFINED
            value = value[key]
        return value

    def parameters(self, used: set[str]) -> dict:
        values = {"topic": self.topic, "timestamp": self.timestamp_ms, "clientid": self.client_id,
                  "accountid": self.account_id}
        out = {}
        for name in used:
            if name == "newuuid":
                out[name] = str(uuid.uuid4())
            elif name.startswith("topic_"):
                levels, n = self.topic.split("/"), int(name[6:])
                out[name] = levels[n - 1] if 1 <= n <= len(levels) else None
            else:
                out[name] = values[name]
        return out


# ------------------------------------------------------------------ parsing
def _path(node) -> tuple[str, ...] | None:
    """``a.b.c`` (a Column, or Dots over a Column) -> ("a", "b", "c")."""
    if isinstance(node, exp.Column):
        return tuple(part.name for part in node.parts)
    if isinstance(node, exp.Dot) and isinstance(node.expression, exp.Identifier):
        head = _path(node.this)
        return head + (node.expression.name,) if head else None
    return None


def _function_name(node) -> str | None:
    if isinstance(node, exp.Anonymous):
        return node.name.lower()
    for cls, name in _TYPED.items():
        if type(node) is cls:
            return name
    return None


class Expression:
    """One IoT SQL expression, parsed and checked; :meth:`sql` writes it for DuckDB."""

    def __init__(self, tree: exp.Expression, where: str):
        self.params: set[str] = set()
        self.paths: list[tuple[str, ...]] = []
        self._sql: dict[frozenset, str] = {}     # DuckDB SQL by the set of attributes present
        self.tree = tree.transform(self._rewrite)
        #: ``a.b`` alone (e.g. the template ``${device_id}``): read from the payload, no query needed
        self.bare_path = self.paths[0] if len(self.paths) == 1 and isinstance(self.tree, exp.Placeholder) \
            and self.tree.name.startswith("__path_") else None
        for node in self.tree.walk():
            if isinstance(node, exp.Func) and not isinstance(node, _ALLOWED):
                name = node.sql_name().lower()
                if name in AWS_ONLY_FUNCTIONS:
                    raise not_emulated("iot", "CreateTopicRule",
                                       f"the IoT SQL function {name}() is not evaluated by this stand-in; "
                                       f"it has: {', '.join(sorted(FUNCTIONS))}")
                raise errors.SqlParseException(f"Unknown function {name}() in the rule's SQL.")
            if not isinstance(node, _ALLOWED):
                raise errors.SqlParseException(
                    f"Unsupported expression in {where}: {node.sql()!r} ({type(node).__name__}).")

    def _rewrite(self, node):
        path = _path(node)
        if path is not None and not isinstance(node.parent, exp.Dot):
            self.paths.append(path)
            return exp.Placeholder(this="__path_" + "\x1f".join(path))   # filled in per message
        name = _function_name(node)
        if isinstance(node, exp.Anonymous):
            if name in _MESSAGE_FUNCTIONS:
                return self._message_function(name, node.expressions)
            if name in AWS_ONLY_FUNCTIONS:
                raise not_emulated("iot", "CreateTopicRule",
                                   f"the IoT SQL function {name}() is not evaluated by this stand-in; "
                                   f"it has: {', '.join(sorted(FUNCTIONS))}")
            raise errors.SqlParseException(f"Unknown function {node.name}() in the rule's SQL.")
        if isinstance(node, exp.Timestamp):
            if node.this is not None:
                raise errors.SqlParseException("timestamp() takes no argument.")
            self.params.add("timestamp")
            return exp.Placeholder(this="timestamp")
        return node

    def _message_function(self, name: str, args) -> exp.Expression:
        if name == "topic" and args:
            if len(args) != 1 or not (isinstance(args[0], exp.Literal) and args[0].is_int) \
                    or int(args[0].name) < 1:
                raise errors.SqlParseException("topic(n) takes one positive integer literal.")
            name = f"topic_{int(args[0].name)}"
        elif args:
            raise errors.SqlParseException(f"{name}() takes no argument.")
        self.params.add(name)
        return exp.Placeholder(this=name)

    def sql(self, present: set[tuple[str, ...]]) -> str:
        """DuckDB SQL of the expression: present attributes read the message table, missing ones are NULL.

        Messages of one device fleet have the same attributes, so the SQL is written once per
        set of attributes present and reused."""
        key = frozenset(p for p in present if p in self.paths)
        if key not in self._sql:
            self._sql[key] = self._write(key)
        return self._sql[key]

    def _write(self, present: frozenset) -> str:
        def fill(node):
            if isinstance(node, exp.Placeholder) and node.name.startswith("__path_"):
                path = tuple(node.name[7:].split("\x1f"))
                if path not in present:
                    return exp.Null()
                column = exp.column(path[0], table=TABLE, quoted=True)
                for key in path[1:]:
                    column = exp.Dot(this=column, expression=exp.to_identifier(key, quoted=True))
                return column
            return node
        return self.tree.transform(fill).sql("duckdb")


@dataclass
class Projection:
    key: str              # the key in the result document
    expr: Expression


class Statement:
    """A rule's SQL: the topic filter, the projection and the condition, ready to evaluate."""

    def __init__(self, text: str):
        match = _STATEMENT.match(text or "")
        if not match:
            raise errors.SqlParseException(
                "Expected SELECT <projection> FROM '<topic filter>' [WHERE <condition>].")
        self.text = text
        self.topic_filter = match["topic"]
        check_topic_filter(self.topic_filter)
        try:
            tree = sqlglot.parse_one(f"SELECT {match['select']} FROM t"
                                     + (f" WHERE {match['where']}" if match["where"] else ""),
                                     read="duckdb")
        except sqlglot.errors.SqlglotError as exc:
            raise errors.SqlParseException(f"Cannot parse the rule's SQL: {exc}".splitlines()[0]) from None
        if not isinstance(tree, exp.Select) or tree.args.get("joins") or tree.args.get("group") \
                or tree.args.get("order") or tree.args.get("limit") or tree.args.get("having"):
            raise errors.SqlParseException("Only SELECT ... FROM '<topic>' [WHERE ...] is supported.")
        self.star = False
        self.projections: list[Projection] = []
        for item in tree.expressions:
            if isinstance(item, exp.Star):
                self.star = True
                continue
            self.projections.append(Projection(_key(item), Expression(item.unalias(), "SELECT")))
        where = tree.args.get("where")
        self.where = Expression(where.this, "WHERE") if where is not None else None

    @property
    def expressions(self) -> list[Expression]:
        return [p.expr for p in self.projections] + ([self.where] if self.where else [])


def _key(item: exp.Expression) -> str:
    """The result key of a projected item: its alias, an attribute's last name, a function's name."""
    if isinstance(item, exp.Alias):
        return item.alias
    path = _path(item)
    if path:
        return path[-1]
    name = _function_name(item)
    return name or item.sql()


def parse_template(text: str) -> list:
    """A substitution template (``${topic(2)}/${timestamp()}``) -> [str | Expression, ...]."""
    parts, pos = [], 0
    for match in re.finditer(r"\$\{(.*?)\}", text or ""):
        parts.append(text[pos:match.start()])
        try:
            tree = sqlglot.parse_one(match[1], read="duckdb")
        except sqlglot.errors.SqlglotError:
            raise errors.InvalidRequestException(f"Invalid substitution template ${{{match[1]}}}.") from None
        parts.append(Expression(tree, "a substitution template"))
        pos = match.end()
    parts.append((text or "")[pos:])
    return [p for p in parts if p != ""]


# ------------------------------------------------------------------ evaluation
def _plain(value):
    """DuckDB's Python values -> JSON-ready ones (Decimal -> int/float, structs -> dicts)."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


class Evaluator:
    """The DuckDB database every rule of a stack is evaluated in (one query at a time)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._db = None

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def _run(self, message: Message, exprs: list[Expression], where: Expression | None):
        """Evaluate ``exprs`` over the message -> [values] (or None when WHERE is not true)."""
        paths = {p for e in exprs + ([where] if where else []) for p in e.paths}
        present = {p for p in paths if message.lookup(p) is not UNDEFINED}
        columns = {p[0]: message.data[p[0]] for p in present}
        try:
            table = pa.Table.from_pylist([{"__row": 1, **columns}])
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
            return None          # a payload Arrow cannot type (mixed-type arrays...): no match
        select = ", ".join(e.sql(present) for e in exprs) or "1"
        sql = f'SELECT {select} FROM "{TABLE}"'
        if where is not None:
            sql += f" WHERE ({where.sql(present)}) IS TRUE"
        used = set().union(*(e.params for e in exprs + ([where] if where else [])))
        import duckdb               # on first use: a stack that never evaluates a rule does not load it
        with self._lock:
            if self._db is None:
                self._db = duckdb.connect(":memory:", config=limits.duckdb_config("iot"))
            self._db.register(TABLE, table)
            try:
                rows = self._db.execute(sql, message.parameters(used) or None).fetchall()
            except duckdb.Error:
                return None      # e.g. a comparison of incompatible types: the rule does not match
            finally:
                self._db.unregister(TABLE)
        return [_plain(v) for v in rows[0]] if rows else None

    def evaluate(self, statement: Statement, message: Message):
        """The rule's result for ``message``: a dict, raw bytes, or None when it does not match."""
        exprs = [p.expr for p in statement.projections]
        values = self._run(message, exprs, statement.where)
        if values is None:
            return None
        if statement.star and not isinstance(message.data, dict):
            return message.payload          # binary (or non-object) payload: passed through as is
        result = dict(message.data) if statement.star else {}
        for projection, value in zip(statement.projections, values):
            undefined = value is None and any(message.lookup(p) is UNDEFINED for p in projection.expr.paths)
            if not undefined:
                result[projection.key] = value
        return result

    def render(self, template: list, message: Message) -> str:
        """A substitution template's text for ``message`` (an Undefined value renders as "")."""
        out = []
        for part in template:
            if isinstance(part, str):
                out.append(part)
                continue
            if part.bare_path is not None:       # ${attribute}: its value, as the query would give it
                value = message.lookup(part.bare_path)
                value = None if value is UNDEFINED else value
            else:
                values = self._run(message, [part], None)
                value = values[0] if values else None
            out.append("" if value is None else value if isinstance(value, str) else json.dumps(value))
        return "".join(out)
