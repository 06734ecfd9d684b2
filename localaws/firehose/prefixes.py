"""S3 object keys: the ``Prefix`` and ``ErrorOutputPrefix`` expressions, evaluated.

An object Firehose writes to S3 is named ``<evaluated prefix><suffix>``, the
suffix being ``<stream>-<version>-<yyyy-MM-dd-HH-mm-ss>-<uuid><file extension>``
[1]. A prefix may hold expressions ``!{namespace:value}`` [2]:

``!{timestamp:yyyy/MM/dd}``
    A Java ``DateTimeFormatter`` pattern, evaluated at the approximate arrival
    time of the *oldest* record in the object, in UTC unless ``CustomTimeZone``
    says otherwise; every instance in one prefix is the same instant [2].
``!{firehose:random-string}``, ``!{firehose:error-output-type}``
    11 random characters (a new string per instance); the kind of failure,
    ``processing-failed``, ``format-conversion-failed``... (error prefix only) [2].
``!{partitionKeyFromQuery:key}``, ``!{partitionKeyFromLambda:key}``
    Dynamic partitioning: the record's key, from the ``MetadataExtraction``
    query or from the Lambda's ``metadata.partitionKeys`` [3].

The semantic rules of [2], enforced by :func:`check` at CreateDeliveryStream:
``!{`` appears only in expressions; ``Prefix`` cannot hold
``error-output-type``; an ``ErrorOutputPrefix`` with expressions must hold
it; ``ErrorOutputPrefix`` may be left out only if ``Prefix`` has no
expressions. A prefix *without* expressions gets the default time folders
``yyyy/MM/dd/HH/`` appended, literally (``logs`` -> ``logs2024/...``); one
with expressions is used as evaluated [1][2].

Only the common pattern letters are run locally (``y u M d D H h m s S E a``,
``'quoted text'``); another letter is refused with HTTP 501 at create.

[1] https://docs.aws.amazon.com/firehose/latest/dev/s3-object-name.html
[2] https://docs.aws.amazon.com/firehose/latest/dev/s3-prefixes.html
[3] https://docs.aws.amazon.com/firehose/latest/dev/dynamic-partitioning.html
"""
from __future__ import annotations

import re
import uuid
from datetime import datetime, timezone

EXPRESSION = re.compile(r"!\{([^{}:]*):([^{}]*)\}")
NAMESPACES = ("timestamp", "firehose", "partitionKeyFromQuery", "partitionKeyFromLambda")
PARTITION_NAMESPACES = ("partitionKeyFromQuery", "partitionKeyFromLambda")
DEFAULT_TIME = "yyyy/MM/dd/HH/"
MAX_EVALUATED = 512
_LETTERS = set("yuMdDHhmsSEa")


class PrefixError(ValueError):
    """A prefix AWS would refuse (InvalidArgumentException at create)."""


class Unsupported(ValueError):
    """A valid Java pattern letter this stand-in does not format."""


def expressions(prefix: str | None) -> list[tuple[str, str]]:
    """``[(namespace, value)]`` of every ``!{...}`` in ``prefix``."""
    return EXPRESSION.findall(prefix or "")


def partition_keys(prefix: str | None) -> list[tuple[str, str]]:
    """The dynamic partitioning keys a prefix names: ``[(namespace, key)]``."""
    return [(ns, value) for ns, value in expressions(prefix) if ns in PARTITION_NAMESPACES]


# ------------------------------------------------------------------ validation
def check(prefix: str | None, error_prefix: str | None, dynamic: bool) -> None:
    """The semantic rules of [2] and [3]; raises :class:`PrefixError` (or :class:`Unsupported`)."""
    for name, text in (("Prefix", prefix), ("ErrorOutputPrefix", error_prefix)):
        if EXPRESSION.sub("", text or "").find("!{") >= 0:
            raise PrefixError(f"The sequence '!{{' can only appear in !{{namespace:value}} expressions "
                              f"({name} '{text}').")
        for ns, value in expressions(text):
            if ns not in NAMESPACES:
                raise PrefixError(f"Unknown namespace '{ns}' in {name} '{text}'. Valid namespaces are: "
                                  f"{', '.join(NAMESPACES)}.")
            if ns == "firehose" and value not in ("error-output-type", "random-string"):
                raise PrefixError(f"Unknown value '{value}' for the firehose namespace in {name}.")
            if ns == "timestamp":
                format_time(value, datetime(2000, 1, 1, tzinfo=timezone.utc))   # raises if unsupported
            if ns in PARTITION_NAMESPACES and not dynamic:
                raise PrefixError("Dynamic Partitioning Namespaces can only be part of a prefix expression "
                                  "when Dynamic Partitioning is enabled.")
    if ("firehose", "error-output-type") in expressions(prefix):
        raise PrefixError("Prefix can't contain !{firehose:error-output-type}; only ErrorOutputPrefix can.")
    if expressions(error_prefix) and ("firehose", "error-output-type") not in expressions(error_prefix):
        raise PrefixError("ErrorOutputPrefix must contain at least one !{firehose:error-output-type} "
                          "expression when it contains expressions.")
    if expressions(prefix) and not error_prefix:
        raise PrefixError("ErrorOutputPrefix cannot be null or empty when Prefix contains expressions")
    if dynamic and not partition_keys(prefix):
        raise PrefixError("S3 Prefix should contain Dynamic Partitioning namespaces when Dynamic "
                          "Partitioning is enabled")


