"""Grok patterns, translated to Python regular expressions.

Grok (from Logstash) names regular expressions so that a log format reads
like a sentence::

    %{IPV4:client} %{WORD:method} %{URIPATH:path} %{INT:status:int}

``%{PATTERN}`` matches what the pattern ``PATTERN`` matches;
``%{PATTERN:field}`` also captures it as the column ``field`` (a string);
``%{PATTERN:field:type}`` casts the column to ``byte``, ``boolean``,
``double``, ``short``, ``int``, ``long`` or ``float``. Patterns are built
from other patterns (``HTTPDATE`` is ``%{MONTHDAY}/%{MONTH}/%{YEAR}:%{TIME}
%{INT}``). A Glue grok classifier brings a ``GrokPattern`` and optional
``CustomPatterns`` (one ``NAME regex`` per line); the table it creates uses
Glue's ``com.amazonaws.glue.serde.GrokSerDe`` with the pattern as the SerDe
property ``input.format``.

:func:`compile` expands a pattern into one Python regex with a group per
field. The standard patterns below are the ones AWS Glue documents as its
built-ins (network addresses, paths and URIs, dates and times, log levels),
written for Python's ``re`` (Python 3.11 has the atomic groups they use).
A field named ``UNWANTED`` is matched but not captured, as in Glue.

A reference without a field name (``%{SYSLOGBASE}``) is captured too, under
the pattern's own name: Athena's Grok SerDe fills a table column named
``syslogbase`` from it (the Athena guide's Postfix example does exactly
that). :attr:`Grok.fields` lists only the named fields, the columns a Glue
crawler infers; :meth:`Grok.captures` gives both.

Two services use this module, which is why it lives in ``core``: the Glue
crawler's grok classifiers (``localaws/glue/classifiers.py``) decide with it
whether a file is a log of that shape, and Athena's reader of
``GrokSerDe`` tables (``localaws/athena/sources.py``) splits each line with
it. The same pattern therefore means the same columns to both.
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

#: Grok's cast names -> Glue column types.
GROK_TYPES = {"byte": "tinyint", "boolean": "boolean", "double": "double", "short": "smallint",
              "int": "int", "long": "bigint", "float": "float", "string": "string"}

_OCTET = r"(?:25[0-5]|2[0-4][0-9]|[0-1]?[0-9]{1,2})"
_H16 = r"[0-9A-Fa-f]{1,4}"

#: Standard patterns (name -> definition), as in AWS Glue's list of built-in grok patterns.
STANDARD = {
    "USERNAME": r"[a-zA-Z0-9._-]+",
    "USER": r"%{USERNAME:UNWANTED}",
    "INT": r"(?:[+-]?(?:[0-9]+))",
    "BASE10NUM": r"(?<![0-9.+-])(?>[+-]?(?:(?:[0-9]+(?:\.[0-9]+)?)|(?:\.[0-9]+)))",
    "NUMBER": r"(?:%{BASE10NUM:UNWANTED})",
    "BASE16NUM": r"(?<![0-9A-Fa-f])(?:[+-]?(?:0x)?(?:[0-9A-Fa-f]+))",
    "BOOLEAN": r"(?i:true|false)",
    "POSINT": r"\b(?:[1-9][0-9]*)\b",
    "NONNEGINT": r"\b(?:[0-9]+)\b",
    "WORD": r"\b\w+\b",
    "NOTSPACE": r"\S+",
    "SPACE": r"\s*",
    "DATA": r".*?",
    "GREEDYDATA": r".*",
    "QUOTEDSTRING": r"(?>(?<!\\)(?>\"(?>\\.|[^\\\"]+)+\"|\"\"|(?>'(?>\\.|[^\\']+)+')|''|(?>`(?>\\.|[^\\`]+)+`)|``))",
    "QS": r"%{QUOTEDSTRING:UNWANTED}",
    "UUID": r"[A-Fa-f0-9]{8}-(?:[A-Fa-f0-9]{4}-){3}[A-Fa-f0-9]{12}",
    # networking
    "CISCOMAC": r"(?:(?:[A-Fa-f0-9]{4}\.){2}[A-Fa-f0-9]{4})",
    "WINDOWSMAC": r"(?:(?:[A-Fa-f0-9]{2}-){5}[A-Fa-f0-9]{2})",
    "COMMONMAC": r"(?:(?:[A-Fa-f0-9]{2}:){5}[A-Fa-f0-9]{2})",
    "MAC": r"(?:%{CISCOMAC:UNWANTED}|%{WINDOWSMAC:UNWANTED}|%{COMMONMAC:UNWANTED})",
    "IPV4": rf"(?<![0-9])(?:{_OCTET}[.]{_OCTET}[.]{_OCTET}[.]{_OCTET})(?![0-9])",
    # IPv6 written compactly: up to eight groups, one "::" run, an optional IPv4 tail
    "IPV6": (rf"(?:(?:{_H16}:){{7}}{_H16}|(?:{_H16}:){{1,7}}:|:(?::{_H16}){{1,7}}|"
             rf"(?:{_H16}:){{1,6}}(?::{_H16}){{1,6}}|::|(?:{_H16}:){{6}}%{{IPV4}}|"
             rf"(?:{_H16}:){{0,5}}:%{{IPV4}})(?:%.+)?"),
    "IP": r"(?:%{IPV6:UNWANTED}|%{IPV4:UNWANTED})",
    "HOSTNAME": r"\b(?:[0-9A-Za-z][0-9A-Za-z_-]{0,62})(?:\.(?:[0-9A-Za-z][0-9A-Za-z_-]{0,62}))*(?:\.?|\b)",
    "HOST": r"%{HOSTNAME:UNWANTED}",
    "IPORHOST": r"(?:%{IP:UNWANTED}|%{HOSTNAME:UNWANTED})",
    "HOSTPORT": r"(?:%{IPORHOST}:%{POSINT:PORT})",
    # paths
    "UNIXPATH": r"(?>/(?>[\w_%!$@:.,~-]+|\\.)*)+",
    "WINPATH": r"(?>[A-Za-z]+:|\\)(?:\\[^\\?*]*)+",
    "PATH": r"(?:%{UNIXPATH}|%{WINPATH})",
    "TTY": r"(?:/dev/(?:pts|tty(?:[pq])?)(?:\w+)?/?(?:[0-9]+))",
    "URIPROTO": r"[A-Za-z]+(?:\+[A-Za-z+]+)?",
    "URIHOST": r"%{IPORHOST}(?::%{POSINT:port})?",
    "URIPATH": r"(?:/[A-Za-z0-9$.+!*'(){},~:;=@#%_\-]*)+",
    "URIPARAM": r"\?[A-Za-z0-9$.+!*'|(){},~@#%&/=:;_?\-\[\]]*",
    "URIPATHPARAM": r"%{URIPATH}(?:%{URIPARAM})?",
    "URI": r"%{URIPROTO}://(?:%{USER}(?::[^@]*)?@)?(?:%{URIHOST})?(?:%{URIPATHPARAM})?",
    # dates and times
    "MONTH": (r"\b(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|Jun(?:e)?|Jul(?:y)?|"
              r"Aug(?:ust)?|Sep(?:tember)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)\b"),
    "MONTHNUM": r"(?:0?[1-9]|1[0-2])",
    "MONTHNUM2": r"(?:0[1-9]|1[0-2])",
    "MONTHDAY": r"(?:(?:0[1-9])|(?:[12][0-9])|(?:3[01])|[1-9])",
    "DAY": r"(?:Mon(?:day)?|Tue(?:sday)?|Wed(?:nesday)?|Thu(?:rsday)?|Fri(?:day)?|Sat(?:urday)?|Sun(?:day)?)",
    "YEAR": r"(?>\d\d){1,2}",
    "HOUR": r"(?:2[0123]|[01]?[0-9])",
    "MINUTE": r"(?:[0-5][0-9])",
    "SECOND": r"(?:(?:[0-5]?[0-9]|60)(?:[:.,][0-9]+)?)",
    "TIME": r"(?<![0-9])%{HOUR}:%{MINUTE}(?::%{SECOND})(?![0-9])",
    "DATE_US": r"%{MONTHNUM}[/-]%{MONTHDAY}[/-]%{YEAR}",
    "DATE_EU": r"%{MONTHDAY}[./-]%{MONTHNUM}[./-]%{YEAR}",
    "DATESTAMP_US": r"%{DATE_US}[- ]%{TIME}",
    "DATESTAMP_EU": r"%{DATE_EU}[- ]%{TIME}",
    "ISO8601_TIMEZONE": r"(?:Z|[+-]%{HOUR}(?::?%{MINUTE}))",
    "ISO8601_SECOND": r"(?:%{SECOND}|60)",
    "TIMESTAMP_ISO8601": r"%{YEAR}-%{MONTHNUM}-%{MONTHDAY}[T ]%{HOUR}:?%{MINUTE}(?::?%{SECOND})?%{ISO8601_TIMEZONE}?",
    "TZ": r"(?:[PMCE][SD]T|UTC)",
    "DATESTAMP_RFC822": r"%{DAY} %{MONTH} %{MONTHDAY} %{YEAR} %{TIME} %{TZ}",
    "DATESTAMP_RFC2822": r"%{DAY}, %{MONTHDAY} %{MONTH} %{YEAR} %{TIME} %{ISO8601_TIMEZONE}",
    "DATESTAMP_OTHER": r"%{DAY} %{MONTH} %{MONTHDAY} %{TIME} %{TZ} %{YEAR}",
    "DATESTAMP_EVENTLOG": r"%{YEAR}%{MONTHNUM2}%{MONTHDAY}%{HOUR}%{MINUTE}%{SECOND}",
    "SYSLOGTIMESTAMP": r"%{MONTH} +%{MONTHDAY} %{TIME}",
    "PROG": r"(?:[\w._/%-]+)",
    "SYSLOGPROG": r"%{PROG:program}(?:\[%{POSINT:pid}\])?",
    "SYSLOGHOST": r"%{IPORHOST}",
    "SYSLOGFACILITY": r"<%{NONNEGINT:facility}.%{NONNEGINT:priority}>",
    "HTTPDATE": r"%{MONTHDAY}/%{MONTH}/%{YEAR}:%{TIME} %{INT}",
    # log formats
    "SYSLOGBASE": r"%{SYSLOGTIMESTAMP:timestamp} (?:%{SYSLOGFACILITY} )?%{SYSLOGHOST:logsource} %{SYSLOGPROG}:",
    "COMMONAPACHELOG": (r"%{IPORHOST:clientip} %{USER:ident} %{USER:auth} \[%{HTTPDATE:timestamp}\] "
                        r"\"(?:%{WORD:verb} %{NOTSPACE:request}(?: HTTP/%{NUMBER:httpversion})?|%{DATA:rawrequest})\" "
                        r"%{NUMBER:response} (?:%{NUMBER:bytes}|-)"),
    "COMBINEDAPACHELOG": r"%{COMMONAPACHELOG} %{QS:referrer} %{QS:agent}",
    "LOGLEVEL": (r"(?:[Aa]lert|ALERT|[Tt]race|TRACE|[Dd]ebug|DEBUG|[Nn]otice|NOTICE|[Ii]nfo|INFO|"
                 r"[Ww]arn?(?:ing)?|WARN?(?:ING)?|[Ee]rr?(?:or)?|ERR?(?:OR)?|[Cc]rit?(?:ical)?|CRIT?(?:ICAL)?|"
                 r"[Ff]atal|FATAL|[Ss]evere|SEVERE|EMERG(?:ENCY)?|[Ee]merg(?:ency)?)"),
}

_REFERENCE = re.compile(r"%\{(\w+)(?::([^:}]+))?(?::(\w+))?\}")
_NAMED_GROUP = re.compile(r"\(\?<([A-Za-z_]\w*)>")       # Oniguruma's (?<name>...), not (?<= or (?<!


class GrokError(ValueError):
    """A pattern that cannot be translated (unknown name, recursion, bad regex)."""


@dataclass
class Grok:
    """A compiled grok pattern: ``regex`` and its ``fields`` as ``(column, Glue type)``,
    in the order of their groups ``g0``, ``g1``...; ``patterns`` names the pattern of
    each reference written without a field (groups ``p0``, ``p1``...)."""
    pattern: str
    regex: re.Pattern
    fields: list[tuple[str, str]]
    patterns: list[str] = dataclasses.field(default_factory=list)

    def parse(self, line: str) -> dict | None:
        """The fields of ``line`` as text (None when the line does not match)."""
        m = self.regex.search(line)
        if m is None:
            return None
        return {name: m.group(f"g{i}") for i, (name, _) in enumerate(self.fields)}

    def captures(self, line: str) -> dict[str, str | None] | None:
        """Everything ``line`` captured, by lower-case name (None when it does not match).

        The named fields come first; a reference without a field adds its
        pattern's name when no field took that name, with the text of the
        first such reference that matched (``%{IPV4}`` may appear several times).
        """
        m = self.regex.search(line)
        if m is None:
            return None
        found = {name: m.group(f"g{i}") for i, (name, _) in enumerate(self.fields)}
        for i, name in enumerate(self.patterns):
            if found.get(name) is None:
                found[name] = m.group(f"p{i}")
        return found


def custom_patterns(text: str | None) -> dict[str, str]:
    """``CustomPatterns`` of a classifier (the SerDe property ``input.grokCustomPatterns``
    of its table): one ``NAME regex`` per line (# starts a comment)."""
    found = {}
    for line in (text or "").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, _, definition = line.partition(" ")
        found[name] = definition.strip()
    return found


def compile(pattern: str, custom: str | None = None) -> Grok:
    """Translate ``pattern`` (with ``custom`` patterns) into one Python regex."""
    library = {**STANDARD, **custom_patterns(custom)}
    fields: list[tuple[str, str]] = []
    patterns: list[str] = []

    def expand(text: str, depth: int) -> str:
        if depth > 30:
            raise GrokError("grok patterns refer to each other without end")

        def named(m: re.Match) -> str:               # (?<name>...) written in the pattern itself
            fields.append((m.group(1).lower(), "string"))
            return f"(?P<g{len(fields) - 1}>"

        text = _NAMED_GROUP.sub(named, text)
        out, pos = [], 0
        for m in _REFERENCE.finditer(text):
            out.append(text[pos:m.start()])
            pos = m.end()
            name, field, cast = m.group(1), m.group(2), m.group(3)
            if name not in library:
                raise GrokError(f"grok pattern %{{{name}}} is not defined")
            if field and field != "UNWANTED":
                fields.append((field.strip().lower(), GROK_TYPES.get((cast or "string").lower(), "string")))
                group = f"g{len(fields) - 1}"
                out.append(f"(?P<{group}>{expand(library[name], depth + 1)})")
            elif field:                              # UNWANTED: matched, never captured
                out.append(f"(?:{expand(library[name], depth + 1)})")
            else:                                    # %{NAME}: captured under the pattern's name
                patterns.append(name.lower())
                group = f"p{len(patterns) - 1}"
                out.append(f"(?P<{group}>{expand(library[name], depth + 1)})")
        out.append(text[pos:])
        return "".join(out)

    source = expand(pattern, 0)
    try:
        regex = re.compile(source)
    except re.error as exc:
        raise GrokError(f"grok pattern does not compile: {exc}") from None
    return Grok(pattern, regex, _unique(fields), patterns)


def _unique(fields: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Column names must be unique: a repeated field gets ``_1``, ``_2``..."""
    seen: dict[str, int] = {}
    out = []
    for name, kind in fields:
        if name in seen:
            seen[name] += 1
            name = f"{name}_{seen[name]}"
        else:
            seen[name] = 0
        out.append((name, kind))
    return out