# ------------------------------------------------------------------ evaluation
def object_prefix(prefix: str | None, when: datetime, keys: dict[str, str] | None = None) -> str:
    """The evaluated ``Prefix`` of an object whose oldest record arrived at ``when``."""
    prefix = prefix or ""
    if not expressions(prefix):
        return prefix + format_time(DEFAULT_TIME, when)
    return evaluate(prefix, when, keys or {})


def error_prefix(prefix: str | None, error_type: str, when: datetime) -> str:
    """The evaluated ``ErrorOutputPrefix`` for failures of ``error_type``.

    Left out, the failures go to ``<error type>/yyyy/MM/dd/HH/`` at the top of
    the bucket (this stand-in's layout, which ``tests/test_firehose.py`` pins;
    the guide's rule [2] puts them under the ``Prefix``: see the plane's docstring).
    """
    if not prefix:
        return f"{error_type}/" + format_time(DEFAULT_TIME, when)
    if not expressions(prefix):
        return prefix + format_time(DEFAULT_TIME, when)
    return evaluate(prefix, when, {}, error_type)


def evaluate(prefix: str, when: datetime, keys: dict[str, str], error_type: str | None = None) -> str:
    """Replace each expression; ``keys`` are ``{"partitionKeyFromQuery:id": "42"}``;
    a partition key the record lacks raises KeyError."""
    def one(match: re.Match) -> str:
        ns, value = match.group(1), match.group(2)
        if ns == "timestamp":
            return format_time(value, when)
        if ns == "firehose":
            if value == "error-output-type":
                return error_type or ""
            return str(uuid.uuid4())[:11]
        return keys[f"{ns}:{value}"]
    out = EXPRESSION.sub(one, prefix)
    if len(out) > MAX_EVALUATED:
        raise KeyError(f"the evaluated prefix is longer than {MAX_EVALUATED} characters")
    return out


# ------------------------------------------------------------------ Java DateTimeFormatter, a subset
def _tokens(pattern: str):
    """``("text", s)`` and ``("field", letter, count)`` pieces of a Java pattern."""
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "'":
            end = pattern.find("'", i + 1)
            if end < 0:
                raise PrefixError(f"Unterminated quote in timestamp pattern '{pattern}'")
            yield ("text", "'" if end == i + 1 else pattern[i + 1:end])
            i = end + 1
        elif c.isalpha():
            j = i
            while j < len(pattern) and pattern[j] == c:
                j += 1
            if c not in _LETTERS:
                raise Unsupported(f"the pattern letter '{c}' in '{pattern}'")
            yield ("field", c, j - i)
            i = j
        else:
            yield ("text", c)
            i += 1


def format_time(pattern: str, when: datetime) -> str:
    """``when`` formatted with a Java ``DateTimeFormatter`` pattern (the subset above)."""
    out = []
    for token in _tokens(pattern):
        if token[0] == "text":
            out.append(token[1])
            continue
        _, letter, n = token
        if letter in "yu":
            out.append(f"{when.year % 100:02d}" if n == 2 else f"{when.year:0{n}d}")
        elif letter == "M":
            out.append(when.strftime("%B") if n >= 4 else when.strftime("%b") if n == 3
                       else f"{when.month:0{n}d}")
        elif letter == "E":
            out.append(when.strftime("%A") if n >= 4 else when.strftime("%a"))
        elif letter == "a":
            out.append(when.strftime("%p"))
        elif letter == "S":
            out.append(f"{when.microsecond:06d}{'0' * 3}"[:n])
        else:
            value = {"d": when.day, "D": when.timetuple().tm_yday, "H": when.hour,
                     "h": (when.hour % 12) or 12, "m": when.minute, "s": when.second}[letter]
            out.append(f"{value:0{n}d}")
    return "".join(out)


def to_strptime(pattern: str) -> str:
    """A Joda/Java pattern as a ``strptime`` format (HiveJsonSerDe ``TimestampFormats``)."""
    table = {("y", 4): "%Y", ("u", 4): "%Y", ("y", 2): "%y", ("M", 2): "%m", ("M", 1): "%m",
             ("M", 3): "%b", ("d", 2): "%d", ("d", 1): "%d", ("H", 2): "%H", ("H", 1): "%H",
             ("m", 2): "%M", ("s", 2): "%S", ("a", 1): "%p", ("h", 2): "%I"}
    out = []
    for token in _tokens(pattern):
        if token[0] == "text":
            out.append(token[1].replace("%", "%%"))
        elif token[1] == "S":
            out.append("%f")
        elif token[1:] in table:
            out.append(table[token[1:]])
        else:
            raise Unsupported(f"'{token[1] * token[2]}' in the timestamp format '{pattern}'")
    return "".join(out)
